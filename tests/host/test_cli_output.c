/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for src/cli/output.c: virsh's vshTable layout (padding by display width, the
 * dashes, --quiet), libvirt 9.0's yajl text of JSON values (what `qemu-agent-command --pretty`
 * prints), option lookups and the error line. The expected texts are virsh's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

/* What fn printed on stdout (or stderr with err), as a malloc'd string. */
static char *capture(void (*fn)(void *), void *arg, bool err)
{
        FILE *stream = err ? stderr : stdout;
        int fd = fileno(stream), saved;
        FILE *tmp = tmpfile();
        char *text;
        long n;

        assert_non_null(tmp);
        fflush(stream);
        saved = dup(fd);
        assert_true(saved >= 0);
        assert_true(dup2(fileno(tmp), fd) >= 0);
        fn(arg);
        fflush(stream);
        assert_true(dup2(saved, fd) >= 0);
        close(saved);
        n = ftell(tmp);
        assert_true(n >= 0);
        text = calloc(1, (size_t)n + 1);
        assert_non_null(text);
        rewind(tmp);
        assert_int_equal(fread(text, 1, (size_t)n, tmp), (size_t)n);
        fclose(tmp);
        return text;
}

struct table_case {
        struct cli_table t;
        bool quiet;
};

static void print_table(void *arg)
{
        struct table_case *c = arg;

        cli_table_print(&c->t, c->quiet);
}

static void fill(struct cli_table *t)
{
        cli_table_init(t, 3, (const char *const[]){"Id", "Name", "State"});
        cli_table_add(t, (const char *const[]){"1", "ga", "running"});
        cli_table_add(t, (const char *const[]){"-", "longer-name", "shut off"});
}

static void test_table(void **state)
{
        struct table_case c = {.quiet = false};
        char *out;

        (void)state;
        fill(&c.t);
        out = capture(print_table, &c, false);
        /* virsh list: " %s" cells, padded to the widest + 2, dashes of sum(width + 3). */
        assert_string_equal(out, " Id   Name          State\n"
                                 "------------------------------\n"
                                 " 1    ga            running\n"
                                 " -    longer-name   shut off\n"
                                 "\n");
        free(out);
        cli_table_free(&c.t);
        assert_null(c.t.cells);
}

static void test_table_quiet(void **state)
{
        struct table_case c = {.quiet = true};
        char *out;

        (void)state;
        cli_table_init(&c.t, 2, (const char *const[]){"A-long-header", "B"});
        cli_table_add(&c.t, (const char *const[]){"x", "y"});
        cli_table_add(&c.t, (const char *const[]){"xyz", NULL});
        out = capture(print_table, &c, false);
        /* No header, no dashes, no blank line; the header does not widen the columns. */
        assert_string_equal(out, " x     y\n"
                                 " xyz   \n");
        free(out);
        cli_table_free(&c.t);
}

static void test_table_wide_chars(void **state)
{
        struct table_case c = {.quiet = false};
        char *out;

        (void)state;
        assert_non_null(setlocale(LC_ALL, "C.UTF-8"));
        cli_table_init(&c.t, 2, (const char *const[]){"Name", "X"});
        cli_table_add(&c.t, (const char *const[]){"\xc3\xa9t\xc3\xa9", "1"});     /* été: 3 */
        cli_table_add(&c.t, (const char *const[]){"\xe6\x97\xa5\xe6\x9c\xac", "2"}); /* 2 x 2 */
        out = capture(print_table, &c, false);
        /* Padded by display width: "Name" is the widest (4), été takes 3, 日本 4. */
        assert_string_equal(out, " Name   X\n"
                                 "-----------\n"
                                 " \xc3\xa9t\xc3\xa9    1\n"
                                 " \xe6\x97\xa5\xe6\x9c\xac   2\n"
                                 "\n");
        free(out);
        cli_table_free(&c.t);
        setlocale(LC_ALL, "C");
}

static void check_json(const char *json, bool pretty, const char *want)
{
        json_error_t e;
        json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        char *text;

        assert_non_null(v);
        text = cli_json_libvirt(v, pretty);
        assert_non_null(text);
        assert_string_equal(text, want);
        free(text);
        json_decref(v);
}

static void test_json_pretty(void **state)
{
        (void)state;
        /* virsh qemu-agent-command --pretty D '{"execute":"guest-ping"}' */
        check_json("{\"return\": {}}", true, "{\n  \"return\": {\n\n  }\n}\n");
        check_json("{\"a\": 1, \"b\": [true, null, \"x\"], \"c\": [], \"d\": {\"e\": -2.5}}",
                   true,
                   "{\n"
                   "  \"a\": 1,\n"
                   "  \"b\": [\n"
                   "    true,\n"
                   "    null,\n"
                   "    \"x\"\n"
                   "  ],\n"
                   "  \"c\": [\n"
                   "\n"
                   "  ],\n"
                   "  \"d\": {\n"
                   "    \"e\": -2.5\n"
                   "  }\n"
                   "}\n");
        /* yajl ends a top-level value with a newline when beautifying. */
        check_json("[]", true, "[\n\n]\n");
        check_json("\"s\"", true, "\"s\"\n");
        check_json("42", true, "42\n");
}

static void test_json_strings(void **state)
{
        (void)state;
        /* yajl escapes '"', '\\' and control bytes; '/' and UTF-8 stay as they are. */
        check_json("{\"k\\\"\": \"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/\xc3\xa9\"}", true,
                   "{\n  \"k\\\"\": \"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001F/\xc3\xa9\"\n}\n");
        /* A NUL inside a string is kept (length-counted), escaped. */
        check_json("\"a\\u0000b\"", true, "\"a\\u0000b\"\n");
}

static void test_json_compact(void **state)
{
        (void)state;
        check_json("{\"return\": {}}", false, "{\"return\":{}}");
        check_json("{\"a\": [1, 2], \"b\": \"x\"}", false, "{\"a\":[1,2],\"b\":\"x\"}");
}

static void test_flags(void **state)
{
        struct cli_opts o = {.flags = {"pretty", "mountpoint=/a", "timeout=5", "mountpoint=/b",
                                       "timeout=7", "mount"},
                             .nflags = 6};
        json_t *v;

        (void)state;
        assert_true(cli_flag(&o, "pretty"));
        assert_true(cli_flag(&o, "mount"));
        assert_false(cli_flag(&o, "mountpoint")); /* only as name=value */
        assert_false(cli_flag(&o, "pret"));
        /* The last one given wins, as virsh's single-valued options. */
        assert_string_equal(cli_flag_value(&o, "timeout"), "7");
        assert_null(cli_flag_value(&o, "time"));
        assert_null(cli_flag_value(&o, "pretty"));
        v = cli_flag_values(&o, "mountpoint");
        assert_int_equal(json_array_size(v), 2);
        assert_string_equal(json_string_value(json_array_get(v, 0)), "/a");
        assert_string_equal(json_string_value(json_array_get(v, 1)), "/b");
        json_decref(v);
        v = cli_flag_values(&o, "nothing");
        assert_int_equal(json_array_size(v), 0);
        json_decref(v);
}

static void show_error(void *arg)
{
        cli_error("failed to get domain '%s'", (const char *)arg);
}

static void show_json(void *arg)
{
        cli_print_json(arg);
}

static void test_error_and_json(void **state)
{
        json_t *v = json_pack("{s:i, s:[s]}", "a", 1, "b", "c");
        char *out;

        (void)state;
        out = capture(show_error, "nosuch", true);
        assert_string_equal(out, "error: failed to get domain 'nosuch'\n");
        free(out);
        out = capture(show_json, v, false);
        assert_string_equal(out, "{\n  \"a\": 1,\n  \"b\": [\n    \"c\"\n  ]\n}\n");
        free(out);
        json_decref(v);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_table),
            cmocka_unit_test(test_table_quiet),
            cmocka_unit_test(test_table_wide_chars),
            cmocka_unit_test(test_json_pretty),
            cmocka_unit_test(test_json_strings),
            cmocka_unit_test(test_json_compact),
            cmocka_unit_test(test_flags),
            cmocka_unit_test(test_error_and_json),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
