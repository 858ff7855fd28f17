/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The monitor service: tetherd polls every running domain on its own event loop, the host side
 * (QEMU over QMP, /proc) and the guest side (the agent, through guest.c), one request in flight
 * per guest and a deadline on each, and keeps the last good value of each source with the time
 * it was taken. Readers (/metrics, domstats, guestinfo) only read this cache: they never wait on
 * a live call, so a hung QEMU or agent makes its values stale, never a scrape slow.
 *
 * Each source's data is a JSON value:
 *   MON_HOST         {"state": N, "reason": N (libvirt's numbers), "cpu_seconds": F,
 *                     "cpu_user_seconds": F, "cpu_system_seconds": F (QEMU's utime, stime),
 *                     "rss_bytes": N, "max_memory_bytes": N, "current_memory_bytes": N,
 *                     "vcpus": [{"vcpu": N, "tid": N, "seconds": F (utime+stime, in ticks),
 *                                "run_seconds": F (on a CPU, schedstat's ns), "wait_seconds": F}],
 *                     "block": [{"device": "vda", "rd_bytes", "wr_bytes", "rd_operations",
 *                                "wr_operations", "flush_operations", "rd_total_time_ns",
 *                                "wr_total_time_ns", "flush_total_time_ns"}],
 *                     "balloon": {QEMU's qom guest-stats "stats" object, plus "last-update"}
 *                                (only with a memballoon that has a stats period),
 *                     "net_count": N (interfaces in the definition),
 *                     "net": [{"index": N (in the definition), "device": "vnet0",
 *                              "rx_bytes", "rx_packets", "rx_errs", "rx_drop", "tx_bytes",
 *                              "tx_packets", "tx_errs", "tx_drop"}] (bridge interfaces' taps,
 *                              from the guest's side: rx is what the guest received)}
 *                    current_memory_bytes is the balloon's actual size when QEMU has one.
 *   MON_LOAD         {"load1m": F, "load5m": F, "load15m": F}   (guest-get-load's schema)
 *   MON_MEMORY       {"total_bytes": N, "available_bytes": N, "free_bytes": N}
 *                    (/proc/meminfo read through guest-file-open/read/close)
 *   MON_CPUSTATS     guest-get-cpustats' return, as the agent sent it
 *   MON_DISKSTATS    guest-get-diskstats' return
 *   MON_INTERFACES   guest-network-get-interfaces' return
 *   MON_USERS        guest-get-users' return
 *   MON_FILESYSTEMS  guest-get-fsinfo's return
 *   MON_OSINFO       guest-get-osinfo's return
 */
#ifndef TT_HOST_MONITOR_H
#define TT_HOST_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include "common/tt_error.h"

struct tetherd;
struct vm;

enum monitor_source {
        MON_HOST,
        MON_LOAD,
        MON_MEMORY,
        MON_CPUSTATS,
        MON_DISKSTATS,
        MON_INTERFACES,
        MON_USERS,
        MON_FILESYSTEMS,
        MON_OSINFO,
        MON_SOURCE_LAST,
};

/* The last good value of one source of one domain. */
struct monitor_sample {
        json_t *data;        /* see the table above; NULL until the first success */
        double taken;        /* when data was taken: seconds since the epoch */
        double taken_mono;   /* the same on the monotonic clock (ages are computed from it) */
        bool unsupported;    /* the agent lacks the command and nothing can stand in for it */
        bool failing;        /* the last attempt failed (data, if any, is older) */
};

/* Per-class intervals in seconds (tetherd's config; 0 turns a class off). */
struct monitor_config {
        int host_s;        /* MON_HOST, default 10 */
        int stats_s;       /* MON_LOAD, MON_MEMORY, MON_CPUSTATS, MON_DISKSTATS, MON_INTERFACES: 10 */
        int users_s;       /* MON_USERS: 30 */
        int filesystems_s; /* MON_FILESYSTEMS: 60 */
        int osinfo_s;      /* MON_OSINFO: 300 */
};

/* Its name in metrics and the API ("host", "load", "memory", "cpustats", ...). */
const char *monitor_source_name(enum monitor_source s);
void monitor_config_default(struct monitor_config *c);

/* Start polling (every running domain, and those that start later). */
int monitor_start(struct tetherd *d, const struct monitor_config *c, struct tt_error *err);
void monitor_stop(struct tetherd *d);
/* The domain started, stopped or was reconnected: create or drop its poll state. */
void monitor_vm_changed(struct vm *vm);
/* The domain is being freed: drop its poll state whatever its state. */
void monitor_vm_drop(struct vm *vm);

/* The cached sample of a source; NULL when the domain is not polled. Borrowed. */
const struct monitor_sample *monitor_sample(const struct vm *vm, enum monitor_source s);
/*
 * The vCPU threads' CPU use between the last two host samples (1.0 = one CPU busy), or -1
 * when there are not two yet or the last round failed (tetherd --report-idle's "idle").
 */
double monitor_vcpu_load(const struct vm *vm);
/* Seconds since that sample was taken (monotonic), or -1 when there is none. */
double monitor_age(const struct vm *vm, enum monitor_source s);
/*
 * The cached data of a source when it is fresh: younger than its poll interval and its last
 * attempt did not fail (what the monitor promises for it); else NULL. Borrowed.
 */
json_t *monitor_fresh(const struct vm *vm, enum monitor_source s);
/* For tests and `tether domstats`: {"host": {"age": F, "data": ...}, ...} for one domain. */
json_t *monitor_describe(const struct vm *vm);

/* A hook run after each host-side round (the Pushgateway push). NULL-safe opaque. */
void monitor_on_round(struct tetherd *d, void (*fn)(struct tetherd *d, void *opaque),
                      void *opaque);

#endif
