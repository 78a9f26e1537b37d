/* hestat-server serve: the multiparty endpoints (apps/server/mp_http.c). */
#ifndef HESTAT_SERVER_MP_HTTP_H
#define HESTAT_SERVER_MP_HTTP_H

#include "apps/server/serve_impl.h"

enum { SRV_MP_DRAFT = 1, SRV_MP_ROUND1, SRV_MP_ROUND2, SRV_MP_SHARES };

/* Whether spool/ID holds a draft (a multiparty study, built or not). */
int srv_mp_is_draft(const srv_server_t *s, const char *study);

/* Uploads as upload.c's: new (refusals with an HTTP status), feed (every
 * frame header checked as it arrives), failed, finish (offload thread:
 * validation, fsync, placement, the protocol advanced), free. */
typedef struct srv_mp_upload srv_mp_upload_t;
srv_mp_upload_t *srv_mp_upload_new(srv_server_t *s, int kind, const char *study, const char *job, int party,
                                   unsigned *code, char *msg, size_t msglen);
void srv_mp_upload_feed(srv_mp_upload_t *u, const char *data, size_t len);
unsigned srv_mp_upload_failed(const srv_mp_upload_t *u, const char **msg);
unsigned srv_mp_upload_finish(srv_mp_upload_t *u, char **json);
void srv_mp_upload_free(srv_mp_upload_t *u);

/* Offload thread. JSON states: 200 with *json. */
unsigned srv_mp_status(srv_server_t *s, const char *study, char **json);
unsigned srv_mp_job_status(srv_server_t *s, const char *study, const char *job, char **json);
/* The file to send (what: "draft", "round1", "study"; job set: its release):
 * 0 with path set, else an HTTP status with *json. */
unsigned srv_mp_file(srv_server_t *s, const char *study, const char *job, const char *what, char *path, size_t n,
                     char **json);

#endif
