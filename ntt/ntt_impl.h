/* Internal to ntt/: the table layout and the backends' kernel sets. */
#ifndef HESTAT_NTT_IMPL_H
#define HESTAT_NTT_IMPL_H

#include "ntt.h"

struct ntt_tables {
    size_t n;
    int log_n;
    ntt_modulus_t mod;
    uint64_t psi;
    /* Forward twiddles: root[i] = psi^bitrev(i, log_n), with Shoup companions. */
    uint64_t *root;
    uint64_t *root_shoup;
    /* Inverse twiddles: iroot[i] = root[i]^-1. The inverse transform's last
     * stage folds in 1/N: it uses n_inv and iroot[1]*n_inv. */
    uint64_t *iroot;
    uint64_t *iroot_shoup;
    uint64_t n_inv, n_inv_shoup;
    uint64_t last_iroot, last_iroot_shoup;
    /* 52-bit Shoup companions floor(w * 2^52 / q) for the AVX-512 IFMA path,
     * present only when q < 2^NTT_IFMA_MAX_BITS (NULL otherwise). */
    uint64_t *root_shoup52;
    uint64_t *iroot_shoup52;
    uint64_t n_inv_shoup52, last_iroot_shoup52;
    /* Double-precision twiddles for the AVX2 FMA path (same condition):
     * w in the symmetric range (-q/2, q/2] and w/q. */
    double *root_fp, *root_fpq;
    double *iroot_fp, *iroot_fpq;
    double n_inv_fp, n_inv_fpq, last_iroot_fp, last_iroot_fpq;
};

/* ntt_vec_permute2 with AVX2 shuffles (ntt/avx2.c; the AVX-512 backends
 * use it too). */
void ntt_permute2_avx2(uint64_t *d0, uint64_t *d1, const uint64_t *s0, const uint64_t *s1, const uint32_t *idx,
                       size_t n);

/* IFMA kernels need 4q < 2^52. */
#define NTT_IFMA_MAX_BITS 50

/* ntt_vec_dot2x2 (x1 NULL: ntt_vec_dot1x2) at one index i, in 128-bit
 * integers: up to `group` products are summed before a reduction (group * q
 * < 2^64 - q keeps the sum below q * 2^64, as ntt_reduce128 needs). Output t
 * is x[t % nx] y[t / nx], nx = 2 (or 1 without x1). */
static inline void ntt_dot_at(uint64_t *const *r, const uint64_t *const *x0, const uint64_t *const *x1,
                              const uint64_t *const *y0, const uint64_t *const *y1, size_t k, size_t i,
                              const ntt_modulus_t *m, int accumulate, size_t group)
{
    const int nx = x1 ? 2 : 1, nout = 2 * nx;
    ntt_u128 s[4];
    for (int t = 0; t < nout; t++) s[t] = accumulate ? r[t][i] : 0;
    for (size_t j = 0, g = 0; j < k; j++, g++) {
        if (g == group) {
            for (int t = 0; t < nout; t++) s[t] = ntt_reduce128((uint64_t)(s[t] >> 64), (uint64_t)s[t], m);
            g = 0;
        }
        const uint64_t x[2] = {x0[j][i], x1 ? x1[j][i] : 0}, y[2] = {y0[j][i], y1[j][i]};
        for (int t = 0; t < nout; t++) s[t] += (ntt_u128)x[t % nx] * y[t / nx];
    }
    for (int t = 0; t < nout; t++) r[t][i] = ntt_reduce128((uint64_t)(s[t] >> 64), (uint64_t)s[t], m);
}

/* Products ntt_dot_at may sum before reducing: floor(2^64 / q) - 1, at
 * most 8 (at least 3, since q < 2^62). */
static inline size_t ntt_dot_group(const ntt_modulus_t *m)
{
    uint64_t g = UINT64_MAX / m->value - 1;
    return g > 8 ? 8 : (size_t)g;
}

static inline uint64_t ntt_shoup52(uint64_t w, uint64_t q)
{
    return (uint64_t)(((ntt_u128)w << 52) / q);
}

extern const ntt_ops_t ntt_ops_scalar;
#if HESTAT_HAVE_AVX2
extern const ntt_ops_t ntt_ops_avx2;
#endif
#if HESTAT_HAVE_AVX512
extern const ntt_ops_t ntt_ops_avx512;
extern const ntt_ops_t ntt_ops_avx512r4;
#endif

#endif
