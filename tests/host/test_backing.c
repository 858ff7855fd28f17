/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qcow2 backing chain (backing.c): header parsing with every refusal and its exact text,
 * name resolution (relative, file:, json:, protocols), and walks over images written by hand in
 * a private temporary folder (a chain with a format extension and a probed raw base, the depth
 * limit, a loop, an external data file, an unsupported format, the opener's refusal), plus one
 * chain made by qemu-img.
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
#include <unistd.h>
#include "host/backing.h"

#define MAGIC 0x514649fbU
#define EXT_FORMAT 0xe2792acaU
#define EXT_DATA_FILE 0x44415441U

static char dir[] = "/tmp/tether-backing-XXXXXX";

static char *path_of(const char *name)
{
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

static void be32(unsigned char *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static void be64(unsigned char *p, uint64_t v)
{
        be32(p, (uint32_t)(v >> 32));
        be32(p + 4, (uint32_t)v);
}

/*
 * A qcow2 v3 header of 104 bytes into buf (512 bytes, zeroed): optional backing format
 * extension (fmt), data-file extension, then the backing name at byte 256.
 */
static size_t make_qcow2(unsigned char *buf, const char *name, const char *fmt, bool data_ext)
{
        size_t off = 104;

        memset(buf, 0, 512);
        be32(buf, MAGIC);
        be32(buf + 4, 3);
        be32(buf + 100, 104);
        if (fmt) {
                be32(buf + off, EXT_FORMAT);
                be32(buf + off + 4, (uint32_t)strlen(fmt));
                memcpy(buf + off + 8, fmt, strlen(fmt));
                off += 8 + ((strlen(fmt) + 7) & ~(size_t)7);
        }
        if (data_ext) {
                be32(buf + off, EXT_DATA_FILE);
                be32(buf + off + 4, 4);
                memcpy(buf + off + 8, "data", 4);
                off += 16;
        }
        /* then the end extension (zeros) */
        if (name) {
                be64(buf + 8, 256);
                be32(buf + 16, (uint32_t)strlen(name));
                memcpy(buf + 256, name, strlen(name));
                return 256 + strlen(name);
        }
        return 512;
}

static void write_file(const char *name, const void *data, size_t len)
{
        char *p = path_of(name);
        FILE *f = fopen(p, "we");

        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        free(p);
}

static void write_qcow2(const char *name, const char *backing, const char *fmt, bool data_ext)
{
        unsigned char buf[512];

        write_file(name, buf, make_qcow2(buf, backing, fmt, data_ext));
}

/* backing_parse(buf, len) fails with exactly want. */
static void parse_refused(const unsigned char *buf, size_t len, const char *want)
{
        struct backing_info info;
        struct tt_error err = {0};

        assert_int_equal(backing_parse(buf, len, &info, &err), -1);
        assert_non_null(err.msg);
        assert_string_equal(err.msg, want);
        assert_null(info.name);
        assert_null(info.format);
        tt_error_clear(&err);
}

static void test_parse_good(void **state)
{
        unsigned char buf[512];
        struct backing_info info;
        struct tt_error err = {0};
        size_t len = make_qcow2(buf, "base.img", "raw", false);

        assert_int_equal(backing_parse(buf, len, &info, &err), 0);
        assert_true(info.qcow2);
        assert_string_equal(info.name, "base.img");
        assert_string_equal(info.format, "raw");
        assert_false(info.data_file);
        backing_info_clear(&info);
        assert_null(info.name);

        /* No backing file: qcow2 with no name; a data-file extension is noticed. */
        len = make_qcow2(buf, NULL, NULL, true);
        assert_int_equal(backing_parse(buf, len, &info, &err), 0);
        assert_true(info.qcow2);
        assert_null(info.name);
        assert_true(info.data_file);
        backing_info_clear(&info);

        /* The incompatible-features bit says the same. */
        make_qcow2(buf, NULL, NULL, false);
        be64(buf + 72, 1u << 2);
        assert_int_equal(backing_parse(buf, 512, &info, &err), 0);
        assert_true(info.data_file);
        backing_info_clear(&info);

        /* Version 2: 72-byte header, extensions start right after it. */
        len = make_qcow2(buf, "v2base", NULL, false);
        be32(buf + 4, 2);
        assert_int_equal(backing_parse(buf, len, &info, &err), 0);
        assert_string_equal(info.name, "v2base");
        backing_info_clear(&info);

        /* Not qcow2: raw, nothing below it. */
        assert_int_equal(backing_parse((const unsigned char *)"just some raw bytes", 19, &info,
                                       &err),
                         0);
        assert_false(info.qcow2);
        assert_int_equal(backing_parse(buf, 4, &info, &err), 0);
        assert_false(info.qcow2);
        assert_null(err.msg);
}

static void test_parse_refusals(void **state)
{
        unsigned char buf[512];
        size_t len;

        make_qcow2(buf, NULL, NULL, false);
        be32(buf + 4, 4);
        parse_refused(buf, 512, "unsupported qcow2 version 4");
        be32(buf + 4, 3);
        parse_refused(buf, 100, "truncated qcow2 header (100 bytes)");
        be32(buf + 4, 2);
        parse_refused(buf, 50, "truncated qcow2 header (50 bytes)");
        be32(buf + 4, 3);
        be32(buf + 100, 90);
        parse_refused(buf, 512, "qcow2 header length 90 is invalid");
        be32(buf + 100, 4096);
        parse_refused(buf, 512, "qcow2 header length 4096 is invalid");

        len = make_qcow2(buf, "base", NULL, false);
        be32(buf + 16, 0);
        parse_refused(buf, len, "qcow2 backing file name length 0 is invalid");
        be32(buf + 16, 1024);
        parse_refused(buf, len, "qcow2 backing file name length 1024 is invalid");
        be32(buf + 16, 10);
        parse_refused(buf, len, "qcow2 backing file name at byte 256 lies outside the first 260 "
                                "bytes of the image");
        be32(buf + 16, 4);
        be64(buf + 8, 50);
        parse_refused(buf, len, "qcow2 backing file name at byte 50 lies outside the first 260 "
                                "bytes of the image");
        be64(buf + 8, 1000);
        parse_refused(buf, len, "qcow2 backing file name at byte 1000 lies outside the first 260 "
                                "bytes of the image");
        be64(buf + 8, 256);
        buf[258] = '\0';
        parse_refused(buf, len, "qcow2 backing file name holds a NUL byte");

        /* Extensions: one that runs past the header, an empty or NUL-holding format. */
        len = make_qcow2(buf, "base", "qcow2", false);
        be32(buf + 108, 200);
        parse_refused(buf, len, "qcow2 header extension 0xe2792aca at byte 104 runs past the "
                                "header");
        be32(buf + 108, 0);
        parse_refused(buf, len, "qcow2 backing format extension is malformed");
        be32(buf + 108, 5);
        buf[114] = '\0';
        parse_refused(buf, len, "qcow2 backing format extension is malformed");
}

static void resolved(const char *image, const char *name, const char *want)
{
        struct tt_error err = {0};
        char *out = NULL;

        assert_int_equal(backing_resolve(image, name, &out, &err), 0);
        assert_string_equal(out, want);
        free(out);
}

static void resolve_refused(const char *name, const char *want)
{
        struct tt_error err = {0};
        char *out = NULL;

        assert_int_equal(backing_resolve("/images/top.qcow2", name, &out, &err), -1);
        assert_string_equal(err.msg, want);
        tt_error_clear(&err);
}

static void test_resolve(void **state)
{
        resolved("/images/top.qcow2", "base.qcow2", "/images/base.qcow2");
        resolved("/images/top.qcow2", "file:base.qcow2", "/images/base.qcow2");
        resolved("/images/top.qcow2", "/other/base.raw", "/other/base.raw");
        resolved("/images/top.qcow2", "file:/other/base.raw", "/other/base.raw");
        resolved("/images/top.qcow2", "../up/b", "/images/../up/b");
        /* A colon after a slash is part of a file name. */
        resolved("/images/top.qcow2", "sub/a:b", "/images/sub/a:b");
        resolved("top.qcow2", "base", "./base");
        resolve_refused("json:{\"file.driver\":\"file\",\"file.filename\":\"/etc/shadow\"}",
                        "backing file 'json:{\"file.driver\":\"file\",\"file.filename\":"
                        "\"/etc/shadow\"}' is not a plain file (tetherd opens backing files "
                        "itself and hands QEMU files only)");
        resolve_refused("nbd://10.0.0.1/export",
                        "backing file 'nbd://10.0.0.1/export' is not a plain file (tetherd opens "
                        "backing files itself and hands QEMU files only)");
        resolve_refused("file:json:{}",
                        "backing file 'json:{}' is not a plain file (tetherd opens backing files "
                        "itself and hands QEMU files only)");
        resolve_refused("", "empty backing file name");
        resolve_refused("file:", "empty backing file name");
}

/* The opener of the tests: read-only, refusing any path holding "forbidden". */
static int opened;

static int open_ro(void *opaque, const char *path, const char *image, struct tt_error *err)
{
        int fd;

        (void)image;
        assert_ptr_equal(opaque, &opened);
        if (strstr(path, "forbidden"))
                return tt_error_set(err, EACCES, "'%s' is forbidden", path);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return tt_error_errno(err, errno, "cannot open '%s'", path);
        opened++;
        return fd;
}

/* Walk the chain below dir/top; returns -1 with *msg set, or the number of links. */
static int walk(const char *top, struct backing_link **links, size_t *n, char **msg)
{
        char *path = path_of(top);
        struct tt_error err = {0};
        int fd = open(path, O_RDONLY | O_CLOEXEC), r;

        assert_true(fd >= 0);
        r = backing_walk(fd, path, open_ro, &opened, links, n, &err);
        close(fd);
        free(path);
        *msg = err.msg ? strdup(err.msg) : NULL;
        tt_error_clear(&err);
        return r < 0 ? -1 : (int)*n;
}

static void walk_refused(const char *top, const char *want_fmt)
{
        struct backing_link *links;
        size_t n;
        char *msg, *want;

        assert_int_equal(walk(top, &links, &n, &msg), -1);
        assert_null(links);
        assert_int_equal(n, 0);
        /* Every %s of want_fmt stands for the folder. */
        want = strdup(want_fmt);
        for (char *at; (at = strstr(want, "%s"));) {
                char *next = NULL;

                *at = '\0';
                assert_true(asprintf(&next, "%s%s%s", want, dir, at + 2) > 0);
                free(want);
                want = next;
        }
        assert_non_null(msg);
        assert_string_equal(msg, want);
        free(want);
        free(msg);
}

static void test_walk_chain(void **state)
{
        struct backing_link *links;
        size_t n;
        char *msg, *p;

        write_file("base.raw", "raw data, no header", 19);
        write_qcow2("mid.qcow2", "base.raw", NULL, false); /* probed: raw */
        write_qcow2("top.qcow2", "file:mid.qcow2", "qcow2", false);
        opened = 0;
        assert_int_equal(walk("top.qcow2", &links, &n, &msg), 2);
        assert_null(msg);
        assert_int_equal(opened, 2);
        p = path_of("mid.qcow2");
        assert_string_equal(links[0].path, p);
        free(p);
        assert_true(links[0].qcow2);
        p = path_of("base.raw");
        assert_string_equal(links[1].path, p);
        free(p);
        assert_false(links[1].qcow2);
        assert_true(links[1].fd >= 0);
        backing_links_free(links, n);

        /* A raw image, and a qcow2 without a backing file: nothing below them. */
        assert_int_equal(walk("base.raw", &links, &n, &msg), 0);
        assert_null(links);
        write_qcow2("alone.qcow2", NULL, NULL, false);
        assert_int_equal(walk("alone.qcow2", &links, &n, &msg), 0);

        /* The format extension says raw: the file is not probed, even if it looks qcow2. */
        write_qcow2("fmtraw.qcow2", "alone.qcow2", "raw", false);
        assert_int_equal(walk("fmtraw.qcow2", &links, &n, &msg), 1);
        assert_false(links[0].qcow2);
        backing_links_free(links, n);
}

static void test_walk_refusals(void **state)
{
        char name[32], below[32];

        /* Depth: 17 images below the top. */
        for (int i = 0; i <= 17; i++) {
                snprintf(name, sizeof(name), "d%d.qcow2", i);
                snprintf(below, sizeof(below), "d%d.qcow2", i + 1);
                if (i == 17)
                        write_qcow2(name, NULL, NULL, false);
                else
                        write_qcow2(name, below, "qcow2", false);
        }
        walk_refused("d0.qcow2", "the backing chain of '%s/d0.qcow2' is deeper than 16 images");
        /* 16 below the top is allowed. */
        {
                struct backing_link *links;
                size_t n;
                char *msg;

                assert_int_equal(walk("d1.qcow2", &links, &n, &msg), 16);
                backing_links_free(links, n);
        }
        /* A loop ends at the depth limit too. */
        write_qcow2("loop-a.qcow2", "loop-b.qcow2", NULL, false);
        write_qcow2("loop-b.qcow2", "loop-a.qcow2", NULL, false);
        walk_refused("loop-a.qcow2",
                     "the backing chain of '%s/loop-a.qcow2' is deeper than 16 images");
        write_qcow2("self.qcow2", "self.qcow2", "qcow2", false);
        walk_refused("self.qcow2", "the backing chain of '%s/self.qcow2' is deeper than 16 images");

        write_qcow2("data.qcow2", NULL, NULL, true);
        walk_refused("data.qcow2", "disk image '%s/data.qcow2' keeps its data in an external "
                                   "file, which tetherd does not hand to QEMU");
        write_qcow2("above-data.qcow2", "data.qcow2", "qcow2", false);
        walk_refused("above-data.qcow2", "disk image '%s/data.qcow2' keeps its data in an "
                                         "external file, which tetherd does not hand to QEMU");
        write_qcow2("vmdk.qcow2", "x.vmdk", "vmdk", false);
        walk_refused("vmdk.qcow2", "disk image '%s/vmdk.qcow2': backing format 'vmdk' is not "
                                   "supported (qcow2 or raw)");
        write_qcow2("json.qcow2", "json:{}", NULL, false);
        walk_refused("json.qcow2", "disk image '%s/json.qcow2': backing file 'json:{}' is not a "
                                   "plain file (tetherd opens backing files itself and hands "
                                   "QEMU files only)");
        write_qcow2("forbid.qcow2", "/forbidden/base", NULL, false);
        walk_refused("forbid.qcow2", "'/forbidden/base' is forbidden");
        write_qcow2("missing.qcow2", "nothere.raw", NULL, false);
        walk_refused("missing.qcow2", "cannot open '%s/nothere.raw': No such file or directory");
        {
                unsigned char buf[512];

                make_qcow2(buf, NULL, NULL, false);
                be32(buf + 4, 1);
                write_file("v1.qcow2", buf, 512);
        }
        walk_refused("v1.qcow2", "disk image '%s/v1.qcow2': unsupported qcow2 version 1");
        write_qcow2("above-v1.qcow2", "v1.qcow2", NULL, false);
        walk_refused("above-v1.qcow2", "disk image '%s/v1.qcow2': unsupported qcow2 version 1");
}

/* A chain as qemu-img writes it (the format extension and all); qemu-img comes with QEMU. */
static void test_walk_qemu_img(void **state)
{
        struct backing_link *links;
        size_t n;
        char *msg, *cmd = NULL;

        assert_true(asprintf(&cmd,
                             "cd %s && qemu-img create -q -f raw qi-base.raw 1M && "
                             "qemu-img create -q -f qcow2 -b qi-base.raw -F raw qi-mid.qcow2 && "
                             "qemu-img create -q -f qcow2 -b qi-mid.qcow2 -F qcow2 qi-top.qcow2",
                             dir) > 0);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        assert_int_equal(walk("qi-top.qcow2", &links, &n, &msg), 2);
        assert_true(links[0].qcow2);
        assert_false(links[1].qcow2);
        assert_non_null(strstr(links[1].path, "/qi-base.raw"));
        backing_links_free(links, n);
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
                cmocka_unit_test(test_parse_good),    cmocka_unit_test(test_parse_refusals),
                cmocka_unit_test(test_resolve),       cmocka_unit_test(test_walk_chain),
                cmocka_unit_test(test_walk_refusals), cmocka_unit_test(test_walk_qemu_img),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
