#!/usr/bin/env bash
# The README's second command: install what is needed, build, and run every test.
# - build-fuzz/: the libFuzzer target (clang), run from CTest for a bounded time;
# - build-asan/: unit, conformance and command-line tests under ASan + UBSan;
# - build/: the Release server of the README's first command (scripts/build.sh), built here
#   too because -O3 brings its own warnings (errors under -Werror) that the other trees miss.
# Ends with CTest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

bash scripts/build.sh

cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DSIPWARDEN_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j2

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIPWARDEN_SANITIZE=ON \
  -DSIPWARDEN_BENCH=OFF -DSIPWARDEN_FUZZER="$PWD/build-fuzz/fuzz_parser" >/dev/null
cmake --build build-asan -j2

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j2
