/* hestat against real Microsoft SEAL 4.1 output (vectors/, made by
 * vectors/gen/gen.mjs with node-seal): primes, encoding, keys, decryption and
 * byte-identical evaluation results; SEAL-format round trips and refusals. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/ckks.h"
#include "testutil.h"

typedef struct {
    char dir[64];
    size_t n;
    int bits[8];
    size_t count;
    uint64_t primes[8];
    double scale;
    ckks_context_t *ctx;
    ckks_secret_key_t *sk;
} vcase_t;

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (vectors missing?)", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(sz > 0 ? (size_t)sz : 1);
    cr_assert_eq(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *len = (size_t)sz;
    return buf;
}

static void *vfile(const vcase_t *c, const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "vectors/%s/%s", c->dir, name);
    return slurp(path, len);
}

/* Loads case i from vectors/manifest.json (jansson) and reads SEAL's secret key. */
static void load_case(size_t i, vcase_t *c)
{
    json_error_t err;
    json_t *m = json_load_file("vectors/manifest.json", 0, &err);
    cr_assert_not_null(m, "vectors/manifest.json: %s", err.text);
    json_t *jc = json_array_get(json_object_get(m, "cases"), i);
    cr_assert_not_null(jc);
    snprintf(c->dir, sizeof c->dir, "%s", json_string_value(json_object_get(jc, "name")));
    c->n = (size_t)json_integer_value(json_object_get(jc, "n"));
    json_t *bits = json_object_get(jc, "bits"), *primes = json_object_get(jc, "primes");
    c->count = json_array_size(bits);
    for (size_t k = 0; k < c->count; k++) {
        c->bits[k] = (int)json_integer_value(json_array_get(bits, k));
        c->primes[k] = strtoull(json_string_value(json_array_get(primes, k)), NULL, 10);
    }
    c->scale = json_number_value(json_object_get(jc, "scale"));
    json_decref(m);
    ckks_params_t p;
    cr_assert_eq(ckks_params_from_bits(&p, c->n, c->bits, c->count), CKKS_OK);
    cr_assert_eq(ckks_context_new(&p, &c->ctx), CKKS_OK);
    size_t len;
    void *buf = vfile(c, "secret_key.bin", &len);
    cr_assert_eq(ckks_seal_read_secret_key(c->ctx, buf, len, &c->sk), CKKS_OK);
    free(buf);
}

static void free_case(vcase_t *c)
{
    ckks_secret_key_free(c->sk);
    ckks_context_free(c->ctx);
}

static double input_a(size_t i) { return (double)((i * 37) % 101) / 50 - 1; }
static double input_b(size_t i) { return (double)((i * 53) % 97) / 48 - 1; }

static ckks_ciphertext_t *read_ct(const vcase_t *c, const char *name)
{
    size_t len;
    void *buf = vfile(c, name, &len);
    ckks_ciphertext_t *ct;
    int rc = ckks_seal_read_ciphertext(c->ctx, buf, len, &ct);
    cr_assert_eq(rc, CKKS_OK, "%s/%s: %s", c->dir, name, ckks_strerror(rc));
    free(buf);
    return ct;
}

/* hestat's result, written in SEAL's format, equals SEAL's file byte for byte. */
static void expect_seal_bytes(const vcase_t *c, const ckks_ciphertext_t *ct, const char *name)
{
    size_t want_len, got_len;
    void *want = vfile(c, name, &want_len), *got;
    cr_assert_eq(ckks_seal_write_ciphertext(ct, CKKS_SEAL_COMPR_NONE, &got, &got_len), CKKS_OK);
    cr_expect_eq(got_len, want_len, "%s/%s: %zu bytes, SEAL wrote %zu", c->dir, name, got_len, want_len);
    if (got_len == want_len) {
        size_t diff = 0;
        for (size_t i = 0; i < got_len; i++) diff += ((uint8_t *)got)[i] != ((uint8_t *)want)[i];
        cr_expect_eq(diff, 0, "%s/%s: %zu bytes differ from SEAL's", c->dir, name, diff);
    }
    free(want);
    free(got);
}

Test(seal_vectors, primes_identical)
{
    for (size_t i = 0; i < 2; i++) {
        vcase_t c;
        load_case(i, &c);
        for (size_t k = 0; k < c.count; k++)
            cr_expect_eq(ckks_context_prime(c.ctx, k), c.primes[k], "%s prime %zu", c.dir, k);
        free_case(&c);
    }
}

Test(seal_vectors, secret_key_is_ternary)
{
    for (size_t i = 0; i < 2; i++) {
        vcase_t c;
        load_case(i, &c);
        const uint64_t *s = ckks_secret_key_data(c.sk);
        uint64_t *t = ntt_alloc(c.n);
        int first[1 << 14];
        for (size_t k = 0; k < c.count; k++) {
            memcpy(t, s + k * c.n, c.n * 8);
            ntt_inverse(ckks_context_ntt(c.ctx, k), t);
            uint64_t q = c.primes[k];
            for (size_t j = 0; j < c.n; j++) {
                int v = t[j] == 0 ? 0 : t[j] == 1 ? 1 : t[j] == q - 1 ? -1 : 9;
                cr_assert_neq(v, 9, "%s: coefficient %zu of limb %zu is not ternary", c.dir, j, k);
                if (k == 0) first[j] = v;
                else cr_assert_eq(v, first[j], "%s: limbs disagree", c.dir);
            }
        }
        ntt_free(t);
        free_case(&c);
    }
}

Test(seal_vectors, encoding_matches_seal)
{
    for (size_t i = 0; i < 2; i++) {
        vcase_t c;
        load_case(i, &c);
        size_t slots = c.n / 2, len;
        double *a = malloc(slots * sizeof *a);
        for (size_t j = 0; j < slots; j++) a[j] = input_a(j);
        ckks_plaintext_t *mine, *theirs;
        cr_assert_eq(ckks_plaintext_new(c.ctx, 0, &mine), CKKS_OK);
        cr_assert_eq(ckks_encode_real(c.ctx, a, slots, c.scale, 0, mine), CKKS_OK);
        void *buf = vfile(&c, "plain_a.bin", &len);
        cr_assert_eq(ckks_seal_read_plaintext(c.ctx, buf, len, &theirs), CKKS_OK);
        free(buf);
        cr_expect_eq(theirs->scale, c.scale);
        /* Compare coefficients (prime 0 holds them exactly: |c| < q_0 / 2). */
        uint64_t q = c.primes[0], *x = ntt_alloc(c.n), *y = ntt_alloc(c.n);
        memcpy(x, mine->data, c.n * 8);
        memcpy(y, theirs->data, c.n * 8);
        ntt_inverse(ckks_context_ntt(c.ctx, 0), x);
        ntt_inverse(ckks_context_ntt(c.ctx, 0), y);
        size_t differ = 0;
        for (size_t j = 0; j < c.n; j++) {
            int64_t xv = x[j] > q / 2 ? -(int64_t)(q - x[j]) : (int64_t)x[j];
            int64_t yv = y[j] > q / 2 ? -(int64_t)(q - y[j]) : (int64_t)y[j];
            cr_assert(llabs(xv - yv) <= 1, "%s: coefficient %zu differs by %lld", c.dir, j,
                      (long long)(xv - yv));
            differ += xv != yv;
        }
        cr_log_info("%s: encoding differs from SEAL's in %zu of %zu coefficients (each by 1)",
                    c.dir, differ, c.n);
        /* FFT rounding: allow at most 1 in 1000 coefficients off by one. */
        cr_expect_leq(differ, c.n / 1000, "%s: %zu coefficients differ", c.dir, differ);
        ntt_free(x);
        ntt_free(y);
        free(a);
        ckks_plaintext_free(mine);
        ckks_plaintext_free(theirs);
        free_case(&c);
    }
}

Test(seal_vectors, decrypts_seal_ciphertexts)
{
    for (size_t i = 0; i < 2; i++) {
        vcase_t c;
        load_case(i, &c);
        size_t slots = c.n / 2;
        const char *names[] = {"ct_a.bin", "ct_a_zstd.bin", "ct_b.bin"};
        for (size_t f = 0; f < 3; f++) {
            ckks_ciphertext_t *ct = read_ct(&c, names[f]);
            ckks_plaintext_t *pt;
            cr_assert_eq(ckks_plaintext_new(c.ctx, 0, &pt), CKKS_OK);
            cr_assert_eq(ckks_decrypt(c.sk, ct, pt), CKKS_OK);
            double *o = malloc(slots * sizeof *o), err = 0;
            cr_assert_eq(ckks_decode(c.ctx, pt, o, NULL, slots), CKKS_OK);
            for (size_t j = 0; j < slots; j++)
                err = fmax(err, fabs(o[j] - (f == 2 ? input_b(j) : input_a(j))));
            /* scale 2^20 (n4096) keeps about 10 bits, 2^40 about 25. */
            cr_expect_lt(err, c.scale < 1e7 ? 0x1p-6 : 0x1p-20, "%s/%s: error %g", c.dir, names[f], err);
            free(o);
            ckks_plaintext_free(pt);
            ckks_ciphertext_free(ct);
        }
        free_case(&c);
    }
}

Test(seal_vectors, evaluation_byte_identical_to_seal, .timeout = 60)
{
    for (size_t i = 0; i < 2; i++) {
        vcase_t c;
        load_case(i, &c);
        size_t len;
        void *buf = vfile(&c, "relin_keys.bin", &len);
        ckks_relin_key_t *rk;
        cr_assert_eq(ckks_seal_read_relin_key(c.ctx, buf, len, &rk), CKKS_OK);
        free(buf);
        buf = vfile(&c, "galois_keys.bin", &len);
        ckks_galois_keys_t *gk;
        cr_assert_eq(ckks_seal_read_galois_keys(c.ctx, buf, len, &gk), CKKS_OK);
        free(buf);
        cr_expect(ckks_galois_keys_has(gk, ckks_galois_elt_rotate(c.ctx, 1)));
        cr_expect(ckks_galois_keys_has(gk, ckks_galois_elt_rotate(c.ctx, -3)));
        cr_expect(ckks_galois_keys_has(gk, ckks_galois_elt_conjugate(c.ctx)));

        ckks_ciphertext_t *ca = read_ct(&c, "ct_a.bin"), *cb = read_ct(&c, "ct_b.bin");
        ckks_ciphertext_t *out;
        cr_assert_eq(ckks_ciphertext_new(c.ctx, 3, 0, &out), CKKS_OK);
        cr_assert_eq(ckks_add(ca, cb, out), CKKS_OK);
        expect_seal_bytes(&c, out, "ct_add.bin");
        cr_assert_eq(ckks_multiply(ca, cb, out), CKKS_OK);
        expect_seal_bytes(&c, out, "ct_multiply.bin");
        ckks_ciphertext_t *mul = read_ct(&c, "ct_multiply.bin");
        cr_assert_eq(ckks_relinearize(mul, rk, out), CKKS_OK);
        expect_seal_bytes(&c, out, "ct_relinearize.bin");
        ckks_ciphertext_t *relin = read_ct(&c, "ct_relinearize.bin");
        cr_assert_eq(ckks_rescale(relin, out), CKKS_OK);
        expect_seal_bytes(&c, out, "ct_rescale.bin");
        cr_assert_eq(ckks_rotate(ca, 1, gk, out), CKKS_OK);
        expect_seal_bytes(&c, out, "ct_rotate_1.bin");
        cr_assert_eq(ckks_rotate(ca, -3, gk, out), CKKS_OK);
        expect_seal_bytes(&c, out, "ct_rotate_m3.bin");
        cr_assert_eq(ckks_conjugate(ca, gk, out), CKKS_OK);
        expect_seal_bytes(&c, out, "ct_conjugate.bin");
        ckks_ciphertext_free(mul);
        ckks_ciphertext_free(relin);
        ckks_ciphertext_free(ca);
        ckks_ciphertext_free(cb);
        ckks_ciphertext_free(out);
        ckks_relin_key_free(rk);
        ckks_galois_keys_free(gk);
        free_case(&c);
    }
}

Test(seal_vectors, files_reload_and_rewrite_unchanged)
{
    static const char *names[] = {"secret_key.bin", "public_key.bin", "plain_a.bin", "ct_a.bin",
                                  "ct_multiply.bin", "ct_rescale.bin"};
    for (size_t i = 0; i < 2; i++) {
        vcase_t c;
        load_case(i, &c);
        for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
            size_t len, out_len;
            void *buf = vfile(&c, names[f], &len), *out = NULL;
            ckks_seal_info_t info;
            cr_assert_eq(ckks_seal_identify(c.ctx, buf, len, &info), CKKS_OK, "%s", names[f]);
            int rc;
            switch (info.type) {
            case CKKS_SEAL_SECRET_KEY: {
                ckks_secret_key_t *k;
                cr_assert_eq(ckks_seal_read_secret_key(c.ctx, buf, len, &k), CKKS_OK);
                rc = ckks_seal_write_secret_key(k, CKKS_SEAL_COMPR_NONE, &out, &out_len);
                ckks_secret_key_free(k);
                break;
            }
            case CKKS_SEAL_PUBLIC_KEY: {
                ckks_public_key_t *k;
                cr_assert_eq(ckks_seal_read_public_key(c.ctx, buf, len, &k), CKKS_OK);
                rc = ckks_seal_write_public_key(k, CKKS_SEAL_COMPR_NONE, &out, &out_len);
                ckks_public_key_free(k);
                break;
            }
            case CKKS_SEAL_PLAINTEXT: {
                ckks_plaintext_t *p;
                cr_assert_eq(ckks_seal_read_plaintext(c.ctx, buf, len, &p), CKKS_OK);
                rc = ckks_seal_write_plaintext(p, CKKS_SEAL_COMPR_NONE, &out, &out_len);
                ckks_plaintext_free(p);
                break;
            }
            case CKKS_SEAL_CIPHERTEXT: {
                ckks_ciphertext_t *ct = read_ct(&c, names[f]);
                rc = ckks_seal_write_ciphertext(ct, CKKS_SEAL_COMPR_NONE, &out, &out_len);
                ckks_ciphertext_free(ct);
                break;
            }
            default:
                cr_assert_fail("%s identified as type %d", names[f], info.type);
            }
            cr_assert_eq(rc, CKKS_OK);
            cr_expect_eq(out_len, len, "%s", names[f]);
            cr_expect(out_len == len && memcmp(out, buf, len) == 0, "%s rewritten differs", names[f]);
            free(out);
            free(buf);
        }
        /* Keys: identify, and zstd files re-read after our own zstd write. */
        size_t len, out_len;
        void *buf = vfile(&c, "galois_keys.bin", &len), *out;
        ckks_seal_info_t info;
        cr_assert_eq(ckks_seal_identify(c.ctx, buf, len, &info), CKKS_OK);
        cr_expect_eq(info.type, CKKS_SEAL_GALOIS_KEYS);
        cr_expect_eq(info.keys, 3);
        cr_expect_eq(info.compression, CKKS_SEAL_COMPR_ZSTD);
        ckks_galois_keys_t *gk, *gk2;
        cr_assert_eq(ckks_seal_read_galois_keys(c.ctx, buf, len, &gk), CKKS_OK);
        cr_assert_eq(ckks_seal_write_galois_keys(gk, CKKS_SEAL_COMPR_ZSTD, &out, &out_len), CKKS_OK);
        cr_assert_eq(ckks_seal_read_galois_keys(c.ctx, out, out_len, &gk2), CKKS_OK);
        void *a, *b;
        size_t la, lb;
        cr_assert_eq(ckks_seal_write_galois_keys(gk, CKKS_SEAL_COMPR_NONE, &a, &la), CKKS_OK);
        cr_assert_eq(ckks_seal_write_galois_keys(gk2, CKKS_SEAL_COMPR_NONE, &b, &lb), CKKS_OK);
        cr_expect(la == lb && memcmp(a, b, la) == 0);
        free(a);
        free(b);
        free(out);
        free(buf);
        ckks_galois_keys_free(gk);
        ckks_galois_keys_free(gk2);
        buf = vfile(&c, "relin_keys.bin", &len);
        cr_assert_eq(ckks_seal_identify(c.ctx, buf, len, &info), CKKS_OK);
        cr_expect_eq(info.type, CKKS_SEAL_RELIN_KEYS);
        free(buf);
        free_case(&c);
    }
}

Test(seal_vectors, refuses_what_seal_refuses)
{
    vcase_t c;
    load_case(1, &c);
    size_t len;
    uint8_t *buf = vfile(&c, "ct_a.bin", &len), *bad = malloc(len);
    ckks_ciphertext_t *ct = NULL;
    /* Wrong parms_id (another parameter set). */
    memcpy(bad, buf, len);
    bad[16] ^= 1;
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, bad, len, &ct), CKKS_ECONTEXT);
    /* A coefficient >= its prime. */
    memcpy(bad, buf, len);
    memset(bad + len - 8, 0xff, 8);
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, bad, len, &ct), CKKS_EFORMAT);
    /* Transparent: c1 all zero. */
    memcpy(bad, buf, len);
    size_t data_start = len - 2 * 3 * c.n * 8;
    memset(bad + data_start + 3 * c.n * 8, 0, 3 * c.n * 8);
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, bad, len, &ct), CKKS_EFORMAT);
    /* Truncated, bad magic, bad size field, future version, bad compression. */
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, buf, len - 1, &ct), CKKS_EFORMAT);
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, buf, 10, &ct), CKKS_EFORMAT);
    memcpy(bad, buf, len);
    bad[0] = 0;
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, bad, len, &ct), CKKS_EFORMAT);
    memcpy(bad, buf, len);
    bad[8] ^= 4;
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, bad, len, &ct), CKKS_EFORMAT);
    memcpy(bad, buf, len);
    bad[4] = 9;
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, bad, len, &ct), CKKS_EUNSUPPORTED);
    memcpy(bad, buf, len);
    bad[5] = 1; /* says zlib, is not a zlib stream */
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, bad, len, &ct), CKKS_EFORMAT);
    bad[5] = 3; /* no such compression mode */
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, bad, len, &ct), CKKS_EFORMAT);
    cr_expect_null(ct);
    free(buf);
    /* A public key (key level) is not a ciphertext. */
    buf = vfile(&c, "public_key.bin", &len);
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, buf, len, &ct), CKKS_ELEVEL);
    free(buf);
    /* Another context's file. */
    vcase_t other;
    load_case(0, &other);
    buf = vfile(&c, "ct_b.bin", &len);
    cr_expect_eq(ckks_seal_read_ciphertext(other.ctx, buf, len, &ct), CKKS_ECONTEXT);
    free(buf);
    free_case(&other);
    /* A broken zstd frame (bad frame magic; truncated frame). SEAL's format
     * has no checksum, so a flipped literal inside a frame can go unnoticed
     * there, as in SEAL: hestat's own format adds one. */
    buf = vfile(&c, "ct_a_zstd.bin", &len);
    cr_assert_eq(ckks_seal_read_ciphertext(c.ctx, buf, len, &ct), CKKS_OK);
    ckks_ciphertext_free(ct);
    ct = NULL;
    buf[16] ^= 0x55;
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, buf, len, &ct), CKKS_EFORMAT);
    buf[16] ^= 0x55;
    uint64_t shorter = len - 100;
    memcpy(buf + 8, &shorter, 8);
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, buf, len - 100, &ct), CKKS_EFORMAT);
    free(buf);
    free(bad);
    free_case(&c);
}

Test(seal_vectors, parms_id_matches_seal)
{
    vcase_t c;
    load_case(1, &c);
    size_t len;
    uint8_t *buf = vfile(&c, "ct_a.bin", &len);
    uint64_t id[4];
    cr_assert_eq(ckks_seal_parms_id(c.ctx, 3, id), CKKS_OK);
    cr_expect_arr_eq(buf + 16, id, 32);
    free(buf);
    buf = vfile(&c, "public_key.bin", &len);
    cr_assert_eq(ckks_seal_parms_id(c.ctx, 4, id), CKKS_OK);
    cr_expect_arr_eq(buf + 16, id, 32);
    free(buf);
    free_case(&c);
}

/* ---- SEAL's default saves: seeded objects and zlib (issue 15, item 3) -------------------- */
static void *write_none_relin(const ckks_relin_key_t *rk, size_t *len)
{
    void *out;
    cr_assert_eq(ckks_seal_write_relin_key(rk, CKKS_SEAL_COMPR_NONE, &out, len), CKKS_OK);
    return out;
}

static void expect_same_file(const vcase_t *c, const void *got, size_t got_len, const char *name)
{
    size_t len;
    void *want = vfile(c, name, &len);
    cr_expect(got_len == len && memcmp(got, want, len) == 0, "%s/%s: %zu bytes, SEAL's %zu, or contents differ",
              c->dir, name, got_len, len);
    free(want);
}

/* What SEAL's default saves hold, read as SEAL reads them: each seed expands
 * to SEAL's own polynomial (the expanded file SEAL saved, byte for byte; and
 * evaluations with seeded keys that equal SEAL's results). */
Test(seal_vectors, seeded_and_zlib_files_read_as_seal_reads_them, .timeout = 60)
{
    for (size_t i = 0; i < 2; i++) {
        vcase_t c;
        load_case(i, &c);
        int small = c.n == 4096;
        size_t len, out_len;
        void *buf, *out;
        ckks_seal_info_t info;
        /* Public key (zstd, seeded) -> SEAL's expansion, uncompressed. */
        buf = vfile(&c, "public_key_seeded.bin", &len);
        cr_assert_eq(ckks_seal_identify(c.ctx, buf, len, &info), CKKS_OK);
        cr_expect_eq(info.type, CKKS_SEAL_PUBLIC_KEY);
        ckks_public_key_t *pk;
        cr_assert_eq(ckks_seal_read_public_key(c.ctx, buf, len, &pk), CKKS_OK);
        free(buf);
        cr_assert_eq(ckks_seal_write_public_key(pk, CKKS_SEAL_COMPR_NONE, &out, &out_len), CKKS_OK);
        expect_same_file(&c, out, out_len, "public_key_seeded_expanded.bin");
        free(out);
        ckks_public_key_free(pk);
        /* Relinearization keys (seeded; zlib for n4096, zstd for n8192). */
        buf = vfile(&c, "relin_keys_seeded.bin", &len);
        cr_assert_eq(ckks_seal_identify(c.ctx, buf, len, &info), CKKS_OK);
        cr_expect_eq(info.compression, small ? CKKS_SEAL_COMPR_ZLIB : CKKS_SEAL_COMPR_ZSTD);
        ckks_relin_key_t *rk;
        cr_assert_eq(ckks_seal_read_relin_key(c.ctx, buf, len, &rk), CKKS_OK);
        free(buf);
        if (small) {
            out = write_none_relin(rk, &out_len);
            expect_same_file(&c, out, out_len, "relin_keys_seeded_expanded.bin");
            free(out);
        }
        ckks_ciphertext_t *mul = read_ct(&c, "ct_multiply.bin"), *res;
        cr_assert_eq(ckks_ciphertext_new(c.ctx, 3, 0, &res), CKKS_OK);
        cr_assert_eq(ckks_relinearize(mul, rk, res), CKKS_OK);
        expect_seal_bytes(&c, res, "ct_relinearize_seeded.bin");
        ckks_relin_key_free(rk);
        if (small) { /* Galois keys, seeded, uncompressed: steps 1 and conjugation */
            buf = vfile(&c, "galois_keys_seeded.bin", &len);
            ckks_galois_keys_t *gk;
            cr_assert_eq(ckks_seal_read_galois_keys(c.ctx, buf, len, &gk), CKKS_OK);
            free(buf);
            ckks_ciphertext_t *ca = read_ct(&c, "ct_a.bin");
            cr_assert_eq(ckks_rotate(ca, 1, gk, res), CKKS_OK);
            expect_seal_bytes(&c, res, "ct_rotate_1_seeded.bin");
            cr_assert_eq(ckks_conjugate(ca, gk, res), CKKS_OK);
            expect_seal_bytes(&c, res, "ct_conjugate_seeded.bin");
            ckks_ciphertext_free(ca);
            ckks_galois_keys_free(gk);
        }
        /* Symmetric encryptions (seeded) decrypt to a; zlib files equal the plain ones. */
        const char *sym[] = {"ct_sym_seeded.bin", small ? "ct_sym_seeded_none.bin" : NULL};
        for (int s = 0; s < 2 && sym[s]; s++) {
            ckks_ciphertext_t *ct = read_ct(&c, sym[s]);
            ckks_plaintext_t *pt;
            cr_assert_eq(ckks_plaintext_new(c.ctx, ct->nprimes, &pt), CKKS_OK);
            cr_assert_eq(ckks_decrypt(c.sk, ct, pt), CKKS_OK);
            size_t slots = c.n / 2;
            double *v = malloc(slots * sizeof *v), err = 0;
            cr_assert_eq(ckks_decode(c.ctx, pt, v, NULL, slots), CKKS_OK);
            for (size_t k = 0; k < slots; k++) err = fmax(err, fabs(v[k] - input_a(k)));
            cr_expect_lt(err, small ? 1e-2 : 1e-6, "%s/%s: max error %g", c.dir, sym[s], err);
            free(v);
            ckks_plaintext_free(pt);
            ckks_ciphertext_free(ct);
        }
        ckks_ciphertext_t *z = read_ct(&c, "ct_a_zlib.bin");
        cr_assert_eq(ckks_seal_write_ciphertext(z, CKKS_SEAL_COMPR_NONE, &out, &out_len), CKKS_OK);
        expect_same_file(&c, out, out_len, "ct_a.bin");
        free(out);
        ckks_ciphertext_free(z);
        buf = vfile(&c, "secret_key_zlib.bin", &len);
        ckks_secret_key_t *sk;
        cr_assert_eq(ckks_seal_read_secret_key(c.ctx, buf, len, &sk), CKKS_OK);
        free(buf);
        cr_assert_eq(ckks_seal_write_secret_key(sk, CKKS_SEAL_COMPR_NONE, &out, &out_len), CKKS_OK);
        expect_same_file(&c, out, out_len, "secret_key.bin");
        free(out);
        ckks_secret_key_free(sk);
        ckks_ciphertext_free(mul);
        ckks_ciphertext_free(res);
        free_case(&c);
    }
}

/* hestat's seeded output: about half the size, and what it reads back is
 * the key it generated (relinearizing with either gives the same bytes);
 * zlib writes read back unchanged. (SEAL reading them: make vectors-check.) */
Test(seal_vectors, seeded_output_is_compact_and_exact, .timeout = 60)
{
    vcase_t c;
    load_case(1, &c);
    ckks_relin_key_t *rk, *back;
    cr_assert_eq(ckks_relin_key_new_seeded(c.sk, &rk), CKKS_OK);
    void *seeded, *full;
    size_t seeded_len, full_len;
    cr_assert_eq(ckks_seal_write_relin_key(rk, CKKS_SEAL_COMPR_NONE, &seeded, &seeded_len), CKKS_OK);
    cr_assert_eq(ckks_seal_read_relin_key(c.ctx, seeded, seeded_len, &back), CKKS_OK);
    full = write_none_relin(back, &full_len); /* read back: expanded, written whole */
    cr_expect_lt(seeded_len, full_len * 52 / 100, "seeded %zu bytes vs %zu", seeded_len, full_len);
    ckks_ciphertext_t *mul = read_ct(&c, "ct_multiply.bin"), *r1, *r2;
    cr_assert_eq(ckks_ciphertext_new(c.ctx, 3, 0, &r1), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(c.ctx, 3, 0, &r2), CKKS_OK);
    cr_assert_eq(ckks_relinearize(mul, rk, r1), CKKS_OK);
    cr_assert_eq(ckks_relinearize(mul, back, r2), CKKS_OK);
    cr_expect_eq(memcmp(r1->data, r2->data, 2 * r1->nprimes * c.n * 8), 0, "the seed did not give back the key");
    /* Symmetric, seeded: written half size while c1 is the seed's; whole once changed. */
    ckks_ciphertext_t *ca = read_ct(&c, "ct_a.bin"), *sym, *sym_back;
    ckks_plaintext_t *pt;
    cr_assert_eq(ckks_plaintext_new(c.ctx, ca->nprimes, &pt), CKKS_OK);
    cr_assert_eq(ckks_decrypt(c.sk, ca, pt), CKKS_OK);
    cr_assert_eq(ckks_ciphertext_new(c.ctx, 2, ca->nprimes, &sym), CKKS_OK);
    cr_assert_eq(ckks_seal_encrypt_symmetric(c.sk, pt, sym), CKKS_OK);
    void *a, *b;
    size_t la, lb;
    cr_assert_eq(ckks_seal_write_ciphertext(sym, CKKS_SEAL_COMPR_ZLIB, &a, &la), CKKS_OK);
    cr_assert_eq(ckks_seal_read_ciphertext(c.ctx, a, la, &sym_back), CKKS_OK);
    cr_expect_eq(memcmp(sym->data, sym_back->data, 2 * sym->nprimes * c.n * 8), 0);
    free(a);
    cr_assert_eq(ckks_seal_write_ciphertext(sym, CKKS_SEAL_COMPR_NONE, &a, &la), CKKS_OK);
    cr_assert_eq(ckks_add(sym, sym, sym), CKKS_OK);
    cr_assert_eq(ckks_seal_write_ciphertext(sym, CKKS_SEAL_COMPR_NONE, &b, &lb), CKKS_OK);
    cr_expect_lt(la, lb * 52 / 100, "seeded ciphertext %zu bytes, whole %zu", la, lb);
    free(a);
    free(b);
    free(seeded);
    free(full);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(sym);
    ckks_ciphertext_free(sym_back);
    ckks_ciphertext_free(mul);
    ckks_ciphertext_free(r1);
    ckks_ciphertext_free(r2);
    ckks_relin_key_free(rk);
    ckks_relin_key_free(back);
    free_case(&c);
}

/* A seeded file whose generator info is damaged is refused, never expanded. */
Test(seal_vectors, damaged_seeds_are_refused)
{
    vcase_t c;
    load_case(0, &c);
    size_t len;
    uint8_t *buf = vfile(&c, "ct_sym_seeded_none.bin", &len);
    /* The info object is the last 81 bytes: header (16) | prng_type | seed. */
    ckks_ciphertext_t *ct = NULL;
    uint8_t keep = buf[len - 65];
    const uint8_t bad_types[] = {0, 3, 255};
    for (size_t t = 0; t < sizeof bad_types; t++) {
        buf[len - 65] = bad_types[t];
        cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, buf, len, &ct), CKKS_EFORMAT, "prng_type %d", bad_types[t]);
    }
    buf[len - 65] = keep;
    buf[len - 81 + 8] = 80; /* the info object's size, one short */
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, buf, len, &ct), CKKS_EFORMAT);
    buf[len - 81 + 8] = 81;
    cr_expect_eq(ckks_seal_read_ciphertext(c.ctx, buf, len - 1, &ct), CKKS_EFORMAT, "truncated");
    cr_assert_eq(ckks_seal_read_ciphertext(c.ctx, buf, len, &ct), CKKS_OK, "restored");
    ckks_ciphertext_free(ct);
    free(buf);
    free_case(&c);
}

/* SHAKE256 (prng_type 2): SEAL's expansion against tests/ref/seal_prng_reference.py
 * (Python's hashlib), with a modulus that makes a quarter of the words be redrawn. */
Test(seal_prng, shake256_expansion_matches_hashlib)
{
    static const uint64_t shake256_at[] = {869735943737647427u, 117603861218878210u, 180223525347359016u,
                                           1088373796984u, 8782212680818840964u, 1119296931242249192u,
                                           833252462809093015u};
    static const uint64_t shake256_xor = 7725837080000653148u;
    const uint64_t moduli[] = {1152921504606748673u, 1099510890497u, (3ull << 62) + 1, 1152921504606830593u};
    const size_t n = 8192, picks[] = {0, 1, n - 1, n, 2 * n + 5, 3 * n + 4000, 4 * n - 1};
    uint8_t seed[CKKS_SEAL_SEED_BYTES];
    for (int i = 0; i < CKKS_SEAL_SEED_BYTES; i++) seed[i] = (uint8_t)i;
    uint64_t *out = malloc(4 * n * sizeof *out), x = 0;
    cr_assert_eq(ckks_seal_expand_uniform(CKKS_SEAL_PRNG_SHAKE256, seed, moduli, 4, n, out), CKKS_OK);
    for (size_t i = 0; i < 7; i++) cr_expect_eq(out[picks[i]], shake256_at[i], "word %zu", picks[i]);
    for (size_t i = 0; i < 4 * n; i++) x ^= out[i];
    cr_expect_eq(x, shake256_xor);
    cr_expect_eq(ckks_seal_expand_uniform(0, seed, moduli, 4, n, out), CKKS_EUNSUPPORTED);
    free(out);
}

/* hestat-seal's other Evaluator operations on SEAL's files (n8192), through
 * the command line, against identities that hold byte for byte mod q
 * ((a - b) + b = a, -(-a) = a, (b + p) - p = b, square = multiply by itself)
 * and decryptions with SEAL's secret key (a * p = a^2, mod_switch keeps a).
 * make seal-sweep compares each with SEAL's own result. */
static int same_file(const char *x, const char *y)
{
    size_t lx, ly;
    void *a = slurp(x, &lx), *b = slurp(y, &ly);
    int same = lx == ly && !memcmp(a, b, lx);
    free(a);
    free(b);
    return same;
}

/* Largest |slot - a_i^power| of hestat-seal decrypt's output (first 64 slots). */
static double decrypt_err(const char *bin, const char *params, const char *ct, int power)
{
    char path[300], line[64];
    snprintf(path, sizeof path, "%s.txt", ct);
    cr_assert_eq(test_sh("%s decrypt %s --secret-key vectors/n8192/secret_key.bin --slots 64 %s > %s", bin, params,
                         ct, path), 0);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    double e = 0;
    for (int i = 0; i < 64; i++) {
        cr_assert_not_null(fgets(line, sizeof line, f));
        double a = ((37 * i) % 101) / 50.0 - 1, want = power == 2 ? a * a : a;
        e = fmax(e, fabs(strtod(line, NULL) - want));
    }
    fclose(f);
    return e;
}

#define SEAL_P "--poly-degree 8192 --coeff-bits 60,40,40,60"

/* "D/F" in one of 8 rotating buffers (for a few paths in one call). */
static const char *at(const char *d, const char *f)
{
    static char bufs[8][300];
    static int next;
    char *p = bufs[next++ % 8];
    snprintf(p, sizeof bufs[0], "%s/%s", d, f);
    return p;
}

/* hestat-seal eval OP of in1 (and in2) into dir/out. */
static void seal_op(const char *dir, const char *op, const char *out, const char *in1, const char *in2)
{
    cr_assert_eq(test_sh("%s eval %s " SEAL_P " --out %s %s %s", test_bin("hestat-seal"), op, at(dir, out), in1,
                         in2 ? in2 : ""), 0, "%s", op);
}

Test(seal_vectors, other_operations_from_the_command_line, .timeout = 120)
{
    char dir[] = "/tmp/hestat-sealops-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *H = test_bin("hestat-seal"), *V = "vectors/n8192";
    seal_op(dir, "sub", "a-b", at(V, "ct_a.bin"), at(V, "ct_b.bin"));
    seal_op(dir, "add", "a-b+b", at(dir, "a-b"), at(V, "ct_b.bin"));
    cr_expect(same_file(at(dir, "a-b+b"), at(V, "ct_a.bin")), "(a - b) + b is a, byte for byte");
    seal_op(dir, "negate", "-a", at(V, "ct_a.bin"), NULL);
    seal_op(dir, "negate", "--a", at(dir, "-a"), NULL);
    cr_expect(same_file(at(dir, "--a"), at(V, "ct_a.bin")), "-(-a) is a");
    seal_op(dir, "add_plain", "b+p", at(V, "ct_b.bin"), at(V, "plain_a.bin"));
    seal_op(dir, "sub_plain", "b+p-p", at(dir, "b+p"), at(V, "plain_a.bin"));
    cr_expect(same_file(at(dir, "b+p-p"), at(V, "ct_b.bin")), "(b + p) - p is b");
    seal_op(dir, "square", "a2", at(V, "ct_a.bin"), NULL);
    seal_op(dir, "multiply", "axa", at(V, "ct_a.bin"), at(V, "ct_a.bin"));
    cr_expect(same_file(at(dir, "a2"), at(dir, "axa")), "square is multiply by itself");
    seal_op(dir, "multiply_plain", "a*p", at(V, "ct_a.bin"), at(V, "plain_a.bin"));
    double e = decrypt_err(H, SEAL_P, at(dir, "a*p"), 2);
    cr_expect_lt(e, 1e-6, "a * encode(a) decrypts to a^2: error %g", e);
    seal_op(dir, "mod_switch", "a1", at(V, "ct_a.bin"), NULL);
    seal_op(dir, "mod_switch", "a0", at(dir, "a1"), NULL);
    e = decrypt_err(H, SEAL_P, at(dir, "a0"), 1);
    cr_expect_lt(e, 1e-6, "a switched down to one prime decrypts to a: error %g", e);
    cr_expect_eq(test_sh("%s info " SEAL_P " %s | grep -q 'primes at its level: 1'", H, at(dir, "a0")), 0);
    cr_expect_neq(test_sh("%s eval mod_switch " SEAL_P " --out %s %s 2>/dev/null", H, at(dir, "none"), at(dir, "a0")),
                  0, "no prime left to drop");
    cr_expect_neq(test_sh("%s eval add_plain " SEAL_P " --out %s %s %s 2>/dev/null", H, at(dir, "none"), at(dir, "a1"),
                          at(V, "plain_a.bin")),
                  0, "a plaintext at another level is refused");
    cr_expect_eq(test_sh("%s eval add_plain " SEAL_P " --out %s %s %s 2>&1 | grep -q 'ct_b.bin: a SEAL Ciphertext where a "
                         "Plaintext was wanted'", H, at(dir, "none"), at(V, "ct_a.bin"), at(V, "ct_b.bin")),
                 0, "a ciphertext given as the plaintext is named as such");
    cr_expect_eq(test_sh("rm -rf %s", dir), 0);
}
