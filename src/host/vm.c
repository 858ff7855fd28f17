/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "host/vm.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "host/qemu_argv.h"
#include "host/qmp.h"
#include "host/saveimage.h"
#include "wire/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long QEMU may take to answer a lifecycle command before the job fails. */
#define VM_QMP_TIMEOUT_MS 10000
/* destroy: SIGTERM, then SIGKILL after this many 100 ms ticks (libvirt: 10 s). */
#define VM_KILL_TICKS 100
/* destroy --graceful gives up after this many ticks (libvirt: 15 s). */
#define VM_GRACEFUL_TICKS 150
/* query-migrate polling while a save or restore streams. */
#define VM_MIGRATE_POLL_MS 20
/* Migration bandwidth for save images: unlimited in practice (QEMU's default is 32 MiB/s). */
#define VM_SAVE_BANDWIDTH (1ll << 40)
/* The guest agent must answer guest-sync-delimited within this (libvirt: 5 s). */
#define VM_AGENT_SYNC_MS 5000
/* shutdown/reboot --mode agent without --timeout: wait this long for SHUTDOWN/RESET (libvirt: 60 s). */
#define VM_AGENT_EVENT_S 60
/* shutdown --wait without --timeout. */
#define VM_SHUTDOWN_WAIT_S 60
/* A screendump PNG is refused beyond this. */
#define VM_SCREENSHOT_MAX (32u << 20)

static void vm_agent_free(struct vm_agent *a);

static void vm_on_event(void *opaque, const char *name, json_t *data);
static void vm_on_closed(void *opaque);
static const struct qmp_callbacks vm_qmp_callbacks = {vm_on_event, vm_on_closed};

/* ---- small helpers ---- */

static void vm_save_status(struct vm *vm)
{
        struct tt_error err = {0};
        json_t *st;

        if (!vm_state_is_active(vm->status.state))
                return;
        st = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:b}", "name", vm->def->name, "uuid",
                       vm->def->uuid, "pid", (int)vm->pid, "id", vm->id, "state",
                       (int)vm->status.state, "reason", vm->status.reason, "persistent",
                       vm->persistent);
        /* Autoport ports are not in the live XML (autoport resets them): keep them here. */
        if (st && vm->live) {
                json_t *ports = json_array();

                for (size_t i = 0; i < vm->live->n_graphics; i++)
                        json_array_append_new(ports, json_integer(vm->live->graphics[i].port));
                json_object_set_new(st, "graphics_ports", ports);
        }
        if (st == NULL || store_save_status(&vm->d->store, vm->def->name, st, &err) < 0)
                tt_err("%s: cannot save status: %s", vm->def->name, err.msg);
        json_decref(st);
        tt_error_clear(&err);
}

/* Apply a transition from the table; an event that does not apply is logged and ignored. */
static int vm_apply(struct vm *vm, enum vm_event ev, struct tt_error *err)
{
        struct vm_status next;
        struct tt_error local = {0};

        if (vm_state_apply(vm->status, ev, &next, err ? err : &local) < 0) {
                if (err == NULL)
                        tt_debug("%s: event %s ignored in state %s: %s", vm->def->name,
                                 vm_state_event_name(ev), vm_state_name(vm->status.state),
                                 local.msg);
                tt_error_clear(&local);
                return -1;
        }
        vm->status = next;
        vm_save_status(vm);
        return 0;
}

static int invalid_op(struct tt_error *err, struct tt_error *why)
{
        tt_error_set(err, VM_ERR_INVALID_OP, "Requested operation is not valid: %s", why->msg);
        tt_error_clear(why);
        return -1;
}

/* Check that ev is valid now and no other job runs; then take the job. */
static int vm_begin_job(struct vm *vm, const char *job, enum vm_event ev, vm_done_fn done,
                        void *opaque, struct tt_error *err)
{
        struct vm_status next;
        struct tt_error why = {0};

        if (vm->job)
                return tt_error_set(err, VM_ERR_BUSY, "domain %s is busy: %s", vm->def->name,
                                    vm->job);
        if (vm_state_apply(vm->status, ev, &next, &why) < 0)
                return invalid_op(err, &why);
        vm->job = job;
        vm->done = done;
        vm->done_opaque = opaque;
        return 0;
}

/* Finish the running job: reply to its caller exactly once. */
static void vm_end_job(struct vm *vm, json_t *ret, const struct tt_error *err)
{
        vm_done_fn done = vm->done;
        void *opaque = vm->done_opaque;

        vm->job = NULL;
        vm->done = NULL;
        vm->done_opaque = NULL;
        if (done)
                done(opaque, ret, err);
}

static void vm_end_job_error(struct vm *vm, int code, const char *msg)
{
        struct tt_error err = {0};

        tt_error_set(&err, code, "%s", msg);
        vm_end_job(vm, NULL, &err);
        tt_error_clear(&err);
}

static struct vm *vm_new(struct tetherd *d, struct domain *def, bool persistent)
{
        struct vm *vm = calloc(1, sizeof(*vm));

        if (vm == NULL)
                return NULL;
        vm->d = d;
        vm->def = def;
        vm->persistent = persistent;
        vm->id = -1;
        vm->image_fd = -1;
        vm->status = (struct vm_status){VM_STATE_SHUTOFF, VM_SHUTOFF_UNKNOWN};
        vm->next = d->vms;
        d->vms = vm;
        return vm;
}

static void vm_unlink_free(struct vm *vm)
{
        struct vm **pp;

        for (pp = &vm->d->vms; *pp; pp = &(*pp)->next) {
                if (*pp == vm) {
                        *pp = vm->next;
                        break;
                }
        }
        qmp_free(vm->qmp);
        if (vm->timer)
                event_free(vm->timer);
        if (vm->poll)
                event_free(vm->poll);
        if (vm->wait_timer)
                event_free(vm->wait_timer);
        vm_agent_free(vm->agent);
        if (vm->image_fd >= 0)
                close(vm->image_fd);
        if (vm->image)
                saveimage_clear(vm->image);
        free(vm->image);
        free(vm->image_path);
        free(vm->fail_msg);
        domain_free(vm->live);
        domain_free(vm->def);
        free(vm);
}

void vm_free_all(struct tetherd *d)
{
        while (d->vms)
                vm_unlink_free(d->vms);
}

struct vm *vm_lookup(struct tetherd *d, const char *key, struct tt_error *err)
{
        int64_t id = -1;
        struct vm *vm;

        tt_parse_int64(key, 10, &id);
        for (vm = d->vms; vm; vm = vm->next) {
                if (strcmp(vm->def->name, key) == 0 || strcasecmp(vm->def->uuid, key) == 0 ||
                    (id >= 0 && vm->id == id))
                        return vm;
        }
        tt_error_set(err, VM_ERR_NO_DOMAIN, "failed to get domain '%s'", key);
        return NULL;
}

/* The last lines of QEMU's log, to explain a failed start as libvirt does. */
static char *log_tail(struct vm *vm)
{
        _cleanup_free_ char *path = store_log_path(&vm->d->store, vm->def->name);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        char *p;

        if (path == NULL || tt_read_file(path, 1 << 20, &text, &len, NULL) < 0)
                return strdup("");
        while (len > 0 && text[len - 1] == '\n')
                text[--len] = '\0';
        p = strrchr(text, '\n');
        return strdup(p ? p + 1 : text);
}

/* ---- stopping: every way QEMU goes away ends here ---- */

static void vm_reap(struct vm *vm)
{
        /*
         * QEMU closed its monitor as it exited. Reap it if it is already gone; otherwise the
         * SIGCHLD handler does, without this loop waiting for it.
         */
        if (vm->pid > 0 && vm->is_child)
                waitpid(vm->pid, NULL, WNOHANG);
}

/* A save or restore is over (either way): drop its image state; a failed save's file goes. */
static void vm_image_release(struct vm *vm, bool remove_file)
{
        if (vm->poll)
                event_del(vm->poll);
        if (vm->image_fd >= 0)
                close(vm->image_fd);
        vm->image_fd = -1;
        if (remove_file && vm->image_path)
                unlink(vm->image_path);
        if (vm->image)
                saveimage_clear(vm->image);
        free(vm->image);
        vm->image = NULL;
        free(vm->image_path);
        vm->image_path = NULL;
        vm->image_managed = false;
        vm->restoring = false;
}

/* shutdown/reboot requests are over: the deadline and the agent connection go. */
static void vm_power_release(struct vm *vm)
{
        if (vm->wait_timer)
                event_del(vm->wait_timer);
        vm_agent_free(vm->agent);
        vm->agent = NULL;
        vm->power_sent = false;
        vm->await_event = NULL;
}

/* QEMU is gone: apply ev, clean the run folder, drop a transient domain. */
static void vm_stopped(struct vm *vm, enum vm_event ev)
{
        const char *name = vm->def->name;

        vm_reap(vm);
        if (vm->timer)
                event_del(vm->timer);
        /* An image QEMU was writing is incomplete unless the save finished. */
        vm_image_release(vm, vm->image_path && !vm->saved && !vm->restoring);
        vm_power_release(vm);
        vm->saved = false;
        qmp_free(vm->qmp);
        vm->qmp = NULL;
        vm->pid = 0;
        vm->is_child = false;
        vm->destroying = false;
        vm->fake_reboot = false;
        vm->id = -1;
        vm_apply(vm, ev, NULL);
        store_remove_run(&vm->d->store, name);
        domain_free(vm->live);
        vm->live = NULL;
        {
                _cleanup_free_ char *text =
                        vm_state_format(vm->status.state, vm->status.reason, true);
                tt_info("%s: %s", name, text ? text : "stopped");
        }
}

/* Jobs that launch QEMU: its exit before they finish is a failed start. */
static bool job_is_launch(const char *job)
{
        return job && (strcmp(job, "start") == 0 || strcmp(job, "restore") == 0);
}

static void vm_finish_stop(struct vm *vm, enum vm_event ev)
{
        const char *job = vm->job;
        _cleanup_free_ char *fail = vm->fail_msg;

        vm->fail_msg = NULL;
        vm_stopped(vm, ev);
        if (job_is_launch(job)) {
                _cleanup_free_ char *tail = log_tail(vm);
                char msg[1200];

                if (fail)
                        snprintf(msg, sizeof(msg), "%s", fail);
                else
                        snprintf(msg, sizeof(msg),
                                 "internal error: QEMU exited while starting: %s",
                                 tail && *tail ? tail : "no message");
                vm_end_job_error(vm, VM_ERR_FAILED, msg);
        } else if (job) {
                /* The final state, so that shutdown --wait can tell shutdown from destroyed. */
                _cleanup_json_ json_t *ret = json_pack(
                        "{s:s, s:s, s:s}", "name", vm->def->name, "state",
                        vm_state_name(vm->status.state), "reason",
                        vm_state_reason_name(vm->status.state, vm->status.reason) ?: "unknown");

                vm_end_job(vm, ret, NULL);
        }
        if (!vm->persistent)
                vm_unlink_free(vm);
}

static void vm_on_closed(void *opaque)
{
        struct vm *vm = opaque;
        enum vm_event ev;

        if (vm->destroying)
                ev = VM_EV_DESTROYED;
        else if (vm->saved)
                ev = VM_EV_SAVED;
        else if (job_is_launch(vm->job))
                ev = VM_EV_START_FAILED;
        else
                ev = VM_EV_MONITOR_EOF; /* the table decides: shutdown or crashed */
        vm_finish_stop(vm, ev);
}

/* A launch job failed after QEMU started: kill it; its exit ends the job with msg. */
static void vm_launch_fail(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vm_launch_fail(struct vm *vm, const char *fmt, ...)
{
        va_list ap;

        if (vm->fail_msg == NULL) {
                va_start(ap, fmt);
                if (vasprintf(&vm->fail_msg, fmt, ap) < 0)
                        vm->fail_msg = NULL;
                va_end(ap);
        }
        tt_err("%s: %s", vm->def->name, vm->fail_msg ? vm->fail_msg : "start failed");
        kill(vm->pid, SIGKILL);
}

/* ---- QMP events ---- */

static void reply_ignore(void *opaque, json_t *ret, const struct tt_error *err)
{
        if (err)
                tt_warn("QMP: %s", err->msg);
}

/*
 * The cont of a fake reboot answered. QEMU sent the STOP that follows SHUTDOWN and the RESUME
 * of this cont before the reply, so applying the transition only now keeps them from turning
 * "running (booted)" into "paused" and then "running (unpaused)".
 */
static void fake_reboot_cont_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        if (err) {
                tt_warn("%s: fake reboot: %s", vm->def->name, err->msg);
                return;
        }
        vm_apply(vm, VM_EV_FAKE_REBOOT, NULL);
}

static void vm_after_guest_stop(struct vm *vm, enum domain_action action)
{
        if (action == DOMAIN_ACTION_RESTART || vm->fake_reboot) {
                /* Fake reboot: QEMU was kept by -no-shutdown; reset it and run again. */
                vm->fake_reboot = false;
                qmp_command(vm->qmp, "system_reset", NULL, VM_QMP_TIMEOUT_MS, reply_ignore, vm);
                qmp_command(vm->qmp, "cont", NULL, VM_QMP_TIMEOUT_MS, fake_reboot_cont_done, vm);
        } else if (action == DOMAIN_ACTION_DESTROY) {
                /* QEMU is paused by -no-shutdown; let it exit (EOF gives the final state). */
                qmp_command(vm->qmp, "quit", NULL, VM_QMP_TIMEOUT_MS, reply_ignore, vm);
        }
}

static void vm_agent_event(struct vm *vm);

static void vm_on_event(void *opaque, const char *name, json_t *data)
{
        struct vm *vm = opaque;

        tt_debug("%s: QMP event %s", vm->def->name, name);
        if (vm->await_event && strcmp(name, vm->await_event) == 0) {
                /* shutdown/reboot --mode agent: the guest acted on guest-shutdown. */
                vm_agent_event(vm);
        }
        if (strcmp(name, "SHUTDOWN") == 0) {
                /* Our own SIGTERM (destroy) or quit (save) makes QEMU say SHUTDOWN: EOF follows. */
                if (vm->destroying || vm->saved)
                        return;
                /* Likewise our quit after a panic with on_crash destroy: stay crashed, so that
                 * the EOF ends it as "shut off (crashed)" rather than "shut off (shutdown)". */
                if (vm->status.state == VM_STATE_CRASHED && vm->live &&
                    vm->live->on_crash == DOMAIN_ACTION_DESTROY)
                        return;
                vm_apply(vm, VM_EV_QMP_SHUTDOWN, NULL);
                vm_after_guest_stop(vm, vm->live ? vm->live->on_poweroff : DOMAIN_ACTION_DESTROY);
        } else if (strcmp(name, "STOP") == 0) {
                /* Our own stops (suspend, save) apply their transition themselves. */
                if (vm->job == NULL && vm->status.state == VM_STATE_RUNNING)
                        vm_apply(vm, VM_EV_QMP_STOP, NULL);
        } else if (strcmp(name, "RESUME") == 0) {
                if (vm->job == NULL && vm->status.state == VM_STATE_PAUSED)
                        vm_apply(vm, VM_EV_QMP_RESUME, NULL);
        } else if (strcmp(name, "RESET") == 0) {
                vm_apply(vm, VM_EV_QMP_RESET, NULL);
        } else if (strcmp(name, "GUEST_PANICKED") == 0) {
                vm_apply(vm, VM_EV_QMP_PANICKED, NULL);
                if (vm->live && vm->live->on_crash != DOMAIN_ACTION_PRESERVE)
                        vm_after_guest_stop(vm, vm->live->on_crash);
        } else if (strcmp(name, "SUSPEND") == 0 || strcmp(name, "SUSPEND_DISK") == 0) {
                vm_apply(vm, VM_EV_QMP_SUSPEND, NULL);
        } else if (strcmp(name, "WAKEUP") == 0) {
                vm_apply(vm, VM_EV_QMP_WAKEUP, NULL);
        }
}

/* ---- start ---- */

/* A free TCP port from base on addr (autoport for VNC and SPICE). */
static int pick_port(const char *addr, int base)
{
        for (int port = base; port < base + 100; port++) {
                struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok, one = 1;

                if (fd < 0)
                        return -1;
                /* As QEMU binds: a port with only TIME_WAIT connections left is free. */
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (inet_pton(AF_INET, addr ? addr : "127.0.0.1", &sa.sin_addr) != 1)
                        sa.sin_addr.s_addr = htonl(INADDR_ANY);
                ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
                close(fd);
                if (ok)
                        return port;
        }
        return -1;
}

static struct domain *domain_copy(const struct domain *def, struct tt_error *err)
{
        _cleanup_free_ char *xml = domain_format(def);

        if (xml == NULL) {
                tt_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        return domain_parse(xml, strlen(xml), err);
}

static void start_cont_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        _cleanup_json_ json_t *done = NULL;

        if (err) {
                /* The monitor EOF that follows ends the job as a failed start. */
                tt_err("%s: cannot start vCPUs: %s", vm->def->name, err->msg);
                kill(vm->pid, SIGKILL);
                return;
        }
        done = json_pack("{s:s}", "name", vm->def->name);
        vm_apply(vm, (vm->flags & VM_START_PAUSED) ? VM_EV_START_PAUSED : VM_EV_START, NULL);
        vm_end_job(vm, done, NULL);
}

static void restore_begin(struct vm *vm);

static void start_ready(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        if (err) {
                /* The monitor closing also lands in vm_on_closed, which reports the log tail. */
                tt_warn("%s: QEMU did not become ready: %s", vm->def->name, err->msg);
                return;
        }
        for (size_t i = 0; i < vm->live->n_graphics; i++) {
                const struct domain_graphics *g = &vm->live->graphics[i];

                /* Passwords go over QMP, never on the command line (ps would show them). */
                if (g->passwd)
                        qmp_command(vm->qmp, "set_password",
                                    json_pack("{s:s, s:s}", "protocol",
                                              g->type == DOMAIN_GRAPHICS_VNC ? "vnc" : "spice",
                                              "password", g->passwd),
                                    VM_QMP_TIMEOUT_MS, reply_ignore, vm);
        }
        if (vm->restoring) {
                restore_begin(vm);
                return;
        }
        if (vm->flags & VM_START_PAUSED) {
                start_cont_done(vm, NULL, NULL);
                return;
        }
        qmp_command(vm->qmp, "cont", NULL, VM_QMP_TIMEOUT_MS, start_cont_done, vm);
}

/* Fork and exec QEMU with the monitor socket lfd; stdout and stderr go to the log. */
static pid_t spawn_qemu(struct vm *vm, char **argv, int lfd, struct tt_error *err)
{
        _cleanup_free_ char *log = store_log_path(&vm->d->store, vm->def->name);
        _cleanup_close_ int logfd = -1;
        sigset_t all;
        pid_t pid;

        logfd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
        if (logfd < 0)
                return tt_error_errno(err, errno, "cannot open log '%s'", log ? log : "");
        for (size_t i = 0; argv[i]; i++)
                dprintf(logfd, "%s%s", i ? " " : "", argv[i]);
        dprintf(logfd, "\n");
        pid = fork();
        if (pid < 0)
                return tt_error_errno(err, errno, "fork");
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDONLY);

                /* QEMU outlives tetherd: its own session, no signals inherited from us. */
                setsid();
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGPIPE, SIG_DFL);
                dup2(devnull, STDIN_FILENO);
                dup2(logfd, STDOUT_FILENO);
                dup2(logfd, STDERR_FILENO);
                fcntl(lfd, F_SETFD, 0);
                execv(argv[0], argv);
                dprintf(STDERR_FILENO, "cannot execute %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        return pid;
}

/* Start QEMU for def (the domain's own definition, or the one in a save image). */
static int vm_launch(struct vm *vm, unsigned flags, const struct domain *def,
                     struct tt_error *err)
{
        struct store *st = &vm->d->store;
        _cleanup_free_ char *dir = store_run_path(st, vm->def->name, NULL);
        _cleanup_free_ char *qmp_path = store_run_path(st, vm->def->name, "qmp.sock");
        _cleanup_free_ char *agent_path = store_run_path(st, vm->def->name, "agent.sock");
        _cleanup_free_ char *pidfile = store_run_path(st, vm->def->name, "qemu.pid");
        _cleanup_free_ char *xml = NULL;
        _cleanup_free_ char *livexml_path = store_run_path(st, vm->def->name, "domain.xml");
        _cleanup_free_ const char **chans = NULL;
        struct qemu_argv argv = {0};
        struct qemu_argv_runtime rt = {0};
        _cleanup_close_ int lfd = -1;
        pid_t pid;

        if (!dir || !qmp_path || !agent_path || !pidfile || !livexml_path)
                return tt_error_set(err, ENOMEM, "out of memory");
        vm->live = domain_copy(def, err);
        if (vm->live == NULL)
                return -1;
        if (tt_mkdir_p(dir, 0755, err) < 0)
                return -1;
        xml = domain_format(vm->live);
        if (xml == NULL || tt_write_file_atomic(livexml_path, xml, strlen(xml), 0600, err) < 0)
                return -1;
        lfd = qmp_listen_socket(qmp_path, err);
        if (lfd < 0)
                return -1;
        chans = calloc(vm->live->n_channels + 1, sizeof(char *));
        if (chans == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < vm->live->n_channels; i++)
                chans[i] = agent_path;
        rt.qmp_socket = qmp_path;
        rt.qmp_fd = lfd;
        rt.channel_sockets = chans;
        rt.n_channel_sockets = vm->live->n_channels;
        rt.pidfile = pidfile;
        rt.incoming_defer = vm->restoring;
        for (size_t i = 0; i < vm->live->n_graphics; i++) {
                struct domain_graphics *g = &vm->live->graphics[i];
                int port;

                if (!g->autoport)
                        continue;
                port = pick_port(g->listen, g->type == DOMAIN_GRAPHICS_VNC ? 5900 : 5901);
                if (port < 0)
                        return tt_error_set(err, VM_ERR_FAILED, "no free port for %s",
                                            g->type == DOMAIN_GRAPHICS_VNC ? "VNC" : "SPICE");
                if (g->type == DOMAIN_GRAPHICS_VNC)
                        rt.vnc_port = port;
                else
                        rt.spice_port = port;
                g->port = port;
        }
        if (qemu_argv_build(vm->live, &rt, &argv, err) < 0)
                return -1;
        pid = spawn_qemu(vm, argv.argv, lfd, err);
        qemu_argv_free(&argv);
        if (pid < 0)
                return -1;
        vm->pid = pid;
        vm->is_child = true;
        vm->flags = flags;
        vm->id = vm->d->next_id++;
        vm_apply(vm, VM_EV_LAUNCH, NULL);
        vm->qmp = qmp_new(vm->d->base, &vm_qmp_callbacks, vm);
        if (vm->qmp == NULL || qmp_connect(vm->qmp, qmp_path, err) < 0) {
                kill(pid, SIGKILL);
                vm_stopped(vm, VM_EV_START_FAILED);
                return -1;
        }
        /* The first command's reply means QEMU finished start-up and reads its monitor. */
        qmp_command(vm->qmp, "query-status", NULL, VM_QMP_TIMEOUT_MS, start_ready, vm);
        return 0;
}

/*
 * Launch QEMU for vm, booting or (image_fd >= 0) loading a save image whose header is img
 * (taken over, with the fd, on success and on failure alike). The job must be held.
 */
static int vm_launch_job(struct vm *vm, unsigned flags, int image_fd, struct saveimage *img,
                         const char *image_path, bool managed, struct tt_error *err)
{
        _cleanup_domain_ struct domain *image_def = NULL;
        int r;

        if (image_fd >= 0) {
                vm->image_fd = image_fd;
                vm->image = img;
                vm->image_path = strdup(image_path);
                vm->image_managed = managed;
                vm->restoring = true;
                vm->was_running = (img->flags & SAVEIMAGE_WAS_RUNNING) != 0;
                image_def = domain_parse(img->xml, strlen(img->xml), err);
                if (image_def == NULL) {
                        vm_image_release(vm, false);
                        return -1;
                }
        }
        r = vm_launch(vm, flags, image_def ? image_def : vm->def, err);
        if (r < 0) {
                vm_image_release(vm, false);
                if (vm->pid == 0) {
                        domain_free(vm->live);
                        vm->live = NULL;
                }
        }
        return r;
}

static void release_job(struct vm *vm, struct tt_error *err)
{
        vm->job = NULL;
        vm->done = NULL;
        vm->done_opaque = NULL;
        if (err && err->code < VM_ERR_NO_DOMAIN)
                err->code = VM_ERR_FAILED;
}

int vm_start(struct vm *vm, unsigned flags, vm_done_fn done, void *opaque, struct tt_error *err)
{
        struct store *st = &vm->d->store;
        _cleanup_free_ char *managed = store_managed_save_path(st, vm->def->name);
        struct saveimage *img = NULL;
        int fd = -1;

        if (vm_begin_job(vm, "start", VM_EV_LAUNCH, done, opaque, err) < 0)
                return -1;
        if (managed && store_has_managed_save(st, vm->def->name)) {
                struct tt_error ierr = {0};

                if (flags & VM_START_FORCE_BOOT) {
                        /* virsh start --force-boot discards the managed-save image. */
                        unlink(managed);
                } else if ((img = calloc(1, sizeof(*img))) == NULL) {
                        release_job(vm, err);
                        return tt_error_set(err, VM_ERR_FAILED, "out of memory");
                } else if ((fd = saveimage_open(managed, img, &ierr)) < 0) {
                        /* libvirt too boots afresh when the managed image is unusable. */
                        tt_warn("%s: removing unusable managed-save image: %s", vm->def->name,
                                ierr.msg);
                        unlink(managed);
                        free(img);
                        img = NULL;
                }
                tt_error_clear(&ierr);
        }
        if (vm_launch_job(vm, flags, fd, img, managed, true, err) < 0) {
                release_job(vm, err);
                return -1;
        }
        return 0;
}

/* ---- define, undefine, create ---- */

static int check_unique(struct tetherd *d, const struct domain *def, struct vm *self,
                        struct tt_error *err)
{
        for (struct vm *vm = d->vms; vm; vm = vm->next) {
                if (vm == self)
                        continue;
                if (strcmp(vm->def->name, def->name) == 0)
                        return tt_error_set(err, VM_ERR_EXISTS,
                                            "operation failed: domain '%s' already exists with "
                                            "uuid %s",
                                            def->name, vm->def->uuid);
                if (strcmp(vm->def->uuid, def->uuid) == 0)
                        return tt_error_set(err, VM_ERR_EXISTS,
                                            "operation failed: domain '%s' is already defined "
                                            "with uuid %s",
                                            vm->def->name, def->uuid);
        }
        return 0;
}

static struct domain *parse_def(const char *xml, struct tt_error *err)
{
        struct domain *def = domain_parse(xml, strlen(xml), err);

        if (def == NULL && err)
                err->code = VM_ERR_CONFIG;
        return def;
}

int vm_define(struct tetherd *d, const char *xml, struct vm **out, struct tt_error *err)
{
        struct domain *def = parse_def(xml, err);
        _cleanup_free_ char *text = NULL;
        struct vm *vm = NULL;

        if (def == NULL)
                return -1;
        /* Redefining an existing domain (same name and uuid) replaces its definition. */
        for (struct vm *v = d->vms; v; v = v->next)
                if (strcmp(v->def->name, def->name) == 0 && strcmp(v->def->uuid, def->uuid) == 0)
                        vm = v;
        if (check_unique(d, def, vm, err) < 0) {
                domain_free(def);
                return -1;
        }
        text = domain_format(def);
        if (text == NULL || store_save_def(&d->store, def->name, text, err) < 0) {
                domain_free(def);
                return -1;
        }
        if (vm) {
                domain_free(vm->def);
                vm->def = def;
                vm->persistent = true;
        } else {
                vm = vm_new(d, def, true);
                if (vm == NULL) {
                        domain_free(def);
                        return tt_error_set(err, ENOMEM, "out of memory");
                }
        }
        if (out)
                *out = vm;
        return 0;
}

int vm_undefine(struct vm *vm, bool managed_save, struct tt_error *err)
{
        struct store *st = &vm->d->store;

        if (!vm->persistent)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: cannot undefine transient "
                                    "domain");
        if (vm->job)
                return tt_error_set(err, VM_ERR_BUSY, "domain %s is busy: %s", vm->def->name,
                                    vm->job);
        if (store_has_managed_save(st, vm->def->name)) {
                _cleanup_free_ char *path = store_managed_save_path(st, vm->def->name);

                if (!managed_save)
                        return tt_error_set(err, VM_ERR_INVALID_OP,
                                            "Requested operation is not valid: Refusing to "
                                            "undefine while domain managed save image exists");
                if (path)
                        unlink(path);
        }
        if (store_delete_def(st, vm->def->name, err) < 0)
                return -1;
        store_set_autostart(st, vm->def->name, false, NULL);
        vm->autostart = false;
        if (vm_state_is_active(vm->status.state)) {
                vm->persistent = false; /* a running domain becomes transient */
                vm_save_status(vm);
                return 0;
        }
        vm_unlink_free(vm);
        return 0;
}

int vm_create(struct tetherd *d, const char *xml, unsigned flags, vm_done_fn done, void *opaque,
              struct tt_error *err)
{
        struct domain *def = parse_def(xml, err);
        struct vm *vm;

        if (def == NULL)
                return -1;
        if (check_unique(d, def, NULL, err) < 0) {
                domain_free(def);
                return -1;
        }
        vm = vm_new(d, def, false);
        if (vm == NULL) {
                domain_free(def);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        if (vm_start(vm, flags, done, opaque, err) < 0) {
                vm_unlink_free(vm);
                return -1;
        }
        return 0;
}

int vm_set_autostart(struct vm *vm, bool on, struct tt_error *err)
{
        if (!vm->persistent)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: cannot set autostart for "
                                    "transient domain");
        if (store_set_autostart(&vm->d->store, vm->def->name, on, err) < 0)
                return -1;
        vm->autostart = on;
        return 0;
}

/* ---- destroy ---- */

static bool pid_alive(pid_t pid)
{
        return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static void destroy_tick(evutil_socket_t fd, short what, void *opaque)
{
        struct vm *vm = opaque;
        struct timeval tv = {0, 100000};

        vm->kill_ticks++;
        if (vm->is_child)
                waitpid(vm->pid, NULL, WNOHANG);
        if (!pid_alive(vm->pid)) {
                /* Gone without a monitor EOF (e.g. the monitor was never connected). */
                vm_finish_stop(vm, VM_EV_DESTROYED);
                return;
        }
        if (vm->graceful && vm->kill_ticks >= VM_GRACEFUL_TICKS) {
                char msg[200];

                vm->destroying = false;
                snprintf(msg, sizeof(msg),
                         "operation failed: failed to terminate process %d with SIGTERM: "
                         "Device or resource busy",
                         (int)vm->pid);
                vm_end_job_error(vm, VM_ERR_FAILED, msg);
                return;
        }
        if (!vm->graceful && vm->kill_ticks == VM_KILL_TICKS)
                kill(vm->pid, SIGKILL);
        evtimer_add(vm->timer, &tv);
}

/* Kill QEMU; the job "destroy" (whose caller is already set) ends when it is gone. */
static void destroy_begin(struct vm *vm, bool graceful)
{
        struct timeval tv = {0, 100000};

        vm_power_release(vm);
        vm->job = "destroy";
        vm->destroying = true;
        vm->graceful = graceful;
        vm->kill_ticks = 0;
        kill(vm->pid, SIGTERM);
        if (vm->timer == NULL)
                vm->timer = evtimer_new(vm->d->base, destroy_tick, vm);
        evtimer_add(vm->timer, &tv);
}

int vm_destroy(struct vm *vm, bool graceful, vm_done_fn done, void *opaque,
               struct tt_error *err)
{
        /* destroy overrides a running start, restore or shutdown, as virsh destroy does. */
        if (vm->job && !job_is_launch(vm->job) && strcmp(vm->job, "shutdown") != 0 &&
            strcmp(vm->job, "reboot") != 0)
                return tt_error_set(err, VM_ERR_BUSY, "domain %s is busy: %s", vm->def->name,
                                    vm->job);
        if (!vm_state_is_active(vm->status.state))
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: domain is not running");
        if (vm->job)
                vm_end_job_error(vm, VM_ERR_FAILED, "operation was interrupted by destroy");
        vm->done = done;
        vm->done_opaque = opaque;
        destroy_begin(vm, graceful);
        return 0;
}

/* ---- simple QMP operations ---- */

struct simple_op {
        const char *job;        /* job name while it runs */
        const char *qmp;        /* QMP command */
        enum vm_event check;    /* transition that must be valid before */
        enum vm_event after;    /* transition applied on success, or VM_EV_LAST for none */
};

static const struct simple_op simple_ops[] = {
        {"suspend", "stop", VM_EV_SUSPEND, VM_EV_SUSPEND},
        {"resume", "cont", VM_EV_RESUME, VM_EV_RESUME},
        {"reset", "system_reset", VM_EV_RESET, VM_EV_RESET},
};

struct simple_call {
        struct vm *vm;               /* the domain */
        const struct simple_op *op;  /* what runs */
};

static void simple_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct simple_call *c = opaque;
        struct vm *vm = c->vm;

        if (err == NULL && c->op->after != VM_EV_LAST)
                vm_apply(vm, c->op->after, NULL);
        free(c);
        vm_end_job(vm, err ? NULL : ret, err);
}

static int simple(struct vm *vm, const struct simple_op *op, vm_done_fn done, void *opaque,
                  struct tt_error *err)
{
        struct simple_call *c;

        if (vm_begin_job(vm, op->job, op->check, done, opaque, err) < 0)
                return -1;
        c = calloc(1, sizeof(*c));
        if (c == NULL || qmp_command(vm->qmp, op->qmp, NULL, VM_QMP_TIMEOUT_MS, simple_done,
                                     (c->vm = vm, c->op = op, c)) < 0) {
                free(c);
                vm->job = NULL;
                vm->done = NULL;
                return tt_error_set(err, VM_ERR_FAILED, "cannot talk to QEMU for %s", op->job);
        }
        return 0;
}

int vm_suspend(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        return simple(vm, &simple_ops[0], done, opaque, err);
}

int vm_resume(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        return simple(vm, &simple_ops[1], done, opaque, err);
}

int vm_reset(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        return simple(vm, &simple_ops[2], done, opaque, err);
}

/* ---- shutdown and reboot: the ACPI button or the guest agent, optionally waiting ---- */

/* A small asynchronous guest agent client: guest-sync-delimited, then guest-shutdown. */
struct vm_agent {
        struct vm *vm;                  /* owner */
        struct bufferevent *bev;        /* the agent's chardev socket */
        struct wire_splitter *splitter; /* framing of the agent's replies */
        struct event *timer;            /* deadline of the sync handshake */
        long long sync_id;              /* id sent with guest-sync-delimited */
        bool synced;                    /* the handshake answered */
        const char *mode;               /* guest-shutdown mode: "powerdown" or "reboot" */
        char *error;                    /* an error reply, handled after the feed loop */
};

static void vm_agent_free(struct vm_agent *a)
{
        if (a == NULL)
                return;
        if (a->bev)
                bufferevent_free(a->bev);
        if (a->timer)
                event_free(a->timer);
        wire_splitter_free(a->splitter);
        free(a->error);
        free(a);
}

static const char *power_verb(const struct vm *vm)
{
        return strcmp(vm->job, "reboot") == 0 ? "reboot" : "shut down";
}

/* The guest did not do what it was asked in time. */
static void power_timeout(evutil_socket_t fd, short what, void *opaque)
{
        struct vm *vm = opaque;
        bool agent = vm->shutdown.mode == VM_POWER_AGENT;
        char msg[400];

        if (vm->job == NULL)
                return;
        if (strcmp(vm->job, "shutdown") == 0 && vm->shutdown.force) {
                tt_warn("%s: did not shut down within %d s; destroying it", vm->def->name,
                        vm->shutdown.timeout_s);
                destroy_begin(vm, false); /* the shutdown's caller gets the destroy's reply */
                return;
        }
        snprintf(msg, sizeof(msg), "domain %s did not %s within %d s: %s", vm->def->name,
                 power_verb(vm), vm->shutdown.timeout_s,
                 agent ? (vm->await_event ? "the guest agent accepted guest-shutdown but the "
                                            "guest did not act on it"
                                          : "the guest did not power off after the agent's "
                                            "shutdown")
                       : "the guest ignored the ACPI power button (no acpid in the guest?); "
                         "use --mode agent, --force or destroy");
        vm_power_release(vm);
        vm_end_job_error(vm, VM_ERR_FAILED, msg);
}

static void power_arm(struct vm *vm, int seconds)
{
        struct timeval tv = {seconds, 0};

        if (vm->wait_timer == NULL)
                vm->wait_timer = evtimer_new(vm->d->base, power_timeout, vm);
        evtimer_add(vm->wait_timer, &tv);
}

/* The guest has been asked (system_powerdown answered, or guest-shutdown sent). */
static void power_requested(struct vm *vm)
{
        _cleanup_json_ json_t *ret = NULL;

        vm->power_sent = true;
        if (vm->await_event || (strcmp(vm->job, "shutdown") == 0 && vm->shutdown.wait)) {
                power_arm(vm, vm->shutdown.timeout_s);
                return;
        }
        vm_power_release(vm);
        ret = json_pack("{s:s}", "name", vm->def->name);
        vm_end_job(vm, ret, NULL);
}

/* SHUTDOWN or RESET after guest-shutdown: the agent request is done. */
static void vm_agent_event(struct vm *vm)
{
        _cleanup_json_ json_t *ret = NULL;

        vm->await_event = NULL;
        vm_agent_free(vm->agent);
        vm->agent = NULL;
        if (vm->job && strcmp(vm->job, "shutdown") == 0 && vm->shutdown.wait)
                return; /* keep waiting for shut off, under the same deadline */
        vm_power_release(vm);
        ret = json_pack("{s:s}", "name", vm->def->name);
        vm_end_job(vm, ret, NULL);
}

static void agent_fail(struct vm *vm, const char *why)
{
        char msg[400];

        snprintf(msg, sizeof(msg), "Guest agent is not responding: %s", why);
        vm_power_release(vm);
        vm_end_job_error(vm, VM_ERR_FAILED, msg);
}

static void agent_sync_timeout(evutil_socket_t fd, short what, void *opaque)
{
        struct vm_agent *a = opaque;
        char why[128];

        snprintf(why, sizeof(why), "no answer to guest-sync-delimited within %d s",
                 VM_AGENT_SYNC_MS / 1000);
        agent_fail(a->vm, why);
}

static int agent_send(struct vm_agent *a, const char *prefix, json_t *msg)
{
        _cleanup_free_ char *text = wire_dumps(msg);

        json_decref(msg);
        if (text == NULL || bufferevent_write(a->bev, prefix, strlen(prefix)) < 0 ||
            bufferevent_write(a->bev, text, strlen(text)) < 0 ||
            bufferevent_write(a->bev, "\n", 1) < 0)
                return -EIO;
        return 0;
}

static int agent_on_message(void *opaque, json_t *msg, const struct tt_error *perr)
{
        struct vm_agent *a = opaque;
        _owns_json_ json_t *owned = msg;
        json_t *error;

        /* The 0xFF delimiter and stale bytes before it arrive as parse errors: skip them. */
        if (msg == NULL)
                return 0;
        if (!a->synced) {
                if (json_integer_value(json_object_get(msg, "return")) != a->sync_id)
                        return 0;
                a->synced = true;
                evtimer_del(a->timer);
                if (agent_send(a, "", json_pack("{s:s, s:{s:s}}", "execute", "guest-shutdown",
                                                 "arguments", "mode", a->mode)) < 0) {
                        a->error = strdup("cannot send guest-shutdown");
                        return -1;
                }
                /* guest-shutdown answers nothing on success: its QMP event is the answer. */
                power_requested(a->vm);
                return 0;
        }
        error = json_object_get(msg, "error");
        if (error) {
                const char *desc = json_string_value(json_object_get(error, "desc"));

                if (asprintf(&a->error, "guest-shutdown failed: %s", desc ? desc : "?") < 0)
                        a->error = NULL;
                return -1;
        }
        return 0;
}

static void agent_read(struct bufferevent *bev, void *opaque)
{
        struct vm_agent *a = opaque;
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t len;

        while ((len = evbuffer_get_contiguous_space(in)) > 0) {
                int r = wire_splitter_feed(a->splitter, evbuffer_pullup(in, (ssize_t)len), len,
                                           agent_on_message, a);

                evbuffer_drain(in, len);
                if (r < 0)
                        break;
        }
        if (a->error) {
                char msg[400];
                struct vm *vm = a->vm;

                snprintf(msg, sizeof(msg), "%s", a->error);
                vm_power_release(vm); /* frees a */
                vm_end_job_error(vm, VM_ERR_FAILED, msg);
        }
}

static void agent_event(struct bufferevent *bev, short what, void *opaque)
{
        struct vm_agent *a = opaque;

        if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
                return;
        if (!a->synced) {
                agent_fail(a->vm, "the agent connection closed");
                return;
        }
        /* After guest-shutdown the guest going away may close it: the QMP event decides. */
        bufferevent_disable(bev, EV_READ);
}

/* The socket of the agent channel, or NULL when the domain has none. */
static char *agent_socket_path(struct vm *vm)
{
        for (size_t i = 0; vm->live && i < vm->live->n_channels; i++) {
                const struct domain_channel *c = &vm->live->channels[i];

                if (c->name && strcmp(c->name, DOMAIN_AGENT_CHANNEL) != 0)
                        continue;
                return c->path ? strdup(c->path)
                               : store_run_path(&vm->d->store, vm->def->name, "agent.sock");
        }
        return NULL;
}

/* Connect to the agent and start the handshake; guest-shutdown follows when it answers. */
static int agent_begin(struct vm *vm, const char *mode, struct tt_error *err)
{
        _cleanup_free_ char *path = agent_socket_path(vm);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct timeval tv = {VM_AGENT_SYNC_MS / 1000, (VM_AGENT_SYNC_MS % 1000) * 1000};
        struct vm_agent *a;
        int fd;

        if (path == NULL)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "argument unsupported: QEMU guest agent is not configured "
                                    "(no <channel> named %s)",
                                    DOMAIN_AGENT_CHANNEL);
        if (strlen(path) >= sizeof(sa.sun_path))
                return tt_error_set(err, VM_ERR_FAILED, "agent socket path too long");
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return tt_error_errno(err, errno, "socket");
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;

                close(fd);
                return tt_error_set(err, VM_ERR_FAILED,
                                    "Guest agent is not responding: cannot connect to '%s': %s",
                                    path, strerror(e));
        }
        a = calloc(1, sizeof(*a));
        if (a == NULL) {
                close(fd);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        a->vm = vm;
        a->mode = mode;
        a->sync_id = (long long)(random() & 0x7fffffff) + 1;
        a->splitter = wire_splitter_new();
        a->bev = bufferevent_socket_new(vm->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
        a->timer = evtimer_new(vm->d->base, agent_sync_timeout, a);
        if (a->bev == NULL)
                close(fd);
        if (a->bev == NULL || a->splitter == NULL || a->timer == NULL) {
                vm_agent_free(a);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        wire_splitter_set_limits(a->splitter, 1 << 20, 0, 64);
        bufferevent_setcb(a->bev, agent_read, NULL, agent_event, a);
        bufferevent_enable(a->bev, EV_READ | EV_WRITE);
        /* 0xFF first: the agent drops any partial input it still holds (qga-protocol.md). */
        if (agent_send(a, "\xff", json_pack("{s:s, s:{s:I}}", "execute", "guest-sync-delimited",
                                            "arguments", "id", (json_int_t)a->sync_id)) < 0) {
                vm_agent_free(a);
                return tt_error_set(err, VM_ERR_FAILED, "cannot write to the guest agent");
        }
        evtimer_add(a->timer, &tv);
        vm->agent = a;
        return 0;
}

static void powerdown_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;

        if (vm->job == NULL)
                return;
        if (err) {
                vm->fake_reboot = false;
                vm_power_release(vm);
                vm_end_job(vm, NULL, err);
                return;
        }
        power_requested(vm);
}

static int power_begin(struct vm *vm, const char *job, enum vm_event check,
                       const struct vm_shutdown_opts *o, vm_done_fn done, void *opaque,
                       struct tt_error *err)
{
        bool reboot = strcmp(job, "reboot") == 0;

        if (vm_begin_job(vm, job, check, done, opaque, err) < 0)
                return -1;
        vm->shutdown = *o;
        if (o->mode == VM_POWER_ACPI && vm->live && !vm->live->acpi) {
                /* QEMU accepts system_powerdown and nothing happens: say so now. */
                release_job(vm, NULL);
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: domain %s has no ACPI "
                                    "(<features><acpi/>), so the guest cannot see the power "
                                    "button; use --mode agent or destroy",
                                    vm->def->name);
        }
        if (o->mode == VM_POWER_AGENT) {
                vm->await_event = reboot ? "RESET" : "SHUTDOWN";
                if (agent_begin(vm, reboot ? "reboot" : "powerdown", err) < 0) {
                        vm->await_event = NULL;
                        release_job(vm, NULL);
                        return -1;
                }
                return 0;
        }
        if (qmp_command(vm->qmp, "system_powerdown", NULL, VM_QMP_TIMEOUT_MS, powerdown_done,
                        vm) < 0) {
                release_job(vm, NULL);
                return tt_error_set(err, VM_ERR_FAILED, "cannot talk to QEMU for %s", job);
        }
        vm->fake_reboot = reboot;
        return 0;
}

int vm_shutdown(struct vm *vm, const struct vm_shutdown_opts *o, vm_done_fn done, void *opaque,
                struct tt_error *err)
{
        struct vm_shutdown_opts opts = *o;

        if (opts.timeout_s <= 0)
                opts.timeout_s = opts.wait ? VM_SHUTDOWN_WAIT_S : VM_AGENT_EVENT_S;
        return power_begin(vm, "shutdown", VM_EV_SHUTDOWN, &opts, done, opaque, err);
}

int vm_reboot(struct vm *vm, enum vm_power_mode mode, vm_done_fn done, void *opaque,
              struct tt_error *err)
{
        struct vm_shutdown_opts opts = {.mode = mode, .timeout_s = VM_AGENT_EVENT_S};

        return power_begin(vm, "reboot", VM_EV_REBOOT, &opts, done, opaque, err);
}

/* ---- save, managedsave and restore: QEMU's migration stream in a Tether save image ---- */

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
                    qmp_command(vm->qmp, "cont", NULL, VM_QMP_TIMEOUT_MS, reply_ignore, vm) == 0)
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

/* The stream is in the file: complete the header and let QEMU go. */
static void save_completed(struct vm *vm)
{
        struct tt_error err = {0};

        if (saveimage_finish(vm->image_fd, vm->image, &err) < 0) {
                save_fail(vm, err.msg);
                tt_error_clear(&err);
                return;
        }
        tt_info("%s: saved %llu bytes of state to %s", vm->def->name,
                (unsigned long long)vm->image->data_len, vm->image_path);
        vm->saved = true;
        close(vm->image_fd);
        vm->image_fd = -1;
        if (qmp_command(vm->qmp, "quit", NULL, VM_QMP_TIMEOUT_MS, save_quit_done, vm) < 0)
                kill(vm->pid, SIGKILL);
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
static void restore_begin(struct vm *vm)
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
                    VM_QMP_TIMEOUT_MS, reply_ignore, vm);
        if (qmp_command_fd(vm->qmp, "getfd", json_pack("{s:s}", "fdname", "tether-save"),
                           vm->image_fd, VM_QMP_TIMEOUT_MS, getfd_done, vm) < 0)
                save_fail(vm, "cannot pass the save image to QEMU");
}

int vm_save(struct vm *vm, const char *path, vm_done_fn done, void *opaque,
            struct tt_error *err)
{
        bool managed = path == NULL;
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
                release_job(vm, NULL);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        fd = saveimage_create(target, xml, vm->was_running ? SAVEIMAGE_WAS_RUNNING : 0, img,
                              err);
        if (fd < 0) {
                free(img);
                release_job(vm, err);
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
                release_job(vm, NULL);
                return tt_error_set(err, VM_ERR_FAILED, "cannot talk to QEMU for save");
        }
        return 0;
}

int vm_restore(struct tetherd *d, const char *path, bool paused, vm_done_fn done, void *opaque,
               struct tt_error *err)
{
        struct saveimage *img = calloc(1, sizeof(*img));
        _cleanup_domain_ struct domain *def = NULL;
        struct vm *vm = NULL;
        bool created = false;
        int fd;

        if (img == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        /* Everything about the file is checked before any QEMU starts. */
        fd = saveimage_open(path, img, err);
        if (fd < 0) {
                free(img);
                if (err && err->code == EINVAL)
                        err->code = VM_ERR_INVALID_OP;
                return -1;
        }
        def = domain_parse(img->xml, strlen(img->xml), err);
        if (def == NULL)
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
                release_job(vm, err);
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

/* ---- QMP passthrough, screenshots and graphics ---- */

struct vm_call {
        vm_done_fn done;    /* the caller */
        void *opaque;       /* its argument */
        struct vm *vm;      /* the domain (screenshots read a file afterwards) */
        char *path;         /* screenshot file */
};

static void passthrough_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm_call *c = opaque;
        _cleanup_json_ json_t *out = NULL;

        if (err == NULL)
                out = json_pack("{s:O}", "return", ret);
        c->done(c->opaque, out, err);
        free(c);
}

static bool vm_has_qmp(struct vm *vm, struct tt_error *err)
{
        if (vm_state_is_active(vm->status.state) && vm->qmp)
                return true;
        tt_error_set(err, VM_ERR_INVALID_OP,
                     "Requested operation is not valid: domain is not running");
        return false;
}

int vm_qmp_passthrough(struct vm *vm, json_t *cmd, vm_done_fn done, void *opaque,
                       struct tt_error *err)
{
        const char *execute = json_string_value(json_object_get(cmd, "execute"));
        json_t *args = json_object_get(cmd, "arguments");
        struct vm_call *c;

        if (!vm_has_qmp(vm, err))
                return -1;
        if (execute == NULL || (args && !json_is_object(args)))
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: expected {\"execute\": "
                                    "NAME[, \"arguments\": {...}]}");
        c = calloc(1, sizeof(*c));
        if (c == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        c->done = done;
        c->opaque = opaque;
        if (qmp_command(vm->qmp, execute, json_incref(args), VM_QMP_TIMEOUT_MS,
                        passthrough_done, c) < 0) {
                free(c);
                return tt_error_set(err, VM_ERR_FAILED, "cannot talk to QEMU");
        }
        return 0;
}

static void screendump_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm_call *c = opaque;
        _cleanup_free_ char *data = NULL, *b64 = NULL;
        _cleanup_json_ json_t *out = NULL;
        struct tt_error rerr = {0};
        size_t len = 0;

        if (err) {
                c->done(c->opaque, NULL, err);
        } else if (tt_read_file(c->path, VM_SCREENSHOT_MAX, &data, &len, &rerr) < 0) {
                rerr.code = VM_ERR_FAILED;
                c->done(c->opaque, NULL, &rerr);
        } else if ((b64 = malloc(tt_base64_encoded_len(len) + 1)) == NULL) {
                tt_error_set(&rerr, ENOMEM, "out of memory");
                c->done(c->opaque, NULL, &rerr);
        } else {
                b64[tt_base64_encode(data, len, b64)] = '\0';
                out = json_pack("{s:s, s:s}", "mime", "image/png", "data", b64);
                c->done(c->opaque, out, NULL);
        }
        tt_error_clear(&rerr);
        unlink(c->path);
        free(c->path);
        free(c);
}

int vm_screenshot(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        static unsigned seq;
        struct vm_call *c;
        char file[64];

        if (!vm_has_qmp(vm, err))
                return -1;
        if (vm->live && vm->live->n_videos > 0 && vm->live->videos[0].model == DOMAIN_VIDEO_NONE)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: domain has no video "
                                    "device");
        c = calloc(1, sizeof(*c));
        if (c == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        c->done = done;
        c->opaque = opaque;
        c->vm = vm;
        /* QEMU writes the PNG itself (format png, QEMU >= 7.1); we ship it to the client. */
        snprintf(file, sizeof(file), "screenshot-%u.png", ++seq);
        c->path = store_run_path(&vm->d->store, vm->def->name, file);
        if (c->path == NULL ||
            qmp_command(vm->qmp, "screendump",
                        json_pack("{s:s, s:s}", "filename", c->path, "format", "png"),
                        VM_QMP_TIMEOUT_MS, screendump_done, c) < 0) {
                free(c->path);
                free(c);
                return tt_error_set(err, VM_ERR_FAILED, "cannot talk to QEMU for screendump");
        }
        return 0;
}

json_t *vm_graphics(struct vm *vm, struct tt_error *err)
{
        json_t *list;

        if (!vm_state_is_active(vm->status.state) || vm->live == NULL) {
                tt_error_set(err, VM_ERR_INVALID_OP,
                             "Requested operation is not valid: domain is not running");
                return NULL;
        }
        list = json_array();
        for (size_t i = 0; list && i < vm->live->n_graphics; i++) {
                const struct domain_graphics *g = &vm->live->graphics[i];

                json_array_append_new(
                        list, json_pack("{s:s, s:s, s:i, s:b}", "type",
                                        g->type == DOMAIN_GRAPHICS_VNC ? "vnc" : "spice",
                                        "listen", g->listen ? g->listen : "127.0.0.1", "port",
                                        g->port, "passwd", g->passwd != NULL));
        }
        return list;
}

/* ---- describing ---- */

json_t *vm_describe(struct vm *vm)
{
        const struct domain *def = vm->live ? vm->live : vm->def;

        return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s?, s:b, s:b, s:b, s:i, s:I, s:I, s:s}",
                         "id", vm->id, "name", def->name, "uuid", def->uuid, "state",
                         vm_state_name(vm->status.state), "reason",
                         vm_state_reason_name(vm->status.state, vm->status.reason)
                                 ?: "unknown",
                         "title", def->title, "persistent", vm->persistent, "autostart",
                         vm->autostart, "managed_save",
                         store_has_managed_save(&vm->d->store, def->name), "vcpus",
                         (int)def->vcpus, "max_memory_kib", (json_int_t)def->memory_kib,
                         "used_memory_kib", (json_int_t)def->current_memory_kib, "os_type",
                         "hvm");
}

/* ---- loading and reconnecting ---- */

static void reconnect_status_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm *vm = opaque;
        const char *status = json_string_value(json_object_get(ret, "status"));

        if (err || status == NULL)
                return;
        /* QEMU is the truth for running versus paused after a daemon restart. */
        if (strcmp(status, "running") == 0 && vm->status.state == VM_STATE_PAUSED)
                vm_apply(vm, VM_EV_QMP_RESUME, NULL);
        else if (strcmp(status, "paused") == 0 && vm->status.state == VM_STATE_RUNNING)
                vm_apply(vm, VM_EV_QMP_STOP, NULL);
}

/* Does pid still run QEMU for this domain (not a recycled pid)? */
static bool is_our_qemu(pid_t pid, const char *name)
{
        char path[64], want[300];
        _cleanup_free_ char *cmdline = NULL;
        size_t len = 0;

        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        if (tt_read_file(path, 1 << 20, &cmdline, &len, NULL) < 0)
                return false;
        snprintf(want, sizeof(want), "guest=%s,", name);
        for (size_t i = 0; i < len; i += strlen(cmdline + i) + 1)
                if (strncmp(cmdline + i, want, strlen(want)) == 0)
                        return true;
        return false;
}

/* The status file's fields, all checked; false when anything is missing or out of range. */
static bool status_fields(json_t *st, struct vm_status *status, pid_t *pid, int *id)
{
        json_t *js = json_object_get(st, "state"), *jr = json_object_get(st, "reason");
        json_t *jp = json_object_get(st, "pid"), *ji = json_object_get(st, "id");
        json_int_t state, reason, p, i;

        if (!json_is_integer(js) || !json_is_integer(jr) || !json_is_integer(jp) ||
            !json_is_integer(ji))
                return false;
        state = json_integer_value(js);
        reason = json_integer_value(jr);
        p = json_integer_value(jp);
        i = json_integer_value(ji);
        if (state <= VM_STATE_NOSTATE || state >= VM_STATE_LAST ||
            !vm_state_is_active((enum vm_state)state) || reason < 0 || reason > 100 ||
            vm_state_reason_name((enum vm_state)state, (int)reason) == NULL || p <= 1 ||
            p > INT32_MAX || i < 1 || i > INT32_MAX)
                return false;
        *status = (struct vm_status){(enum vm_state)state, (int)reason};
        *pid = (pid_t)p;
        *id = (int)i;
        return true;
}

/* The pid QEMU wrote to ROOT/run/tether/domains/NAME/qemu.pid, or 0. */
static pid_t run_pidfile(struct tetherd *d, const char *name)
{
        _cleanup_free_ char *path = store_run_path(&d->store, name, "qemu.pid");
        _cleanup_free_ char *text = path ? tt_read_line_file(path) : NULL;
        int64_t pid = 0;

        if (text == NULL || tt_parse_int64(text, 10, &pid) < 0 || pid <= 1 || pid > INT32_MAX)
                return 0;
        return (pid_t)pid;
}

/*
 * Nothing usable is left of a running domain's run folder: kill its QEMU (only when the pid
 * really runs QEMU for this domain) rather than leave it running unmanaged, where a later start
 * would run a second QEMU on the same disks. libvirt does the same: shut off (daemon).
 */
static void reconnect_abandon(struct tetherd *d, const char *name, pid_t pid, const char *why)
{
        struct vm *vm = vm_lookup(d, name, NULL);

        if (pid > 0 && pid_alive(pid) && is_our_qemu(pid, name)) {
                tt_warn("%s: %s; killing its QEMU (pid %d)", name, why, (int)pid);
                kill(pid, SIGKILL);
                if (vm && !vm_state_is_active(vm->status.state)) {
                        vm->status = (struct vm_status){VM_STATE_RUNNING, VM_RUNNING_UNKNOWN};
                        vm_stopped(vm, VM_EV_RECONNECT_KILLED);
                        return;
                }
        } else {
                tt_warn("%s: %s; its QEMU is gone", name, why);
        }
        store_remove_run(&d->store, name);
}

static void vm_reconnect(struct tetherd *d, const char *name)
{
        struct tt_error err = {0};
        _cleanup_json_ json_t *st = store_load_status(&d->store, name, &err);
        _cleanup_free_ char *xml_path = store_run_path(&d->store, name, "domain.xml");
        _cleanup_free_ char *qmp_path = store_run_path(&d->store, name, "qmp.sock");
        struct vm_status status = {VM_STATE_RUNNING, VM_RUNNING_UNKNOWN};
        struct domain *live;
        struct vm *vm;
        pid_t pid = 0;
        int id = 0;

        if (st == NULL || !status_fields(st, &status, &pid, &id)) {
                /* Fall back to QEMU's own pidfile; QEMU tells us running or paused below. */
                tt_warn("%s: status file %s; recovering from the pidfile", name,
                        st ? "is invalid" : "is unreadable");
                pid = run_pidfile(d, name);
                status = (struct vm_status){VM_STATE_RUNNING, VM_RUNNING_UNKNOWN};
                id = 0;
        }
        tt_error_clear(&err);
        live = xml_path ? domain_parse_file(xml_path, &err) : NULL;
        if (live == NULL) {
                reconnect_abandon(d, name, pid, "its live definition is unreadable");
                tt_error_clear(&err);
                return;
        }
        vm = vm_lookup(d, name, NULL);
        if (vm == NULL) {
                struct domain *def = domain_copy(live, &err);

                vm = def ? vm_new(d, def, false) : NULL;
                if (vm == NULL) {
                        domain_free(live);
                        reconnect_abandon(d, name, pid, "out of memory");
                        tt_error_clear(&err);
                        return;
                }
        }
        vm->live = live;
        {
                json_t *ports = json_object_get(st, "graphics_ports");

                for (size_t i = 0; i < live->n_graphics && i < json_array_size(ports); i++)
                        live->graphics[i].port =
                                (int)json_integer_value(json_array_get(ports, i));
        }
        /* id 0: a new one is given once every domain has reconnected (no collisions). */
        vm->id = id;
        if (vm->id >= d->next_id)
                d->next_id = vm->id + 1;
        vm->status = status;
        vm->pid = pid;
        vm->is_child = false;
        if (!pid_alive(pid) || !is_our_qemu(pid, name)) {
                /* QEMU died while we were away. */
                vm->pid = 0;
                vm_stopped(vm, VM_EV_RECONNECT_GONE);
                if (!vm->persistent)
                        vm_unlink_free(vm);
                return;
        }
        vm->qmp = qmp_new(d->base, &vm_qmp_callbacks, vm);
        if (vm->qmp == NULL || qmp_connect(vm->qmp, qmp_path, &err) < 0) {
                tt_warn("%s: cannot reconnect to QEMU (%s); killing it", name, err.msg);
                kill(pid, SIGKILL);
                vm_stopped(vm, VM_EV_RECONNECT_KILLED);
                tt_error_clear(&err);
                return;
        }
        qmp_command(vm->qmp, "query-status", NULL, VM_QMP_TIMEOUT_MS, reconnect_status_done, vm);
        tt_info("%s: reconnected to QEMU pid %d", name, (int)pid);
}

static void autostart_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        if (err)
                tt_err("autostart failed: %s", err->msg);
}

int vm_load_all(struct tetherd *d, struct tt_error *err)
{
        char **names = store_list_defs(&d->store, err);
        char **running;

        if (names == NULL)
                return -1;
        d->next_id = 1;
        for (size_t i = 0; names[i]; i++) {
                _cleanup_free_ char *path = store_def_path(&d->store, names[i]);
                struct tt_error perr = {0};
                struct domain *def = path ? domain_parse_file(path, &perr) : NULL;
                struct vm *vm;

                if (def == NULL) {
                        tt_err("%s: ignoring definition: %s", names[i], perr.msg);
                        tt_error_clear(&perr);
                        continue;
                }
                vm = vm_new(d, def, true);
                if (vm)
                        vm->autostart = store_get_autostart(&d->store, def->name);
        }
        store_strv_free(names);
        running = store_list_running(&d->store, err);
        if (running == NULL)
                return -1;
        for (size_t i = 0; running[i]; i++)
                vm_reconnect(d, running[i]);
        store_strv_free(running);
        for (struct vm *vm = d->vms; vm; vm = vm->next) {
                if (vm_state_is_active(vm->status.state) && vm->id == 0) {
                        vm->id = d->next_id++;
                        vm_save_status(vm);
                }
        }
        for (struct vm *vm = d->vms; vm; vm = vm->next) {
                struct tt_error serr = {0};

                if (vm->autostart && !vm_state_is_active(vm->status.state) &&
                    vm_start(vm, 0, autostart_done, NULL, &serr) < 0) {
                        tt_err("%s: autostart failed: %s", vm->def->name, serr.msg);
                        tt_error_clear(&serr);
                }
        }
        return 0;
}
