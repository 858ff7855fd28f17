#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# monitor-bench.sh [--quick] [--rounds N] [--n N] [--scrapes N] [--stop-scrapes N]
#                  [--stop-timeout S] [--cpu-seconds S] [--no-disk] [BUILD_DIR]
#
# Benchmarks tetherd's monitor and its /metrics against Debian's prometheus-libvirt-exporter
# 0.2.0 (kumina) on a private libvirtd, in one run: --n (default 10) running TCG guests of the
# test guest (128 MiB, 1 vCPU, tether-agent inside, the domain XML of bench/verbs_bench.py plus
# a copy of the guest's 64 MiB data disk each) under one manager at a time. Phases run in ABBA
# order, T L L T (--rounds 2, the default; 1 gives T L). Not a test: it does not run in CI. A
# full run takes about 10 minutes on 2 cores (most of it the stopped-QEMU waits).
#
#   scrape    wall time of GET /metrics (a fresh TCP connection each, the same Python client
#             for both), --scrapes per phase (default 100, so 200 per side), 20 ms apart. Every
#             reply must be 200 with tether_up 1 / libvirt_up 1 and every domain in it.
#   stopped   the same while one guest's QEMU is SIGSTOPped (SIGCONT after): tetherd
#             --stop-scrapes (default 100, 0.2 s apart, so they span two host-poll rounds), the
#             exporter at most 3 scrapes or 100 s per phase; client timeout --stop-timeout
#             (default 35 s: libvirt gives up waiting for a domain's job lock after 30 s, so 35
#             shows what the exporter answers then; Prometheus' default scrape timeout is 10 s).
#             Then the time until both answer in full again.
#   cpu       utime+stime of tetherd (/proc) over --cpu-seconds (default 30) of idle polling
#             with the default intervals, per T phase; per domain per 10 s round, and % of one
#             core. For libvirt, the CPU of libvirtd + virtlogd + the exporter per scrape per
#             domain (the exporter polls only when scraped).
#   rss       VmRSS of tetherd against libvirtd + virtlogd + the exporter at the end of each
#             phase (median of 3 reads).
#   size      bytes of one scrape and series per domain.
#
# The table: tether | libvirt | ratio | L vs L (libvirt's two phases against each other: the
# noise floor) | target | PASS/FAIL. Exit status 1 when a target fails or a row has no data,
# 2 when the set-up fails.
#
#   BUILD_DIR       meson build dir with src/host/tetherd and src/cli/tether (default: build)
#   --quick         trial: --rounds 1 --n 4 --scrapes 30 --stop-scrapes 30 --cpu-seconds 20
#   --no-disk       guests without the data disk; then the exporter never reaches QEMU (see
#                   bench/README.md), so a stopped QEMU cannot slow it down
#
# Like bench/verbs-bench.sh it starts its own virtlogd + libvirtd in a private mount namespace
# under bench/host_reaper.py; the exporter talks to that daemon's socket. tetherd runs under a
# temp --root with --config (a [monitor] section with the default intervals) and
# --metrics-listen on a free loopback port; the exporter listens on another one.
#
# Environment: TETHER_GUEST_ENV (guest.env of tools/mkguest.sh; default BUILD_DIR/guest, then
# build/guest), LIBVIRT_EXPORTER (default /usr/bin/prometheus-libvirt-exporter). Needs root,
# util-linux's unshare and python3. Only guest-ping goes to the agents, only of the bench's
# own guests; the bench ends only processes it started (by pid) and undefines its
# monbench-* domains.
# shellcheck disable=SC2317 # the clean-up functions run from the EXIT trap
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
all_args=("$@")
py_args=()
build=
while [ $# -gt 0 ]; do
        case $1 in
        --quick) py_args+=(--rounds 1 --n 4 --scrapes 30 --stop-scrapes 30 --cpu-seconds 20) ;;
        --no-disk) py_args+=(--disk 0) ;;
        --rounds|--n|--scrapes|--stop-scrapes|--stop-timeout|--cpu-seconds)
                [ $# -ge 2 ] || { echo "monitor-bench: $1 needs a value" >&2; exit 2; }
                py_args+=("$1" "$2"); shift ;;
        -h|--help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
        -*) echo "monitor-bench: unknown option $1" >&2; exit 2 ;;
        *) build=$1 ;;
        esac
        shift
done
build=${build:-$repo/build}
build=$(cd "$build" 2>/dev/null && pwd) || { echo "monitor-bench: no build dir" >&2; exit 2; }
tetherd=$build/src/host/tetherd
tether=$build/src/cli/tether
exporter=${LIBVIRT_EXPORTER:-/usr/bin/prometheus-libvirt-exporter}
URI=qemu:///system
IMG=/var/lib/libvirt/images/monbench

die() { echo "monitor-bench: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (libvirt's system daemon)"
for b in "$tetherd" "$tether"; do
        [ -x "$b" ] || die "$b missing (meson setup $build $repo && meson compile -C $build)"
done
[ -x "$exporter" ] || die "$exporter missing (apt-get install --no-install-recommends prometheus-libvirt-exporter)"
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
if [ "${MONBENCH_NS:-}" != 1 ]; then
        command -v unshare >/dev/null || die "unshare missing (util-linux)"
        exec unshare -m --propagation private env MONBENCH_NS=1 "$0" "${all_args[@]}"
fi

tmp=$(mktemp -d /tmp/monbench-XXXXXX)
root=$tmp/root
lv=$tmp/libvirt
lv_piddir=$lv/pid
tpid=
rpid=
epid=

# ---- clean-up: only what this run made, by name prefix in our private libvirtd and by pid ----
# A QEMU of ours that a crash left SIGSTOPped gets SIGCONT first (only if the pid still is it).
qemus_cont() {
        local f d pid
        for f in "$root"/run/tether/domains/monbench-*/qemu.pid "$lv"/run/qemu/monbench-*.pid; do
                [ -r "$f" ] || continue
                d=$(basename "$f" .pid)
                [ "$d" = qemu ] && d=$(basename "$(dirname "$f")")
                pid=$(cat "$f" 2>/dev/null)
                [ -n "$pid" ] || continue
                if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "guest=$d,"; then
                        kill -CONT "$pid" 2>/dev/null
                fi
        done
}
libvirt_clean() {
        local d cmds=
        for d in $(virsh -q -c "$URI" list --name 2>/dev/null | grep '^monbench-'); do
                virsh -q -c "$URI" destroy "$d" >/dev/null 2>&1
        done
        for d in $(virsh -q -c "$URI" list --all --name 2>/dev/null | grep '^monbench-'); do
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
        qemus_cont
        if [ -n "$epid" ]; then
                kill "$epid" 2>/dev/null
                wait "$epid" 2>/dev/null
        fi
        libvirt_clean
        if [ -n "$tpid" ]; then
                for d in $("$tether" --root "$root" list --name 2>/dev/null); do
                        "$tether" --root "$root" destroy "$d" >/dev/null 2>&1
                done
                for d in $("$tether" --root "$root" list --all --name 2>/dev/null); do
                        "$tether" --root "$root" undefine "$d" >/dev/null 2>&1
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
start_private_libvirt || die "cannot start a private libvirtd: $(cat "$lv/reaper.out" 2>/dev/null)"
virsh -q -c "$URI" version >/dev/null 2>&1 || die "libvirtd does not answer on $URI"

# Two free loopback ports: tetherd's /metrics and the exporter's.
read -r tport eport < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
[ -n "${eport:-}" ] || die "no free ports"

# The same kernel and initrd files for both managers, where libvirt's QEMU user can read them;
# each domain gets its own sparse copy of the guest's data disk (made by the Python half).
mkdir -p "$IMG"
{ cp "$TETHER_GUEST_KERNEL" "$IMG/vmlinux" && cp "$TETHER_GUEST_INITRD" "$IMG/initrd.img"; } ||
        die "cannot copy the guest"
chmod 0644 "$IMG"/*

# tetherd: the default [monitor] intervals, written out, and /metrics on loopback.
mkdir -p "$root"
cat >"$tmp/tetherd.conf" <<EOF
# monitor-bench.sh: tetherd's default intervals
[monitor]
host-interval = 10
stats-interval = 10
users-interval = 30
filesystems-interval = 60
osinfo-interval = 300
EOF
"$tetherd" --root "$root" --log "$tmp/tetherd.log" --config "$tmp/tetherd.conf" \
        --metrics-listen "127.0.0.1:$tport" &
tpid=$!
for _ in $(seq 100); do [ -S "$root/run/tether/tetherd.sock" ] && break; sleep 0.05; done
[ -S "$root/run/tether/tetherd.sock" ] || die "tetherd did not start (see $tmp/tetherd.log)"

# The exporter, on our private libvirtd's socket (the real path, outside the bind mount too).
"$exporter" --web.listen-address="127.0.0.1:$eport" \
        --libvirt.uri="qemu:///system?socket=$lv/run/libvirt-sock" >"$tmp/exporter.log" 2>&1 &
epid=$!

echo "reference: $(libvirtd --version | head -1), private daemon, + $exporter" \
        "($(dpkg-query -W -f '${Version}' prometheus-libvirt-exporter 2>/dev/null || echo '?')) on 127.0.0.1:$eport"
echo "candidate: $tetherd --root $root --config (default intervals) --metrics-listen 127.0.0.1:$tport"
echo "guest: $TETHER_GUEST_KERNEL + $TETHER_GUEST_INITRD, TCG, 1 vCPU, 128 MiB, memballoon none"
echo "host: $(uname -srm), $(nproc) CPUs; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "other QEMU processes on the host: $(pgrep -c qemu-system)"

python3 "$here/monitor_bench.py" --tmp "$tmp" --root "$root" --tether "$tether" \
        --tetherd-pid "$tpid" --exporter-pid "$epid" --lv-dir "$lv" --img "$IMG" \
        --tport "$tport" --eport "$eport" --kernel "$IMG/vmlinux" --initrd "$IMG/initrd.img" \
        --append "$TETHER_GUEST_APPEND" --data-img "$TETHER_GUEST_DATA" "${py_args[@]}"
rc=$?
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "libvirt: a private libvirtd + virtlogd of this run (reaped by bench/host_reaper.py)."
exit $rc
