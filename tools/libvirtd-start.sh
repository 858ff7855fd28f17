#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Start virtlogd and libvirtd (qemu:///system; no systemd here) for the tests, unless libvirtd
# already answers. Prints the PIDs of the daemons it started, one per line: stop only those.
#
# libvirtd runs in a private mount namespace whose /dev/kvm is an unusable file. KVM does not
# work on these machines (DESIGN.md: nested KVM hangs), and the real /dev/kvm (root, 0600) makes
# libvirt 9.0 judge its QEMU capability cache outdated on every lookup: its probe (as root)
# enables KVM, its check (as libvirt-qemu) finds /dev/kvm unusable. Each define, start or
# domcapabilities then probes QEMU again, 4 s each. With /dev/kvm masked, both agree (no KVM)
# and the cache holds; guests run under TCG either way (type='qemu').
set -euo pipefail

uri=qemu:///system
answers() { timeout "${1:-20}" virsh -c "$uri" version >/dev/null 2>&1; }

[ -S /run/libvirt/libvirt-sock ] && answers && exit 0
command -v libvirtd >/dev/null && command -v virtlogd >/dev/null ||
  { echo "libvirtd-start: libvirtd or virtlogd is not installed" >&2; exit 1; }

wait_pidfile() {
  local i
  for i in $(seq 100); do
    [ -s "$1" ] && { echo "$(head -n 1 "$1")"; return 0; }
    sleep 0.1
  done
  echo "libvirtd-start: no $1" >&2
  return 1
}

if ! [ -s /run/virtlogd.pid ] || ! kill -0 "$(cat /run/virtlogd.pid)" 2>/dev/null; then
  rm -f /run/virtlogd.pid
  virtlogd -d
  wait_pidfile /run/virtlogd.pid
fi
rm -f /run/libvirtd.pid
if [ -e /dev/kvm ] && [ -f /etc/libvirt/qemu.conf ]; then
  # In the namespace, /dev/kvm is an empty file no one can open, and qemu.conf is the real one
  # plus namespaces = [ ]: libvirt moves /dev's submounts into each QEMU's own /dev and fails on
  # a file mount, so QEMU shares the namespace's /dev instead. QEMU still runs as libvirt's
  # unprivileged user, with its DAC labels; the files stay in /run/tether-libvirt.
  dir=/run/tether-libvirt
  mkdir -p "$dir"
  : >"$dir/nokvm"
  chmod 000 "$dir/nokvm"
  { cat /etc/libvirt/qemu.conf; printf '\n# tools/libvirtd-start.sh\nnamespaces = [ ]\n'; } \
    >"$dir/qemu.conf"
  unshare -m --propagation private sh -ec '
    mount --bind "$1/nokvm" /dev/kvm
    mount --bind "$1/qemu.conf" /etc/libvirt/qemu.conf
    exec libvirtd -d' sh "$dir"
else
  libvirtd -d
fi
wait_pidfile /run/libvirtd.pid
# A first start may still probe QEMU (once: the cache holds after that).
for _ in $(seq 600); do
  answers 60 && exit 0
  sleep 0.2
done
echo "libvirtd-start: libvirtd does not answer on $uri" >&2
exit 1
