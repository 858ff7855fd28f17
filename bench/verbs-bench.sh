#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# verbs-bench.sh [--self] [--quick] [--runs N] [--cp-runs N] [--rss-n N] [--rss-rounds N]
#                [--skip verbs,cp,rss] [BUILD_DIR]
#
# Benchmarks the guest-agent verbs of tetherd + tether against libvirtd + virsh, side by side
# in one run, on the same guest files and the same domain XML (type='qemu' TCG, 1 vCPU, direct
# kernel boot of the test guest with tether-agent inside, the agent channel, memballoon none).
# Not a test: it does not run in CI. A full run takes about 12 minutes on 2 cores.
#
#   verbs   wall time of one CLI command, median of --runs (default 30; 2 warm-up dropped):
#           `qemu-agent-command D '{"execute":"guest-ping"}'`, `domifaddr D --source agent`,
#           `guestinfo D`, as `tether --root R ...` against `virsh -c qemu:///system ...`.
#           Both 512 MiB guests (user NIC, so eth0 has an address) run at the same time, and
#           the samples alternate T L L T, so load drifts hit both sides alike.
#   cp      MB/s of copying a 64 MiB file of random bytes out of the guest's RAM (/tmp):
#           `tether cp D:/tmp/verbs-big FILE` against the reference loop of one
#           `virsh qemu-agent-command` per guest-file-open / guest-file-read (count 1 MiB,
#           until eof) / guest-file-close, base64-decoded and written locally (in
#           bench/verbs_bench.py). Each guest makes its file with dd from /dev/urandom; every
#           copy's sha256 must equal the one sha256sum printed in the guest. --cp-runs copies
#           per side (default 4, +1 warm-up), ABBA.
#   rss     VmRSS of tetherd against libvirtd + virtlogd while --rss-n (default 20) small
#           guests (96 MiB, 1 vCPU, TCG, no NIC) run and every agent has answered a guest-ping
#           through its manager. One side's guests at a time; --rss-rounds rounds (default 2,
#           so T L L T). Measured first, while both daemons are fresh.
#
# The table has the ratio (tether / libvirt; MB/s over MB/s for cp), the target and PASS/FAIL,
# and an 'L vs L' column: libvirt against itself (two interleaved halves of its samples; for
# RSS round 1 over round 2), the noise floor. Exit status 1 when any target fails or a row has
# no data, 2 when the set-up fails.
#
#   BUILD_DIR   meson build dir with src/host/tetherd and src/cli/tether (default: build)
#   --self      harness check: virsh against virsh (a second libvirt domain); ratios ~1 (the
#               cp row runs the reference loop on both sides and then reads ~1, not >= 3)
#   --quick     trial run: --runs 5 --cp-runs 2 --rss-n 4 --rss-rounds 2
#
# Like bench/host-bench.sh it starts its own virtlogd + libvirtd in a private mount namespace
# (private /run/libvirt, /etc/libvirt/qemu, /var/lib/libvirt/qemu, /var/cache/libvirt,
# /var/log/libvirt under the run's temp dir), under bench/host_reaper.py as their child
# subreaper: the daemons' memory is then that of fresh daemons holding only the bench's
# domains (as tetherd's is), and exited QEMUs are reaped at once (see host-bench.sh).
#
# Environment: TETHER_GUEST_ENV (guest.env of tools/mkguest.sh; default BUILD_DIR/guest, then
# build/guest). Needs root, util-linux's unshare and python3. Only read-only agent commands,
# plus guest-exec of dd/cat/sha256sum and guest-file-* on the bench's own file, are sent, and
# only to the bench's own guests.
# shellcheck disable=SC2317 # the clean-up functions run from the EXIT trap
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
all_args=("$@")
py_args=()
self=false
build=
while [ $# -gt 0 ]; do
        case $1 in
        --self) self=true; py_args+=(--self) ;;
        --quick) py_args+=(--runs 5 --cp-runs 2 --rss-n 4 --rss-rounds 2) ;;
        --runs|--cp-runs|--rss-n|--rss-rounds|--skip)
                [ $# -ge 2 ] || { echo "verbs-bench: $1 needs a value" >&2; exit 2; }
                py_args+=("$1" "$2"); shift ;;
        -h|--help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
        -*) echo "verbs-bench: unknown option $1" >&2; exit 2 ;;
        *) build=$1 ;;
        esac
        shift
done
build=${build:-$repo/build}
build=$(cd "$build" 2>/dev/null && pwd) || { echo "verbs-bench: no build dir" >&2; exit 2; }
tetherd=$build/src/host/tetherd
tether=$build/src/cli/tether
URI=qemu:///system
IMG=/var/lib/libvirt/images/verbsbench

die() { echo "verbs-bench: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (libvirt's system daemon)"
if ! $self; then
        for b in "$tetherd" "$tether"; do
                [ -x "$b" ] || die "$b missing (meson setup $build $repo && meson compile -C $build)"
        done
fi
command -v virsh >/dev/null || die "virsh missing (apt-get install libvirt-clients libvirt-daemon-system)"
command -v python3 >/dev/null || die "python3 missing"

genv=${TETHER_GUEST_ENV:-}
if [ -z "$genv" ]; then
        for f in "$build/guest/guest.env" "$repo/build/guest/guest.env"; do
                [ -r "$f" ] && { genv=$f; break; }
        done
fi
{ [ -n "$genv" ] && [ -r "$genv" ]; } || die "no guest.env (build the guest: tools/mkguest.sh)"
# shellcheck disable=SC1090
. "$genv"

# The private libvirt lives in a mount namespace of its own: run the whole bench inside it.
if [ "${VERBSBENCH_NS:-}" != 1 ]; then
        command -v unshare >/dev/null || die "unshare missing (util-linux)"
        exec unshare -m --propagation private env VERBSBENCH_NS=1 "$0" "${all_args[@]}"
fi

tmp=$(mktemp -d /tmp/verbsbench-XXXXXX)
root=$tmp/root
tpid=
rpid=
lv_piddir=$tmp/libvirt/pid

# ---- clean-up: only what this run made, by name prefix in our private libvirtd and by pid ----
libvirt_clean() {
        local d cmds=
        for d in $(virsh -q -c "$URI" list --name 2>/dev/null | grep '^verbsbench-'); do
                virsh -q -c "$URI" destroy "$d" >/dev/null 2>&1
        done
        for d in $(virsh -q -c "$URI" list --all --name 2>/dev/null | grep '^verbsbench-'); do
                cmds="$cmds undefine $d;"
        done
        [ -n "$cmds" ] && virsh -q -c "$URI" "$cmds" >/dev/null 2>&1
}
# QEMUs tetherd started, by the pids it recorded (only if the pid still is that domain's QEMU).
tether_qemus_kill() {
        local f d pid
        for f in "$root"/run/tether/domains/*/qemu.pid; do
                [ -r "$f" ] || continue
                d=$(basename "$(dirname "$f")")
                pid=$(cat "$f" 2>/dev/null)
                [ -n "$pid" ] || continue
                if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "guest=$d,"; then
                        kill -9 "$pid" 2>/dev/null
                fi
        done
}
cleanup() {
        trap - EXIT INT TERM
        libvirt_clean
        if [ -n "$tpid" ]; then
                for d in $("$tether" --root "$root" list --name 2>/dev/null); do
                        "$tether" --root "$root" destroy "$d" >/dev/null 2>&1
                done
                tether_qemus_kill
                kill "$tpid" 2>/dev/null
                wait "$tpid" 2>/dev/null
        fi
        if [ -n "$rpid" ]; then
                # Our private daemons: stop them by pid; the reaper then exits by itself.
                for f in libvirtd virtlogd; do
                        [ -r "$lv_piddir/$f.pid" ] && kill "$(cat "$lv_piddir/$f.pid")" 2>/dev/null
                done
                for _ in $(seq 50); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
                kill "$rpid" 2>/dev/null
                wait "$rpid" 2>/dev/null
        fi
        rm -rf "$tmp" "$IMG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private libvirtd (bench/host_reaper.py): its state dirs are bind mounts of fresh dirs under
# $tmp in this script's mount namespace; the capability cache is copied so no QEMU probe runs.
start_private_libvirt() {
        local lv=$tmp/libvirt
        mkdir -p "$lv" || return 1
        python3 "$here/host_reaper.py" "$lv" >"$lv/reaper.out" 2>&1 &
        rpid=$!
        for _ in $(seq 300); do
                grep -q '^ready$' "$lv/reaper.out" && return 0
                kill -0 "$rpid" 2>/dev/null || return 1
                sleep 0.1
        done
        return 1
}
start_private_libvirt || die "cannot start a private libvirtd: $(cat "$tmp/libvirt/reaper.out" 2>/dev/null)"
virsh -q -c "$URI" version >/dev/null 2>&1 || die "libvirtd does not answer on $URI"

# The same kernel and initrd files for both managers, where libvirt's QEMU user can read them.
mkdir -p "$IMG"
{ cp "$TETHER_GUEST_KERNEL" "$IMG/vmlinux" && cp "$TETHER_GUEST_INITRD" "$IMG/initrd.img"; } ||
        die "cannot copy the guest"
chmod 0644 "$IMG"/*

if ! $self; then
        "$tetherd" --root "$root" --log "$tmp/tetherd.log" &
        tpid=$!
        for _ in $(seq 100); do [ -S "$root/run/tether/tetherd.sock" ] && break; sleep 0.05; done
        [ -S "$root/run/tether/tetherd.sock" ] || die "tetherd did not start (see $tmp/tetherd.log)"
fi

echo "reference: $(libvirtd --version | head -1), private daemon, virsh -c $URI"
if $self; then
        echo "candidate: virsh -c $URI as well (--self: harness check, every ratio should be ~1)"
else
        echo "candidate: $tetherd + $tether (--root $root)"
fi
echo "guest: $TETHER_GUEST_KERNEL + $TETHER_GUEST_INITRD, TCG, 1 vCPU, memballoon none"
echo "host: $(uname -srm), $(nproc) CPUs; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "other QEMU processes on the host: $(pgrep -c qemu-system)"

python3 "$here/verbs_bench.py" --tmp "$tmp" --root "$root" --tether "$tether" \
        --tetherd-pid "${tpid:-0}" --lv-piddir "$lv_piddir" --kernel "$IMG/vmlinux" \
        --initrd "$IMG/initrd.img" --append "$TETHER_GUEST_APPEND" \
        --guest-ip "${TETHER_GUEST_IP:-10.0.2.15}" "${py_args[@]}"
rc=$?
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "libvirt: a private libvirtd + virtlogd of this run (reaped by bench/host_reaper.py)."
exit $rc
