/* Modular arithmetic on edge values against plain 128-bit arithmetic. */
#include <criterion/criterion.h>

#include "testutil.h"

static const uint64_t moduli[] = {
    2, 3, 5, 17, 65537, 1032193, 1099511390209ULL, (1ULL << 49) - 1, (1ULL << 50) + 1,
    1152921504606748673ULL, (1ULL << 61) - 1, (1ULL << 62) - 57, (1ULL << 62) - 1,
    0x2aaaaaaaaaaaaaabULL, 1000000007ULL, (1ULL << 40) - 87,
};
#define NMOD (sizeof moduli / sizeof moduli[0])

static void edge_values(uint64_t q, uint64_t *v, size_t *count, int below_q)
{
    size_t k = 0;
    v[k++] = 0;
    v[k++] = 1;
    v[k++] = q - 1;
    v[k++] = q / 2;
    v[k++] = q / 2 + 1;
    if (!below_q) {
        v[k++] = q;
        v[k++] = q + 1;
        v[k++] = 2 * q - 1;
        v[k++] = 4 * q - 1;
        v[k++] = UINT64_MAX;
        v[k++] = UINT64_MAX - 1;
        v[k++] = 1ULL << 63;
        v[k++] = (1ULL << 62) + 12345;
    }
    if (below_q) { /* tiny q: keep only the values the precondition allows */
        size_t kept = 0;
        for (size_t i = 0; i < k; i++)
            if (v[i] < q) v[kept++] = v[i];
        k = kept;
    }
    *count = k;
}

Test(ntt_modarith, modulus_init_rejects_out_of_range)
{
    ntt_modulus_t m;
    cr_expect_eq(ntt_modulus_init(&m, 0), NTT_ETOOLARGE);
    cr_expect_eq(ntt_modulus_init(&m, 1), NTT_ETOOLARGE);
    cr_expect_eq(ntt_modulus_init(&m, 1ULL << 62), NTT_ETOOLARGE);
    cr_expect_eq(ntt_modulus_init(&m, UINT64_MAX), NTT_ETOOLARGE);
    cr_expect_eq(ntt_modulus_init(NULL, 17), NTT_EINVAL);
    cr_assert_eq(ntt_modulus_init(&m, (1ULL << 62) - 1), NTT_OK);
    cr_expect_eq(m.bits, 62);
    cr_assert_eq(ntt_modulus_init(&m, 1099511390209ULL), NTT_OK);
    cr_expect_eq(m.bits, 40);
}

Test(ntt_modarith, reduce64_edges)
{
    test_rng_t r = {1};
    for (size_t i = 0; i < NMOD; i++) {
        uint64_t q = moduli[i], v[16];
        size_t k;
        ntt_modulus_t m;
        cr_assert_eq(ntt_modulus_init(&m, q), NTT_OK);
        edge_values(q, v, &k, 0);
        for (size_t j = 0; j < k; j++)
            cr_expect_eq(ntt_reduce64(v[j], &m), v[j] % q, "q=%lu x=%lu", q, v[j]);
        for (int j = 0; j < 2000; j++) {
            uint64_t x = test_rng_next(&r);
            cr_expect_eq(ntt_reduce64(x, &m), x % q, "q=%lu x=%lu", q, x);
        }
    }
}

Test(ntt_modarith, reduce128_and_mulmod_edges)
{
    test_rng_t r = {2};
    for (size_t i = 0; i < NMOD; i++) {
        uint64_t q = moduli[i], v[16];
        size_t k;
        ntt_modulus_t m;
        cr_assert_eq(ntt_modulus_init(&m, q), NTT_OK);
        edge_values(q, v, &k, 1);
        for (size_t a = 0; a < k; a++)
            for (size_t b = 0; b < k; b++)
                cr_expect_eq(ntt_mulmod(v[a], v[b], &m), ref_mulmod(v[a], v[b], q), "q=%lu %lu*%lu",
                             q, v[a], v[b]);
        for (int j = 0; j < 2000; j++) {
            uint64_t a = test_rng_below(&r, q), b = test_rng_below(&r, q);
            cr_expect_eq(ntt_mulmod(a, b, &m), ref_mulmod(a, b, q));
            /* Any value below q*2^64: hi < q, lo arbitrary. */
            uint64_t hi = test_rng_below(&r, q), lo = test_rng_next(&r);
            unsigned __int128 x = ((unsigned __int128)hi << 64) | lo;
            cr_expect_eq(ntt_reduce128(hi, lo, &m), (uint64_t)(x % q));
        }
        cr_expect_eq(ntt_reduce128(q - 1, UINT64_MAX, &m),
                     (uint64_t)((((unsigned __int128)(q - 1) << 64) | UINT64_MAX) % q));
    }
}

Test(ntt_modarith, add_sub_neg_edges)
{
    for (size_t i = 0; i < NMOD; i++) {
        uint64_t q = moduli[i], v[16];
        size_t k;
        edge_values(q, v, &k, 1);
        for (size_t a = 0; a < k; a++) {
            cr_expect_eq(ntt_negmod(v[a], q), (q - v[a]) % q);
            for (size_t b = 0; b < k; b++) {
                cr_expect_eq(ntt_addmod(v[a], v[b], q),
                             (uint64_t)(((unsigned __int128)v[a] + v[b]) % q));
                cr_expect_eq(ntt_submod(v[a], v[b], q),
                             (uint64_t)(((unsigned __int128)v[a] + q - v[b]) % q));
            }
        }
    }
}

Test(ntt_modarith, shoup_any_64bit_input)
{
    test_rng_t r = {3};
    for (size_t i = 0; i < NMOD; i++) {
        uint64_t q = moduli[i], v[16], w[16];
        size_t k, kw;
        edge_values(q, v, &k, 0);
        edge_values(q, w, &kw, 1);
        for (size_t a = 0; a < k; a++) {
            for (size_t b = 0; b < kw; b++) {
                uint64_t wp = ntt_shoup(w[b], q);
                uint64_t lazy = ntt_mulmod_shoup_lazy(v[a], w[b], wp, q);
                uint64_t want = (uint64_t)(((unsigned __int128)v[a] * w[b]) % q);
                cr_expect_lt(lazy, 2 * q);
                cr_expect_eq(lazy % q, want);
                cr_expect_eq(ntt_mulmod_shoup(v[a], w[b], wp, q), want);
            }
        }
        for (int j = 0; j < 1000; j++) {
            uint64_t x = test_rng_next(&r), s = test_rng_below(&r, q);
            cr_expect_eq(ntt_mulmod_shoup(x, s, ntt_shoup(s, q), q),
                         (uint64_t)(((unsigned __int128)x * s) % q));
        }
    }
}

Test(ntt_modarith, powmod_and_invmod)
{
    test_rng_t r = {4};
    for (size_t i = 0; i < NMOD; i++) {
        uint64_t q = moduli[i];
        ntt_modulus_t m;
        cr_assert_eq(ntt_modulus_init(&m, q), NTT_OK);
        cr_expect_eq(ntt_powmod(0, 0, &m), 1);
        cr_expect_eq(ntt_powmod(q - 1, 2, &m), 1 % q);
        cr_expect_eq(ntt_powmod(UINT64_MAX, 3, &m), ref_powmod(UINT64_MAX % q, 3, q));
        for (int j = 0; j < 50; j++) {
            uint64_t a = test_rng_next(&r), e = test_rng_next(&r);
            cr_expect_eq(ntt_powmod(a, e, &m), ref_powmod(a, e, q));
            uint64_t inv;
            int rc = ntt_invmod(a, &m, &inv);
            if (rc == NTT_OK) {
                cr_expect_lt(inv, q);
                cr_expect_eq(ref_mulmod(a % q, inv, q), 1 % q);
            } else {
                cr_expect_eq(rc, NTT_EINVAL);
            }
        }
        uint64_t inv;
        cr_expect_eq(ntt_invmod(0, &m, &inv), NTT_EINVAL);
        cr_expect_eq(ntt_invmod(q, &m, &inv), NTT_EINVAL);
        if (q > 2) {
            cr_assert_eq(ntt_invmod(q - 1, &m, &inv), NTT_OK);
            cr_expect_eq(inv, q - 1);
        }
    }
    ntt_modulus_t m;
    ntt_modulus_init(&m, 12);
    uint64_t inv;
    cr_expect_eq(ntt_invmod(6, &m, &inv), NTT_EINVAL);
    cr_expect_eq(ntt_invmod(5, &m, &inv), NTT_OK);
    cr_expect_eq(inv, 5);
}

Test(ntt_modarith, is_prime_known_answers)
{
    /* Small numbers against a sieve. */
    enum { LIM = 20000 };
    static unsigned char composite[LIM];
    for (int i = 2; i < LIM; i++)
        for (int j = 2 * i; j < LIM; j += i) composite[j] = 1;
    for (int i = 0; i < LIM; i++) cr_expect_eq(ntt_is_prime(i), i >= 2 && !composite[i], "%d", i);
    /* Carmichael numbers and strong pseudoprimes to several bases. */
    static const uint64_t liars[] = {561, 1105, 1729, 2047, 3215031751ULL, 2152302898747ULL,
                                     3474749660383ULL, 341550071728321ULL,
                                     3825123056546413051ULL,
                                     (1ULL << 62) - 1, 4611686014132420609ULL};
    for (size_t i = 0; i < sizeof liars / sizeof liars[0]; i++)
        cr_expect_not(ntt_is_prime(liars[i]), "%lu", liars[i]);
    static const uint64_t primes[] = {1099511390209ULL, 1032193, 1099511480321ULL,
                                      1152921504606748673ULL, 1152921504606830593ULL,
                                      (1ULL << 61) - 1, (1ULL << 62) - 57,
                                      18446744073709551557ULL};
    for (size_t i = 0; i < sizeof primes / sizeof primes[0]; i++)
        cr_expect(ntt_is_prime(primes[i]), "%lu", primes[i]);
    /* Random 62-bit odd numbers against GMP. */
    test_rng_t r = {5};
    for (int i = 0; i < 3000; i++) {
        uint64_t v = (test_rng_next(&r) >> 2) | 1;
        cr_expect_eq(ntt_is_prime(v), test_is_prime_gmp(v), "%lu", v);
    }
}
