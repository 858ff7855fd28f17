/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "host/api.h"
#include "host/console.h"
#include "host/policy.h"
#include "host/ratelog.h"
#include "host/events.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "host/guest_ops.h"
#include "host/monitor.h"
#include "host/snapshot.h"
#include "host/vm.h"
#include "host/web.h"
#include "wire/wire.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A request larger than this is refused (a domain XML is a few KiB). */
#define API_MAX_MESSAGE (4u << 20)
/* Stop reading a client's requests while this much of its output is unread (backpressure). */
#define API_MAX_OUTPUT (4u << 20)
/* A client whose unread replies stay above API_MAX_OUTPUT, none read, this long is dropped. */
#define API_OUTPUT_DEADLINE_S 15
/* Control clients at once, unless the config says otherwise ([security] max-clients). */
#define API_DEFAULT_MAX_CLIENTS 256
/* Root may connect this many beyond the cap, so that a member's flood cannot lock it out. */
#define API_ROOT_RESERVE 16
/* One client's requests whose job runs (answered later); more are refused until some end. */
#define API_MAX_INFLIGHT 64
/* Bytes read from a client at a time. */
#define API_READ_CHUNK 65536
/* Descriptors (SCM_RIGHTS) a client may have sent and not yet used; more end the connection. */
#define API_MAX_CLIENT_FDS 4
/* An error code of the API itself (after the VM module's): the peer may not do this. */
#define API_ERR_DENIED 2000
/* The most supplementary groups a peer can have (Linux's NGROUPS_MAX). */
#define API_MAX_PEER_GROUPS 65536

struct api_client {
        struct api_client *next;        /* list in the server */
        struct api_server *srv;         /* owner */
        struct bufferevent *bev;        /* the connection (replies go out through it) */
        struct event *rev;              /* requests come in here, with recvmsg (SCM_RIGHTS) */
        bool reading;                   /* rev is added */
        struct event *stall;            /* drops a client that reads none of its replies */
        size_t stall_out;               /* the least unread output seen while stalled */
        unsigned stall_ticks;           /* seconds since that went down */
        int fds[API_MAX_CLIENT_FDS];    /* descriptors received, oldest first, not yet used */
        unsigned nfds;                  /* how many */
        struct wire_splitter *splitter; /* request framing */
        struct wire_out *out;           /* reply framing */
        unsigned inflight;              /* requests whose reply is pending */
        bool closing;                   /* peer gone: free once inflight drops to 0 */
        bool hangup;                    /* protocol error: close once the reply is written */
        uid_t uid;                      /* peer's uid when it connected (SO_PEERCRED) */
        struct api_call *calls;         /* requests whose reply is pending (inflight of them) */
        const struct api_verb *stream;  /* answered a streaming verb: hand the connection over */
        json_t *stream_args;            /* that verb's arguments */
        struct events_sub *events;      /* its event subscription (the events verb), or NULL */
};

static void client_reading(struct api_client *c, bool on);
static void client_stall_watch(struct api_client *c);
static void client_hand_over(struct api_client *c);

struct api_server {
        struct tetherd *d;              /* the daemon */
        struct evconnlistener *listener; /* the control socket */
        struct api_client *clients;     /* connected clients */
        unsigned nclients;              /* how many */
        unsigned max_clients;           /* the cap on nclients (API_ROOT_RESERVE more for root) */
        char *path;                     /* socket path, removed on close */
        struct ratelog refusals;        /* rate limit of the refusal log lines */
};

/* One request that is answered later (its job runs in the background). */
struct api_call {
        struct api_client *client;      /* NULL once the client went away */
        struct api_call *next, *prev;   /* the client's pending calls */
        json_t *id;                     /* echoed in the reply */
        int fd;                         /* the file passed with it, while its handler runs, or -1 */
};

static void client_free(struct api_client *c);

/* ---- replies ---- */

static const char *class_of(int code)
{
        switch (code) {
        case VM_ERR_NO_DOMAIN:
                return API_CLASS_NO_DOMAIN;
        case VM_ERR_INVALID_OP:
                return API_CLASS_INVALID;
        case VM_ERR_BUSY:
                return API_CLASS_BUSY;
        case VM_ERR_EXISTS:
                return API_CLASS_EXISTS;
        case VM_ERR_CONFIG:
                return API_CLASS_CONFIG;
        case VM_ERR_FAILED:
                return API_CLASS_FAILED;
        case API_ERR_DENIED:
                return API_CLASS_DENIED;
        case EVENTS_ERR_FULL:
                return API_CLASS_BUSY;
        default:
                return API_CLASS_GENERIC;
        }
}

static void call_finish(struct api_call *call, json_t *ret, const struct tt_error *err)
{
        struct api_client *c = call->client;

        if (c) {
                if (call->prev)
                        call->prev->next = call->next;
                else
                        c->calls = call->next;
                if (call->next)
                        call->next->prev = call->prev;
                if (err)
                        wire_write_error(c->out, class_of(err->code),
                                         err->msg ? err->msg : "unknown error", call->id);
                else
                        wire_write_return(c->out, ret, call->id);
                wire_out_flush(c->out);
                c->inflight--;
                if (c->closing && c->inflight == 0) {
                        client_free(c);
                } else if (!c->closing && !c->hangup &&
                           evbuffer_get_length(bufferevent_get_output(c->bev)) <=
                                   API_MAX_OUTPUT) {
                        client_reading(c, true);
                }
                /* A hangup client is freed by client_written() once its output drains. */
        }
        json_decref(call->id);
        free(call);
}

static void call_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        call_finish(opaque, ret, err);
}

/* ---- verbs ---- */

/*
 * A handler either answers at once (returns 0 with *ret set, or -1 with err set) or starts a
 * job and returns 1: the job's completion answers through call_done(call).
 */
typedef int (*api_fn)(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                      struct tt_error *err);

static const char *arg_str(json_t *args, const char *key)
{
        return json_string_value(json_object_get(args, key));
}

static bool arg_bool(json_t *args, const char *key)
{
        return json_is_true(json_object_get(args, key));
}

static struct vm *arg_vm(struct tetherd *d, json_t *args, struct tt_error *err)
{
        return vm_lookup(d, arg_str(args, "domain"), err);
}

static int api_list(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                    struct tt_error *err)
{
        json_t *list = json_array();

        for (struct vm *vm = d->vms; vm; vm = vm->next) {
                json_t *row = vm_describe(vm);

                /* list --with-snapshot / --without-snapshot */
                json_object_set_new(row, "has_snapshot", json_boolean(snapshot_count(vm) > 0));
                json_array_append_new(list, row);
        }
        *ret = list;
        return 0;
}

static int api_dominfo(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                       struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);

        if (vm == NULL)
                return -1;
        *ret = vm_describe(vm);
        return 0;
}

static int api_dumpxml(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                       struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);
        _cleanup_free_ char *xml = NULL;

        if (vm == NULL)
                return -1;
        /*
         * --inactive shows the next-boot definition; default is what runs now. Graphics
         * passwords are left out, as virsh dumpxml does without --security-info.
         */
        xml = domain_format_flags(vm->live && !arg_bool(args, "inactive") ? vm->live : vm->def,
                                  0);
        if (xml == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        *ret = json_pack("{s:s}", "xml", xml);
        return 0;
}

static int api_define(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                      struct tt_error *err)
{
        struct vm *vm;

        if (vm_define(d, arg_str(args, "xml"), &vm, err) < 0)
                return -1;
        *ret = json_pack("{s:s, s:s}", "name", vm->def->name, "uuid", vm->def->uuid);
        return 0;
}

static int api_undefine(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                        struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);
        _cleanup_free_ char *name = vm ? strdup(vm->def->name) : NULL;
        bool snaps = arg_bool(args, "snapshots-metadata");

        if (vm == NULL || snapshot_undefine_check(vm, snaps, err) < 0 ||
            vm_undefine(vm, arg_bool(args, "managed-save"), err) < 0)
                return -1;
        if (snaps && name)
                snapshot_remove_all(d, name);
        return 0;
}

static int api_autostart(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                         struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);

        if (vm == NULL || vm_set_autostart(vm, !arg_bool(args, "disable"), err) < 0)
                return -1;
        return 0;
}

static unsigned start_flags(json_t *args)
{
        return (arg_bool(args, "paused") ? VM_START_PAUSED : 0) |
               (arg_bool(args, "force-boot") ? VM_START_FORCE_BOOT : 0);
}

static int api_create(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                      struct tt_error *err)
{
        if (vm_create(d, arg_str(args, "xml"), start_flags(args), call_done, call, err) < 0)
                return -1;
        return 1;
}

static int api_start(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                     struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);

        if (vm == NULL || vm_start(vm, start_flags(args), call_done, call, err) < 0)
                return -1;
        return 1;
}

static int api_destroy(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                       struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);

        if (vm == NULL || vm_destroy(vm, arg_bool(args, "graceful"), call_done, call, err) < 0)
                return -1;
        return 1;
}

/* suspend, resume, shutdown, reboot, reset: a domain argument and nothing else. */
#define SIMPLE_VERB(fn, op)                                                                        \
        static int fn(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,         \
                      struct tt_error *err)                                                        \
        {                                                                                          \
                struct vm *vm = arg_vm(d, args, err);                                              \
                if (vm == NULL || op(vm, call_done, call, err) < 0)                                \
                        return -1;                                                                 \
                return 1;                                                                          \
        }
SIMPLE_VERB(api_suspend, vm_suspend)
SIMPLE_VERB(api_resume, vm_resume)
SIMPLE_VERB(api_reset, vm_reset)
SIMPLE_VERB(api_screenshot, vm_screenshot)

static int api_shutdown(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                        struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);
        json_int_t timeout = json_integer_value(json_object_get(args, "timeout"));
        struct vm_shutdown_opts o = {
                .wait = arg_bool(args, "wait"),
                .force = arg_bool(args, "force"),
        };

        if (vm_power_modes_parse(arg_str(args, "mode"), &o, err) < 0)
                return -1;
        if (json_object_get(args, "timeout") && (timeout < 1 || timeout > 86400))
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "invalid timeout %lld: expected 1 to 86400 seconds",
                                    (long long)timeout);
        o.timeout_s = (int)timeout;
        if (o.force && !o.wait)
                return tt_error_set(err, VM_ERR_INVALID_OP, "--force needs --wait");
        if (vm == NULL || vm_shutdown(vm, &o, call_done, call, err) < 0)
                return -1;
        return 1;
}

static int api_reboot(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                      struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);
        struct vm_shutdown_opts o = {0};

        if (vm_power_modes_parse(arg_str(args, "mode"), &o, err) < 0)
                return -1;
        if (vm == NULL || vm_reboot(vm, &o, call_done, call, err) < 0)
                return -1;
        return 1;
}

/*
 * A file a client names ("file": {"path", "open"}) is opened by the client, with its own
 * rights, and its descriptor comes with the request (SCM_RIGHTS, taken in dispatch): tetherd
 * never opens a path for a client. "open" says how the client opened it ("save": for writing,
 * "restore": for reading); the path is only for messages. A `tether proxy` that could not open
 * the file says why in "error", which is the reply. Returns the descriptor (dispatch closes
 * it; the VM module keeps a copy) or -1.
 */
static int call_file(struct api_call *call, json_t *args, const char *open_as,
                     const char **path, struct tt_error *err)
{
        json_t *file = json_object_get(args, "file");
        const char *how = json_string_value(json_object_get(file, "open"));
        const char *error = json_string_value(json_object_get(file, "error"));

        *path = json_string_value(json_object_get(file, "path"));
        if (strcmp(how, open_as) != 0)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "'file' must be {\"path\": PATH, \"open\": \"%s\"}",
                                    open_as);
        if (error)
                return tt_error_set(err, VM_ERR_FAILED, "%s", error);
        if (call->fd < 0)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "no descriptor for '%s' came with the request: the client "
                                    "opens the file and passes it (SCM_RIGHTS); tetherd does "
                                    "not open files for its clients",
                                    *path);
        return call->fd;
}

static int api_save(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                    struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);
        const char *path = NULL;
        int fd = vm ? call_file(call, args, "save", &path, err) : -1;

        if (fd < 0 || vm_save(vm, fd, path, call_done, call, err) < 0)
                return -1;
        return 1;
}

static int api_managedsave(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                           struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);

        if (vm == NULL || vm_save(vm, -1, NULL, call_done, call, err) < 0)
                return -1;
        return 1;
}

static int api_restore(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                       struct tt_error *err)
{
        const char *path = NULL;
        int fd = call_file(call, args, "restore", &path, err);

        if (fd < 0 ||
            vm_restore(d, fd, path, arg_bool(args, "paused"), call_done, call, err) < 0)
                return -1;
        return 1;
}

static int api_managedsave_remove(struct tetherd *d, json_t *args, struct api_call *call,
                                  json_t **ret, struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);
        bool removed = false;

        if (vm == NULL || vm_managed_save_remove(vm, &removed, err) < 0)
                return -1;
        *ret = json_pack("{s:s, s:b}", "name", vm->def->name, "removed", removed);
        return 0;
}

static int api_qmp(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                   struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);

        if (vm == NULL ||
            vm_qmp_passthrough(vm, json_object_get(args, "command"), call_done, call, err) < 0)
                return -1;
        return 1;
}

static int api_graphics(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                        struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);

        if (vm == NULL || (*ret = vm_graphics(vm, err)) == NULL)
                return -1;
        return 0;
}

/* One domain's row of domstats: what list shows, and the monitor's cache of it. */
static json_t *domstats_row(struct vm *vm)
{
        json_t *row = vm_describe(vm);

        if (row == NULL)
                return NULL;
        struct vm_status shown = vm_shown_status(vm);

        json_object_set_new(row, "state_code", json_integer(shown.state));
        json_object_set_new(row, "reason_code", json_integer(shown.reason));
        json_object_set_new(row, "current_memory_kib",
                            json_integer((json_int_t)(vm->live ? vm->live : vm->def)->current_memory_kib));
        json_object_set_new(row, "active", json_boolean(vm_state_is_active(vm->status.state)));
        json_object_set_new(row, "sources", monitor_describe(vm));
        return row;
}

/*
 * console DOMAIN [force]: checked here and answered; then the connection becomes the console's
 * stream (console_take, through the verb's stream column).
 */
static int api_console(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                       struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);

        if (vm == NULL || console_check(vm, arg_bool(args, "force"), err) < 0)
                return -1;
        *ret = json_pack("{s:s}", "domain", vm->def->name);
        return 0;
}

/* domstats [domains]: the monitor's cache; never waits on QEMU or an agent. */
static int api_domstats(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                        struct tt_error *err)
{
        json_t *names = json_object_get(args, "domains");
        _cleanup_json_ json_t *list = json_array();
        size_t i;
        json_t *n;

        if (list == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (json_array_size(names) > 0) {
                json_array_foreach(names, i, n) {
                        struct vm *vm = vm_lookup(d, json_string_value(n), err);

                        if (vm == NULL)
                                return -1;
                        json_array_append_new(list, domstats_row(vm));
                }
        } else {
                for (struct vm *vm = d->vms; vm; vm = vm->next)
                        json_array_append_new(list, domstats_row(vm));
        }
        *ret = steal_pointer(&list);
        return 0;
}

/* web-url: a one-time login link to the web console, acting as the peer (web.h). */
static int api_web_url(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                       struct tt_error *err)
{
        _cleanup_free_ char *url = web_login_url(d, call->client ? call->client->uid : 0, err);

        if (url == NULL)
                return -1;
        *ret = json_pack("{s:s}", "url", url);
        return 0;
}

/* ---- events: the connection becomes a subscriber (events.c bounds its queue) ---- */

static size_t client_unread(struct api_client *c);

static size_t events_unread(void *opaque)
{
        return client_unread(opaque);
}

static int events_write(void *opaque, const char *line, size_t len)
{
        struct api_client *c = opaque;

        if (c->closing || c->hangup)
                return -1;
        if (wire_out_write(c->out, line, len) < 0 || wire_out_flush(c->out) < 0)
                return -1;
        return 0;
}

static const struct events_sink events_client_sink = {events_unread, events_write};

/* events [domain] [event]: this connection receives {"event": ...} lines from now on. */
static int api_events(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                      struct tt_error *err)
{
        const char *kind_name = arg_str(args, "event");
        int kind = kind_name ? events_kind_find(kind_name) : -1;
        struct vm *vm = NULL;

        if (call->client == NULL)
                return tt_error_set(err, VM_ERR_FAILED, "the client is gone");
        if (call->client->events)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "this connection already receives events");
        if (kind_name && kind < 0)
                return tt_error_set(err, VM_ERR_INVALID_OP, "unknown event type %s", kind_name);
        if (arg_str(args, "domain") && (vm = arg_vm(d, args, err)) == NULL)
                return -1;
        if (events_subscribe(d->events, vm ? vm->def->name : NULL, kind, &events_client_sink,
                             call->client, &call->client->events, err) < 0)
                return -1;
        *ret = json_object();
        return 0;
}

#define ARG(n, t) {.name = (n), .type = (t), .required = true}
#define OPT(n, t) {.name = (n), .type = (t), .required = false}
static const struct wire_arg args_none[] = {{.name = NULL}};
static const struct wire_arg args_dom[] = {ARG("domain", WIRE_T_STRING), {.name = NULL}};
static const struct wire_arg args_xml[] = {ARG("xml", WIRE_T_STRING), {.name = NULL}};
static const struct wire_arg args_create[] = {ARG("xml", WIRE_T_STRING), OPT("paused", WIRE_T_BOOL),
                                              {.name = NULL}};
static const struct wire_arg args_start[] = {ARG("domain", WIRE_T_STRING),
                                             OPT("paused", WIRE_T_BOOL),
                                             OPT("force-boot", WIRE_T_BOOL), {.name = NULL}};
static const struct wire_arg args_destroy[] = {ARG("domain", WIRE_T_STRING),
                                               OPT("graceful", WIRE_T_BOOL), {.name = NULL}};
static const struct wire_arg args_undefine[] = {ARG("domain", WIRE_T_STRING),
                                                OPT("managed-save", WIRE_T_BOOL),
                                                OPT("snapshots-metadata", WIRE_T_BOOL),
                                                {.name = NULL}};
static const struct wire_arg args_autostart[] = {ARG("domain", WIRE_T_STRING),
                                                 OPT("disable", WIRE_T_BOOL), {.name = NULL}};
static const struct wire_arg args_shutdown[] = {
        ARG("domain", WIRE_T_STRING), OPT("mode", WIRE_T_STRING), OPT("wait", WIRE_T_BOOL),
        OPT("timeout", WIRE_T_INT), OPT("force", WIRE_T_BOOL), {.name = NULL}};
static const struct wire_arg args_reboot[] = {ARG("domain", WIRE_T_STRING),
                                              OPT("mode", WIRE_T_STRING), {.name = NULL}};
/* A file the client opened: {"path", "open"} (and "error" from a proxy that could not). */
static const struct wire_arg args_client_file[] = {ARG("path", WIRE_T_STRING),
                                                   ARG("open", WIRE_T_STRING),
                                                   OPT("error", WIRE_T_STRING), {.name = NULL}};
static const struct wire_arg args_save[] = {
        ARG("domain", WIRE_T_STRING),
        {.name = "file", .type = WIRE_T_OBJECT, .required = true, .members = args_client_file},
        {.name = NULL}};
static const struct wire_arg args_restore[] = {
        {.name = "file", .type = WIRE_T_OBJECT, .required = true, .members = args_client_file},
        OPT("paused", WIRE_T_BOOL), {.name = NULL}};
static const struct wire_arg args_qmp[] = {ARG("domain", WIRE_T_STRING),
                                           ARG("command", WIRE_T_OBJECT), {.name = NULL}};
static const struct wire_arg args_domstats[] = {
        {.name = "domains", .type = WIRE_T_ARRAY, .elem = WIRE_T_STRING}, {.name = NULL}};
static const struct wire_arg args_console[] = {ARG("domain", WIRE_T_STRING),
                                               OPT("force", WIRE_T_BOOL), {.name = NULL}};
static const struct wire_arg args_events[] = {OPT("domain", WIRE_T_STRING),
                                              OPT("event", WIRE_T_STRING), {.name = NULL}};
static const struct wire_arg args_dumpxml[] = {ARG("domain", WIRE_T_STRING),
                                               OPT("inactive", WIRE_T_BOOL), {.name = NULL}};

enum api_verb_flags {
        /* Raw QMP reaches past every check tetherd makes (files, devices): root only. */
        API_ROOT_ONLY = 1 << 0,
        /* The request comes with one descriptor (SCM_RIGHTS): the file it names. */
        API_FILE = 1 << 1,
};

/*
 * A streaming verb: once it answered, the connection is handed to stream() and carries bytes,
 * no longer requests (src/wire/stream.h). The client sends nothing more until the reply.
 */
typedef void (*api_stream_fn)(struct tetherd *d, json_t *args, struct bufferevent *bev);

/* The control API's verbs: one row each (the CLI's verb table maps onto these). */
static const struct api_verb {
        const char *name;              /* "execute" value */
        api_fn fn;                     /* handler */
        const struct wire_arg *args;   /* argument spec */
        unsigned flags;                /* enum api_verb_flags */
        api_stream_fn stream;          /* takes the connection after a reply, or NULL */
} api_verbs[] = {
        {"list", api_list, args_none},
        {"dominfo", api_dominfo, args_dom},
        {"dumpxml", api_dumpxml, args_dumpxml},
        {"define", api_define, args_xml},
        {"undefine", api_undefine, args_undefine},
        {"autostart", api_autostart, args_autostart},
        {"create", api_create, args_create},
        {"start", api_start, args_start},
        {"destroy", api_destroy, args_destroy},
        {"suspend", api_suspend, args_dom},
        {"resume", api_resume, args_dom},
        {"shutdown", api_shutdown, args_shutdown},
        {"reboot", api_reboot, args_reboot},
        {"reset", api_reset, args_dom},
        {"save", api_save, args_save, API_FILE},
        {"restore", api_restore, args_restore, API_FILE},
        {"managedsave", api_managedsave, args_dom},
        {"managedsave-remove", api_managedsave_remove, args_dom},
        {"qmp", api_qmp, args_qmp, API_ROOT_ONLY},
        {"screenshot", api_screenshot, args_dom},
        {"graphics", api_graphics, args_dom},
        {"domstats", api_domstats, args_domstats},
        {"web-url", api_web_url, args_none},
        {"console", api_console, args_console, 0, console_take},
        {"events", api_events, args_events},
};

int api_request_parse(json_t *msg, struct api_request *r, struct tt_error *err)
{
        memset(r, 0, sizeof(*r));
        if (wire_request_parse(msg, &r->req, err) < 0)
                return -1;
        r->args = r->req.arguments;
        if (r->args == NULL) {
                r->args = json_object();
                r->owns_args = true;
        }
        for (size_t i = 0; i < TT_ARRAY_SIZE(api_verbs); i++) {
                if (strcmp(api_verbs[i].name, r->req.execute) != 0)
                        continue;
                r->verb = &api_verbs[i];
                return wire_args_check(r->verb->args, r->args, err) < 0 ? -1 : 0;
        }
        r->guest_op = guest_op_find(r->req.execute);
        if (r->guest_op)
                return wire_args_check(guest_op_args(r->guest_op), r->args, err) < 0 ? -1 : 0;
        r->snapshot_op = snapshot_op_find(r->req.execute);
        if (r->snapshot_op)
                return wire_args_check(snapshot_op_args(r->snapshot_op), r->args, err) < 0 ? -1
                                                                                          : 0;
        tt_error_set(err, 0, "The command %s has not been found", r->req.execute);
        return API_REQ_NOT_FOUND;
}

const struct wire_arg *api_request_spec(const struct api_request *r)
{
        if (r->verb)
                return r->verb->args;
        if (r->snapshot_op)
                return snapshot_op_args(r->snapshot_op);
        return r->guest_op ? guest_op_args(r->guest_op) : NULL;
}

void api_request_clear(struct api_request *r)
{
        if (r->owns_args)
                json_decref(r->args);
        r->args = NULL;
        r->owns_args = false;
}

/* ---- clients ---- */

static void dispatch(struct api_client *c, json_t *msg)
{
        struct api_request rq;
        struct tt_error err = {0};
        struct api_call *call;
        _cleanup_close_ int fd = -1;
        json_t *ret = NULL;
        int r = -1, pr;

        call = calloc(1, sizeof(*call));
        if (call == NULL)
                return;
        call->fd = -1;
        call->client = c;
        call->next = c->calls;
        if (c->calls)
                c->calls->prev = call;
        c->calls = call;
        c->inflight++;
        pr = api_request_parse(msg, &rq, &err);
        call->id = json_incref(rq.req.id);
        if (pr == API_REQ_NOT_FOUND) {
                wire_write_error(c->out, API_CLASS_NOT_FOUND, err.msg, rq.req.id);
                wire_out_flush(c->out);
                call->client = NULL;
                c->calls = call->next;
                if (call->next)
                        call->next->prev = NULL;
                c->inflight--;
                json_decref(call->id);
                free(call);
                goto out;
        }
        /*
         * A file verb takes the oldest descriptor the client passed, whatever becomes of the
         * request, so that the next one gets its own.
         */
        if (rq.verb && (rq.verb->flags & API_FILE) && c->nfds > 0) {
                fd = c->fds[0];
                memmove(c->fds, c->fds + 1, (c->nfds - 1) * sizeof(c->fds[0]));
                c->nfds--;
                call->fd = fd;
        }
        if (c->inflight > API_MAX_INFLIGHT) {
                /* Pipelined beyond the cap within one read (reading pauses at the cap). */
                tt_error_set(&err, VM_ERR_BUSY,
                             "too many requests in progress on this connection (at most %u): "
                             "wait for their replies",
                             (unsigned)API_MAX_INFLIGHT);
                call_finish(call, NULL, &err);
                goto out;
        }
        if (pr == 0 && rq.verb && rq.verb->stream && c->inflight > 1) {
                /* Replies still to come would land inside the stream. */
                tt_error_set(&err, VM_ERR_BUSY,
                             "'%s' must be the only request in progress on its connection",
                             rq.verb->name);
        } else if (pr == 0 && rq.verb && (rq.verb->flags & API_ROOT_ONLY) && c->uid != 0) {
                tt_error_set(&err, API_ERR_DENIED,
                             "access denied: qemu-monitor-command (raw QMP, verb '%s') "
                             "is allowed for root (uid 0) only",
                             rq.verb->name);
        } else if (pr == 0 && rq.verb) {
                if (policy_check(c->srv->d, c->uid, rq.verb->name, rq.args, &err) == 0)
                        r = rq.verb->fn(c->srv->d, rq.args, call, &ret, &err);
        } else if (pr == 0 && rq.snapshot_op) {
                /* The snapshot verbs: their own table (snapshot.c). */
                if (policy_check(c->srv->d, c->uid, rq.req.execute, rq.args, &err) == 0)
                        r = snapshot_op_run(c->srv->d, rq.snapshot_op, rq.args, call_done, call,
                                            &ret, &err);
        } else if (pr == 0) {
                /* The guest-agent verbs: their own table (guest_ops.c). */
                struct vm *vm = arg_vm(c->srv->d, rq.args, &err);

                if (vm != NULL &&
                    guest_op_start(vm, rq.guest_op, rq.args, call_done, call, &err) == 0)
                        r = 1;
        }
        if (r == 1) {
                /* A job runs; call_done() answers. */
        } else {
                call_finish(call, r == 0 ? ret : NULL, r == 0 ? NULL : &err);
                json_decref(ret);
                if (r == 0 && rq.verb && rq.verb->stream) {
                        /* client_recv() hands the connection over once this read is done. */
                        c->stream = rq.verb;
                        c->stream_args = json_incref(rq.args);
                        client_reading(c, false);
                }
        }
out:
        api_request_clear(&rq);
        tt_error_clear(&err);
}

static int on_message(void *opaque, json_t *msg, const struct tt_error *perr)
{
        struct api_client *c = opaque;

        if (msg == NULL) {
                wire_write_error(c->out, API_CLASS_GENERIC, perr->msg, NULL);
                wire_out_flush(c->out);
                /*
                 * Garbage gets one error and the stream resynchronises, as QMP does. A message
                 * over a limit is different: resynchronising inside it would answer every
                 * fragment (millions of errors for one huge array), so the connection closes.
                 */
                if (perr->code == E2BIG) {
                        c->hangup = true;
                        client_reading(c, false);
                        client_stall_watch(c);
                        return -1;
                }
                return 0;
        }
        dispatch(c, msg);
        json_decref(msg);
        /* Whatever follows a streaming verb is the stream's, not requests. */
        return c->stream ? -1 : 0;
}

static int client_sink(void *opaque, const void *buf, size_t len)
{
        struct api_client *c = opaque;

        return bufferevent_write(c->bev, buf, len) == 0 ? 0 : -EIO;
}

static void client_free(struct api_client *c)
{
        struct api_client **pp;

        for (pp = &c->srv->clients; *pp; pp = &(*pp)->next) {
                if (*pp == c) {
                        *pp = c->next;
                        c->srv->nclients--;
                        break;
                }
        }
        events_unsubscribe(c->events);
        c->events = NULL;
        /* Jobs still running (a dropped client, or the daemon stops) answer nobody. */
        for (struct api_call *call = c->calls; call; call = call->next)
                call->client = NULL;
        if (c->rev)
                event_free(c->rev);
        if (c->stall)
                event_free(c->stall);
        for (unsigned i = 0; i < c->nfds; i++)
                close(c->fds[i]);
        json_decref(c->stream_args);
        if (c->bev)
                bufferevent_free(c->bev);
        wire_splitter_free(c->splitter);
        wire_out_free(c->out);
        free(c);
}

/* The peer is gone (EOF or an error): free it now, or once its running jobs end. */
static void client_gone(struct api_client *c)
{
        events_unsubscribe(c->events);
        c->events = NULL;
        if (c->inflight == 0) {
                client_free(c);
                return;
        }
        /* Jobs still run; they finish, and their replies are dropped with the client. */
        c->closing = true;
        client_reading(c, false);
}

static size_t client_unread(struct api_client *c)
{
        return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/*
 * Reading stopped because the client does not read its replies: checked every second. If none
 * of them was taken for API_OUTPUT_DEADLINE_S, the client is dropped: its memory is not ours to
 * keep forever. A slow reader that takes some each period stays.
 */
static void client_stalled(evutil_socket_t fd, short what, void *opaque)
{
        struct api_client *c = opaque;
        size_t unread = client_unread(c);

        if (c->reading || c->closing) {
                evtimer_del(c->stall);
                return;
        }
        if (unread < c->stall_out) {
                c->stall_out = unread;
                c->stall_ticks = 0;
                return;
        }
        if (++c->stall_ticks < API_OUTPUT_DEADLINE_S)
                return;
        tt_warn("dropping control client uid %u: %zu bytes of replies unread for %d s",
                (unsigned)c->uid, unread, API_OUTPUT_DEADLINE_S);
        client_free(c);
}

/* Reading stopped with replies unread (or a hangup waits for its last reply): watch them. */
static void client_stall_watch(struct api_client *c)
{
        struct timeval tv = {1, 0};

        c->stall_out = client_unread(c);
        c->stall_ticks = 0;
        if (!evtimer_pending(c->stall, NULL))
                evtimer_add(c->stall, &tv);
}

/* Read requests (on), or leave them in the socket (off: backpressure, or the end). */
static void client_reading(struct api_client *c, bool on)
{
        if (on == c->reading)
                return;
        if (on)
                event_add(c->rev, NULL);
        else
                event_del(c->rev);
        c->reading = on;
}

/* Keep the descriptors that came with a read (SCM_RIGHTS); false when there are too many. */
static bool client_keep_fds(struct api_client *c, struct msghdr *mh)
{
        bool ok = (mh->msg_flags & MSG_CTRUNC) == 0;

        for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
                size_t n;
                int *fds;

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                fds = (int *)(void *)CMSG_DATA(cm);
                for (size_t i = 0; i < n; i++) {
                        if (c->nfds < API_MAX_CLIENT_FDS) {
                                c->fds[c->nfds++] = fds[i];
                        } else {
                                close(fds[i]);
                                ok = false;
                        }
                }
        }
        return ok;
}

/*
 * Requests arrive here, with recvmsg: a descriptor a client passes (SCM_RIGHTS) comes with the
 * first byte of its request, so it is queued before that request is complete, and the request
 * that names a file takes the oldest (take_file).
 */
static void client_recv(evutil_socket_t fd, short what, void *opaque)
{
        struct api_client *c = opaque;
        char cbuf[CMSG_SPACE(sizeof(int) * API_MAX_CLIENT_FDS)];
        static char buf[API_READ_CHUNK];
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                            .msg_controllen = sizeof(cbuf)};
        ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0) {
                client_gone(c);
                return;
        }
        if (!client_keep_fds(c, &mh)) {
                wire_write_error(c->out, API_CLASS_GENERIC,
                                 "too many descriptors passed: at most 4 may wait for their "
                                 "requests",
                                 NULL);
                wire_out_flush(c->out);
                c->hangup = true;
                client_reading(c, false);
                client_stall_watch(c);
                return;
        }
        wire_splitter_feed(c->splitter, buf, (size_t)n, on_message, c);
        if (c->stream) {
                client_hand_over(c);
                return;
        }
        if (c->hangup)
                return;
        /*
         * A client that sends requests but does not read replies gets no more answers yet, and
         * one with API_MAX_INFLIGHT jobs running waits for them.
         */
        if (client_unread(c) > API_MAX_OUTPUT) {
                client_reading(c, false);
                client_stall_watch(c);
        } else if (c->inflight >= API_MAX_INFLIGHT) {
                client_reading(c, false);
        }
}

/*
 * A streaming verb answered: its handler takes the connection (its reply is already queued on
 * it), and the client is gone from the API. Bytes the client sent with the request in the same
 * read are dropped: it waits for the reply first.
 */
static void client_hand_over(struct api_client *c)
{
        struct bufferevent *bev = c->bev;
        api_stream_fn stream = c->stream->stream;
        json_t *args = steal_pointer(&c->stream_args);
        struct tetherd *d = c->srv->d;

        c->bev = NULL;
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        client_free(c);
        stream(d, args, bev);
        json_decref(args);
}

/* Output drained below the low watermark (or entirely). */
static void client_written(struct bufferevent *bev, void *opaque)
{
        struct api_client *c = opaque;

        if (c->hangup) {
                if (c->inflight == 0 && client_unread(c) == 0)
                        client_free(c);
                return;
        }
        evtimer_del(c->stall);
        if (!c->closing && c->inflight < API_MAX_INFLIGHT)
                client_reading(c, true);
        /* A subscriber that lost events hears how many once it reads again. */
        events_drained(c->events);
}

/* Errors on the write side (reads see EOF in client_recv). */
static void client_event(struct bufferevent *bev, short what, void *opaque)
{
        struct api_client *c = opaque;

        if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
                return;
        client_gone(c);
}

/*
 * Root, or a member of the configured group, may use the daemon. Decided from what the kernel
 * recorded when the peer connected (SO_PEERCRED, SO_PEERGROUPS), never from /proc/PID: by the
 * time we would read it, that pid may belong to another process.
 */
static bool peer_allowed(struct tetherd *d, int fd, struct ucred *cred)
{
        socklen_t len = sizeof(*cred);
        _cleanup_free_ gid_t *groups = NULL;
        size_t n = 16;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0)
                return false;
        if (cred->uid == 0)
                return true;
        if (!d->access_gid_set)
                return false;
        if (cred->gid == d->access_gid)
                return true;
        /* The supplementary groups: ERANGE tells how much room they need. */
        for (;;) {
                gid_t *bigger = reallocarray(groups, n, sizeof(gid_t));

                if (bigger == NULL)
                        return false;
                groups = bigger;
                len = (socklen_t)(n * sizeof(gid_t));
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
                        break;
                if (errno != ERANGE || len / sizeof(gid_t) <= n ||
                    len / sizeof(gid_t) > API_MAX_PEER_GROUPS)
                        return false;
                n = len / sizeof(gid_t);
        }
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == d->access_gid)
                        return true;
        return false;
}

/* Refusals are logged at most once a second; the others are counted (ratelog.h). */
static void refusal_note(struct api_server *srv, const struct ucred *cred, const char *why)
{
        ratelog_note(&srv->refusals, "refused control connection from uid %u gid %u pid %d%s",
                     (unsigned)cred->uid, (unsigned)cred->gid, (int)cred->pid, why);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *opaque)
{
        struct api_server *srv = opaque;
        struct api_client *c;
        struct ucred cred = {0};

        if (!peer_allowed(srv->d, fd, &cred)) {
                static const char msg[] =
                        "{\"error\": {\"class\": \"PermissionDenied\", \"desc\": \"access "
                        "denied: only root or members of the tetherd group may use this "
                        "socket\"}}\n";

                refusal_note(srv, &cred, "");
                (void)!write(fd, msg, sizeof(msg) - 1);
                close(fd);
                return;
        }
        /* Each client costs memory and a descriptor: a member's flood stops at the cap. */
        if (srv->nclients >= srv->max_clients + (cred.uid == 0 ? API_ROOT_RESERVE : 0)) {
                char msg[256];
                int len = snprintf(msg, sizeof(msg),
                                   "{\"error\": {\"class\": \"%s\", \"desc\": \"too many "
                                   "clients: tetherd serves at most %u at once; try again "
                                   "later\"}}\n",
                                   API_CLASS_BUSY, srv->max_clients);

                refusal_note(srv, &cred, " (too many clients)");
                (void)!write(fd, msg, (size_t)len);
                close(fd);
                return;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
                close(fd);
                return;
        }
        c->srv = srv;
        c->uid = cred.uid;
        c->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
        c->rev = event_new(evconnlistener_get_base(l), fd, EV_READ | EV_PERSIST, client_recv, c);
        c->stall = event_new(evconnlistener_get_base(l), -1, EV_PERSIST, client_stalled, c);
        c->splitter = wire_splitter_new();
        c->out = wire_out_new(client_sink, c);
        if (c->bev == NULL || c->rev == NULL || c->stall == NULL || c->splitter == NULL ||
            c->out == NULL) {
                if (c->bev)
                        bufferevent_free(c->bev);
                else
                        close(fd);
                if (c->rev)
                        event_free(c->rev);
                if (c->stall)
                        event_free(c->stall);
                wire_splitter_free(c->splitter);
                wire_out_free(c->out);
                free(c);
                return;
        }
        wire_splitter_set_limits(c->splitter, API_MAX_MESSAGE, 0, 64);
        /* The bufferevent only writes; requests are read by rev (recvmsg, for SCM_RIGHTS). */
        bufferevent_setcb(c->bev, NULL, client_written, client_event, c);
        bufferevent_setwatermark(c->bev, EV_WRITE, API_MAX_OUTPUT / 2, 0);
        bufferevent_enable(c->bev, EV_WRITE);
        bufferevent_disable(c->bev, EV_READ);
        client_reading(c, true);
        c->next = srv->clients;
        srv->clients = c;
        srv->nclients++;
}

int api_listen(struct tetherd *d, const char *path, struct tt_error *err)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct api_server *srv;

        if (strlen(path) >= sizeof(sa.sun_path))
                return tt_error_set(err, ENAMETOOLONG, "socket path '%s' is too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        srv = calloc(1, sizeof(*srv));
        if (srv == NULL || (srv->path = strdup(path)) == NULL) {
                free(srv);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        srv->d = d;
        ratelog_init(&srv->refusals, d->base);
        srv->max_clients = d->max_clients ? d->max_clients : API_DEFAULT_MAX_CLIENTS;
        unlink(path);
        srv->listener = evconnlistener_new_bind(d->base, on_accept, srv,
                                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64,
                                                (struct sockaddr *)&sa, sizeof(sa));
        if (srv->listener == NULL) {
                int e = errno;

                free(srv->path);
                free(srv);
                return tt_error_errno(err, e, "cannot listen on '%s'", path);
        }
        /* Anyone may connect and be told clearly whether they are allowed (SO_PEERCRED). */
        chmod(path, 0666);
        d->api = srv;
        return 0;
}

void api_close(struct tetherd *d)
{
        struct api_server *srv = d->api;

        if (srv == NULL)
                return;
        while (srv->clients)
                client_free(srv->clients);
        evconnlistener_free(srv->listener);
        unlink(srv->path);
        ratelog_close(&srv->refusals);
        free(srv->path);
        free(srv);
        d->api = NULL;
}
