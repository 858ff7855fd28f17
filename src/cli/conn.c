/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reaching tetherd: tether:///system (optionally ?socket=PATH) is the local control socket;
 * tether+ssh://[user@]host[:port]/system runs `tether proxy` on the host through ssh and
 * speaks the same protocol over ssh's stdin and stdout. Replies are framed by the wire module.
 */
#include "cli/cli.h"
#include "common/cleanup.h"
#include "wire/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/tether/tetherd.sock"

struct uri {
        char scheme[32];  /* "tether" or "tether+ssh" */
        char user[128];   /* ssh user, may be empty */
        char host[256];   /* ssh host, empty for local */
        char port[16];    /* ssh port, may be empty */
        char socket[512]; /* ?socket=PATH, may be empty */
};

/* Copy src into a fixed field; false when it does not fit. */
static bool copy_field(char *dst, size_t size, const char *src)
{
        size_t len = strlen(src);

        if (len >= size)
                return false;
        memcpy(dst, src, len + 1);
        return true;
}

static int parse_uri(const char *s, struct uri *u, struct tt_error *err)
{
        const char *p, *auth, *slash, *q;
        size_t len;

        memset(u, 0, sizeof(*u));
        p = strstr(s, "://");
        if (p == NULL || (size_t)(p - s) >= sizeof(u->scheme))
                return tt_error_set(err, EINVAL, "invalid URI '%s'", s);
        memcpy(u->scheme, s, (size_t)(p - s));
        if (strcmp(u->scheme, "tether") != 0 && strcmp(u->scheme, "tether+ssh") != 0)
                return tt_error_set(err, EINVAL, "unsupported URI scheme '%s' in '%s'", u->scheme,
                                    s);
        auth = p + 3;
        slash = strchr(auth, '/');
        if (slash == NULL || strncmp(slash, "/system", 7) != 0 ||
            (slash[7] != '\0' && slash[7] != '?'))
                return tt_error_set(err, EINVAL, "invalid URI '%s': the path must be /system", s);
        len = (size_t)(slash - auth);
        if (len > 0) {
                char hostpart[400];
                char *at, *colon, *h = hostpart;

                if (len >= sizeof(hostpart))
                        return tt_error_set(err, EINVAL, "invalid URI '%s'", s);
                memcpy(hostpart, auth, len);
                hostpart[len] = '\0';
                at = strchr(hostpart, '@');
                if (at) {
                        *at = '\0';
                        if (!copy_field(u->user, sizeof(u->user), hostpart))
                                return tt_error_set(err, EINVAL, "invalid URI '%s'", s);
                        h = at + 1;
                }
                colon = strrchr(h, ':');
                if (colon && !strchr(h, ']')) {
                        *colon = '\0';
                        if (!copy_field(u->port, sizeof(u->port), colon + 1))
                                return tt_error_set(err, EINVAL, "invalid URI '%s'", s);
                }
                if (!copy_field(u->host, sizeof(u->host), h))
                        return tt_error_set(err, EINVAL, "invalid URI '%s'", s);
        }
        if (strcmp(u->scheme, "tether+ssh") == 0 && u->host[0] == '\0')
                return tt_error_set(err, EINVAL, "invalid URI '%s': ssh needs a host", s);
        if (strcmp(u->scheme, "tether") == 0 && u->host[0] != '\0')
                return tt_error_set(err, EINVAL,
                                    "invalid URI '%s': use tether+ssh:// for a remote host", s);
        q = strchr(slash, '?');
        if (q) {
                if (strncmp(q + 1, "socket=", 7) != 0)
                        return tt_error_set(err, EINVAL, "unknown URI parameter in '%s'", s);
                if (!copy_field(u->socket, sizeof(u->socket), q + 8))
                        return tt_error_set(err, EINVAL, "invalid URI '%s'", s);
        }
        return 0;
}

char *cli_socket_path(const char *uri, const char *root, struct tt_error *err)
{
        struct uri u;
        char *path = NULL;

        if (uri && parse_uri(uri, &u, err) < 0)
                return NULL;
        if (uri && u.socket[0])
                return strdup(u.socket);
        if (asprintf(&path, "%s%s", root ? root : "", DEFAULT_SOCKET) < 0)
                return NULL;
        return path;
}

static int connect_unix(const char *path, struct tt_error *err)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return tt_error_set(err, ENAMETOOLONG, "socket path '%s' is too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return tt_error_errno(err, errno, "socket");
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;

                close(fd);
                return tt_error_set(err, e,
                                    "failed to connect to the daemon at '%s': %s (is tetherd "
                                    "running?)",
                                    path, strerror(e));
        }
        return fd;
}

static int connect_ssh(struct cli_conn *c, const struct uri *u, const char *root,
                       struct tt_error *err)
{
        int in[2], out[2];
        pid_t pid;

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return tt_error_errno(err, errno, "pipe");
        pid = fork();
        if (pid < 0)
                return tt_error_errno(err, errno, "fork");
        if (pid == 0) {
                const char *argv[20];
                size_t n = 0;

                dup2(in[0], STDIN_FILENO);
                dup2(out[1], STDOUT_FILENO);
                argv[n++] = "ssh";
                argv[n++] = "-T";
                argv[n++] = "-e";
                argv[n++] = "none";
                argv[n++] = "-o";
                argv[n++] = "BatchMode=yes";
                if (u->port[0]) {
                        argv[n++] = "-p";
                        argv[n++] = u->port;
                }
                if (u->user[0]) {
                        argv[n++] = "-l";
                        argv[n++] = u->user;
                }
                argv[n++] = u->host;
                argv[n++] = "tether";
                argv[n++] = "proxy";
                if (u->socket[0]) {
                        argv[n++] = "--socket";
                        argv[n++] = u->socket;
                } else if (root) {
                        argv[n++] = "--root";
                        argv[n++] = root;
                }
                argv[n] = NULL;
                execvp("ssh", (char **)argv);
                dprintf(STDERR_FILENO, "error: cannot run ssh: %s\n", strerror(errno));
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        c->wfd = in[1];
        c->rfd = out[0];
        c->ssh_pid = pid;
        return 0;
}

int cli_connect(struct cli_conn *c, const char *uri, const char *root, struct tt_error *err)
{
        struct uri u;
        _cleanup_free_ char *path = NULL;
        int fd;

        c->rfd = c->wfd = -1;
        c->ssh_pid = 0;
        if (uri && parse_uri(uri, &u, err) < 0)
                return -1;
        if (uri && strcmp(u.scheme, "tether+ssh") == 0)
                return connect_ssh(c, &u, root, err);
        path = cli_socket_path(uri, root, err);
        if (path == NULL)
                return -1;
        fd = connect_unix(path, err);
        if (fd < 0)
                return -1;
        c->rfd = c->wfd = fd;
        return 0;
}

void cli_disconnect(struct cli_conn *c)
{
        if (c->rfd >= 0)
                close(c->rfd);
        if (c->wfd >= 0 && c->wfd != c->rfd)
                close(c->wfd);
        c->rfd = c->wfd = -1;
        if (c->ssh_pid > 0)
                waitpid(c->ssh_pid, NULL, 0);
}

static int write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static int sink_fd(void *opaque, const void *buf, size_t len)
{
        return write_all(*(int *)opaque, buf, len);
}

struct reply_wait {
        json_t *reply;       /* the reply, once read */
        char *error;         /* a framing error */
};

static int got_message(void *opaque, json_t *msg, const struct tt_error *perr)
{
        struct reply_wait *w = opaque;

        if (msg == NULL) {
                w->error = strdup(perr->msg);
                return -1;
        }
        w->reply = msg;
        return -1; /* one reply is all we wait for */
}

json_t *cli_call(struct cli_conn *c, const char *execute, json_t *args, struct tt_error *err)
{
        _cleanup_json_ json_t *req = json_pack("{s:s, s:O}", "execute", execute, "arguments",
                                               args);
        struct wire_splitter *sp = wire_splitter_new();
        struct wire_out *out = wire_out_new(sink_fd, &c->wfd);
        struct reply_wait w = {0};
        char buf[65536];

        if (req == NULL || sp == NULL || out == NULL || wire_dump(out, req) < 0 ||
            wire_out_puts(out, "\n") < 0 || wire_out_flush(out) < 0) {
                tt_error_set(err, EIO, "cannot send the request to the daemon");
                goto out;
        }
        while (w.reply == NULL && w.error == NULL) {
                ssize_t n = read(c->rfd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        tt_error_set(err, EIO, "the daemon closed the connection");
                        goto out;
                }
                wire_splitter_feed(sp, buf, (size_t)n, got_message, &w);
        }
        if (w.error)
                tt_error_set(err, EIO, "malformed reply from the daemon: %s", w.error);
out:
        free(w.error);
        wire_splitter_free(sp);
        wire_out_free(out);
        return w.error ? NULL : w.reply;
}

int cli_proxy(const char *socket_path, struct tt_error *err)
{
        int fd = connect_unix(socket_path, err);
        struct pollfd pfd[2];
        char buf[65536];
        bool in_open = true;

        if (fd < 0)
                return -1;
        pfd[0] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = fd, .events = POLLIN};
        for (;;) {
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (in_open && pfd[0].revents) {
                        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
                        if (n <= 0) {
                                /* The client finished sending; keep relaying replies. */
                                shutdown(fd, SHUT_WR);
                                in_open = false;
                                pfd[0].fd = -1;
                        } else if (write_all(fd, buf, (size_t)n) < 0) {
                                break;
                        }
                }
                if (pfd[1].revents) {
                        ssize_t n = read(fd, buf, sizeof(buf));
                        if (n <= 0 || write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
                                break;
                }
        }
        close(fd);
        return 0;
}
