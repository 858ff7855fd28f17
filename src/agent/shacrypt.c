/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "agent/shacrypt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FIPS 180-4: first 64 bits of the fractional parts of the cube roots of the first 80 primes,
 * and (h0) of the square roots of the first 8. Generated, not typed. */
static const uint64_t sha512_k[80] = {
    0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
    0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
    0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
    0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
    0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
    0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
    0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
    0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
    0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
    0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
    0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
    0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
    0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
    0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
    0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
    0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
    0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
    0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
    0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
    0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
};

static const uint64_t sha512_h0[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static inline uint64_t ror64(uint64_t x, unsigned n)
{
        return (x >> n) | (x << (64 - n));
}

static uint64_t load_be64(const unsigned char *p)
{
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

static void store_be64(unsigned char *p, uint64_t v)
{
        for (int i = 7; i >= 0; i--) {
                p[i] = (unsigned char)v;
                v >>= 8;
        }
}

static void sha512_block(struct sha512_ctx *c, const unsigned char *block)
{
        uint64_t w[80], a, b, cc, d, e, f, g, h;

        for (int i = 0; i < 16; i++)
                w[i] = load_be64(block + 8 * i);
        for (int i = 16; i < 80; i++) {
                uint64_t s0 = ror64(w[i - 15], 1) ^ ror64(w[i - 15], 8) ^ (w[i - 15] >> 7);
                uint64_t s1 = ror64(w[i - 2], 19) ^ ror64(w[i - 2], 61) ^ (w[i - 2] >> 6);
                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
        e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
        for (int i = 0; i < 80; i++) {
                uint64_t s1 = ror64(e, 14) ^ ror64(e, 18) ^ ror64(e, 41);
                uint64_t ch = (e & f) ^ (~e & g);
                uint64_t t1 = h + s1 + ch + sha512_k[i] + w[i];
                uint64_t s0 = ror64(a, 28) ^ ror64(a, 34) ^ ror64(a, 39);
                uint64_t maj = (a & b) ^ (a & cc) ^ (b & cc);
                uint64_t t2 = s0 + maj;

                h = g, g = f, f = e, e = d + t1;
                d = cc, cc = b, b = a, a = t1 + t2;
        }
        c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d;
        c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

void sha512_init(struct sha512_ctx *c)
{
        memcpy(c->h, sha512_h0, sizeof(c->h));
        c->len = 0;
        c->used = 0;
}

void sha512_update(struct sha512_ctx *c, const void *data, size_t len)
{
        const unsigned char *p = data;

        c->len += len;
        if (c->used) {
                size_t take = len < 128 - c->used ? len : 128 - c->used;

                memcpy(c->buf + c->used, p, take);
                c->used += take;
                p += take;
                len -= take;
                if (c->used < 128)
                        return;
                sha512_block(c, c->buf);
                c->used = 0;
        }
        for (; len >= 128; p += 128, len -= 128)
                sha512_block(c, p);
        memcpy(c->buf, p, len);
        c->used = len;
}

void sha512_final(struct sha512_ctx *c, unsigned char out[64])
{
        uint64_t bits = c->len * 8;

        c->buf[c->used++] = 0x80;
        if (c->used > 112) {
                memset(c->buf + c->used, 0, 128 - c->used);
                sha512_block(c, c->buf);
                c->used = 0;
        }
        /* The length is 128 bits big-endian; our messages are far below 2^64 bits. */
        memset(c->buf + c->used, 0, 120 - c->used);
        store_be64(c->buf + 120, bits);
        sha512_block(c, c->buf);
        for (int i = 0; i < 8; i++)
                store_be64(out + 8 * i, c->h[i]);
        memset(c, 0, sizeof(*c));
}

/* ---- the "$6$" scheme ---- */

static const char crypt_b64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Three digest bytes, most significant first, as n characters, least significant 6 bits first. */
static char *b64_from_24bit(char *o, unsigned b2, unsigned b1, unsigned b0, int n)
{
        unsigned w = (b2 << 16) | (b1 << 8) | b0;

        while (n-- > 0) {
                *o++ = crypt_b64[w & 0x3f];
                w >>= 6;
        }
        return o;
}

/* Add len bytes of src, repeated as often as needed, to a sequence of exactly len bytes. */
static void fill_repeated(unsigned char *dst, size_t len, const unsigned char digest[64])
{
        for (; len >= 64; len -= 64, dst += 64)
                memcpy(dst, digest, 64);
        memcpy(dst, digest, len);
}

int sha512_crypt(const char *key, const char *setting, char out[SHACRYPT_OUT_MAX])
{
        static const unsigned char order[21][3] = {
            {0, 21, 42},  {22, 43, 1},  {44, 2, 23},  {3, 24, 45},  {25, 46, 4},  {47, 5, 26},
            {6, 27, 48},  {28, 49, 7},  {50, 8, 29},  {9, 30, 51},  {31, 52, 10}, {53, 11, 32},
            {12, 33, 54}, {34, 55, 13}, {56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38},
            {18, 39, 60}, {40, 61, 19}, {62, 20, 41},
        };
        size_t key_len = strlen(key), salt_len;
        unsigned long rounds = SHACRYPT_ROUNDS_DEFAULT;
        bool custom_rounds = false;
        unsigned char a[64], b[64], dp[64], ds[64];
        unsigned char *p_bytes, *s_bytes;
        struct sha512_ctx ctx;
        const char *salt;
        char *o;

        if (strncmp(setting, "$6$", 3) != 0)
                return -1;
        salt = setting + 3;
        if (strncmp(salt, "rounds=", 7) == 0) {
                char *end;
                unsigned long r = strtoul(salt + 7, &end, 10);

                if (end == salt + 7 || *end != '$')
                        return -1;
                rounds = r < SHACRYPT_ROUNDS_MIN   ? SHACRYPT_ROUNDS_MIN
                         : r > SHACRYPT_ROUNDS_MAX ? SHACRYPT_ROUNDS_MAX
                                                   : r;
                custom_rounds = true;
                salt = end + 1;
        }
        salt_len = strcspn(salt, "$");
        if (salt_len > SHACRYPT_SALT_MAX)
                salt_len = SHACRYPT_SALT_MAX;

        /* B = H(key salt key) */
        sha512_init(&ctx);
        sha512_update(&ctx, key, key_len);
        sha512_update(&ctx, salt, salt_len);
        sha512_update(&ctx, key, key_len);
        sha512_final(&ctx, b);

        /* A = H(key salt B-repeated-to-key-length, then B or key per bit of the key length) */
        sha512_init(&ctx);
        sha512_update(&ctx, key, key_len);
        sha512_update(&ctx, salt, salt_len);
        size_t cnt;
        for (cnt = key_len; cnt > 64; cnt -= 64)
                sha512_update(&ctx, b, 64);
        sha512_update(&ctx, b, cnt);
        for (cnt = key_len; cnt > 0; cnt >>= 1)
                if (cnt & 1)
                        sha512_update(&ctx, b, 64);
                else
                        sha512_update(&ctx, key, key_len);
        sha512_final(&ctx, a);

        /* P = H(key repeated key-length times), stretched to key length */
        sha512_init(&ctx);
        for (cnt = 0; cnt < key_len; cnt++)
                sha512_update(&ctx, key, key_len);
        sha512_final(&ctx, dp);
        p_bytes = malloc(key_len + 1);
        /* S = H(salt repeated 16 + A[0] times), stretched to salt length */
        sha512_init(&ctx);
        for (cnt = 0; cnt < 16u + a[0]; cnt++)
                sha512_update(&ctx, salt, salt_len);
        sha512_final(&ctx, ds);
        s_bytes = malloc(salt_len + 1);
        if (p_bytes == NULL || s_bytes == NULL) {
                free(p_bytes);
                free(s_bytes);
                return -1;
        }
        fill_repeated(p_bytes, key_len, dp);
        fill_repeated(s_bytes, salt_len, ds);

        for (unsigned long r = 0; r < rounds; r++) {
                sha512_init(&ctx);
                if (r & 1)
                        sha512_update(&ctx, p_bytes, key_len);
                else
                        sha512_update(&ctx, a, 64);
                if (r % 3)
                        sha512_update(&ctx, s_bytes, salt_len);
                if (r % 7)
                        sha512_update(&ctx, p_bytes, key_len);
                if (r & 1)
                        sha512_update(&ctx, a, 64);
                else
                        sha512_update(&ctx, p_bytes, key_len);
                sha512_final(&ctx, a);
        }

        o = out;
        o += custom_rounds ? snprintf(o, SHACRYPT_OUT_MAX, "$6$rounds=%lu$", rounds)
                           : snprintf(o, SHACRYPT_OUT_MAX, "$6$");
        memcpy(o, salt, salt_len);
        o += salt_len;
        *o++ = '$';
        for (size_t i = 0; i < 21; i++)
                o = b64_from_24bit(o, a[order[i][0]], a[order[i][1]], a[order[i][2]], 4);
        o = b64_from_24bit(o, 0, 0, a[63], 2);
        *o = '\0';

        /* The intermediate values are as secret as the password. */
        explicit_bzero(a, sizeof(a));
        explicit_bzero(b, sizeof(b));
        explicit_bzero(dp, sizeof(dp));
        explicit_bzero(ds, sizeof(ds));
        explicit_bzero(p_bytes, key_len);
        explicit_bzero(s_bytes, salt_len);
        free(p_bytes);
        free(s_bytes);
        return 0;
}
