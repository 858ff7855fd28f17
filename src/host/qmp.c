/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "host/qmp.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "wire/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct qmp_pending {
        struct qmp_pending *next; /* singly linked; replies come back in order */
        struct qmp *q;            /* owner, for the timer callback */
        uint64_t id;              /* our "id" member */
        char *execute;            /* command name, for error texts */
        qmp_reply_fn fn;          /* completion */
        void *opaque;             /* caller's data */
        struct event *timer;      /* deadline */
        unsigned timeout_ms;      /* for the timeout text */
};

struct qmp {
        struct event_base *base;         /* the daemon's loop */
        struct qmp_callbacks cb;         /* event and close notifications */
        void *opaque;                    /* given to cb */
        struct bufferevent *bev;         /* the monitor connection */
        struct wire_splitter *splitter;  /* framing of QEMU's output */
        struct wire_out *out;            /* framing of our commands */
        struct qmp_pending *pending;     /* commands awaiting a reply, oldest first */
        uint64_t next_id;                /* id of the next command */
        bool closed;                     /* EOF seen; closed callback already ran */
        struct qmp_queued *queue;        /* lines held back until the output drains */
};

/*
 * A command line that must wait until libevent's output buffer is empty: one carrying an fd
 * (sent with sendmsg, so that the fd rides on its own first byte) and everything after it.
 */
struct qmp_queued {
        struct qmp_queued *next; /* FIFO */
        char *line;              /* the serialised command with its CRLF */
        int fd;                  /* fd to pass (our duplicate), or -1 */
};

static int qmp_sink(void *opaque, const void *buf, size_t len)
{
        struct qmp *q = opaque;

        if (q->bev == NULL || q->closed)
                return -EPIPE;
        return bufferevent_write(q->bev, buf, len) == 0 ? 0 : -EIO;
}

struct qmp *qmp_new(struct event_base *base, const struct qmp_callbacks *cb, void *opaque)
{
        struct qmp *q = calloc(1, sizeof(*q));

        if (q == NULL)
                return NULL;
        q->base = base;
        q->cb = *cb;
        q->opaque = opaque;
        q->splitter = wire_splitter_new();
        q->out = wire_out_new(qmp_sink, q);
        q->next_id = 1;
        if (q->splitter == NULL || q->out == NULL) {
                qmp_free(q);
                return NULL;
        }
        return q;
}

static void pending_free(struct qmp_pending *p)
{
        if (p->timer)
                event_free(p->timer);
        free(p->execute);
        free(p);
}

/* Unlink p from the pending list. */
static void pending_unlink(struct qmp *q, struct qmp_pending *p)
{
        struct qmp_pending **pp;

        for (pp = &q->pending; *pp; pp = &(*pp)->next) {
                if (*pp == p) {
                        *pp = p->next;
                        return;
                }
        }
}

static void pending_fail(struct qmp_pending *p, const char *msg)
{
        struct tt_error err = {0};

        tt_error_set(&err, EIO, "%s", msg);
        if (p->fn)
                p->fn(p->opaque, NULL, &err);
        tt_error_clear(&err);
}

/* Fail every pending command (monitor gone). */
static void fail_all(struct qmp *q, const char *why)
{
        while (q->pending) {
                struct qmp_pending *p = q->pending;

                q->pending = p->next;
                pending_fail(p, why);
                pending_free(p);
        }
}

static void handle_reply(struct qmp *q, json_t *msg)
{
        json_t *id = json_object_get(msg, "id");
        struct qmp_pending *p;

        if (!json_is_integer(id))
                return;
        for (p = q->pending; p; p = p->next)
                if (p->id == (uint64_t)json_integer_value(id))
                        break;
        if (p == NULL)
                return; /* a reply after its timeout: the caller has moved on */
        pending_unlink(q, p);
        if (json_object_get(msg, "return")) {
                if (p->fn)
                        p->fn(p->opaque, json_object_get(msg, "return"), NULL);
        } else {
                json_t *e = json_object_get(msg, "error");
                const char *desc = json_string_value(json_object_get(e, "desc"));
                struct tt_error err = {0};

                tt_error_set(&err, EIO, "%s", desc ? desc : "QEMU reported an error");
                if (p->fn)
                        p->fn(p->opaque, NULL, &err);
                tt_error_clear(&err);
        }
        pending_free(p);
}

static int on_message(void *opaque, json_t *msg, const struct tt_error *perr)
{
        struct qmp *q = opaque;
        _owns_json_ json_t *owned = msg;

        if (msg == NULL) {
                tt_warn("QMP: malformed output from QEMU: %s", perr->msg);
                return 0;
        }
        if (json_object_get(msg, "QMP"))
                return 0; /* the greeting */
        if (json_object_get(msg, "event")) {
                const char *name = json_string_value(json_object_get(msg, "event"));

                /* Callers compare the name: an event whose name is not a string is malformed. */
                if (name == NULL)
                        tt_warn("QMP: malformed output from QEMU: an event without a name");
                else if (q->cb.event)
                        q->cb.event(q->opaque, name, json_object_get(msg, "data"));
                return 0;
        }
        handle_reply(q, msg);
        return 0;
}

static void mark_closed(struct qmp *q)
{
        if (q->closed)
                return;
        q->closed = true;
        fail_all(q, "QEMU monitor closed");
        if (q->cb.closed)
                q->cb.closed(q->opaque);
}

static void on_read(struct bufferevent *bev, void *opaque)
{
        struct qmp *q = opaque;
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t len;

        while ((len = evbuffer_get_contiguous_space(in)) > 0) {
                const unsigned char *data = evbuffer_pullup(in, (ssize_t)len);

                wire_splitter_feed(q->splitter, data, len, on_message, q);
                evbuffer_drain(in, len);
                if (q->closed)
                        return;
        }
}

static void on_bev_event(struct bufferevent *bev, short what, void *opaque)
{
        if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
                mark_closed(opaque);
}

static void on_write(struct bufferevent *bev, void *opaque);

static int connect_once(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                errno = ENAMETOOLONG;
                return -1;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int saved = errno;
                close(fd);
                errno = saved;
                return -1;
        }
        return fd;
}

int qmp_connect(struct qmp *q, const char *path, struct tt_error *err)
{
        int fd = connect_once(path);

        /*
         * tetherd creates the listening socket itself and hands it to QEMU, so it exists
         * (and queues us in its backlog) before QEMU has even started: no retry loop.
         */
        if (fd < 0)
                return tt_error_errno(err, errno, "cannot connect to QEMU monitor '%s'", path);
        evutil_make_socket_nonblocking(fd);
        q->bev = bufferevent_socket_new(q->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (q->bev == NULL) {
                close(fd);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        bufferevent_setcb(q->bev, on_read, on_write, on_bev_event, q);
        bufferevent_enable(q->bev, EV_READ | EV_WRITE);
        return qmp_command(q, "qmp_capabilities", NULL, 5000, NULL, NULL) < 0
                       ? tt_error_set(err, EIO, "cannot send qmp_capabilities")
                       : 0;
}

static void queued_free(struct qmp_queued *e)
{
        if (e->fd >= 0)
                close(e->fd);
        free(e->line);
        free(e);
}

/* sendmsg a line with fd attached; the part the socket did not take goes to the bufferevent. */
static int send_with_fd(struct qmp *q, const char *line, int fd)
{
        size_t len = strlen(line);
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {(void *)line, len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                            .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        ssize_t n;

        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        do
                n = sendmsg(bufferevent_getfd(q->bev), &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno; /* nothing went out: the caller may retry later */
        if ((size_t)n < len && bufferevent_write(q->bev, line + n, len - (size_t)n) < 0)
                return -EIO;
        return 1;
}

/* Send queued lines while libevent holds nothing unsent (so nothing can be overtaken). */
static void flush_queue(struct qmp *q)
{
        struct evbuffer *out = bufferevent_get_output(q->bev);

        while (q->queue && evbuffer_get_length(out) == 0) {
                struct qmp_queued *e = q->queue;

                if (e->fd >= 0) {
                        int r = send_with_fd(q, e->line, e->fd);

                        if (r == -EAGAIN || r == -EWOULDBLOCK)
                                return; /* socket full: retried on the next write callback */
                        if (r < 0)
                                tt_warn("QMP: cannot pass a file descriptor: %s", strerror(-r));
                } else {
                        bufferevent_write(q->bev, e->line, strlen(e->line));
                }
                q->queue = e->next;
                queued_free(e);
        }
}

static void on_write(struct bufferevent *bev, void *opaque)
{
        flush_queue(opaque);
}

static void on_timeout(evutil_socket_t fd, short what, void *opaque)
{
        struct qmp_pending *p = opaque;
        struct qmp *q = p->q;
        char text[256];

        pending_unlink(q, p);
        snprintf(text, sizeof(text), "timed out after %u ms waiting for QEMU to answer '%s'",
                 p->timeout_ms, p->execute);
        pending_fail(p, text);
        pending_free(p);
}

static int command_send(struct qmp *q, const char *execute, json_t *args, int fd,
                        unsigned timeout_ms, qmp_reply_fn fn, void *opaque)
{
        _cleanup_json_ json_t *msg = json_object();
        struct qmp_pending *p, **tail;
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        int r = 0;

        if (msg == NULL || q->bev == NULL || q->closed) {
                json_decref(args);
                return -EPIPE;
        }
        p = calloc(1, sizeof(*p));
        if (p == NULL) {
                json_decref(args);
                return -ENOMEM;
        }
        p->q = q;
        p->id = q->next_id++;
        p->execute = strdup(execute);
        p->fn = fn;
        p->opaque = opaque;
        p->timeout_ms = timeout_ms;
        p->timer = evtimer_new(q->base, on_timeout, p);
        json_object_set_new(msg, "execute", json_string(execute));
        if (args)
                json_object_set_new(msg, "arguments", args);
        json_object_set_new(msg, "id", json_integer((json_int_t)p->id));
        if (p->execute == NULL || p->timer == NULL) {
                r = -ENOMEM;
        } else if (fd < 0 && q->queue == NULL) {
                if (wire_dump(q->out, msg) < 0 || wire_out_puts(q->out, "\r\n") < 0 ||
                    wire_out_flush(q->out) < 0)
                        r = -EIO;
        } else {
                /* Behind an fd: queue, in order, and send once libevent's buffer is empty. */
                _cleanup_free_ char *text = wire_dumps(msg);
                struct qmp_queued *e = calloc(1, sizeof(*e)), **qt;

                if (e)
                        e->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
                if (e == NULL || text == NULL || asprintf(&e->line, "%s\r\n", text) < 0 ||
                    (fd >= 0 && e->fd < 0)) {
                        if (e)
                                queued_free(e);
                        r = -ENOMEM;
                } else if (wire_out_flush(q->out) < 0) {
                        queued_free(e);
                        r = -EIO;
                } else {
                        for (qt = &q->queue; *qt; qt = &(*qt)->next)
                                ;
                        *qt = e;
                        flush_queue(q);
                }
        }
        if (r < 0) {
                pending_free(p);
                return r;
        }
        evtimer_add(p->timer, &tv);
        for (tail = &q->pending; *tail; tail = &(*tail)->next)
                ;
        *tail = p;
        return 0;
}

int qmp_command(struct qmp *q, const char *execute, json_t *args, unsigned timeout_ms,
                qmp_reply_fn fn, void *opaque)
{
        return command_send(q, execute, args, -1, timeout_ms, fn, opaque);
}

int qmp_command_fd(struct qmp *q, const char *execute, json_t *args, int fd,
                   unsigned timeout_ms, qmp_reply_fn fn, void *opaque)
{
        if (fd < 0) {
                json_decref(args);
                return -EBADF;
        }
        return command_send(q, execute, args, fd, timeout_ms, fn, opaque);
}

void qmp_free(struct qmp *q)
{
        if (q == NULL)
                return;
        /* Callers freeing the client do not want callbacks any more. */
        q->cb.closed = NULL;
        q->cb.event = NULL;
        fail_all(q, "QEMU monitor closed");
        while (q->queue) {
                struct qmp_queued *e = q->queue;

                q->queue = e->next;
                queued_free(e);
        }
        if (q->bev)
                bufferevent_free(q->bev);
        wire_out_free(q->out);
        wire_splitter_free(q->splitter);
        free(q);
}

int qmp_listen_socket(const char *path, struct tt_error *err)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return tt_error_set(err, ENAMETOOLONG, "socket path '%s' is too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return tt_error_errno(err, errno, "cannot create socket");
        unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return tt_error_errno(err, errno, "cannot bind '%s'", path);
        if (listen(fd, 8) < 0)
                return tt_error_errno(err, errno, "cannot listen on '%s'", path);
        return steal_fd(&fd);
}
