/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Looking a user up in the guest's /etc/passwd. The agent is linked statically and runs in
 * guests without NSS (busybox), so getpwnam() is not an option: we read the file with
 * fgetpwent() ourselves. Shared by guest-ssh-* and guest-set-user-password.
 */
#ifndef TT_AGENT_USERS_H
#define TT_AGENT_USERS_H

#include <sys/types.h>
#include "common/tt_error.h"

/*
 * Find name in <sysroot>/etc/passwd. On success *uid and *gid are set and *home gets a malloc'd
 * copy of the home directory (any of the three may be NULL when not wanted). An unknown user
 * fails with qemu-ga's text: "failed to lookup user 'NAME': Success" (code ENOENT).
 */
int agent_lookup_user(const char *name, uid_t *uid, gid_t *gid, char **home, struct tt_error *err);

#endif
