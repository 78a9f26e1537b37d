/* Small libcurl helpers for hestat-client (apps/client/http.c). */
#ifndef HESTAT_HTTP_H
#define HESTAT_HTTP_H

#include <stddef.h>

typedef struct {
    long status;    /* HTTP status, 0 when the request failed */
    char *body;     /* response body (NUL-terminated), caller frees */
    size_t len;
    long retry_after; /* seconds from a Retry-After header (either form), -1 when absent */
    char error[256];
} http_result_t;

/* method "GET"/"POST"/"DELETE"; upload_path: file sent as the body (POST),
 * streamed from disk; out_path: when set, a 200 body goes there atomically.
 * token: sent as "Authorization: Bearer TOKEN" (any length; every copy this
 * code makes is wiped). Connecting gives up after 30 s. */
int http_request(const char *method, const char *url, const char *token, const char *upload_path,
                 const char *out_path, http_result_t *res);
/* Label for a progress bar on standard error during the next requests (only
 * when it is a terminal); NULL for none. */
void http_progress(const char *label);
/* CA certificate (PEM) for https:// servers with a private certificate. */
void http_set_cacert(const char *path);

#endif
