/* libFuzzer target: stats_job_run, what `hestat-server compute` and the
 * server's workers run on a job file: the study, the job header, the tables,
 * then the computation. Input: a job file, expanded as fuzz_stats.h
 * describes. A job that runs must give a result that reads back against the
 * job's own study.
 *
 * Speed: a valid job computes (one table of one chunk at N = 4096: a few
 * milliseconds for means, more for all statistics under the sanitizers), and
 * parsing its study alone reads 5.7 MB of keys; the seed is the smallest job
 * there is (1 table of 20 rows, means), and the compact seeds let mutations
 * fall on the headers rather than on key material. The parsing stages are
 * fuzzed on their own, faster, by fuzz_stats_study and fuzz_stats_table. */
#include "fuzz_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fuzz_stats_t *f = fuzz_stats();
    fuzz_input_t x = fuzz_expand(f, data, size);
    const uint8_t *in = x.p;
    if (!in) return 0;
    void *res = NULL;
    size_t rlen = 0;
    stats_counts_t counts;
    if (stats_job_run(in, x.len, &res, &rlen, &counts) == STATS_OK) {
        stats_study_t *s = NULL;
        size_t used;
        FUZZ_REQUIRE(stats_study_read(in, x.len, &s, &used) == STATS_OK, "a job that ran has no readable study");
        stats_enc_result_t *r = NULL;
        FUZZ_REQUIRE(stats_result_read(s, res, rlen, &r) == STATS_OK,
                     "the result of a job does not read against the job's study");
        stats_enc_result_free(r);
        stats_study_free(s);
        free(res);
    }
    fuzz_input_free(&x);
    return 0;
}
