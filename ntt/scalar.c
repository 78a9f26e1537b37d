/*
 * The portable backend: the specification every SIMD backend is tested
 * against. Harvey's lazy butterflies (values kept below 4q in the forward
 * transform, below 2q in the inverse) with Shoup multiplication by twiddles.
 */
#include "ntt_impl.h"

static void forward_scalar(const ntt_tables_t *t, uint64_t *a, int lazy)
{
    const uint64_t q = t->mod.value, two_q = 2 * q;
    const size_t n = t->n;
    /* Cooley-Tukey: stage m has m blocks of 2*gap, twiddle root[m + block]. */
    for (size_t m = 1, gap = n >> 1; m < n; m <<= 1, gap >>= 1) {
        for (size_t i = 0; i < m; i++) {
            const uint64_t w = t->root[m + i], wp = t->root_shoup[m + i];
            uint64_t *x = a + 2 * i * gap, *y = x + gap;
            for (size_t j = 0; j < gap; j++) {
                uint64_t u = x[j];
                u -= u >= two_q ? two_q : 0;
                uint64_t v = ntt_mulmod_shoup_lazy(y[j], w, wp, q);
                x[j] = u + v;
                y[j] = u - v + two_q;
            }
        }
    }
    if (lazy) return;
    for (size_t j = 0; j < n; j++) {
        uint64_t u = a[j];
        u -= u >= two_q ? two_q : 0;
        a[j] = u >= q ? u - q : u;
    }
}

static void inverse_scalar(const ntt_tables_t *t, uint64_t *a, int lazy)
{
    const uint64_t q = t->mod.value, two_q = 2 * q;
    const size_t n = t->n;
    /* Gentleman-Sande, undoing the forward stages in reverse order. */
    size_t m = n >> 1, gap = 1;
    for (; m > 1; m >>= 1, gap <<= 1) {
        for (size_t i = 0; i < m; i++) {
            const uint64_t w = t->iroot[m + i], wp = t->iroot_shoup[m + i];
            uint64_t *x = a + 2 * i * gap, *y = x + gap;
            for (size_t j = 0; j < gap; j++) {
                uint64_t u = x[j], v = y[j];
                uint64_t s = u + v;
                s -= s >= two_q ? two_q : 0;
                x[j] = s;
                y[j] = ntt_mulmod_shoup_lazy(u - v + two_q, w, wp, q);
            }
        }
    }
    /* Last stage (one block) with 1/N folded into both outputs. */
    const uint64_t ni = t->n_inv, nip = t->n_inv_shoup;
    const uint64_t w = t->last_iroot, wp = t->last_iroot_shoup;
    uint64_t *x = a, *y = a + gap;
    for (size_t j = 0; j < gap; j++) {
        uint64_t u = x[j], v = y[j];
        uint64_t s = ntt_mulmod_shoup_lazy(u + v, ni, nip, q);
        uint64_t d = ntt_mulmod_shoup_lazy(u - v + two_q, w, wp, q);
        if (!lazy) {
            s -= s >= q ? q : 0;
            d -= d >= q ? q : 0;
        }
        x[j] = s;
        y[j] = d;
    }
}

static void add_scalar(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                       const ntt_modulus_t *m)
{
    const uint64_t q = m->value;
    for (size_t i = 0; i < n; i++) r[i] = ntt_addmod(a[i], b[i], q);
}

static void sub_scalar(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                       const ntt_modulus_t *m)
{
    const uint64_t q = m->value;
    for (size_t i = 0; i < n; i++) r[i] = ntt_submod(a[i], b[i], q);
}

static void neg_scalar(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m)
{
    const uint64_t q = m->value;
    for (size_t i = 0; i < n; i++) r[i] = ntt_negmod(a[i], q);
}

static void mul_scalar_vec(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                           const ntt_modulus_t *m)
{
    for (size_t i = 0; i < n; i++) r[i] = ntt_mulmod(a[i], b[i], m);
}

static void mul_by_scalar(uint64_t *r, const uint64_t *a, uint64_t s, size_t n,
                          const ntt_modulus_t *m)
{
    const uint64_t q = m->value, sp = ntt_shoup(s, q);
    for (size_t i = 0; i < n; i++) r[i] = ntt_mulmod_shoup(a[i], s, sp, q);
}

static void fma_scalar_vec(uint64_t *r, const uint64_t *a, const uint64_t *b,
                           const uint64_t *c, size_t n, const ntt_modulus_t *m)
{
    /* a*b + c < q^2 + q fits the 128-bit Barrett reduction. */
    for (size_t i = 0; i < n; i++) {
        ntt_u128 p = (ntt_u128)a[i] * b[i] + c[i];
        r[i] = ntt_reduce128((uint64_t)(p >> 64), (uint64_t)p, m);
    }
}

static void fma_by_scalar(uint64_t *r, const uint64_t *a, uint64_t s, const uint64_t *c,
                          size_t n, const ntt_modulus_t *m)
{
    const uint64_t q = m->value, sp = ntt_shoup(s, q);
    for (size_t i = 0; i < n; i++) r[i] = ntt_addmod(ntt_mulmod_shoup(a[i], s, sp, q), c[i], q);
}

static void reduce_scalar(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m)
{
    for (size_t i = 0; i < n; i++) r[i] = ntt_reduce64(a[i], m);
}

static void dot2x2_scalar(uint64_t *const r[4], const uint64_t *const *x0, const uint64_t *const *x1,
                          const uint64_t *const *y0, const uint64_t *const *y1, size_t k, size_t n,
                          const ntt_modulus_t *m, int accumulate)
{
    const size_t group = ntt_dot_group(m);
    for (size_t i = 0; i < n; i++) ntt_dot_at(r, x0, x1, y0, y1, k, i, m, accumulate, group);
}

const ntt_ops_t ntt_ops_scalar = {
    .id = NTT_SIMD_SCALAR,
    .name = "scalar",
    .forward = forward_scalar,
    .inverse = inverse_scalar,
    .add = add_scalar,
    .sub = sub_scalar,
    .neg = neg_scalar,
    .mul = mul_scalar_vec,
    .mul_scalar = mul_by_scalar,
    .fma = fma_scalar_vec,
    .fma_scalar = fma_by_scalar,
    .reduce = reduce_scalar,
    .dot2x2 = dot2x2_scalar,
};
