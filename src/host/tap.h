/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Host tap devices of bridged interfaces: creation for QEMU, and their counters. */
#ifndef TETHER_HOST_TAP_H
#define TETHER_HOST_TAP_H

#include <stddef.h>

#include "common/tt_error.h"

/* An interface's counters as the guest sees them (the tap's rx and tx swapped); -1 unknown. */
struct tap_stats {
        long long rx_bytes, rx_packets, rx_errors, rx_dropped; /* received by the guest */
        long long tx_bytes, tx_packets, tx_errors, tx_dropped; /* sent by the guest */
};

/*
 * Create a tap named want (NULL: the next free vnetN) with the guest MAC's fe:... twin, add it
 * to bridge and bring it up. Its name goes to name; returns the tun descriptor (close-on-exec),
 * or -1 with err naming the step that failed.
 */
int tap_create(const char *want, const char *bridge, const char *guest_mac, char *name,
               size_t name_len, struct tt_error *err);
/* The counters of the tap name from /sys/class/net; -1 when it is gone. */
int tap_stats(const char *name, struct tap_stats *out);

#endif
