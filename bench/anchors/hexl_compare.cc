// hestat-vs-hexl: hestat's NTT and element-wise kernels side by side with
// Intel HEXL's, in one process, interleaved. Built only by
// scripts/bench-anchors.sh against a HEXL install the user names; no HEXL
// code is part of hestat.
//
// For N = 16384 (or --n N) and 50- and 60-bit primes (the largest q < 2^bits
// with q = 1 mod 2N, as hestat-bench uses), each round times every kernel
// once, in alternating order (hestat first in even rounds, HEXL first in odd
// ones); a kernel's time in a round is the mean over a batch of calls. The
// report gives the median and minimum over the rounds of thread CPU time and
// of wall time per call, and HEXL/hestat ratios of the medians (> 1: hestat
// is faster). Outputs are checked to be identical first.
//
// Usage: hestat-vs-hexl [--n N] [--rounds R] [--batch-us US]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "hexl/hexl.hpp"

extern "C" {
#include "ntt/ntt.h"
}

namespace {

double thread_cpu()
{
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

double wall()
{
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

struct Kernel {
    std::string op, impl;
    int bits;
    std::function<void()> call;
    std::vector<double> cpu_us, wall_us;
    size_t batch = 1;
    Kernel(const char *o, const char *i, int b, std::function<void()> f)
        : op(o), impl(i), bits(b), call(std::move(f))
    {
    }
};

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

void cpu_line()
{
#if defined(__x86_64__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned family = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    if (family == 0x6 || family >= 0xf) model |= ((a >> 16) & 0xf) << 4;
    std::printf("CPU family %u model %u; hestat backend %s\n", family, model,
                ntt_ops_default()->name);
#endif
}

}  // namespace

int main(int argc, char **argv)
{
    size_t n = 16384;
    int rounds = 41;
    double batch_us = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--n")) n = std::strtoul(argv[i + 1], nullptr, 10);
        else if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--batch-us")) batch_us = std::atof(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: %s [--n N] [--rounds R] [--batch-us US]\n", argv[0]);
            return 2;
        }
    }
    cpu_line();
    const ntt_ops_t *ops = ntt_ops_default();
    std::vector<Kernel> ks;
    // Every buffer 64-byte aligned (ntt_alloc), for both libraries alike.
    struct Buf {
        uint64_t *p = nullptr;
        size_t n = 0;
        explicit Buf(size_t n_ = 0) : p(n_ ? ntt_alloc(n_) : nullptr), n(n_) {}
        Buf(const Buf &o) : Buf(o.n) { std::copy(o.p, o.p + n, p); }
        Buf &operator=(const Buf &o)
        {
            std::copy(o.p, o.p + n, p);
            return *this;
        }
        ~Buf() { ntt_free(p); }
        uint64_t *data() { return p; }
        uint64_t &operator[](size_t i) { return p[i]; }
        bool operator==(const Buf &o) const { return std::equal(p, p + n, o.p); }
    };
    struct Data {
        ntt_tables_t *t = nullptr;
        uint64_t q = 0;
        Buf a, b, r, h;
        intel::hexl::NTT *hx = nullptr;
        explicit Data(size_t n) : a(n), b(n), r(n), h(n) {}
    };
    std::vector<Data *> keep;
    for (int bits : {50, 60}) {
        Data *d = new Data(n);
        keep.push_back(d);
        if (ntt_coeff_modulus(n, &bits, 1, &d->q) != NTT_OK ||
            ntt_tables_new(n, d->q, &d->t) != NTT_OK) {
            std::fprintf(stderr, "no %d-bit prime for N=%zu\n", bits, n);
            return 1;
        }
        d->hx = new intel::hexl::NTT(n, d->q);
        std::mt19937_64 g(bits);
        for (size_t i = 0; i < n; i++) {
            d->a[i] = g() % d->q;
            d->b[i] = g() % d->q;
        }
        // Identical outputs, or the comparison means nothing.
        Buf x = d->a, y = d->a;
        ops->forward(d->t, x.data(), 0);
        d->hx->ComputeForward(y.data(), d->a.data(), 1, 1);
        bool same_f = x == y;
        ops->inverse(d->t, x.data(), 0);
        d->hx->ComputeInverse(y.data(), y.data(), 1, 1);
        bool same_i = x == y && x == d->a;
        ops->mul(x.data(), d->a.data(), d->b.data(), n, ntt_tables_modulus(d->t));
        intel::hexl::EltwiseMultMod(y.data(), d->a.data(), d->b.data(), n, d->q, 1);
        bool same_m = x == y;
        std::printf("%d-bit q=%llu: outputs identical: forward %s, inverse %s, mul %s\n", bits,
                    (unsigned long long)d->q, same_f ? "yes" : "NO", same_i ? "yes" : "NO",
                    same_m ? "yes" : "NO");
        if (!same_f || !same_i || !same_m) return 1;
        // The transforms run in place on r/h, which stay in [0, q).
        d->r = d->a;
        d->h = d->a;
        ks.emplace_back("forward", "hestat", bits, [d, ops] { ops->forward(d->t, d->r.data(), 0); });
        ks.emplace_back("forward", "hexl", bits,
                      [d] { d->hx->ComputeForward(d->h.data(), d->h.data(), 1, 1); });
        ks.emplace_back("inverse", "hestat", bits, [d, ops] { ops->inverse(d->t, d->r.data(), 0); });
        ks.emplace_back("inverse", "hexl", bits,
                      [d] { d->hx->ComputeInverse(d->h.data(), d->h.data(), 1, 1); });
        const ntt_modulus_t *m = ntt_tables_modulus(d->t);
        ks.emplace_back("eltwise_mul", "hestat", bits,
                      [d, ops, m, n] { ops->mul(d->r.data(), d->a.data(), d->b.data(), n, m); });
        ks.emplace_back("eltwise_mul", "hexl", bits, [d, n] {
                          intel::hexl::EltwiseMultMod(d->h.data(), d->a.data(), d->b.data(), n,
                                                      d->q, 1);
                      });
    }
    // Batch sizes: about batch_us of calls each, from a warm-up.
    for (Kernel &k : ks) {
        for (int i = 0; i < 20; i++) k.call();
        double t0 = wall();
        for (int i = 0; i < 200; i++) k.call();
        double per = (wall() - t0) / 200 * 1e6;
        k.batch = std::max<size_t>(1, (size_t)(batch_us / per));
    }
    for (int r = 0; r < rounds; r++) {
        for (size_t p = 0; p < ks.size(); p += 2) {
            for (int s = 0; s < 2; s++) {
                Kernel &k = ks[p + ((r + s) & 1)];
                double c0 = thread_cpu(), w0 = wall();
                for (size_t i = 0; i < k.batch; i++) k.call();
                double c1 = thread_cpu(), w1 = wall();
                k.cpu_us.push_back((c1 - c0) / k.batch * 1e6);
                k.wall_us.push_back((w1 - w0) / k.batch * 1e6);
            }
        }
    }
    std::printf("N=%zu, %d rounds, microseconds per call (thread CPU time; wall time in "
                "brackets)\n",
                n, rounds);
    std::printf("%-12s %4s %10s %10s %10s %10s %8s %8s\n", "op", "bits", "hestat med", "min",
                "HEXL med", "min", "HEXL/hs", "(wall)");
    for (size_t p = 0; p < ks.size(); p += 2) {
        Kernel &h = ks[p], &x = ks[p + 1];
        double hm = median(h.cpu_us), xm = median(x.cpu_us);
        double hw = median(h.wall_us), xw = median(x.wall_us);
        std::printf("%-12s %4d %10.2f %10.2f %10.2f %10.2f %7.2fx %7.2fx\n", h.op.c_str(), h.bits,
                    hm, *std::min_element(h.cpu_us.begin(), h.cpu_us.end()), xm,
                    *std::min_element(x.cpu_us.begin(), x.cpu_us.end()), xm / hm, xw / hw);
    }
    for (Data *d : keep) {
        ntt_tables_free(d->t);
        delete d->hx;
        delete d;
    }
    return 0;
}
