/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-get-host-name, guest-get-users, guest-get-timezone, guest-get-osinfo, plus the small
 * helpers every read-only system-information command shares (sysinfo.h).
 */
#include "agent/agent.h"
#include "agent/sysinfo.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <utmpx.h>

/* os-release is a handful of lines; anything bigger is not one. */
#define OS_RELEASE_MAX (64 * 1024)

const char *agent_sysroot(void)
{
        const char *root = getenv("TETHER_AGENT_SYSROOT");

        return root ? root : "";
}

char *agent_path(const char *fmt, ...)
{
        _cleanup_free_ char *tail = NULL;
        char *path = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&tail, fmt, ap);
        va_end(ap);
        if (r < 0) {
                tail = NULL;
                return NULL;
        }
        if (asprintf(&path, "%s%s", agent_sysroot(), tail) < 0)
                return NULL;
        return path;
}

int agent_json_set(json_t *obj, const char *key, json_t *v)
{
        if (v == NULL)
                return -1;
        return json_object_set_new(obj, key, v);
}

json_t *agent_json_u64(uint64_t v)
{
        return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

AGENT_HANDLER(agent_cmd_get_host_name)
{
        char name[HOST_NAME_MAX + 1];
        json_t *obj;

        if (gethostname(name, sizeof(name)) < 0)
                return tt_error_set(err, errno, "cannot get hostname");
        name[sizeof(name) - 1] = '\0';
        obj = json_pack("{s:s}", "host-name", name);
        if (obj == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        *ret = obj;
        return 0;
}

AGENT_HANDLER(agent_cmd_get_users)
{
        _cleanup_json_ json_t *list = json_array();
        _cleanup_free_ char *utmp = NULL;
        struct utmpx *ut;

        if (list == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        /* The default utmp path is glibc's; a sysroot (tests) brings its own. */
        if (*agent_sysroot() != '\0') {
                utmp = agent_path("/run/utmp");
                if (utmp == NULL || utmpxname(utmp) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        setutxent();
        while ((ut = getutxent()) != NULL) {
                char user[sizeof(ut->ut_user) + 1];
                double t;
                size_t i;
                json_t *e = NULL;

                if (ut->ut_type != USER_PROCESS)
                        continue;
                /* ut_user need not be NUL-terminated */
                memcpy(user, ut->ut_user, sizeof(ut->ut_user));
                user[sizeof(ut->ut_user)] = '\0';
                t = (double)ut->ut_tv.tv_sec + (double)ut->ut_tv.tv_usec / 1000000.0;

                /* One entry per user, with the earliest login (qemu-ga does the same). */
                json_array_foreach(list, i, e)
                {
                        if (strcmp(json_string_value(json_object_get(e, "user")), user) == 0)
                                break;
                }
                if (i < json_array_size(list)) {
                        if (t < json_real_value(json_object_get(e, "login-time")))
                                json_object_set_new(e, "login-time", json_real(t));
                        continue;
                }
                e = json_pack("{s:s,s:f}", "user", user, "login-time", t);
                if (e == NULL)
                        continue; /* not UTF-8: cannot be put on the wire */
                if (json_array_append_new(list, e) < 0) {
                        endutxent();
                        return tt_error_set(err, ENOMEM, "out of memory");
                }
        }
        endutxent();
        if (utmp)
                utmpxname(_PATH_UTMPX);
        *ret = steal_pointer(&list);
        return 0;
}

AGENT_HANDLER(agent_cmd_get_timezone)
{
        json_t *obj;
        struct tm tm;
        time_t now = time(NULL);

        /* GLib (qemu-ga) reports the abbreviation and offset of the local zone right now. */
        tzset();
        if (localtime_r(&now, &tm) == NULL)
                return tt_error_set(err, errno, "Couldn't retrieve local timezone");
        obj = json_object();
        if (obj == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (tm.tm_zone && *tm.tm_zone)
                json_object_set_new(obj, "zone", json_string(tm.tm_zone));
        json_object_set_new(obj, "offset", json_integer(tm.tm_gmtoff));
        *ret = obj;
        return 0;
}

/* ---- os-release ---- */

/*
 * qemu-ga reads os-release with GKeyFile (under a made-up "[os-release]" group) and then
 * post-processes each value. These follow the parts of GKeyFile that matter for such a file:
 * a line that is neither a comment, a group nor KEY=VALUE makes the whole file unusable.
 */
static bool keyfile_is_group_line(const char *line)
{
        const char *p;

        if (*line != '[')
                return false;
        p = strchr(line + 1, ']');
        if (p == NULL)
                return false;
        for (p++; *p == ' ' || *p == '\t'; p++)
                ;
        return *p == '\0';
}

static bool keyfile_is_key_name(const char *key, size_t len)
{
        const char *p = key, *end = key + len;

        while (p < end && *p != '=' && *p != '[' && *p != ']')
                p++;
        if (p < end && *p == '[') {
                /* a locale suffix: KEY[xx] */
                for (p++; p < end && *p != ']'; p++)
                        if (*p == '[' || *p == '=')
                                return false;
                if (p >= end)
                        return false;
                p++;
        }
        return len > 0 && p == end;
}

/*
 * qemu-ga's value clean-up: a value not starting with '"' is cut at the first ' ' and then at
 * the first ';'. A double-quoted value ends at the closing quote, and \$ \' \" \\ \` lose their
 * backslash (other backslashes stay). Single quotes are not special. An unterminated quote runs
 * to the end (qemu-ga leaves stray bytes behind there; we do not copy that bug).
 */
static void osrelease_unquote(char *value)
{
        char *in, *out;

        if (value[0] != '"') {
                value[strcspn(value, " ")] = '\0';
                value[strcspn(value, ";")] = '\0';
                return;
        }
        out = value;
        for (in = value + 1; *in != '\0' && *in != '"'; in++) {
                if (*in == '\\' && in[1] != '\0' && strchr("$'\"\\`", in[1]))
                        in++;
                *out++ = *in;
        }
        *out = '\0';
}

/* Parse os-release text into obj under qemu-ga's key names; false if GKeyFile would refuse. */
static bool osrelease_parse(char *text, json_t *found)
{
        char *line, *save = NULL;
        bool in_group = true; /* the made-up [os-release] group */

        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                size_t len = strlen(line);
                char *eq, *key_end, *value;

                if (len > 0 && line[len - 1] == '\r')
                        line[--len] = '\0';
                while (*line == ' ' || *line == '\t' || *line == '\v' || *line == '\f' ||
                       *line == '\r')
                        line++;
                if (*line == '\0' || *line == '#')
                        continue;
                if (keyfile_is_group_line(line)) {
                        in_group = strncmp(line, "[os-release]", 12) == 0;
                        continue;
                }
                eq = strchr(line, '=');
                if (eq == NULL || eq == line)
                        return false;
                key_end = eq;
                while (key_end > line && (key_end[-1] == ' ' || key_end[-1] == '\t'))
                        key_end--;
                if (!keyfile_is_key_name(line, (size_t)(key_end - line)))
                        return false;
                *key_end = '\0';
                for (value = eq + 1; *value == ' ' || *value == '\t' || *value == '\v' ||
                                     *value == '\f' || *value == '\r';
                     value++)
                        ;
                if (in_group)
                        json_object_set_new(found, line, json_string_nocheck(value));
        }
        return true;
}

/* Read and parse one candidate file; NULL when it is missing, not UTF-8 or not parseable. */
static json_t *osrelease_load(const char *path)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_t *found = NULL;
        size_t len;

        if (tt_read_file(path, OS_RELEASE_MAX, &text, &len, NULL) < 0)
                return NULL;
        /* GLib stops at a NUL byte and wants UTF-8; so do we */
        found = json_string(text);
        if (found == NULL)
                return NULL;
        json_decref(found);
        found = json_object();
        if (found == NULL || !osrelease_parse(text, found))
                return NULL;
        return steal_pointer(&found);
}

AGENT_HANDLER(agent_cmd_get_osinfo)
{
        static const struct {
                const char *key;   /* reply member */
                const char *field; /* os-release variable */
        } fields[] = {
            {"id", "ID"},
            {"name", "NAME"},
            {"pretty-name", "PRETTY_NAME"},
            {"version", "VERSION"},
            {"version-id", "VERSION_ID"},
            {"variant", "VARIANT"},
            {"variant-id", "VARIANT_ID"},
        };
        _cleanup_json_ json_t *obj = json_object();
        _cleanup_json_ json_t *os = NULL;
        const char *env = getenv("QGA_OS_RELEASE");
        struct utsname u;
        size_t i;

        if (obj == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (uname(&u) != 0)
                return tt_error_errno(err, errno, "uname failed");
        json_object_set_new(obj, "kernel-release", json_string(u.release));
        json_object_set_new(obj, "kernel-version", json_string(u.version));
        json_object_set_new(obj, "machine", json_string(u.machine));

        if (env) {
                os = osrelease_load(env);
        } else {
                _cleanup_free_ char *etc = agent_path("/etc/os-release");
                _cleanup_free_ char *lib = agent_path("/usr/lib/os-release");

                if (etc && lib) {
                        os = osrelease_load(etc);
                        if (os == NULL)
                                os = osrelease_load(lib);
                }
        }
        for (i = 0; os && i < TT_ARRAY_SIZE(fields); i++) {
                const char *raw = json_string_value(json_object_get(os, fields[i].field));
                _cleanup_free_ char *v = NULL;

                if (raw == NULL)
                        continue;
                v = strdup(raw);
                if (v == NULL)
                        return tt_error_set(err, ENOMEM, "out of memory");
                osrelease_unquote(v);
                /* not valid UTF-8 cannot happen: the whole file was checked */
                json_object_set_new(obj, fields[i].key, json_string(v));
        }
        *ret = steal_pointer(&obj);
        return 0;
}
