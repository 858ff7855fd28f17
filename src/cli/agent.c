/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest-agent verbs: virsh's options and rules, and libvirt 9.0's conversions of the raw QGA
 * replies that tetherd passes on (qemu_agent.c, qemu_driver.c) into what virsh prints
 * (virsh-domain.c, virsh-domain-monitor.c). Each verb's args_* checks virsh's option rules
 * before anything is sent; each print_* takes the daemon's return value.
 */
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* virsh ends every command with a newline on stdout (vshPrintExtra: --quiet drops it). */
static void end_line(const struct cli_opts *o)
{
        if (!o->quiet)
                printf("\n");
}

/* virsh's VSH_EXCLUSIVE_OPTIONS. */
static int exclusive(const struct cli_opts *o, const char *a, bool has_a, const char *b,
                     bool has_b)
{
        (void)o;
        if (has_a && has_b) {
                cli_error("Options --%s and --%s are mutually exclusive", a, b);
                return -1;
        }
        return 0;
}

/* virsh's VSH_REQUIRE_OPTION. */
static int requires(const char *opt, bool has_opt, const char *needed, bool has_needed)
{
        if (has_opt && !has_needed) {
                cli_error("Option --%s is required by option --%s", needed, opt);
                return -1;
        }
        return 0;
}

static bool has_value(const struct cli_opts *o, const char *name)
{
        return cli_flag_value(o, name) != NULL;
}

/* Print ret as JSON and report success: the --json branch of every confirmation. */
static int print_json_ret(json_t *ret)
{
        if (ret)
                cli_print_json(ret);
        else
                printf("{}\n");
        return 0;
}

/* ---- qemu-agent-command ---- */

int cli_args_agent_command(json_t *args, const struct cli_opts *o)
{
        const char *timeout = cli_flag_value(o, "timeout");
        bool async = cli_flag(o, "async"), block = cli_flag(o, "block");
        json_error_t jerr;
        json_t *cmd;
        int64_t t = 0;

        if ((timeout != NULL) + async + block > 1) {
                cli_error("timeout, async and block options are exclusive");
                return -1;
        }
        if (timeout && (tt_parse_int64(timeout, 10, &t) < 0 || t < 1 || t > INT32_MAX)) {
                cli_error("timeout must be positive");
                return -1;
        }
        cmd = json_loads(o->pos[1], JSON_DECODE_ANY, &jerr);
        if (!json_is_object(cmd)) {
                cli_error("internal error: cannot parse json %s: %s", o->pos[1],
                          cmd ? "not a JSON object" : jerr.text);
                json_decref(cmd);
                return -1;
        }
        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        json_object_set_new(args, "command", cmd);
        /* libvirt's VIR_DOMAIN_QEMU_AGENT_COMMAND_ASYNC (0) and _BLOCK (-2). */
        if (timeout)
                json_object_set_new(args, "timeout", json_integer(t));
        else if (async)
                json_object_set_new(args, "timeout", json_integer(0));
        else if (block)
                json_object_set_new(args, "timeout", json_integer(-2));
        return 0;
}

int cli_print_agent_command(json_t *ret, const struct cli_opts *o)
{
        _cleanup_free_ char *text = NULL;

        if (o->json)
                return print_json_ret(ret);
        text = cli_json_libvirt(ret, cli_flag(o, "pretty"));
        if (text == NULL)
                return -1;
        printf("%s\n", text);
        end_line(o);
        return 0;
}

/* ---- set-user-password ---- */

int cli_args_set_user_password(json_t *args, const struct cli_opts *o)
{
        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        json_object_set_new(args, "user", json_string(o->pos[1]));
        json_object_set_new(args, "password", json_string(o->pos[2]));
        json_object_set_new(args, "encrypted", json_boolean(cli_flag(o, "encrypted")));
        return 0;
}

int cli_print_set_user_password(json_t *ret, const struct cli_opts *o)
{
        if (o->json)
                return print_json_ret(ret);
        if (!o->quiet)
                printf("Password set successfully for %s in %s", o->pos[1], o->pos[0]);
        end_line(o);
        return 0;
}

/* ---- interfaces: libvirt's qemuAgentGetInterfaces ---- */

/*
 * Merge the raw guest-network-get-interfaces array as libvirt does: "eth0:1" is an alias whose
 * addresses belong to eth0, the first entry of a name gives its hardware address, and every
 * address needs a type (ipv4/ipv6), an address and a prefix. Returns a new array of
 * {"name", "hwaddr"?, "addrs": [{"type", "addr", "prefix"}]}, or NULL after printing an error.
 */
static json_t *merge_interfaces(json_t *raw)
{
        _cleanup_json_ json_t *out = json_array();
        size_t i, j;
        json_t *itf, *ip;

        if (!json_is_array(raw)) {
                cli_error("internal error: qemu agent didn't return an array of interfaces");
                return NULL;
        }
        json_array_foreach(raw, i, itf) {
                const char *full = json_string_value(json_object_get(itf, "name"));
                const char *hw = json_string_value(json_object_get(itf, "hardware-address"));
                _cleanup_free_ char *name = NULL;
                json_t *entry = NULL, *e, *addrs;
                size_t k;

                if (full == NULL) {
                        cli_error("internal error: qemu agent didn't provide 'name' field");
                        return NULL;
                }
                name = strndup(full, strcspn(full, ":"));
                if (name == NULL)
                        return NULL;
                json_array_foreach(out, k, e)
                        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
                                entry = e;
                if (entry == NULL) {
                        entry = json_pack("{s:s, s:[]}", "name", name, "addrs");
                        if (entry == NULL)
                                return NULL;
                        if (hw)
                                json_object_set_new(entry, "hwaddr", json_string(hw));
                        json_array_append_new(out, entry);
                }
                addrs = json_object_get(entry, "addrs");
                json_array_foreach(json_object_get(itf, "ip-addresses"), j, ip) {
                        const char *type = json_string_value(json_object_get(ip, "ip-address-type"));
                        const char *addr = json_string_value(json_object_get(ip, "ip-address"));
                        json_t *prefix = json_object_get(ip, "prefix");

                        if (type == NULL) {
                                cli_error("internal error: qemu agent didn't provide "
                                          "'ip-address-type' field for interface '%s'", full);
                                return NULL;
                        }
                        if (addr == NULL) {
                                cli_error("internal error: qemu agent didn't provide "
                                          "'ip-address' field for interface '%s'", full);
                                return NULL;
                        }
                        if (!json_is_integer(prefix) || json_integer_value(prefix) < 0) {
                                cli_error("internal error: malformed 'prefix' field");
                                return NULL;
                        }
                        if (strcmp(type, "ipv4") != 0 && strcmp(type, "ipv6") != 0) {
                                cli_error("internal error: unknown ip address type '%s'", type);
                                return NULL;
                        }
                        json_array_append_new(addrs, json_pack("{s:s, s:s, s:O}", "type", type,
                                                               "addr", addr, "prefix", prefix));
                }
        }
        return steal_pointer(&out);
}

int cli_args_domifaddr(json_t *args, const struct cli_opts *o)
{
        const char *source = cli_flag_value(o, "source");

        if (source && strcmp(source, "lease") != 0 && strcmp(source, "arp") != 0 &&
            strcmp(source, "agent") != 0) {
                cli_error("Unknown data source '%s'", source);
                return -1;
        }
        if (source && strcmp(source, "agent") != 0) {
                cli_error("--source %s is not supported by tether: addresses come from the guest "
                          "agent only (--source agent)", source);
                return -1;
        }
        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        json_object_set_new(args, "source", json_string("agent"));
        return 0;
}

int cli_print_domifaddr(json_t *ret, const struct cli_opts *o)
{
        _cleanup_json_ json_t *ifaces = merge_interfaces(ret);
        const char *only = cli_flag_value(o, "interface");
        bool full = cli_flag(o, "full");
        size_t i, j;
        json_t *itf, *a;

        if (ifaces == NULL)
                return -1;
        if (o->json) {
                _cleanup_json_ json_t *shown = json_array();

                json_array_foreach(ifaces, i, itf)
                        if (only == NULL ||
                            strcmp(only, json_string_value(json_object_get(itf, "name"))) == 0)
                                json_array_append(shown, itf);
                cli_print_json(shown);
                return 0;
        }
        if (!o->quiet)
                printf(" %-10s %-20s %-8s     %s\n%s%s\n", "Name", "MAC address", "Protocol",
                       "Address", "-------------------------------------------------",
                       "------------------------------");
        json_array_foreach(ifaces, i, itf) {
                const char *name = json_string_value(json_object_get(itf, "name"));
                const char *hw = json_string_value(json_object_get(itf, "hwaddr"));
                json_t *addrs = json_object_get(itf, "addrs");

                if (only && strcmp(only, name) != 0)
                        continue;
                if (json_array_size(addrs) == 0) {
                        printf(" %-10s %-17s    %-12s %s\n", name, hw ? hw : "N/A", "N/A", "N/A");
                        continue;
                }
                json_array_foreach(addrs, j, a) {
                        char cell[128];

                        snprintf(cell, sizeof(cell), "%-12s %s/%lld",
                                 json_string_value(json_object_get(a, "type")),
                                 json_string_value(json_object_get(a, "addr")),
                                 (long long)json_integer_value(json_object_get(a, "prefix")));
                        /* Without --full, an interface's further addresses show "-". */
                        if (full || j == 0)
                                printf(" %-10s %-17s    %s\n", name, hw ? hw : "", cell);
                        else
                                printf(" %-10s %-17s    %s\n", "-", "-", cell);
                }
        }
        end_line(o);
        return 0;
}

/* ---- domtime ---- */

int cli_args_domtime(json_t *args, const struct cli_opts *o)
{
        bool now = cli_flag(o, "now"), sync = cli_flag(o, "sync");
        const char *t = cli_flag_value(o, "time");
        int64_t secs = 0;

        if (exclusive(o, "time", t != NULL, "now", now) < 0 ||
            exclusive(o, "time", t != NULL, "sync", sync) < 0 ||
            exclusive(o, "now", now, "sync", sync) < 0)
                return -1;
        if (t && tt_parse_int64(t, 10, &secs) < 0) {
                cli_error("Numeric value '%s' for <time> option is malformed or out of range", t);
                return -1;
        }
        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        if (now)
                secs = (int64_t)time(NULL);
        if (now || t)
                json_object_set_new(args, "time", json_integer(secs));
        if (sync)
                json_object_set_new(args, "sync", json_true());
        return 0;
}

int cli_print_domtime(json_t *ret, const struct cli_opts *o)
{
        bool set = cli_flag(o, "now") || cli_flag(o, "sync") || has_value(o, "time");
        json_t *secs = json_object_get(ret, "seconds");

        if (o->json)
                return print_json_ret(ret);
        if (set) {
                end_line(o);
                return 0;
        }
        if (!json_is_integer(secs)) {
                cli_error("internal error: malformed reply: no 'seconds'");
                return -1;
        }
        if (cli_flag(o, "pretty")) {
                time_t when = (time_t)json_integer_value(secs);
                struct tm tm;
                char buf[64];

                /* virsh formats the guest's time in UTC (g_date_time_new_from_unix_utc). */
                if (gmtime_r(&when, &tm) == NULL ||
                    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
                        cli_error("cannot format time %lld", (long long)when);
                        return -1;
                }
                printf("Time: %s", buf);
        } else {
                printf("Time: %lld", (long long)json_integer_value(secs));
        }
        end_line(o);
        return 0;
}

/* ---- domfsfreeze, domfsthaw, domfstrim ---- */

int cli_args_fsfreeze(json_t *args, const struct cli_opts *o)
{
        _cleanup_json_ json_t *mps = cli_flag_values(o, "mountpoint");

        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        if (mps && json_array_size(mps) > 0)
                json_object_set(args, "mountpoints", mps);
        return 0;
}

static int print_fs_count(json_t *ret, const struct cli_opts *o, const char *verb)
{
        if (o->json)
                return print_json_ret(ret);
        printf("%s %lld filesystem(s)\n", verb,
               (long long)json_integer_value(json_object_get(ret, "count")));
        end_line(o);
        return 0;
}

int cli_print_fsfreeze(json_t *ret, const struct cli_opts *o)
{
        return print_fs_count(ret, o, "Froze");
}

int cli_print_fsthaw(json_t *ret, const struct cli_opts *o)
{
        return print_fs_count(ret, o, "Thawed");
}

int cli_args_domfstrim(json_t *args, const struct cli_opts *o)
{
        const char *min = cli_flag_value(o, "minimum"), *mp = cli_flag_value(o, "mountpoint");
        int64_t m;

        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        if (min && tt_parse_int64(min, 10, &m) == 0)
                json_object_set_new(args, "minimum", json_integer(m));
        if (mp)
                json_object_set_new(args, "mountpoint", json_string(mp));
        return 0;
}

/* Verbs that print nothing on success (domfstrim, setvcpus, set-user-sshkeys, ...). */
int cli_print_quiet_ok(json_t *ret, const struct cli_opts *o)
{
        if (o->json)
                return print_json_ret(ret);
        end_line(o);
        return 0;
}

/* ---- filesystems and disks: libvirt's qemuAgentGetFSInfo / qemuAgentGetDisks ---- */

/*
 * The domain's target name (libvirt's virDomainDiskByAddress -> dst) of a disk address that the
 * agent reported. tetherd may put it in "target"; without it, the guest's device name stands in
 * (/dev/vda -> vda), which is the same for virtio and SCSI disks of a Linux guest.
 */
static const char *disk_target(json_t *addr)
{
        const char *t = json_string_value(json_object_get(addr, "target-dev"));
        const char *dev = json_string_value(json_object_get(addr, "dev"));
        const char *slash;

        if (t)
                return t;
        if (dev == NULL || strncmp(dev, "/dev/", 5) != 0)
                return NULL;
        slash = strrchr(dev, '/');
        return slash[1] ? slash + 1 : NULL;
}

/* guest-get-fsinfo lists the newest mount first; libvirt reverses it into mount order. */
static json_t *fs_in_mount_order(json_t *raw)
{
        json_t *out = json_array();
        size_t n = json_array_size(raw);

        for (size_t i = 0; out && i < n; i++)
                json_array_append(out, json_array_get(raw, n - 1 - i));
        return out;
}

int cli_print_domfsinfo(json_t *ret, const struct cli_opts *o)
{
        _cleanup_json_ json_t *fss = fs_in_mount_order(ret);
        _cleanup_json_ json_t *rows = json_array();
        struct cli_table t;
        const char *head[] = {"Mountpoint", "Name", "Type", "Target"};
        size_t i, j;
        json_t *fs, *d;

        if (!json_is_array(ret) || fss == NULL || rows == NULL) {
                cli_error("internal error: qemu agent didn't return an array of filesystems");
                return -1;
        }
        json_array_foreach(fss, i, fs) {
                json_t *targets = json_array();

                json_array_foreach(json_object_get(fs, "disk"), j, d)
                        if (disk_target(d))
                                json_array_append_new(targets, json_string(disk_target(d)));
                json_array_append_new(rows, json_pack("{s:O?, s:O?, s:O?, s:o}", "mountpoint",
                                                      json_object_get(fs, "mountpoint"), "name",
                                                      json_object_get(fs, "name"), "type",
                                                      json_object_get(fs, "type"), "targets",
                                                      targets));
        }
        if (o->json) {
                cli_print_json(rows);
                return 0;
        }
        if (json_array_size(rows) == 0) {
                cli_error("No filesystems are mounted in the domain");
                return -1;
        }
        cli_table_init(&t, 4, head);
        json_array_foreach(rows, i, fs) {
                char targets[1024] = "";
                size_t len = 0;

                json_array_foreach(json_object_get(fs, "targets"), j, d) {
                        int n = snprintf(targets + len, sizeof(targets) - len, "%s%s",
                                         j ? "," : "", json_string_value(d));

                        if (n < 0 || (size_t)n >= sizeof(targets) - len)
                                break;
                        len += (size_t)n;
                }
                const char *cells[] = {json_string_value(json_object_get(fs, "mountpoint")),
                                       json_string_value(json_object_get(fs, "name")),
                                       json_string_value(json_object_get(fs, "type")), targets};
                cli_table_add(&t, cells);
        }
        cli_table_print(&t, o->quiet);
        cli_table_free(&t);
        return 0;
}

/* ---- guestinfo: libvirt's typed parameters, in qemuDomainGetGuestInfo's order ---- */

/* Add one typed parameter; the JSON type (integer, bool, string) stands for libvirt's. */
static void param(json_t *params, json_t *value, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void param(json_t *params, json_t *value, const char *fmt, ...)
{
        char key[80]; /* VIR_TYPED_PARAM_FIELD_LENGTH */
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(key, sizeof(key), fmt, ap);
        va_end(ap);
        json_object_set_new(params, key, value);
}

static int info_users(json_t *p, json_t *raw)
{
        size_t i;
        json_t *u;

        param(p, json_integer((json_int_t)json_array_size(raw)), "user.count");
        json_array_foreach(raw, i, u) {
                const char *name = json_string_value(json_object_get(u, "user"));
                const char *domain = json_string_value(json_object_get(u, "domain"));
                json_t *login = json_object_get(u, "login-time");

                if (name == NULL) {
                        cli_error("internal error: 'user' missing in reply of guest-get-users");
                        return -1;
                }
                param(p, json_string(name), "user.%zu.name", i);
                if (domain)
                        param(p, json_string(domain), "user.%zu.domain", i);
                if (!json_is_number(login)) {
                        cli_error("internal error: 'login-time' missing in reply of "
                                  "guest-get-users");
                        return -1;
                }
                /* Seconds (a double) to milliseconds, truncated as libvirt's cast does. */
                param(p, json_integer((json_int_t)(unsigned long long)(json_number_value(login) * 1000)),
                      "user.%zu.login-time", i);
        }
        return 0;
}

static int info_os(json_t *p, json_t *raw)
{
        static const char *const keys[][2] = {
                {"id", "os.id"},
                {"name", "os.name"},
                {"pretty-name", "os.pretty-name"},
                {"version", "os.version"},
                {"version-id", "os.version-id"},
                {"machine", "os.machine"},
                {"variant", "os.variant"},
                {"variant-id", "os.variant-id"},
                {"kernel-release", "os.kernel-release"},
                {"kernel-version", "os.kernel-version"},
        };

        for (size_t i = 0; i < TT_ARRAY_SIZE(keys); i++) {
                const char *v = json_string_value(json_object_get(raw, keys[i][0]));

                if (v)
                        param(p, json_string(v), "%s", keys[i][1]);
        }
        return 0;
}

static int info_timezone(json_t *p, json_t *raw)
{
        const char *zone = json_string_value(json_object_get(raw, "zone"));
        json_t *offset = json_object_get(raw, "offset");

        if (zone)
                param(p, json_string(zone), "timezone.name");
        if (!json_is_integer(offset)) {
                cli_error("internal error: 'offset' missing in reply of guest-get-timezone");
                return -1;
        }
        param(p, json_integer(json_integer_value(offset)), "timezone.offset");
        return 0;
}

static int info_hostname(json_t *p, json_t *raw)
{
        const char *name = json_string_value(json_object_get(raw, "host-name"));

        if (name == NULL) {
                cli_error("internal error: 'host-name' missing in guest-get-host-name reply");
                return -1;
        }
        param(p, json_string(name), "hostname");
        return 0;
}

static int info_filesystems(json_t *p, json_t *raw)
{
        _cleanup_json_ json_t *fss = fs_in_mount_order(raw);
        size_t i, j;
        json_t *fs, *d;

        /* libvirt 9.0 formats filesystems only when there is one (no "fs.count : 0"). */
        if (json_array_size(fss) == 0)
                return 0;
        param(p, json_integer((json_int_t)json_array_size(fss)), "fs.count");
        json_array_foreach(fss, i, fs) {
                json_t *v;

                param(p, json_incref(json_object_get(fs, "name")) ?: json_string(""),
                      "fs.%zu.name", i);
                param(p, json_incref(json_object_get(fs, "mountpoint")) ?: json_string(""),
                      "fs.%zu.mountpoint", i);
                param(p, json_incref(json_object_get(fs, "type")) ?: json_string(""),
                      "fs.%zu.fstype", i);
                /* Usage is left out when an older agent does not report it. */
                if (json_is_integer(v = json_object_get(fs, "total-bytes")))
                        param(p, json_incref(v), "fs.%zu.total-bytes", i);
                if (json_is_integer(v = json_object_get(fs, "used-bytes")))
                        param(p, json_incref(v), "fs.%zu.used-bytes", i);
                param(p, json_integer((json_int_t)json_array_size(json_object_get(fs, "disk"))),
                      "fs.%zu.disk.count", i);
                json_array_foreach(json_object_get(fs, "disk"), j, d) {
                        const char *s;

                        if ((s = disk_target(d)))
                                param(p, json_string(s), "fs.%zu.disk.%zu.alias", i, j);
                        if ((s = json_string_value(json_object_get(d, "serial"))))
                                param(p, json_string(s), "fs.%zu.disk.%zu.serial", i, j);
                        if ((s = json_string_value(json_object_get(d, "dev"))))
                                param(p, json_string(s), "fs.%zu.disk.%zu.device", i, j);
                }
        }
        return 0;
}

static int info_disks(json_t *p, json_t *raw)
{
        size_t i, j;
        json_t *d, *dep;

        /* The same for disks: nothing at all when the guest reports none. */
        if (json_array_size(raw) == 0)
                return 0;
        param(p, json_integer((json_int_t)json_array_size(raw)), "disk.count");
        json_array_foreach(raw, i, d) {
                json_t *deps = json_object_get(d, "dependencies");
                json_t *addr = json_object_get(d, "address");
                const char *s;

                if (!json_is_string(json_object_get(d, "name"))) {
                        cli_error("internal error: 'name' missing in reply of guest-get-disks");
                        return -1;
                }
                if (!json_is_boolean(json_object_get(d, "partition"))) {
                        cli_error("internal error: 'partition' missing in reply of "
                                  "guest-get-disks");
                        return -1;
                }
                param(p, json_incref(json_object_get(d, "name")), "disk.%zu.name", i);
                param(p, json_incref(json_object_get(d, "partition")), "disk.%zu.partition", i);
                if (json_array_size(deps) > 0) {
                        param(p, json_integer((json_int_t)json_array_size(deps)),
                              "disk.%zu.dependency.count", i);
                        json_array_foreach(deps, j, dep)
                                param(p, json_incref(dep), "disk.%zu.dependency.%zu.name", i, j);
                }
                if (json_is_object(addr)) {
                        if ((s = json_string_value(json_object_get(addr, "serial"))))
                                param(p, json_string(s), "disk.%zu.serial", i);
                        if ((s = disk_target(addr)))
                                param(p, json_string(s), "disk.%zu.alias", i);
                }
                if ((s = json_string_value(json_object_get(d, "alias"))))
                        param(p, json_string(s), "disk.%zu.guest_alias", i);
        }
        return 0;
}

static int info_interfaces(json_t *p, json_t *raw)
{
        _cleanup_json_ json_t *ifaces = merge_interfaces(raw);
        size_t i, j;
        json_t *itf, *a;

        if (ifaces == NULL)
                return -1;
        param(p, json_integer((json_int_t)json_array_size(ifaces)), "if.count");
        json_array_foreach(ifaces, i, itf) {
                json_t *addrs = json_object_get(itf, "addrs");

                param(p, json_incref(json_object_get(itf, "name")), "if.%zu.name", i);
                if (json_object_get(itf, "hwaddr"))
                        param(p, json_incref(json_object_get(itf, "hwaddr")), "if.%zu.hwaddr", i);
                param(p, json_integer((json_int_t)json_array_size(addrs)), "if.%zu.addr.count", i);
                json_array_foreach(addrs, j, a) {
                        param(p, json_incref(json_object_get(a, "type")), "if.%zu.addr.%zu.type",
                              i, j);
                        param(p, json_incref(json_object_get(a, "addr")), "if.%zu.addr.%zu.addr",
                              i, j);
                        param(p, json_incref(json_object_get(a, "prefix")),
                              "if.%zu.addr.%zu.prefix", i, j);
                }
        }
        return 0;
}

/* The groups in libvirt's order: the daemon's key, the option, and the conversion. */
static const struct {
        const char *key;                      /* member of the daemon's reply and option name */
        int (*convert)(json_t *p, json_t *raw); /* raw QGA return -> typed parameters */
} info_groups[] = {
        {"user", info_users},           {"os", info_os},
        {"timezone", info_timezone},    {"hostname", info_hostname},
        {"filesystem", info_filesystems}, {"disk", info_disks},
        {"interface", info_interfaces},
};

int cli_args_guestinfo(json_t *args, const struct cli_opts *o)
{
        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        for (size_t i = 0; i < TT_ARRAY_SIZE(info_groups); i++)
                if (cli_flag(o, info_groups[i].key))
                        json_object_set_new(args, info_groups[i].key, json_true());
        return 0;
}

int cli_print_guestinfo(json_t *ret, const struct cli_opts *o)
{
        _cleanup_json_ json_t *p = json_object();
        const char *key;
        json_t *v;

        for (size_t i = 0; i < TT_ARRAY_SIZE(info_groups); i++) {
                json_t *raw = json_object_get(ret, info_groups[i].key);

                if (raw && info_groups[i].convert(p, raw) < 0)
                        return -1;
        }
        if (o->json) {
                cli_print_json(p);
                return 0;
        }
        json_object_foreach(p, key, v) {
                /* virsh's vshGetTypedParamValue: numbers, yes/no, strings. */
                if (json_is_integer(v))
                        printf("%-20s: %lld\n", key, (long long)json_integer_value(v));
                else if (json_is_boolean(v))
                        printf("%-20s: %s\n", key, json_is_true(v) ? "yes" : "no");
                else
                        printf("%-20s: %s\n", key, json_string_value(v) ?: "");
        }
        end_line(o);
        return 0;
}

/* ---- guestvcpus, setvcpus --guest ---- */

int cli_args_guestvcpus(json_t *args, const struct cli_opts *o)
{
        bool enable = cli_flag(o, "enable"), disable = cli_flag(o, "disable");
        const char *list = cli_flag_value(o, "cpulist");

        if (exclusive(o, "enable", enable, "disable", disable) < 0 ||
            requires("enable", enable, "cpulist", list != NULL) < 0 ||
            requires("disable", disable, "cpulist", list != NULL) < 0)
                return -1;
        if (list && !enable && !disable) {
                cli_error("One of options --enable or --disable is required by option --cpulist");
                return -1;
        }
        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        if (list) {
                json_object_set_new(args, "cpulist", json_string(list));
                json_object_set_new(args, enable ? "enable" : "disable", json_true());
        }
        return 0;
}

/* libvirt's virBitmapFormat of the logical-ids whose member is true (all when member NULL). */
static char *vcpu_bitmap(json_t *vcpus, const char *member)
{
        char *buf = NULL;
        size_t size = 0, i;
        FILE *f = open_memstream(&buf, &size);
        int64_t ids[4096];
        size_t n = 0;
        json_t *v;

        if (f == NULL)
                return NULL;
        json_array_foreach(vcpus, i, v) {
                json_t *id = json_object_get(v, "logical-id");

                if (n < TT_ARRAY_SIZE(ids) && json_is_integer(id) &&
                    (member == NULL || json_is_true(json_object_get(v, member))))
                        ids[n++] = json_integer_value(id);
        }
        /* Sort (insertion: at most a few thousand vCPUs) and drop duplicates. */
        for (size_t a = 1; a < n; a++)
                for (size_t b = a; b > 0 && ids[b - 1] > ids[b]; b--) {
                        int64_t t = ids[b];

                        ids[b] = ids[b - 1];
                        ids[b - 1] = t;
                }
        for (size_t a = 0; a < n;) {
                size_t b = a;

                while (b + 1 < n && ids[b + 1] <= ids[b] + 1)
                        b++;
                fprintf(f, "%s%lld", a ? "," : "", (long long)ids[a]);
                if (ids[b] != ids[a])
                        fprintf(f, "-%lld", (long long)ids[b]);
                a = b + 1;
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

int cli_print_guestvcpus(json_t *ret, const struct cli_opts *o)
{
        _cleanup_free_ char *all = NULL, *online = NULL, *offlinable = NULL;

        if (has_value(o, "cpulist"))
                return cli_print_quiet_ok(ret, o);
        all = vcpu_bitmap(ret, NULL);
        online = vcpu_bitmap(ret, "online");
        offlinable = vcpu_bitmap(ret, "can-offline");
        if (all == NULL || online == NULL || offlinable == NULL)
                return -1;
        if (o->json) {
                json_t *j = json_pack("{s:s, s:s, s:s}", "vcpus", all, "online", online,
                                      "offlinable", offlinable);

                cli_print_json(j);
                json_decref(j);
                return 0;
        }
        printf("%-15s: %s\n", "vcpus", all);
        printf("%-15s: %s\n", "online", online);
        printf("%-15s: %s\n", "offlinable", offlinable);
        end_line(o);
        return 0;
}

int cli_args_setvcpus(json_t *args, const struct cli_opts *o)
{
        bool guest = cli_flag(o, "guest"), config = cli_flag(o, "config");
        bool live = cli_flag(o, "live"), current = cli_flag(o, "current");
        int64_t count;

        if (exclusive(o, "current", current, "live", live) < 0 ||
            exclusive(o, "current", current, "config", config) < 0 ||
            exclusive(o, "guest", guest, "config", config) < 0 ||
            exclusive(o, "hotpluggable", cli_flag(o, "hotpluggable"), "guest", guest) < 0 ||
            requires("maximum", cli_flag(o, "maximum"), "config", config) < 0)
                return -1;
        if (tt_parse_int64(o->pos[1], 10, &count) < 0 || count < 0 || count > UINT32_MAX) {
                cli_error("Numeric value '%s' for <count> option is malformed or out of range",
                          o->pos[1]);
                return -1;
        }
        if (count == 0) {
                cli_error("Can't set 0 processors for a VM");
                return -1;
        }
        if (!guest) {
                cli_error("only --guest is supported by tether's setvcpus (the guest agent "
                          "takes vCPUs on- and offline; vCPU hotplug is not implemented)");
                return -1;
        }
        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        json_object_set_new(args, "count", json_integer(count));
        json_object_set_new(args, "guest", json_true());
        return 0;
}

/* ---- ssh keys ---- */

int cli_args_get_sshkeys(json_t *args, const struct cli_opts *o)
{
        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        json_object_set_new(args, "user", json_string(o->pos[1]));
        return 0;
}

int cli_print_get_sshkeys(json_t *ret, const struct cli_opts *o)
{
        json_t *keys = json_object_get(ret, "keys");
        size_t i, n = json_array_size(keys);
        json_t *k;

        if (!json_is_array(keys)) {
                cli_error("internal error: qemu agent didn't return an array of keys");
                return -1;
        }
        if (o->json)
                return print_json_ret(ret);
        /*
         * One key per line. virsh 9.0 prints the keys with nothing between them (a bug, fixed
         * later); for no key or one key the output is the same byte for byte.
         */
        json_array_foreach(keys, i, k)
                printf("%s%s", json_string_value(k) ?: "", i + 1 < n ? "\n" : "");
        end_line(o);
        return 0;
}

int cli_args_set_sshkeys(json_t *args, const struct cli_opts *o)
{
        const char *file = cli_flag_value(o, "file");
        bool reset = cli_flag(o, "reset"), remove = cli_flag(o, "remove");
        _cleanup_free_ char *text = NULL;
        struct tt_error err = {0};
        json_t *keys;
        size_t len = 0;

        if (requires("remove", remove, "file", file != NULL) < 0)
                return -1;
        if (file == NULL && !reset) {
                cli_error("Option --file is required");
                return -1;
        }
        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        json_object_set_new(args, "user", json_string(o->pos[1]));
        json_object_set_new(args, "reset", json_boolean(reset));
        json_object_set_new(args, "remove", json_boolean(remove));
        if (file == NULL)
                return 0;
        if (tt_read_file(file, 10 << 20, &text, &len, &err) < 0) {
                cli_error("Failed to open file '%s': %s", file, strerror(err.code ? err.code : EIO));
                tt_error_clear(&err);
                return -1;
        }
        /* g_strsplit(text, "\n", -1): every line, the empty last one too, none for "". */
        keys = json_array();
        json_object_set_new(args, "keys", keys);
        for (char *line = text; len > 0;) {
                char *nl = strchr(line, '\n');

                json_array_append_new(keys, json_stringn(line, nl ? (size_t)(nl - line)
                                                                  : strlen(line)));
                if (nl == NULL)
                        break;
                line = nl + 1;
        }
        if (json_array_size(keys) == 0) {
                cli_error("File %s contains no keys", file);
                return -1;
        }
        return 0;
}

/* ---- dompmsuspend, dompmwakeup ---- */

int cli_args_pmsuspend(json_t *args, const struct cli_opts *o)
{
        const char *target = o->pos[1];
        const char *dur = cli_flag_value(o, "duration");
        int64_t d;

        if (strcmp(target, "mem") != 0 && strcmp(target, "disk") != 0 &&
            strcmp(target, "hybrid") != 0) {
                cli_error("Invalid target");
                return -1;
        }
        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        json_object_set_new(args, "target", json_string(target));
        if (dur && tt_parse_int64(dur, 10, &d) == 0)
                json_object_set_new(args, "duration", json_integer(d));
        return 0;
}

int cli_print_pmsuspend(json_t *ret, const struct cli_opts *o)
{
        if (o->json)
                return print_json_ret(ret);
        if (!o->quiet)
                printf("Domain '%s' successfully suspended", o->pos[0]);
        end_line(o);
        return 0;
}

int cli_print_pmwakeup(json_t *ret, const struct cli_opts *o)
{
        if (o->json)
                return print_json_ret(ret);
        if (!o->quiet)
                printf("Domain '%s' successfully woken up", o->pos[0]);
        end_line(o);
        return 0;
}
