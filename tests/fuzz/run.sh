#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Run a built libFuzzer target for N seconds over a scratch copy of its committed corpus.
#   tests/fuzz/run.sh BUILD/tests/fuzz/fuzz_wire [SECONDS]
# New inputs land in the scratch copy (printed at the end). A crash, leak, timeout or
# sanitizer report exits non-zero and prints the reproducer: its file name and its bytes.
# Replay one with BUILD/tests/fuzz/NAME_replay FILE (or NAME FILE).
set -u
bin=${1:?usage: run.sh FUZZ_BINARY [SECONDS]}
secs=${2:-60}
name=$(basename "$bin")
here=$(cd "$(dirname "$0")" && pwd)
src="$here/corpus/${name#fuzz_}"
[ -d "$src" ] || { echo "no corpus at $src" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/$name-corpus.XXXXXX")
artifacts=$(mktemp -d "${TMPDIR:-/tmp}/$name-artifacts.XXXXXX")
cp "$src"/* "$work"/ || exit 1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
status=0
"$bin" -max_total_time="$secs" -timeout=10 -error_exitcode=1 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$work" || status=$?
found=$(ls "$artifacts")
if [ "$status" -ne 0 ] || [ -n "$found" ]; then
  echo "FUZZ FAILURE: $name exited with status $status" >&2
  for f in "$artifacts"/*; do
    [ -f "$f" ] || continue
    echo "reproducer: $f ($(wc -c <"$f") bytes)" >&2
    od -A x -t x1z -v "$f" | head -n 64 >&2
  done
  [ "$status" -ne 0 ] || status=1
  exit "$status"
fi
rmdir "$artifacts"
echo "corpus after the run: $work"
