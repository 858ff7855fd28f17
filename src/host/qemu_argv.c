/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The QEMU 7.2 command line for a domain, in libvirt's shape (ids, node names, order). */
#include "host/qemu_argv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

/* Collects arguments; a failed allocation is remembered and reported once at the end. */
struct builder {
        struct qemu_argv *out;
        bool oom;
        char *escaped[64]; /* values escaped for this build, freed at the end */
        size_t n_escaped;
};

__attribute__((format(printf, 2, 3)))
static void add(struct builder *b, const char *fmt, ...)
{
        struct qemu_argv *a = b->out;
        char *arg = NULL;
        va_list ap;

        if (b->oom)
                return;
        if (a->argc + 2 > a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 64;
                char **bigger = reallocarray(a->argv, cap, sizeof(*bigger));

                if (bigger == NULL) {
                        b->oom = true;
                        return;
                }
                a->argv = bigger;
                a->cap = cap;
        }
        va_start(ap, fmt);
        if (vasprintf(&arg, fmt, ap) < 0) {
                b->oom = true;
                arg = NULL;
        }
        va_end(ap);
        if (arg == NULL)
                return;
        a->argv[a->argc++] = arg;
        a->argv[a->argc] = NULL;
}

char *qemu_argv_escape(const char *value)
{
        size_t len = strlen(value), commas = 0;
        char *out, *o;

        for (const char *c = value; *c; c++)
                commas += *c == ',';
        out = malloc(len + commas + 1);
        if (out == NULL)
                return NULL;
        o = out;
        for (const char *c = value; *c; c++) {
                *o++ = *c;
                if (*c == ',')
                        *o++ = ',';
        }
        *o = '\0';
        return out;
}

/* An option value with commas doubled, owned by the builder. */
static const char *esc(struct builder *b, const char *value)
{
        char *e;

        if (b->n_escaped == TT_ARRAY_SIZE(b->escaped) || (e = qemu_argv_escape(value)) == NULL) {
                b->oom = true;
                return "";
        }
        b->escaped[b->n_escaped++] = e;
        return e;
}

/* ---- per-device tables -------------------------------------------------------------------- */

static const char *const cpu_args[] = {
        [DOMAIN_CPU_NONE] = "qemu64",          [DOMAIN_CPU_HOST_PASSTHROUGH] = "host,migratable=on",
        [DOMAIN_CPU_HOST_MODEL] = "host",      [DOMAIN_CPU_MAXIMUM] = "max",
        [DOMAIN_CPU_CUSTOM] = NULL, /* the model name */
};

static const char *const nic_drivers[] = {
        [DOMAIN_NET_VIRTIO] = "virtio-net-pci",
        [DOMAIN_NET_E1000] = "e1000",
        [DOMAIN_NET_RTL8139] = "rtl8139",
};

/* [type][bus]; NULL: nothing on the command line (PS/2 devices are built into the machine). */
static const char *const input_drivers[3][3] = {
        [DOMAIN_INPUT_MOUSE] = { NULL, "usb-mouse", "virtio-mouse-pci" },
        [DOMAIN_INPUT_TABLET] = { NULL, "usb-tablet", "virtio-tablet-pci" },
        [DOMAIN_INPUT_KEYBOARD] = { NULL, "usb-kbd", "virtio-keyboard-pci" },
};

/* Primary and secondary device per video model; vgamem_mb comes from vram for the VGA family. */
static const struct {
        const char *primary;
        const char *secondary;
        bool vram_is_vgamem; /* vram='KiB' becomes vgamem_mb */
        bool heads;          /* takes max_outputs */
} video_drivers[] = {
        [DOMAIN_VIDEO_CIRRUS] = { "cirrus-vga", NULL, false, false },
        [DOMAIN_VIDEO_VGA] = { "VGA", NULL, true, false },
        [DOMAIN_VIDEO_VMVGA] = { "vmware-svga", NULL, true, false },
        [DOMAIN_VIDEO_QXL] = { "qxl-vga", "qxl", false, true },
        [DOMAIN_VIDEO_VIRTIO] = { "virtio-vga", "virtio-gpu-pci", false, true },
        [DOMAIN_VIDEO_NONE] = { NULL, NULL, false, false },
};

/* ---- pieces ------------------------------------------------------------------------------- */

/* Which device each <boot dev> points at (libvirt: the first disk, cdrom or NIC of that kind). */
static void assign_bootindex(const struct domain *def, unsigned *disk_boot, unsigned *net_boot)
{
        for (size_t i = 0; i < def->n_boot; i++) {
                enum domain_boot_dev dev = def->boot[i];

                if (dev == DOMAIN_BOOT_NETWORK) {
                        if (def->n_nets > 0 && net_boot[0] == 0)
                                net_boot[0] = (unsigned)i + 1;
                        continue;
                }
                for (size_t d = 0; d < def->n_disks; d++) {
                        bool want_cdrom = dev == DOMAIN_BOOT_CDROM;

                        if ((def->disks[d].device == DOMAIN_DISK_CDROM) != want_cdrom)
                                continue;
                        if (disk_boot[d] == 0)
                                disk_boot[d] = (unsigned)i + 1;
                        break;
                }
        }
}

static int disk_index(const struct domain_disk *d)
{
        int idx = 0;

        for (const char *c = d->target + 2; *c; c++)
                idx = idx * 26 + (*c - 'a' + 1);
        return idx - 1;
}

/* ",backing=libvirt-DISK-bDEPTH-format": the node of a backing link (depth 1: the first). */
static const char *backing_ref(char *buf, size_t size, size_t disk, size_t depth)
{
        snprintf(buf, size, ",backing=libvirt-%zu-b%zu-format", disk + 1, depth);
        return buf;
}

/*
 * The backing chain that tetherd opened below disk i: each link as a descriptor in a set of
 * its own (numbered after the disks' sets), a read-only file node and a format node naming
 * the link below it, from the bottom up so that each node exists before it is named. Returns
 * the links added.
 */
static size_t add_backing_chain(struct builder *b, const struct domain *def,
                                const struct qemu_argv_runtime *rt, size_t i)
{
        size_t first = 0, n = 0;
        char ref[80];

        while (first < rt->n_backing && rt->backing[first].disk != i)
                first++;
        while (first + n < rt->n_backing && rt->backing[first + n].disk == i)
                n++;
        for (size_t k = n; k > 0; k--) {
                const struct qemu_backing *l = &rt->backing[first + k - 1];
                size_t set = def->n_disks + 1 + first + k - 1;

                add(b, "-add-fd");
                add(b, "fd=%d,set=%zu,opaque=libvirt-%zu-b%zu-storage", l->fd, set, i + 1, k);
                add(b, "-blockdev");
                add(b, "driver=file,filename=/dev/fdset/%zu,node-name=libvirt-%zu-b%zu-storage,"
                       "read-only=on",
                    set, i + 1, k);
                add(b, "-blockdev");
                add(b, "node-name=libvirt-%zu-b%zu-format,read-only=on,driver=%s,"
                       "file=libvirt-%zu-b%zu-storage%s",
                    i + 1, k, l->qcow2 ? "qcow2" : "raw", i + 1, k,
                    l->qcow2 && k < n ? backing_ref(ref, sizeof(ref), i, k + 1) : "");
        }
        return n;
}

static void add_disks(struct builder *b, const struct domain *def, const unsigned *disk_boot,
                      const struct qemu_argv_runtime *rt)
{
        bool q35 = domain_machine_is_q35(def);

        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *d = &def->disks[i];
                bool ro = d->readonly || d->device == DOMAIN_DISK_CDROM;
                int idx = disk_index(d);
                char drive[48] = "", boot[24] = "";

                if (d->source) {
                        bool fdset = i < rt->n_disk_fds && rt->disk_fds[2 * i] >= 0;
                        char backing[80];
                        size_t chain;

                        /* tetherd opened the image: QEMU, unprivileged, takes the read-write
                           descriptor from the set, and the read-only one when it reopens the
                           image read-only (an old top under an external snapshot), never the
                           path. No auto-read-only: with it QEMU switches between the two
                           descriptors whenever a node's writers change, and the image locks
                           of one open file then refuse the other ("Failed to get "write"
                           lock": block-stream, blockdev-backup). */
                        for (size_t k = 0; fdset && k < 2; k++) {
                                if (rt->disk_fds[2 * i + k] < 0)
                                        continue;
                                add(b, "-add-fd");
                                add(b, "fd=%d,set=%zu,opaque=libvirt-%zu-storage-%s",
                                    rt->disk_fds[2 * i + k], i + 1, i + 1, k ? "rw" : "ro");
                        }
                        add(b, "-blockdev");
                        if (fdset)
                                add(b, "driver=file,filename=/dev/fdset/%zu,"
                                       "node-name=libvirt-%zu-storage,read-only=%s,"
                                       "discard=unmap",
                                    i + 1, i + 1, ro || rt->disk_fds[2 * i + 1] < 0 ? "on" : "off");
                        else
                                add(b, "driver=file,filename=%s,node-name=libvirt-%zu-storage,"
                                       "auto-read-only=on,discard=unmap",
                                    esc(b, d->source), i + 1);
                        chain = fdset ? add_backing_chain(b, def, rt, i) : 0;
                        add(b, "-blockdev");
                        add(b, "node-name=libvirt-%zu-format,read-only=%s,driver=%s,file=libvirt-%zu-storage%s",
                            i + 1, ro ? "on" : "off", d->format == DOMAIN_FORMAT_QCOW2 ? "qcow2" : "raw",
                            i + 1, chain ? backing_ref(backing, sizeof(backing), i, 1) : "");
                        snprintf(drive, sizeof(drive), ",drive=libvirt-%zu-format", i + 1);
                }
                if (disk_boot[i])
                        snprintf(boot, sizeof(boot), ",bootindex=%u", disk_boot[i]);
                add(b, "-device");
                switch (d->bus) {
                case DOMAIN_BUS_VIRTIO:
                        add(b, "virtio-blk-pci%s,id=virtio-disk%d%s", drive, idx, boot);
                        break;
                case DOMAIN_BUS_SATA:
                        /* q35's built-in AHCI is "ide"; on pc we add "sata0" (see add_controllers). */
                        add(b, "%s,bus=%s.%d%s,id=sata0-0-%d%s",
                            d->device == DOMAIN_DISK_CDROM ? "ide-cd" : "ide-hd", q35 ? "ide" : "sata0",
                            idx, drive, idx, boot);
                        break;
                case DOMAIN_BUS_IDE:
                        add(b, "%s,bus=ide.%d,unit=%d%s,id=ide0-%d-%d%s",
                            d->device == DOMAIN_DISK_CDROM ? "ide-cd" : "ide-hd", idx / 2, idx % 2,
                            drive, idx / 2, idx % 2, boot);
                        break;
                }
        }
}

static int add_nets(struct builder *b, const struct domain *def, const struct qemu_argv_runtime *rt,
                    const unsigned *net_boot, struct tt_error *err)
{
        for (size_t i = 0; i < def->n_nets; i++) {
                const struct domain_net *n = &def->nets[i];
                char boot[24] = "";

                add(b, "-netdev");
                if (n->type == DOMAIN_NET_BRIDGE) {
                        /* The daemon made the tap and enslaved it: QEMU needs no privilege. */
                        if (i >= rt->n_tap_fds || rt->tap_fds[i] < 0)
                                return tt_error_set(err, EINVAL,
                                                    "no tap device for interface %zu (bridge '%s')",
                                                    i, n->bridge);
                        add(b, "tap,fd=%d,id=hostnet%zu", rt->tap_fds[i], i);
                } else {
                        add(b, "user,id=hostnet%zu", i);
                }
                if (net_boot[i])
                        snprintf(boot, sizeof(boot), ",bootindex=%u", net_boot[i]);
                add(b, "-device");
                add(b, "%s,netdev=hostnet%zu,id=net%zu,mac=%s%s", nic_drivers[n->model], i, i, n->mac, boot);
        }
        return 0;
}

/*
 * The serial console (port 0) is a socket that tetherd connects to for QEMU's whole life
 * (console.c): it keeps what the guest writes while nobody is attached, and relays it to
 * `tether console`. Other serial ports stay pseudo-terminals, as libvirt's type='pty'.
 */
static int add_serial(struct builder *b, int port, const struct qemu_argv_runtime *rt,
                      struct tt_error *err)
{
        add(b, "-chardev");
        if (port == 0) {
                if (rt->console_socket == NULL)
                        return tt_error_set(err, EINVAL, "no socket path for the serial console");
                add(b, "socket,id=charserial0,path=%s,server=on,wait=off",
                    esc(b, rt->console_socket));
        } else {
                add(b, "pty,id=charserial%d", port);
        }
        add(b, "-device");
        add(b, "isa-serial,chardev=charserial%d,id=serial%d,index=%d", port, port, port);
        return 0;
}

static int add_channels(struct builder *b, const struct domain *def,
                        const struct qemu_argv_runtime *rt, struct tt_error *err)
{
        for (size_t i = 0; i < def->n_channels; i++) {
                const struct domain_channel *c = &def->channels[i];
                const char *path = c->path;

                if (path == NULL && i < rt->n_channel_sockets)
                        path = rt->channel_sockets[i];
                if (path == NULL)
                        return tt_error_set(err, EINVAL, "no socket path for channel '%s'", c->name);
                add(b, "-chardev");
                add(b, "socket,id=charchannel%zu,path=%s,server=on,wait=off", i, esc(b, path));
                add(b, "-device");
                add(b, "virtserialport,bus=virtio-serial0.0,nr=%zu,chardev=charchannel%zu,id=channel%zu,name=%s",
                    i + 1, i, i, esc(b, c->name));
        }
        return 0;
}

/* An address for -vnc/-spice: IPv6 literals in brackets for -vnc's host:display form. */
static int add_graphics(struct builder *b, const struct domain *def,
                        const struct qemu_argv_runtime *rt, struct tt_error *err)
{
        if (def->n_graphics == 0) {
                add(b, "-display");
                add(b, "none");
                return 0;
        }
        /* Without an audiodev QEMU 7.2 makes a default audio backend for VNC; "none" keeps it quiet. */
        add(b, "-audiodev");
        add(b, "none,id=audio1");
        for (size_t i = 0; i < def->n_graphics; i++) {
                const struct domain_graphics *g = &def->graphics[i];
                const char *listen = g->listen ? g->listen : "127.0.0.1";
                bool v6 = strchr(listen, ':') != NULL;
                int port = g->autoport ? (g->type == DOMAIN_GRAPHICS_VNC ? rt->vnc_port : rt->spice_port)
                                       : g->port;

                if (port < 5900 || port > 65535)
                        return tt_error_set(err, EINVAL, "no %s port chosen for autoport",
                                            g->type == DOMAIN_GRAPHICS_VNC ? "VNC" : "SPICE");
                if (g->type == DOMAIN_GRAPHICS_VNC) {
                        /* The password itself goes over QMP (set_password), never in argv. */
                        add(b, "-vnc");
                        add(b, "%s%s%s:%d%s,audiodev=audio1", v6 ? "[" : "", listen, v6 ? "]" : "",
                            port - 5900, g->passwd ? ",password=on" : "");
                } else {
                        add(b, "-spice");
                        add(b, "port=%d,addr=%s%s,seamless-migration=on", port, listen,
                            g->passwd ? "" : ",disable-ticketing=on");
                }
        }
        return 0;
}

static void add_videos(struct builder *b, const struct domain *def)
{
        for (size_t i = 0; i < def->n_videos; i++) {
                const struct domain_video *v = &def->videos[i];
                const char *driver = i == 0 ? video_drivers[v->model].primary : video_drivers[v->model].secondary;
                char extra[160] = "";
                size_t off = 0;

                if (driver == NULL)
                        continue;
                if (v->model == DOMAIN_VIDEO_QXL) {
                        if (v->ram)
                                off += (size_t)snprintf(extra + off, sizeof(extra) - off, ",ram_size=%" PRIu64,
                                                        (uint64_t)v->ram * 1024);
                        if (v->vram)
                                off += (size_t)snprintf(extra + off, sizeof(extra) - off, ",vram_size=%" PRIu64,
                                                        (uint64_t)v->vram * 1024);
                        if (v->vgamem)
                                off += (size_t)snprintf(extra + off, sizeof(extra) - off, ",vgamem_mb=%u",
                                                        v->vgamem / 1024);
                } else if (video_drivers[v->model].vram_is_vgamem && v->vram) {
                        off += (size_t)snprintf(extra + off, sizeof(extra) - off, ",vgamem_mb=%u", v->vram / 1024);
                }
                if (video_drivers[v->model].heads && v->heads)
                        snprintf(extra + off, sizeof(extra) - off, ",max_outputs=%u", v->heads);
                add(b, "-device");
                add(b, "%s,id=video%zu%s", driver, i, extra);
        }
}

/* ---- the whole line ----------------------------------------------------------------------- */

static int build(struct builder *b, const struct domain *def, const struct qemu_argv_runtime *rt,
                 struct tt_error *err)
{
        _cleanup_free_ unsigned *disk_boot = calloc(def->n_disks + 1, sizeof(unsigned));
        _cleanup_free_ unsigned *net_boot = calloc(def->n_nets + 1, sizeof(unsigned));
        bool sata = false, usb = false;

        if (disk_boot == NULL || net_boot == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (rt->qmp_socket == NULL)
                return tt_error_set(err, EINVAL, "no QMP socket path");
        assign_bootindex(def, disk_boot, net_boot);

        add(b, "%s", def->emulator);
        add(b, "-name");
        add(b, "guest=%s,debug-threads=on", esc(b, def->name));
        add(b, "-S");
        add(b, "-msg");
        add(b, "timestamp=on");
        add(b, "-machine");
        add(b, "%s,usb=off,vmport=off,dump-guest-core=off,acpi=%s", def->machine, def->acpi ? "on" : "off");
        add(b, "-accel");
        add(b, "%s", def->virt == DOMAIN_VIRT_KVM ? "kvm" : "tcg");
        add(b, "-cpu");
        add(b, "%s", def->cpu_mode == DOMAIN_CPU_CUSTOM ? def->cpu_model : cpu_args[def->cpu_mode]);
        add(b, "-m");
        add(b, "size=%" PRIu64 "k", def->memory_kib);
        add(b, "-overcommit");
        add(b, "mem-lock=off");
        add(b, "-smp");
        add(b, "%u,sockets=%u,cores=1,threads=1", def->vcpus, def->vcpus);
        add(b, "-uuid");
        add(b, "%s", def->uuid);
        add(b, "-no-user-config");
        add(b, "-nodefaults");
        add(b, "-chardev");
        if (rt->qmp_fd > 0)
                add(b, "socket,id=charmonitor,fd=%d,server=on,wait=off", rt->qmp_fd);
        else
                add(b, "socket,id=charmonitor,path=%s,server=on,wait=off", esc(b, rt->qmp_socket));
        add(b, "-mon");
        add(b, "chardev=charmonitor,id=monitor,mode=control");
        if (def->clock != DOMAIN_CLOCK_NONE) {
                add(b, "-rtc");
                add(b, "base=%s", def->clock == DOMAIN_CLOCK_LOCALTIME ? "localtime" : "utc");
        }
        add(b, "-no-shutdown");
        /* on_reboot destroy: a guest reboot stops QEMU (SHUTDOWN, reason guest-reset). */
        if (def->on_reboot == DOMAIN_ACTION_DESTROY)
                add(b, "-no-reboot");
        if (def->n_boot > 0) {
                add(b, "-boot");
                add(b, "strict=on");
        }
        if (def->kernel) {
                /* -kernel, -initrd and -append take the whole value: no option parsing, no escaping. */
                add(b, "-kernel");
                add(b, "%s", def->kernel);
        }
        if (def->initrd) {
                add(b, "-initrd");
                add(b, "%s", def->initrd);
        }
        if (def->cmdline) {
                add(b, "-append");
                add(b, "%s", def->cmdline);
        }

        /* Controllers the devices below plug into. */
        for (size_t i = 0; i < def->n_disks; i++)
                sata = sata || def->disks[i].bus == DOMAIN_BUS_SATA;
        for (size_t i = 0; i < def->n_inputs; i++)
                usb = usb || def->inputs[i].bus == DOMAIN_INPUT_USB;
        if (sata && !domain_machine_is_q35(def)) {
                add(b, "-device");
                add(b, "ahci,id=sata0");
        }
        if (usb) {
                add(b, "-device");
                add(b, "qemu-xhci,id=usb");
        }
        if (def->n_channels > 0) {
                add(b, "-device");
                add(b, "virtio-serial-pci,id=virtio-serial0");
        }

        add_disks(b, def, disk_boot, rt);
        if (add_nets(b, def, rt, net_boot, err) < 0)
                return -1;
        for (size_t i = 0; i < def->n_serials; i++)
                if (add_serial(b, def->serials[i].port, rt, err) < 0)
                        return -1;
        /* libvirt gives a lone serial console its serial port 0 */
        if (def->console && def->n_serials == 0 && add_serial(b, 0, rt, err) < 0)
                return -1;
        if (add_channels(b, def, rt, err) < 0)
                return -1;
        for (size_t i = 0; i < def->n_inputs; i++) {
                const char *driver = input_drivers[def->inputs[i].type][def->inputs[i].bus];

                if (driver == NULL)
                        continue;
                add(b, "-device");
                add(b, "%s,id=input%zu%s", driver, i, def->inputs[i].bus == DOMAIN_INPUT_USB ? ",bus=usb.0" : "");
        }
        if (add_graphics(b, def, rt, err) < 0)
                return -1;
        add_videos(b, def);
        if (def->balloon == DOMAIN_BALLOON_VIRTIO) {
                add(b, "-device");
                add(b, "virtio-balloon-pci,id=balloon0");
        }
        if (def->panic != DOMAIN_PANIC_NONE) {
                add(b, "-device");
                add(b, "pvpanic"); /* the ISA device, at ioport 0x505 */
        }
        if (rt->pidfile) {
                add(b, "-pidfile");
                add(b, "%s", rt->pidfile);
        }
        if (rt->runas) {
                add(b, "-runas");
                add(b, "%s", rt->runas);
        }
        if (rt->sandbox) {
                add(b, "-sandbox");
                add(b, "%s", rt->sandbox);
        }
        if (rt->incoming_defer) {
                add(b, "-incoming");
                add(b, "defer");
        }
        return 0;
}

int qemu_argv_build(const struct domain *def, const struct qemu_argv_runtime *rt,
                    struct qemu_argv *out, struct tt_error *err)
{
        struct builder b = { .out = out };
        int rc;

        memset(out, 0, sizeof(*out));
        rc = build(&b, def, rt, err);
        for (size_t i = 0; i < b.n_escaped; i++)
                free(b.escaped[i]);
        if (rc == 0 && b.oom)
                rc = tt_error_set(err, ENOMEM, "out of memory building the QEMU command line");
        if (rc < 0)
                qemu_argv_free(out);
        return rc;
}

char *qemu_argv_join(const struct qemu_argv *args)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (f == NULL)
                return NULL;
        for (size_t i = 0; i < args->argc; i++)
                fprintf(f, "%s\n", args->argv[i]);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

void qemu_argv_free(struct qemu_argv *args)
{
        for (size_t i = 0; i < args->argc; i++)
                free(args->argv[i]);
        free(args->argv);
        memset(args, 0, sizeof(*args));
}
