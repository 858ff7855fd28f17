/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Output side of wire: a small buffered writer and a serialiser that produces the bytes qemu's
 * json-writer produces (", " / ": " separators, ASCII-only escapes, %.17g reals).
 *
 * Known difference: members of an object come out in jansson's insertion order, while qemu
 * prints a QDict in hash-bucket order. The reply envelope itself ({"return": .., "id": ..} and
 * {"id": .., "error": {"class": .., "desc": ..}}) is written here in qemu-ga's exact order.
 */
#include "wire/wire.h"
#include "wire/wire-int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/base64.h"

#define OUT_BUF_SIZE (64 * 1024)

struct wire_out {
        wire_sink_fn sink;     /* where flushed bytes go */
        void *opaque;          /* sink's argument */
        bool dead;             /* the sink failed once: discard everything after */
        size_t len;            /* bytes in buf */
        unsigned char buf[OUT_BUF_SIZE];
};

void wire_out_reset(struct wire_out *out)
{
        out->dead = false;
        out->len = 0;
}

struct wire_out *wire_out_new(wire_sink_fn sink, void *opaque)
{
        struct wire_out *out = malloc(sizeof(*out));

        if (out == NULL)
                return NULL;
        out->sink = sink;
        out->opaque = opaque;
        out->dead = false;
        out->len = 0;
        return out;
}

void wire_out_free(struct wire_out *out)
{
        free(out);
}

static int sink_write(struct wire_out *out, const void *buf, size_t len)
{
        if (out->dead)
                return -1;
        if (len == 0)
                return 0;
        if (out->sink(out->opaque, buf, len) < 0) {
                out->dead = true;
                return -1;
        }
        return 0;
}

int wire_out_flush(struct wire_out *out)
{
        size_t len = out->len;

        out->len = 0;
        if (out->dead)
                return -1;
        return sink_write(out, out->buf, len);
}

int wire_out_write(struct wire_out *out, const void *buf, size_t len)
{
        if (out->dead)
                return -1;
        if (len <= sizeof(out->buf) - out->len) {
                memcpy(out->buf + out->len, buf, len);
                out->len += len;
                return 0;
        }
        if (wire_out_flush(out) < 0)
                return -1;
        /* Big writes (file contents) go straight through instead of being copied again. */
        if (len >= sizeof(out->buf) / 2)
                return sink_write(out, buf, len);
        memcpy(out->buf, buf, len);
        out->len = len;
        return 0;
}

int wire_out_puts(struct wire_out *out, const char *s)
{
        return wire_out_write(out, s, strlen(s));
}

size_t wire_out_pending(const struct wire_out *out)
{
        return out->len;
}

/* Room for at least n more bytes in buf (n is small). */
static int out_reserve(struct wire_out *out, size_t n)
{
        if (out->dead)
                return -1;
        if (sizeof(out->buf) - out->len < n)
                return wire_out_flush(out);
        return 0;
}

static const char hexdigits[] = "0123456789ABCDEF";

static void put_u16(unsigned char *p, unsigned v)
{
        p[0] = '\\';
        p[1] = 'u';
        p[2] = hexdigits[(v >> 12) & 0xF];
        p[3] = hexdigits[(v >> 8) & 0xF];
        p[4] = hexdigits[(v >> 4) & 0xF];
        p[5] = hexdigits[v & 0xF];
}

/* Bytes that go out as they are: printable ASCII other than '"' and '\\'. */
static inline bool is_plain(unsigned char c)
{
        return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
}

int wire_dump_string(struct wire_out *out, const char *str, size_t len)
{
        const unsigned char *s = (const unsigned char *)str;
        size_t i = 0;

        if (out_reserve(out, 1) < 0)
                return -1;
        out->buf[out->len++] = '"';
        while (i < len) {
                size_t run = i;

                while (run < len && is_plain(s[run]))
                        run++;
                if (run > i) {
                        if (wire_out_write(out, s + i, run - i) < 0)
                                return -1;
                        i = run;
                        continue;
                }
                /* One escaped character: at most 12 bytes (a surrogate pair). */
                if (out_reserve(out, 12) < 0)
                        return -1;
                unsigned char *p = out->buf + out->len;
                unsigned char c = s[i];
                const char *short_esc = NULL;

                switch (c) {
                case '"': short_esc = "\\\""; break;
                case '\\': short_esc = "\\\\"; break;
                case '\b': short_esc = "\\b"; break;
                case '\f': short_esc = "\\f"; break;
                case '\n': short_esc = "\\n"; break;
                case '\r': short_esc = "\\r"; break;
                case '\t': short_esc = "\\t"; break;
                default: break;
                }
                if (short_esc) {
                        p[0] = short_esc[0];
                        p[1] = short_esc[1];
                        out->len += 2;
                        i++;
                        continue;
                }
                size_t seq;
                int cp;

                if (c == 0) {
                        /* A real NUL: qemu holds it as "\xC0\x80" and prints \u0000. */
                        cp = 0;
                        seq = 1;
                } else {
                        cp = wire_utf8_decode(s + i, len - i, &seq);
                }
                if (cp < 0)
                        cp = 0xFFFD;
                if (cp > 0xFFFF) {
                        put_u16(p, 0xD800 + ((unsigned)(cp - 0x10000) >> 10));
                        put_u16(p + 6, 0xDC00 + ((unsigned)(cp - 0x10000) & 0x3FF));
                        out->len += 12;
                } else {
                        put_u16(p, (unsigned)cp);
                        out->len += 6;
                }
                i += seq;
        }
        if (out_reserve(out, 1) < 0)
                return -1;
        out->buf[out->len++] = '"';
        return 0;
}

static int dump_value(struct wire_out *out, const json_t *v)
{
        char num[64];
        int n;

        switch (json_typeof(v)) {
        case JSON_OBJECT: {
                void *it = json_object_iter((json_t *)v);
                bool first = true;

                if (wire_out_write(out, "{", 1) < 0)
                        return -1;
                for (; it; it = json_object_iter_next((json_t *)v, it)) {
                        if (!first && wire_out_write(out, ", ", 2) < 0)
                                return -1;
                        first = false;
                        if (wire_dump_string(out, json_object_iter_key(it),
                                             json_object_iter_key_len(it)) < 0 ||
                            wire_out_write(out, ": ", 2) < 0 ||
                            dump_value(out, json_object_iter_value(it)) < 0)
                                return -1;
                }
                return wire_out_write(out, "}", 1);
        }
        case JSON_ARRAY: {
                size_t count = json_array_size(v);

                if (wire_out_write(out, "[", 1) < 0)
                        return -1;
                for (size_t i = 0; i < count; i++) {
                        if (i && wire_out_write(out, ", ", 2) < 0)
                                return -1;
                        if (dump_value(out, json_array_get(v, i)) < 0)
                                return -1;
                }
                return wire_out_write(out, "]", 1);
        }
        case JSON_STRING:
                return wire_dump_string(out, json_string_value(v), json_string_length(v));
        case JSON_INTEGER:
                n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                return wire_out_write(out, num, (size_t)n);
        case JSON_REAL:
                n = snprintf(num, sizeof(num), "%.17g", json_real_value(v));
                return wire_out_write(out, num, (size_t)n);
        case JSON_TRUE:
                return wire_out_write(out, "true", 4);
        case JSON_FALSE:
                return wire_out_write(out, "false", 5);
        case JSON_NULL:
        default:
                return wire_out_write(out, "null", 4);
        }
}

int wire_dump(struct wire_out *out, const json_t *v)
{
        if (v == NULL)
                return wire_out_write(out, "null", 4);
        return dump_value(out, v);
}

struct membuf {
        char *data;  /* malloc'd, grows */
        size_t len;  /* bytes used */
        size_t cap;  /* bytes allocated */
        bool failed; /* out of memory once */
};

static int membuf_sink(void *opaque, const void *buf, size_t len)
{
        struct membuf *m = opaque;

        if (m->len + len + 1 > m->cap) {
                size_t cap = m->cap ? m->cap : 256;

                while (cap < m->len + len + 1)
                        cap *= 2;
                char *p = realloc(m->data, cap);
                if (p == NULL) {
                        m->failed = true;
                        return -1;
                }
                m->data = p;
                m->cap = cap;
        }
        memcpy(m->data + m->len, buf, len);
        m->len += len;
        return 0;
}

char *wire_dumps(const json_t *v)
{
        struct membuf m = {0};
        struct wire_out *out = wire_out_new(membuf_sink, &m);

        if (out == NULL)
                return NULL;
        int r = wire_dump(out, v);
        if (r == 0)
                r = wire_out_flush(out);
        wire_out_free(out);
        if (r < 0 || m.failed || membuf_sink(&m, "", 0) < 0) {
                free(m.data);
                return NULL;
        }
        m.data[m.len] = '\0';
        return m.data;
}

int wire_write_return_begin(struct wire_out *out)
{
        return wire_out_write(out, "{\"return\": ", 11);
}

int wire_write_return_end(struct wire_out *out, const json_t *id)
{
        if (id) {
                if (wire_out_write(out, ", \"id\": ", 8) < 0 || wire_dump(out, id) < 0)
                        return -1;
        }
        return wire_out_write(out, "}\n", 2);
}

int wire_write_return(struct wire_out *out, const json_t *ret, const json_t *id)
{
        if (wire_write_return_begin(out) < 0)
                return -1;
        if (ret == NULL) {
                if (wire_out_write(out, "{}", 2) < 0)
                        return -1;
        } else if (wire_dump(out, ret) < 0) {
                return -1;
        }
        return wire_write_return_end(out, id);
}

int wire_write_error(struct wire_out *out, const char *cls, const char *desc, const json_t *id)
{
        return wire_write_error_len(out, cls, desc ? desc : "", desc ? strlen(desc) : 0, id);
}

int wire_write_error_len(struct wire_out *out, const char *cls, const char *desc, size_t desc_len,
                         const json_t *id)
{
        /* qemu-ga puts "id" first in error replies (QDict bucket order); so do we. */
        if (wire_out_write(out, "{", 1) < 0)
                return -1;
        if (id) {
                if (wire_out_write(out, "\"id\": ", 6) < 0 || wire_dump(out, id) < 0 ||
                    wire_out_write(out, ", ", 2) < 0)
                        return -1;
        }
        if (wire_out_puts(out, "\"error\": {\"class\": ") < 0 ||
            wire_dump_string(out, cls, strlen(cls)) < 0 ||
            wire_out_puts(out, ", \"desc\": ") < 0 ||
            wire_dump_string(out, desc, desc_len) < 0)
                return -1;
        return wire_out_write(out, "}}\n", 3);
}

int wire_write_base64(struct wire_out *out, const void *buf, size_t len)
{
        /* 3 KiB of input per step: 4 KiB of text on the stack, never a copy of the whole. */
        enum { IN_CHUNK = 3 * 1024 };
        char text[IN_CHUNK / 3 * 4];
        const unsigned char *p = buf;

        while (len > 0) {
                size_t n = len < IN_CHUNK ? len : IN_CHUNK;
                size_t m = tt_base64_encode(p, n, text);

                if (wire_out_write(out, text, m) < 0)
                        return -1;
                p += n;
                len -= n;
        }
        return 0;
}
