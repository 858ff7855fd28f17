/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tether-agent: parse options, set up the process, then serve the channel until told to stop. */
#include "agent/agent.h"
#include "agent/channel.h"
#include "agent/config.h"
#include "agent/loop.h"
#include "common/cleanup.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

/* Write our pid into a locked pidfile; a second agent with the same pidfile refuses to run. */
static int write_pidfile(const char *path, struct tt_error *err)
{
        char buf[32];
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        int len;

        if (fd < 0)
                return tt_error_errno(err, errno, "cannot open pidfile '%s'", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                close(fd);
                return tt_error_set(err, EBUSY, "pidfile '%s' is locked: another agent runs",
                                    path);
        }
        len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
        if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)len) != len) {
                close(fd);
                return tt_error_errno(err, errno, "cannot write pidfile '%s'", path);
        }
        /* The fd stays open (and locked) for the life of the process. */
        return 0;
}

/*
 * Fork into the background. The parent waits on a pipe and exits with the status the daemon
 * sends through daemon_ready() once it serves its channel (what an init system's "forking"
 * service expects; qemu-ga's parent exits at once), or 1 if the daemon dies before that.
 * *ready_fd is the pipe's write end; errors until it is used still reach the caller's stderr.
 */
static int daemonize(const char *pidfile, bool *pidfile_written, int *ready_fd,
                     struct tt_error *err)
{
        int pipefd[2];
        char status = 1;
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return tt_error_errno(err, errno, "pipe");
        pid = fork();
        if (pid < 0)
                return tt_error_errno(err, errno, "fork");
        if (pid > 0) {
                close(pipefd[1]);
                if (read(pipefd[0], &status, 1) != 1)
                        status = 1;
                _exit(status);
        }
        close(pipefd[0]);
        setsid();
        pid = fork();
        if (pid < 0)
                return tt_error_errno(err, errno, "fork");
        if (pid > 0)
                _exit(0);
        *ready_fd = pipefd[1];
        umask(S_IRWXG | S_IRWXO);
        if (chdir("/") < 0)
                return tt_error_errno(err, errno, "chdir /");
        if (write_pidfile(pidfile, err) < 0)
                return -1;
        *pidfile_written = true;
        return 0;
}

/* The daemon serves its channel: detach from the terminal and let the parent exit 0. */
static void daemon_ready(int *ready_fd)
{
        char status = 0;
        int devnull = open("/dev/null", O_RDWR);

        if (devnull >= 0) {
                dup2(devnull, STDIN_FILENO);
                dup2(devnull, STDOUT_FILENO);
                dup2(devnull, STDERR_FILENO);
                if (devnull > STDERR_FILENO)
                        close(devnull);
        }
        (void)!write(*ready_fd, &status, 1);
        close(*ready_fd);
        *ready_fd = -1;
}

static void on_signal(struct agent_ctx *ctx, int fd, short revents, void *opaque)
{
        struct signalfd_siginfo si;

        while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                switch (si.ssi_signo) {
                case SIGCHLD:
                        agent_execs_on_sigchld(ctx);
                        break;
                case SIGIO:
                        agent_channel_on_sigio(ctx);
                        break;
                case SIGTERM:
                case SIGINT:
                case SIGHUP:
                        /* qemu-ga ignores these while frozen: exiting would leave fs frozen. */
                        if (ctx->frozen) {
                                tt_warn("ignoring signal %u while filesystems are frozen",
                                        si.ssi_signo);
                                break;
                        }
                        tt_info("received signal %u, exiting", si.ssi_signo);
                        ctx->quit = true;
                        break;
                }
        }
}

static int setup_signals(struct agent_ctx *ctx, struct tt_error *err)
{
        sigset_t mask;
        int fd;

        signal(SIGPIPE, SIG_IGN);
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGIO);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return tt_error_errno(err, errno, "sigprocmask");
        fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0)
                return tt_error_errno(err, errno, "signalfd");
        return agent_loop_add_fd(ctx, fd, POLLIN, on_signal, NULL);
}

/*
 * jansson seeds its hash function from /dev/urandom on first use. Early in a guest's boot the
 * kernel's CRNG is not ready, and since Linux 5.18 that read stalls for about a second of
 * jitter-entropy generation under TCG: our first reply would wait for it. The seed only guards
 * against hash flooding, so an early, non-blocking one is fine.
 */
static void seed_json_hash(void)
{
        uint32_t seed = 0;

        if (getrandom(&seed, sizeof(seed), GRND_INSECURE) != sizeof(seed) &&
            getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed)) {
                struct timespec ts;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                seed = (uint32_t)ts.tv_nsec ^ (uint32_t)getpid() << 16;
        }
        json_object_seed(seed ? seed : 1);
}

static int run(struct agent_ctx *ctx, bool *pidfile_written, struct tt_error *err)
{
        struct agent_config *cfg = ctx->cfg;
        int ready_fd = -1;
        int r;

        if (cfg->logfile && tt_log_open(cfg->logfile) < 0)
                return tt_error_errno(err, errno, "cannot open log file '%s'", cfg->logfile);
        tt_log_set_level(cfg->debug ? TT_LOG_DEBUG : cfg->verbose ? TT_LOG_DEBUG : TT_LOG_INFO);
        if (cfg->daemonize && daemonize(cfg->pidfile, pidfile_written, &ready_fd, err) < 0)
                return -1;
        ctx->loop = agent_loop_new();
        ctx->splitter = wire_splitter_new();
        ctx->out = wire_out_new(agent_channel_write, ctx);
        if (ctx->loop == NULL || ctx->splitter == NULL || ctx->out == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (agent_apply_rpc_lists(ctx, err) < 0 || setup_signals(ctx, err) < 0 ||
            agent_files_init(ctx, err) < 0 || agent_execs_init(ctx, err) < 0)
                return -1;
        /* An agent restarted while frozen starts frozen, and arms the automatic thaw. */
        agent_freeze_init(ctx);
        if (agent_channel_open(ctx, err) < 0)
                return -1;
        tt_info("tether-agent %s serving %s %s", TETHER_VERSION, cfg->method,
                cfg->path ? cfg->path : "(socket activation)");
        if (ready_fd >= 0)
                daemon_ready(&ready_fd);
        while (!ctx->quit) {
                r = agent_loop_run_once(ctx);
                if (r < 0)
                        return tt_error_errno(err, -r, "main loop");
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct agent_config cfg = {0};
        struct agent_ctx ctx = {.cfg = &cfg};
        struct tt_error err = {0};
        enum agent_action action;
        bool pidfile_written = false;
        int status = EXIT_SUCCESS;

        tt_log_set_ident("tether-agent");
        seed_json_hash();
        if (agent_config_parse(&cfg, argc, argv, &action, &err) < 0) {
                fprintf(stderr, "tether-agent: %s\n", err.msg);
                tt_error_clear(&err);
                agent_config_free(&cfg);
                return EXIT_FAILURE;
        }
        if (action == AGENT_EXIT_OK) {
                agent_config_free(&cfg);
                return EXIT_SUCCESS;
        }
        if (run(&ctx, &pidfile_written, &err) < 0) {
                tt_err("%s", err.msg);
                status = EXIT_FAILURE;
        } else {
                status = ctx.exit_code;
        }
        tt_error_clear(&err);
        agent_channel_close(&ctx);
        agent_execs_free(&ctx);
        agent_files_free(&ctx);
        wire_out_free(ctx.out);
        wire_splitter_free(ctx.splitter);
        agent_loop_free(ctx.loop);
        free(ctx.disabled);
        /* Only the agent that wrote (and locked) the pidfile removes it. */
        if (pidfile_written)
                unlink(cfg.pidfile);
        agent_config_free(&cfg);
        return status;
}
