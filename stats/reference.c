/* The plaintext reference: the same statistics in long double, straight from
 * the definitions (two-pass for the moments). */
#include <math.h>

#include "stats/stats.h"

static void moments_of(const stats_table_t *t, size_t c, size_t g, int level, int grouped,
                       stats_moments_t *m)
{
    long double n = 0, s = 0;
    for (size_t r = 0; r < t->nrows; r++) {
        double x = stats_value(t, r, c);
        if (isnan(x) || (grouped && stats_value(t, r, g) != level)) continue;
        n += 1;
        s += x;
    }
    long double mean = n > 0 ? s / n : NAN, ss = 0;
    for (size_t r = 0; r < t->nrows; r++) {
        double x = stats_value(t, r, c);
        if (isnan(x) || (grouped && stats_value(t, r, g) != level)) continue;
        ss += (x - mean) * (x - mean);
    }
    m->count = n;
    m->sum = s;
    m->mean = mean;
    m->var = n > 1 ? ss / (n - 1) : NAN;
    m->sd = sqrtl(m->var);
}

int stats_reference(const stats_table_t *t, stats_moments_t *cols, stats_pair_t *pairs)
{
    if (!t || !cols) return STATS_EINVAL;
    for (size_t c = 0; c < t->ncols; c++) moments_of(t, c, 0, 0, 0, &cols[c]);
    if (!pairs) return STATS_OK;
    for (size_t i = 0; i < t->ncols; i++) {
        for (size_t j = 0; j < t->ncols; j++) {
            if (i == j) continue;
            long double n = 0, sx = 0, sy = 0;
            for (size_t r = 0; r < t->nrows; r++) {
                double x = stats_value(t, r, i), y = stats_value(t, r, j);
                if (isnan(x) || isnan(y)) continue;
                n += 1;
                sx += x;
                sy += y;
            }
            long double mx = sx / n, my = sy / n, sxy = 0, sxx = 0, syy = 0;
            for (size_t r = 0; r < t->nrows; r++) {
                double x = stats_value(t, r, i), y = stats_value(t, r, j);
                if (isnan(x) || isnan(y)) continue;
                sxy += (x - mx) * (y - my);
                sxx += (x - mx) * (x - mx);
                syy += (y - my) * (y - my);
            }
            stats_pair_t *p = &pairs[i * t->ncols + j];
            p->n = n;
            p->cov = n > 1 ? sxy / (n - 1) : NAN;
            p->corr = sxx > 0 && syy > 0 ? sxy / sqrtl(sxx * syy) : NAN;
        }
    }
    return STATS_OK;
}

int stats_reference_group(const stats_table_t *t, size_t g, int level, size_t c, stats_moments_t *m)
{
    if (!t || !m || g >= t->ncols || c >= t->ncols) return STATS_EINVAL;
    moments_of(t, c, g, level, 1, m);
    return STATS_OK;
}
