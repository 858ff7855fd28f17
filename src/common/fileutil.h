/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small, bounded file helpers: atomic replace, whole-file reads, sysfs values. */
#ifndef TT_FILEUTIL_H
#define TT_FILEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/tt_error.h"

/*
 * Replace path with data atomically: write a temporary file beside it, fsync it, rename it over
 * path, fsync the directory. mode is the new file's mode. A crash leaves old or new, never half.
 */
int tt_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct tt_error *err);
/*
 * The same replace-by-rename without the fsyncs: a crash of the process leaves old or new, but
 * a crash of the machine may lose the write. For state under /run, which a reboot clears anyway.
 */
int tt_write_file_replace(const char *path, const void *data, size_t len, mode_t mode,
                          struct tt_error *err);
/* write(2) until everything is written, retrying on EINTR; 0 or a negative errno. */
int tt_write_all(int fd, const void *data, size_t len);

/* Read a whole file of at most max bytes into a NUL-terminated malloc'd buffer. */
int tt_read_file(const char *path, size_t max, char **out, size_t *out_len, struct tt_error *err);

/* Read a small file (sysfs, procfs) and strip trailing white space; NULL on failure (errno set). */
char *tt_read_line_file(const char *path);

/* Parse a whole decimal string into int64 (base 10, or 16 with base=16); -EINVAL/-ERANGE. */
int tt_parse_int64(const char *s, int base, int64_t *out);
int tt_parse_uint64(const char *s, int base, uint64_t *out);

/* Make dir and its parents (mode for new ones); existing ones are fine. */
int tt_mkdir_p(const char *dir, mode_t mode, struct tt_error *err);

#endif
