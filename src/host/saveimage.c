/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Save image header: writing it around QEMU's migration stream and checking it on restore. */
#include "host/saveimage.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put_le(unsigned char *p, uint64_t v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, size_t n)
{
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

static void encode_header(unsigned char *h, const char *magic, const struct saveimage *img,
                          uint32_t xml_len)
{
        memset(h, 0, SAVEIMAGE_HEADER_SIZE);
        memcpy(h, magic, strlen(magic));
        put_le(h + 16, img->version, 4);
        put_le(h + 20, img->flags, 4);
        put_le(h + 24, xml_len, 4);
        put_le(h + 32, img->data_offset, 8);
        put_le(h + 40, img->data_len, 8);
}

/* pwrite all of buf, or fail. */
static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = pwrite(fd, p, len, off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -1;
                p += n;
                len -= (size_t)n;
                off += n;
        }
        return 0;
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
        char *p = buf;

        while (len > 0) {
                ssize_t n = pread(fd, p, len, off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -1;
                if (n == 0) {
                        errno = 0; /* end of file: the caller says "incomplete" */
                        return -1;
                }
                p += n;
                len -= (size_t)n;
                off += n;
        }
        return 0;
}

static const char *file_kind(mode_t mode)
{
        if (S_ISDIR(mode))
                return "directory";
        if (S_ISFIFO(mode))
                return "FIFO";
        if (S_ISCHR(mode))
                return "character device";
        if (S_ISBLK(mode))
                return "block device";
        if (S_ISSOCK(mode))
                return "socket";
        return "special file";
}

int saveimage_create(const char *path, const char *xml, uint32_t flags, struct saveimage *img,
                     struct tt_error *err)
{
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int r;

        if (fd < 0)
                return tt_error_errno(err, errno, "cannot create save image '%s'", path);
        r = saveimage_create_fd(fd, path, xml, flags, img, err);
        if (r < 0)
                close(fd);
        return r;
}

int saveimage_create_fd(int given, const char *path, const char *xml, uint32_t flags,
                        struct saveimage *img, struct tt_error *err)
{
        size_t xml_len = strlen(xml);
        unsigned char h[SAVEIMAGE_HEADER_SIZE];
        int fd = given;
        struct stat st;
        int fl;

        memset(img, 0, sizeof(*img));
        /*
         * The descriptor may come from a client: only a regular file, open for writing and not
         * for appending (the header is written at offset 0 last), is an image. Nothing here
         * reads or writes before that is known, so a FIFO or a device never blocks us.
         */
        if (fstat(fd, &st) < 0 || (fl = fcntl(fd, F_GETFL)) < 0)
                return tt_error_errno(err, errno, "cannot save to '%s'", path);
        if (!S_ISREG(st.st_mode))
                return tt_error_set(err, EINVAL,
                                    "cannot save to '%s': it is a %s, and a save image must be "
                                    "a regular file",
                                    path, file_kind(st.st_mode));
        if ((fl & O_ACCMODE) == O_RDONLY)
                return tt_error_set(err, EINVAL, "cannot save to '%s': not open for writing",
                                    path);
        if (fl & O_APPEND)
                return tt_error_set(err, EINVAL,
                                    "cannot save to '%s': open for appending (O_APPEND)", path);
        if ((fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                return tt_error_errno(err, errno, "cannot save to '%s'", path);
        if (xml_len > SAVEIMAGE_MAX_XML)
                return tt_error_set(err, EFBIG, "domain XML too large for a save image");
        img->version = SAVEIMAGE_VERSION;
        img->flags = flags;
        img->data_offset = (SAVEIMAGE_HEADER_SIZE + xml_len + SAVEIMAGE_ALIGN - 1) &
                           ~(uint64_t)(SAVEIMAGE_ALIGN - 1);
        /* The old contents go: ftruncate(0) first, then the padding reads as zeros. */
        if (ftruncate(fd, 0) < 0)
                return tt_error_errno(err, errno, "cannot write save image '%s'", path);
        encode_header(h, SAVEIMAGE_MAGIC_PARTIAL, img, (uint32_t)xml_len);
        /* The padding reads as zeros: ftruncate makes the hole. */
        if (pwrite_all(fd, h, sizeof(h), 0) < 0 ||
            pwrite_all(fd, xml, xml_len, SAVEIMAGE_HEADER_SIZE) < 0 ||
            ftruncate(fd, (off_t)img->data_offset) < 0 ||
            lseek(fd, (off_t)img->data_offset, SEEK_SET) < 0)
                return tt_error_errno(err, errno, "cannot write save image '%s'", path);
        img->xml = strdup(xml);
        if (img->xml == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return fd;
}

int saveimage_finish(int fd, struct saveimage *img, struct tt_error *err)
{
        unsigned char h[SAVEIMAGE_HEADER_SIZE];
        struct stat st;

        /* The stream must be on disk before the magic says the image is complete. */
        if (fdatasync(fd) < 0 || fstat(fd, &st) < 0)
                return tt_error_errno(err, errno, "cannot sync save image");
        if ((uint64_t)st.st_size <= img->data_offset)
                return tt_error_set(err, EIO, "QEMU wrote no migration data");
        img->data_len = (uint64_t)st.st_size - img->data_offset;
        encode_header(h, SAVEIMAGE_MAGIC, img, (uint32_t)strlen(img->xml));
        if (pwrite_all(fd, h, sizeof(h), 0) < 0 || fdatasync(fd) < 0)
                return tt_error_errno(err, errno, "cannot complete save image header");
        return 0;
}

int saveimage_open(const char *path, struct saveimage *img, struct tt_error *err)
{
        int fd, r;

        memset(img, 0, sizeof(*img));
        /*
         * Never follow a link, and never block (a FIFO would wait for a writer with the whole
         * daemon). Only a regular file is an image (saveimage_open_fd checks).
         */
        fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && errno == ELOOP)
                return tt_error_set(err, EINVAL,
                                    "'%s' is a symbolic link: a save image must be a regular "
                                    "file, and links are not followed",
                                    path);
        if (fd < 0)
                return tt_error_errno(err, errno, "cannot open save image '%s'", path);
        r = saveimage_open_fd(fd, path, img, err);
        if (r < 0)
                close(fd);
        return r;
}

int saveimage_open_fd(int given, const char *path, struct saveimage *img, struct tt_error *err)
{
        unsigned char h[SAVEIMAGE_HEADER_SIZE], magic[16] = {0};
        int fd = given;
        uint32_t xml_len;
        struct stat st;
        int fl;

        memset(img, 0, sizeof(*img));
        /* The descriptor may come from a client: a regular file, or nothing is read from it. */
        if (fstat(fd, &st) < 0 || (fl = fcntl(fd, F_GETFL)) < 0)
                return tt_error_errno(err, errno, "cannot stat '%s'", path);
        if (!S_ISREG(st.st_mode))
                return tt_error_set(err, EINVAL,
                                    "'%s' is not a Tether save image: it is a %s, and a save "
                                    "image must be a regular file",
                                    path, file_kind(st.st_mode));
        if ((fl & O_ACCMODE) == O_WRONLY)
                return tt_error_set(err, EINVAL, "cannot read '%s': not open for reading", path);
        /* QEMU reads the stream through this fd: give it blocking reads again. */
        if (fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                return tt_error_errno(err, errno, "cannot read '%s'", path);
        if (pread_all(fd, h, sizeof(h), 0) < 0) {
                if (errno)
                        return tt_error_errno(err, errno, "cannot read '%s'", path);
                /* Shorter than a header: incomplete if it begins like one, foreign if not. */
                if (st.st_size > 0 &&
                    memcmp(h, "Tether", st.st_size < 6 ? (size_t)st.st_size : 6) == 0)
                        return tt_error_set(err, EINVAL,
                                            "'%s': image is incomplete (%lld bytes, shorter "
                                            "than its header)",
                                            path, (long long)st.st_size);
                return tt_error_set(err, EINVAL, "'%s' is not a Tether save image", path);
        }
        memcpy(magic, h, sizeof(magic));
        if (memcmp(magic, SAVEIMAGE_MAGIC_PARTIAL, sizeof(SAVEIMAGE_MAGIC_PARTIAL)) == 0)
                return tt_error_set(err, EINVAL,
                                    "'%s': image is incomplete (the save did not finish)", path);
        if (memcmp(magic, SAVEIMAGE_MAGIC, sizeof(SAVEIMAGE_MAGIC)) != 0)
                return tt_error_set(err, EINVAL, "'%s' is not a Tether save image", path);
        img->version = (uint32_t)get_le(h + 16, 4);
        img->flags = (uint32_t)get_le(h + 20, 4);
        xml_len = (uint32_t)get_le(h + 24, 4);
        img->data_offset = get_le(h + 32, 8);
        img->data_len = get_le(h + 40, 8);
        if (img->version != SAVEIMAGE_VERSION)
                return tt_error_set(err, EINVAL, "'%s': unsupported save image version %u", path,
                                    img->version);
        if (xml_len == 0 || xml_len > SAVEIMAGE_MAX_XML ||
            img->data_offset < SAVEIMAGE_HEADER_SIZE + (uint64_t)xml_len ||
            img->data_offset % SAVEIMAGE_ALIGN != 0 || img->data_len == 0)
                return tt_error_set(err, EINVAL, "'%s': corrupt save image header", path);
        /* Each below 2^63 (file offsets are signed), and compared without the sum, which a
         * forged data_len would wrap around. */
        if (img->data_offset > INT64_MAX || img->data_len > INT64_MAX)
                return tt_error_set(err, EINVAL, "'%s': corrupt save image header", path);
        if ((uint64_t)st.st_size < img->data_offset ||
            (uint64_t)st.st_size - img->data_offset < img->data_len)
                return tt_error_set(err, EINVAL,
                                    "'%s': image is incomplete (%lld of %llu bytes; truncated?)",
                                    path, (long long)st.st_size,
                                    (unsigned long long)(img->data_offset + img->data_len));
        img->xml = calloc(1, (size_t)xml_len + 1);
        if (img->xml == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (pread_all(fd, img->xml, xml_len, SAVEIMAGE_HEADER_SIZE) < 0 ||
            memchr(img->xml, '\0', xml_len) != NULL) {
                saveimage_clear(img);
                return tt_error_set(err, EINVAL, "'%s': corrupt domain XML in save image", path);
        }
        if (lseek(fd, (off_t)img->data_offset, SEEK_SET) < 0) {
                saveimage_clear(img);
                return tt_error_errno(err, errno, "cannot seek in '%s'", path);
        }
        return fd;
}

void saveimage_clear(struct saveimage *img)
{
        free(img->xml);
        memset(img, 0, sizeof(*img));
}
