#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Run a built libFuzzer target for N seconds over a scratch copy of its committed corpus.
#   tests/fuzz/run.sh BUILD/tests/fuzz/fuzz_wire [SECONDS]
# New inputs land in the scratch copy (printed at the end); crashes in the current directory.
set -eu
bin=${1:?usage: run.sh FUZZ_BINARY [SECONDS]}
secs=${2:-60}
name=$(basename "$bin")
here=$(cd "$(dirname "$0")" && pwd)
src="$here/corpus/${name#fuzz_}"
[ -d "$src" ] || { echo "no corpus at $src" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/$name-corpus.XXXXXX")
cp "$src"/* "$work"/
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$work"
echo "corpus after the run: $work"
