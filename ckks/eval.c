/* Homomorphic evaluation. Outputs may alias inputs; levels and scales are
 * checked and a mismatch is an error, never a wrong answer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_impl.h"

#define POLY(ct, p, i) ((ct)->data + (((p) * (ct)->nprimes + (i)) * (ct)->ctx->n))

static int check_ct(const ckks_ciphertext_t *a, const ckks_ciphertext_t *out)
{
    if (!a || !out) return CKKS_EINVAL;
    if (a->ctx != out->ctx) return CKKS_ECONTEXT;
    if (a->size < 2 || a->size > 3) return CKKS_ESIZE;
    if (a->nprimes == 0 || a->nprimes >= a->ctx->k) return CKKS_ELEVEL;
    return CKKS_OK;
}

static int check_pair(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b,
                      const ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    rc = check_ct(b, out);
    if (rc) return rc;
    if (a->nprimes != b->nprimes) return CKKS_ELEVEL;
    if (!ckks_scales_close(a->scale, b->scale)) return CKKS_ESCALE;
    return CKKS_OK;
}

static int check_plain(const ckks_ciphertext_t *a, const ckks_plaintext_t *p,
                       const ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    if (!p) return CKKS_EINVAL;
    if (p->ctx != a->ctx) return CKKS_ECONTEXT;
    if (p->nprimes != a->nprimes) return CKKS_ELEVEL;
    return CKKS_OK;
}

/* The scale must stay below the modulus of its level (SEAL's rule). */
static int scale_ok(const ckks_context_t *ctx, double scale, size_t np)
{
    return scale > 0 && isfinite(scale) && log2(scale) < ctx->crt[np].bits;
}

/* Moves polynomials 1.. so that the layout matches np_new primes per poly. */
static void relayout(uint64_t *data, size_t size, size_t np_old, size_t np_new, size_t n)
{
    for (size_t p = 1; p < size; p++)
        memmove(data + p * np_new * n, data + p * np_old * n, np_new * n * sizeof *data);
}

static int add_sub(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, ckks_ciphertext_t *out,
                   int subtract)
{
    int rc = check_pair(a, b, out);
    if (rc) return rc;
    const ckks_context_t *ctx = a->ctx;
    const size_t n = ctx->n, np = a->nprimes;
    size_t size = a->size > b->size ? a->size : b->size;
    /* out may alias a or b: layout is the same (same np), work per limb. */
    for (size_t p = 0; p < size; p++) {
        for (size_t i = 0; i < np; i++) {
            const ntt_modulus_t *m = &ctx->mod[i];
            uint64_t *o = out->data + (p * np + i) * n;
            const uint64_t *x = p < a->size ? POLY(a, p, i) : NULL;
            const uint64_t *y = p < b->size ? POLY(b, p, i) : NULL;
            if (x && y)
                (subtract ? ntt_vec_sub : ntt_vec_add)(o, x, y, n, m);
            else if (x)
                memmove(o, x, n * sizeof *o);
            else if (subtract)
                ntt_vec_neg(o, y, n, m);
            else
                memmove(o, y, n * sizeof *o);
        }
    }
    out->size = size;
    out->nprimes = np;
    out->scale = a->scale;
    return CKKS_OK;
}

int ckks_add(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, ckks_ciphertext_t *out)
{
    return add_sub(a, b, out, 0);
}

int ckks_sub(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, ckks_ciphertext_t *out)
{
    return add_sub(a, b, out, 1);
}

int ckks_negate(const ckks_ciphertext_t *a, ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    const size_t n = a->ctx->n, np = a->nprimes;
    for (size_t p = 0; p < a->size; p++)
        for (size_t i = 0; i < np; i++)
            ntt_vec_neg(out->data + (p * np + i) * n, POLY(a, p, i), n, &a->ctx->mod[i]);
    out->size = a->size;
    out->nprimes = np;
    out->scale = a->scale;
    return CKKS_OK;
}

static int add_sub_plain(const ckks_ciphertext_t *a, const ckks_plaintext_t *pl,
                         ckks_ciphertext_t *out, int subtract)
{
    int rc = check_plain(a, pl, out);
    if (rc) return rc;
    if (!ckks_scales_close(a->scale, pl->scale)) return CKKS_ESCALE;
    rc = ckks_ciphertext_copy(out, a);
    if (rc) return rc;
    const size_t n = a->ctx->n;
    for (size_t i = 0; i < a->nprimes; i++)
        (subtract ? ntt_vec_sub : ntt_vec_add)(out->data + i * n, out->data + i * n,
                                                pl->data + i * n, n, &a->ctx->mod[i]);
    return CKKS_OK;
}

int ckks_add_plain(const ckks_ciphertext_t *a, const ckks_plaintext_t *p, ckks_ciphertext_t *out)
{
    return add_sub_plain(a, p, out, 0);
}

int ckks_sub_plain(const ckks_ciphertext_t *a, const ckks_plaintext_t *p, ckks_ciphertext_t *out)
{
    return add_sub_plain(a, p, out, 1);
}

int ckks_multiply_plain(const ckks_ciphertext_t *a, const ckks_plaintext_t *pl,
                        ckks_ciphertext_t *out)
{
    int rc = check_plain(a, pl, out);
    if (rc) return rc;
    double scale = a->scale * pl->scale;
    if (!scale_ok(a->ctx, scale, a->nprimes)) return CKKS_ESCALE;
    const size_t n = a->ctx->n, np = a->nprimes;
    for (size_t p = 0; p < a->size; p++)
        for (size_t i = 0; i < np; i++)
            ntt_vec_mul(out->data + (p * np + i) * n, POLY(a, p, i), pl->data + i * n, n,
                        &a->ctx->mod[i]);
    out->size = a->size;
    out->nprimes = np;
    out->scale = scale;
    return CKKS_OK;
}

int ckks_multiply_const(const ckks_ciphertext_t *a, double value, double scale,
                        ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    ckks_plaintext_t *pl;
    rc = ckks_plaintext_new(a->ctx, a->nprimes, &pl);
    if (rc) return rc;
    rc = ckks_encode_constant(a->ctx, value, scale, a->nprimes, pl);
    if (rc == CKKS_OK) rc = ckks_multiply_plain(a, pl, out);
    ckks_plaintext_free(pl);
    return rc;
}

int ckks_multiply(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    rc = check_ct(b, out);
    if (rc) return rc;
    if (a->nprimes != b->nprimes) return CKKS_ELEVEL;
    if (a->size != 2 || b->size != 2) return CKKS_ESIZE;
    double scale = a->scale * b->scale;
    if (!scale_ok(a->ctx, scale, a->nprimes)) return CKKS_ESCALE;
    const size_t n = a->ctx->n, np = a->nprimes;
    /* Straight into out, limb by limb, with one limb of scratch: out may be
     * a or b, so each limb's outputs are written in an order that reads every
     * input before overwriting it (c2 lands beyond the inputs' two polys; c1
     * over a1 or b1 once both are used; c0 over a0 or b0 last). */
    uint64_t *t = ckks_scratch(CKKS_SCRATCH_MUL, np * n);
    if (!t) return CKKS_ENOMEM;
    out->nprimes = np; /* POLY(out, ...) below uses it; unchanged when out is a or b */
    const int nt = a->ctx->threads;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (size_t i = 0; i < np; i++) {
        const ntt_modulus_t *m = &a->ctx->mod[i];
        const uint64_t *a0 = POLY(a, 0, i), *a1 = POLY(a, 1, i);
        const uint64_t *b0 = POLY(b, 0, i), *b1 = POLY(b, 1, i);
        uint64_t *c0 = POLY(out, 0, i), *c1 = POLY(out, 1, i), *c2 = POLY(out, 2, i);
        uint64_t *cross = t + i * n;
        ntt_vec_mul(cross, a0, b1, n, m);
        ntt_vec_mul(c2, a1, b1, n, m);
        ntt_vec_fma(c1, a1, b0, cross, n, m);
        ntt_vec_mul(c0, a0, b0, n, m);
    }
    out->size = 3;
    out->scale = scale;
    return CKKS_OK;
}

int ckks_square(const ckks_ciphertext_t *a, ckks_ciphertext_t *out)
{
    return ckks_multiply(a, a, out);
}

/* Key switching of target with key, the kind hyb says (NULL: SEAL's). */
static int keyswitch_add(const ckks_context_t *ctx, const ckks_hybrid_t *hyb, const uint64_t *target,
                         size_t np, const ckks_kswitch_t *key, uint64_t *c0, uint64_t *c1)
{
    if (hyb) return ckks_hybrid_keyswitch_add(hyb, target, np, key, c0, c1);
    return ckks_keyswitch_add(ctx, target, np, key, c0, c1);
}

int ckks_relinearize(const ckks_ciphertext_t *a, const ckks_relin_key_t *rk, ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    if (!rk) return CKKS_EINVAL;
    if (rk->ctx != a->ctx) return CKKS_ECONTEXT;
    if (a->size == 2) return ckks_ciphertext_copy(out, a);
    rc = ckks_ciphertext_copy(out, a);
    if (rc) return rc;
    rc = keyswitch_add(a->ctx, rk->hyb, POLY(out, 2, 0), out->nprimes, &rk->key, POLY(out, 0, 0),
                       POLY(out, 1, 0));
    if (rc == CKKS_OK) out->size = 2;
    return rc;
}

int ckks_rescale(const ckks_ciphertext_t *a, ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    if (a->nprimes < 2) return CKKS_ELEVEL;
    if (out != a) {
        /* Straight from a into out's layout for one prime fewer: no copy of
         * a, no moving the polys afterwards. */
        const size_t np = a->nprimes, n = a->ctx->n;
        for (size_t p = 0; p < a->size && rc == CKKS_OK; p++)
            rc = ckks_poly_divide_round_last_to(a->ctx, POLY(a, p, 0), np,
                                                out->data + p * (np - 1) * n);
        if (rc) return rc;
        out->size = a->size;
        out->nprimes = np - 1;
        out->scale = a->scale / (double)a->ctx->primes[np - 1];
        memcpy(out->seed, a->seed, sizeof out->seed); /* as ckks_ciphertext_copy */
        out->has_seed = a->has_seed;
        return CKKS_OK;
    }
    const size_t np = out->nprimes;
    for (size_t p = 0; p < out->size && rc == CKKS_OK; p++)
        rc = ckks_poly_divide_round_last(out->ctx, POLY(out, p, 0), np);
    if (rc) return rc;
    relayout(out->data, out->size, np, np - 1, out->ctx->n);
    out->nprimes = np - 1;
    out->scale = a->scale / (double)out->ctx->primes[np - 1];
    return CKKS_OK;
}

int ckks_mod_switch(const ckks_ciphertext_t *a, size_t nprimes, ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    if (nprimes == 0 || nprimes > a->nprimes) return CKKS_ELEVEL;
    rc = ckks_ciphertext_copy(out, a);
    if (rc) return rc;
    relayout(out->data, out->size, out->nprimes, nprimes, out->ctx->n);
    out->nprimes = nprimes;
    return CKKS_OK;
}

int ckks_plaintext_mod_switch(const ckks_plaintext_t *a, size_t nprimes, ckks_plaintext_t *out)
{
    if (!a || !out) return CKKS_EINVAL;
    if (a->ctx != out->ctx) return CKKS_ECONTEXT;
    if (nprimes == 0 || nprimes > a->nprimes) return CKKS_ELEVEL;
    if (out != a) memcpy(out->data, a->data, nprimes * a->ctx->n * sizeof *out->data);
    out->nprimes = nprimes;
    out->scale = a->scale;
    return CKKS_OK;
}

/* The key of elt for a ciphertext of np primes: CKKS_EKEY when there is
 * none, CKKS_ELEVEL when it is limited below np (ckks_galois_keys_limit). */
static int find_key(const ckks_galois_keys_t *gk, uint32_t elt, size_t np, const ckks_kswitch_t **out)
{
    *out = NULL;
    for (size_t i = 0; i < gk->count; i++)
        if (gk->elts[i] == elt) {
            if (!gk->hyb && np > ckks_kswitch_primes(gk->ctx, &gk->keys[i])) return CKKS_ELEVEL;
            *out = &gk->keys[i];
            return CKKS_OK;
        }
    return CKKS_EKEY;
}

int ckks_apply_galois(const ckks_ciphertext_t *a, uint32_t galois_elt,
                      const ckks_galois_keys_t *gk, ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    if (!gk) return CKKS_EINVAL;
    if (gk->ctx != a->ctx) return CKKS_ECONTEXT;
    if (a->size != 2) return CKKS_ESIZE;
    const ckks_kswitch_t *key;
    if ((rc = find_key(gk, galois_elt, a->nprimes, &key))) return rc;
    const ckks_context_t *ctx = a->ctx;
    const size_t n = ctx->n, np = a->nprimes;
    uint64_t *t = ckks_scratch(CKKS_SCRATCH_GALOIS, 2 * np * n);
    if (!t) return CKKS_ENOMEM;
    ckks_poly_galois(ctx, POLY(a, 0, 0), np, galois_elt, t);          /* sigma(c0) */
    ckks_poly_galois(ctx, POLY(a, 1, 0), np, galois_elt, t + np * n); /* sigma(c1): target */
    memcpy(out->data, t, np * n * sizeof *t);
    memset(out->data + np * n, 0, np * n * sizeof *t);
    out->size = 2;
    out->nprimes = np;
    out->scale = a->scale;
    return keyswitch_add(ctx, gk->hyb, t + np * n, np, key, out->data, out->data + np * n);
}

int ckks_rotate(const ckks_ciphertext_t *a, int step, const ckks_galois_keys_t *gk,
                ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    if (!gk) return CKKS_EINVAL;
    const ckks_context_t *ctx = a->ctx;
    int slots = (int)ctx->slots;
    int s = step % slots;
    if (s == 0) return ckks_ciphertext_copy(out, a);
    uint32_t elt = ckks_galois_elt_rotate(ctx, s);
    if (ckks_galois_keys_has(gk, elt)) return ckks_apply_galois(a, elt, gk, out);
    /* Compose power-of-two rotations: non-adjacent form of s, which needs
     * at most one rotation per bit, using +-2^i keys. */
    if (s < 0) s += slots;
    if (s > slots / 2) s -= slots;
    int digits[32] = {0}, nd = 0, v = s < 0 ? -s : s, sign = s < 0 ? -1 : 1;
    for (int bit = 0; v; bit++, v >>= 1) {
        if (v & 1) {
            int d = 2 - (v & 3); /* +1 or -1 */
            digits[nd++] = sign * d * (1 << bit);
            v -= d;
        }
    }
    for (int i = 0; i < nd; i++)
        if (!ckks_galois_keys_has(gk, ckks_galois_elt_rotate(ctx, digits[i]))) return CKKS_EKEY;
    rc = ckks_apply_galois(a, ckks_galois_elt_rotate(ctx, digits[0]), gk, out);
    for (int i = 1; i < nd && rc == CKKS_OK; i++)
        rc = ckks_apply_galois(out, ckks_galois_elt_rotate(ctx, digits[i]), gk, out);
    return rc;
}

int ckks_apply_galois_hoisted(const ckks_ciphertext_t *a, const uint32_t *elts, size_t count,
                              const ckks_galois_keys_t *gk, ckks_ciphertext_t **outs)
{
    if (!a || !gk || !outs || (count && !elts)) return CKKS_EINVAL;
    if (count == 0) return CKKS_OK;
    for (size_t i = 0; i < count; i++) {
        int rc = check_ct(a, outs[i]);
        if (rc) return rc;
        for (size_t j = 0; j < i; j++)
            if (outs[j] == outs[i]) return CKKS_EINVAL;
    }
    if (gk->ctx != a->ctx) return CKKS_ECONTEXT;
    if (a->size != 2) return CKKS_ESIZE;
    for (size_t i = 0; i < count; i++) {
        const ckks_kswitch_t *key;
        int rc = elts[i] == 1 ? CKKS_OK : find_key(gk, elts[i], a->nprimes, &key);
        if (rc) return rc;
    }
    /* One element: hoisting saves nothing (it materialises every digit
     * first), so take ckks_apply_galois (bit-identical to ckks_rotate).
     * Hybrid keys are not hoisted: one element at a time, the output that
     * aliases a last. */
    if (count == 1 || gk->hyb) {
        int rc = CKKS_OK;
        size_t last = count;
        for (size_t i = 0; i < count && rc == CKKS_OK; i++) {
            if (outs[i] == a) last = i;
            else if (elts[i] == 1) rc = ckks_ciphertext_copy(outs[i], a);
            else rc = ckks_apply_galois(a, elts[i], gk, outs[i]);
        }
        if (rc == CKKS_OK && last < count && elts[last] != 1) rc = ckks_apply_galois(a, elts[last], gk, outs[last]);
        return rc;
    }
    const ckks_context_t *ctx = a->ctx;
    const size_t n = ctx->n, np = a->nprimes, nd = ckks_hoist_words(ctx, np);
    /* digits | c0 | c1 | coef scratch | permutation (n uint32 in n/2 words) */
    uint64_t *buf = ckks_scratch(CKKS_SCRATCH_HOIST, nd + 3 * np * n + n / 2 + 1);
    if (!buf) return CKKS_ENOMEM;
    uint64_t *digits = buf, *c0 = buf + nd, *c1 = c0 + np * n, *coef = c1 + np * n;
    uint32_t *src = (uint32_t *)(coef + np * n);
    /* a's two polys are kept: outs may alias a. */
    memcpy(c0, POLY(a, 0, 0), np * n * sizeof *c0);
    memcpy(c1, POLY(a, 1, 0), np * n * sizeof *c1);
    const double scale = a->scale;
    ckks_keyswitch_decompose(ctx, c1, np, digits, coef);
    for (size_t i = 0; i < count; i++) {
        ckks_ciphertext_t *out = outs[i];
        out->size = 2;
        out->nprimes = np;
        out->scale = scale;
        out->has_seed = 0;
        out->has_seal_seed = 0;
        if (elts[i] == 1) { /* identity */
            memcpy(POLY(out, 0, 0), c0, np * n * sizeof *c0);
            memcpy(POLY(out, 1, 0), c1, np * n * sizeof *c1);
            continue;
        }
        const uint32_t *perm = ckks_galois_perm_table(ctx, elts[i], src);
        uint64_t *o0 = POLY(out, 0, 0);
        ckks_permute_limbs(o0, c0, np, perm, n);
        memset(POLY(out, 1, 0), 0, np * n * sizeof *c1);
        const ckks_kswitch_t *key;
        int rc = find_key(gk, elts[i], np, &key);
        if (!rc) rc = ckks_keyswitch_digits_add(ctx, digits, np, perm, key, o0,
                                           POLY(out, 1, 0));
        if (rc) return rc;
    }
    return CKKS_OK;
}

int ckks_rotate_hoisted(const ckks_ciphertext_t *a, const int *steps, size_t count,
                        const ckks_galois_keys_t *gk, ckks_ciphertext_t **outs)
{
    if (!a || !gk || !outs || (count && !steps)) return CKKS_EINVAL;
    if (count == 0) return CKKS_OK;
    if (gk->ctx != a->ctx) return CKKS_ECONTEXT;
    const ckks_context_t *ctx = a->ctx;
    const int slots = (int)ctx->slots;
    uint32_t *elts = malloc(count * sizeof *elts);
    size_t *direct = malloc(count * sizeof *direct);
    ckks_ciphertext_t **douts = malloc(count * sizeof *douts);
    int rc = elts && direct && douts ? CKKS_OK : CKKS_ENOMEM;
    size_t nd = 0, nfall = 0;
    for (size_t i = 0; rc == CKKS_OK && i < count; i++) {
        int s = steps[i] % slots;
        uint32_t e = s == 0 ? 1 : ckks_galois_elt_rotate(ctx, s);
        if (e == 1 || ckks_galois_keys_has(gk, e)) {
            elts[nd] = e;
            direct[nd] = i;
            douts[nd++] = outs[i];
        } else {
            nfall++;
        }
    }
    /* Steps without their own key compose power-of-two rotations
     * (ckks_rotate); they run first, from a, before any output that may
     * alias a is written. */
    for (size_t i = 0; rc == CKKS_OK && nfall && i < count; i++) {
        size_t j = 0;
        while (j < nd && direct[j] != i) j++;
        if (j < nd) continue;
        if (outs[i] == a) {
            rc = CKKS_EINVAL; /* would be overwritten before the hoisted steps read it */
            break;
        }
        rc = ckks_rotate(a, steps[i], gk, outs[i]);
    }
    if (rc == CKKS_OK) rc = ckks_apply_galois_hoisted(a, elts, nd, gk, douts);
    free(elts);
    free(direct);
    free(douts);
    return rc;
}

int ckks_conjugate(const ckks_ciphertext_t *a, const ckks_galois_keys_t *gk, ckks_ciphertext_t *out)
{
    if (!a) return CKKS_EINVAL;
    return ckks_apply_galois(a, ckks_galois_elt_conjugate(a->ctx), gk, out);
}

int ckks_inner_sum(const ckks_ciphertext_t *a, size_t width, const ckks_galois_keys_t *gk,
                   ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    if (!gk) return CKKS_EINVAL;
    if (width == 0 || width > a->ctx->slots || (width & (width - 1))) return CKKS_EINVAL;
    ckks_ciphertext_t *tmp;
    rc = ckks_ciphertext_new(a->ctx, 2, a->nprimes, &tmp);
    if (rc) return rc;
    rc = ckks_ciphertext_copy(out, a);
    for (size_t s = 1; s < width && rc == CKKS_OK; s <<= 1) {
        rc = ckks_rotate(out, (int)s, gk, tmp);
        if (rc == CKKS_OK) rc = ckks_add(out, tmp, out);
    }
    ckks_ciphertext_free(tmp);
    return rc;
}

int ckks_sum_slots(const ckks_ciphertext_t *a, const ckks_galois_keys_t *gk, ckks_ciphertext_t *out)
{
    if (!a) return CKKS_EINVAL;
    return ckks_inner_sum(a, a->ctx->slots, gk, out);
}

/* ---- deferred key switching ----
 * A sum over many ciphertexts X_k of X_k * sigma(Y_k) needs no key switch per
 * term: the automorphism alone (a permutation of NTT slots) gives a
 * ciphertext under sigma(s), and the product's four parts are kept apart
 * until the sum is complete, when one merge switches them all. */

int ckks_apply_galois_raw(const ckks_ciphertext_t *a, uint32_t galois_elt, ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (rc) return rc;
    const ckks_context_t *ctx = a->ctx;
    const size_t n = ctx->n, np = a->nprimes;
    if (!(galois_elt & 1) || galois_elt >= 2 * n) return CKKS_EINVAL;
    if (out == a) return CKKS_EINVAL;
    uint32_t *buf = (uint32_t *)ckks_scratch(CKKS_SCRATCH_GALOIS, n / 2 + 1);
    if (!buf) return CKKS_ENOMEM;
    const uint32_t *src = ckks_galois_perm_table(ctx, galois_elt, buf);
    for (size_t p = 0; p < a->size; p++) ckks_permute_limbs(out->data + p * np * n, a->data + p * np * n, np, src, n);
    out->size = a->size;
    out->nprimes = np;
    out->scale = a->scale;
    return CKKS_OK;
}

/* An operand of ckks_multiply_split_many_galois: a ciphertext and the
 * automorphism applied to it as it is read (elt 1: none; perm: its table). */
typedef struct {
    const ckks_ciphertext_t *ct;
    uint32_t elt;
    const uint32_t *perm;
    size_t slot; /* its tile in the scratch (elt != 1) */
} split_op_t;

/* The index of (ct, elt) among ops[0 .. *nops), added when new; hash: an
 * open-addressed table of hmask + 1 entries (more than twice the operands),
 * each an index + 1 or 0. */
static size_t split_op(split_op_t *ops, size_t *nops, size_t *hash, size_t hmask, const ckks_ciphertext_t *ct,
                       uint32_t elt)
{
    uint64_t h = ((uint64_t)(uintptr_t)ct >> 4) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)elt * 0xc2b2ae3d27d4eb4fULL;
    for (size_t at = (size_t)(h >> 32) & hmask;; at = (at + 1) & hmask) {
        size_t u = hash[at];
        if (!u) {
            ops[*nops] = (split_op_t){ct, elt, NULL, 0};
            hash[at] = ++*nops;
            return *nops - 1;
        }
        if (ops[u - 1].ct == ct && ops[u - 1].elt == elt) return u - 1;
    }
}

int ckks_multiply_split_many_galois(size_t count, size_t batch, const ckks_ciphertext_t *const *x,
                                    const uint32_t *ex, const ckks_ciphertext_t *const *y, const uint32_t *ey,
                                    ckks_ciphertext_t *const *acc0, ckks_ciphertext_t *const *acc1,
                                    const int *accumulate)
{
    if (count == 0 || batch == 0) return CKKS_OK;
    if (!x || !y || !acc0 || !acc1 || !accumulate) return CKKS_EINVAL;
    const ckks_context_t *ctx = x[0] ? x[0]->ctx : NULL;
    if (!ctx) return CKKS_EINVAL;
    const size_t n = ctx->n, np = x[0]->nprimes;
    double scale = 0;
    for (size_t j = 0; j < count; j++) {
        for (size_t k = 0; k < batch; k++) {
            const size_t t = j * batch + k;
            const ckks_ciphertext_t *xk = x[t], *yk = y[t];
            int rc = check_ct(xk, acc0[j]);
            if (!rc) rc = check_ct(yk, acc1[j]);
            if (rc) return rc;
            if (xk->ctx != ctx || yk->ctx != ctx || acc0[j]->ctx != ctx) return CKKS_ECONTEXT;
            if (xk->size != 2 || yk->size != 2) return CKKS_ESIZE;
            if (xk->nprimes != np || yk->nprimes != np) return CKKS_ELEVEL;
            if (acc0[j] == xk || acc0[j] == yk || acc1[j] == xk || acc1[j] == yk) return CKKS_EINVAL;
            for (int s = 0; s < 2; s++) {
                uint32_t e = s ? (ey ? ey[t] : 1) : (ex ? ex[t] : 1);
                if (!(e & 1) || e >= 2 * n) return CKKS_EINVAL;
            }
            double sc = xk->scale * yk->scale;
            if (j == 0 && k == 0) scale = sc;
            if (!ckks_scales_close(sc, scale)) return CKKS_ESCALE;
        }
        if (acc0[j] == acc1[j]) return CKKS_EINVAL;
        for (size_t i = 0; i < j; i++)
            if (acc0[i] == acc0[j] || acc1[i] == acc1[j] || acc0[i] == acc1[j] || acc1[i] == acc0[j]) return CKKS_EINVAL;
        if (accumulate[j]) {
            if (acc0[j]->size != 2 || acc1[j]->size != 2) return CKKS_ESIZE;
            if (acc0[j]->nprimes != np || acc1[j]->nprimes != np) return CKKS_ELEVEL;
            if (!ckks_scales_close(acc0[j]->scale, scale) || !ckks_scales_close(acc1[j]->scale, scale))
                return CKKS_ESCALE;
        }
    }
    if (!scale_ok(ctx, scale, np)) return CKKS_ESCALE;
    /* Tile by tile (T = 128 coefficients of a limb: the permuted tiles of a
     * batch of 8 W2 chunks, 344 KB, stay in a 512 KB L2; 8 chunks with 256
     * measured like 4 with 256, 11 % slower than 8 with 128, Zen 3): the
     * distinct operands' tiles are permuted into a scratch once (an
     * automorphism maps an aligned tile of NTT slots onto one aligned tile,
     * so its source stays in cache), each product's four sums over the batch
     * are formed before they are reduced (ntt_vec_dot2x2), and the
     * accumulators cross the memory bus once per batch. The automorphisms
     * are never written whole. */
    if (count > SIZE_MAX / 8 / batch) return CKKS_ENOMEM;
    const size_t T = n < 128 ? n : 128, terms = count * batch;
    split_op_t *ops = malloc(2 * terms * sizeof *ops);
    size_t hsize = 16;
    while (hsize < 4 * terms) hsize <<= 1;
    size_t *xo = malloc((2 * terms + hsize) * sizeof *xo), *yo = xo ? xo + terms : NULL, *hash = xo ? yo + terms : NULL;
    if (hash) memset(hash, 0, hsize * sizeof *hash);
    const uint64_t **ptr = malloc((4 * batch + 4 * terms) * sizeof *ptr);
    uint32_t **own = calloc(2 * terms, sizeof *own);
    uint64_t *scratch = NULL;
    int rc = ops && xo && ptr && own ? CKKS_OK : CKKS_ENOMEM;
    size_t nops = 0, nperm = 0, nown = 0;
    for (size_t t = 0; !rc && t < terms; t++) {
        xo[t] = split_op(ops, &nops, hash, hsize - 1, x[t], ex ? ex[t] : 1);
        yo[t] = split_op(ops, &nops, hash, hsize - 1, y[t], ey ? ey[t] : 1);
    }
    for (size_t u = 0; !rc && u < nops; u++) {
        if (ops[u].elt == 1) continue;
        ops[u].slot = nperm++;
        ops[u].perm = ckks_galois_perm_table(ctx, ops[u].elt, NULL);
        if (!ops[u].perm) { /* the table cache is full: a table of our own */
            if (!(own[nown] = malloc(n * sizeof **own))) {
                rc = CKKS_ENOMEM;
                break;
            }
            ckks_galois_perm(ctx, ops[u].elt, own[nown]);
            ops[u].perm = own[nown++];
        }
    }
    /* No accumulator may be read as any product's operand: they are
     * written tile by tile while later products read theirs. */
    for (size_t u = 0; !rc && u < nops; u++)
        for (size_t j = 0; j < count; j++)
            if (ops[u].ct == acc0[j] || ops[u].ct == acc1[j]) rc = CKKS_EINVAL;
    if (!rc && nperm && !(scratch = malloc(nperm * 2 * T * sizeof *scratch))) rc = CKKS_ENOMEM;
    if (!rc) {
        for (size_t j = 0; j < count; j++) acc0[j]->nprimes = acc1[j]->nprimes = np;
        const uint64_t **p0 = ptr, **p1 = ptr + batch, **q0 = ptr + 2 * batch, **q1 = ptr + 3 * batch;
        const uint64_t **opp = ptr + 4 * batch; /* per operand: its two tiles */
        for (size_t i = 0; i < np; i++) {
            const ntt_modulus_t *m = &ctx->mod[i];
            for (size_t t0 = 0; t0 < n; t0 += T) {
                for (size_t u = 0; u < nops; u++) {
                    const uint64_t *s0 = POLY(ops[u].ct, 0, i), *s1 = POLY(ops[u].ct, 1, i);
                    if (ops[u].elt == 1) {
                        opp[2 * u] = s0 + t0;
                        opp[2 * u + 1] = s1 + t0;
                        continue;
                    }
                    uint64_t *d0 = scratch + 2 * ops[u].slot * T, *d1 = d0 + T;
                    ntt_vec_permute2(d0, d1, s0, s1, ops[u].perm + t0, T);
                    opp[2 * u] = d0;
                    opp[2 * u + 1] = d1;
                    /* The source tile of the operand after next (one
                     * aligned tile, whichever element), fetched while
                     * these two are shuffled: the accumulators have
                     * pushed it out of the near caches since it was read. */
                    size_t v = u + 2;
                    while (v < nops && ops[v].elt == 1) v++;
                    if (v < nops) {
                        const uint64_t *n0 = POLY(ops[v].ct, 0, i), *n1 = POLY(ops[v].ct, 1, i);
                        const size_t at = ops[v].perm[t0] & ~(uint32_t)(T - 1);
                        for (size_t c = 0; c < T; c += 8) {
                            __builtin_prefetch(n0 + at + c);
                            __builtin_prefetch(n1 + at + c);
                        }
                    }
                }
                for (size_t j = 0; j < count; j++) {
                    uint64_t *r[4] = {POLY(acc0[j], 0, i) + t0, POLY(acc0[j], 1, i) + t0, POLY(acc1[j], 0, i) + t0,
                                      POLY(acc1[j], 1, i) + t0};
                    for (size_t k = 0; k < batch; k++) {
                        const size_t a = xo[j * batch + k], b = yo[j * batch + k];
                        p0[k] = opp[2 * a];
                        p1[k] = opp[2 * a + 1];
                        q0[k] = opp[2 * b];
                        q1[k] = opp[2 * b + 1];
                    }
                    ntt_vec_dot2x2(r, p0, p1, q0, q1, batch, T, m, accumulate[j]);
                }
            }
        }
        for (size_t j = 0; j < count; j++) {
            acc0[j]->size = acc1[j]->size = 2;
            if (!accumulate[j]) acc0[j]->scale = acc1[j]->scale = scale;
        }
    }
    for (size_t u = 0; own && u < nown; u++) free(own[u]);
    free(own);
    free(scratch);
    free(ptr);
    free(xo);
    free(ops);
    return rc;
}

int ckks_multiply_split_many(size_t count, size_t batch, const ckks_ciphertext_t *const *x,
                             const ckks_ciphertext_t *const *y, ckks_ciphertext_t *const *acc0,
                             ckks_ciphertext_t *const *acc1, const int *accumulate)
{
    return ckks_multiply_split_many_galois(count, batch, x, NULL, y, NULL, acc0, acc1, accumulate);
}

int ckks_multiply_split(const ckks_ciphertext_t *x, const ckks_ciphertext_t *y, ckks_ciphertext_t *acc0,
                        ckks_ciphertext_t *acc1, int accumulate)
{
    if (!x || !y || !acc0 || !acc1) return CKKS_EINVAL;
    return ckks_multiply_split_many(1, 1, &x, &y, &acc0, &acc1, &accumulate);
}

/* The inverse of an odd Galois element mod 2N (Newton's iteration mod 2^32). */
static uint32_t galois_inverse(uint32_t e, size_t n)
{
    uint32_t x = e; /* right to 3 bits for odd e */
    for (int i = 0; i < 5; i++) x *= 2u - e * x;
    return x & (uint32_t)(2 * n - 1);
}

/* ckks_merge_split and, with undo, the same followed by sigma_u^-1 (see
 * ckks_merge_split_undo). */
static int merge_split(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, uint32_t elt_u, uint32_t elt_v,
                       int undo, const ckks_galois_keys_t *gk, ckks_ciphertext_t *out)
{
    int rc = check_ct(a, out);
    if (!rc) rc = check_ct(b, out);
    if (rc) return rc;
    if (!gk) return CKKS_EINVAL;
    if (gk->ctx != a->ctx || b->ctx != a->ctx) return CKKS_ECONTEXT;
    if (a->size != 2 || b->size != 2) return CKKS_ESIZE;
    if (a->nprimes != b->nprimes) return CKKS_ELEVEL;
    if (!ckks_scales_close(a->scale, b->scale)) return CKKS_ESCALE;
    const ckks_context_t *ctx = a->ctx;
    const size_t n = ctx->n, np = a->nprimes, w = np * n;
    if (!(elt_u & 1) || elt_u >= 2 * n || !(elt_v & 1) || elt_v >= 2 * n) return CKKS_EINVAL;
    if (elt_u == 1) undo = 0;
    const uint32_t elt_k = undo ? galois_inverse(elt_u, n) : elt_u; /* the key that switches the X side */
    const ckks_kswitch_t *ku = NULL, *kv = NULL;
    if (elt_u != 1 && (rc = find_key(gk, elt_k, np, &ku))) return rc;
    if (elt_v != 1 && (rc = find_key(gk, elt_v, np, &kv))) return rc;
    /* c0 | c1 | c2 | terms under X = sigma_u(s) | terms under X s | (undo) a permuted copy */
    uint64_t *t = ckks_scratch(CKKS_SCRATCH_MUL, 6 * w);
    if (!t) return CKKS_ENOMEM;
    uint64_t *c0 = t, *c1 = t + w, *c2 = t + 2 * w, *X = t + 3 * w, *XS = t + 4 * w, *P = t + 5 * w;
    memcpy(c0, POLY(a, 0, 0), w * sizeof *t);
    memset(c1, 0, w * sizeof *t);
    memset(c2, 0, w * sizeof *t);
    memcpy(X, POLY(a, 1, 0), w * sizeof *t);
    memset(XS, 0, w * sizeof *t);
    const uint64_t *b0 = POLY(b, 0, 0), *b1 = POLY(b, 1, 0);
    /* b decrypts as (b0 + b1 X) Y with Y = sigma_v(s). */
    if (kv) {
        rc = keyswitch_add(ctx, gk->hyb, b0, np, kv, c0, c1); /* b0 Y = p0 + p1 s */
        if (!rc) rc = keyswitch_add(ctx, gk->hyb, b1, np, kv, X, XS); /* b1 X Y = (q0 + q1 s) X */
        if (rc) return rc;
    } else {
        for (size_t i = 0; i < np; i++) {
            ntt_vec_add(c1 + i * n, c1 + i * n, b0 + i * n, n, &ctx->mod[i]);
            ntt_vec_add(XS + i * n, XS + i * n, b1 + i * n, n, &ctx->mod[i]);
        }
    }
    /* Now c0 + c1 s + X sigma_u(s) + XS s sigma_u(s). */
    if (undo) {
        /* sigma_u^-1 of it is sigma^-1(c0) + sigma^-1(c1) Z + sigma^-1(X) s
         * + sigma^-1(XS) Z s with Z = sigma_u^-1(s): the terms under Z are the
         * ones switched (key u^-1), those under s stay. */
        uint32_t *pbuf = (uint32_t *)ckks_scratch(CKKS_SCRATCH_GALOIS, n / 2 + 1); /* after the switches */
        if (!pbuf) return CKKS_ENOMEM;
        const uint32_t *src = ckks_galois_perm_table(ctx, elt_k, pbuf);
        uint64_t *polys[4] = {c0, c1, X, XS};
        for (int k = 0; k < 4; k++) {
            for (size_t i = 0; i < np; i++)
                for (size_t j = 0; j < n; j++) P[i * n + j] = polys[k][i * n + src[j]];
            memcpy(polys[k], P, w * sizeof *t);
        }
        memcpy(P, c1, w * sizeof *t); /* the Z terms: c1 <- X, c2 <- 0, then the switches */
        memcpy(c1, X, w * sizeof *t);
        memcpy(X, P, w * sizeof *t);
        memset(c2, 0, w * sizeof *t);
    }
    if (ku) {
        rc = keyswitch_add(ctx, gk->hyb, X, np, ku, c0, c1);  /* X terms: r0 + r1 s */
        if (!rc) rc = keyswitch_add(ctx, gk->hyb, XS, np, ku, c1, c2); /* (t0 + t1 s) s */
        if (rc) return rc;
    } else {
        for (size_t i = 0; i < np; i++) {
            ntt_vec_add(c1 + i * n, c1 + i * n, X + i * n, n, &ctx->mod[i]);
            ntt_vec_add(c2 + i * n, c2 + i * n, XS + i * n, n, &ctx->mod[i]);
        }
    }
    const double scale = a->scale;
    out->nprimes = np;
    out->size = 3;
    memcpy(out->data, t, 3 * w * sizeof *t);
    out->scale = scale;
    return CKKS_OK;
}

int ckks_merge_split(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, uint32_t elt_u, uint32_t elt_v,
                     const ckks_galois_keys_t *gk, ckks_ciphertext_t *out)
{
    return merge_split(a, b, elt_u, elt_v, 0, gk, out);
}

int ckks_merge_split_undo(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, uint32_t elt_u, uint32_t elt_v,
                          const ckks_galois_keys_t *gk, ckks_ciphertext_t *out)
{
    return merge_split(a, b, elt_u, elt_v, 1, gk, out);
}
