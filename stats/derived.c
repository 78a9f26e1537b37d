/* Derived columns the client adds before encryption, and the regression
 * finishing (normal equations solved in long double). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/stats.h"

/* A copy of t with `extra` more columns (filled by the caller). */
static int widen(const stats_table_t *t, size_t extra, stats_table_t **out)
{
    if (!t || !out) return STATS_EINVAL;
    if (t->ncols + extra > STATS_MAX_COLS) return STATS_EINVAL;
    stats_table_t *w;
    int rc = stats_table_new(t->ncols + extra, t->nrows, &w);
    if (rc) return rc;
    memcpy(w->names, t->names, sizeof t->names[0] * t->ncols);
    for (size_t r = 0; r < t->nrows; r++)
        memcpy(w->values + r * w->ncols, t->values + r * t->ncols, t->ncols * sizeof(double));
    *out = w;
    return STATS_OK;
}

static void set_name(stats_table_t *w, size_t c, const char *fmt, const char *base, double a, double b)
{
    snprintf(w->names[c], STATS_NAME_MAX, fmt, base, a, b);
}

int stats_add_indicators(const stats_table_t *t, size_t col, const double *levels, size_t nlevels,
                         stats_table_t **out)
{
    if (!t || !levels || col >= t->ncols || nlevels == 0) return STATS_EINVAL;
    stats_table_t *w;
    int rc = widen(t, nlevels, &w);
    if (rc) return rc;
    for (size_t l = 0; l < nlevels; l++) {
        size_t c = t->ncols + l;
        set_name(w, c, "%s=%g", t->names[col], levels[l], 0);
        for (size_t r = 0; r < t->nrows; r++) w->values[r * w->ncols + c] = stats_value(t, r, col) == levels[l];
    }
    *out = w;
    return STATS_OK;
}

int stats_add_bins(const stats_table_t *t, size_t col, const double *edges, size_t nedges,
                   stats_table_t **out)
{
    if (!t || !edges || col >= t->ncols || nedges < 2) return STATS_EINVAL;
    for (size_t i = 1; i < nedges; i++)
        if (!(edges[i] > edges[i - 1])) return STATS_EINVAL;
    stats_table_t *w;
    int rc = widen(t, nedges - 1, &w);
    if (rc) return rc;
    for (size_t b = 0; b + 1 < nedges; b++) {
        size_t c = t->ncols + b;
        int last = b + 2 == nedges;
        set_name(w, c, last ? "%s in [%g:%g]" : "%s in [%g:%g)", t->names[col], edges[b], edges[b + 1]);
        for (size_t r = 0; r < t->nrows; r++) {
            double v = stats_value(t, r, col);
            w->values[r * w->ncols + c] = v >= edges[b] && (last ? v <= edges[b + 1] : v < edges[b + 1]);
        }
    }
    *out = w;
    return STATS_OK;
}

int stats_add_complete_cases(const stats_table_t *t, const size_t *cols, size_t ncols,
                             stats_table_t **out)
{
    if (!t || !cols || ncols == 0) return STATS_EINVAL;
    for (size_t i = 0; i < ncols; i++)
        if (cols[i] >= t->ncols) return STATS_EINVAL;
    stats_table_t *w;
    int rc = widen(t, ncols, &w);
    if (rc) return rc;
    for (size_t i = 0; i < ncols; i++) snprintf(w->names[t->ncols + i], STATS_NAME_MAX, "cc:%.56s", t->names[cols[i]]);
    for (size_t r = 0; r < t->nrows; r++) {
        int complete = 1;
        for (size_t i = 0; i < ncols; i++) complete &= !isnan(stats_value(t, r, cols[i]));
        for (size_t i = 0; i < ncols; i++)
            w->values[r * w->ncols + t->ncols + i] = complete ? stats_value(t, r, cols[i]) : NAN;
    }
    *out = w;
    return STATS_OK;
}

/* ---- regression ---- */

/* Solves A x = b (m x m, row-major) by Gaussian elimination with partial
 * pivoting; inv receives A^-1. 0, or -1 when singular. */
static int solve(long double *A, long double *b, size_t m, long double *x, long double *inv)
{
    long double M[(STATS_MAX_REGRESSORS + 1) * 2 * (STATS_MAX_REGRESSORS + 1)];
    size_t w = 2 * m;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < w; j++) M[i * w + j] = j < m ? A[i * m + j] : (j - m == i);
    long double rhs[STATS_MAX_REGRESSORS + 1];
    memcpy(rhs, b, m * sizeof *rhs);
    for (size_t c = 0; c < m; c++) {
        size_t piv = c;
        for (size_t r = c + 1; r < m; r++)
            if (fabsl(M[r * w + c]) > fabsl(M[piv * w + c])) piv = r;
        if (fabsl(M[piv * w + c]) < 1e-300L) return -1;
        if (piv != c) {
            for (size_t j = 0; j < w; j++) {
                long double tmp = M[c * w + j];
                M[c * w + j] = M[piv * w + j];
                M[piv * w + j] = tmp;
            }
            long double tmp = rhs[c];
            rhs[c] = rhs[piv];
            rhs[piv] = tmp;
        }
        for (size_t r = 0; r < m; r++) {
            if (r == c) continue;
            long double f = M[r * w + c] / M[c * w + c];
            for (size_t j = c; j < w; j++) M[r * w + j] -= f * M[c * w + j];
            rhs[r] -= f * rhs[c];
        }
    }
    for (size_t i = 0; i < m; i++) {
        x[i] = rhs[i] / M[i * w + i];
        for (size_t j = 0; j < m; j++) inv[i * m + j] = M[i * w + m + j] / M[i * w + i];
    }
    return 0;
}

/* OLS from sums: n, s[a] = sum z_a, ss[a][b] = sum z_a z_b (a, b over
 * 0 = y, 1..k = x), via the centred normal equations for numerical sense. */
static int ols_from_sums(long double n, const long double *s, const long double *ss, size_t k,
                         stats_regression_t *out)
{
    size_t m = k + 1, dim = k + 1; /* unknowns: intercept + k slopes */
    if (k == 0 || k > STATS_MAX_REGRESSORS || n <= k + 1) return STATS_EINVAL;
    long double A[(STATS_MAX_REGRESSORS + 1) * (STATS_MAX_REGRESSORS + 1)], b[STATS_MAX_REGRESSORS + 1];
    long double beta[STATS_MAX_REGRESSORS + 1], inv[(STATS_MAX_REGRESSORS + 1) * (STATS_MAX_REGRESSORS + 1)];
    /* Design columns: 1, x_1..x_k. SS index: a in 0..k with 0 = y. */
#define SS(a, c) ss[(a) * m + (c)]
    for (size_t i = 0; i < dim; i++) {
        for (size_t j = 0; j < dim; j++) {
            if (i == 0 && j == 0) A[0] = n;
            else if (i == 0) A[j] = s[j];
            else if (j == 0) A[i * dim] = s[i];
            else A[i * dim + j] = SS(i, j);
        }
        b[i] = i == 0 ? s[0] : SS(i, 0);
    }
    if (solve(A, b, dim, beta, inv)) return STATS_EINVAL;
    long double rss = SS(0, 0);
    for (size_t i = 0; i < dim; i++) rss -= beta[i] * b[i];
    long double tss = SS(0, 0) - s[0] * s[0] / n;
    long double sigma2 = rss / (n - (long double)dim);
#undef SS
    out->k = k;
    out->n = n;
    for (size_t i = 0; i < dim; i++) {
        out->coef[i] = beta[i];
        out->se[i] = sqrtl(fmaxl(sigma2 * inv[i * dim + i], 0));
    }
    out->r2 = tss > 0 ? 1 - rss / tss : NAN;
    out->sigma = sqrtl(fmaxl(sigma2, 0));
    return STATS_OK;
}

int stats_regress(const stats_result_t *r, size_t y, const size_t *x, size_t k, stats_regression_t *out)
{
    if (!r || !x || !out || !r->have_pairs || y >= r->ncols || k == 0 || k > STATS_MAX_REGRESSORS)
        return STATS_EINVAL;
    size_t idx[STATS_MAX_REGRESSORS + 1], m = k + 1;
    idx[0] = y;
    for (size_t i = 0; i < k; i++) {
        if (x[i] >= r->ncols) return STATS_EINVAL;
        idx[i + 1] = x[i];
    }
    long double s[STATS_MAX_REGRESSORS + 1], ss[(STATS_MAX_REGRESSORS + 1) * (STATS_MAX_REGRESSORS + 1)];
    for (size_t a = 0; a < m; a++) {
        s[a] = r->cols[idx[a]].sum;
        for (size_t c = 0; c < m; c++)
            ss[a * m + c] = a == c ? r->sumsq[idx[a]] : r->sxy[stats_ij(r, idx[a], idx[c])];
    }
    return ols_from_sums(r->cols[y].count, s, ss, k, out);
}

int stats_reference_regress(const stats_table_t *t, size_t y, const size_t *x, size_t k,
                            stats_regression_t *out)
{
    if (!t || !x || !out || y >= t->ncols || k == 0 || k > STATS_MAX_REGRESSORS) return STATS_EINVAL;
    size_t idx[STATS_MAX_REGRESSORS + 1], m = k + 1;
    idx[0] = y;
    for (size_t i = 0; i < k; i++) {
        if (x[i] >= t->ncols) return STATS_EINVAL;
        idx[i + 1] = x[i];
    }
    long double n = 0, s[STATS_MAX_REGRESSORS + 1] = {0};
    long double ss[(STATS_MAX_REGRESSORS + 1) * (STATS_MAX_REGRESSORS + 1)] = {0};
    for (size_t r = 0; r < t->nrows; r++) {
        int ok = 1;
        for (size_t a = 0; a < m; a++) ok &= !isnan(stats_value(t, r, idx[a]));
        if (!ok) continue;
        n += 1;
        for (size_t a = 0; a < m; a++) {
            long double va = stats_value(t, r, idx[a]);
            s[a] += va;
            for (size_t c = 0; c < m; c++) ss[a * m + c] += va * stats_value(t, r, idx[c]);
        }
    }
    return ols_from_sums(n, s, ss, k, out);
}
