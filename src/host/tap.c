/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host tap devices for <interface type='bridge'>, made as libvirt makes them: tetherd opens
 * /dev/net/tun, names the device vnetN (or the <target dev>), gives it the guest's MAC with a
 * leading fe (so the bridge never takes the guest's address as its own), enslaves it to the
 * bridge, brings it up and hands the descriptor to QEMU (-netdev tap,fd=N). The device is not
 * persistent: it goes away when the last descriptor (QEMU's) closes.
 */
#include "host/tap.h"

#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Set IFF_UP on name through the control socket s. */
static int link_up(int s, const char *name)
{
        struct ifreq ifr = {0};

        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return -1;
        ifr.ifr_flags |= IFF_UP;
        return ioctl(s, SIOCSIFFLAGS, &ifr);
}

int tap_create(const char *want, const char *bridge, const char *guest_mac, char *name,
               size_t name_len, struct tt_error *err)
{
        _cleanup_close_ int fd = -1, s = -1;
        struct ifreq ifr = {0};
        unsigned mac[6];

        if (sscanf(guest_mac, "%x:%x:%x:%x:%x:%x", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
                   &mac[5]) != 6)
                return tt_error_set(err, EINVAL, "invalid MAC address '%s'", guest_mac);
        fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return tt_error_errno(err, errno, "cannot open /dev/net/tun");
        /* vnet%d: the kernel picks the lowest free number, so two starts never race for one. */
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", want ? want : "vnet%d");
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        if (ioctl(fd, TUNSETIFF, &ifr) < 0)
                return tt_error_errno(err, errno, "cannot create tap device '%s'", ifr.ifr_name);
        snprintf(name, name_len, "%s", ifr.ifr_name);
        s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return tt_error_errno(err, errno, "socket");
        memset(&ifr.ifr_hwaddr, 0, sizeof(ifr.ifr_hwaddr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
        ifr.ifr_hwaddr.sa_data[0] = (char)0xfe;
        for (int i = 1; i < 6; i++)
                ifr.ifr_hwaddr.sa_data[i] = (char)mac[i];
        if (ioctl(s, SIOCSIFHWADDR, &ifr) < 0)
                return tt_error_errno(err, errno, "cannot set the MAC address of '%s'", name);
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
        ifr.ifr_ifindex = (int)if_nametoindex(name);
        if (ifr.ifr_ifindex == 0 || ioctl(s, SIOCBRADDIF, &ifr) < 0)
                return tt_error_errno(err, errno, "cannot add '%s' to bridge '%s'", name, bridge);
        if (link_up(s, name) < 0)
                return tt_error_errno(err, errno, "cannot bring up '%s'", name);
        return steal_fd(&fd);
}

/* One counter of /sys/class/net/NAME/statistics, or -1. */
static long long sys_counter(const char *name, const char *key)
{
        char path[128], buf[32];
        _cleanup_close_ int fd = -1;
        ssize_t n;
        long long v;

        snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", name, key);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
                return -1;
        buf[n] = '\0';
        return sscanf(buf, "%lld", &v) == 1 ? v : -1;
}

int tap_stats(const char *name, struct tap_stats *out)
{
        /* The tap's receive is what the guest sent: swapped, as libvirt reports them. */
        out->rx_bytes = sys_counter(name, "tx_bytes");
        out->rx_packets = sys_counter(name, "tx_packets");
        out->rx_errors = sys_counter(name, "tx_errors");
        out->rx_dropped = sys_counter(name, "tx_dropped");
        out->tx_bytes = sys_counter(name, "rx_bytes");
        out->tx_packets = sys_counter(name, "rx_packets");
        out->tx_errors = sys_counter(name, "rx_errors");
        out->tx_dropped = sys_counter(name, "rx_dropped");
        return out->rx_bytes < 0 || out->tx_bytes < 0 ? -1 : 0;
}
