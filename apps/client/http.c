/* libcurl requests for hestat-client: uploads streamed from files, bodies to
 * memory or to a temporary file renamed into place. */
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/client/http.h"

typedef struct {
    char *p;
    size_t len, cap;
    FILE *file;
} sink_t;

static const char *progress_label, *cacert;

void http_set_cacert(const char *path) { cacert = path; }

void http_progress(const char *label)
{
    progress_label = label && isatty(2) ? label : NULL;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)arg;
    curl_off_t total = ultotal > 0 && ulnow < ultotal ? ultotal : dltotal, now = total == ultotal ? ulnow : dlnow;
    if (total > 0) {
        int pct = (int)(100 * now / total), bar = pct / 4;
        fprintf(stderr, "\r%-10s [%.*s%*s] %3d%% %.1f MB", progress_label, bar, "#########################",
                25 - bar, "", pct, (double)total / 1e6);
    }
    return 0;
}

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    sink_t *s = arg;
    size_t bytes = size * n;
    if (s->file) return fwrite(data, 1, bytes, s->file);
    if (s->len + bytes + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + bytes + 1) cap *= 2;
        char *q = realloc(s->p, cap);
        if (!q) return 0;
        s->p = q;
        s->cap = cap;
    }
    memcpy(s->p + s->len, data, bytes);
    s->len += bytes;
    s->p[s->len] = 0;
    return bytes;
}

/* The header list with "Authorization: Bearer TOKEN" first; NULL when out
 * of memory. The temporary is wiped; free_headers wipes libcurl's copies. */
static struct curl_slist *bearer_header(const char *token)
{
    static const char prefix[] = "Authorization: Bearer ";
    size_t n = sizeof prefix + strlen(token);
    char *h = malloc(n);
    if (!h) return NULL;
    snprintf(h, n, "%s%s", prefix, token);
    struct curl_slist *list = curl_slist_append(NULL, h);
    sodium_memzero(h, n);
    free(h);
    return list;
}

static void free_headers(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l; l = l->next)
        if (l->data) sodium_memzero(l->data, strlen(l->data));
    curl_slist_free_all(list);
}

/* An error answer that went to the output file: its first 64 KiB as the body. */
static void error_body(const char *path, sink_t *sink)
{
    FILE *f = fopen(path, "rb");
    if (!f) return;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    sink->file = NULL;
    if (n) on_data(buf, 1, n, sink);
}

int http_request(const char *method, const char *url, const char *token, const char *upload_path,
                 const char *out_path, http_result_t *res)
{
    memset(res, 0, sizeof *res);
    res->retry_after = -1;
    static int inited;
    if (!inited) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = 1;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(res->error, sizeof res->error, "cannot initialise libcurl");
        return -1;
    }
    sink_t sink = {0};
    char tmp[4200] = "";
    FILE *up = NULL;
    struct curl_slist *headers = NULL;
    if (out_path) {
        snprintf(tmp, sizeof tmp, "%s.part", out_path);
        sink.file = fopen(tmp, "wb");
        if (!sink.file) {
            snprintf(res->error, sizeof res->error, "cannot write %.200s", tmp);
            curl_easy_cleanup(c);
            return -1;
        }
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, res->error);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    if (cacert) curl_easy_setopt(c, CURLOPT_CAINFO, cacert);
    if (progress_label) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    }
    if (token && !(headers = bearer_header(token))) {
        snprintf(res->error, sizeof res->error, "out of memory");
        if (sink.file) fclose(sink.file);
        if (tmp[0]) unlink(tmp);
        curl_easy_cleanup(c);
        return -1;
    }
    /* An upload waits for the server's go-ahead (100 Continue): a refusal
     * (413, 401, 404, 503) then arrives before any of the body is sent, where
     * a body already in flight could make the server's close reset the
     * connection and lose the answer. Other requests have no body to wait for. */
    headers = curl_slist_append(headers, upload_path ? "Expect: 100-continue" : "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        if (upload_path) {
            struct stat st;
            up = fopen(upload_path, "rb");
            if (!up || fstat(fileno(up), &st)) {
                snprintf(res->error, sizeof res->error, "cannot read %.200s", upload_path);
                if (up) fclose(up);
                if (sink.file) fclose(sink.file);
                if (tmp[0]) unlink(tmp);
                free_headers(headers);
                curl_easy_cleanup(c);
                return -1;
            }
            curl_easy_setopt(c, CURLOPT_READDATA, up);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        }
    } else if (strcmp(method, "GET")) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    if (progress_label) fputc('\n', stderr);
    if (rc == CURLE_OK) {
        curl_off_t after = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
        if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0) res->retry_after = (long)after;
    } else if (!res->error[0]) {
        snprintf(res->error, sizeof res->error, "%s", curl_easy_strerror(rc));
    }
    if (up) fclose(up);
    free_headers(headers);
    curl_easy_cleanup(c);
    if (sink.file) {
        int ok = fclose(sink.file) == 0 && rc == CURLE_OK && res->status == 200;
        if (ok && rename(tmp, out_path)) ok = 0;
        if (!ok && rc == CURLE_OK && res->status != 200) error_body(tmp, &sink); /* the server's reason */
        if (!ok) unlink(tmp);
    }
    res->body = sink.p;
    res->len = sink.len;
    return rc == CURLE_OK ? 0 : -1;
}
