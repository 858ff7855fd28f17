/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Base64 (RFC 4648, standard alphabet, padded), sized for streaming. */
#ifndef TT_BASE64_H
#define TT_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include "common/tt_error.h"

/* Bytes that base64 of len input bytes takes, without a terminator. */
static inline size_t tt_base64_encoded_len(size_t len)
{
        return (len + 2) / 3 * 4;
}

/*
 * Encode len bytes of in into out (tt_base64_encoded_len(len) bytes, no NUL); returns that.
 * in may also lie inside out itself, at least len / 3 (rounded up) bytes after out, such as the
 * last len bytes of the tt_base64_encoded_len(len) bytes: the encoding is then done in place
 * (output never overtakes unread input), so a reader needs one buffer, not two.
 */
size_t tt_base64_encode(const void *in, size_t len, char *out);

/*
 * Decode text of length len. As qemu does, '\n' anywhere is skipped (wrapped base64); any other
 * byte outside the alphabet, bad padding or a wrong length is an error. *out is malloc'd
 * (NUL-terminated for convenience) and *out_len gets the decoded length.
 */
int tt_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len,
                     struct tt_error *err);

#endif
