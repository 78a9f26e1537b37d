/* hestat-client and hestat-server (file mode) end to end, as a user runs
 * them: two contributors' halves of a table, one job, the server's compute,
 * the analyst's decryption compared with the plaintext statistics. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "stats/stats.h"
#include "testutil.h"

static char dir[64];

#define run test_sh

Test(cli, two_contributors_job_compute_decrypt, .timeout = 300)
{
    strcpy(dir, "/tmp/hestat-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const char *C = test_bin("hestat-client"), *S = test_bin("hestat-server");
    cr_assert_eq(run("%s sample --rows 2000 --seed 3 --out %s/full.csv", C, dir), 0);
    /* Split into two contributors' files. */
    char path[256];
    snprintf(path, sizeof path, "%s/full.csv", dir);
    stats_table_t *full, *h;
    cr_assert_eq(stats_read_csv(path, &full, NULL, 0), STATS_OK);
    for (int part = 0; part < 2; part++) {
        size_t rows = part ? 800 : 1200, start = part ? 1200 : 0;
        cr_assert_eq(stats_table_new(16, rows, &h), STATS_OK);
        memcpy(h->names, full->names, sizeof full->names);
        memcpy(h->values, full->values + start * 16, rows * 16 * sizeof(double));
        snprintf(path, sizeof path, "%s/part%d.csv", dir, part);
        cr_assert_eq(stats_write_csv(h, path), STATS_OK);
        stats_table_free(h);
    }
    stats_table_free(full);
    cr_assert_eq(run("%s keygen --schema %s/full.csv --keys %s/keys", C, dir, dir), 0);
    struct stat st;
    snprintf(path, sizeof path, "%s/keys/secret.key", dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "secret key mode %o", st.st_mode & 0777);
    for (int part = 0; part < 2; part++)
        cr_assert_eq(run("%s encrypt --study %s/keys/study.hst --in %s/part%d.csv --out %s/part%d.hst", C, dir,
                         dir, part, dir, part), 0);
    cr_assert_eq(run("%s job --study %s/keys/study.hst --out %s/job.hst %s/part0.hst %s/part1.hst", C, dir, dir,
                     dir, dir), 0);
    cr_assert_eq(run("%s compute %s/job.hst --out %s/result.hst > /dev/null", S, dir, dir), 0);
    cr_assert_eq(run("%s decrypt --keys %s/keys --in %s/result.hst --out %s/report.csv --compare %s/full.csv", C,
                     dir, dir, dir, dir), 0);
    /* Every mean in the report within 1e-6 of the plaintext (relative, or
     * absolute below 1e-3), every correlation within 1e-5. */
    snprintf(path, sizeof path, "%s/report.csv", dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char line[512];
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_expect_str_eq(line, "statistic,variable,group,value,plaintext,abs_error,rel_error\n");
    size_t means = 0, corrs = 0;
    while (fgets(line, sizeof line, f)) {
        /* statistic,variable,group,value,plaintext,abs_error,rel_error (group may be empty) */
        char *fields[7] = {"", "", "", "0", "0", "0", "0"}, *p = line;
        for (int i = 0; i < 7 && p; i++) {
            fields[i] = p;
            p = strchr(p, ',');
            if (p) *p++ = 0;
        }
        const char *stat = fields[0], *var = fields[1], *group = fields[2];
        double plain = atof(fields[4]), abs_err = atof(fields[5]), rel_err = atof(fields[6]);
        if (!strcmp(stat, "mean") && !group[0]) {
            means++;
            cr_expect(fabs(plain) < 1e-3 ? abs_err <= 1e-6 : rel_err <= 1e-6, "mean %s: %g", var, rel_err);
        }
        if (!strcmp(stat, "corr") && !isnan(plain)) {
            corrs++;
            cr_expect_leq(abs_err, 1e-5, "corr %s", var);
        }
    }
    fclose(f);
    cr_expect_eq(means, 16);
    cr_expect_eq(corrs, 120);
    /* Errors: usage (2), missing file (1), a job carrying a secret key (1). */
    cr_expect_eq(run("%s frobnicate 2>/dev/null", C), 2);
    cr_expect_eq(run("%s encrypt --study %s/nope.hst --in x --out y 2>/dev/null", C, dir), 1);
    cr_expect_eq(run("cat %s/keys/secret.key %s/job.hst > %s/evil.hst && %s compute %s/evil.hst --out %s/x 2>%s/err",
                     dir, dir, dir, S, dir, dir, dir), 1);
    snprintf(path, sizeof path, "%s/err", dir);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(line, sizeof line, f));
    fclose(f);
    cr_expect(strstr(line, "secret key") != NULL, "%s", line);
    cr_expect_eq(run("%s --help > /dev/null && %s --help > /dev/null", C, S), 0);
    /* Statistics by name: categorical groups, a regression, a histogram. */
    cr_assert_eq(run("%s run --rows 3000 --out %s/spec --stats 'mean,var,corr,group:education,regress:sysBP~age+BMI,hist:BMI:15:20:25:30:35:60' > /dev/null",
                     C, dir), 0);
    /* regression coefficients within 1e-4, R^2 within 1e-6, bin counts exact, group means within 1e-6 */
    cr_expect_eq(run("awk -F, '$1==\"coef\" && $7+0 > 1e-4 {bad=1} $1==\"r2\" && $6+0 > 1e-6 {bad=1} "
                     "$1==\"hist\" && $6+0 != 0 {bad=1} $1==\"hist\" {h++} $1==\"coef\" {k++} "
                     "$1==\"mean\" && $3 ~ /education=/ && ($5+0 > 1e-3 || $5+0 < -1e-3) && $7+0 > 1e-6 {bad=1} "
                     "$1==\"mean\" && $3 ~ /education=/ {g++} "
                     "END {exit bad || h != 5 || k != 3 || g < 60}' %s/spec/decrypted_results.csv", dir), 0);
    cr_expect_eq(run("%s keygen --schema %s/full.csv --keys %s/k2 --stats 'regress:nope~age' 2>/dev/null", C, dir, dir), 1);
    run("rm -rf %s", dir);
}

/* Item 1 and 2 of the hardening issue, as a user meets them: two keygens from
 * the same CSV with the same parameters are two studies; nothing of one is
 * accepted by the other, and a secret key of the wrong study is refused
 * before any report is written. */
Test(cli, files_of_another_study_are_refused, .timeout = 300)
{
    char d[64] = "/tmp/hestat-foreign-XXXXXX";
    cr_assert_not_null(mkdtemp(d));
    const char *C = test_bin("hestat-client"), *S = test_bin("hestat-server");
    cr_assert_eq(run("%s sample --rows 500 --seed 8 --out %s/t.csv", C, d), 0);
    cr_assert_eq(run("%s keygen --schema %s/t.csv --keys %s/a", C, d, d), 0);
    cr_assert_eq(run("%s keygen --schema %s/t.csv --keys %s/b", C, d, d), 0);
    cr_assert_eq(run("%s encrypt --study %s/a/study.hst --in %s/t.csv --out %s/ta.hst", C, d, d, d), 0);
    cr_assert_eq(run("%s encrypt --study %s/b/study.hst --in %s/t.csv --out %s/tb.hst", C, d, d, d), 0);
    /* A job of study a with a table of study b. */
    cr_expect_eq(run("%s job --study %s/a/study.hst --out %s/mixed.hst %s/ta.hst %s/tb.hst 2> %s/err", C, d, d, d,
                     d, d), 1);
    cr_expect_eq(run("grep -q 'another study' %s/err", d), 0, "the message names the mismatch");
    cr_assert_eq(run("%s job --study %s/a/study.hst --out %s/ja.hst %s/ta.hst && %s compute %s/ja.hst --out %s/ra.hst > /dev/null",
                     C, d, d, d, S, d, d), 0);
    /* A result of study a decrypted with study b's keys. */
    cr_expect_eq(run("%s decrypt --keys %s/b --in %s/ra.hst --out %s/rep.csv 2> %s/err", C, d, d, d, d), 1);
    cr_expect_eq(run("grep -q 'another study' %s/err", d), 0);
    cr_expect_neq(run("test -e %s/rep.csv", d), 0, "no report on failure");
    /* Study a with study b's secret key (same parameters). */
    cr_assert_eq(run("mkdir %s/mix && cp %s/a/study.hst %s/mix/ && cp %s/b/secret.key %s/mix/", d, d, d, d, d), 0);
    cr_expect_eq(run("%s decrypt --keys %s/mix --in %s/ra.hst --out %s/rep.csv 2> %s/err", C, d, d, d, d), 1);
    cr_expect_eq(run("grep -q 'secret key' %s/err", d), 0);
    cr_expect_neq(run("test -e %s/rep.csv", d), 0, "no report on failure");
    /* The right keys: counts exact. */
    cr_expect_eq(run("%s decrypt --keys %s/a --in %s/ra.hst --out %s/rep.csv --compare %s/t.csv", C, d, d, d, d), 0);
    cr_expect_eq(run("awk -F, '$1==\"count\" && $3==\"\" && $6+0 != 0 {bad=1} $1==\"count\" {n++} END {exit bad || n < 16}' %s/rep.csv",
                     d), 0);
    run("rm -rf %s", d);
}

/* Wide tables as a user runs them: 400 columns get per-column statistics
 * (--stats means), every mean against the plaintext; pairs on them are
 * refused with the reason and no result file; 70 columns (B = 128) get
 * pairs, every correlation against the plaintext. */
/* A column-major study (keygen --layout columns) end to end against the
 * plaintext; a bad --layout and a glm model in it refused before any key. */
Test(cli, column_major_study_end_to_end, .timeout = 300)
{
    char d[64] = "/tmp/hestat-cols-XXXXXX";
    cr_assert_not_null(mkdtemp(d));
    const char *C = test_bin("hestat-client"), *S = test_bin("hestat-server");
    cr_assert_eq(run("%s sample --rows 3000 --seed 5 --out %s/t.csv > /dev/null && "
                     "%s keygen --schema %s/t.csv --keys %s/k --layout columns > /dev/null && "
                     "%s show --study %s/k/study.hst | grep -q 'layout columns'",
                     C, d, C, d, d, C, d),
                 0);
    cr_assert_eq(run("%s encrypt --study %s/k/study.hst --in %s/t.csv --out %s/t.hst > /dev/null 2>&1 && "
                     "%s job --study %s/k/study.hst --stats all --out %s/j.hst %s/t.hst > /dev/null && "
                     "%s compute %s/j.hst --out %s/r.hst > /dev/null && "
                     "%s decrypt --keys %s/k --in %s/r.hst --out %s/rep.csv --compare %s/t.csv > /dev/null",
                     C, d, d, d, C, d, d, d, S, d, d, C, d, d, d, d),
                 0);
    cr_expect_eq(run("awk -F, '$1==\"corr\" {n++; if ($6+0 > 1e-5) bad=1} "
                     "$1==\"mean\" {m++; if ($7+0 > 1e-6) bad=1} $1==\"count\" && $6+0 != 0 {bad=1} "
                     "END {exit bad || n != 120 || m < 16}' %s/rep.csv",
                     d),
                 0, "120 correlations within 1e-5, means within 1e-6, exact counts (%s/rep.csv)", d);
    cr_expect_eq(run("%s keygen --schema %s/t.csv --keys %s/k2 --layout diagonal > /dev/null 2> %s/err", C, d, d, d), 2);
    cr_expect_eq(run("grep -q 'rows or columns' %s/err", d), 0);
    cr_expect_eq(run("%s keygen --schema %s/t.csv --keys %s/k3 --layout columns "
                     "--stats 'glm:TenYearCHD~age:binomial' > /dev/null 2> %s/err",
                     C, d, d, d),
                 2);
    cr_expect_eq(run("grep -q 'glm fit needs a row-major study' %s/err && test ! -e %s/k3/secret.key", d, d), 0);
    run("rm -rf %s", d);
}

Test(cli, wide_tables_means_and_pairs, .timeout = 600)
{
    char d[64] = "/tmp/hestat-wide-XXXXXX";
    cr_assert_not_null(mkdtemp(d));
    const char *C = test_bin("hestat-client"), *S = test_bin("hestat-server");
    cr_assert_eq(run("%s sample --rows 100 --cols 400 --seed 4 --out %s/w.csv", C, d), 0);
    cr_assert_eq(run("head -1 %s/w.csv | awk -F, '{exit NF != 400 || $1 != \"group\" || $400 != \"x399\"}'", d), 0);
    cr_assert_eq(run("%s keygen --schema %s/w.csv --keys %s/k && %s encrypt --study %s/k/study.hst --in %s/w.csv "
                     "--out %s/t.hst",
                     C, d, d, C, d, d, d),
                 0);
    cr_assert_eq(run("%s job --study %s/k/study.hst --stats means --out %s/j.hst %s/t.hst && "
                     "%s compute %s/j.hst --out %s/r.hst > /dev/null",
                     C, d, d, d, S, d, d),
                 0);
    cr_assert_eq(run("%s decrypt --keys %s/k --in %s/r.hst --out %s/rep.csv --compare %s/w.csv", C, d, d, d, d), 0);
    cr_expect_eq(run("awk -F, '$1==\"mean\" {n++; if ($7+0 > 1e-6) bad=1} $1==\"count\" && $6+0 != 0 {bad=1} "
                     "$1==\"corr\" {bad=1} END {exit bad || n != 400}' %s/rep.csv",
                     d),
                 0, "400 means within 1e-6 of the plaintext, exact counts, no pairs");
    cr_assert_eq(run("%s job --study %s/k/study.hst --stats all --out %s/j2.hst %s/t.hst", C, d, d, d), 0);
    cr_expect_eq(run("%s compute %s/j2.hst --out %s/r2.hst > /dev/null 2> %s/err", S, d, d, d), 1);
    cr_expect_eq(run("grep -q 'at most 256 columns' %s/err", d), 0, "the refusal says why");
    cr_expect_neq(run("test -e %s/r2.hst", d), 0, "no result on failure");
    /* 70 columns (B = 128): every pair. */
    cr_assert_eq(run("cut -d, -f1-70 %s/w.csv > %s/p.csv && %s keygen --schema %s/p.csv --keys %s/kp && "
                     "%s encrypt --study %s/kp/study.hst --in %s/p.csv --out %s/tp.hst && "
                     "%s job --study %s/kp/study.hst --out %s/jp.hst %s/tp.hst && "
                     "%s compute %s/jp.hst --out %s/rp.hst > /dev/null && "
                     "%s decrypt --keys %s/kp --in %s/rp.hst --out %s/repp.csv --compare %s/p.csv --group group",
                     d, d, C, d, d, C, d, d, d, C, d, d, d, S, d, d, C, d, d, d, d),
                 0);
    cr_expect_eq(run("awk -F, '$1==\"corr\" {n++; if ($6+0 > 1e-5) bad=1} "
                     "$1==\"mean\" && $3==\"group=1\" {g++; if ($7+0 > 1e-6) bad=1} "
                     "END {exit bad || n != 70 * 69 / 2 || g != 69}' %s/repp.csv",
                     d),
                 0, "2415 correlations within 1e-5, 69 group means within 1e-6");
    run("rm -rf %s", d);
}
