/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Domain lifecycle states and reasons, in libvirt's numbers and words
 * (reference/libvirt-lifecycle.md §1.1, §1.2), and the state machine as one table (§1.3).
 */
#ifndef TT_VM_STATE_H
#define TT_VM_STATE_H

#include <stdbool.h>
#include "common/tt_error.h"

/* virDomainState; the values are libvirt's so that --json output and exporters agree. */
enum vm_state {
        VM_STATE_NOSTATE = 0,
        VM_STATE_RUNNING = 1,
        VM_STATE_BLOCKED = 2,
        VM_STATE_PAUSED = 3,
        VM_STATE_SHUTDOWN = 4,
        VM_STATE_SHUTOFF = 5,
        VM_STATE_CRASHED = 6,
        VM_STATE_PMSUSPENDED = 7,
        /*
         * Tether's own (libvirt has none; DESIGN.md's tenth seed state): QEMU has been signalled
         * (destroy, destroy --graceful, shutdown --force's escalation, host stop) and not yet
         * reaped. Beyond libvirt's range so that its numbers keep their meaning.
         */
        VM_STATE_DYING = 8,
        VM_STATE_LAST,
};

/* virDomainRunningReason */
enum vm_running_reason {
        VM_RUNNING_UNKNOWN = 0,
        VM_RUNNING_BOOTED = 1,
        VM_RUNNING_MIGRATED = 2,
        VM_RUNNING_RESTORED = 3,
        VM_RUNNING_FROM_SNAPSHOT = 4,
        VM_RUNNING_UNPAUSED = 5,
        VM_RUNNING_MIGRATION_CANCELED = 6,
        VM_RUNNING_SAVE_CANCELED = 7,
        VM_RUNNING_WAKEUP = 8,
        VM_RUNNING_CRASHED = 9,
        VM_RUNNING_POSTCOPY = 10,
        VM_RUNNING_POSTCOPY_FAILED = 11,
};

/* virDomainPausedReason */
enum vm_paused_reason {
        VM_PAUSED_UNKNOWN = 0,
        VM_PAUSED_USER = 1,
        VM_PAUSED_MIGRATION = 2,
        VM_PAUSED_SAVE = 3,
        VM_PAUSED_DUMP = 4,
        VM_PAUSED_IOERROR = 5,
        VM_PAUSED_WATCHDOG = 6,
        VM_PAUSED_FROM_SNAPSHOT = 7,
        VM_PAUSED_SHUTTING_DOWN = 8,
        VM_PAUSED_SNAPSHOT = 9,
        VM_PAUSED_CRASHED = 10,
        VM_PAUSED_STARTING_UP = 11,
        VM_PAUSED_POSTCOPY = 12,
        VM_PAUSED_POSTCOPY_FAILED = 13,
        VM_PAUSED_API_ERROR = 14,
};

/* virDomainShutdownReason */
enum vm_shutdown_reason {
        VM_SHUTDOWN_UNKNOWN = 0,
        VM_SHUTDOWN_USER = 1,
};

/* virDomainShutoffReason */
enum vm_shutoff_reason {
        VM_SHUTOFF_UNKNOWN = 0,
        VM_SHUTOFF_SHUTDOWN = 1,
        VM_SHUTOFF_DESTROYED = 2,
        VM_SHUTOFF_CRASHED = 3,
        VM_SHUTOFF_MIGRATED = 4,
        VM_SHUTOFF_SAVED = 5,
        VM_SHUTOFF_FAILED = 6,
        VM_SHUTOFF_FROM_SNAPSHOT = 7,
        VM_SHUTOFF_DAEMON = 8,
};

/* virDomainCrashedReason */
enum vm_crashed_reason {
        VM_CRASHED_UNKNOWN = 0,
        VM_CRASHED_PANICKED = 1,
};

/* A state with its reason; reason is one of the enums above, chosen by state. */
struct vm_status {
        enum vm_state state; /* what virsh domstate prints */
        int reason;          /* reason code within that state (0 = "unknown") */
};

/*
 * What happens to a domain. Names with QMP_ are QEMU events the daemon receives; the others are
 * operations the daemon performs (or their outcome). The table in vm_state.c says which states
 * accept which events.
 */
enum vm_event {
        VM_EV_LAUNCH,             /* QEMU spawned with -S (start or restore begins) */
        VM_EV_START,              /* start finished: vCPUs started with cont */
        VM_EV_START_PAUSED,       /* start --paused finished: vCPUs left stopped */
        VM_EV_RESTORE,            /* restore finished and the image was running: cont */
        VM_EV_RESTORE_PAUSED,     /* restore finished, left paused (--paused or paused image) */
        VM_EV_START_FAILED,       /* launch or start-up failed; QEMU is gone */
        VM_EV_SUSPEND,            /* virsh suspend: QMP stop requested by us */
        VM_EV_RESUME,             /* virsh resume: QMP cont requested by us */
        VM_EV_SHUTDOWN,           /* virsh shutdown requested (ACPI or agent); state follows events */
        VM_EV_REBOOT,             /* virsh reboot requested; state follows events */
        VM_EV_RESET,              /* virsh reset: QMP system_reset requested by us */
        VM_EV_DESTROYED,          /* we killed QEMU (destroy) */
        VM_EV_SAVE_BEGIN,         /* save/managedsave started: vCPUs stopped for migration */
        VM_EV_SAVED,              /* save image complete, QEMU stopped */
        VM_EV_SAVE_FAILED,        /* save failed, vCPUs resumed */
        VM_EV_SAVE_FAILED_PAUSED, /* save failed and the domain was paused before (or cont failed) */
        VM_EV_FAKE_REBOOT,        /* system_reset + cont after a guest power-off or crash (on_* restart) */
        VM_EV_CRASH_DESTROYED,    /* on_crash=destroy: we stopped the panicked QEMU */
        VM_EV_QMP_STOP,           /* STOP event we did not ask for */
        VM_EV_QMP_IO_ERROR,       /* BLOCK_IO_ERROR with action stop */
        VM_EV_QMP_WATCHDOG,       /* WATCHDOG event with action pause */
        VM_EV_QMP_RESUME,         /* RESUME event */
        VM_EV_QMP_SHUTDOWN,       /* SHUTDOWN event: guest powered off, QEMU kept by -no-shutdown */
        VM_EV_QMP_RESET,          /* RESET event (guest reboot) */
        VM_EV_QMP_PANICKED,       /* GUEST_PANICKED event */
        VM_EV_QMP_SUSPEND,        /* SUSPEND / SUSPEND_DISK event (guest S3/S4) */
        VM_EV_QMP_WAKEUP,         /* WAKEUP event */
        VM_EV_MONITOR_EOF,        /* QMP socket closed / QEMU exited; the state decides why */
        VM_EV_RECONNECT_GONE,     /* daemon restart: QEMU is no longer there */
        VM_EV_RECONNECT_KILLED,   /* daemon restart: reconnect failed and we killed QEMU */
        VM_EV_KILL,               /* destroy: SIGTERM sent, QEMU not reaped yet */
        VM_EV_KILL_GRACEFUL,      /* destroy --graceful: SIGTERM sent */
        VM_EV_KILL_FORCED,        /* shutdown --force / host stop timed out: SIGTERM sent */
        VM_EV_KILL_FAILED,        /* destroy --graceful gave up: the caller puts back the state
                                     the domain had before it was dying */
        VM_EV_SNAPSHOT_LOADED,    /* snapshot-revert loaded a memory snapshot, vCPUs run */
        VM_EV_SNAPSHOT_LOADED_PAUSED, /* ... and are left paused */
        VM_EV_SNAPSHOT_SHUTOFF,   /* snapshot-revert to a shut-off snapshot (disks reverted) */
        VM_EV_LAST,
};

/* Why a domain is dying (Tether's own reasons). */
enum vm_dying_reason {
        VM_DYING_UNKNOWN = 0,
        VM_DYING_DESTROYED = 1, /* destroy: SIGTERM, SIGKILL after 10 s */
        VM_DYING_GRACEFUL = 2,  /* destroy --graceful: SIGTERM only */
        VM_DYING_FORCED = 3,    /* shutdown --force or host stop: the guest did not power off */
};

/* One row of the state machine. */
struct vm_transition {
        enum vm_state from;      /* state the row applies to */
        int from_reason;         /* reason it applies to, or VM_REASON_ANY */
        enum vm_event event;     /* what happened */
        enum vm_state to;        /* new state */
        int to_reason;           /* new reason, or VM_REASON_KEEP to leave the reason alone */
};

#define VM_REASON_ANY (-1)
#define VM_REASON_KEEP (-2)

/* The whole table, for tests and documentation. */
extern const struct vm_transition vm_state_table[];
extern const unsigned vm_state_table_len;

/* "running", "shut off", ...; "unknown"-less: NULL for an out-of-range state. */
const char *vm_state_name(enum vm_state state);
/* "booted", "destroyed", ...; NULL when reason is not valid for state. */
const char *vm_state_reason_name(enum vm_state state, int reason);
/* "VM_EV_START" style name without the prefix, e.g. "start", "qmp-shutdown". */
const char *vm_state_event_name(enum vm_event event);
/* True while a QEMU process belongs to the domain (libvirt's virDomainObjIsActive). */
bool vm_state_is_active(enum vm_state state);

/*
 * Look (cur, event) up in the table. On success *next is the new status and 0 is returned.
 * Otherwise a negative value and err says why in virsh's words ("domain is not running",
 * "domain is already running", "domain is pmsuspended"); code is EINVAL (libvirt's
 * VIR_ERR_OPERATION_INVALID, which the control API prefixes with "Requested operation is not
 * valid: ").
 */
int vm_state_apply(struct vm_status cur, enum vm_event event, struct vm_status *next,
                   struct tt_error *err);

/* "shut off" or, with_reason, "shut off (destroyed)" (virsh domstate --reason); malloc'd. */
char *vm_state_format(enum vm_state state, int reason, bool with_reason);

#endif
