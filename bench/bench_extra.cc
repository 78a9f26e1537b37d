// Registration point for benchmarks beyond ntt/ (ckks_*, stats_*): none yet.
#include "bench_common.h"

namespace hestat_bench {
void register_all_extra() {}
}  // namespace hestat_bench
