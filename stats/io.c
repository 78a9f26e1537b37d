/* Studies, encrypted tables, results and jobs as files: sequences of hestat
 * frames (docs/format.md), every frame checked before anything is built. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stats/io_impl.h"

size_t stats_result_count(const stats_layout_t *lay, stats_job_t job);

/* ---- byte buffers ---- */
typedef stats_buf_t buf_t;

void stats_buf_put(stats_buf_t *b, const void *src, size_t n)
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

#define put stats_buf_put

static void put_u64(buf_t *b, uint64_t v) { put(b, &v, 8); }

void stats_buf_put_frame(stats_buf_t *b, int rc, void *frame, size_t len)
{
    if (rc) {
        if (!b->err) {
            stats_set_error("writing a frame: %s", ckks_strerror(rc));
            b->err = rc == CKKS_ENOMEM ? STATS_ENOMEM : STATS_ECKKS;
        }
        free(frame);
        return;
    }
    if (!frame && !b->err) b->err = STATS_ENOMEM;
    if (frame) put(b, frame, len);
    free(frame);
}
#define put_frame stats_buf_put_frame

/* Sequenced: the writer fills f and fl before put_frame reads them. */
#define PUT_FRAME(b, writer_call)                 \
    do {                                          \
        void *f = NULL;                           \
        size_t fl = 0;                            \
        int rc_ = (writer_call);                  \
        put_frame((b), rc_, f, fl);               \
    } while (0)

int stats_buf_finish(stats_buf_t *b, void **out, size_t *len)
{
    if (b->err) {
        free(b->p);
        return b->err;
    }
    *out = b->p;
    *len = b->len;
    return STATS_OK;
}
#define finish stats_buf_finish

/* Length of the frame at off (header + payload), or 0 when none fits. */
static size_t frame_at(const uint8_t *p, size_t len, size_t off)
{
    if (off > len || len - off < CKKS_HEADER_BYTES || memcmp(p + off, "HESTAT\r\n", 8)) return 0;
    uint64_t plen = 0;
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

/* ---- schema ----
 * ncols, slots, names, factors, then (since disclosure policies) the policy:
 * "policy1\0", min_cell (u64), min_n_per_param (double). A schema without
 * the policy (a study made before them) is read with the default policy and
 * written back without it, so its digest does not change. */
static const char policy_tag[8] = "policy1";
#define POLICY_BYTES 24
/* Then, for a column-major study only (so a row-major study's bytes and
 * digest are those of before): "layout1\0" and the order (u64, 1). */
static const char layout_tag[8] = "layout1";
#define LAYOUT_BYTES 16

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
    if (lay->policy.legacy) return; /* a study of before policies keeps its bytes (and digest) */
    uint64_t min_cell = lay->policy.min_cell;
    put(b, policy_tag, 8);
    put_u64(b, min_cell);
    put(b, &lay->policy.min_n_per_param, 8);
    if (!lay->colmajor) return;
    put(b, layout_tag, 8);
    put_u64(b, 1);
}

static int parse_schema(const ckks_context_t *ctx, const uint8_t *p, size_t plen, stats_layout_t *lay);

int stats_schema_payload(const stats_layout_t *lay, void **out, size_t *len)
{
    buf_t b = {0};
    schema_payload(lay, &b);
    return finish(&b, out, len);
}

int stats_schema_parse(const ckks_context_t *ctx, const uint8_t *p, size_t plen, stats_layout_t *lay)
{
    return parse_schema(ctx, p, plen, lay);
}

static int parse_schema(const ckks_context_t *ctx, const uint8_t *p, size_t plen, stats_layout_t *lay)
{
    uint64_t ncols, slots;
    if (plen < 16) return STATS_ESCHEMA;
    memcpy(&ncols, p, 8);
    memcpy(&slots, p + 8, 8);
    size_t base = 16 + ncols * (STATS_NAME_MAX + 8);
    if (ncols == 0 || ncols > STATS_MAX_COLS || slots != ckks_context_slots(ctx) ||
        (plen != base && plen != base + POLICY_BYTES && plen != base + POLICY_BYTES + LAYOUT_BYTES))
        return STATS_ESCHEMA;
    memset(lay, 0, sizeof *lay);
    lay->policy = stats_policy_default();
    lay->policy.legacy = plen == base;
    if (plen != base) {
        uint64_t min_cell;
        double per_param;
        memcpy(&min_cell, p + base + 8, 8);
        memcpy(&per_param, p + base + 16, 8);
        if (memcmp(p + base, policy_tag, 8) || min_cell > STATS_POLICY_MAX_CELL || !isfinite(per_param) ||
            per_param < 0 || per_param > STATS_POLICY_MAX_CELL)
            return STATS_ESCHEMA;
        lay->policy.min_cell = (uint32_t)min_cell;
        lay->policy.min_n_per_param = per_param;
    }
    if (plen == base + POLICY_BYTES + LAYOUT_BYTES) {
        uint64_t order;
        memcpy(&order, p + base + POLICY_BYTES + 8, 8);
        if (memcmp(p + base + POLICY_BYTES, layout_tag, 8) || order != 1) return STATS_ESCHEMA;
        lay->colmajor = 1;
    }
    lay->ncols = ncols;
    lay->slots = slots;
    size_t block = 1;
    while (block < ncols) block <<= 1;
    if (block > slots / 2) return STATS_ESCHEMA;
    lay->block = block;
    lay->rows_per_ct = slots / block;
    for (size_t c = 0; c < ncols; c++) {
        const char *name = (const char *)p + 16 + c * STATS_NAME_MAX;
        const char *nul = memchr(name, 0, STATS_NAME_MAX);
        if (!nul || !name[0]) return STATS_ESCHEMA;
        /* Canonical: zeros after the name, so that the study digest (of the
         * bytes as read) equals the digest of the same study written back. */
        for (const char *z = nul; z < name + STATS_NAME_MAX; z++)
            if (*z) return STATS_ESCHEMA;
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
    ckks_public_key_free(s->analyst_pk);
    ckks_context_free(s->ctx);
    free(s);
}

/* The study digest binds tables, jobs and results to one study: BLAKE2b-256
 * of the study's first three frames as written (parameters, schema, public
 * key; a multiparty study's frame too), so another keygen with the same
 * schema and parameters is another study. */
#define DIGEST_FRAMES 3
static const char digest_domain[] = "hestat study digest v2";

static void digest_init(crypto_generichash_state *h)
{
    crypto_generichash_init(h, NULL, 0, 32);
    crypto_generichash_update(h, (const uint8_t *)digest_domain, sizeof digest_domain);
}

static int study_frames(const stats_study_t *s, buf_t *b, int with_keys)
{
    buf_t schema = {0};
    PUT_FRAME(b, ckks_write_params(s->ctx, &f, &fl));
    schema_payload(&s->layout, &schema);
    if (schema.err) b->err = schema.err;
    PUT_FRAME(b, schema.err ? CKKS_ENOMEM : ckks_frame_write(s->ctx, STATS_OBJ_SCHEMA, schema.p, schema.len, &f, &fl));
    free(schema.p);
    PUT_FRAME(b, ckks_write_public_key(s->pk, &f, &fl));
    if (s->parties) { /* a multiparty study: its frame is covered by the digest */
        void *mp = NULL;
        size_t mplen = 0;
        int rc = stats_mp_frame_payload(s, &mp, &mplen);
        if (rc && !b->err) b->err = rc;
        PUT_FRAME(b, rc ? CKKS_ENOMEM : ckks_frame_write(s->ctx, STATS_OBJ_MP_STUDY, mp, mplen, &f, &fl));
        free(mp);
    }
    if (with_keys) {
        PUT_FRAME(b, ckks_write_relin_key(s->rk, &f, &fl));
        PUT_FRAME(b, ckks_write_galois_keys(s->gk, &f, &fl));
    }
    return b->err;
}

static int set_digest(stats_study_t *s)
{
    buf_t b = {0};
    int rc = study_frames(s, &b, 0);
    if (!rc) {
        crypto_generichash_state h;
        digest_init(&h);
        crypto_generichash_update(&h, b.p, b.len);
        crypto_generichash_final(&h, s->digest, 32);
    }
    free(b.p);
    return rc;
}

/* Every column factor a power of two in [1, 2^60] (what the reader accepts). */
static int check_factors(const stats_layout_t *lay)
{
    for (size_t c = 0; c < lay->ncols; c++) {
        double f = lay->factor[c];
        int e;
        if (!isfinite(f) || f < 1 || f > 0x1p60 || frexp(f, &e) != 0.5) {
            stats_set_error("column %s: range factor %g is not a power of two in [1, 2^60] (values up to about 1.15e18)",
                            lay->names[c], f);
            return STATS_ERANGE;
        }
    }
    return STATS_OK;
}

int stats_study_create_factors(ckks_context_t *ctx, const stats_table_t *t, const ckks_secret_key_t *sk,
                               const double *factors, stats_study_t **out)
{
    return stats_study_create_policy(ctx, t, sk, factors, NULL, out);
}

int stats_study_layout(const ckks_context_t *ctx, const stats_table_t *t, const double *factors,
                       const stats_policy_t *policy, stats_layout_t *lay)
{
    int rc = stats_layout_for(ctx, t, lay);
    if (!rc && factors)
        for (size_t c = 0; c < lay->ncols; c++) lay->factor[c] = factors[c];
    if (!rc) rc = check_factors(lay);
    if (!rc && policy) {
        lay->policy = *policy;
        lay->policy.legacy = 0;
        if (policy->min_cell > STATS_POLICY_MAX_CELL || !isfinite(policy->min_n_per_param) ||
            policy->min_n_per_param < 0 || policy->min_n_per_param > STATS_POLICY_MAX_CELL) {
            stats_set_error("disclosure policy: min_cell and min_n_per_param must lie in [0, %d]",
                            STATS_POLICY_MAX_CELL);
            rc = STATS_EINVAL;
        }
    }
    lay->nrows = 0;
    lay->chunks = 0;
    return rc;
}

int stats_study_create_policy(ckks_context_t *ctx, const stats_table_t *t, const ckks_secret_key_t *sk,
                              const double *factors, const stats_policy_t *policy, stats_study_t **out)
{
    return stats_study_create_layout(ctx, t, sk, factors, policy, 0, out);
}

int stats_study_create_layout(ckks_context_t *ctx, const stats_table_t *t, const ckks_secret_key_t *sk,
                              const double *factors, const stats_policy_t *policy, int colmajor,
                              stats_study_t **out)
{
    if (!ctx || !t || !sk || !out || (colmajor != 0 && colmajor != 1)) return STATS_EINVAL;
    *out = NULL;
    if (ckks_secret_key_context(sk) != ctx) {
        stats_set_error("study: the secret key belongs to another context");
        return STATS_EINVAL;
    }
    stats_study_t *s = calloc(1, sizeof *s);
    if (!s) return STATS_ENOMEM;
    int rc = stats_study_layout(ctx, t, factors, policy, &s->layout);
    if (rc) {
        free(s);
        return rc;
    }
    s->layout.colmajor = colmajor;
    if (colmajor && s->layout.policy.legacy) s->layout.policy = stats_policy_default(); /* written with the policy */
    int steps[64];
    size_t n = stats_galois_steps(&s->layout, steps, 64);
    int crc = ckks_public_key_new_seeded(sk, &s->pk); /* written compact: half the size */
    if (!crc) crc = ckks_relin_key_new_seeded(sk, &s->rk); /* written compact: half the size */
    if (!crc) crc = ckks_galois_keys_new_seeded(sk, steps, n, 1, &s->gk);
    if (!crc) crc = stats_galois_limit_folds(ctx, &s->layout, s->gk); /* fold keys: two primes */
    if (crc) {
        stats_study_free(s); /* ctx is not ours yet */
        return ckks_fail(crc, "study keys");
    }
    s->ctx = ctx;
    if ((rc = set_digest(s))) {
        s->ctx = NULL;
        stats_study_free(s);
        return rc;
    }
    *out = s;
    return STATS_OK;
}

int stats_study_create(ckks_context_t *ctx, const stats_table_t *t, const ckks_secret_key_t *sk,
                       stats_study_t **out)
{
    return stats_study_create_factors(ctx, t, sk, NULL, out);
}

int stats_study_check_key(const stats_study_t *s, const ckks_secret_key_t *sk)
{
    if (!s || !sk) return STATS_EINVAL;
    if (s->parties) { /* multiparty: only the analyst's own key decrypts (released results) */
        int crc = ckks_secret_key_matches(sk, s->analyst_pk);
        if (crc == CKKS_EKEY || crc == CKKS_ECONTEXT) {
            stats_set_error("the secret key is not the analyst key of this multiparty study (%d parties): a party's "
                            "share key decrypts nothing alone; results are released to the analyst's key (made by "
                            "mp-draft) by mp-release", s->parties);
            return STATS_EKEY;
        }
        return crc ? ckks_fail(crc, "checking the secret key") : STATS_OK;
    }
    int crc = ckks_secret_key_matches(sk, s->pk);
    if (crc == CKKS_EKEY || crc == CKKS_ECONTEXT) {
        stats_set_error("the secret key does not belong to this study (another keygen, or another study's key "
                        "file)");
        return STATS_EKEY;
    }
    return crc ? ckks_fail(crc, "checking the secret key") : STATS_OK;
}

int stats_study_write(const stats_study_t *s, void **out, size_t *len)
{
    if (!s || !out || !len) return STATS_EINVAL;
    buf_t b = {0};
    study_frames(s, &b, 1);
    return finish(&b, out, len);
}

/* ---- readers: one frame at a time ------------------------------------------------
 * Studies and tables are read frame by frame, from a buffer (stats_study_read,
 * stats_table_read) or from bytes as they arrive (stats_stream_*): the same
 * header check before a frame is buffered, the same validation of each
 * complete frame. */
enum { KIND_STUDY, KIND_TABLE };
#define STUDY_FRAMES 5
/* A multiparty study has one more frame after its public key (slot MP_SLOT
 * in the tables below, frame 4 in the file): params | schema | pk | mp | rk | gk. */
#define MP_SLOT 5
#define MP_INDEX 3

struct stats_stream {
    int kind, err;
    char msg[320];
    const stats_study_t *study; /* table: the study it must belong to */
    stats_study_t *own;         /* study being built */
    stats_enc_table_t *keep;    /* table: the ciphertexts, when the caller wants them */
    size_t index, frames;       /* frames done, frames expected */
    size_t avail;               /* buffer reads: bytes after the table header (bounds its chunk count) */
    size_t max_gk;              /* study: Galois keys the schema needs (+ conjugation) */
    int mp;                     /* study: a multiparty frame follows the public key */
    crypto_generichash_state digest;
    uint64_t nrows, chunks;
    uint8_t hdr[CKKS_HEADER_BYTES];
    size_t hfill;
    uint8_t *frame;
    size_t flen, ffill;
};

static int stream_fail(stats_stream_t *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int stream_fail(stats_stream_t *r, int code, const char *fmt, ...)
{
    if (r->err) return r->err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->err = code;
    stats_set_error("%s", r->msg);
    return code;
}

static int stream_ckks_fail(stats_stream_t *r, int crc, const char *what)
{
    return stream_fail(r, crc == CKKS_ENOMEM ? STATS_ENOMEM : STATS_ECKKS, "%s: %s", what, ckks_strerror(crc));
}

static const ckks_context_t *stream_ctx(const stats_stream_t *r)
{
    return r->kind == KIND_TABLE ? r->study->ctx : r->own ? r->own->ctx : NULL;
}

/* The kind of study frame r->index is (0..4 as in a single-key study, MP_SLOT). */
static size_t study_slot(const stats_stream_t *r)
{
    if (!r->mp || r->index < MP_INDEX) return r->index;
    return r->index == MP_INDEX ? MP_SLOT : r->index - 1;
}

static const char *study_frame_name(size_t i)
{
    static const char *names[STUDY_FRAMES + 1] = {"parameters", "schema", "public key", "relinearization key",
                                                  "Galois keys", "multiparty frame"};
    return names[i];
}

/* The largest payload the next frame may have: nothing is buffered beyond it. */
static uint64_t max_payload(const stats_stream_t *r, uint16_t *type)
{
    const ckks_context_t *ctx = stream_ctx(r);
    if (r->kind == KIND_TABLE) {
        size_t k1 = ckks_context_data_primes(ctx), n = ckks_context_n(ctx);
        *type = r->index == 0 ? STATS_OBJ_TABLE : CKKS_OBJ_CIPHERTEXT;
        return r->index == 0 ? 48 : 24 + 2 * (uint64_t)k1 * n * 8 + 32;
    }
    static const uint16_t types[STUDY_FRAMES + 1] = {CKKS_OBJ_PARAMS,     STATS_OBJ_SCHEMA,     CKKS_OBJ_PUBLIC_KEY,
                                                     CKKS_OBJ_RELIN_KEY,  CKKS_OBJ_GALOIS_KEYS, STATS_OBJ_MP_STUDY};
    size_t slot = study_slot(r);
    *type = types[slot];
    if (slot == 0) return 24 + 16 + 8 * CKKS_MAX_PRIMES;
    if (slot == MP_SLOT) return stats_mp_frame_max(ctx);
    uint64_t k = ckks_context_data_primes(ctx) + 1, n = ckks_context_n(ctx), key = (k - 1) * 2 * k * n * 8;
    switch (slot) {
    case 1: return 16 + STATS_MAX_COLS * (STATS_NAME_MAX + 8) + POLICY_BYTES + LAYOUT_BYTES;
    case 2: return 2 * k * n * 8;
    case 3: return key;
    default: return 8 + r->max_gk * (8 + key);
    }
}

/* The 48-byte header of the next frame, before its payload is buffered:
 * magic, version, the type expected here, the parameters, a length bound. */
static int check_header(stats_stream_t *r, const uint8_t *h, uint64_t *plen)
{
    const char *what = r->kind == KIND_TABLE ? "table" : "study";
    if (memcmp(h, "HESTAT\r\n", 8))
        return stream_fail(r, STATS_ESCHEMA, "%s: not a hestat file (frame %zu has no HESTAT header)", what,
                           r->index + 1);
    uint16_t version, type, want;
    uint64_t hash;
    memcpy(&version, h + 8, 2);
    memcpy(&type, h + 10, 2);
    memcpy(&hash, h + 16, 8);
    memcpy(plen, h + 24, 8);
    if (version != 1) return stream_fail(r, STATS_ESCHEMA, "%s: unsupported format version %u", what, version);
    if (type == CKKS_OBJ_SECRET_KEY)
        return stream_fail(r, STATS_EINVAL, "%s: contains a secret key; refused", what);
    if (r->kind == KIND_STUDY && r->index == MP_INDEX && !r->mp && type == STATS_OBJ_MP_STUDY) {
        r->mp = 1; /* a multiparty study: one frame more */
        r->frames = STUDY_FRAMES + 1;
    }
    uint64_t max = max_payload(r, &want);
    if (type != want)
        return stream_fail(r, STATS_ESCHEMA, "%s: frame %zu is of type %u where %s was expected", what, r->index + 1,
                           type, r->kind == KIND_TABLE ? (r->index ? "a ciphertext" : "a table header")
                                                       : study_frame_name(study_slot(r)));
    const ckks_context_t *ctx = stream_ctx(r);
    if (ctx && hash != ckks_params_hash(ctx))
        return stream_fail(r, STATS_ESCHEMA, "%s: frame %zu is for other encryption parameters%s", what,
                           r->index + 1, r->kind == KIND_TABLE ? " than the study's" : "");
    if (*plen > max)
        return stream_fail(r, STATS_ESCHEMA, "%s: frame %zu claims %llu bytes, more than its %llu at most", what,
                           r->index + 1, (unsigned long long)*plen, (unsigned long long)max);
    return STATS_OK;
}

static int study_frame(stats_stream_t *r, const uint8_t *f, size_t fl)
{
    stats_study_t *s = r->own;
    int crc = CKKS_OK;
    const uint8_t *payload;
    size_t plen;
    switch (study_slot(r)) {
    case MP_SLOT:
        if ((crc = ckks_frame_open(s->ctx, f, fl, STATS_OBJ_MP_STUDY, &payload, &plen)))
            return stream_ckks_fail(r, crc, "study multiparty frame");
        if (stats_mp_frame_parse(s, payload, plen))
            return stream_fail(r, STATS_ESCHEMA, "study multiparty frame: %s", stats_error());
        break;
    case 0: {
        ckks_params_t params;
        if ((crc = ckks_read_params(f, fl, &params)) || (crc = ckks_context_new(&params, &s->ctx)))
            return stream_ckks_fail(r, crc, "study parameters");
        break;
    }
    case 1:
        if ((crc = ckks_frame_open(s->ctx, f, fl, STATS_OBJ_SCHEMA, &payload, &plen)))
            return stream_ckks_fail(r, crc, "study schema");
        if (parse_schema(s->ctx, payload, plen, &s->layout))
            return stream_fail(r, STATS_ESCHEMA, "study schema: invalid fields");
        {
            /* The layout's keys and the conjugation; studies made before
             * the sums were left shifted (PAIRS4 results) also
             * hold a +g b key per giant step: fewer than the steps again. */
            int steps[64];
            r->max_gk = 2 * stats_galois_steps(&s->layout, steps, 64) + 1;
        }
        break;
    case 2:
        if ((crc = ckks_read_public_key(s->ctx, f, fl, &s->pk))) return stream_ckks_fail(r, crc, "study public key");
        break;
    case 3:
        if ((crc = ckks_read_relin_key(s->ctx, f, fl, &s->rk)))
            return stream_ckks_fail(r, crc, "study relinearization key");
        break;
    default: {
        if ((crc = ckks_read_galois_keys(s->ctx, f, fl, &s->gk))) return stream_ckks_fail(r, crc, "study Galois keys");
        int steps[64];
        size_t n = stats_galois_steps(&s->layout, steps, 64);
        const size_t top = ckks_context_data_primes(s->ctx);
        for (size_t i = 0; i < n; i++) {
            size_t have = ckks_galois_keys_primes(s->gk, ckks_galois_elt_rotate(s->ctx, steps[i]));
            size_t need = stats_galois_step_primes(&s->layout, top, steps[i]);
            if (!have) return stream_fail(r, STATS_ESCHEMA, "study: Galois key for step %d missing", steps[i]);
            if (have < need)
                return stream_fail(r, STATS_ESCHEMA, "study: Galois key for step %d serves %zu primes, not %zu",
                                   steps[i], have, need);
        }
        size_t conj = ckks_galois_keys_primes(s->gk, ckks_galois_elt_conjugate(s->ctx));
        if (conj && conj < top)
            return stream_fail(r, STATS_ESCHEMA, "study: conjugation key serves %zu primes, not %zu", conj, top);
    }
    }
    if (r->index < DIGEST_FRAMES + (size_t)r->mp) crypto_generichash_update(&r->digest, f, fl);
    if (r->index + 1 == r->frames) crypto_generichash_final(&r->digest, s->digest, 32);
    return STATS_OK;
}

static int table_header(stats_stream_t *r, const uint8_t *f, size_t fl)
{
    const stats_study_t *s = r->study;
    const uint8_t *payload;
    size_t plen;
    int crc = ckks_frame_open(s->ctx, f, fl, STATS_OBJ_TABLE, &payload, &plen);
    if (crc) return stream_ckks_fail(r, crc, "table header");
    if (plen != 48) return stream_fail(r, STATS_ESCHEMA, "table: malformed header");
    if (memcmp(payload, s->digest, 32))
        return stream_fail(r, STATS_ESCHEMA,
                           "table: encrypted for another study (its study digest differs: another public key, "
                           "parameters or schema)");
    memcpy(&r->nrows, payload + 32, 8);
    memcpy(&r->chunks, payload + 40, 8);
    size_t R = s->layout.rows_per_ct;
    if (r->nrows == 0 || r->nrows > ((uint64_t)1 << 40) || r->chunks != (r->nrows + R - 1) / R ||
        r->chunks > r->avail / (2 * CKKS_HEADER_BYTES))
        return stream_fail(r, STATS_ESCHEMA, "table: %llu rows in %llu chunks is inconsistent",
                           (unsigned long long)r->nrows, (unsigned long long)r->chunks);
    r->frames = 1 + 2 * r->chunks;
    if (r->keep) {
        stats_enc_table_t *t = r->keep;
        t->layout = s->layout;
        t->layout.nrows = r->nrows;
        t->layout.chunks = r->chunks;
        t->z = calloc(r->chunks, sizeof *t->z);
        t->m = calloc(r->chunks, sizeof *t->m);
        if (!t->z || !t->m) return stream_fail(r, STATS_ENOMEM, "table: out of memory");
        t->chunks = r->chunks;
    }
    return STATS_OK;
}

static int table_frame(stats_stream_t *r, const uint8_t *f, size_t fl)
{
    if (r->index == 0) return table_header(r, f, fl);
    const stats_study_t *s = r->study;
    ckks_ciphertext_t *ct = NULL;
    int crc = ckks_read_ciphertext(s->ctx, f, fl, &ct);
    if (crc) return stream_ckks_fail(r, crc, "table");
    if (ct->size != 2 || ct->nprimes != ckks_context_data_primes(s->ctx)) {
        ckks_ciphertext_free(ct);
        return stream_fail(r, STATS_ESCHEMA, "table: ciphertext %zu has the wrong size or level", r->index);
    }
    if (r->keep) {
        size_t i = r->index - 1;
        (i % 2 ? r->keep->m : r->keep->z)[i / 2] = ct;
    } else {
        ckks_ciphertext_free(ct);
    }
    return STATS_OK;
}

/* A complete frame (header + payload) at f. */
static int stream_frame(stats_stream_t *r, const uint8_t *f, size_t fl)
{
    int rc = r->kind == KIND_TABLE ? table_frame(r, f, fl) : study_frame(r, f, fl);
    if (!rc) r->index++;
    return rc;
}

static int stream_init(stats_stream_t *r, int kind, const stats_study_t *study)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->study = study;
    if (kind == KIND_STUDY) {
        r->frames = STUDY_FRAMES;
        r->own = calloc(1, sizeof *r->own);
        if (!r->own) return STATS_ENOMEM;
        digest_init(&r->digest);
    } else {
        r->frames = 1; /* until the header says how many chunks follow */
        r->avail = SIZE_MAX;
    }
    return STATS_OK;
}

static void stream_clear(stats_stream_t *r)
{
    stats_study_free(r->own);
    stats_enc_table_free(r->keep);
    free(r->frame);
    r->own = NULL;
    r->keep = NULL;
    r->frame = NULL;
}

/* The hash state inside wants its declared (64-byte) alignment. */
static stats_stream_t *stream_alloc(void)
{
    size_t align = _Alignof(stats_stream_t), size = (sizeof(stats_stream_t) + align - 1) / align * align;
    return aligned_alloc(align, size);
}

int stats_stream_study_new(stats_stream_t **out)
{
    if (!out) return STATS_EINVAL;
    stats_stream_t *r = stream_alloc();
    if (!r || stream_init(r, KIND_STUDY, NULL)) {
        free(r);
        return STATS_ENOMEM;
    }
    *out = r;
    return STATS_OK;
}

int stats_stream_table_new(const stats_study_t *s, stats_stream_t **out)
{
    if (!s || !out) return STATS_EINVAL;
    stats_stream_t *r = stream_alloc();
    if (!r) return STATS_ENOMEM;
    stream_init(r, KIND_TABLE, s);
    *out = r;
    return STATS_OK;
}

void stats_stream_free(stats_stream_t *r)
{
    if (!r) return;
    stream_clear(r);
    free(r);
}

int stats_stream_feed(stats_stream_t *r, const void *data, size_t len)
{
    if (!r || (!data && len)) return STATS_EINVAL;
    if (r->err) {
        stats_set_error("%s", r->msg);
        return r->err;
    }
    const uint8_t *p = data;
    while (len) {
        if (r->index == r->frames)
            return stream_fail(r, STATS_ESCHEMA, "%s: trailing bytes after the last frame",
                               r->kind == KIND_TABLE ? "table" : "study");
        if (r->hfill < CKKS_HEADER_BYTES) {
            size_t take = CKKS_HEADER_BYTES - r->hfill < len ? CKKS_HEADER_BYTES - r->hfill : len;
            memcpy(r->hdr + r->hfill, p, take);
            r->hfill += take;
            p += take;
            len -= take;
            if (r->hfill < CKKS_HEADER_BYTES) break;
            uint64_t plen = 0;
            int rc = check_header(r, r->hdr, &plen);
            if (rc) return rc;
            r->flen = CKKS_HEADER_BYTES + (size_t)plen;
            r->frame = malloc(r->flen);
            if (!r->frame) return stream_fail(r, STATS_ENOMEM, "out of memory for a %zu-byte frame", r->flen);
            memcpy(r->frame, r->hdr, CKKS_HEADER_BYTES);
            r->ffill = CKKS_HEADER_BYTES;
        }
        size_t take = r->flen - r->ffill < len ? r->flen - r->ffill : len;
        memcpy(r->frame + r->ffill, p, take);
        r->ffill += take;
        p += take;
        len -= take;
        if (r->ffill == r->flen) {
            int rc = stream_frame(r, r->frame, r->flen);
            free(r->frame);
            r->frame = NULL;
            r->hfill = 0;
            if (rc) return rc;
        }
    }
    return STATS_OK;
}

static int stream_complete(stats_stream_t *r)
{
    if (r->err) return r->err;
    if (r->index != r->frames || r->hfill)
        return stream_fail(r, STATS_ESCHEMA, "%s: truncated (%zu of %zu frames complete)",
                           r->kind == KIND_TABLE ? "table" : "study", r->index, r->frames);
    return STATS_OK;
}

int stats_stream_finish(stats_stream_t *r, stats_study_t **study, uint64_t *nrows)
{
    if (!r) return STATS_EINVAL;
    int rc = stream_complete(r);
    if (rc) return rc;
    if (nrows) *nrows = r->nrows;
    if (study && r->kind == KIND_STUDY) {
        *study = r->own;
        r->own = NULL;
    }
    return STATS_OK;
}

/* Reads frames of a buffer in place until the object is complete; *used =
 * bytes consumed. */
static int read_frames(stats_stream_t *r, const uint8_t *p, size_t len, size_t *used)
{
    size_t off = 0;
    while (r->index < r->frames) {
        if (len - off < CKKS_HEADER_BYTES)
            return stream_fail(r, STATS_ESCHEMA, "%s: frame %zu missing or truncated",
                               r->kind == KIND_TABLE ? "table" : "study", r->index + 1);
        uint64_t plen = 0;
        int rc = check_header(r, p + off, &plen);
        if (rc) return rc;
        if (plen > len - off - CKKS_HEADER_BYTES)
            return stream_fail(r, STATS_ESCHEMA, "%s: frame %zu truncated", r->kind == KIND_TABLE ? "table" : "study",
                               r->index + 1);
        size_t fl = CKKS_HEADER_BYTES + (size_t)plen;
        r->avail = len - off - fl;
        if ((rc = stream_frame(r, p + off, fl))) return rc;
        off += fl;
    }
    *used = off;
    return STATS_OK;
}

int stats_study_read(const void *buf, size_t len, stats_study_t **out, size_t *used)
{
    if (!buf || !out) return STATS_EINVAL;
    *out = NULL;
    stats_stream_t r;
    if (stream_init(&r, KIND_STUDY, NULL)) return STATS_ENOMEM;
    size_t off = 0;
    int rc = read_frames(&r, buf, len, &off);
    if (!rc && !used && off != len) rc = stream_fail(&r, STATS_ESCHEMA, "study: %zu trailing bytes", len - off);
    if (!rc) {
        *out = r.own;
        r.own = NULL;
        if (used) *used = off;
    }
    stream_clear(&r);
    return rc;
}

/* ---- tables ---- */
/* A table's ciphertexts: compact when encrypted with the secret key, and
 * packed at the primes' widths (2.24 KB a row instead of 3.07 at 16
 * columns with primes of 60, 40, 40 bits). */
#define TABLE_CT_FLAGS (CKKS_FLAG_COMPACT | CKKS_FLAG_PACKED)

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
        PUT_FRAME(&b, ckks_write_ciphertext(t->z[k], TABLE_CT_FLAGS, &f, &fl));
        PUT_FRAME(&b, ckks_write_ciphertext(t->m[k], TABLE_CT_FLAGS, &f, &fl));
    }
    return finish(&b, out, len);
}

int stats_table_read(const stats_study_t *s, const void *buf, size_t len, stats_enc_table_t **out,
                     size_t *used)
{
    if (!s || !buf || !out) return STATS_EINVAL;
    *out = NULL;
    stats_stream_t r;
    stream_init(&r, KIND_TABLE, s);
    r.keep = calloc(1, sizeof *r.keep);
    if (!r.keep) return STATS_ENOMEM;
    size_t off = 0;
    int rc = read_frames(&r, buf, len, &off);
    if (!rc && !used && off != len) rc = stream_fail(&r, STATS_ESCHEMA, "table: %zu trailing bytes", len - off);
    if (!rc) {
        *out = r.keep;
        r.keep = NULL;
        if (used) *used = off;
    }
    stream_clear(&r);
    return rc;
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

/* ---- results ---- */
int stats_result_write(const stats_study_t *s, const stats_enc_result_t *r, void **out, size_t *len)
{
    if (!s || !r || !out || !len) return STATS_EINVAL;
    buf_t b = {0}, hdr = {0};
    put(&hdr, s->digest, 32);
    uint32_t job = r->job, flags = (r->released ? STATS_RESULT_RELEASED : 0) |
                                   (r->job == STATS_JOB_ALL ? STATS_RESULT_PAIRS4 : 0);
    put(&hdr, &job, 4);
    put(&hdr, &flags, 4);
    put_u64(&hdr, r->layout.nrows);
    put_u64(&hdr, r->count);
    PUT_FRAME(&b, hdr.err ? CKKS_ENOMEM : ckks_frame_write(s->ctx, STATS_OBJ_RESULT, hdr.p, hdr.len, &f, &fl));
    free(hdr.p);
    for (size_t j = 0; j < r->count; j++) PUT_FRAME(&b, ckks_write_ciphertext(r->cts[j], CKKS_FLAG_PACKED, &f, &fl));
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
    if (plen != 56) {
        stats_set_error("result: malformed header");
        return STATS_ESCHEMA;
    }
    if (memcmp(payload, s->digest, 32)) {
        stats_set_error("result: computed for another study (its study digest differs: another public key, "
                        "parameters or schema)");
        return STATS_ESCHEMA;
    }
    uint32_t job, flags;
    uint64_t nrows, count;
    memcpy(&job, payload + 32, 4);
    memcpy(&flags, payload + 36, 4);
    memcpy(&nrows, payload + 40, 8);
    memcpy(&count, payload + 48, 8);
    if (flags & ~(uint32_t)(STATS_RESULT_RELEASED | STATS_RESULT_PAIRS4) ||
        ((flags & STATS_RESULT_RELEASED) && !s->parties) || ((flags & STATS_RESULT_PAIRS4) && job != STATS_JOB_ALL)) {
        stats_set_error("result: unknown flags %#x in its header", (unsigned)flags);
        return STATS_ESCHEMA;
    }
    if (job == STATS_JOB_ALL && !(flags & STATS_RESULT_PAIRS4)) {
        stats_set_error("result: computed by an earlier hestat server (its pair sums are laid out as this "
                        "version no longer reads them): compute it again from its job with this version");
        return STATS_ESCHEMA;
    }
    /* count: one or more segments of the packed totals, each of at least
     * one row (and 2^16 at most, 5 x 10^11 rows at N = 8192). */
    const uint64_t per = (job == STATS_JOB_MEANS || job == STATS_JOB_ALL)
                             ? stats_result_count(&s->layout, (stats_job_t)job) : 0;
    if (!per || nrows == 0 || count == 0 || count % per || count / per > nrows || count / per > 65536) {
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
    r->released = (flags & STATS_RESULT_RELEASED) != 0;
    r->count = count;
    r->segments = count / per;
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
    *result = NULL;
    *result_len = 0;
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
    uint64_t seg_used = 0; /* rows in the result's last segment */
    for (uint64_t i = 0; i < ntables && rc == STATS_OK; i++) {
        stats_enc_table_t *t;
        size_t used;
        rc = stats_table_read(s, p + off, len - off, &t, &used);
        if (rc) break;
        off += used;
        rc = stats_compute_more(s->ctx, t, (stats_job_t)jk, s->rk, s->gk, 0, 1, NULL, NULL, &acc, &seg_used, &total);
        stats_enc_table_free(t);
    }
    if (rc == STATS_OK && off != len) {
        stats_set_error("job: %zu trailing bytes", len - off);
        rc = STATS_ESCHEMA;
    }
    if (rc == STATS_OK && acc) rc = stats_result_write(s, acc, result, result_len);
    if (counts) *counts = total;
    stats_enc_result_free(acc);
    stats_study_free(s);
    return rc;
}

/* ---- tables and jobs read from a file, chunk by chunk ------------------------------ */
struct stats_chunk_src {
    const stats_study_t *study;
    int fd, own;
    int drop; /* the table is over a quarter of the memory: its pages are dropped once read */
    uint64_t *off; /* 2 x chunks frames: z_k at 2k, m_k at 2k + 1 */
    uint32_t *len;
};

void stats_chunk_src_free(struct stats_chunk_src *src)
{
    if (!src) return;
    if (src->own && src->fd >= 0) close(src->fd);
    free(src->off);
    free(src->len);
    free(src);
}

/* Exactly n bytes at off, or -1. */
static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* The frame header at off (within end): its type and whole length, or 0. */
static uint64_t frame_head(int fd, uint64_t off, uint64_t end, uint16_t *type)
{
    uint8_t h[CKKS_HEADER_BYTES];
    if (end < off || end - off < CKKS_HEADER_BYTES || pread_full(fd, h, sizeof h, off)) return 0;
    if (memcmp(h, "HESTAT\r\n", 8)) return 0;
    uint64_t plen;
    memcpy(&plen, h + 24, 8);
    memcpy(type, h + 10, 2);
    if (plen > end - off - CKKS_HEADER_BYTES) return 0;
    return CKKS_HEADER_BYTES + plen;
}

int stats_table_file_open(const stats_study_t *s, int fd, uint64_t off, uint64_t len, int own,
                          stats_enc_table_t **out, uint64_t *used)
{
    if (!s || fd < 0 || !out) return STATS_EINVAL;
    *out = NULL;
    const uint64_t end = off + len;
    uint16_t type = 0;
    uint64_t fl = frame_head(fd, off, end, &type);
    if (!fl || type != STATS_OBJ_TABLE || fl > 4096) {
        stats_set_error("table: no table header");
        return STATS_ESCHEMA;
    }
    uint8_t hdr[4096];
    if (pread_full(fd, hdr, (size_t)fl, off)) {
        stats_set_error("table: cannot read its header");
        return STATS_EIO;
    }
    stats_stream_t r;
    stream_init(&r, KIND_TABLE, s);
    r.keep = calloc(1, sizeof *r.keep);
    struct stats_chunk_src *src = calloc(1, sizeof *src);
    if (!r.keep || !src) {
        free(src);
        stream_clear(&r);
        return STATS_ENOMEM;
    }
    src->study = s;
    src->fd = fd;
    r.avail = len - fl;
    int rc = table_header(&r, hdr, (size_t)fl);
    if (rc) {
        stats_set_error("%s", r.msg);
        free(src);
        stream_clear(&r);
        return rc;
    }
    stats_enc_table_t *t = r.keep;
    r.keep = NULL;
    stream_clear(&r);
    /* Where every ciphertext frame is; each is checked whole when read. */
    const uint64_t max_ct = CKKS_HEADER_BYTES + 24 + 2 * (uint64_t)ckks_context_data_primes(s->ctx) *
                                                        ckks_context_n(s->ctx) * 8 + 32;
    src->off = malloc(2 * t->chunks * sizeof *src->off);
    src->len = malloc(2 * t->chunks * sizeof *src->len);
    t->src = src;
    if (!src->off || !src->len) {
        stats_enc_table_free(t);
        return STATS_ENOMEM;
    }
    uint64_t pos = off + fl;
    for (size_t i = 0; i < 2 * t->chunks; i++) {
        uint64_t l = frame_head(fd, pos, end, &type);
        if (!l || type != CKKS_OBJ_CIPHERTEXT || l > max_ct) {
            stats_set_error("table: ciphertext %zu of %zu missing, truncated or too large", i + 1, 2 * t->chunks);
            stats_enc_table_free(t);
            return STATS_ESCHEMA;
        }
        src->off[i] = pos;
        src->len[i] = (uint32_t)l;
        pos += l;
    }
    src->own = own;
    /* A table that cannot stay in the page cache only pushes other pages
     * out, and the kernel then spends its time reclaiming them (10^7 rows,
     * 21 GB on 24 GB: 75 s of system time in a 150 s job): its pages are
     * let go as soon as a chunk is read. Smaller tables stay cached for the
     * next job (a glm fit reads its tables every round). */
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    src->drop = pages > 0 && psize > 0 && pos - off > (uint64_t)pages * (uint64_t)psize / 4;
    *out = t;
    if (used) *used = pos - off;
    return STATS_OK;
}

void stats_chunk_prefetch(const stats_enc_table_t *t, size_t k)
{
    if (!t || !t->src || k >= t->chunks || (t->z[k] && t->m[k])) return;
    const struct stats_chunk_src *src = t->src;
    /* z_k and m_k are adjacent frames. */
    (void)posix_fadvise(src->fd, (off_t)src->off[2 * k], (off_t)src->len[2 * k] + src->len[2 * k + 1],
                        POSIX_FADV_WILLNEED);
}

int stats_chunk_read(const stats_enc_table_t *t, size_t k, ckks_ciphertext_t **z, ckks_ciphertext_t **m)
{
    if (!t || !t->src || k >= t->chunks || !z || !m) return STATS_EINVAL;
    const struct stats_chunk_src *src = t->src;
    const stats_study_t *s = src->study;
    ckks_ciphertext_t *ct[2] = {NULL, NULL};
    uint8_t *buf = malloc(src->len[2 * k] > src->len[2 * k + 1] ? src->len[2 * k] : src->len[2 * k + 1]);
    int rc = buf ? STATS_OK : STATS_ENOMEM;
    for (int i = 0; i < 2 && !rc; i++) {
        size_t f = 2 * k + (size_t)i;
        if (pread_full(src->fd, buf, src->len[f], src->off[f])) {
            stats_set_error("table: cannot read chunk %zu", k + 1);
            rc = STATS_EIO;
            break;
        }
        int crc = ckks_read_ciphertext(s->ctx, buf, src->len[f], &ct[i]);
        if (crc) {
            rc = ckks_fail(crc, "table");
            break;
        }
        if (ct[i]->size != 2 || ct[i]->nprimes != ckks_context_data_primes(s->ctx)) {
            stats_set_error("table: ciphertext %zu has the wrong size or level", f + 1);
            rc = STATS_ESCHEMA;
        }
    }
    free(buf);
    if (src->drop)
        (void)posix_fadvise(src->fd, (off_t)src->off[2 * k], (off_t)src->len[2 * k] + src->len[2 * k + 1],
                            POSIX_FADV_DONTNEED);
    if (rc) {
        ckks_ciphertext_free(ct[0]);
        ckks_ciphertext_free(ct[1]);
        return rc;
    }
    *z = ct[0];
    *m = ct[1];
    return STATS_OK;
}

int stats_job_run_file(int fd, uint64_t size, size_t part, size_t nparts, stats_reduce_fn reduce, void *arg,
                       void **result, size_t *result_len, stats_counts_t *counts)
{
    if (fd < 0 || !result || !result_len || !nparts || part >= nparts || (nparts > 1 && !reduce))
        return STATS_EINVAL;
    *result = NULL;
    *result_len = 0;
    /* The study is every frame before the job header; no secret key anywhere. */
    uint64_t off = 0, study_len = 0, fl = 0;
    uint16_t type = 0;
    for (;;) {
        fl = frame_head(fd, off, size, &type);
        if (!fl) {
            stats_set_error("job: truncated or not a hestat file at byte %llu", (unsigned long long)off);
            return STATS_ESCHEMA;
        }
        if (type == CKKS_OBJ_SECRET_KEY) {
            stats_set_error("job: contains a secret key; refused");
            return STATS_EINVAL;
        }
        if (type == STATS_OBJ_JOB) break;
        off += fl;
        if (off > ((uint64_t)1 << 32)) {
            stats_set_error("job: no job header within the first 4 GiB");
            return STATS_ESCHEMA;
        }
    }
    study_len = off;
    const char *tr = getenv("HESTAT_TRACE");
    const int trace = tr && *tr && strcmp(tr, "0");
    struct timespec ta, tb;
    clock_gettime(CLOCK_MONOTONIC, &ta);
    uint8_t *sb = malloc(study_len + fl ? study_len + fl : 1);
    if (!sb) return STATS_ENOMEM;
    if (pread_full(fd, sb, study_len + fl, 0)) {
        free(sb);
        stats_set_error("job: cannot read the study");
        return STATS_EIO;
    }
    stats_study_t *s;
    size_t used;
    int rc = stats_study_read(sb, study_len, &s, &used);
    if (!rc && used != study_len) {
        stats_set_error("job: stray frames after the study");
        stats_study_free(s);
        rc = STATS_ESCHEMA;
    }
    if (rc) {
        free(sb);
        return rc;
    }
    const uint8_t *payload;
    size_t plen;
    uint32_t jk = 0;
    uint64_t ntables = 0;
    int crc = ckks_frame_open(s->ctx, sb + study_len, (size_t)fl, STATS_OBJ_JOB, &payload, &plen);
    if (!crc && plen == 16) {
        memcpy(&jk, payload, 4);
        memcpy(&ntables, payload + 8, 8);
    }
    free(sb);
    if (crc || plen != 16 || (jk != STATS_JOB_MEANS && jk != STATS_JOB_ALL) || ntables == 0 || ntables > 4096) {
        stats_study_free(s);
        stats_set_error("job: missing or malformed job header");
        return STATS_ESCHEMA;
    }
    if (trace) {
        clock_gettime(CLOCK_MONOTONIC, &tb);
        fprintf(stderr, "hestat: part %zu of %zu: study and keys read in %.3f s\n", part, nparts,
                (tb.tv_sec - ta.tv_sec) + (tb.tv_nsec - ta.tv_nsec) * 1e-9);
    }
    off = study_len + fl;
    stats_enc_result_t *acc = NULL;
    stats_counts_t total = {0};
    uint64_t seg_used = 0; /* rows in the result's last segment */
    for (uint64_t i = 0; i < ntables && rc == STATS_OK; i++) {
        stats_enc_table_t *t;
        uint64_t tl;
        clock_gettime(CLOCK_MONOTONIC, &ta);
        rc = stats_table_file_open(s, fd, off, size - off, 0, &t, &tl);
        if (trace && !rc) {
            clock_gettime(CLOCK_MONOTONIC, &tb);
            fprintf(stderr, "hestat: part %zu of %zu: table %llu indexed (%zu chunks) %.3f s\n", part, nparts,
                    (unsigned long long)i + 1, t->chunks, (tb.tv_sec - ta.tv_sec) + (tb.tv_nsec - ta.tv_nsec) * 1e-9);
        }
        if (rc) break;
        off += tl;
        rc = stats_compute_more(s->ctx, t, (stats_job_t)jk, s->rk, s->gk, part, nparts, reduce, arg, &acc, &seg_used,
                                &total);
        stats_enc_table_free(t);
    }
    if (rc == STATS_OK && off != size) {
        stats_set_error("job: %llu trailing bytes", (unsigned long long)(size - off));
        rc = STATS_ESCHEMA;
    }
    if (rc == STATS_OK && acc) rc = stats_result_write(s, acc, result, result_len);
    if (counts) *counts = total;
    stats_enc_result_free(acc);
    stats_study_free(s);
    return rc;
}

/* ---- a table encrypted straight into a file ---- */
typedef struct {
    FILE *f;
    int err;
} file_sink_t;

static int put_ct(FILE *f, const ckks_ciphertext_t *ct)
{
    void *b;
    size_t l;
    int crc = ckks_write_ciphertext(ct, TABLE_CT_FLAGS, &b, &l);
    if (crc) return ckks_fail(crc, "table");
    int rc = fwrite(b, 1, l, f) == l ? STATS_OK : STATS_EIO;
    free(b);
    return rc;
}

static int file_sink(void *arg, size_t k, const ckks_ciphertext_t *z, const ckks_ciphertext_t *m)
{
    (void)k;
    file_sink_t *fs = arg;
    int rc = put_ct(fs->f, z);
    if (!rc) rc = put_ct(fs->f, m);
    if (rc == STATS_EIO) stats_set_error("table: write failed: %s", strerror(errno));
    return rc;
}

/* The table header frame: the study's digest, the row and chunk counts. */
static int put_table_header(const stats_study_t *s, FILE *f, uint64_t nrows, uint64_t chunks)
{
    buf_t hdr = {0};
    put(&hdr, s->digest, 32);
    put_u64(&hdr, nrows);
    put_u64(&hdr, chunks);
    void *fr = NULL;
    size_t fl = 0;
    int crc = hdr.err ? CKKS_ENOMEM : ckks_frame_write(s->ctx, STATS_OBJ_TABLE, hdr.p, hdr.len, &fr, &fl);
    free(hdr.p);
    if (crc) return ckks_fail(crc, "table header");
    int rc = fwrite(fr, 1, fl, f) == fl ? STATS_OK : STATS_EIO;
    free(fr);
    if (rc) stats_set_error("table: write failed: %s", strerror(errno));
    return rc;
}

int stats_table_write_file(const stats_study_t *s, FILE *f, const stats_table_t *t, const stats_layout_t *lay,
                           double scale, stats_progress_fn progress, void *arg)
{
    if (!s || !f || !t || !lay) return STATS_EINVAL;
    int rc = put_table_header(s, f, lay->nrows, lay->chunks);
    if (rc) return rc;
    file_sink_t fs = {f, 0};
    return stats_encrypt_each(s->ctx, s->pk, NULL, t, lay, scale, file_sink, &fs, progress, arg);
}

int stats_table_writer_begin(const stats_study_t *s, FILE *f, double scale, stats_table_writer_t *w)
{
    if (!s || !f || !w) return STATS_EINVAL;
    *w = (stats_table_writer_t){s, f, (int64_t)ftello(f), scale, 0};
    if (w->start < 0) {
        stats_set_error("table: the output cannot be rewritten in place: %s", strerror(errno));
        return STATS_EIO;
    }
    return put_table_header(s, f, 0, 0); /* 0 rows: refused by every reader until stats_table_writer_end */
}

int stats_table_writer_put(stats_table_writer_t *w, const stats_table_t *block)
{
    if (!w || !block) return STATS_EINVAL;
    return stats_table_writer_put_many(w, &block, 1);
}

/* A chunk's two ciphertexts as the bytes file_sink writes (for
 * stats_table_writer_put_many: encrypted on any thread, written in order). */
typedef struct {
    void *b[2];
    size_t l[2];
} mem_sink_t;

static int mem_sink(void *arg, size_t k, const ckks_ciphertext_t *z, const ckks_ciphertext_t *m)
{
    (void)k;
    mem_sink_t *ms = arg;
    const ckks_ciphertext_t *ct[2] = {z, m};
    for (int i = 0; i < 2; i++) {
        int crc = ckks_write_ciphertext(ct[i], TABLE_CT_FLAGS, &ms->b[i], &ms->l[i]);
        if (crc) return ckks_fail(crc, "table");
    }
    return STATS_OK;
}

int stats_table_writer_put_many(stats_table_writer_t *w, const stats_table_t *const *blocks, size_t n)
{
    if (!w || (!blocks && n)) return STATS_EINVAL;
    const stats_layout_t *lay0 = &w->s->layout;
    const size_t R = lay0->rows_per_ct;
    if (w->nrows % R) return STATS_EINVAL; /* a short block was the last */
    for (size_t i = 0; i < n; i++)
        if (!blocks[i] || blocks[i]->ncols != lay0->ncols || blocks[i]->nrows > R ||
            (i + 1 < n && blocks[i]->nrows < R))
            return STATS_EINVAL;
    mem_sink_t *ms = calloc(n + 1, sizeof *ms);
    int *rcs = calloc(n + 1, sizeof *rcs);
    char (*msg)[256] = calloc(n + 1, sizeof *msg);
    int rc = ms && rcs && msg ? STATS_OK : STATS_ENOMEM;
    const size_t nt = rc ? 1 : stats_threads(n);
#pragma omp parallel for num_threads((int)nt) schedule(dynamic, 1) if (nt > 1)
    for (size_t i = 0; i < n; i++) {
        if (rc || !blocks[i]->nrows) continue;
        stats_layout_t lay = *lay0;
        lay.nrows = blocks[i]->nrows;
        lay.chunks = 1;
        rcs[i] = stats_encrypt_each(w->s->ctx, w->s->pk, NULL, blocks[i], &lay, w->scale, mem_sink, &ms[i], NULL,
                                    NULL);
        if (rcs[i]) snprintf(msg[i], sizeof msg[i], "%s", stats_error()); /* per thread: carried out */
    }
    for (size_t i = 0; i < n && !rc; i++)
        if (rcs[i]) {
            stats_set_error("%s", msg[i]);
            rc = rcs[i];
        }
    for (size_t i = 0; i < n && !rc; i++) {
        for (int j = 0; j < 2 && !rc && ms[i].b[j]; j++)
            if (fwrite(ms[i].b[j], 1, ms[i].l[j], w->f) != ms[i].l[j]) {
                stats_set_error("table: write failed: %s", strerror(errno));
                rc = STATS_EIO;
            }
        if (!rc) w->nrows += blocks[i]->nrows;
    }
    for (size_t i = 0; ms && i < n; i++) {
        free(ms[i].b[0]);
        free(ms[i].b[1]);
    }
    free(ms);
    free(rcs);
    free(msg);
    return rc;
}

int stats_table_writer_end(stats_table_writer_t *w)
{
    if (!w) return STATS_EINVAL;
    size_t R = w->s->layout.rows_per_ct;
    off_t end = ftello(w->f);
    int rc = end >= 0 && !fseeko(w->f, (off_t)w->start, SEEK_SET) ? STATS_OK : STATS_EIO;
    if (!rc) rc = put_table_header(w->s, w->f, w->nrows, (w->nrows + R - 1) / R);
    else stats_set_error("table: the output cannot be rewritten in place: %s", strerror(errno));
    if (!rc && fseeko(w->f, end, SEEK_SET)) {
        stats_set_error("table: %s", strerror(errno));
        rc = STATS_EIO;
    }
    return rc;
}
