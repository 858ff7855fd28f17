/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-set-user-password. Like qemu-ga we feed "user:password" to chpasswd (-e for a crypted
 * password) when the guest has one. A minimal guest (busybox without the applet, or an
 * appliance) has none; qemu-ga fails there, we edit /etc/shadow ourselves: under the
 * /etc/.pwd.lock lock that lckpwdf() and shadow-utils take, one field of one line changes,
 * every other byte stays, and the new file replaces the old one atomically with its mode and
 * owner.
 */
#include "agent/agent.h"
#include "agent/shacrypt.h"
#include "agent/sysinfo.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ACCOUNT_FILE_MAX (64 * 1024 * 1024)
/* lckpwdf() gives up after 15 s; so do we */
#define LOCK_TRIES   150
#define LOCK_WAIT_US 100000

static const char salt_chars[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* lckpwdf(): a write lock on /etc/.pwd.lock, which shadow-utils and glibc honour. */
static int lock_accounts(const char *etc, int *fd, struct tt_error *err)
{
        _cleanup_free_ char *path = NULL;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

        if (asprintf(&path, "%s/.pwd.lock", etc) < 0) {
                path = NULL;
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        *fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (*fd < 0)
                return tt_error_errno(err, errno, "cannot open '/etc/.pwd.lock'");
        for (int i = 0; i < LOCK_TRIES; i++) {
                if (fcntl(*fd, F_SETLK, &fl) == 0)
                        return 0;
                if (errno != EACCES && errno != EAGAIN && errno != EINTR)
                        break;
                usleep(LOCK_WAIT_US);
        }
        return tt_error_errno(err, errno, "cannot lock '/etc/.pwd.lock'");
}

/*
 * Replace path with data: a temporary file in the same directory with path's mode and owner,
 * fsync, rename over path, fsync the directory.
 */
static int replace_file(const char *dir, const char *path, const char *shown, const char *data,
                        size_t len, const struct stat *st, struct tt_error *err)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        _cleanup_close_ int dfd = -1;

        if (asprintf(&tmp, "%s.tether-XXXXXX", path) < 0) {
                tmp = NULL;
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return tt_error_errno(err, errno, "cannot create a new '%s'", shown);
        if (fchown(fd, st->st_uid, st->st_gid) < 0 || fchmod(fd, st->st_mode & 07777) < 0 ||
            tt_write_all(fd, data, len) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
                int saved = errno;

                unlink(tmp);
                return tt_error_errno(err, saved, "cannot write a new '%s'", shown);
        }
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                fsync(dfd);
        return 0;
}

/*
 * The file with user's line replaced: the second field becomes hash and, in the shadow file,
 * the third (date of last change) becomes today. NULL with *found false when user has no line.
 */
static char *edit_account_line(const char *text, size_t len, const char *user, const char *hash,
                               bool shadow, bool *found, size_t *out_len)
{
        size_t ulen = strlen(user), pos = 0;
        char *out = NULL;

        *found = false;
        while (pos < len) {
                const char *line = text + pos;
                const char *nl = memchr(line, '\n', len - pos);
                size_t llen = nl ? (size_t)(nl - line) : len - pos;

                if (llen > ulen && memcmp(line, user, ulen) == 0 && line[ulen] == ':') {
                        const char *f2 = line + ulen + 1;
                        const char *end = line + llen;
                        const char *f3 = memchr(f2, ':', (size_t)(end - f2));
                        const char *rest = f3 ? f3 : end;
                        char days[32] = "";
                        int n;

                        if (shadow && f3) {
                                const char *f4 = memchr(f3 + 1, ':', (size_t)(end - f3 - 1));

                                snprintf(days, sizeof(days), ":%lld",
                                         (long long)(time(NULL) / 86400));
                                rest = f4 ? f4 : end;
                        }
                        n = asprintf(&out, "%.*s%s%s%.*s", (int)(f2 - text), text, hash, days,
                                     (int)(text + len - rest), rest);
                        if (n < 0)
                                return NULL;
                        *found = true;
                        *out_len = (size_t)n;
                        return out;
                }
                pos += llen + 1;
        }
        return NULL;
}

int agent_passwd_set_hash(const char *user, const char *hash, struct tt_error *err)
{
        _cleanup_free_ char *etc = agent_path("/etc");
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ char *out = NULL;
        _cleanup_close_ int lock = -1;
        const char *shown = "/etc/shadow";
        bool shadow = true, found;
        size_t len = 0, out_len = 0;
        struct stat st;

        if (etc == NULL || asprintf(&path, "%s/shadow", etc) < 0) {
                path = NULL;
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        if (strpbrk(hash, ":\n"))
                return tt_error_set(err, EINVAL, "forbidden characters in crypted password");
        if (lock_accounts(etc, &lock, err) < 0)
                return -1;
        /* without a shadow file the hash lives in /etc/passwd itself */
        if (stat(path, &st) < 0) {
                free(path);
                if (asprintf(&path, "%s/passwd", etc) < 0) {
                        path = NULL;
                        return tt_error_set(err, ENOMEM, "out of memory");
                }
                shown = "/etc/passwd";
                shadow = false;
                if (stat(path, &st) < 0)
                        return tt_error_errno(err, errno, "cannot read '%s'", shown);
        }
        if (tt_read_file(path, ACCOUNT_FILE_MAX, &text, &len, err) < 0)
                return tt_error_prefix(err, "cannot read '%s'", shown);
        out = edit_account_line(text, len, user, hash, shadow, &found, &out_len);
        if (!found)
                return tt_error_set(err, ENOENT, "user '%s' not found in %s", user, shown);
        if (out == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return replace_file(etc, path, shown, out, out_len, &st, err);
}

/* A SHA-512 ("$6$") hash with a salt from getrandom(). *hash is malloc'd. */
static int hash_password(const char *password, char **hash, struct tt_error *err)
{
        unsigned char rnd[SHACRYPT_SALT_MAX];
        char setting[3 + sizeof(rnd) + 1] = "$6$";
        char out[SHACRYPT_OUT_MAX];

        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                return tt_error_errno(err, errno, "cannot get random bytes for a salt");
        for (size_t i = 0; i < sizeof(rnd); i++)
                setting[3 + i] = salt_chars[rnd[i] % 64];
        setting[3 + sizeof(rnd)] = '\0';
        if (sha512_crypt(password, setting, out) < 0)
                return tt_error_set(err, EINVAL, "cannot hash the password");
        *hash = strdup(out);
        explicit_bzero(out, sizeof(out));
        return *hash ? 0 : tt_error_set(err, ENOMEM, "out of memory");
}

static int builtin_set_password(const char *user, const char *password, bool crypted,
                                struct tt_error *err)
{
        _cleanup_free_ char *hash = NULL;

        if (crypted)
                return agent_passwd_set_hash(user, password, err);
        if (hash_password(password, &hash, err) < 0)
                return -1;
        return agent_passwd_set_hash(user, hash, err);
}

AGENT_HANDLER(agent_cmd_set_user_password)
{
        const char *user = json_string_value(json_object_get(args, "username"));
        const char *b64 = json_string_value(json_object_get(args, "password"));
        bool crypted = json_is_true(json_object_get(args, "crypted"));
        _cleanup_free_ unsigned char *raw = NULL;
        _cleanup_free_ char *input = NULL;
        struct tt_error e = {0};
        size_t raw_len;
        int status, r;

        if (agent_base64_decode(b64, &raw, &raw_len, err) < 0)
                return -1;
        /* as qemu-ga: the password is a C string, cut at a NUL byte */
        if (strchr((char *)raw, '\n'))
                return tt_error_set(err, EINVAL, "forbidden characters in raw password");
        if (strchr(user, '\n') || strchr(user, ':'))
                return tt_error_set(err, EINVAL, "forbidden characters in username");
        if (asprintf(&input, "%s:%s\n", user, (char *)raw) < 0) {
                input = NULL;
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        {
                char *const argv_plain[] = {"chpasswd", NULL};
                char *const argv_crypted[] = {"chpasswd", "-e", NULL};

                r = agent_run_helper(crypted ? argv_crypted : argv_plain, input, &status, &e);
        }
        explicit_bzero(input, strlen(input));
        if (r < 0) {
                int code = e.code;

                tt_error_clear(&e);
                if (code == ENOENT) {
                        r = builtin_set_password(user, (char *)raw, crypted, err);
                        explicit_bzero(raw, raw_len);
                        return r;
                }
                return tt_error_errno(err, code, "failed to create child process");
        }
        explicit_bzero(raw, raw_len);
        if (!WIFEXITED(status))
                return tt_error_set(err, EIO, "child process has terminated abnormally");
        if (WEXITSTATUS(status) != 0)
                return tt_error_set(err, EIO, "child process has failed to set user password");
        return 0;
}
