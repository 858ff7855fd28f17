/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The agent targets' fixture: a context whose allow list holds only the commands that read
 * (and cannot change the machine or write a file), a scratch sysroot (TETHER_AGENT_SYSROOT)
 * that the input is written into, and a reply sink that checks what goes on the wire.
 */
#ifndef TT_FUZZ_AGENT_H
#define TT_FUZZ_AGENT_H

#include "agent/agent.h"

/* The context, made on first use; its sysroot is fuzz_scratch_dir(). */
struct agent_ctx *fuzz_agent_ctx(void);
/* Dispatch one request given as JSON text, as the agent's loop does. */
void fuzz_agent_request(const char *json_text);

#endif
