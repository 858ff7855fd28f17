/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The web console's chart data: bounded rings fed by the monitor's samples (web_history.h). */
#include "host/web_history.h"
#include "host/domain.h"
#include "host/monitor.h"
#include "host/tetherd.h"
#include "host/vm.h"

#include <event2/event.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often the monitor's samples are looked at for new ones. */
#define HISTORY_TICK_MS 1000

enum series { S_CPU, S_MEMORY, S_DISK_READ, S_DISK_WRITE, S_NET_RX, S_NET_TX, S_ROOTFS, S_LAST };

static const char *const series_names[S_LAST] = {
    [S_CPU] = "cpu",
    [S_MEMORY] = "memory",
    [S_DISK_READ] = "disk_read",
    [S_DISK_WRITE] = "disk_write",
    [S_NET_RX] = "net_rx",
    [S_NET_TX] = "net_tx",
    [S_ROOTFS] = "rootfs",
};

struct point {
        uint32_t t;      /* epoch seconds */
        float v[S_LAST]; /* NAN: no value */
};

/* Counters of the last sample: rates are their differences. */
struct counters {
        double mono;                /* when (monotonic); 0: none yet */
        double cpu, rd, wr, rx, tx; /* seconds, bytes; NAN: not known */
};

struct ring {
        struct ring *next;
        char *name;           /* the domain's */
        struct point *points; /* WEB_HISTORY_POINTS, oldest at head when full */
        size_t head, count;
        struct counters last;
        double last_taken; /* the host sample recorded last (monotonic) */
};

struct web_history {
        struct tetherd *d;
        struct event *tick;
        struct ring *rings;
};

static double sum_field(json_t *arr, const char *field, const char *skip_key, const char *skip)
{
        double sum = 0;
        bool any = false;
        size_t i;
        json_t *x;

        json_array_foreach(arr, i, x)
        {
                json_t *v = json_object_get(x, field);
                const char *k = skip_key ? json_string_value(json_object_get(x, skip_key)) : NULL;

                if (k && skip && strcmp(k, skip) == 0)
                        continue;
                if (json_is_number(v)) {
                        sum += json_number_value(v);
                        any = true;
                }
        }
        return any ? sum : NAN;
}

/* The guest's interface counters (without lo), from guest-network-get-interfaces. */
static void guest_net(const struct vm *vm, double *rx, double *tx)
{
        json_t *ifs = monitor_fresh(vm, MON_INTERFACES), *ifc;
        size_t i;

        *rx = *tx = NAN;
        json_array_foreach(ifs, i, ifc)
        {
                const char *name = json_string_value(json_object_get(ifc, "name"));
                json_t *st = json_object_get(ifc, "statistics");

                if ((name && strcmp(name, "lo") == 0) || st == NULL)
                        continue;
                *rx = (isnan(*rx) ? 0 : *rx) + json_number_value(json_object_get(st, "rx-bytes"));
                *tx = (isnan(*tx) ? 0 : *tx) + json_number_value(json_object_get(st, "tx-bytes"));
        }
}

static float rate(double now, double before, double dt)
{
        if (isnan(now) || isnan(before) || dt <= 0 || now < before)
                return NAN;
        return (float)((now - before) / dt);
}

static float rootfs_use(const struct vm *vm)
{
        json_t *fss = monitor_fresh(vm, MON_FILESYSTEMS), *fs;
        size_t i;

        json_array_foreach(fss, i, fs)
        {
                const char *mp = json_string_value(json_object_get(fs, "mountpoint"));
                json_t *used = json_object_get(fs, "used-bytes");
                json_t *total = json_object_get(fs, "total-bytes");

                if (mp && strcmp(mp, "/") == 0 && json_is_number(used) && json_is_number(total) &&
                    json_number_value(total) > 0)
                        return (float)(100.0 * json_number_value(used) / json_number_value(total));
        }
        return NAN;
}

static void record(struct ring *r, const struct vm *vm, const struct monitor_sample *host)
{
        json_t *data = host->data, *mem = monitor_fresh(vm, MON_MEMORY);
        struct counters c = {.mono = host->taken_mono};
        double dt = r->last.mono > 0 ? c.mono - r->last.mono : 0;
        struct point *pt;

        c.cpu = json_is_number(json_object_get(data, "cpu_seconds"))
                    ? json_number_value(json_object_get(data, "cpu_seconds"))
                    : NAN;
        c.rd = sum_field(json_object_get(data, "block"), "rd_bytes", NULL, NULL);
        c.wr = sum_field(json_object_get(data, "block"), "wr_bytes", NULL, NULL);
        if (json_array_size(json_object_get(data, "net")) > 0) {
                c.rx = sum_field(json_object_get(data, "net"), "rx_bytes", NULL, NULL);
                c.tx = sum_field(json_object_get(data, "net"), "tx_bytes", NULL, NULL);
        } else {
                guest_net(vm, &c.rx, &c.tx);
        }
        pt = &r->points[(r->head + r->count) % WEB_HISTORY_POINTS];
        if (r->count == WEB_HISTORY_POINTS)
                r->head = (r->head + 1) % WEB_HISTORY_POINTS;
        else
                r->count++;
        pt->t = (uint32_t)host->taken;
        pt->v[S_CPU] = rate(c.cpu, r->last.cpu, dt) * 100;
        pt->v[S_MEMORY] = NAN;
        if (mem && json_is_number(json_object_get(mem, "total_bytes")) &&
            json_is_number(json_object_get(mem, "available_bytes")))
                pt->v[S_MEMORY] =
                    (float)(json_number_value(json_object_get(mem, "total_bytes")) -
                            json_number_value(json_object_get(mem, "available_bytes")));
        pt->v[S_DISK_READ] = rate(c.rd, r->last.rd, dt);
        pt->v[S_DISK_WRITE] = rate(c.wr, r->last.wr, dt);
        pt->v[S_NET_RX] = rate(c.rx, r->last.rx, dt);
        pt->v[S_NET_TX] = rate(c.tx, r->last.tx, dt);
        pt->v[S_ROOTFS] = rootfs_use(vm);
        r->last = c;
}

static struct ring *ring_of(struct web_history *h, const char *name)
{
        for (struct ring *r = h->rings; r; r = r->next)
                if (strcmp(r->name, name) == 0)
                        return r;
        return NULL;
}

static void ring_free(struct ring *r)
{
        free(r->name);
        free(r->points);
        free(r);
}

/* New host samples become points; rings of domains that are gone are dropped. */
static void on_tick(evutil_socket_t fd, short what, void *opaque)
{
        struct web_history *h = opaque;
        struct ring **pp = &h->rings;

        for (struct vm *vm = h->d->vms; vm; vm = vm->next) {
                const struct monitor_sample *host = monitor_sample(vm, MON_HOST);
                struct ring *r;

                if (host == NULL || host->data == NULL || host->failing)
                        continue;
                r = ring_of(h, vm->def->name);
                if (r && host->taken_mono <= r->last_taken)
                        continue;
                if (r == NULL) {
                        r = calloc(1, sizeof(*r));
                        if (r == NULL)
                                continue;
                        r->name = strdup(vm->def->name);
                        r->points = calloc(WEB_HISTORY_POINTS, sizeof(*r->points));
                        if (r->name == NULL || r->points == NULL) {
                                ring_free(r);
                                continue;
                        }
                        r->next = h->rings;
                        h->rings = r;
                }
                /* A restarted QEMU counts from zero: its first sample starts the rates again. */
                if (host->taken_mono - r->last_taken > 0 && r->last.mono > 0 &&
                    json_number_value(json_object_get(host->data, "cpu_seconds")) < r->last.cpu)
                        r->last.mono = 0;
                r->last_taken = host->taken_mono;
                record(r, vm, host);
        }
        while (*pp) {
                struct ring *r = *pp;
                struct tt_error err = {0};

                if (vm_lookup(h->d, r->name, &err) == NULL) {
                        tt_error_clear(&err);
                        *pp = r->next;
                        ring_free(r);
                        continue;
                }
                pp = &r->next;
        }
}

struct web_history *web_history_new(struct tetherd *d)
{
        struct web_history *h = calloc(1, sizeof(*h));
        struct timeval tv = {0, HISTORY_TICK_MS * 1000};

        if (h == NULL)
                return NULL;
        h->d = d;
        h->tick = event_new(d->base, -1, EV_PERSIST, on_tick, h);
        if (h->tick == NULL || event_add(h->tick, &tv) < 0) {
                web_history_free(h);
                return NULL;
        }
        return h;
}

void web_history_free(struct web_history *h)
{
        if (h == NULL)
                return;
        if (h->tick)
                event_free(h->tick);
        while (h->rings) {
                struct ring *r = h->rings;

                h->rings = r->next;
                ring_free(r);
        }
        free(h);
}

static json_t *value(float v)
{
        return isnan(v) ? json_null() : json_real(round((double)v * 100) / 100);
}

json_t *web_history_json(struct web_history *h, const char *name)
{
        struct ring *r = ring_of(h, name);
        json_t *out =
            json_pack("{s:s, s:i, s:[]}", "domain", name, "points", r ? (int)r->count : 0, "t");
        json_t *cols[S_LAST];

        if (out == NULL)
                return NULL;
        for (size_t s = 0; s < S_LAST; s++) {
                cols[s] = json_array();
                json_object_set_new(out, series_names[s], cols[s]);
        }
        for (size_t i = 0; r && i < r->count; i++) {
                const struct point *pt = &r->points[(r->head + i) % WEB_HISTORY_POINTS];

                json_array_append_new(json_object_get(out, "t"), json_integer(pt->t));
                for (size_t s = 0; s < S_LAST; s++)
                        json_array_append_new(cols[s], value(pt->v[s]));
        }
        return out;
}

json_t *web_history_cpu(struct web_history *h, size_t n)
{
        json_t *out = json_object();

        for (struct ring *r = h->rings; r && out; r = r->next) {
                json_t *arr = json_array();
                size_t from = r->count > n ? r->count - n : 0;

                for (size_t i = from; arr && i < r->count; i++)
                        json_array_append_new(
                            arr, value(r->points[(r->head + i) % WEB_HISTORY_POINTS].v[S_CPU]));
                json_object_set_new(out, r->name, arr);
        }
        return out;
}
