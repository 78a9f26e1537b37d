// glm_* benchmarks: logistic and Poisson regression with the analyst in the
// loop (issue 12), on the real Framingham table (../shared/data, when
// present) or the generated one of the same size; N=16384, 58,40x8,60.
//   glm_round/binomial/16384  server: the last round (score, information,
//                             deviance) at R's estimates, the data side prepared
//                             before (stats_glm_prepare)
//                             of TenYearCHD ~ age+Gender+cigsPerDay+totChol+sysBP+glucose
//   glm_round/poisson/16384   server: one round of cigsPerDay ~ age+Gender+BMI
//   glm_fit/binomial/16384    client + server: every round to convergence
//   glm_fit/poisson/16384
// Counters: download_MB (a round's result), levels (rescales a round's
// deepest path uses, of the data primes), rounds, server_s (all rounds of a
// fit, wall) and server_cpu_s / cpu_s (process CPU time: the measure that
// survives a loaded machine), rotations and relinearizations a round.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>

#include "bench_common.h"

extern "C" {
#include "stats/stats.h"
}

namespace {

const char *kModels[2] = {"TenYearCHD~age+Gender+cigsPerDay+totChol+sysBP+glucose:binomial",
                          "cigsPerDay~age+Gender+BMI:poisson"};

struct GlmSetup {
    ckks_context_t *ctx = nullptr;
    ckks_secret_key_t *sk = nullptr;
    stats_study_t *study = nullptr;
    stats_table_t *table = nullptr;
    stats_layout_t lay{};
    stats_enc_table_t *enc = nullptr;
    stats_glm_model_t model{};
    double lo[STATS_MAX_REGRESSORS + 1] = {0}, hi[STATS_MAX_REGRESSORS + 1] = {0};
    std::string source;
};

void must(int rc, const char *what)
{
    if (rc != 0) {
        std::fprintf(stderr, "hestat-bench: %s failed (%d): %s\n", what, rc, stats_error());
        std::exit(1);
    }
}

GlmSetup &setup(int which)
{
    static std::map<int, std::unique_ptr<GlmSetup>> cache;
    auto &slot = cache[which];
    if (slot) return *slot;
    slot.reset(new GlmSetup);
    GlmSetup &s = *slot;
    ckks_params_t p;
    must(ckks_params_from_bits(&p, STATS_GLM_N, stats_glm_bits, STATS_GLM_NBITS), "params");
    must(ckks_context_new(&p, &s.ctx), "context");
    const char *real = "../shared/data/framingham_heart_disease_raw.csv";
    char err[256];
    stats_table_t *raw = nullptr;
    if (access(real, R_OK) == 0 && stats_read_csv(real, &raw, err, sizeof err) == 0) {
        s.source = "real table";
    } else {
        must(stats_generate_framingham(4240, 1, &raw), "generate");
        s.source = "generated table";
    }
    std::string spec = std::string("glm:") + kModels[which];
    must(stats_spec_derive(raw, spec.c_str(), &s.table, err, sizeof err), "spec");
    stats_table_free(raw);
    must(ckks_secret_key_new(s.ctx, &s.sk), "sk");
    must(stats_study_create(s.ctx, s.table, s.sk, &s.study), "study"); // the study owns the context
    s.lay = s.study->layout;
    s.lay.nrows = s.table->nrows;
    s.lay.chunks = (s.table->nrows + s.lay.rows_per_ct - 1) / s.lay.rows_per_ct;
    must(stats_encrypt(s.study->ctx, s.study->pk, nullptr, s.table, &s.lay, std::ldexp(1.0, 40), &s.enc), "encrypt");
    must(stats_glm_parse(kModels[which], &s.lay, &s.model, err, sizeof err), "model");
    for (size_t j = 1; j <= s.model.k; j++)
        for (size_t r = 0; r < s.table->nrows; r++) {
            double v = stats_value(s.table, r, s.model.x[j - 1]);
            if (std::isnan(v)) continue;
            s.lo[j] = std::fmin(s.lo[j], v);
            s.hi[j] = std::fmax(s.hi[j], v);
        }
    std::fprintf(stderr, "hestat-bench: glm at N=16384 on the %s (%zu rows, %zu chunks)\n", s.source.c_str(),
                 s.table->nrows, s.lay.chunks);
    return s;
}

double cpu_now()
{
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Local {
    GlmSetup *s;
    double server_s = 0, server_cpu_s = 0, download = 0;
    stats_counts_t counts{};
    stats_glm_prep_t *prep = nullptr;
};

int local_round(void *arg, const stats_glm_model_t *m, const stats_glm_point_t *pt, stats_glm_totals_t *out)
{
    Local *g = static_cast<Local *>(arg);
    stats_glm_enc_t *e = nullptr;
    const stats_enc_table_t *tabs[1] = {g->s->enc};
    auto t0 = std::chrono::steady_clock::now();
    double c0 = cpu_now();
    int rc = g->prep ? 0 : stats_glm_prepare(g->s->study->ctx, tabs, 1, m, g->s->study->rk, g->s->study->gk, &g->prep,
                                             nullptr);
    if (!rc) rc = stats_glm_round_prepared(g->prep, pt, &e, &g->counts);
    g->server_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    g->server_cpu_s += cpu_now() - c0;
    g->download = 0;
    void *buf = nullptr;
    size_t len = 0;
    if (!rc && stats_glm_enc_write(e, &buf, &len) == 0) g->download = (double)len;
    std::free(buf);
    if (!rc) rc = stats_glm_decrypt(g->s->study->ctx, g->s->sk, &g->s->lay, m, pt, e, out);
    stats_glm_enc_free(e);
    return rc;
}

void BM_fit(benchmark::State &state, int which)
{
    GlmSetup &s = setup(which);
    stats_glm_fit_t fit{};
    Local g;
    for (auto _ : state) {
        g = Local();
        g.s = &s;
        must(stats_glm_fit(&s.lay, &s.model, s.lo, s.hi, 8, local_round, &g, &fit), "fit");
        stats_glm_prep_free(g.prep);
        g.prep = nullptr;
    }
    state.counters["rounds"] = fit.rounds;
    state.counters["server_s"] = g.server_s;
    state.counters["server_cpu_s"] = g.server_cpu_s;
    state.counters["cpu_s_per_round"] = g.server_cpu_s / fit.rounds;
    state.counters["download_MB"] = g.download / 1e6;
    state.counters["max_abs_score"] = (double)fit.max_abs_score;
}

void BM_round(benchmark::State &state, int which)
{
    GlmSetup &s = setup(which);
    stats_glm_point_t pt{};
    for (size_t j = 1; j <= s.model.k; j++) {
        pt.lo[j] = s.lo[j] / s.lay.factor[s.model.x[j - 1]];
        pt.hi[j] = s.hi[j] / s.lay.factor[s.model.x[j - 1]];
    }
    // A final round: at R's estimates on the real table (glm_reference.R), with the deviance.
    static const double mle[2][7] = {
        {-9.1650319688380755, 0.066913908327172547, 0.54932192896278054, 0.019902374116328021,
         0.0024639033688499596, 0.016953425656468884, 0.0076170178839207328},
        {4.1394888776756895, -0.028130920311268008, 0.87342817038692744, -0.040904751537877086}};
    pt.gamma[0] = mle[which][0];
    for (size_t j = 1; j <= s.model.k; j++) pt.gamma[j] = mle[which][j] * s.lay.factor[s.model.x[j - 1]];
    pt.deviance = 1;
    stats_glm_enc_t *e = nullptr;
    stats_counts_t counts{};
    const stats_enc_table_t *tabs[1] = {s.enc};
    stats_glm_prep_t *prep = nullptr;
    must(stats_glm_prepare(s.study->ctx, tabs, 1, &s.model, s.study->rk, s.study->gk, &prep, nullptr), "prepare");
    double c0 = cpu_now();
    for (auto _ : state) {
        stats_glm_enc_free(e);
        e = nullptr;
        must(stats_glm_round_prepared(prep, &pt, &e, &counts), "round");
    }
    double bytes = 0;
    void *buf = nullptr;
    size_t len = 0;
    if (stats_glm_enc_write(e, &buf, &len) == 0) bytes = (double)len;
    std::free(buf);
    state.counters["cpu_s"] = cpu_now() - c0;
    state.counters["download_MB"] = bytes / 1e6;
    state.counters["levels"] = (double)(s.enc->z[0]->nprimes - 1); // the samples are taken at the first prime
    state.counters["rotations"] = (double)counts.rotations;
    state.counters["relins"] = (double)counts.relinearizations;
    stats_glm_enc_free(e);
    stats_glm_prep_free(prep);
}

}  // namespace

namespace hestat_bench {

void register_glm()
{
    static const char *fam[2] = {"binomial", "poisson"};
    for (int which = 0; which < 2; which++) {
        std::string tail = std::string("/") + fam[which] + "/16384";
        auto *b = benchmark::RegisterBenchmark(("glm_round" + tail).c_str(), BM_round, which);
        add(b);
        b->Iterations(1)->Repetitions(1);
        b = benchmark::RegisterBenchmark(("glm_fit" + tail).c_str(), BM_fit, which);
        add(b);
        b->Iterations(1)->Repetitions(1);
    }
}

}  // namespace hestat_bench
