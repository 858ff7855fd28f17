/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * authorized_keys and the passwd lookup before it, as guest-ssh-get-authorized-keys reads them
 * in a scratch sysroot. The first input byte picks the file the rest becomes: odd, the user's
 * ~/.ssh/authorized_keys (passwd is the fixture's); even, /etc/passwd itself (the keys file
 * holds one key). Invariants: an error says why; the reply lists strings without newlines, no
 * more of them than the file has lines.
 */
#include "fuzz.h"
#include "fuzz_agent.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYS "home/u/.ssh/authorized_keys"

AGENT_HANDLER(agent_cmd_ssh_get_authorized_keys);

static void write_passwd(void)
{
        char line[256];

        snprintf(line, sizeof(line), "root:x:0:0:root:/root:/bin/sh\nu:x:%u:%u::/home/u:/bin/sh\n",
                 (unsigned)getuid(), (unsigned)getgid());
        fuzz_write_file(fuzz_scratch_dir(), "etc/passwd", line, strlen(line));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char key[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ8ijwC8 u@host\n";
        struct agent_ctx *ctx = fuzz_agent_ctx();
        json_t *args = json_pack("{s:s}", "username", "u"), *ret = NULL, *keys, *k;
        struct tt_error err = {0};
        size_t lines = 1, i;
        bool keys_file;

        keys_file = size == 0 || (data[0] & 1);
        if (size > 0) {
                data++;
                size--;
        }
        if (keys_file) {
                write_passwd();
                fuzz_write_file(fuzz_scratch_dir(), KEYS, data, size);
                for (i = 0; i < size; i++)
                        lines += data[i] == '\n';
        } else {
                fuzz_write_file(fuzz_scratch_dir(), "etc/passwd", data, size);
                fuzz_write_file(fuzz_scratch_dir(), KEYS, key, strlen(key));
        }
        FUZZ_CHECK(args != NULL);
        if (agent_cmd_ssh_get_authorized_keys(ctx, args, &ret, &err) < 0) {
                FUZZ_CHECK(err.msg != NULL && ret == NULL);
                tt_error_clear(&err);
        } else {
                keys = json_object_get(ret, "keys");
                FUZZ_CHECK(json_is_array(keys) && json_array_size(keys) <= lines);
                json_array_foreach(keys, i, k)
                        FUZZ_CHECK(json_is_string(k) && strchr(json_string_value(k), '\n') == NULL);
        }
        json_decref(ret);
        json_decref(args);
        return 0;
}
