#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install what the tests need, build, and run the whole suite.
#   tools/run-tests.sh              normal build in build/
#   tools/run-tests.sh --sanitize   ASan+UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."

builddir=build
opts=()
if [ "${1:-}" = "--sanitize" ]; then
  builddir=build-asan
  opts=(-Db_sanitize=address,undefined -Db_lundef=false)
fi

tools/deps.sh
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" "${opts[@]}"
fi
meson compile -C "$builddir"

suites=()
if [ "$builddir" = build ]; then
  # The test guest: Debian's kernel + busybox + our static agent, and the same with qemu-ga.
  tools/mkguest.sh --agent "$builddir/src/agent/tether-agent-static" --out "$builddir/guest"
  tools/mkguest.sh --agent qemu-ga --out "$builddir/guest"
else
  # Under sanitizers the guests would run the same static (uninstrumented) agent again.
  suites=(--no-suite vm)
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 "${suites[@]}" || status=$?

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
