/*
 * hestat-demo: the end-to-end run that exists so far (the ntt/ layer).
 * Generates SEAL's coefficient modulus for N=8192 {60,40,40,60}, builds NTT
 * tables, multiplies two random polynomials mod (X^N+1, q) through the NTT
 * and checks the product against schoolbook multiplication, with timings.
 */
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ntt/ntt.h"
#include "stats/stats.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fputs("usage: hestat-demo [--csv FILE] [--rows N] [--out DIR]\n"
          "       hestat-demo --ntt [--n N]\n"
          "\n"
          "Encrypted statistics, end to end in one process: the client encrypts a table\n"
          "(FILE, or a generated table with the Framingham schema, N rows, default 4240),\n"
          "the server side computes with public evaluation keys only, the client decrypts\n"
          "and compares every statistic with the plaintext one. Writes\n"
          "DIR/decrypted_results.csv (default build/demo). Prints the phases' wall time.\n"
          "\n"
          "--ntt: multiplies two random polynomials mod (X^N+1, q) with the NTT for each\n"
          "prime of SEAL's CoeffModulus::Create(8192, {60,40,40,60}) and checks them\n"
          "against schoolbook multiplication (N: power of two, 8..16384, default 4096).\n",
          f);
}

static void uniform_mod(uint64_t *v, size_t n, uint64_t q)
{
    /* Rejection sampling from OS randomness: unbiased mod q. */
    uint64_t mask = q - 1;
    for (int s = 32; s; s >>= 1) mask |= mask >> s;
    for (size_t i = 0; i < n; i++) {
        do {
            randombytes_buf(&v[i], sizeof v[i]);
            v[i] &= mask;
        } while (v[i] >= q);
    }
}

static int ntt_demo(int argc, char **argv)
{
    size_t n = 4096;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ntt")) {
            continue;
        } else if (!strcmp(argv[i], "--n") && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v < 8 || v > 16384 || (v & (v - 1))) {
                fprintf(stderr, "hestat-demo: --n must be a power of two in [8, 16384]\n");
                return 2;
            }
            n = v;
        } else {
            fprintf(stderr, "hestat-demo: unknown argument '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "hestat-demo: libsodium failed to initialise\n");
        return 1;
    }
    printf("hestat %s demo: NTT polynomial multiplication checked against schoolbook\n",
           HESTAT_VERSION);
    printf("backend: %s\n", ntt_ops_default()->name);

    int bits[] = {60, 40, 40, 60};
    uint64_t q[4];
    int rc = ntt_coeff_modulus(8192, bits, 4, q);
    if (rc) {
        fprintf(stderr, "hestat-demo: %s\n", ntt_strerror(rc));
        return 1;
    }
    printf("SEAL CoeffModulus::Create(8192, {60,40,40,60}) = %lu, %lu, %lu, %lu\n",
           (unsigned long)q[0], (unsigned long)q[1], (unsigned long)q[2], (unsigned long)q[3]);

    uint64_t *a = ntt_alloc(n), *b = ntt_alloc(n), *fa = ntt_alloc(n), *fb = ntt_alloc(n);
    uint64_t *ref = ntt_alloc(n);
    if (!a || !b || !fa || !fb || !ref) {
        fprintf(stderr, "hestat-demo: out of memory\n");
        return 1;
    }
    int failures = 0;
    for (int k = 0; k < 4; k++) {
        ntt_tables_t *t;
        rc = ntt_tables_new(n, q[k], &t);
        if (rc) {
            fprintf(stderr, "hestat-demo: tables for q=%lu: %s\n", (unsigned long)q[k],
                    ntt_strerror(rc));
            return 1;
        }
        const ntt_modulus_t *m = ntt_tables_modulus(t);
        uniform_mod(a, n, q[k]);
        uniform_mod(b, n, q[k]);

        double t0 = now_s();
        ntt_forward_to(t, fa, a);
        ntt_forward_to(t, fb, b);
        ntt_vec_mul(fa, fa, fb, n, m);
        ntt_inverse(t, fa);
        double t_ntt = now_s() - t0;

        t0 = now_s();
        memset(ref, 0, n * sizeof *ref);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < n; j++) {
                uint64_t p = ntt_mulmod(a[i], b[j], m);
                size_t idx = (i + j) & (n - 1);
                ref[idx] = i + j < n ? ntt_addmod(ref[idx], p, q[k]) : ntt_submod(ref[idx], p, q[k]);
            }
        }
        double t_school = now_s() - t0;
        int ok = memcmp(fa, ref, n * sizeof *fa) == 0;
        failures += !ok;
        printf("q=%-20lu psi=%-20lu N=%zu  NTT product %8.1f us  schoolbook %9.1f ms  %s\n",
               (unsigned long)q[k], (unsigned long)ntt_tables_psi(t), n, t_ntt * 1e6,
               t_school * 1e3, ok ? "equal" : "MISMATCH");
        ntt_tables_free(t);
    }
    ntt_free(a);
    ntt_free(b);
    ntt_free(fa);
    ntt_free(fb);
    ntt_free(ref);
    printf(failures ? "demo FAILED: %d mismatches\n" : "demo ok: all %d products equal\n",
           failures ? failures : 4);
    return failures ? 1 : 0;
}

/* ---- the encrypted-statistics demo ---- */
static int stats_demo(const char *csv, size_t rows, const char *outdir)
{
    double t0 = now_s(), t_keys, t_enc, t_srv, t_dec;
    stats_table_t *t;
    char err[256];
    int rc = csv ? stats_read_csv(csv, &t, err, sizeof err) : stats_generate_framingham(rows, 1, &t);
    if (rc) {
        fprintf(stderr, "hestat-demo: %s\n", csv ? err : stats_strerror(rc));
        return 1;
    }
    printf("hestat %s demo: encrypted statistics on %s (%zu rows, %zu columns)\n", HESTAT_VERSION,
           csv ? csv : "a generated table with the Framingham schema", t->nrows, t->ncols);
    int bits[] = {60, 40, 40, 60};
    ckks_params_t p;
    ckks_context_t *ctx;
    if (ckks_params_from_bits(&p, 8192, bits, 4) || ckks_context_new(&p, &ctx)) return 1;
    stats_layout_t lay;
    if ((rc = stats_layout_for(ctx, t, &lay))) {
        fprintf(stderr, "hestat-demo: layout: %s\n", stats_strerror(rc));
        return 1;
    }
    int steps[64];
    size_t ns = stats_galois_steps(&lay, steps, 64);
    ckks_secret_key_t *sk;
    ckks_public_key_t *pk;
    ckks_relin_key_t *rk;
    ckks_galois_keys_t *gk;
    if (ckks_secret_key_new(ctx, &sk) || ckks_public_key_new(sk, &pk) || ckks_relin_key_new(sk, &rk) ||
        ckks_galois_keys_new(sk, steps, ns, 1, &gk)) {
        fprintf(stderr, "hestat-demo: key generation failed\n");
        return 1;
    }
    t_keys = now_s() - t0;
    t0 = now_s();
    stats_enc_table_t *e;
    if ((rc = stats_encrypt(ctx, pk, NULL, t, &lay, 0x1p40, &e))) {
        fprintf(stderr, "hestat-demo: encrypt: %s: %s\n", stats_strerror(rc), stats_error());
        return 1;
    }
    t_enc = now_s() - t0;
    t0 = now_s();
    stats_enc_result_t *res;
    stats_counts_t counts;
    if ((rc = stats_compute(ctx, e, STATS_JOB_ALL, rk, gk, &res, &counts))) {
        fprintf(stderr, "hestat-demo: compute: %s: %s\n", stats_strerror(rc), stats_error());
        return 1;
    }
    t_srv = now_s() - t0;
    t0 = now_s();
    static stats_result_t out;
    if ((rc = stats_decrypt(ctx, sk, res, &out))) {
        fprintf(stderr, "hestat-demo: decrypt: %s\n", stats_strerror(rc));
        return 1;
    }
    t_dec = now_s() - t0;
    static stats_moments_t ref[STATS_MAX_COLS];
    static stats_pair_t refp[STATS_MAX_COLS * STATS_MAX_COLS];
    stats_reference(t, ref, refp);

    char path[512];
    snprintf(path, sizeof path, "%s/decrypted_results.csv", outdir);
    if (ckks_mkdir_p(outdir, 0755)) {
        fprintf(stderr, "hestat-demo: cannot create %s: %s\n", outdir, strerror(errno));
        return 1;
    }
    int g = stats_column(t, "TenYearCHD");
    stats_report_errors_t w;
    rc = stats_write_report(path, &out, &lay, STATS_REPORT_MEAN | STATS_REPORT_VAR | STATS_REPORT_CORR,
                            g >= 0 ? &g : NULL, g >= 0 ? 1 : 0, t, &w);
    if (rc) {
        fprintf(stderr, "hestat-demo: %s: %s\n", path, stats_strerror(rc));
        return 1;
    }
    double worst_mean = w.mean_rel, worst_sd = w.sd_rel, worst_corr = w.corr_abs;
    printf("\n%-16s %8s %14s %14s %10s %12s\n", "column", "count", "mean (enc)", "mean (plain)", "sd (enc)",
           "rel err mean");
    for (size_t c = 0; c < t->ncols; c++) {
        stats_moments_t *m = &out.cols[c];
        printf("%-16s %8.0Lf %14.6Lf %14.6Lf %10.4Lf %12.2Le\n", t->names[c], m->count, m->mean, ref[c].mean,
               m->sd, fabsl(m->mean - ref[c].mean) / fmaxl(fabsl(ref[c].mean), 1e-12L));
    }
    printf("\nlargest errors against the plaintext: mean %.2e (relative), sd %.2e (relative), "
           "correlation %.2e (absolute, %zu pairs)\n",
           worst_mean, worst_sd, worst_corr, t->ncols * (t->ncols - 1) / 2);
    printf("server work: %zu rotations, %zu relinearizations, %zu multiplications\n", counts.rotations,
           counts.relinearizations, counts.multiplications);
    printf("wall time: keys %.2f s, client encrypt %.2f s, server compute %.2f s, client decrypt+finish %.3f s\n",
           t_keys, t_enc, t_srv, t_dec);
    printf("wrote %s\n", path);
    stats_enc_result_free(res);
    stats_enc_table_free(e);
    ckks_galois_keys_free(gk);
    ckks_relin_key_free(rk);
    ckks_public_key_free(pk);
    ckks_secret_key_free(sk);
    ckks_context_free(ctx);
    stats_table_free(t);
    return worst_mean < 1e-6 && worst_sd < 1e-5 && worst_corr < 1e-5 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *csv = NULL, *outdir = "build/demo";
    size_t rows = 4240;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--ntt")) return ntt_demo(argc, argv);
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--csv") && i + 1 < argc) {
            csv = argv[++i];
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            outdir = argv[++i];
        } else if (!strcmp(argv[i], "--rows") && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v < 2 || v > 10000000) {
                fprintf(stderr, "hestat-demo: --rows must be 2..10000000\n");
                return 2;
            }
            rows = v;
        } else {
            fprintf(stderr, "hestat-demo: unknown argument '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    return stats_demo(csv, rows, outdir);
}
