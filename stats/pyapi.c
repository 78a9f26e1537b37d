/*
 * Entry points for language bindings (python/hestat loads libhestat.so with
 * ctypes): opaque handles and plain C types only, so a binding never mirrors
 * a struct of stats.h. Each call returns a stats status (0 or STATS_E*, with
 * stats_error() for the text) unless it says otherwise. Secret keys stay in
 * C: they are generated, saved (0600) and loaded here, and every image of
 * one is wiped; a binding holds only the pointer.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "stats/stats.h"

/* stats/report.c (declared in apps/client/client.h until it moves to stats.h). */
int stats_write_report_to(FILE *f, const stats_result_t *r, const stats_layout_t *lay, unsigned what,
                          const int *groups, size_t ngroups, const stats_table_t *compare,
                          stats_report_errors_t *worst);

#define PY_MAX_FILE ((size_t)1 << 34)

void stats_set_error(const char *fmt, ...); /* table.c */

void stats_py_free(void *p) { free(p); }
/* Clears stats_error() before a call, so a message is never an older call's. */
void stats_py_clear_error(void) { stats_set_error("%s", ""); }

/* ---- tables ------------------------------------------------------------------- */
/* A table from column names and row-major values (NaN = missing), copied. */
int stats_py_table_new(size_t ncols, size_t nrows, const char *const *names, const double *values,
                       stats_table_t **out)
{
    if (!out || !names || (nrows && !values) || !ncols || ncols > STATS_MAX_COLS) return STATS_EINVAL;
    for (size_t c = 0; c < ncols; c++)
        if (!names[c] || !names[c][0] || strlen(names[c]) >= STATS_NAME_MAX) return STATS_EINVAL;
    int rc = stats_table_new(ncols, nrows, out);
    if (rc) return rc;
    for (size_t c = 0; c < ncols; c++) snprintf((*out)->names[c], STATS_NAME_MAX, "%s", names[c]);
    if (nrows) memcpy((*out)->values, values, ncols * nrows * sizeof *values);
    return STATS_OK;
}

size_t stats_py_table_ncols(const stats_table_t *t) { return t->ncols; }
const char *stats_py_table_name(const stats_table_t *t, size_t c) { return c < t->ncols ? t->names[c] : NULL; }
/* Sum of column c over its present values (a histogram bin's count). */
double stats_py_table_sum(const stats_table_t *t, size_t c)
{
    long double s = 0;
    for (size_t r = 0; c < t->ncols && r < t->nrows; r++)
        if (!isnan(stats_value(t, r, c))) s += stats_value(t, r, c);
    return (double)s;
}

/* ---- studies -------------------------------------------------------------------- */
/* A context from SEAL-style bit sizes (the 128-bit check applies). */
int stats_py_context_new(size_t n, const int *bits, size_t count, ckks_context_t **out)
{
    ckks_params_t p;
    int rc = ckks_params_from_bits(&p, n, bits, count);
    if (!rc) rc = ckks_context_new(&p, out);
    return rc;
}

/* A fresh secret key and the study of table t with the given factors; takes
 * ctx (freed on failure too). */
int stats_py_study_create(ckks_context_t *ctx, const stats_table_t *t, const double *factors,
                          ckks_secret_key_t **sk, stats_study_t **out)
{
    *sk = NULL;
    *out = NULL;
    int rc = ckks_secret_key_new(ctx, sk);
    if (rc) {
        ckks_context_free(ctx);
        return STATS_ECKKS;
    }
    rc = stats_study_create_factors(ctx, t, *sk, factors, out);
    if (rc) {
        ckks_secret_key_free(*sk);
        *sk = NULL;
        ckks_context_free(ctx);
    }
    return rc;
}

size_t stats_py_study_ncols(const stats_study_t *s) { return s->layout.ncols; }
const char *stats_py_study_name(const stats_study_t *s, size_t c)
{
    return c < s->layout.ncols ? s->layout.names[c] : NULL;
}
double stats_py_study_factor(const stats_study_t *s, size_t c) { return c < s->layout.ncols ? s->layout.factor[c] : 0; }
size_t stats_py_study_poly_degree(const stats_study_t *s) { return ckks_context_n(s->ctx); }
size_t stats_py_study_data_primes(const stats_study_t *s) { return ckks_context_data_primes(s->ctx); }
/* Bits of every prime (special one included), the number the 128-bit table bounds. */
int stats_py_study_modulus_bits(const stats_study_t *s)
{
    double bits = 0;
    for (size_t i = 0; i <= ckks_context_data_primes(s->ctx); i++) bits += log2((double)ckks_context_prime(s->ctx, i));
    return (int)ceil(bits);
}
int stats_py_study_max_modulus_bits(const stats_study_t *s) { return ckks_max_modulus_bits(ckks_context_n(s->ctx)); }

/* ---- secret keys: never leave C ------------------------------------------------- */
int stats_py_secret_key_save(const ckks_secret_key_t *sk, const char *path)
{
    void *buf;
    size_t len;
    int rc = ckks_write_secret_key(sk, &buf, &len);
    if (rc) return STATS_ECKKS;
    rc = ckks_file_write(path, buf, len, 0600);
    sodium_memzero(buf, len);
    free(buf);
    return rc ? STATS_EIO : STATS_OK;
}

/* Reads path and checks that it is the study's key (STATS_EKEY otherwise). */
int stats_py_secret_key_load(const stats_study_t *s, const char *path, ckks_secret_key_t **sk)
{
    void *buf;
    size_t len;
    *sk = NULL;
    if (ckks_file_read(path, 1 << 28, &buf, &len)) return STATS_EIO;
    int rc = ckks_read_secret_key(s->ctx, buf, len, sk);
    sodium_memzero(buf, len);
    free(buf);
    if (rc) return STATS_ECKKS;
    rc = stats_study_check_key(s, *sk);
    if (rc) {
        ckks_secret_key_free(*sk);
        *sk = NULL;
    }
    return rc;
}

/* ---- files read into memory ------------------------------------------------------- */
int stats_py_file_read(const char *path, void **buf, size_t *len)
{
    return ckks_file_read(path, PY_MAX_FILE, buf, len) ? STATS_EIO : STATS_OK;
}

int stats_py_file_write(const char *path, const void *buf, size_t len)
{
    return ckks_file_write(path, buf, len, 0644) ? STATS_EIO : STATS_OK;
}

/* ---- encrypt, job, compute, decrypt --------------------------------------------------- */
/* The study's table from a raw one (derived columns rebuilt by name). */
int stats_py_derive(const stats_study_t *s, const stats_table_t *raw, stats_table_t **out, char *err,
                    size_t errlen)
{
    return stats_derive_like(raw, &s->layout, out, err, errlen);
}

/* A derived table (stats_py_derive) encrypted with the study's public key,
 * serialized. */
int stats_py_encrypt(const stats_study_t *s, const stats_table_t *t, void **buf, size_t *len)
{
    if (!t->nrows) return STATS_EINVAL;
    stats_layout_t lay = s->layout;
    lay.nrows = t->nrows;
    lay.chunks = (t->nrows + lay.rows_per_ct - 1) / lay.rows_per_ct;
    stats_enc_table_t *e;
    int rc = stats_encrypt(s->ctx, s->pk, NULL, t, &lay, 0x1p40, &e);
    if (rc) return rc;
    rc = stats_table_write(s, e, buf, len);
    stats_enc_table_free(e);
    return rc;
}

/* Whether buf is exactly one table of the study; *nrows its rows. */
int stats_py_table_check(const stats_study_t *s, const void *buf, size_t len, uint64_t *nrows)
{
    stats_enc_table_t *e;
    size_t used;
    int rc = stats_table_read(s, buf, len, &e, &used);
    if (rc) return rc;
    *nrows = e->layout.nrows;
    stats_enc_table_free(e);
    return used == len ? STATS_OK : STATS_ESCHEMA;
}

/* A job file: the study, the kind (1 means, 2 all), the serialized tables. */
int stats_py_job(const stats_study_t *s, int kind, const void *const *tables, const size_t *lens, size_t n,
                 void **buf, size_t *len)
{
    if (!n || (kind != STATS_JOB_MEANS && kind != STATS_JOB_ALL)) return STATS_EINVAL;
    stats_enc_table_t **ts = calloc(n, sizeof *ts);
    if (!ts) return STATS_ENOMEM;
    int rc = STATS_OK;
    for (size_t i = 0; i < n && !rc; i++) rc = stats_table_read(s, tables[i], lens[i], &ts[i], NULL);
    if (!rc) rc = stats_job_write(s, (stats_job_t)kind, (const stats_enc_table_t *const *)ts, n, buf, len);
    for (size_t i = 0; i < n; i++) stats_enc_table_free(ts[i]);
    free(ts);
    return rc;
}

int stats_py_decrypt(const stats_study_t *s, const ckks_secret_key_t *sk, const void *buf, size_t len,
                     stats_result_t **out)
{
    stats_enc_result_t *r;
    *out = NULL;
    int rc = stats_result_read(s, buf, len, &r);
    if (rc) return rc;
    stats_result_t *res = calloc(1, sizeof *res);
    if (!res) rc = STATS_ENOMEM;
    else rc = stats_decrypt(s->ctx, sk, r, res);
    stats_enc_result_free(r);
    if (rc) free(res);
    else *out = res;
    return rc;
}

void stats_py_result_free(stats_result_t *r)
{
    stats_result_free(r);
    free(r);
}
int stats_py_result_have_pairs(const stats_result_t *r) { return r->have_pairs; }
double stats_py_result_sum(const stats_result_t *r, size_t c) { return c < r->ncols ? (double)r->cols[c].sum : NAN; }

/* decrypted_results.csv's rows for means, variances, pairs and the groups
 * (column indices), as one NUL-terminated text; compare may be NULL. */
int stats_py_report(const stats_study_t *s, const stats_result_t *r, const int *groups, size_t ngroups,
                    const stats_table_t *compare, char **csv, size_t *len)
{
    FILE *f = open_memstream(csv, len);
    if (!f) return STATS_ENOMEM;
    unsigned what = STATS_REPORT_MEAN | STATS_REPORT_VAR | (r->have_pairs ? STATS_REPORT_CORR : 0);
    stats_report_errors_t worst;
    int rc = stats_write_report_to(f, r, &s->layout, what, r->have_pairs ? groups : NULL,
                                   r->have_pairs ? ngroups : 0, compare, &worst);
    if (fclose(f) && !rc) rc = STATS_EIO;
    if (rc) {
        free(*csv);
        *csv = NULL;
    }
    return rc;
}

/* Least squares y ~ 1 + x from a result (t NULL) or a plaintext table (r
 * NULL): coef and se (k + 1 each, intercept first), out3 = n, r2, sigma. */
int stats_py_regress(const stats_result_t *r, const stats_table_t *t, size_t y, const size_t *x, size_t k,
                     double *coef, double *se, double *out3)
{
    stats_regression_t rg;
    int rc = r ? stats_regress(r, y, x, k, &rg) : stats_reference_regress(t, y, x, k, &rg);
    if (rc) return rc;
    for (size_t i = 0; i <= k; i++) {
        coef[i] = (double)rg.coef[i];
        se[i] = (double)rg.se[i];
    }
    out3[0] = (double)rg.n;
    out3[1] = (double)rg.r2;
    out3[2] = (double)rg.sigma;
    return STATS_OK;
}

double stats_py_t_pvalue(double t, double df) { return (double)stats_t_pvalue(t, df); }

/* ---- tests with p-values, from a result's aggregates (inference.c) ---------------- */
/* count, mean and sample variance of column c where the 0/1 column g equals
 * level (rows with g missing left out). */
int stats_py_group_moments(const stats_result_t *r, size_t g, int level, size_t c, double out3[3])
{
    stats_moments_t m;
    int rc = stats_group_present(r, g, level, c, &m);
    if (rc) return rc;
    out3[0] = (double)m.count;
    out3[1] = (double)m.mean;
    out3[2] = (double)m.var;
    return STATS_OK;
}

static void moments_of(const double m3[3], stats_moments_t *m)
{
    memset(m, 0, sizeof *m);
    m->count = m3[0];
    m->mean = m3[1];
    m->var = m3[2];
    m->sd = sqrtl(m->var);
    m->sum = m->mean * m->count;
}

/* Welch then pooled (t, df, p) of two groups given as (count, mean, var). */
int stats_py_ttest(const double a3[3], const double b3[3], double out6[6])
{
    stats_moments_t a, b;
    stats_test_t w, p;
    moments_of(a3, &a);
    moments_of(b3, &b);
    int rc = stats_ttest(&a, &b, &w, &p);
    if (rc) return rc;
    const stats_test_t *t[2] = {&w, &p};
    for (int i = 0; i < 2; i++) {
        out6[3 * i] = (double)t[i]->stat;
        out6[3 * i + 1] = (double)t[i]->df;
        out6[3 * i + 2] = (double)t[i]->p;
    }
    return STATS_OK;
}

/* Pearson chi-square (statistic, df, p) of a rows x cols table of counts. */
int stats_py_chisq(const double *counts, size_t rows, size_t cols, double out3[3])
{
    if (!rows || !cols || rows > STATS_CHISQ_MAX || cols > STATS_CHISQ_MAX) return STATS_EINVAL;
    long double c[STATS_CHISQ_MAX * STATS_CHISQ_MAX];
    for (size_t i = 0; i < rows * cols; i++) c[i] = counts[i];
    stats_test_t t;
    int rc = stats_chisq_test(c, rows, cols, &t);
    if (rc) return rc;
    out3[0] = (double)t.stat;
    out3[1] = (double)t.df;
    out3[2] = (double)t.p;
    return STATS_OK;
}

/* t-test of a correlation r over n pairs: (t, df, p). */
int stats_py_corr_test(double r, double n, double out3[3])
{
    stats_test_t t;
    int rc = stats_corr_test(r, n, &t);
    if (rc) return rc;
    out3[0] = (double)t.stat;
    out3[1] = (double)t.df;
    out3[2] = (double)t.p;
    return STATS_OK;
}

/* Aggregates of a result: what 0 sum x_i x_j, 1 corr, 2 pairwise count n,
 * 3 sum x_i^2 (j ignored). */
double stats_py_result_value(const stats_result_t *r, size_t i, size_t j, int what)
{
    if (i >= r->ncols || j >= r->ncols || (what != 3 && !r->have_pairs)) return NAN;
    switch (what) {
    case 0: return (double)r->sxy[stats_ij(r, i, j)];
    case 1: return (double)r->pairs[stats_ij(r, i, j)].corr;
    case 2: return (double)r->pairs[stats_ij(r, i, j)].n;
    case 3: return (double)r->sumsq[i];
    default: return NAN;
    }
}

/* ---- rows finished in C (report_rows.c), as one NUL-terminated CSV text ------------- */
/* f's text into *csv, or freed on error. */
static int memstream_done(FILE *f, int rc, char **csv)
{
    if (fclose(f) && !rc) rc = STATS_EIO;
    if (rc) {
        free(*csv);
        *csv = NULL;
    }
    return rc;
}

/* The rows of one spec token quantile:COL:p;p;... or moments:COL (empty for
 * other tokens); cmp may be NULL. The reason in err on STATS_EINVAL. */
int stats_py_shape_rows(const stats_study_t *s, const stats_result_t *r, const char *tok, const stats_table_t *cmp,
                        char **csv, size_t *len, char *err, size_t errlen)
{
    FILE *f = open_memstream(csv, len);
    if (!f) return STATS_ENOMEM;
    return memstream_done(f, stats_shape_rows(f, tok, &s->layout, r, cmp, err, errlen), csv);
}

/* Fits glm:SPEC on one encrypted table of the study (serialized), its rounds
 * run in this process; t: the analyst's plaintext table derived like the
 * study's (stats_py_derive). The rows as hestat-client run writes them;
 * out6 = rounds, converged, server seconds, bytes of the rounds' totals,
 * rotations, relinearizations. */
int stats_py_glm(const stats_study_t *s, const ckks_secret_key_t *sk, const void *table, size_t tlen,
                 const stats_table_t *t, const char *spec, int compare, char **csv, size_t *len, double out6[6],
                 char *err, size_t errlen)
{
    stats_enc_table_t *e;
    size_t used;
    *csv = NULL;
    int rc = stats_table_read(s, table, tlen, &e, &used);
    if (!rc && used != tlen) {
        stats_enc_table_free(e);
        rc = STATS_ESCHEMA;
    }
    if (rc) return rc;
    FILE *f = open_memstream(csv, len);
    if (!f) {
        stats_enc_table_free(e);
        return STATS_ENOMEM;
    }
    stats_glm_fit_t fit;
    stats_glm_cost_t cost;
    rc = stats_glm_rows(f, spec, s, sk, e, t, compare, NULL, NULL, &fit, &cost, err, errlen);
    stats_enc_table_free(e);
    if (!rc) {
        out6[0] = fit.rounds;
        out6[1] = fit.converged;
        out6[2] = cost.server_s;
        out6[3] = (double)cost.download;
        out6[4] = (double)cost.counts.rotations;
        out6[5] = (double)cost.counts.relinearizations;
    }
    return memstream_done(f, rc, csv);
}
