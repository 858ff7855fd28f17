/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The CLI's connection URIs (tether:///system, tether+ssh://user@host:port/system?...): the
 * input is what --connect or TETHER_DEFAULT_URI holds, parsed by cli_socket_path() (the same
 * parser cli_connect() runs before choosing unix or ssh). Invariants: a refusal says why; an
 * accepted URI yields a socket path, the default under --root unless ?socket= names one.
 */
#include "fuzz.h"

#include <string.h>

#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *uri = fuzz_strndup(data, size);
        struct tt_error err = {0};
        char *path = cli_socket_path(uri, "/root-dir", &err);

        if (path == NULL) {
                FUZZ_CHECK(err.msg != NULL && err.msg[0] != '\0');
                tt_error_clear(&err);
        } else {
                FUZZ_CHECK(err.msg == NULL && path[0] != '\0');
                FUZZ_CHECK(strstr(uri, "socket=") != NULL ||
                           strcmp(path, "/root-dir/run/tether/tetherd.sock") == 0);
                free(path);
        }
        free(uri);
        return 0;
}
