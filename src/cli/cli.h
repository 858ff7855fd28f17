/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tether's internals: options, the verb table, output helpers and the connection. */
#ifndef TT_CLI_H
#define TT_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include "common/tt_error.h"

#define CLI_MAX_FLAGS 24   /* options one verb declares */
#define CLI_MAX_OPTS  256  /* options one command line may give (--env, --mountpoint repeat) */
#define CLI_MAX_POS   16  /* positionals (domstats DOMAIN...) */

/* What the command line said for one verb. */
struct cli_opts {
        bool json;                          /* --json: machine-readable output */
        bool quiet;                         /* --quiet: no table header */
        const char *flags[CLI_MAX_OPTS];    /* options given, without "--" ("name=value" if valued) */
        size_t nflags;
        const char *pos[CLI_MAX_POS];       /* positional arguments */
        size_t npos;
        char **rest;                        /* arguments after "--" (exec's command), or NULL */
        size_t nrest;                       /* how many there are */
};

struct cli_conn;

struct cli_verb {
        const char *name;                   /* virsh verb */
        const char *execute;                /* control-API command it sends */
        const char *options[CLI_MAX_FLAGS]; /* boolean options it accepts (NULL-terminated) */
        size_t npos;                        /* positional arguments it requires */
        int (*args)(json_t *args, const struct cli_opts *o);    /* fill the request */
        int (*print)(json_t *ret, const struct cli_opts *o);    /* show the reply */
        const char *done;                   /* confirmation for verbs that print no data */
        const char *done_alt;               /* the same with the verb's negating flag */
        const char *fail;                   /* virsh's first error line ("%s" = domain), or NULL */
        const char *posname[CLI_MAX_POS];   /* names in "requires <x> option" (default domain) */
        bool join_rest;                     /* extra positionals are joined with ' ' (virsh ARGV) */
        bool take_rest;                     /* arguments after "--" are allowed (o->rest) */
        bool error_newline;                 /* after an error, virsh's final "\n" on stdout */
        bool many_pos;                      /* takes npos to CLI_MAX_POS positionals (DOMAIN...) */
        /* Verbs of many requests (exec, cp): run instead of one call; returns the exit status. */
        int (*run)(struct cli_conn *c, json_t *args, const struct cli_opts *o);
};

bool cli_flag(const struct cli_opts *o, const char *name);
const struct cli_verb *cli_verb_find(const char *name);
void cli_verbs_usage(FILE *out);

/* virsh's vshTable: " %s" cells padded to the widest + 2, dashes, no pad on the last column. */
struct cli_table {
        size_t ncols;       /* columns */
        size_t nrows;       /* rows, header included */
        char **cells;       /* nrows * ncols strings */
};
void cli_table_init(struct cli_table *t, size_t ncols, const char *const *header);
void cli_table_add(struct cli_table *t, const char *const *row);
void cli_table_print(const struct cli_table *t, bool quiet);
void cli_table_free(struct cli_table *t);

void cli_print_json(json_t *v);
/* libvirt 9.0's (yajl) text of a JSON value: compact, or beautified as `--pretty` prints it. */
char *cli_json_libvirt(json_t *v, bool pretty);
/* The values of a repeatable valued option ("mountpoint=/a", ...), in command-line order. */
json_t *cli_flag_values(const struct cli_opts *o, const char *name);
/* The value of a valued option, or NULL. */
const char *cli_flag_value(const struct cli_opts *o, const char *name);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Replies up to this size are accepted (a 48 MiB guest-file-read is 64 MiB of base64). */
#define CLI_MAX_REPLY   (96ULL << 20)
#define CLI_READ_CHUNK  (1U << 20)

/* The connection to tetherd: a local socket, or ssh to a remote `tether proxy`. */
struct wire_splitter;
struct cli_conn {
        int rfd;                    /* read replies from here */
        int wfd;                    /* write requests here */
        int ssh_pid;                /* ssh child, 0 for a local socket */
        struct wire_splitter *sp;   /* reply framing, kept across requests */
        json_t *queue;              /* replies split but not yet taken (pipelined requests) */
        char *rbuf;                 /* read buffer, CLI_READ_CHUNK bytes */
        char *error;                /* a framing error met while splitting */
        bool send_failed;           /* a request could not be written */
        char *created;              /* a file the last request created (removed if it fails) */
};
int cli_connect(struct cli_conn *c, const char *uri, const char *root, struct tt_error *err);
/* Send one request and wait for its reply (no deadline for jobs; Ctrl-C stops waiting). */
json_t *cli_call(struct cli_conn *c, const char *execute, json_t *args, struct tt_error *err);
/*
 * The two halves of cli_call, to keep requests in flight: the daemon answers one connection's
 * requests in order, so the n-th cli_recv gets the reply to the n-th cli_send.
 */
int cli_send(struct cli_conn *c, const char *execute, json_t *args, struct tt_error *err);
json_t *cli_recv(struct cli_conn *c, struct tt_error *err);
void cli_disconnect(struct cli_conn *c);
/*
 * A request's "file": {"path", "open": "save"|"restore"} opened with the caller's own rights
 * (tetherd gets the descriptor, never the path). Returns the fd, or -1 with the user's error.
 */
int cli_open_file(json_t *file, bool *created, struct tt_error *err);
/* Write buf to a unix socket with fd (if >= 0) passed alongside (SCM_RIGHTS). */
int cli_send_with_fd(int sock, const char *buf, size_t len, int fd);
/* `tether proxy`: copy stdin/stdout to and from the local control socket (ssh's far end). */
int cli_proxy(const char *socket_path, struct tt_error *err);
/* The control socket path for a local URI and root. */
char *cli_socket_path(const char *uri, const char *root, struct tt_error *err);

/* ---- guest-agent verbs (agent.c) ---- */
int cli_args_agent_command(json_t *args, const struct cli_opts *o);
int cli_print_agent_command(json_t *ret, const struct cli_opts *o);
int cli_args_set_user_password(json_t *args, const struct cli_opts *o);
int cli_print_set_user_password(json_t *ret, const struct cli_opts *o);
int cli_args_domifaddr(json_t *args, const struct cli_opts *o);
int cli_print_domifaddr(json_t *ret, const struct cli_opts *o);
int cli_args_domtime(json_t *args, const struct cli_opts *o);
int cli_print_domtime(json_t *ret, const struct cli_opts *o);
int cli_args_fsfreeze(json_t *args, const struct cli_opts *o);
int cli_print_fsfreeze(json_t *ret, const struct cli_opts *o);
int cli_print_fsthaw(json_t *ret, const struct cli_opts *o);
int cli_print_domfsinfo(json_t *ret, const struct cli_opts *o);
int cli_args_domfstrim(json_t *args, const struct cli_opts *o);
int cli_print_quiet_ok(json_t *ret, const struct cli_opts *o);
int cli_args_guestinfo(json_t *args, const struct cli_opts *o);
int cli_print_guestinfo(json_t *ret, const struct cli_opts *o);
int cli_args_guestvcpus(json_t *args, const struct cli_opts *o);
int cli_print_guestvcpus(json_t *ret, const struct cli_opts *o);
int cli_args_setvcpus(json_t *args, const struct cli_opts *o);
int cli_args_get_sshkeys(json_t *args, const struct cli_opts *o);
int cli_print_get_sshkeys(json_t *ret, const struct cli_opts *o);
int cli_args_set_sshkeys(json_t *args, const struct cli_opts *o);
int cli_args_pmsuspend(json_t *args, const struct cli_opts *o);
int cli_print_pmsuspend(json_t *ret, const struct cli_opts *o);
int cli_print_pmwakeup(json_t *ret, const struct cli_opts *o);
int cli_args_power_mode(json_t *args, const struct cli_opts *o);

/* ---- tether's own: exec and cp through the agent (transfer.c) ---- */
int cli_args_exec(json_t *args, const struct cli_opts *o);
int cli_run_exec(struct cli_conn *c, json_t *args, const struct cli_opts *o);
int cli_args_cp(json_t *args, const struct cli_opts *o);
int cli_run_cp(struct cli_conn *c, json_t *args, const struct cli_opts *o);

/* ---- the monitor verbs: domstats and top (stats.c) ---- */
int cli_args_domstats(json_t *args, const struct cli_opts *o);
int cli_print_domstats(json_t *ret, const struct cli_opts *o);
int cli_args_top(json_t *args, const struct cli_opts *o);
int cli_run_top(struct cli_conn *c, json_t *args, const struct cli_opts *o);

/* ---- snapshots (snapshot.c) ---- */
int cli_args_snapshot_create_as(json_t *args, const struct cli_opts *o);
int cli_args_snapshot_create(json_t *args, const struct cli_opts *o);
int cli_run_snapshot_create(struct cli_conn *c, json_t *args, const struct cli_opts *o);
int cli_args_snapshot_domain(json_t *args, const struct cli_opts *o);
int cli_args_snapshot_named(json_t *args, const struct cli_opts *o);
int cli_run_snapshot_list(struct cli_conn *c, json_t *args, const struct cli_opts *o);
int cli_run_snapshot_info(struct cli_conn *c, json_t *args, const struct cli_opts *o);
int cli_run_snapshot_parent(struct cli_conn *c, json_t *args, const struct cli_opts *o);
int cli_run_snapshot_dumpxml(struct cli_conn *c, json_t *args, const struct cli_opts *o);
int cli_run_snapshot_current(struct cli_conn *c, json_t *args, const struct cli_opts *o);
int cli_run_snapshot_revert(struct cli_conn *c, json_t *args, const struct cli_opts *o);
int cli_run_snapshot_delete(struct cli_conn *c, json_t *args, const struct cli_opts *o);

/* ---- the serial console (console.c) ---- */
int cli_run_console(struct cli_conn *c, json_t *args, const struct cli_opts *o);
/* ---- event: tetherd's event stream (event.c) ---- */
int cli_args_event(json_t *args, const struct cli_opts *o);
int cli_run_event(struct cli_conn *c, json_t *args, const struct cli_opts *o);

#endif
