/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The state machine: every row of the table, refused pairs with virsh's words, and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

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
        { S(SHUTOFF), VM_SHUTOFF_DESTROYED, E(SNAPSHOT_SHUTOFF), S(SHUTOFF), VM_SHUTOFF_FROM_SNAPSHOT },
        { S(RUNNING), VM_RUNNING_BOOTED, E(SNAPSHOT_LOADED), S(RUNNING), VM_RUNNING_FROM_SNAPSHOT },
        { S(RUNNING), VM_RUNNING_UNPAUSED, E(SNAPSHOT_LOADED_PAUSED), S(PAUSED), VM_PAUSED_FROM_SNAPSHOT },
        { S(PAUSED), VM_PAUSED_USER, E(SNAPSHOT_LOADED), S(RUNNING), VM_RUNNING_FROM_SNAPSHOT },
        { S(PAUSED), VM_PAUSED_USER, E(SNAPSHOT_LOADED_PAUSED), S(PAUSED), VM_PAUSED_FROM_SNAPSHOT },
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
        /* dying (Tether's own state): signalled, not reaped */
        { S(RUNNING), VM_RUNNING_BOOTED, E(KILL), S(DYING), VM_DYING_DESTROYED },
        { S(RUNNING), VM_RUNNING_RESTORED, E(KILL_GRACEFUL), S(DYING), VM_DYING_GRACEFUL },
        { S(RUNNING), VM_RUNNING_BOOTED, E(KILL_FORCED), S(DYING), VM_DYING_FORCED },
        { S(PAUSED), VM_PAUSED_USER, E(KILL), S(DYING), VM_DYING_DESTROYED },
        { S(PAUSED), VM_PAUSED_STARTING_UP, E(KILL), S(DYING), VM_DYING_DESTROYED },
        { S(PAUSED), VM_PAUSED_USER, E(KILL_GRACEFUL), S(DYING), VM_DYING_GRACEFUL },
        { S(PAUSED), VM_PAUSED_UNKNOWN, E(KILL_FORCED), S(DYING), VM_DYING_FORCED },
        { S(SHUTDOWN), 0, E(KILL), S(DYING), VM_DYING_DESTROYED },
        { S(SHUTDOWN), 0, E(KILL_GRACEFUL), S(DYING), VM_DYING_GRACEFUL },
        { S(SHUTDOWN), 0, E(KILL_FORCED), S(DYING), VM_DYING_FORCED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(KILL), S(DYING), VM_DYING_DESTROYED },
        { S(CRASHED), VM_CRASHED_PANICKED, E(KILL_GRACEFUL), S(DYING), VM_DYING_GRACEFUL },
        { S(CRASHED), VM_CRASHED_PANICKED, E(KILL_FORCED), S(DYING), VM_DYING_FORCED },
        { S(PMSUSPENDED), 0, E(KILL), S(DYING), VM_DYING_DESTROYED },
        { S(PMSUSPENDED), 0, E(KILL_GRACEFUL), S(DYING), VM_DYING_GRACEFUL },
        { S(PMSUSPENDED), 0, E(KILL_FORCED), S(DYING), VM_DYING_FORCED },
        { S(DYING), VM_DYING_DESTROYED, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(DYING), VM_DYING_GRACEFUL, E(DESTROYED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(DYING), VM_DYING_FORCED, E(MONITOR_EOF), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(DYING), VM_DYING_DESTROYED, E(RECONNECT_GONE), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(DYING), VM_DYING_GRACEFUL, E(RECONNECT_KILLED), S(SHUTOFF), VM_SHUTOFF_DESTROYED },
        { S(DYING), VM_DYING_GRACEFUL, E(KILL), S(DYING), VM_DYING_GRACEFUL },
        { S(DYING), VM_DYING_GRACEFUL, E(KILL_FAILED), S(DYING), VM_DYING_GRACEFUL },
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

/* The row vm_state_apply() uses for (state, reason, event): the first that matches. */
static int row_of(enum vm_state st, int reason, enum vm_event ev)
{
        for (unsigned r = 0; r < vm_state_table_len; r++) {
                const struct vm_transition *t = &vm_state_table[r];

                if (t->from == st && t->event == ev &&
                    (t->from_reason == VM_REASON_ANY || t->from_reason == reason))
                        return (int)r;
        }
        return -1;
}

/* No row of the table is left without an expectation that reaches it. */
static void test_every_row_covered(void **state)
{
        bool *hit = calloc(vm_state_table_len, sizeof(bool));

        assert_non_null(hit);
        for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
                int r = row_of(expects[i].from, expects[i].from_reason, expects[i].ev);

                assert_true(r >= 0);
                hit[r] = true;
        }
        for (unsigned r = 0; r < vm_state_table_len; r++) {
                if (!hit[r])
                        print_error("table row %u (%s, %s) has no expectation\n", r,
                                    vm_state_name(vm_state_table[r].from),
                                    vm_state_event_name(vm_state_table[r].event));
                assert_true(hit[r]);
        }
        free(hit);
}

/* Refused pairs, with the message virsh shows after "Requested operation is not valid: ". */
static const struct refusal {
        enum vm_state from;
        int from_reason;
        enum vm_event ev;
        const char *msg;
} refusals[] = {
        { S(RUNNING), VM_RUNNING_BOOTED, E(LAUNCH), "domain is already running" },
        { S(PAUSED), VM_PAUSED_USER, E(LAUNCH), "domain is already running" },
        { S(CRASHED), VM_CRASHED_PANICKED, E(LAUNCH), "domain is already running" },
        { S(SHUTOFF), VM_SHUTOFF_DESTROYED, E(SUSPEND), "domain is not running" },
        { S(SHUTOFF), VM_SHUTOFF_SHUTDOWN, E(RESUME), "domain is not running" },
        { S(SHUTOFF), VM_SHUTOFF_SAVED, E(SHUTDOWN), "domain is not running" },
        { S(SHUTOFF), VM_SHUTOFF_UNKNOWN, E(REBOOT), "domain is not running" },
        { S(SHUTOFF), VM_SHUTOFF_UNKNOWN, E(RESET), "domain is not running" },
        { S(SHUTOFF), VM_SHUTOFF_UNKNOWN, E(DESTROYED), "domain is not running" },
        { S(SHUTOFF), VM_SHUTOFF_UNKNOWN, E(SAVE_BEGIN), "domain is not running" },
        { S(SHUTOFF), VM_SHUTOFF_UNKNOWN, E(START), "domain is not running" },
        { S(RUNNING), VM_RUNNING_BOOTED, E(RESUME), "domain is already running" },
        { S(PAUSED), VM_PAUSED_USER, E(SHUTDOWN), "domain is not running" },
        { S(PAUSED), VM_PAUSED_USER, E(REBOOT), "domain is not running" },
        { S(PAUSED), VM_PAUSED_USER, E(START), "domain is already running" },
        { S(SHUTDOWN), 0, E(SUSPEND), "domain is not running" },
        { S(SHUTDOWN), 0, E(RESUME), "domain is already running" },
        { S(PMSUSPENDED), 0, E(SUSPEND), "domain is pmsuspended" },
        { S(PMSUSPENDED), 0, E(RESUME), "domain is pmsuspended" },
        { S(PMSUSPENDED), 0, E(SHUTDOWN), "domain is pmsuspended" },
        { S(PMSUSPENDED), 0, E(SAVE_BEGIN), "domain is pmsuspended" },
        { S(PMSUSPENDED), 0, E(LAUNCH), "domain is already running" },
        { S(SHUTOFF), VM_SHUTOFF_UNKNOWN, E(QMP_SHUTDOWN), "event 'qmp-shutdown' is not valid in state 'shut off'" },
        { S(SHUTOFF), VM_SHUTOFF_UNKNOWN, E(MONITOR_EOF), "event 'monitor-eof' is not valid in state 'shut off'" },
        { S(RUNNING), VM_RUNNING_BOOTED, E(QMP_WAKEUP), "event 'qmp-wakeup' is not valid in state 'running'" },
        { S(RUNNING), VM_RUNNING_BOOTED, E(SAVED), "event 'saved' is not valid in state 'running'" },
        { S(PAUSED), VM_PAUSED_USER, E(SAVED), "event 'saved' is not valid in state 'paused'" },
        { S(RUNNING), VM_RUNNING_BOOTED, E(FAKE_REBOOT), "event 'fake-reboot' is not valid in state 'running'" },
        /* a dying domain takes no operation, and QEMU's last events change nothing */
        { S(DYING), VM_DYING_DESTROYED, E(SUSPEND), "domain is not running" },
        { S(DYING), VM_DYING_DESTROYED, E(RESUME), "domain is already running" },
        { S(DYING), VM_DYING_DESTROYED, E(SHUTDOWN), "domain is not running" },
        { S(DYING), VM_DYING_DESTROYED, E(SAVE_BEGIN), "domain is not running" },
        { S(DYING), VM_DYING_DESTROYED, E(LAUNCH), "domain is already running" },
        { S(DYING), VM_DYING_DESTROYED, E(KILL_GRACEFUL), "event 'kill-graceful' is not valid in state 'dying'" },
        { S(DYING), VM_DYING_DESTROYED, E(QMP_SHUTDOWN), "event 'qmp-shutdown' is not valid in state 'dying'" },
        { S(DYING), VM_DYING_DESTROYED, E(QMP_STOP), "event 'qmp-stop' is not valid in state 'dying'" },
        { S(SHUTOFF), VM_SHUTOFF_DESTROYED, E(KILL), "domain is not running" },
        { S(SHUTOFF), VM_SHUTOFF_DESTROYED, E(KILL_FAILED), "event 'kill-failed' is not valid in state 'shut off'" },
};

static void test_refusal(void **state)
{
        const struct refusal *x = *state;
        struct vm_status next = { VM_STATE_LAST, 99 };
        struct tt_error err = { 0 };

        assert_true(vm_state_apply((struct vm_status){ x->from, x->from_reason }, x->ev, &next, &err) < 0);
        assert_non_null(err.msg);
        assert_string_equal(err.msg, x->msg);
        assert_int_equal(err.code, EINVAL);
        /* next is untouched on refusal */
        assert_int_equal(next.state, VM_STATE_LAST);
        tt_error_clear(&err);
}

static void test_bad_input(void **state)
{
        struct vm_status next;
        struct tt_error err = { 0 };

        assert_true(vm_state_apply((struct vm_status){ VM_STATE_LAST, 0 }, E(START), &next, &err) < 0);
        assert_string_equal(err.msg, "invalid state 9 or event 1");
        tt_error_clear(&err);
        assert_true(vm_state_apply((struct vm_status){ S(RUNNING), 0 }, VM_EV_LAST, &next, &err) < 0);
        tt_error_clear(&err);
}

static void check_format(enum vm_state st, int reason, bool with, const char *want)
{
        char *s = vm_state_format(st, reason, with);

        assert_non_null(s);
        assert_string_equal(s, want);
        free(s);
}

static void test_format(void **state)
{
        check_format(S(SHUTOFF), VM_SHUTOFF_DESTROYED, true, "shut off (destroyed)");
        check_format(S(SHUTOFF), VM_SHUTOFF_DESTROYED, false, "shut off");
        check_format(S(RUNNING), VM_RUNNING_BOOTED, true, "running (booted)");
        check_format(S(RUNNING), VM_RUNNING_RESTORED, true, "running (restored)");
        check_format(S(RUNNING), VM_RUNNING_WAKEUP, true, "running (event wakeup)");
        check_format(S(RUNNING), VM_RUNNING_SAVE_CANCELED, true, "running (save canceled)");
        check_format(S(PAUSED), VM_PAUSED_USER, true, "paused (user)");
        check_format(S(PAUSED), VM_PAUSED_STARTING_UP, true, "paused (starting up)");
        check_format(S(PAUSED), VM_PAUSED_SAVE, true, "paused (saving)");
        check_format(S(PAUSED), VM_PAUSED_IOERROR, true, "paused (I/O error)");
        check_format(S(PAUSED), VM_PAUSED_API_ERROR, true, "paused (api error)");
        check_format(S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN, true, "in shutdown (unknown)");
        check_format(S(SHUTOFF), VM_SHUTOFF_SAVED, true, "shut off (saved)");
        check_format(S(SHUTOFF), VM_SHUTOFF_FAILED, true, "shut off (failed)");
        check_format(S(SHUTOFF), VM_SHUTOFF_DAEMON, true, "shut off (daemon)");
        check_format(S(CRASHED), VM_CRASHED_PANICKED, true, "crashed (panicked)");
        check_format(S(PMSUSPENDED), 0, true, "pmsuspended (unknown)");
        check_format(S(BLOCKED), 0, false, "idle");
        check_format(S(BLOCKED), 0, true, "idle (unknown)");
        check_format(S(DYING), VM_DYING_DESTROYED, true, "dying (destroyed)");
        check_format(S(DYING), VM_DYING_GRACEFUL, true, "dying (graceful)");
        check_format(S(DYING), VM_DYING_FORCED, true, "dying (forced)");
        check_format(S(DYING), 0, false, "dying");
        assert_null(vm_state_reason_name(S(DYING), 4));
        check_format(S(NOSTATE), 0, false, "no state");
        /* a reason outside the state's list prints as unknown rather than garbage */
        check_format(S(CRASHED), 7, true, "crashed (unknown)");
        assert_null(vm_state_reason_name(S(SHUTOFF), 9));
        assert_string_equal(vm_state_reason_name(S(SHUTOFF), 8), "daemon");
        assert_null(vm_state_name(VM_STATE_LAST));
}

static void test_is_active(void **state)
{
        assert_false(vm_state_is_active(S(SHUTOFF)));
        assert_false(vm_state_is_active(S(NOSTATE)));
        assert_true(vm_state_is_active(S(RUNNING)));
        assert_true(vm_state_is_active(S(PAUSED)));
        assert_true(vm_state_is_active(S(SHUTDOWN)));
        assert_true(vm_state_is_active(S(CRASHED)));
        assert_true(vm_state_is_active(S(PMSUSPENDED)));
        assert_true(vm_state_is_active(S(DYING)));
}

/* A destroy: dying between the signal and the reap, then shut off (destroyed). */
static void test_dying_sequence(void **state)
{
        static const struct {
                enum vm_event ev;
                const char *shown;
        } steps[] = {
                { E(LAUNCH), "paused (starting up)" }, { E(START), "running (booted)" },
                { E(KILL), "dying (destroyed)" },      { E(DESTROYED), "shut off (destroyed)" },
                { E(LAUNCH), "paused (starting up)" }, { E(START), "running (booted)" },
                { E(KILL_FORCED), "dying (forced)" },  { E(RECONNECT_GONE), "shut off (destroyed)" },
        };
        struct vm_status st = { S(SHUTOFF), VM_SHUTOFF_UNKNOWN };

        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                struct tt_error err = { 0 };
                char *s;

                assert_int_equal(vm_state_apply(st, steps[i].ev, &st, &err), 0);
                s = vm_state_format(st.state, st.reason, true);
                assert_string_equal(s, steps[i].shown);
                free(s);
        }
}

/* A whole life: start, pause, resume, guest power-off, QEMU gone. */
static void test_sequence(void **state)
{
        static const struct {
                enum vm_event ev;
                const char *shown;
        } steps[] = {
                { E(LAUNCH), "paused (starting up)" },   { E(START), "running (booted)" },
                { E(SUSPEND), "paused (user)" },         { E(RESUME), "running (unpaused)" },
                { E(QMP_SHUTDOWN), "in shutdown (unknown)" }, { E(QMP_STOP), "in shutdown (unknown)" },
                { E(MONITOR_EOF), "shut off (shutdown)" }, { E(LAUNCH), "paused (starting up)" },
                { E(RESTORE), "running (restored)" },    { E(SAVE_BEGIN), "paused (saving)" },
                { E(SAVED), "shut off (saved)" },
        };
        struct vm_status st = { S(SHUTOFF), VM_SHUTOFF_UNKNOWN };

        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                struct tt_error err = { 0 };
                char *s;

                assert_int_equal(vm_state_apply(st, steps[i].ev, &st, &err), 0);
                s = vm_state_format(st.state, st.reason, true);
                assert_string_equal(s, steps[i].shown);
                free(s);
        }
}

int main(void)
{
        size_t n_exp = sizeof(expects) / sizeof(expects[0]);
        size_t n_ref = sizeof(refusals) / sizeof(refusals[0]);
        size_t n = n_exp + n_ref + 7, k = 0;
        struct CMUnitTest *tests = calloc(n, sizeof(*tests));
        char (*names)[96] = calloc(n_exp + n_ref, sizeof(*names));
        int rc;

        if (tests == NULL || names == NULL)
                return 1;
        for (size_t i = 0; i < n_exp; i++, k++) {
                snprintf(names[k], sizeof(names[k]), "row %s/%s + %s", vm_state_name(expects[i].from),
                         vm_state_reason_name(expects[i].from, expects[i].from_reason),
                         vm_state_event_name(expects[i].ev));
                tests[k] = (struct CMUnitTest){ .name = names[k], .test_func = test_row,
                                                .initial_state = (void *)&expects[i] };
        }
        for (size_t i = 0; i < n_ref; i++, k++) {
                snprintf(names[k], sizeof(names[k]), "refuse %s + %s", vm_state_name(refusals[i].from),
                         vm_state_event_name(refusals[i].ev));
                tests[k] = (struct CMUnitTest){ .name = names[k], .test_func = test_refusal,
                                                .initial_state = (void *)&refusals[i] };
        }
        tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_every_row_covered);
        tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_bad_input);
        tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_format);
        tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_is_active);
        tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_sequence);
        tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_dying_sequence);
        rc = _cmocka_run_group_tests("vm_state", tests, k, NULL, NULL);
        free(tests);
        free(names);
        return rc;
}
