#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install what the tests need, build, and run the whole suite.
#   tools/run-tests.sh              normal build in build/
#   tools/run-tests.sh --sanitize   ASan+UBSan build in build-asan/: every non-VM suite, and the VM
#                                   suites that drive tetherd and tether (the guests keep the
#                                   static agent of the normal build)
#   tools/run-tests.sh --coverage   -Db_coverage=true build in build-cov/: the non-VM suites
#                                   (--coverage-vm: the VM suites too), then gcovr's summary
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
builddir=build
opts=()
case "$mode" in
  "") ;;
  --sanitize) builddir=build-asan; opts=(-Db_sanitize=address,undefined -Db_lundef=false) ;;
  --coverage|--coverage-vm) builddir=build-cov; opts=(-Db_coverage=true) ;;
  *) echo "usage: $0 [--sanitize|--coverage|--coverage-vm]" >&2; exit 2 ;;
esac

tools/deps.sh
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" "${opts[@]}"
fi
meson compile -C "$builddir"

# The test guest: Debian's kernel + busybox + our static agent, and the same with qemu-ga. The
# sanitized and coverage builds cannot link a static agent; their guests get the normal build's.
static_agent=build/src/agent/tether-agent-static
suites=()
case "$mode" in
  "")
    tools/mkguest.sh --agent "$static_agent" --out build/guest
    tools/mkguest.sh --agent qemu-ga --out build/guest
    ;;
  --sanitize|--coverage-vm)
    if [ ! -x "$static_agent" ]; then
      [ -f build/build.ninja ] || meson setup build
      meson compile -C build tether-agent-static:executable
    fi
    tools/mkguest.sh --agent "$static_agent" --out "$builddir/guest"
    tools/mkguest.sh --agent qemu-ga --out "$builddir/guest"
    # Only the suites whose programs under test are tetherd and tether (tests/vm/meson.build):
    # the others would run the same uninstrumented QEMU, guest and libvirt again.
    suites=(--no-suite vm-plain)
    ;;
  --coverage)
    suites=(--no-suite vm)
    ;;
esac

# Sanitizer reports are fatal, leaks included; tests/vm/lifecyclelib.py also fails a VM suite
# when tetherd's log or the CLI's stderr holds one.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}
status=0
if [ "$builddir" = build-cov ]; then
  # Counters of an earlier run would add up with this one's.
  find "$builddir" -name '*.gcda' -delete
  # The host tests run the CLI as other users (nobody, throwaway users): their counters must be
  # writable by all, or libgcov prints "profiling:...:Cannot open" into the stderr the tests
  # compare. Only the coverage run does this (umask in a subshell below).
  find "$builddir" -type d -name '*.p' -exec chmod a+rwx {} +
fi
t0=$(date +%s)
if [ "$builddir" = build-cov ]; then
  (umask 000; meson test -C "$builddir" --print-errorlogs --num-processes 2 "${suites[@]}") ||
    status=$?
else
  meson test -C "$builddir" --print-errorlogs --num-processes 2 "${suites[@]}" || status=$?
fi
echo "meson test took $(($(date +%s) - t0)) s"

if [ "$builddir" = build-cov ]; then
  # Line coverage per folder, then per file; gcovr reads the .gcda files the tests left.
  # Informational: CI prints it and does not gate on it.
  gcovr -r . --filter 'src/' --json-summary "$builddir/coverage.json" "$builddir" >/dev/null
  python3 - "$builddir/coverage.json" <<'PY'
import json, os, sys
files = json.load(open(sys.argv[1]))["files"]
folders = {}
for f in files:
    d = folders.setdefault(os.path.dirname(f["filename"]), [0, 0])
    d[0] += f["line_covered"]; d[1] += f["line_total"]
pct = lambda c, t: 100.0 * c / t if t else 100.0
print(f"{'line coverage':<28} {'lines':>7} {'covered':>8} {'%':>6}")
for name, (c, t) in sorted(folders.items()):
    print(f"{name + '/':<28} {t:>7} {c:>8} {pct(c, t):>6.1f}")
c = sum(v[0] for v in folders.values()); t = sum(v[1] for v in folders.values())
print(f"{'TOTAL':<28} {t:>7} {c:>8} {pct(c, t):>6.1f}")
print("files under 60%:" if any(pct(f["line_covered"], f["line_total"]) < 60 for f in files)
      else "every file at 60% or more")
for f in sorted(files, key=lambda f: pct(f["line_covered"], f["line_total"])):
    if pct(f["line_covered"], f["line_total"]) < 60:
        print(f"  {f['filename']:<26} {f['line_total']:>7} {f['line_covered']:>8} "
              f"{pct(f['line_covered'], f['line_total']):>6.1f}")
PY
fi

# One closing line that CI and people can read: "N passed, N failed".
python3 - "$builddir/meson-logs/testlog.json" <<'PY'
import json, sys
ok = bad = skip = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): ok += 1
    elif r == "SKIP": skip += 1
    else: bad += 1
print(f"{ok} passed, {bad} failed, {skip} skipped")
PY
exit $status
