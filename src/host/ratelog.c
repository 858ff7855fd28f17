/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "host/ratelog.h"
#include "common/log.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ratelog_init(struct ratelog *r, struct event_base *base)
{
        memset(r, 0, sizeof(*r));
        r->base = base;
}

static double elapsed_s(const struct timespec *since, const struct timespec *now)
{
        return (double)(now->tv_sec - since->tv_sec) + (now->tv_nsec - since->tv_nsec) / 1e9;
}

static void ratelog_log(struct ratelog *r, const char *line, unsigned suppressed)
{
        if (suppressed)
                tt_warn("%s (%u similar refusals suppressed)", line, suppressed);
        else
                tt_warn("%s", line);
        clock_gettime(CLOCK_MONOTONIC, &r->last);
        r->logged = true;
}

/* The second after a logged line is over: log the last suppressed one, with the count. */
static void ratelog_flush(evutil_socket_t fd, short what, void *opaque)
{
        struct ratelog *r = opaque;
        unsigned n = r->suppressed;

        if (n == 0)
                return;
        r->suppressed = 0;
        ratelog_log(r, r->line, n - 1);
}

void ratelog_note(struct ratelog *r, const char *fmt, ...)
{
        struct timespec now;
        char line[RATELOG_LINE_MAX];
        double since;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        clock_gettime(CLOCK_MONOTONIC, &now);
        since = elapsed_s(&r->last, &now);
        if (!r->logged || (since >= 1.0 && r->suppressed == 0)) {
                ratelog_log(r, line, 0);
                return;
        }
        r->suppressed++;
        memcpy(r->line, line, sizeof(line));
        if (r->flush == NULL && r->base)
                r->flush = evtimer_new(r->base, ratelog_flush, r);
        if (r->flush && !evtimer_pending(r->flush, NULL)) {
                double wait = since >= 1.0 ? 0 : 1.0 - since;
                struct timeval tv = {(time_t)wait, (suseconds_t)((wait - (time_t)wait) * 1e6)};

                evtimer_add(r->flush, &tv);
        }
}

void ratelog_close(struct ratelog *r)
{
        if (r->flush) {
                ratelog_flush(-1, 0, r);
                event_free(r->flush);
                r->flush = NULL;
        }
}
