/* Hybrid key switching (ckks_hybrid_*): relinearization and rotations with
 * dnum-digit keys against SEAL-style key switching on the same ciphertexts.
 * The key-switching error is measured exactly, as a polynomial: the
 * decryption after the switch minus the decryption before it (the size-3
 * ciphertext, or the rotated plaintext), centred, largest coefficient. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/ckks.h"
#include "testutil.h"

typedef struct {
    ckks_context_t *ctx;
    ckks_secret_key_t *sk;
    ckks_public_key_t *pk;
    ckks_relin_key_t *rk;
    ckks_galois_keys_t *gk;
    size_t n, slots, L;
} yfix_t;

static const int rot_steps[] = {1, -3};

static void ysetup(yfix_t *f, size_t n)
{
    static const int b8192[] = {60, 40, 40, 60};
    static const int b16384[] = {60, 40, 40, 40, 40, 40, 40, 40, 60};
    ckks_params_t p;
    cr_assert_eq(ckks_params_from_bits(&p, n, n == 8192 ? b8192 : b16384, n == 8192 ? 4 : 9), CKKS_OK);
    cr_assert_eq(ckks_context_new(&p, &f->ctx), CKKS_OK);
    cr_assert_eq(test_keys_new(f->ctx, &f->sk, &f->pk, &f->rk, &f->gk, 1, rot_steps, 2, 0), CKKS_OK);
    f->n = n;
    f->slots = n / 2;
    f->L = ckks_context_data_primes(f->ctx);
}

static void yteardown(yfix_t *f) { test_keys_free(f->ctx, f->sk, f->pk, f->rk, f->gk); }

/* ct's decryption at the first prime, coefficient form. */
static void decrypt_coeffs(const yfix_t *f, const ckks_ciphertext_t *ct, uint64_t *out)
{
    ckks_plaintext_t *pt;
    cr_assert_eq(ckks_plaintext_new(f->ctx, ct->nprimes, &pt), CKKS_OK);
    cr_assert_eq(ckks_decrypt(f->sk, ct, pt), CKKS_OK);
    memcpy(out, pt->data, f->n * sizeof *out);
    ntt_inverse(ckks_context_ntt(f->ctx, 0), out);
    ckks_plaintext_free(pt);
}

/* m(X) -> m(X^g) mod q0 (negacyclic). */
static void galois_coeffs(const uint64_t *m, size_t n, uint32_t g, uint64_t q, uint64_t *out)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = (size_t)(((uint64_t)i * g) % (2 * n));
        if (j < n)
            out[j] = m[i];
        else
            out[j - n] = m[i] ? q - m[i] : 0;
    }
}

/* Largest |a - b| over the coefficients, centred mod q. */
static double max_diff(const uint64_t *a, const uint64_t *b, size_t n, uint64_t q)
{
    double e = 0;
    for (size_t t = 0; t < n; t++) {
        uint64_t d = a[t] >= b[t] ? a[t] - b[t] : a[t] + (q - b[t]);
        e = fmax(e, (double)(d > q / 2 ? q - d : d));
    }
    return e;
}

static double *random_values(test_rng_t *r, size_t count)
{
    double *v = malloc(count * sizeof *v);
    for (size_t i = 0; i < count; i++) v[i] = 2.0 * (double)(test_rng_next(r) >> 11) / 9007199254740992.0 - 1;
    return v;
}

static ckks_ciphertext_t *encrypt_values(const yfix_t *f, const double *v, size_t np)
{
    ckks_plaintext_t *pt;
    ckks_ciphertext_t *ct;
    cr_assert_eq(ckks_plaintext_new(f->ctx, np, &pt), CKKS_OK);
    cr_assert_eq(ckks_encode_real(f->ctx, v, f->slots, 0x1p40, np, pt), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f->ctx, 2, np, &ct), CKKS_OK);
    cr_assert_eq(ckks_encrypt(f->pk, pt, ct), CKKS_OK);
    ckks_plaintext_free(pt);
    return ct;
}

/* Largest slot error of ct against want (rotated left by `rot`). */
static double slot_error(const yfix_t *f, const ckks_ciphertext_t *ct, const double *want, int rot)
{
    ckks_plaintext_t *pt;
    double *got = malloc(f->slots * sizeof *got), e = 0;
    cr_assert_eq(ckks_plaintext_new(f->ctx, ct->nprimes, &pt), CKKS_OK);
    cr_assert_eq(ckks_decrypt(f->sk, ct, pt), CKKS_OK);
    cr_assert_eq(ckks_decode(f->ctx, pt, got, NULL, f->slots), CKKS_OK);
    const long S = (long)f->slots;
    for (long i = 0; i < S; i++) e = fmax(e, fabs(got[i] - want[((i + rot) % S + S) % S]));
    ckks_plaintext_free(pt);
    free(got);
    return e;
}

/* log2 of the largest digit modulus over P: the bits the switching error
 * may grow by beyond the ordinary one. */
static double digit_over_p_bits(const yfix_t *f, const ckks_hybrid_params_t *hp, size_t alpha)
{
    double worst = 0, p = 0;
    for (size_t m = 0; m < hp->count; m++) p += log2((double)hp->primes[m]);
    for (size_t lo = 0; lo < f->L; lo += alpha) {
        double d = 0;
        for (size_t i = lo; i < lo + alpha && i < f->L; i++) d += log2((double)ckks_context_prime(f->ctx, i));
        worst = fmax(worst, d);
    }
    return fmax(0, worst - p);
}

/* Relinearize a*b and rotate a with ordinary and hybrid keys (dnum digits,
 * special primes of the given sizes) at the top level and one level down;
 * the hybrid switching error stays within 4x the ordinary one and the
 * values within 1e-5 of the plaintext computation (both times Q_j / P where
 * P is below the largest digit modulus Q_j). */
static void check_hybrid(yfix_t *f, size_t dnum, const int *bits, size_t ks, size_t want_alpha)
{
    const size_t n = f->n, S = f->slots;
    ckks_hybrid_params_t hp;
    cr_assert_eq(ckks_hybrid_params_from_bits(f->ctx, dnum, bits, ks, &hp), CKKS_OK);
    hp.allow_insecure = 1; /* the test's point is the arithmetic */
    ckks_hybrid_t *h;
    cr_assert_eq(ckks_hybrid_new(f->ctx, &hp, &h), CKKS_OK);
    cr_expect_eq(ckks_hybrid_alpha(h), want_alpha);
    ckks_relin_key_t *hrk;
    ckks_galois_keys_t *hgk;
    cr_assert_eq(ckks_relin_key_new_hybrid(f->sk, h, &hrk), CKKS_OK);
    cr_assert_eq(ckks_galois_keys_new_hybrid(f->sk, h, rot_steps, 2, 0, &hgk), CKKS_OK);
    cr_expect_eq(ckks_relin_key_bytes(hrk), ckks_hybrid_dnum(h) * 2 * (f->L + ks) * n * 8);
    /* P below the largest digit modulus Q_j costs log2(Q_j / P) bits. */
    const double over = exp2(digit_over_p_bits(f, &hp, want_alpha)), slack = 4 * over, tol = 1e-5 * over;

    test_rng_t r = {n + dnum * 7 + ks};
    double *a = random_values(&r, S), *b = random_values(&r, S), *ab = malloc(S * sizeof *ab);
    for (size_t i = 0; i < S; i++) ab[i] = a[i] * b[i];
    uint64_t *m0 = malloc(n * 8), *m1 = malloc(n * 8), *mg = malloc(n * 8);
    const uint64_t q0 = ckks_context_prime(f->ctx, 0);
    ckks_ciphertext_t *t3, *out;
    cr_assert_eq(ckks_ciphertext_new(f->ctx, 3, 0, &t3), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f->ctx, 3, 0, &out), CKKS_OK);
    /* The top level and one below; every level down to one prime when L is small. */
    for (size_t np = f->L; np >= 1 && (np + 2 > f->L || f->L <= 3); np--) {
        ckks_ciphertext_t *ca = encrypt_values(f, a, np), *cb = encrypt_values(f, b, np);
        /* Relinearization (the product's scale 2^80 needs two primes). */
        if (np >= 2) {
            cr_assert_eq(ckks_multiply(ca, cb, t3), CKKS_OK);
            decrypt_coeffs(f, t3, m0);
            cr_assert_eq(ckks_relinearize(t3, f->rk, out), CKKS_OK);
            decrypt_coeffs(f, out, m1);
            double e_ord = max_diff(m0, m1, n, q0);
            cr_assert_eq(ckks_relinearize(t3, hrk, out), CKKS_OK);
            cr_expect_eq(out->size, 2);
            decrypt_coeffs(f, out, m1);
            double e_hyb = max_diff(m0, m1, n, q0);
            cr_log_info("N=%zu np=%zu dnum=%zu ks=%zu relin: ordinary %.0f, hybrid %.0f", n, np, dnum, ks, e_ord,
                        e_hyb);
            cr_expect_leq(e_hyb, slack * fmax(e_ord, 1), "N=%zu np=%zu dnum=%zu ks=%zu relin: hybrid %g ordinary %g",
                          n, np, dnum, ks, e_hyb, e_ord);
            cr_assert_eq(ckks_rescale(out, out), CKKS_OK);
            double ev = slot_error(f, out, ab, 0);
            cr_expect_lt(ev, tol, "N=%zu np=%zu dnum=%zu relin: slot error %g", n, np, dnum, ev);
        }
        /* Rotations (and conjugation-free Galois keys: the steps only). */
        for (size_t k = 0; k < 2; k++) {
            uint32_t g = ckks_galois_elt_rotate(f->ctx, rot_steps[k]);
            decrypt_coeffs(f, ca, m0);
            galois_coeffs(m0, n, g, q0, mg);
            cr_assert_eq(ckks_rotate(ca, rot_steps[k], f->gk, out), CKKS_OK);
            decrypt_coeffs(f, out, m1);
            double r_ord = max_diff(mg, m1, n, q0), ev_ord = slot_error(f, out, a, rot_steps[k]);
            cr_assert_eq(ckks_rotate(ca, rot_steps[k], hgk, out), CKKS_OK);
            decrypt_coeffs(f, out, m1);
            double r_hyb = max_diff(mg, m1, n, q0);
            cr_log_info("N=%zu np=%zu dnum=%zu ks=%zu rotate %d: ordinary %.0f, hybrid %.0f", n, np, dnum, ks,
                        rot_steps[k], r_ord, r_hyb);
            cr_expect_leq(r_hyb, slack * fmax(r_ord, 1),
                          "N=%zu np=%zu dnum=%zu ks=%zu rotate %d: hybrid %g ordinary %g", n, np, dnum, ks,
                          rot_steps[k], r_hyb, r_ord);
            double ev = slot_error(f, out, a, rot_steps[k]);
            cr_log_info("  slot error: ordinary %.1f bits, hybrid %.1f bits", -log2(ev_ord), -log2(ev));
            cr_expect_leq(ev, slack * ev_ord, "N=%zu np=%zu dnum=%zu rotate %d: slot error %g, ordinary %g", n, np,
                          dnum, rot_steps[k], ev, ev_ord);
            cr_expect_lt(ev, tol, "N=%zu np=%zu dnum=%zu rotate %d: slot error %g", n, np, dnum, rot_steps[k], ev);
        }
        ckks_ciphertext_free(ca);
        ckks_ciphertext_free(cb);
    }
    ckks_ciphertext_free(t3);
    ckks_ciphertext_free(out);
    ckks_galois_keys_free(hgk);
    ckks_relin_key_free(hrk);
    ckks_hybrid_free(h);
    free(a);
    free(b);
    free(ab);
    free(m0);
    free(m1);
    free(mg);
}

Test(ckks_hybrid, relin_and_rotate_n8192, .timeout = 60)
{
    yfix_t f;
    ysetup(&f, 8192);
    static const int b60[] = {60}, b50x2[] = {50, 50}, b50x3[] = {50, 50, 50};
    check_hybrid(&f, 3, b60, 1, 1);   /* SEAL's shape: one digit per prime */
    check_hybrid(&f, 2, b50x2, 2, 2); /* digits {60, 40}, {40} */
    check_hybrid(&f, 1, b50x3, 3, 3); /* one digit: a single key polynomial pair */
    yteardown(&f);
}

Test(ckks_hybrid, relin_and_rotate_n16384, .timeout = 120)
{
    yfix_t f;
    ysetup(&f, 16384);
    static const int b61x3[] = {61, 61, 61}, b49x2[] = {49, 49}, b50x3[] = {50, 50, 50};
    check_hybrid(&f, 2, b61x3, 3, 4); /* fewer special primes (3) than alpha (4): 183 bits >= 180 */
    check_hybrid(&f, 3, b50x3, 3, 3); /* digits of 3, 3, 2 primes */
    check_hybrid(&f, 4, b49x2, 2, 2); /* 340 + 98 bits: within the 438-bit limit */
    yteardown(&f);
}

Test(ckks_hybrid, wrong_key_params_and_formats, .timeout = 60)
{
    yfix_t f;
    ysetup(&f, 8192);
    const size_t S = f.slots;
    static const int b50x2[] = {50, 50};
    ckks_hybrid_params_t hp;
    cr_assert_eq(ckks_hybrid_params_from_bits(f.ctx, 2, b50x2, 2, &hp), CKKS_OK);
    /* 140 data bits + 100 special bits > 218 at N=8192. */
    ckks_hybrid_t *h = NULL;
    cr_expect_eq(ckks_hybrid_new(f.ctx, &hp, &h), CKKS_EINSECURE);
    hp.allow_insecure = 1;
    ckks_hybrid_params_t bad = hp;
    bad.dnum = 0;
    cr_expect_eq(ckks_hybrid_new(f.ctx, &bad, &h), CKKS_EPARAMS);
    bad.dnum = f.L + 1;
    cr_expect_eq(ckks_hybrid_new(f.ctx, &bad, &h), CKKS_EPARAMS);
    bad = hp;
    bad.primes[1] = ckks_context_prime(f.ctx, 1); /* a data prime */
    cr_expect_eq(ckks_hybrid_new(f.ctx, &bad, &h), CKKS_EPARAMS);
    bad = hp;
    bad.primes[1] = bad.primes[0];
    cr_expect_eq(ckks_hybrid_new(f.ctx, &bad, &h), CKKS_EPARAMS);
    bad.primes[1] = bad.primes[0] + 2; /* not 1 mod 2N */
    cr_expect_eq(ckks_hybrid_new(f.ctx, &bad, &h), CKKS_EPARAMS);
    for (size_t m = 0; m < hp.count; m++) {
        cr_expect(hp.primes[m] < (1ULL << 50) && hp.primes[m] % (2 * f.n) == 1);
        cr_expect(test_is_prime_gmp(hp.primes[m]));
    }
    cr_assert_eq(ckks_hybrid_new(f.ctx, &hp, &h), CKKS_OK);
    cr_expect_eq(ckks_hybrid_dnum(h), 2);

    /* A key of another secret: the result is noise. */
    ckks_secret_key_t *other;
    ckks_relin_key_t *wrong, *hrk;
    ckks_galois_keys_t *wrong_gk, *hgk;
    cr_assert_eq(ckks_secret_key_new(f.ctx, &other), CKKS_OK);
    cr_assert_eq(ckks_relin_key_new_hybrid(other, h, &wrong), CKKS_OK);
    cr_assert_eq(ckks_galois_keys_new_hybrid(other, h, rot_steps, 1, 0, &wrong_gk), CKKS_OK);
    cr_assert_eq(ckks_relin_key_new_hybrid(f.sk, h, &hrk), CKKS_OK);
    cr_assert_eq(ckks_galois_keys_new_hybrid(f.sk, h, rot_steps, 1, 0, &hgk), CKKS_OK);
    test_rng_t r = {99};
    double *a = random_values(&r, S), *a2 = malloc(S * sizeof *a2);
    for (size_t i = 0; i < S; i++) a2[i] = a[i] * a[i];
    ckks_ciphertext_t *ca = encrypt_values(&f, a, 0), *out;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 3, 0, &out), CKKS_OK);
    cr_assert_eq(ckks_square(ca, out), CKKS_OK);
    cr_assert_eq(ckks_relinearize(out, wrong, out), CKKS_OK);
    cr_assert_eq(ckks_rescale(out, out), CKKS_OK);
    cr_expect_gt(slot_error(&f, out, a2, 0), 1e3);
    cr_assert_eq(ckks_rotate(ca, 1, wrong_gk, out), CKKS_OK);
    cr_expect_gt(slot_error(&f, out, a, 1), 1e3);
    /* The right one, in place. */
    cr_assert_eq(ckks_square(ca, out), CKKS_OK);
    cr_assert_eq(ckks_relinearize(out, hrk, out), CKKS_OK);
    cr_assert_eq(ckks_rescale(out, out), CKKS_OK);
    cr_expect_lt(slot_error(&f, out, a2, 0), 1e-5);

    /* Identical for any thread count. */
    ckks_ciphertext_t *t1;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 3, 0, &t1), CKKS_OK);
    cr_assert_eq(ckks_square(ca, out), CKKS_OK);
    cr_assert_eq(ckks_relinearize(out, hrk, t1), CKKS_OK);
    cr_assert_eq(ckks_context_set_threads(f.ctx, 2), CKKS_OK);
    cr_assert_eq(ckks_relinearize(out, hrk, out), CKKS_OK);
    cr_assert_eq(ckks_context_set_threads(f.ctx, 1), CKKS_OK);
    cr_expect(memcmp(out->data, t1->data, 2 * f.L * f.n * 8) == 0);
    ckks_ciphertext_free(t1);

    /* Hoisted rotations take hybrid keys one at a time: ckks_rotate's results. */
    ckks_ciphertext_t *h0, *h1, *ref;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &h0), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &h1), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &ref), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_copy(h1, ca), CKKS_OK);
    int st[2] = {1, 0};
    ckks_ciphertext_t *outs[2] = {h0, h1};
    cr_assert_eq(ckks_rotate_hoisted(h1, st, 2, hgk, outs), CKKS_OK);
    cr_assert_eq(ckks_rotate(ca, 1, hgk, ref), CKKS_OK);
    cr_expect(memcmp(h0->data, ref->data, 2 * f.L * f.n * 8) == 0);
    cr_expect(memcmp(h1->data, ca->data, 2 * f.L * f.n * 8) == 0);

    /* Neither file format carries hybrid keys. */
    void *buf = NULL;
    size_t len = 0;
    cr_expect_eq(ckks_write_relin_key(hrk, &buf, &len), CKKS_EUNSUPPORTED);
    cr_expect_eq(ckks_write_galois_keys(hgk, &buf, &len), CKKS_EUNSUPPORTED);
    cr_expect_eq(ckks_seal_write_relin_key(hrk, CKKS_SEAL_COMPR_NONE, &buf, &len), CKKS_EUNSUPPORTED);
    cr_expect_eq(ckks_seal_write_galois_keys(hgk, CKKS_SEAL_COMPR_NONE, &buf, &len), CKKS_EUNSUPPORTED);
    cr_expect_null(buf);
    /* Ordinary keys' size is SEAL's. */
    cr_expect_eq(ckks_relin_key_bytes(f.rk), f.L * 2 * (f.L + 1) * f.n * 8);
    ckks_relin_key_t *none = NULL;
    cr_expect_eq(ckks_relin_key_new_hybrid(f.sk, NULL, &none), CKKS_EINVAL);

    ckks_ciphertext_free(h0);
    ckks_ciphertext_free(h1);
    ckks_ciphertext_free(ref);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(out);
    ckks_relin_key_free(wrong);
    ckks_relin_key_free(hrk);
    ckks_galois_keys_free(wrong_gk);
    ckks_galois_keys_free(hgk);
    ckks_secret_key_free(other);
    ckks_hybrid_free(h);
    free(a);
    free(a2);
    yteardown(&f);
}
