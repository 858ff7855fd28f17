#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# guest-bench.sh [--guest DIR] [--quick] [path/to/tether-agent-static]
#
# The in-guest benchmark: the same test guest (tools/mkguest.sh: Debian kernel + busybox
# initramfs) booted under TCG with tether-agent and with Debian's qemu-ga 7.2, 3 boots each (or
# --boots N) in alternate order (T Q, Q T, T Q), all driven by the same Python client
# (bench/guest_bench.py) through QEMU's virtio-serial chardev socket. Prints one table of
# tether-agent / qemu-ga ratios and qemu-ga against itself (its boot 2 over its boot 1, one
# first and one second in its pair) as the noise floor; exits 1 when a row misses its target or
# an agent answers with errors. Not a test: it does not run in CI. Needs root (mkguest.sh) and
# about 6 minutes (plus 20 s to build the images when the agent changed); one QEMU at a time.
#
#   path/to/tether-agent-static  the agent to put in the guest
#                    (default: build/src/agent/tether-agent-static; build one with
#                    meson compile -C BUILD src/agent/tether-agent-static)
#   --guest DIR      where the guest images go (default /tmp/guestbench-guest); they are
#                    rebuilt only when the agent binary or mkguest.sh changed
#   --quick          harness check only: 300 pings, 150 mixed commands, 5 s windows, 3 boots
#   --boots N        boots per agent (default 3, at least 3)
#
# Measures, in every boot (RTTs pooled over boots, the other rows the median over boots):
#   - guest-ping round trip: 200 warm-up, then 2000 sequential pings from one client on one
#     connection; median and p99. The client floor (the same loop against a trivial echo
#     server on a unix socket) is printed under the table.
#   - VmRSS and VmHWM of the agent (/proc/PID/status read with guest-exec of sh/cat) after
#     a fixed mix of ~1000 read-only commands: 91 cycles of ping, info, get-osinfo,
#     network-get-interfaces, get-fsinfo, get-vcpus, file open/read/close of /etc/os-release,
#     exec /bin/true + status polls 10 ms apart until exited (every request counts). The
#     RssAnon/RssFile/RssShmem split and per-command latencies are printed under the table.
#   - wakeups per second with the host side disconnected: a guest-exec'd shell script samples
#     the agent's voluntary+nonvoluntary context switches, summed over all its threads, 2 s
#     after the client closes the chardev socket and again 20 s later (times from
#     /proc/uptime); the client reconnects after ~25 s and reads the samples back. The same
#     with the client connected and idle is the sanity check (both agents should be ~0).
#   - QEMU start to first reply: from spawning tools/run-guest.sh to the first guest-ping
#     reply (connects retried every 10 ms, a ping resent every 250 ms); median of the boots.
#     Each boot's RTT is printed under the table too, to show how much it moves between boots
#     with the machine's load.
# As root the client and QEMU (its descendant) run at nice -10 (BENCH_NICE=0 turns that off),
# as bench/agent-bench.sh does, because the machine is shared.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
guest=/tmp/guestbench-guest
quick=()
boots=()
agent=""
while [ $# -gt 0 ]; do
	case "$1" in
	--guest) guest=${2:?}; shift 2 ;;
	--quick) quick=(--pings 300 --warmup 50 --mix 150 --window 5 --boots 3); shift ;;
	--boots) boots=(--boots "${2:?}"); shift 2 ;;
	-h|--help) sed -n '4,43p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "guest-bench: unknown option $1" >&2; exit 2 ;;
	*) agent=$1; shift ;;
	esac
done
agent=${agent:-$root/build/src/agent/tether-agent-static}
if [ ! -x "$agent" ]; then
	echo "guest-bench: $agent is not an executable (meson compile -C BUILD src/agent/tether-agent-static)" >&2
	exit 2
fi
file -L "$agent" | grep -q 'statically linked' ||
	echo "guest-bench: warning: $agent is not static" >&2

# Rebuild the guest images only when the agent or the image recipe changed.
mkdir -p "$guest"
stamp=$(cat "$agent" "$root/tools/mkguest.sh" /usr/sbin/qemu-ga | sha256sum | cut -d' ' -f1)
if [ "$(cat "$guest/.guestbench-stamp" 2>/dev/null)" != "$stamp" ] ||
	[ ! -r "$guest/initrd.img" ] || [ ! -r "$guest/initrd-qemu-ga.img" ]; then
	echo "guest-bench: building guest images in $guest" >&2
	"$root/tools/mkguest.sh" --agent "$agent" --out "$guest" >/dev/null
	"$root/tools/mkguest.sh" --agent qemu-ga --out "$guest" >/dev/null
	echo "$stamp" >"$guest/.guestbench-stamp"
fi

# Unix socket paths must fit in sun_path, so keep the run dir short.
run=$(mktemp -d /tmp/guestbench-run-XXXXXX)
trap 'rm -rf "$run"' EXIT INT TERM

prio=()
if [ "$(id -u)" = 0 ] && [ "${BENCH_NICE:-1}" != 0 ]; then
	prio=(nice -n -10)
fi
echo "agent: $agent ($(stat -L -c %s "$agent") bytes); qemu-ga: $(qemu-ga --version | head -n1)"
echo "initrd sizes: tether $(stat -c %s "$guest/initrd.img"), qemu-ga $(stat -c %s "$guest/initrd-qemu-ga.img") bytes; priority: ${prio[*]:-normal}"
"${prio[@]}" python3 "$here/guest_bench.py" --guest "$guest" --run-guest "$root/tools/run-guest.sh" \
	--run-dir "$run" "${quick[@]}" "${boots[@]}"
