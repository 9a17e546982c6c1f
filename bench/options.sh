#!/usr/bin/env bash
# SIPp OPTIONS benchmark: how many OPTIONS per second sipwarden answers over UDP on loopback.
# Steps the offered rate up; a step passes when every request got its 200 with no
# retransmission. Prints one line per step and the highest passing rate. Bounded: each step
# sends RATE*SECONDS requests and SIPp stops after SECONDS+10 s.
# Usage: bench/options.sh [SECONDS_PER_STEP=10] [RATES="5000 10000 20000 30000 40000 50000"]
# SIPWARDEN_BIN=/path/to/sipwarden skips the build (default: scripts/build.sh, build/sipwarden).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
rates=${2:-"5000 10000 20000 30000 40000 50000"}
. bench/lib/common.sh
bench_binary
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "$server" ] && wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
port=$((30000 + RANDOM % 20000))
bench_toml "$work/bench.toml" "$work/data" "$port"
start_sipwarden "$work/bench.toml" "$port" "$work/server.log"
best=0
printf '%-8s %-10s %-8s %-8s %-10s %s\n' offered answered failed retrans cpu_us/req status
for rate in $rates; do
  total=$((rate * seconds))
  cpu_before=$(awk '{print $14 + $15}' "/proc/$server/stat")
  start=$(date +%s.%N)
  sipp -sf bench/scenarios/options_uac.xml -t u1 -r "$rate" -m "$total" -l $((rate * 2)) \
    -timeout $((seconds + 10))s -nostdin -buff_size 4194304 -trace_stat -stf "$work/stat.csv" \
    -fd 1 127.0.0.1:"$port" >"$work/sipp.out" 2>&1 || true
  end=$(date +%s.%N)
  cpu_after=$(awk '{print $14 + $15}' "/proc/$server/stat")
  tail_line=$(tail -n 1 "$work/stat.csv")
  head_line=$(head -n 1 "$work/stat.csv")
  col() { awk -F';' -v name="$1" 'NR==1{for(i=1;i<=NF;i++) if($i==name) c=i} NR==2{print $c}' \
          <(printf '%s\n%s\n' "$head_line" "$tail_line"); }
  ok=$(col SuccessfulCall\(C\))
  failed=$(col FailedCall\(C\))
  retrans=$(col Retransmissions\(C\))
  elapsed=$(echo "$end - $start" | bc -l)
  answered=$(echo "$ok / $elapsed" | bc -l)
  ticks=$(getconf CLK_TCK)
  cpu_us=$(echo "($cpu_after - $cpu_before) * 1000000 / $ticks / ($ok + ($ok == 0))" | bc -l)
  status=pass
  if [ "$failed" != 0 ] || [ "$retrans" != 0 ] || [ "$ok" != "$total" ]; then status=fail; fi
  printf '%-8s %-10.0f %-8s %-8s %-10.1f %s\n' "$rate" "$answered" "$failed" "$retrans" "$cpu_us" "$status"
  if [ "$status" = pass ]; then best=$rate; else break; fi
done
echo "highest rate with every OPTIONS answered and no retransmission: $best/s"
