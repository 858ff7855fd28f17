/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-set-time. With a time, set the system clock and then the hardware clock from it;
 * without, set the system clock from the hardware clock. qemu-ga needs /sbin/hwclock for
 * both; we use hwclock when there is one (it honours /etc/adjtime's LOCAL setting) and talk
 * to /dev/rtc0 ourselves when there is none, as in a minimal busybox guest.
 */
#include "agent/agent.h"
#include "agent/sysinfo.h"
#include "common/cleanup.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/rtc.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NSEC_PER_SEC 1000000000LL
#define RTC_DEV      "/dev/rtc0"

/*
 * settimeofday() and the RTC ioctls go through these two functions. The unit tests link their
 * own (strong) definitions, so that no test ever sets the clocks of the build machine.
 */
__attribute__((weak)) int agent_settimeofday(const struct timeval *tv)
{
        return settimeofday(tv, NULL);
}

__attribute__((weak)) int agent_rtc_ioctl(int fd, unsigned long request, void *arg)
{
        return ioctl(fd, request, arg);
}

static const char *const hwclock_paths[] = {"/sbin/hwclock", "/usr/sbin/hwclock", "/bin/hwclock",
                                            "/usr/bin/hwclock"};

/* The guest path of an executable hwclock, or NULL. */
static const char *find_hwclock(void)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(hwclock_paths); i++) {
                _cleanup_free_ char *real = agent_path("%s", hwclock_paths[i]);

                if (real && access(real, X_OK) == 0)
                        return hwclock_paths[i];
        }
        return NULL;
}

static int run_hwclock(const char *hwclock, const char *flag, struct tt_error *err)
{
        char *const argv[] = {(char *)hwclock, (char *)flag, NULL};
        struct tt_error e = {0};
        int status;

        if (agent_run_helper(argv, NULL, &status, &e) < 0) {
                int code = e.code;

                tt_error_clear(&e);
                if (code == ENOMEM || code == EAGAIN)
                        return tt_error_errno(err, code, "failed to create child process");
                /* qemu-ga's child exits 1 when execl() fails */
                status = 1 << 8;
        }
        if (!WIFEXITED(status))
                return tt_error_set(err, EIO, "child process has terminated abnormally");
        if (WEXITSTATUS(status) != 0)
                return tt_error_set(err, EIO,
                                    "hwclock failed to set hardware clock to system time");
        return 0;
}

static int open_rtc(int *fd, struct tt_error *err)
{
        _cleanup_free_ char *real = agent_path(RTC_DEV);

        if (real == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        *fd = open(real, O_RDONLY | O_CLOEXEC);
        if (*fd < 0)
                return tt_error_errno(err, errno, "cannot open the hardware clock '%s'", RTC_DEV);
        return 0;
}

/* The RTC keeps UTC (QEMU's default, and what hwclock assumes without /etc/adjtime). */
static int rtc_read(time_t *t, struct tt_error *err)
{
        _cleanup_close_ int fd = -1;
        struct rtc_time rt = {0};
        struct tm tm = {0};

        if (open_rtc(&fd, err) < 0)
                return -1;
        if (agent_rtc_ioctl(fd, RTC_RD_TIME, &rt) < 0)
                return tt_error_errno(err, errno, "cannot read the hardware clock '%s'", RTC_DEV);
        tm.tm_sec = rt.tm_sec;
        tm.tm_min = rt.tm_min;
        tm.tm_hour = rt.tm_hour;
        tm.tm_mday = rt.tm_mday;
        tm.tm_mon = rt.tm_mon;
        tm.tm_year = rt.tm_year;
        *t = timegm(&tm);
        if (*t == (time_t)-1)
                return tt_error_set(err, ERANGE, "the hardware clock '%s' holds an invalid time",
                                    RTC_DEV);
        return 0;
}

static int rtc_write(time_t t, struct tt_error *err)
{
        _cleanup_close_ int fd = -1;
        struct rtc_time rt = {0};
        struct tm tm;

        if (open_rtc(&fd, err) < 0)
                return -1;
        gmtime_r(&t, &tm);
        rt.tm_sec = tm.tm_sec;
        rt.tm_min = tm.tm_min;
        rt.tm_hour = tm.tm_hour;
        rt.tm_mday = tm.tm_mday;
        rt.tm_mon = tm.tm_mon;
        rt.tm_year = tm.tm_year;
        if (agent_rtc_ioctl(fd, RTC_SET_TIME, &rt) < 0)
                return tt_error_errno(err, errno, "cannot set the hardware clock '%s'", RTC_DEV);
        return 0;
}

AGENT_HANDLER(agent_cmd_set_time)
{
        json_t *jtime = json_object_get(args, "time");
        const char *hwclock = find_hwclock();
        struct timeval tv = {0};
        time_t t;

        if (jtime) {
                int64_t ns = json_integer_value(jtime);
                struct tm tm;

                t = (time_t)(ns / NSEC_PER_SEC);
                tv.tv_sec = t;
                tv.tv_usec = (suseconds_t)((ns % NSEC_PER_SEC) / 1000);
                /*
                 * qemu-ga checks the local year (g_date_set_time_t) and appends strerror(errno)
                 * of nothing in particular, which reads "Success".
                 */
                if (localtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1970 ||
                    tm.tm_year + 1900 >= 2070)
                        return tt_error_set(err, EINVAL, "Invalid time: Success");
                if (agent_settimeofday(&tv) < 0)
                        return tt_error_errno(err, errno, "Failed to set time to guest");
                if (hwclock)
                        return run_hwclock(hwclock, "-w", err);
                {
                        struct tt_error e = {0};
                        int r = rtc_write(t, &e);

                        /* no hardware clock at all: the system clock is all there is */
                        if (r < 0 && e.code != ENOENT && e.code != ENODEV) {
                                tt_error_set(err, e.code, "%s", e.msg);
                                tt_error_clear(&e);
                                return -1;
                        }
                        tt_error_clear(&e);
                }
                return 0;
        }
        if (hwclock)
                return run_hwclock(hwclock, "-s", err);
        if (rtc_read(&t, err) < 0)
                return -1;
        tv.tv_sec = t;
        if (agent_settimeofday(&tv) < 0)
                return tt_error_errno(err, errno, "Failed to set time to guest");
        return 0;
}
