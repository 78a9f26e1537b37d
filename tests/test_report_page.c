/* hestat-client decrypt --html: the page holds everything (Chart.js inlined,
 * the report's rows byte for byte, nothing a browser would fetch), and a
 * missing chart library is a clear error. (tests/report loads the page in
 * headless Chromium; these run under the sanitizers too.) */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckks/ckks.h"
#include "testutil.h"

#define run test_sh

static char dir[64];

static char *slurp(const char *path, size_t *len)
{
    void *buf;
    cr_assert_eq(ckks_file_read(path, (size_t)1 << 26, &buf, len), 0, "%s", path);
    char *s = realloc(buf, *len + 1);
    cr_assert_not_null(s);
    s[*len] = 0;
    return s;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void make_result(const char *stats)
{
    strcpy(dir, "/tmp/hestat-html-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const char *C = test_bin("hestat-client"), *S = test_bin("hestat-server");
    cr_assert_eq(run("%s sample --rows 600 --seed 5 --out %s/plain.csv", C, dir), 0);
    cr_assert_eq(run("%s keygen --schema %s/plain.csv --keys %s/keys --stats '%s'", C, dir, dir, stats), 0);
    cr_assert_eq(run("%s encrypt --study %s/keys/study.hst --in %s/plain.csv --out %s/t.hst", C, dir, dir, dir), 0);
    cr_assert_eq(run("%s job --study %s/keys/study.hst --out %s/job.hst %s/t.hst", C, dir, dir, dir), 0);
    cr_assert_eq(run("%s compute %s/job.hst --out %s/result.hst > /dev/null", S, dir, dir), 0);
}

Test(report_html, page_holds_the_rows_and_fetches_nothing, .timeout = 300)
{
    const char *stats = "mean,var,corr,hist:age:30:40:50:60:70,regress:sysBP~age+BMI";
    make_result(stats);
    cr_assert_eq(run("%s decrypt --keys %s/keys --in %s/result.hst --out %s/d.csv --compare %s/plain.csv --stats '%s' "
                     "--html %s/page.html", test_bin("hestat-client"), dir, dir, dir, dir, stats, dir), 0);
    char path[128];
    size_t len, clen;
    snprintf(path, sizeof path, "%s/page.html", dir);
    char *page = slurp(path, &len);
    snprintf(path, sizeof path, "%s/d.csv", dir);
    char *csv = slurp(path, &clen);
    cr_expect(!strncmp(page, "<!DOCTYPE html>", 15));
    cr_expect(strstr(page, "default-src 'none'") != NULL, "a CSP that forbids every load");
    cr_expect(strstr(page, "Chart.js v") != NULL, "Chart.js inlined");
    /* three scripts: Chart.js, the data, the page's; none with a src */
    cr_expect_eq(count(page, "<script"), 3);
    cr_expect_eq(count(page, "</script>"), 3);
    cr_expect_eq(count(page, " src="), 0);
    cr_expect_eq(count(page, "href="), 0);
    /* the data: JSON with no '<' in it, whose csv is the report byte for byte */
    const char *open = "<script type=\"application/json\" id=\"hestat-data\">";
    char *d = strstr(page, open);
    cr_assert_not_null(d);
    d += strlen(open);
    char *end = strstr(d, "</script>");
    cr_assert_not_null(end);
    *end = 0;
    cr_expect_null(strchr(d, '<'));
    json_error_t je;
    json_t *j = json_loads(d, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    json_t *c = json_object_get(j, "csv");
    cr_assert(json_is_string(c));
    cr_expect_eq(json_string_length(c), clen);
    cr_expect(!memcmp(json_string_value(c), csv, clen), "the page's rows are decrypted_results.csv's");
    json_t *st = json_object_get(j, "study");
    cr_expect_eq(json_integer_value(json_object_get(st, "poly_degree")), 8192);
    cr_expect(json_integer_value(json_object_get(st, "modulus_bits")) <=
              json_integer_value(json_object_get(st, "max_modulus_bits")));
    cr_expect(strstr(json_string_value(json_object_get(st, "security")), "128-bit") != NULL);
    json_decref(j);
    free(page);
    free(csv);
    run("rm -rf %s", dir);
}

Test(report_html, a_missing_chart_library_is_an_error, .timeout = 300)
{
    make_result("mean,var,corr");
    cr_expect_eq(run("HESTAT_CHARTJS=%s/none.js %s decrypt --keys %s/keys --in %s/result.hst --out %s/d.csv "
                     "--html %s/page.html 2> %s/err.txt", dir, test_bin("hestat-client"), dir, dir, dir, dir, dir), 1);
    cr_expect_eq(run("grep -q 'none.js: No such file or directory (Chart.js: Debian' %s/err.txt", dir), 0);
    char path[128];
    struct stat sb;
    snprintf(path, sizeof path, "%s/page.html", dir);
    cr_expect_neq(stat(path, &sb), 0, "no page written");
    /* a library that would end the script early is refused, not inlined */
    cr_expect_eq(run("printf 'var x = \"</ScRiPt>\";' > %s/bad.js && HESTAT_CHARTJS=%s/bad.js %s decrypt --keys %s/keys "
                     "--in %s/result.hst --out %s/d.csv --html %s/page.html 2> %s/err.txt", dir, dir,
                     test_bin("hestat-client"), dir, dir, dir, dir, dir), 1);
    cr_expect_eq(run("grep -q 'cannot be inlined' %s/err.txt", dir), 0);
    cr_expect_neq(stat(path, &sb), 0, "no page written");
    run("rm -rf %s", dir);
}
