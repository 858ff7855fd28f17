/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The domain definition: the subset of libvirt's domain XML that Tether supports, parsed into
 * a plain C model and written back. Anything outside the subset is an error naming the element
 * or attribute, never silently dropped (DESIGN.md, "Domain XML").
 */
#ifndef TT_DOMAIN_H
#define TT_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/tt_error.h"

/* Bounds on repeated elements; a definition beyond them is refused, not truncated. */
#define DOMAIN_MAX_BOOT 4
#define DOMAIN_MAX_DEVICES 32

/* <domain type=...> */
enum domain_virt {
        DOMAIN_VIRT_QEMU, /* type='qemu': TCG */
        DOMAIN_VIRT_KVM,  /* type='kvm' */
};

/* <on_poweroff>, <on_reboot>, <on_crash> */
enum domain_action {
        DOMAIN_ACTION_DESTROY,
        DOMAIN_ACTION_RESTART,
        DOMAIN_ACTION_PRESERVE,
        DOMAIN_ACTION_RENAME_RESTART,
        DOMAIN_ACTION_COREDUMP_DESTROY, /* on_crash only */
        DOMAIN_ACTION_COREDUMP_RESTART, /* on_crash only */
};

/* <cpu mode=...>; NONE means no <cpu> element */
enum domain_cpu_mode {
        DOMAIN_CPU_NONE,
        DOMAIN_CPU_HOST_PASSTHROUGH,
        DOMAIN_CPU_HOST_MODEL,
        DOMAIN_CPU_MAXIMUM,
        DOMAIN_CPU_CUSTOM,
};

/* <clock offset=...>; NONE means no <clock> element */
enum domain_clock {
        DOMAIN_CLOCK_NONE,
        DOMAIN_CLOCK_UTC,
        DOMAIN_CLOCK_LOCALTIME,
};

/* <vcpu placement=...>; NONE means the attribute was absent */
enum domain_placement {
        DOMAIN_PLACEMENT_NONE,
        DOMAIN_PLACEMENT_STATIC,
        DOMAIN_PLACEMENT_AUTO,
};

/* <boot dev=...> */
enum domain_boot_dev {
        DOMAIN_BOOT_HD,
        DOMAIN_BOOT_CDROM,
        DOMAIN_BOOT_NETWORK,
};

enum domain_disk_device { DOMAIN_DISK_DISK, DOMAIN_DISK_CDROM };
enum domain_disk_format { DOMAIN_FORMAT_RAW, DOMAIN_FORMAT_QCOW2 };
enum domain_disk_bus { DOMAIN_BUS_VIRTIO, DOMAIN_BUS_SATA, DOMAIN_BUS_IDE };

struct domain_disk {
        enum domain_disk_device device; /* disk or cdrom */
        enum domain_disk_format format; /* <driver type=...>, raw when absent */
        bool has_driver;                /* <driver> was given (kept for a faithful dumpxml) */
        char *source;                   /* <source file=...>; NULL: empty cdrom drive */
        char *target;                   /* <target dev=...>: vda, sda, hdc, ... */
        enum domain_disk_bus bus;       /* <target bus=...> */
        bool readonly;                  /* <readonly/>; cdroms are read-only anyway */
};

enum domain_net_type { DOMAIN_NET_USER, DOMAIN_NET_BRIDGE };
enum domain_net_model { DOMAIN_NET_VIRTIO, DOMAIN_NET_E1000, DOMAIN_NET_RTL8139 };

struct domain_net {
        enum domain_net_type type;   /* user or bridge */
        char *bridge;                /* <source bridge=...> for type='bridge' */
        char mac[18];                /* 52:54:00:xx:xx:xx, generated when absent */
        enum domain_net_model model; /* <model type=...>; rtl8139 when absent, as libvirt */
        char *ifname;                /* <target dev=...>: the host tap of a bridge interface;
                                        vnetN (or none): tetherd picks a free vnetN at each
                                        start, as libvirt */
};

struct domain_serial {
        int port; /* <target port=...>, the isa-serial index */
};

struct domain_channel {
        char *path; /* <source mode='bind' path=...>; NULL: the daemon picks one under its root */
        char *name; /* <target name=...>; only org.qemu.guest_agent.0 */
};

enum domain_video_model {
        DOMAIN_VIDEO_CIRRUS,
        DOMAIN_VIDEO_VGA,
        DOMAIN_VIDEO_VMVGA,
        DOMAIN_VIDEO_QXL,
        DOMAIN_VIDEO_VIRTIO,
        DOMAIN_VIDEO_NONE,
};

struct domain_video {
        enum domain_video_model model; /* <model type=...> */
        unsigned vram;                 /* KiB, 0 = not given */
        unsigned heads;                /* 0 = not given */
        unsigned ram;                  /* KiB, qxl only, 0 = not given */
        unsigned vgamem;               /* KiB, qxl only, 0 = not given */
};

enum domain_graphics_type { DOMAIN_GRAPHICS_VNC, DOMAIN_GRAPHICS_SPICE };

struct domain_graphics {
        enum domain_graphics_type type; /* vnc or spice */
        int port;                       /* TCP port, -1 = choose (autoport) */
        bool autoport;                  /* autoport='yes' (or port -1 / absent) */
        char *listen;                   /* address to listen on; NULL = 127.0.0.1 */
        char *passwd;                   /* set over QMP after start, never on the command line */
};

enum domain_input_type { DOMAIN_INPUT_MOUSE, DOMAIN_INPUT_TABLET, DOMAIN_INPUT_KEYBOARD };
enum domain_input_bus { DOMAIN_INPUT_PS2, DOMAIN_INPUT_USB, DOMAIN_INPUT_VIRTIO };

struct domain_input {
        enum domain_input_type type; /* mouse, tablet or keyboard */
        enum domain_input_bus bus;   /* ps2, usb or virtio */
};

enum domain_balloon { DOMAIN_BALLOON_VIRTIO, DOMAIN_BALLOON_NONE };
/* <panic>: only model='isa' (-device pvpanic); libvirt 9.0's schema has no 'pvpanic' model yet. */
enum domain_panic { DOMAIN_PANIC_NONE, DOMAIN_PANIC_ISA };

/* A whole definition. Strings are malloc'd and owned; domain_free() releases everything. */
struct domain {
        enum domain_virt virt;          /* <domain type=...> */
        char *name;                     /* <name>, required */
        char uuid[37];                  /* <uuid>, canonical lower case; generated (v4) when absent */
        char *title;                    /* <title>, one line, or NULL */
        char *description;              /* <description>, or NULL */
        uint64_t memory_kib;            /* <memory> in KiB */
        uint64_t current_memory_kib;    /* <currentMemory> in KiB; = memory when absent */
        unsigned vcpus;                 /* <vcpu> */
        enum domain_placement placement; /* <vcpu placement=...> */
        char *arch;                     /* <os><type arch=...>: x86_64 */
        char *machine;                  /* <os><type machine=...>: pc, q35, pc-q35-7.2, ... */
        char *kernel;                   /* <os><kernel>, or NULL */
        char *initrd;                   /* <os><initrd>, or NULL */
        char *cmdline;                  /* <os><cmdline>, or NULL */
        enum domain_boot_dev boot[DOMAIN_MAX_BOOT]; /* <boot dev=...> in order */
        size_t n_boot;                  /* entries used in boot[] */
        bool acpi;                      /* <features><acpi/> */
        bool apic;                      /* <features><apic/> */
        enum domain_cpu_mode cpu_mode;  /* <cpu mode=...> */
        char *cpu_model;                /* <cpu><model> for mode='custom' */
        enum domain_clock clock;        /* <clock offset=...> */
        enum domain_action on_poweroff; /* <on_poweroff>, destroy by default */
        enum domain_action on_reboot;   /* <on_reboot>, restart by default */
        enum domain_action on_crash;    /* <on_crash>, destroy by default */
        char *emulator;                 /* <devices><emulator>; default /usr/bin/qemu-system-x86_64 */
        struct domain_disk *disks;      /* <disk> in document order */
        size_t n_disks;
        struct domain_net *nets;        /* <interface> in document order */
        size_t n_nets;
        struct domain_serial *serials;  /* <serial type='pty'> */
        size_t n_serials;
        bool console;                   /* <console type='pty'><target type='serial'/> */
        struct domain_channel *channels; /* <channel type='unix'> (guest agent) */
        size_t n_channels;
        struct domain_input *inputs;    /* <input> */
        size_t n_inputs;
        struct domain_graphics *graphics; /* <graphics> */
        size_t n_graphics;
        struct domain_video *videos;    /* <video>; the first is the primary */
        size_t n_videos;
        enum domain_balloon balloon;    /* <memballoon model=...>; virtio when absent, as libvirt */
        unsigned balloon_period;        /* <memballoon><stats period=.../>: the guest's balloon
                                           statistics every N s (QOM guest-stats); 0 none */
        enum domain_panic panic;        /* <panic model=...> */
};

#define DOMAIN_DEFAULT_EMULATOR "/usr/bin/qemu-system-x86_64"
#define DOMAIN_AGENT_CHANNEL "org.qemu.guest_agent.0"

/*
 * Parse and validate a definition. Defaults that libvirt also fills in (uuid, mac, emulator,
 * lifecycle actions, boot hd, memballoon, currentMemory, NIC model) are made explicit, so that
 * domain_format() shows the definition that will run. Errors name the element path and line.
 */
struct domain *domain_parse(const char *xml, size_t len, struct tt_error *err);
/* Same, from a file (at most 1 MiB). */
struct domain *domain_parse_file(const char *path, struct tt_error *err);
/* The definition as libvirt-style XML (2-space indent, single quotes, trailing newline). */
char *domain_format(const struct domain *def);
/* domain_format() flags: without DOMAIN_FORMAT_SECURE graphics passwords are left out, as
 * virsh dumpxml does without --security-info. domain_format() is the secure (complete) form. */
#define DOMAIN_FORMAT_SECURE 1u
char *domain_format_flags(const struct domain *def, unsigned flags);
void domain_free(struct domain *def);

/* True when the machine type is a q35 one (built-in AHCI, no IDE). */
bool domain_machine_is_q35(const struct domain *def);

/* The names used in the XML, for messages elsewhere. */
const char *domain_disk_bus_name(enum domain_disk_bus bus);
const char *domain_video_model_name(enum domain_video_model model);

static inline void domain_freep(struct domain **def)
{
        domain_free(*def);
}
#define _cleanup_domain_ __attribute__((cleanup(domain_freep)))

#endif
