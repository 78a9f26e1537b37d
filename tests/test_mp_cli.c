/* Multiparty studies as users run them (issue 11, the stats/ and apps/
 * layers): real hestat-client and hestat-server programs, files and a real
 * server on loopback. Three parties each hold a key share and a third of a
 * generated table; the analyst decrypts the released result and it is
 * compared with the plaintext statistics (means 1e-6 relative, sd 1e-5
 * relative, correlations 1e-5 absolute). Around it, what must be refused:
 * a missing party, a party twice, shares of another study, draft or
 * result, a replayed share, a secret key, the analyst's key where a
 * party's share is needed and a party's key where the analyst's is; and a
 * server restarted between the key rounds resumes where the spool says. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#define sh test_sh

static char dir[64];

/* The programs by absolute path: the commands run in the test directory. */
static const char *program(const char *name)
{
    static char paths[2][4096];
    char *out = paths[name[7] == 's'];
    cr_assert_not_null(realpath(test_bin(name), out), "%s", test_bin(name));
    return out;
}

/* full.csv of `rows` generated rows and p1..p3.csv, a third each. */
static void make_tables(const char *C, int rows)
{
    cr_assert_eq(sh("%s sample --rows %d --seed 11 --out %s/full.csv", C, rows, dir), 0);
    int third = rows / 3;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sh("cd %s && head -n 1 full.csv > p%d.csv && tail -n +%d full.csv | head -n %d >> p%d.csv", dir,
                        i + 1, 2 + i * third, i == 2 ? rows - 2 * third : third, i + 1), 0);
}

/* The report's statistics against the plaintext within the single-key bounds
 * (tests/test_stats.c's rule): means 1e-6 relative (1e-6 absolute below
 * 1e-3), sd 1e-5 relative, correlations 1e-5 absolute; with the key
 * switch's default smudging (STATS_MP_SMUDGE_BITS, docs/multiparty.md). */
static void expect_accurate(const char *report)
{
    cr_expect_eq(sh("awk -F, 'NR > 1 && $3 == \"\" && $1 == \"mean\" { m++; if ($5+0 >= 1e-3 || $5+0 <= -1e-3 ? $7+0 > 1e-6 : $6+0 > 1e-6) bad = bad \" mean:\" $2 } "
                    "NR > 1 && $3 == \"\" && $1 == \"sd\" { if ($7+0 > 1e-5) bad = bad \" sd:\" $2 } "
                    "NR > 1 && $1 == \"corr\" && $5 !~ /nan|NA/ { c++; if ($6+0 > 1e-5) bad = bad \" corr:\" $2 } "
                    "END { if (bad) print \"too far from the plaintext:\" bad; exit bad != \"\" || m != 16 || c < 100 }' %s",
                    report), 0, "accuracy of %s", report);
}

static int grep_file(const char *pattern, const char *file)
{
    return sh("grep -q -- '%s' %s/%s", pattern, dir, file);
}

/* ---- files: hestat-client mp-*, hestat-server mp-combine / mp-release ---- */
Test(mp_cli, three_parties_files, .timeout = 600)
{
    strcpy(dir, "/tmp/hestat-mpcli-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const char *C = program("hestat-client"), *S = program("hestat-server");
    make_tables(C, 4240);
    cr_assert_eq(sh("cd %s && %s mp-draft --schema full.csv --parties 3 --keys A > /dev/null", dir, C), 0);
    struct stat st;
    char path[256];
    snprintf(path, sizeof path, "%s/A/secret.key", dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(sh("cd %s && %s mp-keygen --draft A/draft.hst --party %d --keys P%d --out r1_%d.hst", dir, C, i, i,
                        i), 0);
    for (int i = 1; i <= 3; i++) {
        snprintf(path, sizeof path, "%s/P%d/share.key", dir, i);
        cr_assert_eq(stat(path, &st), 0);
        cr_expect_eq(st.st_mode & 0777, 0600);
        snprintf(path, sizeof path, "%s/P%d/ephemeral.key", dir, i);
        cr_assert_eq(stat(path, &st), 0);
        cr_expect_eq(st.st_mode & 0777, 0600);
    }
    /* A party missing, a party twice, a party number outside the study. */
    cr_expect_eq(sh("cd %s && %s mp-combine --draft A/draft.hst --out s.hst r1_1.hst r1_2.hst 2> err", dir, S), 1);
    cr_expect_eq(grep_file("party 3 are missing", "err"), 0);
    cr_expect_eq(sh("cd %s && %s mp-combine --draft A/draft.hst --out s.hst r1_1.hst r1_2.hst r1_2.hst 2> err", dir, S), 1);
    cr_expect_eq(grep_file("shares twice", "err"), 0);
    cr_expect_eq(sh("cd %s && %s mp-keygen --draft A/draft.hst --party 4 --keys P4 --out x.hst 2> /dev/null", dir, C), 2);
    cr_assert_eq(sh("cd %s && %s mp-combine --draft A/draft.hst --out r1sum.hst r1_3.hst r1_1.hst r1_2.hst > /dev/null",
                    dir, S), 0);
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(sh("cd %s && %s mp-keygen --draft A/draft.hst --party %d --keys P%d --round1 r1sum.hst --out r2_%d.hst",
                        dir, C, i, i, i), 0);
    cr_expect_neq(sh("test -e %s/P1/ephemeral.key", dir), 0, "round 2 removes the ephemeral key");
    /* Round 2 twice: the ephemeral key is gone. */
    cr_expect_eq(sh("cd %s && %s mp-keygen --draft A/draft.hst --party 1 --keys P1 --round1 r1sum.hst --out x.hst 2> err",
                    dir, C), 1);
    cr_expect_eq(grep_file("ephemeral.key", "err"), 0);
    /* A round-1 file where round 2 is wanted. */
    cr_expect_eq(sh("cd %s && %s mp-combine --draft A/draft.hst --round1 r1sum.hst --out study.hst r1_1.hst r2_2.hst r2_3.hst 2> err",
                    dir, S), 1);
    cr_assert_eq(sh("cd %s && %s mp-combine --draft A/draft.hst --round1 r1sum.hst --out study.hst r2_1.hst r2_2.hst r2_3.hst > /dev/null",
                    dir, S), 0);
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(sh("cd %s && %s encrypt --study study.hst --in p%d.csv --out t%d.hst", dir, C, i, i), 0);
    cr_assert_eq(sh("cd %s && %s job --study study.hst --out job.hst t1.hst t2.hst t3.hst && %s compute job.hst --out result.hst > /dev/null",
                    dir, C, S), 0);
    /* The result as computed is under the collective key: the analyst's key refuses it. */
    cr_assert_eq(sh("cp %s/study.hst %s/A/study.hst", dir, dir), 0);
    cr_expect_eq(sh("cd %s && %s decrypt --keys A --in result.hst --out rep.csv 2> err", dir, C), 1);
    cr_expect_eq(grep_file("collective key", "err"), 0);
    /* The analyst's key cannot make a share; a party's key cannot decrypt. */
    cr_expect_eq(sh("cd %s && %s mp-share --study study.hst --party 1 --keys A --in result.hst --out x.hst 2> err", dir, C), 1);
    cr_expect_eq(grep_file("share.key", "err"), 0);
    cr_assert_eq(sh("cp %s/study.hst %s/P1/study.hst", dir, dir), 0);
    cr_expect_eq(sh("cd %s && %s decrypt --keys P1 --in result.hst --out rep.csv 2> err", dir, C), 1);
    cr_expect_eq(grep_file("decrypts nothing alone", "err"), 0);
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(sh("cd %s && %s mp-share --study study.hst --party %d --keys P%d --in result.hst --out ks_%d.hst", dir,
                        C, i, i, i), 0);
    /* One share missing: no release. A party's share twice: refused. */
    cr_expect_eq(sh("cd %s && %s mp-release --study study.hst --in result.hst --out rel.hst ks_1.hst ks_3.hst 2> err", dir,
                    S), 1);
    cr_expect_eq(grep_file("party 2 are missing", "err"), 0);
    cr_expect_neq(sh("test -e %s/rel.hst", dir), 0);
    cr_expect_eq(sh("cd %s && %s mp-release --study study.hst --in result.hst --out rel.hst ks_1.hst ks_1.hst ks_3.hst 2> err",
                    dir, S), 1);
    /* Shares of another result of the same study (a means job): refused. */
    cr_assert_eq(sh("cd %s && %s job --study study.hst --stats means --out job2.hst t1.hst && %s compute job2.hst --out result2.hst > /dev/null && "
                    "%s mp-share --study study.hst --party 2 --keys P2 --in result2.hst --out other.hst",
                    dir, C, S, C), 0);
    cr_expect_eq(sh("cd %s && %s mp-release --study study.hst --in result.hst --out rel.hst ks_1.hst other.hst ks_3.hst 2> err",
                    dir, S), 1);
    cr_expect_eq(grep_file("another result", "err"), 0);
    /* A secret key among the shares. */
    cr_expect_eq(sh("cd %s && %s mp-release --study study.hst --in result.hst --out rel.hst ks_1.hst P2/share.key ks_3.hst 2> err",
                    dir, S), 1);
    cr_expect_eq(grep_file("secret key", "err"), 0);
    cr_assert_eq(sh("cd %s && %s mp-release --study study.hst --in result.hst --out rel.hst ks_2.hst ks_3.hst ks_1.hst > /dev/null",
                    dir, S), 0);
    /* Released: the analyst decrypts it; a party's key still cannot. */
    cr_expect_eq(sh("cd %s && %s decrypt --keys P1 --in rel.hst --out rep.csv 2> /dev/null", dir, C), 1);
    cr_assert_eq(sh("cd %s && %s decrypt --keys A --in rel.hst --out report.csv --compare full.csv > /dev/null", dir, C), 0);
    snprintf(path, sizeof path, "%s/report.csv", dir);
    expect_accurate(path);
    /* Key shares of another study's draft are refused by this one. */
    cr_assert_eq(sh("cd %s && %s mp-draft --schema full.csv --parties 3 --keys B > /dev/null && "
                    "%s mp-keygen --draft B/draft.hst --party 1 --keys Q1 --out q1.hst", dir, C, C), 0);
    cr_expect_eq(sh("cd %s && %s mp-combine --draft A/draft.hst --out s.hst q1.hst r1_2.hst r1_3.hst 2> err", dir, S), 1);
    cr_expect_eq(grep_file("another draft", "err"), 0);
    cr_expect_eq(sh("%s --help > /dev/null && %s --help > /dev/null", C, S), 0);
    sh("rm -rf %s", dir);
}

/* ---- HTTP: the same protocol through hestat-server serve ---- */
static int server_pid = -1;
static char spool[128], logpath[128], base[128];

static void stop_server(void)
{
    if (server_pid > 0) test_server_stop(server_pid, SIGTERM);
    server_pid = -1;
}

static void cleanup(void)
{
    stop_server();
    if (dir[0]) sh("rm -rf '%s'", dir);
    dir[0] = 0;
}

static void start_server(void)
{
    server_pid = test_server_start(spool, logpath, base, sizeof base, NULL);
    cr_assert_gt(server_pid, 0, "the server starts");
}

/* curl's HTTP status of a POST of a file, or -1. */
static int post_status(const char *file, const char *path)
{
    char cmd[1024], out[16] = "";
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -w '%%{http_code}' --data-binary @%s/%s '%s%s'", dir, file, base, path);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    if (!fgets(out, sizeof out, p)) out[0] = 0;
    pclose(p);
    return atoi(out);
}

Test(mp_http, three_parties_over_http, .timeout = 600, .fini = cleanup)
{
    strcpy(dir, "/tmp/hestat-mphttp-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(logpath, sizeof logpath, "%s/server.log", dir);
    const char *C = program("hestat-client");
    make_tables(C, 4240);
    start_server();
    cr_assert_eq(sh("cd %s && %s mp-draft --schema full.csv --parties 3 --keys A --server %s > out", dir, C, base), 0);
    char id[64] = "", cmd[512];
    snprintf(cmd, sizeof cmd, "sed -n 's/^study //p' %s/out", dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_not_null(fgets(id, sizeof id, p));
    pclose(p);
    id[strcspn(id, "\n")] = 0;
    cr_assert_eq(strlen(id), 32);
    char url[256];
    snprintf(url, sizeof url, "--server %s --study-id %s", base, id);
    for (int i = 1; i <= 2; i++)
        cr_assert_eq(sh("cd %s && %s mp-keygen %s --party %d --keys P%d --round 1 > /dev/null", dir, C, url, i, i), 0);
    /* The state names the missing party; round 2 cannot start yet. */
    cr_expect_eq(sh("cd %s && %s mp-status %s > st && grep -q 'round1: missing the shares of party 3' st", dir, C, url), 0);
    cr_expect_eq(sh("cd %s && %s mp-keygen %s --party 1 --keys P1 --round 2 2> err", dir, C, url), 1);
    cr_expect_eq(grep_file("HTTP 409", "err"), 0);
    /* Refused: a replay, a secret key, a party outside the study, tables before the keys. */
    char path[200];
    snprintf(path, sizeof path, "/studies/%s/mp/round1?party=1", id);
    cr_expect_eq(post_status("P1/round1.hst", path), 409, "a replayed round-1 upload");
    cr_expect_eq(post_status("P1/share.key", path), 400, "a secret key");
    /* One spelling per party: party 1 as "01", "+1" or " 1" is refused (400), not a replay of party 1 (409). */
    static const char *const spellings[] = {"01", "%2B1", "%201"};
    for (size_t i = 0; i < 3; i++) {
        char odd[200];
        snprintf(odd, sizeof odd, "/studies/%s/mp/round1?party=%s", id, spellings[i]);
        cr_expect_eq(post_status("P1/round1.hst", odd), 400, "party=%s", spellings[i]);
    }
    snprintf(path, sizeof path, "/studies/%s/mp/round1?party=3", id);
    cr_expect_eq(post_status("P1/round1.hst", path), 400, "party 1's shares sent as party 3's");
    snprintf(path, sizeof path, "/studies/%s/tables", id);
    cr_expect_eq(post_status("full.csv", path), 409, "a table before the study is built");
    /* Party 1's shares offered to another study's draft (same schema, same parameters). */
    char other[64] = "";
    cr_assert_eq(sh("cd %s && %s mp-draft --schema full.csv --parties 3 --keys B --server %s | sed -n 's/^study //p' > other",
                    dir, C, base), 0);
    snprintf(cmd, sizeof cmd, "%s/other", dir);
    p = fopen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_not_null(fgets(other, sizeof other, p));
    fclose(p);
    other[strcspn(other, "\n")] = 0;
    snprintf(path, sizeof path, "/studies/%s/mp/round1?party=1", other);
    cr_expect_eq(post_status("P1/round1.hst", path), 400, "shares of another study's draft");
    /* A restart between the rounds: the protocol resumes from the spool. */
    stop_server();
    start_server();
    snprintf(url, sizeof url, "--server %s --study-id %s", base, id);
    cr_assert_eq(sh("cd %s && %s mp-keygen %s --party 3 --keys P3 --round 1 > /dev/null", dir, C, url), 0);
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(sh("cd %s && %s mp-keygen %s --party %d --keys P%d --round 2 > /dev/null", dir, C, url, i, i), 0);
    cr_expect_eq(sh("cd %s && %s mp-status %s --out A/study.hst | grep -q ready", dir, C, url), 0);
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(sh("cd %s && %s encrypt --study A/study.hst --in p%d.csv --out t%d.hst && %s submit %s --study A/study.hst t%d.hst > /dev/null",
                        dir, C, i, i, C, url, i), 0);
    cr_assert_eq(sh("cd %s && %s mp-job %s --out result.hst > job && %s mp-job %s --stats means --out result2.hst > job2",
                    dir, C, url, C, url), 0);
    char job[64] = "", job2[64] = "";
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "sed -n 's/^job //p' %s/%s", dir, k ? "job2" : "job");
        p = popen(cmd, "r");
        cr_assert_not_null(p);
        cr_assert_not_null(fgets(k ? job2 : job, 64, p));
        pclose(p);
        (k ? job2 : job)[strcspn(k ? job2 : job, "\n")] = 0;
    }
    for (int i = 1; i <= 2; i++)
        cr_assert_eq(sh("cd %s && %s mp-share %s --job %s --party %d --keys P%d > /dev/null", dir, C, url, job, i, i), 0);
    /* One share missing: not released, and the client says whose. */
    cr_expect_eq(sh("cd %s && %s mp-release %s --job %s --out rel.hst 2> err", dir, C, url, job), 1);
    cr_expect_eq(grep_file("party 3 are missing", "err"), 0);
    cr_expect_eq(sh("cd %s && %s mp-status %s --job %s | grep -q 'missing the shares of party 3'", dir, C, url, job), 0);
    /* A replayed share (409); a share of another result of the study (400). */
    snprintf(path, sizeof path, "/studies/%s/jobs/%s/shares?party=1", id, job);
    snprintf(cmd, sizeof cmd, "P1/keyswitch-%s.hst", job);
    cr_expect_eq(post_status(cmd, path), 409, "a replayed key-switch share");
    snprintf(path, sizeof path, "/studies/%s/jobs/%s/shares?party=1", id, job2);
    cr_expect_eq(post_status(cmd, path), 400, "a share of another result");
    /* A party's key cannot decrypt the result; the analyst's cannot either before the release. */
    cr_expect_eq(sh("cd %s && %s decrypt --keys A --in result.hst --out rep.csv 2> /dev/null", dir, C), 1);
    cr_assert_eq(sh("cd %s && %s mp-share %s --job %s --party 3 --keys P3 > /dev/null", dir, C, url, job), 0);
    cr_assert_eq(sh("cd %s && %s mp-release %s --job %s --out rel.hst > /dev/null", dir, C, url, job), 0);
    cr_expect_eq(sh("cd %s && %s decrypt --keys P2 --in rel.hst --out rep.csv 2> /dev/null", dir, C), 1);
    cr_assert_eq(sh("cd %s && %s decrypt --keys A --in rel.hst --out report.csv --compare full.csv > /dev/null", dir, C), 0);
    snprintf(path, sizeof path, "%s/report.csv", dir);
    expect_accurate(path);
}
