/*
 * hestat-server serve: the multiparty endpoints (serve.c routes them here).
 *
 *   POST /drafts                              body draft   201 {"study":ID}
 *   GET  /studies/ID/mp                       {"parties":K,"state":"round1|round2|ready","missing":[..]}
 *   GET  /studies/ID/mp/draft                 the draft
 *   POST /studies/ID/mp/round1?party=I        body bundle  201 (409: party I's shares are in already)
 *   GET  /studies/ID/mp/round1                the sum of all K round-1 bundles (409 until all are in)
 *   POST /studies/ID/mp/round2?party=I        body bundle  201 (409 before round 1 is complete);
 *                                             with the K-th, the study is built: spool/ID/study.hst,
 *                                             and tables and jobs are accepted as for any study
 *   GET  /studies/ID/mp/study                 the study (409 until built)
 *   POST /studies/ID/jobs/JOB/shares?party=I  body bundle  201 (the job must be done; 409: twice)
 *   GET  /studies/ID/jobs/JOB/mp              {"job":JOB,"parties":K,"missing":[..]}
 *   GET  /studies/ID/jobs/JOB/release         the result under the analyst's key (409 naming
 *                                             the parties whose shares are missing)
 *
 * Spool: spool/ID/draft.hst, spool/ID/mp/round1-I.hst, round1-sum.hst,
 * round2-I.hst, spool/ID/study.hst once built; spool/ID/jobs/JOB.shares/I.hst
 * and JOB.release.hst. Uploads stream to spool/tmp (every frame header
 * checked as it arrives: a secret key or anything but hestat frames is
 * refused from its header), are validated whole on an offload thread
 * (tags, kinds, shapes: stats_mp_read_*), fsynced, and placed with link(2),
 * which fails when the party's file exists: a replay is 409 however the
 * uploads race. Sums and the study are derived from the files present, each
 * written atomically, under one lock; after a restart the next request
 * picks up where the files say the protocol is.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/server/mp.h"
#include "apps/server/mp_http.h"

static pthread_mutex_t mp_lock = PTHREAD_MUTEX_INITIALIZER;

struct srv_mp_upload {
    srv_server_t *s;
    int kind; /* SRV_MP_DRAFT, SRV_MP_ROUND1, SRV_MP_ROUND2, SRV_MP_SHARES */
    int party;
    char study[SRV_ID_LEN + 1], job[SRV_ID_LEN + 1];
    int fd;
    char tmp[SRV_PATH_MAX];
    uint64_t size, next; /* bytes so far; where the next frame header starts */
    uint8_t hdr[CKKS_HEADER_BYTES];
    size_t hfill, frames;
    unsigned fail_code;
    char fail_msg[480];
};

static char *json_of(json_t *o)
{
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return txt;
}

static unsigned error_json(char **json, unsigned code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static unsigned error_json(char **json, unsigned code, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *json = srv_error_json(msg);
    return code;
}

static unsigned storage_status(int err) { return err == ENOSPC || err == EDQUOT ? 507 : 500; }

static int exists(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISREG(st.st_mode);
}

/* spool/ID/mp/NAME */
static int mp_path(const srv_server_t *s, const char *study, const char *name, char *out, size_t n)
{
    return srv_path(out, n, s->spool, study, "mp", name);
}

static int party_file(const srv_server_t *s, const char *study, int round, int party, char *out, size_t n)
{
    char name[32];
    snprintf(name, sizeof name, "round%d-%d.hst", round, party);
    return mp_path(s, study, name, out, n);
}

static int share_file(const srv_server_t *s, const char *study, const char *job, int party, char *out, size_t n)
{
    char dir[SRV_ID_LEN + 16], name[16];
    snprintf(dir, sizeof dir, "%s.shares", job);
    snprintf(name, sizeof name, "%d.hst", party);
    char jobs[SRV_PATH_MAX];
    return srv_path(jobs, sizeof jobs, s->spool, study, "jobs", dir) || srv_path(out, n, jobs, name, NULL, NULL);
}

int srv_mp_is_draft(const srv_server_t *s, const char *study)
{
    char path[SRV_PATH_MAX];
    return !srv_path(path, sizeof path, s->spool, study, "draft.hst", NULL) && exists(path);
}

static stats_mp_draft_t *load_draft(const srv_server_t *s, const char *study, char *err, size_t errlen)
{
    char path[SRV_PATH_MAX];
    stats_mp_draft_t *d = NULL;
    if (srv_path(path, sizeof path, s->spool, study, "draft.hst", NULL) ||
        srv_mp_load_draft(path, &d, err, errlen))
        return NULL;
    return d;
}

/* Which of parties 1..K have a file; the count. */
static int present(const srv_server_t *s, const char *study, const char *job, int round, int parties,
                   unsigned char *have)
{
    int n = 0;
    memset(have, 0, STATS_MP_MAX_PARTIES + 1);
    for (int p = 1; p <= parties; p++) {
        char path[SRV_PATH_MAX];
        int bad = job ? share_file(s, study, job, p, path, sizeof path)
                      : party_file(s, study, round, p, path, sizeof path);
        if (!bad && exists(path)) {
            have[p] = 1;
            n++;
        }
    }
    return n;
}

/* The K parties' files of a round (job NULL) or of a job's key switch, in
 * party order: malloc'd paths (free the returned block), files[] into them. */
static char *party_files(const srv_server_t *s, const char *study, const char *job, int round, int parties,
                         const char **files)
{
    char *paths = malloc((size_t)parties * SRV_PATH_MAX);
    for (int p = 1; paths && p <= parties; p++) {
        char *path = paths + (size_t)(p - 1) * SRV_PATH_MAX;
        if (job ? share_file(s, study, job, p, path, SRV_PATH_MAX) : party_file(s, study, round, p, path, SRV_PATH_MAX))
            path[0] = 0;
        files[p - 1] = path;
    }
    return paths;
}

static int write_file(const char *path, void *buf, size_t len)
{
    int rc = ckks_file_write(path, buf, len, 0644);
    free(buf);
    return rc ? -1 : 0;
}

/* Under mp_lock: the round-1 sum and the study, when their inputs are all
 * in and they are not yet made. 0, or an HTTP status with *json set. */
static unsigned advance(srv_server_t *s, const char *study, const stats_mp_draft_t *d, char **json)
{
    unsigned char have[STATS_MP_MAX_PARTIES + 1];
    char sum[SRV_PATH_MAX], final[SRV_PATH_MAX], err[600];
    if (mp_path(s, study, "round1-sum.hst", sum, sizeof sum) ||
        srv_path(final, sizeof final, s->spool, study, "study.hst", NULL))
        return error_json(json, 500, "spool path too long");
    if (!exists(sum) && present(s, study, NULL, 1, d->parties, have) == d->parties) {
        const char *files[STATS_MP_MAX_PARTIES];
        char *paths = party_files(s, study, NULL, 1, d->parties, files);
        stats_mp_bundle_t *b = NULL;
        void *buf = NULL;
        size_t len = 0;
        int oom = !paths, bad = oom || srv_mp_sum_files(d, NULL, NULL, NULL, STATS_MP_ROUND1, files, (size_t)d->parties,
                                                        &b, err, sizeof err);
        free(paths);
        if (bad) return error_json(json, 500, "round-1 sum: %s", oom ? "out of memory" : err);
        int rc = stats_mp_bundle_write(d->ctx, d->digest, d->parties, b, &buf, &len);
        stats_mp_bundle_free(b);
        if (rc || write_file(sum, buf, len)) return error_json(json, 500, "cannot store the round-1 sum");
    }
    if (exists(sum) && !exists(final) && present(s, study, NULL, 2, d->parties, have) == d->parties) {
        const char *files[STATS_MP_MAX_PARTIES];
        char *paths = party_files(s, study, NULL, 2, d->parties, files);
        void *buf = NULL;
        size_t len = 0;
        int oom = !paths, bad = oom || srv_mp_study(d, sum, files, (size_t)d->parties, &buf, &len, err, sizeof err);
        free(paths);
        if (bad) return error_json(json, 500, "building the study: %s", oom ? "out of memory" : err);
        if (write_file(final, buf, len)) return error_json(json, 500, "cannot store the study");
    }
    return 0;
}

static json_t *missing_array(const unsigned char *have, int parties)
{
    json_t *a = json_array();
    for (int p = 1; p <= parties; p++)
        if (!have[p]) json_array_append_new(a, json_integer(p));
    return a;
}

/* The study's draft with its rounds advanced as far as the spool allows
 * (under mp_lock): NULL with 404 in *code when it is not a multiparty study;
 * else *code is advance's (0, or an error already in *json). */
static stats_mp_draft_t *draft_advanced(srv_server_t *s, const char *study, char **json, unsigned *code)
{
    char err[600];
    stats_mp_draft_t *d = load_draft(s, study, err, sizeof err);
    if (!d) {
        *code = error_json(json, 404, "not a multiparty study: %s", err);
        return NULL;
    }
    pthread_mutex_lock(&mp_lock);
    *code = advance(s, study, d, json);
    pthread_mutex_unlock(&mp_lock);
    return d;
}

unsigned srv_mp_status(srv_server_t *s, const char *study, char **json)
{
    unsigned code;
    stats_mp_draft_t *d = draft_advanced(s, study, json, &code);
    if (!d) return code;
    if (code) {
        stats_mp_draft_free(d);
        return code;
    }
    unsigned char have[STATS_MP_MAX_PARTIES + 1];
    char path[SRV_PATH_MAX];
    int ready = !srv_path(path, sizeof path, s->spool, study, "study.hst", NULL) && exists(path);
    int round = ready ? 0 : !mp_path(s, study, "round1-sum.hst", path, sizeof path) && exists(path) ? 2 : 1;
    if (round) present(s, study, NULL, round, d->parties, have);
    else memset(have, 1, sizeof have);
    *json = json_of(json_pack("{s:i,s:s,s:o}", "parties", d->parties, "state",
                              round == 1 ? "round1" : round == 2 ? "round2" : "ready", "missing",
                              missing_array(have, d->parties)));
    stats_mp_draft_free(d);
    return 200;
}

/* A job's result file, and whether the job is done. */
static int result_path(srv_server_t *s, const char *study, const char *job, char *path, size_t n)
{
    char name[SRV_ID_LEN + 16];
    snprintf(name, sizeof name, "%s.result.hst", job);
    return srv_path(path, n, s->spool, study, "jobs", name);
}

static unsigned job_done(srv_server_t *s, const char *study, const char *job, char **json)
{
    int done = 0;
    char *st = srv_jobs_status_json(s->jobs, study, job, &done);
    free(st);
    if (!st) return error_json(json, 404, "no such job");
    if (!done) return error_json(json, 409, "the job is not done");
    return 0;
}

/* The parsed study (from the cache) of a built multiparty study. */
static srv_cached_t *mp_study(srv_server_t *s, const char *study, unsigned *code, char **json)
{
    char err[400];
    srv_cached_t *e = srv_cache_get(&s->cache, s->spool, study, err, sizeof err);
    if (!e) *code = error_json(json, strstr(err, "no such study") ? 409 : 500, "%s", err);
    else if (!srv_cached_study(e)->parties) {
        srv_cache_release(&s->cache, e);
        *code = error_json(json, 400, "not a multiparty study: its results are the analyst's to decrypt");
        return NULL;
    }
    return e;
}

unsigned srv_mp_job_status(srv_server_t *s, const char *study, const char *job, char **json)
{
    unsigned code = job_done(s, study, job, json);
    if (code) return code;
    srv_cached_t *e = mp_study(s, study, &code, json);
    if (!e) return code;
    int parties = srv_cached_study(e)->parties;
    srv_cache_release(&s->cache, e);
    unsigned char have[STATS_MP_MAX_PARTIES + 1];
    present(s, study, job, 0, parties, have);
    *json = json_of(json_pack("{s:s,s:i,s:o}", "job", job, "parties", parties, "missing", missing_array(have, parties)));
    return 200;
}

/* The release file, made when every party's shares are in. */
static unsigned release_file(srv_server_t *s, const char *study, const char *job, char *out, size_t n, char **json)
{
    unsigned code = job_done(s, study, job, json);
    if (code) return code;
    char name[SRV_ID_LEN + 16], result[SRV_PATH_MAX], err[600];
    snprintf(name, sizeof name, "%s.release.hst", job);
    if (srv_path(out, n, s->spool, study, "jobs", name) || result_path(s, study, job, result, sizeof result))
        return error_json(json, 500, "spool path too long");
    if (exists(out)) return 0;
    srv_cached_t *e = mp_study(s, study, &code, json);
    if (!e) return code;
    const stats_study_t *st = srv_cached_study(e);
    unsigned char have[STATS_MP_MAX_PARTIES + 1];
    char missing[400];
    if (present(s, study, job, 0, st->parties, have) < st->parties) {
        int k = stats_mp_missing(have, st->parties, missing, sizeof missing);
        json_t *o = json_pack("{s:s,s:o}", "error", "", "missing", missing_array(have, st->parties));
        char msg[500];
        snprintf(msg, sizeof msg, "not released: the key-switch shares of %s %s are missing", k > 1 ? "parties" : "party",
                 missing);
        json_object_set_new(o, "error", json_string(msg));
        *json = json_of(o);
        srv_cache_release(&s->cache, e);
        return 409;
    }
    const char *files[STATS_MP_MAX_PARTIES];
    char *paths = party_files(s, study, job, 0, st->parties, files);
    void *buf = NULL;
    size_t len = 0;
    pthread_mutex_lock(&mp_lock);
    int bad = !paths ? snprintf(err, sizeof err, "out of memory") || 1
                     : !exists(out) && srv_mp_release(st, result, files, (size_t)st->parties, &buf, &len, err,
                                                      sizeof err);
    free(paths);
    if (!bad && buf && write_file(out, buf, len)) bad = snprintf(err, sizeof err, "cannot store the release") || 1;
    pthread_mutex_unlock(&mp_lock);
    srv_cache_release(&s->cache, e);
    return bad ? error_json(json, 500, "release: %s", err) : 0;
}

unsigned srv_mp_file(srv_server_t *s, const char *study, const char *job, const char *what, char *path, size_t n,
                     char **json)
{
    *json = NULL;
    if (job) return release_file(s, study, job, path, n, json);
    if (!strcmp(what, "draft")) {
        if (srv_path(path, n, s->spool, study, "draft.hst", NULL)) return error_json(json, 500, "spool path too long");
        return exists(path) ? 0 : error_json(json, 404, "not a multiparty study");
    }
    unsigned code;
    stats_mp_draft_t *d = draft_advanced(s, study, json, &code);
    if (!d) return code;
    int round1 = !strcmp(what, "round1");
    if (!code && (round1 ? mp_path(s, study, "round1-sum.hst", path, n)
                         : srv_path(path, n, s->spool, study, "study.hst", NULL)))
        code = error_json(json, 500, "spool path too long");
    if (!code && !exists(path)) {
        unsigned char have[STATS_MP_MAX_PARTIES + 1];
        char missing[400];
        int round = round1 ? 1 : present(s, study, NULL, 1, d->parties, have) < d->parties ? 1 : 2;
        present(s, study, NULL, round, d->parties, have);
        stats_mp_missing(have, d->parties, missing, sizeof missing);
        code = error_json(json, 409, "%s: key round %d is missing the shares of %s", round1 ? "no round-1 sum yet"
                          : "the study is not built yet", round, missing);
    }
    stats_mp_draft_free(d);
    return code;
}

/* ---- uploads ---- */
static void up_fail(srv_mp_upload_t *u, unsigned code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void up_fail(srv_mp_upload_t *u, unsigned code, const char *fmt, ...)
{
    if (u->fail_code) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->fail_msg, sizeof u->fail_msg, fmt, ap);
    va_end(ap);
    u->fail_code = code;
    if (u->fd >= 0) close(u->fd);
    u->fd = -1;
    if (u->tmp[0]) unlink(u->tmp);
    u->tmp[0] = 0;
}

srv_mp_upload_t *srv_mp_upload_new(srv_server_t *s, int kind, const char *study, const char *job, int party,
                                   unsigned *code, char *msg, size_t msglen)
{
    srv_mp_upload_t *u = calloc(1, sizeof *u);
    if (!u) {
        *code = 500;
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    u->s = s;
    u->kind = kind;
    u->party = party;
    u->fd = -1;
    if (study) snprintf(u->study, sizeof u->study, "%s", study);
    if (job) snprintf(u->job, sizeof u->job, "%s", job);
    if (srv_path(u->tmp, sizeof u->tmp, s->spool, "tmp", "mp-XXXXXX", NULL) || (u->fd = mkstemp(u->tmp)) < 0) {
        *code = storage_status(errno);
        snprintf(msg, msglen, "cannot store the upload: %s", strerror(errno));
        u->tmp[0] = 0;
        free(u);
        return NULL;
    }
    return u;
}

/* A frame header as it arrives: hestat's magic and version, never a secret
 * key, the first frame of the kind the endpoint takes. */
static void check_header(srv_mp_upload_t *u)
{
    uint16_t version, type;
    uint64_t plen;
    memcpy(&version, u->hdr + 8, 2);
    memcpy(&type, u->hdr + 10, 2);
    memcpy(&plen, u->hdr + 24, 8);
    uint16_t first = u->kind == SRV_MP_DRAFT ? CKKS_OBJ_PARAMS : STATS_OBJ_MP_BUNDLE;
    if (memcmp(u->hdr, "HESTAT\r\n", 8) || version != CKKS_FORMAT_VERSION)
        up_fail(u, 400, "not a hestat file (frame %zu has no hestat header)", u->frames + 1);
    else if (type == CKKS_OBJ_SECRET_KEY)
        up_fail(u, 400, "frame %zu is a secret key: refused (the server never holds one)", u->frames + 1);
    else if (u->frames == 0 && type != first)
        up_fail(u, 400, "not a %s (its first frame is of type %u)", u->kind == SRV_MP_DRAFT ? "draft" : "share bundle",
                type);
    else if (plen > u->s->opt.max_upload)
        up_fail(u, 413, "frame %zu claims more bytes than the upload limit", u->frames + 1);
    u->next += CKKS_HEADER_BYTES + plen;
    u->frames++;
    u->hfill = 0;
}

void srv_mp_upload_feed(srv_mp_upload_t *u, const char *data, size_t len)
{
    if (u->fail_code) return;
    if (u->size + len > u->s->opt.max_upload) {
        up_fail(u, 413, "upload exceeds the size limit (%zu MB)", u->s->opt.max_upload >> 20);
        return;
    }
    for (size_t i = 0; i < len && !u->fail_code;) {
        uint64_t at = u->size + i;
        if (at < u->next) { /* inside a payload */
            uint64_t skip = u->next - at;
            i += skip < len - i ? (size_t)skip : len - i;
            continue;
        }
        u->hdr[u->hfill++] = (uint8_t)data[i++];
        if (u->hfill == CKKS_HEADER_BYTES) check_header(u);
    }
    if (u->fail_code) return;
    if (srv_write_all(u->fd, data, len)) {
        up_fail(u, storage_status(errno), "cannot store the upload: %s", strerror(errno));
        return;
    }
    u->size += len;
}

unsigned srv_mp_upload_failed(const srv_mp_upload_t *u, const char **msg)
{
    if (msg) *msg = u->fail_msg;
    return u->fail_code;
}

void srv_mp_upload_free(srv_mp_upload_t *u)
{
    if (!u) return;
    if (u->fd >= 0) close(u->fd);
    if (u->tmp[0]) unlink(u->tmp);
    free(u);
}

/* The upload read back whole for validation, once its size is known to be
 * at most `bound`, the most a valid file of its kind takes for its draft,
 * study or result (stats_mp_*_max_bytes): a larger one is refused unread (400,
 * not a valid file), so an upload holds no more memory than a valid one. */
static void *read_tmp(srv_mp_upload_t *u, size_t bound, size_t *len)
{
    if (u->size > bound) {
        up_fail(u, 400, "not a valid %s: %zu bytes, more than one takes here (at most %zu)",
                u->kind == SRV_MP_DRAFT ? "draft" : "share bundle", u->size, bound);
        return NULL;
    }
    void *buf = NULL;
    int rc = ckks_file_read(u->tmp, bound, &buf, len);
    if (rc) up_fail(u, 500, "cannot read the upload back: %s", rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
    return rc ? NULL : buf;
}

/* The bound of a draft from its first bytes (its parameters frame). */
static size_t draft_bound(srv_mp_upload_t *u)
{
    uint8_t prefix[4096];
    ssize_t got = pread(u->fd, prefix, sizeof prefix, 0);
    size_t bound = got > 0 ? stats_mp_draft_max_bytes(prefix, (size_t)got) : 0;
    if (!bound) up_fail(u, 400, "not a valid draft: it does not start with a whole parameters frame");
    return bound;
}

/* The whole file validated for its place. 0, or a failure recorded. */
static int validate(srv_mp_upload_t *u, const char *result)
{
    size_t len;
    void *buf = NULL;
    char err[600];
    int rc = 0;
    stats_mp_bundle_t *b = NULL;
    if (u->kind == SRV_MP_DRAFT) {
        size_t bound = draft_bound(u);
        if (!bound || !(buf = read_tmp(u, bound, &len))) return -1;
        stats_mp_draft_t *d = NULL;
        if ((rc = stats_mp_draft_read(buf, len, &d))) up_fail(u, 400, "not a valid draft: %s", stats_error());
        stats_mp_draft_free(d);
    } else if (u->kind == SRV_MP_SHARES) {
        unsigned code;
        char *json = NULL;
        srv_cached_t *e = mp_study(u->s, u->study, &code, &json);
        size_t rlen = 0;
        void *rbuf = NULL;
        if (!e) {
            json_t *j = json ? json_loads(json, 0, NULL) : NULL;
            up_fail(u, code, "%s", j ? json_string_value(json_object_get(j, "error")) : "no study");
            json_decref(j);
            free(json);
            rc = -1;
        } else if (ckks_file_read(result, SRV_MP_MAX_FILE, &rbuf, &rlen)) {
            up_fail(u, 500, "the job's result is missing");
            rc = -1;
        } else {
            stats_enc_result_t *r = NULL;
            unsigned char digest[32];
            stats_mp_result_digest(rbuf, rlen, digest);
            const stats_study_t *st = srv_cached_study(e);
            if ((rc = stats_result_read(st, rbuf, rlen, &r))) up_fail(u, 500, "the job's result: %s", stats_error());
            else if (!(buf = read_tmp(u, stats_mp_keyswitch_max_bytes(st, r), &len))) rc = -1;
            else if ((rc = stats_mp_read_keyswitch(st, r, digest, u->party, buf, len, &b)))
                up_fail(u, 400, "not party %d's key-switch shares of this job's result: %s", u->party, stats_error());
            stats_enc_result_free(r);
            stats_mp_bundle_free(b); /* before the study may leave the cache */
            b = NULL;
        }
        free(rbuf);
        if (e) srv_cache_release(&u->s->cache, e);
    } else {
        stats_mp_draft_t *d = load_draft(u->s, u->study, err, sizeof err);
        const stats_mp_round_t round = u->kind == SRV_MP_ROUND1 ? STATS_MP_ROUND1 : STATS_MP_ROUND2;
        if (!d) {
            up_fail(u, 500, "%s", err);
            rc = -1;
        } else if (!(buf = read_tmp(u, stats_mp_keys_max_bytes(d, round), &len))) {
            rc = -1;
        } else if ((rc = stats_mp_read_keys(d, round, u->party, buf, len, &b)))
            up_fail(u, 400, "not party %d's round-%d shares for this draft: %s", u->party, u->kind == SRV_MP_ROUND1 ? 1 : 2,
                    stats_error());
        stats_mp_bundle_free(b); /* before its context goes with the draft */
        b = NULL;
        stats_mp_draft_free(d);
    }
    stats_mp_bundle_free(b);
    free(buf);
    return rc ? -1 : 0;
}

/* fsync, then link into place (EEXIST: the party's file is there: 409). */
static int place_file(srv_mp_upload_t *u, const char *final, const char *dir)
{
    if (fsync(u->fd) || close(u->fd)) {
        u->fd = -1;
        up_fail(u, storage_status(errno), "cannot store the upload: %s", strerror(errno));
        return -1;
    }
    u->fd = -1;
    if (link(u->tmp, final)) {
        if (errno == EEXIST)
            up_fail(u, 409, "party %d's shares for this %s are in already (a replay is refused)", u->party,
                    u->kind == SRV_MP_SHARES ? "result" : "round");
        else up_fail(u, storage_status(errno), "cannot store the shares: %s", strerror(errno));
        return -1;
    }
    unlink(u->tmp);
    u->tmp[0] = 0;
    if (srv_fsync_dir(dir)) {
        up_fail(u, storage_status(errno), "cannot store the shares: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The draft's directory (draft.hst, mp/, tables/, jobs/) made in spool/tmp
 * and renamed to spool/ID in one step. */
static unsigned finish_draft(srv_mp_upload_t *u, char **json)
{
    char id[SRV_ID_LEN + 1], dir[SRV_PATH_MAX], sub[SRV_PATH_MAX], final[SRV_PATH_MAX];
    srv_new_id(id);
    if (fsync(u->fd) || srv_path(dir, sizeof dir, u->s->spool, "tmp", "draft-XXXXXX", NULL) ||
        srv_path(final, sizeof final, u->s->spool, id, NULL, NULL) || !mkdtemp(dir))
        return error_json(json, storage_status(errno), "cannot store the draft: %s", strerror(errno));
    int ok = !srv_path(sub, sizeof sub, dir, "tables", NULL, NULL) && !mkdir(sub, 0755) &&
             !srv_path(sub, sizeof sub, dir, "jobs", NULL, NULL) && !mkdir(sub, 0755) &&
             !srv_path(sub, sizeof sub, dir, "mp", NULL, NULL) && !mkdir(sub, 0755) &&
             !srv_path(sub, sizeof sub, dir, "draft.hst", NULL, NULL) && !rename(u->tmp, sub);
    if (ok) u->tmp[0] = 0;
    ok = ok && !srv_fsync_dir(dir) && !chmod(dir, 0755) && !rename(dir, final);
    const char *placed = ok ? final : dir;
    ok = ok && !srv_fsync_dir(u->s->spool);
    if (!ok) {
        int saved = errno;
        srv_remove_tree(placed);
        return error_json(json, storage_status(saved), "cannot store the draft: %s", strerror(saved));
    }
    *json = json_of(json_pack("{s:s}", "study", id));
    return 201;
}

unsigned srv_mp_upload_finish(srv_mp_upload_t *u, char **json)
{
    *json = NULL;
    char final[SRV_PATH_MAX], dir[SRV_PATH_MAX], result[SRV_PATH_MAX], sum[SRV_PATH_MAX], built[SRV_PATH_MAX];
    unsigned code = 0;
    if (u->fail_code) goto failed;
    if (u->kind == SRV_MP_DRAFT) {
        if (validate(u, NULL)) goto failed;
        return finish_draft(u, json);
    }
    if (srv_path(built, sizeof built, u->s->spool, u->study, "study.hst", NULL) ||
        mp_path(u->s, u->study, "round1-sum.hst", sum, sizeof sum))
        return error_json(json, 500, "spool path too long");
    if (u->kind == SRV_MP_SHARES) {
        if ((code = job_done(u->s, u->study, u->job, json))) return code;
        char sdir[SRV_ID_LEN + 16], jobs[SRV_PATH_MAX];
        snprintf(sdir, sizeof sdir, "%s.shares", u->job);
        if (result_path(u->s, u->study, u->job, result, sizeof result) ||
            srv_path(jobs, sizeof jobs, u->s->spool, u->study, "jobs", NULL) ||
            srv_path(dir, sizeof dir, jobs, sdir, NULL, NULL) ||
            share_file(u->s, u->study, u->job, u->party, final, sizeof final))
            return error_json(json, 500, "spool path too long");
        if (mkdir(dir, 0755) && errno != EEXIST)
            return error_json(json, storage_status(errno), "cannot store the shares: %s", strerror(errno));
        srv_fsync_dir(jobs);
    } else {
        int round = u->kind == SRV_MP_ROUND1 ? 1 : 2;
        if (round == 1 && exists(sum))
            return error_json(json, 409, "key round 1 is complete: party %d's round-1 shares are in already", u->party);
        if (round == 2 && !exists(sum))
            return error_json(json, 409, "key round 1 is not complete yet (GET /studies/%s/mp names who is missing)",
                              u->study);
        if (round == 2 && exists(built))
            return error_json(json, 409, "the study is built: party %d's round-2 shares are in already", u->party);
        if (mp_path(u->s, u->study, NULL, dir, sizeof dir) ||
            party_file(u->s, u->study, round, u->party, final, sizeof final))
            return error_json(json, 500, "spool path too long");
    }
    if (exists(final)) {
        up_fail(u, 409, "party %d's shares for this %s are in already (a replay is refused)", u->party,
                u->kind == SRV_MP_SHARES ? "result" : "round");
        goto failed;
    }
    if (validate(u, result) || place_file(u, final, dir)) goto failed;
    if (u->kind != SRV_MP_SHARES) {
        char err[600];
        stats_mp_draft_t *d = load_draft(u->s, u->study, err, sizeof err);
        if (!d) return error_json(json, 500, "%s", err);
        pthread_mutex_lock(&mp_lock);
        code = advance(u->s, u->study, d, json);
        pthread_mutex_unlock(&mp_lock);
        stats_mp_draft_free(d);
        if (code) return code;
    }
    *json = json_of(json_pack("{s:i,s:s}", "party", u->party, "stored",
                              u->kind == SRV_MP_ROUND1 ? "round1" : u->kind == SRV_MP_ROUND2 ? "round2" : "shares"));
    return 201;
failed:
    *json = srv_error_json(u->fail_msg);
    return u->fail_code;
}
