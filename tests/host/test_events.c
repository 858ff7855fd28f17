/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event bus (src/host/events.c): the lifecycle table against the state machine's rows,
 * virsh's words, filters, the bounded queue with its dropped notice, and the subscriber cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "host/events.h"
#include "host/vm_state.h"

#define S(x) VM_STATE_##x
#define E(x) VM_EV_##x
#define L(x) EVENTS_LIFE_##x

/* What libvirt 9.0 tells (seen with `virsh event --all --loop`, and qemu_process.c). */
static const struct expect {
        enum vm_state from;
        int from_reason;
        enum vm_event ev;
        const char *first;  /* "Type Detail", or NULL: no event */
        const char *second; /* or NULL */
} expects[] = {
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(START), "Resumed Unpaused", "Started Booted"},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(START_PAUSED), "Started Booted", "Suspended Paused"},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE), "Started Restored", "Resumed Snapshot"},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE_PAUSED), "Started Restored",
         "Suspended Restored"},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(START_FAILED), "Stopped Failed", NULL},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(QMP_STOP), NULL, NULL},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(DESTROYED), "Stopped Destroyed", NULL},
        {S(SHUTOFF), VM_SHUTOFF_DESTROYED, E(LAUNCH), NULL, NULL},
        {S(SHUTOFF), VM_SHUTOFF_UNKNOWN, E(START_FAILED), NULL, NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(SUSPEND), "Suspended Paused", NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(SHUTDOWN), NULL, NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(REBOOT), NULL, NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(QMP_RESET), NULL, NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(DESTROYED), "Stopped Destroyed", NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(QMP_IO_ERROR), "Suspended I/O Error", NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(QMP_WATCHDOG), "Suspended Watchdog", NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(QMP_PANICKED), "Crashed Panicked", NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(QMP_SUSPEND), "PMSuspended Memory", NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(MONITOR_EOF), "Stopped Failed", NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(QMP_SHUTDOWN), "Shutdown Finished after guest request",
         NULL},
        {S(PAUSED), VM_PAUSED_USER, E(RESUME), "Resumed Unpaused", NULL},
        {S(PAUSED), VM_PAUSED_USER, E(SUSPEND), NULL, NULL},
        {S(PAUSED), VM_PAUSED_SAVE, E(SAVED), "Stopped Saved", NULL},
        {S(PAUSED), VM_PAUSED_SAVE, E(SAVE_FAILED), "Resumed Unpaused", NULL},
        {S(PAUSED), VM_PAUSED_SAVE, E(SAVE_FAILED_PAUSED), "Suspended API error", NULL},
        {S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN, E(MONITOR_EOF), "Stopped Shutdown", NULL},
        {S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN, E(FAKE_REBOOT), NULL, NULL},
        {S(SHUTDOWN), VM_SHUTDOWN_UNKNOWN, E(RECONNECT_KILLED), "Stopped Failed", NULL},
        {S(CRASHED), VM_CRASHED_PANICKED, E(CRASH_DESTROYED), "Stopped Crashed", NULL},
        {S(PMSUSPENDED), 0, E(QMP_WAKEUP), "Started Event wakeup", NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(KILL), NULL, NULL},
        {S(DYING), VM_DYING_DESTROYED, E(MONITOR_EOF), "Stopped Destroyed", NULL},
        {S(DYING), VM_DYING_FORCED, E(DESTROYED), "Stopped Destroyed", NULL},
        {S(RUNNING), VM_RUNNING_BOOTED, E(SNAPSHOT_LOADED), "Started Snapshot", "Resumed Snapshot"},
        {S(PAUSED), VM_PAUSED_USER, E(SNAPSHOT_LOADED_PAUSED), "Started Snapshot",
         "Suspended Snapshot"},
        {S(SHUTOFF), VM_SHUTOFF_DESTROYED, E(SNAPSHOT_SHUTOFF), "Stopped Snapshot", NULL},
};

/*
 * Captured from virsh 9.0 (`virsh -c qemu:///system event --all --loop`, libvirtd 9.0 with QEMU
 * 7.2, one domain with a qcow2 disk; migration-iteration and job-completed lines left out):
 * the lifecycle words of each command, in order.
 */
static const struct captured {
        const char *command;
        const char *events;
} virsh90[] = {
        {"start", "Resumed Unpaused\nStarted Booted\n"},
        {"save", "Suspended Paused\nStopped Saved\n"},
        {"restore (running image)", "Started Restored\nResumed Snapshot\n"},
        {"save --paused", "Suspended Paused\nStopped Saved\n"},
        {"restore (paused image)", "Started Restored\nSuspended Restored\n"},
        {"managedsave", "Suspended Paused\nStopped Saved\n"},
        {"start (managed save of a running domain)", "Started Restored\nResumed Snapshot\n"},
        {"start (managed save made with --paused)", "Started Restored\nSuspended Restored\n"},
        {"snapshot-revert (running domain, running snapshot)",
         "Stopped Snapshot\nStarted Snapshot\nResumed Snapshot\nDefined Snapshot\n"},
        {"snapshot-revert --paused (running domain, running snapshot)",
         "Stopped Snapshot\nStarted Snapshot\nSuspended Snapshot\nDefined Snapshot\n"},
        {"snapshot-revert (shut-off domain, running snapshot)",
         "Started Snapshot\nResumed Snapshot\nDefined Snapshot\n"},
        {"snapshot-revert --paused (shut-off domain, running snapshot)",
         "Started Snapshot\nSuspended Snapshot\nDefined Snapshot\n"},
        {"snapshot-revert (running domain, shut-off snapshot)",
         "Stopped Snapshot\nDefined Snapshot\n"},
        {"snapshot-revert (shut-off domain, shut-off snapshot)", "Defined Snapshot\n"},
        {"snapshot-revert --running (paused domain, shut-off snapshot)",
         "Stopped Snapshot\nResumed Unpaused\nStarted Snapshot\nDefined Snapshot\n"},
};

/*
 * The table's words for one step are the capture of a command without its first `head` and
 * last `tail` lines (told by another step: the save's pause; or by snapshot.c: a revert's
 * Stopped Snapshot of a running domain and its Defined Snapshot).
 */
static const struct {
        enum vm_state from;
        int from_reason;
        enum vm_event ev;
        const char *command;
        int head, tail;
} captured_steps[] = {
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(START), "start", 0, 0},
        {S(PAUSED), VM_PAUSED_SAVE, E(SAVED), "save", 1, 0},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE), "restore (running image)", 0, 0},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE_PAUSED), "restore (paused image)", 0, 0},
        {S(PAUSED), VM_PAUSED_SAVE, E(SAVED), "managedsave", 1, 0},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE), "start (managed save of a running domain)",
         0, 0},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE_PAUSED),
         "start (managed save made with --paused)", 0, 0},
        {S(RUNNING), VM_RUNNING_BOOTED, E(SNAPSHOT_LOADED),
         "snapshot-revert (running domain, running snapshot)", 1, 1},
        {S(RUNNING), VM_RUNNING_BOOTED, E(SNAPSHOT_LOADED_PAUSED),
         "snapshot-revert --paused (running domain, running snapshot)", 1, 1},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(SNAPSHOT_LOADED),
         "snapshot-revert (shut-off domain, running snapshot)", 0, 1},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(SNAPSHOT_LOADED_PAUSED),
         "snapshot-revert --paused (shut-off domain, running snapshot)", 0, 1},
        {S(SHUTOFF), VM_SHUTOFF_DESTROYED, E(SNAPSHOT_SHUTOFF),
         "snapshot-revert (running domain, shut-off snapshot)", 0, 1},
};

/* The lines of text from line head on, without the last tail ones. */
static void slice_lines(const char *text, int head, int tail, char *out, size_t len)
{
        int n = 0, i = 0;

        for (const char *p = text; *p; p++)
                n += *p == '\n';
        out[0] = '\0';
        for (const char *p = text, *nl; *p; p = nl + 1, i++) {
                nl = strchr(p, '\n');
                if (i >= head && i < n - tail)
                        snprintf(out + strlen(out), len - strlen(out), "%.*s",
                                 (int)(nl - p + 1), p);
        }
}

static char *words(int type, int detail);

static void test_virsh_captures(void **state)
{
        for (size_t i = 0; i < sizeof(captured_steps) / sizeof(captured_steps[0]); i++) {
                struct vm_status from = {captured_steps[i].from, captured_steps[i].from_reason};
                const char *ref = NULL;
                char got[128] = "", want[256], *w;
                int t1, d1, t2, d2;

                for (size_t j = 0; j < sizeof(virsh90) / sizeof(virsh90[0]); j++)
                        if (strcmp(virsh90[j].command, captured_steps[i].command) == 0)
                                ref = virsh90[j].events;
                assert_non_null(ref);
                events_lifecycle_of(from, captured_steps[i].ev, &t1, &d1, &t2, &d2);
                if ((w = words(t1, d1)) != NULL) {
                        strcat(got, w);
                        strcat(got, "\n");
                        free(w);
                }
                if ((w = words(t2, d2)) != NULL) {
                        strcat(got, w);
                        strcat(got, "\n");
                        free(w);
                }
                slice_lines(ref, captured_steps[i].head, captured_steps[i].tail, want,
                            sizeof(want));
                if (strcmp(got, want) != 0)
                        fail_msg("%s: the table tells '%s', virsh 9.0 told '%s' of '%s'",
                                 captured_steps[i].command, got, want, ref);
        }
}

/* Rows of vm_state.c's table that change the state and yet tell nothing, as libvirt. */
static bool silent_change(const struct vm_transition *t)
{
        return t->event == VM_EV_LAUNCH ||                       /* told at START */
               t->event == VM_EV_FAKE_REBOOT ||                  /* told as 'reboot' */
               t->to == VM_STATE_DYING ||                        /* told when QEMU ends */
               (t->from == VM_STATE_CRASHED && t->event == VM_EV_RESET) ||
               (t->from == VM_STATE_PAUSED && t->event == VM_EV_SAVE_BEGIN) ||
               !vm_state_is_active(t->from);                     /* a launch that failed */
}

static char *words(int type, int detail)
{
        char *s = NULL;

        if (type == EVENTS_LIFE_NONE)
                return NULL;
        assert_true(asprintf(&s, "%s %s", events_life_name(type),
                             events_life_detail_name(type, detail)) > 0);
        return s;
}

static void assert_words(int type, int detail, const char *want, const char *what)
{
        char *got = words(type, detail);

        /* SHUTDOWN_QMP's detail is filled in when emitted: the guest's request here. */
        if (type == EVENTS_LIFE_SHUTDOWN && detail < 0) {
                free(got);
                got = words(type, EVENTS_SHUTDOWN_GUEST);
        }
        if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
                fail_msg("%s: got '%s', want '%s'", what, got ? got : "(none)",
                         want ? want : "(none)");
        free(got);
}

static void test_expectations(void **state)
{
        for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
                const struct expect *x = &expects[i];
                struct vm_status from = {x->from, x->from_reason};
                int t1, d1, t2, d2;
                char what[128];

                events_lifecycle_of(from, x->ev, &t1, &d1, &t2, &d2);
                snprintf(what, sizeof(what), "%s --%s-->", vm_state_name(x->from),
                         vm_state_event_name(x->ev));
                assert_words(t1, d1, x->first, what);
                assert_words(t2, d2, x->second, what);
        }
}

/* Every row of the state machine that changes the state is told, unless libvirt is silent. */
static void test_every_change_is_told(void **state)
{
        for (unsigned i = 0; i < vm_state_table_len; i++) {
                const struct vm_transition *t = &vm_state_table[i];
                struct vm_status from = {t->from,
                                         t->from_reason == VM_REASON_ANY ? 0 : t->from_reason};
                int t1, d1, t2, d2;

                events_lifecycle_of(from, t->event, &t1, &d1, &t2, &d2);
                if (t->to != t->from && !silent_change(t) && t1 == EVENTS_LIFE_NONE)
                        fail_msg("row %u (%s --%s--> %s) makes no event", i,
                                 vm_state_name(t->from), vm_state_event_name(t->event),
                                 vm_state_name(t->to));
                if (t->to == t->from && t->to_reason == VM_REASON_KEEP && t1 != EVENTS_LIFE_NONE)
                        fail_msg("row %u (%s --%s--> same) makes an event", i,
                                 vm_state_name(t->from), vm_state_event_name(t->event));
        }
}

static void test_words(void **state)
{
        assert_string_equal(events_life_name(EVENTS_LIFE_PMSUSPENDED), "PMSuspended");
        assert_string_equal(events_life_detail_name(EVENTS_LIFE_SHUTDOWN, EVENTS_SHUTDOWN_HOST),
                            "Finished after host request");
        assert_string_equal(events_life_detail_name(EVENTS_LIFE_STOPPED, 99), "unknown");
        assert_string_equal(events_life_name(42), "unknown");
        assert_int_equal(events_kind_find("agent-lifecycle"), EVENTS_AGENT_LIFECYCLE);
        assert_int_equal(events_kind_find("rtc-change"), -1);
        assert_string_equal(events_kind_name(EVENTS_BLOCK_JOB), "block-job");
}

/* A fake connection: a queue whose unread size the test controls. */
struct fake {
        size_t unread;   /* bytes the peer has not read */
        json_t *got;     /* messages written, in order */
};

static size_t fake_unread(void *opaque)
{
        return ((struct fake *)opaque)->unread;
}

static int fake_write(void *opaque, const char *line, size_t len)
{
        struct fake *f = opaque;
        json_t *msg = json_loadb(line, len, 0, NULL);

        assert_non_null(msg);
        assert_int_equal(line[len - 1], '\n');
        json_array_append_new(f->got, msg);
        f->unread += len;
        return 0;
}

static const struct events_sink fake_sink = {fake_unread, fake_write};

static const char *got_field(struct fake *f, size_t i, const char *key)
{
        return json_string_value(json_object_get(json_object_get(json_array_get(f->got, i),
                                                                 "data"),
                                                 key));
}

static void test_filters(void **state)
{
        struct events_bus *bus = events_new(0);
        struct fake all = {.got = json_array()}, dom = {.got = json_array()},
                    reboot = {.got = json_array()};
        struct events_sub *s1, *s2, *s3;
        json_t *job;

        assert_int_equal(events_subscribe(bus, NULL, -1, &fake_sink, &all, &s1, NULL), 0);
        assert_int_equal(events_subscribe(bus, "b", -1, &fake_sink, &dom, &s2, NULL), 0);
        assert_int_equal(events_subscribe(bus, NULL, EVENTS_REBOOT, &fake_sink, &reboot, &s3,
                                          NULL), 0);
        events_emit_lifecycle(bus, "a", EVENTS_LIFE_DEFINED, EVENTS_DEFINED_ADDED);
        events_emit_reboot(bus, "b");
        events_emit_agent(bus, "b", true, false);
        events_emit_block_job(bus, "a", "/img/a.qcow2", "commit", "completed");
        events_emit_snapshot(bus, "a", "s1", "created");
        job = json_pack("{s:s, s:s, s:s}", "device", "vda", "type", "mirror", "error", "EIO");
        assert_true(events_emit_qmp_block_job(bus, "a", "BLOCK_JOB_COMPLETED", job, NULL));
        json_decref(job);
        assert_false(events_emit_qmp_block_job(bus, "a", "STOP", NULL, NULL));
        assert_int_equal(json_array_size(all.got), 6);
        assert_int_equal(json_array_size(dom.got), 2);
        assert_int_equal(json_array_size(reboot.got), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(all.got, 0),
                                                               "event")),
                            "lifecycle");
        assert_string_equal(got_field(&all, 0, "event"), "Defined");
        assert_string_equal(got_field(&all, 0, "detail"), "Added");
        assert_string_equal(got_field(&all, 2, "state"), "connected");
        assert_string_equal(got_field(&all, 2, "reason"), "channel event");
        assert_string_equal(got_field(&all, 3, "type"), "Block Commit");
        assert_string_equal(got_field(&all, 4, "snapshot"), "s1");
        assert_string_equal(got_field(&all, 5, "type"), "Block Copy");
        assert_string_equal(got_field(&all, 5, "status"), "failed");
        assert_string_equal(got_field(&all, 5, "disk"), "vda");
        assert_true(json_is_integer(json_object_get(
                json_object_get(json_array_get(all.got, 0), "timestamp"), "microseconds")));
        events_unsubscribe(s1);
        events_unsubscribe(s2);
        events_unsubscribe(s3);
        assert_int_equal(events_count(bus), 0);
        events_free(bus);
        json_decref(all.got);
        json_decref(dom.got);
        json_decref(reboot.got);
}

static void test_bounded_queue(void **state)
{
        struct events_bus *bus = events_new(0);
        struct fake f = {.got = json_array()};
        struct events_sub *s;
        size_t kept;

        assert_int_equal(events_subscribe(bus, NULL, -1, &fake_sink, &f, &s, NULL), 0);
        for (int i = 0; i < 2000; i++)
                events_emit_reboot(bus, "dom");
        kept = json_array_size(f.got);
        assert_true(kept > 0 && kept < 2000);
        assert_true(f.unread <= EVENTS_MAX_QUEUE);
        /* Read a little: not yet half, so no notice and no new event. */
        f.unread = EVENTS_MAX_QUEUE - 1024;
        events_drained(s);
        events_emit_reboot(bus, "dom");
        assert_int_equal(json_array_size(f.got), kept);
        /* Read it all: one notice with every lost event, then events flow again. */
        f.unread = 0;
        events_drained(s);
        assert_int_equal(json_array_size(f.got), kept + 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(f.got, kept),
                                                              "event")),
                            "events-dropped");
        assert_int_equal(json_integer_value(json_object_get(
                                 json_object_get(json_array_get(f.got, kept), "data"), "count")),
                         2001 - kept);
        events_drained(s);
        events_emit_reboot(bus, "dom");
        assert_int_equal(json_array_size(f.got), kept + 2);
        events_unsubscribe(s);
        events_free(bus);
        json_decref(f.got);
}

static void test_cap(void **state)
{
        struct events_bus *bus = events_new(2);
        struct fake f = {.got = json_array()};
        struct events_sub *a, *b, *c = NULL;
        struct tt_error err = {0};

        assert_int_equal(events_subscribe(bus, NULL, -1, &fake_sink, &f, &a, &err), 0);
        assert_int_equal(events_subscribe(bus, NULL, -1, &fake_sink, &f, &b, &err), 0);
        assert_true(events_subscribe(bus, NULL, -1, &fake_sink, &f, &c, &err) < 0);
        assert_int_equal(err.code, EVENTS_ERR_FULL);
        assert_string_equal(err.msg, "too many event subscribers: tetherd serves at most 2 at "
                                     "once ([security] max-event-subscribers)");
        tt_error_clear(&err);
        events_unsubscribe(a);
        assert_int_equal(events_subscribe(bus, NULL, -1, &fake_sink, &f, &c, &err), 0);
        events_unsubscribe(b);
        events_unsubscribe(c);
        events_free(bus);
        json_decref(f.got);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_expectations),
                cmocka_unit_test(test_every_change_is_told),
                cmocka_unit_test(test_virsh_captures),
                cmocka_unit_test(test_words),
                cmocka_unit_test(test_filters),
                cmocka_unit_test(test_bounded_queue),
                cmocka_unit_test(test_cap),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
