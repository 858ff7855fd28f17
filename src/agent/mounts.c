/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "agent/mounts.h"
#include "agent/sysinfo.h"
#include "common/cleanup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

void agent_mounts_free(struct agent_mounts *m)
{
        size_t i;

        for (i = 0; i < m->n; i++) {
                free(m->v[i].dir);
                free(m->v[i].type);
        }
        free(m->v);
        m->v = NULL;
        m->n = m->cap = 0;
}

static int mounts_add(struct agent_mounts *m, const char *dir, const char *type, unsigned int major,
                      unsigned int minor)
{
        size_t i;

        /* one entry per device: bind mounts and repeated mounts are the same file system */
        for (i = 0; i < m->n; i++)
                if (m->v[i].major == major && m->v[i].minor == minor)
                        return 0;
        if (m->n == m->cap) {
                size_t ncap = m->cap ? m->cap * 2 : 16;
                struct agent_mount *nv = reallocarray(m->v, ncap, sizeof(*nv));

                if (nv == NULL)
                        return -ENOMEM;
                m->v = nv;
                m->cap = ncap;
        }
        m->v[m->n].dir = strdup(dir);
        m->v[m->n].type = strdup(type);
        m->v[m->n].major = major;
        m->v[m->n].minor = minor;
        m->n++;
        if (m->v[m->n - 1].dir == NULL || m->v[m->n - 1].type == NULL)
                return -ENOMEM;
        return 0;
}

/* Undo the kernel's \ooo escapes (space, tab, newline, backslash) in place. */
static void unescape_mount_name(char *s)
{
        char *out = s;

        for (; *s; s++) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
                    s[3] >= '0' && s[3] <= '7') {
                        *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 3;
                } else if (s[0] == '\\' && s[1] == '\\') {
                        *out++ = '\\';
                        s++;
                } else {
                        *out++ = *s;
                }
        }
        *out = '\0';
}

/* 0 and the numbers of a block device node; -2 for a directory (a bind mount); -1 otherwise. */
static int dev_major_minor(const char *path, unsigned int *major, unsigned int *minor)
{
        struct stat st;

        *major = *minor = 0;
        if (stat(path, &st) < 0)
                return -1;
        if (S_ISDIR(st.st_mode))
                return -2;
        if (!S_ISBLK(st.st_mode))
                return -1;
        *major = major(st.st_rdev);
        *minor = minor(st.st_rdev);
        return 0;
}

/* Older kernels without mountinfo: /proc/self/mounts, keeping only /dev-like sources. */
static int mounts_from_mtab(const char *path, struct agent_mounts *m, struct tt_error *err)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;

        if (f == NULL)
                return tt_error_set(err, errno, "failed to open mtab file: '%s'",
                                    "/proc/self/mounts");
        while (getline(&line, &cap, f) != -1) {
                char *save = NULL, *src, *dir, *type;
                unsigned int major, minor;

                src = strtok_r(line, " \t\n", &save);
                dir = strtok_r(NULL, " \t\n", &save);
                type = strtok_r(NULL, " \t\n", &save);
                if (src == NULL || dir == NULL || type == NULL)
                        continue;
                unescape_mount_name(src);
                unescape_mount_name(dir);
                /* not a device path: a pseudo or network file system (smbfs/cifs likewise) */
                if (src[0] != '/' || strcmp(type, "smbfs") == 0 || strcmp(type, "cifs") == 0)
                        continue;
                if (dev_major_minor(src, &major, &minor) == -2)
                        continue;
                if (mounts_add(m, dir, type, major, minor) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}

/*
 * The local block-device file systems, in mount order: /proc/self/mountinfo, skipping major 0
 * (pseudo file systems) except btrfs, whose st_dev is anonymous and is looked up from the
 * source device instead.
 */
int agent_mounts_read(struct agent_mounts *m, struct tt_error *err)
{
        _cleanup_free_ char *info = agent_path("/proc/self/mountinfo");
        _cleanup_free_ char *mtab = agent_path("/proc/self/mounts");
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;

        if (info == NULL || mtab == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        f = fopen(info, "re");
        if (f == NULL)
                return mounts_from_mtab(mtab, m, err);
        while (getline(&line, &cap, f) != -1) {
                /* id parent major:minor root mountpoint options... - type source superopts */
                unsigned int major, minor;
                int dir_s = 0, dir_e = 0;
                char *dash, *save = NULL, *type, *src;

                if (sscanf(line, "%*u %*u %u:%u %*s %n%*s%n", &major, &minor, &dir_s, &dir_e) < 2 ||
                    dir_e == 0)
                        continue;
                dash = strstr(line + dir_e, " - ");
                if (dash == NULL)
                        continue;
                line[dir_e] = '\0';
                type = strtok_r(dash + 3, " \t\n", &save);
                src = strtok_r(NULL, " \t\n", &save);
                if (type == NULL)
                        continue;
                unescape_mount_name(line + dir_s);
                if (src)
                        unescape_mount_name(src);
                else
                        src = ""; /* a literal: not unescaped in place */
                if (major == 0 &&
                    (strcmp(type, "btrfs") != 0 || dev_major_minor(src, &major, &minor) < 0))
                        continue;
                if (mounts_add(m, line + dir_s, type, major, minor) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}
