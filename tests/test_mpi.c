/* hestat-server compute under mpirun: the result of 2 and 3 ranks is the
 * one-process result byte for byte, and a rank killed mid-job fails the run
 * (mpirun exits non-zero, no result file). Skipped where mpirun or the
 * server's MPI support is missing, and under the sanitizers (Open MPI's own
 * allocations would be reported). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <signal.h>

#include "testutil.h"

#define MPIRUN "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 mpirun"

static int mpi_ready(void)
{
    if (getenv("HESTAT_SANITIZER_REPORTS")) {
        cr_skip_test("under the sanitizers: Open MPI's own allocations would be reported");
        return 0;
    }
    if (test_sh("command -v mpirun >/dev/null 2>&1")) {
        cr_skip_test("mpirun not installed (openmpi-bin; scripts/install-deps.sh installs it)");
        return 0;
    }
    if (test_sh("%s --help | grep -q 'MPI support: built in'", test_bin("hestat-server"))) {
        cr_skip_test("hestat-server built without MPI (libopenmpi-dev)");
        return 0;
    }
    return 1;
}

/* The client's and the server's absolute paths (the commands run in dir). */
static void tool_paths(char *C, char *S)
{
    cr_assert_not_null(realpath(test_bin("hestat-client"), C));
    cr_assert_not_null(realpath(test_bin("hestat-server"), S));
}

/* In dir: a generated table t.csv of rows rows, a study k (keygen's extra
 * options opts), the table t1.hst and a W2 job job.hst. */
static void study_job(const char *dir, const char *C, int rows, int seed, const char *opts)
{
    cr_assert_eq(test_sh("cd %s && %s sample --rows %d --seed %d --out t.csv >/dev/null && "
                         "%s keygen --schema t.csv --keys k %s >/dev/null && "
                         "%s encrypt --study k/study.hst --in t.csv --out t1.hst >/dev/null 2>&1 && "
                         "%s job --study k/study.hst --stats all --out job.hst t1.hst >/dev/null",
                         dir, C, rows, seed, C, opts, C, C),
                 0);
}

/* A column-major study (one packed ciphertext holds all its sums, so one
 * rank finishes them): 2 and 3 ranks give the one-process bytes, in both
 * W2 modes. */
Test(mpi, column_major_ranks_give_the_one_process_bytes, .timeout = 600)
{
    if (!mpi_ready()) return;
    char dir[] = "/tmp/hestat-mpicol-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char C[4096], S[4096];
    tool_paths(C, S);
    study_job(dir, C, 2000, 8, "--layout columns");
    static const char *modes[] = {"eager", "deferred"};
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(test_sh("cd %s && HESTAT_W2_KEYSWITCH=%s %s compute job.hst --out r1.hst >/dev/null", dir,
                             modes[m], S),
                     0);
        for (int n = 2; n <= 3; n++) {
            cr_assert_eq(test_sh("cd %s && HESTAT_W2_KEYSWITCH=%s HESTAT_THREADS=1 " MPIRUN
                                 " -n %d %s compute job.hst --out r%d.hst > mpi%d.log 2>&1",
                                 dir, modes[m], n, S, n, n),
                         0, "mpirun -n %d failed (%s/mpi%d.log)", n, dir, n);
            cr_assert_eq(test_sh("cd %s && cmp -s r1.hst r%d.hst", dir, n), 0, "%s, %d ranks: result differs",
                         modes[m], n);
        }
        cr_assert_eq(test_sh("cd %s && %s decrypt --keys k --in r3.hst --out out.csv --compare t.csv >/dev/null", dir,
                             C),
                     0);
    }
    test_sh("rm -rf %s", dir);
}

Test(mpi, ranks_give_the_one_process_bytes, .timeout = 600)
{
    if (!mpi_ready()) return;
    char dir[] = "/tmp/hestat-mpi-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char C[4096], S[4096]; /* absolute: the commands run in dir */
    tool_paths(C, S);
    cr_assert_eq(test_sh("cd %s && %s sample --rows 2500 --seed 4 --out t.csv >/dev/null && "
                         "%s keygen --schema t.csv --keys k >/dev/null && "
                         "%s encrypt --study k/study.hst --in t.csv --out t1.hst >/dev/null 2>&1 && "
                         "head -n 700 t.csv > t2.csv && "
                         "%s encrypt --study k/study.hst --in t2.csv --out t2.hst >/dev/null 2>&1 && "
                         "%s job --study k/study.hst --stats all --out job.hst t1.hst t2.hst >/dev/null",
                         dir, C, C, C, C, C),
                 0);
    cr_assert_eq(test_sh("cd %s && %s compute job.hst --out r1.hst >/dev/null", dir, S), 0);
    for (int n = 2; n <= 3; n++) {
        cr_assert_eq(test_sh("cd %s && HESTAT_THREADS=1 " MPIRUN " -n %d %s compute job.hst --out r%d.hst > mpi%d.log 2>&1",
                             dir, n, S, n, n),
                     0, "mpirun -n %d failed (%s/mpi%d.log)", n, dir, n);
        cr_assert_eq(test_sh("cd %s && cmp -s r1.hst r%d.hst", dir, n), 0, "%d ranks: result differs", n);
        cr_assert_eq(test_sh("grep -q 'on %d MPI rank' %s/mpi%d.log", n, dir, n), 0);
    }
    /* The result decrypts to the same report as ever (the bytes are equal). */
    cr_assert_eq(test_sh("cd %s && %s decrypt --keys k --in r3.hst --out out.csv >/dev/null", dir, C), 0);
    /* In segments of at most 1,000 rows (3 chunks of 256): the 10 chunks of
     * the first table make 4, and the second table's 700 rows join the last
     * one (196 rows); the same bytes from 1, 2 and 3 ranks, and the same
     * counts in the report. */
    cr_assert_eq(test_sh("cd %s && HESTAT_SEGMENT_ROWS=1000 %s compute job.hst --out s1.hst >/dev/null", dir, S), 0);
    for (int n = 2; n <= 3; n++) {
        cr_assert_eq(test_sh("cd %s && HESTAT_SEGMENT_ROWS=1000 HESTAT_THREADS=1 " MPIRUN
                             " -n %d %s compute job.hst --out s%d.hst > smpi%d.log 2>&1",
                             dir, n, S, n, n),
                     0, "mpirun -n %d failed (%s/smpi%d.log)", n, dir, n);
        cr_assert_eq(test_sh("cd %s && cmp -s s1.hst s%d.hst", dir, n), 0, "%d ranks, segments: result differs", n);
    }
    cr_assert_eq(test_sh("cd %s && a=$(stat -c %%s r1.hst) && b=$(stat -c %%s s1.hst) && "
                         "test $b -gt $((4 * a - a / 10)) && test $b -lt $((4 * a + a / 10))", dir),
                 0, "not 4 segments");
    cr_assert_eq(test_sh("cd %s && %s decrypt --keys k --in s1.hst --out sout.csv >/dev/null && "
                         "grep '^count,' out.csv > c1 && grep '^count,' sout.csv > c2 && test -s c1 && cmp -s c1 c2",
                         dir, C),
                 0, "segments: the counts differ (%s)", dir);
    /* Rank 1 killed mid-job: mpirun fails and writes nothing. Open MPI 4.1's
     * mpirun has been seen to report the killed rank and then hang in its
     * teardown (PMIx "UNREACHABLE") on a loaded machine: a time limit ends
     * it, and the run has failed either way. */
    int rc = test_sh(
        "cd %s && (HESTAT_THREADS=1 timeout -k 10 180 env " MPIRUN " -n 2 %s compute job.hst --out killed.hst > kill.log 2>&1; "
        "echo $? > kill.rc) & "
        "cd %s; killed=0; for i in $(seq 400); do "
        "  for p in $(pgrep -f 'hestat-server compute job.hst'); do "
        "    if tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then "
        "      kill -9 $p && killed=1; break 2; fi; done; sleep 0.02; done; wait; "
        "test $killed = 1 && test \"$(cat kill.rc)\" != 0 && test ! -e killed.hst",
        dir, S, dir);
    cr_assert_eq(rc, 0, "a killed rank did not fail the run (see %s/kill.log)", dir);
    test_sh("rm -rf %s", dir);
}

/* serve --launcher: every job goes through mpirun (2 ranks) and the result
 * the client fetches is the file-mode result byte for byte; a launcher that
 * fails marks the job failed with its reason, and the server keeps serving. */
Test(mpi, serve_hands_jobs_to_the_launcher, .timeout = 600)
{
    if (!mpi_ready()) return;
    char dir[] = "/tmp/hestat-mpis-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char C[4096], S[4096];
    tool_paths(C, S);
    study_job(dir, C, 1200, 6, "");
    cr_assert_eq(test_sh("cd %s && %s compute job.hst --out local.hst >/dev/null", dir, S), 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    char spool[300], log[300], base[128];
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(log, sizeof log, "%s/server.log", dir);
    const char *args[] = {"--launcher", "mpirun -n 2", NULL};
    int pid = test_server_start(spool, log, base, sizeof base, args);
    cr_assert_gt(pid, 0, "server did not start (%s)", log);
    int rc = test_sh("cd %s && %s submit --server %s --study k/study.hst t1.hst > submit.out && "
                     "%s fetch --server %s --study-id $(sed -n 's/^study //p' submit.out) --out fetched.hst > fetch.out 2>&1",
                     dir, C, base, C, base);
    cr_assert_eq(rc, 0, "submit/fetch through the launcher failed (%s)", dir);
    cr_assert_eq(test_sh("cmp -s %s/local.hst %s/fetched.hst", dir, dir), 0, "launcher result differs");
    cr_assert_eq(test_sh("grep -q 'on 2 MPI rank' %s/spool/*/jobs/*.launch.log", dir), 0, "not run on 2 ranks");
    test_server_stop(pid, SIGTERM);
    /* A launcher that fails: the job fails with its reason, nothing is released. */
    const char *bad[] = {"--launcher", "false", NULL};
    snprintf(spool, sizeof spool, "%s/spool2", dir);
    pid = test_server_start(spool, log, base, sizeof base, bad);
    cr_assert_gt(pid, 0);
    rc = test_sh("cd %s && %s submit --server %s --study k/study.hst t1.hst > submit2.out && "
                 "%s fetch --server %s --study-id $(sed -n 's/^study //p' submit2.out) --out failed.hst > fetch2.out 2>&1",
                 dir, C, base, C, base);
    cr_assert_neq(rc, 0);
    cr_assert_eq(test_sh("grep -q 'launcher exited with status 1' %s/fetch2.out", dir), 0, "reason not reported");
    cr_assert_eq(test_sh("test ! -e %s/failed.hst", dir), 0);
    cr_assert_eq(test_sh("%s health --server %s >/dev/null", C, base), 0, "server stopped serving");
    test_server_stop(pid, SIGTERM);
    unsetenv("OMPI_MCA_rmaps_base_oversubscribe");
    test_sh("rm -rf %s", dir);
}

/* serve --launch-timeout: a launched job that runs past the limit (here a
 * launcher that hangs before starting the ranks) is stopped with its whole
 * process group and fails with the reason; the server keeps serving. Needs
 * no MPI. */
Test(mpi, a_launched_job_past_its_time_limit_fails, .timeout = 300)
{
    char dir[] = "/tmp/hestat-mpit-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char C[4096];
    cr_assert_not_null(realpath(test_bin("hestat-client"), C));
    cr_assert_eq(test_sh("cd %s && %s sample --rows 300 --seed 7 --out t.csv >/dev/null && "
                         "%s keygen --schema t.csv --keys k >/dev/null && "
                         "%s encrypt --study k/study.hst --in t.csv --out t1.hst >/dev/null 2>&1 && "
                         "printf '#!/bin/sh\\nsleep 117\\nexec \"$@\"\\n' > hang.sh && chmod +x hang.sh",
                         dir, C, C, C),
                 0);
    char spool[300], log[300], base[128], hang[300];
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(log, sizeof log, "%s/server.log", dir);
    snprintf(hang, sizeof hang, "%s/hang.sh", dir);
    const char *args[] = {"--launcher", hang, "--launch-timeout", "2", NULL};
    int pid = test_server_start(spool, log, base, sizeof base, args);
    cr_assert_gt(pid, 0, "server did not start (%s)", log);
    int rc = test_sh("cd %s && %s submit --server %s --study k/study.hst t1.hst > submit.out && "
                     "%s fetch --server %s --study-id $(sed -n 's/^study //p' submit.out) --out late.hst > fetch.out 2>&1",
                     dir, C, base, C, base);
    cr_assert_neq(rc, 0, "a job past its time limit was not failed");
    cr_assert_eq(test_sh("grep -q 'ran past --launch-timeout (2 s)' %s/fetch.out", dir), 0, "reason not reported");
    cr_assert_eq(test_sh("test ! -e %s/late.hst", dir), 0);
    /* Neither the launcher (a shell running hang.sh, then compute) nor its
     * sleep is left ([h], [s]: the patterns must not match this check's own
     * shell; the server's command line names hang.sh but not compute). */
    cr_assert_eq(test_sh("! pgrep -f '%s/[h]ang.sh .*compute' >/dev/null && ! pgrep -fx '[s]leep 117' >/dev/null", dir),
                 0, "the launcher's process group was left running");
    cr_assert_eq(test_sh("%s health --server %s >/dev/null", C, base), 0, "server stopped serving");
    test_server_stop(pid, SIGTERM);
    test_sh("rm -rf %s", dir);
}
