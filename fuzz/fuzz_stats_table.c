/* libFuzzer target: stats_table_read against the fixture's study, the check
 * of every table upload (POST /studies/ID/tables) and of each table in a job.
 * Input: a table file, expanded as fuzz_stats.h describes. Whatever is
 * accepted must write back and read again with the same shape. Seeds: the
 * fixture's real table and compact forms of it (fuzz_seeds). */
#include "fuzz_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fuzz_stats_t *f = fuzz_stats();
    fuzz_input_t x = fuzz_expand(f, data, size);
    const uint8_t *in = x.p;
    if (!in) return 0;
    stats_enc_table_t *t = NULL;
    size_t used = 0;
    if (stats_table_read(f->study, in, x.len, &t, &used) == STATS_OK) {
        FUZZ_REQUIRE(used <= x.len && t->chunks == t->layout.chunks && t->layout.nrows,
                     "table read: used %zu of %zu bytes, %zu chunks (layout %zu), %zu rows", used, x.len, t->chunks,
                     t->layout.chunks, t->layout.nrows);
        if (used < x.len) {
            stats_enc_table_t *whole = NULL;
            FUZZ_REQUIRE(stats_table_read(f->study, in, x.len, &whole, NULL) != STATS_OK,
                         "a table with %zu trailing bytes read as a whole file", x.len - used);
        }
        void *out;
        size_t len;
        FUZZ_REQUIRE(stats_table_write(f->study, t, &out, &len) == STATS_OK, "an accepted table does not write");
        stats_enc_table_t *again = NULL;
        FUZZ_REQUIRE(stats_table_read(f->study, out, len, &again, NULL) == STATS_OK,
                     "a table written back does not read");
        FUZZ_REQUIRE(again->layout.nrows == t->layout.nrows && again->chunks == t->chunks,
                     "the table written back has another shape");
        stats_enc_table_free(again);
        free(out);
        stats_enc_table_free(t);
    } else {
        FUZZ_REQUIRE(!t, "a refused table was handed over");
    }
    fuzz_input_free(&x);
    return 0;
}
