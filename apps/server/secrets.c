/*
 * Secrets the server reads at start: the bearer token and the TLS key.
 * Each is read once into guarded memory (sodium_malloc) of its final size,
 * so no copy is ever left behind by a realloc or a stdio buffer, and
 * sodium_free wipes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/server/serve_impl.h"

static int read_exact(int fd, char *p, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, p + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

int srv_secret_read(const char *path, size_t max, int private_only, srv_secret_t *out, char *err, size_t errlen)
{
    out->data = NULL;
    out->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    int exposed = private_only && (st.st_mode & 077);
    const char *why = !S_ISREG(st.st_mode) ? "not a regular file"
                      : exposed ? "readable by group or others"
                      : (uint64_t)st.st_size > max ? "too large"
                                                   : NULL;
    if (why) {
        if (exposed)
            snprintf(err, errlen, "%s is %s (mode %04o): chmod 600 %s", path, why, (unsigned)(st.st_mode & 07777),
                     path);
        else
            snprintf(err, errlen, "%s is %s (at most %zu bytes)", path, why, max);
        close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    char *p = sodium_malloc(len + 1);
    if (!p || read_exact(fd, p, len)) {
        snprintf(err, errlen, "cannot read %s: %s", path, p ? strerror(errno) : "out of memory");
        if (p) sodium_free(p);
        close(fd);
        return -1;
    }
    close(fd);
    p[len] = 0;
    out->data = p;
    out->len = len;
    return 0;
}

void srv_secret_free(srv_secret_t *s)
{
    if (s->data) sodium_free(s->data); /* wipes */
    s->data = NULL;
    s->len = 0;
}

int srv_token_read(const char *path, srv_secret_t *out, char *err, size_t errlen)
{
    if (srv_secret_read(path, SRV_TOKEN_MAX + 2, 1, out, err, errlen)) {
        if (strstr(err, "too large"))
            snprintf(err, errlen, "the token in %s is longer than %d characters", path, SRV_TOKEN_MAX);
        return -1;
    }
    size_t n = out->len;
    if (n && out->data[n - 1] == '\n') n--;
    if (n && out->data[n - 1] == '\r') n--;
    const char *why = !n                                   ? "is empty"
                      : n > SRV_TOKEN_MAX                  ? "is longer than the limit"
                      : memchr(out->data, '\n', n) || memchr(out->data, '\r', n) ? "has more than one line"
                      : strlen(out->data) < n              ? "holds a NUL byte"
                                                           : NULL;
    for (size_t i = 0; !why && i < n; i++)
        if ((unsigned char)out->data[i] < 0x21 || (unsigned char)out->data[i] > 0x7e)
            why = "holds a space or a character that cannot travel in an HTTP header";
    if (why) {
        if (n > SRV_TOKEN_MAX)
            snprintf(err, errlen, "the token in %s is longer than %d characters", path, SRV_TOKEN_MAX);
        else
            snprintf(err, errlen, "the token in %s %s", path, why);
        srv_secret_free(out);
        return -1;
    }
    sodium_memzero(out->data + n, out->len - n);
    out->len = n;
    return 0;
}
