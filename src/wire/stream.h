/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A control connection that became a byte stream (the "console" verb): after its JSON reply,
 * the client sends raw bytes (keystrokes for the guest's serial port) and tetherd sends frames:
 *
 *   type (1 byte) | length (2 bytes, big-endian) | length bytes of payload
 *
 *   'D'  data: bytes the guest wrote
 *   'E'  end: tetherd closes the stream after it; the payload is why (an error text for the
 *        user, e.g. another client took the console over), or empty when the domain stopped
 *
 * Frames let tetherd say why a stream ends without an escape byte in the guest's data, and cost
 * three bytes per chunk of up to 64 KiB. The client ends its side by closing the connection.
 */
#ifndef TT_WIRE_STREAM_H
#define TT_WIRE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_STREAM_DATA   'D'
#define WIRE_STREAM_END    'E'
/* Bytes before a frame's payload. */
#define WIRE_STREAM_HEADER 3
/* The largest payload of one frame. */
#define WIRE_STREAM_MAX    65535u

/* Fill a frame header for a payload of len bytes (len <= WIRE_STREAM_MAX). */
static inline void wire_stream_header(uint8_t hdr[WIRE_STREAM_HEADER], char type, size_t len)
{
        hdr[0] = (uint8_t)type;
        hdr[1] = (uint8_t)(len >> 8);
        hdr[2] = (uint8_t)len;
}

/* The payload length a header announces. */
static inline size_t wire_stream_length(const uint8_t hdr[WIRE_STREAM_HEADER])
{
        return ((size_t)hdr[1] << 8) | hdr[2];
}

#endif
