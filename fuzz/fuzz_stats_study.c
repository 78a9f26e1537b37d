/* libFuzzer target: stats_study_read, the reader of every study upload
 * (POST /studies) and of the study at the head of every job. Input: a study
 * file, expanded as fuzz_stats.h describes. Whatever is accepted must write
 * back and read again as the same study (digest and schema). Seeds: the real
 * study of the fixture and compact forms of it (fuzz_seeds). */
#include "fuzz_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fuzz_stats_t *f = fuzz_stats();
    static fuzz_buf_t b;
    fuzz_expand(f, data, size, &b);
    uint8_t *in = fuzz_exact(&b);
    stats_study_t *s = NULL;
    size_t used = 0;
    int rc = stats_study_read(in, b.len, &s, &used);
    if (rc == STATS_OK) {
        if (used > b.len) abort();
        if (used < b.len) {
            /* As a whole file, trailing bytes are refused. */
            stats_study_t *whole = NULL;
            if (stats_study_read(in, b.len, &whole, NULL) == STATS_OK) abort();
        }
        void *out;
        size_t len;
        if (stats_study_write(s, &out, &len) != STATS_OK) abort();
        stats_study_t *again = NULL;
        if (stats_study_read(out, len, &again, NULL) != STATS_OK) abort();
        if (memcmp(again->digest, s->digest, 32) || again->layout.ncols != s->layout.ncols ||
            memcmp(again->layout.factor, s->layout.factor, sizeof s->layout.factor))
            abort();
        stats_study_free(again);
        free(out);
        stats_study_free(s);
    } else if (s) {
        abort(); /* a refusal hands nothing over */
    }
    free(in);
    return 0;
}
