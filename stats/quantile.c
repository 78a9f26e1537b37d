/* Quantiles from encrypted bin counts, skewness and kurtosis from encrypted
 * third and fourth power sums: derived columns the contributors' clients
 * build, finished by the analyst from the totals the server already computes.
 *
 * Quantiles. quantile:COL:p1,p2,... lays a grid of K = D x D bins (D = 8)
 * of equal width w = (HI - LO) / K over [LO, HI], the column's range in the
 * schema table at keygen; x falls in bin k = floor((x - LO) / w), clamped to
 * [0, K-1] (the first and last bins take what lies outside the grid). Bin k
 * is written as two digits, k = D a + b, each a one-hot group of D columns:
 *   "COL q[LO:HI]/DxD hi=a"   1 when x's high digit is a,
 *   "COL q[LO:HI]/DxD lo=b"   1 when x's low digit is b (0 where x is missing),
 * so 2D columns carry D^2 bins: the count of bin (a, b) is the pairwise sum
 * of hi=a and lo=b, one of the sums the server computes for every pair.
 * The analyst reads R's type-7 quantile, x_(j) + g (x_(j+1) - x_(j)) with
 * h = (n-1) p, j = floor(h), g = h - j (0-based order statistics), placing
 * the ranks of a bin evenly inside it: the i-th of c values of bin k at
 * LO + w (k + (i + 1/2) / c). Each order statistic then lies in the bin of
 * the true one, so |estimate - R's quantile| < w whenever the values lie in
 * [LO, HI] (the report states w; outside the grid the end bins are open).
 *
 * Shape. moments:COL adds "(COL-C)^2" and its copy "(COL-C)^2 again":
 * y = (x - C)^2, missing with x, C a public centre (the schema table's mean,
 * 3 significant digits). With u = x - C: sum u^2 = sum y, sum u^3 =
 * sum x y - C sum y (the pairwise sum of COL and y) and sum u^4 = sum y y'
 * (the pairwise sum of y and its copy). From these power sums about C the
 * central moments m_k = sum (x - mean)^k / n follow with little cancellation
 * (mean - C is small next to the spread), then skewness m3 / m2^(3/2) and
 * kurtosis m4 / m2^2 (the moments package's skewness() and kurtosis(): not
 * bias-corrected, kurtosis not in excess of 3). Why not fewer columns: raw
 * sums of x^3 and x^4 lose a factor (mean/sd)^4 of precision in m4, and
 * sum y^2 from y's own slot (the imaginary part, next to sum y) carries an
 * error relative to sum y, not to itself; both measured 10-100 times worse. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/stats.h"

void stats_set_error(const char *fmt, ...);

static int fail(char *err, size_t errlen, const char *fmt, const char *a)
{
    if (err) snprintf(err, errlen, fmt, a);
    return STATS_EINVAL;
}

void stats_spec_join(char *spec)
{
    int in_quantile = 0;
    for (char *p = spec; *p; p++) {
        if (p == spec || p[-1] == ',') in_quantile = !strncmp(p, "quantile:", 9);
        if (*p != ',' || !in_quantile) continue;
        char *end;
        strtod(p + 1, &end);
        if (end != p + 1 && (*end == ',' || *end == 0)) *p = ';'; /* a probability: the same token */
    }
}

/* The shortest %g that reads back as v. */
static void num(char *s, size_t n, double v)
{
    for (int d = 6; d <= 17; d++) {
        snprintf(s, n, "%.*g", d, v);
        if (strtod(s, NULL) == v) return;
    }
}

/* "COL q[LO:HI]/DxD hi=a" or "... lo=b": the parts, 1 when name is one. */
typedef struct {
    char col[STATS_NAME_MAX];
    double lo, hi;
    size_t digits, index;
    int high;
} qname_t;

static int parse_qname(const char *name, qname_t *q)
{
    const char *at = strstr(name, " q[");
    if (!at || (size_t)(at - name) >= STATS_NAME_MAX) return 0;
    char kind[3];
    size_t d1, d2, idx;
    int used = 0;
    if (sscanf(at + 3, "%lf:%lf]/%zux%zu %2[hilo]=%zu%n", &q->lo, &q->hi, &d1, &d2, kind, &idx, &used) != 6 ||
        at[3 + used] || d1 != d2 || d1 < 2 || d1 > 16 || idx >= d1 || !(q->hi > q->lo) || !isfinite(q->lo) ||
        !isfinite(q->hi) || (strcmp(kind, "hi") && strcmp(kind, "lo")))
        return 0;
    snprintf(q->col, sizeof q->col, "%.*s", (int)(at - name), name);
    q->digits = d1;
    q->index = idx;
    q->high = !strcmp(kind, "hi");
    return 1;
}

static size_t bin_of(double x, double lo, double hi, size_t bins)
{
    double w = (hi - lo) / (double)bins, k = floor((x - lo) / w);
    return k < 0 ? 0 : k >= (double)bins ? bins - 1 : (size_t)k;
}

int stats_centred_square(const stats_table_t *src, const char *name, char *col, double *centre)
{
    size_t len = strlen(name);
    int copy = len > 6 && !strcmp(name + len - 6, " again");
    if (copy) len -= 6;
    if (len < 6 || name[0] != '(' || strncmp(name + len - 3, ")^2", 3)) return 0;
    for (const char *m = name + len - 4; m > name + 1; m--) {
        if (*m != '-') continue;
        char *end;
        double c = strtod(m + 1, &end);
        if (end != name + len - 3 || !isfinite(c) || (size_t)(m - name - 1) >= STATS_NAME_MAX) continue;
        snprintf(col, STATS_NAME_MAX, "%.*s", (int)(m - name - 1), name + 1);
        if (src && stats_column(src, col) < 0) continue;
        *centre = c;
        return 1 + copy;
    }
    return 0;
}

int stats_derive_extra(const stats_table_t *src, const char *name, stats_table_t *t, size_t c)
{
    qname_t q;
    double centre = 0;
    int square = stats_centred_square(src, name, q.col, &centre);
    if (!square && !parse_qname(name, &q)) return 0;
    int s = stats_column(src, q.col);
    if (s < 0) {
        stats_set_error("no column '%s' for '%s'", q.col, name);
        return STATS_EINVAL;
    }
    for (size_t r = 0; r < t->nrows; r++) {
        double x = stats_value(src, r, (size_t)s), v = NAN;
        if (!isnan(x) && square) {
            v = (x - centre) * (x - centre);
        } else if (!isnan(x)) {
            size_t k = bin_of(x, q.lo, q.hi, q.digits * q.digits);
            v = (q.high ? k / q.digits : k % q.digits) == q.index;
        }
        t->values[r * t->ncols + c] = isnan(x) ? (square ? NAN : 0) : v;
    }
    return 1;
}

/* t with the named columns appended (values from stats_derive_extra). */
static int append(const stats_table_t *t, char (*names)[STATS_NAME_MAX], size_t n, stats_table_t **out)
{
    if (t->ncols + n > STATS_MAX_COLS) return STATS_EINVAL;
    stats_table_t *w;
    int rc = stats_table_new(t->ncols + n, t->nrows, &w);
    if (rc) return rc;
    memcpy(w->names, t->names, sizeof t->names[0] * t->ncols);
    for (size_t r = 0; r < t->nrows; r++)
        memcpy(w->values + r * w->ncols, t->values + r * t->ncols, t->ncols * sizeof *t->values);
    for (size_t i = 0; i < n && rc >= 0; i++) {
        memcpy(w->names[t->ncols + i], names[i], STATS_NAME_MAX);
        rc = stats_derive_extra(t, names[i], w, t->ncols + i);
    }
    if (rc < 0) {
        stats_table_free(w);
        return rc;
    }
    *out = w;
    return STATS_OK;
}

/* Probabilities "p1;p2;..." (after stats_spec_join), each in [0, 1]. */
int stats_quantile_probs(const char *list, double *p, size_t max, size_t *n)
{
    *n = 0;
    while (list && *list) {
        char *end;
        double v = strtod(list, &end);
        if (end == list || (*end && *end != ';') || !(v >= 0 && v <= 1) || *n == max) return STATS_EINVAL;
        p[(*n)++] = v;
        list = *end ? end + 1 : NULL;
    }
    return *n ? STATS_OK : STATS_EINVAL;
}

int stats_spec_quantile(const stats_table_t *raw, stats_table_t **t, const char *arg, char *err, size_t errlen)
{
    char col[STATS_NAME_MAX + 1];
    const char *colon = strrchr(arg, ':');
    if (!colon || (size_t)(colon - arg) >= sizeof col)
        return fail(err, errlen, "quantile '%s' needs COL:p1,p2,... (probabilities in [0, 1])", arg);
    snprintf(col, sizeof col, "%.*s", (int)(colon - arg), arg);
    double p[64];
    size_t np;
    if (stats_quantile_probs(colon + 1, p, 64, &np))
        return fail(err, errlen, "quantile: '%s' is not a list of probabilities in [0, 1]", colon + 1);
    int c = stats_column(raw, col);
    if (c < 0) return fail(err, errlen, "quantile: no column '%s'", col);
    for (size_t i = (*t)->ncols; i-- > raw->ncols;)
        if (!strncmp((*t)->names[i], col, strlen(col)) && !strncmp((*t)->names[i] + strlen(col), " q[", 3))
            return STATS_OK; /* the bins are already there */
    double lo = INFINITY, hi = -INFINITY;
    for (size_t r = 0; r < raw->nrows; r++) {
        double x = stats_value(raw, r, (size_t)c);
        if (isnan(x)) continue;
        lo = fmin(lo, x);
        hi = fmax(hi, x);
    }
    if (!(hi > lo))
        return fail(err, errlen, "quantile: column '%s' needs at least two different values in the schema table "
                    "(its range sets the bins)", col);
    char names[2 * STATS_QUANTILE_DIGITS][STATS_NAME_MAX], a[32], b[32];
    num(a, sizeof a, lo);
    num(b, sizeof b, hi);
    for (size_t i = 0; i < 2 * STATS_QUANTILE_DIGITS; i++) {
        size_t D = STATS_QUANTILE_DIGITS;
        int len = snprintf(names[i], STATS_NAME_MAX, "%s q[%s:%s]/%zux%zu %s=%zu", col, a, b, D, D,
                           i < D ? "hi" : "lo", i % D);
        if (len >= STATS_NAME_MAX) return fail(err, errlen, "quantile: the bin names of '%s' are too long", col);
    }
    stats_table_t *w;
    int rc = append(*t, names, 2 * STATS_QUANTILE_DIGITS, &w);
    if (rc == STATS_EINVAL) return fail(err, errlen, "too many columns for the study with the bins of '%s'", col);
    if (rc) return rc;
    stats_table_free(*t);
    *t = w;
    return STATS_OK;
}

/* "(COL-C)^2" of column COL of t, or NULL-string when none. */
static int find_centred(const stats_table_t *t, const char *col, char *name)
{
    for (size_t c = 0; c < t->ncols; c++) {
        char src[STATS_NAME_MAX];
        double centre;
        if (stats_centred_square(NULL, t->names[c], src, &centre) && !strcmp(src, col)) {
            memcpy(name, t->names[c], STATS_NAME_MAX);
            return (int)c;
        }
    }
    return -1;
}

int stats_spec_moments(const stats_table_t *raw, stats_table_t **t, const char *col, char *err, size_t errlen)
{
    int c = stats_column(raw, col);
    if (c < 0) return fail(err, errlen, "moments: no column '%s'", col);
    char names[2][STATS_NAME_MAX], centre[32];
    if (find_centred(*t, col, names[0]) >= 0) return STATS_OK;
    long double sum = 0, n = 0;
    for (size_t r = 0; r < raw->nrows; r++)
        if (!isnan(stats_value(raw, r, (size_t)c))) sum += stats_value(raw, r, (size_t)c), n += 1;
    snprintf(centre, sizeof centre, "%.3g", n > 0 ? (double)(sum / n) : 0.0);
    num(centre, sizeof centre, strtod(centre, NULL));
    if (snprintf(names[0], STATS_NAME_MAX, "(%s-%s)^2", col, centre) >= STATS_NAME_MAX ||
        snprintf(names[1], STATS_NAME_MAX, "(%s-%s)^2 again", col, centre) >= STATS_NAME_MAX)
        return fail(err, errlen, "moments: column name '%s' too long", col);
    stats_table_t *w;
    int rc = append(*t, names, 2, &w);
    if (rc == STATS_EINVAL) return fail(err, errlen, "too many columns for the study with '%s^2'", col);
    if (rc) return rc;
    stats_table_free(*t);
    *t = w;
    return STATS_OK;
}

/* ---- the analyst's side ---- */

int stats_quantile_bins(const stats_result_t *r, const stats_layout_t *lay, const char *col, stats_bins_t *out)
{
    if (!r || !lay || !col || !out || !r->have_pairs) return STATS_EINVAL;
    memset(out, 0, sizeof *out);
    int hi[16], lo[16];
    size_t D = 0;
    for (int i = 0; i < 16; i++) hi[i] = lo[i] = -1;
    for (size_t c = 0; c < lay->ncols; c++) {
        qname_t q;
        if (!parse_qname(lay->names[c], &q) || strcmp(q.col, col)) continue;
        if (D && (q.digits != D || q.lo != out->lo || q.hi != out->hi)) return STATS_ESCHEMA;
        D = q.digits;
        out->lo = q.lo;
        out->hi = q.hi;
        (q.high ? hi : lo)[q.index] = (int)c;
    }
    if (!D) return STATS_EINVAL;
    for (size_t i = 0; i < D; i++)
        if (hi[i] < 0 || lo[i] < 0) return STATS_ESCHEMA;
    out->bins = D * D;
    out->width = (out->hi - out->lo) / (double)out->bins;
    for (size_t a = 0; a < D; a++)
        for (size_t b = 0; b < D; b++) {
            long double c = roundl(r->sxy[stats_ij(r, (size_t)hi[a], (size_t)lo[b])]);
            out->counts[a * D + b] = c > 0 ? c : 0;
            out->n += out->counts[a * D + b];
        }
    return STATS_OK;
}

/* The 0-based order statistic i placed inside its bin; *bin = that bin. */
static long double order_stat(const stats_bins_t *b, long double i, size_t *bin)
{
    long double below = 0;
    size_t k = 0;
    while (k + 1 < b->bins && below + b->counts[k] <= i) below += b->counts[k++];
    *bin = k;
    long double c = b->counts[k] > 0 ? b->counts[k] : 1;
    return b->lo + b->width * ((long double)k + (i - below + 0.5L) / c);
}

long double stats_quantile_from_bins(const stats_bins_t *b, double p, size_t *bin_a, size_t *bin_b)
{
    if (!b || !(b->n >= 1) || !(p >= 0 && p <= 1)) return NAN;
    long double h = (b->n - 1) * p, j = floorl(h), g = h - j;
    long double x = order_stat(b, j, bin_a);
    *bin_b = *bin_a;
    if (g > 0 && j + 1 < b->n) x += g * (order_stat(b, j + 1, bin_b) - x);
    return x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

long double stats_reference_quantile(const stats_table_t *t, size_t c, double p)
{
    double *v = malloc((t->nrows ? t->nrows : 1) * sizeof *v);
    size_t n = 0;
    if (!v) return NAN;
    for (size_t r = 0; r < t->nrows; r++)
        if (!isnan(stats_value(t, r, c))) v[n++] = stats_value(t, r, c);
    long double x = NAN;
    if (n) {
        qsort(v, n, sizeof *v, cmp_double);
        long double h = (long double)(n - 1) * p, j = floorl(h), g = h - j;
        size_t i = (size_t)j;
        x = v[i] + (i + 1 < n ? g * ((long double)v[i + 1] - v[i]) : 0);
    }
    free(v);
    return x;
}

/* Central moments from power sums s1..s4 of u = x - C over n values (any C). */
static void shape_from_sums(long double n, long double s1, long double s2, long double s3, long double s4,
                            stats_shape_t *out)
{
    long double m = s1 / n;
    long double m2 = s2 / n - m * m;
    long double m3 = s3 / n - 3 * m * s2 / n + 2 * m * m * m;
    long double m4 = s4 / n - 4 * m * s3 / n + 6 * m * m * s2 / n - 3 * m * m * m * m;
    out->n = n;
    out->skewness = m2 > 0 ? m3 / powl(m2, 1.5L) : NAN;
    out->kurtosis = m2 > 0 ? m4 / (m2 * m2) : NAN;
}

int stats_shape(const stats_result_t *r, size_t c, size_t c2, size_t c3, double centre, stats_shape_t *out)
{
    if (!r || !out || !r->have_pairs || c >= r->ncols || c2 >= r->ncols || c3 >= r->ncols || c == c2 ||
        c2 == c3 || c == c3)
        return STATS_EINVAL;
    long double n = r->cols[c].count, C = centre;
    if (!(n >= 1)) return STATS_EINVAL;
    /* y = (x - C)^2 is present exactly where x is: sum u = sum x - n C,
     * sum u^2 = sum y, sum u^3 = sum x y - C sum y, sum u^4 = sum y y'. */
    long double sy = r->cols[c2].sum, sxy = r->sxy[stats_ij(r, c, c2)], syy = r->sxy[stats_ij(r, c2, c3)];
    shape_from_sums(n, r->cols[c].sum - n * C, sy, sxy - C * sy, syy, out);
    return STATS_OK;
}

int stats_reference_shape(const stats_table_t *t, size_t c, stats_shape_t *out)
{
    if (!t || !out || c >= t->ncols) return STATS_EINVAL;
    long double n = 0, s = 0;
    for (size_t r = 0; r < t->nrows; r++)
        if (!isnan(stats_value(t, r, c))) n += 1, s += stats_value(t, r, c);
    if (!(n >= 1)) return STATS_EINVAL;
    long double m = s / n, m2 = 0, m3 = 0, m4 = 0;
    for (size_t r = 0; r < t->nrows; r++) {
        double x = stats_value(t, r, c);
        if (isnan(x)) continue;
        long double d = x - m;
        m2 += d * d;
        m3 += d * d * d;
        m4 += d * d * d * d;
    }
    m2 /= n, m3 /= n, m4 /= n;
    out->n = n;
    out->skewness = m2 > 0 ? m3 / powl(m2, 1.5L) : NAN;
    out->kurtosis = m2 > 0 ? m4 / (m2 * m2) : NAN;
    return STATS_OK;
}
