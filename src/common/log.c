/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The logger is process-wide state by nature (like syslog): it is set once at start-up and only
 * read afterwards, so it is the one place where a global is the simpler design.
 */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static FILE *log_file;
static enum tt_log_level log_level = TT_LOG_INFO;
static bool log_on = true;
static const char *log_ident = "tether";

int tt_log_open(const char *path)
{
        FILE *f;

        if (path == NULL) {
                log_file = NULL;
                return 0;
        }
        f = fopen(path, "ae");
        if (f == NULL)
                return -errno;
        setvbuf(f, NULL, _IOLBF, 0);
        if (log_file)
                fclose(log_file);
        log_file = f;
        return 0;
}

void tt_log_set_level(enum tt_log_level level)
{
        log_level = level;
}

void tt_log_enable(bool on)
{
        log_on = on;
}

void tt_log_set_ident(const char *ident)
{
        log_ident = ident;
}

void tt_log(enum tt_log_level level, const char *fmt, ...)
{
        static const char *const names[] = {"error", "warning", "info", "debug"};
        FILE *out = log_file ? log_file : stderr;
        struct timespec ts;
        va_list ap;

        /* fmt is never NULL; saying so keeps gcc's UBSan builds from warning about it. */
        if (!log_on || level > log_level || fmt == NULL)
                return;
        clock_gettime(CLOCK_REALTIME, &ts);
        fprintf(out, "%lld.%06ld: %s: %s: ", (long long)ts.tv_sec, ts.tv_nsec / 1000, log_ident,
                names[level]);
        va_start(ap, fmt);
        vfprintf(out, fmt, ap);
        va_end(ap);
        fputc('\n', out);
}
