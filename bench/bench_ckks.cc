// ckks_OP/N/L benchmarks (L = data primes): N=8192 {60,40,40,60} and
// N=16384 {60,40x7,60}, scale 2^40, one thread. Each benchmark also reports
// the precision its result keeps (bits, -log2 of the largest slot error
// against the same computation in plaintext) as the counter prec_bits.
// ckks_keyswitch_hybrid/16384/8/dnum and ckks_rotate_hybrid/16384/8/dnum run
// relinearize and rotate with hybrid keys on the same context (add_hybrid).
//
// Key generation allocates its keys (18 MiB for a relinearization key at
// N=16384 L=8) on every iteration. glibc's malloc serves such blocks by mmap
// and raises its threshold after a free only when the freed block was larger
// than the threshold, which a 2 MiB-aligned block never is: whether a key
// landed on fresh pages (the kernel zeroing them inside the timing) or on
// memory the heap had kept depended on what earlier benchmarks had freed, so
// on the filter. register_ckks fixes the thresholds, so that key memory is
// reused as SEAL's memory pool reuses it whatever ran before, and each
// key-generation benchmark makes one untimed key first (the heap grows).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_common.h"

extern "C" {
#include "ckks/ckks.h"
}

namespace {

struct Setup {
    ckks_context_t *ctx = nullptr;
    ckks_secret_key_t *sk = nullptr;
    ckks_public_key_t *pk = nullptr;
    ckks_relin_key_t *rk = nullptr;
    ckks_galois_keys_t *gk = nullptr;  // default set: +-2^i and conjugation
    std::vector<double> a, b;
    ckks_plaintext_t *pa = nullptr;
    ckks_ciphertext_t *ca = nullptr, *cb = nullptr;
    size_t slots = 0, L = 0;
    double scale = std::ldexp(1.0, 40);
};

void must(int rc, const char *what)
{
    if (rc != CKKS_OK) {
        std::fprintf(stderr, "hestat-bench: %s: %s\n", what, ckks_strerror(rc));
        std::exit(1);
    }
}

Setup &get_setup(size_t n)
{
    static std::map<size_t, std::unique_ptr<Setup>> cache;
    auto &slot = cache[n];
    if (slot) return *slot;
    slot.reset(new Setup);
    Setup &s = *slot;
    std::vector<int> bits = n == 8192 ? std::vector<int>{60, 40, 40, 60}
                                      : std::vector<int>{60, 40, 40, 40, 40, 40, 40, 40, 60};
    ckks_params_t p;
    must(ckks_params_from_bits(&p, n, bits.data(), bits.size()), "params");
    must(ckks_context_new(&p, &s.ctx), "context");
    must(ckks_secret_key_new(s.ctx, &s.sk), "secret key");
    must(ckks_public_key_new(s.sk, &s.pk), "public key");
    must(ckks_relin_key_new(s.sk, &s.rk), "relin key");
    must(ckks_galois_keys_new(s.sk, nullptr, 0, 1, &s.gk), "galois keys");
    s.slots = ckks_context_slots(s.ctx);
    s.L = ckks_context_data_primes(s.ctx);
    std::mt19937_64 g(n);  // benchmark data only
    std::uniform_real_distribution<double> d(-1, 1);
    s.a.resize(s.slots);
    s.b.resize(s.slots);
    for (size_t i = 0; i < s.slots; i++) {
        s.a[i] = d(g);
        s.b[i] = d(g);
    }
    must(ckks_plaintext_new(s.ctx, 0, &s.pa), "plaintext");
    must(ckks_encode_real(s.ctx, s.a.data(), s.slots, s.scale, 0, s.pa), "encode");
    must(ckks_ciphertext_new(s.ctx, 2, 0, &s.ca), "ciphertext");
    must(ckks_ciphertext_new(s.ctx, 2, 0, &s.cb), "ciphertext");
    must(ckks_encrypt(s.pk, s.pa, s.ca), "encrypt");
    ckks_plaintext_t *pb;
    must(ckks_plaintext_new(s.ctx, 0, &pb), "plaintext");
    must(ckks_encode_real(s.ctx, s.b.data(), s.slots, s.scale, 0, pb), "encode");
    must(ckks_encrypt(s.pk, pb, s.cb), "encrypt");
    ckks_plaintext_free(pb);
    return s;
}

double precision(Setup &s, const ckks_ciphertext_t *ct, const std::vector<double> &want)
{
    ckks_plaintext_t *pt;
    must(ckks_plaintext_new(s.ctx, 0, &pt), "plaintext");
    must(ckks_decrypt(s.sk, ct, pt), "decrypt");
    std::vector<double> got(s.slots);
    must(ckks_decode(s.ctx, pt, got.data(), nullptr, s.slots), "decode");
    ckks_plaintext_free(pt);
    double e = 0;
    for (size_t i = 0; i < s.slots; i++) e = std::fmax(e, std::fabs(got[i] - want[i]));
    return e > 0 ? -std::log2(e) : 99;
}

// ckks_rotate_level/N/L/np: rotate by 1 a ciphertext of np primes (a fresh
// one mod-switched down) with a key limited to np primes
// (ckks_galois_keys_limit): the stats layer's folds run at np = 2.
void BM_rotate_level(benchmark::State &state, size_t n, size_t np)
{
    Setup &s = get_setup(n);
    ckks_galois_keys_t *gk;
    int one = 1;
    must(ckks_galois_keys_new_seeded(s.sk, &one, 1, 0, &gk), "galois key");
    must(ckks_galois_keys_limit(gk, ckks_galois_elt_rotate(s.ctx, 1), np), "limit");
    ckks_ciphertext_t *a, *out;
    must(ckks_ciphertext_new(s.ctx, 2, 0, &a), "ciphertext");
    must(ckks_ciphertext_new(s.ctx, 2, 0, &out), "ciphertext");
    must(ckks_mod_switch(s.ca, np, a), "mod switch");
    for (auto _ : state) must(ckks_rotate(a, 1, gk, out), "rotate");
    std::vector<double> want(s.slots);
    for (size_t i = 0; i < s.slots; i++) want[i] = s.a[(i + 1) % s.slots];
    state.counters["prec_bits"] = precision(s, out, want);
    ckks_ciphertext_free(a);
    ckks_ciphertext_free(out);
    ckks_galois_keys_free(gk);
}

enum Op {
    KEYGEN, RELIN_KEYGEN, GALOIS_KEYGEN, ENCODE, ENCRYPT, DECRYPT, DECODE, ADD, MULTIPLY,
    RELINEARIZE, RESCALE, ROTATE, SUM_SLOTS
};

// ckks_rotate_hoisted/N/L/k: k rotations of one ciphertext (steps 1, -1, 2,
// -2, 4, ...: keys of the default set) by ckks_rotate_hoisted; the counter
// per_rot is the time (seconds) per rotation.
void BM_hoisted(benchmark::State &state, size_t n, size_t k)
{
    Setup &s = get_setup(n);
    std::vector<ckks_ciphertext_t *> outs(k);
    std::vector<int> steps(k);
    for (size_t i = 0; i < k; i++) {
        int mag = 1 << (i / 2);
        steps[i] = i % 2 ? -mag : mag;
        must(ckks_ciphertext_new(s.ctx, 2, 0, &outs[i]), "ciphertext");
    }
    must(ckks_rotate_hoisted(s.ca, steps.data(), k, s.gk, outs.data()), "warm-up");
    for (auto _ : state) must(ckks_rotate_hoisted(s.ca, steps.data(), k, s.gk, outs.data()), "rotate_hoisted");
    std::vector<double> want(s.slots);
    double prec = 99;
    for (size_t i = 0; i < k; i++) {
        long S = (long)s.slots;
        for (long j = 0; j < S; j++) want[j] = s.a[(j + steps[i] + S) % S];
        prec = std::fmin(prec, precision(s, outs[i], want));
        ckks_ciphertext_free(outs[i]);
    }
    state.counters["prec_bits"] = prec;
    state.counters["per_rot"] = benchmark::Counter(
        (double)k, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// Hybrid key switching on the Setup's context and ciphertexts: dnum digits,
// special primes of `bits` bits each (the context's own special prime unused).
struct Hybrid {
    ckks_hybrid_t *h = nullptr;
    ckks_relin_key_t *rk = nullptr;
    ckks_galois_keys_t *gk = nullptr;  // step 1 only
    int logqp = 0;                     // bits of the data primes and P
};

Hybrid &get_hybrid(Setup &s, size_t dnum, int bits, size_t count)
{
    static std::map<std::string, std::unique_ptr<Hybrid>> cache;
    std::string key = std::to_string(ckks_context_n(s.ctx)) + "/" + std::to_string(dnum) + "/" +
                      std::to_string(bits) + "x" + std::to_string(count);
    auto &slot = cache[key];
    if (slot) return *slot;
    slot.reset(new Hybrid);
    Hybrid &y = *slot;
    std::vector<int> sizes(count, bits);
    ckks_hybrid_params_t hp;
    must(ckks_hybrid_params_from_bits(s.ctx, dnum, sizes.data(), count, &hp), "hybrid params");
    double b = 0;
    for (size_t i = 0; i < s.L; i++) b += std::log2((double)ckks_context_prime(s.ctx, i));
    for (size_t m = 0; m < count; m++) b += std::log2((double)hp.primes[m]);
    y.logqp = (int)std::ceil(b);
    // Over the 128-bit limit only where the registration says so (secure 0).
    hp.allow_insecure = y.logqp > ckks_max_modulus_bits(ckks_context_n(s.ctx));
    must(ckks_hybrid_new(s.ctx, &hp, &y.h), "hybrid");
    must(ckks_relin_key_new_hybrid(s.sk, y.h, &y.rk), "hybrid relin key");
    int one = 1;
    must(ckks_galois_keys_new_hybrid(s.sk, y.h, &one, 1, 0, &y.gk), "hybrid galois keys");
    return y;
}

// ckks_keyswitch_hybrid/N/L/dnum (relinearize a*b) and ckks_rotate_hybrid/N/L/dnum
// (rotate a by 1) with hybrid keys; counters: key_MB (one key), logQP (data
// primes and special primes, bits), secure (1 when logQP is within
// ckks_max_modulus_bits), prec_bits.
void BM_hybrid(benchmark::State &state, size_t n, size_t dnum, int bits, size_t count, bool rotate)
{
    Setup &s = get_setup(n);
    Hybrid &y = get_hybrid(s, dnum, bits, count);
    ckks_ciphertext_t *out, *t3;
    must(ckks_ciphertext_new(s.ctx, 3, 0, &out), "ciphertext");
    must(ckks_ciphertext_new(s.ctx, 3, 0, &t3), "ciphertext");
    must(ckks_multiply(s.ca, s.cb, t3), "multiply");
    std::vector<double> want(s.slots);
    if (rotate) {
        for (auto _ : state) must(ckks_rotate(s.ca, 1, y.gk, out), "rotate");
        for (size_t i = 0; i < s.slots; i++) want[i] = s.a[(i + 1) % s.slots];
    } else {
        for (auto _ : state) must(ckks_relinearize(t3, y.rk, out), "relinearize");
        for (size_t i = 0; i < s.slots; i++) want[i] = s.a[i] * s.b[i];
    }
    state.counters["prec_bits"] = precision(s, out, want);
    state.counters["key_MB"] = (double)ckks_relin_key_bytes(y.rk) / 1048576.0;
    state.counters["logQP"] = y.logqp;
    state.counters["secure"] = y.logqp <= ckks_max_modulus_bits(n);
    ckks_ciphertext_free(out);
    ckks_ciphertext_free(t3);
}

// One key of the kind op generates (KEYGEN: a secret and a public key), freed.
void make_keys(Setup &s, Op op)
{
    if (op == KEYGEN) {
        ckks_secret_key_t *sk;
        ckks_public_key_t *pk;
        must(ckks_secret_key_new(s.ctx, &sk), "sk");
        must(ckks_public_key_new(sk, &pk), "pk");
        ckks_public_key_free(pk);
        ckks_secret_key_free(sk);
    } else if (op == RELIN_KEYGEN) {
        ckks_relin_key_t *rk;
        must(ckks_relin_key_new(s.sk, &rk), "rk");
        ckks_relin_key_free(rk);
    } else {
        int one = 1;
        ckks_galois_keys_t *gk;
        must(ckks_galois_keys_new(s.sk, &one, 1, 0, &gk), "gk");
        ckks_galois_keys_free(gk);
    }
}

void BM_ckks(benchmark::State &state, size_t n, Op op)
{
    Setup &s = get_setup(n);
    ckks_ciphertext_t *out, *t3;
    ckks_plaintext_t *pt;
    must(ckks_ciphertext_new(s.ctx, 3, 0, &out), "ciphertext");
    must(ckks_ciphertext_new(s.ctx, 3, 0, &t3), "ciphertext");
    must(ckks_plaintext_new(s.ctx, 0, &pt), "plaintext");
    std::vector<double> want(s.slots), vals(s.slots);
    must(ckks_multiply(s.ca, s.cb, t3), "multiply");  // input for relinearize
    double prec = 0;
    switch (op) {
    case KEYGEN:
    case RELIN_KEYGEN:
    case GALOIS_KEYGEN:
        make_keys(s, op);  // untimed warm-up
        for (auto _ : state) make_keys(s, op);
        break;
    case ENCODE:
        for (auto _ : state) must(ckks_encode_real(s.ctx, s.a.data(), s.slots, s.scale, 0, pt), "encode");
        must(ckks_decode(s.ctx, pt, vals.data(), nullptr, s.slots), "decode");
        prec = 0;
        for (size_t i = 0; i < s.slots; i++) prec = std::fmax(prec, std::fabs(vals[i] - s.a[i]));
        prec = -std::log2(prec);
        break;
    case ENCRYPT:
        for (auto _ : state) must(ckks_encrypt(s.pk, s.pa, out), "encrypt");
        prec = precision(s, out, s.a);
        break;
    case DECRYPT:
        for (auto _ : state) must(ckks_decrypt(s.sk, s.ca, pt), "decrypt");
        prec = precision(s, s.ca, s.a);
        break;
    case DECODE:
        must(ckks_decrypt(s.sk, s.ca, pt), "decrypt");
        for (auto _ : state) must(ckks_decode(s.ctx, pt, vals.data(), nullptr, s.slots), "decode");
        prec = precision(s, s.ca, s.a);
        break;
    case ADD:
        for (auto _ : state) must(ckks_add(s.ca, s.cb, out), "add");
        for (size_t i = 0; i < s.slots; i++) want[i] = s.a[i] + s.b[i];
        prec = precision(s, out, want);
        break;
    case MULTIPLY:
        for (auto _ : state) must(ckks_multiply(s.ca, s.cb, out), "multiply");
        for (size_t i = 0; i < s.slots; i++) want[i] = s.a[i] * s.b[i];
        prec = precision(s, out, want);
        break;
    case RELINEARIZE:
        for (auto _ : state) must(ckks_relinearize(t3, s.rk, out), "relinearize");
        for (size_t i = 0; i < s.slots; i++) want[i] = s.a[i] * s.b[i];
        prec = precision(s, out, want);
        state.counters["key_MB"] = (double)ckks_relin_key_bytes(s.rk) / 1048576.0;
        break;
    case RESCALE:
        must(ckks_relinearize(t3, s.rk, t3), "relinearize");
        for (auto _ : state) must(ckks_rescale(t3, out), "rescale");
        for (size_t i = 0; i < s.slots; i++) want[i] = s.a[i] * s.b[i];
        prec = precision(s, out, want);
        break;
    case ROTATE:
        for (auto _ : state) must(ckks_rotate(s.ca, 1, s.gk, out), "rotate");
        for (size_t i = 0; i < s.slots; i++) want[i] = s.a[(i + 1) % s.slots];
        prec = precision(s, out, want);
        break;
    case SUM_SLOTS: {
        for (auto _ : state) must(ckks_sum_slots(s.ca, s.gk, out), "sum");
        double total = 0;
        for (double v : s.a) total += v;
        for (size_t i = 0; i < s.slots; i++) want[i] = total;
        prec = precision(s, out, want);
        break;
    }
    }
    if (prec != 0) state.counters["prec_bits"] = prec;
    ckks_ciphertext_free(out);
    ckks_ciphertext_free(t3);
    ckks_plaintext_free(pt);
}

}  // namespace

namespace hestat_bench {

// Hybrid configurations, N=16384 L=8 (data primes 60 + 7 x 40 = 340 bits,
// 438 allowed): dnum 8 with one 60-bit special prime (SEAL's shape, 400 bits),
// dnum 4 with two 49-bit ones (438 bits: the limit), and dnum 2 with three
// 61-bit ones (523 bits: over the limit, secure 0, for the trend only).
void add_hybrid(size_t n, size_t L, bool rotate)
{
    if (n != 16384) return;
    static const struct {
        size_t dnum;
        int bits;
        size_t count;
    } cfg[] = {{8, 60, 1}, {4, 49, 2}, {2, 61, 3}};
    for (const auto &c : cfg) {
        std::string name = std::string(rotate ? "ckks_rotate_hybrid/" : "ckks_keyswitch_hybrid/") +
                           std::to_string(n) + "/" + std::to_string(L) + "/" + std::to_string(c.dnum);
        add(benchmark::RegisterBenchmark(name.c_str(), BM_hybrid, n, c.dnum, c.bits, c.count, rotate));
    }
}

void register_ckks()
{
    // Fixed thresholds (see the top of this file): blocks up to 32 MiB from
    // the heap, which keeps up to 256 MiB of freed memory.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    static const struct {
        const char *name;
        Op op;
    } ops[] = {{"keygen", KEYGEN},   {"relin_keygen", RELIN_KEYGEN}, {"galois_keygen", GALOIS_KEYGEN},
               {"encode", ENCODE},   {"encrypt", ENCRYPT},           {"decrypt", DECRYPT},
               {"decode", DECODE},   {"add", ADD},                   {"multiply", MULTIPLY},
               {"relinearize", RELINEARIZE}, {"rescale", RESCALE},   {"rotate", ROTATE},
               {"sum_slots", SUM_SLOTS}};
    for (size_t n : {8192, 16384}) {
        size_t L = n == 8192 ? 3 : 8;
        for (const auto &o : ops) {
            std::string name = std::string("ckks_") + o.name + "/" + std::to_string(n) + "/" +
                               std::to_string(L);
            add(benchmark::RegisterBenchmark(name.c_str(), BM_ckks, n, o.op));
            if (o.op == RELINEARIZE || o.op == ROTATE) add_hybrid(n, L, o.op == ROTATE);
            if (o.op == ROTATE) {
                for (size_t np : {L, (size_t)2}) {
                    std::string ln = std::string("ckks_rotate_level/") + std::to_string(n) + "/" +
                                     std::to_string(L) + "/" + std::to_string(np);
                    add(benchmark::RegisterBenchmark(ln.c_str(), BM_rotate_level, n, np));
                }
                for (size_t k : {1, 2, 4, 8}) {
                    std::string hn = std::string("ckks_rotate_hoisted/") + std::to_string(n) + "/" +
                                     std::to_string(L) + "/" + std::to_string(k);
                    add(benchmark::RegisterBenchmark(hn.c_str(), BM_hoisted, n, k));
                }
            }
        }
    }
}

}  // namespace hestat_bench
