/* hestat-server serve hardening (issue 10, items 3-11 and the server half of
 * 18): a real server on loopback, real files made by hestat-client, raw
 * sockets where the timing of a refusal matters. Every test leaves no server
 * behind (the fini kills it) and removes its directory. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "apps/client/http.h"
#include "stats/stats.h"
#include "testutil.h"

#define sh test_sh
#define TOKEN "s3cret-token-for-the-server-tests"

static char dir[64], spool[160], logpath[160], tokpath[160], base[128];
static int server_pid = -1, mounted;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- fixture: a study and tables made by hestat-client ---------------------------- */
static void make_dir(void)
{
    strcpy(dir, "/tmp/hestat-srv-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(logpath, sizeof logpath, "%s/server.log", dir);
    snprintf(tokpath, sizeof tokpath, "%s/token", dir);
    cr_assert_eq(sh("umask 077 && echo %s > %s", TOKEN, tokpath), 0);
}

/* keys/study.hst and tables t1.hst .. tN.hst of 600 rows (each encryption
 * is fresh, so their bytes differ). */
static void make_study(int tables)
{
    const char *C = test_bin("hestat-client");
    cr_assert_eq(sh("%s sample --rows 600 --seed 7 --out %s/t.csv > /dev/null", C, dir), 0);
    cr_assert_eq(sh("%s keygen --schema %s/t.csv --keys %s/keys > /dev/null", C, dir, dir), 0);
    for (int i = 1; i <= tables; i++)
        cr_assert_eq(sh("%s encrypt --study %s/keys/study.hst --in %s/t.csv --out %s/t%d.hst > /dev/null", C, dir, dir,
                        dir, i), 0);
}

static void cleanup(void)
{
    if (server_pid > 0 && kill(server_pid, 0) == 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    server_pid = -1;
    if (mounted) umount2(spool, MNT_DETACH);
    mounted = 0;
    if (dir[0]) sh("rm -rf '%s'", dir);
    dir[0] = 0;
}

/* A server on the test spool with the token and extra arguments. */
static void start(const char *const *extra)
{
    const char *args[40] = {"--token-file", tokpath};
    size_t n = 2;
    for (size_t i = 0; extra && extra[i] && n < 39; i++) args[n++] = extra[i];
    args[n] = NULL;
    server_pid = test_server_start(spool, logpath, base, sizeof base, args);
    cr_assert_gt(server_pid, 0, "the server did not start (see %s)", logpath);
}

static long stop(int sig)
{
    long ms = test_server_stop(server_pid, sig);
    server_pid = -1;
    return ms;
}

static int port(void) { return atoi(strrchr(base, ':') + 1); }

/* ---- HTTP through libcurl ------------------------------------------------------------ */
static long request(const char *method, const char *path, const char *token, const char *upload, char **body)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    http_result_t r;
    memset(&r, 0, sizeof r);
    http_request(method, url, token, upload, NULL, &r);
    if (body) *body = r.body;
    else free(r.body);
    return r.status;
}

/* The value of "key":"..." in a JSON body (32 characters at most). */
static void json_field(const char *body, const char *key, char *out, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = body ? strstr(body, pat) : NULL;
    out[0] = 0;
    if (p) snprintf(out, n, "%.*s", (int)strcspn(p + strlen(pat), "\""), p + strlen(pat));
}

static void upload_study(char sid[40])
{
    char path[200], *body = NULL;
    snprintf(path, sizeof path, "%s/keys/study.hst", dir);
    cr_assert_eq(request("POST", "/studies", TOKEN, path, &body), 201, "%s", body ? body : "");
    json_field(body, "study", sid, 40);
    free(body);
    cr_assert_eq(strlen(sid), 32);
}

static long upload_table(const char *sid, int t, char **body)
{
    char path[200], file[200];
    snprintf(path, sizeof path, "/studies/%s/tables", sid);
    snprintf(file, sizeof file, "%s/t%d.hst", dir, t);
    return request("POST", path, TOKEN, file, body);
}

static void new_job(const char *sid, const char *stats, char job[40])
{
    char path[200], *body = NULL;
    snprintf(path, sizeof path, "/studies/%s/jobs?stats=%s", sid, stats);
    cr_assert_eq(request("POST", path, TOKEN, NULL, &body), 202, "%s", body ? body : "");
    json_field(body, "job", job, 40);
    free(body);
}

/* Polls a job until its status is one of want ("done", "failed", ...) or
 * the time runs out; the last body (caller frees) or NULL. */
static char *wait_job(const char *sid, const char *job, const char *want, int seconds)
{
    char path[200], pat[40];
    snprintf(path, sizeof path, "/studies/%.32s/jobs/%.32s", sid, job);
    snprintf(pat, sizeof pat, "\"status\":\"%s\"", want);
    for (double t0 = now_ms(); now_ms() - t0 < seconds * 1e3; usleep(100000)) {
        char *body = NULL;
        if (request("GET", path, TOKEN, NULL, &body) == 200 && body && strstr(body, pat)) return body;
        free(body);
    }
    return NULL;
}

static double server_cpu_s(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", server_pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* after "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* count_files polled until it prints want or seconds pass (the server works
 * in its own threads: what it does with a connection shows up later, and
 * later still on a loaded machine under the sanitizers). Returns the last count. */
static size_t wait_files(const char *fmt, const char *arg, size_t want, double seconds);

/* A number printed by a shell command (a count of files, say). */
static size_t count_files(const char *fmt, const char *arg)
{
    char cmd[600], out[100], line[64] = "";
    snprintf(out, sizeof out, "%s/count.txt", dir);
    snprintf(cmd, sizeof cmd, fmt, arg);
    if (sh("%s > %s", cmd, out) != 0) return (size_t)-1;
    FILE *f = fopen(out, "r");
    if (f && !fgets(line, sizeof line, f)) line[0] = 0;
    if (f) fclose(f);
    return (size_t)strtoul(line, NULL, 10);
}

static size_t wait_files(const char *fmt, const char *arg, size_t want, double seconds)
{
    size_t got = count_files(fmt, arg);
    for (double t0 = now_ms(); got != want && now_ms() - t0 < seconds * 1e3; got = count_files(fmt, arg))
        usleep(50000);
    return got;
}

/* ---- raw sockets: what libcurl would hide ---------------------------------------------- */
/* A connection to the server from a chosen loopback address (all of
 * 127.0.0.0/8 is this machine). */
static int raw_connect(const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &a.sin_addr);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port())};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || connect(fd, (struct sockaddr *)&to, sizeof to)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int raw_send(int fd, const char *s) { return send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s); }

/* Reads what arrives within ms (until the peer closes or the time is up);
 * the byte count, or -1 when nothing arrived and the connection is open. */
static ssize_t raw_read(int fd, int ms, char *buf, size_t n)
{
    size_t got = 0;
    double t0 = now_ms();
    while (got + 1 < n) {
        int left = ms - (int)(now_ms() - t0);
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        ssize_t r = recv(fd, buf + got, n - 1 - got, 0);
        if (r <= 0) {
            buf[got] = 0;
            return (ssize_t)got;
        }
        got += (size_t)r;
        if (strstr(buf, "\r\n\r\n") && strstr(buf, "\"}")) break; /* a whole JSON answer */
    }
    buf[got] = 0;
    return got ? (ssize_t)got : -1;
}

/* 1 when the server closed the connection within ms. */
static int closed_within(int fd, int ms)
{
    char buf[4096];
    double t0 = now_ms();
    while (now_ms() - t0 < ms) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN)) return 1;
        }
    }
    return 0;
}

static int status_of_raw(const char *buf)
{
    int code = 0;
    return sscanf(buf, "HTTP/1.%*d %d", &code) == 1 ? code : 0;
}

/* ---- item 3: the same table twice ------------------------------------------------------- */
Test(server, duplicate_upload_is_409, .timeout = 90, .fini = cleanup)
{
    make_dir();
    make_study(2);
    start(NULL);
    char sid[40], *body = NULL;
    upload_study(sid);
    cr_assert_eq(upload_table(sid, 1, NULL), 201);
    cr_expect_eq(upload_table(sid, 1, &body), 409, "%s", body ? body : "");
    cr_expect(body && strstr(body, "already uploaded"), "%s", body ? body : "");
    free(body);
    /* Four at once: exactly one is stored. */
    const char *C = test_bin("hestat-client");
    char cwd[1024];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(sh("cd %s && for i in 1 2 3 4; do (%s/%s submit --server %s --token-file token "
                    "--study keys/study.hst --study-id %s t2.hst > up$i.out 2>&1 && touch ok$i) & done; wait",
                    dir, C[0] == '/' ? "" : cwd, C, base, sid), 0);
    cr_expect_eq(count_files("ls %s/ok* 2>/dev/null | wc -l", dir), 1,
                 "concurrent duplicates: not exactly one accepted");
    if (sh("grep -l 'HTTP 409' %s/up*.out | wc -l | grep -qx 3", dir) != 0) { /* not bare 409: a random ID may hold it */
        sh("head -c 2000 %s/up*.out >&2", dir); /* what the clients said */
        cr_expect_fail("the others must be 409 (their output is above)");
    }
    /* The record survives a restart. */
    stop(SIGTERM);
    start(NULL);
    cr_expect_eq(upload_table(sid, 2, NULL), 409);
    char tables[300];
    snprintf(tables, sizeof tables, "%s/%s/tables", spool, sid);
    cr_expect_eq(count_files("ls %s/*.hst | wc -l", tables), 2);
}

/* ---- item 4: slow clients -------------------------------------------------------------------- */
Test(server, slow_clients_cannot_starve_the_server, .timeout = 90, .fini = cleanup)
{
    make_dir();
    make_study(1);
    const char *args[] = {"--header-timeout", "2", "--max-per-ip", "100", NULL};
    start(args);
    char sid[40];
    upload_study(sid);
    /* 300 connections from 127.0.0.2, each with half a request line. */
    enum { N = 300 };
    int fds[N], opened = 0;
    double opened_at[N];
    for (int i = 0; i < N; i++) {
        fds[i] = raw_connect("127.0.0.2");
        opened_at[i] = now_ms();
        if (fds[i] >= 0 && raw_send(fds[i], "GET /hea")) opened++;
    }
    cr_assert_eq(opened, N, "could not open %d connections", N);
    /* A client trickling its headers, a byte every 300 ms, from 127.0.0.3. */
    int slow = raw_connect("127.0.0.3");
    double slow_at = now_ms();
    cr_assert_geq(slow, 0);
    /* Meanwhile /health and an authenticated upload from 127.0.0.1. */
    double h0 = now_ms();
    cr_expect_eq(request("GET", "/health", NULL, NULL, NULL), 200);
    cr_expect_lt(now_ms() - h0, 2000, "/health took %.0f ms", now_ms() - h0);
    cr_expect_eq(upload_table(sid, 1, NULL), 201);
    /* Beyond --max-per-ip the server closes at once. */
    int refused = 0;
    for (int i = 0; i < N; i++) refused += closed_within(fds[i], 1);
    cr_expect_geq(refused, N - 100, "only %d of %d connections beyond the per-address limit refused", refused, N);
    /* The rest, and the trickling client, are closed at the header deadline
     * (2 s; the reaper looks every 0.5 s; 2 s of slack for a loaded machine). */
    const char *trickle = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int slow_closed_after = -1;
    for (size_t k = 0; trickle[k] && slow_closed_after < 0 && now_ms() - slow_at < 10000; k++) {
        char c[2] = {trickle[k], 0};
        raw_send(slow, c);
        if (closed_within(slow, 300)) slow_closed_after = (int)(now_ms() - slow_at);
    }
    cr_expect(slow_closed_after > 1500 && slow_closed_after < 4500,
              "a client trickling its headers was not closed at the deadline (%d ms)", slow_closed_after);
    int late = 0;
    for (int i = 0; i < N; i++) {
        double wait = opened_at[i] + 4500 - now_ms();
        late += !closed_within(fds[i], wait > 10 ? (int)wait : 10);
    }
    cr_expect_eq(late, 0, "%d connections with half a request line still open after the deadline", late);
    cr_expect_eq(request("GET", "/health", NULL, NULL, NULL), 200);
    for (int i = 0; i < N; i++) close(fds[i]);
    close(slow);
}

/* ---- items 5 and 6: refusals before the body --------------------------------------------------- */
static int raw_post(const char *path, const char *token, const char *length, char *buf, size_t n)
{
    int fd = raw_connect("127.0.0.1");
    cr_assert_geq(fd, 0);
    char req[600];
    snprintf(req, sizeof req,
             "POST %s HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Length: %s\r\nExpect: 100-continue\r\n\r\n", path,
             token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "", length);
    cr_assert(raw_send(fd, req));
    raw_read(fd, 3000, buf, n);
    return fd;
}

/* raw_post until the answer is not 503: an upload slot is freed in the
 * server's own time after the previous upload's answer or close. */
static int hold_upload(const char *path, const char *length, char *buf, size_t n)
{
    int fd = -1;
    for (double t0 = now_ms(); fd < 0 && now_ms() - t0 < 20e3;) {
        fd = raw_post(path, TOKEN, length, buf, n);
        if (status_of_raw(buf) == 503) {
            close(fd);
            fd = -1;
            usleep(100000);
        }
    }
    cr_assert_geq(fd, 0, "the upload slot stayed busy for 20 s: %s", buf);
    return fd;
}

Test(server, refusals_come_before_the_body, .timeout = 90, .fini = cleanup)
{
    make_dir();
    make_study(1);
    const char *args[] = {"--max-uploads", "1", NULL};
    start(args);
    char sid[40], path[300], buf[4096];
    upload_study(sid);
    snprintf(path, sizeof path, "/studies/%s/tables", sid);
    /* No body is sent at all: each answer must come from the headers alone. */
    close(raw_post(path, TOKEN, "1073741824", buf, sizeof buf));
    cr_expect_eq(status_of_raw(buf), 413, "oversized Content-Length: %s", buf);
    cr_expect(!strstr(buf, "100 Continue"), "no 100 Continue for a refused upload: %s", buf);
    close(raw_post(path, NULL, "1073741824", buf, sizeof buf));
    cr_expect_eq(status_of_raw(buf), 401, "no token: %s", buf);
    cr_expect(!strstr(buf, "100 Continue"), "%s", buf);
    close(raw_post(path, "wrong", "1000", buf, sizeof buf));
    cr_expect_eq(status_of_raw(buf), 401, "wrong token: %s", buf);
    close(raw_post("/studies/0123456789abcdef0123456789abcdef/tables", TOKEN, "314572800", buf, sizeof buf));
    cr_expect_eq(status_of_raw(buf), 404, "unknown study: %s", buf);
    /* One upload in progress (the limit): another gets 503 + Retry-After. */
    int held = hold_upload(path, "2359824", buf, sizeof buf); /* once the study upload's slot is free */
    cr_expect(strstr(buf, "100 Continue") != NULL, "an accepted upload is invited to send: %s", buf);
    char head[4096];
    snprintf(head, sizeof head, "%s/t1.hst", dir);
    FILE *t1 = fopen(head, "rb");
    cr_assert_not_null(t1);
    size_t got = fread(head, 1, sizeof head, t1);
    fclose(t1);
    cr_assert_eq(send(held, head, got, MSG_NOSIGNAL), (ssize_t)got);
    cr_expect_eq(wait_files("ls -A %s/tmp | wc -l", spool, 1, 20), 1, "a valid upload in progress is stored");
    close(raw_post(path, TOKEN, "2359824", buf, sizeof buf));
    cr_expect_eq(status_of_raw(buf), 503, "second upload beyond --max-uploads 1: %s", buf);
    cr_expect(strstr(buf, "Retry-After:") != NULL, "%s", buf);
    close(held);
    cr_expect_eq(wait_files("ls -A %s/tmp | wc -l", spool, 0, 20), 0, "an aborted upload left its file");
    /* Junk: storing stops at the first chunk; the answer (400) comes after the body. */
    int junk = raw_post(path, TOKEN, "100000", buf, sizeof buf);
    char zeros[50000];
    memset(zeros, 'j', sizeof zeros);
    cr_assert_eq(send(junk, zeros, sizeof zeros, MSG_NOSIGNAL), (ssize_t)sizeof zeros);
    cr_expect_eq(wait_files("ls -A %s/tmp | wc -l", spool, 0, 20), 0, "junk was stored after its first bytes");
    cr_assert_eq(send(junk, zeros, sizeof zeros, MSG_NOSIGNAL), (ssize_t)sizeof zeros);
    raw_read(junk, 3000, buf, sizeof buf);
    close(junk);
    cr_expect_eq(status_of_raw(buf), 400, "junk body: %s", buf);
    cr_expect(strstr(buf, "not a valid table") != NULL, "%s", buf);
    /* A second study upload while one is in progress: 503 (studies are parsed whole, one at a time). */
    int study = hold_upload("/studies", "30000000", buf, sizeof buf); /* once the junk upload's slot is free */
    cr_expect(strstr(buf, "100 Continue") != NULL, "a study upload is invited to send: %s", buf);
    close(raw_post("/studies", TOKEN, "30000000", buf, sizeof buf));
    cr_expect_eq(status_of_raw(buf), 503, "two study uploads at once: %s", buf);
    close(study);
    /* A whole 2.4 MB table to a study that does not exist: 404, nothing stored, no CPU spent. */
    double cpu0 = server_cpu_s();
    char file[200];
    snprintf(file, sizeof file, "%s/t1.hst", dir);
    /* The study upload just closed gives its upload slot back when the
     * server has seen the connection end: until then a new upload may be
     * told 503 (busy, retry), as any client would be; a client retries. */
    for (int i = 0; i < 5; i++) {
        long st = 503;
        for (int tries = 0; tries < 100 && st == 503; tries++) {
            if (tries) usleep(100 * 1000);
            st = request("POST", "/studies/00000000000000000000000000000000/tables", TOKEN, file, NULL);
        }
        cr_expect_eq(st, 404, "upload %d to an unknown study: %ld", i, st);
    }
    cr_expect_lt(server_cpu_s() - cpu0, 0.5, "404s cost %.2f s of CPU", server_cpu_s() - cpu0);
    cr_expect_eq(wait_files("ls -A %s/tmp | wc -l", spool, 0, 20), 0, "something was stored for refused uploads");
    cr_expect_eq(count_files("ls -d %s/*/ | wc -l", spool), 2, "a directory appeared for an unknown study");
    cr_expect_eq(request("GET", "/health", NULL, NULL, NULL), 200);
}

/* ---- item 5: bad uploads are cheap; the study is parsed once ----------------------------------- */
Test(server, bad_uploads_are_cheap, .timeout = 120, .fini = cleanup)
{
    make_dir();
    make_study(1);
    start(NULL);
    char sid[40], path[200], junk[200], trunc[200], *body = NULL;
    upload_study(sid);
    snprintf(path, sizeof path, "/studies/%s/tables", sid);
    snprintf(junk, sizeof junk, "%s/junk.bin", dir);
    snprintf(trunc, sizeof trunc, "%s/trunc.hst", dir);
    cr_assert_eq(sh("head -c 300 /dev/urandom > %s && head -c 100000 %s/t1.hst > %s", junk, dir, trunc), 0);
    double cpu0 = server_cpu_s();
    int bad = 0;
    for (int i = 0; i < 200; i++) bad += request("POST", path, TOKEN, i % 10 ? junk : trunc, NULL) == 400;
    double cpu = server_cpu_s() - cpu0;
    cr_expect_eq(bad, 200, "only %d of 200 bad uploads refused with 400", bad);
    cr_expect_lt(cpu, 3.0, "200 bad uploads cost %.2f s of server CPU (a study parse each?)", cpu);
    cr_expect_eq(request("POST", path, TOKEN, trunc, &body), 400);
    cr_expect(body && strstr(body, "not a valid table"), "%s", body ? body : "");
    free(body);
    /* A cold cache after a restart: the study is loaded off the HTTP thread, the upload goes through. */
    stop(SIGTERM);
    start(NULL);
    cr_expect_eq(upload_table(sid, 1, &body), 201, "%s", body ? body : "");
    free(body);
    cr_expect_eq(count_files("ls -A %s/tmp | wc -l", spool), 0);
}

/* ---- item 5: memory does not grow with uploads ------------------------------------------------ */
static long server_kb(const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", server_pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field))) kb = atol(line + strlen(field) + 1);
    if (f) fclose(f);
    return kb;
}

static int server_is_sanitized(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "grep -q libasan /proc/%d/maps", server_pid);
    return sh("%s", cmd) == 0;
}

Test(server, upload_memory_is_bounded, .timeout = 120, .fini = cleanup)
{
    make_dir();
    const char *C = test_bin("hestat-client");
    cr_assert_eq(sh("%s sample --rows 600 --seed 7 --out %s/t.csv > /dev/null && "
                    "%s keygen --schema %s/t.csv --keys %s/keys > /dev/null && "
                    "%s sample --rows 16000 --seed 8 --out %s/big.csv > /dev/null",
                    C, dir, C, dir, dir, C, dir), 0);
    for (int i = 1; i <= 4; i++)
        cr_assert_eq(sh("%s encrypt --study %s/keys/study.hst --in %s/big.csv --out %s/t%d.hst > /dev/null", C, dir,
                        dir, dir, i), 0);
    start(NULL);
    char sid[40];
    upload_study(sid);
    long base_kb = server_kb("VmHWM:");
    /* Four ~50 MB tables at once: each is validated and stored as it
     * arrives, never read back whole. */
    cr_assert_eq(sh("cd %s && for i in 1 2 3 4; do (curl -sS -o up$i.out -w '%%{http_code}' -X POST -H Expect: "
                    "-H 'Authorization: Bearer %s' -T t$i.hst %s/studies/%s/tables > code$i) & done; wait; "
                    "test \"$(cat code1 code2 code3 code4)\" = 201201201201",
                    dir, TOKEN, base, sid), 0, "the four uploads were not all stored");
    long peak_kb = server_kb("VmHWM:");
    cr_log_info("server peak resident memory: %ld kB after the study, %ld kB after 4 concurrent 50 MB uploads",
                base_kb, peak_kb);
    if (server_is_sanitized()) {
        cleanup(); /* a skip ends the test without its fini */
        cr_skip_test("AddressSanitizer's shadow and quarantine make resident memory meaningless");
    }
    cr_expect_lt(peak_kb - base_kb, 60 * 1024, "4 concurrent uploads of 50 MB raised the peak by %ld kB",
                 peak_kb - base_kb);
}

/* ---- item 7: more recovered jobs than the new --queue ---------------------------------------- */
Test(server, recovered_jobs_all_run, .timeout = 150, .fini = cleanup)
{
    make_dir();
    make_study(2);
    const char *big[] = {"--queue", "50", NULL};
    start(big);
    char sid[40], jobs[6][40];
    upload_study(sid);
    cr_assert_eq(upload_table(sid, 1, NULL), 201);
    cr_assert_eq(upload_table(sid, 2, NULL), 201);
    for (int i = 0; i < 6; i++) new_job(sid, "all", jobs[i]);
    stop(SIGKILL);
    const char *small[] = {"--queue", "1", NULL};
    start(small);
    for (int i = 0; i < 6; i++) {
        char *body = wait_job(sid, jobs[i], "done", 60);
        cr_expect_not_null(body, "recovered job %d of 6 never finished", i + 1);
        free(body);
    }
}

/* ---- item 8: disk full during a job ----------------------------------------------------------------- */
Test(server, disk_full_job_fails_with_reason, .timeout = 120, .fini = cleanup)
{
    make_dir();
    if (geteuid() != 0) {
        cleanup(); /* a skip ends the test without its fini */
        cr_skip_test("needs root to mount a small tmpfs spool");
    }
    make_study(1);
    cr_assert_eq(mkdir(spool, 0700), 0);
    if (mount("tmpfs", spool, "tmpfs", 0, "size=40m")) {
        int e = errno;
        cleanup();
        cr_skip_test("cannot mount a tmpfs on the spool: %s", strerror(e));
    }
    mounted = 1;
    start(NULL);
    char sid[40], job[40];
    upload_study(sid);
    cr_assert_eq(upload_table(sid, 1, NULL), 201);
    sh("dd if=/dev/zero of=%s/filler bs=1M count=64 2>/dev/null", spool); /* fails once full: expected */
    sh("dd if=/dev/zero of=%s/filler2 bs=4k count=100 2>/dev/null", spool);
    new_job(sid, "means", job);
    char *body = wait_job(sid, job, "failed", 30);
    cr_assert_not_null(body, "a job that cannot write its result must end failed");
    cr_expect(strstr(body, "No space left"), "the reason: %s", body);
    free(body);
    /* The client's own job fails the same way: it stops polling and prints the reason. */
    char out[200];
    snprintf(out, sizeof out, "%s/fetch.err", dir);
    cr_expect_neq(sh("%s fetch --server %s --token-file %s --study-id %s --stats means --out %s/r.hst 2> %s >/dev/null",
                     test_bin("hestat-client"), base, tokpath, sid, dir, out), 0,
                  "fetch of a failed job must exit non-zero");
    cr_expect_eq(sh("grep -q 'No space left' %s", out), 0, "fetch must print the reason");
    /* Space back: the next job succeeds, and the failed state reaches the disk. */
    cr_assert_eq(sh("rm -f %s/filler %s/filler2", spool, spool), 0);
    char job2[40];
    new_job(sid, "means", job2);
    body = wait_job(sid, job2, "done", 30);
    cr_expect_not_null(body);
    free(body);
    char state[300];
    snprintf(state, sizeof state, "%s/%s/jobs/%s.json", spool, sid, job);
    cr_expect_eq(sh("grep -q failed %s", state), 0, "the failed state was never written once space came back");
    stop(SIGTERM);
}

/* ---- item 9: leftovers of a kill -9 ---------------------------------------------------------------- */
Test(server, stale_temporaries_removed_at_start, .timeout = 60, .fini = cleanup)
{
    make_dir();
    make_study(1);
    start(NULL);
    char sid[40], job[40];
    upload_study(sid);
    cr_assert_eq(upload_table(sid, 1, NULL), 201);
    new_job(sid, "means", job);
    free(wait_job(sid, job, "done", 30));
    stop(SIGKILL);
    char s[300];
    snprintf(s, sizeof s, "%s/%s", spool, sid);
    cr_assert_eq(sh("cd %s && echo x > tmp/upload-Ab12Cd && mkdir tmp/study-Qw12Er && "
                    "echo y > tmp/study-Qw12Er/study.hst && echo z > %s/jobs/%s.json.tmp.Zx98Yu && "
                    "echo w > %s/tables/0123456789abcdef0123456789abcdef.hst.tmp.Qq11Ww && "
                    "rm %s/tables/*.sha && echo 0123456789abcdef0123456789abcdef > %s/tables/%064d.sha",
                    spool, sid, job, sid, sid, sid, 7), 0); /* the real marker goes too: a spool of before markers */
    start(NULL);
    cr_expect_eq(count_files("ls -A %s/tmp | wc -l", spool), 0, "tmp/ not emptied");
    cr_expect_eq(count_files("find %s -name '*.tmp.*' | wc -l", spool), 0, "*.tmp.XXXXXX left");
    cr_expect_eq(count_files("ls %s/tables/*.sha | wc -l", s), 1, "the orphan marker stayed, or none was made");
    cr_expect_eq(count_files("ls %s/tables/*.hst | wc -l", s), 1);
    cr_expect_eq(upload_table(sid, 1, NULL), 409, "a table stored without a marker was not recognised");
    cr_expect_eq(sh("grep -q done %s/jobs/%s.json && test -s %s/jobs/%s.result.hst", s, job, s, job), 0);
}

/* ---- item 10: DELETE without a shell, without following links ------------------------------------------ */
Test(server, delete_without_shell_or_links, .timeout = 60, .fini = cleanup)
{
    make_dir();
    make_study(1);
    snprintf(spool, sizeof spool, "%s/it's a spool", dir); /* a quote broke rm -rf '...' */
    start(NULL);
    char sid[40], path[200];
    upload_study(sid);
    cr_assert_eq(upload_table(sid, 1, NULL), 201);
    cr_assert_eq(sh("mkdir %s/outside && echo keep > %s/outside/victim.txt && "
                    "ln -s %s/outside \"%s/%s/tables/link-dir\" && "
                    "ln -s %s/outside/victim.txt \"%s/%s/jobs/link-file\"",
                    dir, dir, dir, spool, sid, dir, spool, sid), 0);
    snprintf(path, sizeof path, "/studies/%s", sid);
    cr_expect_eq(request("DELETE", path, TOKEN, NULL, NULL), 204);
    cr_expect_eq(sh("test -f %s/outside/victim.txt && grep -q keep %s/outside/victim.txt", dir, dir), 0,
                 "DELETE followed a link out of the spool");
    cr_expect_eq(sh("test ! -e \"%s/%s\"", spool, sid), 0, "the study is still there");
    cr_expect_eq(count_files("ls -A \"%s/tmp\" | wc -l", spool), 0);
    cr_expect_eq(request("DELETE", path, TOKEN, NULL, NULL), 404);
    cr_expect_eq(request("GET", "/health", NULL, NULL, NULL), 200);
}

/* ---- item 11: SIGTERM during a long job ---------------------------------------------------------------- */
Test(server, sigterm_is_prompt_and_the_job_resumes, .timeout = 150, .fini = cleanup)
{
    make_dir();
    make_study(10);
    start(NULL);
    char sid[40], job[40];
    upload_study(sid);
    for (int i = 1; i <= 10; i++) cr_assert_eq(upload_table(sid, i, NULL), 201);
    new_job(sid, "all", job);
    char *body = wait_job(sid, job, "running", 20);
    cr_assert_not_null(body);
    free(body);
    usleep(300000);
    long ms = stop(SIGTERM);
    cr_log_info("SIGTERM with a running job: the server exited in %ld ms", ms);
    cr_expect_lt(ms, 3000, "SIGTERM with a running job took %ld ms", ms);
    char state[300];
    snprintf(state, sizeof state, "%s/%s/jobs/%s.json", spool, sid, job);
    cr_expect_eq(sh("grep -q '\"queued\"' %s", state), 0, "the running job was not left queued");
    start(NULL);
    body = wait_job(sid, job, "done", 90);
    cr_expect_not_null(body, "the job did not complete after the restart");
    free(body);
    char url[300], result[200];
    snprintf(url, sizeof url, "%s/studies/%s/jobs/%s/result", base, sid, job);
    snprintf(result, sizeof result, "%s/r.hst", dir);
    http_result_t r;
    memset(&r, 0, sizeof r);
    http_request("GET", url, TOKEN, NULL, result, &r);
    free(r.body);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(sh("%s decrypt --keys %s/keys --in %s --out %s/report.csv > /dev/null", test_bin("hestat-client"), dir,
                    result, dir), 0, "the resumed job's result does not decrypt");
}

/* ---- item 18: the token and exposure -------------------------------------------------------------------------- */
Test(server, token_file_rules, .timeout = 60, .fini = cleanup)
{
    make_dir();
    const char *S = test_bin("hestat-server");
    char out[200];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    /* Readable by others: refused with the reason. */
    cr_assert_eq(sh("chmod 644 %s", tokpath), 0);
    cr_expect_eq(sh("timeout 10 %s serve --listen 127.0.0.1:0 --spool %s --token-file %s > %s 2>&1", S, spool,
                    tokpath, out), 1);
    cr_expect_eq(sh("grep -q 'readable by group or others' %s", out), 0);
    /* Longer than 4096 characters: refused, never cut. */
    cr_assert_eq(sh("rm -f %s && umask 077 && head -c 5000 /dev/zero | tr '\\0' a > %s", tokpath, tokpath), 0);
    cr_expect_eq(sh("timeout 10 %s serve --listen 127.0.0.1:0 --spool %s --token-file %s > %s 2>&1", S, spool,
                    tokpath, out), 1);
    cr_expect_eq(sh("grep -q 'longer than 4096' %s", out), 0);
    /* 300 characters: the whole token counts (its first 255 do not pass). */
    char token[301];
    memset(token, 'k', 300);
    token[299] = 'Z';
    token[300] = 0;
    cr_assert_eq(sh("umask 077 && printf '%%s\\n' %s > %s", token, tokpath), 0);
    start(NULL);
    const char *job = "/studies/0123456789abcdef0123456789abcdef/jobs/0123456789abcdef0123456789abcdef";
    cr_expect_eq(request("GET", job, token, NULL, NULL), 404, "the full 300-character token must be accepted");
    token[255] = 0;
    cr_expect_eq(request("GET", job, token, NULL, NULL), 401, "a 255-character prefix of the token was accepted");
    stop(SIGTERM);
    cr_expect_neq(sh("grep -q warning %s", logpath), 0, "loopback with a token must not warn");
    /* Beyond loopback without a token or TLS: warnings (192.0.2.1 is not
     * this machine's, so nothing is ever exposed: the bind fails). */
    cr_expect_neq(sh("timeout 10 %s serve --listen 192.0.2.1:0 --spool %s > %s 2>&1", S, spool, out), 0);
    cr_expect_eq(sh("grep -q 'without --token-file' %s && grep -q 'without TLS' %s", out, out), 0,
                 "no warning for a non-loopback address");
}

/* ---- the server never crashes on bad input -------------------------------------------------------------------- */
Test(server, malformed_requests_are_answered, .timeout = 60, .fini = cleanup)
{
    make_dir();
    start(NULL);
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n",
        "POST /studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "\r\nContent-Length: -5\r\n\r\n",
        "POST /studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
        "\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST /studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "\r\nContent-Length: 10\r\n\r\n0123456789",
        "GET /studies/%00%2e%2e/jobs/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "\r\n\r\n",
        "DELETE /studies/../../etc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "\r\n\r\n",
        "POST /studies/0123456789abcdef0123456789abcdef/jobs?stats=evil HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = raw_connect("127.0.0.1");
        cr_assert_geq(fd, 0);
        raw_send(fd, bad[i]);
        char buf[2048];
        raw_read(fd, 2000, buf, sizeof buf);
        close(fd);
        cr_expect_eq(request("GET", "/health", NULL, NULL, NULL), 200, "after request %zu", i);
    }
    /* Headers far beyond the connection's memory: refused, not a crash. */
    int fd = raw_connect("127.0.0.1");
    raw_send(fd, "GET /health HTTP/1.1\r\nX-Big: ");
    char chunk[1025];
    memset(chunk, 'a', 1024);
    chunk[1024] = 0;
    for (int i = 0; i < 128 && raw_send(fd, chunk); i++) {
    }
    close(fd);
    cr_expect_eq(request("GET", "/health", NULL, NULL, NULL), 200);
    cr_expect_eq(kill(server_pid, 0), 0, "the server died");
}

/* Bodies whose length a proxy could read differently (two Content-Length
 * headers, a Transfer-Encoding other than "chunked" alone, or both headers):
 * 400 at once, whatever the token, instead of the first length winning or a
 * wait for the connection to close. */
Test(server, ambiguous_lengths_are_refused, .timeout = 60, .fini = cleanup)
{
    make_dir();
    start(NULL);
    const char *bad[] = {
        "POST /studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
        "\r\nContent-Length: 100\r\nContent-Length: 3\r\n\r\nabc",
        "POST /studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
        "\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n",
        "POST /studies HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = raw_connect("127.0.0.1");
        cr_assert_geq(fd, 0);
        raw_send(fd, bad[i]);
        char buf[2048] = "";
        double t0 = now_ms();
        raw_read(fd, 3000, buf, sizeof buf);
        close(fd);
        cr_expect_eq(status_of_raw(buf), 400, "request %zu: %.80s", i, buf);
        cr_expect_lt(now_ms() - t0, 2500, "request %zu: answered only after %.0f ms", i, now_ms() - t0);
    }
    cr_expect_eq(request("GET", "/health", NULL, NULL, NULL), 200);
}

/* A draft upload is read back whole to be validated: one larger than any
 * draft of its parameters (a real parameters frame, then a frame claiming
 * 40 MB) is refused unread (400), so it costs the server no memory. */
Test(server, oversized_draft_is_refused_unread, .timeout = 120, .fini = cleanup)
{
    make_dir();
    const char *C = test_bin("hestat-client");
    cr_assert_eq(sh("%s sample --rows 300 --seed 7 --out %s/t.csv > /dev/null && "
                    "%s keygen --schema %s/t.csv --keys %s/keys > /dev/null", C, dir, C, dir, dir), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/keys/study.hst", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    uint8_t head[48];
    cr_assert_eq(fread(head, 1, 48, f), 48);
    uint64_t plen;
    memcpy(&plen, head + 24, 8);
    cr_assert_lt(plen, 4096, "the study's first frame is its parameters");
    uint8_t *params = malloc(48 + plen);
    memcpy(params, head, 48);
    cr_assert_eq(fread(params + 48, 1, plen, f), plen);
    fclose(f);
    snprintf(path, sizeof path, "%s/big-draft.hst", dir);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite(params, 1, 48 + plen, f);
    const size_t junk = (size_t)40 << 20;
    uint8_t next[48];
    memcpy(next, head, 48);
    uint16_t type = STATS_OBJ_SCHEMA;
    uint64_t claim = junk;
    memcpy(next + 10, &type, 2);
    memcpy(next + 24, &claim, 8);
    fwrite(next, 1, 48, f);
    cr_assert_eq(fseek(f, (long)(48 + plen + 48 + junk - 1), SEEK_SET), 0);
    fputc(0, f);
    fclose(f);
    free(params);
    start(NULL);
    long base_kb = server_kb("VmHWM:");
    cr_assert_eq(sh("cd %s && curl -sS -o draft.out -w '%%{http_code}' -X POST -H Expect: -H 'Authorization: Bearer %s' "
                    "-T big-draft.hst %s/drafts > draft.code; test \"$(cat draft.code)\" = 400",
                    dir, TOKEN, base), 0, "a 40 MB draft was not refused with 400");
    cr_expect_eq(sh("grep -q 'not a valid draft: .* bytes, more than one takes here' %s/draft.out", dir), 0);
    long peak_kb = server_kb("VmHWM:");
    cr_log_info("server peak resident memory: %ld kB before, %ld kB after a 40 MB draft", base_kb, peak_kb);
    cr_expect_eq(request("GET", "/health", NULL, NULL, NULL), 200);
    if (server_is_sanitized()) {
        cleanup();
        cr_skip_test("AddressSanitizer's shadow and quarantine make resident memory meaningless");
    }
    cr_expect_lt(peak_kb - base_kb, 20 * 1024, "a refused 40 MB draft raised the peak by %ld kB", peak_kb - base_kb);
}

Test(server, help_states_every_limit, .timeout = 20)
{
    const char *opts[] = {"--max-connections", "--max-per-ip", "--header-timeout", "--idle-timeout", "--max-upload ",
                          "--max-uploads", "--workers", "--queue", "--threads", "--cached-studies", "--token-file",
                          "--tls-cert", "--listen", "--spool"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        cr_expect_eq(sh("%s --help | grep -q -- '%s'", test_bin("hestat-server"), opts[i]), 0, "%s missing from --help",
                     opts[i]);
    cr_expect_eq(sh("timeout 10 %s serve --max-per-ip 0 2>/dev/null", test_bin("hestat-server")), 2);
}

/* ---- glm over HTTP (issue 12, item 1) ------------------------------------------------------- */
#include <dirent.h>
#include <math.h>

#include "apps/client/client.h"

#define GLM_SPEC "glm:TenYearCHD~age+sysBP:binomial"

/* The first study directory of the spool. */
static void spool_study(char sid[40])
{
    DIR *d = opendir(spool);
    struct dirent *e;
    sid[0] = 0;
    while (d && (e = readdir(d)))
        if (strlen(e->d_name) == 32) snprintf(sid, 40, "%.32s", e->d_name);
    if (d) closedir(d);
    cr_assert_eq(strlen(sid), 32, "no study in the spool");
}

/* The report row stat,var,group's value (NAN when absent). */
static double report_value(const char *path, const char *stat, const char *var, const char *group)
{
    FILE *f = fopen(path, "r");
    char line[1024], want[600];
    snprintf(want, sizeof want, "%s,%s,%s,", stat, var, group);
    double v = NAN;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, want, strlen(want))) v = strtod(line + strlen(want), NULL);
    if (f) fclose(f);
    return v;
}

Test(server, glm_over_http_matches_the_local_fit, .timeout = 400, .fini = cleanup)
{
    make_dir();
    start(NULL);
    const char *C = test_bin("hestat-client");
    cr_assert_eq(sh("%s sample --rows 600 --seed 7 --out %s/t.csv > /dev/null", C, dir), 0);
    /* Rounds on the server: each returns only the encrypted totals. */
    cr_assert_eq(sh("%s run --csv %s/t.csv --out %s/web --server %s --token-file %s --stats '" GLM_SPEC
                    "' > %s/run.log 2>&1",
                    C, dir, dir, base, tokpath, dir),
                 0, "run --server failed (see %s/run.log)", dir);
    /* The same keys and table with the rounds in this process. */
    char keys[200], table[200], csv[200], report[200], web[200];
    snprintf(keys, sizeof keys, "%s/web/keys", dir);
    snprintf(table, sizeof table, "%s/web/table.hst", dir);
    snprintf(csv, sizeof csv, "%s/t.csv", dir);
    snprintf(report, sizeof report, "%s/local.csv", dir);
    snprintf(web, sizeof web, "%s/web/decrypted_results.csv", dir);
    cr_assert_eq(sh("touch %s", report), 0);
    client_opts_t o;
    memset(&o, 0, sizeof o);
    o.stats = GLM_SPEC;
    cr_assert_eq(client_glm_run(&o, keys, table, csv, report, 1), 0);
    const char *model = GLM_SPEC + 4, *terms[] = {"(intercept)", "age", "sysBP"}, *stats[] = {"coef", "se", "z", "p"};
    for (int t = 0; t < 3; t++)
        for (int s = 0; s < 4; s++) {
            double a = report_value(web, stats[s], model, terms[t]), b = report_value(report, stats[s], model, terms[t]);
            cr_assert(isfinite(a) && isfinite(b), "%s %s: %g %g", stats[s], terms[t], a, b);
            cr_expect_leq(fabs(a - b), 1e-9 * fmax(1, fabs(b)), "%s %s: HTTP %.17g, local %.17g", stats[s], terms[t], a, b);
        }
    const char *rows[] = {"deviance", "n", "rounds", "max_abs_score"};
    for (int s = 0; s < 4; s++) {
        double a = report_value(web, rows[s], model, ""), b = report_value(report, rows[s], model, "");
        cr_expect_leq(fabs(a - b), 1e-9 * fmax(1, fabs(b)), "%s: HTTP %.17g, local %.17g", rows[s], a, b);
    }
    cr_expect_eq(report_value(web, "n", model, ""), 600);

    /* hestat-client glm on the study already on the server (the tables its
     * contributors uploaded): a new report with the same rows as run's, and
     * its page; decrypt --add-rows puts them after the statistics. */
    char sid[40];
    spool_study(sid);
    cr_assert_eq(sh("%s glm --server %s --token-file %s --study-id %s --keys %s --stats '" GLM_SPEC
                    "' --compare %s --out %s/glm.csv --html %s/glm.html > %s/glm.log 2>&1",
                    C, base, tokpath, sid, keys, csv, dir, dir, dir),
                 0, "glm failed (see %s/glm.log)", dir);
    char glm[200];
    snprintf(glm, sizeof glm, "%s/glm.csv", dir);
    for (int t = 0; t < 3; t++)
        for (int s = 0; s < 4; s++) {
            double a = report_value(web, stats[s], model, terms[t]), b = report_value(glm, stats[s], model, terms[t]);
            cr_expect(isfinite(b) && fabs(a - b) <= 1e-9 * fmax(1, fabs(a)), "%s %s: run %.17g, glm %.17g", stats[s],
                      terms[t], a, b);
        }
    cr_expect_eq(sh("grep -q '^statistic,variable,group,value,plaintext,abs_error,rel_error$' %s && "
                    "grep -q 'binomial' %s/glm.html", glm, dir), 0, "the new report's header or its page");
    cr_assert_eq(sh("%s decrypt --keys %s --in %s/web/result.hst --out %s/all.csv --compare %s --add-rows %s "
                    "> /dev/null 2>&1", C, keys, dir, dir, csv, glm), 0);
    char all[200];
    snprintf(all, sizeof all, "%s/all.csv", dir);
    cr_expect_eq(report_value(all, "coef", model, "age"), report_value(glm, "coef", model, "age"));
    cr_expect(isfinite(report_value(all, "mean", "age", "")), "the statistics stay");
    /* Rows of a report without the plaintext columns do not fit this one. */
    cr_assert_eq(sh("%s decrypt --keys %s --in %s/web/result.hst --out %s/plain.csv > /dev/null 2>&1", C, keys, dir,
                    dir), 0);
    cr_expect_neq(sh("%s decrypt --keys %s --in %s/web/result.hst --out %s/all.csv --compare %s --add-rows "
                     "%s/plain.csv > %s/add.log 2>&1", C, keys, dir, dir, csv, dir, dir), 0);
    cr_expect_eq(sh("grep -q 'header' %s/add.log", dir), 0, "the reason names the header");

    /* Bad rounds: 400 with the reason, before any job exists. */
    static const struct {
        const char *query, *reason;
    } bad[] = {
        {"stats=glm", "model is missing"},
        {"stats=glm&model=TenYearCHD~nosuch%2BsysBP:binomial&gamma=0,0,0&lo=0,0&hi=1,1", "no column cc:nosuch"},
        {"stats=glm&model=TenYearCHD~age:gaussian&gamma=0,0&lo=0&hi=1", "family"},
        {"stats=glm&model=TenYearCHD~age%2BsysBP:binomial&gamma=0,0&lo=0,0&hi=1,1", "the model needs 3"},
        {"stats=glm&model=TenYearCHD~age%2BsysBP:binomial&gamma=0,nan,0&lo=0,0&hi=1,1", "finite"},
        {"stats=glm&model=TenYearCHD~age%2BsysBP:binomial&gamma=0,1e300,0&lo=0,0&hi=1,1", "finite"},
        {"stats=glm&model=TenYearCHD~age%2BsysBP:binomial&gamma=0,0,0&lo=0,2&hi=1,1", "above hi"},
        {"stats=glm&model=TenYearCHD~age%2BsysBP:binomial&gamma=0,0,0&lo=0,0&hi=1,1&degree=64", "degree"},
        {"stats=glm&model=TenYearCHD~age%2BsysBP:binomial&gamma=0,0,0&lo=0,0&hi=1,1&tol=-1", "tol"},
        {"stats=glm&model=TenYearCHD~age%2BsysBP:binomial&gamma=0,0,0&lo=0,0&hi=1,1&deviance=2", "deviance"},
        {"stats=glm&model=TenYearCHD~age%2BsysBP:binomial&gamma=0%200,0,0&lo=0,0&hi=1,1", "printable"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[300], *body = NULL;
        snprintf(path, sizeof path, "/studies/%s/jobs?%s", sid, bad[i].query);
        cr_expect_eq(request("POST", path, TOKEN, NULL, &body), 400, "%s: %s", bad[i].query, body ? body : "");
        cr_expect(body && strstr(body, bad[i].reason), "%s: %s (wanted %s)", bad[i].query, body ? body : "",
                  bad[i].reason);
        free(body);
    }
}
