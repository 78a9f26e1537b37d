/* Encryption (public or secret key) and decryption. As SEAL does, a fresh
 * encryption of zero is made one level up (np + 1 primes, the special prime
 * for the top level) and divided by that extra prime, which shrinks the
 * encryption noise by the same factor. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_impl.h"

static int check_pt(const ckks_context_t *ctx, const ckks_plaintext_t *pt, ckks_ciphertext_t *ct)
{
    if (!pt || !ct) return CKKS_EINVAL;
    if (pt->ctx != ctx || ct->ctx != ctx) return CKKS_ECONTEXT;
    if (pt->nprimes == 0 || pt->nprimes >= ctx->k) return CKKS_ELEVEL;
    return CKKS_OK;
}

/* c = (c0, c1) over np+1 primes -> divided by the last -> + m -> ct. */
static int finish(const ckks_context_t *ctx, uint64_t *c, const ckks_plaintext_t *pt,
                  ckks_ciphertext_t *ct)
{
    const size_t n = ctx->n, np = pt->nprimes;
    uint64_t *c0 = c, *c1 = c + (np + 1) * n;
    int rc = ckks_poly_divide_round_last(ctx, c0, np + 1);
    if (rc == CKKS_OK) rc = ckks_poly_divide_round_last(ctx, c1, np + 1);
    if (rc) return rc;
    for (size_t i = 0; i < np; i++)
        ntt_vec_add(ct->data + i * n, c0 + i * n, pt->data + i * n, n, &ctx->mod[i]);
    memcpy(ct->data + np * n, c1, np * n * sizeof *c1);
    ct->has_seed = 0;
    ct->has_seal_seed = 0;
    ct->size = 2;
    ct->nprimes = np;
    ct->scale = pt->scale;
    return CKKS_OK;
}

int ckks_encrypt(const ckks_public_key_t *pk, const ckks_plaintext_t *pt, ckks_ciphertext_t *ct)
{
    if (!pk) return CKKS_EINVAL;
    const ckks_context_t *ctx = pk->ctx;
    int rc = check_pt(ctx, pt, ct);
    if (rc) return rc;
    const size_t n = ctx->n, np = pt->nprimes, w = np + 1;
    uint64_t *c = ckks_scratch(CKKS_SCRATCH_ENCRYPT, 3 * w * n), *u = c ? c + 2 * w * n : NULL;
    int8_t *small = malloc(n);
    ckks_stream_t st;
    rc = (c && small) ? ckks_stream_init_random(&st) : CKKS_ENOMEM;
    if (rc == CKKS_OK) {
        ckks_sample_ternary(&st, n, small);
        ckks_small_to_ntt(ctx, small, w, u);
        for (int p = 0; p < 2; p++) {
            uint64_t *cp = c + p * w * n;
            const uint64_t *pkp = pk->p + p * ctx->k * n;
            ckks_sample_cbd(&st, n, small);
            ckks_small_to_ntt(ctx, small, w, cp);
            for (size_t i = 0; i < w; i++)
                ntt_vec_fma(cp + i * n, pkp + i * n, u + i * n, cp + i * n, n, &ctx->mod[i]);
        }
        rc = finish(ctx, c, pt, ct);
    }
    ckks_stream_wipe(&st);
    if (small) sodium_memzero(small, n);
    if (u) sodium_memzero(u, w * n * sizeof *u);
    free(small);
    return rc;
}

static int encrypt_symmetric(const ckks_secret_key_t *sk, const ckks_plaintext_t *pt, int seal,
                             ckks_ciphertext_t *ct)
{
    /* As SEAL: directly at the plaintext's level, c1 = a uniform polynomial
     * expanded from a fresh public 32-byte seed (so the ciphertext can be
     * stored compactly), c0 = -(a s + e) + m with e from a separate OS-keyed
     * stream. */
    if (!sk) return CKKS_EINVAL;
    const ckks_context_t *ctx = sk->ctx;
    int rc = check_pt(ctx, pt, ct);
    if (rc) return rc;
    const size_t n = ctx->n, np = pt->nprimes;
    int8_t *e = malloc(n);
    if (!e) return CKKS_ENOMEM;
    ckks_stream_t st;
    unsigned char seed[CKKS_SEAL_SEED_BYTES];
    rc = ckks_stream_init_random(&st);
    uint64_t *b = ct->data, *a = ct->data + np * n;
    if (rc == CKKS_OK && seal) { /* SEAL's 64-byte seed and its blake2xb expansion */
        randombytes_buf(seed, CKKS_SEAL_SEED_BYTES);
        rc = ckks_seal_expand_uniform(CKKS_SEAL_PRNG_BLAKE2XB, seed, ctx->primes, np, n, a);
    } else if (rc == CKKS_OK) {
        randombytes_buf(seed, 32);
        ckks_expand_seed(ctx, seed, np, a);
    }
    if (rc == CKKS_OK) {
        ckks_sample_cbd(&st, n, e);
        ckks_small_to_ntt(ctx, e, np, b);
        for (size_t i = 0; i < np; i++) {
            const ntt_modulus_t *m = &ctx->mod[i];
            ntt_vec_fma(b + i * n, a + i * n, sk->s + i * n, b + i * n, n, m);
            ntt_vec_sub(b + i * n, pt->data + i * n, b + i * n, n, m);
        }
        ct->size = 2;
        ct->nprimes = np;
        ct->scale = pt->scale;
        ct->has_seed = !seal;
        ct->has_seal_seed = seal;
        if (seal) memcpy(ct->seal_seed, seed, CKKS_SEAL_SEED_BYTES);
        else memcpy(ct->seed, seed, 32);
    }
    ckks_stream_wipe(&st);
    sodium_memzero(e, n);
    free(e);
    return rc;
}

int ckks_decrypt(const ckks_secret_key_t *sk, const ckks_ciphertext_t *ct, ckks_plaintext_t *pt)
{
    if (!sk || !ct || !pt) return CKKS_EINVAL;
    const ckks_context_t *ctx = sk->ctx;
    if (ct->ctx != ctx || pt->ctx != ctx) return CKKS_ECONTEXT;
    if (ct->size < 2 || ct->size > 3) return CKKS_ESIZE;
    const size_t n = ctx->n, np = ct->nprimes;
    if (np == 0 || np >= ctx->k) return CKKS_ELEVEL;
    uint64_t *s2 = ct->size == 3 ? ntt_alloc(n) : NULL;
    if (ct->size == 3 && !s2) return CKKS_ENOMEM;
    for (size_t i = 0; i < np; i++) {
        const ntt_modulus_t *m = &ctx->mod[i];
        const uint64_t *s = sk->s + i * n;
        uint64_t *o = pt->data + i * n;
        /* m = c0 + c1 s (+ c2 s^2), Horner: ((c2 s + c1) s + c0). */
        if (ct->size == 3) {
            ntt_vec_fma(s2, ct->data + (2 * np + i) * n, s, ct->data + (np + i) * n, n, m);
            ntt_vec_fma(o, s2, s, ct->data + i * n, n, m);
        } else {
            ntt_vec_fma(o, ct->data + (np + i) * n, s, ct->data + i * n, n, m);
        }
    }
    if (s2) {
        sodium_memzero(s2, n * sizeof *s2);
        ntt_free(s2);
    }
    pt->nprimes = np;
    pt->scale = ct->scale;
    return CKKS_OK;
}

int ckks_encrypt_symmetric(const ckks_secret_key_t *sk, const ckks_plaintext_t *pt, ckks_ciphertext_t *ct)
{
    return encrypt_symmetric(sk, pt, 0, ct);
}

int ckks_seal_encrypt_symmetric(const ckks_secret_key_t *sk, const ckks_plaintext_t *pt, ckks_ciphertext_t *ct)
{
    return encrypt_symmetric(sk, pt, 1, ct);
}
