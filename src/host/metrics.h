/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Prometheus metrics of tetherd: the text exposition format (version 0.0.4) rendered from the
 * domain list and the monitor's cache (monitor.h), served on GET /metrics (evhttp) and pushed
 * to a Pushgateway after each host-side round. Rendering reads only the cache, so a hung QEMU
 * or agent never slows a scrape; its values go stale and tether_monitor_source_age_seconds says
 * by how much.
 *
 * Names follow the libvirt exporters for host data (tether_domain_*) and node_exporter for guest
 * data (tether_guest_*); every per-domain series has a "domain" label, and the uuid and the
 * guest's OS appear only in the *_info metrics.
 */
#ifndef TT_HOST_METRICS_H
#define TT_HOST_METRICS_H

#include "common/tt_error.h"

struct tetherd;

/* The Content-Type of the exposition format. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Every metric of every domain, as one malloc'd string (NULL when out of memory). */
char *metrics_render(struct tetherd *d);

/*
 * Serve GET /metrics on ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT (the last two on 127.0.0.1).
 * Other paths answer 404, other methods 405.
 */
int metrics_listen(struct tetherd *d, const char *addr_port, struct tt_error *err);

/*
 * Push to the Pushgateway at url (http://HOST[:PORT][/PREFIX]) after each host-side round:
 * PUT PREFIX/metrics/job/tether/instance/HOSTNAME, one push in flight at most. Call after
 * monitor_start(). HOST is resolved here, once.
 */
int metrics_push_start(struct tetherd *d, const char *url, struct tt_error *err);

/* Stop serving; with a push URL, DELETE the group (waiting ~2 s at most). NULL-safe state. */
void metrics_close(struct tetherd *d);

#endif
