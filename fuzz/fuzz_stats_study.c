/* libFuzzer target: stats_study_read, the reader of every study upload
 * (POST /studies) and of the study at the head of every job. Input: a study
 * file, expanded as fuzz_stats.h describes. Whatever is accepted must write
 * back and read again as the same study (digest and schema). Seeds: the real
 * study of the fixture and compact forms of it (fuzz_seeds). */
#include "fuzz_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fuzz_stats_t *f = fuzz_stats();
    fuzz_input_t x = fuzz_expand(f, data, size);
    const uint8_t *in = x.p;
    if (!in) return 0;
    stats_study_t *s = NULL;
    size_t used = 0;
    int rc = stats_study_read(in, x.len, &s, &used);
    if (rc == STATS_OK) {
        FUZZ_REQUIRE(used <= x.len, "study read used %zu of %zu bytes", used, x.len);
        if (used < x.len) {
            stats_study_t *whole = NULL;
            FUZZ_REQUIRE(stats_study_read(in, x.len, &whole, NULL) != STATS_OK,
                         "a study with %zu trailing bytes read as a whole file", x.len - used);
        }
        void *out;
        size_t len;
        FUZZ_REQUIRE(stats_study_write(s, &out, &len) == STATS_OK, "an accepted study does not write");
        stats_study_t *again = NULL;
        FUZZ_REQUIRE(stats_study_read(out, len, &again, NULL) == STATS_OK, "a study written back does not read");
        /* The digest binds tables and results to the study: the same study
         * written again (as stats_job_write does) must keep it. */
        FUZZ_REQUIRE(!memcmp(again->digest, s->digest, 32),
                     "the study written back has another digest than the bytes accepted (non-canonical input)");
        FUZZ_REQUIRE(again->layout.ncols == s->layout.ncols &&
                         !memcmp(again->layout.factor, s->layout.factor, sizeof s->layout.factor),
                     "the study written back has another schema");
        stats_study_free(again);
        free(out);
        stats_study_free(s);
    } else {
        FUZZ_REQUIRE(!s, "a refused study was handed over");
    }
    fuzz_input_free(&x);
    return 0;
}
