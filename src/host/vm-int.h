/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the files of the VM module share, and nobody else sees:
 *   vm.c            the lifecycle core: state, jobs, QMP events, start, define, destroy
 *   vm_power.c      shutdown and reboot (ACPI button or guest agent, optionally waiting)
 *   vm_save.c       save, managedsave and restore (QEMU's migration stream in a save image)
 *   vm_reconnect.c  loading definitions and reconnecting to QEMUs after a daemon restart
 *   vm_monitor.c    QMP passthrough, screenshots and graphics
 *   guest.c         the guest agent client (its own header, guest.h)
 */
#ifndef TT_HOST_VM_INT_H
#define TT_HOST_VM_INT_H

#include "host/qmp.h"
#include "host/vm.h"

/* How long QEMU may take to answer a lifecycle command before the job fails. */
#define VM_QMP_TIMEOUT_MS 10000

extern const struct qmp_callbacks vm_qmp_callbacks;

/* Persist state, reason, pid and id of an active domain (its status file). */
void vm_save_status(struct vm *vm);
/* Apply a transition from the table; with err NULL, an event that does not apply is logged. */
int vm_apply(struct vm *vm, enum vm_event ev, struct tt_error *err);
/* Check that ev is valid now and no other job runs; then take the job. */
int vm_begin_job(struct vm *vm, const char *job, enum vm_event ev, vm_done_fn done,
                 void *opaque, struct tt_error *err);
/* Give the job back without answering (the caller reports err itself). */
void vm_release_job(struct vm *vm, struct tt_error *err);
/* Finish the running job: reply to its caller exactly once. */
void vm_end_job(struct vm *vm, json_t *ret, const struct tt_error *err);
void vm_end_job_error(struct vm *vm, int code, const char *msg);
bool vm_job_is_launch(const char *job);

struct vm *vm_new(struct tetherd *d, struct domain *def, bool persistent);
/* The domain named exactly name (never an id or uuid), or NULL. */
struct vm *vm_lookup_name(struct tetherd *d, const char *name);
/* The domain's sockets would fit in sun_path under this daemon's run folder; else VM_ERR_CONFIG. */
int vm_check_name_fits(struct tetherd *d, const char *name, struct tt_error *err);
void vm_unlink_free(struct vm *vm);
struct domain *vm_domain_copy(const struct domain *def, struct tt_error *err);
bool vm_pid_alive(pid_t pid);

/* QEMU is gone: apply ev, clean the run folder (vm_finish_stop also answers the job). */
void vm_stopped(struct vm *vm, enum vm_event ev);
void vm_finish_stop(struct vm *vm, enum vm_event ev);
/* A launch job failed after QEMU started: kill it; its exit ends the job with the message. */
void vm_launch_fail(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Launch QEMU for a held job, booting or loading a save image (img and fd taken over). */
int vm_launch_job(struct vm *vm, unsigned flags, int image_fd, struct saveimage *img,
                  const char *image_path, bool managed, struct tt_error *err);
/* Kill QEMU; the job "destroy" (whose caller is already set) ends when it is gone. The domain
 * is dying meanwhile; why (VM_EV_KILL, _GRACEFUL, _FORCED) gives the reason. */
void vm_destroy_begin(struct vm *vm, enum vm_event why);
/* A QMP reply nobody waits for: log a failure. */
void vm_reply_ignore(void *opaque, json_t *ret, const struct tt_error *err);

/* vm_save.c: drop a save or restore's image state; a failed save's file goes. */
void vm_image_release(struct vm *vm, bool remove_file);
/* vm_save.c: the domain is freed: wait for a save's fdatasync thread and free it. */
void vm_save_sync_abandon(struct vm *vm);
/* vm_save.c: QEMU runs with -incoming defer: hand it the image. */
void vm_restore_begin(struct vm *vm);
/* vm_power.c: shutdown/reboot requests are over: their deadline goes. */
void vm_power_release(struct vm *vm);
/* vm_reconnect.c: a status file's fields, all checked; false when one is missing or out of
 * range (also the fuzz target's entry point). */
bool vm_status_fields(json_t *st, struct vm_status *status, pid_t *pid, int *id);

#endif
