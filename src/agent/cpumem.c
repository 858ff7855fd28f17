/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-set-vcpus and guest-set-memory-blocks: CPU and memory hot(un)plug through sysfs
 * (cpuN/online, memoryN/state). The error texts and the per-block error codes follow qemu-ga's
 * transfer_vcpu() and transfer_memory_block() exactly, quirks included.
 */
#include "agent/agent.h"
#include "agent/sysinfo.h"
#include "common/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CPU_DIR    "/sys/devices/system/cpu"
#define MEMORY_DIR "/sys/devices/system/memory/"

/* Bring one CPU to the wanted state; paths in messages are the guest's, as qemu-ga prints them. */
static int set_vcpu(int64_t id, bool online, struct tt_error *err)
{
        static const char fn[] = "online";
        _cleanup_free_ char *real = NULL;
        _cleanup_close_ int dirfd = -1;
        _cleanup_close_ int fd = -1;
        char dirpath[64];
        unsigned char status;
        ssize_t n;

        snprintf(dirpath, sizeof(dirpath), CPU_DIR "/cpu%" PRId64 "/", id);
        real = agent_path("%s", dirpath);
        if (real == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        dirfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return tt_error_errno(err, errno, "open(\"%s\")", dirpath);
        fd = openat(dirfd, fn, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                if (errno != ENOENT)
                        return tt_error_errno(err, errno, "open(\"%s/%s\")", dirpath, fn);
                /* no online file: the CPU cannot be taken offline (cpu0 on most kernels) */
                if (!online)
                        return tt_error_set(err, EINVAL,
                                            "logical processor #%" PRId64 " can't be offlined", id);
                return 0;
        }
        n = pread(fd, &status, 1, 0);
        if (n < 0)
                return tt_error_errno(err, errno, "pread(\"%s/%s\")", dirpath, fn);
        if (n == 0)
                return tt_error_set(err, EIO, "pread(\"%s/%s\"): unexpected EOF", dirpath, fn);
        if (online != (status != '0')) {
                status = online ? '1' : '0';
                if (pwrite(fd, &status, 1, 0) < 0)
                        return tt_error_errno(err, errno, "pwrite(\"%s/%s\")", dirpath, fn);
        }
        return 0;
}

AGENT_HANDLER(agent_cmd_set_vcpus)
{
        json_t *vcpus = json_object_get(args, "vcpus");
        int64_t processed = 0;
        size_t i;
        json_t *v;

        json_array_foreach(vcpus, i, v)
        {
                int64_t id = json_integer_value(json_object_get(v, "logical-id"));
                bool online = json_is_true(json_object_get(v, "online"));
                struct tt_error e = {0};

                if (set_vcpu(id, online, &e) < 0) {
                        /* an error is only an error when nothing was done */
                        if (processed == 0) {
                                tt_error_set(err, e.code, "%s", e.msg);
                                tt_error_clear(&e);
                                return -1;
                        }
                        tt_error_clear(&e);
                        break;
                }
                processed++;
        }
        *ret = json_integer(processed);
        return *ret ? 0 : tt_error_set(err, ENOMEM, "out of memory");
}

enum memblk_response {
        MEMBLK_SUCCESS,
        MEMBLK_NOT_FOUND,
        MEMBLK_NOT_SUPPORTED,
        MEMBLK_FAILED,
};

static const char *const memblk_response_names[] = {
    [MEMBLK_SUCCESS] = "success",
    [MEMBLK_NOT_FOUND] = "not-found",
    [MEMBLK_NOT_SUPPORTED] = "operation-not-supported",
    [MEMBLK_FAILED] = "operation-failed",
};

/* Read the block's state file into buf (NUL-terminated); 0, or an errno value (0 at EOF). */
static int read_state(int dirfd, char *buf, size_t size, int *code)
{
        _cleanup_close_ int fd = -1;
        ssize_t n;

        errno = 0;
        fd = openat(dirfd, "state", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                *code = errno;
                return -1;
        }
        n = pread(fd, buf, size - 1, 0);
        if (n <= 0) {
                *code = n < 0 ? errno : 0;
                return -1;
        }
        buf[n] = '\0';
        return 0;
}

static int write_state(int dirfd, const char *state, int *code)
{
        _cleanup_close_ int fd = openat(dirfd, "state", O_WRONLY | O_CLOEXEC);

        if (fd < 0 || pwrite(fd, state, strlen(state), 0) < 0) {
                *code = errno;
                return -1;
        }
        return 0;
}

/*
 * One block's response. As qemu-ga: the response defaults to "success"; every early exit
 * reports errno as error-code, even the one that leaves "success" in place (an already-online
 * block whose state file is missing).
 */
static json_t *set_memblock(uint64_t index, bool online)
{
        enum memblk_response response = MEMBLK_SUCCESS;
        _cleanup_free_ char *real_dir = agent_path(MEMORY_DIR);
        _cleanup_free_ char *real = NULL;
        _cleanup_close_ int dirfd = -1;
        bool has_code = false;
        char state[16];
        int code = 0;
        json_t *r;
        DIR *dp;

        if (real_dir == NULL)
                return NULL;
        dp = opendir(real_dir);
        if (dp == NULL) {
                code = errno;
                has_code = true;
                if (code == ENOENT)
                        response = MEMBLK_NOT_SUPPORTED;
                goto out;
        }
        closedir(dp);
        if (asprintf(&real, "%smemory%" PRIu64 "/", real_dir, index) < 0) {
                real = NULL;
                return NULL;
        }
        dirfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0) {
                code = errno;
                has_code = true;
                response = code == ENOENT ? MEMBLK_NOT_FOUND : MEMBLK_FAILED;
                goto out;
        }
        if (read_state(dirfd, state, sizeof(state), &code) < 0) {
                has_code = true;
                if (code == ENOENT) {
                        if (!online)
                                response = MEMBLK_NOT_SUPPORTED;
                } else {
                        response = MEMBLK_FAILED;
                }
                goto out;
        }
        if (online != (strncmp(state, "online", 6) == 0) &&
            write_state(dirfd, online ? "online" : "offline", &code) < 0) {
                has_code = true;
                response = MEMBLK_FAILED;
        }
out:
        r = json_object();
        if (r == NULL || agent_json_set(r, "phys-index", agent_json_u64(index)) < 0 ||
            agent_json_set(r, "response", json_string(memblk_response_names[response])) < 0 ||
            (has_code && agent_json_set(r, "error-code", json_integer(code)) < 0)) {
                json_decref(r);
                return NULL;
        }
        return r;
}

AGENT_HANDLER(agent_cmd_set_memory_blocks)
{
        json_t *blocks = json_object_get(args, "mem-blks");
        _cleanup_json_ json_t *list = json_array();
        size_t i;
        json_t *v;

        if (list == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        json_array_foreach(blocks, i, v)
        {
                json_t *jindex = json_object_get(v, "phys-index");
                /* beyond INT64_MAX the parser keeps a uint64 as a real; negatives wrap (qemu) */
                uint64_t index = json_is_real(jindex) ? (uint64_t)json_real_value(jindex)
                                                      : (uint64_t)json_integer_value(jindex);
                bool online = json_is_true(json_object_get(v, "online"));

                if (json_array_append_new(list, set_memblock(index, online)) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        *ret = json_incref(list);
        return 0;
}
