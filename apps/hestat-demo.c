/*
 * hestat-demo: the end-to-end run that exists so far (the ntt/ layer).
 * Generates SEAL's coefficient modulus for N=8192 {60,40,40,60}, builds NTT
 * tables, multiplies two random polynomials mod (X^N+1, q) through the NTT
 * and checks the product against schoolbook multiplication, with timings.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ntt/ntt.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fputs("usage: hestat-demo [--n N]\n"
          "Multiplies two random polynomials mod (X^N+1, q) with the NTT for each\n"
          "prime of SEAL's CoeffModulus::Create(N, {60,40,40,60}) and checks the\n"
          "result against schoolbook multiplication. N: power of two, 8..16384\n"
          "(default 4096; schoolbook is O(N^2)).\n",
          f);
}

static void uniform_mod(uint64_t *v, size_t n, uint64_t q)
{
    /* Rejection sampling from OS randomness: unbiased mod q. */
    uint64_t mask = q - 1;
    for (int s = 32; s; s >>= 1) mask |= mask >> s;
    for (size_t i = 0; i < n; i++) {
        do {
            randombytes_buf(&v[i], sizeof v[i]);
            v[i] &= mask;
        } while (v[i] >= q);
    }
}

int main(int argc, char **argv)
{
    size_t n = 4096;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--n") && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v < 8 || v > 16384 || (v & (v - 1))) {
                fprintf(stderr, "hestat-demo: --n must be a power of two in [8, 16384]\n");
                return 2;
            }
            n = v;
        } else {
            fprintf(stderr, "hestat-demo: unknown argument '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "hestat-demo: libsodium failed to initialise\n");
        return 1;
    }
    printf("hestat %s demo: NTT polynomial multiplication checked against schoolbook\n",
           HESTAT_VERSION);
    printf("backend: %s\n", ntt_ops_default()->name);

    int bits[] = {60, 40, 40, 60};
    uint64_t q[4];
    int rc = ntt_coeff_modulus(8192, bits, 4, q);
    if (rc) {
        fprintf(stderr, "hestat-demo: %s\n", ntt_strerror(rc));
        return 1;
    }
    printf("SEAL CoeffModulus::Create(8192, {60,40,40,60}) = %lu, %lu, %lu, %lu\n",
           (unsigned long)q[0], (unsigned long)q[1], (unsigned long)q[2], (unsigned long)q[3]);

    uint64_t *a = ntt_alloc(n), *b = ntt_alloc(n), *fa = ntt_alloc(n), *fb = ntt_alloc(n);
    uint64_t *ref = ntt_alloc(n);
    if (!a || !b || !fa || !fb || !ref) {
        fprintf(stderr, "hestat-demo: out of memory\n");
        return 1;
    }
    int failures = 0;
    for (int k = 0; k < 4; k++) {
        ntt_tables_t *t;
        rc = ntt_tables_new(n, q[k], &t);
        if (rc) {
            fprintf(stderr, "hestat-demo: tables for q=%lu: %s\n", (unsigned long)q[k],
                    ntt_strerror(rc));
            return 1;
        }
        const ntt_modulus_t *m = ntt_tables_modulus(t);
        uniform_mod(a, n, q[k]);
        uniform_mod(b, n, q[k]);

        double t0 = now_s();
        ntt_forward_to(t, fa, a);
        ntt_forward_to(t, fb, b);
        ntt_vec_mul(fa, fa, fb, n, m);
        ntt_inverse(t, fa);
        double t_ntt = now_s() - t0;

        t0 = now_s();
        memset(ref, 0, n * sizeof *ref);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < n; j++) {
                uint64_t p = ntt_mulmod(a[i], b[j], m);
                size_t idx = (i + j) & (n - 1);
                ref[idx] = i + j < n ? ntt_addmod(ref[idx], p, q[k]) : ntt_submod(ref[idx], p, q[k]);
            }
        }
        double t_school = now_s() - t0;
        int ok = memcmp(fa, ref, n * sizeof *fa) == 0;
        failures += !ok;
        printf("q=%-20lu psi=%-20lu N=%zu  NTT product %8.1f us  schoolbook %9.1f ms  %s\n",
               (unsigned long)q[k], (unsigned long)ntt_tables_psi(t), n, t_ntt * 1e6,
               t_school * 1e3, ok ? "equal" : "MISMATCH");
        ntt_tables_free(t);
    }
    ntt_free(a);
    ntt_free(b);
    ntt_free(fa);
    ntt_free(fb);
    ntt_free(ref);
    printf(failures ? "demo FAILED: %d mismatches\n" : "demo ok: all %d products equal\n",
           failures ? failures : 4);
    return failures ? 1 : 0;
}
