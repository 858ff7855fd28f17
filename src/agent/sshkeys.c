/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-ssh-add-authorized-keys and guest-ssh-remove-authorized-keys, with qemu-ga's file
 * format (lines joined by '\n', no newline added at the end) and texts. Safer than qemu-ga:
 * the agent runs as root inside a directory the user owns, so ~/.ssh is opened without
 * following a symlink and everything after that goes through that directory descriptor;
 * the new file gets its owner and mode before it is renamed into place.
 */
#include "agent/agent.h"
#include "agent/sysinfo.h"
#include "agent/users.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* authorized_keys files are small; this bounds what a hostile guest file can make us hold. */
#define AUTHKEYS_MAX (16 * 1024 * 1024)
#define AUTHKEYS     "authorized_keys"

/* The lines of a file, g_strsplit(text, "\n", -1) style: "a\nb\n" is "a", "b", "". */
struct lines {
        char **v;
        size_t n;
        size_t cap;
};

static void lines_free(struct lines *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        *l = (struct lines){0};
}

static int lines_add(struct lines *l, const char *s, size_t len)
{
        if (l->n == l->cap) {
                size_t ncap = l->cap ? l->cap * 2 : 16;
                char **nv = reallocarray(l->v, ncap, sizeof(*nv));

                if (nv == NULL)
                        return -ENOMEM;
                l->v = nv;
                l->cap = ncap;
        }
        l->v[l->n] = strndup(s, len);
        if (l->v[l->n] == NULL)
                return -ENOMEM;
        l->n++;
        return 0;
}

static bool lines_contain(const struct lines *l, const char *s)
{
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->v[i], s) == 0)
                        return true;
        return false;
}

static int check_keys(json_t *keys, struct tt_error *err)
{
        size_t i;
        json_t *k;

        json_array_foreach(keys, i, k)
        {
                const char *s = json_string_value(k);

                if (s[0] == '#' || strchr(s, '\n'))
                        return tt_error_set(err, EINVAL, "invalid OpenSSH public key: '%s'", s);
        }
        return 0;
}

/* home/.ssh as g_build_filename() joins it, without doubling a separator. */
static char *ssh_dir_of(const char *home)
{
        size_t len = strlen(home);
        char *path = NULL;

        while (len > 0 && home[len - 1] == '/')
                len--;
        if (asprintf(&path, "%.*s/.ssh", (int)len, home) < 0)
                return NULL;
        return path;
}

/* Open the user's .ssh directory (never through a symlink); create it, 0700 and theirs, if asked.
 */
static int open_ssh_dir(const char *ssh_path, uid_t uid, gid_t gid, bool create, int *dfd,
                        struct tt_error *err)
{
        _cleanup_free_ char *real = agent_path("%s", ssh_path);
        struct stat st;

        if (real == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        *dfd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (*dfd >= 0 || !create || errno != ENOENT)
                goto check;
        if (mkdir(real, 0700) < 0)
                return tt_error_set(err, errno, "failed to create directory '%s': %s", ssh_path,
                                    strerror(errno));
        *dfd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (*dfd < 0)
                return tt_error_set(err, errno, "failed to create directory '%s': %s", ssh_path,
                                    strerror(errno));
        if (fchown(*dfd, uid, gid) < 0)
                return tt_error_set(err, errno, "failed to set ownership of directory '%s': %s",
                                    ssh_path, strerror(errno));
        if (fchmod(*dfd, 0700) < 0)
                return tt_error_set(err, errno, "failed to set permissions of directory '%s': %s",
                                    ssh_path, strerror(errno));
        return 0;
check:
        if (*dfd < 0)
                return tt_error_set(err, errno, "failed to open directory '%s': %s", ssh_path,
                                    strerror(errno));
        /* someone else's directory (a symlink target swapped in) is not the user's .ssh */
        if (fstat(*dfd, &st) < 0 || (st.st_uid != uid && st.st_uid != 0))
                return tt_error_set(err, EPERM, "refusing to use '%s': not owned by the user",
                                    ssh_path);
        return 0;
}

/* Read .ssh/authorized_keys into lines; 0, or a negative errno value. */
static int read_lines(int dfd, struct lines *l)
{
        _cleanup_close_ int fd = openat(dfd, AUTHKEYS, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ char *text = NULL;
        size_t len = 0, cap = 0, pos = 0;
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        char *nt;

                        if (cap >= AUTHKEYS_MAX)
                                return -EFBIG;
                        cap = cap ? cap * 2 : 4096;
                        nt = realloc(text, cap + 1);
                        if (nt == NULL)
                                return -ENOMEM;
                        text = nt;
                }
                n = read(fd, text + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        /* g_strsplit() of "" is no line at all; otherwise every '\n' starts one more */
        while (len > 0) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t llen = nl ? (size_t)(nl - (text + pos)) : len - pos;

                if (lines_add(l, text + pos, llen) < 0)
                        return -ENOMEM;
                if (nl == NULL)
                        break;
                pos += llen + 1;
        }
        return 0;
}

/* Write the lines joined by '\n' to a new file owned by the user, 0600, renamed into place. */
static int write_lines(int dfd, const char *path, const struct lines *l, uid_t uid, gid_t gid,
                       struct tt_error *err)
{
        char tmp[sizeof(AUTHKEYS) + 8];
        _cleanup_close_ int fd = -1;
        unsigned char rnd[6];
        int e;

        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                return tt_error_set(err, errno, "failed to write to '%s': %s", path,
                                    strerror(errno));
        snprintf(tmp, sizeof(tmp), AUTHKEYS ".%02x%02x%02x", rnd[0], rnd[1], rnd[2]);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return tt_error_set(err, errno, "failed to write to '%s': %s", path,
                                    strerror(errno));
        for (size_t i = 0; i < l->n; i++)
                if ((i > 0 && tt_write_all(fd, "\n", 1) < 0) ||
                    tt_write_all(fd, l->v[i], strlen(l->v[i])) < 0)
                        goto write_failed;
        if (fsync(fd) < 0)
                goto write_failed;
        if (fchown(fd, uid, gid) < 0) {
                e = errno;
                unlinkat(dfd, tmp, 0);
                return tt_error_set(err, e, "failed to set ownership of directory '%s': %s", path,
                                    strerror(e));
        }
        if (fchmod(fd, 0600) < 0) {
                e = errno;
                unlinkat(dfd, tmp, 0);
                return tt_error_set(err, e, "failed to set permissions of '%s': %s", path,
                                    strerror(e));
        }
        if (renameat(dfd, tmp, dfd, AUTHKEYS) < 0)
                goto write_failed;
        fsync(dfd);
        return 0;
write_failed:
        e = errno;
        unlinkat(dfd, tmp, 0);
        return tt_error_set(err, e, "failed to write to '%s': %s", path, strerror(e));
}

struct user_keys {
        uid_t uid;
        gid_t gid;
        char *ssh_path;  /* ~/.ssh as the guest sees it */
        char *keys_path; /* ~/.ssh/authorized_keys as the guest sees it */
};

static void user_keys_free(struct user_keys *u)
{
        free(u->ssh_path);
        free(u->keys_path);
}

static int user_keys_lookup(const char *user, struct user_keys *u, struct tt_error *err)
{
        _cleanup_free_ char *home = NULL;

        if (agent_lookup_user(user, &u->uid, &u->gid, &home, err) < 0)
                return -1;
        u->ssh_path = ssh_dir_of(home);
        if (u->ssh_path == NULL || asprintf(&u->keys_path, "%s/" AUTHKEYS, u->ssh_path) < 0) {
                u->keys_path = NULL;
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}

AGENT_HANDLER(agent_cmd_ssh_add_authorized_keys)
{
        const char *user = json_string_value(json_object_get(args, "username"));
        json_t *keys = json_object_get(args, "keys");
        bool reset = json_is_true(json_object_get(args, "reset"));
        struct user_keys u = {0};
        struct lines l = {0};
        _cleanup_close_ int dfd = -1;
        size_t i;
        json_t *k;
        int r = -1;

        if (check_keys(keys, err) < 0 || user_keys_lookup(user, &u, err) < 0)
                goto out;
        if (open_ssh_dir(u.ssh_path, u.uid, u.gid, true, &dfd, err) < 0)
                goto out;
        /* an unreadable or missing file counts as empty, as in qemu-ga */
        if (!reset && read_lines(dfd, &l) < 0)
                lines_free(&l);
        json_array_foreach(keys, i, k)
        {
                const char *key = json_string_value(k);

                if (lines_contain(&l, key))
                        continue;
                if (lines_add(&l, key, strlen(key)) < 0) {
                        tt_error_set(err, ENOMEM, "out of memory");
                        goto out;
                }
        }
        r = write_lines(dfd, u.keys_path, &l, u.uid, u.gid, err);
out:
        lines_free(&l);
        user_keys_free(&u);
        return r;
}

AGENT_HANDLER(agent_cmd_ssh_remove_authorized_keys)
{
        const char *user = json_string_value(json_object_get(args, "username"));
        json_t *keys = json_object_get(args, "keys");
        struct user_keys u = {0};
        struct lines l = {0}, kept = {0};
        _cleanup_close_ int dfd = -1;
        int r = -1, e;

        if (check_keys(keys, err) < 0 || user_keys_lookup(user, &u, err) < 0)
                goto out;
        /* nothing to remove from a file (or a directory) that does not exist */
        dfd = -1;
        {
                _cleanup_free_ char *real = agent_path("%s", u.keys_path);

                if (real == NULL) {
                        tt_error_set(err, ENOMEM, "out of memory");
                        goto out;
                }
                if (access(real, F_OK) < 0) {
                        r = 0;
                        goto out;
                }
        }
        if (open_ssh_dir(u.ssh_path, u.uid, u.gid, false, &dfd, err) < 0)
                goto out;
        e = read_lines(dfd, &l);
        if (e < 0) {
                tt_error_set(err, -e, "failed to read '%s': Failed to open file \u201c%s\u201d: %s",
                             u.keys_path, u.keys_path, strerror(-e));
                goto out;
        }
        for (size_t i = 0; i < l.n; i++) {
                size_t j;
                json_t *k;
                bool drop = false;

                json_array_foreach(keys, j, k) if (strcmp(json_string_value(k), l.v[i]) == 0) drop =
                    true;
                if (!drop && lines_add(&kept, l.v[i], strlen(l.v[i])) < 0) {
                        tt_error_set(err, ENOMEM, "out of memory");
                        goto out;
                }
        }
        r = write_lines(dfd, u.keys_path, &kept, u.uid, u.gid, err);
out:
        lines_free(&l);
        lines_free(&kept);
        user_keys_free(&u);
        return r;
}
