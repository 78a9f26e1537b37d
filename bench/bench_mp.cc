// Multiparty benchmarks (ckks/multiparty.c), N=8192 {60,40,40,60}, one thread:
//   mp_party_keygen/8192/3/E   everything one party computes for a study with
//                              E Galois elements: its secret share and
//                              ephemeral key, the CKG share, both RKG rounds
//                              and E GKG shares;
//   mp_single_keygen/8192/3/E  the single-key equivalent (secret, public,
//                              relinearization and E Galois keys), to compare;
//   mp_pcks_share/8192/L       one party's key-switch share of one result
//                              ciphertext with L primes (smudging 2^20);
//   mp_pcks_combine/8192/L/K   summing K shares and applying them.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_common.h"

extern "C" {
#include "ckks/ckks.h"
}

namespace {

void must(int rc, const char *what)
{
    if (rc != CKKS_OK) {
        std::fprintf(stderr, "hestat-bench: %s: %s\n", what, ckks_strerror(rc));
        std::exit(1);
    }
}

struct MpSetup {
    ckks_context_t *ctx = nullptr;
    uint8_t seed[CKKS_MP_SEED_BYTES];
    std::vector<int> steps;  // the E - 1 rotations; conjugation is the last element
    ckks_mp_share_t *r1 = nullptr;  // a round-1 sum, input of round 2
    ckks_secret_key_t *analyst = nullptr;
    ckks_public_key_t *analyst_pk = nullptr;
    ckks_ciphertext_t *ct[4] = {};  // a ciphertext with L primes, index L
};

MpSetup &mp_setup()
{
    static MpSetup *s = nullptr;
    if (s) return *s;
    s = new MpSetup;
    static const int bits[] = {60, 40, 40, 60};
    ckks_params_t p;
    must(ckks_params_from_bits(&p, 8192, bits, 4), "params");
    must(ckks_context_new(&p, &s->ctx), "context");
    for (size_t i = 0; i < sizeof s->seed; i++) s->seed[i] = (uint8_t)i;
    for (int st = 1; st < 4096; st <<= 1) s->steps.push_back(st);
    ckks_secret_key_t *si, *ui;
    must(ckks_secret_key_new(s->ctx, &si), "sk");
    must(ckks_secret_key_new(s->ctx, &ui), "sk");
    must(ckks_mp_rkg_round1(si, ui, s->seed, &s->r1), "rkg1");
    must(ckks_secret_key_new(s->ctx, &s->analyst), "analyst");
    must(ckks_public_key_new(s->analyst, &s->analyst_pk), "analyst pk");
    ckks_public_key_t *pk;
    must(ckks_public_key_new(si, &pk), "pk");
    std::vector<double> v(ckks_context_slots(s->ctx), 0.5);
    ckks_plaintext_t *pt;
    for (size_t L = 1; L <= 3; L++) {
        must(ckks_plaintext_new(s->ctx, L, &pt), "plaintext");
        must(ckks_encode_real(s->ctx, v.data(), v.size(), 0x1p35, L, pt), "encode");
        must(ckks_ciphertext_new(s->ctx, 2, L, &s->ct[L]), "ciphertext");
        must(ckks_encrypt(pk, pt, s->ct[L]), "encrypt");
        ckks_plaintext_free(pt);
    }
    ckks_public_key_free(pk);
    ckks_secret_key_free(si);
    ckks_secret_key_free(ui);
    return *s;
}

void BM_party_keygen(benchmark::State &state, size_t E)
{
    MpSetup &s = mp_setup();
    size_t bytes = 0;
    for (auto _ : state) {
        ckks_secret_key_t *si, *ui;
        ckks_mp_share_t *sh;
        must(ckks_secret_key_new(s.ctx, &si), "share");
        must(ckks_secret_key_new(s.ctx, &ui), "ephemeral");
        bytes = 0;
        must(ckks_mp_ckg_share(si, s.seed, &sh), "ckg");
        bytes += sh->npolys * sh->nprimes * 8192 * 8;
        ckks_mp_share_free(sh);
        must(ckks_mp_rkg_round1(si, ui, s.seed, &sh), "rkg1");
        bytes += sh->npolys * sh->nprimes * 8192 * 8;
        ckks_mp_share_free(sh);
        for (size_t e = 0; e < E; e++) {
            uint32_t elt = e + 1 < E ? ckks_galois_elt_rotate(s.ctx, s.steps[e]) : ckks_galois_elt_conjugate(s.ctx);
            must(ckks_mp_gkg_share(si, s.seed, elt, &sh), "gkg");
            bytes += sh->npolys * sh->nprimes * 8192 * 8;
            ckks_mp_share_free(sh);
        }
        must(ckks_mp_rkg_round2(si, ui, s.r1, &sh), "rkg2");
        bytes += sh->npolys * sh->nprimes * 8192 * 8;
        ckks_mp_share_free(sh);
        ckks_secret_key_free(ui);
        ckks_secret_key_free(si);
    }
    state.counters["upload_MB"] = (double)bytes / 1e6;
}

void BM_single_keygen(benchmark::State &state, size_t E)
{
    MpSetup &s = mp_setup();
    std::vector<int> steps(s.steps.begin(), s.steps.begin() + (E - 1));
    int none = 0;  // non-NULL with count 0: conjugation only, not the default set
    const int *sp = steps.empty() ? &none : steps.data();
    for (auto _ : state) {
        ckks_secret_key_t *sk;
        ckks_public_key_t *pk;
        ckks_relin_key_t *rk;
        ckks_galois_keys_t *gk;
        must(ckks_secret_key_new(s.ctx, &sk), "sk");
        must(ckks_public_key_new_seeded(sk, &pk), "pk");
        must(ckks_relin_key_new_seeded(sk, &rk), "rk");
        must(ckks_galois_keys_new_seeded(sk, sp, steps.size(), 1, &gk), "gk");
        ckks_galois_keys_free(gk);
        ckks_relin_key_free(rk);
        ckks_public_key_free(pk);
        ckks_secret_key_free(sk);
    }
}

void BM_pcks_share(benchmark::State &state, size_t L)
{
    MpSetup &s = mp_setup();
    ckks_secret_key_t *si;
    must(ckks_secret_key_new(s.ctx, &si), "share");
    for (auto _ : state) {
        ckks_mp_share_t *sh;
        must(ckks_mp_pcks_share(si, s.analyst_pk, s.ct[L], 20, &sh), "pcks");
        ckks_mp_share_free(sh);
    }
    ckks_secret_key_free(si);
}

void BM_pcks_combine(benchmark::State &state, size_t L, size_t K)
{
    MpSetup &s = mp_setup();
    std::vector<ckks_mp_share_t *> sh(K);
    ckks_secret_key_t *si;
    must(ckks_secret_key_new(s.ctx, &si), "share");
    for (auto &x : sh) must(ckks_mp_pcks_share(si, s.analyst_pk, s.ct[L], 20, &x), "pcks");
    ckks_ciphertext_t *out;
    must(ckks_ciphertext_new(s.ctx, 2, L, &out), "ciphertext");
    for (auto _ : state) {
        ckks_mp_share_t *acc;
        must(ckks_mp_share_zero_like(sh[0], &acc), "zero");
        for (auto x : sh) must(ckks_mp_aggregate(acc, x), "aggregate");
        must(ckks_mp_pcks_apply(s.ct[L], acc, out), "apply");
        ckks_mp_share_free(acc);
    }
    for (auto x : sh) ckks_mp_share_free(x);
    ckks_ciphertext_free(out);
    ckks_secret_key_free(si);
}

}  // namespace

namespace hestat_bench {

void register_mp()
{
    for (size_t E : {1, 13}) {
        std::string e = std::to_string(E);
        add(benchmark::RegisterBenchmark(("mp_party_keygen/8192/3/" + e).c_str(), BM_party_keygen, E));
        add(benchmark::RegisterBenchmark(("mp_single_keygen/8192/3/" + e).c_str(), BM_single_keygen, E));
    }
    for (size_t L : {1, 3}) {
        std::string l = std::to_string(L);
        add(benchmark::RegisterBenchmark(("mp_pcks_share/8192/" + l).c_str(), BM_pcks_share, L));
        add(benchmark::RegisterBenchmark(("mp_pcks_combine/8192/" + l + "/3").c_str(), BM_pcks_combine, L, (size_t)3));
    }
}

}  // namespace hestat_bench
