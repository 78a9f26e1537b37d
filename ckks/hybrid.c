/* Hybrid key switching: dnum digits of alpha data primes each, a special
 * modulus P of its own primes, exact RNS base conversions up to Q_l * P and
 * back down (ckks.h has the scheme). The context's SEAL-style key switching
 * in poly.c is untouched; this file only adds a second kind of key. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_impl.h"

/* ---- parameters -------------------------------------------------------------- */

static int is_context_prime(const ckks_context_t *ctx, uint64_t q)
{
    for (size_t i = 0; i < ctx->k; i++)
        if (ctx->primes[i] == q) return 1;
    return 0;
}

int ckks_hybrid_params_from_bits(const ckks_context_t *ctx, size_t dnum, const int *bit_sizes,
                                 size_t count, ckks_hybrid_params_t *p)
{
    if (!ctx || !bit_sizes || !p || count == 0 || count > CKKS_MAX_PRIMES) return CKKS_EINVAL;
    memset(p, 0, sizeof *p);
    p->dnum = dnum;
    p->count = count;
    const uint64_t step = 2 * ctx->n;
    for (size_t m = 0; m < count; m++) {
        int b = bit_sizes[m];
        if (b < 20 || b > NTT_MAX_MOD_BITS) return CKKS_EINVAL;
        /* Largest first: 1 mod 2N, below 2^b, above 2^(b-1). */
        uint64_t q = ((uint64_t)1 << b) - step + 1, floor = (uint64_t)1 << (b - 1);
        for (;; q -= step) {
            if (q <= floor) return CKKS_EPARAMS;
            int taken = is_context_prime(ctx, q);
            for (size_t r = 0; r < m && !taken; r++) taken = p->primes[r] == q;
            if (!taken && ntt_is_prime(q)) break;
        }
        p->primes[m] = q;
    }
    return CKKS_OK;
}

static int check_hybrid_params(const ckks_context_t *ctx, const ckks_hybrid_params_t *p)
{
    const size_t L = ctx->k - 1;
    if (p->dnum == 0 || p->dnum > L || p->count == 0 || p->count > CKKS_MAX_PRIMES) return CKKS_EPARAMS;
    double bits = 0;
    for (size_t i = 0; i < L; i++) bits += log2((double)ctx->primes[i]);
    for (size_t m = 0; m < p->count; m++) {
        uint64_t q = p->primes[m];
        if (q < 2 || q >> NTT_MAX_MOD_BITS) return CKKS_EPARAMS;
        if (!ntt_is_prime(q) || (q - 1) % (2 * ctx->n)) return CKKS_EPARAMS;
        for (size_t i = 0; i < L; i++) /* the context's special prime may serve */
            if (ctx->primes[i] == q) return CKKS_EPARAMS;
        for (size_t r = 0; r < m; r++)
            if (p->primes[r] == q) return CKKS_EPARAMS;
        bits += log2((double)q);
    }
    if (!p->allow_insecure && (int)ceil(bits) > ckks_max_modulus_bits(ctx->n)) return CKKS_EINSECURE;
    return CKKS_OK;
}

/* prod_{r in [lo, hi), r != skip} q_r mod m, over the extended basis. */
static uint64_t prod_mod(const ntt_modulus_t *mods, size_t lo, size_t hi, size_t skip,
                         const ntt_modulus_t *m)
{
    uint64_t v = 1 % m->value;
    for (size_t r = lo; r < hi; r++)
        if (r != skip) v = ntt_mulmod(v, ntt_reduce64(mods[r].value, m), m);
    return v;
}

int ckks_hybrid_new(const ckks_context_t *ctx, const ckks_hybrid_params_t *p, ckks_hybrid_t **out)
{
    if (!ctx || !p || !out) return CKKS_EINVAL;
    *out = NULL;
    int rc = check_hybrid_params(ctx, p);
    if (rc) return rc;
    ckks_hybrid_t *h = calloc(1, sizeof *h);
    if (!h) return CKKS_ENOMEM;
    const size_t L = ctx->k - 1, ks = p->count;
    h->ctx = ctx;
    h->L = L;
    h->ks = ks;
    h->alpha = (L + p->dnum - 1) / p->dnum;
    h->dnum = (L + h->alpha - 1) / h->alpha;
    for (size_t i = 0; i < L; i++) {
        h->mod[i] = ctx->mod[i];
        h->ntt[i] = ctx->ntt[i];
    }
    for (size_t m = 0; m < ks; m++) {
        ntt_modulus_init(&h->mod[L + m], p->primes[m]);
        if (ntt_tables_new(ctx->n, p->primes[m], &h->special_ntt[m]) != NTT_OK) {
            ckks_hybrid_free(h);
            return CKKS_ENTT;
        }
        h->ntt[L + m] = h->special_ntt[m];
    }
    /* Mod-down constants: P, floor(P/2) = (P - 1)/2 and P^-1 modulo each data
     * prime; the CRT constants of P's own basis. */
    for (size_t i = 0; i < L; i++) {
        const ntt_modulus_t *m = &h->mod[i];
        uint64_t inv2 = (m->value + 1) / 2;
        h->p_mod_q[i] = prod_mod(h->mod, L, L + ks, SIZE_MAX, m);
        ntt_invmod(h->p_mod_q[i], m, &h->p_inv_q[i]);
        h->half_q[i] = ntt_mulmod(ntt_submod(h->p_mod_q[i], 1, m->value), inv2, m);
        for (size_t s = 0; s < ks; s++) h->phat_q[s][i] = prod_mod(h->mod, L, L + ks, L + s, m);
    }
    for (size_t s = 0; s < ks; s++) {
        const ntt_modulus_t *m = &h->mod[L + s];
        ntt_invmod(prod_mod(h->mod, L, L + ks, L + s, m), m, &h->phat_inv[s]);
    }
    *out = h;
    return CKKS_OK;
}

void ckks_hybrid_free(ckks_hybrid_t *h)
{
    if (!h) return;
    for (size_t m = 0; m < h->ks; m++) ntt_tables_free(h->special_ntt[m]);
    free(h);
}

size_t ckks_hybrid_dnum(const ckks_hybrid_t *h) { return h ? h->dnum : 0; }
size_t ckks_hybrid_alpha(const ckks_hybrid_t *h) { return h ? h->alpha : 0; }

/* ---- keys ---------------------------------------------------------------------- */

/* sk's ternary coefficients, read back from its first prime. */
static void secret_coeffs(const ckks_secret_key_t *sk, uint64_t *tmp, int8_t *s)
{
    const ckks_context_t *ctx = sk->ctx;
    memcpy(tmp, sk->s, ctx->n * sizeof *tmp);
    ntt_inverse(ctx->ntt[0], tmp);
    for (size_t t = 0; t < ctx->n; t++) s[t] = tmp[t] == 0 ? 0 : tmp[t] == 1 ? 1 : -1;
}

/* Signed small coefficients into NTT form over extended primes [from, to). */
static void small_to_ext(const ckks_hybrid_t *h, const int8_t *v, size_t from, size_t to, uint64_t *out)
{
    const size_t n = h->ctx->n;
    for (size_t e = from; e < to; e++) {
        uint64_t q = h->mod[e].value, *o = out + (e - from) * n;
        for (size_t t = 0; t < n; t++) o[t] = (uint64_t)(int64_t)v[t] + (q & (0 - (uint64_t)(v[t] < 0)));
        ntt_forward(h->ntt[e], o);
    }
}

int ckks_hybrid_kswitch_generate(const ckks_hybrid_t *h, const ckks_secret_key_t *sk,
                                 const uint64_t *s_prime, ckks_kswitch_t *out)
{
    const ckks_context_t *ctx = h->ctx;
    const size_t n = ctx->n, L = h->L, E = L + h->ks;
    out->seal_seeds = NULL;
    out->limit = 0;
    out->d = ntt_alloc(h->dnum * 2 * E * n);
    uint64_t *s_ext = ntt_alloc(E * n);
    int8_t *v = malloc(n);
    if (!out->d || !s_ext || !v) {
        ckks_kswitch_free(ctx, out);
        ntt_free(s_ext);
        free(v);
        return CKKS_ENOMEM;
    }
    /* s over the data primes is sk's; over the special primes it is rebuilt
     * from its coefficients. */
    memcpy(s_ext, sk->s, L * n * sizeof *s_ext);
    secret_coeffs(sk, s_ext + L * n, v);
    small_to_ext(h, v, L, E, s_ext + L * n);
    ckks_stream_t st;
    int rc = ckks_stream_init_random(&st);
    for (size_t j = 0; j < h->dnum && rc == CKKS_OK; j++) {
        uint64_t *b = out->d + (j * 2 + 0) * E * n, *a = out->d + (j * 2 + 1) * E * n;
        ckks_sample_uniform_mod(&st, h->mod, E, n, a);
        ckks_sample_cbd(&st, n, v);
        small_to_ext(h, v, 0, E, b);
        for (size_t e = 0; e < E; e++) { /* b = -(a s + e) */
            const ntt_modulus_t *m = &h->mod[e];
            ntt_vec_fma(b + e * n, a + e * n, s_ext + e * n, b + e * n, n, m);
            ntt_vec_neg(b + e * n, b + e * n, n, m);
        }
        /* + P * (Q/Q_j) [(Q/Q_j)^-1]_{Q_j} * s': that factor is P at the
         * digit's primes and 0 at every other prime (special ones included). */
        const size_t hi = (j + 1) * h->alpha < L ? (j + 1) * h->alpha : L;
        for (size_t i = j * h->alpha; i < hi; i++)
            ntt_vec_fma_scalar(b + i * n, s_prime + i * n, h->p_mod_q[i], b + i * n, n, &h->mod[i]);
    }
    ckks_stream_wipe(&st);
    sodium_memzero(v, n);
    sodium_memzero(s_ext, E * n * sizeof *s_ext);
    free(v);
    ntt_free(s_ext);
    if (rc) ckks_kswitch_free(ctx, out);
    return rc;
}

/* ---- key switching ------------------------------------------------------------- */

/* Extended-basis index of output limb e of a key switch at np data primes:
 * the data primes first, then the special primes. */
static size_t ext_index(const ckks_hybrid_t *h, size_t np, size_t e)
{
    return e < np ? e : h->L + (e - np);
}

/* Fast base conversion from the coefficient-form limbs x_r (r < count, each
 * below its modulus xm[r], already multiplied by (Q_D/q_r)^-1 mod q_r) to
 * one output modulus m: sum_r x_r (Q_D/q_r) = X + u Q_D, where X is the
 * wanted residue and u = floor(sum_r x_r / q_r) an integer below count.
 * Left uncorrected, u adds a multiple of Q_D whose mean (count - 1)/2 is
 * the same at every coefficient: through the key's error (ModUp) or s
 * (ModDown) that constant turns into an error concentrated in a few slots.
 * So u is computed in double precision (Shenoy and Kumaresan's correction;
 * a sum within 2^-50 of an integer may land one off, which is harmless) and
 * taken off through a table, fix[k] = (c - k Q_D) mod m for a constant c.
 * ModUp rounds instead of flooring, which yields the centred residue in
 * [-Q_D/2, Q_D/2): then the digit itself carries no offset either (digits
 * in [0, Q_D), as SEAL's, have mean Q_D/2, the same effect at full size).
 * overflow_count: u, rounded (half = 0.5) or floored (half = 0), at most
 * max; acc: n doubles of scratch. */
static void overflow_count(const uint64_t *x, const ntt_modulus_t *xm, size_t count, size_t n, double half,
                           uint8_t max, double *acc, uint8_t *u)
{
    if (count == 1 && half == 0.5) { /* round(x / q) for x < q, q odd */
        const uint64_t h = xm[0].value / 2;
        for (size_t t = 0; t < n; t++) u[t] = x[t] > h;
        return;
    }
    /* Limb by limb over acc (n doubles), so each loop vectorises; words
     * below 2^62 go through signed conversions, single instructions. */
    for (size_t t = 0; t < n; t++) acc[t] = half;
    for (size_t r = 0; r < count; r++) {
        const double inv = 1.0 / (double)xm[r].value;
        const uint64_t *xr = x + r * n;
        for (size_t t = 0; t < n; t++) acc[t] += (double)(int64_t)xr[t] * inv;
    }
    for (size_t t = 0; t < n; t++) {
        int64_t k = (int64_t)acc[t];
        u[t] = k < (int64_t)max ? (uint8_t)k : max;
    }
}

/* out = (sum_r x_r w[r] + fix[u[t]]) mod m: the conversion itself, a
 * multiply-accumulate pass per input limb on the SIMD backend (a fused
 * scalar loop measured slower on AVX2); an input below m already is a
 * valid operand, a larger one is reduced into tmp first. u NULL: no
 * overflow (one input of weight 1), fix[0] added. */
static void base_convert_limb(const uint64_t *x, const ntt_modulus_t *xm, size_t count, const uint64_t *w,
                              const uint8_t *u, const uint64_t *fix, size_t n, const ntt_modulus_t *m,
                              uint64_t *tmp, uint64_t *out)
{
    const uint64_t q = m->value;
    for (size_t r = 0; r < count; r++) {
        const uint64_t *xr = x + r * n;
        const int big = xm[r].value > q;
        if (r == 0 && w[r] == 1 && count == 1 && !big) { /* alpha = 1, one pass */
            for (size_t t = 0; t < n; t++) out[t] = ntt_addmod(xr[t], fix[u ? u[t] : 0], q);
            return;
        }
        if (r == 0 && w[r] == 1) {
            if (big)
                ntt_vec_reduce(out, xr, n, m);
            else
                memcpy(out, xr, n * sizeof *out);
            continue;
        }
        if (big) {
            ntt_vec_reduce(tmp, xr, n, m);
            xr = tmp;
        }
        if (r == 0)
            ntt_vec_mul_scalar(out, xr, w[r], n, m);
        else
            ntt_vec_fma_scalar(out, xr, w[r], out, n, m);
    }
    if (u)
        for (size_t t = 0; t < n; t++) out[t] = ntt_addmod(out[t], fix[u[t]], q);
    else if (fix[0])
        for (size_t t = 0; t < n; t++) out[t] = ntt_addmod(out[t], fix[0], q);
}

/* fix[k] = (c - k d) mod q for k = 0 .. count. */
static void fix_table(uint64_t c, uint64_t d, size_t count, uint64_t q, uint64_t *fix)
{
    fix[0] = c;
    for (size_t k = 1; k <= count; k++) fix[k] = ntt_submod(fix[k - 1], d, q);
}

/* acc (E = np + ks limbs, NTT form) / P with rounding, added to out (np
 * limbs): out_i += (acc_i + floor(P/2) - [acc + floor(P/2)]_P) * P^-1, the
 * residue by an exact base conversion, so the division rounds exactly.
 * down: ks limbs and n bytes, ops: 2 np limbs. */
static void mod_down(const ckks_hybrid_t *h, const uint64_t *acc, size_t np, uint64_t *down,
                     uint64_t *ops, uint64_t *out)
{
    const ckks_context_t *ctx = h->ctx;
    const size_t n = ctx->n, L = h->L, ks = h->ks;
    uint8_t *u = ks > 1 ? (uint8_t *)(down + ks * n) : NULL;
    for (size_t s = 0; s < ks; s++) {
        const ntt_modulus_t *m = &h->mod[L + s];
        uint64_t *z = down + s * n, half = (m->value - 1) / 2; /* (P - 1)/2 mod p_s */
        memcpy(z, acc + (np + s) * n, n * sizeof *z);
        ntt_inverse(h->ntt[L + s], z);
        for (size_t t = 0; t < n; t++) z[t] = ntt_addmod(z[t], half, m->value);
        if (h->phat_inv[s] != 1) ntt_vec_mul_scalar(z, z, h->phat_inv[s], n, m);
    }
    if (u) overflow_count(down, h->mod + L, ks, n, 0.0, (uint8_t)(ks - 1), (double *)ops, u);
    const int nt = ctx->threads;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (size_t i = 0; i < np; i++) {
        const ntt_modulus_t *m = &h->mod[i];
        const uint64_t q = m->value;
        uint64_t w[CKKS_MAX_PRIMES], fix[CKKS_MAX_PRIMES + 1], *conv = ops + 2 * i * n;
        for (size_t s = 0; s < ks; s++) w[s] = h->phat_q[s][i];
        fix_table(ntt_negmod(h->half_q[i], q), h->p_mod_q[i], ks, q, fix); /* - floor(P/2) - k P */
        base_convert_limb(down, h->mod + L, ks, w, u, fix, n, m, conv + n, conv);
        ntt_forward(ctx->ntt[i], conv);
        ntt_vec_sub(conv, acc + i * n, conv, n, m);
        ntt_vec_fma_scalar(out + i * n, conv, h->p_inv_q[i], out + i * n, n, m);
    }
}

/* Fast base conversion constants of the digit of primes [lo, hi): hat_inv[r]
 * = (Q_D/q_r)^-1 mod q_r, and, for each output limb e (E limbs) outside the
 * digit, hat[e*(alpha+1) + r] = (Q_D/q_r) mod its prime and at r = alpha,
 * Q_D mod its prime. */
static void digit_constants(const ckks_hybrid_t *h, size_t np, size_t lo, size_t hi,
                            uint64_t *hat_inv, uint64_t *hat)
{
    for (size_t i = lo; i < hi; i++)
        ntt_invmod(prod_mod(h->mod, lo, hi, i, &h->mod[i]), &h->mod[i], &hat_inv[i - lo]);
    for (size_t e = 0; e < np + h->ks; e++) {
        if (e >= lo && e < hi) continue;
        const ntt_modulus_t *m = &h->mod[ext_index(h, np, e)];
        uint64_t *he = hat + e * (h->alpha + 1);
        for (size_t i = lo; i < hi; i++) he[i - lo] = prod_mod(h->mod, lo, hi, i, m);
        he[h->alpha] = prod_mod(h->mod, lo, hi, SIZE_MAX, m);
    }
}

int ckks_hybrid_keyswitch_add(const ckks_hybrid_t *h, const uint64_t *target, size_t np,
                              const ckks_kswitch_t *ksk, uint64_t *c0, uint64_t *c1)
{
    const ckks_context_t *ctx = h->ctx;
    const size_t n = ctx->n, alpha = h->alpha, ks = h->ks, E = np + ks, KE = h->L + ks;
    const size_t digits = (np + alpha - 1) / alpha, a1 = alpha + 1;
    /* coef (np) | prod (2 E) | two operand limbs per output limb (2 E) |
     * down (ks + 1) | constants (np + digits E (alpha + 1) words) | the
     * digits' overflow counts (digits N bytes), rounded up to limbs */
    const size_t cwords = np + digits * E * a1 + (digits * n + 7) / 8, climbs = (cwords + n - 1) / n;
    uint64_t *coef = ckks_scratch(CKKS_SCRATCH_HYBRID, (np + 4 * E + ks + 1 + climbs) * n);
    if (!coef) return CKKS_ENOMEM;
    uint64_t *prod = coef + np * n, *ops = prod + 2 * E * n;
    uint64_t *down = ops + 2 * E * n, *hat_inv = down + (ks + 1) * n, *hat = hat_inv + np;
    uint8_t *over = (uint8_t *)(hat + digits * E * a1);
    /* ModUp, digit by digit: y_r = [c_r * hat_inv_r]_{q_r} (in place in the
     * coefficient form of the input); output limb e of digit j is the
     * centred digit, sum_r y_r hat_r - round(sum_r y_r / q_r) Q_j, mod its
     * prime, except at the digit's own limbs, which are the input itself. */
    memcpy(coef, target, np * n * sizeof *coef);
    ckks_poly_intt(ctx, coef, np);
    for (size_t j = 0; j < digits; j++) {
        const size_t lo = j * alpha, hi = lo + alpha < np ? lo + alpha : np;
        digit_constants(h, np, lo, hi, hat_inv + lo, hat + j * E * a1);
        for (size_t i = lo; i < hi; i++)
            if (hat_inv[i] != 1) ntt_vec_mul_scalar(coef + i * n, coef + i * n, hat_inv[i], n, &h->mod[i]);
        overflow_count(coef + lo * n, h->mod + lo, hi - lo, n, 0.5, (uint8_t)(hi - lo), (double *)ops, over + j * n);
    }
    /* Output limb by output limb, every digit into the same accumulators
     * (they stay in cache while the key streams past, as in poly.c). */
    const int nt = ctx->threads;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic)
    for (size_t e = 0; e < E; e++) {
        const size_t ke = ext_index(h, np, e);
        const ntt_modulus_t *m = &h->mod[ke];
        uint64_t *op = ops + 2 * e * n, *acc_b = prod + e * n, *acc_a = prod + (E + e) * n;
        for (size_t j = 0; j < digits; j++) {
            const size_t lo = j * alpha, hi = lo + alpha < np ? lo + alpha : np;
            const uint64_t *operand = target + e * n;
            if (e < lo || e >= hi) {
                const uint64_t *he = hat + (j * E + e) * a1;
                uint64_t fix[CKKS_MAX_PRIMES + 1];
                fix_table(0, he[alpha], hi - lo, m->value, fix); /* - k Q_j */
                base_convert_limb(coef + lo * n, h->mod + lo, hi - lo, he, over + j * n, fix, n, m, op + n, op);
                ntt_forward(h->ntt[ke], op);
                operand = op;
            }
            const uint64_t *kb = ksk->d + ((j * 2 + 0) * KE + ke) * n;
            const uint64_t *ka = ksk->d + ((j * 2 + 1) * KE + ke) * n;
            ckks_ks_accumulate(acc_b, acc_a, operand, kb, ka, j == 0, n, m);
        }
    }
    mod_down(h, prod, np, down, ops, c0);
    mod_down(h, prod + E * n, np, down, ops, c1);
    return CKKS_OK;
}
