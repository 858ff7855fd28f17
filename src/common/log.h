/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging to stderr or a file; a program chooses once at start-up. */
#ifndef TT_LOG_H
#define TT_LOG_H

#include <stdbool.h>

enum tt_log_level {
        TT_LOG_ERROR,
        TT_LOG_WARN,
        TT_LOG_INFO,
        TT_LOG_DEBUG,
};

/* Log to path (append), or to stderr when path is NULL. Returns negative errno on failure. */
int tt_log_open(const char *path);
/* The most verbose level that is written (default TT_LOG_INFO). */
void tt_log_set_level(enum tt_log_level level);
/* Stop writing anything, e.g. while filesystems are frozen; true turns logging back on. */
void tt_log_enable(bool on);
/* The program name put in front of every line. */
void tt_log_set_ident(const char *ident);
void tt_log(enum tt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define tt_err(...)   tt_log(TT_LOG_ERROR, __VA_ARGS__)
#define tt_warn(...)  tt_log(TT_LOG_WARN, __VA_ARGS__)
#define tt_info(...)  tt_log(TT_LOG_INFO, __VA_ARGS__)
#define tt_debug(...) tt_log(TT_LOG_DEBUG, __VA_ARGS__)

#endif
