/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host side of the guest agent: one connection per running domain to its agent channel's
 * chardev socket, kept open while QEMU runs (as libvirt does).
 *
 *  - Whether the guest has its end of the port open comes from QEMU: query-chardev's
 *    "frontend-open" when the monitor connects, then VSERPORT_CHANGE events.
 *  - The link is synchronised with 0xFF + guest-sync-delimited and a random id on every
 *    (re)connection, after every timeout and after the guest reopens its port; bytes before
 *    the matching reply (stale replies, the 0xFF delimiter) are skipped.
 *  - One command is in flight per guest; the others queue behind it. Every call has a
 *    deadline that counts from the moment it was queued, so a silent, hung or absent agent
 *    costs its caller an error, never tetherd or another domain anything.
 *  - Error texts are libvirt's, so that scripts written for virsh read them unchanged.
 * It speaks to stock qemu-ga exactly as it speaks to tether-agent: nothing but QGA.
 */
#ifndef TT_HOST_GUEST_H
#define TT_HOST_GUEST_H

#include <jansson.h>
#include <stdbool.h>
#include "common/tt_error.h"

struct vm;
struct guest_agent;

/* A call's timeout in seconds, as virsh's qemu-agent-command takes it. */
#define GUEST_TIMEOUT_BLOCK   (-2) /* --block: no deadline */
#define GUEST_TIMEOUT_DEFAULT (-1) /* libvirt's default: 5 s */
#define GUEST_TIMEOUT_NOWAIT  0    /* --async: answer as soon as the command is written */
#define GUEST_DEFAULT_TIMEOUT_S 5

enum guest_call_flags {
        /* The command answers nothing on success (guest-shutdown, guest-suspend-*): the call
         * succeeds when the QMP event named by await_event arrives, or when the guest closes
         * its port (it went down); an error reply still fails it. */
        GUEST_CALL_NO_REPLY = 1 << 0,
        /* An error reply of class CommandNotFound or CommandDisabled is not an error: the
         * callback gets reply {"unsupported": true} (guestinfo skips such groups). */
        GUEST_CALL_UNSUPPORTED_OK = 1 << 1,
};

/*
 * A call finished. On success err is NULL and reply is the agent's whole reply object
 * ({"return": ...}, borrowed). On failure reply is NULL and err->msg is libvirt's text:
 *   "argument unsupported: QEMU guest agent is not configured"
 *   "Guest agent is not responding: QEMU guest agent is not connected"
 *   "Guest agent is not responding: Guest agent not available for now (...)"
 *   "internal error: unable to execute QEMU agent command 'NAME': DESC"
 * err->code is one of enum vm_error.
 */
typedef void (*guest_reply_fn)(void *opaque, json_t *reply, const struct tt_error *err);

/* The domain's agent channel is wired: connect and learn the port state. No-op without one. */
int guest_attach(struct vm *vm, struct tt_error *err);
/* QEMU is going away: fail every call ("domain is not running") and close. NULL-safe. */
void guest_detach(struct vm *vm);
/* A QMP event of the domain (VSERPORT_CHANGE, SHUTDOWN, RESET, SUSPEND, ...). */
void guest_on_qmp_event(struct vm *vm, const char *name, json_t *data);

/*
 * Queue cmd ({"execute", "arguments"}; stolen) for the domain's agent. fn runs exactly once,
 * never from inside this call: a refusal that is known at once (no channel, port closed,
 * domain not running) is returned here as -1 with err set, and fn is not called.
 * await_event is the QMP event that ends a GUEST_CALL_NO_REPLY call (NULL otherwise).
 */
int guest_call(struct vm *vm, json_t *cmd, int timeout_s, unsigned flags, const char *await_event,
               guest_reply_fn fn, void *opaque, struct tt_error *err);
/* Forget fn for every queued call of this opaque (its owner is going away). */
void guest_cancel(struct vm *vm, void *opaque);

/* For `list`-style views and the monitor: is the guest's end of the port open? */
bool guest_connected(const struct vm *vm);

#endif
