#!/usr/bin/env bash
# Fuzzes the SIP parser (fuzz/fuzz_parser.cc) with libFuzzer, ASan and UBSan.
#
#   scripts/fuzz.sh [SECONDS]     fuzz for SECONDS (default 60), then replay the saved corpus
#
# Fuzzing runs on a temporary copy of fuzz/corpus, so the checked-in seeds never change (new
# interesting inputs are thrown away; copy them in by hand if you want to keep them). Crashes,
# leaks, timeouts and out-of-memory inputs are written to build-fuzz/findings/. Exits non-zero
# when there is a finding, either while fuzzing or while replaying the saved corpus.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
findings="$build/findings"
fuzzer="$build/fuzz_parser"

cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DSIPWARDEN_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target fuzz_parser

mkdir -p "$findings"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp -R "$root/fuzz/corpus/." "$work/corpus/"
touch "$work/started"

# -max_total_time bounds the whole run; -timeout bounds one input; -rss_limit_mb bounds memory.
# Sanitizer reports abort at once (halt_on_error), and libFuzzer turns them into a crash file.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
"$fuzzer" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$findings/" "$work/corpus" 2>"$work/fuzz.log" ||
  status=$?

runs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$work/fuzz.log" | tail -n 1)"
new_findings="$(find "$findings" -maxdepth 1 -type f -newer "$work/started" \
  \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)"

if [ "$status" -ne 0 ] || [ -n "$new_findings" ]; then
  tail -n 60 "$work/fuzz.log" >&2
  echo "fuzz: FINDING after ${runs:-?} runs (libFuzzer exit status $status)" >&2
  for f in $new_findings; do echo "fuzz: reproduce with: $fuzzer $f" >&2; done
  exit 1
fi
grep -E '^(Done [0-9]+ runs|stat::)' "$work/fuzz.log" || true

# Regression: every saved seed once, exactly as checked in.
replay_status=0
"$fuzzer" -runs=0 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$findings/" \
  "$root/fuzz/corpus" 2>"$work/replay.log" || replay_status=$?
if [ "$replay_status" -ne 0 ]; then
  tail -n 60 "$work/replay.log" >&2
  echo "fuzz: FINDING while replaying fuzz/corpus (libFuzzer exit status $replay_status)" >&2
  exit 1
fi
seeds="$(find "$root/fuzz/corpus" -maxdepth 1 -type f | wc -l)"

echo "fuzz: ${runs:-?} runs in ${seconds}s, ${seeds} saved inputs replayed, no findings"
