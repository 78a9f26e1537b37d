/* NTT tables: twiddle factors in bit-reversed order with Shoup companions. */
#include <stdlib.h>

#include "ntt_impl.h"

void ntt_tables_free(ntt_tables_t *t)
{
    if (!t) return;
    ntt_free(t->root);
    ntt_free(t->root_shoup);
    ntt_free(t->iroot);
    ntt_free(t->iroot_shoup);
    ntt_free(t->root_shoup52);
    ntt_free(t->iroot_shoup52);
    ntt_free(t->root_fp);
    ntt_free(t->root_fpq);
    ntt_free(t->iroot_fp);
    ntt_free(t->iroot_fpq);
    free(t);
}

/* w in (-q/2, q/2] as an exact double (q < 2^50). */
static double symmetric(uint64_t w, uint64_t q)
{
    return w > q / 2 ? -(double)(q - w) : (double)w;
}

int ntt_tables_new(size_t n, uint64_t q, ntt_tables_t **out)
{
    if (!out) return NTT_EINVAL;
    *out = NULL;
    uint64_t psi;
    int rc = ntt_minimal_root(n, q, &psi);
    if (rc) return rc;

    ntt_tables_t *t = calloc(1, sizeof *t);
    if (!t) return NTT_ENOMEM;
    t->n = n;
    t->log_n = __builtin_ctzll(n);
    ntt_modulus_init(&t->mod, q);
    t->psi = psi;
    t->root = ntt_alloc(n);
    t->root_shoup = ntt_alloc(n);
    t->iroot = ntt_alloc(n);
    t->iroot_shoup = ntt_alloc(n);
    if (!t->root || !t->root_shoup || !t->iroot || !t->iroot_shoup) {
        ntt_tables_free(t);
        return NTT_ENOMEM;
    }

    const ntt_modulus_t *m = &t->mod;
    uint64_t psi_inv;
    ntt_invmod(psi, m, &psi_inv);
    /* Walk psi^i and psi^-i once, scattering into bit-reversed positions. */
    uint64_t p = 1, pi = 1;
    for (size_t i = 0; i < n; i++) {
        size_t k = ntt_bitrev(i, t->log_n);
        t->root[k] = p;
        t->iroot[k] = pi;
        p = ntt_mulmod(p, psi, m);
        pi = ntt_mulmod(pi, psi_inv, m);
    }
    for (size_t i = 0; i < n; i++) {
        t->root_shoup[i] = ntt_shoup(t->root[i], q);
        t->iroot_shoup[i] = ntt_shoup(t->iroot[i], q);
    }
    ntt_invmod(n, m, &t->n_inv);
    t->n_inv_shoup = ntt_shoup(t->n_inv, q);
    t->last_iroot = ntt_mulmod(t->iroot[1], t->n_inv, m);
    t->last_iroot_shoup = ntt_shoup(t->last_iroot, q);
    if (q < (1ULL << NTT_IFMA_MAX_BITS)) {
        t->root_shoup52 = ntt_alloc(n);
        t->iroot_shoup52 = ntt_alloc(n);
        t->root_fp = (double *)ntt_alloc(n);
        t->root_fpq = (double *)ntt_alloc(n);
        t->iroot_fp = (double *)ntt_alloc(n);
        t->iroot_fpq = (double *)ntt_alloc(n);
        if (!t->root_shoup52 || !t->iroot_shoup52 || !t->root_fp || !t->root_fpq ||
            !t->iroot_fp || !t->iroot_fpq) {
            ntt_tables_free(t);
            return NTT_ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            t->root_shoup52[i] = ntt_shoup52(t->root[i], q);
            t->iroot_shoup52[i] = ntt_shoup52(t->iroot[i], q);
            t->root_fp[i] = symmetric(t->root[i], q);
            t->root_fpq[i] = t->root_fp[i] / (double)q;
            t->iroot_fp[i] = symmetric(t->iroot[i], q);
            t->iroot_fpq[i] = t->iroot_fp[i] / (double)q;
        }
        t->n_inv_shoup52 = ntt_shoup52(t->n_inv, q);
        t->last_iroot_shoup52 = ntt_shoup52(t->last_iroot, q);
        t->n_inv_fp = symmetric(t->n_inv, q);
        t->n_inv_fpq = t->n_inv_fp / (double)q;
        t->last_iroot_fp = symmetric(t->last_iroot, q);
        t->last_iroot_fpq = t->last_iroot_fp / (double)q;
    }
    *out = t;
    return NTT_OK;
}

size_t ntt_tables_n(const ntt_tables_t *t) { return t->n; }
int ntt_tables_log_n(const ntt_tables_t *t) { return t->log_n; }
const ntt_modulus_t *ntt_tables_modulus(const ntt_tables_t *t) { return &t->mod; }
uint64_t ntt_tables_psi(const ntt_tables_t *t) { return t->psi; }
uint64_t ntt_tables_root_power(const ntt_tables_t *t, size_t i) { return t->root[i]; }
