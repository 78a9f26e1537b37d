/* RNS polynomial helpers: NTT over all limbs, small polynomials, rescaling
 * by the last prime, Galois automorphisms and key switching. */
#include <stdlib.h>
#include <string.h>

#include "ckks_impl.h"

void ckks_small_widen(const int8_t *v, size_t n, int negate, uint64_t *w)
{
    const int64_t sign = negate ? -1 : 1;
    for (size_t t = 0; t < n; t++) w[t] = (uint64_t)(sign * v[t]);
}

void ckks_small_limb_to_ntt(const ckks_context_t *ctx, const uint64_t *w, size_t i, uint64_t *out)
{
    /* w + q lies in [0, 2q) for |w| < q, and the forward transform takes
     * inputs below 4q: no reduction, no branch on the (secret) signs. */
    const uint64_t q = ctx->primes[i];
    for (size_t t = 0; t < ctx->n; t++) out[t] = w[t] + q;
    ntt_forward(ctx->ntt[i], out);
}

void ckks_small_to_ntt(const ckks_context_t *ctx, const int8_t *v, size_t np, uint64_t *out)
{
    /* Widened once into limb 0, which is converted last. */
    const int nt = ctx->threads;
    if (np == 0) return;
    ckks_small_widen(v, ctx->n, 0, out);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (size_t i = 1; i < np; i++) ckks_small_limb_to_ntt(ctx, out, i, out + i * ctx->n);
    ckks_small_limb_to_ntt(ctx, out, 0, out);
}

void ckks_wide_to_ntt(const ckks_context_t *ctx, const int64_t *v, size_t np, uint64_t *out)
{
    for (size_t i = 0; i < np; i++) {
        const uint64_t q = ctx->primes[i];
        uint64_t *o = out + i * ctx->n;
        for (size_t t = 0; t < ctx->n; t++) {
            uint64_t mag = v[t] < 0 ? (uint64_t)0 - (uint64_t)v[t] : (uint64_t)v[t];
            uint64_t r = mag % q;
            o[t] = v[t] < 0 && r ? q - r : r;
        }
        ntt_forward(ctx->ntt[i], o);
    }
}

void ckks_poly_ntt(const ckks_context_t *ctx, uint64_t *p, size_t np)
{
    const int nt = ctx->threads;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (size_t i = 0; i < np; i++) ntt_forward(ctx->ntt[i], p + i * ctx->n);
}

void ckks_poly_intt(const ckks_context_t *ctx, uint64_t *p, size_t np)
{
    const int nt = ctx->threads;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (size_t i = 0; i < np; i++) ntt_inverse(ctx->ntt[i], p + i * ctx->n);
}

/* out_i += (x_i - NTT([t]_{q_i} - half)) * q_last^-1 for every i < np, where t
 * is [last + half]_{q_last} in coefficient form: SEAL's rounding division.
 * `acc` selects out += result (key switching) or out = result (rescale).
 * tmps: np * N words of scratch (one limb per thread-parallel iteration). */
static void divide_round(const ckks_context_t *ctx, const uint64_t *x, const uint64_t *t,
                         size_t np, size_t last, uint64_t half, uint64_t *out, int acc,
                         uint64_t *tmps)
{
    const size_t n = ctx->n;
    const int nt = ctx->threads;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (size_t i = 0; i < np; i++) {
        uint64_t *tmp = tmps + i * n;
        const ntt_modulus_t *m = &ctx->mod[i];
        uint64_t q = m->value;
        uint64_t neg_half = ntt_negmod(ntt_reduce64(half, m), q);
        ntt_vec_reduce(tmp, t, n, m);
        /* No reduction after adding: tmp + neg_half < 2q, and the forward
         * transform takes inputs below 4q (a plain add vectorises). */
        for (size_t k = 0; k < n; k++) tmp[k] += neg_half;
        ntt_forward(ctx->ntt[i], tmp);
        ntt_vec_sub(tmp, x + i * n, tmp, n, m);
        if (acc)
            ntt_vec_fma_scalar(out + i * n, tmp, ctx->inv_q[last][i], out + i * n, n, m);
        else
            ntt_vec_mul_scalar(out + i * n, tmp, ctx->inv_q[last][i], n, m);
    }
}

int ckks_poly_divide_round_last(const ckks_context_t *ctx, uint64_t *p, size_t np)
{
    return ckks_poly_divide_round_last_to(ctx, p, np, p);
}

int ckks_poly_divide_round_last_to(const ckks_context_t *ctx, const uint64_t *p, size_t np,
                                   uint64_t *out)
{
    if (np < 2) return CKKS_ELEVEL;
    const size_t n = ctx->n, last = np - 1;
    uint64_t *t = ckks_scratch(CKKS_SCRATCH_DIVIDE, (np + 1) * n), *tmp = t + n;
    if (!t) return CKKS_ENOMEM;
    uint64_t ql = ctx->primes[last], half = ql >> 1;
    memcpy(t, p + last * n, n * sizeof *t);
    ntt_inverse(ctx->ntt[last], t);
    for (size_t k = 0; k < n; k++) t[k] = ntt_addmod(t[k], half, ql);
    divide_round(ctx, p, t, last, last, half, out, 0, tmp);
    return CKKS_OK;
}

void ckks_poly_galois(const ckks_context_t *ctx, const uint64_t *p, size_t np, uint32_t elt,
                      uint64_t *out)
{
    /* NTT slot k holds a(psi^(2 br(k) + 1)); a(X^g) there is a(psi^(g (2 br(k) + 1))),
     * i.e. slot br(((g (2 br(k) + 1)) mod 2N) >> 1). */
    const size_t n = ctx->n;
    const uint64_t mask = 2 * n - 1;
    const uint32_t *src = ckks_galois_perm_table(ctx, elt, NULL);
    uint32_t *own = src ? NULL : malloc(n * sizeof *own);
    if (own) src = ckks_galois_perm_table(ctx, elt, own);
    if (src) {
        ckks_permute_limbs(out, p, np, src, n);
        free(own);
        return;
    }
    for (size_t k = 0; k < n; k++) { /* no memory for the table: same thing, slower */
        uint64_t e = ((uint64_t)elt * (2 * (uint64_t)ctx->bitrev[k] + 1)) & mask;
        for (size_t i = 0; i < np; i++) out[i * n + k] = p[i * n + ctx->bitrev[e >> 1]];
    }
}

/* Mod down by the special prime P, rounding: c0 += prod_b / P, c1 += prod_a / P.
 * prod: (b, a) over np data primes + P; op: one limb, tmp: np limbs of scratch. */
static int mod_down(const ckks_context_t *ctx, uint64_t *prod, size_t np, uint64_t *op,
                    uint64_t *tmp, uint64_t *c0, uint64_t *c1)
{
    const size_t n = ctx->n, sp = ctx->k - 1;
    uint64_t P = ctx->primes[sp], half = P >> 1;
    for (int c = 0; c < 2; c++) {
        uint64_t *acc = prod + (size_t)c * (np + 1) * n;
        memcpy(op, acc + np * n, n * sizeof *op);
        ntt_inverse(ctx->ntt[sp], op);
        for (size_t t = 0; t < n; t++) op[t] = ntt_addmod(op[t], half, P);
        divide_round(ctx, acc, op, np, sp, half, c ? c1 : c0, 1, tmp);
    }
    return CKKS_OK;
}

/* Digits whose inner-product terms are summed at once (ntt_vec_dot1x2). */
#define KS_GROUP 4

int ckks_keyswitch_add(const ckks_context_t *ctx, const uint64_t *target, size_t np,
                       const ckks_kswitch_t *ksk, uint64_t *c0, uint64_t *c1)
{
    const size_t n = ctx->n, k = ctx->k, sp = k - 1;
    if (np > ckks_kswitch_primes(ctx, ksk)) return CKKS_ELEVEL; /* a limited key */
    /* coef: target in coefficient form (np limbs); prod: (b, a) accumulators
     * over np data primes + the special prime. */
    /* coef | prod (2 (np+1) limbs) | KS_GROUP operand limbs per output prime |
     * np limbs of scratch for the mod-down (at least np + 1 limbs: mod_down
     * uses ops too) */
    const size_t G = KS_GROUP;
    uint64_t *coef = ckks_scratch(CKKS_SCRATCH_KSWITCH, (np + 2 * (np + 1) + (np + 1) * G + np) * n);
    if (!coef) return CKKS_ENOMEM;
    uint64_t *prod = coef + np * n, *ops = prod + 2 * (np + 1) * n, *tmp = ops + (np + 1) * G * n;
    const int nt = ctx->threads;
    memcpy(coef, target, np * n * sizeof *coef);
    ckks_poly_intt(ctx, coef, np);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic)
    for (size_t oi = 0; oi <= np; oi++) {
        uint64_t *op = ops + oi * G * n;
        size_t ki = oi == np ? sp : oi; /* prime index in the key */
        const ntt_modulus_t *m = &ctx->mod[ki];
        uint64_t *acc_b = prod + (0 * (np + 1) + oi) * n, *acc_a = prod + (1 * (np + 1) + oi) * n;
        /* G digits at a time into this prime, then their sums at once. */
        for (size_t j0 = 0; j0 < np; j0 += G) {
            const size_t cnt = np - j0 < G ? np - j0 : G;
            const uint64_t *x[KS_GROUP];
            for (size_t t = 0; t < cnt; t++) {
                size_t j = j0 + t;
                if (oi == j) {
                    x[t] = target + j * n;
                } else {
                    ntt_vec_reduce(op + t * n, coef + j * n, n, m);
                    ntt_forward(ctx->ntt[ki], op + t * n);
                    x[t] = op + t * n;
                }
            }
            ckks_ks_dot(acc_b, acc_a, x, ksk, j0, cnt, k, ki, n, m);
        }
    }
    return mod_down(ctx, prod, np, ops, tmp, c0, c1);
}

void ckks_permute_limbs(uint64_t *out, const uint64_t *p, size_t np, const uint32_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 2 <= np; i += 2) ntt_vec_permute2(out + i * n, out + (i + 1) * n, p + i * n, p + (i + 1) * n, src, n);
    for (; i < np; i++)
        for (size_t k = 0; k < n; k++) out[i * n + k] = p[i * n + src[k]];
}

const uint32_t *ckks_galois_perm_table(const ckks_context_t *ctx, uint32_t elt, uint32_t *buf)
{
    if (!(elt & 1) || elt >= 2 * ctx->n) return NULL;
    ckks_context_t *c = (ckks_context_t *)ctx; /* the cache only */
    uint32_t **slot = &c->perms[elt >> 1];
    const uint32_t *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (p) return p;
    pthread_mutex_lock(&c->perm_lock);
    p = *slot;
    if (!p && c->nperms < CKKS_PERM_CACHE) {
        uint32_t *t = malloc(ctx->n * sizeof *t);
        if (t) {
            ckks_galois_perm(ctx, elt, t);
            c->nperms++;
            __atomic_store_n(slot, t, __ATOMIC_RELEASE);
            p = t;
        }
    }
    pthread_mutex_unlock(&c->perm_lock);
    if (p || !buf) return p;
    ckks_galois_perm(ctx, elt, buf);
    return buf;
}

/* Galois permutation of NTT slots: out[k] = p[src[k]] (see ckks_poly_galois). */
void ckks_galois_perm(const ckks_context_t *ctx, uint32_t elt, uint32_t *src)
{
    const size_t n = ctx->n;
    const uint64_t mask = 2 * n - 1;
    for (size_t k = 0; k < n; k++) {
        uint64_t e = ((uint64_t)elt * (2 * (uint64_t)ctx->bitrev[k] + 1)) & mask;
        src[k] = ctx->bitrev[e >> 1];
    }
}

size_t ckks_hoist_words(const ckks_context_t *ctx, size_t np)
{
    return (np + 1) * np * ctx->n;
}

void ckks_keyswitch_decompose(const ckks_context_t *ctx, const uint64_t *target, size_t np,
                              uint64_t *digits, uint64_t *coef)
{
    /* digits[(oi*np + j)*N]: digit j (target mod q_j, lifted to [0, q_j))
     * reduced mod output prime oi (oi = np: the special prime), NTT form. */
    const size_t n = ctx->n, sp = ctx->k - 1;
    const int nt = ctx->threads;
    memcpy(coef, target, np * n * sizeof *coef);
    ckks_poly_intt(ctx, coef, np);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic)
    for (size_t oi = 0; oi <= np; oi++) {
        size_t ki = oi == np ? sp : oi;
        const ntt_modulus_t *m = &ctx->mod[ki];
        for (size_t j = 0; j < np; j++) {
            uint64_t *d = digits + (oi * np + j) * n;
            if (oi == j) {
                memcpy(d, target + j * n, n * sizeof *d);
            } else {
                ntt_vec_reduce(d, coef + j * n, n, m);
                ntt_forward(ctx->ntt[ki], d);
            }
        }
    }
}

int ckks_keyswitch_digits_add(const ckks_context_t *ctx, const uint64_t *digits, size_t np,
                              const uint32_t *src, const ckks_kswitch_t *ksk, uint64_t *c0,
                              uint64_t *c1)
{
    const size_t n = ctx->n, k = ctx->k, sp = k - 1;
    if (np > ckks_kswitch_primes(ctx, ksk)) return CKKS_ELEVEL; /* a limited key */
    /* prod (2 (np+1) limbs) | KS_GROUP operand limbs per output prime | np
     * limbs for the mod-down */
    const size_t G = KS_GROUP;
    uint64_t *prod = ckks_scratch(CKKS_SCRATCH_KSWITCH, (2 * (np + 1) + (np + 1) * G + np) * n);
    if (!prod) return CKKS_ENOMEM;
    uint64_t *ops = prod + 2 * (np + 1) * n, *tmp = ops + (np + 1) * G * n;
    const int nt = ctx->threads;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic)
    for (size_t oi = 0; oi <= np; oi++) {
        uint64_t *op = ops + oi * G * n;
        size_t ki = oi == np ? sp : oi;
        const ntt_modulus_t *m = &ctx->mod[ki];
        uint64_t *acc_b = prod + (0 * (np + 1) + oi) * n, *acc_a = prod + (1 * (np + 1) + oi) * n;
        for (size_t j0 = 0; j0 < np; j0 += G) {
            const size_t cnt = np - j0 < G ? np - j0 : G;
            const uint64_t *x[KS_GROUP];
            for (size_t t = 0; t < cnt; t++) {
                size_t j = j0 + t;
                const uint64_t *d = digits + (oi * np + j) * n;
                x[t] = d;
                if (src) {
                    /* The gather reads d in a scattered order the hardware
                     * prefetcher cannot follow: stream the next digit limb
                     * into the cache meanwhile, one line per 8 words. */
                    uint64_t *o = op + t * n;
                    const uint64_t *next = j + 1 < np ? d + n : NULL;
                    if (next) {
                        for (size_t u0 = 0; u0 < n; u0 += 8) {
                            __builtin_prefetch(next + u0);
                            for (size_t u = u0; u < u0 + 8; u++) o[u] = d[src[u]];
                        }
                    } else {
                        for (size_t u = 0; u < n; u++) o[u] = d[src[u]];
                    }
                    x[t] = o;
                }
            }
            ckks_ks_dot(acc_b, acc_a, x, ksk, j0, cnt, k, ki, n, m);
        }
    }
    return mod_down(ctx, prod, np, ops, tmp, c0, c1);
}
