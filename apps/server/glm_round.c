/*
 * One glm round as a job: POST /studies/ID/jobs?stats=glm&model=...&gamma=...
 *
 * The request names a model (Y~X1+X2:binomial|poisson, the study's columns)
 * and the public point of one Newton round (stats_glm_point_t): gamma (k+1
 * numbers, intercept first), lo and hi (k numbers each: the scaled
 * regressors' ranges), degree (0..63), tol (0 or 1e-15..1), deviance (0|1).
 * Everything is checked before the job exists (400 with the reason). The job
 * evaluates the round on every uploaded table together (the data side
 * prepared once per study, model and tables, kept between rounds) and its
 * result is the encrypted totals (stats_glm_enc_write's frame: per sample
 * the two coefficients of c0 and the c1 that decrypt to two totals), nothing
 * row-level.
 *
 * A job keeps the request as one line (fields separated by tabs, which no
 * field may hold) in its state file, so a job recovered after a restart
 * runs the same round.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/server/serve_impl.h"

#define FIELD_MAX 1024

/* Numbers "a,b,c": exactly want of them, each finite and |x| <= 1e12. */
static int parse_numbers(const char *name, const char *s, double *out, size_t want, char *err, size_t errlen)
{
    size_t n = 0;
    const char *p = s;
    for (;;) {
        if (n == want) {
            snprintf(err, errlen, "%s: more than %zu numbers", name, want);
            return -1;
        }
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || fabs(v) > 1e12 || (*end && *end != ',')) {
            snprintf(err, errlen, "%s: number %zu is not a finite number of magnitude at most 1e12", name, n + 1);
            return -1;
        }
        out[n++] = v;
        if (!*end) break;
        p = end + 1;
    }
    if (n != want) {
        snprintf(err, errlen, "%s: %zu numbers, the model needs %zu", name, n, want);
        return -1;
    }
    return 0;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e) return 0;
    return 1;
}

int srv_glm_line(const char *const f[SRV_GLM_FIELDS], char *line, size_t n, char *err, size_t errlen)
{
    static const char *const names[SRV_GLM_FIELDS] = {"model", "gamma", "lo", "hi", "degree", "tol", "deviance"};
    size_t used = 0;
    for (int i = 0; i < SRV_GLM_FIELDS; i++) {
        const char *v = f[i] ? f[i] : "";
        if (!f[i] && i <= 3) {
            snprintf(err, errlen, "glm: %s is missing", names[i]);
            return -1;
        }
        if (strlen(v) > FIELD_MAX || !printable(v)) {
            snprintf(err, errlen, "glm: %s must be at most %d printable characters without spaces", names[i],
                     FIELD_MAX);
            return -1;
        }
        int w = snprintf(line + used, n - used, "%s%s", i ? "\t" : "", v);
        if (w < 0 || (size_t)w >= n - used) {
            snprintf(err, errlen, "glm: the request is too long");
            return -1;
        }
        used += (size_t)w;
    }
    return 0;
}

int srv_glm_parse(const stats_layout_t *lay, const char *line, stats_glm_model_t *m, stats_glm_point_t *pt,
                  char *err, size_t errlen)
{
    char buf[SRV_GLM_LINE], *f[SRV_GLM_FIELDS];
    if (strlen(line) >= sizeof buf) {
        snprintf(err, errlen, "glm: the request is too long");
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", line);
    char *p = buf;
    for (int i = 0; i < SRV_GLM_FIELDS; i++) {
        f[i] = p;
        char *tab = strchr(p, '\t');
        if (!tab != (i == SRV_GLM_FIELDS - 1)) {
            snprintf(err, errlen, "glm: malformed request");
            return -1;
        }
        if (tab) {
            *tab = 0;
            p = tab + 1;
        }
    }
    char perr[300] = "";
    if (stats_glm_parse(f[0], lay, m, perr, sizeof perr)) {
        snprintf(err, errlen, "glm: model: %s", perr);
        return -1;
    }
    memset(pt, 0, sizeof *pt);
    double lo[STATS_MAX_REGRESSORS], hi[STATS_MAX_REGRESSORS];
    if (parse_numbers("gamma", f[1], pt->gamma, m->k + 1, err, errlen) ||
        parse_numbers("lo", f[2], lo, m->k, err, errlen) || parse_numbers("hi", f[3], hi, m->k, err, errlen))
        return -1;
    for (size_t j = 0; j < m->k; j++) {
        if (lo[j] > hi[j]) {
            snprintf(err, errlen, "glm: lo %zu is above hi %zu", j + 1, j + 1);
            return -1;
        }
        pt->lo[j + 1] = lo[j];
        pt->hi[j + 1] = hi[j];
    }
    if (f[4][0]) {
        char *end;
        errno = 0;
        long d = strtol(f[4], &end, 10);
        if (errno || *end || d < 0 || d > 63) {
            snprintf(err, errlen, "glm: degree must be an integer 0..63 (0: the largest)");
            return -1;
        }
        pt->degree = (unsigned)d;
    }
    if (f[5][0]) {
        char *end;
        errno = 0;
        double t = strtod(f[5], &end);
        if (errno || *end || !isfinite(t) || (t != 0 && (t < 1e-15 || t > 1))) {
            snprintf(err, errlen, "glm: tol must be 0 (the default) or a number in [1e-15, 1]");
            return -1;
        }
        pt->tol = t;
    }
    if (f[6][0] && strcmp(f[6], "0") && strcmp(f[6], "1")) {
        snprintf(err, errlen, "glm: deviance must be 0 or 1");
        return -1;
    }
    pt->deviance = f[6][0] == '1';
    return 0;
}

/* ---- the job ------------------------------------------------------------------------ */
static int is_table_name(const char *name)
{
    return strlen(name) == SRV_ID_LEN + 4 && !strcmp(name + SRV_ID_LEN, ".hst") && srv_valid_id(name, SRV_ID_LEN);
}

/* One prepared model kept between rounds (the Newton rounds of a fit ask for
 * the same model on the same tables): the study (a reference of the study
 * cache), its tables and the data side stats_glm_prepare made, under the key
 * study, model and the sorted table names (a new upload changes it). One
 * round at a time uses it; a round of another model replaces it. */
static struct {
    pthread_mutex_t lock;
    char *key;
    srv_cache_t *cache;
    srv_cached_t *e;
    stats_enc_table_t **tabs;
    size_t n;
    stats_glm_prep_t *prep;
} kept = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, NULL, NULL, 0, NULL};

static void drop_kept_locked(void)
{
    stats_glm_prep_free(kept.prep);
    for (size_t i = 0; i < kept.n; i++) stats_enc_table_free(kept.tabs[i]);
    free(kept.tabs);
    if (kept.e) srv_cache_release(kept.cache, kept.e);
    free(kept.key);
    kept.prep = NULL;
    kept.tabs = NULL;
    kept.n = 0;
    kept.e = NULL;
    kept.key = NULL;
}

void srv_glm_forget(const char *study_id)
{
    pthread_mutex_lock(&kept.lock);
    size_t l = study_id ? strlen(study_id) : 0;
    if (!study_id || (kept.key && !strncmp(kept.key, study_id, l) && kept.key[l] == '\n')) drop_kept_locked();
    pthread_mutex_unlock(&kept.lock);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "STUDY\nMODEL\nTABLE\nTABLE..." with the table names sorted; NULL with err. */
static char *model_key(const char *study_id, const char *model, const char *tables_dir, char ***names, size_t *n,
                       char *err, size_t errlen)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(tables_dir);
    if (!d) {
        snprintf(err, errlen, "cannot list the tables: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 0, len = strlen(study_id) + strlen(model) + 3;
    struct dirent *de = NULL;
    while (!err[0] && (de = readdir(d))) {
        if (!is_table_name(de->d_name)) continue;
        if (*n == cap) {
            size_t nc = cap ? 2 * cap : 8;
            char **q = realloc(*names, nc * sizeof *q);
            if (!q) break;
            *names = q;
            cap = nc;
        }
        if (!((*names)[*n] = strdup(de->d_name))) break;
        len += strlen(de->d_name) + 1;
        (*n)++;
    }
    int short_of_memory = de != NULL;
    closedir(d);
    char *key = short_of_memory ? NULL : malloc(len);
    if (!key) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (*n) qsort(*names, *n, sizeof **names, by_name);
    size_t at = (size_t)snprintf(key, len, "%s\n%s", study_id, model);
    for (size_t i = 0; i < *n; i++) at += (size_t)snprintf(key + at, len - at, "\n%s", (*names)[i]);
    return key;
}

/* Caller holds kept.lock: the kept model for key, made when it is not. */
static void make_kept_locked(srv_cache_t *cache, const char *spool, const char *study_id, const stats_study_t *study,
                             const stats_glm_model_t *m, const char *tables_dir, char *key, char **names, size_t n,
                             char *err, size_t errlen)
{
    if (kept.key && kept.prep && !strcmp(kept.key, key)) {
        free(key);
        return;
    }
    drop_kept_locked();
    kept.key = key;
    kept.cache = cache;
    if (!n) snprintf(err, errlen, "no tables uploaded");
    if (!err[0] && !(kept.tabs = calloc(n, sizeof *kept.tabs))) snprintf(err, errlen, "out of memory");
    for (size_t i = 0; !err[0] && i < n; i++) {
        char path[SRV_PATH_MAX];
        int rc = srv_path(path, sizeof path, tables_dir, names[i], NULL, NULL) ? STATS_EINVAL
                                                                                : srv_read_table(study, path, &kept.tabs[i]);
        if (rc) snprintf(err, errlen, "table %.32s: %s", names[i], stats_strerror(rc));
        else kept.n = i + 1;
    }
    if (!err[0]) { /* the study stays parsed while its prepared model is kept */
        char cerr[300] = "";
        if (!(kept.e = srv_cache_get(cache, spool, study_id, cerr, sizeof cerr)))
            snprintf(err, errlen, "the study: %s", cerr);
    }
    if (!err[0]) {
        int rc = stats_glm_prepare(study->ctx, (const stats_enc_table_t *const *)kept.tabs, kept.n, m, study->rk,
                                   study->gk, &kept.prep, NULL);
        if (rc) snprintf(err, errlen, "glm: %s: %s", stats_strerror(rc), stats_error());
    }
    if (err[0]) drop_kept_locked();
}

void srv_glm_run(srv_cache_t *cache, const char *spool, const char *study_id, const stats_study_t *study,
                 const char *tables_dir, const char *line, const char *result_path, char *err, size_t errlen)
{
    stats_glm_model_t m;
    stats_glm_point_t pt;
    if (srv_glm_parse(&study->layout, line, &m, &pt, err, errlen)) return;
    char **names = NULL;
    size_t n = 0;
    char *key = model_key(study_id, m.name, tables_dir, &names, &n, err, errlen);
    stats_glm_enc_t *enc = NULL;
    pthread_mutex_lock(&kept.lock);
    if (key) make_kept_locked(cache, spool, study_id, study, &m, tables_dir, key, names, n, err, errlen);
    if (!err[0]) {
        int rc = stats_glm_round_prepared(kept.prep, &pt, &enc, NULL);
        if (rc) {
            snprintf(err, errlen, "glm round: %s: %s", stats_strerror(rc), stats_error());
            drop_kept_locked();
        }
    }
    pthread_mutex_unlock(&kept.lock);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    void *out = NULL;
    size_t olen = 0;
    if (!err[0]) {
        int rc = stats_glm_enc_write(enc, &out, &olen);
        if (rc) snprintf(err, errlen, "cannot encode the result: %s", stats_strerror(rc));
    }
    if (!err[0]) {
        int rc = ckks_file_write(result_path, out, olen, 0644);
        if (rc)
            snprintf(err, errlen, "cannot write the result: %s", rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
    }
    free(out);
    stats_glm_enc_free(enc);
}
