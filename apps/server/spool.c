/*
 * hestat-server's spool: IDs, paths, durable renames, and the clean-up of
 * what a killed server leaves behind.
 *
 *   spool/tmp/                         uploads in progress, studies being made or deleted
 *   spool/ID/study.hst                 the study
 *   spool/ID/tables/TABLE.hst          its tables
 *   spool/ID/tables/DIGEST.sha         duplicate marker: BLAKE2b of a table's bytes -> TABLE
 *   spool/ID/jobs/JOB.json             job state
 *   spool/ID/jobs/JOB.result.hst       job result
 *   spool/ID/draft.hst, mp/, jobs/JOB.shares/, jobs/JOB.release.hst   multiparty studies (mp_http.c)
 *
 * Everything that appears under spool/ID is complete: it is written under a
 * temporary name (spool/tmp or *.tmp.XXXXXX), fsynced, renamed, and its
 * directory fsynced. So after a crash only temporaries can be half written,
 * and srv_spool_clean removes them at the next start.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/server/serve_impl.h"

int srv_valid_id(const char *s, size_t len)
{
    if (len != SRV_ID_LEN) return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

void srv_new_id(char out[SRV_ID_LEN + 1])
{
    unsigned char r[SRV_ID_LEN / 2];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(out, SRV_ID_LEN + 1, r, sizeof r);
}

int srv_path(char *out, size_t n, const char *spool, const char *a, const char *b, const char *c)
{
    int w = snprintf(out, n, "%s%s%s%s%s%s%s", spool, a ? "/" : "", a ? a : "", b ? "/" : "", b ? b : "",
                     c ? "/" : "", c ? c : "");
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

int srv_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd) && errno != EINVAL ? -1 : 0; /* EINVAL: a file system that cannot */
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int srv_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = ENOSPC;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* nftw passes no context: the first error of this thread's walk. */
static _Thread_local int remove_errno;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP || flag == FTW_DNR ? rmdir(path) : unlink(path);
    if (rc && errno != ENOENT && !remove_errno) remove_errno = errno;
    return 0; /* go on: remove as much as can be removed */
}

int srv_remove_tree(const char *path)
{
    remove_errno = 0;
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) && errno != ENOENT && !remove_errno)
        remove_errno = errno;
    if (remove_errno) {
        errno = remove_errno;
        return -1;
    }
    return 0;
}

/* "NAME.tmp.XXXXXX": what ckks_file_write leaves when killed mid-write. */
static int is_write_leftover(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    return t && strlen(t + 5) == 6;
}

static size_t remove_leftovers(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[SRV_PATH_MAX];
        if (!is_write_leftover(e->d_name) || srv_path(path, sizeof path, dir, e->d_name, NULL, NULL)) continue;
        n += unlink(path) == 0;
    }
    if (d) closedir(d);
    return n;
}

/* Table IDs that have a duplicate marker, sorted (for bsearch). */
typedef struct {
    char (*id)[SRV_ID_LEN];
    size_t n, cap;
} id_set_t;

static int cmp_id(const void *a, const void *b) { return memcmp(a, b, SRV_ID_LEN); }

static void id_set_add(id_set_t *s, const char *id)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        void *p = realloc(s->id, cap * sizeof *s->id);
        if (!p) return; /* then that table is hashed again: slower, still right */
        s->id = p;
        s->cap = cap;
    }
    memcpy(s->id[s->n++], id, SRV_ID_LEN);
}

static int id_set_has(const id_set_t *s, const char *id)
{
    return s->n && bsearch(id, s->id, s->n, sizeof *s->id, cmp_id) != NULL;
}

/* A marker (DIGEST.sha holding a table ID) is written before its table is
 * renamed into place; a crash between the two leaves a marker for a table
 * that was never acknowledged, which would refuse its honest re-upload.
 * The IDs of the markers kept go into *kept. */
static size_t remove_orphan_markers(const char *tables, id_set_t *kept)
{
    size_t n = 0;
    DIR *d = opendir(tables);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len != 2 * 32 + 4 || strcmp(e->d_name + 64, ".sha")) continue;
        char path[SRV_PATH_MAX], id[SRV_ID_LEN + 8] = "", table[SRV_PATH_MAX];
        if (srv_path(path, sizeof path, tables, e->d_name, NULL, NULL)) continue;
        FILE *f = fopen(path, "r");
        size_t got = f ? fread(id, 1, SRV_ID_LEN, f) : 0;
        if (f) fclose(f);
        id[got] = 0;
        int keep = got == SRV_ID_LEN && srv_valid_id(id, got);
        if (keep) {
            memcpy(id + SRV_ID_LEN, ".hst", 5);
            keep = !srv_path(table, sizeof table, tables, id, NULL, NULL) && access(table, F_OK) == 0;
        }
        if (keep) id_set_add(kept, id);
        else n += unlink(path) == 0;
    }
    if (d) closedir(d);
    if (kept->n) qsort(kept->id, kept->n, sizeof *kept->id, cmp_id);
    return n;
}

/* BLAKE2b of a file's bytes, as an upload computes it. */
static int hash_file(const char *path, char hex[2 * crypto_generichash_BYTES + 1])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    void *mem = NULL;
    crypto_generichash_state *st = posix_memalign(&mem, 64, sizeof *st) ? NULL : mem; /* libsodium's alignment */
    static const size_t chunk = (size_t)1 << 20;
    unsigned char *buf = malloc(chunk), d[crypto_generichash_BYTES];
    int rc = st && buf ? 0 : -1;
    if (!rc) crypto_generichash_init(st, NULL, 0, sizeof d);
    for (ssize_t got; !rc && (got = read(fd, buf, chunk)) != 0;) {
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) rc = -1;
        else crypto_generichash_update(st, buf, (size_t)got);
    }
    if (!rc) {
        crypto_generichash_final(st, d, sizeof d);
        sodium_bin2hex(hex, 2 * sizeof d + 1, d, sizeof d);
    }
    free(buf);
    free(st);
    close(fd);
    return rc;
}

/* Tables stored before duplicate markers existed get theirs, so the rule
 * "the same bytes are refused" holds for them too. */
static void add_missing_markers(const char *tables, const id_set_t *marked)
{
    DIR *d = opendir(tables);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len != SRV_ID_LEN + 4 || strcmp(e->d_name + SRV_ID_LEN, ".hst") ||
            !srv_valid_id(e->d_name, SRV_ID_LEN) || id_set_has(marked, e->d_name))
            continue;
        char path[SRV_PATH_MAX], marker[SRV_PATH_MAX], hex[2 * crypto_generichash_BYTES + 1], name[80], other[40] = "";
        if (srv_path(path, sizeof path, tables, e->d_name, NULL, NULL) || hash_file(path, hex)) continue;
        snprintf(name, sizeof name, "%s.sha", hex);
        if (srv_path(marker, sizeof marker, tables, name, NULL, NULL)) continue;
        int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            if (srv_write_all(fd, e->d_name, SRV_ID_LEN) || fsync(fd)) unlink(marker);
            close(fd);
            continue;
        }
        FILE *f = fopen(marker, "r");
        size_t n = f ? fread(other, 1, SRV_ID_LEN, f) : 0;
        if (f) fclose(f);
        if (n == SRV_ID_LEN && memcmp(other, e->d_name, SRV_ID_LEN))
            fprintf(stderr, "hestat-server: warning: %s holds the same bytes as table %.32s (uploaded twice before "
                            "duplicates were refused): its rows are counted twice\n", path, other);
    }
    if (d) closedir(d);
    srv_fsync_dir(tables);
}

static size_t clean_study(const char *spool, const char *id)
{
    char dir[SRV_PATH_MAX], sub[SRV_PATH_MAX];
    if (srv_path(dir, sizeof dir, spool, id, NULL, NULL)) return 0;
    size_t n = remove_leftovers(dir);
    if (!srv_path(sub, sizeof sub, dir, "jobs", NULL, NULL)) n += remove_leftovers(sub);
    if (!srv_path(sub, sizeof sub, dir, "mp", NULL, NULL)) n += remove_leftovers(sub); /* sums, the study's parts */
    if (!srv_path(sub, sizeof sub, dir, "tables", NULL, NULL)) {
        id_set_t marked = {0};
        n += remove_leftovers(sub);
        n += remove_orphan_markers(sub, &marked);
        add_missing_markers(sub, &marked);
        free(marked.id);
    }
    return n;
}

static size_t empty_tmp(const char *spool)
{
    char tmp[SRV_PATH_MAX], path[SRV_PATH_MAX];
    size_t n = 0;
    if (srv_path(tmp, sizeof tmp, spool, "tmp", NULL, NULL)) return 0;
    DIR *d = opendir(tmp);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (srv_path(path, sizeof path, tmp, e->d_name, NULL, NULL)) continue;
        n += srv_remove_tree(path) == 0;
    }
    if (d) closedir(d);
    return n;
}

size_t srv_spool_clean(const char *spool)
{
    size_t n = empty_tmp(spool);
    DIR *d = opendir(spool);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (srv_valid_id(e->d_name, strlen(e->d_name))) n += clean_study(spool, e->d_name);
    if (d) closedir(d);
    return n;
}
