/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event bus: what happens to domains (lifecycle transitions, guest reboots, the agent
 * coming and going, block jobs, snapshots), told to the control clients that subscribed.
 *
 * Every event is one line on the subscriber's connection, in QMP's event shape:
 *   {"event": "lifecycle", "data": {"domain": "vm1", "event": "Started", "detail": "Booted"},
 *    "timestamp": {"seconds": 1796411783, "microseconds": 904123}}
 * The words are virsh's (`virsh event`), so that the CLI only has to print them.
 *
 * Subscribers are bounded: a subscriber's queue is its connection's unread output, at most
 * EVENTS_MAX_QUEUE bytes. An event that does not fit is dropped and counted; once the
 * subscriber has read half of its queue it gets one {"event": "events-dropped", "data":
 * {"count": N}} before anything newer (events made until then are counted in N too).
 * So a subscriber that never reads costs the daemon that much memory, never more.
 */
#ifndef TT_HOST_EVENTS_H
#define TT_HOST_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "common/tt_error.h"
#include "host/vm_state.h"

/* Unread bytes a subscriber may have queued; events beyond are dropped (and counted). */
#define EVENTS_MAX_QUEUE (64u << 10)
/* Subscribers at once unless the config says otherwise ([security] max-event-subscribers). */
#define EVENTS_DEFAULT_MAX_SUBSCRIBERS 64
/* The most a config may allow. */
#define EVENTS_MAX_SUBSCRIBERS 4096
/* An error code of the bus: the subscriber cap is reached (the API says Busy). */
#define EVENTS_ERR_FULL 3000

/* The kinds of event a client may ask for (virsh's names, --event NAME). */
enum events_kind {
        EVENTS_LIFECYCLE,       /* "lifecycle": Started Booted, Stopped Destroyed, ... */
        EVENTS_REBOOT,          /* "reboot": the guest reset itself */
        EVENTS_AGENT_LIFECYCLE, /* "agent-lifecycle": the guest agent connected or left */
        EVENTS_BLOCK_JOB,       /* "block-job": a QMP block job ended */
        EVENTS_SNAPSHOT,        /* "snapshot": a snapshot was created, reverted or deleted */
        EVENTS_KIND_LAST,
};

/* libvirt's virDomainEventType, as virsh names them. */
enum events_life {
        EVENTS_LIFE_NONE = -1, /* the transition is not an event of its own */
        EVENTS_LIFE_DEFINED,
        EVENTS_LIFE_UNDEFINED,
        EVENTS_LIFE_STARTED,
        EVENTS_LIFE_SUSPENDED,
        EVENTS_LIFE_RESUMED,
        EVENTS_LIFE_STOPPED,
        EVENTS_LIFE_SHUTDOWN,
        EVENTS_LIFE_PMSUSPENDED,
        EVENTS_LIFE_CRASHED,
        EVENTS_LIFE_LAST,
};

/* How the bus reaches one subscriber: its connection (api.c). */
struct events_sink {
        size_t (*unread)(void *opaque);                        /* bytes queued, not yet read */
        int (*write)(void *opaque, const char *line, size_t len); /* queue one line ('\n' ends it) */
};

struct events_bus;
struct events_sub;

/* A bus for at most max_subscribers subscribers (0: the default). */
struct events_bus *events_new(unsigned max_subscribers);
void events_free(struct events_bus *bus);

/* virsh's name of a kind ("lifecycle", ...), or NULL. */
const char *events_kind_name(enum events_kind kind);
/* The kind named so, or -1. */
int events_kind_find(const char *name);

/*
 * Subscribe: domain (a name) or NULL for all, kind or -1 for all. Refused (EVENTS_ERR_FULL)
 * when the bus already has its maximum. *out is freed by events_unsubscribe().
 */
int events_subscribe(struct events_bus *bus, const char *domain, int kind,
                     const struct events_sink *sink, void *opaque, struct events_sub **out,
                     struct tt_error *err);
void events_unsubscribe(struct events_sub *sub);
/* The subscriber read some of its queue: a pending dropped notice goes out if it fits now. */
void events_drained(struct events_sub *sub);
/* Subscribers now (tests, logs). */
unsigned events_count(const struct events_bus *bus);

/*
 * The lifecycle event of a state machine transition: from (state, reason) with ev. *type and
 * *detail are virsh's; type2/detail2 a second event the same step makes (start --paused is
 * "Started Booted" then "Suspended Paused"), or EVENTS_LIFE_NONE. Pure: the table.
 */
void events_lifecycle_of(struct vm_status from, enum vm_event ev, int *type, int *detail,
                         int *type2, int *detail2);
/* virsh's words for a lifecycle type and detail ("Started", "Booted"); "unknown" otherwise. */
const char *events_life_name(int type);
const char *events_life_detail_name(int type, int detail);

/* libvirt's Defined and Undefined details, Shutdown details (the QMP SHUTDOWN's "guest"). */
#define EVENTS_DEFINED_ADDED         0
#define EVENTS_DEFINED_UPDATED       1
#define EVENTS_DEFINED_SNAPSHOT      3 /* a snapshot-revert restored the definition */
#define EVENTS_STOPPED_SNAPSHOT      6 /* a snapshot-revert stopped the running domain */
#define EVENTS_UNDEFINED_REMOVED     0
#define EVENTS_SHUTDOWN_FINISHED     0
#define EVENTS_SHUTDOWN_GUEST        1
#define EVENTS_SHUTDOWN_HOST         2
#define EVENTS_SHUTDOWN_NONE         (-2) /* a fake reboot's power-off: no event */

/* A QMP SHUTDOWN's detail: its "guest" member true, false or absent (EVENTS_SHUTDOWN_*). */
int events_shutdown_detail(json_t *qmp_data);

/* ---- emitters (NULL bus: nothing happens) ---- */

/*
 * The domain went from `from` with ev (vm_apply): its lifecycle event(s), if any. A Shutdown
 * gets shutdown_detail (EVENTS_SHUTDOWN_*), from the QMP event that caused it.
 */
void events_emit_transition(struct events_bus *bus, const char *domain, struct vm_status from,
                            enum vm_event ev, int shutdown_detail);
/* A lifecycle event given directly (define, undefine). */
void events_emit_lifecycle(struct events_bus *bus, const char *domain, int type, int detail);
/* The guest reset itself (QMP RESET). */
void events_emit_reboot(struct events_bus *bus, const char *domain);
/*
 * The guest agent's channel opened (connected) or closed: reason "channel event", or
 * "domain started" (libvirt's disconnected notice when a domain with an agent channel starts).
 */
void events_emit_agent(struct events_bus *bus, const char *domain, bool connected,
                       bool domain_started);
/*
 * A block job ended or is ready: QMP's job type ("commit", "stream", "mirror", "backup") and
 * status ("completed", "failed", "canceled", "ready"), for the disk (its path or target).
 */
void events_emit_block_job(struct events_bus *bus, const char *domain, const char *disk,
                           const char *qmp_type, const char *status);
/*
 * A QMP block job event (BLOCK_JOB_COMPLETED, _CANCELLED, _READY, _ERROR) as a block-job event
 * for disk (the disk's source, as virsh's 'block-job' event shows it), or for its "device" (the
 * job id) when disk is NULL. False when name is not one of them.
 */
bool events_emit_qmp_block_job(struct events_bus *bus, const char *domain, const char *name,
                               json_t *data, const char *disk);
/* A snapshot: action is "created", "reverted" or "deleted" (the snapshot verbs call this). */
void events_emit_snapshot(struct events_bus *bus, const char *domain, const char *snapshot,
                          const char *action);

#endif
