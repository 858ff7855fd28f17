/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One request in, at most one reply out, in qemu's order of checks: request shape, command
 * name, enabled (block/allow lists, freeze gate), arguments, handler. Every decision reads the
 * command table; no handler validates JSON types or writes replies itself.
 */
#include "agent/agent.h"
#include "common/cleanup.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct wire_arg no_args[] = {{.name = NULL}};

int agent_reply_begin(struct agent_ctx *ctx)
{
        if (ctx->delimit_next) {
                ctx->delimit_next = false;
                wire_out_write(ctx->out, "\xff", 1);
        }
        ctx->reply_started = true;
        return wire_write_return_begin(ctx->out);
}

struct wire_out *agent_reply_out(struct agent_ctx *ctx)
{
        return ctx->out;
}

/* Whether a command answers now: not blocked, and allowed while frozen if we are frozen. */
static const char *disabled_reason(struct agent_ctx *ctx, const struct agent_command *cmd,
                                   bool *disabled)
{
        size_t idx = (size_t)(cmd - agent_commands);

        *disabled = false;
        if (ctx->frozen && !(cmd->flags & AGENT_ALLOWED_WHILE_FROZEN)) {
                *disabled = true;
                return "the agent is in frozen state";
        }
        if (ctx->disabled && ctx->disabled[idx]) {
                *disabled = true;
                return NULL;
        }
        return NULL;
}

bool agent_command_enabled(struct agent_ctx *ctx, const struct agent_command *cmd)
{
        bool disabled;

        disabled_reason(ctx, cmd, &disabled);
        return !disabled;
}

static void reply_error(struct agent_ctx *ctx, const char *cls, const char *desc, json_t *id)
{
        wire_write_error(ctx->out, cls, desc ? desc : "unknown error", id);
}

void agent_dispatch(struct agent_ctx *ctx, json_t *msg)
{
        _owns_json_ json_t *owned = msg;
        _cleanup_json_ json_t *ret = NULL;
        _cleanup_json_ json_t *empty = NULL;
        struct tt_error err = {0};
        struct wire_request req = {0};
        const struct agent_command *cmd;
        json_t *args;
        const char *reason;
        size_t execute_len;
        bool disabled;
        int r;

        if (wire_request_parse(msg, &req, &err) < 0) {
                reply_error(ctx, WIRE_CLASS_GENERIC, err.msg, req.id);
                goto out;
        }
        /* A name with an embedded NUL names no command (qemu-ga: the same text, NUL and all). */
        execute_len = json_string_length(json_object_get(msg, "execute"));
        cmd = strlen(req.execute) == execute_len ? agent_command_find(req.execute) : NULL;
        if (cmd == NULL) {
                static const char pre[] = "The command ", post[] = " has not been found";
                char desc[512];
                size_t n = execute_len;

                if (n > sizeof(desc) - sizeof(pre) - sizeof(post))
                        n = sizeof(desc) - sizeof(pre) - sizeof(post);
                memcpy(desc, pre, sizeof(pre) - 1);
                memcpy(desc + sizeof(pre) - 1, req.execute, n);
                memcpy(desc + sizeof(pre) - 1 + n, post, sizeof(post));
                wire_write_error_len(ctx->out, WIRE_CLASS_NOT_FOUND, desc,
                                     sizeof(pre) - 1 + n + sizeof(post) - 1, req.id);
                goto out;
        }
        reason = disabled_reason(ctx, cmd, &disabled);
        if (disabled) {
                char desc[512];

                snprintf(desc, sizeof(desc), "Command %s has been disabled%s%s", cmd->name,
                         reason ? ": " : "", reason ? reason : "");
                reply_error(ctx, WIRE_CLASS_NOT_FOUND, desc, req.id);
                goto out;
        }
        args = req.arguments;
        if (args == NULL) {
                empty = json_object();
                args = empty;
        }
        if (wire_args_check(cmd->args ? cmd->args : no_args, args, &err) < 0) {
                reply_error(ctx, WIRE_CLASS_GENERIC, err.msg, req.id);
                goto out;
        }
        tt_debug("executing %s", cmd->name);
        ctx->reply_started = false;
        r = cmd->handler(ctx, args, &ret, &err);
        if (ctx->reply_started) {
                /* The handler streamed its return value; close the reply. */
                wire_write_return_end(ctx->out, req.id);
                ctx->reply_started = false;
        } else if (r < 0) {
                reply_error(ctx, WIRE_CLASS_GENERIC, err.msg, req.id);
        } else if (!(cmd->flags & AGENT_NO_SUCCESS_RESPONSE)) {
                if (ctx->delimit_next) {
                        ctx->delimit_next = false;
                        wire_out_write(ctx->out, "\xff", 1);
                }
                wire_write_return(ctx->out, ret, req.id);
        }
out:
        wire_out_flush(ctx->out);
        tt_error_clear(&err);
}

static bool in_list(char **list, const char *name)
{
        for (size_t i = 0; list && list[i]; i++)
                if (strcmp(list[i], name) == 0)
                        return true;
        return false;
}

static void warn_unknown(char **list, const char *which)
{
        for (size_t i = 0; list && list[i]; i++)
                if (agent_command_find(list[i]) == NULL)
                        tt_warn("%s: no command named '%s'", which, list[i]);
}

int agent_apply_rpc_lists(struct agent_ctx *ctx, struct tt_error *err)
{
        size_t n = agent_command_count();
        char **allow = ctx->cfg->allow_rpcs, **block = ctx->cfg->block_rpcs;

        ctx->disabled = calloc(n, sizeof(bool));
        if (ctx->disabled == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        warn_unknown(allow, "allow-rpcs");
        warn_unknown(block, "block-rpcs");
        /* As newer qemu-ga: an allow list enables only its commands; the block list wins. */
        for (size_t i = 0; i < n; i++) {
                const char *name = agent_commands[i].name;

                if (allow && allow[0] && !in_list(allow, name))
                        ctx->disabled[i] = true;
                if (in_list(block, name))
                        ctx->disabled[i] = true;
        }
        return 0;
}
