/* hestat-server serve over real HTTP on loopback: the client's submit/fetch
 * round trip with two contributors, eight concurrent uploads, bad inputs
 * (token, secret key, unknown ids, traversal, oversized, truncated), and a
 * server killed with a job queued then restarted on the same spool. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apps/client/http.h"
#include "stats/stats.h"
#include "testutil.h"

static char dir[64], base[128];
static pid_t server_pid;

#define sh test_sh

/* Starts the server on a free port; returns once it printed its address.
 * extra: a --max-upload value (MB) with a one-job queue, or NULL. */
static void start_server(const char *extra)
{
    char log[128], spool[128], token[128];
    snprintf(log, sizeof log, "%s/server.log", dir);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(token, sizeof token, "%s/token", dir);
    const char *with_limit[] = {"--token-file", token, "--max-upload", extra, "--queue", "1", NULL};
    const char *plain[] = {"--token-file", token, NULL};
    server_pid = test_server_start(spool, log, base, sizeof base, extra ? with_limit : plain);
    cr_assert_gt(server_pid, 0, "server did not start");
}

static void stop_server(int sig) { test_server_stop(server_pid, sig); }

static long status_of(const char *method, const char *path, const char *token, const char *upload, char **body)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    http_result_t r;
    http_request(method, url, token, upload, NULL, &r);
    if (body) *body = r.body;
    else free(r.body);
    return r.status;
}

/* A failed assertion must not leave a server behind. */
static void kill_leftover(void)
{
    if (server_pid > 0 && kill(server_pid, 0) == 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
}

Test(http, round_trip_concurrency_bad_inputs_restart, .timeout = 600, .fini = kill_leftover)
{
    strcpy(dir, "/tmp/hestat-http-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const char *C = test_bin("hestat-client");
    cr_assert_eq(sh("echo s3cret-token > %s/token && chmod 600 %s/token", dir, dir), 0);
    cr_assert_eq(sh("%s sample --rows 2400 --seed 21 --out %s/full.csv", C, dir), 0);
    cr_assert_eq(sh("head -1201 %s/full.csv > %s/a.csv && (head -1 %s/full.csv; tail -n +1202 %s/full.csv) > %s/b.csv",
                    dir, dir, dir, dir, dir), 0);
    cr_assert_eq(sh("%s keygen --schema %s/full.csv --keys %s/keys", C, dir, dir), 0);
    cr_assert_eq(sh("%s encrypt --study %s/keys/study.hst --in %s/a.csv --out %s/a.hst", C, dir, dir, dir), 0);
    cr_assert_eq(sh("%s encrypt --study %s/keys/study.hst --in %s/b.csv --out %s/b.hst", C, dir, dir, dir), 0);
    start_server(NULL);
    const char *tok = "s3cret-token";
    cr_expect_eq(status_of("GET", "/health", NULL, NULL, NULL), 200);
    /* hestat-client health: what scripts and container health checks run. */
    cr_expect_eq(sh("%s health --server %s > /dev/null", C, base), 0);
    cr_expect_eq(sh("%s health --server http://127.0.0.1:1 --wait 1 2> /dev/null", C), 1, "nothing listens on port 1");

    /* Two contributors, then the analyst fetches and decrypts. */
    char sid[64] = "";
    cr_assert_eq(sh("%s submit --server %s --token-file %s/token --study %s/keys/study.hst %s/a.hst > %s/submit.out",
                    C, base, dir, dir, dir, dir), 0);
    char outpath[128];
    snprintf(outpath, sizeof outpath, "%s/submit.out", dir);
    FILE *f = fopen(outpath, "r");
    cr_assert_not_null(f);
    char line[256];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "study ", 6)) snprintf(sid, sizeof sid, "%.32s", line + 6);
    fclose(f);
    cr_assert_eq(strlen(sid), 32, "study id '%s'", sid);
    cr_assert_eq(sh("%s submit --server %s --token-file %s/token --study %s/keys/study.hst --study-id %s %s/b.hst > /dev/null",
                    C, base, dir, dir, sid, dir), 0);
    cr_assert_eq(sh("%s fetch --server %s --token-file %s/token --study-id %s --out %s/result.hst", C, base, dir, sid,
                    dir), 0);
    cr_assert_eq(sh("%s decrypt --keys %s/keys --in %s/result.hst --out %s/report.csv --compare %s/full.csv", C, dir,
                    dir, dir, dir), 0);
    /* File mode computes the same thing: identical result bytes. */
    cr_assert_eq(sh("%s job --study %s/keys/study.hst --out %s/job.hst %s/b.hst %s/a.hst && "
                    "%s compute %s/job.hst --out %s/file-result.hst > /dev/null && "
                    "cmp %s/result.hst %s/file-result.hst",
                    C, dir, dir, dir, dir, test_bin("hestat-server"), dir, dir, dir, dir), 0, "file mode and HTTP mode results differ");
    /* The means of the union within 1e-6 (the report's rel_error column). */
    cr_assert_eq(sh("awk -F, '$1==\"mean\" && $3==\"\" && ($5+0 > 1e-3 || $5+0 < -1e-3) && $7+0 > 1e-6 {bad=1} END {exit bad}' %s/report.csv",
                    dir), 0);

    /* Eight concurrent uploads of eight encryptions of a table: all accepted. */
    char cwd[1024];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    const char *Cabs = C[0] == '/' ? "" : cwd;
    cr_assert_eq(sh("cd %s && for i in 1 2 3 4 5 6 7 8; do %s%s%s encrypt --study keys/study.hst --in a.csv --out a$i.hst || exit 1; done",
                    dir, Cabs, Cabs[0] ? "/" : "", C), 0);
    cr_assert_eq(sh("cd %s && for i in 1 2 3 4 5 6 7 8; do (%s%s%s submit --server %s --token-file token --study keys/study.hst --study-id %s a$i.hst > up$i.out 2>&1 || echo fail > up$i.err) & done; wait; ! ls up*.err 2>/dev/null",
                    dir, Cabs, Cabs[0] ? "/" : "", C, base, sid), 0, "a concurrent upload failed");

    /* A table of another study with the same schema and parameters (a second
     * keygen from the same CSV) is refused and names the mismatch. */
    cr_assert_eq(sh("%s keygen --schema %s/full.csv --keys %s/keys2 && %s encrypt --study %s/keys2/study.hst --in %s/a.csv --out %s/foreign.hst",
                    C, dir, dir, C, dir, dir, dir), 0);
    {
        char fpath[128], tpath[128], *fbody = NULL;
        snprintf(fpath, sizeof fpath, "%s/foreign.hst", dir);
        snprintf(tpath, sizeof tpath, "/studies/%s/tables", sid);
        cr_expect_eq(status_of("POST", tpath, tok, fpath, &fbody), 400);
        cr_expect(fbody && strstr(fbody, "another study"), "%s", fbody ? fbody : "");
        free(fbody);
        cr_expect_eq(sh("%s submit --server %s --token-file %s/token --study %s/keys/study.hst --study-id %s %s 2> %s/foreign.err",
                        C, base, dir, dir, sid, fpath, dir), 1);
        cr_expect_eq(sh("grep -q 'another study' %s/foreign.err", dir), 0);
    }

    /* Bad inputs: the server answers and keeps serving. */
    char path[256], *body = NULL;
    snprintf(path, sizeof path, "/studies/%s/tables", sid);
    cr_expect_eq(status_of("POST", path, "wrong", NULL, NULL), 401);
    cr_expect_eq(status_of("GET", path, NULL, NULL, NULL), 401);
    char skpath[128];
    snprintf(skpath, sizeof skpath, "%s/keys/secret.key", dir);
    cr_expect_eq(status_of("POST", path, tok, skpath, &body), 400);
    cr_expect(body && strstr(body, "secret key"), "%s", body ? body : "");
    free(body);
    char trunc[128];
    snprintf(trunc, sizeof trunc, "%s/trunc.hst", dir);
    cr_assert_eq(sh("head -c 100000 %s/a.hst > %s", dir, trunc), 0);
    cr_expect_eq(status_of("POST", path, tok, trunc, NULL), 400);
    cr_expect_eq(status_of("POST", path, tok, "README.md", NULL), 400);
    cr_expect_eq(status_of("GET", "/studies/0123456789abcdef0123456789abcdef/jobs/0123456789abcdef0123456789abcdef", tok,
                           NULL, NULL), 404);
    cr_expect_eq(status_of("GET", "/studies/..%2F..%2Fetc/jobs/passwd", tok, NULL, NULL), 404);
    cr_expect_eq(status_of("GET", "/nothing", tok, NULL, NULL), 404);
    cr_expect_eq(status_of("GET", "/health", NULL, NULL, NULL), 200, "still serving");

    /* Killed with a job queued, restarted on the same spool: the job completes. */
    snprintf(path, sizeof path, "/studies/%s/jobs?stats=means", sid);
    cr_assert_eq(status_of("POST", path, tok, NULL, &body), 202);
    char job[40] = "";
    char *j = body ? strstr(body, "\"job\":\"") : NULL;
    if (j) snprintf(job, sizeof job, "%.32s", j + 7);
    free(body);
    stop_server(SIGKILL);
    start_server(NULL);
    snprintf(path, sizeof path, "/studies/%s/jobs/%s", sid, job);
    int done = 0;
    for (int i = 0; i < 300 && !done; i++) {
        long st = status_of("GET", path, tok, NULL, &body);
        done = st == 200 && body && (strstr(body, "\"done\"") || strstr(body, "\"failed\""));
        cr_expect(!body || !strstr(body, "\"failed\""), "%s", body ? body : "");
        free(body);
        if (!done) usleep(100000);
    }
    cr_expect(done, "the job queued before the kill did not finish after the restart");

    /* Oversized upload: a server limited to 1 MB refuses the 13 MB table. */
    stop_server(SIGTERM);
    start_server("1");
    snprintf(path, sizeof path, "/studies/%s/tables", sid);
    char apath[128];
    snprintf(apath, sizeof apath, "%s/a.hst", dir);
    long st = status_of("POST", path, tok, apath, NULL);
    cr_expect_eq(st, 413, "oversized upload: HTTP %ld, not 413", st);
    cr_expect_eq(status_of("GET", "/health", NULL, NULL, NULL), 200);
    /* A one-job queue: asking for jobs faster than one worker computes them
     * gets 503 with Retry-After rather than unbounded queueing. */
    snprintf(path, sizeof path, "/studies/%s/jobs?stats=all", sid);
    int busy = 0;
    for (int i = 0; i < 6; i++) busy |= status_of("POST", path, tok, NULL, NULL) == 503;
    cr_expect(busy, "no 503 with a one-job queue");
    snprintf(path, sizeof path, "/studies/%s", sid);
    cr_expect_eq(status_of("DELETE", path, tok, NULL, NULL), 204);
    cr_expect_eq(status_of("DELETE", path, tok, NULL, NULL), 404);
    stop_server(SIGTERM);

    /* HTTPS with a private certificate: the client needs its CA. */
    cr_assert_eq(sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                    "-addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem 2>/dev/null",
                    dir, dir), 0);
    char log[128], spool[128], cert[128], key[128];
    snprintf(log, sizeof log, "%s/server.log", dir);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    const char *tls[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    base[0] = 0;
    server_pid = test_server_start(spool, log, base, sizeof base, tls);
    cr_assert(server_pid > 0 && !strncmp(base, "https://", 8), "TLS server did not start");
    cr_expect_eq(status_of("GET", "/health", NULL, NULL, NULL), 0, "no CA: the certificate must not verify");
    http_set_cacert(cert);
    cr_expect_eq(status_of("GET", "/health", NULL, NULL, NULL), 200);
    http_set_cacert(NULL);
    stop_server(SIGTERM);
    sh("rm -rf %s", dir);
}
