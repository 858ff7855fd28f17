/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The start of a disk image as tetherd reads it to walk a backing chain: backing_parse() on the
 * bytes, then backing_resolve() of the name it found, as backing_walk() does. Invariants: a
 * refusal says why and leaves nothing allocated; an accepted qcow2 header gives a NUL-free name
 * of at most 1023 bytes (QEMU's limit) and a non-empty format; a name is resolved to an absolute path, or refused with
 * a reason; an image that is not qcow2 has no backing file.
 */
#include "fuzz.h"

#include <string.h>

#include "host/backing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct backing_info info;
        struct tt_error err = {0};
        char *path = NULL;

        memset(&info, 0x5a, sizeof(info)); /* the parser must set every field itself */
        if (backing_parse(data, size, &info, &err) < 0) {
                FUZZ_CHECK(err.msg != NULL && err.msg[0] != '\0');
                tt_error_clear(&err);
                return 0;
        }
        if (!info.qcow2) {
                FUZZ_CHECK(info.name == NULL && info.format == NULL && !info.data_file);
                return 0;
        }
        if (info.name) {
                FUZZ_CHECK(strlen(info.name) <= 1023);
                if (backing_resolve("/var/lib/tether/images/top.qcow2", info.name, &path,
                                    &err) == 0) {
                        FUZZ_CHECK(path != NULL && path[0] == '/');
                        free(path);
                } else {
                        FUZZ_CHECK(err.msg != NULL && err.msg[0] != '\0');
                        tt_error_clear(&err);
                }
        }
        if (info.format)
                FUZZ_CHECK(info.format[0] != '\0' && strlen(info.format) < size);
        backing_info_clear(&info);
        return 0;
}
