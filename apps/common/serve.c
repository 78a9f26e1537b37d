/*
 * hestat-server serve: the HTTP service (libmicrohttpd).
 *
 *   GET    /health                               {"status":"ok"}
 *   POST   /studies                 body study   201 {"study":ID}
 *   POST   /studies/ID/tables       body table   201 {"table":ID}
 *   POST   /studies/ID/jobs?stats=all|means      202 {"job":ID}   (503 + Retry-After when busy)
 *   GET    /studies/ID/jobs/JOB                  {"status":"queued|running|done|failed",...}
 *   GET    /studies/ID/jobs/JOB/result           the result file (409 until done)
 *   DELETE /studies/ID                           204
 *
 * Uploads stream to a temporary file in the spool (never whole in memory),
 * are limited in size (413), validated (study: everything; table: against
 * its study, secret keys refused), and renamed into place. IDs are 32 random
 * hex digits, validated on every request. Job states live in the spool and
 * are written atomically; on start, queued and running jobs are queued again,
 * so a killed server finishes or fails them and never serves a half result.
 * A bearer token (--token-file) is required on every request but /health when set.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/common/serve.h"
#include "stats/stats.h"

#define QUEUE_MAX 64
#define ID_LEN 32

typedef struct {
    char spool[1024];
    char token[256];
    int have_token;
    size_t max_upload;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char queue[QUEUE_MAX][2 * ID_LEN + 2]; /* "study/job" */
    size_t qhead, qlen, qmax;
    int stop;
} server_t;

typedef struct {
    int fd;
    char tmp[1200];
    size_t size;
    int too_big, io_error;
} upload_t;

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static int valid_id(const char *s, size_t len)
{
    if (len != ID_LEN) return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static void new_id(char out[ID_LEN + 1])
{
    unsigned char r[ID_LEN / 2];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(out, ID_LEN + 1, r, sizeof r);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *json)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (code == 503) MHD_add_response_header(r, "Retry-After", "5");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code, const char *msg)
{
    json_t *j = json_pack("{s:s}", "error", msg);
    char *s = json_dumps(j, JSON_COMPACT);
    enum MHD_Result ret = reply(c, code, s ? s : "{\"error\":\"internal\"}");
    free(s);
    json_decref(j);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned code, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    enum MHD_Result ret = reply(c, code, s ? s : "{}");
    free(s);
    json_decref(j);
    return ret;
}

/* ---- spool ---- */
static void spool_path(const server_t *s, char *out, size_t n, const char *a, const char *b, const char *c)
{
    snprintf(out, n, "%s%s%s%s%s%s%s", s->spool, a ? "/" : "", a ? a : "", b ? "/" : "", b ? b : "", c ? "/" : "",
             c ? c : "");
}

static int write_status(const server_t *s, const char *study, const char *job, const char *status,
                        const char *stats, const char *error)
{
    char path[1400], name[ID_LEN + 8];
    snprintf(name, sizeof name, "%s.json", job);
    spool_path(s, path, sizeof path, study, "jobs", name);
    json_t *j = json_pack("{s:s,s:s,s:s}", "job", job, "status", status, "stats", stats);
    if (error) json_object_set_new(j, "error", json_string(error));
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    int rc = txt ? ckks_file_write(path, txt, strlen(txt), 0644) : CKKS_ENOMEM;
    free(txt);
    return rc;
}

static json_t *read_status(const server_t *s, const char *study, const char *job)
{
    char path[1400], name[ID_LEN + 8];
    snprintf(name, sizeof name, "%s.json", job);
    spool_path(s, path, sizeof path, study, "jobs", name);
    return json_load_file(path, 0, NULL);
}

static int enqueue(server_t *s, const char *study, const char *job)
{
    pthread_mutex_lock(&s->lock);
    int ok = s->qlen < s->qmax;
    if (ok) {
        snprintf(s->queue[(s->qhead + s->qlen) % QUEUE_MAX], sizeof s->queue[0], "%s/%s", study, job);
        s->qlen++;
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static void *read_whole(const char *path, size_t *len)
{
    void *buf;
    return ckks_file_read(path, (size_t)1 << 36, &buf, len) ? NULL : buf;
}

/* Runs one job: every table of the study, combined, result written atomically. */
static void run_job(server_t *s, const char *study_id, const char *job_id)
{
    json_t *st = read_status(s, study_id, job_id);
    const char *stats = st ? json_string_value(json_object_get(st, "stats")) : NULL;
    stats_job_t kind = stats && !strcmp(stats, "means") ? STATS_JOB_MEANS : STATS_JOB_ALL;
    char kind_name[8];
    snprintf(kind_name, sizeof kind_name, "%s", kind == STATS_JOB_MEANS ? "means" : "all");
    json_decref(st);
    write_status(s, study_id, job_id, "running", kind_name, NULL);
    char path[1400], err[512] = "";
    spool_path(s, path, sizeof path, study_id, "study.hst", NULL);
    size_t len;
    void *buf = read_whole(path, &len);
    stats_study_t *study = NULL;
    stats_enc_result_t *acc = NULL;
    if (!buf || stats_study_read(buf, len, &study, NULL)) snprintf(err, sizeof err, "study unreadable");
    free(buf);
    spool_path(s, path, sizeof path, study_id, "tables", NULL);
    DIR *d = err[0] ? NULL : opendir(path);
    struct dirent *e;
    while (d && !err[0] && (e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl != ID_LEN + 4 || strcmp(e->d_name + ID_LEN, ".hst")) continue;
        char tpath[1500];
        snprintf(tpath, sizeof tpath, "%.1400s/%.40s", path, e->d_name);
        buf = read_whole(tpath, &len);
        stats_enc_table_t *t = NULL;
        stats_enc_result_t *r = NULL;
        int rc = buf ? stats_table_read(study, buf, len, &t, NULL) : STATS_EIO;
        free(buf);
        if (!rc) rc = stats_compute(study->ctx, t, kind, study->rk, study->gk, &r, NULL);
        stats_enc_table_free(t);
        if (!rc && acc) {
            rc = stats_result_add(acc, r);
            stats_enc_result_free(r);
        } else if (!rc) {
            acc = r;
        }
        if (rc) snprintf(err, sizeof err, "table %.32s: %s", e->d_name, stats_strerror(rc));
    }
    if (d) closedir(d);
    if (!err[0] && !acc) snprintf(err, sizeof err, "no tables uploaded");
    if (!err[0]) {
        void *out;
        size_t olen;
        char name[ID_LEN + 16];
        snprintf(name, sizeof name, "%s.result.hst", job_id);
        spool_path(s, path, sizeof path, study_id, "jobs", name);
        if (stats_result_write(study, acc, &out, &olen) || ckks_file_write(path, out, olen, 0644))
            snprintf(err, sizeof err, "cannot write the result");
        else
            free(out);
    }
    stats_enc_result_free(acc);
    stats_study_free(study);
    write_status(s, study_id, job_id, err[0] ? "failed" : "done", kind_name, err[0] ? err : NULL);
}

static void *worker(void *arg)
{
    server_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (!s->qlen && !s->stop) pthread_cond_wait(&s->cond, &s->lock);
        if (s->stop) {
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
        char item[sizeof s->queue[0]];
        memcpy(item, s->queue[s->qhead], sizeof item);
        s->qhead = (s->qhead + 1) % QUEUE_MAX;
        s->qlen--;
        pthread_mutex_unlock(&s->lock);
        item[ID_LEN] = 0;
        run_job(s, item, item + ID_LEN + 1);
    }
}

/* Queued or running jobs of a previous run are queued again. */
static void recover(server_t *s)
{
    DIR *d = opendir(s->spool);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!valid_id(e->d_name, strlen(e->d_name))) continue;
        char jobs[1200];
        spool_path(s, jobs, sizeof jobs, e->d_name, "jobs", NULL);
        DIR *j = opendir(jobs);
        struct dirent *f;
        while (j && (f = readdir(j))) {
            if (strlen(f->d_name) != ID_LEN + 5 || strcmp(f->d_name + ID_LEN, ".json")) continue;
            char job[ID_LEN + 1];
            memcpy(job, f->d_name, ID_LEN);
            job[ID_LEN] = 0;
            json_t *st = read_status(s, e->d_name, job);
            const char *status = st ? json_string_value(json_object_get(st, "status")) : NULL;
            if (status && (!strcmp(status, "queued") || !strcmp(status, "running"))) {
                fprintf(stderr, "hestat-server: resuming job %s of study %s\n", job, e->d_name);
                write_status(s, e->d_name, job, "queued", json_string_value(json_object_get(st, "stats")), NULL);
                enqueue(s, e->d_name, job);
            }
            json_decref(st);
        }
        if (j) closedir(j);
    }
    if (d) closedir(d);
}

/* ---- requests ---- */
static int authorized(server_t *s, struct MHD_Connection *c)
{
    if (!s->have_token) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    size_t tl = strlen(s->token);
    return h && !strncmp(h, "Bearer ", 7) && strlen(h + 7) == tl && sodium_memcmp(h + 7, s->token, tl) == 0;
}

/* Splits "/studies/ID/rest" into parts; returns the count (<= 5). */
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

static enum MHD_Result finish_upload(server_t *s, struct MHD_Connection *c, upload_t *u, int nparts,
                                     char parts[5][64])
{
    if (u->too_big) {
        unlink(u->tmp);
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "upload exceeds the size limit");
    }
    if (u->io_error) {
        unlink(u->tmp);
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the upload");
    }
    size_t len;
    void *buf = read_whole(u->tmp, &len);
    if (!buf) {
        unlink(u->tmp);
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the upload back");
    }
    char id[ID_LEN + 1], path[1400], msg[400];
    new_id(id);
    enum MHD_Result ret;
    if (nparts == 1) { /* POST /studies */
        stats_study_t *study;
        int rc = stats_study_read(buf, len, &study, NULL);
        if (rc) {
            snprintf(msg, sizeof msg, "not a valid study: %s", stats_error());
            ret = reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
        } else {
            stats_study_free(study);
            spool_path(s, path, sizeof path, id, NULL, NULL);
            char sub[1500];
            int ok = !mkdir(path, 0755);
            snprintf(sub, sizeof sub, "%s/tables", path);
            ok = ok && !mkdir(sub, 0755);
            snprintf(sub, sizeof sub, "%s/jobs", path);
            ok = ok && !mkdir(sub, 0755);
            snprintf(sub, sizeof sub, "%s/study.hst", path);
            ok = ok && !rename(u->tmp, sub);
            ret = ok ? reply_json(c, MHD_HTTP_CREATED, json_pack("{s:s}", "study", id))
                     : reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the study");
        }
    } else { /* POST /studies/ID/tables */
        char spath[1400];
        spool_path(s, spath, sizeof spath, parts[1], "study.hst", NULL);
        size_t slen;
        void *sbuf = read_whole(spath, &slen);
        stats_study_t *study = NULL;
        stats_enc_table_t *t = NULL;
        ckks_obj_type_t type;
        if (!sbuf || stats_study_read(sbuf, slen, &study, NULL)) {
            ret = reply_error(c, MHD_HTTP_NOT_FOUND, "no such study");
        } else if (ckks_object_type(buf, len, &type) == CKKS_OK && type == CKKS_OBJ_SECRET_KEY) {
            ret = reply_error(c, MHD_HTTP_BAD_REQUEST, "a secret key is never accepted");
        } else if (stats_table_read(study, buf, len, &t, NULL)) {
            snprintf(msg, sizeof msg, "not a valid table for this study: %s", stats_error());
            ret = reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
        } else {
            char name[ID_LEN + 8];
            snprintf(name, sizeof name, "%s.hst", id);
            spool_path(s, path, sizeof path, parts[1], "tables", name);
            ret = !rename(u->tmp, path) ? reply_json(c, MHD_HTTP_CREATED, json_pack("{s:s,s:I}", "table", id, "rows",
                                                                                   (json_int_t)t->layout.nrows))
                                        : reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the table");
        }
        stats_enc_table_free(t);
        stats_study_free(study);
        free(sbuf);
    }
    free(buf);
    unlink(u->tmp); /* gone already when renamed */
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
    (void)version;
    server_t *s = cls;
    char parts[5][64];
    int n = split_url(url, parts);
    int is_post = !strcmp(method, "POST");
    int upload_url = is_post && ((n == 1 && !strcmp(parts[0], "studies")) ||
                                 (n == 3 && !strcmp(parts[0], "studies") && !strcmp(parts[2], "tables")));
    if (!*con_cls) {
        upload_t *u = calloc(1, sizeof *u);
        if (!u) return MHD_NO;
        u->fd = -1;
        *con_cls = u;
        if (upload_url && authorized(s, c) && (n == 1 || valid_id(parts[1], strlen(parts[1])))) {
            snprintf(u->tmp, sizeof u->tmp, "%s/tmp/upload-XXXXXX", s->spool);
            u->fd = mkstemp(u->tmp);
            if (u->fd < 0) u->io_error = 1;
        }
        return MHD_YES;
    }
    upload_t *u = *con_cls;
    if (*upload_data_size) { /* body chunk */
        if (u->fd >= 0 && !u->too_big) {
            if (u->size + *upload_data_size > s->max_upload) {
                u->too_big = 1;
            } else {
                const char *p = upload_data;
                size_t left = *upload_data_size;
                while (left) {
                    ssize_t w = write(u->fd, p, left);
                    if (w <= 0) {
                        u->io_error = 1;
                        break;
                    }
                    p += w;
                    left -= (size_t)w;
                }
                u->size += *upload_data_size;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (u->fd >= 0) {
        close(u->fd);
        u->fd = -1;
    }
    if (n == 1 && !strcmp(parts[0], "health") && !strcmp(method, "GET"))
        return reply(c, MHD_HTTP_OK, "{\"status\":\"ok\"}");
    if (!authorized(s, c)) {
        if (u->tmp[0]) unlink(u->tmp);
        return reply_error(c, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token");
    }
    if (n < 1 || strcmp(parts[0], "studies") || (n >= 2 && !valid_id(parts[1], strlen(parts[1])))) {
        if (u->tmp[0]) unlink(u->tmp);
        return reply_error(c, MHD_HTTP_NOT_FOUND, "no such resource");
    }
    if (upload_url) return finish_upload(s, c, u, n, parts);
    char path[1400];
    if (n >= 2) {
        spool_path(s, path, sizeof path, parts[1], "study.hst", NULL);
        if (access(path, R_OK)) return reply_error(c, MHD_HTTP_NOT_FOUND, "no such study");
    }
    if (n == 2 && !strcmp(method, "DELETE")) {
        char cmd[1500];
        spool_path(s, path, sizeof path, parts[1], NULL, NULL);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", path); /* path: spool + validated hex id */
        return system(cmd) == 0 ? reply(c, MHD_HTTP_NO_CONTENT, "") : reply_error(c, 500, "cannot delete");
    }
    if (n == 3 && is_post && !strcmp(parts[2], "jobs")) {
        const char *stats = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "stats");
        if (!stats) stats = "all";
        if (strcmp(stats, "all") && strcmp(stats, "means"))
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "stats must be all or means");
        char job[ID_LEN + 1];
        new_id(job);
        pthread_mutex_lock(&s->lock);
        int full = s->qlen >= s->qmax;
        pthread_mutex_unlock(&s->lock);
        if (full) return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "busy: too many queued jobs");
        if (write_status(s, parts[1], job, "queued", stats, NULL))
            return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot record the job");
        if (!enqueue(s, parts[1], job)) {
            write_status(s, parts[1], job, "failed", stats, "queue full");
            return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "busy: too many queued jobs");
        }
        return reply_json(c, MHD_HTTP_ACCEPTED, json_pack("{s:s}", "job", job));
    }
    if (n >= 4 && !strcmp(parts[2], "jobs") && !strcmp(method, "GET")) {
        if (!valid_id(parts[3], strlen(parts[3]))) return reply_error(c, MHD_HTTP_NOT_FOUND, "no such job");
        json_t *st = read_status(s, parts[1], parts[3]);
        if (!st) return reply_error(c, MHD_HTTP_NOT_FOUND, "no such job");
        if (n == 4) return reply_json(c, MHD_HTTP_OK, st);
        const char *status = json_string_value(json_object_get(st, "status"));
        int done = status && !strcmp(status, "done");
        json_decref(st);
        if (n != 5 || strcmp(parts[4], "result")) return reply_error(c, MHD_HTTP_NOT_FOUND, "no such resource");
        if (!done) return reply_error(c, MHD_HTTP_CONFLICT, "the job is not done");
        char name[ID_LEN + 16];
        snprintf(name, sizeof name, "%.32s.result.hst", parts[3]);
        spool_path(s, path, sizeof path, parts[1], "jobs", name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st2;
        if (fd < 0 || fstat(fd, &st2)) {
            if (fd >= 0) close(fd);
            return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "result missing");
        }
        struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)st2.st_size, fd);
        MHD_add_response_header(r, "Content-Type", "application/octet-stream");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    return reply_error(c, MHD_HTTP_NOT_FOUND, "no such resource");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    upload_t *u = *con_cls;
    if (!u) return;
    if (u->fd >= 0) close(u->fd);
    if (u->tmp[0]) unlink(u->tmp); /* an aborted or refused upload leaves nothing */
    free(u);
    *con_cls = NULL;
}

int serve_main(const serve_options_t *o)
{
    static server_t s;
    memset(&s, 0, sizeof s);
    if (sodium_init() < 0) return 1;
    snprintf(s.spool, sizeof s.spool, "%s", o->spool);
    s.max_upload = o->max_upload;
    s.qmax = o->queue < 1 ? 1 : o->queue > QUEUE_MAX ? QUEUE_MAX : (size_t)o->queue;
    if (o->token_file) {
        FILE *f = fopen(o->token_file, "r");
        if (!f || !fgets(s.token, sizeof s.token, f)) {
            fprintf(stderr, "hestat-server: cannot read the token from %s\n", o->token_file);
            if (f) fclose(f);
            return 1;
        }
        fclose(f);
        s.token[strcspn(s.token, "\r\n")] = 0;
        if (!s.token[0]) {
            fprintf(stderr, "hestat-server: the token file is empty\n");
            return 1;
        }
        s.have_token = 1;
    }
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s/tmp", s.spool);
    if ((mkdir(s.spool, 0700) && errno != EEXIST) || (mkdir(tmp, 0700) && errno != EEXIST)) {
        fprintf(stderr, "hestat-server: cannot create the spool %s: %s\n", s.spool, strerror(errno));
        return 1;
    }
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.cond, NULL);
    recover(&s);
    pthread_t workers[8];
    int nworkers = o->workers < 1 ? 1 : o->workers > 8 ? 8 : o->workers;
    for (int i = 0; i < nworkers; i++) pthread_create(&workers[i], NULL, worker, &s);

    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &addr.sin_addr) != 1) {
        fprintf(stderr, "hestat-server: bad listen address %s\n", o->host);
        return 2;
    }
    char *cert = NULL, *key = NULL;
    size_t clen, klen;
    if (o->tls_cert || o->tls_key) {
        if (!o->tls_cert || !o->tls_key || ckks_file_read(o->tls_cert, 1 << 20, (void **)&cert, &clen) ||
            ckks_file_read(o->tls_key, 1 << 20, (void **)&key, &klen)) {
            fprintf(stderr, "hestat-server: TLS needs readable --tls-cert and --tls-key PEM files\n");
            return 2;
        }
        /* libmicrohttpd wants NUL-terminated PEM text. */
        char *c2 = realloc(cert, clen + 1), *k2 = c2 ? realloc(key, klen + 1) : NULL;
        if (!c2 || !k2) return 1;
        cert = c2;
        key = k2;
        cert[clen] = 0;
        key[klen] = 0;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d =
        cert ? MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR,
                                (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_HTTPS_MEM_KEY, key,
                                MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END)
             : MHD_start_daemon(flags, 0, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)120, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "hestat-server: cannot listen on %s:%d\n", o->host, o->port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("hestat-server: listening on %s://%s:%u spool %s\n", cert ? "https" : "http", o->host,
           info ? info->port : (unsigned)o->port, s.spool);
    fflush(stdout);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!stop_flag) pause();
    MHD_stop_daemon(d);
    pthread_mutex_lock(&s.lock);
    s.stop = 1;
    pthread_cond_broadcast(&s.cond);
    pthread_mutex_unlock(&s.lock);
    for (int i = 0; i < nworkers; i++) pthread_join(workers[i], NULL);
    if (key) sodium_memzero(key, strlen(key));
    free(key);
    free(cert);
    return 0;
}
