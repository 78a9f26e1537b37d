// Shared by the benchmark files: every benchmark goes through add() so it
// gets the same unit and the "min" statistic the summary table reads.
#ifndef HESTAT_BENCH_COMMON_H
#define HESTAT_BENCH_COMMON_H

#include <benchmark/benchmark.h>

namespace hestat_bench {
void add(benchmark::internal::Benchmark *b);
// Benchmarks of the upper layers (ckks_*, stats_*) register here.
void register_all_extra();
}  // namespace hestat_bench

#endif
