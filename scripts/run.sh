#!/usr/bin/env bash
# The README's first command: install what is needed, build, and run sipwarden in the
# foreground on its embedded defaults (UDP+TCP 5060, TLS 5061 on all IPv4 and IPv6
# addresses, data in ./sipwarden-data, a generated self-signed certificate).
# Extra arguments go to `sipwarden serve`, e.g. `bash scripts/run.sh --config my.toml`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec ./build/sipwarden serve "$@"
