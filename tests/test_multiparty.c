/* Multiparty CKKS (ckks/multiparty.c) against the definitions: whatever the
 * K parties' shares combine into must behave as keys of the collective
 * secret s = s_1 + ... + s_K (decrypting with that sum recovers messages
 * encrypted, relinearized and rotated with the collective keys), no proper
 * subset of the shares (with or without the analyst's key) decrypts, and a
 * public-key switch released to the analyst decrypts with the analyst's
 * ordinary key only when every party's share is in. The independent
 * reference is the plaintext itself: the messages are known doubles. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "ckks/ckks.h"
#include "testutil.h"

#define K 3
#define SMUDGE 16
#define MP_DEFAULT_SMUDGE STATS_MP_SMUDGE_BITS

typedef struct {
    ckks_context_t *ctx;
    ckks_secret_key_t *s[K];   /* party shares */
    ckks_secret_key_t *u[K];   /* ephemeral RKG secrets */
    ckks_secret_key_t *sum;    /* s_1 + ... + s_K, for checking only */
    ckks_secret_key_t *analyst;
    ckks_public_key_t *analyst_pk;
    ckks_public_key_t *pk;
    ckks_relin_key_t *rk;
    ckks_galois_keys_t *gk;
    uint8_t seed[CKKS_MP_SEED_BYTES];
    size_t slots;
} mp_t;

static const int steps[] = {1, -3, 16};

static ckks_mp_share_t *sum_of(ckks_mp_share_t **sh, size_t count)
{
    ckks_mp_share_t *acc;
    cr_assert_eq(ckks_mp_share_zero_like(sh[0], &acc), CKKS_OK);
    for (size_t i = 0; i < count; i++) cr_assert_eq(ckks_mp_aggregate(acc, sh[i]), CKKS_OK);
    return acc;
}

static void free_all(ckks_mp_share_t **sh, size_t count)
{
    for (size_t i = 0; i < count; i++) ckks_mp_share_free(sh[i]);
}

static void mp_setup(mp_t *f)
{
    memset(f, 0, sizeof *f);
    static const int bits[] = {60, 40, 40, 60};
    ckks_params_t p;
    cr_assert_eq(ckks_params_from_bits(&p, 8192, bits, 4), CKKS_OK);
    cr_assert_eq(ckks_context_new(&p, &f->ctx), CKKS_OK);
    f->slots = ckks_context_slots(f->ctx);
    for (size_t i = 0; i < CKKS_MP_SEED_BYTES; i++) f->seed[i] = (uint8_t)(7 * i + 1);
    for (int i = 0; i < K; i++) {
        cr_assert_eq(ckks_secret_key_new(f->ctx, &f->s[i]), CKKS_OK);
        cr_assert_eq(ckks_secret_key_new(f->ctx, &f->u[i]), CKKS_OK);
    }
    cr_assert_eq(ckks_mp_secret_sum((const ckks_secret_key_t *const *)f->s, K, &f->sum), CKKS_OK);
    cr_assert_eq(ckks_secret_key_new(f->ctx, &f->analyst), CKKS_OK);
    cr_assert_eq(ckks_public_key_new(f->analyst, &f->analyst_pk), CKKS_OK);

    /* CKG */
    ckks_mp_share_t *sh[K], *agg;
    for (int i = 0; i < K; i++) cr_assert_eq(ckks_mp_ckg_share(f->s[i], f->seed, &sh[i]), CKKS_OK);
    agg = sum_of(sh, K);
    cr_assert_eq(ckks_mp_public_key(f->ctx, f->seed, agg, &f->pk), CKKS_OK);
    ckks_mp_share_free(agg);
    free_all(sh, K);
    /* RKG, two rounds */
    for (int i = 0; i < K; i++) cr_assert_eq(ckks_mp_rkg_round1(f->s[i], f->u[i], f->seed, &sh[i]), CKKS_OK);
    ckks_mp_share_t *r1 = sum_of(sh, K);
    free_all(sh, K);
    for (int i = 0; i < K; i++) cr_assert_eq(ckks_mp_rkg_round2(f->s[i], f->u[i], r1, &sh[i]), CKKS_OK);
    ckks_mp_share_t *r2 = sum_of(sh, K);
    free_all(sh, K);
    cr_assert_eq(ckks_mp_relin_key(r1, r2, &f->rk), CKKS_OK);
    ckks_mp_share_free(r1);
    ckks_mp_share_free(r2);
    /* GKG: one round per element (the steps and conjugation) */
    const size_t ne = sizeof steps / sizeof *steps + 1;
    ckks_mp_share_t *sums[8];
    for (size_t e = 0; e < ne; e++) {
        uint32_t elt = e + 1 < ne ? ckks_galois_elt_rotate(f->ctx, steps[e]) : ckks_galois_elt_conjugate(f->ctx);
        for (int i = 0; i < K; i++) cr_assert_eq(ckks_mp_gkg_share(f->s[i], f->seed, elt, &sh[i]), CKKS_OK);
        sums[e] = sum_of(sh, K);
        free_all(sh, K);
    }
    cr_assert_eq(ckks_mp_galois_keys(f->ctx, f->seed, (const ckks_mp_share_t *const *)sums, ne, &f->gk), CKKS_OK);
    free_all(sums, ne);
}

static void mp_teardown(mp_t *f)
{
    for (int i = 0; i < K; i++) {
        ckks_secret_key_free(f->s[i]);
        ckks_secret_key_free(f->u[i]);
    }
    ckks_secret_key_free(f->sum);
    ckks_secret_key_free(f->analyst);
    ckks_public_key_free(f->analyst_pk);
    ckks_public_key_free(f->pk);
    ckks_relin_key_free(f->rk);
    ckks_galois_keys_free(f->gk);
    ckks_context_free(f->ctx);
}

static void random_values(size_t n, uint64_t seed, double *v)
{
    test_rng_t r = {seed};
    for (size_t i = 0; i < n; i++) v[i] = 2.0 * (double)(test_rng_next(&r) >> 11) / 9007199254740992.0 - 1;
}

static ckks_ciphertext_t *encrypt_values(mp_t *f, const double *v)
{
    ckks_plaintext_t *pt;
    ckks_ciphertext_t *ct;
    cr_assert_eq(ckks_plaintext_new(f->ctx, 0, &pt), CKKS_OK);
    cr_assert_eq(ckks_encode_real(f->ctx, v, f->slots, 0x1p40, 0, pt), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f->ctx, 2, 0, &ct), CKKS_OK);
    cr_assert_eq(ckks_encrypt(f->pk, pt, ct), CKKS_OK);
    ckks_plaintext_free(pt);
    return ct;
}

/* Largest |decrypt(sk, ct) - want| over the slots (want[i] for i < slots). */
static double err_with(mp_t *f, const ckks_secret_key_t *sk, const ckks_ciphertext_t *ct, const double *want)
{
    ckks_plaintext_t *pt;
    double *got = malloc(f->slots * sizeof *got), e = 0;
    cr_assert_eq(ckks_plaintext_new(f->ctx, 0, &pt), CKKS_OK);
    cr_assert_eq(ckks_decrypt(sk, ct, pt), CKKS_OK);
    cr_assert_eq(ckks_decode(f->ctx, pt, got, NULL, f->slots), CKKS_OK);
    for (size_t i = 0; i < f->slots; i++) e = fmax(e, fabs(got[i] - want[i]));
    ckks_plaintext_free(pt);
    free(got);
    return e;
}

/* Sum of the shares of the parties in mask (bit i: party i), plus the
 * analyst's key when with_analyst: what a coalition could try. */
static ckks_secret_key_t *coalition(mp_t *f, unsigned mask, int with_analyst)
{
    const ckks_secret_key_t *keys[K + 1];
    size_t c = 0;
    for (int i = 0; i < K; i++)
        if (mask & (1u << i)) keys[c++] = f->s[i];
    if (with_analyst) keys[c++] = f->analyst;
    ckks_secret_key_t *sk;
    cr_assert_eq(ckks_mp_secret_sum(keys, c, &sk), CKKS_OK);
    return sk;
}

/* The bound below which a correct decryption lands (fresh encryption at
 * 2^40 under the collective key: noise ~2^10 in coefficients, ~1e-7 in
 * slots) and the floor above which every coalition's attempt lands (a
 * uniform residue mod q_0 q_1 q_2 / 2^40: ~2^99, far beyond 1e3). */
#define OK_BOUND 1e-5
#define GARBAGE 1e3

Test(multiparty, collective_public_key_encrypts_to_the_sum_of_shares)
{
    mp_t f;
    mp_setup(&f);
    double *v = malloc(f.slots * sizeof *v);
    random_values(f.slots, 1, v);
    ckks_ciphertext_t *ct = encrypt_values(&f, v);
    double e = err_with(&f, f.sum, ct, v);
    cr_assert_lt(e, OK_BOUND, "collective decryption error %g", e);
    cr_assert_eq(ckks_secret_key_matches(f.sum, f.pk), CKKS_OK);
    /* No proper subset of parties, with or without the analyst, decrypts. */
    for (unsigned mask = 1; mask < (1u << K) - 1; mask++)
        for (int a = 0; a < 2; a++) {
            ckks_secret_key_t *sk = coalition(&f, mask, a);
            double ec = err_with(&f, sk, ct, v);
            cr_assert_gt(ec, GARBAGE, "coalition %u (analyst %d) decrypts within %g", mask, a, ec);
            cr_assert_gt(ec, 1e8 * e);
            cr_assert_eq(ckks_secret_key_matches(sk, f.pk), CKKS_EKEY);
            ckks_secret_key_free(sk);
        }
    /* Nor does the analyst alone. */
    cr_assert_gt(err_with(&f, f.analyst, ct, v), GARBAGE);
    ckks_ciphertext_free(ct);
    free(v);
    mp_teardown(&f);
}

Test(multiparty, collective_relin_and_galois_keys_evaluate)
{
    mp_t f;
    mp_setup(&f);
    const size_t S = f.slots;
    double *a = malloc(S * sizeof *a), *b = malloc(S * sizeof *b), *want = malloc(S * sizeof *want);
    random_values(S, 2, a);
    random_values(S, 3, b);
    ckks_ciphertext_t *ca = encrypt_values(&f, a), *cb = encrypt_values(&f, b), *out;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &out), CKKS_OK);
    /* a * b, relinearized with the collective key, rescaled */
    cr_assert_eq(ckks_multiply(ca, cb, out), CKKS_OK);
    cr_assert_eq(ckks_relinearize(out, f.rk, out), CKKS_OK);
    cr_assert_eq(ckks_rescale(out, out), CKKS_OK);
    for (size_t i = 0; i < S; i++) want[i] = a[i] * b[i];
    double e = err_with(&f, f.sum, out, want);
    cr_assert_lt(e, 1e-4, "product error %g", e);
    /* rotations by each step */
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
        cr_assert_eq(ckks_rotate(ca, steps[k], f.gk, out), CKKS_OK);
        for (size_t i = 0; i < S; i++) want[i] = a[((long)i + steps[k] + (long)S) % (long)S];
        e = err_with(&f, f.sum, out, want);
        cr_assert_lt(e, 1e-4, "rotate %d error %g", steps[k], e);
    }
    /* conjugation leaves real slots */
    cr_assert_eq(ckks_conjugate(ca, f.gk, out), CKKS_OK);
    e = err_with(&f, f.sum, out, a);
    cr_assert_lt(e, 1e-4, "conjugate error %g", e);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cb);
    ckks_ciphertext_free(out);
    free(a);
    free(b);
    free(want);
    mp_teardown(&f);
}

Test(multiparty, collective_galois_keys_are_written_compact)
{
    mp_t f;
    mp_setup(&f);
    void *buf;
    size_t len;
    cr_assert_eq(ckks_write_galois_keys(f.gk, &buf, &len), CKKS_OK);
    /* 4 keys x 3 digits x (one poly of 4 primes, packed at 60 + 40 + 40 +
     * 60 bits, + 64-byte seed) + header */
    size_t poly = (60 + 40 + 40 + 60) * 8192 / 8, want = 48 + 8 + 8 * 4 + 4 * 3 * (poly + 64);
    cr_assert_eq(len, want, "galois keys file %zu bytes, compact is %zu", len, want);
    ckks_galois_keys_t *back;
    cr_assert_eq(ckks_read_galois_keys(f.ctx, buf, len, &back), CKKS_OK);
    double *v = malloc(f.slots * sizeof *v), *want_v = malloc(f.slots * sizeof *want_v);
    random_values(f.slots, 4, v);
    ckks_ciphertext_t *ct = encrypt_values(&f, v), *r1, *r2;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &r1), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &r2), CKKS_OK);
    cr_assert_eq(ckks_rotate(ct, 1, f.gk, r1), CKKS_OK);
    cr_assert_eq(ckks_rotate(ct, 1, back, r2), CKKS_OK);
    cr_assert_eq(memcmp(r1->data, r2->data, 2 * r1->nprimes * 8192 * 8), 0);
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(r1);
    ckks_ciphertext_free(r2);
    ckks_galois_keys_free(back);
    free(buf);
    free(v);
    free(want_v);
    mp_teardown(&f);
}

/* A fold key's shares at two primes (ckks_mp_gkg_share_limited): digits 0
 * and 1 over primes 0, 1 and the special one; their sum is a key limited to
 * two primes that rotates a product rescaled to two primes correctly, refuses
 * three, and is written and read as any limited key. */
Test(multiparty, limited_galois_shares_make_limited_keys)
{
    mp_t f;
    mp_setup(&f);
    const size_t S = f.slots, n = 8192;
    const uint32_t elt = ckks_galois_elt_rotate(f.ctx, 16);
    ckks_mp_share_t *sh[K], *whole;
    for (int i = 0; i < K; i++) cr_assert_eq(ckks_mp_gkg_share_limited(f.s[i], f.seed, elt, 2, &sh[i]), CKKS_OK);
    cr_expect_eq(sh[0]->npolys, 2);
    cr_expect_eq(sh[0]->nprimes, 3);
    cr_expect_eq(ckks_mp_share_prime(f.ctx, CKKS_MP_GKG, 3, 2), 3, "the last row is the special prime's");
    void *buf;
    size_t len;
    uint8_t tag[32] = {1}, got[32];
    cr_assert_eq(ckks_mp_share_write(sh[0], tag, &buf, &len), CKKS_OK);
    cr_expect_eq(len, CKKS_HEADER_BYTES + 48 + 2 * (60 + 40 + 60) * n / 8);
    ckks_mp_share_t *back;
    cr_assert_eq(ckks_mp_share_read(f.ctx, buf, len, &back, got), CKKS_OK);
    cr_expect_eq(memcmp(back->data, sh[0]->data, 2 * 3 * n * 8), 0);
    ckks_mp_share_free(back);
    free(buf);
    /* a whole share does not add into a limited one; limits out of range */
    cr_assert_eq(ckks_mp_gkg_share(f.s[0], f.seed, elt, &whole), CKKS_OK);
    cr_expect_eq(ckks_mp_aggregate(sh[1], whole), CKKS_EINVAL);
    ckks_mp_share_free(whole);
    ckks_mp_share_t *none = NULL;
    cr_expect_eq(ckks_mp_gkg_share_limited(f.s[0], f.seed, elt, 0, &none), CKKS_EINVAL);
    cr_expect_eq(ckks_mp_gkg_share_limited(f.s[0], f.seed, elt, 4, &none), CKKS_EINVAL);
    cr_expect_null(none);
    ckks_mp_share_t *sum = sum_of(sh, K);
    free_all(sh, K);
    ckks_galois_keys_t *gk;
    cr_assert_eq(ckks_mp_galois_keys(f.ctx, f.seed, (const ckks_mp_share_t *const *)&sum, 1, &gk), CKKS_OK);
    ckks_mp_share_free(sum);
    cr_expect_eq(ckks_galois_keys_primes(gk, elt), 2);
    double *a = malloc(S * sizeof *a), *b = malloc(S * sizeof *b), *want = malloc(S * sizeof *want);
    random_values(S, 5, a);
    random_values(S, 6, b);
    ckks_ciphertext_t *ca = encrypt_values(&f, a), *cb = encrypt_values(&f, b), *prod, *out, *out2;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &prod), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &out), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &out2), CKKS_OK);
    cr_expect_eq(ckks_rotate(ca, 16, gk, out), CKKS_ELEVEL, "three primes: above the key's two");
    cr_assert_eq(ckks_multiply(ca, cb, prod), CKKS_OK);
    cr_assert_eq(ckks_relinearize(prod, f.rk, prod), CKKS_OK);
    cr_assert_eq(ckks_rescale(prod, prod), CKKS_OK);
    cr_assert_eq(prod->nprimes, 2);
    cr_assert_eq(ckks_rotate(prod, 16, gk, out), CKKS_OK);
    for (size_t i = 0; i < S; i++) want[i] = a[(i + 16) % S] * b[(i + 16) % S];
    double e = err_with(&f, f.sum, out, want);
    cr_expect_lt(e, 1e-4, "rotation at two primes with the limited collective key: error %g", e);
    cr_assert_eq(ckks_write_galois_keys(gk, &buf, &len), CKKS_OK);
    ckks_galois_keys_t *gk2;
    cr_assert_eq(ckks_read_galois_keys(f.ctx, buf, len, &gk2), CKKS_OK);
    cr_assert_eq(ckks_rotate(prod, 16, gk2, out2), CKKS_OK);
    cr_expect_eq(memcmp(out->data, out2->data, 2 * 2 * n * 8), 0, "the key read back rotates to the same bytes");
    free(buf);
    ckks_galois_keys_free(gk2);
    ckks_galois_keys_free(gk);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cb);
    ckks_ciphertext_free(prod);
    ckks_ciphertext_free(out);
    ckks_ciphertext_free(out2);
    free(a);
    free(b);
    free(want);
    mp_teardown(&f);
}

static void pcks_shares(mp_t *f, const ckks_ciphertext_t *ct, ckks_mp_share_t **sh)
{
    for (int i = 0; i < K; i++) cr_assert_eq(ckks_mp_pcks_share(f->s[i], f->analyst_pk, ct, SMUDGE, &sh[i]), CKKS_OK);
}

Test(multiparty, key_switch_releases_to_the_analyst_only_with_every_share)
{
    mp_t f;
    mp_setup(&f);
    const size_t S = f.slots;
    double *a = malloc(S * sizeof *a), *b = malloc(S * sizeof *b), *want = malloc(S * sizeof *want);
    random_values(S, 5, a);
    random_values(S, 6, b);
    /* A computed result: a * b relinearized and rescaled (2 primes). */
    ckks_ciphertext_t *ca = encrypt_values(&f, a), *cb = encrypt_values(&f, b), *res, *out;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &res), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 0, &out), CKKS_OK);
    cr_assert_eq(ckks_multiply(ca, cb, res), CKKS_OK);
    cr_assert_eq(ckks_relinearize(res, f.rk, res), CKKS_OK);
    cr_assert_eq(ckks_rescale(res, res), CKKS_OK);
    for (size_t i = 0; i < S; i++) want[i] = a[i] * b[i];
    ckks_mp_share_t *sh[K];
    pcks_shares(&f, res, sh);
    /* Every share: the analyst decrypts. Gaussian smudging of sd 2^16 per
     * party adds about 2^16 sqrt(K N) / 2^40 ~ 1e-5 per slot (sd); 1e-3 is
     * about 100 sd. */
    ckks_mp_share_t *all = sum_of(sh, K);
    cr_assert_eq(ckks_mp_pcks_apply(res, all, out), CKKS_OK);
    double e = err_with(&f, f.analyst, out, want);
    cr_assert_lt(e, 1e-3, "released error %g", e);
    cr_assert_gt(e, 1e-7, "smudging noise missing (error %g)", e);
    /* ... and nobody else: not the collective secret on the switched ciphertext. */
    cr_assert_gt(err_with(&f, f.sum, out, want), GARBAGE);
    /* Order of arrival does not matter: byte-identical sums. */
    ckks_mp_share_t *rev[K] = {sh[2], sh[0], sh[1]}, *all2 = sum_of(rev, K);
    cr_assert_eq(memcmp(all->data, all2->data, 2 * all->nprimes * 8192 * 8), 0);
    /* A missing share: the analyst's decryption is garbage. */
    for (int miss = 0; miss < K; miss++) {
        ckks_mp_share_t *part[K - 1];
        for (int i = 0, c = 0; i < K; i++)
            if (i != miss) part[c++] = sh[i];
        ckks_mp_share_t *ps = sum_of(part, K - 1);
        cr_assert_eq(ckks_mp_pcks_apply(res, ps, out), CKKS_OK);
        double em = err_with(&f, f.analyst, out, want);
        cr_assert_gt(em, GARBAGE, "released without party %d: error %g", miss + 1, em);
        ckks_mp_share_free(ps);
    }
    /* A key-switch share alone is no ciphertext of anything for the analyst. */
    ckks_ciphertext_t *alone;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, res->nprimes, &alone), CKKS_OK);
    memcpy(alone->data, sh[0]->data, 2 * res->nprimes * 8192 * 8);
    alone->scale = res->scale;
    cr_assert_gt(err_with(&f, f.analyst, alone, want), GARBAGE);
    /* Nor is a party's public CKG share with the common a. */
    ckks_mp_share_t *ckg;
    cr_assert_eq(ckks_mp_ckg_share(f.s[0], f.seed, &ckg), CKKS_OK);
    ckks_ciphertext_t *pub;
    cr_assert_eq(ckks_ciphertext_new(f.ctx, 2, 2, &pub), CKKS_OK);
    memcpy(pub->data, ckg->data, 2 * 8192 * 8);
    void *pkbuf; /* the public key's a: words after b (4 primes) in its file, packed at 60 + 40 + 40 + 60 bits */
    size_t pklen;
    cr_assert_eq(ckks_write_public_key(f.pk, &pkbuf, &pklen), CKKS_OK);
    cr_assert_eq(pklen, 48 + 2 * (60 + 40 + 40 + 60) * 8192 / 8);
    const uint8_t *a_words = (const uint8_t *)pkbuf + 48 + (60 + 40 + 40 + 60) * 8192 / 8;
    static const unsigned bits[2] = {60, 40};
    for (size_t i = 0, bit = 0; i < 2; i++)
        for (size_t t = 0; t < 8192; t++, bit += bits[i]) {
            uint64_t w = 0;
            for (unsigned b = 0; b < bits[i]; b++)
                w |= (uint64_t)((a_words[(bit + b) / 8] >> ((bit + b) % 8)) & 1) << b;
            pub->data[2 * 8192 + i * 8192 + t] = w;
        }
    free(pkbuf);
    pub->scale = 0x1p40;
    cr_assert_gt(err_with(&f, f.analyst, pub, want), GARBAGE);
    ckks_ciphertext_free(pub);
    ckks_mp_share_free(ckg);
    /* A share for another ciphertext does not switch this one. */
    ckks_mp_share_t *other[K];
    pcks_shares(&f, ca, other); /* ca has 3 primes: wrong level */
    ckks_mp_share_t *os = sum_of(other, K);
    cr_assert_eq(ckks_mp_pcks_apply(res, os, out), CKKS_ELEVEL);
    ckks_mp_share_free(os);
    free_all(other, K);
    ckks_ciphertext_free(alone);
    ckks_mp_share_free(all);
    ckks_mp_share_free(all2);
    free_all(sh, K);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cb);
    ckks_ciphertext_free(res);
    ckks_ciphertext_free(out);
    free(a);
    free(b);
    free(want);
    mp_teardown(&f);
}

Test(multiparty, shares_serialize_and_refuse_damage)
{
    mp_t f;
    mp_setup(&f);
    ckks_mp_share_t *sh, *back, *other;
    cr_assert_eq(ckks_mp_gkg_share(f.s[1], f.seed, ckks_galois_elt_rotate(f.ctx, 1), &sh), CKKS_OK);
    uint8_t tag[32], got[32];
    for (int i = 0; i < 32; i++) tag[i] = (uint8_t)(255 - i);
    void *buf;
    size_t len;
    cr_assert_eq(ckks_mp_share_write(sh, tag, &buf, &len), CKKS_OK);
    cr_assert_eq(ckks_mp_share_read(f.ctx, buf, len, &back, got), CKKS_OK);
    cr_assert_eq(memcmp(tag, got, 32), 0);
    cr_assert_eq(back->kind, CKKS_MP_GKG);
    cr_assert_eq(back->elt, sh->elt);
    cr_assert_eq(memcmp(back->data, sh->data, sh->npolys * sh->nprimes * 8192 * 8), 0);
    ckks_mp_share_free(back);
    {
        /* Written packed (flag 2): each prime's words at its width, 60, 40,
         * 40 and 60 bits for the k - 1 = 3 digits of a Galois share. */
        const size_t n = 8192, words = sh->npolys * sh->nprimes * n;
        uint32_t flags;
        memcpy(&flags, (uint8_t *)buf + 12, 4);
        cr_expect_eq(flags, (uint32_t)CKKS_FLAG_PACKED);
        cr_expect_eq(len, CKKS_HEADER_BYTES + 48 + 3 * (60 + 40 + 40 + 60) * n / 8);
        const uint8_t *pk = (const uint8_t *)buf + CKKS_HEADER_BYTES + 48;
        cr_expect_eq(pk[0] | (uint64_t)pk[1] << 8 | (uint64_t)pk[2] << 16 | (uint64_t)pk[3] << 24 |
                         (uint64_t)pk[4] << 32 | (uint64_t)pk[5] << 40 | (uint64_t)pk[6] << 48 |
                         ((uint64_t)pk[7] & 0x0f) << 56,
                     sh->data[0], "the first 60-bit field is word 0");
        /* The form written before (64-bit words, flags 0) still reads, to the same words. */
        size_t wlen = CKKS_HEADER_BYTES + 48 + words * 8;
        uint8_t *wide = malloc(wlen);
        cr_assert_not_null(wide);
        memcpy(wide, buf, CKKS_HEADER_BYTES + 48);
        memcpy(wide + CKKS_HEADER_BYTES + 48, sh->data, words * 8);
        uint32_t zero = 0;
        uint64_t plen = wlen - CKKS_HEADER_BYTES, sum;
        memcpy(wide + 12, &zero, 4);
        memcpy(wide + 24, &plen, 8);
        sum = XXH3_64bits(wide + CKKS_HEADER_BYTES, plen);
        memcpy(wide + 32, &sum, 8);
        cr_assert_eq(ckks_mp_share_read(f.ctx, wide, wlen, &back, got), CKKS_OK);
        cr_expect_eq(memcmp(back->data, sh->data, words * 8), 0);
        ckks_mp_share_free(back);
        /* the wide form with the packed flag, and a packed field at or above its prime */
        memcpy(wide + 12, &(uint32_t){CKKS_FLAG_PACKED}, 4);
        cr_expect_eq(ckks_mp_share_read(f.ctx, wide, wlen, &back, got), CKKS_EFORMAT);
        free(wide);
        uint8_t *bad = malloc(len);
        cr_assert_not_null(bad);
        memcpy(bad, buf, len);
        memset(bad + CKKS_HEADER_BYTES + 48, 0xff, 7);
        bad[CKKS_HEADER_BYTES + 48 + 7] |= 0x0f;
        sum = XXH3_64bits(bad + CKKS_HEADER_BYTES, len - CKKS_HEADER_BYTES);
        memcpy(bad + 32, &sum, 8);
        cr_expect_eq(ckks_mp_share_read(f.ctx, bad, len, &back, got), CKKS_EFORMAT);
        free(bad);
    }
    ckks_obj_type_t type;
    cr_assert_eq(ckks_object_type(buf, len, &type), CKKS_OK);
    cr_assert_eq(type, CKKS_OBJ_MP_SHARE);
    /* truncated, a flipped bit, another object type */
    cr_assert_eq(ckks_mp_share_read(f.ctx, buf, len - 1, &back, got), CKKS_EFORMAT);
    ((uint8_t *)buf)[len / 2] ^= 1;
    cr_assert_eq(ckks_mp_share_read(f.ctx, buf, len, &back, got), CKKS_EFORMAT);
    free(buf);
    cr_assert_eq(ckks_write_public_key(f.pk, &buf, &len), CKKS_OK);
    cr_assert_eq(ckks_mp_share_read(f.ctx, buf, len, &back, got), CKKS_EFORMAT);
    free(buf);
    /* another context (other primes): refused by the parameter hash */
    static const int bits[] = {60, 40, 60};
    ckks_params_t p;
    ckks_context_t *c2;
    cr_assert_eq(ckks_params_from_bits(&p, 8192, bits, 3), CKKS_OK);
    cr_assert_eq(ckks_context_new(&p, &c2), CKKS_OK);
    cr_assert_eq(ckks_mp_share_write(sh, tag, &buf, &len), CKKS_OK);
    cr_assert_neq(ckks_mp_share_read(c2, buf, len, &back, got), CKKS_OK);
    free(buf);
    ckks_context_free(c2);
    /* aggregation refuses shares of another kind or element */
    cr_assert_eq(ckks_mp_gkg_share(f.s[0], f.seed, ckks_galois_elt_rotate(f.ctx, 16), &other), CKKS_OK);
    cr_assert_eq(ckks_mp_aggregate(sh, other), CKKS_EINVAL);
    ckks_mp_share_free(other);
    cr_assert_eq(ckks_mp_ckg_share(f.s[0], f.seed, &other), CKKS_OK);
    cr_assert_eq(ckks_mp_aggregate(sh, other), CKKS_EINVAL);
    ckks_mp_share_free(other);
    ckks_mp_share_free(sh);
    /* bad arguments */
    cr_assert_eq(ckks_mp_gkg_share(f.s[0], f.seed, 2, &sh), CKKS_EINVAL);   /* even element */
    cr_assert_eq(ckks_mp_pcks_share(f.s[0], f.analyst_pk, NULL, 20, &sh), CKKS_EINVAL);
    mp_teardown(&f);
}

/* ---- accuracy of released statistics ---------------------------------------------
 * The whole pipeline with collective keys: three parties each encrypt a third
 * of the table under the collective key, the server computes W2 on each and
 * adds the results, every party sends its key-switch share (smudging
 * 2^smudge) for every result ciphertext, and the analyst decrypts with an
 * ordinary key of their own. Checked against the plaintext reference with
 * the single-key bounds: means 1e-6 relative, sd 1e-5 relative, correlations
 * 1e-5 absolute. The table is ../shared/data's Framingham file when present,
 * else the generated one with the same schema. HESTAT_MP_SWEEP=1 logs the
 * worst errors for smudging 0..24 bits (docs/multiparty.md). */
#include "stats/stats.h"

static stats_table_t *rows_of(const stats_table_t *t, size_t from, size_t to)
{
    stats_table_t *p;
    cr_assert_eq(stats_table_new(t->ncols, to - from, &p), STATS_OK);
    memcpy(p->names, t->names, sizeof p->names);
    memcpy(p->values, t->values + from * t->ncols, (to - from) * t->ncols * sizeof *p->values);
    return p;
}

typedef struct {
    double mean, sd, corr;
} worst_t;

static worst_t released_errors(mp_t *f, const stats_table_t *t, const stats_layout_t *lay,
                               const stats_enc_result_t *res, int smudge)
{
    /* every party's share of every ciphertext, summed, applied */
    stats_enc_result_t rel = *res;
    rel.cts = calloc(res->count, sizeof *rel.cts);
    for (size_t j = 0; j < res->count; j++) {
        ckks_mp_share_t *sh[K];
        for (int i = 0; i < K; i++)
            cr_assert_eq(ckks_mp_pcks_share(f->s[i], f->analyst_pk, res->cts[j], smudge, &sh[i]), CKKS_OK);
        ckks_mp_share_t *sum = sum_of(sh, K);
        cr_assert_eq(ckks_ciphertext_new(f->ctx, 2, res->cts[j]->nprimes, &rel.cts[j]), CKKS_OK);
        cr_assert_eq(ckks_mp_pcks_apply(res->cts[j], sum, rel.cts[j]), CKKS_OK);
        ckks_mp_share_free(sum);
        free_all(sh, K);
    }
    static stats_result_t out;
    static stats_moments_t ref[STATS_MAX_COLS];
    static stats_pair_t refp[STATS_MAX_COLS * STATS_MAX_COLS];
    cr_assert_eq(stats_decrypt(f->ctx, f->analyst, &rel, &out), STATS_OK, "%s", stats_error());
    cr_assert_eq(stats_reference(t, ref, refp), STATS_OK);
    worst_t w = {0, 0, 0};
    for (size_t c = 0; c < t->ncols; c++) {
        cr_assert_eq(out.cols[c].count, ref[c].count, "%s count", t->names[c]);
        long double fac = lay->factor[c];
        if (fabsl(ref[c].mean) >= 1e-3L * fac)
            w.mean = fmax(w.mean, (double)(fabsl(out.cols[c].mean - ref[c].mean) / fabsl(ref[c].mean)));
        if (ref[c].sd >= 1e-3L * fac)
            w.sd = fmax(w.sd, (double)(fabsl(out.cols[c].sd - ref[c].sd) / ref[c].sd));
        for (size_t j = 0; j < t->ncols; j++) {
            const stats_pair_t *a = &out.pairs[c * t->ncols + j], *b = &refp[c * t->ncols + j];
            if (j == c || isnan((double)b->corr)) continue;
            w.corr = fmax(w.corr, (double)fabsl(a->corr - b->corr));
        }
    }
    for (size_t j = 0; j < res->count; j++) ckks_ciphertext_free(rel.cts[j]);
    free(rel.cts);
    return w;
}

Test(multiparty, released_statistics_match_the_plaintext, .timeout = 600)
{
    mp_t f;
    mp_setup(&f); /* context, shares, analyst */
    stats_table_t *t = NULL;
    char err[256];
    if (stats_read_csv("../shared/data/framingham_heart_disease_raw.csv", &t, err, sizeof err) != STATS_OK)
        cr_assert_eq(stats_generate_framingham(4240, 1, &t), STATS_OK);
    stats_layout_t lay;
    cr_assert_eq(stats_layout_for(f.ctx, t, &lay), STATS_OK);
    /* collective Galois keys for this layout's rotations */
    int steps_l[64];
    size_t ns = stats_galois_steps(&lay, steps_l, 64), ne = ns + 1;
    ckks_mp_share_t *sums[65], *sh[K];
    for (size_t e = 0; e < ne; e++) {
        uint32_t elt = e < ns ? ckks_galois_elt_rotate(f.ctx, steps_l[e]) : ckks_galois_elt_conjugate(f.ctx);
        size_t np = stats_galois_key_primes(f.ctx, &lay, elt); /* the fold keys at two primes, as parties make them */
        for (int i = 0; i < K; i++)
            cr_assert_eq(ckks_mp_gkg_share_limited(f.s[i], f.seed, elt, np, &sh[i]), CKKS_OK);
        sums[e] = sum_of(sh, K);
        free_all(sh, K);
    }
    ckks_galois_keys_t *gk;
    cr_assert_eq(ckks_mp_galois_keys(f.ctx, f.seed, (const ckks_mp_share_t *const *)sums, ne, &gk), CKKS_OK);
    free_all(sums, ne);
    /* three contributors, a third of the rows each */
    stats_enc_result_t *total = NULL;
    for (int p = 0; p < K; p++) {
        stats_table_t *part = rows_of(t, t->nrows * p / K, t->nrows * (p + 1) / K);
        stats_layout_t pl = lay;
        pl.nrows = part->nrows;
        stats_enc_table_t *e;
        cr_assert_eq(stats_encrypt(f.ctx, f.pk, NULL, part, &pl, 0x1p40, &e), STATS_OK, "%s", stats_error());
        stats_enc_result_t *r;
        cr_assert_eq(stats_compute(f.ctx, e, STATS_JOB_ALL, f.rk, gk, &r, NULL), STATS_OK, "%s", stats_error());
        if (!total) {
            total = r;
        } else {
            cr_assert_eq(stats_result_add(total, r), STATS_OK, "%s", stats_error());
            stats_enc_result_free(r);
        }
        stats_enc_table_free(e);
        stats_table_free(part);
    }
    const char *sweep = getenv("HESTAT_MP_SWEEP");
    if (sweep && *sweep == '1') {
        /* The result's own noise: the same totals from a second, independent
         * encryption of the same rows differ by e_1 - e_2 only (the message
         * part is the same exact arithmetic on the same encodings). */
        stats_enc_result_t *again = NULL;
        for (int p = 0; p < K; p++) {
            stats_table_t *part = rows_of(t, t->nrows * p / K, t->nrows * (p + 1) / K);
            stats_layout_t pl = lay;
            pl.nrows = part->nrows;
            stats_enc_table_t *e;
            stats_enc_result_t *r;
            cr_assert_eq(stats_encrypt(f.ctx, f.pk, NULL, part, &pl, 0x1p40, &e), STATS_OK);
            cr_assert_eq(stats_compute(f.ctx, e, STATS_JOB_ALL, f.rk, gk, &r, NULL), STATS_OK);
            if (!again) again = r;
            else {
                cr_assert_eq(stats_result_add(again, r), STATS_OK);
                stats_enc_result_free(r);
            }
            stats_enc_table_free(e);
            stats_table_free(part);
        }
        const size_t n = 8192;
        uint64_t q = ckks_context_prime(f.ctx, 0);
        double ss = 0, mx = 0;
        size_t cnt = 0;
        for (size_t j = 0; j < total->count; j++) {
            ckks_plaintext_t *p1, *p2;
            cr_assert_eq(total->cts[j]->nprimes, 1);
            cr_assert_eq(ckks_plaintext_new(f.ctx, 1, &p1), CKKS_OK);
            cr_assert_eq(ckks_plaintext_new(f.ctx, 1, &p2), CKKS_OK);
            cr_assert_eq(ckks_decrypt(f.sum, total->cts[j], p1), CKKS_OK);
            cr_assert_eq(ckks_decrypt(f.sum, again->cts[j], p2), CKKS_OK);
            ntt_inverse(ckks_context_ntt(f.ctx, 0), p1->data);
            ntt_inverse(ckks_context_ntt(f.ctx, 0), p2->data);
            for (size_t i = 0; i < n; i++) {
                uint64_t d = (p1->data[i] + q - p2->data[i]) % q;
                double v = d > q / 2 ? -(double)(q - d) : (double)d;
                ss += v * v;
                mx = fmax(mx, fabs(v));
                cnt++;
            }
            ckks_plaintext_free(p1);
            ckks_plaintext_free(p2);
        }
        cr_log_warn("result noise at %zu prime(s), scale 2^%.1f: sd %.3g (2^%.2f), max %.3g over %zu ciphertexts",
                    total->cts[0]->nprimes, log2(total->cts[0]->scale), sqrt(ss / (double)cnt / 2),
                    log2(sqrt(ss / (double)cnt / 2)), mx / sqrt(2.0), total->count);
        stats_enc_result_free(again);
        for (int b = 0; b <= 18; b += 1) {
            worst_t w = released_errors(&f, t, &lay, total, b);
            cr_log_warn("smudge 2^%d: worst mean %.2e sd %.2e (relative) corr %.2e (absolute)", b, w.mean, w.sd,
                        w.corr);
        }
    }
    worst_t w = released_errors(&f, t, &lay, total, MP_DEFAULT_SMUDGE);
    cr_log_info("%zu rows, smudge 2^%d: worst mean %.2e sd %.2e corr %.2e", t->nrows, MP_DEFAULT_SMUDGE,
                w.mean, w.sd, w.corr);
    cr_expect_leq(w.mean, 1e-6);
    cr_expect_leq(w.sd, 1e-5);
    cr_expect_leq(w.corr, 1e-5);
    stats_enc_result_free(total);
    ckks_galois_keys_free(gk);
    stats_table_free(t);
    mp_teardown(&f);
}
