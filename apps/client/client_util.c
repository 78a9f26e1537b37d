/* hestat-client: messages, files, directories and tables shared by its commands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "apps/client/client.h"

int client_fail(const char *what, const char *detail)
{
    fprintf(stderr, "hestat-client: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

int client_usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "hestat-client: %s%s%s (try --help)\n", msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

int client_stats_fail(const char *what, int rc)
{
    fprintf(stderr, "hestat-client: %s: %s%s%s\n", what, stats_strerror(rc), stats_error()[0] ? ": " : "",
            stats_error());
    return 1;
}

void *client_load(const char *path, size_t *len)
{
    void *buf;
    int rc = ckks_file_read(path, CLIENT_MAX_FILE, &buf, len);
    if (rc) {
        fprintf(stderr, "hestat-client: %s: %s\n", path, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
        return NULL;
    }
    return buf;
}

void client_free_secret(void *buf, size_t len)
{
    if (!buf) return;
    sodium_memzero(buf, len);
    free(buf);
}

static int save_with(const char *path, void *buf, size_t len, int mode, int secret)
{
    int rc = ckks_file_write(path, buf, len, mode);
    int saved = errno;
    if (secret) client_free_secret(buf, len);
    else free(buf);
    if (rc) return client_fail(path, rc == CKKS_EIO ? strerror(saved) : ckks_strerror(rc));
    return 0;
}

int client_save(const char *path, void *buf, size_t len, int mode) { return save_with(path, buf, len, mode, 0); }

int client_save_secret(const char *path, void *buf, size_t len) { return save_with(path, buf, len, 0600, 1); }

int client_mkdirs(const char *path, mode_t mode)
{
    size_t n = strlen(path);
    if (!n || n >= 4096) return client_fail(path, "bad directory name");
    char p[4096];
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        char c = p[i];
        p[i] = 0;
        struct stat st;
        if (mkdir(p, mode) && errno != EEXIST) return client_fail(p, strerror(errno));
        if (stat(p, &st) || !S_ISDIR(st.st_mode)) return client_fail(p, "exists and is not a directory");
        p[i] = c;
        while (p[i + 1] == '/') i++; /* "a//b" */
    }
    return 0;
}

int client_out_open(client_out_t *o, const char *path)
{
    o->f = NULL;
    o->path = path;
    if (snprintf(o->tmp, sizeof o->tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof o->tmp)
        return client_fail(path, "path too long");
    int fd = mkstemp(o->tmp);
    if (fd >= 0 && !(o->f = fdopen(fd, "w"))) {
        int saved = errno;
        close(fd);
        unlink(o->tmp);
        errno = saved;
    }
    if (!o->f) return client_fail(path, strerror(errno));
    fchmod(fd, 0644);
    return 0;
}

int client_out_close(client_out_t *o, int ok)
{
    int io = fflush(o->f) || fsync(fileno(o->f)), saved = errno;
    if (fclose(o->f) && !io) io = 1, saved = errno;
    o->f = NULL;
    if (ok && !io) {
        if (!rename(o->tmp, o->path) && !ckks_fsync_dir(o->path)) return 0;
        saved = errno;
    }
    unlink(o->tmp);
    return ok ? client_fail(o->path, strerror(saved)) : 1;
}

int client_csv_fail(int rc, const char *err)
{
    fprintf(stderr, "hestat-client: %s\n", err[0] ? err : stats_strerror(rc));
    return 1;
}

int client_read_csv(const char *path, stats_table_t **t, size_t **lines)
{
    char err[256];
    int rc = stats_read_csv_lines(path, t, lines, err, sizeof err);
    return rc ? client_csv_fail(rc, err) : 0;
}

void client_bar(void *arg, size_t done, size_t total)
{
    if (!isatty(2) || !total) return;
    int pct = (int)(100 * done / total), n = pct / 4;
    fprintf(stderr, "\r%-10s [%.*s%*s] %3d%%%s", (const char *)arg, n, "#########################", 25 - n, "", pct,
            done == total ? "\n" : "");
}

int client_make_context(const client_opts_t *o, ckks_context_t **ctx)
{
    int bits[CKKS_MAX_PRIMES];
    size_t count = 0;
    const char *s = o->coeff_bits;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (count == CKKS_MAX_PRIMES || end == s || (*end && *end != ','))
            return client_usage_error("bad --coeff-bits", o->coeff_bits);
        bits[count++] = (int)v;
        s = *end ? end + 1 : end;
    }
    ckks_params_t p;
    int rc = ckks_params_from_bits(&p, o->n, bits, count);
    if (!rc) rc = ckks_context_new(&p, ctx);
    if (rc) return client_fail("parameters", ckks_strerror(rc));
    return 0;
}

int client_load_study(const char *path, stats_study_t **s)
{
    size_t len;
    void *buf = client_load(path, &len);
    if (!buf) return 1;
    int rc = stats_study_read(buf, len, s, NULL);
    free(buf);
    if (rc) return client_stats_fail(path, rc);
    return 0;
}
