/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "host/vm-int.h"
#include "host/backing.h"
#include "host/snapshot.h"
#include "host/dac.h"
#include "host/hoststop.h"
#include "host/console.h"
#include "host/events.h"
#include "host/guest.h"
#include "host/monitor.h"
#include "host/policy.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "host/qemu_argv.h"
#include "host/qmp.h"
#include "host/saveimage.h"
#include "host/tap.h"
#include "wire/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* destroy: SIGTERM, then SIGKILL after this many 100 ms ticks (libvirt: 10 s). */
#define VM_KILL_TICKS 100
/* After its monitor closed, QEMU gets this long to exit before SIGKILL (and again after it). */
#define VM_EXIT_WAIT_S 10
/* destroy --graceful gives up after this many ticks (libvirt: 15 s). */
#define VM_GRACEFUL_TICKS 150

static void vm_on_event(void *opaque, const char *name, json_t *data);
static void vm_on_closed(void *opaque);
static void exit_wait_end(struct vm *vm);
const struct qmp_callbacks vm_qmp_callbacks = {vm_on_event, vm_on_closed};

/* ---- small helpers ---- */

void vm_save_status(struct vm *vm)
{
        struct tt_error err = {0};
        json_t *st;

        if (!vm_state_is_active(vm->status.state))
                return;
        st = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:b}", "name", vm->def->name, "uuid",
                       vm->def->uuid, "pid", (int)vm->pid, "id", vm->id, "state",
                       (int)vm->status.state, "reason", vm->status.reason, "persistent",
                       vm->persistent);
        /* Autoport ports are not in the live XML (autoport resets them): keep them here. */
        if (st && vm->live) {
                json_t *ports = json_array();

                for (size_t i = 0; i < vm->live->n_graphics; i++)
                        json_array_append_new(ports, json_integer(vm->live->graphics[i].port));
                json_object_set_new(st, "graphics_ports", ports);
        }
        if (st == NULL || store_save_status(&vm->d->store, vm->def->name, st, &err) < 0)
                tt_err("%s: cannot save status: %s", vm->def->name, err.msg);
        json_decref(st);
        tt_error_clear(&err);
}

/* Apply a transition from the table; an event that does not apply is logged and ignored. */
int vm_apply(struct vm *vm, enum vm_event ev, struct tt_error *err)
{
        struct vm_status next, from = vm->status;
        struct tt_error local = {0};

        if (vm_state_apply(vm->status, ev, &next, err ? err : &local) < 0) {
                if (err == NULL)
                        tt_debug("%s: event %s ignored in state %s: %s", vm->def->name,
                                 vm_state_event_name(ev), vm_state_name(vm->status.state),
                                 local.msg);
                tt_error_clear(&local);
                return -1;
        }
        vm->status = next;
        vm_save_status(vm);
        /* Every transition passes here: its lifecycle event, if it makes one (events.c). */
        events_emit_transition(vm->d->events, vm->def->name, from, ev, vm->shutdown_detail);
        return 0;
}

static int invalid_op(struct tt_error *err, struct tt_error *why)
{
        tt_error_set(err, VM_ERR_INVALID_OP, "Requested operation is not valid: %s", why->msg);
        tt_error_clear(why);
        return -1;
}

/* Check that ev is valid now and no other job runs; then take the job. */
int vm_begin_job(struct vm *vm, const char *job, enum vm_event ev, vm_done_fn done,
                        void *opaque, struct tt_error *err)
{
        struct vm_status next;
        struct tt_error why = {0};

        if (vm->job)
                return tt_error_set(err, VM_ERR_BUSY, "domain %s is busy: %s", vm->def->name,
                                    vm->job);
        if (vm_state_apply(vm->status, ev, &next, &why) < 0)
                return invalid_op(err, &why);
        /* A guest started now would be cut off when tetherd exits, unsaved. */
        if (ev == VM_EV_LAUNCH && hoststop_running(vm->d))
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: the host is stopping: "
                                    "tetherd is saving or shutting down its guests, and starts "
                                    "none");
        vm->job = job;
        vm->done = done;
        vm->done_opaque = opaque;
        return 0;
}

/* Finish the running job: reply to its caller exactly once. */
void vm_end_job(struct vm *vm, json_t *ret, const struct tt_error *err)
{
        vm_done_fn done = vm->done;
        void *opaque = vm->done_opaque;

        vm->job = NULL;
        vm->done = NULL;
        vm->done_opaque = NULL;
        if (done)
                done(opaque, ret, err);
}

void vm_end_job_error(struct vm *vm, int code, const char *msg)
{
        struct tt_error err = {0};

        tt_error_set(&err, code, "%s", msg);
        vm_end_job(vm, NULL, &err);
        tt_error_clear(&err);
}

struct vm *vm_new(struct tetherd *d, struct domain *def, bool persistent)
{
        struct vm *vm = calloc(1, sizeof(*vm));

        if (vm == NULL)
                return NULL;
        vm->d = d;
        vm->def = def;
        vm->persistent = persistent;
        vm->id = -1;
        vm->image_fd = -1;
        vm->status = (struct vm_status){VM_STATE_SHUTOFF, VM_SHUTOFF_UNKNOWN};
        vm->next = d->vms;
        d->vms = vm;
        return vm;
}

void vm_unlink_free(struct vm *vm)
{
        struct vm **pp;

        for (pp = &vm->d->vms; *pp; pp = &(*pp)->next) {
                if (*pp == vm) {
                        *pp = vm->next;
                        break;
                }
        }
        qmp_free(vm->qmp);
        if (vm->timer)
                event_free(vm->timer);
        exit_wait_end(vm);
        if (vm->poll)
                event_free(vm->poll);
        if (vm->wait_timer)
                event_free(vm->wait_timer);
        guest_detach(vm);
        console_stop(vm);
        monitor_vm_drop(vm);
        vm_save_sync_abandon(vm);
        if (vm->image_fd >= 0)
                close(vm->image_fd);
        if (vm->image)
                saveimage_clear(vm->image);
        free(vm->image);
        free(vm->image_path);
        free(vm->fail_msg);
        domain_free(vm->live);
        domain_free(vm->def);
        free(vm);
}

void vm_free_all(struct tetherd *d)
{
        while (d->vms)
                vm_unlink_free(d->vms);
}

struct vm *vm_lookup_name(struct tetherd *d, const char *name)
{
        for (struct vm *vm = d->vms; vm; vm = vm->next)
                if (strcmp(vm->def->name, name) == 0)
                        return vm;
        return NULL;
}

/*
 * As virsh looks a reference up: a number is an id first, then a uuid, then a name. So a
 * domain named "2" is reached by its name only while no running domain has id 2, as in virsh.
 */
struct vm *vm_lookup(struct tetherd *d, const char *key, struct tt_error *err)
{
        int64_t id = -1;
        struct vm *vm;

        if (tt_parse_int64(key, 10, &id) == 0 && id >= 0) {
                for (vm = d->vms; vm; vm = vm->next)
                        if (vm->id >= 0 && vm->id == id)
                                return vm;
        }
        for (vm = d->vms; vm; vm = vm->next)
                if (strcasecmp(vm->def->uuid, key) == 0)
                        return vm;
        vm = vm_lookup_name(d, key);
        if (vm)
                return vm;
        tt_error_set(err, VM_ERR_NO_DOMAIN, "failed to get domain '%s'", key);
        return NULL;
}

/* The last lines of QEMU's log, to explain a failed start as libvirt does. */
static char *log_tail(struct vm *vm)
{
        _cleanup_free_ char *path = store_log_path(&vm->d->store, vm->def->name);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        char *p;

        if (path == NULL || tt_read_file(path, 1 << 20, &text, &len, NULL) < 0)
                return strdup("");
        while (len > 0 && text[len - 1] == '\n')
                text[--len] = '\0';
        p = strrchr(text, '\n');
        return strdup(p ? p + 1 : text);
}

/* ---- stopping: every way QEMU goes away ends here ---- */

/* Stop waiting for QEMU's process to exit (exit_ev holds its pidfd). */
static void exit_wait_end(struct vm *vm)
{
        if (vm->exit_ev == NULL)
                return;
        close(event_get_fd(vm->exit_ev));
        event_free(vm->exit_ev);
        vm->exit_ev = NULL;
        vm->exit_killed = false;
}

/* Whether QEMU's process has exited (a child is left for vm_reap to collect). */
static bool qemu_exited(struct vm *vm)
{
        siginfo_t si = {0};

        if (vm->pid <= 0)
                return true;
        if (vm->is_child) {
                /* WNOWAIT: look without reaping. ECHILD: the SIGCHLD handler reaped it. */
                if (waitid(P_PID, (id_t)vm->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                        return true;
                return si.si_pid == vm->pid;
        }
        return !vm_pid_alive(vm->pid);
}

static void vm_reap(struct vm *vm)
{
        /*
         * QEMU closed its monitor as it exited. Reap it if it is already gone; otherwise the
         * SIGCHLD handler does, without this loop waiting for it.
         */
        if (vm->pid > 0 && vm->is_child)
                waitpid(vm->pid, NULL, WNOHANG);
}

/* QEMU is gone: apply ev, clean the run folder, drop a transient domain. */
void vm_stopped(struct vm *vm, enum vm_event ev)
{
        const char *name = vm->def->name;

        vm_reap(vm);
        exit_wait_end(vm);
        if (vm->timer)
                event_del(vm->timer);
        /* An image QEMU was writing is incomplete unless the save finished. */
        vm_image_release(vm, vm->image_path && !vm->saved && !vm->restoring);
        vm_power_release(vm);
        guest_detach(vm);
        console_stop(vm);
        monitor_vm_drop(vm);
        vm->saved = false;
        qmp_free(vm->qmp);
        vm->qmp = NULL;
        vm->pid = 0;
        vm->is_child = false;
        vm->destroying = false;
        vm->fake_reboot = false;
        vm->id = -1;
        vm_apply(vm, ev, NULL);
        /* The images QEMU's user was given go back to their owners. */
        dac_restore(vm->d, name);
        store_remove_run(&vm->d->store, name);
        domain_free(vm->live);
        vm->live = NULL;
        {
                _cleanup_free_ char *text =
                        vm_state_format(vm->status.state, vm->status.reason, true);
                tt_info("%s: %s", name, text ? text : "stopped");
        }
}

/* Jobs that launch QEMU: its exit before they finish is a failed start. */
bool vm_job_is_launch(const char *job)
{
        return job && (strcmp(job, "start") == 0 || strcmp(job, "restore") == 0);
}

void vm_finish_stop(struct vm *vm, enum vm_event ev)
{
        const char *job = vm->job;
        _cleanup_free_ char *fail = vm->fail_msg;

        vm->fail_msg = NULL;
        vm_stopped(vm, ev);
        if (vm_job_is_launch(job)) {
                _cleanup_free_ char *tail = log_tail(vm);
                char msg[1200];

                if (fail)
                        snprintf(msg, sizeof(msg), "%s", fail);
                else
                        snprintf(msg, sizeof(msg),
                                 "internal error: QEMU exited while starting: %s",
                                 tail && *tail ? tail : "no message");
                vm_end_job_error(vm, VM_ERR_FAILED, msg);
        } else if (job && strncmp(job, "snapshot-", 9) == 0) {
                /* QEMU went away under a snapshot job: it failed (snapshot.c drops its state). */
                vm_end_job_error(vm, VM_ERR_FAILED,
                                 "operation failed: domain is not running");
        } else if (job) {
                /* The final state, so that shutdown --wait can tell shutdown from destroyed. */
                _cleanup_json_ json_t *ret = json_pack(
                        "{s:s, s:s, s:s}", "name", vm->def->name, "state",
                        vm_state_name(vm->status.state), "reason",
                        vm_state_reason_name(vm->status.state, vm->status.reason) ?: "unknown");

                vm_end_job(vm, ret, NULL);
        }
        if (!vm->persistent)
                vm_unlink_free(vm);
}

/* What QEMU's going away means now. */
static enum vm_event closed_event(struct vm *vm)
{
        if (vm->destroying)
                return VM_EV_DESTROYED;
        if (vm->saved)
                return VM_EV_SAVED;
        if (vm_job_is_launch(vm->job))
                return VM_EV_START_FAILED;
        return VM_EV_MONITOR_EOF; /* the table decides: shutdown or crashed */
}

/* QEMU's process is gone (or would not go even after SIGKILL): finish the stop. */
static void exit_seen(evutil_socket_t fd, short what, void *opaque)
{
        struct vm *vm = opaque;
        struct timeval tv = {VM_EXIT_WAIT_S, 0};

        if ((what & EV_TIMEOUT) && !vm->exit_killed) {
                tt_warn("%s: QEMU (pid %d) closed its monitor but is still running after %d s: "
                        "killing it", vm->def->name, (int)vm->pid, VM_EXIT_WAIT_S);
                kill(vm->pid, SIGKILL);
                vm->exit_killed = true;
                event_add(vm->exit_ev, &tv);
                return;
        }
        if (what & EV_TIMEOUT)
                tt_err("%s: QEMU (pid %d) survived SIGKILL for %d s", vm->def->name, (int)vm->pid,
                       VM_EXIT_WAIT_S);
        vm_finish_stop(vm, closed_event(vm));
}

/*
 * QEMU closed its monitor: it is exiting, but its process (and its locks on the disk images)
 * may outlive the socket by a moment. The stop finishes when the process is gone, as libvirt's
 * does, so that whoever hears "shut off" can start the domain again at once.
 */
static void vm_on_closed(void *opaque)
{
        struct vm *vm = opaque;
        struct timeval tv = {VM_EXIT_WAIT_S, 0};
        int pfd;

        if (!qemu_exited(vm) && (pfd = (int)syscall(SYS_pidfd_open, vm->pid, 0)) >= 0) {
                vm->exit_ev = event_new(vm->d->base, pfd, EV_READ, exit_seen, vm);
                if (vm->exit_ev && event_add(vm->exit_ev, &tv) == 0)
                        return;
                if (vm->exit_ev)
                        event_free(vm->exit_ev);
                vm->exit_ev = NULL;
                close(pfd);
        }
        vm_finish_stop(vm, closed_event(vm));
}

/* A launch job failed after QEMU started: kill it; its exit ends the job with msg. */
void vm_launch_fail(struct vm *vm, const char *fmt, ...)
{
        va_list ap;

        if (vm->fail_msg == NULL) {
                va_start(ap, fmt);
                if (vasprintf(&vm->fail_msg, fmt, ap) < 0)
                        vm->fail_msg = NULL;
                va_end(ap);
        }
        tt_err("%s: %s", vm->def->name, vm->fail_msg ? vm->fail_msg : "start failed");
        kill(vm->pid, SIGKILL);
}

/* ---- QMP events ---- */

void vm_reply_ignore(void *opaque, json_t *ret, const struct tt_error *err)
{
        if (err)
                tt_warn("QMP: %s", err->msg);
}

/*
 * The cont of a fake reboot answered. QEMU sent the STOP that follows SHUTDOWN and the RESUME
 * of this cont before the reply, so applying the transition only now keeps them from turning
 * "running (booted)" into "paused" and then "running (unpaused)".
 */
static void fake_reboot_cont_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        if (err) {
                tt_warn("%s: fake reboot: %s", vm->def->name, err->msg);
                return;
        }
        vm_apply(vm, VM_EV_FAKE_REBOOT, NULL);
}

static void vm_after_guest_stop(struct vm *vm, enum domain_action action)
{
        if (action == DOMAIN_ACTION_RESTART || vm->fake_reboot) {
                /* Fake reboot: QEMU was kept by -no-shutdown; reset it and run again. */
                vm->fake_reboot = false;
                qmp_command(vm->qmp, "system_reset", NULL, VM_QMP_TIMEOUT_MS, vm_reply_ignore, vm);
                qmp_command(vm->qmp, "cont", NULL, VM_QMP_TIMEOUT_MS, fake_reboot_cont_done, vm);
        } else if (action == DOMAIN_ACTION_DESTROY) {
                /* QEMU is paused by -no-shutdown; let it exit (EOF gives the final state). */
                qmp_command(vm->qmp, "quit", NULL, VM_QMP_TIMEOUT_MS, vm_reply_ignore, vm);
        }
}

/*
 * What to do once the guest stopped: a reboot reaches us as a SHUTDOWN only under -no-reboot
 * (on_reboot destroy), with reason guest-reset; anything else is a power-off.
 */
static enum domain_action shutdown_action(struct vm *vm, json_t *data)
{
        const char *reason = json_string_value(json_object_get(data, "reason"));

        if (vm->live == NULL)
                return DOMAIN_ACTION_DESTROY;
        if (reason && strcmp(reason, "guest-reset") == 0)
                return vm->live->on_reboot;
        return vm->live->on_poweroff;
}

/*
 * The disk a block job works on, as virsh's 'block-job' event names it (its source). QEMU's
 * event names the job by the job-id it was started with (qemu-monitor-command): a disk's target
 * ("vda") or one of its nodes, libvirt-N-format or libvirt-N-storage, name that disk; any
 * other job id is shown as it is (NULL here).
 */
static const char *block_job_disk(const struct vm *vm, const char *job)
{
        unsigned long n;
        char *end;

        if (job == NULL || vm->live == NULL)
                return NULL;
        for (size_t i = 0; i < vm->live->n_disks; i++)
                if (vm->live->disks[i].target && strcmp(vm->live->disks[i].target, job) == 0)
                        return vm->live->disks[i].source;
        if (strncmp(job, "libvirt-", 8) != 0)
                return NULL;
        errno = 0;
        n = strtoul(job + 8, &end, 10);
        if (errno || end == job + 8 || n == 0 || n > vm->live->n_disks ||
            (strcmp(end, "-format") != 0 && strcmp(end, "-storage") != 0))
                return NULL;
        return vm->live->disks[n - 1].source;
}

static void vm_on_event(void *opaque, const char *name, json_t *data)
{
        struct vm *vm = opaque;

        tt_debug("%s: QMP event %s", vm->def->name, name);
        /* VSERPORT_CHANGE, and the events that end guest-shutdown or guest-suspend-*. */
        guest_on_qmp_event(vm, name, data);
        snapshot_on_qmp_event(vm, name, data);
        if (strcmp(name, "SHUTDOWN") == 0) {
                /* Our own SIGTERM (destroy) or quit (save) makes QEMU say SHUTDOWN: EOF follows. */
                if (vm->destroying || vm->saved) {
                        /* libvirt tells a destroy's SHUTDOWN ("after host request") all the same. */
                        if (vm->destroying)
                                events_emit_lifecycle(vm->d->events, vm->def->name,
                                                      EVENTS_LIFE_SHUTDOWN,
                                                      events_shutdown_detail(data));
                        return;
                }
                /* Likewise our quit after a panic with on_crash destroy: stay crashed, so that
                 * the EOF ends it as "shut off (crashed)" rather than "shut off (shutdown)". */
                if (vm->status.state == VM_STATE_CRASHED && vm->live &&
                    vm->live->on_crash == DOMAIN_ACTION_DESTROY)
                        return;
                /* A reboot's power-off is a passing state: libvirt tells only the reboot. */
                vm->shutdown_detail = vm->fake_reboot ? EVENTS_SHUTDOWN_NONE
                                                      : events_shutdown_detail(data);
                vm_apply(vm, VM_EV_QMP_SHUTDOWN, NULL);
                vm_after_guest_stop(vm, shutdown_action(vm, data));
        } else if (strcmp(name, "STOP") == 0) {
                /* Our own stops (suspend, save) apply their transition themselves. */
                if (vm->job == NULL && vm->status.state == VM_STATE_RUNNING)
                        vm_apply(vm, VM_EV_QMP_STOP, NULL);
        } else if (strcmp(name, "RESUME") == 0) {
                if (vm->job == NULL && vm->status.state == VM_STATE_PAUSED)
                        vm_apply(vm, VM_EV_QMP_RESUME, NULL);
        } else if (strcmp(name, "RESET") == 0) {
                /* libvirt's 'reboot' event; not for QEMU's own resets while it is set up. */
                if (!(vm->status.state == VM_STATE_PAUSED &&
                      vm->status.reason == VM_PAUSED_STARTING_UP))
                        events_emit_reboot(vm->d->events, vm->def->name);
                vm_apply(vm, VM_EV_QMP_RESET, NULL);
        } else if (strcmp(name, "GUEST_PANICKED") == 0) {
                vm_apply(vm, VM_EV_QMP_PANICKED, NULL);
                if (vm->live && vm->live->on_crash != DOMAIN_ACTION_PRESERVE)
                        vm_after_guest_stop(vm, vm->live->on_crash);
        } else if (strcmp(name, "SUSPEND") == 0 || strcmp(name, "SUSPEND_DISK") == 0) {
                vm_apply(vm, VM_EV_QMP_SUSPEND, NULL);
        } else if (strcmp(name, "WAKEUP") == 0) {
                vm_apply(vm, VM_EV_QMP_WAKEUP, NULL);
        } else {
                const char *job = json_string_value(json_object_get(data, "device"));

                events_emit_qmp_block_job(vm->d->events, vm->def->name, name, data,
                                          block_job_disk(vm, job));
        }
}

/* ---- start ---- */

/*
 * A free TCP port from base on addr (autoport for VNC and SPICE), other than the ports of the
 * domain's other graphics (all n but graphics[self]): QEMU binds none of them before it starts,
 * so a bind test alone gave VNC and SPICE the same port when 5900 was taken.
 */
static int pick_port(const char *addr, int base, const struct domain_graphics *graphics, size_t n,
                     size_t self)
{
        for (int port = base; port < base + 100; port++) {
                struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
                int fd, ok, one = 1;
                bool taken = false;

                for (size_t i = 0; i < n; i++)
                        taken = taken || (i != self && graphics[i].port == port);
                if (taken)
                        continue;
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -1;
                /* As QEMU binds: a port with only TIME_WAIT connections left is free. */
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (inet_pton(AF_INET, addr ? addr : "127.0.0.1", &sa.sin_addr) != 1)
                        sa.sin_addr.s_addr = htonl(INADDR_ANY);
                ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
                close(fd);
                if (ok)
                        return port;
        }
        return -1;
}

struct domain *vm_domain_copy(const struct domain *def, struct tt_error *err)
{
        _cleanup_free_ char *xml = domain_format(def);

        if (xml == NULL) {
                tt_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        return domain_parse(xml, strlen(xml), err);
}

static void start_cont_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        _cleanup_json_ json_t *done = NULL;

        if (err) {
                /* The monitor EOF that follows ends the job as a failed start. */
                tt_err("%s: cannot start vCPUs: %s", vm->def->name, err->msg);
                kill(vm->pid, SIGKILL);
                return;
        }
        done = json_pack("{s:s}", "name", vm->def->name);
        /* libvirt tells that the agent is not there yet, before the start itself. */
        if (vm->guest)
                events_emit_agent(vm->d->events, vm->def->name, false, true);
        vm_apply(vm, (vm->flags & VM_START_PAUSED) ? VM_EV_START_PAUSED : VM_EV_START, NULL);
        vm_end_job(vm, done, NULL);
}

static void start_ready(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        if (err) {
                /* The monitor closing also lands in vm_on_closed, which reports the log tail. */
                tt_warn("%s: QEMU did not become ready: %s", vm->def->name, err->msg);
                return;
        }
        {
                struct tt_error aerr = {0};

                /* The agent channel exists now: connect to it and learn the port's state. */
                if (guest_attach(vm, &aerr) < 0)
                        tt_warn("%s: guest agent: %s", vm->def->name, aerr.msg);
                tt_error_clear(&aerr);
                if (console_start(vm, &aerr) < 0)
                        tt_warn("%s: serial console: %s", vm->def->name, aerr.msg);
                tt_error_clear(&aerr);
        }
        for (size_t i = 0; i < vm->live->n_graphics; i++) {
                const struct domain_graphics *g = &vm->live->graphics[i];

                /* Passwords go over QMP, never on the command line (ps would show them). */
                if (g->passwd)
                        qmp_command(vm->qmp, "set_password",
                                    json_pack("{s:s, s:s}", "protocol",
                                              g->type == DOMAIN_GRAPHICS_VNC ? "vnc" : "spice",
                                              "password", g->passwd),
                                    VM_QMP_TIMEOUT_MS, vm_reply_ignore, vm);
        }
        /* The guest's balloon statistics: QEMU asks the driver every period seconds. */
        if (vm->live->balloon == DOMAIN_BALLOON_VIRTIO && vm->live->balloon_period)
                qmp_command(vm->qmp, "qom-set",
                            json_pack("{s:s, s:s, s:i}", "path", "/machine/peripheral/balloon0",
                                      "property", "guest-stats-polling-interval", "value",
                                      (int)vm->live->balloon_period),
                            VM_QMP_TIMEOUT_MS, vm_reply_ignore, vm);
        if (vm->restoring) {
                vm_restore_begin(vm);
                return;
        }
        if (vm->flags & VM_START_PAUSED) {
                start_cont_done(vm, NULL, NULL);
                return;
        }
        qmp_command(vm->qmp, "cont", NULL, VM_QMP_TIMEOUT_MS, start_cont_done, vm);
}

/* In the child: close every descriptor from 3 up but the n sorted ones in keep. */
static void close_all_but(const int *keep, size_t n)
{
        unsigned from = 3;

        for (size_t i = 0; i <= n; i++) {
                unsigned to = i < n ? (unsigned)keep[i] : ~0U;

                if (i < n && keep[i] < 3)
                        continue;
                if (to > from && close_range(from, to - 1, 0) < 0) {
                        /* close_range needs Linux 5.9: close one by one up to the limit. */
                        long max = sysconf(_SC_OPEN_MAX);

                        for (long fd = from; fd < (to == ~0U ? max : (long)to); fd++)
                                close((int)fd);
                }
                from = to + 1;
        }
}

static int cmp_int(const void *a, const void *b)
{
        return *(const int *)a - *(const int *)b;
}

/*
 * Fork and exec QEMU with the monitor socket lfd, the n_taps tap descriptors and the n_disks
 * disk descriptors (-1 skipped); stdout and stderr go to the log. No other descriptor of
 * tetherd reaches QEMU.
 */
static pid_t spawn_qemu(struct vm *vm, char **argv, int lfd, const int *taps, size_t n_taps,
                        const int *disks, size_t n_disks, struct tt_error *err)
{
        _cleanup_free_ char *log = store_log_path(&vm->d->store, vm->def->name);
        _cleanup_close_ int logfd = -1;
        _cleanup_free_ int *keep = calloc(n_taps + n_disks + 2, sizeof(int));
        size_t n_keep = 0;
        sigset_t all;
        pid_t pid;

        if (keep == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        keep[n_keep++] = lfd;
        for (size_t i = 0; i < n_taps; i++)
                if (taps[i] >= 0)
                        keep[n_keep++] = taps[i];
        for (size_t i = 0; i < n_disks; i++)
                if (disks[i] >= 0)
                        keep[n_keep++] = disks[i];
        qsort(keep, n_keep, sizeof(int), cmp_int);
        logfd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
        if (logfd < 0)
                return tt_error_errno(err, errno, "cannot open log '%s'", log ? log : "");
        for (size_t i = 0; argv[i]; i++)
                dprintf(logfd, "%s%s", i ? " " : "", argv[i]);
        dprintf(logfd, "\n");
        pid = fork();
        if (pid < 0)
                return tt_error_errno(err, errno, "fork");
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDONLY);

                /* QEMU outlives tetherd: its own session, no signals inherited from us. */
                setsid();
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGPIPE, SIG_DFL);
                dup2(devnull, STDIN_FILENO);
                dup2(logfd, STDOUT_FILENO);
                dup2(logfd, STDERR_FILENO);
                close_all_but(keep, n_keep);
                for (size_t i = 0; i < n_keep; i++)
                        fcntl(keep[i], F_SETFD, 0);
                execv(argv[0], argv);
                dprintf(STDERR_FILENO, "cannot execute %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        return pid;
}

/* The tap (or disk) descriptors of a start; tetherd's copies close once QEMU has its own. */
struct taps {
        int *fds; /* per <interface>, -1 when it has no tap */
        size_t n; /* entries */
};

static void close_taps_p(struct taps *t)
{
        for (size_t i = 0; t->fds && i < t->n; i++)
                if (t->fds[i] >= 0)
                        close(t->fds[i]);
        free(t->fds);
        t->fds = NULL;
}

/*
 * The tap of every bridge interface of vm->live, named in it (<target dev>) for the live XML;
 * -1 for the other interfaces. Names that tetherd generated (vnetN) are picked afresh.
 */
static int make_taps(struct vm *vm, int **out, struct tt_error *err)
{
        struct domain *live = vm->live;
        int *taps = calloc(live->n_nets + 1, sizeof(int));

        if (taps == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < live->n_nets; i++)
                taps[i] = -1;
        *out = taps;
        for (size_t i = 0; i < live->n_nets; i++) {
                struct domain_net *n = &live->nets[i];
                char name[IFNAMSIZ];

                if (n->type != DOMAIN_NET_BRIDGE)
                        continue;
                if (n->ifname && strncmp(n->ifname, "vnet", 4) == 0) {
                        free(n->ifname);
                        n->ifname = NULL;
                }
                taps[i] = tap_create(n->ifname, n->bridge, n->mac, name, sizeof(name), err);
                if (taps[i] < 0)
                        return -1;
                free(n->ifname);
                n->ifname = strdup(name);
                if (n->ifname == NULL)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}

/*
 * One descriptor of a disk image, opened by tetherd: a client that is not root (or tetherd
 * itself) gets exactly the real path that the policy checked, with no symlink swapped in
 * since; never a FIFO (no blocking) or anything but a file or block device. -1 with err set
 * refuses the start; -1 alone leaves the path to QEMU (root's domains: QEMU's own messages).
 */
static int open_disk(struct vm *vm, const char *source, int flags, struct tt_error *err)
{
        bool exact = vm->d->request_uid != 0;
        _cleanup_free_ char *real = exact ? realpath(source, NULL) : NULL;
        struct open_how how = {.flags = (unsigned)(flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC),
                               .resolve = RESOLVE_NO_SYMLINKS};
        struct stat st;
        int fd;

        if (!exact) {
                fd = open(source, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        } else if (real == NULL) {
                fd = -1;
        } else if (vm->d->request_uid != TETHERD_SELF && !policy_in_image_dirs(vm->d, real)) {
                tt_error_set(err, POLICY_ERR_DENIED,
                             "access denied: <disk> source '%s' left the image folders", source);
                return -1;
        } else {
                fd = (int)syscall(SYS_openat2, AT_FDCWD, real, &how, sizeof(how));
        }
        if (fd >= 0 && (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))) {
                close(fd);
                if (exact)
                        tt_error_set(err, VM_ERR_FAILED,
                                     "disk image '%s' is not a regular file or a block device",
                                     source);
                return -1;
        }
        if (fd < 0) {
                if (exact)
                        tt_error_errno(err, errno, "cannot open disk image '%s'", source);
                return -1;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        return fd;
}

/* backing_open_fn for root's domains and tetherd's own starts: the path as written. */
static int open_backing_plain(void *opaque, const char *path, const char *image,
                              struct tt_error *err)
{
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        struct stat st;

        (void)opaque;
        if (fd < 0)
                return tt_error_errno(err, errno, "cannot open the backing file '%s' of '%s'",
                                      path, image);
        if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
                close(fd);
                return tt_error_set(err, VM_ERR_FAILED,
                                    "the backing file '%s' of '%s' is not a regular file or a "
                                    "block device",
                                    path, image);
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        return fd;
}

/* The disk descriptors of a start: two per <disk>, then the backing files below them. */
struct disk_fds {
        int *fds;                     /* 2 per <disk> (read-only, read-write), then backing */
        size_t n;                     /* entries in fds */
        struct qemu_backing *backing; /* the backing links, disk by disk, top-down */
        size_t n_backing;             /* entries in backing */
};

static void close_disk_fds_p(struct disk_fds *t)
{
        for (size_t i = 0; t->fds && i < t->n; i++)
                if (t->fds[i] >= 0)
                        close(t->fds[i]);
        free(t->fds);
        free(t->backing);
        t->fds = NULL;
        t->backing = NULL;
}

/*
 * The backing chain below disk i (open read-only as fd): walked, checked and opened by
 * tetherd (backing.h), appended to out; QEMU never opens a backing file by its name.
 */
static int open_chain(struct vm *vm, size_t i, int fd, struct disk_fds *out,
                      struct tt_error *err)
{
        const struct domain_disk *disk = &vm->live->disks[i];
        bool client = vm->d->request_uid != 0 && vm->d->request_uid != TETHERD_SELF;
        struct backing_link *links;
        size_t n;
        int *fds;
        struct qemu_backing *b;

        if (disk->format != DOMAIN_FORMAT_QCOW2)
                return 0;
        if (backing_walk(fd, disk->source, client ? policy_open_backing : open_backing_plain,
                         vm->d, &links, &n, err) < 0) {
                if (err->code < VM_ERR_NO_DOMAIN && err->code != POLICY_ERR_DENIED)
                        err->code = VM_ERR_FAILED;
                return -1;
        }
        fds = reallocarray(out->fds, out->n + n + 1, sizeof(int));
        if (fds)
                out->fds = fds;
        b = fds ? reallocarray(out->backing, out->n_backing + n + 1, sizeof(*b)) : NULL;
        if (b == NULL) {
                backing_links_free(links, n);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        out->backing = b;
        for (size_t k = 0; k < n; k++) {
                out->fds[out->n++] = links[k].fd;
                out->backing[out->n_backing++] =
                        (struct qemu_backing){.disk = i, .fd = links[k].fd, .qcow2 = links[k].qcow2};
                links[k].fd = -1;
        }
        backing_links_free(links, n);
        return 0;
}

/*
 * QEMU runs unprivileged: tetherd opens each disk image read-only and (when it is writable)
 * read-write, and QEMU takes them as /dev/fdset/N. QEMU reopens an image when it changes mode
 * (auto-read-only, and at the end of a save), which by path would fail wherever its folder is
 * closed to tether-qemu. The backing files of qcow2 images are opened here too.
 */
static int open_disks(struct vm *vm, struct disk_fds *disks, struct tt_error *err)
{
        const struct domain *def = vm->live;

        disks->n = 2 * def->n_disks;
        disks->fds = malloc((disks->n + 1) * sizeof(int));
        if (disks->fds == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < disks->n; i++)
                disks->fds[i] = -1;
        if (!vm->d->qemu_drop)
                return 0;
        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *d = &def->disks[i];
                bool ro = d->readonly || d->device == DOMAIN_DISK_CDROM;
                struct tt_error derr = {0};

                if (d->source == NULL)
                        continue;
                disks->fds[2 * i] = open_disk(vm, d->source, O_RDONLY, &derr);
                if (disks->fds[2 * i] >= 0 && !ro) {
                        disks->fds[2 * i + 1] = open_disk(vm, d->source, O_RDWR, &derr);
                        if (disks->fds[2 * i + 1] < 0) {
                                /* A read-only file: QEMU says so in its own words. */
                                close(disks->fds[2 * i]);
                                disks->fds[2 * i] = -1;
                        }
                }
                if (derr.msg) {
                        *err = derr;
                        if (err->code < VM_ERR_NO_DOMAIN && err->code != POLICY_ERR_DENIED)
                                err->code = VM_ERR_FAILED;
                        return -1;
                }
                if (disks->fds[2 * i] >= 0 && open_chain(vm, i, disks->fds[2 * i], disks, err) < 0)
                        return -1;
        }
        return 0;
}

/* Start QEMU for def (the domain's own definition, or the one in a save image). */
static int vm_launch(struct vm *vm, unsigned flags, const struct domain *def,
                     struct tt_error *err)
{
        struct store *st = &vm->d->store;
        _cleanup_free_ char *dir = store_run_path(st, vm->def->name, NULL);
        _cleanup_free_ char *qmp_path = store_run_path(st, vm->def->name, "qmp.sock");
        _cleanup_free_ char *agent_path = store_run_path(st, vm->def->name, "agent.sock");
        _cleanup_free_ char *console_path = store_run_path(st, vm->def->name, "ttyS0.sock");
        _cleanup_free_ char *pidfile = store_run_path(st, vm->def->name, "qemu.pid");
        _cleanup_free_ char *xml = NULL;
        _cleanup_free_ char *livexml_path = store_run_path(st, vm->def->name, "domain.xml");
        _cleanup_free_ const char **chans = NULL;
        struct qemu_argv argv = {0};
        struct qemu_argv_runtime rt = {0};
        _cleanup_close_ int lfd = -1;
        __attribute__((cleanup(close_taps_p))) struct taps taps = {0};
        __attribute__((cleanup(close_disk_fds_p))) struct disk_fds disks = {0};
        pid_t pid;

        if (!dir || !qmp_path || !agent_path || !console_path || !pidfile || !livexml_path)
                return tt_error_set(err, ENOMEM, "out of memory");
        /* A client that is not root: what the domain names is checked again (a restore's image,
           files swapped since define). */
        if (vm->d->request_uid != 0 && vm->d->request_uid != TETHERD_SELF &&
            policy_check_domain(vm->d, def, err) < 0)
                return -1;
        vm->live = vm_domain_copy(def, err);
        if (vm->live == NULL)
                return -1;
        if (tt_mkdir_p(dir, 0755, err) < 0)
                return -1;
        taps.n = vm->live->n_nets;
        if (make_taps(vm, &taps.fds, err) < 0)
                return -1;
        xml = domain_format(vm->live);
        if (xml == NULL || tt_write_file_atomic(livexml_path, xml, strlen(xml), 0600, err) < 0)
                return -1;
        lfd = qmp_listen_socket(qmp_path, err);
        if (lfd < 0)
                return -1;
        chans = calloc(vm->live->n_channels + 1, sizeof(char *));
        if (chans == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < vm->live->n_channels; i++)
                chans[i] = agent_path;
        rt.qmp_socket = qmp_path;
        rt.qmp_fd = lfd;
        rt.channel_sockets = chans;
        rt.n_channel_sockets = vm->live->n_channels;
        rt.console_socket = console_path;
        rt.pidfile = pidfile;
        rt.incoming_defer = vm->restoring;
        rt.tap_fds = taps.fds;
        rt.n_tap_fds = taps.n;
        if (open_disks(vm, &disks, err) < 0)
                return -1;
        rt.disk_fds = disks.fds;
        rt.n_disk_fds = vm->live->n_disks;
        rt.backing = disks.backing;
        rt.n_backing = disks.n_backing;
        for (size_t i = 0; i < vm->live->n_graphics; i++) {
                struct domain_graphics *g = &vm->live->graphics[i];
                int port;

                if (!g->autoport)
                        continue;
                port = pick_port(g->listen, g->type == DOMAIN_GRAPHICS_VNC ? 5900 : 5901,
                                 vm->live->graphics, vm->live->n_graphics, i);
                if (port < 0)
                        return tt_error_set(err, VM_ERR_FAILED, "no free port for %s",
                                            g->type == DOMAIN_GRAPHICS_VNC ? "VNC" : "SPICE");
                if (g->type == DOMAIN_GRAPHICS_VNC)
                        rt.vnc_port = port;
                else
                        rt.spice_port = port;
                g->port = port;
        }
        if (vm->d->qemu_drop) {
                /* QEMU opens its files and sockets as root, then runs as its own user. The
                   sandbox cannot deny set*id: QEMU installs it before -runas calls setuid. */
                rt.runas = vm->d->qemu_user;
                rt.sandbox = "on,obsolete=deny,spawn=deny,resourcecontrol=deny";
        }
        if (qemu_argv_build(vm->live, &rt, &argv, err) < 0)
                return -1;
        if (dac_grant(vm->d, vm->def->name, vm->live, err) < 0) {
                qemu_argv_free(&argv);
                return -1;
        }
        pid = spawn_qemu(vm, argv.argv, lfd, taps.fds, taps.n, disks.fds, disks.n, err);
        qemu_argv_free(&argv);
        if (pid < 0) {
                dac_restore(vm->d, vm->def->name);
                return -1;
        }
        vm->pid = pid;
        vm->is_child = true;
        vm->flags = flags;
        vm->id = vm->d->next_id++;
        vm_apply(vm, VM_EV_LAUNCH, NULL);
        vm->qmp = qmp_new(vm->d->base, &vm_qmp_callbacks, vm);
        if (vm->qmp == NULL || qmp_connect(vm->qmp, qmp_path, err) < 0) {
                kill(pid, SIGKILL);
                vm_stopped(vm, VM_EV_START_FAILED);
                return -1;
        }
        /* The first command's reply means QEMU finished start-up and reads its monitor. */
        qmp_command(vm->qmp, "query-status", NULL, VM_QMP_TIMEOUT_MS, start_ready, vm);
        return 0;
}

/*
 * Launch QEMU for vm, booting or (image_fd >= 0) loading a save image whose header is img
 * (taken over, with the fd, on success and on failure alike). The job must be held.
 */
int vm_launch_job(struct vm *vm, unsigned flags, int image_fd, struct saveimage *img,
                         const char *image_path, bool managed, struct tt_error *err)
{
        _cleanup_domain_ struct domain *image_def = NULL;
        int r;

        if (image_fd >= 0) {
                vm->image_fd = image_fd;
                vm->image = img;
                vm->image_path = strdup(image_path);
                vm->image_managed = managed;
                vm->restoring = true;
                vm->was_running = (img->flags & SAVEIMAGE_WAS_RUNNING) != 0;
                image_def = domain_parse(img->xml, strlen(img->xml), err);
                if (image_def == NULL) {
                        vm_image_release(vm, false);
                        return -1;
                }
        }
        r = vm_launch(vm, flags, image_def ? image_def : vm->def, err);
        if (r < 0) {
                vm_image_release(vm, false);
                if (vm->pid == 0) {
                        domain_free(vm->live);
                        vm->live = NULL;
                }
        }
        return r;
}

void vm_release_job(struct vm *vm, struct tt_error *err)
{
        vm->job = NULL;
        vm->done = NULL;
        vm->done_opaque = NULL;
        if (err && err->code < VM_ERR_NO_DOMAIN)
                err->code = VM_ERR_FAILED;
}

int vm_start(struct vm *vm, unsigned flags, vm_done_fn done, void *opaque, struct tt_error *err)
{
        struct store *st = &vm->d->store;
        _cleanup_free_ char *managed = store_managed_save_path(st, vm->def->name);
        struct saveimage *img = NULL;
        int fd = -1;

        if (vm_begin_job(vm, "start", VM_EV_LAUNCH, done, opaque, err) < 0)
                return -1;
        if (managed && store_has_managed_save(st, vm->def->name)) {
                struct tt_error ierr = {0};

                if (flags & VM_START_FORCE_BOOT) {
                        /* virsh start --force-boot discards the managed-save image. */
                        unlink(managed);
                } else if ((img = calloc(1, sizeof(*img))) == NULL) {
                        vm_release_job(vm, err);
                        return tt_error_set(err, VM_ERR_FAILED, "out of memory");
                } else if ((fd = saveimage_open(managed, img, &ierr)) < 0) {
                        /* libvirt too boots afresh when the managed image is unusable. */
                        tt_warn("%s: removing unusable managed-save image: %s", vm->def->name,
                                ierr.msg);
                        unlink(managed);
                        free(img);
                        img = NULL;
                }
                tt_error_clear(&ierr);
        }
        if (vm_launch_job(vm, flags, fd, img, managed, true, err) < 0) {
                vm_release_job(vm, err);
                return -1;
        }
        return 0;
}

/* ---- define, undefine, create ---- */

static int check_unique(struct tetherd *d, const struct domain *def, struct vm *self,
                        struct tt_error *err)
{
        for (struct vm *vm = d->vms; vm; vm = vm->next) {
                if (vm == self)
                        continue;
                if (strcmp(vm->def->name, def->name) == 0)
                        return tt_error_set(err, VM_ERR_EXISTS,
                                            "operation failed: domain '%s' already exists with "
                                            "uuid %s",
                                            def->name, vm->def->uuid);
                if (strcmp(vm->def->uuid, def->uuid) == 0)
                        return tt_error_set(err, VM_ERR_EXISTS,
                                            "operation failed: domain '%s' is already defined "
                                            "with uuid %s",
                                            vm->def->name, def->uuid);
        }
        return 0;
}

/* The files under a domain's run folder that are unix sockets. */
static const char *const vm_socket_files[] = {"qmp.sock", "agent.sock", "ttyS0.sock"};

/*
 * Every socket of a domain lives in its run folder, so its name must leave room for the longest
 * path in sun_path. Checked at define, create and restore: nothing is written for a name that
 * could never start.
 */
int vm_check_name_fits(struct tetherd *d, const char *name, struct tt_error *err)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(vm_socket_files); i++) {
                _cleanup_free_ char *path = store_run_path(&d->store, name, vm_socket_files[i]);
                const size_t max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;

                if (path == NULL)
                        return tt_error_set(err, ENOMEM, "out of memory");
                if (strlen(path) > max)
                        return tt_error_set(err, VM_ERR_CONFIG,
                                            "domain name '%s' is too long: its socket path '%s' "
                                            "would be %zu bytes, more than the %zu a unix socket "
                                            "path may have",
                                            name, path, strlen(path), max);
        }
        return 0;
}

static struct domain *parse_def(struct tetherd *d, const char *xml, struct tt_error *err)
{
        struct domain *def = domain_parse(xml, strlen(xml), err);

        if (def && vm_check_name_fits(d, def->name, err) < 0) {
                domain_free(def);
                def = NULL;
        }
        if (def == NULL && err)
                err->code = VM_ERR_CONFIG;
        return def;
}

int vm_define(struct tetherd *d, const char *xml, struct vm **out, struct tt_error *err)
{
        struct domain *def = parse_def(d, xml, err);
        _cleanup_free_ char *text = NULL;
        struct vm *vm = NULL;

        if (def == NULL)
                return -1;
        /* Redefining an existing domain (same name and uuid) replaces its definition. */
        for (struct vm *v = d->vms; v; v = v->next)
                if (strcmp(v->def->name, def->name) == 0 && strcmp(v->def->uuid, def->uuid) == 0)
                        vm = v;
        if (check_unique(d, def, vm, err) < 0) {
                domain_free(def);
                return -1;
        }
        text = domain_format(def);
        if (text == NULL || store_save_def(&d->store, def->name, text, err) < 0) {
                domain_free(def);
                return -1;
        }
        if (vm) {
                domain_free(vm->def);
                vm->def = def;
                vm->persistent = true;
                events_emit_lifecycle(d->events, def->name, EVENTS_LIFE_DEFINED,
                                      EVENTS_DEFINED_UPDATED);
        } else {
                vm = vm_new(d, def, true);
                if (vm == NULL) {
                        domain_free(def);
                        return tt_error_set(err, ENOMEM, "out of memory");
                }
                events_emit_lifecycle(d->events, def->name, EVENTS_LIFE_DEFINED,
                                      EVENTS_DEFINED_ADDED);
        }
        if (out)
                *out = vm;
        return 0;
}

int vm_undefine(struct vm *vm, bool managed_save, struct tt_error *err)
{
        struct store *st = &vm->d->store;

        if (!vm->persistent)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: cannot undefine transient "
                                    "domain");
        if (vm->job)
                return tt_error_set(err, VM_ERR_BUSY, "domain %s is busy: %s", vm->def->name,
                                    vm->job);
        if (store_has_managed_save(st, vm->def->name)) {
                _cleanup_free_ char *path = store_managed_save_path(st, vm->def->name);

                if (!managed_save)
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "Requested operation is not valid: Refusing to "
                                            "undefine while domain managed save image exists");
                if (path)
                        unlink(path);
        }
        if (store_delete_def(st, vm->def->name, err) < 0)
                return -1;
        store_set_autostart(st, vm->def->name, false, NULL);
        vm->autostart = false;
        events_emit_lifecycle(vm->d->events, vm->def->name, EVENTS_LIFE_UNDEFINED,
                              EVENTS_UNDEFINED_REMOVED);
        if (vm_state_is_active(vm->status.state)) {
                vm->persistent = false; /* a running domain becomes transient */
                vm_save_status(vm);
                return 0;
        }
        vm_unlink_free(vm);
        return 0;
}

int vm_create(struct tetherd *d, const char *xml, unsigned flags, vm_done_fn done, void *opaque,
              struct tt_error *err)
{
        struct domain *def = parse_def(d, xml, err);
        struct vm *vm;

        if (def == NULL)
                return -1;
        if (check_unique(d, def, NULL, err) < 0) {
                domain_free(def);
                return -1;
        }
        vm = vm_new(d, def, false);
        if (vm == NULL) {
                domain_free(def);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        if (vm_start(vm, flags, done, opaque, err) < 0) {
                vm_unlink_free(vm);
                return -1;
        }
        return 0;
}

int vm_set_autostart(struct vm *vm, bool on, struct tt_error *err)
{
        if (!vm->persistent)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: cannot set autostart for "
                                    "transient domain");
        if (store_set_autostart(&vm->d->store, vm->def->name, on, err) < 0)
                return -1;
        vm->autostart = on;
        return 0;
}

/* ---- destroy ---- */

bool vm_pid_alive(pid_t pid)
{
        return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static void destroy_tick(evutil_socket_t fd, short what, void *opaque)
{
        struct vm *vm = opaque;
        struct timeval tv = {0, 100000};

        vm->kill_ticks++;
        if (vm->is_child)
                waitpid(vm->pid, NULL, WNOHANG);
        if (!vm_pid_alive(vm->pid)) {
                /* Gone without a monitor EOF (e.g. the monitor was never connected). */
                vm_finish_stop(vm, VM_EV_DESTROYED);
                return;
        }
        if (vm->graceful && vm->kill_ticks >= VM_GRACEFUL_TICKS) {
                char msg[200];

                vm->destroying = false;
                /* QEMU lives on: the domain is what it was before the SIGTERM. */
                if (vm_apply(vm, VM_EV_KILL_FAILED, NULL) == 0) {
                        vm->status = vm->dying_from;
                        vm_save_status(vm);
                }
                snprintf(msg, sizeof(msg),
                         "operation failed: failed to terminate process %d with SIGTERM: "
                         "Device or resource busy",
                         (int)vm->pid);
                vm_end_job_error(vm, VM_ERR_FAILED, msg);
                return;
        }
        if (!vm->graceful && vm->kill_ticks == VM_KILL_TICKS)
                kill(vm->pid, SIGKILL);
        evtimer_add(vm->timer, &tv);
}

/*
 * Kill QEMU; the job "destroy" (whose caller is already set) ends when it is gone. why is
 * VM_EV_KILL, VM_EV_KILL_GRACEFUL or VM_EV_KILL_FORCED: the domain is dying until the reap.
 */
void vm_destroy_begin(struct vm *vm, enum vm_event why)
{
        struct timeval tv = {0, 100000};

        vm_power_release(vm);
        vm->job = "destroy";
        vm->destroying = true;
        vm->graceful = why == VM_EV_KILL_GRACEFUL;
        vm->kill_ticks = 0;
        if (vm->status.state != VM_STATE_DYING)
                vm->dying_from = vm->status;
        vm_apply(vm, why, NULL);
        {
                _cleanup_free_ char *text =
                        vm_state_format(vm->status.state, vm->status.reason, true);

                tt_info("%s: %s: SIGTERM to QEMU pid %d", vm->def->name, text ? text : "dying",
                        (int)vm->pid);
        }
        kill(vm->pid, SIGTERM);
        if (vm->timer == NULL)
                vm->timer = evtimer_new(vm->d->base, destroy_tick, vm);
        evtimer_add(vm->timer, &tv);
}

int vm_destroy(struct vm *vm, bool graceful, vm_done_fn done, void *opaque,
               struct tt_error *err)
{
        /* destroy overrides a running start, restore or shutdown, as virsh destroy does. */
        if (vm->job && !vm_job_is_launch(vm->job) && strcmp(vm->job, "shutdown") != 0 &&
            strcmp(vm->job, "reboot") != 0)
                return tt_error_set(err, VM_ERR_BUSY, "domain %s is busy: %s", vm->def->name,
                                    vm->job);
        if (!vm_state_is_active(vm->status.state))
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: domain is not running");
        if (vm->job)
                vm_end_job_error(vm, VM_ERR_FAILED, "operation was interrupted by destroy");
        vm->done = done;
        vm->done_opaque = opaque;
        vm_destroy_begin(vm, graceful ? VM_EV_KILL_GRACEFUL : VM_EV_KILL);
        return 0;
}

/* ---- simple QMP operations ---- */

struct simple_op {
        const char *job;        /* job name while it runs */
        const char *qmp;        /* QMP command */
        enum vm_event check;    /* transition that must be valid before */
        enum vm_event after;    /* transition applied on success, or VM_EV_LAST for none */
};

static const struct simple_op simple_ops[] = {
        {"suspend", "stop", VM_EV_SUSPEND, VM_EV_SUSPEND},
        {"resume", "cont", VM_EV_RESUME, VM_EV_RESUME},
        {"reset", "system_reset", VM_EV_RESET, VM_EV_RESET},
};

struct simple_call {
        struct vm *vm;               /* the domain */
        const struct simple_op *op;  /* what runs */
};

static void simple_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct simple_call *c = opaque;
        struct vm *vm = c->vm;

        if (err == NULL && c->op->after != VM_EV_LAST)
                vm_apply(vm, c->op->after, NULL);
        free(c);
        vm_end_job(vm, err ? NULL : ret, err);
}

static int simple(struct vm *vm, const struct simple_op *op, vm_done_fn done, void *opaque,
                  struct tt_error *err)
{
        struct simple_call *c;

        if (vm_begin_job(vm, op->job, op->check, done, opaque, err) < 0)
                return -1;
        c = calloc(1, sizeof(*c));
        if (c == NULL || qmp_command(vm->qmp, op->qmp, NULL, VM_QMP_TIMEOUT_MS, simple_done,
                                     (c->vm = vm, c->op = op, c)) < 0) {
                free(c);
                vm->job = NULL;
                vm->done = NULL;
                return tt_error_set(err, VM_ERR_FAILED, "cannot talk to QEMU for %s", op->job);
        }
        return 0;
}

int vm_suspend(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        return simple(vm, &simple_ops[0], done, opaque, err);
}

int vm_resume(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        return simple(vm, &simple_ops[1], done, opaque, err);
}

int vm_reset(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        return simple(vm, &simple_ops[2], done, opaque, err);
}

/* ---- describing ---- */

/* tetherd --report-idle: below this share of one CPU, a running domain's vCPUs are idle. */
#define VM_IDLE_LOAD 0.01

struct vm_status vm_shown_status(const struct vm *vm)
{
        double load;

        if (!vm->d->report_idle || vm->status.state != VM_STATE_RUNNING)
                return vm->status;
        load = monitor_vcpu_load(vm);
        if (load < 0 || load >= VM_IDLE_LOAD)
                return vm->status;
        /* libvirt's state 2 ("idle", VIR_DOMAIN_BLOCKED) has no reasons but "unknown". */
        return (struct vm_status){VM_STATE_BLOCKED, 0};
}

json_t *vm_describe(struct vm *vm)
{
        const struct domain *def = vm->live ? vm->live : vm->def;
        struct vm_status shown = vm_shown_status(vm);

        return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s?, s:b, s:b, s:b, s:i, s:I, s:I, s:s}",
                         "id", vm->id, "name", def->name, "uuid", def->uuid, "state",
                         vm_state_name(shown.state), "reason",
                         vm_state_reason_name(shown.state, shown.reason) ?: "unknown",
                         "title", def->title, "persistent", vm->persistent, "autostart",
                         vm->autostart, "managed_save",
                         store_has_managed_save(&vm->d->store, def->name), "vcpus",
                         (int)def->vcpus, "max_memory_kib", (json_int_t)def->memory_kib,
                         "used_memory_kib", (json_int_t)def->current_memory_kib, "os_type",
                         "hvm");
}

