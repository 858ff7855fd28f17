/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket: JSON requests and replies framed by the shared wire module, the same
 * shape as QMP ({"execute", "arguments", "id"} -> {"return"} or {"error": {class, desc}}).
 * Any number of clients; each request is answered when its job ends, so a slow domain never
 * blocks a client talking about another one. Peers are checked with the credentials the kernel
 * took when they connected (SO_PEERCRED, SO_PEERGROUPS): root, or a member of --group.
 */
#ifndef TT_HOST_API_H
#define TT_HOST_API_H

#include <jansson.h>
#include <stdbool.h>
#include "common/tt_error.h"
#include "host/tetherd.h"
#include "wire/wire.h"

/* Error classes on the control socket. */
#define API_CLASS_GENERIC   "GenericError"
#define API_CLASS_NOT_FOUND "CommandNotFound"
#define API_CLASS_NO_DOMAIN "NoDomain"
#define API_CLASS_INVALID   "OperationInvalid"
#define API_CLASS_BUSY      "Busy"
#define API_CLASS_EXISTS    "Exists"
#define API_CLASS_CONFIG    "ConfigUnsupported"
#define API_CLASS_FAILED    "OperationFailed"
#define API_CLASS_DENIED    "PermissionDenied"

struct api_verb;
struct guest_op_def;
struct snapshot_op_def;

/* What a request asks for, before any daemon state is looked at. */
struct api_request {
        struct wire_request req;             /* execute, arguments and id, borrowed from msg */
        json_t *args;                        /* the arguments; an empty object when absent */
        bool owns_args;                      /* args was made here (api_request_clear drops it) */
        const struct api_verb *verb;         /* the control verb, or NULL */
        const struct guest_op_def *guest_op; /* or the guest-agent verb, or NULL */
        const struct snapshot_op_def *snapshot_op; /* or the snapshot verb, or NULL */
};

/* api_request_parse(): no verb of that name (err says which). */
#define API_REQ_NOT_FOUND (-2)
/*
 * Parse a request and check its arguments against its verb's spec: 0, -1 with err for a
 * malformed request or bad arguments (req.id is set when the request had one), or
 * API_REQ_NOT_FOUND. Pure: the fuzz target and dispatch share it. api_request_clear() after.
 */
int api_request_parse(json_t *msg, struct api_request *r, struct tt_error *err);
/* The argument spec the request was checked against (NULL when no verb was found). */
const struct wire_arg *api_request_spec(const struct api_request *r);
void api_request_clear(struct api_request *r);

/* Listen on path (replacing a stale socket). */
int api_listen(struct tetherd *d, const char *path, struct tt_error *err);
void api_close(struct tetherd *d);

#endif
