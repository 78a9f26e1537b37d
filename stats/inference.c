/* Statistical tests finished from decrypted aggregates: t and p for OLS
 * terms, Welch and pooled two-sample t-tests, the Pearson chi-square test of
 * independence and the correlation t-test. Every input is a total the server
 * already computes (counts, sums, pairwise sums); the distribution functions
 * are GSL's (two-sided p = 2 Q(|t|) of Student's t, upper chi-square tail). */
#include <math.h>
#include <gsl/gsl_cdf.h>

#include "stats/stats.h"

long double stats_t_pvalue(long double t, long double df)
{
    if (isnan(t) || !(df > 0)) return NAN;
    return 2.0L * gsl_cdf_tdist_Q(fabs((double)t), (double)df);
}

int stats_group_present(const stats_result_t *r, size_t g, int level, size_t c, stats_moments_t *m)
{
    if (!r || !m || !r->have_pairs || g >= r->ncols || c >= r->ncols || g == c) return STATS_EINVAL;
    if (level != 0 && level != 1) return STATS_EINVAL;
    size_t gc = stats_ij(r, g, c), cg = stats_ij(r, c, g);
    /* Level 1: sums of g * (x_c, x_c^2, m_c); level 0: what is left of the
     * totals over rows where both g and c are present. */
    long double n1 = roundl(r->sx_mask[gc]), s1 = r->sxy[cg], ss1 = r->sxxy[cg];
    long double n = roundl(r->nij[cg]), s = r->sx_mask[cg], ss = r->sxx_mask[cg];
    long double cnt = level ? n1 : n - n1, sum = level ? s1 : s - s1, sq = level ? ss1 : ss - ss1;
    stats_moments_from_sums(cnt, sum, sq, m);
    return STATS_OK;
}

int stats_ttest(const stats_moments_t *a, const stats_moments_t *b, stats_test_t *welch, stats_test_t *pooled)
{
    if (!a || !b || !welch || !pooled) return STATS_EINVAL;
    long double na = a->count, nb = b->count;
    if (!(na >= 2) || !(nb >= 2)) return STATS_EINVAL;
    long double va = a->var / na, vb = b->var / nb, diff = a->mean - b->mean;
    if (!(va + vb > 0)) return STATS_EINVAL;
    welch->stat = diff / sqrtl(va + vb);
    welch->df = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));
    welch->p = stats_t_pvalue(welch->stat, welch->df);
    pooled->df = na + nb - 2;
    long double sp2 = ((na - 1) * a->var + (nb - 1) * b->var) / pooled->df;
    pooled->stat = diff / sqrtl(sp2 * (1 / na + 1 / nb));
    pooled->p = stats_t_pvalue(pooled->stat, pooled->df);
    return STATS_OK;
}

int stats_corr_test(long double r, long double n, stats_test_t *out)
{
    if (!out || !(n > 2) || !(fabsl(r) < 1)) return STATS_EINVAL;
    out->df = n - 2;
    out->stat = r * sqrtl(out->df / (1 - r * r));
    out->p = stats_t_pvalue(out->stat, out->df);
    return STATS_OK;
}

int stats_chisq_test(const long double *counts, size_t rows, size_t cols, stats_test_t *out)
{
    if (!counts || !out || rows == 0 || cols == 0 || rows > STATS_CHISQ_MAX || cols > STATS_CHISQ_MAX)
        return STATS_EINVAL;
    long double rsum[STATS_CHISQ_MAX] = {0}, csum[STATS_CHISQ_MAX] = {0}, n = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            rsum[i] += counts[i * cols + j];
            csum[j] += counts[i * cols + j];
            n += counts[i * cols + j];
        }
    /* Levels with a zero margin have no expected counts: they are dropped
     * (as R's chisq.test on a table without them). */
    size_t r = 0, c = 0;
    for (size_t i = 0; i < rows; i++) r += rsum[i] > 0;
    for (size_t j = 0; j < cols; j++) c += csum[j] > 0;
    if (r < 2 || c < 2) return STATS_EINVAL;
    long double x2 = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            if (!(rsum[i] > 0) || !(csum[j] > 0)) continue;
            long double e = rsum[i] * csum[j] / n, d = counts[i * cols + j] - e;
            x2 += d * d / e;
        }
    out->stat = x2;
    out->df = (long double)((r - 1) * (c - 1));
    out->p = gsl_cdf_chisq_Q((double)x2, (double)out->df);
    return STATS_OK;
}
