/* Categorical columns as they come: text-valued CSV columns read as factors.
 *
 * A column whose first present cell is not a number is a factor (the CSV
 * reader then refuses a number in it, as it refuses text in a numeric
 * column). Its levels are its distinct texts in strcmp order, and the table
 * holds each cell's level index (0-based; NaN = missing).
 *
 * In a study, a factor column COL is fixed at keygen by one indicator column
 * per level, "COL=level" (the level names are the schema), and COL itself
 * holds the level's index among them. Each contributor's client rebuilds both
 * from the texts of its own CSV: a text that is not one of the study's levels
 * is an error that names it (and the study's levels), never a new code. Reports
 * name levels through the indicators ("sex=F" as a group, "sex=F;TenYearCHD=1"
 * as a table cell). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/stats.h"

void stats_set_error(const char *fmt, ...);

static int cmp_name(const void *a, const void *b) { return strcmp(a, b); }

int stats_table_set_factor(stats_table_t *t, size_t c, char (*texts)[STATS_NAME_MAX], size_t n)
{
    if (!t || c >= t->ncols || !texts || n == 0 || n > STATS_FACTOR_MAX_LEVELS) return STATS_EINVAL;
    char (*levels)[STATS_NAME_MAX] = malloc(n * sizeof *levels);
    size_t *rank = malloc(n * sizeof *rank);
    if (!levels || !rank) {
        free(levels);
        free(rank);
        return STATS_ENOMEM;
    }
    memcpy(levels, texts, n * sizeof *levels);
    qsort(levels, n, sizeof *levels, cmp_name);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < n; k++)
            if (!strcmp(texts[i], levels[k])) rank[i] = k;
    for (size_t r = 0; r < t->nrows; r++) {
        double *v = &t->values[r * t->ncols + c];
        if (!isnan(*v)) *v = (double)rank[(size_t)*v];
    }
    free(rank);
    free(t->levels[c]);
    t->levels[c] = levels;
    t->nlevels[c] = n;
    return STATS_OK;
}

const char *stats_factor_level(const stats_table_t *t, size_t c, size_t row)
{
    double v = stats_value(t, row, c);
    if (!t->levels[c] || isnan(v) || v < 0 || (size_t)v >= t->nlevels[c]) return NULL;
    return t->levels[c][(size_t)v];
}

/* The study's levels of COL: the schema's indicator columns "COL=level". */
static size_t study_levels(const stats_layout_t *schema, const char *col, const char **levels, size_t max)
{
    size_t n = 0, len = strlen(col);
    for (size_t c = 0; c < schema->ncols && n < max; c++)
        if (!strncmp(schema->names[c], col, len) && schema->names[c][len] == '=') levels[n++] = schema->names[c] + len + 1;
    return n;
}

int stats_factor_code(const stats_table_t *raw, size_t src, size_t row, const stats_layout_t *schema, double *v)
{
    *v = stats_value(raw, row, src);
    const char *levels[STATS_FACTOR_MAX_LEVELS];
    size_t n = study_levels(schema, raw->names[src], levels, STATS_FACTOR_MAX_LEVELS);
    int numeric_levels = 1;
    for (size_t k = 0; k < n; k++) {
        char *end;
        strtod(levels[k], &end);
        numeric_levels &= end != levels[k] && !*end;
    }
    if (!raw->levels[src] && (n == 0 || numeric_levels)) return 0; /* a numeric column */
    if (isnan(*v)) return 1;
    char text[40];
    const char *level = stats_factor_level(raw, src, row);
    if (!level) {
        snprintf(text, sizeof text, "%.15g", *v);
        level = text;
    }
    for (size_t k = 0; k < n; k++)
        if (!strcmp(levels[k], level)) {
            *v = (double)k;
            return 1;
        }
    char known[256] = "";
    for (size_t k = 0; k < n; k++) {
        size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, "%s%s", k ? ", " : "", levels[k]);
    }
    stats_set_error("row %zu, column %s: '%s' is not one of the study's levels (%s)", raw->first_row + row + 1,
                    raw->names[src], level, n ? known : "none: the study's column is not categorical");
    return STATS_ERANGE;
}

int stats_factor_rename(const stats_table_t *raw, size_t g, stats_table_t *t, size_t first)
{
    if (!raw->levels[g]) return STATS_OK;
    for (size_t k = 0; k < raw->nlevels[g]; k++) {
        const char *level = raw->levels[g][k];
        if (strpbrk(level, "=;")) {
            stats_set_error("column %s: level '%s' holds '=' or ';' (reserved in derived column names)",
                            raw->names[g], level);
            return STATS_EINVAL;
        }
        if (snprintf(t->names[first + k], STATS_NAME_MAX, "%s=%s", raw->names[g], level) >= STATS_NAME_MAX) {
            stats_set_error("column %s: the name '%s=%s' is too long", raw->names[g], raw->names[g], level);
            return STATS_EINVAL;
        }
    }
    return STATS_OK;
}
