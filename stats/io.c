/* Studies, encrypted tables, results and jobs as files: sequences of hestat
 * frames (docs/format.md), every frame checked before anything is built. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "stats/stats.h"

void stats_set_error(const char *fmt, ...);
size_t stats_result_count(const stats_layout_t *lay, stats_job_t job);

/* ---- byte buffers ---- */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    int err;
} buf_t;

static void put(buf_t *b, const void *src, size_t n)
{
    if (b->err) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap - b->len < n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->err = STATS_ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u64(buf_t *b, uint64_t v) { put(b, &v, 8); }

/* Appends a frame made by a ckks writer (takes the writer's status). */
static void put_frame(buf_t *b, int rc, void *frame, size_t len)
{
    if (rc) {
        if (!b->err) b->err = rc == CKKS_ENOMEM ? STATS_ENOMEM : STATS_ECKKS;
        return;
    }
    put(b, frame, len);
    free(frame);
}

/* Sequenced: the writer fills f and fl before put_frame reads them. */
#define PUT_FRAME(b, writer_call)                 \
    do {                                          \
        void *f = NULL;                           \
        size_t fl = 0;                            \
        int rc_ = (writer_call);                  \
        put_frame((b), rc_, f, fl);               \
    } while (0)

static int finish(buf_t *b, void **out, size_t *len)
{
    if (b->err) {
        free(b->p);
        return b->err;
    }
    *out = b->p;
    *len = b->len;
    return STATS_OK;
}

/* Length of the frame at off (header + payload), or 0 when none fits. */
static size_t frame_at(const uint8_t *p, size_t len, size_t off)
{
    if (off > len || len - off < CKKS_HEADER_BYTES || memcmp(p + off, "HESTAT\r\n", 8)) return 0;
    uint64_t plen;
    memcpy(&plen, p + off + 24, 8);
    if (plen > len - off - CKKS_HEADER_BYTES) return 0;
    return CKKS_HEADER_BYTES + (size_t)plen;
}

static int frame_type(const uint8_t *p, size_t off)
{
    uint16_t t;
    memcpy(&t, p + off + 10, 2);
    return t;
}

static int ckks_fail(int rc, const char *what)
{
    stats_set_error("%s: %s", what, ckks_strerror(rc));
    return rc == CKKS_ENOMEM ? STATS_ENOMEM : STATS_ECKKS;
}

/* ---- schema ---- */
static void schema_payload(const stats_layout_t *lay, buf_t *b)
{
    put_u64(b, lay->ncols);
    put_u64(b, lay->slots);
    for (size_t c = 0; c < lay->ncols; c++) {
        char name[STATS_NAME_MAX] = {0};
        strncpy(name, lay->names[c], STATS_NAME_MAX - 1);
        put(b, name, STATS_NAME_MAX);
    }
    for (size_t c = 0; c < lay->ncols; c++) put(b, &lay->factor[c], 8);
}

static int parse_schema(const ckks_context_t *ctx, const uint8_t *p, size_t plen, stats_layout_t *lay)
{
    uint64_t ncols, slots;
    if (plen < 16) return STATS_ESCHEMA;
    memcpy(&ncols, p, 8);
    memcpy(&slots, p + 8, 8);
    if (ncols == 0 || ncols > STATS_MAX_COLS || slots != ckks_context_slots(ctx) ||
        plen != 16 + ncols * (STATS_NAME_MAX + 8))
        return STATS_ESCHEMA;
    memset(lay, 0, sizeof *lay);
    lay->ncols = ncols;
    lay->slots = slots;
    size_t block = 1;
    while (block < ncols) block <<= 1;
    if (block > slots / 2) return STATS_ESCHEMA;
    lay->block = block;
    lay->rows_per_ct = slots / block;
    for (size_t c = 0; c < ncols; c++) {
        const char *name = (const char *)p + 16 + c * STATS_NAME_MAX;
        if (!memchr(name, 0, STATS_NAME_MAX) || !name[0]) return STATS_ESCHEMA;
        memcpy(lay->names[c], name, STATS_NAME_MAX);
        double f;
        memcpy(&f, p + 16 + ncols * STATS_NAME_MAX + 8 * c, 8);
        int e;
        if (!isfinite(f) || f < 1 || f > 0x1p60 || frexp(f, &e) != 0.5) return STATS_ESCHEMA;
        lay->factor[c] = f;
    }
    return STATS_OK;
}

/* ---- studies ---- */
void stats_study_free(stats_study_t *s)
{
    if (!s) return;
    ckks_galois_keys_free(s->gk);
    ckks_relin_key_free(s->rk);
    ckks_public_key_free(s->pk);
    ckks_context_free(s->ctx);
    free(s);
}

static void set_digest(stats_study_t *s)
{
    buf_t b = {0};
    schema_payload(&s->layout, &b);
    crypto_generichash(s->digest, 32, b.p, b.len, NULL, 0);
    free(b.p);
}

int stats_study_create(ckks_context_t *ctx, const stats_table_t *t, const ckks_secret_key_t *sk,
                       stats_study_t **out)
{
    if (!ctx || !t || !sk || !out) return STATS_EINVAL;
    *out = NULL;
    if (ckks_secret_key_context(sk) != ctx) {
        stats_set_error("study: the secret key belongs to another context");
        return STATS_EINVAL;
    }
    stats_study_t *s = calloc(1, sizeof *s);
    if (!s) return STATS_ENOMEM;
    int rc = stats_layout_for(ctx, t, &s->layout);
    if (rc) {
        free(s);
        return rc;
    }
    s->layout.nrows = 0;
    s->layout.chunks = 0;
    int steps[64];
    size_t n = stats_galois_steps(&s->layout, steps, 64);
    int crc = ckks_public_key_new(sk, &s->pk);
    if (!crc) crc = ckks_relin_key_new(sk, &s->rk);
    if (!crc) crc = ckks_galois_keys_new(sk, steps, n, 1, &s->gk);
    if (crc) {
        stats_study_free(s); /* ctx is not ours yet */
        return ckks_fail(crc, "study keys");
    }
    s->ctx = ctx;
    set_digest(s);
    *out = s;
    return STATS_OK;
}

int stats_study_write(const stats_study_t *s, void **out, size_t *len)
{
    if (!s || !out || !len) return STATS_EINVAL;
    buf_t b = {0}, schema = {0};
    PUT_FRAME(&b, ckks_write_params(s->ctx, &f, &fl));
    schema_payload(&s->layout, &schema);
    if (schema.err) b.err = schema.err;
    PUT_FRAME(&b, schema.err ? CKKS_ENOMEM : ckks_frame_write(s->ctx, STATS_OBJ_SCHEMA, schema.p, schema.len, &f, &fl));
    free(schema.p);
    PUT_FRAME(&b, ckks_write_public_key(s->pk, &f, &fl));
    PUT_FRAME(&b, ckks_write_relin_key(s->rk, &f, &fl));
    PUT_FRAME(&b, ckks_write_galois_keys(s->gk, &f, &fl));
    return finish(&b, out, len);
}

int stats_study_read(const void *buf, size_t len, stats_study_t **out, size_t *used)
{
    if (!buf || !out) return STATS_EINVAL;
    *out = NULL;
    const uint8_t *p = buf;
    size_t off = 0, fl[5];
    for (int i = 0; i < 5; i++) {
        fl[i] = frame_at(p, len, off);
        if (!fl[i]) {
            stats_set_error("study: frame %d missing or truncated", i + 1);
            return STATS_ESCHEMA;
        }
        if (frame_type(p, off) == CKKS_OBJ_SECRET_KEY) {
            stats_set_error("study: contains a secret key");
            return STATS_EINVAL;
        }
        off += fl[i];
    }
    stats_study_t *s = calloc(1, sizeof *s);
    if (!s) return STATS_ENOMEM;
    ckks_params_t params;
    int rc = STATS_OK, crc;
    const uint8_t *q = p;
    if ((crc = ckks_read_params(q, fl[0], &params)) || (crc = ckks_context_new(&params, &s->ctx))) {
        rc = ckks_fail(crc, "study parameters");
        goto fail;
    }
    q += fl[0];
    const uint8_t *payload;
    size_t plen;
    if ((crc = ckks_frame_open(s->ctx, q, fl[1], STATS_OBJ_SCHEMA, &payload, &plen))) {
        rc = ckks_fail(crc, "study schema");
        goto fail;
    }
    if ((rc = parse_schema(s->ctx, payload, plen, &s->layout))) {
        stats_set_error("study schema: invalid fields");
        goto fail;
    }
    q += fl[1];
    if ((crc = ckks_read_public_key(s->ctx, q, fl[2], &s->pk))) {
        rc = ckks_fail(crc, "study public key");
        goto fail;
    }
    q += fl[2];
    if ((crc = ckks_read_relin_key(s->ctx, q, fl[3], &s->rk))) {
        rc = ckks_fail(crc, "study relinearization key");
        goto fail;
    }
    q += fl[3];
    if ((crc = ckks_read_galois_keys(s->ctx, q, fl[4], &s->gk))) {
        rc = ckks_fail(crc, "study Galois keys");
        goto fail;
    }
    int steps[64];
    size_t n = stats_galois_steps(&s->layout, steps, 64);
    for (size_t i = 0; i < n; i++)
        if (!ckks_galois_keys_has(s->gk, ckks_galois_elt_rotate(s->ctx, steps[i]))) {
            stats_set_error("study: Galois key for step %d missing", steps[i]);
            rc = STATS_ESCHEMA;
            goto fail;
        }
    set_digest(s);
    if (used) *used = off;
    else if (off != len) {
        stats_set_error("study: %zu trailing bytes", len - off);
        rc = STATS_ESCHEMA;
        goto fail;
    }
    *out = s;
    return STATS_OK;
fail:
    stats_study_free(s);
    return rc;
}

/* ---- tables ---- */
int stats_table_write(const stats_study_t *s, const stats_enc_table_t *t, void **out, size_t *len)
{
    if (!s || !t || !out || !len) return STATS_EINVAL;
    buf_t b = {0}, hdr = {0};
    put(&hdr, s->digest, 32);
    put_u64(&hdr, t->layout.nrows);
    put_u64(&hdr, t->chunks);
    PUT_FRAME(&b, hdr.err ? CKKS_ENOMEM : ckks_frame_write(s->ctx, STATS_OBJ_TABLE, hdr.p, hdr.len, &f, &fl));
    free(hdr.p);
    for (size_t k = 0; k < t->chunks; k++) {
        PUT_FRAME(&b, ckks_write_ciphertext(t->z[k], 1, &f, &fl));
        PUT_FRAME(&b, ckks_write_ciphertext(t->m[k], 1, &f, &fl));
    }
    return finish(&b, out, len);
}

/* Reads `count` fresh (size-2, top-level) ciphertext frames from p+*off. */
static int read_cts(const stats_study_t *s, const uint8_t *p, size_t len, size_t *off, size_t count,
                    ckks_ciphertext_t **cts, size_t want_primes, const char *what)
{
    for (size_t i = 0; i < count; i++) {
        size_t fl = frame_at(p, len, *off);
        if (!fl) {
            stats_set_error("%s: ciphertext %zu of %zu missing or truncated", what, i + 1, count);
            return STATS_ESCHEMA;
        }
        int crc = ckks_read_ciphertext(s->ctx, p + *off, fl, &cts[i]);
        if (crc) return ckks_fail(crc, what);
        if (cts[i]->size != 2 || cts[i]->nprimes != want_primes) {
            stats_set_error("%s: ciphertext %zu has the wrong size or level", what, i + 1);
            return STATS_ESCHEMA;
        }
        *off += fl;
    }
    return STATS_OK;
}

int stats_table_read(const stats_study_t *s, const void *buf, size_t len, stats_enc_table_t **out,
                     size_t *used)
{
    if (!s || !buf || !out) return STATS_EINVAL;
    *out = NULL;
    const uint8_t *p = buf, *payload;
    size_t plen, fl = frame_at(p, len, 0);
    if (!fl) {
        stats_set_error("table: no header frame");
        return STATS_ESCHEMA;
    }
    int crc = ckks_frame_open(s->ctx, p, fl, STATS_OBJ_TABLE, &payload, &plen);
    if (crc) return ckks_fail(crc, "table header");
    uint64_t nrows, chunks;
    if (plen != 48) return STATS_ESCHEMA;
    if (memcmp(payload, s->digest, 32)) {
        stats_set_error("table: encrypted for another study (schema digest differs)");
        return STATS_ESCHEMA;
    }
    memcpy(&nrows, payload + 32, 8);
    memcpy(&chunks, payload + 40, 8);
    size_t R = s->layout.rows_per_ct;
    if (nrows == 0 || nrows > ((uint64_t)1 << 40) || chunks != (nrows + R - 1) / R ||
        chunks > (len - fl) / (2 * CKKS_HEADER_BYTES)) {
        stats_set_error("table: %llu rows in %llu chunks is inconsistent", (unsigned long long)nrows,
                        (unsigned long long)chunks);
        return STATS_ESCHEMA;
    }
    stats_enc_table_t *t = calloc(1, sizeof *t);
    ckks_ciphertext_t **all = calloc(2 * chunks, sizeof *all);
    if (!t || !all) {
        free(t);
        free(all);
        return STATS_ENOMEM;
    }
    t->layout = s->layout;
    t->layout.nrows = nrows;
    t->layout.chunks = chunks;
    size_t off = fl;
    int rc = read_cts(s, p, len, &off, 2 * chunks, all, ckks_context_data_primes(s->ctx), "table");
    t->chunks = chunks;
    t->z = calloc(chunks, sizeof *t->z);
    t->m = calloc(chunks, sizeof *t->m);
    if (!t->z || !t->m) rc = STATS_ENOMEM;
    for (size_t k = 0; k < chunks; k++) {
        if (t->z) t->z[k] = all[2 * k];
        else ckks_ciphertext_free(all[2 * k]);
        if (t->m) t->m[k] = all[2 * k + 1];
        else ckks_ciphertext_free(all[2 * k + 1]);
    }
    free(all);
    if (rc == STATS_OK && !used && off != len) {
        stats_set_error("table: %zu trailing bytes", len - off);
        rc = STATS_ESCHEMA;
    }
    if (rc) {
        stats_enc_table_free(t);
        return rc;
    }
    if (used) *used = off;
    *out = t;
    return STATS_OK;
}

/* ---- results ---- */
int stats_result_write(const stats_study_t *s, const stats_enc_result_t *r, void **out, size_t *len)
{
    if (!s || !r || !out || !len) return STATS_EINVAL;
    buf_t b = {0}, hdr = {0};
    put(&hdr, s->digest, 32);
    uint32_t job = r->job, zero = 0;
    put(&hdr, &job, 4);
    put(&hdr, &zero, 4);
    put_u64(&hdr, r->layout.nrows);
    put_u64(&hdr, r->count);
    PUT_FRAME(&b, hdr.err ? CKKS_ENOMEM : ckks_frame_write(s->ctx, STATS_OBJ_RESULT, hdr.p, hdr.len, &f, &fl));
    free(hdr.p);
    for (size_t j = 0; j < r->count; j++) PUT_FRAME(&b, ckks_write_ciphertext(r->cts[j], 0, &f, &fl));
    return finish(&b, out, len);
}

int stats_result_read(const stats_study_t *s, const void *buf, size_t len, stats_enc_result_t **out)
{
    if (!s || !buf || !out) return STATS_EINVAL;
    *out = NULL;
    const uint8_t *p = buf, *payload;
    size_t plen, fl = frame_at(p, len, 0);
    if (!fl) {
        stats_set_error("result: no header frame");
        return STATS_ESCHEMA;
    }
    int crc = ckks_frame_open(s->ctx, p, fl, STATS_OBJ_RESULT, &payload, &plen);
    if (crc) return ckks_fail(crc, "result header");
    if (plen != 56 || memcmp(payload, s->digest, 32)) {
        stats_set_error("result: of another study, or malformed header");
        return STATS_ESCHEMA;
    }
    uint32_t job;
    uint64_t nrows, count;
    memcpy(&job, payload + 32, 4);
    memcpy(&nrows, payload + 40, 8);
    memcpy(&count, payload + 48, 8);
    if ((job != STATS_JOB_MEANS && job != STATS_JOB_ALL) || nrows == 0 ||
        count != stats_result_count(&s->layout, (stats_job_t)job)) {
        stats_set_error("result: inconsistent header");
        return STATS_ESCHEMA;
    }
    stats_enc_result_t *r = calloc(1, sizeof *r);
    if (!r || !(r->cts = calloc(count, sizeof *r->cts))) {
        free(r);
        return STATS_ENOMEM;
    }
    r->layout = s->layout;
    r->layout.nrows = nrows;
    r->job = (stats_job_t)job;
    r->count = count;
    size_t off = fl;
    int rc = read_cts(s, p, len, &off, count, r->cts, 1, "result");
    if (rc == STATS_OK && off != len) {
        stats_set_error("result: %zu trailing bytes", len - off);
        rc = STATS_ESCHEMA;
    }
    if (rc) {
        stats_enc_result_free(r); /* frees the ciphertexts read so far (NULLs are fine) */
        return rc;
    }
    *out = r;
    return STATS_OK;
}

/* ---- jobs ---- */
int stats_job_write(const stats_study_t *s, stats_job_t job, const stats_enc_table_t *const *tables,
                    size_t ntables, void **out, size_t *len)
{
    if (!s || !out || !len || ntables == 0 || !tables) return STATS_EINVAL;
    buf_t b = {0};
    void *f;
    size_t fl;
    int rc = stats_study_write(s, &f, &fl);
    if (rc) return rc;
    put(&b, f, fl);
    free(f);
    uint32_t j = job, zero = 0;
    uint8_t hdr[16];
    uint64_t n = ntables;
    memcpy(hdr, &j, 4);
    memcpy(hdr + 4, &zero, 4);
    memcpy(hdr + 8, &n, 8);
    PUT_FRAME(&b, ckks_frame_write(s->ctx, STATS_OBJ_JOB, hdr, sizeof hdr, &f, &fl));
    for (size_t i = 0; i < ntables && !b.err; i++) {
        rc = stats_table_write(s, tables[i], &f, &fl);
        if (rc) b.err = rc;
        else {
            put(&b, f, fl);
            free(f);
        }
    }
    return finish(&b, out, len);
}

int stats_job_run(const void *job, size_t len, void **result, size_t *result_len, stats_counts_t *counts)
{
    if (!job || !result || !result_len) return STATS_EINVAL;
    const uint8_t *p = job;
    /* A job must never carry a secret key: look at every frame's type first. */
    for (size_t off = 0; off < len;) {
        size_t fl = frame_at(p, len, off);
        if (!fl) {
            stats_set_error("job: truncated or not a hestat file at byte %zu", off);
            return STATS_ESCHEMA;
        }
        if (frame_type(p, off) == CKKS_OBJ_SECRET_KEY) {
            stats_set_error("job: contains a secret key; refused");
            return STATS_EINVAL;
        }
        off += fl;
    }
    stats_study_t *s;
    size_t off;
    int rc = stats_study_read(p, len, &s, &off);
    if (rc) return rc;
    const uint8_t *payload;
    size_t plen, fl = frame_at(p, len, off);
    uint32_t jk = 0;
    uint64_t ntables = 0;
    int crc = fl ? ckks_frame_open(s->ctx, p + off, fl, STATS_OBJ_JOB, &payload, &plen) : CKKS_EFORMAT;
    if (crc || plen != 16) {
        stats_study_free(s);
        stats_set_error("job: missing or malformed job header");
        return STATS_ESCHEMA;
    }
    memcpy(&jk, payload, 4);
    memcpy(&ntables, payload + 8, 8);
    off += fl;
    if ((jk != STATS_JOB_MEANS && jk != STATS_JOB_ALL) || ntables == 0 || ntables > 4096) {
        stats_study_free(s);
        stats_set_error("job: bad statistics kind or table count");
        return STATS_ESCHEMA;
    }
    stats_enc_result_t *acc = NULL;
    stats_counts_t total = {0};
    for (uint64_t i = 0; i < ntables && rc == STATS_OK; i++) {
        stats_enc_table_t *t;
        size_t used;
        rc = stats_table_read(s, p + off, len - off, &t, &used);
        if (rc) break;
        off += used;
        stats_enc_result_t *r;
        stats_counts_t c;
        rc = stats_compute(s->ctx, t, (stats_job_t)jk, s->rk, s->gk, &r, &c);
        stats_enc_table_free(t);
        if (rc) break;
        total.rotations += c.rotations;
        total.relinearizations += c.relinearizations;
        total.multiplications += c.multiplications;
        total.rescales += c.rescales;
        total.conjugations += c.conjugations;
        if (!acc) {
            acc = r;
        } else {
            rc = stats_result_add(acc, r);
            stats_enc_result_free(r);
        }
    }
    if (rc == STATS_OK && off != len) {
        stats_set_error("job: %zu trailing bytes", len - off);
        rc = STATS_ESCHEMA;
    }
    if (rc == STATS_OK) rc = stats_result_write(s, acc, result, result_len);
    if (counts) *counts = total;
    stats_enc_result_free(acc);
    stats_study_free(s);
    return rc;
}
