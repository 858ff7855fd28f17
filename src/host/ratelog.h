/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Refusal lines at most once a second, so that a flood cannot fill the log: a line within a
 * second of the last one is counted, and the last of them is logged with the count when that
 * second ends ("... (N similar refusals suppressed)"). The control socket and the web console
 * share it.
 */
#ifndef TT_HOST_RATELOG_H
#define TT_HOST_RATELOG_H

#include <stdbool.h>
#include <time.h>

struct event;
struct event_base;

/* The longest line kept for a suppressed refusal. */
#define RATELOG_LINE_MAX 512

struct ratelog {
        struct event_base *base;     /* for the flush timer */
        struct event *flush;         /* logs the count at the end of the second */
        struct timespec last;        /* when the last line was logged */
        bool logged;                 /* last is meaningful */
        unsigned suppressed;         /* refusals since that line that were not logged */
        char line[RATELOG_LINE_MAX]; /* the last suppressed refusal's line */
};

void ratelog_init(struct ratelog *r, struct event_base *base);
/* Log a warning line now, or count it and log it with the count when the second ends. */
void ratelog_note(struct ratelog *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log what is still counted and free the timer. */
void ratelog_close(struct ratelog *r);

#endif
