/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-exec and guest-exec-status. A child is started with a vfork-style clone (no copy of the
 * agent's memory, and only the system calls the child needs: see spawn_one), its
 * input is fed and its output captured through non-blocking pipes in the agent's poll loop.
 * Behaviour and texts follow qemu-ga 7.2 (reference/qga-commands.md rows 31-32), plus the
 * capture-output modes of qemu 8.0 and three bounds: max-exec entries, uncollected results
 * dropped after exec-reap-seconds, and EXEC_MAX_TOTAL_OUTPUT captured bytes across them all.
 */
#include "agent/agent.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define EXEC_MAX_OUTPUT   (16 * 1024 * 1024) /* captured bytes per stream, as qemu-ga */
/*
 * Captured bytes kept across every child and uncollected result: without it max-exec entries
 * times two streams times EXEC_MAX_OUTPUT (2 GiB by default) could pile up in the agent.
 */
#define EXEC_MAX_TOTAL_OUTPUT (4 * EXEC_MAX_OUTPUT)
#define EXEC_READ_SIZE    (64 * 1024)        /* one read from an output pipe */
#define EXEC_READS_PER_WAKEUP 16             /* then let other fds have the loop */
#define EXEC_DEFAULT_PATH "/bin:/usr/bin"    /* when neither env nor the agent has PATH */

enum capture_mode { CAPTURE_NONE, CAPTURE_STDOUT, CAPTURE_STDERR, CAPTURE_SEPARATED, CAPTURE_MERGED };

static const struct {
        const char *name;
        enum capture_mode mode;
} capture_modes[] = {
        {"none", CAPTURE_NONE},           {"stdout", CAPTURE_STDOUT},
        {"stderr", CAPTURE_STDERR},       {"separated", CAPTURE_SEPARATED},
        {"merged", CAPTURE_MERGED},
};

struct agent_exec;

struct exec_stream {
        struct agent_exec *owner; /* the exec this output belongs to */
        int fd;                   /* our end of the pipe; -1 when closed or not captured */
        unsigned char *data;      /* captured bytes */
        size_t len;               /* bytes captured */
        size_t size;              /* bytes allocated for data */
        bool truncated;           /* bytes beyond a cap were read and dropped */
};

struct agent_exec {
        struct agent_ctx *ctx;    /* for callbacks that only get the entry */
        pid_t pid;                /* the child, and the key guest-exec-status asks by */
        bool reaped;              /* waitpid() collected it; status is valid */
        int status;               /* wait status */
        int in_fd;                /* write end of the child's stdin pipe, -1 when done */
        unsigned char *in_data;   /* input-data, decoded */
        size_t in_len;            /* bytes of in_data */
        size_t in_off;            /* bytes already written */
        struct exec_stream out;   /* stdout (and stderr when merged) */
        struct exec_stream err;   /* stderr */
        uint64_t reap_timer;      /* drops an uncollected result; 0 when not armed */
        struct agent_exec *next;  /* list link */
};

struct agent_execs {
        struct agent_exec *head;  /* running children and uncollected results */
        unsigned count;           /* entries in head */
        size_t kept;              /* bytes allocated for captured output, all entries */
};

/* Give back what a stream holds to the total (when its entry goes, or its slack at EOF). */
static void stream_release(struct agent_execs *execs, struct exec_stream *s)
{
        execs->kept -= s->size;
        free(s->data);
        s->data = NULL;
        s->size = 0;
}

static void stream_close(struct agent_ctx *ctx, struct exec_stream *s)
{
        if (s->fd >= 0) {
                agent_loop_del_fd(ctx, s->fd);
                close(s->fd);
                s->fd = -1;
        }
}

static void input_close(struct agent_exec *e)
{
        if (e->in_fd >= 0) {
                agent_loop_del_fd(e->ctx, e->in_fd);
                close(e->in_fd);
                e->in_fd = -1;
        }
        free(e->in_data);
        e->in_data = NULL;
}

static void exec_unlink_free(struct agent_ctx *ctx, struct agent_exec *e)
{
        struct agent_exec **pp;

        for (pp = &ctx->execs->head; *pp; pp = &(*pp)->next) {
                if (*pp == e) {
                        *pp = e->next;
                        ctx->execs->count--;
                        break;
                }
        }
        if (e->reap_timer)
                agent_loop_cancel_timer(ctx, e->reap_timer);
        input_close(e);
        stream_close(ctx, &e->out);
        stream_close(ctx, &e->err);
        stream_release(ctx->execs, &e->out);
        stream_release(ctx->execs, &e->err);
        free(e);
}

/* Done as qemu-ga sees it: the child is reaped and every captured stream reached EOF. */
static bool exec_finished(const struct agent_exec *e)
{
        return e->reaped && e->out.fd < 0 && e->err.fd < 0;
}

static void on_reap_timer(struct agent_ctx *ctx, void *opaque)
{
        struct agent_exec *e = opaque;

        e->reap_timer = 0;
        tt_info("guest-exec: dropping the result of pid %d, not collected within %u s", (int)e->pid,
                ctx->cfg->exec_reap_seconds);
        exec_unlink_free(ctx, e);
}

/* Called whenever an entry may have just finished: start the clock on its collection. */
static void exec_check_finished(struct agent_exec *e)
{
        unsigned secs = e->ctx->cfg->exec_reap_seconds;

        if (secs && !e->reap_timer && exec_finished(e))
                e->reap_timer = agent_loop_add_timer(e->ctx, (uint64_t)secs * 1000, on_reap_timer, e);
}

static void exec_try_reap(struct agent_exec *e)
{
        int status;
        pid_t r;

        if (e->reaped)
                return;
        do {
                r = waitpid(e->pid, &status, WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r == e->pid) {
                e->reaped = true;
                e->status = status;
        } else if (r < 0 && errno == ECHILD) {
                /* Not ours to wait for any more (should not happen): treat as exited 0. */
                tt_warn("guest-exec: pid %d vanished before it was reaped", (int)e->pid);
                e->reaped = true;
                e->status = 0;
        }
}

void agent_execs_on_sigchld(struct agent_ctx *ctx)
{
        struct agent_exec *e, *next;

        if (ctx->execs == NULL)
                return;
        for (e = ctx->execs->head; e; e = next) {
                next = e->next;
                exec_try_reap(e);
                exec_check_finished(e);
        }
}

static void on_input(struct agent_ctx *ctx, int fd, short revents, void *opaque)
{
        struct agent_exec *e = opaque;

        while (e->in_off < e->in_len) {
                ssize_t n = write(fd, e->in_data + e->in_off, e->in_len - e->in_off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return;
                        /* EPIPE: the child closed its stdin; the rest has nowhere to go. */
                        break;
                }
                e->in_off += (size_t)n;
        }
        input_close(e);
}

static void on_output(struct agent_ctx *ctx, int fd, short revents, void *opaque)
{
        struct exec_stream *s = opaque;
        struct agent_execs *execs = ctx->execs;
        unsigned char drain[EXEC_READ_SIZE];

        for (int i = 0; i < EXEC_READS_PER_WAKEUP; i++) {
                /* This stream may grow to its own cap, and only into what the total leaves. */
                size_t room = EXEC_MAX_TOTAL_OUTPUT - execs->kept + s->size;
                size_t cap = room < EXEC_MAX_OUTPUT ? room : EXEC_MAX_OUTPUT;
                unsigned char *dst;
                size_t want;
                ssize_t n;

                /* Grow geometrically up to the cap; a failed realloc just means draining. */
                if (s->size - s->len < EXEC_READ_SIZE && s->size < cap) {
                        size_t size = s->size ? s->size * 2 : EXEC_READ_SIZE;
                        unsigned char *p;

                        if (size > cap)
                                size = cap;
                        p = realloc(s->data, size);
                        if (p) {
                                execs->kept += size - s->size;
                                s->data = p;
                                s->size = size;
                        }
                }
                /* Once bytes were dropped, keep no later ones: the data stays a prefix. */
                if (s->len < s->size && !s->truncated) {
                        dst = s->data + s->len;
                        want = s->size - s->len;
                        if (want > EXEC_READ_SIZE)
                                want = EXEC_READ_SIZE;
                } else {
                        /* At the cap (or out of memory): keep draining so the child can finish. */
                        dst = drain;
                        want = sizeof(drain);
                }
                n = read(fd, dst, want);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return;
                        goto eof; /* a read error ends the stream like EOF does */
                }
                if (n == 0)
                        goto eof;
                if (dst == drain)
                        s->truncated = true;
                else
                        s->len += (size_t)n;
        }
        return; /* read budget used up with the pipe still open: more on the next wakeup */
eof:
        stream_close(ctx, s);
        /* Hand the unused part of the buffer back to the total. */
        if (s->len == 0) {
                stream_release(execs, s);
        } else if (s->len < s->size) {
                unsigned char *p = realloc(s->data, s->len);

                if (p) {
                        execs->kept -= s->size - s->len;
                        s->data = p;
                        s->size = s->len;
                }
        }
        exec_check_finished(s->owner);
}

/* Make sure a pipe end is not 0, 1 or 2, which the child's dup2()s would clobber. */
static int fd_above_stdio(int fd)
{
        int nfd;

        if (fd > STDERR_FILENO)
                return fd;
        nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        close(fd);
        return nfd;
}

static int make_pipe(int p[2])
{
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        p[0] = fd_above_stdio(p[0]);
        p[1] = fd_above_stdio(p[1]);
        if (p[0] < 0 || p[1] < 0) {
                if (p[0] >= 0)
                        close(p[0]);
                if (p[1] >= 0)
                        close(p[1]);
                return -1;
        }
        return 0;
}

/* What the vfork child of spawn_one needs, and where it leaves its exec error. */
struct spawn_req {
        const char *file;     /* to execute */
        char *const *argv;    /* its arguments */
        char *const *envp;    /* its environment */
        int fd[3];            /* its stdin, stdout, stderr */
        volatile int error;   /* errno of a failed exec (the child shares our memory) */
};

/* The child's stack: the agent is single-threaded and sleeps while a vfork child runs. */
static char spawn_stack[16 * 1024] __attribute__((aligned(16)));

/*
 * The vfork child: only system calls, on spawn_stack, sharing the agent's memory. SIGPIPE is
 * the one signal the agent ignores (main.c) and an ignored signal stays ignored across exec, so
 * it goes back to the default; handled signals reset themselves at exec. Not instrumented:
 * ASan's stack bookkeeping would outlive this frame, which never returns.
 */
__attribute__((no_sanitize("address", "undefined")))
static int spawn_child(void *opaque)
{
        struct spawn_req *rq = opaque;
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigset_t none;

        sigaction(SIGPIPE, &dfl, NULL);
        for (int i = 0; i < 3; i++) {
                /* dup2 onto itself keeps close-on-exec: clear it instead. */
                if (rq->fd[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(rq->fd[i], i) < 0) {
                        rq->error = errno;
                        _exit(127);
                }
        }
        close_range(STDERR_FILENO + 1, ~0U, 0);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /*
         * The system call, not execve(): under --coverage, GCC turns execve() into libgcov's
         * __gcov_execve, which writes every counter file (stdio, malloc) in this child, on the
         * agent's memory, and marks the agent's counters as written, so that the agent's own
         * counters were lost from its first guest-exec on.
         */
        syscall(SYS_execve, rq->file, rq->argv, rq->envp);
        rq->error = errno;
        _exit(127);
}

/* /dev/null for a child's unused stdio: opened once, kept (close-on-exec in the agent). */
static int devnull_fd(void)
{
        static int fd = -1;

        if (fd < 0)
                fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        return fd;
}

/*
 * Spawn file with child_fd[i] (or /dev/null when -1) as its fd i, every other fd closed, no
 * blocked signals and every signal at its default (the agent ignores SIGPIPE and blocks SIGCHLD
 * and friends for its signalfd). Returns 0 or an errno value, with no child left on failure.
 *
 * clone(CLONE_VM | CLONE_VFORK) as glibc's posix_spawn does, but the child makes only the calls
 * this needs: posix_spawn's resets every one of the 64 signals (a system call each), opens
 * /dev/null per stream and checks each descriptor against RLIMIT_NOFILE in the parent, which
 * was most of the agent's share of a guest-exec.
 */
static int spawn_one(const char *file, char *const argv[], char *const envp[],
                     const int child_fd[3], pid_t *pid)
{
        struct spawn_req rq = {.file = file, .argv = argv, .envp = envp, .error = 0};
        sigset_t all, old;
        int null = -1;
        pid_t child;

        for (int i = 0; i < 3; i++) {
                if (child_fd[i] < 0 && null < 0 && (null = devnull_fd()) < 0)
                        return errno;
                rq.fd[i] = child_fd[i] >= 0 ? child_fd[i] : null;
        }
        /* No signal handler may run in the child, on memory it shares with us. */
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, &old);
        child = clone(spawn_child, spawn_stack + sizeof(spawn_stack),
                      CLONE_VM | CLONE_VFORK | SIGCHLD, &rq);
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (child < 0)
                return errno;
        /* CLONE_VFORK: the child has exec'd, or failed and exited, by now. */
        if (rq.error) {
                while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
                        ;
                return rq.error;
        }
        *pid = child;
        return 0;
}

/* Spawn file; on ENOEXEC run it with /bin/sh as g_spawn does ("script without #!"). */
static int spawn_or_script(const char *file, char *const argv[], size_t argc, char *const envp[],
                           const int child_fd[3], pid_t *pid)
{
        _cleanup_free_ char **sh_argv = NULL;
        int r = spawn_one(file, argv, envp, child_fd, pid);

        if (r != ENOEXEC)
                return r;
        sh_argv = calloc(argc + 2, sizeof(char *));
        if (sh_argv == NULL)
                return ENOMEM;
        sh_argv[0] = (char *)"/bin/sh";
        sh_argv[1] = (char *)file;
        for (size_t i = 1; i < argc; i++)
                sh_argv[i + 1] = argv[i];
        return spawn_one("/bin/sh", sh_argv, envp, child_fd, pid);
}

/*
 * g_spawn's G_SPAWN_SEARCH_PATH | G_SPAWN_SEARCH_PATH_FROM_ENVP, which qemu-ga uses: a name
 * without '/' is looked up in the PATH of the child's environment, else of the agent's. As
 * execvp: a candidate that exists but cannot be executed is remembered (EACCES) and the search
 * goes on; the search fails with EACCES if any was seen, else ENOENT.
 */
static int spawn_search(const char *path, char *const argv[], size_t argc, char *const envp[],
                        const int child_fd[3], pid_t *pid)
{
        const char *search = NULL, *p;
        bool eacces = false;

        if (path[0] == '\0')
                return ENOENT;
        if (strchr(path, '/'))
                return spawn_or_script(path, argv, argc, envp, child_fd, pid);
        for (char *const *e = envp; envp != environ && e && *e; e++)
                if (strncmp(*e, "PATH=", 5) == 0)
                        search = *e + 5;
        if (search == NULL)
                search = getenv("PATH");
        if (search == NULL)
                search = EXEC_DEFAULT_PATH;
        for (p = search;; p++) {
                const char *end = strchrnul(p, ':');
                size_t dlen = (size_t)(end - p);
                char cand[4096];
                struct stat st;
                int n, r;

                n = snprintf(cand, sizeof(cand), "%.*s%s%s", (int)dlen, p, dlen ? "/" : "", path);
                if (n > 0 && (size_t)n < sizeof(cand) && stat(cand, &st) == 0) {
                        if (!S_ISREG(st.st_mode) || access(cand, X_OK) < 0) {
                                eacces = true;
                        } else {
                                r = spawn_or_script(cand, argv, argc, envp, child_fd, pid);
                                if (r == EACCES)
                                        eacces = true;
                                else if (r != ENOENT && r != ENOTDIR)
                                        return r;
                        }
                } else if (n > 0 && (size_t)n < sizeof(cand) && errno == EACCES) {
                        eacces = true;
                }
                if (*end == '\0')
                        break;
                p = end;
        }
        return eacces ? EACCES : ENOENT;
}

static int exec_fail(struct tt_error *err, const char *path, int code)
{
        /* g_spawn's text inside qemu-ga's wrapper; the quotes are U+201C and U+201D. */
        return tt_error_set(err, code,
                            "Guest agent command failed, error was 'Failed to execute child "
                            "process \u201C%s\u201D (%s)'",
                            path, strerror(code));
}

static int parse_capture(json_t *v, enum capture_mode *mode)
{
        if (v == NULL) {
                *mode = CAPTURE_NONE;
                return 0;
        }
        if (json_is_boolean(v)) {
                *mode = json_is_true(v) ? CAPTURE_SEPARATED : CAPTURE_NONE;
                return 0;
        }
        for (size_t i = 0; i < TT_ARRAY_SIZE(capture_modes); i++) {
                if (strcmp(json_string_value(v), capture_modes[i].name) == 0) {
                        *mode = capture_modes[i].mode;
                        return 0;
                }
        }
        return -1; /* unreachable: the argument spec allows only these names */
}

/* A NULL-terminated array of the strings in a JSON list, after first (may be NULL). */
static char **string_array(const char *first, json_t *list, size_t *count)
{
        size_t n = json_array_size(list), k = 0;
        char **v = calloc(n + 2, sizeof(char *));

        if (v == NULL)
                return NULL;
        if (first)
                v[k++] = (char *)first;
        for (size_t i = 0; i < n; i++)
                v[k++] = (char *)json_string_value(json_array_get(list, i));
        if (count)
                *count = k;
        return v;
}

AGENT_HANDLER(agent_cmd_exec)
{
        struct agent_execs *execs = ctx->execs;
        const char *path = json_string_value(json_object_get(args, "path"));
        json_t *jenv = json_object_get(args, "env");
        json_t *jinput = json_object_get(args, "input-data");
        _cleanup_free_ char **argv = NULL;
        _cleanup_free_ char **envp = NULL;
        _cleanup_free_ unsigned char *input = NULL;
        size_t input_len = 0, argc = 0;
        int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
        int child_fd[3] = {-1, -1, -1};
        unsigned limit = ctx->cfg->max_exec;
        enum capture_mode mode = CAPTURE_NONE;
        struct agent_exec *e;
        pid_t pid;
        int r;

        if (limit && execs->count >= limit)
                return tt_error_set(err, EAGAIN,
                                    "too many guest-exec processes: limit is %u (max-exec)", limit);
        if (jinput && agent_base64_decode(json_string_value(jinput), &input, &input_len, err) < 0)
                return -1;
        parse_capture(json_object_get(args, "capture-output"), &mode);
        argv = string_array(path, json_object_get(args, "arg"), &argc);
        envp = jenv ? string_array(NULL, jenv, NULL) : NULL;
        if (argv == NULL || (jenv && envp == NULL))
                return tt_error_set(err, ENOMEM, "out of memory");

        r = 0;
        if (jinput && make_pipe(in_pipe) < 0)
                r = errno;
        if (!r && (mode == CAPTURE_STDOUT || mode == CAPTURE_SEPARATED || mode == CAPTURE_MERGED) &&
            make_pipe(out_pipe) < 0)
                r = errno;
        if (!r && (mode == CAPTURE_STDERR || mode == CAPTURE_SEPARATED) && make_pipe(err_pipe) < 0)
                r = errno;
        if (r) {
                for (int i = 0; i < 2; i++) {
                        if (in_pipe[i] >= 0)
                                close(in_pipe[i]);
                        if (out_pipe[i] >= 0)
                                close(out_pipe[i]);
                        if (err_pipe[i] >= 0)
                                close(err_pipe[i]);
                }
                return tt_error_set(err, r,
                                    "Guest agent command failed, error was 'Failed to create pipe "
                                    "for communicating with child process (%s)'",
                                    strerror(r));
        }
        child_fd[0] = in_pipe[0];
        child_fd[1] = out_pipe[1];
        child_fd[2] = mode == CAPTURE_MERGED ? out_pipe[1] : err_pipe[1];

        r = spawn_search(path, argv, argc, envp ? envp : environ, child_fd, &pid);
        /* The child's ends are the child's now (or nobody's). */
        for (int i = 0; i < 3; i++)
                if (i == 0 || child_fd[i] != child_fd[i - 1])
                        if (child_fd[i] >= 0)
                                close(child_fd[i]);
        e = r ? NULL : calloc(1, sizeof(*e));
        if (e == NULL) {
                if (in_pipe[1] >= 0)
                        close(in_pipe[1]);
                if (out_pipe[0] >= 0)
                        close(out_pipe[0]);
                if (err_pipe[0] >= 0)
                        close(err_pipe[0]);
                if (r)
                        return exec_fail(err, path, r);
                /* Spawned but nowhere to track it: it runs on unobserved (and is reaped later). */
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        e->ctx = ctx;
        e->pid = pid;
        e->in_fd = in_pipe[1];
        e->out = (struct exec_stream){.owner = e, .fd = out_pipe[0]};
        e->err = (struct exec_stream){.owner = e, .fd = err_pipe[0]};
        e->next = execs->head;
        execs->head = e;
        execs->count++;

        if (e->in_fd >= 0) {
                fcntl(e->in_fd, F_SETFL, O_NONBLOCK);
                e->in_data = steal_pointer(&input);
                e->in_len = input_len;
                if (input_len == 0 || agent_loop_add_fd(ctx, e->in_fd, POLLOUT, on_input, e) < 0)
                        input_close(e);
        }
        for (struct exec_stream *s = &e->out; s; s = s == &e->out ? &e->err : NULL) {
                if (s->fd < 0)
                        continue;
                fcntl(s->fd, F_SETFL, O_NONBLOCK);
                if (agent_loop_add_fd(ctx, s->fd, POLLIN, on_output, s) < 0) {
                        close(s->fd);
                        s->fd = -1;
                }
        }
        tt_debug("guest-exec '%s': pid %d", path, (int)pid);
        *ret = json_pack("{s:I}", "pid", (json_int_t)pid);
        return *ret ? 0 : tt_error_set(err, ENOMEM, "out of memory");
}

static int set_b64(json_t *obj, const char *key, const struct exec_stream *s)
{
        _cleanup_free_ char *b64 = malloc(tt_base64_encoded_len(s->len) + 1);

        if (b64 == NULL)
                return -1;
        b64[tt_base64_encode(s->data, s->len, b64)] = '\0';
        return json_object_set_new(obj, key, json_string(b64));
}

AGENT_HANDLER(agent_cmd_exec_status)
{
        int64_t pid = json_integer_value(json_object_get(args, "pid"));
        struct agent_exec *e = NULL;
        json_t *r;
        int st;

        for (e = ctx->execs ? ctx->execs->head : NULL; e; e = e->next)
                if ((int64_t)e->pid == pid)
                        break;
        if (e == NULL)
                return tt_error_set(err, ENOENT, "Invalid parameter 'pid'");
        /* Do not depend on SIGCHLD alone: look once more before answering. */
        exec_try_reap(e);
        if (!exec_finished(e)) {
                *ret = json_pack("{s:b}", "exited", 0);
                return *ret ? 0 : tt_error_set(err, ENOMEM, "out of memory");
        }
        st = e->status;
        /* Keys in the order qemu-ga prints them. */
        r = json_object();
        if (r == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (WIFEXITED(st))
                json_object_set_new(r, "exitcode", json_integer(WEXITSTATUS(st)));
        /*
         * qemu-ga reports a stream only when it kept bytes of it. Past the total cap a stream
         * can be truncated with nothing kept: it is reported too (empty data, truncated), so
         * that the loss shows.
         */
        if ((e->err.len || e->err.truncated) && set_b64(r, "err-data", &e->err) < 0)
                goto oom;
        if ((e->out.len || e->out.truncated) && set_b64(r, "out-data", &e->out) < 0)
                goto oom;
        if (e->err.len || e->err.truncated)
                json_object_set_new(r, "err-truncated", json_boolean(e->err.truncated));
        if (WIFSIGNALED(st))
                json_object_set_new(r, "signal", json_integer(WTERMSIG(st)));
        if (e->out.len || e->out.truncated)
                json_object_set_new(r, "out-truncated", json_boolean(e->out.truncated));
        json_object_set_new(r, "exited", json_true());
        exec_unlink_free(ctx, e);
        *ret = r;
        return 0;
oom:
        json_decref(r);
        return tt_error_set(err, ENOMEM, "out of memory");
}

int agent_execs_init(struct agent_ctx *ctx, struct tt_error *err)
{
        ctx->execs = calloc(1, sizeof(*ctx->execs));
        if (ctx->execs == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return 0;
}

void agent_execs_free(struct agent_ctx *ctx)
{
        if (ctx->execs == NULL)
                return;
        /* Children are left running, as qemu-ga leaves them; only our ends are closed. */
        while (ctx->execs->head)
                exec_unlink_free(ctx, ctx->execs->head);
        free(ctx->execs);
        ctx->execs = NULL;
}
