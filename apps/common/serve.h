/* hestat-server serve: options and entry point (apps/common/serve.c). */
#ifndef HESTAT_SERVE_H
#define HESTAT_SERVE_H

#include <stddef.h>

typedef struct {
    const char *host; /* IPv4 address, default 127.0.0.1 */
    int port;         /* 0: any free port (printed) */
    const char *spool;
    const char *token_file; /* NULL: no token */
    size_t max_upload;      /* bytes */
    int workers;
    int queue;              /* queued jobs before 503, 1..64 */
    const char *tls_cert, *tls_key; /* PEM files: HTTPS (GnuTLS through libmicrohttpd) */
} serve_options_t;

int serve_main(const serve_options_t *o);

#endif
