/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "common/fileutil.h"
#include "common/cleanup.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tt_write_all(int fd, const void *data, size_t len)
{
        const char *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static int write_replace(const char *path, const void *data, size_t len, mode_t mode,
                         bool durable, struct tt_error *err)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_free_ char *dircopy = NULL;
        _cleanup_close_ int fd = -1;
        _cleanup_close_ int dirfd = -1;
        int r;

        if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
                return tt_error_set(err, ENOMEM, "out of memory");
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return tt_error_errno(err, errno, "cannot create temporary file for '%s'", path);
        r = tt_write_all(fd, data, len);
        if (r == 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r == 0 && durable && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return tt_error_errno(err, -r, "cannot write '%s'", path);
        }
        dircopy = durable ? strdup(path) : NULL;
        if (dircopy) {
                dirfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dirfd >= 0)
                        fsync(dirfd);
        }
        return 0;
}

int tt_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct tt_error *err)
{
        return write_replace(path, data, len, mode, true, err);
}

int tt_write_file_replace(const char *path, const void *data, size_t len, mode_t mode,
                          struct tt_error *err)
{
        return write_replace(path, data, len, mode, false, err);
}

int tt_read_file(const char *path, size_t max, char **out, size_t *out_len, struct tt_error *err)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = max < 4096 ? max : 4096;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return tt_error_errno(err, errno, "cannot open '%s'", path);
        buf = malloc(cap + 1);
        if (buf == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        char *nbuf;

                        char probe;

                        if (cap >= max) {
                                /* Full: one more byte means the file is over the bound. */
                                ssize_t m = read(fd, &probe, 1);
                                if (m > 0)
                                        return tt_error_set(err, EFBIG,
                                                            "'%s' is larger than %zu bytes", path,
                                                            max);
                                break;
                        }
                        cap = cap * 2 > max ? max : cap * 2;
                        nbuf = realloc(buf, cap + 1);
                        if (nbuf == NULL)
                                return tt_error_set(err, ENOMEM, "out of memory");
                        buf = nbuf;
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return tt_error_errno(err, errno, "cannot read '%s'", path);
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        if (out_len)
                *out_len = len;
        *out = steal_pointer(&buf);
        return 0;
}

char *tt_read_line_file(const char *path)
{
        char *buf = NULL;
        size_t len = 0;

        if (tt_read_file(path, 65536, &buf, &len, NULL) < 0)
                return NULL;
        while (len > 0 && isspace((unsigned char)buf[len - 1]))
                buf[--len] = '\0';
        return buf;
}

int tt_parse_int64(const char *s, int base, int64_t *out)
{
        char *end;
        long long v;

        if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, base);
        if (errno == ERANGE)
                return -ERANGE;
        if (end == s || *end != '\0')
                return -EINVAL;
        *out = v;
        return 0;
}

int tt_parse_uint64(const char *s, int base, uint64_t *out)
{
        char *end;
        unsigned long long v;

        if (s == NULL || *s == '\0' || isspace((unsigned char)*s) || *s == '-')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, base);
        if (errno == ERANGE)
                return -ERANGE;
        if (end == s || *end != '\0')
                return -EINVAL;
        *out = v;
        return 0;
}

int tt_mkdir_p(const char *dir, mode_t mode, struct tt_error *err)
{
        char path[PATH_MAX];
        size_t len = strlen(dir);
        size_t i;

        if (len == 0 || len >= sizeof(path))
                return tt_error_set(err, ENAMETOOLONG, "bad directory name '%s'", dir);
        memcpy(path, dir, len + 1);
        for (i = 1; i <= len; i++) {
                if (path[i] != '/' && path[i] != '\0')
                        continue;
                path[i] = '\0';
                if (mkdir(path, mode) < 0 && errno != EEXIST)
                        return tt_error_errno(err, errno, "cannot create directory '%s'", path);
                if (i < len)
                        path[i] = '/';
        }
        return 0;
}
