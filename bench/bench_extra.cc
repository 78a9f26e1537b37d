// Registration of the benchmarks beyond ntt/: ckks_* (and stats_* later).
#include "bench_common.h"

namespace hestat_bench {
void register_ckks();
void register_stats();
void register_glm();

void register_all_extra()
{
    register_ckks();
    register_stats();
    register_glm();
}
}  // namespace hestat_bench
