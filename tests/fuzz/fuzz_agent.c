/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The agent targets' fixture (fuzz_agent.h). */
#include "fuzz.h"
#include "fuzz_agent.h"

#include <string.h>

/*
 * Commands the fuzz targets may run on the build host: they read the (scratch) sysroot, the
 * agent's own tables or the clock. guest-file-* and guest-exec-status only look up handles,
 * and none can exist because guest-file-open and guest-exec stay disabled.
 */
static const char *const safe_commands[] = {
        "guest-sync-delimited", "guest-sync", "guest-ping", "guest-get-time", "guest-info",
        "guest-file-close", "guest-file-read", "guest-file-seek", "guest-file-flush",
        "guest-fsfreeze-status", "guest-network-get-interfaces", "guest-get-vcpus",
        "guest-get-disks", "guest-get-fsinfo", "guest-get-memory-blocks",
        "guest-get-memory-block-info", "guest-exec-status", "guest-get-host-name",
        "guest-get-users", "guest-get-timezone", "guest-get-osinfo",
        "guest-ssh-get-authorized-keys", "guest-get-diskstats", "guest-get-cpustats",
        "guest-get-load", "guest-network-get-route", NULL,
};

/* Replies: printable ASCII, or the 0xFF that guest-sync-delimited puts before one. */
static int check_sink(void *opaque, const void *buf, size_t len)
{
        const unsigned char *p = buf;

        for (size_t i = 0; i < len; i++)
                FUZZ_CHECK(p[i] == 0xff || (p[i] < 0x80 && (p[i] >= 0x20 || p[i] == '\n')));
        return 0;
}

struct agent_ctx *fuzz_agent_ctx(void)
{
        static struct agent_ctx ctx;
        static struct agent_config cfg;
        struct tt_error err = {0};

        if (ctx.cfg)
                return &ctx;
        setenv("TETHER_AGENT_SYSROOT", fuzz_scratch_dir(), 1);
        unsetenv("QGA_OS_RELEASE");
        cfg.allow_rpcs = (char **)safe_commands;
        cfg.max_file_handles = 8;
        cfg.max_exec = 8;
        ctx.cfg = &cfg;
        ctx.out = wire_out_new(check_sink, NULL);
        FUZZ_CHECK(ctx.out != NULL);
        FUZZ_CHECK(agent_apply_rpc_lists(&ctx, &err) == 0);
        FUZZ_CHECK(agent_files_init(&ctx, &err) == 0);
        FUZZ_CHECK(agent_execs_init(&ctx, &err) == 0);
        /* The table decides too: nothing flagged as changing the guest may be enabled. */
        for (size_t i = 0; agent_commands[i].name; i++) {
                const struct agent_command *c = &agent_commands[i];

                if (!agent_command_enabled(&ctx, c))
                        continue;
                if (c->flags & AGENT_CHANGES_GUEST ||
                    strcmp(c->name, "guest-file-open") == 0 ||
                    strcmp(c->name, "guest-file-write") == 0 || strcmp(c->name, "guest-exec") == 0)
                        FUZZ_CHECK(!"a command that changes the machine is enabled");
        }
        return &ctx;
}

void fuzz_agent_request(const char *json_text)
{
        struct agent_ctx *ctx = fuzz_agent_ctx();
        json_t *msg = json_loads(json_text, 0, NULL);

        FUZZ_CHECK(msg != NULL);
        agent_dispatch(ctx, msg);
}
