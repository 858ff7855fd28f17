/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * wire: splitter, parser, request and argument checks, writer. Every expected text here was
 * taken from qemu-ga 7.2 answering the same bytes on a unix socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wire/wire.h"
#include "common/tt_error.h"

/* ---- helpers ---- */

struct strbuf {
        char *data;
        size_t len;
        size_t cap;
};

static void sb_add(struct strbuf *b, const void *p, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                b->cap = (b->len + n + 1) * 2;
                b->data = realloc(b->data, b->cap);
                assert_non_null(b->data);
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
}

static int sb_sink(void *opaque, const void *buf, size_t len)
{
        sb_add(opaque, buf, len);
        return 0;
}

/* What a QGA server answers for each message: error replies, or {"msg": value} lines. */
struct run {
        struct wire_out *out;
        struct strbuf text;
        size_t max_pending;
        struct wire_splitter *s;
};

static int on_message(void *opaque, json_t *msg, const struct tt_error *err)
{
        struct run *r = opaque;

        if (r->s && wire_splitter_pending(r->s) > r->max_pending)
                r->max_pending = wire_splitter_pending(r->s);
        if (msg == NULL) {
                assert_non_null(err);
                assert_non_null(err->msg);
                return wire_write_error(r->out, WIRE_CLASS_GENERIC, err->msg, NULL);
        }
        assert_null(err);
        wire_write_return(r->out, msg, NULL);
        json_decref(msg);
        return 0;
}

static void run_init(struct run *r)
{
        memset(r, 0, sizeof(*r));
        r->out = wire_out_new(sb_sink, &r->text);
        assert_non_null(r->out);
        sb_add(&r->text, "", 0);
}

static char *run_finish(struct run *r)
{
        assert_int_equal(wire_out_flush(r->out), 0);
        wire_out_free(r->out);
        return r->text.data;
}

/* Feed input in chunks of `chunk` bytes (0: all at once, -1: random sizes). */
static char *split(const void *in, size_t len, long chunk, uint64_t max_size, uint64_t max_tokens,
                   unsigned max_depth)
{
        struct run r;
        struct wire_splitter *s = wire_splitter_new();
        const unsigned char *p = in;
        size_t off = 0;

        run_init(&r);
        wire_splitter_set_limits(s, max_size, max_tokens, max_depth);
        while (off < len) {
                size_t n = len - off;

                if (chunk > 0 && (size_t)chunk < n)
                        n = (size_t)chunk;
                else if (chunk < 0)
                        n = 1 + (size_t)rand() % (n < 37 ? n : 37);
                assert_int_equal(wire_splitter_feed(s, p + off, n, on_message, &r), 0);
                off += n;
        }
        wire_splitter_free(s);
        return run_finish(&r);
}

/* Same output whatever the chunking: all at once, byte by byte, random chunks. */
static void expect_split_lim(const void *in, size_t len, const char *expected, uint64_t max_size,
                             uint64_t max_tokens, unsigned max_depth)
{
        char *got = split(in, len, 0, max_size, max_tokens, max_depth);

        assert_string_equal(got, expected);
        free(got);
        got = split(in, len, 1, max_size, max_tokens, max_depth);
        assert_string_equal(got, expected);
        free(got);
        for (int i = 0; i < 5; i++) {
                got = split(in, len, -1, max_size, max_tokens, max_depth);
                assert_string_equal(got, expected);
                free(got);
        }
}

static void expect_split(const char *in, const char *expected)
{
        expect_split_lim(in, strlen(in), expected, 0, 0, 0);
}

#define ERR(text) "{\"error\": {\"class\": \"GenericError\", \"desc\": \"" text "\"}}\n"
#define RET(text) "{\"return\": " text "}\n"

/* ---- splitting ---- */

static void test_split_basic(void **state)
{
        (void)state;
        expect_split("{\"execute\":\"guest-ping\"}", RET("{\"execute\": \"guest-ping\"}"));
        /* pipelined, no newline between, whitespace of all four kinds ignored */
        expect_split("{\"a\":1}[2] \t\r\n{\"b\" : [true,false,null]}",
                     RET("{\"a\": 1}") RET("[2]") RET("{\"b\": [true, false, null]}"));
        /* braces and brackets inside strings do not count */
        expect_split("{\"a\":\"}]{[\\\"\"}", RET("{\"a\": \"}]{[\\\"\"}"));
        /* single-quoted strings and the \' escape (qemu's extensions) */
        expect_split("{'execute':'it\\'s \"q\"'}", RET("{\"execute\": \"it's \\\"q\\\"\"}"));
        /* a bare scalar is a complete message once its token ends */
        expect_split("1 \"x\" \"y\" null\n", RET("1") RET("\"x\"") RET("\"y\"") RET("null"));
        /* a number at the end of the input waits for the byte that ends it */
        char *got = split("123", 3, 0, 0, 0, 0);
        assert_string_equal(got, "");
        free(got);
}

static void test_split_lexical_errors(void **state)
{
        (void)state;
        expect_split("\xff", ERR("JSON parse error, stray '\\uFFFD'"));
        expect_split("\xfe", ERR("JSON parse error, stray '\\uFFFD'"));
        expect_split("\x01", ERR("JSON parse error, stray '\\u0001'"));
        expect_split_lim("\0abc", 4, ERR("JSON parse error, stray ''"), 0, 0, 0);
        expect_split("\x7f", ERR("JSON parse error, stray '\\u007F'"));
        expect_split("True\n", ERR("JSON parse error, stray 'T'"));
        expect_split("01\n", ERR("JSON parse error, stray '01'"));
        expect_split("-x\n", ERR("JSON parse error, stray '-x'"));
        expect_split("1.\n", ERR("JSON parse error, stray '1.\\n'"));
        expect_split("1.5e\n", ERR("JSON parse error, stray '1.5e\\n'"));
        /* the token so far is quoted, raw bytes and all */
        expect_split("\"abc\x01" "def\"", ERR("JSON parse error, stray '\\\"abc\\u0001'"));
        expect_split("\"abc\xff" "def\"", ERR("JSON parse error, stray '\\\"abc\\uFFFD'"));
        expect_split("\"ab\\\x01\"", ERR("JSON parse error, stray '\\\"ab\\\\\\u0001'"));
        /* two 0xFF are two errors: 0xFF ends recovery and is itself an error */
        expect_split("\xff\xff{\"a\":1}", ERR("JSON parse error, stray '\\uFFFD'")
                     ERR("JSON parse error, stray '\\uFFFD'") RET("{\"a\": 1}"));
        /* a number ends at the first byte that cannot continue it */
        expect_split("1x\n", RET("1") ERR("JSON parse error, invalid keyword 'x'"));
        expect_split("0e1\n", RET("0") ERR("JSON parse error, invalid keyword 'e'") RET("1"));
}

static void test_split_recovery(void **state)
{
        (void)state;
        /* after an error everything up to a structural or control byte is skipped */
        expect_split("\xff" "abc\"def{\"a\":1}", ERR("JSON parse error, stray '\\uFFFD'")
                     RET("{\"a\": 1}"));
        expect_split("True{\"a\":1}", ERR("JSON parse error, stray 'T'") RET("{\"a\": 1}"));
        /* a newline ends recovery, a tab does not */
        expect_split("T x\n7\n", ERR("JSON parse error, stray 'T'") RET("7"));
        expect_split("T\t7\n", ERR("JSON parse error, stray 'T'"));
        /* a partial message is dropped by the error */
        expect_split("{\"a\":[1,\xff{\"b\":2}", ERR("JSON parse error, stray '\\uFFFD'")
                     RET("{\"b\": 2}"));
        /* a control byte in recovery is the next error */
        expect_split("Tabc\x02{}", ERR("JSON parse error, stray 'T'")
                     ERR("JSON parse error, stray '\\u0002'") RET("{}"));
        expect_split("{\"a\":1} xyz {\"b\":2}", RET("{\"a\": 1}")
                     ERR("JSON parse error, invalid keyword 'xyz'") RET("{\"b\": 2}"));
}

static void test_split_parse_errors(void **state)
{
        (void)state;
        expect_split("{\"execute\" \"x\"}", ERR("JSON parse error, missing : in object pair"));
        expect_split("{1:2}", ERR("JSON parse error, key is not a string in object"));
        expect_split("{{}:2}", ERR("JSON parse error, key is not a string in object"));
        expect_split("[}", ERR("JSON parse error, expecting value"));
        expect_split("[}]", ERR("JSON parse error, expecting value")
                     ERR("JSON parse error, expecting value"));
        expect_split("}", ERR("JSON parse error, expecting value"));
        expect_split("]", ERR("JSON parse error, expecting value"));
        expect_split(":", RET("") == NULL ? "" : ERR("JSON parse error, expecting value"));
        expect_split("xyz\n", ERR("JSON parse error, invalid keyword 'xyz'"));
        expect_split("{\"a\":1,\"a\":2}", ERR("JSON parse error, duplicate key"));
        expect_split("{\"a\":1,}", ERR("JSON parse error, expecting value"));
        expect_split("[1,]", ERR("JSON parse error, expecting value"));
        expect_split("{\"a\"}", ERR("JSON parse error, missing : in object pair"));
        expect_split("{\"a\":1]", ERR("JSON parse error, expected separator in dict"));
        expect_split("[1}]", ERR("JSON parse error, expected separator in list")
                     ERR("JSON parse error, expecting value"));
        expect_split("\"\\u12\"", ERR("JSON parse error, \\\\u12\\\" is not a valid Unicode character"));
        expect_split("\"\\uD800\"", ERR("JSON parse error, \\\\uD800 is not a valid Unicode character"));
        expect_split("\"\\uFFFF\"", ERR("JSON parse error, \\\\uFFFF is not a valid Unicode character"));
        expect_split("\"\\uD800\\u0041\"",
                     ERR("JSON parse error, \\\\uD800 is not a valid Unicode character"));
        expect_split("\"\\x\"", ERR("JSON parse error, invalid escape sequence in string"));
        expect_split("\"\xc3\"", ERR("JSON parse error, invalid UTF-8 sequence in string"));
        expect_split("\"a\x80\"", ERR("JSON parse error, invalid UTF-8 sequence in string"));
        expect_split("\"\xed\xa0\x80\"", ERR("JSON parse error, invalid UTF-8 sequence in string"));
}

static json_t *captured;

static int capture(void *opaque, json_t *msg, const struct tt_error *err)
{
        (void)opaque;
        assert_null(err);
        captured = msg;
        return 0;
}

static void test_split_values(void **state)
{
        (void)state;
        expect_split("[18446744073709551616, -9223372036854775809, 1.0, 1e300, 0.1, -0, -0.0,"
                     " 1e5, 123456789012345678, 1.5e-7]",
                     RET("[1.8446744073709552e+19, -9.2233720368547758e+18, 1, "
                         "1.0000000000000001e+300, 0.10000000000000001, 0, -0, 100000, "
                         "123456789012345678, 1.4999999999999999e-07]"));
        /* escapes in, qemu's escapes out; \u0000 and the modified-UTF-8 NUL are a real NUL */
        expect_split("\"\\u0000\\/\x7f\\ud83d\\ude00\xc3\xa9\"",
                     RET("\"\\u0000/\\u007F\\uD83D\\uDE00\\u00E9\""));
        expect_split("\"\\b\\f\\n\\r\\t\\\"\\\\\\u001f\\u0080\"",
                     RET("\"\\b\\f\\n\\r\\t\\\"\\\\\\u001F\\u0080\""));
        expect_split("\"\xc0\x80\"", RET("\"\\u0000\""));

        struct wire_splitter *s = wire_splitter_new();
        struct run r;
        run_init(&r);
        /* check the jansson values themselves */
        assert_int_equal(wire_splitter_feed(s, "\"a\\u0000b\"", 10, capture, NULL), 0);
        assert_int_equal(json_string_length(captured), 3);
        assert_memory_equal(json_string_value(captured), "a\0b", 3);
        json_decref(captured);
        assert_int_equal(wire_splitter_feed(s, "-9223372036854775808 ", 21, capture, NULL), 0);
        assert_true(json_is_integer(captured));
        assert_true(json_integer_value(captured) == INT64_MIN);
        json_decref(captured);
        assert_int_equal(wire_splitter_feed(s, "{\"k\\u0000\":1}", 13, capture, NULL), 0);
        assert_non_null(json_object_getn(captured, "k\0", 2));
        json_decref(captured);
        wire_splitter_free(s);
        free(run_finish(&r));
}

static void test_split_chunking(void **state)
{
        (void)state;
        /* one long mixed stream (qemu-ga answers it the same way, checked through a QGA
         * emulation on this module): the output does not depend on where reads split it */
        static const char in[] =
                "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":123}}\n"
                "\xff{\"execute\":'x',\"id\":[1,{\"a\":null}]} 01 -x \"ab\\u00e9\\ud83d\\ude00\""
                "{\"a\":1,}[}] 1.25e+2 true xyz\x01{\"s\":\"\\\\\\\"\\/\"}";
        expect_split(in, RET("{\"execute\": \"guest-sync\", \"arguments\": {\"id\": 123}}")
                     ERR("JSON parse error, stray '\\uFFFD'")
                     RET("{\"execute\": \"x\", \"id\": [1, {\"a\": null}]}")
                     ERR("JSON parse error, stray '01'")
                     /* recovery after "01" skips -x and the string up to the '{' */
                     ERR("JSON parse error, expecting value")
                     ERR("JSON parse error, expecting value")
                     ERR("JSON parse error, expecting value")
                     RET("125")
                     RET("true")
                     ERR("JSON parse error, invalid keyword 'xyz'")
                     ERR("JSON parse error, stray '\\u0001'")
                     RET("{\"s\": \"\\\\\\\"/\"}"));
}

static int stop_at_first(void *opaque, json_t *msg, const struct tt_error *err)
{
        int *count = opaque;

        (void)err;
        json_decref(msg);
        (*count)++;
        return -42;
}

static void test_split_stop(void **state)
{
        (void)state;
        struct wire_splitter *s = wire_splitter_new();
        int count = 0;

        assert_int_equal(wire_splitter_feed(s, "[1][2][3]", 9, stop_at_first, &count), -42);
        assert_int_equal(count, 1);
        /* reset drops a partial message: "]" alone is then an error, not the end of "[1," */
        assert_int_equal(wire_splitter_feed(s, "[1,", 3, stop_at_first, &count), 0);
        assert_true(wire_splitter_pending(s) > 0);
        wire_splitter_reset(s);
        assert_int_equal(wire_splitter_pending(s), 0);
        wire_splitter_free(s);
        expect_split("[1,", "");
}

/* ---- limits ---- */

static void test_limit_depth_small(void **state)
{
        (void)state;
        /* depth 3: the fourth opening is refused; each ']' left over is then its own message */
        expect_split_lim("[[[1]]]", strlen("[[[1]]]"), RET("[[[1]]]"), 0, 0, 3);
        expect_split_lim("[[[[1]]]]", strlen("[[[[1]]]]"), ERR("JSON nesting depth limit exceeded")
                         RET("1") ERR("JSON parse error, expecting value")
                         ERR("JSON parse error, expecting value")
                         ERR("JSON parse error, expecting value")
                         ERR("JSON parse error, expecting value"), 0, 0, 3);
        expect_split_lim("{\"a\":{\"b\":[{}]}}", strlen("{\"a\":{\"b\":[{}]}}"), ERR("JSON nesting depth limit exceeded")
                         ERR("JSON parse error, expecting value")
                         ERR("JSON parse error, expecting value")
                         ERR("JSON parse error, expecting value")
                         ERR("JSON parse error, expecting value"), 0, 0, 3);
}

static void test_limit_depth_real(void **state)
{
        (void)state;
        size_t n = 1025;
        char *in = malloc(2 * n + 1);
        char *expected;
        struct strbuf sb = {0};

        /* 1024 levels are fine */
        memset(in, '[', n - 1);
        memset(in + n - 1, ']', n - 1);
        char *got = split(in, 2 * (n - 1), 0, 0, 0, 0);
        assert_int_equal(strncmp(got, RET("[[[["), 15), 0);
        assert_int_equal(strlen(got), strlen(RET("")) + 2 * 1024);
        free(got);

        /* 1025: one depth error, then 1025 stray ']' messages (qemu-ga says the same) */
        memset(in, '[', n);
        memset(in + n, ']', n);
        sb_add(&sb, ERR("JSON nesting depth limit exceeded"),
               strlen(ERR("JSON nesting depth limit exceeded")));
        for (size_t i = 0; i < n; i++)
                sb_add(&sb, ERR("JSON parse error, expecting value"),
                       strlen(ERR("JSON parse error, expecting value")));
        expected = sb.data;
        got = split(in, 2 * n, 0, 0, 0, 0);
        assert_string_equal(got, expected);
        free(got);
        got = split(in, 2 * n, -1, 0, 0, 0);
        assert_string_equal(got, expected);
        free(got);
        free(expected);
        free(in);
}

static void test_limit_tokens(void **state)
{
        (void)state;
        /* 10 tokens allowed: [1,2,3,4,5] has 11; the 11th (']') is refused, nothing follows */
        expect_split_lim("[1,2,3,4]", strlen("[1,2,3,4]"), RET("[1, 2, 3, 4]"), 0, 10, 0);
        expect_split_lim("[1,2,3,4,5] 7\n", strlen("[1,2,3,4,5] 7\n"), ERR("JSON token count limit exceeded") RET("7"),
                         0, 10, 0);
        /* refused in the middle: what follows is lexed afresh */
        expect_split_lim("[1,2,3,4,5,6,7]", strlen("[1,2,3,4,5,6,7]"), ERR("JSON token count limit exceeded")
                         RET("6") ERR("JSON parse error, expecting value") RET("7")
                         ERR("JSON parse error, expecting value"), 0, 10, 0);
}

static void test_limit_size(void **state)
{
        (void)state;
        /* size 20: token bytes + 1 must stay <= 20 when each token completes */
        expect_split_lim("[\"0123456789abcde\"]", strlen("[\"0123456789abcde\"]"), RET("[\"0123456789abcde\"]"), 20, 0, 0);
        /* 18 bytes for the string, 20 with the brackets: the ']' breaks the limit */
        expect_split_lim("[\"0123456789abcdef\"]", strlen("[\"0123456789abcdef\"]"), ERR("JSON token size limit exceeded"),
                         20, 0, 0);
        /* the string itself completes over the limit: error, then ']' stands alone */
        expect_split_lim("[\"0123456789abcdefgh\"]", strlen("[\"0123456789abcdefgh\"]"), ERR("JSON token size limit exceeded")
                         ERR("JSON parse error, expecting value"), 20, 0, 0);
        /* one token longer than the limit is cut at limit+1 bytes; lexing restarts there,
         * so the rest of the string is read as JSON (qemu does exactly this) */
        expect_split_lim("[\"0123456789abcdefghijklmn\",1]", strlen("[\"0123456789abcdefghijklmn\",1]"), ERR("JSON token size limit exceeded")
                         ERR("JSON parse error, invalid keyword 'klmn'"), 20, 0, 0);
        /* whitespace does not count */
        expect_split_lim("[   1   ,      2    ,     3    ]", strlen("[   1   ,      2    ,     3    ]"), RET("[1, 2, 3]"), 20, 0, 0);
}

static void test_limit_memory_bounded(void **state)
{
        (void)state;
        /* a 5 MiB string against a 1 MiB limit, fed in 4 KiB reads, never held whole */
        const size_t big = 5u << 20, limit = 1u << 20;
        char *in = malloc(big + 16);
        struct run r;
        struct wire_splitter *s = wire_splitter_new();

        memcpy(in, "[1,2,\"", 6);
        memset(in + 6, 'A', big);
        memcpy(in + 6 + big, "\"]", 2);
        run_init(&r);
        r.s = s;
        wire_splitter_set_limits(s, limit, 0, 0);
        for (size_t off = 0; off < big + 8; off += 4096) {
                size_t n = big + 8 - off < 4096 ? big + 8 - off : 4096;

                assert_int_equal(wire_splitter_feed(s, in + off, n, on_message, &r), 0);
                assert_true(wire_splitter_pending(s) <= limit + 64);
        }
        /* cut at limit+1 bytes; "AAAA..." is then a run of stray 'A' errors, one per resync */
        char *got = run_finish(&r);
        assert_int_equal(strncmp(got, ERR("JSON token size limit exceeded")
                                 ERR("JSON parse error, stray 'A'"),
                                 strlen(ERR("JSON token size limit exceeded")
                                        ERR("JSON parse error, stray 'A'"))), 0);
        free(got);
        wire_splitter_free(s);
        free(in);
}

/* ---- requests ---- */

/* Parse one complete JSON text the way the agent does: through the splitter. */
static json_t *parse_one(const char *text)
{
        struct wire_splitter *s = wire_splitter_new();

        captured = NULL;
        assert_int_equal(wire_splitter_feed(s, text, strlen(text), capture, NULL), 0);
        assert_int_equal(wire_splitter_feed(s, "\n", 1, capture, NULL), 0);
        wire_splitter_free(s);
        return captured;
}

static void expect_request_error(const char *text, const char *desc, const char *id_json)
{
        json_t *msg = parse_one(text);
        struct wire_request req;
        struct tt_error err = {0};

        assert_non_null(msg);
        assert_int_equal(wire_request_parse(msg, &req, &err), -1);
        assert_string_equal(err.msg, desc);
        if (id_json) {
                char *id = wire_dumps(req.id);
                assert_string_equal(id, id_json);
                free(id);
        } else {
                assert_null(req.id);
        }
        tt_error_clear(&err);
        json_decref(msg);
}

static void test_request(void **state)
{
        (void)state;
        json_t *msg = json_loads("{\"id\":[1,{\"a\":null}],\"execute\":\"guest-info\","
                                 "\"arguments\":{\"x\":1}}", 0, NULL);
        struct wire_request req;
        struct tt_error err = {0};

        assert_int_equal(wire_request_parse(msg, &req, &err), 0);
        assert_string_equal(req.execute, "guest-info");
        assert_true(json_is_object(req.arguments));
        assert_true(json_is_array(req.id));
        json_decref(msg);
        msg = json_loads("{\"execute\":\"guest-ping\"}", 0, NULL);
        assert_int_equal(wire_request_parse(msg, &req, &err), 0);
        assert_null(req.arguments);
        assert_null(req.id);
        json_decref(msg);

        expect_request_error("[1]", "QMP input must be a JSON object", NULL);
        expect_request_error("1", "QMP input must be a JSON object", NULL);
        expect_request_error("{\"id\":1}", "QMP input lacks member 'execute'", "1");
        expect_request_error("{\"execute\":1,\"foo\":1}",
                             "QMP input member 'execute' must be a string", NULL);
        expect_request_error("{\"execute\":\"guest-ping\",\"arguments\":null,\"id\":\"q\"}",
                             "QMP input member 'arguments' must be an object", "\"q\"");
        expect_request_error("{\"exec-oob\":\"guest-ping\"}",
                             "QMP input member 'exec-oob' is unexpected", NULL);
        expect_request_error("{\"execute\":\"guest-ping\",\"zz\":1,\"id\":\"q\"}",
                             "QMP input member 'zz' is unexpected", "\"q\"");
        /* qemu checks members in its hash order, not the request's: both give 'arguments' */
        expect_request_error("{\"foo\":1,\"arguments\":1,\"execute\":\"guest-ping\"}",
                             "QMP input member 'arguments' must be an object", NULL);
        expect_request_error("{\"arguments\":1,\"foo\":1,\"execute\":\"guest-ping\"}",
                             "QMP input member 'arguments' must be an object", NULL);
        expect_request_error("{\"foo\":1,\"id\":{\"x\":\"y\"}}",
                             "QMP input member 'foo' is unexpected", "{\"x\": \"y\"}");
}

/* ---- argument specs ---- */

static const char *const whence_values[] = {"set", "cur", "end", NULL};
static const struct wire_arg seek_spec[] = {
        {.name = "handle", .type = WIRE_T_INT, .required = true},
        {.name = "offset", .type = WIRE_T_INT, .required = true},
        {.name = "whence", .type = WIRE_T_ALT_INT_ENUM, .required = true,
         .enum_values = whence_values, .type_name = "GuestFileWhence"},
        {NULL},
};
static const char *const capture_values[] = {"none", "stdout", "stderr", "separated", "merged",
                                             NULL};
static const struct wire_arg exec_spec[] = {
        {.name = "path", .type = WIRE_T_STRING, .required = true},
        {.name = "arg", .type = WIRE_T_ARRAY, .elem = WIRE_T_STRING},
        {.name = "env", .type = WIRE_T_ARRAY, .elem = WIRE_T_STRING},
        {.name = "input-data", .type = WIRE_T_STRING},
        {.name = "capture-output", .type = WIRE_T_ALT_BOOL_ENUM, .enum_values = capture_values,
         .type_name = "GuestExecCaptureOutput"},
        {NULL},
};
static const struct wire_arg vcpu_spec[] = {
        {.name = "logical-id", .type = WIRE_T_INT, .required = true},
        {.name = "online", .type = WIRE_T_BOOL, .required = true},
        {.name = "can-offline", .type = WIRE_T_BOOL},
        {NULL},
};
static const struct wire_arg vcpus_spec[] = {
        {.name = "vcpus", .type = WIRE_T_ARRAY, .required = true, .elem = WIRE_T_OBJECT,
         .members = vcpu_spec},
        {NULL},
};
static const struct wire_arg misc_spec[] = {
        {.name = "u", .type = WIRE_T_UINT64},
        {.name = "n", .type = WIRE_T_NUMBER},
        {.name = "o", .type = WIRE_T_OBJECT, .members = vcpu_spec},
        {.name = "any", .type = WIRE_T_ANY},
        {.name = "mode", .type = WIRE_T_ENUM, .enum_values = whence_values},
        {NULL},
};
static const struct wire_arg none_spec[] = {{NULL}};

static void expect_args(const struct wire_arg *spec, const char *args, const char *desc)
{
        json_t *v = args ? parse_one(args) : NULL;
        struct tt_error err = {0};
        int r;

        if (args)
                assert_non_null(v);
        r = wire_args_check(spec, v, &err);
        if (desc == NULL) {
                assert_int_equal(r, 0);
                assert_null(err.msg);
        } else {
                assert_int_equal(r, -1);
                assert_string_equal(err.msg, desc);
        }
        tt_error_clear(&err);
        json_decref(v);
}

static void test_args(void **state)
{
        (void)state;
        expect_args(none_spec, NULL, NULL);
        expect_args(none_spec, "{}", NULL);
        expect_args(none_spec, "{\"x\":1}", "Parameter 'x' is unexpected");

        expect_args(seek_spec, "{\"handle\":1,\"offset\":0,\"whence\":\"set\"}", NULL);
        expect_args(seek_spec, "{\"handle\":1,\"offset\":-5,\"whence\":9}", NULL);
        expect_args(seek_spec, "{\"handle\":1,\"offset\":0,\"whence\":\"bogus\"}",
                    "Parameter 'whence' does not accept value 'bogus'");
        expect_args(seek_spec, "{\"handle\":1,\"offset\":0,\"whence\":true}",
                    "Invalid parameter type for 'whence', expected: GuestFileWhence");
        expect_args(seek_spec, "{\"handle\":1,\"offset\":0,\"whence\":null}",
                    "Invalid parameter type for 'whence', expected: GuestFileWhence");
        expect_args(seek_spec, "{\"handle\":1,\"offset\":0,\"whence\":1.5}",
                    "Invalid parameter type for 'whence', expected: integer");
        expect_args(seek_spec, "{\"handle\":1.0,\"offset\":0,\"whence\":0}",
                    "Invalid parameter type for 'handle', expected: integer");
        expect_args(seek_spec, "{\"handle\":\"1\",\"offset\":0,\"whence\":0}",
                    "Invalid parameter type for 'handle', expected: integer");
        expect_args(seek_spec, "{\"handle\":1,\"offset\":0}", "Parameter 'whence' is missing");
        /* missing before unexpected */
        expect_args(seek_spec, "{\"offset\":0,\"whence\":0,\"zzz\":1}",
                    "Parameter 'handle' is missing");
        expect_args(seek_spec, "{\"handle\":1,\"offset\":0,\"whence\":0,\"zzz\":1,\"aaa\":2}",
                    "Parameter 'zzz' is unexpected");

        expect_args(exec_spec, "{}", "Parameter 'path' is missing");
        expect_args(exec_spec, "{\"path\":1}",
                    "Invalid parameter type for 'path', expected: string");
        expect_args(exec_spec, "{\"path\":\"/x\",\"arg\":\"a\"}",
                    "Invalid parameter type for 'arg', expected: array");
        expect_args(exec_spec, "{\"path\":\"/x\",\"arg\":[1]}",
                    "Invalid parameter type for 'arg[0]', expected: string");
        expect_args(exec_spec, "{\"path\":\"/x\",\"arg\":[\"a\",\"b\",2]}",
                    "Invalid parameter type for 'arg[2]', expected: string");
        expect_args(exec_spec, "{\"path\":\"/x\",\"capture-output\":\"merged\"}", NULL);
        expect_args(exec_spec, "{\"path\":\"/x\",\"capture-output\":false}", NULL);
        expect_args(exec_spec, "{\"path\":\"/x\",\"capture-output\":1}",
                    "Invalid parameter type for 'capture-output', expected: "
                    "GuestExecCaptureOutput");
        expect_args(exec_spec, "{\"path\":\"/x\",\"capture-output\":\"bogus\"}",
                    "Parameter 'capture-output' does not accept value 'bogus'");

        /* An embedded NUL ("\u0000", or the raw C0 80 qemu also reads as U+0000) is refused. */
        expect_args(exec_spec, "{\"path\":\"/x\\u0000.log\"}",
                    "Parameter 'path' must not contain a NUL character");
        expect_args(exec_spec, "{\"path\":\"/x\xc0\x80\"}",
                    "Parameter 'path' must not contain a NUL character");
        expect_args(exec_spec, "{\"path\":\"/x\",\"arg\":[\"a\",\"\\u0000\"]}",
                    "Parameter 'arg[1]' must not contain a NUL character");
        expect_args(exec_spec, "{\"path\":\"/x\",\"capture-output\":\"merged\\u0000\"}",
                    "Parameter 'capture-output' must not contain a NUL character");
        expect_args(seek_spec, "{\"handle\":1,\"offset\":0,\"whence\":\"set\\u0000\"}",
                    "Parameter 'whence' must not contain a NUL character");
        expect_args(exec_spec, "{\"path\":\"/x\\u0001\"}", NULL);

        expect_args(vcpus_spec, "{\"vcpus\":[{\"logical-id\":0,\"online\":true}]}", NULL);
        expect_args(vcpus_spec, "{\"vcpus\":[{\"logical-id\":0,\"online\":1}]}",
                    "Invalid parameter type for 'vcpus[0].online', expected: boolean");
        expect_args(vcpus_spec, "{\"vcpus\":[{\"logical-id\":0,\"online\":true},"
                                "{\"online\":true}]}",
                    "Parameter 'vcpus[1].logical-id' is missing");
        expect_args(vcpus_spec, "{\"vcpus\":[{\"logical-id\":0,\"online\":true,\"x\":1}],\"y\":2}",
                    "Parameter 'vcpus[0].x' is unexpected");
        expect_args(vcpus_spec, "{\"vcpus\":[1]}",
                    "Invalid parameter type for 'vcpus[0]', expected: object");
        expect_args(vcpus_spec, "{\"vcpus\":{}}",
                    "Invalid parameter type for 'vcpus', expected: array");

        expect_args(misc_spec, "{\"u\":18446744073709551615,\"n\":1,\"any\":[{}],\"mode\":\"cur\"}",
                    NULL);
        expect_args(misc_spec, "{\"u\":-1,\"n\":1.5}", NULL);
        expect_args(misc_spec, "{\"u\":1.5}", "Parameter 'u' expects uint64");
        expect_args(misc_spec, "{\"u\":\"1\"}", "Parameter 'u' expects uint64");
        expect_args(misc_spec, "{\"n\":\"1\"}", "Invalid parameter type for 'n', expected: number");
        expect_args(misc_spec, "{\"o\":[]}", "Invalid parameter type for 'o', expected: object");
        expect_args(misc_spec, "{\"o\":{\"online\":true}}", "Parameter 'o.logical-id' is missing");
        expect_args(misc_spec, "{\"mode\":1}", "Invalid parameter type for 'mode', expected: string");
        expect_args(misc_spec, "{\"mode\":\"x\"}", "Parameter 'mode' does not accept value 'x'");
}

/* ---- output ---- */

static char *dump_string(const char *s, size_t len)
{
        struct strbuf sb = {0};
        struct wire_out *out = wire_out_new(sb_sink, &sb);

        sb_add(&sb, "", 0);
        assert_int_equal(wire_dump_string(out, s, len), 0);
        assert_int_equal(wire_out_flush(out), 0);
        wire_out_free(out);
        return sb.data;
}

static void expect_dump_string(const char *s, size_t len, const char *expected)
{
        char *got = dump_string(s, len);

        assert_string_equal(got, expected);
        free(got);
}

static void test_writer_escapes(void **state)
{
        (void)state;
        expect_dump_string("a/b", 3, "\"a/b\"");
        expect_dump_string("\"\\\b\f\n\r\t", 7, "\"\\\"\\\\\\b\\f\\n\\r\\t\"");
        expect_dump_string("\x01\x1f\x7f", 3, "\"\\u0001\\u001F\\u007F\"");
        expect_dump_string("\0", 1, "\"\\u0000\"");
        expect_dump_string("\xc3\xa9\xe2\x82\xac", 5, "\"\\u00E9\\u20AC\"");
        expect_dump_string("\xf0\x9f\x98\x80", 4, "\"\\uD83D\\uDE00\"");
        /* invalid UTF-8, as qemu's mod_utf8_codepoint() splits it */
        expect_dump_string("\xff", 1, "\"\\uFFFD\"");
        expect_dump_string("a\x80z", 3, "\"a\\uFFFDz\"");
        expect_dump_string("\xc3z", 2, "\"\\uFFFDz\"");
        expect_dump_string("\xe2\x82z", 3, "\"\\uFFFDz\"");
        expect_dump_string("\xe2\x82", 2, "\"\\uFFFD\"");
        expect_dump_string("\xc0\xaf", 2, "\"\\uFFFD\"");         /* overlong */
        expect_dump_string("\xc0\x80", 2, "\"\\u0000\"");         /* modified UTF-8 NUL */
        expect_dump_string("\xed\xa0\x80", 3, "\"\\uFFFD\"");     /* surrogate */
        expect_dump_string("\xef\xbf\xbf", 3, "\"\\uFFFD\"");     /* noncharacter */
        expect_dump_string("\xf4\x90\x80\x80", 4, "\"\\uFFFD\""); /* beyond U+10FFFF */

        /* a long plain string crosses the buffer and comes out whole */
        size_t n = 200000;
        char *big = malloc(n);
        memset(big, 'x', n);
        big[n / 2] = '\n';
        char *got = dump_string(big, n);
        assert_int_equal(strlen(got), n + 3);
        assert_memory_equal(got + 1 + n / 2, "\\n", 2);
        free(got);
        free(big);
}

static void expect_dumps(const char *json, const char *expected)
{
        json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
        char *got;

        assert_non_null(v);
        got = wire_dumps(v);
        assert_string_equal(got, expected);
        free(got);
        json_decref(v);
}

static void test_writer_values(void **state)
{
        (void)state;
        expect_dumps("{}", "{}");
        expect_dumps("[]", "[]");
        expect_dumps("{\"b\":1,\"a\":[true,false,null,\"s\"],\"c\":{}}",
                     "{\"b\": 1, \"a\": [true, false, null, \"s\"], \"c\": {}}");
        expect_dumps("[1.0, 1e300, 0.1, -0.0, 1696000000.123456, -9223372036854775808]",
                     "[1, 1.0000000000000001e+300, 0.10000000000000001, -0, "
                     "1696000000.123456, -9223372036854775808]");
}

static void test_writer_replies(void **state)
{
        (void)state;
        struct strbuf sb = {0};
        struct wire_out *out = wire_out_new(sb_sink, &sb);
        json_t *id = json_pack("[i,{s:n}]", 1, "a");
        json_t *ret = json_pack("{s:i}", "pid", 42);

        sb_add(&sb, "", 0);
        assert_int_equal(wire_write_return(out, NULL, NULL), 0);
        assert_int_equal(wire_write_return(out, ret, id), 0);
        assert_int_equal(wire_write_error(out, WIRE_CLASS_NOT_FOUND,
                                          "The command nope has not been found", id), 0);
        assert_int_equal(wire_write_error(out, WIRE_CLASS_GENERIC, "a\xff\x01", NULL), 0);
        assert_int_equal(wire_write_return_begin(out), 0);
        assert_int_equal(wire_dump_string(out, "xy", 2), 0);
        assert_int_equal(wire_write_return_end(out, id), 0);
        assert_true(wire_out_pending(out) > 0);
        assert_int_equal(wire_out_flush(out), 0);
        assert_int_equal(wire_out_pending(out), 0);
        assert_string_equal(sb.data,
                            "{\"return\": {}}\n"
                            "{\"return\": {\"pid\": 42}, \"id\": [1, {\"a\": null}]}\n"
                            "{\"id\": [1, {\"a\": null}], \"error\": {\"class\": \"CommandNotFound\", "
                            "\"desc\": \"The command nope has not been found\"}}\n"
                            "{\"error\": {\"class\": \"GenericError\", \"desc\": "
                            "\"a\\uFFFD\\u0001\"}}\n"
                            "{\"return\": \"xy\", \"id\": [1, {\"a\": null}]}\n");
        wire_out_free(out);
        free(sb.data);
        json_decref(id);
        json_decref(ret);
}

struct counting {
        size_t calls;    /* sink calls */
        size_t biggest;  /* largest single write */
        size_t total;    /* bytes */
        bool fail;       /* report the peer gone */
        struct strbuf sb;
};

static int counting_sink(void *opaque, const void *buf, size_t len)
{
        struct counting *c = opaque;

        if (c->fail)
                return -1;
        c->calls++;
        c->total += len;
        if (len > c->biggest)
                c->biggest = len;
        sb_add(&c->sb, buf, len);
        return 0;
}

static void test_writer_streaming(void **state)
{
        (void)state;
        struct counting c = {0};
        struct wire_out *out = wire_out_new(counting_sink, &c);
        size_t n = 3 * 1024 * 1024 + 1;
        unsigned char *data = malloc(n);

        for (size_t i = 0; i < n; i++)
                data[i] = (unsigned char)(i * 7);
        /* a big write passes straight through in one sink call */
        assert_int_equal(wire_out_write(out, "ab", 2), 0);
        assert_int_equal(wire_out_write(out, data, n), 0);
        assert_int_equal(c.biggest, n);
        assert_int_equal(c.total, n + 2);
        /* base64 goes out in pieces, none the size of the data */
        c.biggest = 0;
        free(c.sb.data);
        memset(&c.sb, 0, sizeof(c.sb));
        c.total = 0;
        assert_int_equal(wire_write_base64(out, data, n), 0);
        assert_int_equal(wire_out_flush(out), 0);
        assert_int_equal(c.total, (n + 2) / 3 * 4);
        assert_true(c.biggest <= 128 * 1024);
        assert_memory_equal(c.sb.data, "AAcOFRwjKjE4P0ZN", 16);
        assert_memory_equal(c.sb.data + c.total - 4, "AA==", 4);
        unsigned char small[5] = "hello";
        c.total = 0;
        free(c.sb.data);
        memset(&c.sb, 0, sizeof(c.sb));
        assert_int_equal(wire_write_base64(out, small, 5), 0);
        assert_int_equal(wire_out_flush(out), 0);
        assert_memory_equal(c.sb.data, "aGVsbG8=", 8);
        /* a dead peer: writes report failure and nothing more reaches the sink */
        c.fail = true;
        assert_int_equal(wire_out_write(out, data, n), -1);
        c.fail = false;
        size_t calls = c.calls;
        assert_int_equal(wire_out_puts(out, "x"), -1);
        assert_int_equal(wire_out_flush(out), -1);
        assert_int_equal(c.calls, calls);
        wire_out_free(out);
        free(c.sb.data);
        free(data);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_split_basic),
                cmocka_unit_test(test_split_lexical_errors),
                cmocka_unit_test(test_split_recovery),
                cmocka_unit_test(test_split_parse_errors),
                cmocka_unit_test(test_split_values),
                cmocka_unit_test(test_split_chunking),
                cmocka_unit_test(test_split_stop),
                cmocka_unit_test(test_limit_depth_small),
                cmocka_unit_test(test_limit_depth_real),
                cmocka_unit_test(test_limit_tokens),
                cmocka_unit_test(test_limit_size),
                cmocka_unit_test(test_limit_memory_bounded),
                cmocka_unit_test(test_request),
                cmocka_unit_test(test_args),
                cmocka_unit_test(test_writer_escapes),
                cmocka_unit_test(test_writer_values),
                cmocka_unit_test(test_writer_replies),
                cmocka_unit_test(test_writer_streaming),
        };

        srand(12345);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
