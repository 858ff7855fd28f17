/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tetherd's one context: the loop, the store, the domains and the control socket. */
#ifndef TT_HOST_TETHERD_H
#define TT_HOST_TETHERD_H

#include <stdbool.h>
#include <sys/types.h>
#include "host/store.h"

struct event_base;
struct vm;
struct api_server;
struct metrics;
struct monitor;

struct tetherd {
        struct event_base *base;  /* the one event loop */
        struct store store;       /* paths under --root */
        struct vm *vms;           /* every known domain: persistent ones and running transients */
        struct api_server *api;   /* the control socket */
        int next_id;              /* id for the next domain that starts (virsh's Id column) */
        gid_t access_gid;         /* group allowed on the control socket besides root */
        bool access_gid_set;      /* access_gid is meaningful */
        unsigned max_clients;     /* [security] max-clients: control clients at once (0: 256) */
        struct monitor *monitor;  /* the monitor service's polling (monitor.c), NULL when off */
        struct metrics *metrics;  /* /metrics server and Pushgateway pushes (metrics.c), or NULL */
};

#endif
