/* SPDX-License-Identifier: GPL-2.0-or-later */
/* RFC 6455 framing (websock.h): the accept key, the client-frame reader, server frame headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "host/web_parse.h"
#include "host/websock.h"

static void test_accept_key(void **state)
{
        char out[WS_ACCEPT_LEN + 1];

        /* RFC 6455 section 1.3's example. */
        assert_true(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out));
        assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_false(ws_accept_key(NULL, out));
        assert_false(ws_accept_key("", out));
        assert_false(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=", out));   /* 23 characters */
        assert_false(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ===", out)); /* 25 */
        assert_false(ws_accept_key("dGhlIHNhbXBsZSBub25jZ*==", out));  /* not base64 */
        assert_false(ws_accept_key("dGhlIHNhbXBsZSBub25jZQAA", out));  /* not 16 bytes */
}

static void test_tokens(void **state)
{
        assert_true(ws_has_token("Upgrade", "upgrade"));
        assert_true(ws_has_token("keep-alive, Upgrade", "upgrade"));
        assert_true(ws_has_token("  websocket ,x", "websocket"));
        assert_false(ws_has_token("keep-alive", "upgrade"));
        assert_false(ws_has_token("upgraded", "upgrade"));
        assert_false(ws_has_token(NULL, "upgrade"));
        assert_false(ws_has_token("", "upgrade"));
}

/* A masked client frame of payload into out; its length. */
static size_t client_frame(uint8_t *out, uint8_t first, const uint8_t *payload, size_t len)
{
        static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
        size_t n = 0;

        out[n++] = first;
        if (len < 126) {
                out[n++] = (uint8_t)(0x80 | len);
        } else {
                out[n++] = 0x80 | 126;
                out[n++] = (uint8_t)(len >> 8);
                out[n++] = (uint8_t)len;
        }
        memcpy(out + n, mask, 4);
        n += 4;
        for (size_t i = 0; i < len; i++)
                out[n + i] = payload[i] ^ mask[i & 3];
        return n + len;
}

static void test_reader_data_and_control(void **state)
{
        struct ws_reader r;
        uint8_t buf[1024], payload[300], *data;
        size_t n = 0, used, dlen;

        for (size_t i = 0; i < sizeof(payload); i++)
                payload[i] = (uint8_t)i;
        ws_reader_init(&r, 4096);
        /* A message in two fragments, a ping between them. */
        n += client_frame(buf + n, WS_OP_BINARY, payload, 200);
        n += client_frame(buf + n, 0x80 | WS_OP_PING, (const uint8_t *)"hi", 2);
        n += client_frame(buf + n, 0x80 | WS_OP_CONT, payload + 200, 100);
        n += client_frame(buf + n, 0x80 | WS_OP_CLOSE, (const uint8_t *)"\x03\xe8", 2);

        /* A header cut short: nothing yet. */
        assert_int_equal(ws_read(&r, buf, 3, &used, &data, &dlen), WS_EV_NONE);
        assert_int_equal(used, 0);
        /* Half the first payload, then the rest. */
        assert_int_equal(ws_read(&r, buf, 8 + 100, &used, &data, &dlen), WS_EV_DATA);
        assert_int_equal(used, 108);
        assert_int_equal(dlen, 100);
        assert_memory_equal(data, payload, 100);
        size_t off = used;
        assert_int_equal(ws_read(&r, buf + off, n - off, &used, &data, &dlen), WS_EV_DATA);
        assert_int_equal(dlen, 100);
        assert_memory_equal(data, payload + 100, 100);
        off += used;
        assert_int_equal(ws_read(&r, buf + off, n - off, &used, &data, &dlen), WS_EV_PING);
        assert_int_equal(r.control_len, 2);
        assert_memory_equal(r.control, "hi", 2);
        off += used;
        assert_int_equal(ws_read(&r, buf + off, n - off, &used, &data, &dlen), WS_EV_DATA);
        assert_int_equal(dlen, 100);
        assert_memory_equal(data, payload + 200, 100);
        off += used;
        assert_int_equal(ws_read(&r, buf + off, n - off, &used, &data, &dlen), WS_EV_CLOSE);
        assert_int_equal(r.close_code, 1000);
        assert_int_equal(off + used, n);
}

static enum ws_event one(const uint8_t *frame, size_t len, uint64_t max, struct ws_reader *r)
{
        uint8_t buf[64];
        uint8_t *data;
        size_t used, dlen;

        memcpy(buf, frame, len);
        ws_reader_init(r, max);
        return ws_read(r, buf, len, &used, &data, &dlen);
}

static void test_reader_errors(void **state)
{
        struct ws_reader r;
        uint8_t f[64];
        size_t n;

        /* Unmasked. */
        assert_int_equal(one((const uint8_t *)"\x82\x01x", 3, 100, &r), WS_EV_ERROR);
        assert_string_equal(r.error, "an unmasked frame from the client");
        assert_int_equal(r.error_code, 1002);
        /* Text. */
        n = client_frame(f, 0x81, (const uint8_t *)"abc", 3);
        assert_int_equal(one(f, n, 100, &r), WS_EV_ERROR);
        assert_int_equal(r.error_code, 1003);
        /* Too big. */
        n = client_frame(f, 0x82, (const uint8_t *)"abcdef", 6);
        assert_int_equal(one(f, n, 5, &r), WS_EV_ERROR);
        assert_int_equal(r.error_code, 1009);
        /* A continuation with no message. */
        n = client_frame(f, 0x80, (const uint8_t *)"a", 1);
        assert_int_equal(one(f, n, 100, &r), WS_EV_ERROR);
        assert_string_equal(r.error, "a continuation outside a message");
        /* A fragmented ping. */
        n = client_frame(f, WS_OP_PING, (const uint8_t *)"a", 1);
        assert_int_equal(one(f, n, 100, &r), WS_EV_ERROR);
        /* Reserved bits. */
        n = client_frame(f, 0xc2, (const uint8_t *)"a", 1);
        assert_int_equal(one(f, n, 100, &r), WS_EV_ERROR);
        /* A 16-bit length that fits in 7 bits. */
        assert_int_equal(one((const uint8_t *)"\x82\xfe\x00\x05\x00\x00\x00\x00", 8, 100, &r),
                         WS_EV_ERROR);
        assert_string_equal(r.error, "a length not in its shortest form");
}

static void test_frame_header(void **state)
{
        uint8_t h[WS_MAX_HEADER];

        assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 5), 2);
        assert_memory_equal(h, "\x82\x05", 2);
        assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 300), 4);
        assert_memory_equal(h, "\x82\x7e\x01\x2c", 4);
        assert_int_equal(ws_frame_header(h, WS_OP_CLOSE, 70000), 10);
        assert_memory_equal(h, "\x88\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10);
}

static void test_lib_path(void **state)
{
        assert_true(web_lib_path_ok("core/rfb.js"));
        assert_true(web_lib_path_ok("vendor/pako/lib/zlib/inflate.js"));
        assert_true(web_lib_path_ok("chart.min.js"));
        assert_false(web_lib_path_ok("../../etc/passwd.js"));
        assert_false(web_lib_path_ok("core/../../x.js"));
        assert_false(web_lib_path_ok("/etc/x.js"));
        assert_false(web_lib_path_ok("core//rfb.js"));
        assert_false(web_lib_path_ok("core/./rfb.js"));
        assert_false(web_lib_path_ok("vnc.html"));
        assert_false(web_lib_path_ok("core/rfb.js%00"));
        assert_false(web_lib_path_ok(".js"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_accept_key),
            cmocka_unit_test(test_tokens),
            cmocka_unit_test(test_reader_data_and_control),
            cmocka_unit_test(test_reader_errors),
            cmocka_unit_test(test_frame_header),
            cmocka_unit_test(test_lib_path),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
