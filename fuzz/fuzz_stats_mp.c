/* libFuzzer target: the multiparty readers (stats/multiparty.c) that every
 * draft and share-bundle upload goes through (POST /drafts, the key rounds,
 * key-switch shares): stats_mp_draft_read and stats_mp_read_keys.
 *
 * Self-seeding: the input edits a real file of a two-party draft built at
 * start-up (fuzz_stats.h's parameters and deterministic randomness) rather
 * than replacing it, so every input starts from valid structure:
 *   byte 0: which file (mod 3): the draft, party 1's round-1 bundle, party
 *           1's round-2 bundle; bit 7 set: leave checksums as edited;
 *   then edits: an op byte (mod 3) and its operands:
 *     0 overwrite: u32 offset (mod the length), u8 n (mod 17), n bytes
 *     1 truncate:  u32 offset (mod the length + 1)
 *     2 insert:    u32 offset (mod the length + 1), u8 n (mod 17), n bytes
 * after which every whole frame gets the XXH3 of its payload (unless bit 7),
 * as a writer would. Whatever a reader accepts must be well formed: a draft
 * writes back and reads again with the same digest; a bundle has the
 * round's share count and kinds. */
#include "fuzz_stats.h"

typedef struct {
    stats_mp_draft_t *d;
    void *file[3];
    size_t len[3];
} mp_fixture_t;

static const mp_fixture_t *mp_fixture(void)
{
    static mp_fixture_t m;
    static int done;
    if (done) return &m;
    const fuzz_stats_t *f = fuzz_stats(); /* the deterministic randomness and the table */
    ckks_params_t p;
    ckks_context_t *ctx;
    int bits[] = {40, 30, 39};
    if (ckks_params_from_bits(&p, 4096, bits, 3) || ckks_context_new(&p, &ctx)) fuzz_die("mp parameters");
    ckks_context_set_threads(ctx, 1);
    ckks_secret_key_t *analyst, *si[2], *ui[2];
    ckks_public_key_t *pk;
    if (ckks_secret_key_new(ctx, &analyst) || ckks_public_key_new(analyst, &pk)) fuzz_die("analyst key");
    if (stats_mp_draft_create(ctx, f->plain, NULL, NULL, pk, 2, &m.d)) fuzz_die("draft");
    if (stats_mp_draft_write(m.d, &m.file[0], &m.len[0])) fuzz_die("draft file");
    stats_mp_bundle_t *sum = NULL;
    void *r1[2];
    size_t r1len[2];
    for (int i = 0; i < 2; i++) {
        stats_mp_bundle_t *b;
        if (ckks_secret_key_new(m.d->ctx, &si[i]) || ckks_secret_key_new(m.d->ctx, &ui[i]) ||
            stats_mp_round1(m.d, i + 1, si[i], ui[i], &r1[i], &r1len[i]) ||
            stats_mp_read_keys(m.d, STATS_MP_ROUND1, i + 1, r1[i], r1len[i], &b) || stats_mp_bundle_add(&sum, b))
            fuzz_die("round 1");
        stats_mp_bundle_free(b);
    }
    m.file[1] = r1[0];
    m.len[1] = r1len[0];
    free(r1[1]);
    if (stats_mp_round2(m.d, 1, si[0], ui[0], sum, &m.file[2], &m.len[2])) fuzz_die("round 2");
    stats_mp_bundle_free(sum);
    for (int i = 0; i < 2; i++) {
        ckks_secret_key_free(si[i]);
        ckks_secret_key_free(ui[i]);
    }
    ckks_public_key_free(pk);
    ckks_secret_key_free(analyst);
    done = 1;
    return &m;
}

static uint32_t take_u32(const uint8_t **p, const uint8_t *end)
{
    uint32_t v = 0;
    for (int i = 0; i < 4 && *p < end; i++) v |= (uint32_t)*(*p)++ << (8 * i);
    return v;
}

/* Applies the edits to a copy of the template; returns it (malloc'd), *len its length. */
static uint8_t *edited(const uint8_t *tpl, size_t tlen, const uint8_t *p, const uint8_t *end, size_t *len)
{
    size_t cap = tlen + 17 * (size_t)(end - p) + 1, n = tlen;
    uint8_t *b = malloc(cap);
    if (!b) return NULL;
    memcpy(b, tpl, tlen);
    while (p < end) {
        int op = *p++ % 3;
        uint32_t off = take_u32(&p, end);
        if (op == 1) {
            n = off % (n + 1);
            continue;
        }
        size_t k = p < end ? *p++ % 17 : 0;
        if (k > (size_t)(end - p)) k = (size_t)(end - p);
        if (op == 0 && n) {
            size_t at = off % n;
            if (k > n - at) k = n - at;
            memcpy(b + at, p, k);
        } else if (op == 2) {
            size_t at = off % (n + 1);
            memmove(b + at + k, b + at, n - at);
            memcpy(b + at, p, k);
            n += k;
        }
        p += k;
    }
    *len = n;
    return b;
}

/* Every whole frame's checksum as a writer would set it. */
static void reseal(uint8_t *b, size_t len)
{
    size_t off = 0;
    while (len - off >= CKKS_HEADER_BYTES) {
        uint64_t plen;
        memcpy(&plen, b + off + 24, 8);
        if (plen > len - off - CKKS_HEADER_BYTES) break;
        uint64_t sum = XXH3_64bits(b + off + CKKS_HEADER_BYTES, (size_t)plen);
        memcpy(b + off + 32, &sum, 8);
        off += CKKS_HEADER_BYTES + (size_t)plen;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const mp_fixture_t *m = mp_fixture();
    if (!size || size > 4096) return 0;
    int which = (data[0] & 0x7f) % 3, keep_sums = data[0] & 0x80;
    size_t len;
    uint8_t *b = edited(m->file[which], m->len[which], data + 1, data + size, &len);
    if (!b) return 0;
    if (!keep_sums) reseal(b, len);
    if (which == 0) {
        stats_mp_draft_t *d = NULL;
        if (stats_mp_draft_read(b, len, &d) == STATS_OK) {
            void *out;
            size_t olen;
            stats_mp_draft_t *again = NULL;
            FUZZ_REQUIRE(stats_mp_draft_write(d, &out, &olen) == STATS_OK, "an accepted draft does not write");
            FUZZ_REQUIRE(stats_mp_draft_read(out, olen, &again) == STATS_OK, "a draft written back does not read");
            FUZZ_REQUIRE(!memcmp(again->digest, d->digest, 32) && again->parties == d->parties,
                         "the draft written back is another draft (non-canonical input accepted)");
            stats_mp_draft_free(again);
            free(out);
        } else {
            FUZZ_REQUIRE(!d, "a refused draft was handed over");
        }
        stats_mp_draft_free(d);
    } else {
        stats_mp_round_t round = which == 1 ? STATS_MP_ROUND1 : STATS_MP_ROUND2;
        stats_mp_bundle_t *bundle = NULL;
        if (stats_mp_read_keys(m->d, round, -1, b, len, &bundle) == STATS_OK) {
            FUZZ_REQUIRE(bundle->count == (round == STATS_MP_ROUND1 ? 2 + m->d->nelts : 1) && bundle->party >= 0 &&
                             bundle->party <= 2,
                         "an accepted bundle of the wrong shape");
            for (size_t i = 0; i < bundle->count; i++)
                FUZZ_REQUIRE(bundle->shares[i] && bundle->shares[i]->ctx == m->d->ctx, "a share missing");
        } else {
            FUZZ_REQUIRE(!bundle, "a refused bundle was handed over");
        }
        stats_mp_bundle_free(bundle);
    }
    free(b);
    return 0;
}
