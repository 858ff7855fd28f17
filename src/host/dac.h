/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's user and the files QEMU opens (as libvirt's DAC driver does, with its "remember"):
 * before a start, every disk image (rw, or r for a read-only disk or cdrom), kernel and initrd
 * that QEMU's user cannot use by its mode bits is given to that user; its previous owner, group
 * and mode are written first to the domain's run folder (dac.json, atomically), and put back
 * when QEMU stops, also by a tetherd restarted in between. Files QEMU's user can already use
 * are left alone (a kernel shared by many domains keeps its owner).
 */
#ifndef TT_HOST_DAC_H
#define TT_HOST_DAC_H

#include <stdbool.h>
#include <sys/stat.h>
#include "common/tt_error.h"
#include "host/domain.h"
#include "host/tetherd.h"

/* Give QEMU's user access to def's files for this run (nothing when QEMU runs as root). */
int dac_grant(struct tetherd *d, const char *name, const struct domain *def,
              struct tt_error *err);
/* Put back what dac_grant changed for name (from dac.json), and remove dac.json. */
void dac_restore(struct tetherd *d, const char *name);
/* Does the file (stat) give QEMU's user read (need 4) or read-write (need 6) access? */
bool dac_qemu_can(const struct tetherd *d, const struct stat *st, int need);

#endif
