/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a domain may name when a client that is not root defines, creates, starts or restores
 * it (issue 10): its <emulator> is on the allow-list ([security] emulators), its disk sources,
 * kernel and initrd lie under an image folder ([security] image-dirs; real paths, so neither
 * ".." nor a symlink leads out), and so do the backing files of its qcow2 images (backing.h),
 * and its channels use tetherd's own socket paths. Root keeps
 * full freedom. Every refusal names the element and the rule.
 */
#ifndef TT_HOST_POLICY_H
#define TT_HOST_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include "common/tt_error.h"
#include "host/domain.h"
#include "host/tetherd.h"

/* The error code of a refusal (the control API's "access denied"). */
#define POLICY_ERR_DENIED 2000

/*
 * The one entry point for the control API, before a verb runs: records whose request runs
 * (d->request_uid), and for a non-root peer checks the definition a define or create carries.
 */
int policy_check(struct tetherd *d, uid_t uid, const char *verb, json_t *args,
                 struct tt_error *err);
/* Check a definition for a non-root request (also at each launch: start, restore). */
int policy_check_domain(struct tetherd *d, const struct domain *def, struct tt_error *err);
/*
 * backing_open_fn (backing.h) for a client that is not root: the backing file's real path must
 * lie under an image folder; it is opened read-only without following a symlink. opaque is
 * the struct tetherd.
 */
int policy_open_backing(void *opaque, const char *path, const char *image, struct tt_error *err);
/* Does the real path lie under one of the image folders? */
bool policy_in_image_dirs(const struct tetherd *d, const char *real);

/* The defaults: QEMU binaries found at build time and in /usr/bin, /usr/local/bin; and
   /var/lib/tether/images plus, under --root, ROOT/var/lib/tether/images. NULL-terminated. */
char **policy_default_emulators(void);
char **policy_default_image_dirs(const char *root);
/* A list value of the config: words separated by spaces; NULL on no memory. */
char **policy_split_list(const char *value);
void policy_strv_free(char **v);

#endif
