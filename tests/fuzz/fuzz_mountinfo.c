/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The mount table as the agent reads it: the first input byte picks /proc/self/mountinfo
 * (even) or, with no mountinfo, the older /proc/self/mounts (odd); the rest is the file, in
 * a scratch sysroot. agent_mounts_read() parses it, then guest-get-fsinfo goes through the
 * dispatcher. Invariants: entries have a mount point and a type, at most one per device.
 */
#include "fuzz.h"
#include "fuzz_agent.h"
#include "agent/mounts.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct agent_mounts m = {0};
        struct tt_error err = {0};
        bool mtab = size > 0 && (data[0] & 1);

        fuzz_agent_ctx();
        if (size > 0) {
                data++;
                size--;
        }
        fuzz_write_file(fuzz_scratch_dir(), mtab ? "proc/self/mounts" : "proc/self/mountinfo",
                        data, size);
        if (agent_mounts_read(&m, &err) < 0) {
                FUZZ_CHECK(err.msg != NULL);
                tt_error_clear(&err);
        }
        for (size_t i = 0; i < m.n; i++) {
                FUZZ_CHECK(m.v[i].dir != NULL && m.v[i].type != NULL);
                for (size_t j = 0; j < i; j++)
                        FUZZ_CHECK(m.v[i].major != m.v[j].major || m.v[i].minor != m.v[j].minor);
        }
        agent_mounts_free(&m);
        fuzz_agent_request("{\"execute\": \"guest-get-fsinfo\"}");
        fuzz_remove_file(fuzz_scratch_dir(), mtab ? "proc/self/mounts" : "proc/self/mountinfo");
        return 0;
}
