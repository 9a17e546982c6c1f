# Shared by bench/options.sh, register.sh, calls.sh and tls_register.sh (sourced, from the repo
# root).

# The binary: $SIPWARDEN_BIN as it is, or the release build (scripts/build.sh).
bench_binary() {
  if [ -n "${SIPWARDEN_BIN:-}" ]; then
    bin=$SIPWARDEN_BIN
  else
    bash scripts/build.sh >/dev/null
    bin=./build/sipwarden
  fi
}

# bench_toml FILE DATA_DIR PORT [WORKERS]: the side-by-side harness's configuration
# (bench/lib/sidebyside.py, sipwarden_toml) with its UDP listener on 127.0.0.1:PORT: MD5 digest
# (what SIPp speaks), the per-source limits, bans and call limits off (one SIPp source sends
# everything, far more than any phone).
bench_toml() {
  python3 - "$@" <<'PY'
import sys
sys.path.insert(0, "bench/lib")
import sidebyside
path, data_dir, port = sys.argv[1:4]
workers = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else None
with open(path, "w") as f:
    f.write(sidebyside.sipwarden_toml(data_dir, workers, int(port)))
PY
}

# start_sipwarden CONFIG PORT LOG: "$bin serve" in the background, its PID in $server; returns
# once it answers an OPTIONS on 127.0.0.1:PORT (log_level warn hides event=started), at most
# 10 s; otherwise prints the log and exits.
start_sipwarden() {
  "$bin" serve --config "$1" >"$3" 2>&1 &
  server=$!
  python3 - "$2" <<'PY' || { echo "server did not start:"; cat "$3"; exit 1; }
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(0.2)
me = s.getsockname()
for i in range(50):
    msg = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKready%d\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:bench@127.0.0.1>;tag=r\r\nTo: <sip:127.0.0.1:%d>\r\n"
           "Call-ID: ready%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
           % (port, me[1], i, port, i))
    s.sendto(msg.encode(), ("127.0.0.1", port))
    try:
        if s.recvfrom(65535)[0].startswith(b"SIP/2.0 200"):
            sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PY
}
