/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "host/api.h"
#include "host/policy.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "host/guest_ops.h"
#include "host/monitor.h"
#include "host/vm.h"
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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A request larger than this is refused (a domain XML is a few KiB). */
#define API_MAX_MESSAGE (4u << 20)
/* Stop reading a client's requests while this much of its output is unread (backpressure). */
#define API_MAX_OUTPUT (8u << 20)
/* An error code of the API itself (after the VM module's): the peer may not do this. */
#define API_ERR_DENIED 2000
/* The most supplementary groups a peer can have (Linux's NGROUPS_MAX). */
#define API_MAX_PEER_GROUPS 65536

struct api_client {
        struct api_client *next;        /* list in the server */
        struct api_server *srv;         /* owner */
        struct bufferevent *bev;        /* the connection */
        struct wire_splitter *splitter; /* request framing */
        struct wire_out *out;           /* reply framing */
        unsigned inflight;              /* requests whose reply is pending */
        bool closing;                   /* peer gone: free once inflight drops to 0 */
        bool hangup;                    /* protocol error: close once the reply is written */
        uid_t uid;                      /* peer's uid when it connected (SO_PEERCRED) */
        struct api_call *calls;         /* requests whose reply is pending (inflight of them) */
};

/* Refusals are logged at most once a second; the others are counted. */
struct api_refusals {
        struct event *flush;            /* logs the count at the end of the second */
        struct timespec last;           /* when the last line was logged */
        bool logged;                    /* last is meaningful */
        unsigned suppressed;            /* refusals since that line that were not logged */
        struct ucred cred;              /* the last suppressed refusal's peer */
};

struct api_server {
        struct tetherd *d;              /* the daemon */
        struct evconnlistener *listener; /* the control socket */
        struct api_client *clients;     /* connected clients */
        char *path;                     /* socket path, removed on close */
        struct api_refusals refusals;   /* rate limit of the refusal log lines */
};

/* One request that is answered later (its job runs in the background). */
struct api_call {
        struct api_client *client;      /* NULL once the client went away */
        struct api_call *next, *prev;   /* the client's pending calls */
        json_t *id;                     /* echoed in the reply */
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
                if (c->closing && c->inflight == 0)
                        client_free(c);
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

        for (struct vm *vm = d->vms; vm; vm = vm->next)
                json_array_append_new(list, vm_describe(vm));
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

        if (vm == NULL || vm_undefine(vm, arg_bool(args, "managed-save"), err) < 0)
                return -1;
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

/* Files named on the control socket are the daemon's: they must be absolute paths. */
static const char *arg_file(json_t *args, struct tt_error *err)
{
        const char *file = arg_str(args, "file");

        if (file[0] != '/') {
                tt_error_set(err, VM_ERR_INVALID_OP, "'%s' is not an absolute path", file);
                return NULL;
        }
        return file;
}

static int api_save(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                    struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);
        const char *file = vm ? arg_file(args, err) : NULL;

        if (file == NULL || vm_save(vm, file, call_done, call, err) < 0)
                return -1;
        return 1;
}

static int api_managedsave(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                           struct tt_error *err)
{
        struct vm *vm = arg_vm(d, args, err);

        if (vm == NULL || vm_save(vm, NULL, call_done, call, err) < 0)
                return -1;
        return 1;
}

static int api_restore(struct tetherd *d, json_t *args, struct api_call *call, json_t **ret,
                       struct tt_error *err)
{
        const char *file = arg_file(args, err);

        if (file == NULL || vm_restore(d, file, arg_bool(args, "paused"), call_done, call, err) < 0)
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
        json_object_set_new(row, "state_code", json_integer(vm->status.state));
        json_object_set_new(row, "reason_code", json_integer(vm->status.reason));
        json_object_set_new(row, "current_memory_kib",
                            json_integer((json_int_t)(vm->live ? vm->live : vm->def)->current_memory_kib));
        json_object_set_new(row, "active", json_boolean(vm_state_is_active(vm->status.state)));
        json_object_set_new(row, "sources", monitor_describe(vm));
        return row;
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
                                                OPT("managed-save", WIRE_T_BOOL), {.name = NULL}};
static const struct wire_arg args_autostart[] = {ARG("domain", WIRE_T_STRING),
                                                 OPT("disable", WIRE_T_BOOL), {.name = NULL}};
static const struct wire_arg args_shutdown[] = {
        ARG("domain", WIRE_T_STRING), OPT("mode", WIRE_T_STRING), OPT("wait", WIRE_T_BOOL),
        OPT("timeout", WIRE_T_INT), OPT("force", WIRE_T_BOOL), {.name = NULL}};
static const struct wire_arg args_reboot[] = {ARG("domain", WIRE_T_STRING),
                                              OPT("mode", WIRE_T_STRING), {.name = NULL}};
static const struct wire_arg args_save[] = {ARG("domain", WIRE_T_STRING),
                                            ARG("file", WIRE_T_STRING), {.name = NULL}};
static const struct wire_arg args_restore[] = {ARG("file", WIRE_T_STRING),
                                               OPT("paused", WIRE_T_BOOL), {.name = NULL}};
static const struct wire_arg args_qmp[] = {ARG("domain", WIRE_T_STRING),
                                           ARG("command", WIRE_T_OBJECT), {.name = NULL}};
static const struct wire_arg args_domstats[] = {
        {.name = "domains", .type = WIRE_T_ARRAY, .elem = WIRE_T_STRING}, {.name = NULL}};
static const struct wire_arg args_dumpxml[] = {ARG("domain", WIRE_T_STRING),
                                               OPT("inactive", WIRE_T_BOOL), {.name = NULL}};

enum api_verb_flags {
        /* Raw QMP reaches past every check tetherd makes (files, devices): root only. */
        API_ROOT_ONLY = 1 << 0,
};

/* The control API's verbs: one row each (the CLI's verb table maps onto these). */
static const struct api_verb {
        const char *name;              /* "execute" value */
        api_fn fn;                     /* handler */
        const struct wire_arg *args;   /* argument spec */
        unsigned flags;                /* enum api_verb_flags */
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
        {"save", api_save, args_save},
        {"restore", api_restore, args_restore},
        {"managedsave", api_managedsave, args_dom},
        {"managedsave-remove", api_managedsave_remove, args_dom},
        {"qmp", api_qmp, args_qmp, API_ROOT_ONLY},
        {"screenshot", api_screenshot, args_dom},
        {"graphics", api_graphics, args_dom},
        {"domstats", api_domstats, args_domstats},
};

/* ---- clients ---- */

static void dispatch(struct api_client *c, json_t *msg)
{
        struct wire_request req = {0};
        struct tt_error err = {0};
        struct api_call *call;
        json_t *ret = NULL;
        json_t *args;
        int r = -1;

        call = calloc(1, sizeof(*call));
        if (call == NULL)
                return;
        call->client = c;
        call->next = c->calls;
        if (c->calls)
                c->calls->prev = call;
        c->calls = call;
        c->inflight++;
        if (wire_request_parse(msg, &req, &err) < 0) {
                call->id = json_incref(req.id);
                call_finish(call, NULL, &err);
                tt_error_clear(&err);
                return;
        }
        call->id = json_incref(req.id);
        args = req.arguments ? req.arguments : json_object();
        if (req.arguments == NULL)
                req.arguments = args;
        for (size_t i = 0; i < TT_ARRAY_SIZE(api_verbs); i++) {
                const struct api_verb *v = &api_verbs[i];

                if (strcmp(v->name, req.execute) != 0)
                        continue;
                if ((v->flags & API_ROOT_ONLY) && c->uid != 0) {
                        tt_error_set(&err, API_ERR_DENIED,
                                     "access denied: qemu-monitor-command (raw QMP, verb '%s') "
                                     "is allowed for root (uid 0) only",
                                     v->name);
                        goto done;
                }
                if (wire_args_check(v->args, args, &err) == 0 &&
                    policy_check(c->srv->d, c->uid, v->name, args, &err) == 0)
                        r = v->fn(c->srv->d, args, call, &ret, &err);
                goto done;
        }
        {
                /* The guest-agent verbs: their own table (guest_ops.c). */
                const struct guest_op_def *g = guest_op_find(req.execute);

                if (g) {
                        struct vm *vm = NULL;

                        if (wire_args_check(guest_op_args(g), args, &err) == 0 &&
                            (vm = arg_vm(c->srv->d, args, &err)) != NULL &&
                            guest_op_start(vm, g, args, call_done, call, &err) == 0)
                                r = 1;
                        goto done;
                }
        }
        tt_error_set(&err, 0, "The command %s has not been found", req.execute);
        wire_write_error(c->out, API_CLASS_NOT_FOUND, err.msg, req.id);
        wire_out_flush(c->out);
        call->client = NULL;
        c->calls = call->next;
        if (call->next)
                call->next->prev = NULL;
        c->inflight--;
        json_decref(call->id);
        free(call);
        goto out;
done:
        if (r == 1) {
                /* A job runs; call_done() answers. */
        } else {
                call_finish(call, r == 0 ? ret : NULL, r == 0 ? NULL : &err);
                json_decref(ret);
        }
out:
        if (args != json_object_get(msg, "arguments"))
                json_decref(args);
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
                        bufferevent_disable(c->bev, EV_READ);
                        return -1;
                }
                return 0;
        }
        dispatch(c, msg);
        json_decref(msg);
        return 0;
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
                        break;
                }
        }
        /* Jobs still running (only when the daemon stops) answer nobody. */
        for (struct api_call *call = c->calls; call; call = call->next)
                call->client = NULL;
        bufferevent_free(c->bev);
        wire_splitter_free(c->splitter);
        wire_out_free(c->out);
        free(c);
}

static void client_read(struct bufferevent *bev, void *opaque)
{
        struct api_client *c = opaque;
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t len;

        while (!c->hangup && (len = evbuffer_get_contiguous_space(in)) > 0) {
                wire_splitter_feed(c->splitter, evbuffer_pullup(in, (ssize_t)len), len,
                                   on_message, c);
                evbuffer_drain(in, len);
        }
        if (c->hangup) {
                evbuffer_drain(in, evbuffer_get_length(in));
                return;
        }
        /* A client that sends requests but does not read replies gets no more answers yet. */
        if (evbuffer_get_length(bufferevent_get_output(bev)) > API_MAX_OUTPUT)
                bufferevent_disable(bev, EV_READ);
}

/* Output drained below the low watermark (or entirely). */
static void client_written(struct bufferevent *bev, void *opaque)
{
        struct api_client *c = opaque;

        if (c->hangup) {
                if (c->inflight == 0 && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
                        client_free(c);
                return;
        }
        if (!c->closing)
                bufferevent_enable(bev, EV_READ);
}

static void client_event(struct bufferevent *bev, short what, void *opaque)
{
        struct api_client *c = opaque;

        if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
                return;
        if (c->inflight == 0) {
                client_free(c);
                return;
        }
        /* Jobs still run; they finish, and their replies are dropped with the client. */
        c->closing = true;
        bufferevent_disable(bev, EV_READ);
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

static double elapsed_s(const struct timespec *since, const struct timespec *now)
{
        return (double)(now->tv_sec - since->tv_sec) + (now->tv_nsec - since->tv_nsec) / 1e9;
}

static void refusal_log(struct api_refusals *r, const struct ucred *cred, unsigned suppressed)
{
        if (suppressed)
                tt_warn("refused control connection from uid %u gid %u pid %d (%u similar "
                        "refusals suppressed)",
                        (unsigned)cred->uid, (unsigned)cred->gid, (int)cred->pid, suppressed);
        else
                tt_warn("refused control connection from uid %u gid %u pid %d",
                        (unsigned)cred->uid, (unsigned)cred->gid, (int)cred->pid);
        clock_gettime(CLOCK_MONOTONIC, &r->last);
        r->logged = true;
}

/* The second after a logged refusal is over: log the last suppressed one, with the count. */
static void refusal_flush(evutil_socket_t fd, short what, void *opaque)
{
        struct api_refusals *r = opaque;
        unsigned n = r->suppressed;

        if (n == 0)
                return;
        r->suppressed = 0;
        refusal_log(r, &r->cred, n - 1);
}

/*
 * At most one line a second, so that a local flood cannot fill the log: a refusal within a
 * second of the last line is counted, and the count is logged when that second ends.
 */
static void refusal_note(struct api_server *srv, const struct ucred *cred)
{
        struct api_refusals *r = &srv->refusals;
        struct timespec now;
        double since;

        clock_gettime(CLOCK_MONOTONIC, &now);
        since = elapsed_s(&r->last, &now);
        if (!r->logged || (since >= 1.0 && r->suppressed == 0)) {
                refusal_log(r, cred, 0);
                return;
        }
        r->suppressed++;
        r->cred = *cred;
        if (r->flush == NULL)
                r->flush = evtimer_new(evconnlistener_get_base(srv->listener), refusal_flush, r);
        if (r->flush && !evtimer_pending(r->flush, NULL)) {
                double wait = since >= 1.0 ? 0 : 1.0 - since;
                struct timeval tv = {(time_t)wait, (suseconds_t)((wait - (time_t)wait) * 1e6)};

                evtimer_add(r->flush, &tv);
        }
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

                refusal_note(srv, &cred);
                (void)!write(fd, msg, sizeof(msg) - 1);
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
        c->splitter = wire_splitter_new();
        c->out = wire_out_new(client_sink, c);
        if (c->bev == NULL || c->splitter == NULL || c->out == NULL) {
                if (c->bev)
                        bufferevent_free(c->bev);
                else
                        close(fd);
                wire_splitter_free(c->splitter);
                wire_out_free(c->out);
                free(c);
                return;
        }
        wire_splitter_set_limits(c->splitter, API_MAX_MESSAGE, 0, 64);
        bufferevent_setcb(c->bev, client_read, client_written, client_event, c);
        bufferevent_setwatermark(c->bev, EV_WRITE, API_MAX_OUTPUT / 2, 0);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        c->next = srv->clients;
        srv->clients = c;
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
        if (srv->refusals.flush) {
                refusal_flush(-1, 0, &srv->refusals);
                event_free(srv->refusals.flush);
        }
        free(srv->path);
        free(srv);
        d->api = NULL;
}
