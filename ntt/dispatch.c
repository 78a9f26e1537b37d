/*
 * Backend choice: read CPUID (and XGETBV, so the OS saves the wide registers)
 * once, pick the widest backend the CPU and this build have, and honour
 * HESTAT_SIMD=scalar|avx2|avx512|avx512r4 when that backend is available.
 *
 * The AVX-512 kernels come in two schedules of the same arithmetic, and the
 * microarchitecture picks one (both are available to HESTAT_SIMD and tested):
 *   - avx512: one butterfly stage per pass over the array. Tuned on AMD Zen 4
 *     (family 25), which splits each 512-bit operation in two halves, so the
 *     arithmetic, not memory, bounds it; the default there and on every CPU
 *     not named below (Intel included) as before.
 *   - avx512r4: two stages per pass, the stages that fit in L1 done block by
 *     block, the last four stages in registers. The default on AMD family 26
 *     (Zen 5) and later, whose full-width 512-bit units made the one-stage
 *     schedule wait on loads and stores.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntt_impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* AMD's display family (base + extended), or 0 for other vendors. */
static unsigned amd_family(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    /* "AuthenticAMD" in EBX, EDX, ECX */
    if (b != 0x68747541u || d != 0x69746e65u || c != 0x444d4163u) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    unsigned family = (a >> 8) & 0xf;
    return family == 0xf ? family + ((a >> 20) & 0xff) : family;
}

/* The AVX-512 schedule for this CPU (see the top of this file). */
static ntt_simd_t preferred_avx512(void)
{
    return amd_family() >= 26 ? NTT_SIMD_AVX512R4 : NTT_SIMD_AVX512;
}

/* Bit i set: backend i is usable on this CPU. */
static unsigned cpu_backends(void)
{
    unsigned mask = 1u << NTT_SIMD_SCALAR;
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return mask;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return mask;
    uint64_t xcr0 = read_xcr0();
    int ymm_ok = (xcr0 & 0x6) == 0x6;          /* SSE and AVX state */
    int zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7) return mask;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
    int avx512ifma = (b >> 21) & 1, avx512vl = (b >> 31) & 1;
    if (ymm_ok && avx2) mask |= 1u << NTT_SIMD_AVX2;
    if (zmm_ok && avx512f && avx512dq && avx512vl && avx512ifma)
        mask |= 1u << NTT_SIMD_AVX512 | 1u << NTT_SIMD_AVX512R4;
    return mask;
}
#else
static unsigned cpu_backends(void)
{
    return 1u << NTT_SIMD_SCALAR;
}

static ntt_simd_t preferred_avx512(void)
{
    return NTT_SIMD_AVX512;
}
#endif

static const ntt_ops_t *const compiled[NTT_SIMD_COUNT] = {
    &ntt_ops_scalar,
#if HESTAT_HAVE_AVX2
    &ntt_ops_avx2,
#else
    NULL,
#endif
#if HESTAT_HAVE_AVX512
    &ntt_ops_avx512,
    &ntt_ops_avx512r4,
#else
    NULL,
    NULL,
#endif
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static unsigned available_mask;
static const ntt_ops_t *default_ops;
static char default_warning[160];

static void init_backends(void)
{
    unsigned cpu = cpu_backends();
    for (int i = 0; i < NTT_SIMD_COUNT; i++)
        if (compiled[i] && (cpu >> i & 1)) available_mask |= 1u << i;
    default_ops = &ntt_ops_scalar;
    if (available_mask >> NTT_SIMD_AVX2 & 1) default_ops = compiled[NTT_SIMD_AVX2];
    if (available_mask >> NTT_SIMD_AVX512 & 1) default_ops = compiled[preferred_avx512()];
    const char *want = getenv("HESTAT_SIMD");
    if (!want || !*want) return;
    ntt_simd_t id;
    if (ntt_simd_parse(want, &id) != NTT_OK) {
        snprintf(default_warning, sizeof default_warning,
                 "HESTAT_SIMD=%.32s is not one of scalar, avx2, avx512, avx512r4; using %s", want,
                 default_ops->name);
    } else if (!(available_mask >> id & 1)) {
        snprintf(default_warning, sizeof default_warning,
                 "HESTAT_SIMD=%s is not supported by this CPU or build; using %s", want,
                 default_ops->name);
    } else {
        default_ops = compiled[id];
    }
}

const ntt_ops_t *ntt_ops_default(void)
{
    pthread_once(&init_once, init_backends);
    return default_ops;
}

const char *ntt_ops_default_warning(void)
{
    pthread_once(&init_once, init_backends);
    return default_warning[0] ? default_warning : NULL;
}

int ntt_ops_get(ntt_simd_t id, const ntt_ops_t **out)
{
    if (!out || (int)id < 0 || id >= NTT_SIMD_COUNT) return NTT_EINVAL;
    pthread_once(&init_once, init_backends);
    *out = NULL;
    if (!(available_mask >> id & 1)) return NTT_EUNSUPPORTED;
    *out = compiled[id];
    return NTT_OK;
}

const char *ntt_simd_name(ntt_simd_t id)
{
    static const char *const names[NTT_SIMD_COUNT] = {"scalar", "avx2", "avx512",
                                                              "avx512r4"};
    return (int)id >= 0 && id < NTT_SIMD_COUNT ? names[id] : NULL;
}

int ntt_simd_parse(const char *name, ntt_simd_t *id)
{
    if (!name || !id) return NTT_EINVAL;
    for (int i = 0; i < NTT_SIMD_COUNT; i++) {
        if (strcmp(name, ntt_simd_name((ntt_simd_t)i)) == 0) {
            *id = (ntt_simd_t)i;
            return NTT_OK;
        }
    }
    return NTT_EINVAL;
}

/* ---- the public kernels, on the default backend ---- */
void ntt_forward(const ntt_tables_t *t, uint64_t *a) { ntt_ops_default()->forward(t, a, 0); }
void ntt_forward_lazy(const ntt_tables_t *t, uint64_t *a) { ntt_ops_default()->forward(t, a, 1); }
void ntt_inverse(const ntt_tables_t *t, uint64_t *a) { ntt_ops_default()->inverse(t, a, 0); }
void ntt_inverse_lazy(const ntt_tables_t *t, uint64_t *a) { ntt_ops_default()->inverse(t, a, 1); }

void ntt_forward_to(const ntt_tables_t *t, uint64_t *out, const uint64_t *in)
{
    if (out != in) memcpy(out, in, t->n * sizeof *out);
    ntt_forward(t, out);
}

void ntt_inverse_to(const ntt_tables_t *t, uint64_t *out, const uint64_t *in)
{
    if (out != in) memcpy(out, in, t->n * sizeof *out);
    ntt_inverse(t, out);
}

void ntt_vec_add(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                 const ntt_modulus_t *m)
{
    ntt_ops_default()->add(r, a, b, n, m);
}

void ntt_vec_sub(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                 const ntt_modulus_t *m)
{
    ntt_ops_default()->sub(r, a, b, n, m);
}

void ntt_vec_neg(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m)
{
    ntt_ops_default()->neg(r, a, n, m);
}

void ntt_vec_mul(uint64_t *r, const uint64_t *a, const uint64_t *b, size_t n,
                 const ntt_modulus_t *m)
{
    ntt_ops_default()->mul(r, a, b, n, m);
}

void ntt_vec_mul_scalar(uint64_t *r, const uint64_t *a, uint64_t s, size_t n,
                        const ntt_modulus_t *m)
{
    ntt_ops_default()->mul_scalar(r, a, s, n, m);
}

void ntt_vec_fma(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *c,
                 size_t n, const ntt_modulus_t *m)
{
    ntt_ops_default()->fma(r, a, b, c, n, m);
}

void ntt_vec_fma_scalar(uint64_t *r, const uint64_t *a, uint64_t s, const uint64_t *c,
                        size_t n, const ntt_modulus_t *m)
{
    ntt_ops_default()->fma_scalar(r, a, s, c, n, m);
}

void ntt_vec_reduce(uint64_t *r, const uint64_t *a, size_t n, const ntt_modulus_t *m)
{
    ntt_ops_default()->reduce(r, a, n, m);
}

/* ntt_vec_dot2x2 and ntt_vec_dot1x2 (x1 NULL): output t is x[t % nx] y[t / nx]. */
static void vec_dot(uint64_t *const *r, const uint64_t *const *x0, const uint64_t *const *x1,
                    const uint64_t *const *y0, const uint64_t *const *y1, size_t k, size_t n,
                    const ntt_modulus_t *m, int accumulate)
{
    const ntt_ops_t *o = ntt_ops_default();
    /* The fused kernel gains from summing before reducing; for one pair of
     * pairs the separate mul and fma calls measured faster (AVX2, Zen 3:
     * 19.9-24.3 against 21.7-29.3 us at 50 bits, 57-63 against 70-77 at 60,
     * N = 8192, eltwise_dot2x2 and eltwise_fma4 with K = 1). */
    if (o->dot2x2 && k >= 2) {
        o->dot2x2(r, x0, x1, y0, y1, k, n, m, accumulate);
        return;
    }
    /* One product at a time with the backend's own mul and fma. */
    const size_t nx = x1 ? 2 : 1, nout = 2 * nx;
    for (size_t j = 0; j < k; j++) {
        const uint64_t *xs[2] = {x0[j], x1 ? x1[j] : NULL}, *ys[2] = {y0[j], y1[j]};
        for (size_t t = 0; t < nout; t++) {
            if (j == 0 && !accumulate)
                o->mul(r[t], xs[t % nx], ys[t / nx], n, m);
            else
                o->fma(r[t], xs[t % nx], ys[t / nx], r[t], n, m);
        }
    }
    if (k == 0 && !accumulate)
        for (size_t t = 0; t < nout; t++) memset(r[t], 0, n * sizeof *r[t]);
}

void ntt_vec_dot2x2(uint64_t *const r[4], const uint64_t *const *x0, const uint64_t *const *x1,
                    const uint64_t *const *y0, const uint64_t *const *y1, size_t k, size_t n,
                    const ntt_modulus_t *m, int accumulate)
{
    vec_dot(r, x0, x1, y0, y1, k, n, m, accumulate);
}

void ntt_vec_dot1x2(uint64_t *const r[2], const uint64_t *const *x, const uint64_t *const *y0,
                    const uint64_t *const *y1, size_t k, size_t n, const ntt_modulus_t *m, int accumulate)
{
    vec_dot(r, x, NULL, y0, y1, k, n, m, accumulate);
}

void ntt_vec_permute2(uint64_t *d0, uint64_t *d1, const uint64_t *s0, const uint64_t *s1, const uint32_t *idx,
                      size_t n)
{
    const ntt_ops_t *o = ntt_ops_default();
    if (o->permute2) {
        o->permute2(d0, d1, s0, s1, idx, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        d0[i] = s0[idx[i]];
        d1[i] = s1[idx[i]];
    }
}
