/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The WebSocket reader (websock.h) on what a browser, or anyone who reaches the console's port
 * with a session, sends. The first byte splits the rest into the pieces it arrives in (as
 * TCP would); the first piece is also a Sec-WebSocket-Key and a header value. Invariants: the
 * reader never reads past what it was given and always makes progress or asks for more; data
 * it returns lies inside the buffer, is not longer than the frame limit, and only comes in
 * binary messages; a control payload is at most 125 bytes; an error says why with a close
 * code; an accept key is 28 base64 characters; a library path accepted has no "." or ".." component.
 */
#include "fuzz.h"

#include <string.h>

#include "host/web_parse.h"
#include "host/websock.h"

#define MAX_FRAME 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ws_reader r;
        size_t piece, off = 0, pending = 0;
        uint8_t *buf;
        char *text, accept[WS_ACCEPT_LEN + 1];

        if (size == 0)
                return 0;
        piece = (size_t)data[0] % 64 + 1;
        data++;
        size--;
        text = fuzz_strndup(data, size < 64 ? size : 64);
        if (ws_accept_key(text, accept))
                FUZZ_CHECK(strlen(accept) == WS_ACCEPT_LEN);
        (void)ws_has_token(text, "upgrade");
        if (web_lib_path_ok(text)) {
                /* No component is "." or ".." (a name like "..js" is one file). */
                char *copy = strdup(text), *save = NULL;

                FUZZ_CHECK(text[0] != '/' && strstr(text, "//") == NULL);
                for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save))
                        FUZZ_CHECK(strcmp(c, "..") != 0 && strcmp(c, ".") != 0);
                free(copy);
        }
        free(text);

        /* The bytes arrive piece by piece; unconsumed ones wait in front of the next piece. */
        buf = malloc(size + 1);
        ws_reader_init(&r, MAX_FRAME);
        while (off < size || pending > 0) {
                size_t add = size - off < piece ? size - off : piece, len, used, dlen;
                uint8_t *d;
                enum ws_event ev;

                memcpy(buf + pending, data + off, add);
                off += add;
                len = pending + add;
                ev = ws_read(&r, buf, len, &used, &d, &dlen);
                FUZZ_CHECK(used <= len);
                if (ev == WS_EV_DATA) {
                        FUZZ_CHECK(d >= buf && d + dlen <= buf + len && dlen > 0);
                        FUZZ_CHECK(dlen <= MAX_FRAME);
                        FUZZ_CHECK(r.opcode == WS_OP_BINARY || r.opcode == WS_OP_CONT);
                }
                if (ev == WS_EV_PING || ev == WS_EV_PONG || ev == WS_EV_CLOSE)
                        FUZZ_CHECK(r.control_len <= WS_MAX_CONTROL);
                if (ev == WS_EV_ERROR) {
                        FUZZ_CHECK(r.error != NULL && r.error_code >= 1000);
                        break;
                }
                if (ev == WS_EV_CLOSE)
                        break;
                memmove(buf, buf + used, len - used);
                pending = len - used;
                if (ev == WS_EV_NONE && off >= size)
                        break; /* nothing more will come */
                FUZZ_CHECK(ev != WS_EV_NONE || used > 0 || add > 0 || pending == 0);
        }
        free(buf);
        return 0;
}
