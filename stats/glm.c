/*
 * Generalised linear models (logistic, Poisson) on encrypted tables, fitted
 * by Newton's method with the analyst in the loop.
 *
 * Each round the analyst publishes coefficients gamma (on the scaled columns
 * x/f of the study) and the server returns, encrypted, only O(k^2) totals over
 * the complete cases: sum W, sum W x_j, sum W x_i x_j (the information), sum mu,
 * sum mu x_j (with the exact sums sum y, sum y x_j, sum x_j and n: the score
 * X'(y - mu)), and for the deviance sum softplus(eta) (logistic). The analyst
 * decrypts those and takes the Newton step; no row-level number leaves the
 * server.
 *
 * Server, per chunk (row-major layout, B slots a row, see encrypted.c):
 *  1. R = Z + conj(Z) = 2 x/f. E = R * w, w = gamma_j / (2L) at the slots of
 *     the regressors; rotations by 1, 2, .., B/2 sum every window of B slots,
 *     so slot rB + j holds sum_j gamma_j x_rj / L for every j <= the first
 *     regressor's position. Centring (a public constant) gives
 *     t = (eta - a) / L with a = gamma_0 + sum gamma_j mid_j and
 *     L = 1.05 sum |gamma_j| halfwidth_j over the declared ranges (0
 *     included: missing values are 0): every slot, the windows that straddle
 *     two rows included, holds a value in [-1, 1].
 *  2. The inverse link (and its derivative, and softplus) as Chebyshev
 *     interpolants on [-1, 1] (the smallest degree of 7, 15, 31, 63 whose
 *     measured error is below 1e-10; 63 for the logistic, 15 for the Poisson
 *     model of the real table), evaluated by
 *     recursive division P = A + T_m B (m a power of two), whose leaves are
 *     c0 + c1 T_1: depth ceil(log2(d + 1)), and every node lands on an exact
 *     target level and scale (constants are encoded at the scale that makes
 *     it so), so nothing is rounded to "close enough" scales.
 *  3. The model's columns shifted left by s = (last model column - first
 *     regressor) so each sits where step 1 left that row's W and mu; products
 *     with masked column products Q_d = R rot(R, d) (all pairs at once, one
 *     product per distance d) and with X~ = (m at y's slot, x_j at x_j's).
 *     Everything on the data side of these products is independent of the
 *     coefficients: stats_glm_prepare computes it once per fit, and a round
 *     is steps 1, 2 and 9 products a chunk. Chunks run on the context's
 *     threads.
 * Totals of all chunks are added, shifted apart and folded over rows into
 * ceil(aggregates / (B / span)) ciphertexts at the lowest level.
 *
 * Levels: 1 (E) + depth (6) + 1 (products) = 8 rescales: 9 data primes. At
 * N = 16384 that is 58 + 8 x 40 bits, with a 60-bit special prime: 438 bits,
 * the 128-bit bound (keygen picks these when --stats asks for glm:).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_cdf.h>
#include <omp.h>

#include "stats/stats.h"

void stats_set_error(const char *fmt, ...);

#define TRY(call)                                                             \
    do {                                                                      \
        int rc_ = (call);                                                     \
        if (rc_ != CKKS_OK) {                                                 \
            stats_set_error("glm: %s: %s", #call, ckks_strerror(rc_));       \
            rc = rc_ == CKKS_ENOMEM ? STATS_ENOMEM : STATS_ECKKS;             \
            goto done;                                                        \
        }                                                                     \
    } while (0)

#define MAXT (STATS_MAX_REGRESSORS + 1)
#define MAXDEG 63
#define FINAL_SCALE 0x1p40
#define POLY_PRIMES 2 /* level of W, mu: one more rescale to the last prime */

const int stats_glm_bits[STATS_GLM_NBITS] = {60, 35, 35, 35, 35, 35, 35, 35, 35, 35, 60};

/* ---- the model ---- */

static int layout_col(const stats_layout_t *lay, const char *name, size_t len, int cc)
{
    char want[STATS_NAME_MAX + 4];
    snprintf(want, sizeof want, "%s%.*s", cc ? "cc:" : "", (int)len, name);
    for (size_t c = 0; c < lay->ncols; c++)
        if (!strcmp(lay->names[c], want)) return (int)c;
    return -1;
}

int stats_glm_parse(const char *spec, const stats_layout_t *lay, stats_glm_model_t *m, char *err, size_t errlen)
{
    if (!spec || !m) return STATS_EINVAL;
    memset(m, 0, sizeof *m);
    const char *tilde = strchr(spec, '~'), *fam = strrchr(spec, ':');
    if (!tilde || !fam || fam < tilde) {
        if (err) snprintf(err, errlen, "glm '%s' needs Y~X1+X2:binomial or Y~X1+X2:poisson", spec);
        return STATS_EINVAL;
    }
    if (!strcmp(fam + 1, "binomial")) m->family = STATS_GLM_BINOMIAL;
    else if (!strcmp(fam + 1, "poisson")) m->family = STATS_GLM_POISSON;
    else {
        if (err) snprintf(err, errlen, "glm '%s': family '%s' is not binomial or poisson", spec, fam + 1);
        return STATS_EINVAL;
    }
    snprintf(m->name, sizeof m->name, "%s", spec);
    size_t n = 0;
    for (const char *p = spec; p < fam;) {
        const char *end = n == 0 ? tilde : p;
        if (n) while (end < fam && *end != '+') end++;
        size_t len = (size_t)(end - p);
        if (n > STATS_MAX_REGRESSORS || len == 0 || len >= STATS_NAME_MAX) {
            if (err) snprintf(err, errlen, "glm '%s': at most %d regressors, each named", spec, STATS_MAX_REGRESSORS);
            return STATS_EINVAL;
        }
        snprintf(m->terms[n], STATS_NAME_MAX, "%.*s", (int)len, p);
        if (lay) {
            int c = layout_col(lay, p, len, 1);
            if (c < 0) {
                if (err) snprintf(err, errlen, "glm '%s': the study has no column cc:%s (keygen --stats glm:...)", spec,
                                  m->terms[n]);
                return STATS_EINVAL;
            }
            if (n == 0) m->y = (size_t)c;
            else m->x[n - 1] = (size_t)c;
        }
        n++;
        p = end + 1;
    }
    if (n < 2) {
        if (err) snprintf(err, errlen, "glm '%s' needs at least one regressor", spec);
        return STATS_EINVAL;
    }
    m->k = n - 1;
    int yl = -1;
    if (lay && m->family == STATS_GLM_POISSON) {
        char name[STATS_NAME_MAX + 8];
        snprintf(name, sizeof name, "xlogx:%s", m->terms[0]);
        yl = layout_col(lay, name, strlen(name), 0);
    }
    m->have_ylogy = yl >= 0;
    m->ylogy = yl >= 0 ? (size_t)yl : 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(m->terms[i], m->terms[j])) {
                if (err) snprintf(err, errlen, "glm '%s': column '%s' appears twice", spec, m->terms[i]);
                return STATS_EINVAL;
            }
    return STATS_OK;
}

int stats_glm_spec_check(const stats_table_t *raw, const char *spec, char *err, size_t errlen)
{
    stats_glm_model_t m;
    int rc = stats_glm_parse(spec, NULL, &m, err, errlen);
    if (rc) return rc;
    int cols[MAXT];
    for (size_t i = 0; i <= m.k; i++) {
        cols[i] = stats_column(raw, m.terms[i]);
        if (cols[i] < 0) {
            if (err) snprintf(err, errlen, "glm '%s': no column '%s'", spec, m.terms[i]);
            return STATS_EINVAL;
        }
    }
    for (size_t r = 0; r < raw->nrows; r++) {
        double y = stats_value(raw, r, (size_t)cols[0]);
        if (isnan(y)) continue;
        if (m.family == STATS_GLM_BINOMIAL ? y != 0 && y != 1 : y < 0) {
            if (err)
                snprintf(err, errlen, "glm '%s': %s has the value %g; a %s model needs %s", spec, m.terms[0], y,
                         m.family == STATS_GLM_BINOMIAL ? "binomial" : "Poisson",
                         m.family == STATS_GLM_BINOMIAL ? "0/1 values" : "counts >= 0");
            return STATS_EINVAL;
        }
    }
    return STATS_OK;
}

int stats_glm_add_xlogx(const stats_table_t *t, const char *y, stats_table_t **out)
{
    if (!t || !y || !out) return STATS_EINVAL;
    *out = NULL;
    char cc[STATS_NAME_MAX + 4], name[STATS_NAME_MAX + 8];
    snprintf(cc, sizeof cc, "cc:%s", y);
    snprintf(name, sizeof name, "xlogx:%s", y);
    int src = stats_column(t, cc);
    if (src < 0 || strlen(name) >= STATS_NAME_MAX) return STATS_EINVAL;
    if (stats_column(t, name) >= 0) return STATS_OK; /* another model of the same Y */
    if (t->ncols >= STATS_MAX_COLS) return STATS_EINVAL;
    stats_table_t *w;
    int rc = stats_table_new(t->ncols + 1, t->nrows, &w);
    if (rc) return rc;
    memcpy(w->names, t->names, sizeof t->names[0] * t->ncols);
    memcpy(w->names[t->ncols], name, strlen(name) + 1); /* < STATS_NAME_MAX, checked above */
    for (size_t r = 0; r < t->nrows; r++) {
        memcpy(&w->values[r * w->ncols], &t->values[r * t->ncols], t->ncols * sizeof(double));
        w->values[r * w->ncols + t->ncols] = stats_xlogx(stats_value(t, r, (size_t)src));
    }
    *out = w;
    return STATS_OK;
}

double stats_xlogx(double x)
{
    return isnan(x) ? NAN : x > 0 ? x * log(x) : 0;
}

/* ---- the public functions evaluated on t in [-1, 1] ---- */

enum { FN_MU, FN_W, FN_SP, NFN };

typedef struct {
    long double a, L;       /* eta = a + L t */
    long double norm[NFN];  /* outputs are f / norm, within [-1, 1] */
    double coef[NFN][MAXDEG + 1];
    unsigned degree;        /* the largest of deg[] */
    unsigned deg[NFN];
    int nfn;                /* polynomials evaluated: 1 (Poisson: W = mu), 2 or 3 */
    long double max_err;    /* max |P - f / norm| * norm on a fine grid, for mu */
    long double w_err;      /* the same for W (it moves the standard errors, not the estimates) */
} glm_poly_t;

static long double link_fn(int family, int fn, long double eta)
{
    if (family == STATS_GLM_POISSON) return expl(eta);
    long double mu = eta >= 0 ? 1 / (1 + expl(-eta)) : expl(eta) / (1 + expl(eta));
    if (fn == FN_MU) return mu;
    if (fn == FN_W) return mu * (1 - mu);
    return eta > 0 ? eta + log1pl(expl(-eta)) : log1pl(expl(eta)); /* softplus */
}

static long double cheb_eval(const double *c, unsigned d, long double t)
{
    long double b1 = 0, b2 = 0;
    for (unsigned k = d; k >= 1; k--) {
        long double b0 = 2 * t * b1 - b2 + c[k];
        b2 = b1;
        b1 = b0;
    }
    return t * b1 - b2 + c[0];
}

/* Chebyshev interpolation at the d + 1 Chebyshev nodes. For an analytic
 * function the error decays like rho^-d (logistic: poles at +-i pi, so
 * rho = (pi + sqrt(pi^2 + L^2)) / L, 1.47 at L = 8 and degree 63: 3e-11;
 * exp: super-geometric once d > L). The bound used is measured: the largest
 * |P - f| on 4001 points of [-1, 1], in long double. */
/* Interpolant of f / nm of degree d; returns its measured error (times nm). */
static long double fn_interp(int family, int f, long double a, long double L, long double nm, unsigned d,
                             double *coef)
{
    long double c[MAXDEG + 1] = {0};
    for (unsigned j = 0; j <= d; j++) {
        long double th = (long double)M_PI * (j + 0.5L) / (d + 1);
        long double v = link_fn(family, f, a + L * cosl(th)) / nm;
        for (unsigned k = 0; k <= d; k++) c[k] += v * cosl(k * th);
    }
    memset(coef, 0, (MAXDEG + 1) * sizeof *coef);
    for (unsigned k = 0; k <= d; k++) coef[k] = (double)(c[k] * 2 / (d + 1) / (k ? 1 : 2));
    long double worst = 0;
    for (int i = 0; i <= 4000; i++) {
        long double t = -1 + i / 2000.0L;
        long double e = fabsl(cheb_eval(coef, d, t) - link_fn(family, f, a + L * t) / nm) * nm;
        if (e > worst) worst = e;
    }
    return worst;
}

/* Degrees: the smallest of 7, 15, 31, 63 (at most dmax) whose measured error
 * is within tol of the function's largest value: mu to tol (1e-10 by
 * default: the estimates), W to 1e-4 (it moves the standard errors only, and
 * its errors mostly cancel in the sums: measured 1e-7 to 7e-7 relative in the
 * standard errors on the real table), softplus with mu's degree. */
static void glm_poly_make(int family, long double a, long double L, unsigned dmax, double tol, int deviance,
                          glm_poly_t *p)
{
    memset(p, 0, sizeof *p);
    p->a = a;
    p->L = L;
    p->nfn = family == STATS_GLM_POISSON ? 1 : deviance ? 3 : 2;
    long double hi = a + L, lo = a - L;
    for (int f = 0; f < p->nfn; f++) {
        long double nm;
        if (family == STATS_GLM_POISSON) nm = expl(hi);
        else if (f == FN_MU) nm = 1;
        else if (f == FN_W) nm = 0.25L;
        else nm = fmaxl(link_fn(family, FN_SP, hi), link_fn(family, FN_SP, lo));
        p->norm[f] = nm;
        long double want = f == FN_W ? 1e-4L : tol, err = 0;
        unsigned d = 1;
        if (f == FN_SP) {
            d = p->deg[FN_MU];
            err = fn_interp(family, f, a, L, nm, d, p->coef[f]);
        } else {
            for (d = dmax < 7 ? dmax : 7;; d = 2 * d + 1) {
                err = fn_interp(family, f, a, L, nm, d, p->coef[f]);
                if (err <= want * nm || 2 * d + 1 > dmax) break;
            }
        }
        p->deg[f] = d;
        if (d > p->degree) p->degree = d;
        if (f == FN_MU) p->max_err = err;
        if (f == FN_W) p->w_err = err;
    }
}

/* ---- the plan: the model's columns and the totals (both sides) ---- */

typedef struct {
    size_t nt;              /* terms: 0 = y, 1..k = regressors */
    size_t pos[MAXT];       /* layout positions */
    long double center[MAXT], half[MAXT]; /* scaled ranges of the regressors */
} glm_plan_t;

static int glm_plan(const stats_layout_t *lay, const stats_glm_model_t *m, const stats_glm_point_t *pt,
                    glm_plan_t *pl)
{
    memset(pl, 0, sizeof *pl);
    if (m->k == 0 || m->k > STATS_MAX_REGRESSORS || m->y >= lay->ncols) return STATS_EINVAL;
    if (m->have_ylogy && m->ylogy >= lay->ncols) return STATS_EINVAL;
    pl->nt = m->k + 1;
    pl->pos[0] = m->y;
    for (size_t j = 1; j < pl->nt; j++) {
        size_t c = m->x[j - 1];
        if (c >= lay->ncols || c == m->y) return STATS_EINVAL;
        pl->pos[j] = c;
    }
    for (size_t j = 1; pt && j < pl->nt; j++) {
        long double lo = fminl(pt->lo[j], 0), hi = fmaxl(pt->hi[j], 0);
        pl->center[j] = (lo + hi) / 2;
        pl->half[j] = (hi - lo) / 2;
    }
    return STATS_OK;
}

static void glm_point_poly(int family, const glm_plan_t *pl, const stats_glm_point_t *pt, glm_poly_t *poly)
{
    long double a = pt->gamma[0], L = 0;
    for (size_t j = 1; j < pl->nt; j++) {
        a += pt->gamma[j] * pl->center[j];
        L += fabsl(pt->gamma[j]) * pl->half[j];
    }
    unsigned d = pt->degree ? pt->degree : MAXDEG;
    if (L > 0) {
        L *= 1.05L;
    } else { /* every slope 0 (the first round): t = 0 in every slot, f is a constant */
        L = 1e-12L;
        d = 1;
    }
    glm_poly_make(family, a, L, d, pt->tol > 0 ? pt->tol : 1e-10, pt->deviance, poly);
}

/* A total the analyst receives, and the terms it is about. */
enum { T_NONE, T_N, T_SY, T_SX, T_SYX, T_YLOGY, T_SW, T_SMU, T_SWX, T_SMUX, T_INFO, T_SSP };
typedef struct {
    unsigned char what, a, b;
} glm_total_t;
/* A sample carries two totals: the sums over all slots of the real part
 * (coefficient 0 of the plaintext) and of the imaginary part (coefficient N/2). */
typedef struct {
    glm_total_t re, im;
} glm_item_t;

#define MAXITEMS (8 + 2 * MAXT + MAXT * MAXT)

typedef struct {
    size_t ndata, count; /* the data side's items (the same every round) come first */
    glm_item_t it[MAXITEMS];
} glm_items_t;

static void items_pair(glm_items_t *L, const glm_total_t *t, size_t n)
{
    for (size_t i = 0; i < n; i += 2) {
        glm_item_t *x = &L->it[L->count++];
        x->re = t[i];
        x->im = i + 1 < n ? t[i + 1] : (glm_total_t){T_NONE, 0, 0};
    }
}

/* Both sides list the items in this order; the server pairs totals of equal
 * scale: the packed columns (n, sum y, sum x_j, sum y log y), their products
 * with y, then the round's: Q = W + i mu times m and times x_j, W times two
 * pair products x_a x_b + i x_c x_d, softplus times m. */
static void glm_items(const glm_plan_t *pl, int ylogy, int deviance, glm_items_t *L)
{
    memset(L, 0, sizeof *L);
    glm_total_t t[MAXT * MAXT];
    const size_t k = pl->nt - 1;
    size_t n = 0;
    t[n++] = (glm_total_t){T_N, 0, 0};
    t[n++] = (glm_total_t){T_SY, 0, 0};
    for (size_t j = 1; j <= k; j++) t[n++] = (glm_total_t){T_SX, (unsigned char)j, 0};
    if (ylogy) t[n++] = (glm_total_t){T_YLOGY, 0, 0};
    items_pair(L, t, n);
    n = 0;
    for (size_t j = 1; j <= k; j++) t[n++] = (glm_total_t){T_SYX, (unsigned char)j, 0};
    items_pair(L, t, n);
    L->ndata = L->count;
    L->it[L->count++] = (glm_item_t){{T_SW, 0, 0}, {T_SMU, 0, 0}};
    for (size_t j = 1; j <= k; j++)
        L->it[L->count++] = (glm_item_t){{T_SWX, (unsigned char)j, 0}, {T_SMUX, (unsigned char)j, 0}};
    n = 0;
    for (size_t a = 1; a <= k; a++)
        for (size_t b = a; b <= k; b++) t[n++] = (glm_total_t){T_INFO, (unsigned char)a, (unsigned char)b};
    items_pair(L, t, n);
    if (deviance) L->it[L->count++] = (glm_item_t){{T_SSP, 0, 0}, {T_NONE, 0, 0}};
}

/* ---- the result: extracted samples ---- */

void stats_glm_enc_free(stats_glm_enc_t *e)
{
    if (!e) return;
    free(e->scale);
    free(e->b);
    free(e->a);
    free(e);
}

static int enc_alloc(size_t count, size_t n, uint64_t q, stats_glm_enc_t **out)
{
    stats_glm_enc_t *e = calloc(1, sizeof *e);
    if (!e) return STATS_ENOMEM;
    e->count = count;
    e->n = n;
    e->q = q;
    e->scale = calloc(count ? count : 1, sizeof *e->scale);
    e->b = calloc(2 * (count ? count : 1), sizeof *e->b);
    e->a = calloc((count ? count : 1) * n, sizeof *e->a);
    if (!e->scale || !e->b || !e->a) {
        stats_glm_enc_free(e);
        return STATS_ENOMEM;
    }
    *out = e;
    return STATS_OK;
}

/* Sample i from x: c0's coefficients 0 and N/2 and all of c1, modulo the
 * first prime (the other primes are dropped, as a mod switch would). The
 * rest of c0 stays here: without it no other coefficient of the plaintext,
 * so no slot, can be decrypted. */
static int extract(const ckks_ciphertext_t *x, uint64_t *tmp, stats_glm_enc_t *e, size_t i)
{
    if (x->size != 2 || x->nprimes < 1) return STATS_EINVAL;
    const size_t n = e->n, np = x->nprimes;
    const ntt_tables_t *t = ckks_context_ntt(x->ctx, 0);
    ntt_inverse_to(t, tmp, x->data);
    e->b[2 * i] = tmp[0] % e->q;
    e->b[2 * i + 1] = tmp[n / 2] % e->q;
    ntt_inverse_to(t, e->a + i * n, x->data + np * n);
    for (size_t j = 0; j < n; j++) e->a[i * n + j] %= e->q;
    e->scale[i] = x->scale;
    return STATS_OK;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

#define ENC_MAGIC "HSTGLMR2"
#define ENC_HEAD 24 /* magic, u32 count, u32 n, u64 q */

int stats_glm_enc_write(const stats_glm_enc_t *e, void **out, size_t *len)
{
    if (!e || !out || !len || !e->count) return STATS_EINVAL;
    const size_t per = 24 + 8 * e->n, total = ENC_HEAD + e->count * per;
    unsigned char *b = malloc(total);
    if (!b) return STATS_ENOMEM;
    memcpy(b, ENC_MAGIC, 8);
    put_u64(b + 8, (uint64_t)e->count | (uint64_t)e->n << 32);
    put_u64(b + 16, e->q);
    for (size_t i = 0; i < e->count; i++) {
        unsigned char *p = b + ENC_HEAD + i * per;
        uint64_t bits;
        memcpy(&bits, &e->scale[i], 8);
        put_u64(p, bits);
        put_u64(p + 8, e->b[2 * i]);
        put_u64(p + 16, e->b[2 * i + 1]);
        for (size_t j = 0; j < e->n; j++) put_u64(p + 24 + 8 * j, e->a[i * e->n + j]);
    }
    *out = b;
    *len = total;
    return STATS_OK;
}

int stats_glm_enc_read(const ckks_context_t *ctx, const void *buf, size_t len, stats_glm_enc_t **out)
{
    if (!ctx || !buf || !out) return STATS_EINVAL;
    *out = NULL;
    const unsigned char *b = buf;
    const size_t n = ckks_context_n(ctx);
    const uint64_t q = ckks_context_prime(ctx, 0);
    if (len < ENC_HEAD || memcmp(b, ENC_MAGIC, 8)) {
        stats_set_error("glm: not a round result (%s)", len < ENC_HEAD ? "too short" : "bad magic");
        return STATS_ESCHEMA;
    }
    uint64_t cn = get_u64(b + 8), count = cn & 0xffffffffu, rn = cn >> 32;
    if (rn != n || get_u64(b + 16) != q) {
        stats_set_error("glm: the round result is for other parameters (N %llu, q %llu)", (unsigned long long)rn,
                        (unsigned long long)get_u64(b + 16));
        return STATS_ESCHEMA;
    }
    const size_t per = 24 + 8 * n;
    if (count == 0 || count > MAXITEMS || len != ENC_HEAD + count * per) {
        stats_set_error("glm: the round result has %llu samples in %zu bytes", (unsigned long long)count, len);
        return STATS_ESCHEMA;
    }
    stats_glm_enc_t *e;
    int rc = enc_alloc((size_t)count, n, q, &e);
    if (rc) return rc;
    for (size_t i = 0; i < count && !rc; i++) {
        const unsigned char *p = b + ENC_HEAD + i * per;
        uint64_t bits = get_u64(p);
        memcpy(&e->scale[i], &bits, 8);
        if (!isfinite(e->scale[i]) || e->scale[i] < 1 || e->scale[i] > 0x1p120) rc = STATS_ESCHEMA;
        e->b[2 * i] = get_u64(p + 8);
        e->b[2 * i + 1] = get_u64(p + 16);
        if (e->b[2 * i] >= q || e->b[2 * i + 1] >= q) rc = STATS_ESCHEMA;
        for (size_t j = 0; j < n && !rc; j++)
            if ((e->a[i * n + j] = get_u64(p + 24 + 8 * j)) >= q) rc = STATS_ESCHEMA;
    }
    if (rc) {
        stats_set_error("glm: the round result has a value out of range");
        stats_glm_enc_free(e);
        return rc;
    }
    *out = e;
    return STATS_OK;
}

/* ---- server ---- */

typedef struct {
    const ckks_context_t *ctx;
    const ckks_relin_key_t *rk;
    const ckks_galois_keys_t *gk;
    stats_counts_t *n;
    ckks_plaintext_t *pt;
    size_t S, B;
} glm_srv_t;

/* Left rotation by 0 <= step < N/2: its own key when the study has one,
 * else the fewest rotations by the study's keyed steps (stats_rotate: the
 * baby steps 1 .. g-1, the giant steps -g b and the folds). */
static int g_rot(glm_srv_t *s, const ckks_ciphertext_t *a, long step, ckks_ciphertext_t *out)
{
    return stats_rotate(s->ctx, s->gk, a, step, out, &s->n->rotations);
}

/* out = relinearize(a * b), rescaled. */
static int g_mul(glm_srv_t *s, const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, ckks_ciphertext_t *out)
{
    s->n->multiplications++;
    s->n->relinearizations++;
    s->n->rescales++;
    int rc = ckks_multiply(a, b, out);
    if (!rc) rc = ckks_relinearize(out, s->rk, out);
    if (!rc) rc = ckks_rescale(out, out);
    return rc;
}

/* A copy of a at nprimes (mod-switched down). */
static int g_at(const ckks_ciphertext_t *a, size_t nprimes, ckks_ciphertext_t *out)
{
    if (a->nprimes < nprimes) return CKKS_ELEVEL;
    if (a->nprimes == nprimes) return ckks_ciphertext_copy(out, a);
    return ckks_mod_switch(a, nprimes, out);
}

/* acc += x (*set 0: acc = x). */
static int g_acc(ckks_ciphertext_t *acc, const ckks_ciphertext_t *x, int *set)
{
    int rc = *set ? ckks_add(acc, x, acc) : ckks_ciphertext_copy(acc, x);
    *set = 1;
    return rc;
}

/* The monomial X^(N/2) at scale 1: multiplying by it moves a ciphertext's
 * values to the imaginary part exactly. It is i e_k in slot k, e_k = +1 or
 * -1 by the slot's parity (SEAL's slots are at the roots zeta^(3^k)), not i
 * everywhere; the totals stay right because they are read back through the
 * same monomial: the coefficient of X^(N/2) gives sum_k e_k Im(v_k), and
 * the e_k cancel. */
static int i_plain(const ckks_context_t *ctx, size_t nprimes, ckks_plaintext_t **out)
{
    int rc = ckks_plaintext_new(ctx, nprimes, out);
    if (rc) return rc;
    const size_t n = ckks_context_n(ctx);
    ckks_plaintext_t *p = *out;
    memset(p->data, 0, nprimes * n * sizeof *p->data);
    for (size_t i = 0; i < nprimes; i++) {
        p->data[i * n + n / 2] = 1;
        ntt_forward(ckks_context_ntt(ctx, i), p->data + i * n);
    }
    p->scale = 1.0;
    return CKKS_OK;
}

/* out = a + i b. */
static int g_cplx(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, const ckks_plaintext_t *ip,
                  ckks_ciphertext_t *tmp, ckks_ciphertext_t *out)
{
    int rc = ckks_multiply_plain(b, ip, tmp);
    if (!rc) rc = ckks_add(a, tmp, out);
    return rc;
}

/* Chebyshev evaluation by recursive division; T[j] = T_{2^j}(t). */
typedef struct {
    glm_srv_t *s;
    ckks_ciphertext_t **T;
    ckks_ciphertext_t *pool[64];
    size_t npool;
} glm_cheb_t;

static ckks_ciphertext_t *cheb_tmp(glm_cheb_t *c)
{
    if (c->npool == 0) {
        ckks_ciphertext_t *x = NULL;
        ckks_ciphertext_new(c->s->ctx, 2, 1, &x);
        return x;
    }
    return c->pool[--c->npool];
}

static void cheb_put(glm_cheb_t *c, ckks_ciphertext_t *x)
{
    if (!x) return;
    if (c->npool < 64) c->pool[c->npool++] = x;
    else ckks_ciphertext_free(x);
}

static int cheb_eval_ct(glm_cheb_t *c, const double *coef, unsigned d, size_t level, double scale,
                        ckks_ciphertext_t *out)
{
    glm_srv_t *s = c->s;
    int rc = STATS_OK;
    ckks_ciphertext_t *x = cheb_tmp(c), *b = NULL, *tm = NULL;
    if (!x) return STATS_ENOMEM;
    if (d <= 1) {
        const ckks_ciphertext_t *t1 = c->T[0];
        TRY(g_at(t1, level + 1, x));
        double enc = scale * (double)ckks_context_prime(s->ctx, level) / x->scale;
        TRY(ckks_multiply_const(x, d ? coef[1] : 0.0, enc, out));
        s->n->rescales++;
        TRY(ckks_rescale(out, out));
        out->scale = scale;
        TRY(ckks_encode_constant(s->ctx, coef[0], scale, level, s->pt));
        TRY(ckks_add_plain(out, s->pt, out));
        goto done;
    }
    unsigned m = 1, j = 0;
    while (2 * m <= d) {
        m *= 2;
        j++;
    }
    double bc[MAXDEG + 1] = {0}, ac[MAXDEG + 1] = {0};
    bc[0] = coef[m];
    for (unsigned i = m + 1; i <= d; i++) bc[i - m] = 2 * coef[i];
    for (unsigned i = 0; i < m; i++) ac[i] = coef[i];
    for (unsigned i = m + 1; i <= d; i++) ac[2 * m - i] -= coef[i];
    b = cheb_tmp(c);
    tm = cheb_tmp(c);
    if (!b || !tm) {
        rc = STATS_ENOMEM;
        goto done;
    }
    TRY(g_at(c->T[j], level + 1, tm));
    double bscale = scale * (double)ckks_context_prime(s->ctx, level) / tm->scale;
    rc = cheb_eval_ct(c, bc, d - m, level + 1, bscale, b);
    if (rc) goto done;
    TRY(g_mul(s, b, tm, x));
    x->scale = scale;
    rc = cheb_eval_ct(c, ac, m - 1, level, scale, out);
    if (rc) goto done;
    TRY(ckks_add(out, x, out));
done:
    cheb_put(c, x);
    cheb_put(c, b);
    cheb_put(c, tm);
    return rc;
}

/* T_{2^j}, j = 1 .. log2(degree): T_2m = 2 T_m^2 - 1. */
static int cheb_powers(glm_cheb_t *c, unsigned d)
{
    int rc = STATS_OK;
    for (unsigned j = 1, m = 2; m <= d; j++, m *= 2) {
        ckks_ciphertext_t *x = c->T[j];
        TRY(g_mul(c->s, c->T[j - 1], c->T[j - 1], x));
        TRY(ckks_add(x, x, x));
        TRY(ckks_encode_constant(c->s->ctx, 1.0, x->scale, x->nprimes, c->s->pt));
        TRY(ckks_sub_plain(x, c->s->pt, x));
    }
done:
    return rc;
}

/* One thread's scratch: ciphertexts, its Chebyshev pool, its counts. */
#define NACC (MAXT + 2)
typedef struct {
    glm_srv_t s;
    glm_cheb_t ch;
    stats_counts_t counts;
    ckks_ciphertext_t *R, *M, *tmp, *tmp2;
    ckks_ciphertext_t *acc[NACC]; /* a group's packed columns, before the rescale */
    int set[NACC];
    int rc;
    char err[256];
} glm_worker_t;

static void worker_free(glm_worker_t *k)
{
    ckks_ciphertext_t *all[] = {k->R, k->M, k->tmp, k->tmp2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ckks_ciphertext_free(all[i]);
    for (size_t i = 0; i < NACC; i++) ckks_ciphertext_free(k->acc[i]);
    for (size_t i = 0; i < k->ch.npool; i++) ckks_ciphertext_free(k->ch.pool[i]);
    ckks_plaintext_free(k->s.pt);
}

static int worker_init(glm_worker_t *k, const ckks_context_t *ctx, const ckks_relin_key_t *rk,
                       const ckks_galois_keys_t *gk, const stats_layout_t *lay)
{
    int rc = STATS_OK;
    memset(k, 0, sizeof *k);
    k->s.ctx = ctx;
    k->s.rk = rk;
    k->s.gk = gk;
    k->s.n = &k->counts;
    k->s.S = lay->slots;
    k->s.B = lay->block;
    k->ch.s = &k->s;
    TRY(ckks_plaintext_new(ctx, 0, &k->s.pt));
    ckks_ciphertext_t **all[] = {&k->R, &k->M, &k->tmp, &k->tmp2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) TRY(ckks_ciphertext_new(ctx, 2, 0, all[i]));
    for (size_t i = 0; i < NACC; i++) TRY(ckks_ciphertext_new(ctx, 2, 0, &k->acc[i]));
done:
    return rc;
}

/* A group of B chunks, packed: row r of the group's k-th chunk sits at slot
 * (r - 1) B + k (mod S) of every packed column, so every slot is a row and
 * the link's polynomials run once per B chunks. */
typedef struct {
    ckks_ciphertext_t *X[MAXT];    /* x_j / f_j (j >= 1) at top - 1 primes: eta each round */
    ckks_ciphertext_t *op[MAXITEMS]; /* data operand of each round item, at POLY_PRIMES */
} glm_group_t;

struct stats_glm_prep {
    const ckks_context_t *ctx;
    const stats_layout_t *lay;
    stats_glm_model_t model;
    glm_plan_t pl;
    size_t top, nchunks, ngroups;
    double final; /* the polynomials' output scale: 2^(bits of q_1) */
    int nth;
    glm_worker_t *wk;
    glm_group_t *groups;
    ckks_plaintext_t *ip, *ip1; /* i at POLY_PRIMES and at one prime */
    ckks_ciphertext_t **T; /* T_{2^j} of the group in work */
    ckks_ciphertext_t *poly[NFN], *Q, *acc[MAXITEMS];
    stats_glm_enc_t *data; /* the data side's samples, extracted once */
};

void stats_glm_prep_free(stats_glm_prep_t *p)
{
    if (!p) return;
    for (int i = 0; p->wk && i < p->nth; i++) worker_free(&p->wk[i]);
    for (size_t g = 0; p->groups && g < p->ngroups; g++) {
        for (size_t j = 0; j < MAXT; j++) ckks_ciphertext_free(p->groups[g].X[j]);
        for (size_t j = 0; j < MAXITEMS; j++) ckks_ciphertext_free(p->groups[g].op[j]);
    }
    for (size_t j = 0; p->T && j < 8; j++) ckks_ciphertext_free(p->T[j]);
    for (int f = 0; f < NFN; f++) ckks_ciphertext_free(p->poly[f]);
    for (size_t j = 0; j < MAXITEMS; j++) ckks_ciphertext_free(p->acc[j]);
    ckks_ciphertext_free(p->Q);
    ckks_plaintext_free(p->ip);
    ckks_plaintext_free(p->ip1);
    stats_glm_enc_free(p->data);
    free(p->T);
    free(p->wk);
    free(p->groups);
    free(p);
}

/* The first error of the workers, made this thread's. */
static int workers_rc(stats_glm_prep_t *p)
{
    for (int i = 0; i < p->nth; i++)
        if (p->wk[i].rc) {
            stats_set_error("%s", p->wk[i].err);
            return p->wk[i].rc;
        }
    return STATS_OK;
}

/* Chunk at position k of its group, into the worker's accumulators: R = Z +
 * conj Z (= 2 x / f) and M rotated left by B - k put column p of row r at
 * slot (r - 1) B + p + k; a 0/1 mask keeps column cols[j] (offset cols[j] + k
 * mod B) in acc[j], and m at y's column in acc[ncols]. A rotation by cols[j]
 * later brings every chunk of the group to its own offset k. */
static int chunk_pack(glm_worker_t *w, const size_t *cols, size_t ncols, size_t k, const ckks_ciphertext_t *Z,
                      const ckks_ciphertext_t *M, ckks_plaintext_t *const *masks)
{
    glm_srv_t *s = &w->s;
    int rc = STATS_OK;
    const size_t B = s->B;
    s->n->conjugations++;
    TRY(ckks_conjugate(Z, s->gk, w->tmp));
    TRY(ckks_add(w->tmp, Z, w->tmp));
    TRY(g_rot(s, w->tmp, (long)((B - k) % B), w->R));
    TRY(g_rot(s, M, (long)((B - k) % B), w->M));
    for (size_t j = 0; j <= ncols; j++) {
        const ckks_ciphertext_t *src = j < ncols ? w->R : w->M;
        TRY(ckks_multiply_plain(src, masks[(cols[j < ncols ? j : 0] + k) % B], w->tmp));
        TRY(g_acc(w->acc[j], w->tmp, &w->set[j]));
    }
done:
    return rc;
}

/* Row-level data of one group: packed columns (y, x_1 .. x_k, y log y, m) at
 * top - 1 primes, then the data side: the data samples' ciphertexts (added
 * into dacc over groups) and the round items' operands. */
static int group_prepare(stats_glm_prep_t *p, size_t g, const stats_enc_table_t *const *tables,
                         ckks_plaintext_t *const *masks, const glm_items_t *L, ckks_ciphertext_t **dacc, int *dset)
{
    const stats_glm_model_t *m = &p->model;
    const glm_plan_t *pl = &p->pl;
    const size_t B = p->lay->block, k = pl->nt - 1;
    size_t cols[MAXT + 1], ncols = 0;
    for (size_t j = 0; j < pl->nt; j++) cols[ncols++] = pl->pos[j];
    if (m->have_ylogy) cols[ncols++] = m->ylogy;
    int rc = STATS_OK;
    for (int i = 0; i < p->nth; i++) {
        memset(p->wk[i].set, 0, sizeof p->wk[i].set);
        p->wk[i].rc = 0;
    }
    size_t c0 = g * B, c1 = c0 + B < p->nchunks ? c0 + B : p->nchunks;
#pragma omp parallel for num_threads(p->nth) schedule(dynamic, 1)
    for (size_t c = c0; c < c1; c++) {
        glm_worker_t *w = &p->wk[omp_get_thread_num()];
        if (w->rc) continue;
        size_t t = 0, kk = c;
        while (kk >= tables[t]->chunks) kk -= tables[t++]->chunks;
        w->rc = chunk_pack(w, cols, ncols, c - c0, tables[t]->z[kk], tables[t]->m[kk], masks);
        if (w->rc) snprintf(w->err, sizeof w->err, "%s", stats_error());
    }
    if ((rc = workers_rc(p))) return rc;
    glm_worker_t *w0 = &p->wk[0];
    glm_srv_t *s = &w0->s;
    for (int i = 1; i < p->nth; i++)
        for (size_t j = 0; j <= ncols; j++)
            if (p->wk[i].set[j]) TRY(g_acc(w0->acc[j], p->wk[i].acc[j], &w0->set[j]));
    /* Packed columns: rescaled (R = 2x/f: half the value at twice the scale;
     * m doubled to the same scale), rotated into place. */
    ckks_ciphertext_t *col[MAXT + 2] = {0}, *YX[MAXT] = {0}, *XX[MAXT * MAXT] = {0};
    for (size_t j = 0; j <= ncols; j++) {
        TRY(ckks_ciphertext_new(p->ctx, 2, 0, &col[j]));
        s->n->rescales++;
        TRY(ckks_rescale(w0->acc[j], w0->acc[j]));
        if (j == ncols) TRY(ckks_add(w0->acc[j], w0->acc[j], w0->acc[j]));
        w0->acc[j]->scale *= 2;
        TRY(g_rot(s, w0->acc[j], (long)cols[j < ncols ? j : 0], col[j]));
    }
    const ckks_ciphertext_t *Y = col[0], *Mc = col[ncols], *YL = m->have_ylogy ? col[ncols - 1] : NULL;
    glm_group_t *G = &p->groups[g];
    for (size_t j = 1; j <= k; j++) {
        TRY(ckks_ciphertext_new(p->ctx, 2, 0, &G->X[j]));
        TRY(ckks_ciphertext_copy(G->X[j], col[j]));
    }
    /* Products: y x_j (data side), x_a x_b (the information's operands). */
    for (size_t j = 1; j <= k; j++) {
        TRY(ckks_ciphertext_new(p->ctx, 2, 0, &YX[j]));
        TRY(g_mul(s, Y, col[j], YX[j]));
    }
    size_t np = 0;
    for (size_t a = 1; a <= k; a++)
        for (size_t b = a; b <= k; b++) {
            TRY(ckks_ciphertext_new(p->ctx, 2, 0, &XX[np]));
            TRY(g_mul(s, col[a], col[b], XX[np++]));
        }
    /* The data samples (dacc: added over groups), then the round operands. */
    size_t ip = 0;
    for (size_t i = 0; i < L->count; i++) {
        const glm_item_t *it = &L->it[i];
        const ckks_ciphertext_t *v[2] = {NULL, NULL};
        for (int h = 0; h < 2; h++) {
            const glm_total_t *t = h ? &it->im : &it->re;
            switch (t->what) {
            case T_N: v[h] = Mc; break;
            case T_SY: v[h] = Y; break;
            case T_SX: v[h] = col[t->a]; break;
            case T_YLOGY: v[h] = YL; break;
            case T_SYX: v[h] = YX[t->a]; break;
            case T_SW: case T_SSP: v[h] = Mc; break;
            case T_SWX: v[h] = col[t->a]; break;
            case T_INFO: v[h] = XX[ip++]; break;
            default: break;
            }
        }
        if (i < L->ndata) {
            ckks_ciphertext_t *x = w0->tmp2;
            TRY(g_at(v[0], 1, x));
            if (v[1]) {
                TRY(g_at(v[1], 1, w0->R));
                TRY(ckks_multiply_plain(w0->R, p->ip1, w0->M));
                TRY(ckks_add(x, w0->M, x));
            }
            TRY(g_acc(dacc[i], x, &dset[i]));
            continue;
        }
        /* a round item: its operand, v[0] (+ i v[1] for two pair products) */
        TRY(ckks_ciphertext_new(p->ctx, 2, 0, &G->op[i]));
        TRY(g_at(v[0], POLY_PRIMES, G->op[i]));
        if (v[1] && it->re.what == T_INFO) {
            TRY(g_at(v[1], POLY_PRIMES, w0->R));
            TRY(g_cplx(G->op[i], w0->R, p->ip, w0->M, G->op[i]));
        }
    }
done:
    for (size_t j = 0; j < MAXT + 2; j++) ckks_ciphertext_free(col[j]);
    for (size_t j = 0; j < MAXT; j++) ckks_ciphertext_free(YX[j]);
    for (size_t j = 0; j < MAXT * MAXT; j++) ckks_ciphertext_free(XX[j]);
    return rc;
}

int stats_glm_prepare(const ckks_context_t *ctx, const stats_enc_table_t *const *tables, size_t ntables,
                      const stats_glm_model_t *m, const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk,
                      stats_glm_prep_t **out, stats_counts_t *counts)
{
    if (!ctx || !tables || !ntables || !m || !rk || !gk || !out) return STATS_EINVAL;
    *out = NULL;
    stats_glm_prep_t *p = calloc(1, sizeof *p);
    if (!p) return STATS_ENOMEM;
    p->ctx = ctx;
    p->lay = &tables[0]->layout;
    p->model = *m;
    ckks_plaintext_t *masks[STATS_MAX_COLS] = {0};
    ckks_ciphertext_t *dacc[MAXITEMS] = {0};
    int dset[MAXITEMS] = {0};
    uint64_t *tmp = NULL;
    int rc = glm_plan(p->lay, m, NULL, &p->pl);
    if (rc) goto done;
    p->top = tables[0]->z[0]->nprimes;
    if (p->lay->colmajor) {
        stats_set_error("glm: this study lays its chunks out column by column (keygen --layout columns); a glm fit "
                        "needs a row-major study (the default)");
        rc = STATS_EINVAL;
        goto done;
    }
    for (size_t t = 0; t < ntables; t++) {
        const stats_enc_table_t *tb = tables[t];
        if (tb->layout.ncols != p->lay->ncols || tb->layout.block != p->lay->block ||
            tb->layout.slots != p->lay->slots || tb->z[0]->nprimes != p->top) {
            rc = STATS_ESCHEMA;
            goto done;
        }
        p->nchunks += tb->chunks;
    }
    const size_t B = p->lay->block, S = p->lay->slots, N = ckks_context_n(ctx);
    if (p->top < 3 || B > STATS_MAX_COLS || p->nchunks == 0) {
        rc = STATS_ESCHEMA;
        goto done;
    }
    p->final = ldexp(1.0, (int)floor(log2((double)ckks_context_prime(ctx, 1))) + 1);
    p->ngroups = (p->nchunks + B - 1) / B;
    /* Threads across the chunks of a group, then across the polynomials and
     * the products of a round, as many as the statistics jobs use
     * (HESTAT_THREADS, else every processor). */
    p->nth = (int)stats_threads(B);
    p->wk = calloc((size_t)p->nth, sizeof *p->wk);
    p->groups = calloc(p->ngroups, sizeof *p->groups);
    p->T = calloc(8, sizeof *p->T);
    tmp = malloc(N * sizeof *tmp);
    if (!p->wk || !p->groups || !p->T || !tmp) {
        rc = STATS_ENOMEM;
        goto done;
    }
    for (int i = 0; i < p->nth && !rc; i++) rc = worker_init(&p->wk[i], ctx, rk, gk, p->lay);
    if (rc) goto done;
    TRY(i_plain(ctx, POLY_PRIMES, &p->ip));
    TRY(i_plain(ctx, 1, &p->ip1));
    for (size_t j = 0; j < 8; j++) TRY(ckks_ciphertext_new(ctx, 2, 0, &p->T[j]));
    for (int f = 0; f < NFN; f++) TRY(ckks_ciphertext_new(ctx, 2, 0, &p->poly[f]));
    TRY(ckks_ciphertext_new(ctx, 2, 0, &p->Q));
    /* 0/1 masks of one offset in every block, encoded so a masked column
     * rescales to the scale it came with (2^40 for the tables hestat writes). */
    {
        double *v = calloc(S, sizeof *v);
        if (!v) {
            rc = STATS_ENOMEM;
            goto done;
        }
        const double enc = (double)ckks_context_prime(ctx, p->top - 1);
        for (size_t o = 0; o < B && !rc; o++) {
            for (size_t i = 0; i < S; i++) v[i] = i % B == o;
            rc = ckks_plaintext_new(ctx, p->top, &masks[o]);
            if (!rc) rc = ckks_encode_real(ctx, v, S, enc, p->top, masks[o]);
        }
        free(v);
        if (rc) {
            stats_set_error("glm: masks: %s", ckks_strerror(rc));
            rc = rc == CKKS_ENOMEM ? STATS_ENOMEM : STATS_ECKKS;
            goto done;
        }
    }
    glm_items_t L;
    glm_items(&p->pl, m->have_ylogy, 1, &L);
    for (size_t i = 0; i < L.ndata; i++) TRY(ckks_ciphertext_new(ctx, 2, 0, &dacc[i]));
    for (size_t g = 0; g < p->ngroups && !rc; g++) rc = group_prepare(p, g, tables, masks, &L, dacc, dset);
    if (rc) goto done;
    if ((rc = enc_alloc(L.ndata, N, ckks_context_prime(ctx, 0), &p->data))) goto done;
    for (size_t i = 0; i < L.ndata && !rc; i++) rc = extract(dacc[i], tmp, p->data, i);
    if (counts) {
        memset(counts, 0, sizeof *counts);
        for (int i = 0; i < p->nth; i++) stats_counts_add(counts, &p->wk[i].counts);
    }
done:
    for (size_t o = 0; o < STATS_MAX_COLS; o++) ckks_plaintext_free(masks[o]);
    for (size_t i = 0; i < MAXITEMS; i++) ckks_ciphertext_free(dacc[i]);
    free(tmp);
    if (rc) stats_glm_prep_free(p);
    else *out = p;
    return rc;
}

/* One group's round: t = (eta - a) / L from the packed columns, the link's
 * polynomials, then every round item's product, added into p->acc. */
static int group_round(stats_glm_prep_t *p, const glm_group_t *G, const glm_poly_t *poly,
                       const stats_glm_point_t *pt, const glm_items_t *L, int *aset)
{
    const glm_plan_t *pl = &p->pl;
    glm_worker_t *w0 = &p->wk[0];
    glm_srv_t *s = &w0->s;
    int rc = STATS_OK;
    const size_t lowp = POLY_PRIMES, xp = G->X[1]->nprimes;
    /* 1. t, at scale final. */
    const double enc = p->final * (double)ckks_context_prime(p->ctx, xp - 1) / G->X[1]->scale;
    long double cshift = 0;
    ckks_ciphertext_t *E = p->T[0];
    for (size_t j = 1; j < pl->nt; j++) {
        TRY(ckks_multiply_const(G->X[j], (double)(pt->gamma[j] / poly->L), enc, j == 1 ? E : w0->tmp));
        if (j > 1) TRY(ckks_add(E, w0->tmp, E));
        cshift -= pt->gamma[j] * pl->center[j] / poly->L;
    }
    s->n->rescales++;
    TRY(ckks_rescale(E, E));
    E->scale = p->final; /* equal up to the rounding of enc * X's scale */
    TRY(ckks_encode_constant(p->ctx, (double)cshift, E->scale, E->nprimes, s->pt));
    TRY(ckks_add_plain(E, s->pt, E));
    /* 2. T_2, T_4, ..., then the polynomials, one a thread. */
    w0->ch.T = p->T;
    rc = cheb_powers(&w0->ch, poly->degree);
    if (rc) goto done;
    const int nf = poly->nfn;
#pragma omp parallel for num_threads(p->nth < nf ? p->nth : nf) schedule(dynamic, 1)
    for (int f = 0; f < nf; f++) {
        glm_worker_t *w = &p->wk[omp_get_thread_num()];
        if (w->rc) continue;
        w->ch.T = p->T;
        w->rc = cheb_eval_ct(&w->ch, poly->coef[f], poly->deg[f], lowp, p->final, p->poly[f]);
        if (w->rc) snprintf(w->err, sizeof w->err, "%s", stats_error());
    }
    if ((rc = workers_rc(p))) goto done;
    /* Q = W + i mu (Poisson: W = mu). */
    const ckks_ciphertext_t *Wc = p->poly[nf == 1 ? FN_MU : FN_W];
    TRY(g_cplx(Wc, p->poly[FN_MU], p->ip, w0->tmp, p->Q));
    /* 3. products, one item a thread at a time. */
#pragma omp parallel for num_threads(p->nth) schedule(dynamic, 1)
    for (size_t i = L->ndata; i < L->count; i++) {
        glm_worker_t *w = &p->wk[omp_get_thread_num()];
        if (w->rc) continue;
        const glm_item_t *it = &L->it[i];
        const ckks_ciphertext_t *left = it->re.what == T_INFO ? Wc : it->re.what == T_SSP ? p->poly[FN_SP] : p->Q;
        w->rc = g_mul(&w->s, left, G->op[i], w->tmp2); /* softplus's operand is m, as (sum W, sum mu)'s */
        if (!w->rc) w->rc = g_acc(p->acc[i], w->tmp2, &aset[i]);
        if (w->rc) snprintf(w->err, sizeof w->err, "glm: product %zu: %s", i, ckks_strerror(w->rc));
    }
    rc = workers_rc(p);
done:
    return rc;
}

/* Data primes a round needs for interpolants of this degree: the depth of
 * their evaluation, the polynomials' own level, and E's and the products'
 * rescales. */
static unsigned primes_for_degree(unsigned degree)
{
    unsigned depth = 0;
    while ((1u << depth) < degree + 1) depth++;
    return POLY_PRIMES + depth + 2;
}

size_t stats_glm_min_primes(void)
{
    return primes_for_degree(7); /* the smallest interpolant */
}

int stats_glm_round_prepared(stats_glm_prep_t *p, const stats_glm_point_t *pt, stats_glm_enc_t **out,
                             stats_counts_t *counts)
{
    if (!p || !pt || !out) return STATS_EINVAL;
    *out = NULL;
    const stats_glm_model_t *m = &p->model;
    glm_plan_t pl;
    int rc = glm_plan(p->lay, m, pt, &pl);
    if (rc) return rc;
    p->pl = pl;
    glm_poly_t poly;
    glm_point_poly(m->family, &pl, pt, &poly);
    const unsigned need = primes_for_degree(poly.degree);
    if (p->top < need) {
        stats_set_error("glm: the study's parameters have %zu data primes; a degree-%u model needs %u (keygen picks "
                        "them for --stats glm:...)", p->top, poly.degree, need);
        return STATS_ESCHEMA;
    }
    glm_items_t L;
    glm_items(&pl, m->have_ylogy, poly.nfn == 3, &L);
    int aset[MAXITEMS] = {0};
    stats_glm_enc_t *res = NULL;
    uint64_t *tmp = malloc(ckks_context_n(p->ctx) * sizeof *tmp);
    if (!tmp) return STATS_ENOMEM;
    for (int i = 0; i < p->nth; i++) {
        memset(&p->wk[i].counts, 0, sizeof p->wk[i].counts);
        p->wk[i].rc = 0;
    }
    for (size_t i = L.ndata; i < L.count; i++)
        if (!p->acc[i]) TRY(ckks_ciphertext_new(p->ctx, 2, 0, &p->acc[i]));
    for (size_t g = 0; g < p->ngroups && !rc; g++) rc = group_round(p, &p->groups[g], &poly, pt, &L, aset);
    if (rc) goto done;
    if ((rc = enc_alloc(L.count, p->data->n, p->data->q, &res))) goto done;
    memcpy(res->scale, p->data->scale, L.ndata * sizeof *res->scale);
    memcpy(res->b, p->data->b, 2 * L.ndata * sizeof *res->b);
    memcpy(res->a, p->data->a, L.ndata * p->data->n * sizeof *res->a);
    for (size_t i = L.ndata; i < L.count && !rc; i++) rc = extract(p->acc[i], tmp, res, i);
    if (rc) goto done;
    if (counts) {
        memset(counts, 0, sizeof *counts);
        for (int i = 0; i < p->nth; i++) stats_counts_add(counts, &p->wk[i].counts);
    }
    *out = res;
    res = NULL;
done:
    free(tmp);
    stats_glm_enc_free(res);
    return rc;
}

int stats_glm_round(const ckks_context_t *ctx, const stats_enc_table_t *const *tables, size_t ntables,
                    const stats_glm_model_t *m, const stats_glm_point_t *pt, const ckks_relin_key_t *rk,
                    const ckks_galois_keys_t *gk, stats_glm_enc_t **out, stats_counts_t *counts)
{
    stats_glm_prep_t *p;
    stats_counts_t c1 = {0}, c2 = {0};
    int rc = stats_glm_prepare(ctx, tables, ntables, m, rk, gk, &p, &c1);
    if (rc) return rc;
    rc = stats_glm_round_prepared(p, pt, out, &c2);
    stats_glm_prep_free(p);
    if (counts) {
        *counts = c1;
        stats_counts_add(counts, &c2);
    }
    return rc;
}

/* ---- client ---- */

/* The two totals of sample i: (N/2) c / scale for the plaintext's
 * coefficients c at X^0 (the real parts' sum over slots) and X^(N/2) (the
 * imaginary parts'). */
static int sample_totals(const ckks_context_t *ctx, const ckks_secret_key_t *sk, const stats_glm_enc_t *e, size_t i,
                         ckks_ciphertext_t *ct, ckks_plaintext_t *pt, long double out[2])
{
    const size_t n = e->n;
    const ntt_tables_t *t = ckks_context_ntt(ctx, 0);
    memset(ct->data, 0, n * sizeof *ct->data);
    ct->data[0] = e->b[2 * i];
    ct->data[n / 2] = e->b[2 * i + 1];
    ntt_forward(t, ct->data);
    memcpy(ct->data + n, e->a + i * n, n * sizeof *ct->data);
    ntt_forward(t, ct->data + n);
    ct->scale = e->scale[i];
    int rc = ckks_decrypt(sk, ct, pt);
    if (rc) return rc;
    ntt_inverse(t, pt->data);
    for (int h = 0; h < 2; h++) {
        uint64_t v = pt->data[h ? n / 2 : 0] % e->q;
        long double c = v > e->q / 2 ? -(long double)(e->q - v) : (long double)v;
        out[h] = c * (long double)(n / 2) / e->scale[i];
    }
    return CKKS_OK;
}

int stats_glm_decrypt(const ckks_context_t *ctx, const ckks_secret_key_t *sk, const stats_layout_t *lay,
                      const stats_glm_model_t *m, const stats_glm_point_t *pt, const stats_glm_enc_t *e,
                      stats_glm_totals_t *out)
{
    if (!ctx || !sk || !lay || !m || !pt || !e || !out) return STATS_EINVAL;
    glm_plan_t pl;
    int rc = glm_plan(lay, m, pt, &pl);
    if (rc) return rc;
    glm_poly_t poly;
    glm_point_poly(m->family, &pl, pt, &poly);
    glm_items_t L;
    glm_items(&pl, m->have_ylogy, poly.nfn == 3, &L);
    if (e->count != L.count || e->n != ckks_context_n(ctx) || e->q != ckks_context_prime(ctx, 0)) {
        stats_set_error("glm: the round result has %zu samples; this model's round has %zu", e->count, L.count);
        return STATS_ESCHEMA;
    }
    ckks_ciphertext_t *ct = NULL;
    ckks_plaintext_t *p = NULL;
    TRY(ckks_ciphertext_new(ctx, 2, 1, &ct));
    TRY(ckks_plaintext_new(ctx, 1, &p));
    memset(out, 0, sizeof *out);
    out->k = m->k;
    const long double fy = lay->factor[m->y];
    const long double nmu = poly.norm[FN_MU], nw = poly.nfn == 1 ? poly.norm[FN_MU] : poly.norm[FN_W];
    out->ssp = NAN;
    out->sylogy = NAN;
    for (size_t i = 0; i < L.count; i++) {
        long double v[2];
        TRY(sample_totals(ctx, sk, e, i, ct, p, v));
        for (int h = 0; h < 2; h++) {
            const glm_total_t *t = h ? &L.it[i].im : &L.it[i].re;
            const size_t a = t->a, b = t->b;
            switch (t->what) {
            case T_N: out->n = v[h]; break;
            case T_SY: out->sy = v[h] * fy; break;
            case T_SX: out->sx[a] = v[h]; break;
            case T_SYX: out->syx[a] = v[h] * fy; break;
            case T_YLOGY: out->sylogy = v[h] * lay->factor[m->ylogy]; break;
            case T_SW: out->info[0][0] = v[h] * nw; break;
            case T_SMU: out->smu = v[h] * nmu; break;
            case T_SWX: out->info[0][a] = out->info[a][0] = v[h] * nw; break;
            case T_SMUX: out->smux[a] = v[h] * nmu; break;
            case T_INFO: out->info[a][b] = out->info[b][a] = v[h] * nw; break;
            case T_SSP: out->ssp = v[h] * poly.norm[FN_SP]; break;
            default: break;
            }
        }
    }
    out->approx_err = poly.max_err;
    out->w_approx_err = poly.nfn > 1 ? poly.w_err : poly.max_err;
    out->eta_lo = poly.a - poly.L;
    out->eta_hi = poly.a + poly.L;
    long double rows = (long double)lay->nrows;
    if (!isfinite(out->n) || out->n < -0.01L || fabsl(out->n - roundl(out->n)) > 0.01L ||
        (rows > 0 && out->n > rows + 0.01L)) {
        stats_set_error("glm: decrypted totals are not consistent (n = %.6Lg): the secret key does not belong to "
                        "this result, or the result is damaged", out->n);
        rc = STATS_EDECRYPT;
    }
    out->n = roundl(out->n);
done:
    ckks_ciphertext_free(ct);
    ckks_plaintext_free(p);
    return rc;
}

/* Solves A x = b (m x m) by Cholesky; inv = A^-1. 0, or -1 when A is not
 * positive definite. */
static int chol_solve(long double A[MAXT][MAXT], const long double *b, size_t m, long double *x,
                      long double inv[MAXT][MAXT])
{
    long double Lm[MAXT][MAXT] = {{0}};
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j <= i; j++) {
            long double s = A[i][j];
            for (size_t k = 0; k < j; k++) s -= Lm[i][k] * Lm[j][k];
            if (i == j) {
                if (!(s > 0)) return -1;
                Lm[i][i] = sqrtl(s);
            } else {
                Lm[i][j] = s / Lm[j][j];
            }
        }
    for (size_t c = 0; c <= m; c++) { /* columns of the identity, then b */
        long double y[MAXT], z[MAXT];
        for (size_t i = 0; i < m; i++) {
            long double s = c < m ? (i == c) : b[i];
            for (size_t k = 0; k < i; k++) s -= Lm[i][k] * y[k];
            y[i] = s / Lm[i][i];
        }
        for (size_t i = m; i-- > 0;) {
            long double s = y[i];
            for (size_t k = i + 1; k < m; k++) s -= Lm[k][i] * z[k];
            z[i] = s / Lm[i][i];
        }
        for (size_t i = 0; i < m; i++) {
            if (c < m) inv[i][c] = z[i];
            else x[i] = z[i];
        }
    }
    return 0;
}

int stats_glm_fit(const stats_layout_t *lay, const stats_glm_model_t *m, const double *lo, const double *hi,
                  unsigned max_rounds, stats_glm_round_fn round, void *arg, stats_glm_fit_t *out)
{
    if (!lay || !m || !lo || !hi || !round || !out || m->k == 0 || m->k > STATS_MAX_REGRESSORS) return STATS_EINVAL;
    memset(out, 0, sizeof *out);
    const size_t nt = m->k + 1;
    stats_glm_point_t pt;
    memset(&pt, 0, sizeof pt);
    for (size_t j = 1; j < nt; j++) {
        pt.lo[j] = lo[j] / lay->factor[m->x[j - 1]];
        pt.hi[j] = hi[j] / lay->factor[m->x[j - 1]];
    }
    if (!max_rounds) max_rounds = 8;
    /* Newton decrement (deviance units). The step taken from there leaves a
     * coefficient error of order decrement (quadratic convergence), far below
     * the CKKS noise. The decrement's own noise floor is about 1e-9 (at the
     * glm parameters' 2^35 scale): a round after one whose decrement was
     * below 1e-6 has a true decrement of order 1e-12, whatever it measures,
     * so the fit stops there too. */
    const long double tol = 1e-9L;
    int start = m->family == STATS_GLM_POISSON; /* first round: intercept-only start */
    long double last_dec = INFINITY;
    for (unsigned r = 1; r <= max_rounds; r++) {
        pt.deviance = m->family == STATS_GLM_BINOMIAL && last_dec < 1e-3L;
        /* Far from the optimum (decrement above 1) the step needs no exact
         * score: mu to 1e-5 there (a lower degree), to 1e-10 after. */
        pt.tol = last_dec > 1 ? 1e-5 : 0;
        stats_glm_totals_t tt;
        int rc = round(arg, m, &pt, &tt);
        if (rc) return rc;
        out->rounds = r;
        out->n = tt.n;
        if (out->approx_err < tt.approx_err || r == 1) out->approx_err = tt.approx_err;
        out->last_approx_err = tt.approx_err;
        if (start) {
            start = 0;
            if (!(tt.sy > 0) || !(tt.n > 0)) return STATS_EINVAL;
            pt.gamma[0] = (double)logl(tt.sy / tt.n);
            continue;
        }
        long double U[MAXT], step[MAXT] = {0}, inv[MAXT][MAXT];
        U[0] = tt.sy - tt.smu;
        for (size_t j = 1; j < nt; j++) U[j] = tt.syx[j] - tt.smux[j];
        if (chol_solve(tt.info, U, nt, step, inv)) {
            stats_set_error("glm %s: the information matrix is singular at round %u", m->name, r);
            return STATS_EINVAL;
        }
        long double dec = 0, maxs = 0;
        for (size_t j = 0; j < nt; j++) {
            dec += U[j] * step[j];
            long double sc = fabsl(U[j]) * (j ? lay->factor[m->x[j - 1]] : 1);
            if (sc > maxs) maxs = sc;
        }
        out->max_abs_score = maxs;
        out->decrement = dec;
        if (getenv("HESTAT_GLM_TRACE"))
            fprintf(stderr, "glm %s: round %u: decrement %.3Lg, max |score| %.3Lg, eta in [%.3Lg, %.3Lg], polynomial "
                    "error %.3Lg\n", m->name, r, dec, maxs, tt.eta_lo, tt.eta_hi, tt.approx_err);
        const long double prev_dec = last_dec;
        last_dec = dec;
        for (size_t j = 0; j < nt; j++) {
            long double f = j ? lay->factor[m->x[j - 1]] : 1;
            out->coef[j] = (pt.gamma[j] + step[j]) / f;
            out->se[j] = sqrtl(inv[j][j]) / f;
            out->z[j] = out->coef[j] / out->se[j];
            out->p[j] = 2.0L * gsl_cdf_ugaussian_Q(fabs((double)out->z[j]));
            pt.gamma[j] = (double)(pt.gamma[j] + step[j]);
        }
        /* Deviance at the new coefficients: D(gamma) - decrement (quadratic model). */
        long double seta = 0; /* sum y eta at the round's coefficients */
        seta = (pt.gamma[0] - step[0]) * tt.sy;
        for (size_t j = 1; j < nt; j++) seta += (pt.gamma[j] - step[j]) * tt.syx[j];
        if (m->family == STATS_GLM_BINOMIAL)
            out->deviance = pt.deviance ? 2 * (tt.ssp - seta) - dec : NAN;
        else
            out->deviance = 2 * (tt.sylogy + tt.smu - tt.sy - seta) - dec; /* NaN without xlogx:Y */
        out->poisson_partial = 2 * (tt.smu - tt.sy - seta) - dec;
        if ((dec < tol || prev_dec < 1e-6L) && (m->family != STATS_GLM_BINOMIAL || pt.deviance)) {
            out->converged = 1;
            break;
        }
    }
    return STATS_OK;
}

/* ---- plaintext reference (long double IRLS on the complete cases) ---- */

int stats_reference_glm(const stats_table_t *t, const stats_glm_model_t *m, stats_glm_fit_t *out)
{
    if (!t || !m || !out || m->k == 0 || m->k > STATS_MAX_REGRESSORS) return STATS_EINVAL;
    memset(out, 0, sizeof *out);
    const size_t nt = m->k + 1;
    long double b[MAXT] = {0};
    for (unsigned it = 1; it <= 100; it++) {
        long double A[MAXT][MAXT] = {{0}}, U[MAXT] = {0}, dev = 0, n = 0;
        for (size_t r = 0; r < t->nrows; r++) {
            long double x[MAXT] = {1}, y = stats_value(t, r, m->y), eta = 0;
            int ok = !isnan(y);
            for (size_t j = 1; j < nt; j++) {
                x[j] = stats_value(t, r, m->x[j - 1]);
                ok &= !isnan(x[j]);
            }
            if (!ok) continue;
            for (size_t j = 0; j < nt; j++) eta += b[j] * x[j];
            long double mu = link_fn(m->family, FN_MU, eta);
            long double w = m->family == STATS_GLM_POISSON ? mu : mu * (1 - mu);
            for (size_t i = 0; i < nt; i++) {
                U[i] += x[i] * (y - mu);
                for (size_t j = 0; j < nt; j++) A[i][j] += w * x[i] * x[j];
            }
            if (m->family == STATS_GLM_POISSON) dev += 2 * ((y > 0 ? y * logl(y / mu) : 0) - (y - mu));
            else dev += 2 * (link_fn(m->family, FN_SP, eta) - y * eta);
            n++;
        }
        long double step[MAXT], inv[MAXT][MAXT], dec = 0;
        if (chol_solve(A, U, nt, step, inv)) return STATS_EINVAL;
        for (size_t j = 0; j < nt; j++) dec += U[j] * step[j];
        for (size_t j = 0; j < nt; j++) {
            out->coef[j] = b[j];
            out->se[j] = sqrtl(inv[j][j]);
            out->z[j] = b[j] / out->se[j];
            out->p[j] = 2.0L * gsl_cdf_ugaussian_Q(fabs((double)out->z[j]));
            b[j] += step[j];
        }
        out->deviance = dev;
        out->n = n;
        out->rounds = it;
        out->decrement = dec;
        if (dec < 1e-24L) {
            out->converged = 1;
            break;
        }
    }
    return STATS_OK;
}
