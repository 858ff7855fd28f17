/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 backing chains walked by tetherd (backing.h). The header layout is qcow2's
 * (docs/interop/qcow2.txt in QEMU): big-endian fields, the backing file name at
 * backing_file_offset, header extensions from the end of the header (72 bytes in version 2,
 * header_length in version 3) up to the backing name.
 */
#include "host/backing.h"
#include "common/cleanup.h"

#include <errno.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QCOW2_MAGIC 0x514649fbU
#define QCOW2_V2_HEADER 72U
#define QCOW2_V3_HEADER 104U
#define QCOW2_EXT_END 0U
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define QCOW2_EXT_DATA_FILE 0x44415441U
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
/* QEMU refuses longer backing names. */
#define QCOW2_BACKING_NAME_MAX 1023U

static uint32_t be32(const unsigned char *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
        return (uint64_t)be32(p) << 32 | be32(p + 4);
}

void backing_info_clear(struct backing_info *info)
{
        free(info->name);
        free(info->format);
        memset(info, 0, sizeof(*info));
}

/* The header extensions in buf[start, end): the backing format and the data file. */
static int parse_extensions(const unsigned char *buf, size_t start, size_t end,
                            struct backing_info *out, struct tt_error *err)
{
        size_t off = start;

        while (off + 8 <= end) {
                uint32_t type = be32(buf + off), elen = be32(buf + off + 4);
                size_t padded = ((size_t)elen + 7) & ~(size_t)7;

                if (type == QCOW2_EXT_END)
                        return 0;
                if (elen > end - off - 8 || padded > end - off - 8)
                        return tt_error_set(err, EINVAL,
                                            "qcow2 header extension 0x%08x at byte %zu runs past "
                                            "the header",
                                            type, off);
                if (type == QCOW2_EXT_BACKING_FORMAT && out->format == NULL) {
                        if (elen == 0 || memchr(buf + off + 8, '\0', elen))
                                return tt_error_set(err, EINVAL,
                                                    "qcow2 backing format extension is malformed");
                        out->format = strndup((const char *)buf + off + 8, elen);
                        if (out->format == NULL)
                                return tt_error_set(err, ENOMEM, "out of memory");
                }
                if (type == QCOW2_EXT_DATA_FILE)
                        out->data_file = true;
                off += 8 + padded;
        }
        return 0;
}

int backing_parse(const unsigned char *buf, size_t len, struct backing_info *out,
                  struct tt_error *err)
{
        uint32_t version, name_len;
        uint64_t name_off;
        size_t hdr_len, ext_end;

        memset(out, 0, sizeof(*out));
        if (len < 8 || be32(buf) != QCOW2_MAGIC)
                return 0;
        out->qcow2 = true;
        version = be32(buf + 4);
        if (version != 2 && version != 3)
                return tt_error_set(err, EINVAL, "unsupported qcow2 version %u", version);
        if (len < QCOW2_V2_HEADER || (version == 3 && len < QCOW2_V3_HEADER))
                return tt_error_set(err, EINVAL, "truncated qcow2 header (%zu bytes)", len);
        hdr_len = QCOW2_V2_HEADER;
        if (version == 3) {
                hdr_len = be32(buf + 100);
                if (hdr_len < QCOW2_V3_HEADER || hdr_len > len)
                        return tt_error_set(err, EINVAL, "qcow2 header length %zu is invalid",
                                            hdr_len);
                if (be64(buf + 72) & QCOW2_INCOMPAT_DATA_FILE)
                        out->data_file = true;
        }
        name_off = be64(buf + 8);
        name_len = be32(buf + 16);
        ext_end = len;
        if (name_off != 0) {
                if (name_len == 0 || name_len > QCOW2_BACKING_NAME_MAX)
                        return tt_error_set(err, EINVAL,
                                            "qcow2 backing file name length %u is invalid",
                                            name_len);
                if (name_off < hdr_len || name_off > len || name_len > len - name_off)
                        return tt_error_set(err, EINVAL,
                                            "qcow2 backing file name at byte %llu lies outside "
                                            "the first %zu bytes of the image",
                                            (unsigned long long)name_off, len);
                if (memchr(buf + name_off, '\0', name_len))
                        return tt_error_set(err, EINVAL,
                                            "qcow2 backing file name holds a NUL byte");
                ext_end = (size_t)name_off;
                out->name = strndup((const char *)buf + name_off, name_len);
                if (out->name == NULL)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        if (parse_extensions(buf, hdr_len, ext_end, out, err) < 0) {
                backing_info_clear(out);
                return -1;
        }
        return 0;
}

int backing_resolve(const char *image_path, const char *name, char **out, struct tt_error *err)
{
        _cleanup_free_ char *copy = NULL;
        const char *slash, *colon;

        if (strncmp(name, "file:", 5) == 0)
                name += 5;
        colon = strchr(name, ':');
        slash = strchr(name, '/');
        if (strncmp(name, "json:", 5) == 0 || (colon && (slash == NULL || colon < slash)))
                return tt_error_set(err, EINVAL,
                                    "backing file '%s' is not a plain file (tetherd opens "
                                    "backing files itself and hands QEMU files only)",
                                    name);
        if (*name == '\0')
                return tt_error_set(err, EINVAL, "empty backing file name");
        if (name[0] == '/') {
                *out = strdup(name);
        } else {
                copy = strdup(image_path);
                if (copy == NULL || asprintf(out, "%s/%s", dirname(copy), name) < 0)
                        *out = NULL;
        }
        return *out ? 0 : tt_error_set(err, ENOMEM, "out of memory");
}

void backing_links_free(struct backing_link *links, size_t n)
{
        for (size_t i = 0; links && i < n; i++) {
                if (links[i].fd >= 0)
                        close(links[i].fd);
                free(links[i].path);
        }
        free(links);
}

/* The first BACKING_HEADER_MAX bytes of fd (fewer for a small file) into buf. */
static ssize_t read_head(int fd, unsigned char *buf)
{
        size_t got = 0;

        while (got < BACKING_HEADER_MAX) {
                ssize_t r = pread(fd, buf + got, BACKING_HEADER_MAX - got, (off_t)got);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -1;
                if (r == 0)
                        break;
                got += (size_t)r;
        }
        return (ssize_t)got;
}

int backing_walk(int top_fd, const char *top_path, backing_open_fn open_fn, void *opaque,
                 struct backing_link **links, size_t *n, struct tt_error *err)
{
        _cleanup_free_ unsigned char *buf = malloc(BACKING_HEADER_MAX);
        struct backing_link *v = NULL;
        size_t count = 0;
        int fd = top_fd;
        const char *image = top_path;

        *links = NULL;
        *n = 0;
        if (buf == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        for (;;) {
                struct backing_info info;
                struct backing_link *grown, *link;
                char *path = NULL;
                ssize_t len = read_head(fd, buf);
                bool qcow2;

                if (len < 0) {
                        tt_error_errno(err, errno, "cannot read the header of '%s'", image);
                        goto fail;
                }
                if (backing_parse(buf, (size_t)len, &info, err) < 0) {
                        tt_error_prefix(err, "disk image '%s'", image);
                        goto fail;
                }
                if (info.data_file) {
                        backing_info_clear(&info);
                        tt_error_set(err, EINVAL,
                                     "disk image '%s' keeps its data in an external file, "
                                     "which tetherd does not hand to QEMU",
                                     image);
                        goto fail;
                }
                if (info.name == NULL) {
                        backing_info_clear(&info);
                        break;
                }
                if (count == BACKING_MAX_DEPTH) {
                        backing_info_clear(&info);
                        tt_error_set(err, ELOOP,
                                     "the backing chain of '%s' is deeper than %d images",
                                     top_path, BACKING_MAX_DEPTH);
                        goto fail;
                }
                if (info.format && strcmp(info.format, "qcow2") != 0 &&
                    strcmp(info.format, "raw") != 0) {
                        tt_error_set(err, EINVAL,
                                     "disk image '%s': backing format '%s' is not supported "
                                     "(qcow2 or raw)",
                                     image, info.format);
                        backing_info_clear(&info);
                        goto fail;
                }
                if (backing_resolve(image, info.name, &path, err) < 0) {
                        backing_info_clear(&info);
                        tt_error_prefix(err, "disk image '%s'", image);
                        goto fail;
                }
                grown = reallocarray(v, count + 1, sizeof(*v));
                if (grown == NULL) {
                        free(path);
                        backing_info_clear(&info);
                        tt_error_set(err, ENOMEM, "out of memory");
                        goto fail;
                }
                v = grown;
                link = &v[count];
                link->path = path;
                link->fd = open_fn(opaque, path, image, err);
                if (link->fd < 0) {
                        free(path);
                        backing_info_clear(&info);
                        goto fail;
                }
                count++;
                if (info.format) {
                        qcow2 = strcmp(info.format, "qcow2") == 0;
                } else {
                        /* No format in the header: probed, as QEMU would (the chain below a
                           probed qcow2 is walked and checked all the same). */
                        unsigned char magic[4];

                        qcow2 = pread(link->fd, magic, 4, 0) == 4 && be32(magic) == QCOW2_MAGIC;
                }
                link->qcow2 = qcow2;
                backing_info_clear(&info);
                if (!qcow2)
                        break;
                fd = link->fd;
                image = link->path;
        }
        *links = v;
        *n = count;
        return 0;
fail:
        backing_links_free(v, count);
        return -1;
}
