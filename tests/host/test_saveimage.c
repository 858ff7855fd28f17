/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The save-image header (saveimage.c): a complete round trip, and every refusal of
 * saveimage_open() with its exact text. Files are written in a private temporary folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "host/saveimage.h"

static char dir[] = "/tmp/tether-saveimage-XXXXXX";
static const char xml[] = "<domain type='qemu'><name>s</name></domain>";

static char *path_of(const char *name)
{
        static char buf[PATH_MAX];

        snprintf(buf, sizeof(buf), "%s/%s", dir, name);
        return buf;
}

static void put_le(unsigned char *p, uint64_t v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                p[i] = (unsigned char)(v >> (8 * i));
}

/* The fields of a header, as a test wants to write them. */
struct hdr {
        const char *magic;
        uint32_t version, flags, xml_len;
        uint64_t data_offset, data_len;
};

static const struct hdr good = {SAVEIMAGE_MAGIC, SAVEIMAGE_VERSION, SAVEIMAGE_WAS_RUNNING,
                                sizeof(xml) - 1, SAVEIMAGE_ALIGN, 100};

/* Write name: the header h, the XML, padding up to h->data_offset, then file_data bytes. */
static char *write_image(const char *name, const struct hdr *h, const char *body, size_t file_data)
{
        unsigned char head[SAVEIMAGE_HEADER_SIZE] = {0};
        char *path = path_of(name);
        FILE *f = fopen(path, "we");
        size_t body_len = strlen(body);

        assert_non_null(f);
        memcpy(head, h->magic, strlen(h->magic));
        put_le(head + 16, h->version, 4);
        put_le(head + 20, h->flags, 4);
        put_le(head + 24, h->xml_len, 4);
        put_le(head + 32, h->data_offset, 8);
        put_le(head + 40, h->data_len, 8);
        assert_int_equal(fwrite(head, 1, sizeof(head), f), sizeof(head));
        assert_int_equal(fwrite(body, 1, body_len, f), body_len);
        for (uint64_t off = SAVEIMAGE_HEADER_SIZE + body_len; off < SAVEIMAGE_ALIGN; off++)
                fputc(0, f);
        for (size_t i = 0; i < file_data; i++)
                fputc('D', f);
        assert_int_equal(fclose(f), 0);
        return path;
}

/* saveimage_open(path) fails with exactly want (its one "%s" stands for the path). */
static void expect_refusal(const char *path, const char *want_fmt)
{
        struct saveimage img;
        struct tt_error err = {0};
        const char *at = strstr(want_fmt, "%s");
        char want[2 * PATH_MAX];

        assert_non_null(at);
        snprintf(want, sizeof(want), "%.*s%s%s", (int)(at - want_fmt), want_fmt, path, at + 2);
        assert_int_equal(saveimage_open(path, &img, &err), -1);
        assert_non_null(err.msg);
        assert_string_equal(err.msg, want);
        assert_null(img.xml);
        tt_error_clear(&err);
}

static void test_roundtrip(void **state)
{
        struct saveimage w, r;
        struct tt_error err = {0};
        char *path = path_of("round.save");
        int fd = saveimage_create(path, xml, SAVEIMAGE_WAS_RUNNING, &w, &err), rfd;
        char buf[5] = {0};

        assert_true(fd >= 0);
        assert_int_equal(w.data_offset, SAVEIMAGE_ALIGN);
        /* Not complete yet: refused as such. */
        expect_refusal(path, "'%s': image is incomplete (the save did not finish)");
        assert_int_equal(write(fd, "QEVM", 4), 4); /* what QEMU would stream */
        assert_int_equal(saveimage_finish(fd, &w, &err), 0);
        assert_int_equal(w.data_len, 4);
        close(fd);
        rfd = saveimage_open(path, &r, &err);
        assert_true(rfd >= 0);
        assert_null(err.msg);
        assert_string_equal(r.xml, xml);
        assert_int_equal(r.version, SAVEIMAGE_VERSION);
        assert_int_equal(r.flags, SAVEIMAGE_WAS_RUNNING);
        assert_int_equal(r.data_offset, SAVEIMAGE_ALIGN);
        assert_int_equal(r.data_len, 4);
        /* Positioned at the stream, in blocking mode, closed on exec. */
        assert_int_equal(read(rfd, buf, 4), 4);
        assert_string_equal(buf, "QEVM");
        assert_int_equal(fcntl(rfd, F_GETFL) & O_NONBLOCK, 0);
        assert_true(fcntl(rfd, F_GETFD) & FD_CLOEXEC);
        close(rfd);
        saveimage_clear(&w);
        saveimage_clear(&r);
}

static void test_good_written_by_hand(void **state)
{
        struct saveimage r;
        struct tt_error err = {0};
        int fd = saveimage_open(write_image("good.save", &good, xml, 100), &r, &err);

        assert_true(fd >= 0);
        assert_string_equal(r.xml, xml);
        assert_int_equal(r.data_len, 100);
        close(fd);
        saveimage_clear(&r);
}

static void test_header_refusals(void **state)
{
        static const struct {
                const char *name;
                struct hdr h;
                const char *want;
        } rows[] = {
                {"partial", {SAVEIMAGE_MAGIC_PARTIAL, 1, 0, sizeof(xml) - 1, 4096, 100},
                 "'%s': image is incomplete (the save did not finish)"},
                {"magic", {"LibvirtQemudSave", 1, 0, sizeof(xml) - 1, 4096, 100},
                 "'%s' is not a Tether save image"},
                {"version", {SAVEIMAGE_MAGIC, 2, 0, sizeof(xml) - 1, 4096, 100},
                 "'%s': unsupported save image version 2"},
                {"xml-empty", {SAVEIMAGE_MAGIC, 1, 0, 0, 4096, 100},
                 "'%s': corrupt save image header"},
                {"xml-huge", {SAVEIMAGE_MAGIC, 1, 0, SAVEIMAGE_MAX_XML + 1, 4096, 100},
                 "'%s': corrupt save image header"},
                {"offset-in-xml", {SAVEIMAGE_MAGIC, 1, 0, sizeof(xml) - 1, 64, 100},
                 "'%s': corrupt save image header"},
                {"offset-unaligned", {SAVEIMAGE_MAGIC, 1, 0, sizeof(xml) - 1, 4097, 100},
                 "'%s': corrupt save image header"},
                {"len-zero", {SAVEIMAGE_MAGIC, 1, 0, sizeof(xml) - 1, 4096, 0},
                 "'%s': corrupt save image header"},
                /* offset + len wraps to 0: must not pass the size check (defect 7). */
                {"wrap", {SAVEIMAGE_MAGIC, 1, 0, sizeof(xml) - 1, 4096, UINT64_MAX - 4095},
                 "'%s': corrupt save image header"},
                {"wrap-small", {SAVEIMAGE_MAGIC, 1, 0, sizeof(xml) - 1, 4096, UINT64_MAX - 4000},
                 "'%s': corrupt save image header"},
                {"offset-huge", {SAVEIMAGE_MAGIC, 1, 0, sizeof(xml) - 1,
                                 UINT64_MAX - SAVEIMAGE_ALIGN + 1, 4096},
                 "'%s': corrupt save image header"},
                {"truncated", {SAVEIMAGE_MAGIC, 1, 0, sizeof(xml) - 1, 4096, 101},
                 "'%s': image is incomplete (4196 of 4197 bytes; truncated?)"},
                {"xml-longer", {SAVEIMAGE_MAGIC, 1, 0, sizeof(xml) + 10, 4096, 100},
                 "'%s': corrupt domain XML in save image"},
        };

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                print_message("# %s\n", rows[i].name);
                expect_refusal(write_image(rows[i].name, &rows[i].h, xml, 100), rows[i].want);
        }
}

static void test_xml_with_nul(void **state)
{
        char *path = write_image("nul", &good, xml, 100);
        int fd = open(path, O_WRONLY);

        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "", 1, SAVEIMAGE_HEADER_SIZE + 3), 1);
        close(fd);
        expect_refusal(path, "'%s': corrupt domain XML in save image");
}

static void test_short_files(void **state)
{
        char *path = path_of("empty");
        FILE *f = fopen(path, "we");

        fclose(f);
        expect_refusal(path, "'%s' is not a Tether save image");
        path = path_of("short");
        f = fopen(path, "we");
        fputs("Tether", f);
        fclose(f);
        expect_refusal(path, "'%s': image is incomplete (6 bytes, shorter than its header)");
        path = path_of("short-foreign");
        f = fopen(path, "we");
        fputs("hello", f);
        fclose(f);
        expect_refusal(path, "'%s' is not a Tether save image");
        expect_refusal(path_of("missing"),
                       "cannot open save image '%s': No such file or directory");
}

/* A FIFO (defect 4): refused at once, never waiting for a writer. */
static void test_fifo(void **state)
{
        char *path = path_of("fifo");
        struct timespec a, b;

        assert_int_equal(mkfifo(path, 0600), 0);
        clock_gettime(CLOCK_MONOTONIC, &a);
        alarm(10); /* the old code blocked here forever */
        expect_refusal(path, "'%s' is not a Tether save image: it is a FIFO, and a save image "
                             "must be a regular file");
        alarm(0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        assert_true(b.tv_sec - a.tv_sec < 2);
}

static void test_not_regular(void **state)
{
        expect_refusal(dir, "'%s' is not a Tether save image: it is a directory, and a save "
                            "image must be a regular file");
        expect_refusal("/dev/null", "'%s' is not a Tether save image: it is a character device, "
                                    "and a save image must be a regular file");
}

/* A symbolic link is not followed, even to a good image. */
static void test_symlink(void **state)
{
        char *target = strdup(write_image("target.save", &good, xml, 100));
        char *link = path_of("link.save");

        assert_int_equal(symlink(target, link), 0);
        expect_refusal(link, "'%s' is a symbolic link: a save image must be a regular file, and "
                             "links are not followed");
        free(target);
}

static int setup(void **state)
{
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
        char cmd[PATH_MAX + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),     cmocka_unit_test(test_good_written_by_hand),
                cmocka_unit_test(test_header_refusals), cmocka_unit_test(test_xml_with_nul),
                cmocka_unit_test(test_short_files),   cmocka_unit_test(test_fifo),
                cmocka_unit_test(test_not_regular),   cmocka_unit_test(test_symlink),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
