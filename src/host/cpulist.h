/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libvirt's bitmap syntax for CPU lists, as `virsh guestvcpus --cpulist` takes it. */
#ifndef TT_HOST_CPULIST_H
#define TT_HOST_CPULIST_H

#include <stdbool.h>
#include <stddef.h>
#include "common/tt_error.h"

/* The largest CPU number accepted. */
#define CPULIST_MAX 4095

/*
 * "0-3,5,^2": ranges, single numbers, and ^N to take one out again. Sets set[N] (set has
 * CPULIST_MAX + 1 entries); -1 with libvirt's text ("Failed to parse bitmap 'x'") if malformed.
 */
int cpulist_parse(const char *text, bool *set, struct tt_error *err);
/* The same syntax back ("0-2,5"), as libvirt's virBitmapFormat; returns how many are set. */
int cpulist_format(const bool *set, char *buf, size_t size);

#endif
