/* The CKKS engine against plaintext arithmetic: every operation and chains
 * of them, with error bounds stated in bits of precision. */
#include <complex.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ckks/ckks.h"
#include "ckks/ckks_impl.h"
#include "testutil.h"

typedef struct {
    ckks_context_t *ctx;
    ckks_secret_key_t *sk;
    ckks_public_key_t *pk;
    ckks_relin_key_t *rk;
    ckks_galois_keys_t *gk;
    size_t slots, np;
} fixture_t;

static void setup(fixture_t *f, size_t n, const int *bits, size_t count, int with_galois)
{
    ckks_params_t p;
    cr_assert_eq(ckks_params_from_bits(&p, n, bits, count), CKKS_OK);
    cr_assert_eq(ckks_context_new(&p, &f->ctx), CKKS_OK);
    cr_assert_eq(test_keys_new(f->ctx, &f->sk, &f->pk, &f->rk, &f->gk, with_galois, NULL, 0, 1), CKKS_OK);
    f->slots = ckks_context_slots(f->ctx);
    f->np = ckks_context_data_primes(f->ctx);
}

static void teardown(fixture_t *f) { test_keys_free(f->ctx, f->sk, f->pk, f->rk, f->gk); }

static double *random_values(test_rng_t *r, size_t count, double lo, double hi)
{
    double *v = malloc(count * sizeof *v);
    for (size_t i = 0; i < count; i++)
        v[i] = lo + (hi - lo) * (double)(test_rng_next(r) >> 11) / 9007199254740992.0;
    return v;
}

/* -log2 of the largest absolute error. */
static double precision_bits(const double *want, const double *got, size_t count)
{
    double e = 0;
    for (size_t i = 0; i < count; i++) e = fmax(e, fabs(want[i] - got[i]));
    return e > 0 ? -log2(e) : 99;
}

static ckks_ciphertext_t *encrypt_values(fixture_t *f, const double *v, double scale)
{
    ckks_plaintext_t *pt;
    ckks_ciphertext_t *ct;
    cr_assert_eq(ckks_plaintext_new(f->ctx, 0, &pt), CKKS_OK);
    cr_assert_eq(ckks_encode_real(f->ctx, v, f->slots, scale, 0, pt), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f->ctx, 2, 0, &ct), CKKS_OK);
    cr_assert_eq(ckks_encrypt(f->pk, pt, ct), CKKS_OK);
    ckks_plaintext_free(pt);
    return ct;
}

static double *decrypt_values(fixture_t *f, const ckks_ciphertext_t *ct)
{
    ckks_plaintext_t *pt;
    cr_assert_eq(ckks_plaintext_new(f->ctx, 0, &pt), CKKS_OK);
    cr_assert_eq(ckks_decrypt(f->sk, ct, pt), CKKS_OK);
    double *out = malloc(f->slots * sizeof *out);
    cr_assert_eq(ckks_decode(f->ctx, pt, out, NULL, f->slots), CKKS_OK);
    ckks_plaintext_free(pt);
    return out;
}

static const int bits_8192[] = {60, 40, 40, 60};

Test(ckks_encoder, roundtrip_every_n, .timeout = 120)
{
    static const int b4096[] = {40, 20, 40}, b8192[] = {60, 40, 40, 60},
                     b16384[] = {60, 40, 40, 40, 60}, b32768[] = {60, 40, 60},
                     b65536[] = {60, 40, 60};
    static const struct {
        size_t n;
        const int *bits;
        size_t count;
    } cases[] = {{4096, b4096, 3}, {8192, b8192, 4}, {16384, b16384, 5}, {32768, b32768, 3},
                 {65536, b65536, 3}};
    test_rng_t r = {31};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ckks_params_t p;
        ckks_context_t *ctx;
        cr_assert_eq(ckks_params_from_bits(&p, cases[c].n, cases[c].bits, cases[c].count), CKKS_OK);
        cr_assert_eq(ckks_context_new(&p, &ctx), CKKS_OK);
        size_t slots = ckks_context_slots(ctx);
        double *re = random_values(&r, slots, -1, 1), *im = random_values(&r, slots, -1, 1);
        double *ore = malloc(slots * 8), *oim = malloc(slots * 8);
        ckks_plaintext_t *pt;
        cr_assert_eq(ckks_plaintext_new(ctx, 0, &pt), CKKS_OK);
        double scale = cases[c].n == 4096 ? 0x1p30 : 0x1p40;
        cr_assert_eq(ckks_encode_complex(ctx, re, im, slots, scale, 0, pt), CKKS_OK);
        cr_assert_eq(ckks_decode(ctx, pt, ore, oim, slots), CKKS_OK);
        double pr = fmin(precision_bits(re, ore, slots), precision_bits(im, oim, slots));
        cr_log_info("encode/decode N=%zu: %.1f bits", cases[c].n, pr);
        /* Rounding to integers costs about log2(sqrt(N)) bits below the scale. */
        cr_expect_geq(pr, log2(scale) - 14, "N=%zu precision %.1f bits", cases[c].n, pr);
        free(re);
        free(im);
        free(ore);
        free(oim);
        ckks_plaintext_free(pt);
        ckks_context_free(ctx);
    }
}

Test(ckks_encoder, slot_order_matches_canonical_embedding)
{
    /* Independent check of SEAL's slot order: decode the coefficients by hand
     * (inverse NTT, centred) and evaluate m(zeta^(3^i)) naively. */
    fixture_t f;
    setup(&f, 4096, (const int[]){40, 20, 40}, 3, 0);
    test_rng_t r = {32};
    double *re = random_values(&r, f.slots, -1, 1), *im = random_values(&r, f.slots, -1, 1);
    ckks_plaintext_t *pt;
    cr_assert_eq(ckks_plaintext_new(f.ctx, 0, &pt), CKKS_OK);
    double scale = 0x1p20;
    cr_assert_eq(ckks_encode_complex(f.ctx, re, im, f.slots, scale, 0, pt), CKKS_OK);
    size_t n = 4096;
    uint64_t q = ckks_context_prime(f.ctx, 0);
    uint64_t *c = ntt_alloc(n);
    memcpy(c, pt->data, n * 8);
    ntt_inverse(ckks_context_ntt(f.ctx, 0), c);
    for (size_t i = 0; i < 64; i++) {
        uint64_t e = 1;
        for (size_t k = 0; k < i; k++) e = (e * 3) % (2 * n);
        double complex z = 0;
        for (size_t j = 0; j < n; j++) {
            double cj = c[j] > q / 2 ? -(double)(q - c[j]) : (double)c[j];
            z += cj * cexp(I * M_PI * (double)((j * e) % (2 * n)) / (double)n);
        }
        z /= scale;
        cr_expect(fabs(creal(z) - re[i]) < 1e-3 && fabs(cimag(z) - im[i]) < 1e-3,
                  "slot %zu: got %f%+fi want %f%+fi", i, creal(z), cimag(z), re[i], im[i]);
    }
    ntt_free(c);
    free(re);
    free(im);
    ckks_plaintext_free(pt);
    teardown(&f);
}

Test(ckks_encoder, large_coefficients_and_overflow)
{
    /* Coefficients beyond 2^64 (scale 2^100, Q of 340 bits) encode exactly and
     * decode through the exact (GMP) path; beyond Q is an error. */
    fixture_t f;
    int bits[] = {60, 40, 40, 40, 40, 40, 40, 40, 60};
    setup(&f, 16384, bits, 9, 0);
    test_rng_t r = {33};
    double *v = random_values(&r, f.slots, -1000, 1000), *o = malloc(f.slots * 8);
    ckks_plaintext_t *pt;
    cr_assert_eq(ckks_plaintext_new(f.ctx, 0, &pt), CKKS_OK);
    cr_assert_eq(ckks_encode_real(f.ctx, v, f.slots, 0x1p100, 0, pt), CKKS_OK);
    cr_assert_eq(ckks_decode(f.ctx, pt, o, NULL, f.slots), CKKS_OK);
    cr_expect_geq(precision_bits(v, o, f.slots), 30);
    /* Values * scale near or above Q: refused. */
    cr_expect_eq(ckks_encode_real(f.ctx, v, f.slots, 0x1p339, 0, pt), CKKS_EOVERFLOW);
    cr_expect_eq(ckks_encode_real(f.ctx, v, f.slots, 0x1p400, 0, pt), CKKS_ESCALE);
    double bad = NAN;
    cr_expect_eq(ckks_encode_real(f.ctx, &bad, 1, 0x1p40, 0, pt), CKKS_EINVAL);
    cr_expect_eq(ckks_encode_real(f.ctx, v, f.slots + 1, 0x1p40, 0, pt), CKKS_EINVAL);
    free(v);
    free(o);
    ckks_plaintext_free(pt);
    teardown(&f);
}

Test(ckks_scheme, encrypt_decrypt_public_and_secret_key, .timeout = 120)
{
    static const int b4096[] = {40, 20, 40}, b16384[] = {60, 40, 40, 40, 40, 40, 40, 40, 60},
                     b32768[] = {60, 40, 40, 60};
    static const struct {
        size_t n;
        const int *bits;
        size_t count;
        double scale;
    } cases[] = {{4096, b4096, 3, 0x1p30}, {8192, bits_8192, 4, 0x1p40}, {16384, b16384, 9, 0x1p40},
                 {32768, b32768, 4, 0x1p40}};
    test_rng_t r = {34};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fixture_t f;
        setup(&f, cases[c].n, cases[c].bits, cases[c].count, 0);
        double *v = random_values(&r, f.slots, -10, 10);
        ckks_ciphertext_t *ct = encrypt_values(&f, v, cases[c].scale);
        double *o = decrypt_values(&f, ct);
        double pr = precision_bits(v, o, f.slots);
        cr_log_info("encrypt/decrypt N=%zu: %.1f bits", cases[c].n, pr);
        cr_expect_geq(pr, log2(cases[c].scale) - 24, "N=%zu: %.1f bits", cases[c].n, pr);
        /* Secret-key encryption. */
        ckks_plaintext_t *pt;
        cr_assert_eq(ckks_plaintext_new(f.ctx, 0, &pt), CKKS_OK);
        cr_assert_eq(ckks_encode_real(f.ctx, v, f.slots, cases[c].scale, 0, pt), CKKS_OK);
        cr_assert_eq(ckks_encrypt_symmetric(f.sk, pt, ct), CKKS_OK);
        free(o);
        o = decrypt_values(&f, ct);
        cr_expect_geq(precision_bits(v, o, f.slots), log2(cases[c].scale) - 24);
        /* Encryption at a lower level. */
        cr_assert_eq(ckks_encode_real(f.ctx, v, f.slots, cases[c].scale, 1, pt), CKKS_OK);
        cr_assert_eq(ckks_encrypt(f.pk, pt, ct), CKKS_OK);
        cr_expect_eq(ct->nprimes, 1);
        free(o);
        o = decrypt_values(&f, ct);
        cr_expect_geq(precision_bits(v, o, f.slots), log2(cases[c].scale) - 24);
        /* Two encryptions of the same plaintext differ (fresh randomness). */
        ckks_ciphertext_t *ct2 = encrypt_values(&f, v, cases[c].scale);
        ckks_ciphertext_t *ct3 = encrypt_values(&f, v, cases[c].scale);
        cr_expect_neq(memcmp(ct2->data, ct3->data, f.np * ckks_context_n(f.ctx) * 8), 0);
        ckks_ciphertext_free(ct2);
        ckks_ciphertext_free(ct3);
        ckks_plaintext_free(pt);
        ckks_ciphertext_free(ct);
        free(v);
        free(o);
        teardown(&f);
    }
}

Test(ckks_scheme, secret_key_is_ternary)
{
    fixture_t f;
    setup(&f, 8192, bits_8192, 4, 0);
    size_t n = 8192, counts[3] = {0, 0, 0};
    uint64_t *s = ntt_alloc(n);
    uint64_t *s1 = ntt_alloc(n);
    memcpy(s, ckks_secret_key_data(f.sk), n * 8);
    memcpy(s1, ckks_secret_key_data(f.sk) + 3 * n, n * 8); /* the special prime's limb */
    ntt_inverse(ckks_context_ntt(f.ctx, 0), s);
    ntt_inverse(ckks_context_ntt(f.ctx, 3), s1);
    uint64_t q0 = ckks_context_prime(f.ctx, 0), q3 = ckks_context_prime(f.ctx, 3);
    for (size_t j = 0; j < n; j++) {
        int v = s[j] == 0 ? 0 : s[j] == 1 ? 1 : s[j] == q0 - 1 ? -1 : 9;
        int w = s1[j] == 0 ? 0 : s1[j] == 1 ? 1 : s1[j] == q3 - 1 ? -1 : 9;
        cr_assert_neq(v, 9, "coefficient %zu not ternary", j);
        cr_assert_eq(v, w, "limbs disagree at %zu", j);
        counts[v + 1]++;
    }
    /* Uniform over {-1, 0, 1}: each about n/3. */
    for (int i = 0; i < 3; i++) cr_expect(counts[i] > n / 3 - 300 && counts[i] < n / 3 + 300);
    ntt_free(s);
    ntt_free(s1);
    teardown(&f);
}

Test(ckks_eval, add_sub_negate_plain_const)
{
    fixture_t f;
    setup(&f, 8192, bits_8192, 4, 0);
    test_rng_t r = {35};
    size_t S = f.slots;
    double scale = 0x1p40;
    double *a = random_values(&r, S, -5, 5), *b = random_values(&r, S, -5, 5);
    double *want = malloc(S * 8);
    ckks_ciphertext_t *ca = encrypt_values(&f, a, scale), *cb = encrypt_values(&f, b, scale), *out;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &out), CKKS_OK);
    double *o;
#define CHECK(expr_want, min_bits)                                              \
    do {                                                                        \
        for (size_t i = 0; i < S; i++) want[i] = (expr_want);                   \
        o = decrypt_values(&f, out);                                            \
        double pr_ = precision_bits(want, o, S);                                \
        cr_expect_geq(pr_, min_bits, "%s: %.1f bits", #expr_want, pr_);          \
        free(o);                                                                \
    } while (0)
    cr_assert_eq(ckks_add(ca, cb, out), CKKS_OK);
    CHECK(a[i] + b[i], 20);
    cr_assert_eq(ckks_sub(ca, cb, out), CKKS_OK);
    CHECK(a[i] - b[i], 20);
    cr_assert_eq(ckks_negate(ca, out), CKKS_OK);
    CHECK(-a[i], 20);
    ckks_plaintext_t *pb;
    cr_assert_eq(ckks_plaintext_new(f.ctx, 0, &pb), CKKS_OK);
    cr_assert_eq(ckks_encode_real(f.ctx, b, S, scale, 0, pb), CKKS_OK);
    cr_assert_eq(ckks_add_plain(ca, pb, out), CKKS_OK);
    CHECK(a[i] + b[i], 20);
    cr_assert_eq(ckks_sub_plain(ca, pb, out), CKKS_OK);
    CHECK(a[i] - b[i], 20);
    cr_assert_eq(ckks_multiply_plain(ca, pb, out), CKKS_OK);
    cr_assert_eq(ckks_rescale(out, out), CKKS_OK);
    CHECK(a[i] * b[i], 17);
    cr_assert_eq(ckks_multiply_const(ca, -2.5, scale, out), CKKS_OK);
    cr_assert_eq(ckks_rescale(out, out), CKKS_OK);
    CHECK(-2.5 * a[i], 17);
    /* Aliasing: out == input. */
    cr_assert_eq(ckks_ciphertext_copy(out, ca), CKKS_OK);
    cr_assert_eq(ckks_add(out, out, out), CKKS_OK);
    CHECK(2 * a[i], 20);
    ckks_plaintext_free(pb);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cb);
    ckks_ciphertext_free(out);
    free(a);
    free(b);
    free(want);
    teardown(&f);
}

Test(ckks_eval, multiply_chain_down_to_level_0, .timeout = 60)
{
    /* ((a*b) relin rescale * c) relin rescale, then square at level 0 is
     * refused; also the size-3 ciphertext decrypts like its relinearization. */
    fixture_t f;
    setup(&f, 8192, bits_8192, 4, 1);
    test_rng_t r = {36};
    size_t S = f.slots;
    double scale = 0x1p40;
    double *a = random_values(&r, S, -2, 2), *b = random_values(&r, S, -2, 2),
           *c = random_values(&r, S, -2, 2), *want = malloc(S * 8);
    ckks_ciphertext_t *ca = encrypt_values(&f, a, scale), *cb = encrypt_values(&f, b, scale),
                      *cc = encrypt_values(&f, c, scale), *out, *t3;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &out), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 3, 0, &t3), CKKS_OK);
    cr_assert_eq(ckks_multiply(ca, cb, t3), CKKS_OK);
    cr_expect_eq(t3->size, 3);
    for (size_t i = 0; i < S; i++) want[i] = a[i] * b[i];
    double *o = decrypt_values(&f, t3);
    cr_expect_geq(precision_bits(want, o, S), 20);
    free(o);
    cr_assert_eq(ckks_relinearize(t3, f.rk, out), CKKS_OK);
    cr_expect_eq(out->size, 2);
    o = decrypt_values(&f, out);
    double pr_relin = precision_bits(want, o, S);
    cr_log_info("multiply+relinearize: %.1f bits", pr_relin);
    cr_expect_geq(pr_relin, 20);
    free(o);
    cr_assert_eq(ckks_rescale(out, out), CKKS_OK);
    cr_expect_eq(out->nprimes, 2);
    cr_expect(fabs(out->scale - 0x1p80 / (double)ckks_context_prime(f.ctx, 2)) < 1e-3);
    o = decrypt_values(&f, out);
    double pr1 = precision_bits(want, o, S);
    cr_log_info("level 1 after rescale: %.1f bits", pr1);
    cr_expect_geq(pr1, 17);
    free(o);
    /* Bring c down to the same level and scale, then multiply again. */
    ckks_ciphertext_t *cc1;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &cc1), CKKS_OK);
    cr_assert_eq(ckks_mod_switch(cc, 2, cc1), CKKS_OK);
    /* c was encoded at 2^40; relabelling it with out's scale (2^80/q_2) makes
     * it decode as c * adj, adj = 2^40 / (2^80/q_2), which `want` includes. */
    cc1->scale = out->scale;
    cr_assert_eq(ckks_multiply(out, cc1, t3), CKKS_OK);
    cr_assert_eq(ckks_relinearize(t3, f.rk, out), CKKS_OK);
    cr_assert_eq(ckks_rescale(out, out), CKKS_OK);
    cr_expect_eq(out->nprimes, 1);
    o = decrypt_values(&f, out);
    double adj = scale / (0x1p80 / (double)ckks_context_prime(f.ctx, 2));
    for (size_t i = 0; i < S; i++) want[i] = a[i] * b[i] * c[i] * adj;
    double pr0 = precision_bits(want, o, S);
    cr_log_info("level 0 after two multiplications: %.1f bits", pr0);
    cr_expect_geq(pr0, 12);
    free(o);
    cr_expect_eq(ckks_rescale(out, out), CKKS_ELEVEL);
    /* Rotation at level 0 still works. */
    cr_assert_eq(ckks_rotate(out, 1, f.gk, out), CKKS_OK);
    o = decrypt_values(&f, out);
    for (size_t i = 0; i < S; i++) cr_assert(fabs(o[i] - want[(i + 1) % S]) < 0x1p-12);
    free(o);
    ckks_ciphertext_free(cc1);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cb);
    ckks_ciphertext_free(cc);
    ckks_ciphertext_free(out);
    ckks_ciphertext_free(t3);
    free(a);
    free(b);
    free(c);
    free(want);
    teardown(&f);
}

Test(ckks_eval, rotations_conjugation_and_sums, .timeout = 120)
{
    fixture_t f;
    setup(&f, 8192, bits_8192, 4, 1);
    test_rng_t r = {37};
    size_t S = f.slots;
    double scale = 0x1p40;
    double *a = random_values(&r, S, -1, 1), *want = malloc(S * 8);
    ckks_ciphertext_t *ca = encrypt_values(&f, a, scale), *out;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &out), CKKS_OK);
    int steps[] = {1, 2, 4, 8, 64, 1024, 2048, -1, -2, -1024, 3, -3, 5, 7, 100, -100, 4095, 1000};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        cr_assert_eq(ckks_rotate(ca, steps[k], f.gk, out), CKKS_OK, "step %d", steps[k]);
        for (size_t i = 0; i < S; i++) want[i] = a[((long)i + steps[k] + (long)S) % (long)S];
        double *o = decrypt_values(&f, out);
        double pr = precision_bits(want, o, S);
        cr_expect_geq(pr, 18, "rotate %d: %.1f bits", steps[k], pr);
        free(o);
    }
    /* Sum of all slots and of windows of 16. */
    double total = 0;
    for (size_t i = 0; i < S; i++) total += a[i];
    cr_assert_eq(ckks_sum_slots(ca, f.gk, out), CKKS_OK);
    double *o = decrypt_values(&f, out);
    for (size_t i = 0; i < S; i++) cr_expect(fabs(o[i] - total) < 1e-3, "slot %zu %f vs %f", i, o[i], total);
    free(o);
    cr_assert_eq(ckks_inner_sum(ca, 16, f.gk, out), CKKS_OK);
    o = decrypt_values(&f, out);
    for (size_t i = 0; i < S; i += 16) {
        double s = 0;
        for (size_t j = 0; j < 16; j++) s += a[(i + j) % S];
        cr_expect(fabs(o[i] - s) < 1e-4);
    }
    free(o);
    /* Conjugation on complex data. */
    double *im = random_values(&r, S, -1, 1), *ore = malloc(S * 8), *oim = malloc(S * 8);
    ckks_plaintext_t *pt;
    cr_assert_eq(ckks_plaintext_new(f.ctx, 0, &pt), CKKS_OK);
    cr_assert_eq(ckks_encode_complex(f.ctx, a, im, S, scale, 0, pt), CKKS_OK);
    cr_assert_eq(ckks_encrypt(f.pk, pt, ca), CKKS_OK);
    cr_assert_eq(ckks_conjugate(ca, f.gk, out), CKKS_OK);
    cr_assert_eq(ckks_decrypt(f.sk, out, pt), CKKS_OK);
    cr_assert_eq(ckks_decode(f.ctx, pt, ore, oim, S), CKKS_OK);
    for (size_t i = 0; i < S; i++) im[i] = -im[i];
    cr_expect_geq(precision_bits(a, ore, S), 18);
    cr_expect_geq(precision_bits(im, oim, S), 18);
    ckks_plaintext_free(pt);
    free(im);
    free(ore);
    free(oim);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(out);
    free(a);
    free(want);
    teardown(&f);
}

Test(ckks_eval, bad_input_is_an_error)
{
    fixture_t f;
    setup(&f, 8192, bits_8192, 4, 0);
    test_rng_t r = {38};
    double *a = random_values(&r, f.slots, -1, 1);
    ckks_ciphertext_t *ca = encrypt_values(&f, a, 0x1p40), *cb = encrypt_values(&f, a, 0x1p40),
                      *out, *low;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 3, 0, &out), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &low), CKKS_OK);
    cr_assert_eq(ckks_mod_switch(ca, 2, low), CKKS_OK);
    cr_expect_eq(ckks_add(ca, low, out), CKKS_ELEVEL);
    cr_expect_eq(ckks_multiply(ca, low, out), CKKS_ELEVEL);
    cb->scale = 0x1p41;
    cr_expect_eq(ckks_add(ca, cb, out), CKKS_ESCALE);
    cb->scale = 0x1p40;
    /* No Galois keys at all / no key for this step. */
    ckks_galois_keys_t *few;
    int one[] = {1};
    cr_assert_eq(ckks_galois_keys_new(f.sk, one, 1, 0, &few), CKKS_OK);
    cr_expect_eq(ckks_rotate(ca, 1, few, out), CKKS_OK);
    cr_expect_eq(ckks_rotate(ca, 2, few, out), CKKS_EKEY);
    cr_expect_eq(ckks_conjugate(ca, few, out), CKKS_EKEY);
    cr_expect_eq(ckks_rotate(ca, 1, NULL, out), CKKS_EINVAL);
    int bad_steps[] = {4096};
    ckks_galois_keys_t *none = NULL;
    cr_expect_eq(ckks_galois_keys_new(f.sk, bad_steps, 1, 0, &none), CKKS_EINVAL);
    cr_expect_null(none);
    ckks_galois_keys_free(few);
    /* Size 3 where 2 is needed; rescale with one prime left. */
    cr_assert_eq(ckks_multiply(ca, cb, out), CKKS_OK);
    cr_expect_eq(ckks_multiply(out, ca, out), CKKS_ESIZE);
    cr_assert_eq(ckks_mod_switch(ca, 1, low), CKKS_OK);
    cr_expect_eq(ckks_rescale(low, low), CKKS_ELEVEL);
    cr_expect_eq(ckks_mod_switch(ca, 4, low), CKKS_ELEVEL);
    /* Scale overflow: 2^40 * 2^40 * 2^40 > Q at two primes. */
    cr_assert_eq(ckks_mod_switch(ca, 2, low), CKKS_OK);
    low->scale = 0x1p70;
    cr_expect_eq(ckks_multiply_const(low, 1.0, 0x1p40, out), CKKS_ESCALE);
    /* Another context's objects. */
    fixture_t g;
    setup(&g, 8192, bits_8192, 4, 0);
    cr_expect_eq(ckks_add(ca, cb, low), CKKS_OK);
    ckks_ciphertext_t *other = encrypt_values(&g, a, 0x1p40);
    cr_expect_eq(ckks_add(ca, other, out), CKKS_ECONTEXT);
    ckks_plaintext_t *pt;
    cr_assert_eq(ckks_plaintext_new(f.ctx, 0, &pt), CKKS_OK);
    cr_expect_eq(ckks_decrypt(g.sk, ca, pt), CKKS_ECONTEXT);
    cr_expect_eq(ckks_relinearize(out, g.rk, out), CKKS_ECONTEXT);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(other);
    teardown(&g);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cb);
    ckks_ciphertext_free(out);
    ckks_ciphertext_free(low);
    free(a);
    teardown(&f);
}

Test(ckks_params, security_and_shape_checks)
{
    ckks_params_t p;
    ckks_context_t *ctx = (ckks_context_t *)&p;
    int too_big[] = {60, 60, 60};         /* 180 bits > 109 at N = 4096 */
    cr_assert_eq(ckks_params_from_bits(&p, 4096, too_big, 3), CKKS_OK);
    cr_expect_eq(ckks_context_new(&p, &ctx), CKKS_EINSECURE);
    cr_expect_null(ctx);
    p.allow_insecure = 1;
    cr_expect_eq(ckks_context_new(&p, &ctx), CKKS_OK);
    ckks_context_free(ctx);
    int ok16[] = {60, 40, 40, 40, 40, 40, 40, 40, 60};
    cr_assert_eq(ckks_params_from_bits(&p, 16384, ok16, 9), CKKS_OK);
    cr_expect_eq(ckks_context_new(&p, &ctx), CKKS_OK); /* 440 bits? SEAL's 438 limit */
    ckks_context_free(ctx);
    int b8192[] = {60, 40, 40, 60};
    cr_expect_eq(ckks_params_from_bits(&p, 2048, b8192, 4), CKKS_OK);
    cr_expect_eq(ckks_context_new(&p, &ctx), CKKS_EPARAMS); /* N below 2^12 */
    cr_expect_eq(ckks_params_from_bits(&p, 3000, b8192, 4), CKKS_EPARAMS);
    cr_expect_eq(ckks_params_from_bits(&p, 8192, b8192, 1), CKKS_EINVAL);
    cr_expect_eq(ckks_params_from_bits(&p, 8192, NULL, 4), CKKS_EINVAL);
    /* Hand-made primes: composite, not NTT-friendly, repeated. */
    memset(&p, 0, sizeof p);
    p.n = 8192;
    p.count = 2;
    p.primes[0] = 1152921504606748673ULL;
    p.primes[1] = 1152921504606748673ULL;
    cr_expect_eq(ckks_context_new(&p, &ctx), CKKS_EPARAMS);
    p.primes[1] = 1099511627791ULL; /* prime, not 1 mod 2N */
    cr_expect_eq(ckks_context_new(&p, &ctx), CKKS_EPARAMS);
    p.primes[1] = 1099511480321ULL * 3;
    cr_expect_eq(ckks_context_new(&p, &ctx), CKKS_EPARAMS);
    cr_expect_eq(ckks_max_modulus_bits(8192), 218);
    cr_expect_eq(ckks_max_modulus_bits(32768), 881);
    for (int rc = 0; rc >= -12; rc--) cr_expect_not_null(ckks_strerror(rc));
}

Test(ckks_eval, results_identical_for_any_thread_count, .timeout = 60)
{
    fixture_t f;
    setup(&f, 8192, bits_8192, 4, 1);
    test_rng_t r = {39};
    double *a = random_values(&r, f.slots, -1, 1);
    ckks_ciphertext_t *ca = encrypt_values(&f, a, 0x1p40), *t3, *o1, *o2;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 3, 0, &t3), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 3, 0, &o1), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 3, 0, &o2), CKKS_OK);
    cr_assert_eq(ckks_square(ca, t3), CKKS_OK);
    ckks_ciphertext_t *outs[2] = {o1, o2};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(ckks_context_set_threads(f.ctx, k + 1), CKKS_OK);
        cr_assert_eq(ckks_relinearize(t3, f.rk, outs[k]), CKKS_OK);
        cr_assert_eq(ckks_rescale(outs[k], outs[k]), CKKS_OK);
        cr_assert_eq(ckks_rotate(outs[k], 3, f.gk, outs[k]), CKKS_OK);
    }
    size_t words = 2 * o1->nprimes * ckks_context_n(f.ctx);
    cr_expect_arr_eq(o1->data, o2->data, words * 8, "1 vs 2 threads differ");
    cr_expect_eq(ckks_context_set_threads(f.ctx, 0), CKKS_EINVAL);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(t3);
    ckks_ciphertext_free(o1);
    ckks_ciphertext_free(o2);
    free(a);
    teardown(&f);
}

/* The samplers against ChaCha20's keystream taken straight from libsodium:
 * uniform draws of the fewest whole bytes that hold bits(q) (little-endian,
 * masked, rejected at q or above) and centred binomial errors from six bytes
 * each (popcount of bits 0-20 minus that of bits 21-41), one stream read in
 * order. q = 2^39 + 9 rejects about half the 40-bit draws; q = 2^60 - 93 is
 * 60 bits (eight-byte draws). */
static uint64_t le_bytes(const unsigned char *p, size_t width)
{
    uint64_t v = 0;
    for (size_t b = width; b-- > 0;) v = v << 8 | p[b];
    return v;
}

static int pop(uint64_t x)
{
    int c = 0;
    for (; x; x &= x - 1) c++;
    return c;
}

Test(ckks_scheme, samplers_match_the_chacha20_keystream)
{
    enum { N = 3000 };
    unsigned char seed[32];
    for (int i = 0; i < 32; i++) seed[i] = (unsigned char)(7 * i + 1);
    const uint32_t domain = 5;
    const uint64_t qs[2] = {(1ULL << 39) + 9, (1ULL << 60) - 93};
    ntt_modulus_t mod[2];
    for (int i = 0; i < 2; i++) cr_assert_eq(ntt_modulus_init(&mod[i], qs[i]), NTT_OK);
    uint64_t *got = malloc(2 * N * sizeof *got);
    int8_t err[N];
    ckks_stream_t st;
    ckks_stream_init_seed(&st, seed, domain);
    ckks_sample_uniform_mod(&st, mod, 2, N, got);
    ckks_sample_cbd(&st, N, err);
    ckks_stream_wipe(&st);

    size_t len = 1 << 20, pos = 0;
    unsigned char *ks = calloc(len, 1), nonce[12] = {0};
    memcpy(nonce, &domain, sizeof domain); /* as ckks_stream_init_seed */
    crypto_stream_chacha20_ietf(ks, len, nonce, seed);
    size_t rejected = 0;
    for (int i = 0; i < 2; i++) {
        size_t width = ((size_t)mod[i].bits + 7) / 8;
        for (size_t t = 0; t < N;) {
            uint64_t v = le_bytes(ks + pos, width) & (((uint64_t)1 << mod[i].bits) - 1);
            pos += width;
            if (v >= qs[i]) {
                rejected++;
                continue;
            }
            cr_assert_eq(got[i * N + t], v, "prime %d, coefficient %zu", i, t);
            t++;
        }
    }
    cr_expect_gt(rejected, N / 4, "the 2^39 + 9 draws must exercise rejection");
    for (size_t t = 0; t < N; t++, pos += 6) {
        uint64_t r = le_bytes(ks + pos, 6);
        int want = pop(r & 0x1fffff) - pop((r >> 21) & 0x1fffff);
        cr_assert_eq(err[t], want, "error coefficient %zu", t);
    }
    free(ks);
    free(got);
}
