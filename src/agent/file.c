/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-file-*: handles on guest files. qemu-ga wraps each in a stdio FILE; we keep the raw fd so
 * a large guest-file-read can be streamed onto the wire in chunks instead of held in memory.
 * Behaviour and texts follow qemu-ga 7.2 (reference/qga-commands.md rows 8-13); the number of
 * open handles is bounded by max-file-handles.
 */
#include "agent/agent.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_COUNT_DEFAULT 4096
#define READ_COUNT_MAX     (48 * 1024 * 1024)
/* Reads up to this size are answered from one buffer, in qemu's key order (count first). */
#define READ_BUFFERED_MAX  (1024 * 1024)
/*
 * Larger reads are streamed in chunks of this size (a multiple of 3: base64 joins cleanly). The
 * socket takes a few hundred KiB per write() whatever we offer, so bigger chunks save no system
 * calls; this size keeps a chunk and its base64 (one 256 KiB buffer) in the cache, which measured
 * as fast as 768 KiB and faster than 3 MiB.
 */
#define READ_CHUNK         (3 * 64 * 1024)
#define NEW_FILE_MODE      0666

struct agent_file {
        int64_t id;              /* handle number seen by the host */
        int fd;                  /* the open file */
        struct agent_file *next; /* list link, oldest first */
};

struct agent_files {
        struct agent_file *head; /* open handles */
        unsigned count;          /* entries in head */
};

/* fopen(3) mode strings and the open(2) flags qemu-ga maps them to. */
static const struct {
        const char *forms[3];
        int flags;
} open_modes[] = {
        {{"r"}, O_RDONLY},
        {{"rb"}, O_RDONLY},
        {{"w"}, O_WRONLY | O_CREAT | O_TRUNC},
        {{"wb"}, O_WRONLY | O_CREAT | O_TRUNC},
        {{"a"}, O_WRONLY | O_CREAT | O_APPEND},
        {{"ab"}, O_WRONLY | O_CREAT | O_APPEND},
        {{"r+"}, O_RDWR},
        {{"rb+", "r+b"}, O_RDWR},
        {{"w+"}, O_RDWR | O_CREAT | O_TRUNC},
        {{"wb+", "w+b"}, O_RDWR | O_CREAT | O_TRUNC},
        {{"a+"}, O_RDWR | O_CREAT | O_APPEND},
        {{"ab+", "a+b"}, O_RDWR | O_CREAT | O_APPEND},
};

static int mode_flags(const char *mode)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(open_modes); i++)
                for (size_t j = 0; j < TT_ARRAY_SIZE(open_modes[i].forms); j++)
                        if (open_modes[i].forms[j] && strcmp(open_modes[i].forms[j], mode) == 0)
                                return open_modes[i].flags;
        return -1;
}

static struct agent_file *file_find(struct agent_ctx *ctx, int64_t id, struct tt_error *err)
{
        for (struct agent_file *f = ctx->files ? ctx->files->head : NULL; f; f = f->next)
                if (f->id == id)
                        return f;
        tt_error_set(err, ENOENT, "handle '%" PRId64 "' has not been found", id);
        return NULL;
}

/*
 * qemu-ga's decoder: qbase64_decode() rejects bytes outside the alphabet, '=' and '\n', then
 * g_base64_decode() is lenient about the rest: it works in quanta of 4, drops an incomplete
 * last quantum, and '=' only shortens the quantum it ends (data may follow it).
 */
int agent_base64_decode(const char *in, unsigned char **out, size_t *out_len,
                        struct tt_error *err)
{
        static const char valid[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n";
        size_t len = strlen(in);
        unsigned char *buf, *o;
        unsigned char last0 = 0, last1 = 0;
        uint32_t v = 0;
        unsigned i = 0;

        if (strspn(in, valid) != len)
                return tt_error_set(err, EINVAL, "Base64 data contains invalid characters");
        buf = malloc(len / 4 * 3 + 1);
        if (buf == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        o = buf;
        for (size_t k = 0; k < len; k++) {
                unsigned char c = (unsigned char)in[k];
                unsigned rank;

                if (c >= 'A' && c <= 'Z')
                        rank = c - 'A';
                else if (c >= 'a' && c <= 'z')
                        rank = c - 'a' + 26;
                else if (c >= '0' && c <= '9')
                        rank = c - '0' + 52;
                else if (c == '+')
                        rank = 62;
                else if (c == '/')
                        rank = 63;
                else if (c == '=')
                        rank = 0;
                else
                        continue; /* '\n' */
                last1 = last0;
                last0 = c;
                v = v << 6 | rank;
                if (++i == 4) {
                        *o++ = (unsigned char)(v >> 16);
                        if (last1 != '=')
                                *o++ = (unsigned char)(v >> 8);
                        if (last0 != '=')
                                *o++ = (unsigned char)v;
                        i = 0;
                }
        }
        *o = '\0';
        *out = buf;
        *out_len = (size_t)(o - buf);
        return 0;
}

AGENT_HANDLER(agent_cmd_file_open)
{
        struct agent_files *files = ctx->files;
        const char *path = json_string_value(json_object_get(args, "path"));
        json_t *jmode = json_object_get(args, "mode");
        const char *mode = jmode ? json_string_value(jmode) : "r";
        _cleanup_close_ int fd = -1;
        struct agent_file *f;
        unsigned limit = ctx->cfg->max_file_handles;
        int64_t handle;
        int flags;

        flags = mode_flags(mode);
        if (flags < 0)
                return tt_error_set(err, EINVAL, "invalid file open mode '%s'", mode);
        if (limit && files->count >= limit)
                return tt_error_set(err, EMFILE,
                                    "too many open files: limit is %u (max-file-handles)", limit);
        flags |= O_NOCTTY | O_NONBLOCK | O_CLOEXEC;
        /*
         * As qemu-ga: create exclusively, so a new file gets mode 0666 whatever the umask; a file
         * that already exists is opened without O_CREAT and keeps its mode.
         */
        fd = open(path, flags | ((flags & O_CREAT) ? O_EXCL : 0), 0);
        if (fd < 0 && errno == EEXIST) {
                flags &= ~O_CREAT;
                fd = open(path, flags);
        }
        if (fd < 0)
                return tt_error_errno(err, errno, "failed to open file '%s' (mode: '%s')", path,
                                      mode);
        if ((flags & O_CREAT) && fchmod(fd, NEW_FILE_MODE) < 0) {
                int e = errno;

                unlink(path);
                return tt_error_errno(err, e,
                                      "failed to set permission 0%03o on new file '%s' (mode: '%s')",
                                      NEW_FILE_MODE, path, mode);
        }
        if (agent_state_next_handle(ctx, &handle, err) < 0)
                return -1;
        f = calloc(1, sizeof(*f));
        if (f == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        f->id = handle;
        f->fd = steal_fd(&fd);
        /* Append, so a walk of the list meets handles in the order they were opened. */
        struct agent_file **tail = &files->head;
        while (*tail)
                tail = &(*tail)->next;
        *tail = f;
        files->count++;
        tt_debug("guest-file-open '%s' mode '%s': handle %" PRId64, path, mode, handle);
        *ret = json_integer(handle);
        return 0;
}

AGENT_HANDLER(agent_cmd_file_close)
{
        int64_t id = json_integer_value(json_object_get(args, "handle"));
        struct agent_file *f = file_find(ctx, id, err), **pp;
        int r;

        if (f == NULL)
                return -1;
        for (pp = &ctx->files->head; *pp != f; pp = &(*pp)->next)
                ;
        *pp = f->next;
        ctx->files->count--;
        /* The descriptor is gone even when close() reports an error, so is the handle. */
        r = close(f->fd);
        free(f);
        if (r < 0 && errno != EINTR)
                return tt_error_errno(err, errno, "failed to close handle");
        return 0;
}

/*
 * Read up to want bytes, retrying short reads as fread() does. Returns the bytes read; *eof is
 * set when the file ended first, *error to an errno when a read failed (EAGAIN included: the
 * fd is non-blocking, as in qemu-ga, so a FIFO never stalls the agent).
 */
static size_t read_full(int fd, unsigned char *buf, size_t want, bool *eof, int *error)
{
        size_t got = 0;

        while (got < want) {
                ssize_t n = read(fd, buf + got, want - got);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        *error = errno;
                        break;
                }
                if (n == 0) {
                        *eof = true;
                        break;
                }
                got += (size_t)n;
        }
        return got;
}

/*
 * One buffer holds both a read and its base64: the data is read into the last bytes and encoded
 * in place from the front (tt_base64_encode allows that), so the text can go to the wire in one
 * write with no copy. Returns the buffer of tt_base64_encoded_len(cap) bytes; *data is where the
 * file bytes go.
 */
static char *text_buffer(size_t cap, unsigned char **data)
{
        size_t room = tt_base64_encoded_len(cap);
        char *text = malloc(room ? room : 1);

        if (text)
                *data = (unsigned char *)text + room - cap;
        return text;
}

/* A whole reply in qemu-ga's key order: count, buf-b64 (text, no escaping needed), eof. */
static int reply_counted(struct agent_ctx *ctx, const char *text, size_t text_len, size_t count,
                         bool eof, struct tt_error *err)
{
        struct wire_out *out;
        char head[64];

        if (agent_reply_begin(ctx) < 0)
                return tt_error_set(err, EIO, "failed to write reply");
        out = agent_reply_out(ctx);
        snprintf(head, sizeof(head), "{\"count\": %zu, \"buf-b64\": \"", count);
        wire_out_puts(out, head);
        wire_out_write(out, text, text_len);
        wire_out_puts(out, eof ? "\", \"eof\": true}" : "\", \"eof\": false}");
        return 0;
}

/* Reads up to READ_BUFFERED_MAX: count comes first on the wire, so read all, then reply. */
static int read_buffered(struct agent_ctx *ctx, int fd, size_t count, struct tt_error *err)
{
        unsigned char *data;
        _cleanup_free_ char *text = text_buffer(count, &data);
        bool eof = false;
        int error = 0;
        size_t n;

        if (text == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        n = read_full(fd, data, count, &eof, &error);
        /* qemu-ga reports any read error, even after some data (the data is lost there too). */
        if (error)
                return tt_error_errno(err, error, "failed to read file");
        return reply_counted(ctx, text, tt_base64_encode(data, n, text), n, eof, err);
}

/*
 * A large read goes onto the wire while it is read: "buf-b64" comes first and "count"/"eof"
 * after the data, so no more than one chunk is ever held. Once data is on the wire a read error
 * cannot become an error reply any more; the reply then ends with what was read.
 */
static int read_streamed(struct agent_ctx *ctx, int fd, size_t count, struct tt_error *err)
{
        unsigned char *data;
        _cleanup_free_ char *text = text_buffer(READ_CHUNK, &data);
        struct wire_out *out;
        size_t total = 0, n;
        bool eof = false;
        int error = 0;
        char tail[96];

        if (text == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        n = read_full(fd, data, count < READ_CHUNK ? count : READ_CHUNK, &eof, &error);
        if (error && n == 0)
                return tt_error_errno(err, error, "failed to read file");
        /* Nothing to stream: answer in qemu's key order like a small read. */
        if (n == 0)
                return reply_counted(ctx, "", 0, 0, eof, err);
        if (agent_reply_begin(ctx) < 0)
                return tt_error_set(err, EIO, "failed to write reply");
        out = agent_reply_out(ctx);
        wire_out_puts(out, "{\"buf-b64\": \"");
        for (;;) {
                /*
                 * Big writes bypass wire_out's buffer: no copy. If the peer is gone the text is
                 * dropped, but the whole count is still read, so the file position ends where
                 * qemu-ga's would.
                 */
                wire_out_write(out, text, tt_base64_encode(data, n, text));
                total += n;
                if (eof || error || total == count)
                        break;
                n = read_full(fd, data, count - total < READ_CHUNK ? count - total : READ_CHUNK,
                              &eof, &error);
                if (n == 0)
                        break;
        }
        if (error)
                tt_warn("guest-file-read: %s after %zu bytes; replying with those",
                        strerror(error), total);
        snprintf(tail, sizeof(tail), "\", \"count\": %zu, \"eof\": %s}", total,
                 eof ? "true" : "false");
        wire_out_puts(out, tail);
        return 0;
}

AGENT_HANDLER(agent_cmd_file_read)
{
        int64_t id = json_integer_value(json_object_get(args, "handle"));
        json_t *jcount = json_object_get(args, "count");
        int64_t count = jcount ? json_integer_value(jcount) : READ_COUNT_DEFAULT;
        struct agent_file *f = file_find(ctx, id, err);

        if (f == NULL)
                return -1;
        if (count < 0 || count > READ_COUNT_MAX)
                return tt_error_set(err, EINVAL, "value '%" PRId64 "' is invalid for argument count",
                                    count);
        /* Both paths write the reply themselves (*ret stays NULL): no JSON string is built. */
        if (count <= READ_BUFFERED_MAX)
                return read_buffered(ctx, f->fd, (size_t)count, err);
        return read_streamed(ctx, f->fd, (size_t)count, err);
}

AGENT_HANDLER(agent_cmd_file_write)
{
        int64_t id = json_integer_value(json_object_get(args, "handle"));
        const char *b64 = json_string_value(json_object_get(args, "buf-b64"));
        json_t *jcount = json_object_get(args, "count");
        struct agent_file *f = file_find(ctx, id, err);
        _cleanup_free_ unsigned char *buf = NULL;
        size_t len, done = 0;
        int64_t count;

        if (f == NULL)
                return -1;
        if (agent_base64_decode(b64, &buf, &len, err) < 0)
                return -1;
        count = jcount ? json_integer_value(jcount) : (int64_t)len;
        if (count < 0 || (uint64_t)count > len)
                return tt_error_set(err, EINVAL, "value '%" PRId64 "' is invalid for argument count",
                                    count);
        while (done < (size_t)count) {
                ssize_t n = write(f->fd, buf + done, (size_t)count - done);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return tt_error_errno(err, errno, "failed to write to file");
                }
                done += (size_t)n;
        }
        /* qemu-ga clears the stream's EOF flag after every call, so a write never reports it. */
        *ret = json_pack("{s:I, s:b}", "count", (json_int_t)done, "eof", 0);
        return *ret ? 0 : tt_error_set(err, ENOMEM, "out of memory");
}

AGENT_HANDLER(agent_cmd_file_seek)
{
        int64_t id = json_integer_value(json_object_get(args, "handle"));
        int64_t offset = json_integer_value(json_object_get(args, "offset"));
        json_t *jwhence = json_object_get(args, "whence");
        struct agent_file *f = file_find(ctx, id, err);
        int whence;
        off_t pos;

        if (f == NULL)
                return -1;
        if (json_is_string(jwhence)) {
                const char *w = json_string_value(jwhence);

                whence = strcmp(w, "set") == 0 ? SEEK_SET : strcmp(w, "cur") == 0 ? SEEK_CUR
                                                                                : SEEK_END;
        } else {
                int64_t code = json_integer_value(jwhence);

                if (code < 0 || code > 2)
                        return tt_error_set(err, EINVAL, "invalid whence code %" PRId64, code);
                /* QGA_SEEK_SET/CUR/END are 0/1/2 on the wire, the same as Linux's SEEK_*. */
                whence = (int)code;
        }
        pos = lseek(f->fd, (off_t)offset, whence);
        if (pos < 0)
                return tt_error_errno(err, errno, "failed to seek file");
        /* Key order as qemu-ga prints it. fseek() clears EOF, so eof is always false. */
        *ret = json_pack("{s:b, s:I}", "eof", 0, "position", (json_int_t)pos);
        return *ret ? 0 : tt_error_set(err, ENOMEM, "out of memory");
}

AGENT_HANDLER(agent_cmd_file_flush)
{
        int64_t id = json_integer_value(json_object_get(args, "handle"));

        /*
         * qemu-ga's fflush() hands stdio's buffer to the kernel; our writes go to the kernel at
         * once, so there is nothing left to hand over (and, like qemu-ga, no fsync).
         */
        if (file_find(ctx, id, err) == NULL)
                return -1;
        return 0;
}

int agent_files_init(struct agent_ctx *ctx, struct tt_error *err)
{
        ctx->files = calloc(1, sizeof(*ctx->files));
        if (ctx->files == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return 0;
}

void agent_files_free(struct agent_ctx *ctx)
{
        struct agent_file *f, *next;

        if (ctx->files == NULL)
                return;
        for (f = ctx->files->head; f; f = next) {
                next = f->next;
                close(f->fd);
                free(f);
        }
        free(ctx->files);
        ctx->files = NULL;
}
