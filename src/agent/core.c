/* SPDX-License-Identifier: GPL-2.0-or-later */
/* guest-sync, guest-sync-delimited, guest-ping, guest-info, guest-get-time. */
#include "agent/agent.h"

#include <errno.h>
#include <time.h>

AGENT_HANDLER(agent_cmd_sync)
{
        *ret = json_incref(json_object_get(args, "id"));
        return 0;
}

AGENT_HANDLER(agent_cmd_sync_delimited)
{
        /* The reply to this request, and only it, is preceded by a 0xFF byte. */
        ctx->delimit_next = true;
        *ret = json_incref(json_object_get(args, "id"));
        return 0;
}

AGENT_HANDLER(agent_cmd_ping)
{
        return 0;
}

AGENT_HANDLER(agent_cmd_info)
{
        json_t *list = json_array();
        json_t *info;

        for (const struct agent_command *cmd = agent_commands; cmd->name; cmd++) {
                json_array_append_new(
                        list, json_pack("{s:s, s:b, s:b}", "name", cmd->name, "enabled",
                                        agent_command_enabled(ctx, cmd), "success-response",
                                        !(cmd->flags & AGENT_NO_SUCCESS_RESPONSE)));
        }
        info = json_pack("{s:s, s:o}", "version", TETHER_VERSION, "supported_commands", list);
        if (info == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        *ret = info;
        return 0;
}

AGENT_HANDLER(agent_cmd_get_time)
{
        struct timespec ts;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return tt_error_errno(err, errno, "cannot read the clock");
        *ret = json_integer((json_int_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
        return 0;
}
