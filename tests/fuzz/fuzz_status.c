/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A running domain's status file, as tetherd reads it back after a restart: the input is
 * ROOT/run/tether/domains/NAME/status.json, loaded with store_load_status() and checked with
 * vm_status_fields() (vm_reconnect.c). Invariants: an unreadable file says why; accepted
 * fields name an active state with a reason valid for it, a pid that is not init and an id.
 */
#include "fuzz.h"

#include <string.h>

#include "host/store.h"
#include "host/vm-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct store store;
        static bool opened;
        struct tt_error err = {0};
        struct vm_status status = {VM_STATE_RUNNING, VM_RUNNING_UNKNOWN};
        pid_t pid = 0;
        int id = 0;
        json_t *st;

        if (!opened) {
                FUZZ_CHECK(store_open(&store, fuzz_scratch_dir(), &err) == 0);
                opened = true;
        }
        fuzz_write_file(fuzz_scratch_dir(), "run/tether/domains/d/status.json", data, size);
        st = store_load_status(&store, "d", &err);
        if (st == NULL) {
                FUZZ_CHECK(err.msg != NULL);
                tt_error_clear(&err);
                return 0;
        }
        if (vm_status_fields(st, &status, &pid, &id)) {
                char *text = vm_state_format(status.state, status.reason, true);

                FUZZ_CHECK(vm_state_is_active(status.state));
                FUZZ_CHECK(vm_state_reason_name(status.state, status.reason) != NULL);
                FUZZ_CHECK(pid > 1 && id >= 1);
                FUZZ_CHECK(text != NULL && text[0] != '\0');
                free(text);
        }
        json_decref(st);
        return 0;
}
