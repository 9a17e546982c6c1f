#!/usr/bin/env bash
# Runs the parser fuzzer for a bounded time, seeded with the saved corpus (which it first
# replays in full, so an old finding that was added to the corpus is a regression test).
# Usage: fuzz_test.sh FUZZER CORPUS_DIR WORK_DIR SECONDS
set -euo pipefail
fuzzer=$1 corpus=$2 work=$3 seconds=$4
rm -rf "$work" && mkdir -p "$work/new" "$work/findings"
"$fuzzer" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/findings/" "$work/new" "$corpus" 2>"$work/log" || {
  tail -n 60 "$work/log"
  echo "fuzz: FINDING — reproducer in $work/findings/" >&2
  exit 1
}
grep -E 'stat::number_of_executed_units|Done' "$work/log" | tail -n 2
