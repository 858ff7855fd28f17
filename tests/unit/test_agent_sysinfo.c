/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The read-only system-information handlers against a made-up guest: a sysroot tree (sysfs,
 * procfs, /etc, /run) built from the table below in a temporary directory, selected with
 * TETHER_AGENT_SYSROOT. Replies are compared as sorted compact JSON. The disk layout mirrors
 * what QEMU machines show (virtio-blk, AHCI, IDE, virtio-scsi, NVMe, USB behind a bridge,
 * device-mapper); the expectations were checked against qemu-ga 7.2 reading the same tree.
 *
 * `test_agent_sysinfo --make-tree DIR` only writes the tree (for such differential runs).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "agent/agent.h"
#include "agent/users.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utmpx.h>

/* ---- the fixture tree ---- */

enum node_kind { N_DIR, N_FILE, N_LINK };

struct node {
        enum node_kind kind;
        const char *path; /* relative to the sysroot */
        const char *data; /* file contents or link target */
};

#define DIR_(p)                                                                                    \
        {                                                                                          \
                N_DIR, (p), NULL                                                                   \
        }
#define FILE_(p, d)                                                                                \
        {                                                                                          \
                N_FILE, (p), (d)                                                                   \
        }
#define LINK_(p, t)                                                                                \
        {                                                                                          \
                N_LINK, (p), (t)                                                                   \
        }

/* PCI devices of the fixture machine */
#define VIRTIO_BLK "sys/devices/pci0000:00/0000:00:02.0"
#define VDA        VIRTIO_BLK "/virtio1/block/vda"
#define AHCI       "sys/devices/pci0000:00/0000:00:1f.2"
#define SDA        AHCI "/ata3/host2/target2:0:0/2:0:0:0/block/sda"
#define VSCSI      "sys/devices/pci0000:00/0000:00:03.0"
#define SDB        VSCSI "/virtio2/host3/target3:0:0/3:0:0:4/block/sdb"
#define PIIX       "sys/devices/pci0000:00/0000:00:01.1"
#define SDC        PIIX "/ata2/host1/target1:0:1/1:0:1:0/block/sdc"
#define NVME       "sys/devices/pci0000:00/0000:00:04.0"
#define NVME0N1    NVME "/nvme/nvme0/nvme0n1"
#define BRIDGE     "sys/devices/pci0000:00/0000:00:1e.0"
#define XHCI       BRIDGE "/0000:05:01.0"
#define SDD        XHCI "/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdd"
#define MPTSAS     "sys/devices/pci0000:00/0000:00:05.0"
#define SDE        MPTSAS "/host7/target7:0:0/7:0:0:0/block/sde"
#define DM0        "sys/devices/virtual/block/dm-0"
#define LOOP0      "sys/devices/virtual/block/loop0"

/* a block device directory: uevent, dev, size and the subsystem link libudev looks at */
#define BLOCK(dir, name, maj, min, type, size)                                                     \
        DIR_(dir),                                                                                 \
            FILE_(dir "/uevent",                                                                   \
                  "MAJOR=" #maj "\nMINOR=" #min "\nDEVNAME=" name "\nDEVTYPE=" type "\n"),         \
            FILE_(dir "/dev", #maj ":" #min "\n"), FILE_(dir "/size", size "\n"),                  \
            LINK_(dir "/subsystem", "/sys/class/block")

static const struct node tree[] = {
    /* virtio-blk vda with two partitions */
    LINK_(VIRTIO_BLK "/driver", "../../../bus/pci/drivers/virtio-pci"),
    BLOCK(VDA, "vda", 254, 0, "disk", "20971520"),
    DIR_(VDA "/slaves"),
    DIR_(VDA "/queue"),
    BLOCK(VDA "/vda1", "vda1", 254, 1, "partition", "2048"),
    BLOCK(VDA "/vda2", "vda2", 254, 2, "partition", "4096"),
    /* AHCI: the disk on the second port (ata3 of ata1, ata3) is unit 1 */
    LINK_(AHCI "/driver", "../../../bus/pci/drivers/ahci"),
    DIR_(AHCI "/ata1"),
    BLOCK(SDA, "sda", 8, 0, "disk", "1000"),
    /* virtio-scsi: LUN 4 */
    LINK_(VSCSI "/driver", "../../../bus/pci/drivers/virtio-pci"),
    BLOCK(SDB, "sdb", 8, 16, "disk", "1000"),
    /* PIIX IDE: secondary channel (ata2 of ata1, ata2), slave (unit 1) */
    LINK_(PIIX "/driver", "../../../bus/pci/drivers/ata_piix"),
    DIR_(PIIX "/ata1"),
    BLOCK(SDC, "sdc", 8, 32, "disk", "1000"),
    /* NVMe namespace with a partition */
    LINK_(NVME "/driver", "../../../bus/pci/drivers/nvme"),
    BLOCK(NVME0N1, "nvme0n1", 259, 0, "disk", "1000"),
    BLOCK(NVME0N1 "/nvme0n1p1", "nvme0n1p1", 259, 1, "partition", "900"),
    /* USB storage on an xHCI controller behind a PCI bridge without a known driver */
    LINK_(BRIDGE "/driver", "../../../bus/pci/drivers/pcieport"),
    LINK_(XHCI "/driver", "../../../../bus/pci/drivers/xhci_hcd"),
    BLOCK(SDD, "sdd", 8, 48, "disk", "1000"),
    /* a controller qemu-ga does not know: address unknown, device node still given */
    LINK_(MPTSAS "/driver", "../../../bus/pci/drivers/mptsas"),
    BLOCK(SDE, "sde", 8, 64, "disk", "1000"),
    /* device-mapper volume over vda2 and sda */
    BLOCK(DM0, "dm-0", 253, 0, "disk", "5000"),
    FILE_(DM0 "/dm/name", "vg-root\n"),
    LINK_(DM0 "/slaves/vda2", "../../../../pci0000:00/0000:00:02.0/virtio1/block/vda/vda2"),
    LINK_(DM0 "/slaves/sda",
          "../../../../pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sda"),
    /* an unused loop device: size 0, left out */
    BLOCK(LOOP0, "loop0", 7, 0, "disk", "0"),

    LINK_("sys/block/vda", "../devices/pci0000:00/0000:00:02.0/virtio1/block/vda"),
    LINK_("sys/block/sda",
          "../devices/pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sda"),
    LINK_("sys/block/sdb",
          "../devices/pci0000:00/0000:00:03.0/virtio2/host3/target3:0:0/3:0:0:4/block/sdb"),
    LINK_("sys/block/sdc",
          "../devices/pci0000:00/0000:00:01.1/ata2/host1/target1:0:1/1:0:1:0/block/sdc"),
    LINK_("sys/block/nvme0n1", "../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1"),
    LINK_("sys/block/sdd", "../devices/pci0000:00/0000:00:1e.0/0000:05:01.0/usb2/2-1/"
                           "2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdd"),
    LINK_("sys/block/sde",
          "../devices/pci0000:00/0000:00:05.0/host7/target7:0:0/7:0:0:0/block/sde"),
    LINK_("sys/block/dm-0", "../devices/virtual/block/dm-0"),
    LINK_("sys/block/loop0", "../devices/virtual/block/loop0"),
    LINK_("sys/dev/block/253:0", "../../devices/virtual/block/dm-0"),
    LINK_("sys/dev/block/254:1", "../../devices/pci0000:00/0000:00:02.0/virtio1/block/vda/vda1"),
    LINK_("sys/dev/block/259:1",
          "../../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p1"),
    LINK_("sys/dev/block/8:32",
          "../../devices/pci0000:00/0000:00:01.1/ata2/host1/target1:0:1/1:0:1:0/block/sdc"),
    LINK_("sys/dev/block/8:48", "../../devices/pci0000:00/0000:00:1e.0/0000:05:01.0/usb2/"
                                "2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdd"),
    LINK_("sys/dev/block/8:64",
          "../../devices/pci0000:00/0000:00:05.0/host7/target7:0:0/7:0:0:0/block/sde"),
    FILE_("run/udev/data/b8:0", "S:disk/by-id/ata-QEMU_HARDDISK_QM00005\n"
                                "E:ID_SERIAL=QEMU_HARDDISK_QM00005\nE:ID_BUS=ata\n"),

    /* mounts: a pseudo fs, a repeated device, a btrfs whose device is gone, a device
     * without sysfs entry, and names with escaped blanks */
    FILE_("proc/self/mountinfo",
          "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
          "27 1 253:0 / /nonexistent-tether/root rw,relatime - ext4 /dev/mapper/vg-root rw\n"
          "28 27 254:1 / /nonexistent-tether/boot rw - ext4 /dev/vda1 rw\n"
          "29 27 254:1 / /nonexistent-tether/boot\\040again rw - ext4 /dev/vda1 rw\n"
          "30 27 259:1 / /nonexistent-tether/data rw - xfs /dev/nvme0n1p1 rw\n"
          "31 27 8:32 / /nonexistent-tether/ide\\040disk rw - ext2 /dev/sdc rw\n"
          "32 27 0:40 / /nonexistent-tether/btrfs rw - btrfs /nonexistent-dev rw\n"
          "33 27 7:9 / /nonexistent-tether/gone rw - squashfs /dev/loop9 ro\n"
          "34 27 8:48 / /nonexistent-tether/usb rw - vfat /dev/sdd rw\n"
          "35 27 8:64 / /nonexistent-tether/sas rw shared:1 - ext4 /dev/sde rw\n"),

    /* CPUs: cpu0 cannot go offline (no "online" file), cpu2 is offline */
    DIR_("sys/devices/system/cpu/cpu0"),
    FILE_("sys/devices/system/cpu/cpu1/online", "1\n"),
    FILE_("sys/devices/system/cpu/cpu2/online", "0\n"),
    FILE_("sys/devices/system/cpu/cpu10/online", "1\n"),
    DIR_("sys/devices/system/cpu/cpufreq"),
    DIR_("sys/devices/system/cpu/cpuidle"),
    FILE_("sys/devices/system/cpu/online", "0-1,10\n"),

    /* memory blocks of 128 MiB */
    FILE_("sys/devices/system/memory/block_size_bytes", "8000000\n"),
    FILE_("sys/devices/system/memory/memory0/state", "online\n"),
    FILE_("sys/devices/system/memory/memory0/removable", "0\n"),
    FILE_("sys/devices/system/memory/memory1/state", "offline\n"),
    FILE_("sys/devices/system/memory/memory1/removable", "1\n"),
    FILE_("sys/devices/system/memory/memory32/state", "online\n"),
    DIR_("sys/devices/system/memory/memory5"),
    DIR_("sys/devices/system/memory/power"),
    FILE_("sys/devices/system/memory/uevent", ""),

    /* kernel 5.5+ (17 columns), 4.18 (15), 2.6 (11), old partition (4), odd (7), junk */
    FILE_("proc/diskstats", " 254       0 vda 100 2 300 4 500 6 700 8 0 10 12 13 14 15 16 17 18\n"
                            " 254       1 vda1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n"
                            "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n"
                            "   8       1 sda1 21 22 23 24\n"
                            "   8       2 sda2 1 2 3 4 5 6 7\n"
                            "   8       3 sda3 1 2\n"
                            "garbage\n"),

    /* the total line is skipped; a short cpu line ends the list */
    FILE_("proc/stat", "cpu  100 200 300 400 500 600 700 800 900 1000\n"
                       "cpu0 1 2 3 4 5 6 7 8 9 10\n"
                       "cpu1 1234 0 1 99999\n"
                       "cpu3 10 20 30 40 50 60 70 80\n"
                       "intr 12345 0 0\n"
                       "cpu4 1 2\n"
                       "cpu5 1 2 3 4 5 6 7 8 9 10\n"
                       "ctxt 42\n"),

    FILE_("proc/net/route",
          "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
          "eth0\t00000000\t0102000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
          "eth0\t0002000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
          "lo\t0000007F\t00000000\t0001\t2\t5\t-1\t000000FF\t1500\t64\t3\n"
          "bad line\n"),
    FILE_("proc/net/ipv6_route",
          "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
          "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
          "00000000000000000000000000000001 80 00000000000000000000000000000000 00 "
          "00000000000000000000000000000000 00000000 00000002 0000000a 80200001       lo\n"
          "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
          "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"),

    /* /etc/os-release is broken (a line GKeyFile rejects), so /usr/lib/os-release is used */
    FILE_("etc/os-release", "NAME=Broken\nthis line has no equals sign\n"),
    FILE_("usr/lib/os-release", "# os-release of the fixture\n"
                                "NAME=\"Fancy \\\"Quoted\\\" Linux\"\n"
                                "PRETTY_NAME='Single quoted'\n"
                                "ID=fancy\n"
                                "VERSION=\"1.0 (\\$dollar \\\\backslash \\`tick\\` \\n)\"\n"
                                "VERSION_ID=1.0 trailing words\n"
                                "  VARIANT = semi;colon\n"
                                "VARIANT_ID=\"a\"b\n"
                                "ID_LIKE=other\n"),
    FILE_("osr/dup", "ID=first\nID=second\nNAME=\"unterminated\n"),
    FILE_("osr/group", "ID=kept\n[Other]\nNAME=not-ours\n[os-release]\nVERSION_ID=\"7\"\n"),
    FILE_("osr/latin1", "NAME=caf\xe9\nID=x\n"),
    FILE_("osr/crlf", "ID=dos\r\nNAME=\"Dos Linux\"\r\n"),

    /* users for guest-ssh-get-authorized-keys */
    FILE_("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                        "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
                        "bob:x:1001:1001::/home/bob/:/bin/sh\n"
                        "carol:x:1002:1003::/home/carol:/bin/sh\n"),
    FILE_("home/alice/.ssh/authorized_keys", "  ssh-ed25519 AAAA1 first@x  \n\n"
                                             "# comment\n\t#indented comment\n"
                                             "ssh-rsa BBBB2 second\r\n   \n"
                                             "ssh-ed25519 CCCC3 third"),
    DIR_("home/bob/.ssh/authorized_keys"),
    DIR_("home/carol"),
    DIR_("run"),
};

static char root[PATH_MAX];

static int write_node(const char *base, const struct node *n)
{
        char path[PATH_MAX * 2], *slash;
        _cleanup_close_ int fd = -1;

        snprintf(path, sizeof(path), "%s/%s", base, n->path);
        for (slash = strchr(path + strlen(base) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                if (mkdir(path, 0755) < 0 && errno != EEXIST)
                        return -1;
                *slash = '/';
        }
        switch (n->kind) {
        case N_DIR:
                return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
        case N_LINK:
                return symlink(n->data, path);
        case N_FILE:
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd < 0)
                        return -1;
                return write(fd, n->data, strlen(n->data)) == (ssize_t)strlen(n->data) ? 0 : -1;
        }
        return -1;
}

static int make_tree(const char *base)
{
        size_t i;

        if (mkdir(base, 0755) < 0 && errno != EEXIST)
                return -1;
        for (i = 0; i < TT_ARRAY_SIZE(tree); i++)
                if (write_node(base, &tree[i]) < 0) {
                        fprintf(stderr, "cannot create %s: %s\n", tree[i].path, strerror(errno));
                        return -1;
                }
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static int setup(void **state)
{
        snprintf(root, sizeof(root), "/tmp/tether-sysinfo-XXXXXX");
        if (mkdtemp(root) == NULL || make_tree(root) < 0)
                return -1;
        setenv("TETHER_AGENT_SYSROOT", root, 1);
        unsetenv("QGA_OS_RELEASE");
        return 0;
}

static int teardown(void **state)
{
        unsetenv("TETHER_AGENT_SYSROOT");
        return nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- calling handlers ---- */

/* Run fn with args (JSON text or NULL) and return the sorted compact reply, or "ERR: desc". */
static char *call(agent_handler_fn fn, const char *args_text)
{
        struct agent_ctx ctx;
        struct tt_error err = {0};
        json_t *args = args_text ? json_loads(args_text, 0, NULL) : json_object();
        json_t *ret = NULL;
        char *out;

        memset(&ctx, 0, sizeof(ctx));
        assert_non_null(args);
        if (fn(&ctx, args, &ret, &err) < 0) {
                assert_non_null(err.msg);
                assert_null(ret);
                if (asprintf(&out, "ERR: %s", err.msg) < 0)
                        out = NULL;
                tt_error_clear(&err);
        } else {
                assert_null(err.msg);
                out = ret ? json_dumps(ret, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY)
                          : strdup("{}");
        }
        json_decref(ret);
        json_decref(args);
        assert_non_null(out);
        return out;
}

static void expect(agent_handler_fn fn, const char *args, const char *want)
{
        char *got = call(fn, args);

        if (strcmp(got, want) != 0)
                fprintf(stderr, "want: %s\n got: %s\n", want, got);
        assert_string_equal(got, want);
        free(got);
}

/* ---- tests ---- */

#define PCI(d, b, s, f)                                                                            \
        "\"pci-controller\":{\"bus\":" #b ",\"domain\":" #d ",\"function\":" #f ",\"slot\":" #s "}"

static void test_fsinfo(void **state)
{
        /* last mount first; the repeated 254:1 and the pseudo/btrfs mounts are gone; a path
         * that does not exist has no sizes */
        expect(
            agent_cmd_get_fsinfo, NULL,
            "["
            "{\"disk\":[{\"bus\":0,\"bus-type\":\"unknown\",\"dev\":\"/dev/sde\"," PCI(
                -1, -1, -1,
                -1) ",\"target\":0,\"unit\":0}],"
                    "\"mountpoint\":\"/nonexistent-tether/"
                    "sas\",\"name\":\"sde\",\"type\":\"ext4\"},"
                    "{\"disk\":[{\"bus\":0,\"bus-type\":\"usb\",\"dev\":\"/dev/sdd\"," PCI(
                        0, 5, 1,
                        0) ",\"target\":0,\"unit\":0}],"
                           "\"mountpoint\":\"/nonexistent-tether/"
                           "usb\",\"name\":\"sdd\",\"type\":\"vfat\"},"
                           "{\"disk\":[],\"mountpoint\":\"/nonexistent-tether/"
                           "gone\",\"name\":\"7:9\",\"type\":\"squashfs\"},"
                           "{\"disk\":[{\"bus\":1,\"bus-type\":\"ide\",\"dev\":\"/dev/sdc\"," PCI(
                               0, 0, 1,
                               1) ",\"target\":0,\"unit\":1}],"
                                  "\"mountpoint\":\"/nonexistent-tether/ide "
                                  "disk\",\"name\":\"sdc\",\"type\":\"ext2\"},"
                                  "{\"disk\":[{\"bus\":0,\"bus-type\":\"nvme\",\"dev\":\"/dev/"
                                  "nvme0n1p1\"," PCI(
                                      0, 0, 4,
                                      0) ",\"target\":0,\"unit\":0}],"
                                         "\"mountpoint\":\"/nonexistent-tether/"
                                         "data\",\"name\":\"nvme0n1p1\",\"type\":\"xfs\"},"
                                         "{\"disk\":[{\"bus\":0,\"bus-type\":\"virtio\",\"dev\":\"/"
                                         "dev/vda1\"," PCI(
                                             0, 0, 2,
                                             0) ",\"target\":0,\"unit\":0}],"
                                                "\"mountpoint\":\"/nonexistent-tether/"
                                                "boot\",\"name\":\"vda1\",\"type\":\"ext4\"},"
                                                "{\"disk\":[{\"bus\":0,\"bus-type\":\"sata\","
                                                "\"dev\":\"/dev/sda\"," PCI(
                                                    0, 0, 31,
                                                    2) ",\"serial\":\"QEMU_HARDDISK_QM00005\","
                                                       "\"target\":0,\"unit\":1},"
                                                       "{\"bus\":0,\"bus-type\":\"virtio\",\"dev\":"
                                                       "\"/dev/vda2\"," PCI(
                                                           0, 0, 2, 0) ",\"target\":0,\"unit\":0}],"
                                                                       "\"mountpoint\":\"/"
                                                                       "nonexistent-tether/"
                                                                       "root\",\"name\":\"dm-0\","
                                                                       "\"type\":\"ext4\"}"
                                                                       "]");
}

static void test_fsinfo_sizes(void **state)
{
        char mi[PATH_MAX + 64];
        _cleanup_fclose_ FILE *f = NULL;
        json_t *v, *fs;
        char *out;

        /* a real mount point: all three sizes, total-bytes-privileged >= total >= used */
        snprintf(mi, sizeof(mi), "%s/proc/self/mountinfo", root);
        rename(mi, "/tmp/tether-sysinfo-mountinfo.saved");
        f = fopen(mi, "w");
        assert_non_null(f);
        fprintf(f, "27 1 254:1 / / rw - ext4 /dev/vda1 rw\n");
        fclose(steal_pointer(&f));
        out = call(agent_cmd_get_fsinfo, NULL);
        rename("/tmp/tether-sysinfo-mountinfo.saved", mi);
        v = json_loads(out, 0, NULL);
        free(out);
        assert_int_equal(json_array_size(v), 1);
        fs = json_array_get(v, 0);
        assert_true(json_is_integer(json_object_get(fs, "used-bytes")));
        assert_true(json_integer_value(json_object_get(fs, "total-bytes-privileged")) >=
                    json_integer_value(json_object_get(fs, "total-bytes")));
        assert_true(json_integer_value(json_object_get(fs, "total-bytes")) >=
                    json_integer_value(json_object_get(fs, "used-bytes")));
        assert_true(json_integer_value(json_object_get(fs, "total-bytes")) > 0);
        json_decref(v);
}

static void test_fsinfo_mtab_fallback(void **state)
{
        char mi[PATH_MAX + 64], mounts[PATH_MAX + 64];
        _cleanup_fclose_ FILE *f = NULL;

        /* no mountinfo: /proc/self/mounts, device paths only; an unknown device is 0:0 */
        snprintf(mi, sizeof(mi), "%s/proc/self/mountinfo", root);
        snprintf(mounts, sizeof(mounts), "%s/proc/self/mounts", root);
        rename(mi, "/tmp/tether-sysinfo-mountinfo.saved");
        f = fopen(mounts, "w");
        assert_non_null(f);
        fprintf(f, "proc /proc proc rw 0 0\n/dev/nonexistent-tether /nonexistent-tether/m\\040x "
                   "ext4 rw 0 0\n//server/share /nonexistent-tether/smb cifs rw 0 0\n");
        fclose(steal_pointer(&f));
        expect(agent_cmd_get_fsinfo, NULL,
               "[{\"disk\":[],\"mountpoint\":\"/nonexistent-tether/m x\",\"name\":\"0:0\","
               "\"type\":\"ext4\"}]");
        unlink(mounts);
        expect(agent_cmd_get_fsinfo, NULL, "ERR: failed to open mtab file: '/proc/self/mounts'");
        rename("/tmp/tether-sysinfo-mountinfo.saved", mi);
}

static void test_disks(void **state)
{
        expect(
            agent_cmd_get_disks, NULL,
            "["
            "{\"alias\":\"vg-root\",\"dependencies\":[\"/dev/sda\",\"/dev/vda2\"],"
            "\"name\":\"/dev/dm-0\",\"partition\":false},"
            "{\"address\":{\"bus\":0,\"bus-type\":\"nvme\",\"dev\":\"/dev/nvme0n1\"," PCI(
                0, 0, 4,
                0) ",\"target\":0,\"unit\":0},"
                   "\"name\":\"/dev/nvme0n1\",\"partition\":false},"
                   "{\"dependencies\":[\"/dev/nvme0n1\"],\"name\":\"/dev/"
                   "nvme0n1p1\",\"partition\":true},"
                   "{\"address\":{\"bus\":0,\"bus-type\":\"sata\",\"dev\":\"/dev/sda\"," PCI(
                       0, 0, 31,
                       2) ",\"serial\":\"QEMU_HARDDISK_QM00005\",\"target\":0,\"unit\":1},"
                          "\"name\":\"/dev/sda\",\"partition\":false},"
                          "{\"address\":{\"bus\":0,\"bus-type\":\"scsi\",\"dev\":\"/dev/sdb\"," PCI(
                              0, 0, 3,
                              0) ",\"target\":0,\"unit\":4},"
                                 "\"name\":\"/dev/sdb\",\"partition\":false},"
                                 "{\"address\":{\"bus\":1,\"bus-type\":\"ide\",\"dev\":\"/dev/"
                                 "sdc\"," PCI(
                                     0, 0, 1,
                                     1) ",\"target\":0,\"unit\":1},"
                                        "\"name\":\"/dev/sdc\",\"partition\":false},"
                                        "{\"address\":{\"bus\":0,\"bus-type\":\"usb\",\"dev\":\"/"
                                        "dev/sdd\"," PCI(
                                            0, 5, 1,
                                            0) ",\"target\":0,\"unit\":0},"
                                               "\"name\":\"/dev/sdd\",\"partition\":false},"
                                               "{\"address\":{\"bus\":0,\"bus-type\":\"unknown\","
                                               "\"dev\":\"/dev/sde\"," PCI(
                                                   -1, -1, -1,
                                                   -1) ",\"target\":0,\"unit\":0},"
                                                       "\"name\":\"/dev/sde\",\"partition\":false},"
                                                       "{\"address\":{\"bus\":0,\"bus-type\":"
                                                       "\"virtio\",\"dev\":\"/dev/vda\"," PCI(
                                                           0, 0, 2,
                                                           0) ",\"target\":0,\"unit\":0},"
                                                              "\"dependencies\":[],\"name\":\"/dev/"
                                                              "vda\",\"partition\":false},"
                                                              "{\"dependencies\":[\"/dev/"
                                                              "vda\"],\"name\":\"/dev/"
                                                              "vda1\",\"partition\":true},"
                                                              "{\"dependencies\":[\"/dev/"
                                                              "vda\"],\"name\":\"/dev/"
                                                              "vda2\",\"partition\":true}"
                                                              "]");
}

static void test_fsfreeze_status(void **state)
{
        struct agent_ctx ctx;
        struct tt_error err = {0};
        json_t *ret = NULL, *args = json_object();

        expect(agent_cmd_fsfreeze_status, NULL, "\"thawed\"");
        memset(&ctx, 0, sizeof(ctx));
        ctx.frozen = true;
        assert_int_equal(agent_cmd_fsfreeze_status(&ctx, args, &ret, &err), 0);
        assert_string_equal(json_string_value(ret), "frozen");
        json_decref(ret);
        json_decref(args);
}

static void test_vcpus(void **state)
{
        expect(agent_cmd_get_vcpus, NULL,
               "[{\"can-offline\":false,\"logical-id\":0,\"online\":true},"
               "{\"can-offline\":true,\"logical-id\":1,\"online\":true},"
               "{\"can-offline\":true,\"logical-id\":2,\"online\":false},"
               "{\"can-offline\":true,\"logical-id\":10,\"online\":true}]");
}

static void test_memory_blocks(void **state)
{
        char dir[PATH_MAX + 64];

        expect(agent_cmd_get_memory_blocks, NULL,
               "[{\"can-offline\":false,\"online\":true,\"phys-index\":0},"
               "{\"can-offline\":true,\"online\":false,\"phys-index\":1},"
               "{\"can-offline\":false,\"online\":true,\"phys-index\":5},"
               "{\"can-offline\":false,\"online\":true,\"phys-index\":32}]");
        expect(agent_cmd_get_memory_block_info, NULL, "{\"size\":134217728}");

        /* a memory directory without blocks is an error; no directory at all is not */
        snprintf(dir, sizeof(dir), "%s/sys/devices/system/memory", root);
        rename(dir, "/tmp/tether-sysinfo-memory.saved");
        expect(agent_cmd_get_memory_blocks, NULL, "[]");
        expect(agent_cmd_get_memory_block_info, NULL,
               "ERR: open(\"/sys/devices/system/memory/\"): No such file or directory");
        mkdir(dir, 0755);
        expect(agent_cmd_get_memory_blocks, NULL, "ERR: guest reported zero memory blocks!");
        expect(agent_cmd_get_memory_block_info, NULL,
               "ERR: open sysfs file \"block_size_bytes\": No such file or directory");
        rmdir(dir);
        rename("/tmp/tether-sysinfo-memory.saved", dir);
}

static void test_diskstats(void **state)
{
        expect(
            agent_cmd_get_diskstats, NULL,
            "[{\"major\":254,\"minor\":0,\"name\":\"vda\",\"stats\":{"
            "\"discard-ios\":13,\"discard-merges\":14,\"discard-sectors\":15,\"discard-ticks\":16,"
            "\"flush-ios\":17,\"flush-ticks\":18,\"ios-pgr\":0,"
            "\"read-ios\":100,\"read-merges\":2,\"read-sectors\":300,\"read-ticks\":4,"
            "\"total-ticks\":10,\"weight-ticks\":12,"
            "\"write-ios\":500,\"write-merges\":6,\"write-sectors\":700,\"write-ticks\":8}},"
            "{\"major\":254,\"minor\":1,\"name\":\"vda1\",\"stats\":{"
            "\"discard-ios\":12,\"discard-merges\":13,\"discard-sectors\":14,\"discard-ticks\":15,"
            "\"ios-pgr\":9,\"read-ios\":1,\"read-merges\":2,\"read-sectors\":3,\"read-ticks\":4,"
            "\"total-ticks\":10,\"weight-ticks\":11,"
            "\"write-ios\":5,\"write-merges\":6,\"write-sectors\":7,\"write-ticks\":8}},"
            "{\"major\":8,\"minor\":0,\"name\":\"sda\",\"stats\":{"
            "\"ios-pgr\":9,\"read-ios\":1,\"read-merges\":2,\"read-sectors\":3,\"read-ticks\":4,"
            "\"total-ticks\":10,\"weight-ticks\":11,"
            "\"write-ios\":5,\"write-merges\":6,\"write-sectors\":7,\"write-ticks\":8}},"
            "{\"major\":8,\"minor\":1,\"name\":\"sda1\",\"stats\":{"
            "\"read-ios\":21,\"read-sectors\":22,\"write-ios\":23,\"write-sectors\":24}},"
            "{\"major\":8,\"minor\":2,\"name\":\"sda2\",\"stats\":{}}]");
}

static void test_cpustats(void **state)
{
        long tck = sysconf(_SC_CLK_TCK);

        /* the expectations are in ms for USER_HZ 100 */
        if (tck != 100)
                skip();
        expect(
            agent_cmd_get_cpustats, NULL,
            "[{\"cpu\":0,\"guest\":90,\"guestnice\":100,\"idle\":40,\"iowait\":50,\"irq\":60,"
            "\"nice\":20,\"softirq\":70,\"steal\":80,\"system\":30,\"type\":\"linux\",\"user\":10},"
            "{\"cpu\":1,\"idle\":999990,\"nice\":0,\"system\":10,\"type\":\"linux\",\"user\":12340}"
            ","
            "{\"cpu\":3,\"idle\":400,\"iowait\":500,\"irq\":600,\"nice\":200,\"softirq\":700,"
            "\"steal\":800,\"system\":300,\"type\":\"linux\",\"user\":100}]");
}

static void test_routes(void **state)
{
        /* metric and flags are unsigned (qemu-ga shows the ffffffff metric as -1) */
        expect(
            agent_cmd_network_get_route, NULL,
            "[{\"destination\":\"0.0.0.0\",\"flags\":3,\"gateway\":\"10.0.2.1\",\"iface\":\"eth0\","
            "\"irtt\":0,\"mask\":\"0.0.0.0\",\"metric\":100,\"mtu\":0,\"refcnt\":0,\"use\":0,"
            "\"version\":4,\"window\":0},"
            "{\"destination\":\"10.0.2.0\",\"flags\":1,\"gateway\":\"0.0.0.0\",\"iface\":\"eth0\","
            "\"irtt\":0,\"mask\":\"255.255.255.0\",\"metric\":100,\"mtu\":0,\"refcnt\":0,\"use\":0,"
            "\"version\":4,\"window\":0},"
            "{\"destination\":\"127.0.0.0\",\"flags\":1,\"gateway\":\"0.0.0.0\",\"iface\":\"lo\","
            "\"irtt\":3,\"mask\":\"255.0.0.0\",\"metric\":4294967295,\"mtu\":1500,\"refcnt\":2,"
            "\"use\":5,\"version\":4,\"window\":64},"
            "{\"desprefixlen\":\"64\",\"destination\":\"fe80::\",\"flags\":1,\"iface\":\"eth0\","
            "\"metric\":256,\"nexthop\":\"::\",\"refcnt\":1,\"source\":\"::\",\"srcprefixlen\":"
            "\"0\","
            "\"use\":0,\"version\":6},"
            "{\"desprefixlen\":\"128\",\"destination\":\"::1\",\"flags\":2149580801,\"iface\":"
            "\"lo\","
            "\"metric\":0,\"nexthop\":\"::\",\"refcnt\":2,\"source\":\"::\",\"srcprefixlen\":\"0\","
            "\"use\":10,\"version\":6},"
            "{\"desprefixlen\":\"0\",\"destination\":\"::\",\"flags\":2097664,\"iface\":\"lo\","
            "\"metric\":4294967295,\"nexthop\":\"::\",\"refcnt\":1,\"source\":\"::\","
            "\"srcprefixlen\":\"0\","
            "\"use\":0,\"version\":6}]");
}

static void test_routes_missing_files(void **state)
{
        char v4[PATH_MAX + 64], v6[PATH_MAX + 64];

        snprintf(v4, sizeof(v4), "%s/proc/net/route", root);
        snprintf(v6, sizeof(v6), "%s/proc/net/ipv6_route", root);
        /* no IPv6 in the kernel: the IPv4 routes alone */
        rename(v6, "/tmp/tether-sysinfo-v6.saved");
        {
                char *out = call(agent_cmd_network_get_route, NULL);
                json_t *v = json_loads(out, 0, NULL);

                assert_int_equal(json_array_size(v), 3);
                json_decref(v);
                free(out);
        }
        rename(v4, "/tmp/tether-sysinfo-v4.saved");
        expect(agent_cmd_network_get_route, NULL,
               "ERR: open(\"/proc/net/route\"): No such file or directory");
        rename("/tmp/tether-sysinfo-v4.saved", v4);
        rename("/tmp/tether-sysinfo-v6.saved", v6);
}

static void test_osinfo(void **state)
{
        char path[PATH_MAX + 64];
        char *out = call(agent_cmd_get_osinfo, NULL);
        json_t *v = json_loads(out, 0, NULL);

        /* uname parts are live; drop them and compare the os-release parts exactly */
        free(out);
        assert_true(json_is_string(json_object_get(v, "kernel-release")));
        assert_true(json_is_string(json_object_get(v, "kernel-version")));
        assert_true(json_is_string(json_object_get(v, "machine")));
        json_object_del(v, "kernel-release");
        json_object_del(v, "kernel-version");
        json_object_del(v, "machine");
        out = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT);
        /* qemu-ga 7.2 gives exactly this for that file (unquoting quirks included) */
        assert_string_equal(out, "{\"id\":\"fancy\",\"name\":\"Fancy \\\"Quoted\\\" Linux\","
                                 "\"pretty-name\":\"'Single\",\"variant\":\"semi\","
                                 "\"variant-id\":\"a\","
                                 "\"version\":\"1.0 ($dollar \\\\backslash `tick` \\\\n)\","
                                 "\"version-id\":\"1.0\"}");
        free(out);
        json_decref(v);

#define OSINFO_ONLY(file, want)                                                                    \
        do {                                                                                       \
                snprintf(path, sizeof(path), "%s/%s", root, file);                                 \
                setenv("QGA_OS_RELEASE", path, 1);                                                 \
                out = call(agent_cmd_get_osinfo, NULL);                                            \
                v = json_loads(out, 0, NULL);                                                      \
                free(out);                                                                         \
                json_object_del(v, "kernel-release");                                              \
                json_object_del(v, "kernel-version");                                              \
                json_object_del(v, "machine");                                                     \
                out = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT);                                \
                assert_string_equal(out, want);                                                    \
                free(out);                                                                         \
                json_decref(v);                                                                    \
        } while (0)
        /* last duplicate wins; an unterminated quote runs to the end of the line */
        OSINFO_ONLY("osr/dup", "{\"id\":\"second\",\"name\":\"unterminated\"}");
        /* keys under another [group] are not os-release keys */
        OSINFO_ONLY("osr/group", "{\"id\":\"kept\",\"version-id\":\"7\"}");
        /* not UTF-8: the file is ignored (no fallback when QGA_OS_RELEASE is set) */
        OSINFO_ONLY("osr/latin1", "{}");
        OSINFO_ONLY("osr/crlf", "{\"id\":\"dos\",\"name\":\"Dos Linux\"}");
        OSINFO_ONLY("osr/missing", "{}");
        unsetenv("QGA_OS_RELEASE");
}

static void test_ssh_keys(void **state)
{
        /* trimmed, blank and # lines skipped, and listed bottom-up as qemu-ga does */
        expect(agent_cmd_ssh_get_authorized_keys, "{\"username\":\"alice\"}",
               "{\"keys\":[\"ssh-ed25519 CCCC3 third\",\"ssh-rsa BBBB2 second\","
               "\"ssh-ed25519 AAAA1 first@x\"]}");
        expect(agent_cmd_ssh_get_authorized_keys, "{\"username\":\"nosuchuser\"}",
               "ERR: failed to lookup user 'nosuchuser': Success");
        expect(agent_cmd_ssh_get_authorized_keys, "{\"username\":\"carol\"}",
               "ERR: failed to read '/home/carol/.ssh/authorized_keys': Failed to open file "
               "\u201c/home/carol/.ssh/authorized_keys\u201d: No such file or directory");
        expect(agent_cmd_ssh_get_authorized_keys, "{\"username\":\"bob\"}",
               "ERR: failed to read '/home/bob/.ssh/authorized_keys': Error reading file "
               "\u201c/home/bob/.ssh/authorized_keys\u201d: Is a directory");
}

static void test_lookup_user(void **state)
{
        struct tt_error err = {0};
        char *home = NULL;
        uid_t uid = 0;
        gid_t gid = 0;

        assert_int_equal(agent_lookup_user("carol", &uid, &gid, &home, &err), 0);
        assert_int_equal(uid, 1002);
        assert_int_equal(gid, 1003);
        assert_string_equal(home, "/home/carol");
        free(home);
        /* a prefix of a name is not that name */
        assert_true(agent_lookup_user("car", NULL, NULL, NULL, &err) < 0);
        assert_int_equal(err.code, ENOENT);
        tt_error_clear(&err);
}

static void test_users(void **state)
{
        char path[PATH_MAX + 64];
        struct utmpx ut;
        static const struct {
                const char *user;
                short type;
                long sec, usec;
        } rows[] = {
            {"alice", USER_PROCESS, 1700000100, 500000}, {"bob", USER_PROCESS, 1700000200, 0},
            {"alice", USER_PROCESS, 1700000050, 250000}, /* earlier: kept */
            {"alice", USER_PROCESS, 1700000900, 0},      {"LOGIN", LOGIN_PROCESS, 1700000000, 0},
            {"reboot", BOOT_TIME, 1700000000, 0},
        };
        size_t i;

        /* no utmp file at all: nobody logged in */
        expect(agent_cmd_get_users, NULL, "[]");

        snprintf(path, sizeof(path), "%s/run/utmp", root);
        close(open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
        assert_int_equal(utmpxname(path), 0);
        setutxent();
        for (i = 0; i < TT_ARRAY_SIZE(rows); i++) {
                memset(&ut, 0, sizeof(ut));
                ut.ut_type = rows[i].type;
                ut.ut_pid = (pid_t)(100 + i);
                snprintf(ut.ut_line, sizeof(ut.ut_line), "pts/%zu", i);
                snprintf(ut.ut_id, sizeof(ut.ut_id), "%zu", i);
                strncpy(ut.ut_user, rows[i].user, sizeof(ut.ut_user));
                ut.ut_tv.tv_sec = (int32_t)rows[i].sec;
                ut.ut_tv.tv_usec = (int32_t)rows[i].usec;
                assert_non_null(pututxline(&ut));
        }
        endutxent();
        expect(agent_cmd_get_users, NULL,
               "[{\"login-time\":1700000050.25,\"user\":\"alice\"},"
               "{\"login-time\":1700000200.0,\"user\":\"bob\"}]");
}

static void test_live_system(void **state)
{
        char *out;
        json_t *v, *lo = NULL, *e;
        size_t i;

        /* the live machine (no sysroot): shapes only, values vary */
        unsetenv("TETHER_AGENT_SYSROOT");
        out = call(agent_cmd_network_get_interfaces, NULL);
        v = json_loads(out, 0, NULL);
        free(out);
        json_array_foreach(v, i, e)
        {
                if (strcmp(json_string_value(json_object_get(e, "name")), "lo") == 0)
                        lo = e;
        }
        assert_non_null(lo);
        assert_string_equal(json_string_value(json_object_get(lo, "hardware-address")),
                            "00:00:00:00:00:00");
        e = json_array_get(json_object_get(lo, "ip-addresses"), 0);
        assert_string_equal(json_string_value(json_object_get(e, "ip-address")), "127.0.0.1");
        assert_string_equal(json_string_value(json_object_get(e, "ip-address-type")), "ipv4");
        assert_int_equal(json_integer_value(json_object_get(e, "prefix")), 8);
        assert_true(
            json_is_integer(json_object_get(json_object_get(lo, "statistics"), "rx-bytes")));
        json_decref(v);

        out = call(agent_cmd_get_load, NULL);
        v = json_loads(out, 0, NULL);
        free(out);
        assert_true(json_is_real(json_object_get(v, "load1m")));
        assert_true(json_is_real(json_object_get(v, "load5m")));
        assert_true(json_is_real(json_object_get(v, "load15m")));
        assert_int_equal(json_object_size(v), 3);
        json_decref(v);

        out = call(agent_cmd_get_host_name, NULL);
        v = json_loads(out, 0, NULL);
        free(out);
        assert_true(json_string_length(json_object_get(v, "host-name")) > 0);
        json_decref(v);

        setenv("TZ", "Europe/Berlin", 1);
        out = call(agent_cmd_get_timezone, NULL);
        assert_true(strcmp(out, "{\"offset\":3600,\"zone\":\"CET\"}") == 0 ||
                    strcmp(out, "{\"offset\":7200,\"zone\":\"CEST\"}") == 0);
        free(out);
        setenv("TZ", "UTC", 1);
        expect(agent_cmd_get_timezone, NULL, "{\"offset\":0,\"zone\":\"UTC\"}");
        unsetenv("TZ");
        setenv("TETHER_AGENT_SYSROOT", root, 1);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_fsinfo),
            cmocka_unit_test(test_fsinfo_sizes),
            cmocka_unit_test(test_fsinfo_mtab_fallback),
            cmocka_unit_test(test_disks),
            cmocka_unit_test(test_fsfreeze_status),
            cmocka_unit_test(test_vcpus),
            cmocka_unit_test(test_memory_blocks),
            cmocka_unit_test(test_diskstats),
            cmocka_unit_test(test_cpustats),
            cmocka_unit_test(test_routes),
            cmocka_unit_test(test_routes_missing_files),
            cmocka_unit_test(test_osinfo),
            cmocka_unit_test(test_ssh_keys),
            cmocka_unit_test(test_lookup_user),
            cmocka_unit_test(test_users),
            cmocka_unit_test(test_live_system),
        };

        if (argc == 3 && strcmp(argv[1], "--make-tree") == 0)
                return make_tree(argv[2]) < 0 ? 1 : 0;
        return cmocka_run_group_tests(tests, setup, teardown);
}
