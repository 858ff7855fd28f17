/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The event bus (events.h): the lifecycle table, the subscribers and their bounded queues. */
#include "host/events.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "wire/wire.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct events_sub {
        struct events_sub *next, *prev; /* the bus's list */
        struct events_bus *bus;         /* owner */
        char *domain;                   /* only this domain's events, or NULL: all */
        int kind;                       /* only this kind (enum events_kind), or -1: all */
        struct events_sink sink;        /* the connection */
        void *opaque;                   /* its argument */
        uint64_t dropped;               /* events lost since the last notice (not yet told) */
};

struct events_bus {
        struct events_sub *subs;        /* subscribers, newest first */
        unsigned n;                     /* how many */
        unsigned max;                   /* the cap on n */
};

static const char *const kind_names[EVENTS_KIND_LAST] = {
        [EVENTS_LIFECYCLE] = "lifecycle",
        [EVENTS_REBOOT] = "reboot",
        [EVENTS_AGENT_LIFECYCLE] = "agent-lifecycle",
        [EVENTS_BLOCK_JOB] = "block-job",
        [EVENTS_SNAPSHOT] = "snapshot",
};

/* ---- virsh's words (tools/virsh-domain-event.c) ---- */

/* libvirt's detail codes of each lifecycle type (virDomainEvent*DetailType). */
enum { STARTED_BOOTED, STARTED_MIGRATED, STARTED_RESTORED, STARTED_SNAPSHOT, STARTED_WAKEUP };
enum { SUSPENDED_PAUSED, SUSPENDED_MIGRATED, SUSPENDED_IOERROR, SUSPENDED_WATCHDOG,
       SUSPENDED_RESTORED, SUSPENDED_SNAPSHOT, SUSPENDED_API_ERROR };
enum { RESUMED_UNPAUSED, RESUMED_MIGRATED, RESUMED_SNAPSHOT };
enum { STOPPED_SHUTDOWN, STOPPED_DESTROYED, STOPPED_CRASHED, STOPPED_MIGRATED, STOPPED_SAVED,
       STOPPED_FAILED, STOPPED_SNAPSHOT };
enum { PMSUSPENDED_MEMORY, PMSUSPENDED_DISK };
enum { CRASHED_PANICKED, CRASHED_CRASHLOADED };

static const char *const life_names[EVENTS_LIFE_LAST] = {
        "Defined", "Undefined", "Started",     "Suspended", "Resumed",
        "Stopped", "Shutdown",  "PMSuspended", "Crashed",
};
static const char *const defined_details[] = {"Added", "Updated", "Renamed", "Snapshot", NULL};
static const char *const undefined_details[] = {"Removed", "Renamed", NULL};
static const char *const started_details[] = {"Booted", "Migrated", "Restored", "Snapshot",
                                              "Event wakeup", NULL};
static const char *const suspended_details[] = {
        "Paused",   "Migrated", "I/O Error", "Watchdog",        "Restored",
        "Snapshot", "API error", "Post-copy", "Post-copy Error", NULL};
static const char *const resumed_details[] = {"Unpaused", "Migrated", "Snapshot", "Post-copy",
                                              "Post-copy Error", NULL};
static const char *const stopped_details[] = {"Shutdown", "Destroyed", "Crashed", "Migrated",
                                              "Saved",    "Failed",    "Snapshot", NULL};
static const char *const shutdown_details[] = {"Finished", "Finished after guest request",
                                               "Finished after host request", NULL};
static const char *const pmsuspended_details[] = {"Memory", "Disk", NULL};
static const char *const crashed_details[] = {"Panicked", "Crashloaded", NULL};

static const char *const *const life_details[EVENTS_LIFE_LAST] = {
        defined_details, undefined_details, started_details,     suspended_details,
        resumed_details, stopped_details,   shutdown_details,    pmsuspended_details,
        crashed_details,
};

const char *events_life_name(int type)
{
        if (type < 0 || type >= EVENTS_LIFE_LAST)
                return "unknown";
        return life_names[type];
}

const char *events_life_detail_name(int type, int detail)
{
        if (type < 0 || type >= EVENTS_LIFE_LAST || detail < 0)
                return "unknown";
        for (int i = 0; life_details[type][i]; i++)
                if (i == detail)
                        return life_details[type][i];
        return "unknown";
}

/* ---- the lifecycle table ---- */

#define ANY_STATE (-1)
#define ANY VM_REASON_ANY
#define S(x) VM_STATE_##x
#define E(x) VM_EV_##x
#define L(x) EVENTS_LIFE_##x
#define NONE EVENTS_LIFE_NONE, 0
/* The Shutdown detail comes from the QMP event (its "guest" member): filled in when emitted. */
#define SHUTDOWN_QMP (-1)

/*
 * Each transition of vm_state.c's table, as libvirt's QEMU driver reports it (qemu_process.c's
 * event handlers, qemuProcessStop's reasons): (state, reason) left, event -> the virsh event
 * type and detail, and a second one for the steps that make two. The first matching row wins,
 * so a row for one reason goes before its ANY row; a pair that matches no row (a request that
 * does not change the state by itself: shutdown, reboot, reset of a running guest; QEMU's own
 * stops and resets during start-up and save) makes no lifecycle event.
 */
static const struct life_row {
        int from;              /* enum vm_state, or ANY_STATE */
        int from_reason;       /* or ANY */
        enum vm_event ev;      /* the state machine's event */
        int type, detail;      /* the lifecycle event (EVENTS_LIFE_NONE: none) */
        int type2, detail2;    /* and a second one, or EVENTS_LIFE_NONE */
} life_table[] = {
        /* start-up: QEMU ran with -S and was set up; nothing is told before it is */
        /* libvirt 9.0 tells the cont's RESUME before the start itself (seen with virsh) */
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(START), L(RESUMED), RESUMED_UNPAUSED, L(STARTED),
         STARTED_BOOTED},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(START_PAUSED), L(STARTED), STARTED_BOOTED,
         L(SUSPENDED), SUSPENDED_PAUSED},
        /* libvirt 9.0 tells a restore's (and a start from a managed save's) cont as Resumed
           Snapshot (virsh 9.0, tests/host/test_events.c) */
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE), L(STARTED), STARTED_RESTORED, L(RESUMED),
         RESUMED_SNAPSHOT},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(RESTORE_PAUSED), L(STARTED), STARTED_RESTORED,
         L(SUSPENDED), SUSPENDED_RESTORED},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(START_FAILED), L(STOPPED), STOPPED_FAILED, NONE},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(QMP_STOP), NONE, NONE},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(QMP_RESET), NONE, NONE},
        {S(PAUSED), VM_PAUSED_STARTING_UP, E(MONITOR_EOF), L(STOPPED), STOPPED_FAILED, NONE},

        /* running */
        {S(RUNNING), ANY, E(SUSPEND), L(SUSPENDED), SUSPENDED_PAUSED, NONE},
        {S(RUNNING), ANY, E(SAVE_BEGIN), L(SUSPENDED), SUSPENDED_PAUSED, NONE},
        {S(RUNNING), ANY, E(QMP_STOP), L(SUSPENDED), SUSPENDED_PAUSED, NONE},
        {S(RUNNING), ANY, E(QMP_IO_ERROR), L(SUSPENDED), SUSPENDED_IOERROR, NONE},
        {S(RUNNING), ANY, E(QMP_WATCHDOG), L(SUSPENDED), SUSPENDED_WATCHDOG, NONE},
        {S(RUNNING), ANY, E(QMP_SHUTDOWN), L(SHUTDOWN), SHUTDOWN_QMP, NONE},
        {S(RUNNING), ANY, E(QMP_PANICKED), L(CRASHED), CRASHED_PANICKED, NONE},
        {S(RUNNING), ANY, E(QMP_SUSPEND), L(PMSUSPENDED), PMSUSPENDED_MEMORY, NONE},

        /* paused while saving: the save ends one way or the other */
        {S(PAUSED), VM_PAUSED_SAVE, E(SAVED), L(STOPPED), STOPPED_SAVED, NONE},
        {S(PAUSED), VM_PAUSED_SAVE, E(SAVE_FAILED), L(RESUMED), RESUMED_UNPAUSED, NONE},
        {S(PAUSED), VM_PAUSED_SAVE, E(SAVE_FAILED_PAUSED), L(SUSPENDED), SUSPENDED_API_ERROR,
         NONE},
        {S(PAUSED), VM_PAUSED_SAVE, E(QMP_RESUME), NONE, NONE},

        /* paused */
        {S(PAUSED), ANY, E(RESUME), L(RESUMED), RESUMED_UNPAUSED, NONE},
        {S(PAUSED), ANY, E(QMP_RESUME), L(RESUMED), RESUMED_UNPAUSED, NONE},
        {S(PAUSED), ANY, E(QMP_SHUTDOWN), L(SHUTDOWN), SHUTDOWN_QMP, NONE},
        {S(PAUSED), ANY, E(QMP_PANICKED), L(CRASHED), CRASHED_PANICKED, NONE},

        /* in shutdown: QEMU waits (-no-shutdown); a fake reboot runs the guest again, which
           libvirt tells only as the reset's 'reboot' event */
        {S(SHUTDOWN), ANY, E(FAKE_REBOOT), NONE, NONE},
        {S(SHUTDOWN), ANY, E(MONITOR_EOF), L(STOPPED), STOPPED_SHUTDOWN, NONE},
        {S(SHUTDOWN), ANY, E(RECONNECT_GONE), L(STOPPED), STOPPED_SHUTDOWN, NONE},

        /* crashed (on_crash preserve) */
        {S(CRASHED), ANY, E(SUSPEND), L(SUSPENDED), SUSPENDED_PAUSED, NONE},
        {S(CRASHED), ANY, E(RESUME), L(RESUMED), RESUMED_UNPAUSED, NONE},
        {S(CRASHED), ANY, E(QMP_RESUME), L(RESUMED), RESUMED_UNPAUSED, NONE},
        {S(CRASHED), ANY, E(FAKE_REBOOT), NONE, NONE},
        {S(CRASHED), ANY, E(CRASH_DESTROYED), L(STOPPED), STOPPED_CRASHED, NONE},
        {S(CRASHED), ANY, E(QMP_SHUTDOWN), L(SHUTDOWN), SHUTDOWN_QMP, NONE},

        /* pmsuspended (guest S3) */
        {S(PMSUSPENDED), ANY, E(QMP_WAKEUP), L(STARTED), STARTED_WAKEUP, NONE},
        {S(PMSUSPENDED), ANY, E(QMP_SHUTDOWN), L(SHUTDOWN), SHUTDOWN_QMP, NONE},
        {S(PMSUSPENDED), ANY, E(QMP_RESET), L(STARTED), STARTED_BOOTED, NONE},

        /* snapshot-revert: the domain now runs (or waits) from the snapshot's state; libvirt
           9.0 starts a QEMU for it and tells Started Snapshot, then Resumed or Suspended
           Snapshot (a running domain's Stopped Snapshot before and the Defined Snapshot after
           come from snapshot.c) */
        {ANY_STATE, ANY, E(SNAPSHOT_LOADED), L(STARTED), STARTED_SNAPSHOT, L(RESUMED),
         RESUMED_SNAPSHOT},
        {ANY_STATE, ANY, E(SNAPSHOT_LOADED_PAUSED), L(STARTED), STARTED_SNAPSHOT, L(SUSPENDED),
         SUSPENDED_SNAPSHOT},
        {S(SHUTOFF), ANY, E(SNAPSHOT_SHUTOFF), L(STOPPED), STOPPED_SNAPSHOT, NONE},

        /* dying (a destroy between its signal and QEMU's end): libvirt tells only the end */
        {S(DYING), ANY, E(MONITOR_EOF), L(STOPPED), STOPPED_DESTROYED, NONE},
        {S(DYING), ANY, E(RECONNECT_GONE), L(STOPPED), STOPPED_DESTROYED, NONE},
        {S(DYING), ANY, E(RECONNECT_KILLED), L(STOPPED), STOPPED_DESTROYED, NONE},

        /* QEMU went away, in any active state: ours (destroy) or not (libvirt: Failed) */
        {ANY_STATE, ANY, E(DESTROYED), L(STOPPED), STOPPED_DESTROYED, NONE},
        {ANY_STATE, ANY, E(MONITOR_EOF), L(STOPPED), STOPPED_FAILED, NONE},
        {ANY_STATE, ANY, E(RECONNECT_GONE), L(STOPPED), STOPPED_FAILED, NONE},
        {ANY_STATE, ANY, E(RECONNECT_KILLED), L(STOPPED), STOPPED_FAILED, NONE},
};

#undef ANY
#undef S
#undef E
#undef L
#undef NONE

void events_lifecycle_of(struct vm_status from, enum vm_event ev, int *type, int *detail,
                         int *type2, int *detail2)
{
        *type = *type2 = EVENTS_LIFE_NONE;
        *detail = *detail2 = 0;
        for (size_t i = 0; i < TT_ARRAY_SIZE(life_table); i++) {
                const struct life_row *r = &life_table[i];

                if (r->ev != ev || (r->from != ANY_STATE && r->from != (int)from.state))
                        continue;
                if (r->from_reason != VM_REASON_ANY && r->from_reason != from.reason)
                        continue;
                /* A launch that never left shut off is not a start that failed. */
                if (r->from == ANY_STATE && !vm_state_is_active(from.state))
                        return;
                *type = r->type;
                *detail = r->detail;
                *type2 = r->type2;
                *detail2 = r->detail2;
                return;
        }
}

/* ---- the bus ---- */

const char *events_kind_name(enum events_kind kind)
{
        if ((unsigned)kind >= EVENTS_KIND_LAST)
                return NULL;
        return kind_names[kind];
}

int events_kind_find(const char *name)
{
        for (int i = 0; name && i < EVENTS_KIND_LAST; i++)
                if (strcmp(kind_names[i], name) == 0)
                        return i;
        return -1;
}

struct events_bus *events_new(unsigned max_subscribers)
{
        struct events_bus *bus = calloc(1, sizeof(*bus));

        if (bus)
                bus->max = max_subscribers ? max_subscribers : EVENTS_DEFAULT_MAX_SUBSCRIBERS;
        return bus;
}

void events_free(struct events_bus *bus)
{
        if (bus == NULL)
                return;
        /* The connections own their subscriptions; they are gone by now, or go unheard. */
        for (struct events_sub *s = bus->subs; s; s = s->next)
                s->bus = NULL;
        free(bus);
}

unsigned events_count(const struct events_bus *bus)
{
        return bus ? bus->n : 0;
}

int events_subscribe(struct events_bus *bus, const char *domain, int kind,
                     const struct events_sink *sink, void *opaque, struct events_sub **out,
                     struct tt_error *err)
{
        struct events_sub *s;

        if (bus->n >= bus->max)
                return tt_error_set(err, EVENTS_ERR_FULL,
                                    "too many event subscribers: tetherd serves at most %u at "
                                    "once ([security] max-event-subscribers)",
                                    bus->max);
        s = calloc(1, sizeof(*s));
        if (s == NULL || (domain && (s->domain = strdup(domain)) == NULL)) {
                free(s);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        s->bus = bus;
        s->kind = kind;
        s->sink = *sink;
        s->opaque = opaque;
        s->next = bus->subs;
        if (bus->subs)
                bus->subs->prev = s;
        bus->subs = s;
        bus->n++;
        *out = s;
        tt_debug("event subscriber added: domain %s, event %s (%u now)", domain ? domain : "*",
                 kind >= 0 ? kind_names[kind] : "*", bus->n);
        return 0;
}

void events_unsubscribe(struct events_sub *s)
{
        if (s == NULL)
                return;
        if (s->bus) {
                if (s->prev)
                        s->prev->next = s->next;
                else
                        s->bus->subs = s->next;
                if (s->next)
                        s->next->prev = s->prev;
                s->bus->n--;
                tt_debug("event subscriber removed (%u now, %llu events it lost untold)",
                         s->bus->n, (unsigned long long)s->dropped);
        }
        free(s->domain);
        free(s);
}

/* {"event": kind, "data": data, "timestamp": {...}} and a newline, malloc'd; data is stolen. */
static char *event_line(const char *kind, json_t *data, size_t *len)
{
        struct timespec now;
        _cleanup_json_ json_t *msg = NULL;
        _cleanup_free_ char *text = NULL;
        char *line = NULL;
        int n;

        clock_gettime(CLOCK_REALTIME, &now);
        msg = json_pack("{s:s, s:o, s:{s:I, s:I}}", "event", kind, "data", data, "timestamp",
                        "seconds", (json_int_t)now.tv_sec, "microseconds",
                        (json_int_t)(now.tv_nsec / 1000));
        if (msg == NULL || (text = wire_dumps(msg)) == NULL)
                return NULL;
        n = asprintf(&line, "%s\n", text);
        if (n < 0)
                return NULL;
        *len = (size_t)n;
        return line;
}

static bool fits(struct events_sub *s, size_t len, size_t limit)
{
        return s->sink.unread(s->opaque) + len <= limit;
}

/*
 * Tell the subscriber how many events it lost, once it has read at least half its queue (so
 * that a subscriber that does not read gets one notice when it does, not one per few bytes
 * the kernel happens to take). True when nothing is owed.
 */
static bool flush_dropped(struct events_sub *s)
{
        _cleanup_free_ char *line = NULL;
        size_t len = 0;

        if (s->dropped == 0)
                return true;
        if (!fits(s, 0, EVENTS_MAX_QUEUE / 2))
                return false;
        line = event_line("events-dropped", json_pack("{s:I}", "count", (json_int_t)s->dropped),
                          &len);
        if (line == NULL || !fits(s, len, EVENTS_MAX_QUEUE))
                return false;
        if (s->sink.write(s->opaque, line, len) < 0)
                return false;
        s->dropped = 0;
        return true;
}

void events_drained(struct events_sub *s)
{
        if (s && s->dropped)
                flush_dropped(s);
}

static bool wants(const struct events_sub *s, enum events_kind kind, const char *domain)
{
        if (s->kind >= 0 && s->kind != (int)kind)
                return false;
        return s->domain == NULL || (domain && strcmp(s->domain, domain) == 0);
}

/* Give one event to every subscriber that wants it; data is stolen. */
static void publish(struct events_bus *bus, enum events_kind kind, const char *domain,
                    json_t *data)
{
        _cleanup_free_ char *line = NULL;
        size_t len = 0;

        if (bus == NULL || bus->subs == NULL || data == NULL) {
                json_decref(data);
                return;
        }
        json_object_set_new(data, "domain", json_string(domain));
        line = event_line(kind_names[kind], data, &len);
        if (line == NULL)
                return;
        for (struct events_sub *s = bus->subs; s; s = s->next) {
                if (!wants(s, kind, domain))
                        continue;
                /* The notice goes before anything newer; while it does not fit, neither do they. */
                if (!flush_dropped(s) || !fits(s, len, EVENTS_MAX_QUEUE) ||
                    s->sink.write(s->opaque, line, len) < 0)
                        s->dropped++;
        }
}

/* ---- emitters ---- */

int events_shutdown_detail(json_t *qmp_data)
{
        json_t *guest = json_object_get(qmp_data, "guest");

        if (!json_is_boolean(guest))
                return EVENTS_SHUTDOWN_FINISHED;
        return json_is_true(guest) ? EVENTS_SHUTDOWN_GUEST : EVENTS_SHUTDOWN_HOST;
}

void events_emit_lifecycle(struct events_bus *bus, const char *domain, int type, int detail)
{
        if (type < 0 || type >= EVENTS_LIFE_LAST)
                return;
        publish(bus, EVENTS_LIFECYCLE, domain,
                json_pack("{s:s, s:s, s:i, s:i}", "event", events_life_name(type), "detail",
                          events_life_detail_name(type, detail), "type_code", type,
                          "detail_code", detail));
}

void events_emit_transition(struct events_bus *bus, const char *domain, struct vm_status from,
                            enum vm_event ev, int shutdown_detail)
{
        int type, detail, type2, detail2;

        if (bus == NULL || bus->subs == NULL)
                return;
        events_lifecycle_of(from, ev, &type, &detail, &type2, &detail2);
        if (type == EVENTS_LIFE_SHUTDOWN && detail == SHUTDOWN_QMP) {
                if (shutdown_detail == EVENTS_SHUTDOWN_NONE)
                        return;
                detail = shutdown_detail;
        }
        events_emit_lifecycle(bus, domain, type, detail);
        events_emit_lifecycle(bus, domain, type2, detail2);
}

void events_emit_reboot(struct events_bus *bus, const char *domain)
{
        publish(bus, EVENTS_REBOOT, domain, json_object());
}

void events_emit_agent(struct events_bus *bus, const char *domain, bool connected,
                       bool domain_started)
{
        /* libvirt's reasons: "unknown", "domain started", "channel event" (VSERPORT_CHANGE). */
        publish(bus, EVENTS_AGENT_LIFECYCLE, domain,
                json_pack("{s:s, s:s}", "state", connected ? "connected" : "disconnected",
                          "reason", domain_started ? "domain started" : "channel event"));
}

/* QMP's job types as virsh names them (virshDomainBlockJobToString). */
static const struct {
        const char *qmp;   /* QMP's "type" in BLOCK_JOB_* */
        const char *virsh; /* virsh's words */
} block_job_types[] = {
        {"stream", "Block Pull"},
        {"mirror", "Block Copy"},
        {"commit", "Block Commit"},
        {"active-commit", "Active Block Commit"},
        {"backup", "Backup"},
};

void events_emit_block_job(struct events_bus *bus, const char *domain, const char *disk,
                           const char *qmp_type, const char *status)
{
        const char *type = "Unknown";

        for (size_t i = 0; qmp_type && i < TT_ARRAY_SIZE(block_job_types); i++)
                if (strcmp(block_job_types[i].qmp, qmp_type) == 0)
                        type = block_job_types[i].virsh;
        publish(bus, EVENTS_BLOCK_JOB, domain,
                json_pack("{s:s, s:s, s:s}", "disk", disk ? disk : "", "type", type, "status",
                          status ? status : "unknown"));
}

/* QMP's block job events and the status virsh shows for each. */
static const struct {
        const char *qmp;    /* the QMP event */
        const char *status; /* virsh's word (virshDomainBlockJobStatus) */
} block_job_events[] = {
        {"BLOCK_JOB_COMPLETED", "completed"}, /* "failed" when it carries an error */
        {"BLOCK_JOB_CANCELLED", "canceled"},
        {"BLOCK_JOB_READY", "ready"},
        {"BLOCK_JOB_ERROR", "failed"},
};

bool events_emit_qmp_block_job(struct events_bus *bus, const char *domain, const char *name,
                               json_t *data, const char *disk)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(block_job_events); i++) {
                const char *status = block_job_events[i].status;

                if (strcmp(block_job_events[i].qmp, name) != 0)
                        continue;
                if (i == 0 && json_object_get(data, "error"))
                        status = "failed";
                events_emit_block_job(bus, domain,
                                      disk ? disk
                                           : json_string_value(json_object_get(data, "device")),
                                      json_string_value(json_object_get(data, "type")), status);
                return true;
        }
        return false;
}

void events_emit_snapshot(struct events_bus *bus, const char *domain, const char *snapshot,
                          const char *action)
{
        publish(bus, EVENTS_SNAPSHOT, domain,
                json_pack("{s:s, s:s}", "snapshot", snapshot ? snapshot : "", "action",
                          action ? action : "unknown"));
}
