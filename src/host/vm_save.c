/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * save, managedsave and restore: QEMU's migration stream in a Tether save image (saveimage.c).
 * save stops the vCPUs, streams the state into the image through an fd passed with getfd, and
 * quits QEMU; restore launches QEMU with -incoming defer and streams the image back in.
 */
#include "host/vm-int.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "host/saveimage.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* query-migrate polling while a save or restore streams. */
#define VM_MIGRATE_POLL_MS 20
/* Migration bandwidth for save images: unlimited in practice (QEMU's default is 32 MiB/s). */
#define VM_SAVE_BANDWIDTH (1ll << 40)

/*
 * The end of a save: fdatasync the stream, write the header, fdatasync again (saveimage_finish).
 * A sync of gigabytes takes seconds, so it runs in a thread, on its own copy of the fd and the
 * header; the loop hears of its end through a pipe. A domain that lets go of the save meanwhile
 * (QEMU died) only detaches it: the thread finishes on a file nobody uses any more.
 */
struct vm_save_sync {
        struct vm *vm;            /* NULL once the domain let go of the save */
        int fd;                   /* a dup of the image fd, owned */
        struct saveimage img;     /* a copy of the header, xml owned */
        int rc;                   /* saveimage_finish()'s result */
        struct tt_error err;      /* and its error */
        int pipe[2];              /* the thread writes one byte when it is done */
        struct event *done_ev;    /* reads that byte in the loop */
        pthread_t thread;         /* the worker */
};

static void save_sync_free(struct vm_save_sync *s)
{
        if (s->done_ev)
                event_free(s->done_ev);
        for (int i = 0; i < 2; i++)
                if (s->pipe[i] >= 0)
                        close(s->pipe[i]);
        if (s->fd >= 0)
                close(s->fd);
        saveimage_clear(&s->img);
        tt_error_clear(&s->err);
        free(s);
}

static void *save_sync_thread(void *opaque)
{
        struct vm_save_sync *s = opaque;
        ssize_t n;

        s->rc = saveimage_finish(s->fd, &s->img, &s->err);
        do
                n = write(s->pipe[1], "x", 1);
        while (n < 0 && errno == EINTR);
        return NULL;
}

void vm_save_sync_abandon(struct vm *vm)
{
        struct vm_save_sync *s = vm->save_sync;

        if (s == NULL)
                return;
        vm->save_sync = NULL;
        pthread_join(s->thread, NULL);
        save_sync_free(s);
}

/* A save or restore is over (either way): drop its image state; a failed save's file goes. */
void vm_image_release(struct vm *vm, bool remove_file)
{
        if (vm->save_sync) {
                /* Its thread finishes on its own; save_synced() then frees it. */
                vm->save_sync->vm = NULL;
                vm->save_sync = NULL;
        }
        if (vm->poll)
                event_del(vm->poll);
        /*
         * tetherd removes only its own (managed) image. A client's file is only emptied: its
         * path was never ours to open or unlink (the CLI removes a file it created).
         */
        if (remove_file && vm->image_managed && vm->image_path)
                unlink(vm->image_path);
        else if (remove_file && vm->image_fd >= 0 && ftruncate(vm->image_fd, 0) < 0)
                tt_warn("%s: cannot empty the failed save image: %s", vm->def->name,
                        strerror(errno));
        if (vm->image_fd >= 0)
                close(vm->image_fd);
        vm->image_fd = -1;
        if (vm->image)
                saveimage_clear(vm->image);
        free(vm->image);
        vm->image = NULL;
        free(vm->image_path);
        vm->image_path = NULL;
        vm->image_managed = false;
        vm->restoring = false;
}

static void migrate_poll_arm(struct vm *vm);

/* The save failed: remove the image, give the vCPUs back if they ran, answer the caller. */
static void save_fail(struct vm *vm, const char *why)
{
        char msg[600];

        snprintf(msg, sizeof(msg), "operation failed: saving domain %s failed: %s",
                 vm->def->name, why);
        tt_err("%s", msg);
        vm_image_release(vm, true);
        if (vm->status.state == VM_STATE_PAUSED && vm->status.reason == VM_PAUSED_SAVE) {
                if (vm->was_running &&
                    qmp_command(vm->qmp, "cont", NULL, VM_QMP_TIMEOUT_MS, vm_reply_ignore, vm) == 0)
                        vm_apply(vm, VM_EV_SAVE_FAILED, NULL);
                else
                        vm_apply(vm, VM_EV_SAVE_FAILED_PAUSED, NULL);
        }
        vm_end_job_error(vm, VM_ERR_FAILED, msg);
}

static void save_quit_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        /* The monitor EOF finishes the job (shut off (saved)); a failed quit needs a kill. */
        if (err && vm->saved && vm->pid > 0)
                kill(vm->pid, SIGKILL);
}

/* The header is complete and on disk (or that failed): let QEMU go. */
static void save_synced(evutil_socket_t fd, short what, void *opaque)
{
        struct vm_save_sync *s = opaque;
        struct vm *vm = s->vm;

        pthread_join(s->thread, NULL);
        if (vm == NULL) {
                save_sync_free(s);
                return;
        }
        vm->save_sync = NULL;
        if (s->rc < 0) {
                save_fail(vm, s->err.msg ? s->err.msg : "cannot complete the save image");
                save_sync_free(s);
                return;
        }
        vm->image->data_len = s->img.data_len;
        save_sync_free(s);
        tt_info("%s: saved %llu bytes of state to %s", vm->def->name,
                (unsigned long long)vm->image->data_len, vm->image_path);
        vm->saved = true;
        close(vm->image_fd);
        vm->image_fd = -1;
        if (qmp_command(vm->qmp, "quit", NULL, VM_QMP_TIMEOUT_MS, save_quit_done, vm) < 0)
                kill(vm->pid, SIGKILL);
}

/* The stream is in the file: sync it and complete the header off the loop (save_synced next). */
static void save_completed(struct vm *vm)
{
        struct vm_save_sync *s = calloc(1, sizeof(*s));

        if (s == NULL) {
                save_fail(vm, "out of memory");
                return;
        }
        s->vm = vm;
        s->pipe[0] = s->pipe[1] = -1;
        s->img = *vm->image;
        s->img.xml = strdup(vm->image->xml);
        s->fd = fcntl(vm->image_fd, F_DUPFD_CLOEXEC, 3);
        if (s->img.xml == NULL || s->fd < 0 || pipe2(s->pipe, O_CLOEXEC) < 0 ||
            (s->done_ev = event_new(vm->d->base, s->pipe[0], EV_READ, save_synced, s)) == NULL ||
            event_add(s->done_ev, NULL) < 0 ||
            pthread_create(&s->thread, NULL, save_sync_thread, s) != 0) {
                save_sync_free(s);
                save_fail(vm, "cannot start syncing the save image");
                return;
        }
        vm->save_sync = s;
}

/* Loading the image finished: run (restored) or stay paused. */
static void restore_cont_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;
        _cleanup_json_ json_t *done = NULL;
        bool paused = (vm->flags & VM_START_PAUSED) || !vm->was_running;

        if (err) {
                vm_launch_fail(vm, "internal error: cannot start vCPUs after restore: %s",
                               err->msg);
                return;
        }
        if (vm->image_managed && vm->image_path)
                unlink(vm->image_path); /* libvirt too removes a managed image once used */
        vm_image_release(vm, false);
        vm_apply(vm, paused ? VM_EV_RESTORE_PAUSED : VM_EV_RESTORE, NULL);
        done = json_pack("{s:s}", "name", vm->def->name);
        vm_end_job(vm, done, NULL);
}

static void restore_completed(struct vm *vm)
{
        if ((vm->flags & VM_START_PAUSED) || !vm->was_running) {
                restore_cont_done(vm, NULL, NULL);
                return;
        }
        qmp_command(vm->qmp, "cont", NULL, VM_QMP_TIMEOUT_MS, restore_cont_done, vm);
}

static void migrate_failed(struct vm *vm, const char *why)
{
        if (vm->restoring)
                vm_launch_fail(vm, "operation failed: cannot restore domain %s from '%s': %s",
                               vm->def->name, vm->image_path ? vm->image_path : "?", why);
        else
                save_fail(vm, why);
}

static void migrate_poll_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;
        const char *status = json_string_value(json_object_get(ret, "status"));

        if (vm->job == NULL || (vm->image_fd < 0 && !vm->restoring))
                return;
        if (err) {
                migrate_failed(vm, err->msg);
        } else if (status && strcmp(status, "completed") == 0) {
                if (vm->restoring)
                        restore_completed(vm);
                else
                        save_completed(vm);
        } else if (status && (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0)) {
                const char *desc = json_string_value(json_object_get(ret, "error-desc"));

                migrate_failed(vm, desc ? desc : status);
        } else {
                migrate_poll_arm(vm);
        }
}

static void migrate_poll_tick(evutil_socket_t fd, short what, void *opaque)
{
        struct vm *vm = opaque;

        if (qmp_command(vm->qmp, "query-migrate", NULL, VM_QMP_TIMEOUT_MS, migrate_poll_done,
                        vm) < 0)
                migrate_failed(vm, "cannot talk to QEMU");
}

static void migrate_poll_arm(struct vm *vm)
{
        struct timeval tv = {0, VM_MIGRATE_POLL_MS * 1000};

        if (vm->poll == NULL)
                vm->poll = evtimer_new(vm->d->base, migrate_poll_tick, vm);
        evtimer_add(vm->poll, &tv);
}

/*
 * A step of a save or restore answered: false when the job is already over (destroyed, or
 * failed earlier) or QEMU refused the step, which then fails the job.
 */
static bool migrate_step_ok(struct vm *vm, const struct tt_error *err)
{
        if (vm->job == NULL)
                return false;
        if (err) {
                migrate_failed(vm, err->msg);
                return false;
        }
        return true;
}

/* migrate / migrate-incoming answered: the stream runs; poll until it ends. */
static void migrate_started(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        if (migrate_step_ok(vm, err))
                migrate_poll_arm(vm);
}

/* getfd answered: QEMU holds the image fd under fdname. */
static void getfd_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        if (!migrate_step_ok(vm, err))
                return;
        if (vm->restoring)
                qmp_command(vm->qmp, "migrate-incoming",
                            json_pack("{s:s}", "uri", "fd:tether-restore"), VM_QMP_TIMEOUT_MS,
                            migrate_started, vm);
        else
                qmp_command(vm->qmp, "migrate", json_pack("{s:s}", "uri", "fd:tether-save"),
                            VM_QMP_TIMEOUT_MS, migrate_started, vm);
}

/* QEMU runs with -incoming defer: hand it the image, positioned at the stream. */
void vm_restore_begin(struct vm *vm)
{
        if (qmp_command_fd(vm->qmp, "getfd", json_pack("{s:s}", "fdname", "tether-restore"),
                           vm->image_fd, VM_QMP_TIMEOUT_MS, getfd_done, vm) < 0)
                vm_launch_fail(vm, "operation failed: cannot pass the save image to QEMU");
}

/* vCPUs are stopped (or were already): stream the state into the image. */
static void save_stopped(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        if (vm->job == NULL)
                return;
        if (err) {
                save_fail(vm, err->msg);
                return;
        }
        vm_apply(vm, VM_EV_SAVE_BEGIN, NULL);
        qmp_command(vm->qmp, "migrate-set-parameters",
                    json_pack("{s:I}", "max-bandwidth", (json_int_t)VM_SAVE_BANDWIDTH),
                    VM_QMP_TIMEOUT_MS, vm_reply_ignore, vm);
        if (qmp_command_fd(vm->qmp, "getfd", json_pack("{s:s}", "fdname", "tether-save"),
                           vm->image_fd, VM_QMP_TIMEOUT_MS, getfd_done, vm) < 0)
                save_fail(vm, "cannot pass the save image to QEMU");
}

int vm_save(struct vm *vm, int client_fd, const char *path, vm_done_fn done, void *opaque,
            struct tt_error *err)
{
        bool managed = client_fd < 0;
        _cleanup_free_ char *xml = NULL;
        _cleanup_free_ char *target =
                managed ? store_managed_save_path(&vm->d->store, vm->def->name) : strdup(path);
        struct saveimage *img;
        int fd;

        if (target == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (managed && !vm->persistent)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: cannot do managed save "
                                    "for transient domain");
        if (vm_begin_job(vm, managed ? "managedsave" : "save", VM_EV_SAVE_BEGIN, done, opaque,
                         err) < 0)
                return -1;
        vm->was_running = vm->status.state == VM_STATE_RUNNING;
        /* The complete (secure) definition: restore needs the graphics passwords too. */
        xml = domain_format(vm->live ? vm->live : vm->def);
        img = calloc(1, sizeof(*img));
        if (xml == NULL || img == NULL) {
                free(img);
                vm_release_job(vm, NULL);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        if (managed) {
                fd = saveimage_create(target, xml, vm->was_running ? SAVEIMAGE_WAS_RUNNING : 0,
                                      img, err);
        } else {
                /* Our own copy of the client's descriptor: it goes to QEMU and the sync thread. */
                fd = fcntl(client_fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        tt_error_errno(err, errno, "cannot save to '%s'", target);
                else if (saveimage_create_fd(fd, target, xml,
                                             vm->was_running ? SAVEIMAGE_WAS_RUNNING : 0, img,
                                             err) < 0) {
                        close(fd);
                        fd = -1;
                }
                if (fd < 0 && err && err->code == EINVAL)
                        err->code = VM_ERR_INVALID_OP;
        }
        if (fd < 0) {
                saveimage_clear(img);
                free(img);
                vm_release_job(vm, err);
                return -1;
        }
        vm->image_fd = fd;
        vm->image = img;
        vm->image_path = steal_pointer(&target);
        vm->image_managed = managed;
        if (!vm->was_running) {
                save_stopped(vm, NULL, NULL);
                return 0;
        }
        if (qmp_command(vm->qmp, "stop", NULL, VM_QMP_TIMEOUT_MS, save_stopped, vm) < 0) {
                vm_image_release(vm, true);
                vm_release_job(vm, NULL);
                return tt_error_set(err, VM_ERR_FAILED, "cannot talk to QEMU for save");
        }
        return 0;
}

int vm_restore(struct tetherd *d, int client_fd, const char *path, bool paused, vm_done_fn done,
               void *opaque, struct tt_error *err)
{
        struct saveimage *img = calloc(1, sizeof(*img));
        _cleanup_domain_ struct domain *def = NULL;
        struct vm *vm = NULL;
        bool created = false;
        int fd;

        if (img == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        /* Everything about the file is checked before any QEMU starts; QEMU gets our copy. */
        fd = fcntl(client_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
                free(img);
                return tt_error_errno(err, errno, "cannot read '%s'", path);
        }
        if (saveimage_open_fd(fd, path, img, err) < 0) {
                close(fd);
                saveimage_clear(img);
                free(img);
                if (err && err->code == EINVAL)
                        err->code = VM_ERR_INVALID_OP;
                return -1;
        }
        def = domain_parse(img->xml, strlen(img->xml), err);
        if (def == NULL || vm_check_name_fits(d, def->name, err) < 0)
                goto fail;
        for (struct vm *v = d->vms; v; v = v->next) {
                bool same_name = strcmp(v->def->name, def->name) == 0;
                bool same_uuid = strcmp(v->def->uuid, def->uuid) == 0;

                if (same_name && same_uuid) {
                        vm = v;
                } else if (same_name || same_uuid) {
                        tt_error_set(err, VM_ERR_EXISTS,
                                     "operation failed: domain '%s' already exists with uuid %s",
                                     v->def->name, v->def->uuid);
                        goto fail;
                }
        }
        if (vm == NULL) {
                /* Not defined: the restored domain is transient, as with virsh restore. */
                vm = vm_new(d, def, false);
                if (vm == NULL) {
                        tt_error_set(err, ENOMEM, "out of memory");
                        goto fail;
                }
                def = NULL;
                created = true;
        }
        if (vm_begin_job(vm, "restore", VM_EV_LAUNCH, done, opaque, err) < 0)
                goto fail;
        if (vm_launch_job(vm, paused ? VM_START_PAUSED : 0, fd, img, path, false, err) < 0) {
                vm_release_job(vm, err);
                if (created)
                        vm_unlink_free(vm);
                return -1;
        }
        return 0;
fail:
        if (err && err->code < VM_ERR_NO_DOMAIN)
                err->code = VM_ERR_FAILED;
        if (created)
                vm_unlink_free(vm);
        close(fd);
        saveimage_clear(img);
        free(img);
        return -1;
}

int vm_managed_save_remove(struct vm *vm, bool *removed, struct tt_error *err)
{
        _cleanup_free_ char *path = store_managed_save_path(&vm->d->store, vm->def->name);

        if (path == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (vm->job && strcmp(vm->job, "managedsave") == 0)
                return tt_error_set(err, VM_ERR_BUSY, "domain %s is busy: %s", vm->def->name,
                                    vm->job);
        *removed = unlink(path) == 0;
        if (!*removed && errno != ENOENT)
                return tt_error_errno(err, errno, "cannot remove '%s'", path);
        return 0;
}

