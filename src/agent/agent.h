/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tether-agent internals: one context struct passed everywhere, a small poll(2) loop, and the
 * command table. The protocol itself is documented once, in shared/reference/qga-commands.md.
 */
#ifndef TT_AGENT_H
#define TT_AGENT_H

#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/tt_error.h"
#include "wire/wire.h"

struct agent_ctx;

/* ---- configuration: qemu-ga's options and [general] keys, plus Tether's own bounds ---- */
struct agent_config {
        char *method;          /* virtio-serial | isa-serial | unix-listen | vsock-listen */
        char *path;            /* device, socket path, or "cid:port" */
        char *logfile;         /* NULL = stderr */
        char *pidfile;         /* written when daemonizing */
        char *fsfreeze_hook;   /* NULL = no hook; -F alone = default hook path */
        char *statedir;        /* qga.state and qga.state.isfrozen live here */
        char **block_rpcs;     /* NULL-terminated, accumulated from -b and config */
        char **allow_rpcs;     /* NULL-terminated, accumulated from -a and config */
        bool daemonize;        /* -d */
        bool verbose;          /* -v */
        bool debug;            /* --debug */
        bool retry_path;       /* -r: reopen the channel when it fails instead of exiting */
        unsigned max_file_handles;    /* open guest-file handles at once (Tether bound) */
        unsigned max_exec;            /* guest-exec children plus uncollected results */
        unsigned exec_reap_seconds;   /* finished, uncollected exec results are dropped after */
        unsigned freeze_timeout;      /* seconds before an automatic thaw (0 = never) */
};

/* ---- event loop ---- */
typedef void (*agent_io_fn)(struct agent_ctx *ctx, int fd, short revents, void *opaque);
typedef void (*agent_timer_fn)(struct agent_ctx *ctx, void *opaque);

/* Watch fd for events (POLLIN/POLLOUT); fn runs with the revents seen. One watch per fd. */
int agent_loop_add_fd(struct agent_ctx *ctx, int fd, short events, agent_io_fn fn, void *opaque);
/* Change the events watched for fd (0 = keep the watch but wait for nothing). */
void agent_loop_mod_fd(struct agent_ctx *ctx, int fd, short events);
/* Stop watching fd (does not close it). Safe to call from inside that fd's callback. */
void agent_loop_del_fd(struct agent_ctx *ctx, int fd);
/* Run fn once, ms milliseconds from now; returns an id > 0 for agent_loop_cancel_timer(). */
uint64_t agent_loop_add_timer(struct agent_ctx *ctx, uint64_t ms, agent_timer_fn fn, void *opaque);
void agent_loop_cancel_timer(struct agent_ctx *ctx, uint64_t id);
/* Milliseconds from CLOCK_MONOTONIC. */
uint64_t agent_now_ms(void);

/* ---- commands ---- */
enum agent_command_flags {
        AGENT_ALLOWED_WHILE_FROZEN = 1 << 0, /* answers while filesystems are frozen */
        AGENT_NO_SUCCESS_RESPONSE = 1 << 1,  /* success sends nothing (guest-shutdown, suspend) */
        AGENT_CHANGES_GUEST = 1 << 2,        /* alters the machine: never sent to a host agent */
};

/*
 * A handler gets checked arguments (args is a JSON object, never NULL: {} when absent) and
 * either sets *ret to a new reference (NULL means {"return": {}}) and returns 0, or returns a
 * negative value with err set; err->msg becomes the GenericError desc verbatim.
 * A handler that streams a large reply calls agent_reply_begin(), writes the return value into
 * agent_reply_out(), leaves *ret NULL and returns 0.
 */
typedef int (*agent_handler_fn)(struct agent_ctx *ctx, json_t *args, json_t **ret,
                                struct tt_error *err);

struct agent_command {
        const char *name;              /* QGA command name */
        agent_handler_fn handler;      /* the implementation */
        const struct wire_arg *args;   /* argument spec, NULL = takes no arguments */
        unsigned flags;                /* enum agent_command_flags */
};

/* The command table (commands.c), terminated by a {NULL} row, in qemu-ga's guest-info order. */
extern const struct agent_command agent_commands[];
const struct agent_command *agent_command_find(const char *name);
size_t agent_command_count(void);

/* Streamed replies: see agent_handler_fn. */
int agent_reply_begin(struct agent_ctx *ctx);
struct wire_out *agent_reply_out(struct agent_ctx *ctx);

/* ---- the context ---- */
struct agent_files;   /* guest-file-* handles (file.c) */
struct agent_execs;   /* guest-exec children and results (exec.c) */
struct agent_channel; /* the transport (channel.c) */
struct agent_loop;    /* poll set and timers (loop.c) */

struct agent_ctx {
        struct agent_config *cfg;       /* options and config file, after merging */
        struct agent_loop *loop;        /* fds and timers */
        struct agent_channel *chan;     /* the host connection */
        struct wire_splitter *splitter; /* request framing */
        struct wire_out *out;           /* reply writer onto the channel */
        struct agent_files *files;      /* open guest-file handles */
        struct agent_execs *execs;      /* guest-exec table */
        bool *disabled;                 /* per agent_commands[] row: blocked by -b/-a */
        bool frozen;                    /* filesystems frozen by us (persisted in statedir) */
        uint64_t thaw_timer;            /* auto-thaw timer while frozen (freeze.c), 0 = none */
        bool delimit_next;              /* guest-sync-delimited: prefix next reply with 0xFF */
        bool reply_started;             /* a handler began streaming its reply */
        bool quit;                      /* leave the main loop */
        int exit_code;                  /* exit status once quit is set */
};

/* Dispatch one request message (takes ownership of msg) and write the reply, if any. */
void agent_dispatch(struct agent_ctx *ctx, json_t *msg);
/* Whether cmd answers now (not blocked by -b/-a, and allowed while frozen if frozen). */
bool agent_command_enabled(struct agent_ctx *ctx, const struct agent_command *cmd);
/* Compute ctx->disabled from the allow and block lists; unknown names are warned about. */
int agent_apply_rpc_lists(struct agent_ctx *ctx, struct tt_error *err);

/* ---- modules' set-up and tear-down ---- */
int agent_files_init(struct agent_ctx *ctx, struct tt_error *err);
void agent_files_free(struct agent_ctx *ctx);
int agent_execs_init(struct agent_ctx *ctx, struct tt_error *err);
void agent_execs_free(struct agent_ctx *ctx);
/* SIGCHLD arrived: reap children and update exec results. */
void agent_execs_on_sigchld(struct agent_ctx *ctx);

/* Base64 as qemu-ga decodes it (qbase64_decode + g_base64_decode): file.c. *out is malloc'd. */
int agent_base64_decode(const char *in, unsigned char **out, size_t *out_len, struct tt_error *err);

/* Handle counter persisted in statedir/qga.state ([global] fd_counter=N, starts at 1000). */
int agent_state_next_handle(struct agent_ctx *ctx, int64_t *handle, struct tt_error *err);

/* ---- handlers (one file per command family) ---- */
#define AGENT_HANDLER(fn) int fn(struct agent_ctx *ctx, json_t *args, json_t **ret, struct tt_error *err)

/* core.c */
AGENT_HANDLER(agent_cmd_sync);
AGENT_HANDLER(agent_cmd_sync_delimited);
AGENT_HANDLER(agent_cmd_ping);
AGENT_HANDLER(agent_cmd_info);
AGENT_HANDLER(agent_cmd_get_time);
/* file.c */
AGENT_HANDLER(agent_cmd_file_open);
AGENT_HANDLER(agent_cmd_file_close);
AGENT_HANDLER(agent_cmd_file_read);
AGENT_HANDLER(agent_cmd_file_write);
AGENT_HANDLER(agent_cmd_file_seek);
AGENT_HANDLER(agent_cmd_file_flush);
/* exec.c */
AGENT_HANDLER(agent_cmd_exec);
AGENT_HANDLER(agent_cmd_exec_status);
/* net.c */
AGENT_HANDLER(agent_cmd_network_get_interfaces);
AGENT_HANDLER(agent_cmd_network_get_route);
/* hw.c */
AGENT_HANDLER(agent_cmd_get_vcpus);
AGENT_HANDLER(agent_cmd_get_memory_blocks);
AGENT_HANDLER(agent_cmd_get_memory_block_info);
/* fs.c */
AGENT_HANDLER(agent_cmd_get_fsinfo);
AGENT_HANDLER(agent_cmd_get_disks);
AGENT_HANDLER(agent_cmd_fsfreeze_status);
/* system.c */
AGENT_HANDLER(agent_cmd_get_host_name);
AGENT_HANDLER(agent_cmd_get_users);
AGENT_HANDLER(agent_cmd_get_timezone);
AGENT_HANDLER(agent_cmd_get_osinfo);
/* stats.c */
AGENT_HANDLER(agent_cmd_get_diskstats);
AGENT_HANDLER(agent_cmd_get_cpustats);
AGENT_HANDLER(agent_cmd_get_load);
/* ssh.c */
AGENT_HANDLER(agent_cmd_ssh_get_authorized_keys);
/* power.c */
AGENT_HANDLER(agent_cmd_shutdown);
AGENT_HANDLER(agent_cmd_suspend_disk);
AGENT_HANDLER(agent_cmd_suspend_ram);
AGENT_HANDLER(agent_cmd_suspend_hybrid);
/*
 * Run a helper program and wait for it: argv[0] is looked up in $PATH when it has no '/';
 * every program path is taken under $TETHER_AGENT_SYSROOT (tests put fake helpers there).
 * input (may be NULL) is fed on stdin, stdout/stderr go to /dev/null, the child gets its own
 * session and default signal state. 0 with *wstatus set; negative with err->code ENOENT when
 * the program does not exist, or another errno when it could not be started.
 */
int agent_run_helper(char *const argv[], const char *input, int *wstatus, struct tt_error *err);
/* time.c */
AGENT_HANDLER(agent_cmd_set_time);
/* freeze.c */
AGENT_HANDLER(agent_cmd_fsfreeze_freeze);
AGENT_HANDLER(agent_cmd_fsfreeze_freeze_list);
AGENT_HANDLER(agent_cmd_fsfreeze_thaw);
AGENT_HANDLER(agent_cmd_fstrim);
/*
 * At start-up, after the loop exists: an agent restarted while filesystems were frozen
 * (statedir/qga.state.isfrozen) starts frozen, with logging off, and arms the auto-thaw timer.
 */
void agent_freeze_init(struct agent_ctx *ctx);
/* ioctl() for FIFREEZE/FITHAW/FITRIM: weak, so unit tests can replace it with a fake. */
int agent_fs_ioctl(int fd, unsigned long request, void *arg);
/* time.c */
struct timeval; /* <sys/time.h> */
/* settimeofday(tv, NULL): weak, so unit tests can replace it with a fake. */
int agent_settimeofday(const struct timeval *tv);
/* ioctl() for RTC_RD_TIME/RTC_SET_TIME: weak, so unit tests can replace it with a fake. */
int agent_rtc_ioctl(int fd, unsigned long request, void *arg);
/* cpumem.c */
AGENT_HANDLER(agent_cmd_set_vcpus);
AGENT_HANDLER(agent_cmd_set_memory_blocks);
/* passwd.c */
AGENT_HANDLER(agent_cmd_set_user_password);
/*
 * Put hash (already crypt()ed) as user's password into <sysroot>/etc/shadow (or /etc/passwd
 * when there is no shadow file), under the /etc/.pwd.lock lock, atomically.
 */
int agent_passwd_set_hash(const char *user, const char *hash, struct tt_error *err);
/* sshkeys.c */
AGENT_HANDLER(agent_cmd_ssh_add_authorized_keys);
AGENT_HANDLER(agent_cmd_ssh_remove_authorized_keys);

#endif
