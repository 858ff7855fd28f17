/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Domain snapshots (virsh snapshot-*): the control API's snapshot verbs and their metadata.
 *
 *  - A running or paused domain's snapshot is internal, with its memory: QMP snapshot-save,
 *    snapshot-load and snapshot-delete jobs, polled with query-jobs on the loop, each with a
 *    deadline. Every writable disk must be qcow2.
 *  - A shut-off domain's snapshot goes through `qemu-img snapshot -c/-a/-d`, run as a child
 *    process whose end the loop hears of through a pipe.
 *  - --quiesce freezes the guest's filesystems through the agent around the snapshot, and
 *    thaws them whatever happened.
 *  - Metadata is libvirt's domainsnapshot XML, one file per snapshot, plus the name of the
 *    current one, under ROOT/var/lib/tether/snapshot/DOMAIN/, written atomically, and only
 *    once the job succeeded. A NAME.pending marker is written first: a daemon killed during
 *    the job leaves it behind, and the next look at the domain's snapshots drops it (the job
 *    is reported failed in the log) so that nothing half-made is ever listed.
 */
#ifndef TT_HOST_SNAPSHOT_H
#define TT_HOST_SNAPSHOT_H

#include <jansson.h>
#include <stdbool.h>
#include "common/tt_error.h"
#include "host/vm.h"

struct snapshot_op_def;
struct wire_arg;

/* The snapshot verb of that name ("snapshot-create", "snapshot-list", ...), or NULL. */
const struct snapshot_op_def *snapshot_op_find(const char *name);
/* Its argument spec, for wire_args_check(). */
const struct wire_arg *snapshot_op_args(const struct snapshot_op_def *def);
/*
 * Run a verb with checked args: 0 with *ret set (answered at once), 1 when a job runs and done
 * answers later (exactly once), or -1 with err set.
 */
int snapshot_op_run(struct tetherd *d, const struct snapshot_op_def *def, json_t *args,
                    vm_done_fn done, void *opaque, json_t **ret, struct tt_error *err);

/* A QMP event of the domain: JOB_STATUS_CHANGE ends a snapshot job's wait at once. */
void snapshot_on_qmp_event(struct vm *vm, const char *name, json_t *data);
/* The domain's snapshots as snapshot-list gives them (name, parent, description, state,
 * creation_time, location, current), or NULL with err set. */
json_t *snapshot_list(struct vm *vm, struct tt_error *err);
/* How many snapshots (with metadata) the domain has; 0 when none or unreadable. */
int snapshot_count(struct vm *vm);
/* undefine: an inactive domain with snapshots is refused unless with_metadata (virsh's
 * --snapshots-metadata), whose caller then removes them with snapshot_remove_all(). */
int snapshot_undefine_check(struct vm *vm, bool with_metadata, struct tt_error *err);
/* Remove every snapshot's metadata of the domain of that name (it was undefined). */
void snapshot_remove_all(struct tetherd *d, const char *domain);

#endif
