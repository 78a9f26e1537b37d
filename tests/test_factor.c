/* Categorical columns as they come (issue 12, item 4): text-valued CSV
 * columns are factors, their levels fixed in the study at keygen, rebuilt by
 * each contributor's client from the level names; an unknown level is an
 * error naming it; reports name levels. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats/stats.h"
#include "testutil.h"

#define run test_sh

static const char *write_file(const char *dir, const char *name, const char *text)
{
    static char path[4][160];
    static int i;
    char *p = path[i++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

Test(factor, csv_reads_texts_as_levels)
{
    char dir[] = "/tmp/hestat-factor-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    stats_table_t *t;
    char err[256] = "";
    const char *p = write_file(dir, "a.csv", "sex,x\nM,1\nF,2\nNA,3\n\"M\",4\n,5\n");
    cr_assert_eq(stats_read_csv(p, &t, err, sizeof err), STATS_OK, "%s", err);
    cr_assert_eq(t->nlevels[0], 2);
    cr_expect_str_eq(t->levels[0][0], "F");
    cr_expect_str_eq(t->levels[0][1], "M");
    cr_expect_null(t->levels[1]);
    cr_expect_eq(stats_value(t, 0, 0), 1);
    cr_expect_eq(stats_value(t, 1, 0), 0);
    cr_expect(isnan(stats_value(t, 2, 0)) && isnan(stats_value(t, 4, 0)));
    cr_expect_str_eq(stats_factor_level(t, 0, 3), "M");
    stats_table_free(t);
    /* A number among texts, text among numbers, a 17th level: errors naming the line. */
    p = write_file(dir, "b.csv", "sex,x\nM,1\n3,2\n");
    cr_expect_eq(stats_read_csv(p, &t, err, sizeof err), STATS_ECSV);
    cr_expect(strstr(err, ":3: column 1 (sex): '3' is a number in a column of texts"), "%s", err);
    p = write_file(dir, "c.csv", "x\n1\nM\n");
    cr_expect_eq(stats_read_csv(p, &t, err, sizeof err), STATS_ECSV);
    cr_expect(strstr(err, ":3: column 1 (x): 'M' is not a number"), "%s", err);
    char many[512] = "lvl\n";
    for (int i = 0; i < 17; i++) snprintf(many + strlen(many), sizeof many - strlen(many), "L%02d\n", i);
    p = write_file(dir, "d.csv", many);
    cr_expect_eq(stats_read_csv(p, &t, err, sizeof err), STATS_ECSV);
    cr_expect(strstr(err, "17th level"), "%s", err);
    run("rm -rf %s", dir);
}

/* 200 rows: sex M/F, smoker never/former/current (some missing), age, chd. */
static void write_table(const char *path, int only_m)
{
    static const char *sm[4] = {"never", "former", "current", "NA"};
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "sex,smoker,age,chd\n");
    for (int r = 0; r < 200; r++)
        fprintf(f, "%s,%s,%d,%d\n", only_m || r % 3 ? "M" : "F", sm[(r * 7) % 4], 30 + (r * 13) % 40, r % 5 == 0);
    fclose(f);
}

Test(factor, levels_fixed_at_keygen_named_in_reports, .timeout = 180)
{
    char dir[] = "/tmp/hestat-factor-XXXXXX", full[96], part[96], rep[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(full, sizeof full, "%s/full.csv", dir);
    snprintf(part, sizeof part, "%s/part.csv", dir);
    write_table(full, 0);
    write_table(part, 1);
    const char *C = test_bin("hestat-client"), *S = test_bin("hestat-server");
    cr_assert_eq(run("%s keygen --schema %s --keys %s/k --stats 'group:sex,table:smoker:chd'", C, full, dir), 0);
    /* Two contributors: the whole table, and one with only the level M. */
    cr_assert_eq(run("%s encrypt --study %s/k/study.hst --in %s --out %s/a.hst", C, dir, full, dir), 0);
    cr_assert_eq(run("%s encrypt --study %s/k/study.hst --in %s --out %s/b.hst", C, dir, part, dir), 0);
    cr_assert_eq(run("%s job --study %s/k/study.hst --out %s/j.hst %s/a.hst %s/b.hst && %s compute %s/j.hst --out %s/r.hst"
                     " > /dev/null", C, dir, dir, dir, dir, S, dir, dir), 0);
    snprintf(rep, sizeof rep, "%s/rep.csv", dir);
    cr_assert_eq(run("%s decrypt --keys %s/k --in %s/r.hst --out %s --stats 'group:sex,table:smoker:chd'", C, dir, dir,
                     rep), 0);
    /* F: rows r % 3 == 0 of the first table (67); M: the other 133 + 200. */
    cr_expect_eq(run("grep -q '^count,age,sex=F,67$' %s", rep), 0);
    cr_expect_eq(run("grep -q '^count,age,sex=M,333$' %s", rep), 0);
    /* smoker = sm[(7 r) mod 4]: never at r = 0 mod 4, current r = 2, former r = 3 (mod 4), NA r = 1;
     * chd at r = 0 mod 5: per table never&chd = r = 0 mod 20 (10), twice = 20. */
    cr_expect_eq(run("grep -q '^count,smoker:chd,smoker=never;chd=1,20$' %s", rep), 0);
    cr_expect_eq(run("grep -q '^count,smoker:chd,smoker=current;chd=0,80$' %s", rep), 0);
    cr_expect_eq(run("grep -q '^n,smoker:chd,,300$' %s", rep), 0);
    /* An unknown level at encrypt: an error naming it and the study's levels. */
    const char *bad = write_file(dir, "bad.csv", "sex,smoker,age,chd\nM,never,40,0\nM,sometimes,41,1\n");
    cr_expect_eq(run("%s encrypt --study %s/k/study.hst --in %s --out %s/bad.hst 2> %s/err", C, dir, bad, dir, dir), 1);
    cr_expect_eq(run("grep -q \"column smoker: 'sometimes' is not one of the study's levels (current, former, never)\" "
                     "%s/err && test ! -e %s/bad.hst", dir, dir), 0);
    /* A numeric column where the study has texts, and the reverse. */
    bad = write_file(dir, "bad2.csv", "sex,smoker,age,chd\n1,never,40,0\n");
    cr_expect_eq(run("%s encrypt --study %s/k/study.hst --in %s --out %s/bad.hst 2> %s/err", C, dir, bad, dir, dir), 1);
    cr_expect_eq(run("grep -q \"column sex: '1' is not one of the study's levels (F, M)\" %s/err", dir), 0);
    bad = write_file(dir, "bad3.csv", "sex,smoker,age,chd\nM,never,forty,0\n");
    cr_expect_eq(run("%s encrypt --study %s/k/study.hst --in %s --out %s/bad.hst 2> %s/err", C, dir, bad, dir, dir), 1);
    cr_expect_eq(run("grep -q \"column age: 'forty' is not one of the study's levels (none\" %s/err", dir), 0);
    run("rm -rf %s", dir);
}
