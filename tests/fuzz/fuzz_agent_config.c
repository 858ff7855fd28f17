/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The agent's config file: the input is the file agent_config_load_file() reads. Invariants:
 * a refusal says why; command names in block-rpcs and allow-rpcs are non-empty and carry no
 * white space at either end (they are compared with the table's names); an accepted file,
 * printed back with agent_config_dump() (what -D shows users to save as their config), loads
 * again and prints the same.
 */
#include "fuzz.h"

#include <ctype.h>
#include <string.h>

#include "agent/config.h"

static char *dump(const struct agent_config *cfg)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        FUZZ_CHECK(f != NULL);
        agent_config_dump(cfg, f);
        FUZZ_CHECK(fclose(f) == 0);
        return text;
}

static void check_names(char **list)
{
        for (size_t i = 0; list && list[i]; i++) {
                size_t len = strlen(list[i]);

                FUZZ_CHECK(len > 0);
                FUZZ_CHECK(!isspace((unsigned char)list[i][0]));
                FUZZ_CHECK(!isspace((unsigned char)list[i][len - 1]));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct agent_config cfg = {0}, again = {0};
        struct tt_error err = {0};
        char path[512];
        char *text, *text2;

        snprintf(path, sizeof(path), "%s/agent.conf", fuzz_scratch_dir());
        fuzz_write_file(fuzz_scratch_dir(), "agent.conf", data, size);
        if (agent_config_load_file(&cfg, path, &err) < 0) {
                FUZZ_CHECK(err.msg != NULL && err.msg[0] != '\0');
                tt_error_clear(&err);
                agent_config_free(&cfg);
                return 0;
        }
        check_names(cfg.block_rpcs);
        check_names(cfg.allow_rpcs);
        text = dump(&cfg);
        fuzz_write_file(fuzz_scratch_dir(), "agent.conf", text, strlen(text));
        if (agent_config_load_file(&again, path, &err) < 0)
                fprintf(stderr, "-D output does not load: %s\n%s", err.msg, text);
        FUZZ_CHECK(err.msg == NULL);
        text2 = dump(&again);
        if (strcmp(text, text2) != 0)
                fprintf(stderr, "first:\n%ssecond:\n%s", text, text2);
        FUZZ_CHECK(strcmp(text, text2) == 0);
        free(text);
        free(text2);
        agent_config_free(&cfg);
        agent_config_free(&again);
        return 0;
}
