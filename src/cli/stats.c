/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The monitor verbs, both read from tetherd's `domstats` reply (the monitor cache, see
 * src/host/monitor.h; the daemon never waits on a guest to answer it):
 *
 *   domstats  virsh's `domstats`: "Domain: 'NAME'" and "  key=value" lines with libvirt 9.0's
 *             key names and order (qemuDomainGetStats*: state, cpu-total, balloon, vcpu,
 *             interface, block). Keys tetherd has no value for are left out, as libvirt leaves
 *             out what its driver cannot read.
 *   top       a live view like virt-top: one row per domain, rates from the difference between
 *             two cached samples over the time between them, redrawn with ANSI escapes.
 */
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ---- reading the reply ---- */

/* A source's data ("host", "memory", ...), or NULL when the cache has none yet. */
static json_t *source_data(json_t *dom, const char *name)
{
        return json_object_get(json_object_get(json_object_get(dom, "sources"), name), "data");
}

/* Seconds since the source's sample was taken, or -1 without one. */
static double source_age(json_t *dom, const char *name)
{
        json_t *age = json_object_get(json_object_get(json_object_get(dom, "sources"), name),
                                      "age");

        return json_is_number(age) ? json_number_value(age) : -1;
}

static bool number(json_t *obj, const char *key, double *out)
{
        json_t *v = json_object_get(obj, key);

        if (!json_is_number(v))
                return false;
        *out = json_number_value(v);
        return true;
}

/* A counter, exact when it came as an integer. */
static bool counter(json_t *obj, const char *key, json_int_t *out)
{
        json_t *v = json_object_get(obj, key);

        if (json_is_integer(v))
                *out = json_integer_value(v);
        else if (json_is_real(v))
                *out = (json_int_t)llround(json_real_value(v));
        else
                return false;
        return true;
}

static json_int_t seconds_to_ns(double s)
{
        return (json_int_t)llround(s * 1e9);
}

/* ---- domstats: libvirt's typed parameters, kept in order in a JSON object ---- */

static void put(json_t *kv, json_t *value, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void put(json_t *kv, json_t *value, const char *fmt, ...)
{
        char key[96];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(key, sizeof(key), fmt, ap);
        va_end(ap);
        json_object_set_new(kv, key, value);
}

static bool dom_active(json_t *dom)
{
        return json_is_true(json_object_get(dom, "active"));
}

/* qemuDomainGetStatsState */
static void group_state(json_t *kv, json_t *dom)
{
        json_int_t n;

        if (counter(dom, "state_code", &n))
                put(kv, json_integer(n), "state.state");
        if (counter(dom, "reason_code", &n))
                put(kv, json_integer(n), "state.reason");
}

/* qemuDomainGetStatsCpu: cpu.time, then QEMU's user and system time (libvirt's cgroup split). */
static void group_cpu(json_t *kv, json_t *dom)
{
        json_t *host = source_data(dom, "host");
        double s;

        if (!dom_active(dom))
                return;
        if (number(host, "cpu_seconds", &s))
                put(kv, json_integer(seconds_to_ns(s)), "cpu.time");
        if (number(host, "cpu_user_seconds", &s))
                put(kv, json_integer(seconds_to_ns(s)), "cpu.user");
        if (number(host, "cpu_system_seconds", &s))
                put(kv, json_integer(seconds_to_ns(s)), "cpu.system");
}

/* QEMU's balloon guest-stats as libvirt names and scales them (qemuMonitorJSONGetMemoryStats). */
static const struct {
        const char *qemu;   /* key in QEMU's guest-stats */
        const char *key;    /* libvirt's balloon.* key */
        bool kib;           /* bytes shown as KiB */
} balloon_stats[] = {
        {"stat-swap-in", "swap_in", true},
        {"stat-swap-out", "swap_out", true},
        {"stat-major-faults", "major_fault", false},
        {"stat-minor-faults", "minor_fault", false},
        {"stat-free-memory", "unused", true},
        {"stat-total-memory", "available", true},
        {"stat-available-memory", "usable", true},
        {"last-update", "last-update", false},
        {"stat-disk-caches", "disk_caches", true},
        {"stat-htlb-pgalloc", "hugetlb_pgalloc", false},
        {"stat-htlb-pgfail", "hugetlb_pgfail", false},
};

/* qemuDomainGetStatsBalloon: the sizes, then the guest's stats, then the QEMU process's RSS. */
static void group_balloon(json_t *kv, json_t *dom)
{
        json_t *host = source_data(dom, "host");
        json_t *stats = json_object_get(host, "balloon");
        json_int_t n;

        /* Running: the balloon's actual size, as libvirt reads it from query-balloon. */
        if (dom_active(dom) && counter(host, "current_memory_bytes", &n))
                put(kv, json_integer(n / 1024), "balloon.current");
        else if (counter(dom, "current_memory_kib", &n))
                put(kv, json_integer(n), "balloon.current");
        if (counter(dom, "max_memory_kib", &n))
                put(kv, json_integer(n), "balloon.maximum");
        if (!dom_active(dom))
                return;
        for (size_t i = 0; i < TT_ARRAY_SIZE(balloon_stats); i++) {
                /* QEMU reports -1 for a stat the guest does not collect: libvirt skips it. */
                if (!counter(stats, balloon_stats[i].qemu, &n) || n < 0)
                        continue;
                put(kv, json_integer(balloon_stats[i].kib ? n / 1024 : n), "balloon.%s",
                    balloon_stats[i].key);
        }
        if (counter(host, "rss_bytes", &n))
                put(kv, json_integer(n / 1024), "balloon.rss");
}

/* qemuDomainGetStatsVcpu: the counts always, each vCPU's state and times while running. */
static void group_vcpu(json_t *kv, json_t *dom)
{
        json_t *vcpus = json_object_get(source_data(dom, "host"), "vcpus");
        json_t *v;
        json_int_t n;
        size_t i;

        if (counter(dom, "vcpus", &n)) {
                put(kv, json_integer(n), "vcpu.current");
                put(kv, json_integer(n), "vcpu.maximum");
        }
        if (!dom_active(dom))
                return;
        json_array_foreach(vcpus, i, v) {
                json_int_t id = (json_int_t)i;
                double s;

                counter(v, "vcpu", &id);
                /* VIR_VCPU_RUNNING: QEMU's vCPU threads exist while the domain is active. */
                put(kv, json_integer(1), "vcpu.%lld.state", (long long)id);
                if (number(v, "seconds", &s))
                        put(kv, json_integer(seconds_to_ns(s)), "vcpu.%lld.time", (long long)id);
                /*
                 * tetherd's wait_seconds is schedstat's run-queue delay, which libvirt calls
                 * vcpu.N.delay; libvirt's vcpu.N.wait is sched's wait_sum (CONFIG_SCHED_DEBUG
                 * and schedstats on), which tetherd does not read, so it is left out.
                 */
                if (number(v, "wait_seconds", &s))
                        put(kv, json_integer(seconds_to_ns(s)), "vcpu.%lld.delay", (long long)id);
        }
}

/* Per-device counters: tetherd's key and libvirt's suffix, in libvirt's order. */
struct counter_key {
        const char *from;   /* key in tetherd's host source */
        const char *to;     /* libvirt's key after "net.N." / "block.N." */
};

static const struct counter_key net_keys[] = {
        {"rx_bytes", "rx.bytes"}, {"rx_packets", "rx.pkts"}, {"rx_errs", "rx.errs"},
        {"rx_drop", "rx.drop"},   {"tx_bytes", "tx.bytes"},  {"tx_packets", "tx.pkts"},
        {"tx_errs", "tx.errs"},   {"tx_drop", "tx.drop"},
};

static const struct counter_key block_keys[] = {
        {"rd_operations", "rd.reqs"},      {"rd_bytes", "rd.bytes"},
        {"rd_total_time_ns", "rd.times"},  {"wr_operations", "wr.reqs"},
        {"wr_bytes", "wr.bytes"},          {"wr_total_time_ns", "wr.times"},
        {"flush_operations", "fl.reqs"},   {"flush_total_time_ns", "fl.times"},
};

/*
 * "PREFIX.count", then per device "PREFIX.N.name" and its counters. N is the device's "index"
 * when it has one (an interface's place in the definition: libvirt counts every interface and
 * prints counters for those with a host device), else its place in the list.
 */
static void group_devices(json_t *kv, json_t *dom, const char *list, const char *prefix,
                          const struct counter_key *keys, size_t nkeys)
{
        json_t *host = source_data(dom, "host");
        json_t *devs = json_object_get(host, list);
        json_t *d;
        json_int_t n;
        size_t i;

        /* Only a sample tells which devices there are (tetherd reports none while shut off). */
        if (!dom_active(dom) || host == NULL)
                return;
        if (!counter(host, "net_count", &n) || strcmp(list, "net") != 0)
                n = (json_int_t)json_array_size(devs);
        put(kv, json_integer(n), "%s.count", prefix);
        json_array_foreach(devs, i, d) {
                const char *name = json_string_value(json_object_get(d, "device"));
                json_int_t idx;

                if (!counter(d, "index", &idx))
                        idx = (json_int_t)i;
                if (name)
                        put(kv, json_string(name), "%s.%lld.name", prefix, (long long)idx);
                for (size_t k = 0; k < nkeys; k++)
                        if (counter(d, keys[k].from, &n))
                                put(kv, json_integer(n), "%s.%lld.%s", prefix, (long long)idx,
                                    keys[k].to);
        }
}

/* qemuDomainGetStatsInterface */
static void group_net(json_t *kv, json_t *dom)
{
        group_devices(kv, dom, "net", "net", net_keys, TT_ARRAY_SIZE(net_keys));
}

/* qemuDomainGetStatsBlock (tetherd has no path, allocation or capacity to report) */
static void group_block(json_t *kv, json_t *dom)
{
        group_devices(kv, dom, "block", "block", block_keys, TT_ARRAY_SIZE(block_keys));
}

/* virsh's groups in libvirt's order (qemuDomainGetStatsWorkers). */
static const struct {
        const char *flag;                       /* virsh's option */
        void (*add)(json_t *kv, json_t *dom);   /* append the group's keys */
} stats_groups[] = {
        {"state", group_state}, {"cpu-total", group_cpu},  {"balloon", group_balloon},
        {"vcpu", group_vcpu},   {"interface", group_net},  {"block", group_block},
};

/* virsh's --list-* filters: active/inactive OR together, the states OR together, both AND. */
static bool domstats_keep(json_t *dom, const struct cli_opts *o)
{
        static const struct {
                const char *flag;   /* --list-FLAG */
                const char *state;  /* the state it selects; NULL: any other state */
        } states[] = {
                {"list-running", "running"},
                {"list-paused", "paused"},
                {"list-shutoff", "shut off"},
                {"list-other", NULL},
        };
        const char *state = json_string_value(json_object_get(dom, "state"));
        bool active = dom_active(dom), any = false, hit = false;

        if (cli_flag(o, "list-active") != cli_flag(o, "list-inactive") &&
            active != cli_flag(o, "list-active"))
                return false;
        for (size_t i = 0; i < TT_ARRAY_SIZE(states); i++) {
                bool is;

                if (!cli_flag(o, states[i].flag))
                        continue;
                any = true;
                if (states[i].state)
                        is = state && strcmp(state, states[i].state) == 0;
                else
                        is = state && strcmp(state, "running") != 0 &&
                             strcmp(state, "paused") != 0 && strcmp(state, "shut off") != 0;
                hit = hit || is;
        }
        return !any || hit;
}

/* The domain a command-line name (or UUID) means, or NULL. */
static json_t *domstats_find(json_t *ret, const char *want)
{
        json_t *dom;
        size_t i;

        json_array_foreach(ret, i, dom) {
                const char *name = json_string_value(json_object_get(dom, "name"));
                const char *uuid = json_string_value(json_object_get(dom, "uuid"));

                if ((name && strcmp(name, want) == 0) || (uuid && strcasecmp(uuid, want) == 0))
                        return dom;
        }
        return NULL;
}

/*
 * Every domain is asked for and the command line's are picked here, so that an unknown name
 * fails with virsh's lookup error before anything is printed, and records come in the
 * command line's order, as virDomainListGetStats returns them.
 */
int cli_args_domstats(json_t *args, const struct cli_opts *o)
{
        (void)o;
        json_object_clear(args);
        return 0;
}

int cli_print_domstats(json_t *ret, const struct cli_opts *o)
{
        _cleanup_json_ json_t *doms = json_array();
        _cleanup_json_ json_t *out = json_array();
        bool any_group = false;
        json_t *dom;
        size_t i;

        if (!json_is_array(ret) || doms == NULL || out == NULL) {
                cli_error("malformed domstats reply from the daemon");
                return -1;
        }
        if (o->npos == 0) {
                json_array_extend(doms, ret);
        } else {
                for (i = 0; i < o->npos; i++) {
                        dom = domstats_find(ret, o->pos[i]);
                        if (dom == NULL) {
                                cli_error("failed to get domain '%s'", o->pos[i]);
                                return -1;
                        }
                        json_array_append(doms, dom);
                }
        }
        for (size_t g = 0; g < TT_ARRAY_SIZE(stats_groups); g++)
                any_group = any_group || cli_flag(o, stats_groups[g].flag);
        json_array_foreach(doms, i, dom) {
                json_t *kv;

                if (!domstats_keep(dom, o))
                        continue;
                kv = json_object();
                json_object_set(kv, "name", json_object_get(dom, "name"));
                /* No group option means every group, as virsh asks for stats = 0. */
                for (size_t g = 0; g < TT_ARRAY_SIZE(stats_groups); g++)
                        if (!any_group || cli_flag(o, stats_groups[g].flag))
                                stats_groups[g].add(kv, dom);
                json_array_append_new(out, kv);
        }
        if (o->json) {
                cli_print_json(out);
                return 0;
        }
        json_array_foreach(out, i, dom) {
                const char *key;
                json_t *v;

                /* virsh: a blank line between records, and its own after the command. */
                if (i > 0)
                        printf("\n");
                printf("Domain: '%s'\n", json_string_value(json_object_get(dom, "name")));
                json_object_foreach(dom, key, v) {
                        if (strcmp(key, "name") == 0)
                                continue;
                        if (json_is_integer(v))
                                printf("  %s=%lld\n", key, (long long)json_integer_value(v));
                        else
                                printf("  %s=%s\n", key, json_string_value(v));
                }
        }
        if (!o->quiet)
                printf("\n");
        return 0;
}

/* ---- top ---- */

#define TOP_MAX_INTERVAL_S 3600
/* An agent whose freshest sample is older than this is "stale" (3 default stats rounds). */
#define TOP_AGENT_STALE_S  30.0
/* Two samples closer than this are the same cached sample seen twice. */
#define TOP_SAME_SAMPLE_S  0.5

/* Set by SIGINT/SIGTERM; the loop restores the terminal and leaves. */
static volatile sig_atomic_t top_stop;

static void top_on_signal(int sig)
{
        (void)sig;
        top_stop = 1;
}

/* The guest sources: any of them means the agent has answered. */
static const char *const agent_sources[] = {
        "load", "memory", "cpustats", "diskstats", "interfaces", "users", "filesystems", "osinfo",
};

/* A cumulative counter and the rate between its last two samples. */
struct top_rate {
        double t;       /* when the last sample was taken (our monotonic clock) */
        double value;   /* its value */
        double rate;    /* per second between the last two samples */
        bool have;      /* a sample was seen */
        bool known;     /* rate is valid */
};

enum top_counter { TOP_CPU, TOP_RD, TOP_WR, TOP_RX, TOP_TX, TOP_COUNTERS };

/* One domain's row. */
struct top_row {
        char *name;                          /* domain name */
        char state[24];                      /* libvirt's state word */
        struct top_rate rates[TOP_COUNTERS]; /* cpu seconds, disk and net bytes */
        bool net_guest;                      /* net rates come from the guest's interfaces */
        double mem;                          /* bytes used, or -1 */
        double rootfs;                       /* % of the root file system used, or -1 */
        double load1;                        /* load1m, or -1 */
        const char *agent;                   /* "ok", "stale", "none", "-" */
        bool seen;                           /* in the last reply */
};

/* A sort key: the option's word, the key that selects it live, and the order. */
struct top_sort {
        const char *name;   /* --sort NAME */
        char key;           /* its key while running */
        int (*cmp)(const void *a, const void *b);
};

/* Everything top keeps between refreshes. */
struct top_ctx {
        struct top_row *rows;           /* one per domain seen */
        size_t nrows;
        const struct top_sort *sort;    /* current order */
        int interval;                   /* seconds between refreshes */
        bool tty;                       /* stdout is a terminal: redraw in place */
        bool raw;                       /* stdin was put in raw mode (restore it) */
        struct termios saved;           /* stdin's mode before */
        time_t when;                    /* wall clock of the last reply */
};

static double rate_of(const struct top_row *r, enum top_counter c)
{
        return r->rates[c].known ? r->rates[c].rate : -1;
}

static double rate_sum(const struct top_row *r, enum top_counter a, enum top_counter b)
{
        if (!r->rates[a].known && !r->rates[b].known)
                return -1;
        return (r->rates[a].known ? r->rates[a].rate : 0) +
               (r->rates[b].known ? r->rates[b].rate : 0);
}

/* Descending by a number (unknown last), then by name. */
static int cmp_desc(double x, double y, const struct top_row *a, const struct top_row *b)
{
        if (x != y)
                return x > y ? -1 : 1;
        return strcmp(a->name, b->name);
}

static int cmp_name(const void *a, const void *b)
{
        return strcmp(((const struct top_row *)a)->name, ((const struct top_row *)b)->name);
}

static int cmp_cpu(const void *a, const void *b)
{
        const struct top_row *x = a, *y = b;

        return cmp_desc(rate_of(x, TOP_CPU), rate_of(y, TOP_CPU), x, y);
}

static int cmp_mem(const void *a, const void *b)
{
        const struct top_row *x = a, *y = b;

        return cmp_desc(x->mem, y->mem, x, y);
}

static int cmp_disk(const void *a, const void *b)
{
        const struct top_row *x = a, *y = b;

        return cmp_desc(rate_sum(x, TOP_RD, TOP_WR), rate_sum(y, TOP_RD, TOP_WR), x, y);
}

static int cmp_net(const void *a, const void *b)
{
        const struct top_row *x = a, *y = b;

        return cmp_desc(rate_sum(x, TOP_RX, TOP_TX), rate_sum(y, TOP_RX, TOP_TX), x, y);
}

static const struct top_sort top_sorts[] = {
        {"cpu", 'c', cmp_cpu},   {"name", 'a', cmp_name}, {"mem", 'm', cmp_mem},
        {"disk", 'd', cmp_disk}, {"net", 'n', cmp_net},
};

static const struct top_sort *top_sort_find(const char *name, char key)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(top_sorts); i++)
                if ((name && strcmp(top_sorts[i].name, name) == 0) ||
                    (!name && top_sorts[i].key == key))
                        return &top_sorts[i];
        return NULL;
}

int cli_args_top(json_t *args, const struct cli_opts *o)
{
        const char *sort = cli_flag_value(o, "sort");
        const char *interval = cli_flag_value(o, "interval");
        int64_t n;

        if (sort && top_sort_find(sort, 0) == NULL) {
                cli_error("invalid sort key '%s' (name, cpu, mem, disk or net)", sort);
                return -1;
        }
        if (interval && (tt_parse_int64(interval, 10, &n) < 0 || n < 1 ||
                         n > TOP_MAX_INTERVAL_S)) {
                cli_error("interval must be between 1 and %d seconds", TOP_MAX_INTERVAL_S);
                return -1;
        }
        /* The request asks for every domain; the options are ours. */
        json_object_clear(args);
        return 0;
}

static double mono_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A new sample of a counter taken at t: a rate once two distinct samples are known. */
static void rate_feed(struct top_rate *r, double t, double value)
{
        if (r->have && fabs(t - r->t) < TOP_SAME_SAMPLE_S)
                return;
        if (r->have && t > r->t && value >= r->value) {
                r->rate = (value - r->value) / (t - r->t);
                r->known = true;
        } else {
                /* The first sample, or a restart (counters went back): start over. */
                r->known = false;
        }
        r->t = t;
        r->value = value;
        r->have = true;
}

static void rate_forget(struct top_rate *r)
{
        *r = (struct top_rate){0};
}

static struct top_row *top_row_get(struct top_ctx *t, const char *name)
{
        struct top_row *n;

        for (size_t i = 0; i < t->nrows; i++)
                if (strcmp(t->rows[i].name, name) == 0)
                        return &t->rows[i];
        n = reallocarray(t->rows, t->nrows + 1, sizeof(*n));
        if (n == NULL)
                return NULL;
        t->rows = n;
        n = &t->rows[t->nrows];
        *n = (struct top_row){.name = strdup(name)};
        if (n->name == NULL)
                return NULL;
        t->nrows++;
        return n;
}

/* Sum two keys over an array of device objects (block, net). */
static void sum_devices(json_t *devs, const char *a, const char *b, double *sa, double *sb)
{
        json_t *d;
        size_t i;
        double v;

        *sa = *sb = 0;
        json_array_foreach(devs, i, d) {
                if (number(d, a, &v))
                        *sa += v;
                if (number(d, b, &v))
                        *sb += v;
        }
}

/* Guest interfaces' byte counters (guest-network-get-interfaces), loopback left out. */
static bool sum_guest_interfaces(json_t *ifs, double *rx, double *tx)
{
        json_t *i_, *st;
        size_t i;
        bool any = false;
        double v;

        *rx = *tx = 0;
        json_array_foreach(ifs, i, i_) {
                const char *name = json_string_value(json_object_get(i_, "name"));

                st = json_object_get(i_, "statistics");
                if (st == NULL || (name && strcmp(name, "lo") == 0))
                        continue;
                any = true;
                if (number(st, "rx-bytes", &v))
                        *rx += v;
                if (number(st, "tx-bytes", &v))
                        *tx += v;
        }
        return any;
}

/* The root file system's use in %: mountpoint "/", else the first with sizes. */
static double rootfs_percent(json_t *fss)
{
        json_t *fs, *pick = NULL;
        size_t i;
        double used, total;

        json_array_foreach(fss, i, fs) {
                const char *mp = json_string_value(json_object_get(fs, "mountpoint"));

                if (!number(fs, "total-bytes", &total) || total <= 0)
                        continue;
                if (mp && strcmp(mp, "/") == 0) {
                        pick = fs;
                        break;
                }
                if (pick == NULL)
                        pick = fs;
        }
        if (pick == NULL || !number(pick, "used-bytes", &used) ||
            !number(pick, "total-bytes", &total))
                return -1;
        return used * 100.0 / total;
}

/* "ok" while some guest source is fresh and its last poll worked, "stale" when every one is
 * old or failing, "none" before the agent ever answered. */
static const char *agent_status(json_t *dom)
{
        bool any = false;

        if (!dom_active(dom))
                return "-";
        for (size_t i = 0; i < TT_ARRAY_SIZE(agent_sources); i++) {
                json_t *src = json_object_get(json_object_get(dom, "sources"), agent_sources[i]);
                double age = source_age(dom, agent_sources[i]);

                if (age < 0)
                        continue;
                any = true;
                if (age <= TOP_AGENT_STALE_S && !json_is_true(json_object_get(src, "failing")))
                        return "ok";
        }
        return any ? "stale" : "none";
}

/* Take one domstats reply into the rows; received is our monotonic time of the reply. */
static int top_update(struct top_ctx *t, json_t *ret, double received)
{
        json_t *dom;
        size_t i;

        for (i = 0; i < t->nrows; i++)
                t->rows[i].seen = false;
        json_array_foreach(ret, i, dom) {
                const char *name = json_string_value(json_object_get(dom, "name"));
                const char *state = json_string_value(json_object_get(dom, "state"));
                json_t *host = source_data(dom, "host");
                json_t *mem = source_data(dom, "memory");
                json_t *load = source_data(dom, "load");
                struct top_row *r;
                double v, total, avail, a, b;

                if (name == NULL)
                        continue;
                r = top_row_get(t, name);
                if (r == NULL)
                        return -1;
                r->seen = true;
                snprintf(r->state, sizeof(r->state), "%s", state ? state : "?");
                if (!dom_active(dom)) {
                        for (int c = 0; c < TOP_COUNTERS; c++)
                                rate_forget(&r->rates[c]);
                }
                if (host) {
                        /* The sample's own time, so a cache refreshed less often than we
                         * redraw still gives true rates. */
                        double taken = received - source_age(dom, "host");

                        if (number(host, "cpu_seconds", &v))
                                rate_feed(&r->rates[TOP_CPU], taken, v);
                        sum_devices(json_object_get(host, "block"), "rd_bytes", "wr_bytes", &a, &b);
                        rate_feed(&r->rates[TOP_RD], taken, a);
                        rate_feed(&r->rates[TOP_WR], taken, b);
                        r->net_guest = json_array_size(json_object_get(host, "net")) == 0;
                        if (!r->net_guest) {
                                sum_devices(json_object_get(host, "net"), "rx_bytes", "tx_bytes",
                                            &a, &b);
                                rate_feed(&r->rates[TOP_RX], taken, a);
                                rate_feed(&r->rates[TOP_TX], taken, b);
                        }
                }
                if ((host == NULL || r->net_guest) &&
                    sum_guest_interfaces(source_data(dom, "interfaces"), &a, &b)) {
                        double taken = received - source_age(dom, "interfaces");

                        rate_feed(&r->rates[TOP_RX], taken, a);
                        rate_feed(&r->rates[TOP_TX], taken, b);
                }
                r->mem = -1;
                if (number(mem, "total_bytes", &total) && number(mem, "available_bytes", &avail))
                        r->mem = total - avail;
                else if (number(host, "rss_bytes", &v))
                        r->mem = v;
                r->rootfs = rootfs_percent(source_data(dom, "filesystems"));
                r->load1 = number(load, "load1m", &v) ? v : -1;
                r->agent = agent_status(dom);
        }
        /* Domains gone from the reply (undefined) are dropped. */
        for (i = 0; i < t->nrows;) {
                if (t->rows[i].seen) {
                        i++;
                        continue;
                }
                free(t->rows[i].name);
                memmove(&t->rows[i], &t->rows[i + 1], (t->nrows - i - 1) * sizeof(t->rows[0]));
                t->nrows--;
        }
        return 0;
}

/* 1536 -> "1.5K": binary units, one decimal below 100; "-" when unknown. */
static void human(char *buf, size_t len, double v)
{
        static const char units[] = "BKMGTP";
        size_t u = 0;

        if (v < 0) {
                snprintf(buf, len, "-");
                return;
        }
        while (v >= 1024 && u + 1 < sizeof(units) - 1) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, len, "%.0f%c", v, units[u]);
        else
                snprintf(buf, len, v < 100 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

static void percent(char *buf, size_t len, double v)
{
        if (v < 0)
                snprintf(buf, len, "-");
        else
                snprintf(buf, len, "%.1f", v);
}

/* Terminal columns, or 0 when unknown (no line is cut then). */
static size_t term_width(const struct top_ctx *t)
{
        struct winsize ws;

        if (t->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                return ws.ws_col;
        return 0;
}

/* One screen line, cut at the terminal's width; "\r\n" is right in raw mode and out of it. */
static void top_line(const struct top_ctx *t, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void top_line(const struct top_ctx *t, const char *fmt, ...)
{
        char line[512];
        size_t width = term_width(t);
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (width > 0 && strlen(line) > width)
                line[width] = '\0';
        /* Clear to the end of the line: a shorter line overwrites a longer one. */
        printf("%s%s\n", line, t->tty ? "\033[K" : "");
}

static void top_render(struct top_ctx *t)
{
        size_t namew = 4, running = 0;
        char clock[16];
        struct tm tm;

        qsort(t->rows, t->nrows, sizeof(t->rows[0]), t->sort->cmp);
        for (size_t i = 0; i < t->nrows; i++) {
                size_t len = strlen(t->rows[i].name);

                if (len > namew)
                        namew = len < 40 ? len : 40;
                if (strcmp(t->rows[i].state, "running") == 0)
                        running++;
        }
        localtime_r(&t->when, &tm);
        strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
        if (t->tty)
                printf("\033[H");
        top_line(t, "tether top - %s, %zu domains, %zu running, every %d s, sort: %s%s", clock,
                 t->nrows, running, t->interval, t->sort->name,
                 t->raw ? "  (q quit; sort: c cpu, m mem, d disk, n net, a name)" : "");
        top_line(t, "%s", "");
        top_line(t, "%-*s %-11s %6s %8s %8s %8s %8s %8s %6s %6s %s", (int)namew, "NAME", "STATE",
                 "%CPU", "MEM", "RD/s", "WR/s", "RX/s", "TX/s", "ROOT%", "LOAD", "AGENT");
        for (size_t i = 0; i < t->nrows; i++) {
                const struct top_row *r = &t->rows[i];
                char cpu[16], mem[16], rd[16], wr[16], rx[16], tx[16], root[16], load[16];

                percent(cpu, sizeof(cpu), rate_of(r, TOP_CPU) < 0 ? -1 : rate_of(r, TOP_CPU) * 100);
                human(mem, sizeof(mem), r->mem);
                human(rd, sizeof(rd), rate_of(r, TOP_RD));
                human(wr, sizeof(wr), rate_of(r, TOP_WR));
                human(rx, sizeof(rx), rate_of(r, TOP_RX));
                human(tx, sizeof(tx), rate_of(r, TOP_TX));
                percent(root, sizeof(root), r->rootfs);
                if (r->load1 < 0)
                        snprintf(load, sizeof(load), "-");
                else
                        snprintf(load, sizeof(load), "%.2f", r->load1);
                top_line(t, "%-*.*s %-11s %6s %8s %8s %8s %8s %8s %6s %6s %s", (int)namew,
                         (int)namew, r->name, r->state, cpu, mem, rd, wr, rx, tx, root, load,
                         r->agent);
        }
        if (t->tty)
                printf("\033[J");   /* clear what an earlier, longer screen left below */
        else
                printf("\n");
        fflush(stdout);
}

/* --once --json: the rows as data (null where a value is not known yet). */
static void top_print_json(struct top_ctx *t)
{
        _cleanup_json_ json_t *arr = json_array();

        qsort(t->rows, t->nrows, sizeof(t->rows[0]), t->sort->cmp);
        for (size_t i = 0; i < t->nrows; i++) {
                const struct top_row *r = &t->rows[i];
                double vals[] = {rate_of(r, TOP_CPU) < 0 ? -1 : rate_of(r, TOP_CPU) * 100, r->mem,
                                 rate_of(r, TOP_RD), rate_of(r, TOP_WR), rate_of(r, TOP_RX),
                                 rate_of(r, TOP_TX), r->rootfs, r->load1};
                static const char *const keys[] = {"cpu_percent", "mem_bytes", "disk_rd_bps",
                                                   "disk_wr_bps", "net_rx_bps", "net_tx_bps",
                                                   "root_fs_percent", "load1m"};
                json_t *o = json_pack("{s:s, s:s, s:s}", "name", r->name, "state", r->state,
                                      "agent", r->agent);

                for (size_t k = 0; k < TT_ARRAY_SIZE(keys); k++)
                        json_object_set_new(o, keys[k],
                                            vals[k] < 0 ? json_null() : json_real(vals[k]));
                json_array_append_new(arr, o);
        }
        cli_print_json(arr);
}

static void top_restore(struct top_ctx *t)
{
        if (t->raw) {
                tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
                t->raw = false;
        }
        if (t->tty) {
                /* Show the cursor; leave the alternate screen. */
                printf("\033[?25h\033[?1049l");
                fflush(stdout);
                t->tty = false;
        }
}

/* Wait up to ms for a key; returns it, 0 on timeout, -1 to stop. */
static int top_wait_key(struct top_ctx *t, int ms)
{
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        char ch;
        int n = poll(t->raw ? &pfd : NULL, t->raw ? 1 : 0, ms);

        if (top_stop)
                return -1;
        if (n <= 0)
                return 0;
        if (read(STDIN_FILENO, &ch, 1) != 1)
                return -1;  /* the terminal went away */
        return (unsigned char)ch;
}

int cli_run_top(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        struct top_ctx t = {.sort = top_sort_find(cli_flag_value(o, "sort") ?: "cpu", 0),
                            .interval = 2};
        const char *interval = cli_flag_value(o, "interval");
        bool once = cli_flag(o, "once");
        struct sigaction sa = {.sa_handler = top_on_signal};
        struct tt_error err = {0};
        int64_t n;
        int status = EXIT_SUCCESS;

        if (interval && tt_parse_int64(interval, 10, &n) == 0)
                t.interval = (int)n;
        /* Live mode redraws in place on a terminal; --once (or a pipe) prints plain text. */
        t.tty = !once && !o->json && isatty(STDOUT_FILENO);
        /* No SA_RESTART: a signal ends the wait at once. */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        if (!once && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t.saved) == 0) {
                struct termios raw = t.saved;

                /* Keys arrive one by one, unechoed; ISIG stays so Ctrl-C is SIGINT. */
                raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
                raw.c_cc[VMIN] = 1;
                raw.c_cc[VTIME] = 0;
                if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0)
                        t.raw = true;
        }
        if (t.tty)
                printf("\033[?1049h\033[?25l\033[H\033[2J");
        while (!top_stop) {
                _cleanup_json_ json_t *reply = cli_call(c, "domstats", args, &err);
                json_t *error = json_object_get(reply, "error");
                double deadline;
                int key = 0;

                if (reply == NULL || error) {
                        top_restore(&t);
                        cli_error("%s", reply ? json_string_value(json_object_get(error, "desc")) ?: "error"
                                              : err.msg);
                        tt_error_clear(&err);
                        status = EXIT_FAILURE;
                        break;
                }
                t.when = time(NULL);
                if (top_update(&t, json_object_get(reply, "return"), mono_now()) < 0) {
                        top_restore(&t);
                        cli_error("out of memory");
                        status = EXIT_FAILURE;
                        break;
                }
                if (once && o->json) {
                        top_print_json(&t);
                        break;
                }
                top_render(&t);
                if (once)
                        break;
                deadline = mono_now() + t.interval;
                while (key >= 0 && mono_now() < deadline) {
                        const struct top_sort *s;

                        key = top_wait_key(&t, (int)((deadline - mono_now()) * 1000) + 1);
                        if (key == 'q' || key == 'Q')
                                key = -1;
                        else if (key > 0 && (s = top_sort_find(NULL, (char)key))) {
                                t.sort = s;
                                top_render(&t);
                        }
                }
                if (key < 0)
                        break;
        }
        top_restore(&t);
        for (size_t i = 0; i < t.nrows; i++)
                free(t.rows[i].name);
        free(t.rows);
        return status;
}
