/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The control API's guest-agent verbs: see guest_ops.h. */
#include "host/guest_ops.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "host/cpulist.h"
#include "host/guest.h"
#include "host/monitor.h"
#include "host/qmp.h"
#include "host/vm-int.h"
#include "wire/wire.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Verbs whose guest work may take a while (hooks, FITRIM, sysfs writes) get this by default. */
#define GOP_SLOW_TIMEOUT_S 60

struct gop;

/*
 * One step of a verb. ret is the previous call's "return" value (NULL on the first step). Issue
 * the next call and return 1, or finish: return 0 with op->result set, or -1 with err set.
 */
typedef int (*gop_step_fn)(struct gop *op, json_t *ret, struct tt_error *err);

struct guest_op_def {
        const char *name;             /* control-API verb */
        gop_step_fn step;             /* the verb's logic */
        const struct wire_arg *args;  /* its arguments (domain and timeout included) */
        int default_timeout_s;        /* per call, when the client gives none */
};

/* A verb while it runs. */
struct gop {
        struct vm *vm;                  /* the domain */
        const struct guest_op_def *def; /* what runs */
        json_t *args;                   /* the request's arguments (a reference) */
        int timeout_s;                  /* per agent call */
        int step;                       /* how many calls answered so far */
        json_t *result;                 /* the reply to the client, once finished */
        json_t *acc;                    /* what a multi-call verb collects */
        json_t *reply;                  /* the last call's whole reply (agent-command) */
        size_t cursor;                  /* guestinfo: the next group to ask for */
        const char *group;              /* guestinfo: the group in flight */
        vm_done_fn done;                /* the client */
        void *opaque;                   /* its argument */
};

static void gop_free(struct gop *op)
{
        json_decref(op->args);
        json_decref(op->result);
        json_decref(op->acc);
        free(op);
}

static const char *arg_str(struct gop *op, const char *key)
{
        return json_string_value(json_object_get(op->args, key));
}

static bool arg_bool(struct gop *op, const char *key)
{
        return json_is_true(json_object_get(op->args, key));
}

static void gop_reply(void *opaque, json_t *reply, const struct tt_error *err);

/* Queue an agent call (cmd stolen) whose reply runs the verb's next step. */
static int gop_call(struct gop *op, json_t *cmd, unsigned flags, const char *await,
                    struct tt_error *err)
{
        if (cmd == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (guest_call(op->vm, cmd, op->timeout_s, flags, await, gop_reply, op, err) < 0)
                return -1;
        return 1;
}

static int gop_exec(struct gop *op, const char *execute, json_t *arguments, unsigned flags,
                    struct tt_error *err)
{
        json_t *cmd = arguments ? json_pack("{s:s, s:o}", "execute", execute, "arguments",
                                            arguments)
                                : json_pack("{s:s}", "execute", execute);

        return gop_call(op, cmd, flags, NULL, err);
}

static int gop_finish(struct gop *op, json_t *result)
{
        op->result = result ? result : json_object();
        return 0;
}

static void gop_end(struct gop *op, int r, const struct tt_error *err)
{
        if (r == 1)
                return;
        op->done(op->opaque, r == 0 ? op->result : NULL, r == 0 ? NULL : err);
        gop_free(op);
}

static void gop_reply(void *opaque, json_t *reply, const struct tt_error *err)
{
        struct gop *op = opaque;
        struct tt_error serr = {0};
        int r;

        if (err) {
                gop_end(op, -1, err);
                return;
        }
        op->step++;
        op->reply = reply;
        r = op->def->step(op, json_object_get(reply, "return"), &serr);
        op->reply = NULL;
        gop_end(op, r, &serr);
        tt_error_clear(&serr);
}

/* ---- the verbs ---- */

static int step_agent_command(struct gop *op, json_t *ret, struct tt_error *err)
{
        if (op->step == 0)
                return gop_call(op, json_deep_copy(json_object_get(op->args, "command")), 0, NULL,
                                err);
        return gop_finish(op, json_incref(op->reply));
}

static int step_set_password(struct gop *op, json_t *ret, struct tt_error *err)
{
        const char *pw = arg_str(op, "password");
        _cleanup_free_ char *b64 = NULL;

        if (op->step > 0)
                return gop_finish(op, NULL);
        b64 = malloc(tt_base64_encoded_len(strlen(pw)) + 1);
        if (b64 == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        b64[tt_base64_encode(pw, strlen(pw), b64)] = '\0';
        return gop_exec(op, "guest-set-user-password",
                        json_pack("{s:s, s:s, s:b}", "username", arg_str(op, "user"), "password",
                                  b64, "crypted", arg_bool(op, "encrypted")),
                        0, err);
}

/* Verbs that are one command without arguments, answering its raw return. */
static int step_raw(struct gop *op, json_t *ret, const char *execute, struct tt_error *err)
{
        if (op->step == 0)
                return gop_exec(op, execute, NULL, 0, err);
        return gop_finish(op, json_incref(ret));
}

static int step_ifaddr(struct gop *op, json_t *ret, struct tt_error *err)
{
        const char *source = arg_str(op, "source");

        if (op->step == 0 && source && strcmp(source, "agent") != 0)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "argument unsupported: --source %s: Tether reads interface "
                                    "addresses from the guest agent only (--source agent)",
                                    source);
        return step_raw(op, ret, "guest-network-get-interfaces", err);
}

static int step_fsinfo(struct gop *op, json_t *ret, struct tt_error *err)
{
        return step_raw(op, ret, "guest-get-fsinfo", err);
}

static int step_time(struct gop *op, json_t *ret, struct tt_error *err)
{
        json_t *t = json_object_get(op->args, "time");
        bool sync = arg_bool(op, "sync");
        json_int_t ns;

        if (op->step > 0) {
                if (t || sync)
                        return gop_finish(op, NULL);
                ns = json_integer_value(ret);
                return gop_finish(op, json_pack("{s:I, s:I}", "seconds",
                                                (json_int_t)(ns / 1000000000), "nseconds",
                                                (json_int_t)(ns % 1000000000)));
        }
        if (t && sync)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: time and sync are "
                                    "mutually exclusive");
        if (t) {
                json_int_t s = json_integer_value(t);
                json_int_t nsec = json_integer_value(json_object_get(op->args, "nseconds"));

                if (s < 0 || s > INT64_MAX / 1000000000 - 1)
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "invalid argument: time %lld is out of range",
                                            (long long)s);
                return gop_exec(op, "guest-set-time",
                                json_pack("{s:I}", "time", s * 1000000000 + nsec), 0, err);
        }
        if (sync)
                return gop_exec(op, "guest-set-time", NULL, 0, err);
        return gop_exec(op, "guest-get-time", NULL, 0, err);
}

static int step_freeze(struct gop *op, json_t *ret, struct tt_error *err)
{
        json_t *mps = json_object_get(op->args, "mountpoints");

        if (op->step > 0)
                return gop_finish(op, json_pack("{s:I}", "count", json_integer_value(ret)));
        if (json_array_size(mps) > 0)
                return gop_exec(op, "guest-fsfreeze-freeze-list",
                                json_pack("{s:O}", "mountpoints", mps), 0, err);
        return gop_exec(op, "guest-fsfreeze-freeze", NULL, 0, err);
}

static int step_thaw(struct gop *op, json_t *ret, struct tt_error *err)
{
        if (op->step > 0)
                return gop_finish(op, json_pack("{s:I}", "count", json_integer_value(ret)));
        /* guest-fsfreeze-thaw thaws everything: libvirt refuses a list rather than lie. */
        if (json_array_size(json_object_get(op->args, "mountpoints")) > 0)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "argument unsupported: specifying mountpoints is not "
                                    "supported");
        return gop_exec(op, "guest-fsfreeze-thaw", NULL, 0, err);
}

static int step_fstrim(struct gop *op, json_t *ret, struct tt_error *err)
{
        json_t *min = json_object_get(op->args, "minimum");
        const char *mp = arg_str(op, "mountpoint");
        size_t i;
        json_t *p;

        if (op->step == 0)
                return gop_exec(op, "guest-fstrim",
                                min ? json_pack("{s:O}", "minimum", min) : NULL, 0, err);
        /*
         * guest-fstrim trims every mounted filesystem (trimming is harmless); with --mountpoint
         * only that one's outcome counts, and a mountpoint that was not trimmed is an error.
         */
        if (mp) {
                json_array_foreach(json_object_get(ret, "paths"), i, p) {
                        const char *path = json_string_value(json_object_get(p, "path"));
                        const char *error = json_string_value(json_object_get(p, "error"));

                        if (path == NULL || strcmp(path, mp) != 0)
                                continue;
                        if (error)
                                return tt_error_set(err, VM_ERR_FAILED,
                                                    "operation failed: cannot trim '%s': %s", mp,
                                                    error);
                        return gop_finish(op, json_pack("{s:[O]}", "paths", p));
                }
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "invalid argument: '%s' is not a mounted filesystem the "
                                    "guest agent can trim",
                                    mp);
        }
        return gop_finish(op, json_incref(ret));
}

/*
 * guestinfo's groups, in libvirt's order. Groups whose facts change rarely and that the monitor
 * polls are read from its cache while that is fresh (younger than its poll interval): OS, users
 * and interface addresses. Filesystems (used bytes move), disks, time zone and host name are
 * always asked live.
 */
static const struct guestinfo_group {
        const char *option;          /* argument / virsh option */
        const char *command;         /* agent command */
        enum monitor_source cached;  /* the monitor's source for it, or MON_SOURCE_LAST */
} guestinfo_groups[] = {
        {"user", "guest-get-users", MON_USERS},
        {"os", "guest-get-osinfo", MON_OSINFO},
        {"timezone", "guest-get-timezone", MON_SOURCE_LAST},
        {"hostname", "guest-get-host-name", MON_SOURCE_LAST},
        {"filesystem", "guest-get-fsinfo", MON_SOURCE_LAST},
        {"disk", "guest-get-disks", MON_SOURCE_LAST},
        {"interface", "guest-network-get-interfaces", MON_INTERFACES},
};

static bool guestinfo_wanted(struct gop *op, size_t g)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(guestinfo_groups); i++)
                if (arg_bool(op, guestinfo_groups[i].option))
                        return arg_bool(op, guestinfo_groups[g].option);
        return true; /* no group named: all of them */
}

static int step_guestinfo(struct gop *op, json_t *ret, struct tt_error *err)
{
        size_t g;

        if (op->acc == NULL && (op->acc = json_object()) == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        /* The cache does not answer for a guest that could not answer itself. */
        if (op->step == 0 && op->vm->status.state != VM_STATE_RUNNING)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: domain is not running");
        if (op->group && !json_is_true(json_object_get(op->reply, "unsupported")))
                json_object_set(op->acc, op->group, ret);
        op->group = NULL;
        for (g = op->cursor; g < TT_ARRAY_SIZE(guestinfo_groups); g++) {
                json_t *cached;

                if (!guestinfo_wanted(op, g))
                        continue;
                cached = guestinfo_groups[g].cached == MON_SOURCE_LAST
                                 ? NULL
                                 : monitor_fresh(op->vm, guestinfo_groups[g].cached);
                if (cached) {
                        json_object_set(op->acc, guestinfo_groups[g].option, cached);
                        continue;
                }
                op->group = guestinfo_groups[g].option;
                op->cursor = g + 1;
                /* A command the agent lacks leaves its group out, as libvirt does. */
                return gop_exec(op, guestinfo_groups[g].command, NULL, GUEST_CALL_UNSUPPORTED_OK,
                                err);
        }
        return gop_finish(op, json_incref(op->acc));
}

static int step_guestvcpus(struct gop *op, json_t *ret, struct tt_error *err)
{
        const char *cpulist = arg_str(op, "cpulist");
        bool enable = arg_bool(op, "enable"), disable = arg_bool(op, "disable");
        _cleanup_free_ bool *set = NULL, *missing = NULL;
        _cleanup_json_ json_t *changes = NULL;
        char text[256];
        size_t i;
        json_t *v;

        if (op->step == 0) {
                if (cpulist == NULL && (enable || disable))
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "invalid argument: --enable and --disable need "
                                            "--cpulist");
                if (cpulist && enable == disable)
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "invalid argument: --cpulist needs exactly one of "
                                            "--enable and --disable");
                return gop_exec(op, "guest-get-vcpus", NULL, 0, err);
        }
        if (cpulist == NULL || op->step == 2)
                return gop_finish(op, op->step == 2 ? NULL : json_incref(ret));
        set = calloc(CPULIST_MAX + 1, sizeof(*set));
        missing = calloc(CPULIST_MAX + 1, sizeof(*missing));
        changes = json_array();
        if (set == NULL || missing == NULL || changes == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (cpulist_parse(cpulist, set, err) < 0) {
                err->code = VM_ERR_INVALID_OP;
                return -1;
        }
        for (long id = 0; id <= CPULIST_MAX; id++) {
                bool found = false;

                if (!set[id])
                        continue;
                json_array_foreach(ret, i, v) {
                        if (json_integer_value(json_object_get(v, "logical-id")) != id)
                                continue;
                        found = true;
                        if (disable && !json_is_true(json_object_get(v, "can-offline")) &&
                            json_is_true(json_object_get(v, "online")))
                                return tt_error_set(err, VM_ERR_INVALID_OP,
                                                    "Operation not supported: vCPU '%ld' is not "
                                                    "offlinable",
                                                    id);
                        if (json_is_true(json_object_get(v, "online")) != enable)
                                json_array_append_new(changes,
                                                      json_pack("{s:I, s:b}", "logical-id",
                                                                (json_int_t)id, "online", enable));
                }
                if (!found)
                        missing[id] = true;
        }
        if (cpulist_format(missing, text, sizeof(text)) > 0)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "invalid argument: guest is missing vCPUs '%s'", text);
        if (json_array_size(changes) == 0)
                return gop_finish(op, NULL);
        op->step = 1; /* the next answer is the set's */
        return gop_exec(op, "guest-set-vcpus", json_pack("{s:O}", "vcpus", changes), 0, err);
}

static int vcpu_cmp(const void *a, const void *b)
{
        json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "logical-id"));
        json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "logical-id"));

        return x < y ? -1 : x > y;
}

/* setvcpus N --guest: online the lowest offline vCPUs, or offline the highest offlinable. */
static int step_setvcpus(struct gop *op, json_t *ret, struct tt_error *err)
{
        json_int_t want = json_integer_value(json_object_get(op->args, "count"));
        _cleanup_json_ json_t *changes = NULL;
        _cleanup_free_ json_t **byid = NULL;
        json_int_t online = 0;
        size_t i, n;
        json_t *v;

        if (op->step == 0) {
                if (!arg_bool(op, "guest"))
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "argument unsupported: Tether changes the vCPUs a "
                                            "guest uses (--guest) only");
                if (want < 1)
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "Can't set %lld processors for a VM", (long long)want);
                if (op->vm->live && want > (json_int_t)op->vm->live->vcpus)
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "invalid argument: requested vcpu count is greater "
                                            "than the count of enabled vcpus in the domain: "
                                            "%lld > %u",
                                            (long long)want, op->vm->live->vcpus);
                return gop_exec(op, "guest-get-vcpus", NULL, 0, err);
        }
        if (op->step == 2)
                return gop_finish(op, NULL);
        n = json_array_size(ret);
        if ((size_t)want > n)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "invalid argument: guest agent reports less cpu than "
                                    "requested");
        changes = json_array();
        byid = calloc(n + 1, sizeof(*byid));
        if (changes == NULL || byid == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        /* qemu-ga lists vCPUs in directory order: sort them by number first. */
        json_array_foreach(ret, i, v) {
                byid[i] = v;
                online += json_is_true(json_object_get(v, "online"));
        }
        qsort(byid, n, sizeof(*byid), vcpu_cmp);
        for (i = 0; i < n && online < want; i++) {
                v = byid[i];
                if (json_is_true(json_object_get(v, "online")))
                        continue;
                json_array_append_new(changes, json_pack("{s:O, s:b}", "logical-id",
                                                         json_object_get(v, "logical-id"),
                                                         "online", 1));
                online++;
        }
        for (i = n; i-- > 0 && online > want;) {
                v = byid[i];
                if (!json_is_true(json_object_get(v, "online")) ||
                    !json_is_true(json_object_get(v, "can-offline")))
                        continue;
                json_array_append_new(changes, json_pack("{s:O, s:b}", "logical-id",
                                                         json_object_get(v, "logical-id"),
                                                         "online", 0));
                online--;
        }
        if (online != want)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "invalid argument: guest agent reports less cpu than "
                                    "requested");
        if (json_array_size(changes) == 0)
                return gop_finish(op, NULL);
        op->step = 1;
        return gop_exec(op, "guest-set-vcpus", json_pack("{s:O}", "vcpus", changes), 0, err);
}

static int step_get_sshkeys(struct gop *op, json_t *ret, struct tt_error *err)
{
        if (op->step > 0)
                return gop_finish(op, json_incref(ret));
        return gop_exec(op, "guest-ssh-get-authorized-keys",
                        json_pack("{s:s}", "username", arg_str(op, "user")), 0, err);
}

static int step_set_sshkeys(struct gop *op, json_t *ret, struct tt_error *err)
{
        json_t *keys = json_object_get(op->args, "keys");
        _cleanup_json_ json_t *none = json_array();

        if (op->step > 0)
                return gop_finish(op, NULL);
        if (keys == NULL)
                keys = none;
        if (arg_bool(op, "remove")) {
                if (arg_bool(op, "reset"))
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "Requested operation is not valid: --remove and "
                                            "--reset are mutually exclusive");
                if (json_array_size(keys) == 0)
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "Requested operation is not valid: --remove needs "
                                            "keys to remove");
                return gop_exec(op, "guest-ssh-remove-authorized-keys",
                                json_pack("{s:s, s:O}", "username", arg_str(op, "user"), "keys",
                                          keys),
                                0, err);
        }
        return gop_exec(op, "guest-ssh-add-authorized-keys",
                        json_pack("{s:s, s:O, s:b}", "username", arg_str(op, "user"), "keys", keys,
                                  "reset", arg_bool(op, "reset")),
                        0, err);
}

static int step_pmsuspend(struct gop *op, json_t *ret, struct tt_error *err)
{
        static const struct {
                const char *target;  /* virsh's word */
                const char *command; /* the agent's */
                const char *event;   /* QMP event that says it happened */
        } targets[] = {
                {"mem", "guest-suspend-ram", "SUSPEND"},
                {"disk", "guest-suspend-disk", "SUSPEND_DISK"},
                {"hybrid", "guest-suspend-hybrid", "SUSPEND"},
        };
        const char *target = arg_str(op, "target");

        if (op->step > 0)
                return gop_finish(op, NULL);
        if (json_integer_value(json_object_get(op->args, "duration")) != 0)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "argument unsupported: Duration not supported. Use 0 for now");
        for (size_t i = 0; i < TT_ARRAY_SIZE(targets); i++)
                if (strcmp(target, targets[i].target) == 0)
                        return gop_call(op, json_pack("{s:s}", "execute", targets[i].command),
                                        GUEST_CALL_NO_REPLY, targets[i].event, err);
        return tt_error_set(err, VM_ERR_INVALID_OP, "Invalid target");
}

static void gop_deferred_end(evutil_socket_t fd, short what, void *opaque)
{
        gop_end(opaque, 0, NULL);
}

/* ---- dompmwakeup: QEMU's system_wakeup, not the agent ---- */

static void wakeup_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct gop *op = opaque;

        gop_finish(op, NULL);
        gop_end(op, err ? -1 : 0, err);
}

/* ---- the table ---- */

#define ARG(n, t) {.name = (n), .type = (t), .required = true}
#define OPT(n, t) {.name = (n), .type = (t), .required = false}
#define DOM_TIMEOUT ARG("domain", WIRE_T_STRING), OPT("timeout", WIRE_T_INT)
#define END {.name = NULL}

static const struct wire_arg args_dom[] = {DOM_TIMEOUT, END};
static const struct wire_arg args_command[] = {DOM_TIMEOUT, ARG("command", WIRE_T_OBJECT), END};
static const struct wire_arg args_password[] = {DOM_TIMEOUT, ARG("user", WIRE_T_STRING),
                                                ARG("password", WIRE_T_STRING),
                                                OPT("encrypted", WIRE_T_BOOL), END};
static const struct wire_arg args_ifaddr[] = {DOM_TIMEOUT, OPT("source", WIRE_T_STRING), END};
static const struct wire_arg args_time[] = {DOM_TIMEOUT, OPT("time", WIRE_T_INT),
                                            OPT("nseconds", WIRE_T_INT), OPT("sync", WIRE_T_BOOL),
                                            END};
static const struct wire_arg args_mountpoints[] = {
        DOM_TIMEOUT,
        {.name = "mountpoints", .type = WIRE_T_ARRAY, .elem = WIRE_T_STRING},
        END};
static const struct wire_arg args_fstrim[] = {DOM_TIMEOUT, OPT("minimum", WIRE_T_INT),
                                              OPT("mountpoint", WIRE_T_STRING), END};
static const struct wire_arg args_guestinfo[] = {
        DOM_TIMEOUT,           OPT("user", WIRE_T_BOOL),     OPT("os", WIRE_T_BOOL),
        OPT("timezone", WIRE_T_BOOL), OPT("hostname", WIRE_T_BOOL), OPT("filesystem", WIRE_T_BOOL),
        OPT("disk", WIRE_T_BOOL),     OPT("interface", WIRE_T_BOOL), END};
static const struct wire_arg args_guestvcpus[] = {DOM_TIMEOUT, OPT("cpulist", WIRE_T_STRING),
                                                  OPT("enable", WIRE_T_BOOL),
                                                  OPT("disable", WIRE_T_BOOL), END};
static const struct wire_arg args_setvcpus[] = {DOM_TIMEOUT, ARG("count", WIRE_T_INT),
                                                OPT("guest", WIRE_T_BOOL), END};
static const struct wire_arg args_user[] = {DOM_TIMEOUT, ARG("user", WIRE_T_STRING), END};
static const struct wire_arg args_set_sshkeys[] = {
        DOM_TIMEOUT,
        ARG("user", WIRE_T_STRING),
        {.name = "keys", .type = WIRE_T_ARRAY, .elem = WIRE_T_STRING},
        OPT("reset", WIRE_T_BOOL),
        OPT("remove", WIRE_T_BOOL),
        END};
static const struct wire_arg args_pmsuspend[] = {DOM_TIMEOUT, ARG("target", WIRE_T_STRING),
                                                 OPT("duration", WIRE_T_INT), END};

static const struct guest_op_def guest_ops[] = {
        {"agent-command", step_agent_command, args_command, GUEST_DEFAULT_TIMEOUT_S},
        {"set-user-password", step_set_password, args_password, GOP_SLOW_TIMEOUT_S},
        {"domifaddr", step_ifaddr, args_ifaddr, GUEST_DEFAULT_TIMEOUT_S},
        {"domtime", step_time, args_time, GUEST_DEFAULT_TIMEOUT_S},
        {"domfsfreeze", step_freeze, args_mountpoints, GOP_SLOW_TIMEOUT_S},
        {"domfsthaw", step_thaw, args_mountpoints, GOP_SLOW_TIMEOUT_S},
        {"domfsinfo", step_fsinfo, args_dom, GUEST_DEFAULT_TIMEOUT_S},
        {"domfstrim", step_fstrim, args_fstrim, GOP_SLOW_TIMEOUT_S},
        {"guestinfo", step_guestinfo, args_guestinfo, GUEST_DEFAULT_TIMEOUT_S},
        {"guestvcpus", step_guestvcpus, args_guestvcpus, GUEST_DEFAULT_TIMEOUT_S},
        {"setvcpus", step_setvcpus, args_setvcpus, GUEST_DEFAULT_TIMEOUT_S},
        {"get-user-sshkeys", step_get_sshkeys, args_user, GUEST_DEFAULT_TIMEOUT_S},
        {"set-user-sshkeys", step_set_sshkeys, args_set_sshkeys, GUEST_DEFAULT_TIMEOUT_S},
        {"dompmsuspend", step_pmsuspend, args_pmsuspend, GOP_SLOW_TIMEOUT_S},
        {"dompmwakeup", NULL, args_dom, GUEST_DEFAULT_TIMEOUT_S},
};

const struct guest_op_def *guest_op_find(const char *name)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(guest_ops); i++)
                if (strcmp(guest_ops[i].name, name) == 0)
                        return &guest_ops[i];
        return NULL;
}

const struct wire_arg *guest_op_args(const struct guest_op_def *def)
{
        return def->args;
}

int guest_op_start(struct vm *vm, const struct guest_op_def *def, json_t *args, vm_done_fn done,
                   void *opaque, struct tt_error *err)
{
        json_t *t = json_object_get(args, "timeout");
        struct gop *op;
        int r;

        if (t && (json_integer_value(t) < GUEST_TIMEOUT_BLOCK ||
                  json_integer_value(t) > 86400 ||
                  (json_integer_value(t) == GUEST_TIMEOUT_NOWAIT &&
                   strcmp(def->name, "agent-command") != 0)))
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "invalid argument: timeout %lld is out of range",
                                    (long long)json_integer_value(t));
        op = calloc(1, sizeof(*op));
        if (op == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        op->vm = vm;
        op->def = def;
        op->args = json_incref(args);
        op->timeout_s = t ? (int)json_integer_value(t) : def->default_timeout_s;
        op->done = done;
        op->opaque = opaque;
        if (def->step == NULL) {
                /* dompmwakeup */
                if (!vm_state_is_active(vm->status.state) || vm->qmp == NULL) {
                        gop_free(op);
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "Requested operation is not valid: domain is not "
                                            "running");
                }
                if (qmp_command(vm->qmp, "system_wakeup", NULL, VM_QMP_TIMEOUT_MS, wakeup_done,
                                op) < 0) {
                        gop_free(op);
                        return tt_error_set(err, VM_ERR_FAILED, "cannot talk to QEMU");
                }
                return 0;
        }
        r = def->step(op, NULL, err);
        if (r == 1)
                return 0;
        if (r == 0) {
                /* Finished without the agent (all from the monitor's cache): answer, not inline. */
                struct timeval now = {0, 0};

                if (event_base_once(vm->d->base, -1, EV_TIMEOUT, gop_deferred_end, op, &now) == 0)
                        return 0;
                tt_error_set(err, ENOMEM, "out of memory");
        }
        gop_free(op);
        return -1;
}
