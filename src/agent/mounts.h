/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's local block-device file systems, in mount order, as qemu-ga's
 * build_fs_mount_list(): guest-get-fsinfo describes them, the freeze commands freeze them.
 */
#ifndef TT_AGENT_MOUNTS_H
#define TT_AGENT_MOUNTS_H

#include <stddef.h>
#include "common/tt_error.h"

struct agent_mount {
        char *dir;          /* mount point, unescaped */
        char *type;         /* file system type */
        unsigned int major; /* st_dev of the file system */
        unsigned int minor;
};

struct agent_mounts {
        struct agent_mount *v; /* in mount table order; one entry per device */
        size_t n;
        size_t cap;
};

/* Read /proc/self/mountinfo (or /proc/self/mounts) under the agent's sysroot into m. */
int agent_mounts_read(struct agent_mounts *m, struct tt_error *err);
void agent_mounts_free(struct agent_mounts *m);

#endif
