/* Multiparty studies as files: drafts, share bundles, the study built from
 * the sums of the parties' shares, and the release of a result to the
 * analyst's key (the protocols themselves are ckks/multiparty.c; the file
 * layouts are in stats/stats.h, "multiparty studies").
 *
 * Every reader checks every field before use: frame types (a secret key is
 * refused by name), the binding digest, the round, the party, K, the share
 * count, each share's tag, kind, Galois element and shape, and that nothing
 * follows the last frame. */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/io_impl.h"

static const char draft_magic[8] = "hsmpdrf1";
static const char study_magic[8] = "hsmpstd1";
static const char bundle_magic[8] = "hsmpbnd1";
static const char draft_domain[] = "hestat multiparty draft v1";
#define BUNDLE_HEADER 88 /* magic 8 | bind 32 | round, party, parties, count (u32) | result 32 */

static int ckks_fail(int rc, const char *what)
{
    stats_set_error("%s: %s", what, ckks_strerror(rc));
    return rc == CKKS_ENOMEM ? STATS_ENOMEM : STATS_ECKKS;
}

/* ---- writers (stats_buf_t, io_impl.h) ---- */
static void add_u32(stats_buf_t *b, uint32_t v) { stats_buf_put(b, &v, 4); }

/* Sequenced: the writer fills w and wl before they are appended. */
#define ADD_WRITTEN(b, writer_call)           \
    do {                                      \
        void *w = NULL;                       \
        size_t wl = 0;                        \
        int rc_ = (writer_call);              \
        stats_buf_put_frame((b), rc_, w, wl);         \
    } while (0)


/* Length of the hestat frame at off, or 0 when none fits; *type its type. */
static size_t frame_len(const uint8_t *p, size_t len, size_t off, uint16_t *type)
{
    if (off > len || len - off < CKKS_HEADER_BYTES || memcmp(p + off, "HESTAT\r\n", 8)) return 0;
    uint64_t plen;
    memcpy(&plen, p + off + 24, 8);
    if (plen > len - off - CKKS_HEADER_BYTES) return 0;
    memcpy(type, p + off + 10, 2);
    return CKKS_HEADER_BYTES + (size_t)plen;
}

/* The next frame of a file being read: it exists, is whole, is not a secret
 * key and is of the type wanted. 0 or a message set. */
static size_t next_frame(const uint8_t *p, size_t len, size_t off, uint16_t want, const char *what)
{
    uint16_t type = 0;
    size_t fl = frame_len(p, len, off, &type);
    if (!fl) {
        stats_set_error("%s: missing or truncated (at byte %zu)", what, off);
        return 0;
    }
    if (type == CKKS_OBJ_SECRET_KEY) {
        stats_set_error("%s: the file holds a secret key; refused", what);
        return 0;
    }
    if (type != want) {
        stats_set_error("%s: a frame of type %u where %u was expected (not this kind of file)", what, type, want);
        return 0;
    }
    return fl;
}

/* ---- Galois elements and keys ---- */
size_t stats_galois_elts(const ckks_context_t *ctx, const stats_layout_t *lay, uint32_t *elts, size_t max)
{
    int steps[64];
    size_t n = stats_galois_steps(lay, steps, 64), count = 0;
    for (size_t i = 0; i <= n && count < max; i++) {
        uint32_t e = i < n ? ckks_galois_elt_rotate(ctx, steps[i]) : ckks_galois_elt_conjugate(ctx);
        int seen = 0;
        for (size_t j = 0; j < count; j++) seen |= elts[j] == e;
        if (!seen) elts[count++] = e;
    }
    return count;
}

int stats_public_key_copy(const ckks_context_t *ctx, const ckks_public_key_t *pk, ckks_public_key_t **out)
{
    void *buf;
    size_t len;
    int crc = ckks_write_public_key(pk, &buf, &len);
    if (!crc) {
        crc = ckks_read_public_key(ctx, buf, len, out);
        free(buf);
    }
    return crc ? ckks_fail(crc, "copying the analyst's public key") : STATS_OK;
}

/* ---- drafts ---- */
void stats_mp_draft_free(stats_mp_draft_t *d)
{
    if (!d) return;
    ckks_public_key_free(d->analyst_pk);
    ckks_context_free(d->ctx);
    free(d);
}

static int draft_frames(const stats_mp_draft_t *d, stats_buf_t *b)
{
    void *schema = NULL;
    size_t slen = 0;
    ADD_WRITTEN(b, ckks_write_params(d->ctx, &w, &wl));
    int rc = stats_schema_payload(&d->layout, &schema, &slen);
    if (rc) {
        b->err = rc;
        return rc;
    }
    ADD_WRITTEN(b, ckks_frame_write(d->ctx, STATS_OBJ_SCHEMA, schema, slen, &w, &wl));
    free(schema);
    stats_buf_t p = {0};
    stats_buf_put(&p, draft_magic, 8);
    add_u32(&p, (uint32_t)d->parties);
    add_u32(&p, (uint32_t)d->smudge_bits);
    stats_buf_put(&p, d->seed, 32);
    add_u32(&p, (uint32_t)d->nelts);
    add_u32(&p, 0);
    for (size_t i = 0; i < d->nelts; i++) add_u32(&p, d->elts[i]);
    if (p.err) b->err = p.err;
    if (!p.err) ADD_WRITTEN(b, ckks_frame_write(d->ctx, STATS_OBJ_MP_DRAFT, p.p, p.len, &w, &wl));
    free(p.p);
    ADD_WRITTEN(b, ckks_write_public_key(d->analyst_pk, &w, &wl));
    return b->err;
}

static void draft_digest(const uint8_t *p, size_t len, unsigned char out[32])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 32);
    crypto_generichash_update(&h, (const uint8_t *)draft_domain, sizeof draft_domain);
    crypto_generichash_update(&h, p, len);
    crypto_generichash_final(&h, out, 32);
}

int stats_mp_draft_create(ckks_context_t *ctx, const stats_table_t *t, const double *factors,
                          const stats_policy_t *policy, const ckks_public_key_t *analyst_pk, int parties,
                          stats_mp_draft_t **out)
{
    if (!ctx || !t || !analyst_pk || !out) return STATS_EINVAL;
    *out = NULL;
    if (parties < STATS_MP_MIN_PARTIES || parties > STATS_MP_MAX_PARTIES) {
        stats_set_error("a multiparty study has %d to %d parties, not %d", STATS_MP_MIN_PARTIES,
                        STATS_MP_MAX_PARTIES, parties);
        return STATS_EINVAL;
    }
    stats_mp_draft_t *d = calloc(1, sizeof *d);
    if (!d) return STATS_ENOMEM;
    int rc = stats_study_layout(ctx, t, factors, policy, &d->layout);
    if (!rc) rc = stats_public_key_copy(ctx, analyst_pk, &d->analyst_pk);
    if (rc) {
        stats_mp_draft_free(d); /* ctx is not ours yet */
        return rc;
    }
    d->parties = parties;
    d->smudge_bits = STATS_MP_SMUDGE_BITS;
    randombytes_buf(d->seed, sizeof d->seed);
    d->nelts = stats_galois_elts(ctx, &d->layout, d->elts, STATS_MP_MAX_ELTS);
    d->ctx = ctx;
    stats_buf_t b = {0};
    if ((rc = draft_frames(d, &b))) {
        free(b.p);
        d->ctx = NULL;
        stats_mp_draft_free(d);
        return rc;
    }
    draft_digest(b.p, b.len, d->digest);
    free(b.p);
    *out = d;
    return STATS_OK;
}

int stats_mp_draft_write(const stats_mp_draft_t *d, void **out, size_t *len)
{
    if (!d || !out || !len) return STATS_EINVAL;
    stats_buf_t b = {0};
    draft_frames(d, &b);
    return stats_buf_finish(&b, out, len);
}

static int parse_draft_frame(stats_mp_draft_t *d, const uint8_t *p, size_t plen)
{
    uint32_t parties, smudge, nelts, zero;
    if (plen < 56 || memcmp(p, draft_magic, 8)) {
        stats_set_error("draft: malformed multiparty frame");
        return STATS_ESCHEMA;
    }
    memcpy(&parties, p + 8, 4);
    memcpy(&smudge, p + 12, 4);
    memcpy(d->seed, p + 16, 32);
    memcpy(&nelts, p + 48, 4);
    memcpy(&zero, p + 52, 4);
    if (parties < STATS_MP_MIN_PARTIES || parties > STATS_MP_MAX_PARTIES || smudge > 50 || zero ||
        nelts > STATS_MP_MAX_ELTS || plen != 56 + 4 * (size_t)nelts) {
        stats_set_error("draft: parties, smudging bits or Galois elements out of range");
        return STATS_ESCHEMA;
    }
    d->parties = (int)parties;
    d->smudge_bits = (int)smudge;
    uint32_t want[STATS_MP_MAX_ELTS];
    size_t n = stats_galois_elts(d->ctx, &d->layout, want, STATS_MP_MAX_ELTS);
    if (n != nelts) {
        stats_set_error("draft: %u Galois elements where the schema needs %zu", (unsigned)nelts, n);
        return STATS_ESCHEMA;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(&d->elts[i], p + 56 + 4 * i, 4);
        if (d->elts[i] != want[i]) {
            stats_set_error("draft: Galois element %zu is not the one the schema needs", i + 1);
            return STATS_ESCHEMA;
        }
    }
    d->nelts = n;
    return STATS_OK;
}

int stats_mp_draft_read(const void *buf, size_t len, stats_mp_draft_t **out)
{
    if (!buf || !out) return STATS_EINVAL;
    *out = NULL;
    const uint8_t *p = buf, *payload;
    size_t plen, off = 0, fl;
    stats_mp_draft_t *d = calloc(1, sizeof *d);
    if (!d) return STATS_ENOMEM;
    int rc = STATS_ESCHEMA, crc;
    ckks_params_t params;
    if (!(fl = next_frame(p, len, off, CKKS_OBJ_PARAMS, "draft parameters"))) goto fail;
    if ((crc = ckks_read_params(p + off, fl, &params)) || (crc = ckks_context_new(&params, &d->ctx))) {
        rc = ckks_fail(crc, "draft parameters");
        goto fail;
    }
    off += fl;
    if (!(fl = next_frame(p, len, off, STATS_OBJ_SCHEMA, "draft schema"))) goto fail;
    if (ckks_frame_open(d->ctx, p + off, fl, STATS_OBJ_SCHEMA, &payload, &plen) ||
        stats_schema_parse(d->ctx, payload, plen, &d->layout)) {
        stats_set_error("draft schema: invalid fields");
        goto fail;
    }
    off += fl;
    if (!(fl = next_frame(p, len, off, STATS_OBJ_MP_DRAFT, "draft multiparty frame"))) goto fail;
    if ((crc = ckks_frame_open(d->ctx, p + off, fl, STATS_OBJ_MP_DRAFT, &payload, &plen))) {
        rc = ckks_fail(crc, "draft multiparty frame");
        goto fail;
    }
    if ((rc = parse_draft_frame(d, payload, plen))) goto fail;
    rc = STATS_ESCHEMA;
    off += fl;
    if (!(fl = next_frame(p, len, off, CKKS_OBJ_PUBLIC_KEY, "draft: the analyst's public key"))) goto fail;
    if ((crc = ckks_read_public_key(d->ctx, p + off, fl, &d->analyst_pk))) {
        rc = ckks_fail(crc, "draft: the analyst's public key");
        goto fail;
    }
    off += fl;
    if (off != len) {
        stats_set_error("draft: %zu trailing bytes", len - off);
        goto fail;
    }
    draft_digest(p, len, d->digest);
    *out = d;
    return STATS_OK;
fail:
    stats_mp_draft_free(d);
    return rc;
}

/* ---- the study's multiparty frame ---- */
uint64_t stats_mp_frame_max(const ckks_context_t *ctx)
{
    uint64_t k = ckks_context_data_primes(ctx) + 1, n = ckks_context_n(ctx);
    return 88 + CKKS_HEADER_BYTES + 2 * k * n * 8;
}

int stats_mp_frame_payload(const stats_study_t *s, void **out, size_t *len)
{
    void *pk = NULL;
    size_t pklen = 0;
    int crc = ckks_write_public_key(s->analyst_pk, &pk, &pklen);
    if (crc) return ckks_fail(crc, "the analyst's public key");
    stats_buf_t b = {0};
    uint64_t l64 = pklen;
    stats_buf_put(&b, study_magic, 8);
    add_u32(&b, (uint32_t)s->parties);
    add_u32(&b, (uint32_t)s->smudge_bits);
    stats_buf_put(&b, s->mp_seed, 32);
    stats_buf_put(&b, s->draft_digest, 32);
    stats_buf_put(&b, &l64, 8);
    stats_buf_put(&b, pk, pklen);
    free(pk);
    return stats_buf_finish(&b, out, len);
}

int stats_mp_frame_parse(stats_study_t *s, const uint8_t *p, size_t plen)
{
    uint32_t parties, smudge;
    uint64_t pklen;
    if (plen < 88 || memcmp(p, study_magic, 8)) {
        stats_set_error("malformed");
        return STATS_ESCHEMA;
    }
    memcpy(&parties, p + 8, 4);
    memcpy(&smudge, p + 12, 4);
    memcpy(&pklen, p + 80, 8);
    if (parties < STATS_MP_MIN_PARTIES || parties > STATS_MP_MAX_PARTIES || smudge > 50 || pklen != plen - 88) {
        stats_set_error("parties, smudging bits or length out of range");
        return STATS_ESCHEMA;
    }
    int crc = ckks_read_public_key(s->ctx, p + 88, (size_t)pklen, &s->analyst_pk);
    if (crc) {
        stats_set_error("the analyst's public key: %s", ckks_strerror(crc));
        return STATS_ESCHEMA;
    }
    s->parties = (int)parties;
    s->smudge_bits = (int)smudge;
    memcpy(s->mp_seed, p + 16, 32);
    memcpy(s->draft_digest, p + 48, 32);
    return STATS_OK;
}

/* ---- bundles ---- */
static void share_tag(const unsigned char bind[32], int round, int party, const unsigned char result[32],
                      uint8_t tag[32])
{
    uint8_t msg[32 + 1 + 4 + 32];
    uint32_t pu = (uint32_t)party;
    memcpy(msg, bind, 32);
    msg[32] = (uint8_t)round;
    memcpy(msg + 33, &pu, 4);
    memcpy(msg + 37, result, 32);
    crypto_generichash(tag, 32, msg, sizeof msg, NULL, 0);
}

void stats_mp_bundle_free(stats_mp_bundle_t *b)
{
    if (!b) return;
    for (size_t i = 0; b->shares && i < b->count; i++) ckks_mp_share_free(b->shares[i]);
    free(b->shares);
    free(b);
}

static stats_mp_bundle_t *bundle_new(stats_mp_round_t round, int party, const unsigned char *result, size_t count)
{
    stats_mp_bundle_t *b = calloc(1, sizeof *b);
    if (!b || !(b->shares = calloc(count ? count : 1, sizeof *b->shares))) {
        free(b);
        return NULL;
    }
    b->round = round;
    b->party = party;
    b->count = count;
    if (result) memcpy(b->result, result, 32);
    return b;
}

int stats_mp_bundle_write(const ckks_context_t *ctx, const unsigned char bind[32], int parties,
                          const stats_mp_bundle_t *b, void **out, size_t *len)
{
    if (!ctx || !bind || !b || !out || !len) return STATS_EINVAL;
    stats_buf_t h = {0}, f = {0};
    stats_buf_put(&h, bundle_magic, 8);
    stats_buf_put(&h, bind, 32);
    add_u32(&h, (uint32_t)b->round);
    add_u32(&h, (uint32_t)b->party);
    add_u32(&h, (uint32_t)parties);
    add_u32(&h, (uint32_t)b->count);
    stats_buf_put(&h, b->result, 32);
    if (h.err) f.err = h.err;
    else ADD_WRITTEN(&f, ckks_frame_write(ctx, STATS_OBJ_MP_BUNDLE, h.p, h.len, &w, &wl));
    free(h.p);
    uint8_t tag[32];
    share_tag(bind, b->round, b->party, b->result, tag);
    for (size_t i = 0; i < b->count && !f.err; i++) ADD_WRITTEN(&f, ckks_mp_share_write(b->shares[i], tag, &w, &wl));
    return stats_buf_finish(&f, out, len);
}

/* What a reader expects. */
typedef struct {
    const ckks_context_t *ctx;
    const unsigned char *bind;
    const char *bound_to; /* "draft" or "study": for messages */
    stats_mp_round_t round;
    int parties, party; /* party: -1 any of 0..K */
    const unsigned char *result;
    size_t count;
    const stats_mp_draft_t *draft;    /* key rounds: the Galois elements */
    const stats_enc_result_t *target; /* key switch: the ciphertexts' levels */
} expect_t;

static const char *round_name(uint32_t round)
{
    return round == STATS_MP_ROUND1 ? "key round 1" : round == STATS_MP_ROUND2 ? "key round 2"
                                    : round == STATS_MP_KEYSWITCH ? "key switch" : "unknown round";
}

static void expected_shape(const expect_t *x, size_t i, ckks_mp_kind_t *kind, uint32_t *elt, size_t *nprimes)
{
    *elt = 0;
    *nprimes = ckks_context_data_primes(x->ctx) + 1;
    if (x->round == STATS_MP_ROUND1) {
        *kind = i == 0 ? CKKS_MP_CKG : i == 1 ? CKKS_MP_RKG1 : CKKS_MP_GKG;
        if (i >= 2) { /* a fold key's share at its two primes and the special one */
            *elt = x->draft->elts[i - 2];
            *nprimes = stats_galois_key_primes(x->ctx, &x->draft->layout, *elt) + 1;
        }
    } else if (x->round == STATS_MP_ROUND2) {
        *kind = CKKS_MP_RKG2;
    } else {
        *kind = CKKS_MP_PCKS;
        *nprimes = x->target->cts[i]->nprimes;
    }
}

static int bundle_header(const expect_t *x, const uint8_t *p, size_t plen, int *party)
{
    uint32_t round, pu, parties, count;
    if (plen != BUNDLE_HEADER || memcmp(p, bundle_magic, 8)) {
        stats_set_error("share bundle: malformed header");
        return STATS_ESCHEMA;
    }
    memcpy(&round, p + 40, 4);
    memcpy(&pu, p + 44, 4);
    memcpy(&parties, p + 48, 4);
    memcpy(&count, p + 52, 4);
    if (sodium_memcmp(p + 8, x->bind, 32)) {
        stats_set_error("share bundle: made for another %s (its %s digest differs)", x->bound_to, x->bound_to);
        return STATS_ESCHEMA;
    }
    if (round != (uint32_t)x->round) {
        stats_set_error("share bundle: a %s bundle where %s was expected", round_name(round), round_name(x->round));
        return STATS_ESCHEMA;
    }
    if (parties != (uint32_t)x->parties || pu > parties || (x->party >= 0 && pu != (uint32_t)x->party)) {
        stats_set_error("share bundle: from party %u of %u where party %d of %d was expected", (unsigned)pu,
                        (unsigned)parties, x->party, x->parties);
        return STATS_ESCHEMA;
    }
    static const unsigned char zero[32];
    if (sodium_memcmp(p + 56, x->result ? x->result : zero, 32)) {
        stats_set_error("share bundle: made for another result (its result digest differs)");
        return STATS_ESCHEMA;
    }
    if (count != x->count) {
        stats_set_error("share bundle: %u shares where %zu were expected", (unsigned)count, x->count);
        return STATS_ESCHEMA;
    }
    *party = (int)pu;
    return STATS_OK;
}

static int read_bundle(const expect_t *x, const void *buf, size_t len, stats_mp_bundle_t **out)
{
    *out = NULL;
    const uint8_t *p = buf, *payload;
    size_t plen, fl = next_frame(p, len, 0, STATS_OBJ_MP_BUNDLE, "share bundle");
    if (!fl) return STATS_ESCHEMA;
    int crc = ckks_frame_open(x->ctx, p, fl, STATS_OBJ_MP_BUNDLE, &payload, &plen);
    if (crc) return ckks_fail(crc, "share bundle header");
    int party, rc = bundle_header(x, payload, plen, &party);
    if (rc) return rc;
    stats_mp_bundle_t *b = bundle_new(x->round, party, x->result, x->count);
    if (!b) return STATS_ENOMEM;
    uint8_t want[32], tag[32];
    share_tag(x->bind, x->round, party, b->result, want);
    size_t off = fl;
    for (size_t i = 0; i < x->count; i++) {
        char what[96];
        snprintf(what, sizeof what, "share bundle: share %zu of %zu", i + 1, x->count);
        if (!(fl = next_frame(p, len, off, CKKS_OBJ_MP_SHARE, what))) {
            rc = STATS_ESCHEMA;
            break;
        }
        if ((crc = ckks_mp_share_read(x->ctx, p + off, fl, &b->shares[i], tag))) {
            rc = ckks_fail(crc, what);
            break;
        }
        ckks_mp_kind_t kind;
        uint32_t elt;
        size_t np;
        expected_shape(x, i, &kind, &elt, &np);
        const ckks_mp_share_t *sh = b->shares[i];
        if (sodium_memcmp(tag, want, 32)) {
            stats_set_error("%s: its tag binds it to another %s, round, party or result", what, x->bound_to);
            rc = STATS_ESCHEMA;
            break;
        }
        if (sh->kind != kind || sh->elt != elt || sh->nprimes != np) {
            stats_set_error("%s: of the wrong kind, Galois element or level", what);
            rc = STATS_ESCHEMA;
            break;
        }
        off += fl;
    }
    if (!rc && off != len) {
        stats_set_error("share bundle: %zu trailing bytes", len - off);
        rc = STATS_ESCHEMA;
    }
    if (rc) {
        stats_mp_bundle_free(b);
        return rc;
    }
    *out = b;
    return STATS_OK;
}

/* Header frame, then each expected share as 64-bit words. */
static size_t bundle_max_bytes(const expect_t *x)
{
    size_t total = CKKS_HEADER_BYTES + BUNDLE_HEADER;
    for (size_t i = 0; i < x->count; i++) {
        ckks_mp_kind_t kind;
        uint32_t elt;
        size_t np;
        expected_shape(x, i, &kind, &elt, &np);
        total += CKKS_HEADER_BYTES + 48 + ckks_mp_share_polys(x->ctx, kind, np, elt) * np * ckks_context_n(x->ctx) * 8;
    }
    return total;
}

size_t stats_mp_keys_max_bytes(const stats_mp_draft_t *d, stats_mp_round_t round)
{
    if (!d || (round != STATS_MP_ROUND1 && round != STATS_MP_ROUND2)) return 0;
    expect_t x = {.ctx = d->ctx, .round = round, .count = round == STATS_MP_ROUND1 ? 2 + d->nelts : 1, .draft = d};
    return bundle_max_bytes(&x);
}

size_t stats_mp_keyswitch_max_bytes(const stats_study_t *s, const stats_enc_result_t *r)
{
    if (!s || !r) return 0;
    expect_t x = {.ctx = s->ctx, .round = STATS_MP_KEYSWITCH, .count = r->count, .target = r};
    return bundle_max_bytes(&x);
}

/* The draft's parameters frame, then at most 1 MB of schema and draft frames
 * (a schema of STATS_MAX_COLS columns takes 37 KB, a draft frame of 64
 * elements 0.4 KB), then the analyst's public key as 64-bit words. */
size_t stats_mp_draft_max_bytes(const void *prefix, size_t len)
{
    uint16_t type = 0;
    size_t fl = prefix ? frame_len(prefix, len, 0, &type) : 0;
    ckks_params_t p;
    if (!fl || type != CKKS_OBJ_PARAMS || ckks_read_params(prefix, fl, &p)) return 0;
    return fl + ((size_t)1 << 20) + CKKS_HEADER_BYTES + 2 * p.count * p.n * 8;
}

int stats_mp_read_keys(const stats_mp_draft_t *d, stats_mp_round_t round, int party, const void *buf, size_t len,
                       stats_mp_bundle_t **out)
{
    if (!d || !buf || !out || (round != STATS_MP_ROUND1 && round != STATS_MP_ROUND2)) return STATS_EINVAL;
    expect_t x = {.ctx = d->ctx, .bind = d->digest, .bound_to = "draft", .round = round, .parties = d->parties,
                  .party = party, .count = round == STATS_MP_ROUND1 ? 2 + d->nelts : 1, .draft = d};
    return read_bundle(&x, buf, len, out);
}

int stats_mp_read_keyswitch(const stats_study_t *s, const stats_enc_result_t *r, const unsigned char rdigest[32],
                            int party, const void *buf, size_t len, stats_mp_bundle_t **out)
{
    if (!s || !r || !rdigest || !buf || !out) return STATS_EINVAL;
    if (!s->parties) {
        stats_set_error("not a multiparty study");
        return STATS_EINVAL;
    }
    expect_t x = {.ctx = s->ctx, .bind = s->digest, .bound_to = "study", .round = STATS_MP_KEYSWITCH,
                  .parties = s->parties, .party = party, .result = rdigest, .count = r->count, .target = r};
    return read_bundle(&x, buf, len, out);
}

int stats_mp_bundle_add(stats_mp_bundle_t **acc, const stats_mp_bundle_t *b)
{
    if (!acc || !b) return STATS_EINVAL;
    if (!*acc) {
        stats_mp_bundle_t *z = bundle_new(b->round, 0, b->result, b->count);
        if (!z) return STATS_ENOMEM;
        for (size_t i = 0; i < b->count; i++) {
            int crc = ckks_mp_share_zero_like(b->shares[i], &z->shares[i]);
            if (crc) {
                stats_mp_bundle_free(z);
                return ckks_fail(crc, "share sum");
            }
        }
        *acc = z;
    }
    stats_mp_bundle_t *a = *acc;
    if (a->round != b->round || a->count != b->count || memcmp(a->result, b->result, 32)) {
        stats_set_error("share sum: bundles of different rounds or results");
        return STATS_ESCHEMA;
    }
    for (size_t i = 0; i < a->count; i++) {
        int crc = ckks_mp_aggregate(a->shares[i], b->shares[i]);
        if (crc) return ckks_fail(crc, "share sum");
    }
    return STATS_OK;
}

/* ---- the parties' rounds ---- */
static int check_party(int party, int parties)
{
    if (party < 1 || party > parties) {
        stats_set_error("party %d: parties are numbered 1 to %d", party, parties);
        return STATS_EINVAL;
    }
    return STATS_OK;
}

int stats_mp_round1(const stats_mp_draft_t *d, int party, const ckks_secret_key_t *si, const ckks_secret_key_t *ui,
                    void **out, size_t *len)
{
    if (!d || !si || !ui || !out || !len) return STATS_EINVAL;
    int rc = check_party(party, d->parties);
    if (rc) return rc;
    stats_mp_bundle_t *b = bundle_new(STATS_MP_ROUND1, party, NULL, 2 + d->nelts);
    if (!b) return STATS_ENOMEM;
    int crc = ckks_mp_ckg_share(si, d->seed, &b->shares[0]);
    if (!crc) crc = ckks_mp_rkg_round1(si, ui, d->seed, &b->shares[1]);
    for (size_t i = 0; i < d->nelts && !crc; i++) /* fold keys: two primes (stats_galois_key_primes) */
        crc = ckks_mp_gkg_share_limited(si, d->seed, d->elts[i], stats_galois_key_primes(d->ctx, &d->layout, d->elts[i]),
                                        &b->shares[2 + i]);
    rc = crc ? ckks_fail(crc, "round-1 shares") : stats_mp_bundle_write(d->ctx, d->digest, d->parties, b, out, len);
    stats_mp_bundle_free(b);
    return rc;
}

int stats_mp_round2(const stats_mp_draft_t *d, int party, const ckks_secret_key_t *si, const ckks_secret_key_t *ui,
                    const stats_mp_bundle_t *round1_sum, void **out, size_t *len)
{
    if (!d || !si || !ui || !round1_sum || !out || !len) return STATS_EINVAL;
    int rc = check_party(party, d->parties);
    if (rc) return rc;
    if (round1_sum->round != STATS_MP_ROUND1 || round1_sum->party != 0 || round1_sum->count != 2 + d->nelts) {
        stats_set_error("round 2 needs the sum of every party's round-1 shares");
        return STATS_EINVAL;
    }
    stats_mp_bundle_t *b = bundle_new(STATS_MP_ROUND2, party, NULL, 1);
    if (!b) return STATS_ENOMEM;
    int crc = ckks_mp_rkg_round2(si, ui, round1_sum->shares[1], &b->shares[0]);
    rc = crc ? ckks_fail(crc, "round-2 share") : stats_mp_bundle_write(d->ctx, d->digest, d->parties, b, out, len);
    stats_mp_bundle_free(b);
    return rc;
}

/* ---- the study ---- */
int stats_mp_study_build(const stats_mp_draft_t *d, const stats_mp_bundle_t *r1, const stats_mp_bundle_t *r2,
                         stats_study_t **out)
{
    if (!d || !r1 || !r2 || !out) return STATS_EINVAL;
    *out = NULL;
    if (r1->round != STATS_MP_ROUND1 || r1->party || r1->count != 2 + d->nelts || r2->round != STATS_MP_ROUND2 ||
        r2->party || r2->count != 1) {
        stats_set_error("the study needs the sums of both key rounds");
        return STATS_EINVAL;
    }
    /* Built in the draft's context, then written and read back: the study
     * owns a context of its own, and is validated as any study file is. */
    stats_study_t tmp = {.ctx = d->ctx, .layout = d->layout, .parties = d->parties, .smudge_bits = d->smudge_bits};
    memcpy(tmp.mp_seed, d->seed, 32);
    memcpy(tmp.draft_digest, d->digest, 32);
    const ckks_mp_share_t *gkg[STATS_MP_MAX_ELTS];
    for (size_t i = 0; i < d->nelts; i++) gkg[i] = r1->shares[2 + i];
    int crc = ckks_mp_public_key(d->ctx, d->seed, r1->shares[0], &tmp.pk);
    if (!crc) crc = ckks_mp_relin_key(r1->shares[1], r2->shares[0], &tmp.rk);
    if (!crc) crc = ckks_mp_galois_keys(d->ctx, d->seed, gkg, d->nelts, &tmp.gk);
    /* The fold keys come limited from their shares (two primes); the study
     * reader checks every key against the level it is used at. */
    int rc = crc ? ckks_fail(crc, "collective keys") : stats_public_key_copy(d->ctx, d->analyst_pk, &tmp.analyst_pk);
    void *buf = NULL;
    size_t len = 0;
    if (!rc) rc = stats_study_write(&tmp, &buf, &len);
    if (!rc) rc = stats_study_read(buf, len, out, NULL);
    free(buf);
    ckks_public_key_free(tmp.pk);
    ckks_relin_key_free(tmp.rk);
    ckks_galois_keys_free(tmp.gk);
    ckks_public_key_free(tmp.analyst_pk);
    return rc;
}

/* ---- key switching and release ---- */
void stats_mp_result_digest(const void *buf, size_t len, unsigned char out[32])
{
    crypto_generichash(out, 32, buf, len, NULL, 0);
}

static int check_unreleased(const stats_study_t *s, const stats_enc_result_t *r)
{
    if (!s->parties) {
        stats_set_error("not a multiparty study: its results are decrypted with the analyst's secret key");
        return STATS_EINVAL;
    }
    if (r->released) {
        stats_set_error("this result was released to the analyst already");
        return STATS_EINVAL;
    }
    return STATS_OK;
}

int stats_mp_keyswitch(const stats_study_t *s, const stats_enc_result_t *r, const unsigned char rdigest[32],
                       int party, const ckks_secret_key_t *si, void **out, size_t *len)
{
    if (!s || !r || !rdigest || !si || !out || !len) return STATS_EINVAL;
    int rc = check_unreleased(s, r);
    if (!rc) rc = check_party(party, s->parties);
    if (rc) return rc;
    stats_mp_bundle_t *b = bundle_new(STATS_MP_KEYSWITCH, party, rdigest, r->count);
    if (!b) return STATS_ENOMEM;
    int crc = CKKS_OK;
    for (size_t i = 0; i < r->count && !crc; i++)
        crc = ckks_mp_pcks_share(si, s->analyst_pk, r->cts[i], s->smudge_bits, &b->shares[i]);
    rc = crc ? ckks_fail(crc, "key-switch share") : stats_mp_bundle_write(s->ctx, s->digest, s->parties, b, out, len);
    stats_mp_bundle_free(b);
    return rc;
}

int stats_mp_release(const stats_study_t *s, stats_enc_result_t *r, const stats_mp_bundle_t *sum)
{
    if (!s || !r || !sum) return STATS_EINVAL;
    int rc = check_unreleased(s, r);
    if (rc) return rc;
    if (sum->round != STATS_MP_KEYSWITCH || sum->party || sum->count != r->count) {
        stats_set_error("release needs the sum of every party's key-switch shares for this result");
        return STATS_EINVAL;
    }
    for (size_t i = 0; i < r->count; i++) {
        int crc = ckks_mp_pcks_apply(r->cts[i], sum->shares[i], r->cts[i]);
        if (crc) return ckks_fail(crc, "release");
    }
    r->released = 1;
    return STATS_OK;
}

int stats_mp_missing(const unsigned char *have, int parties, char *out, size_t outlen)
{
    int n = 0;
    size_t used = 0;
    if (outlen) out[0] = 0;
    for (int i = 1; i <= parties; i++) {
        if (have[i]) continue;
        if (used < outlen) {
            int w = snprintf(out + used, outlen - used, "%s%d", n ? ", " : "", i);
            used += w > 0 ? (size_t)w : 0;
        }
        n++;
    }
    return n;
}
