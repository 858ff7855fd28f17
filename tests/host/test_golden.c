/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Golden tests for the domain XML model and the QEMU command line:
 *   golden/<feature>.xml  -> golden/<feature>.args   (qemu_argv_join, compared with diff -u)
 *   golden/<feature>.xml  -> format(parse(x)) parsed again formats to the same bytes (dumpxml)
 *   invalid/<case>.xml    -> invalid/<case>.err      (the exact error text)
 * TETHER_REGEN=1 rewrites the .args and .err files instead of comparing; review them by eye.
 * Usage: test_golden TESTS_HOST_DIR
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileutil.h"
#include "host/domain.h"
#include "host/qemu_argv.h"

/* Fixed runtime inputs; qemu_start_check.py substitutes GOLDEN_ROOT with a temporary folder. */
#define GOLDEN_ROOT "/tmp/tether-golden"
static const char *const channel_sockets[] = { GOLDEN_ROOT "/agent.sock" };

static bool regen;
static int failures, checks;

static int xml_only(const struct dirent *d)
{
        size_t len = strlen(d->d_name);

        return len > 4 && strcmp(d->d_name + len - 4, ".xml") == 0;
}

static char *path_with_ext(const char *dir, const char *xml_name, const char *ext)
{
        char *out = NULL;
        int base = (int)(strlen(xml_name) - 4);

        if (asprintf(&out, "%s/%.*s%s", dir, base, xml_name, ext) < 0)
                abort();
        return out;
}

static char *read_or_null(const char *path)
{
        char *buf = NULL;
        size_t len;
        struct tt_error err = { 0 };

        if (tt_read_file(path, 1 << 20, &buf, &len, &err) < 0) {
                tt_error_clear(&err);
                return NULL;
        }
        return buf;
}

/* Show expected vs actual with diff -u, as vmd's regress tests do. */
static void show_diff(const char *expected_path, const char *actual)
{
        char tmp[] = "/tmp/host-golden-XXXXXX";
        int fd = mkstemp(tmp);
        pid_t pid;

        if (fd < 0 || write(fd, actual, strlen(actual)) != (ssize_t)strlen(actual)) {
                perror("mkstemp/write");
                return;
        }
        close(fd);
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                execlp("diff", "diff", "-u", expected_path, tmp, (char *)NULL);
                _exit(127);
        }
        if (pid > 0)
                waitpid(pid, NULL, 0);
        unlink(tmp);
}

static void compare_or_regen(const char *what, const char *path, const char *actual)
{
        _cleanup_free_ char *expected = NULL;
        struct tt_error err = { 0 };

        checks++;
        if (regen) {
                if (tt_write_file_atomic(path, actual, strlen(actual), 0644, &err) < 0) {
                        printf("not ok - %s: %s\n", what, err.msg);
                        tt_error_clear(&err);
                        failures++;
                        return;
                }
                printf("ok - %s (regenerated %s)\n", what, path);
                return;
        }
        expected = read_or_null(path);
        if (expected && strcmp(expected, actual) == 0) {
                printf("ok - %s\n", what);
                return;
        }
        printf("not ok - %s differs from %s\n", what, path);
        if (expected)
                show_diff(path, actual);
        else
                printf("# %s is missing; actual output:\n%s", path, actual);
        failures++;
}

static void fail(const char *what, const char *why)
{
        checks++;
        failures++;
        printf("not ok - %s: %s\n", what, why ? why : "(no message)");
}

/* The tap descriptors tetherd would pass: fixed numbers, so the golden files stay stable. */
static const int golden_tap_fds[] = { 40, 41, 42, 43 };

static void run_golden(const char *dir, const char *name)
{
        _cleanup_free_ char *xml_path = NULL, *args_path = path_with_ext(dir, name, ".args");
        _cleanup_free_ char *joined = NULL, *first = NULL, *second = NULL;
        struct tt_error err = { 0 };
        struct qemu_argv args;
        struct qemu_argv_runtime rt = {
                .qmp_socket = GOLDEN_ROOT "/qmp.sock",
                .channel_sockets = channel_sockets,
                .n_channel_sockets = 1,
                .console_socket = GOLDEN_ROOT "/ttyS0.sock",
                .vnc_port = 5901,
                .spice_port = 5902,
                .pidfile = GOLDEN_ROOT "/qemu.pid",
                .incoming_defer = strncmp(name, "restore-", 8) == 0,
                .tap_fds = golden_tap_fds,
                .n_tap_fds = TT_ARRAY_SIZE(golden_tap_fds),
        };
        _cleanup_domain_ struct domain *def = NULL, *again = NULL;

        if (asprintf(&xml_path, "%s/%s", dir, name) < 0)
                abort();
        def = domain_parse_file(xml_path, &err);
        if (def == NULL) {
                fail(name, err.msg);
                tt_error_clear(&err);
                return;
        }
        if (qemu_argv_build(def, &rt, &args, &err) < 0) {
                fail(name, err.msg);
                tt_error_clear(&err);
                return;
        }
        joined = qemu_argv_join(&args);
        qemu_argv_free(&args);
        compare_or_regen(name, args_path, joined);

        /* dumpxml round trip: what we write, we read back to the same definition and bytes. */
        first = domain_format(def);
        again = domain_parse(first, strlen(first), &err);
        checks++;
        if (again == NULL) {
                printf("not ok - %s round trip: %s\n%s", name, err.msg, first);
                tt_error_clear(&err);
                failures++;
                return;
        }
        second = domain_format(again);
        if (strcmp(first, second) != 0) {
                printf("not ok - %s round trip changed the XML\n--- first\n%s--- second\n%s", name, first,
                       second);
                failures++;
                return;
        }
        printf("ok - %s round trip\n", name);
}

static void run_invalid(const char *dir, const char *name)
{
        _cleanup_free_ char *xml_path = NULL, *err_path = path_with_ext(dir, name, ".err");
        _cleanup_free_ char *msg = NULL;
        struct tt_error err = { 0 };
        struct domain *def;

        if (asprintf(&xml_path, "%s/%s", dir, name) < 0)
                abort();
        def = domain_parse_file(xml_path, &err);
        if (def) {
                domain_free(def);
                fail(name, "parsed, but must be rejected");
                return;
        }
        if (asprintf(&msg, "%s\n", err.msg ? err.msg : "(no message)") < 0)
                abort();
        tt_error_clear(&err);
        compare_or_regen(name, err_path, msg);
}

static int for_each_xml(const char *dir, void (*fn)(const char *dir, const char *name))
{
        struct dirent **list;
        int n = scandir(dir, &list, xml_only, alphasort);

        if (n < 0) {
                printf("not ok - cannot read %s: %s\n", dir, strerror(errno));
                failures++;
                return -1;
        }
        for (int i = 0; i < n; i++) {
                fn(dir, list[i]->d_name);
                free(list[i]);
        }
        free(list);
        return n;
}

int main(int argc, char **argv)
{
        _cleanup_free_ char *golden = NULL, *invalid = NULL;
        const char *env = getenv("TETHER_REGEN");

        if (argc != 2) {
                fprintf(stderr, "usage: %s TESTS_HOST_DIR\n", argv[0]);
                return 2;
        }
        regen = env && strcmp(env, "1") == 0;
        if (asprintf(&golden, "%s/golden", argv[1]) < 0 || asprintf(&invalid, "%s/invalid", argv[1]) < 0)
                return 2;
        for_each_xml(golden, run_golden);
        for_each_xml(invalid, run_invalid);
        printf("1..%d\n# %d of %d checks failed\n", checks, failures, checks);
        return failures ? 1 : 0;
}
