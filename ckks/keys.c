/* Key generation: ternary secret, public key, relinearization and Galois keys
 * (SEAL's key-switching keys: one digit per data prime, special prime last;
 * or hybrid ones, whose digits hybrid.c makes). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_impl.h"

static void wipe_free(void *p, size_t bytes)
{
    if (!p) return;
    sodium_memzero(p, bytes);
    ntt_free(p);
}

int ckks_secret_key_new(const ckks_context_t *ctx, ckks_secret_key_t **out)
{
    if (!ctx || !out) return CKKS_EINVAL;
    *out = NULL;
    ckks_secret_key_t *sk = calloc(1, sizeof *sk);
    int8_t *s = malloc(ctx->n);
    if (!sk || !s) {
        free(sk);
        free(s);
        return CKKS_ENOMEM;
    }
    sk->ctx = ctx;
    sk->s = ntt_alloc(ctx->k * ctx->n);
    ckks_stream_t st;
    int rc = sk->s ? ckks_stream_init_random(&st) : CKKS_ENOMEM;
    if (rc == CKKS_OK) {
        ckks_sample_ternary(&st, ctx->n, s);
        ckks_small_to_ntt(ctx, s, ctx->k, sk->s);
        *out = sk;
    } else {
        ntt_free(sk->s);
        free(sk);
    }
    ckks_stream_wipe(&st);
    sodium_memzero(s, ctx->n);
    free(s);
    return rc;
}

void ckks_secret_key_free(ckks_secret_key_t *sk)
{
    if (!sk) return;
    wipe_free(sk->s, sk->ctx->k * sk->ctx->n * sizeof *sk->s);
    free(sk);
}

const uint64_t *ckks_secret_key_data(const ckks_secret_key_t *sk)
{
    return sk ? sk->s : NULL;
}

const ckks_context_t *ckks_secret_key_context(const ckks_secret_key_t *sk)
{
    return sk ? sk->ctx : NULL;
}

int ckks_secret_key_matches(const ckks_secret_key_t *sk, const ckks_public_key_t *pk)
{
    if (!sk || !pk) return CKKS_EINVAL;
    const ckks_context_t *ctx = sk->ctx;
    if (pk->ctx != ctx) return CKKS_ECONTEXT;
    const size_t n = ctx->n, k = ctx->k;
    const ntt_modulus_t *m = &ctx->mod[0];
    uint64_t *e = ntt_alloc(n);
    if (!e) return CKKS_ENOMEM;
    /* prime 0 of b is p[0..n), of a is p[k*n .. k*n+n) */
    ntt_vec_fma(e, pk->p + k * n, sk->s, pk->p, n, m);
    ntt_inverse(ctx->ntt[0], e);
    /* The error is centred binomial (|e| <= 21); 2^20 leaves room for any
     * error distribution while a wrong key gives values spread over [0, q). */
    const uint64_t q = ctx->primes[0], bound = (uint64_t)1 << 20;
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= e[i] <= bound || e[i] >= q - bound;
    sodium_memzero(e, n * sizeof *e); /* e = -(the error): derived from the secret */
    ntt_free(e);
    return ok ? CKKS_OK : CKKS_EKEY;
}

/* -s over the first np primes (NTT form), for encrypt_zero_sk; wiped and
 * freed with wipe_free. NULL when memory runs out. */
static uint64_t *negated_secret(const ckks_secret_key_t *sk, size_t np)
{
    const size_t n = sk->ctx->n;
    uint64_t *neg_s = ntt_alloc_uninit(np * n);
    if (neg_s)
        for (size_t i = 0; i < np; i++) ntt_vec_neg(neg_s + i * n, sk->s + i * n, n, &sk->ctx->mod[i]);
    return neg_s;
}

/* (b, a) = (-(a s + e), a) = (a (-s) + (-e), a) over the first np primes, NTT
 * form: one pass per limb over b once NTT(-e) is in it (no negation pass);
 * neg_s from negated_secret, e (N bytes) and w (N words) scratch. a comes
 * from st, or, with seal_seed, from SEAL's expansion of a fresh public
 * 64-byte seed written there (what SEAL's seeded keys store instead of a). */
static int encrypt_zero_sk(const ckks_secret_key_t *sk, const uint64_t *neg_s, ckks_stream_t *st,
                           size_t np, uint64_t *b, uint64_t *a, int8_t *e, uint64_t *w,
                           uint8_t *seal_seed)
{
    const ckks_context_t *ctx = sk->ctx;
    const size_t n = ctx->n;
    if (seal_seed) {
        randombytes_buf(seal_seed, CKKS_SEAL_SEED_BYTES);
        int rc = ckks_seal_expand_uniform(CKKS_SEAL_PRNG_BLAKE2XB, seal_seed, ctx->primes, np, n, a);
        if (rc) return rc;
    } else {
        ckks_sample_uniform(st, ctx, np, a);
    }
    ckks_sample_cbd(st, n, e);
    ckks_small_widen(e, n, 1, w);
    const int nt = ctx->threads;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (size_t i = 0; i < np; i++) {
        ckks_small_limb_to_ntt(ctx, w, i, b + i * n);
        ntt_vec_fma(b + i * n, a + i * n, neg_s + i * n, b + i * n, n, &ctx->mod[i]);
    }
    return CKKS_OK;
}

static int public_key_new(const ckks_secret_key_t *sk, int seeded, ckks_public_key_t **out)
{
    if (!sk || !out) return CKKS_EINVAL;
    *out = NULL;
    const ckks_context_t *ctx = sk->ctx;
    const size_t n = ctx->n, k = ctx->k;
    ckks_public_key_t *pk = calloc(1, sizeof *pk);
    int8_t *e = malloc(n);
    uint64_t *w = ntt_alloc_uninit(n);
    uint64_t *neg_s = negated_secret(sk, k);
    if (!pk || !e || !w || !neg_s) {
        free(pk);
        free(e);
        ntt_free(w);
        wipe_free(neg_s, k * n * sizeof *neg_s);
        return CKKS_ENOMEM;
    }
    pk->ctx = ctx;
    pk->p = ntt_alloc_uninit(2 * k * n);
    if (seeded) pk->seal_seed = malloc(CKKS_SEAL_SEED_BYTES);
    ckks_stream_t st;
    int rc = pk->p && (!seeded || pk->seal_seed) ? ckks_stream_init_random(&st) : CKKS_ENOMEM;
    if (rc == CKKS_OK) rc = encrypt_zero_sk(sk, neg_s, &st, k, pk->p, pk->p + k * n, e, w, pk->seal_seed);
    if (rc == CKKS_OK) {
        *out = pk;
    } else {
        ckks_public_key_free(pk);
    }
    ckks_stream_wipe(&st);
    sodium_memzero(e, n);
    free(e);
    wipe_free(w, n * sizeof *w);
    wipe_free(neg_s, k * n * sizeof *neg_s);
    return rc;
}

int ckks_public_key_new(const ckks_secret_key_t *sk, ckks_public_key_t **out)
{
    return public_key_new(sk, 0, out);
}

int ckks_public_key_new_seeded(const ckks_secret_key_t *sk, ckks_public_key_t **out)
{
    return public_key_new(sk, 1, out);
}

void ckks_public_key_free(ckks_public_key_t *pk)
{
    if (!pk) return;
    free(pk->seal_seed);
    ntt_free(pk->p);
    free(pk);
}

int ckks_kswitch_generate(const ckks_secret_key_t *sk, const uint64_t *s_prime, int seeded, ckks_kswitch_t *out)
{
    const ckks_context_t *ctx = sk->ctx;
    const size_t n = ctx->n, k = ctx->k, digits = k - 1;
    out->limit = 0;
    out->d = ntt_alloc_uninit(digits * 2 * k * n); /* every word written below */
    out->seal_seeds = seeded ? malloc(digits * CKKS_SEAL_SEED_BYTES) : NULL;
    int8_t *e = malloc(n);
    uint64_t *w = ntt_alloc_uninit(n);
    uint64_t *neg_s = negated_secret(sk, k);
    int rc = out->d && e && w && neg_s && (!seeded || out->seal_seeds) ? CKKS_OK : CKKS_ENOMEM;
    ckks_stream_t st;
    if (rc == CKKS_OK) rc = ckks_stream_init_random(&st);
    for (size_t j = 0; j < digits && rc == CKKS_OK; j++) {
        uint64_t *b = out->d + (j * 2 + 0) * k * n, *a = out->d + (j * 2 + 1) * k * n;
        rc = encrypt_zero_sk(sk, neg_s, &st, k, b, a, e, w,
                             seeded ? out->seal_seeds + j * CKKS_SEAL_SEED_BYTES : NULL);
        if (rc) break;
        /* b_j += P * s' at prime j only (P the special prime). */
        const ntt_modulus_t *m = &ctx->mod[j];
        uint64_t factor = ntt_reduce64(ctx->primes[k - 1], m);
        ntt_vec_fma_scalar(b + j * n, s_prime + j * n, factor, b + j * n, n, m);
    }
    ckks_stream_wipe(&st);
    if (e) sodium_memzero(e, n);
    free(e);
    wipe_free(w, n * sizeof *w);
    wipe_free(neg_s, k * n * sizeof *neg_s);
    if (rc) ckks_kswitch_free(ctx, out);
    return rc;
}

void ckks_kswitch_free(const ckks_context_t *ctx, ckks_kswitch_t *k)
{
    (void)ctx;
    if (!k) return;
    ntt_free(k->d);
    free(k->seal_seeds);
    k->d = NULL;
    k->seal_seeds = NULL;
}

/* The key for s' under s: hybrid when hyb is set, SEAL's otherwise. */
static int kswitch_generate(const ckks_secret_key_t *sk, const ckks_hybrid_t *hyb, const uint64_t *s_prime,
                            int seeded, ckks_kswitch_t *out)
{
    if (hyb) return ckks_hybrid_kswitch_generate(hyb, sk, s_prime, out);
    return ckks_kswitch_generate(sk, s_prime, seeded, out);
}

static int relin_key_new(const ckks_secret_key_t *sk, const ckks_hybrid_t *hyb, int seeded, ckks_relin_key_t **out)
{
    if (!sk || !out) return CKKS_EINVAL;
    *out = NULL;
    if (hyb && hyb->ctx != sk->ctx) return CKKS_ECONTEXT;
    const ckks_context_t *ctx = sk->ctx;
    const size_t n = ctx->n, dp = ctx->k - 1;
    ckks_relin_key_t *rk = calloc(1, sizeof *rk);
    uint64_t *s2 = ntt_alloc(dp * n);
    if (!rk || !s2) {
        free(rk);
        ntt_free(s2);
        return CKKS_ENOMEM;
    }
    rk->ctx = ctx;
    rk->hyb = hyb;
    for (size_t i = 0; i < dp; i++) ntt_vec_mul(s2 + i * n, sk->s + i * n, sk->s + i * n, n, &ctx->mod[i]);
    int rc = kswitch_generate(sk, hyb, s2, seeded, &rk->key);
    wipe_free(s2, dp * n * sizeof *s2);
    if (rc) {
        free(rk);
        return rc;
    }
    *out = rk;
    return CKKS_OK;
}

int ckks_relin_key_new(const ckks_secret_key_t *sk, ckks_relin_key_t **out)
{
    return relin_key_new(sk, NULL, 0, out);
}

int ckks_relin_key_new_seeded(const ckks_secret_key_t *sk, ckks_relin_key_t **out)
{
    return relin_key_new(sk, NULL, 1, out);
}

int ckks_relin_key_new_hybrid(const ckks_secret_key_t *sk, const ckks_hybrid_t *h, ckks_relin_key_t **out)
{
    if (!h) return CKKS_EINVAL;
    return relin_key_new(sk, h, 0, out);
}

size_t ckks_relin_key_bytes(const ckks_relin_key_t *rk)
{
    if (!rk) return 0;
    const ckks_context_t *ctx = rk->ctx;
    if (rk->hyb) return rk->hyb->dnum * 2 * (rk->hyb->L + rk->hyb->ks) * ctx->n * sizeof(uint64_t);
    return (ctx->k - 1) * 2 * ctx->k * ctx->n * sizeof(uint64_t);
}

void ckks_relin_key_free(ckks_relin_key_t *rk)
{
    if (!rk) return;
    ckks_kswitch_free(rk->ctx, &rk->key);
    free(rk);
}

uint32_t ckks_galois_elt_rotate(const ckks_context_t *ctx, int step)
{
    /* SEAL's GaloisTool: left by step -> 3^step mod 2N, right -> 3^(N/2 - |step|). */
    uint64_t m = 2 * ctx->n, slots = ctx->slots;
    int64_t s = step % (int64_t)slots;
    if (s < 0) s += (int64_t)slots;
    uint64_t elt = 1;
    for (int64_t i = 0; i < s; i++) elt = (elt * 3) & (m - 1);
    return (uint32_t)elt;
}

uint32_t ckks_galois_elt_conjugate(const ckks_context_t *ctx)
{
    return (uint32_t)(2 * ctx->n - 1);
}

static int add_galois_elt(uint32_t *elts, size_t *count, uint32_t e)
{
    for (size_t i = 0; i < *count; i++)
        if (elts[i] == e) return 0;
    elts[(*count)++] = e;
    return 1;
}

static int galois_keys_new(const ckks_secret_key_t *sk, const ckks_hybrid_t *hyb, const int *steps, size_t count,
                           int conjugate, int seeded, ckks_galois_keys_t **out)
{
    if (!sk || !out || (count && !steps)) return CKKS_EINVAL;
    *out = NULL;
    if (hyb && hyb->ctx != sk->ctx) return CKKS_ECONTEXT;
    const ckks_context_t *ctx = sk->ctx;
    const size_t n = ctx->n, dp = ctx->k - 1;
    int dflt = !steps && count == 0;
    size_t cap = dflt ? 2 * (size_t)ctx->log_n + 1 : count + 1;
    uint32_t *elts = malloc(cap * sizeof *elts);
    if (!elts) return CKKS_ENOMEM;
    size_t ne = 0;
    if (dflt) {
        for (size_t s = 1; s < ctx->slots; s <<= 1) {
            add_galois_elt(elts, &ne, ckks_galois_elt_rotate(ctx, (int)s));
            add_galois_elt(elts, &ne, ckks_galois_elt_rotate(ctx, -(int)s));
        }
        conjugate = 1;
    } else {
        for (size_t i = 0; i < count; i++) {
            if (steps[i] <= -(int)ctx->slots || steps[i] >= (int)ctx->slots || steps[i] == 0) {
                free(elts);
                return CKKS_EINVAL;
            }
            add_galois_elt(elts, &ne, ckks_galois_elt_rotate(ctx, steps[i]));
        }
    }
    if (conjugate) add_galois_elt(elts, &ne, ckks_galois_elt_conjugate(ctx));

    ckks_galois_keys_t *gk = calloc(1, sizeof *gk);
    ckks_kswitch_t *keys = calloc(ne ? ne : 1, sizeof *keys);
    uint64_t *sg = ntt_alloc(dp * n);
    if (!gk || !keys || !sg) {
        free(gk);
        free(keys);
        free(elts);
        ntt_free(sg);
        return CKKS_ENOMEM;
    }
    gk->ctx = ctx;
    gk->hyb = hyb;
    gk->elts = elts;
    gk->keys = keys;
    int rc = CKKS_OK;
    for (size_t i = 0; i < ne && rc == CKKS_OK; i++) {
        /* Key from sigma_g(s) back to s. */
        ckks_poly_galois(ctx, sk->s, dp, elts[i], sg);
        rc = kswitch_generate(sk, hyb, sg, seeded, &keys[i]);
        if (rc == CKKS_OK) gk->count = i + 1;
    }
    wipe_free(sg, dp * n * sizeof *sg);
    if (rc) {
        ckks_galois_keys_free(gk);
        return rc;
    }
    *out = gk;
    return CKKS_OK;
}

int ckks_galois_keys_new(const ckks_secret_key_t *sk, const int *steps, size_t count, int conjugate,
                         ckks_galois_keys_t **out)
{
    return galois_keys_new(sk, NULL, steps, count, conjugate, 0, out);
}

int ckks_galois_keys_new_seeded(const ckks_secret_key_t *sk, const int *steps, size_t count, int conjugate,
                                ckks_galois_keys_t **out)
{
    return galois_keys_new(sk, NULL, steps, count, conjugate, 1, out);
}

int ckks_galois_keys_new_hybrid(const ckks_secret_key_t *sk, const ckks_hybrid_t *h, const int *steps,
                                size_t count, int conjugate, ckks_galois_keys_t **out)
{
    if (!h) return CKKS_EINVAL;
    return galois_keys_new(sk, h, steps, count, conjugate, 0, out);
}

ckks_galois_keys_t *ckks_galois_keys_alloc(const ckks_context_t *ctx, size_t count)
{
    ckks_galois_keys_t *gk = calloc(1, sizeof *gk);
    uint32_t *elts = malloc((count ? count : 1) * sizeof *elts);
    ckks_kswitch_t *keys = calloc(count ? count : 1, sizeof *keys);
    if (!gk || !elts || !keys) {
        free(gk);
        free(elts);
        free(keys);
        return NULL;
    }
    gk->ctx = ctx;
    gk->elts = elts;
    gk->keys = keys;
    return gk;
}

void ckks_galois_keys_free(ckks_galois_keys_t *gk)
{
    if (!gk) return;
    for (size_t i = 0; i < gk->count; i++) ckks_kswitch_free(gk->ctx, &gk->keys[i]);
    free(gk->keys);
    free(gk->elts);
    free(gk);
}

size_t ckks_galois_keys_steps(const ckks_galois_keys_t *gk, int *steps, size_t max)
{
    if (!gk || (max && !steps)) return 0;
    const uint64_t m = 2 * gk->ctx->n, slots = gk->ctx->slots;
    size_t n = 0;
    uint64_t elt = 1;
    /* Left rotation by s is 3^s mod 2N (ckks_galois_elt_rotate); s = 1 .. S-1. */
    for (uint64_t s = 1; s < slots && n < max; s++) {
        elt = (elt * 3) & (m - 1);
        if (ckks_galois_keys_has(gk, (uint32_t)elt)) steps[n++] = (int)s;
    }
    return n;
}

int ckks_galois_keys_has(const ckks_galois_keys_t *gk, uint32_t galois_elt)
{
    if (!gk) return 0;
    for (size_t i = 0; i < gk->count; i++)
        if (gk->elts[i] == galois_elt) return 1;
    return 0;
}

size_t ckks_galois_keys_primes(const ckks_galois_keys_t *gk, uint32_t galois_elt)
{
    if (!gk) return 0;
    for (size_t i = 0; i < gk->count; i++)
        if (gk->elts[i] == galois_elt) return gk->hyb ? gk->hyb->L : ckks_kswitch_primes(gk->ctx, &gk->keys[i]);
    return 0;
}

int ckks_galois_keys_limit(ckks_galois_keys_t *gk, uint32_t galois_elt, size_t nprimes)
{
    if (!gk) return CKKS_EINVAL;
    if (gk->hyb) return CKKS_EUNSUPPORTED;
    const ckks_context_t *ctx = gk->ctx;
    const size_t k = ctx->k, n = ctx->n;
    if (nprimes < 1 || nprimes > k - 1) return CKKS_EINVAL;
    ckks_kswitch_t *key = NULL;
    for (size_t i = 0; i < gk->count && !key; i++)
        if (gk->elts[i] == galois_elt) key = &gk->keys[i];
    if (!key) return CKKS_EKEY;
    if (nprimes >= ckks_kswitch_primes(ctx, key)) return CKKS_OK;
    uint64_t *d = ntt_alloc(nprimes * 2 * k * n); /* zeroed: rows nprimes .. k-2 stay 0 */
    if (!d) return CKKS_ENOMEM;
    for (size_t j = 0; j < nprimes; j++)
        for (size_t c = 0; c < 2; c++) {
            const uint64_t *src = key->d + (j * 2 + c) * k * n;
            uint64_t *dst = d + (j * 2 + c) * k * n;
            memcpy(dst, src, nprimes * n * sizeof *dst);
            memcpy(dst + (k - 1) * n, src + (k - 1) * n, n * sizeof *dst);
        }
    ntt_free(key->d);
    key->d = d;
    key->limit = nprimes; /* the seeds of digits >= nprimes are unused */
    return CKKS_OK;
}
