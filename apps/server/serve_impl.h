/*
 * hestat-server serve, internal: the pieces the HTTP front end (serve.c)
 * puts together. Each lives in its own file:
 *
 *   spool.c        paths, fsync, start-up cleanup, tree removal without a shell
 *   secrets.c      token and TLS files: read once, exact size, wiped
 *   study_cache.c  one parsed copy of each study, shared by uploads and jobs
 *   jobs.c         job states (memory first, disk when it can), queue, workers
 *   offload.c      threads for blocking work, so HTTP threads never wait on it
 *   conn_guard.c   the header deadline (not reset by each byte)
 *   upload.c       uploads validated and hashed as they stream to the spool
 *
 * Every name here starts with srv_: this code is linked into every program.
 */
#ifndef HESTAT_SERVE_IMPL_H
#define HESTAT_SERVE_IMPL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "apps/server/serve.h"
#include "stats/stats.h"

#define SRV_ID_LEN 32
#define SRV_PATH_MAX 4096
#define SRV_TOKEN_MAX 4096 /* characters */

/* ---- spool.c ---------------------------------------------------------------- */
int srv_valid_id(const char *s, size_t len);
void srv_new_id(char out[SRV_ID_LEN + 1]);
/* spool/a/b/c with the parts that are not NULL; -1 when it does not fit. */
int srv_path(char *out, size_t n, const char *spool, const char *a, const char *b, const char *c);
int srv_fsync_dir(const char *dir);
/* A table file of the study, mapped (the pages stay the kernel's file cache) and read (jobs.c). */
int srv_read_table(const stats_study_t *study, const char *path, stats_enc_table_t **t);
/* write() until done (EINTR retried); 0 or -1 with errno. */
int srv_write_all(int fd, const void *buf, size_t len);
/* Removes a tree bottom-up with nftw(FTW_DEPTH | FTW_PHYS | FTW_MOUNT):
 * symbolic links are removed, never followed; no shell. 0 or -1 (errno). */
int srv_remove_tree(const char *path);
/* Start-up: empties spool/tmp (uploads and studies a kill -9 left half
 * made), removes *.tmp.XXXXXX files of interrupted atomic writes and
 * duplicate-upload markers whose table never landed. Returns the count. */
size_t srv_spool_clean(const char *spool);

/* ---- secrets.c ----------------------------------------------------------------- */
/* Reads a whole file into sodium_malloc'd memory of its exact size + 1 (a
 * NUL after it): nothing is ever copied or reallocated, srv_secret_free
 * wipes it. private_only refuses a file that group or others may read. */
typedef struct {
    char *data;
    size_t len;
} srv_secret_t;
int srv_secret_read(const char *path, size_t max, int private_only, srv_secret_t *out, char *err, size_t errlen);
void srv_secret_free(srv_secret_t *s);
/* The token: the file's first line, without its line ending; empty, longer
 * than SRV_TOKEN_MAX or with more lines is refused (never truncated). */
int srv_token_read(const char *path, srv_secret_t *out, char *err, size_t errlen);

/* ---- study_cache.c --------------------------------------------------------------- */
typedef struct srv_cached srv_cached_t;
typedef struct {
    pthread_mutex_t lock;
    pthread_mutex_t parse; /* one study parsed from the spool at a time: bounded memory */
    pthread_cond_t loaded;
    srv_cached_t *head;
    size_t count, cap;
    uint64_t clock;
} srv_cache_t;
void srv_cache_init(srv_cache_t *c, size_t cap);
void srv_cache_destroy(srv_cache_t *c);
/* The parsed study of id (loaded from the spool at most once at a time;
 * other callers wait for it). NULL with a message when it cannot be read. */
srv_cached_t *srv_cache_get(srv_cache_t *c, const char *spool, const char *id, char *err, size_t errlen);
/* The same, only if it is parsed already (never blocks): NULL otherwise. */
srv_cached_t *srv_cache_peek(srv_cache_t *c, const char *id);
const stats_study_t *srv_cached_study(const srv_cached_t *e);
void srv_cache_release(srv_cache_t *c, srv_cached_t *e);
/* Hands a study just uploaded to the cache (it owns it then). */
void srv_cache_put(srv_cache_t *c, const char *id, stats_study_t *study);
/* A deleted study: dropped now, or when its last user releases it. */
void srv_cache_forget(srv_cache_t *c, const char *id);

/* ---- offload.c ------------------------------------------------------------------- */
typedef struct srv_task {
    void (*run)(struct srv_task *t);
    struct srv_task *next;
} srv_task_t;
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t work, idle;
    srv_task_t *head, *tail;
    size_t pending; /* reserved + queued + running */
    int closed, nthreads;
    pthread_t *threads;
} srv_offload_t;
int srv_offload_start(srv_offload_t *o, int nthreads);
/* A slot for one task, taken before a connection is suspended so that
 * submitting cannot fail; 0 once the server is stopping. */
int srv_offload_reserve(srv_offload_t *o);
void srv_offload_submit(srv_offload_t *o, srv_task_t *t);
/* Refuses new reservations, waits for every task, joins the threads. */
void srv_offload_stop(srv_offload_t *o);

/* ---- conn_guard.c ----------------------------------------------------------------- */
typedef struct srv_conn srv_conn_t;
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    srv_conn_t *head;
    double header_timeout; /* seconds */
    int stop;
    pthread_t reaper;
    atomic_ulong reaped;
} srv_guard_t;
int srv_guard_start(srv_guard_t *g, int header_timeout);
void srv_guard_stop(srv_guard_t *g);
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls: the guard). */
void srv_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);
/* The access handler's first call: the headers are in. */
void srv_guard_request_started(srv_guard_t *g, struct MHD_Connection *c);
/* A request completed: the next one on a kept-alive connection gets its
 * own deadline. */
void srv_guard_request_done(srv_guard_t *g, struct MHD_Connection *c);

/* ---- jobs.c --------------------------------------------------------------------------- */
typedef struct srv_job srv_job_t;
typedef struct srv_jobs srv_jobs_t;
int srv_jobs_start(srv_jobs_t **out, const char *spool, srv_cache_t *cache, int workers, size_t queue_max);
/* Jobs (not glm rounds) run through this launcher: its words (split at
 * blanks, at most SRV_LAUNCHER_ARGS) then this program's `compute JOBFILE
 * --out RESULT` (e.g. 'mpirun -n 4 --hostfile hosts'). Before any job. */
#define SRV_LAUNCHER_ARGS 32
void srv_jobs_set_launcher(srv_jobs_t *j, const char *launcher);
/* A launched job running past `seconds` (0: no limit) is stopped (its
 * process group: SIGTERM, then SIGKILL 2 s later) and fails with the reason. */
void srv_jobs_set_launch_timeout(srv_jobs_t *j, long seconds);
/* Queued and running jobs of a previous run, queued again (never limited
 * by queue_max); unreadable states are marked failed. Returns the count. */
size_t srv_jobs_recover(srv_jobs_t *j);
/* A new job: 0, or 503 when queue_max jobs wait already. */
/* glm: a checked request line (srv_glm_line) for a glm round, else NULL. */
int srv_jobs_submit(srv_jobs_t *j, const char *study, stats_job_t kind, const char *glm,
                    char id_out[SRV_ID_LEN + 1]);
/* {"job","status","stats"[,"error"]} from memory, else from the spool; NULL if unknown. */
char *srv_jobs_status_json(srv_jobs_t *j, const char *study, const char *job, int *done);
/* SIGTERM: running jobs are left "queued" on disk for the next start.
 * Returns 1 when a job is still computing (the caller then exits at once
 * rather than wait for it), 0 when every worker stopped. */
int srv_jobs_stop(srv_jobs_t *j);
void srv_jobs_free(srv_jobs_t *j);

/* ---- upload.c ------------------------------------------------------------------------- */
typedef struct srv_upload srv_upload_t;
typedef struct srv_server srv_server_t;
/* Starts an upload of a study (study_id and e NULL) or of a table of the
 * cached study e, whose reference the upload takes over (released by
 * srv_upload_free, or at once when this fails). Returns NULL with an HTTP
 * status and message when it cannot. */
srv_upload_t *srv_upload_new(srv_server_t *s, const char *study_id, srv_cached_t *e, unsigned *code, char *msg,
                             size_t msglen);
/* A body chunk: validated, hashed and stored; after the first failure the
 * rest is read and dropped (libmicrohttpd cannot answer mid-body). */
void srv_upload_feed(srv_upload_t *u, const char *data, size_t len);
/* Set when a chunk failed: the status and message to answer with. */
unsigned srv_upload_failed(const srv_upload_t *u, const char **msg);
/* After the last byte (on an offload thread: validation end, fsync,
 * duplicate check, rename): the HTTP status and the JSON body (malloc'd). */
unsigned srv_upload_finish(srv_upload_t *u, char **json);
void srv_upload_free(srv_upload_t *u);

/* ---- glm_round.c ----------------------------------------------------------------------- */
#define SRV_GLM_FIELDS 7         /* model, gamma, lo, hi, degree, tol, deviance */
#define SRV_GLM_LINE 8192
/* The request's fields (NULL: absent; degree, tol, deviance may be) as one
 * line of tab-separated fields; -1 with the reason. */
int srv_glm_line(const char *const f[SRV_GLM_FIELDS], char *line, size_t n, char *err, size_t errlen);
/* Checks a request line against a study's layout: the model's columns exist,
 * every number is finite and in range, the counts fit the model. */
int srv_glm_parse(const stats_layout_t *lay, const char *line, stats_glm_model_t *m, stats_glm_point_t *pt,
                  char *err, size_t errlen);
/* The round on every table of tables_dir, its frame written to result_path;
 * err set on failure. */
void srv_glm_run(srv_cache_t *cache, const char *spool, const char *study_id, const stats_study_t *study,
                 const char *tables_dir, const char *line, const char *result_path, char *err, size_t errlen);
/* Drops the prepared model kept between rounds (of study_id; NULL: any). */
void srv_glm_forget(const char *study_id);

/* ---- serve.c: the server as the pieces see it ----------------------------------------- */
struct srv_server {
    serve_options_t opt;
    char spool[SRV_PATH_MAX];
    srv_secret_t token;
    srv_cache_t cache;
    srv_offload_t offload;
    srv_guard_t guard;
    srv_jobs_t *jobs;
    pthread_mutex_t uploads_lock;
    int uploads, study_uploads; /* in progress */
};

/* JSON {"error": msg}, malloc'd. */
char *srv_error_json(const char *msg);

#endif
