/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One error type for the whole project: a code (usually an errno) and a message. */
#ifndef TT_ERROR_H
#define TT_ERROR_H

#include <stdarg.h>

struct tt_error {
        int code;  /* errno value, or 0 when the failure has no errno */
        char *msg; /* human-readable text, owned; NULL while no error is set */
};

/*
 * Set *err (when err is not NULL) to a formatted message and return a negative value, so a
 * failure is one line: `return tt_error_set(err, errno, "cannot open '%s'", path);`.
 * When code is not 0, nothing is appended: callers put strerror() in the text where they want it.
 * An error that is already set is replaced.
 */
int tt_error_set(struct tt_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int tt_error_setv(struct tt_error *err, int code, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));
/* Like tt_error_set() but appends ": strerror(code)". */
int tt_error_errno(struct tt_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Put "prefix: " in front of an existing message; returns a negative value too. */
int tt_error_prefix(struct tt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Free the message and reset the struct. */
void tt_error_clear(struct tt_error *err);

#endif
