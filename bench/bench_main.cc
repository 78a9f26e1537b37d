// hestat-bench: Google Benchmark harness around the C API.
//
// Names say what was measured: ntt_forward/BACKEND/N/BITS,
// ntt_inverse/BACKEND/N/BITS, eltwise_mul/BACKEND/N/BITS (one limb, the
// prime is the largest q < 2^BITS with q = 1 mod 2N),
// eltwise_dot2x2/BACKEND/N/BITS/K (the four sums of products of K pairs of
// pairs, ntt_vec_dot2x2: a split product's inner loop) beside
// eltwise_fma4/BACKEND/N/BITS/K (the same sums as 4K mul and fma calls, as
// before the fused kernel). Every backend this CPU
// has is measured in the same run, and a summary table prints the minimum
// over the repetitions with each backend's speed-up over scalar.
//
// Defaults (overridable with Google Benchmark's own flags, later flags win):
//   --benchmark_repetitions=5 --benchmark_min_time=0.05
//   --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <stdlib.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "bench_common.h"

extern "C" {
#include "ntt/ntt.h"
}

namespace {

struct Limb {
    ntt_tables_t *tables = nullptr;
    uint64_t *a = nullptr, *b = nullptr, *r = nullptr;
    size_t n = 0;
    Limb(size_t n_, int bits) : n(n_)
    {
        uint64_t q;
        if (ntt_coeff_modulus(n, &bits, 1, &q) != NTT_OK || ntt_tables_new(n, q, &tables) != NTT_OK)
            return;
        a = ntt_alloc(n);
        b = ntt_alloc(n);
        r = ntt_alloc(n);
        std::mt19937_64 g(n * 131 + bits);  // benchmark data only
        for (size_t i = 0; i < n; i++) {
            a[i] = g() % q;
            b[i] = g() % q;
        }
    }
    ~Limb()
    {
        ntt_free(a);
        ntt_free(b);
        ntt_free(r);
        ntt_tables_free(tables);
    }
    bool ok() const { return tables && a && b && r; }
};

void BM_ntt(benchmark::State &state, const ntt_ops_t *ops, size_t n, int bits, bool inverse)
{
    Limb l(n, bits);
    if (!l.ok()) {
        state.SkipWithError("no tables for these parameters");
        return;
    }
    for (auto _ : state) {
        if (inverse)
            ops->inverse(l.tables, l.a, 0);
        else
            ops->forward(l.tables, l.a, 0);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * n);
}

void BM_eltwise_mul(benchmark::State &state, const ntt_ops_t *ops, size_t n, int bits)
{
    Limb l(n, bits);
    if (!l.ok()) {
        state.SkipWithError("no tables for these parameters");
        return;
    }
    const ntt_modulus_t *m = ntt_tables_modulus(l.tables);
    for (auto _ : state) {
        ops->mul(l.r, l.a, l.b, n, m);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * n);
}

// K pairs of pairs (x0, x1), (y0, y1) into four sums; items: the 4K products.
void BM_dot2x2(benchmark::State &state, const ntt_ops_t *ops, size_t n, int bits, size_t k, bool fused)
{
    std::vector<std::unique_ptr<Limb>> in;
    for (size_t j = 0; j < 2 * k; j++) in.emplace_back(new Limb(n, bits));
    Limb acc0(n, bits), acc1(n, bits);
    for (auto &l : in)
        if (!l->ok()) {
            state.SkipWithError("no tables for these parameters");
            return;
        }
    const ntt_modulus_t *m = ntt_tables_modulus(acc0.tables);
    std::vector<const uint64_t *> x0(k), x1(k), y0(k), y1(k);
    for (size_t j = 0; j < k; j++) {
        x0[j] = in[2 * j]->a;
        x1[j] = in[2 * j]->b;
        y0[j] = in[2 * j + 1]->a;
        y1[j] = in[2 * j + 1]->b;
    }
    uint64_t *r[4] = {acc0.a, acc0.b, acc1.a, acc1.b};
    for (auto _ : state) {
        if (fused) {
            ops->dot2x2(r, x0.data(), x1.data(), y0.data(), y1.data(), k, n, m, 1);
        } else {
            for (size_t j = 0; j < k; j++) {
                ops->fma(r[0], x0[j], y0[j], r[0], n, m);
                ops->fma(r[1], x1[j], y0[j], r[1], n, m);
                ops->fma(r[2], x0[j], y1[j], r[2], n, m);
                ops->fma(r[3], x1[j], y1[j], r[3], n, m);
            }
        }
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * 4 * k * n);
}

void register_ntt_benchmarks()
{
    for (int id = 0; id < NTT_SIMD_COUNT; id++) {
        const ntt_ops_t *ops;
        if (ntt_ops_get(static_cast<ntt_simd_t>(id), &ops) != NTT_OK) continue;
        for (size_t n = 4096; n <= 65536; n *= 2) {
            for (int bits : {50, 60}) {
                std::string tail = std::string("/") + ops->name + "/" + std::to_string(n) + "/" +
                                   std::to_string(bits);
                hestat_bench::add(benchmark::RegisterBenchmark(("ntt_forward" + tail).c_str(),
                                                               BM_ntt, ops, n, bits, false));
                hestat_bench::add(benchmark::RegisterBenchmark(("ntt_inverse" + tail).c_str(),
                                                               BM_ntt, ops, n, bits, true));
                hestat_bench::add(benchmark::RegisterBenchmark(("eltwise_mul" + tail).c_str(),
                                                               BM_eltwise_mul, ops, n, bits));
                for (size_t k : {1, 3}) {
                    if (n != 8192) continue;
                    std::string kt = tail + "/" + std::to_string(k);
                    if (ops->dot2x2)
                        hestat_bench::add(benchmark::RegisterBenchmark(("eltwise_dot2x2" + kt).c_str(),
                                                                       BM_dot2x2, ops, n, bits, k, true));
                    hestat_bench::add(benchmark::RegisterBenchmark(("eltwise_fma4" + kt).c_str(), BM_dot2x2,
                                                                   ops, n, bits, k, false));
                }
            }
        }
    }
}

// The CPU the figures were measured on, in the benchmark context (printed
// before the results and written to the JSON): kernels rank differently on
// different microarchitectures (e.g. AMD Zen 4 is family 25, Zen 5 family 26).
void add_cpu_context()
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    char vendor[13] = {0};
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned family = (a >> 8) & 0xf, model = (a >> 4) & 0xf, stepping = a & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    if (family == 0x6 || family >= 0xf) model |= ((a >> 16) & 0xf) << 4;
    char brand[49] = {0};
    if (__get_cpuid_max(0x80000000, nullptr) >= 0x80000004) {
        for (unsigned i = 0; i < 3; i++) {
            __get_cpuid(0x80000002 + i, &a, &b, &c, &d);
            std::memcpy(brand + 16 * i, &a, 4);
            std::memcpy(brand + 16 * i + 4, &b, 4);
            std::memcpy(brand + 16 * i + 8, &c, 4);
            std::memcpy(brand + 16 * i + 12, &d, 4);
        }
    }
    std::string name(brand);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    benchmark::AddCustomContext("cpu_vendor", vendor);
    benchmark::AddCustomContext("cpu_family", std::to_string(family));
    benchmark::AddCustomContext("cpu_model", std::to_string(model));
    benchmark::AddCustomContext("cpu_stepping", std::to_string(stepping));
    if (!name.empty()) benchmark::AddCustomContext("cpu_brand", name);
#endif
    benchmark::AddCustomContext("ntt_backend", ntt_ops_default()->name);
}

}  // namespace

namespace hestat_bench {

void add(benchmark::internal::Benchmark *b)
{
    b->Unit(benchmark::kMicrosecond)->ComputeStatistics("min", [](const std::vector<double> &v) {
        return *std::min_element(v.begin(), v.end());
    });
}

// Collects the "min" aggregates (or single runs) and prints a pivot table.
class TableReporter : public benchmark::ConsoleReporter {
  public:
    // Colour only on a terminal, so logs and pipes stay plain text.
    TableReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Defaults : OO_Tabular) {}

    void ReportRuns(const std::vector<Run> &runs) override
    {
        ConsoleReporter::ReportRuns(runs);
        for (const Run &r : runs) {
            if (r.error_occurred) continue;
            if (r.run_type == Run::RT_Aggregate && r.aggregate_name != "min") continue;
            if (r.run_type == Run::RT_Iteration && r.repetitions > 1) continue;
            double prec = 0;
            auto it = r.counters.find("prec_bits");
            if (it != r.counters.end()) prec = it->second.value;
            std::string extra;
            for (const auto &kv : r.counters) {
                if (kv.first == "prec_bits" || kv.first == "items_per_second") continue;
                char buf[64];
                std::snprintf(buf, sizeof buf, " %s=%.3g", kv.first.c_str(), kv.second.value);
                extra += buf;
            }
            results_.push_back({r.run_name.str(), r.GetAdjustedRealTime(), prec, extra});
        }
    }

    void Finalize() override
    {
        ConsoleReporter::Finalize();
        print_table();
    }

  private:
    struct Result {
        std::string name;
        double us;
        double prec_bits;  // 0 when the benchmark reports none
        std::string extra; // other counters, "name=value"
    };
    std::vector<Result> results_;

    static bool is_backend(const std::string &s)
    {
        return s == "scalar" || s == "avx2" || s == "avx512" || s == "avx512r4";
    }

    void print_table()
    {
        // name = OP/BACKEND/REST  ->  rows (OP/REST) x columns (backend).
        std::map<std::string, std::map<std::string, double>> pivot;
        std::vector<std::string> order, plain;
        std::map<std::string, double> plain_us, plain_prec;
        std::map<std::string, std::string> plain_extra;
        for (const Result &r : results_) {
            size_t s1 = r.name.find('/');
            size_t s2 = s1 == std::string::npos ? s1 : r.name.find('/', s1 + 1);
            std::string backend =
                s2 == std::string::npos ? "" : r.name.substr(s1 + 1, s2 - s1 - 1);
            if (!is_backend(backend)) {
                plain.push_back(r.name);
                plain_us[r.name] = r.us;
                plain_prec[r.name] = r.prec_bits;
                plain_extra[r.name] = r.extra;
                continue;
            }
            std::string row = r.name.substr(0, s1) + r.name.substr(s2);
            if (!pivot.count(row)) order.push_back(row);
            pivot[row][backend] = r.us;
        }
        const char *backends[] = {"scalar", "avx2", "avx512", "avx512r4"};
        if (!order.empty()) {
            std::printf("\nSummary: microseconds per call, minimum over the repetitions; "
                        "x = speed-up over scalar in this run\n");
            std::printf("%-28s %12s %12s %8s %12s %8s %12s %8s\n", "benchmark (op/N/bits)",
                        "scalar", "avx2", "x", "avx512", "x", "avx512r4", "x");
            for (const std::string &row : order) {
                auto &cols = pivot[row];
                std::printf("%-28s", row.c_str());
                double base = cols.count("scalar") ? cols["scalar"] : 0;
                for (const char *b : backends) {
                    if (!cols.count(b)) {
                        std::printf(" %12s", "-");
                        if (std::strcmp(b, "scalar")) std::printf(" %8s", "");
                        continue;
                    }
                    std::printf(" %12.2f", cols[b]);
                    if (std::strcmp(b, "scalar"))
                        std::printf(" %7.2fx", base > 0 ? base / cols[b] : 0.0);
                }
                std::printf("\n");
            }
        }
        if (!plain.empty()) {
            std::printf("\nSummary: microseconds per call, minimum over the repetitions; precision "
                        "kept (bits) where measured\n");
            for (const std::string &n : plain) {
                std::printf("%-40s %14.2f", n.c_str(), plain_us[n]);
                if (plain_prec[n] > 0) std::printf(" %8.1f bits", plain_prec[n]);
                std::printf("%s\n", plain_extra[n].c_str());
            }
        }
    }
};

}  // namespace hestat_bench

int main(int argc, char **argv)
{
    std::vector<char *> args;
    args.push_back(argv[0]);
    static char reps[] = "--benchmark_repetitions=5";
    static char mintime[] = "--benchmark_min_time=0.05";
    static char aggr[] = "--benchmark_report_aggregates_only=true";
    args.push_back(reps);
    args.push_back(mintime);
    args.push_back(aggr);
    for (int i = 1; i < argc; i++) args.push_back(argv[i]);
    int nargs = static_cast<int>(args.size());
    args.push_back(nullptr);

    if (ntt_ops_default_warning()) std::fprintf(stderr, "warning: %s\n", ntt_ops_default_warning());
    // CKKS timings are one-thread figures unless HESTAT_THREADS says otherwise.
    setenv("HESTAT_THREADS", "1", 0);
    std::fprintf(stderr, "hestat-bench: backend %s, HESTAT_THREADS=%s\n", ntt_ops_default()->name,
                 getenv("HESTAT_THREADS"));
    register_ntt_benchmarks();
    hestat_bench::register_all_extra();
    benchmark::Initialize(&nargs, args.data());
    if (benchmark::ReportUnrecognizedArguments(nargs, args.data())) return 1;
    add_cpu_context();
    hestat_bench::TableReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
