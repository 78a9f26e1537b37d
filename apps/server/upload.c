/*
 * Uploads (POST /studies, POST /studies/ID/tables), never whole in memory:
 * each chunk is validated by the incremental reader (stats_stream_*: one
 * frame buffered at most, a bad or foreign header refused from its first
 * bytes), hashed (BLAKE2b, for duplicates) and appended to spool/tmp. The
 * first bad chunk stops storing and validating; the rest of the body is read
 * and dropped, because libmicrohttpd 0.9.75 only lets a response be queued
 * before the body or after it.
 *
 * At the end, on an offload thread: the reader's final check, fsync of the
 * file, then
 *   - a table: its digest marker tables/DIGEST.sha is created with O_EXCL
 *     (so of two concurrent uploads of the same bytes exactly one wins, and
 *     the marker outlives restarts), fsynced, then the table is renamed into
 *     place and the directory fsynced; a duplicate is 409;
 *   - a study: made complete in spool/tmp (study.hst, tables/, jobs/), then
 *     the directory is renamed to spool/ID in one step, so a crash never
 *     leaves half a study; its parsed form goes to the study cache.
 * 201 is sent only after all of it is on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/server/serve_impl.h"

struct srv_upload {
    crypto_generichash_state hash; /* first: libsodium wants it 64-byte aligned */
    srv_server_t *s;
    char study_id[SRV_ID_LEN + 1]; /* tables: the study they belong to */
    srv_cached_t *study;
    stats_stream_t *stream;
    int fd;
    char tmp[SRV_PATH_MAX];
    uint64_t size;
    unsigned fail_code;
    char fail_msg[480];
};

/* Storage errors: 507 when the disk is full, so a client knows to wait. */
static unsigned storage_status(int err) { return err == ENOSPC || err == EDQUOT ? 507 : 500; }

static void drop_storage(srv_upload_t *u)
{
    if (u->fd >= 0) close(u->fd);
    u->fd = -1;
    if (u->tmp[0]) unlink(u->tmp);
    u->tmp[0] = 0;
    stats_stream_free(u->stream); /* its frame buffer goes now, not at the end of the body */
    u->stream = NULL;
}

static void fail(srv_upload_t *u, unsigned code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(srv_upload_t *u, unsigned code, const char *fmt, ...)
{
    if (u->fail_code) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->fail_msg, sizeof u->fail_msg, fmt, ap);
    va_end(ap);
    u->fail_code = code;
    drop_storage(u);
}

srv_upload_t *srv_upload_new(srv_server_t *s, const char *study_id, srv_cached_t *e, unsigned *code, char *msg,
                             size_t msglen)
{
    void *mem = NULL;
    if (posix_memalign(&mem, 64, sizeof(srv_upload_t))) {
        srv_cache_release(&s->cache, e);
        *code = 500;
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    srv_upload_t *u = memset(mem, 0, sizeof *u);
    u->s = s;
    u->fd = -1;
    u->study = e;
    if (study_id) snprintf(u->study_id, sizeof u->study_id, "%s", study_id);
    crypto_generichash_init(&u->hash, NULL, 0, crypto_generichash_BYTES);
    int rc = e ? stats_stream_table_new(srv_cached_study(e), &u->stream) : stats_stream_study_new(&u->stream);
    if (rc || srv_path(u->tmp, sizeof u->tmp, s->spool, "tmp", "upload-XXXXXX", NULL)) {
        *code = 500;
        snprintf(msg, msglen, "cannot start the upload: %s", rc ? stats_strerror(rc) : "spool path too long");
        u->tmp[0] = 0;
        srv_upload_free(u);
        return NULL;
    }
    u->fd = mkstemp(u->tmp);
    if (u->fd < 0) {
        *code = storage_status(errno);
        snprintf(msg, msglen, "cannot store the upload: %s", strerror(errno));
        u->tmp[0] = 0;
        srv_upload_free(u);
        return NULL;
    }
    return u;
}

void srv_upload_feed(srv_upload_t *u, const char *data, size_t len)
{
    if (u->fail_code) return;
    if (u->size + len > u->s->opt.max_upload) {
        fail(u, 413, "upload exceeds the size limit (%zu MB)", u->s->opt.max_upload >> 20);
        return;
    }
    if (stats_stream_feed(u->stream, data, len)) {
        fail(u, 400, "%s: %s", u->study ? "not a valid table for this study" : "not a valid study", stats_error());
        return;
    }
    if (srv_write_all(u->fd, data, len)) {
        fail(u, storage_status(errno), "cannot store the upload: %s", strerror(errno));
        return;
    }
    crypto_generichash_update(&u->hash, (const unsigned char *)data, len);
    u->size += len;
}

unsigned srv_upload_failed(const srv_upload_t *u, const char **msg)
{
    if (msg) *msg = u->fail_msg;
    return u->fail_code;
}

static char *json_of(json_t *o)
{
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return txt;
}

/* The stream's last check and the file on disk. 0, or a failure recorded. */
static int seal_upload(srv_upload_t *u, stats_study_t **study, uint64_t *nrows)
{
    if (stats_stream_finish(u->stream, study, nrows)) {
        fail(u, 400, "%s: %s", u->study ? "not a valid table for this study" : "not a valid study", stats_error());
        return -1;
    }
    if (fsync(u->fd) || close(u->fd)) {
        u->fd = -1;
        fail(u, storage_status(errno), "cannot store the upload: %s", strerror(errno));
        return -1;
    }
    u->fd = -1;
    return 0;
}

/* Another table with these exact bytes: its ID from the marker. */
static void read_marker(const char *path, char id[SRV_ID_LEN + 1])
{
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(id, 1, SRV_ID_LEN, f) : 0;
    if (f) fclose(f);
    id[got] = 0;
    if (!srv_valid_id(id, got)) snprintf(id, SRV_ID_LEN + 1, "?");
}

/* Claims the digest for table id: 0, or a failure recorded (409 for a duplicate). */
static int claim_digest(srv_upload_t *u, const char *tables, const char *id, char *marker, size_t markerlen)
{
    unsigned char d[crypto_generichash_BYTES];
    char hex[2 * sizeof d + 1], name[2 * sizeof d + 8];
    crypto_generichash_final(&u->hash, d, sizeof d);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    snprintf(name, sizeof name, "%s.sha", hex);
    if (srv_path(marker, markerlen, tables, name, NULL, NULL)) {
        fail(u, 500, "spool path too long");
        return -1;
    }
    int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
        char other[SRV_ID_LEN + 1];
        read_marker(marker, other);
        fail(u, 409, "this table was already uploaded to this study (table %s): the same rows would be counted twice",
             other);
        return -1;
    }
    if (fd < 0) {
        if (errno == ENOENT) fail(u, 404, "no such study (deleted during the upload)");
        else fail(u, storage_status(errno), "cannot record the table: %s", strerror(errno));
        return -1;
    }
    int bad = srv_write_all(fd, id, SRV_ID_LEN) || fsync(fd);
    int saved = errno;
    if (close(fd)) bad = 1;
    if (bad || srv_fsync_dir(tables)) {
        unlink(marker);
        fail(u, storage_status(bad ? saved : errno), "cannot record the table: %s", strerror(bad ? saved : errno));
        return -1;
    }
    return 0;
}

static unsigned finish_table(srv_upload_t *u, char **json)
{
    uint64_t nrows = 0;
    char tables[SRV_PATH_MAX], marker[SRV_PATH_MAX], path[SRV_PATH_MAX], id[SRV_ID_LEN + 1], name[SRV_ID_LEN + 8];
    srv_new_id(id);
    snprintf(name, sizeof name, "%s.hst", id);
    if (srv_path(tables, sizeof tables, u->s->spool, u->study_id, "tables", NULL) ||
        srv_path(path, sizeof path, tables, name, NULL, NULL)) {
        fail(u, 500, "spool path too long");
        return 0;
    }
    if (seal_upload(u, NULL, &nrows) || claim_digest(u, tables, id, marker, sizeof marker)) return 0;
    if (rename(u->tmp, path) || srv_fsync_dir(tables)) {
        int saved = errno;
        unlink(marker);
        fail(u, saved == ENOENT ? 404 : storage_status(saved), "%s: %s",
             saved == ENOENT ? "no such study (deleted during the upload)" : "cannot store the table",
             strerror(saved));
        return 0;
    }
    u->tmp[0] = 0;
    *json = json_of(json_pack("{s:s,s:I}", "table", id, "rows", (json_int_t)nrows));
    return 201;
}

/* study.hst, tables/ and jobs/ in a directory of spool/tmp, then renamed
 * to spool/ID in one step. */
static int place_study(srv_upload_t *u, const char *id)
{
    char dir[SRV_PATH_MAX], sub[SRV_PATH_MAX], final[SRV_PATH_MAX];
    if (srv_path(dir, sizeof dir, u->s->spool, "tmp", "study-XXXXXX", NULL) ||
        srv_path(final, sizeof final, u->s->spool, id, NULL, NULL) || !mkdtemp(dir)) {
        fail(u, storage_status(errno), "cannot store the study: %s", strerror(errno));
        return -1;
    }
    int ok = !srv_path(sub, sizeof sub, dir, "tables", NULL, NULL) && !mkdir(sub, 0755) &&
             !srv_path(sub, sizeof sub, dir, "jobs", NULL, NULL) && !mkdir(sub, 0755) &&
             !srv_path(sub, sizeof sub, dir, "study.hst", NULL, NULL) && !rename(u->tmp, sub);
    if (ok) u->tmp[0] = 0;
    ok = ok && !srv_fsync_dir(dir) && !chmod(dir, 0755) && !rename(dir, final);
    const char *placed = ok ? final : dir;
    ok = ok && !srv_fsync_dir(u->s->spool); /* the study exists once its name is on disk */
    if (!ok) {
        int saved = errno;
        srv_remove_tree(placed);
        fail(u, storage_status(saved), "cannot store the study: %s", strerror(saved));
        return -1;
    }
    return 0;
}

static unsigned finish_study(srv_upload_t *u, char **json)
{
    stats_study_t *study = NULL;
    char id[SRV_ID_LEN + 1];
    srv_new_id(id);
    if (seal_upload(u, &study, NULL) || place_study(u, id)) {
        stats_study_free(study);
        return 0;
    }
    srv_cache_put(&u->s->cache, id, study);
    *json = json_of(json_pack("{s:s}", "study", id));
    return 201;
}

unsigned srv_upload_finish(srv_upload_t *u, char **json)
{
    *json = NULL;
    unsigned code = u->fail_code ? 0 : u->study ? finish_table(u, json) : finish_study(u, json);
    if (!code) {
        code = u->fail_code;
        *json = srv_error_json(u->fail_msg);
    }
    return code;
}

void srv_upload_free(srv_upload_t *u)
{
    if (!u) return;
    drop_storage(u);
    srv_cache_release(&u->s->cache, u->study);
    free(u);
}
