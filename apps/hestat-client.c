/*
 * hestat-client: the analyst's and the contributors' side (file mode).
 *   sample   a generated table with the Framingham schema
 *   keygen   secret key (stays here, mode 0600) + the public study file
 *   encrypt  CSV -> encrypted table (public study only)
 *   job      study + encrypted tables + the statistics wanted -> job file
 *   decrypt  result -> decrypted_results.csv (with --compare: next to plaintext)
 *   run      all of it in one go, computing locally with the server's code
 * Exit status: 0 ok, 1 error (one line on stderr), 2 usage.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <unistd.h>

#include "apps/common/http.h"
#include "stats/stats.h"

#define MAX_FILE ((size_t)1 << 34)

static const char *usage_text =
    "usage: hestat-client COMMAND [options]\n"
    "\n"
    "  sample  --rows N [--seed S] --out FILE.csv\n"
    "          a generated table with the Framingham heart-study schema\n"
    "  keygen  --schema CSV --keys DIR [--stats SPEC] [--poly-degree N --coeff-bits B0,B1,...]\n"
    "          DIR/secret.key (mode 0600, never leaves this machine) and DIR/study.hst\n"
    "          (parameters, schema, public and evaluation keys: give it to the server\n"
    "          and to contributors). Column factors come from the schema CSV's ranges.\n"
    "  encrypt --study STUDY --in CSV --out TABLE\n"
    "          encrypt a table with the study's public key (columns as in the schema)\n"
    "  job     --study STUDY [--stats means|all] --out JOB TABLE...\n"
    "          a job for hestat-server compute (default --stats all)\n"
    "  decrypt --keys DIR --in RESULT [--out FILE] [--compare CSV] [--group COL]... [--print]\n"
    "          write decrypted_results.csv (default ./decrypted_results.csv); --print shows\n"
    "          each column's count, mean and sd (next to the plaintext with --compare)\n"
    "  submit  --server URL [--token-file F] --study STUDY [--study-id ID] TABLE...\n"
    "          upload the study (unless --study-id names one already there) and tables;\n"
    "          prints 'study ID'\n"
    "  fetch   --server URL [--token-file F] --study-id ID [--stats means|all] --out RESULT\n"
    "          ask for the statistics over every table of the study, wait, download\n"
    "  run     [--csv CSV | --rows N] [--out DIR] [--server URL [--token-file F]] [--group COL]...\n"
    "          keygen, encrypt, then compute (on the server when --server is given,\n"
    "          else locally with the server's code), decrypt and compare; writes\n"
    "          DIR/decrypted_results.csv (default build/client-run)\n"
    "\n"
    "Default parameters: --poly-degree 8192 --coeff-bits 60,40,40,60.\n"
    "HTTPS: --server https://...; --cacert PEM for a server with a private certificate.\n"
    "SPEC (keygen, decrypt, run): mean,var,corr,group:COL,regress:Y~X1+X2,hist:COL:e0:e1:...\n"
    "  group, regress and hist add derived columns at keygen (indicators, complete cases,\n"
    "  bins); encrypt rebuilds them from the study; decrypt reports them.\n";

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "hestat-client: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "hestat-client: %s%s%s (try --help)\n", msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

static int stats_fail(const char *what, int rc)
{
    fprintf(stderr, "hestat-client: %s: %s%s%s\n", what, stats_strerror(rc), stats_error()[0] ? ": " : "",
            stats_error());
    return 1;
}

static void *load(const char *path, size_t *len)
{
    void *buf;
    int rc = ckks_file_read(path, MAX_FILE, &buf, len);
    if (rc) {
        fprintf(stderr, "hestat-client: %s: %s\n", path, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
        return NULL;
    }
    return buf;
}

static int save(const char *path, void *buf, size_t len, int mode)
{
    int rc = ckks_file_write(path, buf, len, mode);
    free(buf);
    if (rc) return fail(path, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
    return 0;
}

typedef struct {
    const char *cmd, *out, *in, *keys, *study, *schema, *csv, *compare, *stats, *coeff_bits;
    const char *server, *token_file, *study_id, *cacert;
    int print;
    const char *groups[STATS_MAX_COLS];
    size_t ngroups, rows, n;
    unsigned long long seed;
    const char *pos[256];
    size_t npos;
} opts_t;

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->n = 8192;
    o->coeff_bits = "60,40,40,60";
    if (argc < 2) return usage_error("missing command", NULL);
    o->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **str = NULL;
        if (!strcmp(a, "--out")) str = &o->out;
        else if (!strcmp(a, "--in")) str = &o->in;
        else if (!strcmp(a, "--keys")) str = &o->keys;
        else if (!strcmp(a, "--study")) str = &o->study;
        else if (!strcmp(a, "--schema")) str = &o->schema;
        else if (!strcmp(a, "--csv")) str = &o->csv;
        else if (!strcmp(a, "--compare")) str = &o->compare;
        else if (!strcmp(a, "--stats")) str = &o->stats;
        else if (!strcmp(a, "--coeff-bits")) str = &o->coeff_bits;
        else if (!strcmp(a, "--server")) str = &o->server;
        else if (!strcmp(a, "--token-file")) str = &o->token_file;
        else if (!strcmp(a, "--study-id")) str = &o->study_id;
        else if (!strcmp(a, "--cacert")) str = &o->cacert;
        if (str) {
            if (i + 1 >= argc) return usage_error("missing value after", a);
            *str = argv[++i];
        } else if (!strcmp(a, "--print")) {
            o->print = 1;
        } else if (!strcmp(a, "--group")) {
            if (i + 1 >= argc) return usage_error("missing value after", a);
            if (o->ngroups == STATS_MAX_COLS) return usage_error("too many --group", NULL);
            o->groups[o->ngroups++] = argv[++i];
        } else if (!strcmp(a, "--rows") || !strcmp(a, "--seed") || !strcmp(a, "--poly-degree")) {
            if (i + 1 >= argc) return usage_error("missing value after", a);
            char *end;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (*end || end == argv[i]) return usage_error("not a number:", argv[i]);
            if (a[2] == 'r') o->rows = v;
            else if (a[2] == 's') o->seed = v;
            else o->n = v;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option", a);
        } else {
            if (o->npos == 256) return usage_error("too many arguments", NULL);
            o->pos[o->npos++] = a;
        }
    }
    return 0;
}

static int make_context(const opts_t *o, ckks_context_t **ctx)
{
    int bits[CKKS_MAX_PRIMES];
    size_t count = 0;
    const char *s = o->coeff_bits;
    while (*s && count < CKKS_MAX_PRIMES) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || (*end && *end != ',')) return usage_error("bad --coeff-bits", o->coeff_bits);
        bits[count++] = (int)v;
        s = *end ? end + 1 : end;
    }
    ckks_params_t p;
    int rc = ckks_params_from_bits(&p, o->n, bits, count);
    if (!rc) rc = ckks_context_new(&p, ctx);
    if (rc) return fail("parameters", ckks_strerror(rc));
    return 0;
}

static int cmd_sample(const opts_t *o)
{
    if (!o->out || !o->rows) return usage_error("sample needs --rows and --out", NULL);
    stats_table_t *t;
    int rc = stats_generate_framingham(o->rows, o->seed, &t);
    if (rc) return stats_fail("sample", rc);
    rc = stats_write_csv(t, o->out);
    stats_table_free(t);
    if (rc) return fail(o->out, strerror(errno));
    return 0;
}

/* Progress bars on standard error, only on a terminal. */
static void bar(void *arg, size_t done, size_t total)
{
    if (!isatty(2) || !total) return;
    int pct = (int)(100 * done / total), n = pct / 4;
    fprintf(stderr, "\r%-10s [%.*s%*s] %3d%%%s", (const char *)arg, n, "#########################", 25 - n, "", pct,
            done == total ? "\n" : "");
}

static int read_csv(const char *path, stats_table_t **t)
{
    char err[256];
    int rc = stats_read_csv(path, t, err, sizeof err);
    if (rc) {
        fprintf(stderr, "hestat-client: %s\n", err);
        return 1;
    }
    return 0;
}

static int keygen(const opts_t *o, const char *schema_csv, const char *dir)
{
    stats_table_t *raw, *t;
    if (read_csv(schema_csv, &raw)) return 1;
    char derr[256] = "";
    int drc = stats_spec_derive(raw, o->stats ? o->stats : "", &t, derr, sizeof derr);
    stats_table_free(raw);
    if (drc) return fail("--stats", derr[0] ? derr : stats_strerror(drc));
    if (mkdir(dir, 0700) && errno != EEXIST) {
        stats_table_free(t);
        return fail(dir, strerror(errno));
    }
    ckks_context_t *ctx;
    if (make_context(o, &ctx)) {
        stats_table_free(t);
        return 1;
    }
    ckks_secret_key_t *sk;
    int rc = ckks_secret_key_new(ctx, &sk);
    if (rc) {
        stats_table_free(t);
        ckks_context_free(ctx);
        return fail("secret key", ckks_strerror(rc));
    }
    stats_study_t *study;
    rc = stats_study_create(ctx, t, sk, &study);
    stats_table_free(t);
    if (rc) {
        ckks_secret_key_free(sk);
        ckks_context_free(ctx);
        return stats_fail("study", rc);
    }
    char path[4096];
    void *buf;
    size_t len;
    int err = 0;
    snprintf(path, sizeof path, "%s/secret.key", dir);
    if ((rc = ckks_write_secret_key(sk, &buf, &len))) err = fail("secret key", ckks_strerror(rc));
    else err = save(path, buf, len, 0600);
    snprintf(path, sizeof path, "%s/study.hst", dir);
    if (!err && (rc = stats_study_write(study, &buf, &len))) err = stats_fail("study", rc);
    else if (!err) err = save(path, buf, len, 0644);
    ckks_secret_key_free(sk);
    stats_study_free(study);
    return err;
}

static int load_study(const char *path, stats_study_t **s)
{
    size_t len;
    void *buf = load(path, &len);
    if (!buf) return 1;
    int rc = stats_study_read(buf, len, s, NULL);
    free(buf);
    if (rc) return stats_fail(path, rc);
    return 0;
}

static int encrypt_csv(const char *study_path, const char *csv, const char *out)
{
    stats_study_t *s;
    if (load_study(study_path, &s)) return 1;
    stats_table_t *t;
    if (read_csv(csv, &t)) {
        stats_study_free(s);
        return 1;
    }
    int err = 0;
    {
        /* The study's columns, derived ones rebuilt from their names. */
        stats_table_t *d;
        char derr[256] = "";
        if (stats_derive_like(t, &s->layout, &d, derr, sizeof derr)) {
            err = fail(csv, derr[0] ? derr : "its columns do not match the study's schema");
        } else {
            stats_table_free(t);
            t = d;
        }
    }
    stats_enc_table_t *e = NULL;
    if (!err) {
        stats_layout_t lay = s->layout;
        lay.nrows = t->nrows;
        lay.chunks = (t->nrows + lay.rows_per_ct - 1) / lay.rows_per_ct;
        int rc = t->nrows ? stats_encrypt_progress(s->ctx, s->pk, NULL, t, &lay, 0x1p40, &e, bar, "encrypt")
                          : STATS_EINVAL;
        if (rc) err = stats_fail(t->nrows ? "encrypt" : "encrypt (no rows)", rc);
    }
    if (!err) {
        void *buf;
        size_t len;
        int rc = stats_table_write(s, e, &buf, &len);
        if (rc) err = stats_fail("write table", rc);
        else err = save(out, buf, len, 0644);
    }
    stats_enc_table_free(e);
    stats_table_free(t);
    stats_study_free(s);
    return err;
}

static int parse_job_kind(const char *stats, stats_job_t *job)
{
    if (!stats || !strcmp(stats, "all") || strcmp(stats, "means")) *job = STATS_JOB_ALL;
    else *job = STATS_JOB_MEANS;
    return 0;
}

static int make_job(const char *study_path, stats_job_t kind, const char *const *tables, size_t n,
                    const char *out)
{
    stats_study_t *s;
    if (load_study(study_path, &s)) return 1;
    stats_enc_table_t **ts = calloc(n, sizeof *ts);
    int err = ts ? 0 : fail("out of memory", NULL);
    for (size_t i = 0; i < n && !err; i++) {
        size_t len;
        void *buf = load(tables[i], &len);
        if (!buf) {
            err = 1;
            break;
        }
        int rc = stats_table_read(s, buf, len, &ts[i], NULL);
        free(buf);
        if (rc) err = stats_fail(tables[i], rc);
    }
    if (!err) {
        void *buf;
        size_t len;
        int rc = stats_job_write(s, kind, (const stats_enc_table_t *const *)ts, n, &buf, &len);
        if (rc) err = stats_fail("job", rc);
        else err = save(out, buf, len, 0644);
    }
    for (size_t i = 0; ts && i < n; i++) stats_enc_table_free(ts[i]);
    free(ts);
    stats_study_free(s);
    return err;
}

/* Regressions and histograms requested with --stats, appended to the report. */
static int extra_rows(const opts_t *o, const stats_study_t *s, const stats_result_t *res, const stats_table_t *cmp,
                      const char *out)
{
    if (!o->stats) return 0;
    FILE *f = fopen(out, "a");
    if (!f) return fail(out, strerror(errno));
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", o->stats);
    char *sv = NULL;
    int err = 0;
    const stats_layout_t *lay = &s->layout;
    for (char *tok = strtok_r(buf, ",", &sv); tok && !err; tok = strtok_r(NULL, ",", &sv)) {
        if (!strncmp(tok, "regress:", 8) && res->have_pairs) {
            size_t idx[STATS_MAX_REGRESSORS + 1], n = 0;
            char names[STATS_MAX_REGRESSORS + 1][STATS_NAME_MAX];
            const char *p = tok + 8, *tilde = strchr(p, '~');
            while (p && *p && n <= STATS_MAX_REGRESSORS) {
                const char *end = n == 0 ? tilde : strchr(p, '+');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                char cc[STATS_NAME_MAX];
                snprintf(cc, sizeof cc, "cc:%.*s", (int)len, p);
                snprintf(names[n], STATS_NAME_MAX, "%.*s", (int)len, p);
                int found = -1;
                for (size_t c = 0; c < lay->ncols; c++)
                    if (!strcmp(lay->names[c], cc)) found = (int)c;
                if (found < 0) {
                    err = fail("--stats", "the study was not created for this regression (keygen --stats)");
                    break;
                }
                idx[n++] = (size_t)found;
                p = end ? end + 1 : NULL;
            }
            if (err || n < 2) break;
            stats_regression_t rg, ref;
            if (stats_regress(res, idx[0], idx + 1, n - 1, &rg)) {
                err = fail("regression", "singular or too few complete cases");
                break;
            }
            int have_ref = cmp && !stats_reference_regress(cmp, idx[0], idx + 1, n - 1, &ref);
            for (size_t i = 0; i < n + 2; i++) {
                const char *stat = i < n ? "coef" : i == n ? "r2" : "n";
                long double v = i < n ? rg.coef[i] : i == n ? rg.r2 : rg.n;
                long double w = !have_ref ? 0 : i < n ? ref.coef[i] : i == n ? ref.r2 : ref.n;
                fprintf(f, "%s,%s,%s,%.15Lg", stat, tok + 8, i == 0 ? "(intercept)" : i < n ? names[i] : "", v);
                if (cmp) fprintf(f, ",%.15Lg,%.3Lg,%.3Lg", w, fabsl(v - w), fabsl(w) > 0 ? fabsl(v - w) / fabsl(w) : fabsl(v - w));
                fputc('\n', f);
                if (i < n) {
                    fprintf(f, "se,%s,%s,%.15Lg", tok + 8, i == 0 ? "(intercept)" : names[i], rg.se[i]);
                    if (cmp) fprintf(f, ",%.15Lg,%.3Lg,%.3Lg", have_ref ? ref.se[i] : 0.0L,
                                     fabsl(rg.se[i] - (have_ref ? ref.se[i] : 0)), have_ref ? fabsl(rg.se[i] - ref.se[i]) / ref.se[i] : 0.0L);
                    fputc('\n', f);
                }
            }
        } else if (!strncmp(tok, "hist:", 5)) {
            char col[STATS_NAME_MAX];
            snprintf(col, sizeof col, "%s", tok + 5);
            char *colon = strchr(col, ':');
            if (colon) *colon = 0;
            size_t len = strlen(col);
            for (size_t c = 0; c < lay->ncols; c++)
                if (!strncmp(lay->names[c], col, len) && !strncmp(lay->names[c] + len, " in [", 5)) {
                    long double want = 0;
                    for (size_t r = 0; cmp && r < cmp->nrows; r++) want += stats_value(cmp, r, c);
                    fprintf(f, "hist,%s,,%.0Lf", lay->names[c], roundl(res->cols[c].sum));
                    if (cmp) fprintf(f, ",%.0Lf,%.3Lg,%.3Lg", want, fabsl(roundl(res->cols[c].sum) - want), 0.0L);
                    fputc('\n', f);
                }
        }
    }
    if (fclose(f) && !err) err = fail(out, strerror(errno));
    return err;
}

static int decrypt_result(const opts_t *o, const char *keys, const char *in, const char *out,
                          const char *compare, stats_report_errors_t *worst)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/study.hst", keys);
    stats_study_t *s;
    if (load_study(path, &s)) return 1;
    snprintf(path, sizeof path, "%s/secret.key", keys);
    size_t len;
    void *buf = load(path, &len);
    ckks_secret_key_t *sk = NULL;
    int err = !buf;
    if (buf) {
        int rc = ckks_read_secret_key(s->ctx, buf, len, &sk);
        free(buf);
        if (rc) err = fail(path, ckks_strerror(rc));
    }
    stats_enc_result_t *r = NULL;
    if (!err && (buf = load(in, &len))) {
        int rc = stats_result_read(s, buf, len, &r);
        free(buf);
        if (rc) err = stats_fail(in, rc);
    } else if (!err) {
        err = 1;
    }
    static stats_result_t res;
    if (!err) {
        int rc = stats_decrypt(s->ctx, sk, r, &res);
        if (rc) err = stats_fail("decrypt", rc);
    }
    stats_table_t *cmp = NULL;
    if (!err && compare && read_csv(compare, &cmp)) err = 1;
    if (!err && cmp) {
        stats_table_t *d;
        char derr[256] = "";
        if (stats_derive_like(cmp, &s->layout, &d, derr, sizeof derr)) err = fail(compare, derr);
        else {
            stats_table_free(cmp);
            cmp = d;
        }
    }
    /* group:COL from --stats: COL itself when 0/1, else its indicator columns. */
    const char *gnames[STATS_MAX_COLS];
    size_t ngn = 0;
    for (size_t i = 0; i < o->ngroups && ngn < STATS_MAX_COLS; i++) gnames[ngn++] = o->groups[i];
    char specbuf[1024];
    snprintf(specbuf, sizeof specbuf, "%s", o->stats ? o->stats : "");
    char *sv = NULL;
    for (char *tok = strtok_r(specbuf, ",", &sv); tok; tok = strtok_r(NULL, ",", &sv))
        if (!strncmp(tok, "group:", 6) && ngn < STATS_MAX_COLS) gnames[ngn++] = tok + 6;
    int groups[STATS_MAX_COLS];
    size_t ng = 0;
    for (size_t i = 0; !err && i < ngn; i++) {
        /* Indicator columns "COL=level" when the study has them (COL is not
         * 0/1), else COL itself. */
        size_t before = ng, len = strlen(gnames[i]);
        for (size_t c = 0; c < s->layout.ncols && ng < STATS_MAX_COLS; c++) {
            const char *nm = s->layout.names[c];
            if (!strncmp(nm, gnames[i], len) && nm[len] == '=') groups[ng++] = (int)c;
        }
        for (size_t c = 0; ng == before && c < s->layout.ncols; c++)
            if (!strcmp(s->layout.names[c], gnames[i])) groups[ng++] = (int)c;
        if (ng == before) err = usage_error("no such column to group by:", gnames[i]);
    }
    if (!err && !ngn) /* default: group by TenYearCHD when the schema has it */
        for (size_t c = 0; c < s->layout.ncols; c++)
            if (!strcmp(s->layout.names[c], "TenYearCHD")) groups[ng++] = (int)c;
    if (!err) {
        unsigned what = STATS_REPORT_MEAN | STATS_REPORT_VAR | (res.have_pairs ? STATS_REPORT_CORR : 0);
        int rc = stats_write_report(out, &res, &s->layout, what, res.have_pairs ? groups : NULL,
                                    res.have_pairs ? ng : 0, cmp, worst);
        if (rc == STATS_ESCHEMA) err = fail(compare, "its columns differ from the study's schema");
        else if (rc) err = fail(out, strerror(errno));
    }
    if (!err) err = extra_rows(o, s, &res, cmp, out);
    if (!err && o->print) {
        static stats_moments_t ref[STATS_MAX_COLS];
        if (cmp) stats_reference(cmp, ref, NULL);
        printf("%-16s %8s %14s %14s %12s %10s\n", "column", "count", "mean", cmp ? "plaintext" : "", "sd",
               cmp ? "rel error" : "");
        for (size_t c = 0; c < s->layout.ncols; c++) {
            const stats_moments_t *m = &res.cols[c];
            printf("%-16s %8.0Lf %14.6Lf", s->layout.names[c], m->count, m->mean);
            if (cmp) printf(" %14.6Lf", ref[c].mean);
            else printf(" %14s", "");
            printf(" %12.5Lf", m->sd);
            if (cmp) printf(" %10.2Le", fabsl(m->mean - ref[c].mean) / fmaxl(fabsl(ref[c].mean), 1e-12L));
            printf("\n");
        }
        if (cmp)
            printf("largest errors vs plaintext: mean %.2e, sd %.2e (relative), correlation %.2e (absolute), "
                   "group mean %.2e\n",
                   worst->mean_rel, worst->sd_rel, worst->corr_abs, worst->group_mean_rel);
        printf("wrote %s\n", out);
    }
    stats_table_free(cmp);
    stats_enc_result_free(r);
    ckks_secret_key_free(sk);
    stats_study_free(s);
    return err;
}

/* ---- HTTP ---- */
static int read_token(const char *path, char *tok, size_t n)
{
    tok[0] = 0;
    if (!path) return 0;
    FILE *f = fopen(path, "r");
    if (!f || !fgets(tok, (int)n, f)) {
        if (f) fclose(f);
        return fail(path, "cannot read the token");
    }
    fclose(f);
    tok[strcspn(tok, "\r\n")] = 0;
    return 0;
}

/* Runs a request; on success *json holds the parsed body (may be NULL). */
static int call(const char *method, const char *url, const char *token, const char *upload,
                const char *out, long want, json_t **json)
{
    http_result_t r;
    if (json) *json = NULL;
    int rc = http_request(method, url, token && token[0] ? token : NULL, upload, out, &r);
    if (rc || r.status != want) {
        json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
        const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
        fprintf(stderr, "hestat-client: %s %s: %s%s%s\n", method, url,
                rc ? r.error : "HTTP ", rc ? "" : "", rc ? "" : (msg ? msg : "unexpected status"));
        if (!rc) fprintf(stderr, "hestat-client: (status %ld)\n", r.status);
        json_decref(j);
        free(r.body);
        return 1;
    }
    if (json && r.body) *json = json_loads(r.body, 0, NULL);
    free(r.body);
    return 0;
}

static int submit(const char *server, const char *token, const char *study_path, const char *study_id_in,
                  const char *const *tables, size_t n, char *study_id, size_t idlen)
{
    char url[2048];
    json_t *j;
    if (study_id_in) {
        snprintf(study_id, idlen, "%s", study_id_in);
    } else {
        snprintf(url, sizeof url, "%s/studies", server);
        http_progress("study");
        int rc = call("POST", url, token, study_path, NULL, 201, &j);
        http_progress(NULL);
        if (rc) return 1;
        const char *id = json_string_value(json_object_get(j, "study"));
        if (!id) {
            json_decref(j);
            return fail("server", "no study id in the reply");
        }
        snprintf(study_id, idlen, "%s", id);
        json_decref(j);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(url, sizeof url, "%s/studies/%s/tables", server, study_id);
        http_progress("upload");
        int rc = call("POST", url, token, tables[i], NULL, 201, &j);
        http_progress(NULL);
        if (rc) return 1;
        printf("uploaded %s: table %s, %lld rows\n", tables[i], json_string_value(json_object_get(j, "table")),
               (long long)json_integer_value(json_object_get(j, "rows")));
        json_decref(j);
    }
    return 0;
}

static int fetch(const char *server, const char *token, const char *study_id, const char *stats, const char *out)
{
    char url[2048];
    json_t *j;
    snprintf(url, sizeof url, "%s/studies/%s/jobs?stats=%s", server, study_id,
             stats && !strcmp(stats, "means") ? "means" : "all");
    if (call("POST", url, token, NULL, NULL, 202, &j)) return 1;
    char job[64];
    snprintf(job, sizeof job, "%s", json_string_value(json_object_get(j, "job")) ?: "");
    json_decref(j);
    snprintf(url, sizeof url, "%s/studies/%s/jobs/%s", server, study_id, job);
    for (int tries = 0;; tries++) {
        if (call("GET", url, token, NULL, NULL, 200, &j)) return 1;
        const char *st = json_string_value(json_object_get(j, "status"));
        if (st && !strcmp(st, "done")) {
            json_decref(j);
            break;
        }
        if (isatty(2)) fprintf(stderr, "\rcompute    %s, %.1f s", st ? st : "?", tries * 0.1);
        if (!st || !strcmp(st, "failed") || tries > 36000) {
            fprintf(stderr, "hestat-client: job %s failed: %s\n", job,
                    json_string_value(json_object_get(j, "error")) ?: "timed out");
            json_decref(j);
            return 1;
        }
        json_decref(j);
        usleep(100000);
    }
    if (isatty(2)) fputc('\n', stderr);
    snprintf(url, sizeof url, "%s/studies/%s/jobs/%s/result", server, study_id, job);
    http_progress("download");
    int rc = call("GET", url, token, NULL, out, 200, NULL);
    http_progress(NULL);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long)st.st_size;
}

static int cmd_run(const opts_t *o)
{
    const char *dir = o->out ? o->out : "build/client-run";
    char cmd[4200], csv[4096], keys[4096], table[4096], job[4096], result[4096], report[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (strchr(dir, '\'') || system(cmd)) return fail(dir, "cannot create the directory");
    if (o->csv) {
        snprintf(csv, sizeof csv, "%s", o->csv);
    } else {
        snprintf(csv, sizeof csv, "%s/sample.csv", dir);
        opts_t s = *o;
        s.rows = o->rows ? o->rows : 4240;
        s.out = csv;
        if (cmd_sample(&s)) return 1;
    }
    snprintf(keys, sizeof keys, "%s/keys", dir);
    snprintf(table, sizeof table, "%s/table.hst", dir);
    snprintf(job, sizeof job, "%s/job.hst", dir);
    snprintf(result, sizeof result, "%s/result.hst", dir);
    snprintf(report, sizeof report, "%s/decrypted_results.csv", dir);
    stats_job_t kind;
    if (parse_job_kind(o->stats, &kind)) return 2;
    char study[4200];
    snprintf(study, sizeof study, "%s/study.hst", keys);
    double t0 = now_s();
    if (keygen(o, csv, keys)) return 1;
    double t1 = now_s();
    if (encrypt_csv(study, csv, table)) return 1;
    double t2 = now_s();
    const char *tables[1] = {table};
    stats_counts_t counts = {0};
    double t3 = now_s(), t4;
    if (o->server) {
        char token[256], sid[80];
        if (read_token(o->token_file, token, sizeof token)) return 1;
        if (submit(o->server, token, study, NULL, tables, 1, sid, sizeof sid)) return 1;
        if (fetch(o->server, token, sid, o->stats, result)) return 1;
        t4 = now_s();
    } else {
        if (make_job(study, kind, tables, 1, job)) return 1;
        size_t len, rlen;
        void *jb = load(job, &len), *rb;
        if (!jb) return 1;
        t3 = now_s();
        int rc = stats_job_run(jb, len, &rb, &rlen, &counts);
        free(jb);
        if (rc) return stats_fail("compute", rc);
        t4 = now_s();
        if (save(result, rb, rlen, 0644)) return 1;
    }
    stats_report_errors_t worst;
    if (decrypt_result(o, keys, result, report, csv, &worst)) return 1;
    double t5 = now_s();
    printf("keys %.2f s | encrypt %.2f s, upload %.1f MB | %s %.2f s | download %.2f MB, decrypt %.3f s\n",
           t1 - t0, t2 - t1, file_size(table) / 1e6, o->server ? "upload+compute+download" : "compute",
           t4 - t3, file_size(result) / 1e6, t5 - t4);
    if (!o->server) printf("server work: %zu rotations, %zu relinearizations\n", counts.rotations, counts.relinearizations);
    printf("largest errors vs plaintext: mean %.2e, sd %.2e, correlation %.2e (abs), group mean %.2e\n",
           worst.mean_rel, worst.sd_rel, worst.corr_abs, worst.group_mean_rel);
    printf("wrote %s\n", report);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    if (o.cacert) http_set_cacert(o.cacert);
    if (!strcmp(o.cmd, "sample")) return cmd_sample(&o);
    if (!strcmp(o.cmd, "keygen")) {
        if (!o.schema || !o.keys) return usage_error("keygen needs --schema and --keys", NULL);
        return keygen(&o, o.schema, o.keys);
    }
    if (!strcmp(o.cmd, "encrypt")) {
        if (!o.study || !o.in || !o.out) return usage_error("encrypt needs --study, --in and --out", NULL);
        return encrypt_csv(o.study, o.in, o.out);
    }
    if (!strcmp(o.cmd, "job")) {
        stats_job_t kind;
        if (!o.study || !o.out || !o.npos) return usage_error("job needs --study, --out and TABLE files", NULL);
        if (parse_job_kind(o.stats, &kind)) return 2;
        return make_job(o.study, kind, o.pos, o.npos, o.out);
    }
    if (!strcmp(o.cmd, "decrypt")) {
        if (!o.keys || !o.in) return usage_error("decrypt needs --keys and --in", NULL);
        stats_report_errors_t worst;
        return decrypt_result(&o, o.keys, o.in, o.out ? o.out : "decrypted_results.csv", o.compare, &worst);
    }
    if (!strcmp(o.cmd, "submit")) {
        if (!o.server || !o.study) return usage_error("submit needs --server and --study", NULL);
        char token[256], sid[80];
        if (read_token(o.token_file, token, sizeof token)) return 1;
        if (submit(o.server, token, o.study, o.study_id, o.pos, o.npos, sid, sizeof sid)) return 1;
        printf("study %s\n", sid);
        return 0;
    }
    if (!strcmp(o.cmd, "fetch")) {
        if (!o.server || !o.study_id || !o.out) return usage_error("fetch needs --server, --study-id and --out", NULL);
        char token[256];
        if (read_token(o.token_file, token, sizeof token)) return 1;
        return fetch(o.server, token, o.study_id, o.stats, o.out);
    }
    if (!strcmp(o.cmd, "run")) return cmd_run(&o);
    return usage_error("unknown command", o.cmd);
}
