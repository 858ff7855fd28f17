/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-exec / guest-exec-status without the poll loop: no capture and no input-data, so the
 * handlers need no fd watches; guest-exec-status reaps by itself. Capture, input and reaping
 * timers are covered end to end by tests/agent/test_exec.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fixture {
        struct agent_config cfg;
        struct agent_ctx ctx;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct tt_error err = {0};

        assert_non_null(f);
        f->cfg.max_exec = 2;
        f->ctx.cfg = &f->cfg;
        assert_int_equal(agent_execs_init(&f->ctx, &err), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        agent_execs_free(&f->ctx);
        free(f);
        return 0;
}

/* Run a handler; returns its result, or NULL with *msg set to the error text (to free). */
static json_t *call(struct agent_ctx *ctx, agent_handler_fn fn, const char *args_text, char **msg)
{
        json_t *args = json_loads(args_text, 0, NULL), *ret = NULL;
        struct tt_error err = {0};
        int r;

        assert_non_null(args);
        r = fn(ctx, args, &ret, &err);
        json_decref(args);
        *msg = r < 0 ? err.msg : NULL;
        return ret;
}

static json_t *wait_exited(struct agent_ctx *ctx, json_int_t pid)
{
        char args[64], *msg;

        snprintf(args, sizeof(args), "{\"pid\": %lld}", (long long)pid);
        for (int i = 0; i < 5000; i++) {
                json_t *r = call(ctx, agent_cmd_exec_status, args, &msg);

                assert_non_null(r);
                if (json_is_true(json_object_get(r, "exited")))
                        return r;
                json_decref(r);
                nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        }
        fail_msg("pid %lld did not exit", (long long)pid);
        return NULL;
}

static json_int_t start(struct agent_ctx *ctx, const char *args)
{
        char *msg;
        json_t *r = call(ctx, agent_cmd_exec, args, &msg);
        json_int_t pid;

        if (r == NULL)
                fail_msg("guest-exec %s: %s", args, msg);
        pid = json_integer_value(json_object_get(r, "pid"));
        json_decref(r);
        return pid;
}

static void test_exit_and_signal(void **state)
{
        struct fixture *f = *state;
        char args[64], *msg;
        json_int_t pid;
        json_t *r;

        pid = start(&f->ctx, "{\"path\": \"/bin/sh\", \"arg\": [\"-c\", \"exit 7\"]}");
        r = wait_exited(&f->ctx, pid);
        assert_int_equal(json_integer_value(json_object_get(r, "exitcode")), 7);
        assert_null(json_object_get(r, "signal"));
        assert_null(json_object_get(r, "out-data"));
        json_decref(r);
        /* Collected once: the entry is gone. */
        snprintf(args, sizeof(args), "{\"pid\": %lld}", (long long)pid);
        assert_null(call(&f->ctx, agent_cmd_exec_status, args, &msg));
        assert_string_equal(msg, "Invalid parameter 'pid'");
        free(msg);

        pid = start(&f->ctx, "{\"path\": \"sh\", \"arg\": [\"-c\", \"kill -KILL $$\"]}");
        r = wait_exited(&f->ctx, pid);
        assert_int_equal(json_integer_value(json_object_get(r, "signal")), 9);
        assert_null(json_object_get(r, "exitcode"));
        json_decref(r);
}

static void test_spawn_errors(void **state)
{
        struct fixture *f = *state;
        char *msg;

        assert_null(call(&f->ctx, agent_cmd_exec, "{\"path\": \"/nonexistent/prog\"}", &msg));
        assert_string_equal(msg, "Guest agent command failed, error was 'Failed to execute child "
                                 "process \u201C/nonexistent/prog\u201D (No such file or directory)'");
        free(msg);
        assert_null(call(&f->ctx, agent_cmd_exec,
                         "{\"path\": \"env\", \"env\": [\"PATH=/nonexistent\"]}", &msg));
        assert_string_equal(msg, "Guest agent command failed, error was 'Failed to execute child "
                                 "process \u201Cenv\u201D (No such file or directory)'");
        free(msg);
        assert_null(call(&f->ctx, agent_cmd_exec, "{\"path\": \"/\"}", &msg));
        assert_string_equal(msg, "Guest agent command failed, error was 'Failed to execute child "
                                 "process \u201C/\u201D (Permission denied)'");
        free(msg);
        assert_null(call(&f->ctx, agent_cmd_exec, "{\"path\": \"cat\", \"input-data\": \"a b\"}", &msg));
        assert_string_equal(msg, "Base64 data contains invalid characters");
        free(msg);
}

static void test_limit(void **state)
{
        struct fixture *f = *state;
        json_int_t a, b;
        char *msg;

        a = start(&f->ctx, "{\"path\": \"true\"}");
        b = start(&f->ctx, "{\"path\": \"true\"}");
        assert_null(call(&f->ctx, agent_cmd_exec, "{\"path\": \"true\"}", &msg));
        assert_string_equal(msg, "too many guest-exec processes: limit is 2 (max-exec)");
        free(msg);
        json_decref(wait_exited(&f->ctx, a));
        json_decref(wait_exited(&f->ctx, b));
        json_decref(wait_exited(&f->ctx, start(&f->ctx, "{\"path\": \"true\"}")));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_exit_and_signal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_spawn_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
