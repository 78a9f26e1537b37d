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

/* How a butterfly multiplies by a twiddle (the `ifma`/`kind` argument of the
 * kernels below, a compile-time constant at each call site):
 *   K_WIDE: q < 2^62, exact 64-bit Shoup; lazy values below 4q.
 *   K_IFMA: q < 2^50, 52-bit Shoup on IFMA; lazy values below 4q.
 *   K_WIDE_LAZY (avx512r4 only): q < 2^60, 64-bit Shoup whose quotient drops
 *     the low partial products (3 multiplies, not 4; up to 2 short, so the
 *     product is below 4q, not 2q); forward values stay below 8q and inverse
 *     values below 4q, twice the usual bounds, which 2^64 > 16q leaves room for. */
enum { K_WIDE = 0, K_IFMA = 1, K_WIDE_LAZY = 2 };
#define K_WIDE_LAZY_MAX_BITS 60

typedef struct {
    v8 q, two_q, negq52, mask52;
    v8 half; /* a butterfly's bound: 2q, or 4q for K_WIDE_LAZY */
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

INLINE consts_t make_consts_kind(uint64_t q, const int kind)
{
    consts_t c;
    c.q = bcast(q);
    c.two_q = bcast(2 * q);
    c.half = bcast(kind == K_WIDE_LAZY ? 4 * q : 2 * q);
    c.negq52 = bcast(((1ULL << 52) - q) & ((1ULL << 52) - 1));
    c.mask52 = bcast((1ULL << 52) - 1);
    return c;
}

INLINE consts_t make_consts(uint64_t q) { return make_consts_kind(q, K_WIDE); }

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

/* hi(a*b) - e, e in {0, 1, 2}: the three upper partial products only. */
INLINE v8 mulhi64_lazy(v8 a, v8 b, v8 b_hi)
{
    v8 a_hi = _mm512_srli_epi64(a, 32);
    v8 p01 = _mm512_mul_epu32(a, b_hi);
    v8 p10 = _mm512_mul_epu32(a_hi, b);
    v8 p11 = _mm512_mul_epu32(a_hi, b_hi);
    return add(add(p11, _mm512_srli_epi64(p01, 32)), _mm512_srli_epi64(p10, 32));
}

/* y*w mod q in [0, 2q): Shoup with wp = floor(w*2^52/q) (ifma, y < 2^52) or
 * wp = floor(w*2^64/q) (64-bit, any y); in [0, 4q) for K_WIDE_LAZY. */
INLINE v8 mulshoup(v8 y, v8 w, v8 wp, v8 wp_hi, const consts_t *c, const int ifma)
{
    if (ifma == K_WIDE_LAZY) {
        v8 qh = mulhi64_lazy(y, wp, wp_hi);
        return sub(_mm512_mullo_epi64(y, w), _mm512_mullo_epi64(qh, c->q));
    }
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

/* Forward (Cooley-Tukey) butterfly: x, y < 2*half in and out (half = 2q:
 * below 4q; K_WIDE_LAZY, half = 4q: below 8q). */
INLINE void fwd_bfly(v8 *x, v8 *y, v8 w, v8 wp, v8 wph, const consts_t *c, const int ifma)
{
    v8 u = csub(*x, c->half);
    v8 v = mulshoup(*y, w, wp, wph, c, ifma);
    *x = add(u, v);
    *y = add(sub(u, v), c->half);
}

/* Inverse (Gentleman-Sande) butterfly: x, y < half in and out. */
INLINE void inv_bfly(v8 *x, v8 *y, v8 w, v8 wp, v8 wph, const consts_t *c, const int ifma)
{
    v8 u = *x, v = *y;
    *x = csub(add(u, v), c->half);
    *y = mulshoup(add(sub(u, v), c->half), w, wp, wph, c, ifma);
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

/* ---- avx512r4: radix-4, cache-blocked transforms ------------------------------
 * The same butterflies as above, scheduled for fewer passes over memory (Zen 5,
 * AMD family 26, runs 512-bit operations at full width, so the one-stage-per-
 * pass kernels above wait on loads and stores there): two stages per pass
 * (four vectors in registers), the stages whose blocks fit in R4_BLOCK words
 * done block by block while the block is in L1, and the last four forward
 * (first four inverse) stages done together on 16 words in registers. */
#define R4_BLOCK 4096

/* The radix-4 forward kernel on `cols` adjacent columns of 8 words at p + j
 * (rows g apart), side by side (see LAST3_WAYS). */
INLINE void fwd_r4_cols(uint64_t *p, size_t j, size_t g, const int cols, v8 w1, v8 wp1,
                        v8 wph1, v8 w2, v8 wp2, v8 wph2, v8 w3, v8 wp3, v8 wph3,
                        const consts_t *c, const int ifma)
{
    v8 x[2][4];
    for (int k = 0; k < cols; k++)
        for (int r = 0; r < 4; r++) x[k][r] = load(p + r * g + j + 8 * (size_t)k);
    for (int k = 0; k < cols; k++) {
        fwd_bfly(&x[k][0], &x[k][2], w1, wp1, wph1, c, ifma);
        fwd_bfly(&x[k][1], &x[k][3], w1, wp1, wph1, c, ifma);
    }
    for (int k = 0; k < cols; k++) {
        fwd_bfly(&x[k][0], &x[k][1], w2, wp2, wph2, c, ifma);
        fwd_bfly(&x[k][2], &x[k][3], w3, wp3, wph3, c, ifma);
    }
    for (int k = 0; k < cols; k++)
        for (int r = 0; r < 4; r++) store(p + r * g + j + 8 * (size_t)k, x[k][r]);
}

/* Forward stages (m, 2g) and (2m, g) over len words at a + off (g >= 8). */
INLINE void fwd_r4(uint64_t *a, size_t off, size_t len, size_t m, size_t g, const uint64_t *wt,
                   const uint64_t *wpt, const consts_t *c, const int ifma)
{
    for (size_t s = off; s < off + len; s += 4 * g) {
        const size_t i = s / (4 * g);
        const v8 w1 = bcast(wt[m + i]), wp1 = bcast(wpt[m + i]);
        const v8 w2 = bcast(wt[2 * m + 2 * i]), wp2 = bcast(wpt[2 * m + 2 * i]);
        const v8 w3 = bcast(wt[2 * m + 2 * i + 1]), wp3 = bcast(wpt[2 * m + 2 * i + 1]);
        const v8 wph1 = _mm512_srli_epi64(wp1, 32), wph2 = _mm512_srli_epi64(wp2, 32);
        const v8 wph3 = _mm512_srli_epi64(wp3, 32);
        uint64_t *p = a + s;
        if (g >= 16)
            for (size_t j = 0; j < g; j += 16)
                fwd_r4_cols(p, j, g, 2, w1, wp1, wph1, w2, wp2, wph2, w3, wp3, wph3, c, ifma);
        else
            for (size_t j = 0; j < g; j += 8)
                fwd_r4_cols(p, j, g, 1, w1, wp1, wph1, w2, wp2, wph2, w3, wp3, wph3, c, ifma);
    }
}

/* One forward stage (m, g) over len words at a + off (g >= 8). */
INLINE void fwd_r2(uint64_t *a, size_t off, size_t len, size_t m, size_t g, const uint64_t *wt,
                   const uint64_t *wpt, const consts_t *c, const int ifma)
{
    for (size_t s = off; s < off + len; s += 2 * g) {
        const size_t i = s / (2 * g);
        const v8 w = bcast(wt[m + i]), wp = bcast(wpt[m + i]);
        const v8 wph = _mm512_srli_epi64(wp, 32);
        uint64_t *p = a + s;
        for (size_t j = 0; j < g; j += 8) {
            v8 x = load(p + j), y = load(p + g + j);
            fwd_bfly(&x, &y, w, wp, wph, c, ifma);
            store(p + j, x);
            store(p + g + j, y);
        }
    }
}

/* Lane orders between the last three stages, on 16 words w0..w15 held in
 * two vectors (x, y): gap 4 has x = 0-3,8-11 and y = 4-7,12-15; gap 2 has
 * x = 0,4,8,12,1,5,9,13 and y = 2,6,10,14,3,7,11,15; gap 1 has x = the even
 * words. One pair of two-source permutes moves between neighbouring orders,
 * and the orders are chosen so that every stage's twiddles are loads (plain
 * or broadcast), never permutes: gap 4 wants t0 x4, t1 x4; gap 2 wants
 * t0..t3 twice; gap 1 wants t0..t7. */
INLINE v8 twiddles_gap4(const uint64_t *t)
{
    return _mm512_mask_broadcastq_epi64(bcast(t[0]), 0xf0, _mm_loadl_epi64((const __m128i *)(t + 1)));
}

INLINE v8 twiddles_gap2(const uint64_t *t)
{
    return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)t));
}

INLINE void perm2(v8 *x, v8 *y, v8 ix, v8 iy)
{
    v8 a = *x, b = *y;
    *x = _mm512_permutex2var_epi64(a, ix, b);
    *y = _mm512_permutex2var_epi64(a, iy, b);
}

/* Forward stages with gaps 8, 4, 2, 1 over len words at a + off (n words in
 * all); outputs reduced to [0, q) unless lazy. LAST3_WAYS chunks of 16
 * words go through each step side by side: the four dependent butterflies
 * of one chunk are a long chain, and interleaving independent chunks in
 * program order is what lets the out-of-order core overlap them. */
#define LAST3_WAYS 8
INLINE void fwd_last3(uint64_t *a, size_t off, size_t len, size_t n, const uint64_t *wt,
                      const uint64_t *wpt, const consts_t *c, const int ifma, const int lazy)
{
    const v8 i42x = idx8(0, 8, 4, 12, 1, 9, 5, 13), i42y = idx8(2, 10, 6, 14, 3, 11, 7, 15);
    /* gap 2 -> gap 1 and gap 1 -> natural are the same permutation */
    const v8 i21x = idx8(0, 8, 1, 9, 2, 10, 3, 11), i21y = idx8(4, 12, 5, 13, 6, 14, 7, 15);
    const v8 i10x = i21x, i10y = i21y;
    const int ways = len >= 16 * LAST3_WAYS ? LAST3_WAYS : 1;
    for (size_t s0 = off; s0 < off + len; s0 += 16 * (size_t)ways) {
        v8 x[LAST3_WAYS], y[LAST3_WAYS];
        for (int k = 0; k < ways; k++) {
            const size_t s = s0 + 16 * (size_t)k;
            v8 v0 = load(a + s), v1 = load(a + s + 8);
            v8 w = bcast(wt[n / 16 + s / 16]), wp = bcast(wpt[n / 16 + s / 16]);
            fwd_bfly(&v0, &v1, w, wp, _mm512_srli_epi64(wp, 32), c, ifma);
            split(v0, v1, 4, &x[k], &y[k]);
        }
        for (int k = 0; k < ways; k++) {
            const size_t s = s0 + 16 * (size_t)k;
            v8 w = twiddles_gap4(wt + n / 8 + s / 8), wp = twiddles_gap4(wpt + n / 8 + s / 8);
            fwd_bfly(&x[k], &y[k], w, wp, _mm512_srli_epi64(wp, 32), c, ifma);
        }
        for (int k = 0; k < ways; k++) perm2(&x[k], &y[k], i42x, i42y);
        for (int k = 0; k < ways; k++) {
            const size_t s = s0 + 16 * (size_t)k;
            v8 w = twiddles_gap2(wt + n / 4 + s / 4), wp = twiddles_gap2(wpt + n / 4 + s / 4);
            fwd_bfly(&x[k], &y[k], w, wp, _mm512_srli_epi64(wp, 32), c, ifma);
        }
        for (int k = 0; k < ways; k++) perm2(&x[k], &y[k], i21x, i21y);
        for (int k = 0; k < ways; k++) {
            const size_t s = s0 + 16 * (size_t)k;
            v8 w = load(wt + n / 2 + s / 2), wp = load(wpt + n / 2 + s / 2);
            fwd_bfly(&x[k], &y[k], w, wp, _mm512_srli_epi64(wp, 32), c, ifma);
            if (ifma == K_WIDE_LAZY) { /* below 8q: to 4q, the lazy bound */
                x[k] = csub(x[k], c->half);
                y[k] = csub(y[k], c->half);
            }
            if (!lazy) {
                x[k] = csub(csub(x[k], c->two_q), c->q);
                y[k] = csub(csub(y[k], c->two_q), c->q);
            }
        }
        for (int k = 0; k < ways; k++) {
            const size_t s = s0 + 16 * (size_t)k;
            perm2(&x[k], &y[k], i10x, i10y);
            store(a + s, x[k]);
            store(a + s + 8, y[k]);
        }
    }
}

INLINE void forward_r4_impl(const ntt_tables_t *t, uint64_t *a, int lazy, const int ifma)
{
    const size_t n = t->n, blk = n < R4_BLOCK ? n : R4_BLOCK;
    const consts_t c = make_consts_kind(t->mod.value, ifma);
    const uint64_t *wt = t->root, *wpt = ifma == K_IFMA ? t->root_shoup52 : t->root_shoup;
    size_t m = 1, g = n >> 1;
    /* Stages with gaps n/2 ... 16 go in pairs; an odd one out is the first,
     * whose long rows make a single stage cheapest. */
    if ((t->log_n - 4) & 1) {
        fwd_r2(a, 0, n, m, g, wt, wpt, &c, ifma);
        m <<= 1, g >>= 1;
    }
    /* Pairs whose blocks are larger than blk: over the whole array. */
    for (; 2 * g > blk; m <<= 2, g >>= 2) fwd_r4(a, 0, n, m, g / 2, wt, wpt, &c, ifma);
    /* The rest, block by block. */
    for (size_t off = 0; off < n; off += blk) {
        size_t mm = m, gg = g;
        for (; gg >= 32; mm <<= 2, gg >>= 2) fwd_r4(a, off, blk, mm, gg / 2, wt, wpt, &c, ifma);
        if (lazy)
            fwd_last3(a, off, blk, n, wt, wpt, &c, ifma, 1);
        else
            fwd_last3(a, off, blk, n, wt, wpt, &c, ifma, 0);
    }
}

/* The radix-4 inverse kernel on `cols` adjacent columns (as fwd_r4_cols). */
INLINE void inv_r4_cols(uint64_t *p, size_t j, size_t g, const int cols, v8 w1, v8 wp1,
                        v8 wph1, v8 w2, v8 wp2, v8 wph2, v8 w3, v8 wp3, v8 wph3,
                        const consts_t *c, const int ifma)
{
    v8 x[2][4];
    for (int k = 0; k < cols; k++)
        for (int r = 0; r < 4; r++) x[k][r] = load(p + r * g + j + 8 * (size_t)k);
    for (int k = 0; k < cols; k++) {
        inv_bfly(&x[k][0], &x[k][1], w1, wp1, wph1, c, ifma);
        inv_bfly(&x[k][2], &x[k][3], w2, wp2, wph2, c, ifma);
    }
    for (int k = 0; k < cols; k++) {
        inv_bfly(&x[k][0], &x[k][2], w3, wp3, wph3, c, ifma);
        inv_bfly(&x[k][1], &x[k][3], w3, wp3, wph3, c, ifma);
    }
    for (int k = 0; k < cols; k++)
        for (int r = 0; r < 4; r++) store(p + r * g + j + 8 * (size_t)k, x[k][r]);
}

/* Inverse stages (m, g) and (m/2, 2g) over len words at a + off (g >= 8, m >= 2). */
INLINE void inv_r4(uint64_t *a, size_t off, size_t len, size_t m, size_t g, const uint64_t *wt,
                   const uint64_t *wpt, const consts_t *c, const int ifma)
{
    for (size_t s = off; s < off + len; s += 4 * g) {
        const size_t k = s / (4 * g);
        const v8 w1 = bcast(wt[m + 2 * k]), wp1 = bcast(wpt[m + 2 * k]);
        const v8 w2 = bcast(wt[m + 2 * k + 1]), wp2 = bcast(wpt[m + 2 * k + 1]);
        const v8 w3 = bcast(wt[m / 2 + k]), wp3 = bcast(wpt[m / 2 + k]);
        const v8 wph1 = _mm512_srli_epi64(wp1, 32), wph2 = _mm512_srli_epi64(wp2, 32);
        const v8 wph3 = _mm512_srli_epi64(wp3, 32);
        uint64_t *p = a + s;
        if (g >= 16)
            for (size_t j = 0; j < g; j += 16)
                inv_r4_cols(p, j, g, 2, w1, wp1, wph1, w2, wp2, wph2, w3, wp3, wph3, c, ifma);
        else
            for (size_t j = 0; j < g; j += 8)
                inv_r4_cols(p, j, g, 1, w1, wp1, wph1, w2, wp2, wph2, w3, wp3, wph3, c, ifma);
    }
}

/* One inverse stage (m, g) over len words at a + off (g >= 8, m >= 2). */
INLINE void inv_r2(uint64_t *a, size_t off, size_t len, size_t m, size_t g, const uint64_t *wt,
                   const uint64_t *wpt, const consts_t *c, const int ifma)
{
    for (size_t s = off; s < off + len; s += 2 * g) {
        const size_t i = s / (2 * g);
        const v8 w = bcast(wt[m + i]), wp = bcast(wpt[m + i]);
        const v8 wph = _mm512_srli_epi64(wp, 32);
        uint64_t *p = a + s;
        for (size_t j = 0; j < g; j += 8) {
            v8 x = load(p + j), y = load(p + g + j);
            inv_bfly(&x, &y, w, wp, wph, c, ifma);
            store(p + j, x);
            store(p + g + j, y);
        }
    }
}

/* Inverse stages with gaps 1, 2, 4 (and 8 when with8) over len words at
 * a + off, LAST3_WAYS chunks side by side as in fwd_last3. */
INLINE void inv_first4(uint64_t *a, size_t off, size_t len, size_t n, const uint64_t *wt,
                       const uint64_t *wpt, const consts_t *c, const int ifma, const int with8)
{
    /* The forward's lane orders, walked backwards. */
    const v8 i01x = idx8(0, 2, 4, 6, 8, 10, 12, 14), i01y = idx8(1, 3, 5, 7, 9, 11, 13, 15);
    const v8 i12x = i01x, i12y = i01y; /* the same permutation */
    const v8 i24x = idx8(0, 4, 8, 12, 2, 6, 10, 14), i24y = idx8(1, 5, 9, 13, 3, 7, 11, 15);
    const int ways = len >= 16 * LAST3_WAYS ? LAST3_WAYS : 1;
    for (size_t s0 = off; s0 < off + len; s0 += 16 * (size_t)ways) {
        v8 x[LAST3_WAYS], y[LAST3_WAYS];
        for (int k = 0; k < ways; k++) {
            const size_t s = s0 + 16 * (size_t)k;
            x[k] = load(a + s);
            y[k] = load(a + s + 8);
            perm2(&x[k], &y[k], i01x, i01y);
        }
        for (int k = 0; k < ways; k++) {
            const size_t s = s0 + 16 * (size_t)k;
            v8 w = load(wt + n / 2 + s / 2), wp = load(wpt + n / 2 + s / 2);
            inv_bfly(&x[k], &y[k], w, wp, _mm512_srli_epi64(wp, 32), c, ifma);
        }
        for (int k = 0; k < ways; k++) perm2(&x[k], &y[k], i12x, i12y);
        for (int k = 0; k < ways; k++) {
            const size_t s = s0 + 16 * (size_t)k;
            v8 w = twiddles_gap2(wt + n / 4 + s / 4), wp = twiddles_gap2(wpt + n / 4 + s / 4);
            inv_bfly(&x[k], &y[k], w, wp, _mm512_srli_epi64(wp, 32), c, ifma);
        }
        for (int k = 0; k < ways; k++) perm2(&x[k], &y[k], i24x, i24y);
        for (int k = 0; k < ways; k++) {
            const size_t s = s0 + 16 * (size_t)k;
            v8 w = twiddles_gap4(wt + n / 8 + s / 8), wp = twiddles_gap4(wpt + n / 8 + s / 8);
            inv_bfly(&x[k], &y[k], w, wp, _mm512_srli_epi64(wp, 32), c, ifma);
        }
        for (int k = 0; k < ways; k++) {
            const size_t s = s0 + 16 * (size_t)k;
            v8 v0, v1;
            merge(x[k], y[k], 4, &v0, &v1);
            if (with8) {
                v8 w = bcast(wt[n / 16 + s / 16]), wp = bcast(wpt[n / 16 + s / 16]);
                inv_bfly(&v0, &v1, w, wp, _mm512_srli_epi64(wp, 32), c, ifma);
            }
            store(a + s, v0);
            store(a + s + 8, v1);
        }
    }
}

/* The last inverse stage (m = 1, gap n/2) with 1/N folded in, alone (m2 == 0)
 * or together with the stage before it (m = 2, gap n/4). */
INLINE void inv_last(const ntt_tables_t *t, uint64_t *a, int with_m2, const int lazy,
                     const uint64_t *wt, const uint64_t *wpt, const consts_t *c, const int ifma)
{
    const size_t n = t->n;
    const v8 ni = bcast(t->n_inv);
    const v8 nip = bcast(ifma == K_IFMA ? t->n_inv_shoup52 : t->n_inv_shoup);
    const v8 lw = bcast(t->last_iroot);
    const v8 lwp = bcast(ifma == K_IFMA ? t->last_iroot_shoup52 : t->last_iroot_shoup);
    const v8 nip_h = _mm512_srli_epi64(nip, 32), lwp_h = _mm512_srli_epi64(lwp, 32);
#define LAST_BFLY(X, Y)                                                                  \
    do {                                                                                 \
        v8 u_ = (X), v_ = (Y);                                                           \
        X = mulshoup(add(u_, v_), ni, nip, nip_h, c, ifma);                              \
        Y = mulshoup(add(sub(u_, v_), c->half), lw, lwp, lwp_h, c, ifma);                \
        if (ifma == K_WIDE_LAZY) { /* below 4q: to 2q, the lazy bound */                  \
            X = csub(X, c->two_q);                                                       \
            Y = csub(Y, c->two_q);                                                       \
        }                                                                                \
        if (!lazy) {                                                                     \
            X = csub(X, c->q);                                                           \
            Y = csub(Y, c->q);                                                           \
        }                                                                                \
    } while (0)
    if (with_m2) {
        const size_t g = n / 4;
        const v8 w1 = bcast(wt[2]), wp1 = bcast(wpt[2]), w2 = bcast(wt[3]), wp2 = bcast(wpt[3]);
        const v8 wph1 = _mm512_srli_epi64(wp1, 32), wph2 = _mm512_srli_epi64(wp2, 32);
        for (size_t j = 0; j < g; j += 8) {
            v8 x0 = load(a + j), x1 = load(a + g + j), x2 = load(a + 2 * g + j),
               x3 = load(a + 3 * g + j);
            inv_bfly(&x0, &x1, w1, wp1, wph1, c, ifma);
            inv_bfly(&x2, &x3, w2, wp2, wph2, c, ifma);
            LAST_BFLY(x0, x2);
            LAST_BFLY(x1, x3);
            store(a + j, x0);
            store(a + g + j, x1);
            store(a + 2 * g + j, x2);
            store(a + 3 * g + j, x3);
        }
    } else {
        const size_t g = n / 2;
        for (size_t j = 0; j < g; j += 8) {
            v8 x = load(a + j), y = load(a + g + j);
            LAST_BFLY(x, y);
            store(a + j, x);
            store(a + g + j, y);
        }
    }
#undef LAST_BFLY
}

INLINE void inverse_r4_impl(const ntt_tables_t *t, uint64_t *a, int lazy, const int ifma)
{
    const size_t n = t->n, blk = n < R4_BLOCK ? n : R4_BLOCK;
    const consts_t c = make_consts_kind(t->mod.value, ifma);
    const uint64_t *wt = t->iroot, *wpt = ifma == K_IFMA ? t->iroot_shoup52 : t->iroot_shoup;
    /* The gap-8 stage joins the first three unless it is the last (n = 16),
     * which has 1/N folded in. */
    const int with8 = n >= 32;
    size_t m = with8 ? n >> 5 : 1, g = with8 ? 16 : 8;
    /* Stages whose blocks fit in blk, block by block (the last stage, m = 1,
     * is never among them). */
    for (size_t off = 0; off < n; off += blk) {
        if (with8)
            inv_first4(a, off, blk, n, wt, wpt, &c, ifma, 1);
        else
            inv_first4(a, off, blk, n, wt, wpt, &c, ifma, 0);
        size_t mm = m, gg = g;
        while (mm >= 2 && 2 * gg <= blk) {
            if (mm >= 4 && 4 * gg <= blk) {
                inv_r4(a, off, blk, mm, gg, wt, wpt, &c, ifma);
                mm >>= 2, gg <<= 2;
            } else {
                inv_r2(a, off, blk, mm, gg, wt, wpt, &c, ifma);
                mm >>= 1, gg <<= 1;
            }
        }
        if (off + blk >= n) m = mm, g = gg;
    }
    /* The larger stages over the whole array. */
    while (m >= 4) {
        inv_r4(a, 0, n, m, g, wt, wpt, &c, ifma);
        m >>= 2, g <<= 2;
    }
    if (lazy)
        inv_last(t, a, m == 2, 1, wt, wpt, &c, ifma);
    else
        inv_last(t, a, m == 2, 0, wt, wpt, &c, ifma);
}

static void forward_avx512r4(const ntt_tables_t *t, uint64_t *a, int lazy)
{
    if (t->n < 16)
        ntt_ops_scalar.forward(t, a, lazy);
    else if (use_ifma(t))
        forward_r4_impl(t, a, lazy, K_IFMA);
    else if (t->mod.bits <= K_WIDE_LAZY_MAX_BITS)
        forward_r4_impl(t, a, lazy, K_WIDE_LAZY);
    else
        forward_r4_impl(t, a, lazy, K_WIDE);
}

static void inverse_avx512r4(const ntt_tables_t *t, uint64_t *a, int lazy)
{
    if (t->n < 16)
        ntt_ops_scalar.inverse(t, a, lazy);
    else if (use_ifma(t))
        inverse_r4_impl(t, a, lazy, K_IFMA);
    else if (t->mod.bits <= K_WIDE_LAZY_MAX_BITS)
        inverse_r4_impl(t, a, lazy, K_WIDE_LAZY);
    else
        inverse_r4_impl(t, a, lazy, K_WIDE);
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

/* ---- avx512r4's element-wise products ----------------------------------------
 * a*b mod q, 2^33 < q < 2^60 (not a power of two), a, b < q, with one
 * multiply fewer per product than mulmod_vec: x = floor(ab / 2^s), s =
 * bits - 2, comes straight from the four 32x32 partial products (the middle
 * ones cannot overflow: each is below 2^60; x < 2^62), and the Barrett
 * quotient floor(x * floor(2^(s+64)/q) / 2^64) (at most 1 short: x carries
 * one bit more than the usual s = bits - 1) drops the low partial products
 * (at most 2 short more), so ab - qhat*q < 4q. */
#define WIDE_PRODUCT_MIN_BITS 34
#define WIDE_PRODUCT_MAX_BITS 60

typedef struct {
    v8 q, two_q, mu, mu_hi;
    __m128i ls, rs; /* p11 << (64 - s), mid >> (s - 32) */
} wide_barrett_t;

static wide_barrett_t make_wide_barrett(const ntt_modulus_t *m)
{
    wide_barrett_t b;
    int s = m->bits - 2;
    /* floor(2^(s+64)/q) = floor(floor(2^128/q) / 2^(64-s)): no division */
    uint64_t mu = m->barrett_hi << s | m->barrett_lo >> (64 - s);
    b.q = bcast(m->value);
    b.two_q = bcast(2 * m->value);
    b.mu = bcast(mu);
    b.mu_hi = bcast(mu >> 32);
    b.ls = _mm_cvtsi32_si128(64 - s);
    b.rs = _mm_cvtsi32_si128(s - 32);
    return b;
}

INLINE v8 mulmod_wide_lazy(v8 a, v8 b, const wide_barrett_t *c)
{
    v8 a1 = _mm512_srli_epi64(a, 32), b1 = _mm512_srli_epi64(b, 32);
    v8 p00 = _mm512_mul_epu32(a, b), p01 = _mm512_mul_epu32(a, b1);
    v8 p10 = _mm512_mul_epu32(a1, b), p11 = _mm512_mul_epu32(a1, b1);
    v8 mid = add(add(p01, p10), _mm512_srli_epi64(p00, 32));
    v8 x = add(_mm512_sll_epi64(p11, c->ls), _mm512_srl_epi64(mid, c->rs));
    v8 qh = mulhi64_lazy(x, c->mu, c->mu_hi);
    v8 r = sub(_mm512_mullo_epi64(a, b), _mm512_mullo_epi64(qh, c->q));
    return csub(csub(r, c->two_q), c->q);
}

/* q < 2^50: the quotient from double precision instead of IFMA. a, b and q convert
 * exactly; fl(fl(a*b) * fl(1/q)) is within 2^50 * 3 * 2^-53 < 0.4 of ab/q,
 * so its truncation is floor(ab/q) + {-1, 0, 1} and ab - qhat*q, taken mod
 * 2^64 from the low product words, lies in [-q, 2q): the smallest of
 * r + q, r, r - q (unsigned, the wrapped ones are huge) is ab mod q. Fewer
 * integer multiplies than the IFMA route, and the work spreads over the
 * floating-point units. */
INLINE v8 mulmod_fp50(v8 a, v8 b, v8 q, __m512d qinv)
{
    __m512d h = _mm512_mul_pd(_mm512_cvtepu64_pd(a), _mm512_cvtepu64_pd(b));
    v8 qh = _mm512_cvttpd_epu64(_mm512_mul_pd(h, qinv));
    v8 r = sub(_mm512_mullo_epi64(a, b), _mm512_mullo_epi64(qh, q));
    return _mm512_min_epu64(add(r, q), _mm512_min_epu64(r, sub(r, q)));
}

/* r = a*b (+ c) mod q; kind K_IFMA (q < 2^50, computed by mulmod_fp50) or
 * K_WIDE_LAZY; two vectors per step. */
INLINE void mul_r4_impl(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *c,
                        size_t n, const ntt_modulus_t *m, const int kind)
{
    wide_barrett_t bc;
    if (kind == K_IFMA)
        bc.q = bcast(m->value);
    else
        bc = make_wide_barrett(m);
    const __m512d qinv = _mm512_set1_pd(kind == K_IFMA ? 1.0 / (double)m->value : 0.0);
#define MULMOD(x, y) (kind == K_IFMA ? mulmod_fp50(x, y, bc.q, qinv) : mulmod_wide_lazy(x, y, &bc))
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v8 p0 = MULMOD(load(a + i), load(b + i)), p1 = MULMOD(load(a + i + 8), load(b + i + 8));
        if (c) {
            p0 = csub(add(p0, load(c + i)), bc.q);
            p1 = csub(add(p1, load(c + i + 8)), bc.q);
        }
        store(r + i, p0);
        store(r + i + 8, p1);
    }
    for (; i < n; i += 8) {
        const __mmask8 k = n - i >= 8 ? 0xff : (__mmask8)((1u << (n - i)) - 1);
        v8 p = MULMOD(LD(a, i, k), LD(b, i, k));
        if (c) p = csub(add(p, LD(c, i, k)), bc.q);
        ST(r, i, k, p);
    }
#undef MULMOD
}

static void mul_avx512r4(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                         const ntt_modulus_t *m)
{
    if (!barrett_ok(m) || m->bits < WIDE_PRODUCT_MIN_BITS || m->bits > WIDE_PRODUCT_MAX_BITS)
        mul_avx512(r, a, b, n, m);
    else if (ifma_ok(m))
        mul_r4_impl(r, a, b, NULL, n, m, K_IFMA);
    else
        mul_r4_impl(r, a, b, NULL, n, m, K_WIDE_LAZY);
}

static void fma_avx512r4(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *c,
                         size_t n, const ntt_modulus_t *m)
{
    if (!barrett_ok(m) || m->bits < WIDE_PRODUCT_MIN_BITS || m->bits > WIDE_PRODUCT_MAX_BITS)
        fma_avx512(r, a, b, c, n, m);
    else if (ifma_ok(m))
        mul_r4_impl(r, a, b, c, n, m, K_IFMA);
    else
        mul_r4_impl(r, a, b, c, n, m, K_WIDE_LAZY);
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
    .permute2 = ntt_permute2_avx2,
};

const ntt_ops_t ntt_ops_avx512r4 = {
    .id = NTT_SIMD_AVX512R4,
    .name = "avx512r4",
    .forward = forward_avx512r4,
    .inverse = inverse_avx512r4,
    .add = add_avx512,
    .sub = sub_avx512,
    .neg = neg_avx512,
    .mul = mul_avx512r4,
    .mul_scalar = mul_scalar_avx512,
    .fma = fma_avx512r4,
    .fma_scalar = fma_scalar_avx512,
    .reduce = reduce_avx512,
    .permute2 = ntt_permute2_avx2,
};
