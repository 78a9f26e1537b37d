#include <gmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "testutil.h"

int test_is_prime_gmp(uint64_t n)
{
    mpz_t z;
    mpz_init(z);
    mpz_import(z, 1, -1, sizeof n, 0, 0, &n);
    int r = mpz_probab_prime_p(z, 40);
    mpz_clear(z);
    return r != 0;
}

uint64_t test_prime(int bits, size_t n)
{
    uint64_t f = 2 * (uint64_t)n;
    for (uint64_t v = ((uint64_t)1 << bits) - f + 1; v > f; v -= f)
        if (test_is_prime_gmp(v)) return v;
    return 0;
}

void test_naive_ntt(uint64_t *out, const uint64_t *a, size_t n, uint64_t q, uint64_t psi)
{
    int logn = __builtin_ctzll(n);
    for (size_t k = 0; k < n; k++) {
        uint64_t x = ref_powmod(psi, 2 * ntt_bitrev(k, logn) + 1, q);
        uint64_t acc = 0;
        for (size_t i = n; i-- > 0;) acc = (uint64_t)(((unsigned __int128)acc * x + a[i]) % q);
        out[k] = acc;
    }
}

void test_fill(test_rng_t *r, uint64_t *v, size_t n, uint64_t bound)
{
    for (size_t i = 0; i < n; i++) v[i] = test_rng_below(r, bound);
    if (n > 2) {
        v[0] = 0;
        v[n - 1] = bound - 1;
    }
}

int test_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
