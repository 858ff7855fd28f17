/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * RFC 6455 WebSocket framing, server side, without I/O: the handshake's accept key, a reader
 * that turns a client's bytes into payload and control frames (masked frames only, bounded
 * frame and control sizes, fragmentation checked), and the header of a server frame. The web
 * console's VNC proxy (web_vnc.c) moves the bytes; tests/fuzz/fuzz_websock.c feeds the reader.
 */
#ifndef TT_HOST_WEBSOCK_H
#define TT_HOST_WEBSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The accept key's length: base64 of SHA-1's 20 bytes. */
#define WS_ACCEPT_LEN 28
/* A control frame's payload is at most this long (RFC 6455 5.5). */
#define WS_MAX_CONTROL 125
/* The longest frame header: 2 + 8 (length) + 4 (mask). */
#define WS_MAX_HEADER 14

enum ws_opcode {
        WS_OP_CONT = 0x0,
        WS_OP_TEXT = 0x1,
        WS_OP_BINARY = 0x2,
        WS_OP_CLOSE = 0x8,
        WS_OP_PING = 0x9,
        WS_OP_PONG = 0xa,
};

/* Close codes this server sends. */
enum ws_close_code {
        WS_CLOSE_NORMAL = 1000,
        WS_CLOSE_GOING_AWAY = 1001,
        WS_CLOSE_PROTOCOL = 1002,
        WS_CLOSE_UNSUPPORTED = 1003,
        WS_CLOSE_TOO_BIG = 1009,
        WS_CLOSE_ERROR = 1011,
};

/*
 * The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key: false when the key is not
 * the base64 of 16 bytes (RFC 6455 4.2.1). out gets WS_ACCEPT_LEN characters and a NUL.
 */
bool ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1]);

/*
 * Whether a comma-separated header value (Connection, Upgrade, Sec-WebSocket-Protocol) holds
 * token, compared without case; NULL value: false.
 */
bool ws_has_token(const char *value, const char *token);

/* What ws_read() found. */
enum ws_event {
        WS_EV_NONE,  /* nothing complete: feed more bytes */
        WS_EV_DATA,  /* payload of a binary message (any fragment), unmasked in place */
        WS_EV_PING,  /* a ping: answer with a pong of the same payload (r->control) */
        WS_EV_PONG,  /* a pong: nothing to do */
        WS_EV_CLOSE, /* the client closes; r->close_code is its code or 1005 (none) */
        WS_EV_ERROR, /* a protocol error: close with r->error_code; r->error says why */
};

/* The reader's state between calls. Zero it (or ws_reader_init) before the first. */
struct ws_reader {
        uint64_t max_frame; /* a data frame longer than this is an error (1009) */
        bool in_frame;      /* a frame's header was read: its payload follows */
        bool in_message;    /* a fragmented message has begun (continuations are valid) */
        uint8_t opcode;     /* the current frame's */
        bool fin;           /* the current frame ends its message */
        uint8_t mask[4];    /* the current frame's mask */
        uint64_t left;      /* payload bytes of the current frame not read yet */
        uint64_t offset;    /* payload bytes of the current frame read (the mask's phase) */
        uint8_t control[WS_MAX_CONTROL]; /* a control frame's payload, unmasked */
        size_t control_len;              /* its length */
        unsigned close_code;             /* of WS_EV_CLOSE */
        unsigned error_code;             /* of WS_EV_ERROR */
        const char *error;               /* of WS_EV_ERROR: a static sentence */
};

void ws_reader_init(struct ws_reader *r, uint64_t max_frame);

/*
 * Read from buf (len bytes, modified: payload is unmasked in place). Returns what was found and
 * sets *used to the bytes consumed; for WS_EV_DATA, *data and *data_len are the payload (inside
 * buf). Call again with the rest until WS_EV_NONE. A control frame is returned only once all of
 * it is in buf, so give at least WS_MAX_HEADER + WS_MAX_CONTROL bytes when as many are waiting.
 * After WS_EV_ERROR or WS_EV_CLOSE the reader must not be fed again.
 */
enum ws_event ws_read(struct ws_reader *r, uint8_t *buf, size_t len, size_t *used, uint8_t **data,
                      size_t *data_len);

/* The header of an unmasked, final server frame of len payload bytes into out; its length. */
size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], enum ws_opcode op, uint64_t len);

#endif
