/*
 * hestat-server serve: the HTTP front end (libmicrohttpd).
 *
 *   GET    /health                               {"status":"ok"}
 *   POST   /studies                 body study   201 {"study":ID}
 *   POST   /studies/ID/tables       body table   201 {"table":ID,"rows":N} (409: the same bytes again)
 *   POST   /studies/ID/jobs?stats=all|means      202 {"job":ID}   (503 + Retry-After when busy)
 *   POST   /studies/ID/jobs?stats=glm&model=Y~X1+X2:binomial&gamma=g0,g1,g2&lo=l1,l2&hi=h1,h2
 *          [&degree=D&tol=T&deviance=0|1]        202 {"job":ID}: one glm round (glm_round.c), 400 with
 *                                                the reason when a field is wrong
 *   GET    /studies/ID/jobs/JOB                  {"status":"queued|running|done|failed",...}
 *   GET    /studies/ID/jobs/JOB/result           the result file (409 until done)
 *   DELETE /studies/ID                           204
 *   Multiparty studies (drafts, key rounds, key-switch shares, releases): mp_http.c
 *
 * Connections: libmicrohttpd's epoll thread pool (each thread serves many
 * connections), a global and a per-address connection limit, a deadline
 * for a request's headers that trickling bytes do not extend
 * (conn_guard.c), an idle timeout. The file-descriptor limit is raised to
 * what the connection limit needs.
 *
 * Requests: everything that can be refused is refused on the access
 * handler's first call, before any byte of a body is read and without
 * "100 Continue": a missing or wrong token (401), an unknown study (404), a
 * Content-Length above --max-upload (413), too many uploads in progress
 * (503 + Retry-After). Work that blocks (parsing a study, fsync, renames,
 * deleting a tree) runs on offload threads while the connection is
 * suspended, so HTTP threads only ever do bounded work per chunk.
 *
 * Stopping (SIGTERM, SIGINT): no new connections, offloaded work finishes,
 * open connections close, running jobs are left "queued" on disk for the
 * next start, and the process exits without waiting for them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apps/server/mp_http.h"
#include "apps/server/serve_impl.h"

/* ---- replies -------------------------------------------------------------------- */
char *srv_error_json(const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return txt;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *json)
{
    const char *body = json ? json : "{\"error\":\"out of memory\"}";
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (code == 503) MHD_add_response_header(r, "Retry-After", "5");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code, const char *msg)
{
    char *json = srv_error_json(msg);
    enum MHD_Result ret = reply(c, code, json);
    free(json);
    return ret;
}

/* ---- one request --------------------------------------------------------------------- */
enum route {
    R_NONE, R_HEALTH, R_STUDY_UPLOAD, R_TABLE_UPLOAD, R_JOB_NEW, R_JOB_STATUS, R_JOB_RESULT, R_SHARE_UPLOAD, R_JOB_MP,
    R_RELEASE, R_DELETE, R_DRAFT_UPLOAD, R_MP_STATUS, R_MP_GET, R_MP_UPLOAD
};

/* Where a request is between the access handler's calls. */
enum phase {
    P_NEW,       /* first call not made yet */
    P_WAIT,      /* suspended: an offload thread works for it */
    P_BODY_NEXT, /* resumed before its body: the next call repeats the first */
    P_BODY,      /* reading an upload's body */
    P_ANSWER     /* the answer is ready: queue it */
};

typedef struct {
    srv_task_t task; /* first: the offload thread hands back &task */
    srv_server_t *s;
    struct MHD_Connection *c;
    enum route route;
    enum phase phase;
    char study[SRV_ID_LEN + 1], job[SRV_ID_LEN + 1];
    stats_job_t kind;
    char *glm; /* a glm round's request line, malloc'd */
    srv_upload_t *up;
    srv_mp_upload_t *mup; /* multiparty uploads (mp_http.c) */
    int mp_kind, party;
    char what[16];              /* GET /studies/ID/mp/WHAT */
    char file[SRV_PATH_MAX];    /* an answer that is a file */
    int holds_upload_slot;
    unsigned code;
    char *body; /* JSON answer, malloc'd */
} request_t;

static void answer_later(request_t *r, unsigned code, char *json)
{
    r->code = code;
    free(r->body);
    r->body = json;
    r->phase = P_ANSWER;
}

static void answer_error_later(request_t *r, unsigned code, const char *msg)
{
    answer_later(r, code, srv_error_json(msg));
}

/* Runs fn on an offload thread with the connection suspended; the task
 * resumes it with r->phase set to what comes next. */
static enum MHD_Result defer(request_t *r, void (*fn)(srv_task_t *))
{
    if (!srv_offload_reserve(&r->s->offload)) return reply_error(r->c, 503, "the server is stopping");
    r->phase = P_WAIT;
    r->task.run = fn;
    MHD_suspend_connection(r->c); /* before submitting: the task may resume it at once */
    srv_offload_submit(&r->s->offload, &r->task);
    return MHD_YES;
}

static void resume(request_t *r) { MHD_resume_connection(r->c); /* r belongs to the connection again */ }

/* ---- routing ----------------------------------------------------------------------------- */
static int authorized(const srv_server_t *s, struct MHD_Connection *c)
{
    if (!s->token.data) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    size_t tl = s->token.len;
    return h && !strncmp(h, "Bearer ", 7) && strlen(h + 7) == tl && sodium_memcmp(h + 7, s->token.data, tl) == 0;
}

/* Splits "/a/b/c" into at most 5 parts of < 64 characters; the count or -1. */
static int split_url(const char *url, char parts[5][64])
{
    int n = 0;
    const char *p = url;
    while (*p == '/') p++;
    while (*p && n < 5) {
        const char *q = strchr(p, '/');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len >= 64) return -1;
        memcpy(parts[n], p, len);
        parts[n][len] = 0;
        n++;
        p = q ? q + 1 : p + len;
    }
    return *p ? -1 : n;
}

static enum route route_of(const char *method, int n, char parts[5][64])
{
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
    if (n == 1 && get && !strcmp(parts[0], "health")) return R_HEALTH;
    if (n == 1 && post && !strcmp(parts[0], "drafts")) return R_DRAFT_UPLOAD;
    if (n < 1 || strcmp(parts[0], "studies")) return R_NONE;
    if (n == 1) return post ? R_STUDY_UPLOAD : R_NONE;
    if (n == 2) return del ? R_DELETE : R_NONE;
    if (n == 3 && post && !strcmp(parts[2], "tables")) return R_TABLE_UPLOAD;
    if (n == 3 && get && !strcmp(parts[2], "mp")) return R_MP_STATUS;
    if (n == 4 && !strcmp(parts[2], "mp")) {
        if (get && (!strcmp(parts[3], "draft") || !strcmp(parts[3], "round1") || !strcmp(parts[3], "study")))
            return R_MP_GET;
        if (post && (!strcmp(parts[3], "round1") || !strcmp(parts[3], "round2"))) return R_MP_UPLOAD;
        return R_NONE;
    }
    if (n == 5 && post && !strcmp(parts[2], "jobs") && !strcmp(parts[4], "shares")) return R_SHARE_UPLOAD;
    if (n == 5 && get && !strcmp(parts[2], "jobs") && !strcmp(parts[4], "mp")) return R_JOB_MP;
    if (n == 5 && get && !strcmp(parts[2], "jobs") && !strcmp(parts[4], "release")) return R_RELEASE;
    if (n == 3 && post && !strcmp(parts[2], "jobs")) return R_JOB_NEW;
    if (n == 4 && get && !strcmp(parts[2], "jobs")) return R_JOB_STATUS;
    if (n == 5 && get && !strcmp(parts[2], "jobs") && !strcmp(parts[4], "result")) return R_JOB_RESULT;
    return R_NONE;
}

static int study_exists(const srv_server_t *s, const char *id)
{
    char path[SRV_PATH_MAX];
    struct stat st;
    return !srv_path(path, sizeof path, s->spool, id, "study.hst", NULL) && !stat(path, &st) && S_ISREG(st.st_mode);
}

/* ---- uploads -------------------------------------------------------------------------------- */
/* 413 from the announced length, before any of the body is read. */
static int announced_too_big(const srv_server_t *s, struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl) return 0; /* chunked: counted as it arrives */
    char *end;
    errno = 0;
    unsigned long long v = strtoull(cl, &end, 10);
    return errno || *end || v > s->opt.max_upload;
}

/* An upload slot; a study also needs the study slot (a study is parsed as
 * it arrives and kept whole: one at a time keeps memory bounded). */
static int take_upload_slot(request_t *r)
{
    srv_server_t *s = r->s;
    int study = r->route == R_STUDY_UPLOAD;
    pthread_mutex_lock(&s->uploads_lock);
    int ok = s->uploads < s->opt.max_uploads && (!study || !s->study_uploads);
    if (ok) {
        s->uploads++;
        s->study_uploads += study;
    }
    pthread_mutex_unlock(&s->uploads_lock);
    r->holds_upload_slot = ok;
    return ok;
}

static void give_upload_slot(request_t *r)
{
    if (!r->holds_upload_slot) return;
    pthread_mutex_lock(&r->s->uploads_lock);
    r->s->uploads--;
    r->s->study_uploads -= r->route == R_STUDY_UPLOAD;
    pthread_mutex_unlock(&r->s->uploads_lock);
    r->holds_upload_slot = 0;
}

/* Opens the upload; on failure the answer is set. */
static int open_upload(request_t *r, srv_cached_t *e)
{
    unsigned code;
    char msg[400];
    if (r->mp_kind) {
        r->mup = srv_mp_upload_new(r->s, r->mp_kind, r->study[0] ? r->study : NULL, r->job[0] ? r->job : NULL,
                                   r->party, &code, msg, sizeof msg);
        if (!r->mup) answer_error_later(r, code, msg);
        return r->mup != NULL;
    }
    r->up = srv_upload_new(r->s, r->route == R_TABLE_UPLOAD ? r->study : NULL, e, &code, msg, sizeof msg);
    if (!r->up) answer_error_later(r, code, msg);
    return r->up != NULL;
}

/* Offload: the study of a table upload was not parsed yet. */
static void task_load_study(srv_task_t *t)
{
    request_t *r = (request_t *)t;
    char err[400];
    srv_cached_t *e = srv_cache_get(&r->s->cache, r->s->spool, r->study, err, sizeof err);
    if (!e) answer_error_later(r, strstr(err, "no such study") ? 404 : 500, err);
    else if (open_upload(r, e)) r->phase = P_BODY_NEXT;
    resume(r);
}

static enum MHD_Result start_upload(request_t *r)
{
    if (announced_too_big(r->s, r->c)) {
        char msg[128];
        snprintf(msg, sizeof msg, "upload exceeds the size limit (%zu MB)", r->s->opt.max_upload >> 20);
        return reply_error(r->c, 413, msg);
    }
    if (!take_upload_slot(r)) {
        char msg[128];
        if (r->route == R_STUDY_UPLOAD) snprintf(msg, sizeof msg, "busy: another study is being uploaded; retry later");
        else snprintf(msg, sizeof msg, "busy: %d uploads in progress; retry later", r->s->opt.max_uploads);
        return reply_error(r->c, 503, msg);
    }
    srv_cached_t *e = NULL;
    if (r->route == R_TABLE_UPLOAD && !(e = srv_cache_peek(&r->s->cache, r->study))) return defer(r, task_load_study);
    if (!open_upload(r, e)) return reply(r->c, r->code, r->body);
    r->phase = P_BODY;
    return MHD_YES;
}

/* Offload: the reader's last check, fsync, duplicate check, rename. */
static void task_finish_upload(srv_task_t *t)
{
    request_t *r = (request_t *)t;
    char *json = NULL;
    unsigned code = r->mup ? srv_mp_upload_finish(r->mup, &json) : srv_upload_finish(r->up, &json);
    answer_later(r, code, json);
    resume(r);
}

static enum MHD_Result end_of_body(request_t *r)
{
    const char *msg;
    unsigned code = r->mup ? srv_mp_upload_failed(r->mup, &msg) : srv_upload_failed(r->up, &msg);
    if (code) return reply_error(r->c, code, msg);
    return defer(r, task_finish_upload);
}

/* ---- jobs, results, deletion ----------------------------------------------------------------- */
static void task_new_job(srv_task_t *t)
{
    request_t *r = (request_t *)t;
    char id[SRV_ID_LEN + 1];
    if (r->glm) { /* checked against the study's columns before the job exists */
        char err[400] = "";
        srv_cached_t *e = srv_cache_get(&r->s->cache, r->s->spool, r->study, err, sizeof err);
        stats_glm_model_t m;
        stats_glm_point_t pt;
        int bad = e && srv_glm_parse(&srv_cached_study(e)->layout, r->glm, &m, &pt, err, sizeof err);
        if (e) srv_cache_release(&r->s->cache, e);
        if (!e || bad) {
            answer_error_later(r, !e && !strstr(err, "no such study") ? 500 : !e ? 404 : 400, err);
            resume(r);
            return;
        }
    }
    int rc = srv_jobs_submit(r->s->jobs, r->study, r->kind, r->glm, id);
    if (rc == 503) answer_error_later(r, 503, "busy: too many queued jobs");
    else if (rc) answer_error_later(r, 500, "cannot record the job");
    else {
        json_t *o = json_pack("{s:s}", "job", id);
        answer_later(r, 202, o ? json_dumps(o, JSON_COMPACT) : NULL);
        json_decref(o);
    }
    resume(r);
}

static enum MHD_Result new_job(request_t *r)
{
    const char *stats = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "stats");
    if (stats && strcmp(stats, "all") && strcmp(stats, "means") && strcmp(stats, "glm"))
        return reply_error(r->c, 400, "stats must be all, means or glm");
    if (stats && !strcmp(stats, "glm")) {
        static const char *const names[SRV_GLM_FIELDS] = {"model", "gamma", "lo", "hi", "degree", "tol", "deviance"};
        const char *f[SRV_GLM_FIELDS];
        for (int i = 0; i < SRV_GLM_FIELDS; i++) f[i] = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, names[i]);
        char err[400];
        if (!(r->glm = malloc(SRV_GLM_LINE))) return reply_error(r->c, 500, "out of memory");
        if (srv_glm_line(f, r->glm, SRV_GLM_LINE, err, sizeof err)) return reply_error(r->c, 400, err);
    }
    r->kind = stats && !strcmp(stats, "means") ? STATS_JOB_MEANS : STATS_JOB_ALL;
    return defer(r, task_new_job);
}

static enum MHD_Result job_status(request_t *r)
{
    char *json = srv_jobs_status_json(r->s->jobs, r->study, r->job, NULL);
    enum MHD_Result ret = json ? reply(r->c, 200, json) : reply_error(r->c, 404, "no such job");
    free(json);
    return ret;
}

/* A spool file as the body (application/octet-stream). */
static enum MHD_Result reply_file(struct MHD_Connection *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    struct MHD_Response *resp = fd >= 0 && !fstat(fd, &st) ? MHD_create_response_from_fd((uint64_t)st.st_size, fd)
                                                           : NULL;
    if (!resp) {
        if (fd >= 0) close(fd);
        return reply_error(c, 500, "the file is missing");
    }
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- multiparty: states and files (mp_http.c), on offload threads ---- */
static void task_mp(srv_task_t *t)
{
    request_t *r = (request_t *)t;
    char *json = NULL, path[SRV_PATH_MAX];
    unsigned code;
    if (r->route == R_MP_STATUS) code = srv_mp_status(r->s, r->study, &json);
    else if (r->route == R_JOB_MP) code = srv_mp_job_status(r->s, r->study, r->job, &json);
    else {
        code = srv_mp_file(r->s, r->study, r->route == R_RELEASE ? r->job : NULL, r->what, path, sizeof path, &json);
        if (!code) snprintf(r->file, sizeof r->file, "%s", path);
    }
    answer_later(r, code ? code : 200, json);
    resume(r);
}

/* ?party=I: a whole number from 1 to 64. */
static int party_of(request_t *r)
{
    const char *v = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "party");
    char *end;
    /* digits only, no sign, space or leading zero: one spelling per party */
    if (!v || v[0] < '1' || v[0] > '9') return 0;
    long p = strtol(v, &end, 10);
    if (*end || p < 1 || p > STATS_MP_MAX_PARTIES) return 0;
    r->party = (int)p;
    return 1;
}

static enum MHD_Result job_result(request_t *r)
{
    int done = 0;
    char *json = srv_jobs_status_json(r->s->jobs, r->study, r->job, &done);
    free(json);
    if (!json) return reply_error(r->c, 404, "no such job");
    if (!done) return reply_error(r->c, 409, "the job is not done");
    char path[SRV_PATH_MAX], name[SRV_ID_LEN + 16];
    snprintf(name, sizeof name, "%s.result.hst", r->job);
    int fd = srv_path(path, sizeof path, r->s->spool, r->study, "jobs", name) ? -1 : open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    struct MHD_Response *resp = fd >= 0 && !fstat(fd, &st) ? MHD_create_response_from_fd((uint64_t)st.st_size, fd)
                                                           : NULL;
    if (!resp) {
        if (fd >= 0) close(fd);
        return reply_error(r->c, 500, "the result file is missing");
    }
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    enum MHD_Result ret = MHD_queue_response(r->c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Offload: the study leaves the spool in one rename (into spool/tmp, which
 * the next start empties if this is interrupted), then its tree is removed
 * without following any link. */
static void task_delete(srv_task_t *t)
{
    request_t *r = (request_t *)t;
    srv_server_t *s = r->s;
    char from[SRV_PATH_MAX], grave[SRV_PATH_MAX], to[SRV_PATH_MAX];
    int ok = !srv_path(from, sizeof from, s->spool, r->study, NULL, NULL) &&
             !srv_path(grave, sizeof grave, s->spool, "tmp", "deleted-XXXXXX", NULL) && mkdtemp(grave) &&
             !srv_path(to, sizeof to, grave, r->study, NULL, NULL);
    if (ok && rename(from, to)) {
        if (errno == ENOENT) answer_error_later(r, 404, "no such study");
        ok = 0;
    }
    if (ok) {
        srv_fsync_dir(s->spool);
        srv_glm_forget(r->study); /* its prepared glm model too */
        srv_cache_forget(&s->cache, r->study);
        answer_later(r, 204, strdup(""));
    } else if (r->phase != P_ANSWER) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot delete the study: %s", strerror(errno));
        answer_error_later(r, 500, msg);
    }
    if (grave[0] && srv_remove_tree(grave))
        fprintf(stderr, "hestat-server: %s: %s (removed at the next start)\n", grave, strerror(errno));
    resume(r);
}

/* ---- the access handler -------------------------------------------------------------------------- */
/* Counts of Content-Length headers, Transfer-Encoding headers, and
 * Transfer-Encodings other than "chunked" alone. */
static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    int *n = cls;
    if (key && !strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) n[0]++;
    if (key && !strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        n[1]++;
        n[2] += !value || strcasecmp(value, "chunked");
    }
    return MHD_YES;
}

/* A body whose length a proxy in front could read differently from us
 * (RFC 9112, 6.3): two Content-Length headers (libmicrohttpd takes the
 * first), a Transfer-Encoding other than "chunked" alone (it would wait for
 * the connection to close), or both headers at once. 400, before the token. */
static int ambiguous_framing(struct MHD_Connection *c)
{
    int n[3] = {0, 0, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, n);
    return n[0] > 1 || n[1] > 1 || n[2] || (n[0] && n[1]);
}

static enum MHD_Result first_call(request_t *r, const char *url, const char *method)
{
    char parts[5][64];
    int n = split_url(url, parts);
    r->route = n < 0 ? R_NONE : route_of(method, n, parts);
    if (ambiguous_framing(r->c))
        return reply_error(r->c, 400, "ambiguous body length: one Content-Length, or Transfer-Encoding: chunked alone");
    if (r->route == R_HEALTH) return reply(r->c, 200, "{\"status\":\"ok\"}");
    if (!authorized(r->s, r->c)) return reply_error(r->c, 401, "missing or wrong bearer token");
    if (r->route == R_NONE) return reply_error(r->c, 404, "no such resource");
    if (r->route == R_STUDY_UPLOAD) return start_upload(r);
    if (r->route == R_DRAFT_UPLOAD) {
        r->mp_kind = SRV_MP_DRAFT;
        return start_upload(r);
    }
    if (!srv_valid_id(parts[1], strlen(parts[1]))) return reply_error(r->c, 404, "no such study");
    int built = study_exists(r->s, parts[1]), draft = srv_mp_is_draft(r->s, parts[1]);
    int mp_route = r->route >= R_MP_STATUS || (r->route >= R_SHARE_UPLOAD && r->route <= R_RELEASE);
    if (!built && !draft) return reply_error(r->c, 404, "no such study");
    if (!built && !mp_route && r->route != R_DELETE)
        return reply_error(r->c, 409, "a multiparty study whose keys are not complete yet (GET /studies/ID/mp)");
    if (mp_route && !draft) return reply_error(r->c, 404, "not a multiparty study");
    memcpy(r->study, parts[1], SRV_ID_LEN + 1);
    if (r->route >= R_JOB_STATUS && r->route <= R_RELEASE) {
        if (!srv_valid_id(parts[3], strlen(parts[3]))) return reply_error(r->c, 404, "no such job");
        memcpy(r->job, parts[3], SRV_ID_LEN + 1);
    }
    switch (r->route) {
    case R_TABLE_UPLOAD: return start_upload(r);
    case R_JOB_NEW: return new_job(r);
    case R_JOB_STATUS: return job_status(r);
    case R_JOB_RESULT: return job_result(r);
    case R_DELETE: return defer(r, task_delete);
    case R_MP_STATUS:
    case R_JOB_MP:
    case R_RELEASE: return defer(r, task_mp);
    case R_MP_GET:
        snprintf(r->what, sizeof r->what, "%.15s", parts[3]); /* draft, round1 or study (route_of) */
        return defer(r, task_mp);
    case R_MP_UPLOAD:
    case R_SHARE_UPLOAD:
        if (!party_of(r)) return reply_error(r->c, 400, "party=I wanted: a party's number from 1 to 64");
        r->mp_kind = r->route == R_SHARE_UPLOAD ? SRV_MP_SHARES : !strcmp(parts[3], "round1") ? SRV_MP_ROUND1 : SRV_MP_ROUND2;
        return start_upload(r);
    default: return reply_error(r->c, 404, "no such resource");
    }
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
    (void)version;
    srv_server_t *s = cls;
    request_t *r = *con_cls;
    if (!r) {
        srv_guard_request_started(&s->guard, c);
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->s = s;
        r->c = c;
        *con_cls = r;
        return first_call(r, url, method);
    }
    switch (r->phase) {
    case P_ANSWER: return r->file[0] ? reply_file(c, r->file) : reply(c, r->code, r->body);
    case P_BODY_NEXT:
        r->phase = P_BODY;
        if (!*upload_data_size) return MHD_YES; /* the first call again, after the resume */
        /* fall through */
    case P_BODY:
        if (*upload_data_size) {
            if (r->mup) srv_mp_upload_feed(r->mup, upload_data, *upload_data_size);
            else srv_upload_feed(r->up, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }
        return end_of_body(r);
    default: return MHD_YES;
    }
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    srv_server_t *s = cls;
    request_t *r = *con_cls;
    srv_guard_request_done(&s->guard, c);
    if (!r) return;
    srv_upload_free(r->up); /* an aborted or refused upload leaves nothing */
    srv_mp_upload_free(r->mup);
    give_upload_slot(r);
    free(r->glm);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* ---- libmicrohttpd's messages: at most one a second (a flood of refused
 * connections must not flood the log) ---------------------------------------------------------------- */
typedef struct {
    pthread_mutex_t lock;
    time_t last;
    unsigned long dropped;
} log_limit_t;

static void log_limited(void *cls, const char *fmt, va_list ap)
{
    log_limit_t *l = cls;
    time_t now = time(NULL);
    pthread_mutex_lock(&l->lock);
    if (now == l->last) {
        l->dropped++;
    } else {
        if (l->dropped) fprintf(stderr, "hestat-server: (%lu similar messages dropped)\n", l->dropped);
        l->dropped = 0;
        l->last = now;
        fputs("hestat-server: ", stderr);
        vfprintf(stderr, fmt, ap);
    }
    pthread_mutex_unlock(&l->lock);
}

/* ---- start-up ---------------------------------------------------------------------------------------- */
/* Every connection is a descriptor; more are needed for the spool and the
 * threads. Raises the soft limit to the hard one and lowers the connection
 * limit if even that is not enough. */
static void fit_descriptor_limit(serve_options_t *o)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t spare = 64 + 2 * (rlim_t)(o->max_uploads + o->workers + o->threads);
    if (rl.rlim_cur < (rlim_t)o->max_connections + spare) {
        int fit = rl.rlim_cur > spare + 16 ? (int)(rl.rlim_cur - spare) : 16;
        fprintf(stderr, "hestat-server: warning: %llu file descriptors allowed: at most %d connections, not %d\n",
                (unsigned long long)rl.rlim_cur, fit, o->max_connections);
        o->max_connections = fit;
    }
}

static void warn_if_exposed(const serve_options_t *o, const struct in_addr *a)
{
    if ((ntohl(a->s_addr) >> 24) == 127) return; /* 127.0.0.0/8: this machine only */
    if (!o->token_file)
        fprintf(stderr, "hestat-server: warning: serving on %s without --token-file: anyone who can reach it can "
                        "upload, start jobs, read results and delete studies\n", o->host);
    if (!o->tls_cert)
        fprintf(stderr, "hestat-server: warning: serving on %s without TLS (--tls-cert/--tls-key): the token and "
                        "every file travel in clear\n", o->host);
}

static int make_spool(const char *spool)
{
    char tmp[SRV_PATH_MAX];
    if (srv_path(tmp, sizeof tmp, spool, "tmp", NULL, NULL) || (mkdir(spool, 0700) && errno != EEXIST) ||
        (mkdir(tmp, 0700) && errno != EEXIST)) {
        fprintf(stderr, "hestat-server: cannot create the spool %s: %s\n", spool, strerror(errno));
        return -1;
    }
    return 0;
}

static struct MHD_Daemon *start_daemon(srv_server_t *s, const struct sockaddr_in *addr, const srv_secret_t *cert,
                                       const srv_secret_t *key, log_limit_t *log)
{
    const serve_options_t *o = &s->opt;
    struct MHD_OptionItem ops[16];
    int n = 0;
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)log_limited, log}; /* first */
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)addr};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, o->threads, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, o->max_connections, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->max_per_ip, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, s};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)srv_guard_notify, &s->guard};
    if (cert->data) {
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key->data};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert->data};
    }
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (cert->data) flags |= MHD_USE_TLS;
    return MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
}

/* The PEM files, read once at their exact size (libmicrohttpd wants them
 * NUL-terminated) and wiped as soon as the daemon has loaded them. */
static int read_tls(const serve_options_t *o, srv_secret_t *cert, srv_secret_t *key)
{
    char err[600];
    if (!o->tls_cert && !o->tls_key) return 0;
    if (!o->tls_cert || !o->tls_key) {
        fprintf(stderr, "hestat-server: TLS needs both --tls-cert and --tls-key\n");
        return -1;
    }
    if (srv_secret_read(o->tls_cert, 1 << 20, 0, cert, err, sizeof err) ||
        srv_secret_read(o->tls_key, 1 << 20, 0, key, err, sizeof err)) {
        fprintf(stderr, "hestat-server: %s\n", err);
        srv_secret_free(cert);
        return -1;
    }
    struct stat st;
    if (!stat(o->tls_key, &st) && (st.st_mode & 077))
        fprintf(stderr, "hestat-server: warning: the TLS key %s is readable by group or others (chmod 600 it)\n",
                o->tls_key);
    return 0;
}

/* ---- stopping ------------------------------------------------------------------------------------------ */
static void stop_serving(srv_server_t *s, struct MHD_Daemon *d)
{
    MHD_socket listen = MHD_quiesce_daemon(d); /* no new connections from here on */
    if (listen != MHD_INVALID_SOCKET) close(listen);
    srv_offload_stop(&s->offload); /* every suspended connection resumed */
    srv_guard_stop(&s->guard);
    MHD_stop_daemon(d);
    unsigned long reaped = atomic_load(&s->guard.reaped);
    if (reaped) fprintf(stderr, "hestat-server: %lu connections were closed at the header deadline\n", reaped);
    if (srv_jobs_stop(s->jobs)) {
        /* A job is inside a computation that cannot be interrupted; its state
         * on disk says "queued" and the persist lock is held, so nothing
         * changes that before the process ends. */
        fprintf(stderr, "hestat-server: stopped; the running job resumes at the next start\n");
        fflush(NULL);
        _exit(0);
    }
}

static int parse_listen(const serve_options_t *o, struct sockaddr_in *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &addr->sin_addr) != 1) {
        fprintf(stderr, "hestat-server: bad listen address %s (an IPv4 address)\n", o->host);
        return -1;
    }
    return 0;
}

static int serve_with(srv_server_t *s, const struct sockaddr_in *addr, srv_secret_t *cert, srv_secret_t *key)
{
    static log_limit_t log = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL); /* every thread made from here on inherits it */
    signal(SIGPIPE, SIG_IGN);

    size_t cleaned = srv_spool_clean(s->spool);
    if (cleaned) fprintf(stderr, "hestat-server: removed %zu temporary files a previous run left\n", cleaned);
    if (srv_jobs_start(&s->jobs, s->spool, &s->cache, s->opt.workers, (size_t)s->opt.queue) ||
        (s->opt.launcher && (srv_jobs_set_launcher(s->jobs, s->opt.launcher),
                             srv_jobs_set_launch_timeout(s->jobs, s->opt.launch_timeout), 0)) ||
        srv_offload_start(&s->offload, s->opt.max_uploads < 4 ? 4 : s->opt.max_uploads) ||
        srv_guard_start(&s->guard, s->opt.header_timeout)) {
        fprintf(stderr, "hestat-server: cannot start threads\n");
        fflush(NULL);
        _exit(1);
    }
    struct MHD_Daemon *d = start_daemon(s, addr, cert, key, &log);
    srv_secret_free(key); /* loaded by GnuTLS: this copy is wiped now */
    srv_secret_free(cert);
    if (!d) {
        fprintf(stderr, "hestat-server: cannot listen on %s:%d\n", s->opt.host, s->opt.port);
        srv_offload_stop(&s->offload);
        srv_guard_stop(&s->guard);
        srv_jobs_stop(s->jobs); /* idle: nothing was queued yet */
        return 1;
    }
    size_t resumed = srv_jobs_recover(s->jobs);
    if (resumed) fprintf(stderr, "hestat-server: %zu jobs of a previous run queued again\n", resumed);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("hestat-server: listening on %s://%s:%u spool %s\n", s->opt.tls_cert ? "https" : "http", s->opt.host,
           info ? info->port : (unsigned)s->opt.port, s->spool);
    fflush(stdout);
    int sig = 0;
    while (sigwait(&stop_signals, &sig)) {
    }
    fprintf(stderr, "hestat-server: signal %d: stopping\n", sig);
    stop_serving(s, d);
    return 0;
}

static void clamp(int *v, int lo, int hi) { *v = *v < lo ? lo : *v > hi ? hi : *v; }

int serve_main(const serve_options_t *o)
{
    static srv_server_t s; /* threads use it until exit */
    memset(&s, 0, sizeof s);
    if (sodium_init() < 0) return 1;
    /* Frames, keys and ciphertexts are large blocks freed after each upload or
     * job: a fixed threshold keeps them in their own mappings, returned to the
     * system when freed, rather than glibc raising the threshold and keeping
     * hundreds of megabytes of freed heap per thread arena. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    s.opt = *o;
    clamp(&s.opt.workers, 1, 64);
    clamp(&s.opt.queue, 1, 1 << 20);
    clamp(&s.opt.threads, 1, 64);
    clamp(&s.opt.max_uploads, 1, 1024);
    clamp(&s.opt.max_connections, 16, 1 << 20);
    clamp(&s.opt.max_per_ip, 1, 1 << 20);
    clamp(&s.opt.header_timeout, 1, 3600);
    clamp(&s.opt.idle_timeout, 1, 86400);
    clamp(&s.opt.cached_studies, 1, 1024);
    if (srv_path(s.spool, sizeof s.spool, o->spool, NULL, NULL, NULL) || strlen(s.spool) > SRV_PATH_MAX - 200) {
        fprintf(stderr, "hestat-server: the spool path is too long\n");
        return 2;
    }
    struct sockaddr_in addr;
    if (parse_listen(&s.opt, &addr)) return 2;
    char err[600];
    if (o->token_file && srv_token_read(o->token_file, &s.token, err, sizeof err)) {
        fprintf(stderr, "hestat-server: %s\n", err);
        return 1;
    }
    srv_secret_t cert = {0}, key = {0};
    if (read_tls(o, &cert, &key)) {
        srv_secret_free(&s.token);
        return 1;
    }
    warn_if_exposed(&s.opt, &addr.sin_addr);
    fit_descriptor_limit(&s.opt);
    if (make_spool(s.spool)) {
        srv_secret_free(&s.token);
        srv_secret_free(&cert);
        srv_secret_free(&key);
        return 1;
    }
    pthread_mutex_init(&s.uploads_lock, NULL);
    srv_cache_init(&s.cache, (size_t)s.opt.cached_studies);
    int rc = serve_with(&s, &addr, &cert, &key);
    srv_jobs_free(s.jobs);
    srv_glm_forget(NULL);
    srv_cache_destroy(&s.cache);
    srv_secret_free(&s.token);
    return rc;
}
