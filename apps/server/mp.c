/* hestat-server: the multiparty files.
 *
 *   mp-combine --draft DRAFT --out SUM R1_1 .. R1_K
 *       the sum of every party's round-1 bundle (what round 2 needs, and the
 *       collective public and Galois keys' sums);
 *   mp-combine --draft DRAFT --round1 SUM --out STUDY R2_1 .. R2_K
 *       the multiparty study, from the round-1 sum and every round-2 bundle;
 *   mp-release --study STUDY --in RESULT --out RELEASED KS_1 .. KS_K
 *       the result switched to the analyst's key by every party's key-switch
 *       bundle.
 * Bundles are read one at a time (a sum in memory, one bundle beside it). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/server/mp.h"

static int say(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void *load(const char *path, size_t *len, char *err, size_t errlen)
{
    void *buf = NULL;
    int rc = ckks_file_read(path, SRV_MP_MAX_FILE, &buf, len);
    if (rc) say(err, errlen, "%s: %s", path, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
    return rc ? NULL : buf;
}

int srv_mp_load_draft(const char *path, stats_mp_draft_t **d, char *err, size_t errlen)
{
    size_t len;
    void *buf = load(path, &len, err, errlen);
    if (!buf) return -1;
    int rc = stats_mp_draft_read(buf, len, d);
    free(buf);
    return rc ? say(err, errlen, "%s: %s: %s", path, stats_strerror(rc), stats_error()) : 0;
}

int srv_mp_sum_files(const stats_mp_draft_t *d, const stats_study_t *s, const stats_enc_result_t *r,
                     const unsigned char *rdigest, stats_mp_round_t round, const char *const *paths, size_t n,
                     stats_mp_bundle_t **sum, char *err, size_t errlen)
{
    *sum = NULL;
    int parties = d ? d->parties : s->parties;
    unsigned char have[STATS_MP_MAX_PARTIES + 1] = {0};
    const char *from[STATS_MP_MAX_PARTIES + 1] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t len;
        void *buf = load(paths[i], &len, err, errlen);
        if (!buf) goto fail;
        stats_mp_bundle_t *b = NULL;
        int rc = round == STATS_MP_KEYSWITCH ? stats_mp_read_keyswitch(s, r, rdigest, -1, buf, len, &b)
                                             : stats_mp_read_keys(d, round, -1, buf, len, &b);
        free(buf);
        if (rc) {
            say(err, errlen, "%s: %s", paths[i], stats_error());
            goto fail;
        }
        int p = b->party;
        if (p == 0) {
            say(err, errlen, "%s: a sum of shares, not one party's", paths[i]);
        } else if (have[p]) {
            say(err, errlen, "%s: party %d's shares twice (also %s)", paths[i], p, from[p]);
        } else {
            have[p] = 1;
            from[p] = paths[i];
            rc = stats_mp_bundle_add(sum, b);
            if (rc) say(err, errlen, "%s: %s", paths[i], stats_error());
        }
        stats_mp_bundle_free(b);
        if (p == 0 || from[p] != paths[i] || rc) goto fail;
    }
    char missing[400];
    int nmissing = stats_mp_missing(have, parties, missing, sizeof missing);
    if (nmissing) {
        say(err, errlen, "the shares of %s %s are missing (all %d parties are needed)", nmissing > 1 ? "parties" : "party",
            missing, parties);
        goto fail;
    }
    return 0;
fail:
    stats_mp_bundle_free(*sum);
    *sum = NULL;
    return -1;
}

int srv_mp_study(const stats_mp_draft_t *d, const char *round1_sum, const char *const *round2, size_t n,
                 void **study, size_t *len, char *err, size_t errlen)
{
    size_t slen;
    void *buf = load(round1_sum, &slen, err, errlen);
    if (!buf) return -1;
    stats_mp_bundle_t *r1 = NULL, *r2 = NULL;
    int rc = stats_mp_read_keys(d, STATS_MP_ROUND1, 0, buf, slen, &r1);
    free(buf);
    if (rc) return say(err, errlen, "%s: %s", round1_sum, stats_error());
    if (srv_mp_sum_files(d, NULL, NULL, NULL, STATS_MP_ROUND2, round2, n, &r2, err, errlen)) {
        stats_mp_bundle_free(r1);
        return -1;
    }
    stats_study_t *s = NULL;
    rc = stats_mp_study_build(d, r1, r2, &s);
    if (!rc) rc = stats_study_write(s, study, len);
    stats_study_free(s);
    stats_mp_bundle_free(r1);
    stats_mp_bundle_free(r2);
    return rc ? say(err, errlen, "the study: %s: %s", stats_strerror(rc), stats_error()) : 0;
}

int srv_mp_release(const stats_study_t *s, const char *result, const char *const *shares, size_t n, void **out,
                   size_t *len, char *err, size_t errlen)
{
    if (!s->parties) return say(err, errlen, "not a multiparty study: nothing to release");
    size_t rlen;
    void *buf = load(result, &rlen, err, errlen);
    if (!buf) return -1;
    stats_enc_result_t *r = NULL;
    int rc = stats_result_read(s, buf, rlen, &r);
    unsigned char digest[32];
    stats_mp_result_digest(buf, rlen, digest);
    free(buf);
    if (rc) return say(err, errlen, "%s: %s", result, stats_error());
    if (r->released) {
        stats_enc_result_free(r);
        return say(err, errlen, "%s: released to the analyst already", result);
    }
    stats_mp_bundle_t *sum = NULL;
    if (srv_mp_sum_files(NULL, s, r, digest, STATS_MP_KEYSWITCH, shares, n, &sum, err, errlen)) {
        stats_enc_result_free(r);
        return -1;
    }
    rc = stats_mp_release(s, r, sum);
    if (!rc) rc = stats_result_write(s, r, out, len);
    stats_mp_bundle_free(sum);
    stats_enc_result_free(r);
    return rc ? say(err, errlen, "release: %s: %s", stats_strerror(rc), stats_error()) : 0;
}

/* ---- the commands ---- */
typedef struct {
    const char *draft, *round1, *study, *in, *out;
    const char *files[STATS_MP_MAX_PARTIES];
    size_t nfiles;
} mp_args_t;

static int usage(const char *msg, const char *arg)
{
    fprintf(stderr, "hestat-server: %s%s%s (try --help)\n", msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

static int parse_args(int argc, char **argv, mp_args_t *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        const char **str = !strcmp(argv[i], "--draft")    ? &a->draft
                           : !strcmp(argv[i], "--round1") ? &a->round1
                           : !strcmp(argv[i], "--study")  ? &a->study
                           : !strcmp(argv[i], "--in")     ? &a->in
                           : !strcmp(argv[i], "--out")    ? &a->out
                                                          : NULL;
        if (str) {
            if (i + 1 >= argc) return usage("missing value after", argv[i]);
            *str = argv[++i];
        } else if (argv[i][0] == '-') {
            return usage("unknown option", argv[i]);
        } else if (a->nfiles == STATS_MP_MAX_PARTIES) {
            return usage("more share files than the 64 parties a study may have", NULL);
        } else {
            a->files[a->nfiles++] = argv[i];
        }
    }
    return 0;
}

static int write_out(const char *path, void *buf, size_t len)
{
    int rc = ckks_file_write(path, buf, len, 0644);
    free(buf);
    if (rc) {
        fprintf(stderr, "hestat-server: %s: %s\n", path, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
        return 1;
    }
    return 0;
}

int srv_mp_combine_main(int argc, char **argv)
{
    mp_args_t a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    if (!a.draft || !a.out || !a.nfiles) return usage("mp-combine needs --draft, --out and the parties' files", NULL);
    char err[600];
    stats_mp_draft_t *d;
    if (srv_mp_load_draft(a.draft, &d, err, sizeof err)) {
        fprintf(stderr, "hestat-server: %s\n", err);
        return 1;
    }
    void *buf = NULL;
    size_t len = 0;
    int bad;
    if (a.round1) {
        bad = srv_mp_study(d, a.round1, a.files, a.nfiles, &buf, &len, err, sizeof err);
    } else {
        stats_mp_bundle_t *sum = NULL;
        bad = srv_mp_sum_files(d, NULL, NULL, NULL, STATS_MP_ROUND1, a.files, a.nfiles, &sum, err, sizeof err);
        if (!bad && (rc = stats_mp_bundle_write(d->ctx, d->digest, d->parties, sum, &buf, &len)))
            bad = snprintf(err, sizeof err, "the round-1 sum: %s", stats_strerror(rc)) || 1;
        stats_mp_bundle_free(sum);
    }
    stats_mp_draft_free(d);
    if (bad) {
        fprintf(stderr, "hestat-server: %s\n", err);
        return 1;
    }
    if (write_out(a.out, buf, len)) return 1;
    printf("wrote %s (%s of %zu parties)\n", a.out, a.round1 ? "the study" : "the round-1 sum", a.nfiles);
    return 0;
}

int srv_mp_release_main(int argc, char **argv)
{
    mp_args_t a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    if (!a.study || !a.in || !a.out || !a.nfiles)
        return usage("mp-release needs --study, --in, --out and the parties' key-switch files", NULL);
    char err[600];
    size_t len;
    void *buf = load(a.study, &len, err, sizeof err);
    stats_study_t *s = NULL;
    if (buf && (rc = stats_study_read(buf, len, &s, NULL)))
        snprintf(err, sizeof err, "%s: %s: %s", a.study, stats_strerror(rc), stats_error());
    free(buf);
    buf = NULL;
    int bad = !s || srv_mp_release(s, a.in, a.files, a.nfiles, &buf, &len, err, sizeof err);
    stats_study_free(s);
    if (bad) {
        fprintf(stderr, "hestat-server: %s\n", err);
        return 1;
    }
    if (write_out(a.out, buf, len)) return 1;
    printf("wrote %s (released to the analyst's key)\n", a.out);
    return 0;
}
