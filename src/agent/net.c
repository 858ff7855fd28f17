/* SPDX-License-Identifier: GPL-2.0-or-later */
/* guest-network-get-interfaces (getifaddrs) and guest-network-get-route (/proc/net). */
#include "agent/agent.h"
#include "agent/sysinfo.h"
#include "common/cleanup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void freeifaddrsp(struct ifaddrs **p)
{
        if (*p)
                freeifaddrs(*p);
}

static unsigned popcount_bytes(const void *p, size_t len)
{
        const unsigned char *b = p;
        unsigned n = 0;
        size_t i;

        for (i = 0; i < len; i++)
                n += (unsigned)__builtin_popcount(b[i]);
        return n;
}

/* The interface's entry in list, by name; NULL if it is not there yet. */
static json_t *find_iface(json_t *list, const char *name)
{
        size_t i;
        json_t *e;

        json_array_foreach(list, i, e)
        {
                if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
                        return e;
        }
        return NULL;
}

/*
 * MAC address of name as "aa:bb:..". An interface without one (EADDRNOTAVAIL) or an ioctl
 * failure is not an error: the member is just left out, as qemu-ga does since 7.2.
 */
static json_t *hw_address(int sock, const char *name)
{
        struct ifreq ifr;
        const unsigned char *m;
        char buf[18];

        memset(&ifr, 0, sizeof(ifr));
        if (strlen(name) >= sizeof(ifr.ifr_name))
                return NULL;
        memcpy(ifr.ifr_name, name, strlen(name));
        if (ioctl(sock, SIOCGIFHWADDR, &ifr) < 0)
                return NULL;
        m = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
        snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                 m[5]);
        return json_string(buf);
}

/* Counters of name from /proc/net/dev; NULL when the interface is not listed there. */
static json_t *iface_stats(const char *name)
{
        static const char *const keys[] = {"rx-bytes", "rx-packets", "rx-errs", "rx-dropped",
                                           "tx-bytes", "tx-packets", "tx-errs", "tx-dropped"};
        /* columns of /proc/net/dev that hold the members above */
        static const int cols[] = {0, 1, 2, 3, 8, 9, 10, 11};
        _cleanup_free_ char *path = agent_path("/proc/net/dev");
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0, namelen = strlen(name);

        if (path == NULL)
                return NULL;
        f = fopen(path, "re");
        if (f == NULL)
                return NULL;
        while (getline(&line, &cap, f) != -1) {
                unsigned long long v[16];
                char *p = line, *colon;
                json_t *stats;
                size_t i;

                while (*p == ' ' || *p == '\t')
                        p++;
                colon = strchr(p, ':');
                if (colon == NULL || (size_t)(colon - p) != namelen || strncmp(p, name, namelen))
                        continue;
                if (sscanf(colon + 1,
                           "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
                           "%llu %llu %llu",
                           &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9],
                           &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]) != 16)
                        continue;
                stats = json_object();
                if (stats == NULL)
                        return NULL;
                for (i = 0; i < TT_ARRAY_SIZE(keys); i++)
                        json_object_set_new(stats, keys[i], agent_json_u64(v[cols[i]]));
                return stats;
        }
        return NULL;
}

/* {"ip-address", "ip-address-type", "prefix"} of an AF_INET/AF_INET6 entry into *out. */
static int ip_address(const struct ifaddrs *ifa, json_t **out, struct tt_error *err)
{
        char addr[INET6_ADDRSTRLEN];
        const void *a, *mask = NULL;
        const char *type;
        size_t masklen;
        unsigned prefix = 0;
        int family = ifa->ifa_addr->sa_family;

        if (family == AF_INET) {
                a = &((const struct sockaddr_in *)(const void *)ifa->ifa_addr)->sin_addr;
                if (ifa->ifa_netmask)
                        mask =
                            &((const struct sockaddr_in *)(const void *)ifa->ifa_netmask)->sin_addr;
                masklen = sizeof(struct in_addr);
                type = "ipv4";
        } else {
                a = &((const struct sockaddr_in6 *)(const void *)ifa->ifa_addr)->sin6_addr;
                if (ifa->ifa_netmask)
                        mask = &((const struct sockaddr_in6 *)(const void *)ifa->ifa_netmask)
                                    ->sin6_addr;
                masklen = sizeof(struct in6_addr);
                type = "ipv6";
        }
        if (inet_ntop(family, a, addr, sizeof(addr)) == NULL)
                return tt_error_errno(err, errno, "inet_ntop failed");
        /* a netmask is contiguous ones, so counting them gives the prefix length */
        if (mask)
                prefix = popcount_bytes(mask, masklen);
        *out = json_pack("{s:s,s:s,s:I}", "ip-address", addr, "ip-address-type", type, "prefix",
                         (json_int_t)prefix);
        if (*out == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return 0;
}

AGENT_HANDLER(agent_cmd_network_get_interfaces)
{
        __attribute__((cleanup(freeifaddrsp))) struct ifaddrs *ifap = NULL;
        _cleanup_json_ json_t *list = json_array();
        _cleanup_close_ int sock = -1;
        struct ifaddrs *ifa;

        if (list == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (getifaddrs(&ifap) < 0)
                return tt_error_errno(err, errno, "getifaddrs failed");
        sock = socket(PF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return tt_error_errno(err, errno, "failed to create socket");

        /* getifaddrs order: one entry per link first, then its addresses; alias labels such as
         * eth0:1 come as their own names and so become their own interfaces, as in qemu-ga */
        for (ifa = ifap; ifa; ifa = ifa->ifa_next) {
                json_t *info = find_iface(list, ifa->ifa_name);
                json_t *addrs, *addr;

                if (info == NULL) {
                        json_t *mac;

                        info = json_pack("{s:s}", "name", ifa->ifa_name);
                        if (info == NULL || json_array_append_new(list, info) < 0)
                                return tt_error_set(err, ENOMEM, "out of memory");
                        mac = hw_address(sock, ifa->ifa_name);
                        if (mac)
                                json_object_set_new(info, "hardware-address", mac);
                }
                if (ifa->ifa_addr == NULL ||
                    (ifa->ifa_addr->sa_family != AF_INET && ifa->ifa_addr->sa_family != AF_INET6))
                        continue;
                if (ip_address(ifa, &addr, err) < 0)
                        return -1;
                addrs = json_object_get(info, "ip-addresses");
                if (addrs == NULL) {
                        json_t *stats;

                        addrs = json_array();
                        if (json_object_set_new(info, "ip-addresses", addrs) < 0) {
                                json_decref(addr);
                                return tt_error_set(err, ENOMEM, "out of memory");
                        }
                        /* statistics only for interfaces that have an address */
                        stats = iface_stats(ifa->ifa_name);
                        if (stats)
                                json_object_set_new(info, "statistics", stats);
                }
                if (json_array_append_new(addrs, addr) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        *ret = steal_pointer(&list);
        return 0;
}

/* ---- routes ---- */

/* Dotted quad of a /proc/net/route value (network byte order printed as a host integer). */
static json_t *ipv4_from_hex(uint32_t v)
{
        char buf[INET_ADDRSTRLEN];
        struct in_addr a = {.s_addr = v};

        inet_ntop(AF_INET, &a, buf, sizeof(buf));
        return json_string(buf);
}

/* IPv6 text form of 32 hex digits from /proc/net/ipv6_route; NULL if malformed. */
static json_t *ipv6_from_hex(const char *hex)
{
        char buf[INET6_ADDRSTRLEN];
        struct in6_addr a;
        int i;

        if (strlen(hex) != 32)
                return NULL;
        for (i = 0; i < 16; i++) {
                unsigned int byte;

                if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
                        return NULL;
                a.s6_addr[i] = (uint8_t)byte;
        }
        inet_ntop(AF_INET6, &a, buf, sizeof(buf));
        return json_string(buf);
}

/*
 * Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT (header line first).
 * Members follow qemu's GuestNetworkRoute order.
 */
static int routes_v4(FILE *f, json_t *list)
{
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        bool header = true;

        while (getline(&line, &cap, f) != -1) {
                char iface[IF_NAMESIZE + 1];
                unsigned int dst, gw, flags, mask, metric;
                int refcnt, use, mtu, window, irtt;
                json_t *r;

                if (header) {
                        header = false;
                        continue;
                }
                if (sscanf(line, "%16s %X %X %X %d %d %u %X %d %d %d", iface, &dst, &gw, &flags,
                           &refcnt, &use, &metric, &mask, &mtu, &window, &irtt) != 11)
                        continue;
                r = json_pack("{s:s,s:o,s:I,s:o,s:o,s:i,s:I,s:i,s:i,s:i,s:i,s:i}", "iface", iface,
                              "destination", ipv4_from_hex(dst), "metric", (json_int_t)metric,
                              "gateway", ipv4_from_hex(gw), "mask", ipv4_from_hex(mask), "irtt",
                              irtt, "flags", (json_int_t)flags, "refcnt", refcnt, "use", use,
                              "window", window, "mtu", mtu, "version", 4);
                if (r == NULL || json_array_append_new(list, r) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/*
 * dst dst_len src src_len nexthop metric refcnt use flags iface, all hex except iface.
 * qemu-ga parses metric and flags into a signed int, so 0xffffffff comes out as -1; we report
 * them as the unsigned 32-bit values the kernel means.
 */
static int routes_v6(FILE *f, json_t *list)
{
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;

        while (getline(&line, &cap, f) != -1) {
                char dst[33], src[33], hop[33], iface[IF_NAMESIZE + 1];
                char dlen_s[12], slen_s[12];
                unsigned int dlen, slen, metric, refcnt, use, flags;
                json_t *d, *r;

                if (sscanf(line, "%32s %x %32s %x %32s %x %x %x %x %16s", dst, &dlen, src, &slen,
                           hop, &metric, &refcnt, &use, &flags, iface) != 10)
                        continue;
                d = ipv6_from_hex(dst);
                if (d == NULL)
                        continue;
                snprintf(dlen_s, sizeof(dlen_s), "%u", dlen);
                snprintf(slen_s, sizeof(slen_s), "%u", slen);
                r = json_pack("{s:s,s:o,s:I,s:I,s:I,s:I,s:s,s:o*,s:s,s:o*,s:i}", "iface", iface,
                              "destination", d, "metric", (json_int_t)metric, "flags",
                              (json_int_t)flags, "refcnt", (json_int_t)refcnt, "use",
                              (json_int_t)use, "desprefixlen", dlen_s, "source", ipv6_from_hex(src),
                              "srcprefixlen", slen_s, "nexthop", ipv6_from_hex(hop), "version", 6);
                if (r == NULL || json_array_append_new(list, r) < 0)
                        return -ENOMEM;
        }
        return 0;
}

AGENT_HANDLER(agent_cmd_network_get_route)
{
        _cleanup_free_ char *v4 = agent_path("/proc/net/route");
        _cleanup_free_ char *v6 = agent_path("/proc/net/ipv6_route");
        _cleanup_json_ json_t *list = json_array();
        _cleanup_fclose_ FILE *f4 = NULL;
        _cleanup_fclose_ FILE *f6 = NULL;

        if (v4 == NULL || v6 == NULL || list == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        f4 = fopen(v4, "re");
        if (f4 == NULL)
                return tt_error_errno(err, errno, "open(\"%s\")", "/proc/net/route");
        if (routes_v4(f4, list) < 0)
                return tt_error_set(err, ENOMEM, "out of memory");
        /* A kernel without IPv6 has no ipv6_route: that is no routes, not a failure (qemu-ga
         * fails the whole command there). */
        f6 = fopen(v6, "re");
        if (f6 == NULL && errno != ENOENT)
                return tt_error_errno(err, errno, "open(\"%s\")", "/proc/net/ipv6_route");
        if (f6 && routes_v6(f6, list) < 0)
                return tt_error_set(err, ENOMEM, "out of memory");
        *ret = steal_pointer(&list);
        return 0;
}
