/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The serial console: tetherd's connection to QEMU's console socket, the ring and log of what
 * the guest wrote, and the one client attached to it (console.h says where bytes go).
 */
#include "host/console.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "host/vm.h"
#include "wire/stream.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Output a client has not read yet beyond which the guest's further output skips it. */
#define CONSOLE_CLIENT_BACKLOG (256u << 10)
/* Keystrokes QEMU has not taken yet beyond which the client's are left in its socket. */
#define CONSOLE_INPUT_MAX (64u << 10)
/* Retry the console socket after this long while QEMU runs and the connection is down, twice
   as long after each failure up to CONSOLE_RECONNECT_MAX_MS (a QEMU without the socket). */
#define CONSOLE_RECONNECT_MS 500
#define CONSOLE_RECONNECT_MAX_MS 30000

struct console {
        struct vm *vm;                  /* owner (vm->console) */
        char *path;                     /* QEMU's console socket */
        struct bufferevent *qemu;       /* the connection to it, or NULL while down */
        bool connected;                 /* qemu finished connecting */
        struct event *reconnect;        /* retries a connection that failed or closed */
        unsigned retry_ms;              /* the next retry's delay */
        struct bufferevent *client;     /* the attached client's stream, or NULL */
        uint64_t dropped;               /* bytes the client was too slow to take (this attach) */
        char *ring;                     /* CONSOLE_RING_SIZE bytes of output while detached */
        size_t ring_head;               /* the oldest byte's index */
        size_t ring_len;                /* bytes held */
        char *log_path;                 /* NAME.console.log */
        int log_fd;                     /* open for appending, or -1 */
        uint64_t log_size;              /* its size */
        bool log_failed;                /* a write failed (logged once) */
};

static void qemu_connect(struct console *con);

char *console_log_path(struct tetherd *d, const char *name)
{
        char *path = NULL;

        if (asprintf(&path, "%s/log/%s.console.log", d->store.state_dir, name) < 0)
                return NULL;
        return path;
}

/* ---- the log and the ring ---- */

static void log_open(struct console *con)
{
        struct stat st;

        con->log_fd = open(con->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                           0600);
        if (con->log_fd < 0) {
                tt_warn("%s: cannot open console log '%s': %s", con->vm->def->name,
                        con->log_path, strerror(errno));
                return;
        }
        con->log_size = fstat(con->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Keep the newest CONSOLE_LOG_MAX bytes or so: the full file becomes NAME.console.log.1. */
static void log_rotate(struct console *con)
{
        _cleanup_free_ char *old = NULL;

        if (asprintf(&old, "%s.1", con->log_path) < 0)
                return;
        close(con->log_fd);
        con->log_fd = -1;
        if (rename(con->log_path, old) < 0)
                unlink(con->log_path);
        log_open(con);
}

static void log_append(struct console *con, const char *buf, size_t len)
{
        if (con->log_fd >= 0 && con->log_size + len > CONSOLE_LOG_MAX)
                log_rotate(con);
        if (con->log_fd < 0)
                return;
        /* A local append: as quick as the daemon's own log lines. */
        if (write(con->log_fd, buf, len) != (ssize_t)len) {
                if (!con->log_failed)
                        tt_warn("%s: writing console log '%s': %s", con->vm->def->name,
                                con->log_path, strerror(errno));
                con->log_failed = true;
                return;
        }
        con->log_size += len;
}

static void ring_append(struct console *con, const char *buf, size_t len)
{
        if (len >= CONSOLE_RING_SIZE) {
                buf += len - CONSOLE_RING_SIZE;
                len = CONSOLE_RING_SIZE;
        }
        for (size_t done = 0; done < len;) {
                size_t tail = (con->ring_head + con->ring_len) % CONSOLE_RING_SIZE;
                size_t n = CONSOLE_RING_SIZE - tail < len - done ? CONSOLE_RING_SIZE - tail
                                                                  : len - done;

                memcpy(con->ring + tail, buf + done, n);
                done += n;
                con->ring_len += n;
                if (con->ring_len > CONSOLE_RING_SIZE) {
                        /* Full: the oldest bytes go. */
                        con->ring_head = (con->ring_head + con->ring_len - CONSOLE_RING_SIZE) %
                                         CONSOLE_RING_SIZE;
                        con->ring_len = CONSOLE_RING_SIZE;
                }
        }
}

/* ---- the client's stream ---- */

static int frame_write(struct bufferevent *bev, char type, const char *buf, size_t len)
{
        do {
                size_t n = len < WIRE_STREAM_MAX ? len : WIRE_STREAM_MAX;
                uint8_t hdr[WIRE_STREAM_HEADER];

                wire_stream_header(hdr, type, n);
                if (bufferevent_write(bev, hdr, sizeof(hdr)) < 0 ||
                    bufferevent_write(bev, buf, n) < 0)
                        return -1;
                buf += n;
                len -= n;
        } while (len > 0);
        return 0;
}

/*
 * End a client's stream: an 'E' frame with why (empty: the domain stopped), written now as far
 * as the socket takes it, and the connection closes. A client that reads nothing loses the
 * rest: nothing of it stays in the daemon.
 */
static void client_end(struct bufferevent *bev, const char *why)
{
        struct evbuffer *out = bufferevent_get_output(bev);
        int fd = (int)bufferevent_getfd(bev);

        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        frame_write(bev, WIRE_STREAM_END, why, strlen(why));
        /* The bufferevent keeps its output's front frozen (only it writes); it is freed now. */
        evbuffer_unfreeze(out, 1);
        while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0)
                ;
        shutdown(fd, SHUT_WR);
        bufferevent_free(bev);
}

/* A client leaves: say how much output it was too slow to take, if any. */
static void note_dropped(struct console *con)
{
        if (con->dropped)
                tt_info("%s: console client was too slow: %llu bytes of output skipped it",
                        con->vm->def->name, (unsigned long long)con->dropped);
}

static void console_detach_client(struct console *con, const char *why)
{
        struct bufferevent *bev = con->client;

        if (bev == NULL)
                return;
        con->client = NULL;
        note_dropped(con);
        client_end(bev, why);
}

/* Keystrokes: to QEMU, or nowhere while its socket is down. */
static void client_read(struct bufferevent *bev, void *opaque)
{
        struct console *con = opaque;
        struct evbuffer *in = bufferevent_get_input(bev);

        if (con->qemu == NULL || !con->connected) {
                evbuffer_drain(in, evbuffer_get_length(in));
                return;
        }
        bufferevent_write_buffer(con->qemu, in);
        /* QEMU takes them slower than they come: leave the rest in the client's socket. */
        if (evbuffer_get_length(bufferevent_get_output(con->qemu)) > CONSOLE_INPUT_MAX)
                bufferevent_disable(bev, EV_READ);
}

/* The client closed (detached) or its connection failed. */
static void client_event(struct bufferevent *bev, short what, void *opaque)
{
        struct console *con = opaque;

        if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
                return;
        tt_debug("%s: console client detached (%s%s)", con->vm->def->name,
                 what & BEV_EVENT_EOF ? "closed" : "error: ",
                 what & BEV_EVENT_EOF ? "" : strerror(EVUTIL_SOCKET_ERROR()));
        con->client = NULL;
        note_dropped(con);
        bufferevent_free(bev);
}

/* ---- QEMU's side ---- */

static void deliver(struct console *con, const char *buf, size_t len)
{
        log_append(con, buf, len);
        if (con->client == NULL) {
                ring_append(con, buf, len);
                return;
        }
        /* A client that does not read never grows our memory: its output skips it. */
        if (evbuffer_get_length(bufferevent_get_output(con->client)) > CONSOLE_CLIENT_BACKLOG) {
                con->dropped += len;
                return;
        }
        frame_write(con->client, WIRE_STREAM_DATA, buf, len);
}

static void qemu_read(struct bufferevent *bev, void *opaque)
{
        struct console *con = opaque;
        struct evbuffer *in = bufferevent_get_input(bev);
        char buf[16384];
        int n;

        while ((n = evbuffer_remove(in, buf, sizeof(buf))) > 0)
                deliver(con, buf, (size_t)n);
}

/* QEMU took the keystrokes: read the client's again. */
static void qemu_written(struct bufferevent *bev, void *opaque)
{
        struct console *con = opaque;

        if (con->client)
                bufferevent_enable(con->client, EV_READ);
}

static void qemu_down(struct console *con)
{
        struct timeval tv = {con->retry_ms / 1000, (con->retry_ms % 1000) * 1000};

        con->retry_ms = con->retry_ms * 2 > CONSOLE_RECONNECT_MAX_MS ? CONSOLE_RECONNECT_MAX_MS
                                                                     : con->retry_ms * 2;
        if (con->qemu)
                bufferevent_free(con->qemu);
        con->qemu = NULL;
        con->connected = false;
        evtimer_add(con->reconnect, &tv);
}

static void qemu_event(struct bufferevent *bev, short what, void *opaque)
{
        struct console *con = opaque;

        if (what & BEV_EVENT_CONNECTED) {
                con->connected = true;
                con->retry_ms = CONSOLE_RECONNECT_MS;
                tt_debug("%s: connected to the serial console", con->vm->def->name);
                if (con->client)
                        bufferevent_enable(con->client, EV_READ);
                return;
        }
        if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
                tt_debug("%s: serial console socket closed", con->vm->def->name);
                qemu_down(con);
        }
}

static void qemu_connect(struct console *con)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(con->path) >= sizeof(sa.sun_path))
                return;
        memcpy(sa.sun_path, con->path, strlen(con->path) + 1);
        /* Close-on-exec, so that a QEMU started later does not hold this connection. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                tt_warn("%s: serial console: socket: %s", con->vm->def->name, strerror(errno));
                return;
        }
        con->qemu = bufferevent_socket_new(con->vm->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (con->qemu == NULL) {
                close(fd);
                return;
        }
        bufferevent_setcb(con->qemu, qemu_read, qemu_written, qemu_event, con);
        bufferevent_enable(con->qemu, EV_READ | EV_WRITE);
        if (bufferevent_socket_connect(con->qemu, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                qemu_down(con);
}

static void reconnect_cb(evutil_socket_t fd, short what, void *opaque)
{
        struct console *con = opaque;

        if (con->qemu == NULL)
                qemu_connect(con);
}

/* ---- the interface ---- */

/* The live definition has a serial console (serial port 0, or a lone <console>). */
static bool has_console(const struct vm *vm)
{
        if (vm->live == NULL)
                return false;
        if (vm->live->console && vm->live->n_serials == 0)
                return true;
        for (size_t i = 0; i < vm->live->n_serials; i++)
                if (vm->live->serials[i].port == 0)
                        return true;
        return false;
}

static void console_free(struct console *con)
{
        if (con->qemu)
                bufferevent_free(con->qemu);
        if (con->reconnect)
                event_free(con->reconnect);
        if (con->log_fd >= 0)
                close(con->log_fd);
        free(con->ring);
        free(con->path);
        free(con->log_path);
        free(con);
}

int console_start(struct vm *vm, struct tt_error *err)
{
        struct console *con;

        if (vm->console || !has_console(vm))
                return 0;
        con = calloc(1, sizeof(*con));
        if (con == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        con->vm = vm;
        con->log_fd = -1;
        con->retry_ms = CONSOLE_RECONNECT_MS;
        con->path = store_run_path(&vm->d->store, vm->def->name, "ttyS0.sock");
        con->log_path = console_log_path(vm->d, vm->def->name);
        con->ring = malloc(CONSOLE_RING_SIZE);
        con->reconnect = evtimer_new(vm->d->base, reconnect_cb, con);
        if (con->path == NULL || con->log_path == NULL || con->ring == NULL ||
            con->reconnect == NULL) {
                console_free(con);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        log_open(con);
        vm->console = con;
        qemu_connect(con);
        return 0;
}

void console_stop(struct vm *vm)
{
        struct console *con = vm->console;

        if (con == NULL)
                return;
        vm->console = NULL;
        /* The domain stopped: the stream ends with no complaint (virsh just returns). */
        console_detach_client(con, "");
        console_free(con);
}

int console_check(struct vm *vm, bool force, struct tt_error *err)
{
        if (!vm_state_is_active(vm->status.state) || vm->pid == 0)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: domain is not running");
        if (vm->console == NULL)
                return tt_error_set(err, VM_ERR_FAILED,
                                    "internal error: cannot find character device <null>");
        if (vm->console->client && !force)
                return tt_error_set(err, VM_ERR_FAILED,
                                    "operation failed: Active console session exists for this "
                                    "domain");
        return 0;
}

void console_take(struct tetherd *d, json_t *args, struct bufferevent *bev)
{
        struct tt_error err = {0};
        bool force = json_is_true(json_object_get(args, "force"));
        struct vm *vm = vm_lookup(d, json_string_value(json_object_get(args, "domain")), &err);
        struct console *con;

        if (vm == NULL || console_check(vm, force, &err) < 0) {
                client_end(bev, err.msg ? err.msg : "console unavailable");
                tt_error_clear(&err);
                return;
        }
        con = vm->console;
        if (con->client) {
                tt_info("%s: console taken over by a new client (--force)", vm->def->name);
                console_detach_client(con,
                                      "operation failed: Console taken over by another "
                                      "session (--force)");
        }
        con->client = bev;
        con->dropped = 0;
        /* The control API's write watermark goes: frames flow until the backlog cap. */
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_setwatermark(bev, EV_READ, 0, CONSOLE_INPUT_MAX);
        bufferevent_setcb(bev, client_read, NULL, client_event, con);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        /* What the guest wrote while nobody was attached comes first. */
        while (con->ring_len > 0) {
                size_t n = CONSOLE_RING_SIZE - con->ring_head < con->ring_len
                                   ? CONSOLE_RING_SIZE - con->ring_head
                                   : con->ring_len;

                frame_write(bev, WIRE_STREAM_DATA, con->ring + con->ring_head, n);
                con->ring_head = (con->ring_head + n) % CONSOLE_RING_SIZE;
                con->ring_len -= n;
        }
        con->ring_head = 0;
        tt_debug("%s: console client attached", vm->def->name);
}
