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

#include "common/tt_error.h"
#include "host/tetherd.h"

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

/* Listen on path (replacing a stale socket). */
int api_listen(struct tetherd *d, const char *path, struct tt_error *err);
void api_close(struct tetherd *d);

#endif
