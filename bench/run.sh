#!/usr/bin/env bash
# sipwarden side by side with Kamailio and with a stateless responder (the ceiling of the
# load generator), under the same SIPp scenarios: OPTIONS to the server, REGISTER with digest
# auth over 10,000 users, and CALLS: an authenticated call through the proxy (INVITE -> 407 ->
# INVITE with credentials -> 180 -> 200 -> ACK -> BYE -> 200) from 1,000 callers to a
# registered SIPp callee (the responder cannot play a call: n/a); then memory with 100,000
# bindings. One command:
#
#   bash bench/run.sh [--rounds N] [--quick] [--workers N] [--scenarios OPTIONS,REGISTER,CALLS]
#                     [--no-memory] [--kamailio-stateless] [--callers N] [--call-ring-ms MS]
#                     [--call-hold-ms MS] [--start CALLS=RATE,...] [--cap CALLS=RATE,...]
#
# Builds the release binary (scripts/build.sh, which installs Kamailio and SIPp from Debian
# if missing), compiles bench/responder.c, runs the rounds (sipwarden, Kamailio, responder in
# turn, each freshly started), prints one table and writes bench/results/<timestamp>.json.
# Full run: 3 rounds, 15 s steps, about 30-45 minutes on 2 cores for OPTIONS and REGISTER,
# CALLS adds an estimated 15; --quick: 1 round, 4 s steps, 20,000 bindings, a few minutes.
# --start X=R --cap X=R: a single step at R/s for scenario X (a smoke run on a busy machine).
# Details: docs/performance.md, "Side by side with Kamailio" and "Calls through the proxy".
# SIPWARDEN_BIN=/path/to/sipwarden skips the build (dependencies still checked).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SIPWARDEN_BIN:-}" ]; then
  bash scripts/install-deps.sh
  bin=$SIPWARDEN_BIN
  commit=${SIPWARDEN_COMMIT:-unknown}
else
  bash scripts/build.sh >/dev/null
  bin=build/sipwarden
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  git diff --quiet HEAD -- src CMakeLists.txt 2>/dev/null || commit="$commit+dirty"
fi
for tool in kamailio kamcmd sipp cc python3; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool not found" >&2; exit 1; }
done
work=$(mktemp -d /tmp/sipwarden-bench.XXXXXX)
cc -O2 -Wall -o "$work/responder" bench/responder.c
# The harness's own load generators (docs/performance.md, "Load generators"): built with
# warnings as errors so that every run checks they still compile (the scenarios above do not
# drive them yet; build lines for a manual run are in that section).
cc -O2 -Wall -Wextra -Werror -o "$work/udpload" bench/udpload.c
c++ -std=c++20 -O2 -Wall -Wextra -Werror -o "$work/tlsload" bench/tlsload.cc -lssl -lcrypto -pthread
rc=0
python3 bench/lib/sidebyside.py --sipwarden "$bin" --responder "$work/responder" \
  --work "$work" --sipwarden-commit "$commit" "$@" || rc=$?
if [ "$rc" = 0 ]; then
  rm -rf "$work"
else
  echo "bench/run.sh: failed ($rc); logs and SIPp statistics kept in $work" >&2
fi
exit "$rc"
