/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The domain state machine: libvirt's states and reasons, and one transition table. */
#include "host/vm_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

static const char *const state_names[VM_STATE_LAST] = {
        [VM_STATE_NOSTATE] = "no state",   [VM_STATE_RUNNING] = "running",
        [VM_STATE_BLOCKED] = "idle",       [VM_STATE_PAUSED] = "paused",
        [VM_STATE_SHUTDOWN] = "in shutdown", [VM_STATE_SHUTOFF] = "shut off",
        [VM_STATE_CRASHED] = "crashed",    [VM_STATE_PMSUSPENDED] = "pmsuspended",
        [VM_STATE_DYING] = "dying",
};

/* virsh's reason strings (virshDomain*ReasonTypeToString), indexed by reason code. */
static const char *const running_reasons[] = {
        "unknown",  "booted",             "migrated",      "restored",
        "from snapshot", "unpaused",      "migration canceled", "save canceled",
        "event wakeup", "crashed",        "post-copy",     "post-copy failed", NULL,
};
static const char *const paused_reasons[] = {
        "unknown",   "user",          "migrating",        "saving",      "dumping",
        "I/O error", "watchdog",      "from snapshot",    "shutting down",
        "creating snapshot", "crashed", "starting up",   "post-copy",   "post-copy failed",
        "api error", NULL,
};
static const char *const shutdown_reasons[] = { "unknown", "user", NULL };
static const char *const shutoff_reasons[] = {
        "unknown", "shutdown", "destroyed", "crashed", "migrated",
        "saved",   "failed",   "from snapshot", "daemon", NULL,
};
static const char *const crashed_reasons[] = { "unknown", "panicked", NULL };
static const char *const dying_reasons[] = { "unknown", "destroyed", "graceful", "forced", NULL };
static const char *const unknown_only[] = { "unknown", NULL };

static const char *const *const reason_names[VM_STATE_LAST] = {
        [VM_STATE_NOSTATE] = unknown_only,      [VM_STATE_RUNNING] = running_reasons,
        [VM_STATE_BLOCKED] = unknown_only,      [VM_STATE_PAUSED] = paused_reasons,
        [VM_STATE_SHUTDOWN] = shutdown_reasons, [VM_STATE_SHUTOFF] = shutoff_reasons,
        [VM_STATE_CRASHED] = crashed_reasons,   [VM_STATE_PMSUSPENDED] = unknown_only,
        [VM_STATE_DYING] = dying_reasons,
};

/* What an event needs, so that a refused pair gets virsh's message rather than a generic one. */
enum event_needs {
        NEEDS_ANY,      /* internal event: a refused pair is a daemon bug, say so plainly */
        NEEDS_ACTIVE,   /* "domain is not running" when there is no QEMU */
        NEEDS_INACTIVE, /* "domain is already running" when there is one */
};

static const struct {
        const char *name;        /* for messages and logs */
        enum event_needs needs;  /* see above */
        const char *refused;     /* message for an active state the table does not accept */
} events[VM_EV_LAST] = {
        [VM_EV_LAUNCH] = { "launch", NEEDS_INACTIVE, "domain is already running" },
        [VM_EV_START] = { "start", NEEDS_ACTIVE, "domain is already running" },
        [VM_EV_START_PAUSED] = { "start-paused", NEEDS_ACTIVE, "domain is already running" },
        [VM_EV_RESTORE] = { "restore", NEEDS_ACTIVE, "domain is already running" },
        [VM_EV_RESTORE_PAUSED] = { "restore-paused", NEEDS_ACTIVE, "domain is already running" },
        [VM_EV_START_FAILED] = { "start-failed", NEEDS_ANY, NULL },
        [VM_EV_SUSPEND] = { "suspend", NEEDS_ACTIVE, "domain is not running" },
        [VM_EV_RESUME] = { "resume", NEEDS_ACTIVE, "domain is already running" },
        [VM_EV_SHUTDOWN] = { "shutdown", NEEDS_ACTIVE, "domain is not running" },
        [VM_EV_REBOOT] = { "reboot", NEEDS_ACTIVE, "domain is not running" },
        [VM_EV_RESET] = { "reset", NEEDS_ACTIVE, "domain is not running" },
        [VM_EV_DESTROYED] = { "destroyed", NEEDS_ACTIVE, NULL },
        [VM_EV_SAVE_BEGIN] = { "save-begin", NEEDS_ACTIVE, "domain is not running" },
        [VM_EV_SAVED] = { "saved", NEEDS_ACTIVE, NULL },
        [VM_EV_SAVE_FAILED] = { "save-failed", NEEDS_ACTIVE, NULL },
        [VM_EV_SAVE_FAILED_PAUSED] = { "save-failed-paused", NEEDS_ACTIVE, NULL },
        [VM_EV_FAKE_REBOOT] = { "fake-reboot", NEEDS_ACTIVE, NULL },
        [VM_EV_CRASH_DESTROYED] = { "crash-destroyed", NEEDS_ACTIVE, NULL },
        [VM_EV_QMP_STOP] = { "qmp-stop", NEEDS_ANY, NULL },
        [VM_EV_QMP_IO_ERROR] = { "qmp-io-error", NEEDS_ANY, NULL },
        [VM_EV_QMP_WATCHDOG] = { "qmp-watchdog", NEEDS_ANY, NULL },
        [VM_EV_QMP_RESUME] = { "qmp-resume", NEEDS_ANY, NULL },
        [VM_EV_QMP_SHUTDOWN] = { "qmp-shutdown", NEEDS_ANY, NULL },
        [VM_EV_QMP_RESET] = { "qmp-reset", NEEDS_ANY, NULL },
        [VM_EV_QMP_PANICKED] = { "qmp-panicked", NEEDS_ANY, NULL },
        [VM_EV_QMP_SUSPEND] = { "qmp-suspend", NEEDS_ANY, NULL },
        [VM_EV_QMP_WAKEUP] = { "qmp-wakeup", NEEDS_ANY, NULL },
        [VM_EV_MONITOR_EOF] = { "monitor-eof", NEEDS_ANY, NULL },
        [VM_EV_RECONNECT_GONE] = { "reconnect-gone", NEEDS_ANY, NULL },
        [VM_EV_RECONNECT_KILLED] = { "reconnect-killed", NEEDS_ANY, NULL },
        [VM_EV_KILL] = { "kill", NEEDS_ACTIVE, NULL },
        [VM_EV_KILL_GRACEFUL] = { "kill-graceful", NEEDS_ACTIVE, NULL },
        [VM_EV_KILL_FORCED] = { "kill-forced", NEEDS_ACTIVE, NULL },
        [VM_EV_KILL_FAILED] = { "kill-failed", NEEDS_ANY, NULL },
        [VM_EV_SNAPSHOT_LOADED] = { "snapshot-loaded", NEEDS_ACTIVE, "domain is not running" },
        [VM_EV_SNAPSHOT_LOADED_PAUSED] = { "snapshot-loaded-paused", NEEDS_ACTIVE,
                                           "domain is not running" },
        [VM_EV_SNAPSHOT_SHUTOFF] = { "snapshot-shutoff", NEEDS_INACTIVE,
                                     "domain is already running" },
};

#define ANY VM_REASON_ANY
#define KEEP VM_REASON_KEEP
#define S(x) VM_STATE_##x
#define E(x) VM_EV_##x

/*
 * The state machine (reference/libvirt-lifecycle.md §1.3, §2). Rows are grouped by the state
 * they leave; a pair that is not here is refused. Operations that do not change the state by
 * themselves (shutdown, reboot) still have rows: those rows are the "is it allowed" check.
 */
const struct vm_transition vm_state_table[] = {
        /* shut off: only a launch (start, create, restore) or its failure */
        { S(SHUTOFF), ANY, E(LAUNCH), S(PAUSED), VM_PAUSED_STARTING_UP },
        { S(SHUTOFF), ANY, E(START_FAILED), S(SHUTOFF), VM_SHUTOFF_FAILED },
        /* ... or a revert of its disks to a shut-off snapshot */
        { S(SHUTOFF), ANY, E(SNAPSHOT_SHUTOFF), S(SHUTOFF), VM_SHUTOFF_FROM_SNAPSHOT },
        { S(NOSTATE), ANY, E(LAUNCH), S(PAUSED), VM_PAUSED_STARTING_UP },
        { S(NOSTATE), ANY, E(START_FAILED), S(SHUTOFF), VM_SHUTOFF_FAILED },

        /* paused while starting up (QEMU runs with -S, the daemon sets it up over QMP) */
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(START), S(RUNNING), VM_RUNNING_BOOTED },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(START_PAUSED), S(PAUSED), VM_PAUSED_USER },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE), S(RUNNING), VM_RUNNING_RESTORED },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE_PAUSED), S(PAUSED), VM_PAUSED_USER },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(START_FAILED), S(SHUTOFF), VM_SHUTOFF_FAILED },
        /* QEMU stops/resets the vCPUs during set-up; that is not a user pause */
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(QMP_STOP), S(PAUSED), KEEP },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(QMP_RESET), S(PAUSED), KEEP },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_FAILED },

        /* running */
        { S(RUNNING), ANY, E(SUSPEND), S(PAUSED), VM_PAUSED_USER },
        { S(RUNNING), ANY, E(SNAPSHOT_LOADED), S(RUNNING), VM_RUNNING_FROM_SNAPSHOT },
        { S(RUNNING), ANY, E(SNAPSHOT_LOADED_PAUSED), S(PAUSED), VM_PAUSED_FROM_SNAPSHOT },
        { S(RUNNING), ANY, E(SHUTDOWN), S(RUNNING), KEEP },
        { S(RUNNING), ANY, E(REBOOT), S(RUNNING), KEEP },
        { S(RUNNING), ANY, E(RESET), S(RUNNING), KEEP },
        { S(RUNNING), ANY, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(RUNNING), ANY, E(SAVE_BEGIN), S(PAUSED), VM_PAUSED_SAVE },
        { S(RUNNING), ANY, E(QMP_STOP), S(PAUSED), VM_PAUSED_UNKNOWN },
        { S(RUNNING), ANY, E(QMP_IO_ERROR), S(PAUSED), VM_PAUSED_IOERROR },
        { S(RUNNING), ANY, E(QMP_WATCHDOG), S(PAUSED), VM_PAUSED_WATCHDOG },
        { S(RUNNING), ANY, E(QMP_RESUME), S(RUNNING), KEEP },
        { S(RUNNING), ANY, E(QMP_SHUTDOWN), S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN },
        { S(RUNNING), ANY, E(QMP_RESET), S(RUNNING), KEEP },
        { S(RUNNING), ANY, E(QMP_PANICKED), S(CRASHED), VM_CRASHED_PANICKED },
        { S(RUNNING), ANY, E(QMP_SUSPEND), S(PMSUSPENDED), 0 },
        { S(RUNNING), ANY, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(RUNNING), ANY, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(RUNNING), ANY, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DAEMON },
        { S(RUNNING), ANY, E(KILL), S(DYING), VM_DYING_DESTROYED },
        { S(RUNNING), ANY, E(KILL_GRACEFUL), S(DYING), VM_DYING_GRACEFUL },
        { S(RUNNING), ANY, E(KILL_FORCED), S(DYING), VM_DYING_FORCED },

        /* paused while saving: the save ends one way or the other */
        { S(PAUSED), VM_PAUSED_SAVE, E(SAVED), S(SHUTOFF), VM_SHUTOFF_SAVED },
        { S(PAUSED), VM_PAUSED_SAVE, E(SAVE_FAILED), S(RUNNING), VM_RUNNING_SAVE_CANCELED },
        { S(PAUSED), VM_PAUSED_SAVE, E(SAVE_FAILED_PAUSED), S(PAUSED), VM_PAUSED_API_ERROR },
        { S(PAUSED), VM_PAUSED_SAVE, E(QMP_STOP), S(PAUSED), KEEP },
        { S(PAUSED), VM_PAUSED_SAVE, E(QMP_RESUME), S(PAUSED), KEEP },
        { S(PAUSED), VM_PAUSED_SAVE, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(PAUSED), VM_PAUSED_SAVE, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_CRASHED },

        /* paused (any other reason) */
        { S(PAUSED), ANY, E(SUSPEND), S(PAUSED), KEEP }, /* libvirt: no-op */
        { S(PAUSED), ANY, E(RESUME), S(RUNNING), VM_RUNNING_UNPAUSED },
        { S(PAUSED), ANY, E(SNAPSHOT_LOADED), S(RUNNING), VM_RUNNING_FROM_SNAPSHOT },
        { S(PAUSED), ANY, E(SNAPSHOT_LOADED_PAUSED), S(PAUSED), VM_PAUSED_FROM_SNAPSHOT },
        { S(PAUSED), ANY, E(RESET), S(PAUSED), KEEP },
        { S(PAUSED), ANY, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(PAUSED), ANY, E(SAVE_BEGIN), S(PAUSED), VM_PAUSED_SAVE },
        { S(PAUSED), ANY, E(QMP_STOP), S(PAUSED), KEEP },
        { S(PAUSED), ANY, E(QMP_RESUME), S(RUNNING), VM_RUNNING_UNPAUSED },
        { S(PAUSED), ANY, E(QMP_SHUTDOWN), S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN },
        { S(PAUSED), ANY, E(QMP_RESET), S(PAUSED), KEEP },
        { S(PAUSED), ANY, E(QMP_PANICKED), S(CRASHED), VM_CRASHED_PANICKED },
        { S(PAUSED), ANY, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(PAUSED), ANY, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(PAUSED), ANY, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DAEMON },
        { S(PAUSED), ANY, E(KILL), S(DYING), VM_DYING_DESTROYED },
        { S(PAUSED), ANY, E(KILL_GRACEFUL), S(DYING), VM_DYING_GRACEFUL },
        { S(PAUSED), ANY, E(KILL_FORCED), S(DYING), VM_DYING_FORCED },

        /* in shutdown: the guest powered off; QEMU waits (-no-shutdown) until we end it */
        { S(SHUTDOWN), ANY, E(QMP_SHUTDOWN), S(SHUTDOWN), KEEP },
        { S(SHUTDOWN), ANY, E(QMP_STOP), S(SHUTDOWN), KEEP },
        { S(SHUTDOWN), ANY, E(FAKE_REBOOT), S(RUNNING), VM_RUNNING_BOOTED },
        { S(SHUTDOWN), ANY, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(SHUTDOWN), ANY, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_SHUTDOWN },
        { S(SHUTDOWN), ANY, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_SHUTDOWN },
        { S(SHUTDOWN), ANY, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DAEMON },
        { S(SHUTDOWN), ANY, E(KILL), S(DYING), VM_DYING_DESTROYED },
        { S(SHUTDOWN), ANY, E(KILL_GRACEFUL), S(DYING), VM_DYING_GRACEFUL },
        { S(SHUTDOWN), ANY, E(KILL_FORCED), S(DYING), VM_DYING_FORCED },

        /* crashed (guest panicked, on_crash=preserve keeps QEMU) */
        { S(CRASHED), ANY, E(SUSPEND), S(PAUSED), VM_PAUSED_USER },
        { S(CRASHED), ANY, E(RESUME), S(RUNNING), VM_RUNNING_UNPAUSED },
        { S(CRASHED), ANY, E(RESET), S(PAUSED), VM_PAUSED_CRASHED },
        { S(CRASHED), ANY, E(FAKE_REBOOT), S(RUNNING), VM_RUNNING_CRASHED },
        { S(CRASHED), ANY, E(CRASH_DESTROYED), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(CRASHED), ANY, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(CRASHED), ANY, E(QMP_STOP), S(CRASHED), KEEP },
        { S(CRASHED), ANY, E(QMP_PANICKED), S(CRASHED), KEEP },
        { S(CRASHED), ANY, E(QMP_RESUME), S(RUNNING), VM_RUNNING_UNPAUSED },
        { S(CRASHED), ANY, E(QMP_SHUTDOWN), S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN },
        { S(CRASHED), ANY, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(CRASHED), ANY, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(CRASHED), ANY, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DAEMON },
        { S(CRASHED), ANY, E(KILL), S(DYING), VM_DYING_DESTROYED },
        { S(CRASHED), ANY, E(KILL_GRACEFUL), S(DYING), VM_DYING_GRACEFUL },
        { S(CRASHED), ANY, E(KILL_FORCED), S(DYING), VM_DYING_FORCED },

        /* pmsuspended (guest S3; S4 ends with a SHUTDOWN event) */
        { S(PMSUSPENDED), ANY, E(QMP_WAKEUP), S(RUNNING), VM_RUNNING_WAKEUP },
        { S(PMSUSPENDED), ANY, E(QMP_SUSPEND), S(PMSUSPENDED), KEEP },
        { S(PMSUSPENDED), ANY, E(QMP_SHUTDOWN), S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN },
        { S(PMSUSPENDED), ANY, E(QMP_RESET), S(RUNNING), VM_RUNNING_BOOTED },
        { S(PMSUSPENDED), ANY, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(PMSUSPENDED), ANY, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(PMSUSPENDED), ANY, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(PMSUSPENDED), ANY, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DAEMON },
        { S(PMSUSPENDED), ANY, E(KILL), S(DYING), VM_DYING_DESTROYED },
        { S(PMSUSPENDED), ANY, E(KILL_GRACEFUL), S(DYING), VM_DYING_GRACEFUL },
        { S(PMSUSPENDED), ANY, E(KILL_FORCED), S(DYING), VM_DYING_FORCED },

        /*
         * dying: QEMU was signalled and is not reaped yet. Its exit (however it is noticed, also
         * by a restarted daemon) is the destroy's end; QEMU's own events meanwhile change
         * nothing. A graceful destroy that gives up returns to the state before (the caller
         * keeps it: the table cannot know it); a restarted daemon carries on killing.
         */
        { S(DYING), ANY, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(DYING), ANY, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(DYING), ANY, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(DYING), ANY, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(DYING), ANY, E(KILL), S(DYING), KEEP },
        { S(DYING), ANY, E(KILL_FAILED), S(DYING), KEEP },
};
const unsigned vm_state_table_len = TT_ARRAY_SIZE(vm_state_table);

#undef ANY
#undef KEEP
#undef S
#undef E

const char *vm_state_name(enum vm_state state)
{
        if ((unsigned)state >= VM_STATE_LAST)
                return NULL;
        return state_names[state];
}

const char *vm_state_reason_name(enum vm_state state, int reason)
{
        const char *const *names;

        if ((unsigned)state >= VM_STATE_LAST || reason < 0)
                return NULL;
        names = reason_names[state];
        for (int i = 0; names[i]; i++)
                if (i == reason)
                        return names[i];
        return NULL;
}

const char *vm_state_event_name(enum vm_event event)
{
        if ((unsigned)event >= VM_EV_LAST)
                return NULL;
        return events[event].name;
}

bool vm_state_is_active(enum vm_state state)
{
        return state != VM_STATE_SHUTOFF && state != VM_STATE_NOSTATE;
}

int vm_state_apply(struct vm_status cur, enum vm_event event, struct vm_status *next,
                   struct tt_error *err)
{
        const char *cur_name = vm_state_name(cur.state);
        bool active = vm_state_is_active(cur.state);

        if (cur_name == NULL || (unsigned)event >= VM_EV_LAST)
                return tt_error_set(err, EINVAL, "invalid state %d or event %d", (int)cur.state,
                                    (int)event);

        /* The first matching row wins, so a row for one reason goes before its ANY row. */
        for (unsigned i = 0; i < vm_state_table_len; i++) {
                const struct vm_transition *t = &vm_state_table[i];

                if (t->from != cur.state || t->event != event)
                        continue;
                if (t->from_reason != VM_REASON_ANY && t->from_reason != cur.reason)
                        continue;
                next->state = t->to;
                next->reason = t->to_reason == VM_REASON_KEEP ? cur.reason : t->to_reason;
                return 0;
        }

        if (events[event].needs == NEEDS_ACTIVE && !active)
                return tt_error_set(err, EINVAL, "domain is not running");
        if (events[event].needs == NEEDS_INACTIVE && active)
                return tt_error_set(err, EINVAL, "domain is already running");
        if (events[event].needs != NEEDS_ANY && cur.state == VM_STATE_PMSUSPENDED)
                return tt_error_set(err, EINVAL, "domain is pmsuspended");
        if (events[event].refused)
                return tt_error_set(err, EINVAL, "%s", events[event].refused);
        return tt_error_set(err, EINVAL, "event '%s' is not valid in state '%s'",
                            events[event].name, cur_name);
}

char *vm_state_format(enum vm_state state, int reason, bool with_reason)
{
        const char *name = vm_state_name(state);
        const char *why;
        char *out = NULL;

        if (name == NULL)
                name = "no state";
        if (!with_reason)
                return strdup(name);
        why = vm_state_reason_name(state, reason);
        if (asprintf(&out, "%s (%s)", name, why ? why : "unknown") < 0)
                return NULL;
        return out;
}
