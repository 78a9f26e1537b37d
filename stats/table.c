/* Plaintext tables: CSV in and out, and a deterministic generator with the
 * Framingham schema. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <csv.h>

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
    case STATS_ESCHEMA: return "malformed or mismatched input (file, schema or layout)";
    case STATS_ECKKS: return "CKKS operation failed";
    case STATS_EIO: return "file could not be read or written";
    case STATS_EKEY: return "the secret key does not belong to this study";
    case STATS_EDECRYPT: return "decrypted values are not consistent";
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
    for (size_t c = 0; c < STATS_MAX_COLS; c++) free(t->levels[c]);
    free(t->values);
    free(t);
}

int stats_column(const stats_table_t *t, const char *name)
{
    for (size_t c = 0; t && name && c < t->ncols; c++)
        if (!strcmp(t->names[c], name)) return (int)c;
    return -1;
}

/* ---- CSV (RFC 4180 through libcsv) ----
 * The dialect: comma-separated, fields optionally in double quotes (commas,
 * doubled quotes and line breaks inside them), LF or CRLF line ends, an
 * optional UTF-8 byte-order mark (Excel's "CSV UTF-8"), blank lines skipped.
 * The first record names the columns; every later one holds numbers, "NA"
 * or an empty cell for a missing value. The file is fed to the parser one
 * line at a time so that every error names its line, and only until the
 * rows asked for are parsed (stats_csv_next): a reader holds a block of rows,
 * never the file. What a column is (numeric or a factor, and a factor's
 * texts) is decided once for the whole file, so a file read in blocks is
 * read exactly as a file read whole. */
struct stats_csv {
    char *path;
    FILE *f;
    struct csv_parser p;
    int parser_ready, eof;
    char *buf;            /* the current line (getline's) */
    size_t bufcap;
    uint64_t size;        /* the file's size in bytes; 0 when not a regular file */
    size_t line;          /* the line being parsed, from 1 */
    size_t last_record;   /* the line where the previous record ended */
    size_t field;         /* fields of the current record so far */
    int header_done, failed;
    size_t ncols;
    size_t nrows, cap;    /* rows parsed and not handed out yet (vals, lines) */
    size_t handed;        /* rows handed out before them */
    char names[STATS_MAX_COLS][STATS_NAME_MAX];
    double row[STATS_MAX_COLS];
    double *vals;
    size_t *lines;
    char *err;
    size_t errlen;
    int text[STATS_MAX_COLS]; /* 0 no value yet, 1 numeric, 2 text (a factor) */
    char (*dict[STATS_MAX_COLS])[STATS_NAME_MAX]; /* a factor's texts, in order of appearance */
    size_t ndict[STATS_MAX_COLS];
};

static void csv_fail(stats_csv_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void csv_fail(stats_csv_t *r, const char *fmt, ...)
{
    if (r->failed) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->err) snprintf(r->err, r->errlen, "%s", msg);
    stats_set_error("%s", msg);
    r->failed = STATS_ECSV;
}

/* Trims surrounding white space (quoted fields keep theirs from libcsv). */
static char *csv_trim(char *s, size_t *len)
{
    size_t n = *len;
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    s[n] = 0;
    *len = n;
    return s;
}

static void csv_header_field(stats_csv_t *r, char *name, size_t len)
{
    size_t c = r->field;
    if (c >= STATS_MAX_COLS) {
        csv_fail(r, "%s:%zu: more than %d columns", r->path, r->line, STATS_MAX_COLS);
        return;
    }
    if (memchr(name, 0, len)) {
        csv_fail(r, "%s:%zu: column %zu: the name holds a NUL byte", r->path, r->line, c + 1);
        return;
    }
    name = csv_trim(name, &len);
    if (!len) {
        csv_fail(r, "%s:%zu: column %zu has an empty name", r->path, r->line, c + 1);
        return;
    }
    if (len >= STATS_NAME_MAX) {
        csv_fail(r, "%s:%zu: column %zu: name too long ('%.32s...', at most %d bytes)", r->path, r->line, c + 1,
                 name, STATS_NAME_MAX - 1);
        return;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
            csv_fail(r, "%s:%zu: column %zu: the name holds a control character", r->path, r->line, c + 1);
            return;
        }
    for (size_t k = 0; k < c; k++)
        if (!strcmp(r->names[k], name)) {
            csv_fail(r, "%s:%zu: column name '%s' repeated (columns %zu and %zu)", r->path, r->line, name, k + 1,
                     c + 1);
            return;
        }
    memcpy(r->names[c], name, len + 1);
}

/* A text cell of column c: its index among the column's texts. */
static void csv_level(stats_csv_t *r, size_t c, const char *cell, size_t len)
{
    r->text[c] = 2;
    size_t k = 0;
    while (k < r->ndict[c] && strcmp(r->dict[c][k], cell)) k++;
    if (k == r->ndict[c]) {
        if (len >= STATS_NAME_MAX || k == STATS_FACTOR_MAX_LEVELS) {
            csv_fail(r, "%s:%zu: column %zu (%s): '%.32s' is %s", r->path, r->line, c + 1, r->names[c], cell,
                     len >= STATS_NAME_MAX ? "too long for a level name" : "a 17th level (a categorical column has at most 16)");
            return;
        }
        if (!r->dict[c] && !(r->dict[c] = calloc(STATS_FACTOR_MAX_LEVELS, sizeof *r->dict[c]))) {
            r->failed = STATS_ENOMEM;
            return;
        }
        memcpy(r->dict[c][k], cell, len + 1);
        r->ndict[c]++;
    }
    r->row[c] = (double)k;
}

static void csv_cell(stats_csv_t *r, char *cell, size_t len)
{
    size_t c = r->field;
    if (c >= r->ncols) return; /* counted; refused at the end of the record */
    cell = csv_trim(cell, &len);
    double v = NAN;
    if (len && strcmp(cell, "NA")) {
        char *end;
        errno = 0;
        v = strtod(cell, &end);
        if (end != cell + len && r->text[c] != 1) { /* text: a factor's level */
            csv_level(r, c, cell, len);
            return;
        }
        if (end != cell + len || errno || !isfinite(v)) {
            csv_fail(r, "%s:%zu: column %zu (%s): '%.32s' is not a number", r->path, r->line, c + 1, r->names[c],
                     cell);
            return;
        }
        if (r->text[c] == 2) {
            csv_fail(r, "%s:%zu: column %zu (%s): '%.32s' is a number in a column of texts (a categorical column)",
                     r->path, r->line, c + 1, r->names[c], cell);
            return;
        }
        r->text[c] = 1;
    }
    r->row[c] = v;
}

static void csv_on_field(void *data, size_t len, void *arg)
{
    stats_csv_t *r = arg;
    if (r->failed) return;
    if (!r->header_done) csv_header_field(r, data, len);
    else csv_cell(r, data, len);
    r->field++;
}

static void csv_on_record(int term, void *arg)
{
    (void)term;
    stats_csv_t *r = arg;
    if (r->failed) return;
    size_t n = r->field;
    r->field = 0;
    r->last_record = r->line;
    if (!r->header_done) {
        r->header_done = 1;
        r->ncols = n;
        return;
    }
    if (n != r->ncols) {
        csv_fail(r, "%s:%zu: %zu fields, the header has %zu", r->path, r->line, n, r->ncols);
        return;
    }
    if (r->nrows == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        if (cap > SIZE_MAX / sizeof(double) / r->ncols) {
            r->failed = STATS_ENOMEM;
            return;
        }
        double *vals = realloc(r->vals, cap * r->ncols * sizeof *vals);
        if (vals) r->vals = vals;
        size_t *lines = vals ? realloc(r->lines, cap * sizeof *lines) : NULL;
        if (lines) r->lines = lines;
        if (!vals || !lines) {
            r->failed = STATS_ENOMEM;
            return;
        }
        r->cap = cap;
    }
    memcpy(r->vals + r->nrows * r->ncols, r->row, r->ncols * sizeof *r->vals);
    r->lines[r->nrows++] = r->line;
}

/* Feeds the parser one more line, or at the end of the file finishes the
 * parse; r->failed or STATS_OK. */
static int csv_feed_line(stats_csv_t *r)
{
    errno = 0;
    ssize_t len = getline(&r->buf, &r->bufcap, r->f);
    if (len < 0) {
        r->eof = 1;
        if (ferror(r->f)) {
            csv_fail(r, "%s: %s", r->path, strerror(errno ? errno : EIO));
            r->failed = STATS_EIO;
        }
        if (!r->failed && csv_fini(&r->p, csv_on_field, csv_on_record, r) && !r->failed)
            csv_fail(r, "%s:%zu: end of file inside a quoted field opened after line %zu", r->path, r->line,
                     r->last_record);
        if (!r->failed && !r->header_done) csv_fail(r, "%s: empty file (no header)", r->path);
        return r->failed;
    }
    const char *s = r->buf;
    if (++r->line == 1 && len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) s += 3, len -= 3; /* UTF-8 BOM */
    if (csv_parse(&r->p, s, (size_t)len, csv_on_field, csv_on_record, r) != (size_t)len && !r->failed) {
        if (csv_error(&r->p) == CSV_EPARSE)
            csv_fail(r, "%s:%zu: malformed CSV: a quote inside an unquoted field, or text after a closing "
                     "quote (quote the whole field and double the quotes inside it)", r->path, r->line);
        else
            r->failed = STATS_ENOMEM;
    }
    return r->failed;
}

void stats_csv_close(stats_csv_t *r)
{
    if (!r) return;
    if (r->f) fclose(r->f);
    if (r->parser_ready) csv_free(&r->p);
    free(r->buf);
    free(r->vals);
    free(r->lines);
    for (size_t c = 0; c < STATS_MAX_COLS; c++) free(r->dict[c]);
    free(r->path);
    free(r);
}

int stats_csv_open(const char *path, stats_csv_t **out, char *err, size_t errlen)
{
    if (!path || !out) return STATS_EINVAL;
    *out = NULL;
    if (err && errlen) err[0] = 0;
    stats_csv_t *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path)) || csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL)) {
        stats_csv_close(r);
        return STATS_ENOMEM;
    }
    r->parser_ready = 1;
    r->err = err;
    r->errlen = errlen;
    if (!(r->f = fopen(path, "r"))) {
        csv_fail(r, "%s: %s", path, strerror(errno));
        stats_csv_close(r);
        return STATS_EIO;
    }
    struct stat st;
    if (!fstat(fileno(r->f), &st) && S_ISREG(st.st_mode)) r->size = (uint64_t)st.st_size;
    while (!r->header_done && !r->failed) csv_feed_line(r);
    int rc = r->failed;
    if (rc) stats_csv_close(r);
    else *out = r;
    return rc;
}

int stats_csv_next(stats_csv_t *r, size_t max_rows, stats_table_t **chunk, size_t **lines)
{
    if (!r || !chunk || !max_rows) return STATS_EINVAL;
    *chunk = NULL;
    if (lines) *lines = NULL;
    while (!r->failed && !r->eof && r->nrows < max_rows) csv_feed_line(r);
    if (r->failed) return r->failed;
    size_t n = r->nrows < max_rows ? r->nrows : max_rows, nc = r->ncols;
    stats_table_t *t = NULL;
    size_t *ln = NULL;
    int rc = stats_table_new(nc, n, &t);
    if (!rc && lines && !(ln = malloc((n ? n : 1) * sizeof *ln))) rc = STATS_ENOMEM;
    if (!rc) {
        memcpy(t->names, r->names, sizeof r->names[0] * nc);
        if (n) memcpy(t->values, r->vals, n * nc * sizeof *r->vals);
        t->first_row = r->handed;
        for (size_t c = 0; c < nc && !rc; c++)
            if (r->ndict[c]) rc = stats_table_set_factor(t, c, r->dict[c], r->ndict[c]);
    }
    if (rc) {
        stats_table_free(t);
        free(ln);
        return rc;
    }
    if (ln && n) memcpy(ln, r->lines, n * sizeof *ln);
    if (n < r->nrows) { /* rows past the block: a line that ended several records */
        memmove(r->vals, r->vals + n * nc, (r->nrows - n) * nc * sizeof *r->vals);
        memmove(r->lines, r->lines + n, (r->nrows - n) * sizeof *r->lines);
    }
    r->nrows -= n;
    r->handed += n;
    *chunk = t;
    if (lines) *lines = ln;
    return STATS_OK;
}

void stats_csv_position(const stats_csv_t *r, uint64_t *done, uint64_t *total)
{
    off_t at = r ? ftello(r->f) : -1;
    *done = at > 0 ? (uint64_t)at : 0;
    *total = r ? r->size : 0;
}

int stats_read_csv_lines(const char *path, stats_table_t **out, size_t **lines, char *err, size_t errlen)
{
    if (!path || !out) return STATS_EINVAL;
    *out = NULL;
    if (lines) *lines = NULL;
    stats_csv_t *r;
    int rc = stats_csv_open(path, &r, err, errlen);
    if (!rc) rc = stats_csv_next(r, SIZE_MAX, out, lines);
    stats_csv_close(r);
    return rc;
}

int stats_read_csv(const char *path, stats_table_t **out, char *err, size_t errlen)
{
    return stats_read_csv_lines(path, out, NULL, err, errlen);
}

int stats_csv_name(FILE *f, const char *name);

/* A name as one CSV field: quoted when it holds a comma, a quote or white
 * space at either end. */
int stats_csv_name(FILE *f, const char *name)
{
    size_t n = strlen(name);
    int plain = !strpbrk(name, ",\"\r\n") && !(n && (isspace((unsigned char)name[0]) ||
                                                      isspace((unsigned char)name[n - 1])));
    if (plain) return fputs(name, f) < 0 ? -1 : 0;
    return csv_fwrite(f, name, n) ? -1 : 0;
}

/* Whether %.{digits}g reads back as v (the shortest common form first). */
static int strtod_round_trips(double v, int digits)
{
    char s[40];
    snprintf(s, sizeof s, "%.*g", digits, v);
    return strtod(s, NULL) == v;
}

int stats_write_csv_rows(const stats_table_t *t, FILE *f, int header)
{
    if (!t || !f) return STATS_EINVAL;
    if (header) {
        for (size_t c = 0; c < t->ncols; c++) {
            if (c) fputc(',', f);
            stats_csv_name(f, t->names[c]);
        }
        fputc('\n', f);
    }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            double v = stats_value(t, r, c);
            if (c) fputc(',', f);
            if (isnan(v)) fputs("NA", f);
            else fprintf(f, "%.*g", strtod_round_trips(v, 15) ? 15 : 17, v);
        }
        fputc('\n', f);
    }
    return ferror(f) ? STATS_EIO : STATS_OK;
}

int stats_write_csv(const stats_table_t *t, const char *path)
{
    if (!t || !path) return STATS_EINVAL;
    FILE *f = fopen(path, "w");
    if (!f) return STATS_EIO;
    int rc = stats_write_csv_rows(t, f, 1);
    return fclose(f) || rc ? STATS_EIO : STATS_OK;
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

static void gen_row(gen_t *gp, double *v)
{
    double age = round(clamp(49.6 + 8.6 * gen_normal(gp), 32, 70));
    int male = gen_unif(gp) < 0.429, smoker = gen_unif(gp) < 0.494;
    double u = gen_unif(gp);
    double hyp = gen_unif(gp) < 0.12 + 0.45 * (age - 32) / 38;
    double sys = round_to(clamp(122 + 22 * hyp + 0.35 * (age - 49.6) + 17 * gen_normal(gp), 83.5, 295), 0.5);
    double dia = round_to(clamp(0.38 * sys + 32.6 + 9.5 * gen_normal(gp), 48, 142.5), 0.5);
    double diab = gen_unif(gp) < 0.0257;
    double risk = -2.6 + 0.06 * (age - 49.6) + 0.5 * male + 0.02 * (sys - 132) + 1.0 * diab;
    v[0] = male;
    v[1] = age;
    v[2] = u < 0.025 ? NAN : u < 0.025 + 0.40 ? 1 : u < 0.025 + 0.69 ? 2 : u < 0.025 + 0.855 ? 3 : 4;
    v[3] = smoker;
    v[4] = gen_unif(gp) < 0.007 ? NAN : smoker ? round(clamp(18.3 + 10.5 * gen_normal(gp), 1, 70)) : 0;
    v[5] = gen_unif(gp) < 0.0125 ? NAN : gen_unif(gp) < 0.0296;
    v[6] = gen_unif(gp) < 0.0059;
    v[7] = hyp;
    v[8] = diab;
    v[9] = gen_unif(gp) < 0.0118 ? NAN : round(clamp(236.7 + 0.6 * (age - 49.6) + 43 * gen_normal(gp), 107, 696));
    v[10] = sys;
    v[11] = dia;
    v[12] = gen_unif(gp) < 0.0045 ? NAN : round_to(clamp(25.8 + 0.05 * (sys - 132) + 3.9 * gen_normal(gp), 15.54, 56.8), 0.01);
    v[13] = gen_unif(gp) < 0.0002 ? NAN : round(clamp(75.9 + 12 * gen_normal(gp), 44, 143));
    v[14] = gen_unif(gp) < 0.0915 ? NAN : round(clamp(82 + 60 * diab + 17 * gen_normal(gp), 40, 394));
    v[15] = gen_unif(gp) < 1 / (1 + exp(-risk));
}

struct stats_generator {
    gen_t g;
    size_t ncols; /* 0: the Framingham schema; else the wide one (stats_generator_new_wide) */
    double *mu, *sd, *rho; /* the wide schema's columns 1 .. ncols-1 */
};

/* A row of the wide schema: group ~ Bernoulli(0.4), complete; column c has
 * mean mu_c + 0.3 sd_c group, loading rho_c on a factor shared by the row
 * (so columns correlate), 2 % missing, rounded to 0.01, never below 0. */
static void gen_wide_row(const stats_generator_t *w, gen_t *gp, double *v)
{
    double grp = gen_unif(gp) < 0.4, z = gen_normal(gp);
    v[0] = grp;
    for (size_t c = 1; c < w->ncols; c++) {
        double e = gen_normal(gp), x = w->rho[c] * z + sqrt(1 - w->rho[c] * w->rho[c]) * e;
        double val = round(fmax(0, w->mu[c] + w->sd[c] * (x + 0.3 * grp)) * 100) / 100; /* reads back as written */
        v[c] = gen_unif(gp) < 0.02 ? NAN : val;
    }
}

int stats_generator_new_wide(uint64_t seed, size_t ncols, stats_generator_t **out)
{
    if (!out || ncols < 2 || ncols > STATS_MAX_COLS) return STATS_EINVAL;
    int rc = stats_generator_new(seed, out);
    if (rc) return rc;
    stats_generator_t *w = *out;
    w->ncols = ncols;
    w->mu = calloc(ncols, sizeof *w->mu);
    w->sd = calloc(ncols, sizeof *w->sd);
    w->rho = calloc(ncols, sizeof *w->rho);
    if (!w->mu || !w->sd || !w->rho) {
        stats_generator_free(w);
        *out = NULL;
        return STATS_ENOMEM;
    }
    /* Column parameters from the seed too: means 1 ... 1000, spreads a
     * tenth to a third of the mean, loadings 0 ... 0.8. */
    for (size_t c = 1; c < ncols; c++) {
        w->mu[c] = pow(10, 3 * gen_unif(&w->g));
        w->sd[c] = w->mu[c] * (0.1 + 0.23 * gen_unif(&w->g));
        w->rho[c] = 0.8 * gen_unif(&w->g);
    }
    return STATS_OK;
}

int stats_generator_new(uint64_t seed, stats_generator_t **out)
{
    if (!out) return STATS_EINVAL;
    *out = calloc(1, sizeof **out);
    if (!*out) return STATS_ENOMEM;
    (*out)->g = (gen_t){seed * 0x2545f4914f6cdd1dULL + 1, 0, 0};
    return STATS_OK;
}

void stats_generator_free(stats_generator_t *g)
{
    if (!g) return;
    free(g->mu);
    free(g->sd);
    free(g->rho);
    free(g);
}

int stats_generator_next(stats_generator_t *gen, size_t nrows, stats_table_t **out)
{
    if (!gen || !out) return STATS_EINVAL;
    static const char *names[16] = {"Gender",  "age",          "education",       "currentSmoker",
                                    "cigsPerDay", "BPMeds",    "prevalentStroke", "prevalentHyp",
                                    "diabetes", "totChol",     "sysBP",           "diaBP",
                                    "BMI",      "heartRate",   "glucose",         "TenYearCHD"};
    stats_table_t *t;
    size_t C = gen->ncols ? gen->ncols : 16;
    int rc = stats_table_new(C, nrows, &t);
    if (rc) return rc;
    for (size_t c = 0; c < C; c++) {
        if (!gen->ncols) strcpy(t->names[c], names[c]);
        else if (c) snprintf(t->names[c], STATS_NAME_MAX, "x%zu", c);
        else strcpy(t->names[c], "group");
    }
    for (size_t r = 0; r < nrows; r++) {
        if (gen->ncols) gen_wide_row(gen, &gen->g, t->values + r * C);
        else gen_row(&gen->g, t->values + r * C);
    }
    *out = t;
    return STATS_OK;
}

int stats_generate_framingham(size_t nrows, uint64_t seed, stats_table_t **out)
{
    stats_generator_t *g;
    int rc = stats_generator_new(seed, &g);
    if (rc) return rc;
    rc = stats_generator_next(g, nrows, out);
    stats_generator_free(g);
    return rc;
}
