/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where tetherd keeps things, all under one root (DESIGN.md "Root folder"):
 *   ROOT/etc/tether/domains/NAME.xml         persistent definitions (atomic writes)
 *   ROOT/etc/tether/autostart/NAME           autostart marker
 *   ROOT/var/lib/tether/save/NAME.save       managed-save images
 *   ROOT/var/lib/tether/log/NAME.log         QEMU's stdout and stderr
 *   ROOT/var/lib/tether/log/NAME.console.log what the guest wrote on its serial console
 *   ROOT/run/tether/tetherd.sock             the control socket
 *   ROOT/run/tether/domains/NAME/            per running domain: status.json, domain.xml (the
 *                                            live definition), qmp.sock, agent.sock,
 *                                            ttyS0.sock (the serial console, console.h)
 * Without --root, ROOT is empty: /etc/tether, /var/lib/tether, /run/tether.
 */
#ifndef TT_HOST_STORE_H
#define TT_HOST_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include "common/tt_error.h"

struct store {
        char *conf_dir;   /* ROOT/etc/tether */
        char *state_dir;  /* ROOT/var/lib/tether */
        char *run_dir;    /* ROOT/run/tether */
};

/* Fill the paths for root (NULL or "" = the system defaults) and create the folders. */
int store_open(struct store *st, const char *root, struct tt_error *err);
void store_close(struct store *st);

/* malloc'd paths */
char *store_def_path(const struct store *st, const char *name);
char *store_autostart_path(const struct store *st, const char *name);
char *store_managed_save_path(const struct store *st, const char *name);
char *store_log_path(const struct store *st, const char *name);
char *store_socket_path(const struct store *st);
/* ROOT/run/tether/domains/NAME/FILE (FILE may be NULL for the folder itself). */
char *store_run_path(const struct store *st, const char *name, const char *file);

/* Write a definition atomically (temp file, fsync, rename, fsync of the folder). */
int store_save_def(const struct store *st, const char *name, const char *xml,
                   struct tt_error *err);
int store_delete_def(const struct store *st, const char *name, struct tt_error *err);
/* Names of all persistent definitions (NULL-terminated, malloc'd, sorted). */
char **store_list_defs(const struct store *st, struct tt_error *err);
/* Names of domains with a run folder (candidates for reconnect). */
char **store_list_running(const struct store *st, struct tt_error *err);

/* A running domain's status file (JSON object), written atomically / read back. */
int store_save_status(const struct store *st, const char *name, json_t *status,
                      struct tt_error *err);
json_t *store_load_status(const struct store *st, const char *name, struct tt_error *err);
/* Remove the run folder of a domain that stopped. */
void store_remove_run(const struct store *st, const char *name);

int store_set_autostart(const struct store *st, const char *name, bool on, struct tt_error *err);
bool store_get_autostart(const struct store *st, const char *name);
bool store_has_managed_save(const struct store *st, const char *name);

void store_strv_free(char **v);

#endif
