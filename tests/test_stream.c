/* hestat-server compute reads tables chunk by chunk: a job file larger than
 * the address-space limit the computation runs under (ulimit -v) completes,
 * with the bytes of an unlimited run; the file reader refuses what the
 * buffer reader refuses (a truncated job, a damaged chunk). hestat-client
 * encrypt reads the CSV a block of rows at a time the same way: a CSV whose
 * whole table does not fit the limit encrypts, a late error leaves no file,
 * and blocks derive their columns exactly as the whole table does. The
 * memory-limit tests are skipped under the sanitizers, whose shadow memory
 * does not fit any small limit. */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "stats/stats.h"
#include "testutil.h"

Test(stream, job_larger_than_the_memory_limit_completes, .timeout = 900)
{
    if (getenv("HESTAT_SANITIZER_REPORTS")) {
        cr_skip_test("under the sanitizers: shadow memory does not fit a small ulimit -v");
        return;
    }
    char dir[] = "/tmp/hestat-stream-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char C[4096], S[4096];
    cr_assert_not_null(realpath(test_bin("hestat-client"), C));
    cr_assert_not_null(realpath(test_bin("hestat-server"), S));
    cr_assert_eq(test_sh("cd %s && %s sample --rows 105000 --seed 8 --out t.csv >/dev/null && "
                         "%s keygen --schema t.csv --keys k >/dev/null && "
                         "%s encrypt --study k/study.hst --in t.csv --out t1.hst >/dev/null 2>&1 && "
                         "(ulimit -v 220000 && MALLOC_ARENA_MAX=1 %s job --study k/study.hst --stats all --out job.hst "
                         "t1.hst >/dev/null) && rm t1.hst",
                         dir, C, C, C, C),
                 0, "the job (larger than the limit) is written a chunk at a time");
    char path[4200];
    snprintf(path, sizeof path, "%s/job.hst", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    const long limit_kb = 220000;
    cr_assert_gt(st.st_size / 1024, limit_kb, "the job (%lld bytes) must be larger than the limit", (long long)st.st_size);
    cr_assert_eq(test_sh("cd %s && %s compute job.hst --out free.hst >/dev/null", dir, S), 0);
    int rc = test_sh("cd %s && (ulimit -v %ld && HESTAT_THREADS=1 MALLOC_ARENA_MAX=1 %s compute job.hst --out "
                     "limited.hst > limited.log 2>&1)",
                     dir, limit_kb, S);
    cr_assert_eq(rc, 0, "compute under ulimit -v %ld KB failed (%s/limited.log)", limit_kb, dir);
    cr_assert_eq(test_sh("cmp -s %s/free.hst %s/limited.hst", dir, dir), 0, "results differ");
    /* Damaged files: cut inside the last chunk, a flipped byte in a chunk. */
    cr_assert_neq(test_sh("cd %s && head -c %lld job.hst > cut.hst && %s compute cut.hst --out x.hst 2>cut.err", dir,
                          (long long)st.st_size - 1000, S),
                  0);
    cr_assert_eq(test_sh("grep -q 'missing, truncated' %s/cut.err", dir), 0);
    cr_assert_neq(test_sh("cd %s && cp job.hst flip.hst && printf 'X' | dd of=flip.hst bs=1 seek=%lld conv=notrunc "
                          "2>/dev/null && %s compute flip.hst --out y.hst 2>flip.err",
                          dir, (long long)st.st_size - 5000, S),
                  0);
    cr_assert_eq(test_sh("test ! -e %s/x.hst && test ! -e %s/y.hst", dir, dir), 0);
    test_sh("rm -rf %s", dir);
}

/* sample writes blocks of rows as it generates them: the rows do not depend
 * on the block boundaries (any --rows N is the first N rows of a longer
 * sample), and an unwritable destination leaves no file. */
Test(stream, sample_is_generated_block_by_block)
{
    char dir[] = "/tmp/hestat-sample-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char C[4096];
    cr_assert_not_null(realpath(test_bin("hestat-client"), C));
    cr_assert_eq(test_sh("cd %s && %s sample --rows 70000 --seed 3 --out a.csv && %s sample --rows 140001 --seed 3 --out b.csv && "
                         "head -n 70001 b.csv | cmp -s - a.csv && test $(wc -l < b.csv) = 140002",
                         dir, C, C),
                 0);
    cr_assert_neq(test_sh("%s sample --rows 10 --out %s/missing/x.csv 2>/dev/null", C, dir), 0);
    cr_assert_eq(test_sh("test -z \"$(ls %s | grep -v '^[ab].csv$')\"", dir), 0, "stray files left");
    test_sh("rm -rf %s", dir);
}

/* The smallest ulimit -v (KB) under which encrypt succeeded, measured on
 * Zen 3 (a study keyed on 2,000 sample rows, HESTAT_THREADS=1,
 * MALLOC_ARENA_MAX=1): reading the whole CSV (before) 80,038 at 60,000 rows,
 * 92,500 at 120,000, 113,456 at 150,000, 119,687 at 200,000 (the table, its
 * parse buffer and its derived copy); a block at a time, 74,941 to 75,507 at
 * 20,000, 150,000 or 200,000 rows alike (the study and the libraries). So
 * 150,000 rows under 88,000 KB: the whole table would need 25 MB more, the
 * blocks fit with 13 MB to spare. */
Test(stream, encrypt_larger_than_the_memory_limit_completes, .timeout = 300)
{
    if (getenv("HESTAT_SANITIZER_REPORTS")) {
        cr_skip_test("under the sanitizers: shadow memory does not fit a small ulimit -v");
        return;
    }
    char dir[] = "/tmp/hestat-encstream-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char C[4096], S[4096];
    cr_assert_not_null(realpath(test_bin("hestat-client"), C));
    cr_assert_not_null(realpath(test_bin("hestat-server"), S));
    const long rows = 150000, limit_kb = 88000;
    cr_assert_eq(test_sh("cd %s && %s sample --rows %ld --seed 5 --out t.csv >/dev/null && "
                         "%s sample --rows 2000 --seed 6 --out s.csv >/dev/null && "
                         "%s keygen --schema s.csv --keys k >/dev/null",
                         dir, C, rows, C, C),
                 0);
    int rc = test_sh("cd %s && (ulimit -v %ld && HESTAT_THREADS=1 MALLOC_ARENA_MAX=1 %s encrypt --study k/study.hst "
                     "--in t.csv --out t.hst > limited.log 2>&1)",
                     dir, limit_kb, C);
    cr_assert_eq(rc, 0, "encrypt under ulimit -v %ld KB failed (%s/limited.log)", limit_kb, dir);
    cr_assert_eq(test_sh("cd %s && %s job --study k/study.hst --stats means --out j.hst t.hst >/dev/null && rm t.hst && "
                         "%s compute j.hst --out r.hst >/dev/null && rm j.hst && "
                         "%s decrypt --keys k --in r.hst --out rep.csv --compare t.csv >/dev/null",
                         dir, C, S, C),
                 0);
    /* Every count exact, every mean within 1e-6 (relative, or absolute). */
    cr_assert_eq(test_sh("awk -F, '$1 == \"count\" { n++; if ($4 != $5) bad = 1 } "
                         "$1 == \"mean\" { m++; if ($6 > 1e-6 && $7 > 1e-6) bad = 1 } "
                         "END { exit bad || n != 16 || m != 16 }' %s/rep.csv",
                         dir),
                 0, "statistics differ from the plaintext's (%s/rep.csv)", dir);
    cr_assert_eq(test_sh("grep -q '^count,age,,%ld,' %s/rep.csv", rows, dir), 0);
    test_sh("rm -rf %s", dir);
}

/* An error in a late block (after blocks already encrypted and written)
 * fails with its line (or row) and leaves neither the output nor a
 * temporary file; a pipe encrypts like the file. */
Test(stream, encrypt_error_in_a_late_block_leaves_no_file, .timeout = 120)
{
    char dir[] = "/tmp/hestat-encerr-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char C[4096];
    cr_assert_not_null(realpath(test_bin("hestat-client"), C));
    cr_assert_eq(test_sh("cd %s && %s sample --rows 3000 --seed 2 --out t.csv >/dev/null && "
                         "%s keygen --schema t.csv --keys k >/dev/null",
                         dir, C, C),
                 0);
    /* Line 2901: a row of 3 fields; line 2500: an age far outside the study's range. */
    cr_assert_eq(test_sh("cd %s && sed '2901s/.*/1,2,3/' t.csv > fields.csv && "
                         "awk -F, -v OFS=, 'NR == 2500 { $2 = 1000000 } 1' t.csv > range.csv",
                         dir),
                 0);
    cr_assert_eq(test_sh("cd %s && %s encrypt --study k/study.hst --in fields.csv --out out.hst 2> fields.err", dir, C),
                 1);
    cr_expect_eq(test_sh("grep -q 'fields.csv:2901: 3 fields, the header has 16' %s/fields.err", dir), 0);
    cr_assert_eq(test_sh("cd %s && %s encrypt --study k/study.hst --in range.csv --out out.hst 2> range.err", dir, C),
                 1);
    cr_expect_eq(test_sh("grep -q 'range.csv:2500: column age: 1000000 is outside' %s/range.err", dir), 0);
    /* Line 9001 of a factor's table: a text the study does not have, named with its row. */
    cr_assert_eq(test_sh("cd %s && awk 'BEGIN { print \"sex,x\"; for (i = 0; i < 10000; i++) print (i %% 2 ? \"M\" : "
                         "\"F\") \",\" i %% 7 }' > f.csv && %s keygen --schema f.csv --keys kf >/dev/null && "
                         "sed '9001s/^M,/U,/' f.csv > level.csv",
                         dir, C),
                 0);
    cr_assert_eq(test_sh("cd %s && %s encrypt --study kf/study.hst --in level.csv --out out.hst 2> level.err", dir, C),
                 1);
    cr_expect_eq(test_sh("grep -q \"row 9000, column sex: 'U' is not one of the study's levels (F, M)\" %s/level.err",
                         dir),
                 0);
    cr_expect_eq(test_sh("cd %s && test -z \"$(ls | grep hst)\"", dir), 0, "output or temporary file left");
    /* From a pipe: the row count is written at the end, as for a file. */
    cr_assert_eq(test_sh("cd %s && %s encrypt --study k/study.hst --in t.csv --out file.hst && "
                         "cat t.csv | %s encrypt --study k/study.hst --in /dev/stdin --out pipe.hst && "
                         "test $(stat -c %%s file.hst) = $(stat -c %%s pipe.hst) && "
                         "%s job --study k/study.hst --out j.hst pipe.hst >/dev/null",
                         dir, C, C, C),
                 0);
    test_sh("rm -rf %s", dir);
}

/* Blocks derive as the whole table: factors (one whose texts first appear
 * after a block of missing cells), groups, a contingency table, histogram
 * bins, quantile digits, centred powers and complete cases, read 7 rows at a
 * time, give the whole table's derived values row for row. */
Test(stream, csv_blocks_derive_like_the_whole_table)
{
    char dir[] = "/tmp/hestat-blocks-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.csv", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "sex,smoker,age,bmi,chd\n");
    static const char *sm[3] = {"never", "former", "current"};
    for (int r = 0; r < 100; r++)
        fprintf(f, "%s,%s,%d,%s,%d\n", r % 3 ? "M" : "F", r < 20 || r % 11 == 0 ? "NA" : sm[r % 3], 30 + (r * 13) % 40,
                r % 9 ? "27.5" : "", r % 5 == 0);
    fclose(f);
    stats_table_t *whole, *schema, *want;
    cr_assert_eq(stats_read_csv(path, &whole, NULL, 0), STATS_OK);
    char err[256] = "";
    cr_assert_eq(stats_spec_derive(whole, "group:sex,table:smoker:chd,hist:age:30:50:70,quantile:age:0.5,moments:bmi,"
                                          "regress:chd~age+bmi", &schema, err, sizeof err),
                 STATS_OK, "%s", err);
    stats_layout_t lay = {0};
    lay.ncols = schema->ncols;
    memcpy(lay.names, schema->names, sizeof schema->names);
    cr_assert_eq(stats_derive_like(whole, &lay, &want, err, sizeof err), STATS_OK, "%s", err);
    stats_csv_t *r;
    cr_assert_eq(stats_csv_open(path, &r, err, sizeof err), STATS_OK, "%s", err);
    size_t row = 0;
    for (;;) {
        stats_table_t *block, *got;
        size_t *lines;
        cr_assert_eq(stats_csv_next(r, 7, &block, &lines), STATS_OK, "%s", err);
        if (!block->nrows) {
            stats_table_free(block);
            free(lines);
            break;
        }
        cr_assert_eq(block->first_row, row);
        cr_assert_eq(lines[0], row + 2);
        cr_assert_eq(stats_derive_like(block, &lay, &got, err, sizeof err), STATS_OK, "rows from %zu: %s", row, err);
        for (size_t i = 0; i < got->nrows; i++)
            for (size_t c = 0; c < got->ncols; c++) {
                double a = stats_value(got, i, c), b = stats_value(want, row + i, c);
                cr_assert(a == b || (isnan(a) && isnan(b)), "row %zu, column %s: %g, the whole table's %g", row + i,
                          got->names[c], a, b);
            }
        row += block->nrows;
        stats_table_free(got);
        stats_table_free(block);
        free(lines);
    }
    cr_assert_eq(row, 100);
    stats_csv_close(r);
    stats_table_free(want);
    stats_table_free(schema);
    stats_table_free(whole);
    test_sh("rm -rf %s", dir);
}

/* One row at a time reads what the whole read does: a byte-order mark, CRLF,
 * a blank line, quoted commas and a quoted line break (the rows' lines
 * included), a factor's texts; an error in a later block names its line. */
Test(stream, csv_blocks_read_like_the_whole_file)
{
    char dir[] = "/tmp/hestat-csvblk-XXXXXX", path[64], err[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.csv", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("\xef\xbb\xbfid,\"na,me\",v\r\n1,\"M\",2.5\r\n\r\n2,\"F\",NA\r\n3,\"line\nbreak\",\r\n4,M,1e3\r\n", f);
    fclose(f);
    stats_table_t *whole;
    size_t *wlines;
    cr_assert_eq(stats_read_csv_lines(path, &whole, &wlines, err, sizeof err), STATS_OK, "%s", err);
    cr_assert_eq(whole->nrows, 4);
    cr_assert_str_eq(whole->names[1], "na,me");
    stats_csv_t *r;
    cr_assert_eq(stats_csv_open(path, &r, err, sizeof err), STATS_OK, "%s", err);
    for (size_t row = 0;; row++) {
        stats_table_t *b;
        size_t *lines;
        cr_assert_eq(stats_csv_next(r, 1, &b, &lines), STATS_OK, "%s", err);
        if (!b->nrows) {
            cr_assert_eq(row, 4);
            stats_table_free(b);
            free(lines);
            break;
        }
        cr_assert_eq(lines[0], wlines[row]);
        cr_assert_str_eq(stats_factor_level(b, 1, 0), stats_factor_level(whole, 1, row));
        for (size_t c = 0; c < 3; c += 2) {
            double x = stats_value(b, 0, c), y = stats_value(whole, row, c);
            cr_assert(x == y || (isnan(x) && isnan(y)), "row %zu, column %zu", row, c);
        }
        stats_table_free(b);
        free(lines);
    }
    cr_assert_eq(wlines[3], 7);
    stats_csv_close(r);
    stats_table_free(whole);
    free(wlines);
    /* Text in the numeric column v on line 4: found by the block that reaches it. */
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("id,v\n1,2\n2,3\n3,x\n", f);
    fclose(f);
    cr_assert_eq(stats_csv_open(path, &r, err, sizeof err), STATS_OK, "%s", err);
    stats_table_t *b;
    cr_assert_eq(stats_csv_next(r, 2, &b, NULL), STATS_OK);
    cr_assert_eq(b->nrows, 2);
    stats_table_free(b);
    cr_assert_eq(stats_csv_next(r, 2, &b, NULL), STATS_ECSV);
    cr_assert_null(b);
    cr_assert_not_null(strstr(err, "t.csv:4: column 2 (v): 'x' is not a number"), "%s", err);
    stats_csv_close(r);
    test_sh("rm -rf %s", dir);
}

/* Reports of two value columns: every row's label equal, every value within
 * 1e-5 (relative, or absolute below 1; a standard deviation's square), the
 * noise of two encryptions. Returns the rows compared. */
static size_t same_report(const char *a, const char *b)
{
    FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
    cr_assert(fa && fb);
    char la[512], lb[512];
    size_t n = 0;
    while (fgets(la, sizeof la, fa)) {
        cr_assert_not_null(fgets(lb, sizeof lb, fb), "%s ends before %s", b, a);
        char *ca = strrchr(la, ','), *cb = strrchr(lb, ',');
        cr_assert(ca && cb);
        *ca++ = 0, *cb++ = 0;
        cr_assert_str_eq(la, lb);
        if (n++ == 0) continue; /* the header */
        double x = strtod(ca, NULL), y = strtod(cb, NULL);
        if (isnan(x) || isnan(y)) {
            cr_assert(isnan(x) && isnan(y), "%s: %s and %s", la, ca, cb);
            continue;
        }
        if (!strncmp(la, "sd,", 3)) x *= x, y *= y; /* an sd near 0 is the root of the noise */
        cr_assert_leq(fabs(x - y), 1e-5 * fmax(1, fabs(y)), "%s: %.17g (blocks), %.17g (whole table)", la, x, y);
    }
    cr_assert_null(fgets(lb, sizeof lb, fb), "%s ends after %s", b, a);
    fclose(fa);
    fclose(fb);
    return n;
}

/* encrypt's blocks against the whole table (read, derived and encrypted at
 * once by stats_table_write_file, the path encrypt took before): a table of
 * factors (one missing in its first blocks), groups, a contingency table, a
 * histogram and quantiles, 1,000 rows in 8 blocks; both computed and
 * decrypted, the reports agree within the encryptions' noise. */
Test(stream, encrypt_blocks_report_like_the_whole_table, .timeout = 120)
{
    char dir[] = "/tmp/hestat-encsame-XXXXXX", path[96];
    cr_assert_not_null(mkdtemp(dir));
    char C[4096], S[4096];
    cr_assert_not_null(realpath(test_bin("hestat-client"), C));
    cr_assert_not_null(realpath(test_bin("hestat-server"), S));
    snprintf(path, sizeof path, "%s/t.csv", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "sex,smoker,age,bmi,chd\n");
    static const char *sm[3] = {"never", "former", "current"};
    for (int r = 0; r < 1000; r++)
        fprintf(f, "%s,%s,%d,%.1f,%d\n", r % 3 ? "M" : "F", r < 300 || r % 11 == 0 ? "NA" : sm[r % 3],
                30 + (r * 13) % 40, 18 + (r * 7) % 150 / 10.0, r % 5 == 0);
    fclose(f);
    const char *spec = "group:sex,table:smoker:chd,hist:age:30:50:70,quantile:age:0.25;0.5;0.75";
    cr_assert_eq(test_sh("cd %s && %s keygen --schema t.csv --keys k --stats '%s' >/dev/null && "
                         "%s encrypt --study k/study.hst --in t.csv --out blocks.hst",
                         dir, C, spec, C),
                 0);
    /* The whole table, as encrypt did before. */
    snprintf(path, sizeof path, "%s/k/study.hst", dir);
    void *buf;
    size_t len;
    cr_assert_eq(ckks_file_read(path, (size_t)1 << 30, &buf, &len), CKKS_OK);
    stats_study_t *s;
    cr_assert_eq(stats_study_read(buf, len, &s, NULL), STATS_OK);
    free(buf);
    stats_table_t *raw, *t;
    snprintf(path, sizeof path, "%s/t.csv", dir);
    cr_assert_eq(stats_read_csv(path, &raw, NULL, 0), STATS_OK);
    cr_assert_eq(stats_derive_like(raw, &s->layout, &t, NULL, 0), STATS_OK);
    stats_layout_t lay = s->layout;
    lay.nrows = t->nrows;
    lay.chunks = (t->nrows + lay.rows_per_ct - 1) / lay.rows_per_ct;
    cr_assert_geq(lay.chunks, 4, "%zu chunks: too few blocks to compare", lay.chunks);
    snprintf(path, sizeof path, "%s/whole.hst", dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(stats_table_write_file(s, f, t, &lay, 0x1p40, NULL, NULL), STATS_OK);
    cr_assert_eq(fclose(f), 0);
    stats_table_free(t);
    stats_table_free(raw);
    stats_study_free(s);
    for (int i = 0; i < 2; i++) {
        const char *x = i ? "whole" : "blocks";
        cr_assert_eq(test_sh("cd %s && %s job --study k/study.hst --out %s.job %s.hst >/dev/null && "
                             "%s compute %s.job --out %s.res >/dev/null && "
                             "%s decrypt --keys k --in %s.res --out %s.csv --stats '%s' >/dev/null",
                             dir, C, x, x, S, x, x, C, x, x, spec),
                     0);
    }
    char a[96], b[96];
    snprintf(a, sizeof a, "%s/blocks.csv", dir);
    snprintf(b, sizeof b, "%s/whole.csv", dir);
    cr_assert_gt(same_report(a, b), 50);
    cr_expect_eq(test_sh("grep -q '^count,smoker:chd,smoker=never;chd=1,' %s && grep -q '^quantile,age,p=0.5,' %s", a,
                         a),
                 0);
    test_sh("rm -rf %s", dir);
}
