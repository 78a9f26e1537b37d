/* stats/ internal: what io.c (studies, tables, results) and multiparty.c
 * (drafts, share bundles) share. Not part of the public header. */
#ifndef HESTAT_STATS_IO_IMPL_H
#define HESTAT_STATS_IO_IMPL_H

#include "stats/stats.h"

void stats_set_error(const char *fmt, ...);
/* A growing byte buffer for writers: the first failure sticks in err and
 * later appends do nothing; finish hands the bytes over (or frees them and
 * returns err). put_frame appends what a ckks writer made (rc its status)
 * and frees it. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    int err;
} stats_buf_t;
void stats_buf_put(stats_buf_t *b, const void *src, size_t n);
void stats_buf_put_frame(stats_buf_t *b, int rc, void *frame, size_t len);
int stats_buf_finish(stats_buf_t *b, void **out, size_t *len);
/* The schema frame's payload (malloc'd) and its reader (STATS_ESCHEMA for
 * any field out of range). */
int stats_schema_payload(const stats_layout_t *lay, void **out, size_t *len);
int stats_schema_parse(const ckks_context_t *ctx, const uint8_t *p, size_t plen, stats_layout_t *lay);
/* A study's layout from the schema table, factors (NULL: observed) and
 * policy (NULL: default), every field checked as the reader will. */
int stats_study_layout(const ckks_context_t *ctx, const stats_table_t *t, const double *factors,
                       const stats_policy_t *policy, stats_layout_t *lay);
/* The multiparty frame of a study (STATS_OBJ_MP_STUDY): payload, parser
 * (fills the study's multiparty fields) and the most bytes it may hold. */
int stats_mp_frame_payload(const stats_study_t *s, void **out, size_t *len);
int stats_mp_frame_parse(stats_study_t *s, const uint8_t *p, size_t plen);
uint64_t stats_mp_frame_max(const ckks_context_t *ctx);
/* Galois elements of a layout: rotations of stats_galois_steps, then
 * conjugation (distinct). Returns the count (<= max). */
size_t stats_galois_elts(const ckks_context_t *ctx, const stats_layout_t *lay, uint32_t *elts, size_t max);
/* A copy of a public key (through its serialized form). */
int stats_public_key_copy(const ckks_context_t *ctx, const ckks_public_key_t *pk, ckks_public_key_t **out);

#endif
