#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Start virtlogd and libvirtd (qemu:///system; no systemd here) for the tests, unless libvirtd
# already answers. Prints the PIDs of the daemons it started, one per line: stop only those.
#
# libvirtd runs under tools/nokvm.sh: without a usable /dev/kvm, so that libvirt 9.0 does not
# probe QEMU again on every define and start (4 s each; the script says why).
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
"$(dirname "$0")/nokvm.sh" /run/tether-libvirt libvirtd -d
wait_pidfile /run/libvirtd.pid
# A first start may still probe QEMU (once: the cache holds after that).
for _ in $(seq 600); do
  answers 60 && exit 0
  sleep 0.2
done
echo "libvirtd-start: libvirtd does not answer on $uri" >&2
exit 1
