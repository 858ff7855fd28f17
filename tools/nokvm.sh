#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# nokvm.sh DIR CMD [ARG...]: run CMD (libvirtd) in a private mount namespace whose /dev/kvm is
# an unusable file and whose /etc/libvirt/qemu.conf is the real one plus `namespaces = [ ]`; DIR
# holds those two files. Without /dev/kvm or a qemu.conf, CMD runs as it is.
#
# Why: KVM does not work on these machines (DESIGN.md: nested KVM hangs), and the real /dev/kvm
# (root, 0600) makes libvirt 9.0 judge its QEMU capability cache outdated on every lookup: its
# probe (as root) enables KVM, its check (as libvirt-qemu) finds /dev/kvm unusable. Each define,
# start or domcapabilities then probes QEMU again, 4 s each. With /dev/kvm masked both agree (no
# KVM) and the cache holds; guests run under TCG either way (type='qemu'). `namespaces = [ ]`:
# libvirt moves /dev's submounts into each QEMU's own /dev and fails on a file mount, so QEMU
# shares the namespace's /dev instead; it still runs as libvirt's user, with its DAC labels.
# Used by tools/libvirtd-start.sh (the tests) and bench/host_reaper.py (the benches).
set -euo pipefail

dir=${1:?usage: nokvm.sh DIR CMD [ARG...]}
shift
if [ -e /dev/kvm ] && [ -f /etc/libvirt/qemu.conf ]; then
  mkdir -p "$dir"
  : >"$dir/nokvm"
  chmod 000 "$dir/nokvm"
  { cat /etc/libvirt/qemu.conf; printf '\n# tools/nokvm.sh\nnamespaces = [ ]\n'; } \
    >"$dir/qemu.conf"
  exec unshare -m --propagation private sh -ec '
    mount --bind "$1/nokvm" /dev/kvm
    mount --bind "$1/qemu.conf" /etc/libvirt/qemu.conf
    shift
    exec "$@"' sh "$dir" "$@"
fi
exec "$@"
