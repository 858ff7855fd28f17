/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QEMU command line for a domain (reference/libvirt-lifecycle.md §3), built for QEMU 7.2.
 *
 * QEMU always starts with -S (vCPUs stopped), -no-shutdown and the QMP monitor on a unix
 * socket; the daemon then connects, sets passwords and balloon target over QMP and sends
 * `cont`. QEMU is not daemonized: the daemon forks and execs it and keeps it as a child, so it
 * gets the exit status from waitpid as well as the QMP EOF. -pidfile is still written so that a
 * restarted daemon can find processes it did not fork.
 */
#ifndef TT_QEMU_ARGV_H
#define TT_QEMU_ARGV_H

#include <stdbool.h>
#include <stddef.h>
#include "common/tt_error.h"
#include "host/domain.h"

/* One backing file below a disk's image, opened by tetherd (backing.h). */
struct qemu_backing {
        size_t disk; /* index of the <disk> whose chain it belongs to */
        int fd;      /* read-only descriptor (-add-fd) */
        bool qcow2;  /* its format: qcow2, else raw */
};

/* What only the daemon knows at start time. */
struct qemu_argv_runtime {
        const char *qmp_socket;            /* QMP monitor socket path (QEMU listens on it) */
        int qmp_fd;                        /* > 0: an already listening socket for the monitor,
                                              passed as fd=N (tetherd); 0: QEMU binds qmp_socket */
        const char *const *channel_sockets; /* per <channel>, used when it has no source path */
        size_t n_channel_sockets;          /* entries in channel_sockets */
        const char *console_socket;        /* serial port 0's socket (tetherd connects) */
        const int *disk_fds;               /* per <disk>, two descriptors of its source (read-
                                              only, read-write; -1 for none): when the first
                                              is >= 0, QEMU opens /dev/fdset/N (-add-fd), never
                                              the path */
        size_t n_disk_fds;                 /* entries in disk_fds / 2 */
        const struct qemu_backing *backing; /* backing chains of fdset disks, disk by disk,
                                               top-down: each link is a node of its own and
                                               the format node above names it (backing=) */
        size_t n_backing;                  /* entries in backing */
        const char *runas;                 /* -runas USER: QEMU drops root once it has
                                              opened its files, or NULL */
        const char *sandbox;               /* -sandbox value (seccomp), or NULL for none */
        int vnc_port;                      /* TCP port chosen for VNC autoport (5900+) */
        int spice_port;                    /* TCP port chosen for SPICE autoport */
        const char *pidfile;               /* -pidfile path, or NULL for none */
        bool incoming_defer;               /* restore: add -incoming defer */
        const int *tap_fds;                /* per <interface>: the tap descriptor of a bridge
                                              interface (-netdev tap,fd=N), -1 for others */
        size_t n_tap_fds;                  /* entries in tap_fds */
};

/* A NULL-terminated argument vector; argv[0] is the emulator. */
struct qemu_argv {
        char **argv; /* the arguments, each malloc'd, NULL-terminated */
        size_t argc; /* number of arguments before the NULL */
        size_t cap;  /* allocated slots */
};

/* Build the command line. Errors name what is missing (a socket path, an autoport port, ...). */
int qemu_argv_build(const struct domain *def, const struct qemu_argv_runtime *rt,
                    struct qemu_argv *out, struct tt_error *err);
/* One argument per line, each followed by '\n' (for golden files and logs); malloc'd. */
char *qemu_argv_join(const struct qemu_argv *args);
void qemu_argv_free(struct qemu_argv *args);

/* QEMU's option-value escaping: every ',' doubled, so "a,b" stays one value. malloc'd. */
char *qemu_argv_escape(const char *value);

#endif
