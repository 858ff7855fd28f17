/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for wire: the input is split in chunks (sizes taken from its first bytes)
 * and fed to a splitter with small limits; every message goes through the request check, an
 * argument check against a spec with every type, and the writer. Invariants checked on the
 * way: replies are ASCII, each one ends with a newline, the splitter never holds much more
 * than its size limit, and a reset splitter holds nothing.
 */
#include <string.h>

#include "fuzz.h"

#include "wire/wire.h"

#define FUZZ_MAX_SIZE 4096

static const char *const whence_values[] = {"set", "cur", "end", NULL};
static const char *const capture_values[] = {"none", "stdout", "separated", NULL};
static const struct wire_arg item_spec[] = {
        {.name = "id", .type = WIRE_T_INT, .required = true},
        {.name = "on", .type = WIRE_T_BOOL},
        {NULL},
};
static const struct wire_arg spec[] = {
        {.name = "path", .type = WIRE_T_STRING},
        {.name = "count", .type = WIRE_T_INT},
        {.name = "size", .type = WIRE_T_UINT64},
        {.name = "ratio", .type = WIRE_T_NUMBER},
        {.name = "arg", .type = WIRE_T_ARRAY, .elem = WIRE_T_STRING},
        {.name = "items", .type = WIRE_T_ARRAY, .elem = WIRE_T_OBJECT, .members = item_spec},
        {.name = "obj", .type = WIRE_T_OBJECT, .members = item_spec},
        {.name = "free", .type = WIRE_T_OBJECT},
        {.name = "mode", .type = WIRE_T_ENUM, .enum_values = whence_values},
        {.name = "whence", .type = WIRE_T_ALT_INT_ENUM, .enum_values = whence_values,
         .type_name = "GuestFileWhence"},
        {.name = "capture-output", .type = WIRE_T_ALT_BOOL_ENUM, .enum_values = capture_values,
         .type_name = "GuestExecCaptureOutput"},
        {.name = "any", .type = WIRE_T_ANY},
        {NULL},
};

struct sink_state {
        size_t line_len;   /* bytes since the last newline */
};

static int check_sink(void *opaque, const void *buf, size_t len)
{
        struct sink_state *st = opaque;
        const unsigned char *p = buf;

        for (size_t i = 0; i < len; i++) {
                if (p[i] >= 0x80 || (p[i] < 0x20 && p[i] != '\n'))
                        abort(); /* qemu's writer output is printable ASCII */
                st->line_len = p[i] == '\n' ? 0 : st->line_len + 1;
        }
        return 0;
}

struct ctx {
        struct wire_out *out;
        struct wire_splitter *s;
};

static int on_message(void *opaque, json_t *msg, const struct tt_error *err)
{
        struct ctx *c = opaque;
        struct wire_request req;
        struct tt_error e = {0};

        if (wire_splitter_pending(c->s) > FUZZ_MAX_SIZE + 64)
                abort();
        if (msg == NULL) {
                if (err == NULL || err->msg == NULL)
                        abort();
                wire_write_error(c->out, WIRE_CLASS_GENERIC, err->msg, NULL);
                return 0;
        }
        if (err != NULL)
                abort();
        if (wire_request_parse(msg, &req, &e) < 0) {
                wire_write_error(c->out, WIRE_CLASS_GENERIC, e.msg, req.id);
        } else if (wire_args_check(spec, req.arguments, &e) < 0) {
                wire_write_error(c->out, WIRE_CLASS_GENERIC, e.msg, req.id);
        } else {
                /* echo the whole message, once plainly and once streamed */
                wire_write_return(c->out, msg, req.id);
                wire_write_return_begin(c->out);
                wire_write_base64(c->out, req.execute, strlen(req.execute));
                wire_write_return_end(c->out, req.id);
        }
        char *text = wire_dumps(msg);
        free(text);
        tt_error_clear(&e);
        json_decref(msg);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct sink_state st = {0};
        struct ctx c;
        size_t chunk = 1, off = 0;

        if (size > 0) {
                chunk = 1 + data[0] % 64; /* the first byte picks the read size */
                data++;
                size--;
        }
        c.out = wire_out_new(check_sink, &st);
        c.s = wire_splitter_new();
        if (c.out == NULL || c.s == NULL)
                abort();
        wire_splitter_set_limits(c.s, FUZZ_MAX_SIZE, 512, 16);
        while (off < size) {
                size_t n = size - off < chunk ? size - off : chunk;

                if (wire_splitter_feed(c.s, data + off, n, on_message, &c) < 0)
                        abort();
                off += n;
        }
        wire_splitter_reset(c.s);
        if (wire_splitter_pending(c.s) != 0)
                abort();
        wire_out_flush(c.out);
        if (st.line_len != 0)
                abort(); /* every reply ends with a newline */
        wire_splitter_free(c.s);
        wire_out_free(c.out);
        return 0;
}
