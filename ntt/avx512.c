/*
 * AVX-512 backend: 8 x 64-bit lanes.
 *   - q < 2^50: AVX-512 IFMA (52-bit multiply-add), Shoup companions
 *     floor(w * 2^52 / q); lazy values stay below 4q < 2^52.
 *   - larger q (< 2^62): AVX-512F/DQ, the 64x64 -> high-64 product emulated
 *     with four 32-bit multiplies, low products with vpmullq.
 * One kernel body serves both widths: the `ifma` argument of the always-inline
 * drivers is a compile-time constant at each call site.
 * Fully reduced results are bit-identical to the scalar backend; lazy results
 * are congruent and within the bounds documented in ntt.h.
 */
#include <immintrin.h>

#include "ntt_impl.h"

#define INLINE static inline __attribute__((always_inline))

typedef __m512i v8;

typedef struct {
    v8 q, two_q, negq52, mask52;
} consts_t;

INLINE v8 bcast(uint64_t x) { return _mm512_set1_epi64((long long)x); }
INLINE v8 add(v8 a, v8 b) { return _mm512_add_epi64(a, b); }
INLINE v8 sub(v8 a, v8 b) { return _mm512_sub_epi64(a, b); }
INLINE v8 load(const uint64_t *p) { return _mm512_loadu_si512((const void *)p); }
INLINE void store(uint64_t *p, v8 v) { _mm512_storeu_si512((void *)p, v); }
INLINE v8 idx8(long long a, long long b, long long c, long long d, long long e, long long f,
               long long g, long long h)
{
    return _mm512_set_epi64(h, g, f, e, d, c, b, a);
}

/* x - m when x >= m, for x < 2m (unsigned min against the wrapped difference). */
INLINE v8 csub(v8 x, v8 m) { return _mm512_min_epu64(x, sub(x, m)); }

INLINE consts_t make_consts(uint64_t q)
{
    consts_t c;
    c.q = bcast(q);
    c.two_q = bcast(2 * q);
    c.negq52 = bcast(((1ULL << 52) - q) & ((1ULL << 52) - 1));
    c.mask52 = bcast((1ULL << 52) - 1);
    return c;
}

/* High 64 bits of a*b, b_hi = b >> 32 (hoisted by callers with constant b). */
INLINE v8 mulhi64(v8 a, v8 b, v8 b_hi)
{
    const v8 m32 = bcast(0xffffffffULL);
    v8 a_hi = _mm512_srli_epi64(a, 32);
    v8 p00 = _mm512_mul_epu32(a, b);
    v8 p01 = _mm512_mul_epu32(a, b_hi);
    v8 p10 = _mm512_mul_epu32(a_hi, b);
    v8 p11 = _mm512_mul_epu32(a_hi, b_hi);
    v8 t = add(p10, _mm512_srli_epi64(p00, 32));
    v8 mid = add(p01, _mm512_and_si512(t, m32));
    return add(add(p11, _mm512_srli_epi64(t, 32)), _mm512_srli_epi64(mid, 32));
}

/* mulhi64 without the low partial product: hi(a*b) - 1 or hi(a*b). */
INLINE v8 mulhi64_approx(v8 a, v8 b, v8 b_hi)
{
    const v8 m32 = bcast(0xffffffffULL);
    v8 a_hi = _mm512_srli_epi64(a, 32);
    v8 p01 = _mm512_mul_epu32(a, b_hi);
    v8 p10 = _mm512_mul_epu32(a_hi, b);
    v8 p11 = _mm512_mul_epu32(a_hi, b_hi);
    v8 mid = add(_mm512_and_si512(p01, m32), _mm512_and_si512(p10, m32));
    return add(add(p11, _mm512_srli_epi64(p01, 32)),
               add(_mm512_srli_epi64(p10, 32), _mm512_srli_epi64(mid, 32)));
}

/* y*w mod q in [0, 2q): Shoup with wp = floor(w*2^52/q) (ifma, y < 2^52) or
 * wp = floor(w*2^64/q) (64-bit, any y). */
INLINE v8 mulshoup(v8 y, v8 w, v8 wp, v8 wp_hi, const consts_t *c, const int ifma)
{
    if (ifma) {
        const v8 z = _mm512_setzero_si512();
        v8 qh = _mm512_madd52hi_epu64(z, wp, y);
        v8 t = _mm512_madd52lo_epu64(z, w, y);
        t = _mm512_madd52lo_epu64(t, qh, c->negq52);
        return _mm512_and_si512(t, c->mask52);
    }
    v8 qh = mulhi64(y, wp, wp_hi);
    return sub(_mm512_mullo_epi64(y, w), _mm512_mullo_epi64(qh, c->q));
}

/* Forward (Cooley-Tukey) butterfly: x, y < 4q in and out. */
INLINE void fwd_bfly(v8 *x, v8 *y, v8 w, v8 wp, v8 wph, const consts_t *c, const int ifma)
{
    v8 u = csub(*x, c->two_q);
    v8 v = mulshoup(*y, w, wp, wph, c, ifma);
    *x = add(u, v);
    *y = add(sub(u, v), c->two_q);
}

/* Inverse (Gentleman-Sande) butterfly: x, y < 2q in and out. */
INLINE void inv_bfly(v8 *x, v8 *y, v8 w, v8 wp, v8 wph, const consts_t *c, const int ifma)
{
    v8 u = *x, v = *y;
    *x = csub(add(u, v), c->two_q);
    *y = mulshoup(add(sub(u, v), c->two_q), w, wp, wph, c, ifma);
}

/* Per-lane twiddles for the stages whose blocks are narrower than a vector:
 * `reps` copies of each of 8/reps consecutive table entries. */
INLINE v8 lane_twiddles(const uint64_t *tab, int reps)
{
    if (reps == 1) return load(tab);
    if (reps == 2) return _mm512_permutexvar_epi64(idx8(0, 0, 1, 1, 2, 2, 3, 3), _mm512_maskz_loadu_epi64(0x0f, tab));
    return _mm512_permutexvar_epi64(idx8(0, 0, 0, 0, 1, 1, 1, 1), _mm512_maskz_loadu_epi64(0x03, tab));
}

/* Split 16 consecutive words (blocks of 2*gap, gap = 4, 2, 1) into the x and
 * y halves of their butterflies, and merge them back. */
INLINE void split(v8 v0, v8 v1, int gap, v8 *x, v8 *y)
{
    if (gap == 4) {
        *x = _mm512_shuffle_i64x2(v0, v1, 0x44);
        *y = _mm512_shuffle_i64x2(v0, v1, 0xee);
    } else if (gap == 2) {
        *x = _mm512_permutex2var_epi64(v0, idx8(0, 1, 4, 5, 8, 9, 12, 13), v1);
        *y = _mm512_permutex2var_epi64(v0, idx8(2, 3, 6, 7, 10, 11, 14, 15), v1);
    } else {
        *x = _mm512_permutex2var_epi64(v0, idx8(0, 2, 4, 6, 8, 10, 12, 14), v1);
        *y = _mm512_permutex2var_epi64(v0, idx8(1, 3, 5, 7, 9, 11, 13, 15), v1);
    }
}

INLINE void merge(v8 x, v8 y, int gap, v8 *v0, v8 *v1)
{
    if (gap == 4) {
        *v0 = _mm512_shuffle_i64x2(x, y, 0x44);
        *v1 = _mm512_shuffle_i64x2(x, y, 0xee);
    } else if (gap == 2) {
        *v0 = _mm512_permutex2var_epi64(x, idx8(0, 1, 8, 9, 2, 3, 10, 11), y);
        *v1 = _mm512_permutex2var_epi64(x, idx8(4, 5, 12, 13, 6, 7, 14, 15), y);
    } else {
        *v0 = _mm512_permutex2var_epi64(x, idx8(0, 8, 1, 9, 2, 10, 3, 11), y);
        *v1 = _mm512_permutex2var_epi64(x, idx8(4, 12, 5, 13, 6, 14, 7, 15), y);
    }
}

/* One stage with gap < 8 over the whole array (m = n / (2*gap) blocks). */
INLINE void small_gap_stage(uint64_t *a, size_t n, int gap, const uint64_t *wt,
                            const uint64_t *wpt, const consts_t *c, const int ifma,
                            const int inverse, const int reduce_out)
{
    const size_t m = n / (2 * gap);
    const int reps = gap; /* twiddle copies per vector lane group */
    const size_t per = 8 / gap; /* blocks per 16 words */
    for (size_t i = 0; i < m; i += per) {
        uint64_t *p = a + 2 * gap * i;
        v8 x, y, w = lane_twiddles(wt + m + i, reps), wp = lane_twiddles(wpt + m + i, reps);
        v8 wph = ifma ? w : _mm512_srli_epi64(wp, 32);
        split(load(p), load(p + 8), gap, &x, &y);
        if (inverse) {
            inv_bfly(&x, &y, w, wp, wph, c, ifma);
        } else {
            fwd_bfly(&x, &y, w, wp, wph, c, ifma);
            if (reduce_out) {
                x = csub(csub(x, c->two_q), c->q);
                y = csub(csub(y, c->two_q), c->q);
            }
        }
        v8 v0, v1;
        merge(x, y, gap, &v0, &v1);
        store(p, v0);
        store(p + 8, v1);
    }
}

INLINE void forward_impl(const ntt_tables_t *t, uint64_t *a, int lazy, const int ifma)
{
    const size_t n = t->n;
    const consts_t c = make_consts(t->mod.value);
    const uint64_t *wt = t->root, *wpt = ifma ? t->root_shoup52 : t->root_shoup;
    size_t m = 1, gap = n >> 1;
    for (; gap >= 8; m <<= 1, gap >>= 1) {
        for (size_t i = 0; i < m; i++) {
            const v8 w = bcast(wt[m + i]), wp = bcast(wpt[m + i]);
            const v8 wph = _mm512_srli_epi64(wp, 32);
            uint64_t *xp = a + 2 * i * gap, *yp = xp + gap;
            for (size_t j = 0; j < gap; j += 8) {
                v8 x = load(xp + j), y = load(yp + j);
                fwd_bfly(&x, &y, w, wp, wph, &c, ifma);
                store(xp + j, x);
                store(yp + j, y);
            }
        }
    }
    small_gap_stage(a, n, 4, wt, wpt, &c, ifma, 0, 0);
    small_gap_stage(a, n, 2, wt, wpt, &c, ifma, 0, 0);
    if (lazy)
        small_gap_stage(a, n, 1, wt, wpt, &c, ifma, 0, 0);
    else
        small_gap_stage(a, n, 1, wt, wpt, &c, ifma, 0, 1);
}

INLINE void inverse_impl(const ntt_tables_t *t, uint64_t *a, int lazy, const int ifma)
{
    const size_t n = t->n;
    const consts_t c = make_consts(t->mod.value);
    const uint64_t *wt = t->iroot, *wpt = ifma ? t->iroot_shoup52 : t->iroot_shoup;
    small_gap_stage(a, n, 1, wt, wpt, &c, ifma, 1, 0);
    small_gap_stage(a, n, 2, wt, wpt, &c, ifma, 1, 0);
    small_gap_stage(a, n, 4, wt, wpt, &c, ifma, 1, 0);
    size_t m = n >> 4, gap = 8;
    for (; m > 1; m >>= 1, gap <<= 1) {
        for (size_t i = 0; i < m; i++) {
            const v8 w = bcast(wt[m + i]), wp = bcast(wpt[m + i]);
            const v8 wph = _mm512_srli_epi64(wp, 32);
            uint64_t *xp = a + 2 * i * gap, *yp = xp + gap;
            for (size_t j = 0; j < gap; j += 8) {
                v8 x = load(xp + j), y = load(yp + j);
                inv_bfly(&x, &y, w, wp, wph, &c, ifma);
                store(xp + j, x);
                store(yp + j, y);
            }
        }
    }
    /* Last stage, 1/N folded in. */
    const v8 ni = bcast(t->n_inv), nip = bcast(ifma ? t->n_inv_shoup52 : t->n_inv_shoup);
    const v8 lw = bcast(t->last_iroot);
    const v8 lwp = bcast(ifma ? t->last_iroot_shoup52 : t->last_iroot_shoup);
    const v8 nip_h = _mm512_srli_epi64(nip, 32), lwp_h = _mm512_srli_epi64(lwp, 32);
    uint64_t *xp = a, *yp = a + gap;
    for (size_t j = 0; j < gap; j += 8) {
        v8 u = load(xp + j), v = load(yp + j);
        v8 s = mulshoup(add(u, v), ni, nip, nip_h, &c, ifma);
        v8 d = mulshoup(add(sub(u, v), c.two_q), lw, lwp, lwp_h, &c, ifma);
        if (!lazy) {
            s = csub(s, c.q);
            d = csub(d, c.q);
        }
        store(xp + j, s);
        store(yp + j, d);
    }
}

static int use_ifma(const ntt_tables_t *t) { return t->root_shoup52 != NULL; }

static void forward_avx512(const ntt_tables_t *t, uint64_t *a, int lazy)
{
    if (t->n < 16)
        ntt_ops_scalar.forward(t, a, lazy);
    else if (use_ifma(t))
        forward_impl(t, a, lazy, 1);
    else
        forward_impl(t, a, lazy, 0);
}

static void inverse_avx512(const ntt_tables_t *t, uint64_t *a, int lazy)
{
    if (t->n < 16)
        ntt_ops_scalar.inverse(t, a, lazy);
    else if (use_ifma(t))
        inverse_impl(t, a, lazy, 1);
    else
        inverse_impl(t, a, lazy, 0);
}

/* ---- element-wise kernels ------------------------------------------------- */

/* Runs body(x-vectors...) over n words: full vectors, then one masked tail. */
#define ELTWISE_LOOP(n, BODY)                                                   \
    do {                                                                        \
        size_t i_ = 0;                                                          \
        for (; i_ + 8 <= (n); i_ += 8) {                                        \
            const __mmask8 k_ = 0xff;                                           \
            BODY(i_, k_);                                                       \
        }                                                                       \
        if (i_ < (n)) {                                                         \
            const __mmask8 k_ = (__mmask8)((1u << ((n)-i_)) - 1);               \
            BODY(i_, k_);                                                       \
        }                                                                       \
    } while (0)

#define LD(p, i, k) _mm512_maskz_loadu_epi64(k, (p) + (i))
#define ST(p, i, k, v) _mm512_mask_storeu_epi64((p) + (i), k, v)

static void add_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                       const ntt_modulus_t *m)
{
    const v8 q = bcast(m->value);
#define BODY(i, k) ST(r, i, k, csub(add(LD(a, i, k), LD(b, i, k)), q))
    ELTWISE_LOOP(n, BODY);
#undef BODY
}

static void sub_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                       const ntt_modulus_t *m)
{
    const v8 q = bcast(m->value);
#define BODY(i, k)                                                  \
    do {                                                            \
        v8 d_ = sub(LD(a, i, k), LD(b, i, k));                      \
        ST(r, i, k, _mm512_min_epu64(d_, add(d_, q)));              \
    } while (0)
    ELTWISE_LOOP(n, BODY);
#undef BODY
}

static void neg_avx512(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m)
{
    const v8 q = bcast(m->value);
#define BODY(i, k)                                                                   \
    do {                                                                             \
        v8 x_ = LD(a, i, k);                                                         \
        ST(r, i, k, _mm512_maskz_sub_epi64(_mm512_test_epi64_mask(x_, x_), q, x_));  \
    } while (0)
    ELTWISE_LOOP(n, BODY);
#undef BODY
}

/* Barrett constants for a*b mod q with a, b < q: x = floor(a*b / 2^s),
 * s = bits(q) - 1, quotient floor(x * mu / 2^W), W = 52 (IFMA) or 64. */
typedef struct {
    v8 q, two_q, mu, mu_hi, negq52, mask52;
    __m128i s, ls; /* right shift s of the low word, left shift W - s of the high word */
} barrett_t;

static barrett_t make_barrett(const ntt_modulus_t *m, int ifma)
{
    barrett_t b;
    uint64_t q = m->value;
    int s = m->bits - 1, w = ifma ? 52 : 64;
    uint64_t mu = (uint64_t)(((ntt_u128)1 << (s + w)) / q);
    b.q = bcast(q);
    b.two_q = bcast(2 * q);
    b.mu = bcast(mu);
    b.mu_hi = bcast(mu >> 32);
    b.negq52 = bcast(((1ULL << 52) - q) & ((1ULL << 52) - 1));
    b.mask52 = bcast((1ULL << 52) - 1);
    b.s = _mm_cvtsi32_si128(s);
    b.ls = _mm_cvtsi32_si128(w - s);
    return b;
}

/* a*b mod q in [0, q) for a, b < q. */
INLINE v8 mulmod_vec(v8 a, v8 b, const barrett_t *c, const int ifma)
{
    if (ifma) {
        const v8 z = _mm512_setzero_si512();
        v8 lo = _mm512_madd52lo_epu64(z, a, b), hi = _mm512_madd52hi_epu64(z, a, b);
        v8 x = _mm512_or_si512(_mm512_sll_epi64(hi, c->ls), _mm512_srl_epi64(lo, c->s));
        v8 qh = _mm512_madd52hi_epu64(z, x, c->mu);
        v8 r = _mm512_and_si512(_mm512_madd52lo_epu64(lo, qh, c->negq52), c->mask52);
        return csub(csub(r, c->q), c->q); /* r < 3q */
    }
    v8 lo = _mm512_mullo_epi64(a, b), hi = mulhi64(a, b, _mm512_srli_epi64(b, 32));
    v8 x = _mm512_or_si512(_mm512_sll_epi64(hi, c->ls), _mm512_srl_epi64(lo, c->s));
    /* The quotient may be 3 short (Barrett 2, the approximate product 1). */
    v8 qh = mulhi64_approx(x, c->mu, c->mu_hi);
    v8 r = sub(lo, _mm512_mullo_epi64(qh, c->q));
    return csub(csub(r, c->two_q), c->q); /* r < 4q < 2^64 */
}

/* IFMA needs q < 2^50; the Barrett constant needs q not a power of two. */
static int ifma_ok(const ntt_modulus_t *m) { return m->bits <= NTT_IFMA_MAX_BITS; }
static int barrett_ok(const ntt_modulus_t *m) { return (m->value & (m->value - 1)) != 0; }

INLINE void mul_impl(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *c,
                     size_t n, const ntt_modulus_t *m, const int ifma)
{
    const barrett_t bc = make_barrett(m, ifma);
    if (c) {
#define BODY(i, k) ST(r, i, k, csub(add(mulmod_vec(LD(a, i, k), LD(b, i, k), &bc, ifma), LD(c, i, k)), bc.q))
        ELTWISE_LOOP(n, BODY);
#undef BODY
    } else {
#define BODY(i, k) ST(r, i, k, mulmod_vec(LD(a, i, k), LD(b, i, k), &bc, ifma))
        ELTWISE_LOOP(n, BODY);
#undef BODY
    }
}

static void fma_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *c,
                       size_t n, const ntt_modulus_t *m)
{
    if (!barrett_ok(m))
        ntt_ops_scalar.fma(r, a, b, c, n, m);
    else if (ifma_ok(m))
        mul_impl(r, a, b, c, n, m, 1);
    else
        mul_impl(r, a, b, c, n, m, 0);
}

static void mul_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                       const ntt_modulus_t *m)
{
    if (!barrett_ok(m))
        ntt_ops_scalar.mul(r, a, b, n, m);
    else if (ifma_ok(m))
        mul_impl(r, a, b, NULL, n, m, 1);
    else
        mul_impl(r, a, b, NULL, n, m, 0);
}

INLINE void mul_scalar_impl(uint64_t *r, const uint64_t *a, uint64_t s, const uint64_t *c,
                            size_t n, const ntt_modulus_t *m, const int ifma)
{
    const uint64_t q = m->value;
    const consts_t k = make_consts(q);
    const v8 w = bcast(s), wp = bcast(ifma ? ntt_shoup52(s, q) : ntt_shoup(s, q));
    const v8 wph = _mm512_srli_epi64(wp, 32);
    if (c) {
#define BODY(i, kk) ST(r, i, kk, csub(add(csub(mulshoup(LD(a, i, kk), w, wp, wph, &k, ifma), k.q), LD(c, i, kk)), k.q))
        ELTWISE_LOOP(n, BODY);
#undef BODY
    } else {
#define BODY(i, kk) ST(r, i, kk, csub(mulshoup(LD(a, i, kk), w, wp, wph, &k, ifma), k.q))
        ELTWISE_LOOP(n, BODY);
#undef BODY
    }
}

static void mul_scalar_avx512(uint64_t *r, const uint64_t *a, uint64_t s, size_t n,
                              const ntt_modulus_t *m)
{
    if (ifma_ok(m))
        mul_scalar_impl(r, a, s, NULL, n, m, 1);
    else
        mul_scalar_impl(r, a, s, NULL, n, m, 0);
}

static void fma_scalar_avx512(uint64_t *r, const uint64_t *a, uint64_t s, const uint64_t *c,
                              size_t n, const ntt_modulus_t *m)
{
    if (ifma_ok(m))
        mul_scalar_impl(r, a, s, c, n, m, 1);
    else
        mul_scalar_impl(r, a, s, c, n, m, 0);
}

static void reduce_avx512(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m)
{
    /* floor(x * floor(2^64/q) / 2^64) >= floor(x/q) - 1: one correction. */
    const v8 q = bcast(m->value), mu = bcast(m->barrett_hi), mu_hi = bcast(m->barrett_hi >> 32);
#define BODY(i, k)                                                              \
    do {                                                                        \
        v8 x_ = LD(a, i, k);                                                    \
        v8 r_ = sub(x_, _mm512_mullo_epi64(mulhi64(x_, mu, mu_hi), q));         \
        ST(r, i, k, csub(r_, q));                                               \
    } while (0)
    ELTWISE_LOOP(n, BODY);
#undef BODY
}

const ntt_ops_t ntt_ops_avx512 = {
    .id = NTT_SIMD_AVX512,
    .name = "avx512",
    .forward = forward_avx512,
    .inverse = inverse_avx512,
    .add = add_avx512,
    .sub = sub_avx512,
    .neg = neg_avx512,
    .mul = mul_avx512,
    .mul_scalar = mul_scalar_avx512,
    .fma = fma_avx512,
    .fma_scalar = fma_scalar_avx512,
    .reduce = reduce_avx512,
};
