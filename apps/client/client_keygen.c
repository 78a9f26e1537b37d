/* hestat-client keygen: the secret key and the study, with the column
 * factors the study will hold for ever.
 *
 * A column's factor F is public and bounds what any contributor may encrypt
 * in it: values in [-F, F]. F is a power of two in [1, 2^60] (the most the
 * study reader accepts), taken
 *   - from a declared range --range COL:LO:HI: the power of two >= max(|LO|, |HI|);
 *   - else from the schema CSV: the power of two >= headroom * max |x| observed
 *     (--headroom, default 2: a contributor's 130.5 fits a schema whose
 *     largest value was 128); a column whose values are all 0 or 1 is a 0/1
 *     column: factor 1 (headroom there would only cost precision);
 *   - for derived columns: 1 for the 0/1 ones (indicators "COL=level", bins
 *     "COL in [a:b)"), the factor of COL for a complete-case copy "cc:COL".
 * A column with no observed value (a header-only CSV, an all-missing column)
 * needs a --range. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apps/client/client.h"

#define FACTOR_MAX 0x1p60

int client_parse_range(const char *arg, client_range_t *r)
{
    const char *hi = strrchr(arg, ':');
    const char *lo = NULL;
    for (const char *p = hi ? hi - 1 : NULL; p && p >= arg; p--)
        if (*p == ':') {
            lo = p;
            break;
        }
    if (!lo || lo == arg) return client_usage_error("--range wants COL:LO:HI, not", arg);
    size_t n = (size_t)(lo - arg);
    if (n >= STATS_NAME_MAX) return client_usage_error("--range: column name too long:", arg);
    memcpy(r->column, arg, n);
    r->column[n] = 0;
    char *end;
    errno = 0;
    r->lo = strtod(lo + 1, &end);
    if (end != hi || errno || !isfinite(r->lo)) return client_usage_error("--range: LO is not a number in", arg);
    r->hi = strtod(hi + 1, &end);
    if (*end || end == hi + 1 || errno || !isfinite(r->hi))
        return client_usage_error("--range: HI is not a number in", arg);
    if (r->lo > r->hi) return client_usage_error("--range: LO is above HI in", arg);
    return 0;
}

static const client_range_t *range_of(const client_opts_t *o, const char *column)
{
    for (size_t i = 0; i < o->nranges; i++)
        if (!strcmp(o->ranges[i].column, column)) return &o->ranges[i];
    return NULL;
}

/* Every --range names a column of the schema, once; the schema's own values
 * lie inside it. */
static int check_ranges(const client_opts_t *o, const stats_table_t *raw, const size_t *lines, const char *csv)
{
    for (size_t i = 0; i < o->nranges; i++) {
        const client_range_t *r = &o->ranges[i];
        int c = stats_column(raw, r->column);
        if (c < 0) return client_fail("--range: the schema CSV has no column", r->column);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(o->ranges[k].column, r->column)) return client_fail("--range given twice for", r->column);
        for (size_t row = 0; row < raw->nrows; row++) {
            double v = stats_value(raw, row, (size_t)c);
            if (!isnan(v) && (v < r->lo || v > r->hi)) {
                fprintf(stderr, "hestat-client: %s:%zu: column %s: %.17g is outside its declared --range [%g, %g]\n",
                        csv, lines ? lines[row] : row + 2, r->column, v, r->lo, r->hi);
                return 1;
            }
        }
    }
    return 0;
}

/* Factors of the schema's own columns. */
static int raw_factors(const client_opts_t *o, const stats_table_t *raw, const char *csv, double *f)
{
    char unranged[1024] = "";
    size_t nunranged = 0;
    for (size_t c = 0; c < raw->ncols; c++) {
        const client_range_t *r = range_of(o, raw->names[c]);
        double mx = 0;
        int seen = 0, binary = 1;
        for (size_t row = 0; row < raw->nrows; row++) {
            double x = stats_value(raw, row, c), v = fabs(x);
            if (isnan(v)) continue;
            seen = 1;
            binary &= x == 0 || x == 1;
            if (v > mx) mx = v;
        }
        double want = r ? fmax(fabs(r->lo), fabs(r->hi)) : binary ? 1 : o->headroom * mx;
        if (!r && !seen) {
            size_t used = strlen(unranged);
            snprintf(unranged + used, sizeof unranged - used, "%s%s", nunranged++ ? ", " : "", raw->names[c]);
            continue;
        }
        f[c] = stats_pow2_at_least(want);
        if (f[c] > FACTOR_MAX) {
            fprintf(stderr,
                    "hestat-client: %s: column %s: %s %.6g needs a factor above 2^60 (the largest a study holds): "
                    "values must stay within +-%.6g%s\n",
                    csv, raw->names[c], r ? "the declared range reaches" : "values up to", r ? want : mx,
                    r ? FACTOR_MAX : FACTOR_MAX / o->headroom, r ? "" : " with this --headroom");
            return 1;
        }
    }
    if (nunranged) {
        fprintf(stderr, "hestat-client: %s: %s; declare %s with --range COL:LO:HI: %s\n", csv,
                raw->nrows ? "no values to take a range from" : "no rows to take ranges from",
                nunranged > 1 ? "their ranges" : "its range", unranged);
        return 1;
    }
    return 0;
}

/* Factors of the study's columns: the schema's own, then the derived ones. */
static void study_factors(const client_opts_t *o, const stats_table_t *raw, const double *rawf, const stats_table_t *t,
                          double *f)
{
    double lo[STATS_MAX_COLS], hi[STATS_MAX_COLS];
    for (size_t c = 0; c < raw->ncols; c++) {
        const client_range_t *r = range_of(o, raw->names[c]);
        lo[c] = r ? r->lo : NAN;
        hi[c] = r ? r->hi : NAN;
    }
    stats_study_factors(raw, rawf, lo, hi, o->headroom, t, f);
}

int client_keys_exist(const char *dir)
{
    static const char *names[] = {"secret.key", "study.hst"};
    for (size_t i = 0; i < 2; i++) {
        char path[4200];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!lstat(path, &st)) {
            fprintf(stderr, "hestat-client: %s already exists: keygen would replace the keys in %s (results of "
                    "that study could no longer be decrypted); pass --force to replace them, or use another "
                    "directory\n", path, dir);
            return 1;
        }
    }
    return 0;
}

static int write_keys(const char *dir, const ckks_secret_key_t *sk, const stats_study_t *study)
{
    char path[4200];
    void *buf;
    size_t len;
    snprintf(path, sizeof path, "%s/secret.key", dir);
    int rc = ckks_write_secret_key(sk, &buf, &len);
    if (rc) return client_fail("secret key", ckks_strerror(rc));
    if (client_save_secret(path, buf, len)) return 1;
    snprintf(path, sizeof path, "%s/study.hst", dir);
    if ((rc = stats_study_write(study, &buf, &len))) return client_stats_fail("study", rc);
    return client_save(path, buf, len, 0644);
}

/* The study's table (derived columns added) and its factors. */
int client_schema(const client_opts_t *o, const char *csv, stats_table_t **t, double *f)
{
    stats_table_t *raw;
    size_t *lines = NULL;
    if (client_read_csv(csv, &raw, &lines)) return 1;
    double rawf[STATS_MAX_COLS];
    int err = check_ranges(o, raw, lines, csv);
    if (!err) err = raw_factors(o, raw, csv, rawf);
    free(lines);
    if (!err) {
        char derr[256] = "";
        int rc = stats_spec_derive(raw, o->stats ? o->stats : "", t, derr, sizeof derr);
        if (rc) err = client_fail("--stats", derr[0] ? derr : stats_strerror(rc));
        else study_factors(o, raw, rawf, *t, f);
    }
    stats_table_free(raw);
    return err;
}

stats_policy_t client_policy(const client_opts_t *o)
{
    stats_policy_t policy = stats_policy_default();
    if (o->min_cell >= 0) policy.min_cell = (uint32_t)o->min_cell;
    if (!isnan(o->min_n_per_param)) policy.min_n_per_param = o->min_n_per_param;
    return policy;
}

int client_keygen(const client_opts_t *o, const char *schema_csv, const char *dir)
{
    if (!(o->headroom >= 1) || !isfinite(o->headroom)) return client_usage_error("--headroom must be >= 1", NULL);
    if (o->colmajor && o->stats && strstr(o->stats, "glm:"))
        return client_usage_error("--layout columns: a glm fit needs a row-major study (--layout rows, the default)",
                                  NULL);
    if (!o->force && client_keys_exist(dir)) return 1;
    stats_table_t *t;
    double factors[STATS_MAX_COLS];
    if (client_schema(o, schema_csv, &t, factors)) return 1;
    if (client_mkdirs(dir, 0700)) {
        stats_table_free(t);
        return 1;
    }
    ckks_context_t *ctx;
    client_opts_t po = *o;
    client_glm_params(&po); /* glm: needs 9 data primes */
    if (client_make_context(&po, &ctx)) {
        stats_table_free(t);
        return 1;
    }
    ckks_secret_key_t *sk;
    int rc = ckks_secret_key_new(ctx, &sk);
    if (rc) {
        stats_table_free(t);
        ckks_context_free(ctx);
        return client_fail("secret key", ckks_strerror(rc));
    }
    stats_study_t *study;
    stats_policy_t policy = client_policy(o);
    rc = stats_study_create_layout(ctx, t, sk, factors, &policy, o->colmajor, &study);
    stats_table_free(t);
    if (rc) {
        ckks_secret_key_free(sk);
        ckks_context_free(ctx);
        return client_stats_fail("study", rc);
    }
    int err = write_keys(dir, sk, study);
    ckks_secret_key_free(sk);
    stats_study_free(study);
    return err;
}
