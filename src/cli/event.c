/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tether event [DOMAIN] [--event NAME | --all] [--loop] [--timeout N] [--timestamp] [--list]:
 * virsh's `event` (tools/virsh-domain-event.c), on tetherd's event stream (the "events" verb:
 * after its reply, the connection carries {"event": ...} lines, see src/host/events.h).
 * Without --loop it ends after the first event, as virsh does; the exit status is 0 when at
 * least one event was received, 1 otherwise (virsh's).
 */
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The kinds tetherd tells (--list prints them, in virsh's order). */
static const char *const event_kinds[] = {"lifecycle", "reboot", "block-job", "agent-lifecycle",
                                          "snapshot"};

static const char *data_str(json_t *data, const char *key)
{
        const char *s = json_string_value(json_object_get(data, key));

        return s ? s : "unknown";
}

/* ---- one printer per kind: virsh's line (without the timestamp) ---- */

static void print_lifecycle(const char *dom, json_t *data)
{
        printf("event 'lifecycle' for domain '%s': %s %s\n", dom, data_str(data, "event"),
               data_str(data, "detail"));
}

static void print_reboot(const char *dom, json_t *data)
{
        printf("event 'reboot' for domain '%s'\n", dom);
}

static void print_agent(const char *dom, json_t *data)
{
        printf("event 'agent-lifecycle' for domain '%s': state: '%s' reason: '%s'\n", dom,
               data_str(data, "state"), data_str(data, "reason"));
}

static void print_block_job(const char *dom, json_t *data)
{
        printf("event 'block-job' for domain '%s': %s for %s %s\n", dom, data_str(data, "type"),
               data_str(data, "disk"), data_str(data, "status"));
}

/* virsh has no snapshot event: the same shape as the others. */
static void print_snapshot(const char *dom, json_t *data)
{
        printf("event 'snapshot' for domain '%s': %s %s\n", dom, data_str(data, "snapshot"),
               data_str(data, "action"));
}

static const struct {
        const char *kind;                            /* the message's "event" */
        void (*print)(const char *dom, json_t *data); /* its line */
} printers[] = {
        {"lifecycle", print_lifecycle},   {"reboot", print_reboot},
        {"agent-lifecycle", print_agent}, {"block-job", print_block_job},
        {"snapshot", print_snapshot},
};

/* virsh's --timestamp prefix (virTimeStringNowRaw): "2026-12-04 19:16:23.904+0000: ". */
static void print_timestamp(json_t *msg)
{
        json_t *ts = json_object_get(msg, "timestamp");
        time_t secs = (time_t)json_integer_value(json_object_get(ts, "seconds"));
        long usecs = (long)json_integer_value(json_object_get(ts, "microseconds"));
        struct tm tm;
        char buf[64];

        if (gmtime_r(&secs, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm) == 0)
                return;
        printf("%s.%03ld+0000: ", buf, usecs / 1000);
}

/* Print one event; false for the bus's own notice (not an event of the count). */
static bool print_event(json_t *msg, const struct cli_opts *o)
{
        const char *kind = json_string_value(json_object_get(msg, "event"));
        json_t *data = json_object_get(msg, "data");
        const char *dom = data_str(data, "domain");

        if (kind && strcmp(kind, "events-dropped") == 0) {
                /* tetherd dropped what did not fit in this client's queue while it lagged. */
                if (o->json) {
                        _cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);

                        if (text)
                                printf("%s\n", text);
                }
                fprintf(stderr, "events dropped: %lld\n",
                        (long long)json_integer_value(json_object_get(data, "count")));
                fflush(stdout);
                return false;
        }
        if (o->json) {
                _cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);

                if (text)
                        printf("%s\n", text);
                fflush(stdout);
                return true;
        }
        if (cli_flag(o, "timestamp"))
                print_timestamp(msg);
        for (size_t i = 0; i < TT_ARRAY_SIZE(printers); i++) {
                if (kind && strcmp(printers[i].kind, kind) == 0) {
                        printers[i].print(dom, data);
                        fflush(stdout);
                        return true;
                }
        }
        printf("event '%s' for domain '%s'\n", kind ? kind : "unknown", dom);
        fflush(stdout);
        return true;
}

/* virsh's checks, in its order, before anything is sent. */
int cli_args_event(json_t *args, const struct cli_opts *o)
{
        const char *ev = cli_flag_value(o, "event");
        const char *timeout = cli_flag_value(o, "timeout");
        bool all = cli_flag(o, "all"), list = cli_flag(o, "list");

        if (all && ev) {
                cli_error("Options --all and --event are mutually exclusive");
                return -1;
        }
        if (list && (all || ev)) {
                cli_error("Options --list and --%s are mutually exclusive", all ? "all" : "event");
                return -1;
        }
        if (o->npos > 1) {
                cli_error("unexpected data '%s'", o->pos[1]);
                return -1;
        }
        if (timeout && strcmp(timeout, "0") == 0) {
                cli_error("Numeric value '0' for <timeout> option is malformed or out of range");
                return -1;
        }
        if (!list && !all && ev == NULL) {
                cli_error("one of --list, --all, or --event <type> is required");
                return -1;
        }
        /* Only the filter goes to tetherd; the rest is ours. */
        json_object_clear(args);
        if (ev)
                json_object_set_new(args, "event", json_string(ev));
        if (o->npos == 1)
                json_object_set_new(args, "domain", json_string(o->pos[0]));
        return 0;
}

static volatile sig_atomic_t event_interrupted;

static void on_interrupt(int sig)
{
        event_interrupted = 1;
}

static double mono_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

enum wait_end { WAIT_DONE, WAIT_TIMEOUT, WAIT_INTERRUPT, WAIT_ERROR };

/*
 * Wait for the next message: a queued one, or what arrives before the deadline (< 0: none).
 * WAIT_DONE with *msg set, or why not.
 */
static enum wait_end next_message(struct cli_conn *c, double deadline, json_t **msg,
                                  struct tt_error *err)
{
        *msg = NULL;
        while (json_array_size(c->queue) == 0) {
                struct pollfd p = {.fd = c->rfd, .events = POLLIN};
                int ms = -1, n;

                if (event_interrupted)
                        return WAIT_INTERRUPT;
                if (deadline >= 0) {
                        double left = deadline - mono_now();

                        if (left <= 0)
                                return WAIT_TIMEOUT;
                        ms = (int)(left * 1000) + 1;
                }
                n = poll(&p, 1, ms);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        tt_error_set(err, errno, "cannot wait for events: %s", strerror(errno));
                        return WAIT_ERROR;
                }
                if (n > 0)
                        break;
        }
        /* A message is queued, or bytes are there: cli_recv reads them. */
        *msg = cli_recv(c, err);
        return *msg ? WAIT_DONE : WAIT_ERROR;
}

int cli_run_event(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        const char *timeout = cli_flag_value(o, "timeout");
        bool loop = cli_flag(o, "loop");
        struct sigaction sa = {.sa_handler = on_interrupt};
        struct tt_error err = {0};
        _cleanup_json_ json_t *reply = NULL;
        enum wait_end end = WAIT_DONE;
        double deadline = -1;
        int64_t secs = 0;
        int count = 0;

        if (cli_flag(o, "list")) {
                for (size_t i = 0; i < TT_ARRAY_SIZE(event_kinds); i++)
                        printf("%s\n", event_kinds[i]);
                if (!o->quiet)
                        printf("\n");
                return EXIT_SUCCESS;
        }
        reply = cli_call(c, "events", args, &err);
        if (reply == NULL || json_object_get(reply, "error")) {
                cli_error("%s", reply ? json_string_value(json_object_get(
                                                json_object_get(reply, "error"), "desc"))
                                      : err.msg);
                tt_error_clear(&err);
                if (!o->quiet)
                        printf("\n");
                return EXIT_FAILURE;
        }
        /* No SA_RESTART: Ctrl-C ends the wait at once, and the count is still printed. */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        if (timeout && tt_parse_int64(timeout, 10, &secs) == 0 && secs > 0)
                deadline = mono_now() + (double)secs;
        for (;;) {
                _cleanup_json_ json_t *msg = NULL;

                end = next_message(c, deadline, &msg, &err);
                if (end != WAIT_DONE)
                        break;
                if (!json_object_get(msg, "event"))
                        continue; /* a reply: none is expected once subscribed */
                if (print_event(msg, o))
                        count++;
                if (count > 0 && !loop)
                        break;
        }
        if (end == WAIT_ERROR) {
                cli_error("%s", err.msg ? err.msg : "the daemon closed the connection");
                tt_error_clear(&err);
        }
        if (o->json) {
                /* One line, like the events before it: the stream stays line-delimited JSON. */
                _cleanup_json_ json_t *j =
                        json_pack("{s:i, s:b, s:b}", "events_received", count, "timed_out",
                                  end == WAIT_TIMEOUT, "interrupted", end == WAIT_INTERRUPT);
                _cleanup_free_ char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

                if (text)
                        printf("%s\n", text);
        } else {
                if (end == WAIT_INTERRUPT)
                        printf("event loop interrupted\n");
                else if (end == WAIT_TIMEOUT)
                        printf("event loop timed out\n");
                printf("events received: %d\n", count);
                if (!o->quiet)
                        printf("\n");
        }
        fflush(stdout);
        return count > 0 && end != WAIT_ERROR ? EXIT_SUCCESS : EXIT_FAILURE;
}
