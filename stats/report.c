/* decrypted_results.csv: the tidy report of a decrypted result, optionally
 * next to the plaintext statistics of a table. Written whole or not at all:
 * the rows go to memory first, then to the file atomically (a temporary file
 * in the same directory, fsynced and renamed over the target), so a failure
 * never leaves a partial report or touches an older one. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/stats.h"

int stats_csv_name(FILE *f, const char *name); /* table.c */
int stats_write_report_to(FILE *f, const stats_result_t *r, const stats_layout_t *lay, unsigned what,
                          const int *groups, size_t ngroups, const stats_table_t *compare,
                          stats_report_errors_t *worst);

typedef struct {
    FILE *f;
    int compare;
} out_t;

/* Writes one row; returns the relative error (or NAN when not comparable). */
static double row(out_t *o, const char *stat, const char *var, const char *group, long double v,
                  long double want)
{
    fprintf(o->f, "%s,", stat);
    stats_csv_name(o->f, var);
    fputc(',', o->f);
    stats_csv_name(o->f, group);
    fprintf(o->f, ",%.15Lg", v);
    double rel = NAN;
    if (o->compare) {
        long double err = fabsl(v - want);
        rel = fabsl(want) > 0 ? (double)(err / fabsl(want)) : (double)err;
        fprintf(o->f, ",%.15Lg,%.3Lg,%.3g", want, err, rel);
    }
    fputc('\n', o->f);
    return rel;
}

/* row(), or NA and the reason when the policy suppresses it (why != NULL). */
static double row_or_na(out_t *o, const stats_layout_t *lay, const char *why, const char *stat, const char *var,
                        const char *group, long double v, long double want)
{
    if (!why) return row(o, stat, var, group, v, want);
    stats_suppressed_row(o->f, &lay->policy, why, stat, var, group, o->compare, want);
    return NAN;
}

static void worse(double *w, double v, long double want, double floor)
{
    if (w && !isnan(v) && fabsl(want) >= floor && v > *w) *w = v;
}

/* The rows of the report to an open stream (the caller may append more rows
 * before it commits the file). */
static int report_rows(FILE *f, const stats_result_t *r, const stats_layout_t *lay, unsigned what, const int *groups,
                       size_t ngroups, const stats_table_t *compare, const stats_moments_t *ref,
                       const stats_pair_t *refp, stats_report_errors_t *worst);

int stats_write_report_to(FILE *f, const stats_result_t *r, const stats_layout_t *lay, unsigned what,
                          const int *groups, size_t ngroups, const stats_table_t *compare,
                          stats_report_errors_t *worst)
{
    if (!f || !r || !lay || (ngroups && !groups)) return STATS_EINVAL;
    if (compare && compare->ncols != r->ncols) return STATS_ESCHEMA;
    stats_moments_t *ref = NULL;
    stats_pair_t *refp = NULL;
    int rc = STATS_OK;
    if (compare) {
        ref = calloc(r->ncols, sizeof *ref);
        refp = calloc(r->ncols * r->ncols, sizeof *refp);
        rc = !ref || !refp ? STATS_ENOMEM : stats_reference(compare, ref, refp) ? STATS_EINVAL : STATS_OK;
    }
    if (!rc) rc = report_rows(f, r, lay, what, groups, ngroups, compare, ref, refp, worst);
    free(ref);
    free(refp);
    return rc;
}

/* The rows, with the plaintext reference (ref, refp) when compare. */
static int report_rows(FILE *f, const stats_result_t *r, const stats_layout_t *lay, unsigned what, const int *groups,
                       size_t ngroups, const stats_table_t *compare, const stats_moments_t *ref,
                       const stats_pair_t *refp, stats_report_errors_t *worst)
{
    out_t o = {f, compare != NULL};
    stats_report_errors_t w = {0};
    fprintf(f, "statistic,variable,group,value%s\n", compare ? ",plaintext,abs_error,rel_error" : "");
    stats_policy_rows(f, &lay->policy, compare != NULL);
    const size_t C = r->ncols;
    for (size_t c = 0; c < C; c++) {
        const stats_moments_t *m = &r->cols[c];
        const char *name = lay->names[c];
        double floor = 1e-3 * lay->factor[c];
        const char *why = stats_policy_column(lay, r, c);
        const char *why_n = stats_policy_small(&lay->policy, m->count) ? "min_cell" : NULL;
        if (what & STATS_REPORT_MEAN) {
            row_or_na(&o, lay, why_n, "count", name, "", m->count, compare ? ref[c].count : 0);
            worse(&w.mean_rel, row_or_na(&o, lay, why, "mean", name, "", m->mean, compare ? ref[c].mean : 0),
                  compare ? ref[c].mean : 0, floor);
        }
        if (what & STATS_REPORT_SUM) row_or_na(&o, lay, why, "sum", name, "", m->sum, compare ? ref[c].sum : 0);
        if (what & STATS_REPORT_VAR) {
            row_or_na(&o, lay, why, "var", name, "", m->var, compare ? ref[c].var : 0);
            worse(&w.sd_rel, row_or_na(&o, lay, why, "sd", name, "", m->sd, compare ? ref[c].sd : 0),
                  compare ? ref[c].sd : 0, floor);
        }
    }
    if ((what & STATS_REPORT_CORR) && r->have_pairs) {
        for (size_t i = 0; i < C; i++)
            for (size_t j = i + 1; j < C; j++) {
                char var[2 * STATS_NAME_MAX + 2];
                snprintf(var, sizeof var, "%s:%s", lay->names[i], lay->names[j]);
                const stats_pair_t *p = &r->pairs[stats_ij(r, i, j)], none = {0, 0, 0};
                const stats_pair_t *q = compare ? &refp[i * C + j] : &none;
                const char *why = stats_policy_pair(lay, r, i, j);
                row_or_na(&o, lay, why, "cov", var, "", p->cov, q->cov);
                row_or_na(&o, lay, why, "corr", var, "", p->corr, q->corr);
                if (compare && !why && !isnan((double)q->corr) && fabsl(p->corr - q->corr) > w.corr_abs)
                    w.corr_abs = (double)fabsl(p->corr - q->corr);
            }
    }
    for (size_t gi = 0; gi < ngroups && r->have_pairs; gi++) {
        int g = groups[gi];
        if (g < 0 || (size_t)g >= C) continue;
        /* An indicator column ("education=2") is one group: its level 1. */
        int indicator = strchr(lay->names[g], '=') != NULL;
        for (int level = indicator; level <= 1; level++) {
            char grp[STATS_NAME_MAX + 8];
            if (indicator) snprintf(grp, sizeof grp, "%s", lay->names[g]);
            else snprintf(grp, sizeof grp, "%s=%d", lay->names[g], level);
            for (size_t c = 0; c < C; c++) {
                /* Derived columns are not grouped. */
                if ((int)c == g || strchr(lay->names[c], '=') || strstr(lay->names[c], " in [") ||
                    !strncmp(lay->names[c], "cc:", 3))
                    continue;
                stats_moments_t a, b = {0};
                if (stats_group(r, (size_t)g, level, c, &a)) continue;
                if (compare) stats_reference_group(compare, (size_t)g, level, c, &b);
                const char *why = stats_policy_group(lay, r, c, &a);
                row_or_na(&o, lay, stats_policy_small(&lay->policy, a.count) ? "min_cell" : NULL, "count",
                          lay->names[c], grp, a.count, b.count);
                worse(&w.group_mean_rel, row_or_na(&o, lay, why, "mean", lay->names[c], grp, a.mean, b.mean),
                      b.mean, 1e-3 * lay->factor[c]);
                row_or_na(&o, lay, why, "sd", lay->names[c], grp, a.sd, b.sd);
            }
        }
    }
    if (worst) *worst = w;
    return ferror(f) ? STATS_EIO : STATS_OK;
}

int stats_write_report(const char *path, const stats_result_t *r, const stats_layout_t *lay,
                       unsigned what, const int *groups, size_t ngroups,
                       const stats_table_t *compare, stats_report_errors_t *worst)
{
    if (!path) return STATS_EINVAL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return STATS_ENOMEM;
    int rc = stats_write_report_to(f, r, lay, what, groups, ngroups, compare, worst);
    if (fclose(f) && !rc) rc = STATS_ENOMEM;
    if (!rc && ckks_file_write(path, buf, len, 0644)) rc = STATS_EIO;
    free(buf);
    return rc;
}
