/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-shutdown and guest-suspend-*, and the helper-program runner that every command which
 * changes the guest shares (shutdown, hwclock, chpasswd, the fsfreeze hook).
 */
#include "agent/agent.h"
#include "agent/sysinfo.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* An agent started by a minimal init may have no PATH at all. */
#define DEFAULT_PATH    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define SYS_POWER_STATE "/sys/power/state"

static bool is_executable(const char *file)
{
        struct stat st;

        return stat(file, &st) == 0 && S_ISREG(st.st_mode) && access(file, X_OK) == 0;
}

/*
 * The file to run for name: the name itself when it holds a '/', else the first executable
 * along $PATH; always under the sysroot. Empty $PATH elements (the current directory) are
 * skipped on purpose. NULL with errno set when there is none.
 */
static char *find_program(const char *name)
{
        const char *path = getenv("PATH");
        const char *p, *end;

        if (strchr(name, '/'))
                return agent_path("%s", name);
        if (path == NULL || *path == '\0')
                path = DEFAULT_PATH;
        for (p = path;; p = end + 1) {
                end = strchrnul(p, ':');
                if (end > p) {
                        char *file = agent_path("%.*s/%s", (int)(end - p), p, name);

                        if (file == NULL)
                                return NULL;
                        if (is_executable(file))
                                return file;
                        free(file);
                }
                if (*end == '\0')
                        break;
        }
        errno = ENOENT;
        return NULL;
}

int agent_run_helper(char *const argv[], const char *input, int *wstatus, struct tt_error *err)
{
        _cleanup_free_ char *file = find_program(argv[0]);
        _cleanup_close_ int in_r = -1;
        _cleanup_close_ int in_w = -1;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        int r, wr = 0;
        pid_t pid;

        if (file == NULL)
                return tt_error_set(err, errno, "the helper program '%s' was not found", argv[0]);
        if (input) {
                int p[2];

                if (pipe2(p, O_CLOEXEC) < 0)
                        return tt_error_errno(err, errno, "cannot create pipe FDs");
                in_r = p[0];
                in_w = p[1];
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        if (input)
                r = posix_spawn_file_actions_adddup2(&fa, in_r, STDIN_FILENO);
        else
                r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
        /* the agent blocks SIGCHLD/SIGTERM for its signalfd and ignores SIGPIPE: undo both */
        sigemptyset(&none);
        sigfillset(&all);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &all);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                        POSIX_SPAWN_SETSID);
        if (r == 0)
                r = posix_spawn(&pid, file, &fa, &attr, argv, environ);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return tt_error_set(err, r, "failed to create child process: %s", strerror(r));
        if (input) {
                close(steal_fd(&in_r));
                wr = tt_write_all(in_w, input, strlen(input));
                close(steal_fd(&in_w));
        }
        /* synchronous, as qemu-ga: exec.c only ever waits for its own children's pids */
        while (waitpid(pid, wstatus, 0) < 0)
                if (errno != EINTR)
                        return tt_error_errno(err, errno, "failed to wait for child (pid: %d)",
                                              (int)pid);
        if (wr < 0)
                return tt_error_errno(err, -wr, "cannot write to the helper program '%s'", argv[0]);
        return 0;
}

/* ---- guest-shutdown ---- */

static const struct shutdown_mode {
        const char *mode;   /* the QGA mode argument */
        const char *direct; /* run when it exists (busybox, sysvinit, systemd all have it) */
        const char *flag;   /* else: shutdown -h FLAG +0 "hypervisor initiated shutdown" */
} shutdown_modes[] = {
    {"powerdown", "/sbin/poweroff", "-P"},
    {"halt", "/sbin/halt", "-H"},
    {"reboot", "/sbin/reboot", "-r"},
};

AGENT_HANDLER(agent_cmd_shutdown)
{
        const char *mode = json_string_value(json_object_get(args, "mode"));
        const struct shutdown_mode *m = NULL;
        _cleanup_free_ char *direct = NULL;
        struct tt_error e = {0};
        int status;

        for (size_t i = 0; i < TT_ARRAY_SIZE(shutdown_modes); i++)
                if (strcmp(mode ? mode : "powerdown", shutdown_modes[i].mode) == 0)
                        m = &shutdown_modes[i];
        if (m == NULL)
                return tt_error_set(err, EINVAL,
                                    "mode is invalid (valid values are: halt|powerdown|reboot");
        tt_info("guest-shutdown called, mode: %s", m->mode);
        direct = agent_path("%s", m->direct);
        if (direct == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (is_executable(direct)) {
                char *const argv[] = {(char *)m->direct, NULL};

                if (agent_run_helper(argv, NULL, &status, &e) < 0)
                        goto spawn_failed;
        } else {
                char *const argv[] = {"/sbin/shutdown",
                                      "-h",
                                      (char *)m->flag,
                                      "+0",
                                      "hypervisor initiated shutdown",
                                      NULL};

                if (agent_run_helper(argv, NULL, &status, &e) < 0)
                        goto spawn_failed;
        }
        if (!WIFEXITED(status))
                return tt_error_set(err, EIO, "child process has terminated abnormally");
        if (WEXITSTATUS(status) != 0)
                return tt_error_set(err, EIO, "child process has failed to shutdown");
        return 0;

spawn_failed:
        status = e.code;
        tt_error_clear(&e);
        /* qemu-ga's child exits 1 when execl() fails: same text as a failing shutdown */
        if (status == ENOMEM || status == EAGAIN)
                return tt_error_errno(err, status, "failed to create child process");
        return tt_error_set(err, EIO, "child process has failed to shutdown");
}

/* ---- guest-suspend-* ---- */

static const struct suspend_method {
        const char *unit;       /* systemctl status UNIT: exit 1..3 means the unit exists */
        const char *verb;       /* systemctl VERB */
        const char *pm_arg;     /* pm-is-supported ARG: exit 0 means supported */
        const char *pm_program; /* pm-utils program that suspends */
        const char *sysfs_word; /* written to /sys/power/state; NULL = no sysfs way */
} suspend_methods[] = {
    {"systemd-hibernate", "hibernate", "--hibernate", "pm-hibernate", "disk"},
    {"systemd-suspend", "suspend", "--suspend", "pm-suspend", "mem"},
    {"systemd-hybrid-sleep", "hybrid-sleep", "--suspend-hybrid", "pm-suspend-hybrid", NULL},
};

/*
 * g_spawn_sync() as qemu-ga uses it: the exit status; -1 without an error when the program
 * does not exist; -1 with err when it could not be started.
 */
static int run_status(char *const argv[], struct tt_error *err)
{
        struct tt_error e = {0};
        int status;

        if (agent_run_helper(argv, NULL, &status, &e) < 0) {
                int code = e.code;

                tt_error_clear(&e);
                if (code == ENOENT)
                        return -1;
                tt_error_set(err, code,
                             "failed to create child process, error 'Failed to execute child "
                             "process \u201c%s\u201d (%s)'",
                             argv[0], strerror(code));
                return -1;
        }
        return WEXITSTATUS(status);
}

/* Run a program that suspends; 0 when it exited 0. */
static int run_suspender(char *const argv[], const char *shown, struct tt_error *err)
{
        struct tt_error e = {0};
        int status = run_status(argv, &e);

        if (status == 0)
                return 0;
        if (status == -1 && e.msg == NULL)
                return tt_error_set(err, ENOENT, "the helper program '%s' was not found", shown);
        if (e.msg) {
                int r = tt_error_set(err, e.code, "%s", e.msg);

                tt_error_clear(&e);
                return r;
        }
        return tt_error_set(err, EIO,
                            "the helper program '%s' returned an unexpected exit status code (%d)",
                            shown, status);
}

static bool sysfs_supports(const char *word)
{
        _cleanup_free_ char *path = agent_path(SYS_POWER_STATE);
        _cleanup_close_ int fd = -1;
        char buf[64];
        ssize_t n;

        if (word == NULL || path == NULL)
                return false;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        return strstr(buf, word) != NULL;
}

static int sysfs_suspend(const char *word, struct tt_error *err)
{
        _cleanup_free_ char *path = agent_path(SYS_POWER_STATE);
        _cleanup_close_ int fd = -1;

        if (path == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        /* the write returns once the guest has resumed */
        if (fd < 0 || tt_write_all(fd, word, strlen(word)) < 0)
                return tt_error_set(err, errno, "suspend: cannot write to '%s': %s",
                                    SYS_POWER_STATE, strerror(errno));
        return 0;
}

/*
 * systemd, then pm-utils, then /sys/power/state, as qemu-ga (with upstream's fix: a method
 * that is not available no longer counts as success).
 */
static int guest_suspend(const struct suspend_method *m, struct tt_error *err)
{
        struct tt_error last = {0};
        bool supported = false;
        int status;

        {
                char *const status_argv[] = {"systemctl", "status", (char *)m->unit, NULL};
                char *const argv[] = {"systemctl", (char *)m->verb, NULL};
                _cleanup_free_ char *shown = NULL;

                status = run_status(status_argv, &last);
                tt_error_clear(&last);
                if (status > 0 && status < 4) {
                        supported = true;
                        if (asprintf(&shown, "systemctl %s", m->verb) < 0) {
                                shown = NULL;
                                return tt_error_set(err, ENOMEM, "out of memory");
                        }
                        if (run_suspender(argv, shown, &last) == 0)
                                return 0;
                }
        }
        {
                char *const check_argv[] = {"pm-is-supported", (char *)m->pm_arg, NULL};
                char *const argv[] = {(char *)m->pm_program, NULL};
                struct tt_error e = {0};

                status = run_status(check_argv, &e);
                tt_error_clear(&e);
                if (status == 0) {
                        supported = true;
                        tt_error_clear(&last);
                        if (run_suspender(argv, m->pm_program, &last) == 0)
                                return 0;
                }
        }
        if (sysfs_supports(m->sysfs_word)) {
                supported = true;
                tt_error_clear(&last);
                if (sysfs_suspend(m->sysfs_word, &last) == 0)
                        return 0;
        }
        if (!supported) {
                tt_error_clear(&last);
                return tt_error_set(err, ENOTSUP,
                                    "the requested suspend mode is not supported by the guest");
        }
        status = tt_error_set(err, last.code, "%s", last.msg ? last.msg : "suspend failed");
        tt_error_clear(&last);
        return status;
}

AGENT_HANDLER(agent_cmd_suspend_disk)
{
        return guest_suspend(&suspend_methods[0], err);
}

AGENT_HANDLER(agent_cmd_suspend_ram)
{
        return guest_suspend(&suspend_methods[1], err);
}

AGENT_HANDLER(agent_cmd_suspend_hybrid)
{
        return guest_suspend(&suspend_methods[2], err);
}
