/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An asynchronous QMP client on the daemon's libevent loop, framed by the shared wire module.
 * Every command has a deadline: a QEMU that stops answering costs its caller an error after the
 * timeout, never a hang, and never blocks another VM.
 */
#ifndef TT_HOST_QMP_H
#define TT_HOST_QMP_H

#include <jansson.h>
#include "common/tt_error.h"

struct event_base;
struct qmp;

struct qmp_callbacks {
        /* An asynchronous event: name and data (borrowed; data may be NULL). */
        void (*event)(void *opaque, const char *name, json_t *data);
        /* The monitor closed (QEMU exited or the socket broke). Called once. */
        void (*closed)(void *opaque);
};

/*
 * A command finished. On success err is NULL and ret is the "return" value (borrowed). On
 * failure ret is NULL and err->msg is QEMU's desc, or our text for a timeout or closed monitor.
 */
typedef void (*qmp_reply_fn)(void *opaque, json_t *ret, const struct tt_error *err);

struct qmp *qmp_new(struct event_base *base, const struct qmp_callbacks *cb, void *opaque);
/*
 * Connect to QEMU's monitor socket (which must be listening already: tetherd creates it and
 * passes it to QEMU). qmp_capabilities is sent at once; commands may be queued straight away.
 */
int qmp_connect(struct qmp *q, const char *path, struct tt_error *err);
/* Create a listening unix socket at path (replacing a stale one) to hand to QEMU as fd=N. */
int qmp_listen_socket(const char *path, struct tt_error *err);
/* Send a command (args stolen, may be NULL); fn runs exactly once, at the latest at timeout. */
int qmp_command(struct qmp *q, const char *execute, json_t *args, unsigned timeout_ms,
                qmp_reply_fn fn, void *opaque);
/*
 * The same, passing fd to QEMU with SCM_RIGHTS alongside the command (for "getfd" and
 * "add-fd"). The caller keeps its fd: QEMU receives a duplicate.
 */
int qmp_command_fd(struct qmp *q, const char *execute, json_t *args, int fd,
                   unsigned timeout_ms, qmp_reply_fn fn, void *opaque);
/* Close the monitor; pending commands get "QEMU monitor closed". No callbacks run after. */
void qmp_free(struct qmp *q);

#endif
