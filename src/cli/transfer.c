/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tether's own agent verbs, built from QGA commands sent through tetherd's `agent-command`:
 *
 *   tether exec DOMAIN [--timeout N] [--env K=V]... -- CMD [ARG]...
 *       guest-exec (stdin as input-data when it is not a terminal), then guest-exec-status
 *       polled with growing sleeps; the guest's output is written out and its exit status
 *       becomes ours (128+N for signal N, 124 when --timeout runs out).
 *   tether cp [--progress] SRC DST      (one side DOMAIN:PATH)
 *       guest-file-open/read/write/seek/close, with the next request sent before the previous
 *       reply is handled, so the agent reads (or the host writes) while the other side works.
 */
#include "cli/cli.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXEC_INPUT_MAX   (2U << 20)  /* raw stdin bytes one guest-exec request may carry */
#define CP_READ_COUNT    (16U << 20) /* guest-file-read count (the agent allows 48 MiB) */
#define CP_WRITE_CHUNK   (2U << 20)  /* raw bytes per guest-file-write (requests stay < 4 MiB) */
#define POLL_FIRST_NS    5000000LL   /* first guest-exec-status wait: 5 ms ... */
#define POLL_MAX_NS      100000000LL /* ... doubling up to 100 ms */

static double now_seconds(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- one QGA command through agent-command ---- */

/*
 * Each call's deadline in tetherd. Replies here carry megabytes (file chunks, a command's whole
 * output) and a busy guest under TCG needs seconds for them: libvirt's 5 s would fail a copy
 * that is merely slow. An agent that is really gone still fails the call, only later.
 */
#define TRANSFER_CALL_TIMEOUT_S 60

/* Queue {"execute": name, "arguments": qargs} for the domain's agent; qargs is stolen. */
static int agent_send(struct cli_conn *c, const char *dom, const char *name, json_t *qargs,
                      struct tt_error *err)
{
        _cleanup_json_ json_t *args = json_pack("{s:s, s:{s:s}, s:i}", "domain", dom, "command",
                                                "execute", name, "timeout",
                                                TRANSFER_CALL_TIMEOUT_S);

        if (args == NULL) {
                json_decref(qargs);
                return tt_error_set(err, ENOMEM, "out of memory");
        }
        if (qargs)
                json_object_set_new(json_object_get(args, "command"), "arguments", qargs);
        return cli_send(c, "agent-command", args, err);
}

/*
 * The next reply: the agent's "return" value (a new reference), or NULL with err holding one
 * line: the daemon's error text, or the agent's error worded as libvirt words it.
 */
static json_t *agent_recv(struct cli_conn *c, const char *name, struct tt_error *err)
{
        _cleanup_json_ json_t *reply = cli_recv(c, err);
        json_t *error, *ret;

        if (reply == NULL)
                return NULL;
        error = json_object_get(reply, "error");
        if (error) {
                tt_error_set(err, EIO, "%s", json_string_value(json_object_get(error, "desc")) ?: "unknown error");
                return NULL;
        }
        ret = json_object_get(reply, "return");
        error = json_object_get(ret, "error");
        if (error) {
                tt_error_set(err, EIO, "internal error: unable to execute QEMU agent command '%s': %s",
                             name, json_string_value(json_object_get(error, "desc")) ?: "");
                return NULL;
        }
        if (json_object_get(ret, "return") == NULL) {
                tt_error_set(err, EIO, "internal error: malformed reply to '%s'", name);
                return NULL;
        }
        return json_incref(json_object_get(ret, "return"));
}

static json_t *agent_call(struct cli_conn *c, const char *dom, const char *name, json_t *qargs,
                          struct tt_error *err)
{
        if (agent_send(c, dom, name, qargs, err) < 0)
                return NULL;
        return agent_recv(c, name, err);
}

/* Print err as the verb's one error line and clear it; returns the exit status 1. */
static int fail(struct tt_error *err)
{
        cli_error("%s", err->msg ? err->msg : "out of memory");
        tt_error_clear(err);
        return EXIT_FAILURE;
}

/* Decode a base64 member of obj (absent = empty) and write it to fd. */
static int write_b64(int fd, json_t *obj, const char *key, struct tt_error *err)
{
        const char *b64 = json_string_value(json_object_get(obj, key));
        _cleanup_free_ unsigned char *bytes = NULL;
        size_t len = 0;
        int r;

        if (b64 == NULL || b64[0] == '\0')
                return 0;
        if (tt_base64_decode(b64, strlen(b64), &bytes, &len, err) < 0)
                return -1;
        r = tt_write_all(fd, bytes, len);
        if (r < 0)
                return tt_error_errno(err, -r, "cannot write the output");
        return 0;
}

/* ---- exec ---- */

int cli_args_exec(json_t *args, const struct cli_opts *o)
{
        if (o->nrest == 0) {
                cli_error("usage: tether exec DOMAIN [--timeout N] [--env K=V]... -- COMMAND "
                          "[ARG]...");
                return -1;
        }
        json_object_clear(args);
        return 0;
}

/* Standard input for input-data when it is not a terminal, bounded; *b64 NULL when none. */
static int read_stdin_b64(char **b64, struct tt_error *err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;

        *b64 = NULL;
        if (isatty(STDIN_FILENO))
                return 0;
        buf = malloc(tt_base64_encoded_len(EXEC_INPUT_MAX) + 1);
        if (buf == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        /* Read into the tail of the buffer and encode in place (base64.h allows it). */
        for (;;) {
                char *tail = buf + tt_base64_encoded_len(EXEC_INPUT_MAX) - EXEC_INPUT_MAX;
                char extra;
                ssize_t n;

                if (len == EXEC_INPUT_MAX) {
                        n = read(STDIN_FILENO, &extra, 1);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n > 0)
                                return tt_error_set(err, EFBIG,
                                                    "standard input is larger than %u MiB, the "
                                                    "most one guest-exec request carries",
                                                    EXEC_INPUT_MAX >> 20);
                        break;
                }
                n = read(STDIN_FILENO, tail + len, EXEC_INPUT_MAX - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return tt_error_errno(err, errno, "cannot read standard input");
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        {
                /* Move the data to where an in-place encode of len bytes may start. */
                char *tail = buf + tt_base64_encoded_len(EXEC_INPUT_MAX) - EXEC_INPUT_MAX;
                size_t enc = tt_base64_encoded_len(len);

                memmove(buf + enc - len, tail, len);
                tt_base64_encode(buf + enc - len, len, buf);
                buf[enc] = '\0';
        }
        *b64 = steal_pointer(&buf);
        return 0;
}

int cli_run_exec(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        const char *dom = o->pos[0];
        const char *tmo = cli_flag_value(o, "timeout");
        _cleanup_json_ json_t *env = cli_flag_values(o, "env");
        _cleanup_json_ json_t *argv = json_array();
        _cleanup_json_ json_t *started = NULL, *st = NULL;
        _cleanup_free_ char *input = NULL;
        struct tt_error err = {0};
        json_t *qargs;
        int64_t timeout = -1, pid;
        long long wait_ns = POLL_FIRST_NS;
        double t0 = now_seconds();

        (void)args;
        if (tmo && tt_parse_int64(tmo, 10, &timeout) < 0)
                timeout = -1;
        for (size_t i = 1; i < o->nrest; i++)
                json_array_append_new(argv, json_string(o->rest[i]));
        if (read_stdin_b64(&input, &err) < 0)
                return fail(&err);
        qargs = json_pack("{s:s, s:O, s:b}", "path", o->rest[0], "arg", argv, "capture-output",
                          true);
        if (qargs == NULL)
                return EXIT_FAILURE;
        if (json_array_size(env) > 0)
                json_object_set(qargs, "env", env);
        if (input)
                json_object_set_new(qargs, "input-data", json_string(input));
        started = agent_call(c, dom, "guest-exec", qargs, &err);
        if (started == NULL)
                return fail(&err);
        pid = json_integer_value(json_object_get(started, "pid"));
        for (;;) {
                struct timespec ts;

                json_decref(st);
                st = agent_call(c, dom, "guest-exec-status", json_pack("{s:I}", "pid", (json_int_t)pid),
                                &err);
                if (st == NULL)
                        return fail(&err);
                if (json_is_true(json_object_get(st, "exited")))
                        break;
                if (timeout >= 0 && now_seconds() - t0 >= (double)timeout) {
                        cli_error("command still running after %lld s (pid %lld in the guest)",
                                  (long long)timeout, (long long)pid);
                        return 124;
                }
                ts.tv_sec = wait_ns / 1000000000LL;
                ts.tv_nsec = wait_ns % 1000000000LL;
                nanosleep(&ts, NULL);
                if (wait_ns < POLL_MAX_NS)
                        wait_ns = wait_ns * 2 > POLL_MAX_NS ? POLL_MAX_NS : wait_ns * 2;
        }
        {
                json_t *code = json_object_get(st, "exitcode");
                json_t *sig = json_object_get(st, "signal");
                int status = json_is_integer(sig) ? 128 + (int)json_integer_value(sig)
                             : json_is_integer(code) ? (int)json_integer_value(code)
                                                     : 0;

                if (o->json) {
                        _cleanup_free_ unsigned char *out = NULL, *errb = NULL;
                        const char *ob = json_string_value(json_object_get(st, "out-data"));
                        const char *eb = json_string_value(json_object_get(st, "err-data"));
                        size_t olen = 0, elen = 0;
                        json_t *j;

                        if ((ob && tt_base64_decode(ob, strlen(ob), &out, &olen, &err) < 0) ||
                            (eb && tt_base64_decode(eb, strlen(eb), &errb, &elen, &err) < 0))
                                return fail(&err);
                        j = json_pack("{s:O?, s:O?, s:s#, s:s#}", "exitcode", code, "signal", sig,
                                      "out", out ? (char *)out : "", olen, "err",
                                      errb ? (char *)errb : "", elen);
                        cli_print_json(j);
                        json_decref(j);
                } else {
                        fflush(stdout);
                        if (write_b64(STDOUT_FILENO, st, "out-data", &err) < 0 ||
                            write_b64(STDERR_FILENO, st, "err-data", &err) < 0)
                                return fail(&err);
                }
                if (json_is_true(json_object_get(st, "out-truncated")) ||
                    json_is_true(json_object_get(st, "err-truncated")))
                        fprintf(stderr, "warning: the agent truncated the command's output\n");
                return status;
        }
}

/* ---- cp ---- */

/* "DOMAIN:PATH": a colon with a non-empty name before it and no '/' in that name. */
static bool split_remote(const char *arg, char **dom, const char **path)
{
        const char *colon = strchr(arg, ':');

        if (colon == NULL || colon == arg || memchr(arg, '/', (size_t)(colon - arg)))
                return false;
        *dom = strndup(arg, (size_t)(colon - arg));
        *path = colon + 1;
        return *dom != NULL;
}

/* A progress bar on stderr, only with --progress on a terminal. */
struct progress {
        bool on;          /* drawing at all */
        uint64_t total;   /* expected bytes, 0 when unknown */
        double start;     /* when the copy started */
        double last;      /* when the bar was last drawn */
};

static void progress_draw(struct progress *p, uint64_t done, bool final)
{
        double now = now_seconds();
        int pct = p->total ? (int)(done * 100 / p->total) : 100;
        char bar[41];
        int fill;

        if (!p->on || (!final && now - p->last < 0.1))
                return;
        p->last = now;
        fill = pct * 40 / 100;
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, ' ', (size_t)(40 - fill));
        bar[40] = '\0';
        fprintf(stderr, "\r[%s] %3d%% %llu/%llu bytes %.1f MiB/s", bar, pct,
                (unsigned long long)done, (unsigned long long)p->total,
                (double)done / 1048576.0 / (now - p->start > 1e-6 ? now - p->start : 1e-6));
        if (final)
                fputc('\n', stderr);
}

/* guest-file-seek to the end: the guest's size of the open file, or -1 with err set. */
static int64_t guest_size(struct cli_conn *c, const char *dom, json_int_t h, struct tt_error *err)
{
        _cleanup_json_ json_t *r = agent_call(c, dom, "guest-file-seek",
                                              json_pack("{s:I, s:I, s:s}", "handle", h, "offset",
                                                        (json_int_t)0, "whence", "end"),
                                              err);

        if (r == NULL)
                return -1;
        return json_integer_value(json_object_get(r, "position"));
}

/* Out of the guest: reads pipelined one ahead of the local writes. */
static int copy_out(struct cli_conn *c, const char *dom, const char *src, const char *dst,
                    struct progress *pg, uint64_t *bytes, struct tt_error *err)
{
        _cleanup_json_ json_t *h = NULL;
        _cleanup_close_ int fd = -1;
        json_int_t handle;
        uint64_t sum = 0, written = 0;
        bool eof = false, created = false;
        int inflight = 0, rc = -1;

        h = agent_call(c, dom, "guest-file-open", json_pack("{s:s, s:s}", "path", src, "mode", "r"),
                       err);
        if (h == NULL)
                return -1;
        handle = json_integer_value(h);
        if (pg->on) {
                int64_t size = guest_size(c, dom, handle, err);
                _cleanup_json_ json_t *r = NULL;

                if (size < 0)
                        goto close;
                pg->total = (uint64_t)size;
                r = agent_call(c, dom, "guest-file-seek",
                               json_pack("{s:I, s:I, s:s}", "handle", handle, "offset",
                                         (json_int_t)0, "whence", "set"),
                               err);
                if (r == NULL)
                        goto close;
        }
        fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) {
                tt_error_errno(err, errno, "cannot create '%s'", dst);
                goto close;
        }
        created = true;
        if (agent_send(c, dom, "guest-file-read",
                       json_pack("{s:I, s:I}", "handle", handle, "count", (json_int_t)CP_READ_COUNT),
                       err) < 0)
                goto close;
        inflight = 1;
        while (!eof) {
                _cleanup_json_ json_t *r = NULL;
                _cleanup_free_ unsigned char *data = NULL;
                const char *b64;
                size_t len = 0;
                int w;

                /* Ask for the next chunk before writing this one. */
                if (agent_send(c, dom, "guest-file-read",
                               json_pack("{s:I, s:I}", "handle", handle, "count",
                                         (json_int_t)CP_READ_COUNT),
                               err) < 0)
                        goto close;
                inflight++;
                r = agent_recv(c, "guest-file-read", err);
                inflight--;
                if (r == NULL)
                        goto close;
                b64 = json_string_value(json_object_get(r, "buf-b64"));
                if (b64 == NULL || tt_base64_decode(b64, strlen(b64), &data, &len, err) < 0) {
                        if (b64 == NULL)
                                tt_error_set(err, EIO, "malformed guest-file-read reply");
                        goto close;
                }
                if ((uint64_t)json_integer_value(json_object_get(r, "count")) != len) {
                        tt_error_set(err, EIO, "guest-file-read: count and data disagree");
                        goto close;
                }
                sum += len;
                eof = json_is_true(json_object_get(r, "eof"));
                w = tt_write_all(fd, data, len);
                if (w < 0) {
                        tt_error_errno(err, -w, "cannot write '%s'", dst);
                        goto close;
                }
                written += len;
                progress_draw(pg, written, false);
                if (len == 0 && !eof) {
                        tt_error_set(err, EIO, "guest-file-read returned no data before the end");
                        goto close;
                }
        }
        /* The read sent ahead comes back empty; collect it before the handle goes. */
        while (inflight > 0) {
                _cleanup_json_ json_t *r = agent_recv(c, "guest-file-read", err);

                inflight--;
                if (r == NULL)
                        goto close;
                if (json_integer_value(json_object_get(r, "count")) != 0) {
                        tt_error_set(err, EIO, "'%s' grew while it was copied", src);
                        goto close;
                }
        }
        if (written != sum) {
                tt_error_set(err, EIO, "wrote %llu bytes of %llu", (unsigned long long)written,
                             (unsigned long long)sum);
                goto close;
        }
        {
                int64_t size = guest_size(c, dom, handle, err);

                if (size < 0)
                        goto close;
                if ((uint64_t)size != sum) {
                        tt_error_set(err, EIO, "'%s' is %lld bytes in the guest but %llu were read",
                                     src, (long long)size, (unsigned long long)sum);
                        goto close;
                }
        }
        if (fsync(fd) < 0 && errno != EINVAL) {
                tt_error_errno(err, errno, "cannot write '%s'", dst);
                goto close;
        }
        rc = 0;
close:
        /* Replies still owed come before the close's (one connection answers in order). */
        while (inflight-- > 0) {
                struct tt_error ignored = {0};
                json_decref(agent_recv(c, "guest-file-read", &ignored));
                tt_error_clear(&ignored);
        }
        {
                struct tt_error cerr = {0};
                json_t *r = agent_call(c, dom, "guest-file-close",
                                       json_pack("{s:I}", "handle", handle), &cerr);

                if (r == NULL && rc == 0) {
                        *err = cerr;
                        rc = -1;
                } else {
                        tt_error_clear(&cerr);
                }
                json_decref(r);
        }
        if (rc < 0 && created)
                unlink(dst);
        *bytes = written;
        return rc;
}

/* Into the guest: the next chunk is read from disk and sent before the previous reply. */
static int copy_in(struct cli_conn *c, const char *dom, const char *src, const char *dst,
                   struct progress *pg, uint64_t *bytes, bool *left, struct tt_error *err)
{
        _cleanup_json_ json_t *h = NULL;
        _cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        struct stat sb;
        json_int_t handle;
        uint64_t sent = 0, acked = 0;
        int inflight = 0, rc = -1;
        bool done = false;

        if (fd < 0)
                return tt_error_errno(err, errno, "cannot open '%s'", src);
        if (fstat(fd, &sb) < 0)
                return tt_error_errno(err, errno, "cannot stat '%s'", src);
        if (S_ISDIR(sb.st_mode))
                return tt_error_set(err, EISDIR, "'%s' is a directory", src);
        buf = malloc(tt_base64_encoded_len(CP_WRITE_CHUNK) + 1);
        if (buf == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        pg->total = S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
        h = agent_call(c, dom, "guest-file-open", json_pack("{s:s, s:s}", "path", dst, "mode", "w"),
                       err);
        if (h == NULL)
                return -1;
        handle = json_integer_value(h);
        while (!done || inflight > 0) {
                if (!done) {
                        /* Read raw bytes into the tail, then encode in place. */
                        size_t enc_max = tt_base64_encoded_len(CP_WRITE_CHUNK);
                        char *tail = buf + enc_max - CP_WRITE_CHUNK;
                        size_t len = 0, enc;

                        while (len < CP_WRITE_CHUNK) {
                                ssize_t n = read(fd, tail + len, CP_WRITE_CHUNK - len);

                                if (n < 0 && errno == EINTR)
                                        continue;
                                if (n < 0) {
                                        tt_error_errno(err, errno, "cannot read '%s'", src);
                                        goto close;
                                }
                                if (n == 0)
                                        break;
                                len += (size_t)n;
                        }
                        if (len < CP_WRITE_CHUNK)
                                done = true;
                        if (len > 0) {
                                enc = tt_base64_encoded_len(len);
                                memmove(buf + enc - len, tail, len);
                                tt_base64_encode(buf + enc - len, len, buf);
                                buf[enc] = '\0';
                                if (agent_send(c, dom, "guest-file-write",
                                               json_pack("{s:I, s:s, s:I}", "handle", handle,
                                                         "buf-b64", buf, "count", (json_int_t)len),
                                               err) < 0)
                                        goto close;
                                inflight++;
                                sent += len;
                        }
                }
                /* Keep one write in flight while the next chunk is read from disk. */
                if (inflight > 1 || (done && inflight > 0)) {
                        _cleanup_json_ json_t *r = agent_recv(c, "guest-file-write", err);

                        inflight--;
                        if (r == NULL)
                                goto close;
                        acked += (uint64_t)json_integer_value(json_object_get(r, "count"));
                        progress_draw(pg, acked, false);
                }
        }
        if (acked != sent || (S_ISREG(sb.st_mode) && sent != (uint64_t)sb.st_size)) {
                tt_error_set(err, EIO, "the guest took %llu of %llu bytes",
                             (unsigned long long)acked, (unsigned long long)sent);
                goto close;
        }
        {
                int64_t size = guest_size(c, dom, handle, err);

                if (size < 0)
                        goto close;
                if ((uint64_t)size != sent) {
                        tt_error_set(err, EIO, "'%s' is %lld bytes in the guest, %llu were sent",
                                     dst, (long long)size, (unsigned long long)sent);
                        goto close;
                }
        }
        rc = 0;
close:
        while (inflight-- > 0) {
                struct tt_error ignored = {0};
                json_decref(agent_recv(c, "guest-file-write", &ignored));
                tt_error_clear(&ignored);
        }
        {
                struct tt_error cerr = {0};
                json_t *r = agent_call(c, dom, "guest-file-close",
                                       json_pack("{s:I}", "handle", handle), &cerr);

                if (r == NULL && rc == 0) {
                        *err = cerr;
                        rc = -1;
                } else {
                        tt_error_clear(&cerr);
                }
                json_decref(r);
        }
        if (rc < 0) {
                /* Remove the partial file: guest-exec of rm, waited for briefly. */
                struct tt_error rerr = {0};
                _cleanup_json_ json_t *r = agent_call(
                        c, dom, "guest-exec",
                        json_pack("{s:s, s:[s, s]}", "path", "/bin/rm", "arg", "-f", dst), &rerr);
                bool removed = false;

                for (int i = 0; r && i < 50 && !removed; i++) {
                        _cleanup_json_ json_t *s = agent_call(
                                c, dom, "guest-exec-status",
                                json_pack("{s:O}", "pid", json_object_get(r, "pid")), &rerr);

                        if (s == NULL)
                                break;
                        removed = json_is_true(json_object_get(s, "exited")) &&
                                  json_integer_value(json_object_get(s, "exitcode")) == 0;
                        if (!json_is_true(json_object_get(s, "exited")))
                                usleep(20000);
                        else
                                break;
                }
                *left = !removed;
                tt_error_clear(&rerr);
        }
        *bytes = acked;
        return rc;
}

int cli_args_cp(json_t *args, const struct cli_opts *o)
{
        json_object_clear(args);
        (void)o;
        return 0;
}

int cli_run_cp(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        _cleanup_free_ char *sdom = NULL, *ddom = NULL, *local_dst = NULL;
        const char *spath = NULL, *dpath = NULL;
        bool sremote = split_remote(o->pos[0], &sdom, &spath);
        bool dremote = split_remote(o->pos[1], &ddom, &dpath);
        struct progress pg = {.on = cli_flag(o, "progress") && isatty(STDERR_FILENO)};
        struct tt_error err = {0};
        uint64_t bytes = 0;
        bool left = false; /* a partial file could not be removed from the guest */
        double t0;
        int rc;

        (void)args;
        if (sremote == dremote) {
                cli_error("exactly one of SRC and DST must be DOMAIN:PATH (got '%s' and '%s')",
                          o->pos[0], o->pos[1]);
                return EXIT_FAILURE;
        }
        if ((sremote && spath[0] == '\0') || (dremote && dpath[0] == '\0')) {
                cli_error("the guest path after DOMAIN: is empty");
                return EXIT_FAILURE;
        }
        pg.start = pg.last = t0 = now_seconds();
        if (sremote) {
                struct stat sb;
                const char *base = strrchr(spath, '/');

                /* Into a local folder: keep the guest file's name. */
                if (stat(o->pos[1], &sb) == 0 && S_ISDIR(sb.st_mode) &&
                    asprintf(&local_dst, "%s/%s", o->pos[1], base ? base + 1 : spath) < 0)
                        return EXIT_FAILURE;
                rc = copy_out(c, sdom, spath, local_dst ? local_dst : o->pos[1], &pg, &bytes,
                              &err);
        } else {
                rc = copy_in(c, ddom, o->pos[0], dpath, &pg, &bytes, &left, &err);
        }
        if (rc < 0) {
                const char *msg = err.msg ? err.msg : "out of memory";
                const char *agent = strstr(msg, "unable to execute QEMU agent command '");

                if (pg.on)
                        fputc('\n', stderr);
                /* One line that names both sides; the agent's own words, without libvirt's frame. */
                if (agent && strstr(agent, "': "))
                        msg = strstr(agent, "': ") + 3;
                cli_error("cannot copy '%s' to '%s': %s%s", o->pos[0], o->pos[1], msg,
                          left ? " (a partial file may be left in the guest)" : "");
                tt_error_clear(&err);
                return EXIT_FAILURE;
        }
        progress_draw(&pg, bytes, true);
        if (o->json) {
                json_t *j = json_pack("{s:I, s:f}", "bytes", (json_int_t)bytes, "seconds",
                                      now_seconds() - t0);

                cli_print_json(j);
                json_decref(j);
        }
        return EXIT_SUCCESS;
}
