/*
 * hestat ntt/: modular arithmetic, SEAL-compatible primes, negacyclic NTT and
 * element-wise vector kernels over Z_q for primes q < 2^62.
 *
 * Conventions
 *   - Functions that can fail return an int status: NTT_OK (0) or a negative
 *     NTT_E* code; ntt_strerror() turns it into text. Nothing here aborts.
 *   - Arithmetic helpers (ntt_mulmod, ...) are static inline and assume their
 *     documented preconditions; they are the building blocks of the kernels.
 *   - The NTT follows Microsoft SEAL's convention: output position k of the
 *     forward transform holds a(psi^(2*bitrev(k)+1)) mod q, where psi is the
 *     smallest primitive 2N-th root of unity mod q.
 *   - Kernels run on the backend chosen once at start-up (scalar, avx2,
 *     avx512 or avx512r4: the widest the CPU has, and of the two AVX-512
 *     schedules the one for this microarchitecture, see dispatch.c;
 *     HESTAT_SIMD=scalar|avx2|avx512|avx512r4 forces one). ntt_ops() hands out any available backend explicitly (tests and
 *     benchmarks use it).
 */
#ifndef HESTAT_NTT_H
#define HESTAT_NTT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes --------------------------------------------------------- */
enum {
    NTT_OK = 0,
    NTT_EINVAL = -1,       /* a NULL pointer or an argument out of its range */
    NTT_ENOTPOW2 = -2,     /* N is not a power of two in the supported range */
    NTT_ENOTPRIME = -3,    /* q is not prime */
    NTT_ENOTNTT = -4,      /* q is not congruent to 1 mod 2N */
    NTT_ETOOLARGE = -5,    /* q >= 2^62 (or q < 2) */
    NTT_ENOPRIME = -6,     /* not enough primes of the asked bit size */
    NTT_ENOMEM = -7,       /* allocation failed */
    NTT_EUNSUPPORTED = -8, /* SIMD backend not available on this CPU/build */
    NTT_EBITSIZE = -9      /* a prime bit size outside [2, 62] */
};

const char *ntt_strerror(int status);

/* Supported transform sizes: N = 2^NTT_LOG_N_MIN ... 2^NTT_LOG_N_MAX. */
#define NTT_LOG_N_MIN 1
#define NTT_LOG_N_MAX 17
/* Largest supported modulus bit count: q < 2^62 (Harvey lazy butterflies keep
 * values below 4q, which must fit in 64 bits). */
#define NTT_MAX_MOD_BITS 62

/* ---- modulus ---------------------------------------------------------------- */
typedef struct ntt_modulus {
    uint64_t value;     /* q, 2 <= q < 2^62 */
    int bits;           /* bit length of q */
    uint64_t barrett_hi; /* floor(2^128 / q), high word */
    uint64_t barrett_lo; /* floor(2^128 / q), low word */
} ntt_modulus_t;

/* Fills *m for q in [2, 2^62). Does not require q to be prime. */
int ntt_modulus_init(ntt_modulus_t *m, uint64_t q);

typedef unsigned __int128 ntt_u128;

/* x mod q for any 64-bit x (Barrett with floor(2^128/q)). */
static inline uint64_t ntt_reduce64(uint64_t x, const ntt_modulus_t *m)
{
    uint64_t qhat = (uint64_t)(((ntt_u128)x * m->barrett_hi) >> 64);
    uint64_t r = x - qhat * m->value;
    return r >= m->value ? r - m->value : r;
}

/* (hi*2^64 + lo) mod q for any value below q*2^64, i.e. hi < q (Barrett with
 * floor(2^128/q)). */
static inline uint64_t ntt_reduce128(uint64_t hi, uint64_t lo, const ntt_modulus_t *m)
{
    /* qhat = floor(x * floor(2^128/q) / 2^128) exactly (the low word of the
     * lowest partial product cannot carry into it); floor(x/q) - 1 <= qhat
     * <= floor(x/q), so x - qhat*q < 2q. hi < q keeps qhat below 2^64. */
    ntt_u128 lo_hi = (ntt_u128)lo * m->barrett_hi;
    ntt_u128 hi_lo = (ntt_u128)hi * m->barrett_lo;
    uint64_t carry = (uint64_t)(((ntt_u128)lo * m->barrett_lo) >> 64);
    ntt_u128 mid = (lo_hi & UINT64_MAX) + (hi_lo & UINT64_MAX) + carry;
    uint64_t qhat = hi * m->barrett_hi + (uint64_t)(lo_hi >> 64) + (uint64_t)(hi_lo >> 64) +
                    (uint64_t)(mid >> 64);
    uint64_t r = lo - qhat * m->value;
    return r >= m->value ? r - m->value : r;
}

/* a*b mod q for a, b < 2^64 with a*b < q*2^64 (in particular a, b < q). */
static inline uint64_t ntt_mulmod(uint64_t a, uint64_t b, const ntt_modulus_t *m)
{
    ntt_u128 p = (ntt_u128)a * b;
    return ntt_reduce128((uint64_t)(p >> 64), (uint64_t)p, m);
}

/* (a + b) mod q for a, b < q. */
static inline uint64_t ntt_addmod(uint64_t a, uint64_t b, uint64_t q)
{
    uint64_t s = a + b;
    return s >= q ? s - q : s;
}

/* (a - b) mod q for a, b < q. */
static inline uint64_t ntt_submod(uint64_t a, uint64_t b, uint64_t q)
{
    return a >= b ? a - b : a + q - b;
}

/* -a mod q for a < q. */
static inline uint64_t ntt_negmod(uint64_t a, uint64_t q)
{
    return a ? q - a : 0;
}

/* Shoup precomputation for a constant w < q: floor(w * 2^64 / q). */
static inline uint64_t ntt_shoup(uint64_t w, uint64_t q)
{
    return (uint64_t)(((ntt_u128)w << 64) / q);
}

/* x*w mod q in [0, 2q) for any 64-bit x, given wp = ntt_shoup(w, q), w < q. */
static inline uint64_t ntt_mulmod_shoup_lazy(uint64_t x, uint64_t w, uint64_t wp, uint64_t q)
{
    uint64_t qhat = (uint64_t)(((ntt_u128)x * wp) >> 64);
    return x * w - qhat * q;
}

/* x*w mod q in [0, q) for any 64-bit x, given wp = ntt_shoup(w, q), w < q. */
static inline uint64_t ntt_mulmod_shoup(uint64_t x, uint64_t w, uint64_t wp, uint64_t q)
{
    uint64_t r = ntt_mulmod_shoup_lazy(x, w, wp, q);
    return r >= q ? r - q : r;
}

/* a^e mod q (a reduced first). */
uint64_t ntt_powmod(uint64_t a, uint64_t e, const ntt_modulus_t *m);

/* Inverse of a mod q: NTT_OK and *inv, or NTT_EINVAL if gcd(a, q) != 1. */
int ntt_invmod(uint64_t a, const ntt_modulus_t *m, uint64_t *inv);

/* ---- primes and roots --------------------------------------------------------- */

/* 1 if n is prime, 0 if not (deterministic Miller-Rabin, exact for 64 bits). */
int ntt_is_prime(uint64_t n);

/* Exactly what SEAL's CoeffModulus::Create(n, bit_sizes) returns: for each
 * distinct bit size b used k times, the k largest primes p < 2^b with
 * p = 1 mod 2n (and p > 2^(b-1)), handed out in ascending order to the
 * positions asking for b. Bit sizes in [2, 62]; n a power of two in
 * [2^NTT_LOG_N_MIN, 2^NTT_LOG_N_MAX]. Primes also differ across sizes. */
int ntt_coeff_modulus(size_t n, const int *bit_sizes, size_t count, uint64_t *out);

/* The numerically smallest primitive 2n-th root of unity mod prime q (as SEAL
 * chooses it). Errors: NTT_ENOTPOW2, NTT_ENOTPRIME, NTT_ENOTNTT, NTT_ETOOLARGE. */
int ntt_minimal_root(size_t n, uint64_t q, uint64_t *psi);

/* Bit reversal of the low `bits` bits of x. */
static inline size_t ntt_bitrev(size_t x, int bits)
{
    size_t r = 0;
    for (int i = 0; i < bits; i++) {
        r = (r << 1) | (x & 1);
        x >>= 1;
    }
    return r;
}

/* ---- NTT tables -------------------------------------------------------------- */
typedef struct ntt_tables ntt_tables_t;

/* Precomputes everything the transforms of size n modulo prime q need.
 * Errors: NTT_ENOTPOW2, NTT_ETOOLARGE, NTT_ENOTPRIME, NTT_ENOTNTT, NTT_ENOMEM. */
int ntt_tables_new(size_t n, uint64_t q, ntt_tables_t **out);
void ntt_tables_free(ntt_tables_t *t);

size_t ntt_tables_n(const ntt_tables_t *t);
int ntt_tables_log_n(const ntt_tables_t *t);
const ntt_modulus_t *ntt_tables_modulus(const ntt_tables_t *t);
uint64_t ntt_tables_psi(const ntt_tables_t *t);
/* psi^bitrev(i) for i < n (the forward twiddle table). */
uint64_t ntt_tables_root_power(const ntt_tables_t *t, size_t i);

/* ---- backends ------------------------------------------------------------------ */
typedef enum ntt_simd {
    NTT_SIMD_SCALAR = 0,
    NTT_SIMD_AVX2 = 1,
    NTT_SIMD_AVX512 = 2,
    NTT_SIMD_AVX512R4 = 3, /* avx512's arithmetic, radix-4 cache-blocked transforms */
    NTT_SIMD_COUNT = 4
} ntt_simd_t;

/*
 * One backend's kernels. All vectors hold n = ntt_tables_n() (transforms) or
 * the given n (element-wise) 64-bit words; aligned buffers (ntt_alloc) are
 * fastest but not required. Element-wise outputs may alias any input.
 *
 * forward: input in [0, 4q); output in [0, q), or in [0, 4q) when lazy.
 * inverse: input in [0, 2q); output in [0, q), or in [0, 2q) when lazy.
 *   The inverse includes the 1/N scaling: inverse(forward(a)) == a.
 * add/sub/mul/fma: inputs in [0, q), output in [0, q).
 *   fma: r = a*b + c.  mul_scalar/fma_scalar: s < q; r = a*s (+ c).
 * neg: input in [0, q). reduce: any 64-bit input, output in [0, q).
 * dot2x2: sums of the four products of a batch of pairs (x0, x1), (y0, y1)
 *   (ntt_vec_dot2x2), or with x1 NULL the two of x0 with (y0, y1)
 *   (ntt_vec_dot1x2); NULL where the backend has none, and then (or for a
 *   batch of one) those compose mul and fma.
 * permute2: two gathers by one index table (ntt_vec_permute2); NULL where the
 *   backend has none (a plain loop then).
 */
typedef struct ntt_ops {
    ntt_simd_t id;
    const char *name;
    void (*forward)(const ntt_tables_t *t, uint64_t *a, int lazy);
    void (*inverse)(const ntt_tables_t *t, uint64_t *a, int lazy);
    void (*add)(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                const ntt_modulus_t *m);
    void (*sub)(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                const ntt_modulus_t *m);
    void (*neg)(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m);
    void (*mul)(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                const ntt_modulus_t *m);
    void (*mul_scalar)(uint64_t *r, const uint64_t *a, uint64_t s, size_t n,
                       const ntt_modulus_t *m);
    void (*fma)(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *c,
                size_t n, const ntt_modulus_t *m);
    void (*fma_scalar)(uint64_t *r, const uint64_t *a, uint64_t s, const uint64_t *c,
                       size_t n, const ntt_modulus_t *m);
    void (*reduce)(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m);
    void (*dot2x2)(uint64_t *const r[4], const uint64_t *const *x0, const uint64_t *const *x1,
                   const uint64_t *const *y0, const uint64_t *const *y1, size_t k, size_t n,
                   const ntt_modulus_t *m, int accumulate);
    void (*permute2)(uint64_t *d0, uint64_t *d1, const uint64_t *s0, const uint64_t *s1, const uint32_t *idx,
                     size_t n);
} ntt_ops_t;

/* The backend every ntt_* kernel call below uses: chosen once, on first use,
 * from CPUID (or HESTAT_SIMD). Never NULL. */
const ntt_ops_t *ntt_ops_default(void);

/* A specific backend: NTT_OK and *out, or NTT_EUNSUPPORTED when this CPU or
 * build lacks it (never an illegal-instruction crash later). */
int ntt_ops_get(ntt_simd_t id, const ntt_ops_t **out);

/* "scalar", "avx2", "avx512", "avx512r4", or NULL for an unknown id. */
const char *ntt_simd_name(ntt_simd_t id);
/* Parses a backend name: NTT_OK and *id, or NTT_EINVAL. */
int ntt_simd_parse(const char *name, ntt_simd_t *id);

/* If HESTAT_SIMD names a backend this CPU lacks (or an unknown name), the
 * default falls back to the best available one; this returns a message
 * saying so (NULL when the variable was honoured or unset). */
const char *ntt_ops_default_warning(void);

/* ---- kernels on the default backend ---------------------------------------- */
void ntt_forward(const ntt_tables_t *t, uint64_t *a);
void ntt_forward_lazy(const ntt_tables_t *t, uint64_t *a);
void ntt_inverse(const ntt_tables_t *t, uint64_t *a);
void ntt_inverse_lazy(const ntt_tables_t *t, uint64_t *a);
/* Out-of-place: out = NTT(in); in is left unchanged (in == out is allowed). */
void ntt_forward_to(const ntt_tables_t *t, uint64_t *out, const uint64_t *in);
void ntt_inverse_to(const ntt_tables_t *t, uint64_t *out, const uint64_t *in);

void ntt_vec_add(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                 const ntt_modulus_t *m);
void ntt_vec_sub(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                 const ntt_modulus_t *m);
void ntt_vec_neg(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m);
void ntt_vec_mul(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                 const ntt_modulus_t *m);
void ntt_vec_mul_scalar(uint64_t *r, const uint64_t *a, uint64_t s, size_t n,
                        const ntt_modulus_t *m);
void ntt_vec_fma(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *c,
                 size_t n, const ntt_modulus_t *m);
void ntt_vec_fma_scalar(uint64_t *r, const uint64_t *a, uint64_t s, const uint64_t *c,
                        size_t n, const ntt_modulus_t *m);
void ntt_vec_reduce(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m);
/* The four sums of products of k pairs of pairs, for every i < n (mod q):
 *   r[0][i] = sum_j x0[j][i] y0[j][i],   r[1][i] = sum_j x1[j][i] y0[j][i],
 *   r[2][i] = sum_j x0[j][i] y1[j][i],   r[3][i] = sum_j x1[j][i] y1[j][i],
 * each plus r's own value when accumulate. A degree-1 by degree-1 product kept
 * as its two halves (ckks_multiply_split_many) is this, and the products are
 * summed before they are reduced (with lazy reduction where the modulus leaves
 * room). Inputs and r in [0, q); outputs in [0, q), the same on every backend.
 * The r[] must be four distinct arrays that alias no input. */
void ntt_vec_dot2x2(uint64_t *const r[4], const uint64_t *const *x0, const uint64_t *const *x1,
                    const uint64_t *const *y0, const uint64_t *const *y1, size_t k, size_t n,
                    const ntt_modulus_t *m, int accumulate);
/* The same for one x: r[0][i] (+)= sum_j x[j][i] y0[j][i] and
 * r[1][i] (+)= sum_j x[j][i] y1[j][i] (a key switch's inner product: the
 * digits times the key's two parts). */
void ntt_vec_dot1x2(uint64_t *const r[2], const uint64_t *const *x, const uint64_t *const *y0,
                    const uint64_t *const *y1, size_t k, size_t n, const ntt_modulus_t *m, int accumulate);

/* d0[i] = s0[idx[i]] and d1[i] = s1[idx[i]] for i < n (d0, d1 alias no
 * source). Any table works; one that maps each aligned group of four
 * indices into one aligned group of four sources, as a Galois automorphism
 * of NTT slots does (ckks_galois_perm), is a shuffle a group on AVX2. */
void ntt_vec_permute2(uint64_t *d0, uint64_t *d1, const uint64_t *s0, const uint64_t *s1, const uint32_t *idx,
                      size_t n);

/* ---- memory ------------------------------------------------------------------- */
/* 64-byte aligned array of n words (zeroed); NULL on failure or n == 0. */
uint64_t *ntt_alloc(size_t n);
/* The same, contents uninitialised: for arrays the caller writes whole
 * (a key-switching key: zeroing its 19 MB first costs 10% of generating it). */
uint64_t *ntt_alloc_uninit(size_t n);
void ntt_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* HESTAT_NTT_H */
