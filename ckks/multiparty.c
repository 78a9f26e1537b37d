/*
 * N-out-of-N multiparty CKKS: the protocols of Mouchet, Troncoso-Pastoriza,
 * Bossuat and Hubaux, "Multiparty Homomorphic Encryption from
 * Ring-Learning-with-Errors", PoPETs 2021(4) (section 4 and figures 2-4 of
 * the paper: EncKeyGen, RelinKeyGen, RotKeyGen, PubKeySwitch), over hestat's
 * RNS representation and SEAL's key-switching gadget (one digit per data
 * prime j, g_j = P [prime j], P the special prime).
 *
 * Notation (all polynomials in NTT form): s_i the party's ternary secret,
 * s = sum s_i; a, a_j uniform polynomials of the common reference string,
 * expanded from the study's public 32-byte seed; e fresh centred-binomial
 * error (sigma ~ 3.24) per share.
 *   CKG:  p_i = -(a s_i + e_i);           sum: (b, a) with b + a s = -e
 *   RKG1: h0_ij = -u_i a_j + P s_i [j] + e, h1_ij = s_i a_j + e'
 *   RKG2: h'_ij = s_i H0_j + (u_i - s_i) H1_j + e''  (H = round-1 sums)
 *         key digit j = (sum h'_ij, H1_j): b + a s = P s^2 [j] + small
 *   GKG:  h_ij = -a_j s_i + P sigma(s_i) [j] + e; key digit j = (sum h_ij, a_j)
 *   PCKS: h0_i = s_i c1 + u_i p0' + e0 (e0 the smudging noise), h1_i = u_i p1' + e1;
 *         (c0 + sum h0_i, sum h1_i) decrypts under the target key s' to
 *         m + e_ct - u e' + e0 + s' e1.
 * The noise analysis (and the choice of smudging) is docs/multiparty.md.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_impl.h"

static void wipe_free(void *p, size_t bytes)
{
    if (!p) return;
    sodium_memzero(p, bytes);
    ntt_free(p);
}

/* npolys of a share kind at nprimes primes, or 0 when the shape is not one
 * this context produces. */
size_t ckks_mp_share_polys(const ckks_context_t *ctx, int kind, size_t nprimes, uint32_t elt)
{
    const size_t k = ctx->k;
    switch (kind) {
    case CKKS_MP_CKG:
        return nprimes == k && elt == 0 ? 1 : 0;
    case CKKS_MP_RKG1:
        return nprimes == k && elt == 0 ? 2 * (k - 1) : 0;
    case CKKS_MP_RKG2:
        return nprimes == k && elt == 0 ? k - 1 : 0;
    case CKKS_MP_GKG:
        return nprimes >= 2 && nprimes <= k && (elt & 1) && elt != 1 && elt < 2 * ctx->n ? nprimes - 1 : 0;
    case CKKS_MP_PCKS:
        return nprimes >= 1 && nprimes < k && elt == 0 ? 2 : 0;
    default:
        return 0;
    }
}

size_t ckks_mp_share_prime(const ckks_context_t *ctx, int kind, size_t nprimes, size_t row)
{
    return kind == CKKS_MP_GKG && row + 1 == nprimes ? ctx->k - 1 : row;
}

static int share_new(const ckks_context_t *ctx, int kind, size_t nprimes, uint32_t elt, ckks_mp_share_t **out)
{
    *out = NULL;
    size_t np = ckks_mp_share_polys(ctx, kind, nprimes, elt);
    if (!np) return CKKS_EINVAL;
    ckks_mp_share_t *sh = calloc(1, sizeof *sh);
    if (!sh) return CKKS_ENOMEM;
    sh->ctx = ctx;
    sh->kind = (ckks_mp_kind_t)kind;
    sh->elt = elt;
    sh->npolys = np;
    sh->nprimes = nprimes;
    sh->data = ntt_alloc(np * nprimes * ctx->n);
    if (!sh->data) {
        free(sh);
        return CKKS_ENOMEM;
    }
    memset(sh->data, 0, np * nprimes * ctx->n * sizeof *sh->data);
    *out = sh;
    return CKKS_OK;
}

int ckks_mp_share_new_shape(const ckks_context_t *ctx, int kind, size_t nprimes, uint32_t elt,
                            ckks_mp_share_t **out)
{
    if (!ctx || !out) return CKKS_EINVAL;
    return share_new(ctx, kind, nprimes, elt, out);
}

void ckks_mp_share_free(ckks_mp_share_t *sh)
{
    if (!sh) return;
    /* PCKS and RKG shares are functions of secrets and fresh noise; wipe. */
    wipe_free(sh->data, sh->npolys * sh->nprimes * sh->ctx->n * sizeof *sh->data);
    free(sh);
}

int ckks_mp_share_zero_like(const ckks_mp_share_t *like, ckks_mp_share_t **out)
{
    if (!like || !out) return CKKS_EINVAL;
    return share_new(like->ctx, like->kind, like->nprimes, like->elt, out);
}

int ckks_mp_aggregate(ckks_mp_share_t *acc, const ckks_mp_share_t *sh)
{
    if (!acc || !sh) return CKKS_EINVAL;
    if (acc->ctx != sh->ctx) return CKKS_ECONTEXT;
    if (acc->kind != sh->kind || acc->elt != sh->elt || acc->npolys != sh->npolys || acc->nprimes != sh->nprimes)
        return CKKS_EINVAL;
    const ckks_context_t *ctx = acc->ctx;
    const size_t n = ctx->n;
    for (size_t p = 0; p < acc->npolys; p++)
        for (size_t i = 0; i < acc->nprimes; i++) {
            size_t off = (p * acc->nprimes + i) * n;
            const ntt_modulus_t *m = &ctx->mod[ckks_mp_share_prime(ctx, acc->kind, acc->nprimes, i)];
            ntt_vec_add(acc->data + off, acc->data + off, sh->data + off, n, m);
        }
    return CKKS_OK;
}

/* ---- the common reference string ---------------------------------------------------
 * Each uniform polynomial is SEAL's blake2xb expansion of a 64-byte seed
 * derived from the study seed by keyed BLAKE2b-512 over a label, the Galois
 * element and the digit. The same expansion SEAL's seeded keys use, so the
 * collective public and Galois keys keep their seeds and are written
 * compact (half size) like single-key ones. */
static void crs_seed(const uint8_t seed[CKKS_MP_SEED_BYTES], const char label[4], uint32_t elt, uint32_t digit,
                     uint8_t out[CKKS_SEAL_SEED_BYTES])
{
    uint8_t msg[16] = {'h', 'm', 'p', '1'};
    memcpy(msg + 4, label, 4);
    for (int b = 0; b < 4; b++) {
        msg[8 + b] = (uint8_t)(elt >> (8 * b));
        msg[12 + b] = (uint8_t)(digit >> (8 * b));
    }
    crypto_generichash(out, CKKS_SEAL_SEED_BYTES, msg, sizeof msg, seed, CKKS_MP_SEED_BYTES);
}

static int crs_poly(const ckks_context_t *ctx, const uint8_t seed[CKKS_MP_SEED_BYTES], const char label[4],
                    uint32_t elt, uint32_t digit, uint64_t *out, uint8_t *seal_seed_out)
{
    uint8_t s64[CKKS_SEAL_SEED_BYTES];
    crs_seed(seed, label, elt, digit, s64);
    if (seal_seed_out) memcpy(seal_seed_out, s64, sizeof s64);
    return ckks_seal_expand_uniform(CKKS_SEAL_PRNG_BLAKE2XB, s64, ctx->primes, ctx->k, ctx->n, out);
}

/* out (np primes) = a fresh centred-binomial error in NTT form. */
static void add_error(const ckks_context_t *ctx, ckks_stream_t *st, int8_t *e, uint64_t *tmp, size_t np,
                      uint64_t *out)
{
    const size_t n = ctx->n;
    ckks_sample_cbd(st, n, e);
    ckks_small_to_ntt(ctx, e, np, tmp);
    for (size_t i = 0; i < np; i++) ntt_vec_add(out + i * n, out + i * n, tmp + i * n, n, &ctx->mod[i]);
}

/* Scratch for a party-side protocol step: a small-coefficient buffer, two
 * polynomials over all primes, and the OS-keyed stream for the errors. */
typedef struct {
    int8_t *e;
    uint64_t *tmp, *tmp2;
    ckks_stream_t st;
} party_t;

static int party_open(const ckks_context_t *ctx, party_t *p)
{
    memset(p, 0, sizeof *p);
    p->e = malloc(ctx->n);
    p->tmp = ntt_alloc(ctx->k * ctx->n);
    p->tmp2 = ntt_alloc(ctx->k * ctx->n);
    if (!p->e || !p->tmp || !p->tmp2) return CKKS_ENOMEM;
    return ckks_stream_init_random(&p->st);
}

static void party_close(const ckks_context_t *ctx, party_t *p)
{
    ckks_stream_wipe(&p->st);
    if (p->e) sodium_memzero(p->e, ctx->n);
    free(p->e);
    wipe_free(p->tmp, ctx->k * ctx->n * sizeof *p->tmp);
    wipe_free(p->tmp2, ctx->k * ctx->n * sizeof *p->tmp2);
}

int ckks_mp_ckg_share(const ckks_secret_key_t *si, const uint8_t seed[CKKS_MP_SEED_BYTES], ckks_mp_share_t **out)
{
    if (!si || !seed || !out) return CKKS_EINVAL;
    const ckks_context_t *ctx = si->ctx;
    const size_t n = ctx->n, k = ctx->k;
    ckks_mp_share_t *sh;
    int rc = share_new(ctx, CKKS_MP_CKG, k, 0, &sh);
    if (rc) return rc;
    party_t p;
    rc = party_open(ctx, &p);
    if (!rc) rc = crs_poly(ctx, seed, "ckg ", 0, 0, p.tmp2, NULL);
    if (!rc) {
        /* p_i = -(a s_i + e_i) */
        add_error(ctx, &p.st, p.e, p.tmp, k, sh->data);
        for (size_t i = 0; i < k; i++) {
            uint64_t *o = sh->data + i * n;
            ntt_vec_fma(o, p.tmp2 + i * n, si->s + i * n, o, n, &ctx->mod[i]);
            ntt_vec_neg(o, o, n, &ctx->mod[i]);
        }
    }
    party_close(ctx, &p);
    if (rc) {
        ckks_mp_share_free(sh);
        return rc;
    }
    *out = sh;
    return CKKS_OK;
}

int ckks_mp_rkg_round1(const ckks_secret_key_t *si, const ckks_secret_key_t *ui,
                       const uint8_t seed[CKKS_MP_SEED_BYTES], ckks_mp_share_t **out)
{
    if (!si || !ui || !seed || !out) return CKKS_EINVAL;
    const ckks_context_t *ctx = si->ctx;
    if (ui->ctx != ctx) return CKKS_ECONTEXT;
    const size_t n = ctx->n, k = ctx->k, poly = k * n;
    ckks_mp_share_t *sh;
    int rc = share_new(ctx, CKKS_MP_RKG1, k, 0, &sh);
    if (rc) return rc;
    party_t p;
    rc = party_open(ctx, &p);
    for (size_t j = 0; j + 1 < k && rc == CKKS_OK; j++) {
        uint64_t *a = p.tmp2, *h0 = sh->data + (2 * j) * poly, *h1 = sh->data + (2 * j + 1) * poly;
        rc = crs_poly(ctx, seed, "rkg ", 0, (uint32_t)j, a, NULL);
        if (rc) break;
        /* h0 = -u_i a_j + e0, then + P s_i at prime j */
        add_error(ctx, &p.st, p.e, p.tmp, k, h0);
        for (size_t i = 0; i < k; i++) {
            const ntt_modulus_t *m = &ctx->mod[i];
            ntt_vec_mul(p.tmp + i * n, a + i * n, ui->s + i * n, n, m);
            ntt_vec_sub(h0 + i * n, h0 + i * n, p.tmp + i * n, n, m);
        }
        uint64_t factor = ntt_reduce64(ctx->primes[k - 1], &ctx->mod[j]);
        ntt_vec_fma_scalar(h0 + j * n, si->s + j * n, factor, h0 + j * n, n, &ctx->mod[j]);
        /* h1 = s_i a_j + e1 */
        add_error(ctx, &p.st, p.e, p.tmp, k, h1);
        for (size_t i = 0; i < k; i++) ntt_vec_fma(h1 + i * n, a + i * n, si->s + i * n, h1 + i * n, n, &ctx->mod[i]);
    }
    party_close(ctx, &p);
    if (rc) {
        ckks_mp_share_free(sh);
        return rc;
    }
    *out = sh;
    return CKKS_OK;
}

int ckks_mp_rkg_round2(const ckks_secret_key_t *si, const ckks_secret_key_t *ui, const ckks_mp_share_t *r1,
                       ckks_mp_share_t **out)
{
    if (!si || !ui || !r1 || !out) return CKKS_EINVAL;
    const ckks_context_t *ctx = si->ctx;
    if (ui->ctx != ctx || r1->ctx != ctx) return CKKS_ECONTEXT;
    if (r1->kind != CKKS_MP_RKG1 || r1->nprimes != ctx->k) return CKKS_EINVAL;
    const size_t n = ctx->n, k = ctx->k, poly = k * n;
    ckks_mp_share_t *sh;
    int rc = share_new(ctx, CKKS_MP_RKG2, k, 0, &sh);
    if (rc) return rc;
    party_t p;
    rc = party_open(ctx, &p);
    if (rc == CKKS_OK) {
        /* tmp2 = u_i - s_i */
        for (size_t i = 0; i < k; i++) ntt_vec_sub(p.tmp2 + i * n, ui->s + i * n, si->s + i * n, n, &ctx->mod[i]);
        for (size_t j = 0; j + 1 < k; j++) {
            const uint64_t *H0 = r1->data + (2 * j) * poly, *H1 = r1->data + (2 * j + 1) * poly;
            uint64_t *h = sh->data + j * poly;
            add_error(ctx, &p.st, p.e, p.tmp, k, h);
            for (size_t i = 0; i < k; i++) {
                const ntt_modulus_t *m = &ctx->mod[i];
                ntt_vec_fma(h + i * n, si->s + i * n, H0 + i * n, h + i * n, n, m);
                ntt_vec_fma(h + i * n, p.tmp2 + i * n, H1 + i * n, h + i * n, n, m);
            }
        }
    }
    party_close(ctx, &p);
    if (rc) {
        ckks_mp_share_free(sh);
        return rc;
    }
    *out = sh;
    return CKKS_OK;
}

int ckks_mp_gkg_share(const ckks_secret_key_t *si, const uint8_t seed[CKKS_MP_SEED_BYTES], uint32_t elt,
                      ckks_mp_share_t **out)
{
    if (!si) return CKKS_EINVAL;
    return ckks_mp_gkg_share_limited(si, seed, elt, si->ctx->k - 1, out);
}

int ckks_mp_gkg_share_limited(const ckks_secret_key_t *si, const uint8_t seed[CKKS_MP_SEED_BYTES], uint32_t elt,
                              size_t L, ckks_mp_share_t **out)
{
    if (!si || !seed || !out) return CKKS_EINVAL;
    const ckks_context_t *ctx = si->ctx;
    const size_t n = ctx->n, k = ctx->k, dp = k - 1, rows = L + 1, poly = rows * n;
    if (L < 1 || L > dp) return CKKS_EINVAL;
    ckks_mp_share_t *sh;
    int rc = share_new(ctx, CKKS_MP_GKG, rows, elt, &sh);
    if (rc) return rc;
    party_t p;
    rc = party_open(ctx, &p);
    uint64_t *sg = rc ? NULL : ntt_alloc(L * n);
    if (!rc && !sg) rc = CKKS_ENOMEM;
    if (!rc) ckks_poly_galois(ctx, si->s, L, elt, sg);
    for (size_t j = 0; j < L && rc == CKKS_OK; j++) {
        uint64_t *a = p.tmp2, *h = sh->data + j * poly;
        rc = crs_poly(ctx, seed, "gkg ", elt, (uint32_t)j, a, NULL);
        if (rc) break;
        /* h = -a_j s_i + e + P sigma(s_i) at prime j, over primes 0 .. L-1
         * and the special one (row L) */
        ckks_sample_cbd(&p.st, n, p.e);
        ckks_small_widen(p.e, n, 0, p.tmp);
        for (size_t r = 0; r < rows; r++) {
            const size_t i = ckks_mp_share_prime(ctx, CKKS_MP_GKG, rows, r);
            const ntt_modulus_t *m = &ctx->mod[i];
            uint64_t *hr = h + r * n;
            ckks_small_limb_to_ntt(ctx, p.tmp, i, hr); /* e, at the rows' primes only */
            ntt_vec_mul(a + i * n, a + i * n, si->s + i * n, n, m);
            ntt_vec_sub(hr, hr, a + i * n, n, m);
        }
        uint64_t factor = ntt_reduce64(ctx->primes[k - 1], &ctx->mod[j]);
        ntt_vec_fma_scalar(h + j * n, sg + j * n, factor, h + j * n, n, &ctx->mod[j]);
    }
    wipe_free(sg, L * n * sizeof *sg);
    party_close(ctx, &p);
    if (rc) {
        ckks_mp_share_free(sh);
        return rc;
    }
    *out = sh;
    return CKKS_OK;
}

int ckks_mp_pcks_share(const ckks_secret_key_t *si, const ckks_public_key_t *target, const ckks_ciphertext_t *ct,
                       int smudge_bits, ckks_mp_share_t **out)
{
    if (!si || !target || !ct || !out || smudge_bits < 0 || smudge_bits > 50) return CKKS_EINVAL;
    const ckks_context_t *ctx = si->ctx;
    if (target->ctx != ctx || ct->ctx != ctx) return CKKS_ECONTEXT;
    if (ct->size != 2) return CKKS_ESIZE;
    const size_t n = ctx->n, k = ctx->k, np = ct->nprimes;
    ckks_mp_share_t *sh;
    int rc = share_new(ctx, CKKS_MP_PCKS, np, 0, &sh);
    if (rc) return rc;
    party_t p;
    rc = party_open(ctx, &p);
    int64_t *wide = rc ? NULL : malloc(n * sizeof *wide);
    if (!rc && !wide) rc = CKKS_ENOMEM;
    if (rc == CKKS_OK) {
        uint64_t *h0 = sh->data, *h1 = sh->data + np * n, *u = p.tmp2;
        const uint64_t *c1 = ct->data + np * n, *p0 = target->p, *p1 = target->p + k * n;
        ckks_sample_ternary(&p.st, n, p.e);
        ckks_small_to_ntt(ctx, p.e, np, u);
        /* h0 = s_i c1 + u p0' + smudge */
        ckks_sample_gauss(&p.st, n, smudge_bits, wide);
        ckks_wide_to_ntt(ctx, wide, np, h0);
        for (size_t i = 0; i < np; i++) {
            const ntt_modulus_t *m = &ctx->mod[i];
            ntt_vec_fma(h0 + i * n, si->s + i * n, c1 + i * n, h0 + i * n, n, m);
            ntt_vec_fma(h0 + i * n, u + i * n, p0 + i * n, h0 + i * n, n, m);
        }
        /* h1 = u p1' + e1 */
        add_error(ctx, &p.st, p.e, p.tmp, np, h1);
        for (size_t i = 0; i < np; i++) ntt_vec_fma(h1 + i * n, u + i * n, p1 + i * n, h1 + i * n, n, &ctx->mod[i]);
    }
    if (wide) sodium_memzero(wide, n * sizeof *wide);
    free(wide);
    party_close(ctx, &p);
    if (rc) {
        ckks_mp_share_free(sh);
        return rc;
    }
    *out = sh;
    return CKKS_OK;
}

/* ---- aggregator side ----------------------------------------------------------------- */
int ckks_mp_public_key(const ckks_context_t *ctx, const uint8_t seed[CKKS_MP_SEED_BYTES],
                       const ckks_mp_share_t *ckg, ckks_public_key_t **out)
{
    if (!ctx || !seed || !ckg || !out) return CKKS_EINVAL;
    *out = NULL;
    if (ckg->ctx != ctx) return CKKS_ECONTEXT;
    if (ckg->kind != CKKS_MP_CKG || ckg->nprimes != ctx->k) return CKKS_EINVAL;
    const size_t kn = ctx->k * ctx->n;
    ckks_public_key_t *pk = calloc(1, sizeof *pk);
    if (!pk) return CKKS_ENOMEM;
    pk->ctx = ctx;
    pk->p = ntt_alloc(2 * kn);
    if (!pk->p) {
        ckks_public_key_free(pk);
        return CKKS_ENOMEM;
    }
    memcpy(pk->p, ckg->data, kn * sizeof *pk->p);
    int rc = crs_poly(ctx, seed, "ckg ", 0, 0, pk->p + kn, NULL);
    if (rc) {
        ckks_public_key_free(pk);
        return rc;
    }
    *out = pk;
    return CKKS_OK;
}

int ckks_mp_relin_key(const ckks_mp_share_t *r1, const ckks_mp_share_t *r2, ckks_relin_key_t **out)
{
    if (!r1 || !r2 || !out) return CKKS_EINVAL;
    *out = NULL;
    const ckks_context_t *ctx = r1->ctx;
    if (r2->ctx != ctx) return CKKS_ECONTEXT;
    if (r1->kind != CKKS_MP_RKG1 || r2->kind != CKKS_MP_RKG2 || r1->nprimes != ctx->k || r2->nprimes != ctx->k)
        return CKKS_EINVAL;
    const size_t k = ctx->k, poly = k * ctx->n;
    ckks_relin_key_t *rk = calloc(1, sizeof *rk);
    if (!rk) return CKKS_ENOMEM;
    rk->ctx = ctx;
    rk->key.d = ntt_alloc((k - 1) * 2 * poly);
    if (!rk->key.d) {
        free(rk);
        return CKKS_ENOMEM;
    }
    for (size_t j = 0; j + 1 < k; j++) {
        memcpy(rk->key.d + (2 * j) * poly, r2->data + j * poly, poly * sizeof *rk->key.d);
        memcpy(rk->key.d + (2 * j + 1) * poly, r1->data + (2 * j + 1) * poly, poly * sizeof *rk->key.d);
    }
    *out = rk;
    return CKKS_OK;
}

int ckks_mp_galois_keys(const ckks_context_t *ctx, const uint8_t seed[CKKS_MP_SEED_BYTES],
                        const ckks_mp_share_t *const *sums, size_t count, ckks_galois_keys_t **out)
{
    if (!ctx || !seed || (count && !sums) || !out) return CKKS_EINVAL;
    *out = NULL;
    const size_t k = ctx->k, poly = k * ctx->n, dp = k - 1;
    for (size_t i = 0; i < count; i++) {
        if (!sums[i]) return CKKS_EINVAL;
        if (sums[i]->ctx != ctx) return CKKS_ECONTEXT;
        if (sums[i]->kind != CKKS_MP_GKG || sums[i]->nprimes < 2 || sums[i]->nprimes > k ||
            sums[i]->npolys != sums[i]->nprimes - 1)
            return CKKS_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (sums[j]->elt == sums[i]->elt) return CKKS_EINVAL;
    }
    ckks_galois_keys_t *gk = ckks_galois_keys_alloc(ctx, count);
    if (!gk) return CKKS_ENOMEM;
    uint32_t *elts = gk->elts;
    ckks_kswitch_t *keys = gk->keys;
    int rc = CKKS_OK;
    for (size_t i = 0; i < count && rc == CKKS_OK; i++) {
        ckks_kswitch_t *key = &keys[i];
        /* L digits (a sum of limited shares: a limited key, as
         * ckks_galois_keys_limit lays it out, rows L .. k-2 zero) */
        const size_t rows = sums[i]->nprimes, L = rows - 1, n = ctx->n;
        elts[i] = sums[i]->elt;
        gk->count = i + 1;
        key->d = ntt_alloc(L * 2 * poly); /* zeroed */
        key->seal_seeds = calloc(dp, CKKS_SEAL_SEED_BYTES);
        if (!key->d || !key->seal_seeds) {
            rc = CKKS_ENOMEM;
            break;
        }
        key->limit = L < dp ? L : 0;
        for (size_t j = 0; j < L && rc == CKKS_OK; j++) {
            uint64_t *b = key->d + (2 * j) * poly, *a = key->d + (2 * j + 1) * poly;
            for (size_t r = 0; r < rows; r++)
                memcpy(b + ckks_mp_share_prime(ctx, CKKS_MP_GKG, rows, r) * n, sums[i]->data + (j * rows + r) * n,
                       n * sizeof *b);
            rc = crs_poly(ctx, seed, "gkg ", elts[i], (uint32_t)j, a, key->seal_seeds + j * CKKS_SEAL_SEED_BYTES);
            if (L < dp) memset(a + L * n, 0, (dp - L) * n * sizeof *a);
        }
    }
    if (rc) {
        ckks_galois_keys_free(gk);
        return rc;
    }
    *out = gk;
    return CKKS_OK;
}

int ckks_mp_pcks_apply(const ckks_ciphertext_t *ct, const ckks_mp_share_t *sum, ckks_ciphertext_t *out)
{
    if (!ct || !sum || !out) return CKKS_EINVAL;
    const ckks_context_t *ctx = ct->ctx;
    if (sum->ctx != ctx || out->ctx != ctx) return CKKS_ECONTEXT;
    if (ct->size != 2) return CKKS_ESIZE;
    if (sum->kind != CKKS_MP_PCKS || sum->nprimes != ct->nprimes) return CKKS_ELEVEL;
    const size_t n = ctx->n, np = ct->nprimes;
    if (out != ct) {
        int rc = ckks_ciphertext_copy(out, ct);
        if (rc) return rc;
    }
    for (size_t i = 0; i < np; i++)
        ntt_vec_add(out->data + i * n, out->data + i * n, sum->data + i * n, n, &ctx->mod[i]);
    memcpy(out->data + np * n, sum->data + np * n, np * n * sizeof *out->data);
    out->has_seed = 0;
    out->has_seal_seed = 0;
    return CKKS_OK;
}

int ckks_mp_secret_sum(const ckks_secret_key_t *const *shares, size_t count, ckks_secret_key_t **out)
{
    if (!shares || !count || !out) return CKKS_EINVAL;
    *out = NULL;
    const ckks_context_t *ctx = shares[0] ? shares[0]->ctx : NULL;
    if (!ctx) return CKKS_EINVAL;
    for (size_t p = 1; p < count; p++) {
        if (!shares[p]) return CKKS_EINVAL;
        if (shares[p]->ctx != ctx) return CKKS_ECONTEXT;
    }
    const size_t kn = ctx->k * ctx->n, n = ctx->n;
    ckks_secret_key_t *sk = calloc(1, sizeof *sk);
    if (!sk) return CKKS_ENOMEM;
    sk->ctx = ctx;
    sk->s = ntt_alloc(kn);
    if (!sk->s) {
        free(sk);
        return CKKS_ENOMEM;
    }
    memcpy(sk->s, shares[0]->s, kn * sizeof *sk->s);
    for (size_t p = 1; p < count; p++)
        for (size_t i = 0; i < ctx->k; i++)
            ntt_vec_add(sk->s + i * n, sk->s + i * n, shares[p]->s + i * n, n, &ctx->mod[i]);
    *out = sk;
    return CKKS_OK;
}
