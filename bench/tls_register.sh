#!/usr/bin/env bash
# TLS REGISTER-with-digest benchmark of sipwarden alone, for A/B comparisons by hand: the
# TLS-REGISTER scenario of bench/run.sh (bench/tlsload.cc, 1,000 persistent TLS connections,
# REGISTER -> 401 -> REGISTER with MD5 credentials -> 200, 10,000 users) at the given rates, on
# one freshly started server. Prints one line per rate: registrations, server CPU per
# registration (from "connections open" to "load ended"), median and 99th percentile time from
# the first REGISTER to the 200, pass or fail. Bounded: each step sends RATE*SECONDS
# registrations; tlsload is killed after SECONDS+105 s.
#
# Usage: bench/tls_register.sh [SECONDS_PER_STEP=15] [RATES="440"]
# SIPWARDEN_BIN=/path/to/sipwarden skips the build (default: scripts/build.sh, build/sipwarden).
# SIPWARDEN_PERF=SECONDS: records `perf record -g` of the server for SECONDS in the middle of
# each step (perf-RATE.data in the current directory).
set -euo pipefail
here=$PWD
cd "$(dirname "$0")/.."
seconds=${1:-15}
rates=${2:-"440"}
. bench/lib/common.sh
bench_binary
work=$(mktemp -d /tmp/sipwarden-tls.XXXXXX)
trap 'rm -rf "$work"' EXIT
c++ -std=c++20 -O2 -Wall -Wextra -Werror -o "$work/tlsload" bench/tlsload.cc -lssl -lcrypto -pthread
python3 - "$bin" "$work" "$seconds" "$rates" "${SIPWARDEN_PERF:-0}" "$here" <<'PY'
import os, subprocess, sys, threading
sys.path.insert(0, "bench/lib")
import sidebyside as sb
sb.log = lambda *a: None  # this script prints its own lines
binary, work, seconds, rates, perf_s, here = sys.argv[1:7]
ctx = sb.Ctx()
ctx.sipwarden, ctx.work, ctx.tlsload = os.path.abspath(binary), work, work + "/tlsload"
ctx.workers, ctx.commit_window_ms = os.cpu_count() or 2, None
ctx.tls_connections, ctx.tls_threads = 1000, 2
ctx.cert = sb.make_cert(work)
ctx.users_csv = {"reg": sb.write_user_files(sb.make_users(10000, "b"), work, "reg")[0]}
target = sb.Sipwarden(ctx, sb.import_users(ctx, ctx.users_csv["reg"], "reg"), tls=True)
target.start()
print("%-8s %-10s %-12s %-16s %s" % ("offered", "ok", "cpu_us/reg", "p50/p99_ms", "status"))
try:
    for rate in (int(r) for r in rates.split()):
        perf = None
        if int(perf_s) > 0:
            argv = ["perf", "record", "-g", "-o", os.path.join(here, "perf-%d.data" % rate), "-p",
                    str(target.proc.pid), "--", "sleep", perf_s]
            # tlsload opens its connections first (a few seconds): start perf in the load.
            perf = threading.Timer(5 + int(seconds) / 2 - int(perf_s) / 2, lambda: subprocess.run(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600))
            perf.start()
        r = sb.run_tlsload(ctx, target, rate, int(seconds))
        if perf:
            perf.join()
        lat = r["latency"] or {"p50_ms": 0, "p99_ms": 0}
        print("%-8d %-10s %-12s %-16s %s" % (
            rate, "%d/%d" % (r["ok"], r["calls"]), r["cpu_us_per_call"],
            "%.2f/%.2f" % (lat["p50_ms"], lat["p99_ms"]), "pass" if r["passed"] else "FAIL"),
            flush=True)
finally:
    target.stop()
PY
