/*
 * hestat ckks/: the RNS-CKKS scheme on top of ntt/.
 *
 * Follows Microsoft SEAL 4.x: the same primes, NTT convention, slot order
 * (slot i <-> the root zeta^(3^i)), key switching with one special prime and
 * one decomposition digit per data prime, and rescaling by the last prime, so
 * deterministic operations (encode up to rare +-1 rounding, multiply,
 * relinearize, rescale, rotate, conjugate) can match SEAL bit for bit.
 * Hybrid (dnum-digit) key switching with special primes of its own is an
 * option beside it (ckks_hybrid_*, hybrid.c).
 *
 * Levels: a context has k primes q_0 .. q_{k-1}; the last is the special
 * prime used only in keys. A ciphertext or plaintext holds `nprimes` of the
 * data primes (1 .. k-1); "level" = nprimes - 1, so fresh ciphertexts are at
 * level k-2 and rescaling drops one level.
 *
 * All functions return CKKS_OK (0) or a negative CKKS_E* code (ckks_strerror).
 * Objects are created and freed in pairs; *_free accepts NULL. Secret
 * material is wiped before it is freed. A context is read-only once built and
 * may be shared between threads; objects are not locked.
 */
#ifndef HESTAT_CKKS_H
#define HESTAT_CKKS_H

#include <stddef.h>
#include <stdint.h>

#include "ntt/ntt.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    CKKS_OK = 0,
    CKKS_EINVAL = -1,      /* NULL pointer or argument out of range */
    CKKS_ENOMEM = -2,      /* allocation failed */
    CKKS_EPARAMS = -3,     /* parameters malformed (N, primes, count) */
    CKKS_EINSECURE = -4,   /* modulus too large for 128-bit security at this N */
    CKKS_ELEVEL = -5,      /* operands at different levels, or no level left */
    CKKS_ESCALE = -6,      /* operands at different scales, or scale out of range */
    CKKS_EKEY = -7,        /* missing key (Galois element) or key of wrong kind */
    CKKS_ECONTEXT = -8,    /* object belongs to another context */
    CKKS_EOVERFLOW = -9,   /* value * scale does not fit the modulus */
    CKKS_ESIZE = -10,      /* ciphertext of the wrong size (e.g. 3 where 2 needed) */
    CKKS_ERANDOM = -11,    /* the OS random source failed */
    CKKS_ENTT = -12        /* NTT layer refused the parameters (see ntt_strerror) */
};

const char *ckks_strerror(int status);

#define CKKS_MAX_PRIMES 64
#define CKKS_LOG_N_MIN 12
#define CKKS_LOG_N_MAX 16

/* ---- parameters and context ------------------------------------------------ */
typedef struct ckks_params {
    size_t n;                          /* ring degree N, 2^12 .. 2^16 */
    size_t count;                      /* number of primes, >= 2 (last = special) */
    uint64_t primes[CKKS_MAX_PRIMES];  /* q_0 .. q_{count-1} */
    int allow_insecure;                /* 1: skip the 128-bit security check */
} ckks_params_t;

/* Fills params with SEAL's CoeffModulus::Create(n, bit_sizes). */
int ckks_params_from_bits(ckks_params_t *p, size_t n, const int *bit_sizes, size_t count);

/* Largest total log2(Q) (all primes, special included) for 128-bit classical
 * security with a ternary secret; 0 if N is outside the table. */
int ckks_max_modulus_bits(size_t n);

typedef struct ckks_context ckks_context_t;

int ckks_context_new(const ckks_params_t *p, ckks_context_t **out);
void ckks_context_free(ckks_context_t *ctx);

/* Threads used across RNS limbs (OpenMP). Default: HESTAT_THREADS if set,
 * else OMP_NUM_THREADS if set, else 1 (opt-in: limb loops are fine-grained).
 * Results are identical for any count. Set it before sharing the context. */
int ckks_context_threads(const ckks_context_t *ctx);
int ckks_context_set_threads(ckks_context_t *ctx, int threads);

size_t ckks_context_n(const ckks_context_t *ctx);
size_t ckks_context_slots(const ckks_context_t *ctx);
/* Number of data primes (a fresh ciphertext's nprimes). */
size_t ckks_context_data_primes(const ckks_context_t *ctx);
uint64_t ckks_context_prime(const ckks_context_t *ctx, size_t i);
const ntt_tables_t *ckks_context_ntt(const ckks_context_t *ctx, size_t i);

/* ---- plaintexts and ciphertexts (NTT form, prime-major layout) --------------- */
typedef struct ckks_plaintext {
    const ckks_context_t *ctx;
    size_t nprimes;
    double scale;
    uint64_t *data; /* nprimes * N words: data[i*N + k] */
} ckks_plaintext_t;

typedef struct ckks_ciphertext {
    const ckks_context_t *ctx;
    size_t size;    /* polynomials: 2, or 3 after multiply */
    size_t nprimes;
    double scale;
    uint64_t *data; /* size * nprimes * N words: data[(p*nprimes + i)*N + k] */
    /* Secret-key encryptions derive c1 from a public seed; writers can store
     * the seed instead of c1 while c1 still equals its expansion. */
    unsigned char seed[32];
    int has_seed;
    /* The same for SEAL's seeded ciphertexts (ckks_seal_encrypt_symmetric):
     * ckks_seal_write_ciphertext stores this 64-byte seed instead of c1 while
     * c1 equals its expansion. */
    unsigned char seal_seed[64];
    int has_seal_seed;
} ckks_ciphertext_t;

int ckks_plaintext_new(const ckks_context_t *ctx, size_t nprimes, ckks_plaintext_t **out);
void ckks_plaintext_free(ckks_plaintext_t *pt);
int ckks_ciphertext_new(const ckks_context_t *ctx, size_t size, size_t nprimes,
                        ckks_ciphertext_t **out);
void ckks_ciphertext_free(ckks_ciphertext_t *ct);
/* dst becomes a copy of src (reallocated as needed). */
int ckks_ciphertext_copy(ckks_ciphertext_t *dst, const ckks_ciphertext_t *src);

/* ---- encoder -------------------------------------------------------------------- */
/* Encodes count (<= N/2) values into slots 0..count-1 (the rest 0) at the
 * given scale, with nprimes data primes (0 = all data primes). */
int ckks_encode_real(const ckks_context_t *ctx, const double *values, size_t count,
                     double scale, size_t nprimes, ckks_plaintext_t *pt);
int ckks_encode_complex(const ckks_context_t *ctx, const double *re, const double *im,
                        size_t count, double scale, size_t nprimes, ckks_plaintext_t *pt);
/* The constant polynomial round(value * scale): value in every slot. */
int ckks_encode_constant(const ckks_context_t *ctx, double value, double scale,
                         size_t nprimes, ckks_plaintext_t *pt);
/* Decodes the first count slots (count <= N/2); im may be NULL. */
int ckks_decode(const ckks_context_t *ctx, const ckks_plaintext_t *pt, double *re, double *im,
                size_t count);

/* ---- keys ---------------------------------------------------------------------- */
typedef struct ckks_secret_key ckks_secret_key_t;
typedef struct ckks_public_key ckks_public_key_t;
typedef struct ckks_relin_key ckks_relin_key_t;
typedef struct ckks_galois_keys ckks_galois_keys_t;

int ckks_secret_key_new(const ckks_context_t *ctx, ckks_secret_key_t **out);
void ckks_secret_key_free(ckks_secret_key_t *sk);
int ckks_public_key_new(const ckks_secret_key_t *sk, ckks_public_key_t **out);
void ckks_public_key_free(ckks_public_key_t *pk);
int ckks_relin_key_new(const ckks_secret_key_t *sk, ckks_relin_key_t **out);
void ckks_relin_key_free(ckks_relin_key_t *rk);
/* Galois keys for rotations by the given steps (left for positive steps,
 * |step| < N/2) plus conjugation when `conjugate` is set. steps == NULL and
 * count == 0 gives the default set: +-2^i for every i, and conjugation. */
int ckks_galois_keys_new(const ckks_secret_key_t *sk, const int *steps, size_t count,
                         int conjugate, ckks_galois_keys_t **out);
/* The same keys with each a expanded from a fresh public 64-byte seed by
 * SEAL's generator (blake2xb), as SEAL's KeyGenerator::create_*() returns
 * them: ckks_seal_write_* then writes them seeded (half the size), and SEAL
 * reads them. */
int ckks_public_key_new_seeded(const ckks_secret_key_t *sk, ckks_public_key_t **out);
int ckks_relin_key_new_seeded(const ckks_secret_key_t *sk, ckks_relin_key_t **out);
int ckks_galois_keys_new_seeded(const ckks_secret_key_t *sk, const int *steps, size_t count, int conjugate,
                                ckks_galois_keys_t **out);
void ckks_galois_keys_free(ckks_galois_keys_t *gk);
/* 1 if the keys hold the key for this Galois element (at some level). */
int ckks_galois_keys_has(const ckks_galois_keys_t *gk, uint32_t galois_elt);
/* The most primes a ciphertext may have for the key of this element to
 * switch it: every data prime for a whole key, fewer for a limited one; 0
 * when there is no key. */
size_t ckks_galois_keys_primes(const ckks_galois_keys_t *gk, uint32_t galois_elt);
/* Limits the key of this element to ciphertexts of at most nprimes primes
 * (1 .. data primes): it keeps the digits of primes 0 .. nprimes-1, each over
 * those primes and the special one, and drops the rest, so a key that is only
 * used below the top level is written in (nprimes (nprimes + 1)) / (k (k - 1))
 * of the bytes (limited keys are written with CKKS_FLAG_LEVELS). A key
 * switch with it is bit-identical to one with the whole key; at more primes
 * it fails with CKKS_ELEVEL. No-op when the key already serves no more.
 * CKKS_EKEY: no such key; CKKS_EUNSUPPORTED: hybrid keys. */
int ckks_galois_keys_limit(ckks_galois_keys_t *gk, uint32_t galois_elt, size_t nprimes);
/* Galois element of a left rotation by step (SEAL: 3^step mod 2N; negative
 * steps rotate right), and of conjugation (2N - 1). */
uint32_t ckks_galois_elt_rotate(const ckks_context_t *ctx, int step);
/* The left rotation steps (1 .. slots-1) gk has keys for, ascending, at most
 * max of them; returns the count written. */
size_t ckks_galois_keys_steps(const ckks_galois_keys_t *gk, int *steps, size_t max);
uint32_t ckks_galois_elt_conjugate(const ckks_context_t *ctx);

/* Raw access for serialization and tests: the secret key's NTT-form
 * polynomial over all primes (count * N words). */
const uint64_t *ckks_secret_key_data(const ckks_secret_key_t *sk);
/* The context a key belongs to. */
const ckks_context_t *ckks_secret_key_context(const ckks_secret_key_t *sk);
/* Whether sk is the secret key behind pk: b + a*s must be the public key's
 * small error (|e| well below any uniform value) at every coefficient of the
 * first prime. CKKS_OK when it is, CKKS_EKEY when the keys do not belong
 * together (another keygen with the same parameters), CKKS_ECONTEXT for
 * another context. */
int ckks_secret_key_matches(const ckks_secret_key_t *sk, const ckks_public_key_t *pk);

/* ---- hybrid key switching (hybrid.c) ----------------------------------------------
 * An alternative to SEAL's key switching for relinearization and rotation,
 * after Han and Ki ("Better bootstrapping for approximate homomorphic
 * encryption", CT-RSA 2020), as Lattigo and OpenFHE do it. The context's L
 * data primes are split into dnum digits of alpha = ceil(L / dnum)
 * consecutive primes (the last digit may be shorter); keys live modulo Q * P,
 * where P is the product of `count` special primes of their own, and digit j
 * of a key encrypts P * (Q/Q_j) * [(Q/Q_j)^-1]_{Q_j} * s' under s. A key
 * switch lifts each digit of its input (centred) to Q_l * P, multiplies by
 * the key and divides by P with rounding; both base conversions are fast
 * (RNS) ones made exact by a floating-point overflow count.
 *
 * Fewer digits mean smaller keys and fewer NTTs; the price is a larger
 * special modulus. The switching error grows with Q_j / P (Q_j the largest
 * digit modulus), so P should be at least about Q_j: count special primes
 * of alpha data primes' worth of bits (fewer, wider primes are fine); a P
 * below Q_j costs about log2(Q_j / P) bits. Centred digits and exact
 * rounding keep the error free of the constant offset SEAL's [0, q_j)
 * digits carry, so with P >= Q_j rotations keep more precision than the
 * ordinary key switching (tests/test_hybrid.c measures both).
 *
 * The context is unchanged: the same ciphertexts, plaintexts and SEAL-style
 * keys work with it; only keys made by ckks_*_new_hybrid switch this way, and
 * ckks_relinearize, ckks_rotate, ckks_conjugate, ckks_apply_galois and the
 * sums use them transparently (ckks_rotate_hoisted rotates them one at a
 * time). Hybrid keys are hestat-only and in memory only: the writers of both
 * file formats refuse them (CKKS_EUNSUPPORTED). The 128-bit security check
 * counts the data primes and the hybrid special primes (not the context's own
 * special prime, which hybrid keys do not use): at N=16384 with data primes
 * 60 + 7 x 40 bits (340) that leaves 98 bits for P. A ckks_hybrid_t must
 * outlive the keys made with it. */
typedef struct ckks_hybrid ckks_hybrid_t;

typedef struct ckks_hybrid_params {
    size_t dnum;                       /* digits wanted, 1 .. data primes */
    size_t count;                      /* special primes, 1 .. CKKS_MAX_PRIMES */
    uint64_t primes[CKKS_MAX_PRIMES];  /* special primes: NTT-friendly, not data primes */
    int allow_insecure;                /* 1: skip the 128-bit security check */
} ckks_hybrid_params_t;

/* dnum and `count` special primes of the given bit sizes (20 .. 62): the
 * largest primes below 2^bits that are 1 mod 2N and not among the context's
 * primes (allow_insecure 0: ckks_hybrid_new checks the total). */
int ckks_hybrid_params_from_bits(const ckks_context_t *ctx, size_t dnum, const int *bit_sizes,
                                 size_t count, ckks_hybrid_params_t *p);
int ckks_hybrid_new(const ckks_context_t *ctx, const ckks_hybrid_params_t *p, ckks_hybrid_t **out);
void ckks_hybrid_free(ckks_hybrid_t *h);
/* Digits actually used (ceil(L / alpha), which can be below the dnum asked
 * for) and primes per digit. */
size_t ckks_hybrid_dnum(const ckks_hybrid_t *h);
size_t ckks_hybrid_alpha(const ckks_hybrid_t *h);
/* Keys for relinearization and rotations (the same steps, conjugate flag and
 * default set as ckks_galois_keys_new), dnum digits over Q * P each. */
int ckks_relin_key_new_hybrid(const ckks_secret_key_t *sk, const ckks_hybrid_t *h, ckks_relin_key_t **out);
int ckks_galois_keys_new_hybrid(const ckks_secret_key_t *sk, const ckks_hybrid_t *h, const int *steps,
                                size_t count, int conjugate, ckks_galois_keys_t **out);
/* Bytes of key material in a relinearization key, either kind (8 bytes a
 * word; a Galois key of the same kind is as large). */
size_t ckks_relin_key_bytes(const ckks_relin_key_t *rk);

/* ---- encryption ------------------------------------------------------------------ */
int ckks_encrypt(const ckks_public_key_t *pk, const ckks_plaintext_t *pt, ckks_ciphertext_t *ct);
int ckks_encrypt_symmetric(const ckks_secret_key_t *sk, const ckks_plaintext_t *pt,
                           ckks_ciphertext_t *ct);
int ckks_decrypt(const ckks_secret_key_t *sk, const ckks_ciphertext_t *ct, ckks_plaintext_t *pt);

/* ---- evaluation: results are written to `out`, which may alias an input ----------- */
int ckks_add(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, ckks_ciphertext_t *out);
int ckks_sub(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, ckks_ciphertext_t *out);
int ckks_negate(const ckks_ciphertext_t *a, ckks_ciphertext_t *out);
int ckks_add_plain(const ckks_ciphertext_t *a, const ckks_plaintext_t *p, ckks_ciphertext_t *out);
int ckks_sub_plain(const ckks_ciphertext_t *a, const ckks_plaintext_t *p, ckks_ciphertext_t *out);
int ckks_multiply_plain(const ckks_ciphertext_t *a, const ckks_plaintext_t *p,
                        ckks_ciphertext_t *out);
/* Multiplies by a real constant encoded at `scale` (the result's scale is
 * a->scale * scale). */
int ckks_multiply_const(const ckks_ciphertext_t *a, double value, double scale,
                        ckks_ciphertext_t *out);
/* Size-2 inputs; the output has size 3 until relinearized. */
int ckks_multiply(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, ckks_ciphertext_t *out);
int ckks_square(const ckks_ciphertext_t *a, ckks_ciphertext_t *out);
int ckks_relinearize(const ckks_ciphertext_t *a, const ckks_relin_key_t *rk,
                     ckks_ciphertext_t *out);
/* Divides by the last prime (rounding) and drops it: scale /= q_last. */
int ckks_rescale(const ckks_ciphertext_t *a, ckks_ciphertext_t *out);
/* Drops primes (no scaling) down to nprimes. */
int ckks_mod_switch(const ckks_ciphertext_t *a, size_t nprimes, ckks_ciphertext_t *out);
int ckks_plaintext_mod_switch(const ckks_plaintext_t *a, size_t nprimes, ckks_plaintext_t *out);
/* Rotates the slots left by step (right if negative). Uses the exact key if
 * present, otherwise composes available power-of-two rotations. */
int ckks_rotate(const ckks_ciphertext_t *a, int step, const ckks_galois_keys_t *gk,
                ckks_ciphertext_t *out);
int ckks_conjugate(const ckks_ciphertext_t *a, const ckks_galois_keys_t *gk,
                   ckks_ciphertext_t *out);
/* Hoisted rotations: outs[i] = a rotated left by steps[i] (right if
 * negative). c1 is decomposed and brought to the key basis once; each step
 * with its own Galois key then costs a permutation, the key multiply and the
 * mod-down. Steps without their own key fall back to ckks_rotate. Results
 * decrypt like ckks_rotate's (same noise bound) but are not bit-identical to
 * them: the automorphism is applied after lifting each digit (a single keyed
 * step takes ckks_rotate's own path and is). outs must be distinct; one may
 * be a. */
int ckks_rotate_hoisted(const ckks_ciphertext_t *a, const int *steps, size_t count,
                        const ckks_galois_keys_t *gk, ckks_ciphertext_t **outs);
/* The same for arbitrary Galois elements (e.g. conjugation); every element
 * needs its key (1 = identity needs none). */
int ckks_apply_galois_hoisted(const ckks_ciphertext_t *a, const uint32_t *elts, size_t count,
                              const ckks_galois_keys_t *gk, ckks_ciphertext_t **outs);
/* Applies one Galois automorphism with its key (the primitive under rotate). */
int ckks_apply_galois(const ckks_ciphertext_t *a, uint32_t galois_elt,
                      const ckks_galois_keys_t *gk, ckks_ciphertext_t *out);
/* Deferred key switching, for sums of many products X_k * sigma(Y_k) with
 * one automorphism sigma (the stats layer's pairwise sums):
 * - ckks_apply_galois_raw permutes every polynomial by the automorphism and
 *   switches no key: out decrypts under sigma(s), not s (out != a). Only the
 *   functions below accept such a ciphertext.
 * - ckks_multiply_split forms the product of x (under some key X) and y
 *   (under another, Y) as two halves, acc0 = x * y0 and acc1 = x * y1, so
 *   that acc0 + acc1 Y is the product; with accumulate they are added into
 *   acc0 and acc1 (sizes 2, same level and scale), which must be distinct
 *   from x and y. No key switch, no noise beyond the products'.
 * - ckks_merge_split turns such a pair into an ordinary degree-2 ciphertext
 *   under (1, s, s^2) (out, size 3; may be a), for X = sigma_u(s) and
 *   Y = sigma_v(s), u and v Galois elements with keys in gk (1: s itself,
 *   no key needed): up to four key switches, whatever the number of terms
 *   that were added. Relinearize the result as any product. */
int ckks_apply_galois_raw(const ckks_ciphertext_t *a, uint32_t galois_elt, ckks_ciphertext_t *out);
int ckks_multiply_split(const ckks_ciphertext_t *x, const ckks_ciphertext_t *y, ckks_ciphertext_t *acc0,
                        ckks_ciphertext_t *acc1, int accumulate);
/* Many split products at once: for j < count, acc0[j] and acc1[j] receive
 * the sum over k < batch of x[j*batch+k] * y[j*batch+k] (added to them when
 * accumulate[j], else replacing them), tile by tile so that a batch of terms
 * costs one pass over the accumulators. Accumulators are distinct from each
 * other and from every operand; all at one level and scale. */
int ckks_multiply_split_many(size_t count, size_t batch, const ckks_ciphertext_t *const *x,
                             const ckks_ciphertext_t *const *y, ckks_ciphertext_t *const *acc0,
                             ckks_ciphertext_t *const *acc1, const int *accumulate);
/* The same with an automorphism on each operand as it is read: the terms
 * are sigma_ex[t](x[t]) * sigma_ey[t](y[t]) (ex or ey NULL, or an element
 * 1: none), each as ckks_apply_galois_raw would give it, but without the
 * permuted ciphertexts ever being written whole (a tile of each at a time,
 * once per distinct ciphertext and element). */
int ckks_multiply_split_many_galois(size_t count, size_t batch, const ckks_ciphertext_t *const *x,
                                    const uint32_t *ex, const ckks_ciphertext_t *const *y, const uint32_t *ey,
                                    ckks_ciphertext_t *const *acc0, ckks_ciphertext_t *const *acc1,
                                    const int *accumulate);
int ckks_merge_split(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, uint32_t elt_u, uint32_t elt_v,
                     const ckks_galois_keys_t *gk, ckks_ciphertext_t *out);
/* ckks_merge_split followed by the automorphism sigma_u^-1 (the rotation
 * that undoes u): the key switches on the X = sigma_u(s) side are made with
 * the key of u^-1 after permuting, so the undoing costs no key switch (the
 * same four or two as the merge alone, where a rotation after it is one
 * more). Needs the key of u^-1 rather than u's. Decrypts like the merge
 * rotated by u^-1, within a key switch's noise (the bytes differ). */
int ckks_merge_split_undo(const ckks_ciphertext_t *a, const ckks_ciphertext_t *b, uint32_t elt_u, uint32_t elt_v,
                          const ckks_galois_keys_t *gk, ckks_ciphertext_t *out);
/* Every slot becomes the sum of all N/2 slots (log2(N/2) rotations). */
int ckks_sum_slots(const ckks_ciphertext_t *a, const ckks_galois_keys_t *gk,
                   ckks_ciphertext_t *out);
/* Slot i becomes the sum of slots i .. i+width-1 (width a power of two,
 * log2(width) rotations). */
int ckks_inner_sum(const ckks_ciphertext_t *a, size_t width, const ckks_galois_keys_t *gk,
                   ckks_ciphertext_t *out);

/* ---- Microsoft SEAL 4.x files (CKKS objects; seal_io.c) ----------------------
 * Layout: a 16-byte header (magic 0xA15E, header size 16, version 4.x,
 * compression mode, total size) and the object; parms_id = BLAKE2b-256 of
 * (scheme 2, N, primes of the level, plain modulus 0). Readers validate every
 * field before use and refuse what SEAL refuses (wrong parms_id, coefficient
 * >= its prime, ciphertext at the key level, transparent ciphertext); writers
 * produce exactly SEAL 4.1's bytes. Compression: none, zlib or zstd (reading
 * and writing). SEAL's seeded (compact) objects, which SEAL's default saves
 * of public keys, relinearization and Galois keys and symmetric encryptions
 * are, are read: the second polynomial of each (public-key-shaped)
 * ciphertext is regenerated from its 64-byte seed exactly as SEAL does
 * (ckks_seal_expand_uniform). Buffers returned by writers are freed with
 * free(). */
enum { CKKS_EFORMAT = -13, CKKS_EUNSUPPORTED = -14 };
enum { CKKS_SEAL_COMPR_NONE = 0, CKKS_SEAL_COMPR_ZLIB = 1, CKKS_SEAL_COMPR_ZSTD = 2 };
typedef enum {
    CKKS_SEAL_UNKNOWN = 0,
    CKKS_SEAL_CIPHERTEXT,
    CKKS_SEAL_PLAINTEXT,
    CKKS_SEAL_SECRET_KEY,
    CKKS_SEAL_PUBLIC_KEY,
    CKKS_SEAL_RELIN_KEYS,
    CKKS_SEAL_GALOIS_KEYS
} ckks_seal_type_t;

typedef struct {
    ckks_seal_type_t type;
    int version_major, version_minor, compression;
    uint64_t total_size;    /* from the header */
    uint64_t parms_id[4];
    size_t nprimes;         /* primes at the object's level (k for the key level) */
    size_t size;            /* polynomials (ciphertexts, public keys) */
    double scale;           /* ciphertexts and plaintexts */
    size_t keys;            /* key-switching keys (relin: 1, Galois: populated rows) */
} ckks_seal_info_t;

/* SEAL's UniformRandomGeneratorInfo: prng_type and a 64-byte seed. */
enum { CKKS_SEAL_PRNG_BLAKE2XB = 1, CKKS_SEAL_PRNG_SHAKE256 = 2, CKKS_SEAL_SEED_BYTES = 64 };
/* SEAL 4's sample_poly_uniform from a seeded generator of that type: np*n
 * words (prime major, each below its prime) into out (seal_prng.c). */
int ckks_seal_expand_uniform(int type, const uint8_t seed[CKKS_SEAL_SEED_BYTES], const uint64_t *primes,
                             size_t np, size_t n, uint64_t *out);

/* parms_id of the level with nprimes primes (nprimes = k: the key level). */
int ckks_seal_parms_id(const ckks_context_t *ctx, size_t nprimes, uint64_t id[4]);
/* What a SEAL file holds (validates the whole object). */
int ckks_seal_identify(const ckks_context_t *ctx, const void *buf, size_t len,
                       ckks_seal_info_t *info);
int ckks_seal_read_ciphertext(const ckks_context_t *ctx, const void *buf, size_t len,
                              ckks_ciphertext_t **out);
int ckks_seal_read_plaintext(const ckks_context_t *ctx, const void *buf, size_t len,
                             ckks_plaintext_t **out);
int ckks_seal_read_secret_key(const ckks_context_t *ctx, const void *buf, size_t len,
                              ckks_secret_key_t **out);
int ckks_seal_read_public_key(const ckks_context_t *ctx, const void *buf, size_t len,
                              ckks_public_key_t **out);
int ckks_seal_read_relin_key(const ckks_context_t *ctx, const void *buf, size_t len,
                             ckks_relin_key_t **out);
int ckks_seal_read_galois_keys(const ckks_context_t *ctx, const void *buf, size_t len,
                               ckks_galois_keys_t **out);
/* Symmetric encryption as SEAL's Encryptor::encrypt_symmetric: c1 expanded
 * from a fresh public 64-byte seed by SEAL's generator, so the ciphertext is
 * written seeded (half the size) and SEAL reads it. */
int ckks_seal_encrypt_symmetric(const ckks_secret_key_t *sk, const ckks_plaintext_t *pt, ckks_ciphertext_t *ct);
int ckks_seal_write_ciphertext(const ckks_ciphertext_t *ct, int compr, void **buf, size_t *len);
int ckks_seal_write_plaintext(const ckks_plaintext_t *pt, int compr, void **buf, size_t *len);
int ckks_seal_write_secret_key(const ckks_secret_key_t *sk, int compr, void **buf, size_t *len);
int ckks_seal_write_public_key(const ckks_public_key_t *pk, int compr, void **buf, size_t *len);
int ckks_seal_write_relin_key(const ckks_relin_key_t *rk, int compr, void **buf, size_t *len);
int ckks_seal_write_galois_keys(const ckks_galois_keys_t *gk, int compr, void **buf, size_t *len);

/* ---- hestat's own format (serialize.c; docs/format.md) ------------------------------
 * 48-byte header: magic "HESTAT\r\n" | u16 version 1 | u16 object type | u32 flags |
 * u64 XXH3-64 of the parameters' canonical encoding | u64 payload length |
 * u64 XXH3-64 of the payload | u64 0 (reserved); then the payload. Readers
 * check every field against the context before allocating or copying. */
#define CKKS_FORMAT_VERSION 1
typedef enum {
    CKKS_OBJ_PARAMS = 1,
    CKKS_OBJ_SECRET_KEY = 2,
    CKKS_OBJ_PUBLIC_KEY = 3,
    CKKS_OBJ_RELIN_KEY = 4,
    CKKS_OBJ_GALOIS_KEYS = 5,
    CKKS_OBJ_PLAINTEXT = 6,
    CKKS_OBJ_CIPHERTEXT = 7,
    CKKS_OBJ_MP_SHARE = 8 /* multiparty share (ckks_mp_share_write) */
} ckks_obj_type_t;
#define CKKS_HEADER_BYTES 48
#define CKKS_FLAG_COMPACT 1u /* ciphertext stored as c0 + the seed of c1 */
#define CKKS_FLAG_PACKED 2u  /* ciphertext words stored at their primes' bit widths */
#define CKKS_FLAG_LEVELS 4u  /* Galois keys, some limited (ckks_galois_keys_limit): per-key digit counts */

/* XXH3-64 of the canonical encoding of the parameters (N, primes). */
uint64_t ckks_params_hash(const ckks_context_t *ctx);
/* Type of a hestat file from its header (validated magic/version/length);
 * lets a server refuse a secret key before parsing anything else. */
int ckks_object_type(const void *buf, size_t len, ckks_obj_type_t *type);

int ckks_write_params(const ckks_context_t *ctx, void **buf, size_t *len);
int ckks_read_params(const void *buf, size_t len, ckks_params_t *p);
/* flags: CKKS_FLAG_COMPACT: store c0 and the 32-byte seed of c1 when c1
 * still is the seed's expansion (fresh secret-key encryptions), the full
 * form otherwise; CKKS_FLAG_PACKED: each prime's words at its bit width
 * (140 bits a coefficient instead of 192 for primes of 60, 40, 40 bits).
 * The reader takes every form. */
int ckks_write_ciphertext(const ckks_ciphertext_t *ct, int flags, void **buf, size_t *len);
int ckks_read_ciphertext(const ckks_context_t *ctx, const void *buf, size_t len,
                         ckks_ciphertext_t **out);
int ckks_write_plaintext(const ckks_plaintext_t *pt, void **buf, size_t *len);
int ckks_read_plaintext(const ckks_context_t *ctx, const void *buf, size_t len,
                        ckks_plaintext_t **out);
int ckks_write_secret_key(const ckks_secret_key_t *sk, void **buf, size_t *len);
int ckks_read_secret_key(const ckks_context_t *ctx, const void *buf, size_t len,
                         ckks_secret_key_t **out);
int ckks_write_public_key(const ckks_public_key_t *pk, void **buf, size_t *len);
int ckks_read_public_key(const ckks_context_t *ctx, const void *buf, size_t len,
                         ckks_public_key_t **out);
int ckks_write_relin_key(const ckks_relin_key_t *rk, void **buf, size_t *len);
int ckks_read_relin_key(const ckks_context_t *ctx, const void *buf, size_t len,
                        ckks_relin_key_t **out);
int ckks_write_galois_keys(const ckks_galois_keys_t *gk, void **buf, size_t *len);
int ckks_read_galois_keys(const ckks_context_t *ctx, const void *buf, size_t len,
                          ckks_galois_keys_t **out);

/* Frames for the upper layers' own objects (types >= 16: studies, tables,
 * results, jobs): the same header and checks, a caller-defined payload. */
#define CKKS_OBJ_USER_MIN 16
int ckks_frame_write(const ckks_context_t *ctx, uint16_t type, const void *payload, size_t plen,
                     void **buf, size_t *len);
/* Validates magic, version, type, parameter hash, length and checksum; the
 * payload points into buf. */
int ckks_frame_open(const ckks_context_t *ctx, const void *buf, size_t len, uint16_t type,
                    const uint8_t **payload, size_t *plen);

/* ---- files (fileio.c) -------------------------------------------------------------
 * Whole-file read with a size limit (CKKS_EFORMAT when larger), and atomic
 * write: a temporary file in the same directory, fsync, rename over the
 * target; `mode` applies from creation (0600 for secret keys), so a failure
 * never leaves a partial or world-readable file behind. */
enum { CKKS_EIO = -15 };
int ckks_file_read(const char *path, size_t max_bytes, void **buf, size_t *len);
int ckks_file_write(const char *path, const void *buf, size_t len, int mode);
/* fsync of the directory holding path, so that a rename into it survives a
 * crash (ckks_file_write does it; callers that rename files themselves call it). */
int ckks_fsync_dir(const char *path);
/* mkdir -p: every missing directory of path, with mode (CKKS_EIO and errno
 * when one cannot be made or a component is not a directory). */
int ckks_mkdir_p(const char *path, int mode);


/* ---- multiparty keys (multiparty.c) ------------------------------------------------
 * N-out-of-N multiparty CKKS after Mouchet, Troncoso-Pastoriza, Bossuat and
 * Hubaux, "Multiparty Homomorphic Encryption from Ring-Learning-with-Errors",
 * PoPETs 2021(4). K parties each hold an ordinary ternary secret key s_i; the
 * collective secret s = s_1 + ... + s_K never exists anywhere. Every party
 * turns its s_i and a common reference string (uniform polynomials expanded
 * from a public 32-byte seed) into public shares; summing the K shares
 * (ckks_mp_aggregate, done by anyone, e.g. the server) gives:
 *   CKG  one round:  the collective public key (-(a s + e), a);
 *   RKG  two rounds: the relinearization key for s^2 under s (round 1 with
 *        an ephemeral ternary u_i per party, round 2 from the round-1 sum);
 *   GKG  one round per Galois element: the key for sigma_g(s) under s;
 *   PCKS public-key switching of a result ciphertext from s to an analyst's
 *        ordinary public key, each share carrying Gaussian smudging noise
 *        (standard deviation 2^smudge_bits) that floods the result's
 *        secret-dependent noise (the analysis is docs/multiparty.md).
 * Keys are in the single-key format (SEAL's gadget: one digit per data
 * prime, special prime last), so evaluation, serialization and the stats
 * layer use them unchanged; CKG and GKG keys keep SEAL seeds for their a
 * (derived from the study seed), so they are written compact. */
#define CKKS_MP_SEED_BYTES 32
typedef enum {
    CKKS_MP_CKG = 1,  /* 1 poly over all k primes */
    CKKS_MP_RKG1 = 2, /* 2 (k-1) polys over k primes: (h0_j, h1_j) per digit */
    CKKS_MP_RKG2 = 3, /* k-1 polys over k primes */
    CKKS_MP_GKG = 4,  /* L polys over L + 1 primes (0 .. L-1 and the special one), for one Galois
                         element: a key serving L data primes (L = k-1: the whole key) */
    CKKS_MP_PCKS = 5  /* 2 polys over the ciphertext's primes */
} ckks_mp_kind_t;

typedef struct ckks_mp_share {
    const ckks_context_t *ctx;
    ckks_mp_kind_t kind;
    uint32_t elt;   /* GKG: the Galois element; 0 otherwise */
    size_t npolys;  /* polynomials */
    size_t nprimes; /* primes per polynomial */
    uint64_t *data; /* npolys * nprimes * N words, NTT form: data[(p*nprimes + i)*N + t] */
} ckks_mp_share_t;

void ckks_mp_share_free(ckks_mp_share_t *sh);
/* A zero share of the same kind and shape (to aggregate into). */
int ckks_mp_share_zero_like(const ckks_mp_share_t *like, ckks_mp_share_t **out);
/* acc += share (mod each prime). Kind, element and shape must match
 * (CKKS_EINVAL otherwise); sums are order-independent, so byte-identical for
 * any order of arrival. */
int ckks_mp_aggregate(ckks_mp_share_t *acc, const ckks_mp_share_t *share);

/* Party side. si: the party's secret share; ui: its ephemeral RKG secret
 * (an ordinary ternary key from ckks_secret_key_new, kept until round 2,
 * then wiped). */
int ckks_mp_ckg_share(const ckks_secret_key_t *si, const uint8_t seed[CKKS_MP_SEED_BYTES], ckks_mp_share_t **out);
int ckks_mp_rkg_round1(const ckks_secret_key_t *si, const ckks_secret_key_t *ui,
                       const uint8_t seed[CKKS_MP_SEED_BYTES], ckks_mp_share_t **out);
int ckks_mp_rkg_round2(const ckks_secret_key_t *si, const ckks_secret_key_t *ui, const ckks_mp_share_t *round1_sum,
                       ckks_mp_share_t **out);
int ckks_mp_gkg_share(const ckks_secret_key_t *si, const uint8_t seed[CKKS_MP_SEED_BYTES], uint32_t galois_elt,
                      ckks_mp_share_t **out);
/* The share of a key limited to ciphertexts of at most nprimes data primes
 * (1 .. k-1; as ckks_galois_keys_limit): digits 0 .. nprimes-1 over primes
 * 0 .. nprimes-1 and the special prime; the same rows as the whole share's,
 * with fresh noise. k-1: ckks_mp_gkg_share. */
int ckks_mp_gkg_share_limited(const ckks_secret_key_t *si, const uint8_t seed[CKKS_MP_SEED_BYTES],
                              uint32_t galois_elt, size_t nprimes, ckks_mp_share_t **out);
/* The prime of row `row` of a share of this kind and nprimes (the last row
 * of a Galois share is the special prime's). */
size_t ckks_mp_share_prime(const ckks_context_t *ctx, int kind, size_t nprimes, size_t row);
/* Polynomials of a share of this kind, rows (nprimes) and Galois element:
 * 0 when it is not a shape this context makes. */
size_t ckks_mp_share_polys(const ckks_context_t *ctx, int kind, size_t nprimes, uint32_t elt);
/* Share of the switch of ct (size 2) from s to the target public key.
 * smudge_bits in [0, 50]: each coefficient of the share's first polynomial
 * gets rounded Gaussian noise of standard deviation 2^smudge_bits. */
int ckks_mp_pcks_share(const ckks_secret_key_t *si, const ckks_public_key_t *target, const ckks_ciphertext_t *ct,
                       int smudge_bits, ckks_mp_share_t **out);

/* Aggregator side: keys from the sums of all K shares. */
int ckks_mp_public_key(const ckks_context_t *ctx, const uint8_t seed[CKKS_MP_SEED_BYTES],
                       const ckks_mp_share_t *ckg_sum, ckks_public_key_t **out);
int ckks_mp_relin_key(const ckks_mp_share_t *round1_sum, const ckks_mp_share_t *round2_sum, ckks_relin_key_t **out);
/* gkg_sums[i]: the sum for one element each (distinct elements). */
int ckks_mp_galois_keys(const ckks_context_t *ctx, const uint8_t seed[CKKS_MP_SEED_BYTES],
                        const ckks_mp_share_t *const *gkg_sums, size_t count, ckks_galois_keys_t **out);
/* out = (c0 + h0, h1): ct under the target key (out may be ct). */
int ckks_mp_pcks_apply(const ckks_ciphertext_t *ct, const ckks_mp_share_t *pcks_sum, ckks_ciphertext_t *out);

/* Shares on the wire: hestat's frame (object type CKKS_OBJ_MP_SHARE) with a
 * 32-byte tag the caller binds the share to (study, round, party, result);
 * the reader validates kind, shape and every word (< its prime) and returns
 * the tag for the caller to check. */
int ckks_mp_share_write(const ckks_mp_share_t *sh, const uint8_t tag[32], void **buf, size_t *len);
int ckks_mp_share_read(const ckks_context_t *ctx, const void *buf, size_t len, ckks_mp_share_t **out,
                       uint8_t tag[32]);

/* Testing and analysis only: the secret key s_1 + ... + s_count. No tool
 * calls it: in a study no machine ever holds every share. */
int ckks_mp_secret_sum(const ckks_secret_key_t *const *shares, size_t count, ckks_secret_key_t **out);

#ifdef __cplusplus
}
#endif
#endif /* HESTAT_CKKS_H */
