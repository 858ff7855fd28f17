/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Internals shared by the wire module's files; not for use outside src/wire/. */
#ifndef TT_WIRE_INT_H
/* Error texts quote at most this many bytes of the offending input. */
#define WIRE_MAX_QUOTE 256
#define TT_WIRE_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Token types the splitter stores for the parser (one byte in the token record). */
enum wire_tok {
        WIRE_TOK_LCURLY = 1,
        WIRE_TOK_RCURLY,
        WIRE_TOK_LSQUARE,
        WIRE_TOK_RSQUARE,
        WIRE_TOK_COLON,
        WIRE_TOK_COMMA,
        WIRE_TOK_INTEGER,
        WIRE_TOK_FLOAT,
        WIRE_TOK_KEYWORD,
        WIRE_TOK_STRING,
};

/* Bytes in front of each stored token: type (1) and text length (4, native endian). */
#define WIRE_TOK_HDR 5

/*
 * Decode one modified-UTF-8 sequence at s (at most n bytes), as qemu's mod_utf8_codepoint():
 * "\xC0\x80" is U+0000; overlong forms, surrogates, noncharacters and values beyond U+10FFFF
 * are invalid (-1). *len gets the bytes the sequence took (at least 1 when n > 0).
 */
int wire_utf8_decode(const unsigned char *s, size_t n, size_t *len);

/*
 * Parse the tokens of one complete message (records as above, `len` bytes). Returns the value,
 * or NULL with *errmsg set to qemu's "JSON parse error, ..." text (malloc'd).
 */
json_t *wire_parse_tokens(const unsigned char *toks, size_t len, char **errmsg);

#endif
