#!/usr/bin/env bash
# The README's first command: install what is needed, build, and run sipwarden on its
# embedded defaults. Until `sipwarden serve` exists (issue: the server on the wire), this
# checks the RFC 4475 torture corpus with `sipwarden lint` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
set +e
./build/sipwarden lint tests/conformance/rfc4475/*.dat
status=$?
set -e
echo "sipwarden lint: exit code $status (1 is expected: the corpus holds invalid messages on purpose)"
