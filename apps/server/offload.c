/*
 * Threads for the blocking parts of a request (parsing a study, fsync,
 * renames, deleting a tree). libmicrohttpd's threads each serve many
 * connections with epoll; one of them blocked for a second would stall every
 * connection it holds, /health included. So a request that must block is
 * suspended (MHD_suspend_connection), its work runs here, and the task
 * resumes it. libmicrohttpd aborts if it is stopped with a connection still
 * suspended: srv_offload_stop refuses new work and waits for all of it.
 */
#include <stdlib.h>

#include "apps/server/serve_impl.h"

static void *offload_thread(void *arg)
{
    srv_offload_t *o = arg;
    pthread_mutex_lock(&o->lock);
    for (;;) {
        while (!o->head && !(o->closed && !o->pending)) pthread_cond_wait(&o->work, &o->lock);
        if (!o->head) break;
        srv_task_t *t = o->head;
        o->head = t->next;
        if (!o->head) o->tail = NULL;
        pthread_mutex_unlock(&o->lock);
        t->run(t); /* resumes its connection: t may be gone after this */
        pthread_mutex_lock(&o->lock);
        if (!--o->pending) pthread_cond_broadcast(&o->idle);
        if (o->closed && !o->pending) pthread_cond_broadcast(&o->work);
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

int srv_offload_start(srv_offload_t *o, int nthreads)
{
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->work, NULL);
    pthread_cond_init(&o->idle, NULL);
    o->head = o->tail = NULL;
    o->pending = 0;
    o->closed = 0;
    o->threads = calloc((size_t)nthreads, sizeof *o->threads);
    if (!o->threads) return -1;
    for (o->nthreads = 0; o->nthreads < nthreads; o->nthreads++)
        if (pthread_create(&o->threads[o->nthreads], NULL, offload_thread, o)) break;
    return o->nthreads ? 0 : -1;
}

int srv_offload_reserve(srv_offload_t *o)
{
    pthread_mutex_lock(&o->lock);
    int ok = !o->closed;
    if (ok) o->pending++;
    pthread_mutex_unlock(&o->lock);
    return ok;
}

void srv_offload_submit(srv_offload_t *o, srv_task_t *t)
{
    t->next = NULL;
    pthread_mutex_lock(&o->lock);
    if (o->tail) o->tail->next = t;
    else o->head = t;
    o->tail = t;
    pthread_cond_signal(&o->work);
    pthread_mutex_unlock(&o->lock);
}

void srv_offload_stop(srv_offload_t *o)
{
    pthread_mutex_lock(&o->lock);
    o->closed = 1;
    while (o->pending) pthread_cond_wait(&o->idle, &o->lock);
    pthread_cond_broadcast(&o->work);
    pthread_mutex_unlock(&o->lock);
    for (int i = 0; i < o->nthreads; i++) pthread_join(o->threads[i], NULL);
    free(o->threads);
    o->threads = NULL;
    o->nthreads = 0;
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->work);
    pthread_cond_destroy(&o->idle);
}
