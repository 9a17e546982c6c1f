#!/usr/bin/env bash
# Builds the optimised sipwarden binary into build/ (used by run.sh and the benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSIPWARDEN_TESTS=OFF >/dev/null
cmake --build build -j2
