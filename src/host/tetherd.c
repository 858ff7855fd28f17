/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tetherd: parse options, load definitions, reconnect to running QEMUs, serve the socket. */
#include "common/cleanup.h"
#include "common/log.h"
#include "host/api.h"
#include "host/tetherd.h"
#include "host/vm.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: tetherd [--root DIR] [--group NAME] [--log FILE] [--verbose]\n"
                "Tether's host daemon: defines, starts and supervises QEMU virtual machines.\n"
                "\n"
                "  --root DIR     keep definitions, state, sockets and save images under DIR\n"
                "                 (default: /etc/tether, /var/lib/tether, /run/tether)\n"
                "  --group NAME   members of this group may use the control socket (root always)\n"
                "  --log FILE     log to FILE instead of stderr\n"
                "  -v, --verbose  log QMP events and more\n"
                "  -V, --version  print the version and exit\n");
}

static void on_signal(evutil_socket_t sig, short what, void *opaque)
{
        struct tetherd *d = opaque;

        if (sig == SIGCHLD) {
                /* Reap QEMUs we forked; their monitor EOF drives the state change. */
                while (waitpid(-1, NULL, WNOHANG) > 0)
                        ;
                return;
        }
        tt_info("signal %d: exiting (QEMU processes keep running)", (int)sig);
        event_base_loopbreak(d->base);
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"root", required_argument, NULL, 'r'},  {"group", required_argument, NULL, 'g'},
                {"log", required_argument, NULL, 'l'},   {"verbose", no_argument, NULL, 'v'},
                {"version", no_argument, NULL, 'V'},     {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        struct tetherd d = {0};
        struct tt_error err = {0};
        const char *root = NULL, *logfile = NULL;
        _cleanup_free_ char *sock = NULL;
        struct event *sigs[4] = {0};
        const int signums[4] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
        int c, status = EXIT_FAILURE;

        tt_log_set_ident("tetherd");
        while ((c = getopt_long(argc, argv, "vVh", longopts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        root = optarg;
                        break;
                case 'g': {
                        struct group *g = getgrnam(optarg);
                        if (g == NULL) {
                                fprintf(stderr, "tetherd: unknown group '%s'\n", optarg);
                                return EXIT_FAILURE;
                        }
                        d.access_gid = g->gr_gid;
                        d.access_gid_set = true;
                        break;
                }
                case 'l':
                        logfile = optarg;
                        break;
                case 'v':
                        tt_log_set_level(TT_LOG_DEBUG);
                        break;
                case 'V':
                        printf("tetherd %s\n", TETHER_VERSION);
                        return EXIT_SUCCESS;
                case 'h':
                        usage(stdout);
                        return EXIT_SUCCESS;
                default:
                        usage(stderr);
                        return EXIT_FAILURE;
                }
        }
        if (logfile && tt_log_open(logfile) < 0) {
                fprintf(stderr, "tetherd: cannot open log '%s': %s\n", logfile, strerror(errno));
                return EXIT_FAILURE;
        }
        signal(SIGPIPE, SIG_IGN);
        d.base = event_base_new();
        if (d.base == NULL || store_open(&d.store, root, &err) < 0)
                goto out;
        sock = store_socket_path(&d.store);
        if (sock == NULL || api_listen(&d, sock, &err) < 0)
                goto out;
        for (size_t i = 0; i < TT_ARRAY_SIZE(signums); i++) {
                sigs[i] = evsignal_new(d.base, signums[i], on_signal, &d);
                event_add(sigs[i], NULL);
        }
        if (vm_load_all(&d, &err) < 0)
                goto out;
        tt_info("tetherd %s listening on %s", TETHER_VERSION, sock);
        event_base_dispatch(d.base);
        status = EXIT_SUCCESS;
out:
        if (err.msg)
                tt_err("%s", err.msg);
        tt_error_clear(&err);
        api_close(&d);
        vm_free_all(&d);
        for (size_t i = 0; i < TT_ARRAY_SIZE(sigs); i++)
                if (sigs[i])
                        event_free(sigs[i]);
        store_close(&d.store);
        if (d.base)
                event_base_free(d.base);
        return status;
}
