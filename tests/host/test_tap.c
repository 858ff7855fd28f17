/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host tap devices (tap.c), made in a private network namespace with its own /sys (as root),
 * so nothing on the host changes: a bridge of the test's own, a tap named by the kernel (vnetN)
 * or by <target dev>, the guest's MAC with a leading fe, enslaved and up; its counters; and the
 * refusals with their texts (a bad MAC, a missing bridge).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>
#include "host/tap.h"

static int ctl = -1;

static void mac_is(const char *name, const char *want)
{
        struct ifreq ifr = {0};
        char got[18];
        const unsigned char *m = (const unsigned char *)ifr.ifr_hwaddr.sa_data;

        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        assert_int_equal(ioctl(ctl, SIOCGIFHWADDR, &ifr), 0);
        snprintf(got, sizeof(got), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                 m[5]);
        assert_string_equal(got, want);
}

static bool is_up(const char *name)
{
        struct ifreq ifr = {0};

        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        assert_int_equal(ioctl(ctl, SIOCGIFFLAGS, &ifr), 0);
        return ifr.ifr_flags & IFF_UP;
}

static void master_is(const char *name, const char *bridge)
{
        char path[128], target[PATH_MAX];
        ssize_t n;

        snprintf(path, sizeof(path), "/sys/class/net/%s/master", name);
        n = readlink(path, target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = '\0';
        assert_string_equal(strrchr(target, '/') + 1, bridge);
}

static void test_tap_create(void **state)
{
        char name[IFNAMSIZ];
        struct tt_error err = {0};
        struct tap_stats st;
        int fd = tap_create(NULL, "ttbr0", "52:54:00:12:34:56", name, sizeof(name), &err), fd2;

        assert_true(fd >= 0);
        assert_null(err.msg);
        assert_string_equal(name, "vnet0");
        mac_is("vnet0", "fe:54:00:12:34:56");
        assert_true(is_up("vnet0"));
        master_is("vnet0", "ttbr0");
        /* The next gets the next number; a <target dev> name is kept. */
        fd2 = tap_create(NULL, "ttbr0", "52:54:00:ab:cd:ef", name, sizeof(name), &err);
        assert_true(fd2 >= 0);
        assert_string_equal(name, "vnet1");
        close(fd2);
        fd2 = tap_create("tt-guest1", "ttbr0", "52:54:00:00:00:01", name, sizeof(name), &err);
        assert_true(fd2 >= 0);
        assert_string_equal(name, "tt-guest1");
        mac_is("tt-guest1", "fe:54:00:00:00:01");
        /* Counters: a fresh tap has sent nothing. */
        assert_int_equal(tap_stats("tt-guest1", &st), 0);
        assert_int_equal(st.rx_packets, 0);
        assert_int_equal(st.rx_bytes, 0);
        assert_true(st.tx_bytes >= 0);
        assert_true(st.rx_errors >= 0 && st.tx_dropped >= 0);
        close(fd2);
        close(fd);
        /* Not persistent: gone with its last descriptor. */
        assert_int_equal(if_nametoindex("vnet0"), 0);
        assert_int_equal(tap_stats("vnet0", &st), -1);
}

static void test_tap_refusals(void **state)
{
        char name[IFNAMSIZ];
        struct tt_error err = {0};

        assert_int_equal(tap_create(NULL, "ttbr0", "52:54:zz", name, sizeof(name), &err), -1);
        assert_string_equal(err.msg, "invalid MAC address '52:54:zz'");
        tt_error_clear(&err);
        assert_int_equal(tap_create(NULL, "nosuchbr", "52:54:00:12:34:56", name, sizeof(name),
                                    &err),
                         -1);
        assert_string_equal(err.msg, "cannot add 'vnet0' to bridge 'nosuchbr': No such device");
        tt_error_clear(&err);
        /* The failed tap went with its descriptor. */
        assert_int_equal(if_nametoindex("vnet0"), 0);
        assert_int_equal(tap_create("bad/name", "ttbr0", "52:54:00:12:34:56", name, sizeof(name),
                                    &err),
                         -1);
        assert_string_equal(err.msg, "cannot create tap device 'bad/name': Invalid argument");
        tt_error_clear(&err);
}

/* A private network namespace, with a /sys of its own in a private mount namespace. */
static int setup(void **state)
{
        if (geteuid() != 0) {
                fprintf(stderr, "test_tap: needs root (a private network namespace)\n");
                return -1;
        }
        if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0 ||
            mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("sysfs", "/sys", "sysfs", 0, NULL) < 0) {
                fprintf(stderr, "test_tap: private namespaces: %s\n", strerror(errno));
                return -1;
        }
        ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (ctl < 0 || ioctl(ctl, SIOCBRADDBR, "ttbr0") < 0) {
                fprintf(stderr, "test_tap: bridge: %s\n", strerror(errno));
                return -1;
        }
        return 0;
}

static int teardown(void **state)
{
        /* The namespaces, their bridge and taps go with this process. */
        close(ctl);
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tap_create),
                cmocka_unit_test(test_tap_refusals),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
