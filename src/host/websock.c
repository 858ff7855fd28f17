/* SPDX-License-Identifier: GPL-2.0-or-later */
/* RFC 6455 framing, server side, without I/O (websock.h). */
#include "host/websock.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static bool is_base64(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '/';
}

bool ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1])
{
        unsigned char digest[SHA_DIGEST_LENGTH];
        char buf[24 + sizeof(WS_GUID)];

        /* 16 bytes in base64: 22 digits and "==". */
        if (key == NULL || strlen(key) != 24 || strcmp(key + 22, "==") != 0)
                return false;
        for (size_t i = 0; i < 22; i++)
                if (!is_base64(key[i]))
                        return false;
        memcpy(buf, key, 24);
        memcpy(buf + 24, WS_GUID, sizeof(WS_GUID));
        SHA1((const unsigned char *)buf, strlen(buf), digest);
        return EVP_EncodeBlock((unsigned char *)out, digest, sizeof(digest)) == WS_ACCEPT_LEN;
}

bool ws_has_token(const char *value, const char *token)
{
        size_t tl = strlen(token);

        while (value && *value) {
                const char *end;
                size_t n;

                value += strspn(value, " \t,");
                end = value + strcspn(value, ",");
                n = (size_t)(end - value);
                while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
                        n--;
                if (n == tl && n > 0 && strncasecmp(value, token, n) == 0)
                        return true;
                value = end;
        }
        return false;
}

void ws_reader_init(struct ws_reader *r, uint64_t max_frame)
{
        memset(r, 0, sizeof(*r));
        r->max_frame = max_frame;
}

static enum ws_event fail(struct ws_reader *r, unsigned code, const char *why)
{
        r->error_code = code;
        r->error = why;
        return WS_EV_ERROR;
}

static void unmask(struct ws_reader *r, uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                p[i] ^= r->mask[(r->offset + i) & 3];
        r->offset += n;
}

/* Parse a header at buf: its length, 0 when incomplete, or -1 (r->error set). */
static int read_header(struct ws_reader *r, const uint8_t *buf, size_t len)
{
        size_t need = 2;
        uint64_t plen;
        unsigned op;

        if (len < 2)
                return 0;
        op = buf[0] & 0x0f;
        plen = buf[1] & 0x7f;
        if (buf[0] & 0x70)
                return fail(r, WS_CLOSE_PROTOCOL, "reserved bits set (no extension was agreed)"),
                       -1;
        if (!(buf[1] & 0x80))
                return fail(r, WS_CLOSE_PROTOCOL, "an unmasked frame from the client"), -1;
        need += plen == 126 ? 2 : plen == 127 ? 8 : 0;
        need += 4;
        if (len < need)
                return 0;
        if (plen == 126) {
                plen = (uint64_t)buf[2] << 8 | buf[3];
                if (plen < 126)
                        return fail(r, WS_CLOSE_PROTOCOL, "a length not in its shortest form"), -1;
        } else if (plen == 127) {
                plen = 0;
                for (int i = 0; i < 8; i++)
                        plen = plen << 8 | buf[2 + i];
                if (plen >> 63)
                        return fail(r, WS_CLOSE_PROTOCOL, "a length with its top bit set"), -1;
                if (plen < 65536)
                        return fail(r, WS_CLOSE_PROTOCOL, "a length not in its shortest form"), -1;
        }
        r->fin = buf[0] & 0x80;
        r->opcode = (uint8_t)op;
        memcpy(r->mask, buf + need - 4, 4);
        r->left = plen;
        r->offset = 0;
        switch (op) {
        case WS_OP_CLOSE:
        case WS_OP_PING:
        case WS_OP_PONG:
                if (!r->fin)
                        return fail(r, WS_CLOSE_PROTOCOL, "a fragmented control frame"), -1;
                if (plen > WS_MAX_CONTROL)
                        return fail(r, WS_CLOSE_PROTOCOL, "a control frame over 125 bytes"), -1;
                break;
        case WS_OP_TEXT:
                return fail(r, WS_CLOSE_UNSUPPORTED, "a text frame (VNC is binary)"), -1;
        case WS_OP_BINARY:
                if (r->in_message)
                        return fail(r, WS_CLOSE_PROTOCOL,
                                    "a new message before the last one's final fragment"),
                               -1;
                break;
        case WS_OP_CONT:
                if (!r->in_message)
                        return fail(r, WS_CLOSE_PROTOCOL, "a continuation outside a message"), -1;
                break;
        default:
                return fail(r, WS_CLOSE_PROTOCOL, "an unknown opcode"), -1;
        }
        if ((op == WS_OP_BINARY || op == WS_OP_CONT) && plen > r->max_frame)
                return fail(r, WS_CLOSE_TOO_BIG, "a frame over the size limit"), -1;
        if (op == WS_OP_BINARY || op == WS_OP_CONT)
                r->in_message = !r->fin;
        r->in_frame = true;
        return (int)need;
}

enum ws_event ws_read(struct ws_reader *r, uint8_t *buf, size_t len, size_t *used, uint8_t **data,
                      size_t *data_len)
{
        *used = 0;
        *data = NULL;
        *data_len = 0;
        for (;;) {
                if (!r->in_frame) {
                        int h = read_header(r, buf + *used, len - *used);

                        if (h < 0)
                                return WS_EV_ERROR;
                        if (h == 0)
                                return WS_EV_NONE;
                        *used += (size_t)h;
                }
                if (r->opcode == WS_OP_BINARY || r->opcode == WS_OP_CONT) {
                        size_t n = len - *used;

                        if (n > r->left)
                                n = (size_t)r->left;
                        if (r->left > 0 && n == 0)
                                return WS_EV_NONE;
                        unmask(r, buf + *used, n);
                        *data = buf + *used;
                        *data_len = n;
                        *used += n;
                        r->left -= n;
                        if (r->left == 0)
                                r->in_frame = false;
                        if (n > 0)
                                return WS_EV_DATA;
                        continue; /* an empty frame: nothing to give */
                }
                /* A control frame: all of it at once. */
                if (len - *used < r->left)
                        return WS_EV_NONE;
                r->control_len = (size_t)r->left;
                memcpy(r->control, buf + *used, r->control_len);
                unmask(r, r->control, r->control_len);
                *used += r->control_len;
                r->left = 0;
                r->in_frame = false;
                switch (r->opcode) {
                case WS_OP_PING:
                        return WS_EV_PING;
                case WS_OP_PONG:
                        return WS_EV_PONG;
                default:
                        if (r->control_len == 1)
                                return fail(r, WS_CLOSE_PROTOCOL, "a close frame of one byte");
                        r->close_code = r->control_len >= 2
                                            ? (unsigned)r->control[0] << 8 | r->control[1]
                                            : 1005;
                        return WS_EV_CLOSE;
                }
        }
}

size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], enum ws_opcode op, uint64_t len)
{
        out[0] = (uint8_t)(0x80 | op);
        if (len < 126) {
                out[1] = (uint8_t)len;
                return 2;
        }
        if (len < 65536) {
                out[1] = 126;
                out[2] = (uint8_t)(len >> 8);
                out[3] = (uint8_t)len;
                return 4;
        }
        out[1] = 127;
        for (int i = 0; i < 8; i++)
                out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        return 10;
}
