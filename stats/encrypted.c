/*
 * Statistics on encrypted tables.
 *
 * Layout. Row-major: a row occupies B slots (B = next power of two >= the
 * number of columns), a ciphertext holds R = slots/B rows, a table spans
 * ceil(rows/R) chunks. Per chunk: Z = x/f + i (x/f)^2 (complex slots) and
 * M = 1 where present (missing: 0 in both). f_c is a public power of two >= max|x_c|.
 *
 * Server (STATS_JOB_ALL). Sums over chunks of slot-wise products of a row's
 * column c with its column c+d (d = 1 .. B-1), for four product types:
 *   Q1 = Z_c (M_j - R_j), Q2 = R_c Z_j, Q3 = (M_c - Z_c) M_j, Q4 = M_c Z_j,
 * with R = Z + conj(Z) = 2x, j = c + d (slots where c + d >= B pair a row with
 * the next one and are ignored). With q = x^2 (units of the factors):
 *   Q1 = x m' - 2 x x' + i (q m' - 2 q x'),  Q2 = 2 x x' + 2 i x q',
 *   Q3 = m m' - x m' - i q m',               Q4 = m x' + i m q',
 * eight real totals from which the client takes the eight sums a pair needs
 * (pair_sums: x m' = Re Q1 + Re Q2, m m' = Re Q3 + Re Q1 + Re Q2, ...), with
 * sums and differences of decrypted totals: nothing is halved homomorphically.
 * (Five products, Z_c R_j, M_c M_j, Z_c M_j, M_c Z_j, R_c Z_j, give the same
 * eight with two reals to spare. A total now reaches 3 x rows, not 2; the
 * minus signs keep the totals small for columns of one sign, which keeps the
 * packing's mask error, proportional to the totals, near the five types'.)
 * Rotations by d are baby-step/giant-step:
 * d = a + g b, sum_k X_k rot(Y_k, d) = rot(sum_k rot(X_k, -g b) rot(Y_k, a), g b),
 * so each chunk is rotated 3 (g - 1 + B/g - 1) times instead of 3 (B - 1)
 * times, and the outer rotation by g b is left out (sum_shift).
 * Then every sum (the four products for every d, plus sum Z and sum M) is
 * relinearized, masked to its own block of p slots and added into a packed
 * ciphertext (S/p sums each), which is folded over rows (rotations by S/2 .. p
 * as a tree, then p/2 .. B) and rescaled. The client reads total t, column c
 * at slot (t mod S/p) p + (c + shift_t) mod B, shift_t = g b of its diagonal
 * (at period B the left-out rotation is a cyclic shift of the B totals).
 * Masks are encoded at target/scale so every masked sum has the same scale.
 *
 * Column-major (lay->colmajor, keygen --layout columns): row r, column c at
 * slot c R + r. A rotation by d R moves every column c onto c + d mod B, so
 * d = 1 .. B/2 (ndiag) reach every pair, in steps of R (dstep); a pair whose
 * columns are more than B/2 apart is found from its second column
 * (pair_place). Each sum is folded over its rows (R/2 .. 1) at the top
 * level, masked to the slots c R and rescaled, then R sums are packed a
 * ciphertext by a tree of rotations by 1, 2, 4, ...: total t, column c at
 * slot ((c + shift_t) mod B) R - (t mod R), mod S (pack_sums_colmajor).
 */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stats/stats.h"

#ifdef _OPENMP
#include <omp.h>
#endif

void stats_set_error(const char *fmt, ...);
struct stats_chunk_src;
void stats_chunk_src_free(struct stats_chunk_src *src);

#define TRY(call)                                                             \
    do {                                                                      \
        int rc_ = (call);                                                     \
        if (rc_ != CKKS_OK) {                                                 \
            stats_set_error("%s: %s", #call, ckks_strerror(rc_));            \
            rc = rc_ == CKKS_ENOMEM ? STATS_ENOMEM : STATS_ECKKS;             \
            goto done;                                                        \
        }                                                                     \
    } while (0)

enum { NTYPES = 4 };

static size_t next_pow2(size_t x)
{
    size_t p = 1;
    while (p < x) p <<= 1;
    return p;
}

int stats_layout_for(const ckks_context_t *ctx, const stats_table_t *t, stats_layout_t *lay)
{
    if (!ctx || !t || !lay || t->ncols == 0) return STATS_EINVAL;
    memset(lay, 0, sizeof *lay);
    lay->slots = ckks_context_slots(ctx);
    lay->policy = stats_policy_default();
    lay->ncols = t->ncols;
    lay->block = next_pow2(t->ncols);
    if (lay->block > lay->slots / 2) return STATS_EINVAL;
    lay->rows_per_ct = lay->slots / lay->block;
    lay->nrows = t->nrows;
    lay->chunks = (t->nrows + lay->rows_per_ct - 1) / lay->rows_per_ct;
    if (lay->chunks == 0) lay->chunks = 1;
    for (size_t c = 0; c < t->ncols; c++) {
        memcpy(lay->names[c], t->names[c], STATS_NAME_MAX);
        double mx = 0;
        for (size_t r = 0; r < t->nrows; r++) {
            double v = fabs(stats_value(t, r, c));
            if (!isnan(v) && v > mx) mx = v;
        }
        double f = 1;
        while (f < mx) f *= 2;
        lay->factor[c] = f;
    }
    return STATS_OK;
}

void stats_enc_table_free(stats_enc_table_t *e)
{
    if (!e) return;
    stats_chunk_src_free(e->src);
    for (size_t k = 0; k < e->chunks; k++) {
        if (e->z) ckks_ciphertext_free(e->z[k]);
        if (e->m) ckks_ciphertext_free(e->m[k]);
    }
    free(e->z);
    free(e->m);
    free(e);
}

static int encrypt_impl(const ckks_context_t *ctx, const ckks_public_key_t *pk, const ckks_secret_key_t *sk,
                        const stats_table_t *t, const stats_layout_t *lay, double scale, stats_enc_table_t **out,
                        stats_chunk_sink_fn sink, void *sink_arg, stats_progress_fn progress, void *arg);

int stats_encrypt_progress(const ckks_context_t *ctx, const ckks_public_key_t *pk,
                           const ckks_secret_key_t *sk, const stats_table_t *t,
                           const stats_layout_t *lay, double scale, stats_enc_table_t **out,
                           stats_progress_fn progress, void *arg)
{
    if (!out) return STATS_EINVAL;
    return encrypt_impl(ctx, pk, sk, t, lay, scale, out, NULL, NULL, progress, arg);
}

int stats_encrypt_each(const ckks_context_t *ctx, const ckks_public_key_t *pk, const ckks_secret_key_t *sk,
                       const stats_table_t *t, const stats_layout_t *lay, double scale, stats_chunk_sink_fn sink,
                       void *sink_arg, stats_progress_fn progress, void *arg)
{
    if (!sink) return STATS_EINVAL;
    return encrypt_impl(ctx, pk, sk, t, lay, scale, NULL, sink, sink_arg, progress, arg);
}

int stats_encrypt(const ckks_context_t *ctx, const ckks_public_key_t *pk,
                  const ckks_secret_key_t *sk, const stats_table_t *t,
                  const stats_layout_t *lay, double scale, stats_enc_table_t **out)
{
    return stats_encrypt_progress(ctx, pk, sk, t, lay, scale, out, NULL, NULL);
}

/* Encrypts chunk by chunk; with out, every chunk is kept in a new table,
 * else each is handed to sink and its ciphertexts reused for the next. */
static int encrypt_impl(const ckks_context_t *ctx, const ckks_public_key_t *pk, const ckks_secret_key_t *sk,
                        const stats_table_t *t, const stats_layout_t *lay, double scale, stats_enc_table_t **out,
                        stats_chunk_sink_fn sink, void *sink_arg, stats_progress_fn progress, void *arg)
{
    if (!ctx || !t || !lay || (!out == !sink) || (!pk == !sk)) return STATS_EINVAL;
    if (t->ncols != lay->ncols || t->nrows != lay->nrows) return STATS_ESCHEMA;
    if (out) *out = NULL;
    const size_t S = lay->slots, R = lay->rows_per_ct;
    int rc = STATS_OK;
    /* Range check first: nothing is encrypted for a table that does not fit. */
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            double v = stats_value(t, r, c);
            if (!isnan(v) && fabs(v) > lay->factor[c]) {
                stats_set_error("row %zu, column %s: %g is outside [-%g, %g]", r + 1, t->names[c],
                                v, lay->factor[c], lay->factor[c]);
                return STATS_ERANGE;
            }
        }
    stats_enc_table_t *e = calloc(1, sizeof *e);
    double *re = malloc(S * sizeof *re), *im = malloc(S * sizeof *im), *mk = malloc(S * sizeof *mk);
    ckks_plaintext_t *pz = NULL, *pm = NULL;
    if (!e || !re || !im || !mk) {
        rc = STATS_ENOMEM;
        goto done;
    }
    e->layout = *lay;
    e->chunks = lay->chunks;
    /* Streaming (sink): two ciphertexts reused for every chunk, in e's slot 0. */
    e->z = calloc(sink ? 1 : e->chunks, sizeof *e->z);
    e->m = calloc(sink ? 1 : e->chunks, sizeof *e->m);
    if (!e->z || !e->m) {
        rc = STATS_ENOMEM;
        goto done;
    }
    if (sink) e->chunks = 1; /* what e holds, for freeing */
    TRY(ckks_plaintext_new(ctx, 0, &pz));
    TRY(ckks_plaintext_new(ctx, 0, &pm));
    for (size_t k = 0; k < lay->chunks; k++) {
        memset(re, 0, S * sizeof *re);
        memset(im, 0, S * sizeof *im);
        memset(mk, 0, S * sizeof *mk);
        for (size_t r = 0; r < R; r++) {
            size_t row = k * R + r;
            if (row >= t->nrows) break;
            for (size_t c = 0; c < t->ncols; c++) {
                double v = stats_value(t, row, c);
                if (isnan(v)) continue;
                double x = v / lay->factor[c];
                const size_t at = stats_slot(lay, r, c);
                re[at] = x;
                im[at] = x * x;
                mk[at] = 1;
            }
        }
        TRY(ckks_encode_complex(ctx, re, im, S, scale, 0, pz));
        TRY(ckks_encode_real(ctx, mk, S, scale, 0, pm));
        size_t slot = sink ? 0 : k;
        if (!e->z[slot]) TRY(ckks_ciphertext_new(ctx, 2, 0, &e->z[slot]));
        if (!e->m[slot]) TRY(ckks_ciphertext_new(ctx, 2, 0, &e->m[slot]));
        if (pk) {
            TRY(ckks_encrypt(pk, pz, e->z[slot]));
            TRY(ckks_encrypt(pk, pm, e->m[slot]));
        } else {
            TRY(ckks_encrypt_symmetric(sk, pz, e->z[slot]));
            TRY(ckks_encrypt_symmetric(sk, pm, e->m[slot]));
        }
        if (sink && (rc = sink(sink_arg, k, e->z[0], e->m[0]))) goto done;
        if (progress) progress(arg, k + 1, lay->chunks);
    }
    if (out) {
        *out = e;
        e = NULL;
    }
done:
    stats_enc_table_free(e);
    ckks_plaintext_free(pz);
    ckks_plaintext_free(pm);
    free(re);
    free(im);
    free(mk);
    return rc;
}

/* ---- server ---- */

static size_t giant_step(size_t B)
{
    size_t g = 1;
    while (g * g < B) g <<= 1;
    return g;
}

/* Pair diagonals d = 1 .. ndiag: row-major pairs column c with c + d (d <
 * B; slots where c + d >= B pair a row with the next one, unused),
 * column-major with c + d mod B for every c (d <= B/2 reaches every pair:
 * d and B - d are the same pairs). */
static size_t ndiag(const stats_layout_t *lay)
{
    return lay->colmajor ? lay->block / 2 : lay->block - 1;
}

/* The slots a diagonal step of one moves: a column (row-major), a column's
 * R rows (column-major). */
static size_t dstep(const stats_layout_t *lay)
{
    return lay->colmajor ? lay->rows_per_ct : 1;
}

/* Baby steps a < g and giant steps b < nb, d = a + g b for d = 0 .. ndiag. */
static size_t diag_g(const stats_layout_t *lay)
{
    return giant_step(ndiag(lay) + 1);
}

static size_t diag_nb(const stats_layout_t *lay)
{
    return (ndiag(lay) + diag_g(lay)) / diag_g(lay);
}

/* Period at which sums are masked and packed: 512 slots (S/512 sums per
 * packed ciphertext: 8 at N=8192, 16 at N=16384, keeping the download near
 * 1.3 MB), at most S/8, never below one row. */
static size_t pack_period(const stats_layout_t *lay)
{
    size_t p = lay->slots / 8 < 512 ? lay->slots / 8 : 512;
    return p < lay->block ? lay->block : p;
}

/* Sums a packed ciphertext holds: one per block of p slots (row-major), or
 * R (column-major: sum u's total of column c at slot c R - u mod S). */
static size_t per_packed(const stats_layout_t *lay)
{
    return lay->colmajor ? lay->rows_per_ct : lay->slots / pack_period(lay);
}

static size_t nsums(const stats_layout_t *lay, stats_job_t job)
{
    return 2 + (job == STATS_JOB_ALL ? NTYPES * ndiag(lay) : 0);
}

/* Deferred key switching (W2): each chunk's baby and giant steps are bare
 * automorphisms (permutations, no key switch) and every product is kept as
 * the two halves ckks_multiply_split gives; finishing merges each sum's
 * halves with up to four key switches (ckks_merge_split). That trades the
 * 3 (g - 1 + nb - 1) hoisted rotations every chunk costs for a fixed
 * number per job, so it is taken once the table has enough chunks. A
 * merge's key switch is weighed at 5/4 of a hoisted rotation (the split
 * products' extra accumulator counts too): with four product types, the
 * real table's rows cut to 12 and 13 chunks ran 5-10 % faster eager, 14
 * and 15 tied, 17 ran 10-20 % faster deferred (Zen 3, one thread), so the
 * switch is at 14 chunks at 16 columns (54 at 256).
 * HESTAT_W2_KEYSWITCH=eager or =deferred overrides the choice (any other
 * value: automatic). The choice depends only on the table and the
 * environment, so every rank of a job makes the same. */
static size_t giant_step(size_t B);
int stats_w2_deferred(const stats_enc_table_t *t, stats_job_t job)
{
    if (!t || job != STATS_JOB_ALL) return 0;
    const char *v = getenv("HESTAT_W2_KEYSWITCH");
    if (v && !strcmp(v, "eager")) return 0;
    if (v && !strcmp(v, "deferred")) return 1;
    const size_t D = ndiag(&t->layout), g = diag_g(&t->layout), nb = diag_nb(&t->layout);
    size_t merge = 0; /* key switches the merges add: 2 with one step, 4 with two */
    for (size_t d = 1; d <= D; d++) merge += NTYPES * ((d % g ? 2 : 0) + (d / g ? 2 : 0));
    return 4 * t->chunks * 3 * (g - 1 + nb - 1) >= 5 * merge;
}

/* Accumulators a job's partial holds: the sums, with the products' two
 * halves apart when deferred. */
static size_t acc_count(const stats_enc_table_t *t, stats_job_t job)
{
    size_t n = nsums(&t->layout, job);
    return stats_w2_deferred(t, job) ? 2 + 2 * (n - 2) : n;
}

size_t stats_result_count(const stats_layout_t *lay, stats_job_t job)
{
    size_t per_ct = per_packed(lay);
    return (nsums(lay, job) + per_ct - 1) / per_ct;
}

size_t stats_galois_steps(const stats_layout_t *lay, int *steps, size_t max)
{
    size_t n = 0, B = lay->block, D = ndiag(lay), g = diag_g(lay), nb = diag_nb(lay), st = dstep(lay), S = lay->slots;
#define ADD(s)                                                \
    do {                                                      \
        int s_ = (int)(s);                                    \
        int dup_ = 0;                                         \
        for (size_t i_ = 0; i_ < n; i_++) dup_ |= steps[i_] == s_; \
        if (!dup_ && n < max) steps[n++] = s_;                \
    } while (0)
    /* Pairs (W2) need the baby and giant steps; a table too wide for them
     * has only the folds of the per-column sums (W1). */
    for (size_t a = 1; a < g && a <= D && B <= STATS_MAX_PAIR_BLOCK; a++) ADD(a * st);
    for (size_t b = 1; b < nb && b * g <= D && B <= STATS_MAX_PAIR_BLOCK; b++) ADD(-(long)(b * g * st));
    /* Column-major: every sum folds over its rows, R/2 .. 1, at the top
     * level, before its mask; the packing rotates by 1, 2, 4, ... too. */
    if (lay->colmajor) {
        for (size_t s = lay->rows_per_ct / 2; s >= 1; s >>= 1) ADD(s);
    } else {
        /* Folds: every level every sum folds through (S/2 .. p), every
         * other one of the packed ciphertexts' levels below p (B, 4B, ...):
         * a level without a key is two rotations by the one below
         * (stats_rotate), made once per packed ciphertext rather than once
         * per sum. */
        const size_t p = pack_period(lay);
        for (size_t s = S / 2; s >= p; s >>= 1) ADD(s);
        for (size_t s = B; s < p; s <<= 2) ADD(s);
    }
#undef ADD
    return n;
}

static size_t fold_primes(size_t top);
size_t stats_galois_step_primes(const stats_layout_t *lay, size_t top, int step)
{
    return lay && !lay->colmajor && step >= (long)lay->block ? fold_primes(top) : top;
}

/* The primes the study's key for this step serves: the step's own, except
 * with the primes a glm fit needs (its packing rotates at every level). */
static size_t step_key_primes(const stats_layout_t *lay, size_t top, int step)
{
    return top >= stats_glm_min_primes() ? top : stats_galois_step_primes(lay, top, step);
}

size_t stats_galois_key_primes(const ckks_context_t *ctx, const stats_layout_t *lay, uint32_t elt)
{
    const size_t top = ckks_context_data_primes(ctx);
    if (!lay) return top;
    int steps[64];
    size_t n = stats_galois_steps(lay, steps, 64);
    for (size_t i = 0; i < n; i++)
        if (ckks_galois_elt_rotate(ctx, steps[i]) == elt) return step_key_primes(lay, top, steps[i]);
    return top;
}

int stats_galois_limit_folds(const ckks_context_t *ctx, const stats_layout_t *lay, ckks_galois_keys_t *gk)
{
    if (!ctx || !lay || !gk) return CKKS_EINVAL;
    const size_t top = ckks_context_data_primes(ctx);
    int steps[64];
    size_t n = stats_galois_steps(lay, steps, 64);
    int rc = CKKS_OK;
    for (size_t i = 0; i < n && rc == CKKS_OK; i++) {
        size_t fp = step_key_primes(lay, top, steps[i]);
        if (fp < top) rc = ckks_galois_keys_limit(gk, ckks_galois_elt_rotate(ctx, steps[i]), fp);
    }
    return rc;
}

void stats_enc_result_free(stats_enc_result_t *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->count; i++) ckks_ciphertext_free(r->cts[i]);
    free(r->cts);
    free(r);
}

typedef struct {
    const ckks_context_t *ctx;
    const ckks_relin_key_t *rk;
    const ckks_galois_keys_t *gk;
    stats_counts_t *n;
} srv_t;

int stats_rotate(const ckks_context_t *ctx, const ckks_galois_keys_t *gk, const ckks_ciphertext_t *a, long step,
                 ckks_ciphertext_t *out, size_t *rotations)
{
    if (!ctx || !gk || !a || !out) return CKKS_EINVAL;
    const long S = (long)ckks_context_slots(ctx);
    long st = ((step % S) + S) % S;
    if (st == 0) return ckks_ciphertext_copy(out, a);
    if (ckks_galois_keys_primes(gk, ckks_galois_elt_rotate(ctx, (int)st)) >= a->nprimes) {
        if (rotations) ++*rotations;
        return ckks_rotate(a, (int)st, gk, out);
    }
    /* The fewest rotations by keyed steps (keys that serve a's level: a
     * limited key does not above its primes): breadth-first over residues mod S. */
    int keys[512];
    size_t nk = 0, all = ckks_galois_keys_steps(gk, keys, sizeof keys / sizeof *keys);
    for (size_t i = 0; i < all; i++)
        if (ckks_galois_keys_primes(gk, ckks_galois_elt_rotate(ctx, keys[i])) >= a->nprimes) keys[nk++] = keys[i];
    int32_t *from = malloc((size_t)S * sizeof *from), *queue = malloc((size_t)S * sizeof *queue);
    int *by = malloc((size_t)S * sizeof *by);
    if (!from || !queue || !by) {
        free(from);
        free(queue);
        free(by);
        return CKKS_ENOMEM;
    }
    for (long i = 0; i < S; i++) from[i] = -1;
    size_t head = 0, tail = 0;
    from[0] = 0;
    queue[tail++] = 0;
    while (head < tail && from[st] < 0) {
        long v = queue[head++];
        for (size_t k = 0; k < nk; k++) {
            long w = (v + keys[k]) % S;
            if (from[w] >= 0) continue;
            from[w] = (int32_t)v;
            by[w] = keys[k];
            queue[tail++] = (int32_t)w;
        }
    }
    int rc = from[st] < 0 ? CKKS_EKEY : CKKS_OK;
    int path[64];
    size_t np = 0;
    for (long v = st; rc == CKKS_OK && v != 0 && np < 64; v = from[v]) path[np++] = by[v];
    if (rc == CKKS_OK && np == 64) rc = CKKS_EKEY;
    free(from);
    free(queue);
    free(by);
    for (size_t i = 0; i < np && rc == CKKS_OK; i++) {
        rc = ckks_rotate(i ? out : a, path[np - 1 - i], gk, out);
        if (rotations) ++*rotations;
    }
    return rc;
}

static int rot(srv_t *s, const ckks_ciphertext_t *a, long step, ckks_ciphertext_t *out)
{
    return stats_rotate(s->ctx, s->gk, a, step, out, &s->n->rotations);
}

/* baby[a] = rot(x, a) for a = 1 .. g-1 and giant[b] = rot(x, -g b) for
 * b = 1 .. nb-1 (in units of st slots: dstep), hoisted (ckks_rotate_hoisted):
 * x is decomposed once.
 * steps and outs have room for g + nb entries. */
static int rot_all(const ckks_galois_keys_t *gk, const ckks_ciphertext_t *x, size_t g, size_t nb, size_t st,
                   ckks_ciphertext_t **baby, ckks_ciphertext_t **giant, int *steps, ckks_ciphertext_t **outs)
{
    size_t k = 0;
    for (size_t a = 1; a < g; a++, k++) {
        steps[k] = (int)(a * st);
        outs[k] = baby[a];
    }
    for (size_t b = 1; b < nb; b++, k++) {
        steps[k] = -(int)(g * b * st);
        outs[k] = giant[b];
    }
    return ckks_rotate_hoisted(x, steps, k, gk, outs);
}

/* acc += x * y (acc may be empty: size 0 marks "unset"). */
static int mul_acc(const ckks_ciphertext_t *x, const ckks_ciphertext_t *y, ckks_ciphertext_t *acc,
                   ckks_ciphertext_t *tmp, int *set)
{
    int rc = ckks_multiply(x, y, *set ? tmp : acc);
    if (rc == CKKS_OK && *set) rc = ckks_add(acc, tmp, acc);
    *set = 1;
    return rc;
}

/* One thread's share of the per-chunk work: its own partial sums (size 0
 * until set) and rotation buffers. Partial sums are added at the end;
 * ciphertext additions are exact modular sums, so the totals are
 * byte-identical for any number of threads and any split of the chunks.
 * A wide layout (B >= WIDE_BLOCK) has one share whose inner threads split
 * each chunk's rotations and products instead: its 5 (B - 1) degree-2 sums
 * (750 MB at B = 256, N = 8192) are then held once, not once per thread;
 * each sum still receives its chunks' products in chunk order. */
#define WIDE_BLOCK 64
typedef struct {
    ckks_ciphertext_t **sums;
    int *sum_set;
    size_t g, nb;                        /* baby and giant step counts of the layout */
    ckks_ciphertext_t **rz, **rm, **rr;  /* baby steps a = 1..g-1 (g each) */
    ckks_ciphertext_t **nz, **nm, **nr;  /* giant steps -g b, b = 1..nb-1 (nb each) */
    ckks_ciphertext_t **sy, **sx;        /* M - R at baby step a, M - Z at giant step b (from 0) */
    int *steps;                          /* 3 (g + nb): rot_all's room, for Z, M and R */
    ckks_ciphertext_t **outs;
    size_t inner;                        /* threads within a chunk (1 unless wide) */
    int deferred;                        /* stats_w2_deferred: bare automorphisms, split products */
    ckks_ciphertext_t **tmp;             /* a product's buffer per inner thread */
    ckks_ciphertext_t *rchunk;
    stats_counts_t n;
} chunk_acc_t;

static void acc_free(chunk_acc_t *a, size_t total)
{
    for (size_t i = 0; a->sums && i < total; i++) ckks_ciphertext_free(a->sums[i]);
    free(a->sums);
    free(a->sum_set);
    ckks_ciphertext_t **bufs[8] = {a->rz, a->rm, a->rr, a->sy, a->nz, a->nm, a->nr, a->sx};
    for (size_t k = 0; k < 8; k++) {
        size_t n = k < 4 ? a->g : a->nb;
        for (size_t i = 0; bufs[k] && i < n; i++) ckks_ciphertext_free(bufs[k][i]);
        free(bufs[k]);
    }
    free(a->steps);
    free(a->outs);
    ckks_ciphertext_free(a->rchunk);
    for (size_t i = 0; a->tmp && i < a->inner; i++) ckks_ciphertext_free(a->tmp[i]);
    free(a->tmp);
    memset(a, 0, sizeof *a);
}

/* total sums (with alloc: each with room; else NULL until set), and with
 * lay (a W2 job's chunks) the rotation buffers of its baby and giant steps
 * and inner threads' product buffers. */
static int acc_new(const ckks_context_t *ctx, const stats_layout_t *lay, size_t inner, size_t total, int alloc,
                   chunk_acc_t *a)
{
    int rc = STATS_OK;
    memset(a, 0, sizeof *a);
    a->inner = inner;
    a->sums = calloc(total, sizeof *a->sums);
    a->sum_set = calloc(total, sizeof *a->sum_set);
    a->tmp = calloc(inner, sizeof *a->tmp);
    if (!a->sums || !a->sum_set || !a->tmp) {
        rc = STATS_ENOMEM;
        goto done;
    }
    for (size_t i = 0; alloc && i < total; i++) TRY(ckks_ciphertext_new(ctx, 3, 0, &a->sums[i]));
    for (size_t i = 0; i < inner; i++) TRY(ckks_ciphertext_new(ctx, 3, 0, &a->tmp[i]));
    TRY(ckks_ciphertext_new(ctx, 2, 0, &a->rchunk));
    if (lay) {
        a->g = diag_g(lay);
        a->nb = diag_nb(lay);
        ckks_ciphertext_t ***bufs[8] = {&a->rz, &a->rm, &a->rr, &a->sy, &a->nz, &a->nm, &a->nr, &a->sx};
        for (size_t k = 0; k < 8; k++)
            if (!(*bufs[k] = calloc(k < 4 ? a->g : a->nb, sizeof **bufs[k]))) rc = STATS_ENOMEM;
        a->steps = calloc(3 * (a->g + a->nb), sizeof *a->steps);
        a->outs = calloc(3 * (a->g + a->nb), sizeof *a->outs);
        if (rc || !a->steps || !a->outs) {
            rc = STATS_ENOMEM;
            goto done;
        }
        /* Slot 0 of the rotations is unused (step 0 is the ciphertext
         * itself); the sums sy and sx have every step. */
        for (size_t k = 0; k < 8; k++)
            for (size_t i = k % 4 == 3 ? 0 : 1; i < (k < 4 ? a->g : a->nb); i++)
                TRY(ckks_ciphertext_new(ctx, 2, 0, &(*bufs[k])[i]));
    }
done:
    if (rc) acc_free(a, total);
    return rc;
}

/* acc += x (acc unset: acc = x, made first if NULL). */
static int add_acc(const ckks_ciphertext_t *x, ckks_ciphertext_t **acc, int *set)
{
    int rc = CKKS_OK;
    if (!*acc) rc = ckks_ciphertext_new(x->ctx, 3, 0, acc);
    if (!rc) rc = *set ? ckks_add(*acc, x, *acc) : ckks_ciphertext_copy(*acc, x);
    if (!rc) *set = 1;
    return rc;
}

/* Chunk k of t as Z and M (read from the table's file into *lz and *lm,
 * freed first, when it is not in memory), added into the column sums
 * (sums[0] = sum Z, sums[1] = sum M); with R, also R = Z + conj(Z) = 2x. */
static int chunk_take(const stats_enc_table_t *t, size_t k, const ckks_galois_keys_t *gk, chunk_acc_t *a,
                      ckks_ciphertext_t **lz, ckks_ciphertext_t **lm, const ckks_ciphertext_t **Z,
                      const ckks_ciphertext_t **M, ckks_ciphertext_t *R)
{
    int rc = STATS_OK;
    ckks_ciphertext_free(*lz);
    ckks_ciphertext_free(*lm);
    *lz = *lm = NULL;
    *Z = t->z[k];
    *M = t->m[k];
    if (!*Z || !*M) {
        if (!t->src) {
            stats_set_error("table: chunk %zu is not loaded", k + 1);
            return STATS_EINVAL;
        }
        if ((rc = stats_chunk_read(t, k, lz, lm))) return rc;
        *Z = *lz;
        *M = *lm;
    }
    TRY(add_acc(*Z, &a->sums[0], &a->sum_set[0]));
    TRY(add_acc(*M, &a->sums[1], &a->sum_set[1]));
    if (R) {
        a->n.conjugations++;
        TRY(ckks_conjugate(*Z, gk, R));
        TRY(ckks_add(R, *Z, R));
    }
done:
    return rc;
}

/* Chunks from, from + step, ... (below end) of t into a's partial sums. */
static int acc_chunks(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job,
                      const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk, size_t from, size_t end, size_t step,
                      chunk_acc_t *a)
{
    srv_t s = {ctx, rk, gk, &a->n};
    const stats_layout_t *lay = &t->layout;
    const size_t D = ndiag(lay), g = diag_g(lay), nb = diag_nb(lay), st = dstep(lay);
    int rc = STATS_OK;
    ckks_ciphertext_t *lz = NULL, *lm = NULL; /* a chunk read from the table's file */
    for (size_t k = from; k < end; k += step) {
        const ckks_ciphertext_t *Z, *M;
        if (k + step < end) stats_chunk_prefetch(t, k + step);
        if ((rc = chunk_take(t, k, gk, a, &lz, &lm, &Z, &M, job == STATS_JOB_ALL ? a->rchunk : NULL))) goto done;
        if (job != STATS_JOB_ALL) continue;
        /* Baby steps a = 1 .. g-1 and giant steps -g b of each of Z, M
         * and R: hoisted, one decomposition per ciphertext. */
        const ckks_ciphertext_t *src[3] = {Z, M, a->rchunk};
        ckks_ciphertext_t **baby[3] = {a->rz, a->rm, a->rr}, **giant[3] = {a->nz, a->nm, a->nr};
        int qrc[3] = {0};
#pragma omp parallel for num_threads((int)a->inner) schedule(static, 1) if (a->inner > 1)
        for (int q = 0; q < 3; q++)
            qrc[q] = rot_all(gk, src[q], g, nb, st, baby[q], giant[q], a->steps + q * (g + nb), a->outs + q * (g + nb));
        for (int q = 0; q < 3; q++) TRY(qrc[q]);
        s.n->rotations += 3 * (g - 1 + nb - 1);
        for (size_t x = 0; x < g; x++) TRY(ckks_sub(x ? a->rm[x] : M, x ? a->rr[x] : a->rchunk, a->sy[x]));
        for (size_t b = 0; b < nb; b++) TRY(ckks_sub(b ? a->nm[b] : M, b ? a->nz[b] : Z, a->sx[b]));
        /* Products for every diagonal d = x + g b, each into its own sums. */
        int prc = CKKS_OK;
#pragma omp parallel for num_threads((int)a->inner) schedule(dynamic, 1) if (a->inner > 1)
        for (size_t i = 0; i < g * nb; i++) {
            size_t b = i / g, x = i % g, d = x + g * b;
            if (d == 0 || d > D) continue;
            size_t tid = 0;
#ifdef _OPENMP
            tid = (size_t)omp_get_thread_num();
#endif
            const ckks_ciphertext_t *Zb = b ? a->nz[b] : Z, *Mb = b ? a->nm[b] : M, *Rb = b ? a->nr[b] : a->rchunk;
            const ckks_ciphertext_t *Za = x ? a->rz[x] : Z, *Ma = x ? a->rm[x] : M;
            size_t base = 2 + NTYPES * (d - 1);
            ckks_ciphertext_t **sums = a->sums, *tmp = a->tmp[tid];
            int *set = a->sum_set;
            int r = mul_acc(Zb, a->sy[x], sums[base + 0], tmp, &set[base + 0]); /* Q1: sy = M - R */
            if (!r) r = mul_acc(Rb, Za, sums[base + 1], tmp, &set[base + 1]);  /* Q2 */
            if (!r) r = mul_acc(a->sx[b], Ma, sums[base + 2], tmp, &set[base + 2]); /* Q3: sx = M - Z */
            if (!r) r = mul_acc(Mb, Za, sums[base + 3], tmp, &set[base + 3]);  /* Q4 */
            if (r) {
#pragma omp critical(stats_products)
                if (prc == CKKS_OK) prc = r;
            }
        }
        TRY(prc);
        s.n->multiplications += NTYPES * D;
    }
done:
    ckks_ciphertext_free(lz);
    ckks_ciphertext_free(lm);
    return rc;
}

/* Deferred key switching (stats_w2_deferred): chunks in batches of K, each
 * chunk's baby and giant steps bare automorphisms, applied as the products
 * read their operands: every product of the batch is added into its two
 * halves in one pass over the accumulators (ckks_multiply_split_many_galois,
 * which permutes a tile of each operand at a time and never writes an
 * automorphism whole; with inner threads, each takes a range of the
 * products). The baby steps are of Z, M and W = M - R, the giant steps of
 * Z, M, R and V = M - Z (the operands of Q1 .. Q4). A chunk's operands are
 * its five ciphertexts (Z, M, R, W, V: 1.9 MB at N = 8192, three primes);
 * K is what 16 MB of them allow, 1 to 8 (8 at 16 columns and N = 8192:
 * with 128-coefficient tiles, 11 % faster than 4 with 256-coefficient ones
 * on 200,000 rows, Zen 3). The sums do not depend on K (modular
 * additions). Each batch reads and writes every accumulator once (47 MB of
 * halves at 16 columns), and each product's K terms are summed before one
 * reduction. */
enum { KMAX = 8 };
static int acc_chunks_deferred(const ckks_context_t *ctx, const stats_enc_table_t *t, const ckks_galois_keys_t *gk,
                               size_t from, size_t end, size_t step, chunk_acc_t *a)
{
    const stats_layout_t *lay = &t->layout;
    const size_t D = ndiag(lay), g = diag_g(lay), nb = diag_nb(lay), st = dstep(lay), nprod = NTYPES * D;
    const size_t np = ckks_context_data_primes(ctx), n = ckks_context_n(ctx);
    const size_t per_chunk = 5 * 2 * np * n * 8;
    size_t K = ((size_t)16 << 20) / per_chunk;
    K = K < 1 ? 1 : K > KMAX ? KMAX : K;
    int rc = STATS_OK;
    /* Per batch slot k: the loaded chunk (when read from the file), R, W, V. */
    ckks_ciphertext_t **lz = calloc(K, sizeof *lz), **lm = calloc(K, sizeof *lm), **rr = calloc(3 * K, sizeof *rr);
    const ckks_ciphertext_t **xs = calloc(nprod * K, sizeof *xs), **ys = calloc(nprod * K, sizeof *ys);
    uint32_t *exs = calloc(nprod * K, sizeof *exs), *eys = calloc(nprod * K, sizeof *eys);
    uint32_t *ebaby = calloc(g, sizeof *ebaby), *egiant = calloc(nb, sizeof *egiant);
    ckks_ciphertext_t **h0 = calloc(nprod, sizeof *h0), **h1 = calloc(nprod, sizeof *h1);
    int *accu = calloc(nprod, sizeof *accu);
    if (!lz || !lm || !rr || !xs || !ys || !exs || !eys || !ebaby || !egiant || !h0 || !h1 || !accu) {
        rc = STATS_ENOMEM;
        goto done;
    }
    for (size_t k = 0; k < 3 * K; k++) TRY(ckks_ciphertext_new(ctx, 2, 0, &rr[k]));
    for (size_t x = 0; x < g; x++) ebaby[x] = x ? ckks_galois_elt_rotate(ctx, (int)(x * st)) : 1;
    for (size_t b = 0; b < nb; b++) egiant[b] = b ? ckks_galois_elt_rotate(ctx, -(int)(g * b * st)) : 1;
    for (size_t j = 0; j < nprod; j++) {
        h0[j] = a->sums[2 + 2 * j];
        h1[j] = a->sums[2 + 2 * j + 1];
    }
    for (size_t k0 = from; k0 < end; k0 += K * step) {
        size_t ks = 0;
        const ckks_ciphertext_t *Zs[KMAX], *Ms[KMAX];
        /* The next batch's chunks are read from the disk meanwhile. */
        for (size_t c = k0 + K * step, i = 0; c < end && i < K; c += step, i++) stats_chunk_prefetch(t, c);
        for (size_t c = k0; c < end && ks < K; c += step, ks++) {
            ckks_ciphertext_t *R = rr[3 * ks], *W = rr[3 * ks + 1], *V = rr[3 * ks + 2];
            if ((rc = chunk_take(t, c, gk, a, &lz[ks], &lm[ks], &Zs[ks], &Ms[ks], R))) goto done;
            TRY(ckks_sub(Ms[ks], R, W));
            TRY(ckks_sub(Ms[ks], Zs[ks], V));
        }
        /* Operands: X_b = sigma_{-g b}(X) (b = 0: X itself), Y_a = sigma_a(Y). */
        for (size_t d = 1; d <= D; d++) {
            size_t x = d % g, b = d / g;
            for (size_t k = 0; k < ks; k++) {
                /* Q1 = Z (M - R)', Q2 = R Z', Q3 = (M - Z) M', Q4 = M Z' */
                const ckks_ciphertext_t *X[NTYPES] = {Zs[k], rr[3 * k], rr[3 * k + 2], Ms[k]};
                const ckks_ciphertext_t *Y[NTYPES] = {rr[3 * k + 1], Zs[k], Ms[k], Zs[k]};
                for (size_t ty = 0; ty < NTYPES; ty++) {
                    size_t j = (NTYPES * (d - 1) + ty) * ks + k;
                    xs[j] = X[ty];
                    exs[j] = egiant[b];
                    ys[j] = Y[ty];
                    eys[j] = ebaby[x];
                }
            }
        }
        for (size_t j = 0; j < nprod; j++) accu[j] = a->sum_set[2 + 2 * j];
        const size_t nt = a->inner < nprod ? a->inner : nprod;
        int prc[64] = {0};
#pragma omp parallel for num_threads((int)nt) schedule(static, 1) if (nt > 1)
        for (size_t p = 0; p < nt; p++) {
            size_t lo = nprod * p / nt, hi = nprod * (p + 1) / nt;
            prc[p] = ckks_multiply_split_many_galois(hi - lo, ks, xs + lo * ks, exs + lo * ks, ys + lo * ks,
                                                     eys + lo * ks, h0 + lo, h1 + lo, accu + lo);
        }
        for (size_t p = 0; p < nt; p++) TRY(prc[p]);
        for (size_t j = 0; j < nprod; j++) a->sum_set[2 + 2 * j] = a->sum_set[2 + 2 * j + 1] = 1;
        a->n.multiplications += nprod * ks;
    }
done:
    for (size_t k = 0; k < K && lz; k++) {
        ckks_ciphertext_free(lz[k]);
        ckks_ciphertext_free(lm[k]);
    }
    for (size_t k = 0; rr && k < 3 * K; k++) ckks_ciphertext_free(rr[k]);
    free(lz);
    free(lm);
    free(rr);
    free(xs);
    free(ys);
    free(exs);
    free(eys);
    free(ebaby);
    free(egiant);
    free(h0);
    free(h1);
    free(accu);
    return rc;
}

/* Threads across chunks: HESTAT_THREADS, else OMP_NUM_THREADS, else every
 * processor; never more than there are chunks. */
size_t stats_threads(size_t chunks)
{
    const char *v = getenv("HESTAT_THREADS");
    if (!v || !*v) v = getenv("OMP_NUM_THREADS");
    long n = 0;
    if (v && *v) {
        char *end;
        n = strtol(v, &end, 10);
        if (*end || n < 1) n = 1;
    } else {
#ifdef _OPENMP
        n = omp_get_num_procs();
#else
        n = 1;
#endif
    }
    if (n > 64) n = 64;
    return (size_t)n < chunks ? (size_t)n : (chunks ? chunks : 1);
}

/* Sum i before packing: a product sum relinearized. It stays where its
 * giant step put it, rotated by -g b (sum_shift): the packing folds it to
 * period B, where that rotation is a cyclic shift of its B totals, which
 * the client undoes (stats_decrypt) instead of a key switch here. */
static int relin_sum(srv_t *s, ckks_ciphertext_t *x, size_t i)
{
    if (i < 2) return CKKS_OK;
    s->n->relinearizations++;
    return ckks_relinearize(x, s->rk, x);
}

/* The shift of sum i's totals within its block of B: column c of the
 * diagonal's sums sits at (c - g b) mod B, b its giant step (0 for the
 * plain sums 0 and 1). */
static size_t sum_shift(const stats_layout_t *lay, size_t i)
{
    if (i < 2) return 0;
    size_t g = diag_g(lay), d = (i - 2) / NTYPES + 1;
    return g * (d / g);
}

/* A thread's room for packing: the masks of the L = S/p blocks at two
 * ratios (target / scale: the product sums share one scale, the two plain
 * sums another), and L + 1 ciphertexts (the last a scratch). */
typedef struct {
    size_t L, next;
    size_t cols_R, cols_B; /* column-major: one mask, 1 at slots c R (c < B); else 0 */
    double ratio[2]; /* of the masks held; 0: none */
    ckks_plaintext_t **mask[2];
    ckks_ciphertext_t **y;
    double *mv;
} pack_room_t;

static void pack_room_free(pack_room_t *w)
{
    for (size_t b = 0; b <= w->L; b++) {
        for (int k = 0; k < 2; k++)
            if (w->mask[k] && b < w->L) ckks_plaintext_free(w->mask[k][b]);
        if (w->y) ckks_ciphertext_free(w->y[b]);
    }
    free(w->mask[0]);
    free(w->mask[1]);
    free(w->y);
    free(w->mv);
    memset(w, 0, sizeof *w);
}

static int pack_room_new(const ckks_context_t *ctx, size_t L, size_t S, size_t top, pack_room_t *w)
{
    memset(w, 0, sizeof *w);
    w->L = L;
    w->mask[0] = calloc(L, sizeof *w->mask[0]);
    w->mask[1] = calloc(L, sizeof *w->mask[1]);
    w->y = calloc(L + 1, sizeof *w->y);
    w->mv = calloc(S, sizeof *w->mv);
    int rc = w->mask[0] && w->mask[1] && w->y && w->mv ? CKKS_OK : CKKS_ENOMEM;
    for (size_t b = 0; b <= L && !rc; b++) {
        for (int k = 0; k < 2 && b < L && !rc; k++) rc = ckks_plaintext_new(ctx, top, &w->mask[k][b]);
        if (!rc) rc = ckks_ciphertext_new(ctx, 3, 0, &w->y[b]);
    }
    if (rc) pack_room_free(w);
    return rc;
}

/* x * (1 on block b, 0 elsewhere, at ratio target / x->scale): scale target. */
static int mask_block(const ckks_context_t *ctx, pack_room_t *w, const ckks_ciphertext_t *x, size_t b, size_t S,
                      size_t p, double target, size_t top, ckks_ciphertext_t *out)
{
    int rc;
    const double ratio = target / x->scale;
    int k = w->ratio[0] == ratio ? 0 : w->ratio[1] == ratio ? 1 : -1;
    if (k < 0) {
        k = (int)w->next;
        w->next ^= 1;
        w->ratio[k] = 0;
        for (size_t c = 0; c < w->L; c++) {
            memset(w->mv, 0, S * sizeof *w->mv);
            if (w->cols_R)
                for (size_t q = 0; q < w->cols_B; q++) w->mv[q * w->cols_R] = 1;
            else
                for (size_t q = c * p; q < (c + 1) * p; q++) w->mv[q] = 1;
            if ((rc = ckks_encode_real(ctx, w->mv, S, ratio, top, w->mask[k][c]))) return rc;
        }
        w->ratio[k] = ratio;
    }
    if ((rc = ckks_multiply_plain(x, w->mask[k][b], out))) return rc;
    out->scale = target; /* equal up to the rounding of (target/scale)*scale */
    return CKKS_OK;
}

/* x += rot(x, st) for st = hi, hi/2, ..., lo (t: a scratch). */
static int fold(srv_t *s, ckks_ciphertext_t *x, size_t hi, size_t lo, ckks_ciphertext_t *t)
{
    int rc;
    for (size_t st = hi; st >= lo && st; st >>= 1) {
        if ((rc = rot(s, x, (long)st, t))) return rc;
        if ((rc = ckks_add(x, t, x))) return rc;
    }
    return CKKS_OK;
}

/* The primes the packed ciphertexts are folded at: two (one above the
 * last), or the top when there are fewer. Masked, a packed ciphertext has
 * the scale target = final q_1 ... q_(top-1) (finish_target); rescaled to
 * two primes it keeps final q_1 (about 2^75), so a key switch's absolute
 * noise (about 2^15 with a 60-bit special prime) stays 2^-60 of a unit,
 * as negligible as at the top, and each switch costs two digits over three
 * primes instead of top digits over top + 1. The study's fold keys are
 * made for this level only (stats_study_create: limited keys, 53 % of the
 * bytes at primes of 60, 40, 40, 60 bits). */
static size_t fold_primes(size_t top)
{
    return top < 2 ? top : 2;
}

/* Packs m <= L placed sums x[0..m) into x[0]: block u (slots u p .. u p + p
 * - 1) of the result holds the sum of x[u]'s L blocks, at scale target
 * rescaled to fold_primes, and the result is folded down to period B. A
 * tree over all of them (L - 1 rotations in all): y_d = sum over u of x[u]
 * masked to block u + d (mod L), so that the sum over d of rot(y_d, d p)
 * has x[u]'s blocks all in block u; each y_d is rescaled to fold_primes,
 * then the rotations by d p are taken a bit at a time (by S/2, S/4, ...,
 * p: the folds' own keys). The folds below p of levels without a key are
 * two rotations by the level below (stats_rotate; stats_galois_steps).
 * (Folding each sum alone, log2 L rotations before its mask, would rotate
 * at the top level, which the fold keys do not serve.) */
static int pack_sums(srv_t *s, ckks_ciphertext_t **x, size_t m, size_t S, size_t p, size_t B, double target,
                     size_t top, pack_room_t *w)
{
    int rc;
    const size_t L = S / p, fp = fold_primes(top);
    ckks_ciphertext_t *out = x[0], *t = w->y[L]; /* scratch */
    for (size_t d = 0; d < L; d++) {
        for (size_t u = 0; u < m; u++) {
            if ((rc = mask_block(s->ctx, w, x[u], (u + d) % L, S, p, target, top, u ? t : w->y[d]))) return rc;
            if (u && (rc = ckks_add(w->y[d], t, w->y[d]))) return rc;
        }
        while (w->y[d]->nprimes > fp)
            if ((rc = ckks_rescale(w->y[d], w->y[d]))) return rc;
    }
    for (size_t half = L / 2; half >= 1; half >>= 1)
        for (size_t d = 0; d < half; d++) {
            if ((rc = rot(s, w->y[d + half], (long)(p * half), w->y[d + half]))) return rc;
            if ((rc = ckks_add(w->y[d], w->y[d + half], w->y[d]))) return rc;
        }
    if ((rc = ckks_ciphertext_copy(out, w->y[0]))) return rc;
    return fold(s, out, p / 2, B, t);
}

/* Column-major, one sum x: folded over its rows at the top level (x +=
 * rot(x, s), s = R/2 .. 1: slot c R then holds column c's total), masked to
 * the slots c R at scale target and rescaled to fold_primes. Rotations by
 * less than R cross into the next column's rows, so no sum can share its
 * folds with another before the mask (log2 R rotations a sum, where the
 * row-major packing shares its folds); so each sum is finished on its own,
 * on any thread or rank (stats_partial_finish_share), and only the packing
 * (pack_sums_colmajor) needs them all in one place. */
static int finish_sum_colmajor(srv_t *s, ckks_ciphertext_t *x, const stats_layout_t *lay, double target,
                               size_t top, pack_room_t *w)
{
    int rc;
    if ((rc = fold(s, x, lay->rows_per_ct / 2, 1, w->y[w->L]))) return rc;
    if ((rc = mask_block(s->ctx, w, x, 0, lay->slots, 0, target, top, x))) return rc;
    while (x->nprimes > fold_primes(top))
        if ((rc = ckks_rescale(x, x))) return rc;
    return CKKS_OK;
}

/* Column-major: packs m <= R finished sums x[0..m) (finish_sum_colmajor)
 * into x[0]: a tree (m - 1 rotations by 1, 2, 4, ...) moves sum u's totals
 * to the slots c R - u. t: a scratch. */
static int pack_sums_colmajor(srv_t *s, ckks_ciphertext_t **x, size_t m, ckks_ciphertext_t *t)
{
    int rc;
    for (size_t h = 1; h < m; h <<= 1)
        for (size_t a = 0; a + h < m; a += 2 * h) {
            if ((rc = rot(s, x[a + h], (long)h, t))) return rc;
            if ((rc = ckks_add(x[a], t, x[a]))) return rc;
        }
    return CKKS_OK;
}

/* A partial's slots: sum i's accumulator is slot i, or with deferred key
 * switching (i >= 2) the two halves 2 + 2 (i - 2) and the one after it.
 * Once finished (stats_partial_finish_share) a partial holds only the
 * packed ciphertexts of its share, each in the first slot of its first sum,
 * or with `each` (column-major) every sum of its share finished on its own
 * (finish_sum_colmajor), in its first slot; every other slot is unset. */
struct stats_partial {
    stats_job_t job;
    size_t total, nprimes; /* slots, and the primes of a fresh table ciphertext */
    size_t per_ct;         /* sums a packed ciphertext holds: sum i goes to packed ciphertext i / per_ct */
    int deferred, finished;
    int each; /* column-major: sums are shared and finished one by one, packed only in stats_partial_finish */
    chunk_acc_t acc; /* acc.sums[j] is unset (possibly NULL) while acc.sum_set[j] is 0 */
};

static size_t slot_sum(const stats_partial_t *p, size_t j)
{
    return p->deferred && j >= 2 ? 2 + (j - 2) / 2 : j;
}

static size_t sum_slot(const stats_partial_t *p, size_t i)
{
    return p->deferred && i >= 2 ? 2 + 2 * (i - 2) : i;
}

/* The share (of nshares) that finishes sum i: whole packed ciphertexts, as
 * the row-major sums of one are packed together; column-major sums one by
 * one (each). */
static size_t sum_share(const stats_partial_t *p, size_t i, size_t nshares)
{
    return (p->each ? i : i / p->per_ct) % nshares;
}

/* Whether slot j holds a finished sum or packed ciphertext of its own (as
 * opposed to a deferred sum's second half, or a packed sum's other sums). */
static int finished_slot(const stats_partial_t *p, size_t j)
{
    const size_t i = slot_sum(p, j);
    return sum_slot(p, i) == j && (p->each || i % p->per_ct == 0);
}

void stats_partial_free(stats_partial_t *p)
{
    if (!p) return;
    acc_free(&p->acc, p->total);
    free(p);
}

static int check_compute_args(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job,
                              const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk)
{
    if (!ctx || !t || !gk || (job != STATS_JOB_MEANS && job != STATS_JOB_ALL)) return STATS_EINVAL;
    if (job == STATS_JOB_ALL && !rk) return STATS_EINVAL;
    if (!t->chunks || !t->z) return STATS_EINVAL;
    if (job == STATS_JOB_ALL && t->layout.block > STATS_MAX_PAIR_BLOCK) {
        stats_set_error("pairwise statistics (--stats all) need at most %d columns; this table has %zu: "
                        "ask for per-column statistics (--stats means)",
                        STATS_MAX_PAIR_BLOCK, t->layout.ncols);
        return STATS_EINVAL;
    }
    return STATS_OK;
}

int stats_compute_partial(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job,
                          const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk, size_t part, size_t nparts,
                          stats_partial_t **out)
{
    return stats_compute_partial_range(ctx, t, job, rk, gk, 0, t ? t->chunks : 0, part, nparts, out);
}

int stats_compute_partial_range(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job,
                                const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk, size_t first, size_t end,
                                size_t part, size_t nparts, stats_partial_t **out)
{
    if (!out || nparts == 0 || part >= nparts) return STATS_EINVAL;
    *out = NULL;
    int rc = check_compute_args(ctx, t, job, rk, gk);
    if (rc) return rc;
    if (first >= end || end > t->chunks) return STATS_EINVAL;
    const size_t total = acc_count(t, job);
    /* This part's chunks: first + part, first + part + nparts, ...; thread
     * i of nt takes every nt-th of them. */
    const size_t from = first + part, mine = end > from ? (end - from + nparts - 1) / nparts : 0;
    const int wide = job == STATS_JOB_ALL && t->layout.block >= WIDE_BLOCK;
    const size_t nt = wide ? 1 : stats_threads(mine), inner = wide ? stats_threads(SIZE_MAX) : 1;
    chunk_acc_t *acc = calloc(nt, sizeof *acc);
    stats_partial_t *res = calloc(1, sizeof *res);
    if (!acc || !res) {
        rc = STATS_ENOMEM;
        goto done;
    }
    const int deferred = stats_w2_deferred(t, job);
    for (size_t i = 0; i < nt && rc == STATS_OK; i++) {
        rc = acc_new(ctx, job == STATS_JOB_ALL && !deferred ? &t->layout : NULL, inner, total, 1, &acc[i]);
        acc[i].deferred = deferred;
    }
    if (rc) goto done;
    /* Each thread's limb loops run serially inside (OpenMP does not nest by default). */
    int rcs[64] = {0};
#pragma omp parallel for num_threads((int)nt) schedule(static, 1) if (nt > 1)
    for (size_t i = 0; i < nt; i++)
        rcs[i] = acc[i].deferred ? acc_chunks_deferred(ctx, t, gk, from + nparts * i, end, nparts * nt, &acc[i])
                                 : acc_chunks(ctx, t, job, rk, gk, from + nparts * i, end, nparts * nt, &acc[i]);
    for (size_t i = 0; i < nt; i++)
        if (rcs[i] && !rc) rc = rcs[i];
    if (rc) goto done;
    /* Thread partial sums into thread 0's, in thread order. */
    for (size_t i = 1; i < nt; i++) {
        for (size_t j = 0; j < total; j++)
            if (acc[i].sum_set[j]) TRY(add_acc(acc[i].sums[j], &acc[0].sums[j], &acc[0].sum_set[j]));
        stats_counts_add(&acc[0].n, &acc[i].n);
    }
    res->job = job;
    res->total = total;
    res->nprimes = ckks_context_data_primes(ctx);
    res->deferred = deferred;
    res->per_ct = per_packed(&t->layout);
    res->each = t->layout.colmajor;
    res->acc = acc[0];
    memset(&acc[0], 0, sizeof acc[0]);
    *out = res;
    res = NULL;
done:
    for (size_t i = 0; acc && i < nt; i++) acc_free(&acc[i], total);
    free(acc);
    free(res);
    return rc;
}

int stats_partial_add(stats_partial_t *acc, const stats_partial_t *other)
{
    if (!acc || !other) return STATS_EINVAL;
    if (acc->job != other->job || acc->total != other->total || acc->nprimes != other->nprimes ||
        acc->per_ct != other->per_ct || acc->deferred != other->deferred || acc->finished != other->finished ||
        acc->each != other->each || !acc->acc.sums ||
        !other->acc.sums) /* a spent partial is neither */
        return STATS_ESCHEMA;
    int rc = STATS_OK;
    /* Finished sums and packed ciphertexts are whole: two shares never hold the same one. */
    for (size_t j = 0; j < acc->total; j++)
        if (acc->finished && other->acc.sum_set[j] && acc->acc.sum_set[j]) {
            if (acc->each)
                stats_set_error("partial sums: finished sum %zu twice", slot_sum(acc, j));
            else
                stats_set_error("partial sums: finished packed ciphertext %zu twice", slot_sum(acc, j) / acc->per_ct);
            return STATS_ESCHEMA;
        }
    for (size_t j = 0; j < acc->total; j++)
        if (other->acc.sum_set[j]) TRY(add_acc(other->acc.sums[j], &acc->acc.sums[j], &acc->acc.sum_set[j]));
    stats_counts_add(&acc->acc.n, &other->acc.n);
done:
    return rc;
}

/* Wire form of a partial (between the processes of one job): "HSTPART3",
 * u32 job, u32 flags (1: finished), u64 slots, u64 primes, u64 counts x4
 * (rotations, multiplications, conjugations, relinearizations), then per
 * slot: u64 set, and when set u64 size, f64 scale and size x primes x N words
 * (a finished partial's ciphertexts: fold_primes(primes) primes).
 * share/nshares: only the slots of the sums share finishes (sum_share), and
 * no counts. A finished partial holds packed ciphertexts, each in the first
 * slot of its first sum, or (column-major) finished sums, each in its first
 * slot (finished_slot). */
static int partial_write(const stats_partial_t *p, size_t share, size_t nshares, int counts, void **buf,
                         size_t *len)
{
    if (!p || !buf || !len || !p->acc.sums || !nshares || share >= nshares) return STATS_EINVAL;
    size_t total = 64;
    for (size_t j = 0; j < p->total; j++) {
        total += 8;
        if (p->acc.sum_set[j] && sum_share(p, slot_sum(p, j), nshares) == share) {
            const ckks_ciphertext_t *x = p->acc.sums[j];
            total += 16 + x->size * x->nprimes * ckks_context_n(x->ctx) * 8;
        }
    }
    uint8_t *b = malloc(total), *q = b;
    if (!b) return STATS_ENOMEM;
    uint32_t head[2] = {(uint32_t)p->job, p->finished ? 1u : 0u};
    uint64_t v[6] = {p->total, p->nprimes, 0, 0, 0, 0};
    if (counts) {
        v[2] = p->acc.n.rotations;
        v[3] = p->acc.n.multiplications;
        v[4] = p->acc.n.conjugations;
        v[5] = p->acc.n.relinearizations;
    }
    memcpy(q, "HSTPART3", 8);
    memcpy(q + 8, head, 8);
    memcpy(q + 16, v, 48);
    q += 64;
    for (size_t j = 0; j < p->total; j++) {
        uint64_t set = p->acc.sum_set[j] && sum_share(p, slot_sum(p, j), nshares) == share;
        memcpy(q, &set, 8);
        q += 8;
        if (!set) continue;
        const ckks_ciphertext_t *x = p->acc.sums[j];
        uint64_t size = x->size;
        size_t w = x->size * x->nprimes * ckks_context_n(x->ctx);
        memcpy(q, &size, 8);
        memcpy(q + 8, &x->scale, 8);
        memcpy(q + 16, x->data, w * 8);
        q += 16 + w * 8;
    }
    *buf = b;
    *len = total;
    return STATS_OK;
}

int stats_partial_write(const stats_partial_t *p, void **buf, size_t *len)
{
    return partial_write(p, 0, 1, 1, buf, len);
}

int stats_partial_write_share(const stats_partial_t *p, size_t share, size_t nshares, void **buf, size_t *len)
{
    return partial_write(p, share, nshares, 0, buf, len);
}

/* Whether x can be a slot of p: degree 2 or 3 (finished: 2) at p's primes
 * (finished: fold_primes of them), a finite positive scale, and every word
 * below its prime. */
static int slot_valid(const stats_partial_t *p, const ckks_ciphertext_t *x)
{
    const ckks_context_t *ctx = x->ctx;
    const size_t n = ckks_context_n(ctx), cnp = p->finished ? fold_primes(p->nprimes) : p->nprimes;
    if (x->size < 2 || x->size > (p->finished ? 2u : 3u) || x->nprimes != cnp || !isfinite(x->scale) ||
        x->scale <= 0)
        return 0;
    for (size_t c = 0; c < x->size * cnp; c++) { /* every word below its prime */
        const uint64_t q = ckks_context_prime(ctx, c % cnp), *d = x->data + c * n;
        uint64_t over = 0;
        for (size_t i = 0; i < n; i++) over |= d[i] >= q;
        if (over) return 0;
    }
    return 1;
}

size_t stats_partial_slots(const stats_partial_t *p)
{
    return p && p->acc.sums && !p->finished ? p->total : 0;
}

const ckks_ciphertext_t *stats_partial_share_slot(const stats_partial_t *p, size_t j, size_t share, size_t nshares)
{
    if (!stats_partial_slots(p) || j >= p->total || !nshares || share >= nshares) return NULL;
    return p->acc.sum_set[j] && sum_share(p, slot_sum(p, j), nshares) == share ? p->acc.sums[j] : NULL;
}

int stats_partial_add_slot(stats_partial_t *p, size_t j, size_t share, size_t nshares, const ckks_ciphertext_t *x)
{
    if (!stats_partial_slots(p) || !x || !x->ctx || j >= p->total || !nshares || share >= nshares)
        return STATS_EINVAL;
    if (sum_share(p, slot_sum(p, j), nshares) != share || !slot_valid(p, x)) {
        stats_set_error("partial sums: slot %zu malformed or not of share %zu", j, share);
        return STATS_ESCHEMA;
    }
    int rc = STATS_OK;
    TRY(add_acc(x, &p->acc.sums[j], &p->acc.sum_set[j]));
done:
    return rc;
}

int stats_partial_read(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job, const void *buf,
                       size_t len, stats_partial_t **out)
{
    if (!ctx || !t || !buf || !out) return STATS_EINVAL;
    *out = NULL;
    if (!t->chunks) return STATS_EINVAL;
    const uint8_t *b = buf;
    const size_t n = ckks_context_n(ctx), np = ckks_context_data_primes(ctx), total = acc_count(t, job);
    uint32_t head[2];
    uint64_t v[6];
    if (len < 64 || memcmp(b, "HSTPART3", 8)) goto bad;
    memcpy(head, b + 8, 8);
    memcpy(v, b + 16, 48);
    if (head[0] != (uint32_t)job || head[1] > 1 || v[0] != total || v[1] != np) goto bad;
    stats_partial_t *p = calloc(1, sizeof *p);
    if (!p) return STATS_ENOMEM;
    p->job = job;
    p->total = total;
    p->nprimes = np;
    p->deferred = stats_w2_deferred(t, job);
    p->per_ct = per_packed(&t->layout);
    p->each = t->layout.colmajor;
    p->finished = (int)head[1];
    int rc = acc_new(ctx, NULL, 1, total, 0, &p->acc);
    if (rc) {
        free(p);
        return rc;
    }
    p->acc.n.rotations = v[2];
    p->acc.n.multiplications = v[3];
    p->acc.n.conjugations = v[4];
    p->acc.n.relinearizations = v[5];
    size_t off = 64;
    for (size_t j = 0; j < total; j++) {
        uint64_t set, size;
        double scale;
        if (len - off < 8) goto bad_p;
        memcpy(&set, b + off, 8);
        off += 8;
        if (set > 1) goto bad_p;
        if (!set) continue;
        /* A finished packed ciphertext (or column-major sum) is degree 1, in
         * its first sum's first slot. */
        if (p->finished && !finished_slot(p, j)) goto bad_p;
        if (len - off < 16) goto bad_p;
        memcpy(&size, b + off, 8);
        memcpy(&scale, b + off + 8, 8);
        off += 16;
        if (size < 2 || size > 3) goto bad_p;
        const size_t cnp = p->finished ? fold_primes(np) : np, w = size * cnp * n;
        if ((len - off) / 8 < w) goto bad_p;
        if (ckks_ciphertext_new(ctx, size, cnp, &p->acc.sums[j])) goto bad_p;
        ckks_ciphertext_t *x = p->acc.sums[j];
        memcpy(x->data, b + off, w * 8);
        x->scale = scale;
        if (!slot_valid(p, x)) goto bad_p;
        p->acc.sum_set[j] = 1;
        off += w * 8;
    }
    if (off != len) goto bad_p;
    *out = p;
    return STATS_OK;
bad_p:
    stats_partial_free(p);
bad:
    stats_set_error("partial sums: malformed");
    return STATS_ESCHEMA;
}

/* The scale every finished sum has. Fixed (not per table) so results of
 * several uploads add up. It is also the scale the product sums' masks are
 * encoded at (target / Delta^2 with target = final * q_1 * q_2), so it
 * trades mask precision (2^-35 * sqrt N relative, about 3e-9) against
 * capacity: totals reach 2 x rows and must stay below q_0/2 at scale 2^35
 * with q_0 >= 2^59, so up to 2^23 rows in all. */
static double finish_target(const ckks_context_t *ctx)
{
    const double final_scale = 0x1p35;
    double target = final_scale;
    for (size_t i = 1; i < ckks_context_data_primes(ctx); i++) target *= (double)ckks_context_prime(ctx, i);
    return target;
}

int stats_partial_finish_share(const ckks_context_t *ctx, const stats_enc_table_t *t, const ckks_relin_key_t *rk,
                               const ckks_galois_keys_t *gk, stats_partial_t *part, size_t share, size_t nshares)
{
    if (!part || !nshares || share >= nshares) return STATS_EINVAL;
    int rc = check_compute_args(ctx, t, part->job, rk, gk);
    if (rc) return rc;
    const stats_layout_t *lay = &t->layout;
    const size_t S = lay->slots, B = lay->block, g = diag_g(lay), st = dstep(lay), total = nsums(lay, part->job);
    const size_t p = pack_period(lay), per_ct = per_packed(lay), npacked = (total + per_ct - 1) / per_ct;
    if (part->finished || !part->acc.sums || part->total != acc_count(t, part->job) || part->per_ct != per_ct ||
        part->each != lay->colmajor ||
        part->deferred != stats_w2_deferred(t, part->job) || part->nprimes != ckks_context_data_primes(ctx))
        return STATS_ESCHEMA;
    for (size_t j = 0; j < part->total; j++)
        if (sum_share(part, slot_sum(part, j), nshares) == share && !part->acc.sum_set[j]) {
            stats_set_error("partial sums: sum %zu missing (no chunk computed)", slot_sum(part, j));
            return STATS_ESCHEMA;
        }
    ckks_ciphertext_t **accs = part->acc.sums;
    const size_t top = ckks_context_data_primes(ctx);
    /* Every sum stays at the top level until it is packed: rotation noise is
     * absolute, so folding products at scale Delta^2 (not rescaled) keeps it
     * negligible. Masks are encoded at target/scale so all masked sums share
     * the scale `target`; rescales then bring the packed totals to one prime. */
    const double target = finish_target(ctx);
    /* This share's packed ciphertexts (share, share + nshares, ...) and
     * their sums; column-major, its sums (share, share + nshares, ...), each
     * finished alone, and no packing here (stats_partial_finish). */
    const int each = lay->colmajor;
    const size_t mpk = each ? 0 : npacked > share ? (npacked - share + nshares - 1) / nshares : 0;
    size_t mine = each ? (total > share ? (total - share + nshares - 1) / nshares : 0) : 0;
    for (size_t k = 0; k < mpk; k++) {
        size_t j = share + k * nshares;
        mine += (j + 1) * per_ct < total ? per_ct : total - j * per_ct;
    }
    int *frc = calloc(mine + mpk + 1, sizeof *frc), *prc = frc + mine;
    ckks_ciphertext_t **xs = calloc(mine + 1, sizeof *xs);
    if (!frc || !xs) {
        free(frc);
        free(xs);
        return STATS_ENOMEM;
    }
    const size_t nf = stats_threads(mine);
    stats_counts_t *n = &part->acc.n;
#pragma omp parallel num_threads((int)nf) if (nf > 1)
    {
        stats_counts_t cnt = {0};
        srv_t ts = {ctx, rk, gk, &cnt};
        pack_room_t room;
        int trc = pack_room_new(ctx, each ? 1 : per_ct, S, top, &room);
        if (!trc && each) {
            room.cols_R = lay->rows_per_ct;
            room.cols_B = B;
        }
        /* Each sum on its own: merged (deferred), relinearized; column-major
         * also folded, masked and rescaled. */
#pragma omp for schedule(dynamic, 1)
        for (size_t k = 0; k < mine; k++) {
            const size_t i = each ? share + k * nshares : (share + k / per_ct * nshares) * per_ct + k % per_ct;
            ckks_ciphertext_t *x = accs[sum_slot(part, i)];
            frc[k] = trc;
            const int merge = part->deferred && i >= 2;
            if (!frc[k] && merge) {
                /* Sum over k of sigma_u(X_k) sigma_v(Y_k), u = -g b, v = a,
                 * merged with the keys of a and -g b (the chunks' own
                 * steps); like an eager sum, it is left rotated by -g b. */
                size_t d = (i - 2) / NTYPES + 1, a = d % g, b = d / g;
                uint32_t eu = b ? ckks_galois_elt_rotate(ctx, -(int)(g * b * st)) : 1;
                uint32_t ev = a ? ckks_galois_elt_rotate(ctx, (int)(a * st)) : 1;
                cnt.rotations += (a ? 2 : 0) + (b ? 2 : 0);
                frc[k] = ckks_merge_split(x, accs[sum_slot(part, i) + 1], eu, ev, gk, x);
            }
            if (!frc[k]) frc[k] = relin_sum(&ts, x, i);
            if (!frc[k] && each) frc[k] = finish_sum_colmajor(&ts, x, lay, target, top, &room);
            xs[k] = x;
        }
        /* Then each packed ciphertext: its sums folded, masked and packed. */
#pragma omp for schedule(dynamic, 1)
        for (size_t k = 0; k < mpk; k++) {
            const size_t j = share + k * nshares, m = (j + 1) * per_ct < total ? per_ct : total - j * per_ct;
            int failed = 0; /* a sum that failed (or trc) is reported below, by sum */
            for (size_t u = 0; u < m; u++) failed |= frc[k * per_ct + u] != 0;
            prc[k] = failed ? 0 : pack_sums(&ts, xs + k * per_ct, m, S, p, B, target, top, &room);
        }
#pragma omp critical
        {
            n->relinearizations += cnt.relinearizations;
            n->rotations += cnt.rotations;
        }
        if (!trc) pack_room_free(&room);
    }
    for (size_t k = 0; k < mine && rc == STATS_OK; k++)
        if (frc[k]) {
            stats_set_error("finishing sum %zu: %s",
                            each ? share + k * nshares : (share + k / per_ct * nshares) * per_ct + k % per_ct,
                            ckks_strerror(frc[k]));
            rc = frc[k] == CKKS_ENOMEM ? STATS_ENOMEM : STATS_ECKKS;
        }
    for (size_t k = 0; k < mpk && rc == STATS_OK; k++)
        if (prc[k]) {
            stats_set_error("packing sums %zu-: %s", (share + k * nshares) * per_ct, ckks_strerror(prc[k]));
            rc = prc[k] == CKKS_ENOMEM ? STATS_ENOMEM : STATS_ECKKS;
        }
    free(frc);
    free(xs);
    if (rc) return rc; /* the partial is spent either way: free it */
    /* Only this share's packed ciphertexts (column-major: finished sums)
     * stay, each in its first sum's first slot; the other slots' memory goes. */
    for (size_t j = 0; j < part->total; j++) {
        if (sum_share(part, slot_sum(part, j), nshares) == share && finished_slot(part, j)) continue;
        ckks_ciphertext_free(accs[j]);
        accs[j] = NULL;
        part->acc.sum_set[j] = 0;
    }
    part->finished = 1;
    return STATS_OK;
}

int stats_partial_finish(const ckks_context_t *ctx, const stats_enc_table_t *t, const ckks_relin_key_t *rk,
                         const ckks_galois_keys_t *gk, stats_partial_t *part, stats_enc_result_t **out,
                         stats_counts_t *counts)
{
    if (!part || !out) return STATS_EINVAL;
    *out = NULL;
    int rc = check_compute_args(ctx, t, part->job, rk, gk);
    if (rc) return rc;
    if (!part->finished && (rc = stats_partial_finish_share(ctx, t, rk, gk, part, 0, 1))) return rc;
    const stats_layout_t *lay = &t->layout;
    const size_t total = nsums(lay, part->job), per_ct = per_packed(lay), npacked = (total + per_ct - 1) / per_ct;
    if (!part->acc.sums || part->total != acc_count(t, part->job) || part->per_ct != per_ct ||
        part->each != lay->colmajor)
        return STATS_ESCHEMA;
    for (size_t j = 0; j < (part->each ? total : npacked); j++)
        if (!part->acc.sum_set[sum_slot(part, part->each ? j : j * per_ct)]) {
            if (part->each)
                stats_set_error("partial sums: finished sum %zu missing", j);
            else
                stats_set_error("partial sums: finished packed ciphertext %zu missing", j);
            return STATS_ESCHEMA;
        }
    stats_counts_t local = {0};
    stats_counts_t *cn = counts ? counts : &local;
    *cn = part->acc.n;
    const size_t top = ckks_context_data_primes(ctx);
    if (part->each) { /* column-major: the finished sums packed, per_ct a ciphertext */
        ckks_ciphertext_t *tmp = NULL, **xs = calloc(per_ct, sizeof *xs);
        srv_t ts = {ctx, rk, gk, cn};
        rc = xs ? ckks_ciphertext_new(ctx, 3, 0, &tmp) : CKKS_ENOMEM;
        for (size_t j = 0; j < npacked && !rc; j++) {
            const size_t m = (j + 1) * per_ct < total ? per_ct : total - j * per_ct;
            for (size_t u = 0; u < m; u++) xs[u] = part->acc.sums[sum_slot(part, j * per_ct + u)];
            rc = pack_sums_colmajor(&ts, xs, m, tmp);
        }
        ckks_ciphertext_free(tmp);
        free(xs);
        if (rc) {
            stats_set_error("packing sums: %s", ckks_strerror(rc));
            return rc == CKKS_ENOMEM ? STATS_ENOMEM : STATS_ECKKS;
        }
    }
    /* pack_sums': each y_d to fold_primes; pack_sums_colmajor's: each sum */
    cn->rescales = (lay->colmajor ? total : npacked * per_ct) * (top - fold_primes(top));
    /* The packed ciphertexts move into the result, so the partial is spent. */
    ckks_ciphertext_t **accs = part->acc.sums;
    const size_t nacc = part->total;
    stats_enc_result_t *res = NULL;
    part->acc.sums = NULL;
    memset(part->acc.sum_set, 0, nacc * sizeof *part->acc.sum_set);
    res = calloc(1, sizeof *res);
    if (!res || !(res->cts = calloc(npacked, sizeof *res->cts))) {
        rc = STATS_ENOMEM;
        goto done;
    }
    res->layout = *lay;
    res->job = part->job;
    res->segments = 1;
    for (size_t j = 0; j < npacked; j++) {
        ckks_ciphertext_t **x = &accs[sum_slot(part, j * per_ct)];
        res->cts[j] = *x;
        *x = NULL;
        res->count = j + 1;
        while (res->cts[j]->nprimes > 1) {
            cn->rescales++;
            TRY(ckks_rescale(res->cts[j], res->cts[j]));
        }
    }
    *out = res;
    res = NULL;
done:
    stats_enc_result_free(res);
    for (size_t i = 0; i < nacc; i++) ckks_ciphertext_free(accs[i]);
    free(accs);
    return rc;
}

int stats_compute(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job,
                  const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk,
                  stats_enc_result_t **out, stats_counts_t *counts)
{
    if (!out) return STATS_EINVAL;
    *out = NULL;
    uint64_t used = 0;
    if (counts) memset(counts, 0, sizeof *counts);
    return stats_compute_more(ctx, t, job, rk, gk, 0, 1, NULL, NULL, out, &used, counts);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Range by range (stats_segment_next): the range's partial sums (this
 * part's chunks of it); with other processes, exchanged (reduce), this
 * part's share of the sums finished and the finished shares gathered
 * where the result is written; packed there, and merged into *acc. */
int stats_compute_more(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job,
                       const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk, size_t part, size_t nparts,
                       stats_reduce_fn reduce, void *arg, stats_enc_result_t **acc, uint64_t *used,
                       stats_counts_t *counts)
{
    if (!acc || !used || !ctx || !t || !t->chunks || !nparts || part >= nparts || (nparts > 1 && !reduce))
        return STATS_EINVAL;
    const char *tr = getenv("HESTAT_TRACE");
    const int trace = tr && *tr && strcmp(tr, "0");
    int rc = STATS_OK;
    for (size_t first = 0, end; first < t->chunks && !rc; first = end) {
        int fresh;
        uint64_t rows;
        end = stats_segment_next(ctx, t, first, used, &fresh, &rows);
        stats_enc_result_t *r = NULL;
        stats_counts_t c = {0};
        stats_partial_t *mine = NULL, *all = NULL;
        double tm[5] = {trace ? now_s() : 0};
        rc = stats_compute_partial_range(ctx, t, job, rk, gk, first, end, part, nparts, &mine);
        if (trace) tm[1] = tm[2] = tm[3] = now_s();
        if (!rc && reduce) {
            rc = reduce(arg, STATS_REDUCE_SHARES, ctx, mine, t, job, &all);
            if (trace) tm[2] = now_s();
            if (!rc) rc = stats_partial_finish_share(ctx, t, rk, gk, mine, part, nparts);
            if (trace) tm[3] = now_s();
            if (!rc) rc = reduce(arg, STATS_REDUCE_FINISHED, ctx, mine, t, job, &all);
        } else if (!rc) {
            all = mine;
            mine = NULL;
        }
        if (trace) tm[4] = now_s();
        /* Only the process that holds the total (all != NULL) packs it. */
        if (!rc && all) rc = stats_partial_finish(ctx, t, rk, gk, all, &r, &c);
        if (trace)
            fprintf(stderr,
                    "hestat: part %zu of %zu: chunks %zu-%zu of %zu: partial sums %.3f s, exchange %.3f s, "
                    "finish share %.3f s, gather %.3f s, finish %.3f s\n",
                    part, nparts, first + 1, end, t->chunks, tm[1] - tm[0], tm[2] - tm[1], tm[3] - tm[2],
                    tm[4] - tm[3], now_s() - tm[4]);
        if (all != mine) stats_partial_free(all);
        stats_partial_free(mine);
        if (rc || !r) {
            stats_enc_result_free(r);
            continue;
        }
        if (counts) stats_counts_add(counts, &c);
        r->layout.nrows = rows; /* the range's */
        rc = stats_result_merge(acc, r, fresh);
    }
    return rc;
}

void stats_counts_add(stats_counts_t *acc, const stats_counts_t *c)
{
    acc->rotations += c->rotations;
    acc->relinearizations += c->relinearizations;
    acc->multiplications += c->multiplications;
    acc->rescales += c->rescales;
    acc->conjugations += c->conjugations;
}

/* Results of one layout and job (their segments aside). */
static int same_shape(const stats_enc_result_t *a, const stats_enc_result_t *b)
{
    return a->job == b->job && a->layout.ncols == b->layout.ncols && a->layout.block == b->layout.block &&
           a->layout.colmajor == b->layout.colmajor &&
           a->layout.slots == b->layout.slots && !memcmp(a->layout.factor, b->layout.factor, sizeof a->layout.factor);
}

/* dst[j] += src[j] for n ciphertexts. */
static int add_cts(ckks_ciphertext_t **dst, ckks_ciphertext_t *const *src, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        int rc = ckks_add(dst[j], src[j], dst[j]);
        if (rc) {
            stats_set_error("combining results: %s", ckks_strerror(rc));
            return STATS_ECKKS;
        }
    }
    return STATS_OK;
}

int stats_result_add(stats_enc_result_t *acc, const stats_enc_result_t *other)
{
    if (!acc || !other) return STATS_EINVAL;
    if (!same_shape(acc, other) || acc->count != other->count || acc->segments != other->segments)
        return STATS_ESCHEMA;
    int rc = add_cts(acc->cts, other->cts, acc->count);
    if (!rc) acc->layout.nrows += other->layout.nrows;
    return rc;
}

/* Rows one result segment may total. A packed total is decrypted from the
 * first prime alone at scale 2^35 (finish_target), so it must stay below
 * q_0 / 2^36; a pair's totals reach 3 x rows in units of the columns'
 * factors (Q1: |x m' + 2 x x'| <= 3), so a segment holds fewer than
 * q_0 / (3 2^36) rows (5.59 million with a 60-bit q_0), less 1/256 for
 * the noise. HESTAT_SEGMENT_ROWS=R lowers it
 * (tests); never below one chunk's rows. */
uint64_t stats_segment_rows(const ckks_context_t *ctx, const stats_layout_t *lay)
{
    uint64_t cap = (uint64_t)(ldexp((double)ckks_context_prime(ctx, 0), -36) / 3);
    cap -= cap / 256;
    const char *v = getenv("HESTAT_SEGMENT_ROWS");
    if (v && *v) {
        char *end;
        unsigned long long r = strtoull(v, &end, 10);
        if (!*end && r > 0 && r < cap) cap = r;
    }
    return cap > lay->rows_per_ct ? cap : lay->rows_per_ct;
}

size_t stats_segment_next(const ckks_context_t *ctx, const stats_enc_table_t *t, size_t first, uint64_t *used,
                          int *fresh, uint64_t *rows)
{
    const uint64_t cap = stats_segment_rows(ctx, &t->layout), rpc = t->layout.rows_per_ct;
    *fresh = *used == 0 || cap - *used < rpc;
    if (*fresh) *used = 0;
    uint64_t fit = (cap - *used) / rpc, left = t->chunks - first;
    size_t end = first + (size_t)(fit < left ? fit : left);
    uint64_t last = (uint64_t)end * rpc < t->layout.nrows ? (uint64_t)end * rpc : t->layout.nrows;
    *rows = last - (uint64_t)first * rpc;
    *used += *rows;
    return end;
}

int stats_result_merge(stats_enc_result_t **acc, stats_enc_result_t *r, int fresh)
{
    if (!acc || !r || r->segments != 1) {
        stats_enc_result_free(r);
        return STATS_EINVAL;
    }
    if (!*acc) {
        *acc = r;
        return STATS_OK;
    }
    stats_enc_result_t *a = *acc;
    const size_t per = r->count;
    int rc = same_shape(a, r) && a->count == a->segments * per ? STATS_OK : STATS_ESCHEMA;
    if (!rc && fresh) {
        ckks_ciphertext_t **cts = realloc(a->cts, (a->count + per) * sizeof *cts);
        if (cts) {
            a->cts = cts;
            memcpy(a->cts + a->count, r->cts, per * sizeof *cts);
            a->count += per;
            a->segments++;
            r->count = 0; /* the ciphertexts are a's now */
        } else {
            rc = STATS_ENOMEM;
        }
    } else if (!rc) {
        rc = add_cts(a->cts + a->count - per, r->cts, per);
    }
    if (!rc) a->layout.nrows += r->layout.nrows;
    stats_enc_result_free(r);
    return rc;
}

/* ---- client ---- */

/* Decrypted totals must look like what the server can have computed: every
 * count (column and pair) near an integer in [0, rows], with no imaginary
 * part, and every sum of x/f within the count. A wrong secret key or a
 * damaged result gives values spread over the whole plaintext range, which
 * fail this by orders of magnitude: an error, never a report. */
/* A pair's count m m' from its diagonal's totals (base: Q1): Re Q3 + Re Q1
 * + Re Q2. */
static long double pair_count(const long double *tre, size_t base, size_t B, size_t i)
{
    return tre[(base + 2) * B + i] + tre[base * B + i] + tre[(base + 1) * B + i];
}

/* A pair's eight sums from its diagonal's four totals Q1 .. Q4 (base: Q1),
 * in their place (x = x_c, q = x_c^2, m = m_c; primed: column c + d):
 *   Re 0 = x m' = Re Q1 + Re Q2        Im 0 = q x' = -(Im Q1 + Im Q3) / 2
 *   Re 1 = x x' = Re Q2 / 2            Im 1 = x q' = Im Q2 / 2
 *   Re 2 = m m' = Re Q3 + Re Q1 + Re Q2, rounded (a count)
 *   Im 2 = q m' = -Im Q3,  Re 3 = m x' = Re Q4,  Im 3 = m q' = Im Q4.
 * Linear but for the rounding, so it is applied to each segment's totals
 * and the results added. */
static void pair_sums(long double *re, long double *im, size_t base, size_t B, size_t i)
{
    long double *r1 = &re[base * B + i], *r2 = &re[(base + 1) * B + i], *r3 = &re[(base + 2) * B + i];
    long double *i1 = &im[base * B + i], *i2 = &im[(base + 1) * B + i], *i3 = &im[(base + 2) * B + i];
    long double xm = *r1 + *r2, qx = -(*i1 + *i3) / 2, mm = roundl(pair_count(re, base, B, i));
    *i3 = -*i3;
    *r1 = xm;
    *i1 = qx;
    *r2 = *r2 / 2;
    *i2 = *i2 / 2;
    *r3 = mm;
}

/* Whether position c of diagonal d pairs two of the table's columns: c
 * (the X side of the products) with *j (the Y side). */
static int diag_pair(const stats_layout_t *lay, size_t d, size_t c, size_t *j)
{
    *j = lay->colmajor ? (c + d) % lay->block : c + d;
    return c < lay->ncols && *j < lay->ncols;
}

/* Where the sums of columns i < j are: diagonal *d at position *x (the X
 * side: i, or j when column-major pairs them the other way round). */
static void pair_place(const stats_layout_t *lay, size_t i, size_t j, size_t *d, size_t *x)
{
    const size_t delta = j - i;
    if (!lay->colmajor || delta <= lay->block / 2) {
        *d = delta;
        *x = i;
    } else {
        *d = lay->block - delta;
        *x = j;
    }
}

static int check_totals(const stats_layout_t *lay, const long double *tre, const long double *tim, size_t B,
                        size_t total, stats_job_t job)
{
    /* A total's error is relative (the mask's encoding: about 2^-35 sqrt(N)
     * / 2, 1.3e-9 at N = 8192), so a count of R rows is within 0.01 of an
     * integer only up to a few million rows: 10^7 rows gave errors of 0.01
     * to 0.02. Rounding stays exact while the error is below 0.5 (R up to
     * about 6.6e7 with this bound); garbage is off by far more. */
    const long double rows = (long double)lay->nrows, tol = 0.01L + rows * 0x1p-27L;
    for (size_t c = 0; c < lay->ncols; c++) {
        long double n = tre[1 * B + c], sx = tre[c], sxx = tim[c];
        int bad = !isfinite(n) || n < -tol || n > rows + tol || fabsl(n - roundl(n)) > tol ||
                  fabsl(tim[1 * B + c]) > tol || !(fabsl(sx) <= n + tol) || !(sxx >= -tol && sxx <= n + tol);
        if (bad) {
            stats_set_error("decrypted totals of column %s are not consistent (count %.6Lg of %.0Lf rows): the secret "
                            "key does not belong to this result, or the result is damaged",
                            lay->names[c], n, rows);
            return STATS_EDECRYPT;
        }
    }
    if (job == STATS_JOB_ALL)
        for (size_t d = 1; d <= ndiag(lay); d++) {
            size_t base = 2 + NTYPES * (d - 1), j;
            for (size_t i = 0; i < B && base + 3 < total; i++) {
                if (!diag_pair(lay, d, i, &j)) continue;
                long double n = pair_count(tre, base, B, i);
                if (!isfinite(n) || n < -tol || n > rows + tol || fabsl(n - roundl(n)) > tol) {
                    stats_set_error("decrypted pair count %s:%s is not consistent (%.6Lg): the secret key does not "
                                    "belong to this result, or the result is damaged",
                                    lay->names[i], lay->names[j], n);
                    return STATS_EDECRYPT;
                }
            }
        }
    return STATS_OK;
}

int stats_decrypt(const ckks_context_t *ctx, const ckks_secret_key_t *sk,
                  const stats_enc_result_t *r, stats_result_t *out)
{
    if (!ctx || !sk || !r || !out) return STATS_EINVAL;
    const stats_layout_t *lay = &r->layout;
    const size_t S = lay->slots, B = lay->block, C = lay->ncols, p = pack_period(lay), per_ct = per_packed(lay);
    const size_t R = lay->rows_per_ct;
    const size_t total = nsums(lay, r->job), per = (total + per_ct - 1) / per_ct;
    if (!r->segments || r->count != r->segments * per) return STATS_ESCHEMA;
    stats_result_free(out);
    memset(out, 0, sizeof *out);
    out->ncols = C;
    int rc = STATS_OK;
    if (r->job == STATS_JOB_ALL) {
        long double **arrays[] = {&out->sxy, &out->sxxy, &out->sx_mask, &out->sxx_mask, &out->nij};
        for (size_t a = 0; a < sizeof arrays / sizeof *arrays; a++)
            if (!(*arrays[a] = calloc(C * C, sizeof **arrays[a]))) rc = STATS_ENOMEM;
        if (!(out->pairs = calloc(C * C, sizeof *out->pairs))) rc = STATS_ENOMEM;
        if (rc) {
            stats_result_free(out);
            return rc;
        }
    }
    ckks_plaintext_t *pt = NULL;
    double *re = malloc(S * sizeof *re), *im = malloc(S * sizeof *im);
    /* totals[t*B + c], and one segment's */
    long double *tre = calloc(total * B, sizeof *tre), *tim = calloc(total * B, sizeof *tim);
    long double *sre = calloc(total * B, sizeof *sre), *sim = calloc(total * B, sizeof *sim);
    if (!re || !im || !tre || !tim || !sre || !sim) {
        rc = STATS_ENOMEM;
        goto done;
    }
    TRY(ckks_plaintext_new(ctx, 0, &pt));
    /* Each segment's totals are checked, their counts rounded (so counts
     * stay exact however many segments there are), then added. */
    for (size_t sg = 0; sg < r->segments; sg++) {
        for (size_t j = 0; j < per; j++) {
            TRY(ckks_decrypt(sk, r->cts[sg * per + j], pt));
            TRY(ckks_decode(ctx, pt, re, im, S));
            for (size_t u = 0; u < per_ct && j * per_ct + u < total; u++) {
                const size_t t = j * per_ct + u, sh = sum_shift(lay, t);
                for (size_t c = 0; c < B; c++) {
                    const size_t at = lay->colmajor ? ((c + sh) % B * R + S - u) % S : u * p + (c + sh) % B;
                    sre[t * B + c] = re[at];
                    sim[t * B + c] = im[at];
                }
            }
        }
        if ((rc = check_totals(lay, sre, sim, B, total, r->job))) goto done;
        for (size_t c = 0; c < C; c++) sre[1 * B + c] = roundl(sre[1 * B + c]);
        for (size_t d = 1; r->job == STATS_JOB_ALL && d <= ndiag(lay); d++)
            for (size_t i = 0, j; i < B; i++)
                if (diag_pair(lay, d, i, &j)) pair_sums(sre, sim, 2 + NTYPES * (d - 1), B, i);
        for (size_t k = 0; k < total * B; k++) {
            tre[k] += sre[k];
            tim[k] += sim[k];
        }
    }
    const double *f = lay->factor;
    for (size_t c = 0; c < C; c++) {
        long double n = roundl(tre[1 * B + c]); /* counts are integers */
        long double sx = tre[c] * f[c], sxx = tim[c] * f[c] * f[c];
        stats_moments_t *m = &out->cols[c];
        out->sumsq[c] = sxx;
        m->count = n;
        m->sum = sx;
        m->mean = n > 0 ? sx / n : NAN;
        m->var = n > 1 ? (sxx - sx * sx / n) / (n - 1) : NAN;
        if (m->var < 0) m->var = 0;
        m->sd = sqrtl(m->var);
    }
    if (r->job == STATS_JOB_ALL) {
        out->have_pairs = 1;
        for (size_t i = 0; i < C; i++) {
            for (size_t jcol = i + 1; jcol < C; jcol++) {
                /* The sums of X = x (the products' X side) and Y = the other. */
                size_t d, x;
                pair_place(lay, i, jcol, &d, &x);
                const size_t y = x == i ? jcol : i, base = 2 + NTYPES * (d - 1);
                long double fi = f[x], fj = f[y];
                const long double *P = tre, *Q = tim;
#define RE(k) P[(base + (k)) * B + x]
#define IM(k) Q[(base + (k)) * B + x]
                size_t ij = stats_ij(out, x, y), ji = stats_ij(out, y, x);
                out->sxy[ij] = out->sxy[ji] = RE(1) * fi * fj;
                out->sxxy[ij] = IM(0) * fi * fi * fj;
                out->sxxy[ji] = IM(1) * fi * fj * fj;
                out->nij[ij] = out->nij[ji] = roundl(RE(2));
                out->sx_mask[ij] = RE(0) * fi;
                out->sxx_mask[ij] = IM(2) * fi * fi;
                out->sx_mask[ji] = RE(3) * fj;
                out->sxx_mask[ji] = IM(3) * fj * fj;
#undef RE
#undef IM
            }
        }
        for (size_t i = 0; i < C; i++)
            for (size_t jcol = 0; jcol < C; jcol++) {
                if (i == jcol) continue;
                size_t ij = stats_ij(out, i, jcol), ji = stats_ij(out, jcol, i);
                long double n = out->nij[ij], sx = out->sx_mask[ij], sy = out->sx_mask[ji];
                long double sxx = out->sxx_mask[ij], syy = out->sxx_mask[ji], sxy = out->sxy[ij];
                stats_pair_t *pp = &out->pairs[ij];
                pp->n = n;
                pp->cov = n > 1 ? (sxy - sx * sy / n) / (n - 1) : NAN;
                long double vx = n * sxx - sx * sx, vy = n * syy - sy * sy;
                pp->corr = vx > 0 && vy > 0 ? (n * sxy - sx * sy) / sqrtl(vx * vy) : NAN;
            }
    }
done:
    if (rc) stats_result_free(out);
    ckks_plaintext_free(pt);
    free(re);
    free(im);
    free(tre);
    free(tim);
    free(sre);
    free(sim);
    return rc;
}

void stats_result_free(stats_result_t *r)
{
    if (!r) return;
    free(r->pairs);
    free(r->sxy);
    free(r->sxxy);
    free(r->sx_mask);
    free(r->sxx_mask);
    free(r->nij);
    r->pairs = NULL;
    r->sxy = r->sxxy = r->sx_mask = r->sxx_mask = r->nij = NULL;
    r->have_pairs = 0;
}

void stats_moments_from_sums(long double cnt, long double sum, long double sq, stats_moments_t *m)
{
    m->count = cnt;
    m->sum = sum;
    m->mean = cnt > 0 ? sum / cnt : NAN;
    m->var = cnt > 1 ? (sq - sum * sum / cnt) / (cnt - 1) : NAN;
    if (m->var < 0) m->var = 0;
    m->sd = sqrtl(m->var);
}

int stats_group(const stats_result_t *r, size_t g, int level, size_t c, stats_moments_t *m)
{
    if (!r || !m || !r->have_pairs || g >= r->ncols || c >= r->ncols || g == c) return STATS_EINVAL;
    if (level != 0 && level != 1) return STATS_EINVAL;
    size_t gc = stats_ij(r, g, c), cg = stats_ij(r, c, g);
    /* Level 1: rows with g = 1 (g has no missing values, f_g folded in). */
    long double n1 = roundl(r->sx_mask[gc]), s1 = r->sxy[cg], ss1 = r->sxxy[cg];
    long double n = r->cols[c].count, s = r->cols[c].sum;
    long double ss = r->sumsq[c];
    long double cnt = level ? n1 : n - n1, sum = level ? s1 : s - s1, sq = level ? ss1 : ss - ss1;
    stats_moments_from_sums(cnt, sum, sq, m);
    return STATS_OK;
}
