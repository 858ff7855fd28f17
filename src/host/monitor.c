/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The monitor service's polling: see monitor.h. One tick a second walks the domains; each
 * running domain has its own poll state with a due time per source. The host side (QMP
 * query-cpus-fast and query-blockstats, then /proc) and the guest side (one agent call at a
 * time, through guest.c, with a deadline) never wait on each other, and an agent that fails is
 * backed off exponentially (2 s .. 64 s) instead of being asked again every tick.
 */
#include "host/monitor.h"
#include "host/tap.h"
#include "common/cleanup.h"
#include "common/base64.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "host/guest.h"
#include "host/qmp.h"
#include "host/tetherd.h"
#include "host/vm.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The tick that checks what is due. */
#define MON_TICK_MS 500
/* Deadlines: a QMP query, one agent call. */
#define MON_QMP_TIMEOUT_MS 5000
#define MON_AGENT_TIMEOUT_S 5
/* Backoff of a failing agent: 2 s doubling to this. */
#define MON_BACKOFF_MAX_S 64
/* /proc/meminfo and /proc/loadavg are small: one read of this many bytes. */
#define MON_PROC_READ 16384

struct mon_vm;

/* How each source is fetched. */
enum mon_fetch {
        FETCH_HOST,    /* QMP and /proc */
        FETCH_COMMAND, /* one agent command */
        FETCH_FILE,    /* guest-file-open/read/close of a /proc file */
};

static const struct mon_source_def {
        const char *name;    /* in metrics and the API */
        enum mon_fetch fetch; /* how */
        const char *command; /* the agent command (FETCH_COMMAND), or the file (FETCH_FILE) */
        const char *fallback; /* a file to read when the command is missing (load) */
} sources[MON_SOURCE_LAST] = {
        [MON_HOST] = {"host", FETCH_HOST, NULL, NULL},
        [MON_LOAD] = {"load", FETCH_COMMAND, "guest-get-load", "/proc/loadavg"},
        [MON_MEMORY] = {"memory", FETCH_FILE, "/proc/meminfo", NULL},
        [MON_CPUSTATS] = {"cpustats", FETCH_COMMAND, "guest-get-cpustats", NULL},
        [MON_DISKSTATS] = {"diskstats", FETCH_COMMAND, "guest-get-diskstats", NULL},
        [MON_INTERFACES] = {"interfaces", FETCH_COMMAND, "guest-network-get-interfaces", NULL},
        [MON_USERS] = {"users", FETCH_COMMAND, "guest-get-users", NULL},
        [MON_FILESYSTEMS] = {"filesystems", FETCH_COMMAND, "guest-get-fsinfo", NULL},
        [MON_OSINFO] = {"osinfo", FETCH_COMMAND, "guest-get-osinfo", NULL},
};

/* The monitor of the daemon. */
struct monitor {
        struct tetherd *d;               /* owner */
        struct monitor_config cfg;       /* intervals */
        struct event *tick;              /* MON_TICK_MS */
        void (*on_round)(struct tetherd *d, void *opaque); /* after each host round */
        void *on_round_opaque;           /* its argument */
        double next_round;               /* when every domain's host side is polled next */
        bool round_pending;              /* a round runs: on_round once all of it answered */
};

/* The poll state of one running domain (vm->mon). */
struct mon_vm {
        struct vm *vm;                              /* the domain */
        struct monitor_sample samples[MON_SOURCE_LAST]; /* the cache */
        double due[MON_SOURCE_LAST];                /* next attempt (monotonic) */
        unsigned inflight;                          /* QMP and agent calls not yet answered */
        bool dead;                                  /* freed once inflight drops to 0 */
        /* host round */
        bool host_busy;                             /* a round runs */
        unsigned host_pending;                      /* its QMP replies still to come */
        json_t *cpus;                               /* query-cpus-fast's return */
        json_t *blocks;                             /* query-blockstats' return */
        json_t *balloon;                            /* query-balloon's return */
        json_t *guest_stats;                        /* qom-get guest-stats' return */
        /* agent */
        bool agent_busy;                            /* one agent call (or file chain) runs */
        enum monitor_source agent_source;           /* which source it is for */
        bool agent_file;                            /* the source is read as a file now */
        json_int_t handle;                          /* guest-file handle of the chain, or -1 */
        int failures;                               /* consecutive agent failures */
        double agent_resume;                        /* no agent call before this (backoff) */
        bool load_from_file;                        /* guest-get-load is missing: /proc/loadavg */
        double vcpu_load;                           /* vCPU threads' CPU use between the last two
                                                       host samples (1.0 = one CPU), -1: none */
};

static double now_mono(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_real(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *monitor_source_name(enum monitor_source s)
{
        return s < MON_SOURCE_LAST ? sources[s].name : "?";
}

void monitor_config_default(struct monitor_config *c)
{
        *c = (struct monitor_config){
                .host_s = 10, .stats_s = 10, .users_s = 30, .filesystems_s = 60, .osinfo_s = 300};
}

static int interval_of(const struct monitor_config *c, enum monitor_source s)
{
        switch (s) {
        case MON_HOST:
                return c->host_s;
        case MON_USERS:
                return c->users_s;
        case MON_FILESYSTEMS:
                return c->filesystems_s;
        case MON_OSINFO:
                return c->osinfo_s;
        default:
                return c->stats_s;
        }
}

static struct monitor *mon_of(const struct vm *vm)
{
        return vm->d->monitor;
}

/* ---- the cache ---- */

/* The vCPU threads' time on a CPU in a MON_HOST sample (their schedstat), in seconds. */
static double vcpu_run_seconds(json_t *host)
{
        double sum = 0;
        size_t i;
        json_t *c;

        json_array_foreach(json_object_get(host, "vcpus"), i, c)
                sum += json_number_value(json_object_get(c, "run_seconds"));
        return sum;
}

static void sample_set(struct mon_vm *m, enum monitor_source s, json_t *data)
{
        struct monitor_sample *sm = &m->samples[s];

        if (s == MON_HOST) {
                double dt = now_mono() - sm->taken_mono;

                m->vcpu_load = sm->data && dt > 0
                                       ? (vcpu_run_seconds(data) - vcpu_run_seconds(sm->data)) / dt
                                       : -1;
        }
        json_decref(sm->data);
        sm->data = data;
        sm->taken = now_real();
        sm->taken_mono = now_mono();
        sm->failing = false;
        sm->unsupported = false;
}

static void mon_vm_release(struct mon_vm *m)
{
        for (size_t i = 0; i < MON_SOURCE_LAST; i++)
                json_decref(m->samples[i].data);
        json_decref(m->cpus);
        json_decref(m->blocks);
        json_decref(m->balloon);
        json_decref(m->guest_stats);
        free(m);
}

/* A call answered: drop the reference; a domain that went away is freed with the last one. */
static bool call_done(struct mon_vm *m)
{
        m->inflight--;
        if (m->dead) {
                if (m->inflight == 0)
                        mon_vm_release(m);
                return false;
        }
        return true;
}

static void round_check(struct monitor *mon);

/* ---- host side ---- */

/*
 * utime and stime of /proc/PID[/task/TID]/stat in seconds; the sum is returned, -1 when
 * unreadable. user and sys may be NULL.
 */
static double proc_cpu_seconds(const char *path, double *user, double *sys)
{
        _cleanup_free_ char *text = NULL;
        unsigned long long ut, st;
        double tck = (double)sysconf(_SC_CLK_TCK);
        const char *p;

        if (tt_read_file(path, 4096, &text, NULL, NULL) < 0 || (p = strrchr(text, ')')) == NULL)
                return -1;
        /* Fields after the command: state(3) ... utime(14) stime(15). */
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return -1;
        if (user)
                *user = (double)ut / tck;
        if (sys)
                *sys = (double)st / tck;
        return (double)(ut + st) / tck;
}

/* VmRSS of /proc/PID/status in bytes, or -1. */
static long long proc_rss(pid_t pid)
{
        char path[64];
        _cleanup_free_ char *text = NULL;
        const char *p;
        long long kib;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (tt_read_file(path, 16384, &text, NULL, NULL) < 0 || (p = strstr(text, "\nVmRSS:")) == NULL ||
            sscanf(p + 7, "%lld", &kib) != 1)
                return -1;
        return kib * 1024;
}

static json_t *host_vcpus(struct mon_vm *m)
{
        json_t *out = json_array();
        size_t i;
        json_t *c;

        json_array_foreach(m->cpus, i, c) {
                json_int_t tid = json_integer_value(json_object_get(c, "thread-id"));
                char path[96];
                _cleanup_free_ char *sched = NULL;
                unsigned long long run_ns = 0, wait_ns = 0;
                double secs;

                snprintf(path, sizeof(path), "/proc/%d/task/%lld/stat", (int)m->vm->pid,
                         (long long)tid);
                secs = proc_cpu_seconds(path, NULL, NULL);
                /* schedstat: time on the CPU, time waiting on a run queue, timeslices (ns). */
                snprintf(path, sizeof(path), "/proc/%d/task/%lld/schedstat", (int)m->vm->pid,
                         (long long)tid);
                if (tt_read_file(path, 256, &sched, NULL, NULL) == 0)
                        sscanf(sched, "%llu %llu", &run_ns, &wait_ns);
                json_array_append_new(
                        out, json_pack("{s:I, s:I, s:f, s:f, s:f}", "vcpu",
                                       json_integer_value(json_object_get(c, "cpu-index")), "tid",
                                       tid, "seconds", secs < 0 ? 0.0 : secs, "run_seconds",
                                       (double)run_ns / 1e9, "wait_seconds",
                                       (double)wait_ns / 1e9));
        }
        return out;
}

/* query-blockstats' entries with our disks' target names (node-name libvirt-N-format). */
static json_t *host_blocks(struct mon_vm *m)
{
        static const char *const keys[] = {"rd_bytes", "wr_bytes", "rd_operations",
                                           "wr_operations", "flush_operations",
                                           "rd_total_time_ns", "wr_total_time_ns",
                                           "flush_total_time_ns"};
        const struct domain *def = m->vm->live;
        json_t *out = json_array();
        size_t i;
        json_t *b;

        json_array_foreach(m->blocks, i, b) {
                const char *node = json_string_value(json_object_get(b, "node-name"));
                json_t *stats = json_object_get(b, "stats");
                unsigned long n = 0;
                json_t *row;

                if (node == NULL || sscanf(node, "libvirt-%lu-format", &n) != 1 || n < 1 ||
                    def == NULL || n > def->n_disks || def->disks[n - 1].target == NULL)
                        continue;
                row = json_pack("{s:s}", "device", def->disks[n - 1].target);
                for (size_t k = 0; row && k < TT_ARRAY_SIZE(keys); k++)
                        json_object_set_new(
                                row, keys[k],
                                json_integer(json_integer_value(json_object_get(stats, keys[k]))));
                json_array_append_new(out, row);
        }
        return out;
}

/* Counters of the bridge interfaces' taps, in the guest's direction (libvirt's net.N.*). */
static json_t *host_interfaces(struct mon_vm *m)
{
        const struct domain *def = m->vm->live;
        json_t *out = json_array();

        for (size_t i = 0; def && i < def->n_nets; i++) {
                const struct domain_net *n = &def->nets[i];
                struct tap_stats t;

                if (n->type != DOMAIN_NET_BRIDGE || n->ifname == NULL ||
                    tap_stats(n->ifname, &t) < 0)
                        continue;
                json_array_append_new(
                        out, json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "index",
                                       (json_int_t)i, "device", n->ifname, "rx_bytes",
                                       t.rx_bytes, "rx_packets", t.rx_packets, "rx_errs",
                                       t.rx_errors, "rx_drop", t.rx_dropped, "tx_bytes",
                                       t.tx_bytes, "tx_packets", t.tx_packets, "tx_errs",
                                       t.tx_errors, "tx_drop", t.tx_dropped));
        }
        return out;
}

/* qom-get guest-stats: the guest's balloon statistics with their time, once it sent some. */
static json_t *host_balloon_stats(struct mon_vm *m)
{
        json_t *stats = json_object_get(m->guest_stats, "stats");
        json_t *out;

        if (!json_is_object(stats))
                return NULL;
        out = json_deep_copy(stats);
        if (out)
                json_object_set(out, "last-update", json_object_get(m->guest_stats, "last-update"));
        return out;
}

static void host_finish(struct mon_vm *m)
{
        struct vm *vm = m->vm;
        const struct domain *def = vm->live ? vm->live : vm->def;
        char path[64];
        double cpu, user = 0, sys = 0;
        long long rss;
        json_t *data, *actual = json_object_get(m->balloon, "actual");

        m->host_busy = false;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)vm->pid);
        cpu = proc_cpu_seconds(path, &user, &sys);
        rss = proc_rss(vm->pid);
        if (m->cpus == NULL || cpu < 0) {
                /* QEMU did not answer (stopped, hung) or is gone: keep the last values. */
                m->samples[MON_HOST].failing = true;
        } else {
                data = json_pack("{s:i, s:i, s:f, s:f, s:f, s:I, s:I, s:I, s:o, s:o, s:I, s:o}",
                                 "state",
                                 (int)vm->status.state, "reason", vm->status.reason,
                                 "cpu_seconds", cpu, "cpu_user_seconds", user,
                                 "cpu_system_seconds", sys, "rss_bytes",
                                 (json_int_t)(rss < 0 ? 0 : rss), "max_memory_bytes",
                                 (json_int_t)def->memory_kib * 1024, "current_memory_bytes",
                                 json_is_integer(actual) ? json_integer_value(actual)
                                                         : (json_int_t)def->current_memory_kib * 1024,
                                 "vcpus", host_vcpus(m), "block", host_blocks(m), "net_count",
                                 (json_int_t)def->n_nets, "net", host_interfaces(m));
                if (data && m->guest_stats)
                        json_object_set_new(data, "balloon", host_balloon_stats(m));
                if (data)
                        sample_set(m, MON_HOST, data);
        }
        json_decref(m->cpus);
        json_decref(m->blocks);
        json_decref(m->balloon);
        json_decref(m->guest_stats);
        m->cpus = m->blocks = m->balloon = m->guest_stats = NULL;
        round_check(mon_of(vm));
}

/* A reply of the host round into its slot; the last one ends the round. */
static void host_reply(struct mon_vm *m, json_t **slot, json_t *ret, const struct tt_error *err)
{
        if (!call_done(m))
                return;
        if (err == NULL)
                *slot = json_incref(ret);
        if (--m->host_pending == 0)
                host_finish(m);
}

static void host_cpus_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct mon_vm *m = opaque;

        host_reply(m, &m->cpus, ret, err);
}

static void host_blocks_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct mon_vm *m = opaque;

        host_reply(m, &m->blocks, ret, err);
}

static void host_balloon_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct mon_vm *m = opaque;

        host_reply(m, &m->balloon, ret, err);
}

static void host_guest_stats_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct mon_vm *m = opaque;

        host_reply(m, &m->guest_stats, ret, err);
}

/* Send one QMP command of the host round. */
static void host_send(struct mon_vm *m, const char *cmd, json_t *args, qmp_reply_fn fn)
{
        if (qmp_command(m->vm->qmp, cmd, args, MON_QMP_TIMEOUT_MS, fn, m) == 0) {
                m->inflight++;
                m->host_pending++;
        }
}

static void host_round(struct mon_vm *m)
{
        struct vm *vm = m->vm;
        const struct domain *def = vm->live ? vm->live : vm->def;

        if (m->host_busy || vm->qmp == NULL)
                return;
        m->host_busy = true;
        m->host_pending = 0;
        host_send(m, "query-cpus-fast", NULL, host_cpus_done);
        host_send(m, "query-blockstats", NULL, host_blocks_done);
        if (def->balloon == DOMAIN_BALLOON_VIRTIO)
                host_send(m, "query-balloon", NULL, host_balloon_done);
        if (def->balloon == DOMAIN_BALLOON_VIRTIO && def->balloon_period)
                host_send(m, "qom-get",
                          json_pack("{s:s, s:s}", "path", "/machine/peripheral/balloon0",
                                    "property", "guest-stats"),
                          host_guest_stats_done);
        if (m->host_pending == 0)
                host_finish(m);
}

/* ---- guest side ---- */

static void agent_next(struct mon_vm *m);

/* The agent failed: keep the old values, mark them failing, and back off. */
static void agent_failed(struct mon_vm *m, const char *why)
{
        double backoff = 2;

        for (int i = 1; i < m->failures && backoff < MON_BACKOFF_MAX_S; i++)
                backoff *= 2;
        m->failures++;
        m->samples[m->agent_source].failing = true;
        m->agent_resume = now_mono() + backoff;
        if (m->failures == 1)
                tt_info("%s: monitor: guest agent: %s; retrying with backoff", m->vm->def->name,
                        why);
        m->agent_busy = false;
}

/* "MemTotal:  1234 kB" lines into {"total_bytes", "available_bytes", "free_bytes"}. */
static json_t *parse_meminfo(const char *text)
{
        static const struct {
                const char *key;  /* /proc/meminfo's */
                const char *name; /* ours */
        } keys[] = {{"MemTotal:", "total_bytes"},
                    {"MemAvailable:", "available_bytes"},
                    {"MemFree:", "free_bytes"}};
        json_t *out = json_object();

        for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                for (size_t k = 0; k < TT_ARRAY_SIZE(keys); k++) {
                        long long kib;

                        if (strncmp(line, keys[k].key, strlen(keys[k].key)) == 0 &&
                            sscanf(line + strlen(keys[k].key), "%lld", &kib) == 1)
                                json_object_set_new(out, keys[k].name, json_integer(kib * 1024));
                }
        }
        if (json_object_get(out, "total_bytes") == NULL) {
                json_decref(out);
                return NULL;
        }
        return out;
}

/* "0.12 0.34 0.56 1/78 123" into guest-get-load's shape. */
static json_t *parse_loadavg(const char *text)
{
        double a, b, c;

        if (sscanf(text, "%lf %lf %lf", &a, &b, &c) != 3)
                return NULL;
        return json_pack("{s:f, s:f, s:f}", "load1m", a, "load5m", b, "load15m", c);
}

static void agent_call(struct mon_vm *m, json_t *cmd, guest_reply_fn fn);

static void file_closed(void *opaque, json_t *reply, const struct tt_error *err)
{
        struct mon_vm *m = opaque;

        if (!call_done(m))
                return;
        m->agent_busy = false;
        agent_next(m);
}

static void file_close(struct mon_vm *m)
{
        json_int_t h = m->handle;

        m->handle = -1;
        agent_call(m, json_pack("{s:s, s:{s:I}}", "execute", "guest-file-close", "arguments",
                                "handle", h),
                   file_closed);
}

static void file_read_done(void *opaque, json_t *reply, const struct tt_error *err)
{
        struct mon_vm *m = opaque;
        const char *b64 = json_string_value(json_object_get(json_object_get(reply, "return"),
                                                            "buf-b64"));
        _cleanup_free_ unsigned char *bytes = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        json_t *data = NULL;

        if (!call_done(m))
                return;
        if (err || b64 == NULL || tt_base64_decode(b64, strlen(b64), &bytes, &len, NULL) < 0 ||
            (text = strndup((const char *)bytes, len)) == NULL) {
                agent_failed(m, err ? err->msg : "bad guest-file-read reply");
        } else {
                data = m->agent_source == MON_MEMORY ? parse_meminfo(text) : parse_loadavg(text);
                if (data) {
                        sample_set(m, m->agent_source, data);
                        m->failures = 0;
                } else {
                        agent_failed(m, "unexpected contents");
                }
        }
        /* Close the handle whatever happened; the chain ends there. */
        m->agent_busy = true;
        file_close(m);
}

static void file_open_done(void *opaque, json_t *reply, const struct tt_error *err)
{
        struct mon_vm *m = opaque;

        if (!call_done(m))
                return;
        if (err) {
                agent_failed(m, err->msg);
                return;
        }
        m->handle = json_integer_value(json_object_get(reply, "return"));
        agent_call(m, json_pack("{s:s, s:{s:I, s:i}}", "execute", "guest-file-read", "arguments",
                                "handle", m->handle, "count", MON_PROC_READ),
                   file_read_done);
}

static void command_done(void *opaque, json_t *reply, const struct tt_error *err)
{
        struct mon_vm *m = opaque;
        enum monitor_source s;

        if (!call_done(m))
                return;
        s = m->agent_source;
        if (err) {
                agent_failed(m, err->msg);
                return;
        }
        m->agent_busy = false;
        m->failures = 0;
        if (json_is_true(json_object_get(reply, "unsupported"))) {
                if (sources[s].fallback) {
                        /* Read the same facts from /proc instead, from now on. */
                        m->load_from_file = true;
                        m->due[s] = 0;
                } else {
                        m->samples[s].unsupported = true;
                }
        } else {
                sample_set(m, s, json_incref(json_object_get(reply, "return")));
        }
        agent_next(m);
}

static void agent_call(struct mon_vm *m, json_t *cmd, guest_reply_fn fn)
{
        struct tt_error err = {0};

        if (guest_call(m->vm, cmd, MON_AGENT_TIMEOUT_S, GUEST_CALL_UNSUPPORTED_OK, NULL, fn, m,
                       &err) < 0) {
                agent_failed(m, err.msg);
                tt_error_clear(&err);
                return;
        }
        m->inflight++;
        m->agent_busy = true;
}

/* Start the most overdue agent source, if any is due and the agent is not backed off. */
static void agent_next(struct mon_vm *m)
{
        struct monitor *mon = mon_of(m->vm);
        double now = now_mono();
        enum monitor_source best = MON_SOURCE_LAST;
        const char *file = NULL;

        if (m->agent_busy || m->dead || now < m->agent_resume ||
            m->vm->status.state != VM_STATE_RUNNING || m->vm->guest == NULL ||
            !guest_connected(m->vm))
                return;
        for (enum monitor_source s = MON_HOST + 1; s < MON_SOURCE_LAST; s++) {
                if (interval_of(&mon->cfg, s) <= 0 || m->samples[s].unsupported || m->due[s] > now)
                        continue;
                if (best == MON_SOURCE_LAST || m->due[s] < m->due[best])
                        best = s;
        }
        if (best == MON_SOURCE_LAST)
                return;
        m->agent_source = best;
        m->due[best] = now + interval_of(&mon->cfg, best);
        if (sources[best].fetch == FETCH_FILE)
                file = sources[best].command;
        else if (best == MON_LOAD && m->load_from_file)
                file = sources[best].fallback;
        if (file)
                agent_call(m, json_pack("{s:s, s:{s:s}}", "execute", "guest-file-open",
                                        "arguments", "path", file),
                           file_open_done);
        else
                agent_call(m, json_pack("{s:s}", "execute", sources[best].command), command_done);
}

/* ---- the tick ---- */

static void mon_vm_new(struct vm *vm)
{
        struct mon_vm *m = calloc(1, sizeof(*m));

        if (m == NULL)
                return;
        m->vm = vm;
        m->handle = -1;
        m->vcpu_load = -1;
        vm->mon = m;
}

/* A host round is over when no domain's host poll is still out: then the push hook runs. */
static void round_check(struct monitor *mon)
{
        if (mon == NULL || !mon->round_pending)
                return;
        for (struct vm *vm = mon->d->vms; vm; vm = vm->next)
                if (vm->mon && vm->mon->host_busy)
                        return;
        mon->round_pending = false;
        if (mon->on_round)
                mon->on_round(mon->d, mon->on_round_opaque);
}

/*
 * Every host_s seconds all domains' host sides are polled together (a round, after which the
 * push hook runs); a domain that starts between rounds gets its first sample at once.
 */
static void tick(evutil_socket_t fd, short what, void *opaque)
{
        struct monitor *mon = opaque;
        struct timeval tv = {0, MON_TICK_MS * 1000};
        double now = now_mono();
        bool round = mon->cfg.host_s > 0 && now >= mon->next_round;

        if (round) {
                mon->next_round = now + mon->cfg.host_s;
                mon->round_pending = true;
        }
        for (struct vm *vm = mon->d->vms; vm; vm = vm->next) {
                struct mon_vm *m;

                monitor_vm_changed(vm);
                m = vm->mon;
                if (m == NULL)
                        continue;
                if (mon->cfg.host_s > 0 && (round || m->due[MON_HOST] <= now)) {
                        m->due[MON_HOST] = now + mon->cfg.host_s;
                        host_round(m);
                }
                agent_next(m);
        }
        round_check(mon);
        evtimer_add(mon->tick, &tv);
}

/* ---- the interface ---- */

void monitor_vm_changed(struct vm *vm)
{
        bool active = vm_state_is_active(vm->status.state) && vm->pid > 0;
        struct mon_vm *m = vm->mon;

        if (vm->d->monitor == NULL)
                return;
        if (active && m == NULL) {
                mon_vm_new(vm);
                return;
        }
        if (!active)
                monitor_vm_drop(vm);
}

void monitor_vm_drop(struct vm *vm)
{
        struct mon_vm *m = vm->mon;

        if (m == NULL)
                return;
        /*
         * Stopped or gone: its series go with it. The calls still out (they all answer: a
         * deadline, QEMU's exit or guest_detach ends each) free it with the last answer.
         */
        vm->mon = NULL;
        m->dead = true;
        if (m->inflight == 0)
                mon_vm_release(m);
}

int monitor_start(struct tetherd *d, const struct monitor_config *c, struct tt_error *err)
{
        struct monitor *mon = calloc(1, sizeof(*mon));
        struct timeval tv = {0, 0};

        if (mon == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        mon->d = d;
        mon->cfg = *c;
        mon->tick = evtimer_new(d->base, tick, mon);
        if (mon->tick == NULL) {
                free(mon);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        d->monitor = mon;
        evtimer_add(mon->tick, &tv);
        return 0;
}

void monitor_stop(struct tetherd *d)
{
        struct monitor *mon = d->monitor;

        if (mon == NULL)
                return;
        for (struct vm *vm = d->vms; vm; vm = vm->next)
                monitor_vm_drop(vm);
        event_free(mon->tick);
        free(mon);
        d->monitor = NULL;
}

double monitor_vcpu_load(const struct vm *vm)
{
        if (vm->mon == NULL || vm->mon->samples[MON_HOST].failing)
                return -1;
        return vm->mon->vcpu_load;
}

const struct monitor_sample *monitor_sample(const struct vm *vm, enum monitor_source s)
{
        if (vm->mon == NULL || s >= MON_SOURCE_LAST)
                return NULL;
        return &vm->mon->samples[s];
}

double monitor_age(const struct vm *vm, enum monitor_source s)
{
        const struct monitor_sample *sm = monitor_sample(vm, s);

        if (sm == NULL || sm->data == NULL)
                return -1;
        return now_mono() - sm->taken_mono;
}

json_t *monitor_fresh(const struct vm *vm, enum monitor_source s)
{
        const struct monitor_sample *sm = monitor_sample(vm, s);
        int interval;

        if (sm == NULL || sm->data == NULL || sm->failing || vm->d->monitor == NULL)
                return NULL;
        interval = interval_of(&vm->d->monitor->cfg, s);
        return interval > 0 && monitor_age(vm, s) < interval ? sm->data : NULL;
}

json_t *monitor_describe(const struct vm *vm)
{
        json_t *out = json_object();

        for (enum monitor_source s = 0; out && s < MON_SOURCE_LAST; s++) {
                const struct monitor_sample *sm = monitor_sample(vm, s);

                if (sm == NULL || sm->data == NULL)
                        continue;
                json_object_set_new(out, sources[s].name,
                                    json_pack("{s:f, s:f, s:b, s:O}", "age", monitor_age(vm, s),
                                              "taken", sm->taken, "failing", sm->failing, "data",
                                              sm->data));
        }
        return out;
}

void monitor_on_round(struct tetherd *d, void (*fn)(struct tetherd *d, void *opaque),
                      void *opaque)
{
        if (d->monitor == NULL)
                return;
        d->monitor->on_round = fn;
        d->monitor->on_round_opaque = opaque;
}
