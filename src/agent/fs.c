/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-get-fsinfo, guest-get-disks and guest-fsfreeze-status. Disks are described the way
 * qemu-ga does: the PCI controller, bus type and bus/target/unit are read off the sysfs path
 * of the block device and the driver bound to the controller. Device nodes come from the
 * uevent file and serial numbers from udev's database file, so libudev is not needed.
 */
#include "agent/agent.h"
#include "agent/mounts.h"
#include "agent/sysinfo.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Hosts (ATA ports, SCSI hosts) considered when numbering IDE buses and AHCI units. */
#define MAX_HOSTS 8

/* ---- sysfs device description ---- */

/* Value of KEY= in a "KEY=value" per line file (uevent, udev database with prefix "E:"). */
static char *file_value(const char *path, const char *prefix)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0, plen = strlen(prefix);

        if (f == NULL)
                return NULL;
        while (getline(&line, &cap, f) != -1) {
                if (strncmp(line, prefix, plen) == 0) {
                        line[strcspn(line, "\n")] = '\0';
                        return strdup(line + plen);
                }
        }
        return NULL;
}

/* "/dev/<DEVNAME>" of a sysfs block device directory, as udev_device_get_devnode() gives. */
static char *devnode_of(const char *syspath)
{
        _cleanup_free_ char *uevent = NULL;
        _cleanup_free_ char *name = NULL;
        char *node = NULL;

        if (asprintf(&uevent, "%s/uevent", syspath) < 0)
                return NULL;
        name = file_value(uevent, "DEVNAME=");
        if (name == NULL || *name == '\0')
                return NULL;
        if (asprintf(&node, "/dev/%s", name) < 0)
                return NULL;
        return node;
}

/* A property (ID_SERIAL, DM_NAME) from udev's database entry for this block device. */
static char *udev_property(const char *syspath, const char *key)
{
        _cleanup_free_ char *devfile = NULL;
        _cleanup_free_ char *devnum = NULL;
        _cleanup_free_ char *db = NULL;
        _cleanup_free_ char *prefix = NULL;
        char *v;

        if (asprintf(&devfile, "%s/dev", syspath) < 0) {
                devfile = NULL;
                return NULL;
        }
        devnum = tt_read_line_file(devfile);
        if (devnum == NULL || strchr(devnum, '/'))
                return NULL;
        db = agent_path("/run/udev/data/b%s", devnum);
        if (db == NULL || asprintf(&prefix, "E:%s=", key) < 0) {
                prefix = NULL;
                return NULL;
        }
        v = file_value(db, prefix);
        if (v && *v == '\0') {
                free(v);
                return NULL;
        }
        return v;
}

struct disk_addr {
        int pci[4];           /* domain, bus, slot, function; -1 when unknown */
        const char *bus_type; /* GuestDiskBusType */
        unsigned int bus, target, unit;
        bool has_ccw;
        unsigned int ccw[4]; /* cssid, ssid, subchno, devno */
};

/* Basename of the driver bound to the device at syspath[0..len). */
static char *pci_driver(const char *syspath, size_t len)
{
        _cleanup_free_ char *link = NULL;
        char buf[PATH_MAX];
        ssize_t n;
        char *slash;

        if (asprintf(&link, "%.*s/driver", (int)len, syspath) < 0) {
                link = NULL;
                return NULL;
        }
        n = readlink(link, buf, sizeof(buf) - 1);
        if (n < 0)
                return NULL;
        buf[n] = '\0';
        slash = strrchr(buf, '/');
        return strdup(slash ? slash + 1 : buf);
}

static int cmp_uint(const void *a, const void *b)
{
        unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;

        return x < y ? -1 : x > y;
}

/* Sorted numbers of the ataN or hostN siblings in the directory holding host. */
static int list_hosts(const char *syspath, const char *host, bool ata, unsigned int *hosts, int max,
                      struct tt_error *err)
{
        _cleanup_free_ char *dir = strndup(syspath, (size_t)(host - syspath));
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int n = 0;

        if (dir == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        d = opendir(dir);
        if (d == NULL)
                return tt_error_errno(err, errno, "opendir(\"%s\")", dir);
        while (n < max && (de = readdir(d)) != NULL) {
                if (sscanf(de->d_name, ata ? "ata%u" : "host%u", &hosts[n]) == 1)
                        n++;
        }
        qsort(hosts, (size_t)n, sizeof(*hosts), cmp_uint);
        return n;
}

static bool driver_supported(const char *driver)
{
        static const char *const known[] = {"ata_piix", "sym53c8xx", "virtio-pci", "ahci",
                                            "nvme",     "xhci_hcd",  "ehci-pci"};
        size_t i;

        for (i = 0; i < TT_ARRAY_SIZE(known); i++)
                if (strcmp(driver, known[i]) == 0)
                        return true;
        return false;
}

/* Index of host among hosts, or -1. */
static int host_index(unsigned int host, const unsigned int *hosts, int n)
{
        int i;

        for (i = 0; i < n; i++)
                if (hosts[i] == host)
                        return i;
        return -1;
}

/*
 * A device below a PCI controller: .../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/...
 * Walk down the PCI path to the first function bound to a driver we know, then read the
 * bus/target/unit numbers the way that controller lays them out. false: no hardware info.
 */
static int pci_disk(const char *syspath, struct disk_addr *a, bool *found, struct tt_error *err)
{
        _cleanup_free_ char *driver = NULL;
        unsigned int pci[4], tgt[3], host = 0, hosts[MAX_HOSTS];
        bool has_tgt = false, has_host = false, has_ata = false;
        int len = 0, nhosts = 0, idx;
        const char *p, *h;

        *found = false;
        p = strstr(syspath, "/devices/pci");
        if (p == NULL ||
            sscanf(p + 12, "%*x:%*x/%x:%x:%x.%x%n", &pci[0], &pci[1], &pci[2], &pci[3], &len) < 4 ||
            len == 0)
                return 0;
        p += 12 + len;
        for (;;) {
                driver = pci_driver(syspath, (size_t)(p - syspath));
                if (driver && driver_supported(driver))
                        break;
                free(steal_pointer(&driver));
                /* a bridge: its child function may be the controller */
                len = 0;
                if (sscanf(p, "/%x:%x:%x.%x%n", &pci[0], &pci[1], &pci[2], &pci[3], &len) == 4 &&
                    len > 0) {
                        p += len;
                        continue;
                }
                return 0;
        }

        p = strstr(syspath, "/target");
        if (p && sscanf(p + 7, "%*u:%*u:%*u/%*u:%u:%u:%u", &tgt[0], &tgt[1], &tgt[2]) == 3)
                has_tgt = true;
        h = strstr(syspath, "/ata");
        if (h) {
                has_ata = true;
                has_host = sscanf(h + 4, "%u", &host) == 1;
        } else {
                h = strstr(syspath, "/host");
                has_host = h && sscanf(h + 5, "%u", &host) == 1;
        }
        if (has_host) {
                nhosts = list_hosts(syspath, h, has_ata, hosts, MAX_HOSTS, err);
                if (nhosts < 0)
                        return -1;
        }

        a->pci[0] = (int)pci[0];
        a->pci[1] = (int)pci[1];
        a->pci[2] = (int)pci[2];
        a->pci[3] = (int)pci[3];

        if (strcmp(driver, "ata_piix") == 0) {
                /* one host per IDE bus; target<n>:0:<unit>:0 */
                if (!has_host || !has_tgt || (idx = host_index(host, hosts, nhosts)) < 0)
                        return 0;
                a->bus_type = "ide";
                a->bus = (unsigned int)idx;
                a->unit = tgt[1];
        } else if (strcmp(driver, "sym53c8xx") == 0) {
                /* LSI SCSI: target<n>:0:<unit>:0 */
                if (!has_tgt)
                        return 0;
                a->bus_type = "scsi";
                a->unit = tgt[1];
        } else if (strcmp(driver, "virtio-pci") == 0) {
                if (has_tgt) {
                        /* virtio-scsi: target<n>:0:0:<unit> */
                        a->bus_type = "scsi";
                        a->unit = tgt[2];
                } else {
                        /* virtio-blk: one disk per device */
                        a->bus_type = "virtio";
                }
        } else if (strcmp(driver, "ahci") == 0) {
                /* one host per port, and the port is the unit */
                if (!has_host || !has_tgt || (idx = host_index(host, hosts, nhosts)) < 0)
                        return 0;
                a->bus_type = "sata";
                a->unit = (unsigned int)idx;
        } else if (strcmp(driver, "nvme") == 0) {
                a->bus_type = "nvme";
        } else {
                a->bus_type = "usb"; /* xhci_hcd, ehci-pci */
        }
        *found = true;
        return 0;
}

/* virtio without PCI (virtio-mmio, or below a CCW device). */
static bool nonpci_virtio_disk(const char *syspath, struct disk_addr *a)
{
        unsigned int tgt[3];
        const char *p;

        if (!strstr(syspath, "/virtio") || !strstr(syspath, "/block"))
                return false;
        p = strstr(syspath, "/target");
        if (p && sscanf(p + 7, "%*u:%*u:%*u/%*u:%u:%u:%u", &tgt[0], &tgt[1], &tgt[2]) == 3) {
                a->bus_type = "scsi";
                a->bus = tgt[0];
                a->target = tgt[1];
                a->unit = tgt[2];
        } else {
                a->bus_type = "virtio";
        }
        return true;
}

/* s390x channel I/O: .../devices/css0/0.0.0000/0.0.0001/... */
static bool ccw_disk(const char *syspath, struct disk_addr *a)
{
        const char *p = strstr(syspath, "/devices/css");

        if (p == NULL || sscanf(p + 12, "%*x/%x.%x.%x/%*x.%*x.%x/", &a->ccw[0], &a->ccw[1],
                                &a->ccw[2], &a->ccw[3]) < 4)
                return false;
        a->has_ccw = true;
        if (strstr(p, "/virtio"))
                nonpci_virtio_disk(syspath, a);
        return true;
}

static json_t *disk_addr_json(const struct disk_addr *a, const char *serial, const char *dev)
{
        json_t *o = json_pack("{s:{s:i,s:i,s:i,s:i},s:s,s:I,s:I,s:I}", "pci-controller", "domain",
                              a->pci[0], "bus", a->pci[1], "slot", a->pci[2], "function", a->pci[3],
                              "bus-type", a->bus_type, "bus", (json_int_t)a->bus, "target",
                              (json_int_t)a->target, "unit", (json_int_t)a->unit);

        if (o == NULL)
                return NULL;
        if (serial && agent_json_set(o, "serial", json_string(serial)) < 0)
                goto fail;
        if (dev && agent_json_set(o, "dev", json_string(dev)) < 0)
                goto fail;
        if (a->has_ccw &&
            agent_json_set(o, "ccw-address",
                           json_pack("{s:I,s:I,s:I,s:I}", "cssid", (json_int_t)a->ccw[0], "ssid",
                                     (json_int_t)a->ccw[1], "subchno", (json_int_t)a->ccw[2],
                                     "devno", (json_int_t)a->ccw[3])) < 0)
                goto fail;
        return o;
fail:
        json_decref(o);
        return NULL;
}

/* One GuestDiskAddress for a real (non-virtual) block device, appended to disks if known. */
static int real_device(const char *syspath, json_t *disks, struct tt_error *err)
{
        struct disk_addr a = {.pci = {-1, -1, -1, -1}, .bus_type = "unknown"};
        _cleanup_free_ char *dev = devnode_of(syspath);
        _cleanup_free_ char *serial = udev_property(syspath, "ID_SERIAL");
        bool hw = false;
        json_t *o;

        if (strstr(syspath, "/devices/pci")) {
                if (pci_disk(syspath, &a, &hw, err) < 0)
                        return -1;
        } else if (strstr(syspath, "/devices/css")) {
                hw = ccw_disk(syspath, &a);
        } else if (strstr(syspath, "/virtio")) {
                hw = nonpci_virtio_disk(syspath, &a);
        }
        if (!hw && dev == NULL && serial == NULL)
                return 0;
        o = disk_addr_json(&a, serial, dev);
        if (o == NULL || json_array_append_new(disks, o) < 0)
                return tt_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static int describe_device(const char *devpath, json_t *fs, json_t *disks, struct tt_error *err);

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_strv(char **v, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* Sorted names of the symlinks in dir; -ENOENT when dir does not exist. */
static int list_links(const char *dir, char ***out, size_t *count)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        char **v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;

        if (d == NULL)
                return -errno;
        while ((de = readdir(d)) != NULL) {
                if (de->d_type != DT_LNK)
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 8;
                        char **nv = reallocarray(v, ncap, sizeof(*nv));

                        if (nv == NULL) {
                                free_strv(v, n);
                                return -ENOMEM;
                        }
                        v = nv;
                        cap = ncap;
                }
                v[n] = strdup(de->d_name);
                if (v[n++] == NULL) {
                        free_strv(v, n);
                        return -ENOMEM;
                }
        }
        if (n > 0)
                qsort(v, n, sizeof(*v), cmp_str);
        *out = v;
        *count = n;
        return 0;
}

/* A device-mapper or md volume: describe each of its slaves instead. */
static int virtual_device(const char *syspath, json_t *fs, json_t *disks, struct tt_error *err)
{
        _cleanup_free_ char *dir = NULL;
        char **names = NULL;
        size_t n = 0, i;
        int r;

        if (asprintf(&dir, "%s/slaves", syspath) < 0) {
                dir = NULL;
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        r = list_links(dir, &names, &n);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return tt_error_errno(err, -r, "opendir(\"%s\")", dir);
        for (i = 0, r = 0; i < n && r == 0; i++) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
                        path = NULL;
                        r = tt_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                r = describe_device(path, fs, disks, err);
        }
        free_strv(names, n);
        return r;
}

static bool is_virtual_syspath(const char *syspath)
{
        return strstr(syspath, "/devices/virtual/block/") != NULL;
}

/*
 * Resolve devpath (/sys/dev/block/M:m or a slaves/ link), name the file system after the first
 * device seen, and add the disks under it.
 */
static int describe_device(const char *devpath, json_t *fs, json_t *disks, struct tt_error *err)
{
        _cleanup_free_ char *syspath = realpath(devpath, NULL);

        if (syspath == NULL) {
                const char *base = strrchr(devpath, '/');

                if (errno != ENOENT)
                        return tt_error_errno(err, errno, "realpath(\"%s\")", devpath);
                /* ENOENT: e.g. a container without that sysfs entry */
                if (fs && !json_object_get(fs, "name"))
                        json_object_set_new(fs, "name", json_string(base ? base + 1 : devpath));
                return 0;
        }
        if (fs && !json_object_get(fs, "name")) {
                const char *base = strrchr(syspath, '/');

                json_object_set_new(fs, "name", json_string(base ? base + 1 : syspath));
        }
        if (is_virtual_syspath(syspath))
                return virtual_device(syspath, fs, disks, err);
        return real_device(syspath, disks, err);
}

static json_t *fsinfo_entry(const struct agent_mount *m, struct tt_error *err)
{
        _cleanup_json_ json_t *fs = json_object();
        _cleanup_json_ json_t *disks = json_array();
        _cleanup_free_ char *devpath = agent_path("/sys/dev/block/%u:%u", m->major, m->minor);
        struct statvfs sv;

        if (fs == NULL || disks == NULL || devpath == NULL) {
                tt_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        if (describe_device(devpath, fs, disks, err) < 0)
                return NULL;
        if (!json_object_get(fs, "name"))
                json_object_set_new(fs, "name", json_string(""));
        json_object_set_new(fs, "mountpoint", json_string(m->dir));
        json_object_set_new(fs, "type", json_string(m->type));
        if (statvfs(m->dir, &sv) == 0) {
                uint64_t used = (uint64_t)(sv.f_blocks - sv.f_bfree);
                uint64_t fr = sv.f_frsize;

                json_object_set_new(fs, "used-bytes", agent_json_u64(used * fr));
                /* what non-root users can fill: used plus what is available to them */
                json_object_set_new(fs, "total-bytes", agent_json_u64((used + sv.f_bavail) * fr));
                json_object_set_new(fs, "total-bytes-privileged",
                                    agent_json_u64((uint64_t)sv.f_blocks * fr));
        }
        json_object_set_new(fs, "disk", steal_pointer(&disks));
        return steal_pointer(&fs);
}

AGENT_HANDLER(agent_cmd_get_fsinfo)
{
        __attribute__((cleanup(agent_mounts_free))) struct agent_mounts mounts = {0};
        _cleanup_json_ json_t *list = json_array();
        size_t i;

        if (list == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (agent_mounts_read(&mounts, err) < 0)
                return -1;
        /* qemu-ga lists the last mount first */
        for (i = mounts.n; i-- > 0;) {
                json_t *fs = fsinfo_entry(&mounts.v[i], err);

                if (fs == NULL)
                        return -1;
                if (json_array_append_new(list, fs) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        *ret = steal_pointer(&list);
        return 0;
}

/* ---- guest-get-disks ---- */

/* "/dev/..." nodes of the slaves of disk_dir; NULL (no member) when it has no slaves/ dir. */
static json_t *disk_dependencies(const char *disk_dir)
{
        _cleanup_free_ char *dir = NULL;
        char **names = NULL;
        size_t n = 0, i;
        json_t *deps;

        if (asprintf(&dir, "%s/slaves", disk_dir) < 0) {
                dir = NULL;
                return NULL;
        }
        if (list_links(dir, &names, &n) < 0)
                return NULL;
        deps = json_array();
        for (i = 0; deps && i < n; i++) {
                _cleanup_free_ char *path = NULL;
                _cleanup_free_ char *node = NULL;

                if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
                        path = NULL;
                        break;
                }
                node = devnode_of(path);
                if (node)
                        json_array_append_new(deps, json_string(node));
        }
        free_strv(names, n);
        return deps;
}

/* Device-mapper name: sysfs dm/name, else udev's DM_NAME. */
static char *disk_alias(const char *disk_dir)
{
        _cleanup_free_ char *path = NULL;
        char *name;

        if (asprintf(&path, "%s/dm/name", disk_dir) < 0) {
                path = NULL;
                return NULL;
        }
        name = tt_read_line_file(path);
        if (name && *name)
                return name;
        free(name);
        return udev_property(disk_dir, "DM_NAME");
}

/* Partition subdirectories "<disk>N" or "<disk>pN", sorted. */
static bool is_partition_of(const char *disk, const char *name)
{
        size_t len = strlen(disk);

        if (strncmp(name, disk, len) != 0)
                return false;
        name += len;
        if (*name == 'p')
                name++;
        return isdigit((unsigned char)*name);
}

static int add_partitions(json_t *list, const char *disk, const char *disk_dir,
                          const char *disk_dev)
{
        _cleanup_closedir_ DIR *d = opendir(disk_dir);
        char **names = NULL;
        size_t n = 0, cap = 0, i;
        struct dirent *de;
        int r = 0;

        if (d == NULL)
                return 0;
        while ((de = readdir(d)) != NULL) {
                if (de->d_type != DT_DIR || !is_partition_of(disk, de->d_name))
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 8;
                        char **nv = reallocarray(names, ncap, sizeof(*nv));

                        if (nv == NULL) {
                                r = -ENOMEM;
                                break;
                        }
                        names = nv;
                        cap = ncap;
                }
                names[n] = strdup(de->d_name);
                if (names[n++] == NULL) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r == 0 && n > 0)
                qsort(names, n, sizeof(*names), cmp_str);
        for (i = 0; r == 0 && i < n; i++) {
                _cleanup_free_ char *path = NULL;
                _cleanup_free_ char *node = NULL;
                json_t *p;

                if (asprintf(&path, "%s/%s", disk_dir, names[i]) < 0) {
                        path = NULL;
                        r = -ENOMEM;
                        break;
                }
                node = devnode_of(path);
                if (node == NULL)
                        continue;
                /* the parent disk is the dependency, so the hierarchy can be rebuilt */
                p = json_pack("{s:s,s:b,s:[s]}", "name", node, "partition", 1, "dependencies",
                              disk_dev);
                if (p == NULL || json_array_append_new(list, p) < 0)
                        r = -ENOMEM;
        }
        free_strv(names, n);
        return r;
}

/* Little-endian unsigned integer of len bytes (len <= 8) at p. */
static uint64_t le_bytes(const unsigned char *p, size_t len)
{
        uint64_t v = 0;

        while (len-- > 0)
                v = (v << 8) | p[len];
        return v;
}

/*
 * NVMe SMART / health log (log page 0x02) of an NVMe disk, as qemu-ga 7.1+ reports it: the
 * 128-bit counters split into -lo and -hi halves. A read-only admin command; NULL if it fails.
 */
static json_t *nvme_smart(const char *devnode)
{
        static const struct {
                const char *key; /* member prefix */
                size_t off;      /* byte offset of the 128-bit counter in the log page */
        } counters[] = {
            {"data-units-read", 32},      {"data-units-written", 48},
            {"host-read-commands", 64},   {"host-write-commands", 80},
            {"controller-busy-time", 96}, {"power-cycles", 112},
            {"power-on-hours", 128},      {"unsafe-shutdowns", 144},
            {"media-errors", 160},        {"number-of-error-log-entries", 176},
        };
        unsigned char log[512];
        struct nvme_admin_cmd cmd;
        _cleanup_close_ int fd = -1;
        json_t *o;
        size_t i;

        memset(log, 0, sizeof(log));
        memset(&cmd, 0, sizeof(cmd));
        cmd.opcode = 0x02;     /* Get Log Page */
        cmd.nsid = 0xffffffff; /* controller-wide */
        cmd.addr = (uint64_t)(uintptr_t)log;
        cmd.data_len = sizeof(log);
        /* log id 2 (SMART), retain asynchronous event, number of dwords - 1 */
        cmd.cdw10 = 0x02 | (1u << 15) | ((uint32_t)(sizeof(log) / 4 - 1) << 16);
        fd = open(devnode, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ioctl(fd, NVME_IOCTL_ADMIN_CMD, &cmd) != 0)
                return NULL;
        o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "type", "nvme", "critical-warning",
                      (json_int_t)log[0], "temperature", (json_int_t)le_bytes(log + 1, 2),
                      "available-spare", (json_int_t)log[3], "available-spare-threshold",
                      (json_int_t)log[4], "percentage-used", (json_int_t)log[5]);
        for (i = 0; o && i < TT_ARRAY_SIZE(counters); i++) {
                char key[64];

                snprintf(key, sizeof(key), "%s-lo", counters[i].key);
                json_object_set_new(o, key, agent_json_u64(le_bytes(log + counters[i].off, 8)));
                snprintf(key, sizeof(key), "%s-hi", counters[i].key);
                json_object_set_new(o, key, agent_json_u64(le_bytes(log + counters[i].off + 8, 8)));
        }
        return o;
}

AGENT_HANDLER(agent_cmd_get_disks)
{
        _cleanup_free_ char *block = agent_path("/sys/block");
        _cleanup_json_ json_t *list = json_array();
        char **names = NULL;
        size_t n = 0, i;
        int r;

        if (block == NULL || list == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        r = list_links(block, &names, &n);
        if (r < 0)
                return tt_error_errno(err, -r, "Can't open directory \"/sys/block\"");
        for (i = 0, r = 0; i < n && r == 0; i++) {
                _cleanup_free_ char *dir = NULL;
                _cleanup_free_ char *size_path = NULL;
                _cleanup_free_ char *size = NULL;
                _cleanup_free_ char *dev = NULL;
                _cleanup_free_ char *real = NULL;
                _cleanup_free_ char *alias = NULL;
                json_t *disk, *deps;

                if (asprintf(&dir, "%s/%s", block, names[i]) < 0 ||
                    asprintf(&size_path, "%s/size", dir) < 0) {
                        r = -ENOMEM;
                        break;
                }
                /* empty drives (cdrom without media, unused loop devices) are left out */
                size = tt_read_line_file(size_path);
                if (size == NULL || strcmp(size, "0") == 0)
                        continue;
                dev = devnode_of(dir);
                if (dev == NULL)
                        continue;
                disk = json_pack("{s:s,s:b}", "name", dev, "partition", 0);
                if (disk == NULL || json_array_append_new(list, disk) < 0) {
                        r = -ENOMEM;
                        break;
                }
                deps = disk_dependencies(dir);
                if (deps)
                        json_object_set_new(disk, "dependencies", deps);
                /* the address of a real disk; dm/md volumes have none of their own */
                real = realpath(dir, NULL);
                if (real && !is_virtual_syspath(real)) {
                        _cleanup_json_ json_t *addrs = json_array();
                        struct tt_error ignored = {0};

                        if (addrs && real_device(real, addrs, &ignored) == 0 &&
                            json_array_size(addrs) > 0)
                                json_object_set(disk, "address", json_array_get(addrs, 0));
                        tt_error_clear(&ignored);
                }
                alias = disk_alias(dir);
                if (alias)
                        json_object_set_new(disk, "alias", json_string(alias));
                /* qemu-ga 7.1+: SMART health of NVMe disks */
                if (strcmp(json_string_value(
                               json_object_get(json_object_get(disk, "address"), "bus-type"))
                               ?: "",
                           "nvme") == 0) {
                        _cleanup_free_ char *node = agent_path("%s", dev);
                        json_t *smart = node ? nvme_smart(node) : NULL;

                        if (smart)
                                json_object_set_new(disk, "smart", smart);
                }
                r = add_partitions(list, names[i], dir, dev);
        }
        free_strv(names, n);
        if (r < 0)
                return tt_error_set(err, -r, "out of memory");
        *ret = steal_pointer(&list);
        return 0;
}

AGENT_HANDLER(agent_cmd_fsfreeze_status)
{
        *ret = json_string(ctx && ctx->frozen ? "frozen" : "thawed");
        if (*ret == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return 0;
}
