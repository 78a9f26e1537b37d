/* hestat-client: glm:Y~X1+X2:binomial|poisson in --stats.
 *
 * A model is fitted in rounds: the analyst's client publishes coefficients,
 * the server's code (stats_glm_round, run here in-process as `run` does for
 * the other statistics, or on a server over HTTP) evaluates O(k^2) encrypted
 * totals at them, the client decrypts only those totals and takes a Newton
 * step (stats_glm_fit). The rows per model (stats_glm_rows in
 * stats/report_rows.c, shared with the Python package) are appended to the
 * report. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apps/client/client.h"

#define GLM_N STATS_GLM_N
#define GLM_COEFF_BITS STATS_GLM_COEFF_BITS

int client_glm_wanted(const char *stats)
{
    if (!stats) return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", stats);
    char *sv = NULL;
    for (char *tok = strtok_r(buf, ",", &sv); tok; tok = strtok_r(NULL, ",", &sv))
        if (!strncmp(tok, "glm:", 4)) return 1;
    return 0;
}

void client_glm_params(client_opts_t *o)
{
    if (client_glm_wanted(o->stats) && o->n == 8192 && !strcmp(o->coeff_bits, "60,40,40,60")) {
        o->n = GLM_N;
        o->coeff_bits = GLM_COEFF_BITS;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Where the rounds run: in this process, or on a server (server set). */
typedef struct {
    const char *server, *token, *study_id;
    const char *tmp; /* each round's result is downloaded here */
} glm_remote_t;

/* A fit's rounds on a server. */
typedef struct {
    const stats_study_t *study;
    const ckks_secret_key_t *sk;
    const stats_enc_table_t *table; /* NULL when the rounds run on a server */
    const stats_layout_t *lay;
    double server_s;
    size_t download;
    const glm_remote_t *remote;
    double max_round_s;
} glm_http_t;

/* Percent-encodes everything but unreserved characters (a '+' would be a space). */
static int put_escaped(char *out, size_t n, size_t *used, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                    ch == '.' || ch == '_' || ch == '~';
        if (*used + 4 > n) return -1;
        if (plain) {
            out[(*used)++] = (char)ch;
        } else {
            out[(*used)++] = '%';
            out[(*used)++] = hex[ch >> 4];
            out[(*used)++] = hex[ch & 15];
        }
    }
    out[*used] = 0;
    return 0;
}

/* "&name=v0,v1,..." with every number exact (%.17g). */
static int put_numbers(char *out, size_t n, size_t *used, const char *name, const double *v, size_t count)
{
    char num[64];
    int w = snprintf(out + *used, n - *used, "&%s=", name);
    if (w < 0 || (size_t)w >= n - *used) return -1;
    *used += (size_t)w;
    for (size_t i = 0; i < count; i++) {
        snprintf(num, sizeof num, "%s%.17g", i ? "," : "", v[i]);
        if (put_escaped(out, n, used, num)) return -1;
    }
    return 0;
}

/* The server's frame (stats_glm_enc_write), every field checked. */
static int decode_round(const ckks_context_t *ctx, const unsigned char *b, size_t len, stats_glm_enc_t **out)
{
    int rc = stats_glm_enc_read(ctx, b, len, out);
    return rc ? client_fail("glm: the server's round result", stats_error()) : 0;
}

static int remote_round(glm_http_t *g, const stats_glm_model_t *m, const stats_glm_point_t *pt, stats_glm_enc_t **e)
{
    const glm_remote_t *r = g->remote;
    char q[8192];
    size_t used = 0;
    int w = snprintf(q, sizeof q, "stats=glm&model=");
    used = (size_t)w;
    int bad = put_escaped(q, sizeof q, &used, m->name) || put_numbers(q, sizeof q, &used, "gamma", pt->gamma, m->k + 1) ||
              put_numbers(q, sizeof q, &used, "lo", pt->lo + 1, m->k) ||
              put_numbers(q, sizeof q, &used, "hi", pt->hi + 1, m->k);
    if (!bad) {
        w = snprintf(q + used, sizeof q - used, "&degree=%u&tol=", pt->degree);
        bad = w < 0 || (size_t)w >= sizeof q - used;
        if (!bad) used += (size_t)w;
        char num[64];
        snprintf(num, sizeof num, "%.17g", pt->tol);
        bad = bad || put_escaped(q, sizeof q, &used, num);
        w = bad ? -1 : snprintf(q + used, sizeof q - used, "&deviance=%d", pt->deviance ? 1 : 0);
        bad = w < 0 || (size_t)w >= sizeof q - used;
    }
    if (bad) return client_fail("glm", "the round's request is too long");
    if (client_job(r->server, r->token, r->study_id, q, r->tmp, 0)) return 1;
    size_t len = 0;
    void *buf = client_load(r->tmp, &len);
    if (!buf) return 1;
    g->download += len;
    int err = decode_round(g->study->ctx, buf, len, e);
    free(buf);
    unlink(r->tmp);
    return err;
}

static int http_round(void *arg, const stats_glm_model_t *m, const stats_glm_point_t *pt, stats_glm_totals_t *out)
{
    glm_http_t *g = arg;
    stats_glm_enc_t *e = NULL;
    double t0 = now_s();
    if (remote_round(g, m, pt, &e)) return STATS_EIO; /* the reason is printed already */
    double dt = now_s() - t0;
    g->server_s += dt;
    if (dt > g->max_round_s) g->max_round_s = dt;
    int rc = stats_glm_decrypt(g->study->ctx, g->sk, g->lay, m, pt, e, out);
    stats_glm_enc_free(e);
    return rc;
}

static int fit_one(FILE *f, const char *spec, const stats_study_t *s, const ckks_secret_key_t *sk,
                   const stats_enc_table_t *e, const stats_table_t *t, int compare, const glm_remote_t *remote)
{
    glm_http_t g = {s, sk, e, e ? &e->layout : &s->layout, 0, 0, remote, 0};
    stats_glm_fit_t fit;
    stats_glm_cost_t cost;
    char err[512] = "";
    int rc = stats_glm_rows(f, spec, s, sk, e, t, compare, remote ? http_round : NULL, remote ? &g : NULL, &fit,
                            &cost, err, sizeof err);
    if (rc) {
        fprintf(stderr, "hestat-client: glm:%s: %s; no report written\n", spec, err);
        return 1;
    }
    if (!fit.converged)
        fprintf(stderr, "hestat-client: glm:%s: not converged after %u rounds (Newton decrement %.3Lg)\n", spec,
                fit.rounds, fit.decrement);
    if (remote) {
        printf("glm:%s: %u rounds over HTTP, %.2f s (%.2f s a round, slowest %.2f s: request, queue, compute, "
               "download), download %.2f MB a round, n %.0Lf, max |score| %.3Lg\n",
               spec, fit.rounds, g.server_s, g.server_s / fit.rounds, g.max_round_s, g.download / 1e6 / fit.rounds,
               fit.n, fit.max_abs_score);
        return 0;
    }
    printf("glm:%s: %u rounds, server %.2f s (%.2f s a round), download %.2f MB a round, %zu rotations, %zu "
           "relinearizations, n %.0Lf, max |score| %.3Lg\n",
           spec, fit.rounds, cost.server_s, cost.server_s / fit.rounds, cost.download / 1e6 / fit.rounds,
           cost.counts.rotations, cost.counts.relinearizations, fit.n, fit.max_abs_score);
    return 0;
}

static int glm_run(const client_opts_t *o, const char *keys, const char *table, const char *csv, const char *report,
                   int compare, const glm_remote_t *remote);

int client_glm_run(const client_opts_t *o, const char *keys, const char *table, const char *csv, const char *report,
                   int compare)
{
    return glm_run(o, keys, table, csv, report, compare, NULL);
}

int client_glm_run_http(const client_opts_t *o, const char *keys, const char *table, const char *csv,
                        const char *report, int compare, const char *server, const char *token, const char *study_id)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.glm-round", report);
    glm_remote_t r = {server, token, study_id, tmp};
    return glm_run(o, keys, table, csv, report, compare, &r);
}

static int glm_run(const client_opts_t *o, const char *keys, const char *table, const char *csv, const char *report,
                   int compare, const glm_remote_t *remote)
{
    if (!client_glm_wanted(o->stats)) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/study.hst", keys);
    stats_study_t *s = NULL;
    if (client_load_study(path, &s)) return 1;
    int err = 0;
    ckks_secret_key_t *sk = NULL;
    stats_enc_table_t *e = NULL;
    stats_table_t *raw = NULL, *t = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = NULL;
    snprintf(path, sizeof path, "%s/secret.key", keys);
    void *kb = client_load(path, &len);
    if (!kb) err = 1;
    if (!err) {
        int rc = ckks_read_secret_key(s->ctx, kb, len, &sk);
        client_free_secret(kb, len);
        if (rc) err = client_fail(path, ckks_strerror(rc));
        else if ((rc = stats_study_check_key(s, sk))) err = client_stats_fail(path, rc);
    }
    if (!err && table) {
        void *tb = client_load(table, &len);
        if (!tb) err = 1;
        int rc = err ? 0 : stats_table_read(s, tb, len, &e, NULL);
        free(tb);
        if (rc) err = client_stats_fail(table, rc);
    }
    if (!err && client_read_csv(csv, &raw, NULL)) err = 1;
    if (!err) {
        char derr[256] = "";
        if (stats_derive_like(raw, &s->layout, &t, derr, sizeof derr)) err = client_fail(csv, derr);
    }
    /* The report so far (a new one starts with the header), then the
     * models' rows; written whole or not at all. */
    size_t oldlen = 0;
    void *old = NULL;
    if (!err && !table && access(report, F_OK)) {
        static const char head[] = "statistic,variable,group,value", cmp[] = ",plaintext,abs_error,rel_error";
        oldlen = strlen(head) + (compare ? strlen(cmp) : 0) + 1;
        if ((old = malloc(oldlen + 1))) snprintf(old, oldlen + 1, "%s%s\n", head, compare ? cmp : "");
        else err = client_fail("report", "out of memory");
    } else if (!err) {
        old = client_load(report, &oldlen);
        if (!old) err = 1;
        /* Appended rows must have the report's columns. */
        static const char head[] = "statistic,variable,group,value", cmp[] = ",plaintext,abs_error,rel_error\n";
        if (!err && !table &&
            (oldlen < strlen(head) || memcmp(old, head, strlen(head)) ||
             (compare ? oldlen < strlen(head) + strlen(cmp) || memcmp((char *)old + strlen(head), cmp, strlen(cmp))
                      : oldlen == strlen(head) || ((char *)old)[strlen(head)] != '\n')))
            err = client_fail(report, compare ? "its header is not a report's with the --compare columns"
                                              : "its header is not a report's without --compare columns");
    }
    if (!err && !(f = open_memstream(&buf, &len))) err = client_fail("report", strerror(errno));
    if (!err) {
        fwrite(old, 1, oldlen, f);
        char specs[1024];
        snprintf(specs, sizeof specs, "%s", o->stats);
        char *sv = NULL;
        for (char *tok = strtok_r(specs, ",", &sv); tok && !err; tok = strtok_r(NULL, ",", &sv))
            if (!strncmp(tok, "glm:", 4)) err = fit_one(f, tok + 4, s, sk, e, t, compare, remote);
    }
    free(old);
    if (f && fclose(f) && !err) err = client_fail("report", strerror(errno));
    if (!err) {
        int rc = ckks_file_write(report, buf, len, 0644);
        if (rc) err = client_fail(report, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
    }
    if (!err && o->html) err = client_write_html(o->html, buf, len, s, compare ? csv : NULL);
    free(buf);
    stats_table_free(raw);
    stats_table_free(t);
    stats_enc_table_free(e);
    ckks_secret_key_free(sk);
    stats_study_free(s);
    return err;
}
