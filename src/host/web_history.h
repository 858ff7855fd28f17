/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The web console's charts: per domain, a ring of the last WEB_HISTORY_POINTS points, one per
 * monitor host sample (360 at the default 10 s: an hour). A point is CPU % (100 = one host
 * CPU), guest memory used (the agent's /proc/meminfo: total - available), disk read and write
 * and network rx and tx rates (bytes/s; the host's taps, else the guest's interfaces), and the
 * root filesystem's use in %. A value the monitor has not got is null. Rings are made when a
 * domain's first sample comes, and dropped with the domain.
 */
#ifndef TT_HOST_WEB_HISTORY_H
#define TT_HOST_WEB_HISTORY_H

#include <jansson.h>
#include <stddef.h>

#define WEB_HISTORY_POINTS 360

struct tetherd;
struct web_history;

/* Start recording (a 1 s timer looks for new monitor samples). */
struct web_history *web_history_new(struct tetherd *d);
void web_history_free(struct web_history *h);

/*
 * One domain's points, oldest first, as columns:
 * {"domain": S, "points": N, "t": [epoch s], "cpu": [...], "memory": [...], "disk_read": [...],
 *  "disk_write": [...], "net_rx": [...], "net_tx": [...], "rootfs": [...]}. A domain with no
 * sample yet has N = 0 and empty columns.
 */
json_t *web_history_json(struct web_history *h, const char *name);
/* Every domain's last n CPU values (the list's sparklines): {"NAME": [...], ...}. */
json_t *web_history_cpu(struct web_history *h, size_t n);

#endif
