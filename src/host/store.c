/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "host/store.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *join(const char *a, const char *b)
{
        char *s = NULL;

        if (asprintf(&s, "%s%s", a, b) < 0)
                return NULL;
        return s;
}

static char *path_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *path_printf(const char *fmt, ...)
{
        va_list ap;
        char *s = NULL;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}

static int store_init(struct store *st, const char *root, struct tt_error *err)
{
        const char *r = root ? root : "";
        const char *subdirs[] = {"domains", "autostart"};
        char *p;

        memset(st, 0, sizeof(*st));
        st->conf_dir = join(r, "/etc/tether");
        st->state_dir = join(r, "/var/lib/tether");
        st->run_dir = join(r, "/run/tether");
        if (!st->conf_dir || !st->state_dir || !st->run_dir)
                return tt_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < TT_ARRAY_SIZE(subdirs); i++) {
                p = path_printf("%s/%s", st->conf_dir, subdirs[i]);
                if (p == NULL || tt_mkdir_p(p, 0755, err) < 0) {
                        free(p);
                        return -1;
                }
                free(p);
        }
        p = path_printf("%s/save", st->state_dir);
        if (p == NULL || tt_mkdir_p(p, 0700, err) < 0) {
                free(p);
                return -1;
        }
        free(p);
        p = path_printf("%s/log", st->state_dir);
        if (p == NULL || tt_mkdir_p(p, 0700, err) < 0) {
                free(p);
                return -1;
        }
        free(p);
        p = path_printf("%s/domains", st->run_dir);
        if (p == NULL || tt_mkdir_p(p, 0755, err) < 0) {
                free(p);
                return -1;
        }
        free(p);
        return 0;
}

int store_open(struct store *st, const char *root, struct tt_error *err)
{
        /* The folders get the modes named here, whatever tetherd's umask (077): the control
           socket's folder must stay reachable for the group. */
        mode_t old_umask = umask(022);
        int r = store_init(st, root, err);

        umask(old_umask);
        return r;
}

void store_close(struct store *st)
{
        free(st->conf_dir);
        free(st->state_dir);
        free(st->run_dir);
        memset(st, 0, sizeof(*st));
}

char *store_def_path(const struct store *st, const char *name)
{
        return path_printf("%s/domains/%s.xml", st->conf_dir, name);
}

char *store_autostart_path(const struct store *st, const char *name)
{
        return path_printf("%s/autostart/%s", st->conf_dir, name);
}

char *store_managed_save_path(const struct store *st, const char *name)
{
        return path_printf("%s/save/%s.save", st->state_dir, name);
}

char *store_log_path(const struct store *st, const char *name)
{
        return path_printf("%s/log/%s.log", st->state_dir, name);
}

char *store_socket_path(const struct store *st)
{
        return path_printf("%s/tetherd.sock", st->run_dir);
}

char *store_run_path(const struct store *st, const char *name, const char *file)
{
        if (file == NULL)
                return path_printf("%s/domains/%s", st->run_dir, name);
        return path_printf("%s/domains/%s/%s", st->run_dir, name, file);
}

int store_save_def(const struct store *st, const char *name, const char *xml,
                   struct tt_error *err)
{
        _cleanup_free_ char *path = store_def_path(st, name);

        if (path == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return tt_write_file_atomic(path, xml, strlen(xml), 0600, err);
}

int store_delete_def(const struct store *st, const char *name, struct tt_error *err)
{
        _cleanup_free_ char *path = store_def_path(st, name);

        if (path == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (unlink(path) < 0 && errno != ENOENT)
                return tt_error_errno(err, errno, "cannot remove '%s'", path);
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entries of dir; with suffix, only names ending in it (suffix stripped); dirs_only likewise. */
static char **list_dir(const char *dir, const char *suffix, bool dirs_only, struct tt_error *err)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        char **v = calloc(1, sizeof(char *));
        size_t n = 0;
        struct dirent *e;

        if (v == NULL) {
                tt_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        if (d == NULL) {
                if (errno == ENOENT)
                        return v;
                tt_error_errno(err, errno, "cannot read '%s'", dir);
                free(v);
                return NULL;
        }
        while ((e = readdir(d)) != NULL) {
                size_t len = strlen(e->d_name), slen = suffix ? strlen(suffix) : 0;
                char **nv;

                if (e->d_name[0] == '.')
                        continue;
                if (dirs_only && e->d_type != DT_DIR)
                        continue;
                if (suffix && (len <= slen || strcmp(e->d_name + len - slen, suffix) != 0))
                        continue;
                nv = reallocarray(v, n + 2, sizeof(char *));
                if (nv == NULL) {
                        store_strv_free(v);
                        tt_error_set(err, ENOMEM, "out of memory");
                        return NULL;
                }
                v = nv;
                v[n] = strndup(e->d_name, len - slen);
                v[++n] = NULL;
        }
        qsort(v, n, sizeof(char *), cmp_str);
        return v;
}

char **store_list_defs(const struct store *st, struct tt_error *err)
{
        _cleanup_free_ char *dir = path_printf("%s/domains", st->conf_dir);

        return dir ? list_dir(dir, ".xml", false, err) : NULL;
}

char **store_list_running(const struct store *st, struct tt_error *err)
{
        _cleanup_free_ char *dir = path_printf("%s/domains", st->run_dir);

        return dir ? list_dir(dir, NULL, true, err) : NULL;
}

int store_save_status(const struct store *st, const char *name, json_t *status,
                      struct tt_error *err)
{
        _cleanup_free_ char *dir = store_run_path(st, name, NULL);
        _cleanup_free_ char *path = store_run_path(st, name, "status.json");
        _cleanup_free_ char *text = json_dumps(status, JSON_COMPACT | JSON_SORT_KEYS);

        if (!dir || !path || !text)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (tt_mkdir_p(dir, 0755, err) < 0)
                return -1;
        /* Under /run: must survive a tetherd crash (rename), not a reboot (no fsync). */
        return tt_write_file_replace(path, text, strlen(text), 0600, err);
}

json_t *store_load_status(const struct store *st, const char *name, struct tt_error *err)
{
        _cleanup_free_ char *path = store_run_path(st, name, "status.json");
        json_error_t jerr;
        json_t *j;

        if (path == NULL) {
                tt_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        j = json_load_file(path, 0, &jerr);
        if (j == NULL)
                tt_error_set(err, EINVAL, "cannot read status '%s': %s", path, jerr.text);
        return j;
}

void store_remove_run(const struct store *st, const char *name)
{
        static const char *const files[] = {"status.json", "domain.xml", "qmp.sock",
                                            "agent.sock", "ttyS0.sock", "qemu.pid"};
        _cleanup_free_ char *dir = store_run_path(st, name, NULL);

        for (size_t i = 0; i < TT_ARRAY_SIZE(files); i++) {
                _cleanup_free_ char *p = store_run_path(st, name, files[i]);
                if (p)
                        unlink(p);
        }
        if (dir)
                rmdir(dir);
}

int store_set_autostart(const struct store *st, const char *name, bool on, struct tt_error *err)
{
        _cleanup_free_ char *path = store_autostart_path(st, name);

        if (path == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (!on) {
                if (unlink(path) < 0 && errno != ENOENT)
                        return tt_error_errno(err, errno, "cannot remove '%s'", path);
                return 0;
        }
        return tt_write_file_atomic(path, "", 0, 0644, err);
}

bool store_get_autostart(const struct store *st, const char *name)
{
        _cleanup_free_ char *path = store_autostart_path(st, name);

        return path && access(path, F_OK) == 0;
}

bool store_has_managed_save(const struct store *st, const char *name)
{
        _cleanup_free_ char *path = store_managed_save_path(st, name);

        return path && access(path, F_OK) == 0;
}

void store_strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}
