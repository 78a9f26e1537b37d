/*
 * hestat's own file format (docs/format.md). Header, little-endian:
 *   0  8  magic "HESTAT\r\n"
 *   8  2  format version (1)
 *  10  2  object type (ckks_obj_type_t)
 *  12  4  flags (bit 0: compact ciphertext or key-switching keys)
 *  16  8  XXH3-64 of the canonical parameter encoding
 *  24  8  payload length in bytes
 *  32  8  XXH3-64 of the payload
 *  40  8  reserved, 0
 * Payloads (words are u64, arrays prime-major, NTT form):
 *   params:      "hestat-ckks-params\0" padded to 24 bytes | N | count | primes
 *   secret key:  k*N words            public key: 2*k*N words
 *   relin key:   (k-1)*2*k*N words
 *   galois keys: count | count elements | count*(k-1)*2*k*N words
 *                compact (keys made by ckks_*_new_seeded): each key-switching
 *                key as (k-1) x (b_j: k*N words | 64-byte seed of a_j), a_j
 *                being SEAL's BLAKE2Xb expansion of the seed (half the size)
 *                levels (flag 4, packed only): count | count elements | count
 *                primes L_i | each key as L_i digits over primes 0 .. L_i-1
 *                and the special prime (ckks_galois_keys_limit)
 *   plaintext:   nprimes | scale (f64) | nprimes*N words
 *   ciphertext:  size | nprimes | scale | size*nprimes*N words
 *                compact: 2 | nprimes | scale | nprimes*N words (c0) | 32-byte seed
 *                packed (flag 2, with or without compact): the same with each
 *                prime's N words as N b_i-bit fields, b_i the bit length of
 *                q_i - 1, least significant bit first (every block a whole
 *                number of bytes, since 8 divides N)
 * Every length is computed from the context and checked before anything is
 * allocated; coefficients must be below their primes.
 */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ckks_impl.h"

static const unsigned char MAGIC[8] = {'H', 'E', 'S', 'T', 'A', 'T', '\r', '\n'};
static const char PARAMS_TAG[24] = "hestat-ckks-params";

/* ---- canonical parameters ---- */
static size_t params_encoding(size_t n, size_t count, const uint64_t *primes, uint8_t *out)
{
    size_t len = 24 + 16 + 8 * count;
    if (out) {
        memcpy(out, PARAMS_TAG, 24);
        uint64_t v = n;
        memcpy(out + 24, &v, 8);
        v = count;
        memcpy(out + 32, &v, 8);
        memcpy(out + 40, primes, 8 * count);
    }
    return len;
}

uint64_t ckks_params_hash(const ckks_context_t *ctx)
{
    uint8_t enc[24 + 16 + 8 * CKKS_MAX_PRIMES];
    size_t len = params_encoding(ctx->n, ctx->k, ctx->primes, enc);
    return XXH3_64bits(enc, len);
}

/* ---- framing ---- */
typedef struct {
    uint16_t version, type;
    uint32_t flags;
    uint64_t params_hash, length, checksum;
    const uint8_t *payload;
} frame_t;

static int parse_frame(const void *buf, size_t len, frame_t *f)
{
    if (!buf) return CKKS_EINVAL;
    const uint8_t *p = buf;
    if (len < CKKS_HEADER_BYTES || memcmp(p, MAGIC, 8)) return CKKS_EFORMAT;
    uint64_t reserved;
    memcpy(&f->version, p + 8, 2);
    memcpy(&f->type, p + 10, 2);
    memcpy(&f->flags, p + 12, 4);
    memcpy(&f->params_hash, p + 16, 8);
    memcpy(&f->length, p + 24, 8);
    memcpy(&f->checksum, p + 32, 8);
    memcpy(&reserved, p + 40, 8);
    if (f->version != CKKS_FORMAT_VERSION) return CKKS_EUNSUPPORTED;
    if (reserved || f->type < CKKS_OBJ_PARAMS ||
        (f->type > CKKS_OBJ_MP_SHARE && f->type < CKKS_OBJ_USER_MIN))
        return CKKS_EFORMAT;
    const int packable = f->type == CKKS_OBJ_CIPHERTEXT || f->type == CKKS_OBJ_PUBLIC_KEY ||
                         f->type == CKKS_OBJ_RELIN_KEY || f->type == CKKS_OBJ_GALOIS_KEYS ||
                         f->type == CKKS_OBJ_MP_SHARE;
    uint32_t allowed = (f->type == CKKS_OBJ_MP_SHARE ? 0 : CKKS_FLAG_COMPACT) | (packable ? CKKS_FLAG_PACKED : 0) |
                       (f->type == CKKS_OBJ_GALOIS_KEYS ? CKKS_FLAG_LEVELS : 0);
    if (f->flags & ~allowed) return CKKS_EFORMAT;
    if (f->length != len - CKKS_HEADER_BYTES) return CKKS_EFORMAT; /* truncated or trailing */
    f->payload = p + CKKS_HEADER_BYTES;
    if (XXH3_64bits(f->payload, f->length) != f->checksum) return CKKS_EFORMAT;
    return CKKS_OK;
}

int ckks_object_type(const void *buf, size_t len, ckks_obj_type_t *type)
{
    if (!type) return CKKS_EINVAL;
    frame_t f;
    int rc = parse_frame(buf, len, &f);
    if (rc == CKKS_OK) *type = (ckks_obj_type_t)f.type;
    return rc;
}

/* Header + payload in one allocation; payload filled by the caller. */
static uint8_t *new_frame(uint16_t type, uint32_t flags, uint64_t hash, size_t payload_len,
                          size_t *total)
{
    *total = CKKS_HEADER_BYTES + payload_len;
    uint8_t *p = malloc(*total);
    if (!p) return NULL;
    uint16_t version = CKKS_FORMAT_VERSION;
    uint64_t len64 = payload_len, zero = 0;
    memcpy(p, MAGIC, 8);
    memcpy(p + 8, &version, 2);
    memcpy(p + 10, &type, 2);
    memcpy(p + 12, &flags, 4);
    memcpy(p + 16, &hash, 8);
    memcpy(p + 24, &len64, 8);
    memcpy(p + 40, &zero, 8);
    return p;
}

static void seal_frame(uint8_t *p, size_t payload_len)
{
    uint64_t sum = XXH3_64bits(p + CKKS_HEADER_BYTES, payload_len);
    memcpy(p + 32, &sum, 8);
}

/* Frame of `type` for this context: hash checked. */
static int open_frame(const ckks_context_t *ctx, const void *buf, size_t len, uint16_t type,
                      frame_t *f)
{
    if (!ctx) return CKKS_EINVAL;
    int rc = parse_frame(buf, len, f);
    if (rc) return rc;
    if (f->type != type) return CKKS_EFORMAT;
    if (f->params_hash != ckks_params_hash(ctx)) return CKKS_ECONTEXT;
    return CKKS_OK;
}

/* Copies `count` words of np-prime polynomials, checking each is below its prime. */
static int take_words(const ckks_context_t *ctx, const uint8_t *src, size_t np, size_t count,
                      uint64_t *dst)
{
    memcpy(dst, src, count * 8);
    for (size_t w = 0; w < count; w++)
        if (dst[w] >= ctx->primes[(w / ctx->n) % np]) return CKKS_EFORMAT;
    return CKKS_OK;
}

/* ---- params ---- */
int ckks_write_params(const ckks_context_t *ctx, void **buf, size_t *len)
{
    if (!ctx || !buf || !len) return CKKS_EINVAL;
    size_t plen = params_encoding(ctx->n, ctx->k, ctx->primes, NULL), total;
    uint8_t *p = new_frame(CKKS_OBJ_PARAMS, 0, ckks_params_hash(ctx), plen, &total);
    if (!p) return CKKS_ENOMEM;
    params_encoding(ctx->n, ctx->k, ctx->primes, p + CKKS_HEADER_BYTES);
    seal_frame(p, plen);
    *buf = p;
    *len = total;
    return CKKS_OK;
}

int ckks_read_params(const void *buf, size_t len, ckks_params_t *out)
{
    if (!out) return CKKS_EINVAL;
    frame_t f;
    int rc = parse_frame(buf, len, &f);
    if (rc) return rc;
    if (f.type != CKKS_OBJ_PARAMS || f.length < 40) return CKKS_EFORMAT;
    uint64_t n, count;
    memcpy(&n, f.payload + 24, 8);
    memcpy(&count, f.payload + 32, 8);
    if (memcmp(f.payload, PARAMS_TAG, 24) || count < 2 || count > CKKS_MAX_PRIMES ||
        f.length != 40 + 8 * count)
        return CKKS_EFORMAT;
    if (XXH3_64bits(f.payload, f.length) != f.params_hash) return CKKS_EFORMAT;
    memset(out, 0, sizeof *out);
    out->n = n;
    out->count = count;
    memcpy(out->primes, f.payload + 40, 8 * count);
    return CKKS_OK; /* ckks_context_new validates the values themselves */
}

/* ---- plaintext / ciphertext ---- */
static int check_scale(const ckks_context_t *ctx, double scale, size_t np)
{
    return isfinite(scale) && scale > 0 && log2(scale) < ctx->crt[np].bits ? CKKS_OK : CKKS_ESCALE;
}

int ckks_write_plaintext(const ckks_plaintext_t *pt, void **buf, size_t *len)
{
    if (!pt || !buf || !len) return CKKS_EINVAL;
    const ckks_context_t *ctx = pt->ctx;
    size_t words = pt->nprimes * ctx->n, plen = 16 + words * 8, total;
    uint8_t *p = new_frame(CKKS_OBJ_PLAINTEXT, 0, ckks_params_hash(ctx), plen, &total);
    if (!p) return CKKS_ENOMEM;
    uint64_t np = pt->nprimes;
    memcpy(p + 48, &np, 8);
    memcpy(p + 56, &pt->scale, 8);
    memcpy(p + 64, pt->data, words * 8);
    seal_frame(p, plen);
    *buf = p;
    *len = total;
    return CKKS_OK;
}

int ckks_read_plaintext(const ckks_context_t *ctx, const void *buf, size_t len,
                        ckks_plaintext_t **out)
{
    if (!out) return CKKS_EINVAL;
    *out = NULL;
    frame_t f;
    int rc = open_frame(ctx, buf, len, CKKS_OBJ_PLAINTEXT, &f);
    if (rc) return rc;
    if (f.flags || f.length < 16) return CKKS_EFORMAT;
    uint64_t np;
    double scale;
    memcpy(&np, f.payload, 8);
    memcpy(&scale, f.payload + 8, 8);
    if (np == 0 || np >= ctx->k) return CKKS_ELEVEL;
    if (f.length != 16 + np * ctx->n * 8) return CKKS_EFORMAT;
    if ((rc = check_scale(ctx, scale, np))) return rc;
    ckks_plaintext_t *pt;
    if ((rc = ckks_plaintext_new(ctx, np, &pt))) return rc;
    rc = take_words(ctx, f.payload + 16, np, np * ctx->n, pt->data);
    if (rc) {
        ckks_plaintext_free(pt);
        return rc;
    }
    pt->scale = scale;
    *out = pt;
    return CKKS_OK;
}

/* Does c1 still equal the expansion of the ciphertext's seed? */
static int seed_matches(const ckks_ciphertext_t *ct)
{
    if (!ct->has_seed || ct->size != 2) return 0;
    const ckks_context_t *ctx = ct->ctx;
    size_t words = ct->nprimes * ctx->n;
    uint64_t *a = ntt_alloc(words);
    if (!a) return 0;
    ckks_expand_seed(ctx, ct->seed, ct->nprimes, a);
    int same = memcmp(a, ct->data + words, words * 8) == 0;
    ntt_free(a);
    return same;
}

/* Bit width of prime i's words. */
static unsigned prime_bits(const ckks_context_t *ctx, size_t i)
{
    return 64 - (unsigned)__builtin_clzll(ctx->primes[i] - 1);
}

/* Bytes of `polys` np-prime polynomials, packed or as words. */
static size_t poly_bytes(const ckks_context_t *ctx, size_t polys, size_t np, int packed)
{
    size_t bits = 0;
    for (size_t i = 0; i < np; i++) bits += packed ? prime_bits(ctx, i) : 64;
    return polys * bits * ctx->n / 8;
}

/* Prime i's N words as prime_bits(i) fields, eight bytes stored at a time
 * (the block is whole bytes: N b is a multiple of 8); returns the bytes. */
static size_t pack_row(const ckks_context_t *ctx, size_t i, const uint64_t *w, uint8_t *dst)
{
    const unsigned b = prime_bits(ctx, i);
    uint8_t *const start = dst;
    uint64_t acc = 0;
    unsigned have = 0; /* bits in acc, < 64 */
    for (size_t j = 0; j < ctx->n; j++) {
        acc |= w[j] << have;
        if (have + b < 64) {
            have += b;
            continue;
        }
        memcpy(dst, &acc, 8);
        dst += 8;
        acc = have ? w[j] >> (64 - have) : 0;
        have = have + b - 64;
    }
    for (; have; have -= 8, acc >>= 8) *dst++ = (uint8_t)acc;
    return (size_t)(dst - start);
}

/* Words j0 .. j1 - 1 of a block of b-bit fields (see unpack_row), each one
 * or two unaligned 8-byte loads from bit j b; the loads must stay inside
 * the block. Returns non-zero when a word is not below q. Inlined with b a
 * constant for the common widths, so that shifts and offsets fold. */
static inline uint64_t unpack_fields(const uint8_t *src, uint64_t *w, size_t j0, size_t j1, unsigned b, uint64_t q)
{
    const uint64_t mask = b == 64 ? ~0ull : (1ull << b) - 1;
    uint64_t bad = 0;
    for (size_t j = j0; j < j1; j++) {
        const size_t bit = j * b;
        const unsigned sh = bit & 7;
        uint64_t lo, x;
        memcpy(&lo, src + (bit >> 3), 8);
        x = lo >> sh;
        if (b > 57) {
            uint64_t hi;
            memcpy(&hi, src + (bit >> 3) + 8, 8);
            x |= hi << 1 << (63 - sh); /* sh = 0: nothing of hi */
        }
        x &= mask;
        w[j] = x;
        bad |= (uint64_t)(x >= q);
    }
    return bad;
}

/* The inverse of pack_row, each word checked below prime i. Word j is the
 * b bits from bit j b of the block: one unaligned 8-byte load holds them
 * when b <= 57 (at most 7 bits of shift), two loads when wider, so the
 * words are read independently of each other (1.7x the shift chain this
 * replaced); the last words, whose loads would run past the block, are put
 * together byte by byte. */
static int unpack_row(const ckks_context_t *ctx, size_t i, const uint8_t *src, uint64_t *w)
{
    const unsigned b = prime_bits(ctx, i);
    const uint64_t mask = b == 64 ? ~0ull : (1ull << b) - 1, q = ctx->primes[i];
    const size_t n = ctx->n, len = n * b / 8, reach = b <= 57 ? 8 : 16;
    /* Words whose loads stay inside the block: below (len - reach) * 8 / b + 1. */
    size_t safe = len >= reach ? ((len - reach) * 8) / b + 1 : 0;
    if (safe > n) safe = n;
    uint64_t bad;
    switch (b) {
    case 40: bad = unpack_fields(src, w, 0, safe, 40, q); break;
    case 50: bad = unpack_fields(src, w, 0, safe, 50, q); break;
    case 60: bad = unpack_fields(src, w, 0, safe, 60, q); break;
    default: bad = unpack_fields(src, w, 0, safe, b, q); break;
    }
    for (size_t j = safe; j < n; j++) {
        const size_t bit = j * b, last = (bit + b - 1) >> 3;
        unsigned __int128 acc = 0;
        for (size_t byte = bit >> 3; byte <= last; byte++)
            acc |= (unsigned __int128)src[byte] << (8 * (byte - (bit >> 3)));
        const uint64_t x = (uint64_t)(acc >> (bit & 7)) & mask;
        w[j] = x;
        bad |= (uint64_t)(x >= q);
    }
    return bad ? CKKS_EFORMAT : CKKS_OK;
}

/* Each prime's N words of `polys` np-prime polynomials (pack_row). */
static void pack_words(const ckks_context_t *ctx, const uint64_t *src, size_t polys, size_t np, uint8_t *dst)
{
    for (size_t p = 0; p < polys; p++)
        for (size_t i = 0; i < np; i++) dst += pack_row(ctx, i, src + (p * np + i) * ctx->n, dst);
}

static int unpack_words(const ckks_context_t *ctx, const uint8_t *src, size_t polys, size_t np, uint64_t *dst)
{
    for (size_t p = 0; p < polys; p++)
        for (size_t i = 0; i < np; i++) {
            int rc = unpack_row(ctx, i, src, dst + (p * np + i) * ctx->n);
            if (rc) return rc;
            src += ctx->n * prime_bits(ctx, i) / 8;
        }
    return CKKS_OK;
}

int ckks_write_ciphertext(const ckks_ciphertext_t *ct, int flags, void **buf, size_t *len)
{
    if (!ct || !buf || !len || (flags & ~(int)(CKKS_FLAG_COMPACT | CKKS_FLAG_PACKED))) return CKKS_EINVAL;
    const ckks_context_t *ctx = ct->ctx;
    size_t words = ct->nprimes * ctx->n;
    int use_seed = (flags & CKKS_FLAG_COMPACT) && seed_matches(ct), packed = (flags & CKKS_FLAG_PACKED) != 0;
    size_t polys = use_seed ? 1 : ct->size, data_bytes = poly_bytes(ctx, polys, ct->nprimes, packed);
    size_t plen = 24 + data_bytes + (use_seed ? 32 : 0), total;
    uint8_t *p = new_frame(CKKS_OBJ_CIPHERTEXT, (use_seed ? CKKS_FLAG_COMPACT : 0) | (packed ? CKKS_FLAG_PACKED : 0),
                           ckks_params_hash(ctx), plen, &total);
    if (!p) return CKKS_ENOMEM;
    uint64_t size = ct->size, np = ct->nprimes;
    memcpy(p + 48, &size, 8);
    memcpy(p + 56, &np, 8);
    memcpy(p + 64, &ct->scale, 8);
    if (packed) pack_words(ctx, ct->data, polys, ct->nprimes, p + 72);
    else memcpy(p + 72, ct->data, polys * words * 8);
    if (use_seed) memcpy(p + 72 + data_bytes, ct->seed, 32);
    seal_frame(p, plen);
    *buf = p;
    *len = total;
    return CKKS_OK;
}

int ckks_read_ciphertext(const ckks_context_t *ctx, const void *buf, size_t len,
                         ckks_ciphertext_t **out)
{
    if (!out) return CKKS_EINVAL;
    *out = NULL;
    frame_t f;
    int rc = open_frame(ctx, buf, len, CKKS_OBJ_CIPHERTEXT, &f);
    if (rc) return rc;
    if (f.length < 24) return CKKS_EFORMAT;
    uint64_t size, np;
    double scale;
    memcpy(&size, f.payload, 8);
    memcpy(&np, f.payload + 8, 8);
    memcpy(&scale, f.payload + 16, 8);
    int compact = f.flags & CKKS_FLAG_COMPACT, packed = (f.flags & CKKS_FLAG_PACKED) != 0;
    if (size < 2 || size > 3 || (compact && size != 2)) return CKKS_ESIZE;
    if (np == 0 || np >= ctx->k) return CKKS_ELEVEL;
    uint64_t words = np * ctx->n, polys = compact ? 1 : size, data_bytes = poly_bytes(ctx, polys, np, packed);
    if (f.length != 24 + data_bytes + (compact ? 32 : 0)) return CKKS_EFORMAT;
    if ((rc = check_scale(ctx, scale, np))) return rc;
    ckks_ciphertext_t *ct;
    if ((rc = ckks_ciphertext_new(ctx, size, np, &ct))) return rc;
    rc = packed ? unpack_words(ctx, f.payload + 24, polys, np, ct->data)
                : take_words(ctx, f.payload + 24, np, polys * words, ct->data);
    if (rc == CKKS_OK && compact) {
        memcpy(ct->seed, f.payload + 24 + data_bytes, 32);
        ct->has_seed = 1;
        ckks_expand_seed(ctx, ct->seed, np, ct->data + words);
    }
    if (rc) {
        ckks_ciphertext_free(ct);
        return rc;
    }
    ct->scale = scale;
    *out = ct;
    return CKKS_OK;
}

/* ---- keys ---- */
static int write_words(const ckks_context_t *ctx, uint16_t type, const uint64_t *data,
                       size_t words, int packed, void **buf, size_t *len)
{
    const size_t polys = words / (ctx->k * ctx->n);
    size_t plen = packed ? poly_bytes(ctx, polys, ctx->k, 1) : words * 8, total;
    uint8_t *p = new_frame(type, packed ? CKKS_FLAG_PACKED : 0, ckks_params_hash(ctx), plen, &total);
    if (!p) return CKKS_ENOMEM;
    if (packed) pack_words(ctx, data, polys, ctx->k, p + CKKS_HEADER_BYTES);
    else memcpy(p + CKKS_HEADER_BYTES, data, plen);
    seal_frame(p, plen);
    *buf = p;
    *len = total;
    return CKKS_OK;
}

/* Reads exactly `words` words of k-prime polynomials into a new buffer. */
static int read_words(const ckks_context_t *ctx, const void *buf, size_t len, uint16_t type,
                      size_t words, uint64_t **out)
{
    frame_t f;
    int rc = open_frame(ctx, buf, len, type, &f);
    if (rc) return rc;
    const int packed = f.flags == CKKS_FLAG_PACKED;
    const size_t polys = words / (ctx->k * ctx->n);
    if ((f.flags && !packed) || f.length != (packed ? poly_bytes(ctx, polys, ctx->k, 1) : words * 8))
        return CKKS_EFORMAT;
    uint64_t *d = ntt_alloc(words);
    if (!d) return CKKS_ENOMEM;
    rc = packed ? unpack_words(ctx, f.payload, polys, ctx->k, d) : take_words(ctx, f.payload, ctx->k, words, d);
    if (rc) {
        sodium_memzero(d, words * 8);
        ntt_free(d);
        return rc;
    }
    *out = d;
    return CKKS_OK;
}

int ckks_write_secret_key(const ckks_secret_key_t *sk, void **buf, size_t *len)
{
    if (!sk || !buf || !len) return CKKS_EINVAL;
    return write_words(sk->ctx, CKKS_OBJ_SECRET_KEY, sk->s, sk->ctx->k * sk->ctx->n, 0, buf, len);
}

int ckks_read_secret_key(const ckks_context_t *ctx, const void *buf, size_t len,
                         ckks_secret_key_t **out)
{
    if (!ctx || !out) return CKKS_EINVAL;
    *out = NULL;
    uint64_t *d;
    int rc = read_words(ctx, buf, len, CKKS_OBJ_SECRET_KEY, ctx->k * ctx->n, &d);
    if (rc) return rc;
    ckks_secret_key_t *sk = calloc(1, sizeof *sk);
    if (!sk) {
        sodium_memzero(d, ctx->k * ctx->n * 8);
        ntt_free(d);
        return CKKS_ENOMEM;
    }
    sk->ctx = ctx;
    sk->s = d;
    *out = sk;
    return CKKS_OK;
}

/* A public key made seeded (ckks_public_key_new_seeded) is written compact:
 * b packed, then the 64-byte seed whose SEAL expansion (blake2xb, over all
 * k primes) is a; half the bytes. Others are written whole (packed). */
int ckks_write_public_key(const ckks_public_key_t *pk, void **buf, size_t *len)
{
    if (!pk || !buf || !len) return CKKS_EINVAL;
    const ckks_context_t *ctx = pk->ctx;
    if (!pk->seal_seed) return write_words(ctx, CKKS_OBJ_PUBLIC_KEY, pk->p, 2 * ctx->k * ctx->n, 1, buf, len);
    const size_t pb = poly_bytes(ctx, 1, ctx->k, 1), plen = pb + CKKS_SEAL_SEED_BYTES;
    size_t total;
    uint8_t *p = new_frame(CKKS_OBJ_PUBLIC_KEY, CKKS_FLAG_COMPACT | CKKS_FLAG_PACKED, ckks_params_hash(ctx), plen,
                           &total);
    if (!p) return CKKS_ENOMEM;
    pack_words(ctx, pk->p, 1, ctx->k, p + CKKS_HEADER_BYTES);
    memcpy(p + CKKS_HEADER_BYTES + pb, pk->seal_seed, CKKS_SEAL_SEED_BYTES);
    seal_frame(p, plen);
    *buf = p;
    *len = total;
    return CKKS_OK;
}

int ckks_read_public_key(const ckks_context_t *ctx, const void *buf, size_t len,
                         ckks_public_key_t **out)
{
    if (!ctx || !out) return CKKS_EINVAL;
    *out = NULL;
    uint64_t *d = NULL;
    uint8_t *seed = NULL;
    frame_t f;
    int rc = open_frame(ctx, buf, len, CKKS_OBJ_PUBLIC_KEY, &f);
    if (rc) return rc;
    if (f.flags & CKKS_FLAG_COMPACT) {
        const size_t pb = poly_bytes(ctx, 1, ctx->k, 1), poly = ctx->k * ctx->n;
        if (f.flags != (CKKS_FLAG_COMPACT | CKKS_FLAG_PACKED) || f.length != pb + CKKS_SEAL_SEED_BYTES)
            return CKKS_EFORMAT;
        d = ntt_alloc(2 * poly);
        seed = malloc(CKKS_SEAL_SEED_BYTES);
        rc = d && seed ? unpack_words(ctx, f.payload, 1, ctx->k, d) : CKKS_ENOMEM;
        if (rc == CKKS_OK) {
            memcpy(seed, f.payload + pb, CKKS_SEAL_SEED_BYTES);
            rc = ckks_seal_expand_uniform(CKKS_SEAL_PRNG_BLAKE2XB, seed, ctx->primes, ctx->k, ctx->n, d + poly);
        }
    } else {
        rc = read_words(ctx, buf, len, CKKS_OBJ_PUBLIC_KEY, 2 * ctx->k * ctx->n, &d);
    }
    ckks_public_key_t *pk = rc ? NULL : calloc(1, sizeof *pk);
    if (!pk) {
        ntt_free(d);
        free(seed);
        return rc ? rc : CKKS_ENOMEM;
    }
    pk->ctx = ctx;
    pk->p = d;
    pk->seal_seed = seed;
    *out = pk;
    return CKKS_OK;
}

/* A key-switching key serving L data primes (L = k - 1: a whole key;
 * ckks_galois_keys_limit) in a file: L digits, each b_j (and a_j unless
 * compact) as the rows of primes 0 .. L-1 and of the special prime, packed at
 * the primes' widths or (files of before the packed form) as 64-bit words,
 * then (compact) the 64-byte seed of a_j. For a whole key these rows are
 * every prime in order: the layout that predates limited keys. */
static size_t kswitch_bytes(const ckks_context_t *ctx, int compact, int packed, size_t L)
{
    const size_t row = poly_bytes(ctx, 1, L, packed) + (packed ? ctx->n * prime_bits(ctx, ctx->k - 1) / 8 : ctx->n * 8);
    return L * (compact ? row + CKKS_SEAL_SEED_BYTES : 2 * row);
}

/* Written packed, always. */
static void put_kswitch(const ckks_context_t *ctx, const ckks_kswitch_t *key, int compact, size_t L, uint8_t *q)
{
    const size_t k = ctx->k, n = ctx->n;
    for (size_t j = 0; j < L; j++) {
        for (size_t c = 0; c < (compact ? 1u : 2u); c++) {
            const uint64_t *poly = key->d + (j * 2 + c) * k * n;
            for (size_t i = 0; i < L; i++) q += pack_row(ctx, i, poly + i * n, q);
            q += pack_row(ctx, k - 1, poly + (k - 1) * n, q);
        }
        if (compact) {
            memcpy(q, key->seal_seeds + j * CKKS_SEAL_SEED_BYTES, CKKS_SEAL_SEED_BYTES);
            q += CKKS_SEAL_SEED_BYTES;
        }
    }
}

/* One key from q (kswitch_bytes(ctx, compact, packed, L) bytes), every word
 * checked below its prime; a compact one keeps its seeds, so it is written
 * compact again, and each a_j is SEAL's expansion of its seed. */
static int get_kswitch(const ckks_context_t *ctx, const uint8_t *q, int compact, int packed, size_t L,
                       ckks_kswitch_t *key)
{
    const size_t k = ctx->k, n = ctx->n, poly = k * n;
    key->d = ntt_alloc(L * 2 * poly); /* zeroed: rows L .. k-2 of a limited key stay 0 */
    key->seal_seeds = compact ? calloc(k - 1, CKKS_SEAL_SEED_BYTES) : NULL;
    key->limit = L < k - 1 ? L : 0;
    if (!key->d || (compact && !key->seal_seeds)) return CKKS_ENOMEM;
    int rc = CKKS_OK;
    for (size_t j = 0; j < L && rc == CKKS_OK; j++) {
        for (size_t c = 0; c < (compact ? 1u : 2u) && rc == CKKS_OK; c++) {
            uint64_t *dst = key->d + (j * 2 + c) * poly;
            for (size_t i = 0; i <= L && rc == CKKS_OK; i++) {
                const size_t row = i < L ? i : k - 1;
                if (packed) {
                    rc = unpack_row(ctx, row, q, dst + row * n);
                    q += n * prime_bits(ctx, row) / 8;
                } else {
                    memcpy(dst + row * n, q, n * 8);
                    for (size_t t = 0; t < n && rc == CKKS_OK; t++)
                        if (dst[row * n + t] >= ctx->primes[row]) rc = CKKS_EFORMAT;
                    q += n * 8;
                }
            }
        }
        if (rc || !compact) continue;
        memcpy(key->seal_seeds + j * CKKS_SEAL_SEED_BYTES, q, CKKS_SEAL_SEED_BYTES);
        uint64_t *a = key->d + (j * 2 + 1) * poly;
        rc = ckks_seal_expand_uniform(CKKS_SEAL_PRNG_BLAKE2XB, q, ctx->primes, k, n, a);
        if (rc == CKKS_OK && L < k - 1) memset(a + L * n, 0, (k - 1 - L) * n * sizeof *a);
        q += CKKS_SEAL_SEED_BYTES;
    }
    return rc;
}

int ckks_write_relin_key(const ckks_relin_key_t *rk, void **buf, size_t *len)
{
    if (!rk || !buf || !len) return CKKS_EINVAL;
    if (rk->hyb) return CKKS_EUNSUPPORTED; /* hybrid keys have no file format */
    const ckks_context_t *ctx = rk->ctx;
    int compact = rk->key.seal_seeds != NULL;
    size_t plen = kswitch_bytes(ctx, compact, 1, ctx->k - 1), total;
    uint8_t *p = new_frame(CKKS_OBJ_RELIN_KEY, (compact ? CKKS_FLAG_COMPACT : 0) | CKKS_FLAG_PACKED,
                           ckks_params_hash(ctx), plen, &total);
    if (!p) return CKKS_ENOMEM;
    put_kswitch(ctx, &rk->key, compact, ctx->k - 1, p + CKKS_HEADER_BYTES);
    seal_frame(p, plen);
    *buf = p;
    *len = total;
    return CKKS_OK;
}

int ckks_read_relin_key(const ckks_context_t *ctx, const void *buf, size_t len,
                        ckks_relin_key_t **out)
{
    if (!ctx || !out) return CKKS_EINVAL;
    *out = NULL;
    frame_t f;
    int rc = open_frame(ctx, buf, len, CKKS_OBJ_RELIN_KEY, &f);
    if (rc) return rc;
    int compact = (f.flags & CKKS_FLAG_COMPACT) != 0, packed = (f.flags & CKKS_FLAG_PACKED) != 0;
    if (f.length != kswitch_bytes(ctx, compact, packed, ctx->k - 1)) return CKKS_EFORMAT;
    ckks_relin_key_t *rk = calloc(1, sizeof *rk);
    if (!rk) return CKKS_ENOMEM;
    rk->ctx = ctx;
    rc = get_kswitch(ctx, f.payload, compact, packed, ctx->k - 1, &rk->key);
    if (rc) {
        ckks_relin_key_free(rk);
        return rc;
    }
    *out = rk;
    return CKKS_OK;
}

/* Payload: u64 count | count x u64 elements | (CKKS_FLAG_LEVELS: count x
 * u64 primes, 1 .. k-1) | count keys (put_kswitch). Keys none of which is
 * limited are written without the flag, as before it existed. */
int ckks_write_galois_keys(const ckks_galois_keys_t *gk, void **buf, size_t *len)
{
    if (!gk || !buf || !len) return CKKS_EINVAL;
    if (gk->hyb) return CKKS_EUNSUPPORTED;
    const ckks_context_t *ctx = gk->ctx;
    int compact = gk->count > 0, levels = 0;
    for (size_t i = 0; i < gk->count; i++) {
        compact &= gk->keys[i].seal_seeds != NULL;
        levels |= gk->keys[i].limit != 0;
    }
    size_t head = 8 + 8 * gk->count * (levels ? 2 : 1), plen = head, total;
    for (size_t i = 0; i < gk->count; i++) plen += kswitch_bytes(ctx, compact, 1, ckks_kswitch_primes(ctx, &gk->keys[i]));
    uint8_t *p = new_frame(CKKS_OBJ_GALOIS_KEYS,
                           (compact ? CKKS_FLAG_COMPACT : 0) | CKKS_FLAG_PACKED | (levels ? CKKS_FLAG_LEVELS : 0),
                           ckks_params_hash(ctx), plen, &total);
    if (!p) return CKKS_ENOMEM;
    uint8_t *q = p + CKKS_HEADER_BYTES, *kq = q + head;
    uint64_t count = gk->count;
    memcpy(q, &count, 8);
    for (size_t i = 0; i < gk->count; i++) {
        uint64_t e = gk->elts[i], L = ckks_kswitch_primes(ctx, &gk->keys[i]);
        memcpy(q + 8 + 8 * i, &e, 8);
        if (levels) memcpy(q + 8 + 8 * (gk->count + i), &L, 8);
        put_kswitch(ctx, &gk->keys[i], compact, L, kq);
        kq += kswitch_bytes(ctx, compact, 1, L);
    }
    seal_frame(p, plen);
    *buf = p;
    *len = total;
    return CKKS_OK;
}

int ckks_read_galois_keys(const ckks_context_t *ctx, const void *buf, size_t len,
                          ckks_galois_keys_t **out)
{
    if (!ctx || !out) return CKKS_EINVAL;
    *out = NULL;
    frame_t f;
    int rc = open_frame(ctx, buf, len, CKKS_OBJ_GALOIS_KEYS, &f);
    if (rc) return rc;
    int compact = (f.flags & CKKS_FLAG_COMPACT) != 0, packed = (f.flags & CKKS_FLAG_PACKED) != 0;
    int levels = (f.flags & CKKS_FLAG_LEVELS) != 0;
    if (f.length < 8 || (levels && !packed)) return CKKS_EFORMAT;
    uint64_t count;
    memcpy(&count, f.payload, 8);
    if (count > ctx->n || (f.length - 8) / (levels ? 16 : 8) < count) return CKKS_EFORMAT;
    /* Every key's size (the digit counts checked first), then the total. */
    const size_t head = 8 + 8 * count * (levels ? 2 : 1);
    size_t need = head;
    for (size_t i = 0; i < count; i++) {
        uint64_t L = ctx->k - 1;
        if (levels) memcpy(&L, f.payload + 8 + 8 * (count + i), 8);
        if (L < 1 || L > ctx->k - 1) return CKKS_EFORMAT;
        need += kswitch_bytes(ctx, compact, packed, L);
    }
    if (f.length != need) return CKKS_EFORMAT;
    ckks_galois_keys_t *gk = ckks_galois_keys_alloc(ctx, count);
    if (!gk) return CKKS_ENOMEM;
    uint32_t *elts = gk->elts;
    ckks_kswitch_t *keys = gk->keys;
    const uint8_t *kq = f.payload + head;
    for (size_t i = 0; i < count && rc == CKKS_OK; i++) {
        uint64_t e, L = ctx->k - 1;
        memcpy(&e, f.payload + 8 + 8 * i, 8);
        if (levels) memcpy(&L, f.payload + 8 + 8 * (count + i), 8);
        /* Odd, below 2N, not the identity, no repeats. */
        if (e >= 2 * ctx->n || !(e & 1) || e == 1) rc = CKKS_EFORMAT;
        for (size_t j = 0; j < i && rc == CKKS_OK; j++)
            if (elts[j] == e) rc = CKKS_EFORMAT;
        if (rc) break;
        elts[i] = (uint32_t)e;
        gk->count = i + 1; /* so a failure below frees what was allocated */
        rc = get_kswitch(ctx, kq, compact, packed, L, &keys[i]);
        kq += kswitch_bytes(ctx, compact, packed, L);
    }
    if (rc) {
        ckks_galois_keys_free(gk);
        return rc;
    }
    *out = gk;
    return CKKS_OK;
}

/* ---- frames for other layers ---- */
int ckks_frame_write(const ckks_context_t *ctx, uint16_t type, const void *payload, size_t plen,
                     void **buf, size_t *len)
{
    if (!ctx || !buf || !len || (!payload && plen) || type < CKKS_OBJ_USER_MIN) return CKKS_EINVAL;
    size_t total;
    uint8_t *p = new_frame(type, 0, ckks_params_hash(ctx), plen, &total);
    if (!p) return CKKS_ENOMEM;
    if (plen) memcpy(p + CKKS_HEADER_BYTES, payload, plen);
    seal_frame(p, plen);
    *buf = p;
    *len = total;
    return CKKS_OK;
}

int ckks_frame_open(const ckks_context_t *ctx, const void *buf, size_t len, uint16_t type,
                    const uint8_t **payload, size_t *plen)
{
    if (!payload || !plen || type < CKKS_OBJ_USER_MIN) return CKKS_EINVAL;
    frame_t f;
    int rc = open_frame(ctx, buf, len, type, &f);
    if (rc) return rc;
    if (f.flags) return CKKS_EFORMAT;
    *payload = f.payload;
    *plen = f.length;
    return CKKS_OK;
}

/* ---- multiparty shares: u32 kind | u32 Galois element | u32 polynomials |
 * u32 primes | 32-byte tag | the words, packed (flag 2; 64-bit words without
 * it, as written before 2026-12-03, still read). ---- */
/* Bytes of a share's words, row r of each polynomial at the width of its
 * prime (ckks_mp_share_prime: a Galois share's last row is the special prime's). */
static size_t share_bytes(const ckks_context_t *ctx, int kind, size_t polys, size_t rows, int packed)
{
    size_t bits = 0;
    for (size_t r = 0; r < rows; r++) bits += packed ? prime_bits(ctx, ckks_mp_share_prime(ctx, kind, rows, r)) : 64;
    return polys * bits * ctx->n / 8;
}

int ckks_mp_share_write(const ckks_mp_share_t *sh, const uint8_t tag[32], void **buf, size_t *len)
{
    if (!sh || !tag || !buf || !len) return CKKS_EINVAL;
    const ckks_context_t *ctx = sh->ctx;
    const size_t n = ctx->n, rows = sh->nprimes, plen = 48 + share_bytes(ctx, sh->kind, sh->npolys, rows, 1);
    size_t total;
    uint8_t *p = new_frame(CKKS_OBJ_MP_SHARE, CKKS_FLAG_PACKED, ckks_params_hash(ctx), plen, &total);
    if (!p) return CKKS_ENOMEM;
    uint8_t *q = p + CKKS_HEADER_BYTES;
    uint32_t head[4] = {(uint32_t)sh->kind, sh->elt, (uint32_t)sh->npolys, (uint32_t)sh->nprimes};
    memcpy(q, head, 16);
    memcpy(q + 16, tag, 32);
    q += 48;
    for (size_t pl = 0; pl < sh->npolys; pl++)
        for (size_t r = 0; r < rows; r++)
            q += pack_row(ctx, ckks_mp_share_prime(ctx, sh->kind, rows, r), sh->data + (pl * rows + r) * n, q);
    seal_frame(p, plen);
    *buf = p;
    *len = total;
    return CKKS_OK;
}

int ckks_mp_share_read(const ckks_context_t *ctx, const void *buf, size_t len, ckks_mp_share_t **out,
                       uint8_t tag[32])
{
    if (!ctx || !out || !tag) return CKKS_EINVAL;
    *out = NULL;
    frame_t f;
    int rc = open_frame(ctx, buf, len, CKKS_OBJ_MP_SHARE, &f);
    if (rc) return rc;
    const int packed = f.flags == CKKS_FLAG_PACKED;
    if ((f.flags && !packed) || f.length < 48) return CKKS_EFORMAT;
    uint32_t head[4];
    memcpy(head, f.payload, 16);
    size_t np = ckks_mp_share_polys(ctx, (int)head[0], head[3], head[1]);
    if (!np || np != head[2]) return CKKS_EFORMAT;
    const int kind = (int)head[0];
    const size_t rows = head[3], n = ctx->n;
    if (f.length != 48 + share_bytes(ctx, kind, np, rows, packed)) return CKKS_EFORMAT;
    ckks_mp_share_t *sh;
    rc = ckks_mp_share_new_shape(ctx, kind, rows, head[1], &sh);
    if (rc) return rc;
    const uint8_t *src = f.payload + 48;
    for (size_t pl = 0; pl < np && !rc; pl++)
        for (size_t r = 0; r < rows && !rc; r++) {
            const size_t i = ckks_mp_share_prime(ctx, kind, rows, r);
            uint64_t *dst = sh->data + (pl * rows + r) * n;
            if (packed) {
                rc = unpack_row(ctx, i, src, dst);
                src += n * prime_bits(ctx, i) / 8;
            } else {
                memcpy(dst, src, n * 8);
                src += n * 8;
                for (size_t t = 0; t < n && !rc; t++)
                    if (dst[t] >= ctx->primes[i]) rc = CKKS_EFORMAT;
            }
        }
    if (rc) {
        ckks_mp_share_free(sh);
        return rc;
    }
    memcpy(tag, f.payload + 16, 32);
    *out = sh;
    return CKKS_OK;
}
