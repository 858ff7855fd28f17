/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Loading definitions when tetherd starts, and reconnecting to the QEMUs that kept running
 * while it was away: the status file and QEMU's pidfile say which process, /proc says whether
 * it is still that domain's QEMU, and QEMU itself says running or paused.
 */
#include "host/vm-int.h"
#include "host/dac.h"
#include "host/console.h"
#include "host/guest.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "host/qemu_argv.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reconnect_status_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;
        const char *status = json_string_value(json_object_get(ret, "status"));

        if (err || status == NULL)
                return;
        /* QEMU is the truth for running versus paused after a daemon restart. */
        if (strcmp(status, "running") == 0 && vm->status.state == VM_STATE_PAUSED)
                vm_apply(vm, VM_EV_QMP_RESUME, NULL);
        else if (strcmp(status, "paused") == 0 && vm->status.state == VM_STATE_RUNNING)
                vm_apply(vm, VM_EV_QMP_STOP, NULL);
}

/*
 * Does pid still run QEMU for this domain (not a recycled pid)? Its argv carries
 * "-name guest=NAME,..." with NAME escaped as QEMU's option syntax wants (',' doubled).
 */
static bool is_our_qemu(pid_t pid, const char *name)
{
        char path[64];
        _cleanup_free_ char *cmdline = NULL;
        _cleanup_free_ char *escaped = qemu_argv_escape(name);
        _cleanup_free_ char *want = NULL;
        size_t len = 0, wlen;

        if (escaped == NULL || asprintf(&want, "guest=%s,", escaped) < 0)
                return false;
        wlen = strlen(want);
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        if (tt_read_file(path, 1 << 20, &cmdline, &len, NULL) < 0)
                return false;
        for (size_t i = 0; i < len; i += strlen(cmdline + i) + 1)
                if (strncmp(cmdline + i, want, wlen) == 0)
                        return true;
        return false;
}

/* The status file's fields, all checked; false when anything is missing or out of range. */
bool vm_status_fields(json_t *st, struct vm_status *status, pid_t *pid, int *id)
{
        json_t *js = json_object_get(st, "state"), *jr = json_object_get(st, "reason");
        json_t *jp = json_object_get(st, "pid"), *ji = json_object_get(st, "id");
        json_int_t state, reason, p, i;

        if (!json_is_integer(js) || !json_is_integer(jr) || !json_is_integer(jp) ||
            !json_is_integer(ji))
                return false;
        state = json_integer_value(js);
        reason = json_integer_value(jr);
        p = json_integer_value(jp);
        i = json_integer_value(ji);
        if (state <= VM_STATE_NOSTATE || state >= VM_STATE_LAST ||
            !vm_state_is_active((enum vm_state)state) || reason < 0 || reason > 100 ||
            vm_state_reason_name((enum vm_state)state, (int)reason) == NULL || p <= 1 ||
            p > INT32_MAX || i < 1 || i > INT32_MAX)
                return false;
        *status = (struct vm_status){(enum vm_state)state, (int)reason};
        *pid = (pid_t)p;
        *id = (int)i;
        return true;
}

/* The pid QEMU wrote to ROOT/run/tether/domains/NAME/qemu.pid, or 0. */
static pid_t run_pidfile(struct tetherd *d, const char *name)
{
        _cleanup_free_ char *path = store_run_path(&d->store, name, "qemu.pid");
        _cleanup_free_ char *text = path ? tt_read_line_file(path) : NULL;
        int64_t pid = 0;

        if (text == NULL || tt_parse_int64(text, 10, &pid) < 0 || pid <= 1 || pid > INT32_MAX)
                return 0;
        return (pid_t)pid;
}

/*
 * Nothing usable is left of a running domain's run folder: kill its QEMU (only when the pid
 * really runs QEMU for this domain) rather than leave it running unmanaged, where a later start
 * would run a second QEMU on the same disks. libvirt does the same: shut off (daemon).
 */
static void reconnect_abandon(struct tetherd *d, const char *name, pid_t pid, const char *why)
{
        struct vm *vm = vm_lookup_name(d, name);

        if (pid > 0 && vm_pid_alive(pid) && is_our_qemu(pid, name)) {
                tt_warn("%s: %s; killing its QEMU (pid %d)", name, why, (int)pid);
                kill(pid, SIGKILL);
                if (vm && !vm_state_is_active(vm->status.state)) {
                        vm->status = (struct vm_status){VM_STATE_RUNNING, VM_RUNNING_UNKNOWN};
                        vm_stopped(vm, VM_EV_RECONNECT_KILLED);
                        return;
                }
        } else {
                tt_warn("%s: %s; its QEMU is gone", name, why);
        }
        dac_restore(d, name);
        store_remove_run(&d->store, name);
}

static void vm_reconnect(struct tetherd *d, const char *name)
{
        struct tt_error err = {0};
        _cleanup_json_ json_t *st = store_load_status(&d->store, name, &err);
        _cleanup_free_ char *xml_path = store_run_path(&d->store, name, "domain.xml");
        _cleanup_free_ char *qmp_path = store_run_path(&d->store, name, "qmp.sock");
        struct vm_status status = {VM_STATE_RUNNING, VM_RUNNING_UNKNOWN};
        struct domain *live;
        struct vm *vm;
        pid_t pid = 0;
        int id = 0;

        if (st == NULL || !vm_status_fields(st, &status, &pid, &id)) {
                /* Fall back to QEMU's own pidfile; QEMU tells us running or paused below. */
                tt_warn("%s: status file %s; recovering from the pidfile", name,
                        st ? "is invalid" : "is unreadable");
                pid = run_pidfile(d, name);
                status = (struct vm_status){VM_STATE_RUNNING, VM_RUNNING_UNKNOWN};
                id = 0;
        }
        tt_error_clear(&err);
        live = xml_path ? domain_parse_file(xml_path, &err) : NULL;
        if (live == NULL) {
                reconnect_abandon(d, name, pid, "its live definition is unreadable");
                tt_error_clear(&err);
                return;
        }
        vm = vm_lookup_name(d, name);
        if (vm == NULL) {
                struct domain *def = vm_domain_copy(live, &err);

                vm = def ? vm_new(d, def, false) : NULL;
                if (vm == NULL) {
                        domain_free(live);
                        reconnect_abandon(d, name, pid, "out of memory");
                        tt_error_clear(&err);
                        return;
                }
        }
        vm->live = live;
        {
                json_t *ports = json_object_get(st, "graphics_ports");

                for (size_t i = 0; i < live->n_graphics && i < json_array_size(ports); i++)
                        live->graphics[i].port =
                                (int)json_integer_value(json_array_get(ports, i));
        }
        /* id 0: a new one is given once every domain has reconnected (no collisions). */
        vm->id = id;
        if (vm->id >= d->next_id)
                d->next_id = vm->id + 1;
        vm->status = status;
        vm->pid = pid;
        vm->is_child = false;
        if (!vm_pid_alive(pid) || !is_our_qemu(pid, name)) {
                /* QEMU died while we were away. */
                vm->pid = 0;
                vm_stopped(vm, VM_EV_RECONNECT_GONE);
                if (!vm->persistent)
                        vm_unlink_free(vm);
                return;
        }
        vm->qmp = qmp_new(d->base, &vm_qmp_callbacks, vm);
        if (vm->qmp == NULL || qmp_connect(vm->qmp, qmp_path, &err) < 0) {
                tt_warn("%s: cannot reconnect to QEMU (%s); killing it", name, err.msg);
                kill(pid, SIGKILL);
                vm_stopped(vm, VM_EV_RECONNECT_KILLED);
                tt_error_clear(&err);
                return;
        }
        qmp_command(vm->qmp, "query-status", NULL, VM_QMP_TIMEOUT_MS, reconnect_status_done, vm);
        if (guest_attach(vm, &err) < 0) {
                tt_warn("%s: guest agent: %s", name, err.msg);
                tt_error_clear(&err);
        }
        if (console_start(vm, &err) < 0) {
                tt_warn("%s: serial console: %s", name, err.msg);
                tt_error_clear(&err);
        }
        tt_info("%s: reconnected to QEMU pid %d", name, (int)pid);
        if (vm->status.state == VM_STATE_DYING) {
                /* tetherd stopped in the middle of a destroy: finish it (nobody waits). */
                tt_info("%s: was dying; killing QEMU pid %d", name, (int)pid);
                vm->done = NULL;
                vm->done_opaque = NULL;
                vm_destroy_begin(vm, VM_EV_KILL);
        }
}

static void autostart_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        if (err)
                tt_err("autostart failed: %s", err->msg);
}

int vm_load_all(struct tetherd *d, struct tt_error *err)
{
        char **names = store_list_defs(&d->store, err);
        char **running;

        if (names == NULL)
                return -1;
        d->next_id = 1;
        for (size_t i = 0; names[i]; i++) {
                _cleanup_free_ char *path = store_def_path(&d->store, names[i]);
                struct tt_error perr = {0};
                struct domain *def = path ? domain_parse_file(path, &perr) : NULL;
                struct vm *vm;

                if (def == NULL) {
                        tt_err("%s: ignoring definition: %s", names[i], perr.msg);
                        tt_error_clear(&perr);
                        continue;
                }
                vm = vm_new(d, def, true);
                if (vm)
                        vm->autostart = store_get_autostart(&d->store, def->name);
        }
        store_strv_free(names);
        running = store_list_running(&d->store, err);
        if (running == NULL)
                return -1;
        for (size_t i = 0; running[i]; i++)
                vm_reconnect(d, running[i]);
        store_strv_free(running);
        for (struct vm *vm = d->vms; vm; vm = vm->next) {
                if (vm_state_is_active(vm->status.state) && vm->id == 0) {
                        vm->id = d->next_id++;
                        vm_save_status(vm);
                }
        }
        for (struct vm *vm = d->vms; vm; vm = vm->next) {
                struct tt_error serr = {0};

                if (vm->autostart && !vm_state_is_active(vm->status.state) &&
                    vm_start(vm, 0, autostart_done, NULL, &serr) < 0) {
                        tt_err("%s: autostart failed: %s", vm->def->name, serr.msg);
                        tt_error_clear(&serr);
                }
        }
        return 0;
}

