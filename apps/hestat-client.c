/*
 * hestat-client: the analyst's and the contributors' side.
 *   sample   a generated table with the Framingham schema
 *   keygen   secret key (stays here, mode 0600) + the public study file
 *   encrypt  CSV -> encrypted table (public study only)
 *   job      study + encrypted tables + the statistics wanted -> job file
 *   decrypt  result -> decrypted_results.csv (with --compare: next to plaintext)
 *   submit, fetch   the same files over HTTP
 *   run      all of it in one go, computing locally with the server's code
 *            or on a server
 *   mp-*     multiparty studies (apps/client/client_mp.c)
 * The commands' work lives in apps/client/client_*.c (see client.h).
 * Exit status: 0 ok, 1 error (one line on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "apps/client/client.h"
#include "apps/client/http.h"
#include "stats/stats.h"

static const char *usage_text =
    "usage: hestat-client COMMAND [options]\n"
    "\n"
    "  sample  --rows N [--seed S] [--cols C] --out FILE.csv\n"
    "          a generated table with the Framingham heart-study schema; --cols C: a wide\n"
    "          one instead (group, x1 ... x(C-1); C up to 512), for scale tests\n"
    "  keygen  --schema CSV --keys DIR [--range COL:LO:HI]... [--headroom X] [--stats SPEC]\n"
    "          [--min-cell N] [--min-n-per-param X] [--layout rows|columns]\n"
    "          [--force] [--poly-degree N --coeff-bits B0,B1,...]\n"
    "          DIR/secret.key (mode 0600, never leaves this machine) and DIR/study.hst\n"
    "          (parameters, schema, public and evaluation keys: give it to the server\n"
    "          and to contributors). Each column accepts values in [-F, F], F a power of\n"
    "          two: >= max(|LO|,|HI|) of its --range, else >= X times the largest |value|\n"
    "          in the schema CSV (--headroom, default 2); a column without values (a\n"
    "          header-only CSV) needs a --range. Refuses a DIR that holds keys unless --force.\n"
    "          --layout columns lays each chunk out column by column: W2 (--stats all) then\n"
    "          takes half the server's products; glm needs the default, rows.\n"
    "  show    --study STUDY\n"
    "          the study's columns, factors, disclosure policy and digest (for every party)\n"
    "  encrypt --study STUDY --in CSV --out TABLE\n"
    "          encrypt a table with the study's public key (columns as in the schema)\n"
    "          a chunk's rows at a time: memory does not grow with the rows; CSV may be a pipe\n"
    "  job     --study STUDY [--stats means|all] --out JOB TABLE...\n"
    "          a job for hestat-server compute (default --stats all)\n"
    "  decrypt --keys DIR --in RESULT [--out FILE] [--compare CSV] [--group COL]... [--print]\n"
    "          [--html PAGE] [--add-rows REPORT]\n"
    "          write decrypted_results.csv (default ./decrypted_results.csv), whole or not\n"
    "          at all (an error leaves FILE as it was); --print shows each column's count,\n"
    "          mean and sd (next to the plaintext with --compare); --html PAGE: the same report\n"
    "          as one self-contained page with charts (Chart.js inlined, nothing fetched);\n"
    "          --add-rows REPORT: the rows of another report with the same header (e.g.\n"
    "          hestat-client glm's models) follow this one's, in the file and the page\n"
    "  submit  --server URL [--token-file F] --study STUDY [--study-id ID] TABLE...\n"
    "          upload the study (unless --study-id names one already there) and tables;\n"
    "          prints 'study ID'. Files holding a secret key, or anything but hestat\n"
    "          frames, are refused before any connection.\n"
    "  fetch   --server URL [--token-file F] --study-id ID [--stats means|all] --out RESULT\n"
    "          ask for the statistics over every table of the study, wait, download\n"
    "  glm     --server URL [--token-file F] --study-id ID --keys DIR --stats 'glm:Y~X1+X2:family,...'\n"
    "          (--compare CSV | --schema CSV) --out REPORT [--html PAGE]\n"
    "          fit each model on every table of the study, the rounds as jobs of the server\n"
    "          (only O(k^2) encrypted totals come back each round); the regressors' ranges\n"
    "          come from the CSV; with --compare the rows carry the plaintext fit (IRLS);\n"
    "          the rows are appended to REPORT (created with a header when absent), written\n"
    "          whole or not at all; --html PAGE: the page of the whole REPORT\n"
    "  health  --server URL [--wait S]\n"
    "          exit 0 when the server answers GET /health (retrying for up to S seconds),\n"
    "          1 otherwise: for scripts and container health checks\n"
    "  run     [--csv CSV | --rows N] [--out DIR] [--server URL [--token-file F]] [--group COL]...\n"
    "          [--force] keygen (into DIR/keys: refused when it holds keys, unless --force),\n"
    "          encrypt, then compute (on the server when --server is given, else locally\n"
    "          with the server's code), decrypt and compare; writes DIR/decrypted_results.csv\n"
    "          (default DIR build/client-run)\n"
    "\n"
    "Multiparty studies (K data parties, none of whom, nor the analyst, can decrypt alone;\n"
    "README \"Multiparty studies\"):\n"
    "  mp-draft  --schema CSV --parties K --keys DIR [keygen's options] [--server URL]\n"
    "          the analyst: DIR/secret.key (the analyst's own key, 0600) and DIR/draft.hst;\n"
    "          with --server also uploads the draft (prints 'study ID')\n"
    "  mp-keygen --draft DRAFT --party I --keys PDIR --out ROUND1   (round 1)\n"
    "  mp-keygen --draft DRAFT --party I --keys PDIR --round1 SUM --out ROUND2   (round 2)\n"
    "  mp-keygen --server URL --study-id ID --party I --keys PDIR [--round 1|2]\n"
    "          party I: PDIR/share.key and PDIR/ephemeral.key (0600, never leave this machine)\n"
    "          and its public shares; round 2 wipes ephemeral.key\n"
    "  mp-share  --study STUDY --party I --keys PDIR --in RESULT --out KEYSWITCH\n"
    "  mp-share  --server URL --study-id ID --job JOB --party I --keys PDIR\n"
    "          party I's key-switch shares of a result (to the analyst's key)\n"
    "  mp-job    --server URL --study-id ID [--stats means|all] --out RESULT\n"
    "          a job over every table of the study; prints 'job JOB'\n"
    "  mp-status --server URL --study-id ID [--job JOB] [--out STUDY]\n"
    "          which parties' shares are missing (keys, or a job's key switch);\n"
    "          --out: the study, once built\n"
    "  mp-release --server URL --study-id ID --job JOB --out RESULT\n"
    "          the result under the analyst's key (refused while a party's shares are missing);\n"
    "          decrypt it with decrypt --keys DIR (DIR/study.hst: mp-status --out)\n"
    "\n"
    "Default parameters: --poly-degree 8192 --coeff-bits 60,40,40,60 (with a glm: in --stats,\n"
    "  16384 and " STATS_GLM_COEFF_BITS ").\n"
    "CSV: comma-separated, RFC 4180 quotes, LF or CRLF, an optional UTF-8 BOM; a header\n"
    "  row of names, then numbers (or texts: a column whose first value is not a number is\n"
    "  categorical, its texts the levels the study fixes at keygen); NA or empty is missing.\n"
    "HTTP: --server https://...; --cacert PEM for a server with a private certificate;\n"
    "  --token-file F: the bearer token is F's first line (up to 4096 characters);\n"
    "  a busy server (503) is retried after its Retry-After, up to --retries N times\n"
    "  (default 5, 0 never) and 60 s of waiting per request.\n"
    "SPEC (keygen, decrypt, run): mean,var,corr,group:COL,regress:Y~X1+X2,hist:COL:e0:e1:...,\n"
    "  ttest:COL:G (Welch and pooled t, G a 0/1 column), table:A:B (cell counts and\n"
    "  Pearson chi-square), corrtest:X:Y (t-test of the correlation); p-values two-sided.\n"
    "  glm:Y~X1+X2:binomial|poisson (logistic or Poisson regression, run only, locally or\n"
    "  with --server (each round a job of the server): rounds of\n"
    "  encrypted score and information at public coefficients, Newton steps by the client).\n"
    "  group, regress, hist and table add derived columns at keygen (indicators, complete\n"
    "  cases, bins); encrypt rebuilds them from the study; decrypt reports them.\n"
    "  quantile:COL:p1,p2,... (R's type-7 quantiles from 64 encrypted bins over COL's\n"
    "  range in the schema CSV; the report gives the bin width, the error bound),\n"
    "  moments:COL (skewness m3/m2^1.5 and kurtosis m4/m2^2 from encrypted x^3, x^4 sums).\n"
    "Disclosure control (fixed in the study at keygen, every party can read it): a count\n"
    "  c with 0 < c < N (--min-cell, default 3, 0 = off) is never released, nor what is\n"
    "  computed from it; a model with p parameters needs n >= X p complete cases\n"
    "  (--min-n-per-param, default 1/0.33 = 3.03). Suppressed values are NA, followed by a\n"
    "  row suppressed:STAT:RULE,VAR,GROUP,THRESHOLD; the report opens with the policy.\n";

static int parse_number(const char *opt, const char *arg, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(arg, &end);
    if (*end || end == arg || errno || !isfinite(*v)) return client_usage_error("not a number after", opt);
    return 0;
}

static int parse(int argc, char **argv, client_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->n = 8192;
    o->coeff_bits = "60,40,40,60";
    o->headroom = 2;
    o->retries = CLIENT_RETRIES;
    o->min_cell = -1;
    o->min_n_per_param = NAN;
    if (argc < 2) return client_usage_error("missing command", NULL);
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
        else if (!strcmp(a, "--html")) str = &o->html;
        else if (!strcmp(a, "--add-rows")) str = &o->add_rows;
        else if (!strcmp(a, "--draft")) str = &o->draft;
        else if (!strcmp(a, "--round1")) str = &o->round1;
        else if (!strcmp(a, "--job")) str = &o->job;
        if (str) {
            if (i + 1 >= argc) return client_usage_error("missing value after", a);
            *str = argv[++i];
        } else if (!strcmp(a, "--print")) {
            o->print = 1;
        } else if (!strcmp(a, "--force")) {
            o->force = 1;
        } else if (!strcmp(a, "--group")) {
            if (i + 1 >= argc) return client_usage_error("missing value after", a);
            if (o->ngroups == STATS_MAX_COLS) return client_usage_error("too many --group", NULL);
            o->groups[o->ngroups++] = argv[++i];
        } else if (!strcmp(a, "--range")) {
            if (i + 1 >= argc) return client_usage_error("missing value after", a);
            if (o->nranges == CLIENT_MAX_RANGES) return client_usage_error("too many --range", NULL);
            int rc = client_parse_range(argv[++i], &o->ranges[o->nranges++]);
            if (rc) return rc;
        } else if (!strcmp(a, "--wait")) {
            if (i + 1 >= argc) return client_usage_error("missing value after", a);
            if (parse_number(a, argv[++i], &o->wait)) return 2;
            if (o->wait < 0 || o->wait > 3600) return client_usage_error("--wait: seconds in [0, 3600], not", argv[i]);
        } else if (!strcmp(a, "--min-cell") || !strcmp(a, "--min-n-per-param")) {
            double v;
            if (i + 1 >= argc) return client_usage_error("missing value after", a);
            if (parse_number(a, argv[++i], &v)) return 2;
            if (!(v >= 0 && v <= STATS_POLICY_MAX_CELL) || (a[6] == 'c' && v != floor(v)))
                return client_usage_error(a[6] == 'c' ? "--min-cell wants a whole number in [0, 1000000], not"
                                                      : "--min-n-per-param wants a number in [0, 1000000], not",
                                          argv[i]);
            if (a[6] == 'c') o->min_cell = (long)v;
            else o->min_n_per_param = v;
        } else if (!strcmp(a, "--layout")) {
            if (i + 1 >= argc) return client_usage_error("missing value after", a);
            const char *v = argv[++i];
            if (strcmp(v, "rows") && strcmp(v, "columns"))
                return client_usage_error("--layout wants rows or columns, not", v);
            o->colmajor = !strcmp(v, "columns");
        } else if (!strcmp(a, "--headroom")) {
            if (i + 1 >= argc) return client_usage_error("missing value after", a);
            if (parse_number(a, argv[++i], &o->headroom)) return 2;
            if (o->headroom < 1) return client_usage_error("--headroom must be at least 1, not", argv[i]);
        } else if (!strcmp(a, "--parties") || !strcmp(a, "--party") || !strcmp(a, "--round")) {
            if (i + 1 >= argc) return client_usage_error("missing value after", a);
            char *end;
            errno = 0;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || errno || v < 1 || v > STATS_MP_MAX_PARTIES)
                return client_usage_error("not a number from 1 to 64:", argv[i]);
            if (!strcmp(a, "--parties")) o->parties = (int)v;
            else if (!strcmp(a, "--party")) o->party = (int)v;
            else o->round = (int)v;
        } else if (!strcmp(a, "--rows") || !strcmp(a, "--seed") || !strcmp(a, "--poly-degree") ||
                   !strcmp(a, "--retries") || !strcmp(a, "--cols")) {
            if (i + 1 >= argc) return client_usage_error("missing value after", a);
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (*end || end == argv[i] || errno || argv[i][0] == '-') return client_usage_error("not a number:", argv[i]);
            if (!strcmp(a, "--rows")) o->rows = v;
            else if (!strcmp(a, "--seed")) o->seed = v;
            else if (!strcmp(a, "--poly-degree")) o->n = v;
            else if (!strcmp(a, "--cols") && (v < 2 || v > STATS_MAX_COLS))
                return client_usage_error("--cols: a number from 2 to 512, not", argv[i]);
            else if (!strcmp(a, "--cols")) o->cols = v;
            else if (v > 100) return client_usage_error("--retries: at most 100, not", argv[i]);
            else o->retries = (int)v;
        } else if (a[0] == '-' && a[1]) {
            return client_usage_error("unknown option", a);
        } else {
            if (o->npos == 256) return client_usage_error("too many arguments", NULL);
            o->pos[o->npos++] = a;
        }
    }
    return 0;
}

/* Written a block of rows at a time (memory does not grow with --rows) into
 * a temporary file renamed over FILE at the end: never a partial FILE. */
static int cmd_sample(const client_opts_t *o)
{
    if (!o->out || !o->rows) return client_usage_error("sample needs --rows and --out", NULL);
    client_out_t out;
    if (client_out_open(&out, o->out)) return 1;
    stats_generator_t *g = NULL;
    int rc = o->cols ? stats_generator_new_wide(o->seed, o->cols, &g) : stats_generator_new(o->seed, &g);
    for (size_t done = 0; !rc && done < o->rows;) {
        size_t n = o->rows - done < 65536 ? o->rows - done : 65536;
        stats_table_t *t;
        rc = stats_generator_next(g, n, &t);
        if (!rc) rc = stats_write_csv_rows(t, out.f, done == 0);
        stats_table_free(t);
        done += n;
    }
    stats_generator_free(g);
    int saved = errno;
    if (!rc) return client_out_close(&out, 1);
    client_out_close(&out, 0);
    return rc == STATS_EIO ? client_fail(o->out, strerror(saved)) : client_stats_fail("sample", rc);
}

static int parse_job_kind(const char *stats, stats_job_t *job)
{
    if (!stats || !strcmp(stats, "all") || strcmp(stats, "means")) *job = STATS_JOB_ALL;
    else *job = STATS_JOB_MEANS;
    return 0;
}

/* Streams: each table is checked (header against the study, every chunk
 * read and validated, one at a time) and its bytes copied after the study
 * and the job header, so memory holds the study and a chunk whatever the
 * tables' sizes; the job file is written whole or not at all. */
static int copy_table(FILE *out, int fd, uint64_t len, const char *path)
{
    char buf[1 << 16];
    for (uint64_t off = 0; off < len;) {
        size_t want = len - off < sizeof buf ? (size_t)(len - off) : sizeof buf;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return client_fail(path, n < 0 ? strerror(errno) : "shorter than when checked");
        if (fwrite(buf, 1, (size_t)n, out) != (size_t)n) return client_fail("job", strerror(errno));
        off += (uint64_t)n;
    }
    return 0;
}

static int check_table_file(const stats_study_t *s, int fd, const char *path, uint64_t *len)
{
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) return client_fail(path, "not a regular file");
    stats_enc_table_t *t;
    uint64_t used;
    int rc = stats_table_file_open(s, fd, 0, (uint64_t)st.st_size, 0, &t, &used);
    if (rc) return client_stats_fail(path, rc);
    if (used != (uint64_t)st.st_size) {
        stats_enc_table_free(t);
        return client_fail(path, "trailing bytes after the table's last chunk");
    }
    for (size_t k = 0; !rc && k < t->chunks; k++) {
        ckks_ciphertext_t *z, *m;
        rc = stats_chunk_read(t, k, &z, &m);
        if (!rc) {
            ckks_ciphertext_free(z);
            ckks_ciphertext_free(m);
        }
    }
    stats_enc_table_free(t);
    *len = used;
    return rc ? client_stats_fail(path, rc) : 0;
}

static int make_job(const char *study_path, stats_job_t kind, const char *const *tables, size_t n,
                    const char *out)
{
    stats_study_t *s;
    if (client_load_study(study_path, &s)) return 1;
    void *sbuf = NULL, *frame = NULL;
    size_t slen = 0, flen = 0;
    uint8_t hdr[16] = {0};
    uint32_t k32 = (uint32_t)kind;
    uint64_t n64 = n;
    memcpy(hdr, &k32, 4);
    memcpy(hdr + 8, &n64, 8);
    int err = stats_study_write(s, &sbuf, &slen) || ckks_frame_write(s->ctx, STATS_OBJ_JOB, hdr, sizeof hdr, &frame, &flen)
                  ? client_fail("job", "out of memory")
                  : 0;
    client_out_t o;
    int opened = !err && !client_out_open(&o, out);
    if (!err && !opened) err = 1;
    if (!err && (fwrite(sbuf, 1, slen, o.f) != slen || fwrite(frame, 1, flen, o.f) != flen))
        err = client_fail(out, strerror(errno));
    for (size_t i = 0; i < n && !err; i++) {
        int fd = open(tables[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            err = client_fail(tables[i], strerror(errno));
            break;
        }
        uint64_t len = 0;
        err = check_table_file(s, fd, tables[i], &len);
        if (!err) err = copy_table(o.f, fd, len, tables[i]);
        close(fd);
    }
    if (opened && client_out_close(&o, !err)) err = 1;
    free(sbuf);
    free(frame);
    stats_study_free(s);
    return err;
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

/* The server's part of run: over HTTP, or locally with the server's code. */
static int run_compute(const client_opts_t *o, const char *token, const char *study, const char *table,
                       const char *job, const char *result, stats_counts_t *counts, double *t_start, char *sid,
                       size_t sidlen)
{
    const char *tables[1] = {table};
    *t_start = now_s();
    if (o->server) {
        return client_submit(o->server, token, study, NULL, tables, 1, sid, sidlen) ||
               client_fetch(o->server, token, sid, o->stats, result);
    }
    stats_job_t kind;
    parse_job_kind(o->stats, &kind);
    if (make_job(study, kind, tables, 1, job)) return 1;
    size_t len, rlen;
    void *jb = client_load(job, &len), *rb;
    if (!jb) return 1;
    *t_start = now_s();
    int rc = stats_job_run(jb, len, &rb, &rlen, counts);
    free(jb);
    if (rc) return client_stats_fail("compute", rc);
    return client_save(result, rb, rlen, 0644);
}

static int run_steps(const client_opts_t *o, const char *token)
{
    const char *dir = o->out ? o->out : "build/client-run";
    char csv[4200], keys[4200], study[4300], table[4200], job[4200], result[4200], report[4200];
    if (client_mkdirs(dir, 0755)) return 1;
    snprintf(keys, sizeof keys, "%s/keys", dir);
    snprintf(study, sizeof study, "%s/study.hst", keys);
    snprintf(table, sizeof table, "%s/table.hst", dir);
    snprintf(job, sizeof job, "%s/job.hst", dir);
    snprintf(result, sizeof result, "%s/result.hst", dir);
    snprintf(report, sizeof report, "%s/decrypted_results.csv", dir);
    /* Keys of an earlier run are kept, and so is everything beside them. */
    if (!o->force && client_keys_exist(keys)) return 1;
    if (o->csv) {
        snprintf(csv, sizeof csv, "%s", o->csv);
    } else {
        snprintf(csv, sizeof csv, "%s/sample.csv", dir);
        client_opts_t s = *o;
        s.rows = o->rows ? o->rows : 4240;
        s.out = csv;
        if (cmd_sample(&s)) return 1;
    }
    double t0 = now_s();
    if (client_keygen(o, csv, keys)) return 1;
    double t1 = now_s();
    if (client_encrypt(study, csv, table)) return 1;
    double t2 = now_s(), t3;
    stats_counts_t counts = {0};
    char sid[80] = "";
    if (run_compute(o, token, study, table, job, result, &counts, &t3, sid, sizeof sid)) return 1;
    double t4 = now_s();
    stats_report_errors_t worst;
    client_opts_t d = *o;
    d.compare = csv;
    if (client_decrypt(&d, keys, result, report, csv, &worst)) return 1;
    if (!o->server && client_glm_run(o, keys, table, csv, report, 1)) return 1;
    if (o->server && client_glm_run_http(o, keys, table, csv, report, 1, o->server, token, sid)) return 1;
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

static int cmd_run(const client_opts_t *o)
{
    char *token = NULL;
    if (o->server && client_token_read(o->token_file, &token)) return 1; /* before any work */
    int err = run_steps(o, token);
    client_token_free(token);
    return err;
}

static int cmd_submit(const client_opts_t *o)
{
    if (!o->server || !o->study) return client_usage_error("submit needs --server and --study", NULL);
    char *token, sid[80];
    if (client_token_read(o->token_file, &token)) return 1;
    int err = client_submit(o->server, token, o->study, o->study_id, o->pos, o->npos, sid, sizeof sid);
    client_token_free(token);
    if (!err) printf("study %s\n", sid);
    return err;
}

static int cmd_health(const client_opts_t *o)
{
    if (!o->server) return client_usage_error("health needs --server", NULL);
    return client_health(o->server, o->wait);
}

static int cmd_glm(const client_opts_t *o)
{
    const char *csv = o->compare ? o->compare : o->schema;
    if (!o->server || !o->study_id || !o->keys || !o->out || !csv || !o->stats || !client_glm_wanted(o->stats))
        return client_usage_error("glm needs --server, --study-id, --keys, --stats glm:..., --out and --compare or "
                                  "--schema", NULL);
    char *token;
    if (client_token_read(o->token_file, &token)) return 1;
    int err = client_glm_run_http(o, o->keys, NULL, csv, o->out, o->compare != NULL, o->server, token, o->study_id);
    client_token_free(token);
    return err;
}

static int cmd_fetch(const client_opts_t *o)
{
    if (!o->server || !o->study_id || !o->out) return client_usage_error("fetch needs --server, --study-id and --out", NULL);
    char *token;
    if (client_token_read(o->token_file, &token)) return 1;
    int err = client_fetch(o->server, token, o->study_id, o->stats, o->out);
    client_token_free(token);
    return err;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    client_opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    if (o.cacert) http_set_cacert(o.cacert);
    client_http_retries(o.retries);
    if (!strcmp(o.cmd, "sample")) return cmd_sample(&o);
    if (!strcmp(o.cmd, "keygen")) {
        if (!o.schema || !o.keys) return client_usage_error("keygen needs --schema and --keys", NULL);
        return client_keygen(&o, o.schema, o.keys);
    }
    if (!strcmp(o.cmd, "encrypt")) {
        if (!o.study || !o.in || !o.out) return client_usage_error("encrypt needs --study, --in and --out", NULL);
        return client_encrypt(o.study, o.in, o.out);
    }
    if (!strcmp(o.cmd, "job")) {
        stats_job_t kind;
        if (!o.study || !o.out || !o.npos) return client_usage_error("job needs --study, --out and TABLE files", NULL);
        if (parse_job_kind(o.stats, &kind)) return 2;
        return make_job(o.study, kind, o.pos, o.npos, o.out);
    }
    if (!strcmp(o.cmd, "decrypt")) {
        if (!o.keys || !o.in) return client_usage_error("decrypt needs --keys and --in", NULL);
        stats_report_errors_t worst;
        return client_decrypt(&o, o.keys, o.in, o.out ? o.out : "decrypted_results.csv", o.compare, &worst);
    }
    if (!strcmp(o.cmd, "show")) {
        if (!o.study) return client_usage_error("show needs --study", NULL);
        return client_show(o.study);
    }
    if (!strcmp(o.cmd, "submit")) return cmd_submit(&o);
    if (!strcmp(o.cmd, "fetch")) return cmd_fetch(&o);
    if (!strcmp(o.cmd, "glm")) return cmd_glm(&o);
    if (!strcmp(o.cmd, "health")) return cmd_health(&o);
    if (!strcmp(o.cmd, "run")) return cmd_run(&o);
    if (!strcmp(o.cmd, "mp-draft")) return client_mp_draft(&o);
    if (!strcmp(o.cmd, "mp-keygen")) return client_mp_keygen(&o);
    if (!strcmp(o.cmd, "mp-share")) return client_mp_share(&o);
    if (!strcmp(o.cmd, "mp-job")) return client_mp_job(&o);
    if (!strcmp(o.cmd, "mp-status")) return client_mp_status(&o);
    if (!strcmp(o.cmd, "mp-release")) return client_mp_release(&o);
    return client_usage_error("unknown command", o.cmd);
}
