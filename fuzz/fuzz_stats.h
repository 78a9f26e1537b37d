/* Shared by the stats/io.c fuzz targets and fuzz_seeds: one small real study,
 * built the same way every time, and the input expansion the targets use.
 *
 * The fixture: N = 4096 with coefficient primes of 40, 30 and 39 bits (109
 * bits, the 128-bit limit at N = 4096; two data primes, as a statistics job
 * needs one rescale; scale 2^30), a 4-column, 20-row table with the Framingham schema
 * (Gender, age, education with missing values, TenYearCHD: a 0/1 column for
 * groups), its study (parameters, schema, public, relinearization and Galois
 * keys: 5.7 MB, nearly all Galois keys), the table encrypted with the public
 * key as a contributor does (262 kB), a job with that table (means only: the
 * cheapest computation) and the result the server computes from it, which
 * decrypts to the plaintext's counts and means (fuzz_seeds checks). An
 * all-statistics result cannot be decrypted consistently within 109 bits
 * (stats/encrypted.c's fixed result scale 2^35 and its masks want a first
 * prime of 59 bits or more, i.e. N >= 8192), so the fixture stays at means.
 *
 * Fuzzing only: libsodium's randombytes is replaced by a fixed ChaCha20
 * stream (fuzz_stats_init), so keys and ciphertexts are the same in every
 * process and on every run: fuzz_seeds writes real files that match the
 * study each target builds at start-up, and a crash input reproduces without
 * any other file.
 *
 * Input expansion (fuzz_expand): the targets read a superset of the file
 * format, so that mutations land on structure rather than on 5 MB of key
 * material and a frame's checksum does not stop every mutated payload:
 *   - a 12-byte reference "HESTAT\r\n" | u16 0xFFFF | u16 i becomes frame
 *     i mod n of the fixture (study frames, then table, then result frames);
 *   - a frame (48-byte header and its payload) whose checksum field is zero
 *     gets the XXH3-64 of its payload, as a writer would put there;
 *   - everything else is copied as is; so a real file passes through
 *     unchanged, and the corpus holds both real files and compact ones.
 */
#ifndef HESTAT_FUZZ_STATS_H
#define HESTAT_FUZZ_STATS_H

#include <omp.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ckks/ckks.h"
#include "stats/stats.h"

#define FUZZ_REF_VERSION 0xFFFFu
#define FUZZ_REF_BYTES 12
#define FUZZ_MAX_FRAMES 64
/* References multiply an input's size (12 bytes become a 5 MB frame): inputs
 * that expand beyond this are skipped, so a few thousand references cannot
 * turn into gigabytes (libFuzzer's memory limit) or minutes per input. */
#define FUZZ_MAX_EXPANDED ((size_t)64 << 20)

typedef struct {
    ckks_secret_key_t *sk;
    stats_table_t *plain;
    stats_study_t *study;
    stats_enc_table_t *table;
    stats_enc_result_t *result;
    void *study_buf, *table_buf, *result_buf, *job_buf;
    size_t study_len, table_len, result_len, job_len;
    /* Template frames (pointers into the buffers above). */
    const uint8_t *frame[FUZZ_MAX_FRAMES];
    size_t frame_len[FUZZ_MAX_FRAMES];
    size_t nframes;
} fuzz_stats_t;

__attribute__((noreturn)) static inline void fuzz_die(const char *what)
{
    fprintf(stderr, "fuzz fixture: %s: %s\n", what, stats_error());
    abort();
}

/* A property of the code under test that must hold: says which, then aborts
 * (libFuzzer saves the input). */
#define FUZZ_REQUIRE(cond, ...)                                              \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz: property violated: " __VA_ARGS__);       \
            fprintf(stderr, " (%s; last error: %s)\n", #cond, stats_error()); \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* ---- deterministic randomness (fuzzing only) ---- */
static inline void fuzz_rng_buf(void *const buf, const size_t size)
{
    static uint64_t counter;
    unsigned char seed[randombytes_SEEDBYTES] = "hestat fuzz: not random at all";
    memcpy(seed, &counter, sizeof counter);
    counter++;
    randombytes_buf_deterministic(buf, size, seed);
}

static inline uint32_t fuzz_rng_random(void)
{
    uint32_t r;
    fuzz_rng_buf(&r, sizeof r);
    return r;
}

static inline const char *fuzz_rng_name(void) { return "hestat-fuzz-fixed"; }

/* Frames of a well-formed file, appended to the template list. */
static inline void fuzz_add_frames(fuzz_stats_t *f, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t off = 0;
    while (len - off >= CKKS_HEADER_BYTES && f->nframes < FUZZ_MAX_FRAMES) {
        uint64_t plen;
        memcpy(&plen, p + off + 24, 8);
        if (plen > len - off - CKKS_HEADER_BYTES) fuzz_die("fixture frame");
        f->frame[f->nframes] = p + off;
        f->frame_len[f->nframes++] = CKKS_HEADER_BYTES + (size_t)plen;
        off += CKKS_HEADER_BYTES + (size_t)plen;
    }
}

/* The fixture, built once per process (about a second under ASan). */
static inline const fuzz_stats_t *fuzz_stats(void)
{
    static fuzz_stats_t f;
    static int done;
    if (done) return &f;
    static randombytes_implementation fixed = {fuzz_rng_name, fuzz_rng_random, NULL, NULL, fuzz_rng_buf, NULL};
    if (randombytes_set_implementation(&fixed) != 0 || sodium_init() < 0) fuzz_die("libsodium");
    omp_set_num_threads(1);

    int bits[] = {40, 30, 39};
    ckks_params_t p;
    ckks_context_t *ctx;
    if (ckks_params_from_bits(&p, 4096, bits, 3) || ckks_context_new(&p, &ctx)) fuzz_die("parameters");
    ckks_context_set_threads(ctx, 1);
    if (ckks_secret_key_new(ctx, &f.sk)) fuzz_die("secret key");

    stats_table_t *full;
    static const char *const cols[] = {"Gender", "age", "education", "TenYearCHD"};
    const size_t ncols = sizeof cols / sizeof cols[0], nrows = 20;
    if (stats_generate_framingham(nrows, 7, &full) || stats_table_new(ncols, nrows, &f.plain)) fuzz_die("table");
    for (size_t c = 0; c < ncols; c++) {
        int src = stats_column(full, cols[c]);
        if (src < 0) fuzz_die(cols[c]);
        snprintf(f.plain->names[c], STATS_NAME_MAX, "%s", cols[c]);
        for (size_t r = 0; r < nrows; r++) f.plain->values[r * ncols + c] = stats_value(full, r, (size_t)src);
    }
    stats_table_free(full);

    if (stats_study_create(ctx, f.plain, f.sk, &f.study)) fuzz_die("study");
    stats_layout_t lay = f.study->layout;
    lay.nrows = nrows;
    lay.chunks = (nrows + lay.rows_per_ct - 1) / lay.rows_per_ct;
    if (stats_encrypt(f.study->ctx, f.study->pk, NULL, f.plain, &lay, 0x1p30, &f.table)) fuzz_die("encrypt");
    if (stats_study_write(f.study, &f.study_buf, &f.study_len)) fuzz_die("study file");
    if (stats_table_write(f.study, f.table, &f.table_buf, &f.table_len)) fuzz_die("table file");
    const stats_enc_table_t *tables[1] = {f.table};
    if (stats_job_write(f.study, STATS_JOB_MEANS, tables, 1, &f.job_buf, &f.job_len)) fuzz_die("job file");
    if (stats_job_run(f.job_buf, f.job_len, &f.result_buf, &f.result_len, NULL)) fuzz_die("job run");
    if (stats_result_read(f.study, f.result_buf, f.result_len, &f.result)) fuzz_die("result file");
    fuzz_add_frames(&f, f.study_buf, f.study_len);
    fuzz_add_frames(&f, f.table_buf, f.table_len);
    fuzz_add_frames(&f, f.result_buf, f.result_len);
    done = 1;
    return &f;
}

/* ---- input expansion ---- */
typedef struct {
    const uint8_t *p; /* the expanded bytes: data itself when nothing changed */
    size_t len;
    uint8_t *own;     /* else a heap copy of exactly len bytes (ASan sees overreads) */
} fuzz_input_t;

/* One pass over data: with out NULL, measures (and says whether anything
 * changes); else writes the expansion to out. */
static inline size_t fuzz_expand_pass(const fuzz_stats_t *f, const uint8_t *data, size_t size, uint8_t *out,
                                      int *changed)
{
    static const uint8_t magic[8] = {'H', 'E', 'S', 'T', 'A', 'T', '\r', '\n'};
    size_t off = 0, len = 0;
    while (off < size) {
        size_t left = size - off;
        if (left >= FUZZ_REF_BYTES && !memcmp(data + off, magic, 8)) {
            uint16_t version, index;
            memcpy(&version, data + off + 8, 2);
            memcpy(&index, data + off + 10, 2);
            if (version == FUZZ_REF_VERSION) {
                size_t i = index % f->nframes;
                if (out) memcpy(out + len, f->frame[i], f->frame_len[i]);
                len += f->frame_len[i];
                off += FUZZ_REF_BYTES;
                *changed = 1;
                continue;
            }
            if (left >= CKKS_HEADER_BYTES) {
                uint64_t plen, sum;
                memcpy(&plen, data + off + 24, 8);
                memcpy(&sum, data + off + 32, 8);
                size_t n = plen <= left - CKKS_HEADER_BYTES ? CKKS_HEADER_BYTES + (size_t)plen : left;
                if (out) memcpy(out + len, data + off, n);
                if (sum == 0 && n == CKKS_HEADER_BYTES + plen) {
                    *changed = 1;
                    if (out) {
                        sum = XXH3_64bits(out + len + CKKS_HEADER_BYTES, (size_t)plen);
                        memcpy(out + len + 32, &sum, 8);
                    }
                }
                len += n;
                off += n;
                continue;
            }
        }
        /* Plain bytes up to the next magic (memchr: megabytes of key material
         * are scanned when a mutation breaks a frame header). */
        size_t n = 1;
        for (;;) {
            const uint8_t *h = n < left ? memchr(data + off + n, 'H', left - n) : NULL;
            if (!h) {
                n = left;
                break;
            }
            n = (size_t)(h - (data + off));
            if (left - n >= 8 && !memcmp(h, magic, 8)) break;
            n++;
        }
        if (out) memcpy(out + len, data + off, n);
        len += n;
        off += n;
    }
    return len;
}

/* Expands data (see the top of this file). The result is data itself when
 * the input is a plain file (libFuzzer's copy is exactly its size), else an
 * exact-size heap copy; fuzz_input_free releases it. p is NULL when the
 * expansion would exceed FUZZ_MAX_EXPANDED: the target skips the input. */
static inline fuzz_input_t fuzz_expand(const fuzz_stats_t *f, const uint8_t *data, size_t size)
{
    int changed = 0;
    fuzz_input_t in = {data, size, NULL};
    size_t len = fuzz_expand_pass(f, data, size, NULL, &changed);
    if (!changed) return in;
    if (len > FUZZ_MAX_EXPANDED) {
        in.p = NULL; /* skipped */
        return in;
    }
    in.own = malloc(len ? len : 1);
    if (!in.own) abort();
    fuzz_expand_pass(f, data, size, in.own, &changed);
    in.p = in.own;
    in.len = len;
    return in;
}

static inline void fuzz_input_free(fuzz_input_t *in) { free(in->own); }

#endif
