/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * shutdown and reboot: the ACPI power button (system_powerdown) or the guest agent
 * (guest-shutdown), tried in the order of --mode's list as virsh does, optionally waiting until
 * the domain is shut off. The agent goes through the agent client (guest.c): a guest-ping first
 * proves it answers (so that a dead agent falls back to ACPI within seconds), then guest-shutdown,
 * which answers nothing on success: its QMP event (SHUTDOWN, or RESET for a reboot) is the answer.
 */
#include "host/vm-int.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "host/guest.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* shutdown/reboot --mode agent without --timeout: wait this long for SHUTDOWN/RESET (libvirt: 60 s). */
#define VM_AGENT_EVENT_S 60
/* shutdown --wait without --timeout. */
#define VM_SHUTDOWN_WAIT_S 60

static int power_try(struct vm *vm, struct tt_error *err);

int vm_power_modes_parse(const char *text, struct vm_shutdown_opts *o, struct tt_error *err)
{
        const char *p = text;

        o->n_modes = 0;
        while (p && *p) {
                size_t len = strcspn(p, ",");

                if (o->n_modes == (int)TT_ARRAY_SIZE(o->modes))
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "Requested operation is not valid: too many modes "
                                            "in '%s'",
                                            text);
                if (len == 4 && strncmp(p, "acpi", 4) == 0)
                        o->modes[o->n_modes++] = VM_POWER_ACPI;
                else if (len == 5 && strncmp(p, "agent", 5) == 0)
                        o->modes[o->n_modes++] = VM_POWER_AGENT;
                else
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "Unknown mode %.*s value, expecting 'acpi' or 'agent'",
                                            (int)len, p);
                p += len;
                if (*p == ',')
                        p++;
        }
        if (o->n_modes == 0)
                o->modes[o->n_modes++] = VM_POWER_ACPI;
        return 0;
}

void vm_power_release(struct vm *vm)
{
        if (vm->wait_timer)
                event_del(vm->wait_timer);
        /* An agent call still queued for this request answers nobody now. */
        guest_cancel(vm, vm);
        vm->power_sent = false;
        vm->power_step = 0;
}

static bool power_job(const struct vm *vm)
{
        return vm->job && (strcmp(vm->job, "shutdown") == 0 || strcmp(vm->job, "reboot") == 0);
}

static bool is_reboot(const struct vm *vm)
{
        return strcmp(vm->job, "reboot") == 0;
}

static enum vm_power_mode power_mode(const struct vm *vm)
{
        return vm->shutdown.modes[vm->power_step];
}

/* The guest did not shut down in time (shutdown --wait). */
static void power_timeout(evutil_socket_t fd, short what, void *opaque)
{
        struct vm *vm = opaque;
        char msg[400];

        if (!power_job(vm))
                return;
        if (strcmp(vm->job, "shutdown") == 0 && vm->shutdown.force) {
                tt_warn("%s: did not shut down within %d s; destroying it", vm->def->name,
                        vm->shutdown.timeout_s);
                vm_destroy_begin(vm, VM_EV_KILL_FORCED); /* its caller gets the destroy's reply */
                return;
        }
        snprintf(msg, sizeof(msg), "domain %s did not %s within %d s: %s", vm->def->name,
                 is_reboot(vm) ? "reboot" : "shut down", vm->shutdown.timeout_s,
                 power_mode(vm) == VM_POWER_AGENT
                         ? "the guest did not power off after the agent's shutdown"
                         : "the guest ignored the ACPI power button (no acpid in the guest?); "
                           "use --mode agent, --force or destroy");
        vm_power_release(vm);
        vm_end_job_error(vm, VM_ERR_FAILED, msg);
}

static void power_arm(struct vm *vm, int seconds)
{
        struct timeval tv = {seconds, 0};

        if (vm->wait_timer == NULL)
                vm->wait_timer = evtimer_new(vm->d->base, power_timeout, vm);
        evtimer_add(vm->wait_timer, &tv);
}

/* The guest has been asked (and, for the agent, acted): answer, or wait for shut off. */
static void power_requested(struct vm *vm)
{
        _cleanup_json_ json_t *ret = NULL;

        vm->power_sent = true;
        if (strcmp(vm->job, "shutdown") == 0 && vm->shutdown.wait) {
                power_arm(vm, vm->shutdown.timeout_s);
                return;
        }
        vm_power_release(vm);
        ret = json_pack("{s:s}", "name", vm->def->name);
        vm_end_job(vm, ret, NULL);
}

/* The current mode failed: the next one in --mode's list, or the job fails with err. */
static void power_next(struct vm *vm, const struct tt_error *err)
{
        struct tt_error next = {0};

        if (vm->power_step + 1 < vm->shutdown.n_modes) {
                tt_info("%s: %s through the agent failed (%s); trying ACPI", vm->def->name,
                        vm->job, err->msg);
                vm->power_step++;
                if (power_try(vm, &next) == 0)
                        return;
                err = &next;
        }
        vm->fake_reboot = false;
        vm_power_release(vm);
        vm_end_job(vm, NULL, err);
        tt_error_clear(&next);
}

/* system_powerdown answered, or guest-shutdown's event (SHUTDOWN, RESET) arrived. */
static void power_answered(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        if (!power_job(vm))
                return;
        if (err) {
                power_next(vm, err);
                return;
        }
        power_requested(vm);
}

static void agent_ping_done(void *opaque, json_t *reply, const struct tt_error *err)
{
        struct vm *vm = opaque;
        bool reboot;
        struct tt_error serr = {0};

        if (!power_job(vm))
                return;
        if (err) {
                power_next(vm, err);
                return;
        }
        reboot = is_reboot(vm);
        if (guest_call(vm,
                       json_pack("{s:s, s:{s:s}}", "execute", "guest-shutdown", "arguments", "mode",
                                 reboot ? "reboot" : "powerdown"),
                       vm->shutdown.timeout_s, GUEST_CALL_NO_REPLY, reboot ? "RESET" : "SHUTDOWN",
                       power_answered, vm, &serr) < 0) {
                power_next(vm, &serr);
                tt_error_clear(&serr);
        }
}

/* Ask the guest in the current mode; -1 with err when that is refused at once. */
static int power_try(struct vm *vm, struct tt_error *err)
{
        bool reboot = is_reboot(vm);

        if (power_mode(vm) == VM_POWER_AGENT) {
                /* A ping first: an agent that does not answer fails (or falls back) quickly. */
                if (guest_call(vm, json_pack("{s:s}", "execute", "guest-ping"),
                               GUEST_TIMEOUT_DEFAULT, 0, NULL, agent_ping_done, vm, err) == 0)
                        return 0;
        } else if (vm->live && !vm->live->acpi) {
                /* QEMU accepts system_powerdown and nothing happens: say so now. */
                tt_error_set(err, VM_ERR_INVALID_OP,
                             "Requested operation is not valid: domain %s has no ACPI "
                             "(<features><acpi/>), so the guest cannot see the power "
                             "button; use --mode agent or destroy",
                             vm->def->name);
        } else if (qmp_command(vm->qmp, "system_powerdown", NULL, VM_QMP_TIMEOUT_MS,
                               power_answered, vm) == 0) {
                vm->fake_reboot = reboot;
                return 0;
        } else {
                tt_error_set(err, VM_ERR_FAILED, "cannot talk to QEMU for %s", vm->job);
        }
        if (vm->power_step + 1 < vm->shutdown.n_modes) {
                tt_info("%s: %s: %s; trying the next mode", vm->def->name, vm->job, err->msg);
                tt_error_clear(err);
                vm->power_step++;
                return power_try(vm, err);
        }
        return -1;
}

static int power_begin(struct vm *vm, const char *job, enum vm_event check,
                       const struct vm_shutdown_opts *o, vm_done_fn done, void *opaque,
                       struct tt_error *err)
{
        if (vm_begin_job(vm, job, check, done, opaque, err) < 0)
                return -1;
        vm->shutdown = *o;
        if (vm->shutdown.n_modes <= 0) {
                vm->shutdown.modes[0] = VM_POWER_ACPI;
                vm->shutdown.n_modes = 1;
        }
        vm->power_step = 0;
        if (power_try(vm, err) < 0) {
                vm->power_step = 0;
                vm_release_job(vm, NULL);
                return -1;
        }
        return 0;
}

int vm_shutdown(struct vm *vm, const struct vm_shutdown_opts *o, vm_done_fn done, void *opaque,
                struct tt_error *err)
{
        struct vm_shutdown_opts opts = *o;

        if (opts.timeout_s <= 0)
                opts.timeout_s = opts.wait ? VM_SHUTDOWN_WAIT_S : VM_AGENT_EVENT_S;
        return power_begin(vm, "shutdown", VM_EV_SHUTDOWN, &opts, done, opaque, err);
}

int vm_reboot(struct vm *vm, const struct vm_shutdown_opts *o, vm_done_fn done, void *opaque,
              struct tt_error *err)
{
        struct vm_shutdown_opts opts = *o;

        opts.wait = false;
        opts.force = false;
        opts.timeout_s = VM_AGENT_EVENT_S;
        return power_begin(vm, "reboot", VM_EV_REBOOT, &opts, done, opaque, err);
}
