/* SPDX-License-Identifier: GPL-2.0-or-later */
/* guest-file-* handlers, qemu-ga's base64 decoding and the persistent handle counter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/agent.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
        char dir[64];
        struct agent_config cfg;
        struct agent_ctx ctx;
        char *wire;      /* bytes the handlers wrote to ctx.out (NUL-terminated) */
        size_t wire_len; /* of wire */
};

/* ctx.out's sink: keep everything, as the host side of the channel would receive it. */
static int capture(void *opaque, const void *buf, size_t len)
{
        struct fixture *f = opaque;

        f->wire = realloc(f->wire, f->wire_len + len + 1);
        assert_non_null(f->wire);
        memcpy(f->wire + f->wire_len, buf, len);
        f->wire_len += len;
        f->wire[f->wire_len] = '\0';
        return 0;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct tt_error err = {0};

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/tether-unit-file-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->cfg.statedir = f->dir;
        f->cfg.max_file_handles = 2;
        f->ctx.cfg = &f->cfg;
        f->ctx.out = wire_out_new(capture, f);
        assert_non_null(f->ctx.out);
        assert_int_equal(agent_files_init(&f->ctx, &err), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[128];

        agent_files_free(&f->ctx);
        wire_out_free(f->ctx.out);
        free(f->wire);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void check_decode(const char *in, const char *want, size_t want_len)
{
        unsigned char *out = NULL;
        size_t len = 0;
        struct tt_error err = {0};

        assert_int_equal(agent_base64_decode(in, &out, &len, &err), 0);
        assert_int_equal(len, want_len);
        assert_memory_equal(out, want, want_len);
        free(out);
}

static void test_base64_like_qemu(void **state)
{
        struct tt_error err = {0};
        unsigned char *out = NULL;
        size_t len;

        check_decode("QUJD", "ABC", 3);
        check_decode("QU\nJD", "ABC", 3);
        check_decode("QUJ", "", 0);           /* incomplete quantum dropped */
        check_decode("QQ=", "", 0);
        check_decode("QQ==", "A", 1);
        check_decode("QUI=", "AB", 2);
        check_decode("QUJDRA==QUJD", "ABCDABC", 7); /* data after padding is decoded */
        check_decode("", "", 0);
        assert_int_equal(agent_base64_decode("QU JD", &out, &len, &err), -1);
        assert_string_equal(err.msg, "Base64 data contains invalid characters");
        tt_error_clear(&err);
        assert_int_equal(agent_base64_decode("!!!!", &out, &len, &err), -1);
        tt_error_clear(&err);
}

static void test_handle_counter(void **state)
{
        struct fixture *f = *state;
        struct tt_error err = {0};
        char path[128], *text = NULL;
        size_t len;
        int64_t h;

        assert_int_equal(agent_state_next_handle(&f->ctx, &h, &err), 0);
        assert_int_equal(h, 1000);
        assert_int_equal(agent_state_next_handle(&f->ctx, &h, &err), 0);
        assert_int_equal(h, 1001);
        snprintf(path, sizeof(path), "%s/qga.state", f->dir);
        assert_int_equal(tt_read_file(path, 4096, &text, &len, &err), 0);
        assert_string_equal(text, "[global]\nfd_counter=1002\n");
        free(text);

        /* A counter written by qemu-ga (GKeyFile may add blank lines and spaces). */
        assert_int_equal(tt_write_file_atomic(path, "\n[global]\nfd_counter = 5000\n", 28, 0644, &err), 0);
        assert_int_equal(agent_state_next_handle(&f->ctx, &h, &err), 0);
        assert_int_equal(h, 5000);
        /* Garbage starts again at 1000 rather than failing every open. */
        assert_int_equal(tt_write_file_atomic(path, "[global]\nfd_counter=x\n", 22, 0644, &err), 0);
        assert_int_equal(agent_state_next_handle(&f->ctx, &h, &err), 0);
        assert_int_equal(h, 1000);
}

static json_t *call(struct agent_ctx *ctx, agent_handler_fn fn, const char *args_text,
                    char **errmsg)
{
        json_t *args = json_loads(args_text, 0, NULL), *ret = NULL;
        struct tt_error err = {0};
        int r;

        assert_non_null(args);
        r = fn(ctx, args, &ret, &err);
        json_decref(args);
        *errmsg = r < 0 ? err.msg : NULL;
        if (r == 0)
                assert_null(err.msg);
        return ret;
}

/*
 * guest-file-read writes its reply itself, as dispatch would frame it (no id): returns the
 * reply's bytes, or NULL with *errmsg set when the handler failed before writing anything.
 */
static const char *read_reply(struct fixture *f, const char *args_text, char **errmsg)
{
        json_t *r;

        f->wire_len = 0;
        free(f->wire);
        f->wire = NULL;
        f->ctx.reply_started = false;
        r = call(&f->ctx, agent_cmd_file_read, args_text, errmsg);
        assert_null(r);
        if (!f->ctx.reply_started) {
                assert_null(f->wire);
                return NULL;
        }
        assert_null(*errmsg);
        assert_int_equal(wire_write_return_end(f->ctx.out, NULL), 0);
        assert_int_equal(wire_out_flush(f->ctx.out), 0);
        f->ctx.reply_started = false;
        return f->wire;
}

static int64_t open_file(struct fixture *f, const char *path, const char *mode)
{
        char args[256], *msg;
        json_t *r;
        int64_t h;

        snprintf(args, sizeof(args), "{\"path\": \"%s\", \"mode\": \"%s\"}", path, mode);
        r = call(&f->ctx, agent_cmd_file_open, args, &msg);
        assert_true(json_is_integer(r));
        h = json_integer_value(r);
        json_decref(r);
        return h;
}

static void test_round_trip(void **state)
{
        struct fixture *f = *state;
        char args[512], path[128], *msg;
        json_t *r;
        int64_t h;

        snprintf(path, sizeof(path), "%s/data", f->dir);
        snprintf(args, sizeof(args), "{\"path\": \"%s\", \"mode\": \"w+\"}", path);
        r = call(&f->ctx, agent_cmd_file_open, args, &msg);
        assert_true(json_is_integer(r));
        h = json_integer_value(r);
        json_decref(r);

        snprintf(args, sizeof(args), "{\"handle\": %lld, \"buf-b64\": \"aGVsbG8=\"}", (long long)h);
        r = call(&f->ctx, agent_cmd_file_write, args, &msg);
        assert_int_equal(json_integer_value(json_object_get(r, "count")), 5);
        json_decref(r);

        snprintf(args, sizeof(args), "{\"handle\": %lld, \"offset\": 1, \"whence\": \"set\"}", (long long)h);
        r = call(&f->ctx, agent_cmd_file_seek, args, &msg);
        assert_int_equal(json_integer_value(json_object_get(r, "position")), 1);
        json_decref(r);

        snprintf(args, sizeof(args), "{\"handle\": %lld, \"count\": 10}", (long long)h);
        assert_string_equal(read_reply(f, args, &msg),
                            "{\"return\": {\"count\": 4, \"buf-b64\": \"ZWxsbw==\", \"eof\": true}}\n");
        assert_string_equal(read_reply(f, args, &msg),
                            "{\"return\": {\"count\": 0, \"buf-b64\": \"\", \"eof\": true}}\n");

        snprintf(args, sizeof(args), "{\"handle\": %lld, \"count\": -1}", (long long)h);
        assert_null(read_reply(f, args, &msg));
        assert_string_equal(msg, "value '-1' is invalid for argument count");
        free(msg);

        snprintf(args, sizeof(args), "{\"handle\": %lld}", (long long)h);
        assert_null(call(&f->ctx, agent_cmd_file_close, args, &msg));
        assert_null(msg);
        assert_null(call(&f->ctx, agent_cmd_file_close, args, &msg));
        assert_string_equal(msg, "handle '1000' has not been found");
        free(msg);
}

/* The base64 of len bytes of data, NUL-terminated (malloc'd). */
static char *b64_of(const unsigned char *data, size_t len)
{
        char *text = malloc(tt_base64_encoded_len(len) + 1);

        assert_non_null(text);
        text[tt_base64_encode(data, len, text)] = '\0';
        return text;
}

/*
 * Reads up to 1 MiB put "count" first (qemu-ga's order); larger ones stream "buf-b64" first in
 * chunks. Both must carry the file's exact bytes, whatever the sizes of the pieces.
 */
static void test_read_sizes(void **state)
{
        static const size_t sizes[] = {1, 2, 3, 4, 5, 1048575, 1048576, 1048577, 3 * 65536 + 1,
                                       5 * 196608 + 7};
        struct fixture *f = *state;
        size_t file_len = 3 * 1024 * 1024 + 5, off = 0;
        unsigned char *data = malloc(file_len);
        char path[128], args[128], *msg;
        int64_t h;

        assert_non_null(data);
        for (size_t i = 0; i < file_len; i++)
                data[i] = (unsigned char)(i * 2654435761u >> 13);
        snprintf(path, sizeof(path), "%s/big", f->dir);
        assert_int_equal(tt_write_file_atomic(path, (const char *)data, file_len, 0644,
                                              &(struct tt_error){0}), 0);
        h = open_file(f, path, "r");
        for (size_t i = 0; off < file_len; i++) {
                size_t want = sizes[i % TT_ARRAY_SIZE(sizes)];
                size_t got = want < file_len - off ? want : file_len - off;
                bool eof = want > got;
                _cleanup_free_ char *b64 = b64_of(data + off, got);
                size_t cap = strlen(b64) + 128;
                _cleanup_free_ char *expect = malloc(cap);
                const char *reply;

                assert_non_null(expect);
                if (want <= 1048576)
                        snprintf(expect, cap,
                                 "{\"return\": {\"count\": %zu, \"buf-b64\": \"%s\", \"eof\": %s}}\n",
                                 got, b64, eof ? "true" : "false");
                else
                        snprintf(expect, cap,
                                 "{\"return\": {\"buf-b64\": \"%s\", \"count\": %zu, \"eof\": %s}}\n",
                                 b64, got, eof ? "true" : "false");
                snprintf(args, sizeof(args), "{\"handle\": %lld, \"count\": %zu}", (long long)h,
                         want);
                reply = read_reply(f, args, &msg);
                assert_non_null(reply);
                assert_int_equal(f->wire_len, strlen(expect));
                assert_string_equal(reply, expect);
                off += got;
        }
        /* At the end: a streamed read that finds nothing answers in the small reads' order. */
        snprintf(args, sizeof(args), "{\"handle\": %lld, \"count\": 2000000}", (long long)h);
        assert_string_equal(read_reply(f, args, &msg),
                            "{\"return\": {\"count\": 0, \"buf-b64\": \"\", \"eof\": true}}\n");
        free(data);
}

/* A read error is an error reply, with qemu-ga's text, for both sizes of read. */
static void test_read_error(void **state)
{
        struct fixture *f = *state;
        char *msg;

        assert_int_equal(open_file(f, f->dir, "r"), 1000); /* a directory: read() says EISDIR */
        assert_null(read_reply(f, "{\"handle\": 1000, \"count\": 10}", &msg));
        assert_string_equal(msg, "failed to read file: Is a directory");
        free(msg);
        assert_null(read_reply(f, "{\"handle\": 1000, \"count\": 2000000}", &msg));
        assert_string_equal(msg, "failed to read file: Is a directory");
        free(msg);
}

static void test_limit(void **state)
{
        struct fixture *f = *state;
        char args[256], *msg;
        json_t *r;

        snprintf(args, sizeof(args), "{\"path\": \"%s\"}", f->dir);
        for (int i = 0; i < 2; i++) {
                r = call(&f->ctx, agent_cmd_file_open, args, &msg);
                assert_true(json_is_integer(r));
                json_decref(r);
        }
        assert_null(call(&f->ctx, agent_cmd_file_open, args, &msg));
        assert_string_equal(msg, "too many open files: limit is 2 (max-file-handles)");
        free(msg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_base64_like_qemu),
                cmocka_unit_test_setup_teardown(test_handle_counter, setup, teardown),
                cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_sizes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_error, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
