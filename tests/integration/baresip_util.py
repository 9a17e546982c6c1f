"""baresip 1.0.0 (Debian baresip-core) as a test peer (Python 3 standard library only).

- ``Baresip``: one headless baresip process (PEERS.md: ausine/aubridge audio, stdio,
  net_interface 127.0.0.1, sip_listen on a free loopback port, an empty contacts file, one
  account with outbound=sip:HOST:PORT;transport=T), driven through a stdin pipe, its output
  (``-s``: every SIP message, TLS decrypted) collected line by line. Optional: answermode,
  mediaenc (SRTP, which also loads srtp.so), and its own range of RTP ports.
- ``free_port_range()``: N consecutive free ports on loopback (a phone's RTP and RTCP).
- ``RtpCapture``: dumpcap on ``lo`` with a capture filter, then per-direction packet counts
  read back with tshark. Needs root (or dumpcap's capabilities).

Every wait is bounded in time, every loop in count; only the PIDs started here are killed.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BARESIP = shutil.which("baresip")
STDBUF = shutil.which("stdbuf")
DUMPCAP = shutil.which("dumpcap")
TSHARK = shutil.which("tshark")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TRACE_HEADER = re.compile(r"^(UDP|TCP|TLS) \S+ -> \S+$")

CONFIG = """\
module_path\t\t/usr/lib/baresip/modules
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{port}
net_interface\t\t127.0.0.1
audio_player\t\taubridge,nul
audio_source\t\tausine,400
audio_alert\t\taubridge,nul
ausrc_srate\t\t48000
ausrc_channels\t\t2
module\t\t\tstdio.so
module\t\t\tg711.so
module\t\t\taubridge.so
module\t\t\tausine.so
module_tmp\t\taccount.so
module_app\t\tmenu.so
"""


def free_port_range(count, tries=200, even=False):
    """The first port of `count` consecutive ports free for UDP and TCP on 127.0.0.1; an even
    one with `even` (baresip's rtp_ports: libre rounds the RTP port it draws down to an even
    number, so a range starting at an odd port may yield the port below it)."""
    for _ in range(tries):
        first = harness.random_free_port(kinds=("udp", "tcp"))
        if even and first % 2:
            first -= 1
            if not harness.port_is_free("127.0.0.1", first, ("udp", "tcp")):
                continue
        if first + count > harness.PORT_RANGE[1]:
            continue
        if all(harness.port_is_free("127.0.0.1", first + i, ("udp", "tcp"))
               for i in range(1, count)):
            return first
    raise RuntimeError("no range of %d free ports found" % count)


class Baresip:
    """One baresip process with its own configuration directory; stdin is a pipe.

    answermode: "auto" to answer every incoming call. mediaenc: e.g. "srtp-mand" (srtp.so is
    loaded then). rtp_ports: (first, last) for the media sockets, first even (see
    free_port_range), or None for baresip's default range.
    """

    def __init__(self, workdir, user, password, server, transport, answermode=None,
                 mediaenc=None, rtp_ports=None):
        self.dir = tempfile.mkdtemp(prefix="baresip-%s-%s-" % (user, transport), dir=workdir)
        self.user = user
        self.transport = transport
        # sip_listen's port for UDP/TCP, and the next one for TLS: both must be free.
        port = None
        for _ in range(50):
            p = harness.random_free_port(kinds=("udp", "tcp"))
            if harness.port_is_free("127.0.0.1", p + 1, ("udp", "tcp")):
                port = p
                break
        self.port = port
        config = CONFIG.format(port=port)
        if rtp_ports is not None:
            config += "rtp_ports\t\t%d-%d\n" % tuple(rtp_ports)
        if mediaenc:
            config += "module\t\t\tsrtp.so\n"
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(config)
        open(os.path.join(self.dir, "contacts"), "w").close()
        host, sport = server.addr(transport)
        account = ('<sip:%s@%s;transport=%s>;auth_user=%s;auth_pass=%s;'
                   'outbound="sip:%s:%d;transport=%s";regint=600'
                   % (user, server.domain, transport, user, password, host, sport, transport))
        if answermode:
            account += ";answermode=" + answermode
        if mediaenc:
            account += ";mediaenc=" + mediaenc
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write(account + "\n")
        self.lines = []
        self.cond = threading.Condition()
        cmd = ([STDBUF, "-oL"] if STDBUF else []) + [BARESIP, "-f", self.dir, "-s"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = ANSI.sub("", raw.decode("utf-8", "replace").rstrip("\n"))
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def output(self, start=0):
        """The output so far (from line `start`), one string."""
        with self.cond:
            return "\n".join(self.lines[start:])

    def mark(self):
        """The number of lines so far: pass it as `start` to look only at what follows."""
        with self.cond:
            return len(self.lines)

    def wait_for(self, patterns, timeout, start=0):
        """The first regex among `patterns` found in the output from line `start` (returns
        the pattern), or None after `timeout` s or when baresip exits."""
        rxs = [re.compile(p) for p in patterns]
        deadline = time.monotonic() + timeout
        with self.cond:
            for _ in range(100000):
                text = "\n".join(self.lines[start:])
                for rx in rxs:
                    if rx.search(text):
                        return rx.pattern
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(remaining, 0.2))
        return None

    def messages(self, start=0):
        """The SIP messages in the trace (``-s``) from line `start`, parsed
        (harness.Message). baresip prints "TLS 127.0.0.1:A -> 127.0.0.1:B" and then the
        message, every line of it ending in CR; the first line without one ends it."""
        with self.cond:
            lines = list(self.lines[start:])
        out = []
        i = 0
        for _ in range(len(lines) + 1):
            if i >= len(lines):
                break
            if not TRACE_HEADER.match(lines[i]):
                i += 1
                continue
            block = []
            i += 1
            while i < len(lines) and lines[i].endswith("\r"):
                block.append(lines[i][:-1])
                i += 1
            if block:
                out.append(harness.parse_message("\r\n".join(block)))
        return out

    def command(self, text):
        """One line to baresip's stdin ("/dial sip:bob@example.com", "/hangup")."""
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_registered(self, timeout):
        """None once baresip reports its REGISTER's 200 and "registered successfully", else
        the reason (what it reported instead)."""
        t = self.transport.upper()
        ok = r"\{0/%s/v4\} 200 OK" % t
        failed = r"Register: .*|\{0/%s/v4\} [3-6][0-9][0-9] " % t
        got = self.wait_for([ok, failed], timeout)
        if got != ok:
            return "no 200 OK for the REGISTER within %.0f s (matched %r)" % (timeout, got)
        if self.wait_for([r"registered successfully"], 5) is None:
            return "200 OK but no 'registered successfully'"
        return None

    def quit(self):
        """'/quit' through the pipe; SIGKILL to this PID if still running after 5 s."""
        if self.proc.poll() is None:
            try:
                self.command("/quit")
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.reader.join(5)
        for s in (self.proc.stdin, self.proc.stdout):
            try:
                s.close()
            except OSError:
                pass


class RtpCapture:
    """dumpcap on lo with `capture_filter` into a pcap file in `workdir`; stop() ends it (by
    its PID) and packets() reads the UDP packets back with tshark."""

    def __init__(self, workdir, capture_filter, start_timeout=10.0):
        self.path = os.path.join(workdir, "rtp-%d.pcapng" % time.monotonic_ns())
        self.filter = capture_filter
        self.proc = subprocess.Popen([DUMPCAP, "-q", "-i", "lo", "-f", capture_filter, "-w",
                                      self.path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # dumpcap says "Capturing on 'Loopback: lo'" once the filter is installed.
        self.stderr = b""
        deadline = time.monotonic() + start_timeout
        os.set_blocking(self.proc.stderr.fileno(), False)
        for _ in range(1000):
            try:
                chunk = self.proc.stderr.read()
            except (BlockingIOError, OSError):
                chunk = None
            if chunk:
                self.stderr += chunk
            if b"Capturing on" in self.stderr:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dumpcap did not start: %s"
                                   % self.stderr.decode("utf-8", "replace"))
            time.sleep(0.05)

    def stop(self):
        """SIGINT to dumpcap (it flushes the file), SIGKILL after 5 s. Safe to call twice."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        try:
            rest = self.proc.stderr.read()
            if rest:
                self.stderr += rest
        except (BlockingIOError, OSError, ValueError):
            pass
        try:
            self.proc.stderr.close()
        except OSError:
            pass

    def packets(self):
        """[(src_port, dst_port, udp_length)] of every UDP packet captured, in order (UDP
        length: 8 bytes of header plus the payload)."""
        r = harness.run([TSHARK, "-n", "-r", self.path, "-T", "fields", "-e", "udp.srcport",
                         "-e", "udp.dstport", "-e", "udp.length"], timeout=60)
        out = []
        for line in r.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and all(p.isdigit() for p in parts):
                out.append(tuple(int(p) for p in parts))
        return out

    def between(self, src_port, dst_port):
        """The UDP lengths of the packets captured from `src_port` to `dst_port`."""
        return [n for s, d, n in self.packets() if (s, d) == (src_port, dst_port)]
