/* hestat-server serve: options and entry point (apps/server/serve.c). */
#ifndef HESTAT_SERVE_H
#define HESTAT_SERVE_H

#include <stddef.h>

typedef struct {
    const char *host; /* IPv4 address, default 127.0.0.1 */
    int port;         /* 0: any free port (printed) */
    const char *spool;
    const char *token_file; /* NULL: no token */
    size_t max_upload;      /* bytes */
    int workers;            /* jobs computed at once */
    int queue;              /* jobs waiting before 503 (recovered jobs always run) */
    const char *tls_cert, *tls_key; /* PEM files: HTTPS (GnuTLS through libmicrohttpd) */
    int max_connections;    /* open connections in all */
    int max_per_ip;         /* open connections from one address */
    int header_timeout;     /* seconds to receive a request's headers (not reset by each byte) */
    int idle_timeout;       /* seconds without any byte before a connection is closed */
    int max_uploads;        /* uploads in progress at once (503 beyond); studies one at a time */
    int threads;            /* HTTP threads (epoll, each serving many connections) */
    int cached_studies;     /* parsed studies kept in memory */
    const char *launcher;   /* NULL: jobs computed in process; else e.g. 'mpirun -n 4' */
    int launch_timeout;     /* seconds a launched job may run before it is stopped (0: no limit) */
} serve_options_t;

/* The defaults, as --help states them. */
#define SERVE_DEFAULT_OPTIONS                                                                            \
    {                                                                                                    \
        .host = "127.0.0.1", .port = 8750, .spool = "hestat-spool", .max_upload = (size_t)512 << 20,   \
        .workers = 1, .queue = 16, .max_connections = 4096, .max_per_ip = 32, .header_timeout = 10,     \
        .idle_timeout = 60, .max_uploads = 8, .threads = 4, .cached_studies = 2                          \
    }

int serve_main(const serve_options_t *o);

/* MPI (apps/server/mpi.c). launched: this process was started by an MPI
 * launcher (mpirun); available: the build has MPI; compute: `compute JOB
 * --out RESULT` shared by the launcher's ranks (rank 0 writes RESULT), an
 * exit status. */
int srv_mpi_launched(void);
int srv_mpi_available(void);
int srv_mpi_compute(const char *job, const char *out, size_t max_job);

#endif
