/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Ownership of the files QEMU opens: grant for a run, remember, restore (dac.h). */
#include "host/dac.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "host/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DAC_FILE "dac.json"
#define DAC_READ 4
#define DAC_WRITE 2

bool dac_qemu_can(const struct tetherd *d, const struct stat *st, int need)
{
        unsigned bits;
        bool in_group = st->st_gid == d->qemu_gid;

        for (int i = 0; !in_group && i < d->n_qemu_groups; i++)
                in_group = st->st_gid == d->qemu_groups[i];
        if (st->st_uid == d->qemu_uid)
                bits = (st->st_mode >> 6) & 7;
        else if (in_group)
                bits = (st->st_mode >> 3) & 7;
        else
                bits = st->st_mode & 7;
        return (bits & (unsigned)need) == (unsigned)need;
}

/*
 * Open a real path (no symlink in it, as realpath returns) without following any symlink that
 * was swapped in since: the fd is exactly the file at that path, or the call fails.
 */
static int open_exact(const char *real)
{
        struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
        long fd = syscall(SYS_openat2, AT_FDCWD, real, &how, sizeof(how));

        if (fd < 0 && errno == ENOSYS)
                fd = open(real, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        return (int)fd;
}

static char *dac_path(struct tetherd *d, const char *name)
{
        return store_run_path(&d->store, name, DAC_FILE);
}

static int save_doc(const char *state, json_t *doc, struct tt_error *err)
{
        _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT);

        if (text == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return tt_write_file_atomic(state, text, strlen(text), 0600, err);
}

static bool same_file(json_t *f, json_int_t dev, json_int_t ino)
{
        return json_integer_value(json_object_get(f, "dev")) == dev &&
               json_integer_value(json_object_get(f, "ino")) == ino;
}

/*
 * Another running domain whose dac.json lists the file (dev, ino): its dac.json (the caller
 * frees it and *state), and in *entry that file's entry; NULL when there is none.
 */
static json_t *other_holder(struct tetherd *d, const char *name, json_int_t dev, json_int_t ino,
                            char **state, json_t **entry)
{
        char **names = store_list_running(&d->store, NULL);
        json_t *found = NULL;

        for (size_t i = 0; names && names[i]; i++) {
                _cleanup_free_ char *path = NULL;
                json_t *doc, *f;
                size_t k;

                if (found || strcmp(names[i], name) == 0 ||
                    (path = dac_path(d, names[i])) == NULL || access(path, F_OK) < 0)
                        continue;
                doc = json_load_file(path, 0, NULL);
                json_array_foreach(json_object_get(doc, "files"), k, f) {
                        if (same_file(f, dev, ino)) {
                                found = doc;
                                *entry = f;
                                *state = path;
                                path = NULL;
                                break;
                        }
                }
                if (found == NULL)
                        json_decref(doc);
        }
        for (size_t i = 0; names && names[i]; i++)
                free(names[i]);
        free(names);
        return found;
}

/* What def makes QEMU open, with the access it needs; the same file once, with the most. */
struct need {
        char *real;  /* realpath */
        int access;  /* DAC_READ, or DAC_READ | DAC_WRITE */
};

static int add_need(struct need *needs, size_t *n, const char *path, int access)
{
        char *real = realpath(path, NULL);

        if (real == NULL)
                return 0; /* QEMU reports a missing file itself */
        for (size_t i = 0; i < *n; i++) {
                if (strcmp(needs[i].real, real) == 0) {
                        needs[i].access |= access;
                        free(real);
                        return 0;
                }
        }
        needs[*n].real = real;
        needs[*n].access = access;
        (*n)++;
        return 0;
}

int dac_grant(struct tetherd *d, const char *name, const struct domain *def,
              struct tt_error *err)
{
        _cleanup_free_ char *state = dac_path(d, name);
        _cleanup_free_ struct need *needs = NULL;
        _cleanup_json_ json_t *doc = NULL;
        json_t *files;
        size_t n = 0;
        int r = 0;

        if (!d->qemu_drop)
                return 0;
        if (state == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        dac_restore(d, name); /* a leftover of a run that was never cleaned up */
        needs = calloc(def->n_disks + 3, sizeof(*needs));
        doc = json_pack("{s:I, s:[]}", "qemu_uid", (json_int_t)d->qemu_uid, "files");
        if (needs == NULL || doc == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        files = json_object_get(doc, "files");
        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *disk = &def->disks[i];
                bool ro = disk->readonly || disk->device == DOMAIN_DISK_CDROM;

                if (disk->source)
                        add_need(needs, &n, disk->source, ro ? DAC_READ : DAC_READ | DAC_WRITE);
        }
        if (def->kernel)
                add_need(needs, &n, def->kernel, DAC_READ);
        if (def->initrd)
                add_need(needs, &n, def->initrd, DAC_READ);
        for (size_t i = 0; i < n && r == 0; i++) {
                _cleanup_close_ int fd = open_exact(needs[i].real);
                char fdpath[64];
                struct stat st;
                mode_t mode;

                if (fd < 0 || fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
                        continue;
                if (dac_qemu_can(d, &st, needs[i].access)) {
                        /*
                         * Given to QEMU's user for another running domain: note that this one
                         * uses it too, so that the other's stop leaves it for this run.
                         */
                        _cleanup_free_ char *other_state = NULL;
                        _cleanup_json_ json_t *other = NULL;
                        json_t *entry;

                        if (st.st_uid != d->qemu_uid ||
                            (other = other_holder(d, name, (json_int_t)st.st_dev,
                                                  (json_int_t)st.st_ino, &other_state,
                                                  &entry)) == NULL)
                                continue;
                        json_array_append_new(
                                files, json_pack("{s:s, s:I, s:I, s:b}", "path", needs[i].real,
                                                 "dev", (json_int_t)st.st_dev, "ino",
                                                 (json_int_t)st.st_ino, "shared", true));
                        if (save_doc(state, doc, err) < 0) {
                                r = -1;
                                break;
                        }
                        continue;
                }
                /*
                 * Only root's requests may hand out a file outside the image folders: a client
                 * or an autostart may not make tetherd give away a file the domain was never
                 * allowed to name (QEMU opens its images before it drops root).
                 */
                if (d->request_uid != 0 && !policy_in_image_dirs(d, needs[i].real)) {
                        tt_warn("%s: '%s' stays as it is: QEMU's user cannot use it, and it is "
                                "outside the image folders",
                                name, needs[i].real);
                        continue;
                }
                /* Remember first: a crash between the two leaves a file that can be restored. */
                json_array_append_new(files,
                                      json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "path",
                                                needs[i].real, "uid", (json_int_t)st.st_uid, "gid",
                                                (json_int_t)st.st_gid, "mode",
                                                (json_int_t)(st.st_mode & 07777), "dev",
                                                (json_int_t)st.st_dev, "ino",
                                                (json_int_t)st.st_ino));
                if (save_doc(state, doc, err) < 0) {
                        r = -1;
                        break;
                }
                mode = (st.st_mode & 07777) | S_IRUSR |
                       ((needs[i].access & DAC_WRITE) ? S_IWUSR : 0);
                snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
                if (fchownat(fd, "", d->qemu_uid, d->qemu_gid, AT_EMPTY_PATH) < 0 ||
                    chmod(fdpath, mode) < 0) {
                        r = tt_error_errno(err, errno,
                                           "cannot give '%s' to QEMU's user (uid %u)",
                                           needs[i].real, (unsigned)d->qemu_uid);
                        break;
                }
                tt_debug("%s: '%s' given to uid %u for the run (was %u:%u %04o)", name,
                         needs[i].real, (unsigned)d->qemu_uid, (unsigned)st.st_uid,
                         (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
        }
        for (size_t i = 0; i < n; i++)
                free(needs[i].real);
        if (r < 0)
                dac_restore(d, name);
        return r;
}

/*
 * A file this domain remembered that another running domain also lists: the last one to stop
 * restores it. When this domain holds the owner from before any run, it passes to the other
 * (whose entry holds only QEMU's user, or a use); true when the file is left to the other.
 */
static bool leave_to_other(struct tetherd *d, const char *name, json_t *f, uid_t ours)
{
        json_int_t dev = json_integer_value(json_object_get(f, "dev"));
        json_int_t ino = json_integer_value(json_object_get(f, "ino"));
        _cleanup_free_ char *other_state = NULL;
        _cleanup_json_ json_t *other = NULL;
        struct tt_error err = {0};
        json_t *entry;

        other = other_holder(d, name, dev, ino, &other_state, &entry);
        if (other == NULL)
                return false;
        if (json_is_true(json_object_get(f, "shared")) ||
            json_integer_value(json_object_get(f, "uid")) == (json_int_t)ours)
                return true;
        json_object_update(entry, f);
        json_object_del(entry, "shared");
        if (save_doc(other_state, other, &err) < 0) {
                tt_warn("%s: cannot pass the owner of '%s' on to the domain that still uses it: "
                        "%s; restoring it now",
                        name, json_string_value(json_object_get(f, "path")), err.msg);
                tt_error_clear(&err);
                return false;
        }
        tt_debug("%s: '%s' stays QEMU's user's for another running domain, which restores it",
                 name, json_string_value(json_object_get(f, "path")));
        return true;
}

static void restore_one(struct tetherd *d, const char *name, json_t *f, uid_t ours)
{
        const char *path = json_string_value(json_object_get(f, "path"));
        json_int_t uid = json_integer_value(json_object_get(f, "uid"));
        json_int_t gid = json_integer_value(json_object_get(f, "gid"));
        json_int_t mode = json_integer_value(json_object_get(f, "mode"));
        json_int_t dev = json_integer_value(json_object_get(f, "dev"));
        json_int_t ino = json_integer_value(json_object_get(f, "ino"));
        _cleanup_close_ int fd = -1;
        char fdpath[64];
        struct stat st;

        if (path == NULL || path[0] != '/' || leave_to_other(d, name, f, ours) ||
            json_is_true(json_object_get(f, "shared")))
                return;
        fd = open_exact(path);
        if (fd < 0 || fstat(fd, &st) < 0) {
                tt_warn("%s: cannot restore the owner of '%s': %s", name, path, strerror(errno));
                return;
        }
        if ((json_int_t)st.st_dev != dev || (json_int_t)st.st_ino != ino || st.st_uid != ours) {
                tt_warn("%s: '%s' was replaced or changed owner during the run; left as it is",
                        name, path);
                return;
        }
        snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
        if (fchownat(fd, "", (uid_t)uid, (gid_t)gid, AT_EMPTY_PATH) < 0 ||
            chmod(fdpath, (mode_t)mode & 07777) < 0)
                tt_warn("%s: cannot restore the owner of '%s': %s", name, path, strerror(errno));
        else
                tt_debug("%s: '%s' back to %u:%u %04o", name, path, (unsigned)uid,
                         (unsigned)gid, (unsigned)mode);
}

void dac_restore(struct tetherd *d, const char *name)
{
        _cleanup_free_ char *state = dac_path(d, name);
        _cleanup_json_ json_t *doc = NULL;
        json_error_t jerr;
        json_t *files, *f;
        size_t i;

        if (state == NULL || access(state, F_OK) < 0)
                return;
        doc = json_load_file(state, 0, &jerr);
        files = json_object_get(doc, "files");
        /* Newest first: a file granted twice ends with its first remembered owner. */
        for (i = json_array_size(files); i-- > 0;) {
                f = json_array_get(files, i);
                restore_one(d, name, f,
                            (uid_t)json_integer_value(json_object_get(doc, "qemu_uid")));
        }
        if (doc == NULL)
                tt_warn("%s: unreadable %s: %s", name, state, jerr.text);
        unlink(state);
}
