/* hestat-client, split by job (apps/hestat-client.c is the command line):
 *   client_util.c     messages, files (secret buffers wiped), directories, CSV
 *   client_guard.c    what may leave this machine: uploads walked frame by frame
 *                     (a secret key is refused before any connection), the token
 *   client_keygen.c   keys and the study: declared ranges, headroom, --force
 *   client_encrypt.c  a CSV into an encrypted table, a block of rows at a time
 *   client_decrypt.c  results to decrypted_results.csv, written whole or not at all
 *   client_http.c     submit and fetch over HTTP, retrying 503 with a bound
 * Every function returns 0 or the program's exit status (1 error, 2 usage)
 * after printing one line on standard error. */
#ifndef HESTAT_CLIENT_H
#define HESTAT_CLIENT_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "stats/stats.h"

#define CLIENT_MAX_FILE ((size_t)1 << 34)
#define CLIENT_TOKEN_MAX 4096 /* characters of a bearer token */
#define CLIENT_RETRIES 5      /* default retries of a request answered 503 */
#define CLIENT_RETRY_BUDGET_S 60 /* at most this many seconds of waiting per request */
#define CLIENT_MAX_RANGES STATS_MAX_COLS

typedef struct {
    char column[STATS_NAME_MAX];
    double lo, hi;
} client_range_t;

typedef struct {
    const char *cmd, *out, *in, *keys, *study, *schema, *csv, *compare, *stats, *coeff_bits;
    const char *server, *token_file, *study_id, *cacert;
    const char *html; /* decrypt --html FILE: the report as a page too */
    const char *add_rows; /* decrypt --add-rows FILE: another report's rows (e.g. hestat-client glm's) appended */
    const char *draft, *round1, *job; /* multiparty: --draft, --round1 SUM, --job JOB */
    int parties, party, round;        /* --parties K, --party I, --round 1|2 (HTTP) */
    int print, force;
    int retries;     /* --retries N: 503 answers retried (default CLIENT_RETRIES) */
    double headroom; /* --headroom X: factor >= X * max |observed| (default 2) */
    double wait;     /* --wait S (health): seconds to keep trying */
    long min_cell;          /* --min-cell N (keygen): -1 unset, the default policy */
    double min_n_per_param; /* --min-n-per-param X (keygen): NAN unset */
    int colmajor;           /* --layout columns (keygen): 1; rows (the default): 0 */
    client_range_t ranges[CLIENT_MAX_RANGES];
    size_t nranges;
    const char *groups[STATS_MAX_COLS];
    size_t ngroups, rows, n, cols;
    unsigned long long seed;
    const char *pos[256];
    size_t npos;
} client_opts_t;

/* ---- client_util.c ---- */
int client_fail(const char *what, const char *detail);
int client_usage_error(const char *msg, const char *arg);
int client_stats_fail(const char *what, int rc);
/* Whole file (NULL after a message). */
void *client_load(const char *path, size_t *len);
/* A study file, parsed (1 after a message). */
int client_load_study(const char *path, stats_study_t **s);
/* Writes buf atomically with mode, then frees it; client_save_secret wipes
 * it first (serialized secret keys). */
int client_save(const char *path, void *buf, size_t len, int mode);
int client_save_secret(const char *path, void *buf, size_t len);
/* An output written whole or not at all: client_out_open makes a temporary
 * file next to path (mode 0644) to write to; client_out_close flushes,
 * fsyncs and renames it over path when ok (0, or 1 after saying what
 * failed), else removes it (1, silently: the caller has said why). */
typedef struct {
    FILE *f;
    const char *path;
    char tmp[4096];
} client_out_t;
int client_out_open(client_out_t *o, const char *path);
int client_out_close(client_out_t *o, int ok);
/* Wipes and frees the image of a secret (NULL is fine). */
void client_free_secret(void *buf, size_t len);
/* mkdir -p with mkdir(2): every missing component created with mode. */
int client_mkdirs(const char *path, mode_t mode);
/* A CSV table; lines (may be NULL) receives each row's line in the file. */
int client_read_csv(const char *path, stats_table_t **t, size_t **lines);
/* The message of a failed CSV read (err: its text, may be empty). */
int client_csv_fail(int rc, const char *err);
/* Progress bar on standard error (only on a terminal); arg is its label. */
void client_bar(void *arg, size_t done, size_t total);
int client_make_context(const client_opts_t *o, ckks_context_t **ctx);

/* ---- client_guard.c ---- */
typedef enum { CLIENT_UPLOAD_STUDY, CLIENT_UPLOAD_TABLE, CLIENT_UPLOAD_BUNDLE } client_upload_t; /* a draft is a STUDY */
/* Walks the file's hestat frames by their 48-byte headers (payloads are
 * skipped, never read): refuses a secret key anywhere, anything that is not
 * a sequence of whole hestat frames (a SEAL file, text, a truncated file), and
 * a file whose first frame is not what `kind` starts with. */
int client_check_upload(const char *path, client_upload_t kind);
/* The bearer token: the file's one line (a final LF or CRLF allowed), at
 * most CLIENT_TOKEN_MAX printable ASCII characters (longer is refused, never
 * cut); a file readable by group or others is refused, as the server does.
 * *token is NULL when path is NULL. Held in guarded memory; free with
 * client_token_free, which wipes it. */
int client_token_read(const char *path, char **token);
void client_token_free(char *token);

/* ---- client_encrypt.c ---- */
/* The CSV encrypted for the study into out (written whole or not at all). */
int client_encrypt(const char *study_path, const char *csv, const char *out);

/* ---- client_keygen.c ---- */
/* "COL:LO:HI" (COL may itself hold colons). */
int client_parse_range(const char *arg, client_range_t *r);
/* Whether DIR holds secret.key or study.hst (1, after saying so). */
int client_keys_exist(const char *dir);
/* DIR/secret.key (0600) and DIR/study.hst from the schema CSV; refuses a DIR
 * that already holds either unless o->force. */
int client_keygen(const client_opts_t *o, const char *schema_csv, const char *dir);
/* The study's table from the schema CSV (derived columns of --stats added)
 * and its column factors (--range, --headroom), as keygen makes them. */
int client_schema(const client_opts_t *o, const char *csv, stats_table_t **t, double *factors);
/* The disclosure policy of --min-cell and --min-n-per-param. */
stats_policy_t client_policy(const client_opts_t *o);

/* ---- client_mp.c: multiparty studies (files; over HTTP with --server) ---- */
int client_mp_draft(const client_opts_t *o);
int client_mp_keygen(const client_opts_t *o);
int client_mp_share(const client_opts_t *o);
int client_mp_status(const client_opts_t *o);
int client_mp_job(const client_opts_t *o);
int client_mp_release(const client_opts_t *o);

/* ---- client_show.c ---- */
/* Prints a study's columns, factors, disclosure policy and digest. */
int client_show(const char *study_path);

/* ---- client_decrypt.c ---- */
int client_decrypt(const client_opts_t *o, const char *keys, const char *in, const char *out,
                   const char *compare, stats_report_errors_t *worst);

/* ---- client_html.c ---- */
/* FILE: one self-contained HTML page (Chart.js inlined) of the report's rows
 * (csv, the bytes of decrypted_results.csv) and the study's parameters;
 * compare: the plaintext table's name, or NULL. */
int client_write_html(const char *path, const char *csv, size_t csvlen, const stats_study_t *s, const char *compare);

/* ---- client_glm.c ---- */
/* Whether --stats asks for a glm: model. */
int client_glm_wanted(const char *stats);
/* keygen's default parameters become STATS_GLM_N, STATS_GLM_COEFF_BITS for glm: (10 data primes). */
void client_glm_params(client_opts_t *o);
/* Fits each glm: of --stats on the encrypted table (the server's code in
 * this process) and appends its rows to the report. */
int client_glm_run(const client_opts_t *o, const char *keys, const char *table, const char *csv, const char *report,
                   int compare);
/* The same with the rounds on a server (POST /studies/ID/jobs?stats=glm&...):
 * only the encrypted totals of each round come back. */
int client_glm_run_http(const client_opts_t *o, const char *keys, const char *table, const char *csv,
                        const char *report, int compare, const char *server, const char *token, const char *study_id);

/* ---- client_http.c ---- */
void client_http_retries(int retries);
int client_submit(const char *server, const char *token, const char *study_path, const char *study_id_in,
                  const char *const *tables, size_t n, char *study_id, size_t idlen);
/* GET /health until it answers 200 or wait_s seconds have passed (one try
 * when 0): 0 ok (prints "ok"), 1 with the last error. */
int client_health(const char *server, double wait_s);
int client_fetch(const char *server, const char *token, const char *study_id, const char *stats,
                 const char *out);
/* POST /studies/ID/jobs?QUERY, waits for the job, downloads its result to out. */
int client_job(const char *server, const char *token, const char *study_id, const char *query, const char *out,
               int progress);
/* The same, the job's ID copied to job_id (at least 64 bytes; may be NULL). */
int client_job_id(const char *server, const char *token, const char *study_id, const char *query, const char *out,
                  int progress, char *job_id);
/* One request, 503 retried: 0 when answered `want` (the body parsed into
 * *json when json is set, or written to out), else 1 after printing the
 * server's error. */
struct json_t;
int client_call(const char *method, const char *url, const char *token, const char *upload, const char *out,
                long want, struct json_t **json);

/* client_inference.c: the rows of ttest:COL:G, table:A:B or corrtest:X:Y
 * (0, or 1 after printing why; other statistics are ignored). */
int client_test_rows(FILE *f, const char *tok, const stats_layout_t *lay, const stats_result_t *res,
                     const stats_table_t *cmp);

/* To move to stats/stats.h:
 * stats/report.c: the report's rows to an open stream (stats_write_report
 * writes them to a file atomically). */
int stats_write_report_to(FILE *f, const stats_result_t *r, const stats_layout_t *lay, unsigned what,
                          const int *groups, size_t ngroups, const stats_table_t *compare,
                          stats_report_errors_t *worst);
/* stats/table.c: a name as one CSV field (quoted when it needs to be). */
int stats_csv_name(FILE *f, const char *name);

#endif
