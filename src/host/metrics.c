/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "host/metrics.h"
#include "host/web_parse.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "host/guest.h"
#include "host/monitor.h"
#include "host/tetherd.h"
#include "host/vm.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A push that has no answer after this long failed (the next round tries again). */
#define PUSH_TIMEOUT_S 5
/* How long tetherd's exit waits for the DELETE of its group. */
#define PUSH_DELETE_WAIT_MS 2000
/* A scraper that sends nothing for this long is disconnected. */
#define HTTP_TIMEOUT_S 30
/* A scrape request has no body, and its headers are small. */
#define HTTP_MAX_HEADERS 8192
#define HTTP_MAX_BODY 0
/* Elements of one guest array (filesystems, interfaces, disks, cpus) rendered per family. */
#define METRICS_MAX_ELEMENTS 1024

_Static_assert(VM_STATE_RUNNING == 1 && VM_STATE_PAUSED == 3 && VM_STATE_SHUTOFF == 5 &&
                       VM_STATE_PMSUSPENDED == 7 && VM_STATE_DYING == 8,
               "tether_domain_state carries libvirt's numbers: enum vm_state must keep them");

enum push_state {
        PUSH_UNKNOWN, /* nothing pushed yet */
        PUSH_OK,      /* the last push succeeded */
        PUSH_FAILING, /* the last push failed (logged once when it started failing) */
};

struct metrics {
        struct tetherd *d;                  /* the daemon */
        struct evhttp *http;                /* the /metrics server, NULL without a listener */
        /* the Pushgateway */
        char *push_target;                  /* http://HOST[:PORT]PATH, for log lines */
        char *push_host;                    /* its numeric address */
        ev_uint16_t push_port;              /* its port */
        char *push_host_header;             /* Host: as the URL gave it */
        char *push_path;                    /* PREFIX/metrics/job/tether/instance/HOSTNAME */
        struct evhttp_connection *push_conn; /* kept between pushes */
        bool push_inflight;                 /* a request runs: later rounds are skipped */
        enum evhttp_request_error push_err; /* why the running request failed, if it did */
        bool push_err_set;                  /* push_err is meaningful */
        enum push_state push_state;         /* for logging state changes only */
        bool delete_done;                   /* the DELETE finished (any outcome) */
        int delete_code;                    /* its HTTP status, 0 when there was none */
};

/* ---- rendering ---- */

/* The text being built, and the family whose samples are written now. */
struct render {
        FILE *f;                       /* memstream of the whole text */
        const struct family *fam;      /* the current family */
        bool header;                   /* its HELP and TYPE lines are out */
        char **seen;                   /* label sets written for the current domain and family */
        size_t n_seen;                 /* entries in seen */
};

typedef void (*family_fn)(struct render *r, const struct family *f, struct vm *vm);

/*
 * One metric family. Without fn, the value is read from the domain's sample of src: from its
 * object (no labels), or from each element of an array with labels taken from the element.
 */
struct family {
        const char *name;          /* tether_... */
        const char *type;          /* "gauge" or "counter" */
        const char *help;          /* the HELP text */
        enum monitor_source src;   /* where the value comes from */
        const char *array;         /* key of the array in the data object; NULL: data itself */
        const char *labels[2];     /* label names for array elements (labels[0] NULL: scalar) */
        const char *label_keys[2]; /* the element keys the label values come from */
        const char *object;        /* the value sits in this sub-object, or NULL */
        const char *key;           /* the value's key */
        double scale;              /* multiply the value by this; 0 means 1 */
        const char *const *modes;  /* custom families: (json key, label value) pairs, NULL-ended */
        family_fn fn;              /* a custom writer (called per domain, or once with NULL) */
        bool once;                 /* fn is called once, not per domain */
};

static void put_escaped(FILE *f, const char *s)
{
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '"')
                        fputs("\\\"", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

/* Numbers as Prometheus reads them back: integers exactly, others in the fewest digits. */
static void put_double(FILE *f, double v)
{
        char buf[64];

        if (isnan(v)) {
                fputs("NaN", f);
                return;
        }
        if (isinf(v)) {
                fputs(v > 0 ? "+Inf" : "-Inf", f);
                return;
        }
        if (v == floor(v) && fabs(v) < 1e15) {
                fprintf(f, "%.0f", v);
                return;
        }
        snprintf(buf, sizeof(buf), "%.15g", v);
        if (strtod(buf, NULL) != v)
                snprintf(buf, sizeof(buf), "%.17g", v);
        fputs(buf, f);
}

static void header(struct render *r)
{
        const struct family *f = r->fam;

        if (r->header)
                return;
        r->header = true;
        fprintf(r->f, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
}

/* A series' name and labels; labels is a NULL-ended list of name, value pairs. */
static void put_series(struct render *r, const char *const *labels)
{
        header(r);
        fputs(r->fam->name, r->f);
        if (labels && labels[0]) {
                fputc('{', r->f);
                for (size_t i = 0; labels[i]; i += 2) {
                        fprintf(r->f, "%s%s=\"", i ? "," : "", labels[i]);
                        put_escaped(r->f, labels[i + 1] ? labels[i + 1] : "");
                        fputc('"', r->f);
                }
                fputc('}', r->f);
        }
        fputc(' ', r->f);
}

static void sample(struct render *r, const char *const *labels, double v)
{
        put_series(r, labels);
        put_double(r->f, v);
        fputc('\n', r->f);
}

/* The same with an exact integer value. */
static void sample_int(struct render *r, const char *const *labels, json_int_t v)
{
        put_series(r, labels);
        fprintf(r->f, "%lld\n", (long long)v);
}

static void seen_reset(struct render *r)
{
        for (size_t i = 0; i < r->n_seen; i++)
                free(r->seen[i]);
        free(r->seen);
        r->seen = NULL;
        r->n_seen = 0;
}

/*
 * True the first time a label set shows up for this domain and family. A guest may list a
 * mountpoint twice (stacked mounts; fsinfo lists the visible one first): a second sample with
 * the same labels would make Prometheus reject the whole scrape.
 */
static bool seen_first(struct render *r, const char *key)
{
        char **grown;

        for (size_t i = 0; i < r->n_seen; i++)
                if (strcmp(r->seen[i], key) == 0)
                        return false;
        grown = reallocarray(r->seen, r->n_seen + 1, sizeof(*grown));
        if (grown == NULL)
                return false;
        r->seen = grown;
        r->seen[r->n_seen] = strdup(key);
        if (r->seen[r->n_seen] == NULL)
                return false;
        r->n_seen++;
        return true;
}

static const char *vm_name(const struct vm *vm)
{
        return vm->def->name;
}

/* The data of a source, or NULL when the domain is not polled or has none yet. */
static json_t *source_data(const struct vm *vm, enum monitor_source s)
{
        const struct monitor_sample *sm = monitor_sample(vm, s);

        return sm ? sm->data : NULL;
}

/* A label value from a JSON string or integer into buf; NULL for anything else. */
static const char *label_value(json_t *v, char *buf, size_t size)
{
        if (json_is_string(v))
                return json_string_value(v);
        if (json_is_integer(v)) {
                snprintf(buf, size, "%lld", (long long)json_integer_value(v));
                return buf;
        }
        return NULL;
}

/*
 * Write the value at [object.]key of obj. Missing, non-numeric and negative values are left
 * out: QEMU's balloon reports -1 for a statistic the guest does not give.
 */
static void write_value(struct render *r, const struct family *f, json_t *obj,
                        const char *const *labels)
{
        json_t *v;
        double scale = f->scale != 0 ? f->scale : 1;

        if (f->object)
                obj = json_object_get(obj, f->object);
        v = json_object_get(obj, f->key);
        if (json_is_integer(v) && scale == 1) {
                if (json_integer_value(v) >= 0)
                        sample_int(r, labels, json_integer_value(v));
        } else if (json_is_number(v)) {
                if (json_number_value(v) >= 0)
                        sample(r, labels, json_number_value(v) * scale);
        }
}

static void write_table_family(struct render *r, const struct family *f, struct vm *vm)
{
        json_t *data = source_data(vm, f->src), *arr, *el;
        const char *name = vm_name(vm);
        size_t i;

        if (data == NULL)
                return;
        if (f->labels[0] == NULL) {
                const char *labels[] = {"domain", name, NULL};
                if (json_is_object(data))
                        write_value(r, f, data, labels);
                return;
        }
        arr = f->array ? json_object_get(data, f->array) : data;
        json_array_foreach(arr, i, el) {
                char b0[32], b1[32];
                _cleanup_free_ char *key = NULL;
                if (i >= METRICS_MAX_ELEMENTS)
                        break;
                const char *v0 = label_value(json_object_get(el, f->label_keys[0]), b0, sizeof(b0));
                const char *v1 = f->labels[1] ? label_value(json_object_get(el, f->label_keys[1]),
                                                            b1, sizeof(b1))
                                              : NULL;
                if (v0 == NULL || (f->labels[1] && v1 == NULL))
                        continue;
                if (asprintf(&key, "%s\x01%s", v0, v1 ? v1 : "") < 0)
                        break;
                if (!seen_first(r, key))
                        continue;
                const char *labels[] = {"domain", name, f->labels[0], v0, f->labels[1], v1, NULL};
                write_value(r, f, el, labels);
        }
        seen_reset(r);
}

/* ---- custom families ---- */

static void fam_up(struct render *r, const struct family *f, struct vm *vm)
{
        sample_int(r, NULL, 1);
}

static void fam_build_info(struct render *r, const struct family *f, struct vm *vm)
{
        const char *labels[] = {"version", TETHER_VERSION, NULL};

        sample_int(r, labels, 1);
}

static void fam_domain_info(struct render *r, const struct family *f, struct vm *vm)
{
        const char *labels[] = {"domain", vm_name(vm), "uuid", vm->def->uuid, "persistent",
                                vm->persistent ? "true" : "false", NULL};

        sample_int(r, labels, 1);
}

static void fam_domain_state(struct render *r, const struct family *f, struct vm *vm)
{
        const char *labels[] = {"domain", vm_name(vm), NULL};

        sample_int(r, labels, vm->status.state);
}

static void fam_domain_state_reason(struct render *r, const struct family *f, struct vm *vm)
{
        const char *labels[] = {"domain", vm_name(vm), NULL};

        sample_int(r, labels, vm->status.reason);
}

static void fam_domain_vcpus(struct render *r, const struct family *f, struct vm *vm)
{
        const char *labels[] = {"domain", vm_name(vm), NULL};

        if (vm->live)
                sample_int(r, labels, vm->live->vcpus);
}

/*
 * 1 while the agent answers: the guest has its port open, some guest source has data and none
 * is failing now (sources the agent lacks do not count). 0 without an agent channel.
 */
static void fam_agent_up(struct render *r, const struct family *f, struct vm *vm)
{
        const char *labels[] = {"domain", vm_name(vm), NULL};
        const struct domain *def = vm->live ? vm->live : vm->def;
        bool data = false, failing = false;

        if (!vm_state_is_active(vm->status.state) || monitor_sample(vm, MON_HOST) == NULL)
                return;
        if (def->n_channels > 0 && vm->guest && guest_connected(vm)) {
                for (enum monitor_source s = MON_HOST + 1; s < MON_SOURCE_LAST; s++) {
                        const struct monitor_sample *sm = monitor_sample(vm, s);
                        if (sm == NULL || sm->unsupported)
                                continue;
                        data = data || sm->data;
                        failing = failing || sm->failing;
                }
        }
        sample_int(r, labels, data && !failing);
}

/* node_exporter's node_cpu_seconds_total: one series per cpu and mode, from milliseconds. */
static void fam_cpu_modes(struct render *r, const struct family *f, struct vm *vm)
{
        json_t *data = source_data(vm, f->src), *el;
        size_t i;

        json_array_foreach(data, i, el) {
                char cpu[32];
                if (i >= METRICS_MAX_ELEMENTS)
                        break;
                if (label_value(json_object_get(el, "cpu"), cpu, sizeof(cpu)) == NULL)
                        continue;
                for (const char *const *m = f->modes; m[0]; m += 2) {
                        json_t *v = json_object_get(el, m[0]);
                        const char *labels[] = {"domain", vm_name(vm), "cpu", cpu, "mode", m[1],
                                                NULL};
                        if (json_is_number(v) && json_number_value(v) >= 0)
                                sample(r, labels, json_number_value(v) / 1000.0);
                }
        }
}

static void fam_users(struct render *r, const struct family *f, struct vm *vm)
{
        json_t *data = source_data(vm, MON_USERS);
        const char *labels[] = {"domain", vm_name(vm), NULL};

        if (json_is_array(data))
                sample_int(r, labels, (json_int_t)json_array_size(data));
}

static void fam_os_info(struct render *r, const struct family *f, struct vm *vm)
{
        json_t *data = source_data(vm, MON_OSINFO);
        const char *labels[] = {
                "domain",         vm_name(vm),
                "id",             json_string_value(json_object_get(data, "id")),
                "name",           json_string_value(json_object_get(data, "name")),
                "version_id",     json_string_value(json_object_get(data, "version-id")),
                "kernel_release", json_string_value(json_object_get(data, "kernel-release")),
                "machine",        json_string_value(json_object_get(data, "machine")),
                NULL,
        };

        if (json_is_object(data))
                sample_int(r, labels, 1);
}

static void fam_source_age(struct render *r, const struct family *f, struct vm *vm)
{
        for (enum monitor_source s = 0; s < MON_SOURCE_LAST; s++) {
                double age = monitor_age(vm, s);
                const char *labels[] = {"domain", vm_name(vm), "source", monitor_source_name(s),
                                        NULL};
                if (age >= 0)
                        sample(r, labels, age);
        }
}

static void fam_source_failing(struct render *r, const struct family *f, struct vm *vm)
{
        for (enum monitor_source s = 0; s < MON_SOURCE_LAST; s++) {
                const struct monitor_sample *sm = monitor_sample(vm, s);
                const char *labels[] = {"domain", vm_name(vm), "source", monitor_source_name(s),
                                        NULL};
                if (sm && (sm->data || sm->failing))
                        sample_int(r, labels, sm->failing);
        }
}

/* ---- the table ---- */

static const char *const cpu_modes[] = {
        "user", "user", "nice", "nice", "system", "system", "idle", "idle", "iowait", "iowait",
        "irq", "irq", "softirq", "softirq", "steal", "steal", NULL,
};
static const char *const cpu_guest_modes[] = {"guest", "user", "guestnice", "nice", NULL};

#define G "gauge"
#define C "counter"
/* A per-domain value at key of the source's object (or of its sub-object obj). */
#define SCALAR(n, t, h, s, obj, k, sc)                                                             \
        {.name = n, .type = t, .help = h, .src = s, .object = obj, .key = k, .scale = sc}
/* One value per element of the source's array (arr, or the data itself), labelled lab=elem[lk]. */
#define ARRAY(n, t, h, s, arr, lab, lk, obj, k, sc)                                                \
        {.name = n, .type = t, .help = h, .src = s, .array = arr, .labels = {lab, NULL},           \
         .label_keys = {lk, NULL}, .object = obj, .key = k, .scale = sc}
#define CUSTOM(n, t, h, f) {.name = n, .type = t, .help = h, .fn = f}
#define HOST_BLOCK(n, t, h, k, sc)                                                                 \
        ARRAY(n, t, h, MON_HOST, "block", "device", "device", NULL, k, sc)
#define HOST_NET(n, h, k) ARRAY(n, C, h, MON_HOST, "net", "device", "device", NULL, k, 1)
#define BALLOON(n, t, h, k) SCALAR(n, t, h, MON_HOST, "balloon", k, 1)
#define GUEST_IF(n, h, k)                                                                          \
        ARRAY(n, C, h, MON_INTERFACES, NULL, "interface", "name", "statistics", k, 1)
#define GUEST_DISK(n, h, k, sc) ARRAY(n, C, h, MON_DISKSTATS, NULL, "disk", "name", "stats", k, sc)

static const struct family families[] = {
        {.name = "tether_up", .type = G, .help = "1: tetherd answers.", .fn = fam_up, .once = true},
        {.name = "tether_build_info", .type = G, .help = "tetherd's version.",
         .fn = fam_build_info, .once = true},
        /* every defined domain, running or not */
        CUSTOM("tether_domain_info", G, "Domain identity: name, uuid, persistent.",
               fam_domain_info),
        CUSTOM("tether_domain_state", G,
               "Domain state in libvirt's numbers: 1 running, 2 blocked, 3 paused, 4 shutdown, "
               "5 shutoff, 6 crashed, 7 pmsuspended, 8 dying (Tether's own: signalled, not reaped).",
               fam_domain_state),
        CUSTOM("tether_domain_state_reason", G, "Reason code of the state, as libvirt's.",
               fam_domain_state_reason),
        /* the host side of running domains: QEMU over QMP, /proc */
        CUSTOM("tether_domain_vcpus", G, "Virtual CPUs the domain runs with.", fam_domain_vcpus),
        SCALAR("tether_domain_cpu_seconds_total", C, "CPU time of the QEMU process.", MON_HOST,
               NULL, "cpu_seconds", 1),
        SCALAR("tether_domain_cpu_user_seconds_total", C, "User CPU time of the QEMU process.",
               MON_HOST, NULL, "cpu_user_seconds", 1),
        SCALAR("tether_domain_cpu_system_seconds_total", C,
               "System CPU time of the QEMU process.", MON_HOST, NULL, "cpu_system_seconds", 1),
        ARRAY("tether_domain_vcpu_seconds_total", C, "CPU time of each vCPU thread.", MON_HOST,
              "vcpus", "vcpu", "vcpu", NULL, "seconds", 1),
        ARRAY("tether_domain_vcpu_wait_seconds_total", C,
              "Time each vCPU thread waited for a host CPU.", MON_HOST, "vcpus", "vcpu", "vcpu",
              NULL, "wait_seconds", 1),
        SCALAR("tether_domain_memory_rss_bytes", G, "Resident memory of the QEMU process.",
               MON_HOST, NULL, "rss_bytes", 1),
        SCALAR("tether_domain_memory_maximum_bytes", G, "Maximum memory of the domain.",
               MON_HOST, NULL, "max_memory_bytes", 1),
        SCALAR("tether_domain_memory_current_bytes", G,
               "Current memory of the domain (after ballooning).", MON_HOST, NULL,
               "current_memory_bytes", 1),
        HOST_BLOCK("tether_domain_block_read_bytes_total", C, "Bytes read from a disk.",
                   "rd_bytes", 1),
        HOST_BLOCK("tether_domain_block_write_bytes_total", C, "Bytes written to a disk.",
                   "wr_bytes", 1),
        HOST_BLOCK("tether_domain_block_read_requests_total", C, "Read requests to a disk.",
                   "rd_operations", 1),
        HOST_BLOCK("tether_domain_block_write_requests_total", C, "Write requests to a disk.",
                   "wr_operations", 1),
        HOST_BLOCK("tether_domain_block_flush_requests_total", C, "Flush requests to a disk.",
                   "flush_operations", 1),
        HOST_BLOCK("tether_domain_block_read_time_seconds_total", C,
                   "Time spent on reads from a disk.", "rd_total_time_ns", 1e-9),
        HOST_BLOCK("tether_domain_block_write_time_seconds_total", C,
                   "Time spent on writes to a disk.", "wr_total_time_ns", 1e-9),
        HOST_BLOCK("tether_domain_block_flush_time_seconds_total", C,
                   "Time spent on flushes of a disk.", "flush_total_time_ns", 1e-9),
        BALLOON("tether_domain_balloon_total_bytes", G,
                "Memory the guest sees, from the balloon driver.", "stat-total-memory"),
        BALLOON("tether_domain_balloon_free_bytes", G,
                "Memory left unused by the guest, from the balloon driver.", "stat-free-memory"),
        BALLOON("tether_domain_balloon_usable_bytes", G,
                "Memory the guest can use without swapping, from the balloon driver.",
                "stat-available-memory"),
        BALLOON("tether_domain_balloon_disk_caches_bytes", G,
                "Guest memory used by disk caches, from the balloon driver.", "stat-disk-caches"),
        BALLOON("tether_domain_balloon_swap_in_bytes_total", C,
                "Memory swapped in by the guest, from the balloon driver.", "stat-swap-in"),
        BALLOON("tether_domain_balloon_swap_out_bytes_total", C,
                "Memory swapped out by the guest, from the balloon driver.", "stat-swap-out"),
        BALLOON("tether_domain_balloon_major_faults_total", C,
                "Major page faults in the guest, from the balloon driver.", "stat-major-faults"),
        BALLOON("tether_domain_balloon_minor_faults_total", C,
                "Minor page faults in the guest, from the balloon driver.", "stat-minor-faults"),
        HOST_NET("tether_domain_interface_receive_bytes_total", "Bytes the guest received on a bridged interface (its tap).",
                 "rx_bytes"),
        HOST_NET("tether_domain_interface_receive_packets_total", "Packets the guest received on a bridged interface.",
                 "rx_packets"),
        HOST_NET("tether_domain_interface_receive_errors_total", "Receive errors of a bridged interface, the guest's side.",
                 "rx_errs"),
        HOST_NET("tether_domain_interface_receive_drops_total",
                 "Packets to the guest dropped on a bridged interface.",
                 "rx_drop"),
        HOST_NET("tether_domain_interface_transmit_bytes_total", "Bytes the guest sent on a bridged interface (its tap).",
                 "tx_bytes"),
        HOST_NET("tether_domain_interface_transmit_packets_total", "Packets the guest sent on a bridged interface.",
                 "tx_packets"),
        HOST_NET("tether_domain_interface_transmit_errors_total", "Transmit errors of a bridged interface, the guest's side.",
                 "tx_errs"),
        HOST_NET("tether_domain_interface_transmit_drops_total", "Packets from the guest dropped on a bridged interface.",
                 "tx_drop"),
        /* the guest side, through its agent (node_exporter's names) */
        CUSTOM("tether_guest_agent_up", G,
               "1: the guest agent answered the monitor's last calls; 0: failing or no channel.",
               fam_agent_up),
        SCALAR("tether_guest_memory_total_bytes", G, "MemTotal of the guest's /proc/meminfo.",
               MON_MEMORY, NULL, "total_bytes", 1),
        SCALAR("tether_guest_memory_available_bytes", G,
               "MemAvailable of the guest's /proc/meminfo.", MON_MEMORY, NULL, "available_bytes",
               1),
        SCALAR("tether_guest_memory_free_bytes", G, "MemFree of the guest's /proc/meminfo.",
               MON_MEMORY, NULL, "free_bytes", 1),
        SCALAR("tether_guest_load1", G, "Guest load average over 1 minute.", MON_LOAD, NULL,
               "load1m", 1),
        SCALAR("tether_guest_load5", G, "Guest load average over 5 minutes.", MON_LOAD, NULL,
               "load5m", 1),
        SCALAR("tether_guest_load15", G, "Guest load average over 15 minutes.", MON_LOAD, NULL,
               "load15m", 1),
        {.name = "tether_guest_cpu_seconds_total", .type = C,
         .help = "Seconds the guest's CPUs spent in each mode.", .src = MON_CPUSTATS,
         .modes = cpu_modes, .fn = fam_cpu_modes},
        {.name = "tether_guest_cpu_guest_seconds_total", .type = C,
         .help = "Seconds the guest's CPUs spent running nested guests.", .src = MON_CPUSTATS,
         .modes = cpu_guest_modes, .fn = fam_cpu_modes},
        GUEST_DISK("tether_guest_disk_read_bytes_total", "Bytes read from a guest disk.",
                   "read-sectors", 512),
        GUEST_DISK("tether_guest_disk_written_bytes_total", "Bytes written to a guest disk.",
                   "write-sectors", 512),
        GUEST_DISK("tether_guest_disk_reads_completed_total", "Reads completed on a guest disk.",
                   "read-ios", 1),
        GUEST_DISK("tether_guest_disk_writes_completed_total",
                   "Writes completed on a guest disk.", "write-ios", 1),
        GUEST_DISK("tether_guest_disk_read_time_seconds_total",
                   "Seconds spent reading from a guest disk.", "read-ticks", 1e-3),
        GUEST_DISK("tether_guest_disk_write_time_seconds_total",
                   "Seconds spent writing to a guest disk.", "write-ticks", 1e-3),
        GUEST_DISK("tether_guest_disk_io_time_seconds_total",
                   "Seconds a guest disk was busy.", "total-ticks", 1e-3),
        GUEST_IF("tether_guest_network_receive_bytes_total",
                 "Bytes received on a guest interface.", "rx-bytes"),
        GUEST_IF("tether_guest_network_receive_packets_total",
                 "Packets received on a guest interface.", "rx-packets"),
        GUEST_IF("tether_guest_network_receive_errs_total",
                 "Receive errors on a guest interface.", "rx-errs"),
        GUEST_IF("tether_guest_network_receive_drop_total",
                 "Received packets dropped on a guest interface.", "rx-dropped"),
        GUEST_IF("tether_guest_network_transmit_bytes_total", "Bytes sent on a guest interface.",
                 "tx-bytes"),
        GUEST_IF("tether_guest_network_transmit_packets_total",
                 "Packets sent on a guest interface.", "tx-packets"),
        GUEST_IF("tether_guest_network_transmit_errs_total",
                 "Transmit errors on a guest interface.", "tx-errs"),
        GUEST_IF("tether_guest_network_transmit_drop_total",
                 "Sent packets dropped on a guest interface.", "tx-dropped"),
        {.name = "tether_guest_filesystem_size_bytes", .type = G,
         .help = "Size of a guest filesystem (used plus available to users).",
         .src = MON_FILESYSTEMS, .labels = {"mountpoint", "fstype"},
         .label_keys = {"mountpoint", "type"}, .key = "total-bytes"},
        {.name = "tether_guest_filesystem_used_bytes", .type = G,
         .help = "Bytes used on a guest filesystem.", .src = MON_FILESYSTEMS,
         .labels = {"mountpoint", "fstype"}, .label_keys = {"mountpoint", "type"},
         .key = "used-bytes"},
        CUSTOM("tether_guest_users", G, "Users logged in to the guest.", fam_users),
        CUSTOM("tether_guest_os_info", G, "The guest's operating system.", fam_os_info),
        /* the monitor itself */
        CUSTOM("tether_monitor_source_age_seconds", G,
               "Seconds since the monitor last got this source's data.", fam_source_age),
        CUSTOM("tether_monitor_source_failing", G,
               "1: the monitor's last attempt at this source failed (its data is older).",
               fam_source_failing),
};

char *metrics_render(struct tetherd *d)
{
        struct render r = {0};
        char *text = NULL;
        size_t len = 0;

        r.f = open_memstream(&text, &len);
        if (r.f == NULL)
                return NULL;
        for (size_t i = 0; i < TT_ARRAY_SIZE(families); i++) {
                const struct family *f = &families[i];
                r.fam = f;
                r.header = false;
                if (f->once) {
                        f->fn(&r, f, NULL);
                        continue;
                }
                for (struct vm *vm = d->vms; vm; vm = vm->next) {
                        if (f->fn)
                                f->fn(&r, f, vm);
                        else
                                write_table_family(&r, f, vm);
                }
        }
        seen_reset(&r);
        if (fclose(r.f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

/* ---- the HTTP server ---- */

static struct metrics *metrics_of(struct tetherd *d)
{
        if (d->metrics == NULL) {
                d->metrics = calloc(1, sizeof(*d->metrics));
                if (d->metrics)
                        d->metrics->d = d;
        }
        return d->metrics;
}

static void free_text(const void *data, size_t len, void *extra)
{
        free((void *)data);
}

/* Hand the rendered text to an evbuffer without copying it; false when out of memory. */
static bool add_text(struct evbuffer *buf, char *text)
{
        if (text == NULL)
                return false;
        if (evbuffer_add_reference(buf, text, strlen(text), free_text, NULL) < 0) {
                free(text);
                return false;
        }
        return true;
}

static void http_request(struct evhttp_request *req, void *opaque)
{
        struct metrics *m = opaque;
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
        enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);
        struct evbuffer *body;

        if (path == NULL || strcmp(path, "/metrics") != 0) {
                evhttp_send_error(req, HTTP_NOTFOUND, NULL);
                return;
        }
        if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
                /* Not evhttp_send_error(): it drops the output headers, Allow with them. */
                body = evbuffer_new();
                evhttp_add_header(out, "Allow", "GET, HEAD");
                evhttp_add_header(out, "Content-Type", "text/plain; charset=utf-8");
                if (body)
                        evbuffer_add_printf(body, "405 Method Not Allowed\n");
                evhttp_send_reply(req, 405, "Method Not Allowed", body);
                if (body)
                        evbuffer_free(body);
                return;
        }
        body = evbuffer_new();
        if (body == NULL || !add_text(body, metrics_render(m->d))) {
                if (body)
                        evbuffer_free(body);
                evhttp_send_error(req, HTTP_INTERNAL, NULL);
                return;
        }
        evhttp_add_header(out, "Content-Type", METRICS_CONTENT_TYPE);
        evhttp_send_reply(req, HTTP_OK, "OK", body);
        evbuffer_free(body);
}

int metrics_listen(struct tetherd *d, const char *addr_port, struct tt_error *err)
{
        struct metrics *m = metrics_of(d);
        _cleanup_free_ char *addr = NULL;
        struct evhttp_bound_socket *bound;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[NI_MAXHOST], serv[NI_MAXSERV];
        uint16_t port = 0;

        if (m == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (m->http)
                return tt_error_set(err, EBUSY, "metrics: already listening");
        if (web_parse_listen(addr_port, "listen", &addr, &port, err) < 0)
                return -1;
        m->http = evhttp_new(d->base);
        if (m->http == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        /* Every method reaches http_request, which answers 405 (libevent would say 501). */
        evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                                    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                                    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
        evhttp_set_timeout(m->http, HTTP_TIMEOUT_S);
        evhttp_set_max_headers_size(m->http, HTTP_MAX_HEADERS);
        evhttp_set_max_body_size(m->http, HTTP_MAX_BODY);
        evhttp_set_gencb(m->http, http_request, m);
        errno = 0;
        bound = evhttp_bind_socket_with_handle(m->http, addr, port);
        if (bound == NULL) {
                int e = errno ? errno : EADDRNOTAVAIL;
                evhttp_free(steal_pointer(&m->http));
                return tt_error_errno(err, e, "metrics: cannot listen on %s", addr_port);
        }
        /* Port 0 picks a free port: say which. */
        if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) == 0 &&
            getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0)
                tt_info("metrics on http://%s%s%s:%s/metrics", ss.ss_family == AF_INET6 ? "[" : "",
                        host, ss.ss_family == AF_INET6 ? "]" : "", serv);
        return 0;
}

/* ---- the Pushgateway ---- */

static const char *request_error_name(enum evhttp_request_error e)
{
        switch (e) {
        case EVREQ_HTTP_TIMEOUT:
                return "no answer in time";
        case EVREQ_HTTP_EOF:
                return "connection closed";
        case EVREQ_HTTP_INVALID_HEADER:
                return "invalid reply";
        case EVREQ_HTTP_BUFFER_ERROR:
                return "connection failed";
        case EVREQ_HTTP_REQUEST_CANCEL:
                return "cancelled";
        case EVREQ_HTTP_DATA_TOO_LONG:
                return "reply too long";
        }
        return "failed";
}

static void push_error(enum evhttp_request_error e, void *opaque)
{
        struct metrics *m = opaque;

        m->push_err = e;
        m->push_err_set = true;
}

/* Log only changes: the first failure, and the first success after failures. */
static void push_result(struct metrics *m, int code)
{
        bool ok = code >= 200 && code < 300;

        if (ok && m->push_state != PUSH_OK) {
                if (m->push_state == PUSH_FAILING)
                        tt_info("metrics: push to %s works again", m->push_target);
                else
                        tt_debug("metrics: pushing to %s", m->push_target);
                m->push_state = PUSH_OK;
        } else if (!ok && m->push_state != PUSH_FAILING) {
                if (code)
                        tt_warn("metrics: push to %s failed: HTTP %d; retrying each round",
                                m->push_target, code);
                else
                        tt_warn("metrics: push to %s failed: %s; retrying each round",
                                m->push_target,
                                m->push_err_set ? request_error_name(m->push_err)
                                                : "connection failed");
                m->push_state = PUSH_FAILING;
        }
}

static void push_done(struct evhttp_request *req, void *opaque)
{
        struct metrics *m = opaque;

        m->push_inflight = false;
        push_result(m, req ? evhttp_request_get_response_code(req) : 0);
}

static struct evhttp_request *push_request(struct metrics *m, void (*cb)(struct evhttp_request *,
                                                                         void *))
{
        struct evhttp_request *req = evhttp_request_new(cb, m);
        struct evkeyvalq *h;

        if (req == NULL)
                return NULL;
        evhttp_request_set_error_cb(req, push_error); /* called with m, the request's argument */
        h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Host", m->push_host_header);
        evhttp_add_header(h, "Content-Type", METRICS_CONTENT_TYPE);
        m->push_err_set = false;
        return req;
}

/* After each host-side round: PUT the whole text, unless the last push still runs. */
static void push_round(struct tetherd *d, void *opaque)
{
        struct metrics *m = opaque;
        struct evhttp_request *req;

        if (m->push_inflight) {
                tt_debug("metrics: the last push still runs; skipping this round");
                return;
        }
        req = push_request(m, push_done);
        if (req == NULL)
                return;
        if (!add_text(evhttp_request_get_output_buffer(req), metrics_render(d))) {
                evhttp_request_free(req);
                return;
        }
        m->push_inflight = true;
        if (evhttp_make_request(m->push_conn, req, EVHTTP_REQ_PUT, m->push_path) < 0 &&
            m->push_inflight) {
                /* libevent has freed req (or called push_done already) */
                m->push_inflight = false;
                push_result(m, 0);
        }
}

/* The host of the URL (brackets of an IPv6 literal removed) as a numeric address. */
static int resolve(const char *host, char **numeric, struct tt_error *err)
{
        _cleanup_free_ char *bare = NULL;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        char buf[NI_MAXHOST];
        int rc;

        if (host[0] == '[')
                bare = strndup(host + 1, strlen(host) - 2);
        else
                bare = strdup(host);
        if (bare == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        rc = getaddrinfo(bare, NULL, &hints, &ai);
        if (rc != 0)
                return tt_error_set(err, EINVAL, "push URL: cannot resolve '%s': %s", bare,
                                    gai_strerror(rc));
        rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, sizeof(buf), NULL, 0, NI_NUMERICHOST);
        freeaddrinfo(ai);
        if (rc != 0)
                return tt_error_set(err, EINVAL, "push URL: cannot resolve '%s': %s", bare,
                                    gai_strerror(rc));
        *numeric = strdup(buf);
        return *numeric ? 0 : tt_error_set(err, ENOMEM, "out of memory");
}

int metrics_push_start(struct tetherd *d, const char *url, struct tt_error *err)
{
        struct metrics *m = metrics_of(d);
        struct evhttp_uri *uri = NULL;
        _cleanup_free_ char *prefix = NULL, *instance = NULL;
        const char *scheme, *host, *path;
        char hostname[HOST_NAME_MAX + 1] = "";
        int port, rc = -1;
        size_t n;

        if (m == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (m->push_conn)
                return tt_error_set(err, EBUSY, "metrics: already pushing");
        uri = evhttp_uri_parse(url);
        if (uri == NULL)
                return tt_error_set(err, EINVAL, "invalid push URL '%s'", url);
        scheme = evhttp_uri_get_scheme(uri);
        host = evhttp_uri_get_host(uri);
        path = evhttp_uri_get_path(uri);
        port = evhttp_uri_get_port(uri);
        if (scheme == NULL || strcasecmp(scheme, "http") != 0 || host == NULL || !host[0] ||
            evhttp_uri_get_query(uri) || evhttp_uri_get_fragment(uri) ||
            evhttp_uri_get_userinfo(uri)) {
                tt_error_set(err, EINVAL,
                             "invalid push URL '%s': expected http://HOST[:PORT][/PATH]", url);
                goto out;
        }
        if (gethostname(hostname, sizeof(hostname) - 1) < 0 || !hostname[0])
                snprintf(hostname, sizeof(hostname), "localhost");
        instance = evhttp_uriencode(hostname, -1, 0);
        prefix = strdup(path ? path : "");
        if (instance == NULL || prefix == NULL) {
                tt_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        n = strlen(prefix);
        while (n > 0 && prefix[n - 1] == '/')
                prefix[--n] = '\0';
        if (resolve(host, &m->push_host, err) < 0)
                goto out;
        m->push_port = port < 0 ? 80 : (ev_uint16_t)port;
        if (asprintf(&m->push_path, "%s/metrics/job/tether/instance/%s", prefix, instance) < 0 ||
            (port < 0 ? asprintf(&m->push_host_header, "%s", host)
                      : asprintf(&m->push_host_header, "%s:%d", host, port)) < 0 ||
            asprintf(&m->push_target, "http://%s%s", m->push_host_header, m->push_path) < 0) {
                tt_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        m->push_conn = evhttp_connection_base_new(d->base, NULL, m->push_host, m->push_port);
        if (m->push_conn == NULL) {
                tt_error_set(err, ENOMEM, "push URL '%s': cannot create a connection", url);
                goto out;
        }
        evhttp_connection_set_timeout(m->push_conn, PUSH_TIMEOUT_S);
        evhttp_connection_set_retries(m->push_conn, 0);
        monitor_on_round(d, push_round, m);
        tt_info("metrics: pushing to %s after each host round", m->push_target);
        rc = 0;
out:
        evhttp_uri_free(uri);
        return rc;
}

static void delete_done(struct evhttp_request *req, void *opaque)
{
        struct metrics *m = opaque;

        m->delete_done = true;
        m->delete_code = req ? evhttp_request_get_response_code(req) : 0;
}

static bool delete_finished(const struct metrics *m)
{
        return m->delete_done;
}

static void wait_timeout(evutil_socket_t fd, short what, void *opaque)
{
}

/*
 * Run the loop until done(m) or for ms at most. tetherd is exiting and the monitor is stopped,
 * so what runs meanwhile is the request itself and QEMU events.
 */
static void wait_for(struct metrics *m, bool (*done)(const struct metrics *m), int ms)
{
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        struct event *timer = evtimer_new(m->d->base, wait_timeout, m);

        if (timer == NULL)
                return;
        evtimer_add(timer, &tv);
        while (!done(m) && evtimer_pending(timer, NULL) &&
               event_base_loop(m->d->base, EVLOOP_ONCE) == 0)
                ;
        event_free(timer);
}

/* Remove our group from the Pushgateway: stale values must not outlive tetherd. */
static void push_delete(struct metrics *m)
{
        struct evhttp_request *req;

        /* On the push connection: evhttp sends it after a PUT still in flight, never before. */
        req = push_request(m, delete_done);
        if (req == NULL)
                return;
        m->delete_done = false;
        if (evhttp_make_request(m->push_conn, req, EVHTTP_REQ_DELETE, m->push_path) < 0 &&
            !m->delete_done) {
                tt_warn("metrics: cannot delete %s", m->push_target);
                return;
        }
        wait_for(m, delete_finished, PUSH_DELETE_WAIT_MS);
        if (!m->delete_done)
                tt_warn("metrics: delete of %s: no answer in time", m->push_target);
        else if (m->delete_code < 200 || m->delete_code >= 300)
                tt_warn("metrics: delete of %s failed: %s", m->push_target,
                        m->delete_code ? "HTTP error" : "no connection");
        else
                tt_info("metrics: deleted %s", m->push_target);
}

void metrics_close(struct tetherd *d)
{
        struct metrics *m = d->metrics;

        if (m == NULL)
                return;
        if (m->http)
                evhttp_free(m->http);
        m->http = NULL;
        if (m->push_conn) {
                /* The monitor is stopped (no more rounds): tell the Pushgateway we are gone. */
                push_delete(m);
                evhttp_connection_free(m->push_conn);
        }
        free(m->push_target);
        free(m->push_host);
        free(m->push_host_header);
        free(m->push_path);
        free(m);
        d->metrics = NULL;
}
