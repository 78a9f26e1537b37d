/*
 * The CKKS encoder: canonical embedding with FFTW, SEAL's slot order.
 *   decode: slot i = m(zeta^(3^i)) / scale, zeta = exp(i pi / N)
 *           = FFT_backward(c_j zeta^j)[t_i] / scale, t_i = (3^i mod 2N - 1) / 2
 *   encode: c_j = round(Re(zeta^-j FFT_forward(v)_j) * scale / N), v holding
 *           each slot value at t_i and its conjugate at the mirrored index.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_impl.h"

/* Every |coefficient| must stay below Q/2 so decoding recovers its sign:
 * ceil(log2 |c|) <= bits(Q) - 2 guarantees |c| <= 2^(bits-2) <= Q/2. (SEAL
 * only refuses ceil(log2 |c|) >= bits(Q); this is one bit stricter.) */
static int fits_modulus(const ckks_context_t *ctx, double max_abs, size_t np)
{
    int bits = (int)ceil(log2(fmax(max_abs, 1.0)));
    return bits <= ctx->crt[np].bits - 2;
}

/* round(x) mod q for an integral double x (exact for any magnitude: a double
 * is m * 2^e with |m| < 2^53). */
static uint64_t double_mod(double x, const ntt_modulus_t *m)
{
    int neg = x < 0;
    double a = fabs(x);
    uint64_t r;
    if (a < 18446744073709551616.0) {
        r = ntt_reduce64((uint64_t)a, m);
    } else {
        int e;
        double f = frexp(a, &e); /* a = f * 2^e, f in [0.5, 1) */
        uint64_t mant = (uint64_t)ldexp(f, 53);
        r = ntt_mulmod(ntt_reduce64(mant, m), ntt_powmod(2, (uint64_t)(e - 53), m), m);
    }
    return neg ? ntt_negmod(r, m->value) : r;
}

static int encode_coeffs(const ckks_context_t *ctx, const double *coeff, double scale_unused,
                         size_t np, ckks_plaintext_t *pt)
{
    (void)scale_unused;
    const size_t n = ctx->n;
    double max_abs = 0;
    for (size_t j = 0; j < n; j++) max_abs = fmax(max_abs, fabs(coeff[j]));
    if (!isfinite(max_abs) || !fits_modulus(ctx, max_abs, np)) return CKKS_EOVERFLOW;
    const int nt = ctx->threads;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (size_t i = 0; i < np; i++) {
        const ntt_modulus_t *m = &ctx->mod[i];
        uint64_t *o = pt->data + i * n;
        for (size_t j = 0; j < n; j++) o[j] = double_mod(coeff[j], m);
        ntt_forward(ctx->ntt[i], o);
    }
    pt->nprimes = np;
    return CKKS_OK;
}

static int check_encode_args(const ckks_context_t *ctx, size_t count, double scale, size_t *np,
                             ckks_plaintext_t *pt)
{
    if (!ctx || !pt) return CKKS_EINVAL;
    if (pt->ctx != ctx) return CKKS_ECONTEXT;
    if (count > ctx->slots) return CKKS_EINVAL;
    if (*np == 0) *np = ctx->k - 1;
    if (*np >= ctx->k) return CKKS_ELEVEL;
    if (!(scale > 0) || !isfinite(scale) || log2(scale) >= ctx->crt[*np].bits) return CKKS_ESCALE;
    return CKKS_OK;
}

int ckks_encode_complex(const ckks_context_t *ctx, const double *re, const double *im,
                        size_t count, double scale, size_t nprimes, ckks_plaintext_t *pt)
{
    int rc = check_encode_args(ctx, count, scale, &nprimes, pt);
    if (rc) return rc;
    if (count && !re) return CKKS_EINVAL;
    const size_t n = ctx->n;
    double complex *v = fftw_malloc(2 * n * sizeof *v);
    double *coeff = malloc(n * sizeof *coeff);
    if (!v || !coeff) {
        fftw_free(v);
        free(coeff);
        return CKKS_ENOMEM;
    }
    memset(v, 0, n * sizeof *v);
    for (size_t i = 0; i < count; i++) {
        double complex z = re[i] + (im ? im[i] : 0.0) * I;
        if (!isfinite(creal(z)) || !isfinite(cimag(z))) {
            fftw_free(v);
            free(coeff);
            return CKKS_EINVAL;
        }
        v[ctx->slot_pos[i]] = z;
        v[ctx->slot_conj[i]] = conj(z);
    }
    fftw_execute_dft(ctx->fft_fwd, v, v + n);
    double fix = scale / (double)n;
    for (size_t j = 0; j < n; j++) coeff[j] = round(creal(conj(ctx->zeta[j]) * v[n + j]) * fix);
    rc = encode_coeffs(ctx, coeff, scale, nprimes, pt);
    if (rc == CKKS_OK) pt->scale = scale;
    fftw_free(v);
    free(coeff);
    return rc;
}

int ckks_encode_real(const ckks_context_t *ctx, const double *values, size_t count,
                     double scale, size_t nprimes, ckks_plaintext_t *pt)
{
    return ckks_encode_complex(ctx, values, NULL, count, scale, nprimes, pt);
}

int ckks_encode_constant(const ckks_context_t *ctx, double value, double scale,
                         size_t nprimes, ckks_plaintext_t *pt)
{
    int rc = check_encode_args(ctx, 0, scale, &nprimes, pt);
    if (rc) return rc;
    double c = round(value * scale);
    if (!isfinite(c) || !fits_modulus(ctx, fabs(c), nprimes)) return CKKS_EOVERFLOW;
    /* The constant polynomial is the same value at every NTT position. */
    for (size_t i = 0; i < nprimes; i++) {
        uint64_t r = double_mod(c, &ctx->mod[i]);
        for (size_t j = 0; j < ctx->n; j++) pt->data[i * ctx->n + j] = r;
    }
    pt->nprimes = nprimes;
    pt->scale = scale;
    return CKKS_OK;
}

/* Centred lift of one coefficient from its residues, as a double. Fast path:
 * x = sum y_i (Q/q_i) - k Q computed mod 2^128 (exact when |x| < 2^127),
 * verified against residue 0; GMP otherwise. */
static double lift_coeff(const ckks_context_t *ctx, const uint64_t *res, size_t stride,
                         size_t np, mpz_t acc, mpz_t tmp)
{
    const ckks_crt_t *c = &ctx->crt[np];
    ntt_u128 sum = 0;
    double frac = 0;
    for (size_t i = 0; i < np; i++) {
        uint64_t y = ntt_mulmod_shoup(res[i * stride], c->inv_punct[i], c->inv_punct_shoup[i],
                                      ctx->primes[i]);
        sum += (ntt_u128)y * c->punct_lo[i];
        frac += (double)y * c->inv_q[i];
    }
    uint64_t kq = (uint64_t)llround(frac);
    sum -= (ntt_u128)kq * c->q_lo;
    __int128 x = (__int128)sum;
    /* A wrong guess (|x| >= 2^127) is off by a multiple of 2^128, which
     * shows in the residues mod q_0 and q_{np-1}. */
    int ok = 1;
    for (size_t i = 0; i < np && ok; i += (np > 1 ? np - 1 : 1)) {
        __int128 r = x % (__int128)ctx->primes[i];
        if (r < 0) r += ctx->primes[i];
        ok = (uint64_t)r == res[i * stride];
    }
    if (ok) return (double)x;
    /* Exact reconstruction with GMP. */
    mpz_set_ui(acc, 0);
    for (size_t i = 0; i < np; i++) {
        uint64_t y = ntt_mulmod_shoup(res[i * stride], c->inv_punct[i], c->inv_punct_shoup[i],
                                      ctx->primes[i]);
        mpz_mul_ui(tmp, c->punct[i], y);
        mpz_add(acc, acc, tmp);
    }
    mpz_mod(acc, acc, c->q);
    if (mpz_cmp(acc, c->half_q) > 0) mpz_sub(acc, acc, c->q);
    return mpz_get_d(acc);
}

int ckks_decode(const ckks_context_t *ctx, const ckks_plaintext_t *pt, double *re, double *im,
                size_t count)
{
    if (!ctx || !pt || (count && !re)) return CKKS_EINVAL;
    if (pt->ctx != ctx) return CKKS_ECONTEXT;
    if (count > ctx->slots) return CKKS_EINVAL;
    if (pt->nprimes == 0 || pt->nprimes >= ctx->k) return CKKS_ELEVEL;
    if (!(pt->scale > 0) || !isfinite(pt->scale)) return CKKS_ESCALE;
    const size_t n = ctx->n, np = pt->nprimes;
    uint64_t *c = ntt_alloc(np * n);
    double complex *w = fftw_malloc(2 * n * sizeof *w);
    if (!c || !w) {
        ntt_free(c);
        fftw_free(w);
        return CKKS_ENOMEM;
    }
    memcpy(c, pt->data, np * n * sizeof *c);
    ckks_poly_intt(ctx, c, np);
    double inv_scale = 1.0 / pt->scale;
    const int nt = ctx->threads;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        mpz_t acc, tmp;
        mpz_init(acc);
        mpz_init(tmp);
#pragma omp for schedule(static)
        for (size_t j = 0; j < n; j++)
            w[j] = lift_coeff(ctx, c + j, n, np, acc, tmp) * inv_scale * ctx->zeta[j];
        mpz_clear(acc);
        mpz_clear(tmp);
    }
    fftw_execute_dft(ctx->fft_bwd, w, w + n);
    for (size_t i = 0; i < count; i++) {
        double complex z = w[n + ctx->slot_pos[i]];
        re[i] = creal(z);
        if (im) im[i] = cimag(z);
    }
    ntt_free(c);
    fftw_free(w);
    return CKKS_OK;
}
