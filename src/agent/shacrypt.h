/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SHA-512 and the "$6$" password hash of Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512"
 * specification, for guest-set-user-password on guests without chpasswd. Our own, so the static
 * agent does not carry libcrypt (~180 KiB of every other algorithm) into every guest's memory.
 */
#ifndef TT_AGENT_SHACRYPT_H
#define TT_AGENT_SHACRYPT_H

#include <stddef.h>
#include <stdint.h>

struct sha512_ctx {
        uint64_t h[8];          /* chaining state */
        uint64_t len;           /* bytes hashed so far */
        unsigned char buf[128]; /* partial block */
        size_t used;            /* bytes in buf */
};

void sha512_init(struct sha512_ctx *c);
void sha512_update(struct sha512_ctx *c, const void *data, size_t len);
void sha512_final(struct sha512_ctx *c, unsigned char out[64]);

/* The default and the bounds of rounds= in a "$6$rounds=N$salt$" setting. */
#define SHACRYPT_ROUNDS_DEFAULT 5000
#define SHACRYPT_ROUNDS_MIN     1000
#define SHACRYPT_ROUNDS_MAX     999999999
#define SHACRYPT_SALT_MAX       16
/* "$6$rounds=999999999$" + 16 + "$" + 86 + NUL */
#define SHACRYPT_OUT_MAX 128

/*
 * Hash key with setting, which is "$6$SALT" or "$6$rounds=N$SALT" (SALT up to 16 characters,
 * cut at '$'; a trailing "$hash" is ignored), into out (SHACRYPT_OUT_MAX bytes).
 * Returns 0, or -1 for a setting that is not "$6$".
 */
int sha512_crypt(const char *key, const char *setting, char out[SHACRYPT_OUT_MAX]);

#endif
