/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The agent's other /proc, /sys, /etc and /run readers: the first input byte picks a file and
 * the command that reads it (table below), the rest is the file's contents in a scratch
 * sysroot, and the command runs through the dispatcher. Invariants: the dispatcher's (replies
 * are printable ASCII); the file is removed again, so each input stands alone.
 */
#include "fuzz.h"
#include "fuzz_agent.h"

static const struct {
        const char *file;    /* under the sysroot */
        const char *request; /* the command that parses it */
} cases[] = {
        {"proc/diskstats", "{\"execute\": \"guest-get-diskstats\"}"},
        {"proc/stat", "{\"execute\": \"guest-get-cpustats\"}"},
        {"proc/net/route", "{\"execute\": \"guest-network-get-route\"}"},
        {"proc/net/ipv6_route", "{\"execute\": \"guest-network-get-route\"}"},
        {"etc/os-release", "{\"execute\": \"guest-get-osinfo\"}"},
        {"usr/lib/os-release", "{\"execute\": \"guest-get-osinfo\"}"},
        {"run/utmp", "{\"execute\": \"guest-get-users\"}"},
        {"sys/devices/system/cpu/cpu1/online", "{\"execute\": \"guest-get-vcpus\"}"},
        {"sys/devices/system/memory/memory0/state", "{\"execute\": \"guest-get-memory-blocks\"}"},
        {"sys/devices/system/memory/memory0/removable",
         "{\"execute\": \"guest-get-memory-blocks\"}"},
        {"sys/devices/system/memory/block_size_bytes",
         "{\"execute\": \"guest-get-memory-block-info\"}"},
        {"sys/block/vda/dev", "{\"execute\": \"guest-get-disks\"}"},
        {"sys/block/vda/size", "{\"execute\": \"guest-get-disks\"}"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        size_t which = 0;

        fuzz_agent_ctx();
        if (size > 0) {
                which = data[0] % (sizeof(cases) / sizeof(cases[0]));
                data++;
                size--;
        }
        fuzz_write_file(fuzz_scratch_dir(), cases[which].file, data, size);
        fuzz_agent_request(cases[which].request);
        fuzz_remove_file(fuzz_scratch_dir(), cases[which].file);
        return 0;
}
