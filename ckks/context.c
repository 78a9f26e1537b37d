/* Parameters, the security check, the context's precomputation, and the
 * plaintext/ciphertext containers. */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_impl.h"

const char *ckks_strerror(int status)
{
    switch (status) {
    case CKKS_OK: return "success";
    case CKKS_EINVAL: return "invalid argument";
    case CKKS_ENOMEM: return "out of memory";
    case CKKS_EPARAMS: return "invalid parameters (N must be 2^12..2^16, 2..64 distinct NTT-friendly primes)";
    case CKKS_EINSECURE: return "coefficient modulus too large for 128-bit security at this N";
    case CKKS_ELEVEL: return "level mismatch or no level left";
    case CKKS_ESCALE: return "scale mismatch or scale out of range";
    case CKKS_EKEY: return "missing or mismatched key";
    case CKKS_ECONTEXT: return "object belongs to another context";
    case CKKS_EOVERFLOW: return "encoded values too large for the coefficient modulus";
    case CKKS_ESIZE: return "ciphertext has the wrong number of polynomials";
    case CKKS_ERANDOM: return "random source failed";
    case CKKS_ENTT: return "the NTT layer refused the parameters";
    case CKKS_EFORMAT: return "malformed or foreign file";
    case CKKS_EUNSUPPORTED: return "unsupported file feature (SEAL version or generator type)";
    case CKKS_EIO: return "file input/output error (see errno)";
    default: return "unknown ckks error";
    }
}

int ckks_max_modulus_bits(size_t n)
{
    /* HomomorphicEncryption.org security standard (Albrecht et al., 2018),
     * 128-bit classical, ternary secret -- the table SEAL enforces -- for
     * N <= 32768. N = 65536: 1747 bits, from OpenFHE's table of standard
     * lattice parameters (HEStd_128_classic, ternary), the same estimator
     * methodology extended. */
    switch (n) {
    case 1024: return 27;
    case 2048: return 54;
    case 4096: return 109;
    case 8192: return 218;
    case 16384: return 438;
    case 32768: return 881;
    case 65536: return 1747;
    default: return 0;
    }
}

int ckks_params_from_bits(ckks_params_t *p, size_t n, const int *bit_sizes, size_t count)
{
    if (!p || !bit_sizes || count < 2 || count > CKKS_MAX_PRIMES) return CKKS_EINVAL;
    memset(p, 0, sizeof *p);
    int rc = ntt_coeff_modulus(n, bit_sizes, count, p->primes);
    if (rc == NTT_ENOTPOW2) return CKKS_EPARAMS;
    if (rc) return CKKS_ENTT;
    p->n = n;
    p->count = count;
    return CKKS_OK;
}

static void crt_free(ckks_crt_t *c, size_t np)
{
    if (!c->inv_punct) return;
    free(c->inv_punct);
    free(c->inv_punct_shoup);
    free(c->punct_lo);
    free(c->inv_q);
    for (size_t i = 0; i < np; i++) mpz_clear(c->punct[i]);
    free(c->punct);
    mpz_clear(c->q);
    mpz_clear(c->half_q);
    memset(c, 0, sizeof *c);
}

static void mpz_set_u64(mpz_t z, uint64_t v)
{
    mpz_import(z, 1, -1, sizeof v, 0, 0, &v);
}

static ntt_u128 mpz_low128(const mpz_t z)
{
    /* z >= 0: its value mod 2^128. */
    mpz_t t;
    mpz_init(t);
    mpz_fdiv_r_2exp(t, z, 128);
    uint64_t w[2] = {0, 0};
    size_t cnt = 0;
    mpz_export(w, &cnt, -1, sizeof w[0], 0, 0, t);
    mpz_clear(t);
    return ((ntt_u128)w[1] << 64) | w[0];
}

static int crt_init(ckks_context_t *ctx, size_t np)
{
    ckks_crt_t *c = &ctx->crt[np];
    c->inv_punct = malloc(np * sizeof *c->inv_punct);
    c->inv_punct_shoup = malloc(np * sizeof *c->inv_punct_shoup);
    c->punct_lo = malloc(np * sizeof *c->punct_lo);
    c->inv_q = malloc(np * sizeof *c->inv_q);
    c->punct = malloc(np * sizeof *c->punct);
    if (!c->inv_punct || !c->inv_punct_shoup || !c->punct_lo || !c->inv_q || !c->punct) {
        free(c->inv_punct);
        free(c->inv_punct_shoup);
        free(c->punct_lo);
        free(c->inv_q);
        free(c->punct);
        memset(c, 0, sizeof *c);
        return CKKS_ENOMEM;
    }
    mpz_init_set_ui(c->q, 1);
    mpz_init(c->half_q);
    mpz_t qi;
    mpz_init(qi);
    for (size_t i = 0; i < np; i++) {
        mpz_set_u64(qi, ctx->primes[i]);
        mpz_mul(c->q, c->q, qi);
    }
    mpz_fdiv_q_2exp(c->half_q, c->q, 1);
    c->bits = (int)mpz_sizeinbase(c->q, 2);
    c->q_lo = mpz_low128(c->q);
    for (size_t i = 0; i < np; i++) {
        mpz_init(c->punct[i]);
        mpz_set_u64(qi, ctx->primes[i]);
        mpz_divexact(c->punct[i], c->q, qi);
        uint64_t r = mpz_fdiv_ui(c->punct[i], ctx->primes[i]); /* primes < 2^62 fit unsigned long */
        ntt_invmod(r, &ctx->mod[i], &c->inv_punct[i]);
        c->inv_punct_shoup[i] = ntt_shoup(c->inv_punct[i], ctx->primes[i]);
        c->punct_lo[i] = mpz_low128(c->punct[i]);
        c->inv_q[i] = 1.0 / (double)ctx->primes[i];
    }
    mpz_clear(qi);
    return CKKS_OK;
}

/* HESTAT_THREADS, else OMP_NUM_THREADS (through OpenMP), else one thread:
 * limb-level parallelism is fine-grained, and several processes or worker
 * threads each spinning up OpenMP teams on a small machine slow everything
 * down, so it is opt-in. */
static int default_threads(void)
{
    const char *e = getenv("HESTAT_THREADS");
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (!*end && v >= 1 && v <= 1024) return (int)v;
    }
    e = getenv("OMP_NUM_THREADS");
    if (e && *e) return omp_get_max_threads();
    return 1;
}

/* FFTW's planner is not thread-safe. */
static pthread_mutex_t fftw_lock = PTHREAD_MUTEX_INITIALIZER;

void ckks_context_free(ckks_context_t *ctx)
{
    if (!ctx) return;
    for (size_t i = 0; i < ctx->k; i++) ntt_tables_free(ctx->ntt[i]);
    for (size_t np = 1; np < ctx->k; np++) crt_free(&ctx->crt[np], np);
    pthread_mutex_lock(&fftw_lock);
    if (ctx->fft_fwd) fftw_destroy_plan(ctx->fft_fwd);
    if (ctx->fft_bwd) fftw_destroy_plan(ctx->fft_bwd);
    pthread_mutex_unlock(&fftw_lock);
    fftw_free(ctx->zeta);
    free(ctx->bitrev);
    free(ctx->slot_pos);
    free(ctx->slot_conj);
    for (size_t i = 0; ctx->perms && i < ctx->n; i++) free(ctx->perms[i]);
    free(ctx->perms);
    pthread_mutex_destroy(&ctx->perm_lock);
    free(ctx);
}

static int check_params(const ckks_params_t *p)
{
    if (p->n < ((size_t)1 << CKKS_LOG_N_MIN) || p->n > ((size_t)1 << CKKS_LOG_N_MAX) ||
        (p->n & (p->n - 1)))
        return CKKS_EPARAMS;
    if (p->count < 2 || p->count > CKKS_MAX_PRIMES) return CKKS_EPARAMS;
    double bits = 0;
    for (size_t i = 0; i < p->count; i++) {
        if (p->primes[i] < 2 || p->primes[i] >> NTT_MAX_MOD_BITS) return CKKS_EPARAMS;
        if (!ntt_is_prime(p->primes[i]) || (p->primes[i] - 1) % (2 * p->n)) return CKKS_EPARAMS;
        for (size_t j = 0; j < i; j++)
            if (p->primes[j] == p->primes[i]) return CKKS_EPARAMS;
        bits += log2((double)p->primes[i]);
    }
    if (!p->allow_insecure && (int)ceil(bits) > ckks_max_modulus_bits(p->n)) return CKKS_EINSECURE;
    return CKKS_OK;
}

int ckks_context_new(const ckks_params_t *p, ckks_context_t **out)
{
    if (!p || !out) return CKKS_EINVAL;
    *out = NULL;
    int rc = check_params(p);
    if (rc) return rc;
    ckks_context_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return CKKS_ENOMEM;
    pthread_mutex_init(&ctx->perm_lock, NULL);
    ctx->n = p->n;
    ctx->slots = p->n / 2;
    ctx->k = p->count;
    ctx->log_n = __builtin_ctzll(p->n);
    ctx->threads = default_threads();
    memcpy(ctx->primes, p->primes, p->count * sizeof p->primes[0]);
    for (size_t i = 0; i < ctx->k; i++) {
        ntt_modulus_init(&ctx->mod[i], ctx->primes[i]);
        if (ntt_tables_new(ctx->n, ctx->primes[i], &ctx->ntt[i]) != NTT_OK) {
            ckks_context_free(ctx);
            return CKKS_ENTT;
        }
    }
    for (size_t j = 0; j < ctx->k; j++)
        for (size_t i = 0; i < ctx->k; i++)
            if (i != j) ntt_invmod(ctx->primes[j], &ctx->mod[i], &ctx->inv_q[j][i]);
    for (size_t np = 1; np < ctx->k; np++) {
        if (crt_init(ctx, np) != CKKS_OK) {
            ckks_context_free(ctx);
            return CKKS_ENOMEM;
        }
    }
    size_t n = ctx->n;
    ctx->bitrev = malloc(n * sizeof *ctx->bitrev);
    ctx->slot_pos = malloc(ctx->slots * sizeof *ctx->slot_pos);
    ctx->slot_conj = malloc(ctx->slots * sizeof *ctx->slot_conj);
    ctx->zeta = fftw_malloc(n * sizeof *ctx->zeta);
    ctx->perms = calloc(n, sizeof *ctx->perms);
    if (!ctx->bitrev || !ctx->slot_pos || !ctx->slot_conj || !ctx->zeta || !ctx->perms) {
        ckks_context_free(ctx);
        return CKKS_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) ctx->bitrev[i] = (uint32_t)ntt_bitrev(i, ctx->log_n);
    /* Slot i is the value at zeta^(3^i) (SEAL's generator 3); its conjugate
     * sits at zeta^(2N - 3^i). FFT index t stands for zeta^(2t+1). */
    uint64_t m = 2 * n, pos = 1;
    for (size_t i = 0; i < ctx->slots; i++) {
        ctx->slot_pos[i] = (uint32_t)((pos - 1) >> 1);
        ctx->slot_conj[i] = (uint32_t)((m - pos - 1) >> 1);
        pos = (pos * 3) & (m - 1);
    }
    for (size_t j = 0; j < n; j++) ctx->zeta[j] = cexp(I * M_PI * (double)j / (double)n);
    double complex *tmp = fftw_malloc(2 * n * sizeof *tmp);
    if (!tmp) {
        ckks_context_free(ctx);
        return CKKS_ENOMEM;
    }
    pthread_mutex_lock(&fftw_lock);
    ctx->fft_fwd = fftw_plan_dft_1d((int)n, tmp, tmp + n, FFTW_FORWARD, FFTW_ESTIMATE);
    ctx->fft_bwd = fftw_plan_dft_1d((int)n, tmp, tmp + n, FFTW_BACKWARD, FFTW_ESTIMATE);
    pthread_mutex_unlock(&fftw_lock);
    fftw_free(tmp);
    if (!ctx->fft_fwd || !ctx->fft_bwd) {
        ckks_context_free(ctx);
        return CKKS_ENOMEM;
    }
    *out = ctx;
    return CKKS_OK;
}

int ckks_context_threads(const ckks_context_t *ctx) { return ctx->threads; }

int ckks_context_set_threads(ckks_context_t *ctx, int threads)
{
    if (!ctx || threads < 1 || threads > 1024) return CKKS_EINVAL;
    ctx->threads = threads;
    return CKKS_OK;
}

size_t ckks_context_n(const ckks_context_t *ctx) { return ctx->n; }
size_t ckks_context_slots(const ckks_context_t *ctx) { return ctx->slots; }
size_t ckks_context_data_primes(const ckks_context_t *ctx) { return ctx->k - 1; }
uint64_t ckks_context_prime(const ckks_context_t *ctx, size_t i) { return ctx->primes[i]; }
const ntt_tables_t *ckks_context_ntt(const ckks_context_t *ctx, size_t i) { return ctx->ntt[i]; }

typedef struct {
    uint64_t *buf[CKKS_SCRATCH_COUNT];
    size_t cap[CKKS_SCRATCH_COUNT];
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *p)
{
    scratch_t *s = p;
    for (int i = 0; i < CKKS_SCRATCH_COUNT; i++) ntt_free(s->buf[i]);
    free(s);
}

static void scratch_key_init(void)
{
    pthread_key_create(&scratch_key, scratch_destroy);
}

uint64_t *ckks_scratch(int slot, size_t words)
{
    pthread_once(&scratch_once, scratch_key_init);
    scratch_t *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s)) {
            free(s);
            return NULL;
        }
    }
    if (s->cap[slot] < words) {
        ntt_free(s->buf[slot]);
        s->buf[slot] = ntt_alloc(words);
        s->cap[slot] = s->buf[slot] ? words : 0;
    }
    return s->buf[slot];
}

int ckks_scales_close(double a, double b)
{
    double m = fmax(fmax(fabs(a), fabs(b)), 1.0);
    return fabs(a - b) <= 16 * 2.220446049250313e-16 * m;
}

/* ---- containers ---- */

int ckks_plaintext_new(const ckks_context_t *ctx, size_t nprimes, ckks_plaintext_t **out)
{
    if (!ctx || !out) return CKKS_EINVAL;
    *out = NULL;
    if (nprimes == 0) nprimes = ctx->k - 1;
    if (nprimes >= ctx->k) return CKKS_ELEVEL;
    ckks_plaintext_t *pt = calloc(1, sizeof *pt);
    if (!pt) return CKKS_ENOMEM;
    pt->ctx = ctx;
    pt->nprimes = nprimes;
    pt->scale = 1.0;
    pt->data = ntt_alloc((ctx->k - 1) * ctx->n);
    if (!pt->data) {
        free(pt);
        return CKKS_ENOMEM;
    }
    *out = pt;
    return CKKS_OK;
}

void ckks_plaintext_free(ckks_plaintext_t *pt)
{
    if (!pt) return;
    ntt_free(pt->data);
    free(pt);
}

int ckks_ciphertext_new(const ckks_context_t *ctx, size_t size, size_t nprimes,
                        ckks_ciphertext_t **out)
{
    if (!ctx || !out) return CKKS_EINVAL;
    *out = NULL;
    if (size < 2 || size > 3) return CKKS_ESIZE;
    if (nprimes == 0) nprimes = ctx->k - 1;
    if (nprimes >= ctx->k) return CKKS_ELEVEL;
    ckks_ciphertext_t *ct = calloc(1, sizeof *ct);
    if (!ct) return CKKS_ENOMEM;
    ct->ctx = ctx;
    ct->size = size;
    ct->nprimes = nprimes;
    ct->scale = 1.0;
    /* Room for 3 polynomials at the top level: results never reallocate. */
    ct->data = ntt_alloc(3 * (ctx->k - 1) * ctx->n);
    if (!ct->data) {
        free(ct);
        return CKKS_ENOMEM;
    }
    *out = ct;
    return CKKS_OK;
}

void ckks_ciphertext_free(ckks_ciphertext_t *ct)
{
    if (!ct) return;
    ntt_free(ct->data);
    free(ct);
}

int ckks_ciphertext_copy(ckks_ciphertext_t *dst, const ckks_ciphertext_t *src)
{
    if (!dst || !src) return CKKS_EINVAL;
    if (dst->ctx != src->ctx) return CKKS_ECONTEXT;
    if (dst == src) return CKKS_OK;
    memcpy(dst->data, src->data, src->size * src->nprimes * src->ctx->n * sizeof *dst->data);
    dst->size = src->size;
    dst->nprimes = src->nprimes;
    dst->scale = src->scale;
    memcpy(dst->seed, src->seed, sizeof dst->seed);
    dst->has_seed = src->has_seed;
    memcpy(dst->seal_seed, src->seal_seed, sizeof dst->seal_seed);
    dst->has_seal_seed = src->has_seal_seed;
    return CKKS_OK;
}
