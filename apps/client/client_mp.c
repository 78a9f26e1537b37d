/* hestat-client's multiparty commands (stats/stats.h, "multiparty studies").
 *
 *   mp-draft    the analyst: DIR/secret.key (the analyst's own key, 0600) and
 *               DIR/draft.hst (parameters, schema, K, the public seed, the
 *               analyst's public key); with --server also POST /drafts.
 *   mp-keygen   a party: round 1 makes PARTY/share.key and PARTY/ephemeral.key
 *               (0600, never leave the machine) and the round-1 shares; round 2
 *               (--round1 SUM, or --round 2 over HTTP) the relinearization
 *               share, after which ephemeral.key is wiped and removed.
 *   mp-share    a party: its key-switch shares of a result.
 *   mp-job, mp-status, mp-release   over HTTP: start a job and print its ID,
 *               show which parties are missing, download the released result.
 * The server's side of the files (sums, the study, the release) is
 * hestat-server mp-combine and mp-release. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "apps/client/client.h"

#define PATHLEN 4200

static int file_exists(const char *path)
{
    struct stat st;
    return !lstat(path, &st);
}

static int load_draft(const char *path, stats_mp_draft_t **d)
{
    size_t len;
    void *buf = client_load(path, &len);
    if (!buf) return 1;
    int rc = stats_mp_draft_read(buf, len, d);
    free(buf);
    if (rc) return client_stats_fail(path, rc);
    return 0;
}

static int save_key(const char *path, const ckks_secret_key_t *sk)
{
    void *buf;
    size_t len;
    int rc = ckks_write_secret_key(sk, &buf, &len);
    if (rc) return client_fail("secret key", ckks_strerror(rc));
    return client_save_secret(path, buf, len);
}

static int load_key(const char *path, const ckks_context_t *ctx, ckks_secret_key_t **sk, const char *missing)
{
    if (!file_exists(path)) return client_fail(path, missing);
    size_t len;
    void *buf = client_load(path, &len);
    if (!buf) return 1;
    int rc = ckks_read_secret_key(ctx, buf, len, sk);
    client_free_secret(buf, len);
    if (rc) return client_fail(path, ckks_strerror(rc));
    return 0;
}

/* Overwrites a secret key file with zeros, syncs and removes it. */
static int wipe_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && !fstat(fd, &st)) {
        static const char zero[4096];
        for (off_t done = 0; done < st.st_size;) {
            size_t n = st.st_size - done < (off_t)sizeof zero ? (size_t)(st.st_size - done) : sizeof zero;
            ssize_t w = write(fd, zero, n);
            if (w <= 0) break;
            done += w;
        }
        fsync(fd);
    }
    if (fd >= 0) close(fd);
    if (unlink(path)) return client_fail(path, strerror(errno));
    return 0;
}

static int token_for(const client_opts_t *o, char **token)
{
    *token = NULL;
    return o->server ? client_token_read(o->token_file, token) : 0;
}

/* "SERVER/studies/ID/REST" */
static int url_of(char *url, size_t n, const client_opts_t *o, const char *rest)
{
    if ((size_t)snprintf(url, n, "%s/studies/%s/%s", o->server, o->study_id, rest) >= n)
        return client_fail("server", "the URL is too long");
    return 0;
}

static long file_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long)st.st_size;
}

/* ---- the analyst's draft ---- */
static int write_draft(const client_opts_t *o, const char *dir, const ckks_secret_key_t *sk, stats_mp_draft_t *d)
{
    char path[PATHLEN];
    snprintf(path, sizeof path, "%s/secret.key", dir);
    if (save_key(path, sk)) return 1;
    void *buf;
    size_t len;
    int rc = stats_mp_draft_write(d, &buf, &len);
    if (rc) return client_stats_fail("draft", rc);
    snprintf(path, sizeof path, "%s/draft.hst", dir);
    if (client_save(path, buf, len, 0644)) return 1;
    printf("draft %s: %d parties, digest ", path, d->parties);
    for (int i = 0; i < 8; i++) printf("%02x", d->digest[i]);
    printf("...\n");
    (void)o;
    return 0;
}

static int post_draft(const client_opts_t *o, const char *dir)
{
    char *token, url[PATHLEN], path[PATHLEN];
    snprintf(path, sizeof path, "%s/draft.hst", dir);
    if (client_check_upload(path, CLIENT_UPLOAD_STUDY) || token_for(o, &token)) return 1;
    snprintf(url, sizeof url, "%s/drafts", o->server);
    json_t *j = NULL;
    int err = client_call("POST", url, token, path, NULL, 201, &j);
    client_token_free(token);
    const char *id = j ? json_string_value(json_object_get(j, "study")) : NULL;
    if (!err && !id) err = client_fail("server", "no study id in the reply");
    if (!err) printf("study %s\n", id);
    json_decref(j);
    return err;
}

int client_mp_draft(const client_opts_t *o)
{
    if (!o->schema || !o->keys || !o->parties)
        return client_usage_error("mp-draft needs --schema, --parties and --keys", NULL);
    if (o->parties < STATS_MP_MIN_PARTIES || o->parties > STATS_MP_MAX_PARTIES)
        return client_usage_error("--parties: from 2 to 64 parties", NULL);
    if (!(o->headroom >= 1) || !isfinite(o->headroom)) return client_usage_error("--headroom must be >= 1", NULL);
    if (o->colmajor) return client_usage_error("--layout columns: single-party keygen only (multiparty studies are row-major)", NULL);
    char path[PATHLEN];
    snprintf(path, sizeof path, "%s/secret.key", o->keys);
    if (!o->force && file_exists(path))
        return client_fail(path, "already exists (the analyst key of another draft?); --force replaces it");
    stats_table_t *t;
    double factors[STATS_MAX_COLS];
    if (client_schema(o, o->schema, &t, factors)) return 1;
    ckks_context_t *ctx = NULL;
    client_opts_t po = *o;
    client_glm_params(&po);
    int err = client_mkdirs(o->keys, 0700) || client_make_context(&po, &ctx);
    ckks_secret_key_t *sk = NULL;
    ckks_public_key_t *pk = NULL;
    stats_mp_draft_t *d = NULL;
    int rc = err ? 0 : ckks_secret_key_new(ctx, &sk);
    if (!err && !rc) rc = ckks_public_key_new(sk, &pk);
    if (!err && rc) err = client_fail("analyst key", ckks_strerror(rc));
    stats_policy_t policy = client_policy(o);
    if (!err && (rc = stats_mp_draft_create(ctx, t, factors, &policy, pk, o->parties, &d)))
        err = client_stats_fail("draft", rc);
    if (!err) ctx = NULL; /* the draft's now */
    if (!err) err = write_draft(o, o->keys, sk, d);
    ckks_public_key_free(pk);
    ckks_secret_key_free(sk);
    stats_mp_draft_free(d);
    ckks_context_free(ctx);
    stats_table_free(t);
    if (!err && o->server) err = post_draft(o, o->keys);
    return err;
}

/* ---- a party's key rounds ---- */
/* PARTY/party: the party's number, written at round 1, checked after. */
static int check_party_file(const char *dir, int party, int create)
{
    char path[PATHLEN];
    snprintf(path, sizeof path, "%s/party", dir);
    FILE *f = fopen(path, "r");
    int was = 0;
    if (f) {
        if (fscanf(f, "%d", &was) != 1) was = 0;
        fclose(f);
        if (was != party) {
            fprintf(stderr, "hestat-client: %s holds the keys of party %d, not party %d\n", dir, was, party);
            return 1;
        }
        return 0;
    }
    if (!create) return 0;
    char txt[32];
    int n = snprintf(txt, sizeof txt, "%d\n", party);
    return client_save(path, strdup(txt), (size_t)n, 0644);
}

static int round1(const client_opts_t *o, const stats_mp_draft_t *d, const char *out)
{
    char share[PATHLEN], eph[PATHLEN];
    snprintf(share, sizeof share, "%s/share.key", o->keys);
    snprintf(eph, sizeof eph, "%s/ephemeral.key", o->keys);
    if (!o->force && file_exists(share))
        return client_fail(share, "already exists: round 1 was run here (round 2: --round1 SUM); --force replaces it");
    if (client_mkdirs(o->keys, 0700) || check_party_file(o->keys, o->party, 0)) return 1;
    ckks_secret_key_t *si = NULL, *ui = NULL;
    int rc = ckks_secret_key_new(d->ctx, &si);
    if (!rc) rc = ckks_secret_key_new(d->ctx, &ui);
    int err = rc ? client_fail("share key", ckks_strerror(rc)) : 0;
    void *buf = NULL;
    size_t len = 0;
    if (!err && (rc = stats_mp_round1(d, o->party, si, ui, &buf, &len))) err = client_stats_fail("round 1", rc);
    if (!err) err = save_key(share, si) || save_key(eph, ui) || check_party_file(o->keys, o->party, 1);
    if (!err) err = client_save(out, buf, len, 0644);
    else free(buf);
    ckks_secret_key_free(si);
    ckks_secret_key_free(ui);
    return err;
}

static int round2(const client_opts_t *o, const stats_mp_draft_t *d, const char *sum_path, const char *out)
{
    char share[PATHLEN], eph[PATHLEN];
    snprintf(share, sizeof share, "%s/share.key", o->keys);
    snprintf(eph, sizeof eph, "%s/ephemeral.key", o->keys);
    if (check_party_file(o->keys, o->party, 0)) return 1;
    ckks_secret_key_t *si = NULL, *ui = NULL;
    stats_mp_bundle_t *sum = NULL;
    int err = load_key(share, d->ctx, &si, "missing: run round 1 (mp-keygen without --round1) first") ||
              load_key(eph, d->ctx, &ui, "missing: round 2 was run already (the ephemeral key is removed then), "
                                         "or round 1 never was");
    size_t len;
    void *buf = err ? NULL : client_load(sum_path, &len);
    if (!err && !buf) err = 1;
    int rc;
    if (!err && (rc = stats_mp_read_keys(d, STATS_MP_ROUND1, 0, buf, len, &sum))) err = client_stats_fail(sum_path, rc);
    free(buf);
    buf = NULL;
    if (!err && (rc = stats_mp_round2(d, o->party, si, ui, sum, &buf, &len))) err = client_stats_fail("round 2", rc);
    if (!err) err = client_save(out, buf, len, 0644);
    if (!err) err = wipe_file(eph);
    stats_mp_bundle_free(sum);
    ckks_secret_key_free(si);
    ckks_secret_key_free(ui);
    return err;
}

/* Over HTTP: the draft from the server, the round's shares to it. */
static int keygen_http(const client_opts_t *o, const char *token)
{
    char url[PATHLEN], draft[PATHLEN], sum[PATHLEN], out[PATHLEN], rest[128];
    int round = o->round ? o->round : 1;
    if (round != 1 && round != 2) return client_usage_error("--round: 1 or 2", NULL);
    snprintf(draft, sizeof draft, "%s/draft.hst", o->keys);
    snprintf(sum, sizeof sum, "%s/round1-sum.hst", o->keys);
    snprintf(out, sizeof out, "%s/round%d.hst", o->keys, round);
    if (client_mkdirs(o->keys, 0700) || url_of(url, sizeof url, o, "mp/draft") ||
        client_call("GET", url, token, NULL, draft, 200, NULL))
        return 1;
    stats_mp_draft_t *d;
    if (load_draft(draft, &d)) return 1;
    int err = 0;
    if (round == 1) { /* what the party agrees to: compare the digest with the analyst's (mp-draft prints it) */
        printf("draft of study %s: %d parties, smudging sd 2^%d, digest ", o->study_id, d->parties, d->smudge_bits);
        for (int i = 0; i < 8; i++) printf("%02x", d->digest[i]);
        printf("...\n");
    }
    if (round == 1) err = round1(o, d, out);
    else err = url_of(url, sizeof url, o, "mp/round1") || client_call("GET", url, token, NULL, sum, 200, NULL) ||
               round2(o, d, sum, out);
    stats_mp_draft_free(d);
    if (err || client_check_upload(out, CLIENT_UPLOAD_BUNDLE)) return 1;
    snprintf(rest, sizeof rest, "mp/round%d?party=%d", round, o->party);
    if (url_of(url, sizeof url, o, rest) || client_call("POST", url, token, out, NULL, 201, NULL)) return 1;
    printf("party %d: round %d shares uploaded (%.2f MB)\n", o->party, round, file_bytes(out) / 1e6);
    return 0;
}

int client_mp_keygen(const client_opts_t *o)
{
    if (!o->keys || !o->party) return client_usage_error("mp-keygen needs --keys and --party", NULL);
    if (o->server) {
        if (!o->study_id) return client_usage_error("mp-keygen --server needs --study-id", NULL);
        char *token;
        if (token_for(o, &token)) return 1;
        int err = keygen_http(o, token);
        client_token_free(token);
        return err;
    }
    if (!o->draft || !o->out) return client_usage_error("mp-keygen needs --draft and --out (or --server)", NULL);
    stats_mp_draft_t *d;
    if (load_draft(o->draft, &d)) return 1;
    int err = 0;
    if (o->party < 1 || o->party > d->parties) {
        fprintf(stderr, "hestat-client: --party %d: the draft is for parties 1 to %d\n", o->party, d->parties);
        err = 2;
    }
    if (!err) err = o->round1 ? round2(o, d, o->round1, o->out) : round1(o, d, o->out);
    stats_mp_draft_free(d);
    return err;
}

/* ---- key-switch shares ---- */
/* The study must come from this party's draft, when the party kept it. */
static int check_study_draft(const stats_study_t *s, const char *dir)
{
    if (!s->parties)
        return client_fail("the study", "is a single-key study: its results are decrypted by the analyst alone");
    char path[PATHLEN];
    snprintf(path, sizeof path, "%s/draft.hst", dir);
    if (!file_exists(path)) return 0;
    stats_mp_draft_t *d;
    if (load_draft(path, &d)) return 1;
    int same = !memcmp(d->digest, s->draft_digest, 32);
    stats_mp_draft_free(d);
    if (!same) return client_fail("the study", "was not built from this party's draft (its draft digest differs)");
    return 0;
}

static int make_share(const client_opts_t *o, const char *study_path, const char *result_path, const char *out)
{
    char path[PATHLEN];
    stats_study_t *s;
    if (client_load_study(study_path, &s)) return 1;
    int err = check_study_draft(s, o->keys) || check_party_file(o->keys, o->party, 0);
    if (!err && (o->party < 1 || o->party > s->parties)) {
        fprintf(stderr, "hestat-client: --party %d: the study has parties 1 to %d\n", o->party, s->parties);
        err = 2;
    }
    ckks_secret_key_t *si = NULL;
    snprintf(path, sizeof path, "%s/share.key", o->keys);
    if (!err)
        err = load_key(path, s->ctx, &si,
                       "missing: --keys must be a party's directory (mp-keygen); the analyst's key makes no shares");
    size_t len = 0;
    void *buf = err ? NULL : client_load(result_path, &len);
    if (!err && !buf) err = 1;
    stats_enc_result_t *r = NULL;
    int rc;
    if (!err && (rc = stats_result_read(s, buf, len, &r))) err = client_stats_fail(result_path, rc);
    unsigned char digest[32];
    if (!err) stats_mp_result_digest(buf, len, digest);
    free(buf);
    void *ks = NULL;
    size_t kslen = 0;
    if (!err && (rc = stats_mp_keyswitch(s, r, digest, o->party, si, &ks, &kslen)))
        err = client_stats_fail("key-switch share", rc);
    if (!err) err = client_save(out, ks, kslen, 0644);
    stats_enc_result_free(r);
    ckks_secret_key_free(si);
    stats_study_free(s);
    return err;
}

static int share_http(const client_opts_t *o, const char *token)
{
    char url[PATHLEN], study[PATHLEN], result[PATHLEN], out[PATHLEN], rest[256];
    snprintf(study, sizeof study, "%s/study.hst", o->keys);
    snprintf(result, sizeof result, "%s/result-%s.hst", o->keys, o->job);
    snprintf(out, sizeof out, "%s/keyswitch-%s.hst", o->keys, o->job);
    snprintf(rest, sizeof rest, "jobs/%s/result", o->job);
    if (url_of(url, sizeof url, o, "mp/study") || client_call("GET", url, token, NULL, study, 200, NULL) ||
        url_of(url, sizeof url, o, rest) || client_call("GET", url, token, NULL, result, 200, NULL) ||
        make_share(o, study, result, out) || client_check_upload(out, CLIENT_UPLOAD_BUNDLE))
        return 1;
    snprintf(rest, sizeof rest, "jobs/%s/shares?party=%d", o->job, o->party);
    if (url_of(url, sizeof url, o, rest) || client_call("POST", url, token, out, NULL, 201, NULL)) return 1;
    printf("party %d: key-switch shares of job %s uploaded (%.2f MB)\n", o->party, o->job, file_bytes(out) / 1e6);
    return 0;
}

int client_mp_share(const client_opts_t *o)
{
    if (!o->keys || !o->party) return client_usage_error("mp-share needs --keys and --party", NULL);
    if (o->server) {
        if (!o->study_id || !o->job) return client_usage_error("mp-share --server needs --study-id and --job", NULL);
        char *token;
        if (token_for(o, &token)) return 1;
        int err = share_http(o, token);
        client_token_free(token);
        return err;
    }
    if (!o->study || !o->in || !o->out) return client_usage_error("mp-share needs --study, --in and --out", NULL);
    return make_share(o, o->study, o->in, o->out);
}

/* ---- over HTTP only: the job, the state, the release ---- */
int client_mp_job(const client_opts_t *o)
{
    if (!o->server || !o->study_id || !o->out)
        return client_usage_error("mp-job needs --server, --study-id and --out", NULL);
    char *token, job[64];
    if (token_for(o, &token)) return 1;
    int err = client_job_id(o->server, token, o->study_id,
                            o->stats && !strcmp(o->stats, "means") ? "stats=means" : "stats=all", o->out, 0, job);
    client_token_free(token);
    if (!err) printf("job %s\n", job);
    return err;
}

static void print_missing(const char *what, json_t *j)
{
    json_t *m = json_object_get(j, "missing");
    size_t n = json_array_size(m);
    printf("%s: ", what);
    if (!n) printf("every party's shares are in\n");
    else {
        printf("missing the shares of part%s ", n > 1 ? "ies" : "y");
        for (size_t i = 0; i < n; i++)
            printf("%s%lld", i ? ", " : "", (long long)json_integer_value(json_array_get(m, i)));
        printf("\n");
    }
}

int client_mp_status(const client_opts_t *o)
{
    if (!o->server || !o->study_id) return client_usage_error("mp-status needs --server and --study-id", NULL);
    char *token, url[PATHLEN], rest[256];
    if (token_for(o, &token)) return 1;
    json_t *j = NULL;
    int err = url_of(url, sizeof url, o, "mp") || client_call("GET", url, token, NULL, NULL, 200, &j);
    if (!err) {
        const char *state = json_string_value(json_object_get(j, "state"));
        printf("study %s: %lld parties, %s\n", o->study_id, (long long)json_integer_value(json_object_get(j, "parties")),
               state ? state : "?");
        if (state && strcmp(state, "ready")) print_missing(state, j);
    }
    json_decref(j);
    j = NULL;
    if (!err && o->job) {
        snprintf(rest, sizeof rest, "jobs/%s/mp", o->job);
        err = url_of(url, sizeof url, o, rest) || client_call("GET", url, token, NULL, NULL, 200, &j);
        if (!err) print_missing("key switch of the job's result", j);
        json_decref(j);
    }
    if (!err && o->out) {
        err = url_of(url, sizeof url, o, "mp/study") || client_call("GET", url, token, NULL, o->out, 200, NULL);
        if (!err) printf("wrote %s\n", o->out);
    }
    client_token_free(token);
    return err;
}

int client_mp_release(const client_opts_t *o)
{
    if (!o->server || !o->study_id || !o->job || !o->out)
        return client_usage_error("mp-release needs --server, --study-id, --job and --out", NULL);
    char *token, url[PATHLEN], rest[256];
    if (token_for(o, &token)) return 1;
    snprintf(rest, sizeof rest, "jobs/%s/release", o->job);
    int err = url_of(url, sizeof url, o, rest) || client_call("GET", url, token, NULL, o->out, 200, NULL);
    client_token_free(token);
    if (!err) printf("wrote %s (the result under the analyst's key)\n", o->out);
    return err;
}
