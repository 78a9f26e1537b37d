/* hestat-server compute reads tables chunk by chunk: a job file larger than
 * the address-space limit the computation runs under (ulimit -v) completes,
 * with the bytes of an unlimited run; the file reader refuses what the
 * buffer reader refuses (a truncated job, a damaged chunk). Skipped under
 * the sanitizers, whose shadow memory does not fit any small limit. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

Test(stream, job_larger_than_the_memory_limit_completes, .timeout = 900)
{
    if (getenv("HESTAT_SANITIZER_REPORTS")) {
        cr_skip_test("under the sanitizers: shadow memory does not fit a small ulimit -v");
        return;
    }
    char dir[] = "/tmp/hestat-stream-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char C[4096], S[4096];
    cr_assert_not_null(realpath(test_bin("hestat-client"), C));
    cr_assert_not_null(realpath(test_bin("hestat-server"), S));
    cr_assert_eq(test_sh("cd %s && %s sample --rows 75000 --seed 8 --out t.csv >/dev/null && "
                         "%s keygen --schema t.csv --keys k >/dev/null && "
                         "%s encrypt --study k/study.hst --in t.csv --out t1.hst >/dev/null 2>&1 && "
                         "%s job --study k/study.hst --stats all --out job.hst t1.hst >/dev/null && rm t1.hst",
                         dir, C, C, C, C),
                 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/job.hst", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    const long limit_kb = 220000;
    cr_assert_gt(st.st_size / 1024, limit_kb, "the job (%lld bytes) must be larger than the limit", (long long)st.st_size);
    cr_assert_eq(test_sh("cd %s && %s compute job.hst --out free.hst >/dev/null", dir, S), 0);
    int rc = test_sh("cd %s && (ulimit -v %ld && HESTAT_THREADS=1 MALLOC_ARENA_MAX=1 %s compute job.hst --out "
                     "limited.hst > limited.log 2>&1)",
                     dir, limit_kb, S);
    cr_assert_eq(rc, 0, "compute under ulimit -v %ld KB failed (%s/limited.log)", limit_kb, dir);
    cr_assert_eq(test_sh("cmp -s %s/free.hst %s/limited.hst", dir, dir), 0, "results differ");
    /* Damaged files: cut inside the last chunk, a flipped byte in a chunk. */
    cr_assert_neq(test_sh("cd %s && head -c %lld job.hst > cut.hst && %s compute cut.hst --out x.hst 2>cut.err", dir,
                          (long long)st.st_size - 1000, S),
                  0);
    cr_assert_eq(test_sh("grep -q 'missing, truncated' %s/cut.err", dir), 0);
    cr_assert_neq(test_sh("cd %s && cp job.hst flip.hst && printf 'X' | dd of=flip.hst bs=1 seek=%lld conv=notrunc "
                          "2>/dev/null && %s compute flip.hst --out y.hst 2>flip.err",
                          dir, (long long)st.st_size - 5000, S),
                  0);
    cr_assert_eq(test_sh("test ! -e %s/x.hst && test ! -e %s/y.hst", dir, dir), 0);
    test_sh("rm -rf %s", dir);
}

/* sample writes blocks of rows as it generates them: the rows do not depend
 * on the block boundaries (any --rows N is the first N rows of a longer
 * sample), and an unwritable destination leaves no file. */
Test(stream, sample_is_generated_block_by_block)
{
    char dir[] = "/tmp/hestat-sample-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char C[4096];
    cr_assert_not_null(realpath(test_bin("hestat-client"), C));
    cr_assert_eq(test_sh("cd %s && %s sample --rows 70000 --seed 3 --out a.csv && %s sample --rows 140001 --seed 3 --out b.csv && "
                         "head -n 70001 b.csv | cmp -s - a.csv && test $(wc -l < b.csv) = 140002",
                         dir, C, C),
                 0);
    cr_assert_neq(test_sh("%s sample --rows 10 --out %s/missing/x.csv 2>/dev/null", C, dir), 0);
    cr_assert_eq(test_sh("test -z \"$(ls %s | grep -v '^[ab].csv$')\"", dir), 0, "stray files left");
    test_sh("rm -rf %s", dir);
}
