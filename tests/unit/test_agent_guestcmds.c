/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the commands that change the guest (power.c, time.c, freeze.c, cpumem.c,
 * passwd.c, sshkeys.c). They must never touch the build machine: every path (programs
 * included) is taken under TETHER_AGENT_SYSROOT, a fixture tree in /tmp; freeze and trim
 * ioctls go to the fake agent_fs_ioctl() below. set-time's settimeofday() goes to the fake
 * agent_settimeofday(), which records the time and never calls the real one; its RTC ioctls go to
 * the fake agent_rtc_ioctl(), which only accepts the fixture's /dev/rtc0 (a regular file) and
 * either passes through to ioctl() (ENOTTY) or answers RTC_RD_TIME and records RTC_SET_TIME.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/rtc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/loop.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"

static char root[256]; /* the sysroot */
static char statedir[300];

/* ---- fixture helpers ---- */

static char *rpath(const char *rel)
{
        static char buf[4][512];
        static int k;

        k = (k + 1) % 4;
        snprintf(buf[k], sizeof(buf[k]), "%s%s", root, rel);
        return buf[k];
}

static void put(const char *rel, const char *text, mode_t mode)
{
        struct tt_error err = {0};
        char *p = rpath(rel);
        char dir[512];

        snprintf(dir, sizeof(dir), "%s", p);
        *strrchr(dir, '/') = '\0';
        assert_int_equal(tt_mkdir_p(dir, 0755, &err), 0);
        unlink(p);
        assert_int_equal(tt_write_file_atomic(p, text, strlen(text), mode, &err), 0);
}

static char *get(const char *rel)
{
        static char *text;
        struct tt_error err = {0};

        free(text);
        text = NULL;
        if (tt_read_file(rpath(rel), 1 << 20, &text, NULL, &err) < 0) {
                tt_error_clear(&err);
                return NULL;
        }
        return text;
}

static void mkdirs(const char *rel)
{
        struct tt_error err = {0};

        assert_int_equal(tt_mkdir_p(rpath(rel), 0755, &err), 0);
}

/* A fake helper program: appends "NAME ARGS" (and stdin, if asked) to /log, exits with code. */
static void fake_program(const char *rel, int code, bool log_stdin)
{
        char script[1024];

        snprintf(script, sizeof(script),
                 "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> '%s/log'\n%s%s%s"
                 "exit %d\n",
                 root, log_stdin ? "cat >> '" : "", log_stdin ? root : "",
                 log_stdin ? "/log'\n" : "", code);
        put(rel, script, 0755);
}

static void rm_rf(const char *rel)
{
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s%s'", root, rel);
        assert_int_equal(system(cmd), 0);
}

struct call {
        json_t *ret;
        struct tt_error err;
        int rc;
};

static struct agent_config cfg;
static struct agent_ctx ctx;

/* Check args against the command's spec, then run its handler. */
static struct call run(const char *name, const char *args_json)
{
        const struct agent_command *cmd = agent_command_find(name);
        struct call c = {0};
        json_t *args;

        assert_non_null(cmd);
        args = json_loads(args_json ? args_json : "{}", 0, NULL);
        assert_non_null(args);
        c.rc = wire_args_check(cmd->args, args, &c.err);
        if (c.rc == 0)
                c.rc = cmd->handler(&ctx, args, &c.ret, &c.err);
        json_decref(args);
        return c;
}

static void expect_error(struct call c, const char *msg)
{
        if (c.rc == 0)
                fail_msg("expected error \"%s\", got success", msg);
        assert_non_null(c.err.msg);
        assert_string_equal(c.err.msg, msg);
        tt_error_clear(&c.err);
        json_decref(c.ret);
}

/* Expect success and a reply that serialises to want (NULL: {"return": {}}). */
static void expect_ok(struct call c, const char *want)
{
        if (c.rc < 0)
                fail_msg("unexpected error: %s", c.err.msg);
        if (want == NULL) {
                assert_null(c.ret);
        } else {
                char *got = wire_dumps(c.ret);

                assert_non_null(got);
                assert_string_equal(got, want);
                free(got);
        }
        json_decref(c.ret);
}

/* ---- the fake FIFREEZE/FITHAW/FITRIM ---- */

static char ioctl_log[4096]; /* "FREEZE dir;THAW dir;..." */
static char fail_path[512];  /* FIFREEZE/FITRIM on this directory fails with fail_errno */
static int fail_errno;
static int frozen_count[8]; /* per fixture mount: how often frozen, to answer FITHAW */

static const char *const mount_names[] = {"/mnt/a", "/mnt/b", "/mnt/c", "/mnt/d"};

static int mount_index(const char *path)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(mount_names); i++)
                if (strcmp(path, rpath(mount_names[i])) == 0)
                        return (int)i;
        return -1;
}

int agent_fs_ioctl(int fd, unsigned long request, void *arg)
{
        char link[64], path[512];
        ssize_t n;
        int i;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, path, sizeof(path) - 1);
        assert_true(n > 0);
        path[n] = '\0';
        i = mount_index(path);
        /* anything outside the fixture would be the build machine's file system */
        assert_true(i >= 0);
        if (request == FIFREEZE) {
                strcat(ioctl_log, "FREEZE ");
                strcat(ioctl_log, mount_names[i]);
                strcat(ioctl_log, ";");
                if (strcmp(path, fail_path) == 0) {
                        errno = fail_errno;
                        return -1;
                }
                frozen_count[i]++;
                return 0;
        }
        if (request == FITHAW) {
                strcat(ioctl_log, "THAW ");
                strcat(ioctl_log, mount_names[i]);
                strcat(ioctl_log, ";");
                if (frozen_count[i] == 0) {
                        errno = EINVAL;
                        return -1;
                }
                frozen_count[i]--;
                return 0;
        }
        if (request == FITRIM) {
                struct fstrim_range *r = arg;

                if (strcmp(path, fail_path) == 0) {
                        errno = fail_errno;
                        return -1;
                }
                r->len = 4096u * (unsigned)(i + 1);
                return 0;
        }
        fail_msg("unexpected ioctl %lx", request);
        return -1;
}

static void reset_ioctls(void)
{
        ioctl_log[0] = '\0';
        fail_path[0] = '\0';
        fail_errno = 0;
        memset(frozen_count, 0, sizeof(frozen_count));
}

/* ---- the fake settimeofday() and RTC ioctls: the build machine's clocks are never set ---- */

static struct timeval set_tv; /* what agent_settimeofday() was given last */
static int settime_calls;
static int settime_errno;       /* non-zero: agent_settimeofday() fails with it */
static bool rtc_fake;           /* false: the real ioctl() on the fixture file (ENOTTY) */
static struct rtc_time rtc_now; /* the fake's answer to RTC_RD_TIME */
static struct rtc_time rtc_set; /* what the fake got with RTC_SET_TIME */
static int rtc_errno;           /* non-zero: the fake's ioctls fail with it */
static char rtc_log[256];       /* "RTC_RD_TIME;RTC_SET_TIME;...", in both modes */

int agent_settimeofday(const struct timeval *tv)
{
        settime_calls++;
        set_tv = *tv;
        if (settime_errno) {
                errno = settime_errno;
                return -1;
        }
        return 0;
}

int agent_rtc_ioctl(int fd, unsigned long request, void *arg)
{
        char link[64], path[512];
        struct stat st;
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, path, sizeof(path) - 1);
        assert_true(n > 0);
        path[n] = '\0';
        /* anything else would be the build machine's clock */
        assert_string_equal(path, rpath("/dev/rtc0"));
        assert_int_equal(fstat(fd, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        if (request == RTC_RD_TIME)
                strcat(rtc_log, "RTC_RD_TIME;");
        else if (request == RTC_SET_TIME)
                strcat(rtc_log, "RTC_SET_TIME;");
        else
                fail_msg("unexpected ioctl %lx", request);
        if (!rtc_fake)
                return ioctl(fd, request, arg);
        if (rtc_errno) {
                errno = rtc_errno;
                return -1;
        }
        if (request == RTC_RD_TIME)
                *(struct rtc_time *)arg = rtc_now;
        else
                rtc_set = *(const struct rtc_time *)arg;
        return 0;
}

static void reset_clocks(void)
{
        memset(&set_tv, 0, sizeof(set_tv));
        settime_calls = 0;
        settime_errno = 0;
        rtc_fake = false;
        memset(&rtc_now, 0, sizeof(rtc_now));
        memset(&rtc_set, 0, sizeof(rtc_set));
        rtc_errno = 0;
        rtc_log[0] = '\0';
}

/* ---- set-up ---- */

static int setup(void **state)
{
        snprintf(root, sizeof(root), "/tmp/guestcmds-unit-XXXXXX");
        if (mkdtemp(root) == NULL)
                return -1;
        if (setenv("TETHER_AGENT_SYSROOT", root, 1) < 0)
                return -1;
        /* programs are looked up along PATH, under the sysroot */
        setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
        snprintf(statedir, sizeof(statedir), "%s/state", root);
        mkdir(statedir, 0700);
        cfg.statedir = statedir;
        cfg.freeze_timeout = 600;
        ctx.cfg = &cfg;
        ctx.loop = agent_loop_new();
        signal(SIGPIPE, SIG_IGN);
        tt_log_enable(false);
        return ctx.loop ? 0 : -1;
}

static int teardown(void **state)
{
        char cmd[300];

        agent_loop_free(ctx.loop);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        return system(cmd) == 0 ? 0 : -1;
}

/* Every test starts from an empty sysroot (but the state dir) and a thawed agent. */
static int fresh(void **state)
{
        const char *sysroot = getenv("TETHER_AGENT_SYSROOT");

        /* the whole file relies on this: never run against the real machine */
        if (sysroot == NULL || strcmp(sysroot, root) != 0 || strncmp(root, "/tmp/", 5) != 0)
                abort();
        rm_rf("/etc");
        rm_rf("/sbin");
        rm_rf("/bin");
        rm_rf("/usr");
        rm_rf("/sys");
        rm_rf("/proc");
        rm_rf("/dev");
        rm_rf("/home");
        rm_rf("/root");
        rm_rf("/mnt");
        rm_rf("/log");
        rm_rf("/hook");
        rm_rf("/state/qga.state.isfrozen");
        if (ctx.thaw_timer)
                agent_loop_cancel_timer(&ctx, ctx.thaw_timer);
        ctx.thaw_timer = 0;
        ctx.frozen = false;
        cfg.fsfreeze_hook = NULL;
        cfg.freeze_timeout = 600;
        reset_ioctls();
        reset_clocks();
        return 0;
}

/* ---- the command table ---- */

static void test_table_flags(void **state)
{
        static const struct {
                const char *name;
                unsigned flags;
        } rows[] = {
            {"guest-set-time", AGENT_CHANGES_GUEST},
            {"guest-shutdown", AGENT_CHANGES_GUEST | AGENT_NO_SUCCESS_RESPONSE},
            {"guest-fsfreeze-freeze", AGENT_CHANGES_GUEST},
            {"guest-fsfreeze-freeze-list", AGENT_CHANGES_GUEST},
            {"guest-fsfreeze-thaw", AGENT_CHANGES_GUEST | AGENT_ALLOWED_WHILE_FROZEN},
            {"guest-fstrim", AGENT_CHANGES_GUEST},
            {"guest-suspend-disk", AGENT_CHANGES_GUEST | AGENT_NO_SUCCESS_RESPONSE},
            {"guest-suspend-ram", AGENT_CHANGES_GUEST | AGENT_NO_SUCCESS_RESPONSE},
            {"guest-suspend-hybrid", AGENT_CHANGES_GUEST | AGENT_NO_SUCCESS_RESPONSE},
            {"guest-set-vcpus", AGENT_CHANGES_GUEST},
            {"guest-set-user-password", AGENT_CHANGES_GUEST},
            {"guest-set-memory-blocks", AGENT_CHANGES_GUEST},
            {"guest-ssh-add-authorized-keys", AGENT_CHANGES_GUEST},
            {"guest-ssh-remove-authorized-keys", AGENT_CHANGES_GUEST},
        };
        /* qemu's schema order around the new rows */
        static const char *const order[] = {
            "guest-get-time",
            "guest-set-time",
            "guest-info",
            "guest-shutdown",
            "guest-file-open",
            "guest-fsfreeze-status",
            "guest-fsfreeze-freeze",
            "guest-fsfreeze-freeze-list",
            "guest-fsfreeze-thaw",
            "guest-fstrim",
            "guest-suspend-disk",
            "guest-suspend-ram",
            "guest-suspend-hybrid",
            "guest-network-get-interfaces",
            "guest-get-vcpus",
            "guest-set-vcpus",
            "guest-get-fsinfo",
            "guest-set-user-password",
            "guest-get-memory-blocks",
            "guest-set-memory-blocks",
            "guest-get-memory-block-info",
            "guest-ssh-get-authorized-keys",
            "guest-ssh-add-authorized-keys",
            "guest-ssh-remove-authorized-keys",
            "guest-get-diskstats",
        };
        const struct agent_command *prev = NULL;

        for (size_t i = 0; i < TT_ARRAY_SIZE(rows); i++) {
                const struct agent_command *c = agent_command_find(rows[i].name);

                assert_non_null(c);
                assert_int_equal(c->flags, rows[i].flags);
        }
        for (size_t i = 0; i < TT_ARRAY_SIZE(order); i++) {
                const struct agent_command *c = agent_command_find(order[i]);

                assert_non_null(c);
                if (prev)
                        assert_true(c > prev);
                prev = c;
        }
}

static void test_arg_specs(void **state)
{
        expect_error(run("guest-set-vcpus", "{\"vcpus\": [{\"logical-id\": 1}]}"),
                     "Parameter 'vcpus[0].online' is missing");
        expect_error(run("guest-set-memory-blocks", "{\"mem-blks\": [{\"phys-index\": \"1\", "
                                                    "\"online\": true}]}"),
                     "Parameter 'mem-blks[0].phys-index' expects uint64");
        expect_error(run("guest-set-user-password", "{\"username\": \"a\", \"password\": \"\"}"),
                     "Parameter 'crypted' is missing");
        expect_error(run("guest-ssh-add-authorized-keys", "{\"username\": \"a\"}"),
                     "Parameter 'keys' is missing");
        expect_error(run("guest-fsfreeze-freeze-list", "{\"mountpoints\": \"/\"}"),
                     "Invalid parameter type for 'mountpoints', expected: array");
        expect_error(run("guest-set-time", "{\"time\": \"now\"}"),
                     "Invalid parameter type for 'time', expected: integer");
}

/* ---- guest-shutdown ---- */

static void test_shutdown(void **state)
{
        expect_error(run("guest-shutdown", "{\"mode\": \"sleep\"}"),
                     "mode is invalid (valid values are: halt|powerdown|reboot");
        /* nothing to run at all */
        expect_error(run("guest-shutdown", NULL), "child process has failed to shutdown");

        fake_program("/sbin/shutdown", 0, false);
        expect_ok(run("guest-shutdown", "{\"mode\": \"halt\"}"), NULL);
        assert_string_equal(get("/log"), "shutdown -h -H +0 hypervisor initiated shutdown\n");

        fake_program("/sbin/poweroff", 0, false);
        fake_program("/sbin/reboot", 0, false);
        rm_rf("/log");
        expect_ok(run("guest-shutdown", NULL), NULL);
        expect_ok(run("guest-shutdown", "{\"mode\": \"reboot\"}"), NULL);
        expect_ok(run("guest-shutdown", "{\"mode\": \"halt\"}"), NULL);
        assert_string_equal(get("/log"), "poweroff \nreboot \nshutdown -h -H +0 hypervisor "
                                         "initiated shutdown\n");

        fake_program("/sbin/poweroff", 1, false);
        expect_error(run("guest-shutdown", "{\"mode\": \"powerdown\"}"),
                     "child process has failed to shutdown");
}

/* ---- guest-suspend-* ---- */

static void test_suspend_unsupported(void **state)
{
        const char *unsupported = "the requested suspend mode is not supported by the guest";

        expect_error(run("guest-suspend-disk", NULL), unsupported);
        expect_error(run("guest-suspend-ram", NULL), unsupported);
        expect_error(run("guest-suspend-hybrid", NULL), unsupported);
        /* a kernel that offers neither, and hybrid never has a sysfs way */
        put("/sys/power/state", "freeze\n", 0644);
        expect_error(run("guest-suspend-ram", NULL), unsupported);
        put("/sys/power/state", "freeze mem disk\n", 0644);
        expect_error(run("guest-suspend-hybrid", NULL), unsupported);
        /* systemctl that knows no such unit (LSB 4) and pm-is-supported saying no */
        fake_program("/bin/systemctl", 4, false);
        fake_program("/usr/bin/pm-is-supported", 1, false);
        expect_error(run("guest-suspend-hybrid", NULL), unsupported);
        assert_string_equal(get("/log"), "systemctl status systemd-hybrid-sleep\n"
                                         "pm-is-supported --suspend-hybrid\n");
}

static void test_suspend_sysfs(void **state)
{
        put("/sys/power/state", "freeze mem\n", 0644);
        expect_ok(run("guest-suspend-ram", NULL), NULL);
        assert_string_equal(get("/sys/power/state"), "mem");
        put("/sys/power/state", "freeze mem disk\n", 0644);
        expect_ok(run("guest-suspend-disk", NULL), NULL);
        assert_string_equal(get("/sys/power/state"), "disk");
}

static void test_suspend_helpers(void **state)
{
        /* systemd: "status" exits 3 (unit exists, inactive), then the verb runs */
        fake_program("/bin/systemctl", 3, false);
        expect_error(run("guest-suspend-ram", NULL), "the helper program 'systemctl suspend' "
                                                     "returned an unexpected exit status code (3)");
        assert_string_equal(get("/log"), "systemctl status systemd-suspend\n"
                                         "systemctl suspend\n");
        rm_rf("/bin");
        rm_rf("/log");
        /* pm-utils */
        fake_program("/usr/sbin/pm-is-supported", 0, false);
        fake_program("/usr/sbin/pm-hibernate", 0, false);
        expect_ok(run("guest-suspend-disk", NULL), NULL);
        assert_string_equal(get("/log"), "pm-is-supported --hibernate\npm-hibernate \n");
        expect_error(run("guest-suspend-hybrid", NULL),
                     "the helper program 'pm-suspend-hybrid' was not found");
}

/* ---- guest-set-time (the clocks are the fakes above) ---- */

#define SET_TIME_ARGS "{\"time\": 1700000000123456789}" /* 2023-11-14 22:13:20.123456789 UTC */

static void test_set_time(void **state)
{
        expect_error(run("guest-set-time", "{\"time\": -1000000000000000000}"),
                     "Invalid time: Success");
        expect_error(run("guest-set-time", "{\"time\": 3200000000000000000}"),
                     "Invalid time: Success");
        /* no hwclock and no RTC: nothing to read the time from */
        expect_error(run("guest-set-time", NULL),
                     "cannot open the hardware clock '/dev/rtc0': No such file or directory");
        put("/dev/rtc0", "", 0600);
        expect_error(run("guest-set-time", NULL), "cannot read the hardware clock '/dev/rtc0': "
                                                  "Inappropriate ioctl for device");
        fake_program("/sbin/hwclock", 0, false);
        expect_ok(run("guest-set-time", NULL), NULL);
        assert_string_equal(get("/log"), "hwclock -s\n");
        fake_program("/sbin/hwclock", 1, false);
        expect_error(run("guest-set-time", NULL),
                     "hwclock failed to set hardware clock to system time");
        /* hwclock -s set the system clock, not us */
        assert_int_equal(settime_calls, 0);
        assert_string_equal(rtc_log, "RTC_RD_TIME;");
}

/* No hwclock and no RTC: the system clock is all there is. */
static void test_set_time_system_only(void **state)
{
        expect_ok(run("guest-set-time", SET_TIME_ARGS), NULL);
        assert_int_equal(settime_calls, 1);
        assert_int_equal(set_tv.tv_sec, 1700000000);
        assert_int_equal(set_tv.tv_usec, 123456);
        assert_string_equal(rtc_log, "");
        assert_null(get("/log"));
}

static void test_set_time_rtc_write(void **state)
{
        put("/dev/rtc0", "", 0600);
        rtc_fake = true;
        expect_ok(run("guest-set-time", SET_TIME_ARGS), NULL);
        assert_int_equal(settime_calls, 1);
        assert_int_equal(set_tv.tv_sec, 1700000000);
        assert_int_equal(set_tv.tv_usec, 123456);
        assert_string_equal(rtc_log, "RTC_SET_TIME;");
        assert_int_equal(rtc_set.tm_year, 123);
        assert_int_equal(rtc_set.tm_mon, 10);
        assert_int_equal(rtc_set.tm_mday, 14);
        assert_int_equal(rtc_set.tm_hour, 22);
        assert_int_equal(rtc_set.tm_min, 13);
        assert_int_equal(rtc_set.tm_sec, 20);
}

static void test_set_time_rtc_write_errors(void **state)
{
        put("/dev/rtc0", "", 0600);
        rtc_fake = true;
        rtc_errno = EACCES;
        expect_error(run("guest-set-time", SET_TIME_ARGS),
                     "cannot set the hardware clock '/dev/rtc0': Permission denied");
        /* the system clock was set first */
        assert_int_equal(settime_calls, 1);
        assert_int_equal(set_tv.tv_sec, 1700000000);
        assert_string_equal(rtc_log, "RTC_SET_TIME;");
        /* the real ioctl() on a file that is no RTC */
        rtc_fake = false;
        expect_error(run("guest-set-time", SET_TIME_ARGS),
                     "cannot set the hardware clock '/dev/rtc0': Inappropriate ioctl for device");
        /* an RTC that cannot be opened, for another reason than not being there */
        rm_rf("/dev");
        put("/dev", "", 0644);
        rtc_log[0] = '\0';
        expect_error(run("guest-set-time", SET_TIME_ARGS),
                     "cannot open the hardware clock '/dev/rtc0': Not a directory");
        assert_string_equal(rtc_log, "");
        assert_int_equal(settime_calls, 3);
}

/* The system clock refuses: neither hardware clock is touched. */
static void test_set_time_settimeofday_fails(void **state)
{
        put("/dev/rtc0", "", 0600);
        rtc_fake = true;
        settime_errno = EPERM;
        expect_error(run("guest-set-time", SET_TIME_ARGS),
                     "Failed to set time to guest: Operation not permitted");
        assert_int_equal(settime_calls, 1);
        assert_string_equal(rtc_log, "");
        fake_program("/sbin/hwclock", 0, false);
        expect_error(run("guest-set-time", SET_TIME_ARGS),
                     "Failed to set time to guest: Operation not permitted");
        assert_null(get("/log"));
        assert_int_equal(settime_calls, 2);
        assert_string_equal(rtc_log, "");
}

static void test_set_time_hwclock(void **state)
{
        put("/dev/rtc0", "", 0600);
        rtc_fake = true;
        fake_program("/usr/bin/hwclock", 0, false);
        expect_ok(run("guest-set-time", SET_TIME_ARGS), NULL);
        assert_string_equal(get("/log"), "hwclock -w\n");
        assert_int_equal(settime_calls, 1);
        assert_int_equal(set_tv.tv_sec, 1700000000);
        assert_int_equal(set_tv.tv_usec, 123456);
        /* hwclock set the hardware clock, not us */
        assert_string_equal(rtc_log, "");
        fake_program("/usr/bin/hwclock", 1, false);
        expect_error(run("guest-set-time", SET_TIME_ARGS),
                     "hwclock failed to set hardware clock to system time");
        /* killed by a signal */
        put("/usr/bin/hwclock", "#!/bin/sh\nkill -KILL $$\n", 0755);
        expect_error(run("guest-set-time", SET_TIME_ARGS),
                     "child process has terminated abnormally");
        /* executable, but exec fails: qemu-ga's child would exit 1 */
        put("/usr/bin/hwclock", "not a program\n", 0755);
        expect_error(run("guest-set-time", SET_TIME_ARGS),
                     "hwclock failed to set hardware clock to system time");
        assert_string_equal(rtc_log, "");
}

/* No time, no hwclock: the system clock is set from /dev/rtc0, which keeps UTC. */
static void test_set_time_from_rtc(void **state)
{
        put("/dev/rtc0", "", 0600);
        rtc_fake = true;
        rtc_now.tm_year = 123;
        rtc_now.tm_mon = 10;
        rtc_now.tm_mday = 14;
        rtc_now.tm_hour = 22;
        rtc_now.tm_min = 13;
        rtc_now.tm_sec = 20;
        expect_ok(run("guest-set-time", NULL), NULL);
        assert_string_equal(rtc_log, "RTC_RD_TIME;");
        assert_int_equal(settime_calls, 1);
        assert_int_equal(set_tv.tv_sec, 1700000000);
        assert_int_equal(set_tv.tv_usec, 0);

        settime_errno = EPERM;
        expect_error(run("guest-set-time", NULL),
                     "Failed to set time to guest: Operation not permitted");
        assert_int_equal(settime_calls, 2);
}

static void test_set_time_from_rtc_errors(void **state)
{
        put("/dev/rtc0", "", 0600);
        rtc_fake = true;
        rtc_errno = EIO;
        expect_error(run("guest-set-time", NULL),
                     "cannot read the hardware clock '/dev/rtc0': Input/output error");
        /* 1969-12-31 23:59:59 UTC is the one time timegm() cannot tell from its error */
        rtc_errno = 0;
        rtc_now.tm_year = 69;
        rtc_now.tm_mon = 11;
        rtc_now.tm_mday = 31;
        rtc_now.tm_hour = 23;
        rtc_now.tm_min = 59;
        rtc_now.tm_sec = 59;
        expect_error(run("guest-set-time", NULL),
                     "the hardware clock '/dev/rtc0' holds an invalid time");
        assert_string_equal(rtc_log, "RTC_RD_TIME;RTC_RD_TIME;");
        assert_int_equal(settime_calls, 0);
}

/* ---- freeze, thaw, fstrim ---- */

static void mount_fixture(void)
{
        char text[2048];

        for (size_t i = 0; i < TT_ARRAY_SIZE(mount_names); i++)
                mkdirs(mount_names[i]);
        /* / on tmpfs (major 0: skipped), a, b, c = a bind mount of a (same device), d */
        snprintf(text, sizeof(text),
                 "21 1 0:20 / / rw,relatime - tmpfs rootfs rw\n"
                 "22 21 0:5 / /proc rw - proc proc rw\n"
                 "23 21 254:1 / %s rw,relatime - ext4 /dev/vda1 rw\n"
                 "24 21 254:16 / %s rw,relatime - ext4 /dev/vdb rw\n"
                 "25 21 254:1 /sub %s rw,relatime - ext4 /dev/vda1 rw\n"
                 "26 21 254:32 / %s rw,relatime - xfs /dev/vdc rw\n",
                 rpath("/mnt/a"), rpath("/mnt/b"), rpath("/mnt/c"), rpath("/mnt/d"));
        put("/proc/self/mountinfo", text, 0644);
}

static bool isfrozen_exists(void)
{
        return access(rpath("/state/qga.state.isfrozen"), F_OK) == 0;
}

static void test_freeze_thaw(void **state)
{
        mount_fixture();
        expect_ok(run("guest-fsfreeze-freeze", NULL), "3");
        /* reverse mount order, the bind mount of a only once */
        assert_string_equal(ioctl_log, "FREEZE /mnt/d;FREEZE /mnt/b;FREEZE /mnt/a;");
        assert_true(ctx.frozen);
        assert_true(isfrozen_exists());
        assert_true(ctx.thaw_timer != 0);
        expect_ok(run("guest-fsfreeze-status", NULL), "\"frozen\"");

        ioctl_log[0] = '\0';
        expect_ok(run("guest-fsfreeze-thaw", NULL), "3");
        /* FITHAW until it fails, in mount order */
        assert_string_equal(ioctl_log, "THAW /mnt/a;THAW /mnt/a;THAW /mnt/b;THAW /mnt/b;"
                                       "THAW /mnt/d;THAW /mnt/d;");
        assert_false(ctx.frozen);
        assert_false(isfrozen_exists());
        assert_int_equal(ctx.thaw_timer, 0);
        expect_ok(run("guest-fsfreeze-status", NULL), "\"thawed\"");
        /* thawing thawed file systems counts none */
        expect_ok(run("guest-fsfreeze-thaw", NULL), "0");
}

static void test_freeze_list(void **state)
{
        char args[1024];

        mount_fixture();
        snprintf(args, sizeof(args), "{\"mountpoints\": [\"%s\", \"/nowhere\"]}", rpath("/mnt/b"));
        expect_ok(run("guest-fsfreeze-freeze-list", args), "1");
        assert_string_equal(ioctl_log, "FREEZE /mnt/b;");
        assert_true(ctx.frozen);
        expect_ok(run("guest-fsfreeze-thaw", NULL), "1");

        /* nothing frozen: back to thawed, no state file */
        ioctl_log[0] = '\0';
        expect_ok(run("guest-fsfreeze-freeze-list", "{\"mountpoints\": [\"/nowhere\"]}"), "0");
        assert_string_equal(ioctl_log, "");
        assert_false(ctx.frozen);
        assert_false(isfrozen_exists());
        assert_int_equal(ctx.thaw_timer, 0);
}

static void test_freeze_errors(void **state)
{
        mount_fixture();
        /* cannot be frozen (EOPNOTSUPP) or already frozen (EBUSY): skipped, not counted */
        snprintf(fail_path, sizeof(fail_path), "%s", rpath("/mnt/b"));
        fail_errno = EOPNOTSUPP;
        expect_ok(run("guest-fsfreeze-freeze", NULL), "2");
        expect_ok(run("guest-fsfreeze-thaw", NULL), "2");
        fail_errno = EBUSY;
        expect_ok(run("guest-fsfreeze-freeze", NULL), "2");
        expect_ok(run("guest-fsfreeze-thaw", NULL), "2");

        /* any other error thaws what was frozen and reports it */
        reset_ioctls();
        snprintf(fail_path, sizeof(fail_path), "%s", rpath("/mnt/a"));
        fail_errno = EIO;
        {
                char want[600];

                snprintf(want, sizeof(want), "failed to freeze %s: Input/output error",
                         rpath("/mnt/a"));
                expect_error(run("guest-fsfreeze-freeze", NULL), want);
        }
        assert_string_equal(ioctl_log, "FREEZE /mnt/d;FREEZE /mnt/b;FREEZE /mnt/a;"
                                       "THAW /mnt/a;THAW /mnt/b;THAW /mnt/b;THAW /mnt/d;"
                                       "THAW /mnt/d;");
        assert_false(ctx.frozen);
        assert_false(isfrozen_exists());
}

static void test_freeze_hook(void **state)
{
        mount_fixture();
        put("/hook", "#!/bin/sh\necho \"$1\" >> \"$(dirname \"$0\")/log\"\n", 0755);
        cfg.fsfreeze_hook = "/hook";
        expect_ok(run("guest-fsfreeze-freeze", NULL), "3");
        assert_string_equal(get("/log"), "freeze\n");
        expect_ok(run("guest-fsfreeze-thaw", NULL), "3");
        assert_string_equal(get("/log"), "freeze\nthaw\n");

        /* a failing freeze hook aborts before anything is frozen */
        put("/hook", "#!/bin/sh\nexit 3\n", 0755);
        ioctl_log[0] = '\0';
        expect_error(run("guest-fsfreeze-freeze", NULL), "fsfreeze hook has failed with status 3");
        assert_string_equal(ioctl_log, "");
        assert_false(ctx.frozen);
        assert_false(isfrozen_exists());

        cfg.fsfreeze_hook = "/no-hook";
        expect_error(run("guest-fsfreeze-freeze", NULL),
                     "can't access fsfreeze hook '/no-hook': No such file or directory");
        assert_false(ctx.frozen);
}

static void tick_fn(struct agent_ctx *c, void *opaque)
{
}

static void test_auto_thaw(void **state)
{
        uint64_t deadline;

        mount_fixture();
        cfg.freeze_timeout = 1;
        expect_ok(run("guest-fsfreeze-freeze", NULL), "3");
        assert_true(ctx.frozen);
        deadline = agent_now_ms() + 5000;
        while (ctx.frozen && agent_now_ms() < deadline) {
                /* the loop has no fds here: a short timer keeps poll() from sleeping forever */
                uint64_t tick = agent_loop_add_timer(&ctx, 50, tick_fn, NULL);

                assert_true(agent_loop_run_once(&ctx) >= 0);
                agent_loop_cancel_timer(&ctx, tick);
        }
        assert_false(ctx.frozen);
        assert_false(isfrozen_exists());
        assert_int_equal(ctx.thaw_timer, 0);
        assert_int_equal(frozen_count[0] + frozen_count[1] + frozen_count[3], 0);

        /* timeout 0: never thawed automatically */
        cfg.freeze_timeout = 0;
        expect_ok(run("guest-fsfreeze-freeze", NULL), "3");
        assert_int_equal(ctx.thaw_timer, 0);
        expect_ok(run("guest-fsfreeze-thaw", NULL), "3");
}

static void test_freeze_init(void **state)
{
        /* not frozen, no file: nothing happens */
        agent_freeze_init(&ctx);
        assert_false(ctx.frozen);
        assert_int_equal(ctx.thaw_timer, 0);
        /* a restarted agent finds the state file: frozen, with the auto-thaw timer armed */
        put("/state/qga.state.isfrozen", "", 0600);
        agent_freeze_init(&ctx);
        assert_true(ctx.frozen);
        assert_true(ctx.thaw_timer != 0);
        mount_fixture();
        expect_ok(run("guest-fsfreeze-thaw", NULL), "0");
        assert_false(ctx.frozen);
        assert_false(isfrozen_exists());
}

static void test_fstrim(void **state)
{
        char want[2048];

        mount_fixture();
        snprintf(fail_path, sizeof(fail_path), "%s", rpath("/mnt/b"));
        fail_errno = EOPNOTSUPP;
        /* qemu-ga lists the mounts last first */
        snprintf(want, sizeof(want),
                 "{\"paths\": [{\"path\": \"%s\", \"trimmed\": 16384, \"minimum\": 512}, "
                 "{\"path\": \"%s\", \"error\": \"trim not supported\"}, "
                 "{\"path\": \"%s\", \"trimmed\": 4096, \"minimum\": 512}]}",
                 rpath("/mnt/d"), rpath("/mnt/b"), rpath("/mnt/a"));
        expect_ok(run("guest-fstrim", "{\"minimum\": 512}"), want);
        fail_errno = EIO;
        snprintf(want, sizeof(want),
                 "{\"paths\": [{\"path\": \"%s\", \"trimmed\": 16384, \"minimum\": 0}, "
                 "{\"path\": \"%s\", \"error\": \"failed to trim: Input/output error\"}, "
                 "{\"path\": \"%s\", \"trimmed\": 4096, \"minimum\": 0}]}",
                 rpath("/mnt/d"), rpath("/mnt/b"), rpath("/mnt/a"));
        expect_ok(run("guest-fstrim", NULL), want);
        rm_rf("/mnt/a");
        snprintf(want, sizeof(want),
                 "{\"paths\": [{\"path\": \"%s\", \"trimmed\": 16384, \"minimum\": 0}, "
                 "{\"path\": \"%s\", \"error\": \"failed to trim: Input/output error\"}, "
                 "{\"path\": \"%s\", \"error\": \"failed to open: No such file or directory\"}]}",
                 rpath("/mnt/d"), rpath("/mnt/b"), rpath("/mnt/a"));
        expect_ok(run("guest-fstrim", NULL), want);
}

/* ---- guest-set-vcpus, guest-set-memory-blocks ---- */

static void test_set_vcpus(void **state)
{
        mkdirs("/sys/devices/system/cpu/cpu0");
        put("/sys/devices/system/cpu/cpu1/online", "1\n", 0644);
        put("/sys/devices/system/cpu/cpu2/online", "0\n", 0644);

        expect_ok(run("guest-set-vcpus", "{\"vcpus\": [{\"logical-id\": 1, \"online\": false}, "
                                         "{\"logical-id\": 2, \"online\": true}]}"),
                  "2");
        assert_string_equal(get("/sys/devices/system/cpu/cpu1/online"), "0\n");
        assert_string_equal(get("/sys/devices/system/cpu/cpu2/online"), "1\n");
        /* cpu0 has no online file: it stays online, and cannot go offline */
        expect_ok(run("guest-set-vcpus", "{\"vcpus\": [{\"logical-id\": 0, \"online\": true}]}"),
                  "1");
        expect_error(
            run("guest-set-vcpus", "{\"vcpus\": [{\"logical-id\": 0, \"online\": false}]}"),
            "logical processor #0 can't be offlined");
        /* an error after the first entry only stops the count */
        expect_ok(run("guest-set-vcpus", "{\"vcpus\": [{\"logical-id\": 1, \"online\": true}, "
                                         "{\"logical-id\": 0, \"online\": false}, "
                                         "{\"logical-id\": 2, \"online\": false}]}"),
                  "1");
        assert_string_equal(get("/sys/devices/system/cpu/cpu1/online"), "1\n");
        assert_string_equal(get("/sys/devices/system/cpu/cpu2/online"), "1\n");
        expect_error(run("guest-set-vcpus", "{\"vcpus\": [{\"logical-id\": 7, \"online\": true}]}"),
                     "open(\"/sys/devices/system/cpu/cpu7/\"): No such file or directory");
        put("/sys/devices/system/cpu/cpu3/online", "", 0644);
        expect_error(run("guest-set-vcpus", "{\"vcpus\": [{\"logical-id\": 3, \"online\": true}]}"),
                     "pread(\"/sys/devices/system/cpu/cpu3//online\"): unexpected EOF");
        expect_ok(run("guest-set-vcpus", "{\"vcpus\": []}"), "0");
}

static void test_set_memory_blocks(void **state)
{
        expect_ok(run("guest-set-memory-blocks",
                      "{\"mem-blks\": [{\"phys-index\": 0, \"online\": false}]}"),
                  "[{\"phys-index\": 0, \"response\": \"operation-not-supported\", "
                  "\"error-code\": 2}]");
        put("/sys/devices/system/memory/memory0/state", "online\n", 0644);
        put("/sys/devices/system/memory/memory1/state", "offline\n", 0644);
        mkdirs("/sys/devices/system/memory/memory2");
        expect_ok(run("guest-set-memory-blocks",
                      "{\"mem-blks\": [{\"phys-index\": 0, \"online\": false}, "
                      "{\"phys-index\": 1, \"online\": false, \"can-offline\": true}, "
                      "{\"phys-index\": 5, \"online\": true}, "
                      "{\"phys-index\": 2, \"online\": false}, "
                      "{\"phys-index\": 2, \"online\": true}]}"),
                  "[{\"phys-index\": 0, \"response\": \"success\"}, "
                  "{\"phys-index\": 1, \"response\": \"success\"}, "
                  "{\"phys-index\": 5, \"response\": \"not-found\", \"error-code\": 2}, "
                  "{\"phys-index\": 2, \"response\": \"operation-not-supported\", "
                  "\"error-code\": 2}, "
                  "{\"phys-index\": 2, \"response\": \"success\", \"error-code\": 2}]");
        assert_string_equal(get("/sys/devices/system/memory/memory0/state"), "offline");
        assert_string_equal(get("/sys/devices/system/memory/memory1/state"), "offline\n");
        expect_ok(run("guest-set-memory-blocks", "{\"mem-blks\": []}"), "[]");
}

/* ---- guest-set-user-password ---- */

static const char passwd_text[] = "root:x:0:0:root:/root:/bin/sh\n"
                                  "alice:x:1000:1000::/home/alice:/bin/sh\n"
                                  "bob:x:1001:1001::/home/bob:/bin/sh\n";
static const char shadow_text[] = "root:*:19000:0:99999:7:::\n"
                                  "alice:!:19000:0:99999:7:::\n"
                                  "alicea:old:19000:0:99999:7:::\n"
                                  "bob:$6$x$y:19000:0:99999:7:::";

static char *b64(const char *s)
{
        static char buf[256];
        size_t n = tt_base64_encode(s, strlen(s), buf);

        buf[n] = '\0';
        return buf;
}

static void test_password_builtin_crypted(void **state)
{
        char args[512], want[512];
        struct stat st;

        put("/etc/passwd", passwd_text, 0644);
        put("/etc/shadow", shadow_text, 0640);
        assert_int_equal(chown(rpath("/etc/shadow"), 0, 42), 0);
        snprintf(args, sizeof(args),
                 "{\"username\": \"alice\", \"password\": \"%s\", \"crypted\": true}",
                 b64("$6$salt$hash"));
        expect_ok(run("guest-set-user-password", args), NULL);
        snprintf(want, sizeof(want),
                 "root:*:19000:0:99999:7:::\n"
                 "alice:$6$salt$hash:%lld:0:99999:7:::\n"
                 "alicea:old:19000:0:99999:7:::\n"
                 "bob:$6$x$y:19000:0:99999:7:::",
                 (long long)(time(NULL) / 86400));
        assert_string_equal(get("/etc/shadow"), want);
        assert_int_equal(stat(rpath("/etc/shadow"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_int_equal(st.st_gid, 42);
        assert_int_equal(access(rpath("/etc/.pwd.lock"), F_OK), 0);
        /* the last line without a newline, too */
        snprintf(args, sizeof(args),
                 "{\"username\": \"bob\", \"password\": \"%s\", \"crypted\": true}", b64("!"));
        expect_ok(run("guest-set-user-password", args), NULL);
        {
                const char *text = get("/etc/shadow");

                assert_non_null(strstr(text, "\nbob:!:"));
                assert_int_equal(text[strlen(text) - 1], ':');
        }

        snprintf(args, sizeof(args),
                 "{\"username\": \"carol\", \"password\": \"%s\", \"crypted\": true}", b64("x"));
        expect_error(run("guest-set-user-password", args), "user 'carol' not found in /etc/shadow");
        snprintf(args, sizeof(args),
                 "{\"username\": \"alice\", \"password\": \"%s\", \"crypted\": true}", b64("a:b"));
        expect_error(run("guest-set-user-password", args),
                     "forbidden characters in crypted password");
}

static void test_password_builtin_plain(void **state)
{
        char args[512];
        const char *line, *end;
        char hash[256];

        put("/etc/passwd", passwd_text, 0644);
        put("/etc/shadow", shadow_text, 0640);
        snprintf(args, sizeof(args),
                 "{\"username\": \"alice\", \"password\": \"%s\", \"crypted\": false}",
                 b64("s3cret pass"));
        expect_ok(run("guest-set-user-password", args), NULL);
        line = strstr(get("/etc/shadow"), "\nalice:");
        assert_non_null(line);
        line += strlen("\nalice:");
        end = strchr(line, ':');
        snprintf(hash, sizeof(hash), "%.*s", (int)(end - line), line);
        assert_true(strncmp(hash, "$6$", 3) == 0);
        {
                struct crypt_data *cd = calloc(1, sizeof(*cd));

                assert_non_null(cd);
                assert_string_equal(crypt_rn("s3cret pass", hash, cd, sizeof(*cd)), hash);
                assert_string_not_equal(crypt_rn("s3cret pas", hash, cd, sizeof(*cd)), hash);
                free(cd);
        }

        /* no shadow file: the hash goes into /etc/passwd */
        rm_rf("/etc/shadow");
        expect_ok(run("guest-set-user-password", args), NULL);
        assert_non_null(strstr(get("/etc/passwd"), "\nalice:$6$"));
        assert_non_null(strstr(get("/etc/passwd"), ":1000:1000::/home/alice:/bin/sh\nbob:x:"));
}

static void test_password_checks(void **state)
{
        char args[512];

        snprintf(args, sizeof(args),
                 "{\"username\": \"alice\", \"password\": \"%s\", \"crypted\": false}",
                 b64("two\nlines"));
        expect_error(run("guest-set-user-password", args), "forbidden characters in raw password");
        snprintf(args, sizeof(args),
                 "{\"username\": \"al:ice\", \"password\": \"%s\", \"crypted\": false}", b64("x"));
        expect_error(run("guest-set-user-password", args), "forbidden characters in username");
        expect_error(run("guest-set-user-password",
                         "{\"username\": \"alice\", \"password\": \"%%%\", \"crypted\": false}"),
                     "Base64 data contains invalid characters");
}

static void test_password_chpasswd(void **state)
{
        char args[512];

        put("/etc/shadow", shadow_text, 0640);
        fake_program("/usr/sbin/chpasswd", 0, true);
        snprintf(args, sizeof(args),
                 "{\"username\": \"alice\", \"password\": \"%s\", \"crypted\": false}", b64("pw"));
        expect_ok(run("guest-set-user-password", args), NULL);
        snprintf(args, sizeof(args),
                 "{\"username\": \"bob\", \"password\": \"%s\", \"crypted\": true}", b64("$1$a$b"));
        expect_ok(run("guest-set-user-password", args), NULL);
        assert_string_equal(get("/log"), "chpasswd \nalice:pw\nchpasswd -e\nbob:$1$a$b\n");
        /* chpasswd did the work: the file is untouched */
        assert_string_equal(get("/etc/shadow"), shadow_text);
        fake_program("/usr/sbin/chpasswd", 1, true);
        expect_error(run("guest-set-user-password", args),
                     "child process has failed to set user password");
}

/* ---- guest-ssh-add/remove-authorized-keys ---- */

static void ssh_fixture(void)
{
        put("/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n"
            "alice:x:1234:4321::/home/alice/:/bin/sh\n",
            0644);
        mkdirs("/home/alice");
}

static void expect_owned(const char *rel, mode_t mode)
{
        struct stat st;

        assert_int_equal(lstat(rpath(rel), &st), 0);
        assert_int_equal(st.st_mode & 07777, mode);
        assert_int_equal(st.st_uid, 1234);
        assert_int_equal(st.st_gid, 4321);
}

static void test_ssh_add(void **state)
{
        ssh_fixture();
        expect_ok(run("guest-ssh-add-authorized-keys",
                      "{\"username\": \"alice\", \"keys\": [\"algo key1 c\", \"algo key2 c\"]}"),
                  NULL);
        assert_string_equal(get("/home/alice/.ssh/authorized_keys"), "algo key1 c\nalgo key2 c");
        expect_owned("/home/alice/.ssh", 0700);
        expect_owned("/home/alice/.ssh/authorized_keys", 0600);
        /* known keys are not added twice */
        expect_ok(run("guest-ssh-add-authorized-keys",
                      "{\"username\": \"alice\", \"keys\": [\"algo key2 c\", \"algo key3 c\", "
                      "\"algo key3 c\"], \"reset\": false}"),
                  NULL);
        assert_string_equal(get("/home/alice/.ssh/authorized_keys"),
                            "algo key1 c\nalgo key2 c\nalgo key3 c");
        expect_ok(run("guest-ssh-get-authorized-keys", "{\"username\": \"alice\"}"),
                  "{\"keys\": [\"algo key3 c\", \"algo key2 c\", \"algo key1 c\"]}");
        expect_ok(run("guest-ssh-add-authorized-keys",
                      "{\"username\": \"alice\", \"keys\": [\"algo key3 c\"], \"reset\": true}"),
                  NULL);
        assert_string_equal(get("/home/alice/.ssh/authorized_keys"), "algo key3 c");
        expect_ok(run("guest-ssh-add-authorized-keys",
                      "{\"username\": \"alice\", \"keys\": [], \"reset\": true}"),
                  NULL);
        assert_string_equal(get("/home/alice/.ssh/authorized_keys"), "");
        expect_owned("/home/alice/.ssh/authorized_keys", 0600);
        /* an existing file with a trailing newline keeps it (as qemu-ga's split/join) */
        put("/home/alice/.ssh/authorized_keys", "# mine\nalgo key1 c\n", 0644);
        expect_ok(run("guest-ssh-add-authorized-keys",
                      "{\"username\": \"alice\", \"keys\": [\"algo key4 c\"]}"),
                  NULL);
        assert_string_equal(get("/home/alice/.ssh/authorized_keys"),
                            "# mine\nalgo key1 c\n\nalgo key4 c");
        expect_owned("/home/alice/.ssh/authorized_keys", 0600);
}

static void test_ssh_errors(void **state)
{
        ssh_fixture();
        expect_error(run("guest-ssh-add-authorized-keys",
                         "{\"username\": \"alice\", \"keys\": [\"ok key\", \"# comment\"]}"),
                     "invalid OpenSSH public key: '# comment'");
        expect_error(run("guest-ssh-remove-authorized-keys",
                         "{\"username\": \"alice\", \"keys\": [\"two\\nlines\"]}"),
                     "invalid OpenSSH public key: 'two\nlines'");
        assert_int_equal(access(rpath("/home/alice/.ssh"), F_OK), -1);
        expect_error(
            run("guest-ssh-add-authorized-keys", "{\"username\": \"nobody\", \"keys\": [\"k\"]}"),
            "failed to lookup user 'nobody': Success");
        /* ~/.ssh swapped for a symlink to another account's directory: refused */
        mkdirs("/root/.ssh");
        assert_int_equal(symlink(rpath("/root/.ssh"), rpath("/home/alice/.ssh")), 0);
        expect_error(
            run("guest-ssh-add-authorized-keys", "{\"username\": \"alice\", \"keys\": [\"k\"]}"),
            "failed to open directory '/home/alice/.ssh': Not a directory");
        assert_int_equal(access(rpath("/root/.ssh/authorized_keys"), F_OK), -1);
}

static void test_ssh_remove(void **state)
{
        ssh_fixture();
        /* no file: nothing to do, and nothing created */
        expect_ok(
            run("guest-ssh-remove-authorized-keys", "{\"username\": \"alice\", \"keys\": [\"k\"]}"),
            NULL);
        assert_int_equal(access(rpath("/home/alice/.ssh"), F_OK), -1);
        put("/home/alice/.ssh/authorized_keys",
            "algo key1 comments\nalgo key1 comments\n# a commented line\nalgo some-key another\n",
            0644);
        expect_ok(run("guest-ssh-remove-authorized-keys",
                      "{\"username\": \"alice\", \"keys\": [\"algo key2 comments\"]}"),
                  NULL);
        assert_string_equal(get("/home/alice/.ssh/authorized_keys"),
                            "algo key1 comments\nalgo key1 comments\n# a commented line\n"
                            "algo some-key another\n");
        expect_ok(run("guest-ssh-remove-authorized-keys",
                      "{\"username\": \"alice\", \"keys\": [\"algo key1 comments\", "
                      "\"algo key2 comments\"]}"),
                  NULL);
        assert_string_equal(get("/home/alice/.ssh/authorized_keys"),
                            "# a commented line\nalgo some-key another\n");
        expect_owned("/home/alice/.ssh/authorized_keys", 0600);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup(test_table_flags, fresh),
            cmocka_unit_test_setup(test_arg_specs, fresh),
            cmocka_unit_test_setup(test_shutdown, fresh),
            cmocka_unit_test_setup(test_suspend_unsupported, fresh),
            cmocka_unit_test_setup(test_suspend_sysfs, fresh),
            cmocka_unit_test_setup(test_suspend_helpers, fresh),
            cmocka_unit_test_setup(test_set_time, fresh),
            cmocka_unit_test_setup(test_set_time_system_only, fresh),
            cmocka_unit_test_setup(test_set_time_rtc_write, fresh),
            cmocka_unit_test_setup(test_set_time_rtc_write_errors, fresh),
            cmocka_unit_test_setup(test_set_time_settimeofday_fails, fresh),
            cmocka_unit_test_setup(test_set_time_hwclock, fresh),
            cmocka_unit_test_setup(test_set_time_from_rtc, fresh),
            cmocka_unit_test_setup(test_set_time_from_rtc_errors, fresh),
            cmocka_unit_test_setup(test_freeze_thaw, fresh),
            cmocka_unit_test_setup(test_freeze_list, fresh),
            cmocka_unit_test_setup(test_freeze_errors, fresh),
            cmocka_unit_test_setup(test_freeze_hook, fresh),
            cmocka_unit_test_setup(test_auto_thaw, fresh),
            cmocka_unit_test_setup(test_freeze_init, fresh),
            cmocka_unit_test_setup(test_fstrim, fresh),
            cmocka_unit_test_setup(test_set_vcpus, fresh),
            cmocka_unit_test_setup(test_set_memory_blocks, fresh),
            cmocka_unit_test_setup(test_password_builtin_crypted, fresh),
            cmocka_unit_test_setup(test_password_builtin_plain, fresh),
            cmocka_unit_test_setup(test_password_checks, fresh),
            cmocka_unit_test_setup(test_password_chpasswd, fresh),
            cmocka_unit_test_setup(test_ssh_add, fresh),
            cmocka_unit_test_setup(test_ssh_errors, fresh),
            cmocka_unit_test_setup(test_ssh_remove, fresh),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
