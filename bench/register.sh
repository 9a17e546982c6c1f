#!/usr/bin/env bash
# SIPp REGISTER-with-digest benchmark: how many registrations per second sipwarden completes
# over UDP on loopback, each being REGISTER -> 401 -> REGISTER with MD5 credentials -> 200
# (the 200 is sent only once the binding is durable in SQLite).
#
# 10,000 distinct users (strong random passwords) are created with `sipwarden user import`;
# SIPp reads them from an injection file (SEQUENTIAL: call N registers user N mod 10,000).
# [auth] algorithms = ["MD5"]: SIPp 3.6.1 answers only the first challenge and only MD5.
# Steps the offered rate up; a step passes when every registration got its 200 with no
# failed call and no retransmission. Prints one line per step, the highest passing rate and
# the server's CPU time per registration, and the median and 99th percentile time from the
# first REGISTER to the 200 (SIPp -trace_rtt, millisecond clock). Bounded: each step sends RATE*SECONDS calls and
# SIPp stops after SECONDS+15 s.
#
# Usage: bench/register.sh [SECONDS_PER_STEP=10] [RATES="250 500 1000 2000 3000 4000 5000 6000 8000"]
# SIPWARDEN_BIN=/path/to/sipwarden skips the build (default: scripts/build.sh, build/sipwarden).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
rates=${2:-"250 500 1000 2000 3000 4000 5000 6000 8000"}
users=10000
. bench/lib/common.sh
bench_binary
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "$server" ] && wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
port=$((30000 + RANDOM % 20000))
bench_toml "$work/bench.toml" "$work/data" "$port"

# The scenario: Contact and To per injected user; the second REGISTER answers the challenge.
cat >"$work/register_uac.xml" <<'XML'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="REGISTER with digest (bench)">
  <send retrans="500" start_rtd="1">
    <![CDATA[
      REGISTER sip:[remote_ip] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[field0]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Expires: 3600
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true" timeout="5000"/>
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[field0]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Expires: 3600
      [authentication username="[field0]" password="[field1]"]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" timeout="5000" rtd="1"/>
</scenario>
XML

# 10,000 users with unique random passwords (letters, digits, - _ .), none containing its
# user name; the same pairs go to the import CSV and to SIPp's injection file.
python3 - "$work" "$users" <<'PY'
import secrets, string, sys
sys.path.insert(0, "tests/integration")
from registrar_util import looks_like_walk  # the server's keyboard-walk rule, mirrored
work, n = sys.argv[1], int(sys.argv[2])
alphabet = string.ascii_letters + string.digits + "-_."
with open(work + "/users.csv", "w") as csv, open(work + "/inject.csv", "w") as inj:
    csv.write("name,password\n")
    inj.write("SEQUENTIAL\n")
    for i in range(n):
        name = "b%05d" % i
        for _ in range(1000):
            pw = "".join(secrets.choice(alphabet) for _ in range(20))
            if name not in pw.lower() and any(c.isdigit() for c in pw) and \
                    not looks_like_walk(pw):
                break
        csv.write("%s,%s\n" % (name, pw))
        inj.write("%s;%s;\n" % (name, pw))
PY
import_start=$(date +%s.%N)
"$bin" user import "$work/users.csv" --config "$work/bench.toml" >"$work/import.out" 2>&1 || {
  echo "user import failed:"; tail -20 "$work/import.out"; exit 1; }
import_s=$(echo "$(date +%s.%N) - $import_start" | bc -l)
printf 'imported %d users in %.1f s\n' "$users" "$import_s"

start_sipwarden "$work/bench.toml" "$port" "$work/server.log"

best=0
best_cpu=
ticks=$(getconf CLK_TCK)
printf '%-8s %-8s %-10s %-8s %-8s %-12s %-12s %s\n' offered calls done/s failed retrans cpu_us/reg \
  p50/p99_ms status
for rate in $rates; do
  total=$((rate * seconds))
  rm -f "$work/stat.csv" "$work"/*_rtt.csv
  cpu_before=$(awk '{print $14 + $15}' "/proc/$server/stat")
  start=$(date +%s.%N)
  # In $work: SIPp writes its -trace_rtt file into the current directory.
  (cd "$work" && timeout $((seconds + 30)) sipp -sf "$work/register_uac.xml" -inf "$work/inject.csv" -t u1 \
    -i 127.0.0.1 -r "$rate" -m "$total" -l $((rate * 2 + 100)) -timeout $((seconds + 15))s \
    -nostdin -buff_size 4194304 -trace_stat -stf "$work/stat.csv" -fd 1 \
    -trace_rtt -rtt_freq 50 127.0.0.1:"$port" >"$work/sipp.out" 2>&1) || true
  end=$(date +%s.%N)
  cpu_after=$(awk '{print $14 + $15}' "/proc/$server/stat")
  if [ ! -s "$work/stat.csv" ]; then
    echo "sipp wrote no statistics at $rate/s:"; tail -20 "$work/sipp.out"; break
  fi
  head_line=$(head -n 1 "$work/stat.csv")
  tail_line=$(tail -n 1 "$work/stat.csv")
  col() { awk -F';' -v name="$1" 'NR==1{for(i=1;i<=NF;i++) if($i==name) c=i} NR==2{print $c}' \
          <(printf '%s\n%s\n' "$head_line" "$tail_line"); }
  ok=$(col SuccessfulCall\(C\))
  failed=$(col FailedCall\(C\))
  retrans=$(col Retransmissions\(C\))
  elapsed=$(echo "$end - $start" | bc -l)
  done_rate=$(echo "$ok / $elapsed" | bc -l)
  cpu_us=$(echo "($cpu_after - $cpu_before) * 1000000 / $ticks / ($ok + ($ok == 0))" | bc -l)
  # Response times of rtd 1 (Date_ms;response_time_ms;rtd_no), nearest-rank percentiles.
  latency=$(cat "$work"/*_rtt.csv 2>/dev/null || true)
  latency=$(printf '%s\n' "$latency" | awk -F';' '$3 == 1 {print $2}' | sort -n |
            awk '{v[NR] = $1} END {if (NR == 0) {print "-"; exit}
                 i = int(NR * 0.5); if (i < NR * 0.5) i++; j = int(NR * 0.99); if (j < NR * 0.99) j++;
                 printf "%s/%s", v[i], v[j]}')
  status=pass
  if [ "$failed" != 0 ] || [ "$retrans" != 0 ] || [ "$ok" != "$total" ]; then status=fail; fi
  printf '%-8s %-8s %-10.0f %-8s %-8s %-12.1f %-12s %s\n' "$rate" "$ok" "$done_rate" "$failed" \
    "$retrans" "$cpu_us" "$latency" "$status"
  if [ "$status" = pass ]; then best=$rate; best_cpu=$cpu_us; else break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "the server exited:"; tail -20 "$work/server.log"; break; fi
done
bound=$("$bin" user list --config "$work/bench.toml" 2>/dev/null | awk 'NR>1 && $3>0 {n++} END {print n+0}')
echo "users with a binding afterwards: $bound of $users"
if [ -n "$best_cpu" ]; then
  printf 'highest rate with every registration answered 200 and no retransmission: %s/s (server CPU %.1f us per registration)\n' "$best" "$best_cpu"
else
  echo "highest rate with every registration answered 200 and no retransmission: none of $rates"
fi
exit 0
