/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control API's guest-agent verbs (qemu-agent-command, set-user-password, domifaddr,
 * domtime, domfsfreeze/thaw/info/trim, guestinfo, guestvcpus, setvcpus --guest, ssh keys,
 * dompmsuspend/wakeup). Each is a row: its argument spec and a step function that issues the
 * agent calls one after another (through guest.c) and shapes the result. What libvirt's driver
 * decides (which command, base64 of a password, which vCPUs go offline) is decided here; the
 * agent's raw replies go back, and the CLI prints them as virsh does.
 */
#ifndef TT_HOST_GUEST_OPS_H
#define TT_HOST_GUEST_OPS_H

#include <jansson.h>
#include "common/tt_error.h"
#include "host/vm.h"

struct guest_op_def;
struct wire_arg;

/* The verb of that name, or NULL. */
const struct guest_op_def *guest_op_find(const char *name);
/* Its argument spec, for wire_args_check() before guest_op_start(). */
const struct wire_arg *guest_op_args(const struct guest_op_def *def);
/*
 * Run the verb on vm with checked args (borrowed). A refusal known at once returns -1 with err
 * set (done is not called); otherwise done runs exactly once, later.
 */
int guest_op_start(struct vm *vm, const struct guest_op_def *def, json_t *args, vm_done_fn done,
                   void *opaque, struct tt_error *err);

#endif
