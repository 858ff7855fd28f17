/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What a non-root client's domain may name (policy.h). */
#include "host/policy.h"
#include "host/backing.h"
#include "host/vm.h"
#include "common/cleanup.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

void policy_strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static int strv_add(char ***v, size_t *n, const char *s)
{
        char **nv;

        for (size_t i = 0; i < *n; i++)
                if (strcmp((*v)[i], s) == 0)
                        return 0;
        nv = realloc(*v, (*n + 2) * sizeof(char *));
        if (nv == NULL)
                return -1;
        *v = nv;
        if ((nv[*n] = strdup(s)) == NULL)
                return -1;
        nv[++*n] = NULL;
        return 0;
}

char **policy_split_list(const char *value)
{
        _cleanup_free_ char *copy = strdup(value);
        char **v = calloc(1, sizeof(char *)), *save = NULL;
        size_t n = 0;

        if (copy == NULL || v == NULL) {
                free(v);
                return NULL;
        }
        for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                if (strv_add(&v, &n, w) < 0) {
                        policy_strv_free(v);
                        return NULL;
                }
        }
        return v;
}

char **policy_default_emulators(void)
{
        static const char *const dirs[] = {"/usr/bin", "/usr/local/bin"};
        char **v = calloc(1, sizeof(char *));
        size_t n = 0;

        if (v == NULL)
                return NULL;
#ifdef TETHER_QEMU_EMULATOR
        if (access(TETHER_QEMU_EMULATOR, X_OK) == 0 && strv_add(&v, &n, TETHER_QEMU_EMULATOR) < 0)
                goto oom;
#endif
        for (size_t i = 0; i < TT_ARRAY_SIZE(dirs); i++) {
                _cleanup_closedir_ DIR *dir = opendir(dirs[i]);
                struct dirent *e;

                while (dir && (e = readdir(dir)) != NULL) {
                        char path[PATH_MAX];

                        if (strncmp(e->d_name, "qemu-system-", 12) != 0)
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", dirs[i], e->d_name);
                        if (access(path, X_OK) == 0 && strv_add(&v, &n, path) < 0)
                                goto oom;
                }
        }
        return v;
oom:
        policy_strv_free(v);
        return NULL;
}

char **policy_default_image_dirs(const char *root)
{
        char **v = calloc(1, sizeof(char *));
        size_t n = 0;
        char path[PATH_MAX];

        if (v == NULL || strv_add(&v, &n, "/var/lib/tether/images") < 0)
                goto oom;
        if (root && *root) {
                snprintf(path, sizeof(path), "%s/var/lib/tether/images", root);
                if (strv_add(&v, &n, path) < 0)
                        goto oom;
        }
        return v;
oom:
        policy_strv_free(v);
        return NULL;
}

/*
 * The real path of a file that may not exist yet: realpath of the file, or of its folder with
 * the last name appended (a plain name: not "." or "..").
 */
static char *real_path(const char *path)
{
        _cleanup_free_ char *dcopy = NULL, *bcopy = NULL, *dreal = NULL;
        char *r = realpath(path, NULL), *base, *out;

        if (r || errno != ENOENT)
                return r;
        dcopy = strdup(path);
        bcopy = strdup(path);
        if (dcopy == NULL || bcopy == NULL)
                return NULL;
        base = basename(bcopy);
        if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0)
                return NULL;
        dreal = realpath(dirname(dcopy), NULL);
        if (dreal == NULL || asprintf(&out, "%s/%s", strcmp(dreal, "/") ? dreal : "", base) < 0)
                return NULL;
        return out;
}

bool policy_in_image_dirs(const struct tetherd *d, const char *real)
{
        for (size_t i = 0; d->image_dirs && d->image_dirs[i]; i++) {
                _cleanup_free_ char *dir = realpath(d->image_dirs[i], NULL);
                size_t len;

                if (dir == NULL)
                        continue;
                len = strlen(dir);
                if (strncmp(real, dir, len) == 0 && (real[len] == '/' || len == 1))
                        return true;
        }
        return false;
}

static char *join_list(char **v)
{
        size_t len = 1;
        char *s;

        for (size_t i = 0; v && v[i]; i++)
                len += strlen(v[i]) + 1;
        s = calloc(1, len);
        for (size_t i = 0; s && v && v[i]; i++) {
                if (i)
                        strcat(s, " ");
                strcat(s, v[i]);
        }
        if (s && *s == '\0') {
                free(s);
                s = strdup("none");
        }
        return s;
}

static int check_file(struct tetherd *d, const char *element, const char *path,
                      struct tt_error *err)
{
        _cleanup_free_ char *real = NULL, *allowed = NULL;

        if (path == NULL)
                return 0;
        real = path[0] == '/' ? real_path(path) : NULL;
        if (real && policy_in_image_dirs(d, real))
                return 0;
        allowed = join_list(d->image_dirs);
        if (real == NULL)
                return tt_error_set(err, POLICY_ERR_DENIED,
                                    "access denied: %s '%s' cannot be resolved to a file under "
                                    "an image folder (allowed: %s)",
                                    element, path, allowed ? allowed : "?");
        if (strcmp(real, path) != 0)
                return tt_error_set(err, POLICY_ERR_DENIED,
                                    "access denied: %s '%s' resolves to '%s', which is not under "
                                    "an image folder (allowed: %s)",
                                    element, path, real, allowed ? allowed : "?");
        return tt_error_set(err, POLICY_ERR_DENIED,
                            "access denied: %s '%s' is not under an image folder (allowed: %s)",
                            element, path, allowed ? allowed : "?");
}

/* A file by its real path, read-only, with no symlink followed, never a FIFO or a device. */
static int open_exact(const char *real, const char *what, struct tt_error *err)
{
        struct open_how how = {.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                               .resolve = RESOLVE_NO_SYMLINKS};
        int fd = (int)syscall(SYS_openat2, AT_FDCWD, real, &how, sizeof(how));
        struct stat st;

        if (fd < 0)
                return tt_error_errno(err, errno, "cannot open %s '%s'", what, real);
        if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
                close(fd);
                return tt_error_set(err, VM_ERR_FAILED,
                                    "%s '%s' is not a regular file or a block device", what,
                                    real);
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        return fd;
}

int policy_open_backing(void *opaque, const char *path, const char *image, struct tt_error *err)
{
        struct tetherd *d = opaque;
        _cleanup_free_ char *real = realpath(path, NULL);

        if (real == NULL || !policy_in_image_dirs(d, real)) {
                _cleanup_free_ char *allowed = join_list(d->image_dirs);

                return tt_error_set(err, POLICY_ERR_DENIED,
                                    "access denied: the backing file '%s' of disk image '%s' "
                                    "is not under an image folder (allowed: %s)",
                                    path, image, allowed ? allowed : "?");
        }
        return open_exact(real, "backing file", err);
}

/* The backing chain of a qcow2 disk, walked and checked by path (define, create). */
static int check_backing(struct tetherd *d, const struct domain_disk *disk, struct tt_error *err)
{
        _cleanup_free_ char *real = NULL;
        _cleanup_close_ int fd = -1;
        struct tt_error oerr = {0};
        struct backing_link *links;
        size_t n;

        if (disk->source == NULL || disk->format != DOMAIN_FORMAT_QCOW2)
                return 0;
        real = realpath(disk->source, NULL);
        fd = real ? open_exact(real, "disk image", &oerr) : -1;
        tt_error_clear(&oerr);
        if (fd < 0)
                return 0; /* no image yet: the start says so, and checks again */
        if (backing_walk(fd, real, policy_open_backing, d, &links, &n, err) < 0) {
                if (err->code != POLICY_ERR_DENIED)
                        err->code = VM_ERR_CONFIG;
                return -1;
        }
        backing_links_free(links, n);
        return 0;
}

int policy_check_domain(struct tetherd *d, const struct domain *def, struct tt_error *err)
{
        bool ok = false;

        for (size_t i = 0; d->emulators && d->emulators[i]; i++)
                ok = ok || strcmp(d->emulators[i], def->emulator) == 0;
        if (!ok) {
                _cleanup_free_ char *allowed = join_list(d->emulators);

                return tt_error_set(err, POLICY_ERR_DENIED,
                                    "access denied: <emulator> '%s' is not an allowed emulator "
                                    "(allowed: %s)",
                                    def->emulator, allowed ? allowed : "?");
        }
        for (size_t i = 0; i < def->n_disks; i++)
                if (check_file(d, "<disk> source", def->disks[i].source, err) < 0 ||
                    check_backing(d, &def->disks[i], err) < 0)
                        return -1;
        if (check_file(d, "<kernel>", def->kernel, err) < 0 ||
            check_file(d, "<initrd>", def->initrd, err) < 0)
                return -1;
        for (size_t i = 0; i < def->n_channels; i++)
                if (def->channels[i].path)
                        return tt_error_set(err, POLICY_ERR_DENIED,
                                            "access denied: <channel> <source path='%s'>: "
                                            "channel sockets are tetherd's own, a client that "
                                            "is not root may not choose them (leave out "
                                            "<source>)",
                                            def->channels[i].path);
        return 0;
}

int policy_check(struct tetherd *d, uid_t uid, const char *verb, json_t *args,
                 struct tt_error *err)
{
        const char *xml = json_string_value(json_object_get(args, "xml"));
        struct domain *def;
        struct tt_error perr = {0};
        int r;

        d->request_uid = uid;
        if (uid == 0 || xml == NULL ||
            (strcmp(verb, "define") != 0 && strcmp(verb, "create") != 0))
                return 0;
        def = domain_parse(xml, strlen(xml), &perr);
        tt_error_clear(&perr);
        if (def == NULL)
                return 0; /* the verb reports the parse error itself */
        r = policy_check_domain(d, def, err);
        domain_free(def);
        return r;
}
