/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "common/base64.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static const char b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t tt_base64_encode(const void *in, size_t len, char *out)
{
        const unsigned char *p = in;
        char *o = out;
        size_t i;

        for (i = 0; i + 3 <= len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
                *o++ = b64_alphabet[v >> 18];
                *o++ = b64_alphabet[(v >> 12) & 63];
                *o++ = b64_alphabet[(v >> 6) & 63];
                *o++ = b64_alphabet[v & 63];
        }
        if (len - i == 1) {
                uint32_t v = (uint32_t)p[i] << 16;
                *o++ = b64_alphabet[v >> 18];
                *o++ = b64_alphabet[(v >> 12) & 63];
                *o++ = '=';
                *o++ = '=';
        } else if (len - i == 2) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
                *o++ = b64_alphabet[v >> 18];
                *o++ = b64_alphabet[(v >> 12) & 63];
                *o++ = b64_alphabet[(v >> 6) & 63];
                *o++ = '=';
        }
        return (size_t)(o - out);
}

static int b64_value(unsigned char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int tt_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len,
                     struct tt_error *err)
{
        unsigned char *buf, *o;
        uint32_t acc = 0;
        size_t i, nchars = 0, pad = 0;

        /* Decoded size is at most 3/4 of the input; the input length is already bounded. */
        buf = malloc(len / 4 * 3 + 4);
        if (buf == NULL)
                return tt_error_set(err, ENOMEM, "out of memory decoding base64");
        o = buf;
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)in[i];
                int v;

                if (c == '\n')
                        continue;
                if (c == '=') {
                        pad++;
                        nchars++;
                        continue;
                }
                v = b64_value(c);
                if (v < 0 || pad > 0)
                        goto invalid;
                acc = acc << 6 | (uint32_t)v;
                nchars++;
                if (nchars % 4 == 0) {
                        *o++ = (unsigned char)(acc >> 16);
                        *o++ = (unsigned char)(acc >> 8);
                        *o++ = (unsigned char)acc;
                        acc = 0;
                }
        }
        if (nchars % 4 != 0 || pad > 2)
                goto invalid;
        if (pad) {
                /* The last quantum held 4 - pad characters. */
                if (pad == 1) {
                        acc <<= 6;
                        *o++ = (unsigned char)(acc >> 16);
                        *o++ = (unsigned char)(acc >> 8);
                } else {
                        acc <<= 12;
                        *o++ = (unsigned char)(acc >> 16);
                }
        }
        *o = '\0';
        *out = buf;
        *out_len = (size_t)(o - buf);
        return 0;
invalid:
        free(buf);
        return tt_error_set(err, EINVAL, "Invalid Base64 data");
}
