/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host connection. virtio-serial, isa-serial, unix-listen, vsock-listen and systemd socket
 * activation are chosen here and nowhere else; the rest of the agent sees bytes in (fed to the
 * splitter) and a wire sink out.
 */
#ifndef TT_AGENT_CHANNEL_H
#define TT_AGENT_CHANNEL_H

#include <stddef.h>
#include "common/tt_error.h"

struct agent_ctx;

/* Open the transport from ctx->cfg (or LISTEN_FDS) and start watching it in the loop. */
int agent_channel_open(struct agent_ctx *ctx, struct tt_error *err);
/* Close every fd of the channel. */
void agent_channel_close(struct agent_ctx *ctx);
/* SIGIO arrived: the host side of a virtio-serial port may have connected. */
void agent_channel_on_sigio(struct agent_ctx *ctx);
/* The wire sink: write all of buf to the connected peer (opaque is the ctx). */
int agent_channel_write(void *opaque, const void *buf, size_t len);
/* The default device path for a method (NULL for methods that need -p). */
const char *agent_channel_default_path(const char *method);

#endif
