/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qemu-ga's command line and [general] config keys, merged into struct agent_config. */
#ifndef TT_AGENT_CONFIG_H
#define TT_AGENT_CONFIG_H

#include <stdio.h>
#include "agent/agent.h"

#define AGENT_DEFAULT_CONFIG  "/etc/tether/agent.conf"
#define AGENT_DEFAULT_PIDFILE "/var/run/tether-agent.pid"
#define AGENT_DEFAULT_STATEDIR "/var/run"
#define AGENT_DEFAULT_HOOK    "/etc/tether/fsfreeze-hook"

/* What main() should do after the options are parsed. */
enum agent_action {
        AGENT_RUN,          /* serve requests */
        AGENT_EXIT_OK,      /* -V, -h, -D, "-b help": done, exit 0 */
};

/*
 * Parse argv and the config file (-c FILE, else $QGA_CONF, else the default, which may be
 * absent) into cfg; the command line overrides scalars and adds to the lists.
 */
int agent_config_parse(struct agent_config *cfg, int argc, char **argv, enum agent_action *action,
                       struct tt_error *err);
/* Read one config file into cfg (used by agent_config_parse and by tests). */
int agent_config_load_file(struct agent_config *cfg, const char *path, struct tt_error *err);
/* Print cfg as a config file (-D). */
void agent_config_dump(const struct agent_config *cfg, FILE *out);
void agent_config_free(struct agent_config *cfg);

#endif
