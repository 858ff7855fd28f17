/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host-side guest agent client: see guest.h for the contract. */
#include "host/guest.h"
#include "host/events.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "host/qmp.h"
#include "host/vm.h"
#include "wire/wire.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* One sync attempt waits this long before a fresh id is tried (the call's deadline permitting). */
#define GUEST_SYNC_ATTEMPT_MS 5000
/* Reconnect to a chardev socket that refused or dropped us after this long. */
#define GUEST_RECONNECT_MS 1000
/* A reply larger than this is refused (guest-file-read of 48 MiB is 64 MiB of base64). */
#define GUEST_MAX_REPLY (96u << 20)
/* Queued calls per domain; more is a caller bug or abuse, refused with a clear error. */
#define GUEST_MAX_QUEUE 256
/* query-chardev at attach. */
#define GUEST_QMP_TIMEOUT_MS 10000

enum guest_link {
        GUEST_LINK_DOWN,    /* no socket to QEMU's chardev */
        GUEST_LINK_UNSYNCED, /* socket up; the agent's stream position is unknown */
        GUEST_LINK_SYNCING, /* guest-sync-delimited sent, waiting for its id */
        GUEST_LINK_READY,   /* synchronised: commands go straight out */
};

struct guest_call {
        struct guest_call *next;    /* queue order */
        struct guest_agent *ga;     /* owner */
        json_t *cmd;                /* the request, with our id */
        json_t *user_id;            /* the caller's own "id", put back into the reply */
        json_int_t id;              /* our id, matched against replies */
        char name[64];              /* "execute" value, for error texts */
        int timeout_s;              /* as given (for texts) */
        unsigned flags;             /* enum guest_call_flags */
        const char *await_event;    /* QMP event that ends a NO_REPLY call */
        bool sent;                  /* written to the agent */
        bool nowait;                /* async: done once written */
        struct event *timer;        /* the call's deadline, NULL for --block */
        guest_reply_fn fn;          /* the caller; NULL once cancelled */
        void *opaque;               /* its argument */
};

struct guest_agent {
        struct vm *vm;                  /* owner */
        char *path;                     /* the agent channel's chardev socket */
        char chardev[32];               /* QEMU's chardev id ("charchannelN") */
        char port[32];                  /* the virtserialport id in VSERPORT_CHANGE ("channelN") */
        struct bufferevent *bev;        /* connection to the chardev, NULL while down */
        struct wire_splitter *splitter; /* framing of the agent's output */
        struct event *sync_timer;       /* one sync attempt's deadline */
        struct event *reconnect;        /* retry of a refused or dropped chardev connection */
        struct event *kick;             /* deferred queue processing (never recurse into callers) */
        enum guest_link link;           /* see enum guest_link */
        bool port_known;                /* the guest's port state has been learned */
        bool port_open;                 /* the guest has its end of the port open */
        bool resync;                    /* the agent restarted under the call in flight */
        json_int_t sync_id;             /* id of the sync in flight */
        json_int_t next_id;             /* ids of our commands */
        struct guest_call *head;        /* queue; head is the call in flight */
        unsigned queued;                /* calls in the queue */
        bool feeding;                   /* inside wire_splitter_feed: defer frees */
        bool dead;                      /* detached while feeding: free after the feed */
};

static void guest_kick(struct guest_agent *ga);

/* A number no earlier tetherd (or earlier sync) is likely to have used: ids must not repeat. */
static json_int_t random_id(void)
{
        uint32_t r = 0;

        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
                r = (uint32_t)random() ^ (uint32_t)getpid();
        return (json_int_t)(r & 0x3fffffff) + 1000000;
}
static void guest_connect(struct guest_agent *ga);

/* ---- calls ---- */

static void call_free(struct guest_call *c)
{
        if (c->timer)
                event_free(c->timer);
        json_decref(c->cmd);
        json_decref(c->user_id);
        free(c);
}

static void queue_remove(struct guest_agent *ga, struct guest_call *c)
{
        for (struct guest_call **pp = &ga->head; *pp; pp = &(*pp)->next) {
                if (*pp == c) {
                        *pp = c->next;
                        ga->queued--;
                        break;
                }
        }
        c->next = NULL;
}

/* Finish c (already out of the queue): its caller hears exactly once. */
static void call_finish(struct guest_call *c, json_t *reply, const struct tt_error *err)
{
        guest_reply_fn fn = c->fn;

        c->fn = NULL;
        if (fn)
                fn(c->opaque, reply, err);
        call_free(c);
}

static void call_fail(struct guest_agent *ga, struct guest_call *c, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void call_fail(struct guest_agent *ga, struct guest_call *c, int code, const char *fmt, ...)
{
        struct tt_error err = {0};
        va_list ap;

        queue_remove(ga, c);
        va_start(ap, fmt);
        tt_error_setv(&err, code, fmt, ap);
        va_end(ap);
        call_finish(c, NULL, &err);
        tt_error_clear(&err);
}

static void fail_all(struct guest_agent *ga, int code, const char *msg)
{
        while (ga->head)
                call_fail(ga, ga->head, code, "%s", msg);
}

static void call_timeout(evutil_socket_t fd, short what, void *opaque)
{
        struct guest_call *c = opaque;
        struct guest_agent *ga = c->ga;
        bool in_flight = c == ga->head && (c->sent || ga->link == GUEST_LINK_SYNCING);

        /* Whatever the agent still says about it is stale from now on: sync again first. */
        if (in_flight && ga->link != GUEST_LINK_DOWN) {
                ga->link = GUEST_LINK_UNSYNCED;
                evtimer_del(ga->sync_timer);
        }
        tt_warn("%s: guest agent: no reply to %s within %d s%s", ga->vm->def->name, c->name,
                c->timeout_s, c->sent ? "" : " (not sent: no answer to guest-sync-delimited)");
        call_fail(ga, c, VM_ERR_FAILED,
                  "Guest agent is not responding: Guest agent not available for now (no reply "
                  "to %s within %d s)",
                  c->name, c->timeout_s);
        guest_kick(ga);
}

/* ---- the link ---- */

static int link_write(struct guest_agent *ga, const char *prefix, const json_t *msg)
{
        _cleanup_free_ char *text = wire_dumps(msg);

        if (text == NULL || ga->bev == NULL ||
            (prefix && bufferevent_write(ga->bev, prefix, strlen(prefix)) < 0) ||
            bufferevent_write(ga->bev, text, strlen(text)) < 0 ||
            bufferevent_write(ga->bev, "\n", 1) < 0)
                return -EIO;
        return 0;
}

static void sync_attempt_timeout(evutil_socket_t fd, short what, void *opaque)
{
        struct guest_agent *ga = opaque;

        /* The agent may have restarted and lost our sync: try again with a new id. */
        if (ga->link == GUEST_LINK_SYNCING)
                ga->link = GUEST_LINK_UNSYNCED;
        guest_kick(ga);
}

/* 0xFF first: the agent drops any partial input it holds (qga-protocol.md), then syncs. */
static void link_sync(struct guest_agent *ga)
{
        struct timeval tv = {GUEST_SYNC_ATTEMPT_MS / 1000, (GUEST_SYNC_ATTEMPT_MS % 1000) * 1000};
        _cleanup_json_ json_t *msg = NULL;

        ga->resync = false;
        ga->sync_id = random_id();
        msg = json_pack("{s:s, s:{s:I}}", "execute", "guest-sync-delimited", "arguments", "id",
                        ga->sync_id);
        wire_splitter_reset(ga->splitter);
        if (msg == NULL || link_write(ga, "\xff", msg) < 0)
                return;
        ga->link = GUEST_LINK_SYNCING;
        evtimer_add(ga->sync_timer, &tv);
}

/* Send the head call, or sync first. */
static void process(struct guest_agent *ga)
{
        struct guest_call *c = ga->head;

        if (c == NULL || c->sent || ga->link == GUEST_LINK_DOWN || !ga->port_known)
                return;
        if (!ga->port_open) {
                fail_all(ga, VM_ERR_FAILED,
                         "Guest agent is not responding: QEMU guest agent is not connected");
                return;
        }
        if (ga->resync && ga->link == GUEST_LINK_READY)
                ga->link = GUEST_LINK_UNSYNCED;
        if (ga->link == GUEST_LINK_UNSYNCED) {
                link_sync(ga);
                return;
        }
        if (ga->link != GUEST_LINK_READY)
                return;
        if (link_write(ga, NULL, c->cmd) < 0) {
                call_fail(ga, c, VM_ERR_FAILED, "Guest agent is not responding: cannot write "
                                                "to the agent channel");
                guest_kick(ga);
                return;
        }
        c->sent = true;
        if (c->nowait) {
                _cleanup_json_ json_t *empty = json_object();

                /* The reply, if any, arrives later and is skipped as stale (its id). */
                queue_remove(ga, c);
                call_finish(c, empty, NULL);
                guest_kick(ga);
        }
}

static void kick_cb(evutil_socket_t fd, short what, void *opaque)
{
        process(opaque);
}

static void guest_kick(struct guest_agent *ga)
{
        event_active(ga->kick, EV_TIMEOUT, 0);
}

/* A reply for the head call. */
static void deliver(struct guest_agent *ga, json_t *msg)
{
        struct guest_call *c = ga->head;
        json_t *error = json_object_get(msg, "error");

        queue_remove(ga, c);
        if (c->user_id)
                json_object_set(msg, "id", c->user_id);
        else
                json_object_del(msg, "id");
        if (error) {
                const char *cls = json_string_value(json_object_get(error, "class"));
                const char *desc = json_string_value(json_object_get(error, "desc"));

                if ((c->flags & GUEST_CALL_UNSUPPORTED_OK) && cls &&
                    (strcmp(cls, "CommandNotFound") == 0 || strcmp(cls, "CommandDisabled") == 0)) {
                        _cleanup_json_ json_t *r = json_pack("{s:b}", "unsupported", 1);

                        call_finish(c, r, NULL);
                } else {
                        struct tt_error err = {0};

                        tt_error_set(&err, VM_ERR_FAILED,
                                     "internal error: unable to execute QEMU agent command "
                                     "'%s': %s",
                                     c->name, desc ? desc : "unknown error");
                        call_finish(c, NULL, &err);
                        tt_error_clear(&err);
                }
        } else {
                call_finish(c, msg, NULL);
        }
        guest_kick(ga);
}

static int on_message(void *opaque, json_t *msg, const struct tt_error *perr)
{
        struct guest_agent *ga = opaque;
        _owns_json_ json_t *owned = msg;
        json_t *id;

        /* The 0xFF before a sync reply, and junk before it, arrive as parse errors: skip. */
        if (msg == NULL || ga->dead)
                return 0;
        if (ga->link == GUEST_LINK_SYNCING) {
                json_t *ret = json_object_get(msg, "return");

                if (json_is_integer(ret) && json_integer_value(ret) == ga->sync_id) {
                        evtimer_del(ga->sync_timer);
                        ga->link = GUEST_LINK_READY;
                        guest_kick(ga);
                }
                return 0;
        }
        id = json_object_get(msg, "id");
        if (ga->link != GUEST_LINK_READY || ga->head == NULL || !ga->head->sent ||
            !json_is_integer(id) || json_integer_value(id) != ga->head->id) {
                tt_debug("%s: guest agent: skipping a stale message", ga->vm->def->name);
                return 0;
        }
        deliver(ga, msg);
        return 0;
}

static void agent_free(struct guest_agent *ga)
{
        fail_all(ga, VM_ERR_INVALID_OP, "Requested operation is not valid: domain is not running");
        if (ga->bev)
                bufferevent_free(ga->bev);
        if (ga->sync_timer)
                event_free(ga->sync_timer);
        if (ga->reconnect)
                event_free(ga->reconnect);
        if (ga->kick)
                event_free(ga->kick);
        wire_splitter_free(ga->splitter);
        free(ga->path);
        free(ga);
}

static void on_read(struct bufferevent *bev, void *opaque)
{
        struct guest_agent *ga = opaque;
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t len;

        ga->feeding = true;
        while (!ga->dead && (len = evbuffer_get_contiguous_space(in)) > 0) {
                wire_splitter_feed(ga->splitter, evbuffer_pullup(in, (ssize_t)len), len,
                                   on_message, ga);
                evbuffer_drain(in, len);
        }
        ga->feeding = false;
        if (ga->dead)
                agent_free(ga);
}

static void link_down(struct guest_agent *ga)
{
        struct timeval tv = {GUEST_RECONNECT_MS / 1000, (GUEST_RECONNECT_MS % 1000) * 1000};

        if (ga->bev)
                bufferevent_free(ga->bev);
        ga->bev = NULL;
        ga->link = GUEST_LINK_DOWN;
        evtimer_del(ga->sync_timer);
        /* A call that was written is lost with the connection. */
        if (ga->head && ga->head->sent)
                call_fail(ga, ga->head, VM_ERR_FAILED,
                          "Guest agent is not responding: Guest agent disappeared while "
                          "executing command");
        evtimer_add(ga->reconnect, &tv);
}

static void on_event(struct bufferevent *bev, short what, void *opaque)
{
        struct guest_agent *ga = opaque;

        if (what & BEV_EVENT_CONNECTED) {
                ga->link = GUEST_LINK_UNSYNCED;
                guest_kick(ga);
                return;
        }
        if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
                tt_debug("%s: guest agent channel socket closed", ga->vm->def->name);
                link_down(ga);
                guest_kick(ga);
        }
}

static void guest_connect(struct guest_agent *ga)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(ga->path) >= sizeof(sa.sun_path))
                return;
        memcpy(sa.sun_path, ga->path, strlen(ga->path) + 1);
        /*
         * Our own socket, close-on-exec: libevent would make one without it, and every QEMU
         * started later would inherit this connection and keep it open after tetherd exits, so
         * that QEMU never accepts the next tetherd's connection.
         */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                tt_warn("%s: guest agent: socket: %s", ga->vm->def->name, strerror(errno));
                return;
        }
        ga->bev = bufferevent_socket_new(ga->vm->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (ga->bev == NULL) {
                close(fd);
                return;
        }
        bufferevent_setcb(ga->bev, on_read, NULL, on_event, ga);
        bufferevent_enable(ga->bev, EV_READ | EV_WRITE);
        if (bufferevent_socket_connect(ga->bev, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                link_down(ga);
}

static void reconnect_cb(evutil_socket_t fd, short what, void *opaque)
{
        struct guest_agent *ga = opaque;

        if (ga->bev == NULL)
                guest_connect(ga);
}

/* ---- the guest's port ---- */

/*
 * An open while the port is open is a reopen: QEMU sends at most one VSERPORT_CHANGE a second per
 * port, with the last state, so an agent that restarted within that second (closed and opened
 * the port) arrives as an open alone. What the old agent left half-written is stale, so the next
 * command is preceded by a sync. The call in flight is left alone: the event can come up to a
 * second late, after the new agent took that call and may answer it (else its deadline ends it).
 */
static void port_reopened(struct guest_agent *ga)
{
        tt_debug("%s: guest agent port reopened", ga->vm->def->name);
        if (ga->link == GUEST_LINK_DOWN)
                return;
        if (ga->head && ga->head->sent) {
                ga->resync = true;
                return;
        }
        ga->link = GUEST_LINK_UNSYNCED;
        evtimer_del(ga->sync_timer);
        guest_kick(ga);
}

static void port_changed(struct guest_agent *ga, bool open)
{
        bool was_open = ga->port_known && ga->port_open;

        ga->port_known = true;
        ga->port_open = open;
        if (open && was_open) {
                port_reopened(ga);
                return;
        }
        tt_debug("%s: guest agent port %s", ga->vm->def->name, open ? "opened" : "closed");
        /* A new agent (or a new boot) is on the other side: what it said before is stale. */
        if (ga->link != GUEST_LINK_DOWN)
                ga->link = GUEST_LINK_UNSYNCED;
        evtimer_del(ga->sync_timer);
        if (!open && ga->head && ga->head->sent) {
                struct guest_call *c = ga->head;

                if (c->flags & GUEST_CALL_NO_REPLY) {
                        /* guest-shutdown, guest-suspend-disk: the guest went away as asked. */
                        _cleanup_json_ json_t *r = json_object();

                        queue_remove(ga, c);
                        call_finish(c, r, NULL);
                } else {
                        call_fail(ga, c, VM_ERR_FAILED,
                                  "Guest agent is not responding: Guest agent disappeared while "
                                  "executing command");
                }
        }
        guest_kick(ga);
}

static void chardev_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;
        struct guest_agent *ga = vm->guest;
        size_t i;
        json_t *c;

        if (ga == NULL)
                return;
        if (err) {
                tt_warn("%s: query-chardev: %s", vm->def->name, err->msg);
                port_changed(ga, false);
                return;
        }
        json_array_foreach(ret, i, c) {
                const char *label = json_string_value(json_object_get(c, "label"));

                if (label && strcmp(label, ga->chardev) == 0 && !ga->port_known)
                        port_changed(ga, json_is_true(json_object_get(c, "frontend-open")));
        }
        if (!ga->port_known)
                port_changed(ga, false);
}

/* ---- the interface ---- */

/* Index of the agent channel in the live definition, or -1. */
static int agent_channel(const struct vm *vm)
{
        for (size_t i = 0; vm->live && i < vm->live->n_channels; i++) {
                const char *name = vm->live->channels[i].name;

                if (name == NULL || strcmp(name, DOMAIN_AGENT_CHANNEL) == 0)
                        return (int)i;
        }
        return -1;
}

int guest_attach(struct vm *vm, struct tt_error *err)
{
        int idx = agent_channel(vm);
        struct guest_agent *ga;

        if (idx < 0 || vm->guest)
                return 0;
        ga = calloc(1, sizeof(*ga));
        if (ga == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        ga->vm = vm;
        ga->path = vm->live->channels[idx].path
                           ? strdup(vm->live->channels[idx].path)
                           : store_run_path(&vm->d->store, vm->def->name, "agent.sock");
        snprintf(ga->chardev, sizeof(ga->chardev), "charchannel%d", idx);
        snprintf(ga->port, sizeof(ga->port), "channel%d", idx);
        ga->splitter = wire_splitter_new();
        ga->sync_timer = evtimer_new(vm->d->base, sync_attempt_timeout, ga);
        ga->reconnect = evtimer_new(vm->d->base, reconnect_cb, ga);
        ga->kick = event_new(vm->d->base, -1, 0, kick_cb, ga);
        /* Command ids live far above sync ids, so a late sync reply never matches a command. */
        ga->next_id = random_id() * 1024;
        if (ga->path == NULL || ga->splitter == NULL || ga->sync_timer == NULL ||
            ga->reconnect == NULL || ga->kick == NULL) {
                agent_free(ga);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        wire_splitter_set_limits(ga->splitter, GUEST_MAX_REPLY, 0, 64);
        vm->guest = ga;
        guest_connect(ga);
        if (vm->qmp)
                qmp_command(vm->qmp, "query-chardev", NULL, GUEST_QMP_TIMEOUT_MS, chardev_done,
                            vm);
        return 0;
}

void guest_detach(struct vm *vm)
{
        struct guest_agent *ga = vm->guest;

        if (ga == NULL)
                return;
        vm->guest = NULL;
        if (ga->feeding) {
                /* Inside our own read callback: the feed loop frees it. */
                fail_all(ga, VM_ERR_INVALID_OP,
                         "Requested operation is not valid: domain is not running");
                ga->dead = true;
                return;
        }
        agent_free(ga);
}

void guest_on_qmp_event(struct vm *vm, const char *name, json_t *data)
{
        struct guest_agent *ga = vm->guest;
        struct guest_call *c;

        if (ga == NULL)
                return;
        if (strcmp(name, "VSERPORT_CHANGE") == 0) {
                const char *id = json_string_value(json_object_get(data, "id"));

                if (id && strcmp(id, ga->port) == 0) {
                        bool open = json_is_true(json_object_get(data, "open"));

                        /* A reopen (see port_reopened): the agent did go away in between. */
                        if (open && ga->port_known && ga->port_open)
                                events_emit_agent(vm->d->events, vm->def->name, false, false);
                        events_emit_agent(vm->d->events, vm->def->name, open, false);
                        port_changed(ga, open);
                }
                return;
        }
        c = ga->head;
        if (c && c->sent && (c->flags & GUEST_CALL_NO_REPLY) && c->await_event &&
            strcmp(c->await_event, name) == 0) {
                _cleanup_json_ json_t *r = json_object();

                queue_remove(ga, c);
                call_finish(c, r, NULL);
                guest_kick(ga);
        }
}

int guest_call(struct vm *vm, json_t *cmd, int timeout_s, unsigned flags, const char *await_event,
               guest_reply_fn fn, void *opaque, struct tt_error *err)
{
        _owns_json_ json_t *owned = cmd;
        struct guest_agent *ga = vm->guest;
        const char *execute = json_string_value(json_object_get(cmd, "execute"));
        struct guest_call *c, **pp;

        if (!json_is_object(cmd) || execute == NULL)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: expected {\"execute\": "
                                    "NAME[, \"arguments\": {...}]}");
        if (vm->status.state != VM_STATE_RUNNING)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: domain is not running");
        if (ga == NULL)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    agent_channel(vm) < 0
                                            ? "argument unsupported: QEMU guest agent is not "
                                              "configured"
                                            : "Guest agent is not responding: QEMU guest agent "
                                              "is not connected");
        if (ga->port_known && !ga->port_open)
                return tt_error_set(err, VM_ERR_FAILED,
                                    "Guest agent is not responding: QEMU guest agent is not "
                                    "connected");
        if (ga->queued >= GUEST_MAX_QUEUE)
                return tt_error_set(err, VM_ERR_BUSY,
                                    "Guest agent is busy: %u commands are queued for domain %s",
                                    ga->queued, vm->def->name);
        if (timeout_s == GUEST_TIMEOUT_DEFAULT)
                timeout_s = GUEST_DEFAULT_TIMEOUT_S;
        c = calloc(1, sizeof(*c));
        if (c == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        c->ga = ga;
        c->cmd = json_deep_copy(cmd);
        c->user_id = json_incref(json_object_get(cmd, "id"));
        c->id = ga->next_id++;
        snprintf(c->name, sizeof(c->name), "%s", execute);
        c->flags = flags;
        c->await_event = await_event;
        c->fn = fn;
        c->opaque = opaque;
        c->nowait = timeout_s == GUEST_TIMEOUT_NOWAIT;
        if (c->nowait)
                timeout_s = GUEST_DEFAULT_TIMEOUT_S; /* bounds the wait for the sync */
        c->timeout_s = timeout_s;
        if (c->cmd == NULL || json_object_set_new(c->cmd, "id", json_integer(c->id)) < 0) {
                call_free(c);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        if (timeout_s > 0) {
                struct timeval tv = {timeout_s, 0};

                c->timer = evtimer_new(vm->d->base, call_timeout, c);
                if (c->timer == NULL) {
                        call_free(c);
                        return tt_error_set(err, ENOMEM, "out of memory");
                }
                evtimer_add(c->timer, &tv);
        }
        for (pp = &ga->head; *pp; pp = &(*pp)->next)
                ;
        *pp = c;
        ga->queued++;
        guest_kick(ga);
        return 0;
}

void guest_cancel(struct vm *vm, void *opaque)
{
        for (struct guest_call *c = vm->guest ? vm->guest->head : NULL; c; c = c->next)
                if (c->opaque == opaque)
                        c->fn = NULL;
}

bool guest_connected(const struct vm *vm)
{
        return vm->guest && vm->guest->port_open;
}
