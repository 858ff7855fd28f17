/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A domain and its QEMU process. Every state change goes through vm_state_apply() (the one
 * transition table) and is persisted in the domain's status file, so a restarted tetherd
 * reconnects and reports the same states. Operations are asynchronous: each finishes by calling
 * its vm_done_fn exactly once, and one job per domain runs at a time ("domain X is busy: job").
 */
#ifndef TT_HOST_VM_H
#define TT_HOST_VM_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include "common/tt_error.h"
#include "host/domain.h"
#include "host/tetherd.h"
#include "host/vm_state.h"

struct qmp;
struct event;

/* Error codes that the control API maps to its error classes. */
enum vm_error {
        VM_ERR_NO_DOMAIN = 1000,   /* no domain with that name, uuid or id */
        VM_ERR_INVALID_OP,         /* not valid in the current state */
        VM_ERR_BUSY,               /* another job runs on the domain */
        VM_ERR_EXISTS,             /* duplicate name or uuid */
        VM_ERR_CONFIG,             /* the definition is refused */
        VM_ERR_FAILED,             /* QEMU or the system failed */
};

enum vm_start_flags {
        VM_START_PAUSED = 1 << 0,     /* leave vCPUs stopped */
        VM_START_FORCE_BOOT = 1 << 1, /* ignore a managed-save image */
};

typedef void (*vm_done_fn)(void *opaque, json_t *ret, const struct tt_error *err);

/* shutdown / reboot --mode */
enum vm_power_mode {
        VM_POWER_ACPI,  /* the ACPI power button (system_powerdown) */
        VM_POWER_AGENT, /* guest-shutdown through the guest agent */
};

/* shutdown's options; Tether's --wait/--timeout/--force go beyond virsh. */
struct vm_shutdown_opts {
        enum vm_power_mode modes[2]; /* how to ask the guest, tried in order (--mode agent,acpi) */
        int n_modes;                 /* entries in modes */
        bool wait;                   /* answer only once the domain is shut off */
        int timeout_s;               /* how long to wait (--wait, or the agent's own deadline) */
        bool force;                  /* on timeout, destroy instead of failing */
};

/* "acpi", "agent" or a comma list of both ("agent,acpi") into o's modes; -1 with err if bad. */
int vm_power_modes_parse(const char *text, struct vm_shutdown_opts *o, struct tt_error *err);

struct guest_agent;
struct mon_vm;
struct console;
struct saveimage;

struct vm {
        struct vm *next;          /* list in struct tetherd */
        struct tetherd *d;        /* owner */
        struct domain *def;       /* persistent definition, or the transient one */
        struct domain *live;      /* the definition QEMU runs with; NULL while inactive */
        bool persistent;          /* defined (survives shut off) */
        bool autostart;           /* started when tetherd starts */
        int id;                   /* virsh Id while active, -1 otherwise */
        struct vm_status status;  /* state and reason */
        pid_t pid;                /* QEMU, 0 when none */
        bool is_child;            /* we forked QEMU (so we reap it) */
        struct qmp *qmp;          /* monitor connection while active */
        const char *job;          /* running job ("start", "destroy", ...), NULL when idle */
        vm_done_fn done;          /* completion of the running job */
        void *done_opaque;        /* its argument */
        bool destroying;          /* we are killing QEMU: EOF means destroyed */
        bool graceful;            /* destroy --graceful: SIGTERM only */
        struct vm_status dying_from; /* the state before dying (a graceful destroy that gives
                                        up goes back to it) */
        bool fake_reboot;         /* reboot --mode acpi: reset + cont on the next SHUTDOWN */
        unsigned flags;           /* enum vm_start_flags of the running start */
        int kill_ticks;           /* 100 ms ticks since SIGTERM */
        struct event *timer;      /* destroy escalation */
        struct event *exit_ev;    /* on a pidfd: QEMU closed its monitor, its process exits */
        bool exit_killed;         /* ... and was sent SIGKILL for taking too long */
        char *fail_msg;           /* why a running start/restore is failing (for its reply) */
        /* save and restore */
        int image_fd;             /* the save image while a save or restore runs, else -1 */
        struct saveimage *image;  /* its header */
        char *image_path;         /* its path (a managed image's is removed when a save fails) */
        bool image_managed;       /* managed-save image: removed once restored */
        bool was_running;         /* save: vCPUs ran before; restore: the image says so */
        bool saved;               /* the image is complete: QEMU's exit means shut off (saved) */
        bool restoring;           /* the launch loads an image instead of booting */
        struct vm_save_sync *save_sync; /* the save's fdatasync, running in a thread, or NULL */
        struct event *poll;       /* query-migrate polling */
        /* shutdown --wait, and shutdown/reboot --mode agent */
        struct vm_shutdown_opts shutdown; /* options of the running shutdown */
        int power_step;           /* index in shutdown.modes being tried */
        bool power_sent;          /* the guest was asked; waiting for its event or shut off */
        struct event *wait_timer; /* deadline of shutdown --wait */
        /* the guest agent */
        struct guest_agent *guest; /* connection to the agent channel while QEMU runs */
        struct mon_vm *mon;        /* the monitor's poll state and cache while QEMU runs */
        struct console *console;   /* the serial console's connection while QEMU runs */
        int shutdown_detail;       /* the last QMP SHUTDOWN's "guest", as its event's detail */
};

/* Load persistent definitions, reconnect to QEMUs that still run, start autostart domains. */
int vm_load_all(struct tetherd *d, struct tt_error *err);
void vm_free_all(struct tetherd *d);
/* A domain by name, uuid or numeric id; NULL with VM_ERR_NO_DOMAIN set. */
struct vm *vm_lookup(struct tetherd *d, const char *key, struct tt_error *err);

int vm_define(struct tetherd *d, const char *xml, struct vm **out, struct tt_error *err);
int vm_undefine(struct vm *vm, bool managed_save, struct tt_error *err);
int vm_create(struct tetherd *d, const char *xml, unsigned flags, vm_done_fn done, void *opaque,
              struct tt_error *err);
int vm_start(struct vm *vm, unsigned flags, vm_done_fn done, void *opaque, struct tt_error *err);
int vm_destroy(struct vm *vm, bool graceful, vm_done_fn done, void *opaque,
               struct tt_error *err);
int vm_suspend(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err);
int vm_resume(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err);
int vm_shutdown(struct vm *vm, const struct vm_shutdown_opts *o, vm_done_fn done, void *opaque,
                struct tt_error *err);
int vm_reboot(struct vm *vm, const struct vm_shutdown_opts *o, vm_done_fn done, void *opaque,
              struct tt_error *err);
int vm_reset(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err);
int vm_set_autostart(struct vm *vm, bool on, struct tt_error *err);

/*
 * save FILE (fd, a file the client opened; path names it in messages) or managedsave (fd -1,
 * path NULL: tetherd's own image): the domain ends shut off (saved). fd stays the caller's.
 */
int vm_save(struct vm *vm, int fd, const char *path, vm_done_fn done, void *opaque,
            struct tt_error *err);
/*
 * restore FILE (fd, opened by the client; path names it in messages): the domain named in the
 * image, defined or transient, runs again. fd stays the caller's.
 */
int vm_restore(struct tetherd *d, int fd, const char *path, bool paused, vm_done_fn done,
               void *opaque, struct tt_error *err);
int vm_managed_save_remove(struct vm *vm, bool *removed, struct tt_error *err);

/* A raw QMP command (qemu-monitor-command): cmd is {"execute", "arguments"}; replies "return". */
int vm_qmp_passthrough(struct vm *vm, json_t *cmd, vm_done_fn done, void *opaque,
                       struct tt_error *err);
/* screenshot: {"mime": "image/png", "data": base64} of the primary display. */
int vm_screenshot(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err);
/* The graphics QEMU listens on: [{"type": "vnc", "listen": "127.0.0.1", "port": 5900}, ...]. */
json_t *vm_graphics(struct vm *vm, struct tt_error *err);

/*
 * The state list, domstate and dominfo show: the domain's state, except that with
 * tetherd --report-idle a running domain whose vCPU threads used less than 1% of a CPU over
 * the monitor's last sample is idle (libvirt's state 2, reason unknown). Never persisted.
 */
struct vm_status vm_shown_status(const struct vm *vm);

/* One row of `list` / the data of `dominfo`: a new JSON object. */
json_t *vm_describe(struct vm *vm);

#endif
