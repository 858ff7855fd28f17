/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small poll(2) loop: fd watches and one-shot timers. The agent has a handful of fds (the
 * channel, exec pipes, a signalfd), so poll over a flat array is simpler and as fast as epoll.
 * With no timer pending, poll() sleeps without a timeout: an idle agent never wakes up.
 */
#include "agent/agent.h"
#include "agent/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct loop_watch {
        int fd;             /* the watched fd, -1 once deleted */
        short events;       /* POLLIN/POLLOUT wanted */
        agent_io_fn fn;     /* called with revents */
        void *opaque;       /* caller's data */
};

struct loop_timer {
        uint64_t id;        /* handle given to the caller */
        uint64_t deadline;  /* agent_now_ms() value at which it fires */
        agent_timer_fn fn;  /* callback */
        void *opaque;       /* caller's data */
};

struct agent_loop {
        struct loop_watch *watches; /* dense array; deleted entries compacted after a pass */
        size_t nwatches, cap;
        struct pollfd *pfds;        /* scratch array for poll() */
        struct loop_timer *timers;  /* unsorted; there are few */
        size_t ntimers, tcap;
        uint64_t next_timer_id;
        bool dirty;                 /* a watch was deleted during a pass */
};

uint64_t agent_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct agent_loop *agent_loop_new(void)
{
        return calloc(1, sizeof(struct agent_loop));
}

void agent_loop_free(struct agent_loop *l)
{
        if (l == NULL)
                return;
        free(l->watches);
        free(l->pfds);
        free(l->timers);
        free(l);
}

static struct loop_watch *find_watch(struct agent_loop *l, int fd)
{
        for (size_t i = 0; i < l->nwatches; i++)
                if (l->watches[i].fd == fd)
                        return &l->watches[i];
        return NULL;
}

int agent_loop_add_fd(struct agent_ctx *ctx, int fd, short events, agent_io_fn fn, void *opaque)
{
        struct agent_loop *l = ctx->loop;
        struct loop_watch *w = find_watch(l, fd);

        if (w) {
                w->events = events;
                w->fn = fn;
                w->opaque = opaque;
                return 0;
        }
        if (l->nwatches == l->cap) {
                size_t ncap = l->cap ? l->cap * 2 : 16;
                struct loop_watch *nw = reallocarray(l->watches, ncap, sizeof(*nw));
                struct pollfd *np;

                if (nw == NULL)
                        return -ENOMEM;
                l->watches = nw;
                np = reallocarray(l->pfds, ncap, sizeof(*np));
                if (np == NULL)
                        return -ENOMEM;
                l->pfds = np;
                l->cap = ncap;
        }
        l->watches[l->nwatches++] = (struct loop_watch){fd, events, fn, opaque};
        return 0;
}

void agent_loop_mod_fd(struct agent_ctx *ctx, int fd, short events)
{
        struct loop_watch *w = find_watch(ctx->loop, fd);

        if (w)
                w->events = events;
}

void agent_loop_del_fd(struct agent_ctx *ctx, int fd)
{
        struct loop_watch *w = find_watch(ctx->loop, fd);

        if (w) {
                w->fd = -1;
                ctx->loop->dirty = true;
        }
}

uint64_t agent_loop_add_timer(struct agent_ctx *ctx, uint64_t ms, agent_timer_fn fn, void *opaque)
{
        struct agent_loop *l = ctx->loop;

        if (l->ntimers == l->tcap) {
                size_t ncap = l->tcap ? l->tcap * 2 : 8;
                struct loop_timer *nt = reallocarray(l->timers, ncap, sizeof(*nt));

                if (nt == NULL)
                        return 0;
                l->timers = nt;
                l->tcap = ncap;
        }
        l->timers[l->ntimers++] =
                (struct loop_timer){++l->next_timer_id, agent_now_ms() + ms, fn, opaque};
        return l->next_timer_id;
}

void agent_loop_cancel_timer(struct agent_ctx *ctx, uint64_t id)
{
        struct agent_loop *l = ctx->loop;

        for (size_t i = 0; i < l->ntimers; i++) {
                if (l->timers[i].id == id) {
                        l->timers[i] = l->timers[--l->ntimers];
                        return;
                }
        }
}

static void compact_watches(struct agent_loop *l)
{
        size_t j = 0;

        for (size_t i = 0; i < l->nwatches; i++)
                if (l->watches[i].fd >= 0)
                        l->watches[j++] = l->watches[i];
        l->nwatches = j;
        l->dirty = false;
}

/* Fire every due timer; returns the poll timeout until the next one (-1 = none). */
static int run_timers(struct agent_ctx *ctx)
{
        struct agent_loop *l = ctx->loop;
        uint64_t now = agent_now_ms();
        int timeout = -1;
        size_t i = 0;

        while (i < l->ntimers) {
                struct loop_timer t = l->timers[i];

                if (t.deadline <= now) {
                        /* Remove before calling: the callback may add or cancel timers. */
                        l->timers[i] = l->timers[--l->ntimers];
                        t.fn(ctx, t.opaque);
                        i = 0;
                        now = agent_now_ms();
                        continue;
                }
                i++;
        }
        for (i = 0; i < l->ntimers; i++) {
                uint64_t wait = l->timers[i].deadline - now;
                int w = wait > 86400000 ? 86400000 : (int)wait;

                if (timeout < 0 || w < timeout)
                        timeout = w;
        }
        return timeout;
}

int agent_loop_run_once(struct agent_ctx *ctx)
{
        struct agent_loop *l = ctx->loop;
        size_t n = 0, i;
        int timeout, r;

        timeout = run_timers(ctx);
        if (ctx->quit)
                return 0;
        if (l->dirty)
                compact_watches(l);
        for (i = 0; i < l->nwatches; i++) {
                l->pfds[n].fd = l->watches[i].events ? l->watches[i].fd : -1;
                l->pfds[n].events = l->watches[i].events;
                l->pfds[n].revents = 0;
                n++;
        }
        r = poll(l->pfds, n, timeout);
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        for (i = 0; i < n && !ctx->quit; i++) {
                struct loop_watch w;

                if (l->pfds[i].revents == 0)
                        continue;
                w = l->watches[i];
                /* Skip a watch deleted or replaced by an earlier callback in this pass. */
                if (w.fd < 0 || w.fd != l->pfds[i].fd)
                        continue;
                w.fn(ctx, w.fd, l->pfds[i].revents, w.opaque);
        }
        return 0;
}
