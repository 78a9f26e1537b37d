/* Studies, tables, results and jobs as files: round trips, a job run equal to
 * the in-memory computation, and refusals (secret keys, foreign tables,
 * damage). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "stats/stats.h"

static ckks_context_t *new_ctx(void)
{
    int bits[] = {60, 40, 40, 60};
    ckks_params_t p;
    ckks_context_t *ctx;
    cr_assert_eq(ckks_params_from_bits(&p, 8192, bits, 4), CKKS_OK);
    cr_assert_eq(ckks_context_new(&p, &ctx), CKKS_OK);
    return ctx;
}

/* A copy of a table file whose header frame has its digest's first byte
 * flipped and is sealed again (valid checksum). */
static uint8_t *resealed_table(const stats_study_t *s, const void *tbuf, size_t tlen)
{
    const uint8_t *t = tbuf;
    uint64_t plen;
    memcpy(&plen, t + 24, 8);
    cr_assert_eq(plen, 48);
    uint8_t payload[48];
    memcpy(payload, t + CKKS_HEADER_BYTES, 48);
    payload[0] ^= 1;
    void *frame;
    size_t flen;
    cr_assert_eq(ckks_frame_write(s->ctx, STATS_OBJ_TABLE, payload, 48, &frame, &flen), CKKS_OK);
    cr_assert_eq(flen, CKKS_HEADER_BYTES + 48);
    uint8_t *out = malloc(tlen);
    memcpy(out, tbuf, tlen);
    memcpy(out, frame, flen);
    free(frame);
    return out;
}

Test(stats_io, job_file_runs_like_memory_and_refuses_bad_input, .timeout = 300)
{
    stats_table_t *t;
    cr_assert_eq(stats_generate_framingham(600, 11, &t), STATS_OK);
    ckks_context_t *ctx = new_ctx();
    ckks_secret_key_t *sk;
    cr_assert_eq(ckks_secret_key_new(ctx, &sk), CKKS_OK);
    stats_study_t *study;
    cr_assert_eq(stats_study_create(ctx, t, sk, &study), STATS_OK, "%s", stats_error());

    /* Study round trip. */
    void *sbuf;
    size_t slen;
    cr_assert_eq(stats_study_write(study, &sbuf, &slen), STATS_OK);
    stats_study_t *back;
    cr_assert_eq(stats_study_read(sbuf, slen, &back, NULL), STATS_OK, "%s", stats_error());
    cr_expect_arr_eq(back->digest, study->digest, 32);
    cr_expect_eq(back->layout.ncols, 16);
    cr_expect_str_eq(back->layout.names[15], "TenYearCHD");
    cr_expect_eq(back->layout.factor[9], study->layout.factor[9]);

    /* Two uploads encrypted with the public key read back from the study file. */
    stats_layout_t lay = back->layout;
    lay.nrows = t->nrows;
    lay.chunks = (t->nrows + lay.rows_per_ct - 1) / lay.rows_per_ct;
    stats_enc_table_t *e;
    cr_assert_eq(stats_encrypt(back->ctx, back->pk, NULL, t, &lay, 0x1p40, &e), STATS_OK, "%s", stats_error());
    void *tbuf;
    size_t tlen;
    cr_assert_eq(stats_table_write(back, e, &tbuf, &tlen), STATS_OK);
    stats_enc_table_t *e2;
    cr_assert_eq(stats_table_read(back, tbuf, tlen, &e2, NULL), STATS_OK, "%s", stats_error());
    const stats_enc_table_t *tables[2] = {e, e2};
    void *jbuf, *rbuf;
    size_t jlen, rlen;
    cr_assert_eq(stats_job_write(back, STATS_JOB_ALL, tables, 2, &jbuf, &jlen), STATS_OK);
    stats_counts_t counts;
    cr_assert_eq(stats_job_run(jbuf, jlen, &rbuf, &rlen, &counts), STATS_OK, "%s", stats_error());
    cr_expect_gt(counts.rotations, 0);
    stats_enc_result_t *res;
    cr_assert_eq(stats_result_read(study, rbuf, rlen, &res), STATS_OK, "%s", stats_error());
    static stats_result_t out;
    cr_assert_eq(stats_decrypt(study->ctx, sk, res, &out), STATS_OK);
    /* The table was submitted twice: counts double, means stay. */
    stats_moments_t ref[16];
    cr_assert_eq(stats_reference(t, ref, NULL), STATS_OK);
    for (size_t c = 0; c < 16; c++) {
        cr_expect_eq(out.cols[c].count, 2 * ref[c].count, "%s", t->names[c]);
        cr_expect(fabsl(out.cols[c].mean - ref[c].mean) <= 1e-6 * fmaxl(fabsl(ref[c].mean), 1e-3L * study->layout.factor[c]),
                  "%s mean %.12Lg vs %.12Lg", t->names[c], out.cols[c].mean, ref[c].mean);
    }

    /* A job that carries a secret key is refused before anything else. */
    void *skbuf;
    size_t sklen;
    cr_assert_eq(ckks_write_secret_key(sk, &skbuf, &sklen), CKKS_OK);
    uint8_t *bad = malloc(jlen + sklen);
    memcpy(bad, jbuf, jlen);
    memcpy(bad + jlen, skbuf, sklen);
    void *junk;
    size_t junk_len;
    cr_expect_eq(stats_job_run(bad, jlen + sklen, &junk, &junk_len, NULL), STATS_EINVAL);
    cr_expect(strstr(stats_error(), "secret key") != NULL, "%s", stats_error());
    /* Truncated; a flipped byte (checksum); trailing garbage. */
    cr_expect_neq(stats_job_run(jbuf, jlen - 1, &junk, &junk_len, NULL), STATS_OK);
    memcpy(bad, jbuf, jlen);
    bad[jlen / 2] ^= 0x10;
    cr_expect_neq(stats_job_run(bad, jlen, &junk, &junk_len, NULL), STATS_OK);
    memcpy(bad, jbuf, jlen);
    memcpy(bad + jlen, "garbage", 7);
    cr_expect_neq(stats_job_run(bad, jlen + 7, &junk, &junk_len, NULL), STATS_OK);
    free(bad);
    free(skbuf);

    /* A table encrypted for another study (other schema) is refused. */
    stats_table_t *narrow;
    cr_assert_eq(stats_table_new(2, 10, &narrow), STATS_OK);
    strcpy(narrow->names[0], "a");
    strcpy(narrow->names[1], "b");
    for (size_t i = 0; i < 20; i++) narrow->values[i] = (double)i;
    ckks_context_t *ctx2 = new_ctx();
    stats_study_t *other;
    cr_assert_eq(stats_study_create(ctx2, narrow, sk == NULL ? NULL : sk, &other), STATS_EINVAL,
                 "a secret key of another context must not build a study");
    ckks_context_free(ctx2);
    stats_enc_table_t *x = NULL;
    /* Same parameters, another study digest: flip a byte of the digest and
     * reseal the header frame, so the checksum passes and the digest check
     * is what refuses it. */
    uint8_t *tb = resealed_table(back, tbuf, tlen);
    cr_expect_eq(stats_table_read(back, tb, tlen, &x, NULL), STATS_ESCHEMA);
    cr_expect(strstr(stats_error(), "another study") != NULL, "%s", stats_error());
    cr_expect_null(x);
    tb[60] ^= 1; /* and without resealing, the checksum refuses it first */
    cr_expect_eq(stats_table_read(back, tb, tlen, &x, NULL), STATS_ECKKS);
    free(tb);

    stats_table_free(narrow);
    stats_enc_result_free(res);
    free(jbuf);
    free(rbuf);
    free(tbuf);
    free(sbuf);
    stats_enc_table_free(e);
    stats_enc_table_free(e2);
    ckks_secret_key_free(sk); /* before its context (owned by the study) */
    stats_study_free(back);
    stats_study_free(study);
    stats_table_free(t);
}

/* Two keygens from the same table with the same parameters: two studies. */
typedef struct {
    ckks_secret_key_t *sk;
    stats_study_t *study;
    void *file;
    size_t len;
} keygen_t;

static void keygen(const stats_table_t *t, keygen_t *k)
{
    ckks_context_t *ctx = new_ctx();
    cr_assert_eq(ckks_secret_key_new(ctx, &k->sk), CKKS_OK);
    cr_assert_eq(stats_study_create(ctx, t, k->sk, &k->study), STATS_OK, "%s", stats_error());
    cr_assert_eq(stats_study_write(k->study, &k->file, &k->len), STATS_OK);
}

static void keygen_free(keygen_t *k)
{
    ckks_secret_key_free(k->sk);
    stats_study_free(k->study);
    free(k->file);
}

static void encrypt_table(const stats_study_t *s, const stats_table_t *t, void **buf, size_t *len)
{
    stats_layout_t lay = s->layout;
    lay.nrows = t->nrows;
    lay.chunks = (t->nrows + lay.rows_per_ct - 1) / lay.rows_per_ct;
    stats_enc_table_t *e;
    cr_assert_eq(stats_encrypt(s->ctx, s->pk, NULL, t, &lay, 0x1p40, &e), STATS_OK, "%s", stats_error());
    cr_assert_eq(stats_table_write(s, e, buf, len), STATS_OK);
    stats_enc_table_free(e);
}

Test(stats_io, files_are_bound_to_their_study_and_key, .timeout = 300)
{
    stats_table_t *t;
    cr_assert_eq(stats_generate_framingham(300, 5, &t), STATS_OK);
    keygen_t a, b;
    keygen(t, &a);
    keygen(t, &b);
    /* Same schema, same parameters: the digests still differ (public keys). */
    cr_expect_arr_neq(a.study->digest, b.study->digest, 32);
    void *ta, *res;
    size_t tlen, rlen;
    encrypt_table(a.study, t, &ta, &tlen);
    stats_enc_table_t *x = NULL;
    cr_expect_eq(stats_table_read(b.study, ta, tlen, &x, NULL), STATS_ESCHEMA);
    cr_expect(strstr(stats_error(), "another study") != NULL, "%s", stats_error());
    cr_expect_null(x);
    cr_assert_eq(stats_table_read(a.study, ta, tlen, &x, NULL), STATS_OK, "%s", stats_error());

    /* A result of study a: refused under b, decrypted under a. */
    stats_enc_result_t *r;
    cr_assert_eq(stats_compute(a.study->ctx, x, STATS_JOB_ALL, a.study->rk, a.study->gk, &r, NULL), STATS_OK);
    cr_assert_eq(stats_result_write(a.study, r, &res, &rlen), STATS_OK);
    stats_enc_result_t *back = NULL;
    cr_expect_eq(stats_result_read(b.study, res, rlen, &back), STATS_ESCHEMA);
    cr_expect(strstr(stats_error(), "another study") != NULL, "%s", stats_error());
    cr_assert_eq(stats_result_read(a.study, res, rlen, &back), STATS_OK, "%s", stats_error());

    /* The secret key is checked against the study's public key. */
    cr_expect_eq(ckks_secret_key_matches(a.sk, a.study->pk), CKKS_OK);
    cr_expect_eq(ckks_secret_key_matches(b.sk, b.study->pk), CKKS_OK);
    ckks_public_key_t *pk_b_in_a;
    void *pkbuf;
    size_t pklen;
    cr_assert_eq(ckks_write_public_key(b.study->pk, &pkbuf, &pklen), CKKS_OK);
    cr_assert_eq(ckks_read_public_key(a.study->ctx, pkbuf, pklen, &pk_b_in_a), CKKS_OK);
    cr_expect_eq(ckks_secret_key_matches(a.sk, pk_b_in_a), CKKS_EKEY);
    cr_expect_eq(ckks_secret_key_matches(b.sk, a.study->pk), CKKS_ECONTEXT); /* other context object */
    ckks_public_key_free(pk_b_in_a);
    free(pkbuf);

    /* Decrypting with the wrong secret key (same parameters) is an error,
     * not a report; with the right one the counts are exact. */
    static stats_result_t out;
    ckks_secret_key_t *wrong;
    void *skbuf;
    size_t sklen;
    cr_assert_eq(ckks_write_secret_key(b.sk, &skbuf, &sklen), CKKS_OK);
    cr_assert_eq(ckks_read_secret_key(a.study->ctx, skbuf, sklen, &wrong), CKKS_OK);
    free(skbuf);
    cr_expect_eq(stats_study_check_key(a.study, wrong), STATS_EKEY);
    cr_expect(strstr(stats_error(), "does not belong to this study") != NULL, "%s", stats_error());
    cr_expect_eq(stats_study_check_key(a.study, a.sk), STATS_OK);
    cr_expect_eq(stats_decrypt(a.study->ctx, wrong, back, &out), STATS_EDECRYPT);
    cr_expect(strstr(stats_error(), "not consistent") != NULL, "%s", stats_error());
    ckks_secret_key_free(wrong);
    cr_assert_eq(stats_decrypt(a.study->ctx, a.sk, back, &out), STATS_OK, "%s", stats_error());
    stats_moments_t ref[16];
    cr_assert_eq(stats_reference(t, ref, NULL), STATS_OK);
    for (size_t c = 0; c < 16; c++) cr_expect_eq(out.cols[c].count, ref[c].count, "%s", t->names[c]);

    stats_enc_result_free(back);
    stats_enc_result_free(r);
    stats_enc_table_free(x);
    free(res);
    free(ta);
    keygen_free(&a);
    keygen_free(&b);
    stats_table_free(t);
}

/* Feeds buf in chunks of pseudo-random sizes (1 byte .. 64 KB). */
static int feed_chunks(stats_stream_t *r, const void *buf, size_t len, uint64_t seed)
{
    const uint8_t *p = buf;
    int rc = STATS_OK;
    for (size_t off = 0; off < len && !rc;) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = 1 + (size_t)((seed >> 33) % 65536);
        if (n > len - off) n = len - off;
        rc = stats_stream_feed(r, p + off, n);
        off += n;
    }
    return rc;
}

Test(stats_io, streaming_readers_match_buffer_readers, .timeout = 300)
{
    stats_table_t *t;
    cr_assert_eq(stats_generate_framingham(700, 9, &t), STATS_OK);
    keygen_t a, b;
    keygen(t, &a);
    keygen(t, &b);
    void *ta, *tb;
    size_t talen, tblen;
    encrypt_table(a.study, t, &ta, &talen);
    encrypt_table(b.study, t, &tb, &tblen);

    /* A study fed in odd chunks parses to the same study (same digest). */
    stats_stream_t *r;
    cr_assert_eq(stats_stream_study_new(&r), STATS_OK);
    cr_assert_eq(feed_chunks(r, a.file, a.len, 1), STATS_OK, "%s", stats_error());
    stats_study_t *s = NULL;
    cr_assert_eq(stats_stream_finish(r, &s, NULL), STATS_OK, "%s", stats_error());
    stats_stream_free(r);
    cr_assert_not_null(s);
    cr_expect_arr_eq(s->digest, a.study->digest, 32);
    cr_expect_eq(s->layout.ncols, 16);

    /* A table of that study, one byte at a time for its first frames. */
    cr_assert_eq(stats_stream_table_new(s, &r), STATS_OK);
    for (size_t i = 0; i < 200; i++) cr_assert_eq(stats_stream_feed(r, (uint8_t *)ta + i, 1), STATS_OK);
    cr_assert_eq(feed_chunks(r, (uint8_t *)ta + 200, talen - 200, 2), STATS_OK, "%s", stats_error());
    uint64_t nrows = 0;
    cr_expect_eq(stats_stream_finish(r, NULL, &nrows), STATS_OK, "%s", stats_error());
    cr_expect_eq(nrows, 700);
    stats_stream_free(r);

    /* Another study's table: refused once its header frame is in, before any ciphertext. */
    cr_assert_eq(stats_stream_table_new(s, &r), STATS_OK);
    cr_expect_eq(stats_stream_feed(r, tb, CKKS_HEADER_BYTES + 48), STATS_ESCHEMA);
    cr_expect(strstr(stats_error(), "another study") != NULL, "%s", stats_error());
    cr_expect_eq(stats_stream_feed(r, (uint8_t *)tb + 96, 10), STATS_ESCHEMA, "errors are sticky");
    stats_stream_free(r);

    /* Junk: refused from its first 48 bytes (nothing buffered beyond them). */
    char junk[48];
    memset(junk, 'A', sizeof junk);
    cr_assert_eq(stats_stream_table_new(s, &r), STATS_OK);
    cr_expect_eq(stats_stream_feed(r, junk, 47), STATS_OK);
    cr_expect_eq(stats_stream_feed(r, junk, 1), STATS_ESCHEMA);
    cr_expect(strstr(stats_error(), "not a hestat file") != NULL, "%s", stats_error());
    stats_stream_free(r);
    /* A header claiming a huge frame is refused before anything is allocated. */
    uint8_t big[48];
    memcpy(big, ta, 48);
    uint64_t huge = (uint64_t)1 << 40;
    memcpy(big + 24, &huge, 8);
    cr_assert_eq(stats_stream_table_new(s, &r), STATS_OK);
    cr_expect_eq(stats_stream_feed(r, big, 48), STATS_ESCHEMA);
    cr_expect(strstr(stats_error(), "claims") != NULL, "%s", stats_error());
    stats_stream_free(r);
    /* A secret key in place of a table or a study. */
    void *skbuf;
    size_t sklen;
    cr_assert_eq(ckks_write_secret_key(a.sk, &skbuf, &sklen), CKKS_OK);
    cr_assert_eq(stats_stream_table_new(s, &r), STATS_OK);
    cr_expect_eq(stats_stream_feed(r, skbuf, sklen), STATS_EINVAL);
    cr_expect(strstr(stats_error(), "secret key") != NULL, "%s", stats_error());
    stats_stream_free(r);
    cr_assert_eq(stats_stream_study_new(&r), STATS_OK);
    uint64_t params_len;
    memcpy(&params_len, (uint8_t *)a.file + 24, 8);
    cr_expect_eq(stats_stream_feed(r, a.file, CKKS_HEADER_BYTES + params_len), STATS_OK, "%s", stats_error());
    cr_expect_eq(stats_stream_feed(r, skbuf, sklen), STATS_EINVAL); /* a secret key where the schema goes */
    cr_expect(strstr(stats_error(), "secret key") != NULL, "%s", stats_error());
    stats_stream_free(r);
    free(skbuf);
    /* Truncated table: finish says so; trailing bytes: feed says so. */
    cr_assert_eq(stats_stream_table_new(s, &r), STATS_OK);
    cr_expect_eq(stats_stream_feed(r, ta, talen - 1), STATS_OK);
    cr_expect_eq(stats_stream_finish(r, NULL, NULL), STATS_ESCHEMA);
    cr_expect(strstr(stats_error(), "truncated") != NULL, "%s", stats_error());
    stats_stream_free(r);
    cr_assert_eq(stats_stream_table_new(s, &r), STATS_OK);
    cr_expect_eq(stats_stream_feed(r, ta, talen), STATS_OK);
    cr_expect_eq(stats_stream_feed(r, "x", 1), STATS_ESCHEMA);
    stats_stream_free(r);
    /* A truncated study. */
    cr_assert_eq(stats_stream_study_new(&r), STATS_OK);
    cr_expect_eq(feed_chunks(r, a.file, a.len / 2, 3), STATS_OK);
    cr_expect_eq(stats_stream_finish(r, NULL, NULL), STATS_ESCHEMA);
    stats_stream_free(r);

    stats_study_free(s);
    free(ta);
    free(tb);
    keygen_free(&a);
    keygen_free(&b);
    stats_table_free(t);
}

/* CKKS errors are absolute in units of a column's factor f: relative
 * error against bound where the value is not degenerate (|want| >= 1e-3 f,
 * 10 rows), else absolute in units of f (the suite's rule, test_stats.c). */
static int near(long double got, long double want, long double f, long double n, double bound)
{
    long double err = fabsl(got - want);
    return fabsl(want) >= 1e-3L * f && n >= 10 ? err <= bound * fabsl(want) : err <= bound * f;
}

/* A result in segments (HESTAT_SEGMENT_ROWS lowered to 600 rows, as 2^23
 * rows would be at scale): each segment's totals are decrypted, checked
 * and added. The file carries the segments, counts stay exact, and every
 * statistic matches the plaintext as the one-segment result does. */
Test(stats_io, results_in_segments_decrypt_to_the_plaintext, .timeout = 300)
{
    stats_table_t *t;
    cr_assert_eq(stats_generate_framingham(1300, 8, &t), STATS_OK);
    keygen_t a;
    keygen(t, &a);
    void *ta;
    size_t tlen;
    encrypt_table(a.study, t, &ta, &tlen);
    stats_enc_table_t *x = NULL;
    cr_assert_eq(stats_table_read(a.study, ta, tlen, &x, NULL), STATS_OK, "%s", stats_error());
    const stats_study_t *s = a.study;
    stats_enc_result_t *one, *seg;
    cr_assert_eq(stats_compute(s->ctx, x, STATS_JOB_ALL, s->rk, s->gk, &one, NULL), STATS_OK, "%s", stats_error());
    cr_assert_eq(one->segments, 1);
    setenv("HESTAT_SEGMENT_ROWS", "600", 1);
    const size_t rpc = x->layout.rows_per_ct, per_seg = 600 / rpc;
    cr_assert_eq(stats_segment_rows(s->ctx, &x->layout), 600);
    stats_counts_t c1 = {0};
    cr_assert_eq(stats_compute(s->ctx, x, STATS_JOB_ALL, s->rk, s->gk, &seg, &c1), STATS_OK, "%s", stats_error());
    unsetenv("HESTAT_SEGMENT_ROWS");
    const size_t nseg = (x->chunks + per_seg - 1) / per_seg;
    cr_assert_gt(nseg, 2);
    cr_assert_eq(seg->segments, nseg);
    cr_assert_eq(seg->count, nseg * one->count);
    cr_assert_eq(seg->layout.nrows, 1300);
    /* Through the file and back; a count that is not whole segments is refused. */
    void *rb;
    size_t rl;
    stats_enc_result_t *back = NULL;
    seg->count--;
    cr_assert_eq(stats_result_write(s, seg, &rb, &rl), STATS_OK);
    cr_expect_eq(stats_result_read(s, rb, rl, &back), STATS_ESCHEMA);
    cr_expect(strstr(stats_error(), "inconsistent header") != NULL, "%s", stats_error());
    free(rb);
    seg->count++;
    cr_assert_eq(stats_result_write(s, seg, &rb, &rl), STATS_OK);
    cr_assert_eq(stats_result_read(s, rb, rl, &back), STATS_OK, "%s", stats_error());
    /* A W2 result says it holds four product types, shifted (header flag);
     * one without it, as an earlier server wrote, is refused, not misread. */
    uint8_t *hb = rb;
    uint32_t fl, f2;
    memcpy(&fl, hb + CKKS_HEADER_BYTES + 36, 4);
    cr_expect_eq(fl, STATS_RESULT_PAIRS4);
    f2 = fl & ~STATS_RESULT_PAIRS4;
    memcpy(hb + CKKS_HEADER_BYTES + 36, &f2, 4);
    uint64_t sum = XXH3_64bits(hb + CKKS_HEADER_BYTES, 56); /* the header frame's payload */
    memcpy(hb + 32, &sum, 8);
    stats_enc_result_t *old = NULL;
    cr_expect_eq(stats_result_read(s, rb, rl, &old), STATS_ESCHEMA);
    cr_expect(strstr(stats_error(), "earlier hestat server") != NULL, "%s", stats_error());
    cr_expect_null(old);
    free(rb);
    cr_assert_eq(back->segments, nseg);
    static stats_result_t ro, rs;
    cr_assert_eq(stats_decrypt(s->ctx, a.sk, one, &ro), STATS_OK, "%s", stats_error());
    cr_assert_eq(stats_decrypt(s->ctx, a.sk, back, &rs), STATS_OK, "%s", stats_error());
    stats_moments_t ref[STATS_MAX_COLS];
    cr_assert_eq(stats_reference(t, ref, NULL), STATS_OK);
    const size_t C = t->ncols;
    for (size_t c = 0; c < C; c++) {
        cr_expect_eq(rs.cols[c].count, ref[c].count, "column %zu: count %Lg of %Lg", c, rs.cols[c].count,
                     ref[c].count);
        const long double f = x->layout.factor[c], n = ref[c].count;
        /* The suite's bounds (means: measured at most 6e-8 relative either way). */
        cr_expect(near(rs.cols[c].mean, ref[c].mean, f, n, 1e-6), "column %zu: mean %Lg against %Lg", c,
                  rs.cols[c].mean, ref[c].mean);
        cr_expect(near(ro.cols[c].mean, ref[c].mean, f, n, 1e-6), "column %zu: one segment: mean %Lg against %Lg",
                  c, ro.cols[c].mean, ref[c].mean);
        cr_expect(near(rs.cols[c].sd, ref[c].sd, f, n, 1e-5), "column %zu: sd %Lg against %Lg", c, rs.cols[c].sd,
                  ref[c].sd);
    }
    for (size_t i = 0; i < C; i++)
        for (size_t j = 0; j < C; j++) {
            if (i == j) continue;
            const stats_pair_t *p = &rs.pairs[stats_ij(&rs, i, j)], *q = &ro.pairs[stats_ij(&ro, i, j)];
            cr_expect_eq(p->n, q->n, "pair %zu,%zu: n %Lg against %Lg", i, j, p->n, q->n);
            cr_expect_lt(fabsl(p->corr - q->corr), 1e-5L, "pair %zu,%zu: corr %Lg against %Lg", i, j, p->corr,
                         q->corr);
        }
    /* Group means by TenYearCHD (0/1), against the plaintext. */
    const int gi = stats_column(t, "TenYearCHD");
    cr_assert_geq(gi, 0);
    const size_t g = (size_t)gi;
    for (int level = 0; level < 2; level++)
        for (size_t c = 0; c < C; c++) {
            if (c == g) continue;
            stats_moments_t m, want;
            cr_assert_eq(stats_group(&rs, g, level, c, &m), STATS_OK);
            cr_assert_eq(stats_reference_group(t, g, level, c, &want), STATS_OK);
            cr_expect_eq(m.count, want.count, "group %d column %zu: count", level, c);
            cr_expect(near(m.mean, want.mean, x->layout.factor[c], want.count, 1e-6),
                      "group %d column %zu: mean %Lg against %Lg", level, c, m.mean, want.mean);
        }
    /* A job of two tables (the same one twice; per-column statistics): the
     * second table's first chunk joins the first table's last segment
     * (276 rows), then new segments follow; the counts are twice the
     * table's, the means the table's. */
    stats_enc_result_t *two = NULL;
    uint64_t used = 0;
    setenv("HESTAT_SEGMENT_ROWS", "600", 1);
    cr_assert_eq(stats_compute_more(s->ctx, x, STATS_JOB_MEANS, s->rk, s->gk, 0, 1, NULL, NULL, &two, &used, NULL),
                 STATS_OK);
    const uint64_t after_one = used;
    cr_assert_eq(stats_compute_more(s->ctx, x, STATS_JOB_MEANS, s->rk, s->gk, 0, 1, NULL, NULL, &two, &used, NULL),
                 STATS_OK);
    unsetenv("HESTAT_SEGMENT_ROWS");
    const size_t joins = (600 - after_one) / rpc; /* chunks the last segment still takes */
    cr_assert_gt(joins, 0);
    cr_assert_eq(two->segments, nseg + (x->chunks - joins + per_seg - 1) / per_seg);
    cr_assert_eq(two->layout.nrows, 2600);
    static stats_result_t rt;
    cr_assert_eq(stats_decrypt(s->ctx, a.sk, two, &rt), STATS_OK, "%s", stats_error());
    for (size_t c = 0; c < C; c++) {
        cr_expect_eq(rt.cols[c].count, 2 * ref[c].count, "two tables, column %zu: count", c);
        cr_expect(near(rt.cols[c].mean, ref[c].mean, x->layout.factor[c], ref[c].count, 1e-6),
                  "two tables, column %zu: mean %Lg against %Lg", c, rt.cols[c].mean, ref[c].mean);
    }
    stats_result_free(&rt);
    stats_enc_result_free(two);
    stats_result_free(&ro);
    stats_result_free(&rs);
    stats_enc_result_free(back);
    stats_enc_result_free(seg);
    stats_enc_result_free(one);
    stats_enc_table_free(x);
    free(ta);
    keygen_free(&a);
    stats_table_free(t);
}

/* A study's fold keys serve two primes only (stats_galois_limit_folds), its
 * pair steps and conjugation every prime; a job computed with them is the
 * same bytes as with whole keys (a limited key switches bit-identically),
 * for both kinds of job; a study whose pair key serves too few primes is
 * refused when read. */
Test(stats_io, study_keys_serve_the_levels_they_are_used_at, .timeout = 300)
{
    stats_table_t *t;
    cr_assert_eq(stats_generate_framingham(700, 9, &t), STATS_OK);
    keygen_t a;
    keygen(t, &a);
    const ckks_context_t *ctx = a.study->ctx;
    const stats_layout_t *lay = &a.study->layout;
    int steps[64];
    size_t n = stats_galois_steps(lay, steps, 64), folds = 0;
    for (size_t i = 0; i < n; i++) {
        size_t have = ckks_galois_keys_primes(a.study->gk, ckks_galois_elt_rotate(ctx, steps[i]));
        cr_expect_eq(have, steps[i] >= (int)lay->block ? 2u : 3u, "step %d: %zu primes", steps[i], have);
        folds += steps[i] >= (int)lay->block;
    }
    cr_expect_eq(folds, 6);
    cr_expect_eq(ckks_galois_keys_primes(a.study->gk, ckks_galois_elt_conjugate(ctx)), 3);
    stats_study_t *back;
    cr_assert_eq(stats_study_read(a.file, a.len, &back, NULL), STATS_OK, "%s", stats_error());
    cr_expect_eq(ckks_galois_keys_primes(back->gk, ckks_galois_elt_rotate(ctx, 2048)), 2);
    stats_study_free(back);

    /* Whole keys, and the same keys with the folds limited: the same result
     * bytes. (Keys made afresh would differ in their noise: the eager
     * rotations of the chunks are at the top level, before the products.) */
    ckks_galois_keys_t *whole, *lim;
    cr_assert_eq(ckks_galois_keys_new_seeded(a.sk, steps, n, 1, &whole), CKKS_OK);
    void *gbuf;
    size_t glen;
    cr_assert_eq(ckks_write_galois_keys(whole, &gbuf, &glen), CKKS_OK);
    cr_assert_eq(ckks_read_galois_keys(ctx, gbuf, glen, &lim), CKKS_OK);
    free(gbuf);
    cr_assert_eq(stats_galois_limit_folds(ctx, lay, lim), CKKS_OK);
    cr_expect_eq(ckks_galois_keys_primes(lim, ckks_galois_elt_rotate(ctx, 16)), 2);
    void *ta;
    size_t tlen;
    encrypt_table(a.study, t, &ta, &tlen);
    stats_enc_table_t *x = NULL;
    cr_assert_eq(stats_table_read(a.study, ta, tlen, &x, NULL), STATS_OK, "%s", stats_error());
    for (int job = 0; job < 3; job++) { /* means; all (eager: 3 chunks); all, deferred */
        stats_job_t j = job ? STATS_JOB_ALL : STATS_JOB_MEANS;
        if (job == 2) setenv("HESTAT_W2_KEYSWITCH", "deferred", 1);
        stats_enc_result_t *r1, *r2;
        cr_assert_eq(stats_compute(ctx, x, j, a.study->rk, lim, &r1, NULL), STATS_OK, "%s", stats_error());
        cr_assert_eq(stats_compute(ctx, x, j, a.study->rk, whole, &r2, NULL), STATS_OK, "%s", stats_error());
        void *b1, *b2;
        size_t l1, l2;
        cr_assert_eq(stats_result_write(a.study, r1, &b1, &l1), STATS_OK);
        cr_assert_eq(stats_result_write(a.study, r2, &b2, &l2), STATS_OK);
        cr_expect(l1 == l2 && !memcmp(b1, b2, l1), "job %d: limited and whole keys give different results", job);
        static stats_result_t out;
        cr_assert_eq(stats_decrypt(ctx, a.sk, r1, &out), STATS_OK, "%s", stats_error());
        stats_moments_t ref[16];
        cr_assert_eq(stats_reference(t, ref, NULL), STATS_OK);
        for (size_t c = 0; c < 16; c++) {
            cr_expect_eq(out.cols[c].count, ref[c].count, "%s", t->names[c]);
            cr_expect_leq(fabsl(out.cols[c].mean - ref[c].mean), 1e-7L * fmaxl(1, fabsl(ref[c].mean)), "%s: %Lg vs %Lg",
                          t->names[c], out.cols[c].mean, ref[c].mean);
        }
        free(b1);
        free(b2);
        stats_enc_result_free(r1);
        stats_enc_result_free(r2);
        unsetenv("HESTAT_W2_KEYSWITCH");
    }
    stats_enc_table_free(x);
    free(ta);
    ckks_galois_keys_free(whole);
    ckks_galois_keys_free(lim);

    /* A pair key limited to two primes: the study is refused. */
    cr_assert_eq(ckks_galois_keys_limit(a.study->gk, ckks_galois_elt_rotate(ctx, 1), 2), CKKS_OK);
    void *bad;
    size_t blen;
    cr_assert_eq(stats_study_write(a.study, &bad, &blen), STATS_OK);
    back = NULL;
    cr_expect_eq(stats_study_read(bad, blen, &back, NULL), STATS_ESCHEMA);
    cr_expect(strstr(stats_error(), "step 1 serves 2 primes") != NULL, "%s", stats_error());
    cr_expect_null(back);
    free(bad);
    keygen_free(&a);
    stats_table_free(t);
}

/* stats_table_writer_put_many: blocks encrypted in parallel and written in
 * order, in batches of 3 and 2 (the last block short), give a table whose
 * column counts and means decrypt to the plaintext's; a short block before
 * the last, or a block out of its column's range, is refused with nothing
 * written. */
Test(stats_io, writer_puts_blocks_in_parallel_batches, .timeout = 300)
{
    const size_t rows = 1100;
    stats_table_t *t;
    cr_assert_eq(stats_generate_framingham(rows, 7, &t), STATS_OK);
    keygen_t k;
    keygen(t, &k);
    const stats_study_t *s = k.study;
    const size_t R = s->layout.rows_per_ct, nb = (rows + R - 1) / R;
    cr_assert_eq(nb, 5, "R = %zu", R);
    stats_generator_t *g;
    cr_assert_eq(stats_generator_new(7, &g), STATS_OK);
    stats_table_t *blocks[5];
    for (size_t i = 0; i < nb; i++)
        cr_assert_eq(stats_generator_next(g, i + 1 < nb ? R : rows - (nb - 1) * R, &blocks[i]), STATS_OK);
    stats_generator_free(g);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    stats_table_writer_t w;
    cr_assert_eq(stats_table_writer_begin(s, f, 0x1p40, &w), STATS_OK);
    cr_assert_eq(fflush(f), 0);
    const long at = ftell(f);
    /* A short block first, then a full one: refused, nothing written. */
    const stats_table_t *bad[2] = {blocks[4], blocks[0]};
    cr_expect_eq(stats_table_writer_put_many(&w, bad, 2), STATS_EINVAL);
    /* A value out of its column's range in the second block. */
    stats_table_t *over;
    cr_assert_eq(stats_generator_new(7, &g), STATS_OK);
    cr_assert_eq(stats_generator_next(g, R, &over), STATS_OK);
    stats_generator_free(g);
    over->values[3 * over->ncols + 1] = 4 * s->layout.factor[1];
    const stats_table_t *ranged[2] = {blocks[0], over};
    cr_expect_eq(stats_table_writer_put_many(&w, ranged, 2), STATS_ERANGE);
    stats_table_free(over);
    cr_assert_eq(fflush(f), 0);
    cr_expect_eq(ftell(f), at, "a refused batch wrote %ld bytes", ftell(f) - at);
    cr_expect_eq(w.nrows, 0);
    cr_assert_eq(stats_table_writer_put_many(&w, (const stats_table_t *const *)blocks, 3), STATS_OK,
                 "%s", stats_error());
    cr_assert_eq(stats_table_writer_put_many(&w, (const stats_table_t *const *)blocks + 3, 2), STATS_OK,
                 "%s", stats_error());
    cr_expect_eq(stats_table_writer_put_many(&w, (const stats_table_t *const *)blocks, 1), STATS_EINVAL,
                 "a block after the short last one");
    cr_assert_eq(stats_table_writer_end(&w), STATS_OK);
    cr_assert_eq(fclose(f), 0);
    stats_enc_table_t *e;
    cr_assert_eq(stats_table_read(s, buf, len, &e, NULL), STATS_OK, "%s", stats_error());
    cr_expect_eq(e->layout.nrows, rows);
    cr_expect_eq(e->chunks, nb);
    stats_enc_result_t *r;
    cr_assert_eq(stats_compute(s->ctx, e, STATS_JOB_MEANS, s->rk, s->gk, &r, NULL), STATS_OK, "%s", stats_error());
    stats_result_t out = {0};
    cr_assert_eq(stats_decrypt(s->ctx, k.sk, r, &out), STATS_OK, "%s", stats_error());
    for (size_t c = 0; c < t->ncols; c++) {
        long double n = 0, sum = 0;
        for (size_t i = 0; i < rows; i++) {
            double v = stats_value(t, i, c);
            if (!isnan(v)) {
                n += 1;
                sum += v;
            }
        }
        cr_expect_eq(out.cols[c].count, n, "column %zu: count %Lg, plaintext %Lg", c, out.cols[c].count, n);
        cr_expect(fabsl(out.cols[c].mean - sum / n) <= 1e-6L * (1 + fabsl(sum / n)), "column %zu: mean %Lg, plaintext %Lg",
                  c, out.cols[c].mean, sum / n);
    }
    stats_result_free(&out);
    stats_enc_result_free(r);
    stats_enc_table_free(e);
    free(buf);
    for (size_t i = 0; i < nb; i++) stats_table_free(blocks[i]);
    stats_table_free(t);
    keygen_free(&k);
}
