/* stats/multiparty.c in memory: a two-party study from its drafts' and
 * bundles' bytes, the study file's round trip (its multiparty frame covered
 * by the digest, read by the streaming reader the server uses), the keys
 * that may and may not decrypt, and readers that refuse every damaged,
 * truncated, foreign or misplaced bundle without crashing. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats/stats.h"

typedef struct {
    stats_mp_draft_t *d;
    ckks_secret_key_t *analyst, *si[2], *ui[2];
    void *r1[2], *r2[2];
    size_t r1len[2], r2len[2];
    stats_mp_bundle_t *sum1, *sum2;
    stats_study_t *study;
} fixture_t;

static void make_draft(fixture_t *f, const stats_table_t *t)
{
    int bits[] = {60, 40, 40, 60};
    ckks_params_t p;
    ckks_context_t *ctx;
    cr_assert_eq(ckks_params_from_bits(&p, 8192, bits, 4), CKKS_OK);
    cr_assert_eq(ckks_context_new(&p, &ctx), CKKS_OK);
    ckks_public_key_t *pk;
    cr_assert_eq(ckks_secret_key_new(ctx, &f->analyst), CKKS_OK);
    cr_assert_eq(ckks_public_key_new(f->analyst, &pk), CKKS_OK);
    cr_assert_eq(stats_mp_draft_create(ctx, t, NULL, NULL, pk, 2, &f->d), STATS_OK, "%s", stats_error());
    ckks_public_key_free(pk);
}

static void build(fixture_t *f, const stats_table_t *t)
{
    memset(f, 0, sizeof *f);
    make_draft(f, t);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(ckks_secret_key_new(f->d->ctx, &f->si[i]), CKKS_OK);
        cr_assert_eq(ckks_secret_key_new(f->d->ctx, &f->ui[i]), CKKS_OK);
        cr_assert_eq(stats_mp_round1(f->d, i + 1, f->si[i], f->ui[i], &f->r1[i], &f->r1len[i]), STATS_OK, "%s",
                     stats_error());
    }
    for (int i = 0; i < 2; i++) {
        stats_mp_bundle_t *b;
        cr_assert_eq(stats_mp_read_keys(f->d, STATS_MP_ROUND1, i + 1, f->r1[i], f->r1len[i], &b), STATS_OK, "%s",
                     stats_error());
        cr_assert_eq(stats_mp_bundle_add(&f->sum1, b), STATS_OK);
        stats_mp_bundle_free(b);
    }
    for (int i = 0; i < 2; i++)
        cr_assert_eq(stats_mp_round2(f->d, i + 1, f->si[i], f->ui[i], f->sum1, &f->r2[i], &f->r2len[i]), STATS_OK);
    for (int i = 0; i < 2; i++) {
        stats_mp_bundle_t *b;
        cr_assert_eq(stats_mp_read_keys(f->d, STATS_MP_ROUND2, -1, f->r2[i], f->r2len[i], &b), STATS_OK, "%s",
                     stats_error());
        cr_assert_eq(b->party, i + 1);
        cr_assert_eq(stats_mp_bundle_add(&f->sum2, b), STATS_OK);
        stats_mp_bundle_free(b);
    }
    cr_assert_eq(stats_mp_study_build(f->d, f->sum1, f->sum2, &f->study), STATS_OK, "%s", stats_error());
}

static void release_fixture(fixture_t *f)
{
    stats_study_free(f->study);
    stats_mp_bundle_free(f->sum1);
    stats_mp_bundle_free(f->sum2);
    for (int i = 0; i < 2; i++) {
        free(f->r1[i]);
        free(f->r2[i]);
        ckks_secret_key_free(f->si[i]);
        ckks_secret_key_free(f->ui[i]);
    }
    ckks_secret_key_free(f->analyst);
    stats_mp_draft_free(f->d);
}

/* The same key read into another context of the same parameters. */
static ckks_secret_key_t *key_in(const ckks_secret_key_t *sk, const ckks_context_t *ctx)
{
    void *b;
    size_t l;
    ckks_secret_key_t *out;
    cr_assert_eq(ckks_write_secret_key(sk, &b, &l), CKKS_OK);
    cr_assert_eq(ckks_read_secret_key(ctx, b, l, &out), CKKS_OK);
    free(b);
    return out;
}

/* A bundle that must be refused: no crash, an error with a message. */
static void refused_keys(const stats_mp_draft_t *d, stats_mp_round_t round, int party, const void *buf, size_t len,
                         const char *why)
{
    stats_mp_bundle_t *b = NULL;
    cr_expect_neq(stats_mp_read_keys(d, round, party, buf, len, &b), STATS_OK, "%s", why);
    cr_expect_null(b, "%s", why);
    stats_mp_bundle_free(b);
}

Test(mp_stats, two_party_study_files_and_refusals, .timeout = 300)
{
    stats_table_t *t;
    cr_assert_eq(stats_generate_framingham(500, 4, &t), STATS_OK);
    fixture_t f;
    build(&f, t);

    /* The draft's round trip keeps its digest; the study names its draft. */
    void *dbuf;
    size_t dlen;
    cr_assert_eq(stats_mp_draft_write(f.d, &dbuf, &dlen), STATS_OK);
    stats_mp_draft_t *d2;
    cr_assert_eq(stats_mp_draft_read(dbuf, dlen, &d2), STATS_OK, "%s", stats_error());
    cr_expect_arr_eq(d2->digest, f.d->digest, 32);
    cr_expect_eq(d2->parties, 2);
    cr_expect_eq(d2->smudge_bits, STATS_MP_SMUDGE_BITS);
    cr_expect_arr_eq(f.study->draft_digest, f.d->digest, 32);
    cr_expect_eq(f.study->parties, 2);
    stats_mp_draft_free(d2);
    /* A draft with anything after it, or cut anywhere, is refused. */
    for (size_t cut = 0; cut < dlen; cut += dlen / 97 + 1) {
        stats_mp_draft_t *x = NULL;
        cr_expect_neq(stats_mp_draft_read(dbuf, cut, &x), STATS_OK, "draft cut at %zu", cut);
        cr_expect_null(x);
    }
    free(dbuf);

    /* The study file: both readers, the same digest and multiparty fields. */
    void *sbuf;
    size_t slen;
    cr_assert_eq(stats_study_write(f.study, &sbuf, &slen), STATS_OK);
    stats_study_t *back;
    cr_assert_eq(stats_study_read(sbuf, slen, &back, NULL), STATS_OK, "%s", stats_error());
    cr_expect_arr_eq(back->digest, f.study->digest, 32);
    cr_expect_eq(back->parties, 2);
    cr_expect_arr_eq(back->mp_seed, f.d->seed, 32);
    stats_stream_t *st;
    cr_assert_eq(stats_stream_study_new(&st), STATS_OK);
    for (size_t off = 0; off < slen; off += 100000)
        cr_assert_eq(stats_stream_feed(st, (uint8_t *)sbuf + off, slen - off < 100000 ? slen - off : 100000), STATS_OK,
                     "%s", stats_error());
    stats_study_t *streamed;
    cr_assert_eq(stats_stream_finish(st, &streamed, NULL), STATS_OK, "%s", stats_error());
    stats_stream_free(st);
    cr_expect_arr_eq(streamed->digest, f.study->digest, 32);
    cr_expect_eq(streamed->parties, 2);
    stats_study_free(streamed);

    /* Keys: the analyst's is this study's decrypting key; a party's share is not. */
    ckks_secret_key_t *ak = key_in(f.analyst, back->ctx), *pk1 = key_in(f.si[0], back->ctx);
    cr_expect_eq(stats_study_check_key(back, ak), STATS_OK, "%s", stats_error());
    cr_expect_eq(stats_study_check_key(back, pk1), STATS_EKEY);
    cr_expect(strstr(stats_error(), "share") != NULL, "%s", stats_error());
    ckks_secret_key_free(ak);
    ckks_secret_key_free(pk1);

    /* Round-1 bundles: another party's, the other round's, another draft's, cut, extended. */
    refused_keys(f.d, STATS_MP_ROUND1, 2, f.r1[0], f.r1len[0], "party 1's as party 2's");
    refused_keys(f.d, STATS_MP_ROUND2, -1, f.r1[0], f.r1len[0], "round 1 as round 2");
    refused_keys(f.d, STATS_MP_ROUND1, 0, f.r1[0], f.r1len[0], "a party's as a sum");
    fixture_t g;
    memset(&g, 0, sizeof g);
    make_draft(&g, t);
    refused_keys(g.d, STATS_MP_ROUND1, -1, f.r1[0], f.r1len[0], "another draft's");
    for (size_t cut = 0; cut < f.r1len[0]; cut += f.r1len[0] / 61 + 1)
        refused_keys(f.d, STATS_MP_ROUND1, -1, f.r1[0], cut, "a cut bundle");
    uint8_t *longer = malloc(f.r1len[0] + 8);
    memcpy(longer, f.r1[0], f.r1len[0]);
    memset(longer + f.r1len[0], 0, 8);
    refused_keys(f.d, STATS_MP_ROUND1, -1, longer, f.r1len[0] + 8, "trailing bytes");
    /* A secret key appended after the shares, or in their place. */
    void *kbuf;
    size_t klen;
    cr_assert_eq(ckks_write_secret_key(f.si[0], &kbuf, &klen), CKKS_OK);
    refused_keys(f.d, STATS_MP_ROUND2, -1, kbuf, klen, "a secret key");
    cr_expect(strstr(stats_error(), "secret key") != NULL, "%s", stats_error());
    free(kbuf);
    free(longer);
    /* A byte flipped anywhere: refused (checksums, tags, fields). */
    uint8_t *bad = malloc(f.r2len[0]);
    for (size_t at = 0; at < f.r2len[0]; at += f.r2len[0] / 53 + 1) {
        memcpy(bad, f.r2[0], f.r2len[0]);
        bad[at] ^= 0x10;
        refused_keys(f.d, STATS_MP_ROUND2, -1, bad, f.r2len[0], "a flipped byte");
    }
    free(bad);
    ckks_secret_key_free(g.analyst); /* before its context goes with the draft */
    stats_mp_draft_free(g.d);

    /* The study's single-key twin reads results without the released flag only. */
    stats_study_free(back);
    free(sbuf);
    release_fixture(&f);
    stats_table_free(t);
}

Test(mp_stats, keyswitch_release_decrypts_with_the_analyst_key, .timeout = 300)
{
    stats_table_t *t;
    cr_assert_eq(stats_generate_framingham(400, 9, &t), STATS_OK);
    fixture_t f;
    build(&f, t);
    stats_study_t *s = f.study;
    stats_enc_table_t *e;
    stats_layout_t lay = s->layout;
    lay.nrows = t->nrows;
    lay.chunks = (t->nrows + lay.rows_per_ct - 1) / lay.rows_per_ct;
    cr_assert_eq(stats_encrypt(s->ctx, s->pk, NULL, t, &lay, 0x1p40, &e), STATS_OK, "%s", stats_error());
    stats_enc_result_t *r;
    cr_assert_eq(stats_compute(s->ctx, e, STATS_JOB_MEANS, s->rk, s->gk, &r, NULL), STATS_OK, "%s", stats_error());
    void *rbuf;
    size_t rlen;
    cr_assert_eq(stats_result_write(s, r, &rbuf, &rlen), STATS_OK);
    unsigned char digest[32];
    stats_mp_result_digest(rbuf, rlen, digest);
    /* The party's share keys were made in the draft's context: read them into the study's. */
    stats_mp_bundle_t *sum = NULL;
    for (int i = 0; i < 2; i++) {
        void *kb, *ks;
        size_t kl, ksl;
        ckks_secret_key_t *si;
        cr_assert_eq(ckks_write_secret_key(f.si[i], &kb, &kl), CKKS_OK);
        cr_assert_eq(ckks_read_secret_key(s->ctx, kb, kl, &si), CKKS_OK);
        free(kb);
        cr_assert_eq(stats_mp_keyswitch(s, r, digest, i + 1, si, &ks, &ksl), STATS_OK, "%s", stats_error());
        ckks_secret_key_free(si);
        stats_mp_bundle_t *b;
        unsigned char other[32];
        memcpy(other, digest, 32);
        other[5] ^= 1;
        cr_expect_neq(stats_mp_read_keyswitch(s, r, other, -1, ks, ksl, &b), STATS_OK, "another result's digest");
        cr_assert_eq(stats_mp_read_keyswitch(s, r, digest, i + 1, ks, ksl, &b), STATS_OK, "%s", stats_error());
        free(ks);
        cr_assert_eq(stats_mp_bundle_add(&sum, b), STATS_OK);
        stats_mp_bundle_free(b);
    }
    cr_assert_eq(stats_mp_release(s, r, sum), STATS_OK, "%s", stats_error());
    cr_expect_neq(stats_mp_release(s, r, sum), STATS_OK, "released twice");
    void *relbuf;
    size_t rellen;
    cr_assert_eq(stats_result_write(s, r, &relbuf, &rellen), STATS_OK);
    stats_enc_result_t *rel;
    cr_assert_eq(stats_result_read(s, relbuf, rellen, &rel), STATS_OK, "%s", stats_error());
    cr_expect(rel->released);
    /* The analyst's key reads the released counts and means (the analyst's key
     * is in the draft's context: the same parameters, read into the study's). */
    void *ab;
    size_t al;
    ckks_secret_key_t *ask;
    cr_assert_eq(ckks_write_secret_key(f.analyst, &ab, &al), CKKS_OK);
    cr_assert_eq(ckks_read_secret_key(s->ctx, ab, al, &ask), CKKS_OK);
    free(ab);
    static stats_result_t res;
    cr_assert_eq(stats_decrypt(s->ctx, ask, rel, &res), STATS_OK, "%s", stats_error());
    static stats_moments_t ref[STATS_MAX_COLS];
    cr_assert_eq(stats_reference(t, ref, NULL), STATS_OK);
    for (size_t c = 0; c < t->ncols; c++) {
        cr_expect_leq(fabsl(res.cols[c].count - ref[c].count), 1e-3L, "count of %s", t->names[c]);
        cr_expect_leq(fabsl(res.cols[c].mean - ref[c].mean), 1e-6L * (fabsl(ref[c].mean) + 1), "mean of %s",
                      t->names[c]);
    }
    ckks_secret_key_free(ask);
    stats_enc_result_free(rel);
    free(relbuf);
    free(rbuf);
    stats_mp_bundle_free(sum);
    stats_enc_result_free(r);
    stats_enc_table_free(e);
    release_fixture(&f);
    stats_table_free(t);
}
