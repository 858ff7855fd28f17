/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP client against a real QEMU 7.2 (TCG, no guest): capabilities, a command's return,
 * QEMU's error text, events, the deadline on a QEMU that stopped answering (SIGSTOP), and
 * monitor EOF failing pending commands when QEMU dies. Prints "N passed, N failed".
 */
#include "host/qmp.h"
#include "common/cleanup.h"

#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(name, cond)                                                                          \
        do {                                                                                       \
                if (cond) {                                                                        \
                        passed++;                                                                  \
                        printf("ok   %s\n", name);                                                 \
                } else {                                                                           \
                        failed++;                                                                  \
                        printf("FAIL %s (line %d)\n", name, __LINE__);                             \
                }                                                                                  \
        } while (0)

struct result {
        bool done;        /* the callback ran */
        char *ret;        /* compact JSON of the return value */
        char *err;        /* error text */
};

struct events {
        char names[512];  /* space-separated event names seen */
        bool closed;      /* closed callback ran */
        int closed_calls; /* how often */
};

static struct event_base *base;

static void on_reply(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct result *r = opaque;

        r->done = true;
        if (ret)
                r->ret = json_dumps(ret, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (err)
                r->err = strdup(err->msg);
        event_base_loopbreak(base);
}

static void on_event(void *opaque, const char *name, json_t *data)
{
        struct events *ev = opaque;

        strncat(ev->names, name, sizeof(ev->names) - strlen(ev->names) - 2);
        strcat(ev->names, " ");
}

static void on_closed(void *opaque)
{
        struct events *ev = opaque;

        ev->closed = true;
        ev->closed_calls++;
        event_base_loopbreak(base);
}

/* Run the loop until r is done (or 10 s pass). */
static void wait_for(struct result *r)
{
        struct timeval tv = {10, 0};

        while (!r->done) {
                event_base_loopexit(base, &tv);
                if (event_base_dispatch(base) != 0)
                        break;
                if (!r->done)
                        break;
        }
}

static void run_cmd(struct qmp *q, const char *cmd, json_t *args, unsigned ms, struct result *r)
{
        memset(r, 0, sizeof(*r));
        if (qmp_command(q, cmd, args, ms, on_reply, r) < 0)
                return;
        wait_for(r);
}

static void spin(unsigned ms)
{
        struct timeval tv = {0, ms * 1000};

        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
}

int main(void)
{
        char dir[] = "/tmp/tether-qmp-XXXXXX", path[256], fdarg[300];
        struct qmp_callbacks cb = {on_event, on_closed};
        struct events ev = {0};
        struct tt_error err = {0};
        struct result r;
        struct qmp *q;
        pid_t pid;
        int lfd, status;

        signal(SIGPIPE, SIG_IGN);
        setvbuf(stdout, NULL, _IOLBF, 0);
        base = event_base_new();
        if (mkdtemp(dir) == NULL)
                return 1;
        snprintf(path, sizeof(path), "%s/qmp.sock", dir);
        lfd = qmp_listen_socket(path, &err);
        CHECK("listening socket created", lfd >= 0);
        snprintf(fdarg, sizeof(fdarg), "socket,id=mon,fd=%d,server=on,wait=off", lfd);
        pid = fork();
        if (pid == 0) {
                int fl = fcntl(lfd, F_GETFD);
                fcntl(lfd, F_SETFD, fl & ~FD_CLOEXEC);
                execlp("qemu-system-x86_64", "qemu-system-x86_64", "-S", "-nodefaults",
                       "-no-user-config", "-display", "none", "-accel", "tcg", "-machine", "pc",
                       "-m", "32", "-chardev", fdarg, "-mon", "chardev=mon,mode=control",
                       (char *)NULL);
                _exit(127);
        }
        close(lfd);
        q = qmp_new(base, &cb, &ev);
        /* The socket exists before QEMU runs: connecting needs no retry. */
        CHECK("connect before QEMU has started", qmp_connect(q, path, &err) == 0);

        run_cmd(q, "query-status", NULL, 5000, &r);
        CHECK("query-status returns prelaunch",
              r.ret && strcmp(r.ret, "{\"running\":false,\"singlestep\":false,"
                                     "\"status\":\"prelaunch\"}") == 0);
        free(r.ret);

        run_cmd(q, "no-such-command", NULL, 5000, &r);
        CHECK("QEMU's error text comes through",
              r.err && strcmp(r.err, "The command no-such-command has not been found") == 0);
        free(r.err);

        run_cmd(q, "cont", NULL, 5000, &r);
        CHECK("cont succeeds", r.ret && strcmp(r.ret, "{}") == 0);
        free(r.ret);
        spin(200);
        CHECK("RESUME event delivered", strstr(ev.names, "RESUME") != NULL);
        run_cmd(q, "stop", NULL, 5000, &r);
        free(r.ret);
        spin(200);
        CHECK("STOP event delivered", strstr(ev.names, "STOP") != NULL);

        /* A QEMU that stops answering: the command fails at its deadline, not later. */
        kill(pid, SIGSTOP);
        run_cmd(q, "query-status", NULL, 300, &r);
        CHECK("deadline on an unresponsive QEMU",
              r.err && strcmp(r.err, "timed out after 300 ms waiting for QEMU to answer "
                                     "'query-status'") == 0);
        free(r.err);
        kill(pid, SIGCONT);
        /* Its late reply is ignored; the next command still gets its own reply. */
        run_cmd(q, "query-status", NULL, 5000, &r);
        CHECK("late reply ignored, next reply matched",
              r.ret && strstr(r.ret, "\"status\":\"paused\"") != NULL);
        free(r.ret);

        /* QEMU dies with a command pending: the command fails and closed runs once. */
        memset(&r, 0, sizeof(r));
        kill(pid, SIGSTOP);
        qmp_command(q, "query-status", NULL, 5000, on_reply, &r);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        wait_for(&r);
        CHECK("pending command fails on EOF",
              r.err && strcmp(r.err, "QEMU monitor closed") == 0);
        free(r.err);
        spin(100);
        CHECK("closed callback ran once", ev.closed && ev.closed_calls == 1);
        CHECK("commands after close are refused",
              qmp_command(q, "query-status", NULL, 100, on_reply, &r) < 0);

        qmp_free(q);
        unlink(path);
        rmdir(dir);
        event_base_free(base);
        tt_error_clear(&err);
        printf("%d passed, %d failed\n", passed, failed);
        return failed ? 1 : 0;
}
