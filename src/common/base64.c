/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "common/base64.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * b64_pairs[2 * v] and [2 * v + 1] are the two characters of the 12-bit value v: one lookup per
 * 12 bits instead of one per 6 halves the table work of the encoder (file reads are mostly
 * base64). Built by the preprocessor from string literals, so it is a const table of 8 KiB.
 */
#define B64_ROW(c)                                                                              \
        c "A" c "B" c "C" c "D" c "E" c "F" c "G" c "H" c "I" c "J" c "K" c "L" c "M" c "N"     \
        c "O" c "P" c "Q" c "R" c "S" c "T" c "U" c "V" c "W" c "X" c "Y" c "Z" c "a" c "b"     \
        c "c" c "d" c "e" c "f" c "g" c "h" c "i" c "j" c "k" c "l" c "m" c "n" c "o" c "p"     \
        c "q" c "r" c "s" c "t" c "u" c "v" c "w" c "x" c "y" c "z" c "0" c "1" c "2" c "3"     \
        c "4" c "5" c "6" c "7" c "8" c "9" c "+" c "/"
static const char b64_pairs[2 * 4096 + 1] =
        B64_ROW("A") B64_ROW("B") B64_ROW("C") B64_ROW("D") B64_ROW("E") B64_ROW("F")
        B64_ROW("G") B64_ROW("H") B64_ROW("I") B64_ROW("J") B64_ROW("K") B64_ROW("L")
        B64_ROW("M") B64_ROW("N") B64_ROW("O") B64_ROW("P") B64_ROW("Q") B64_ROW("R")
        B64_ROW("S") B64_ROW("T") B64_ROW("U") B64_ROW("V") B64_ROW("W") B64_ROW("X")
        B64_ROW("Y") B64_ROW("Z") B64_ROW("a") B64_ROW("b") B64_ROW("c") B64_ROW("d")
        B64_ROW("e") B64_ROW("f") B64_ROW("g") B64_ROW("h") B64_ROW("i") B64_ROW("j")
        B64_ROW("k") B64_ROW("l") B64_ROW("m") B64_ROW("n") B64_ROW("o") B64_ROW("p")
        B64_ROW("q") B64_ROW("r") B64_ROW("s") B64_ROW("t") B64_ROW("u") B64_ROW("v")
        B64_ROW("w") B64_ROW("x") B64_ROW("y") B64_ROW("z") B64_ROW("0") B64_ROW("1")
        B64_ROW("2") B64_ROW("3") B64_ROW("4") B64_ROW("5") B64_ROW("6") B64_ROW("7")
        B64_ROW("8") B64_ROW("9") B64_ROW("+") B64_ROW("/");
#undef B64_ROW

static inline void put_pair(char *o, uint64_t v)
{
        memcpy(o, b64_pairs + 2 * (v & 0xfff), 2);
}

/* The 8 characters of the 48 bits at the top of v. */
static inline void put_48(char *o, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint16_t a, b, c, d;
        uint64_t w;

        memcpy(&a, b64_pairs + 2 * (v >> 52), 2);
        memcpy(&b, b64_pairs + 2 * (v >> 40 & 0xfff), 2);
        memcpy(&c, b64_pairs + 2 * (v >> 28 & 0xfff), 2);
        memcpy(&d, b64_pairs + 2 * (v >> 16 & 0xfff), 2);
        w = a | (uint64_t)b << 16 | (uint64_t)c << 32 | (uint64_t)d << 48;
        memcpy(o, &w, 8);
#else
        put_pair(o, v >> 52);
        put_pair(o + 2, v >> 40);
        put_pair(o + 4, v >> 28);
        put_pair(o + 6, v >> 16);
#endif
}

static inline uint64_t load_be64(const unsigned char *p)
{
        uint64_t v;

        memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        return v;
}

/*
 * In place (see the header): every step loads its input before it stores, and after step k
 * (input bytes [k, k + 12) at in, output [4k/3, 4k/3 + 16) at out) the store ends at or before
 * the next unread byte, in + k + 12, whenever in - out >= len / 3, since k <= len - 14. The
 * 3-byte steps and the tail hold the same way.
 */
size_t tt_base64_encode(const void *in, size_t len, char *out)
{
        const unsigned char *p = in;
        char *o = out;
        size_t i = 0;

        /* 12 bytes per step from two 8-byte big-endian loads (their last 2 bytes unused). */
        for (; i + 14 <= len; i += 12) {
                uint64_t v = load_be64(p + i), w = load_be64(p + i + 6);

                put_48(o, v);
                put_48(o + 8, w);
                o += 16;
        }
        for (; i + 3 <= len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

                put_pair(o, v >> 12);
                put_pair(o + 2, v);
                o += 4;
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
