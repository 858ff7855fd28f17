/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A save image as `restore` reads it: the input is the whole file, a memfd (a regular file like
 * the real one) parsed by saveimage_open_fd() as restore parses a client's descriptor, and the
 * XML it carries goes through domain_parse() as restore does. Invariants: a refusal says why and leaves the
 * image empty; an accepted header describes a stream that lies inside the file, after the XML,
 * aligned, and the descriptor it returns sits at the stream's start.
 */
#include "fuzz.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host/domain.h"
#include "host/saveimage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static int mfd = -1;
        struct saveimage img;
        struct tt_error err = {0};
        char path[64];
        int fd;

        if (mfd < 0)
                mfd = memfd_create("fuzz-saveimage", MFD_CLOEXEC);
        FUZZ_CHECK(mfd >= 0);
        FUZZ_CHECK(ftruncate(mfd, 0) == 0);
        FUZZ_CHECK(size == 0 || pwrite(mfd, data, size, 0) == (ssize_t)size);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
        /*
         * saveimage_open() opens O_NOFOLLOW, and /proc/self/fd/N is a link: it would refuse
         * every input before reading it. Open the memfd here and parse it as restore parses a
         * client's descriptor.
         */
        fd = open(path, O_RDONLY | O_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        if (saveimage_open_fd(fd, path, &img, &err) < 0) {
                close(fd);
                fd = -1;
        }
        if (fd < 0) {
                FUZZ_CHECK(err.msg != NULL && err.msg[0] != '\0');
                FUZZ_CHECK(img.xml == NULL);
                tt_error_clear(&err);
                return 0;
        }
        FUZZ_CHECK(img.xml != NULL && img.xml[0] != '\0');
        FUZZ_CHECK(img.version == SAVEIMAGE_VERSION);
        FUZZ_CHECK(img.data_offset % SAVEIMAGE_ALIGN == 0);
        FUZZ_CHECK(img.data_offset >= SAVEIMAGE_HEADER_SIZE + strlen(img.xml));
        FUZZ_CHECK(img.data_len > 0);
        /* The stream is inside the file: no wrap-around in offset + length. */
        FUZZ_CHECK(img.data_offset <= size && img.data_len <= size - img.data_offset);
        FUZZ_CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)img.data_offset);
        close(fd);
        {
                struct domain *def = domain_parse(img.xml, strlen(img.xml), &err);

                FUZZ_CHECK(def != NULL || err.msg != NULL);
                domain_free(def);
                tt_error_clear(&err);
        }
        saveimage_clear(&img);
        return 0;
}
