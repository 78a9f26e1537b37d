/* Quantiles from encrypted bin counts and skewness/kurtosis from encrypted
 * third and fourth power sums (issue 12, item 3), end to end through
 * hestat-client run, against R and against long double on the plaintext.
 *
 * The reference numbers below were computed once by R, not by hestat:
 * R 4.2.2 Patched (2022-11-10 r83330), Debian 12's r-base-core, running
 * tests/r/quantile_reference.R on
 *   - `hestat-client sample --rows 3000 --seed 7 --out t.csv`, and
 *   - ../shared/data/framingham_heart_disease_raw.csv (the real table; that
 *     test is skipped when the file is absent).
 * It prints quantile(x, c(0.25, 0.5, 0.75), type = 7, na.rm = TRUE) and the
 * moments package's skewness and kurtosis written out in base R. R is not
 * needed to run the tests.
 *
 * Bounds: each quantile within the bin width the report states (the method's
 * bound; measured errors are in the log); skewness within 1e-5 relative (1e-5
 * absolute when |skewness| < 1) and kurtosis within 1e-5 relative of R, whose
 * values long double on the plaintext reproduces to 1e-12. Measured on the real
 * table: skewness 1.1e-6..1.5e-6, kurtosis 0.9e-6..2.6e-6 relative. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats/stats.h"
#include "testutil.h"

#define run test_sh

typedef struct {
    double quartiles[3][3];   /* sysBP, BMI, glucose */
    double shape[3][2];       /* sysBP, totChol, glucose: skewness, kurtosis */
} reference_t;

static const char *qcols[3] = {"sysBP", "BMI", "glucose"}, *mcols[3] = {"sysBP", "totChol", "glucose"};

static const reference_t sample_ref = {
    {{115, 128.5, 142.5}, {22.77, 25.585000000000001, 28.27}, {70, 82, 94}},
    {{0.1690786852992085, 2.6884469045969341},
     {-0.0033387638257965238, 2.9146233843985354},
     {0.6151195622663006, 4.4840978011148982}},
};

static const reference_t framingham_ref = {
    {{117, 128, 144}, {23.07, 25.399999999999999, 28.039999999999999}, {71, 78, 87}},
    {{1.1448798241135858, 5.1526664938197948},
     {0.87156840335225616, 7.123531157549543},
     {6.2125279364755031, 61.626012836692716}},
};

/* The value of the report row that starts with `key` (NAN when absent or NA). */
static double value_of(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char line[512];
    double v = NAN;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) {
            v = strncmp(line + n, "NA", 2) ? strtod(line + n, NULL) : NAN;
            break;
        }
    fclose(f);
    return v;
}

static double report_value(const char *path, const char *key)
{
    double v = value_of(path, key);
    cr_assert(!isnan(v), "no row %s in %s", key, path);
    return v;
}

static void check_against_r(const char *csv, const reference_t *ref)
{
    char dir[] = "/tmp/hestat-quantile-XXXXXX", rep[160];
    cr_assert_not_null(mkdtemp(dir));
    const char *C = test_bin("hestat-client");
    stats_table_t *t;
    cr_assert_eq(stats_read_csv(csv, &t, NULL, 0), STATS_OK);
    /* The three quantiles fill the study to 64 columns; the moments go in a second run. */
    cr_assert_eq(run("%s run --csv %s --out %s/q --stats 'quantile:sysBP:0.25,0.5,0.75,quantile:BMI:0.25,0.5,0.75,"
                     "quantile:glucose:0.25,0.5,0.75' > /dev/null", C, csv, dir), 0);
    snprintf(rep, sizeof rep, "%s/q/decrypted_results.csv", dir);
    static const char *ps[3] = {"0.25", "0.5", "0.75"};
    for (int c = 0; c < 3; c++) {
        char key[96];
        snprintf(key, sizeof key, "bin_width,%s,,", qcols[c]);
        double w = report_value(rep, key), worst = 0;
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "quantile,%s,p=%s,", qcols[c], ps[i]);
            double q = report_value(rep, key), want = ref->quartiles[c][i];
            long double plain = stats_reference_quantile(t, (size_t)stats_column(t, qcols[c]), atof(ps[i]));
            cr_expect_eq((double)plain, want, "%s: long double %.17Lg, R %.17g", key, plain, want);
            cr_expect(fabs(q - want) < w, "%s %.17g, R %.17g: more than the bin width %g apart", key, q, want, w);
            worst = fmax(worst, fabs(q - want));
        }
        cr_log_info("%s: quartiles of %s within %.3g of R's (bin width %.4g)", csv, qcols[c], worst, w);
    }
    cr_assert_eq(run("%s run --csv %s --out %s/m --stats 'moments:sysBP,moments:totChol,moments:glucose' > /dev/null",
                     C, csv, dir), 0);
    snprintf(rep, sizeof rep, "%s/m/decrypted_results.csv", dir);
    for (int c = 0; c < 3; c++) {
        char key[96];
        stats_shape_t plain;
        cr_assert_eq(stats_reference_shape(t, (size_t)stats_column(t, mcols[c]), &plain), STATS_OK);
        snprintf(key, sizeof key, "skewness,%s,,", mcols[c]);
        double s = report_value(rep, key), ws = ref->shape[c][0];
        snprintf(key, sizeof key, "kurtosis,%s,,", mcols[c]);
        double k = report_value(rep, key), wk = ref->shape[c][1];
        cr_expect(fabs(s - ws) <= 1e-5 * fmax(1, fabs(ws)), "skewness %s: %.17g, R %.17g", mcols[c], s, ws);
        cr_expect(fabs(k - wk) <= 1e-5 * wk, "kurtosis %s: %.17g, R %.17g", mcols[c], k, wk);
        cr_expect(fabsl(plain.skewness - ws) <= 1e-12 && fabsl(plain.kurtosis - wk) <= 1e-12 * wk,
                  "long double reference of %s differs from R", mcols[c]);
        cr_log_info("%s: %s skewness %.3g, kurtosis %.3g relative from R's", csv, mcols[c], fabs(s - ws) / fabs(ws),
                    fabs(k - wk) / wk);
    }
    stats_table_free(t);
    run("rm -rf %s", dir);
}

Test(quantile, sample_table_against_r, .timeout = 300)
{
    char dir[] = "/tmp/hestat-quantile-XXXXXX", csv[96];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/t.csv", dir);
    cr_assert_eq(run("%s sample --rows 3000 --seed 7 --out %s", test_bin("hestat-client"), csv), 0);
    check_against_r(csv, &sample_ref);
    run("rm -rf %s", dir);
}

Test(quantile, framingham_against_r, .timeout = 300)
{
    const char *csv = "../shared/data/framingham_heart_disease_raw.csv";
    if (access(csv, R_OK)) cr_skip_test("%s is absent", csv);
    check_against_r(csv, &framingham_ref);
}

/* The probabilities stay in their token; other statistics are split off. */
Test(quantile, spec_join)
{
    char s[] = "mean,quantile:sysBP:0.25,0.5,.75,hist:BMI:1:2,quantile:age:0.1,0.9,moments:age";
    stats_spec_join(s);
    cr_expect_str_eq(s, "mean,quantile:sysBP:0.25;0.5;.75,hist:BMI:1:2,quantile:age:0.1;0.9,moments:age");
    double p[8];
    size_t n;
    cr_expect_eq(stats_quantile_probs("0.25;0.5;.75", p, 8, &n), STATS_OK);
    cr_expect_eq(n, 3);
    cr_expect_eq(p[2], 0.75);
    cr_expect_eq(stats_quantile_probs("0.5;1.5", p, 8, &n), STATS_EINVAL);
    cr_expect_eq(stats_quantile_probs("", p, 8, &n), STATS_EINVAL);
}

/* Type 7 from bins by hand: 10 values 0.5, 1.5, ..., 9.5 in 10 unit bins
 * read back exactly (each bin's one value is placed at its centre). */
Test(quantile, from_bins_by_hand)
{
    stats_bins_t b = {0};
    b.lo = 0;
    b.hi = 10;
    b.bins = 10;
    b.width = 1;
    for (int k = 0; k < 10; k++) b.counts[k] = 1;
    b.n = 10;
    size_t ka, kb;
    /* h = 9 p: p = 0.5 -> between the 5th and 6th values (4.5 and 5.5). */
    cr_expect_float_eq((double)stats_quantile_from_bins(&b, 0.5, &ka, &kb), 5.0, 1e-12);
    cr_expect_eq(ka, 4);
    cr_expect_eq(kb, 5);
    cr_expect_float_eq((double)stats_quantile_from_bins(&b, 0, &ka, &kb), 0.5, 1e-12);
    cr_expect_float_eq((double)stats_quantile_from_bins(&b, 1, &ka, &kb), 9.5, 1e-12);
    cr_expect_float_eq((double)stats_quantile_from_bins(&b, 0.25, &ka, &kb), 2.75, 1e-12);
}

/* Bins of a derived column rebuilt from the name alone: a value on an edge,
 * the maximum (in the last bin), a missing value (0 in every digit). */
Test(quantile, derive_by_name)
{
    stats_table_t *raw, *t;
    cr_assert_eq(stats_table_new(1, 4, &raw), STATS_OK);
    strcpy(raw->names[0], "x");
    raw->values[0] = 0;
    raw->values[1] = 64;
    raw->values[2] = 40.0; /* bin 40 of 64: digits 5, 0 */
    raw->values[3] = NAN;
    cr_assert_eq(stats_spec_derive(raw, "quantile:x:0.5,moments:x", &t, NULL, 0), STATS_OK);
    cr_assert_eq(t->ncols, 1 + 16 + 2);
    cr_expect_str_eq(t->names[1], "x q[0:64]/8x8 hi=0");
    cr_expect_str_eq(t->names[16], "x q[0:64]/8x8 lo=7");
    cr_expect_str_eq(t->names[17], "(x-34.7)^2"); /* centred at the mean, 3 digits */
    cr_expect_eq(stats_value(t, 0, 1), 1);               /* 0: hi=0 */
    cr_expect_eq(stats_value(t, 1, 1 + 7), 1);           /* 64: hi=7 */
    cr_expect_eq(stats_value(t, 1, 1 + 8 + 7), 1);       /* and lo=7 */
    cr_expect_eq(stats_value(t, 2, 1 + 5), 1);           /* 40: hi=5 */
    cr_expect_eq(stats_value(t, 2, 1 + 8 + 0), 1);       /* lo=0 */
    cr_expect_str_eq(t->names[18], "(x-34.7)^2 again");
    cr_expect_eq(stats_value(t, 2, 17), (40 - 34.7) * (40 - 34.7));
    cr_expect_eq(stats_value(t, 2, 18), (40 - 34.7) * (40 - 34.7));
    for (size_t c = 1; c < 17; c++) cr_expect_eq(stats_value(t, 3, c), 0);
    cr_expect(isnan(stats_value(t, 3, 17)) && isnan(stats_value(t, 3, 18)));
    stats_layout_t lay = {0};
    lay.ncols = t->ncols;
    memcpy(lay.names, t->names, sizeof lay.names[0] * t->ncols);
    stats_table_t *again;
    cr_assert_eq(stats_derive_like(raw, &lay, &again, NULL, 0), STATS_OK);
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        cr_expect(again->values[i] == t->values[i] || (isnan(again->values[i]) && isnan(t->values[i])), "%zu", i);
    stats_table_free(again);
    stats_table_free(t);
    cr_expect_eq(stats_spec_derive(raw, "quantile:x:2", &t, NULL, 0), STATS_EINVAL);
    cr_expect_eq(stats_spec_derive(raw, "quantile:nope:0.5", &t, NULL, 0), STATS_EINVAL);
    stats_table_free(raw);
}

/* The same statistics over HTTP: hestat-client run --server against a real
 * hestat-server (which computes what it always does; the client finishes). */
Test(quantile, over_http, .timeout = 180)
{
    char dir[] = "/tmp/hestat-quantile-XXXXXX", spool[96], log[96], base[128], rep[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(log, sizeof log, "%s/server.log", dir);
    const char *args[] = {NULL};
    int pid = test_server_start(spool, log, base, sizeof base, args);
    cr_assert_gt(pid, 0, "server did not start");
    int rc = run("%s run --rows 800 --out %s/h --server %s --stats 'quantile:sysBP:0.5,0.9,moments:BMI' > /dev/null",
                 test_bin("hestat-client"), dir, base);
    test_server_stop(pid, SIGTERM);
    cr_assert_eq(rc, 0);
    snprintf(rep, sizeof rep, "%s/h/decrypted_results.csv", dir);
    stats_table_t *t;
    char csv[128];
    snprintf(csv, sizeof csv, "%s/h/sample.csv", dir);
    cr_assert_eq(stats_read_csv(csv, &t, NULL, 0), STATS_OK);
    double w = report_value(rep, "bin_width,sysBP,,");
    double q = report_value(rep, "quantile,sysBP,p=0.9,");
    long double want = stats_reference_quantile(t, (size_t)stats_column(t, "sysBP"), 0.9);
    cr_expect(fabsl(q - want) < w, "p=0.9: %.17g, plaintext %.17Lg, bin width %g", q, want, w);
    stats_shape_t s;
    cr_assert_eq(stats_reference_shape(t, (size_t)stats_column(t, "BMI"), &s), STATS_OK);
    double k = report_value(rep, "kurtosis,BMI,,");
    cr_expect(fabsl(k - s.kurtosis) <= 1e-5L * s.kurtosis, "kurtosis %.17g, plaintext %.17Lg", k, s.kurtosis);
    cr_expect(!isnan(value_of(rep, "policy,min_cell,,")));
    stats_table_free(t);
    run("rm -rf %s", dir);
}
