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

/* ---- the plan: where each column and each total sits (both sides) ---- */

enum { AG_WX, AG_MUX, AG_SP, AG_X, AG_Y, AG_YLOGY, AG_WQ0 }; /* then WQ per distance, then Q per distance */

typedef struct {
    size_t nt;              /* terms: 0 = y, 1..k = regressors */
    size_t pos[MAXT];       /* layout positions */
    size_t shift;           /* left shift of the products' data */
    size_t P[MAXT];         /* shifted positions */
    size_t nd, dist[MAXT * MAXT];
    size_t pmin, span, per_ct, nagg, npacked;
    long double center[MAXT], half[MAXT]; /* scaled ranges of the regressors */
} glm_plan_t;

static size_t agg_wq(const glm_plan_t *pl, size_t di) { (void)pl; return AG_WQ0 + di; }
static size_t agg_q(const glm_plan_t *pl, size_t di) { return AG_WQ0 + pl->nd + di; }

static size_t dist_index(const glm_plan_t *pl, size_t d)
{
    for (size_t i = 0; i < pl->nd; i++)
        if (pl->dist[i] == d) return i;
    return (size_t)-1;
}

static int glm_plan(const stats_layout_t *lay, const stats_glm_model_t *m, const stats_glm_point_t *pt,
                    glm_plan_t *pl)
{
    memset(pl, 0, sizeof *pl);
    if (m->k == 0 || m->k > STATS_MAX_REGRESSORS || m->y >= lay->ncols) return STATS_EINVAL;
    pl->nt = m->k + 1;
    pl->pos[0] = m->y;
    size_t minx = lay->block, maxp = m->y, minp = m->y;
    for (size_t j = 1; j < pl->nt; j++) {
        size_t c = m->x[j - 1];
        if (c >= lay->ncols || c == m->y) return STATS_EINVAL;
        pl->pos[j] = c;
        if (c < minx) minx = c;
        if (c > maxp) maxp = c;
        if (c < minp) minp = c;
    }
    /* W is right at window starts 0 .. minx; the data moves left by shift. */
    pl->shift = maxp > minx ? maxp - minx : 0;
    if (minp < pl->shift) {
        stats_set_error("glm: the model's columns lie too far apart in the study's layout (first %zu, last %zu, "
                        "first regressor %zu)", minp, maxp, minx);
        return STATS_ESCHEMA;
    }
    pl->pmin = lay->block;
    size_t pmax = 0;
    for (size_t i = 0; i < pl->nt; i++) {
        pl->P[i] = pl->pos[i] - pl->shift;
        if (pl->P[i] < pl->pmin) pl->pmin = pl->P[i];
        if (pl->P[i] > pmax) pmax = pl->P[i];
    }
    for (size_t i = 0; i < pl->nt; i++)
        for (size_t j = i; j < pl->nt; j++) {
            if (i == 0 && j == 0) continue;
            size_t d = pl->P[i] > pl->P[j] ? pl->P[i] - pl->P[j] : pl->P[j] - pl->P[i];
            if (dist_index(pl, d) == (size_t)-1) pl->dist[pl->nd++] = d;
        }
    pl->span = pmax - pl->pmin + 1;
    pl->per_ct = lay->block / pl->span;
    pl->nagg = AG_WQ0 + 2 * pl->nd;
    pl->npacked = (pl->nagg + pl->per_ct - 1) / pl->per_ct;
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

/* Slot of a total: packed ciphertext and slot within it. */
static void agg_slot(const glm_plan_t *pl, size_t agg, size_t P, size_t *ct, size_t *slot)
{
    *ct = agg / pl->per_ct;
    *slot = (agg % pl->per_ct) * pl->span + (P - pl->pmin);
}

/* ---- server ---- */

/* Masks are the same for every chunk of a round: encoded once. */
#define MASK_CACHE 64
typedef struct {
    double pattern[STATS_MAX_COLS], enc;
    size_t np;
    ckks_plaintext_t *pt;
} glm_mask_t;

typedef struct {
    const ckks_context_t *ctx;
    const ckks_relin_key_t *rk;
    const ckks_galois_keys_t *gk;
    stats_counts_t *n;
    ckks_plaintext_t *pt;
    double *vals;
    size_t S, B;
    glm_mask_t masks[MASK_CACHE];
    size_t nmasks;
} glm_srv_t;

/* Left rotation by 0 < step < N/2: its own key when the study has one, else
 * one rotation per binary digit (the study holds the keys of 1, 2, 4, ..,
 * B/2 and of N/4 .. B; ckks_rotate's signed digits may need keys it lacks). */
static int g_rot(glm_srv_t *s, const ckks_ciphertext_t *a, long step, ckks_ciphertext_t *out)
{
    if (ckks_galois_keys_has(s->gk, ckks_galois_elt_rotate(s->ctx, (int)step))) {
        s->n->rotations++;
        return ckks_rotate(a, (int)step, s->gk, out);
    }
    int rc = CKKS_OK, first = 1;
    for (long bit = 1; bit <= step && rc == CKKS_OK; bit <<= 1) {
        if (!(step & bit)) continue;
        rc = ckks_rotate(first ? a : out, (int)bit, s->gk, out);
        first = 0;
        s->n->rotations++;
    }
    return rc;
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

/* out = a * v (v the block pattern vals repeated over every row), rescaled to
 * exactly `scale`, then mod-switched to nprimes. */
static int g_mask(glm_srv_t *s, const ckks_ciphertext_t *a, const double *pattern, double scale, size_t nprimes,
                  ckks_ciphertext_t *out)
{
    size_t np = a->nprimes;
    double enc = scale * (double)ckks_context_prime(s->ctx, np - 1) / a->scale;
    const ckks_plaintext_t *pt = NULL;
    for (size_t i = 0; i < s->nmasks && !pt; i++)
        if (s->masks[i].enc == enc && s->masks[i].np == np && !memcmp(s->masks[i].pattern, pattern, s->B * sizeof *pattern))
            pt = s->masks[i].pt;
    int rc = CKKS_OK;
    if (!pt) {
        for (size_t i = 0; i < s->S; i++) s->vals[i] = pattern[i % s->B];
        ckks_plaintext_t *p = s->pt;
        if (s->nmasks < MASK_CACHE && !ckks_plaintext_new(s->ctx, np, &p)) {
            glm_mask_t *m = &s->masks[s->nmasks++];
            memcpy(m->pattern, pattern, s->B * sizeof *pattern);
            m->enc = enc;
            m->np = np;
            m->pt = p;
        }
        rc = ckks_encode_real(s->ctx, s->vals, s->S, enc, np, p);
        pt = p;
    }
    if (!rc) rc = ckks_multiply_plain(a, pt, out);
    s->n->rescales++;
    if (!rc) rc = ckks_rescale(out, out);
    if (!rc) out->scale = scale; /* equal up to the last bit of (scale q / a) a / q */
    if (!rc && out->nprimes > nprimes) rc = ckks_mod_switch(out, nprimes, out);
    return rc;
}

/* Chebyshev evaluation by recursive division; T[j] = T_{2^j}(t). */
typedef struct {
    glm_srv_t *s;
    ckks_ciphertext_t *T[8];
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

/* acc += x (acc->size 0 = unset: copy). */
static int g_acc(ckks_ciphertext_t *acc, const ckks_ciphertext_t *x, int *set)
{
    int rc = *set ? ckks_add(acc, x, acc) : ckks_ciphertext_copy(acc, x);
    *set = 1;
    return rc;
}

/* A thread's scratch ciphertexts. */
typedef struct {
    ckks_ciphertext_t *E, *Rs, *Ms, *tmp, *tmp2;
    ckks_ciphertext_t *poly[NFN];
} glm_work_t;

/* A chunk's data side of every round, computed once (round-independent):
 * the real part R, the design row X~ (weighted: for W and mu; unweighted: n,
 * sum x_j), y, the masked pair products Q_d and y log y. */
typedef struct {
    ckks_ciphertext_t *R, *Xw, *Xu, *Yu, *Mw, *YL;
    ckks_ciphertext_t *Qw[MAXT * MAXT], *Qu[MAXT * MAXT];
} glm_chunk_t;

static void chunk_free(glm_chunk_t *c)
{
    ckks_ciphertext_t *all[] = {c->R, c->Xw, c->Xu, c->Yu, c->Mw, c->YL};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ckks_ciphertext_free(all[i]);
    for (size_t i = 0; i < MAXT * MAXT; i++) {
        ckks_ciphertext_free(c->Qw[i]);
        ckks_ciphertext_free(c->Qu[i]);
    }
}

static int chunk_prepare(glm_srv_t *s, const glm_plan_t *pl, size_t m_ylogy, const ckks_ciphertext_t *Z,
                         const ckks_ciphertext_t *M, glm_work_t *w, glm_chunk_t *c)
{
    int rc = STATS_OK;
    const size_t lowp = POLY_PRIMES;
    double pat[STATS_MAX_COLS * 2];
    const double wscale = (double)ckks_context_prime(s->ctx, lowp - 1); /* FINAL_SCALE q_1 / FINAL_SCALE */
    ckks_ciphertext_t **all[] = {&c->R, &c->Xw, &c->Xu, &c->Yu, &c->Mw, &c->YL};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) TRY(ckks_ciphertext_new(s->ctx, 2, 0, all[i]));
    for (size_t i = 0; i < pl->nd; i++) {
        TRY(ckks_ciphertext_new(s->ctx, 2, 0, &c->Qw[i]));
        TRY(ckks_ciphertext_new(s->ctx, 2, 0, &c->Qu[i]));
    }
    s->n->conjugations++;
    TRY(ckks_conjugate(Z, s->gk, c->R));
    TRY(ckks_add(c->R, Z, c->R));
    /* The model's columns, shifted to where step 1 of a round leaves W and mu. */
    if (pl->shift) {
        TRY(g_rot(s, c->R, (long)pl->shift, w->Rs));
        TRY(g_rot(s, M, (long)pl->shift, w->Ms));
    } else {
        TRY(ckks_ciphertext_copy(w->Rs, c->R));
        TRY(ckks_ciphertext_copy(w->Ms, M));
    }
    /* X~: m at y's slot, x_j (R / 2) at the regressors'. */
    for (int weighted = 0; weighted < 2; weighted++) {
        double sc = weighted ? wscale : FINAL_SCALE;
        size_t np = weighted ? lowp : 1;
        ckks_ciphertext_t *X = weighted ? c->Xw : c->Xu;
        memset(pat, 0, sizeof pat);
        for (size_t j = 1; j < pl->nt; j++) pat[pl->P[j]] = 0.5;
        TRY(g_mask(s, w->Rs, pat, sc, np, X));
        memset(pat, 0, sizeof pat);
        pat[pl->P[0]] = 1;
        TRY(g_mask(s, w->Ms, pat, sc, np, w->tmp));
        TRY(ckks_add(X, w->tmp, X));
    }
    memset(pat, 0, sizeof pat);
    pat[pl->P[0]] = 0.5;
    TRY(g_mask(s, w->Rs, pat, FINAL_SCALE, 1, c->Yu));
    memset(pat, 0, sizeof pat);
    pat[pl->P[0]] = 1;
    TRY(g_mask(s, w->Ms, pat, wscale, lowp, c->Mw));
    if (m_ylogy != (size_t)-1) { /* sum y log y (Poisson deviance): a column sum */
        memset(pat, 0, sizeof pat);
        pat[m_ylogy] = 0.5;
        TRY(g_mask(s, c->R, pat, FINAL_SCALE, 1, c->YL));
    }
    /* Q_d = x_i x_{i+d} at the slot of the left one, for the model's pairs. */
    for (size_t di = 0; di < pl->nd; di++) {
        size_t d = pl->dist[di];
        if (d) {
            TRY(g_rot(s, w->Rs, (long)d, w->tmp));
            TRY(g_mul(s, w->Rs, w->tmp, w->tmp2));
        } else {
            TRY(g_mul(s, w->Rs, w->Rs, w->tmp2));
        }
        for (int weighted = 0; weighted < 2; weighted++) {
            memset(pat, 0, sizeof pat);
            for (size_t i = 0; i < pl->nt; i++)
                for (size_t j = i; j < pl->nt; j++) {
                    if (i == 0 && j == 0) continue;
                    if (weighted && i == 0) continue; /* W y x_j is not needed */
                    if (!weighted && i != 0) continue; /* nor the unweighted x_i x_j */
                    size_t lo = pl->P[i] < pl->P[j] ? pl->P[i] : pl->P[j];
                    size_t dd = pl->P[i] > pl->P[j] ? pl->P[i] - pl->P[j] : pl->P[j] - pl->P[i];
                    if (dd == d) pat[lo] = 0.25;
                }
            TRY(g_mask(s, w->tmp2, pat, weighted ? wscale : FINAL_SCALE, weighted ? lowp : 1,
                       weighted ? c->Qw[di] : c->Qu[di]));
        }
    }
done:
    return rc;
}

static int chunk_round(glm_srv_t *s, const glm_plan_t *pl, const glm_poly_t *poly, const stats_glm_point_t *pt,
                       int ylogy, const glm_chunk_t *c, glm_work_t *w, glm_cheb_t *ch, ckks_ciphertext_t **acc,
                       int *set)
{
    int rc = STATS_OK;
    const size_t B = s->B, lowp = POLY_PRIMES;
    double pat[STATS_MAX_COLS * 2];
    /* 1. t = (eta - a) / L at window starts. */
    memset(pat, 0, sizeof pat);
    long double cshift = 0;
    for (size_t j = 1; j < pl->nt; j++) {
        pat[pl->pos[j]] = (double)(pt->gamma[j] / (2 * poly->L));
        cshift -= pt->gamma[j] * pl->center[j] / poly->L;
    }
    TRY(g_mask(s, c->R, pat, FINAL_SCALE, c->R->nprimes - 1, w->E));
    for (size_t st = 1; st < B; st *= 2) {
        TRY(g_rot(s, w->E, (long)st, w->tmp));
        TRY(ckks_add(w->E, w->tmp, w->E));
    }
    TRY(ckks_encode_constant(s->ctx, (double)cshift, w->E->scale, w->E->nprimes, s->pt));
    TRY(ckks_add_plain(w->E, s->pt, w->E));
    /* 2. the polynomials, at level lowp, scale FINAL_SCALE. */
    TRY(ckks_ciphertext_copy(ch->T[0], w->E));
    rc = cheb_powers(ch, poly->degree);
    if (rc) goto done;
    for (int f = 0; f < poly->nfn; f++) {
        rc = cheb_eval_ct(ch, poly->coef[f], poly->deg[f], lowp, FINAL_SCALE, w->poly[f]);
        if (rc) goto done;
    }
    const ckks_ciphertext_t *Wc = w->poly[poly->nfn == 1 ? FN_MU : FN_W], *Mu = w->poly[FN_MU];
    /* 3. the products, added to the totals. */
    TRY(g_mul(s, Wc, c->Xw, w->tmp));
    TRY(g_acc(acc[AG_WX], w->tmp, &set[AG_WX]));
    TRY(g_mul(s, Mu, c->Xw, w->tmp));
    TRY(g_acc(acc[AG_MUX], w->tmp, &set[AG_MUX]));
    if (poly->nfn == 3) {
        TRY(g_mul(s, w->poly[FN_SP], c->Mw, w->tmp));
        TRY(g_acc(acc[AG_SP], w->tmp, &set[AG_SP]));
    }
    TRY(g_acc(acc[AG_X], c->Xu, &set[AG_X]));
    TRY(g_acc(acc[AG_Y], c->Yu, &set[AG_Y]));
    if (ylogy) TRY(g_acc(acc[AG_YLOGY], c->YL, &set[AG_YLOGY]));
    for (size_t di = 0; di < pl->nd; di++) {
        TRY(g_mul(s, Wc, c->Qw[di], w->tmp));
        TRY(g_acc(acc[agg_wq(pl, di)], w->tmp, &set[agg_wq(pl, di)]));
        TRY(g_acc(acc[agg_q(pl, di)], c->Qu[di], &set[agg_q(pl, di)]));
    }
done:
    return rc;
}

void stats_glm_enc_free(stats_glm_enc_t *e)
{
    if (!e) return;
    for (size_t i = 0; i < e->count; i++) ckks_ciphertext_free(e->cts[i]);
    free(e->cts);
    free(e);
}

static void work_free(glm_work_t *w, glm_cheb_t *ch)
{
    ckks_ciphertext_t **all[] = {&w->E, &w->Rs, &w->Ms, &w->tmp, &w->tmp2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ckks_ciphertext_free(*all[i]);
    for (int f = 0; f < NFN; f++) ckks_ciphertext_free(w->poly[f]);
    for (size_t i = 0; i < 8; i++) ckks_ciphertext_free(ch->T[i]);
    for (size_t i = 0; i < ch->npool; i++) ckks_ciphertext_free(ch->pool[i]);
}

/* One thread's state: scratch ciphertexts, its mask cache and its totals.
 * Threads take chunks; their totals are added at the end (modular sums:
 * the same bytes for any number of threads). */
typedef struct {
    glm_srv_t s;
    glm_work_t w;
    glm_cheb_t ch;
    stats_counts_t counts;
    ckks_ciphertext_t *acc[AG_WQ0 + 2 * MAXT * MAXT];
    int set[AG_WQ0 + 2 * MAXT * MAXT];
    int rc;
    char err[256];
} glm_worker_t;

static void worker_free(glm_worker_t *k)
{
    for (size_t i = 0; i < AG_WQ0 + 2 * MAXT * MAXT; i++) ckks_ciphertext_free(k->acc[i]);
    work_free(&k->w, &k->ch);
    ckks_plaintext_free(k->s.pt);
    for (size_t i = 0; i < k->s.nmasks; i++) ckks_plaintext_free(k->s.masks[i].pt);
    free(k->s.vals);
}

static int worker_init(glm_worker_t *k, const ckks_context_t *ctx, const ckks_relin_key_t *rk,
                       const ckks_galois_keys_t *gk, const stats_layout_t *lay, const glm_plan_t *pl)
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
    k->s.vals = calloc(k->s.S, sizeof *k->s.vals);
    if (!k->s.vals) return STATS_ENOMEM;
    TRY(ckks_plaintext_new(ctx, 0, &k->s.pt));
    glm_work_t *w = &k->w;
    ckks_ciphertext_t **all[] = {&w->E, &w->Rs, &w->Ms, &w->tmp, &w->tmp2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) TRY(ckks_ciphertext_new(ctx, 2, 0, all[i]));
    for (int f = 0; f < NFN; f++) TRY(ckks_ciphertext_new(ctx, 2, 0, &w->poly[f]));
    for (size_t i = 0; i < 8; i++) TRY(ckks_ciphertext_new(ctx, 2, 0, &k->ch.T[i]));
    for (size_t i = 0; i < pl->nagg; i++) TRY(ckks_ciphertext_new(ctx, 2, 1, &k->acc[i]));
done:
    return rc;
}

struct stats_glm_prep {
    const ckks_context_t *ctx;
    const stats_layout_t *lay;
    stats_glm_model_t model;
    glm_plan_t pl;
    size_t top, nchunks;
    int nth;
    glm_worker_t *wk;
    glm_chunk_t *chunks;
};

void stats_glm_prep_free(stats_glm_prep_t *p)
{
    if (!p) return;
    for (int i = 0; p->wk && i < p->nth; i++) worker_free(&p->wk[i]);
    for (size_t c = 0; p->chunks && c < p->nchunks; c++) chunk_free(&p->chunks[c]);
    free(p->wk);
    free(p->chunks);
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
    int rc = glm_plan(p->lay, m, NULL, &p->pl);
    if (rc) goto done;
    p->top = tables[0]->z[0]->nprimes;
    for (size_t t = 0; t < ntables; t++) {
        const stats_enc_table_t *tb = tables[t];
        if (tb->layout.ncols != p->lay->ncols || tb->layout.block != p->lay->block ||
            tb->layout.slots != p->lay->slots || tb->z[0]->nprimes != p->top) {
            rc = STATS_ESCHEMA;
            goto done;
        }
        p->nchunks += tb->chunks;
    }
    /* Threads across chunks (the CKKS layer's own threads across primes are
     * idle inside them): the context's thread count, at most one a chunk. */
    p->nth = ckks_context_threads(ctx);
    if (p->nth < 1) p->nth = 1;
    if ((size_t)p->nth > p->nchunks) p->nth = (int)p->nchunks;
    p->wk = calloc((size_t)p->nth, sizeof *p->wk);
    p->chunks = calloc(p->nchunks, sizeof *p->chunks);
    if (!p->wk || !p->chunks) {
        rc = STATS_ENOMEM;
        goto done;
    }
    for (int i = 0; i < p->nth && !rc; i++) rc = worker_init(&p->wk[i], ctx, rk, gk, p->lay, &p->pl);
    if (rc) goto done;
    const size_t yl = m->have_ylogy ? m->ylogy : (size_t)-1;
#pragma omp parallel for num_threads(p->nth) schedule(dynamic, 1)
    for (size_t c = 0; c < p->nchunks; c++) {
        glm_worker_t *k = &p->wk[omp_get_thread_num()];
        if (k->rc) continue;
        size_t t = 0, kk = c;
        while (kk >= tables[t]->chunks) kk -= tables[t++]->chunks;
        k->rc = chunk_prepare(&k->s, &p->pl, yl, tables[t]->z[kk], tables[t]->m[kk], &k->w, &p->chunks[c]);
        if (k->rc) snprintf(k->err, sizeof k->err, "%s", stats_error());
    }
    rc = workers_rc(p);
    if (counts) {
        memset(counts, 0, sizeof *counts);
        for (int i = 0; i < p->nth; i++) {
            counts->rotations += p->wk[i].counts.rotations;
            counts->relinearizations += p->wk[i].counts.relinearizations;
            counts->multiplications += p->wk[i].counts.multiplications;
            counts->rescales += p->wk[i].counts.rescales;
            counts->conjugations += p->wk[i].counts.conjugations;
        }
    }
done:
    if (rc) stats_glm_prep_free(p);
    else *out = p;
    return rc;
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
    glm_poly_t poly;
    glm_point_poly(m->family, &pl, pt, &poly);
    unsigned depth = 0;
    while ((1u << depth) < poly.degree + 1) depth++;
    if (p->top < POLY_PRIMES + depth + 1) {
        stats_set_error("glm: the study's parameters have %zu data primes; a degree-%u model needs %u (keygen picks "
                        "them for --stats glm:...)", p->top, poly.degree, POLY_PRIMES + depth + 1);
        return STATS_ESCHEMA;
    }
    stats_glm_enc_t *res = NULL;
    for (int i = 0; i < p->nth; i++) {
        glm_worker_t *k = &p->wk[i];
        memset(&k->counts, 0, sizeof k->counts);
        memset(k->set, 0, sizeof k->set);
        k->rc = 0;
    }
    const int yl = m->have_ylogy;
#pragma omp parallel for num_threads(p->nth) schedule(dynamic, 1)
    for (size_t c = 0; c < p->nchunks; c++) {
        glm_worker_t *k = &p->wk[omp_get_thread_num()];
        if (k->rc) continue;
        k->rc = chunk_round(&k->s, &pl, &poly, pt, yl, &p->chunks[c], &k->w, &k->ch, k->acc, k->set);
        if (k->rc) snprintf(k->err, sizeof k->err, "%s", stats_error());
    }
    if ((rc = workers_rc(p))) return rc;
    glm_worker_t *k0 = &p->wk[0];
    for (int i = 1; i < p->nth; i++) {
        for (size_t a = 0; a < pl.nagg; a++)
            if (p->wk[i].set[a]) TRY(g_acc(k0->acc[a], p->wk[i].acc[a], &k0->set[a]));
        stats_counts_t *c = &p->wk[i].counts;
        k0->counts.rotations += c->rotations;
        k0->counts.relinearizations += c->relinearizations;
        k0->counts.multiplications += c->multiplications;
        k0->counts.rescales += c->rescales;
        k0->counts.conjugations += c->conjugations;
    }
    /* Pack: total a moves to its place in its block, then fold over rows. */
    res = calloc(1, sizeof *res);
    if (!res || !(res->cts = calloc(pl.npacked, sizeof *res->cts))) {
        rc = STATS_ENOMEM;
        goto done;
    }
    int pset[MAXT * MAXT] = {0};
    for (size_t j = 0; j < pl.npacked; j++) {
        TRY(ckks_ciphertext_new(p->ctx, 2, 1, &res->cts[j]));
        res->count = j + 1;
    }
    glm_srv_t *s = &k0->s;
    for (size_t a = 0; a < pl.nagg; a++) {
        if (!k0->set[a]) continue;
        size_t j = a / pl.per_ct, o = (a % pl.per_ct) * pl.span;
        size_t from = a == AG_YLOGY ? m->ylogy : pl.pmin, step = (from + s->B - o) % s->B;
        if (step) TRY(g_rot(s, k0->acc[a], (long)step, k0->acc[a]));
        TRY(g_acc(res->cts[j], k0->acc[a], &pset[j]));
    }
    for (size_t j = 0; j < pl.npacked; j++)
        for (size_t st = s->S / 2; st >= s->B; st >>= 1) {
            TRY(g_rot(s, res->cts[j], (long)st, k0->w.tmp));
            TRY(ckks_add(res->cts[j], k0->w.tmp, res->cts[j]));
        }
    if (counts) *counts = k0->counts;
    *out = res;
    res = NULL;
done:
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
        counts->rotations = c1.rotations + c2.rotations;
        counts->relinearizations = c1.relinearizations + c2.relinearizations;
        counts->multiplications = c1.multiplications + c2.multiplications;
        counts->rescales = c1.rescales + c2.rescales;
        counts->conjugations = c1.conjugations + c2.conjugations;
    }
    return rc;
}

/* ---- client ---- */

int stats_glm_decrypt(const ckks_context_t *ctx, const ckks_secret_key_t *sk, const stats_layout_t *lay,
                      const stats_glm_model_t *m, const stats_glm_point_t *pt, const stats_glm_enc_t *e,
                      stats_glm_totals_t *out)
{
    if (!ctx || !sk || !lay || !m || !pt || !e || !out) return STATS_EINVAL;
    glm_plan_t pl;
    int rc = glm_plan(lay, m, pt, &pl);
    if (rc) return rc;
    if (e->count != pl.npacked) return STATS_ESCHEMA;
    glm_poly_t poly;
    glm_point_poly(m->family, &pl, pt, &poly);
    const size_t S = lay->slots;
    double *re = malloc(S * sizeof *re);
    long double *v = calloc(e->count * S, sizeof *v);
    ckks_plaintext_t *p = NULL;
    if (!re || !v) {
        rc = STATS_ENOMEM;
        goto done;
    }
    TRY(ckks_plaintext_new(ctx, 0, &p));
    for (size_t j = 0; j < e->count; j++) {
        TRY(ckks_decrypt(sk, e->cts[j], p));
        TRY(ckks_decode(ctx, p, re, NULL, S));
        for (size_t i = 0; i < S; i++) v[j * S + i] = re[i];
    }
#define AT(agg, P) (agg_slot(&pl, (agg), (P), &cj, &sl), v[cj * S + sl])
    size_t cj, sl;
    memset(out, 0, sizeof *out);
    out->k = m->k;
    const long double fy = lay->factor[m->y];
    long double nmu = poly.norm[FN_MU], nw = poly.nfn == 1 ? poly.norm[FN_MU] : poly.norm[FN_W];
    out->n = AT(AG_X, pl.P[0]);
    out->sy = AT(AG_Y, pl.P[0]) * fy;
    out->smu = AT(AG_MUX, pl.P[0]) * nmu;
    out->info[0][0] = AT(AG_WX, pl.P[0]) * nw;
    out->ssp = poly.nfn == 3 ? AT(AG_SP, pl.P[0]) * poly.norm[FN_SP] : NAN;
    out->sylogy = m->have_ylogy ? AT(AG_YLOGY, pl.pmin) * lay->factor[m->ylogy] : NAN;
    for (size_t j = 1; j <= m->k; j++) {
        out->smux[j] = AT(AG_MUX, pl.P[j]) * nmu;
        out->info[0][j] = out->info[j][0] = AT(AG_WX, pl.P[j]) * nw;
        out->sx[j] = AT(AG_X, pl.P[j]);
        size_t lo = pl.P[0] < pl.P[j] ? pl.P[0] : pl.P[j];
        size_t d = pl.P[0] > pl.P[j] ? pl.P[0] - pl.P[j] : pl.P[j] - pl.P[0];
        out->syx[j] = AT(agg_q(&pl, dist_index(&pl, d)), lo) * fy;
        for (size_t i = 1; i <= j; i++) {
            lo = pl.P[i] < pl.P[j] ? pl.P[i] : pl.P[j];
            d = pl.P[i] > pl.P[j] ? pl.P[i] - pl.P[j] : pl.P[j] - pl.P[i];
            out->info[i][j] = out->info[j][i] = AT(agg_wq(&pl, dist_index(&pl, d)), lo) * nw;
        }
    }
#undef AT
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
    ckks_plaintext_free(p);
    free(re);
    free(v);
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
     * the CKKS noise; the decrement's own noise floor is about 1e-11. */
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
        if (dec < tol && (m->family != STATS_GLM_BINOMIAL || pt.deviance)) {
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
