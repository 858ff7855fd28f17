/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The loop's owner-side calls (main.c); modules use the agent_loop_* calls in agent.h. */
#ifndef TT_AGENT_LOOP_H
#define TT_AGENT_LOOP_H

struct agent_ctx;
struct agent_loop;

struct agent_loop *agent_loop_new(void);
void agent_loop_free(struct agent_loop *l);
/* Fire due timers, wait for fds (or the next timer), run callbacks; negative errno on error. */
int agent_loop_run_once(struct agent_ctx *ctx);

#endif
