/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tether-domain-check FILE [--argv]: parse a domain XML file and print what Tether makes of it
 * (the normalised XML, or the QEMU command line with placeholder runtime paths). Exit 1 with
 * the error text when the definition is refused. A development aid, not installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/domain.h"
#include "host/qemu_argv.h"

int main(int argc, char **argv)
{
        static const char *const chan[] = { "/run/tether/example/agent.sock" };
        struct qemu_argv_runtime rt = { .qmp_socket = "/run/tether/example/qmp.sock",
                                        .channel_sockets = chan, .n_channel_sockets = 1,
                                        .console_socket = "/run/tether/example/ttyS0.sock",
                                        .vnc_port = 5900, .spice_port = 5901,
                                        .pidfile = "/run/tether/example/qemu.pid" };
        struct tt_error err = { 0 };
        struct qemu_argv args;
        struct domain *def;
        char *out;

        if (argc < 2 || (argc == 3 && strcmp(argv[2], "--argv") != 0) || argc > 3) {
                fprintf(stderr, "usage: %s FILE [--argv]\n", argv[0]);
                return 2;
        }
        def = domain_parse_file(argv[1], &err);
        if (def == NULL) {
                fprintf(stderr, "error: %s\n", err.msg);
                tt_error_clear(&err);
                return 1;
        }
        if (argc == 3) {
                if (qemu_argv_build(def, &rt, &args, &err) < 0) {
                        fprintf(stderr, "error: %s\n", err.msg);
                        tt_error_clear(&err);
                        domain_free(def);
                        return 1;
                }
                out = qemu_argv_join(&args);
                qemu_argv_free(&args);
        } else {
                out = domain_format(def);
        }
        fputs(out ? out : "", stdout);
        free(out);
        domain_free(def);
        return out ? 0 : 1;
}
