/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * From the tokens of one complete message to a jansson value, with qemu's json-parser error
 * texts ("JSON parse error, ..."). Only the first error of a message is reported, as in qemu.
 *
 * Representation choices (qemu holds numbers as int64/uint64/double and strings as modified
 * UTF-8; jansson has int64, double and length-counted UTF-8):
 * - integers that fit int64 are integers; larger ones (qemu: uint64, or double) become reals;
 * - floats overflowing to +-inf (qemu prints "inf") become +-DBL_MAX, jansson has no inf;
 * - "\u0000" and the raw "\xC0\x80" become a real NUL byte inside the length-counted string;
 * - strings are validated exactly as qemu does (no surrogates, noncharacters, overlong forms),
 *   so every string handed out is valid UTF-8.
 */
#include "wire/wire.h"
#include "wire/wire-int.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wire_utf8_decode(const unsigned char *s, size_t n, size_t *len)
{
        static const int min_cp[5] = {0x80, 0x800, 0x10000, 0x200000, 0x4000000};
        unsigned byte = s[0], nbytes = 0, mask;
        int cp;

        if (byte < 0x80) {
                *len = 1;
                return (int)byte;
        }
        if (byte >= 0xFE || (byte & 0x40) == 0) {
                /* impossible byte, or a continuation byte where a sequence should start */
                *len = 1;
                return -1;
        }
        for (mask = 0x80; byte & mask; mask >>= 1)
                nbytes++;
        cp = (int)(byte & (mask - 1));
        for (unsigned i = 1; i < nbytes; i++) {
                unsigned next = i < n ? s[i] : 0;

                if ((next & 0xC0) != 0x80) {
                        *len = i;
                        return -1;
                }
                cp = (cp << 6) | (int)(next & 0x3F);
        }
        *len = nbytes;
        if (cp > 0x10FFFF)
                return -1;
        if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE)
                return -1; /* noncharacter */
        if (cp >= 0xD800 && cp <= 0xDFFF)
                return -1; /* surrogate */
        if (cp < min_cp[nbytes - 2] && !(cp == 0 && nbytes == 2))
                return -1; /* overlong, except "\xC0\x80" */
        return cp;
}

/* What qemu accepts from a \uXXXX escape (mod_utf8_encode's check). */
static bool valid_codepoint(int cp)
{
        if (cp < 0 || cp > 0x10FFFF)
                return false;
        if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE)
                return false;
        return !(cp >= 0xD800 && cp <= 0xDFFF);
}

static size_t utf8_put(unsigned char *p, int cp)
{
        if (cp < 0x80) {
                p[0] = (unsigned char)cp;
                return 1;
        }
        if (cp < 0x800) {
                p[0] = (unsigned char)(0xC0 | (cp >> 6));
                p[1] = (unsigned char)(0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                p[0] = (unsigned char)(0xE0 | (cp >> 12));
                p[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                p[2] = (unsigned char)(0x80 | (cp & 0x3F));
                return 3;
        }
        p[0] = (unsigned char)(0xF0 | (cp >> 18));
        p[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        p[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        p[3] = (unsigned char)(0x80 | (cp & 0x3F));
        return 4;
}

struct token {
        enum wire_tok type;       /* what it is */
        const unsigned char *text; /* its bytes, not NUL-terminated */
        size_t len;               /* how many */
};

struct parser {
        const unsigned char *p;   /* next token record */
        const unsigned char *end; /* end of the records */
        char *err;                /* first error, malloc'd */
};

static void perr(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void perr(struct parser *ps, const char *fmt, ...)
{
        va_list ap;
        char *text = NULL;

        if (ps->err)
                return;
        va_start(ap, fmt);
        if (vasprintf(&text, fmt, ap) < 0)
                text = NULL;
        va_end(ap);
        if (text == NULL || asprintf(&ps->err, "JSON parse error, %s", text) < 0)
                ps->err = NULL;
        free(text);
        if (ps->err == NULL)
                ps->err = strdup("JSON parse error, out of memory");
}

static bool peek(const struct parser *ps, struct token *t)
{
        uint32_t len;

        if (ps->end - ps->p < WIRE_TOK_HDR)
                return false;
        memcpy(&len, ps->p + 1, sizeof(len));
        t->type = (enum wire_tok)ps->p[0];
        t->text = ps->p + WIRE_TOK_HDR;
        t->len = len;
        return true;
}

static bool pop(struct parser *ps, struct token *t)
{
        if (!peek(ps, t))
                return false;
        ps->p = t->text + t->len;
        return true;
}

static int hex4(const unsigned char *s, const unsigned char *end)
{
        int cp = 0;

        for (int i = 0; i < 4; i++) {
                int c = s + i < end ? s[i] : 0, d;

                if (c >= '0' && c <= '9')
                        d = c - '0';
                else if (c >= 'a' && c <= 'f')
                        d = c - 'a' + 10;
                else if (c >= 'A' && c <= 'F')
                        d = c - 'A' + 10;
                else
                        return -1;
                cp = (cp << 4) | d;
        }
        return cp;
}

/* Bytes that need no decoding: printable ASCII other than the backslash. */
static size_t plain_prefix(const unsigned char *s, size_t n)
{
        size_t i = 0;

        while (i + 8 <= n) {
                uint64_t w, bs;

                memcpy(&w, s + i, 8);
                bs = w ^ 0x5C5C5C5C5C5C5C5CULL;
                if ((w & 0x8080808080808080ULL) ||
                    ((bs - 0x0101010101010101ULL) & ~bs & 0x8080808080808080ULL))
                        break;
                i += 8;
        }
        while (i < n && s[i] < 0x80 && s[i] != '\\')
                i++;
        return i;
}

static json_t *parse_string(struct parser *ps, const struct token *t)
{
        /* text is quote, body, quote (the lexer guarantees it) */
        const unsigned char *s = t->text + 1, *end = t->text + t->len - 1;
        size_t n = (size_t)(end - s);
        size_t plain = plain_prefix(s, n);
        unsigned char *buf, *o;
        json_t *v;

        if (plain == n)
                return json_stringn_nocheck((const char *)s, n);
        /* Decoding never makes a string longer: escapes shrink, "\xC0\x80" becomes one byte. */
        buf = malloc(n ? n : 1);
        if (buf == NULL) {
                perr(ps, "out of memory");
                return NULL;
        }
        memcpy(buf, s, plain);
        o = buf + plain;
        s += plain;
        while (s < end) {
                if (*s != '\\') {
                        size_t run = plain_prefix(s, (size_t)(end - s)), len;
                        int cp;

                        if (run) {
                                memcpy(o, s, run);
                                o += run;
                                s += run;
                                continue;
                        }
                        cp = wire_utf8_decode(s, (size_t)(end - s), &len);
                        if (cp < 0) {
                                perr(ps, "invalid UTF-8 sequence in string");
                                goto fail;
                        }
                        if (cp == 0) {
                                *o++ = 0;
                        } else {
                                memcpy(o, s, len);
                                o += len;
                        }
                        s += len;
                        continue;
                }
                const unsigned char *beg = s;
                int cp, trail;

                s++;
                switch (*s++) {
                case '"': *o++ = '"'; break;
                case '\'': *o++ = '\''; break;
                case '\\': *o++ = '\\'; break;
                case '/': *o++ = '/'; break;
                case 'b': *o++ = '\b'; break;
                case 'f': *o++ = '\f'; break;
                case 'n': *o++ = '\n'; break;
                case 'r': *o++ = '\r'; break;
                case 't': *o++ = '\t'; break;
                case 'u':
                        cp = hex4(s, end);
                        s += 4;
                        if (cp >= 0xD800 && cp <= 0xDBFF && end - s >= 2 && s[0] == '\\' &&
                            s[1] == 'u') {
                                cp = 0x10000 + ((cp & 0x3FF) << 10);
                                trail = hex4(s + 2, end);
                                if (trail >= 0xDC00 && trail <= 0xDFFF) {
                                        cp |= trail & 0x3FF;
                                        s += 6;
                                } else {
                                        cp = -1;
                                }
                        }
                        if (!valid_codepoint(cp)) {
                                /* qemu prints the escape as far as the token goes */
                                size_t shown = (size_t)(s - beg), avail = (size_t)(end + 1 - beg);

                                perr(ps, "%.*s is not a valid Unicode character",
                                     (int)(shown < avail ? shown : avail), (const char *)beg);
                                goto fail;
                        }
                        o += utf8_put(o, cp);
                        break;
                default:
                        perr(ps, "invalid escape sequence in string");
                        goto fail;
                }
        }
        v = json_stringn_nocheck((const char *)buf, (size_t)(o - buf));
        free(buf);
        return v;
fail:
        free(buf);
        return NULL;
}

static json_t *parse_number(const struct token *t)
{
        char small[64], *text = small, *end;
        json_t *v;
        double d;

        if (t->len >= sizeof(small)) {
                text = malloc(t->len + 1);
                if (text == NULL)
                        return NULL;
        }
        memcpy(text, t->text, t->len);
        text[t->len] = '\0';
        if (t->type == WIRE_TOK_INTEGER) {
                long long ll;

                errno = 0;
                ll = strtoll(text, &end, 10);
                if (errno == 0) {
                        v = json_integer(ll);
                        goto out;
                }
                /* beyond int64: qemu keeps uint64 exactly, jansson cannot (see top) */
        }
        d = strtod(text, &end);
        if (isinf(d))
                d = d > 0 ? DBL_MAX : -DBL_MAX;
        v = json_real(d);
out:
        if (text != small)
                free(text);
        return v;
}

static json_t *parse_value(struct parser *ps);

static int parse_pair(struct parser *ps, json_t *obj)
{
        struct token t;
        json_t *key, *value;

        if (!peek(ps, &t)) {
                perr(ps, "premature EOI");
                return -1;
        }
        key = parse_value(ps);
        if (key == NULL)
                return -1;
        if (!json_is_string(key)) {
                json_decref(key);
                perr(ps, "key is not a string in object");
                return -1;
        }
        if (!pop(ps, &t)) {
                json_decref(key);
                perr(ps, "premature EOI");
                return -1;
        }
        if (t.type != WIRE_TOK_COLON) {
                json_decref(key);
                perr(ps, "missing : in object pair");
                return -1;
        }
        value = parse_value(ps);
        if (value == NULL) {
                json_decref(key);
                return -1;
        }
        const char *k = json_string_value(key);
        size_t klen = json_string_length(key);

        if (json_object_getn(obj, k, klen)) {
                json_decref(key);
                json_decref(value);
                perr(ps, "duplicate key");
                return -1;
        }
        int r = json_object_setn_new_nocheck(obj, k, klen, value);
        json_decref(key);
        if (r < 0) {
                perr(ps, "out of memory");
                return -1;
        }
        return 0;
}

static json_t *parse_object(struct parser *ps)
{
        struct token t;
        json_t *obj = json_object();

        pop(ps, &t); /* the '{' */
        if (obj == NULL) {
                perr(ps, "out of memory");
                return NULL;
        }
        if (!peek(ps, &t)) {
                perr(ps, "premature EOI");
                goto fail;
        }
        if (t.type == WIRE_TOK_RCURLY) {
                pop(ps, &t);
                return obj;
        }
        if (parse_pair(ps, obj) < 0)
                goto fail;
        for (;;) {
                if (!pop(ps, &t)) {
                        perr(ps, "premature EOI");
                        goto fail;
                }
                if (t.type == WIRE_TOK_RCURLY)
                        return obj;
                if (t.type != WIRE_TOK_COMMA) {
                        perr(ps, "expected separator in dict");
                        goto fail;
                }
                if (parse_pair(ps, obj) < 0)
                        goto fail;
        }
fail:
        json_decref(obj);
        return NULL;
}

static json_t *parse_array(struct parser *ps)
{
        struct token t;
        json_t *arr = json_array(), *v;

        pop(ps, &t); /* the '[' */
        if (arr == NULL) {
                perr(ps, "out of memory");
                return NULL;
        }
        if (!peek(ps, &t)) {
                perr(ps, "premature EOI");
                goto fail;
        }
        if (t.type == WIRE_TOK_RSQUARE) {
                pop(ps, &t);
                return arr;
        }
        for (;;) {
                v = parse_value(ps);
                if (v == NULL)
                        goto fail;
                if (json_array_append_new(arr, v) < 0) {
                        perr(ps, "out of memory");
                        goto fail;
                }
                if (!pop(ps, &t)) {
                        perr(ps, "premature EOI");
                        goto fail;
                }
                if (t.type == WIRE_TOK_RSQUARE)
                        return arr;
                if (t.type != WIRE_TOK_COMMA) {
                        perr(ps, "expected separator in list");
                        goto fail;
                }
        }
fail:
        json_decref(arr);
        return NULL;
}

static json_t *parse_keyword(struct parser *ps)
{
        /* Zeroed: gcc's sanitizer builds cannot see that the caller peeked a token first. */
        struct token t = {0};

        pop(ps, &t);
        if (t.len == 4 && memcmp(t.text, "true", 4) == 0)
                return json_true();
        if (t.len == 5 && memcmp(t.text, "false", 5) == 0)
                return json_false();
        if (t.len == 4 && memcmp(t.text, "null", 4) == 0)
                return json_null();
        perr(ps, "invalid keyword '%.*s'", (int)(t.len > WIRE_MAX_QUOTE ? WIRE_MAX_QUOTE : t.len),
             (const char *)t.text);
        return NULL;
}

/*
 * Recursion is bounded: the splitter only completes a message whose valid prefix never nests
 * deeper than the depth limit, and parsing stops at the first invalid token.
 */
static json_t *parse_value(struct parser *ps)
{
        struct token t;
        json_t *v;

        if (!peek(ps, &t)) {
                perr(ps, "premature EOI");
                return NULL;
        }
        switch (t.type) {
        case WIRE_TOK_LCURLY:
                return parse_object(ps);
        case WIRE_TOK_LSQUARE:
                return parse_array(ps);
        case WIRE_TOK_KEYWORD:
                return parse_keyword(ps);
        case WIRE_TOK_STRING:
                pop(ps, &t);
                return parse_string(ps, &t);
        case WIRE_TOK_INTEGER:
        case WIRE_TOK_FLOAT:
                pop(ps, &t);
                v = parse_number(&t);
                if (v == NULL)
                        perr(ps, "out of memory");
                return v;
        default:
                perr(ps, "expecting value");
                return NULL;
        }
}

json_t *wire_parse_tokens(const unsigned char *toks, size_t len, char **errmsg)
{
        struct parser ps = {.p = toks, .end = toks + len, .err = NULL};
        json_t *v = parse_value(&ps);

        *errmsg = ps.err;
        if (v == NULL && ps.err == NULL)
                *errmsg = strdup("JSON parse error, out of memory");
        return v;
}
