/*
 * AVX2 backend: 4 x 64-bit lanes.
 *   - q < 2^50 (KIND_FP): the transform runs on doubles. Values are exact
 *     integers in a signed range; a*w mod q is h = a*w, l = fma(a, w, -h)
 *     (the exact product is h + l), Q = round(a * (w/q)), r = (h - Q*q) + l,
 *     every step exact because each intermediate is an integer below 2^53.
 *     Twiddles sit in (-q/2, q/2], so |r| <= q whenever |a| <= 4q, and the
 *     drivers re-centre the growing operand often enough to keep |values| <= 4q.
 *   - larger q (KIND_INT, KIND_WIDE for q >= 2^61): Harvey's lazy butterflies
 *     in integers, 64-bit products emulated with 32x32 -> 64 multiplies.
 * Fully reduced results are bit-identical to the scalar backend; lazy results
 * are congruent and within the bounds documented in ntt.h.
 */
#include <immintrin.h>

#include "ntt_impl.h"

#define INLINE static inline __attribute__((always_inline))

typedef __m256i v4;
typedef __m256d v4d;

enum { KIND_FP, KIND_INT, KIND_WIDE };

typedef struct {
    v4 q, two_q, q_hi, sign;
    v4d qd, qinv;
} ctx_t;

INLINE v4 bcast(uint64_t x) { return _mm256_set1_epi64x((long long)x); }
INLINE v4 add(v4 a, v4 b) { return _mm256_add_epi64(a, b); }
INLINE v4 sub(v4 a, v4 b) { return _mm256_sub_epi64(a, b); }
INLINE v4 load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
INLINE void store(void *p, v4 v) { _mm256_storeu_si256((__m256i *)p, v); }
INLINE v4d asd(v4 x) { return _mm256_castsi256_pd(x); }
INLINE v4 asi(v4d x) { return _mm256_castpd_si256(x); }

INLINE ctx_t make_ctx(uint64_t q)
{
    ctx_t c;
    c.q = bcast(q);
    c.two_q = bcast(2 * q);
    c.q_hi = bcast(q >> 32);
    c.sign = bcast(1ULL << 63);
    c.qd = _mm256_set1_pd((double)q);
    c.qinv = _mm256_set1_pd(1.0 / (double)q);
    return c;
}

/* ---- integers ----------------------------------------------------------------- */

/* x - m when x >= m, for x < 2m. Narrow: x, m < 2^63, so the sign of x - m
 * decides; wide: an unsigned comparison through flipped sign bits. */
INLINE v4 csub(v4 x, v4 m, const ctx_t *c, const int wide)
{
    v4 d = sub(x, m);
    if (!wide) return asi(_mm256_blendv_pd(asd(d), asd(x), asd(d)));
    v4 lt = _mm256_cmpgt_epi64(_mm256_xor_si256(m, c->sign), _mm256_xor_si256(x, c->sign));
    return _mm256_blendv_epi8(d, x, lt);
}

/* High 64 bits of a*b given a_hi = a >> 32 and b_hi = b >> 32. */
INLINE v4 mulhi64(v4 a, v4 a_hi, v4 b, v4 b_hi)
{
    const v4 m32 = bcast(0xffffffffULL);
    v4 p00 = _mm256_mul_epu32(a, b);
    v4 p01 = _mm256_mul_epu32(a, b_hi);
    v4 p10 = _mm256_mul_epu32(a_hi, b);
    v4 p11 = _mm256_mul_epu32(a_hi, b_hi);
    v4 t = add(p10, _mm256_srli_epi64(p00, 32));
    v4 mid = add(p01, _mm256_and_si256(t, m32));
    return add(add(p11, _mm256_srli_epi64(t, 32)), _mm256_srli_epi64(mid, 32));
}

/* Low 64 bits of a*b. */
INLINE v4 mullo64(v4 a, v4 a_hi, v4 b, v4 b_hi)
{
    v4 cross = add(_mm256_mul_epu32(a, b_hi), _mm256_mul_epu32(a_hi, b));
    return add(_mm256_mul_epu32(a, b), _mm256_slli_epi64(cross, 32));
}

/* y*w mod q in [0, 2q) for any 64-bit y, wp = floor(w * 2^64 / q). */
INLINE v4 mulshoup(v4 y, v4 w, v4 wp, const ctx_t *c)
{
    v4 y_hi = _mm256_srli_epi64(y, 32);
    v4 qh = mulhi64(y, y_hi, wp, _mm256_srli_epi64(wp, 32));
    v4 yw = mullo64(y, y_hi, w, _mm256_srli_epi64(w, 32));
    return sub(yw, mullo64(qh, _mm256_srli_epi64(qh, 32), c->q, c->q_hi));
}

/* ---- doubles (q < 2^50) ------------------------------------------------------ */

/* Exact conversions for integers in [0, 2^52). */
INLINE v4d u2d(v4 x)
{
    const v4 magic = bcast(0x4330000000000000ULL); /* the bits of 2^52 */
    return _mm256_sub_pd(asd(_mm256_or_si256(x, magic)), asd(magic));
}

INLINE v4 d2u(v4d v)
{
    const v4 magic = bcast(0x4330000000000000ULL);
    return _mm256_xor_si256(asi(_mm256_add_pd(v, asd(magic))), magic);
}

INLINE v4d rnd(v4d x) { return _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

/* y*w mod q as a signed integer with |r| <= q, for |y| <= 4q, wq = w/q. */
INLINE v4d mulmod_fp(v4d y, v4d w, v4d wq, const ctx_t *c)
{
    v4d h = _mm256_mul_pd(y, w);
    v4d l = _mm256_fmsub_pd(y, w, h);
    v4d qt = rnd(_mm256_mul_pd(y, wq));
    return _mm256_add_pd(_mm256_fnmadd_pd(qt, c->qd, h), l);
}

/* x - round(x/q)*q: |result| <= q/2 (plus a hair) for |x| < 2^52. */
INLINE v4d center_fp(v4d x, const ctx_t *c)
{
    return _mm256_fnmadd_pd(rnd(_mm256_mul_pd(x, c->qinv)), c->qd, x);
}

/* The representative in [0, q), as an integer. */
INLINE v4 canon_fp(v4d x, const ctx_t *c)
{
    x = center_fp(x, c);
    v4d neg = _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ);
    return d2u(_mm256_add_pd(x, _mm256_and_pd(neg, c->qd)));
}

/* ---- butterflies: w, wp are (w, w/q) as doubles for KIND_FP, (w, shoup) otherwise ---- */

/* Forward; FP: `center` re-centres x first. INT: x, y < 4q in and out. */
INLINE void fwd_bfly(v4 *x, v4 *y, v4 w, v4 wp, const ctx_t *c, const int kind, const int center)
{
    if (kind == KIND_FP) {
        v4d u = asd(*x);
        if (center) u = center_fp(u, c);
        v4d v = mulmod_fp(asd(*y), asd(w), asd(wp), c);
        *x = asi(_mm256_add_pd(u, v));
        *y = asi(_mm256_sub_pd(u, v));
        return;
    }
    v4 u = csub(*x, c->two_q, c, kind == KIND_WIDE);
    v4 v = mulshoup(*y, w, wp, c);
    *x = add(u, v);
    *y = add(sub(u, v), c->two_q);
}

/* Inverse; FP: `center` re-centres the sum. INT: x, y < 2q in and out. */
INLINE void inv_bfly(v4 *x, v4 *y, v4 w, v4 wp, const ctx_t *c, const int kind, const int center)
{
    if (kind == KIND_FP) {
        v4d u = asd(*x), v = asd(*y);
        v4d s = _mm256_add_pd(u, v);
        *x = asi(center ? center_fp(s, c) : s);
        *y = asi(mulmod_fp(_mm256_sub_pd(u, v), asd(w), asd(wp), c));
        return;
    }
    v4 u = *x, v = *y;
    *x = csub(add(u, v), c->two_q, c, kind == KIND_WIDE);
    *y = mulshoup(add(sub(u, v), c->two_q), w, wp, c);
}

/* Entry/exit of the transform: integers in, doubles inside (FP), and the
 * output form (canonical or lazy) out. */
INLINE v4 enter(v4 x, const int kind) { return kind == KIND_FP ? asi(u2d(x)) : x; }

INLINE v4 leave(v4 x, const ctx_t *c, const int kind, const int reduce)
{
    if (kind == KIND_FP) return canon_fp(asd(x), c);
    if (!reduce) return x;
    const int wide = kind == KIND_WIDE;
    return csub(csub(x, c->two_q, c, wide), c->q, c, wide);
}

/* ---- drivers ----------------------------------------------------------------- */

/* Twiddles for the stages with gap 2 and 1 (blocks narrower than a vector). */
INLINE v4 lane_twiddles(const uint64_t *tab, int gap)
{
    if (gap == 2) /* w_i, w_i, w_i+1, w_i+1 */
        return _mm256_permute4x64_epi64(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)tab)), 0x50);
    /* gap 1: the x lanes hold blocks i, i+2, i+1, i+3 (see split) */
    return _mm256_permute4x64_epi64(load(tab), 0xd8);
}

INLINE void split(v4 v0, v4 v1, int gap, v4 *x, v4 *y)
{
    if (gap == 2) {
        *x = _mm256_permute2x128_si256(v0, v1, 0x20);
        *y = _mm256_permute2x128_si256(v0, v1, 0x31);
    } else {
        *x = _mm256_unpacklo_epi64(v0, v1);
        *y = _mm256_unpackhi_epi64(v0, v1);
    }
}

INLINE void merge(v4 x, v4 y, int gap, v4 *v0, v4 *v1)
{
    if (gap == 2) {
        *v0 = _mm256_permute2x128_si256(x, y, 0x20);
        *v1 = _mm256_permute2x128_si256(x, y, 0x31);
    } else {
        *v0 = _mm256_unpacklo_epi64(x, y);
        *v1 = _mm256_unpackhi_epi64(x, y);
    }
}

typedef struct {
    const uint64_t *w, *wp; /* twiddles and companions (bit patterns of doubles for FP) */
} tw_t;

/* A stage with gap >= 4: twiddle broadcast per block. */
INLINE void wide_stage(uint64_t *a, size_t n, size_t m, size_t gap, tw_t tw, const ctx_t *c,
                       const int kind, const int inverse, const int center, const int first)
{
    (void)n;
    for (size_t i = 0; i < m; i++) {
        const v4 w = bcast(tw.w[m + i]), wp = bcast(tw.wp[m + i]);
        uint64_t *xp = a + 2 * i * gap, *yp = xp + gap;
        for (size_t j = 0; j < gap; j += 4) {
            v4 x = load(xp + j), y = load(yp + j);
            if (first) {
                x = enter(x, kind);
                y = enter(y, kind);
            }
            if (inverse)
                inv_bfly(&x, &y, w, wp, c, kind, center);
            else
                fwd_bfly(&x, &y, w, wp, c, kind, center);
            store(xp + j, x);
            store(yp + j, y);
        }
    }
}

/* A stage with gap 2 or 1 over the whole array. */
INLINE void narrow_stage(uint64_t *a, size_t n, int gap, tw_t tw, const ctx_t *c, const int kind,
                         const int inverse, const int center, const int first, const int last,
                         const int reduce)
{
    const size_t m = n / (2 * gap), per = 4 / gap;
    for (size_t i = 0; i < m; i += per) {
        uint64_t *p = a + 2 * gap * i;
        v4 x, y, v0 = load(p), v1 = load(p + 4);
        if (first) {
            v0 = enter(v0, kind);
            v1 = enter(v1, kind);
        }
        split(v0, v1, gap, &x, &y);
        v4 w = lane_twiddles(tw.w + m + i, gap), wp = lane_twiddles(tw.wp + m + i, gap);
        if (inverse)
            inv_bfly(&x, &y, w, wp, c, kind, center);
        else
            fwd_bfly(&x, &y, w, wp, c, kind, center);
        if (last) {
            x = leave(x, c, kind, reduce);
            y = leave(y, c, kind, reduce);
        }
        merge(x, y, gap, &v0, &v1);
        store(p, v0);
        store(p + 4, v1);
    }
}

/* FP forward: the x operand is re-centred every third stage (0, 3, 6, ...),
 * so |values| <= 0.5q + 3q before each re-centring; INT ignores `center`. */
INLINE void forward_impl(const ntt_tables_t *t, uint64_t *a, int lazy, const int kind)
{
    const size_t n = t->n;
    const ctx_t c = make_ctx(t->mod.value);
    const tw_t tw = kind == KIND_FP ? (tw_t){(const uint64_t *)t->root_fp, (const uint64_t *)t->root_fpq}
                                    : (tw_t){t->root, t->root_shoup};
    int s = 0;
    size_t m = 1, gap = n >> 1;
    for (; gap >= 4; m <<= 1, gap >>= 1, s++) {
        if (s == 0)
            wide_stage(a, n, m, gap, tw, &c, kind, 0, 1, 1);
        else if (s % 3 == 0)
            wide_stage(a, n, m, gap, tw, &c, kind, 0, 1, 0);
        else
            wide_stage(a, n, m, gap, tw, &c, kind, 0, 0, 0);
    }
    if (s % 3 == 0)
        narrow_stage(a, n, 2, tw, &c, kind, 0, 1, 0, 0, 0);
    else
        narrow_stage(a, n, 2, tw, &c, kind, 0, 0, 0, 0, 0);
    s++;
    if (s % 3 == 0)
        narrow_stage(a, n, 1, tw, &c, kind, 0, 1, 0, 1, !lazy);
    else
        narrow_stage(a, n, 1, tw, &c, kind, 0, 0, 0, 1, !lazy);
}

/* FP inverse: the sum is re-centred on even stages, so every operand that is
 * multiplied has |value| <= 4q. */
INLINE void inverse_impl(const ntt_tables_t *t, uint64_t *a, int lazy, const int kind)
{
    const size_t n = t->n;
    const ctx_t c = make_ctx(t->mod.value);
    const tw_t tw = kind == KIND_FP ? (tw_t){(const uint64_t *)t->iroot_fp, (const uint64_t *)t->iroot_fpq}
                                    : (tw_t){t->iroot, t->iroot_shoup};
    narrow_stage(a, n, 1, tw, &c, kind, 1, 1, 1, 0, 0);
    narrow_stage(a, n, 2, tw, &c, kind, 1, 0, 0, 0, 0);
    int s = 2;
    size_t m = n >> 3, gap = 4;
    for (; m > 1; m >>= 1, gap <<= 1, s++) {
        if (s % 2 == 0)
            wide_stage(a, n, m, gap, tw, &c, kind, 1, 1, 0);
        else
            wide_stage(a, n, m, gap, tw, &c, kind, 1, 0, 0);
    }
    /* Last stage: 1/N folded in; both outputs are products. */
    v4 ni, nip, lw, lwp;
    if (kind == KIND_FP) {
        ni = asi(_mm256_set1_pd(t->n_inv_fp));
        nip = asi(_mm256_set1_pd(t->n_inv_fpq));
        lw = asi(_mm256_set1_pd(t->last_iroot_fp));
        lwp = asi(_mm256_set1_pd(t->last_iroot_fpq));
    } else {
        ni = bcast(t->n_inv);
        nip = bcast(t->n_inv_shoup);
        lw = bcast(t->last_iroot);
        lwp = bcast(t->last_iroot_shoup);
    }
    uint64_t *xp = a, *yp = a + gap;
    for (size_t j = 0; j < gap; j += 4) {
        v4 u = load(xp + j), v = load(yp + j), s0, d0;
        if (kind == KIND_FP) {
            v4d ud = asd(u), vd = asd(v);
            s0 = canon_fp(mulmod_fp(_mm256_add_pd(ud, vd), asd(ni), asd(nip), &c), &c);
            d0 = canon_fp(mulmod_fp(_mm256_sub_pd(ud, vd), asd(lw), asd(lwp), &c), &c);
        } else {
            s0 = mulshoup(add(u, v), ni, nip, &c);
            d0 = mulshoup(add(sub(u, v), c.two_q), lw, lwp, &c);
            if (!lazy) {
                s0 = csub(s0, c.q, &c, kind == KIND_WIDE);
                d0 = csub(d0, c.q, &c, kind == KIND_WIDE);
            }
        }
        store(xp + j, s0);
        store(yp + j, d0);
    }
}

static int kind_of(const ntt_modulus_t *m)
{
    if (m->bits <= NTT_IFMA_MAX_BITS) return KIND_FP;
    return m->bits <= 61 ? KIND_INT : KIND_WIDE;
}

static void forward_avx2(const ntt_tables_t *t, uint64_t *a, int lazy)
{
    if (t->n < 8) {
        ntt_ops_scalar.forward(t, a, lazy);
        return;
    }
    switch (kind_of(&t->mod)) {
    case KIND_FP: forward_impl(t, a, lazy, KIND_FP); break;
    case KIND_INT: forward_impl(t, a, lazy, KIND_INT); break;
    default: forward_impl(t, a, lazy, KIND_WIDE); break;
    }
}

static void inverse_avx2(const ntt_tables_t *t, uint64_t *a, int lazy)
{
    if (t->n < 8) {
        ntt_ops_scalar.inverse(t, a, lazy);
        return;
    }
    switch (kind_of(&t->mod)) {
    case KIND_FP: inverse_impl(t, a, lazy, KIND_FP); break;
    case KIND_INT: inverse_impl(t, a, lazy, KIND_INT); break;
    default: inverse_impl(t, a, lazy, KIND_WIDE); break;
    }
}

/* ---- element-wise kernels: 4 lanes, the tail (n % 4 words) on scalar code ---- */

static void add_avx2(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                     const ntt_modulus_t *m)
{
    const ctx_t c = make_ctx(m->value);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) store(r + i, csub(add(load(a + i), load(b + i)), c.q, &c, 0));
    ntt_ops_scalar.add(r + i, a + i, b + i, n - i, m);
}

static void sub_avx2(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                     const ntt_modulus_t *m)
{
    const ctx_t c = make_ctx(m->value);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4 d = sub(load(a + i), load(b + i)); /* negative (as signed) when a < b */
        store(r + i, asi(_mm256_blendv_pd(asd(d), asd(add(d, c.q)), asd(d))));
    }
    ntt_ops_scalar.sub(r + i, a + i, b + i, n - i, m);
}

static void neg_avx2(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m)
{
    const v4 q = bcast(m->value), z = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4 x = load(a + i);
        store(r + i, _mm256_andnot_si256(_mm256_cmpeq_epi64(x, z), sub(q, x)));
    }
    ntt_ops_scalar.neg(r + i, a + i, n - i, m);
}

/* a*b mod q in [0, q), a, b < q < 2^50, in doubles. */
INLINE v4 mulmod_small(v4 a, v4 b, const ctx_t *c)
{
    v4d x = u2d(a), y = u2d(b);
    v4d h = _mm256_mul_pd(x, y);
    v4d l = _mm256_fmsub_pd(x, y, h);
    v4d qt = rnd(_mm256_mul_pd(h, c->qinv));
    v4d r = _mm256_add_pd(_mm256_fnmadd_pd(qt, c->qd, h), l); /* |r| < q */
    v4d neg = _mm256_cmp_pd(r, _mm256_setzero_pd(), _CMP_LT_OQ);
    return d2u(_mm256_add_pd(r, _mm256_and_pd(neg, c->qd)));
}

/* a*b mod q for a, b < q < 2^62: Barrett on the 128-bit product with
 * x = floor(ab / 2^s), s = bits(q) - 1, mu = floor(2^(s+64) / q). */
typedef struct {
    v4 mu, mu_hi;
    __m128i s, ls;
} barrett_t;

static barrett_t make_barrett(const ntt_modulus_t *m)
{
    barrett_t b;
    int s = m->bits - 1;
    uint64_t mu = (uint64_t)(((ntt_u128)1 << (s + 64)) / m->value);
    b.mu = bcast(mu);
    b.mu_hi = bcast(mu >> 32);
    b.s = _mm_cvtsi32_si128(s);
    b.ls = _mm_cvtsi32_si128(64 - s);
    return b;
}

INLINE v4 mulmod_big(v4 a, v4 b, const barrett_t *bc, const ctx_t *c)
{
    v4 a_hi = _mm256_srli_epi64(a, 32), b_hi = _mm256_srli_epi64(b, 32);
    v4 lo = mullo64(a, a_hi, b, b_hi), hi = mulhi64(a, a_hi, b, b_hi);
    v4 x = _mm256_or_si256(_mm256_sll_epi64(hi, bc->ls), _mm256_srl_epi64(lo, bc->s));
    v4 qh = mulhi64(x, _mm256_srli_epi64(x, 32), bc->mu, bc->mu_hi);
    v4 r = sub(lo, mullo64(qh, _mm256_srli_epi64(qh, 32), c->q, c->q_hi)); /* r < 3q */
    return csub(csub(r, c->two_q, c, 1), c->q, c, 1);
}

INLINE void mul_impl(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *cc,
                     size_t n, const ntt_modulus_t *m, const int small)
{
    const ctx_t c = make_ctx(m->value);
    const barrett_t bc = make_barrett(m);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4 p = small ? mulmod_small(load(a + i), load(b + i), &c)
                     : mulmod_big(load(a + i), load(b + i), &bc, &c);
        if (cc) p = csub(add(p, load(cc + i)), c.q, &c, 0);
        store(r + i, p);
    }
    if (cc)
        ntt_ops_scalar.fma(r + i, a + i, b + i, cc + i, n - i, m);
    else
        ntt_ops_scalar.mul(r + i, a + i, b + i, n - i, m);
}

/* Barrett needs q not a power of two (mu < 2^64). */
static int small_q(const ntt_modulus_t *m) { return m->bits <= NTT_IFMA_MAX_BITS; }
static int pow2_q(const ntt_modulus_t *m) { return (m->value & (m->value - 1)) == 0; }

static void mul_avx2(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                     const ntt_modulus_t *m)
{
    if (small_q(m))
        mul_impl(r, a, b, NULL, n, m, 1);
    else if (!pow2_q(m))
        mul_impl(r, a, b, NULL, n, m, 0);
    else
        ntt_ops_scalar.mul(r, a, b, n, m);
}

static void fma_avx2(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *c,
                     size_t n, const ntt_modulus_t *m)
{
    if (small_q(m))
        mul_impl(r, a, b, c, n, m, 1);
    else if (!pow2_q(m))
        mul_impl(r, a, b, c, n, m, 0);
    else
        ntt_ops_scalar.fma(r, a, b, c, n, m);
}

INLINE void mul_scalar_impl(uint64_t *r, const uint64_t *a, uint64_t s, const uint64_t *cc,
                            size_t n, const ntt_modulus_t *m)
{
    const ctx_t c = make_ctx(m->value);
    const v4 w = bcast(s), wp = bcast(ntt_shoup(s, m->value));
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4 p = csub(mulshoup(load(a + i), w, wp, &c), c.q, &c, 0);
        if (cc) p = csub(add(p, load(cc + i)), c.q, &c, 0);
        store(r + i, p);
    }
    if (cc)
        ntt_ops_scalar.fma_scalar(r + i, a + i, s, cc + i, n - i, m);
    else
        ntt_ops_scalar.mul_scalar(r + i, a + i, s, n - i, m);
}

static void mul_scalar_avx2(uint64_t *r, const uint64_t *a, uint64_t s, size_t n,
                            const ntt_modulus_t *m)
{
    mul_scalar_impl(r, a, s, NULL, n, m);
}

static void fma_scalar_avx2(uint64_t *r, const uint64_t *a, uint64_t s, const uint64_t *c,
                            size_t n, const ntt_modulus_t *m)
{
    mul_scalar_impl(r, a, s, c, n, m);
}

static void reduce_avx2(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m)
{
    /* floor(x * floor(2^64/q) / 2^64) >= floor(x/q) - 1: r < 2q < 2^63. */
    const ctx_t c = make_ctx(m->value);
    const v4 mu = bcast(m->barrett_hi), mu_hi = bcast(m->barrett_hi >> 32);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4 x = load(a + i);
        v4 qh = mulhi64(x, _mm256_srli_epi64(x, 32), mu, mu_hi);
        v4 rr = sub(x, mullo64(qh, _mm256_srli_epi64(qh, 32), c.q, c.q_hi));
        store(r + i, csub(rr, c.q, &c, 0));
    }
    ntt_ops_scalar.reduce(r + i, a + i, n - i, m);
}

/* ---- sums of products (ntt_vec_dot2x2) ----------------------------------------- */

/* One term of a lazy sum in doubles (q < 2^50): a*b - round(a*b/q)*q as an
 * exact integer, |t| < q (as mulmod_small, without its final correction). */
INLINE v4d dot_term_fp(v4d a, v4d b, const ctx_t *c)
{
    v4d h = _mm256_mul_pd(a, b);
    v4d l = _mm256_fmsub_pd(a, b, h);
    v4d qt = rnd(_mm256_mul_pd(h, c->qinv));
    return _mm256_add_pd(_mm256_fnmadd_pd(qt, c->qd, h), l);
}

/* A sum of up to 8 terms (|s| < 8q < 2^53, exact) to [0, q). */
INLINE v4 dot_final_fp(v4d s, const ctx_t *c)
{
    v4d r = center_fp(s, c);
    v4d neg = _mm256_cmp_pd(r, _mm256_setzero_pd(), _CMP_LT_OQ);
    return d2u(_mm256_add_pd(r, _mm256_and_pd(neg, c->qd)));
}

/* The full 128-bit product of a and b (a_hi = a >> 32, b_hi = b >> 32). */
INLINE void mul128(v4 a, v4 a_hi, v4 b, v4 b_hi, v4 *lo, v4 *hi)
{
    const v4 m32 = bcast(0xffffffffULL);
    v4 p00 = _mm256_mul_epu32(a, b), p01 = _mm256_mul_epu32(a, b_hi);
    v4 p10 = _mm256_mul_epu32(a_hi, b), p11 = _mm256_mul_epu32(a_hi, b_hi);
    *lo = add(p00, _mm256_slli_epi64(add(p01, p10), 32));
    v4 t = add(p10, _mm256_srli_epi64(p00, 32));
    v4 mid = add(p01, _mm256_and_si256(t, m32));
    *hi = add(add(p11, _mm256_srli_epi64(t, 32)), _mm256_srli_epi64(mid, 32));
}

/* (hi, lo) += (h, l), as 128-bit integers. */
INLINE void add128(v4 *lo, v4 *hi, v4 l, v4 h, const ctx_t *c)
{
    v4 sum = add(*lo, l);
    v4 carry = _mm256_cmpgt_epi64(_mm256_xor_si256(l, c->sign), _mm256_xor_si256(sum, c->sign));
    *lo = sum;
    *hi = sub(add(*hi, h), carry);
}

/* (hi, lo) += a*b. */
INLINE void mac128(v4 a, v4 a_hi, v4 b, v4 b_hi, v4 *lo, v4 *hi, const ctx_t *c)
{
    v4 pl, ph;
    mul128(a, a_hi, b, b_hi, &pl, &ph);
    add128(lo, hi, pl, ph, c);
}

/* hi * 2^64 + lo mod q, for a value below 2^(s + 64) (Barrett as mulmod_big). */
INLINE v4 reduce128(v4 lo, v4 hi, const barrett_t *bc, const ctx_t *c)
{
    v4 x = _mm256_or_si256(_mm256_sll_epi64(hi, bc->ls), _mm256_srl_epi64(lo, bc->s));
    v4 qh = mulhi64(x, _mm256_srli_epi64(x, 32), bc->mu, bc->mu_hi);
    v4 r = sub(lo, mullo64(qh, _mm256_srli_epi64(qh, 32), c->q, c->q_hi)); /* r < 3q */
    return csub(csub(r, c->two_q, c, 1), c->q, c, 1);
}

/* s2 2^60 + s1 2^30 + s0 mod q (a sum below 2^(bits + 63)). */
INLINE v4 join_reduce(v4 s0, v4 s1, v4 s2, const barrett_t *bc, const ctx_t *c)
{
    v4 lo = s0, hi = _mm256_setzero_si256();
    add128(&lo, &hi, _mm256_slli_epi64(s1, 30), _mm256_srli_epi64(s1, 34), c);
    add128(&lo, &hi, _mm256_slli_epi64(s2, 60), _mm256_srli_epi64(s2, 4), c);
    return reduce128(lo, hi, bc, c);
}

/* The sums of ntt_vec_dot2x2 (nx = 2: x0 y0, x1 y0, x0 y1, x1 y1) or
 * ntt_vec_dot1x2 (nx = 1: x0 y0, x0 y1): output t is x[t % nx] y[t / nx]. */
INLINE void dot_avx2(uint64_t *const *r, const uint64_t *const *x0, const uint64_t *const *x1,
                     const uint64_t *const *y0, const uint64_t *const *y1, size_t k, size_t n,
                     const ntt_modulus_t *m, int accumulate, const int nx)
{
    const ctx_t c = make_ctx(m->value);
    const int nout = 2 * nx;
    size_t i = 0;
    if (pow2_q(m)) {
        /* Barrett needs mu < 2^64: the scalar loop below does it all. */
    } else if (small_q(m)) {
        /* Doubles: the accumulator and 7 terms stay below 8q < 2^53. */
        const size_t group = 7;
        for (; i + 4 <= n; i += 4) {
            v4d s[4];
            for (int t = 0; t < nout; t++) s[t] = accumulate ? u2d(load(r[t] + i)) : _mm256_setzero_pd();
            for (size_t j = 0, g = 0; j < k; j++, g++) {
                if (g == group) {
                    for (int t = 0; t < nout; t++) s[t] = center_fp(s[t], &c);
                    g = 0;
                }
                v4d x[2], y[2];
                x[0] = u2d(load(x0[j] + i));
                if (nx == 2) x[1] = u2d(load(x1[j] + i));
                y[0] = u2d(load(y0[j] + i));
                y[1] = u2d(load(y1[j] + i));
                for (int t = 0; t < nout; t++) s[t] = _mm256_add_pd(s[t], dot_term_fp(x[t % nx], y[t / nx], &c));
            }
            for (int t = 0; t < nout; t++) store(r[t] + i, dot_final_fp(s[t], &c));
        }
    } else if (m->bits <= 60) {
        /* 30-bit halves, a = a1 2^30 + a0: a product is three 64-bit sums
         * (a1 b1, a1 b0 + a0 b1, a0 b0) with no carries for 8 terms, put
         * together once per 8 (below 8 q^2 + q < 2^(bits + 63), as the
         * Barrett step needs). */
        const barrett_t bc = make_barrett(m);
        const size_t group = 8;
        const v4 zero = _mm256_setzero_si256(), m30 = bcast((1ULL << 30) - 1);
        for (; i + 4 <= n; i += 4) {
            v4 s0[4], s1[4], s2[4];
            for (int t = 0; t < nout; t++) {
                s0[t] = accumulate ? load(r[t] + i) : zero;
                s1[t] = s2[t] = zero;
            }
            for (size_t j = 0, g = 0; j < k; j++, g++) {
                if (g == group) {
                    for (int t = 0; t < nout; t++) {
                        s0[t] = join_reduce(s0[t], s1[t], s2[t], &bc, &c);
                        s1[t] = s2[t] = zero;
                    }
                    g = 0;
                }
                v4 xl[2], xh[2], yl[2], yh[2];
                for (int q = 0; q < nx; q++) {
                    v4 v = load((q ? x1 : x0)[j] + i);
                    xl[q] = _mm256_and_si256(v, m30);
                    xh[q] = _mm256_srli_epi64(v, 30);
                }
                for (int q = 0; q < 2; q++) {
                    v4 v = load((q ? y1 : y0)[j] + i);
                    yl[q] = _mm256_and_si256(v, m30);
                    yh[q] = _mm256_srli_epi64(v, 30);
                }
                for (int t = 0; t < nout; t++) {
                    const v4 p0 = xl[t % nx], p1 = xh[t % nx], q0 = yl[t / nx], q1 = yh[t / nx];
                    s0[t] = add(s0[t], _mm256_mul_epu32(p0, q0));
                    s1[t] = add(s1[t], add(_mm256_mul_epu32(p0, q1), _mm256_mul_epu32(p1, q0)));
                    s2[t] = add(s2[t], _mm256_mul_epu32(p1, q1));
                }
            }
            for (int t = 0; t < nout; t++) store(r[t] + i, join_reduce(s0[t], s1[t], s2[t], &bc, &c));
        }
    } else {
        /* 61 and 62 bits: full 128-bit products, 2^(63 - bits) - 1 of them
         * (3 or 1) between reductions. */
        const barrett_t bc = make_barrett(m);
        const size_t group = ((size_t)1 << (63 - m->bits)) - 1;
        const v4 zero = _mm256_setzero_si256();
        for (; i + 4 <= n; i += 4) {
            v4 lo[4], hi[4];
            for (int t = 0; t < nout; t++) {
                lo[t] = accumulate ? load(r[t] + i) : zero;
                hi[t] = zero;
            }
            for (size_t j = 0, g = 0; j < k; j++, g++) {
                if (g == group) {
                    for (int t = 0; t < nout; t++) {
                        lo[t] = reduce128(lo[t], hi[t], &bc, &c);
                        hi[t] = zero;
                    }
                    g = 0;
                }
                v4 xv[2], xh[2], yv[2], yh[2];
                for (int q = 0; q < nx; q++) {
                    xv[q] = load((q ? x1 : x0)[j] + i);
                    xh[q] = _mm256_srli_epi64(xv[q], 32);
                }
                for (int q = 0; q < 2; q++) {
                    yv[q] = load((q ? y1 : y0)[j] + i);
                    yh[q] = _mm256_srli_epi64(yv[q], 32);
                }
                for (int t = 0; t < nout; t++)
                    mac128(xv[t % nx], xh[t % nx], yv[t / nx], yh[t / nx], &lo[t], &hi[t], &c);
            }
            for (int t = 0; t < nout; t++) store(r[t] + i, reduce128(lo[t], hi[t], &bc, &c));
        }
    }
    const size_t group = ntt_dot_group(m);
    for (; i < n; i++) ntt_dot_at(r, x0, nx == 2 ? x1 : NULL, y0, y1, k, i, m, accumulate, group);
}

static void dot2x2_avx2(uint64_t *const r[4], const uint64_t *const *x0, const uint64_t *const *x1,
                        const uint64_t *const *y0, const uint64_t *const *y1, size_t k, size_t n,
                        const ntt_modulus_t *m, int accumulate)
{
    if (x1)
        dot_avx2(r, x0, x1, y0, y1, k, n, m, accumulate, 2);
    else
        dot_avx2(r, x0, NULL, y0, y1, k, n, m, accumulate, 1);
}

/* ---- gathers by an index table (ntt_vec_permute2) ------------------------------ */

/* A group of four outputs whose indices share one aligned group of four
 * sources is one load and one shuffle (vpermd: 64-bit lane l takes 32-bit
 * lanes 2 idx_l and 2 idx_l + 1); any other group is gathered a word at a
 * time. */
void ntt_permute2_avx2(uint64_t *d0, uint64_t *d1, const uint64_t *s0, const uint64_t *s1, const uint32_t *idx,
                       size_t n)
{
    const __m128i low2 = _mm_set1_epi32(3), high = _mm_set1_epi32(~3);
    const v4 one = bcast(1);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m128i s = _mm_loadu_si128((const __m128i *)(idx + i));
        const uint32_t base = (uint32_t)_mm_cvtsi128_si32(s) & ~3u;
        const __m128i same = _mm_cmpeq_epi32(_mm_and_si128(s, high), _mm_set1_epi32((int)base));
        if (_mm_movemask_epi8(same) != 0xffff) {
            for (size_t j = i; j < i + 4; j++) {
                d0[j] = s0[idx[j]];
                d1[j] = s1[idx[j]];
            }
            continue;
        }
        const v4 lane = _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm_and_si128(s, low2)), 1);
        const v4 ctl = _mm256_or_si256(lane, _mm256_slli_epi64(add(lane, one), 32));
        store(d0 + i, _mm256_permutevar8x32_epi32(load(s0 + base), ctl));
        store(d1 + i, _mm256_permutevar8x32_epi32(load(s1 + base), ctl));
    }
    for (; i < n; i++) {
        d0[i] = s0[idx[i]];
        d1[i] = s1[idx[i]];
    }
}

const ntt_ops_t ntt_ops_avx2 = {
    .id = NTT_SIMD_AVX2,
    .name = "avx2",
    .forward = forward_avx2,
    .inverse = inverse_avx2,
    .add = add_avx2,
    .sub = sub_avx2,
    .neg = neg_avx2,
    .mul = mul_avx2,
    .mul_scalar = mul_scalar_avx2,
    .fma = fma_avx2,
    .fma_scalar = fma_scalar_avx2,
    .reduce = reduce_avx2,
    .dot2x2 = dot2x2_avx2,
    .permute2 = ntt_permute2_avx2,
};
