/* hestat-server compute under MPI (mpirun -n K hestat-server compute JOB
 * --out RESULT): every rank reads the job, computes the partial sums of its
 * share of every table's chunks (rank r: chunks r, r + K, ...), then the
 * ranks exchange them so that rank r holds the totals of the sums of packed
 * ciphertexts r, r + K, ... (every pair of ranks swaps once), finishes
 * those (the key switches, folds, masks and packing), and the packed
 * ciphertexts meet at rank 0 along a binomial tree (rank r receives from
 * r + d for d = 1, 2, 4, ... while r is a multiple of 2d, then sends to
 * r - d), which rescales and writes them. Partial sums are exact modular
 * sums and finishing a packed ciphertext does not depend on where it runs,
 * so rank 0's result is byte for byte the one-process result, for any K.
 * Any failure aborts the whole run (MPI_Abort): mpirun exits non-zero and
 * no result is written.
 *
 * MPI is optional at build time: the Makefile compiles this file with
 * HESTAT_HAVE_MPI when it finds Open MPI (pkg-config ompi-c, or mpicc). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apps/server/serve.h"
#include "stats/stats.h"

void stats_set_error(const char *fmt, ...);

#ifdef HESTAT_HAVE_MPI
#include <mpi.h>
#endif

int srv_mpi_launched(void)
{
    /* Set by Open MPI's and PMIx/PMI launchers for every process they start. */
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int srv_mpi_available(void)
{
#ifdef HESTAT_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

#ifdef HESTAT_HAVE_MPI
typedef struct {
    int rank, size;
    unsigned table; /* message tag: one per table and stage */
} mpi_arg_t;

/* Bytes in pieces MPI's int counts can carry. */
static int send_bytes(const uint8_t *b, size_t len, int to, int tag)
{
    uint64_t l = len;
    if (MPI_Send(&l, 1, MPI_UINT64_T, to, tag, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    for (size_t off = 0; off < len;) {
        int n = len - off > (size_t)INT_MAX / 2 ? INT_MAX / 2 : (int)(len - off);
        if (MPI_Send(b + off, n, MPI_BYTE, to, tag, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
        off += (size_t)n;
    }
    return 0;
}

static uint8_t *recv_bytes(int from, int tag, size_t max, size_t *len)
{
    uint64_t l;
    if (MPI_Recv(&l, 1, MPI_UINT64_T, from, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS || l > max)
        return NULL;
    uint8_t *b = malloc(l ? l : 1);
    if (!b) return NULL;
    for (size_t off = 0; off < l;) {
        int n = l - off > (size_t)INT_MAX / 2 ? INT_MAX / 2 : (int)(l - off);
        if (MPI_Recv(b + off, n, MPI_BYTE, from, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            free(b);
            return NULL;
        }
        off += (size_t)n;
    }
    *len = l;
    return b;
}

/* STATS_REDUCE_SHARES: in round d = 1 .. size-1, rank r sends rank r + d
 * (mod size) that rank's share of its sums and receives its own share
 * from rank r - d, adding it in. Slot by slot, straight from and into the
 * ciphertexts: first a header (per slot: its degree and primes, 0 when not
 * sent, and its scale), then each slot's words, received into one scratch
 * ciphertext, checked and added (stats_partial_add_slot). No wire form is
 * built: fresh buffers of the share's size (26 MB a rank at 16 columns)
 * cost more in page faults than the transfer. */
static int exchange_shares(mpi_arg_t *a, const ckks_context_t *ctx, stats_partial_t *mine, int tag)
{
    const size_t n = stats_partial_slots(mine), N = ckks_context_n(ctx), np = ckks_context_data_primes(ctx);
    if (!n) return STATS_EINVAL;
    uint64_t *head = calloc(4 * n, sizeof *head), *peer = head ? head + 2 * n : NULL;
    MPI_Request *req = calloc(n, sizeof *req);
    ckks_ciphertext_t *x = NULL;
    int rc = head && req ? STATS_OK : STATS_ENOMEM;
    if (!rc && ckks_ciphertext_new(ctx, 3, 0, &x)) rc = STATS_ENOMEM;
    for (int d = 1; d < a->size && !rc; d++) {
        const int to = (a->rank + d) % a->size, from = (a->rank - d + a->size) % a->size;
        for (size_t j = 0; j < n; j++) {
            const ckks_ciphertext_t *c = stats_partial_share_slot(mine, j, (size_t)to, (size_t)a->size);
            head[2 * j] = c ? c->size | (uint64_t)c->nprimes << 8 : 0;
            memcpy(&head[2 * j + 1], c ? &c->scale : &(double){0}, 8);
        }
        int nreq = 0;
        if (MPI_Sendrecv(head, (int)(2 * n), MPI_UINT64_T, to, tag, peer, (int)(2 * n), MPI_UINT64_T, from, tag,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            rc = STATS_EIO;
        for (size_t j = 0; j < n && !rc; j++) {
            const ckks_ciphertext_t *c = stats_partial_share_slot(mine, j, (size_t)to, (size_t)a->size);
            if (c && MPI_Isend(c->data, (int)(c->size * c->nprimes * N), MPI_UINT64_T, to, tag, MPI_COMM_WORLD,
                               &req[nreq++]) != MPI_SUCCESS)
                rc = STATS_EIO;
        }
        for (size_t j = 0; j < n && !rc; j++) {
            if (!peer[2 * j]) continue;
            const uint64_t size = peer[2 * j] & 0xff, cnp = peer[2 * j] >> 8;
            if (size < 2 || size > 3 || cnp != np) {
                stats_set_error("rank %d: partial sums from rank %d: slot %zu malformed", a->rank, from, j);
                rc = STATS_ESCHEMA;
                break;
            }
            x->size = size;
            x->nprimes = cnp;
            memcpy(&x->scale, &peer[2 * j + 1], 8);
            if (MPI_Recv(x->data, (int)(size * cnp * N), MPI_UINT64_T, from, tag, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE) != MPI_SUCCESS)
                rc = STATS_EIO;
            else
                rc = stats_partial_add_slot(mine, j, (size_t)a->rank, (size_t)a->size, x);
        }
        /* The sends read mine's other shares' slots, which the adds never touch. */
        if (nreq && MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE) != MPI_SUCCESS && !rc) rc = STATS_EIO;
        if (rc == STATS_EIO)
            stats_set_error("rank %d: exchanging partial sums with ranks %d and %d failed", a->rank, to, from);
    }
    ckks_ciphertext_free(x);
    free(head);
    free(req);
    return rc;
}

/* stats_reduce_fn. STATS_REDUCE_FINISHED: the binomial tree (rank r
 * receives from r + d for d = 1, 2, 4, ... while r is a multiple of 2d,
 * then sends to r - d). */
static int mpi_reduce(void *arg, stats_reduce_stage_t stage, const ckks_context_t *ctx, stats_partial_t *mine,
                      const stats_enc_table_t *t, stats_job_t job, stats_partial_t **total)
{
    mpi_arg_t *a = arg;
    const int tag = (int)(a->table++ % 30000);
    *total = NULL;
    if (stage == STATS_REDUCE_SHARES) return exchange_shares(a, ctx, mine, tag);
    for (int d = 1; d < a->size; d <<= 1) {
        if (a->rank % (2 * d) == 0) {
            if (a->rank + d >= a->size) continue;
            size_t len;
            uint8_t *b = recv_bytes(a->rank + d, tag, (size_t)1 << 40, &len);
            if (!b) {
                stats_set_error("rank %d: receiving finished sums from rank %d failed", a->rank, a->rank + d);
                return STATS_EIO;
            }
            stats_partial_t *p;
            int rc = stats_partial_read(ctx, t, job, b, len, &p);
            free(b);
            if (!rc) rc = stats_partial_add(mine, p);
            stats_partial_free(p);
            if (rc) return rc;
        } else {
            void *b;
            size_t len;
            int rc = stats_partial_write(mine, &b, &len);
            if (rc) return rc;
            rc = send_bytes(b, len, a->rank - d, tag);
            free(b);
            if (rc) {
                stats_set_error("rank %d: sending finished sums to rank %d failed", a->rank, a->rank - d);
                return STATS_EIO;
            }
            return STATS_OK; /* done: this rank's sums travel on */
        }
    }
    if (a->rank == 0) *total = mine;
    return STATS_OK;
}

/* The job runs on a worker thread from the start, while this thread (the
 * MPI main thread) starts MPI: MPI_Init waits 0.05-0.3 s on the launcher
 * and the transports (Open MPI's UCX probing alone takes 0.2 s on a
 * machine without a fabric), time the worker spends reading the study and
 * computing its first chunks. The worker's rank and size come from the
 * launcher's environment, checked against MPI's once it is up. Every MPI
 * call is made on this thread (MPI_THREAD_FUNNELED): the worker hands its
 * reduce steps over (relay_reduce) and waits for them. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    mpi_arg_t arg;
    int fd;
    uint64_t size;
    /* a reduce step handed over, and its outcome */
    int asked, answered, rc;
    stats_reduce_stage_t stage;
    const ckks_context_t *ctx;
    stats_partial_t *mine;
    const stats_enc_table_t *t;
    stats_job_t job;
    stats_partial_t **total;
    char msg[256]; /* stats_error() is per thread: carried across here */
    /* the worker's end */
    int over, job_rc;
    void *res;
    size_t rlen;
    stats_counts_t counts;
} mpi_run_t;

static int relay_reduce(void *arg, stats_reduce_stage_t stage, const ckks_context_t *ctx, stats_partial_t *mine,
                        const stats_enc_table_t *t, stats_job_t job, stats_partial_t **total)
{
    mpi_run_t *r = arg;
    pthread_mutex_lock(&r->mu);
    r->stage = stage;
    r->ctx = ctx;
    r->mine = mine;
    r->t = t;
    r->job = job;
    r->total = total;
    r->answered = 0;
    r->asked = 1;
    pthread_cond_broadcast(&r->cv);
    while (!r->answered) pthread_cond_wait(&r->cv, &r->mu);
    const int rc = r->rc;
    if (rc) stats_set_error("%s", r->msg);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static void *run_job(void *arg)
{
    mpi_run_t *r = arg;
    int rc = stats_job_run_file(r->fd, r->size, (size_t)r->arg.rank, (size_t)r->arg.size,
                                r->arg.size > 1 ? relay_reduce : NULL, r, &r->res, &r->rlen, &r->counts);
    pthread_mutex_lock(&r->mu);
    r->job_rc = rc;
    if (rc) snprintf(r->msg, sizeof r->msg, "%s", stats_error());
    r->over = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* This process's rank and the number of ranks as its launcher gives them
 * (Open MPI; MPICH's Hydra and other PMI launchers), or 0. */
static int launcher_rank(int *rank, int *size)
{
    static const char *names[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"}, {"PMI_RANK", "PMI_SIZE"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *r = getenv(names[i][0]), *n = getenv(names[i][1]);
        if (!r || !n || !*r || !*n) continue;
        char *e1, *e2;
        long rv = strtol(r, &e1, 10), nv = strtol(n, &e2, 10);
        if (*e1 || *e2 || nv < 1 || nv > 1 << 20 || rv < 0 || rv >= nv) continue;
        *rank = (int)rv;
        *size = (int)nv;
        return 1;
    }
    return 0;
}

static int start_worker(mpi_run_t *r, pthread_t *th)
{
    pthread_attr_t at;
    if (pthread_attr_init(&at)) return -1;
    (void)pthread_attr_setstacksize(&at, (size_t)16 << 20); /* as a main thread's */
    int e = pthread_create(th, &at, run_job, r);
    pthread_attr_destroy(&at);
    return e ? -1 : 0;
}
#endif

int srv_mpi_compute(const char *job, const char *out, size_t max_job)
{
#ifndef HESTAT_HAVE_MPI
    (void)job;
    (void)out;
    (void)max_job;
    fprintf(stderr, "hestat-server: started by an MPI launcher, but this build has no MPI support "
                    "(install Open MPI, libopenmpi-dev, and rebuild)\n");
    return 1;
#else
    /* Ranks on one machine share its processors: unless HESTAT_THREADS says
     * otherwise, each rank's chunk threads are its share of them. */
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (local && !getenv("HESTAT_THREADS")) {
        long per = sysconf(_SC_NPROCESSORS_ONLN) / (atol(local) > 0 ? atol(local) : 1);
        char v[24];
        snprintf(v, sizeof v, "%ld", per > 0 ? per : 1);
        setenv("HESTAT_THREADS", v, 0);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    (void)max_job;
    mpi_run_t run = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .fd = -1};
    int env_rank = 0, env_size = 0, started = 0;
    pthread_t worker;
    int fd = open(job, O_RDONLY | O_CLOEXEC);
    struct stat st;
    const char *why = fd < 0 ? strerror(errno) : fstat(fd, &st) || !S_ISREG(st.st_mode) ? "not a regular file" : NULL;
    if (!why && launcher_rank(&env_rank, &env_size)) {
        run.arg = (mpi_arg_t){env_rank, env_size, 0};
        run.fd = fd;
        run.size = (uint64_t)st.st_size;
        started = !start_worker(&run, &worker);
    }
    int provided, rank = 0, size = 1;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "hestat-server: MPI_Init failed\n");
        return 1; /* a worker started dies with the process */
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (why) {
        fprintf(stderr, "hestat-server: rank %d: %s: %s\n", rank, job, why);
        MPI_Abort(MPI_COMM_WORLD, 1);
        return 1;
    }
    if (started && (rank != env_rank || size != env_size)) {
        fprintf(stderr, "hestat-server: rank %d of %d, but the launcher's environment said %d of %d\n", rank, size,
                env_rank, env_size);
        MPI_Abort(MPI_COMM_WORLD, 1);
        return 1;
    }
    if (!started) {
        run.arg = (mpi_arg_t){rank, size, 0};
        run.fd = fd;
        run.size = (uint64_t)st.st_size;
        if (start_worker(&run, &worker)) {
            fprintf(stderr, "hestat-server: rank %d: cannot start a thread\n", rank);
            MPI_Abort(MPI_COMM_WORLD, 1);
            return 1;
        }
    }
    /* Each rank reads only its own chunks, as it reaches them; this thread
     * runs the reduce steps the worker hands over until it is done. */
    pthread_mutex_lock(&run.mu);
    for (;;) {
        while (!run.asked && !run.over) pthread_cond_wait(&run.cv, &run.mu);
        if (!run.asked) break;
        run.asked = 0;
        pthread_mutex_unlock(&run.mu);
        int rc = mpi_reduce(&run.arg, run.stage, run.ctx, run.mine, run.t, run.job, run.total);
        pthread_mutex_lock(&run.mu);
        run.rc = rc;
        if (rc) snprintf(run.msg, sizeof run.msg, "%s", stats_error());
        run.answered = 1;
        pthread_cond_broadcast(&run.cv);
    }
    pthread_mutex_unlock(&run.mu);
    pthread_join(worker, NULL);
    close(fd);
    if (run.job_rc) {
        fprintf(stderr, "hestat-server: rank %d of %d: %s: %s: %s\n", rank, size, job, stats_strerror(run.job_rc),
                run.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
        return 1;
    }
    if (rank == 0) {
        int rc = ckks_file_write(out, run.res, run.rlen, 0644);
        free(run.res);
        if (rc) {
            fprintf(stderr, "hestat-server: %s: %s\n", out, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
            MPI_Abort(MPI_COMM_WORLD, 1);
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("computed %s -> %s in %.2f s on %d MPI rank(s)\n", job, out,
               (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9, size);
    }
    MPI_Finalize();
    return 0;
#endif
}
