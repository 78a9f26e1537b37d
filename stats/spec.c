/* Statistics requested by name, and rebuilding derived columns from names. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/stats.h"

static int fail(char *err, size_t errlen, const char *fmt, const char *a)
{
    if (err) snprintf(err, errlen, fmt, a);
    return STATS_EINVAL;
}

static int column(const stats_table_t *t, const char *name, size_t len)
{
    for (size_t c = 0; c < t->ncols; c++)
        if (strlen(t->names[c]) == len && !strncmp(t->names[c], name, len)) return (int)c;
    return -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Replaces *t by the table with more columns (frees the old one). */
static void swap_in(stats_table_t **t, stats_table_t *wider)
{
    stats_table_free(*t);
    *t = wider;
}

/* "NAME:A:B": the columns A and B of raw (names may not hold ':'). */
static int two_columns(const stats_table_t *raw, const char *tok, int *a, int *b, char *err, size_t errlen)
{
    const char *p = strchr(tok, ':'), *q = p ? strchr(p + 1, ':') : NULL;
    if (!q || strchr(q + 1, ':')) return fail(err, errlen, "'%s' needs two column names, NAME:COL1:COL2", tok);
    *a = column(raw, p + 1, (size_t)(q - p - 1));
    *b = column(raw, q + 1, strlen(q + 1));
    if (*a >= 0 && *b >= 0) return STATS_OK;
    char name[STATS_NAME_MAX + 8];
    if (*a < 0) snprintf(name, sizeof name, "%.*s", (int)(q - p - 1), p + 1);
    else snprintf(name, sizeof name, "%s", q + 1);
    if (err) snprintf(err, errlen, "%.*s: no column '%s'", (int)(p - tok), tok, name);
    return STATS_EINVAL;
}

/* Indicator columns "COL=level" for the levels of column g in the schema
 * table (at most 16), appended to *t unless already there. A 0/1 column
 * without missing values needs none for grouping (always = 0): it is used as
 * is. */
static int add_level_indicators(const stats_table_t *raw, stats_table_t **t, size_t g, int always, char *err,
                                size_t errlen)
{
    double levels[17];
    size_t nl = 0;
    int binary = 1;
    for (size_t r = 0; r < raw->nrows; r++) {
        double v = stats_value(raw, r, g);
        if (isnan(v) || (v != 0 && v != 1)) binary = 0;
        if (isnan(v)) continue;
        size_t k = 0;
        while (k < nl && levels[k] != v) k++;
        if (k == nl) {
            if (nl == 16) return fail(err, errlen, "column '%s' has more than 16 levels", raw->names[g]);
            levels[nl++] = v;
        }
    }
    if (nl == 0)
        return fail(err, errlen, "column '%s' has no values in the schema table (its levels come from the data)",
                    raw->names[g]);
    if (binary && !always && !raw->levels[g]) return STATS_OK; /* a factor's groups are named by level */
    qsort(levels, nl, sizeof levels[0], cmp_double);
    /* Levels already present (another group: or table: of the same column). */
    size_t len = strlen(raw->names[g]);
    for (size_t c = raw->ncols; c < (*t)->ncols; c++)
        if (!strncmp((*t)->names[c], raw->names[g], len) && (*t)->names[c][len] == '=') return STATS_OK;
    stats_table_t *w;
    int rc = stats_add_indicators(*t, g, levels, nl, &w);
    if (rc == STATS_EINVAL) return fail(err, errlen, "too many columns for the study with '%s''s levels",
                                        raw->names[g]);
    if (!rc && (rc = stats_factor_rename(raw, g, w, (*t)->ncols))) {
        stats_table_free(w);
        return fail(err, errlen, "%s", stats_error());
    }
    if (!rc) swap_in(t, w);
    return rc;
}

int stats_spec_derive(const stats_table_t *raw, const char *spec, stats_table_t **out, char *err, size_t errlen)
{
    if (!raw || !spec || !out) return STATS_EINVAL;
    *out = NULL;
    stats_table_t *t;
    int rc = stats_table_new(raw->ncols, raw->nrows, &t);
    if (rc) return rc;
    memcpy(t->names, raw->names, sizeof raw->names[0] * raw->ncols);
    memcpy(t->values, raw->values, raw->nrows * raw->ncols * sizeof(double));
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    stats_spec_join(buf);
    /* A factor's levels are the schema: its indicators are always there. */
    for (size_t c = 0; c < raw->ncols && rc == STATS_OK; c++)
        if (raw->levels[c]) rc = add_level_indicators(raw, &t, c, 1, err, errlen);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok && rc == STATS_OK; tok = strtok_r(NULL, ",", &save)) {
        stats_table_t *w = NULL;
        if (!strcmp(tok, "mean") || !strcmp(tok, "var") || !strcmp(tok, "corr")) continue;
        if (!strncmp(tok, "group:", 6)) {
            int g = column(raw, tok + 6, strlen(tok + 6));
            if (g < 0) rc = fail(err, errlen, "no column '%s' to group by", tok + 6);
            if (!rc) rc = add_level_indicators(raw, &t, (size_t)g, 0, err, errlen);
        } else if (!strncmp(tok, "table:", 6)) {
            int a, b;
            rc = two_columns(raw, tok, &a, &b, err, errlen);
            if (!rc && a == b) rc = fail(err, errlen, "%s: a table needs two different columns", tok);
            if (!rc) rc = add_level_indicators(raw, &t, (size_t)a, 1, err, errlen);
            if (!rc) rc = add_level_indicators(raw, &t, (size_t)b, 1, err, errlen);
        } else if (!strncmp(tok, "ttest:", 6)) {
            int c, g;
            rc = two_columns(raw, tok, &c, &g, err, errlen);
            if (!rc && c == g) rc = fail(err, errlen, "%s: the column and the group column must differ", tok);
            for (size_t r = 0; !rc && r < raw->nrows; r++) {
                double v = stats_value(raw, r, (size_t)g);
                if (!isnan(v) && v != 0 && v != 1)
                    rc = fail(err, errlen, "ttest: group column '%s' is not a 0/1 column (a t-test compares "
                              "the rows where it is 0 with those where it is 1)", raw->names[g]);
            }
        } else if (!strncmp(tok, "corrtest:", 9)) {
            int x, y;
            rc = two_columns(raw, tok, &x, &y, err, errlen);
            if (!rc && x == y) rc = fail(err, errlen, "%s: a correlation test needs two different columns", tok);
        } else if (!strncmp(tok, "regress:", 8) || !strncmp(tok, "glm:", 4)) {
            int glm = tok[0] == 'g';
            if (glm && (rc = stats_glm_spec_check(raw, tok + 4, err, errlen))) break;
            int poisson = glm && !strcmp(strrchr(tok, ':'), ":poisson");
            if (glm) *strrchr(tok, ':') = 0; /* Y~X1+X2 */
            const char *f = tok + (glm ? 4 : 8), *tilde = strchr(f, '~');
            if (!tilde) rc = fail(err, errlen, "regression '%s' needs Y~X1+X2", f);
            size_t cols[STATS_MAX_REGRESSORS + 1], n = 0;
            const char *p = f;
            while (!rc && p && *p) {
                const char *end = p == f ? tilde : strchr(p, '+');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                int c = column(raw, p, len);
                if (c < 0 || n > STATS_MAX_REGRESSORS) {
                    char name[80];
                    snprintf(name, sizeof name, "%.*s", (int)len, p);
                    rc = fail(err, errlen, "regression: no column '%s'", name);
                    break;
                }
                cols[n++] = (size_t)c;
                p = end ? end + 1 : NULL;
            }
            if (!rc && n < 2) rc = fail(err, errlen, "regression '%s' needs at least one regressor", f);
            if (!rc) rc = stats_add_complete_cases(t, cols, n, &w);
            if (!rc && poisson) { /* y log y for the deviance */
                swap_in(&t, w);
                rc = stats_glm_add_xlogx(t, raw->names[cols[0]], &w);
            }
        } else if (!strncmp(tok, "quantile:", 9)) {
            rc = stats_spec_quantile(raw, &t, tok + 9, err, errlen);
        } else if (!strncmp(tok, "moments:", 8)) {
            rc = stats_spec_moments(raw, &t, tok + 8, err, errlen);
        } else if (!strncmp(tok, "hist:", 5)) {
            char *name = tok + 5, *colon = strchr(name, ':');
            double edges[65];
            size_t ne = 0;
            if (!colon) rc = fail(err, errlen, "histogram '%s' needs COL:e0:e1:...", name);
            if (rc) break;
            *colon = 0;
            int c = column(raw, name, strlen(name));
            if (c < 0) rc = fail(err, errlen, "histogram: no column '%s'", name);
            for (char *e = colon + 1; !rc && e && *e && ne < 65;) {
                char *end;
                edges[ne++] = strtod(e, &end);
                if (end == e || (*end && *end != ':')) rc = fail(err, errlen, "histogram edges: '%s'", e);
                e = *end ? end + 1 : NULL;
            }
            if (!rc) rc = stats_add_bins(t, (size_t)c, edges, ne, &w);
            if (rc == STATS_EINVAL && err && !err[0]) snprintf(err, errlen, "histogram edges must increase");
        } else {
            rc = fail(err, errlen, "unknown statistic '%s' (mean, var, corr, group:, regress:, glm:, hist:, ttest:, "
                      "table:, corrtest:, quantile:, moments:)", tok);
        }
        if (!rc && w) swap_in(&t, w);
    }
    if (rc) {
        stats_table_free(t);
        return rc;
    }
    *out = t;
    return STATS_OK;
}

int stats_derive_like(const stats_table_t *raw, const stats_layout_t *schema, stats_table_t **out, char *err,
                      size_t errlen)
{
    if (!raw || !schema || !out) return STATS_EINVAL;
    *out = NULL;
    stats_table_t *t;
    int rc = stats_table_new(schema->ncols, raw->nrows, &t);
    if (rc) return rc;
    /* Complete-case columns share one mask: rows where every cc: source is present. */
    size_t cc_src[STATS_MAX_COLS], ncc = 0;
    for (size_t c = 0; c < schema->ncols; c++)
        if (!strncmp(schema->names[c], "cc:", 3)) {
            int s = column(raw, schema->names[c] + 3, strlen(schema->names[c] + 3));
            if (s < 0) {
                stats_table_free(t);
                return fail(err, errlen, "no column for '%s'", schema->names[c]);
            }
            cc_src[ncc++] = (size_t)s;
        }
    for (size_t c = 0; c < schema->ncols && rc == STATS_OK; c++) {
        const char *name = schema->names[c];
        memcpy(t->names[c], name, STATS_NAME_MAX);
        int src = column(raw, name, strlen(name));
        if (src < 0 && (rc = stats_derive_extra(raw, name, t, c)) != 0) {
            if (rc < 0) fail(err, errlen, "cannot rebuild column '%s'", name);
            rc = rc < 0 ? rc : STATS_OK;
            continue;
        }
        const char *eq = strrchr(name, '='), *in = strstr(name, " in [");
        for (size_t r = 0; r < raw->nrows && rc == STATS_OK; r++) {
            double v;
            if (src >= 0) {
                int fc = stats_factor_code(raw, (size_t)src, r, schema, &v);
                if (fc < 0) {
                    rc = fail(err, errlen, "%s", stats_error());
                    break;
                }
            } else if (!strncmp(name, "xlogx:", 6)) {
                char cc[STATS_NAME_MAX + 4];
                snprintf(cc, sizeof cc, "cc:%s", name + 6);
                int s = column(t, cc, strlen(cc));
                if (s < 0 || (size_t)s >= c) {
                    rc = fail(err, errlen, "cannot rebuild column '%s'", name);
                    break;
                }
                v = stats_xlogx(stats_value(t, r, (size_t)s));
            } else if (!strncmp(name, "cc:", 3)) {
                int complete = 1;
                for (size_t k = 0; k < ncc; k++) complete &= !isnan(stats_value(raw, r, cc_src[k]));
                int s = column(raw, name + 3, strlen(name + 3));
                v = complete ? stats_value(raw, r, (size_t)s) : NAN;
            } else if (in) {
                int s = column(raw, name, (size_t)(in - name));
                double a, b;
                char close;
                if (s < 0 || sscanf(in + 5, "%lf:%lf%c", &a, &b, &close) != 3) {
                    rc = fail(err, errlen, "cannot rebuild column '%s'", name);
                    break;
                }
                double x = stats_value(raw, r, (size_t)s);
                v = x >= a && (close == ']' ? x <= b : x < b);
            } else if (eq && column(raw, name, (size_t)(eq - name)) >= 0 &&
                       raw->levels[column(raw, name, (size_t)(eq - name))]) {
                const char *level = stats_factor_level(raw, (size_t)column(raw, name, (size_t)(eq - name)), r);
                v = level && !strcmp(level, eq + 1);
            } else if (eq) {
                /* A missing cell is in no level, even of a factor whose texts
                 * are not known yet (a block of a CSV with none of them so far). */
                int s = column(raw, name, (size_t)(eq - name));
                char *end;
                double level = strtod(eq + 1, &end), x = s >= 0 ? stats_value(raw, r, (size_t)s) : NAN;
                if (s < 0 || (*end && !isnan(x))) {
                    rc = fail(err, errlen, "cannot rebuild column '%s'", name);
                    break;
                }
                v = x == level;
            } else {
                rc = fail(err, errlen, "the table has no column '%s'", name);
                break;
            }
            t->values[r * t->ncols + c] = v;
        }
    }
    if (rc) {
        stats_table_free(t);
        return rc;
    }
    *out = t;
    return STATS_OK;
}

double stats_pow2_at_least(double x)
{
    double f = 1;
    while (f < x && f <= 0x1p60) f *= 2;
    return f;
}

/* The factor of moments:COL's (COL-C)^2 column: as COL's own, from the
 * declared range or headroom times the largest observed deviation from C,
 * squared: tight, because the CKKS error of its sums is about absolute (a
 * factor 4 too large costs 16 in the precision of the fourth moment). A
 * contributor's value farther from C is refused at encrypt, naming the column. */
static double centred_square_factor(const stats_table_t *raw, size_t src, double centre, const double *range_lo,
                                    const double *range_hi, double headroom)
{
    double dev = 0;
    if (range_lo && !isnan(range_lo[src])) {
        dev = fmax(fabs(range_lo[src] - centre), fabs(range_hi[src] - centre));
    } else {
        for (size_t row = 0; row < raw->nrows; row++) {
            double x = stats_value(raw, row, src);
            if (!isnan(x)) dev = fmax(dev, headroom * fabs(x - centre));
        }
    }
    return stats_pow2_at_least(fmax(dev * dev, 1));
}

void stats_study_factors(const stats_table_t *raw, const double *rawf, const double *range_lo, const double *range_hi,
                         double headroom, const stats_table_t *t, double *f)
{
    for (size_t c = 0; c < t->ncols; c++) {
        int src = stats_column(raw, t->names[c]);
        char col[STATS_NAME_MAX];
        double centre = 0;
        int square = src < 0 && stats_centred_square(raw, t->names[c], col, &centre); /* moments:COL */
        if (src < 0 && !strncmp(t->names[c], "cc:", 3)) src = stats_column(raw, t->names[c] + 3);
        if (square) src = stats_column(raw, col);
        f[c] = src >= 0 ? rawf[src] : 1; /* indicators and bins are 0/1 */
        if (square && src >= 0) f[c] = centred_square_factor(raw, (size_t)src, centre, range_lo, range_hi, headroom);
        if (!strncmp(t->names[c], "xlogx:", 6) && (src = stats_column(raw, t->names[c] + 6)) >= 0)
            f[c] = stats_pow2_at_least(rawf[src] * fmax(1, log(rawf[src]))); /* y log y <= F log F for y <= F */
    }
}
