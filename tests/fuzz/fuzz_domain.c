/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Domain XML, as `define` takes it (vm_define: domain_parse of a NUL-terminated text), then
 * what tetherd does with an accepted definition: format it for the store, and build QEMU's
 * command line at start. Invariants: a refusal always says why; what define stores parses
 * again (tetherd reloads it at its next start) and formats to the same text; the name can be
 * a file name in the store; the command line is well formed.
 */
#include "fuzz.h"

#include <string.h>

#include "host/domain.h"
#include "host/qemu_argv.h"

static void check_argv(const struct domain *def)
{
        static const char *const chans[] = {"/run/tether/domains/d/agent.sock",
                                            "/run/tether/domains/d/agent.sock",
                                            "/run/tether/domains/d/agent.sock",
                                            "/run/tether/domains/d/agent.sock"};
        struct qemu_argv_runtime rt = {
                .qmp_socket = "/run/tether/domains/d/qmp.sock",
                .qmp_fd = 3,
                .channel_sockets = chans,
                .n_channel_sockets = def->n_channels < 4 ? def->n_channels : 4,
                .vnc_port = 5900,
                .spice_port = 5901,
                .pidfile = "/run/tether/domains/d/qemu.pid",
        };
        struct qemu_argv argv = {0};
        struct tt_error err = {0};

        if (qemu_argv_build(def, &rt, &argv, &err) < 0) {
                FUZZ_CHECK(err.msg != NULL);
                tt_error_clear(&err);
                return;
        }
        FUZZ_CHECK(argv.argc > 0 && argv.argv[argv.argc] == NULL);
        for (size_t i = 0; i < argv.argc; i++)
                FUZZ_CHECK(argv.argv[i] != NULL);
        FUZZ_CHECK(strcmp(argv.argv[0], def->emulator ? def->emulator
                                                      : DOMAIN_DEFAULT_EMULATOR) == 0);
        free(qemu_argv_join(&argv));
        qemu_argv_free(&argv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *xml = fuzz_strndup(data, size);
        struct tt_error err = {0};
        struct domain *def = domain_parse(xml, strlen(xml), &err);
        struct domain *again;
        char *text, *text2;

        free(xml);
        if (def == NULL) {
                FUZZ_CHECK(err.msg != NULL && err.msg[0] != '\0');
                tt_error_clear(&err);
                return 0;
        }
        FUZZ_CHECK(err.msg == NULL);
        /* The store keeps NAME.xml: a name is one path component. */
        FUZZ_CHECK(def->name != NULL && def->name[0] != '\0' && strchr(def->name, '/') == NULL);
        FUZZ_CHECK(strlen(def->uuid) == 36);
        FUZZ_CHECK(def->n_boot <= DOMAIN_MAX_BOOT);
        FUZZ_CHECK(def->vcpus > 0);
        FUZZ_CHECK(def->current_memory_kib <= def->memory_kib);

        text = domain_format(def);
        FUZZ_CHECK(text != NULL);
        again = domain_parse(text, strlen(text), &err);
        if (again == NULL)
                fprintf(stderr, "stored text does not parse again: %s\n%s", err.msg, text);
        FUZZ_CHECK(again != NULL);
        text2 = domain_format(again);
        FUZZ_CHECK(text2 != NULL);
        if (strcmp(text, text2) != 0)
                fprintf(stderr, "first:\n%ssecond:\n%s", text, text2);
        FUZZ_CHECK(strcmp(text, text2) == 0);
        free(text2);
        free(text);
        free(domain_format_flags(def, DOMAIN_FORMAT_SECURE));
        check_argv(def);
        domain_free(again);
        domain_free(def);
        return 0;
}
