/* Disclosure control (issue 12, item 5): the study's policy suppresses small
 * counts and under-determined models in the report, is fixed at keygen, and
 * cannot be changed on an existing study without breaking its digest. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats/stats.h"
#include "testutil.h"

#define run test_sh

/* Whether the report at path has a line starting with `line`. */
static int has(const char *path, const char *line)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char buf[512];
    int found = 0;
    size_t n = strlen(line);
    while (!found && fgets(buf, sizeof buf, f)) found = !strncmp(buf, line, n);
    fclose(f);
    return found;
}

/* 40 rows: x, y, z numbers (z missing on 28 rows: 12 complete cases for
 * x~y+z), rare 0/1 with two 1s, cat 1/2 with a 2 on two rows. */
static void write_table(const char *path)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "x,y,z,rare,cat\n");
    for (int r = 0; r < 40; r++) {
        fprintf(f, "%d,%d,", 10 + (r * 7) % 23, (r * 5) % 11);
        if (r < 12) fprintf(f, "%d,", (r * 3) % 7);
        else fprintf(f, "NA,");
        fprintf(f, "%d,%d\n", r == 3 || r == 17, r == 5 || r == 6 ? 2 : 1);
    }
    fclose(f);
}

#define SPEC "group:rare,group:cat,ttest:x:rare,table:cat:rare,hist:x:0:11:40,regress:x~y+z"

Test(disclosure, small_counts_are_na_with_the_reason, .timeout = 120)
{
    char dir[] = "/tmp/hestat-disclosure-XXXXXX", csv[96], rep[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/t.csv", dir);
    write_table(csv);
    const char *C = test_bin("hestat-client");
    cr_assert_eq(run("%s run --csv %s --out %s/a --stats '" SPEC "' > /dev/null", C, csv, dir), 0);
    snprintf(rep, sizeof rep, "%s/a/decrypted_results.csv", dir);
    /* The policy in force opens the report. */
    cr_expect(has(rep, "policy,min_cell,,3,"));
    cr_expect(has(rep, "policy,min_n_per_param,,3.03030303030303,"));
    /* The group of two: NA and why; the group of 38 released. */
    cr_expect(has(rep, "count,x,rare=1,NA,"));
    cr_expect(has(rep, "suppressed:count:min_cell,x,rare=1,3,"));
    cr_expect(has(rep, "mean,x,rare=1,NA,"));
    cr_expect(has(rep, "suppressed:mean:min_cell,x,rare=1,3,"));
    cr_expect(has(rep, "count,x,rare=0,38,"));
    /* The 0/1 column rare within cat's groups: its mean there is a cell of
     * their table (2 ones among cat=1's 38 rows), so it is NA, its count not. */
    cr_expect(has(rep, "count,rare,cat=1,38,"));
    cr_expect(has(rep, "mean,rare,cat=1,NA,"));
    cr_expect(has(rep, "suppressed:mean:min_cell,rare,cat=1,3,"));
    cr_expect(has(rep, "mean,x,cat=1,"));
    cr_expect(!has(rep, "mean,x,cat=1,NA"));
    /* rare's own mean (2 of 40) and its correlations, the t-test by it. */
    cr_expect(has(rep, "mean,rare,,NA,"));
    cr_expect(has(rep, "count,rare,,40,"));
    cr_expect(has(rep, "corr,x:rare,,NA,"));
    cr_expect(has(rep, "suppressed:corr:min_cell,x:rare,,3,"));
    cr_expect(has(rep, "t,x,welch:rare,NA,"));
    cr_expect(has(rep, "suppressed:p:min_cell,x,pooled:rare,3,"));
    /* A table with cells of 1 and 2: those cells and the test NA. */
    cr_expect(has(rep, "count,cat:rare,cat=2;rare=1,"), "the cell cat=2, rare=1 is 0: released");
    cr_expect(has(rep, "count,cat:rare,cat=1;rare=1,NA,"));
    cr_expect(has(rep, "count,cat:rare,cat=2;rare=0,NA,"));
    cr_expect(has(rep, "count,cat:rare,cat=1;rare=0,36,"));
    cr_expect(has(rep, "chisq,cat:rare,,NA,"));
    cr_expect(has(rep, "suppressed:chisq:min_cell,cat:rare,,3,"));
    /* Histogram bins: x in [0:11) holds 2 values (10 twice). */
    cr_expect(has(rep, "hist,x in [0:11),,NA,"));
    cr_expect(has(rep, "suppressed:hist:min_cell,x in [0:11),,3,"));
    cr_expect(has(rep, "hist,x in [11:40],,38,"));
    /* 12 complete cases for 3 parameters: 12 >= 3.03 * 3, released. */
    cr_expect(has(rep, "n,x~y+z,,12,"));
    cr_expect(!has(rep, "coef,x~y+z,(intercept),NA"));

    /* A stricter model rule, a laxer count rule: set at keygen. */
    cr_assert_eq(run("%s run --csv %s --out %s/b --min-cell 2 --min-n-per-param 5 --stats '" SPEC "' > /dev/null", C,
                     csv, dir), 0);
    snprintf(rep, sizeof rep, "%s/b/decrypted_results.csv", dir);
    cr_expect(has(rep, "policy,min_cell,,2,"));
    cr_expect(has(rep, "count,x,rare=1,2,"));
    cr_expect(has(rep, "coef,x~y+z,(intercept),NA,"));
    cr_expect(has(rep, "suppressed:coef:min_n_per_param,x~y+z,(intercept),5,"));
    cr_expect(has(rep, "n,x~y+z,,12,"));

    /* Off: every count released. */
    cr_assert_eq(run("%s run --csv %s --out %s/c --min-cell 0 --min-n-per-param 0 --stats '" SPEC "' > /dev/null", C,
                     csv, dir), 0);
    snprintf(rep, sizeof rep, "%s/c/decrypted_results.csv", dir);
    cr_expect(!has(rep, "suppressed:"));
    cr_expect(has(rep, "count,cat:rare,cat=1;rare=1,2,"));
    /* Bad settings are usage errors. */
    cr_expect_eq(run("%s keygen --schema %s --keys %s/k --min-cell 2.5 2>/dev/null", C, csv, dir), 2);
    cr_expect_eq(run("%s keygen --schema %s --keys %s/k --min-n-per-param -1 2>/dev/null", C, csv, dir), 2);
    run("rm -rf %s", dir);
}

static void *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(*len);
    cr_assert_eq(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void save(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* The policy is part of the study: every party reads it from the study file,
 * and an analyst who rewrites it has another study, whose digest no table or
 * result of the real one matches. */
Test(disclosure, policy_cannot_be_changed_on_an_existing_study, .timeout = 120)
{
    char dir[] = "/tmp/hestat-disclosure-XXXXXX", csv[96], path[160];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/t.csv", dir);
    write_table(csv);
    const char *C = test_bin("hestat-client");
    cr_assert_eq(run("%s run --csv %s --out %s/a --min-cell 5 --stats group:rare > /dev/null", C, csv, dir), 0);
    snprintf(path, sizeof path, "%s/a/keys/study.hst", dir);
    size_t len, rlen;
    void *buf = load(path, &len);
    stats_study_t *s;
    cr_assert_eq(stats_study_read(buf, len, &s, NULL), STATS_OK);
    cr_expect_eq(s->layout.policy.min_cell, 5);
    cr_expect_float_eq(s->layout.policy.min_n_per_param, 1 / 0.33, 1e-15);
    cr_expect_eq(s->layout.policy.legacy, 0);
    /* Every party can read it from the study file. */
    cr_expect_eq(run("%s show --study %s | grep -q 'disclosure policy: min_cell 5 (counts 1..4 are never released), "
                     "min_n_per_param 3.03030303030303'", C, path), 0);
    /* and its keys: the folds' keys serve two primes, the others every level */
    cr_expect_eq(run("%s show --study %s | grep -q 'parameters: N = 8192, data primes of 60, 40, 40 bits, special "
                     "prime of 60 bits'", C, path), 0);
    cr_expect_eq(run("%s show --study %s | grep -Eq '^evaluation keys: relinearization; Galois, rotations by 1, .* and "
                     "conjugation at every level \\(3 primes\\); [0-9, ]+ up to 2 primes$'", C, path), 0);
    snprintf(path, sizeof path, "%s/a/result.hst", dir);
    void *result = load(path, &rlen);
    stats_enc_result_t *r;
    cr_expect_eq(stats_result_read(s, result, rlen, &r), STATS_OK);
    stats_enc_result_free(r);

    /* Rewritten with the policy off (valid frames, checksums and all). */
    s->layout.policy.min_cell = 0;
    void *forged;
    size_t flen;
    cr_assert_eq(stats_study_write(s, &forged, &flen), STATS_OK);
    stats_study_t *f;
    cr_assert_eq(stats_study_read(forged, flen, &f, NULL), STATS_OK);
    cr_expect_eq(f->layout.policy.min_cell, 0);
    cr_expect_neq(memcmp(f->digest, s->digest, 32), 0, "the policy is covered by the study digest");
    cr_expect_eq(stats_result_read(f, result, rlen, &r), STATS_ESCHEMA);
    cr_expect(strstr(stats_error(), "another study") != NULL, "%s", stats_error());
    stats_study_free(f);
    /* The CLI refuses the real result with the forged study. */
    snprintf(path, sizeof path, "%s/a/keys/study.hst", dir);
    save(path, forged, flen);
    cr_expect_eq(run("%s decrypt --keys %s/a/keys --in %s/a/result.hst --out %s/x.csv 2> %s/err", C, dir, dir, dir,
                     dir), 1);
    cr_expect_eq(run("grep -q 'another study' %s/err && test ! -e %s/x.csv", dir, dir), 0);
    /* Bytes changed in place break the schema frame's checksum. */
    save(path, buf, len);
    unsigned char *p = memmem(buf, len, "policy1", 8);
    cr_assert_not_null(p);
    p[8] = 0;
    cr_expect_neq(stats_study_read(buf, len, &f, NULL), STATS_OK);
    free(forged);
    free(result);
    free(buf);
    stats_study_free(s);
    run("rm -rf %s", dir);
}

/* A study file of before policies (its schema frame without the policy) is
 * read with the default policy and written back byte for byte, so its
 * digest, and the tables and results bound to it, stay valid. */
Test(disclosure, legacy_study_gets_the_default_policy, .timeout = 120)
{
    char dir[] = "/tmp/hestat-disclosure-XXXXXX", csv[96], path[160];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/t.csv", dir);
    write_table(csv);
    cr_assert_eq(run("%s keygen --schema %s --keys %s/k --min-cell 7", test_bin("hestat-client"), csv, dir), 0);
    snprintf(path, sizeof path, "%s/k/study.hst", dir);
    size_t len;
    void *buf = load(path, &len);
    stats_study_t *s, *old;
    cr_assert_eq(stats_study_read(buf, len, &s, NULL), STATS_OK);
    s->layout.policy.legacy = 1; /* written as before policies */
    void *lb, *again;
    size_t llen, alen;
    cr_assert_eq(stats_study_write(s, &lb, &llen), STATS_OK);
    cr_expect_eq(llen, len - 24, "the policy takes 24 bytes of the schema frame");
    cr_assert_eq(stats_study_read(lb, llen, &old, NULL), STATS_OK);
    cr_expect_eq(old->layout.policy.legacy, 1);
    cr_expect_eq(old->layout.policy.min_cell, STATS_POLICY_MIN_CELL);
    cr_assert_eq(stats_study_write(old, &again, &alen), STATS_OK);
    cr_expect(alen == llen && !memcmp(again, lb, llen), "a legacy study is written back unchanged");
    free(again);
    free(lb);
    free(buf);
    stats_study_free(old);
    stats_study_free(s);
    run("rm -rf %s", dir);
}
