/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's serial console (serial port 0). QEMU serves it on a unix socket in the domain's
 * run folder (ttyS0.sock, server=on,wait=off); tetherd stays connected to it for QEMU's whole
 * life, reconnecting after a restart of its own. What the guest writes goes:
 *   - to the attached client, if any (`tether console`, through the control API's "console"
 *     verb: its connection becomes a byte stream, framed as src/wire/stream.h says);
 *   - otherwise into a bounded ring (CONSOLE_RING_SIZE), replayed to the next client;
 *   - and always to ROOT/var/lib/tether/log/NAME.console.log, rotated at CONSOLE_LOG_MAX to
 *     NAME.console.log.1.
 * One client at a time; a forced attach ends the other client's stream with a reason.
 */
#ifndef TT_HOST_CONSOLE_H
#define TT_HOST_CONSOLE_H

#include <jansson.h>
#include <stdbool.h>
#include "common/tt_error.h"

struct vm;
struct tetherd;
struct bufferevent;

/* Output kept while nobody is attached, shown on the next attach. */
#define CONSOLE_RING_SIZE (64u << 10)
/* The console log is rotated (one old file kept) when it would grow past this. */
#define CONSOLE_LOG_MAX (1u << 20)

/* QEMU runs (started, or found again after a restart): connect to its console socket. */
int console_start(struct vm *vm, struct tt_error *err);
/* QEMU is gone, or the domain is freed: the attached client's stream ends. */
void console_stop(struct vm *vm);
/* May a client attach now (force: take the console over)? 0, or -1 with virsh's error. */
int console_check(struct vm *vm, bool force, struct tt_error *err);
/*
 * The "console" verb was answered: its connection (bev, taken over) now carries the console.
 * args are the verb's ("domain", "force"); a domain that changed meanwhile ends the stream.
 */
void console_take(struct tetherd *d, json_t *args, struct bufferevent *bev);
/* The log file of a domain's console (malloc'd). */
char *console_log_path(struct tetherd *d, const char *name);

#endif
