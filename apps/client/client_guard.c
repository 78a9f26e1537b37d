/* hestat-client: what may leave this machine.
 *
 * Uploads are checked before any connection is opened: the file is walked
 * by its hestat frame headers (docs/format.md: 48 bytes, the payload length
 * at offset 24) without reading a payload, so a secret key, a whole file of
 * anything else (a SEAL secret key, a CSV) or a truncated file is refused
 * here rather than by the server after it has received it.
 *
 * The bearer token is read with read(2) into guarded memory (sodium_malloc)
 * of its final size, never through stdio buffers or a realloc, and wiped
 * when freed. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "apps/client/client.h"

static const unsigned char hestat_magic[8] = {'H', 'E', 'S', 'T', 'A', 'T', '\r', '\n'};

static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static const char *kind_name(client_upload_t kind)
{
    return kind == CLIENT_UPLOAD_STUDY ? "study" : kind == CLIENT_UPLOAD_TABLE ? "table" : "share bundle";
}

/* SEAL files start with the magic 0xA15E (little-endian) and the header size 16. */
static int is_seal(const unsigned char *h, size_t n) { return n >= 3 && h[0] == 0x5e && h[1] == 0xa1 && h[2] == 16; }

static int refuse(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(const char *path, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "hestat-client: %s: %s; nothing was sent\n", path, msg);
    return 1;
}

/* Reads exactly n bytes at off; 0 or -1. */
static int read_at(int fd, void *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        done += (size_t)r;
    }
    return 0;
}

static int walk_frames(const char *path, int fd, uint64_t size, client_upload_t kind)
{
    uint64_t off = 0;
    unsigned long long frame = 0;
    while (off < size) {
        unsigned char h[CKKS_HEADER_BYTES];
        size_t have = size - off < sizeof h ? (size_t)(size - off) : sizeof h;
        if (read_at(fd, h, have, (off_t)off)) return client_fail(path, strerror(errno ? errno : EIO));
        frame++;
        if (have < 8 || memcmp(h, hestat_magic, 8)) {
            if (frame == 1 && is_seal(h, have))
                return refuse(path, "a Microsoft SEAL file (it may hold a secret key), not a hestat %s", kind_name(kind));
            if (frame == 1)
                return refuse(path, "not a hestat file (a sequence of hestat frames); it may hold a secret key");
            return refuse(path, "bytes after frame %llu (offset %llu) are not a hestat frame", frame - 1,
                          (unsigned long long)off);
        }
        if (have < sizeof h) return refuse(path, "frame %llu is cut short (the file ends inside its header)", frame);
        unsigned type = (unsigned)le(h + 10, 2), version = (unsigned)le(h + 8, 2);
        uint64_t plen = le(h + 24, 8);
        if (type == CKKS_OBJ_SECRET_KEY)
            return refuse(path, "frame %llu is a secret key: a secret key never leaves this machine (upload the "
                          "study and encrypted tables only)", frame);
        if (version != CKKS_FORMAT_VERSION)
            return refuse(path, "frame %llu has format version %u, this client reads version %d", frame, version,
                          CKKS_FORMAT_VERSION);
        if (plen > size - off - sizeof h)
            return refuse(path, "frame %llu claims %llu payload bytes, beyond the end of the file (truncated?)",
                          frame, (unsigned long long)plen);
        if (frame == 1) {
            unsigned want = kind == CLIENT_UPLOAD_STUDY ? CKKS_OBJ_PARAMS
                            : kind == CLIENT_UPLOAD_TABLE ? STATS_OBJ_TABLE : STATS_OBJ_MP_BUNDLE;
            if (type != want)
                return refuse(path, "not a hestat %s (its first frame is of type %u, a %s starts with type %u)",
                              kind_name(kind), type, kind_name(kind), want);
        }
        off += sizeof h + plen;
    }
    if (!frame) return refuse(path, "empty file, not a hestat file");
    return 0;
}

int client_check_upload(const char *path, client_upload_t kind)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return client_fail(path, strerror(errno));
    struct stat st;
    int err;
    if (fstat(fd, &st)) err = client_fail(path, strerror(errno));
    else if (!S_ISREG(st.st_mode)) err = client_fail(path, "not a regular file");
    else {
        errno = 0;
        err = walk_frames(path, fd, (uint64_t)st.st_size, kind);
    }
    close(fd);
    return err;
}

/* ---- the bearer token ----
 * The same rules as the server's (apps/server/secrets.c): the file holds one
 * line (a final LF or CRLF allowed) of at most CLIENT_TOKEN_MAX printable
 * ASCII characters without spaces, and only its owner may read it. */
static const char *token_problem(const char *t, size_t n)
{
    if (!n) return "is empty";
    if (n > CLIENT_TOKEN_MAX) return "is longer than 4096 characters (refused rather than cut)";
    if (memchr(t, '\n', n) || memchr(t, '\r', n)) return "has more than one line";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
            return "holds a space or a character that cannot travel in an HTTP header";
    return NULL;
}

int client_token_read(const char *path, char **token)
{
    *token = NULL;
    if (!path) return 0;
    if (sodium_init() < 0) return client_fail("libsodium", "cannot initialise");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        int err = client_fail(path, strerror(errno));
        if (fd >= 0) close(fd);
        return err;
    }
    char msg[200];
    if (!S_ISREG(st.st_mode)) snprintf(msg, sizeof msg, "the token file is not a regular file");
    else if (st.st_mode & 077)
        snprintf(msg, sizeof msg, "the token file is readable by group or others (mode %04o): chmod 600 %.80s",
                 (unsigned)(st.st_mode & 07777), path);
    else if (st.st_size > CLIENT_TOKEN_MAX + 2) snprintf(msg, sizeof msg, "the token is longer than %d characters "
                                                         "(refused rather than cut)", CLIENT_TOKEN_MAX);
    else msg[0] = 0;
    if (msg[0]) {
        close(fd);
        return client_fail(path, msg);
    }
    size_t len = (size_t)st.st_size;
    char *t = sodium_malloc(len + 1);
    if (!t) {
        close(fd);
        return client_fail("token", "out of memory");
    }
    if (read_at(fd, t, len, 0)) {
        int err = client_fail(path, strerror(errno ? errno : EIO));
        close(fd);
        sodium_free(t);
        return err;
    }
    close(fd);
    t[len] = 0;
    size_t n = len;
    if (n && t[n - 1] == '\n') n--;
    if (n && t[n - 1] == '\r') n--;
    const char *why = token_problem(t, n);
    if (why) {
        sodium_free(t); /* wipes */
        snprintf(msg, sizeof msg, "the token %s", why);
        return client_fail(path, msg);
    }
    sodium_memzero(t + n, len + 1 - n);
    *token = t;
    return 0;
}

void client_token_free(char *token)
{
    if (token) sodium_free(token);
}
