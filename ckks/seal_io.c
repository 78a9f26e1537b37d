/*
 * Microsoft SEAL 4.x serialization of CKKS objects: read, validate, write.
 * Layouts (everything little-endian, no padding), as SEAL 4.1 writes them:
 *   header:     u16 magic 0xA15E | u8 16 | u8 major 4 | u8 minor | u8 compr |
 *               u16 0 | u64 total size (header included)
 *   DynArray:   header | u64 count | count x u64
 *   Ciphertext: parms_id[4] | u8 ntt | u64 size | u64 N | u64 L | f64 scale |
 *               u64 correction factor | DynArray (size*L*N, poly-major)
 *   Plaintext:  parms_id[4] | u64 coeff count (L*N) | f64 scale | DynArray
 *   SecretKey = Plaintext at the key level; PublicKey = Ciphertext at the key level
 *   KSwitchKeys (RelinKeys, GaloisKeys): parms_id[4] | u64 dim1 | per row: u64 dim2,
 *               dim2 complete PublicKey objects. Relin: 1 row; Galois: N rows,
 *               row (elt-1)/2, empty rows are a lone 0.
 * With zstd, everything after the outer header is one zstd frame; with zlib,
 * one zlib stream (RFC 1950, as zlib's deflate writes by default).
 * Seeded (SEAL's Serializable saves): a size-2 ciphertext (or public key)
 * whose DynArray holds only c0 (L*N words), followed by a nested
 * UniformRandomGeneratorInfo object: header | u8 prng_type | 64-byte seed;
 * c1 is regenerated from the seed (seal_prng.c).
 */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "ckks_impl.h"

#define SEAL_MAGIC 0xA15E
#define SEAL_HEADER 16
/* Decompressed objects larger than this are refused (a Galois key set for
 * N=2^16 with every rotation is below it). */
#define SEAL_MAX_BYTES ((uint64_t)1 << 34)

/* ---- reading ---- */
typedef struct {
    const uint8_t *p;
    size_t len, pos;
} rd_t;

static int rd_take(rd_t *r, void *out, size_t n)
{
    if (n > r->len - r->pos) return CKKS_EFORMAT;
    memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return CKKS_OK;
}

static int rd_u64(rd_t *r, uint64_t *v) { return rd_take(r, v, 8); }

typedef struct {
    int major, minor, compr;
    uint64_t size;
} hdr_t;

static int rd_header(rd_t *r, hdr_t *h)
{
    uint8_t b[SEAL_HEADER];
    if (rd_take(r, b, sizeof b)) return CKKS_EFORMAT;
    uint16_t magic = (uint16_t)(b[0] | b[1] << 8), reserved = (uint16_t)(b[6] | b[7] << 8);
    if (magic != SEAL_MAGIC || b[2] != SEAL_HEADER) return CKKS_EFORMAT;
    h->major = b[3];
    h->minor = b[4];
    h->compr = b[5];
    memcpy(&h->size, b + 8, 8);
    if (h->major != 4 || h->minor > 4) return CKKS_EUNSUPPORTED;
    if (reserved != 0) return CKKS_EFORMAT;
    if (h->compr != CKKS_SEAL_COMPR_NONE && h->compr != CKKS_SEAL_COMPR_ZLIB && h->compr != CKKS_SEAL_COMPR_ZSTD)
        return CKKS_EFORMAT;
    if (h->size < SEAL_HEADER || h->size - SEAL_HEADER > r->len - r->pos) return CKKS_EFORMAT;
    return CKKS_OK;
}

/* One whole zlib stream (nothing after it) into a buffer that grows by
 * doubling up to SEAL_MAX_BYTES. */
static int inflate_body(const uint8_t *in, size_t inlen, rd_t *body, uint8_t **owned)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) return CKKS_ENOMEM;
    size_t cap = 1 << 20, used = 0;
    uint8_t *out = malloc(cap);
    int rc = out ? CKKS_OK : CKKS_ENOMEM;
    z.next_in = (Bytef *)in;
    while (rc == CKKS_OK) {
        if (used == cap) {
            uint8_t *grown = cap >= SEAL_MAX_BYTES ? NULL : realloc(out, cap * 2);
            if (!grown) {
                rc = cap >= SEAL_MAX_BYTES ? CKKS_EFORMAT : CKKS_ENOMEM;
                break;
            }
            out = grown;
            cap *= 2;
        }
        /* avail_* are 32-bit: feed at most 1 GB at a time */
        size_t in_left = inlen - (size_t)((const uint8_t *)z.next_in - in);
        z.avail_in = (uInt)(in_left < (1u << 30) ? in_left : (1u << 30));
        z.next_out = out + used;
        z.avail_out = (uInt)(cap - used < (1u << 30) ? cap - used : (1u << 30));
        uInt before = z.avail_out;
        int ret = inflate(&z, Z_NO_FLUSH);
        used += before - z.avail_out;
        if (ret == Z_STREAM_END) {
            if ((const uint8_t *)z.next_in != in + inlen) rc = CKKS_EFORMAT; /* trailing bytes */
            break;
        }
        if (ret == Z_MEM_ERROR) rc = CKKS_ENOMEM;
        else if (ret != Z_OK && ret != Z_BUF_ERROR) rc = CKKS_EFORMAT;
        else if (ret == Z_BUF_ERROR && z.avail_out != 0) rc = CKKS_EFORMAT; /* truncated */
    }
    inflateEnd(&z);
    if (rc) {
        if (out) sodium_memzero(out, used);
        free(out);
        return rc;
    }
    *owned = out;
    *body = (rd_t){out, used, 0};
    return CKKS_OK;
}

/* The body of a top-level object: the rest of the buffer, decompressed if
 * needed into *owned (caller frees). */
static int top_body(const void *buf, size_t len, hdr_t *h, rd_t *body, uint8_t **owned)
{
    *owned = NULL;
    if (!buf) return CKKS_EINVAL;
    rd_t r = {buf, len, 0};
    int rc = rd_header(&r, h);
    if (rc) return rc;
    if (h->size != len) return CKKS_EFORMAT; /* a file holds exactly one object */
    if (h->compr == CKKS_SEAL_COMPR_NONE) {
        *body = (rd_t){r.p + r.pos, len - r.pos, 0};
        return CKKS_OK;
    }
    if (h->compr == CKKS_SEAL_COMPR_ZLIB) return inflate_body(r.p + r.pos, len - r.pos, body, owned);
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds) return CKKS_ENOMEM;
    size_t cap = 1 << 20, used = 0;
    uint8_t *out = malloc(cap);
    ZSTD_inBuffer in = {r.p + r.pos, len - r.pos, 0};
    rc = out ? CKKS_OK : CKKS_ENOMEM;
    while (rc == CKKS_OK) {
        if (used == cap) {
            if (cap >= SEAL_MAX_BYTES) {
                rc = CKKS_EFORMAT;
                break;
            }
            uint8_t *grown = realloc(out, cap * 2);
            if (!grown) {
                rc = CKKS_ENOMEM;
                break;
            }
            out = grown;
            cap *= 2;
        }
        ZSTD_outBuffer ob = {out, cap, used};
        size_t ret = ZSTD_decompressStream(ds, &ob, &in);
        used = ob.pos;
        if (ZSTD_isError(ret)) rc = CKKS_EFORMAT;
        else if (ret == 0 && in.pos == in.size) break; /* frame done, input consumed */
        else if (ret == 0) rc = CKKS_EFORMAT;           /* trailing bytes */
        else if (in.pos == in.size && ob.pos < ob.size) rc = CKKS_EFORMAT; /* truncated */
    }
    ZSTD_freeDStream(ds);
    if (rc) {
        free(out);
        return rc;
    }
    *owned = out;
    *body = (rd_t){out, used, 0};
    return CKKS_OK;
}

/* The common start and end of every reader: arguments, header, body
 * (decompressed into a buffer that close_top wipes and frees: it may have
 * held a secret key). */
typedef struct {
    rd_t body;
    uint8_t *owned;
} top_t;

static int open_top(const ckks_context_t *ctx, void **out, const void *buf, size_t len, top_t *t)
{
    if (!ctx || !out) return CKKS_EINVAL;
    *out = NULL;
    hdr_t h;
    return top_body(buf, len, &h, &t->body, &t->owned);
}

static void close_top(top_t *t)
{
    if (!t->owned) return;
    sodium_memzero(t->owned, t->body.len);
    free(t->owned);
    t->owned = NULL;
}

int ckks_seal_parms_id(const ckks_context_t *ctx, size_t nprimes, uint64_t id[4])
{
    if (!ctx || !id || nprimes == 0 || nprimes > ctx->k) return CKKS_EINVAL;
    uint64_t words[CKKS_MAX_PRIMES + 3];
    size_t w = 0;
    words[w++] = 2; /* scheme_type::ckks */
    words[w++] = ctx->n;
    for (size_t i = 0; i < nprimes; i++) words[w++] = ctx->primes[i];
    words[w++] = 0; /* plain modulus */
    crypto_generichash((unsigned char *)id, 32, (const unsigned char *)words, w * 8, NULL, 0);
    return CKKS_OK;
}

/* Number of primes of the level whose parms_id this is, or 0. */
static size_t level_of(const ckks_context_t *ctx, const uint64_t id[4])
{
    for (size_t np = 1; np <= ctx->k; np++) {
        uint64_t want[4];
        ckks_seal_parms_id(ctx, np, want);
        if (!memcmp(want, id, sizeof want)) return np;
    }
    return 0;
}

/* DynArray of exactly `count` words, each below its prime (prime of word w is
 * primes[(w / N) % np]), copied to out. With `seeded` not NULL, half of
 * count (a seeded ciphertext's c0) is accepted too and *seeded says which. */
static int rd_dynarray(rd_t *r, const ckks_context_t *ctx, size_t np, uint64_t count, uint64_t *out, int *seeded)
{
    hdr_t h;
    size_t start = r->pos;
    int rc = rd_header(r, &h);
    if (rc) return rc;
    if (h.compr != CKKS_SEAL_COMPR_NONE) return CKKS_EFORMAT;
    uint64_t n;
    if (rd_u64(r, &n)) return CKKS_EFORMAT;
    if (seeded) *seeded = 0;
    if (seeded && n * 2 == count) {
        *seeded = 1;
        count = n;
    }
    if (n != count) return CKKS_EFORMAT;
    if (h.size != SEAL_HEADER + 8 + count * 8) return CKKS_EFORMAT;
    if (count > (r->len - r->pos) / 8) return CKKS_EFORMAT;
    memcpy(out, r->p + r->pos, count * 8);
    r->pos += count * 8;
    (void)start;
    for (uint64_t w = 0; w < count; w++)
        if (out[w] >= ctx->primes[(w / ctx->n) % np]) return CKKS_EFORMAT;
    return CKKS_OK;
}

typedef struct {
    uint64_t parms_id[4];
    size_t np, size;
    double scale;
} ct_meta_t;

/* The UniformRandomGeneratorInfo after a seeded ciphertext's c0: a complete
 * uncompressed object of 16 + 1 + 64 bytes; c1 (np*N words) regenerated from
 * it into c1. A prng_type SEAL does not know (or "unknown", 0) is refused. */
static int rd_seed_expand(rd_t *r, const ckks_context_t *ctx, size_t np, uint64_t *c1)
{
    hdr_t h;
    int rc = rd_header(r, &h);
    if (rc) return rc;
    uint8_t type, seed[CKKS_SEAL_SEED_BYTES];
    if (h.compr != CKKS_SEAL_COMPR_NONE || h.size != SEAL_HEADER + 1 + CKKS_SEAL_SEED_BYTES) return CKKS_EFORMAT;
    if (rd_take(r, &type, 1) || rd_take(r, seed, sizeof seed)) return CKKS_EFORMAT;
    if (type != CKKS_SEAL_PRNG_BLAKE2XB && type != CKKS_SEAL_PRNG_SHAKE256) return CKKS_EFORMAT;
    return ckks_seal_expand_uniform(type, seed, ctx->primes, np, ctx->n, c1);
}

/* Ciphertext body; `key_level` selects public keys (key level required)
 * versus data ciphertexts (key level refused). Data go to out (size*np*N). */
static int rd_ciphertext_body(rd_t *r, const ckks_context_t *ctx, int key_level, ct_meta_t *m,
                              uint64_t **out)
{
    uint8_t ntt;
    uint64_t size, n, L, corr;
    double scale;
    if (rd_take(r, m->parms_id, 32) || rd_take(r, &ntt, 1) || rd_u64(r, &size) || rd_u64(r, &n) ||
        rd_u64(r, &L) || rd_take(r, &scale, 8) || rd_u64(r, &corr))
        return CKKS_EFORMAT;
    size_t np = level_of(ctx, m->parms_id);
    if (np == 0) return CKKS_ECONTEXT;
    if (key_level ? np != ctx->k : np == ctx->k) return CKKS_ELEVEL;
    if (ntt != 1 || n != ctx->n || L != np || corr != 1) return CKKS_EFORMAT;
    if (key_level ? size != 2 : (size < 2 || size > 3)) return CKKS_ESIZE;
    if (!isfinite(scale) || scale <= 0) return CKKS_ESCALE;
    if (!key_level && log2(scale) >= ctx->crt[np].bits) return CKKS_ESCALE;
    uint64_t count = size * np * n;
    uint64_t *data = ntt_alloc(count);
    if (!data) return CKKS_ENOMEM;
    int seeded = 0;
    int rc = rd_dynarray(r, ctx, np, count, data, size == 2 ? &seeded : NULL);
    if (rc == CKKS_OK && seeded) rc = rd_seed_expand(r, ctx, np, data + np * n);
    if (rc == CKKS_OK && !key_level) {
        /* SEAL refuses "transparent" ciphertexts: c1 identically zero. */
        int zero = 1;
        for (uint64_t w = np * n; w < 2 * np * n && zero; w++) zero = data[w] == 0;
        if (zero) rc = CKKS_EFORMAT;
    }
    if (rc) {
        ntt_free(data);
        return rc;
    }
    m->np = np;
    m->size = size;
    m->scale = scale;
    *out = data;
    return CKKS_OK;
}

/* A nested, complete, uncompressed PublicKey object (inside KSwitchKeys). */
static int rd_nested_public_key(rd_t *r, const ckks_context_t *ctx, uint64_t *dst)
{
    hdr_t h;
    size_t start = r->pos;
    int rc = rd_header(r, &h);
    if (rc) return rc;
    if (h.compr != CKKS_SEAL_COMPR_NONE) return CKKS_EFORMAT;
    rd_t sub = {r->p, start + h.size, r->pos};
    ct_meta_t m;
    uint64_t *data;
    rc = rd_ciphertext_body(&sub, ctx, 1, &m, &data);
    if (rc) return rc;
    if (sub.pos != sub.len) rc = CKKS_EFORMAT;
    else memcpy(dst, data, 2 * ctx->k * ctx->n * 8);
    ntt_free(data);
    r->pos = start + h.size;
    return rc;
}

/* KSwitchKeys body into (elt, key) pairs. galois: rows are indexed by
 * (elt-1)/2; relin: exactly one row. */
static int rd_kswitch_body(rd_t *r, const ckks_context_t *ctx, int galois, uint32_t **elts_out,
                           ckks_kswitch_t **keys_out, size_t *count_out)
{
    uint64_t pid[4], dim1;
    if (rd_take(r, pid, 32) || rd_u64(r, &dim1)) return CKKS_EFORMAT;
    size_t np = level_of(ctx, pid);
    if (np == 0) return CKKS_ECONTEXT;
    if (np != ctx->k) return CKKS_ELEVEL;
    if (galois ? dim1 != ctx->n : dim1 != 1) return CKKS_EFORMAT;
    const size_t digits = ctx->k - 1, key_words = 2 * ctx->k * ctx->n;
    size_t cap = galois ? 8 : 1, count = 0;
    uint32_t *elts = malloc(cap * sizeof *elts);
    ckks_kswitch_t *keys = calloc(cap, sizeof *keys);
    int rc = elts && keys ? CKKS_OK : CKKS_ENOMEM;
    for (uint64_t row = 0; row < dim1 && rc == CKKS_OK; row++) {
        uint64_t dim2;
        if (rd_u64(r, &dim2)) {
            rc = CKKS_EFORMAT;
            break;
        }
        if (dim2 == 0) {
            if (!galois) rc = CKKS_EFORMAT;
            continue;
        }
        if (dim2 != digits) {
            rc = CKKS_EFORMAT;
            break;
        }
        uint32_t elt = (uint32_t)(2 * row + 1);
        if (galois && elt == 1) { /* the identity has no key */
            rc = CKKS_EFORMAT;
            break;
        }
        if (count == cap) {
            cap *= 2;
            uint32_t *e2 = realloc(elts, cap * sizeof *e2);
            if (e2) elts = e2;
            ckks_kswitch_t *k2 = e2 ? realloc(keys, cap * sizeof *k2) : NULL;
            if (!e2 || !k2) {
                rc = CKKS_ENOMEM;
                break;
            }
            keys = k2;
        }
        keys[count].seal_seeds = NULL;
        keys[count].limit = 0;
        keys[count].d = ntt_alloc(digits * key_words);
        if (!keys[count].d) {
            rc = CKKS_ENOMEM;
            break;
        }
        elts[count] = elt;
        count++;
        for (size_t j = 0; j < digits && rc == CKKS_OK; j++)
            rc = rd_nested_public_key(r, ctx, keys[count - 1].d + j * key_words);
    }
    if (rc == CKKS_OK && r->pos != r->len) rc = CKKS_EFORMAT;
    if (rc == CKKS_OK && count == 0 && !galois) rc = CKKS_EFORMAT;
    if (rc) {
        for (size_t i = 0; i < count; i++) ntt_free(keys[i].d);
        free(keys);
        free(elts);
        return rc;
    }
    *elts_out = elts;
    *keys_out = keys;
    *count_out = count;
    return CKKS_OK;
}

static int rd_plaintext_body(rd_t *r, const ckks_context_t *ctx, int key_level, size_t *np_out,
                             double *scale_out, uint64_t **out)
{
    uint64_t pid[4], coeffs;
    double scale;
    if (rd_take(r, pid, 32) || rd_u64(r, &coeffs) || rd_take(r, &scale, 8)) return CKKS_EFORMAT;
    size_t np = level_of(ctx, pid);
    if (np == 0) return CKKS_ECONTEXT;
    if (key_level ? np != ctx->k : np == ctx->k) return CKKS_ELEVEL;
    if (coeffs != np * ctx->n) return CKKS_EFORMAT;
    if (!isfinite(scale) || scale <= 0) return CKKS_ESCALE;
    if (key_level && scale != 1.0) return CKKS_EFORMAT;
    uint64_t *data = ntt_alloc(coeffs);
    if (!data) return CKKS_ENOMEM;
    int rc = rd_dynarray(r, ctx, np, coeffs, data, NULL);
    if (rc == CKKS_OK && r->pos != r->len) rc = CKKS_EFORMAT;
    if (rc) {
        ntt_free(data);
        return rc;
    }
    *np_out = np;
    *scale_out = scale;
    *out = data;
    return CKKS_OK;
}

int ckks_seal_read_ciphertext(const ckks_context_t *ctx, const void *buf, size_t len,
                              ckks_ciphertext_t **out)
{
    top_t top;
    int rc = open_top(ctx, (void **)out, buf, len, &top);
    if (rc) return rc;
    rd_t body = top.body;
    ct_meta_t m;
    uint64_t *data = NULL;
    rc = rd_ciphertext_body(&body, ctx, 0, &m, &data);
    if (rc == CKKS_OK && body.pos != body.len) rc = CKKS_EFORMAT;
    ckks_ciphertext_t *ct = NULL;
    if (rc == CKKS_OK) rc = ckks_ciphertext_new(ctx, m.size, m.np, &ct);
    if (rc == CKKS_OK) {
        memcpy(ct->data, data, m.size * m.np * ctx->n * 8);
        ct->scale = m.scale;
        *out = ct;
    }
    ntt_free(data);
    close_top(&top);
    return rc;
}

int ckks_seal_read_plaintext(const ckks_context_t *ctx, const void *buf, size_t len,
                             ckks_plaintext_t **out)
{
    top_t top;
    int rc = open_top(ctx, (void **)out, buf, len, &top);
    if (rc) return rc;
    rd_t body = top.body;
    size_t np;
    double scale;
    uint64_t *data = NULL;
    rc = rd_plaintext_body(&body, ctx, 0, &np, &scale, &data);
    ckks_plaintext_t *pt = NULL;
    if (rc == CKKS_OK) rc = ckks_plaintext_new(ctx, np, &pt);
    if (rc == CKKS_OK) {
        memcpy(pt->data, data, np * ctx->n * 8);
        pt->scale = scale;
        *out = pt;
    }
    ntt_free(data);
    close_top(&top);
    return rc;
}

int ckks_seal_read_secret_key(const ckks_context_t *ctx, const void *buf, size_t len,
                              ckks_secret_key_t **out)
{
    top_t top;
    int rc = open_top(ctx, (void **)out, buf, len, &top);
    if (rc) return rc;
    rd_t body = top.body;
    size_t np;
    double scale;
    uint64_t *data = NULL;
    rc = rd_plaintext_body(&body, ctx, 1, &np, &scale, &data);
    close_top(&top);
    if (rc) return rc;
    ckks_secret_key_t *sk = calloc(1, sizeof *sk);
    if (!sk) {
        sodium_memzero(data, ctx->k * ctx->n * 8);
        ntt_free(data);
        return CKKS_ENOMEM;
    }
    sk->ctx = ctx;
    sk->s = data;
    *out = sk;
    return CKKS_OK;
}

int ckks_seal_read_public_key(const ckks_context_t *ctx, const void *buf, size_t len,
                              ckks_public_key_t **out)
{
    top_t top;
    int rc = open_top(ctx, (void **)out, buf, len, &top);
    if (rc) return rc;
    rd_t body = top.body;
    ct_meta_t m;
    uint64_t *data = NULL;
    rc = rd_ciphertext_body(&body, ctx, 1, &m, &data);
    if (rc == CKKS_OK && body.pos != body.len) rc = CKKS_EFORMAT;
    close_top(&top);
    ckks_public_key_t *pk = rc ? NULL : calloc(1, sizeof *pk);
    if (rc == CKKS_OK && !pk) rc = CKKS_ENOMEM;
    if (rc) {
        ntt_free(data);
        return rc;
    }
    pk->ctx = ctx;
    pk->p = data;
    *out = pk;
    return CKKS_OK;
}

int ckks_seal_read_relin_key(const ckks_context_t *ctx, const void *buf, size_t len,
                             ckks_relin_key_t **out)
{
    top_t top;
    int rc = open_top(ctx, (void **)out, buf, len, &top);
    if (rc) return rc;
    rd_t body = top.body;
    uint32_t *elts = NULL;
    ckks_kswitch_t *keys = NULL;
    size_t count = 0;
    rc = rd_kswitch_body(&body, ctx, 0, &elts, &keys, &count);
    close_top(&top);
    if (rc) return rc;
    ckks_relin_key_t *rk = calloc(1, sizeof *rk);
    if (!rk) {
        ntt_free(keys[0].d);
        free(keys);
        free(elts);
        return CKKS_ENOMEM;
    }
    rk->ctx = ctx;
    rk->key = keys[0];
    free(keys);
    free(elts);
    *out = rk;
    return CKKS_OK;
}

int ckks_seal_read_galois_keys(const ckks_context_t *ctx, const void *buf, size_t len,
                               ckks_galois_keys_t **out)
{
    top_t top;
    int rc = open_top(ctx, (void **)out, buf, len, &top);
    if (rc) return rc;
    rd_t body = top.body;
    ckks_galois_keys_t *gk = calloc(1, sizeof *gk);
    if (!gk) {
        close_top(&top);
        return CKKS_ENOMEM;
    }
    gk->ctx = ctx;
    rc = rd_kswitch_body(&body, ctx, 1, &gk->elts, &gk->keys, &gk->count);
    close_top(&top);
    if (rc) {
        free(gk);
        return rc;
    }
    *out = gk;
    return CKKS_OK;
}

int ckks_seal_identify(const ckks_context_t *ctx, const void *buf, size_t len,
                       ckks_seal_info_t *info)
{
    if (!ctx || !buf || !info) return CKKS_EINVAL;
    memset(info, 0, sizeof *info);
    hdr_t h;
    top_t top;
    int rc = top_body(buf, len, &h, &top.body, &top.owned);
    if (rc) return rc;
    rd_t body = top.body;
    info->version_major = h.major;
    info->version_minor = h.minor;
    info->compression = h.compr;
    info->total_size = h.size;
    /* The layouts differ after parms_id: a ciphertext has a one-byte NTT flag
     * and its DynArray header at offset 73; plaintexts and KSwitchKeys have a
     * u64 then (scale | row length) then a header at offset 48. A row length
     * is tiny, a scale as an integer is huge. */
    uint64_t w32 = 0, w40 = 0;
    if (body.len >= 48) {
        memcpy(&w32, body.p + 32, 8);
        memcpy(&w40, body.p + 40, 8);
    }
    if (body.len < 48) {
        rc = CKKS_EFORMAT;
    } else if (body.len >= 75 && body.p[73] == 0x5E && body.p[74] == 0xA1 && body.p[32] <= 1 &&
               (body.len < 50 || body.p[48] != 0x5E || body.p[49] != 0xA1)) {
        ct_meta_t m;
        uint64_t *data = NULL;
        size_t np;
        memcpy(m.parms_id, body.p, 32);
        np = level_of(ctx, m.parms_id);
        rc = rd_ciphertext_body(&body, ctx, np == ctx->k, &m, &data);
        if (rc == CKKS_OK && body.pos != body.len) rc = CKKS_EFORMAT;
        if (rc == CKKS_OK) {
            info->type = m.np == ctx->k ? CKKS_SEAL_PUBLIC_KEY : CKKS_SEAL_CIPHERTEXT;
            memcpy(info->parms_id, m.parms_id, 32);
            info->nprimes = m.np;
            info->size = m.size;
            info->scale = m.scale;
        }
        ntt_free(data);
    } else if (w40 <= CKKS_MAX_PRIMES) {
        int galois = w32 != 1;
        uint32_t *elts = NULL;
        ckks_kswitch_t *keys = NULL;
        size_t count = 0;
        memcpy(info->parms_id, body.p, 32);
        rc = rd_kswitch_body(&body, ctx, galois, &elts, &keys, &count);
        if (rc == CKKS_OK) {
            info->type = galois ? CKKS_SEAL_GALOIS_KEYS : CKKS_SEAL_RELIN_KEYS;
            info->nprimes = ctx->k;
            info->keys = count;
            for (size_t i = 0; i < count; i++) ntt_free(keys[i].d);
            free(keys);
            free(elts);
        }
    } else {
        uint64_t *data = NULL;
        double scale;
        memcpy(info->parms_id, body.p, 32);
        size_t np = level_of(ctx, info->parms_id);
        rc = rd_plaintext_body(&body, ctx, np == ctx->k, &np, &scale, &data);
        if (rc == CKKS_OK) {
            info->type = np == ctx->k ? CKKS_SEAL_SECRET_KEY : CKKS_SEAL_PLAINTEXT;
            info->nprimes = np;
            info->scale = scale;
            sodium_memzero(data, np * ctx->n * 8);
        }
        ntt_free(data);
    }
    close_top(&top);
    return rc;
}

/* ---- writing ---- */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    int err;
} wr_t;

static void wr_put(wr_t *w, const void *src, size_t n)
{
    if (w->err) return;
    if (n > w->cap - w->len) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap - w->len < n) cap *= 2;
        uint8_t *p = realloc(w->p, cap);
        if (!p) {
            w->err = CKKS_ENOMEM;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void wr_u64(wr_t *w, uint64_t v) { wr_put(w, &v, 8); }

/* Header with size 0, patched by wr_end(start). */
static size_t wr_begin(wr_t *w, int compr)
{
    size_t start = w->len;
    uint8_t b[SEAL_HEADER] = {0x5E, 0xA1, SEAL_HEADER, 4, 1, (uint8_t)compr, 0, 0};
    wr_put(w, b, sizeof b);
    return start;
}

static void wr_end(wr_t *w, size_t start)
{
    if (w->err) return;
    uint64_t size = w->len - start;
    memcpy(w->p + start + 8, &size, 8);
}

static void wr_dynarray(wr_t *w, const uint64_t *data, uint64_t count)
{
    size_t s = wr_begin(w, CKKS_SEAL_COMPR_NONE);
    wr_u64(w, count);
    wr_put(w, data, count * 8);
    wr_end(w, s);
}

/* seal_seed: NULL for a complete ciphertext; else a seeded one (size 2):
 * c0 only, then the UniformRandomGeneratorInfo (blake2xb, the seed). */
static void wr_ciphertext_body(wr_t *w, const ckks_context_t *ctx, size_t np, size_t size,
                               double scale, const uint64_t *data, const uint8_t *seal_seed)
{
    uint64_t pid[4];
    ckks_seal_parms_id(ctx, np, pid);
    wr_put(w, pid, 32);
    uint8_t ntt = 1;
    wr_put(w, &ntt, 1);
    wr_u64(w, size);
    wr_u64(w, ctx->n);
    wr_u64(w, np);
    wr_put(w, &scale, 8);
    wr_u64(w, 1);
    if (!seal_seed) {
        wr_dynarray(w, data, size * np * ctx->n);
        return;
    }
    wr_dynarray(w, data, np * ctx->n);
    size_t s = wr_begin(w, CKKS_SEAL_COMPR_NONE);
    uint8_t type = CKKS_SEAL_PRNG_BLAKE2XB;
    wr_put(w, &type, 1);
    wr_put(w, seal_seed, CKKS_SEAL_SEED_BYTES);
    wr_end(w, s);
}

static void wr_plaintext_body(wr_t *w, const ckks_context_t *ctx, size_t np, double scale,
                              const uint64_t *data)
{
    uint64_t pid[4];
    ckks_seal_parms_id(ctx, np, pid);
    wr_put(w, pid, 32);
    wr_u64(w, np * ctx->n);
    wr_put(w, &scale, 8);
    wr_dynarray(w, data, np * ctx->n);
}

static void wr_kswitch_body(wr_t *w, const ckks_context_t *ctx, const uint32_t *elts,
                            const ckks_kswitch_t *keys, size_t count, int galois)
{
    uint64_t pid[4];
    ckks_seal_parms_id(ctx, ctx->k, pid);
    wr_put(w, pid, 32);
    size_t rows = galois ? ctx->n : 1, digits = ctx->k - 1, key_words = 2 * ctx->k * ctx->n;
    wr_u64(w, rows);
    for (size_t row = 0; row < rows; row++) {
        const ckks_kswitch_t *key = NULL;
        if (!galois)
            key = &keys[0];
        else
            for (size_t i = 0; i < count; i++)
                if (elts[i] == 2 * row + 1) key = &keys[i];
        if (!key) {
            wr_u64(w, 0);
            continue;
        }
        wr_u64(w, digits);
        for (size_t j = 0; j < digits; j++) {
            size_t s = wr_begin(w, CKKS_SEAL_COMPR_NONE);
            wr_ciphertext_body(w, ctx, ctx->k, 2, 1.0, key->d + j * key_words,
                               key->seal_seeds ? key->seal_seeds + j * CKKS_SEAL_SEED_BYTES : NULL);
            wr_end(w, s);
        }
    }
}

/* Wraps a finished uncompressed object (w) into the requested compression. */
static int wr_finish(wr_t *w, int compr, void **buf, size_t *len)
{
    if (w->err) {
        free(w->p);
        return w->err;
    }
    if (compr == CKKS_SEAL_COMPR_NONE) {
        *buf = w->p;
        *len = w->len;
        return CKKS_OK;
    }
    size_t body = w->len - SEAL_HEADER;
    size_t bound = compr == CKKS_SEAL_COMPR_ZLIB ? (size_t)compressBound((uLong)body) : ZSTD_compressBound(body);
    uint8_t *out = malloc(SEAL_HEADER + bound);
    if (!out) {
        sodium_memzero(w->p, w->len);
        free(w->p);
        return CKKS_ENOMEM;
    }
    size_t z = bound;
    int bad;
    if (compr == CKKS_SEAL_COMPR_ZLIB) { /* SEAL: deflate at Z_DEFAULT_COMPRESSION, zlib wrapper */
        uLongf zl = (uLongf)bound;
        bad = compress2(out + SEAL_HEADER, &zl, w->p + SEAL_HEADER, (uLong)body, Z_DEFAULT_COMPRESSION) != Z_OK;
        z = (size_t)zl;
    } else {
        z = ZSTD_compress(out + SEAL_HEADER, bound, w->p + SEAL_HEADER, body, 3);
        bad = ZSTD_isError(z);
    }
    if (bad) {
        sodium_memzero(out, SEAL_HEADER + bound);
        free(out);
        sodium_memzero(w->p, w->len);
        free(w->p);
        return CKKS_ENOMEM;
    }
    memcpy(out, w->p, SEAL_HEADER);
    out[5] = (uint8_t)compr;
    uint64_t total = SEAL_HEADER + z;
    memcpy(out + 8, &total, 8);
    sodium_memzero(w->p, w->len); /* may have held a secret key */
    free(w->p);
    *buf = out;
    *len = total;
    return CKKS_OK;
}

static int check_compr(int compr, void **buf, size_t *len)
{
    if (!buf || !len) return CKKS_EINVAL;
    if (compr != CKKS_SEAL_COMPR_NONE && compr != CKKS_SEAL_COMPR_ZLIB && compr != CKKS_SEAL_COMPR_ZSTD)
        return CKKS_EINVAL;
    return CKKS_OK;
}

/* Is c1 still the expansion of the ciphertext's SEAL seed? (Evaluation
 * in place may have changed it since.) */
static int seal_seed_matches(const ckks_ciphertext_t *ct)
{
    if (!ct->has_seal_seed || ct->size != 2) return 0;
    const size_t words = ct->nprimes * ct->ctx->n;
    uint64_t *a = ntt_alloc(words);
    int same = a && !ckks_seal_expand_uniform(CKKS_SEAL_PRNG_BLAKE2XB, ct->seal_seed, ct->ctx->primes, ct->nprimes,
                                              ct->ctx->n, a) &&
               !memcmp(a, ct->data + words, words * 8);
    ntt_free(a);
    return same;
}

int ckks_seal_write_ciphertext(const ckks_ciphertext_t *ct, int compr, void **buf, size_t *len)
{
    int rc = check_compr(compr, buf, len);
    if (rc) return rc;
    if (!ct) return CKKS_EINVAL;
    wr_t w = {0};
    size_t s = wr_begin(&w, CKKS_SEAL_COMPR_NONE);
    wr_ciphertext_body(&w, ct->ctx, ct->nprimes, ct->size, ct->scale, ct->data,
                       seal_seed_matches(ct) ? ct->seal_seed : NULL);
    wr_end(&w, s);
    return wr_finish(&w, compr, buf, len);
}

int ckks_seal_write_plaintext(const ckks_plaintext_t *pt, int compr, void **buf, size_t *len)
{
    int rc = check_compr(compr, buf, len);
    if (rc) return rc;
    if (!pt) return CKKS_EINVAL;
    wr_t w = {0};
    size_t s = wr_begin(&w, CKKS_SEAL_COMPR_NONE);
    wr_plaintext_body(&w, pt->ctx, pt->nprimes, pt->scale, pt->data);
    wr_end(&w, s);
    return wr_finish(&w, compr, buf, len);
}

int ckks_seal_write_secret_key(const ckks_secret_key_t *sk, int compr, void **buf, size_t *len)
{
    int rc = check_compr(compr, buf, len);
    if (rc) return rc;
    if (!sk) return CKKS_EINVAL;
    wr_t w = {0};
    size_t s = wr_begin(&w, CKKS_SEAL_COMPR_NONE);
    wr_plaintext_body(&w, sk->ctx, sk->ctx->k, 1.0, sk->s);
    wr_end(&w, s);
    return wr_finish(&w, compr, buf, len);
}

int ckks_seal_write_public_key(const ckks_public_key_t *pk, int compr, void **buf, size_t *len)
{
    int rc = check_compr(compr, buf, len);
    if (rc) return rc;
    if (!pk) return CKKS_EINVAL;
    wr_t w = {0};
    size_t s = wr_begin(&w, CKKS_SEAL_COMPR_NONE);
    wr_ciphertext_body(&w, pk->ctx, pk->ctx->k, 2, 1.0, pk->p, pk->seal_seed);
    wr_end(&w, s);
    return wr_finish(&w, compr, buf, len);
}

int ckks_seal_write_relin_key(const ckks_relin_key_t *rk, int compr, void **buf, size_t *len)
{
    int rc = check_compr(compr, buf, len);
    if (rc) return rc;
    if (!rk) return CKKS_EINVAL;
    if (rk->hyb) return CKKS_EUNSUPPORTED; /* SEAL has no hybrid keys */
    wr_t w = {0};
    size_t s = wr_begin(&w, CKKS_SEAL_COMPR_NONE);
    wr_kswitch_body(&w, rk->ctx, NULL, &rk->key, 1, 0);
    wr_end(&w, s);
    return wr_finish(&w, compr, buf, len);
}

int ckks_seal_write_galois_keys(const ckks_galois_keys_t *gk, int compr, void **buf, size_t *len)
{
    int rc = check_compr(compr, buf, len);
    if (rc) return rc;
    if (!gk) return CKKS_EINVAL;
    if (gk->hyb) return CKKS_EUNSUPPORTED;
    for (size_t i = 0; i < gk->count; i++)
        if (gk->keys[i].limit) return CKKS_EUNSUPPORTED; /* SEAL's keys have every digit */
    wr_t w = {0};
    size_t s = wr_begin(&w, CKKS_SEAL_COMPR_NONE);
    wr_kswitch_body(&w, gk->ctx, gk->elts, gk->keys, gk->count, 1);
    wr_end(&w, s);
    return wr_finish(&w, compr, buf, len);
}
