/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The stream splitter: qemu's json-lexer + json-streamer behaviour, byte for byte, in one pass.
 *
 * The lexer follows qemu's state table (single-quoted strings and \' included): a byte that is
 * not valid in the current state is a lexical error, reported as "JSON parse error, stray
 * '<token so far + the byte>'", after which bytes are skipped until a structural character, an
 * ASCII control character other than '\t', or 0xFE/0xFF. Completed tokens are counted as
 * qemu's streamer counts them ({} and [] depth, token bytes, token count), and a message is
 * handed to the parser when its braces and brackets balance (or either count goes negative).
 *
 * Memory: only the tokens of the current message are kept (no whitespace), never more than the
 * size limit: once a message is certain to exceed it, its earlier tokens are dropped and only
 * the token in progress is kept, since qemu would quote it in a stray-byte error.
 */
#include "wire/wire.h"
#include "wire/wire-int.h"

#include <errno.h>
#include <stdio.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

enum lex_state {
        LX_START,           /* between tokens */
        LX_RECOVERY,        /* after a lexical error: skipping to a resynchronisation byte */
        LX_DQ,              /* in "string" */
        LX_DQ_ESC,          /* after \ in "string" */
        LX_SQ,              /* in 'string' */
        LX_SQ_ESC,          /* after \ in 'string' */
        LX_ZERO,            /* 0 or -0 */
        LX_SIGN,            /* - */
        LX_DIGITS,          /* integer digits */
        LX_MANTISSA,        /* digits. */
        LX_MANTISSA_DIGITS, /* digits.digits */
        LX_EXP_E,           /* ...e */
        LX_EXP_SIGN,        /* ...e+ */
        LX_EXP_DIGITS,      /* ...e+digits */
        LX_KEYWORD,         /* [a-z]+ */
};

struct wire_splitter {
        uint64_t max_size;     /* bytes of tokens per message */
        uint64_t max_tokens;   /* tokens per message */
        unsigned max_depth;    /* {} + [] nesting */
        enum lex_state state;  /* lexer state */
        unsigned char *buf;    /* token records of the message, then the token in progress */
        size_t len;            /* bytes used in buf */
        size_t cap;            /* bytes allocated for buf */
        size_t tok;            /* offset of the record of the token in progress */
        uint64_t token_size;   /* text bytes of the completed tokens (qemu's token_size) */
        uint64_t ntokens;      /* completed tokens */
        long brace;            /* { minus } */
        long bracket;          /* [ minus ] */
        bool doomed;           /* over the size limit: earlier tokens already dropped */
};

struct wire_splitter *wire_splitter_new(void)
{
        struct wire_splitter *s = calloc(1, sizeof(*s));

        if (s == NULL)
                return NULL;
        s->max_size = WIRE_MAX_MESSAGE_SIZE;
        s->max_tokens = WIRE_MAX_TOKENS;
        s->max_depth = WIRE_MAX_DEPTH;
        s->state = LX_START;
        return s;
}

void wire_splitter_free(struct wire_splitter *s)
{
        if (s == NULL)
                return;
        free(s->buf);
        free(s);
}

void wire_splitter_set_limits(struct wire_splitter *s, uint64_t max_size, uint64_t max_tokens,
                              unsigned max_depth)
{
        if (max_size)
                s->max_size = max_size;
        if (max_tokens)
                s->max_tokens = max_tokens;
        if (max_depth)
                s->max_depth = max_depth;
}

/* Forget the message being collected (qemu's reset after every emission). */
static void drop_message(struct wire_splitter *s)
{
        s->len = 0;
        s->tok = 0;
        s->token_size = 0;
        s->ntokens = 0;
        s->brace = 0;
        s->bracket = 0;
        s->doomed = false;
        /* Give back a big buffer once a big message is gone. */
        if (s->cap > (1u << 20)) {
                free(s->buf);
                s->buf = NULL;
                s->cap = 0;
        }
}

void wire_splitter_reset(struct wire_splitter *s)
{
        drop_message(s);
        s->state = LX_START;
}

size_t wire_splitter_pending(const struct wire_splitter *s)
{
        return s->len;
}

static int reserve(struct wire_splitter *s, size_t more)
{
        size_t need = s->len + more, cap;
        unsigned char *p;

        if (need <= s->cap)
                return 0;
        cap = s->cap ? s->cap : 256;
        while (cap < need)
                cap = cap < (1u << 24) ? cap * 2 : cap + cap / 2;
        p = realloc(s->buf, cap);
        if (p == NULL)
                return -1;
        s->buf = p;
        s->cap = cap;
        return 0;
}

static int emit_error(struct wire_splitter *s, int code, char *msg, wire_message_fn fn,
                      void *opaque)
{
        struct tt_error err = {.code = code, .msg = msg};
        int r;

        drop_message(s);
        if (err.msg == NULL)
                err.msg = strdup("JSON parse error, out of memory");
        r = fn(opaque, NULL, &err);
        free(err.msg);
        return r < 0 ? r : 0;
}

static int emit_limit(struct wire_splitter *s, const char *what, wire_message_fn fn,
                      void *opaque)
{
        char *msg = NULL;

        if (asprintf(&msg, "JSON %s limit exceeded", what) < 0)
                msg = NULL;
        return emit_error(s, E2BIG, msg, fn, opaque);
}

/* Start recording a token: reserve its record header. */
static int token_begin(struct wire_splitter *s)
{
        if (reserve(s, WIRE_TOK_HDR) < 0)
                return -1;
        s->tok = s->len;
        s->len += WIRE_TOK_HDR;
        return 0;
}

/* Text bytes of the token in progress already copied into buf. */
static size_t token_stored(const struct wire_splitter *s)
{
        return s->len - s->tok - WIRE_TOK_HDR;
}

/*
 * Copy n more bytes of the token in progress. When the message can no longer fit the size
 * limit, the earlier tokens are dropped first so memory stays bounded.
 */
static int token_append(struct wire_splitter *s, const unsigned char *p, size_t n)
{
        if (n == 0)
                return 0;
        if (!s->doomed && s->token_size + token_stored(s) + n + 1 > s->max_size) {
                memmove(s->buf, s->buf + s->tok, s->len - s->tok);
                s->len -= s->tok;
                s->tok = 0;
                s->doomed = true;
        }
        if (reserve(s, n) < 0)
                return -1;
        memcpy(s->buf + s->len, p, n);
        s->len += n;
        return 0;
}

/* A lexical error: quote the token so far (up to its first NUL, as qemu's "%s" does). */
static int emit_stray(struct wire_splitter *s, wire_message_fn fn, void *opaque)
{
        const char *text = (const char *)s->buf + s->tok + WIRE_TOK_HDR;
        size_t n = token_stored(s);
        const char *nul = memchr(text, 0, n);
        char *msg = NULL;

        if (nul)
                n = (size_t)(nul - text);
        /* Quote a bounded prefix: an error line must not echo megabytes back (qemu would). */
        if (n > WIRE_MAX_QUOTE)
                n = WIRE_MAX_QUOTE;
        if (asprintf(&msg, "JSON parse error, stray '%.*s'", (int)n, text) < 0)
                msg = NULL;
        return emit_error(s, EINVAL, msg, fn, opaque);
}

/*
 * A token is complete (its record is at s->tok): qemu's json_message_process_token().
 */
static int token_done(struct wire_splitter *s, enum wire_tok type, wire_message_fn fn,
                      void *opaque)
{
        uint64_t len = token_stored(s);
        uint32_t len32 = (uint32_t)len;

        switch (type) {
        case WIRE_TOK_LCURLY: s->brace++; break;
        case WIRE_TOK_RCURLY: s->brace--; break;
        case WIRE_TOK_LSQUARE: s->bracket++; break;
        case WIRE_TOK_RSQUARE: s->bracket--; break;
        default: break;
        }
        if (s->doomed || s->token_size + len + 1 > s->max_size)
                return emit_limit(s, "token size", fn, opaque);
        if (s->ntokens + 1 > s->max_tokens)
                return emit_limit(s, "token count", fn, opaque);
        if (s->brace + s->bracket > (long)s->max_depth)
                return emit_limit(s, "nesting depth", fn, opaque);

        s->buf[s->tok] = (unsigned char)type;
        memcpy(s->buf + s->tok + 1, &len32, sizeof(len32));
        s->token_size += len;
        s->ntokens++;
        if ((s->brace > 0 || s->bracket > 0) && s->brace >= 0 && s->bracket >= 0)
                return 0;

        char *errmsg = NULL;
        json_t *msg = wire_parse_tokens(s->buf, s->len, &errmsg);

        if (msg == NULL)
                return emit_error(s, EINVAL, errmsg, fn, opaque);
        drop_message(s);
        int r = fn(opaque, msg, NULL);
        return r < 0 ? r : 0;
}

/* A one-byte structural token. */
static int structural(struct wire_splitter *s, enum wire_tok type, unsigned char c,
                      wire_message_fn fn, void *opaque)
{
        if (token_begin(s) < 0 || token_append(s, &c, 1) < 0)
                return -ENOMEM;
        return token_done(s, type, fn, opaque);
}

/* Where recovery stops: structural characters, control characters but '\t', 0xFE, 0xFF. */
static inline bool resync_byte(unsigned char c)
{
        return (c < 0x20 && c != '\t') || c >= 0xFE || c == '[' || c == ']' || c == '{' ||
               c == '}' || c == ':' || c == ',';
}

/*
 * Count leading bytes that continue a string unchanged: 0x20..0xFD but the quote and '\\'.
 * This is the loop every byte of a 64 MiB guest-file-write goes through, 16 bytes at a time.
 */
static size_t string_run(const unsigned char *p, size_t n, unsigned char quote)
{
        size_t i = 0;

#ifdef __SSE2__
        /* Signed compares on bytes ^ 0x80 are unsigned compares on the bytes. */
        const __m128i flip = _mm_set1_epi8((char)0x80);
        const __m128i lo = _mm_set1_epi8((char)(0x20 ^ 0x80)), hi = _mm_set1_epi8((char)(0xFD ^ 0x80));
        const __m128i q = _mm_set1_epi8((char)quote), bs = _mm_set1_epi8('\\');

        while (i + 16 <= n) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
                __m128i x = _mm_xor_si128(v, flip);
                __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(x, lo), _mm_cmpgt_epi8(x, hi)),
                                           _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)));
                int mask = _mm_movemask_epi8(bad);

                if (mask)
                        return i + (size_t)__builtin_ctz((unsigned)mask);
                i += 16;
        }
#else
        const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
        const uint64_t q = ones * quote, bs = ones * '\\';

        while (i + 8 <= n) {
                uint64_t w, a, b, c, d;

                memcpy(&w, p + i, 8);
                a = (w - ones * 0x20) & ~w;            /* bytes < 0x20 */
                b = ((w ^ q) - ones) & ~(w ^ q);       /* == quote */
                c = ((w ^ bs) - ones) & ~(w ^ bs);     /* == '\\' */
                d = (~(w | ones) - ones) & (w | ones); /* 0xFE, 0xFF */
                if ((a | b | c | d) & high)
                        break;
                i += 8;
        }
#endif
        while (i < n && p[i] >= 0x20 && p[i] <= 0xFD && p[i] != quote && p[i] != '\\')
                i++;
        return i;
}

enum step {
        STEP_STAY,      /* byte consumed, token goes on (state may change) */
        STEP_DONE,      /* byte consumed and ends the token */
        STEP_LOOKAHEAD, /* token ended before this byte; byte is looked at again */
        STEP_ERROR,     /* byte consumed and invalid here */
};

/* One byte in a token state (not LX_START, not LX_RECOVERY). */
static enum step lex_step(enum lex_state *st, unsigned char c, enum wire_tok *type)
{
        bool digit = c >= '0' && c <= '9';

        switch (*st) {
        case LX_DQ:
        case LX_SQ:
                if (c < 0x20 || c > 0xFD)
                        return STEP_ERROR;
                if (c == '\\')
                        *st = *st == LX_DQ ? LX_DQ_ESC : LX_SQ_ESC;
                else if (c == (*st == LX_DQ ? '"' : '\'')) {
                        *type = WIRE_TOK_STRING;
                        return STEP_DONE;
                }
                return STEP_STAY;
        case LX_DQ_ESC:
        case LX_SQ_ESC:
                if (c < 0x20 || c > 0xFD)
                        return STEP_ERROR;
                *st = *st == LX_DQ_ESC ? LX_DQ : LX_SQ;
                return STEP_STAY;
        case LX_ZERO:
                if (digit)
                        return STEP_ERROR;
                if (c == '.') {
                        *st = LX_MANTISSA;
                        return STEP_STAY;
                }
                *type = WIRE_TOK_INTEGER;
                return STEP_LOOKAHEAD;
        case LX_SIGN:
                if (!digit)
                        return STEP_ERROR;
                *st = c == '0' ? LX_ZERO : LX_DIGITS;
                return STEP_STAY;
        case LX_DIGITS:
                if (digit)
                        return STEP_STAY;
                if (c == 'e' || c == 'E' || c == '.') {
                        *st = c == '.' ? LX_MANTISSA : LX_EXP_E;
                        return STEP_STAY;
                }
                *type = WIRE_TOK_INTEGER;
                return STEP_LOOKAHEAD;
        case LX_MANTISSA:
                if (!digit)
                        return STEP_ERROR;
                *st = LX_MANTISSA_DIGITS;
                return STEP_STAY;
        case LX_MANTISSA_DIGITS:
                if (digit)
                        return STEP_STAY;
                if (c == 'e' || c == 'E') {
                        *st = LX_EXP_E;
                        return STEP_STAY;
                }
                *type = WIRE_TOK_FLOAT;
                return STEP_LOOKAHEAD;
        case LX_EXP_E:
                if (c == '+' || c == '-') {
                        *st = LX_EXP_SIGN;
                        return STEP_STAY;
                }
                if (!digit)
                        return STEP_ERROR;
                *st = LX_EXP_DIGITS;
                return STEP_STAY;
        case LX_EXP_SIGN:
                if (!digit)
                        return STEP_ERROR;
                *st = LX_EXP_DIGITS;
                return STEP_STAY;
        case LX_EXP_DIGITS:
                if (digit)
                        return STEP_STAY;
                *type = WIRE_TOK_FLOAT;
                return STEP_LOOKAHEAD;
        case LX_KEYWORD:
                if (c >= 'a' && c <= 'z')
                        return STEP_STAY;
                *type = WIRE_TOK_KEYWORD;
                return STEP_LOOKAHEAD;
        case LX_START:
        case LX_RECOVERY:
        default:
                return STEP_ERROR;
        }
}

int wire_splitter_feed(struct wire_splitter *s, const void *data, size_t n, wire_message_fn fn,
                       void *opaque)
{
        const unsigned char *p = data;
        size_t i = 0, seg = 0; /* p[seg..i) is the part of the token in progress not yet in buf */
        enum wire_tok type;
        int r;

        while (i < n) {
                unsigned char c = p[i];

                switch (s->state) {
                case LX_START:
                        switch (c) {
                        case ' ': case '\t': case '\r': case '\n':
                                i++;
                                continue;
                        case '{': type = WIRE_TOK_LCURLY; break;
                        case '}': type = WIRE_TOK_RCURLY; break;
                        case '[': type = WIRE_TOK_LSQUARE; break;
                        case ']': type = WIRE_TOK_RSQUARE; break;
                        case ':': type = WIRE_TOK_COLON; break;
                        case ',': type = WIRE_TOK_COMMA; break;
                        default:
                                if (token_begin(s) < 0)
                                        return -ENOMEM;
                                seg = i++;
                                if (c == '"')
                                        s->state = LX_DQ;
                                else if (c == '\'')
                                        s->state = LX_SQ;
                                else if (c == '0')
                                        s->state = LX_ZERO;
                                else if (c >= '1' && c <= '9')
                                        s->state = LX_DIGITS;
                                else if (c == '-')
                                        s->state = LX_SIGN;
                                else if (c >= 'a' && c <= 'z')
                                        s->state = LX_KEYWORD;
                                else {
                                        if (token_append(s, p + seg, 1) < 0)
                                                return -ENOMEM;
                                        s->state = LX_RECOVERY;
                                        if ((r = emit_stray(s, fn, opaque)) < 0)
                                                return r;
                                }
                                goto check_size;
                        }
                        i++;
                        if ((r = structural(s, type, c, fn, opaque)) < 0)
                                return r;
                        continue;
                case LX_RECOVERY:
                        while (i < n && !resync_byte(p[i]))
                                i++;
                        if (i < n)
                                s->state = LX_START;
                        continue;
                case LX_DQ:
                case LX_SQ: {
                        /* Long strings (base64 file data) are skipped in bulk up to the limit. */
                        uint64_t have = token_stored(s) + (i - seg);
                        size_t room = have < s->max_size ? (size_t)(s->max_size - have) : 0;
                        size_t avail = n - i < room ? n - i : room;

                        i += string_run(p + i, avail, s->state == LX_DQ ? '"' : '\'');
                        if (i == n)
                                continue;
                        c = p[i];
                        break;
                }
                default:
                        break;
                }

                switch (lex_step(&s->state, c, &type)) {
                case STEP_STAY:
                        i++;
                        break;
                case STEP_DONE:
                        i++;
                        if (token_append(s, p + seg, i - seg) < 0)
                                return -ENOMEM;
                        s->state = LX_START;
                        if ((r = token_done(s, type, fn, opaque)) < 0)
                                return r;
                        continue;
                case STEP_LOOKAHEAD:
                        if (token_append(s, p + seg, i - seg) < 0)
                                return -ENOMEM;
                        s->state = LX_START;
                        if ((r = token_done(s, type, fn, opaque)) < 0)
                                return r;
                        continue;
                case STEP_ERROR:
                        i++;
                        if (token_append(s, p + seg, i - seg) < 0)
                                return -ENOMEM;
                        s->state = LX_RECOVERY;
                        if ((r = emit_stray(s, fn, opaque)) < 0)
                                return r;
                        continue;
                }
check_size:
                /* qemu cuts a single token at the size limit and lexes on from the start state */
                if (s->state != LX_START && s->state != LX_RECOVERY &&
                    token_stored(s) + (i - seg) > s->max_size) {
                        s->state = LX_START;
                        if ((r = emit_limit(s, "token size", fn, opaque)) < 0)
                                return r;
                }
        }
        if (s->state != LX_START && s->state != LX_RECOVERY) {
                if (token_append(s, p + seg, n - seg) < 0)
                        return -ENOMEM;
        }
        return 0;
}
