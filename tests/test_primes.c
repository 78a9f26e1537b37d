/* SEAL-compatible primes and roots: the lists SEAL 4.1 produced (notes/seal-format.md). */
#include <criterion/criterion.h>

#include "testutil.h"

Test(ntt_primes, seal_n4096_40_20_40)
{
    int bits[] = {40, 20, 40};
    uint64_t q[3], want[] = {1099511390209ULL, 1032193ULL, 1099511480321ULL};
    cr_assert_eq(ntt_coeff_modulus(4096, bits, 3, q), NTT_OK);
    for (int i = 0; i < 3; i++) cr_expect_eq(q[i], want[i], "position %d", i);
}

Test(ntt_primes, seal_n8192_60_40_40_60)
{
    int bits[] = {60, 40, 40, 60};
    uint64_t q[4], want[] = {1152921504606748673ULL, 1099510890497ULL, 1099511480321ULL,
                             1152921504606830593ULL};
    cr_assert_eq(ntt_coeff_modulus(8192, bits, 4, q), NTT_OK);
    for (int i = 0; i < 4; i++) cr_expect_eq(q[i], want[i], "position %d", i);
}

Test(ntt_primes, seal_n16384_60_40x7_60)
{
    int bits[] = {60, 40, 40, 40, 40, 40, 40, 40, 60};
    uint64_t q[9], want[] = {1152921504606683137ULL, 1099504549889ULL, 1099505827841ULL,
                             1099506352129ULL,       1099506515969ULL, 1099507695617ULL,
                             1099508121601ULL,       1099510054913ULL, 1152921504606748673ULL};
    cr_assert_eq(ntt_coeff_modulus(16384, bits, 9, q), NTT_OK);
    for (int i = 0; i < 9; i++) cr_expect_eq(q[i], want[i], "position %d", i);
}

Test(ntt_primes, generated_primes_are_ntt_friendly_and_largest)
{
    /* Every prime is prime (GMP), = 1 mod 2N, of the asked size, and no larger
     * qualifying prime was skipped. */
    static const int sizes[] = {20, 30, 40, 49, 50, 52, 55, 60, 61, 62};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (size_t n = 1024; n <= 65536; n *= 8) {
            int bits[2] = {sizes[s], sizes[s]};
            uint64_t q[2];
            int rc = ntt_coeff_modulus(n, bits, 2, q);
            if (sizes[s] == 20 && n >= 65536) {
                cr_expect_eq(rc, NTT_ENOPRIME);
                continue;
            }
            cr_assert_eq(rc, NTT_OK, "bits %d n %zu", sizes[s], n);
            cr_expect_lt(q[0], q[1]);
            cr_expect_eq(q[1], test_prime(sizes[s], n), "bits %d n %zu", sizes[s], n);
            for (int i = 0; i < 2; i++) {
                cr_expect(test_is_prime_gmp(q[i]));
                cr_expect_eq(q[i] % (2 * n), 1);
                cr_expect_eq(64 - __builtin_clzll(q[i]), sizes[s]);
            }
        }
    }
}

Test(ntt_primes, minimal_root_seal_example)
{
    uint64_t psi;
    cr_assert_eq(ntt_minimal_root(8192, 1152921504606748673ULL, &psi), NTT_OK);
    cr_expect_eq(psi, 100406242475323ULL);
}

Test(ntt_primes, minimal_root_is_smallest_primitive)
{
    /* Brute force for small primes: the smallest x with x^N = -1 (mod q). */
    static const struct {
        size_t n;
        uint64_t q;
    } cases[] = {{2, 5}, {4, 17}, {8, 17}, {16, 97}, {64, 257}, {512, 12289}, {1024, 12289}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t want = 0;
        for (uint64_t x = 2; x < cases[i].q && !want; x++)
            if (ref_powmod(x, cases[i].n, cases[i].q) == cases[i].q - 1) want = x;
        uint64_t psi;
        cr_assert_eq(ntt_minimal_root(cases[i].n, cases[i].q, &psi), NTT_OK);
        cr_expect_eq(psi, want, "n=%zu q=%lu", cases[i].n, cases[i].q);
    }
}

Test(ntt_primes, bad_input_is_an_error)
{
    int bits[] = {60, 40};
    uint64_t q[2], psi;
    cr_expect_eq(ntt_coeff_modulus(1000, bits, 2, q), NTT_ENOTPOW2);
    cr_expect_eq(ntt_coeff_modulus(0, bits, 2, q), NTT_ENOTPOW2);
    cr_expect_eq(ntt_coeff_modulus(1, bits, 2, q), NTT_ENOTPOW2);
    cr_expect_eq(ntt_coeff_modulus(1 << 18, bits, 2, q), NTT_ENOTPOW2);
    cr_expect_eq(ntt_coeff_modulus(8192, bits, 0, q), NTT_EINVAL);
    cr_expect_eq(ntt_coeff_modulus(8192, NULL, 2, q), NTT_EINVAL);
    cr_expect_eq(ntt_coeff_modulus(8192, bits, 2, NULL), NTT_EINVAL);
    int toobig[] = {63}, toosmall[] = {1}, zero[] = {0}, neg[] = {-5};
    cr_expect_eq(ntt_coeff_modulus(8192, toobig, 1, q), NTT_EBITSIZE);
    cr_expect_eq(ntt_coeff_modulus(8192, toosmall, 1, q), NTT_EBITSIZE);
    cr_expect_eq(ntt_coeff_modulus(8192, zero, 1, q), NTT_EBITSIZE);
    cr_expect_eq(ntt_coeff_modulus(8192, neg, 1, q), NTT_EBITSIZE);
    /* No prime of the asked size: 2N = 16384 exceeds 2^10, and (2^19, 2^20)
     * holds fewer than 64 primes = 1 mod 8192. */
    int tiny[] = {10};
    cr_expect_eq(ntt_coeff_modulus(8192, tiny, 1, q), NTT_ENOPRIME);
    int many20[64];
    for (int i = 0; i < 64; i++) many20[i] = 20;
    uint64_t qq[64];
    cr_expect_eq(ntt_coeff_modulus(4096, many20, 64, qq), NTT_ENOPRIME);

    cr_expect_eq(ntt_minimal_root(8192, 1152921504606748673ULL, NULL), NTT_EINVAL);
    cr_expect_eq(ntt_minimal_root(3000, 12289, &psi), NTT_ENOTPOW2);
    cr_expect_eq(ntt_minimal_root(8192, 12289 * 3, &psi), NTT_ENOTPRIME);
    cr_expect_eq(ntt_minimal_root(8192, 12289, &psi), NTT_ENOTNTT);
    cr_expect_eq(ntt_minimal_root(8192, 1ULL << 62, &psi), NTT_ETOOLARGE);
    cr_expect_eq(ntt_minimal_root(8192, 1, &psi), NTT_ETOOLARGE);
    for (int rc = 0; rc >= -12; rc--) cr_expect_not_null(ntt_strerror(rc));
}
