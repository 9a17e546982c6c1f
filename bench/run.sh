#!/usr/bin/env bash
# sipwarden side by side with Kamailio and with a stateless responder (the ceiling of the
# load generator), under the same loads. With SIPp over UDP: OPTIONS to the server, REGISTER
# with digest auth over 10,000 users, and CALLS: an authenticated call through the proxy
# (INVITE -> 407 -> INVITE with credentials -> 180 -> 200 -> ACK -> BYE -> 200) from 1,000
# callers to a registered SIPp callee (the responder cannot play a call: n/a). With the
# harness's own generators: OPTIONS-C, OPTIONS over UDP from bench/udpload.c with several local
# sockets (--udp-sockets, 8), and TLS-REGISTER, the same digest REGISTER over 1,000 persistent
# TLS connections from bench/tlsload.cc (Kamailio started with -A WITH_TLS; the responder has
# no TLS: n/a). Per scenario: the highest clean rate, then CPU per call and the median and
# 99th-percentile response time at half the lower of sipwarden's and Kamailio's rates, after
# 5 s of the same load (--cpu-warmup S) on the freshly started server, with SIPp's own CPU per
# call at that step (it shares the cores, so it bounds the highest rate too). Then
# memory: 100,000 bindings, and 5,000 idle TLS connections (--tls-idle N; 0 or
# --no-tls-memory skips them). One command:
#
#   bash bench/run.sh [--rounds N] [--quick] [--workers N]
#                     [--scenarios OPTIONS,REGISTER,CALLS,OPTIONS-C,TLS-REGISTER | none]
#                     [--no-memory] [--no-tls-memory] [--tls-idle N] [--kamailio-stateless]
#                     [--callers N] [--call-ring-ms MS] [--call-hold-ms MS]
#                     [--udp-sockets N] [--tls-connections N] [--tls-threads N]
#                     [--start SCENARIO=RATE,...] [--cap SCENARIO=RATE,...] [--cpu-warmup S]
#                     [--cpu-rate SCENARIO=RATE,...] [--cpu-attempts N]
#                     [--commit-window-ms MS]
#
# Builds the release binary (scripts/build.sh, which installs Kamailio, its TLS modules and
# SIPp from Debian if missing), compiles bench/responder.c, bench/udpload.c and
# bench/tlsload.cc, runs the rounds (sipwarden, Kamailio, responder in turn, each freshly
# started), prints the tables and writes bench/results/<timestamp>.json.
# Full run: 3 rounds, 15 s steps, about 30-45 minutes on 2 cores for OPTIONS and REGISTER,
# CALLS adds an estimated 15, OPTIONS-C and TLS-REGISTER about 10 each; --quick: 1 round, 4 s
# steps, 20,000 bindings, a few minutes per scenario.
# --start X=R --cap X=R: a single step at R/s for scenario X (a smoke run on a busy machine).
# --cpu-rate X=R: the CPU step of scenario X at R/s instead of half the lower highest rate.
# --cpu-attempts N: tries of a CPU step that failed, each on a fresh start (default 2).
# --commit-window-ms MS: sipwarden runs with store.commit_window_ms = MS (default: its own).
# --scenarios none: the memory phase alone.
# Details: docs/performance.md, "Side by side with Kamailio", "Calls through the proxy" and
# "Load generators".
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
for tool in kamailio kamcmd sipp cc c++ openssl python3; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool not found" >&2; exit 1; }
done
work=$(mktemp -d /tmp/sipwarden-bench.XXXXXX)
cc -O2 -Wall -o "$work/responder" bench/responder.c
# The harness's own load generators (docs/performance.md, "Load generators"), built with
# warnings as errors: OPTIONS-C drives udpload, TLS-REGISTER and the idle TLS memory tlsload.
cc -O2 -Wall -Wextra -Werror -o "$work/udpload" bench/udpload.c
c++ -std=c++20 -O2 -Wall -Wextra -Werror -o "$work/tlsload" bench/tlsload.cc -lssl -lcrypto -pthread
# 1,000 (TLS-REGISTER) to 5,000 (idle memory) connections at both ends of loopback: raise the
# open-files limit for everything started below (sidebyside.py raises it further if it can).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
rc=0
python3 bench/lib/sidebyside.py --sipwarden "$bin" --responder "$work/responder" \
  --udpload "$work/udpload" --tlsload "$work/tlsload" \
  --work "$work" --sipwarden-commit "$commit" "$@" || rc=$?
if [ "$rc" = 0 ]; then
  rm -rf "$work"
else
  echo "bench/run.sh: failed ($rc); logs and SIPp statistics kept in $work" >&2
fi
exit "$rc"
