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
struct events_bus;
struct metrics;
struct monitor;
struct hoststop;
struct web;

struct tetherd {
        struct event_base *base;  /* the one event loop */
        struct store store;       /* paths under --root */
        struct vm *vms;           /* every known domain: persistent ones and running transients */
        struct api_server *api;   /* the control socket */
        struct events_bus *events; /* event subscribers (events.c) */
        unsigned max_subscribers; /* [security] max-event-subscribers (0: 64) */
        int next_id;              /* id for the next domain that starts (virsh's Id column) */
        gid_t access_gid;         /* group allowed on the control socket besides root */
        bool access_gid_set;      /* access_gid is meaningful */
        unsigned max_clients;     /* [security] max-clients: control clients at once (0: 256) */
        struct monitor *monitor;  /* the monitor service's polling (monitor.c), NULL when off */
        struct metrics *metrics;  /* /metrics server and Pushgateway pushes (metrics.c), or NULL */
        struct web *web;          /* the web console (web.c), NULL when off */
        /* QEMU's user ([security] qemu-user, --qemu-user): QEMU runs unprivileged when set. */
        bool qemu_drop;           /* false: QEMU runs as tetherd does (root, or the empty name) */
        char *qemu_user;          /* its name (-runas), when qemu_drop */
        uid_t qemu_uid;           /* its uid and primary gid */
        gid_t qemu_gid;
        gid_t *qemu_groups;       /* its supplementary groups (initgroups), n_qemu_groups of them */
        int n_qemu_groups;
        /* What a non-root client's domain may name (policy.c); NULL-terminated, malloc'd. */
        char **emulators;         /* [security] emulators: the allowed <emulator> paths */
        char **image_dirs;        /* [security] image-dirs: real paths of the image folders */
        /* Whose request runs now (policy_check records it; launches happen inside a request).
           TETHERD_SELF: tetherd itself (autostart at start-up). */
        uid_t request_uid;
        /* --report-idle ([monitor] report-idle): running domains with idle vCPUs show "idle". */
        bool report_idle;
        struct hoststop *hoststop; /* --on-shutdown/--on-boot (hoststop.c), or NULL */
};

#define TETHERD_SELF ((uid_t)-1)

#endif
