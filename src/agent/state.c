/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest-file handle counter, kept where qemu-ga keeps it: statedir/qga.state, a GKeyFile
 * with `[global]` and `fd_counter=N` (the next handle to hand out, 1000 on a fresh guest). It is
 * re-read on every open rather than cached, so an agent swapped for qemu-ga (or back) carries on
 * numbering where the other stopped, and there is no process-wide counter to keep in sync.
 */
#include "agent/agent.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define STATE_FILE        "qga.state"
#define STATE_MAX_SIZE    (64 * 1024)
#define FD_COUNTER_FIRST  INT64_C(1000)

/* fd_counter from the key file text, or FD_COUNTER_FIRST when absent or unreadable. */
static int64_t parse_fd_counter(const char *text)
{
        bool in_global = false;
        const char *line = text;

        while (line && *line) {
                const char *end = strchr(line, '\n');
                size_t len = end ? (size_t)(end - line) : strlen(line);
                char buf[128];

                if (len < sizeof(buf)) {
                        memcpy(buf, line, len);
                        buf[len] = '\0';
                        if (buf[0] == '[') {
                                in_global = strcmp(buf, "[global]") == 0;
                        } else if (in_global && strncmp(buf, "fd_counter", 10) == 0) {
                                char *v = buf + 10;
                                int64_t n;

                                while (*v == ' ')
                                        v++;
                                if (*v++ == '=') {
                                        while (*v == ' ')
                                                v++;
                                        if (tt_parse_int64(v, 10, &n) == 0 &&
                                            n >= FD_COUNTER_FIRST && n < INT64_MAX)
                                                return n;
                                }
                        }
                }
                line = end ? end + 1 : NULL;
        }
        return FD_COUNTER_FIRST;
}

int agent_state_next_handle(struct agent_ctx *ctx, int64_t *handle, struct tt_error *err)
{
        _cleanup_free_ char *text = NULL;
        struct tt_error rerr = {0};
        char path[4096], data[64];
        size_t len = 0;
        int64_t next = FD_COUNTER_FIRST;
        int n;

        if (ctx->cfg->statedir == NULL)
                return tt_error_set(err, EINVAL, "failed to commit persistent state to disk");
        n = snprintf(path, sizeof(path), "%s/%s", ctx->cfg->statedir, STATE_FILE);
        if (n < 0 || (size_t)n >= sizeof(path))
                return tt_error_set(err, ENAMETOOLONG, "failed to commit persistent state to disk");
        if (tt_read_file(path, STATE_MAX_SIZE, &text, &len, &rerr) == 0)
                next = parse_fd_counter(text);
        else if (rerr.code != ENOENT)
                tt_warn("%s; handles start again at %" PRId64, rerr.msg, next);
        tt_error_clear(&rerr);

        n = snprintf(data, sizeof(data), "[global]\nfd_counter=%" PRId64 "\n", next + 1);
        if (tt_write_file_atomic(path, data, (size_t)n, 0644, &rerr) < 0) {
                tt_err("%s", rerr.msg);
                tt_error_clear(&rerr);
                /* qemu-ga's text: the handle would not survive a restart, so refuse it. */
                return tt_error_set(err, EIO, "failed to commit persistent state to disk");
        }
        *handle = next;
        return 0;
}
