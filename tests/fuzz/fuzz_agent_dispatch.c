/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The agent's real command table behind its dispatcher: the input is a stream of requests,
 * framed as the agent frames its channel, each one dispatched with only read-only commands
 * enabled (fuzz_agent.c's allow list; the others answer "has been disabled"). A disabled
 * command's arguments still go through the same check the dispatcher would run, against its
 * own spec. Invariants: replies are printable ASCII (plus the sync delimiter) and the sysroot
 * stays as it was (nothing is written).
 */
#include "fuzz.h"
#include "fuzz_agent.h"

#include <dirent.h>
#include <string.h>

static int on_message(void *opaque, json_t *msg, const struct tt_error *perr)
{
        struct agent_ctx *ctx = opaque;
        struct wire_request req = {0};
        struct tt_error err = {0};

        if (msg == NULL) {
                FUZZ_CHECK(perr != NULL && perr->msg != NULL);
                return 0;
        }
        if (wire_request_parse(msg, &req, &err) == 0) {
                const struct agent_command *cmd = agent_command_find(req.execute);

                if (cmd && cmd->args && !agent_command_enabled(ctx, cmd) &&
                    wire_args_check(cmd->args, req.arguments, &err) < 0)
                        FUZZ_CHECK(err.msg != NULL);
        }
        tt_error_clear(&err);
        agent_dispatch(ctx, msg); /* takes msg */
        return 0;
}

static bool sysroot_empty(void)
{
        DIR *d = opendir(fuzz_scratch_dir());
        struct dirent *e;
        bool empty = true;

        FUZZ_CHECK(d != NULL);
        while ((e = readdir(d)) != NULL)
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                        empty = false;
        closedir(d);
        return empty;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct agent_ctx *ctx = fuzz_agent_ctx();
        struct wire_splitter *s = wire_splitter_new();

        FUZZ_CHECK(s != NULL);
        wire_splitter_set_limits(s, 64 * 1024, 4096, 32);
        ctx->delimit_next = false;
        wire_splitter_feed(s, data, size, on_message, ctx);
        wire_out_flush(ctx->out);
        wire_splitter_free(s);
        FUZZ_CHECK(sysroot_empty());
        return 0;
}
