#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# meson install: create QEMU's user (tetherd runs QEMU as tether-qemu) when installing as root
# into the running system; a staged install (DESTDIR) leaves it to the package's scripts.
set -e
[ -z "${DESTDIR:-}" ] || exit 0
[ "$(id -u)" = 0 ] || { echo "not root: create tether-qemu yourself" >&2; exit 0; }
getent passwd tether-qemu >/dev/null ||
  useradd --system --no-create-home --shell /usr/sbin/nologin tether-qemu
