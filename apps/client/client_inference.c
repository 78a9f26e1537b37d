/* hestat-client decrypt: the tests asked with --stats, finished from the
 * decrypted aggregates (stats/inference.c):
 *   ttest:COL:G     Welch and pooled t of mean(COL | G=0) - mean(COL | G=1)
 *                   (as R's t.test(COL ~ G)), G a 0/1 column;
 *   table:A:B       the cell counts of A x B from the study's indicator
 *                   columns "A=a", "B=b", and Pearson's chi-square test;
 *   corrtest:X:Y    the t-test of the pairwise-complete correlation.
 * With --compare, each row carries the same statistic of the plaintext
 * table. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "apps/client/client.h"

#define LEVELS_MAX 16

static int layout_col(const stats_layout_t *lay, const char *name)
{
    for (size_t c = 0; c < lay->ncols; c++)
        if (!strcmp(lay->names[c], name)) return (int)c;
    return -1;
}

static int refuse(const char *tok, const char *why, const char *name)
{
    fprintf(stderr, "hestat-client: --stats %s: %s%s; no report written\n", tok, why, name ? name : "");
    return 1;
}

/* "NAME:A:B" into the study's columns a and b (names in an and bn). */
static int two_columns(const char *tok, const stats_layout_t *lay, int *a, int *b, char *an, char *bn)
{
    const char *p = strchr(tok, ':'), *q = p ? strchr(p + 1, ':') : NULL;
    if (!q) return refuse(tok, "needs two column names, NAME:COL1:COL2", NULL);
    snprintf(an, STATS_NAME_MAX, "%.*s", (int)(q - p - 1), p + 1);
    snprintf(bn, STATS_NAME_MAX, "%s", q + 1);
    *a = layout_col(lay, an);
    *b = layout_col(lay, bn);
    if (*a < 0) return refuse(tok, "the study has no column ", an);
    if (*b < 0) return refuse(tok, "the study has no column ", bn);
    if (*a == *b) return refuse(tok, "needs two different columns", NULL);
    return 0;
}

static void test_rows(FILE *f, const stats_layout_t *lay, const char *why, const char *var, const char *group,
                      const stats_test_t *v, int cmp, const stats_test_t *want)
{
    stats_report_value(f, lay, why, "t", var, group, v->stat, cmp, want->stat);
    stats_report_value(f, lay, why, "df", var, group, v->df, cmp, want->df);
    stats_report_value(f, lay, why, "p", var, group, v->p, cmp, want->p);
}

/* Disclosure control: any of the counts disclosive. */
static const char *small(const stats_layout_t *lay, long double a, long double b)
{
    return stats_policy_small(&lay->policy, a) || stats_policy_small(&lay->policy, b) ? "min_cell" : NULL;
}

static int ttest_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                      const stats_table_t *cmp)
{
    int c, g;
    char cn[STATS_NAME_MAX], gn[STATS_NAME_MAX];
    if (two_columns(tok, lay, &c, &g, cn, gn)) return 1;
    /* A 0/1 column has factor 1 and sum g^2 = sum g (any other value in
     * [-1, 1] makes them differ). */
    long double sq = res->sumsq[g], sum = res->cols[g].sum;
    if (lay->factor[g] != 1 || fabsl(sq - sum) > 0.5L)
        return refuse(tok, "the group column is not a 0/1 column: ", gn);
    stats_moments_t m[2], w[2];
    stats_test_t welch, pooled, rw = {0, 0, 0}, rp = {0, 0, 0};
    for (int l = 0; l < 2; l++)
        if (stats_group_present(res, (size_t)g, l, (size_t)c, &m[l]))
            return refuse(tok, "cannot group by ", gn);
    if (stats_ttest(&m[0], &m[1], &welch, &pooled))
        return refuse(tok, "each group needs at least 2 values and some spread", NULL);
    if (cmp) {
        for (int l = 0; l < 2; l++) stats_reference_group(cmp, (size_t)g, l, (size_t)c, &w[l]);
        stats_ttest(&w[0], &w[1], &rw, &rp);
    }
    char group[STATS_NAME_MAX + 8];
    const char *why = small(lay, m[0].count, m[1].count);
    snprintf(group, sizeof group, "welch:%s", gn);
    test_rows(f, lay, why, cn, group, &welch, cmp != NULL, &rw);
    snprintf(group, sizeof group, "pooled:%s", gn);
    test_rows(f, lay, why, cn, group, &pooled, cmp != NULL, &rp);
    return 0;
}

/* The study's indicator columns "COL=level" (layout order: levels ascending). */
static size_t indicators(const stats_layout_t *lay, const char *col, int *idx)
{
    size_t n = 0, len = strlen(col);
    for (size_t c = 0; c < lay->ncols && n < LEVELS_MAX; c++)
        if (!strncmp(lay->names[c], col, len) && lay->names[c][len] == '=') idx[n++] = (int)c;
    return n;
}

static int table_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                      const stats_table_t *cmp)
{
    int a, b, ia[LEVELS_MAX], ib[LEVELS_MAX];
    char an[STATS_NAME_MAX], bn[STATS_NAME_MAX];
    if (two_columns(tok, lay, &a, &b, an, bn)) return 1;
    size_t na = indicators(lay, an, ia), nb = indicators(lay, bn, ib);
    if (!na || !nb)
        return refuse(tok, "the study was not created for this table (keygen --stats table:...); no indicators of ",
                      !na ? an : bn);
    /* n_ab = sum over rows of [A=a][B=b]: the pairwise sum of two indicators,
     * 0 on rows where A or B is missing, so the cells hold the complete cases. */
    long double cells[LEVELS_MAX * LEVELS_MAX], want[LEVELS_MAX * LEVELS_MAX] = {0}, n = 0, wn = 0;
    const char *why = NULL; /* a disclosive cell suppresses itself and the test */
    char var[2 * STATS_NAME_MAX + 2], group[2 * STATS_NAME_MAX + 2];
    snprintf(var, sizeof var, "%s:%s", an, bn);
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++) {
            long double *w = &want[i * nb + j];
            cells[i * nb + j] = roundl(res->sxy[stats_ij(res, (size_t)ia[i], (size_t)ib[j])]);
            for (size_t r = 0; cmp && r < cmp->nrows; r++)
                *w += stats_value(cmp, r, (size_t)ia[i]) * stats_value(cmp, r, (size_t)ib[j]);
            n += cells[i * nb + j];
            wn += *w;
            snprintf(group, sizeof group, "%s;%s", lay->names[ia[i]], lay->names[ib[j]]);
            const char *cell_why = small(lay, cells[i * nb + j], 0);
            if (cell_why) why = cell_why;
            stats_report_value(f, lay, cell_why, "count", var, group, cells[i * nb + j], cmp != NULL, *w);
        }
    stats_test_t x, wx = {0, 0, 0};
    if (stats_chisq_test(cells, na, nb, &x))
        return refuse(tok, "the table needs at least two levels of each column with counts", NULL);
    if (cmp) stats_chisq_test(want, na, nb, &wx);
    stats_report_value(f, lay, small(lay, n, 0), "n", var, "", n, cmp != NULL, wn);
    stats_report_value(f, lay, why, "chisq", var, "", x.stat, cmp != NULL, wx.stat);
    stats_report_value(f, lay, why, "df", var, "", x.df, cmp != NULL, wx.df);
    stats_report_value(f, lay, why, "p", var, "", x.p, cmp != NULL, wx.p);
    return 0;
}

/* Pairwise-complete correlation of the plaintext table (two-pass). */
static void plain_corr(const stats_table_t *t, size_t x, size_t y, long double *r, long double *n)
{
    long double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    *n = 0;
    for (size_t i = 0; i < t->nrows; i++) {
        double u = stats_value(t, i, x), v = stats_value(t, i, y);
        if (isnan(u) || isnan(v)) continue;
        *n += 1;
        sx += u;
        sy += v;
    }
    long double mx = sx / *n, my = sy / *n;
    for (size_t i = 0; i < t->nrows; i++) {
        double u = stats_value(t, i, x), v = stats_value(t, i, y);
        if (isnan(u) || isnan(v)) continue;
        sxx += (u - mx) * (u - mx);
        syy += (v - my) * (v - my);
        sxy += (u - mx) * (v - my);
    }
    *r = sxy / sqrtl(sxx * syy);
}

static int corrtest_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                         const stats_table_t *cmp)
{
    int x, y;
    char xn[STATS_NAME_MAX], yn[STATS_NAME_MAX], var[2 * STATS_NAME_MAX + 2];
    if (two_columns(tok, lay, &x, &y, xn, yn)) return 1;
    const stats_pair_t *pr = &res->pairs[stats_ij(res, (size_t)x, (size_t)y)];
    stats_test_t t, wt = {0, 0, 0};
    if (stats_corr_test(pr->corr, roundl(pr->n), &t))
        return refuse(tok, "needs more than 2 complete pairs and |r| < 1", NULL);
    long double wr = 0, wn = 0;
    if (cmp) {
        plain_corr(cmp, (size_t)x, (size_t)y, &wr, &wn);
        stats_corr_test(wr, wn, &wt);
    }
    snprintf(var, sizeof var, "%s:%s", xn, yn);
    const char *why = stats_policy_pair(lay, res, (size_t)x, (size_t)y);
    stats_report_value(f, lay, why, "r", var, "", pr->corr, cmp != NULL, wr);
    stats_report_value(f, lay, small(lay, roundl(pr->n), 0), "n", var, "", roundl(pr->n), cmp != NULL, wn);
    test_rows(f, lay, why, var, "", &t, cmp != NULL, &wt);
    return 0;
}

int client_test_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                     const stats_table_t *cmp)
{
    int ttest = !strncmp(tok, "ttest:", 6), table = !strncmp(tok, "table:", 6);
    int corrtest = !strncmp(tok, "corrtest:", 9);
    if (!ttest && !table && !corrtest) return 0;
    if (!res->have_pairs) return refuse(tok, "needs a result of --stats all, not means", NULL);
    if (ttest) return ttest_rows(f, tok, lay, res, cmp);
    if (table) return table_rows(f, tok, lay, res, cmp);
    return corrtest_rows(f, tok, lay, res, cmp);
}
