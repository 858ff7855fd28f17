/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "agent/agent.h"
#include "agent/channel.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define CHANNEL_READ_SIZE      65536
#define CHANNEL_RETRY_MS       5000
/* A peer that accepts no output for this long is treated as gone (qemu-ga spins for ever). */
#define CHANNEL_WRITE_STALL_MS 30000
/*
 * A host that just connected can have its bytes read before the port's "host connected"
 * message arrives (they travel on different virtqueues): writes see EAGAIN and poll says HUP.
 * Give the connection this long to complete before the reply is given up.
 */
#define CHANNEL_CONNECT_GRACE_MS 3000

enum channel_kind {
        CHAN_VIRTIO,  /* a virtio-serial port: one fd, host (dis)connects under it */
        CHAN_SERIAL,  /* a tty: one fd, always "connected" */
        CHAN_LISTEN,  /* unix or vsock listening socket: one client at a time */
};

struct agent_channel {
        enum channel_kind kind;  /* how fd/listen_fd behave */
        int listen_fd;           /* listening socket (CHAN_LISTEN), else -1 */
        int fd;                  /* the connected stream, -1 while none */
        bool host_away;          /* virtio-serial: host side closed, waiting for SIGIO */
        uint64_t retry_timer;    /* pending reopen (-r), 0 = none */
};

static void channel_on_readable(struct agent_ctx *ctx, int fd, short revents, void *opaque);
static void channel_on_accept(struct agent_ctx *ctx, int fd, short revents, void *opaque);
static int channel_reopen(struct agent_ctx *ctx, struct tt_error *err);
static void channel_failed(struct agent_ctx *ctx, int error);

static const struct {
        const char *method;       /* -m value */
        enum channel_kind kind;   /* transport shape */
        const char *default_path; /* used when -p is absent */
} channel_methods[] = {
        {"virtio-serial", CHAN_VIRTIO, "/dev/virtio-ports/org.qemu.guest_agent.0"},
        {"isa-serial", CHAN_SERIAL, "/dev/ttyS0"},
        {"unix-listen", CHAN_LISTEN, NULL},
        {"vsock-listen", CHAN_LISTEN, NULL},
};

const char *agent_channel_default_path(const char *method)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(channel_methods); i++)
                if (strcmp(channel_methods[i].method, method) == 0)
                        return channel_methods[i].default_path;
        return NULL;
}

static int open_virtio(const char *path, struct tt_error *err)
{
        int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return tt_error_errno(err, errno, "error opening channel '%s'", path);
        /* Ask for SIGIO on host connect, so a disconnected port costs no wakeups. */
        if (fcntl(fd, F_SETOWN, getpid()) < 0 ||
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) < 0)
                tt_warn("cannot enable SIGIO on '%s': %s", path, strerror(errno));
        return fd;
}

static int open_serial(const char *path, struct tt_error *err)
{
        struct termios tio;
        int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

        if (fd < 0)
                return tt_error_errno(err, errno, "error opening channel '%s'", path);
        if (tcgetattr(fd, &tio) == 0) {
                /* Raw 8N1 at 38400 baud, as qemu-ga sets it up. */
                cfmakeraw(&tio);
                tio.c_cflag |= CREAD | CLOCAL;
                tio.c_cc[VMIN] = 1;
                tio.c_cc[VTIME] = 0;
                cfsetispeed(&tio, B38400);
                cfsetospeed(&tio, B38400);
                tcflush(fd, TCIFLUSH);
                tcsetattr(fd, TCSANOW, &tio);
        }
        return fd;
}

static int listen_unix(const char *path, struct tt_error *err)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return tt_error_set(err, ENAMETOOLONG, "socket path '%s' is too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return tt_error_errno(err, errno, "cannot create socket");
        unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return tt_error_errno(err, errno, "cannot bind '%s'", path);
        if (listen(fd, 1) < 0)
                return tt_error_errno(err, errno, "cannot listen on '%s'", path);
        return steal_fd(&fd);
}

static int listen_vsock(const char *addr, struct tt_error *err)
{
        struct sockaddr_vm sa = {.svm_family = AF_VSOCK};
        _cleanup_free_ char *copy = strdup(addr);
        _cleanup_close_ int fd = -1;
        uint64_t cid, port;
        char *colon;

        if (copy == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        colon = strchr(copy, ':');
        if (colon == NULL)
                return tt_error_set(err, EINVAL, "vsock address '%s' is not <cid>:<port>", addr);
        *colon = '\0';
        if (tt_parse_uint64(copy, 10, &cid) < 0 || tt_parse_uint64(colon + 1, 10, &port) < 0 ||
            cid > UINT32_MAX || port > UINT32_MAX)
                return tt_error_set(err, EINVAL, "vsock address '%s' is not <cid>:<port>", addr);
        sa.svm_cid = (unsigned)cid;
        sa.svm_port = (unsigned)port;
        fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return tt_error_errno(err, errno, "cannot create vsock socket");
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return tt_error_errno(err, errno, "cannot bind vsock '%s'", addr);
        if (listen(fd, 1) < 0)
                return tt_error_errno(err, errno, "cannot listen on vsock '%s'", addr);
        return steal_fd(&fd);
}

/* systemd socket activation: exactly one fd, passed as fd 3. Returns 1 if used, 0 if not. */
static int take_listen_fd(struct agent_ctx *ctx, struct tt_error *err)
{
        const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
        uint64_t p, n;

        if (pid == NULL || fds == NULL)
                return 0;
        if (tt_parse_uint64(pid, 10, &p) < 0 || p != (uint64_t)getpid())
                return 0;
        if (tt_parse_uint64(fds, 10, &n) < 0 || n != 1)
                return tt_error_set(err, EINVAL, "expected exactly one socket from systemd, got %s",
                                    fds);
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        fcntl(3, F_SETFD, FD_CLOEXEC);
        fcntl(3, F_SETFL, fcntl(3, F_GETFL) | O_NONBLOCK);
        ctx->chan->kind = CHAN_LISTEN;
        ctx->chan->listen_fd = 3;
        return 1;
}

static int channel_start(struct agent_ctx *ctx, struct tt_error *err)
{
        struct agent_channel *ch = ctx->chan;
        const char *method = ctx->cfg->method;
        const char *path = ctx->cfg->path;
        size_t i;

        for (i = 0; i < TT_ARRAY_SIZE(channel_methods); i++)
                if (strcmp(channel_methods[i].method, method) == 0)
                        break;
        if (i == TT_ARRAY_SIZE(channel_methods))
                return tt_error_set(err, EINVAL, "unsupported channel method '%s'", method);
        if (path == NULL)
                path = channel_methods[i].default_path;
        if (path == NULL)
                return tt_error_set(err, EINVAL, "no path given for method '%s'", method);
        ch->kind = channel_methods[i].kind;
        switch (ch->kind) {
        case CHAN_VIRTIO:
                ch->fd = open_virtio(path, err);
                if (ch->fd < 0)
                        return -1;
                return agent_loop_add_fd(ctx, ch->fd, POLLIN, channel_on_readable, NULL);
        case CHAN_SERIAL:
                ch->fd = open_serial(path, err);
                if (ch->fd < 0)
                        return -1;
                return agent_loop_add_fd(ctx, ch->fd, POLLIN, channel_on_readable, NULL);
        case CHAN_LISTEN:
                ch->listen_fd = strcmp(method, "vsock-listen") == 0 ? listen_vsock(path, err)
                                                                     : listen_unix(path, err);
                if (ch->listen_fd < 0)
                        return -1;
                return agent_loop_add_fd(ctx, ch->listen_fd, POLLIN, channel_on_accept, NULL);
        }
        return 0;
}

int agent_channel_open(struct agent_ctx *ctx, struct tt_error *err)
{
        int r;

        ctx->chan = calloc(1, sizeof(*ctx->chan));
        if (ctx->chan == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        ctx->chan->fd = -1;
        ctx->chan->listen_fd = -1;
        r = take_listen_fd(ctx, err);
        if (r < 0)
                return r;
        if (r == 1)
                return agent_loop_add_fd(ctx, ctx->chan->listen_fd, POLLIN, channel_on_accept,
                                         NULL);
        return channel_start(ctx, err);
}

static void close_fd_watch(struct agent_ctx *ctx, int *fd)
{
        if (*fd >= 0) {
                agent_loop_del_fd(ctx, *fd);
                close(*fd);
                *fd = -1;
        }
}

void agent_channel_close(struct agent_ctx *ctx)
{
        if (ctx->chan == NULL)
                return;
        close_fd_watch(ctx, &ctx->chan->fd);
        close_fd_watch(ctx, &ctx->chan->listen_fd);
        if (ctx->chan->retry_timer)
                agent_loop_cancel_timer(ctx, ctx->chan->retry_timer);
        free(ctx->chan);
        ctx->chan = NULL;
}

static void channel_on_accept(struct agent_ctx *ctx, int fd, short revents, void *opaque)
{
        struct agent_channel *ch = ctx->chan;
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (c < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        tt_warn("accept failed: %s", strerror(errno));
                return;
        }
        ch->fd = c;
        /*
         * A new peer: forget the last one's output failure and its half-sent request (qemu-ga
         * keeps the parser state, so a new client's bytes would complete a dead client's
         * request).
         */
        wire_out_reset(ctx->out);
        wire_splitter_reset(ctx->splitter);
        /* One client at a time, as qemu-ga: stop accepting until this one leaves. */
        agent_loop_mod_fd(ctx, ch->listen_fd, 0);
        agent_loop_add_fd(ctx, c, POLLIN, channel_on_readable, NULL);
        tt_debug("client connected");
}

static void retry_timer_fired(struct agent_ctx *ctx, void *opaque)
{
        struct tt_error err = {0};

        ctx->chan->retry_timer = 0;
        if (channel_reopen(ctx, &err) < 0) {
                tt_warn("%s; retrying in %d s", err.msg, CHANNEL_RETRY_MS / 1000);
                ctx->chan->retry_timer =
                        agent_loop_add_timer(ctx, CHANNEL_RETRY_MS, retry_timer_fired, NULL);
        }
        tt_error_clear(&err);
}

static int channel_reopen(struct agent_ctx *ctx, struct tt_error *err)
{
        close_fd_watch(ctx, &ctx->chan->fd);
        close_fd_watch(ctx, &ctx->chan->listen_fd);
        return channel_start(ctx, err);
}

/* The stream failed (not a plain disconnect): retry with -r, else leave the main loop. */
static void channel_failed(struct agent_ctx *ctx, int error)
{
        tt_err("channel error: %s", strerror(error));
        if (!ctx->cfg->retry_path) {
                ctx->quit = true;
                ctx->exit_code = EXIT_FAILURE;
                return;
        }
        close_fd_watch(ctx, &ctx->chan->fd);
        close_fd_watch(ctx, &ctx->chan->listen_fd);
        ctx->chan->retry_timer = agent_loop_add_timer(ctx, CHANNEL_RETRY_MS, retry_timer_fired,
                                                      NULL);
}

/* The peer went away: a socket client is closed, a virtio port waits for SIGIO. */
static void channel_peer_gone(struct agent_ctx *ctx)
{
        struct agent_channel *ch = ctx->chan;

        switch (ch->kind) {
        case CHAN_LISTEN:
                close_fd_watch(ctx, &ch->fd);
                agent_loop_mod_fd(ctx, ch->listen_fd, POLLIN);
                tt_debug("client disconnected");
                break;
        case CHAN_VIRTIO:
                ch->host_away = true;
                agent_loop_mod_fd(ctx, ch->fd, 0);
                tt_debug("host side closed; waiting for SIGIO");
                break;
        case CHAN_SERIAL:
                /* A tty has no "peer left": EOF means the line hung up. */
                channel_failed(ctx, EIO);
                break;
        }
}

void agent_channel_on_sigio(struct agent_ctx *ctx)
{
        struct agent_channel *ch = ctx->chan;

        if (ch && ch->kind == CHAN_VIRTIO && ch->fd >= 0 && ch->host_away) {
                ch->host_away = false;
                /* The host reconnected: a new peer, as after accept(). */
                wire_out_reset(ctx->out);
                wire_splitter_reset(ctx->splitter);
                agent_loop_mod_fd(ctx, ch->fd, POLLIN);
        }
}

static int feed_message(void *opaque, json_t *msg, const struct tt_error *perr)
{
        struct agent_ctx *ctx = opaque;

        if (msg == NULL) {
                wire_write_error(ctx->out, WIRE_CLASS_GENERIC, perr->msg, NULL);
                wire_out_flush(ctx->out);
                return 0;
        }
        agent_dispatch(ctx, msg);
        return ctx->quit ? -1 : 0;
}

static void channel_on_readable(struct agent_ctx *ctx, int fd, short revents, void *opaque)
{
        static char buf[CHANNEL_READ_SIZE];
        ssize_t n;

        n = read(fd, buf, sizeof(buf));
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return;
                if (errno == ECONNRESET || errno == EPIPE) {
                        channel_peer_gone(ctx);
                        return;
                }
                channel_failed(ctx, errno);
                return;
        }
        if (n == 0) {
                channel_peer_gone(ctx);
                return;
        }
        wire_splitter_feed(ctx->splitter, buf, (size_t)n, feed_message, ctx);
}

int agent_channel_write(void *opaque, const void *buf, size_t len)
{
        struct agent_ctx *ctx = opaque;
        const char *p = buf;
        uint64_t stall_start = 0;

        if (ctx->chan == NULL || ctx->chan->fd < 0)
                return -EPIPE;
        while (len > 0) {
                ssize_t n = write(ctx->chan->fd, p, len);

                if (n > 0) {
                        p += n;
                        len -= (size_t)n;
                        stall_start = 0;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        struct pollfd pfd = {.fd = ctx->chan->fd, .events = POLLOUT};

                        uint64_t now = agent_now_ms();

                        if (stall_start == 0)
                                stall_start = now;
                        if (now - stall_start >= CHANNEL_WRITE_STALL_MS) {
                                tt_warn("peer accepted no output for %d s; dropping reply",
                                        CHANNEL_WRITE_STALL_MS / 1000);
                                channel_peer_gone(ctx);
                                return -ETIMEDOUT;
                        }
                        if (poll(&pfd, 1, 1000) > 0 && !(pfd.revents & POLLOUT) &&
                            (pfd.revents & (POLLHUP | POLLERR))) {
                                /* A virtio port whose host side left says HUP, never OUT. */
                                if (ctx->chan->kind == CHAN_VIRTIO &&
                                    now - stall_start < CHANNEL_CONNECT_GRACE_MS) {
                                        usleep(5000);
                                        continue;
                                }
                                channel_peer_gone(ctx);
                                return -EPIPE;
                        }
                        continue;
                }
                /* EPIPE, ECONNRESET, or a port whose host side is gone. */
                channel_peer_gone(ctx);
                return -EPIPE;
        }
        return 0;
}
