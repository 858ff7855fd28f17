/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for src/common: base64, integer parsing, atomic files, the error type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/tt_error.h"

static void check_roundtrip(const char *plain, const char *encoded)
{
        char buf[128];
        unsigned char *dec = NULL;
        size_t n, dlen = 0;
        struct tt_error err = {0};

        n = tt_base64_encode(plain, strlen(plain), buf);
        assert_int_equal(n, strlen(encoded));
        assert_memory_equal(buf, encoded, n);
        assert_int_equal(tt_base64_encoded_len(strlen(plain)), n);
        assert_int_equal(tt_base64_decode(encoded, strlen(encoded), &dec, &dlen, &err), 0);
        assert_int_equal(dlen, strlen(plain));
        assert_memory_equal(dec, plain, dlen);
        free(dec);
}

static void test_base64_rfc4648(void **state)
{
        check_roundtrip("", "");
        check_roundtrip("f", "Zg==");
        check_roundtrip("fo", "Zm8=");
        check_roundtrip("foo", "Zm9v");
        check_roundtrip("foob", "Zm9vYg==");
        check_roundtrip("fooba", "Zm9vYmE=");
        check_roundtrip("foobar", "Zm9vYmFy");
}

static void test_base64_newlines_and_errors(void **state)
{
        unsigned char *dec = NULL;
        size_t dlen = 0;
        struct tt_error err = {0};

        /* Wrapped base64 (qemu accepts '\n' anywhere). */
        assert_int_equal(tt_base64_decode("Zm9v\nYmFy\n", 10, &dec, &dlen, &err), 0);
        assert_int_equal(dlen, 6);
        assert_memory_equal(dec, "foobar", 6);
        free(dec);
        dec = NULL;

        const char *bad[] = {"Zm9", "Zm9v!", "Zg=a", "Z===", "Zm 9v", "=Zm9"};
        for (size_t i = 0; i < TT_ARRAY_SIZE(bad); i++) {
                assert_true(tt_base64_decode(bad[i], strlen(bad[i]), &dec, &dlen, &err) < 0);
                assert_string_equal(err.msg, "Invalid Base64 data");
                tt_error_clear(&err);
        }
}

/* RFC 4648 one 6-bit group at a time: the reference the table-driven encoder is held to. */
static void naive_base64(const unsigned char *in, size_t len, char *out)
{
        static const char abc[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

        for (size_t i = 0; i < len; i += 3) {
                unsigned v = (unsigned)in[i] << 16;

                if (i + 1 < len)
                        v |= (unsigned)in[i + 1] << 8;
                if (i + 2 < len)
                        v |= in[i + 2];
                *out++ = abc[v >> 18];
                *out++ = abc[(v >> 12) & 63];
                *out++ = i + 1 < len ? abc[(v >> 6) & 63] : '=';
                *out++ = i + 2 < len ? abc[v & 63] : '=';
        }
}

/*
 * Every length up to a few hundred (all the block and tail paths, every alignment) and one large
 * input, against the naive encoder; then the same in place, with the input at the end of the
 * output buffer (how guest-file-read uses it) and at the closest start allowed, len / 3 rounded
 * up.
 */
static void test_base64_encode_all_paths(void **state)
{
        enum { MAX = 3 * 65536 + 2 };
        _cleanup_free_ unsigned char *data = malloc(MAX);
        _cleanup_free_ char *want = malloc(tt_base64_encoded_len(MAX));
        _cleanup_free_ char *got = malloc(tt_base64_encoded_len(MAX) + 1);
        size_t lens[400], nlens = 0;

        assert_non_null(data);
        assert_non_null(want);
        assert_non_null(got);
        for (size_t i = 0; i < MAX; i++)
                data[i] = (unsigned char)(i * 2654435761u >> 11);
        for (size_t n = 0; n < 300; n++)
                lens[nlens++] = n;
        lens[nlens++] = MAX - 1;
        lens[nlens++] = MAX;
        for (size_t k = 0; k < nlens; k++) {
                size_t n = lens[k], m = tt_base64_encoded_len(n);

                /* Out of place, with the input at odd offsets. */
                for (size_t shift = 1; shift < 3 && shift <= n; shift++) {
                        size_t ms = tt_base64_encoded_len(n - shift);

                        naive_base64(data + shift, n - shift, want);
                        assert_int_equal(tt_base64_encode(data + shift, n - shift, got), ms);
                        assert_memory_equal(got, want, ms);
                }
                naive_base64(data, n, want);
                assert_int_equal(tt_base64_encode(data, n, got), m);
                assert_memory_equal(got, want, m);
                /* In place: input at the end of the output buffer. */
                got[m] = '#';
                memcpy(got + m - n, data, n);
                assert_int_equal(tt_base64_encode(got + m - n, n, got), m);
                assert_memory_equal(got, want, m);
                assert_int_equal(got[m], '#');
                /* In place: input as far forward as the header allows. */
                memmove(got + (n + 2) / 3, data, n);
                assert_int_equal(tt_base64_encode(got + (n + 2) / 3, n, got), m);
                assert_memory_equal(got, want, m);
        }
}

static void test_parse_int(void **state)
{
        int64_t v;
        uint64_t u;

        assert_int_equal(tt_parse_int64("-42", 10, &v), 0);
        assert_int_equal(v, -42);
        assert_int_equal(tt_parse_int64("9223372036854775807", 10, &v), 0);
        assert_int_equal(tt_parse_int64("9223372036854775808", 10, &v), -ERANGE);
        assert_int_equal(tt_parse_int64("12x", 10, &v), -EINVAL);
        assert_int_equal(tt_parse_int64("", 10, &v), -EINVAL);
        assert_int_equal(tt_parse_int64(" 1", 10, &v), -EINVAL);
        assert_int_equal(tt_parse_uint64("8000000", 16, &u), 0);
        assert_int_equal(u, 0x8000000);
        assert_int_equal(tt_parse_uint64("-1", 10, &u), -EINVAL);
}

static void test_atomic_write(void **state)
{
        char dir[] = "/tmp/tt-common-XXXXXX";
        char path[256];
        char *text = NULL;
        size_t len = 0;
        struct stat st;
        struct tt_error err = {0};

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/a/b/file", dir);
        assert_int_equal(tt_mkdir_p(path, 0755, &err), 0); /* makes a/b/file as a dir... */
        rmdir(path);
        assert_int_equal(tt_write_file_atomic(path, "hello\n", 6, 0600, &err), 0);
        assert_int_equal(tt_write_file_atomic(path, "world", 5, 0640, &err), 0);
        assert_int_equal(tt_read_file(path, 100, &text, &len, &err), 0);
        assert_int_equal(len, 5);
        assert_string_equal(text, "world");
        free(text);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0640);
        /* The size bound is enforced. */
        assert_true(tt_read_file(path, 3, &text, &len, &err) < 0);
        assert_int_equal(err.code, EFBIG);
        tt_error_clear(&err);
        /* A missing file says which. */
        snprintf(path, sizeof(path), "%s/nope", dir);
        assert_true(tt_read_file(path, 3, &text, &len, &err) < 0);
        assert_non_null(strstr(err.msg, "nope"));
        tt_error_clear(&err);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
}

static void test_error_prefix(void **state)
{
        struct tt_error err = {0};

        assert_true(tt_error_set(&err, EINVAL, "bad %s", "thing") < 0);
        assert_true(tt_error_prefix(&err, "loading %d", 3) < 0);
        assert_string_equal(err.msg, "loading 3: bad thing");
        assert_int_equal(err.code, EINVAL);
        assert_true(tt_error_errno(&err, ENOENT, "open x") < 0);
        assert_string_equal(err.msg, "open x: No such file or directory");
        tt_error_clear(&err);
        assert_null(err.msg);
        /* A NULL error pointer is allowed and still returns a failure. */
        assert_true(tt_error_set(NULL, 0, "ignored") < 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_base64_rfc4648),
                cmocka_unit_test(test_base64_newlines_and_errors),
                cmocka_unit_test(test_base64_encode_all_paths),
                cmocka_unit_test(test_parse_int),
                cmocka_unit_test(test_atomic_write),
                cmocka_unit_test(test_error_prefix),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
