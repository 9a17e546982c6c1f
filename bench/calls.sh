#!/usr/bin/env bash
# SIPp call benchmark through the proxy: how many authenticated calls per second sipwarden
# carries over UDP on loopback, each being (bench/scenarios/bench_call_uac.xml)
#   INVITE -> 407 -> ACK -> INVITE with MD5 credentials -> 180 -> 200 -> ACK -> BYE -> 200
# from a SIPp caller to a SIPp callee (bench_call_uas.xml) registered at the server, every
# in-dialog request along the server's Record-Route.
#
# CALLERS users (default 1,000; strong random passwords) call one callee user; all are created
# with `sipwarden user import`. SIPp reads the callers from an injection file (SEQUENTIAL:
# call N is placed by caller N mod CALLERS). The callee is registered once, by a separate SIPp
# (bench_reg_contact.xml) whose Contact names the UAS's port: over UDP sipwarden sends to the
# Contact's port when the Contact's address is the source address. [auth] algorithms =
# ["MD5"] (SIPp 3.6.1 answers only MD5); the shield's per-source limits are off (one source
# places every call) and [calls] max_concurrent_calls / max_calls_per_minute = 0 (no limit);
# ring_timeout_s keeps its default.
#
# Steps the offered rate up; a step passes when every call completed (BYE answered 200) with
# no failed call and no retransmission at either end. Prints one line per step: calls/s
# offered and completed, successful and failed calls, retransmissions at the caller and at
# the callee, and sipwarden's CPU time (user + system, /proc/PID/stat) per call; then the
# highest passing rate. Bounded: each step places RATE*SECONDS calls, SIPp stops after
# SECONDS + ring + hold + 15 s and is killed (by PID) 30 s later at the latest.
#
# Usage: bench/calls.sh [SECONDS_PER_STEP=10] [RATES="100 200 400 600 800 1000 1500 2000 3000"]
# Environment: SIPWARDEN_BIN=/path/to/sipwarden uses that binary and builds nothing (default:
# scripts/build.sh, build/sipwarden); CALLERS=1000; RING_MS=200 (the callee's 180 to its 200);
# HOLD_MS=500 (the ACK to the BYE); WORKERS (sipwarden's [server] workers; default: its own).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
rates=${2:-"100 200 400 600 800 1000 1500 2000 3000"}
callers=${CALLERS:-1000}
hold_ms=${HOLD_MS:-500}
ring_ms=${RING_MS:-200}
. bench/lib/common.sh
bench_binary
for tool in sipp python3 bc; do
  command -v "$tool" >/dev/null || { echo "bench/calls.sh: $tool not found" >&2; exit 1; }
done
scenarios=bench/scenarios
work=$(mktemp -d)
server=
uas=
cleanup() {
  for p in $uas $server; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Four distinct free ports on 127.0.0.1: the server (UDP and TCP), the caller, the callee
# (UAS) and the callee's registration.
read -r port uac_port uas_port reg_port < <(python3 - <<'PY'
import random, socket
ports = []
while len(ports) < 4:
    p = random.randint(20000, 59000)
    if p in ports:
        continue
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind(("127.0.0.1", p))
            t.bind(("127.0.0.1", p))
        ports.append(p)
    except OSError:
        pass
print(*ports)
PY
)

# No toll-fraud limit on the callers either: the benchmark measures the proxy, not the limits.
bench_toml "$work/bench.toml" "$work/data" "$port" "${WORKERS:-}"

# CALLERS users and the callee, with unique random passwords (letters, digits, - _ .), none
# containing its user name; the same pairs go to the import CSV and to SIPp's injection files.
python3 - "$work" "$callers" "$uas_port" <<'PY'
import secrets, string, sys
sys.path.insert(0, "tests/integration")
try:
    from registrar_util import looks_like_walk  # the server's keyboard-walk rule, mirrored
except Exception:  # without it, a stricter local rule
    def looks_like_walk(pw):
        return any(abs(ord(a) - ord(b)) <= 1 for a, b in zip(pw, pw[1:]))
work, n, uas_port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
alphabet = string.ascii_letters + string.digits + "-_."
def password(name):
    for _ in range(1000):
        pw = "".join(secrets.choice(alphabet) for _ in range(20))
        if name not in pw.lower() and any(c.isdigit() for c in pw) and \
                any(c.isalpha() for c in pw) and not looks_like_walk(pw):
            return pw
    raise SystemExit("no password for " + name)
callee = "callee"
callee_pw = password(callee)
with open(work + "/users.csv", "w") as csv, open(work + "/callers.csv", "w") as inj:
    csv.write("name,password\n")
    inj.write("SEQUENTIAL\n")
    csv.write("%s,%s\n" % (callee, callee_pw))
    for i in range(n):
        name = "c%05d" % i
        pw = password(name)
        csv.write("%s,%s\n" % (name, pw))
        inj.write("%s;%s;%s;\n" % (name, pw, callee))
with open(work + "/callee.csv", "w") as inj:
    inj.write("SEQUENTIAL\n%s;%s;%s;\n" % (callee, callee_pw, uas_port))
PY
"$bin" user import "$work/users.csv" --config "$work/bench.toml" >"$work/import.out" 2>&1 || {
  echo "user import failed:"; tail -20 "$work/import.out"; exit 1; }
echo "imported $callers callers and the callee"

start_sipwarden "$work/bench.toml" "$port" "$work/server.log"

# The callee's binding: one registration, Contact at the UAS's port.
timeout 30 sipp -sf "$scenarios/bench_reg_contact.xml" -inf "$work/callee.csv" -t u1 \
  -i 127.0.0.1 -p "$reg_port" -m 1 -timeout 20s -nostdin -trace_stat -stf "$work/reg.csv" \
  127.0.0.1:"$port" >"$work/reg.out" 2>&1 || {
  echo "the callee's registration failed:"; tail -20 "$work/reg.out"; exit 1; }
echo "callee registered with Contact 127.0.0.1:$uas_port"

# col FILE NAME: the column NAME of the last row of a SIPp -trace_stat file.
col() {
  awk -F';' -v name="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==name) c=i} END{print (c ? $c : 0)}' "$1"
}
# Waits until something is bound to UDP 127.0.0.1:$1 (the UAS is listening); at most 5 s.
wait_bound() {
  python3 - "$1" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
PY
}

best=0
best_cpu=
ticks=$(getconf CLK_TCK)
hold_s=$(( (ring_ms + hold_ms + 999) / 1000 ))  # a call: ring + hold + signalling
printf '%-8s %-8s %-9s %-8s %-7s %-13s %-13s %-12s %s\n' offered calls done/s ok failed \
  'retrans(uac)' 'retrans(uas)' cpu_us/call status
for rate in $rates; do
  total=$((rate * seconds))
  limit=$((rate * (hold_s + 3) + 100))  # calls in progress at once
  sipp_timeout=$((seconds + hold_s + 15))
  rm -f "$work/uac.csv" "$work/uas.csv" "$work/uac_err.log" "$work/uas_err.log"
  # The callee first, bounded like the caller; it ends after `total` calls.
  sipp -sf "$scenarios/bench_call_uas.xml" -t u1 -i 127.0.0.1 -p "$uas_port" -m "$total" \
    -d "$ring_ms" -timeout "${sipp_timeout}s" -nostdin -buff_size 4194304 -trace_stat \
    -stf "$work/uas.csv" -fd 1 -trace_err -error_file "$work/uas_err.log" >"$work/uas.out" 2>&1 &
  uas=$!
  wait_bound "$uas_port" || { echo "the SIPp UAS did not start:"; tail "$work/uas.out"; exit 1; }
  cpu_before=$(awk '{print $14 + $15}' "/proc/$server/stat")
  start=$(date +%s.%N)
  timeout $((sipp_timeout + 30)) sipp -sf "$scenarios/bench_call_uac.xml" -inf "$work/callers.csv" \
    -t u1 -i 127.0.0.1 -p "$uac_port" -r "$rate" -m "$total" -l "$limit" -d "$hold_ms" \
    -timeout "${sipp_timeout}s" -nostdin -buff_size 4194304 -trace_stat -stf "$work/uac.csv" \
    -fd 1 -trace_err -error_file "$work/uac_err.log" 127.0.0.1:"$port" >"$work/uac.out" 2>&1 || true
  end=$(date +%s.%N)
  cpu_after=$(awk '{print $14 + $15}' "/proc/$server/stat")
  # The callee has answered the last BYE by now unless calls failed: give it 2 s, then stop it.
  for _ in $(seq 20); do kill -0 "$uas" 2>/dev/null || break; sleep 0.1; done
  kill "$uas" 2>/dev/null || true
  wait "$uas" 2>/dev/null || true
  uas=
  if [ ! -s "$work/uac.csv" ]; then
    echo "sipp wrote no statistics at $rate/s:"; tail -20 "$work/uac.out"; break
  fi
  ok=$(col "$work/uac.csv" 'SuccessfulCall(C)')
  failed=$(col "$work/uac.csv" 'FailedCall(C)')
  retrans=$(col "$work/uac.csv" 'Retransmissions(C)')
  uas_failed=0
  uas_retrans=0
  if [ -s "$work/uas.csv" ]; then
    uas_failed=$(col "$work/uas.csv" 'FailedCall(C)')
    uas_retrans=$(col "$work/uas.csv" 'Retransmissions(C)')
  fi
  elapsed=$(echo "$end - $start" | bc -l)
  done_rate=$(echo "$ok / $elapsed" | bc -l)
  cpu_us=-
  if [ "$ok" != 0 ]; then
    cpu_us=$(printf '%.1f' "$(echo "($cpu_after - $cpu_before) * 1000000 / $ticks / $ok" | bc -l)")
  fi
  status=pass
  if [ "$failed" != 0 ] || [ "$retrans" != 0 ] || [ "$uas_failed" != 0 ] || \
     [ "$uas_retrans" != 0 ] || [ "$ok" != "$total" ]; then status=fail; fi
  printf '%-8s %-8s %-9.0f %-8s %-7s %-13s %-13s %-12s %s\n' "$rate" "$total" "$done_rate" \
    "$ok" "$failed" "$retrans" "$uas_retrans" "$cpu_us" "$status"
  if [ "$status" = pass ]; then best=$rate; best_cpu=$cpu_us; else
    [ "$uas_failed" != 0 ] && echo "  the callee counted $uas_failed failed calls"
    # SIPp's first errors at each end (each line starts with a date)
    for end in uac uas; do
      grep -h -m 3 '^20' "$work/${end}_err.log" 2>/dev/null | cut -c1-300 |
        sed "s/^/  $end: /" || true
    done
    break
  fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "the server exited:"; tail -20 "$work/server.log"; break
  fi
done
if [ -n "$best_cpu" ]; then
  printf 'highest rate with every call completed and no retransmission: %s calls/s' "$best"
  printf ' (server CPU %s us per call)\n' "$best_cpu"
else
  echo "highest rate with every call completed and no retransmission: none of $rates"
fi
if [ -s "$work/server.log" ]; then
  echo "server log (last lines):"; tail -5 "$work/server.log" | sed 's/^/  /'
fi
exit 0
