/* libFuzzer target: stats_result_read against the fixture's study, then the
 * client's stats_decrypt with the study's secret key: a result comes from the
 * server, which the analyst's client must not trust. Input: a result file,
 * expanded as fuzz_stats.h describes. Whatever is accepted must write back
 * and read again. Seeds: the fixture's real results (means and all).
 * An input that starts "HSTGLMR2" is a glm round's frame instead (also from
 * the server): stats_glm_enc_read on the raw bytes; what it accepts must
 * write back byte for byte. Seed: a two-sample frame at the fixture's N. */
#include "fuzz_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fuzz_stats_t *f = fuzz_stats();
    static stats_result_t out; /* about 400 kB */
    if (size >= 8 && !memcmp(data, "HSTGLMR2", 8)) {
        stats_glm_enc_t *e = NULL;
        if (stats_glm_enc_read(f->study->ctx, data, size, &e) == STATS_OK) {
            void *buf = NULL;
            size_t len = 0;
            FUZZ_REQUIRE(stats_glm_enc_write(e, &buf, &len) == STATS_OK, "an accepted glm frame does not write");
            FUZZ_REQUIRE(len == size && !memcmp(buf, data, size), "a glm frame written back differs");
            free(buf);
            stats_glm_enc_free(e);
        } else {
            FUZZ_REQUIRE(!e, "a refused glm frame was handed over");
        }
        return 0;
    }
    fuzz_input_t x = fuzz_expand(f, data, size);
    const uint8_t *in = x.p;
    if (!in) return 0;
    stats_enc_result_t *r = NULL;
    if (stats_result_read(f->study, in, x.len, &r) == STATS_OK) {
        void *buf;
        size_t len;
        FUZZ_REQUIRE(stats_result_write(f->study, r, &buf, &len) == STATS_OK, "an accepted result does not write");
        stats_enc_result_t *again = NULL;
        FUZZ_REQUIRE(stats_result_read(f->study, buf, len, &again) == STATS_OK, "a result written back does not read");
        FUZZ_REQUIRE(again->count == r->count && again->segments == r->segments && again->job == r->job &&
                         again->layout.nrows == r->layout.nrows,
                     "the result written back has another shape");
        stats_enc_result_free(again);
        free(buf);
        (void)stats_decrypt(f->study->ctx, f->sk, r, &out);
        stats_enc_result_free(r);
    } else {
        FUZZ_REQUIRE(!r, "a refused result was handed over");
    }
    fuzz_input_free(&x);
    return 0;
}
