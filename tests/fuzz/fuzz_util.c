/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the fuzz targets (fuzz.h). */
#include "fuzz.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Warnings about malformed input are expected by the thousand: they still get formatted (the
 * format strings are under test too) but go to /dev/null.
 */
__attribute__((constructor)) static void fuzz_quiet_logs(void)
{
        tt_log_open("/dev/null");
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
        char *s = malloc(size + 1);

        FUZZ_CHECK(s != NULL);
        if (size)
                memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

static char scratch[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static void scratch_remove(void)
{
        if (scratch[0])
                nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_scratch_dir(void)
{
        if (scratch[0])
                return scratch;
        /* tmpfs when there is one: every execution writes a file or two */
        snprintf(scratch, sizeof(scratch), "%s/tether-fuzz-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        FUZZ_CHECK(mkdtemp(scratch) != NULL);
        atexit(scratch_remove);
        return scratch;
}

/* mkdir -p of the folders above DIR/rel */
static void make_parents(char *path)
{
        for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
                *p = '\0';
                FUZZ_CHECK(mkdir(path, 0700) == 0 || errno == EEXIST);
                *p = '/';
        }
}

void fuzz_write_file(const char *dir, const char *rel, const void *data, size_t len)
{
        char path[1024];
        const char *p = data;
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 && errno == ENOENT) {
                make_parents(path);
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        }
        FUZZ_CHECK(fd >= 0);
        while (len > 0) {
                ssize_t n = write(fd, p, len);

                FUZZ_CHECK(n > 0);
                p += n;
                len -= (size_t)n;
        }
        close(fd);
}

void fuzz_remove_file(const char *dir, const char *rel)
{
        char path[1024];

        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        unlink(path);
}
