/* Report rows finished from decrypted aggregates, shared by hestat-client
 * (decrypt, run) and the language bindings (pyapi.c):
 *   quantile:COL:p1,p2,...  R's type-7 quantiles read from the study's bins
 *                           of COL; rows quantile (group "p=P"), bin_width
 *                           (the error bound), bins, n;
 *   moments:COL             skewness and kurtosis (moments::skewness,
 *                           moments::kurtosis), n;
 *   glm:Y~X1+X2:family      fitted in rounds (glm.c); per term coef, se, z,
 *                           p (the intercept as "(intercept)"), then
 *                           deviance, n, rounds, max_abs_score (the largest
 *                           |score| the last round decrypted, in the columns'
 *                           own units) and approx_error (the inverse link's
 *                           measured polynomial error).
 * Disclosure control: a quantile whose column count or bin count is
 * disclosive (0 < c < min_cell), moments of fewer than min_cell values, or a
 * model with fewer complete cases than the policy asks per parameter, are
 * written NA with the reason. With a comparison table, each row carries the
 * same statistic of the plaintext. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stats/stats.h"

int stats_csv_name(FILE *f, const char *name); /* table.c */

/* One report row: statistic,variable,group,value[,plaintext,abs_error,rel_error]. */
void stats_report_row(FILE *f, const char *stat, const char *var, const char *group, long double v, int compare,
                      long double want)
{
    fprintf(f, "%s,", stat);
    stats_csv_name(f, var);
    fputc(',', f);
    stats_csv_name(f, group);
    fprintf(f, ",%.15Lg", v);
    if (compare) fprintf(f, ",%.15Lg,%.3Lg,%.3Lg", want, fabsl(v - want), fabsl(want) > 0 ? fabsl(v - want) / fabsl(want) : fabsl(v - want));
    fputc('\n', f);
}

void stats_report_value(FILE *f, const stats_layout_t *lay, const char *why, const char *stat, const char *var,
                        const char *group, long double v, int compare, long double want)
{
    if (why) stats_suppressed_row(f, &lay->policy, why, stat, var, group, compare, want);
    else stats_report_row(f, stat, var, group, v, compare, want);
}

static int refuse(char *err, size_t errlen, const char *why, const char *name)
{
    if (errlen) snprintf(err, errlen, "%s%s", why, name ? name : "");
    return STATS_EINVAL;
}

static int layout_col(const stats_layout_t *lay, const char *name)
{
    for (size_t c = 0; c < lay->ncols; c++)
        if (!strcmp(lay->names[c], name)) return (int)c;
    return -1;
}

static int quantile_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                         const stats_table_t *cmp, char *err, size_t errlen)
{
    const char *arg = tok + 9, *colon = strrchr(arg, ':');
    char col[STATS_NAME_MAX + 1];
    double p[64];
    size_t np;
    if (!colon || (size_t)(colon - arg) >= sizeof col || stats_quantile_probs(colon + 1, p, 64, &np))
        return refuse(err, errlen, "needs COL:p1,p2,... with probabilities in [0, 1]", NULL);
    snprintf(col, sizeof col, "%.*s", (int)(colon - arg), arg);
    int c = layout_col(lay, col);
    if (c < 0) return refuse(err, errlen, "the study has no column ", col);
    stats_bins_t b;
    int rc = stats_quantile_bins(res, lay, col, &b);
    if (rc)
        return refuse(err, errlen, "the study was not created for this quantile (keygen --stats quantile:...); no "
                      "bins of ", col);
    const stats_policy_t *pol = &lay->policy;
    const char *why_n = stats_policy_small(pol, b.n) ? "min_cell" : NULL;
    for (size_t i = 0; i < np; i++) {
        char group[40];
        snprintf(group, sizeof group, "p=%.15g", p[i]);
        size_t ka = 0, kb = 0;
        long double q = stats_quantile_from_bins(&b, p[i], &ka, &kb);
        const char *why = why_n;
        if (!why && (stats_policy_small(pol, b.counts[ka]) || stats_policy_small(pol, b.counts[kb]))) why = "min_cell";
        long double want = cmp ? stats_reference_quantile(cmp, (size_t)c, p[i]) : 0;
        stats_report_value(f, lay, why, "quantile", col, group, q, cmp != NULL, want);
    }
    stats_report_row(f, "bin_width", col, "", b.width, cmp != NULL, b.width);
    stats_report_row(f, "bins", col, "", (long double)b.bins, cmp != NULL, (long double)b.bins);
    long double want_n = 0;
    for (size_t r = 0; cmp && r < cmp->nrows; r++) want_n += !isnan(stats_value(cmp, r, (size_t)c));
    stats_report_value(f, lay, why_n, "n", col, "", b.n, cmp != NULL, want_n);
    return 0;
}

static int moments_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                        const stats_table_t *cmp, char *err, size_t errlen)
{
    const char *col = tok + 8;
    int c = layout_col(lay, col), cy[3] = {-1, -1, -1};
    double centre = 0;
    if (c < 0) return refuse(err, errlen, "the study has no column ", col);
    for (size_t k = 0; k < lay->ncols; k++) {
        char src[STATS_NAME_MAX];
        double ck;
        int kind = stats_centred_square(NULL, lay->names[k], src, &ck);
        if (kind && !strcmp(src, col) && cy[kind] < 0) {
            cy[kind] = (int)k;
            centre = ck;
        }
    }
    if (cy[1] < 0 || cy[2] < 0)
        return refuse(err, errlen, "the study was not created for these moments (keygen --stats moments:...); no "
                      "columns (COL-C)^2 of ", col);
    stats_shape_t s, w = {0, 0, 0};
    if (stats_shape(res, (size_t)c, (size_t)cy[1], (size_t)cy[2], centre, &s))
        return refuse(err, errlen, "no values of ", col);
    if (cmp) stats_reference_shape(cmp, (size_t)c, &w);
    const char *why = stats_policy_small(&lay->policy, s.n) ? "min_cell" : NULL;
    stats_report_value(f, lay, why, "skewness", col, "", s.skewness, cmp != NULL, w.skewness);
    stats_report_value(f, lay, why, "kurtosis", col, "", s.kurtosis, cmp != NULL, w.kurtosis);
    stats_report_value(f, lay, why, "n", col, "", s.n, cmp != NULL, w.n);
    return 0;
}

int stats_shape_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                     const stats_table_t *cmp, char *err, size_t errlen)
{
    int quantile = !strncmp(tok, "quantile:", 9), moments = !strncmp(tok, "moments:", 8);
    if (!quantile && !moments) return 0;
    if (!res->have_pairs) return refuse(err, errlen, "needs a result of --stats all, not means", NULL);
    if (quantile) return quantile_rows(f, tok, lay, res, cmp, err, errlen);
    return moments_rows(f, tok, lay, res, cmp, err, errlen);
}

/* ---- glm: ------------------------------------------------------------------------- */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const stats_study_t *study;
    const ckks_secret_key_t *sk;
    const stats_enc_table_t *table;
    stats_glm_prep_t *prep; /* the server's state between rounds */
    stats_glm_cost_t *cost;
} glm_local_t;

/* A round with the server's code in this process: the encrypted totals at
 * pt, then the analyst's decryption of them. */
static int local_round(void *arg, const stats_glm_model_t *m, const stats_glm_point_t *pt, stats_glm_totals_t *out)
{
    glm_local_t *g = arg;
    stats_glm_enc_t *e = NULL;
    const stats_enc_table_t *tabs[1] = {g->table};
    double t0 = now_s();
    stats_counts_t c = {0};
    int rc = g->prep ? 0 : stats_glm_prepare(g->study->ctx, tabs, 1, m, g->study->rk, g->study->gk, &g->prep, &c);
    if (!rc) rc = stats_glm_round_prepared(g->prep, pt, &e, &g->cost->counts);
    double dt = now_s() - t0;
    g->cost->server_s += dt;
    if (dt > g->cost->max_round_s) g->cost->max_round_s = dt;
    g->cost->counts.rotations += c.rotations;
    g->cost->counts.relinearizations += c.relinearizations;
    void *buf = NULL;
    size_t len = 0;
    if (!rc && !stats_glm_enc_write(e, &buf, &len)) g->cost->download += len;
    free(buf);
    if (!rc) rc = stats_glm_decrypt(g->study->ctx, g->sk, &g->table->layout, m, pt, e, out);
    stats_glm_enc_free(e);
    return rc;
}

/* The regressors' ranges (their own units) from the analyst's table. */
static void model_ranges(const stats_table_t *t, const stats_glm_model_t *m, double *lo, double *hi)
{
    for (size_t j = 1; j <= m->k; j++) {
        lo[j] = 0;
        hi[j] = 0;
        for (size_t r = 0; r < t->nrows; r++) {
            double v = stats_value(t, r, m->x[j - 1]);
            if (isnan(v)) continue;
            lo[j] = fmin(lo[j], v);
            hi[j] = fmax(hi[j], v);
        }
    }
}

/* The model's rows, under the study's disclosure policy: with fewer complete
 * cases than it asks per parameter (k slopes and the intercept), every
 * model-level number is NA with the reason; n itself is a count. */
static void glm_rows_of(FILE *f, const stats_layout_t *lay, const stats_glm_model_t *m, const stats_glm_fit_t *fit,
                        const stats_glm_fit_t *ref)
{
    int cmp = ref != NULL;
    const char *why = stats_policy_model(&lay->policy, fit->n, m->k + 1);
    for (size_t j = 0; j <= m->k; j++) {
        const char *term = j ? m->terms[j] : "(intercept)";
        stats_report_value(f, lay, why, "coef", m->name, term, fit->coef[j], cmp, cmp ? ref->coef[j] : 0);
        stats_report_value(f, lay, why, "se", m->name, term, fit->se[j], cmp, cmp ? ref->se[j] : 0);
        stats_report_value(f, lay, why, "z", m->name, term, fit->z[j], cmp, cmp ? ref->z[j] : 0);
        stats_report_value(f, lay, why, "p", m->name, term, fit->p[j], cmp, cmp ? ref->p[j] : 0);
    }
    stats_report_value(f, lay, why, "deviance", m->name, "", fit->deviance, cmp, cmp ? ref->deviance : 0);
    stats_report_value(f, lay, stats_policy_small(&lay->policy, fit->n) ? "min_cell" : NULL, "n", m->name, "",
                       fit->n, cmp, cmp ? ref->n : 0);
    stats_report_row(f, "rounds", m->name, "", fit->rounds, cmp, cmp ? ref->rounds : 0);
    stats_report_value(f, lay, why, "max_abs_score", m->name, "", fit->max_abs_score, cmp, 0);
    stats_report_row(f, "approx_error", m->name, "", fit->last_approx_err, cmp, 0);
}

int stats_glm_rows(FILE *f, const char *spec, const stats_study_t *s, const ckks_secret_key_t *sk,
                   const stats_enc_table_t *e, const stats_table_t *t, int compare, stats_glm_round_fn round,
                   void *arg, stats_glm_fit_t *fit, stats_glm_cost_t *cost, char *err, size_t errlen)
{
    stats_glm_model_t m;
    if (errlen) err[0] = 0;
    memset(cost, 0, sizeof *cost);
    if (stats_glm_parse(spec, &s->layout, &m, err, errlen)) return STATS_EINVAL;
    double lo[STATS_MAX_REGRESSORS + 1], hi[STATS_MAX_REGRESSORS + 1];
    model_ranges(t, &m, lo, hi);
    glm_local_t g = {s, sk, e, NULL, cost};
    if (!e && !round) {
        snprintf(err, errlen, "glm '%s': a fit in this process needs the encrypted table", spec);
        return STATS_EINVAL;
    }
    int rc = stats_glm_fit(e ? &e->layout : &s->layout, &m, lo, hi, 8, round ? round : local_round,
                           round ? arg : &g, fit);
    stats_glm_prep_free(g.prep);
    if (rc) {
        if (errlen) snprintf(err, errlen, "%s (%s)", stats_strerror(rc), stats_error());
        return rc;
    }
    stats_glm_fit_t ref;
    int have_ref = compare && !stats_reference_glm(t, &m, &ref);
    glm_rows_of(f, &s->layout, &m, fit, have_ref ? &ref : NULL);
    return STATS_OK;
}
