// stats_* benchmarks: the stats issue's workloads on the real Framingham
// table (../shared/data, when present) or the generated one of the same size.
//   stats_encrypt/N         client: encrypt the table (public key)
//   stats_encrypt_sk/N      client: encrypt with the secret key (compact upload)
//   stats_w1/N              server: all column means (sum x, count)
//   stats_w2/N              server: count/mean/var/sd per column, all 120 pairs
//                           (pairwise-complete Pearson), groups by TenYearCHD
//   stats_decrypt_w2/N      client: decrypt + finish W2
//   stats_wide_chunks/C/J   server, N=8192, a generated wide table of C columns
//                           (stats_generator_new_wide), 8 chunks: the per-chunk
//                           work of job J (1: W1, 2: W2); counters us_per_row,
//                           ns_per_row_col (W1) or ns_per_row_pair (W2)
//   stats_wide_finish/C/J   the same table's finishing (per job, not per row)
//   stats_w2_rows/16/M      server, W2 per-chunk work on 64 chunks of 16 columns
//                           with key switching M (eager: rotations every chunk;
//                           deferred: merged when finishing); rows_per_s
//   stats_w2_rows/16/M/columns  the same, a column-major study (keygen --layout
//                           columns: half the products)
//   w2_layout/16/L          design benchmark, not a job hestat runs: a deferred
//                           W2 chunk's server work (conjugation, the operands
//                           W and V, fused split products) on the same 64
//                           chunks, with the diagonals of layout L: rows (the
//                           row-major layout of today: d = 1 .. 15, steps d)
//                           or columns (column-major blocks, slot c R + r: a
//                           rotation by d R pairs every column with column
//                           c + d mod B, so d = 1 .. 8 cover every pair, steps
//                           d R). Same kernels and keys; the costs do not
//                           depend on the data. rows_per_s
// Counters: upload/download sizes (MB, hestat format), rotations, relinearizations,
// multiplications, and the worst errors against the long-double reference.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "bench_common.h"

extern "C" {
#include "stats/stats.h"
}

namespace {

struct StatsSetup {
    ckks_context_t *ctx = nullptr;
    ckks_secret_key_t *sk = nullptr;
    ckks_public_key_t *pk = nullptr;
    ckks_relin_key_t *rk = nullptr;
    ckks_galois_keys_t *gk = nullptr;
    stats_table_t *table = nullptr;
    stats_layout_t lay{};
    stats_enc_table_t *enc = nullptr;
    stats_enc_result_t *w2 = nullptr;
    std::string source;
};

void must(int rc, const char *what)
{
    if (rc != 0) {
        std::fprintf(stderr, "hestat-bench: %s failed (%d): %s\n", what, rc, stats_error());
        std::exit(1);
    }
}

/* The layout of s.table, keys for it (the study's Galois steps) and its
 * encryption with the public key. */
void keys_and_encrypt(StatsSetup &s, int colmajor = 0)
{
    must(stats_layout_for(s.ctx, s.table, &s.lay), "layout");
    s.lay.colmajor = colmajor;
    int steps[64];
    size_t ns = stats_galois_steps(&s.lay, steps, 64);
    must(ckks_secret_key_new(s.ctx, &s.sk), "sk");
    must(ckks_public_key_new(s.sk, &s.pk), "pk");
    must(ckks_relin_key_new(s.sk, &s.rk), "rk");
    must(ckks_galois_keys_new(s.sk, steps, ns, 1, &s.gk), "gk");
    must(stats_encrypt(s.ctx, s.pk, nullptr, s.table, &s.lay, std::ldexp(1.0, 40), &s.enc), "encrypt");
}

StatsSetup &setup(size_t n)
{
    static std::map<size_t, std::unique_ptr<StatsSetup>> cache;
    auto &slot = cache[n];
    if (slot) return *slot;
    slot.reset(new StatsSetup);
    StatsSetup &s = *slot;
    std::vector<int> bits = n == 8192 ? std::vector<int>{60, 40, 40, 60}
                                      : std::vector<int>{60, 40, 40, 40, 40, 60};
    ckks_params_t p;
    must(ckks_params_from_bits(&p, n, bits.data(), bits.size()), "params");
    must(ckks_context_new(&p, &s.ctx), "context");
    const char *real = "../shared/data/framingham_heart_disease_raw.csv";
    char err[256];
    if (access(real, R_OK) == 0 && stats_read_csv(real, &s.table, err, sizeof err) == 0) {
        s.source = "real table";
    } else {
        must(stats_generate_framingham(4240, 1, &s.table), "generate");
        s.source = "generated table";
    }
    keys_and_encrypt(s);
    must(stats_compute(s.ctx, s.enc, STATS_JOB_ALL, s.rk, s.gk, &s.w2, nullptr), "compute");
    std::fprintf(stderr, "hestat-bench: stats at N=%zu on the %s (%zu rows, %zu chunks)\n", n,
                 s.source.c_str(), s.table->nrows, s.lay.chunks);
    return s;
}

double table_bytes(const stats_enc_table_t *e, int compact)
{
    double total = 0;
    for (size_t k = 0; k < e->chunks; k++)
        for (ckks_ciphertext_t *ct : {e->z[k], e->m[k]}) {
            void *buf;
            size_t len;
            /* as tables are written: packed, and compact when seeded */
            if (ckks_write_ciphertext(ct, CKKS_FLAG_PACKED | (compact ? CKKS_FLAG_COMPACT : 0), &buf, &len) == 0) {
                total += (double)len;
                std::free(buf);
            }
        }
    return total;
}

double result_bytes(const stats_enc_result_t *r)
{
    double total = 0;
    for (size_t j = 0; j < r->count; j++) {
        void *buf;
        size_t len;
        if (ckks_write_ciphertext(r->cts[j], CKKS_FLAG_PACKED, &buf, &len) == 0) {
            total += (double)len;
            std::free(buf);
        }
    }
    return total;
}

void report_accuracy(benchmark::State &state, StatsSetup &s, const stats_result_t &out)
{
    size_t C = s.table->ncols;
    std::vector<stats_moments_t> ref(C);
    std::vector<stats_pair_t> refp(C * C);
    stats_reference(s.table, ref.data(), refp.data());
    double wm = 0, ws = 0, wc = 0, wg = 0;
    for (size_t c = 0; c < C; c++) {
        if (std::fabs((double)ref[c].mean) > 1e-3 * s.lay.factor[c])
            wm = std::fmax(wm, (double)(fabsl(out.cols[c].mean - ref[c].mean) / fabsl(ref[c].mean)));
        if (ref[c].sd > 0) ws = std::fmax(ws, (double)(fabsl(out.cols[c].sd - ref[c].sd) / ref[c].sd));
        for (size_t j = 0; j < C; j++)
            if (j != c && !std::isnan((double)refp[c * C + j].corr))
                wc = std::fmax(wc, (double)fabsl(out.pairs[c * C + j].corr - refp[c * C + j].corr));
    }
    int g = stats_column(s.table, "TenYearCHD");
    for (size_t c = 0; g >= 0 && c < C; c++)
        for (int level = 0; level < 2 && (int)c != g; level++) {
            stats_moments_t a, b;
            stats_group(&out, (size_t)g, level, c, &a);
            stats_reference_group(s.table, (size_t)g, level, c, &b);
            if (std::fabs((double)b.mean) > 1e-3 * s.lay.factor[c])
                wg = std::fmax(wg, (double)(fabsl(a.mean - b.mean) / fabsl(b.mean)));
        }
    state.counters["mean_rel"] = wm;
    state.counters["sd_rel"] = ws;
    state.counters["corr_abs"] = wc;
    state.counters["group_mean_rel"] = wg;
}

void BM_encrypt(benchmark::State &state, size_t n, int secret)
{
    StatsSetup &s = setup(n);
    stats_enc_table_t *e = nullptr;
    for (auto _ : state) {
        stats_enc_table_free(e);
        must(stats_encrypt(s.ctx, secret ? nullptr : s.pk, secret ? s.sk : nullptr, s.table, &s.lay,
                           std::ldexp(1.0, 40), &e),
             "encrypt");
    }
    state.counters["upload_MB"] = table_bytes(e, secret) / 1e6;
    state.counters["ciphertexts"] = 2.0 * e->chunks;
    stats_enc_table_free(e);
}

void BM_compute(benchmark::State &state, size_t n, stats_job_t job)
{
    StatsSetup &s = setup(n);
    stats_enc_result_t *r = nullptr;
    stats_counts_t counts{};
    for (auto _ : state) {
        stats_enc_result_free(r);
        must(stats_compute(s.ctx, s.enc, job, s.rk, s.gk, &r, &counts), "compute");
    }
    state.counters["rotations"] = (double)counts.rotations;
    state.counters["relins"] = (double)counts.relinearizations;
    state.counters["mults"] = (double)counts.multiplications;
    state.counters["download_MB"] = result_bytes(r) / 1e6;
    stats_enc_result_free(r);
}

void BM_decrypt(benchmark::State &state, size_t n)
{
    StatsSetup &s = setup(n);
    static stats_result_t out;
    for (auto _ : state) must(stats_decrypt(s.ctx, s.sk, s.w2, &out), "decrypt");
    report_accuracy(state, s, out);
}

/* A generated wide table of cols columns and 8 chunks at N=8192 (cached),
 * laid out row by row or (colmajor) column by column. */
StatsSetup &wide_setup(size_t cols, size_t chunks = 8, int colmajor = 0)
{
    static std::map<std::tuple<size_t, size_t, int>, std::unique_ptr<StatsSetup>> cache;
    auto &slot = cache[{cols, chunks, colmajor}];
    if (slot) return *slot;
    slot.reset(new StatsSetup);
    StatsSetup &s = *slot;
    int bits[] = {60, 40, 40, 60};
    ckks_params_t p;
    must(ckks_params_from_bits(&p, 8192, bits, 4), "params");
    must(ckks_context_new(&p, &s.ctx), "context");
    stats_generator_t *g;
    must(stats_generator_new_wide(1, cols, &g), "generator");
    size_t block = 1;
    while (block < cols) block <<= 1;
    must(stats_generator_next(g, chunks * (4096 / block), &s.table), "generate");
    stats_generator_free(g);
    keys_and_encrypt(s, colmajor);
    return s;
}

// Seconds spent in stats_compute_partial (the per-chunk work) over the
// benchmark's iterations.
double time_partials(benchmark::State &state, StatsSetup &s, stats_job_t job)
{
    double seconds = 0;
    for (auto _ : state) {
        auto t0 = std::chrono::steady_clock::now();
        stats_partial_t *part;
        must(stats_compute_partial(s.ctx, s.enc, job, s.rk, s.gk, 0, 1, &part), "partial");
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        state.PauseTiming();
        stats_partial_free(part);
        state.ResumeTiming();
    }
    return seconds;
}

void BM_wide_chunks(benchmark::State &state, size_t cols, stats_job_t job)
{
    StatsSetup &s = wide_setup(cols);
    double seconds = time_partials(state, s, job);
    double rows = (double)s.table->nrows, C = (double)cols, per_row = seconds / (double)state.iterations() / rows;
    state.counters["rows"] = rows;
    state.counters["us_per_row"] = per_row * 1e6;
    if (job == STATS_JOB_ALL) state.counters["ns_per_row_pair"] = per_row * 1e9 / (C * (C - 1) / 2);
    else state.counters["ns_per_row_col"] = per_row * 1e9 / C;
}

void BM_wide_finish(benchmark::State &state, size_t cols, stats_job_t job)
{
    StatsSetup &s = wide_setup(cols);
    stats_enc_result_t *r = nullptr;
    for (auto _ : state) {
        state.PauseTiming();
        stats_enc_result_free(r);
        stats_partial_t *part;
        must(stats_compute_partial(s.ctx, s.enc, job, s.rk, s.gk, 0, 1, &part), "partial");
        state.ResumeTiming();
        must(stats_partial_finish(s.ctx, s.enc, s.rk, s.gk, part, &r, nullptr), "finish");
        state.PauseTiming();
        stats_partial_free(part);
        state.ResumeTiming();
    }
    state.counters["download_MB"] = result_bytes(r) / 1e6;
    stats_enc_result_free(r);
}

// W2 throughput of one key-switching mode (stats_w2_deferred) on 64 chunks
// of 16 columns (16,384 rows): the per-chunk work, with the accumulators'
// one-off allocation spread over a realistic number of chunks.
void BM_w2_rows(benchmark::State &state, const char *mode, int colmajor)
{
    StatsSetup &s = wide_setup(16, 64, colmajor);
    const char *old = getenv("HESTAT_W2_KEYSWITCH");
    std::string saved = old ? old : "";
    setenv("HESTAT_W2_KEYSWITCH", mode, 1);
    double seconds = time_partials(state, s, STATS_JOB_ALL);
    if (old) setenv("HESTAT_W2_KEYSWITCH", saved.c_str(), 1);
    else unsetenv("HESTAT_W2_KEYSWITCH");
    double per_row = seconds / (double)state.iterations() / (double)s.table->nrows;
    state.counters["rows"] = (double)s.table->nrows;
    state.counters["us_per_row"] = per_row * 1e6;
    state.counters["rows_per_s"] = 1 / per_row;
}

// The server work of a deferred W2 chunk for either layout (see the header:
// a design benchmark; the column-major pattern's sums are not meaningful on
// these row-major ciphertexts, their cost is the same).
void BM_w2_layout(benchmark::State &state, bool columns)
{
    StatsSetup &s = wide_setup(16, 64);
    const size_t K = 8, NT = 4, B = s.lay.block, R = s.lay.slots / B, g = 4;
    const size_t dmax = columns ? B / 2 : B - 1, step = columns ? R : 1, nprod = NT * dmax, chunks = s.enc->chunks;
    std::vector<ckks_ciphertext_t *> h0(nprod), h1(nprod), rr(3 * K);
    for (size_t j = 0; j < nprod; j++) {
        must(ckks_ciphertext_new(s.ctx, 2, 0, &h0[j]), "acc");
        must(ckks_ciphertext_new(s.ctx, 2, 0, &h1[j]), "acc");
    }
    for (auto &c : rr) must(ckks_ciphertext_new(s.ctx, 2, 0, &c), "operand");
    std::vector<const ckks_ciphertext_t *> xs(nprod * K), ys(nprod * K);
    std::vector<uint32_t> ex(nprod * K), ey(nprod * K);
    std::vector<int> acc(nprod);
    double seconds = 0;
    for (auto _ : state) {
        auto t0 = std::chrono::steady_clock::now();
        std::fill(acc.begin(), acc.end(), 0);
        for (size_t c0 = 0; c0 < chunks; c0 += K) {
            const size_t ks = chunks - c0 < K ? chunks - c0 : K;
            for (size_t k = 0; k < ks; k++) {
                const ckks_ciphertext_t *Z = s.enc->z[c0 + k], *M = s.enc->m[c0 + k];
                ckks_ciphertext_t *Rk = rr[3 * k], *W = rr[3 * k + 1], *V = rr[3 * k + 2];
                must(ckks_conjugate(Z, s.gk, Rk), "conjugate");
                must(ckks_add(Rk, Z, Rk), "add");
                must(ckks_sub(M, Rk, W), "sub");
                must(ckks_sub(M, Z, V), "sub");
            }
            for (size_t d = 1; d <= dmax; d++) {
                const size_t x = d % g, b = d / g;
                const uint32_t eb = x ? ckks_galois_elt_rotate(s.ctx, (int)(x * step)) : 1;
                const uint32_t eg = b ? ckks_galois_elt_rotate(s.ctx, -(int)(g * b * step)) : 1;
                for (size_t k = 0; k < ks; k++) {
                    const ckks_ciphertext_t *Z = s.enc->z[c0 + k], *M = s.enc->m[c0 + k];
                    const ckks_ciphertext_t *X[4] = {Z, rr[3 * k], rr[3 * k + 2], M};
                    const ckks_ciphertext_t *Y[4] = {rr[3 * k + 1], Z, M, Z};
                    for (size_t ty = 0; ty < NT; ty++) {
                        const size_t j = (NT * (d - 1) + ty) * ks + k;
                        xs[j] = X[ty];
                        ex[j] = eg;
                        ys[j] = Y[ty];
                        ey[j] = eb;
                    }
                }
            }
            must(ckks_multiply_split_many_galois(nprod, ks, xs.data(), ex.data(), ys.data(), ey.data(), h0.data(),
                                                 h1.data(), acc.data()),
                 "products");
            std::fill(acc.begin(), acc.end(), 1);
        }
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    for (size_t j = 0; j < nprod; j++) {
        ckks_ciphertext_free(h0[j]);
        ckks_ciphertext_free(h1[j]);
    }
    for (auto &c : rr) ckks_ciphertext_free(c);
    const double rows = (double)(chunks * R), per_row = seconds / (double)state.iterations() / rows;
    state.counters["rows"] = rows;
    state.counters["us_per_row"] = per_row * 1e6;
    state.counters["rows_per_s"] = 1 / per_row;
}

}  // namespace

namespace hestat_bench {

void register_stats()
{
    for (size_t n : {8192, 16384}) {
        std::string tail = "/" + std::to_string(n);
        auto reg = [&](const std::string &name, auto fn, auto... args) {
            auto *b = benchmark::RegisterBenchmark((name + tail).c_str(), fn, args...);
            add(b);
            b->Iterations(1)->Repetitions(3);
        };
        reg("stats_encrypt", BM_encrypt, n, 0);
        reg("stats_encrypt_sk", BM_encrypt, n, 1);
        reg("stats_w1", BM_compute, n, STATS_JOB_MEANS);
        reg("stats_w2", BM_compute, n, STATS_JOB_ALL);
        reg("stats_decrypt_w2", BM_decrypt, n);
    }
    auto wide = [](const char *name, auto fn, size_t cols, stats_job_t job) {
        std::string full = std::string(name) + "/" + std::to_string(cols) + "/" + std::to_string((int)job);
        auto *b = benchmark::RegisterBenchmark(full.c_str(), fn, cols, job);
        add(b);
        b->Iterations(1)->Repetitions(3)->Unit(benchmark::kMillisecond);
    };
    for (size_t cols : {16, 64, 128, 256}) {
        wide("stats_wide_chunks", BM_wide_chunks, cols, STATS_JOB_ALL);
        wide("stats_wide_finish", BM_wide_finish, cols, STATS_JOB_ALL);
    }
    for (int colmajor = 0; colmajor <= 1; colmajor++)
        for (const char *mode : {"eager", "deferred"}) {
            std::string name = std::string("stats_w2_rows/16/") + mode + (colmajor ? "/columns" : "");
            auto *b = benchmark::RegisterBenchmark(name.c_str(), BM_w2_rows, mode, colmajor);
            add(b);
            b->Iterations(1)->Repetitions(3)->Unit(benchmark::kMillisecond);
        }
    for (bool columns : {false, true}) {
        auto *b = benchmark::RegisterBenchmark(columns ? "w2_layout/16/columns" : "w2_layout/16/rows", BM_w2_layout,
                                               columns);
        add(b);
        b->Iterations(1)->Repetitions(3)->Unit(benchmark::kMillisecond);
    }
    for (size_t cols : {16, 512}) {
        wide("stats_wide_chunks", BM_wide_chunks, cols, STATS_JOB_MEANS);
        wide("stats_wide_finish", BM_wide_finish, cols, STATS_JOB_MEANS);
    }
}

}  // namespace hestat_bench
