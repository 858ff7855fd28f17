/* SPDX-License-Identifier: GPL-2.0-or-later */
/* guest-get-vcpus, guest-get-memory-blocks, guest-get-memory-block-info: sysfs reads. */
#include "agent/agent.h"
#include "agent/sysinfo.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parse "<prefix><digits>" exactly; false for anything else (cpufreq, memory_tiering, ...). */
static bool parse_indexed_name(const char *name, const char *prefix, int64_t *idx)
{
        size_t n = strlen(prefix);

        if (strncmp(name, prefix, n) != 0 || !isdigit((unsigned char)name[n]))
                return false;
        return tt_parse_int64(name + n, 10, idx) == 0;
}

static int cmp_index(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/*
 * The numeric suffixes of the "<prefix>N" directories in dir, sorted. qemu-ga lists them in
 * readdir order, which on sysfs is hash order; ascending is the same set and easier to read.
 */
static int list_indexed_dirs(const char *dir, const char *prefix, int64_t **out, size_t *count)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;

        if (d == NULL)
                return -errno;
        while ((de = readdir(d)) != NULL) {
                int64_t idx;

                if (!parse_indexed_name(de->d_name, prefix, &idx))
                        continue;
                if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        int64_t *nids = reallocarray(ids, ncap, sizeof(*ids));

                        if (nids == NULL)
                                return -ENOMEM;
                        ids = nids;
                        cap = ncap;
                }
                ids[n++] = idx;
        }
        if (n > 0)
                qsort(ids, n, sizeof(*ids), cmp_index);
        *out = steal_pointer(&ids);
        *count = n;
        return 0;
}

/* Read up to len-1 bytes from the start of dir/name; returns bytes read or -errno. */
static ssize_t read_small(const char *dir, const char *name, char *buf, size_t len)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        ssize_t r;

        if (asprintf(&path, "%s/%s", dir, name) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = pread(fd, buf, len - 1, 0);
        if (r < 0)
                return -errno;
        buf[r] = '\0';
        return r;
}

AGENT_HANDLER(agent_cmd_get_vcpus)
{
        _cleanup_free_ char *cpu_dir = agent_path("/sys/devices/system/cpu");
        _cleanup_json_ json_t *list = json_array();
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0, i;
        int r;

        if (cpu_dir == NULL || list == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        r = list_indexed_dirs(cpu_dir, "cpu", &ids, &n);
        if (r < 0)
                return tt_error_errno(err, -r, "failed to list entries: %s",
                                      "/sys/devices/system/cpu");
        for (i = 0; i < n; i++) {
                _cleanup_free_ char *dir = NULL;
                char status[2];
                bool online, can_offline;
                ssize_t got;

                if (asprintf(&dir, "%s/cpu%lld", cpu_dir, (long long)ids[i]) < 0) {
                        dir = NULL;
                        return tt_error_set(err, ENOMEM, "out of memory");
                }
                got = read_small(dir, "online", status, sizeof(status));
                if (got == -ENOENT) {
                        /* no "online" file: this CPU (usually cpu0) cannot go offline */
                        online = true;
                        can_offline = false;
                } else if (got < 0) {
                        return tt_error_errno(err, (int)-got,
                                              "open(\"/sys/devices/system/cpu/cpu%lld//online\")",
                                              (long long)ids[i]);
                } else if (got == 0) {
                        return tt_error_set(err, EIO,
                                            "pread(\"/sys/devices/system/cpu/cpu%lld//online\"): "
                                            "unexpected EOF",
                                            (long long)ids[i]);
                } else {
                        online = status[0] != '0';
                        can_offline = true;
                }
                if (json_array_append_new(list, json_pack("{s:I,s:b,s:b}", "logical-id",
                                                          (json_int_t)ids[i], "online", online,
                                                          "can-offline", can_offline)) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        *ret = steal_pointer(&list);
        return 0;
}

AGENT_HANDLER(agent_cmd_get_memory_blocks)
{
        _cleanup_free_ char *mem_dir = agent_path("/sys/devices/system/memory");
        _cleanup_json_ json_t *list = json_array();
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0, i;
        int r;

        if (mem_dir == NULL || list == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        r = list_indexed_dirs(mem_dir, "memory", &ids, &n);
        if (r == -ENOENT) {
                /* no memory hotplug in this kernel: nothing to report, not an error */
                *ret = steal_pointer(&list);
                return 0;
        }
        if (r < 0)
                return tt_error_errno(err, -r,
                                      "Can't open directory\"/sys/devices/system/memory/\"");
        for (i = 0; i < n; i++) {
                _cleanup_free_ char *dir = NULL;
                char state[11], removable[2];
                bool online, can_offline;
                ssize_t got;

                if (asprintf(&dir, "%s/memory%lld", mem_dir, (long long)ids[i]) < 0) {
                        dir = NULL;
                        return tt_error_set(err, ENOMEM, "out of memory");
                }
                got = read_small(dir, "state", state, sizeof(state));
                if (got == -ENOENT) {
                        /* old kernels: always online, never removable */
                        online = true;
                        can_offline = false;
                } else if (got < 0) {
                        return tt_error_errno(err, (int)-got, "open sysfs file \"state\"");
                } else if (got == 0) {
                        return tt_error_set(err, EIO, "pread sysfs file \"state\": unexpected EOF");
                } else {
                        online = strncmp(state, "online", 6) == 0;
                        got = read_small(dir, "removable", removable, sizeof(removable));
                        if (got == -ENOENT)
                                can_offline = false;
                        else if (got < 0)
                                return tt_error_errno(err, (int)-got,
                                                      "open sysfs file \"removable\"");
                        else if (got == 0)
                                return tt_error_set(err, EIO,
                                                    "pread sysfs file \"removable\": "
                                                    "unexpected EOF");
                        else
                                can_offline = removable[0] != '0';
                }
                if (json_array_append_new(list, json_pack("{s:I,s:b,s:b}", "phys-index",
                                                          (json_int_t)ids[i], "online", online,
                                                          "can-offline", can_offline)) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        if (n == 0)
                return tt_error_set(err, 0, "guest reported zero memory blocks!");
        *ret = steal_pointer(&list);
        return 0;
}

AGENT_HANDLER(agent_cmd_get_memory_block_info)
{
        _cleanup_free_ char *mem_dir = agent_path("/sys/devices/system/memory");
        _cleanup_close_ int dfd = -1;
        char buf[21];
        uint64_t size;
        ssize_t got;

        if (mem_dir == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        dfd = open(mem_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return tt_error_errno(err, errno, "open(\"/sys/devices/system/memory/\")");
        got = read_small(mem_dir, "block_size_bytes", buf, sizeof(buf));
        if (got < 0)
                return tt_error_errno(err, (int)-got, "open sysfs file \"block_size_bytes\"");
        if (got == 0)
                return tt_error_set(err, EIO,
                                    "pread sysfs file \"block_size_bytes\": unexpected EOF");
        /* hexadecimal without 0x, e.g. "8000000\n" */
        size = strtoull(buf, NULL, 16);
        *ret = json_pack("{s:o}", "size", agent_json_u64(size));
        if (*ret == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return 0;
}
