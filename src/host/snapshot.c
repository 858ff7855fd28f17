/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Domain snapshots: see snapshot.h. */
#include "host/snapshot.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "host/events.h"
#include "host/guest.h"
#include "host/qmp.h"
#include "host/vm-int.h"
#include "wire/wire.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* query-jobs polling while a QMP snapshot job runs. */
#define SNAP_POLL_MS 20
/* A snapshot job (memory state of a big guest) may take this long before it is failed. */
#define SNAP_JOB_TIMEOUT_S 600
/* qemu-img on one disk may take this long before it is killed. */
#define SNAP_IMG_TIMEOUT_S 300
/* The guest's filesystems freeze and thaw within this (fsfreeze hooks may run). */
#define SNAP_AGENT_TIMEOUT_S 60
/* A snapshot metadata file larger than this is refused (a domain XML is a few KiB). */
#define SNAP_MAX_XML (1u << 20)
/* qemu-img's output kept for the error message. */
#define SNAP_IMG_OUTPUT 4096

/* ---- where the metadata lives ---- */

static char *snap_dir(const struct vm *vm)
{
        char *p = NULL;

        if (asprintf(&p, "%s/snapshot/%s", vm->d->store.state_dir, vm->def->name) < 0)
                return NULL;
        return p;
}

static char *snap_path(const struct vm *vm, const char *name, const char *ext)
{
        char *p = NULL;

        if (asprintf(&p, "%s/snapshot/%s/%s%s", vm->d->store.state_dir, vm->def->name, name,
                     ext) < 0)
                return NULL;
        return p;
}

/* A name that is one file in the folder: no '/', no leading '.', not "current". */
static int snap_name_check(const char *name, struct tt_error *err)
{
        if (name[0] == '\0' || name[0] == '.' || strchr(name, '/') || strlen(name) > 200 ||
            strcmp(name, "current") == 0)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "invalid argument: invalid snapshot name '%s'", name);
        return 0;
}

/* ---- the metadata: libvirt's domainsnapshot XML ---- */

static char *xml_escape(const char *s);

struct snap {
        char *name;        /* <name> */
        char *parent;      /* <parent><name>, NULL for a root */
        char *description; /* <description>, or NULL */
        char *state;       /* running, paused, shutoff, disk-snapshot */
        long long ctime;   /* <creationTime> */
        bool external;     /* the disks' snapshots are overlays (--disk-only) */
        char *xml;         /* the whole document as stored */
};

struct snap_set {
        struct snap *v;    /* every snapshot with metadata, in folder order */
        size_t n;          /* how many */
        char *current;     /* the current one's name, or NULL */
};

static void snap_clear(struct snap *s)
{
        free(s->name);
        free(s->parent);
        free(s->description);
        free(s->state);
        free(s->xml);
        memset(s, 0, sizeof(*s));
}

static void snap_set_clear(struct snap_set *set)
{
        for (size_t i = 0; i < set->n; i++)
                snap_clear(&set->v[i]);
        free(set->v);
        free(set->current);
        memset(set, 0, sizeof(*set));
}

static struct snap *snap_find(struct snap_set *set, const char *name)
{
        for (size_t i = 0; name && i < set->n; i++)
                if (strcmp(set->v[i].name, name) == 0)
                        return &set->v[i];
        return NULL;
}

/* string(expr) of the document, or NULL when empty. */
static char *xp_str(xmlXPathContextPtr ctx, const char *expr)
{
        xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
        char *s = NULL;

        if (o && o->type == XPATH_STRING && o->stringval && o->stringval[0])
                s = strdup((const char *)o->stringval);
        xmlXPathFreeObject(o);
        return s;
}

static int snap_parse(const char *xml, size_t len, struct snap *s, struct tt_error *err)
{
        xmlDocPtr doc = xmlReadMemory(xml, (int)len, "snapshot.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        xmlXPathContextPtr ctx = doc ? xmlXPathNewContext(doc) : NULL;
        _cleanup_free_ char *ctime = NULL, *mem = NULL;
        int64_t t = 0;

        memset(s, 0, sizeof(*s));
        if (ctx == NULL) {
                xmlFreeDoc(doc);
                return tt_error_set(err, VM_ERR_CONFIG,
                                    "XML error: cannot parse the snapshot document");
        }
        s->name = xp_str(ctx, "string(/domainsnapshot/name)");
        s->parent = xp_str(ctx, "string(/domainsnapshot/parent/name)");
        s->description = xp_str(ctx, "string(/domainsnapshot/description)");
        s->state = xp_str(ctx, "string(/domainsnapshot/state)");
        ctime = xp_str(ctx, "string(/domainsnapshot/creationTime)");
        mem = xp_str(ctx, "string(/domainsnapshot/disks/disk[@snapshot='external']/@name)");
        s->external = mem != NULL;
        xmlXPathFreeContext(ctx);
        xmlFreeDoc(doc);
        if (ctime && tt_parse_int64(ctime, 10, &t) == 0)
                s->ctime = t;
        s->xml = strndup(xml, len);
        if (s->name == NULL || s->xml == NULL) {
                snap_clear(s);
                return tt_error_set(err, VM_ERR_CONFIG,
                                    "XML error: a domain snapshot needs a name");
        }
        return 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n > m && strcmp(s + n - m, suffix) == 0;
}

static void stale_cleanup(struct vm *vm, const char *name);

/*
 * A pending marker is left by a job that never ended (the daemon was killed): the snapshot was
 * never recorded, so say so, and delete what QEMU or qemu-img may have written of it into the
 * images; the marker goes when that is done. A job of this daemon keeps its marker.
 */
static void snap_drop_stale(struct vm *vm, const char *dir, const char *file)
{
        _cleanup_free_ char *name = strndup(file, strlen(file) - strlen(".pending"));

        if (name == NULL || (vm->job && strncmp(vm->job, "snapshot-", 9) == 0))
                return;
        tt_warn("%s: snapshot job for '%s' failed: tetherd stopped before it ended; nothing "
                "was recorded",
                vm->def->name, name);
        stale_cleanup(vm, name);
}

/* Read every snapshot of the domain (an absent folder is no snapshots). */
static int snap_set_load(struct vm *vm, struct snap_set *set, struct tt_error *err)
{
        _cleanup_free_ char *dir = snap_dir(vm);
        _cleanup_free_ char *cur = NULL;
        DIR *dh;
        struct dirent *de;
        int rc = 0;

        memset(set, 0, sizeof(*set));
        if (dir == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        dh = opendir(dir);
        if (dh == NULL) {
                if (errno == ENOENT)
                        return 0;
                return tt_error_errno(err, errno, "cannot read '%s'", dir);
        }
        while ((de = readdir(dh)) != NULL) {
                _cleanup_free_ char *path = NULL, *xml = NULL;
                size_t len = 0;
                struct snap s, *bigger;

                if (de->d_name[0] == '.')
                        continue;
                if (has_suffix(de->d_name, ".pending")) {
                        snap_drop_stale(vm, dir, de->d_name);
                        continue;
                }
                if (!has_suffix(de->d_name, ".xml"))
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
                        rc = tt_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                if (tt_read_file(path, SNAP_MAX_XML, &xml, &len, err) < 0 ||
                    snap_parse(xml, len, &s, err) < 0) {
                        tt_error_prefix(err, "snapshot metadata '%s': ", path);
                        rc = -1;
                        break;
                }
                bigger = reallocarray(set->v, set->n + 1, sizeof(*set->v));
                if (bigger == NULL) {
                        snap_clear(&s);
                        rc = tt_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                set->v = bigger;
                set->v[set->n++] = s;
        }
        closedir(dh);
        if (rc < 0) {
                snap_set_clear(set);
                return rc;
        }
        cur = snap_path(vm, "current", "");
        if (cur) {
                set->current = tt_read_line_file(cur);
                if (set->current && snap_find(set, set->current) == NULL) {
                        free(set->current);
                        set->current = NULL;
                }
        }
        return 0;
}

static int snap_set_current(struct vm *vm, const char *name, struct tt_error *err)
{
        _cleanup_free_ char *path = snap_path(vm, "current", "");

        if (path == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (name == NULL) {
                if (unlink(path) < 0 && errno != ENOENT)
                        return tt_error_errno(err, errno, "cannot remove '%s'", path);
                return 0;
        }
        /* Replace without fsync: a crash of the machine may only leave the previous one. */
        return tt_write_file_replace(path, name, strlen(name), 0600, err);
}

static int snap_write(struct vm *vm, const char *name, const char *xml, struct tt_error *err)
{
        _cleanup_free_ char *dir = snap_dir(vm);
        _cleanup_free_ char *path = snap_path(vm, name, ".xml");

        if (dir == NULL || path == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (tt_mkdir_p(dir, 0700, err) < 0)
                return -1;
        return tt_write_file_atomic(path, xml, strlen(xml), 0600, err);
}

static int snap_unlink(struct vm *vm, const char *name, const char *ext)
{
        _cleanup_free_ char *path = snap_path(vm, name, ext);

        if (path == NULL)
                return -1;
        if (unlink(path) < 0 && errno != ENOENT) {
                tt_warn("%s: cannot remove '%s': %s", vm->def->name, path, strerror(errno));
                return -1;
        }
        return 0;
}

/*
 * Rewrite a snapshot's <parent> (its parent was deleted): libvirt re-parents the children. The
 * document is our own (snap_format), so its <parent> block has one known shape.
 */
static int snap_reparent(struct vm *vm, struct snap *s, const char *parent, struct tt_error *err)
{
        _cleanup_free_ char *old = NULL, *new = NULL, *oldname = xml_escape(s->parent);
        _cleanup_free_ char *newname = parent ? xml_escape(parent) : strdup("");
        char *at, *out = NULL;
        int rc;

        if (oldname == NULL || newname == NULL ||
            asprintf(&old, "  <parent>\n    <name>%s</name>\n  </parent>\n", oldname) < 0 ||
            asprintf(&new, parent ? "  <parent>\n    <name>%s</name>\n  </parent>\n" : "%s",
                     newname) < 0)
                return tt_error_set(err, ENOMEM, "out of memory");
        at = strstr(s->xml, old);
        if (at == NULL)
                return tt_error_set(err, VM_ERR_CONFIG,
                                    "snapshot '%s': its metadata has no <parent> to change",
                                    s->name);
        if (asprintf(&out, "%.*s%s%s", (int)(at - s->xml), s->xml, new, at + strlen(old)) < 0)
                return tt_error_set(err, ENOMEM, "out of memory");
        rc = snap_write(vm, s->name, out, err);
        free(out);
        return rc;
}

/* ---- building the document ---- */

struct sbuf {
        char *s;    /* the text, NUL-terminated */
        size_t len; /* its length */
        bool oom;   /* an append failed */
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
        va_list ap;
        char *piece = NULL, *bigger;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&piece, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        bigger = realloc(b->s, b->len + (size_t)n + 1);
        if (bigger == NULL) {
                free(piece);
                b->oom = true;
                return;
        }
        memcpy(bigger + b->len, piece, (size_t)n + 1);
        b->s = bigger;
        b->len += (size_t)n;
        free(piece);
}

/* Text with &, <, >, ' and " escaped for an element or attribute (malloc'd). */
static char *xml_escape(const char *s)
{
        struct sbuf b = {0};

        sb_add(&b, "%s", "");
        for (; *s; s++) {
                switch (*s) {
                case '&': sb_add(&b, "&amp;"); break;
                case '<': sb_add(&b, "&lt;"); break;
                case '>': sb_add(&b, "&gt;"); break;
                case '\'': sb_add(&b, "&apos;"); break;
                case '"': sb_add(&b, "&quot;"); break;
                default: sb_add(&b, "%c", *s); break;
                }
        }
        if (b.oom) {
                free(b.s);
                return NULL;
        }
        return b.s;
}

/* A disk QEMU writes to: it holds an internal snapshot (and must be qcow2). */
static bool disk_writable(const struct domain_disk *dk)
{
        return dk->source && !dk->readonly && dk->device == DOMAIN_DISK_DISK;
}

/*
 * The document libvirt writes: name, description, state, parent, creationTime, memory, disks,
 * and the domain as it was (indented by two).
 */
static char *snap_format(const struct vm *vm, const char *name, const char *description,
                         const char *state, const char *parent, long long ctime, bool memory,
                         const char *const *overlays)
{
        const struct domain *def = vm->live ? vm->live : vm->def;
        _cleanup_free_ char *dom = domain_format_flags(def, 0);
        _cleanup_free_ char *ename = xml_escape(name);
        struct sbuf b = {0};

        if (dom == NULL || ename == NULL)
                return NULL;
        sb_add(&b, "<domainsnapshot>\n  <name>%s</name>\n", ename);
        if (description) {
                _cleanup_free_ char *d = xml_escape(description);

                sb_add(&b, "  <description>%s</description>\n", d ? d : "");
        }
        sb_add(&b, "  <state>%s</state>\n", state);
        if (parent) {
                _cleanup_free_ char *p = xml_escape(parent);

                sb_add(&b, "  <parent>\n    <name>%s</name>\n  </parent>\n", p ? p : "");
        }
        sb_add(&b, "  <creationTime>%lld</creationTime>\n", ctime);
        sb_add(&b, "  <memory snapshot='%s'/>\n", memory ? "internal" : "no");
        sb_add(&b, "  <disks>\n");
        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *dk = &def->disks[i];

                if (!disk_writable(dk)) {
                        sb_add(&b, "    <disk name='%s' snapshot='no'/>\n", dk->target);
                } else if (overlays) {
                        _cleanup_free_ char *src = xml_escape(overlays[i]);

                        sb_add(&b,
                               "    <disk name='%s' snapshot='external' type='file'>\n"
                               "      <driver type='qcow2'/>\n"
                               "      <source file='%s'/>\n"
                               "    </disk>\n",
                               dk->target, src ? src : "");
                } else {
                        sb_add(&b, "    <disk name='%s' snapshot='internal'/>\n", dk->target);
                }
        }
        sb_add(&b, "  </disks>\n");
        for (char *line = dom, *nl; *line; line = nl + 1) {
                nl = strchr(line, '\n');
                if (nl == NULL) {
                        sb_add(&b, "  %s\n", line);
                        break;
                }
                sb_add(&b, "  %.*s\n", (int)(nl - line), line);
        }
        sb_add(&b, "</domainsnapshot>\n");
        if (b.oom) {
                free(b.s);
                return NULL;
        }
        return b.s;
}

/* ---- a job ---- */

enum snapjob_kind { SJ_CREATE, SJ_REVERT, SJ_DELETE };

/* One writable disk of a --disk-only snapshot: its new overlay. */
struct snap_disk {
        size_t idx;          /* index in the definition's disks */
        char *target;        /* vda, ... */
        char *src;           /* the image it writes to now (the overlay's backing file) */
        const char *fmt;     /* that image's format */
        char *overlay;       /* the new qcow2 image */
        long long size;      /* its virtual size (running: the backing is QEMU's), or -1 */
        char *top;           /* running: the node the device writes to now */
        char node[32];       /* running: the overlay's format node ("-f"; "-s" the file) */
        bool added;          /* running: its nodes were added */
        long long fdset;     /* running: the fdset holding its descriptors, or -1 */
};

struct snapjob;
/* The next step of a job, after the previous one ended (errmsg NULL) or failed. */
typedef void (*snap_next_fn)(struct snapjob *sj, const char *errmsg);

/* A snapshot job while it runs; it holds the domain's job (vm->job == jobname). */
#define SNAPJOB_MAGIC 0x534e4150u /* "SNAP": vm->job points into a live snapjob */

struct snapjob {
        char jobname[24];            /* vm->job while ours ("snapshot-create", ...); first */
        unsigned magic;              /* SNAPJOB_MAGIC */
        struct tetherd *d;           /* the daemon */
        char *domain;                /* the domain's name: it is looked up again at each step */
        enum snapjob_kind kind;      /* what runs */
        char *name;                  /* the snapshot */
        const char *tag;             /* the one the QMP job or qemu-img works on (name, or a
                                        child of it for delete --children) */
        char *description;           /* create: --description */
        char *parent;                /* create: the current snapshot before */
        char *state;                 /* create: the domain's state word; revert: the target's */
        long long ctime;             /* create: creation time */
        bool quiesce, frozen;        /* create --quiesce, and the guest is frozen now */
        bool no_metadata;            /* create --no-metadata */
        bool disk_only;              /* create --disk-only */
        bool start_running;          /* revert: run afterwards */
        bool start_paused;           /* revert: stay paused afterwards (--paused) */
        char *error;                 /* the first failure, reported at the end */
        /* a QMP job */
        char job_id[48];             /* its job-id */
        const char *qcmd;            /* snapshot-save, snapshot-load or snapshot-delete */
        bool polling;                /* query-jobs polls it (a timer or a query in flight) */
        bool aborting;               /* QEMU said the job is aborting: it failed */
        bool starting;               /* create_start() runs: an end now is deferred to it */
        bool finished;               /* ... and one came */
        struct event *timer;         /* query-jobs polling */
        struct timespec deadline;    /* when it is failed */
        snap_next_fn next;           /* what follows the QMP job or the qemu-img runs */
        /* qemu-img runs, one disk after another */
        char **disks;                /* image paths, NULL-terminated */
        size_t disk_i;               /* the disk in progress */
        const char *img_op;          /* "-c", "-a" or "-d" */
        pid_t img_pid;               /* the intermediate child */
        int status_fd;               /* its status pipe */
        int out_fd;                  /* qemu-img's stdout and stderr */
        struct event *status_ev;     /* reads the status */
        /* delete --children: the names left, deepest first */
        char **queue;                /* NULL-terminated */
        size_t queue_i;              /* the next one */
        /* revert: the caller, while a start or destroy holds the domain's job */
        vm_done_fn caller_done;      /* its completion */
        void *caller_opaque;         /* and argument */
        struct domain *sdef;         /* revert: the definition stored in the snapshot */
        bool def_restored;           /* revert: ... is the domain's now (Defined Snapshot) */
        bool in_place;               /* revert: loaded into the running QEMU */
        /* disk-only overlays: one per disk (NULL where none) */
        char **overlays;             /* new image paths, by index in the definition */
        struct snap_disk *sdisks;    /* the writable disks and their overlays */
        size_t n_sdisks;             /* how many */
        size_t sd_i;                 /* the one in progress (QMP steps) */
        int sd_fd;                   /* its overlay, open for add-fd, or -1 */
};

static void strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static void snapjob_free(struct snapjob *sj)
{
        if (sj->timer)
                event_free(sj->timer);
        if (sj->status_ev)
                event_free(sj->status_ev);
        if (sj->status_fd >= 0)
                close(sj->status_fd);
        if (sj->out_fd >= 0)
                close(sj->out_fd);
        free(sj->domain);
        free(sj->name);
        free(sj->description);
        free(sj->parent);
        free(sj->state);
        free(sj->error);
        if (sj->sdef)
                domain_free(sj->sdef);
        strv_free(sj->disks);
        strv_free(sj->queue);
        free(sj->overlays); /* its strings are the sdisks' */
        for (size_t i = 0; i < sj->n_sdisks; i++) {
                free(sj->sdisks[i].target);
                free(sj->sdisks[i].src);
                free(sj->sdisks[i].overlay);
                free(sj->sdisks[i].top);
        }
        free(sj->sdisks);
        if (sj->sd_fd >= 0)
                close(sj->sd_fd);
        free(sj);
}

/* The domain, while the job is still ours (QEMU's death or a destroy may have ended it). */
static struct vm *sj_vm(struct snapjob *sj)
{
        struct vm *vm = vm_lookup_name(sj->d, sj->domain);

        if (vm == NULL || vm->job != sj->jobname)
                return NULL;
        return vm;
}

static void sj_note_error(struct snapjob *sj, const char *msg)
{
        if (sj->error == NULL)
                sj->error = strdup(msg);
}

/* The end: answer the caller, drop the pending marker, free the job. */
static void sj_finish(struct snapjob *sj, const char *errmsg)
{
        struct vm *vm = sj_vm(sj);

        if (errmsg)
                sj_note_error(sj, errmsg);
        if (sj->starting) {
                sj->finished = true;
                return;
        }
        if (sj->kind == SJ_CREATE) {
                /* Also when the job was taken from us (QEMU died): nothing half-made stays. */
                struct vm *owner = vm ? vm : vm_lookup_name(sj->d, sj->domain);

                if (owner && (owner->job == NULL || owner->job == sj->jobname))
                        snap_unlink(owner, sj->name, ".pending");
        }
        if (vm) {
                if (sj->error) {
                        tt_err("%s: %s", vm->def->name, sj->error);
                        vm_end_job_error(vm, VM_ERR_FAILED, sj->error);
                } else {
                        _cleanup_json_ json_t *ret = json_pack("{s:s}", "name", sj->name);
                        static const char *const actions[] = {
                                [SJ_CREATE] = "created", [SJ_REVERT] = "reverted",
                                [SJ_DELETE] = "deleted"};

                        if (sj->kind == SJ_REVERT && sj->def_restored)
                                events_emit_lifecycle(sj->d->events, sj->domain,
                                                      EVENTS_LIFE_DEFINED,
                                                      EVENTS_DEFINED_SNAPSHOT);
                        events_emit_snapshot(sj->d->events, sj->domain, sj->name,
                                             actions[sj->kind]);
                        vm_end_job(vm, ret, NULL);
                }
        }
        snapjob_free(sj);
}

/* ---- QMP jobs: snapshot-save, snapshot-load, snapshot-delete ---- */

static void qjob_poll_arm(struct snapjob *sj);

static void qjob_dismissed(void *opaque, json_t *ret, const struct tt_error *err)
{
        /* A concluded job that cannot be dismissed only costs QEMU a little memory. */
}

static void qjob_end(struct snapjob *sj, struct vm *vm, const char *errmsg)
{
        if (vm && vm->qmp)
                qmp_command(vm->qmp, "job-dismiss", json_pack("{s:s}", "id", sj->job_id),
                            VM_QMP_TIMEOUT_MS, qjob_dismissed, NULL);
        sj->next(sj, errmsg);
}

static void qjob_polled(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;
        struct vm *vm = sj_vm(sj);
        struct timespec now;
        size_t i;
        json_t *job;

        if (vm == NULL) {
                sj_finish(sj, NULL);
                return;
        }
        if (err) {
                sj->next(sj, err->msg);
                return;
        }
        json_array_foreach(ret, i, job) {
                const char *id = json_string_value(json_object_get(job, "id"));
                const char *status = json_string_value(json_object_get(job, "status"));
                const char *error = json_string_value(json_object_get(job, "error"));

                if (id == NULL || strcmp(id, sj->job_id) != 0 || status == NULL)
                        continue;
                if (strcmp(status, "concluded") == 0 || strcmp(status, "null") == 0) {
                        sj->polling = false;
                        qjob_end(sj, vm, error);
                        return;
                }
                break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > sj->deadline.tv_sec) {
                qmp_command(vm->qmp, "job-cancel", json_pack("{s:s}", "id", sj->job_id),
                            VM_QMP_TIMEOUT_MS, qjob_dismissed, NULL);
                sj->next(sj, "operation failed: the snapshot job timed out");
                return;
        }
        qjob_poll_arm(sj);
}

static void qjob_tick(evutil_socket_t fd, short what, void *opaque)
{
        struct snapjob *sj = opaque;
        struct vm *vm = sj_vm(sj);

        if (vm == NULL || vm->qmp == NULL) {
                sj_finish(sj, "operation failed: domain is not running");
                return;
        }
        if (qmp_command(vm->qmp, "query-jobs", NULL, VM_QMP_TIMEOUT_MS, qjob_polled, sj) < 0)
                sj->next(sj, "operation failed: cannot talk to QEMU");
}

static void qjob_poll_arm(struct snapjob *sj)
{
        struct timeval tv = {0, SNAP_POLL_MS * 1000};

        if (sj->timer == NULL)
                sj->timer = evtimer_new(sj->d->base, qjob_tick, sj);
        if (sj->timer == NULL || evtimer_add(sj->timer, &tv) < 0)
                sj->next(sj, "out of memory");
}

static void qjob_started(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;

        if (sj_vm(sj) == NULL) {
                sj_finish(sj, NULL);
                return;
        }
        if (err) {
                sj->next(sj, err->msg);
                return;
        }
        sj->polling = true;
        qjob_poll_arm(sj);
}

void snapshot_on_qmp_event(struct vm *vm, const char *name, json_t *data)
{
        struct snapjob *sj;
        const char *id, *status;

        if (strcmp(name, "JOB_STATUS_CHANGE") != 0 || vm->job == NULL ||
            strncmp(vm->job, "snapshot-", 9) != 0)
                return;
        /* vm->job is the jobname of the running snapjob (its first member). */
        sj = (struct snapjob *)(void *)vm->job;
        id = json_string_value(json_object_get(data, "id"));
        status = json_string_value(json_object_get(data, "status"));
        if (sj->magic != SNAPJOB_MAGIC || !sj->polling || id == NULL || status == NULL ||
            strcmp(id, sj->job_id) != 0)
                return;
        tt_debug("%s: QEMU job %s: %s", vm->def->name, id, status);
        /* QEMU's jobs conclude through "aborting" when they fail, through "pending" when they
           succeed: only a failure needs query-jobs (for its error). */
        if (strcmp(status, "aborting") == 0)
                sj->aborting = true;
        if (strcmp(status, "concluded") != 0)
                return;
        /* The job ended, and no query-jobs is in flight: done now rather than at the next
           poll (a query in flight answers for it). */
        if (sj->timer && evtimer_pending(sj->timer, NULL)) {
                event_del(sj->timer);
                if (sj->aborting) {
                        qjob_tick(-1, EV_TIMEOUT, sj);
                } else {
                        sj->polling = false;
                        qjob_end(sj, vm, NULL);
                }
        }
}

static void create_pending(struct snapjob *sj, struct vm *vm);
static bool qdev_is(const char *qdev, const char *id);
static void disk_device_id(const struct domain_disk *dk, char *buf, size_t len);

/* The node disk i's device writes to now (an overlay's after --disk-only), from query-block. */
static const char *top_node(json_t *blocks, const struct domain_disk *dk)
{
        char id[48];
        size_t i;
        json_t *b;

        disk_device_id(dk, id, sizeof(id));
        json_array_foreach(blocks, i, b)
                if (qdev_is(json_string_value(json_object_get(b, "qdev")), id))
                        return json_string_value(
                                json_object_get(json_object_get(b, "inserted"), "node-name"));
        return NULL;
}

/* query-block answered: start the job on every writable disk's top node. */
static void qjob_issue(void *opaque, json_t *blocks, const struct tt_error *err)
{
        struct snapjob *sj = opaque;
        struct vm *vm = sj_vm(sj);
        json_t *devices, *args;
        const char *vmstate = NULL;
        char node[48];
        struct timespec now;

        if (vm == NULL) {
                sj_finish(sj, NULL);
                return;
        }
        if (err) {
                sj->next(sj, err->msg);
                return;
        }
        devices = json_array();
        clock_gettime(CLOCK_MONOTONIC, &now);
        snprintf(sj->job_id, sizeof(sj->job_id), "tether-snapshot-%lld%09ld",
                 (long long)now.tv_sec, now.tv_nsec);
        sj->deadline = now;
        sj->deadline.tv_sec += SNAP_JOB_TIMEOUT_S;
        for (size_t i = 0; i < vm->live->n_disks; i++) {
                const char *top;

                if (!disk_writable(&vm->live->disks[i]))
                        continue;
                top = top_node(blocks, &vm->live->disks[i]);
                if (top == NULL) {
                        snprintf(node, sizeof(node), "libvirt-%zu-format", i + 1);
                        top = node;
                }
                json_array_append_new(devices, json_string(top));
                if (vmstate == NULL)
                        vmstate = json_string_value(json_array_get(devices, 0));
        }
        args = json_pack("{s:s, s:s, s:o}", "job-id", sj->job_id, "tag", sj->tag, "devices",
                         devices);
        if (strcmp(sj->qcmd, "snapshot-delete") != 0)
                json_object_set_new(args, "vmstate", json_string(vmstate));
        if (qmp_command(vm->qmp, sj->qcmd, args, VM_QMP_TIMEOUT_MS, qjob_started, sj) < 0) {
                sj->next(sj, "operation failed: cannot talk to QEMU");
                return;
        }
        tt_debug("%s: QEMU job %s: %s sent", vm->def->name, sj->job_id, sj->qcmd);
        /* The marker's fsyncs while QEMU saves, not before: it exists before the job can end
           (its end is heard on this loop), so a kill -9 from now on still finds it. */
        if (sj->kind == SJ_CREATE)
                create_pending(sj, vm);
}

/*
 * Run a snapshot-save / -load / -delete job on every writable disk (the first one holds the
 * memory state), then next.
 */
static void qjob_run(struct snapjob *sj, struct vm *vm, const char *cmd, snap_next_fn next)
{
        sj->next = next;
        sj->qcmd = cmd;
        if (qmp_command(vm->qmp, "query-block", NULL, VM_QMP_TIMEOUT_MS, qjob_issue, sj) < 0)
                next(sj, "operation failed: cannot talk to QEMU");
}

/* ---- qemu-img, as a child process the loop waits for ---- */

static void img_next_disk(struct snapjob *sj);
static int take_job(struct vm *vm, struct snapjob *sj, const char *job, vm_done_fn done,
                    void *opaque, struct tt_error *err);
static struct snapjob *snapjob_new(struct vm *vm, enum snapjob_kind kind, const char *name);

static void img_status(evutil_socket_t fd, short what, void *opaque)
{
        struct snapjob *sj = opaque;
        int status = -1;
        ssize_t n;
        char out[SNAP_IMG_OUTPUT];
        ssize_t olen;

        if (what & EV_TIMEOUT) {
                /* qemu-img hangs: kill the intermediate child's process group. */
                if (sj->img_pid > 0)
                        kill(-sj->img_pid, SIGKILL);
                event_del(sj->status_ev);
                close(sj->status_fd);
                sj->status_fd = -1;
                close(sj->out_fd);
                sj->out_fd = -1;
                sj->next(sj, "operation failed: qemu-img timed out");
                return;
        }
        do
                n = read(sj->status_fd, &status, sizeof(status));
        while (n < 0 && errno == EINTR);
        event_del(sj->status_ev);
        close(sj->status_fd);
        sj->status_fd = -1;
        olen = read(sj->out_fd, out, sizeof(out) - 1);
        close(sj->out_fd);
        sj->out_fd = -1;
        out[olen > 0 ? olen : 0] = '\0';
        while (olen > 0 && (out[olen - 1] == '\n' || out[olen - 1] == ' '))
                out[--olen] = '\0';
        if (n != (ssize_t)sizeof(status) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                char msg[SNAP_IMG_OUTPUT + 256];

                snprintf(msg, sizeof(msg), "internal error: qemu-img %s%s '%s' failed: %s",
                         strcmp(sj->img_op, "create") == 0 ? "" : "snapshot ", sj->img_op,
                         sj->disks[sj->disk_i], out[0] ? out : "no message");
                sj->next(sj, msg);
                return;
        }
        sj->disk_i++;
        img_next_disk(sj);
}

/*
 * Start `qemu-img snapshot OP TAG PATH`. An intermediate child waits for it and writes its
 * status to a pipe: the daemon's SIGCHLD handler reaps every child it sees, so the status
 * would be lost otherwise.
 */
static int img_spawn(struct snapjob *sj, const char *path, struct tt_error *err)
{
        const char *argv[16];
        char size[32];
        int sp[2], op[2];
        pid_t pid;
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        struct timeval tv = {SNAP_IMG_TIMEOUT_S, 0};

        /* The command line is made before the fork: the child only execs it. */
        if (strcmp(sj->img_op, "create") == 0) {
                const struct snap_disk *sd = &sj->sdisks[sj->disk_i];
                size_t n = 0;

                argv[n++] = "qemu-img";
                argv[n++] = "create";
                argv[n++] = "-q";
                argv[n++] = "-f";
                argv[n++] = "qcow2";
                argv[n++] = "-F";
                argv[n++] = sd->fmt;
                argv[n++] = "-b";
                argv[n++] = sd->src;
                if (sd->size >= 0)
                        argv[n++] = "-u"; /* QEMU holds the backing file: give its size */
                argv[n++] = sd->overlay;
                if (sd->size >= 0) {
                        snprintf(size, sizeof(size), "%lld", sd->size);
                        argv[n++] = size;
                }
                argv[n] = NULL;
        } else {
                argv[0] = "qemu-img";
                argv[1] = "snapshot";
                argv[2] = sj->img_op;
                argv[3] = sj->tag;
                argv[4] = path;
                argv[5] = NULL;
        }
        if (devnull < 0)
                return tt_error_errno(err, errno, "cannot open /dev/null");
        if (pipe2(sp, O_CLOEXEC) < 0) {
                close(devnull);
                return tt_error_errno(err, errno, "cannot make a pipe");
        }
        if (pipe2(op, O_CLOEXEC | O_NONBLOCK) < 0) {
                close(devnull);
                close(sp[0]);
                close(sp[1]);
                return tt_error_errno(err, errno, "cannot make a pipe");
        }
        pid = fork();
        if (pid < 0) {
                tt_error_errno(err, errno, "cannot fork");
                close(devnull);
                close(sp[0]);
                close(sp[1]);
                close(op[0]);
                close(op[1]);
                return -1;
        }
        if (pid == 0) {
                /* Only async-signal-safe calls from here on. */
                pid_t child;
                int status = -1;

                setpgid(0, 0);
                child = fork();
                if (child == 0) {
                        dup2(devnull, 0);
                        dup2(op[1], 1);
                        dup2(op[1], 2);
                        execvp("qemu-img", (char *const *)argv);
                        _exit(127);
                }
                if (child > 0)
                        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                                ;
                if (write(sp[1], &status, sizeof(status)) < 0)
                        _exit(1);
                _exit(0);
        }
        close(devnull);
        close(sp[1]);
        close(op[1]);
        sj->img_pid = pid;
        sj->status_fd = sp[0];
        sj->out_fd = op[0];
        if (sj->status_ev)
                event_free(sj->status_ev);
        sj->status_ev = event_new(sj->d->base, sp[0], EV_READ, img_status, sj);
        if (sj->status_ev == NULL || event_add(sj->status_ev, &tv) < 0)
                return tt_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static void img_next_disk(struct snapjob *sj)
{
        struct tt_error err = {0};

        if (sj->disks == NULL || sj->disks[sj->disk_i] == NULL) {
                sj->next(sj, NULL);
                return;
        }
        if (img_spawn(sj, sj->disks[sj->disk_i], &err) < 0) {
                sj->next(sj, err.msg);
                tt_error_clear(&err);
        }
}

/* Run qemu-img snapshot op on each writable disk of the definition, then next. */
static void img_run(struct snapjob *sj, struct vm *vm, const char *op, snap_next_fn next)
{
        size_t n = 0;

        strv_free(sj->disks);
        sj->disks = calloc(vm->def->n_disks + 1, sizeof(char *));
        sj->disk_i = 0;
        sj->img_op = op;
        sj->next = next;
        if (sj->disks == NULL) {
                next(sj, "out of memory");
                return;
        }
        for (size_t i = 0; i < vm->def->n_disks; i++)
                if (disk_writable(&vm->def->disks[i]))
                        sj->disks[n++] = strdup(vm->def->disks[i].source);
        img_next_disk(sj);
}

/* ---- a job killed with the daemon: its tag leaves the images ---- */

static void stale_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        /* nobody waits for the cleanup */
}

static void stale_next(struct snapjob *sj, const char *errmsg)
{
        struct vm *vm = sj_vm(sj);

        /* qemu-img: a disk the job never reached has no such tag. */
        if (errmsg && vm && sj->disks && sj->disks[sj->disk_i] &&
            strstr(errmsg, "snapshot not found")) {
                sj->disk_i++;
                img_next_disk(sj);
                return;
        }
        if (vm) {
                if (errmsg) {
                        tt_warn("%s: cannot delete snapshot '%s' of the failed job from the "
                                "images (tried again later): %s",
                                vm->def->name, sj->name, errmsg);
                } else {
                        snap_unlink(vm, sj->name, ".pending");
                        tt_info("%s: snapshot '%s' of the failed job deleted from the images",
                                vm->def->name, sj->name);
                }
                vm_end_job(vm, NULL, NULL);
        }
        snapjob_free(sj);
}

/* Delete tag NAME from the domain's images, as the domain's job; the marker stays until then. */
static void stale_cleanup(struct vm *vm, const char *name)
{
        bool active = vm_state_is_active(vm->status.state);
        struct snapjob *sj;

        if (vm->job || (active && (vm->qmp == NULL || vm->live == NULL)))
                return; /* busy, or QEMU not reachable yet: the next read tries again */
        sj = snapjob_new(vm, SJ_DELETE, name);
        if (sj == NULL || take_job(vm, sj, "snapshot-cleanup", stale_done, NULL, NULL) < 0) {
                if (sj)
                        snapjob_free(sj);
                return;
        }
        if (active)
                qjob_run(sj, vm, "snapshot-delete", stale_next);
        else
                img_run(sj, vm, "-d", stale_next);
}

/* ---- checks ---- */

/* Every writable disk must be qcow2 for an internal snapshot: else the error names it. */
static int check_internal(const struct domain *def, struct tt_error *err)
{
        size_t n = 0;

        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *dk = &def->disks[i];

                if (!disk_writable(dk))
                        continue;
                n++;
                if (dk->format != DOMAIN_FORMAT_QCOW2)
                        return tt_error_set(err, VM_ERR_CONFIG,
                                            "unsupported configuration: internal snapshot for "
                                            "disk %s unsupported for storage type raw",
                                            dk->target);
        }
        if (n == 0)
                return tt_error_set(err, VM_ERR_CONFIG,
                                    "unsupported configuration: No block device can accept "
                                    "snapshots");
        return 0;
}

static int take_job(struct vm *vm, struct snapjob *sj, const char *job, vm_done_fn done,
                    void *opaque, struct tt_error *err)
{
        if (vm->job)
                return tt_error_set(err, VM_ERR_BUSY, "domain %s is busy: %s", vm->def->name,
                                    vm->job);
        snprintf(sj->jobname, sizeof(sj->jobname), "%s", job);
        vm->job = sj->jobname;
        vm->done = done;
        vm->done_opaque = opaque;
        return 0;
}

static struct snapjob *snapjob_new(struct vm *vm, enum snapjob_kind kind, const char *name)
{
        struct snapjob *sj = calloc(1, sizeof(*sj));

        if (sj == NULL)
                return NULL;
        sj->d = vm->d;
        sj->magic = SNAPJOB_MAGIC;
        sj->kind = kind;
        sj->status_fd = sj->out_fd = sj->sd_fd = -1;
        sj->domain = strdup(vm->def->name);
        sj->name = name ? strdup(name) : NULL;
        sj->tag = sj->name;
        if (sj->domain == NULL || (name && sj->name == NULL)) {
                snapjob_free(sj);
                return NULL;
        }
        return sj;
}

/* ---- create ---- */

static void create_record(struct snapjob *sj, const char *errmsg);

/*
 * The metadata, complete, as NAME.pending (written atomically while QEMU or qemu-img takes the
 * snapshot, off the reply's path): a daemon killed before the job ends leaves only it, and
 * snap_set_load() drops it. The job's success renames it into place.
 */
static void create_pending(struct snapjob *sj, struct vm *vm)
{
        _cleanup_free_ char *xml = NULL;
        _cleanup_free_ char *path = NULL;
        struct tt_error err = {0};

        if (sj->no_metadata)
                return;
        xml = snap_format(vm, sj->name, sj->description, sj->state, sj->parent, sj->ctime,
                          strcmp(sj->state, "shutoff") != 0 && !sj->disk_only,
                          (const char *const *)sj->overlays);
        path = snap_path(vm, sj->name, ".pending");
        if (xml == NULL || path == NULL) {
                sj_note_error(sj, "out of memory");
                return;
        }
        if (tt_write_file_atomic(path, xml, strlen(xml), 0600, &err) < 0) {
                sj_note_error(sj, err.msg);
                tt_error_clear(&err);
        }
}

/* NAME.pending becomes NAME.xml: one rename, then the folder is synced. */
static int snap_commit(struct vm *vm, const char *name, struct tt_error *err)
{
        _cleanup_free_ char *from = snap_path(vm, name, ".pending");
        _cleanup_free_ char *to = snap_path(vm, name, ".xml");
        _cleanup_free_ char *dir = snap_dir(vm);
        _cleanup_close_ int dfd = -1;

        if (from == NULL || to == NULL || dir == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (rename(from, to) < 0)
                return tt_error_errno(err, errno, "cannot record snapshot '%s'", name);
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return tt_error_errno(err, errno, "cannot sync '%s'", dir);
        return 0;
}

static void create_take(struct snapjob *sj, struct vm *vm);

/* Start taking the snapshot, and write its metadata while that runs. */
static void create_start(struct snapjob *sj, struct vm *vm)
{
        /* A QMP snapshot-save job writes it once the job is asked for (qjob_issue). */
        bool qjob = !sj->disk_only && vm_state_is_active(vm->status.state);

        sj->starting = true;
        create_take(sj, vm);
        if (!sj->finished && !qjob)
                create_pending(sj, vm);
        sj->starting = false;
        if (sj->finished)
                sj_finish(sj, NULL);
}

static void thawed(void *opaque, json_t *reply, const struct tt_error *err)
{
        struct snapjob *sj = opaque;

        if (err)
                sj_note_error(sj, err->msg);
        sj->frozen = false;
        create_record(sj, NULL);
}

/* The snapshot is taken (or failed): thaw the guest first if it was frozen. */
static void create_taken(struct snapjob *sj, const char *errmsg)
{
        struct vm *vm = sj_vm(sj);
        struct tt_error err = {0};

        if (errmsg)
                sj_note_error(sj, errmsg);
        if (vm == NULL) {
                sj_finish(sj, NULL);
                return;
        }
        if (sj->frozen) {
                if (guest_call(vm, json_pack("{s:s}", "execute", "guest-fsfreeze-thaw"),
                               SNAP_AGENT_TIMEOUT_S, 0, NULL, thawed, sj, &err) == 0)
                        return;
                sj_note_error(sj, err.msg);
                tt_error_clear(&err);
        }
        create_record(sj, NULL);
}

/* Write the metadata once the snapshot exists; a failed one leaves nothing behind. */
static void create_record(struct snapjob *sj, const char *errmsg)
{
        struct vm *vm = sj_vm(sj);
        struct tt_error err = {0};

        if (errmsg)
                sj_note_error(sj, errmsg);
        if (vm == NULL || sj->error || sj->no_metadata) {
                sj_finish(sj, NULL);
                return;
        }
        if (snap_commit(vm, sj->name, &err) < 0 || snap_set_current(vm, sj->name, &err) < 0) {
                sj_finish(sj, err.msg);
                tt_error_clear(&err);
                return;
        }
        tt_info("%s: snapshot '%s' created", vm->def->name, sj->name);
        sj_finish(sj, NULL);
}

/* ---- --disk-only: external snapshots, a qcow2 overlay per writable disk ---- */

/* libvirt's default overlay name: the image's name with its suffix replaced by the snapshot's. */
static char *overlay_path(const char *src, const char *name)
{
        const char *slash = strrchr(src, '/');
        const char *dot = strrchr(src, '.');
        char *p = NULL;
        int n;

        if (dot && (slash == NULL || dot > slash + 1))
                n = asprintf(&p, "%.*s.%s", (int)(dot - src), src, name);
        else
                n = asprintf(&p, "%s.%s", src, name);
        return n < 0 ? NULL : p;
}

static int disk_only_prepare(struct snapjob *sj, struct vm *vm, struct tt_error *err)
{
        const struct domain *def = vm->live ? vm->live : vm->def;

        sj->sdisks = calloc(def->n_disks + 1, sizeof(*sj->sdisks));
        sj->overlays = calloc(def->n_disks + 1, sizeof(char *));
        sj->disks = calloc(def->n_disks + 1, sizeof(char *));
        if (sj->sdisks == NULL || sj->overlays == NULL || sj->disks == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *dk = &def->disks[i];
                struct snap_disk *sd;

                if (!disk_writable(dk))
                        continue;
                sd = &sj->sdisks[sj->n_sdisks++];
                sd->idx = i;
                sd->size = -1;
                sd->fdset = -1;
                sd->fmt = dk->format == DOMAIN_FORMAT_QCOW2 ? "qcow2" : "raw";
                sd->target = strdup(dk->target);
                sd->src = strdup(dk->source);
                sd->overlay = overlay_path(dk->source, sj->name);
                if (sd->target == NULL || sd->src == NULL || sd->overlay == NULL)
                        return tt_error_set(err, ENOMEM, "out of memory");
                if (access(sd->overlay, F_OK) == 0)
                        return tt_error_set(err, VM_ERR_CONFIG,
                                            "unsupported configuration: external snapshot file "
                                            "for disk %s already exists and is not a block "
                                            "device: %s",
                                            dk->target, sd->overlay);
                snprintf(sd->node, sizeof(sd->node), "tether-%06lld-%zu", sj->ctime % 1000000,
                         sj->n_sdisks - 1);
                sj->overlays[i] = sd->overlay;
                sj->disks[sj->n_sdisks - 1] = strdup(sd->overlay);
                if (sj->disks[sj->n_sdisks - 1] == NULL)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        if (sj->n_sdisks == 0)
                return tt_error_set(err, VM_ERR_CONFIG,
                                    "unsupported configuration: No block device can accept "
                                    "snapshots");
        return 0;
}

static void dk_switch_defs(struct snapjob *sj, struct vm *vm);
static void dk_add_next(struct snapjob *sj);

/* A disk-only snapshot failed: its nodes go from QEMU, its overlay files from the disk. */
static void dk_fail(struct snapjob *sj, const char *errmsg)
{
        struct vm *vm = sj_vm(sj);
        char name[40];

        for (size_t k = 0; k < sj->n_sdisks; k++) {
                struct snap_disk *sd = &sj->sdisks[k];

                if (vm && vm->qmp && sd->added) {
                        snprintf(name, sizeof(name), "%s-f", sd->node);
                        qmp_command(vm->qmp, "blockdev-del", json_pack("{s:s}", "node-name", name),
                                    VM_QMP_TIMEOUT_MS, qjob_dismissed, NULL);
                        snprintf(name, sizeof(name), "%s-s", sd->node);
                        qmp_command(vm->qmp, "blockdev-del", json_pack("{s:s}", "node-name", name),
                                    VM_QMP_TIMEOUT_MS, qjob_dismissed, NULL);
                }
                if (vm && vm->qmp && sd->fdset >= 0)
                        qmp_command(vm->qmp, "remove-fd",
                                    json_pack("{s:I}", "fdset-id", (json_int_t)sd->fdset),
                                    VM_QMP_TIMEOUT_MS, qjob_dismissed, NULL);
                /* The overlays did not exist before (checked): none of them is anyone's. */
                if (unlink(sd->overlay) < 0 && errno != ENOENT)
                        tt_warn("%s: cannot remove '%s': %s", sj->domain, sd->overlay,
                                strerror(errno));
        }
        create_taken(sj, errmsg);
}

/* Every device writes to its overlay now. */
static void dk_switched(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;
        struct vm *vm = sj_vm(sj);

        if (vm == NULL) {
                sj_finish(sj, NULL);
                return;
        }
        if (err) {
                dk_fail(sj, err->msg);
                return;
        }
        dk_switch_defs(sj, vm);
        create_taken(sj, NULL);
}

/* Every overlay is a node: switch all devices at once (one transaction). */
static void dk_transaction(struct snapjob *sj, struct vm *vm)
{
        json_t *actions = json_array();
        char overlay[40];

        for (size_t k = 0; k < sj->n_sdisks; k++) {
                snprintf(overlay, sizeof(overlay), "%s-f", sj->sdisks[k].node);
                json_array_append_new(actions,
                                      json_pack("{s:s, s:{s:s, s:s}}", "type", "blockdev-snapshot",
                                                "data", "node", sj->sdisks[k].top, "overlay",
                                                overlay));
        }
        if (qmp_command(vm->qmp, "transaction", json_pack("{s:o}", "actions", actions),
                        VM_QMP_TIMEOUT_MS, dk_switched, sj) < 0)
                dk_fail(sj, "operation failed: cannot talk to QEMU");
}

static bool dk_step_ok(struct snapjob *sj, const struct tt_error *err)
{
        if (sj_vm(sj) == NULL) {
                sj_finish(sj, NULL);
                return false;
        }
        if (err) {
                dk_fail(sj, err->msg);
                return false;
        }
        return true;
}

static void dk_format_added(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;

        if (!dk_step_ok(sj, err))
                return;
        sj->sdisks[sj->sd_i].added = true;
        sj->sd_i++;
        dk_add_next(sj);
}

static void dk_file_added(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;
        struct snap_disk *sd = &sj->sdisks[sj->sd_i];
        char file[40], fmt[40];

        if (!dk_step_ok(sj, err))
                return;
        snprintf(file, sizeof(file), "%s-s", sd->node);
        snprintf(fmt, sizeof(fmt), "%s-f", sd->node);
        /* backing null: blockdev-snapshot puts the device's current node under it. */
        if (qmp_command(sj_vm(sj)->qmp, "blockdev-add",
                        json_pack("{s:s, s:s, s:s, s:n}", "driver", "qcow2", "node-name", fmt,
                                  "file", file, "backing"),
                        VM_QMP_TIMEOUT_MS, dk_format_added, sj) < 0)
                dk_fail(sj, "operation failed: cannot talk to QEMU");
}

/* The overlay's descriptors are in an fdset: QEMU opens it as /dev/fdset/N, never by path. */
static void dk_fds_added(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;
        struct snap_disk *sd = &sj->sdisks[sj->sd_i];
        char file[40], path[48];

        if (sj->sd_fd >= 0)
                close(sj->sd_fd);
        sj->sd_fd = -1;
        if (!dk_step_ok(sj, err))
                return;
        snprintf(file, sizeof(file), "%s-s", sd->node);
        snprintf(path, sizeof(path), "/dev/fdset/%lld", sd->fdset);
        if (qmp_command(sj_vm(sj)->qmp, "blockdev-add",
                        json_pack("{s:s, s:s, s:s, s:s}", "driver", "file", "node-name", file,
                                  "filename", path, "discard", "unmap"),
                        VM_QMP_TIMEOUT_MS, dk_file_added, sj) < 0)
                dk_fail(sj, "operation failed: cannot talk to QEMU");
}

/* The read-write descriptor is in: add a read-only one (QEMU reopens backing files so). */
static void dk_rw_added(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;
        struct snap_disk *sd = &sj->sdisks[sj->sd_i];

        if (sj->sd_fd >= 0)
                close(sj->sd_fd);
        sj->sd_fd = -1;
        if (!dk_step_ok(sj, err))
                return;
        sd->fdset = json_integer_value(json_object_get(ret, "fdset-id"));
        sj->sd_fd = open(sd->overlay, O_RDONLY | O_CLOEXEC);
        if (sj->sd_fd < 0) {
                char msg[600];

                snprintf(msg, sizeof(msg), "cannot open '%s': %s", sd->overlay, strerror(errno));
                dk_fail(sj, msg);
                return;
        }
        if (qmp_command_fd(sj_vm(sj)->qmp, "add-fd",
                           json_pack("{s:I, s:s}", "fdset-id", (json_int_t)sd->fdset, "opaque",
                                     "tether-snapshot-ro"),
                           sj->sd_fd, VM_QMP_TIMEOUT_MS, dk_fds_added, sj) < 0)
                dk_fail(sj, "operation failed: cannot talk to QEMU");
}

static void dk_add_next(struct snapjob *sj)
{
        struct vm *vm = sj_vm(sj);
        struct snap_disk *sd;

        if (vm == NULL) {
                sj_finish(sj, NULL);
                return;
        }
        if (sj->sd_i == sj->n_sdisks) {
                dk_transaction(sj, vm);
                return;
        }
        sd = &sj->sdisks[sj->sd_i];
        sj->sd_fd = open(sd->overlay, O_RDWR | O_CLOEXEC);
        if (sj->sd_fd < 0) {
                char msg[600];

                snprintf(msg, sizeof(msg), "cannot open '%s': %s", sd->overlay, strerror(errno));
                dk_fail(sj, msg);
                return;
        }
        if (qmp_command_fd(vm->qmp, "add-fd", json_pack("{s:s}", "opaque", "tether-snapshot-rw"),
                           sj->sd_fd, VM_QMP_TIMEOUT_MS, dk_rw_added, sj) < 0)
                dk_fail(sj, "operation failed: cannot talk to QEMU");
}

/* The overlay files exist: a running domain's devices move onto them; else the definition. */
static void dk_images_made(struct snapjob *sj, const char *errmsg)
{
        struct vm *vm = sj_vm(sj);

        if (vm == NULL) {
                sj_finish(sj, NULL);
                return;
        }
        if (errmsg) {
                dk_fail(sj, errmsg);
                return;
        }
        if (!vm_state_is_active(vm->status.state)) {
                dk_switch_defs(sj, vm);
                create_taken(sj, NULL);
                return;
        }
        sj->sd_i = 0;
        dk_add_next(sj);
}

static void dk_make_images(struct snapjob *sj)
{
        sj->img_op = "create";
        sj->disk_i = 0;
        sj->next = dk_images_made;
        img_next_disk(sj);
}

/* Is qdev (query-block's) the device with id? virtio-blk's is its backend under the id. */
static bool qdev_is(const char *qdev, const char *id)
{
        static const char prefix[] = "/machine/peripheral/";
        size_t n = strlen(id);

        if (qdev == NULL)
                return false;
        if (strcmp(qdev, id) == 0)
                return true;
        return strncmp(qdev, prefix, sizeof(prefix) - 1) == 0 &&
               strncmp(qdev + sizeof(prefix) - 1, id, n) == 0 &&
               qdev[sizeof(prefix) - 1 + n] == '/';
}

/* The id qemu_argv.c gives a disk's device. */
static void disk_device_id(const struct domain_disk *dk, char *buf, size_t len)
{
        int idx = 0;

        for (const char *c = dk->target + 2; *c; c++)
                idx = idx * 26 + (*c - 'a' + 1);
        idx--;
        if (dk->bus == DOMAIN_BUS_VIRTIO)
                snprintf(buf, len, "virtio-disk%d", idx);
        else if (dk->bus == DOMAIN_BUS_SATA)
                snprintf(buf, len, "sata0-0-%d", idx);
        else
                snprintf(buf, len, "ide0-%d-%d", idx / 2, idx % 2);
}

/* query-block: each device's top node (what it writes to now) and its size. */
static void dk_blocks(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;
        struct vm *vm = sj_vm(sj);

        if (!dk_step_ok(sj, err))
                return;
        for (size_t k = 0; k < sj->n_sdisks; k++) {
                struct snap_disk *sd = &sj->sdisks[k];
                char id[48];
                size_t i;
                json_t *b;

                disk_device_id(&vm->live->disks[sd->idx], id, sizeof(id));
                json_array_foreach(ret, i, b) {
                        json_t *ins = json_object_get(b, "inserted");
                        const char *node = json_string_value(json_object_get(ins, "node-name"));

                        if (!qdev_is(json_string_value(json_object_get(b, "qdev")), id) || !node)
                                continue;
                        sd->top = strdup(node);
                        sd->size = json_integer_value(
                                json_object_get(json_object_get(ins, "image"), "virtual-size"));
                }
                if (sd->top == NULL) {
                        char msg[200];

                        snprintf(msg, sizeof(msg),
                                 "internal error: QEMU has no block device for disk %s",
                                 sd->target);
                        dk_fail(sj, msg);
                        return;
                }
        }
        dk_make_images(sj);
}

/* The definition (and the live one) point at the overlays, as libvirt's do after the snapshot. */
static void dk_switch_defs(struct snapjob *sj, struct vm *vm)
{
        struct tt_error err = {0};

        for (size_t k = 0; k < sj->n_sdisks; k++) {
                struct snap_disk *sd = &sj->sdisks[k];
                struct domain *defs[2] = {vm->live, vm->def};

                for (size_t j = 0; j < 2; j++) {
                        struct domain *def = defs[j];

                        if (def == NULL || (j == 1 && vm->def == vm->live))
                                continue;
                        for (size_t i = 0; i < def->n_disks; i++) {
                                struct domain_disk *dk = &def->disks[i];
                                char *copy;

                                if (dk->source == NULL || strcmp(dk->target, sd->target) != 0 ||
                                    strcmp(dk->source, sd->src) != 0)
                                        continue;
                                copy = strdup(sd->overlay);
                                if (copy == NULL)
                                        continue;
                                free(dk->source);
                                dk->source = copy;
                                dk->format = DOMAIN_FORMAT_QCOW2;
                                dk->has_driver = true;
                        }
                }
        }
        if (vm->persistent) {
                _cleanup_free_ char *xml = domain_format(vm->def);

                if (xml == NULL ||
                    store_save_def(&vm->d->store, vm->def->name, xml, &err) < 0) {
                        tt_err("%s: cannot save the definition with its overlays: %s",
                               vm->def->name, err.msg ? err.msg : "out of memory");
                        tt_error_clear(&err);
                }
        }
        if (vm->live) {
                _cleanup_free_ char *xml = domain_format(vm->live);
                _cleanup_free_ char *path =
                        store_run_path(&vm->d->store, vm->def->name, "domain.xml");

                if (xml == NULL || path == NULL ||
                    tt_write_file_atomic(path, xml, strlen(xml), 0600, &err) < 0) {
                        tt_err("%s: cannot save the live definition with its overlays: %s",
                               vm->def->name, err.msg ? err.msg : "out of memory");
                        tt_error_clear(&err);
                }
        }
}

static void create_take(struct snapjob *sj, struct vm *vm)
{
        if (sj->disk_only && vm_state_is_active(vm->status.state)) {
                if (qmp_command(vm->qmp, "query-block", NULL, VM_QMP_TIMEOUT_MS, dk_blocks, sj) <
                    0)
                        dk_fail(sj, "operation failed: cannot talk to QEMU");
        } else if (sj->disk_only) {
                dk_make_images(sj);
        } else if (vm_state_is_active(vm->status.state))
                qjob_run(sj, vm, "snapshot-save", create_taken);
        else
                img_run(sj, vm, "-c", create_taken);
}

static void frozen(void *opaque, json_t *reply, const struct tt_error *err)
{
        struct snapjob *sj = opaque;
        struct vm *vm = sj_vm(sj);

        if (vm == NULL) {
                sj_finish(sj, NULL);
                return;
        }
        if (err) {
                char msg[600];

                /* virsh's quiesce failure, with the agent's reason. */
                snprintf(msg, sizeof(msg), "%s", err->msg);
                sj_finish(sj, msg);
                return;
        }
        sj->frozen = true;
        create_start(sj, vm);
}

static int snap_create(struct vm *vm, json_t *args, vm_done_fn done, void *opaque,
                       struct tt_error *err)
{
        const char *name = json_string_value(json_object_get(args, "name"));
        const char *desc = json_string_value(json_object_get(args, "description"));
        bool active = vm_state_is_active(vm->status.state);
        struct snap_set set;
        struct snapjob *sj;
        char defname[32];
        time_t now = time(NULL);

        bool disk_only = json_is_true(json_object_get(args, "disk-only"));
        if (name == NULL) {
                snprintf(defname, sizeof(defname), "%lld", (long long)now);
                name = defname;
        }
        if (snap_name_check(name, err) < 0)
                return -1;
        if (vm->status.state == VM_STATE_PMSUSPENDED)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: qemu doesn't support "
                                    "taking snapshots of PMSUSPENDED guests");
        if (active && vm->status.state != VM_STATE_RUNNING &&
            vm->status.state != VM_STATE_PAUSED)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: domain is not running");
        if (json_is_true(json_object_get(args, "quiesce")) && !active)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: domain is not running");
        if (!disk_only && check_internal(active ? vm->live : vm->def, err) < 0)
                return -1;
        if (snap_set_load(vm, &set, err) < 0)
                return -1;
        if (snap_find(&set, name)) {
                snap_set_clear(&set);
                return tt_error_set(err, VM_ERR_EXISTS,
                                    "operation failed: domain moment %s already exists", name);
        }
        sj = snapjob_new(vm, SJ_CREATE, name);
        if (sj == NULL) {
                snap_set_clear(&set);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        sj->parent = set.current ? strdup(set.current) : NULL;
        snap_set_clear(&set);
        sj->description = desc ? strdup(desc) : NULL;
        sj->state = strdup(!active     ? "shutoff"
                           : disk_only ? "disk-snapshot"
                                       : vm_state_name(vm->status.state));
        sj->ctime = (long long)now;
        sj->disk_only = disk_only;
        if (disk_only && disk_only_prepare(sj, vm, err) < 0) {
                snapjob_free(sj);
                return -1;
        }
        sj->quiesce = json_is_true(json_object_get(args, "quiesce"));
        sj->no_metadata = json_is_true(json_object_get(args, "no-metadata"));
        if (sj->state == NULL || take_job(vm, sj, "snapshot-create", done, opaque, err) < 0) {
                snapjob_free(sj);
                return err && err->msg ? -1 : tt_error_set(err, ENOMEM, "out of memory");
        }
        {
                _cleanup_free_ char *dir = snap_dir(vm);

                if (dir == NULL || tt_mkdir_p(dir, 0700, err) < 0) {
                        vm_release_job(vm, err);
                        snapjob_free(sj);
                        return -1;
                }
        }
        if (sj->quiesce) {
                struct tt_error gerr = {0};

                if (guest_call(vm, json_pack("{s:s}", "execute", "guest-fsfreeze-freeze"),
                               SNAP_AGENT_TIMEOUT_S, 0, NULL, frozen, sj, &gerr) < 0) {
                        snap_unlink(vm, sj->name, ".pending");
                        vm_release_job(vm, NULL);
                        snapjob_free(sj);
                        *err = gerr;
                        return -1;
                }
                return 1;
        }
        create_start(sj, vm);
        return 1;
}

/* ---- revert ---- */

/*
 * The definition stored in the snapshot (<domain> inside <domainsnapshot>), as libvirt restores
 * it on a revert. It must still be this domain's (name and uuid); graphics passwords, which the
 * snapshot does not keep, come from the current definition.
 */
static struct domain *snap_stored_def(const struct vm *vm, const struct snap *s,
                                      struct tt_error *err)
{
        xmlDocPtr doc = xmlReadMemory(s->xml, (int)strlen(s->xml), "snapshot.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL, node = NULL;
        xmlBufferPtr buf = xmlBufferCreate();
        struct tt_error perr = {0};
        struct domain *def = NULL;

        for (xmlNodePtr n = root ? root->children : NULL; n; n = n->next)
                if (n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST "domain"))
                        node = n;
        if (node && buf && xmlNodeDump(buf, doc, node, 0, 0) >= 0)
                def = domain_parse((const char *)xmlBufferContent(buf),
                                   (size_t)xmlBufferLength(buf), &perr);
        else
                tt_error_set(&perr, VM_ERR_CONFIG, "it holds no <domain>");
        xmlBufferFree(buf);
        xmlFreeDoc(doc);
        if (def && (strcmp(def->name, vm->def->name) != 0 ||
                    strcmp(def->uuid, vm->def->uuid) != 0)) {
                tt_error_set(&perr, VM_ERR_CONFIG, "it is of domain '%s' (uuid %s)", def->name,
                             def->uuid);
                domain_free(def);
                def = NULL;
        }
        if (def == NULL) {
                tt_error_set(err, VM_ERR_CONFIG,
                             "unsupported configuration: the definition stored in snapshot '%s' "
                             "cannot be used: %s",
                             s->name, perr.msg ? perr.msg : "out of memory");
                tt_error_clear(&perr);
                return NULL;
        }
        for (size_t i = 0; i < def->n_graphics && i < vm->def->n_graphics; i++) {
                struct domain_graphics *g = &def->graphics[i];
                const struct domain_graphics *cur = &vm->def->graphics[i];

                if (g->passwd == NULL && cur->passwd && g->type == cur->type)
                        g->passwd = strdup(cur->passwd);
        }
        return def;
}

/* The snapshot's definition becomes the domain's (saved when persistent). */
static int revert_install_def(struct snapjob *sj, struct vm *vm, struct tt_error *err)
{
        if (vm->persistent) {
                _cleanup_free_ char *xml = domain_format(sj->sdef);

                if (xml == NULL)
                        return tt_error_set(err, ENOMEM, "out of memory");
                if (store_save_def(&vm->d->store, vm->def->name, xml, err) < 0)
                        return -1;
        }
        domain_free(vm->def);
        vm->def = sj->sdef;
        sj->sdef = NULL;
        sj->def_restored = true;
        tt_info("%s: definition of snapshot '%s' restored", vm->def->name, sj->name);
        return 0;
}

static void revert_done_state(struct snapjob *sj, struct vm *vm, enum vm_event ev)
{
        struct tt_error err = {0};

        /* libvirt 9.0 stops the running QEMU and starts another: tell it as it does. */
        if (sj->in_place)
                events_emit_lifecycle(sj->d->events, vm->def->name, EVENTS_LIFE_STOPPED,
                                      EVENTS_STOPPED_SNAPSHOT);
        vm_apply(vm, ev, NULL);
        if (vm_state_is_active(vm->status.state))
                vm_save_status(vm);
        /* Loaded in place: the running QEMU keeps its live definition. */
        if (sj->sdef && revert_install_def(sj, vm, &err) < 0) {
                sj_note_error(sj, err.msg);
                tt_error_clear(&err);
        }
        if (snap_set_current(vm, sj->name, &err) < 0) {
                sj_note_error(sj, err.msg);
                tt_error_clear(&err);
        }
        tt_info("%s: reverted to snapshot '%s'", vm->def->name, sj->name);
        sj_finish(sj, NULL);
}

static void revert_cont_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;
        struct vm *vm = sj_vm(sj);

        if (vm == NULL) {
                sj_finish(sj, NULL);
                return;
        }
        if (err) {
                sj_finish(sj, err->msg);
                return;
        }
        revert_done_state(sj, vm, VM_EV_SNAPSHOT_LOADED);
}

/* snapshot-load finished: run the vCPUs, or leave them paused. */
static void revert_loaded(struct snapjob *sj, const char *errmsg)
{
        struct vm *vm = sj_vm(sj);
        bool run;

        if (vm == NULL || errmsg) {
                sj_finish(sj, errmsg);
                return;
        }
        run = sj->start_running || (!sj->start_paused && strcmp(sj->state, "running") == 0);
        if (!run) {
                revert_done_state(sj, vm, VM_EV_SNAPSHOT_LOADED_PAUSED);
                return;
        }
        if (qmp_command(vm->qmp, "cont", NULL, VM_QMP_TIMEOUT_MS, revert_cont_done, sj) < 0)
                sj_finish(sj, "operation failed: cannot talk to QEMU");
}

/* A step outside the domain's job failed (start or destroy): answer the caller directly. */
static void sj_answer_direct(struct snapjob *sj, const char *errmsg)
{
        struct tt_error err = {0};

        if (errmsg) {
                tt_error_set(&err, VM_ERR_FAILED, "%s", errmsg);
                sj->caller_done(sj->caller_opaque, NULL, &err);
                tt_error_clear(&err);
        } else {
                _cleanup_json_ json_t *ret = json_pack("{s:s}", "name", sj->name);

                if (sj->def_restored)
                        events_emit_lifecycle(sj->d->events, sj->domain, EVENTS_LIFE_DEFINED,
                                              EVENTS_DEFINED_SNAPSHOT);
                events_emit_snapshot(sj->d->events, sj->domain, sj->name, "reverted");
                sj->caller_done(sj->caller_opaque, ret, NULL);
        }
        snapjob_free(sj);
}

/* Take the domain's job back for the caller after a start or destroy of our own. */
static struct vm *sj_retake(struct snapjob *sj, const struct tt_error *err)
{
        struct vm *vm = vm_lookup_name(sj->d, sj->domain);
        struct tt_error jerr = {0};

        if (err || vm == NULL) {
                sj_answer_direct(sj, err ? err->msg : "operation failed: the domain is gone");
                return NULL;
        }
        if (take_job(vm, sj, "snapshot-revert", sj->caller_done, sj->caller_opaque, &jerr) < 0) {
                sj_answer_direct(sj, jerr.msg);
                tt_error_clear(&jerr);
                return NULL;
        }
        return vm;
}

/* The domain was started paused for the revert: load the snapshot into it. */
static void revert_started(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;
        struct vm *vm = sj_retake(sj, err);

        if (vm)
                qjob_run(sj, vm, "snapshot-load", revert_loaded);
}

/* A start after a revert to a shut-off snapshot (--running, --paused) ended. */
static void revert_final_start(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;

        sj_answer_direct(sj, err ? err->msg : NULL);
}

/* The disks are back at the snapshot: shut off (from snapshot), or started on request. */
static void revert_applied(struct snapjob *sj, const char *errmsg)
{
        struct vm *vm = sj_vm(sj);
        struct tt_error err = {0};

        if (vm == NULL || errmsg) {
                sj_finish(sj, errmsg);
                return;
        }
        vm_apply(vm, VM_EV_SNAPSHOT_SHUTOFF, NULL);
        if (snap_set_current(vm, sj->name, &err) < 0) {
                sj_finish(sj, err.msg);
                tt_error_clear(&err);
                return;
        }
        tt_info("%s: reverted to snapshot '%s'", vm->def->name, sj->name);
        if (!sj->start_running && !sj->start_paused) {
                sj_finish(sj, NULL);
                return;
        }
        vm_release_job(vm, NULL);
        if (vm_start(vm, VM_START_FORCE_BOOT | (sj->start_paused ? VM_START_PAUSED : 0),
                     revert_final_start, sj, &err) < 0) {
                sj_answer_direct(sj, err.msg);
                tt_error_clear(&err);
        }
}

/* The running domain was destroyed for a revert to a shut-off snapshot. */
static void revert_destroyed(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct snapjob *sj = opaque;
        struct vm *vm = sj_retake(sj, err);
        struct tt_error ierr = {0};

        if (vm == NULL)
                return;
        if (revert_install_def(sj, vm, &ierr) < 0) {
                sj_finish(sj, ierr.msg);
                tt_error_clear(&ierr);
                return;
        }
        img_run(sj, vm, "-a", revert_applied);
}

static int snap_revert(struct vm *vm, json_t *args, vm_done_fn done, void *opaque,
                       struct tt_error *err)
{
        const char *name = json_string_value(json_object_get(args, "name"));
        bool active = vm_state_is_active(vm->status.state);
        struct snap_set set;
        struct snap *s;
        struct snapjob *sj;
        int rc = 1;

        if (snap_set_load(vm, &set, err) < 0)
                return -1;
        s = snap_find(&set, name);
        if (s == NULL) {
                snap_set_clear(&set);
                return tt_error_set(err, VM_ERR_NO_DOMAIN,
                                    "Domain snapshot not found: no domain snapshot with matching "
                                    "name '%s'",
                                    name);
        }
        if (s->external) {
                snap_set_clear(&set);
                return tt_error_set(err, VM_ERR_CONFIG,
                                    "unsupported configuration: revert to external snapshot not "
                                    "supported yet");
        }
        sj = snapjob_new(vm, SJ_REVERT, name);
        if (sj == NULL || (sj->state = strdup(s->state ? s->state : "shutoff")) == NULL) {
                snap_set_clear(&set);
                if (sj)
                        snapjob_free(sj);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        sj->sdef = snap_stored_def(vm, s, err);
        snap_set_clear(&set);
        if (sj->sdef == NULL) {
                snapjob_free(sj);
                return -1;
        }
        sj->start_running = json_is_true(json_object_get(args, "running"));
        sj->start_paused = json_is_true(json_object_get(args, "paused"));
        sj->caller_done = done;
        sj->caller_opaque = opaque;
        if (strcmp(sj->state, "shutoff") == 0) {
                if (check_internal(sj->sdef, err) < 0)
                        rc = -1;
                else if (active)
                        rc = vm_destroy(vm, false, revert_destroyed, sj, err) < 0 ? -1 : 1;
                else if (take_job(vm, sj, "snapshot-revert", done, opaque, err) < 0)
                        rc = -1;
                else if (revert_install_def(sj, vm, err) < 0) {
                        vm_release_job(vm, NULL);
                        rc = -1;
                } else
                        img_run(sj, vm, "-a", revert_applied);
        } else if (active) {
                if (check_internal(vm->live, err) < 0 ||
                    take_job(vm, sj, "snapshot-revert", done, opaque, err) < 0)
                        rc = -1;
                else {
                        sj->in_place = true;
                        qjob_run(sj, vm, "snapshot-load", revert_loaded);
                }
        } else {
                if (check_internal(sj->sdef, err) < 0 || vm->job)
                        rc = vm->job ? tt_error_set(err, VM_ERR_BUSY, "domain %s is busy: %s",
                                                    vm->def->name, vm->job)
                                     : -1;
                else if (revert_install_def(sj, vm, err) < 0 ||
                         vm_start(vm, VM_START_PAUSED | VM_START_FORCE_BOOT, revert_started, sj,
                             err) < 0)
                        rc = -1;
        }
        if (rc < 0)
                snapjob_free(sj);
        return rc;
}

/* ---- delete ---- */

static void delete_next(struct snapjob *sj, const char *errmsg);

/* Drop one snapshot's metadata: its children go to its parent, and so does "current". */
static int delete_metadata(struct vm *vm, const char *name, struct tt_error *err)
{
        struct snap_set set;
        struct snap *s;

        if (snap_set_load(vm, &set, err) < 0)
                return -1;
        s = snap_find(&set, name);
        if (s == NULL) {
                snap_set_clear(&set);
                return 0;
        }
        for (size_t i = 0; i < set.n; i++)
                if (set.v[i].parent && strcmp(set.v[i].parent, name) == 0 &&
                    snap_reparent(vm, &set.v[i], s->parent, err) < 0) {
                        snap_set_clear(&set);
                        return -1;
                }
        if (set.current && strcmp(set.current, name) == 0 &&
            snap_set_current(vm, s->parent, err) < 0) {
                snap_set_clear(&set);
                return -1;
        }
        snap_set_clear(&set);
        if (snap_unlink(vm, name, ".xml") < 0)
                return tt_error_set(err, VM_ERR_FAILED, "cannot remove snapshot '%s'", name);
        return 0;
}

/* One snapshot's data is gone: its metadata follows, then the next one. */
static void delete_one_done(struct snapjob *sj, const char *errmsg)
{
        struct vm *vm = sj_vm(sj);
        struct tt_error err = {0};

        if (vm == NULL || errmsg) {
                sj_finish(sj, errmsg);
                return;
        }
        if (delete_metadata(vm, sj->queue[sj->queue_i], &err) < 0) {
                sj_finish(sj, err.msg);
                tt_error_clear(&err);
                return;
        }
        sj->queue_i++;
        delete_next(sj, NULL);
}

static void delete_next(struct snapjob *sj, const char *errmsg)
{
        struct vm *vm = sj_vm(sj);

        if (vm == NULL || errmsg || sj->queue[sj->queue_i] == NULL) {
                sj_finish(sj, errmsg);
                return;
        }
        sj->tag = sj->queue[sj->queue_i];
        if (vm_state_is_active(vm->status.state))
                qjob_run(sj, vm, "snapshot-delete", delete_one_done);
        else
                img_run(sj, vm, "-d", delete_one_done);
}

/* The names to delete for --children: descendants deepest first, then the snapshot itself. */
static int queue_subtree(struct snap_set *set, const char *name, char ***q, size_t *n)
{
        char **bigger;

        for (size_t i = 0; i < set->n; i++)
                if (set->v[i].parent && strcmp(set->v[i].parent, name) == 0 &&
                    queue_subtree(set, set->v[i].name, q, n) < 0)
                        return -1;
        bigger = reallocarray(*q, *n + 2, sizeof(char *));
        if (bigger == NULL)
                return -1;
        *q = bigger;
        (*q)[*n] = strdup(name);
        (*q)[*n + 1] = NULL;
        if ((*q)[*n] == NULL)
                return -1;
        (*n)++;
        return 0;
}

static int snap_delete(struct vm *vm, json_t *args, vm_done_fn done, void *opaque,
                       struct tt_error *err)
{
        const char *name = json_string_value(json_object_get(args, "name"));
        bool children = json_is_true(json_object_get(args, "children"));
        bool metadata = json_is_true(json_object_get(args, "metadata"));
        struct snap_set set;
        struct snap *s;
        struct snapjob *sj;
        char **q = NULL;
        size_t n = 0, external = 0;

        if (snap_set_load(vm, &set, err) < 0)
                return -1;
        s = snap_find(&set, name);
        if (s == NULL) {
                snap_set_clear(&set);
                return tt_error_set(err, VM_ERR_NO_DOMAIN,
                                    "Domain snapshot not found: no domain snapshot with matching "
                                    "name '%s'",
                                    name);
        }
        if (children ? queue_subtree(&set, name, &q, &n) < 0
                     : queue_subtree(&(struct snap_set){0}, name, &q, &n) < 0) {
                strv_free(q);
                snap_set_clear(&set);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++)
                if (snap_find(&set, q[i])->external)
                        external++;
        snap_set_clear(&set);
        if (external && !metadata) {
                strv_free(q);
                return tt_error_set(err, VM_ERR_CONFIG,
                                    "unsupported configuration: deletion of %zu external disk "
                                    "snapshots not supported yet",
                                    external);
        }
        if (metadata) {
                /* Only the metadata: the images keep their snapshots. */
                if (vm->job) {
                        strv_free(q);
                        return tt_error_set(err, VM_ERR_BUSY, "domain %s is busy: %s",
                                            vm->def->name, vm->job);
                }
                for (size_t i = 0; i < n; i++)
                        if (delete_metadata(vm, q[i], err) < 0) {
                                strv_free(q);
                                return -1;
                        }
                strv_free(q);
                return 0;
        }
        if (vm_state_is_active(vm->status.state) && check_internal(vm->live, err) < 0) {
                strv_free(q);
                return -1;
        }
        sj = snapjob_new(vm, SJ_DELETE, name);
        if (sj == NULL) {
                strv_free(q);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        sj->queue = q;
        if (take_job(vm, sj, "snapshot-delete", done, opaque, err) < 0) {
                snapjob_free(sj);
                return -1;
        }
        delete_next(sj, NULL);
        return 1;
}

/* ---- the verbs that only read ---- */

static json_t *snap_row(struct snap *s, const char *current)
{
        return json_pack("{s:s, s:s?, s:s?, s:s, s:I, s:s, s:b}", "name", s->name, "parent",
                         s->parent, "description", s->description, "state",
                         s->state ? s->state : "", "creation_time", (json_int_t)s->ctime,
                         "location", s->external ? "external" : "internal", "current",
                         current && strcmp(current, s->name) == 0);
}

static int snap_list(struct vm *vm, json_t *args, json_t **ret, struct tt_error *err)
{
        struct snap_set set;
        json_t *list;

        if (snap_set_load(vm, &set, err) < 0)
                return -1;
        list = json_array();
        for (size_t i = 0; i < set.n; i++)
                json_array_append_new(list, snap_row(&set.v[i], set.current));
        *ret = json_pack("{s:s, s:s?, s:o}", "domain", vm->def->name, "current", set.current,
                         "snapshots", list);
        snap_set_clear(&set);
        return 0;
}

json_t *snapshot_list(struct vm *vm, struct tt_error *err)
{
        json_t *ret = NULL, *list;

        if (snap_list(vm, NULL, &ret, err) < 0)
                return NULL;
        list = json_incref(json_object_get(ret, "snapshots"));
        json_decref(ret);
        return list;
}

static int snap_dumpxml(struct vm *vm, json_t *args, json_t **ret, struct tt_error *err)
{
        const char *name = json_string_value(json_object_get(args, "name"));
        struct snap_set set;
        struct snap *s;

        if (snap_set_load(vm, &set, err) < 0)
                return -1;
        if (name == NULL && set.current == NULL) {
                snap_set_clear(&set);
                return tt_error_set(err, VM_ERR_NO_DOMAIN,
                                    "Domain snapshot not found: the domain does not have a "
                                    "current snapshot");
        }
        s = snap_find(&set, name ? name : set.current);
        if (s == NULL) {
                tt_error_set(err, VM_ERR_NO_DOMAIN,
                             "Domain snapshot not found: no domain snapshot with matching name "
                             "'%s'",
                             name);
                snap_set_clear(&set);
                return -1;
        }
        *ret = json_pack("{s:s, s:s}", "name", s->name, "xml", s->xml);
        snap_set_clear(&set);
        return 0;
}

int snapshot_count(struct vm *vm)
{
        _cleanup_free_ char *dir = snap_dir(vm);
        DIR *dh = dir ? opendir(dir) : NULL;
        struct dirent *de;
        int n = 0;

        /* `list` asks for every domain: count the documents, parse none. */
        if (dh == NULL)
                return 0;
        while ((de = readdir(dh)) != NULL)
                if (de->d_name[0] != '.' && has_suffix(de->d_name, ".xml"))
                        n++;
        closedir(dh);
        return n;
}

int snapshot_undefine_check(struct vm *vm, bool with_metadata, struct tt_error *err)
{
        int n;

        /* libvirt refuses only an inactive domain: a running one becomes transient. */
        if (with_metadata || vm_state_is_active(vm->status.state))
                return 0;
        n = snapshot_count(vm);
        if (n > 0)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: cannot delete inactive "
                                    "domain with %d snapshots",
                                    n);
        return 0;
}

void snapshot_remove_all(struct tetherd *d, const char *domain)
{
        _cleanup_free_ char *dir = NULL;
        DIR *dh;
        struct dirent *de;

        if (asprintf(&dir, "%s/snapshot/%s", d->store.state_dir, domain) < 0)
                return;
        dh = opendir(dir);
        if (dh == NULL)
                return;
        while ((de = readdir(dh)) != NULL) {
                _cleanup_free_ char *path = NULL;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) >= 0 && unlink(path) < 0)
                        tt_warn("%s: cannot remove '%s': %s", domain, path, strerror(errno));
        }
        closedir(dh);
        rmdir(dir);
}

/* ---- the verb table ---- */

enum snap_op_kind { SOP_READ, SOP_JOB };

struct snapshot_op_def {
        const char *name;             /* control-API verb */
        const struct wire_arg *args;  /* its arguments */
        int (*read)(struct vm *vm, json_t *args, json_t **ret, struct tt_error *err);
        int (*job)(struct vm *vm, json_t *args, vm_done_fn done, void *opaque,
                   struct tt_error *err);
};

#define ARG(n, t) {.name = (n), .type = (t), .required = true}
#define OPT(n, t) {.name = (n), .type = (t), .required = false}
static const struct wire_arg args_create[] = {
        ARG("domain", WIRE_T_STRING), OPT("name", WIRE_T_STRING),
        OPT("description", WIRE_T_STRING), OPT("disk-only", WIRE_T_BOOL),
        OPT("quiesce", WIRE_T_BOOL), OPT("atomic", WIRE_T_BOOL), OPT("no-metadata", WIRE_T_BOOL),
        {.name = NULL}};
static const struct wire_arg args_list[] = {ARG("domain", WIRE_T_STRING), {.name = NULL}};
static const struct wire_arg args_dumpxml[] = {ARG("domain", WIRE_T_STRING),
                                               OPT("name", WIRE_T_STRING), {.name = NULL}};
static const struct wire_arg args_revert[] = {
        ARG("domain", WIRE_T_STRING), ARG("name", WIRE_T_STRING), OPT("running", WIRE_T_BOOL),
        OPT("paused", WIRE_T_BOOL), OPT("force", WIRE_T_BOOL), {.name = NULL}};
static const struct wire_arg args_delete[] = {
        ARG("domain", WIRE_T_STRING), ARG("name", WIRE_T_STRING), OPT("children", WIRE_T_BOOL),
        OPT("metadata", WIRE_T_BOOL), {.name = NULL}};

static const struct snapshot_op_def snapshot_ops[] = {
        {"snapshot-create", args_create, NULL, snap_create},
        {"snapshot-list", args_list, snap_list, NULL},
        {"snapshot-dumpxml", args_dumpxml, snap_dumpxml, NULL},
        {"snapshot-revert", args_revert, NULL, snap_revert},
        {"snapshot-delete", args_delete, NULL, snap_delete},
};

const struct snapshot_op_def *snapshot_op_find(const char *name)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(snapshot_ops); i++)
                if (strcmp(snapshot_ops[i].name, name) == 0)
                        return &snapshot_ops[i];
        return NULL;
}

const struct wire_arg *snapshot_op_args(const struct snapshot_op_def *def)
{
        return def->args;
}

int snapshot_op_run(struct tetherd *d, const struct snapshot_op_def *def, json_t *args,
                    vm_done_fn done, void *opaque, json_t **ret, struct tt_error *err)
{
        struct vm *vm = vm_lookup(d, json_string_value(json_object_get(args, "domain")), err);

        int r;

        if (vm == NULL)
                return -1;
        if (def->read)
                return def->read(vm, args, ret, err);
        r = def->job(vm, args, done, opaque, err);
        if (r == 0) /* delete --metadata: done at once */
                *ret = json_pack("{s:s}", "name", json_string_value(json_object_get(args, "name")));
        return r;
}
