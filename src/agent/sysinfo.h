/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers shared by the read-only system-information commands (net, hw, fs, system, stats,
 * ssh). Every path under /proc, /sys, /etc and /run goes through agent_path(), so unit tests
 * point TETHER_AGENT_SYSROOT at a fixture tree instead of the live system.
 */
#ifndef TT_AGENT_SYSINFO_H
#define TT_AGENT_SYSINFO_H

#include <jansson.h>
#include <stdint.h>

/* The value of $TETHER_AGENT_SYSROOT, or "" (read on every call: no global state). */
const char *agent_sysroot(void);

/* malloc'd "<sysroot><formatted path>", or NULL when out of memory. */
char *agent_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Add key: v to obj (steals v); returns 0, or -1 when v is NULL or adding fails. */
int agent_json_set(json_t *obj, const char *key, json_t *v);

/* A JSON integer for an unsigned 64-bit value (jansson integers are signed: clamp). */
json_t *agent_json_u64(uint64_t v);

#endif
