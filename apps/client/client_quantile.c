/* hestat-client decrypt: quantiles and shape asked with --stats, finished
 * from the decrypted aggregates (stats/quantile.c):
 *   quantile:COL:p1,p2,...  R's type-7 quantiles read from the study's bins
 *                           of COL; rows quantile (group "p=P"), bin_width
 *                           (the error bound), bins, n;
 *   moments:COL             skewness and kurtosis (moments::skewness,
 *                           moments::kurtosis), n.
 * Disclosure control: a quantile whose column count or bin count is
 * disclosive (0 < c < min_cell), or moments of fewer than min_cell values,
 * are written NA with the reason. With --compare, each row carries the same
 * statistic of the plaintext table. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "apps/client/client.h"

static int refuse(const char *tok, const char *why, const char *name)
{
    fprintf(stderr, "hestat-client: --stats %s: %s%s; no report written\n", tok, why, name ? name : "");
    return 1;
}

void client_report_value(FILE *f, const stats_layout_t *lay, const char *why, const char *stat, const char *var,
                         const char *group, long double v, int compare, long double want)
{
    if (why) stats_suppressed_row(f, &lay->policy, why, stat, var, group, compare, want);
    else client_report_row(f, stat, var, group, v, compare, want);
}

static int layout_col(const stats_layout_t *lay, const char *name)
{
    for (size_t c = 0; c < lay->ncols; c++)
        if (!strcmp(lay->names[c], name)) return (int)c;
    return -1;
}

static int quantile_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                         const stats_table_t *cmp)
{
    const char *arg = tok + 9, *colon = strrchr(arg, ':');
    char col[STATS_NAME_MAX + 1];
    double p[64];
    size_t np;
    if (!colon || (size_t)(colon - arg) >= sizeof col || stats_quantile_probs(colon + 1, p, 64, &np))
        return refuse(tok, "needs COL:p1,p2,... with probabilities in [0, 1]", NULL);
    snprintf(col, sizeof col, "%.*s", (int)(colon - arg), arg);
    int c = layout_col(lay, col);
    if (c < 0) return refuse(tok, "the study has no column ", col);
    stats_bins_t b;
    int rc = stats_quantile_bins(res, lay, col, &b);
    if (rc) return refuse(tok, "the study was not created for this quantile (keygen --stats quantile:...); no bins of ",
                          col);
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
        client_report_value(f, lay, why, "quantile", col, group, q, cmp != NULL, want);
    }
    client_report_row(f, "bin_width", col, "", b.width, cmp != NULL, b.width);
    client_report_row(f, "bins", col, "", (long double)b.bins, cmp != NULL, (long double)b.bins);
    long double want_n = 0;
    for (size_t r = 0; cmp && r < cmp->nrows; r++) want_n += !isnan(stats_value(cmp, r, (size_t)c));
    client_report_value(f, lay, why_n, "n", col, "", b.n, cmp != NULL, want_n);
    return 0;
}

static int moments_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                        const stats_table_t *cmp)
{
    const char *col = tok + 8;
    int c = layout_col(lay, col), cy[3] = {-1, -1, -1};
    double centre = 0;
    if (c < 0) return refuse(tok, "the study has no column ", col);
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
        return refuse(tok, "the study was not created for these moments (keygen --stats moments:...); no "
                      "columns (COL-C)^2 of ", col);
    stats_shape_t s, w = {0, 0, 0};
    if (stats_shape(res, (size_t)c, (size_t)cy[1], (size_t)cy[2], centre, &s)) return refuse(tok, "no values of ", col);
    if (cmp) stats_reference_shape(cmp, (size_t)c, &w);
    const char *why = stats_policy_small(&lay->policy, s.n) ? "min_cell" : NULL;
    client_report_value(f, lay, why, "skewness", col, "", s.skewness, cmp != NULL, w.skewness);
    client_report_value(f, lay, why, "kurtosis", col, "", s.kurtosis, cmp != NULL, w.kurtosis);
    client_report_value(f, lay, why, "n", col, "", s.n, cmp != NULL, w.n);
    return 0;
}

int client_shape_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                      const stats_table_t *cmp)
{
    int quantile = !strncmp(tok, "quantile:", 9), moments = !strncmp(tok, "moments:", 8);
    if (!quantile && !moments) return 0;
    if (!res->have_pairs) return refuse(tok, "needs a result of --stats all, not means", NULL);
    return quantile ? quantile_rows(f, tok, lay, res, cmp) : moments_rows(f, tok, lay, res, cmp);
}
