/* SPDX-License-Identifier: GPL-2.0-or-later */
/* guestvcpus --cpulist: libvirt's bitmap syntax, parsed and formatted back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "host/cpulist.h"

/* Parse text and format it back; NULL when parsing fails (the error text is checked). */
static char *roundtrip(const char *text, int *count)
{
        static bool set[CPULIST_MAX + 1];
        static char buf[256];
        struct tt_error err = {0};

        memset(set, 0, sizeof(set));
        if (cpulist_parse(text, set, &err) < 0) {
                char want[128];

                snprintf(want, sizeof(want), "invalid argument: Failed to parse bitmap '%s'", text);
                assert_string_equal(err.msg, want);
                tt_error_clear(&err);
                return NULL;
        }
        *count = cpulist_format(set, buf, sizeof(buf));
        return buf;
}

static void test_valid(void **state)
{
        static const struct {
                const char *in, *out;
                int count;
        } rows[] = {
                {"0", "0", 1},         {"1", "1", 1},           {"0-3", "0-3", 4},
                {"3,1,2", "1-3", 3},   {"0-3,^2", "0-1,3", 3},  {"0-7,^1,^6", "0,2-5,7", 6},
                {"5,5", "5", 1},       {"4095", "4095", 1},     {"0-1,3-4", "0-1,3-4", 4},
                {"2-2", "2", 1},       {"^0", "", 0},
        };
        int count = -1;

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                char *out = roundtrip(rows[i].in, &count);

                assert_non_null(out);
                assert_string_equal(out, rows[i].out);
                assert_int_equal(count, rows[i].count);
        }
}

static void test_invalid(void **state)
{
        static const char *const bad[] = {"", "x", "1,", ",1", "1-", "3-1", "-1", "4096",
                                          "0-4096", "1x", "^1-2", "1--2", "99999999999999999999"};
        int count;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_null(roundtrip(bad[i], &count));
}

static void test_format_truncates(void **state)
{
        bool set[CPULIST_MAX + 1] = {false};
        char buf[8];

        for (int i = 0; i <= CPULIST_MAX; i += 2)
                set[i] = true;
        assert_int_equal(cpulist_format(set, buf, sizeof(buf)), 2048);
        assert_true(strlen(buf) < sizeof(buf));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_format_truncates),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
