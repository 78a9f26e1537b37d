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

#include "stats/stats.h"

#define MAX_JOB ((size_t)1 << 34)

static const char *usage_text =
    "usage: hestat-server compute JOB --out RESULT\n"
    "\n"
    "  compute   read a job file (hestat-client job: study + encrypted tables +\n"
    "            the statistics wanted), compute, write the encrypted result\n"
    "            atomically. Prints the work done (rotations, relinearizations).\n"
    "  serve     HTTP service: not implemented yet (see the README).\n";

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
        fprintf(stderr, "hestat-server: serve is not implemented yet; use compute\n");
        return 2;
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
