/* SPDX-License-Identifier: GPL-2.0-or-later */
/* guest-ssh-get-authorized-keys, and the /etc/passwd lookup that the ssh and user commands share.
 */
#include "agent/agent.h"
#include "agent/sysinfo.h"
#include "agent/users.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* authorized_keys files are small; this bounds what a hostile guest file can make us hold. */
#define AUTHKEYS_MAX (16 * 1024 * 1024)

int agent_lookup_user(const char *name, uid_t *uid, gid_t *gid, char **home, struct tt_error *err)
{
        _cleanup_free_ char *path = agent_path("/etc/passwd");
        _cleanup_fclose_ FILE *f = NULL;
        struct passwd *pw;

        if (path == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        f = fopen(path, "re");
        if (f == NULL)
                return tt_error_errno(err, errno, "failed to lookup user '%s'", name);
        /* fgetpwent() parses the file itself: no NSS, so it works in a static binary */
        while ((pw = fgetpwent(f)) != NULL) {
                if (strcmp(pw->pw_name, name) != 0)
                        continue;
                if (home) {
                        *home = strdup(pw->pw_dir ? pw->pw_dir : "");
                        if (*home == NULL)
                                return tt_error_set(err, ENOMEM, "out of memory");
                }
                if (uid)
                        *uid = pw->pw_uid;
                if (gid)
                        *gid = pw->pw_gid;
                return 0;
        }
        /* qemu-ga prints strerror(errno) of a lookup that found nothing: "Success" */
        return tt_error_set(err, ENOENT, "failed to lookup user '%s': Success", name);
}

/*
 * Read real (the file under the sysroot) into *text; errors name shown (the guest path) in
 * GLib's g_file_get_contents() wording, which qemu-ga puts inside its own message.
 */
static int read_authkeys(const char *real, const char *path, char **text, struct tt_error *err)
{
        struct tt_error e = {0};
        int r = tt_read_file(real, AUTHKEYS_MAX, text, NULL, &e);

        if (r < 0) {
                int code = e.code;

                tt_error_clear(&e);
                if (code == EFBIG)
                        return tt_error_set(err, code, "failed to read '%s': file too large", path);
                if (code == EISDIR)
                        return tt_error_set(err, code,
                                            "failed to read '%s': Error reading file "
                                            "\u201c%s\u201d: %s",
                                            path, path, strerror(code));
                return tt_error_set(err, code,
                                    "failed to read '%s': Failed to open file \u201c%s\u201d: %s",
                                    path, path, strerror(code));
        }
        return 0;
}

AGENT_HANDLER(agent_cmd_ssh_get_authorized_keys)
{
        const char *user = json_string_value(json_object_get(args, "username"));
        _cleanup_json_ json_t *keys = json_array();
        _cleanup_free_ char *home = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ char *real = NULL;
        _cleanup_free_ char *text = NULL;
        char *line, *save = NULL;

        if (keys == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (user == NULL)
                return tt_error_set(err, EINVAL, "Parameter 'username' is missing");
        if (agent_lookup_user(user, NULL, NULL, &home, err) < 0)
                return -1;
        /* g_build_filename() joins without doubling the separator */
        if (asprintf(&path, "%s%s.ssh/authorized_keys", home,
                     (*home && home[strlen(home) - 1] == '/') ? "" : "/") < 0) {
                path = NULL;
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        real = agent_path("%s", path);
        if (real == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (read_authkeys(real, path, &text, err) < 0)
                return -1;
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *end;

                /* g_strstrip(): ASCII white space at both ends */
                while (*line == ' ' || (*line >= '\t' && *line <= '\r'))
                        line++;
                end = line + strlen(line);
                while (end > line && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r')))
                        *--end = '\0';
                if (*line == '\0' || *line == '#')
                        continue;
                /* qemu-ga prepends each key, so the reply lists the file bottom-up */
                if (json_array_insert_new(keys, 0, json_string(line)) < 0)
                        continue; /* not UTF-8: cannot go on the wire */
        }
        *ret = json_pack("{s:O}", "keys", keys);
        if (*ret == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return 0;
}
