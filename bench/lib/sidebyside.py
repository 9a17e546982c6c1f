#!/usr/bin/env python3
"""sipwarden side by side with Kamailio and with a stateless responder (the load generator's
ceiling), under the same loads, on loopback. Python 3 standard library only.

Called by bench/run.sh (which builds sipwarden and the responder); see docs/performance.md,
"Side by side with Kamailio".

Scenarios: under SIPp over UDP, OPTIONS, REGISTER with digest over 10,000 users, CALLS (an
authenticated call through the proxy from 1,000 callers to one registered SIPp callee); under
the harness's own load generators, OPTIONS-C (OPTIONS over UDP from bench/udpload.c, several
local sockets) and TLS-REGISTER (the same digest REGISTER over 1,000 persistent TLS
connections from bench/tlsload.cc, the same 10,000 users). Per round and per scenario the
targets are run one after the other, always in the same order (sipwarden, Kamailio,
responder), each freshly started (for CALLS, the callee is registered at each start; the
responder cannot play a call nor speak TLS and is skipped there):
  1. rate search: the highest rate completed for STEP seconds with every call successful
     (SIPp: no failed call, no retransmission; udpload: every OPTIONS answered 200, none lost;
     tlsload: every registration started got its 200, every connection open) (doubling, then
     bisection; later rounds start from the earlier rounds' result). A SIPp step is stopped as
     soon as SIPp counts a failed call or a retransmission, so failing steps are short.
  2. CPU: the server's user+system time per call (all its threads, or all its processes)
     at one fixed rate for the whole run: half the lower of sipwarden's and Kamailio's
     first-round rates (for TLS-REGISTER, counted once the connections are open). The same
     step gives the response times (median and 99th percentile): udpload's and tlsload's
     own (microseconds), SIPp's per-call response times (-trace_rtt; SIPp's clock ticks in
     milliseconds) for the SIPp scenarios.
Then memory: each server loaded with 100,000 users; PSS/RSS (summed over processes) before
and after 100,000 registrations (one binding per user) at a moderate rate; then, each server
freshly started with TLS, PSS growth with 5,000 idle TLS connections (tlsload --idle --ping).

Every load is bounded by a call count and a time limit; only processes started here are
stopped, by PID.
"""

import argparse
import csv
import datetime
import hashlib
import json
import math
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
SCENARIOS = {
    "OPTIONS": os.path.join(BENCH, "scenarios", "options_uac.xml"),
    "REGISTER": os.path.join(BENCH, "scenarios", "register_auth_uac.xml"),
    # INVITE -> 407 -> ACK -> INVITE with credentials -> 180 -> 200 -> ACK, hold, BYE -> 200
    "CALLS": os.path.join(BENCH, "scenarios", "bench_call_uac.xml"),
}
# The harness's own load generators (built by bench/run.sh): scenario -> tool
C_SCENARIOS = {
    "OPTIONS-C": "udpload",      # OPTIONS over UDP, -s local sockets
    "TLS-REGISTER": "tlsload",   # REGISTER with digest over persistent TLS connections
}
KNOWN = list(SCENARIOS) + list(C_SCENARIOS)
# What "one call" is, per scenario, and how its response time is measured (LATENCY_METHOD).
LATENCY_METHOD = {
    "OPTIONS": "SIPp -trace_rtt: OPTIONS sent -> 200 (SIPp's millisecond clock)",
    "REGISTER": "SIPp -trace_rtt: first REGISTER sent -> 200 to the authenticated one "
                "(the whole registration, 2 transactions; SIPp's millisecond clock)",
    "CALLS": "SIPp -trace_rtt: INVITE with credentials sent -> 180 through the proxy "
             "(SIPp's millisecond clock)",
    "OPTIONS-C": "udpload latency_us: OPTIONS sent -> 200 (microseconds)",
    "TLS-REGISTER": "tlsload latency_us: first REGISTER sent -> 200 to the authenticated one "
                    "(the whole registration; microseconds)",
}
CALL_UAS = os.path.join(BENCH, "scenarios", "bench_call_uas.xml")  # the callee
CALL_REG = os.path.join(BENCH, "scenarios", "bench_reg_contact.xml")  # registers the callee
KAMAILIO_CFG = os.path.join(BENCH, "kamailio", "kamailio.cfg")
DOMAIN = "127.0.0.1"
TICKS = os.sysconf("SC_CLK_TCK")
# sipwarden's max_connections(_per_source) and Kamailio's tcp/tls_max_connections: above the
# 5,000 idle TLS connections of the memory phase.
MAX_CONNECTIONS = 16384
# Kamailio's private memory per process (-M) with TLS: with 16 MB a TCP process died of a
# segmentation fault while 5,000 TLS connections were opening (twice in three runs, no memory
# error logged); with 64 MB every run completed. Untouched pages cost nothing in PSS.
KAMAILIO_PKG_MB_TLS = 64
PAGE = os.sysconf("SC_PAGE_SIZE")
TARGETS = ("sipwarden", "kamailio", "responder")
# The stateless responder answers every request 200 by itself, over UDP only: it cannot play
# a call, nor speak TLS.
NO_CEILING = ("CALLS", "TLS-REGISTER")
TLS_SCENARIOS = ("TLS-REGISTER",)


def targets_for(scenario):
    return [t for t in TARGETS if not (t == "responder" and scenario in NO_CEILING)]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_udp_port():
    """A UDP port free on 127.0.0.1 now (and its TCP twin, for sipwarden's other sockets)."""
    for _ in range(200):
        port = random.randint(20000, 59000)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


# ------------------------------------------------------------------------------------------
# /proc

def descendants(pid):
    """pid and every process below it (Kamailio forks its workers from the main process)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_ticks(pids):
    """utime+stime of every process (all its threads) in pids, in clock ticks."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # stat fields 14 and 15
        except (OSError, IndexError, ValueError):
            pass
    return total


def memory_kib(pids):
    """(RSS summed, PSS summed) in KiB over pids."""
    rss = pss = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


# ------------------------------------------------------------------------------------------
# Users: the same names and passwords for both servers.

def make_users(n, prefix):
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    sys.dont_write_bytecode = True
    try:
        from registrar_util import looks_like_walk  # the server's keyboard-walk rule, mirrored
    except Exception:  # noqa: BLE001 - without it, a stricter local rule
        def looks_like_walk(pw):
            return any(abs(ord(a) - ord(b)) <= 1 for a, b in zip(pw, pw[1:]))
    alphabet = string.ascii_letters + string.digits + "-_."
    users = []
    for i in range(n):
        name = "%s%06d" % (prefix, i)
        for _ in range(1000):
            pw = "".join(secrets.choice(alphabet) for _ in range(20))
            if name not in pw.lower() and any(c.isdigit() for c in pw) and \
                    any(c.isalpha() for c in pw) and not looks_like_walk(pw):
                break
        users.append((name, pw))
    return users


def write_user_files(users, work, tag):
    """users_TAG.csv (sipwarden import), inject_TAG.csv (SIPp), kamdb_TAG/ (db_text)."""
    csv_path = os.path.join(work, "users_%s.csv" % tag)
    inj_path = os.path.join(work, "inject_%s.csv" % tag)
    kdb = os.path.join(work, "kamdb_%s" % tag)
    os.makedirs(kdb, exist_ok=True)
    with open(csv_path, "w") as c, open(inj_path, "w") as j, \
            open(os.path.join(kdb, "credentials"), "w") as k:
        c.write("name,password\n")
        j.write("SEQUENTIAL\n")
        k.write("username(string) ha1(string)\n")
        for name, pw in users:
            c.write("%s,%s\n" % (name, pw))
            j.write("%s;%s;\n" % (name, pw))
            ha1 = hashlib.md5(("%s:%s:%s" % (name, DOMAIN, pw)).encode()).hexdigest()
            k.write("%s:%s\n" % (name, ha1))
    with open(os.path.join(kdb, "version"), "w") as v:
        v.write("table_name(string) table_version(int)\ncredentials:1\n")
    return csv_path, inj_path, kdb


# ------------------------------------------------------------------------------------------
# Targets

def wait_options_200(port, seconds=15.0):
    """True once an OPTIONS to 127.0.0.1:port gets a 200 (at most `seconds`)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    me = s.getsockname()[1]
    deadline = time.time() + seconds
    i = 0
    try:
        while time.time() < deadline:
            i += 1
            msg = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n"
                   "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKready%d.%d\r\n"
                   "Max-Forwards: 70\r\nFrom: <sip:bench@127.0.0.1>;tag=r\r\n"
                   "To: <sip:127.0.0.1:%d>\r\nCall-ID: ready%d.%d\r\nCSeq: 1 OPTIONS\r\n"
                   "Content-Length: 0\r\n\r\n" % (port, me, os.getpid(), i, port,
                                                   os.getpid(), i))
            s.sendto(msg.encode(), ("127.0.0.1", port))
            try:
                if s.recvfrom(65535)[0].startswith(b"SIP/2.0 200"):
                    return True
            except OSError:
                time.sleep(0.1)
        return False
    finally:
        s.close()


def wait_tcp(port, seconds=15.0):
    """True once 127.0.0.1:port accepts a TCP connection (at most `seconds`)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def make_cert(work):
    """A self-signed EC P-256 certificate for 127.0.0.1 (both servers use it); (cert, key)."""
    cert = os.path.join(work, "bench-cert.pem")
    key = os.path.join(work, "bench-key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "30", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    return cert, key


class Target:
    name = "?"

    def __init__(self, ctx, tls=False):
        self.ctx = ctx
        self.proc = None
        self.port = None
        self.logf = None
        self.tls = tls          # a TLS listener too (TLS-REGISTER, idle TLS memory)
        self.tls_port = None

    def pids(self):
        return [self.proc.pid]

    def _spawn(self, argv, logname):
        self.logf = open(os.path.join(self.ctx.work, logname), "ab")
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.ctx.work)
        if not wait_options_200(self.port):
            self.stop()
            raise RuntimeError("%s did not answer OPTIONS; see %s" % (self.name, logname))
        if self.tls_port and not wait_tcp(self.tls_port):
            self.stop()
            raise RuntimeError("%s does not accept TLS connections; see %s" % (self.name,
                                                                               logname))

    def stop(self):
        if self.proc is None:
            return
        pids = descendants(self.proc.pid)
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            for p in pids:  # only this target's own processes
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        # Kamailio's children exit with their main process; wait for them too (bounded).
        deadline = time.time() + 10
        while time.time() < deadline and any(os.path.exists("/proc/%d" % p) and
                                              not _zombie(p) for p in pids[1:]):
            time.sleep(0.1)
        self.proc = None
        if self.logf:
            self.logf.close()
            self.logf = None


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class Sipwarden(Target):
    name = "sipwarden"

    def __init__(self, ctx, template, tls=False):
        super().__init__(ctx, tls)
        self.template = template  # a data_dir with the users imported

    def start(self):
        self.port = free_udp_port()
        self.tls_port = None
        if self.tls:
            self.tls_port = free_udp_port()
            while self.tls_port == self.port:
                self.tls_port = free_udp_port()
        data = os.path.join(self.ctx.work, "sw-data-run")
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(self.template, data)
        conf = os.path.join(self.ctx.work, "sw-run.toml")
        with open(conf, "w") as f:
            f.write(sipwarden_toml(data, self.ctx.workers, self.port, self.tls_port,
                                   self.ctx.cert if self.tls else None,
                                   self.ctx.commit_window_ms))
        self.conf = conf
        self._spawn([self.ctx.sipwarden, "serve", "--config", conf], "sipwarden.log")

    def registered(self):
        """Bindings in the store (`sipwarden user list`: name, ..., bindings), or None."""
        try:
            out = subprocess.run([self.ctx.sipwarden, "user", "list", "--config", self.conf],
                                 capture_output=True, text=True, timeout=120).stdout
            return sum(int(line.split()[2]) for line in out.splitlines()[1:]
                       if len(line.split()) > 2 and line.split()[2].isdigit())
        except (OSError, subprocess.TimeoutExpired, ValueError):
            return None


def sipwarden_toml(data_dir, workers, port, tls_port=None, cert=None, commit_window_ms=None):
    """The benchmark's configuration (bench/options.sh, register.sh and calls.sh use it too,
    through bench/lib/common.sh); workers None: the server's default. With tls_port, a TLS
    listener there with cert (a (certificate, key) pair). commit_window_ms None: the store's
    default group-commit window."""
    workers_line = "workers = %d\n" % workers if workers else ""
    store = ("[store]\ncommit_window_ms = %d\n" % commit_window_ms
             if commit_window_ms is not None else "")
    tls = ""
    if tls_port:
        tls = """[[listen]]
transport = "tls"
address = "127.0.0.1"
port = %d
[tls]
certificate = "%s"
private_key = "%s"
""" % (tls_port, cert[0], cert[1])
    return """[server]
domain = "%s"
data_dir = "%s"
%slog_level = "warn"
shutdown_grace_ms = 0
[[listen]]
transport = "udp"
address = "127.0.0.1"
port = %d
%s[registrar]
min_expires = 60
max_expires = 3600
default_expires = 3600
max_contacts = 10
[auth]
algorithms = ["MD5"]
# One SIPp source sends everything: the per-source limits and bans are off (as in
# bench/register.sh); the Kamailio configuration has no flood detection either.
[shield]
packet_rate = 0
register_rate = 0
invite_rate = 0
other_rate = 0
failures_per_user = 0
failures_per_source = 100000
probed_users = 0
# CALLS: no toll-fraud limit on the callers (Kamailio has none either); ring_timeout_s default.
[calls]
max_concurrent_calls = 0
max_calls_per_minute = 0
# TLS-REGISTER and the idle TLS memory: 1,000 and 5,000 connections from one address (the
# default allows 64 per source and 10,000 in all).
[connections]
max_connections = %d
max_connections_per_source = %d
%s""" % (DOMAIN, data_dir, workers_line, port, tls, MAX_CONNECTIONS, MAX_CONNECTIONS, store)


class Kamailio(Target):
    name = "kamailio"

    def __init__(self, ctx, dbdir, shm_mb, tls=False):
        super().__init__(ctx, tls)
        self.dbdir = dbdir
        self.shm_mb = shm_mb
        self.ctl = None

    def pids(self):
        return descendants(self.proc.pid)

    def start(self):
        self.port = free_udp_port()
        self.ctl = os.path.join(self.ctx.work, "kamailio-ctl-%d" % self.port)
        argv = ["kamailio", "-f", KAMAILIO_CFG, "-DD", "-E", "-x", "fm", "-X", "fm",
                "-m", str(self.shm_mb), "-M", str(KAMAILIO_PKG_MB_TLS if self.tls else 16),
                "-w", self.ctx.work,
                "-l", "udp:127.0.0.1:%d" % self.port,
                "-A", "CHILDREN=%d" % self.ctx.workers,
                "-A", 'DBURL="text://%s"' % self.dbdir,
                "-A", 'CTLSOCK="unix:%s"' % self.ctl]
        if self.ctx.kamailio_stateless:
            argv += ["-A", "STATELESS"]
        self.tls_port = None
        if self.tls:
            self.tls_port = free_udp_port()
            while self.tls_port == self.port:
                self.tls_port = free_udp_port()
            argv += ["-A", "WITH_TLS", "-A", 'TLSCFG="%s"' % kamailio_tls_cfg(self.ctx),
                     "-A", "MAXCONN=%d" % MAX_CONNECTIONS,
                     # no higher than the hard limit: raising it may not be permitted
                     "-A", "OPENFILES=%d" % open_files(),
                     "-l", "tls:127.0.0.1:%d" % self.tls_port]
        self._spawn(argv, "kamailio.log")

    def shm_used(self):
        """core.shmmem 'real_used' in bytes, or None."""
        try:
            out = subprocess.run(["kamcmd", "-s", "unix:" + self.ctl, "core.shmmem"],
                                 capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        vals = {}
        for line in out.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                try:
                    vals[k.strip()] = int(v.strip())
                except ValueError:
                    pass
        used = vals.get("real_used")
        if used is not None and used < 0:  # kamcmd prints it as a signed 32-bit number
            used += 1 << 32
        return used

    def registered(self):
        try:
            out = subprocess.run(["kamcmd", "-s", "unix:" + self.ctl, "stats.get_statistics",
                                  "location_contacts"],
                                 capture_output=True, text=True, timeout=10).stdout
            return int(out.strip().split("=")[-1])
        except (OSError, subprocess.TimeoutExpired, ValueError):
            return None


def open_files():
    """The open-files limit to give Kamailio (open_files_limit): the current hard limit."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def kamailio_tls_cfg(ctx):
    """The tls module's configuration: the benchmark certificate, no client certificates."""
    path = os.path.join(ctx.work, "kamailio-tls.cfg")
    with open(path, "w") as f:
        f.write("[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
                "require_certificate = no\ncertificate = %s\nprivate_key = %s\n\n"
                "[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
                "require_certificate = no\n" % ctx.cert)
    return path


class Responder(Target):
    name = "responder"

    def start(self):
        self.port = free_udp_port()
        self._spawn([self.ctx.responder, str(self.port)], "responder.log")


# ------------------------------------------------------------------------------------------
# SIPp

def read_stats(path):
    """The complete rows of a SIPp -trace_stat file, each as {column: value}."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f, delimiter=";") if r]
    except OSError:
        return []
    if len(rows) < 2:
        return []
    head = rows[0]
    return [dict(zip(head, r)) for r in rows[1:] if len(r) >= len(head) - 1]


def read_stat(path):
    """The last complete row of a SIPp -trace_stat file, or None."""
    rows = read_stats(path)
    return rows[-1] if rows else None


def epoch(stat, key):
    """SIPp writes times as 'date<TAB>time<TAB>epoch'."""
    try:
        return float(stat.get(key, "").split()[-1])
    except (ValueError, IndexError):
        return None


def creation_rate(rows, total):
    """Calls created per second from SIPp's start to the last periodic dump before all
    `total` calls existed: the rate SIPp kept, without the tail of the last answers."""
    best = None
    for r in rows:
        created, t, t0 = num(r, "TotalCallCreated"), epoch(r, "CurrentTime"), \
            epoch(r, "StartTime")
        if created >= total:
            break
        if t is not None and t0 is not None and t - t0 >= 0.5:
            best = created / (t - t0)
    return best


def num(stat, key):
    try:
        return float(stat.get(key, "0") or 0)
    except ValueError:
        return 0.0


def port_bound(port):
    """True when something has bound UDP 127.0.0.1:port."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True


def reap(p, block=False):
    """Popen.poll() (Popen.wait() when `block`) through wait4(), which also gives the ended
    child's CPU time: returns its user + system seconds once it has ended, else None.
    p.returncode is set as Popen would set it."""
    if getattr(p, "cpu_s", None) is not None:
        return p.cpu_s
    if p.returncode is not None:  # reaped by Popen itself: its usage is gone
        return None
    pid, status, usage = os.wait4(p.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    p.returncode = os.waitstatus_to_exitcode(status)
    p.cpu_s = usage.ru_utime + usage.ru_stime
    return p.cpu_s


def wait_reaped(p, timeout):
    """Waits up to `timeout` seconds for p to end; its CPU seconds (reap()), or None."""
    deadline = time.time() + timeout
    while True:
        cpu = reap(p)  # sets p.returncode once p has ended
        if p.returncode is not None or time.time() >= deadline:
            return cpu
        time.sleep(0.05)


def end_process(p, grace):
    """Waits up to `grace` seconds for p (a process started here), then stops it by PID.
    Returns its user + system CPU seconds (None if they could not be read)."""
    cpu = wait_reaped(p, grace)
    if p.returncode is not None:
        return cpu
    p.send_signal(signal.SIGTERM)
    cpu = wait_reaped(p, 10)
    if p.returncode is not None:
        return cpu
    p.kill()
    return reap(p, block=True)


def register_callee(ctx, target):
    """CALLS: the callee's binding, Contact at the UAS's port (bench_reg_contact.xml, one
    registration from ctx.reg_port). sipwarden sends UDP requests to the Contact's port when
    the Contact's address is the source address; Kamailio to the Contact as registered."""
    with ctx.lock:
        ctx.sipp_runs += 1
        stat = os.path.join(ctx.work, "sipp-%d-reg.csv" % ctx.sipp_runs)
    argv = ["sipp", "-sf", CALL_REG, "-inf", ctx.inject["call_reg"], "-t", "u1",
            "-i", "127.0.0.1", "-p", str(ctx.reg_port), "-m", "1", "-timeout", "20s",
            "-nostdin", "-trace_stat", "-stf", stat, "127.0.0.1:%d" % target.port]
    with open(os.path.join(ctx.work, "sipp-%s-reg.out" % target.name), "ab") as out:
        subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=40)
    s = read_stat(stat) or {}
    if int(num(s, "SuccessfulCall(C)")) != 1:
        raise RuntimeError("%s: the callee's registration failed; see sipp-%s-reg.out" % (
            target.name, target.name))


def quantiles_ms(values):
    """{"p50_ms", "p99_ms", "max_ms", "samples"} of a list of milliseconds (nearest rank, as
    udpload and tlsload compute theirs), or None when empty."""
    if not values:
        return None
    v = sorted(values)

    def q(x):
        return v[min(len(v), max(1, math.ceil(x * len(v)))) - 1]
    return {"p50_ms": round(q(0.5), 3), "p99_ms": round(q(0.99), 3), "max_ms": round(v[-1], 3),
            "samples": len(v)}


def read_rtt(directory, pid):
    """SIPp's -trace_rtt file (Date_ms;response_time_ms;rtd_no), response times of rtd 1."""
    out = []
    for name in os.listdir(directory):
        if name.endswith("_%d_rtt.csv" % pid):
            path = os.path.join(directory, name)
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(";")
                    if len(parts) >= 3 and parts[2] == "1":
                        try:
                            out.append(float(parts[1]))
                        except ValueError:
                            pass
    return out


def run_step(ctx, target, scenario, rate, seconds, inject=None, abort_early=True,
             latency=False):
    """One bounded load step of `scenario` at `rate`/s for `seconds` with the scenario's load
    generator (SIPp, udpload or tlsload); the same result keys whichever it is."""
    if scenario == "OPTIONS-C":
        return run_udpload(ctx, target, rate, seconds)
    if scenario == "TLS-REGISTER":
        return run_tlsload(ctx, target, rate, seconds)
    return run_sipp(ctx, target, scenario, rate, seconds, inject=inject,
                    abort_early=abort_early, rtt=latency)


def cpu_step(ctx, name, tag, tls, scenario, rate, seconds, warmup_s, inject):
    """The fixed-rate CPU step on a freshly started `name`: an unmeasured warm-up, then the
    measured step, which also gives the response times. Returns {"cpu_warmup", "cpu"}."""
    out = {}
    t = make_target(ctx, name, tag, tls)
    t.start()
    try:
        if scenario == "CALLS":
            register_callee(ctx, t)
        if warmup_s > 0:
            out["cpu_warmup"] = run_step(ctx, t, scenario, rate, warmup_s, inject=inject,
                                         abort_early=False)
            time.sleep(0.5)
        out["cpu"] = run_step(ctx, t, scenario, rate, seconds, inject=inject,
                              abort_early=False, latency=True)
    finally:
        t.stop()
    return out


def run_udpload(ctx, target, rate, seconds):
    """OPTIONS-C: bench/udpload.c at `rate`/s for `seconds` from ctx.udp_sockets local
    sockets. Passes when every OPTIONS was sent within the time (the rate was kept) and
    answered 200, none lost, late or answered otherwise. CPU over the whole run (udpload has
    no set-up phase beyond binding its sockets)."""
    total = int(rate * seconds)
    window = max(1000, rate)  # one second of requests outstanding at most
    argv = [ctx.udpload, "-n", str(total), "-t", str(int(seconds) + 1), "-r", str(rate),
            "-w", str(window), "-T", "2000", "-s", str(ctx.udp_sockets),
            "127.0.0.1:%d" % target.port]
    pids = target.pids()
    errf = open(os.path.join(ctx.work, "udpload-%s.err" % target.name), "ab")
    c0, t0 = cpu_ticks(pids), time.time()
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL,
                           timeout=seconds + 40)
    except subprocess.TimeoutExpired:  # subprocess.run has killed it
        r = None
    t1, c1 = time.time(), cpu_ticks(pids)
    errf.close()
    try:
        j = json.loads(r.stdout.decode().strip().splitlines()[-1]) if r else {}
    except (ValueError, IndexError):
        j = {}
    sent, answered = j.get("sent", 0), j.get("answered", 0)
    passed = bool(j) and (sent == total and answered == total and j.get("lost", 1) == 0 and
                          j.get("other_responses", 1) == 0 and j.get("late", 1) == 0 and
                          j.get("send_errors", 1) == 0 and
                          (j.get("rate_sent", 0) >= 0.95 * rate or total < 2 * rate))
    cpu_us = (c1 - c0) * 1e6 / TICKS / answered if answered else None
    lat = j.get("latency_us") or {}
    res = {"rate": rate, "calls": total, "ok": answered, "failed": total - answered,
           "retrans": 0, "lost": j.get("lost"), "other_responses": j.get("other_responses"),
           "late": j.get("late"), "rate_sent": j.get("rate_sent"),
           "rate_answered": j.get("rate_answered"), "created_rate": j.get("rate_sent", 0),
           "wall_s": round(t1 - t0, 2), "aborted": r is None, "passed": passed,
           "server_cpu_s": round((c1 - c0) / TICKS, 3),
           "cpu_us_per_call": round(cpu_us, 2) if cpu_us is not None else None,
           "latency": {"p50_ms": lat["median"] / 1000.0, "p99_ms": lat["p99"] / 1000.0,
                       "max_ms": lat["max"] / 1000.0, "samples": answered}
           if lat and answered else None,
           "udpload": j}
    log("    %-9s %-12s %6d/s  200 %7d/%-7d lost %-5d other %-4d sent at %8.0f/s  cpu %s us/req"
        "  p50 %s p99 %s ms  %s" % (
            target.name, "OPTIONS-C", rate, answered, total, j.get("lost", -1),
            j.get("other_responses", -1), j.get("rate_sent", 0),
            "%.1f" % cpu_us if cpu_us is not None else "-",
            lat.get("median", 0) / 1000.0, lat.get("p99", 0) / 1000.0,
            "pass" if passed else "FAIL"))
    return res


def run_tlsload(ctx, target, rate, seconds):
    """TLS-REGISTER: bench/tlsload.cc over ctx.tls_connections persistent TLS connections to
    target.tls_port, registrations started at `rate`/s for `seconds` (the users of the
    REGISTER scenario in turn). Passes when every connection opened (none refused, failed or
    closed by the server), every registration was started within the time (the rate was
    kept) and got its 200. The server's CPU is counted from the moment tlsload reports the
    connections open to the end of the load (handshakes apart: reported per connection)."""
    total = int(rate * seconds)
    n = ctx.tls_connections
    argv = [ctx.tlsload, "-u", ctx.users_csv["reg"], "-c", str(n), "-r", str(rate),
            "-n", str(total), "-t", str(int(seconds) + 1), "-T", "5000",
            "-j", str(ctx.tls_threads), "-H", "64", "-C", "60000",
            "127.0.0.1:%d" % target.tls_port]
    pids = target.pids()
    errpath = os.path.join(ctx.work, "tlsload-%s.err" % target.name)
    errf = open(errpath, "a")
    marks = {}
    c0, t0 = cpu_ticks(pids), time.time()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    killer = threading.Timer(60 + seconds + 5 + 40, p.kill)  # connect + load + timeout, bounded
    killer.start()
    try:
        for line in p.stderr:  # progress lines; "connections open" and "load ended" are marks
            now = time.time()
            if "connections open" in line and "open" not in marks:
                marks["open"] = (now, cpu_ticks(pids))
            elif "load ended" in line and "end" not in marks:
                marks["end"] = (now, cpu_ticks(pids))
            errf.write(line)
        out = p.stdout.read()
        p.wait(timeout=30)
    finally:
        killer.cancel()
        errf.close()
    t1, c1 = time.time(), cpu_ticks(pids)
    try:
        j = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        j = {}
    conns = j.get("connections", {})
    regs = j.get("registrations", {})
    ok, started = regs.get("ok", 0), regs.get("started", 0)
    passed = bool(j) and (conns.get("open") == n and conns.get("connect_failures") == 0 and
                          conns.get("handshake_failures") == 0 and
                          conns.get("closed_by_server") == 0 and started == total and
                          ok == total and regs.get("failed", 1) == 0 and
                          (j.get("rate_started", 0) >= 0.95 * rate or total < 2 * rate))
    # CPU of the registrations only: from "open" to "load ended" (the whole run without marks)
    ca, ta = marks.get("open", (t0, c0))[1], marks.get("open", (t0, c0))[0]
    cb, tb = marks.get("end", (t1, c1))[1], marks.get("end", (t1, c1))[0]
    cpu_us = (cb - ca) * 1e6 / TICKS / ok if ok else None
    hs_us = (ca - c0) * 1e6 / TICKS / conns["open"] if conns.get("open") and \
        "open" in marks else None
    lat = j.get("latency_us") or {}
    res = {"rate": rate, "calls": total, "ok": ok, "failed": total - ok, "retrans": 0,
           "started": started, "connections_open": conns.get("open"),
           "rate_ok": j.get("rate_ok"), "created_rate": j.get("rate_started", 0),
           "wall_s": round(t1 - t0, 2), "load_s": round(tb - ta, 2), "aborted": False,
           "passed": passed, "server_cpu_s": round((cb - ca) / TICKS, 3),
           "cpu_us_per_call": round(cpu_us, 2) if cpu_us is not None else None,
           "cpu_us_per_handshake": round(hs_us, 1) if hs_us is not None else None,
           "latency": {"p50_ms": lat["median"] / 1000.0, "p99_ms": lat["p99"] / 1000.0,
                       "max_ms": lat["max"] / 1000.0, "samples": ok}
           if lat and ok else None,
           "tlsload": j}
    log("    %-9s %-12s %6d/s  ok %7d/%-7d (started %d) conns %s/%d  started at %6.0f/s  cpu %s us/reg"
        " (%s us/handshake)  p50 %s p99 %s ms  %s" % (
            target.name, "TLS-REGISTER", rate, ok, total, started, conns.get("open"), n,
            j.get("rate_started", 0), "%.1f" % cpu_us if cpu_us is not None else "-",
            "%.0f" % hs_us if hs_us is not None else "-", lat.get("median", 0) / 1000.0,
            lat.get("p99", 0) / 1000.0, "pass" if passed else "FAIL"))
    return res


def run_sipp(ctx, target, scenario, rate, seconds, inject=None, total=None, abort_early=True,
             sipp_port=None, rtt=False):
    """One bounded SIPp run against target at `rate` calls/s for `seconds` (or `total` calls).
    Returns a dict; 'passed' means every call succeeded, none was retransmitted, and the
    rate was kept (SIPp created calls at 95% of the offered rate or more). For CALLS a SIPp
    UAS (the registered callee) runs beside the caller, bounded the same way; its failed calls
    and retransmissions fail the run too."""
    total = total or int(rate * seconds)
    calls = scenario == "CALLS"
    # a call lasts its ring (at the callee) and its hold (at the caller) plus the signalling
    hold_s = (ctx.call_ring_ms + ctx.call_hold_ms) / 1000.0 if calls else 0.0
    with ctx.lock:
        ctx.sipp_runs += 1
        stat = os.path.join(ctx.work, "sipp-%d.csv" % ctx.sipp_runs)
        uas_stat = os.path.join(ctx.work, "sipp-%d-uas.csv" % ctx.sipp_runs)
    sipp_timeout = "%ds" % (total / rate + 8 + math.ceil(hold_s))
    # calls in progress at once: for a call, the hold plus the signalling
    limit = int(rate * (math.ceil(hold_s) + 3 if calls else 2) + 100)
    argv = ["sipp", "-sf", SCENARIOS[scenario], "-t", "u1", "-i", "127.0.0.1",
            "-p", str(sipp_port or ctx.sipp_port), "-r", str(rate), "-m", str(total),
            "-l", str(limit), "-timeout", sipp_timeout,
            "-nostdin", "-buff_size", "4194304", "-trace_stat", "-stf", stat, "-fd", "1"]
    if calls:
        argv += ["-d", str(ctx.call_hold_ms), "-trace_err", "-error_file", stat[:-4] + "-err.log"]
    if inject:
        argv += ["-inf", inject]
    rtt_dir = None
    if rtt:  # per-call response times (rtd 1 of the scenario) in <scenario>_<pid>_rtt.csv
        # SIPp writes them rtt_freq at a time and drops the last incomplete batch at its end:
        # every 50 (a file write per 50 calls), at most 49 of thousands are missing.
        rtt_dir = os.path.join(ctx.work, "rtt-%d" % ctx.sipp_runs)
        os.makedirs(rtt_dir, exist_ok=True)
        argv += ["-trace_rtt", "-rtt_freq", "50"]
    argv.append("127.0.0.1:%d" % target.port)
    pids = target.pids()
    out = open(os.path.join(ctx.work, "sipp-%s.out" % target.name), "ab")
    uas = None
    if calls:
        uas = subprocess.Popen(
            ["sipp", "-sf", CALL_UAS, "-t", "u1", "-i", "127.0.0.1", "-p", str(ctx.uas_port),
             "-m", str(total), "-d", str(ctx.call_ring_ms), "-timeout", sipp_timeout,
             "-nostdin", "-buff_size", "4194304", "-trace_stat", "-stf", uas_stat, "-fd", "1",
             "-trace_err", "-error_file", uas_stat[:-4] + "-err.log"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 5
        while not port_bound(ctx.uas_port) and time.time() < deadline and uas.poll() is None:
            time.sleep(0.05)
        if not port_bound(ctx.uas_port):
            end_process(uas, 0)
            out.close()
            raise RuntimeError("the SIPp UAS did not start; see sipp-%s.out" % target.name)
    c0, t0 = cpu_ticks(pids), time.time()
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         cwd=rtt_dir)
    aborted = False
    hard_deadline = t0 + total / rate + 20 + hold_s
    while reap(p) is None and p.returncode is None:
        time.sleep(0.25)
        if time.time() > hard_deadline:
            p.kill()
            aborted = True
            break
        if abort_early:
            bad = False
            for path in (stat, uas_stat) if calls else (stat,):
                st = read_stat(path)
                if st and (num(st, "FailedCall(C)") > 0 or num(st, "Retransmissions(C)") > 0):
                    bad = True
            if bad:
                p.send_signal(signal.SIGTERM)
                aborted = True
                break
    sipp_cpu = [end_process(p, 10)]  # the load generator's own CPU time, SIPp's processes
    t1, c1 = time.time(), cpu_ticks(pids)
    if uas is not None:
        # It has answered the last BYE unless calls failed: a short grace, then stopped.
        sipp_cpu.append(end_process(uas, 0.5 if aborted else 3))
    out.close()
    rows = read_stats(stat)
    s = rows[-1] if rows else {}
    created_rate = creation_rate(rows, total)
    if created_rate is None:  # shorter than a dump period: SIPp's own average
        created_rate = num(s, "CallRate(C)")
    ok = int(num(s, "SuccessfulCall(C)"))
    failed = int(num(s, "FailedCall(C)"))
    retrans = int(num(s, "Retransmissions(C)"))
    callrate = num(s, "CallRate(C)")
    u = (read_stat(uas_stat) or {}) if calls else {}
    callee_ok = int(num(u, "SuccessfulCall(C)"))
    callee_failed = int(num(u, "FailedCall(C)"))
    callee_retrans = int(num(u, "Retransmissions(C)"))
    passed = (not aborted and ok == total and failed == 0 and retrans == 0 and
              callee_failed == 0 and callee_retrans == 0 and
              (created_rate >= 0.95 * rate or total < 2 * rate))
    cpu_us = (c1 - c0) * 1e6 / TICKS / ok if ok else None
    # SIPp's CPU over its whole life (start-up and tail included), caller and callee.
    loadgen_s = sum(sipp_cpu) if None not in sipp_cpu else None
    loadgen_us = loadgen_s * 1e6 / ok if ok and loadgen_s is not None else None
    r = {"rate": rate, "calls": total, "ok": ok, "failed": failed, "retrans": retrans,
         "sipp_call_rate": round(callrate, 1), "created_rate": round(created_rate, 1),
         "wall_s": round(t1 - t0, 2),
         "aborted": aborted, "passed": passed,
         "server_cpu_s": round((c1 - c0) / TICKS, 3),
         "cpu_us_per_call": round(cpu_us, 2) if cpu_us is not None else None,
         "loadgen_cpu_s": round(loadgen_s, 3) if loadgen_s is not None else None,
         "loadgen_cpu_us_per_call": round(loadgen_us, 2) if loadgen_us is not None else None}
    if rtt_dir:
        r["latency"] = quantiles_ms(read_rtt(rtt_dir, p.pid))
        shutil.rmtree(rtt_dir, ignore_errors=True)
    if calls:
        r.update({"ring_ms": ctx.call_ring_ms, "hold_ms": ctx.call_hold_ms,
                  "callee_ok": callee_ok,
                  "callee_failed": callee_failed, "callee_retrans": callee_retrans})
    lat = r.get("latency")
    log("    %-9s %-8s %6d/s  ok %7d/%-7d failed %-5d retrans %-6d kept %8.1f/s  cpu %s us/call"
        "%s%s  %s" % (target.name, scenario, rate, ok, total, failed, retrans, created_rate,
                      "%.1f" % cpu_us if cpu_us is not None else "-",
                      "  callee: ok %d failed %d retrans %d" % (callee_ok, callee_failed,
                                                               callee_retrans) if calls else "",
                      "  p50 %s p99 %s ms" % (lat["p50_ms"], lat["p99_ms"]) if lat else "",
                      "pass" if passed else "FAIL"))
    return r


def nice(x):
    """x rounded to two significant digits (search rates)."""
    x = max(int(x), 10)
    mag = 10 ** max(len(str(x)) - 2, 0)
    return int(round(x / mag) * mag)


def rate_search(ctx, target, scenario, prior, inject):
    """Highest rate passing one step of ctx.step_s seconds; bounded in steps."""
    p = ctx.plan
    steps = []
    max_steps = p["max_steps_first"] if prior is None else p["max_steps_later"]

    def test(r):
        res = run_step(ctx, target, scenario, r, ctx.step_s, inject=inject)
        steps.append(res)
        if scenario == "CALLS" and not res["passed"]:
            # The calls cut short leave INVITE transactions behind that would reach the next
            # step's callee (for up to 32 s) as new calls: the next step gets a fresh server.
            target.stop()
            target.start()
            register_callee(ctx, target)
        elif scenario in ("OPTIONS-C", "TLS-REGISTER") and not res["passed"]:
            # udpload and tlsload never back off: a server that fell behind still has full
            # socket buffers and a backlog when the next, lower step starts, and fails it too
            # (Kamailio failed every OPTIONS-C step down to 75/s after a first step at
            # 20,000/s; both servers registered nothing over TLS at 3,100-4,500/s after a
            # failed step at 6,000/s). The next step gets a fresh server.
            target.stop()
            target.start()
        time.sleep(0.5)
        return res["passed"]

    lo, hi = 0, None
    if prior is None:
        r = p["start"][scenario]
        while len(steps) < max_steps and r <= p["cap"][scenario]:
            if test(r):
                lo, r = r, nice(r * 2)
            else:
                hi = r
                break
    else:
        r = nice(prior)
        if test(r):
            lo = r
            while len(steps) < max_steps:
                r = nice(lo * 1.15)
                if r > p["cap"][scenario]:
                    break
                if test(r):
                    lo = r
                else:
                    hi = r
                    break
        else:
            hi = r
    while lo == 0 and hi is not None and len(steps) < max_steps and hi > 20:
        r = nice(hi * (0.5 if prior is None else 0.8))
        if r >= hi:
            break
        if test(r):
            lo = r
        else:
            hi = r
    while (lo and hi and len(steps) < max_steps and (hi - lo) / lo > p["resolution"]):
        mid = nice((lo + hi) / 2)
        if mid <= lo or mid >= hi:
            break
        if test(mid):
            lo = mid
        else:
            hi = mid
    return {"best": lo, "first_failure": hi, "steps": steps}


# ------------------------------------------------------------------------------------------
# Phases

def import_users(ctx, csv_path, tag):
    """A sipwarden data_dir with these users imported (the template for every start)."""
    data = os.path.join(ctx.work, "sw-template-%s" % tag)
    conf = os.path.join(ctx.work, "sw-import-%s.toml" % tag)
    with open(conf, "w") as f:
        f.write(sipwarden_toml(data, ctx.workers, 5060))
    t0 = time.time()
    r = subprocess.run([ctx.sipwarden, "user", "import", csv_path, "--config", conf],
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError("sipwarden user import failed: %s %s" % (r.stdout[-2000:],
                                                                    r.stderr[-2000:]))
    log("  imported %s users into sipwarden in %.1f s" % (tag, time.time() - t0))
    return data


def make_target(ctx, name, tag, tls=False):
    """A target with the users of `tag` ("reg": REGISTER and OPTIONS, "call": CALLS, "mem");
    tls: with a TLS listener too (tls_port)."""
    if name == "sipwarden":
        return Sipwarden(ctx, ctx.sw_template[tag], tls)
    if name == "kamailio":
        return Kamailio(ctx, ctx.kam_db[tag], ctx.shm_mb, tls)
    return Responder(ctx)


def memory_phase(ctx, name, n, rate, settle_s, out):
    """PSS/RSS before and after n registrations (one binding per user, n users loaded);
    the result goes to out[name].

    Before "before", the same REGISTER load (same rate, same number of calls) cycles over the
    first 10 users only: it brings transaction state, buffers and allocator pools to the
    level the real registrations will see, so the difference is the bindings. Both readings
    are taken settle_s after the load, longer than any transaction lives (sipwarden's Timer J
    is 32 s, Kamailio's wait timer 5 s), so no transaction is counted in either."""
    t = make_target(ctx, name, "mem")
    port = free_udp_port()
    t.start()
    try:
        warm = run_sipp(ctx, t, "REGISTER", rate, None, inject=ctx.inject["mem10"], total=n,
                        abort_early=False, sipp_port=port)
        time.sleep(settle_s)
        pids = t.pids()
        rss0, pss0 = memory_kib(pids)
        shm0 = t.shm_used() if name == "kamailio" else None
        res = run_sipp(ctx, t, "REGISTER", rate, None, inject=ctx.inject["mem"], total=n,
                       abort_early=False, sipp_port=port)
        time.sleep(settle_s)
        rss1, pss1 = memory_kib(t.pids())
        shm1 = t.shm_used() if name == "kamailio" else None
        new = n - 10  # the 10 warm-up users were bound already
        m = {"bindings": n, "new_bindings": new, "registered_ok": res["ok"] == n,
               "warmup_ok": warm["ok"] == n,
               "register_failed": res["failed"], "register_retrans": res["retrans"],
               "rate": rate, "settle_s": settle_s, "processes": len(pids),
               "rss_before_kib": rss0, "rss_after_kib": rss1,
               "pss_before_kib": pss0, "pss_after_kib": pss1,
               "rss_per_binding_bytes": round((rss1 - rss0) * 1024 / new, 1),
               "pss_per_binding_bytes": round((pss1 - pss0) * 1024 / new, 1)}
        if name == "kamailio":
            m["shm_used_before"] = shm0
            m["shm_used_after"] = shm1
            if shm0 is not None and shm1 is not None:
                m["shm_per_binding_bytes"] = round((shm1 - shm0) / new, 1)
        m["bindings_reported"] = t.registered()  # usrloc location_contacts / user list
        log("  memory %-9s %d bindings: PSS %d -> %d KiB, RSS(sum) %d -> %d KiB%s" % (
            name, res["ok"], pss0, pss1, rss0, rss1,
            ", shm used %s -> %s" % (shm0, shm1) if name == "kamailio" else ""))
        out[name] = m
    finally:
        t.stop()


def tls_idle_phase(ctx, name, n, hold_s, out):
    """PSS growth of a freshly started server (TLS listener) with n idle TLS connections,
    each having carried one OPTIONS (tlsload --idle --ping --mem-pid: the server's Rss and Pss,
    summed over its processes, before the first connection and 2 s after the pings); the
    result goes to out[name]. For Kamailio, shared memory in use before and at that point."""
    t = make_target(ctx, name, "mem", tls=True)
    t.start()
    try:
        time.sleep(2)
        shm0 = t.shm_used() if name == "kamailio" else None
        shm1 = None
        argv = [ctx.tlsload, "--idle", str(hold_s), "--ping", "--mem-pid", str(t.proc.pid),
                "-c", str(n), "-H", "16", "-C", "120000", "-T", "10000",
                "127.0.0.1:%d" % t.tls_port]
        errf = open(os.path.join(ctx.work, "tlsload-idle-%s.err" % name), "a")
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
        killer = threading.Timer(120 + 10 + hold_s + 60, p.kill)
        killer.start()
        try:
            for line in p.stderr:
                # printed right after tlsload's "after" reading, while the connections are open
                if "holding the connections" in line and name == "kamailio":
                    shm1 = t.shm_used()
                errf.write(line)
            text = p.stdout.read()
            p.wait(timeout=30)
        finally:
            killer.cancel()
            errf.close()
        try:
            j = json.loads(text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            j = {}
        mem = j.get("server_memory") or {}
        conns = j.get("connections") or {}
        m = dict(mem)
        m.update({"requested": n, "open": conns.get("open"), "pings_ok": j.get("pings_ok"),
                  "open_s": conns.get("open_s"), "held_s": j.get("held_s"),
                  "complete": bool(mem) and conns.get("open") == n and j.get("pings_ok") == n})
        if shm0 is not None and shm1 is not None and conns.get("open"):
            m.update({"shm_used_before": shm0, "shm_used_after": shm1,
                      "shm_per_connection_bytes": round((shm1 - shm0) / conns["open"], 1)})
        if not m["complete"]:  # what went wrong, kept in the JSON (the work dir is removed)
            m["tlsload_stderr_tail"] = open(os.path.join(
                ctx.work, "tlsload-idle-%s.err" % name)).read().splitlines()[-5:]
            m["server_log_tail"] = open(os.path.join(
                ctx.work, "%s.log" % name), errors="replace").read().splitlines()[-10:]
        log("  TLS idle %-9s %s/%d open, %s pinged: PSS %s -> %s KiB = %s B/connection" % (
            name, conns.get("open"), n, j.get("pings_ok"), mem.get("pss_before_kib"),
            mem.get("pss_after_kib"), mem.get("pss_per_connection_bytes")))
        out[name] = m
    finally:
        t.stop()


def med_spread(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v),
            "values": v}


def latency_of(run, key):
    cpu = run.get("cpu") or {}
    lat = cpu.get("latency") if cpu.get("passed") else None
    return lat.get(key) if lat else None


def summarize(results):
    rounds = results["rounds"]
    summary = {}
    for sc in results["scenarios"]:
        s = {}
        for t in TARGETS:
            if t not in targets_for(sc):
                s[t] = None  # n/a: the responder cannot play this scenario
                continue
            s[t] = {
                "max_rate": med_spread([r[sc][t]["search"]["best"] or None for r in rounds]),
                # no step failed in some round: its max rate is a lower bound (steps or cap)
                "max_rate_lower_bound": any(r[sc][t]["search"]["best"] and
                                            r[sc][t]["search"]["first_failure"] is None
                                            for r in rounds),
                "cpu_us_per_call": med_spread([r[sc][t]["cpu"]["cpu_us_per_call"]
                                               if r[sc][t].get("cpu", {}).get("passed")
                                               else None for r in rounds]),
                # SIPp's own CPU at the CPU step (none for udpload and tlsload)
                "loadgen_cpu_us_per_call": med_spread(
                    [r[sc][t]["cpu"].get("loadgen_cpu_us_per_call")
                     if r[sc][t].get("cpu", {}).get("passed") else None for r in rounds]),
                # response times at the CPU step (half the lower max rate), when it passed
                "latency_p50_ms": med_spread([latency_of(r[sc][t], "p50_ms") for r in rounds]),
                "latency_p99_ms": med_spread([latency_of(r[sc][t], "p99_ms") for r in rounds]),
            }
        for num_t, den_t, key in (("sipwarden", "kamailio", "sipwarden/kamailio"),
                                  ("sipwarden", "responder", "sipwarden/ceiling"),
                                  ("kamailio", "responder", "kamailio/ceiling")):
            if den_t not in targets_for(sc):
                s[key] = None
                continue
            rr, cr = [], []
            for r in rounds:
                a, b = r[sc][num_t]["search"]["best"], r[sc][den_t]["search"]["best"]
                if a and b:
                    rr.append(a / b)
                ca = r[sc][num_t].get("cpu", {})
                cb = r[sc][den_t].get("cpu", {})
                if ca.get("passed") and cb.get("passed") and cb.get("cpu_us_per_call"):
                    cr.append(ca["cpu_us_per_call"] / cb["cpu_us_per_call"])
            s[key] = {"max_rate": med_spread(rr), "cpu_us_per_call": med_spread(cr)}
        summary[sc] = s
    return summary


NA = object()  # a table cell for a target that cannot play the scenario


def fmt(ms, digits=0):
    if ms is NA:
        return "n/a"
    if not ms:
        return "-"
    f = "%%.%df" % digits
    if ms["n"] == 1:
        return f % ms["median"]
    return (f + " [" + f + "-" + f + "]") % (ms["median"], ms["min"], ms["max"])


def fmt_ms(ms):
    if not ms:
        return "-"
    digits = 3 if ms["median"] < 1 else 2 if ms["median"] < 10 else 1
    return fmt(ms, digits)


def table(results):
    summ = results["summary"]
    lines = []
    hdr = "%-12s %-24s %-22s %-22s %-22s %-18s %-18s" % (
        "scenario", "metric", "sipwarden", "kamailio", "ceiling (responder)",
        "sipwarden/kamailio", "sipwarden/ceiling")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for sc in results["scenarios"]:
        s = summ[sc]

        def cell(key, metric):  # NA for a target that cannot play the scenario
            return NA if s.get(key) is None else s[key][metric]

        def rate(key):  # "+": no step failed, the rate is a lower bound
            v = fmt(cell(key, "max_rate"))
            return v + "+" if s.get(key) and s[key].get("max_rate_lower_bound") else v
        lines.append("%-12s %-24s %-22s %-22s %-22s %-18s %-18s" % (
            sc, "max rate (%s)" % ("/s"), rate("sipwarden"), rate("kamailio"), rate("responder"),
            fmt(cell("sipwarden/kamailio", "max_rate"), 2),
            fmt(cell("sipwarden/ceiling", "max_rate"), 2)))
        lines.append("%-12s %-24s %-22s %-22s %-22s %-18s %-18s" % (
            "", "CPU us/call @%d/s" % results["cpu_rate"][sc],
            fmt(cell("sipwarden", "cpu_us_per_call"), 1),
            fmt(cell("kamailio", "cpu_us_per_call"), 1),
            fmt(cell("responder", "cpu_us_per_call"), 1),
            fmt(cell("sipwarden/kamailio", "cpu_us_per_call"), 2),
            fmt(cell("sipwarden/ceiling", "cpu_us_per_call"), 2)))
        if any(s.get(t) and s[t].get("loadgen_cpu_us_per_call") for t in TARGETS):
            lines.append("%-12s %-24s %-22s %-22s %-22s" % (
                "", "SIPp's CPU us/call", fmt(cell("sipwarden", "loadgen_cpu_us_per_call"), 1),
                fmt(cell("kamailio", "loadgen_cpu_us_per_call"), 1),
                fmt(cell("responder", "loadgen_cpu_us_per_call"), 1)))
    if results["scenarios"]:
        lines.append("")
        lines.append("Response times at the CPU step (half the lower of sipwarden's and "
                     "Kamailio's first-round max rates), ms:")
        lh = "%-12s %-10s %8s %-20s %-20s %s" % ("scenario", "target", "rate/s", "p50 (ms)",
                                                  "p99 (ms)", "samples")
        lines.append(lh)
        lines.append("-" * len(lh))
        for sc in results["scenarios"]:
            for t in TARGETS:
                st = summ[sc].get(t)
                if st is None:
                    lines.append("%-12s %-10s %8d %-20s %-20s" % (sc, t, results["cpu_rate"][sc],
                                                                 "n/a", "n/a"))
                    continue
                samples = [(r[sc][t].get("cpu") or {}).get("latency") for r in results["rounds"]]
                samples = [x["samples"] for x in samples if x]
                lines.append("%-12s %-10s %8d %-20s %-20s %s" % (
                    sc, t, results["cpu_rate"][sc], fmt_ms(st.get("latency_p50_ms")),
                    fmt_ms(st.get("latency_p99_ms")),
                    "/".join(str(x) for x in samples) or "-"))
        for sc in results["scenarios"]:
            lines.append("  %s: %s" % (sc, LATENCY_METHOD[sc]))
    lines.append("")
    lines.append("median [min-max] over %d round(s); ratios are per round (same round's runs); "
                 "N+: no step failed up to N (steps or --cap ran out), a lower bound."
                 % len(results["rounds"]))
    if any(summ[sc].get(t) and summ[sc][t].get("loadgen_cpu_us_per_call")
           for sc in results["scenarios"] for t in TARGETS):
        lines.append("SIPp's CPU us/call: the load generator's own CPU time (the caller's and, "
                     "for CALLS, the callee's SIPp, over their whole runs) at the CPU step, per "
                     "call: it shares the machine's cores, so the highest rate is at most cores / "
                     "(server + SIPp CPU per call).")
    if set(results["scenarios"]) & {"OPTIONS", "REGISTER", "TLS-REGISTER"}:
        lines.append("OPTIONS: one call = one OPTIONS transaction; REGISTER: one call = one "
                     "registration = REGISTER/401 + REGISTER/200 (two transactions).")
    if "OPTIONS-C" in results["scenarios"]:
        o = results.get("options_c") or {}
        lines.append("OPTIONS-C: OPTIONS over UDP from bench/udpload.c, %s local sockets (spread "
                     "over SO_REUSEPORT workers), at most max(1000, rate) outstanding; a step "
                     "passes when every OPTIONS is answered 200 and none is lost." % (
                         o.get("sockets", "?")))
    if "TLS-REGISTER" in results["scenarios"]:
        c = results.get("tls") or {}
        lines.append("TLS-REGISTER: the REGISTER above over %s persistent TLS connections from "
                     "bench/tlsload.cc (%s threads), one registration at a time per "
                     "connection; CPU counted once the connections are open (handshakes "
                     "apart); responder: n/a (no TLS)." % (c.get("connections", "?"),
                                                           c.get("threads", "?")))
    if "CALLS" in results["scenarios"]:
        c = results.get("calls") or {}
        lines.append("CALLS: one call = INVITE/407 + ACK, INVITE/180/200 forwarded + ACK, BYE/200 "
                     "forwarded, from %s callers to one registered SIPp callee (ringing %s ms, "
                     "%s ms between ACK and BYE); a call counts only when complete at both ends; "
                     "responder: n/a (it cannot play a call)." % (
                         c.get("callers", "?"), c.get("ring_ms", "?"), c.get("hold_ms", "?")))
    mem = results.get("memory")
    if mem:
        lines.append("")
        lines.append("memory: %d users loaded, %d registered at %d/s after a warm-up of the "
                     "same load over 10 of them; per binding = growth / %d:" % (
                         mem["bindings"], mem["bindings"], mem["rate"], mem["bindings"] - 10))
        for t in ("sipwarden", "kamailio"):
            m = mem.get(t)
            if not m:
                continue
            extra = ""
            if t == "kamailio" and m.get("shm_used_after") is not None:
                extra = "; shm used %.1f -> %.1f MiB (%s B/binding)" % (
                    m["shm_used_before"] / 2**20, m["shm_used_after"] / 2**20,
                    m.get("shm_per_binding_bytes"))
            lines.append(
                "  %-9s %d proc, %s bindings held: PSS %.1f -> %.1f MiB = %s B/binding; RSS "
                "summed %.1f -> %.1f MiB = %s B/binding%s%s" % (
                    t, m["processes"], m.get("bindings_reported"),
                    m["pss_before_kib"] / 1024, m["pss_after_kib"] / 1024,
                    m["pss_per_binding_bytes"], m["rss_before_kib"] / 1024,
                    m["rss_after_kib"] / 1024, m["rss_per_binding_bytes"], extra,
                    "" if m["registered_ok"] else "  (NOT ALL REGISTERED: %d)" % m["bindings"]))
        a, b = mem.get("sipwarden"), mem.get("kamailio")
        if a and b and b["pss_per_binding_bytes"] > 0:
            lines.append("  sipwarden/kamailio per binding (PSS): %.2f" % (
                a["pss_per_binding_bytes"] / b["pss_per_binding_bytes"]))
        ti = mem.get("tls_idle")
        if ti:
            lines.append("")
            lines.append("memory per idle TLS connection: %d connections (one OPTIONS each), "
                         "freshly started servers, PSS growth / open connections "
                         "(tlsload --idle --ping --mem-pid):" % ti["connections"])
            for t in ("sipwarden", "kamailio"):
                m = ti.get(t)
                if not m:
                    continue
                if not m.get("complete"):  # no figure: the server or the connections failed
                    lines.append("  %-9s INCOMPLETE: %s of %s open, %s pinged (%d attempt(s)); "
                                 "the JSON keeps tlsload's and the server's last lines" % (
                                     t, m.get("open"), m.get("requested"), m.get("pings_ok"),
                                     1 + len(m.get("failed_attempts") or [])))
                    continue
                extra = ""
                if m.get("shm_per_connection_bytes") is not None:
                    extra = "; shm used %.1f -> %.1f MiB (%s B/connection)" % (
                        m["shm_used_before"] / 2**20, m["shm_used_after"] / 2**20,
                        m["shm_per_connection_bytes"])
                lines.append(
                    "  %-9s %s proc, %s open, %s pinged: PSS %.1f -> %.1f MiB = %s B/connection; "
                    "RSS summed = %s B/connection%s%s" % (
                        t, m.get("processes"), m.get("open"), m.get("pings_ok"),
                        m.get("pss_before_kib", 0) / 1024, m.get("pss_after_kib", 0) / 1024,
                        m.get("pss_per_connection_bytes"), m.get("rss_per_connection_bytes"),
                        extra, ""))
            if ti.get("sipwarden/kamailio") is not None:
                lines.append("  sipwarden/kamailio per idle TLS connection (PSS): %.2f" %
                             ti["sipwarden/kamailio"])
    return "\n".join(lines)


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sipwarden", required=True)
    ap.add_argument("--responder", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--udpload", help="bench/udpload.c built (OPTIONS-C)")
    ap.add_argument("--tlsload", help="bench/tlsload.cc built (TLS-REGISTER, idle TLS memory)")
    ap.add_argument("--scenarios", default="OPTIONS,REGISTER,CALLS,OPTIONS-C,TLS-REGISTER",
                    help="comma-separated, from %s; 'none': the memory phase only" %
                    ",".join(KNOWN))
    ap.add_argument("--udp-sockets", type=int, default=8,
                    help="OPTIONS-C: udpload's local sockets (-s)")
    ap.add_argument("--tls-connections", type=int, default=1000,
                    help="TLS-REGISTER: persistent TLS connections (tlsload -c)")
    ap.add_argument("--tls-threads", type=int, default=2,
                    help="TLS-REGISTER: tlsload's threads (-j)")
    ap.add_argument("--tls-idle", type=int, default=5000,
                    help="memory phase: idle TLS connections per server (0: not measured)")
    ap.add_argument("--callers", type=int, default=1000,
                    help="CALLS: users placing the calls (each call is placed by the next one)")
    ap.add_argument("--call-hold-ms", type=int, default=500,
                    help="CALLS: time between the ACK and the BYE of each call")
    ap.add_argument("--call-ring-ms", type=int, default=200,
                    help="CALLS: time between the callee's 180 and its 200")
    ap.add_argument("--start", default="",
                    help="first rate of the search, per scenario: CALLS=200,REGISTER=500")
    ap.add_argument("--cpu-warmup", type=int, default=None,
                    help="seconds of the same load, not measured, before each CPU step "
                         "(default 5; 2 with --quick; 0: none)")
    ap.add_argument("--cpu-attempts", type=int, default=2,
                    help="tries of a failed CPU step, each on a fresh start (default 2)")
    ap.add_argument("--no-tls-memory", action="store_true",
                    help="the memory phase without its idle TLS part (same as --tls-idle 0)")
    ap.add_argument("--cap", default="",
                    help="highest rate tried, per scenario (--start X --cap X: one step at X)")
    ap.add_argument("--cpu-rate", default="",
                    help="the common rate of the CPU step, per scenario (default: half the "
                         "lower of the two servers' first-round highest rates)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--commit-window-ms", type=int, default=None,
                    help="sipwarden's store.commit_window_ms (default: the server's own)")
    ap.add_argument("--kamailio-stateless", action="store_true",
                    help="Kamailio answers OPTIONS and REGISTER without transactions, as the "
                         "stock configuration does (and without nonce-count tracking)")
    ap.add_argument("--out", default=os.path.join(BENCH, "results"))
    ap.add_argument("--sipwarden-commit", default="")
    args = ap.parse_args()

    ctx = Ctx()
    ctx.work = args.work
    ctx.sipwarden = os.path.abspath(args.sipwarden)
    ctx.responder = os.path.abspath(args.responder)
    ctx.workers = args.workers
    ctx.commit_window_ms = args.commit_window_ms
    ctx.kamailio_stateless = args.kamailio_stateless
    ctx.udpload = os.path.abspath(args.udpload) if args.udpload else None
    ctx.tlsload = os.path.abspath(args.tlsload) if args.tlsload else None
    ctx.udp_sockets = args.udp_sockets
    ctx.tls_connections = args.tls_connections
    ctx.tls_threads = args.tls_threads
    tls_idle = 0 if args.no_tls_memory or args.no_memory else args.tls_idle
    ctx.sipp_runs = 0
    ctx.lock = threading.Lock()
    ctx.sipp_port = free_udp_port()
    # CALLS: the callee (SIPp UAS) and the SIPp that registers it, each on its own port
    ctx.uas_port = free_udp_port()
    while ctx.uas_port == ctx.sipp_port:
        ctx.uas_port = free_udp_port()
    ctx.reg_port = free_udp_port()
    while ctx.reg_port in (ctx.sipp_port, ctx.uas_port):
        ctx.reg_port = free_udp_port()
    ctx.call_hold_ms = args.call_hold_ms
    ctx.call_ring_ms = args.call_ring_ms
    quick = args.quick
    rounds = args.rounds or (1 if quick else 3)
    ctx.step_s = 4 if quick else 15
    cpu_s = 4 if quick else 10
    # A freshly started server's first seconds cost more than its steady state (Kamailio's
    # first step after a start cost it 2-6x its later ones): the CPU step is measured after
    # this much of the same load.
    cpu_warmup_s = args.cpu_warmup if args.cpu_warmup is not None else (2 if quick else 5)
    cpu_attempts = max(1, args.cpu_attempts)
    ctx.plan = {
        "start": {"OPTIONS": 5000, "REGISTER": 1500, "CALLS": 500, "OPTIONS-C": 20000,
                  "TLS-REGISTER": 1500},
        "cap": {"OPTIONS": 160000, "REGISTER": 96000, "CALLS": 32000, "OPTIONS-C": 640000,
                "TLS-REGISTER": 96000},
        "max_steps_first": 5 if quick else 9,
        "max_steps_later": 3 if quick else 5,
        "resolution": 0.12 if quick else 0.06,
    }
    ctx.plan["cpu_rate"] = {}
    for opt, key in ((args.start, "start"), (args.cap, "cap"), (args.cpu_rate, "cpu_rate")):
        for item in filter(None, opt.split(",")):
            sc, _, rate = item.partition("=")
            if sc not in KNOWN or not rate.isdigit() or int(rate) < 1:
                ap.error("--%s: expected SCENARIO=RATE, got %r" % (key.replace("_", "-"), item))
            ctx.plan[key][sc] = int(rate)
    mem_n = 20000 if quick else 100000
    mem_rate = 4000 if quick else 2500
    mem_settle = 40
    ctx.shm_mb = 8192  # tm keeps each transaction 5 s after its answer: ~2 GB at 12,000 reg/s
    scenarios = [s for s in args.scenarios.split(",") if s and s != "none"]
    for sc in scenarios:
        if sc not in KNOWN:
            ap.error("--scenarios: unknown scenario %r (known: %s)" % (sc, ",".join(KNOWN)))
    if "OPTIONS-C" in scenarios and not ctx.udpload:
        ap.error("OPTIONS-C needs --udpload")
    if ("TLS-REGISTER" in scenarios or tls_idle) and not ctx.tlsload:
        ap.error("TLS-REGISTER and the idle TLS memory need --tlsload")
    # Descriptors: 1,000 (TLS-REGISTER) or 5,000 (idle) connections at both ends; children
    # (the servers, tlsload) inherit the limit. As root the hard limit can be raised too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * MAX_CONNECTIONS + 1024
    for lim in ((max(soft, want), max(hard, want)), (max(soft, min(want, hard)), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, lim)
            break
        except (ValueError, OSError):
            continue
    ctx.cert = make_cert(ctx.work) if ("TLS-REGISTER" in scenarios or tls_idle) else None
    started = time.time()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")

    log("side by side: %d round(s), %s steps of %d s, %d workers/children, scenarios %s" % (
        rounds, "quick" if quick else "full", ctx.step_s, ctx.workers, ",".join(scenarios)))
    # The same users for both servers: 10,000 for OPTIONS and REGISTER, --callers and a callee
    # for CALLS, mem_n for the memory phase.
    ctx.sw_template, ctx.kam_db, ctx.inject, ctx.users_csv = {}, {}, {}, {}
    if set(scenarios) & {"OPTIONS", "REGISTER", "OPTIONS-C", "TLS-REGISTER"}:
        users = make_users(10000, "b")
        csv_path, ctx.inject["reg"], ctx.kam_db["reg"] = write_user_files(users, ctx.work, "reg")
        ctx.users_csv["reg"] = csv_path  # tlsload reads the same name,password CSV
        ctx.sw_template["reg"] = import_users(ctx, csv_path, "reg")
    if not args.no_memory:
        users = make_users(mem_n, "m")
        csv_path, ctx.inject["mem"], ctx.kam_db["mem"] = write_user_files(users, ctx.work, "mem")
        ctx.inject["mem10"] = write_user_files(users[:10], ctx.work, "mem10")[1]
        ctx.sw_template["mem"] = import_users(ctx, csv_path, "mem")
    if "CALLS" in scenarios:
        # --callers callers and one callee, the same for both servers: the callers in SIPp's
        # injection file with the callee to call, the callee with the UAS's port (its Contact).
        callers = make_users(args.callers, "c")
        callee = make_users(1, "callee")[0]
        csv_path, _, ctx.kam_db["call"] = write_user_files(callers + [callee], ctx.work, "call")
        ctx.inject["call"] = os.path.join(ctx.work, "inject_call_uac.csv")
        with open(ctx.inject["call"], "w") as f:
            f.write("SEQUENTIAL\n")
            for name, pw in callers:
                f.write("%s;%s;%s;\n" % (name, pw, callee[0]))
        ctx.inject["call_reg"] = os.path.join(ctx.work, "inject_call_reg.csv")
        with open(ctx.inject["call_reg"], "w") as f:
            f.write("SEQUENTIAL\n%s;%s;%d;\n" % (callee[0], callee[1], ctx.uas_port))
        ctx.sw_template["call"] = import_users(ctx, csv_path, "call")

    kver = subprocess.run(["kamailio", "-v"], capture_output=True, text=True).stdout
    sver = subprocess.run(["sipp", "-v"], capture_output=True, text=True).stdout
    results = {
        "timestamp": stamp, "quick": quick, "rounds": [], "scenarios": scenarios,
        "workers": ctx.workers, "cpus": os.cpu_count(), "step_seconds": ctx.step_s,
        "cpu_seconds": cpu_s, "cpu_warmup_seconds": cpu_warmup_s, "cpu_attempts": cpu_attempts,
        "plan": ctx.plan,
        "order": list(TARGETS),
        "sipwarden_commit": args.sipwarden_commit,
        "sipwarden_commit_window_ms": args.commit_window_ms,
        "kamailio_version": kver.splitlines()[0] if kver else "",
        "sipp_version": next((l.strip() for l in sver.splitlines() if "SIPp v" in l), ""),
        "kamailio_mode": "stateless (stock: sl replies, no nonce_count)"
        if ctx.kamailio_stateless else "stateful (t_newtran; nonce_count)",
        "kamailio_args": "-x fm -X fm -m %d -M 16" % ctx.shm_mb + (" -A STATELESS" if ctx.kamailio_stateless else "") + "; with TLS: -M %d -A WITH_TLS" % KAMAILIO_PKG_MB_TLS,
        "cpu_rate": {},
        "cpu_rate_basis": "half the lower of sipwarden's and Kamailio's first-round highest "
                          "clean rates; the response times (latency_p50_ms, latency_p99_ms) "
                          "are measured at that step" +
                          ("; set by --cpu-rate for %s" % ", ".join(
                              "%s=%d" % kv for kv in sorted(ctx.plan["cpu_rate"].items()))
                           if ctx.plan["cpu_rate"] else ""),
        "latency_method": {sc: LATENCY_METHOD[sc] for sc in scenarios},
        "options_c": {"tool": "bench/udpload.c", "sockets": args.udp_sockets,
                      "window": "max(1000, rate)", "timeout_ms": 2000}
        if "OPTIONS-C" in scenarios else None,
        "tls": {"tool": "bench/tlsload.cc", "connections": args.tls_connections,
                "threads": args.tls_threads, "timeout_ms": 5000,
                "certificate": "self-signed EC P-256 (both servers)",
                "kamailio": "-A WITH_TLS: tls.so, [server:default] verify_certificate = no, "
                            "tcp/tls_max_connections %d" % MAX_CONNECTIONS,
                "sipwarden": "[[listen]] tls, [connections] max_connections(_per_source) %d" %
                             MAX_CONNECTIONS,
                "ceiling": "n/a (the responder has no TLS)"}
        if "TLS-REGISTER" in scenarios else None,
        "calls": {"callers": args.callers, "ring_ms": args.call_ring_ms,
                  "hold_ms": args.call_hold_ms,
                  "ceiling": "n/a (the stateless responder cannot play a call)"}
        if "CALLS" in scenarios else None,
    }
    prior = {}
    for rnd in range(rounds):
        log("round %d/%d (%.0f s elapsed)" % (rnd + 1, rounds, time.time() - started))
        rr = {}
        for sc in scenarios:
            inject = {"REGISTER": ctx.inject.get("reg"), "CALLS": ctx.inject.get("call")}.get(sc)
            tag = "call" if sc == "CALLS" else "reg"
            tls = sc in TLS_SCENARIOS
            rr[sc] = {}
            for name in targets_for(sc):  # A B C, the same order every round
                t = make_target(ctx, name, tag, tls)
                t.start()
                try:
                    if sc == "CALLS":
                        register_callee(ctx, t)
                    rr[sc][name] = {"search": rate_search(ctx, t, sc, prior.get((sc, name)),
                                                          inject)}
                finally:
                    t.stop()
                log("  %s %s: %s/s" % (sc, name, rr[sc][name]["search"]["best"]))
            if sc not in results["cpu_rate"] and sc in ctx.plan["cpu_rate"]:
                results["cpu_rate"][sc] = ctx.plan["cpu_rate"][sc]
            if sc not in results["cpu_rate"]:
                both = [rr[sc]["sipwarden"]["search"]["best"], rr[sc]["kamailio"]["search"]["best"]]
                base = min(b for b in both if b) if any(both) else p_start(ctx, sc)
                results["cpu_rate"][sc] = nice(base / 2)
            rate = results["cpu_rate"][sc]
            for name in targets_for(sc):
                # The common rate is one both servers sustained in the search, so a failed CPU
                # step is an accident of that run (Kamailio's TLS children drop a connection,
                # or open none): up to cpu_attempts tries, each on a fresh start. The failed
                # tries stay in the JSON; none counts.
                tries = []
                for _ in range(cpu_attempts):
                    tries.append(cpu_step(ctx, name, tag, tls, sc, rate, cpu_s, cpu_warmup_s,
                                          inject))
                    if tries[-1]["cpu"].get("passed"):
                        break
                    log("  %s %s: CPU step at %d/s failed (try %d of %d)" % (
                        sc, name, rate, len(tries), cpu_attempts))
                rr[sc][name].update(tries[-1])
                # The last try is the result (passed, or the last to fail); the others failed.
                rr[sc][name]["cpu_failed_attempts"] = tries[:-1]
            for name in targets_for(sc):
                bests = [r[sc][name]["search"]["best"] for r in results["rounds"]] + \
                    [rr[sc][name]["search"]["best"]]
                good = [b for b in bests if b]
                prior[(sc, name)] = statistics.median(good) if good else None
        results["rounds"].append(rr)

    if not args.no_memory:
        log("memory (%.0f s elapsed)" % (time.time() - started))
        results["memory"] = {"bindings": mem_n, "rate": mem_rate, "settle_s": mem_settle,
                             "concurrent": True}
        # Both servers at once (memory does not depend on CPU contention; this halves the
        # time spent waiting for transactions to end).
        threads = [threading.Thread(target=memory_phase,
                                    args=(ctx, name, mem_n, mem_rate, mem_settle,
                                          results["memory"]))
                   for name in ("sipwarden", "kamailio")]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if tls_idle:
            # One server at a time (the handshakes take both cores), each freshly started.
            ti = {"connections": tls_idle, "hold_s": 12, "ping": True}
            for name in ("sipwarden", "kamailio"):
                # Kamailio 5.6.3's TCP processes sometimes die (SIGSEGV) while thousands of TLS
                # connections open: one more try on a fresh start, the failed one kept.
                failed = []
                for _ in range(2):
                    tls_idle_phase(ctx, name, tls_idle, ti["hold_s"], ti)
                    if ti[name].get("complete"):
                        break
                    failed.append(ti[name])
                ti[name]["failed_attempts"] = [f for f in failed if f is not ti[name]]
            a, b = ti.get("sipwarden") or {}, ti.get("kamailio") or {}
            if a.get("complete") and b.get("complete") and b.get("pss_per_connection_bytes"):
                ti["sipwarden/kamailio"] = round(a["pss_per_connection_bytes"] /
                                                 b["pss_per_connection_bytes"], 2)
            results["memory"]["tls_idle"] = ti

    results["summary"] = summarize(results)
    results["elapsed_s"] = round(time.time() - started, 1)
    kv = results["kamailio_version"].split()
    sv = results["sipp_version"].split()
    results["table"] = (
        "sipwarden %s side by side with Kamailio %s%s and a stateless responder; SIPp %s, "
        "udpload, tlsload; UDP (TLS for TLS-REGISTER) on loopback; %d workers = %d children; "
        "%d CPUs; %s run\n" % (
            args.sipwarden_commit or "?", kv[2] if len(kv) > 2 else "?",
            " (stateless, -A STATELESS)" if ctx.kamailio_stateless else "",
            sv[1] if len(sv) > 1 else "?", ctx.workers, ctx.workers, os.cpu_count() or 0,
            "quick" if quick else "full") +
        ("sipwarden with store.commit_window_ms = %d\n" % args.commit_window_ms
         if args.commit_window_ms is not None else "") + table(results))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "%s%s.json" % (stamp, "-quick" if quick else ""))
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print()
    print(results["table"])
    print()
    print("elapsed %.0f s; JSON: %s" % (results["elapsed_s"], os.path.relpath(path, ROOT)))


def p_start(ctx, sc):
    return ctx.plan["start"][sc]


if __name__ == "__main__":
    main()
