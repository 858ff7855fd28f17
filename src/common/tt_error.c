/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "common/tt_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tt_error_setv(struct tt_error *err, int code, const char *fmt, va_list ap)
{
        if (err == NULL)
                return -1;
        free(err->msg);
        err->code = code;
        if (vasprintf(&err->msg, fmt, ap) < 0)
                err->msg = NULL;
        return -1;
}

int tt_error_set(struct tt_error *err, int code, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        tt_error_setv(err, code, fmt, ap);
        va_end(ap);
        return -1;
}

int tt_error_errno(struct tt_error *err, int code, const char *fmt, ...)
{
        va_list ap;
        char *head = NULL;

        if (err == NULL)
                return -1;
        va_start(ap, fmt);
        if (vasprintf(&head, fmt, ap) < 0)
                head = NULL;
        va_end(ap);
        tt_error_set(err, code, "%s: %s", head ? head : "error", strerror(code));
        free(head);
        return -1;
}

int tt_error_prefix(struct tt_error *err, const char *fmt, ...)
{
        va_list ap;
        char *head = NULL, *joined = NULL;

        if (err == NULL)
                return -1;
        va_start(ap, fmt);
        if (vasprintf(&head, fmt, ap) < 0)
                head = NULL;
        va_end(ap);
        if (head && asprintf(&joined, "%s: %s", head, err->msg ? err->msg : "error") >= 0) {
                free(err->msg);
                err->msg = joined;
        }
        free(head);
        return -1;
}

void tt_error_clear(struct tt_error *err)
{
        if (err == NULL)
                return;
        free(err->msg);
        err->msg = NULL;
        err->code = 0;
}
