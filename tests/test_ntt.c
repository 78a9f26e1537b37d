/* The negacyclic NTT and element-wise kernels on the default backend,
 * against independent answers: a naive O(N^2) evaluation, schoolbook
 * polynomial multiplication, and 128-bit reference arithmetic. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const int prime_bits[] = {30, 40, 49, 50, 52, 55, 60, 61, 62};
#define NBITS (sizeof prime_bits / sizeof prime_bits[0])

Test(ntt_transform, default_backend_is_the_requested_one)
{
    /* HESTAT_SIMD naming a backend this CPU lacks must fail the run, not
     * silently test another backend. */
    cr_expect_null(ntt_ops_default_warning(), "%s", ntt_ops_default_warning());
    const char *want = getenv("HESTAT_SIMD");
    if (want && *want) cr_expect_str_eq(ntt_ops_default()->name, want);
}

Test(ntt_transform, forward_matches_naive_evaluation)
{
    test_rng_t r = {10};
    for (size_t b = 0; b < NBITS; b++) {
        uint64_t q = test_prime(prime_bits[b], 1024);
        cr_assert_neq(q, 0);
        for (size_t n = 2; n <= 1024; n *= 2) {
            ntt_tables_t *t;
            cr_assert_eq(ntt_tables_new(n, q, &t), NTT_OK, "n=%zu q=%lu", n, q);
            uint64_t *a = ntt_alloc(n), *want = ntt_alloc(n), *got = ntt_alloc(n);
            test_fill(&r, a, n, q);
            test_naive_ntt(want, a, n, q, ntt_tables_psi(t));
            ntt_forward_to(t, got, a);
            cr_expect_arr_eq(got, want, n * sizeof *got, "forward n=%zu q=%lu", n, q);
            /* Inverse of the naive answer gives the input back. */
            ntt_inverse_to(t, got, want);
            cr_expect_arr_eq(got, a, n * sizeof *got, "inverse n=%zu q=%lu", n, q);
            ntt_free(a);
            ntt_free(want);
            ntt_free(got);
            ntt_tables_free(t);
        }
    }
}

Test(ntt_transform, psi_is_minimal_primitive_root)
{
    uint64_t q = test_prime(50, 4096);
    ntt_tables_t *t;
    cr_assert_eq(ntt_tables_new(4096, q, &t), NTT_OK);
    uint64_t psi = ntt_tables_psi(t);
    cr_expect_eq(ref_powmod(psi, 4096, q), q - 1);
    cr_expect_eq(ntt_tables_root_power(t, 0), 1);
    cr_expect_eq(ntt_tables_root_power(t, 1), ref_powmod(psi, 2048, q)); /* bitrev(1) = N/2 */
    ntt_tables_free(t);
}

Test(ntt_transform, roundtrip_up_to_2_17, .timeout = 120)
{
    test_rng_t r = {11};
    for (size_t b = 0; b < NBITS; b++) {
        uint64_t q = test_prime(prime_bits[b], 1 << 17);
        for (size_t n = 2; n <= (1 << 17); n *= 2) {
            ntt_tables_t *t;
            cr_assert_eq(ntt_tables_new(n, q, &t), NTT_OK);
            uint64_t *a = ntt_alloc(n), *x = ntt_alloc(n);
            test_fill(&r, a, n, q);
            memcpy(x, a, n * sizeof *a);
            ntt_forward(t, x);
            for (size_t i = 0; i < n; i++) cr_assert_lt(x[i], q);
            ntt_inverse(t, x);
            cr_expect_arr_eq(x, a, n * sizeof *a, "n=%zu bits=%d", n, prime_bits[b]);
            ntt_free(a);
            ntt_free(x);
            ntt_tables_free(t);
        }
    }
}

Test(ntt_transform, lazy_variants_and_lazy_inputs)
{
    test_rng_t r = {12};
    for (size_t b = 0; b < NBITS; b++) {
        size_t n = 4096;
        uint64_t q = test_prime(prime_bits[b], n);
        ntt_tables_t *t;
        cr_assert_eq(ntt_tables_new(n, q, &t), NTT_OK);
        uint64_t *a = ntt_alloc(n), *full = ntt_alloc(n), *x = ntt_alloc(n);
        test_fill(&r, a, n, q);
        ntt_forward_to(t, full, a);
        /* Lazy forward: output < 4q and congruent to the full output. */
        memcpy(x, a, n * sizeof *a);
        ntt_forward_lazy(t, x);
        for (size_t i = 0; i < n; i++) {
            cr_assert_lt(x[i], 4 * q);
            cr_assert_eq(x[i] % q, full[i]);
        }
        /* Forward accepts input < 4q: a + k*q gives the same transform. */
        for (size_t i = 0; i < n; i++) x[i] = a[i] + (i % 4) * q;
        ntt_forward(t, x);
        cr_expect_arr_eq(x, full, n * sizeof *x);
        /* Inverse accepts input < 2q, and its lazy output is < 2q. */
        for (size_t i = 0; i < n; i++) x[i] = full[i] + (i % 2) * q;
        ntt_inverse_lazy(t, x);
        for (size_t i = 0; i < n; i++) {
            cr_assert_lt(x[i], 2 * q);
            cr_assert_eq(x[i] % q, a[i]);
        }
        for (size_t i = 0; i < n; i++) x[i] = full[i] + ((i + 1) % 2) * q;
        ntt_inverse(t, x);
        cr_expect_arr_eq(x, a, n * sizeof *x);
        ntt_free(a);
        ntt_free(full);
        ntt_free(x);
        ntt_tables_free(t);
    }
}

Test(ntt_transform, edge_inputs_zero_and_q_minus_1)
{
    for (size_t b = 0; b < NBITS; b++) {
        size_t n = 256;
        uint64_t q = test_prime(prime_bits[b], n);
        ntt_tables_t *t;
        cr_assert_eq(ntt_tables_new(n, q, &t), NTT_OK);
        uint64_t *a = ntt_alloc(n), *want = ntt_alloc(n), *got = ntt_alloc(n);
        for (int pattern = 0; pattern < 3; pattern++) {
            for (size_t i = 0; i < n; i++)
                a[i] = pattern == 0 ? 0 : pattern == 1 ? q - 1 : (i & 1 ? q - 1 : 0);
            test_naive_ntt(want, a, n, q, ntt_tables_psi(t));
            ntt_forward_to(t, got, a);
            cr_expect_arr_eq(got, want, n * sizeof *got, "pattern %d bits %d", pattern,
                             prime_bits[b]);
        }
        ntt_free(a);
        ntt_free(want);
        ntt_free(got);
        ntt_tables_free(t);
    }
}

/* Schoolbook product mod (X^n + 1, q). */
static void schoolbook(uint64_t *c, const uint64_t *a, const uint64_t *b, size_t n, uint64_t q)
{
    for (size_t k = 0; k < n; k++) c[k] = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            uint64_t p = ref_mulmod(a[i], b[j], q);
            size_t k = i + j;
            if (k < n)
                c[k] = (uint64_t)(((unsigned __int128)c[k] + p) % q);
            else
                c[k - n] = (uint64_t)(((unsigned __int128)c[k - n] + q - p) % q);
        }
    }
}

Test(ntt_transform, negacyclic_convolution_equals_schoolbook)
{
    test_rng_t r = {13};
    for (size_t b = 0; b < NBITS; b++) {
        for (size_t n = 16; n <= 1024; n *= 4) {
            uint64_t q = test_prime(prime_bits[b], n);
            ntt_tables_t *t;
            cr_assert_eq(ntt_tables_new(n, q, &t), NTT_OK);
            const ntt_modulus_t *m = ntt_tables_modulus(t);
            uint64_t *a = ntt_alloc(n), *bb = ntt_alloc(n), *want = ntt_alloc(n);
            uint64_t *fa = ntt_alloc(n), *fb = ntt_alloc(n);
            test_fill(&r, a, n, q);
            test_fill(&r, bb, n, q);
            schoolbook(want, a, bb, n, q);
            ntt_forward_to(t, fa, a);
            ntt_forward_to(t, fb, bb);
            ntt_vec_mul(fa, fa, fb, n, m);
            ntt_inverse(t, fa);
            cr_expect_arr_eq(fa, want, n * sizeof *fa, "n=%zu bits=%d", n, prime_bits[b]);
            ntt_free(a);
            ntt_free(bb);
            ntt_free(want);
            ntt_free(fa);
            ntt_free(fb);
            ntt_tables_free(t);
        }
    }
}

Test(ntt_transform, tables_bad_input)
{
    ntt_tables_t *t = (ntt_tables_t *)&t;
    uint64_t q = test_prime(50, 1 << 17);
    cr_expect_eq(ntt_tables_new(3, q, &t), NTT_ENOTPOW2);
    cr_expect_null(t);
    cr_expect_eq(ntt_tables_new(0, q, &t), NTT_ENOTPOW2);
    cr_expect_eq(ntt_tables_new(1, q, &t), NTT_ENOTPOW2);
    cr_expect_eq(ntt_tables_new(1 << 18, q, &t), NTT_ENOTPOW2);
    cr_expect_eq(ntt_tables_new(6144, q, &t), NTT_ENOTPOW2);
    cr_expect_eq(ntt_tables_new(1024, q + 2, &t), NTT_ENOTPRIME); /* even */
    cr_expect_eq(ntt_tables_new(1024, 1099511627791ULL, &t), NTT_ENOTNTT); /* prime, != 1 mod 2048 */
    cr_expect_eq(ntt_tables_new(1024, 1ULL << 62, &t), NTT_ETOOLARGE);
    cr_expect_eq(ntt_tables_new(1024, UINT64_MAX, &t), NTT_ETOOLARGE);
    cr_expect_eq(ntt_tables_new(1024, 0, &t), NTT_ETOOLARGE);
    cr_expect_eq(ntt_tables_new(1024, q, NULL), NTT_EINVAL);
    ntt_tables_free(NULL);
    ntt_free(NULL);
    cr_expect_null(ntt_alloc(0));
    cr_expect_null(ntt_alloc(SIZE_MAX));
}

/* ---- element-wise kernels against 128-bit references ---- */

Test(ntt_eltwise, all_kernels_match_reference)
{
    test_rng_t r = {14};
    static const size_t lengths[] = {1, 3, 7, 8, 9, 31, 64, 1000, 4096};
    for (size_t b = 0; b < NBITS; b++) {
        uint64_t q = test_prime(prime_bits[b], 2);
        ntt_modulus_t m;
        cr_assert_eq(ntt_modulus_init(&m, q), NTT_OK);
        for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
            size_t n = lengths[li];
            uint64_t *a = ntt_alloc(n), *bb = ntt_alloc(n), *c = ntt_alloc(n);
            uint64_t *x = ntt_alloc(n), *raw = ntt_alloc(n);
            test_fill(&r, a, n, q);
            test_fill(&r, bb, n, q);
            test_fill(&r, c, n, q);
            for (size_t i = 0; i < n; i++) raw[i] = test_rng_next(&r);
            raw[0] = UINT64_MAX;
            uint64_t s = test_rng_below(&r, q);

            ntt_vec_add(x, a, bb, n, &m);
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(x[i], (uint64_t)(((unsigned __int128)a[i] + bb[i]) % q));
            ntt_vec_sub(x, a, bb, n, &m);
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(x[i], (uint64_t)(((unsigned __int128)a[i] + q - bb[i]) % q));
            ntt_vec_neg(x, a, n, &m);
            for (size_t i = 0; i < n; i++) cr_assert_eq(x[i], (q - a[i]) % q);
            ntt_vec_mul(x, a, bb, n, &m);
            for (size_t i = 0; i < n; i++) cr_assert_eq(x[i], ref_mulmod(a[i], bb[i], q));
            ntt_vec_mul_scalar(x, a, s, n, &m);
            for (size_t i = 0; i < n; i++) cr_assert_eq(x[i], ref_mulmod(a[i], s, q));
            ntt_vec_fma(x, a, bb, c, n, &m);
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(x[i], (uint64_t)(((unsigned __int128)a[i] * bb[i] + c[i]) % q));
            ntt_vec_fma_scalar(x, a, s, c, n, &m);
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(x[i], (uint64_t)(((unsigned __int128)a[i] * s + c[i]) % q));
            ntt_vec_reduce(x, raw, n, &m);
            for (size_t i = 0; i < n; i++) cr_assert_eq(x[i], raw[i] % q);
            /* Outputs may alias inputs. */
            memcpy(x, a, n * sizeof *x);
            ntt_vec_mul(x, x, x, n, &m);
            for (size_t i = 0; i < n; i++) cr_assert_eq(x[i], ref_mulmod(a[i], a[i], q));
            ntt_free(a);
            ntt_free(bb);
            ntt_free(c);
            ntt_free(x);
            ntt_free(raw);
        }
    }
}
