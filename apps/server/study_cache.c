/*
 * One parsed copy of each study, shared by table uploads (each is validated
 * against it) and jobs. Parsing a study costs tens of milliseconds and tens
 * of megabytes; doing it once per upload let a stream of tiny bad uploads
 * burn a core. A stats_study_t is read-only once parsed (the evaluator and
 * the readers take const contexts and keys), so threads share it; entries
 * are reference-counted and the least recently used idle ones are evicted
 * beyond the capacity.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apps/server/serve_impl.h"

struct srv_cached {
    char id[SRV_ID_LEN + 1];
    stats_study_t *study; /* NULL while loading */
    int refs, loading, forgotten;
    uint64_t used;
    srv_cached_t *next;
};

void srv_cache_init(srv_cache_t *c, size_t cap)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->parse, NULL);
    pthread_cond_init(&c->loaded, NULL);
    c->cap = cap ? cap : 1;
}

static void unlink_entry(srv_cache_t *c, srv_cached_t *e)
{
    for (srv_cached_t **p = &c->head; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            c->count--;
            return;
        }
}

static void free_entry(srv_cached_t *e)
{
    stats_study_free(e->study);
    free(e);
}

void srv_cache_destroy(srv_cache_t *c)
{
    for (srv_cached_t *e = c->head, *n; e; e = n) {
        n = e->next;
        free_entry(e);
    }
    c->head = NULL;
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->parse);
    pthread_cond_destroy(&c->loaded);
}

/* Under the lock: idle entries beyond the capacity go, oldest first. */
static void evict(srv_cache_t *c)
{
    while (c->count > c->cap) {
        srv_cached_t *old = NULL;
        for (srv_cached_t *e = c->head; e; e = e->next)
            if (!e->refs && !e->loading && (!old || e->used < old->used)) old = e;
        if (!old) return; /* all in use: over capacity until released */
        unlink_entry(c, old);
        free_entry(old);
    }
}

static srv_cached_t *find(srv_cache_t *c, const char *id)
{
    for (srv_cached_t *e = c->head; e; e = e->next)
        if (!e->forgotten && !strcmp(e->id, id)) return e;
    return NULL;
}

/* Streams the file through the incremental reader: one frame in memory at
 * a time rather than the whole 30 MB file and its parse side by side. */
static stats_study_t *load_study(const char *spool, const char *id, char *err, size_t errlen)
{
    char path[SRV_PATH_MAX];
    if (srv_path(path, sizeof path, spool, id, "study.hst", NULL)) {
        snprintf(err, errlen, "spool path too long");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, errno == ENOENT ? "no such study" : "study unreadable: %s", strerror(errno));
        return NULL;
    }
    stats_stream_t *r = NULL;
    stats_study_t *study = NULL;
    int rc = stats_stream_study_new(&r);
    static const size_t chunk = (size_t)1 << 20;
    char *buf = rc ? NULL : malloc(chunk);
    ssize_t got = buf ? 0 : -1;
    while (buf && !rc && (got = read(fd, buf, chunk)) != 0) {
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) break;
        rc = stats_stream_feed(r, buf, (size_t)got);
    }
    if (!rc && got == 0) rc = stats_stream_finish(r, &study, NULL);
    if (rc || got != 0) {
        snprintf(err, errlen, "study unreadable: %s", rc ? stats_error() : strerror(errno));
        study = NULL;
    }
    free(buf);
    stats_stream_free(r);
    close(fd);
    return study;
}

srv_cached_t *srv_cache_get(srv_cache_t *c, const char *spool, const char *id, char *err, size_t errlen)
{
    pthread_mutex_lock(&c->lock);
    srv_cached_t *e;
    while ((e = find(c, id)) && e->loading) pthread_cond_wait(&c->loaded, &c->lock);
    if (e) {
        e->refs++;
        e->used = ++c->clock;
        pthread_mutex_unlock(&c->lock);
        return e;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        pthread_mutex_unlock(&c->lock);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(e->id, sizeof e->id, "%s", id);
    e->loading = 1;
    e->refs = 1;
    e->next = c->head;
    c->head = e;
    c->count++;
    pthread_mutex_unlock(&c->lock);

    pthread_mutex_lock(&c->parse);
    stats_study_t *study = load_study(spool, id, err, errlen);
    pthread_mutex_unlock(&c->parse);

    pthread_mutex_lock(&c->lock);
    e->loading = 0;
    e->study = study;
    e->used = ++c->clock;
    if (!study) { /* the next caller tries again */
        unlink_entry(c, e);
        free(e);
        e = NULL;
    } else {
        evict(c);
    }
    pthread_cond_broadcast(&c->loaded);
    pthread_mutex_unlock(&c->lock);
    return e;
}

srv_cached_t *srv_cache_peek(srv_cache_t *c, const char *id)
{
    pthread_mutex_lock(&c->lock);
    srv_cached_t *e = find(c, id);
    if (e && e->loading) e = NULL;
    if (e) {
        e->refs++;
        e->used = ++c->clock;
    }
    pthread_mutex_unlock(&c->lock);
    return e;
}

const stats_study_t *srv_cached_study(const srv_cached_t *e) { return e->study; }

void srv_cache_release(srv_cache_t *c, srv_cached_t *e)
{
    if (!e) return;
    pthread_mutex_lock(&c->lock);
    e->refs--;
    if (!e->refs && e->forgotten) {
        unlink_entry(c, e);
        free_entry(e);
    } else {
        evict(c);
    }
    pthread_mutex_unlock(&c->lock);
}

void srv_cache_put(srv_cache_t *c, const char *id, stats_study_t *study)
{
    srv_cached_t *e = calloc(1, sizeof *e);
    if (!e) {
        stats_study_free(study); /* loaded again when needed */
        return;
    }
    snprintf(e->id, sizeof e->id, "%s", id);
    e->study = study;
    pthread_mutex_lock(&c->lock);
    e->used = ++c->clock;
    e->next = c->head;
    c->head = e;
    c->count++;
    evict(c);
    pthread_mutex_unlock(&c->lock);
}

void srv_cache_forget(srv_cache_t *c, const char *id)
{
    pthread_mutex_lock(&c->lock);
    srv_cached_t *e;
    while ((e = find(c, id)) && e->loading) pthread_cond_wait(&c->loaded, &c->lock);
    if (e && !e->refs) {
        unlink_entry(c, e);
        free_entry(e);
    } else if (e) {
        e->forgotten = 1;
    }
    pthread_mutex_unlock(&c->lock);
}
