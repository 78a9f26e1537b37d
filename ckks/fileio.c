/* Whole-file reads with a size limit and atomic, mode-controlled writes. */
#include <errno.h>
#include <sodium.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckks_impl.h"

int ckks_file_read(const char *path, size_t max_bytes, void **buf, size_t *len)
{
    if (!path || !buf || !len) return CKKS_EINVAL;
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CKKS_EIO;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        if (!errno) errno = EINVAL;
        return CKKS_EIO;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        return CKKS_EFORMAT;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *p = malloc(size ? size : 1);
    if (!p) {
        close(fd);
        return CKKS_ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, p + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        sodium_memzero(p, got); /* the file may be a secret key */
        free(p);
        return CKKS_EIO;
    }
    *buf = p;
    *len = size;
    return CKKS_OK;
}

int ckks_mkdir_p(const char *path, int mode)
{
    if (!path || !path[0]) return CKKS_EINVAL;
    char *p = strdup(path);
    if (!p) return CKKS_ENOMEM;
    int rc = CKKS_OK;
    for (char *q = p + 1;; q++) {
        if (*q && *q != '/') continue;
        char c = *q;
        *q = 0;
        struct stat st;
        if (mkdir(p, (mode_t)mode) && (errno != EEXIST || stat(p, &st) || !S_ISDIR(st.st_mode))) {
            if (errno == EEXIST) errno = ENOTDIR;
            rc = CKKS_EIO;
            break;
        }
        *q = c;
        if (!c) break;
    }
    free(p);
    return rc;
}

int ckks_fsync_dir(const char *path)
{
    if (!path) return CKKS_EINVAL;
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return CKKS_ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return CKKS_EIO;
    int rc = fsync(fd) && errno != EINVAL ? CKKS_EIO : CKKS_OK; /* EINVAL: the file system cannot */
    close(fd);
    return rc;
}

int ckks_file_write(const char *path, const void *buf, size_t len, int mode)
{
    if (!path || (!buf && len)) return CKKS_EINVAL;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return CKKS_ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp); /* 0600 */
    if (fd < 0) {
        free(tmp);
        return CKKS_EIO;
    }
    int rc = fchmod(fd, (mode_t)mode) ? CKKS_EIO : CKKS_OK;
    const uint8_t *p = buf;
    size_t done = 0;
    while (rc == CKKS_OK && done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) rc = CKKS_EIO;
        else done += (size_t)w;
    }
    if (rc == CKKS_OK && fsync(fd)) rc = CKKS_EIO;
    if (close(fd) && rc == CKKS_OK) rc = CKKS_EIO;
    if (rc == CKKS_OK && rename(tmp, path)) rc = CKKS_EIO;
    if (rc == CKKS_OK) rc = ckks_fsync_dir(path);
    if (rc) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
    }
    free(tmp);
    return rc;
}
