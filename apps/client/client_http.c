/* hestat-client submit and fetch over HTTP.
 *
 * A request answered 503 (the server's job queue or upload slots are full)
 * is retried: after Retry-After seconds when the server sends it (clamped
 * to 1..30 s), else after 1, 2, 4, ... s; at most `retries` times (default
 * CLIENT_RETRIES, --retries N) and CLIENT_RETRY_BUDGET_S seconds of waiting
 * per request. Each wait is announced on standard error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "apps/client/client.h"
#include "apps/client/http.h"

static int max_retries = CLIENT_RETRIES;

void client_http_retries(int retries) { max_retries = retries < 0 ? 0 : retries; }

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts)) {}
}

static void report_failure(const char *method, const char *url, int rc, const http_result_t *r)
{
    json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
    if (rc) fprintf(stderr, "hestat-client: %s %s: %s\n", method, url, r->error);
    else fprintf(stderr, "hestat-client: %s %s: HTTP %ld: %s\n", method, url, r->status, msg ? msg : "unexpected status");
    json_decref(j);
}

/* How long to wait before retry number `attempt` (from 1); < 0: give up. */
static double retry_wait(const http_result_t *r, int attempt, double waited)
{
    if (attempt > max_retries) return -1;
    double w = r->retry_after >= 0 ? (double)r->retry_after : (double)(1 << (attempt - 1 < 5 ? attempt - 1 : 5));
    if (w < 1) w = 1;
    if (w > 30) w = 30;
    if (waited + w > CLIENT_RETRY_BUDGET_S) return -1;
    return w;
}

/* Runs a request; on success *json holds the parsed body (may be NULL). */
int client_call(const char *method, const char *url, const char *token, const char *upload, const char *out,
                long want, json_t **json)
{
    if (json) *json = NULL;
    double waited = 0;
    for (int attempt = 1;; attempt++) {
        http_result_t r;
        int rc = http_request(method, url, token, upload, out, &r);
        if (!rc && r.status == want) {
            if (json && r.body) *json = json_loads(r.body, 0, NULL);
            free(r.body);
            return 0;
        }
        double w = !rc && r.status == 503 ? retry_wait(&r, attempt, waited) : -1;
        if (w < 0) {
            report_failure(method, url, rc, &r);
            if (!rc && r.status == 503)
                fprintf(stderr, "hestat-client: the server is still busy after %d %s (%.0f s of waiting); "
                        "try again later\n", attempt - 1, attempt == 2 ? "retry" : "retries", waited);
            free(r.body);
            return 1;
        }
        free(r.body);
        fprintf(stderr, "hestat-client: %s %s: server busy (503), retry %d of %d in %.0f s\n", method, url, attempt,
                max_retries, w);
        sleep_s(w);
        waited += w;
    }
}

int client_submit(const char *server, const char *token, const char *study_path, const char *study_id_in,
                  const char *const *tables, size_t n, char *study_id, size_t idlen)
{
    /* Everything that would leave this machine is checked before the first connection. */
    if (!study_id_in && client_check_upload(study_path, CLIENT_UPLOAD_STUDY)) return 1;
    for (size_t i = 0; i < n; i++)
        if (client_check_upload(tables[i], CLIENT_UPLOAD_TABLE)) return 1;
    char url[2048];
    json_t *j;
    if (study_id_in) {
        snprintf(study_id, idlen, "%s", study_id_in);
    } else {
        snprintf(url, sizeof url, "%s/studies", server);
        http_progress("study");
        int rc = client_call("POST", url, token, study_path, NULL, 201, &j);
        http_progress(NULL);
        if (rc) return 1;
        const char *id = json_string_value(json_object_get(j, "study"));
        if (!id) {
            json_decref(j);
            return client_fail("server", "no study id in the reply");
        }
        snprintf(study_id, idlen, "%s", id);
        json_decref(j);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(url, sizeof url, "%s/studies/%s/tables", server, study_id);
        http_progress("upload");
        int rc = client_call("POST", url, token, tables[i], NULL, 201, &j);
        http_progress(NULL);
        if (rc) return 1;
        printf("uploaded %s: table %s, %lld rows\n", tables[i], json_string_value(json_object_get(j, "table")),
               (long long)json_integer_value(json_object_get(j, "rows")));
        json_decref(j);
    }
    return 0;
}

int client_fetch(const char *server, const char *token, const char *study_id, const char *stats, const char *out)
{
    return client_job(server, token, study_id, stats && !strcmp(stats, "means") ? "stats=means" : "stats=all", out, 1);
}

int client_job(const char *server, const char *token, const char *study_id, const char *query, const char *out,
               int progress)
{
    return client_job_id(server, token, study_id, query, out, progress, NULL);
}

int client_job_id(const char *server, const char *token, const char *study_id, const char *query, const char *out,
                  int progress, char *job_id)
{
    char url[16384];
    json_t *j;
    if ((size_t)snprintf(url, sizeof url, "%s/studies/%s/jobs?%s", server, study_id, query) >= sizeof url)
        return client_fail("server", "the request is too long");
    if (client_call("POST", url, token, NULL, NULL, 202, &j)) return 1;
    char job[64];
    snprintf(job, sizeof job, "%s", json_string_value(json_object_get(j, "job")) ?: "");
    json_decref(j);
    if (!job[0]) return client_fail("server", "no job id in the reply");
    if (job_id) snprintf(job_id, 64, "%s", job);
    snprintf(url, sizeof url, "%s/studies/%s/jobs/%s", server, study_id, job);
    for (int tries = 0;; tries++) {
        if (client_call("GET", url, token, NULL, NULL, 200, &j)) return 1;
        const char *st = json_string_value(json_object_get(j, "status"));
        if (st && !strcmp(st, "done")) {
            json_decref(j);
            break;
        }
        if (progress && isatty(2)) fprintf(stderr, "\rcompute    %s, %.1f s", st ? st : "?", tries * 0.1);
        if (!st || !strcmp(st, "failed") || tries > 36000) {
            fprintf(stderr, "hestat-client: job %s failed: %s\n", job,
                    json_string_value(json_object_get(j, "error")) ?: "timed out");
            json_decref(j);
            return 1;
        }
        json_decref(j);
        usleep(100000);
    }
    if (progress && isatty(2)) fputc('\n', stderr);
    snprintf(url, sizeof url, "%s/studies/%s/jobs/%s/result", server, study_id, job);
    http_progress(progress ? "download" : NULL);
    int rc = client_call("GET", url, token, NULL, out, 200, NULL);
    http_progress(NULL);
    return rc;
}

int client_health(const char *server, double wait_s)
{
    char url[2048];
    snprintf(url, sizeof url, "%s/health", server);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        http_result_t r;
        int rc = http_request("GET", url, NULL, NULL, NULL, &r);
        free(r.body);
        if (!rc && r.status == 200) {
            printf("ok\n");
            return 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) * 1e-9 + 0.25 > wait_s) {
            report_failure("GET", url, rc, &r);
            return 1;
        }
        sleep_s(0.25);
    }
}
