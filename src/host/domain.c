/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Domain XML subset: parse (libxml2 + XPath), validate, and format back. */
#include "host/domain.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/random.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "common/cleanup.h"
#include "common/fileutil.h"

#define DOMAIN_MAX_XML (1024 * 1024)

/* ---- the subset, as data ------------------------------------------------------------------ */

/* One element the subset allows: its path from the root, whether it may repeat, its attributes. */
struct allowed_element {
        const char *path;
        bool repeats;
        const char *const attrs[6];
};

static const struct allowed_element allowed_elements[] = {
        { "/domain", false, { "type" } },
        { "/domain/name", false, { NULL } },
        { "/domain/uuid", false, { NULL } },
        { "/domain/title", false, { NULL } },
        { "/domain/description", false, { NULL } },
        { "/domain/memory", false, { "unit" } },
        { "/domain/currentMemory", false, { "unit" } },
        { "/domain/vcpu", false, { "placement" } },
        { "/domain/os", false, { NULL } },
        { "/domain/os/type", false, { "arch", "machine" } },
        { "/domain/os/kernel", false, { NULL } },
        { "/domain/os/initrd", false, { NULL } },
        { "/domain/os/cmdline", false, { NULL } },
        { "/domain/os/boot", true, { "dev" } },
        { "/domain/features", false, { NULL } },
        { "/domain/features/acpi", false, { NULL } },
        { "/domain/features/apic", false, { NULL } },
        { "/domain/cpu", false, { "mode" } },
        { "/domain/cpu/model", false, { NULL } },
        { "/domain/clock", false, { "offset" } },
        { "/domain/on_poweroff", false, { NULL } },
        { "/domain/on_reboot", false, { NULL } },
        { "/domain/on_crash", false, { NULL } },
        { "/domain/devices", false, { NULL } },
        { "/domain/devices/emulator", false, { NULL } },
        { "/domain/devices/disk", true, { "type", "device" } },
        { "/domain/devices/disk/driver", false, { "name", "type" } },
        { "/domain/devices/disk/source", false, { "file" } },
        { "/domain/devices/disk/target", false, { "dev", "bus" } },
        { "/domain/devices/disk/readonly", false, { NULL } },
        { "/domain/devices/interface", true, { "type" } },
        { "/domain/devices/interface/source", false, { "bridge" } },
        { "/domain/devices/interface/mac", false, { "address" } },
        { "/domain/devices/interface/model", false, { "type" } },
        { "/domain/devices/interface/target", false, { "dev" } },
        { "/domain/devices/serial", true, { "type" } },
        { "/domain/devices/serial/target", false, { "port" } },
        { "/domain/devices/console", false, { "type" } },
        { "/domain/devices/console/target", false, { "type", "port" } },
        { "/domain/devices/channel", true, { "type" } },
        { "/domain/devices/channel/source", false, { "mode", "path" } },
        { "/domain/devices/channel/target", false, { "type", "name" } },
        { "/domain/devices/input", true, { "type", "bus" } },
        { "/domain/devices/graphics", true, { "type", "port", "autoport", "listen", "passwd" } },
        { "/domain/devices/graphics/listen", false, { "type", "address" } },
        { "/domain/devices/video", true, { NULL } },
        { "/domain/devices/video/model", false, { "type", "vram", "heads", "ram", "vgamem" } },
        { "/domain/devices/memballoon", false, { "model" } },
        { "/domain/devices/memballoon/stats", false, { "period" } },
        { "/domain/devices/panic", false, { "model" } },
};

/* Enumerations in XML words, indexed by the C enums; NULL-terminated for lookups. */
static const char *const virt_names[] = { "qemu", "kvm", NULL };
static const char *const action_names[] = { "destroy", "restart", "preserve", "rename-restart",
                                            "coredump-destroy", "coredump-restart", NULL };
static const char *const cpu_mode_names[] = { "", "host-passthrough", "host-model", "maximum",
                                              "custom", NULL };
static const char *const clock_names[] = { "", "utc", "localtime", NULL };
static const char *const placement_names[] = { "", "static", "auto", NULL };
static const char *const boot_names[] = { "hd", "cdrom", "network", NULL };
static const char *const disk_device_names[] = { "disk", "cdrom", NULL };
static const char *const disk_format_names[] = { "raw", "qcow2", NULL };
static const char *const disk_bus_names[] = { "virtio", "sata", "ide", NULL };
static const char *const net_type_names[] = { "user", "bridge", NULL };
static const char *const net_model_names[] = { "virtio", "e1000", "rtl8139", NULL };
static const char *const video_names[] = { "cirrus", "vga", "vmvga", "qxl", "virtio", "none", NULL };
static const char *const graphics_names[] = { "vnc", "spice", NULL };
static const char *const input_type_names[] = { "mouse", "tablet", "keyboard", NULL };
static const char *const input_bus_names[] = { "ps2", "usb", "virtio", NULL };
static const char *const balloon_names[] = { "virtio", "none", NULL };
static const char *const panic_names[] = { "", "isa", NULL };
static const char *const yes_no_names[] = { "no", "yes", NULL };

/* The one disk target prefix each bus takes (libvirt derives the bus from it the same way). */
static const char *const disk_bus_prefix[] = { "vd", "sd", "hd" };
/* Highest disk index per bus: virtio by PCI slots; 6 AHCI ports; 2 IDE buses x 2 units. */
static const unsigned disk_bus_max[] = { 26, 6, 4 };

/* Memory units (libvirt virScaleInteger): k/M/G/T[iB] are powers of 1024, KB/MB/... of 1000. */
static const struct {
        char letter;
        unsigned power;
} unit_powers[] = { { 'b', 0 }, { 'k', 1 }, { 'm', 2 }, { 'g', 3 }, { 't', 4 }, { 'p', 5 }, { 'e', 6 } };

const char *domain_disk_bus_name(enum domain_disk_bus bus)
{
        return disk_bus_names[bus];
}

const char *domain_video_model_name(enum domain_video_model model)
{
        return video_names[model];
}

/* ---- parser plumbing ---------------------------------------------------------------------- */

struct parser {
        xmlDocPtr doc;
        xmlXPathContextPtr xpath;
        struct tt_error *err;
        char path[512]; /* scratch for node_path() */
};

static const char *node_path(struct parser *p, xmlNodePtr node)
{
        const char *names[32];
        size_t n = 0, off = 0;

        for (; node && node->type == XML_ELEMENT_NODE && n < TT_ARRAY_SIZE(names); node = node->parent)
                names[n++] = (const char *)node->name;
        p->path[0] = '\0';
        while (n > 0 && off < sizeof(p->path)) {
                int w = snprintf(p->path + off, sizeof(p->path) - off, "/%s", names[--n]);
                if (w < 0)
                        break;
                off += (size_t)w;
        }
        return p->path;
}

/* Set an error ending in "<prep> /the/path (line N)". */
__attribute__((format(printf, 4, 5)))
static int perr(struct parser *p, xmlNodePtr node, const char *prep, const char *fmt, ...)
{
        _cleanup_free_ char *head = NULL;
        va_list ap;
        int rc;

        va_start(ap, fmt);
        rc = vasprintf(&head, fmt, ap);
        va_end(ap);
        if (rc < 0)
                return tt_error_set(p->err, ENOMEM, "out of memory");
        return tt_error_set(p->err, EINVAL, "%s %s %s (line %ld)", head, prep, node_path(p, node),
                            xmlGetLineNo(node));
}

static char *dup_xml(xmlChar *s)
{
        char *out;

        if (s == NULL)
                return NULL;
        out = strdup((const char *)s);
        xmlFree(s);
        return out;
}

static char *prop(xmlNodePtr node, const char *name)
{
        return node ? dup_xml(xmlGetProp(node, (const xmlChar *)name)) : NULL;
}

static char *text(xmlNodePtr node)
{
        return node ? dup_xml(xmlNodeGetContent(node)) : NULL;
}

/* Text with surrounding white space removed, for numbers and keywords. */
static char *trimmed_text(xmlNodePtr node)
{
        char *s = text(node), *start;
        size_t len;

        if (s == NULL)
                return NULL;
        for (start = s; isspace((unsigned char)*start); start++)
                ;
        len = strlen(start);
        while (len > 0 && isspace((unsigned char)start[len - 1]))
                len--;
        memmove(s, start, len);
        s[len] = '\0';
        return s;
}

/* First node matching an XPath expression (relative to ctx, or absolute), or NULL. */
static xmlNodePtr xp_node(struct parser *p, xmlNodePtr ctx, const char *expr)
{
        xmlXPathObjectPtr obj;
        xmlNodePtr node = NULL;

        p->xpath->node = ctx;
        obj = xmlXPathEvalExpression((const xmlChar *)expr, p->xpath);
        if (obj && obj->type == XPATH_NODESET && obj->nodesetval && obj->nodesetval->nodeNr > 0)
                node = obj->nodesetval->nodeTab[0];
        xmlXPathFreeObject(obj);
        return node;
}

static xmlXPathObjectPtr xp_nodes(struct parser *p, const char *expr, int *count)
{
        xmlXPathObjectPtr obj;

        p->xpath->node = xmlDocGetRootElement(p->doc);
        obj = xmlXPathEvalExpression((const xmlChar *)expr, p->xpath);
        *count = (obj && obj->type == XPATH_NODESET && obj->nodesetval) ? obj->nodesetval->nodeNr : 0;
        return obj;
}

static int lookup(const char *const *names, const char *value)
{
        for (int i = 0; names[i]; i++)
                if (names[i][0] != '\0' && strcmp(names[i], value) == 0)
                        return i;
        return -1;
}

/*
 * Attribute attr of node as an index into names. When absent: *out = dflt, or an error when
 * dflt < 0 (required).
 */
static int attr_enum(struct parser *p, xmlNodePtr node, const char *attr, const char *const *names,
                     int dflt, int *out)
{
        _cleanup_free_ char *v = prop(node, attr);
        int i;

        if (v == NULL) {
                if (dflt < 0)
                        return perr(p, node, "on", "missing attribute '%s'", attr);
                *out = dflt;
                return 0;
        }
        i = lookup(names, v);
        if (i < 0)
                return perr(p, node, "on", "unsupported value '%s' for attribute '%s'", v, attr);
        *out = i;
        return 0;
}

/* Element text as an index into names (on_poweroff and friends). */
static int text_enum(struct parser *p, xmlNodePtr node, const char *const *names, int *out)
{
        _cleanup_free_ char *v = trimmed_text(node);
        int i = v ? lookup(names, v) : -1;

        if (i < 0)
                return perr(p, node, "in", "unsupported value '%s'", v ? v : "");
        *out = i;
        return 0;
}

/* Unsigned attribute; 0 when absent. */
static int attr_uint(struct parser *p, xmlNodePtr node, const char *attr, unsigned max,
                     unsigned *out)
{
        _cleanup_free_ char *v = prop(node, attr);
        uint64_t n;

        *out = 0;
        if (v == NULL)
                return 0;
        if (tt_parse_uint64(v, 10, &n) < 0 || n > max)
                return perr(p, node, "on", "invalid value '%s' for attribute '%s'", v, attr);
        *out = (unsigned)n;
        return 0;
}

/* An absolute path from an attribute or element text, without control characters. */
static int check_path(struct parser *p, xmlNodePtr node, const char *what, const char *path)
{
        if (path[0] != '/')
                return perr(p, node, "in", "%s '%s' must be an absolute path", what, path);
        for (const char *c = path; *c; c++)
                if (iscntrl((unsigned char)*c))
                        return perr(p, node, "in", "%s contains a control character", what);
        return 0;
}

/* Grow a device array by one zeroed element, bounded by DOMAIN_MAX_DEVICES. */
static void *grow(struct parser *p, xmlNodePtr node, void **arr, size_t *n, size_t size)
{
        char *bigger;

        if (*n >= DOMAIN_MAX_DEVICES) {
                perr(p, node, "at", "more than %d devices of this kind", DOMAIN_MAX_DEVICES);
                return NULL;
        }
        bigger = reallocarray(*arr, *n + 1, size);
        if (bigger == NULL) {
                tt_error_set(p->err, ENOMEM, "out of memory");
                return NULL;
        }
        *arr = bigger;
        memset(bigger + *n * size, 0, size);
        return bigger + (*n)++ * size;
}

/* ---- the whole-document check against allowed_elements ------------------------------------ */

static const struct allowed_element *find_allowed(const char *path)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(allowed_elements); i++)
                if (strcmp(allowed_elements[i].path, path) == 0)
                        return &allowed_elements[i];
        return NULL;
}

static int check_subset(struct parser *p, xmlNodePtr node)
{
        const struct allowed_element *allowed;
        char path[sizeof(p->path)];

        snprintf(path, sizeof(path), "%s", node_path(p, node));
        allowed = node->ns ? NULL : find_allowed(path);
        if (allowed == NULL) {
                if (node->ns && node->ns->prefix)
                        return perr(p, node, "at", "unsupported element '%s:%s'",
                                    (const char *)node->ns->prefix, (const char *)node->name);
                return perr(p, node, "at", "unsupported element '%s'", (const char *)node->name);
        }
        for (xmlAttrPtr a = node->properties; a; a = a->next) {
                bool ok = false;

                for (size_t i = 0; !a->ns && i < TT_ARRAY_SIZE(allowed->attrs) && allowed->attrs[i]; i++)
                        ok = ok || strcmp(allowed->attrs[i], (const char *)a->name) == 0;
                if (!ok)
                        return perr(p, node, "on", "unsupported attribute '%s'", (const char *)a->name);
        }
        for (xmlNodePtr c = node->children; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                        continue;
                if (check_subset(p, c) < 0)
                        return -1;
                /* A second one of an element that may appear once (second <name>, <os>, ...). */
                if (!find_allowed(node_path(p, c))->repeats)
                        for (xmlNodePtr prev = node->children; prev != c; prev = prev->next)
                                if (prev->type == XML_ELEMENT_NODE && prev->ns == NULL &&
                                    xmlStrEqual(prev->name, c->name))
                                        return perr(p, c, "at", "duplicate element '%s'",
                                                    (const char *)c->name);
        }
        return 0;
}

/* ---- values ------------------------------------------------------------------------------- */

static int parse_uuid(struct parser *p, xmlNodePtr node, char out[37])
{
        _cleanup_free_ char *v = trimmed_text(node);
        unsigned char bytes[16];
        size_t n = 0;
        const char *c = v;

        /* libvirt's virUUIDParse: 32 hex digits, a '-' allowed between any two bytes. */
        while (c && *c && n < 32) {
                if (*c == '-' && n % 2 == 0 && n > 0) {
                        c++;
                        continue;
                }
                if (!isxdigit((unsigned char)*c))
                        break;
                int d = isdigit((unsigned char)*c) ? *c - '0' : tolower((unsigned char)*c) - 'a' + 10;
                bytes[n / 2] = (unsigned char)(n % 2 ? (bytes[n / 2] | d) : d << 4);
                n++;
                c++;
        }
        if (c == NULL || n != 32 || *c != '\0')
                return perr(p, node, "at", "malformed uuid '%s'", v ? v : "");
        snprintf(out, 37,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", bytes[0],
                 bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8],
                 bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]);
        return 0;
}

static int random_bytes(unsigned char *buf, size_t len, struct tt_error *err)
{
        if (getrandom(buf, len, 0) != (ssize_t)len)
                return tt_error_errno(err, errno, "cannot get random bytes");
        return 0;
}

static int generate_uuid(char out[37], struct tt_error *err)
{
        unsigned char b[16];

        if (random_bytes(b, sizeof(b), err) < 0)
                return -1;
        b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
        b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
        snprintf(out, 37,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                 b[15]);
        return 0;
}

static int parse_mac(struct parser *p, xmlNodePtr node, char out[18])
{
        _cleanup_free_ char *v = prop(node, "address");
        unsigned b[6];
        unsigned char mb[6];
        char tail;

        if (v == NULL)
                return perr(p, node, "on", "missing attribute 'address'");
        if (strlen(v) != 17 ||
            sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
                return perr(p, node, "on", "malformed mac address '%s'", v);
        for (int i = 0; i < 17; i++)
                if (i % 3 == 2 ? v[i] != ':' : !isxdigit((unsigned char)v[i]))
                        return perr(p, node, "on", "malformed mac address '%s'", v);
        if (b[0] & 1)
                return perr(p, node, "on", "expected unicast mac address, found multicast '%s'", v);
        for (int i = 0; i < 6; i++)
                mb[i] = (unsigned char)b[i];
        snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mb[0], mb[1], mb[2], mb[3], mb[4], mb[5]);
        return 0;
}

static int generate_mac(char out[18], struct tt_error *err)
{
        unsigned char b[3];

        if (random_bytes(b, sizeof(b), err) < 0)
                return -1;
        snprintf(out, 18, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
        return 0;
}

/* <memory unit='...'>N</memory> to KiB, rounding up as libvirt does. */
static int parse_memory(struct parser *p, xmlNodePtr node, uint64_t *kib)
{
        _cleanup_free_ char *v = trimmed_text(node);
        _cleanup_free_ char *unit = prop(node, "unit");
        uint64_t n, scale = 1;
        unsigned base = 1024, power = 1; /* no unit: KiB */

        if (unit) {
                size_t i, len = strlen(unit);

                for (i = 0; i < TT_ARRAY_SIZE(unit_powers); i++)
                        if (len > 0 && tolower((unsigned char)unit[0]) == unit_powers[i].letter)
                                break;
                if (i == TT_ARRAY_SIZE(unit_powers))
                        return perr(p, node, "on", "unknown unit '%s'", unit);
                power = unit_powers[i].power;
                if (power == 0) {
                        if (strcasecmp(unit, "b") != 0 && strcasecmp(unit, "bytes") != 0)
                                return perr(p, node, "on", "unknown unit '%s'", unit);
                } else if (len == 1 || strcasecmp(unit + 1, "iB") == 0) {
                        base = 1024;
                } else if (len == 2 && tolower((unsigned char)unit[1]) == 'b') {
                        base = 1000;
                } else {
                        return perr(p, node, "on", "unknown unit '%s'", unit);
                }
        }
        if (tt_parse_uint64(v, 10, &n) < 0)
                return perr(p, node, "in", "invalid memory size '%s'", v ? v : "");
        for (unsigned i = 0; i < power; i++) {
                if (scale > UINT64_MAX / base)
                        return perr(p, node, "in", "memory size '%s' is too large", v);
                scale *= base;
        }
        if (n > UINT64_MAX / scale)
                return perr(p, node, "in", "memory size '%s' is too large", v);
        n *= scale;
        *kib = n / 1024 + (n % 1024 != 0);
        /* QEMU's -m takes at most a few TiB on x86; refuse nonsense before it reaches QEMU. */
        if (*kib > (UINT64_C(1) << 42))
                return perr(p, node, "in", "memory size '%s' is too large", v);
        return 0;
}

/* Index of a disk target (vda = 0, vdz = 25, vdaa = 26), -1 when the name is not prefix+letters. */
static int disk_index(const char *target, const char *prefix)
{
        size_t plen = strlen(prefix);
        int idx = 0;

        if (strncmp(target, prefix, plen) != 0 || target[plen] == '\0' || strlen(target) > plen + 3)
                return -1;
        for (const char *c = target + plen; *c; c++) {
                if (*c < 'a' || *c > 'z')
                        return -1;
                idx = idx * 26 + (*c - 'a' + 1);
        }
        return idx - 1;
}

/* ---- elements ----------------------------------------------------------------------------- */

static int parse_os(struct parser *p, struct domain *def)
{
        xmlNodePtr type = xp_node(p, NULL, "/domain/os/type");
        _cleanup_free_ char *t = trimmed_text(type);
        _cleanup_free_ char *arch = prop(type, "arch");
        xmlNodePtr n;
        int count, rc = 0;
        xmlXPathObjectPtr boots;

        if (type == NULL)
                return tt_error_set(p->err, EINVAL, "missing element /domain/os/type");
        if (strcmp(t, "hvm") != 0)
                return perr(p, type, "in", "unsupported os type '%s'", t);
        if (arch && strcmp(arch, "x86_64") != 0)
                return perr(p, type, "on", "unsupported value '%s' for attribute 'arch'", arch);
        def->arch = strdup("x86_64");
        def->machine = prop(type, "machine");
        if (def->machine == NULL) {
                def->machine = strdup("pc");
        } else if (strcmp(def->machine, "pc") != 0 && strcmp(def->machine, "q35") != 0 &&
                   strncmp(def->machine, "pc-i440fx-", 10) != 0 &&
                   strncmp(def->machine, "pc-q35-", 7) != 0) {
                return perr(p, type, "on", "unsupported machine type '%s'", def->machine);
        }
        for (const char *c = def->machine; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
                        return perr(p, type, "on", "unsupported machine type '%s'", def->machine);

        if ((n = xp_node(p, NULL, "/domain/os/kernel"))) {
                def->kernel = trimmed_text(n);
                if (check_path(p, n, "kernel", def->kernel) < 0)
                        return -1;
        }
        if ((n = xp_node(p, NULL, "/domain/os/initrd"))) {
                def->initrd = trimmed_text(n);
                if (check_path(p, n, "initrd", def->initrd) < 0)
                        return -1;
        }
        if ((n = xp_node(p, NULL, "/domain/os/cmdline")))
                def->cmdline = text(n);
        if (def->initrd && !def->kernel)
                return perr(p, n ? n : type, "at", "initrd given without a kernel");

        boots = xp_nodes(p, "/domain/os/boot", &count);
        for (int i = 0; i < count && rc == 0; i++) {
                int dev;

                if (def->n_boot == DOMAIN_MAX_BOOT)
                        rc = perr(p, boots->nodesetval->nodeTab[i], "at", "too many boot devices");
                else if ((rc = attr_enum(p, boots->nodesetval->nodeTab[i], "dev", boot_names, -1, &dev)) == 0)
                        def->boot[def->n_boot++] = dev;
        }
        xmlXPathFreeObject(boots);
        /* libvirt boots from the first hard disk when neither <boot> nor <kernel> is given. */
        if (rc == 0 && def->n_boot == 0 && def->kernel == NULL)
                def->boot[def->n_boot++] = DOMAIN_BOOT_HD;
        return rc;
}

static int parse_disk(struct parser *p, xmlNodePtr node, struct domain *def)
{
        struct domain_disk *d = grow(p, node, (void **)&def->disks, &def->n_disks, sizeof(*d));
        _cleanup_free_ char *type = prop(node, "type");
        xmlNodePtr driver = xp_node(p, node, "driver");
        xmlNodePtr source = xp_node(p, node, "source");
        xmlNodePtr target = xp_node(p, node, "target");
        int v;

        if (d == NULL)
                return -1;
        if (type == NULL || strcmp(type, "file") != 0)
                return perr(p, node, "on", "unsupported value '%s' for attribute 'type'",
                            type ? type : "");
        if (attr_enum(p, node, "device", disk_device_names, DOMAIN_DISK_DISK, &v) < 0)
                return -1;
        d->device = v;
        if (driver) {
                _cleanup_free_ char *name = prop(driver, "name");

                if (name && strcmp(name, "qemu") != 0)
                        return perr(p, driver, "on", "unsupported value '%s' for attribute 'name'", name);
                if (attr_enum(p, driver, "type", disk_format_names, DOMAIN_FORMAT_RAW, &v) < 0)
                        return -1;
                d->format = v;
                d->has_driver = true;
        }
        if (source) {
                d->source = prop(source, "file");
                if (d->source && check_path(p, source, "source file", d->source) < 0)
                        return -1;
        }
        if (d->source == NULL && d->device == DOMAIN_DISK_DISK)
                return perr(p, node, "at", "missing source file for disk");
        if (target == NULL)
                return perr(p, node, "at", "missing element 'target'");
        d->target = prop(target, "dev");
        if (d->target == NULL)
                return perr(p, target, "on", "missing attribute 'dev'");
        /* Without bus= the target's prefix decides, as in libvirt (sd means SATA here). */
        v = -1;
        for (int b = 0; b < (int)TT_ARRAY_SIZE(disk_bus_prefix); b++)
                if (strncmp(d->target, disk_bus_prefix[b], 2) == 0)
                        v = b;
        if (attr_enum(p, target, "bus", disk_bus_names, v, &v) < 0)
                return -1;
        if (v < 0)
                return perr(p, target, "on", "cannot infer bus for target '%s'", d->target);
        d->bus = v;
        int idx = disk_index(d->target, disk_bus_prefix[d->bus]);
        if (idx < 0)
                return perr(p, target, "on", "target '%s' does not match bus '%s' (expected %sX)",
                            d->target, disk_bus_names[d->bus], disk_bus_prefix[d->bus]);
        if ((unsigned)idx >= disk_bus_max[d->bus])
                return perr(p, target, "on", "target '%s' is beyond the last %s slot", d->target,
                            disk_bus_names[d->bus]);
        if (d->device == DOMAIN_DISK_CDROM && d->bus == DOMAIN_BUS_VIRTIO)
                return perr(p, target, "on", "disk device 'cdrom' is not supported on bus 'virtio'");
        d->readonly = xp_node(p, node, "readonly") != NULL;
        /* QEMU's ide-hd refuses read-only drives (libvirt refuses them too). */
        if (d->readonly && d->device == DOMAIN_DISK_DISK && d->bus != DOMAIN_BUS_VIRTIO)
                return perr(p, node, "at", "readonly disks are not supported on bus '%s'",
                            disk_bus_names[d->bus]);
        for (size_t i = 0; i + 1 < def->n_disks; i++)
                if (strcmp(def->disks[i].target, d->target) == 0)
                        return tt_error_set(p->err, EINVAL,
                                            "target '%s' duplicated for disk sources '%s' and '%s'",
                                            d->target, def->disks[i].source ? def->disks[i].source : "",
                                            d->source ? d->source : "");
        return 0;
}

static int parse_interface(struct parser *p, xmlNodePtr node, struct domain *def)
{
        struct domain_net *n = grow(p, node, (void **)&def->nets, &def->n_nets, sizeof(*n));
        xmlNodePtr source = xp_node(p, node, "source");
        xmlNodePtr mac = xp_node(p, node, "mac");
        xmlNodePtr model = xp_node(p, node, "model");
        xmlNodePtr target = xp_node(p, node, "target");
        int v;

        if (n == NULL || attr_enum(p, node, "type", net_type_names, -1, &v) < 0)
                return -1;
        n->type = v;
        if (n->type == DOMAIN_NET_BRIDGE) {
                n->bridge = prop(source, "bridge");
                if (n->bridge == NULL)
                        return perr(p, source ? source : node, "at", "missing source bridge");
                /* A Linux interface name: at most 15 bytes, no '/' or white space. */
                if (strlen(n->bridge) == 0 || strlen(n->bridge) > 15 || strpbrk(n->bridge, "/ \t\n,"))
                        return perr(p, source, "on", "invalid bridge name '%s'", n->bridge);
        } else if (source) {
                return perr(p, source, "at", "element 'source' is not valid for interface type 'user'");
        }
        if (target && n->type == DOMAIN_NET_BRIDGE) {
                n->ifname = prop(target, "dev");
                if (n->ifname && (strlen(n->ifname) == 0 || strlen(n->ifname) >= IFNAMSIZ ||
                                  strpbrk(n->ifname, "/ \t\n:%") || strcmp(n->ifname, ".") == 0 ||
                                  strcmp(n->ifname, "..") == 0))
                        return perr(p, target, "on", "invalid interface name '%s'", n->ifname);
        }
        if (mac ? parse_mac(p, mac, n->mac) < 0 : generate_mac(n->mac, p->err) < 0)
                return -1;
        if (model) {
                if (attr_enum(p, model, "type", net_model_names, -1, &v) < 0)
                        return -1;
                n->model = v;
        } else {
                n->model = DOMAIN_NET_RTL8139;
        }
        return 0;
}

static int parse_serial(struct parser *p, xmlNodePtr node, struct domain *def)
{
        struct domain_serial *s = grow(p, node, (void **)&def->serials, &def->n_serials, sizeof(*s));
        _cleanup_free_ char *type = prop(node, "type");
        xmlNodePtr target = xp_node(p, node, "target");
        unsigned port;

        if (s == NULL)
                return -1;
        if (type == NULL || strcmp(type, "pty") != 0)
                return perr(p, node, "on", "unsupported value '%s' for attribute 'type'", type ? type : "");
        if (attr_uint(p, target, "port", 3, &port) < 0)
                return -1;
        /* No port: the lowest free one. */
        if (target == NULL || !xmlHasProp(target, (const xmlChar *)"port")) {
                for (port = 0;; port++) {
                        size_t i = 0;

                        while (i + 1 < def->n_serials && def->serials[i].port != (int)port)
                                i++;
                        if (i + 1 >= def->n_serials)
                                break;
                }
        }
        s->port = (int)port;
        for (size_t i = 0; i + 1 < def->n_serials; i++)
                if (def->serials[i].port == s->port)
                        return perr(p, node, "at", "duplicate serial port %d", s->port);
        if (s->port > 3)
                return perr(p, node, "at", "too many serial ports");
        return 0;
}

static int parse_console(struct parser *p, xmlNodePtr node, struct domain *def)
{
        _cleanup_free_ char *type = prop(node, "type");
        xmlNodePtr target = xp_node(p, node, "target");
        _cleanup_free_ char *ttype = prop(target, "type");
        unsigned port;

        if (type == NULL || strcmp(type, "pty") != 0)
                return perr(p, node, "on", "unsupported value '%s' for attribute 'type'", type ? type : "");
        if (ttype && strcmp(ttype, "serial") != 0)
                return perr(p, target, "on", "unsupported value '%s' for attribute 'type'", ttype);
        if (attr_uint(p, target, "port", 0, &port) < 0)
                return -1;
        def->console = true;
        return 0;
}

static int parse_channel(struct parser *p, xmlNodePtr node, struct domain *def)
{
        struct domain_channel *c = grow(p, node, (void **)&def->channels, &def->n_channels, sizeof(*c));
        _cleanup_free_ char *type = prop(node, "type");
        xmlNodePtr source = xp_node(p, node, "source");
        xmlNodePtr target = xp_node(p, node, "target");
        _cleanup_free_ char *ttype = prop(target, "type");

        if (c == NULL)
                return -1;
        if (type == NULL || strcmp(type, "unix") != 0)
                return perr(p, node, "on", "unsupported value '%s' for attribute 'type'", type ? type : "");
        if (source) {
                _cleanup_free_ char *mode = prop(source, "mode");

                if (mode && strcmp(mode, "bind") != 0)
                        return perr(p, source, "on", "unsupported value '%s' for attribute 'mode'", mode);
                c->path = prop(source, "path");
                if (c->path && check_path(p, source, "channel path", c->path) < 0)
                        return -1;
        }
        if (target == NULL)
                return perr(p, node, "at", "missing element 'target'");
        if (ttype == NULL || strcmp(ttype, "virtio") != 0)
                return perr(p, target, "on", "unsupported value '%s' for attribute 'type'",
                            ttype ? ttype : "");
        c->name = prop(target, "name");
        if (c->name == NULL)
                return perr(p, target, "on", "missing attribute 'name'");
        if (strcmp(c->name, DOMAIN_AGENT_CHANNEL) != 0)
                return perr(p, target, "at", "unsupported channel target name '%s'", c->name);
        for (size_t i = 0; i + 1 < def->n_channels; i++)
                if (strcmp(def->channels[i].name, c->name) == 0)
                        return perr(p, target, "at", "duplicate channel target name '%s'", c->name);
        return 0;
}

static int parse_input(struct parser *p, xmlNodePtr node, struct domain *def)
{
        struct domain_input *in = grow(p, node, (void **)&def->inputs, &def->n_inputs, sizeof(*in));
        int v;

        if (in == NULL || attr_enum(p, node, "type", input_type_names, -1, &v) < 0)
                return -1;
        in->type = v;
        if (attr_enum(p, node, "bus", input_bus_names,
                      in->type == DOMAIN_INPUT_TABLET ? DOMAIN_INPUT_USB : DOMAIN_INPUT_PS2, &v) < 0)
                return -1;
        in->bus = v;
        if (in->type == DOMAIN_INPUT_TABLET && in->bus == DOMAIN_INPUT_PS2)
                return perr(p, node, "at", "ps2 bus does not support tablet input device");
        return 0;
}

static int parse_graphics(struct parser *p, xmlNodePtr node, struct domain *def)
{
        struct domain_graphics *g = grow(p, node, (void **)&def->graphics, &def->n_graphics, sizeof(*g));
        _cleanup_free_ char *port = prop(node, "port");
        xmlNodePtr listen = xp_node(p, node, "listen");
        int v;

        if (g == NULL || attr_enum(p, node, "type", graphics_names, -1, &v) < 0)
                return -1;
        g->type = v;
        for (size_t i = 0; i + 1 < def->n_graphics; i++)
                if (def->graphics[i].type == g->type)
                        return perr(p, node, "at", "only one graphics device of type '%s' is supported",
                                    graphics_names[g->type]);
        g->port = -1;
        if (port) {
                int64_t n;

                if (tt_parse_int64(port, 10, &n) < 0 || (n != -1 && (n < 5900 || n > 65535)))
                        return perr(p, node, "on", "invalid value '%s' for attribute 'port'", port);
                g->port = (int)n;
        }
        if (attr_enum(p, node, "autoport", yes_no_names, g->port == -1, &v) < 0)
                return -1;
        g->autoport = v;
        if (g->autoport)
                g->port = -1; /* libvirt ignores the port when autoport='yes' */
        else if (g->port == -1)
                return perr(p, node, "at", "autoport='no' needs a port");
        g->listen = prop(node, "listen");
        if (listen) {
                _cleanup_free_ char *ltype = prop(listen, "type");
                _cleanup_free_ char *addr = prop(listen, "address");

                if (ltype == NULL || strcmp(ltype, "address") != 0)
                        return perr(p, listen, "on", "unsupported value '%s' for attribute 'type'",
                                    ltype ? ltype : "");
                if (g->listen && addr && strcmp(g->listen, addr) != 0)
                        return perr(p, listen, "at",
                                    "graphics listen attribute '%s' must match listen address '%s'",
                                    g->listen, addr);
                if (g->listen == NULL)
                        g->listen = steal_pointer(&addr);
        }
        if (g->listen && g->listen[0] == '\0') {
                /* As libvirt: an empty address is none given, so the default 127.0.0.1 (QEMU
                 * would take "" for every address). */
                free(g->listen);
                g->listen = NULL;
        }
        if (g->listen) {
                /* An IP address literal: hex digits, '.', ':' (IPv6), nothing QEMU would parse as options. */
                for (const char *c = g->listen; *c; c++)
                        if (!isxdigit((unsigned char)*c) && *c != '.' && *c != ':')
                                return perr(p, node, "on", "invalid listen address '%s'", g->listen);
        }
        g->passwd = prop(node, "passwd");
        return 0;
}

static int parse_video(struct parser *p, xmlNodePtr node, struct domain *def)
{
        struct domain_video *vd = grow(p, node, (void **)&def->videos, &def->n_videos, sizeof(*vd));
        xmlNodePtr model = xp_node(p, node, "model");
        int v;

        if (vd == NULL)
                return -1;
        if (model == NULL)
                return perr(p, node, "at", "missing element 'model'");
        if (attr_enum(p, model, "type", video_names, -1, &v) < 0)
                return -1;
        vd->model = v;
        if (attr_uint(p, model, "vram", 1u << 24, &vd->vram) < 0 ||
            attr_uint(p, model, "heads", 16, &vd->heads) < 0 ||
            attr_uint(p, model, "ram", 1u << 24, &vd->ram) < 0 ||
            attr_uint(p, model, "vgamem", 1u << 24, &vd->vgamem) < 0)
                return -1;
        if (xmlHasProp(model, (const xmlChar *)"heads") && vd->heads == 0)
                return perr(p, model, "on", "invalid value '0' for attribute 'heads'");
        if (vd->model != DOMAIN_VIDEO_QXL && (vd->ram || vd->vgamem))
                return perr(p, model, "on", "attributes 'ram' and 'vgamem' are only valid for qxl");
        if (def->n_videos > 1) {
                /* Only qxl and virtio have a secondary (non-VGA) variant; 'none' stands alone. */
                enum domain_video_model first = def->videos[0].model;

                if (first == DOMAIN_VIDEO_NONE || vd->model == DOMAIN_VIDEO_NONE)
                        return perr(p, model, "on", "video type 'none' must be the only video device");
                if (vd->model != DOMAIN_VIDEO_QXL && vd->model != DOMAIN_VIDEO_VIRTIO)
                        return perr(p, model, "on", "video type '%s' is only valid as primary video device",
                                    video_names[vd->model]);
        }
        return 0;
}

/* Each device element, dispatched by name. */
static const struct {
        const char *name;
        int (*parse)(struct parser *p, xmlNodePtr node, struct domain *def);
} device_parsers[] = {
        { "disk", parse_disk },         { "interface", parse_interface }, { "serial", parse_serial },
        { "console", parse_console },   { "channel", parse_channel },     { "input", parse_input },
        { "graphics", parse_graphics }, { "video", parse_video },
};

static int parse_devices(struct parser *p, struct domain *def)
{
        xmlNodePtr devices = xp_node(p, NULL, "/domain/devices");
        xmlNodePtr n, stats;
        int v;

        if ((n = xp_node(p, NULL, "/domain/devices/emulator"))) {
                def->emulator = trimmed_text(n);
                if (check_path(p, n, "emulator", def->emulator) < 0)
                        return -1;
        } else {
                def->emulator = strdup(DOMAIN_DEFAULT_EMULATOR);
        }
        for (n = devices ? devices->children : NULL; n; n = n->next) {
                if (n->type != XML_ELEMENT_NODE)
                        continue;
                for (size_t i = 0; i < TT_ARRAY_SIZE(device_parsers); i++)
                        if (xmlStrEqual(n->name, (const xmlChar *)device_parsers[i].name) &&
                            device_parsers[i].parse(p, n, def) < 0)
                                return -1;
        }
        def->balloon = DOMAIN_BALLOON_VIRTIO;
        if ((n = xp_node(p, NULL, "/domain/devices/memballoon"))) {
                if (attr_enum(p, n, "model", balloon_names, -1, &v) < 0)
                        return -1;
                def->balloon = v;
                if ((stats = xp_node(p, n, "stats")) &&
                    attr_uint(p, stats, "period", 86400, &def->balloon_period) < 0)
                        return -1;
                if (def->balloon_period && def->balloon != DOMAIN_BALLOON_VIRTIO)
                        return perr(p, stats, "on",
                                    "balloon statistics need memballoon model 'virtio'");
        }
        if ((n = xp_node(p, NULL, "/domain/devices/panic"))) {
                if (attr_enum(p, n, "model", panic_names, DOMAIN_PANIC_ISA, &v) < 0)
                        return -1;
                def->panic = v;
        }
        return 0;
}

/* Checks that need the whole definition. */
static int validate(struct parser *p, struct domain *def)
{
        if (domain_machine_is_q35(def))
                for (size_t i = 0; i < def->n_disks; i++)
                        if (def->disks[i].bus == DOMAIN_BUS_IDE)
                                return tt_error_set(p->err, EINVAL,
                                                    "IDE disk '%s' is not supported on machine type '%s'",
                                                    def->disks[i].target, def->machine);
        if (def->cpu_mode == DOMAIN_CPU_HOST_PASSTHROUGH || def->cpu_mode == DOMAIN_CPU_HOST_MODEL)
                if (def->virt != DOMAIN_VIRT_KVM)
                        return tt_error_set(p->err, EINVAL,
                                            "CPU mode '%s' needs domain type 'kvm'",
                                            cpu_mode_names[def->cpu_mode]);
        return 0;
}

static int parse_top(struct parser *p, struct domain *def)
{
        xmlNodePtr root = xmlDocGetRootElement(p->doc);
        xmlNodePtr n;
        int v;

        if (attr_enum(p, root, "type", virt_names, -1, &v) < 0)
                return -1;
        def->virt = v;

        n = xp_node(p, NULL, "/domain/name");
        def->name = text(n);
        if (def->name == NULL || def->name[0] == '\0')
                return tt_error_set(p->err, EINVAL, "missing domain name");
        if (strchr(def->name, '/'))
                return perr(p, n, "at", "domain name '%s' cannot contain '/'", def->name);
        /* '.', '..' and hidden names would put files outside the domain's own (or any) name. */
        if (def->name[0] == '.')
                return perr(p, n, "at", "domain name '%s' cannot begin with '.'", def->name);
        for (const char *c = def->name; *c; c++)
                if (iscntrl((unsigned char)*c))
                        return perr(p, n, "at", "domain name contains a control character");
        if (strlen(def->name) > 200)
                return perr(p, n, "at", "domain name is longer than 200 bytes");

        if ((n = xp_node(p, NULL, "/domain/uuid"))) {
                if (parse_uuid(p, n, def->uuid) < 0)
                        return -1;
        } else if (generate_uuid(def->uuid, p->err) < 0) {
                return -1;
        }
        if ((n = xp_node(p, NULL, "/domain/title"))) {
                def->title = text(n);
                if (strchr(def->title, '\n'))
                        return perr(p, n, "at", "title can't contain newlines");
        }
        if ((n = xp_node(p, NULL, "/domain/description")))
                def->description = text(n);

        n = xp_node(p, NULL, "/domain/memory");
        if (n == NULL)
                return tt_error_set(p->err, EINVAL, "missing element /domain/memory");
        if (parse_memory(p, n, &def->memory_kib) < 0)
                return -1;
        if (def->memory_kib < 1024)
                return perr(p, n, "in", "memory size must be at least 1 MiB");
        def->current_memory_kib = def->memory_kib;
        if ((n = xp_node(p, NULL, "/domain/currentMemory"))) {
                if (parse_memory(p, n, &def->current_memory_kib) < 0)
                        return -1;
                /* libvirt lowers currentMemory to memory rather than refusing. */
                if (def->current_memory_kib > def->memory_kib || def->current_memory_kib == 0)
                        def->current_memory_kib = def->memory_kib;
        }

        def->vcpus = 1;
        if ((n = xp_node(p, NULL, "/domain/vcpu"))) {
                _cleanup_free_ char *t = trimmed_text(n);
                uint64_t count;

                if (tt_parse_uint64(t, 10, &count) < 0 || count < 1 || count > 255)
                        return perr(p, n, "in", "invalid vcpu count '%s' (expected 1 to 255)", t);
                def->vcpus = (unsigned)count;
                if (attr_enum(p, n, "placement", placement_names, DOMAIN_PLACEMENT_NONE, &v) < 0)
                        return -1;
                def->placement = v;
        }

        if (parse_os(p, def) < 0)
                return -1;
        def->acpi = xp_node(p, NULL, "/domain/features/acpi") != NULL;
        def->apic = xp_node(p, NULL, "/domain/features/apic") != NULL;

        if ((n = xp_node(p, NULL, "/domain/cpu"))) {
                xmlNodePtr model = xp_node(p, n, "model");

                if (attr_enum(p, n, "mode", cpu_mode_names, DOMAIN_CPU_CUSTOM, &v) < 0)
                        return -1;
                def->cpu_mode = v;
                if (def->cpu_mode == DOMAIN_CPU_CUSTOM) {
                        if (model == NULL)
                                return perr(p, n, "at", "CPU mode 'custom' needs a model");
                        def->cpu_model = trimmed_text(model);
                        for (const char *c = def->cpu_model; *c; c++)
                                if (!isalnum((unsigned char)*c) && !strchr("-_.", *c))
                                        return perr(p, model, "in", "invalid CPU model '%s'", def->cpu_model);
                        if (def->cpu_model[0] == '\0')
                                return perr(p, model, "in", "empty CPU model");
                } else if (model) {
                        return perr(p, model, "at", "a CPU model is only valid with mode 'custom'");
                }
        }
        if ((n = xp_node(p, NULL, "/domain/clock"))) {
                if (attr_enum(p, n, "offset", clock_names, DOMAIN_CLOCK_UTC, &v) < 0)
                        return -1;
                def->clock = v;
        }

        def->on_poweroff = DOMAIN_ACTION_DESTROY;
        def->on_reboot = DOMAIN_ACTION_RESTART;
        def->on_crash = DOMAIN_ACTION_DESTROY;
#define ACT(a) (1u << DOMAIN_ACTION_##a)
        /* Which actions each element takes, and why the others are refused. */
        static const struct {
                const char *xpath;
                size_t offset;
                unsigned allowed; /* ACT() bits */
                const char *why;  /* for the others */
        } actions[] = {
                { "/domain/on_poweroff", offsetof(struct domain, on_poweroff),
                  ACT(DESTROY) | ACT(RESTART) | ACT(PRESERVE) | ACT(RENAME_RESTART),
                  "core dumps are for on_crash only" },
                /* QEMU either resets (restart) or, with -no-reboot, stops (destroy). */
                { "/domain/on_reboot", offsetof(struct domain, on_reboot), ACT(DESTROY) | ACT(RESTART),
                  "a reboot can only restart or destroy the domain" },
                { "/domain/on_crash", offsetof(struct domain, on_crash),
                  ACT(DESTROY) | ACT(RESTART) | ACT(PRESERVE) | ACT(RENAME_RESTART),
                  "Tether writes no core dumps; use destroy, restart or preserve" },
        };
#undef ACT
        for (size_t i = 0; i < TT_ARRAY_SIZE(actions); i++) {
                if ((n = xp_node(p, NULL, actions[i].xpath)) == NULL)
                        continue;
                if (text_enum(p, n, action_names, &v) < 0)
                        return -1;
                if (!(actions[i].allowed & (1u << v)))
                        return perr(p, n, "at", "unsupported value '%s' (%s)", action_names[v],
                                    actions[i].why);
                *(enum domain_action *)((char *)def + actions[i].offset) = v;
        }
        return parse_devices(p, def);
}

/* libxml2 reports every error after the first; the first is the one a person must fix. */
static void keep_first_error(void *data, xmlErrorPtr e)
{
        xmlError *first = ((xmlParserCtxtPtr)data)->_private;

        if (first->code == 0 && e != NULL && xmlCopyError(e, first) < 0)
                first->code = e->code;
}

/* ---- public parse ------------------------------------------------------------------------- */

struct domain *domain_parse(const char *xml, size_t len, struct tt_error *err)
{
        struct parser p = { .err = err };
        xmlError first = { 0 };
        xmlParserCtxtPtr ctxt;
        struct domain *def = NULL;
        int rc = -1;

        if (len > DOMAIN_MAX_XML) {
                tt_error_set(err, EFBIG, "domain XML is larger than %d bytes", DOMAIN_MAX_XML);
                return NULL;
        }
        ctxt = xmlNewParserCtxt();
        if (ctxt == NULL) {
                tt_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        ctxt->_private = &first;
        ctxt->sax->serror = keep_first_error;
        /* No network, no entity expansion, no messages on stderr: errors come back in err. */
        p.doc = xmlCtxtReadMemory(ctxt, xml, (int)len, "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (p.doc == NULL) {
                const xmlError *e = first.code ? &first : xmlCtxtGetLastError(ctxt);
                char msg[256];
                size_t mlen;

                snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "unknown error");
                mlen = strlen(msg);
                while (mlen > 0 && isspace((unsigned char)msg[mlen - 1]))
                        msg[--mlen] = '\0';
                tt_error_set(err, EINVAL, "not well-formed XML at line %d: %s", e ? e->line : 0, msg);
                xmlResetError(&first);
                xmlFreeParserCtxt(ctxt);
                return NULL;
        }
        xmlResetError(&first);
        xmlFreeParserCtxt(ctxt);

        if (p.doc->intSubset || p.doc->extSubset) {
                tt_error_set(err, EINVAL, "a DOCTYPE is not supported in domain XML");
                goto out;
        }
        if (xmlDocGetRootElement(p.doc) == NULL) {
                tt_error_set(err, EINVAL, "empty domain XML");
                goto out;
        }
        if (check_subset(&p, xmlDocGetRootElement(p.doc)) < 0)
                goto out;
        p.xpath = xmlXPathNewContext(p.doc);
        def = calloc(1, sizeof(*def));
        if (p.xpath == NULL || def == NULL) {
                tt_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        if (parse_top(&p, def) < 0 || validate(&p, def) < 0)
                goto out;
        rc = 0;
out:
        xmlXPathFreeContext(p.xpath);
        xmlFreeDoc(p.doc);
        if (rc < 0) {
                domain_free(def);
                return NULL;
        }
        return def;
}

struct domain *domain_parse_file(const char *path, struct tt_error *err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;

        if (tt_read_file(path, DOMAIN_MAX_XML, &buf, &len, err) < 0)
                return NULL;
        return domain_parse(buf, len, err);
}

void domain_free(struct domain *def)
{
        if (def == NULL)
                return;
        free(def->name);
        free(def->title);
        free(def->description);
        free(def->arch);
        free(def->machine);
        free(def->kernel);
        free(def->initrd);
        free(def->cmdline);
        free(def->cpu_model);
        free(def->emulator);
        for (size_t i = 0; i < def->n_disks; i++) {
                free(def->disks[i].source);
                free(def->disks[i].target);
        }
        free(def->disks);
        for (size_t i = 0; i < def->n_nets; i++) {
                free(def->nets[i].bridge);
                free(def->nets[i].ifname);
        }
        free(def->nets);
        free(def->serials);
        for (size_t i = 0; i < def->n_channels; i++) {
                free(def->channels[i].path);
                free(def->channels[i].name);
        }
        free(def->channels);
        free(def->inputs);
        for (size_t i = 0; i < def->n_graphics; i++) {
                free(def->graphics[i].listen);
                free(def->graphics[i].passwd);
        }
        free(def->graphics);
        free(def->videos);
        free(def);
}

bool domain_machine_is_q35(const struct domain *def)
{
        return strcmp(def->machine, "q35") == 0 || strncmp(def->machine, "pc-q35-", 7) == 0;
}

/* ---- format ------------------------------------------------------------------------------- */

/* Text or attribute value with the five XML specials escaped. */
static void put_escaped(FILE *f, const char *s)
{
        for (; *s; s++) {
                switch (*s) {
                case '&': fputs("&amp;", f); break;
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                case '\'': fputs("&apos;", f); break;
                case '"': fputs("&quot;", f); break;
                default: fputc(*s, f);
                }
        }
}

/* <tag>text</tag> on one line at the given indent. */
static void put_text_element(FILE *f, int indent, const char *tag, const char *value)
{
        fprintf(f, "%*s<%s>", indent, "", tag);
        put_escaped(f, value);
        fprintf(f, "</%s>\n", tag);
}

/* name='value' with a leading space. */
static void put_attr(FILE *f, const char *name, const char *value)
{
        fprintf(f, " %s='", name);
        put_escaped(f, value);
        fputc('\'', f);
}

static void format_devices(FILE *f, const struct domain *def, unsigned flags)
{
        fputs("  <devices>\n", f);
        put_text_element(f, 4, "emulator", def->emulator);
        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *d = &def->disks[i];

                fprintf(f, "    <disk type='file' device='%s'>\n", disk_device_names[d->device]);
                if (d->has_driver)
                        fprintf(f, "      <driver name='qemu' type='%s'/>\n", disk_format_names[d->format]);
                if (d->source) {
                        fputs("      <source", f);
                        put_attr(f, "file", d->source);
                        fputs("/>\n", f);
                }
                fputs("      <target", f);
                put_attr(f, "dev", d->target);
                fprintf(f, " bus='%s'/>\n", disk_bus_names[d->bus]);
                if (d->readonly)
                        fputs("      <readonly/>\n", f);
                fputs("    </disk>\n", f);
        }
        for (size_t i = 0; i < def->n_nets; i++) {
                const struct domain_net *n = &def->nets[i];

                fprintf(f, "    <interface type='%s'>\n", net_type_names[n->type]);
                fprintf(f, "      <mac address='%s'/>\n", n->mac);
                if (n->bridge) {
                        fputs("      <source", f);
                        put_attr(f, "bridge", n->bridge);
                        fputs("/>\n", f);
                }
                if (n->ifname) {
                        fputs("      <target", f);
                        put_attr(f, "dev", n->ifname);
                        fputs("/>\n", f);
                }
                fprintf(f, "      <model type='%s'/>\n", net_model_names[n->model]);
                fputs("    </interface>\n", f);
        }
        for (size_t i = 0; i < def->n_serials; i++)
                fprintf(f, "    <serial type='pty'>\n      <target port='%d'/>\n    </serial>\n",
                        def->serials[i].port);
        if (def->console)
                fputs("    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n", f);
        for (size_t i = 0; i < def->n_channels; i++) {
                const struct domain_channel *c = &def->channels[i];

                fputs("    <channel type='unix'>\n", f);
                if (c->path) {
                        fputs("      <source mode='bind'", f);
                        put_attr(f, "path", c->path);
                        fputs("/>\n", f);
                }
                fputs("      <target type='virtio'", f);
                put_attr(f, "name", c->name);
                fputs("/>\n    </channel>\n", f);
        }
        for (size_t i = 0; i < def->n_inputs; i++)
                fprintf(f, "    <input type='%s' bus='%s'/>\n", input_type_names[def->inputs[i].type],
                        input_bus_names[def->inputs[i].bus]);
        for (size_t i = 0; i < def->n_graphics; i++) {
                const struct domain_graphics *g = &def->graphics[i];

                fprintf(f, "    <graphics type='%s' port='%d' autoport='%s'", graphics_names[g->type],
                        g->port, g->autoport ? "yes" : "no");
                if (g->listen)
                        put_attr(f, "listen", g->listen);
                if (g->passwd && (flags & DOMAIN_FORMAT_SECURE))
                        put_attr(f, "passwd", g->passwd);
                if (g->listen) {
                        fputs(">\n      <listen type='address'", f);
                        put_attr(f, "address", g->listen);
                        fputs("/>\n    </graphics>\n", f);
                } else {
                        fputs("/>\n", f);
                }
        }
        for (size_t i = 0; i < def->n_videos; i++) {
                const struct domain_video *v = &def->videos[i];

                fprintf(f, "    <video>\n      <model type='%s'", video_names[v->model]);
                if (v->ram)
                        fprintf(f, " ram='%u'", v->ram);
                if (v->vram)
                        fprintf(f, " vram='%u'", v->vram);
                if (v->vgamem)
                        fprintf(f, " vgamem='%u'", v->vgamem);
                if (v->heads)
                        fprintf(f, " heads='%u'", v->heads);
                fputs("/>\n    </video>\n", f);
        }
        if (def->balloon_period)
                fprintf(f, "    <memballoon model='%s'>\n      <stats period='%u'/>\n"
                           "    </memballoon>\n", balloon_names[def->balloon], def->balloon_period);
        else
                fprintf(f, "    <memballoon model='%s'/>\n", balloon_names[def->balloon]);
        if (def->panic != DOMAIN_PANIC_NONE)
                fprintf(f, "    <panic model='%s'/>\n", panic_names[def->panic]);
        fputs("  </devices>\n", f);
}

char *domain_format(const struct domain *def)
{
        return domain_format_flags(def, DOMAIN_FORMAT_SECURE);
}

char *domain_format_flags(const struct domain *def, unsigned flags)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (f == NULL)
                return NULL;
        fprintf(f, "<domain type='%s'>\n", virt_names[def->virt]);
        put_text_element(f, 2, "name", def->name);
        put_text_element(f, 2, "uuid", def->uuid);
        if (def->title)
                put_text_element(f, 2, "title", def->title);
        if (def->description)
                put_text_element(f, 2, "description", def->description);
        fprintf(f, "  <memory unit='KiB'>%" PRIu64 "</memory>\n", def->memory_kib);
        fprintf(f, "  <currentMemory unit='KiB'>%" PRIu64 "</currentMemory>\n", def->current_memory_kib);
        fputs("  <vcpu", f);
        if (def->placement != DOMAIN_PLACEMENT_NONE)
                put_attr(f, "placement", placement_names[def->placement]);
        fprintf(f, ">%u</vcpu>\n", def->vcpus);

        fputs("  <os>\n    <type", f);
        put_attr(f, "arch", def->arch);
        put_attr(f, "machine", def->machine);
        fputs(">hvm</type>\n", f);
        if (def->kernel)
                put_text_element(f, 4, "kernel", def->kernel);
        if (def->initrd)
                put_text_element(f, 4, "initrd", def->initrd);
        if (def->cmdline)
                put_text_element(f, 4, "cmdline", def->cmdline);
        for (size_t i = 0; i < def->n_boot; i++)
                fprintf(f, "    <boot dev='%s'/>\n", boot_names[def->boot[i]]);
        fputs("  </os>\n", f);

        if (def->acpi || def->apic) {
                fputs("  <features>\n", f);
                if (def->acpi)
                        fputs("    <acpi/>\n", f);
                if (def->apic)
                        fputs("    <apic/>\n", f);
                fputs("  </features>\n", f);
        }
        if (def->cpu_mode == DOMAIN_CPU_CUSTOM) {
                fputs("  <cpu mode='custom'>\n", f);
                put_text_element(f, 4, "model", def->cpu_model);
                fputs("  </cpu>\n", f);
        } else if (def->cpu_mode != DOMAIN_CPU_NONE) {
                fprintf(f, "  <cpu mode='%s'/>\n", cpu_mode_names[def->cpu_mode]);
        }
        if (def->clock != DOMAIN_CLOCK_NONE)
                fprintf(f, "  <clock offset='%s'/>\n", clock_names[def->clock]);
        put_text_element(f, 2, "on_poweroff", action_names[def->on_poweroff]);
        put_text_element(f, 2, "on_reboot", action_names[def->on_reboot]);
        put_text_element(f, 2, "on_crash", action_names[def->on_crash]);
        format_devices(f, def, flags);
        fputs("</domain>\n", f);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
