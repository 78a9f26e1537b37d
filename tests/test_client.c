/* hestat-client's safeguards (issue 10, items 12-18), each through the real
 * programs and real files: nothing secret leaves the machine (checked with
 * a listening socket that records any connection), keys are never silently
 * replaced, study ranges are declared and checked, CSV as spreadsheets write
 * it, a busy server is retried within a bound, reports are written whole or
 * not at all, and long tokens travel whole. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "apps/client/http.h"
#include "stats/stats.h"
#include "testutil.h"

#define sh test_sh

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/hestat-client-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    if (dir[0]) sh("rm -rf %s", dir);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 65536;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* The text of DIR/name (an empty string when absent). */
static char *text_of(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = slurp(path, NULL);
    return s ? s : strdup("");
}

static int exists(const char *name)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* ---- a loopback port that records connections ---- */
static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 16), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Connections made to the listener so far (the kernel completes them even
 * though nobody answers; accept() takes them off the queue). */
static int connections(int fd)
{
    int n = 0, c;
    while ((c = accept(fd, NULL, NULL)) >= 0) {
        close(c);
        n++;
    }
    return n;
}

/* A study and a 600-row table in DIR (keys/, t.csv, t.hst). */
static void small_study(const char *C)
{
    cr_assert_eq(sh("%s sample --rows 600 --seed 5 --out %s/t.csv", C, dir), 0);
    cr_assert_eq(sh("%s keygen --schema %s/t.csv --keys %s/keys", C, dir, dir), 0);
    cr_assert_eq(sh("%s encrypt --study %s/keys/study.hst --in %s/t.csv --out %s/t.hst", C, dir, dir, dir), 0);
}

/* ---- item 12: nothing secret, nothing foreign leaves the machine ---- */
Test(client, submit_refuses_secret_keys_before_connecting, .timeout = 120, .init = make_dir, .fini = remove_dir)
{
    const char *C = test_bin("hestat-client");
    small_study(C);
    int port, fd = listen_loopback(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    cr_assert_eq(sh("cat %s/t.hst %s/keys/secret.key > %s/t_and_key.hst", dir, dir, dir), 0);
    cr_assert_eq(sh("head -c 100000 %s/t.hst > %s/cut.hst", dir, dir), 0);
    struct {
        const char *args, *says;
    } cases[] = {
        /* the secret key as a table, as the study, after a table */
        {"--study %s/keys/study.hst %s/keys/secret.key", "secret key"},
        {"--study %s/keys/secret.key %s/t.hst", "secret key"},
        {"--study %s/keys/study.hst %s/t_and_key.hst", "is a secret key: a secret key never leaves"},
        /* a SEAL secret key, a CSV, a truncated table, a table given as the study */
        {"SEAL", "Microsoft SEAL"},
        {"--study %s/keys/study.hst %s/t.csv", "not a hestat file"},
        {"--study %s/keys/study.hst %s/cut.hst", "truncated"},
        {"--study %s/t.hst %s/t.hst", "not a hestat study"},
    };
    char seal[512];
    cr_assert_not_null(realpath("vectors/n4096/secret_key.bin", seal));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[1024];
        if (!strcmp(cases[i].args, "SEAL"))
            snprintf(args, sizeof args, "--study %s/keys/study.hst %s", dir, seal);
        else
            snprintf(args, sizeof args, cases[i].args, dir, dir);
        int rc = sh("timeout 20 %s submit --server %s %s > /dev/null 2> %s/err", C, url, args, dir);
        char *err = text_of("err");
        cr_expect_eq(rc, 1, "case %zu (%s): exit %d, %s", i, args, rc, err);
        cr_expect(strstr(err, cases[i].says) != NULL, "case %zu: '%s' not in: %s", i, cases[i].says, err);
        cr_expect_eq(connections(fd), 0, "case %zu (%s): the client connected", i, args);
        free(err);
    }
    close(fd);
}

/* ---- item 13: keys are never replaced without --force ---- */
Test(client, keygen_and_run_refuse_existing_keys_without_force, .timeout = 120, .init = make_dir, .fini = remove_dir)
{
    const char *C = test_bin("hestat-client");
    cr_assert_eq(sh("%s sample --rows 600 --seed 6 --out %s/t.csv", C, dir), 0);
    cr_assert_eq(sh("%s keygen --schema %s/t.csv --keys %s/keys", C, dir, dir), 0);
    size_t n1, n2;
    char path[256];
    snprintf(path, sizeof path, "%s/keys/secret.key", dir);
    char *before = slurp(path, &n1);
    cr_assert_not_null(before);
    cr_expect_eq(sh("%s keygen --schema %s/t.csv --keys %s/keys 2> %s/err", C, dir, dir, dir), 1);
    char *err = text_of("err");
    cr_expect(strstr(err, "secret.key already exists") && strstr(err, "--force"), "%s", err);
    free(err);
    char *after = slurp(path, &n2);
    cr_expect(n1 == n2 && !memcmp(before, after, n1), "the secret key changed without --force");
    free(after);
    /* study.hst alone (a contributor's copy) is protected as well */
    cr_assert_eq(sh("mkdir %s/pub && cp %s/keys/study.hst %s/pub/", dir, dir, dir), 0);
    cr_expect_eq(sh("%s keygen --schema %s/t.csv --keys %s/pub 2> %s/err", C, dir, dir, dir), 1);
    cr_expect_eq(sh("grep -q 'study.hst already exists' %s/err", dir), 0);
    cr_expect_eq(sh("%s keygen --schema %s/t.csv --keys %s/keys --force", C, dir, dir), 0);
    after = slurp(path, &n2);
    cr_expect(n1 != n2 || memcmp(before, after, n1), "--force did not replace the secret key");
    free(before);
    free(after);
    /* run makes keys in OUT/keys: a second run into the same OUT is refused
     * (nothing replaced), --force replaces them; run makes OUT's parents. */
    cr_assert_eq(sh("%s run --csv %s/t.csv --out %s/a/b/run > /dev/null", C, dir, dir), 0);
    cr_assert_eq(sh("cp -r %s/a/b/run %s/first", dir, dir), 0);
    cr_expect_eq(sh("%s run --rows 700 --out %s/a/b/run > /dev/null 2> %s/err", C, dir, dir), 1);
    cr_expect_eq(sh("grep -q 'already exists' %s/err", dir), 0);
    cr_expect_eq(sh("diff -r %s/first %s/a/b/run", dir, dir), 0, "a refused run changed its directory");
    cr_expect_eq(sh("%s run --csv %s/t.csv --out %s/a/b/run --force > /dev/null", C, dir, dir), 0);
    cr_expect(exists("a/b/run/decrypted_results.csv"));
}

/* ---- item 14: ranges declared, refused, named ---- */
static void write_text(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static stats_study_t *read_study(const char *name)
{
    char path[256];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *buf = slurp(path, &len);
    cr_assert_not_null(buf);
    stats_study_t *s;
    cr_assert_eq(stats_study_read(buf, len, &s, NULL), STATS_OK);
    free(buf);
    return s;
}

static double factor_of(const stats_study_t *s, const char *column)
{
    for (size_t c = 0; c < s->layout.ncols; c++)
        if (!strcmp(s->layout.names[c], column)) return s->layout.factor[c];
    cr_assert_fail("no column %s in the study", column);
    return 0;
}

Test(client, keygen_ranges_headroom_and_refusals, .timeout = 180, .init = make_dir, .fini = remove_dir)
{
    const char *C = test_bin("hestat-client");
    /* A value no study can hold: refused, naming the column. */
    write_text("huge.csv", "age,big\n40,1\n50,2e18\n");
    cr_expect_eq(sh("%s keygen --schema %s/huge.csv --keys %s/k0 2> %s/err", C, dir, dir, dir), 1);
    char *err = text_of("err");
    cr_expect(strstr(err, "column big") && strstr(err, "2^60"), "%s", err);
    free(err);
    cr_expect(!exists("k0/study.hst") && !exists("k0/secret.key"));
    /* A header-only schema: every column needs a --range; the message names them. */
    write_text("header.csv", "age,sysBP,diaBP\n");
    cr_expect_eq(sh("%s keygen --schema %s/header.csv --keys %s/k1 --range age:20:90 2> %s/err", C, dir, dir, dir), 1);
    err = text_of("err");
    cr_expect(strstr(err, "--range") && strstr(err, "sysBP, diaBP") && !strstr(err, "age,"), "%s", err);
    free(err);
    cr_expect_eq(sh("%s keygen --schema %s/header.csv --keys %s/k1 --range age:20:90 --range sysBP:80:300 "
                    "--range diaBP:40:150 --stats regress:sysBP~age+diaBP", C, dir, dir), 0);
    stats_study_t *s = read_study("k1/study.hst");
    cr_expect_eq(factor_of(s, "age"), 128);
    cr_expect_eq(factor_of(s, "sysBP"), 512);
    cr_expect_eq(factor_of(s, "diaBP"), 256);
    cr_expect_eq(factor_of(s, "cc:sysBP"), 512, "a complete-case copy shares its column's factor");
    cr_expect_eq(factor_of(s, "cc:diaBP"), 256);
    stats_study_free(s);
    /* A contributor's value beyond the range: the error names file, line, column and range. */
    write_text("c1.csv", "age,sysBP,diaBP\n50,120,80\n\n61,130,90\n70,600,95\n");
    cr_expect_eq(sh("%s encrypt --study %s/k1/study.hst --in %s/c1.csv --out %s/c1.hst 2> %s/err", C, dir, dir, dir,
                    dir), 1);
    err = text_of("err");
    cr_expect(strstr(err, "c1.csv:5:") && strstr(err, "column sysBP") && strstr(err, "600") &&
              strstr(err, "[-512, 512]"), "%s", err);
    free(err);
    cr_expect(!exists("c1.hst"));
    /* A declared range the schema's own values break is refused too. */
    write_text("s2.csv", "age,diaBP\n40,100\n50,128\n");
    cr_expect_eq(sh("%s keygen --schema %s/s2.csv --keys %s/k2 --range age:0:45 2> %s/err", C, dir, dir, dir), 1);
    cr_expect_eq(sh("grep -q 's2.csv:3: column age: 50 is outside its declared --range' %s/err", dir), 0);
    cr_expect_eq(sh("%s keygen --schema %s/s2.csv --keys %s/k2 --range nope:0:1 2> %s/err", C, dir, dir, dir), 1);
    cr_expect_eq(sh("grep -q 'no column: nope' %s/err", dir), 0);
    cr_expect_eq(sh("%s keygen --schema %s/s2.csv --keys %s/k2 --range age:9:1 2> /dev/null", C, dir, dir), 2);
    /* Headroom: a schema whose largest diaBP is 128 still takes a contributor's
     * 130.5 (default --headroom 2: factor 256); with --headroom 1 it is refused. */
    write_text("c2.csv", "age,diaBP\n45,90\n52,130.5\n");
    cr_assert_eq(sh("%s keygen --schema %s/s2.csv --keys %s/k2", C, dir, dir), 0);
    s = read_study("k2/study.hst");
    cr_expect_eq(factor_of(s, "diaBP"), 256);
    cr_expect_eq(factor_of(s, "age"), 128);
    stats_study_free(s);
    cr_expect_eq(sh("%s encrypt --study %s/k2/study.hst --in %s/c2.csv --out %s/c2.hst", C, dir, dir, dir), 0);
    cr_assert_eq(sh("%s keygen --schema %s/s2.csv --keys %s/k3 --headroom 1", C, dir, dir), 0);
    cr_expect_eq(sh("%s encrypt --study %s/k3/study.hst --in %s/c2.csv --out %s/c3.hst 2> %s/err", C, dir, dir, dir,
                    dir), 1);
    cr_expect_eq(sh("grep -q 'c2.csv:3: column diaBP: 130.5 is outside' %s/err", dir), 0);
    /* Derived columns: indicators and bins 1, complete cases as their column;
     * the study computes correctly end to end with them. */
    cr_assert_eq(sh("%s sample --rows 600 --seed 7 --out %s/t.csv", C, dir), 0);
    cr_assert_eq(sh("%s keygen --schema %s/t.csv --keys %s/k4 --range sysBP:0:300 "
                    "--stats group:education,regress:sysBP~age+BMI,hist:BMI:15:25:35:60", C, dir, dir), 0);
    s = read_study("k4/study.hst");
    cr_expect_eq(factor_of(s, "education=2"), 1);
    cr_expect_eq(factor_of(s, "BMI in [25:35)"), 1);
    cr_expect_eq(factor_of(s, "sysBP"), 512);
    cr_expect_eq(factor_of(s, "cc:sysBP"), 512);
    cr_expect_eq(factor_of(s, "cc:BMI"), factor_of(s, "BMI"));
    cr_expect_eq(factor_of(s, "age"), 256, "age up to 70, headroom 2: 140 -> 256");
    cr_expect_eq(factor_of(s, "Gender"), 1, "a 0/1 column keeps factor 1 (no headroom)");
    cr_expect_eq(factor_of(s, "TenYearCHD"), 1);
    cr_expect_eq(factor_of(s, "education"), 8, "education 1..4, headroom 2");
    stats_study_free(s);
    cr_assert_eq(sh("%s encrypt --study %s/k4/study.hst --in %s/t.csv --out %s/t4.hst && "
                    "%s job --study %s/k4/study.hst --out %s/j4.hst %s/t4.hst && "
                    "%s compute %s/j4.hst --out %s/r4.hst > /dev/null && "
                    "%s decrypt --keys %s/k4 --in %s/r4.hst --out %s/rep4.csv --compare %s/t.csv "
                    "--stats group:education,regress:sysBP~age+BMI,hist:BMI:15:25:35:60",
                    C, dir, dir, dir, C, dir, dir, dir, test_bin("hestat-server"), dir, dir, C, dir, dir, dir, dir), 0);
    cr_expect_eq(sh("awk -F, '$1==\"coef\" && $7+0 > 1e-4 {bad=1} $1==\"coef\" {k++} $1==\"hist\" && $6+0 != 0 {bad=1} "
                    "$1==\"hist\" {h++} END {exit bad || k != 3 || h != 3}' %s/rep4.csv", dir), 0);
}

/* ---- item 15: CSV as spreadsheets write it ---- */
static int csv_error_of(const char *name, const char *text, char *err, size_t errlen)
{
    write_text(name, text);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    stats_table_t *t = NULL;
    int rc = stats_read_csv(path, &t, err, errlen);
    stats_table_free(t);
    return rc;
}

Test(client, csv_bom_quotes_crlf_and_errors, .timeout = 120, .init = make_dir, .fini = remove_dir)
{
    /* Excel's "CSV UTF-8": a BOM, CRLF, quoted names and values. */
    write_text("x.csv", "\xef\xbb\xbf\"Gender\",age,\"Blood pressure, systolic\",\"say \"\"hi\"\"\"\r\n"
                        "1,\"40.5\",120,NA\r\n"
                        "\r\n"
                        "0, 50 ,\" 130 \",\r\n"
                        "\"\",51,\"1e2\",\"-2\"\r\n");
    char path[256], err[256] = "";
    snprintf(path, sizeof path, "%s/x.csv", dir);
    stats_table_t *t;
    cr_assert_eq(stats_read_csv(path, &t, err, sizeof err), STATS_OK, "%s", err);
    cr_assert_eq(t->ncols, 4);
    cr_assert_eq(t->nrows, 3);
    cr_expect_str_eq(t->names[0], "Gender");
    cr_expect_str_eq(t->names[1], "age");
    cr_expect_str_eq(t->names[2], "Blood pressure, systolic");
    cr_expect_str_eq(t->names[3], "say \"hi\"");
    cr_expect_eq(stats_value(t, 0, 1), 40.5);
    cr_expect(isnan(stats_value(t, 0, 3)), "NA is missing");
    cr_expect_eq(stats_value(t, 1, 1), 50);
    cr_expect_eq(stats_value(t, 1, 2), 130);
    cr_expect(isnan(stats_value(t, 1, 3)), "an empty cell is missing");
    cr_expect(isnan(stats_value(t, 2, 0)), "an empty quoted cell is missing");
    cr_expect_eq(stats_value(t, 2, 2), 100);
    cr_expect_eq(stats_value(t, 2, 3), -2);
    /* Written back, names that need quotes get them, and read back the same. */
    snprintf(path, sizeof path, "%s/y.csv", dir);
    cr_assert_eq(stats_write_csv(t, path), STATS_OK);
    stats_table_t *u;
    cr_assert_eq(stats_read_csv(path, &u, err, sizeof err), STATS_OK, "%s", err);
    cr_expect_eq(memcmp(t->names, u->names, sizeof t->names), 0);
    cr_expect_eq(u->nrows, 3);
    stats_table_free(u);
    stats_table_free(t);

    /* Errors name the file, the line and the column. */
    cr_expect_eq(csv_error_of("e1.csv", "a,b\r\n1,2\r\n\r\n3,x1\r\n", err, sizeof err), STATS_ECSV);
    cr_expect(strstr(err, "e1.csv:4: column 2 (b): 'x1' is not a number"), "%s", err);
    cr_expect_eq(csv_error_of("e2.csv", "a,b\n1,2,3\n", err, sizeof err), STATS_ECSV);
    cr_expect(strstr(err, "e2.csv:2: 3 fields, the header has 2"), "%s", err);
    cr_expect_eq(csv_error_of("e3.csv", "a,b\n1,2\n4,5\"6\n", err, sizeof err), STATS_ECSV);
    cr_expect(strstr(err, "e3.csv:3: malformed CSV"), "%s", err);
    cr_expect_eq(csv_error_of("e4.csv", "a,b\n1,\"2\n3,4\n", err, sizeof err), STATS_ECSV);
    cr_expect(strstr(err, "end of file inside a quoted field opened after line 1"), "%s", err);
    cr_expect_eq(csv_error_of("e5.csv", "a,a\n1,2\n", err, sizeof err), STATS_ECSV);
    cr_expect(strstr(err, "column name 'a' repeated"), "%s", err);
    cr_expect_eq(csv_error_of("e6.csv", "", err, sizeof err), STATS_ECSV);
    cr_expect(strstr(err, "empty file"), "%s", err);
    /* A quoted value may span lines; the next record's error still names its line. */
    cr_expect_eq(csv_error_of("e7.csv", "a,b\n1,\"2\n\"\n3,?\n", err, sizeof err), STATS_ECSV);
    cr_expect(strstr(err, "e7.csv:4: column 2 (b): '?' is not a number"), "%s", err);
    cr_expect_eq(csv_error_of("e8.csv", "a,\"b\nc\"\n1,2\n", err, sizeof err), STATS_ECSV);
    cr_expect(strstr(err, "e8.csv:2: column 2: the name holds a control character"), "%s", err);

    /* The programs on such a file: keygen, encrypt, compute, decrypt; the report
     * names the first column without the BOM and quotes the name with a comma. */
    const char *C = test_bin("hestat-client");
    cr_assert_eq(sh("%s sample --rows 600 --seed 8 --out %s/t.csv", C, dir), 0);
    cr_assert_eq(sh("(printf '\\357\\273\\277'; sed -e '1s/\\([^,]*\\)/\"\\1\"/g' -e '1s/\"sysBP\"/\"Blood pressure, systolic\"/' "
                    "-e 's/$/\\r/' %s/t.csv) > %s/excel.csv", dir, dir), 0);
    cr_assert_eq(sh("head -c 40 %s/excel.csv | od -c | grep -q '357 273 277   \"   G   e   n   d   e   r   \"'", dir), 0,
                 "the test file has no BOM");
    cr_assert_eq(sh("%s keygen --schema %s/excel.csv --keys %s/k", C, dir, dir), 0);
    cr_assert_eq(sh("%s encrypt --study %s/k/study.hst --in %s/excel.csv --out %s/e.hst && "
                    "%s job --study %s/k/study.hst --out %s/j.hst %s/e.hst && %s compute %s/j.hst --out %s/r.hst > /dev/null && "
                    "%s decrypt --keys %s/k --in %s/r.hst --out %s/rep.csv --compare %s/excel.csv",
                    C, dir, dir, dir, C, dir, dir, dir, test_bin("hestat-server"), dir, dir, C, dir, dir, dir, dir),
                 0);
    char *rep = text_of("rep.csv");
    cr_expect(strstr(rep, "\nmean,Gender,,"), "no 'mean,Gender' row");
    cr_expect(!strstr(rep, "\xef\xbb\xbf"), "a BOM in the report");
    cr_expect(strstr(rep, "\nmean,\"Blood pressure, systolic\",,"), "the name with a comma is not quoted");
    free(rep);
    /* Every mean matches the plaintext: rel_error is the last field, the
     * plaintext two before it (whatever quoted commas come earlier). */
    cr_expect_eq(sh("awk -F, '/^mean,/ {n++; if (($(NF-2)+0 > 1e-3 || $(NF-2)+0 < -1e-3) && $NF+0 > 1e-6) bad=1} "
                    "END {exit bad || n < 16}' %s/rep.csv", dir), 0);
}

/* ---- a fake HTTP server: answers every request with one canned reply and
 * keeps the last request's head ---- */
typedef struct {
    int fd, port, requests, stop;
    const char *reply;
    char head[16384];
    double times[16];
    pthread_t thread;
} fake_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *fake_loop(void *arg)
{
    fake_t *f = arg;
    while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0) {
            usleep(10000);
            continue;
        }
        fcntl(c, F_SETFL, 0); /* blocking reads on the connection */
        char buf[sizeof f->head];
        size_t n = 0;
        while (n < sizeof buf - 1) {
            ssize_t r = read(c, buf + n, sizeof buf - 1 - n);
            if (r <= 0) break;
            n += (size_t)r;
            buf[n] = 0;
            if (strstr(buf, "\r\n\r\n")) break;
        }
        buf[n] = 0;
        memcpy(f->head, buf, n + 1);
        if (f->requests < 16) f->times[f->requests] = now_s();
        __atomic_add_fetch(&f->requests, 1, __ATOMIC_SEQ_CST);
        if (write(c, f->reply, strlen(f->reply)) < 0) {}
        close(c);
    }
    return NULL;
}

static void fake_start(fake_t *f, const char *reply)
{
    memset(f, 0, sizeof *f);
    f->reply = reply;
    f->fd = listen_loopback(&f->port);
    cr_assert_eq(pthread_create(&f->thread, NULL, fake_loop, f), 0);
}

static void fake_stop(fake_t *f)
{
    __atomic_store_n(&f->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(f->thread, NULL);
    close(f->fd);
}

/* ---- item 16: a busy server is retried, within a bound ---- */
Test(client, busy_server_retried_within_a_bound, .timeout = 60, .init = make_dir, .fini = remove_dir)
{
    const char *C = test_bin("hestat-client");
    fake_t f;
    fake_start(&f, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
                   "Content-Length: 38\r\nConnection: close\r\n\r\n{\"error\":\"busy: too many queued jobs\"}");
    double t0 = now_s();
    int rc = sh("%s fetch --server http://127.0.0.1:%d --study-id 0123456789abcdef0123456789abcdef --retries 2 "
                "--out %s/r.hst 2> %s/err", C, f.port, dir, dir);
    double took = now_s() - t0;
    fake_stop(&f);
    char *err = text_of("err");
    cr_expect_eq(rc, 1, "%s", err);
    cr_expect_eq(f.requests, 3, "one request and 2 retries, not %d", f.requests);
    cr_expect(strstr(err, "server busy (503), retry 1 of 2 in 1 s") && strstr(err, "retry 2 of 2 in 1 s"), "%s", err);
    cr_expect(strstr(err, "still busy after 2 retries"), "%s", err);
    cr_expect(f.requests >= 3 && f.times[1] - f.times[0] >= 0.9 && f.times[2] - f.times[1] >= 0.9,
              "Retry-After: 1 not honoured");
    cr_expect_lt(took, 20);
    cr_expect(!exists("r.hst") && !exists("r.hst.part"));
    free(err);
    /* --retries 0: one request, no wait. */
    fake_start(&f, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    t0 = now_s();
    rc = sh("%s fetch --server http://127.0.0.1:%d --study-id 0123456789abcdef0123456789abcdef --retries 0 "
            "--out %s/r.hst 2> /dev/null", C, f.port, dir);
    took = now_s() - t0;
    fake_stop(&f);
    cr_expect_eq(rc, 1);
    cr_expect_eq(f.requests, 1);
    cr_expect_lt(took, 5);
}

static pid_t server_pid;

static void stop_leftover_server(void)
{
    if (server_pid > 0) test_server_stop(server_pid, SIGKILL);
    server_pid = 0;
    remove_dir();
}

/* The study ID from `hestat-client submit`'s output in DIR/name. */
static void study_id(const char *name, char *sid, size_t len)
{
    char *out = text_of(name), *p = strstr(out, "study ");
    snprintf(sid, len, "%.32s", p ? p + 6 : "");
    free(out);
    cr_assert_eq(strlen(sid), 32, "no study id in: %s", sid);
}

Test(client, busy_real_server_then_success, .timeout = 120, .init = make_dir, .fini = stop_leftover_server)
{
    const char *C = test_bin("hestat-client");
    /* One worker, one queued job: a job of a few seconds running, one queued,
     * the client's job request is answered 503 until the queue has room. */
    cr_assert_eq(sh("%s sample --rows 2400 --seed 9 --out %s/t.csv", C, dir), 0);
    cr_assert_eq(sh("%s keygen --schema %s/t.csv --keys %s/keys", C, dir, dir), 0);
    cr_assert_eq(sh("%s encrypt --study %s/keys/study.hst --in %s/t.csv --out %s/t.hst", C, dir, dir, dir), 0);
    char spool[128], log[128], base[128], sid[40], url[256];
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(log, sizeof log, "%s/server.log", dir);
    const char *args[] = {"--queue", "1", "--workers", "1", NULL};
    server_pid = test_server_start(spool, log, base, sizeof base, args);
    cr_assert_gt(server_pid, 0, "server did not start");
    cr_assert_eq(sh("%s submit --server %s --study %s/keys/study.hst %s/t.hst > %s/sub.out", C, base, dir, dir, dir), 0);
    study_id("sub.out", sid, sizeof sid);
    snprintf(url, sizeof url, "%s/studies/%s/jobs?stats=all", base, sid);
    /* Job A running (the worker has taken it), then job B queued. */
    http_result_t r;
    cr_assert_eq(http_request("POST", url, NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 202, "job A: %ld %s", r.status, r.body ? r.body : "");
    char *j = r.body ? strstr(r.body, "\"job\":\"") : NULL, status[256];
    cr_assert_not_null(j, "%s", r.body);
    snprintf(status, sizeof status, "%s/studies/%s/jobs/%.32s", base, sid, j + 7);
    free(r.body);
    int running = 0;
    for (int i = 0; i < 200 && !running; i++) {
        cr_assert_eq(http_request("GET", status, NULL, NULL, NULL, &r), 0, "%s", r.error);
        running = r.body && strstr(r.body, "\"running\"");
        cr_assert(!r.body || !strstr(r.body, "\"done\""), "job A finished before the test could queue B");
        free(r.body);
        if (!running) usleep(5000);
    }
    cr_assert(running, "job A never ran");
    cr_assert_eq(http_request("POST", url, NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 202, "job B: %ld %s", r.status, r.body ? r.body : "");
    free(r.body);
    double t0 = now_s();
    int rc = sh("%s fetch --server %s --study-id %s --out %s/r.hst 2> %s/err", C, base, sid, dir, dir);
    double took = now_s() - t0;
    char *err = text_of("err");
    cr_expect_eq(rc, 0, "%s", err);
    cr_expect(strstr(err, "server busy (503), retry 1 of 5"), "the client met no 503 (jobs too fast?): %s", err);
    free(err);
    cr_expect_lt(took, 60);
    cr_expect_eq(sh("%s decrypt --keys %s/keys --in %s/r.hst --out %s/rep.csv --compare %s/t.csv", C, dir, dir, dir,
                    dir), 0);
    test_server_stop(server_pid, SIGTERM);
    server_pid = 0;
}

/* ---- item 17: a report is written whole or not at all ---- */
Test(client, failed_report_leaves_nothing_behind, .timeout = 120, .init = make_dir, .fini = remove_dir)
{
    const char *C = test_bin("hestat-client");
    small_study(C);
    cr_assert_eq(sh("%s job --study %s/keys/study.hst --out %s/j.hst %s/t.hst && %s compute %s/j.hst --out %s/r.hst "
                    "> /dev/null", C, dir, dir, dir, test_bin("hestat-server"), dir, dir), 0);
    cr_assert_eq(sh("%s decrypt --keys %s/keys --in %s/r.hst --out %s/rep.csv", C, dir, dir, dir), 0);
    cr_assert_eq(sh("cp %s/rep.csv %s/old.csv && touch -d '2001-01-01' %s/rep.csv", dir, dir, dir), 0);
    /* A regression the study was not made for: exit 1, nothing new written. */
    cr_expect_eq(sh("%s decrypt --keys %s/keys --in %s/r.hst --out %s/new.csv --stats mean,regress:sysBP~age "
                    "2> %s/err", C, dir, dir, dir, dir), 1);
    cr_expect_eq(sh("grep -q 'not created for this regression' %s/err", dir), 0);
    cr_expect(!exists("new.csv"), "a failed decrypt left a report");
    /* The same over an older report: it stays as it was (content and time). */
    cr_expect_eq(sh("%s decrypt --keys %s/keys --in %s/r.hst --out %s/rep.csv --stats regress:sysBP~age "
                    "2> /dev/null", C, dir, dir, dir), 1);
    cr_expect_eq(sh("cmp -s %s/rep.csv %s/old.csv && [ \"$(date -r %s/rep.csv +%%Y)\" = 2001 ]", dir, dir, dir), 0,
                 "the older report was touched");
    cr_expect_eq(sh("%s decrypt --keys %s/keys --in %s/r.hst --out %s/rep.csv --stats hist:BMI:10:30:60 2> /dev/null",
                    C, dir, dir, dir), 1);
    cr_expect_eq(sh("cmp -s %s/rep.csv %s/old.csv", dir, dir), 0);
    /* A damaged result, a missing comparison table: no report either. */
    cr_assert_eq(sh("head -c 5000 %s/r.hst > %s/bad.hst", dir, dir), 0);
    cr_expect_eq(sh("%s decrypt --keys %s/keys --in %s/bad.hst --out %s/new.csv 2> /dev/null", C, dir, dir, dir), 1);
    cr_expect_eq(sh("%s decrypt --keys %s/keys --in %s/r.hst --out %s/new.csv --compare %s/none.csv 2> /dev/null", C,
                    dir, dir, dir, dir), 1);
    /* The secret key of another study (same schema and parameters). */
    cr_assert_eq(sh("%s keygen --schema %s/t.csv --keys %s/other && mkdir %s/mixed && cp %s/keys/study.hst %s/mixed/ && "
                    "cp %s/other/secret.key %s/mixed/", C, dir, dir, dir, dir, dir, dir, dir), 0);
    cr_expect_eq(sh("%s decrypt --keys %s/mixed --in %s/r.hst --out %s/new.csv 2> %s/err", C, dir, dir, dir, dir), 1);
    cr_expect_eq(sh("grep -q 'does not belong to this study' %s/err", dir), 0);
    cr_expect(!exists("new.csv"));
    cr_expect_eq(sh("ls %s | grep -q tmp", dir), 1, "a temporary file was left behind");
}

/* ---- item 18 (client half): tokens are never cut ---- */
static void write_token(const char *name, size_t n, int mode)
{
    char *t = malloc(n + 2);
    cr_assert_not_null(t);
    for (size_t i = 0; i < n; i++) t[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"[i % 66];
    t[n] = '\n';
    t[n + 1] = 0;
    write_text(name, t);
    free(t);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(chmod(path, (mode_t)mode), 0);
}

Test(client, long_tokens_travel_whole_or_are_refused, .timeout = 120, .init = make_dir, .fini = stop_leftover_server)
{
    const char *C = test_bin("hestat-client");
    /* A 1000-character token reaches the wire whole. */
    write_token("t1000", 1000, 0600);
    fake_t f;
    fake_start(&f, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    int rc = sh("%s fetch --server http://127.0.0.1:%d --token-file %s/t1000 --study-id 0123456789abcdef0123456789abcdef "
                "--out %s/r.hst 2> /dev/null", C, f.port, dir, dir);
    fake_stop(&f);
    cr_expect_eq(rc, 1);
    char *tok = text_of("t1000");
    tok[1000] = 0;
    char want[1100];
    snprintf(want, sizeof want, "Authorization: Bearer %s\r\n", tok);
    cr_expect(strstr(f.head, want) != NULL, "the token was not sent whole: %.300s", f.head);
    free(tok);
    /* Longer than 4096, readable by others, two lines, empty: refused here, no connection. */
    write_token("t5000", 5000, 0600);
    write_token("open", 40, 0644);
    write_text("two", "abc\ndef\n");
    write_text("empty", "");
    cr_assert_eq(sh("chmod 600 %s/two %s/empty", dir, dir), 0);
    int port, fd = listen_loopback(&port);
    struct {
        const char *file, *says;
    } bad[] = {{"t5000", "longer than 4096"}, {"open", "chmod 600"}, {"two", "more than one line"}, {"empty", "empty"}};
    for (size_t i = 0; i < 4; i++) {
        rc = sh("timeout 20 %s fetch --server http://127.0.0.1:%d --token-file %s/%s --study-id "
                "0123456789abcdef0123456789abcdef --out %s/r.hst 2> %s/err", C, port, dir, bad[i].file, dir, dir);
        char *err = text_of("err");
        cr_expect_eq(rc, 1, "%s: %s", bad[i].file, err);
        cr_expect(strstr(err, bad[i].says), "%s: '%s' not in %s", bad[i].file, bad[i].says, err);
        free(err);
    }
    cr_expect_eq(connections(fd), 0, "a refused token still connected");
    close(fd);
    /* With a real server holding the same 1000-character token: a round trip. */
    small_study(C);
    char spool[128], log[128], base[128], tfile[128];
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(log, sizeof log, "%s/server.log", dir);
    snprintf(tfile, sizeof tfile, "%s/t1000", dir);
    const char *args[] = {"--token-file", tfile, NULL};
    server_pid = test_server_start(spool, log, base, sizeof base, args);
    cr_assert_gt(server_pid, 0, "server did not start");
    cr_expect_eq(sh("%s submit --server %s --token-file %s --study %s/keys/study.hst %s/t.hst > %s/sub.out 2> %s/err",
                    C, base, tfile, dir, dir, dir, dir), 0, "the server refused the long token: %s", text_of("err"));
    write_token("t999", 999, 0600);
    cr_expect_eq(sh("%s submit --server %s --token-file %s/t999 --study %s/keys/study.hst %s/t.hst > /dev/null 2> %s/err",
                    C, base, dir, dir, dir, dir), 1, "a token one character short was accepted");
    test_server_stop(server_pid, SIGTERM);
    server_pid = 0;
}
