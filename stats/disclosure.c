/* Disclosure control: which released numbers the study's policy suppresses,
 * and how a suppressed number appears in the report.
 *
 * The rule for counts is DataSHIELD's nfilter.tab: a count c is disclosive
 * when 0 < c < min_cell (an empty cell discloses nobody). A statistic is
 * suppressed when any count it is computed from, or that it gives away with
 * the other released numbers, is disclosive:
 *   - a column's count, mean, var, sd: its count of present values, and for
 *     a 0/1 column (factor 1, every value 0 or 1) its counts of ones and of
 *     zeros (the mean is the share of ones);
 *   - a pair's cov and corr: the pair's complete count, and for each 0/1
 *     column of the pair the two counts it splits those rows into (both 0/1:
 *     the four cells of their 2 x 2 table);
 *   - a group's count, mean, sd: the group's count, and for a 0/1 column its
 *     counts of ones and zeros within the group (cells of their table);
 *   - a histogram bin, a table cell: the count itself (and a table's chi-square
 *     test when any of its cells is suppressed);
 *   - a quantile: the column's count and the count of each bin it is read from.
 * Models: p parameters (the intercept included) need n >= min_n_per_param * p
 * complete cases (DataSHIELD nfilter.glm = 0.33 refuses p > 0.33 n; the
 * default 1/0.33 is the same rule), and n itself is a count.
 *
 * A suppressed value is written NA, followed by a row
 *   suppressed:<statistic>:<rule>,<variable>,<group>,<threshold>
 * naming the rule (min_cell or min_n_per_param) and its threshold; the report
 * opens with the policy in force (policy,min_cell,,N and
 * policy,min_n_per_param,,X). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "stats/stats.h"

int stats_csv_name(FILE *f, const char *name); /* table.c */

stats_policy_t stats_policy_default(void)
{
    stats_policy_t p = {STATS_POLICY_MIN_CELL, STATS_POLICY_MIN_N_PER_PARAM, 0};
    return p;
}

int stats_policy_small(const stats_policy_t *p, long double count)
{
    long double c = roundl(count);
    return p && c > 0 && c < (long double)p->min_cell;
}

const char *stats_policy_model(const stats_policy_t *p, long double n, size_t params)
{
    if (!p) return NULL;
    if (stats_policy_small(p, n)) return "min_cell";
    if (n < p->min_n_per_param * (long double)params) return "min_n_per_param";
    return NULL;
}

/* A 0/1 column: factor 1 and sum x^2 = sum x (any value strictly inside
 * (0, 1) or negative makes them differ). */
static int binary(const stats_result_t *r, const stats_layout_t *lay, size_t c)
{
    return lay->factor[c] == 1 && fabsl(r->sumsq[c] - r->cols[c].sum) < 0.5L;
}

const char *stats_policy_column(const stats_layout_t *lay, const stats_result_t *r, size_t c)
{
    const stats_policy_t *p = &lay->policy;
    long double n = r->cols[c].count;
    if (stats_policy_small(p, n)) return "min_cell";
    if (binary(r, lay, c) && (stats_policy_small(p, r->cols[c].sum) || stats_policy_small(p, n - r->cols[c].sum)))
        return "min_cell";
    return NULL;
}

const char *stats_policy_pair(const stats_layout_t *lay, const stats_result_t *r, size_t a, size_t b)
{
    const stats_policy_t *p = &lay->policy;
    size_t ab = stats_ij(r, a, b), ba = stats_ij(r, b, a);
    long double n = roundl(r->nij[ab]);
    if (stats_policy_small(p, n)) return "min_cell";
    int ba_ = binary(r, lay, a), bb = binary(r, lay, b);
    long double a1 = roundl(r->sx_mask[ab]), b1 = roundl(r->sx_mask[ba]);
    if (ba_ && (stats_policy_small(p, a1) || stats_policy_small(p, n - a1))) return "min_cell";
    if (bb && (stats_policy_small(p, b1) || stats_policy_small(p, n - b1))) return "min_cell";
    if (ba_ && bb) {
        long double n11 = roundl(r->sxy[ab]);
        if (stats_policy_small(p, n11) || stats_policy_small(p, a1 - n11) || stats_policy_small(p, b1 - n11) ||
            stats_policy_small(p, n - a1 - b1 + n11))
            return "min_cell";
    }
    return NULL;
}

const char *stats_policy_group(const stats_layout_t *lay, const stats_result_t *r, size_t c,
                               const stats_moments_t *m)
{
    const stats_policy_t *p = &lay->policy;
    if (stats_policy_small(p, m->count)) return "min_cell";
    /* A 0/1 column's mean within a group is a cell of their table. */
    if (binary(r, lay, c) && (stats_policy_small(p, m->sum) || stats_policy_small(p, m->count - m->sum)))
        return "min_cell";
    return NULL;
}

void stats_policy_rows(FILE *f, const stats_policy_t *p, int compare)
{
    fprintf(f, "policy,min_cell,,%u%s\n", p->min_cell, compare ? ",NA,NA,NA" : "");
    fprintf(f, "policy,min_n_per_param,,%.15g%s\n", p->min_n_per_param, compare ? ",NA,NA,NA" : "");
}

void stats_suppressed_row(FILE *f, const stats_policy_t *p, const char *rule, const char *stat, const char *var,
                          const char *group, int compare, long double want)
{
    fprintf(f, "%s,", stat);
    stats_csv_name(f, var);
    fputc(',', f);
    stats_csv_name(f, group);
    fputs(",NA", f);
    if (compare) fprintf(f, ",%.15Lg,NA,NA", want);
    fprintf(f, "\nsuppressed:%s:%s,", stat, rule);
    stats_csv_name(f, var);
    fputc(',', f);
    stats_csv_name(f, group);
    if (!strcmp(rule, "min_n_per_param")) fprintf(f, ",%.15g", p->min_n_per_param);
    else fprintf(f, ",%u", p->min_cell);
    fputs(compare ? ",NA,NA,NA\n" : "\n", f);
}
