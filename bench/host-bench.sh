#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# host-bench.sh [--self] [--shared-libvirt] [--rounds N] [BUILD_DIR]
#
# Benchmarks tetherd + tether against libvirtd + virsh on this machine, side by side in one
# run, with the same guest and the same domain XML for both (type='qemu' TCG, 256 MiB, 1 vCPU,
# direct kernel boot of the test guest, no NIC, no balloon, no USB). Every timing is the wall
# time of one CLI command (`tether --root R VERB` against `virsh -c qemu:///system VERB`), the
# median of several runs taken alternately (ABBA) so that load drifts hit both sides alike.
# Not a test: it does not run in CI. A run takes about 3-4 minutes.
#
#   BUILD_DIR        meson build dir with src/host/tetherd and src/cli/tether (default: build)
#   --self           harness check: libvirt against libvirt (two domains); ratios should be ~1
#   --shared-libvirt use the libvirtd already running on /run/libvirt (see below)
#   --rounds N       lifecycle rounds per side (default 9; save/restore ceil(N/2), at least 3)
#
# By default the run starts its own virtlogd + libvirtd in a private mount namespace (private
# /run/libvirt, /etc/libvirt/qemu, /var/lib/libvirt/qemu, /var/cache/libvirt, /var/log/libvirt,
# all under the run's temp dir), under bench/host_reaper.py as their child subreaper. Two
# reasons: the daemon's memory is then that of a fresh daemon holding only the bench's
# domains (as tetherd's is), and QEMUs that exit are reaped at once. libvirt daemonizes QEMU,
# and on this machine PID 1 is not systemd and reaps orphans only every 1-2 s, while libvirt's
# destroy waits until kill(pid, 0) fails; a zombie would add those seconds to every libvirt
# destroy and save. --shared-libvirt measures the system daemon as it is instead (starting it
# if /run/libvirt/libvirt-sock is missing); it then only touches domains named hostbench-*.
#
# Environment: TETHER_GUEST_ENV (guest.env from tools/mkguest.sh; default BUILD_DIR/guest,
# then /tmp/guest-out), HOSTBENCH_BOOT_S (guest boot time before save, default 10),
# HOSTBENCH_LIST_N (defined domains for list/RSS, default 200), HOSTBENCH_TETHERD_ARGS (more
# tetherd options: `--qemu-user root` runs QEMU as root without -runas and -sandbox, the
# "before" of issue 10's unprivileged QEMU). Needs root, util-linux's
# unshare and python3.
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
all_args=("$@")
self=false
shared=false
rounds=9
build=
while [ $# -gt 0 ]; do
        case $1 in
        --self) self=true ;;
        --shared-libvirt) shared=true ;;
        --rounds) rounds=$2; shift ;;
        -h|--help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
        -*) echo "host-bench: unknown option $1" >&2; exit 2 ;;
        *) build=$1 ;;
        esac
        shift
done
build=${build:-$repo/build}
build=$(cd "$build" 2>/dev/null && pwd) || { echo "host-bench: no build dir" >&2; exit 2; }
tetherd=$build/src/host/tetherd
tether=$build/src/cli/tether
boot_s=${HOSTBENCH_BOOT_S:-10}
list_n=${HOSTBENCH_LIST_N:-200}
sr_rounds=$(( (rounds + 1) / 2 )); [ "$sr_rounds" -lt 3 ] && sr_rounds=3
URI=qemu:///system
IMG=/var/lib/libvirt/images/hostbench

die() { echo "host-bench: $*" >&2; exit 2; }
log() { echo "host-bench: $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (libvirt's system daemon)"
for b in "$tetherd" "$tether"; do
        [ -x "$b" ] || die "$b missing (meson setup $build $repo && meson compile -C $build)"
done
command -v virsh >/dev/null || die "virsh missing (apt-get install libvirt-clients libvirt-daemon-system)"

genv=${TETHER_GUEST_ENV:-}
if [ -z "$genv" ]; then
        for f in "$build/guest/guest.env" /tmp/guest-out/guest.env "$repo/build/guest/guest.env"; do
                [ -r "$f" ] && { genv=$f; break; }
        done
fi
{ [ -n "$genv" ] && [ -r "$genv" ]; } || die "no guest.env (build the guest: tools/mkguest.sh)"
# shellcheck disable=SC1090
. "$genv"

# The private libvirt lives in a mount namespace of its own: run the whole bench inside it.
if ! $shared && [ "${HOSTBENCH_NS:-}" != 1 ]; then
        command -v unshare >/dev/null || die "unshare missing (util-linux)"
        exec unshare -m --propagation private env HOSTBENCH_NS=1 "$0" "${all_args[@]}"
fi

tmp=$(mktemp -d /tmp/hostbench-XXXXXX)
root=$tmp/root
tpid=
rpid=
lv_piddir=/run
started_libvirt=false

# ---- the two sides ----
# Side T is the candidate (tether; virsh with --self), side L the reference (virsh). Each side
# has its own main domain; list and RSS use hostbench-list-NNN domains as well.
dom() { if [ "$1" = T ]; then echo hostbench-cand; else echo hostbench-ref; fi; }

virsh_q() { virsh -q -c "$URI" "$@"; }
cli() {
        local side=$1; shift
        if [ "$side" = T ] && ! $self; then
                "$tether" --root "$root" "$@"
        else
                virsh -c "$URI" "$@"
        fi
}
state() { cli "$1" domstate "$2" 2>/dev/null | sed -n '1{s/^ *//;s/ *$//;p}'; }

# The one domain definition both sides run. Only the name differs, and libvirt gets
# <controller type='usb' model='none'/>: libvirt adds a USB controller by default and tetherd
# none (it rejects <controller>), so with it both QEMUs have the same devices.
gen_xml() {
        local usb=
        [ "${2:-L}" = L ] && usb="<controller type='usb' model='none'/>"
        cat <<EOF
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>256</memory>
  <currentMemory unit='MiB'>256</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$IMG/vmlinuz</kernel>
    <initrd>$IMG/initrd.img</initrd>
    <cmdline>$TETHER_GUEST_APPEND</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    $usb
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

# ---- clean-up: only what this run made ----
# Destroy the running hostbench-* domains one by one, undefine them all in one virsh.
libvirt_clean() {
        local d cmds=
        for d in $(virsh_q list --name 2>/dev/null | grep '^hostbench-'); do
                virsh_q destroy "$d" >/dev/null 2>&1
        done
        for d in $(virsh_q list --all --name 2>/dev/null | grep '^hostbench-'); do
                cmds="$cmds undefine $d;"
        done
        [ -n "$cmds" ] && virsh_q "$cmds" >/dev/null 2>&1
}
cleanup() {
        trap - EXIT INT TERM
        libvirt_clean
        if [ -n "$tpid" ]; then
                for d in $("$tether" --root "$root" list --name 2>/dev/null); do
                        "$tether" --root "$root" destroy "$d" >/dev/null 2>&1
                done
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

# ---- timing: samples are kept one file per (measure, side), in ms ----
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }

# timed MEASURE SIDE CMD...: run a CLI verb and record its wall time; a failure records nothing.
timed() {
        local m=$1 side=$2 t0 t1 rc
        shift 2
        t0=$(now_us)
        cli "$side" "$@" >/dev/null 2>"$tmp/err"
        rc=$?
        t1=$(now_us)
        if [ $rc -ne 0 ]; then
                log "$m ($side): '$*' failed: $(head -c 300 "$tmp/err")"
                echo "$m $side" >>"$tmp/failures"
                return 1
        fi
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) / 1000 }' >>"$tmp/s.$m.$side"
}

# expect SIDE DOM STATE: the verb just timed must have left the domain in STATE.
expect() {
        local got
        got=$(state "$1" "$2")
        if [ "$got" != "$3" ]; then
                log "$2 ($1): expected '$3', got '$got'"
                echo "state $1" >>"$tmp/failures"
                return 1
        fi
}

# gone SIDE DOM: after destroy returned, no QEMU of DOM may be left (a zombie has no cmdline).
gone() {
        if pgrep -f -- "-name guest=$2," >/dev/null; then
                log "$2 ($1): QEMU still there after destroy returned"
                echo "destroy $1" >>"$tmp/failures"
                return 1
        fi
}

median() { [ -s "$1" ] && sort -n "$1" | awk '{ v[NR] = $1 } END { m = int((NR + 1) / 2);
        if (NR % 2) print v[m]; else printf "%.1f\n", (v[m] + v[m + 1]) / 2 }'; }
spread() { [ -s "$1" ] && sort -n "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
# libvirt against itself, the noise floor: the median of one half of its samples over the other,
# the halves interleaved in pairs of rounds (0,1,4,5,... against 2,3,6,7,...) so that each has
# as many rounds in the first slot as in the second. "n/a" with fewer than 4 samples.
selfratio() {
        [ -s "$1" ] || { echo n/a; return; }
        awk '{ h = int((NR - 1) / 2) % 2; v[h, ++n[h]] = $1 }
        function med(k,   i, j, t, m) {
                for (i = 1; i <= n[k]; i++) a[i] = v[k, i]
                for (i = 2; i <= n[k]; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
                        t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
                m = int((n[k] + 1) / 2)
                return n[k] % 2 ? a[m] : (a[m] + a[m + 1]) / 2
        }
        END { if (n[0] < 2 || n[1] < 2) { print "n/a"; exit }
              x = med(0); y = med(1); if (x > 0) printf "%.3f\n", y / x; else print "n/a" }' "$1"
}

# ABBA order for round i: T first on even rounds, L first on odd ones.
order() { if [ $(($1 % 2)) -eq 0 ]; then echo "T L"; else echo "L T"; fi; }

# ---- set-up ----
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
if $shared; then
        if [ ! -S /run/libvirt/libvirt-sock ]; then
                log "starting virtlogd and libvirtd"
                "$here/../tools/libvirtd-start.sh" >/dev/null || die "cannot start libvirtd"
                started_libvirt=true
                for _ in $(seq 50); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.2; done
        fi
else
        lv_piddir=$tmp/libvirt/pid
        start_private_libvirt || die "cannot start a private libvirtd: $(cat "$tmp/libvirt/reaper.out" 2>/dev/null)"
fi
virsh_q version >/dev/null 2>&1 || die "libvirtd does not answer on $URI"

mkdir -p "$IMG"
kernel=${TETHER_GUEST_KERNEL_BZIMAGE:-$TETHER_GUEST_KERNEL}
cp "$kernel" "$IMG/vmlinuz" && cp "$TETHER_GUEST_INITRD" "$IMG/initrd.img" || die "cannot copy the guest"
chmod 0644 "$IMG"/*

libvirt_clean # leftovers of an interrupted run

if ! $self; then
        # shellcheck disable=SC2086 # word splitting wanted: HOSTBENCH_TETHERD_ARGS is a list
        "$tetherd" --root "$root" --log "$tmp/tetherd.log" ${HOSTBENCH_TETHERD_ARGS:-} &
        tpid=$!
        for _ in $(seq 100); do [ -S "$root/run/tether/tetherd.sock" ] && break; sleep 0.05; done
        [ -S "$root/run/tether/tetherd.sock" ] || die "tetherd did not start (see $tmp/tetherd.log)"
fi

echo "reference: $(libvirtd --version | head -1), $($shared && echo "the system daemon" || echo "private daemon"), virsh -c $URI"
if $self; then
        echo "candidate: virsh -c $URI as well (--self: harness check, every ratio should be ~1)"
else
        echo "candidate: $tetherd ${HOSTBENCH_TETHERD_ARGS:-} + $tether (--root $root)"
fi
echo "guest: $kernel + $TETHER_GUEST_INITRD, TCG, 256 MiB, 1 vCPU, no NIC, memballoon none"
echo "host: $(uname -srm), $(nproc) CPUs; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
others=$(virsh_q list --all --name | grep -vc '^hostbench-\|^$')
echo "libvirtd already holds $others other domain(s); other QEMU processes on the host: $(pgrep -c qemu-system)"

for s in T L; do
        d=$(dom "$s")
        gen_xml "$d" "$( $self && echo L || echo "$s")" >"$tmp/$d.xml"
        cli "$s" define "$tmp/$d.xml" >/dev/null || die "define $d failed"
done

# ---- start, suspend, resume, destroy ----
# One QEMU at a time: a side's round is start, 1 s of guest boot, 3 x (suspend, 0.2 s, resume,
# 0.2 s), destroy. Round 0 warms both sides up (libvirt's capability cache, page cache) and is dropped.
log "lifecycle: $rounds rounds per side (+1 warm-up)"
for i in $(seq 0 "$rounds"); do
        for s in $(order "$i"); do
                d=$(dom "$s")
                w=; [ "$i" -eq 0 ] && w=warm.
                timed ${w}start "$s" start "$d" && expect "$s" "$d" running || continue
                sleep 1
                for _ in 1 2 3; do
                        timed ${w}suspend "$s" suspend "$d" && expect "$s" "$d" paused
                        sleep 0.2
                        timed ${w}resume "$s" resume "$d" && expect "$s" "$d" running
                        sleep 0.2
                done
                timed ${w}destroy "$s" destroy "$d" && expect "$s" "$d" "shut off" && gone "$s" "$d"
        done
done

# ---- save and restore of a booted 256 MiB guest ----
# Both images go to the same folder (same file system, same page cache); the guest boots
# $boot_s s first so its RAM is populated the same way. save leaves the domain shut off,
# restore runs it again.
sr_ok=true
if ! $self && "$tether" --root "$root" save 2>&1 | grep -qi 'unknown command'; then
        sr_ok=false
        log "save/restore: tether has no 'save' verb yet; rows are n/a"
fi
if $sr_ok; then
        log "save/restore: $sr_rounds rounds per side, ${boot_s} s boot before each save"
        for i in $(seq 1 "$sr_rounds"); do
                for s in $(order "$i"); do
                        d=$(dom "$s")
                        img=$tmp/save-$s.img
                        rm -f "$img"
                        cli "$s" start "$d" >/dev/null || { echo "start $s" >>"$tmp/failures"; continue; }
                        sleep "$boot_s"
                        if timed save "$s" save "$d" "$img" && expect "$s" "$d" "shut off"; then
                                stat -c %s "$img" >>"$tmp/size.$s"
                                timed restore "$s" restore "$img" && expect "$s" "$d" running
                        fi
                        cli "$s" destroy "$d" >/dev/null 2>&1
                        rm -f "$img"
                done
        done
fi

# ---- list --all with $list_n defined domains ----
# Each daemon's main domain counts: define list_n - 1 more in each (with --self, only in
# libvirt, which then holds list_n + 1 hostbench domains).
nlist=$((list_n - 1))
log "list: defining $nlist more domains per side"
for k in $(seq -f '%03g' 1 "$nlist"); do
        gen_xml "hostbench-list-$k" L >"$tmp/list-$k.xml"
        $self || gen_xml "hostbench-list-$k" T >"$tmp/tlist-$k.xml"
done
if ! $self; then
        for k in $(seq -f '%03g' 1 "$nlist"); do
                "$tether" --root "$root" define "$tmp/tlist-$k.xml" >/dev/null || die "tether define failed"
        done
fi
# One virsh connection for all the defines (a virsh per domain would take ~10 s).
virsh_q "$(for k in $(seq -f '%03g' 1 "$nlist"); do printf 'define %s; ' "$tmp/list-$k.xml"; done)" \
        >/dev/null || die "virsh define failed"
for s in T L; do
        n=$(cli "$s" list --all --name | grep -c '^hostbench-')
        echo "list --all ($s): $n hostbench domains, $(cli "$s" list --all | grep -c .) lines"
done
for i in $(seq 0 15); do
        for s in $(order "$i"); do
                [ "$i" -eq 0 ] && { cli "$s" list --all >/dev/null; continue; }
                timed list "$s" list --all
        done
done

# ---- daemon memory with list_n defined and 2 running ----
# One side at a time (at most 2 QEMUs): start its main domain and hostbench-list-001, let them
# boot 3 s, sum VmRSS of the daemons (tetherd; libvirtd + virtlogd), destroy both.
rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
daemon_pids() {
        if [ "$1" = T ] && ! $self; then
                echo "$tpid"
        else
                local f
                # The pid files have no newline: read each on its own.
                for f in "$lv_piddir/libvirtd.pid" "$lv_piddir/virtlogd.pid"; do
                        [ -r "$f" ] && echo "$(cat "$f")"
                done
        fi
}
log "memory: 2 running per side"
for s in T L; do
        d=$(dom "$s")
        cli "$s" start "$d" >/dev/null && cli "$s" start hostbench-list-001 >/dev/null ||
                { echo "rss $s" >>"$tmp/failures"; continue; }
        sleep 3
        sum=0 parts=
        for p in $(daemon_pids "$s"); do
                r=$(rss_of "$p")
                sum=$((sum + r))
                parts="$parts $(cat "/proc/$p/comm" 2>/dev/null)=${r}k"
        done
        echo "$sum" >"$tmp/s.rss.$s"
        echo "daemon RSS ($s):$parts"
        cli "$s" destroy "$d" >/dev/null
        cli "$s" destroy hostbench-list-001 >/dev/null
done

# ---- the table ----
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in T L; do
        [ -s "$tmp/size.$s" ] && echo "save image ($s): $(median "$tmp/size.$s" | awk '{ printf "%.1f MiB", $1 / 1048576 }')"
done
fails() { local n; n=$(grep -c "^$1 " "$tmp/failures" 2>/dev/null); echo "${n:-0}"; }
row() { # row MEASURE LABEL TARGET UNIT
        local m=$1 label=$2 target=$3 unit=$4 t l ratio verdict
        if [ "$m" = save ] || [ "$m" = restore ]; then
                if ! $sr_ok; then
                        printf '| %-38s | %26s | %26s | %7s | %7s | %6s | %s |\n' "$label" \
                                "n/a" "n/a" "n/a" "n/a" "<= $target" "FAIL (not implemented yet)"
                        failed_rows=$((failed_rows + 1))
                        return
                fi
        fi
        t=$(median "$tmp/s.$m.T") l=$(median "$tmp/s.$m.L")
        if [ -z "$t" ] || [ -z "$l" ]; then
                [ "$unit" = ms ] && t=${t:+$t ms} && l=${l:+$l ms}
                printf '| %-38s | %26s | %26s | %7s | %7s | %6s | %s |\n' "$label" "${t:-n/a}" \
                        "${l:-n/a}" "n/a" "n/a" "<= $target" "FAIL (no data)"
                failed_rows=$((failed_rows + 1))
                return
        fi
        ratio=$(awk -v a="$t" -v b="$l" 'BEGIN { printf "%.3f", a / b }')
        verdict=$(awk -v r="$ratio" -v g="$target" 'BEGIN { print (r <= g) ? "PASS" : "FAIL" }')
        [ "$(fails "$m")" != 0 ] && verdict="$verdict*"
        [ "$verdict" = PASS ] || failed_rows=$((failed_rows + 1))
        noise=$(selfratio "$tmp/s.$m.L")
        if [ "$unit" = MiB ]; then
                t=$(awk -v v="$t" 'BEGIN { printf "%.1f MiB", v / 1024 }')
                l=$(awk -v v="$l" 'BEGIN { printf "%.1f MiB", v / 1024 }')
        else
                t="$t ms ($(spread "$tmp/s.$m.T"))" l="$l ms ($(spread "$tmp/s.$m.L"))"
        fi
        printf '| %-38s | %26s | %26s | %7s | %7s | %6s | %s |\n' "$label" "$t" "$l" "$ratio" \
                "$noise" "<= $target" "$verdict"
}
failed_rows=0
echo
echo "Median wall time of the CLI command (min-max in brackets); ratio = tether / libvirt."
printf '| %-38s | %26s | %26s | %7s | %7s | %6s | %s |\n' measure "tether" "libvirt" ratio "L vs L" target result
echo "|----------------------------------------|----------------------------|----------------------------|---------|---------|--------|--------|"
row start "start (command to running)" 0.3 ms
row suspend "suspend" 0.3 ms
row resume "resume" 0.3 ms
row save "save of a 256 MiB guest" 0.7 ms
row restore "restore of a 256 MiB guest" 0.7 ms
row destroy "destroy" 0.1 ms
row list "list --all, $list_n defined domains" 0.2 ms
row rss "daemon RSS, $list_n defined + 2 running" 0.2 MiB
echo
echo "runs per side: start/destroy $rounds, suspend/resume $((3 * rounds)) (+1 warm-up round), save/restore $sr_rounds, list 15; ABBA order."
echo "'L vs L' is libvirt against itself, the noise floor: the medians of two interleaved halves of its own samples (rounds 0,1,4,5,... over 2,3,6,7,...); n/a with fewer than 4 samples."
[ -s "$tmp/failures" ] && echo "failures (marked *): $(sort "$tmp/failures" | uniq -c | tr -s ' \n' ' ')"
$started_libvirt && echo "note: this run started virtlogd and libvirtd; they are left running."
$shared || echo "libvirt: a private libvirtd + virtlogd of this run (reaped by bench/host_reaper.py)."
$shared && echo "libvirt: the shared system libvirtd (its zombies are reaped by this machine's PID 1)."
if [ "$failed_rows" != 0 ]; then
        echo "host-bench: FAILED: $failed_rows row(s) missed their target or have no data" >&2
        exit 1
fi
exit 0
