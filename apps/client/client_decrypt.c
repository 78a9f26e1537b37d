/* hestat-client decrypt: a result to decrypted_results.csv.
 *
 * The report is built in memory (the statistics, then the regressions and
 * histograms asked for with --stats) and written atomically only when every
 * part of it succeeded: on any error nothing appears at --out and an older
 * report there is left as it was. The image of secret.key is wiped as soon
 * as the key is parsed. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apps/client/client.h"

/* Column index of a study column by name, or -1. */
static int layout_column(const stats_layout_t *lay, const char *name)
{
    for (size_t c = 0; c < lay->ncols; c++)
        if (!strcmp(lay->names[c], name)) return (int)c;
    return -1;
}

/* regress:Y~X1+X2 from the study's complete-case columns "cc:Y", "cc:X1", ... */
static int regression_rows(FILE *f, const char *model, const stats_layout_t *lay, const stats_result_t *res,
                           const stats_table_t *cmp)
{
    size_t idx[STATS_MAX_REGRESSORS + 1], n = 0;
    char names[STATS_MAX_REGRESSORS + 1][STATS_NAME_MAX];
    const char *p = model, *tilde = strchr(p, '~');
    while (p && *p) {
        if (n > STATS_MAX_REGRESSORS) return client_fail("--stats", "too many regressors");
        const char *end = n == 0 ? tilde : strchr(p, '+');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char cc[STATS_NAME_MAX + 3];
        snprintf(cc, sizeof cc, "cc:%.*s", (int)len, p);
        snprintf(names[n], STATS_NAME_MAX, "%.*s", (int)len, p);
        int found = layout_column(lay, cc);
        if (found < 0) {
            fprintf(stderr, "hestat-client: --stats regress:%s: the study was not created for this regression "
                    "(no column %s; keygen --stats regress:...); no report written\n", model, cc);
            return 1;
        }
        idx[n++] = (size_t)found;
        p = end ? end + 1 : NULL;
    }
    if (n < 2) return client_fail("--stats", "a regression needs Y~X1+...");
    if (!res->have_pairs) return client_fail("--stats", "a regression needs a result of --stats all, not means");
    stats_regression_t rg, ref;
    if (stats_regress(res, idx[0], idx + 1, n - 1, &rg))
        return client_fail("regression", "singular or too few complete cases");
    int have_ref = cmp && !stats_reference_regress(cmp, idx[0], idx + 1, n - 1, &ref);
    /* Per term coef, se, t and two-sided p (df = n - k - 1), then r2, n, df. */
    long double df = rg.n - (long double)n, want_df = have_ref ? ref.n - (long double)n : 0;
    /* Disclosure control: n parameters (the intercept and k slopes). */
    const char *why = stats_policy_model(&lay->policy, rg.n, n);
    for (size_t i = 0; i < n; i++) {
        const char *term = i == 0 ? "(intercept)" : names[i];
        long double t = rg.coef[i] / rg.se[i], want_t = have_ref ? ref.coef[i] / ref.se[i] : 0;
        stats_report_value(f, lay, why, "coef", model, term, rg.coef[i], cmp != NULL, have_ref ? ref.coef[i] : 0);
        stats_report_value(f, lay, why, "se", model, term, rg.se[i], cmp != NULL, have_ref ? ref.se[i] : 0);
        stats_report_value(f, lay, why, "t", model, term, t, cmp != NULL, want_t);
        stats_report_value(f, lay, why, "p", model, term, stats_t_pvalue(t, df), cmp != NULL,
                            have_ref ? stats_t_pvalue(want_t, want_df) : 0);
    }
    stats_report_value(f, lay, why, "r2", model, "", rg.r2, cmp != NULL, have_ref ? ref.r2 : 0);
    stats_report_value(f, lay, stats_policy_small(&lay->policy, rg.n) ? "min_cell" : NULL, "n", model, "", rg.n,
                        cmp != NULL, have_ref ? ref.n : 0);
    stats_report_value(f, lay, why, "df", model, "", df, cmp != NULL, want_df);
    return 0;
}

/* hist:COL:e0:e1:... from the study's bin columns "COL in [a:b)". */
static int histogram_rows(FILE *f, const char *spec, const stats_layout_t *lay, const stats_result_t *res,
                          const stats_table_t *cmp)
{
    char col[STATS_NAME_MAX];
    snprintf(col, sizeof col, "%s", spec);
    char *colon = strchr(col, ':');
    if (colon) *colon = 0;
    size_t len = strlen(col), bins = 0;
    for (size_t c = 0; c < lay->ncols; c++) {
        if (strncmp(lay->names[c], col, len) || strncmp(lay->names[c] + len, " in [", 5)) continue;
        long double want = 0;
        for (size_t r = 0; cmp && r < cmp->nrows; r++) want += stats_value(cmp, r, c);
        if (stats_policy_small(&lay->policy, res->cols[c].sum)) {
            stats_report_value(f, lay, "min_cell", "hist", lay->names[c], "", 0, cmp != NULL, want);
            bins++;
            continue;
        }
        fprintf(f, "hist,%s,,%.0Lf", lay->names[c], roundl(res->cols[c].sum));
        if (cmp) fprintf(f, ",%.0Lf,%.3Lg,%.3Lg", want, fabsl(roundl(res->cols[c].sum) - want), 0.0L);
        fputc('\n', f);
        bins++;
    }
    if (!bins) {
        fprintf(stderr, "hestat-client: --stats hist:%s: the study has no bins of %s (keygen --stats hist:...); "
                "no report written\n", spec, col);
        return 1;
    }
    return 0;
}

/* Regressions, histograms and tests requested with --stats. */
static int extra_rows(FILE *f, const char *stats, const stats_layout_t *lay, const stats_result_t *res,
                      const stats_table_t *cmp)
{
    if (!stats) return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", stats);
    stats_spec_join(buf);
    char *sv = NULL;
    for (char *tok = strtok_r(buf, ",", &sv); tok; tok = strtok_r(NULL, ",", &sv)) {
        char why[512] = "";
        if (stats_shape_rows(f, tok, lay, res, cmp, why, sizeof why)) {
            fprintf(stderr, "hestat-client: --stats %s: %s; no report written\n", tok, why);
            return 1;
        }
        if (!strncmp(tok, "regress:", 8) && regression_rows(f, tok + 8, lay, res, cmp)) return 1;
        if (!strncmp(tok, "hist:", 5) && histogram_rows(f, tok + 5, lay, res, cmp)) return 1;
        if (client_test_rows(f, tok, lay, res, cmp)) return 1;
    }
    return 0;
}

static int load_secret_key(const char *path, const stats_study_t *s, ckks_secret_key_t **sk)
{
    size_t len;
    void *buf = client_load(path, &len);
    if (!buf) return 1;
    int rc = ckks_read_secret_key(s->ctx, buf, len, sk);
    client_free_secret(buf, len);
    if (rc) return client_fail(path, ckks_strerror(rc));
    rc = stats_study_check_key(s, *sk);
    if (rc) return client_stats_fail(path, rc);
    return 0;
}

static int decrypt_file(const stats_study_t *s, const ckks_secret_key_t *sk, const char *in, stats_result_t *res)
{
    size_t len;
    void *buf = client_load(in, &len);
    if (!buf) return 1;
    stats_enc_result_t *r = NULL;
    int rc = stats_result_read(s, buf, len, &r);
    free(buf);
    if (rc) return client_stats_fail(in, rc);
    if (s->parties && !r->released) {
        stats_enc_result_free(r);
        return client_fail(in, "a result of a multiparty study still under the parties' collective key: it is "
                               "decrypted once every party's key-switch shares have released it to the analyst "
                               "(mp-share, then mp-release)");
    }
    rc = stats_decrypt(s->ctx, sk, r, res);
    stats_enc_result_free(r);
    if (rc) return client_stats_fail("decrypt", rc);
    return 0;
}

/* rows of t after all's (same columns), all's room grown geometrically
 * (*cap rows). */
static int append_rows(stats_table_t *all, size_t *cap, const stats_table_t *t)
{
    if (t->ncols != all->ncols) return STATS_ESCHEMA;
    if (all->nrows + t->nrows > *cap) {
        size_t want = *cap * 2 > all->nrows + t->nrows ? *cap * 2 : all->nrows + t->nrows;
        if (want > SIZE_MAX / sizeof(double) / all->ncols) return STATS_ENOMEM;
        double *v = realloc(all->values, want * all->ncols * sizeof *v);
        if (!v) return STATS_ENOMEM;
        all->values = v;
        *cap = want;
    }
    memcpy(all->values + all->nrows * all->ncols, t->values, t->nrows * t->ncols * sizeof *t->values);
    all->nrows += t->nrows;
    return STATS_OK;
}

/* The plaintext table to compare with, its derived columns rebuilt 4,096
 * rows at a time as encrypt does (every derived column is a function of
 * its row and the study's schema): memory holds the derived table and one
 * block, not the whole raw table beside it. */
static int compare_table(const char *path, const stats_study_t *s, stats_table_t **cmp)
{
    char cerr[256];
    stats_csv_t *r;
    int rc = stats_csv_open(path, &r, cerr, sizeof cerr);
    if (rc) return client_csv_fail(rc, cerr);
    stats_table_t *all = NULL;
    size_t cap = 0;
    int err = 0, last = 0;
    while (!err && !last) {
        stats_table_t *raw = NULL, *t = NULL;
        if ((rc = stats_csv_next(r, 4096, &raw, NULL))) {
            err = client_csv_fail(rc, cerr);
            break;
        }
        last = raw->nrows == 0;
        char derr[256] = "";
        if ((!last || !all) && stats_derive_like(raw, &s->layout, &t, derr, sizeof derr))
            err = client_fail(path, derr[0] ? derr : "its columns differ from the study's schema");
        stats_table_free(raw);
        if (!err && t && !all) {
            all = t;
            cap = t->nrows;
            t = NULL;
        } else if (!err && t && (rc = append_rows(all, &cap, t))) {
            err = rc == STATS_ENOMEM ? client_fail(path, "out of memory for the plaintext table")
                                     : client_fail(path, "its columns differ from the study's schema");
        }
        stats_table_free(t);
    }
    stats_csv_close(r);
    if (err) {
        stats_table_free(all);
        return 1;
    }
    *cmp = all;
    return 0;
}

/* group:COL from --stats and --group: COL itself when 0/1, else its indicator
 * columns "COL=level"; by default TenYearCHD when the schema has it. */
static int group_columns(const client_opts_t *o, const stats_layout_t *lay, int *groups, size_t *ng)
{
    const char *gnames[STATS_MAX_COLS];
    size_t ngn = 0;
    for (size_t i = 0; i < o->ngroups && ngn < STATS_MAX_COLS; i++) gnames[ngn++] = o->groups[i];
    char specbuf[1024];
    snprintf(specbuf, sizeof specbuf, "%s", o->stats ? o->stats : "");
    char *sv = NULL;
    for (char *tok = strtok_r(specbuf, ",", &sv); tok; tok = strtok_r(NULL, ",", &sv))
        if (!strncmp(tok, "group:", 6) && ngn < STATS_MAX_COLS) gnames[ngn++] = tok + 6;
    *ng = 0;
    for (size_t i = 0; i < ngn; i++) {
        size_t before = *ng, len = strlen(gnames[i]);
        for (size_t c = 0; c < lay->ncols && *ng < STATS_MAX_COLS; c++)
            if (!strncmp(lay->names[c], gnames[i], len) && lay->names[c][len] == '=') groups[(*ng)++] = (int)c;
        if (*ng == before) {
            int c = layout_column(lay, gnames[i]);
            if (c < 0) return client_usage_error("no such column to group by:", gnames[i]);
            groups[(*ng)++] = c;
        }
    }
    if (!ngn) {
        int c = layout_column(lay, "TenYearCHD");
        if (c >= 0) groups[(*ng)++] = c;
    }
    return 0;
}

static void print_summary(const stats_layout_t *lay, const stats_result_t *res, const stats_table_t *cmp,
                          const stats_report_errors_t *worst, const char *out)
{
    static stats_moments_t ref[STATS_MAX_COLS];
    if (cmp) stats_reference(cmp, ref, NULL);
    printf("%-16s %8s %14s %14s %12s %10s\n", "column", "count", "mean", cmp ? "plaintext" : "", "sd",
           cmp ? "rel error" : "");
    for (size_t c = 0; c < lay->ncols; c++) {
        const stats_moments_t *m = &res->cols[c];
        if (stats_policy_column(lay, res, c)) { /* disclosure control, as in the report */
            printf("%-16s %8s %14s\n", lay->names[c], "NA", "NA (suppressed: min_cell)");
            continue;
        }
        printf("%-16s %8.0Lf %14.6Lf", lay->names[c], m->count, m->mean);
        if (cmp) printf(" %14.6Lf", ref[c].mean);
        else printf(" %14s", "");
        printf(" %12.5Lf", m->sd);
        if (cmp) printf(" %10.2Le", fabsl(m->mean - ref[c].mean) / fmaxl(fabsl(ref[c].mean), 1e-12L));
        printf("\n");
    }
    if (cmp)
        printf("largest errors vs plaintext: mean %.2e, sd %.2e (relative), correlation %.2e (absolute), "
               "group mean %.2e\n",
               worst->mean_rel, worst->sd_rel, worst->corr_abs, worst->group_mean_rel);
    printf("wrote %s\n", out);
}

/* The rows of another report (its header must be this one's), after ours. */
static int add_rows(FILE *f, const char *path, int compare)
{
    size_t len = 0;
    char *b = client_load(path, &len);
    if (!b) return 1;
    char head[80];
    snprintf(head, sizeof head, "statistic,variable,group,value%s\n", compare ? ",plaintext,abs_error,rel_error" : "");
    int err = 0;
    if (len < strlen(head) || memcmp(b, head, strlen(head)))
        err = client_fail(path, compare ? "its header is not a report's with --compare columns"
                                        : "its header is not a report's without --compare columns");
    for (size_t i = 0; !err && i < len; i++)
        if (b[i] == '\0') err = client_fail(path, "not a text report");
    if (!err) {
        fwrite(b + strlen(head), 1, len - strlen(head), f);
        if (len > strlen(head) && b[len - 1] != '\n') fputc('\n', f);
    }
    free(b);
    return err;
}

/* Every row of the report in memory, then the file atomically. */
static int write_report(const client_opts_t *o, const stats_study_t *s, const stats_result_t *res,
                        const stats_table_t *cmp, const int *groups, size_t ng, const char *out,
                        stats_report_errors_t *worst)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return client_fail("report", strerror(errno));
    unsigned what = STATS_REPORT_MEAN | STATS_REPORT_VAR | (res->have_pairs ? STATS_REPORT_CORR : 0);
    int rc = stats_write_report_to(f, res, &s->layout, what, res->have_pairs ? groups : NULL,
                                   res->have_pairs ? ng : 0, cmp, worst);
    int err = 0;
    if (rc == STATS_ESCHEMA) err = client_fail(o->compare, "its columns differ from the study's schema");
    else if (rc) err = client_stats_fail("report", rc);
    if (!err) err = extra_rows(f, o->stats, &s->layout, res, cmp);
    if (!err && o->add_rows) err = add_rows(f, o->add_rows, cmp != NULL);
    if (fclose(f) && !err) err = client_fail("report", strerror(errno));
    if (!err) {
        rc = ckks_file_write(out, buf, len, 0644);
        if (rc) err = client_fail(out, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
    }
    if (!err && o->html) err = client_write_html(o->html, buf, len, s, o->compare);
    free(buf);
    return err;
}

int client_decrypt(const client_opts_t *o, const char *keys, const char *in, const char *out,
                   const char *compare, stats_report_errors_t *worst)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/study.hst", keys);
    stats_study_t *s;
    if (client_load_study(path, &s)) return 1;
    snprintf(path, sizeof path, "%s/secret.key", keys);
    ckks_secret_key_t *sk = NULL;
    static stats_result_t res;
    stats_table_t *cmp = NULL;
    int groups[STATS_MAX_COLS];
    size_t ng = 0;
    int err = group_columns(o, &s->layout, groups, &ng);
    struct stat st;
    char share[4200];
    snprintf(share, sizeof share, "%s/share.key", keys);
    if (!err && stat(path, &st) && !stat(share, &st))
        err = client_fail(share, "a party's share of a multiparty study's key decrypts nothing alone; results are "
                                 "released to the analyst's key (mp-share, mp-release) and decrypted with it");
    if (!err) err = load_secret_key(path, s, &sk);
    if (!err) err = decrypt_file(s, sk, in, &res);
    if (!err && compare) err = compare_table(compare, s, &cmp);
    if (!err) err = write_report(o, s, &res, cmp, groups, ng, out, worst);
    if (!err && o->print) print_summary(&s->layout, &res, cmp, worst, out);
    stats_table_free(cmp);
    ckks_secret_key_free(sk);
    stats_study_free(s);
    return err;
}
