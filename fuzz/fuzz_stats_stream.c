/* libFuzzer target: the incremental readers the server validates uploads
 * with as they arrive (stats_stream_study_new / stats_stream_table_new,
 * stats_stream_feed, stats_stream_finish), fed in chunks the fuzzer chooses,
 * against the whole-buffer readers on the same bytes: both must accept or
 * both refuse (stats.h: a complete object is validated "as fully as by
 * stats_study_read / stats_table_read"), accepted studies must have the same
 * digest and tables the same row count, and a failed stream must keep
 * returning its first error.
 *
 * Input: byte 0 bit 0 picks a study (0) or a table of the fixture's study
 * (1); bytes 1..8 are four little-endian u16 chunk lengths used in turn (0:
 * an empty feed); the rest is the file, expanded as fuzz_stats.h describes. */
#include "fuzz_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9) return 0;
    const fuzz_stats_t *f = fuzz_stats();
    int table = data[0] & 1;
    uint16_t chunk[4];
    memcpy(chunk, data + 1, sizeof chunk);
    if (!(chunk[0] | chunk[1] | chunk[2] | chunk[3])) chunk[0] = 1;
    fuzz_input_t x = fuzz_expand(f, data + 9, size - 9);
    const uint8_t *in = x.p;
    if (!in) return 0;

    stats_stream_t *st = NULL;
    int rc = table ? stats_stream_table_new(f->study, &st) : stats_stream_study_new(&st);
    FUZZ_REQUIRE(rc == STATS_OK && st, "a stream reader cannot be created");
    int frc = STATS_OK;
    size_t off = 0;
    for (unsigned k = 0; off < x.len; k++) {
        size_t n = chunk[k % 4];
        if (n > x.len - off) n = x.len - off;
        frc = stats_stream_feed(st, in + off, n);
        off += n;
        if (frc != STATS_OK) break;
    }
    if (frc != STATS_OK) {
        /* Once failed, every later call gives the same error. */
        uint8_t more = 0;
        int again = stats_stream_feed(st, &more, 1);
        FUZZ_REQUIRE(again == frc, "a failed stream returned %d, then %d", frc, again);
    }
    stats_study_t *sst = NULL;
    uint64_t nrows = 0;
    int src = stats_stream_finish(st, table ? NULL : &sst, table ? &nrows : NULL);
    FUZZ_REQUIRE(frc == STATS_OK || src == frc, "a stream failed with %d, its finish returned %d", frc, src);
    stats_stream_free(st);

    int brc;
    if (table) {
        stats_enc_table_t *t = NULL;
        brc = stats_table_read(f->study, in, x.len, &t, NULL);
        FUZZ_REQUIRE(brc != STATS_OK || src != STATS_OK || t->layout.nrows == nrows,
                     "stream and buffer readers disagree on the row count");
        stats_enc_table_free(t);
    } else {
        stats_study_t *s = NULL;
        brc = stats_study_read(in, x.len, &s, NULL);
        FUZZ_REQUIRE(brc != STATS_OK || src != STATS_OK || (sst && !memcmp(s->digest, sst->digest, 32)),
                     "stream and buffer readers accept the study with different digests");
        stats_study_free(s);
    }
    FUZZ_REQUIRE((brc == STATS_OK) == (src == STATS_OK), "%s of %zu bytes: stream reader %d, buffer reader %d",
                 table ? "table" : "study", x.len, src, brc);
    stats_study_free(sst);
    fuzz_input_free(&x);
    return 0;
}
