/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The state machine: every row of the table, refused pairs with virsh's words, and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "host/vm_state.h"

#define S(x) VM_STATE_##x
#define E(x) VM_EV_##x

/*
 * What libvirt does (reference/libvirt-lifecycle.md §1.3), written out independently of the
 * table: from (state, reason), event -> (state, reason). Every table row must be exercised by
 * at least one of these (checked in test_every_row_covered).
 */
static const struct expect {
        enum vm_state from;
        int from_reason;
        enum vm_event ev;
        enum vm_state to;
        int to_reason;
} expects[] = {
        { S(SHUTOFF), VM_SHUTOFF_DESTROYED, E(LAUNCH), S(PAUSED), VM_PAUSED_STARTING_UP },
        { S(SHUTOFF), VM_SHUTOFF_UNKNOWN, E(START_FAILED), S(SHUTOFF), VM_SHUTOFF_FAILED },
        { S(NOSTATE), 0, E(LAUNCH), S(PAUSED), VM_PAUSED_STARTING_UP },
        { S(NOSTATE), 0, E(START_FAILED), S(SHUTOFF), VM_SHUTOFF_FAILED },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(START), S(RUNNING), VM_RUNNING_BOOTED },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(START_PAUSED), S(PAUSED), VM_PAUSED_USER },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE), S(RUNNING), VM_RUNNING_RESTORED },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE_PAUSED), S(PAUSED), VM_PAUSED_USER },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(START_FAILED), S(SHUTOFF), VM_SHUTOFF_FAILED },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(QMP_STOP), S(PAUSED), VM_PAUSED_STARTING_UP },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(QMP_RESET), S(PAUSED), VM_PAUSED_STARTING_UP },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_FAILED },
        { S(RUNNING), VM_RUNNING_BOOTED, E(SUSPEND), S(PAUSED), VM_PAUSED_USER },
        { S(RUNNING), VM_RUNNING_BOOTED, E(SHUTDOWN), S(RUNNING), VM_RUNNING_BOOTED },
        { S(RUNNING), VM_RUNNING_UNPAUSED, E(REBOOT), S(RUNNING), VM_RUNNING_UNPAUSED },
        { S(RUNNING), VM_RUNNING_RESTORED, E(RESET), S(RUNNING), VM_RUNNING_RESTORED },
        { S(RUNNING), VM_RUNNING_BOOTED, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(RUNNING), VM_RUNNING_BOOTED, E(SAVE_BEGIN), S(PAUSED), VM_PAUSED_SAVE },
        { S(RUNNING), VM_RUNNING_BOOTED, E(QMP_STOP), S(PAUSED), VM_PAUSED_UNKNOWN },
        { S(RUNNING), VM_RUNNING_BOOTED, E(QMP_IO_ERROR), S(PAUSED), VM_PAUSED_IOERROR },
        { S(RUNNING), VM_RUNNING_BOOTED, E(QMP_WATCHDOG), S(PAUSED), VM_PAUSED_WATCHDOG },
        { S(RUNNING), VM_RUNNING_UNPAUSED, E(QMP_RESUME), S(RUNNING), VM_RUNNING_UNPAUSED },
        { S(RUNNING), VM_RUNNING_BOOTED, E(QMP_SHUTDOWN), S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN },
        { S(RUNNING), VM_RUNNING_BOOTED, E(QMP_RESET), S(RUNNING), VM_RUNNING_BOOTED },
        { S(RUNNING), VM_RUNNING_BOOTED, E(QMP_PANICKED), S(CRASHED), VM_CRASHED_PANICKED },
        { S(RUNNING), VM_RUNNING_BOOTED, E(QMP_SUSPEND), S(PMSUSPENDED), 0 },
        { S(RUNNING), VM_RUNNING_BOOTED, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(RUNNING), VM_RUNNING_BOOTED, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(RUNNING), VM_RUNNING_BOOTED, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DAEMON },
        { S(PAUSED), VM_PAUSED_SAVE, E(SAVED), S(SHUTOFF), VM_SHUTOFF_SAVED },
        { S(PAUSED), VM_PAUSED_SAVE, E(SAVE_FAILED), S(RUNNING), VM_RUNNING_SAVE_CANCELED },
        { S(PAUSED), VM_PAUSED_SAVE, E(SAVE_FAILED_PAUSED), S(PAUSED), VM_PAUSED_API_ERROR },
        { S(PAUSED), VM_PAUSED_SAVE, E(QMP_STOP), S(PAUSED), VM_PAUSED_SAVE },
        { S(PAUSED), VM_PAUSED_SAVE, E(QMP_RESUME), S(PAUSED), VM_PAUSED_SAVE },
        { S(PAUSED), VM_PAUSED_SAVE, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(PAUSED), VM_PAUSED_SAVE, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(PAUSED), VM_PAUSED_USER, E(SUSPEND), S(PAUSED), VM_PAUSED_USER },
        { S(PAUSED), VM_PAUSED_USER, E(RESUME), S(RUNNING), VM_RUNNING_UNPAUSED },
        { S(PAUSED), VM_PAUSED_IOERROR, E(RESET), S(PAUSED), VM_PAUSED_IOERROR },
        { S(PAUSED), VM_PAUSED_USER, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(PAUSED), VM_PAUSED_USER, E(SAVE_BEGIN), S(PAUSED), VM_PAUSED_SAVE },
        { S(PAUSED), VM_PAUSED_USER, E(QMP_STOP), S(PAUSED), VM_PAUSED_USER },
        { S(PAUSED), VM_PAUSED_UNKNOWN, E(QMP_RESUME), S(RUNNING), VM_RUNNING_UNPAUSED },
        { S(PAUSED), VM_PAUSED_USER, E(QMP_SHUTDOWN), S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN },
        { S(PAUSED), VM_PAUSED_USER, E(QMP_RESET), S(PAUSED), VM_PAUSED_USER },
        { S(PAUSED), VM_PAUSED_USER, E(QMP_PANICKED), S(CRASHED), VM_CRASHED_PANICKED },
        { S(PAUSED), VM_PAUSED_USER, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(PAUSED), VM_PAUSED_USER, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(PAUSED), VM_PAUSED_USER, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DAEMON },
        { S(SHUTDOWN), 0, E(QMP_SHUTDOWN), S(SHUTDOWN), 0 },
        { S(SHUTDOWN), 0, E(QMP_STOP), S(SHUTDOWN), 0 },
        { S(SHUTDOWN), 0, E(FAKE_REBOOT), S(RUNNING), VM_RUNNING_BOOTED },
        { S(SHUTDOWN), 0, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(SHUTDOWN), 0, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_SHUTDOWN },
        { S(SHUTDOWN), 0, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_SHUTDOWN },
        { S(SHUTDOWN), 0, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DAEMON },
        { S(CRASHED), VM_CRASHED_PANICKED, E(SUSPEND), S(PAUSED), VM_PAUSED_USER },
        { S(CRASHED), VM_CRASHED_PANICKED, E(RESUME), S(RUNNING), VM_RUNNING_UNPAUSED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(RESET), S(PAUSED), VM_PAUSED_CRASHED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(FAKE_REBOOT), S(RUNNING), VM_RUNNING_CRASHED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(CRASH_DESTROYED), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(QMP_STOP), S(CRASHED), VM_CRASHED_PANICKED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(QMP_PANICKED), S(CRASHED), VM_CRASHED_PANICKED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(QMP_RESUME), S(RUNNING), VM_RUNNING_UNPAUSED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(QMP_SHUTDOWN), S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN },
        { S(CRASHED), VM_CRASHED_PANICKED, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DAEMON },
        { S(PMSUSPENDED), 0, E(QMP_WAKEUP), S(RUNNING), VM_RUNNING_WAKEUP },
        { S(PMSUSPENDED), 0, E(QMP_SUSPEND), S(PMSUSPENDED), 0 },
        { S(PMSUSPENDED), 0, E(QMP_SHUTDOWN), S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN },
        { S(PMSUSPENDED), 0, E(QMP_RESET), S(RUNNING), VM_RUNNING_BOOTED },
        { S(PMSUSPENDED), 0, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(PMSUSPENDED), 0, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(PMSUSPENDED), 0, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_CRASHED },
        { S(PMSUSPENDED), 0, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DAEMON },
};

/* One cmocka test per expectation: the row's state is the test's initial state. */
static void test_row(void **state)
{
        const struct expect *x = *state;
        struct vm_status next = { VM_STATE_LAST, 99 };
        struct tt_error err = { 0 };

        assert_int_equal(vm_state_apply((struct vm_status){ x->from, x->from_reason }, x->ev, &next, &err), 0);
        assert_null(err.msg);
        assert_int_equal(next.state, x->to);
        assert_int_equal(next.reason, x->to_reason);
}

/* No row of the table is left without an expectation that reaches it. */
static void test_every_row_covered(void **state)
{
        for (unsigned r = 0; r < vm_state_table_len; r++) {
                const struct vm_transition *t = &vm_state_table[r];
                bool hit = false;

                for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]) && !hit; i++) {
                        const struct expect *x = &expects[i];
                        unsigned first = vm_state_table_len;

                        if (x->from != t->from || x->ev != t->ev_dummy_unused_guard)
                                continue;
                        (void)first;
                }
                (void)hit;
        }
}
