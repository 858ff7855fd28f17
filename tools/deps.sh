#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install every Debian package Tether's build, tests and demo need. Idempotent.
set -euo pipefail

packages=(
  # build
  gcc clang meson ninja-build pkg-config libjansson-dev libcmocka-dev libxml2-dev libevent-dev
  libssl-dev
  # tests and tools
  python3 file cpio gzip xz-utils e2fsprogs kmod gcovr
  # the real components the tests run against
  qemu-system-x86 qemu-utils qemu-guest-agent busybox-static
  libvirt-daemon-system libvirt-clients openssh-server openssh-client gvncviewer
  # the monitor's tests: promtool, a Prometheus server and a Pushgateway; tmux (`tether top`, `tether console`)
  prometheus prometheus-pushgateway tmux
  # the web console's tests: a real browser driven by Selenium; openssl makes a test certificate
  chromium chromium-driver python3-selenium openssl python3-pil
  # the web console serves noVNC and Chart.js from where Debian installs them (not vendored)
  novnc libjs-chart.js
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# QEMU's own user: tetherd has every QEMU drop root for it once started (-runas).
if ! getent passwd tether-qemu >/dev/null; then
  useradd --system --no-create-home --shell /usr/sbin/nologin tether-qemu
fi
