/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reaching tetherd: tether:///system (optionally ?socket=PATH) is the local control socket;
 * tether+ssh://[user@]host[:port]/system (host may be an IPv6 literal in brackets, [::1]) runs
 * `tether proxy` on the host through ssh and
 * speaks the same protocol over ssh's stdin and stdout. Replies are framed by the wire module.
 * Query parameters follow libvirt's remote URIs: socket=PATH (both schemes), and for ssh
 * command=PROGRAM (the local ssh), keyfile=PATH, known_hosts=PATH and no_verify=1.
 */
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "wire/wire.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/tether/tetherd.sock"

struct uri {
        char scheme[32];       /* "tether" or "tether+ssh" */
        char user[128];        /* ssh user, may be empty */
        char host[256];        /* ssh host, empty for local */
        char port[16];         /* ssh port, may be empty */
        char socket[512];      /* ?socket=PATH, may be empty */
        char command[512];     /* ?command=: the local ssh program (libvirt's name) */
        char keyfile[512];     /* ?keyfile=: ssh -i */
        char known_hosts[512]; /* ?known_hosts=: ssh's UserKnownHostsFile */
        bool no_verify;        /* ?no_verify=1: do not check the host key */
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

/* Undo %XX escapes of a query value into dst; false when it does not fit or is malformed. */
static bool unescape_field(char *dst, size_t size, const char *src, size_t len)
{
        size_t n = 0;

        for (size_t i = 0; i < len; i++) {
                char c = src[i];

                if (c == '%') {
                        char hex[3] = {0};

                        if (i + 2 >= len || !isxdigit((unsigned char)src[i + 1]) ||
                            !isxdigit((unsigned char)src[i + 2]))
                                return false;
                        hex[0] = src[i + 1];
                        hex[1] = src[i + 2];
                        c = (char)strtol(hex, NULL, 16);
                        if (c == '\0')
                                return false;
                        i += 2;
                }
                if (n + 1 >= size)
                        return false;
                dst[n++] = c;
        }
        dst[n] = '\0';
        return true;
}

/*
 * The query: libvirt's remote URI parameters that make sense here, joined with '&'.
 * socket applies to both schemes; the others only to tether+ssh.
 */
static int parse_query(const char *q, const char *s, struct uri *u, struct tt_error *err)
{
        static const struct {
                const char *key; /* parameter name */
                size_t offset;   /* its field in struct uri */
                size_t size;     /* the field's size */
        } params[] = {
                {"socket", offsetof(struct uri, socket), sizeof(u->socket)},
                {"command", offsetof(struct uri, command), sizeof(u->command)},
                {"keyfile", offsetof(struct uri, keyfile), sizeof(u->keyfile)},
                {"known_hosts", offsetof(struct uri, known_hosts), sizeof(u->known_hosts)},
        };

        while (*q) {
                const char *amp = strchr(q, '&');
                size_t len = amp ? (size_t)(amp - q) : strlen(q);
                const char *eq = memchr(q, '=', len);
                size_t klen = eq ? (size_t)(eq - q) : len;
                const char *val = eq ? eq + 1 : q + len;
                size_t vlen = (size_t)(q + len - val);
                bool known = false;

                for (size_t i = 0; i < TT_ARRAY_SIZE(params); i++) {
                        if (strlen(params[i].key) != klen ||
                            strncmp(params[i].key, q, klen) != 0)
                                continue;
                        if (!unescape_field((char *)u + params[i].offset, params[i].size, val,
                                            vlen))
                                return tt_error_set(err, EINVAL,
                                                    "invalid value for URI parameter '%s' in "
                                                    "'%s'",
                                                    params[i].key, s);
                        known = true;
                }
                if (!known && klen == 9 && strncmp(q, "no_verify", 9) == 0) {
                        u->no_verify = vlen == 1 && val[0] == '1';
                        known = true;
                }
                if (!known)
                        return tt_error_set(err, EINVAL, "unknown URI parameter '%.*s' in '%s'",
                                            (int)klen, q, s);
                q += len;
                if (*q == '&')
                        q++;
        }
        return 0;
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
                if (h[0] == '[') {
                        /* An IPv6 literal (RFC 3986): [addr] or [addr]:port; ssh wants addr. */
                        char *close = strchr(h, ']');

                        if (close == NULL || close == h + 1 ||
                            (close[1] != '\0' && close[1] != ':'))
                                return tt_error_set(err, EINVAL, "invalid URI '%s': bad IPv6 host",
                                                    s);
                        colon = close[1] == ':' ? close + 1 : NULL;
                        *close = '\0';
                        h++;
                } else {
                        colon = strrchr(h, ':');
                }
                if (colon) {
                        *colon = '\0';
                        if (!copy_field(u->port, sizeof(u->port), colon + 1))
                                return tt_error_set(err, EINVAL, "invalid URI '%s'", s);
                        for (const char *d = u->port; *d; d++)
                                if (!isdigit((unsigned char)*d))
                                        return tt_error_set(err, EINVAL,
                                                            "invalid URI '%s': bad port", s);
                }
                /* %XX escapes are undone: an IPv6 zone is written [fe80::1%25eth0] (RFC 6874). */
                if (!unescape_field(u->host, sizeof(u->host), h, strlen(h)))
                        return tt_error_set(err, EINVAL, "invalid URI '%s'", s);
        }
        if (strcmp(u->scheme, "tether+ssh") == 0 && u->host[0] == '\0')
                return tt_error_set(err, EINVAL, "invalid URI '%s': ssh needs a host", s);
        if (strcmp(u->scheme, "tether") == 0 && u->host[0] != '\0')
                return tt_error_set(err, EINVAL,
                                    "invalid URI '%s': use tether+ssh:// for a remote host", s);
        q = strchr(slash, '?');
        return q ? parse_query(q + 1, s, u, err) : 0;
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

/* Append s to the remote command line in single quotes (ssh hands it to the remote shell). */
static bool shell_append(char *buf, size_t size, const char *s)
{
        size_t n = strlen(buf);

        if (n + 2 >= size)
                return false;
        buf[n++] = ' ';
        buf[n++] = '\'';
        for (; *s; s++) {
                const char *piece = *s == '\'' ? "'\\''" : NULL;
                size_t plen = piece ? strlen(piece) : 1;

                if (n + plen + 2 >= size)
                        return false;
                if (piece)
                        memcpy(buf + n, piece, plen);
                else
                        buf[n] = *s;
                n += plen;
        }
        buf[n++] = '\'';
        buf[n] = '\0';
        return true;
}

static int connect_ssh(struct cli_conn *c, const struct uri *u, const char *root,
                       struct tt_error *err)
{
        char remote[1400] = "tether proxy";
        char known_hosts[600];
        int in[2], out[2];
        pid_t pid;

        /* The far end is `tether proxy` with the socket or root to relay to, quoted. */
        if (u->socket[0] && !(shell_append(remote, sizeof(remote), "--socket") &&
                              shell_append(remote, sizeof(remote), u->socket)))
                return tt_error_set(err, ENAMETOOLONG, "socket path is too long");
        if (!u->socket[0] && root && !(shell_append(remote, sizeof(remote), "--root") &&
                                       shell_append(remote, sizeof(remote), root)))
                return tt_error_set(err, ENAMETOOLONG, "root path is too long");
        snprintf(known_hosts, sizeof(known_hosts), "UserKnownHostsFile=%s", u->known_hosts);
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return tt_error_errno(err, errno, "pipe");
        pid = fork();
        if (pid < 0)
                return tt_error_errno(err, errno, "fork");
        if (pid == 0) {
                const char *ssh = u->command[0] ? u->command : "ssh";
                const char *argv[24];
                size_t n = 0;

                dup2(in[0], STDIN_FILENO);
                dup2(out[1], STDOUT_FILENO);
                argv[n++] = ssh;
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
                if (u->keyfile[0]) {
                        argv[n++] = "-i";
                        argv[n++] = u->keyfile;
                }
                if (u->known_hosts[0]) {
                        argv[n++] = "-o";
                        argv[n++] = known_hosts;
                }
                if (u->no_verify) {
                        argv[n++] = "-o";
                        argv[n++] = "StrictHostKeyChecking=no";
                }
                argv[n++] = "--";
                argv[n++] = u->host;
                argv[n++] = remote;
                argv[n] = NULL;
                execvp(ssh, (char **)argv);
                dprintf(STDERR_FILENO, "error: cannot run %s: %s\n", ssh, strerror(errno));
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

        memset(c, 0, sizeof(*c));
        c->rfd = c->wfd = -1;
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
        c->ssh_pid = 0;
        wire_splitter_free(c->sp);
        c->sp = NULL;
        json_decref(c->queue);
        c->queue = NULL;
        free(c->rbuf);
        c->rbuf = NULL;
        free(c->error);
        c->error = NULL;
        free(c->created);
        c->created = NULL;
}

/* Every reply the splitter completes is queued: with requests in flight, one read may hold many. */
static int got_message(void *opaque, json_t *msg, const struct tt_error *perr)
{
        struct cli_conn *c = opaque;

        if (msg == NULL) {
                if (c->error == NULL)
                        c->error = strdup(perr->msg ? perr->msg : "framing error");
                return -1;
        }
        if (json_array_append_new(c->queue, msg) < 0)
                return -1;
        return 0;
}

/* The connection ended before a reply: say whether ssh failed or the daemon hung up. */
static void closed_error(struct cli_conn *c, struct tt_error *err)
{
        int status = 0;

        if (c->ssh_pid > 0 && waitpid(c->ssh_pid, &status, 0) == c->ssh_pid) {
                c->ssh_pid = 0;
                if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
                        /* ssh (255) or the remote `tether proxy` printed why on stderr. */
                        tt_error_set(err, EIO,
                                     "failed to connect to the daemon over ssh (exit status %d)",
                                     WEXITSTATUS(status));
                        return;
                }
        }
        tt_error_set(err, EIO, "the daemon closed the connection");
}

/* The splitter, the reply queue and the read buffer are made on first use. */
static int conn_prepare(struct cli_conn *c, struct tt_error *err)
{
        if (c->sp == NULL) {
                c->sp = wire_splitter_new();
                if (c->sp == NULL)
                        return tt_error_set(err, ENOMEM, "out of memory");
                /* guest-file-read replies of 48 MiB are 64 MiB of base64, plus framing. */
                wire_splitter_set_limits(c->sp, CLI_MAX_REPLY, 0, 0);
        }
        if (c->queue == NULL && (c->queue = json_array()) == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return 0;
}

/*
 * Open the file a request names ("file": {"path", "open"}) with our own rights: tetherd runs
 * as root and never opens a client's path; it gets the descriptor (SCM_RIGHTS). "save" creates
 * the file (0600; an existing one is emptied by tetherd only once the save begins), "restore"
 * reads it. Links are not followed, and nothing blocks on a FIFO (O_NONBLOCK); tetherd refuses
 * anything but a regular file. *created: the file is new (remove it if the request fails).
 */
int cli_open_file(json_t *file, bool *created, struct tt_error *err)
{
        const char *path = json_string_value(json_object_get(file, "path"));
        const char *how = json_string_value(json_object_get(file, "open"));
        const int common = O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
        bool save = how && strcmp(how, "save") == 0;
        struct stat st;
        int fd;

        *created = false;
        if (path == NULL || how == NULL || (!save && strcmp(how, "restore") != 0))
                return tt_error_set(err, EINVAL, "invalid file in the request");
        if (save) {
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL | common, 0600);
                if (fd >= 0)
                        *created = true;
                else if (errno == EEXIST)
                        fd = open(path, O_WRONLY | common);
        } else {
                fd = open(path, O_RDONLY | common);
        }
        if (fd >= 0)
                return fd;
        if (errno == ELOOP)
                return tt_error_set(err, ELOOP,
                                    "'%s' is a symbolic link: a save image must be a regular "
                                    "file, and links are not followed",
                                    path);
        if (save && errno == ENXIO && lstat(path, &st) == 0 && S_ISFIFO(st.st_mode))
                return tt_error_set(err, EINVAL,
                                    "cannot save to '%s': it is a FIFO, and a save image must "
                                    "be a regular file",
                                    path);
        return tt_error_set(err, errno, "cannot %s save image '%s': %s",
                            save ? "create" : "open", path, strerror(errno));
}

/* Write all of buf to a socket, with fd (>= 0) passed alongside its first byte. */
int cli_send_with_fd(int sock, const char *buf, size_t len, int fd)
{
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        struct cmsghdr *cm;
        ssize_t n;

        if (fd >= 0) {
                mh.msg_control = cbuf;
                mh.msg_controllen = sizeof(cbuf);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        }
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -1;
        /* The descriptor went with the first byte; the rest is plain data. */
        return tt_write_all(sock, buf + n, len - (size_t)n);
}

int cli_send(struct cli_conn *c, const char *execute, json_t *args, struct tt_error *err)
{
        _cleanup_json_ json_t *req = json_pack("{s:s, s:O}", "execute", execute, "arguments",
                                               args);
        _cleanup_free_ char *text = NULL, *line = NULL;
        json_t *file = json_object_get(args, "file");
        _cleanup_close_ int fd = -1;
        bool created = false;
        bool sent;

        if (conn_prepare(c, err) < 0)
                return -1;
        if (req == NULL || (text = wire_dumps(req)) == NULL ||
            asprintf(&line, "%s\n", text) < 0)
                return tt_error_set(err, ENOMEM, "out of memory");
        /* Over ssh the remote `tether proxy` opens it, with the remote user's rights. */
        if (json_is_object(file) && c->ssh_pid == 0) {
                fd = cli_open_file(file, &created, err);
                if (fd < 0)
                        return -1;
                free(c->created);
                c->created = created ? strdup(json_string_value(json_object_get(file, "path")))
                                     : NULL;
        }
        sent = (fd >= 0 ? cli_send_with_fd(c->wfd, line, strlen(line), fd)
                        : tt_write_all(c->wfd, line, strlen(line))) == 0;
        /* Even if sending failed, the daemon may have answered first (access denied). */
        if (!sent)
                c->send_failed = true;
        return 0;
}

json_t *cli_recv(struct cli_conn *c, struct tt_error *err)
{
        if (conn_prepare(c, err) < 0)
                return NULL;
        if (c->rbuf == NULL && (c->rbuf = malloc(CLI_READ_CHUNK)) == NULL) {
                tt_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        while (json_array_size(c->queue) == 0 && c->error == NULL) {
                ssize_t n = read(c->rfd, c->rbuf, CLI_READ_CHUNK);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0 && c->send_failed) {
                        tt_error_set(err, EIO, "cannot send the request to the daemon");
                        return NULL;
                }
                if (n <= 0) {
                        closed_error(c, err);
                        return NULL;
                }
                wire_splitter_feed(c->sp, c->rbuf, (size_t)n, got_message, c);
        }
        if (json_array_size(c->queue) > 0) {
                json_t *reply = json_incref(json_array_get(c->queue, 0));

                json_array_remove(c->queue, 0);
                return reply;
        }
        tt_error_set(err, EIO, "malformed reply from the daemon: %s", c->error);
        return NULL;
}

json_t *cli_call(struct cli_conn *c, const char *execute, json_t *args, struct tt_error *err)
{
        json_t *reply;

        if (cli_send(c, execute, args, err) < 0)
                return NULL;
        reply = cli_recv(c, err);
        /* A save that failed leaves no file behind that it created (as virsh). */
        if (c->created && (reply == NULL || json_object_get(reply, "error")))
                unlink(c->created);
        free(c->created);
        c->created = NULL;
        return reply;
}

/* The far end of tether+ssh://: where requests go. */
struct proxy {
        int sock;       /* tetherd's control socket */
        bool broken;    /* writing to it failed */
        bool raw;       /* a streaming request ("console") went: the rest is bytes, as they are */
        /*
         * Files this proxy created for requests still in flight (save to a new file), by the
         * request's id: a reply with an error removes the file, as the local CLI does.
         */
        json_t *created;        /* id text -> path */
        unsigned next_id;       /* ids given to such requests that came without one */
        char *line;             /* the reply being read, while a created file waits for one */
        size_t len, cap;
        bool mid_line;          /* the reply being read began before anything waited */
        bool keep;              /* it is being kept in line */
};

/* The id of a request as text (a key of proxy.created); malloc'd. */
static char *proxy_id_key(json_t *id)
{
        return json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* One whole reply from tetherd while created files wait: remove the file of a failed request. */
static void proxy_reply(struct proxy *p, const char *text, size_t len)
{
        _cleanup_json_ json_t *msg = json_loadb(text, len, 0, NULL);
        _cleanup_free_ char *key = NULL;
        const char *path;

        if (!json_is_object(msg) || json_object_get(msg, "event") ||
            (key = proxy_id_key(json_object_get(msg, "id"))) == NULL)
                return;
        path = json_string_value(json_object_get(p->created, key));
        if (path == NULL)
                return;
        if (json_object_get(msg, "error") && unlink(path) < 0 && errno != ENOENT)
                fprintf(stderr, "tether proxy: cannot remove '%s': %s\n", path, strerror(errno));
        json_object_del(p->created, key);
}

/*
 * Bytes from tetherd, already relayed: replies are lines, kept only from the first line that
 * begins while a created file waits for its reply (a reply to a later request cannot begin
 * before it was sent).
 */
static void proxy_watch_replies(struct proxy *p, const char *buf, size_t n)
{
        while (n > 0 && !p->raw) {
                const char *nl = memchr(buf, '\n', n);
                size_t take = nl ? (size_t)(nl - buf) + 1 : n;

                if (!p->mid_line)
                        p->keep = json_object_size(p->created) > 0;
                if (p->keep) {
                        if (p->len + take > CLI_MAX_REPLY) {
                                p->keep = false; /* no reply to a save is that long */
                                p->len = 0;
                        } else {
                                if (p->len + take > p->cap) {
                                        size_t cap = (p->len + take) * 2;
                                        char *line = realloc(p->line, cap);

                                        if (line == NULL) {
                                                p->keep = false;
                                                p->len = 0;
                                                goto next;
                                        }
                                        p->line = line;
                                        p->cap = cap;
                                }
                                memcpy(p->line + p->len, buf, take);
                                p->len += take;
                        }
                }
next:
                p->mid_line = nl == NULL;
                if (nl && p->keep)
                        proxy_reply(p, p->line, p->len);
                if (nl)
                        p->len = 0;
                buf += take;
                n -= take;
        }
}

/* Remember the file created for msg, giving msg an id if it has none. */
static int proxy_track(struct proxy *p, json_t *msg, json_t *file)
{
        json_t *id = json_object_get(msg, "id");
        _cleanup_free_ char *key = NULL;

        if (id == NULL) {
                id = json_sprintf("tether-proxy-%u", ++p->next_id);
                if (id == NULL || json_object_set_new(msg, "id", id) < 0)
                        return -1;
        }
        key = proxy_id_key(id);
        if (key == NULL || (p->created == NULL && (p->created = json_object()) == NULL))
                return -1;
        return json_object_set(p->created, key, json_object_get(file, "path"));
}

/*
 * One request from ssh: a file it names is opened here, with the remote user's rights (ssh
 * cannot carry a descriptor), and goes to tetherd with the request. If that fails, the request
 * still goes, carrying the reason in "file"."error": tetherd answers it in its turn.
 */
static int proxy_request(void *opaque, json_t *msg, const struct tt_error *perr)
{
        struct proxy *p = opaque;
        json_t *file = json_object_get(json_object_get(msg, "arguments"), "file");
        _cleanup_free_ char *text = NULL, *line = NULL;
        _cleanup_close_ int fd = -1;
        struct tt_error err = {0};
        bool created;

        if (msg == NULL) {
                /*
                 * Not JSON (no tether sends that): a stray 0xFF makes tetherd answer with one
                 * parse error, in order with the other replies.
                 */
                return tt_write_all(p->sock, "\xff\n", 2) < 0 ? -1 : 0;
        }
        if (json_is_object(file) && json_object_get(file, "error") == NULL) {
                fd = cli_open_file(file, &created, &err);
                if (fd < 0)
                        json_object_set_new(file, "error",
                                            json_string(err.msg ? err.msg : "cannot open"));
                tt_error_clear(&err);
                /* Out of memory here only leaves the file of a failed save behind. */
                if (fd >= 0 && created)
                        (void)proxy_track(p, msg, file);
        }
        /* After "console" the client sends its keystrokes only once the reply came. */
        p->raw = strcmp(json_string_value(json_object_get(msg, "execute")) ?: "", "console") == 0;
        text = wire_dumps(msg);
        json_decref(msg);
        if (text == NULL || asprintf(&line, "%s\n", text) < 0 ||
            cli_send_with_fd(p->sock, line, strlen(line), fd) < 0) {
                p->broken = true;
                return -1;
        }
        return p->raw ? -1 : 0;
}

int cli_proxy(const char *socket_path, struct tt_error *err)
{
        struct proxy p = {.sock = connect_unix(socket_path, err)};
        struct wire_splitter *sp;
        struct pollfd pfd[2];
        char buf[65536];
        bool in_open = true;

        if (p.sock < 0)
                return -1;
        sp = wire_splitter_new();
        if (sp == NULL) {
                close(p.sock);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        /* tetherd has its own, smaller limit, and says so; ours only bounds our memory. */
        wire_splitter_set_limits(sp, CLI_MAX_REPLY, 0, 0);
        pfd[0] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = p.sock, .events = POLLIN};
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
                                shutdown(p.sock, SHUT_WR);
                                in_open = false;
                                pfd[0].fd = -1;
                        } else if (p.raw) {
                                /* The console's keystrokes: relayed byte for byte. */
                                if (tt_write_all(p.sock, buf, (size_t)n) < 0)
                                        break;
                        } else {
                                wire_splitter_feed(sp, buf, (size_t)n, proxy_request, &p);
                                if (p.broken)
                                        break;
                        }
                }
                if (pfd[1].revents) {
                        ssize_t n = read(p.sock, buf, sizeof(buf));
                        if (n <= 0 || tt_write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
                                break;
                        proxy_watch_replies(&p, buf, (size_t)n);
                }
        }
        /*
         * Files of requests left unanswered stay: the save may have finished (and its domain
         * stopped) with only the reply lost on the way.
         */
        json_decref(p.created);
        free(p.line);
        wire_splitter_free(sp);
        close(p.sock);
        return 0;
}
