/* hestat-server's multiparty side (apps/server/mp.c: files; mp_http.c: the
 * HTTP endpoints): sums of the parties' share bundles, the study built from
 * them, results released to the analyst's key. The server holds no secret:
 * it only adds public shares. */
#ifndef HESTAT_SERVER_MP_H
#define HESTAT_SERVER_MP_H

#include <stddef.h>

#include "stats/stats.h"

#define SRV_MP_MAX_FILE ((size_t)1 << 32)

/* A draft file, parsed (message in err). */
int srv_mp_load_draft(const char *path, stats_mp_draft_t **d, char *err, size_t errlen);
/* The sum of one bundle per party 1..K (files in any order): a missing or a
 * duplicated party, a bundle of another draft, round or result is an error
 * naming it. Key rounds: draft set; key switch: study, result and its digest set. */
int srv_mp_sum_files(const stats_mp_draft_t *d, const stats_study_t *s, const stats_enc_result_t *r,
                     const unsigned char *rdigest, stats_mp_round_t round, const char *const *paths, size_t n,
                     stats_mp_bundle_t **sum, char *err, size_t errlen);
/* The study file from the round-1 sum file and the K round-2 files. */
int srv_mp_study(const stats_mp_draft_t *d, const char *round1_sum, const char *const *round2, size_t n,
                 void **study, size_t *len, char *err, size_t errlen);
/* The released result file from a result file and the K key-switch files. */
int srv_mp_release(const stats_study_t *s, const char *result, const char *const *shares, size_t n, void **out,
                   size_t *len, char *err, size_t errlen);

/* hestat-server mp-combine and mp-release (argv as main's). */
int srv_mp_combine_main(int argc, char **argv);
int srv_mp_release_main(int argc, char **argv);

#endif
