#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# agent-bench.sh [--quick] [path/to/tether-agent]
#
# Benchmarks tether-agent against the reference qemu-ga side by side in one run: both agents
# listen on unix sockets in a temp dir and are driven by the same C client (agent_bench.c).
# Not a test: it does not run in CI. Takes about 1-2 minutes (qemu-ga's 48 MiB reads dominate).
#
# Environment: QEMU_GA (default /usr/sbin/qemu-ga), CC (default cc), TMPDIR (default /tmp),
# BENCH_NICE=0 (do not raise the priority of the client and the agents).
# Run it with qemu-ga as the candidate (agent-bench.sh /usr/sbin/qemu-ga) to check the harness:
# every ratio should then come out close to 1.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
quick=
if [ "${1-}" = --quick ]; then
        quick=--quick
        shift
fi
cand=${1:-$root/build/src/agent/tether-agent}
ref=${QEMU_GA:-/usr/sbin/qemu-ga}
cc=${CC:-cc}

for bin in "$ref" "$cand"; do
        if [ ! -x "$bin" ]; then
                echo "agent-bench: $bin is not an executable (build with: meson setup build && meson compile -C build)" >&2
                exit 2
        fi
done

# Socket paths must fit in sun_path (108 bytes), so keep the temp dir short.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

"$cc" -O2 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -o "$tmp/agent_bench" "$here/agent_bench.c"

# The read benchmarks use a 64 MiB file of random bytes (warm in the page cache), the mixed
# benchmark a 4 KiB one read with the default count.
head -c 67108864 /dev/urandom >"$tmp/data.bin"
head -c 4096 /dev/urandom >"$tmp/small.bin"
cat "$tmp/data.bin" >/dev/null

echo "reference: $ref"
echo "candidate: $cand"
echo "host: $(uname -srm), $(nproc) CPUs, no pinning; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# Binary facts: size of a stripped copy (the installed file's own size if already stripped),
# and the number of shared libraries ldd resolves (linux-vdso not counted; static = 0).
bininfo() {
        label=$1 bin=$2
        if file -L "$bin" | grep -q 'not stripped'; then
                cp "$bin" "$tmp/strip.bin"
                strip "$tmp/strip.bin"
                size=$(stat -c %s "$tmp/strip.bin")
                how="stripped copy (file itself $(stat -L -c %s "$bin"))"
        else
                size=$(stat -L -c %s "$bin")
                how="as installed, already stripped"
        fi
        if ldd "$bin" >/dev/null 2>&1; then
                libs=$(ldd "$bin" | grep -vc 'linux-vdso')
        else
                libs=0
        fi
        printf '| %-8s | %10s | %-44s | %4s |\n' "$label" "$size" "$how" "$libs"
}

# The client and both agents (its children) run at raised priority when we are root, so that
# other work on a shared machine disturbs the comparison less; BENCH_NICE=0 turns that off.
prio=
if [ "$(id -u)" = 0 ] && [ "${BENCH_NICE:-1}" != 0 ]; then
        prio="nice -n -10"
        echo "priority: client and agents at nice -10"
fi

# A row that misses its target (or an agent that fails) makes the client exit 1: report the
# binaries anyway, then exit with its status.
status=0
$prio "$tmp/agent_bench" $quick --tmp "$tmp" --ref "$ref" --cand "$cand" \
        --data "$tmp/data.bin" --small "$tmp/small.bin" || status=$?

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise, mostly to p99)"
echo
printf '| %-8s | %10s | %-44s | %4s |\n' binary bytes "size measured on" libs
printf '|----------|------------|----------------------------------------------|------|\n'
bininfo qemu-ga "$ref"
if [ "$cand" = "$ref" ]; then bininfo 'qemu-ga#2' "$cand"; else bininfo tether "$cand"; fi
echo "(libs = ldd lines without linux-vdso, so the dynamic loader counts as one; static = 0)"
if [ "$status" != 0 ]; then
        echo "agent-bench: FAILED (exit $status): a target missed or a run failed, see above" >&2
fi
exit "$status"
