/*
 * hestat-server: computes statistics on encrypted tables; never holds a
 * secret key (a job that carries one is refused).
 *   compute JOB --out RESULT     file in, file out
 *   serve [options]              the HTTP service (apps/server/serve.c)
 *   mp-combine, mp-release       multiparty studies, files (apps/server/mp.c)
 * Exit status: 0 ok, 1 error (one line on stderr), 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apps/server/mp.h"
#include "apps/server/serve.h"
#include "stats/stats.h"

#define MAX_JOB ((size_t)1 << 34)

static const char *usage_text =
    "usage: hestat-server compute JOB --out RESULT\n"
    "\n"
    "  compute   read a job file (hestat-client job: study + encrypted tables +\n"
    "            the statistics wanted), compute, write the encrypted result\n"
    "            atomically. Prints the work done (rotations, relinearizations).\n"
    "            Chunks are computed in parallel (HESTAT_THREADS, default every\n"
    "            processor); the result is the same bytes for any thread count.\n"
    "            Under MPI, mpirun -n K hestat-server compute JOB --out RESULT\n"
    "            splits every table's chunks across the K ranks, which then\n"
    "            share the finishing; rank 0 writes RESULT: the same bytes as\n"
    "            one process. (MPI support: %s.) More than 2^23 rows: the\n"
    "            result comes in segments the client adds after decrypting.\n"
    "            HESTAT_TRACE=1 prints each process's phase times (stderr).\n"
    "\n"
    "       hestat-server serve [options]\n"
    "\n"
    "  serve     HTTP service. Endpoints: GET /health; POST /studies (study file);\n"
    "            POST /studies/ID/tables (table file; the same bytes twice: 409);\n"
    "            POST /studies/ID/jobs?stats=all|means; GET /studies/ID/jobs/JOB;\n"
    "            GET /studies/ID/jobs/JOB/result; DELETE /studies/ID.\n"
    "            Multiparty: POST /drafts (draft file); GET /studies/ID/mp (state,\n"
    "            missing parties); GET /studies/ID/mp/draft; POST\n"
    "            /studies/ID/mp/round1?party=I, GET /studies/ID/mp/round1 (the sum, 409\n"
    "            until all are in), POST /studies/ID/mp/round2?party=I, GET\n"
    "            /studies/ID/mp/study; POST /studies/ID/jobs/JOB/shares?party=I, GET\n"
    "            /studies/ID/jobs/JOB/mp, GET /studies/ID/jobs/JOB/release (409 naming\n"
    "            the missing parties). A party's shares twice: 409.\n"
    "    --listen ADDR:PORT     IPv4 address and port (default 127.0.0.1:8750; port 0\n"
    "                           picks a free one, printed). Beyond loopback, a warning\n"
    "                           unless both a token and TLS are set.\n"
    "    --spool DIR            where studies, tables, jobs and results live\n"
    "                           (default ./hestat-spool; survives restarts)\n"
    "    --token-file F         every request but GET /health needs\n"
    "                           'Authorization: Bearer TOKEN' (F: one line, at most\n"
    "                           4096 characters, not readable by group or others)\n"
    "    --tls-cert PEM --tls-key PEM   HTTPS (GnuTLS through libmicrohttpd)\n"
    "    --max-upload MB        largest upload (default 512; 413 beyond, refused from\n"
    "                           its Content-Length before the body is read)\n"
    "    --max-uploads N        uploads in progress at once (default 8; of them one\n"
    "                           study at a time, as each is parsed whole; 503 beyond)\n"
    "    --workers N            jobs computed at once (default 1, at most 64)\n"
    "    --queue N              jobs waiting before 503 + Retry-After (default 16;\n"
    "                           jobs resumed after a restart always run)\n"
    "    --max-connections N    open connections in all (default 4096; the descriptor\n"
    "                           limit is raised to fit, or this lowered to fit it)\n"
    "    --max-per-ip N         open connections from one address (default 32)\n"
    "    --header-timeout S     seconds a client has to send a request's headers,\n"
    "                           however slowly it trickles them (default 10)\n"
    "    --idle-timeout S       seconds without a byte before a connection is closed\n"
    "                           (default 60)\n"
    "    --threads N            HTTP threads, each serving many connections (default 4)\n"
    "    --cached-studies N     parsed studies kept in memory (default 2; about 35 MB\n"
    "                           each at the default parameters)\n"
    "    --launcher 'CMD ARGS'  run each job (not glm rounds) as CMD ARGS hestat-server\n"
    "                           compute JOBFILE --out RESULT, e.g. 'mpirun -n 4\n"
    "                           --hostfile hosts' (words split at blanks, no shell);\n"
    "                           a non-zero exit fails the job with the last line of\n"
    "                           spool/ID/jobs/JOB.launch.log\n"
    "    --launch-timeout S     stop a launched job (its whole process group) that runs\n"
    "                           longer than S seconds and fail it (default: no limit;\n"
    "                           a hung mpirun otherwise holds its worker for ever)\n"
    "\n"
    "       hestat-server mp-combine --draft DRAFT --out ROUND1_SUM R1_1 .. R1_K\n"
    "       hestat-server mp-combine --draft DRAFT --round1 ROUND1_SUM --out STUDY R2_1 .. R2_K\n"
    "       hestat-server mp-release --study STUDY --in RESULT --out RELEASED KS_1 .. KS_K\n"
    "\n"
    "  mp-combine  sums every party's round-1 shares (for round 2), then builds the\n"
    "              multiparty study from that sum and every party's round-2 share\n"
    "  mp-release  switches a result to the analyst's key with every party's\n"
    "              key-switch shares (hestat-client mp-share); a missing or\n"
    "              duplicated party, or shares of another study or result: refused\n";

/* A whole number in [lo, hi] for option a, or -1 (message printed). */
static long option_number(const char *a, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "hestat-server: %s wants a whole number from %ld to %ld, not %s\n", a, lo, hi, v);
        return -1;
    }
    return x;
}

static int parse_listen(const char *v, serve_options_t *so)
{
    static char host[64];
    const char *colon = strrchr(v, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == v || *end || end == colon + 1 || port < 0 || port > 65535 ||
        (size_t)(colon - v) >= sizeof host) {
        fprintf(stderr, "hestat-server: --listen wants ADDR:PORT, not %s\n", v);
        return -1;
    }
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = 0;
    so->host = host;
    so->port = (int)port;
    return 0;
}

/* Options taking a number: name, where it goes, bounds. */
typedef struct {
    const char *name;
    int *target;
    long lo, hi;
} int_option_t;

static int serve_command(int argc, char **argv)
{
    serve_options_t so = SERVE_DEFAULT_OPTIONS;
    int max_upload_mb = 512;
    const int_option_t numbers[] = {
        {"--max-upload", &max_upload_mb, 1, 1 << 20},    {"--max-uploads", &so.max_uploads, 1, 1024},
        {"--workers", &so.workers, 1, 64},               {"--queue", &so.queue, 1, 1 << 20},
        {"--max-connections", &so.max_connections, 16, 1 << 20},
        {"--max-per-ip", &so.max_per_ip, 1, 1 << 20},    {"--header-timeout", &so.header_timeout, 1, 3600},
        {"--idle-timeout", &so.idle_timeout, 1, 86400},  {"--threads", &so.threads, 1, 64},
        {"--cached-studies", &so.cached_studies, 1, 1024}, {"--launch-timeout", &so.launch_timeout, 1, 1 << 30},
    };
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "hestat-server: missing value after %s (try --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        const int_option_t *num = NULL;
        for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++)
            if (!strcmp(a, numbers[k].name)) num = &numbers[k];
        if (num) {
            long x = option_number(a, v, num->lo, num->hi);
            if (x < 0) return 2;
            *num->target = (int)x;
        } else if (!strcmp(a, "--listen")) {
            if (parse_listen(v, &so)) return 2;
        } else if (!strcmp(a, "--spool")) {
            so.spool = v;
        } else if (!strcmp(a, "--token-file")) {
            so.token_file = v;
        } else if (!strcmp(a, "--tls-cert")) {
            so.tls_cert = v;
        } else if (!strcmp(a, "--tls-key")) {
            so.tls_key = v;
        } else if (!strcmp(a, "--launcher")) {
            if (!v[strspn(v, " \t")] || strlen(v) > 4096) {
                fprintf(stderr, "hestat-server: --launcher needs a command (e.g. 'mpirun -n 4')\n");
                return 2;
            }
            so.launcher = v;
        } else {
            fprintf(stderr, "hestat-server: unknown option %s (try --help)\n", a);
            return 2;
        }
    }
    so.max_upload = (size_t)max_upload_mb << 20;
    if (so.launch_timeout && !so.launcher) {
        fprintf(stderr, "hestat-server: --launch-timeout limits jobs run through --launcher; give one\n");
        return 2;
    }
    return serve_main(&so);
}

int main(int argc, char **argv)
{
    const char *job = NULL, *out = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf(usage_text, srv_mpi_available() ? "built in" : "not built in: install libopenmpi-dev and rebuild");
            return 0;
        }
    if (argc < 2) {
        fprintf(stderr, "hestat-server: missing command (try --help)\n");
        return 2;
    }
    if (!strcmp(argv[1], "serve")) return serve_command(argc, argv);
    if (!strcmp(argv[1], "mp-combine")) return srv_mp_combine_main(argc, argv);
    if (!strcmp(argv[1], "mp-release")) return srv_mp_release_main(argc, argv);
    if (strcmp(argv[1], "compute")) {
        fprintf(stderr, "hestat-server: unknown command %s (try --help)\n", argv[1]);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "hestat-server: unknown option %s (try --help)\n", argv[i]);
            return 2;
        } else if (!job) job = argv[i];
        else {
            fprintf(stderr, "hestat-server: compute takes one JOB file\n");
            return 2;
        }
    }
    if (!job || !out) {
        fprintf(stderr, "hestat-server: compute needs JOB and --out RESULT (try --help)\n");
        return 2;
    }
    if (srv_mpi_launched()) return srv_mpi_compute(job, out, MAX_JOB);
    void *res;
    size_t rlen;
    /* Read as it is used (stats_job_run_file): memory stays a few chunks. */
    int fd = open(job, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "hestat-server: %s: %s\n", job, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    stats_counts_t counts;
    int rc = stats_job_run_file(fd, (uint64_t)st.st_size, 0, 1, NULL, NULL, &res, &rlen, &counts);
    close(fd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc) {
        fprintf(stderr, "hestat-server: %s: %s: %s\n", job, stats_strerror(rc), stats_error());
        return 1;
    }
    rc = ckks_file_write(out, res, rlen, 0644);
    free(res);
    if (rc) {
        fprintf(stderr, "hestat-server: %s: %s\n", out, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
        return 1;
    }
    printf("computed %s -> %s in %.2f s: %zu rotations, %zu relinearizations, %zu multiplications\n", job, out,
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9, counts.rotations,
           counts.relinearizations, counts.multiplications);
    return 0;
}
