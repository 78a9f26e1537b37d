/*
 * hestat-server: computes statistics on encrypted tables; never holds a
 * secret key (a job that carries one is refused).
 *   compute JOB --out RESULT     file in, file out
 * (serve --listen ADDR:PORT --spool DIR, over HTTP: not yet implemented)
 * Exit status: 0 ok, 1 error (one line on stderr), 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apps/common/serve.h"
#include "stats/stats.h"

#define MAX_JOB ((size_t)1 << 34)

static const char *usage_text =
    "usage: hestat-server compute JOB --out RESULT\n"
    "\n"
    "  compute   read a job file (hestat-client job: study + encrypted tables +\n"
    "            the statistics wanted), compute, write the encrypted result\n"
    "            atomically. Prints the work done (rotations, relinearizations).\n"
    "       hestat-server serve [--listen ADDR:PORT] [--spool DIR] [--token-file F]\n"
    "                           [--max-upload MB] [--workers N] [--queue N]\n"
    "                           [--tls-cert PEM --tls-key PEM]\n"
    "\n"
    "  serve     HTTP service (default 127.0.0.1:8750, spool ./hestat-spool, 1 worker,\n"
    "            uploads up to 512 MB, 16 queued jobs before 503 + Retry-After).\n"
    "            PORT 0 picks a free port (printed). With a token\n"
    "            file every request but GET /health needs 'Authorization: Bearer TOKEN'.\n"
    "            Endpoints: GET /health; POST /studies (study file); POST /studies/ID/tables\n"
    "            (table file); POST /studies/ID/jobs?stats=all|means; GET /studies/ID/jobs/JOB;\n"
    "            GET /studies/ID/jobs/JOB/result; DELETE /studies/ID.\n";

int main(int argc, char **argv)
{
    const char *job = NULL, *out = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    if (argc < 2) {
        fprintf(stderr, "hestat-server: missing command (try --help)\n");
        return 2;
    }
    if (!strcmp(argv[1], "serve")) {
        serve_options_t so = {"127.0.0.1", 8750, "hestat-spool", NULL, (size_t)512 << 20, 1, 16, NULL, NULL};
        static char host[64];
        for (int i = 2; i < argc; i++) {
            const char *a = argv[i];
            if (i + 1 >= argc) {
                fprintf(stderr, "hestat-server: missing value after %s (try --help)\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--listen")) {
                const char *colon = strrchr(v, ':');
                char *end;
                long port = colon ? strtol(colon + 1, &end, 10) : -1;
                if (!colon || *end || port < 0 || port > 65535 || (size_t)(colon - v) >= sizeof host) {
                    fprintf(stderr, "hestat-server: --listen wants ADDR:PORT, not %s\n", v);
                    return 2;
                }
                memcpy(host, v, (size_t)(colon - v));
                host[colon - v] = 0;
                so.host = host;
                so.port = (int)port;
            } else if (!strcmp(a, "--spool")) {
                so.spool = v;
            } else if (!strcmp(a, "--token-file")) {
                so.token_file = v;
            } else if (!strcmp(a, "--tls-cert")) {
                so.tls_cert = v;
            } else if (!strcmp(a, "--tls-key")) {
                so.tls_key = v;
            } else if (!strcmp(a, "--max-upload") || !strcmp(a, "--workers") || !strcmp(a, "--queue")) {
                char *end;
                long x = strtol(v, &end, 10);
                if (*end || x < 1 || x > 1 << 20) {
                    fprintf(stderr, "hestat-server: bad value for %s: %s\n", a, v);
                    return 2;
                }
                if (a[2] == 'm') so.max_upload = (size_t)x << 20;
                else if (a[2] == 'w') so.workers = (int)x;
                else so.queue = (int)x;
            } else {
                fprintf(stderr, "hestat-server: unknown option %s (try --help)\n", a);
                return 2;
            }
        }
        return serve_main(&so);
    }
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
    void *buf, *res;
    size_t len, rlen;
    int rc = ckks_file_read(job, MAX_JOB, &buf, &len);
    if (rc) {
        fprintf(stderr, "hestat-server: %s: %s\n", job, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    stats_counts_t counts;
    rc = stats_job_run(buf, len, &res, &rlen, &counts);
    free(buf);
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
