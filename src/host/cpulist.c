/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libvirt's CPU list syntax (guestvcpus --cpulist): see cpulist.h. */
#include "host/cpulist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * libvirt's bitmap syntax: "0-3,5,^2" (ranges, single numbers, ^N excludes). Fills set
 * (CPULIST_MAX + 1 entries); -1 with libvirt's text when malformed.
 */
int cpulist_parse(const char *text, bool *set, struct tt_error *err)
{
        const char *p = text;

        if (*p == '\0')
                goto bad;
        while (*p) {
                bool neg = *p == '^';
                char *end;
                long a, b;

                if (neg)
                        p++;
                errno = 0;
                a = strtol(p, &end, 10);
                if (end == p || errno || a < 0 || a > CPULIST_MAX)
                        goto bad;
                b = a;
                p = end;
                if (*p == '-' && !neg) {
                        b = strtol(p + 1, &end, 10);
                        if (end == p + 1 || errno || b < a || b > CPULIST_MAX)
                                goto bad;
                        p = end;
                }
                for (long i = a; i <= b; i++)
                        set[i] = !neg;
                if (*p == ',' && p[1] != '\0')
                        p++;
                else if (*p)
                        goto bad;
        }
        return 0;
bad:
        return tt_error_set(err, EINVAL, "invalid argument: Failed to parse bitmap '%s'",
                            text);
}

/* The same syntax back ("0-2,5"), as libvirt's virBitmapFormat; the number of ids in it. */
int cpulist_format(const bool *set, char *buf, size_t size)
{
        size_t len = 0;
        int n = 0;

        buf[0] = '\0';
        for (long a = 0; a <= CPULIST_MAX; a++) {
                long b = a;

                if (!set[a])
                        continue;
                while (b < CPULIST_MAX && set[b + 1])
                        b++;
                n += (int)(b - a + 1);
                if (len < size)
                        len += (size_t)snprintf(buf + len, size - len, "%s%ld", len ? "," : "", a);
                if (b > a && len < size)
                        len += (size_t)snprintf(buf + len, size - len, "-%ld", b);
                a = b;
        }
        return n;
}

