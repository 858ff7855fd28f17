/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * When the host stops: SIGTERM saves (managedsave) or shuts down every running guest, at most
 * cfg.parallel at a time, within cfg.timeout_s, then breaks the event loop. Every step is one of
 * the VM module's asynchronous jobs, so the control socket and the monitor keep serving. A guest
 * that ignores the ACPI power button is destroyed when the timeout passes (vm_shutdown --force's
 * escalation), and the log says so. Saved domains are recorded for the next start's --on-boot.
 */
#include "host/hoststop.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "host/tetherd.h"
#include "host/vm.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* After the timeout, jobs still running (saves, destroys) get this long before tetherd exits. */
#define HOSTSTOP_GRACE_S 60
/* The record of what the last host stop saved, in the state folder. */
#define HOSTSTOP_RECORD "hoststop-saved.json"
/* The record is small: names only. */
#define HOSTSTOP_RECORD_MAX (1u << 20)

enum item_state { ITEM_PENDING, ITEM_RUNNING, ITEM_DONE };

struct hoststop_item {
        struct hoststop *hs;   /* owner */
        char *name;            /* the domain (looked up again: a transient one may be freed) */
        enum item_state state; /* where it is */
};

struct hoststop {
        struct tetherd *d;
        struct hoststop_config cfg;
        bool running;               /* SIGTERM arrived: guests are being stopped */
        bool finished;              /* the loop was broken: late answers change nothing */
        bool past_deadline;         /* the timeout passed: only the grace period is left */
        struct hoststop_item *items;
        size_t n_items, n_started, n_busy, n_done;
        struct event *timer;        /* the timeout, then the grace period */
        double start;               /* monotonic seconds at SIGTERM */
        json_t *saved;              /* names saved so far (the record's "domains") */
        unsigned n_saved, n_shut, n_destroyed, n_failed;
};

static const char *const action_names[] = {
        [HOSTSTOP_IGNORE] = "ignore",
        [HOSTSTOP_MANAGEDSAVE] = "managedsave",
        [HOSTSTOP_SHUTDOWN] = "shutdown",
};
static const char *const boot_names[] = {
        [HOSTBOOT_START] = "start",
        [HOSTBOOT_IGNORE] = "ignore",
};

void hoststop_config_default(struct hoststop_config *c)
{
        *c = (struct hoststop_config){HOSTSTOP_IGNORE, HOSTBOOT_START, HOSTSTOP_TIMEOUT_S,
                                      HOSTSTOP_PARALLEL};
}

static int parse_choice(const char *text, const char *what, const char *const *names, size_t n,
                        int *out, struct tt_error *err)
{
        for (size_t i = 0; i < n; i++) {
                if (strcmp(text, names[i]) == 0) {
                        *out = (int)i;
                        return 0;
                }
        }
        if (n == 2)
                return tt_error_set(err, EINVAL, "%s: invalid value '%s': expected %s or %s",
                                    what, text, names[0], names[1]);
        return tt_error_set(err, EINVAL, "%s: invalid value '%s': expected %s, %s or %s", what,
                            text, names[1], names[2], names[0]);
}

int hoststop_parse_action(const char *text, const char *what, enum hoststop_action *out,
                          struct tt_error *err)
{
        int v = 0;

        if (parse_choice(text, what, action_names, TT_ARRAY_SIZE(action_names), &v, err) < 0)
                return -1;
        *out = (enum hoststop_action)v;
        return 0;
}

int hoststop_parse_boot(const char *text, const char *what, enum hostboot_action *out,
                        struct tt_error *err)
{
        int v = 0;

        if (parse_choice(text, what, boot_names, TT_ARRAY_SIZE(boot_names), &v, err) < 0)
                return -1;
        *out = (enum hostboot_action)v;
        return 0;
}

static double now_mono(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The domain named exactly name (never an id or uuid), or NULL. */
static struct vm *by_name(struct tetherd *d, const char *name)
{
        for (struct vm *vm = d->vms; vm; vm = vm->next)
                if (strcmp(vm->def->name, name) == 0)
                        return vm;
        return NULL;
}

static char *record_path(const struct tetherd *d)
{
        char *path = NULL;

        if (asprintf(&path, "%s/%s", d->store.state_dir, HOSTSTOP_RECORD) < 0)
                return NULL;
        return path;
}

/* Write the names saved so far; after each save, so that a kill -9 loses none. */
static void record_write(struct hoststop *hs)
{
        _cleanup_free_ char *path = record_path(hs->d);
        _cleanup_json_ json_t *doc = json_pack("{s:O}", "domains", hs->saved);
        _cleanup_free_ char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        struct tt_error err = {0};

        if (path == NULL || text == NULL ||
            tt_write_file_atomic(path, text, strlen(text), 0600, &err) < 0)
                tt_err("host stop: cannot record the saved domains in %s: %s",
                       path ? path : HOSTSTOP_RECORD, err.msg ? err.msg : "out of memory");
        tt_error_clear(&err);
}

int hoststop_setup(struct tetherd *d, const struct hoststop_config *c, struct tt_error *err)
{
        struct hoststop *hs = calloc(1, sizeof(*hs));

        if (hs == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        hs->d = d;
        hs->cfg = *c;
        if (hs->cfg.parallel < 1)
                hs->cfg.parallel = HOSTSTOP_PARALLEL;
        d->hoststop = hs;
        return 0;
}

void hoststop_free(struct tetherd *d)
{
        struct hoststop *hs = d->hoststop;

        if (hs == NULL)
                return;
        for (size_t i = 0; i < hs->n_items; i++)
                free(hs->items[i].name);
        free(hs->items);
        if (hs->timer)
                event_free(hs->timer);
        json_decref(hs->saved);
        free(hs);
        d->hoststop = NULL;
}

static void finish(struct hoststop *hs)
{
        if (hs->finished)
                return;
        hs->finished = true;
        tt_info("host stop: done in %.1f s: %u saved, %u shut down, %u destroyed, %u failed; "
                "exiting",
                now_mono() - hs->start, hs->n_saved, hs->n_shut, hs->n_destroyed, hs->n_failed);
        event_base_loopbreak(hs->d->base);
}

static void kick(struct hoststop *hs);

static void item_end(struct hoststop_item *it)
{
        struct hoststop *hs = it->hs;

        if (it->state == ITEM_RUNNING)
                hs->n_busy--;
        it->state = ITEM_DONE;
        hs->n_done++;
        kick(hs);
}

static void save_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct hoststop_item *it = opaque;
        struct hoststop *hs = it->hs;

        if (hs->finished)
                return;
        if (err) {
                tt_err("host stop: %s: managedsave failed: %s", it->name, err->msg);
                hs->n_failed++;
        } else {
                tt_info("host stop: %s: saved (managedsave)", it->name);
                json_array_append_new(hs->saved, json_string(it->name));
                record_write(hs);
                hs->n_saved++;
        }
        item_end(it);
}

static void shutdown_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct hoststop_item *it = opaque;
        struct hoststop *hs = it->hs;
        const char *reason = json_string_value(json_object_get(ret, "reason"));

        if (hs->finished)
                return;
        if (err) {
                tt_err("host stop: %s: shutdown failed: %s", it->name, err->msg);
                hs->n_failed++;
        } else if (reason && strcmp(reason, "destroyed") == 0) {
                tt_warn("host stop: %s: destroyed: it did not shut down within the "
                        "shutdown-timeout of %d s (does the guest ignore the ACPI power button?)",
                        it->name, hs->cfg.timeout_s);
                hs->n_destroyed++;
        } else {
                tt_info("host stop: %s: shut down", it->name);
                hs->n_shut++;
        }
        item_end(it);
}

static void destroy_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct hoststop_item *it = opaque;
        struct hoststop *hs = it->hs;

        if (hs->finished)
                return;
        if (err) {
                tt_err("host stop: %s: destroy failed: %s", it->name, err->msg);
                hs->n_failed++;
        } else {
                tt_warn("host stop: %s: destroyed: it could not be shut down", it->name);
                hs->n_destroyed++;
        }
        item_end(it);
}

/* Whole seconds of the timeout left, rounded up so that no guest is destroyed early (at least
 * 1: vm_shutdown needs a deadline). */
static int time_left(const struct hoststop *hs)
{
        double left = (double)hs->cfg.timeout_s - (now_mono() - hs->start);
        int whole = (int)left;

        if (whole < left)
                whole++;
        return whole < 1 ? 1 : whole;
}

/* Ask one guest; 0 when a job now runs for it, -1 when it is already over (logged). */
static int item_start(struct hoststop_item *it)
{
        struct hoststop *hs = it->hs;
        struct vm *vm = by_name(hs->d, it->name);
        struct vm_shutdown_opts o = {.modes = {VM_POWER_ACPI}, .n_modes = 1, .wait = true,
                                     .force = true};
        struct tt_error err = {0};

        if (vm == NULL || !vm_state_is_active(vm->status.state)) {
                tt_info("host stop: %s: no longer running", it->name);
                return -1;
        }
        if (hs->cfg.on_shutdown == HOSTSTOP_MANAGEDSAVE && vm->persistent) {
                if (vm_save(vm, -1, NULL, save_done, it, &err) == 0)
                        return 0;
                tt_err("host stop: %s: cannot save: %s", it->name, err.msg);
                hs->n_failed++;
                tt_error_clear(&err);
                return -1;
        }
        if (hs->cfg.on_shutdown == HOSTSTOP_MANAGEDSAVE)
                tt_info("host stop: %s: transient (no managed save): shutting it down",
                        it->name);
        /* The power button before the deadline; vm_power destroys it when the time is up. */
        o.timeout_s = hs->past_deadline ? 1 : time_left(hs);
        if (!hs->past_deadline && vm_shutdown(vm, &o, shutdown_done, it, &err) == 0)
                return 0;
        if (err.msg)
                tt_warn("host stop: %s: cannot shut down (%s): destroying it", it->name,
                        err.msg);
        else
                tt_warn("host stop: %s: the shutdown-timeout of %d s has passed: destroying it",
                        it->name, hs->cfg.timeout_s);
        tt_error_clear(&err);
        if (vm_destroy(vm, false, destroy_done, it, &err) == 0)
                return 0;
        tt_err("host stop: %s: cannot destroy: %s", it->name, err.msg);
        hs->n_failed++;
        tt_error_clear(&err);
        return -1;
}

/* Start guests until cfg.parallel run (all of them once the deadline passed); finish at the end. */
static void kick(struct hoststop *hs)
{
        while (hs->n_started < hs->n_items &&
               (hs->past_deadline || hs->n_busy < (size_t)hs->cfg.parallel)) {
                struct hoststop_item *it = &hs->items[hs->n_started++];

                if (item_start(it) == 0) {
                        it->state = ITEM_RUNNING;
                        hs->n_busy++;
                } else {
                        it->state = ITEM_DONE;
                        hs->n_done++;
                }
        }
        if (hs->n_done == hs->n_items)
                finish(hs);
}

static void on_timer(evutil_socket_t fd, short what, void *opaque)
{
        struct hoststop *hs = opaque;
        struct timeval grace = {HOSTSTOP_GRACE_S, 0};

        if (hs->finished)
                return;
        if (!hs->past_deadline) {
                hs->past_deadline = true;
                tt_warn("host stop: the shutdown-timeout of %d s has passed with %zu of %zu "
                        "guests not done",
                        hs->cfg.timeout_s, hs->n_items - hs->n_done, hs->n_items);
                evtimer_add(hs->timer, &grace);
                kick(hs);
                return;
        }
        for (size_t i = 0; i < hs->n_items; i++)
                if (hs->items[i].state == ITEM_RUNNING)
                        tt_err("host stop: %s: still busy %d s after the shutdown-timeout; "
                               "exiting anyway",
                               hs->items[i].name, HOSTSTOP_GRACE_S);
        finish(hs);
}

/* The record as a JSON array of names (empty when there is none or it is unreadable). */
static json_t *record_read(struct tetherd *d)
{
        _cleanup_free_ char *path = record_path(d);
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_t *doc = NULL;
        struct tt_error err = {0};
        size_t len = 0;
        json_t *names;

        if (path == NULL || access(path, F_OK) < 0)
                return json_array();
        if (tt_read_file(path, HOSTSTOP_RECORD_MAX, &text, &len, &err) < 0 ||
            (doc = json_loadb(text, len, 0, NULL)) == NULL ||
            !json_is_array(names = json_object_get(doc, "domains"))) {
                tt_err("host stop: ignoring %s: %s", path, err.msg ? err.msg : "invalid JSON");
                tt_error_clear(&err);
                return json_array();
        }
        return json_incref(names);
}

/*
 * Domains an earlier host stop saved and nobody restored since (still shut off with their
 * managed-save image) stay in the record: the next --on-boot start brings them back too.
 */
static void record_carry(struct hoststop *hs)
{
        _cleanup_json_ json_t *old = record_read(hs->d);
        size_t i;
        json_t *jname;

        json_array_foreach(old, i, jname) {
                const char *name = json_string_value(jname);
                struct vm *vm = name ? by_name(hs->d, name) : NULL;

                if (vm && !vm_state_is_active(vm->status.state) &&
                    store_has_managed_save(&hs->d->store, name))
                        json_array_append(hs->saved, jname);
        }
        if (json_array_size(hs->saved) != json_array_size(old))
                record_write(hs);
}

bool hoststop_running(const struct tetherd *d)
{
        return d->hoststop != NULL && d->hoststop->running;
}

bool hoststop_begin(struct tetherd *d)
{
        struct hoststop *hs = d->hoststop;
        struct timeval tv;
        size_t n = 0;

        if (hs == NULL || hs->cfg.on_shutdown == HOSTSTOP_IGNORE)
                return false;
        if (hs->running) {
                tt_info("host stop: already stopping the guests (%zu of %zu done)", hs->n_done,
                        hs->n_items);
                return true;
        }
        hs->running = true;
        hs->start = now_mono();
        hs->saved = json_array();
        for (struct vm *vm = d->vms; vm; vm = vm->next)
                n++;
        hs->items = calloc(n ? n : 1, sizeof(*hs->items));
        hs->timer = evtimer_new(d->base, on_timer, hs);
        if (hs->items == NULL || hs->saved == NULL || hs->timer == NULL) {
                tt_err("host stop: out of memory: exiting and leaving the guests running");
                return false;
        }
        for (struct vm *vm = d->vms; vm; vm = vm->next) {
                if (!vm_state_is_active(vm->status.state))
                        continue;
                hs->items[hs->n_items].hs = hs;
                hs->items[hs->n_items].name = strdup(vm->def->name);
                if (hs->items[hs->n_items].name)
                        hs->n_items++;
        }
        record_carry(hs);
        tt_info("host stop: %s of %zu running guests, %d at a time, within %d s",
                action_names[hs->cfg.on_shutdown], hs->n_items, hs->cfg.parallel,
                hs->cfg.timeout_s);
        tv = (struct timeval){hs->cfg.timeout_s, 0};
        evtimer_add(hs->timer, &tv);
        kick(hs);
        return true;
}

static void boot_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        char *name = opaque;

        if (err)
                tt_err("on-boot: %s: restore failed: %s", name, err->msg);
        else
                tt_info("on-boot: %s: restored", name);
        free(name);
}

void hoststop_boot(struct tetherd *d)
{
        struct hoststop *hs = d->hoststop;
        _cleanup_free_ char *path = record_path(d);
        _cleanup_json_ json_t *names = NULL;
        struct tt_error err = {0};
        size_t i;
        json_t *jname;

        if (path == NULL || access(path, F_OK) < 0)
                return;
        names = record_read(d);
        json_array_foreach(names, i, jname) {
                const char *name = json_string_value(jname);
                struct vm *vm = name ? by_name(d, name) : NULL;
                char *copy;

                if (vm == NULL) {
                        tt_warn("on-boot: %s: saved by the last host stop but no longer defined",
                                name ? name : "?");
                        continue;
                }
                if (vm_state_is_active(vm->status.state))
                        continue; /* autostart restored it already */
                if (!store_has_managed_save(&d->store, name)) {
                        tt_info("on-boot: %s: its managed-save image is gone: left shut off",
                                name);
                        continue;
                }
                if (hs && hs->cfg.on_boot == HOSTBOOT_IGNORE) {
                        tt_info("on-boot: %s: saved by the last host stop; left saved "
                                "(on-boot ignore)",
                                name);
                        continue;
                }
                copy = strdup(name);
                if (copy && vm_start(vm, 0, boot_done, copy, &err) == 0) {
                        tt_info("on-boot: %s: restoring (saved by the last host stop)", name);
                        continue;
                }
                tt_err("on-boot: %s: cannot restore: %s", name,
                       err.msg ? err.msg : "out of memory");
                free(copy);
                tt_error_clear(&err);
        }
        /* With on-boot ignore the record stays: a later start with on-boot start restores
           whatever is still saved. */
        if (hs == NULL || hs->cfg.on_boot == HOSTBOOT_START)
                unlink(path);
}
