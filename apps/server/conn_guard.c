/*
 * The header deadline. libmicrohttpd 0.9.75's only timeout
 * (MHD_OPTION_CONNECTION_TIMEOUT) is restarted by every byte, so a client
 * trickling one byte every few seconds holds a connection for ever. Here
 * every connection is tracked from its start (MHD_OPTION_NOTIFY_CONNECTION);
 * the access handler's first call marks its headers received; a reaper
 * thread shuts down (shutdown(2), the socket stays libmicrohttpd's to close)
 * each connection whose headers are not in after the deadline. A kept-alive
 * connection gets a new deadline after each request.
 *
 * The socket is only touched under the guard's lock, and libmicrohttpd calls
 * MHD_CONNECTION_NOTIFY_CLOSED, which takes the same lock, before it closes
 * the socket (daemon.c, MHD_cleanup_connections and new_connection_process_),
 * so the reaper never shuts down a descriptor that was closed and reused.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "apps/server/serve_impl.h"

struct srv_conn {
    int fd;
    int in_request, reaped;
    double start;
    srv_conn_t *prev, *next;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Checks a few times per deadline: a connection is closed within
 * header_timeout plus a quarter of it (at most a second). */
static void *reaper(void *arg)
{
    srv_guard_t *g = arg;
    double period = g->header_timeout / 4 < 1 ? g->header_timeout / 4 : 1;
    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        double now = now_s();
        for (srv_conn_t *c = g->head; c; c = c->next)
            if (!c->in_request && !c->reaped && now - c->start > g->header_timeout) {
                shutdown(c->fd, SHUT_RDWR); /* libmicrohttpd sees the end and closes it */
                c->reaped = 1;
                atomic_fetch_add(&g->reaped, 1);
            }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        double t = until.tv_sec + until.tv_nsec * 1e-9 + period;
        until.tv_sec = (time_t)t;
        until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
        pthread_cond_timedwait(&g->wake, &g->lock, &until);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int srv_guard_start(srv_guard_t *g, int header_timeout)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->wake, NULL);
    g->head = NULL;
    g->stop = 0;
    g->header_timeout = header_timeout;
    atomic_init(&g->reaped, 0);
    return pthread_create(&g->reaper, NULL, reaper, g) ? -1 : 0;
}

void srv_guard_stop(srv_guard_t *g)
{
    pthread_mutex_lock(&g->lock);
    g->stop = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->reaper, NULL);
}

void srv_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    srv_guard_t *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        srv_conn_t *t = fd ? calloc(1, sizeof *t) : NULL;
        *socket_context = t;
        if (!t) return; /* untracked: only the idle timeout applies */
        t->fd = fd->connect_fd;
        t->start = now_s();
        pthread_mutex_lock(&g->lock);
        t->next = g->head;
        if (g->head) g->head->prev = t;
        g->head = t;
        pthread_mutex_unlock(&g->lock);
        return;
    }
    srv_conn_t *t = *socket_context;
    if (!t) return;
    pthread_mutex_lock(&g->lock);
    if (t->prev) t->prev->next = t->next;
    else g->head = t->next;
    if (t->next) t->next->prev = t->prev;
    pthread_mutex_unlock(&g->lock);
    free(t);
    *socket_context = NULL;
}

static srv_conn_t *tracked(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

void srv_guard_request_started(srv_guard_t *g, struct MHD_Connection *c)
{
    srv_conn_t *t = tracked(c);
    if (!t) return;
    pthread_mutex_lock(&g->lock);
    t->in_request = 1;
    pthread_mutex_unlock(&g->lock);
}

void srv_guard_request_done(srv_guard_t *g, struct MHD_Connection *c)
{
    srv_conn_t *t = tracked(c);
    if (!t) return;
    pthread_mutex_lock(&g->lock);
    t->in_request = 0;
    t->start = now_s();
    pthread_mutex_unlock(&g->lock);
}
