/* Plaintext tables: CSV in and out, and a deterministic generator with the
 * Framingham schema. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/stats.h"

static _Thread_local char last_error[256];

const char *stats_error(void) { return last_error; }

void stats_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

const char *stats_strerror(int status)
{
    switch (status) {
    case STATS_OK: return "success";
    case STATS_EINVAL: return "invalid argument";
    case STATS_ENOMEM: return "out of memory";
    case STATS_ECSV: return "malformed CSV";
    case STATS_ERANGE: return "value outside its column's declared range";
    case STATS_ESCHEMA: return "tables or results of different layouts";
    case STATS_ECKKS: return "CKKS operation failed";
    case STATS_EIO: return "file could not be read or written";
    default: return "unknown stats error";
    }
}

int stats_table_new(size_t ncols, size_t nrows, stats_table_t **out)
{
    if (!out || ncols == 0 || ncols > STATS_MAX_COLS) return STATS_EINVAL;
    *out = NULL;
    if (nrows > SIZE_MAX / sizeof(double) / ncols) return STATS_ENOMEM;
    stats_table_t *t = calloc(1, sizeof *t);
    if (!t) return STATS_ENOMEM;
    t->ncols = ncols;
    t->nrows = nrows;
    t->values = malloc((nrows ? nrows : 1) * ncols * sizeof *t->values);
    if (!t->values) {
        free(t);
        return STATS_ENOMEM;
    }
    for (size_t i = 0; i < nrows * ncols; i++) t->values[i] = NAN;
    *out = t;
    return STATS_OK;
}

void stats_table_free(stats_table_t *t)
{
    if (!t) return;
    free(t->values);
    free(t);
}

int stats_column(const stats_table_t *t, const char *name)
{
    for (size_t c = 0; t && name && c < t->ncols; c++)
        if (!strcmp(t->names[c], name)) return (int)c;
    return -1;
}

/* ---- CSV ---- */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    if (e - s >= 2 && *s == '"' && e[-1] == '"') {
        e[-1] = 0;
        s++;
    }
    return s;
}

/* Splits line in place at commas; returns the field count (or max+1 if more). */
static size_t split(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *comma = strchr(p, ',');
        if (n < max) fields[n] = p;
        n++;
        if (!comma) break;
        *comma = 0;
        p = comma + 1;
    }
    return n;
}

int stats_read_csv(const char *path, stats_table_t **out, char *err, size_t errlen)
{
#define CSV_FAIL(...)                                   \
    do {                                                \
        if (err) snprintf(err, errlen, __VA_ARGS__);    \
        stats_set_error(__VA_ARGS__);                   \
        rc = STATS_ECSV;                                \
        goto done;                                      \
    } while (0)
    if (!path || !out) return STATS_EINVAL;
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (err) snprintf(err, errlen, "%s: %s", path, strerror(errno));
        stats_set_error("%s: %s", path, strerror(errno));
        return STATS_EIO;
    }
    int rc = STATS_OK;
    char *line = NULL, *fields[STATS_MAX_COLS + 1];
    size_t cap = 0, lineno = 0, ncols = 0, nrows = 0, rows_cap = 0;
    double *vals = NULL;
    char names[STATS_MAX_COLS][STATS_NAME_MAX];
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (lineno == 1) {
            ncols = split(line, fields, STATS_MAX_COLS);
            if (ncols > STATS_MAX_COLS) CSV_FAIL("%s:1: more than %d columns", path, STATS_MAX_COLS);
            for (size_t c = 0; c < ncols; c++) {
                char *name = trim(fields[c]);
                if (!*name) CSV_FAIL("%s:1: column %zu has an empty name", path, c + 1);
                if (strlen(name) >= STATS_NAME_MAX) CSV_FAIL("%s:1: column %zu: name too long", path, c + 1);
                for (size_t k = 0; k < c; k++)
                    if (!strcmp(names[k], name)) CSV_FAIL("%s:1: column name '%s' repeated", path, name);
                strcpy(names[c], name);
            }
            continue;
        }
        if (len == 0) continue; /* blank line */
        size_t n = split(line, fields, STATS_MAX_COLS);
        if (n != ncols)
            CSV_FAIL("%s:%zu: %zu fields, the header has %zu", path, lineno, n, ncols);
        if (nrows == rows_cap) {
            rows_cap = rows_cap ? 2 * rows_cap : 1024;
            double *grown = realloc(vals, rows_cap * ncols * sizeof *vals);
            if (!grown) {
                rc = STATS_ENOMEM;
                goto done;
            }
            vals = grown;
        }
        for (size_t c = 0; c < ncols; c++) {
            char *cell = trim(fields[c]), *end;
            double v;
            if (!*cell || !strcmp(cell, "NA")) {
                v = NAN;
            } else {
                errno = 0;
                v = strtod(cell, &end);
                if (*end || errno || !isfinite(v))
                    CSV_FAIL("%s:%zu: column %zu (%s): '%.32s' is not a number", path, lineno, c + 1,
                             names[c], cell);
            }
            vals[nrows * ncols + c] = v;
        }
        nrows++;
    }
    if (lineno == 0) CSV_FAIL("%s: empty file (no header)", path);
    stats_table_t *t;
    rc = stats_table_new(ncols, nrows, &t);
    if (rc) goto done;
    memcpy(t->names, names, sizeof names[0] * ncols);
    if (nrows) memcpy(t->values, vals, nrows * ncols * sizeof *vals);
    *out = t;
done:
    free(line);
    free(vals);
    fclose(f);
    return rc;
#undef CSV_FAIL
}

int stats_write_csv(const stats_table_t *t, const char *path)
{
    if (!t || !path) return STATS_EINVAL;
    FILE *f = fopen(path, "w");
    if (!f) return STATS_EIO;
    for (size_t c = 0; c < t->ncols; c++) fprintf(f, "%s%s", c ? "," : "", t->names[c]);
    fputc('\n', f);
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            double v = stats_value(t, r, c);
            if (c) fputc(',', f);
            if (isnan(v)) fputs("NA", f);
            else fprintf(f, "%.10g", v);
        }
        fputc('\n', f);
    }
    return fclose(f) ? STATS_EIO : STATS_OK;
}

/* ---- generator (synthetic data: splitmix64, not a security RNG) ---- */
typedef struct {
    uint64_t s;
    int have_spare;
    double spare;
} gen_t;

static uint64_t gen_u64(gen_t *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double gen_unif(gen_t *g) { return (double)(gen_u64(g) >> 11) / 9007199254740992.0; }

static double gen_normal(gen_t *g)
{
    if (g->have_spare) {
        g->have_spare = 0;
        return g->spare;
    }
    double u, v, s;
    do {
        u = 2 * gen_unif(g) - 1;
        v = 2 * gen_unif(g) - 1;
        s = u * u + v * v;
    } while (s >= 1 || s == 0);
    double k = sqrt(-2 * log(s) / s);
    g->spare = v * k;
    g->have_spare = 1;
    return u * k;
}

static double clamp(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }
static double round_to(double x, double step) { return round(x / step) * step; }

int stats_generate_framingham(size_t nrows, uint64_t seed, stats_table_t **out)
{
    static const char *names[16] = {"Gender",  "age",          "education",       "currentSmoker",
                                    "cigsPerDay", "BPMeds",    "prevalentStroke", "prevalentHyp",
                                    "diabetes", "totChol",     "sysBP",           "diaBP",
                                    "BMI",      "heartRate",   "glucose",         "TenYearCHD"};
    stats_table_t *t;
    int rc = stats_table_new(16, nrows, &t);
    if (rc) return rc;
    for (int c = 0; c < 16; c++) strcpy(t->names[c], names[c]);
    gen_t g = {seed * 0x2545f4914f6cdd1dULL + 1, 0, 0};
    for (size_t r = 0; r < nrows; r++) {
        double *v = t->values + r * 16;
        double age = round(clamp(49.6 + 8.6 * gen_normal(&g), 32, 70));
        int male = gen_unif(&g) < 0.429, smoker = gen_unif(&g) < 0.494;
        double u = gen_unif(&g);
        double hyp = gen_unif(&g) < 0.12 + 0.45 * (age - 32) / 38;
        double sys = round_to(clamp(122 + 22 * hyp + 0.35 * (age - 49.6) + 17 * gen_normal(&g), 83.5, 295), 0.5);
        double dia = round_to(clamp(0.38 * sys + 32.6 + 9.5 * gen_normal(&g), 48, 142.5), 0.5);
        double diab = gen_unif(&g) < 0.0257;
        double risk = -2.6 + 0.06 * (age - 49.6) + 0.5 * male + 0.02 * (sys - 132) + 1.0 * diab;
        v[0] = male;
        v[1] = age;
        v[2] = u < 0.025 ? NAN : u < 0.025 + 0.40 ? 1 : u < 0.025 + 0.69 ? 2 : u < 0.025 + 0.855 ? 3 : 4;
        v[3] = smoker;
        v[4] = gen_unif(&g) < 0.007 ? NAN : smoker ? round(clamp(18.3 + 10.5 * gen_normal(&g), 1, 70)) : 0;
        v[5] = gen_unif(&g) < 0.0125 ? NAN : gen_unif(&g) < 0.0296;
        v[6] = gen_unif(&g) < 0.0059;
        v[7] = hyp;
        v[8] = diab;
        v[9] = gen_unif(&g) < 0.0118 ? NAN : round(clamp(236.7 + 0.6 * (age - 49.6) + 43 * gen_normal(&g), 107, 696));
        v[10] = sys;
        v[11] = dia;
        v[12] = gen_unif(&g) < 0.0045 ? NAN : round_to(clamp(25.8 + 0.05 * (sys - 132) + 3.9 * gen_normal(&g), 15.54, 56.8), 0.01);
        v[13] = gen_unif(&g) < 0.0002 ? NAN : round(clamp(75.9 + 12 * gen_normal(&g), 44, 143));
        v[14] = gen_unif(&g) < 0.0915 ? NAN : round(clamp(82 + 60 * diab + 17 * gen_normal(&g), 40, 394));
        v[15] = gen_unif(&g) < 1 / (1 + exp(-risk));
    }
    *out = t;
    return STATS_OK;
}
