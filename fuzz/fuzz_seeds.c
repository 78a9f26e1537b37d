/* Writes the seed corpora of the libFuzzer targets, from real files:
 *   CORPUS/hestat_format/  the n4096 SEAL vectors re-saved in hestat's format
 *                          (plus a compact ciphertext and the params);
 *   CORPUS/stats_study/    the fixture's study (fuzz_stats.h) as written, and
 *   CORPUS/stats_table/    compact forms of it (frame references, literal
 *   CORPUS/stats_result/   small frames with the checksum left to the
 *   CORPUS/stats_job/      harness), for each stats/io.c target; results of
 *   CORPUS/stats_stream/   a means and an all-statistics job.
 * Built with the fuzz targets' objects, so its fixture is byte for byte the
 * one each target builds at start-up. Checks that the fixture decrypts to the
 * plaintext counts and means before writing anything.
 * usage: fuzz_seeds VECTOR_DIR CORPUS_DIR */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "fuzz_stats.h"

static const char *corpus;

static void put_bytes(const char *target, const char *name, const void *buf, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", corpus, target);
    if (mkdir(path, 0755) && errno != EEXIST) {
        fprintf(stderr, "fuzz_seeds: cannot create %s\n", path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", corpus, target, name);
    if (ckks_file_write(path, buf, len, 0644)) {
        fprintf(stderr, "fuzz_seeds: cannot write %s\n", path);
        exit(1);
    }
}

static void put(const char *target, const char *name, void *buf, size_t len)
{
    put_bytes(target, name, buf, len);
    free(buf);
}

/* ---- hestat format: the SEAL vectors converted ---- */
static int hestat_format_seeds(const char *vectors)
{
    ckks_context_t *ctx = fuzz_context();
    char path[1024];
    void *raw, *buf;
    size_t len, out_len;
    snprintf(path, sizeof path, "%s/secret_key.bin", vectors);
    ckks_secret_key_t *sk;
    if (ckks_file_read(path, 1 << 26, &raw, &len) || ckks_seal_read_secret_key(ctx, raw, len, &sk)) {
        fprintf(stderr, "fuzz_seeds: cannot read %s\n", path);
        return 1;
    }
    free(raw);
    snprintf(path, sizeof path, "%s/ct_a.bin", vectors);
    ckks_ciphertext_t *ct;
    if (ckks_file_read(path, 1 << 26, &raw, &len) || ckks_seal_read_ciphertext(ctx, raw, len, &ct)) {
        fprintf(stderr, "fuzz_seeds: cannot read %s\n", path);
        return 1;
    }
    free(raw);
    const char *t = "hestat_format";
    if (!ckks_write_ciphertext(ct, 0, &buf, &out_len)) put(t, "ciphertext", buf, out_len);
    ckks_plaintext_t *pt;
    ckks_plaintext_new(ctx, 0, &pt);
    ckks_decrypt(sk, ct, pt);
    if (!ckks_write_plaintext(pt, &buf, &out_len)) put(t, "plaintext", buf, out_len);
    ckks_ciphertext_t *sym;
    ckks_ciphertext_new(ctx, 2, 0, &sym);
    ckks_encrypt_symmetric(sk, pt, sym);
    if (!ckks_write_ciphertext(sym, 1, &buf, &out_len)) put(t, "compact", buf, out_len);
    if (!ckks_write_ciphertext(sym, CKKS_FLAG_COMPACT | CKKS_FLAG_PACKED, &buf, &out_len))
        put(t, "compact-packed", buf, out_len);
    if (!ckks_write_ciphertext(ct, CKKS_FLAG_PACKED, &buf, &out_len)) put(t, "packed", buf, out_len);
    if (!ckks_write_params(ctx, &buf, &out_len)) put(t, "params", buf, out_len);
    ckks_public_key_t *pk;
    ckks_public_key_new(sk, &pk);
    if (!ckks_write_public_key(pk, &buf, &out_len)) put(t, "public_key", buf, out_len);
    ckks_galois_keys_t *gk;
    int step = 1;
    ckks_galois_keys_new(sk, &step, 1, 0, &gk);
    if (!ckks_write_galois_keys(gk, &buf, &out_len)) put(t, "galois_keys", buf, out_len);
    ckks_galois_keys_free(gk);
    /* compact (seeded) keys; Galois keys with one limited to fewer primes (flag 4) */
    int steps2[2] = {1, 16};
    if (!ckks_galois_keys_new_seeded(sk, steps2, 2, 0, &gk)) {
        if (!ckks_galois_keys_limit(gk, ckks_galois_elt_rotate(ctx, 16), 1) &&
            !ckks_write_galois_keys(gk, &buf, &out_len))
            put(t, "galois_keys_levels", buf, out_len);
        ckks_galois_keys_free(gk);
    }
    ckks_public_key_t *spk;
    if (!ckks_public_key_new_seeded(sk, &spk)) {
        if (!ckks_write_public_key(spk, &buf, &out_len)) put(t, "public_key_compact", buf, out_len);
        ckks_public_key_free(spk);
    }
    /* multiparty shares: a Galois-key share, whole and limited, and a key-switch share */
    uint8_t seed[CKKS_MP_SEED_BYTES] = {1}, tag[32] = {2};
    ckks_mp_share_t *sh;
    if (!ckks_mp_gkg_share(sk, seed, ckks_galois_elt_rotate(ctx, 1), &sh)) {
        if (!ckks_mp_share_write(sh, tag, &buf, &out_len)) put(t, "mp_gkg_share", buf, out_len);
        ckks_mp_share_free(sh);
    }
    if (!ckks_mp_gkg_share_limited(sk, seed, ckks_galois_elt_rotate(ctx, 16), 1, &sh)) {
        if (!ckks_mp_share_write(sh, tag, &buf, &out_len)) put(t, "mp_gkg_share_limited", buf, out_len);
        ckks_mp_share_free(sh);
    }
    if (!ckks_mp_pcks_share(sk, pk, ct, 12, &sh)) {
        if (!ckks_mp_share_write(sh, tag, &buf, &out_len)) put(t, "mp_pcks_share", buf, out_len);
        ckks_mp_share_free(sh);
    }
    ckks_public_key_free(pk);
    ckks_ciphertext_free(sym);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ct);
    ckks_secret_key_free(sk);
    return 0;
}

/* ---- stats/io.c: compact inputs in the harness's expansion language ---- */
typedef struct {
    uint8_t p[1 << 16];
    size_t len;
} seed_t;

static void seed_bytes(seed_t *s, const void *src, size_t n)
{
    if (n > sizeof s->p - s->len) abort();
    memcpy(s->p + s->len, src, n);
    s->len += n;
}

/* A reference to template frame i. */
static void seed_ref(seed_t *s, uint16_t i)
{
    uint8_t r[FUZZ_REF_BYTES] = {'H', 'E', 'S', 'T', 'A', 'T', '\r', '\n'};
    uint16_t v = FUZZ_REF_VERSION;
    memcpy(r + 8, &v, 2);
    memcpy(r + 10, &i, 2);
    seed_bytes(s, r, sizeof r);
}

/* A frame copied literally with its checksum zeroed (the harness recomputes
 * it, so mutations of the payload get past the checksum). */
static void seed_literal(seed_t *s, const uint8_t *frame, size_t len)
{
    size_t at = s->len;
    seed_bytes(s, frame, len);
    memset(s->p + at + 32, 0, 8);
}

/* Frame k of a well-formed file. */
static const uint8_t *nth_frame(const void *buf, size_t len, size_t k, size_t *flen)
{
    const uint8_t *p = buf;
    size_t off = 0;
    for (size_t i = 0;; i++) {
        uint64_t plen;
        if (len - off < CKKS_HEADER_BYTES) abort();
        memcpy(&plen, p + off + 24, 8);
        if (i == k) {
            *flen = CKKS_HEADER_BYTES + (size_t)plen;
            return p + off;
        }
        off += CKKS_HEADER_BYTES + (size_t)plen;
    }
}

static void put_seed(const char *target, const char *name, const seed_t *s)
{
    put_bytes(target, name, s->p, s->len);
}

/* Stream target inputs: mode byte, four chunk lengths, then the file. */
static void put_stream(const char *name, int table, const uint16_t chunk[4], const void *file, size_t len)
{
    uint8_t *p = malloc(9 + len);
    if (!p) abort();
    p[0] = (uint8_t)table;
    memcpy(p + 1, chunk, 8);
    memcpy(p + 9, file, len);
    put(/* frees p */ "stats_stream", name, p, 9 + len);
}

static int stats_seeds(void)
{
    const fuzz_stats_t *f = fuzz_stats();
    /* The fixture must be real: its result decrypts to the plaintext's counts and means. */
    static stats_result_t out;
    stats_moments_t ref[STATS_MAX_COLS];
    if (stats_decrypt(f->study->ctx, f->sk, f->result, &out) || stats_reference(f->plain, ref, NULL)) {
        fprintf(stderr, "fuzz_seeds: the fixture's result does not decrypt: %s\n", stats_error());
        return 1;
    }
    for (size_t c = 0; c < f->plain->ncols; c++)
        if (fabsl(out.cols[c].count - ref[c].count) > 1e-3L || fabsl(out.cols[c].mean - ref[c].mean) > 1e-3L * f->study->layout.factor[c]) {
            fprintf(stderr, "fuzz_seeds: %s: count %Lg mean %Lg, plaintext %Lg %Lg\n", f->plain->names[c],
                    out.cols[c].count, out.cols[c].mean, ref[c].count, ref[c].mean);
            return 1;
        }

    /* Template indices: 0..4 study, 5 table header, 6..7 table z/m, 8.. result. */
    enum { T_PARAMS, T_SCHEMA, T_PK, T_RK, T_GK, T_TABLE, T_Z, T_M, T_RESULT };
    if (f->nframes < T_RESULT + 2) abort();
    const size_t nresult_cts = f->nframes - T_RESULT - 1;
    seed_t s;

    /* Studies. */
    put_bytes("stats_study", "study.hst", f->study_buf, f->study_len);
    s.len = 0;
    for (uint16_t i = T_PARAMS; i <= T_GK; i++) seed_ref(&s, i);
    put_seed("stats_study", "ref_study", &s);
    s.len = 0;
    seed_literal(&s, f->frame[T_PARAMS], f->frame_len[T_PARAMS]);
    seed_literal(&s, f->frame[T_SCHEMA], f->frame_len[T_SCHEMA]);
    for (uint16_t i = T_PK; i <= T_GK; i++) seed_ref(&s, i);
    put_seed("stats_study", "literal_params_schema", &s);

    /* Tables. */
    put_bytes("stats_table", "table.hst", f->table_buf, f->table_len);
    s.len = 0;
    seed_literal(&s, f->frame[T_TABLE], f->frame_len[T_TABLE]);
    seed_ref(&s, T_Z);
    seed_ref(&s, T_M);
    put_seed("stats_table", "literal_header", &s);
    {
        /* 1000 rows in two chunks (the ciphertexts reused). */
        size_t at = 0;
        s.len = 0;
        seed_literal(&s, f->frame[T_TABLE], f->frame_len[T_TABLE]);
        uint64_t nrows = 1000, chunks = (nrows + f->study->layout.rows_per_ct - 1) / f->study->layout.rows_per_ct;
        memcpy(s.p + at + CKKS_HEADER_BYTES + 32, &nrows, 8);
        memcpy(s.p + at + CKKS_HEADER_BYTES + 40, &chunks, 8);
        for (uint64_t k = 0; k < chunks; k++) {
            seed_ref(&s, T_Z);
            seed_ref(&s, T_M);
        }
        put_seed("stats_table", "literal_header_2_chunks", &s);
    }

    /* Results: the fixture's (means) and one of all statistics. */
    put_bytes("stats_result", "result_means.hst", f->result_buf, f->result_len);
    s.len = 0;
    seed_literal(&s, f->frame[T_RESULT], f->frame_len[T_RESULT]);
    for (size_t i = 0; i < nresult_cts; i++) seed_ref(&s, (uint16_t)(T_RESULT + 1 + i));
    put_seed("stats_result", "literal_header", &s);
    const stats_enc_table_t *tables[1] = {f->table};
    void *job_all, *result_all;
    size_t job_all_len, result_all_len;
    if (stats_job_write(f->study, STATS_JOB_ALL, tables, 1, &job_all, &job_all_len) ||
        stats_job_run(job_all, job_all_len, &result_all, &result_all_len, NULL)) {
        fprintf(stderr, "fuzz_seeds: all-statistics job: %s\n", stats_error());
        return 1;
    }
    free(job_all);
    put("stats_result", "result_all.hst", result_all, result_all_len);
    {
        /* A glm round's frame: two samples at the fixture's N and first prime. */
        const size_t n = ckks_context_n(f->study->ctx), flen = 24 + 2 * (24 + 8 * n);
        const uint64_t q = ckks_context_prime(f->study->ctx, 0);
        uint8_t *g = calloc(1, flen);
        if (!g) abort();
        memcpy(g, "HSTGLMR2", 8);
        uint64_t cn = 2 | (uint64_t)n << 32, sc;
        double scale = 0x1p30;
        memcpy(&sc, &scale, 8);
        for (int i = 0; i < 8; i++) {
            g[8 + i] = (uint8_t)(cn >> (8 * i));
            g[16 + i] = (uint8_t)(q >> (8 * i));
        }
        for (size_t k = 0; k < 2; k++) {
            uint8_t *p = g + 24 + k * (24 + 8 * n);
            for (size_t w = 0; w < n + 3; w++) {
                uint64_t v = w ? (w * 0x9e3779b97f4a7c15ull + k) % q : sc;
                for (int i = 0; i < 8; i++) p[8 * w + i] = (uint8_t)(v >> (8 * i));
            }
        }
        put_bytes("stats_result", "glm_frame.bin", g, flen);
        free(g);
    }

    /* Jobs: study frames, job header, tables. */
    put_bytes("stats_job", "job_means.hst", f->job_buf, f->job_len);
    size_t jl;
    const uint8_t *jh = nth_frame(f->job_buf, f->job_len, 5, &jl);
    s.len = 0;
    for (uint16_t i = T_PARAMS; i <= T_GK; i++) seed_ref(&s, i);
    seed_literal(&s, jh, jl);
    seed_literal(&s, f->frame[T_TABLE], f->frame_len[T_TABLE]);
    seed_ref(&s, T_Z);
    seed_ref(&s, T_M);
    put_seed("stats_job", "literal_headers", &s);
    s.len = 0;
    for (uint16_t i = T_PARAMS; i <= T_GK; i++) seed_ref(&s, i);
    seed_literal(&s, jh, jl);
    uint64_t two = 2;
    memcpy(s.p + s.len - jl + CKKS_HEADER_BYTES + 8, &two, 8);
    for (int k = 0; k < 2; k++) {
        seed_ref(&s, T_TABLE);
        seed_ref(&s, T_Z);
        seed_ref(&s, T_M);
    }
    put_seed("stats_job", "two_tables", &s);

    /* Streams: real files in chunks of every kind of size, and compact forms. */
    const uint16_t big[4] = {4096, 48, 1, 65535}, odd[4] = {7, 0, 1000, 47}, whole[4] = {65535, 65535, 65535, 65535};
    put_stream("study_chunks", 0, big, f->study_buf, f->study_len);
    put_stream("table_chunks", 1, big, f->table_buf, f->table_len);
    put_stream("table_odd_chunks", 1, odd, f->table_buf, f->table_len);
    s.len = 0;
    for (uint16_t i = T_PARAMS; i <= T_GK; i++) seed_ref(&s, i);
    put_stream("ref_study", 0, whole, s.p, s.len);
    s.len = 0;
    seed_literal(&s, f->frame[T_PARAMS], f->frame_len[T_PARAMS]);
    seed_literal(&s, f->frame[T_SCHEMA], f->frame_len[T_SCHEMA]);
    for (uint16_t i = T_PK; i <= T_GK; i++) seed_ref(&s, i);
    put_stream("literal_params_schema", 0, big, s.p, s.len);
    s.len = 0;
    seed_literal(&s, f->frame[T_TABLE], f->frame_len[T_TABLE]);
    seed_ref(&s, T_Z);
    seed_ref(&s, T_M);
    put_stream("literal_table_header", 1, odd, s.p, s.len);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_seeds VECTOR_DIR CORPUS_DIR\n");
        return 2;
    }
    corpus = argv[2];
    if (mkdir(corpus, 0755) && errno != EEXIST) {
        fprintf(stderr, "fuzz_seeds: cannot create %s\n", corpus);
        return 1;
    }
    /* The stats fixture first: it installs the fixed randomness, which must
     * come before libsodium is first used. */
    if (stats_seeds()) return 1;
    return hestat_format_seeds(argv[1]);
}
