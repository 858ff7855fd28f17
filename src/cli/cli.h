/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tether's internals: options, the verb table, output helpers and the connection. */
#ifndef TT_CLI_H
#define TT_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include "common/tt_error.h"

#define CLI_MAX_FLAGS 24
#define CLI_MAX_POS   4

/* What the command line said for one verb. */
struct cli_opts {
        bool json;                          /* --json: machine-readable output */
        bool quiet;                         /* --quiet: no table header */
        const char *flags[CLI_MAX_FLAGS];   /* boolean options given, without "--" */
        size_t nflags;
        const char *pos[CLI_MAX_POS];       /* positional arguments */
        size_t npos;
};

struct cli_verb {
        const char *name;                   /* virsh verb */
        const char *execute;                /* control-API command it sends */
        const char *options[CLI_MAX_FLAGS]; /* boolean options it accepts (NULL-terminated) */
        size_t npos;                        /* positional arguments it requires */
        int (*args)(json_t *args, const struct cli_opts *o);    /* fill the request */
        int (*print)(json_t *ret, const struct cli_opts *o);    /* show the reply */
        const char *done;                   /* confirmation for verbs that print no data */
        const char *done_alt;               /* the same with the verb's negating flag */
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
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The connection to tetherd: a local socket, or ssh to a remote `tether proxy`. */
struct cli_conn {
        int rfd;            /* read replies from here */
        int wfd;            /* write requests here */
        int ssh_pid;        /* ssh child, 0 for a local socket */
};
int cli_connect(struct cli_conn *c, const char *uri, const char *root, struct tt_error *err);
/* Send one request and wait for its reply (no deadline for jobs; Ctrl-C stops waiting). */
json_t *cli_call(struct cli_conn *c, const char *execute, json_t *args, struct tt_error *err);
void cli_disconnect(struct cli_conn *c);
/* `tether proxy`: copy stdin/stdout to and from the local control socket (ssh's far end). */
int cli_proxy(const char *socket_path, struct tt_error *err);
/* The control socket path for a local URI and root. */
char *cli_socket_path(const char *uri, const char *root, struct tt_error *err);

#endif
