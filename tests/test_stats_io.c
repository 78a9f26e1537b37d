/* Studies, tables, results and jobs as files: round trips, a job run equal to
 * the in-memory computation, and refusals (secret keys, foreign tables,
 * damage). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    /* Same parameters, different schema digest: flip a byte of the digest and reseal. */
    uint8_t *tb = malloc(tlen);
    memcpy(tb, tbuf, tlen);
    tb[48] ^= 1;
    cr_expect_neq(stats_table_read(back, tb, tlen, &x, NULL), STATS_OK);
    cr_expect_null(x);
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
