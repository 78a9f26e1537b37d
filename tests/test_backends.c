/* Every SIMD backend this CPU has against the scalar backend: bit-for-bit for
 * fully reduced outputs, congruent and within bounds for lazy ones. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const int bits_list[] = {30, 40, 49, 50, 52, 55, 60, 61, 62};
#define NB (sizeof bits_list / sizeof bits_list[0])

static int other_backends(const ntt_ops_t **out)
{
    int k = 0;
    for (int id = 1; id < NTT_SIMD_COUNT; id++)
        if (ntt_ops_get((ntt_simd_t)id, &out[k]) == NTT_OK) k++;
    return k;
}

/* Inputs: random below `bound`, with runs of 0 and bound-1 and a pattern of edge values. */
static void fill_inputs(test_rng_t *r, uint64_t *v, size_t n, uint64_t bound, int variant)
{
    test_fill(r, v, n, bound);
    if (variant == 1)
        for (size_t i = 0; i < n; i++) v[i] = bound - 1;
    if (variant == 2)
        for (size_t i = 0; i < n; i++) v[i] = (i % 3 == 0) ? 0 : (i % 3 == 1) ? bound - 1 : v[i];
}

static void check_ntt(const ntt_ops_t *ops, size_t n, int bits, test_rng_t *r)
{
    uint64_t q = test_prime(bits, 1 << 17);
    ntt_tables_t *t;
    cr_assert_eq(ntt_tables_new(n, q, &t), NTT_OK);
    const ntt_ops_t *sc;
    cr_assert_eq(ntt_ops_get(NTT_SIMD_SCALAR, &sc), NTT_OK);
    uint64_t *in = ntt_alloc(n), *want = ntt_alloc(n), *got = ntt_alloc(n);
    for (int variant = 0; variant < 3; variant++) {
        /* Forward: inputs below q, 2q and 4q (the API accepts < 4q). */
        for (uint64_t mult = 1; mult <= 4; mult *= 2) {
            fill_inputs(r, in, n, mult * q, variant);
            memcpy(want, in, n * 8);
            memcpy(got, in, n * 8);
            sc->forward(t, want, 0);
            ops->forward(t, got, 0);
            cr_assert_arr_eq(got, want, n * 8, "%s forward n=%zu bits=%d in<%lluq v%d",
                             ops->name, n, bits, (unsigned long long)mult, variant);
            memcpy(got, in, n * 8);
            ops->forward(t, got, 1);
            for (size_t i = 0; i < n; i++) {
                cr_assert_lt(got[i], 4 * q, "%s forward lazy bound", ops->name);
                cr_assert_eq(got[i] % q, want[i], "%s forward lazy n=%zu bits=%d", ops->name,
                             n, bits);
            }
        }
        /* Inverse: inputs below q and 2q. */
        for (uint64_t mult = 1; mult <= 2; mult++) {
            fill_inputs(r, in, n, mult * q, variant);
            memcpy(want, in, n * 8);
            memcpy(got, in, n * 8);
            sc->inverse(t, want, 0);
            ops->inverse(t, got, 0);
            cr_assert_arr_eq(got, want, n * 8, "%s inverse n=%zu bits=%d in<%lluq v%d",
                             ops->name, n, bits, (unsigned long long)mult, variant);
            memcpy(got, in, n * 8);
            ops->inverse(t, got, 1);
            for (size_t i = 0; i < n; i++) {
                cr_assert_lt(got[i], 2 * q, "%s inverse lazy bound", ops->name);
                cr_assert_eq(got[i] % q, want[i], "%s inverse lazy", ops->name);
            }
        }
    }
    ntt_free(in);
    ntt_free(want);
    ntt_free(got);
    ntt_tables_free(t);
}

Test(ntt_backends, ntt_matches_scalar_all_sizes_and_primes, .timeout = 300)
{
    const ntt_ops_t *ops[NTT_SIMD_COUNT];
    int k = other_backends(ops);
    test_rng_t r = {21};
    for (int b = 0; b < k; b++)
        for (size_t bi = 0; bi < NB; bi++)
            for (size_t n = 8; n <= (1 << 17); n *= 2) check_ntt(ops[b], n, bits_list[bi], &r);
    cr_log_info("compared %d SIMD backend(s) with scalar", k);
}

Test(ntt_backends, eltwise_matches_scalar)
{
    const ntt_ops_t *ops[NTT_SIMD_COUNT];
    int k = other_backends(ops);
    const ntt_ops_t *sc;
    cr_assert_eq(ntt_ops_get(NTT_SIMD_SCALAR, &sc), NTT_OK);
    test_rng_t r = {22};
    static const size_t lengths[] = {1, 2, 5, 7, 8, 9, 15, 16, 17, 100, 4096, 4099};
    for (int bk = 0; bk < k; bk++) {
        const ntt_ops_t *o = ops[bk];
        for (size_t bi = 0; bi < NB + 2; bi++) {
            /* Also a tiny prime and a small composite modulus. */
            uint64_t q = bi < NB ? test_prime(bits_list[bi], 2) : bi == NB ? 65537 : 1000;
            ntt_modulus_t m;
            cr_assert_eq(ntt_modulus_init(&m, q), NTT_OK);
            for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                size_t n = lengths[li];
                uint64_t *a = ntt_alloc(n + 1), *b = ntt_alloc(n + 1), *c = ntt_alloc(n + 1);
                uint64_t *want = ntt_alloc(n + 1), *got = ntt_alloc(n + 1), *raw = ntt_alloc(n + 1);
                for (int variant = 0; variant < 3; variant++) {
                    fill_inputs(&r, a, n, q, variant);
                    fill_inputs(&r, b, n, q, (variant + 1) % 3);
                    fill_inputs(&r, c, n, q, (variant + 2) % 3);
                    for (size_t i = 0; i < n; i++) raw[i] = test_rng_next(&r);
                    raw[0] = UINT64_MAX;
                    uint64_t s = variant == 1 ? q - 1 : test_rng_below(&r, q);
                    /* A sentinel past the end must survive (masked tails). */
                    got[n] = want[n] = 0xdeadbeef;
#define CMP(call_sc, call_o, what)                                                     \
    do {                                                                               \
        call_sc;                                                                       \
        call_o;                                                                        \
        cr_assert_arr_eq(got, want, (n + 1) * 8, "%s %s n=%zu q=%lu", o->name, what, n, q); \
    } while (0)
                    CMP(sc->add(want, a, b, n, &m), o->add(got, a, b, n, &m), "add");
                    CMP(sc->sub(want, a, b, n, &m), o->sub(got, a, b, n, &m), "sub");
                    CMP(sc->neg(want, a, n, &m), o->neg(got, a, n, &m), "neg");
                    CMP(sc->mul(want, a, b, n, &m), o->mul(got, a, b, n, &m), "mul");
                    CMP(sc->mul_scalar(want, a, s, n, &m), o->mul_scalar(got, a, s, n, &m),
                        "mul_scalar");
                    CMP(sc->fma(want, a, b, c, n, &m), o->fma(got, a, b, c, n, &m), "fma");
                    CMP(sc->fma_scalar(want, a, s, c, n, &m), o->fma_scalar(got, a, s, c, n, &m),
                        "fma_scalar");
                    CMP(sc->reduce(want, raw, n, &m), o->reduce(got, raw, n, &m), "reduce");
#undef CMP
                    /* In place. */
                    memcpy(got, a, n * 8);
                    o->mul(got, got, b, n, &m);
                    sc->mul(want, a, b, n, &m);
                    cr_assert_arr_eq(got, want, n * 8, "%s mul in place", o->name);
                }
                ntt_free(a);
                ntt_free(b);
                ntt_free(c);
                ntt_free(want);
                ntt_free(got);
                ntt_free(raw);
            }
        }
    }
}

/* Gathers by an index table (ntt_vec_permute2) against the plain loop, on
 * every backend that has them and through the default dispatch: tables
 * that map each aligned group of four into one group of four sources (the
 * Galois automorphisms of NTT slots: j -> g j + (g - 1) / 2 mod n in
 * bit-reversed order, for several g), tables that do not (a random one, and
 * a Galois one with one group broken), and lengths that are not a multiple
 * of four. */
static uint32_t bitrev(uint32_t x, int bits)
{
    uint32_t r = 0;
    for (int b = 0; b < bits; b++) r |= ((x >> b) & 1) << (bits - 1 - b);
    return r;
}

Test(ntt_backends, permutes_match_the_table, .timeout = 60)
{
    const ntt_ops_t *ops[NTT_SIMD_COUNT + 1];
    cr_assert_eq(ntt_ops_get(NTT_SIMD_SCALAR, &ops[0]), NTT_OK);
    int nops = 1 + other_backends(ops + 1);
    enum { LOGN = 10, N = 1 << LOGN };
    test_rng_t r = {41};
    uint64_t *s0 = ntt_alloc(N), *s1 = ntt_alloc(N), *d0 = ntt_alloc(N + 1), *d1 = ntt_alloc(N + 1);
    uint32_t *idx = malloc(N * sizeof *idx);
    test_fill(&r, s0, N, ~0ULL);
    test_fill(&r, s1, N, ~0ULL);
    static const uint32_t gs[] = {3, 5, 9, 27, 2 * N - 1, 1025, 0, 1};
    int checked = 0, grouped = 0;
    for (size_t gi = 0; gi < sizeof gs / sizeof *gs; gi++) {
        for (uint32_t k = 0; k < N; k++) {
            if (gs[gi] == 0) { /* random */
                idx[k] = (uint32_t)(test_rng_next(&r) % N);
                continue;
            }
            uint32_t j = bitrev(k, LOGN), g = gs[gi];
            idx[k] = bitrev((uint32_t)(((uint64_t)g * j + (g - 1) / 2) % N), LOGN);
        }
        if (gs[gi] == 1) idx[37] = (idx[36] + 4) % N; /* one group of four no longer one source group */
        int whole = 1;
        for (uint32_t k = 0; k < N; k += 4)
            for (int i = 1; i < 4; i++) whole &= (idx[k + i] & ~3u) == (idx[k] & ~3u);
        grouped += whole;
        static const size_t lengths[] = {N, N - 3, 13, 4, 1};
        for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
            const size_t n = lengths[li];
            for (int o = 0; o <= nops; o++) {
                if (o < nops && !ops[o]->permute2) continue;
                memset(d0, 0, (N + 1) * 8);
                memset(d1, 0, (N + 1) * 8);
                d0[n] = d1[n] = 0xdeadbeef;
                if (o < nops) ops[o]->permute2(d0, d1, s0, s1, idx, n);
                else ntt_vec_permute2(d0, d1, s0, s1, idx, n);
                for (size_t i = 0; i < n; i++) {
                    cr_assert_eq(d0[i], s0[idx[i]], "%s g=%u n=%zu i=%zu", o < nops ? ops[o]->name : "default",
                                 gs[gi], n, i);
                    cr_assert_eq(d1[i], s1[idx[i]], "%s g=%u n=%zu i=%zu", o < nops ? ops[o]->name : "default",
                                 gs[gi], n, i);
                }
                cr_assert_eq(d0[n], 0xdeadbeef);
                cr_assert_eq(d1[n], 0xdeadbeef);
                checked++;
            }
        }
    }
    /* Every Galois table is grouped, the random and the broken ones are not. */
    cr_assert_eq(grouped, (int)(sizeof gs / sizeof *gs) - 2);
    cr_assert_gt(checked, 0);
    ntt_free(s0);
    ntt_free(s1);
    ntt_free(d0);
    ntt_free(d1);
    free(idx);
}

/* The sums of products (ntt_vec_dot2x2, and ntt_vec_dot1x2: one x) against
 * one ntt_mulmod and ntt_addmod per product,
 * on every backend (scalar included) and through the default dispatch: batch
 * sizes across every backend's reduction points (1 product between
 * reductions at 62 bits, 3 at 61, 7 or 8 elsewhere), with and without the
 * accumulators' own values, all-(q-1) inputs among them. */
Test(ntt_backends, dot_sums_match_products_summed_one_by_one)
{
    const ntt_ops_t *ops[NTT_SIMD_COUNT + 1];
    cr_assert_eq(ntt_ops_get(NTT_SIMD_SCALAR, &ops[0]), NTT_OK);
    int nops = 1 + other_backends(ops + 1);
    test_rng_t r = {23};
    static const size_t lengths[] = {1, 5, 8, 13, 64};
    static const size_t batches[] = {0, 1, 2, 3, 4, 8, 9, 17};
    enum { KMAX = 17, LMAX = 64 };
    uint64_t *in[4][KMAX], *want[4], *got[4], *init[4];
    for (int t = 0; t < 4; t++) {
        for (int j = 0; j < KMAX; j++) in[t][j] = ntt_alloc(LMAX);
        want[t] = ntt_alloc(LMAX + 1);
        got[t] = ntt_alloc(LMAX + 1);
        init[t] = ntt_alloc(LMAX);
    }
    int checked = 0;
    for (size_t bi = 0; bi < NB + 2; bi++) {
        uint64_t q = bi < NB ? test_prime(bits_list[bi], 2) : bi == NB ? 65537 : 1000;
        ntt_modulus_t m;
        cr_assert_eq(ntt_modulus_init(&m, q), NTT_OK);
        for (int variant = 0; variant < 3; variant++)
            for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++)
                for (size_t ki = 0; ki < sizeof batches / sizeof *batches; ki++)
                    for (int accumulate = 0; accumulate < 2; accumulate++) {
                        size_t n = lengths[li], k = batches[ki];
                        for (int t = 0; t < 4; t++) {
                            for (size_t j = 0; j < k; j++) fill_inputs(&r, in[t][j], n, q, (variant + t) % 3);
                            fill_inputs(&r, init[t], n, q, variant);
                        }
                        /* x0 = in[0], x1 = in[1], y0 = in[2], y1 = in[3] */
                        static const int xi[4] = {0, 1, 0, 1}, yi[4] = {2, 2, 3, 3};
                        for (int t = 0; t < 4; t++)
                            for (size_t i = 0; i < n; i++) {
                                uint64_t v = accumulate ? init[t][i] : 0;
                                for (size_t j = 0; j < k; j++)
                                    v = ntt_addmod(v, ntt_mulmod(in[xi[t]][j][i], in[yi[t]][j][i], &m), q);
                                want[t][i] = v;
                            }
                        for (int o = 0; o <= nops; o++) {
                            if (o < nops && !ops[o]->dot2x2) continue;
                            for (int t = 0; t < 4; t++) {
                                memcpy(got[t], init[t], n * 8);
                                got[t][n] = 0xdeadbeef; /* past the end: untouched */
                            }
                            const uint64_t *const *a = (const uint64_t *const *)in[0],
                                                  *const *b = (const uint64_t *const *)in[1],
                                                  *const *c = (const uint64_t *const *)in[2],
                                                  *const *d = (const uint64_t *const *)in[3];
                            if (o < nops)
                                ops[o]->dot2x2(got, a, b, c, d, k, n, &m, accumulate);
                            else
                                ntt_vec_dot2x2(got, a, b, c, d, k, n, &m, accumulate);
                            for (int t = 0; t < 4; t++) {
                                cr_assert_arr_eq(got[t], want[t], n * 8, "%s sum %d q=%llu n=%zu k=%zu acc=%d v%d",
                                                 o < nops ? ops[o]->name : "default", t, (unsigned long long)q, n,
                                                 k, accumulate, variant);
                                cr_assert_eq(got[t][n], 0xdeadbeef);
                            }
                            /* One x (ntt_vec_dot1x2): x0 y0 and x0 y1, want[0] and want[2]. */
                            uint64_t *g2[2] = {got[0], got[1]};
                            memcpy(got[0], init[0], n * 8);
                            memcpy(got[1], init[2], n * 8);
                            got[1][n] = 0xdeadbeef;
                            if (o < nops)
                                ops[o]->dot2x2(g2, a, NULL, c, d, k, n, &m, accumulate);
                            else
                                ntt_vec_dot1x2(g2, a, c, d, k, n, &m, accumulate);
                            cr_assert_arr_eq(got[0], want[0], n * 8, "%s 1x2 sum 0 q=%llu n=%zu k=%zu acc=%d",
                                             o < nops ? ops[o]->name : "default", (unsigned long long)q, n, k,
                                             accumulate);
                            cr_assert_arr_eq(got[1], want[2], n * 8, "%s 1x2 sum 1 q=%llu n=%zu k=%zu acc=%d",
                                             o < nops ? ops[o]->name : "default", (unsigned long long)q, n, k,
                                             accumulate);
                            cr_assert_eq(got[1][n], 0xdeadbeef);
                            checked++;
                        }
                    }
    }
    cr_assert_gt(checked, 0);
    for (int t = 0; t < 4; t++) {
        for (int j = 0; j < KMAX; j++) ntt_free(in[t][j]);
        ntt_free(want[t]);
        ntt_free(got[t]);
        ntt_free(init[t]);
    }
}

Test(ntt_backends, unavailable_backend_is_refused)
{
    const ntt_ops_t *o = (const ntt_ops_t *)&o;
    cr_expect_eq(ntt_ops_get((ntt_simd_t)7, &o), NTT_EINVAL);
    cr_expect_eq(ntt_ops_get(NTT_SIMD_SCALAR, NULL), NTT_EINVAL);
    cr_assert_eq(ntt_ops_get(NTT_SIMD_SCALAR, &o), NTT_OK);
    cr_expect_str_eq(o->name, "scalar");
    ntt_simd_t id;
    cr_expect_eq(ntt_simd_parse("avx512", &id), NTT_OK);
    cr_expect_eq(id, NTT_SIMD_AVX512);
    cr_expect_eq(ntt_simd_parse("sse9", &id), NTT_EINVAL);
    for (int i = 0; i < NTT_SIMD_COUNT; i++) {
        int rc = ntt_ops_get((ntt_simd_t)i, &o);
        cr_expect(rc == NTT_OK || rc == NTT_EUNSUPPORTED);
        if (rc == NTT_EUNSUPPORTED) cr_expect_null(o);
    }
}
