/* Internal to ckks/: context layout, RNS helpers, randomness, key structs. */
#ifndef HESTAT_CKKS_IMPL_H
#define HESTAT_CKKS_IMPL_H

#include <pthread.h>
#include <complex.h>
#include <fftw3.h>
#include <gmp.h>

#include "ckks.h"

/* Per-level CRT constants for decoding a polynomial with `np` primes. */
typedef struct {
    uint64_t *inv_punct;       /* (Q/q_i)^-1 mod q_i */
    uint64_t *inv_punct_shoup; /* Shoup companions */
    ntt_u128 *punct_lo;        /* (Q/q_i) mod 2^128 */
    double *inv_q;             /* 1/q_i */
    ntt_u128 q_lo;             /* Q mod 2^128 */
    mpz_t q, half_q;           /* Q and floor(Q/2) for the exact fallback */
    mpz_t *punct;              /* Q/q_i */
    int bits;                  /* bit length of Q */
} ckks_crt_t;

struct ckks_context {
    size_t n, slots, k; /* k primes in all; k-1 data primes */
    int log_n;
    int threads; /* OpenMP threads across limbs */
    uint64_t primes[CKKS_MAX_PRIMES];
    ntt_modulus_t mod[CKKS_MAX_PRIMES];
    ntt_tables_t *ntt[CKKS_MAX_PRIMES];
    /* inv_q[j][i] = q_j^-1 mod q_i (i < j): rescale and mod-down. */
    uint64_t inv_q[CKKS_MAX_PRIMES][CKKS_MAX_PRIMES];
    ckks_crt_t crt[CKKS_MAX_PRIMES + 1]; /* index: number of primes (1 .. k-1) */
    uint32_t *bitrev;                    /* bitrev(i, log_n) */
    /* Encoder: FFT plans of size N and the slot positions. */
    fftw_plan fft_fwd, fft_bwd;
    double complex *zeta;   /* zeta^j, zeta = exp(i pi / N) */
    uint32_t *slot_pos;     /* slot i -> FFT index (3^i mod 2N - 1)/2 */
    uint32_t *slot_conj;    /* slot i -> FFT index of the conjugate root */
    /* ckks_galois_perm tables by elt >> 1, made on first use (at most
     * CKKS_PERM_CACHE of them) under perm_lock, then read-only. */
    uint32_t **perms;
    size_t nperms;
    pthread_mutex_t perm_lock;
};

struct ckks_secret_key {
    const ckks_context_t *ctx;
    uint64_t *s; /* k * N, NTT form, all primes */
};

struct ckks_public_key {
    const ckks_context_t *ctx;
    uint64_t *p; /* 2 * k * N: (b, a), NTT form */
    uint8_t *seal_seed; /* NULL, or the SEAL seed a was expanded from (blake2xb) */
};

/* A key-switching key: digit j (one per data prime) = (b_j, a_j) over all k primes.
 * A key limited to L data primes (limit L, ckks_galois_keys_limit) holds
 * digits 0 .. L-1 only, each over primes 0 .. L-1 and the special prime
 * (rows L .. k-2 are zero): it switches ciphertexts of at most L primes. */
typedef struct {
    uint64_t *d; /* (k-1) * 2 * k * N, or limit * 2 * k * N: d[((j*2 + c)*k + i)*N + t] */
    uint8_t *seal_seeds; /* NULL, or (k-1) x 64 bytes: SEAL seeds of the a_j (blake2xb) */
    size_t limit;        /* 0: every digit; else the digits held (1 .. k-2) */
} ckks_kswitch_t;
/* The most primes a ciphertext may have for this key to switch it. */
static inline size_t ckks_kswitch_primes(const ckks_context_t *ctx, const ckks_kswitch_t *key)
{
    return key->limit ? key->limit : ctx->k - 1;
}

/* Hybrid key switching (hybrid.c). Extended basis: the L data primes, then
 * the ks special primes; a hybrid key digit j = (b_j, a_j) over all L + ks:
 * d[((j*2 + c)*(L + ks) + e)*N + t]. */
struct ckks_hybrid {
    const ckks_context_t *ctx;
    size_t L, ks, alpha, dnum;
    ntt_modulus_t mod[2 * CKKS_MAX_PRIMES];       /* data primes, then special */
    const ntt_tables_t *ntt[2 * CKKS_MAX_PRIMES]; /* the same order */
    ntt_tables_t *special_ntt[CKKS_MAX_PRIMES];   /* owned */
    uint64_t p_mod_q[CKKS_MAX_PRIMES];            /* P mod q_i */
    uint64_t p_inv_q[CKKS_MAX_PRIMES];            /* P^-1 mod q_i */
    uint64_t half_q[CKKS_MAX_PRIMES];             /* floor(P/2) mod q_i */
    uint64_t phat_inv[CKKS_MAX_PRIMES];           /* (P/p_m)^-1 mod p_m */
    uint64_t phat_q[CKKS_MAX_PRIMES][CKKS_MAX_PRIMES]; /* [m][i]: (P/p_m) mod q_i */
};

struct ckks_relin_key {
    const ckks_context_t *ctx;
    ckks_kswitch_t key;
    const ckks_hybrid_t *hyb; /* NULL: SEAL's key switching */
};

struct ckks_galois_keys {
    const ckks_context_t *ctx;
    const ckks_hybrid_t *hyb; /* NULL: SEAL's key switching */
    size_t count;
    uint32_t *elts;
    ckks_kswitch_t *keys;
};

/* ---- rng.c: all randomness comes from a ChaCha20 stream keyed by 32 bytes
 * from the OS (libsodium's randombytes). ---- */
typedef struct {
    unsigned char key[32];
    unsigned char nonce[12];
    uint32_t counter;
    unsigned char buf[1024];
    size_t pos;
} ckks_stream_t;

int ckks_stream_init_random(ckks_stream_t *st);
void ckks_stream_init_seed(ckks_stream_t *st, const unsigned char seed[32], uint32_t domain);
void ckks_stream_wipe(ckks_stream_t *st);
/* Uniform mod each prime of the first np, written straight into NTT form. */
void ckks_sample_uniform(ckks_stream_t *st, const ckks_context_t *ctx, size_t np, uint64_t *out);
/* Small polynomials as signed coefficients: ternary {-1,0,1} or centred
 * binomial (sigma ~ 3.24). */
/* The uniform polynomial (np primes, NTT form) that a 32-byte seed stands
 * for in compact ciphertexts: ChaCha20 keyed by the seed, one nonce per
 * prime, rejection sampling. */
void ckks_expand_seed(const ckks_context_t *ctx, const unsigned char seed[32], size_t np,
                      uint64_t *out);
void ckks_sample_ternary(ckks_stream_t *st, size_t n, int8_t *out);
void ckks_sample_cbd(ckks_stream_t *st, size_t n, int8_t *out);
/* Rounded Gaussian integers of standard deviation 2^bits (bits 0..50):
 * multiparty smudging noise. */
void ckks_sample_gauss(ckks_stream_t *st, size_t n, int bits, int64_t *out);

/* ---- poly.c: RNS helpers over np primes (prime-major, N words per prime) ---- */
/* Signed small coefficients -> RNS -> NTT form. */
void ckks_small_to_ntt(const ckks_context_t *ctx, const int8_t *v, size_t np, uint64_t *out);
/* The same a limb at a time: v (or -v when negate is set) as N signed 64-bit
 * words w, then limb i of the result from w. */
void ckks_small_widen(const int8_t *v, size_t n, int negate, uint64_t *w);
void ckks_small_limb_to_ntt(const ckks_context_t *ctx, const uint64_t *w, size_t i, uint64_t *out);
void ckks_poly_ntt(const ckks_context_t *ctx, uint64_t *p, size_t np);
void ckks_poly_intt(const ckks_context_t *ctx, uint64_t *p, size_t np);
/* Signed 64-bit coefficients -> RNS -> NTT form. */
void ckks_wide_to_ntt(const ckks_context_t *ctx, const int64_t *v, size_t np, uint64_t *out);
/* p has np primes (NTT form); divides by the last prime with rounding and
 * leaves np-1 primes (SEAL's divide_and_round_q_last_ntt). */
int ckks_poly_divide_round_last(const ckks_context_t *ctx, uint64_t *p, size_t np);
/* The same from p (np limbs, unchanged) into out (np - 1 limbs); out may be p
 * or may not overlap it at all. */
int ckks_poly_divide_round_last_to(const ckks_context_t *ctx, const uint64_t *p, size_t np,
                                   uint64_t *out);
/* out = galois_elt applied to p (NTT form), np primes; out != p. */
void ckks_poly_galois(const ckks_context_t *ctx, const uint64_t *p, size_t np, uint32_t elt,
                      uint64_t *out);
/* Key switching of `target` (np primes, NTT form) with key ksk; adds the
 * result to c0 and c1 (np primes each). */
int ckks_keyswitch_add(const ckks_context_t *ctx, const uint64_t *target, size_t np,
                       const ckks_kswitch_t *ksk, uint64_t *c0, uint64_t *c1);
/* Hoisted key switching (rotations of one ciphertext by many steps): the
 * digits of target are decomposed and brought to every output prime once
 * (ckks_hoist_words words, (np+1) x np limbs, NTT form; coef: np limbs of
 * scratch), then each Galois element permutes them (src from
 * ckks_galois_perm, NULL for none) on the way into the key multiply. An
 * automorphism commutes with the decomposition up to the lift of each
 * digit ((-c mod q_i) instead of (q_j - c) mod q_i), so results decrypt
 * within the ordinary key-switching noise but differ from
 * ckks_keyswitch_add(sigma(target)) in the low bits. */
size_t ckks_hoist_words(const ckks_context_t *ctx, size_t np);
void ckks_keyswitch_decompose(const ckks_context_t *ctx, const uint64_t *target, size_t np,
                              uint64_t *digits, uint64_t *coef);
int ckks_keyswitch_digits_add(const ckks_context_t *ctx, const uint64_t *digits, size_t np,
                              const uint32_t *src, const ckks_kswitch_t *ksk, uint64_t *c0,
                              uint64_t *c1);
void ckks_galois_perm(const ckks_context_t *ctx, uint32_t elt, uint32_t *src);
/* out[i n + k] = p[i n + src[k]] for np limbs of n words (out != p). */
void ckks_permute_limbs(uint64_t *out, const uint64_t *p, size_t np, const uint32_t *src, size_t n);
/* The same table for odd elt < 2N: the one kept in the context (made on
 * first use, at most CKKS_PERM_CACHE elements), else buf (n entries) filled
 * by ckks_galois_perm; NULL when neither (the cache full or out of memory,
 * and buf NULL). */
#define CKKS_PERM_CACHE 64
const uint32_t *ckks_galois_perm_table(const ckks_context_t *ctx, uint32_t elt, uint32_t *buf);
/* Hybrid key switching of target (np data primes, NTT form) with a key made
 * by ckks_hybrid_kswitch_generate; adds the result to c0 and c1. */
int ckks_hybrid_keyswitch_add(const ckks_hybrid_t *h, const uint64_t *target, size_t np,
                              const ckks_kswitch_t *ksk, uint64_t *c0, uint64_t *c1);
int ckks_hybrid_kswitch_generate(const ckks_hybrid_t *h, const ckks_secret_key_t *sk,
                                 const uint64_t *s_prime, ckks_kswitch_t *out);
/* Uniform mod each of np moduli (n words each), as ckks_sample_uniform. */
void ckks_sample_uniform_mod(ckks_stream_t *st, const ntt_modulus_t *mod, size_t np, size_t n,
                             uint64_t *out);
/* Key-switching key for s' (NTT form over the k-1 data primes) under s. */
int ckks_kswitch_generate(const ckks_secret_key_t *sk, const uint64_t *s_prime, int seeded, ckks_kswitch_t *out);
void ckks_kswitch_free(const ckks_context_t *ctx, ckks_kswitch_t *k);

/* Per-thread scratch buffers, grown on demand and kept for the thread's
 * life: hot paths (key switching, rescaling, multiplication) reuse them
 * instead of allocating and page-faulting megabytes on every call. Each slot
 * serves one function; slots never nest within themselves. Contents are
 * uninitialised. NULL when memory runs out. */
enum {
    CKKS_SCRATCH_KSWITCH,
    CKKS_SCRATCH_GALOIS,
    CKKS_SCRATCH_MUL,
    CKKS_SCRATCH_DIVIDE,
    CKKS_SCRATCH_ENCRYPT,
    CKKS_SCRATCH_HOIST, /* hoisted digits, c0, c1 and the permutation (rotate_hoisted) */
    CKKS_SCRATCH_HYBRID, /* hybrid key switching */
    CKKS_SCRATCH_COUNT
};
uint64_t *ckks_scratch(int slot, size_t words);

/* An empty key set with room for count keys (gk->count 0; freed by
 * ckks_galois_keys_free as keys are added), or NULL. */
ckks_galois_keys_t *ckks_galois_keys_alloc(const ckks_context_t *ctx, size_t count);

/* multiparty.c: a zero share of a shape (ckks_mp_share_polys). */
int ckks_mp_share_new_shape(const ckks_context_t *ctx, int kind, size_t nprimes, uint32_t elt,
                            ckks_mp_share_t **out);

/* One digit's term of a key switch's inner product: (acc_b, acc_a) = x times
 * the key's (kb, ka), or plus it when not the first digit. */
static inline void ckks_ks_accumulate(uint64_t *acc_b, uint64_t *acc_a, const uint64_t *x, const uint64_t *kb,
                                      const uint64_t *ka, int first, size_t n, const ntt_modulus_t *m)
{
    if (first) {
        ntt_vec_mul(acc_b, x, kb, n, m);
        ntt_vec_mul(acc_a, x, ka, n, m);
    } else {
        ntt_vec_fma(acc_b, x, kb, acc_b, n, m);
        ntt_vec_fma(acc_a, x, ka, acc_a, n, m);
    }
}

/* Digits j0 .. j0 + cnt - 1 of a key switch's inner product at once:
 * (acc_b, acc_a) = sum_j x[j - j0] times the key's (b_j, a_j) at prime ki,
 * plus their values unless j0 == 0 (ntt_vec_dot1x2: summed, then reduced). */
static inline void ckks_ks_dot(uint64_t *acc_b, uint64_t *acc_a, const uint64_t *const *x, const ckks_kswitch_t *ksk,
                               size_t j0, size_t cnt, size_t k, size_t ki, size_t n, const ntt_modulus_t *m)
{
    const uint64_t *kb[CKKS_MAX_PRIMES], *ka[CKKS_MAX_PRIMES];
    for (size_t t = 0; t < cnt; t++) {
        kb[t] = ksk->d + (((j0 + t) * 2 + 0) * k + ki) * n;
        ka[t] = ksk->d + (((j0 + t) * 2 + 1) * k + ki) * n;
    }
    uint64_t *r[2] = {acc_b, acc_a};
    ntt_vec_dot1x2(r, x, kb, ka, cnt, n, m, j0 > 0);
}

/* Scales equal up to a few ulps (SEAL's are_close). */
int ckks_scales_close(double a, double b);

#endif
