// Registration of the benchmarks beyond ntt/: ckks_* (and stats_* later).
#include "bench_common.h"

namespace hestat_bench {
void register_ckks();
void register_stats();
void register_glm();
void register_mp();

void register_all_extra()
{
    register_ckks();
    register_stats();
    register_glm();
    register_mp();
}
}  // namespace hestat_bench
