/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * When the host stops (libvirt-guests' job, built in): on SIGTERM, tetherd --on-shutdown
 * managedsave|shutdown saves or shuts down every running guest, a few at a time, within
 * --shutdown-timeout, then exits; the event loop keeps serving meanwhile. The domains it saved
 * are recorded (ROOT/var/lib/tether/hoststop-saved.json, written atomically after each save),
 * and --on-boot start restores them when tetherd next starts.
 */
#ifndef TT_HOST_HOSTSTOP_H
#define TT_HOST_HOSTSTOP_H

#include <stdbool.h>
#include "common/tt_error.h"

struct tetherd;

enum hoststop_action {
        HOSTSTOP_IGNORE,      /* QEMUs keep running when tetherd exits (the default) */
        HOSTSTOP_MANAGEDSAVE, /* managedsave each running guest (a transient one is shut down) */
        HOSTSTOP_SHUTDOWN,    /* the ACPI power button; destroyed when the timeout passes */
};

enum hostboot_action {
        HOSTBOOT_START,  /* restore the domains the last host stop saved (the default) */
        HOSTBOOT_IGNORE, /* leave them saved (and recorded, for a later start) */
};

struct hoststop_config {
        enum hoststop_action on_shutdown; /* --on-shutdown, [lifecycle] on-shutdown */
        enum hostboot_action on_boot;     /* --on-boot, [lifecycle] on-boot */
        int timeout_s;                    /* --shutdown-timeout: the whole host stop's budget */
        int parallel;                     /* --parallel-shutdown: guests handled at once */
};

#define HOSTSTOP_TIMEOUT_S 300
#define HOSTSTOP_PARALLEL 3
#define HOSTSTOP_PARALLEL_MAX 64

void hoststop_config_default(struct hoststop_config *c);
/* "managedsave", "shutdown", "ignore"; what names the value in the error (an option, a line). */
int hoststop_parse_action(const char *text, const char *what, enum hoststop_action *out,
                          struct tt_error *err);
/* "start", "ignore". */
int hoststop_parse_boot(const char *text, const char *what, enum hostboot_action *out,
                        struct tt_error *err);

int hoststop_setup(struct tetherd *d, const struct hoststop_config *c, struct tt_error *err);
void hoststop_free(struct tetherd *d);
/*
 * SIGTERM: start the host stop. False when there is nothing to do (on-shutdown ignore): the
 * caller exits at once. True: the loop must keep running; hoststop breaks it when done.
 */
bool hoststop_begin(struct tetherd *d);
/* The host stop has begun: no domain may start (vm_begin_job refuses a launch). */
bool hoststop_running(const struct tetherd *d);
/* At start-up, after the domains are loaded: restore (or forget) what the last host stop saved. */
void hoststop_boot(struct tetherd *d);

#endif
