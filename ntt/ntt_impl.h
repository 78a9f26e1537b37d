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

/* IFMA kernels need 4q < 2^52. */
#define NTT_IFMA_MAX_BITS 50

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
