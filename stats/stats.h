/*
 * hestat stats/: statistics over encrypted tables.
 *
 * Plaintext side: tables (CSV reader, a deterministic generator of tables
 * with the Framingham schema) and a reference implementation in long double.
 *
 * Encrypted side (see DESIGN in stats/encrypted.c):
 *   - layout: row-major, B = the next power of two >= columns slots per row,
 *     R = (N/2)/B rows per ciphertext, ceil(rows/R) chunks;
 *   - per chunk two ciphertexts: Z = x/f + i (x/f)^2 (complex slots) and
 *     M = presence mask (1/0); missing values are 0 in Z and M;
 *   - each column c has a public power-of-two factor f_c >= max |x| so every
 *     total stays small; the client undoes it when finishing;
 *   - the server computes, for every column pair (c, c+d), d = 1 .. B-1, the
 *     sums  P1 = sum Z_c Re(Z_j), P2 = sum M_c M_j, P3 = sum Z_c M_j,
 *     P4 = sum M_c Z_j  (j = c+d), and per column sum Z and sum M; folds
 *     rows with rotations; packs every total into one ciphertext;
 *   - the client decrypts and finishes: counts, means, variances, standard
 *     deviations, pairwise-complete covariances and correlations, and
 *     statistics grouped by any 0/1 column without missing values.
 */
#ifndef HESTAT_STATS_H
#define HESTAT_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ckks/ckks.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    STATS_OK = 0,
    STATS_EINVAL = -1,   /* bad argument */
    STATS_ENOMEM = -2,   /* allocation failed */
    STATS_ECSV = -3,     /* malformed CSV (message in stats_error) */
    STATS_ERANGE = -4,   /* a value outside its column's declared range */
    STATS_ESCHEMA = -5,  /* tables or results of different schemas/layouts */
    STATS_ECKKS = -6,    /* the CKKS layer failed (see stats_error) */
    STATS_EIO = -7,      /* file could not be read */
    STATS_EKEY = -8,     /* a secret key that does not belong to the study */
    STATS_EDECRYPT = -9  /* decrypted totals are not consistent (wrong key or damaged result) */
};

const char *stats_strerror(int status);

/* ---- plaintext tables ---------------------------------------------------------- */
/* A table has at most STATS_MAX_COLS columns: per-column statistics (the W1
 * job, --stats means) go that wide; pairwise ones (W2) need a layout block
 * (the power of two at or above the column count) of at most
 * STATS_MAX_PAIR_BLOCK, so at most 256 columns. A study wider than that
 * carries only W1's evaluation keys (docs/scaling.md, "wide tables"). */
#define STATS_MAX_COLS 512
#define STATS_MAX_PAIR_BLOCK 256
#define STATS_NAME_MAX 64

#define STATS_FACTOR_MAX_LEVELS 16
typedef struct stats_table {
    size_t ncols, nrows;
    char names[STATS_MAX_COLS][STATS_NAME_MAX];
    double *values; /* nrows * ncols, row-major; NaN = missing */
    /* Factor (text-valued) columns, factor.c: levels[c] holds nlevels[c]
     * texts in strcmp order and the column's values are level indices; NULL
     * for a numeric column. Freed by stats_table_free. */
    char (*levels[STATS_MAX_COLS])[STATS_NAME_MAX];
    size_t nlevels[STATS_MAX_COLS];
    size_t first_row; /* a block of a longer table (stats_csv_next): its first row's index there, for messages */
} stats_table_t;

int stats_table_new(size_t ncols, size_t nrows, stats_table_t **out);
void stats_table_free(stats_table_t *t);
static inline double stats_value(const stats_table_t *t, size_t row, size_t col)
{
    return t->values[row * t->ncols + col];
}
/* Index of a column by name, or -1. */
int stats_column(const stats_table_t *t, const char *name);

/* Reads a CSV: a header row of column names, then numeric cells; "NA" or an
 * empty cell is missing. A column whose first present cell is not a number is
 * a factor (its texts are its levels, at most STATS_FACTOR_MAX_LEVELS; a
 * number in it is an error, as text in a numeric column is). Errors name the
 * line and column (err, errlen). */
int stats_read_csv(const char *path, stats_table_t **out, char *err, size_t errlen);
/* The same, with each row's line in the file in *lines (malloc'd). */
int stats_read_csv_lines(const char *path, stats_table_t **out, size_t **lines, char *err, size_t errlen);
/* The same CSV read a block of rows at a time (stats_read_csv is one block
 * of every row): memory holds one block, whatever the file's size, and the
 * input may be a pipe. stats_csv_open reads the header; err (may be NULL)
 * receives every later error too, so it must outlive the reader.
 * stats_csv_next gives the next at most max_rows rows as a table (0 rows at
 * the end of the file), their lines in *lines (may be NULL; malloc'd), its
 * first_row the number of rows given before; a factor column's levels are
 * the texts seen so far. stats_csv_position: bytes read so far and the
 * file's size (0 when not a regular file), for progress. */
typedef struct stats_csv stats_csv_t;
int stats_csv_open(const char *path, stats_csv_t **out, char *err, size_t errlen);
int stats_csv_next(stats_csv_t *r, size_t max_rows, stats_table_t **chunk, size_t **lines);
void stats_csv_position(const stats_csv_t *r, uint64_t *done, uint64_t *total);
void stats_csv_close(stats_csv_t *r);
int stats_write_csv(const stats_table_t *t, const char *path);

/* A deterministic table with the Framingham heart-study schema (16 columns,
 * similar ranges, means, spreads and missing-value rates). Synthetic data
 * for demos and tests; not the real study. */
int stats_generate_framingham(size_t nrows, uint64_t seed, stats_table_t **out);
/* The same rows a block at a time (stats_generate_framingham(n, seed) is
 * the first n rows of the generator's sequence), so a table of any size is
 * written without being held: rows are appended to an open CSV file by
 * stats_write_csv_rows (header: the names line first). */
typedef struct stats_generator stats_generator_t;
int stats_generator_new(uint64_t seed, stats_generator_t **out);
int stats_generator_next(stats_generator_t *g, size_t nrows, stats_table_t **out);
void stats_generator_free(stats_generator_t *g);
/* A generator of wide synthetic tables (ncols in [2, STATS_MAX_COLS]):
 * "group" (0/1, complete) and x1 ... x(ncols-1), measurements of means 1 to
 * 1000 (drawn from the seed) that correlate through a shared factor and
 * shift with the group, 2 % missing. For benchmarks and scale tests. */
int stats_generator_new_wide(uint64_t seed, size_t ncols, stats_generator_t **out);
int stats_write_csv_rows(const stats_table_t *t, FILE *f, int header);

/* ---- derived columns (made by the client before encryption) --------------------
 * What a server cannot compute on CKKS ciphertexts (comparisons) the data owner
 * adds as extra 0/1 or filtered columns; the encrypted machinery then gives
 * their statistics like any other column's. Each returns a new table with the
 * columns appended. */
/* "name=level" indicator columns for a categorical column (0 where missing):
 * grouping by it is stats_group(result, indicator, 1, column). */
int stats_add_indicators(const stats_table_t *t, size_t col, const double *levels, size_t nlevels,
                         stats_table_t **out);
/* Histogram bins over public edges e_0 < ... < e_k: "name in [e_i:e_i+1)"
 * (the last bin closed), 0/1; the bin count is the column's sum. */
int stats_add_bins(const stats_table_t *t, size_t col, const double *edges, size_t nedges,
                   stats_table_t **out);
/* Complete-case copies "cc:name" of the given columns: the value where every
 * listed column is present, missing otherwise (for regressions). */
int stats_add_complete_cases(const stats_table_t *t, const size_t *cols, size_t ncols,
                             stats_table_t **out);

/* Statistics requested by name, a comma-separated list of
 *   mean, var, corr, group:COL, regress:Y~X1+X2..., hist:COL:e0:e1:...:ek
 * stats_spec_derive adds the derived columns they need (indicators for a
 * group column that is not 0/1, complete-case copies for a regression, bins
 * for a histogram); the derived columns are named so that
 * stats_derive_like can rebuild them from a raw table and a schema alone
 * ("COL=level", "cc:COL", "COL in [a:b)"; no commas, so reports stay plain CSV). */
int stats_spec_derive(const stats_table_t *raw, const char *spec, stats_table_t **out, char *err,
                      size_t errlen);
struct stats_layout;
int stats_derive_like(const stats_table_t *raw, const struct stats_layout *schema, stats_table_t **out,
                      char *err, size_t errlen);

/* ---- factors (factor.c; the study side in its comment) ------------------------ */
/* Makes column c a factor: texts[i] is the text of value i in the column's
 * cells now; levels sorted, cells renumbered to level indices. */
int stats_table_set_factor(stats_table_t *t, size_t c, char (*texts)[STATS_NAME_MAX], size_t n);
/* The level text of a cell of a factor column (NULL: missing or numeric). */
const char *stats_factor_level(const stats_table_t *t, size_t c, size_t row);
/* The study's value of raw column src at row when the study or the table
 * holds it as a factor: the level's index among the schema's "COL=level"
 * indicators (1), or 0 when both are numeric (*v the raw value), or
 * STATS_ERANGE for a level the study does not have (stats_error names it). */
int stats_factor_code(const stats_table_t *raw, size_t src, size_t row, const struct stats_layout *schema, double *v);
/* Renames the indicator columns t[first ...] of factor column g of raw to
 * "COL=level" (STATS_EINVAL for a level that cannot be named so). */
int stats_factor_rename(const stats_table_t *raw, size_t g, stats_table_t *t, size_t first);

/* ---- plaintext reference (long double) --------------------------------------- */
typedef struct {
    long double count, sum, mean, var, sd; /* var: sample variance (n-1) */
} stats_moments_t;

typedef struct {
    long double n, cov, corr; /* pairwise complete */
} stats_pair_t;

/* Per-column moments; pairs[i*ncols + j] (i != j) pairwise-complete. */
int stats_reference(const stats_table_t *t, stats_moments_t *cols, stats_pair_t *pairs);
/* Moments of column c over rows where the 0/1 column g equals `level`. */
int stats_reference_group(const stats_table_t *t, size_t g, int level, size_t c,
                          stats_moments_t *m);

/* ---- disclosure control (disclosure.c) -----------------------------------------
 * The study's policy, fixed at keygen, stored in its schema frame and so
 * covered by the study digest: every count released (a column's count, a
 * group, a histogram bin, a quantile's bin, a table cell) is either 0 or at
 * least min_cell, else the value and what is computed from it are written NA
 * with the reason; a model with p parameters needs n >= min_n_per_param * p
 * complete cases. min_cell 0 or 1 releases every count. */
#define STATS_POLICY_MIN_CELL 3                  /* DataSHIELD nfilter.tab */
#define STATS_POLICY_MIN_N_PER_PARAM (1 / 0.33)  /* DataSHIELD nfilter.glm: p <= 0.33 n */
#define STATS_POLICY_MAX_CELL 1000000            /* the most either setting may be */
typedef struct {
    uint32_t min_cell;
    double min_n_per_param;
    int legacy; /* read from a study file of before policies (written back the same way) */
} stats_policy_t;

stats_policy_t stats_policy_default(void);

/* ---- encrypted tables -------------------------------------------------------- */
typedef struct stats_layout {
    size_t ncols, block, rows_per_ct, chunks, nrows, slots;
    /* Slot order within a chunk: 0 row-major (row r, column c at r B + c,
     * the default), 1 column-major (at c R + r, R = rows_per_ct: pairs take
     * half the products; `keygen --layout columns`; see stats_slot). */
    int colmajor;
    double factor[STATS_MAX_COLS]; /* public power-of-two scale per column */
    char names[STATS_MAX_COLS][STATS_NAME_MAX];
    stats_policy_t policy; /* disclosure control (the default from stats_layout_for) */
} stats_layout_t;

/* Layout for a table shape; factors from the table's observed ranges
 * (power of two >= max |x|, at least 1). */
int stats_layout_for(const ckks_context_t *ctx, const stats_table_t *t, stats_layout_t *lay);
/* The slot of row r (within its chunk) and column c. */
static inline size_t stats_slot(const stats_layout_t *lay, size_t r, size_t c)
{
    return lay->colmajor ? c * lay->rows_per_ct + r : r * lay->block + c;
}

typedef struct stats_enc_table {
    stats_layout_t layout;
    size_t chunks;
    ckks_ciphertext_t **z, **m; /* per chunk (NULL: not in memory, see src) */
    struct stats_chunk_src *src; /* NULL, or where chunks not in memory are read from (stats_table_file_open) */
} stats_enc_table_t;

/* Encrypts with the public key (sk NULL) or the secret key (pk NULL: c1
 * from seeds, so the table can be stored compactly). Values beyond a
 * column's factor are STATS_ERANGE. */
int stats_encrypt(const ckks_context_t *ctx, const ckks_public_key_t *pk,
                  const ckks_secret_key_t *sk, const stats_table_t *t,
                  const stats_layout_t *lay, double scale, stats_enc_table_t **out);
void stats_enc_table_free(stats_enc_table_t *e);
/* The same with a progress callback, called after each chunk. */
typedef void (*stats_progress_fn)(void *arg, size_t done, size_t total);
int stats_encrypt_progress(const ckks_context_t *ctx, const ckks_public_key_t *pk,
                           const ckks_secret_key_t *sk, const stats_table_t *t,
                           const stats_layout_t *lay, double scale, stats_enc_table_t **out,
                           stats_progress_fn progress, void *arg);
/* The same chunk by chunk: each chunk's two ciphertexts go to sink as soon
 * as they are made (then reused for the next chunk), so a table of any size
 * is encrypted into a file without holding its ciphertexts
 * (stats_table_write_file). A non-zero return of sink stops and is returned. */
typedef int (*stats_chunk_sink_fn)(void *arg, size_t k, const ckks_ciphertext_t *z, const ckks_ciphertext_t *m);
int stats_encrypt_each(const ckks_context_t *ctx, const ckks_public_key_t *pk, const ckks_secret_key_t *sk,
                       const stats_table_t *t, const stats_layout_t *lay, double scale, stats_chunk_sink_fn sink,
                       void *sink_arg, stats_progress_fn progress, void *arg);

/* Server work counters (printed by tools and benchmarks). */
typedef struct {
    size_t rotations, relinearizations, multiplications, rescales, conjugations;
} stats_counts_t;

/* What the server computes. */
typedef enum {
    STATS_JOB_MEANS = 1, /* W1: sum x and count per column */
    STATS_JOB_ALL = 2    /* W2: moments, all pairs, groups by 0/1 columns */
} stats_job_t;

typedef struct stats_enc_result {
    stats_layout_t layout;
    stats_job_t job;
    ckks_ciphertext_t **cts; /* packed totals: segments x stats_result_count of them */
    size_t count;
    /* Totals of disjoint sets of rows, each within what one ciphertext
     * holds (stats_segment_rows), added after decryption: 1 up to 2^23 rows. */
    size_t segments;
    int released; /* multiparty: re-encrypted under the analyst's key (stats_mp_release) */
} stats_enc_result_t;

/* Server side: needs only public evaluation keys (relinearization and the
 * Galois keys from stats_galois_steps). */
int stats_compute(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job,
                  const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk,
                  stats_enc_result_t **out, stats_counts_t *counts);
void stats_enc_result_free(stats_enc_result_t *r);
/* stats_compute in two phases, for splitting a table's chunks across
 * processes (MPI ranks): each of nparts computes the partial sums of the
 * chunks part, part + nparts, ...; partials add up exactly (modular sums,
 * any order), and finishing their total gives the result stats_compute
 * gives, byte for byte. The wire form carries a partial between processes
 * of one job (validated on reading). */
typedef struct stats_partial stats_partial_t;
int stats_compute_partial(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job,
                          const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk, size_t part, size_t nparts,
                          stats_partial_t **out);
/* The same over chunks first .. end - 1 only (part's: first + part,
 * first + part + nparts, ...): one segment's share of a table. */
int stats_compute_partial_range(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job,
                                const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk, size_t first, size_t end,
                                size_t part, size_t nparts, stats_partial_t **out);
/* Adds other's sums into acc's: both unfinished, or both finished shares
 * (which never hold the same sum: ESCHEMA if they do). */
int stats_partial_add(stats_partial_t *acc, const stats_partial_t *other);
/* Finishing can be split across processes too: sum i of a table (there are
 * 2, or 2 + 5 (B - 1) with pairs) goes to packed ciphertext j = i / (S/p)
 * (8 sums each at N = 8192), which belongs to share j mod nshares (column-
 * major: sum i belongs to share i mod nshares). Given the total of its
 * share's sums (stats_partial_write_share, or slot by slot
 * stats_partial_share_slot and stats_partial_add_slot, carry them between
 * processes), a process finishes them (key switches, folds, masks, packing:
 * most of the finishing) with stats_partial_finish_share, which keeps only
 * its packed ciphertexts (column-major: its finished sums); the finished
 * shares are then added (stats_partial_add) into one partial, which
 * stats_partial_finish packs (column-major) and rescales into the result:
 * the same bytes as finishing the whole total in one process. On failure
 * the partial is spent (free it). */
int stats_partial_finish_share(const ckks_context_t *ctx, const stats_enc_table_t *t, const ckks_relin_key_t *rk,
                               const ckks_galois_keys_t *gk, stats_partial_t *part, size_t share, size_t nshares);
/* Spends part: its sums (unless already finished by shares) are finished
 * in place and packed (free it afterwards; it can be neither finished nor
 * added again). */
int stats_partial_finish(const ckks_context_t *ctx, const stats_enc_table_t *t, const ckks_relin_key_t *rk,
                         const ckks_galois_keys_t *gk, stats_partial_t *part, stats_enc_result_t **out,
                         stats_counts_t *counts);
int stats_partial_write(const stats_partial_t *p, void **buf, size_t *len);
/* The wire form of only the sums of share `share` of nshares, without p's
 * operation counts (they stay with p, so adding the pieces counts them once). */
int stats_partial_write_share(const stats_partial_t *p, size_t share, size_t nshares, void **buf, size_t *len);
/* The same share slot by slot, with no wire form built (MPI ranks send
 * straight from the ciphertexts): an unfinished partial has
 * stats_partial_slots slots; stats_partial_share_slot is slot j's
 * ciphertext when it is set and of share `share` (else NULL), and
 * stats_partial_add_slot adds x, a slot j received for share `share` of
 * nshares, into p's slot j after the checks stats_partial_read makes
 * (degree, primes, scale, every word below its prime; ESCHEMA otherwise). */
size_t stats_partial_slots(const stats_partial_t *p);
const ckks_ciphertext_t *stats_partial_share_slot(const stats_partial_t *p, size_t j, size_t share, size_t nshares);
int stats_partial_add_slot(stats_partial_t *p, size_t j, size_t share, size_t nshares, const ckks_ciphertext_t *x);
/* One of nparts processes sharing a job (MPI ranks) computes the partial
 * sums of its chunks (part, part + nparts, ...) of every table range and
 * hands them to reduce twice:
 * - STATS_REDUCE_SHARES: reduce adds into *mine, from every other process,
 *   the sums of this process's share (packed ciphertext j: process j mod nparts), which
 *   this process then finishes (stats_partial_finish_share);
 * - STATS_REDUCE_FINISHED: reduce gathers the finished shares and sets
 *   *total to them on the process that packs the result and writes it
 *   (elsewhere *total = NULL, and *result stays NULL with *result_len 0).
 * nparts 1 needs no reduce. The writing process's result is byte-identical
 * to one process's. */
typedef enum { STATS_REDUCE_SHARES, STATS_REDUCE_FINISHED } stats_reduce_stage_t;
typedef int (*stats_reduce_fn)(void *arg, stats_reduce_stage_t stage, const ckks_context_t *ctx,
                               stats_partial_t *mine, const stats_enc_table_t *t, stats_job_t job,
                               stats_partial_t **total);
/* stats_compute for one more table of a job, by process part of nparts
 * (reduce as above; NULL for one process): t's totals go into *acc (the
 * job's result so far, NULL for none) by stats_result_merge, in segments;
 * *used carries the rows of *acc's last segment from table to table (0 to
 * begin), and counts (if not NULL) are added to. Only the process that
 * writes the result gets totals in *acc. On failure *acc may hold part of
 * t: discard it. HESTAT_TRACE=1 prints each range's phase times (stderr). */
int stats_compute_more(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job,
                       const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk, size_t part, size_t nparts,
                       stats_reduce_fn reduce, void *arg, stats_enc_result_t **acc, uint64_t *used,
                       stats_counts_t *counts);
int stats_partial_read(const ckks_context_t *ctx, const stats_enc_table_t *t, stats_job_t job, const void *buf,
                       size_t len, stats_partial_t **out);
void stats_partial_free(stats_partial_t *p);
/* Whether a W2 job on t defers its key switching (1) or rotates every chunk
 * (0): both decrypt to the same totals (within the noise; the bytes
 * differ). Deferred: each chunk's rotations are bare automorphisms and its
 * products are kept as two halves (4/3 of the memory per sum), merged with
 * up to four key switches per sum when finishing; taken when the table has
 * enough chunks for the saved rotations to outweigh the merges (14 at 16
 * columns, 54 at 256), or forced by HESTAT_W2_KEYSWITCH=eager|deferred. */
int stats_w2_deferred(const stats_enc_table_t *t, stats_job_t job);
/* Left rotation of a by step with the keys gk holds: its own key when there
 * is one, else the fewest rotations by steps with keys (breadth-first over
 * the slot residues); CKKS_EKEY when none reach it. rotations (may be NULL)
 * counts the rotations made. Returns a CKKS_ status. */
int stats_rotate(const ckks_context_t *ctx, const ckks_galois_keys_t *gk, const ckks_ciphertext_t *a, long step,
                 ckks_ciphertext_t *out, size_t *rotations);
/* Rotation steps the server needs for a layout (for ckks_galois_keys_new,
 * with conjugation). Returns the count written (<= max). */
size_t stats_galois_steps(const stats_layout_t *lay, int *steps, size_t max);
/* The most primes a ciphertext has when the server rotates it by this step
 * of stats_galois_steps, with top data primes: the top for the pairs' baby
 * and giant steps; for the folds (steps >= the layout's block) two, since
 * packed sums are rescaled to two primes before they are folded. */
size_t stats_galois_step_primes(const stats_layout_t *lay, size_t top, int step);
/* Limits the fold keys of gk to stats_galois_step_primes
 * (ckks_galois_keys_limit): 53 % of their bytes at primes of 60, 40, 40, 60
 * bits. Not when the parameters have the primes a glm fit needs (its
 * packing rotates at every level): then a no-op. */
int stats_galois_limit_folds(const ckks_context_t *ctx, const stats_layout_t *lay, ckks_galois_keys_t *gk);
/* The data primes the study's key for Galois element elt serves, as
 * stats_galois_limit_folds leaves it: two for a fold key (when limited),
 * every data prime for the others and for conjugation. Multiparty round-1
 * Galois shares are made at this size (ckks_mp_gkg_share_limited). */
size_t stats_galois_key_primes(const ckks_context_t *ctx, const stats_layout_t *lay, uint32_t elt);
/* The fewest data primes a glm fit needs (its smallest interpolant). */
size_t stats_glm_min_primes(void);
/* Combines partial results of tables with the same layout (several uploads). */
int stats_result_add(stats_enc_result_t *acc, const stats_enc_result_t *other);
/* Segments. The rows one result segment may total (about 2^23 at N = 8192;
 * HESTAT_SEGMENT_ROWS lowers it, for tests). A job's chunks go into
 * segments in order: stats_segment_next gives the end of the chunk range
 * of t from `first` that the current segment (holding *used rows; 0: none
 * yet) can take, or that a fresh one takes (*fresh = 1), its rows (*rows),
 * also added to *used. stats_result_merge puts a range's one-segment result r into
 * *acc (r itself when *acc is NULL): added into its last segment, or as a
 * new segment when fresh. It takes r (freed, or kept as *acc). */
uint64_t stats_segment_rows(const ckks_context_t *ctx, const stats_layout_t *lay);
size_t stats_segment_next(const ckks_context_t *ctx, const stats_enc_table_t *t, size_t first, uint64_t *used,
                          int *fresh, uint64_t *rows);
int stats_result_merge(stats_enc_result_t **acc, stats_enc_result_t *r, int fresh);
void stats_counts_add(stats_counts_t *acc, const stats_counts_t *c);

/* ---- studies and files (io.c) ------------------------------------------------------
 * A study is what an analyst publishes: parameters, the schema (column names
 * and public factors), the public key and the evaluation keys the server
 * needs. It never holds a secret key. Files are sequences of hestat frames
 * (docs/format.md): study = params | schema | public key | relin key | Galois
 * keys; table = table header | 2 x chunks ciphertexts; result = result header |
 * ciphertexts; job = study | job header | tables. Tables and results carry the
 * schema digest (BLAKE2b-256 of the schema frame's payload) of their study. */
enum { STATS_OBJ_SCHEMA = 16, STATS_OBJ_TABLE = 17, STATS_OBJ_RESULT = 18, STATS_OBJ_JOB = 19 };
/* Result header flag (the u32 after the job kind): the result was switched
 * to the analyst's key of a multiparty study (only there). */
#define STATS_RESULT_RELEASED 1u
/* Result header flag, set on every W2 (STATS_JOB_ALL) result and only there:
 * its pair totals are the four product types Q1 .. Q4 (stats/encrypted.c),
 * each product sum's B totals left cyclically shifted by its giant step g b
 * (the client reads column c at (c + g b) mod B). A W2 result without it
 * holds an earlier version's five types, rotated into place, and is refused
 * (its bytes would decrypt to other sums). */
#define STATS_RESULT_PAIRS4 2u

typedef struct stats_study {
    ckks_context_t *ctx; /* owned */
    stats_layout_t layout; /* nrows 0 */
    ckks_public_key_t *pk;
    ckks_relin_key_t *rk;
    ckks_galois_keys_t *gk;
    unsigned char digest[32];
    /* Multiparty studies (parties >= 2; 0: single-key, and none of the rest):
     * the study file holds a multiparty frame after the public key, covered
     * by the digest (see "multiparty studies" below). */
    int parties;
    ckks_public_key_t *analyst_pk; /* results are released to this key */
    unsigned char mp_seed[32];     /* the common reference string's seed */
    int smudge_bits;
    unsigned char draft_digest[32];
} stats_study_t;

/* Builds a study for the schema of `t` (names; factors from its observed
 * ranges) with keys derived from sk. Takes ownership of ctx on success. */
int stats_study_create(ckks_context_t *ctx, const stats_table_t *t, const ckks_secret_key_t *sk,
                       stats_study_t **out);
/* The same with the column factors given (factors[c] for each column of t, a
 * power of two in [1, 2^60]; STATS_ERANGE otherwise): an analyst's declared
 * ranges rather than the schema table's observed ones. */
int stats_study_create_factors(ckks_context_t *ctx, const stats_table_t *t, const ckks_secret_key_t *sk,
                               const double *factors, stats_study_t **out);
/* The same with a disclosure policy (NULL: the default). */
int stats_study_create_policy(ckks_context_t *ctx, const stats_table_t *t, const ckks_secret_key_t *sk,
                              const double *factors, const stats_policy_t *policy, stats_study_t **out);
/* The same with the chunks' slot order: colmajor 1 lays a chunk out column
 * by column (stats_layout_t.colmajor: W2 pairs in half the products), 0 row
 * by row. */
int stats_study_create_layout(ckks_context_t *ctx, const stats_table_t *t, const ckks_secret_key_t *sk,
                              const double *factors, const stats_policy_t *policy, int colmajor,
                              stats_study_t **out);
void stats_study_free(stats_study_t *s);
/* Whether sk is the secret key of this study (the study's public key
 * decrypts to its small error under sk): STATS_OK or STATS_EKEY, with a
 * message, before a wrong key can produce garbage. */
int stats_study_check_key(const stats_study_t *s, const ckks_secret_key_t *sk);
int stats_study_write(const stats_study_t *s, void **buf, size_t *len);
/* Reads a study; *used = bytes consumed (a job file continues after it). */
int stats_study_read(const void *buf, size_t len, stats_study_t **out, size_t *used);

int stats_table_write(const stats_study_t *s, const stats_enc_table_t *t, void **buf, size_t *len);
/* t encrypted with the study's public key straight into f, chunk by chunk:
 * the bytes stats_table_write writes for the same encryption, without the
 * table's ciphertexts in memory. */
int stats_table_write_file(const stats_study_t *s, FILE *f, const stats_table_t *t, const stats_layout_t *lay,
                           double scale, stats_progress_fn progress, void *arg);
/* The same for rows that come a block at a time (stats_csv_next), their
 * count known only at the end: stats_table_writer_begin writes the header
 * with no rows, stats_table_writer_put encrypts and writes a block
 * (rows_per_ct rows of the study's columns; fewer only in the last block),
 * stats_table_writer_end seeks back and writes the count. f must be
 * seekable (a regular file); until the end it holds a table of 0 rows,
 * which every reader refuses. */
typedef struct {
    const stats_study_t *s;
    FILE *f;
    int64_t start;  /* where the header begins in f */
    double scale;
    uint64_t nrows; /* rows written so far */
} stats_table_writer_t;
int stats_table_writer_begin(const stats_study_t *s, FILE *f, double scale, stats_table_writer_t *w);
int stats_table_writer_put(stats_table_writer_t *w, const stats_table_t *block);
/* n blocks at once, encrypted in parallel (stats_threads(n) threads) and
 * written in order: the file stats_table_writer_put would write block by
 * block. Nothing is written unless every block encrypts. */
int stats_table_writer_put_many(stats_table_writer_t *w, const stats_table_t *const *blocks, size_t n);
int stats_table_writer_end(stats_table_writer_t *w);
int stats_table_read(const stats_study_t *s, const void *buf, size_t len, stats_enc_table_t **out,
                     size_t *used);
/* A table in a file (len bytes at offset off of fd), read chunk by chunk:
 * opening checks the header against the study and the frame layout; each
 * chunk's two ciphertexts are read, validated and decoded only when the
 * computation reaches them (stats_chunk_read), so memory holds a few chunks
 * whatever the row count. own: close fd with the table. *used: bytes of
 * the table in the file. */
int stats_table_file_open(const stats_study_t *s, int fd, uint64_t off, uint64_t len, int own,
                          stats_enc_table_t **out, uint64_t *used);
/* Chunk k of a table opened by stats_table_file_open, read from its file
 * into new ciphertexts (the caller frees them). */
int stats_chunk_read(const stats_enc_table_t *t, size_t k, ckks_ciphertext_t **z, ckks_ciphertext_t **m);
/* Asks the kernel to start reading chunk k's bytes (posix_fadvise WILLNEED),
 * so that they arrive while earlier chunks are computed; nothing when the
 * chunk is in memory or k is past the end. */
void stats_chunk_prefetch(const stats_enc_table_t *t, size_t k);
int stats_result_write(const stats_study_t *s, const stats_enc_result_t *r, void **buf, size_t *len);
int stats_result_read(const stats_study_t *s, const void *buf, size_t len, stats_enc_result_t **out);

/* ---- multiparty studies (multiparty.c) ---------------------------------------------
 * N-out-of-N studies after Mouchet et al. (PoPETs 2021; ckks/ "multiparty
 * keys"): K data parties each keep a secret share s_i; the study's keys are
 * the sums of their public shares; a result is re-encrypted for the analyst
 * by a collective public-key switch. Files:
 *   draft    = params | schema | draft frame (K, CRS seed, smudging bits,
 *              the Galois elements) | the analyst's public key;
 *              draft digest = BLAKE2b-256 of those frames as written;
 *   bundle   = bundle header (binding digest, round, party, K, count, result
 *              digest) | count share frames (CKKS_OBJ_MP_SHARE), each share's
 *              tag = BLAKE2b-256(binding digest | round | party (u32) |
 *              result digest), binding = the draft's digest for the key
 *              rounds, the study's for key switching (result digest zero
 *              for key rounds). Round 1: CKG, RKG round 1, one GKG per Galois
 *              element of the draft, in its order; round 2: RKG round 2; key
 *              switch: one PCKS share per result ciphertext. Party 0 = the sum
 *              of all K parties' bundles.
 *   study    = an ordinary study with a multiparty frame (K, seed, smudging
 *              bits, draft digest, the analyst's public key) after its public
 *              key; everything downstream reads it as any study.
 * A released result is an ordinary result with flag STATS_RESULT_RELEASED,
 * decrypted with the analyst's key (stats_study_check_key checks it against
 * analyst_pk). */
#define STATS_MP_SMUDGE_BITS 10 /* default smudging: Gaussian of sd 2^10 per party (docs/multiparty.md) */
#define STATS_MP_MIN_PARTIES 2
#define STATS_MP_MAX_PARTIES 64
#define STATS_MP_MAX_ELTS 80
enum { STATS_OBJ_MP_DRAFT = 20, STATS_OBJ_MP_STUDY = 21, STATS_OBJ_MP_BUNDLE = 22 };
typedef enum { STATS_MP_ROUND1 = 1, STATS_MP_ROUND2 = 2, STATS_MP_KEYSWITCH = 3 } stats_mp_round_t;

typedef struct stats_mp_draft {
    ckks_context_t *ctx; /* owned */
    stats_layout_t layout;
    int parties, smudge_bits;
    unsigned char seed[32];
    ckks_public_key_t *analyst_pk;
    uint32_t elts[STATS_MP_MAX_ELTS]; /* Galois elements: rotations, then conjugation */
    size_t nelts;
    unsigned char digest[32];
} stats_mp_draft_t;

/* A draft for `parties` parties (2..64) from the schema table, factors and
 * policy as stats_study_create_policy takes them, a fresh seed, smudging
 * bits STATS_MP_SMUDGE_BITS and a copy of the analyst's public key. Takes
 * ownership of ctx on success. */
int stats_mp_draft_create(ckks_context_t *ctx, const stats_table_t *t, const double *factors,
                          const stats_policy_t *policy, const ckks_public_key_t *analyst_pk, int parties,
                          stats_mp_draft_t **out);
void stats_mp_draft_free(stats_mp_draft_t *d);
int stats_mp_draft_write(const stats_mp_draft_t *d, void **buf, size_t *len);
/* Validates every frame (a secret key anywhere is refused). */
int stats_mp_draft_read(const void *buf, size_t len, stats_mp_draft_t **out);

typedef struct stats_mp_bundle {
    stats_mp_round_t round;
    int party; /* 1..K, 0: the sum of all K */
    unsigned char result[32]; /* key switch: digest of the result file; zero otherwise */
    size_t count;
    ckks_mp_share_t **shares;
} stats_mp_bundle_t;
void stats_mp_bundle_free(stats_mp_bundle_t *b);
/* A party's round-1 bundle (si its share key, ui its ephemeral key). */
int stats_mp_round1(const stats_mp_draft_t *d, int party, const ckks_secret_key_t *si, const ckks_secret_key_t *ui,
                    void **buf, size_t *len);
/* A party's round-2 bundle from the round-1 sum. */
int stats_mp_round2(const stats_mp_draft_t *d, int party, const ckks_secret_key_t *si, const ckks_secret_key_t *ui,
                    const stats_mp_bundle_t *round1_sum, void **buf, size_t *len);
/* Reads a key-round bundle of the draft: header, every tag, kind, element
 * and shape checked. party: the one it must be from (-1: any of 0..K). */
int stats_mp_read_keys(const stats_mp_draft_t *d, stats_mp_round_t round, int party, const void *buf, size_t len,
                       stats_mp_bundle_t **out);
/* The most bytes a valid file can take (its shares of 64-bit words, the
 * larger form), for a reader to refuse a larger one before loading it: a
 * key-round bundle of the draft; a key-switch bundle of result r; a draft
 * whose file starts with `prefix` (len bytes, at least its parameters frame:
 * 0 when they cannot be read). */
size_t stats_mp_keys_max_bytes(const stats_mp_draft_t *d, stats_mp_round_t round);
size_t stats_mp_keyswitch_max_bytes(const stats_study_t *s, const stats_enc_result_t *r);
size_t stats_mp_draft_max_bytes(const void *prefix, size_t len);
/* acc (NULL: a zero of b's shape first) += b: same round and shape; the sum is party 0. */
int stats_mp_bundle_add(stats_mp_bundle_t **acc, const stats_mp_bundle_t *b);
/* Writes a bundle bound to the draft (key rounds) or the study (key switch). */
int stats_mp_bundle_write(const ckks_context_t *ctx, const unsigned char bind[32], int parties,
                          const stats_mp_bundle_t *b, void **buf, size_t *len);
/* The study from the sums of both key rounds (its digest covers the
 * multiparty frame). */
int stats_mp_study_build(const stats_mp_draft_t *d, const stats_mp_bundle_t *round1_sum,
                         const stats_mp_bundle_t *round2_sum, stats_study_t **out);
/* BLAKE2b-256 of a result file's bytes: what key-switch shares are bound to. */
void stats_mp_result_digest(const void *buf, size_t len, unsigned char out[32]);
/* A party's key-switch bundle for a (not yet released) result of the study. */
int stats_mp_keyswitch(const stats_study_t *s, const stats_enc_result_t *r, const unsigned char rdigest[32],
                       int party, const ckks_secret_key_t *si, void **buf, size_t *len);
int stats_mp_read_keyswitch(const stats_study_t *s, const stats_enc_result_t *r, const unsigned char rdigest[32],
                            int party, const void *buf, size_t len, stats_mp_bundle_t **out);
/* r becomes the result under the analyst's key: every ciphertext switched
 * with the sum of all K key-switch bundles; r->released set. */
int stats_mp_release(const stats_study_t *s, stats_enc_result_t *r, const stats_mp_bundle_t *sum);
/* "2, 5" of the parties 1..K not set in have[1..K] (have[0] unused); the count. */
int stats_mp_missing(const unsigned char *have, int parties, char *out, size_t outlen);

/* ---- incremental readers (uploads) ---------------------------------------------
 * Validate a study or a table of a study as its bytes arrive, holding at most
 * one frame in memory: a bad or foreign header is refused from its first 48
 * bytes, no allocation is sized by an unchecked field, and a complete object
 * has been validated as fully as by stats_study_read / stats_table_read when
 * its last byte arrives (no second read of the file). */
typedef struct stats_stream stats_stream_t;
int stats_stream_study_new(stats_stream_t **out);
int stats_stream_table_new(const stats_study_t *s, stats_stream_t **out);
/* STATS_OK, or the first error (stats_error names it); once failed, every
 * later call returns the same error. */
int stats_stream_feed(stats_stream_t *r, const void *data, size_t len);
/* After the last byte: STATS_OK when exactly one complete object was read.
 * A study stream hands over the parsed study (*study, caller frees); a table
 * stream gives its row count (*nrows). Either pointer may be NULL. */
int stats_stream_finish(stats_stream_t *r, stats_study_t **study, uint64_t *nrows);
void stats_stream_free(stats_stream_t *r);

/* A job: the study, the statistics wanted, and the tables. */
int stats_job_write(const stats_study_t *s, stats_job_t job, const stats_enc_table_t *const *tables,
                    size_t ntables, void **buf, size_t *len);
/* Runs a job file: reads, validates (a secret key anywhere is refused),
 * computes each table, combines, and writes the result file. */
int stats_job_run(const void *job, size_t len, void **result, size_t *result_len,
                  stats_counts_t *counts);
/* A job file (size bytes of fd) run by one of nparts processes (reduce:
 * stats_reduce_fn, with the partials), read as it is used: the study, the header, then every table chunk by chunk
 * (stats_table_file_open, only this process's chunks), so a process holds
 * the study, its partial sums and a few chunks whatever the row count. */
int stats_job_run_file(int fd, uint64_t size, size_t part, size_t nparts, stats_reduce_fn reduce, void *arg,
                       void **result, size_t *result_len, stats_counts_t *counts);

/* ---- client finishing ---------------------------------------------------------- */
typedef struct stats_result {
    size_t ncols;
    stats_moments_t cols[STATS_MAX_COLS];
    long double sumsq[STATS_MAX_COLS]; /* sum of x^2 over present values */
    int have_pairs;
    /* Pairwise arrays, ncols x ncols (index stats_ij), allocated by
     * stats_decrypt for a W2 result (NULL otherwise); stats_result_free. */
    stats_pair_t *pairs;
    /* Raw pairwise sums (i != j), for groups: sum over rows where both are
     * present of x_i x_j, x_i^2 x_j, and count of x_i present with x_j. */
    long double *sxy;
    long double *sxxy;
    long double *sx_mask;  /* sum x_i m_j */
    long double *sxx_mask; /* sum x_i^2 m_j */
    long double *nij;
} stats_result_t;

/* out: zero-initialised, or a result of an earlier stats_decrypt (its
 * arrays are released and replaced). */
int stats_decrypt(const ckks_context_t *ctx, const ckks_secret_key_t *sk,
                  const stats_enc_result_t *r, stats_result_t *out);
/* Releases a result's pairwise arrays (the struct itself is the caller's). */
void stats_result_free(stats_result_t *r);
/* Index of pair (i, j) in a result's pairwise arrays. */
static inline size_t stats_ij(const stats_result_t *r, size_t i, size_t j)
{
    return i * r->ncols + j;
}
/* Moments of column c over rows where the 0/1 column g (no missing values)
 * equals level, from a STATS_JOB_ALL result. */
int stats_group(const stats_result_t *r, size_t g, int level, size_t c, stats_moments_t *m);
/* Count, sum, mean, sample variance and sd from a count, a sum and a sum of squares. */
void stats_moments_from_sums(long double cnt, long double sum, long double sq, stats_moments_t *m);

/* Ordinary least squares y ~ 1 + x_1 + ... + x_k from a result whose columns
 * y and x_j are complete-case copies (stats_add_complete_cases), so every
 * pairwise sum runs over the same rows. */
#define STATS_MAX_REGRESSORS 16
typedef struct {
    size_t k;                                 /* regressors (without the intercept) */
    long double n;                            /* complete cases */
    long double coef[STATS_MAX_REGRESSORS + 1]; /* intercept first */
    long double se[STATS_MAX_REGRESSORS + 1];
    long double r2, sigma;                    /* R^2, residual standard error */
} stats_regression_t;

int stats_regress(const stats_result_t *r, size_t y, const size_t *x, size_t k,
                  stats_regression_t *out);
/* The same from the plaintext table (complete cases of y and x), long double. */
int stats_reference_regress(const stats_table_t *t, size_t y, const size_t *x, size_t k,
                            stats_regression_t *out);

/* ---- tests with p-values (inference.c; GSL's distribution functions) ----------- */
typedef struct {
    long double stat, df, p; /* t or chi-square, degrees of freedom, p-value */
} stats_test_t;

/* Two-sided p-value of Student's t with df degrees of freedom. */
long double stats_t_pvalue(long double t, long double df);
/* Moments of column c over rows where the 0/1 column g equals level, rows
 * with g missing excluded (unlike stats_group, g may have missing values). */
int stats_group_present(const stats_result_t *r, size_t g, int level, size_t c, stats_moments_t *m);
/* Welch and pooled two-sample t-tests of mean(a) - mean(b) (each n >= 2). */
int stats_ttest(const stats_moments_t *a, const stats_moments_t *b, stats_test_t *welch, stats_test_t *pooled);
/* t = r sqrt((n-2)/(1-r^2)), df = n - 2, two-sided p. */
int stats_corr_test(long double r, long double n, stats_test_t *out);
/* Pearson chi-square test of independence of a rows x cols table of counts
 * (row-major); rows or columns with a zero margin are dropped, df = (r-1)(c-1)
 * of what remains (at least 2 x 2, else STATS_EINVAL). */
#define STATS_CHISQ_MAX 64 /* rows and columns of a contingency table at most */
int stats_chisq_test(const long double *counts, size_t rows, size_t cols, stats_test_t *out);

/* ---- reports (report.c) ---------------------------------------------------------
 * decrypted_results.csv: one row per number, columns
 * statistic,variable,group,value — plus plaintext,abs_error,rel_error when a
 * plaintext table is given to compare with. Variables of pairs are "x:y";
 * groups "COL=0" / "COL=1"; group is empty when ungrouped. */
enum {
    STATS_REPORT_MEAN = 1,   /* count, mean */
    STATS_REPORT_VAR = 2,    /* var, sd */
    STATS_REPORT_CORR = 4,   /* cov, corr for every pair */
    STATS_REPORT_SUM = 8     /* sum */
};
typedef struct {
    double mean_rel, sd_rel, corr_abs, group_mean_rel; /* worst, non-degenerate values */
} stats_report_errors_t;

int stats_write_report(const char *path, const stats_result_t *r, const stats_layout_t *lay,
                       unsigned what, const int *groups, size_t ngroups,
                       const stats_table_t *compare, stats_report_errors_t *worst);

/* ---- quantiles and shape (quantile.c; the method in its comment) -----------------
 * quantile:COL:p1,p2,... (keygen adds D x D bins of COL's schema range as 2 D
 * one-hot digit columns "COL q[LO:HI]/DxD hi=a" / "lo=b"); moments:COL (adds
 * "(COL-C)^2" twice, C a public centre: skewness and kurtosis from third and
 * fourth power sums). */
#define STATS_QUANTILE_DIGITS 8 /* 64 bins */
/* Joins a quantile's probabilities into its token: "quantile:X:0.25,0.5,mean"
 * becomes "quantile:X:0.25;0.5,mean" (so a spec still splits at commas). */
void stats_spec_join(char *spec);
int stats_quantile_probs(const char *list, double *p, size_t max, size_t *n);
/* Keygen (spec.c): the smallest power of two >= x (stopping above 2^60), and
 * the factors of the study's columns t (raw derived with a spec) from the
 * raw columns' own, rawf: a derived copy takes its source's, 0/1 indicators
 * and bins 1, moments:' (COL-C)^2 columns their own from the declared range
 * (range_lo/range_hi by raw column, NaN or NULL when undeclared) or headroom
 * times the largest deviation, xlogx:Y one bounding y log y. */
double stats_pow2_at_least(double x);
void stats_study_factors(const stats_table_t *raw, const double *rawf, const double *range_lo, const double *range_hi,
                         double headroom, const stats_table_t *t, double *f);
/* Keygen: append the derived columns of quantile:ARG / moments:COL to *t. */
int stats_spec_quantile(const stats_table_t *raw, stats_table_t **t, const char *arg, char *err, size_t errlen);
int stats_spec_moments(const stats_table_t *raw, stats_table_t **t, const char *col, char *err, size_t errlen);
/* Whether name is "(COL-C)^2" (1) or its copy "(COL-C)^2 again" (2) for a
 * column COL of src (any COL when src is NULL): COL (STATS_NAME_MAX bytes), C. */
int stats_centred_square(const stats_table_t *src, const char *name, char *col, double *centre);
/* Fills column c of t when `name` is a quantile bin or a "(COL-C)^2" column, from
 * the table src that holds COL: 1 done, 0 not such a name, < 0 error. */
int stats_derive_extra(const stats_table_t *src, const char *name, stats_table_t *t, size_t c);
typedef struct {
    double lo, hi, width;
    size_t bins;
    long double n, counts[256];
} stats_bins_t;
/* The decrypted bin counts of COL (STATS_EINVAL: the study has no bins of COL). */
int stats_quantile_bins(const stats_result_t *r, const stats_layout_t *lay, const char *col, stats_bins_t *out);
/* R's type-7 quantile read from the bins (error below the bin width); the
 * bins of the two order statistics it is read from. */
long double stats_quantile_from_bins(const stats_bins_t *b, double p, size_t *bin_a, size_t *bin_b);
/* R's type-7 quantile of the plaintext column (long double). */
long double stats_reference_quantile(const stats_table_t *t, size_t c, double p);
typedef struct {
    long double n, skewness, kurtosis; /* m3 / m2^1.5, m4 / m2^2 (moments::skewness, moments::kurtosis) */
} stats_shape_t;
/* From a result with COL (index c), "(COL-C)^2" (c2) and its copy (c3), C = centre. */
int stats_shape(const stats_result_t *r, size_t c, size_t c2, size_t c3, double centre, stats_shape_t *out);
int stats_reference_shape(const stats_table_t *t, size_t c, stats_shape_t *out);

/* ---- disclosure control in reports (disclosure.c; rules in its comment) ---------
 * Each returns NULL when the value may be released, else the rule that
 * suppresses it ("min_cell" or "min_n_per_param"). */
int stats_policy_small(const stats_policy_t *p, long double count); /* 0 < count < min_cell */
const char *stats_policy_model(const stats_policy_t *p, long double n, size_t params);
const char *stats_policy_column(const stats_layout_t *lay, const stats_result_t *r, size_t c);
const char *stats_policy_pair(const stats_layout_t *lay, const stats_result_t *r, size_t a, size_t b);
/* Column c's moments m within a group. */
const char *stats_policy_group(const stats_layout_t *lay, const stats_result_t *r, size_t c,
                               const stats_moments_t *m);
/* The report's opening rows: the policy in force. */
void stats_policy_rows(FILE *f, const stats_policy_t *p, int compare);
/* A suppressed value: its row with NA, then suppressed:<stat>:<rule>,var,group,threshold. */
void stats_suppressed_row(FILE *f, const stats_policy_t *p, const char *rule, const char *stat, const char *var,
                          const char *group, int compare, long double want);
/* report_rows.c: one report row, statistic,variable,group,value, plus
 * plaintext,abs_error,rel_error when compare is set; stats_report_value
 * writes NA and the reason instead when why (a policy rule) is set. */
void stats_report_row(FILE *f, const char *stat, const char *var, const char *group, long double v, int compare,
                      long double want);
void stats_report_value(FILE *f, const stats_layout_t *lay, const char *why, const char *stat, const char *var,
                        const char *group, long double v, int compare, long double want);
/* The rows of the spec token quantile:COL:p,... or moments:COL (other tokens
 * are ignored) from a result of STATS_JOB_ALL; cmp, the plaintext table
 * derived like the study's (may be NULL). STATS_EINVAL with the reason in
 * err when the study or the result cannot give them. */
int stats_shape_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                     const stats_table_t *cmp, char *err, size_t errlen);

/* ---- generalised linear models (glm.c) --------------------------------------------
 * glm:Y~X1+X2:binomial|poisson, fitted by Newton's method with the analyst in
 * the loop: each round the server evaluates, on the ciphertexts, O(k^2) totals
 * at public coefficients (stats_glm_round); the analyst decrypts them
 * (stats_glm_decrypt) and steps (stats_glm_fit). Columns are the study's
 * complete-case copies "cc:Y", "cc:Xj"; coefficients in a round are on the
 * scaled columns x/f (gamma_j = beta_j f_j). */
/* The parameters keygen picks for glm: N = 16384 with 60 + 9 x 35 + 60 =
 * 435 bits (the 128-bit bound is 438): 10 data primes, 9 rescales (pack,
 * eta, 6 for a degree-63 polynomial, the products). */
#define STATS_GLM_N 16384
#define STATS_GLM_NBITS 11
#define STATS_GLM_COEFF_BITS "60,35,35,35,35,35,35,35,35,35,60"
extern const int stats_glm_bits[STATS_GLM_NBITS];
typedef enum { STATS_GLM_BINOMIAL = 1, STATS_GLM_POISSON = 2 } stats_glm_family_t;
typedef struct {
    stats_glm_family_t family;
    size_t k, y, x[STATS_MAX_REGRESSORS];          /* layout columns */
    size_t ylogy; int have_ylogy;                  /* Poisson: "xlogx:Y" (y log y), for the deviance */
    char name[256];                                /* "Y~X1+X2:binomial" */
    char terms[STATS_MAX_REGRESSORS + 1][STATS_NAME_MAX]; /* Y, X1, ... */
} stats_glm_model_t;
/* Parses "Y~X1+X2:family"; with a layout, finds the cc: columns (errors in err). */
int stats_glm_parse(const char *spec, const stats_layout_t *lay, stats_glm_model_t *m, char *err, size_t errlen);
/* "xlogx:Y" = y log y (0 at 0, missing where cc:Y is): the saturated part of
 * the Poisson deviance, a column the contributors derive like "cc:Y". */
int stats_glm_add_xlogx(const stats_table_t *t, const char *y, stats_table_t **out);
double stats_xlogx(double x);
/* The model's columns exist in the raw table; Y is 0/1 (binomial) or >= 0 (Poisson). */
int stats_glm_spec_check(const stats_table_t *raw, const char *spec, char *err, size_t errlen);
typedef struct {
    double gamma[STATS_MAX_REGRESSORS + 1];        /* intercept first, scaled columns */
    double lo[STATS_MAX_REGRESSORS + 1], hi[STATS_MAX_REGRESSORS + 1]; /* scaled ranges of X1.. (index 1..k) */
    unsigned degree;                               /* largest degree (0: 63) */
    double tol;                                    /* mu's polynomial error bound (0: 1e-10) */
    int deviance;                                  /* also sum softplus(eta) (binomial) */
} stats_glm_point_t;
/* A round's result: count samples, each the two totals a ciphertext's slots
 * add up to (real and imaginary parts), as c0's coefficients 0 and N/2 and
 * all of c1 modulo the first prime q; no other coefficient, so no slot, can
 * be decrypted from it. */
typedef struct {
    size_t count, n;
    uint64_t q;
    double *scale; /* count */
    uint64_t *b;   /* 2 count: c0 at X^0 and at X^(N/2) */
    uint64_t *a;   /* count n: c1's coefficients */
} stats_glm_enc_t;
void stats_glm_enc_free(stats_glm_enc_t *e);
/* The transfer frame ("HSTGLMR2"); the reader checks every field against ctx. */
int stats_glm_enc_write(const stats_glm_enc_t *e, void **out, size_t *len);
int stats_glm_enc_read(const ckks_context_t *ctx, const void *buf, size_t len, stats_glm_enc_t **out);
int stats_glm_round(const ckks_context_t *ctx, const stats_enc_table_t *const *tables, size_t ntables,
                    const stats_glm_model_t *m, const stats_glm_point_t *pt, const ckks_relin_key_t *rk,
                    const ckks_galois_keys_t *gk, stats_glm_enc_t **out, stats_counts_t *counts);
/* The same in two steps: the round-independent data side of every chunk
 * (column products, masks) once, then rounds at any coefficients. */
typedef struct stats_glm_prep stats_glm_prep_t;
int stats_glm_prepare(const ckks_context_t *ctx, const stats_enc_table_t *const *tables, size_t ntables,
                      const stats_glm_model_t *m, const ckks_relin_key_t *rk, const ckks_galois_keys_t *gk,
                      stats_glm_prep_t **out, stats_counts_t *counts);
int stats_glm_round_prepared(stats_glm_prep_t *p, const stats_glm_point_t *pt, stats_glm_enc_t **out,
                             stats_counts_t *counts);
void stats_glm_prep_free(stats_glm_prep_t *p);
/* Decrypted totals of a round, on the scaled columns (y in its own units). */
typedef struct {
    size_t k;
    long double n, sy, smu, ssp;                   /* ssp: sum softplus(eta), NaN unless asked */
    long double sylogy;                            /* sum y log y (Poisson with xlogx:Y), else NaN */
    long double sx[STATS_MAX_REGRESSORS + 1], syx[STATS_MAX_REGRESSORS + 1], smux[STATS_MAX_REGRESSORS + 1];
    long double info[STATS_MAX_REGRESSORS + 1][STATS_MAX_REGRESSORS + 1];
    long double approx_err, w_approx_err;          /* measured error of mu's and W's polynomials */
    long double eta_lo, eta_hi;                    /* their range */
} stats_glm_totals_t;
int stats_glm_decrypt(const ckks_context_t *ctx, const ckks_secret_key_t *sk, const stats_layout_t *lay,
                      const stats_glm_model_t *m, const stats_glm_point_t *pt, const stats_glm_enc_t *e,
                      stats_glm_totals_t *out);
typedef int (*stats_glm_round_fn)(void *arg, const stats_glm_model_t *m, const stats_glm_point_t *pt,
                                  stats_glm_totals_t *out);
typedef struct {
    unsigned rounds;
    int converged;
    long double n, deviance, max_abs_score, decrement, approx_err, last_approx_err, poisson_partial;
    long double coef[STATS_MAX_REGRESSORS + 1], se[STATS_MAX_REGRESSORS + 1];
    long double z[STATS_MAX_REGRESSORS + 1], p[STATS_MAX_REGRESSORS + 1];
} stats_glm_fit_t;
/* Newton's method from 0 (Poisson: from the intercept-only fit) until the
 * Newton decrement is below 1e-9, at most max_rounds (0: 8) rounds; lo/hi:
 * the regressors' ranges in their own units (index 1..k). */
int stats_glm_fit(const stats_layout_t *lay, const stats_glm_model_t *m, const double *lo, const double *hi,
                  unsigned max_rounds, stats_glm_round_fn round, void *arg, stats_glm_fit_t *out);
/* The same model by IRLS in long double on the plaintext complete cases. */
int stats_reference_glm(const stats_table_t *t, const stats_glm_model_t *m, stats_glm_fit_t *out);
/* What the rounds of a fit in this process cost (report_rows.c). */
typedef struct {
    double server_s, max_round_s;   /* seconds of the server's side, all rounds and the slowest */
    size_t download;                /* bytes of the rounds' encrypted totals */
    stats_counts_t counts;
} stats_glm_cost_t;
/* Fits glm:SPEC ("Y~X1+X2:family") of the study on the encrypted table e
 * and writes its rows to f (report_rows.c's comment): rounds by round(arg),
 * or, round NULL, in this process (the server's code with the study's keys,
 * the totals decrypted with sk; cost filled). t: the analyst's plaintext
 * table derived like the study's, for the regressors' ranges and, with
 * compare, the reference fit. STATS_EINVAL when SPEC is not a model of the
 * study, or the fit's error; the reason in err either way. */
int stats_glm_rows(FILE *f, const char *spec, const stats_study_t *s, const ckks_secret_key_t *sk,
                   const stats_enc_table_t *e, const stats_table_t *t, int compare, stats_glm_round_fn round,
                   void *arg, stats_glm_fit_t *fit, stats_glm_cost_t *cost, char *err, size_t errlen);

/* Threads for work over n independent pieces (chunks, groups): HESTAT_THREADS,
 * else OMP_NUM_THREADS, else every processor; at most n (at least 1, at most 64). */
size_t stats_threads(size_t n);

/* Last error text for STATS_ECSV / STATS_ECKKS (thread-local). */
const char *stats_error(void);

#ifdef __cplusplus
}
#endif
#endif /* HESTAT_STATS_H */
