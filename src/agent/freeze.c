/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-fsfreeze-freeze, -freeze-list, -thaw and guest-fstrim. The frozen state lives in
 * ctx->frozen and in statedir/qga.state.isfrozen, so a restarted agent knows; the dispatcher's
 * freeze gate reads ctx->frozen. Beyond qemu-ga: file systems left frozen for freeze-timeout
 * seconds (a host that died between freeze and thaw) are thawed by a timer, because a guest
 * with frozen file systems hangs every writer until someone thaws them.
 */
#include "agent/agent.h"
#include "agent/mounts.h"
#include "agent/sysinfo.h"
#include "common/cleanup.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

/* FITHAW undoes one FIFREEZE; a file system is never frozen more often than this. */
#define MAX_THAWS_PER_MOUNT 1024

/*
 * FIFREEZE, FITHAW and FITRIM go through this one function. The unit tests link their own
 * (strong) definition, so that no test ever freezes the file systems of the build machine.
 */
__attribute__((weak)) int agent_fs_ioctl(int fd, unsigned long request, void *arg)
{
        return ioctl(fd, request, arg);
}

/* ---- the local block-device file systems, as qemu-ga's build_fs_mount_list() ---- */

/* ---- hook and state ---- */

/* Run "HOOK freeze" or "HOOK thaw" when a hook is configured (-F); qemu-ga's texts. */
static int run_hook(struct agent_ctx *ctx, const char *arg, struct tt_error *err)
{
        const char *hook = ctx->cfg ? ctx->cfg->fsfreeze_hook : NULL;
        _cleanup_free_ char *real = NULL;
        struct tt_error e = {0};
        int status;

        if (hook == NULL)
                return 0;
        real = agent_path("%s", hook);
        if (real == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (access(real, X_OK) != 0)
                return tt_error_errno(err, errno, "can't access fsfreeze hook '%s'", hook);
        tt_info("executing fsfreeze hook with arg '%s'", arg);
        {
                char *const argv[] = {(char *)hook, (char *)arg, NULL};

                if (agent_run_helper(argv, NULL, &status, &e) < 0) {
                        int code = e.code;

                        tt_error_clear(&e);
                        if (code == ENOMEM || code == EAGAIN)
                                return tt_error_errno(err, code, "failed to create child process");
                        status = 1 << 8; /* qemu-ga's child exits 1 when execl() fails */
                }
        }
        if (!WIFEXITED(status))
                return tt_error_set(err, EIO, "fsfreeze hook has terminated abnormally");
        if (WEXITSTATUS(status) != 0)
                return tt_error_set(err, EIO, "fsfreeze hook has failed with status %d",
                                    WEXITSTATUS(status));
        return 0;
}

static char *isfrozen_path(struct agent_ctx *ctx)
{
        char *path = NULL;

        if (asprintf(&path, "%s/qga.state.isfrozen", ctx->cfg->statedir) < 0)
                return NULL;
        return path;
}

static int64_t thaw_all(struct agent_ctx *ctx, struct tt_error *err);

static void on_freeze_timeout(struct agent_ctx *ctx, void *opaque)
{
        struct tt_error e = {0};
        int64_t n;

        ctx->thaw_timer = 0;
        if (!ctx->frozen)
                return;
        tt_log_enable(true);
        tt_warn("no guest-fsfreeze-thaw within %u s of the freeze: thawing file systems",
                ctx->cfg->freeze_timeout);
        n = thaw_all(ctx, &e);
        if (n < 0) {
                tt_err("automatic thaw failed: %s", e.msg);
                tt_error_clear(&e);
                return;
        }
        tt_warn("automatic thaw: %lld file systems thawed", (long long)n);
}

static void arm_thaw_timer(struct agent_ctx *ctx)
{
        if (ctx->loop == NULL || ctx->thaw_timer || ctx->cfg->freeze_timeout == 0)
                return;
        ctx->thaw_timer = agent_loop_add_timer(ctx, (uint64_t)ctx->cfg->freeze_timeout * 1000,
                                               on_freeze_timeout, NULL);
}

/* Frozen from now on: qemu-ga's ga_set_frozen(), plus the auto-thaw timer. */
static void set_frozen(struct agent_ctx *ctx)
{
        _cleanup_free_ char *path = isfrozen_path(ctx);
        int fd;

        if (ctx->frozen)
                return;
        /* a log file on a frozen file system would block the agent on its next write */
        tt_warn("disabling logging due to filesystem freeze");
        tt_log_enable(false);
        ctx->frozen = true;
        fd = path ? open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) : -1;
        if (fd >= 0)
                close(fd);
        arm_thaw_timer(ctx);
}

static void unset_frozen(struct agent_ctx *ctx)
{
        _cleanup_free_ char *path = isfrozen_path(ctx);

        if (!ctx->frozen)
                return;
        tt_log_enable(true);
        tt_warn("logging re-enabled due to filesystem unfreeze");
        ctx->frozen = false;
        if (path && unlink(path) < 0 && errno != ENOENT)
                tt_warn("unable to delete %s, fsfreeze may not function properly", path);
        if (ctx->thaw_timer) {
                agent_loop_cancel_timer(ctx, ctx->thaw_timer);
                ctx->thaw_timer = 0;
        }
}

void agent_freeze_init(struct agent_ctx *ctx)
{
        _cleanup_free_ char *path = isfrozen_path(ctx);

        if (!ctx->frozen && path && access(path, F_OK) == 0) {
                ctx->frozen = true;
                tt_warn("filesystems were left frozen (%s exists); starting frozen", path);
        }
        if (!ctx->frozen)
                return;
        tt_log_enable(false);
        arm_thaw_timer(ctx);
}

/* ---- freeze and thaw ---- */

static bool listed(json_t *mountpoints, const char *dir)
{
        size_t i;
        json_t *v;

        json_array_foreach(mountpoints, i,
                           v) if (strcmp(json_string_value(v), dir) == 0) return true;
        return false;
}

/* FIFREEZE in reverse mount order (nested mounts before their parents); count successes. */
static int64_t freeze_mounts(const struct agent_mounts *m, json_t *mountpoints, struct tt_error *err)
{
        int64_t n = 0;

        for (size_t i = m->n; i-- > 0;) {
                const char *dir = m->v[i].dir;
                _cleanup_close_ int fd = -1;

                if (mountpoints && !listed(mountpoints, dir))
                        continue;
                fd = open(dir, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return tt_error_errno(err, errno, "failed to open %s", dir);
                /* EOPNOTSUPP: cannot be frozen; EBUSY: already frozen (another mount of it) */
                if (agent_fs_ioctl(fd, FIFREEZE, NULL) < 0) {
                        if (errno != EOPNOTSUPP && errno != EBUSY)
                                return tt_error_errno(err, errno, "failed to freeze %s", dir);
                } else {
                        n++;
                }
        }
        return n;
}

/* FITHAW every mount until it fails; count the mounts that thawed at least once. */
static int64_t thaw_mounts(struct tt_error *err)
{
        struct agent_mounts m = {0};
        int64_t n = 0;

        if (agent_mounts_read(&m, err) < 0) {
                agent_mounts_free(&m);
                return -1;
        }
        for (size_t i = 0; i < m.n; i++) {
                _cleanup_close_ int fd = open(m.v[i].dir, O_RDONLY | O_CLOEXEC);
                bool thawed = false;

                if (fd < 0)
                        continue;
                for (int k = 0; k < MAX_THAWS_PER_MOUNT; k++) {
                        if (agent_fs_ioctl(fd, FITHAW, NULL) < 0)
                                break;
                        thawed = true;
                }
                n += thawed;
        }
        agent_mounts_free(&m);
        return n;
}

static int64_t thaw_all(struct agent_ctx *ctx, struct tt_error *err)
{
        int64_t n = thaw_mounts(err);

        if (n < 0)
                return -1;
        unset_frozen(ctx);
        if (run_hook(ctx, "thaw", err) < 0)
                return -1;
        return n;
}

static int freeze_list(struct agent_ctx *ctx, json_t *mountpoints, json_t **ret,
                       struct tt_error *err)
{
        struct agent_mounts m = {0};
        int64_t n;

        tt_info("guest-fsfreeze called");
        if (run_hook(ctx, "freeze", err) < 0)
                return -1;
        if (agent_mounts_read(&m, err) < 0) {
                agent_mounts_free(&m);
                return -1;
        }
        /* frozen before the first FIFREEZE: nothing may write to a file system from now on */
        set_frozen(ctx);
        n = freeze_mounts(&m, mountpoints, err);
        agent_mounts_free(&m);
        if (n == 0) {
                unset_frozen(ctx);
        } else if (n < 0) {
                struct tt_error e = {0};

                thaw_all(ctx, &e);
                tt_error_clear(&e);
                return -1;
        }
        *ret = json_integer(n);
        return *ret ? 0 : tt_error_set(err, ENOMEM, "out of memory");
}

AGENT_HANDLER(agent_cmd_fsfreeze_freeze)
{
        return freeze_list(ctx, NULL, ret, err);
}

AGENT_HANDLER(agent_cmd_fsfreeze_freeze_list)
{
        return freeze_list(ctx, json_object_get(args, "mountpoints"), ret, err);
}

AGENT_HANDLER(agent_cmd_fsfreeze_thaw)
{
        int64_t n = thaw_all(ctx, err);

        if (n < 0)
                return -1;
        *ret = json_integer(n);
        return *ret ? 0 : tt_error_set(err, ENOMEM, "out of memory");
}

/* ---- guest-fstrim ---- */

static json_t *trim_one(const char *dir, uint64_t minimum)
{
        json_t *r = json_pack("{s:s}", "path", dir);
        struct fstrim_range range = {.start = 0, .len = UINT64_MAX, .minlen = minimum};
        _cleanup_close_ int fd = -1;
        char msg[256];

        if (r == NULL)
                return NULL;
        fd = open(dir, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                snprintf(msg, sizeof(msg), "failed to open: %s", strerror(errno));
                goto fail;
        }
        /* file systems without discard say EOPNOTSUPP, devices like CD-ROMs ENOTTY */
        if (agent_fs_ioctl(fd, FITRIM, &range) < 0) {
                if (errno == ENOTTY || errno == EOPNOTSUPP)
                        snprintf(msg, sizeof(msg), "trim not supported");
                else
                        snprintf(msg, sizeof(msg), "failed to trim: %s", strerror(errno));
                goto fail;
        }
        /* GuestFilesystemTrimResult member order: path, trimmed, minimum, error */
        if (agent_json_set(r, "trimmed", json_integer((json_int_t)range.len)) < 0 ||
            agent_json_set(r, "minimum", json_integer((json_int_t)range.minlen)) < 0) {
                json_decref(r);
                return NULL;
        }
        return r;
fail:
        if (agent_json_set(r, "error", json_string(msg)) < 0) {
                json_decref(r);
                return NULL;
        }
        return r;
}

AGENT_HANDLER(agent_cmd_fstrim)
{
        json_t *jmin = json_object_get(args, "minimum");
        uint64_t minimum = jmin ? (uint64_t)json_integer_value(jmin) : 0;
        _cleanup_json_ json_t *paths = json_array();
        struct agent_mounts m = {0};

        if (paths == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        tt_info("guest-fstrim called");
        if (agent_mounts_read(&m, err) < 0) {
                agent_mounts_free(&m);
                return -1;
        }
        for (size_t i = 0; i < m.n; i++) {
                /* qemu-ga prepends: the reply lists the mounts last first */
                if (json_array_insert_new(paths, 0, trim_one(m.v[i].dir, minimum)) < 0) {
                        agent_mounts_free(&m);
                        return tt_error_set(err, ENOMEM, "out of memory");
                }
        }
        agent_mounts_free(&m);
        *ret = json_pack("{s:O}", "paths", paths);
        return *ret ? 0 : tt_error_set(err, ENOMEM, "out of memory");
}
