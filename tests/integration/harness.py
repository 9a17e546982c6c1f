"""Black-box test harness for sipwarden (Python 3 standard library only).

What it gives the tests:

- ``Server``: starts ``sipwarden serve`` with a generated configuration on loopback addresses
  and free random high ports (retrying when a port turns out to be taken), in a temporary data
  directory; waits for ``event=started``; collects the log lines; stops the process it started
  (by its PID: SIGTERM, then SIGKILL after 10 s).
- Message building: ``Request`` (unique branch, Call-ID and tags; ``ack()`` and ``cancel()``
  for the same transaction) and a rough parser, ``parse_message()``: status code, reason,
  headers as a dict of lists (lower-case names, compact forms expanded), body.
- Clients: ``UdpClient`` (datagrams), ``StreamClient`` (TCP and TLS, Content-Length framing).
- ``main()``: ``python3 test_x.py BUILD_DIR [unittest args]`` with the binary at
  ``BUILD_DIR/sipwarden``; exits non-zero when a test fails.

Every wait here is bounded in time, every loop in count.
"""

import hashlib
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCENARIOS = os.path.join(HERE, "scenarios")
RFC4475_DIR = os.path.join(REPO, "tests", "conformance", "rfc4475")

BINARY = None  # set by main()

STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
PORT_RANGE = (20000, 60000)
START_ATTEMPTS = 8


def binary():
    if BINARY is None:
        raise RuntimeError("the sipwarden binary is not set: run as 'test_x.py BUILD_DIR'")
    return BINARY


def release_binary():
    """The binary given, unless its build is sanitized (CI's build-asan): then the Release
    build that scripts/build.sh makes in build/ (scripts/test.sh builds it before the tests).
    For what a sanitized build cannot show: memory given back (ASan keeps freed memory in its
    quarantine), or a server out of file descriptors (the sanitizers' runtime needs some of its
    own, and reports false errors without them)."""
    given = binary()
    try:
        with open(os.path.join(os.path.dirname(given), "CMakeCache.txt")) as f:
            sanitized = "SIPWARDEN_SANITIZE:BOOL=ON" in f.read()
    except FileNotFoundError:
        sanitized = False
    if not sanitized:
        return given
    release = os.path.join(REPO, "build", "sipwarden")
    if not os.access(release, os.X_OK):
        raise AssertionError("%s is a sanitized build and there is no Release build at %s "
                             "(scripts/build.sh)" % (given, release))
    return release


def main():
    """Entry point of every test file: ``test_x.py BUILD_DIR [unittest options]``."""
    global BINARY
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: %s BUILD_DIR [unittest options]\n" % sys.argv[0])
        sys.exit(2)
    build_dir = sys.argv.pop(1)
    BINARY = os.path.join(os.path.abspath(build_dir), "sipwarden")
    if not os.access(BINARY, os.X_OK):
        sys.stderr.write("no executable sipwarden at %s\n" % BINARY)
        sys.exit(2)
    unittest.main(module="__main__", verbosity=2, exit=True)


# ---------------------------------------------------------------------------------------------
# Addresses and ports.

def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_is_free(host, port, kinds=("udp", "tcp")):
    """True when `port` can be bound on `host` for every kind ("udp"/"tcp") right now."""
    for kind in kinds:
        stype = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
        s = socket.socket(_family(host), stype)
        try:
            if stype == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def random_free_port(hosts=("127.0.0.1",), kinds=("udp", "tcp"), avoid=()):
    """A random port in PORT_RANGE free on all `hosts` for all `kinds` (at most 200 tries)."""
    for _ in range(200):
        port = random.randint(*PORT_RANGE)
        if port in avoid:
            continue
        if all(port_is_free(h, port, kinds) for h in hosts):
            return port
    raise RuntimeError("no free port found in %d..%d" % PORT_RANGE)


def hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


# ---------------------------------------------------------------------------------------------
# The server process.

class ServerStartError(Exception):
    pass


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError("unsupported TOML value %r" % (v,))


class Server:
    """One ``sipwarden serve`` process on loopback.

    transports: which of "udp", "tcp", "tls" to listen on (UDP and TCP share one port, TLS has
    its own). addresses: "127.0.0.1" and/or "::1". sections: extra TOML, {"connections":
    {"idle_timeout_s": 2}, ...}. server: extra [server] keys. binary: the sipwarden to run
    (default: the one the test file was given; release_binary() for the Release build).
    Attributes after start(): port, tls_port, pid, lines (the log, stdout and stderr together),
    tmpdir, data_dir.
    """

    def __init__(self, transports=("udp", "tcp", "tls"), addresses=("127.0.0.1",),
                 domain="example.com", workers=2, server=None, sections=None, tmpdir=None,
                 binary=None):
        self._binary = binary
        self.transports = tuple(transports)
        self.addresses = tuple(addresses)
        self.domain = domain
        self.workers = workers
        # Open transactions (e.g. a UDP non-INVITE one lingers 64*T1) would hold a graceful
        # stop for the whole default grace period: keep it short unless a test sets it.
        self.server_keys = {"shutdown_grace_ms": 300}
        self.server_keys.update(server or {})
        self.sections = {k: dict(v) for k, v in (sections or {}).items()}
        self._own_tmpdir = tmpdir is None
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="sipwarden-it-")
        self.data_dir = os.path.join(self.tmpdir, "data")
        self.config_path = os.path.join(self.tmpdir, "sipwarden.toml")
        self.port = None
        self.tls_port = None
        self.proc = None
        self.lines = []
        self._cond = threading.Condition()
        self._reader = None
        self.returncode = None

    def executable(self):
        """The sipwarden binary this server runs (its `user` and `ban` commands too)."""
        return self._binary or binary()

    # -- configuration ---------------------------------------------------------------------

    def config_text(self):
        out = ["[server]",
               "domain = %s" % toml_value(self.domain),
               "data_dir = %s" % toml_value(self.data_dir),
               "workers = %d" % self.workers]
        for k, v in self.server_keys.items():
            out.append("%s = %s" % (k, toml_value(v)))
        out.append("")
        for address in self.addresses:
            for t in self.transports:
                port = self.tls_port if t == "tls" else self.port
                out += ["[[listen]]", "transport = %s" % toml_value(t),
                        "address = %s" % toml_value(address), "port = %d" % port, ""]
        for name, keys in self.sections.items():
            out.append("[%s]" % name)
            for k, v in keys.items():
                out.append("%s = %s" % (k, toml_value(v)))
            out.append("")
        return "\n".join(out)

    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write(self.config_text())

    # -- lifecycle -------------------------------------------------------------------------

    def start(self):
        """Starts the server on free ports, retrying with other ports when one is taken."""
        last = ""
        for _ in range(START_ATTEMPTS):
            kinds = tuple(k for k in ("udp", "tcp") if k in self.transports) or ("udp",)
            self.port = random_free_port(self.addresses, kinds)
            self.tls_port = random_free_port(self.addresses, ("tcp",), avoid=(self.port,))
            self.write_config()
            ok, last = self._launch()
            if ok:
                return self
            # A port taken between our check and the server's bind: try other ports. Any
            # other startup failure is a real error.
            if "in use" not in last and "cannot listen" not in last:
                break
        raise ServerStartError("sipwarden did not start:\n" + last + "\nconfig:\n" +
                               self.config_text())

    def _launch(self):
        self.lines = []
        self.proc = subprocess.Popen([self.executable(), "serve", "--config", self.config_path],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.tmpdir)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with self._cond:
            while time.monotonic() < deadline:
                if any("event=started" in l for l in self.lines):
                    return True, ""
                if any("event=startup_failed" in l for l in self.lines) or \
                        self.proc.poll() is not None:
                    break
                self._cond.wait(0.1)
        # Failed or hung: make sure the process is gone, then report its output.
        self._terminate()
        self._reader.join(5)
        return False, "\n".join(self.lines)

    def _read(self, proc):
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _terminate(self):
        """SIGTERM to our own process (by PID), SIGKILL after STOP_TIMEOUT_S."""
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.returncode = self.proc.returncode
            return self.returncode
        try:
            os.kill(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.returncode = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # SIGKILL to this PID only
            self.returncode = self.proc.wait(5)
        return self.returncode

    def stop(self):
        """Stops the server; returns its exit code. Safe to call twice."""
        rc = self._terminate()
        if self._reader is not None:
            self._reader.join(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        return rc

    def cleanup(self):
        self.stop()
        if self._own_tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait_for_log(self, pattern, timeout=10.0, start=0):
        """The first log line (from index `start`) matching regex `pattern`, or None."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if rx.search(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.2))

    def log(self):
        with self._cond:
            return "\n".join(self.lines)

    # -- addresses -------------------------------------------------------------------------

    def addr(self, transport="udp", host="127.0.0.1"):
        return (host, self.tls_port if transport == "tls" else self.port)

    def self_uri(self, transport="udp", host="127.0.0.1"):
        """A Request-URI naming the server itself (no user part, local host)."""
        return "sip:" + hostport(host, self.addr(transport, host)[1])


# ---------------------------------------------------------------------------------------------
# Building requests.

def new_branch():
    return "z9hG4bK" + uuid.uuid4().hex[:20]


def new_tag():
    return uuid.uuid4().hex[:12]


def new_call_id():
    return uuid.uuid4().hex + "@sipwarden.test"


class Request:
    """A request with unique transaction identifiers; str()/bytes() give the wire form."""

    def __init__(self, method, ruri, transport="UDP", local=("127.0.0.1", 5060),
                 from_uri="sip:alice@example.com", to_uri=None, to_tag=None, cseq=1,
                 cseq_method=None, max_forwards=70, headers=(), body=b"", content_type=None,
                 branch=None, call_id=None, from_tag=None, rport=True):
        self.method = method
        self.ruri = ruri
        self.transport = transport.upper()
        self.local = local
        self.branch = branch or new_branch()
        self.call_id = call_id or new_call_id()
        self.from_uri = from_uri
        self.from_tag = from_tag or new_tag()
        self.to_uri = to_uri or ruri
        self.to_tag = to_tag
        self.cseq = cseq
        self.cseq_method = cseq_method or method
        self.max_forwards = max_forwards
        self.headers = list(headers)
        self.body = body if isinstance(body, bytes) else body.encode()
        self.content_type = content_type
        self.rport = rport

    def via(self):
        v = "SIP/2.0/%s %s;branch=%s" % (self.transport, hostport(*self.local[:2]), self.branch)
        return v + (";rport" if self.rport else "")

    def to_header(self):
        return "<%s>" % self.to_uri + (";tag=%s" % self.to_tag if self.to_tag else "")

    def encode(self):
        lines = ["%s %s SIP/2.0" % (self.method, self.ruri),
                 "Via: " + self.via(),
                 "Max-Forwards: %d" % self.max_forwards,
                 "From: <%s>;tag=%s" % (self.from_uri, self.from_tag),
                 "To: " + self.to_header(),
                 "Call-ID: " + self.call_id,
                 "CSeq: %d %s" % (self.cseq, self.cseq_method)]
        for name, value in self.headers:
            lines.append("%s: %s" % (name, value))
        if self.content_type and self.body:
            lines.append("Content-Type: " + self.content_type)
        lines.append("Content-Length: %d" % len(self.body))
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def __bytes__(self):
        return self.encode()

    def ack(self, response):
        """The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same branch and Via."""
        to = response.header("to") if response is not None else None
        r = Request("ACK", self.ruri, self.transport, self.local, from_uri=self.from_uri,
                    to_uri=self.to_uri, cseq=self.cseq, branch=self.branch,
                    call_id=self.call_id, from_tag=self.from_tag,
                    max_forwards=self.max_forwards, rport=self.rport)
        if to is not None:
            r.to_header = lambda: to  # the To of the response, with its tag
        return r

    def cancel(self):
        """The CANCEL of this request (RFC 3261 §9.1): same branch, Request-URI, To."""
        return Request("CANCEL", self.ruri, self.transport, self.local, from_uri=self.from_uri,
                       to_uri=self.to_uri, to_tag=self.to_tag, cseq=self.cseq,
                       branch=self.branch, call_id=self.call_id, from_tag=self.from_tag,
                       max_forwards=self.max_forwards, rport=self.rport)


# ---------------------------------------------------------------------------------------------
# Parsing (roughly: enough to check codes and headers).

COMPACT = {"v": "via", "i": "call-id", "f": "from", "t": "to", "m": "contact",
           "l": "content-length", "c": "content-type", "k": "supported", "e": "content-encoding",
           "s": "subject", "o": "event", "r": "refer-to", "u": "allow-events", "x":
           "session-expires", "a": "accept-contact", "b": "referred-by", "d": "request-disposition",
           "j": "reject-contact", "y": "identity"}


class Message:
    def __init__(self, raw):
        self.raw = raw
        self.start_line = ""
        self.status = None
        self.reason = ""
        self.method = None
        self.headers = {}
        self.body = b""

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def all(self, name):
        return self.headers.get(name.lower(), [])

    def cseq_method(self):
        c = self.header("cseq")
        return c.split()[-1] if c and c.split() else None

    def to_tag(self):
        to = self.header("to") or ""
        m = re.search(r";\s*tag\s*=\s*([^;\s,>]+)", to)
        return m.group(1) if m else None

    def __repr__(self):
        return "<%s>" % self.start_line


def parse_message(raw):
    """Parses a SIP message roughly; returns a Message (status is None for a request)."""
    if isinstance(raw, str):
        raw = raw.encode()
    m = Message(raw)
    head, sep, body = raw.partition(b"\r\n\r\n")
    m.body = body
    text = head.decode("utf-8", "replace")
    lines = text.split("\r\n")
    m.start_line = lines[0]
    parts = lines[0].split(" ", 2)
    if parts[0].startswith("SIP/") and len(parts) >= 2:
        try:
            m.status = int(parts[1])
        except ValueError:
            m.status = None
        m.reason = parts[2] if len(parts) > 2 else ""
    else:
        m.method = parts[0]
    # Unfold continuation lines, then split name: value.
    unfolded = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip()
        else:
            unfolded.append(line)
    for line in unfolded:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name = name.strip().lower()
        name = COMPACT.get(name, name)
        m.headers.setdefault(name, []).append(value.strip())
    return m


def content_length(head_text):
    m = re.search(r"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head_text, re.I | re.M)
    return int(m.group(1)) if m else 0


# ---------------------------------------------------------------------------------------------
# UDP.

class UdpClient:
    """A UDP socket bound on loopback (port 0: any free port)."""

    def __init__(self, host="127.0.0.1", port=0):
        self.sock = socket.socket(_family(host), socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.local = self.sock.getsockname()[:2]

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data, dest):
        self.sock.sendto(bytes(data), dest)

    def recv(self, timeout=2.0):
        """(bytes, source) of the next datagram, or (None, None) after `timeout` seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, src = self.sock.recvfrom(65535)
            return data, src[:2]
        except (socket.timeout, BlockingIOError):
            return None, None
        except ConnectionRefusedError:  # ICMP from an earlier send
            return None, None

    def recv_all(self, duration):
        """Every datagram received within `duration` seconds (at most 1000)."""
        out = []
        deadline = time.monotonic() + duration
        for _ in range(1000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            data, _ = self.recv(remaining)
            if data is not None:
                out.append(data)
        return out

    def wait_response(self, request=None, timeout=3.0, cseq_method=None):
        """The next response for `request` (same Call-ID and CSeq method), or None."""
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            data, _ = self.recv(remaining)
            if data is None:
                return None
            msg = parse_message(data)
            if msg.status is None:
                continue
            if request is not None:
                if msg.header("call-id") != request.call_id:
                    continue
                if msg.cseq_method() != (cseq_method or request.cseq_method):
                    continue
            return msg
        return None

    def request(self, req, dest, timeout=3.0):
        """Sends `req` and waits for its final response (provisional ones are skipped)."""
        self.send(req, dest)
        deadline = time.monotonic() + timeout
        for _ in range(100):
            msg = self.wait_response(req, max(0.0, deadline - time.monotonic()))
            if msg is None or msg.status >= 200:
                return msg
        return None


# ---------------------------------------------------------------------------------------------
# TCP and TLS.

def insecure_tls_context(minimum=ssl.TLSVersion.TLSv1_2, maximum=None, ciphers=None):
    """A client context that does not verify the (self-signed) certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    with warnings.catch_warnings():  # TLSVersion.TLSv1_1 is deprecated: tests use it on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    return ctx


class StreamClient:
    """A TCP or TLS connection with Content-Length framing of what is received."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.local = sock.getsockname()[:2]

    @classmethod
    def tcp(cls, dest, source=None, timeout=5.0):
        s = socket.socket(_family(dest[0]), socket.SOCK_STREAM)
        s.settimeout(timeout)
        if source is not None:
            s.bind((source, 0))
        try:
            s.connect(dest)
        except OSError:
            s.close()
            raise
        return cls(s)

    @classmethod
    def tls(cls, dest, context=None, source=None, timeout=5.0, server_hostname=None):
        """Connects and completes the TLS handshake; raises ssl.SSLError when refused."""
        ctx = context or insecure_tls_context()
        raw = socket.socket(_family(dest[0]), socket.SOCK_STREAM)
        raw.settimeout(timeout)
        if source is not None:
            raw.bind((source, 0))
        try:
            raw.connect(dest)
            s = ctx.wrap_socket(raw, server_hostname=server_hostname)
        except Exception:
            raw.close()
            raise
        return cls(s)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(bytes(data))

    def _fill(self, deadline):
        """Reads once; returns False at EOF/reset/timeout."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError):
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def recv_raw(self, n, timeout=2.0):
        """Up to `n` bytes (whatever arrives first), b'' on EOF/timeout."""
        deadline = time.monotonic() + timeout
        if not self.buf:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_message(self, timeout=3.0):
        """The next whole message (bytes), or None on timeout/EOF."""
        deadline = time.monotonic() + timeout
        for _ in range(10000):
            # Skip keep-alive CRLFs (pongs) between messages.
            while self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[:end].decode("utf-8", "replace")
                total = end + 4 + content_length(head)
                if len(self.buf) >= total:
                    msg, self.buf = self.buf[:total], self.buf[total:]
                    return msg
            if not self._fill(deadline):
                return None
        return None

    def wait_response(self, request=None, timeout=3.0):
        deadline = time.monotonic() + timeout
        for _ in range(100):
            data = self.recv_message(max(0.0, deadline - time.monotonic()))
            if data is None:
                return None
            msg = parse_message(data)
            if msg.status is None:
                continue
            if request is not None and (msg.header("call-id") != request.call_id or
                                        msg.cseq_method() != request.cseq_method):
                continue
            return msg
        return None

    def request(self, req, timeout=3.0):
        """Sends `req`, returns its final response (or None)."""
        self.send(req)
        deadline = time.monotonic() + timeout
        for _ in range(100):
            msg = self.wait_response(req, max(0.0, deadline - time.monotonic()))
            if msg is None or msg.status >= 200:
                return msg
        return None

    def closed_by_peer(self, timeout=5.0):
        """True if the peer closes (EOF or reset) within `timeout`; data received is kept."""
        deadline = time.monotonic() + timeout
        for _ in range(10000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            except ssl.SSLError:
                return True
            except OSError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def peer_cert_der(self):
        return self.sock.getpeercert(binary_form=True)

    def tls_version(self):
        return self.sock.version()


# ---------------------------------------------------------------------------------------------
# Certificates.

def check_pipelined_and_split(test, client, make_request):
    """Over a stream `client`: two requests from make_request() sent in one write, then one
    request in three writes 0.2 s apart; `test` asserts that each is answered 200."""
    a, b = make_request(), make_request()
    client.send(bytes(a) + bytes(b))
    for req in (a, b):
        resp = client.wait_response(req)
        test.assertIsNotNone(resp, "no answer to the pipelined " + req.call_id)
        test.assertEqual(resp.status, 200, resp.raw)
    split = make_request()
    data = bytes(split)
    for part in (data[:10], data[10:200], data[200:]):
        client.send(part)
        time.sleep(0.2)
    resp = client.wait_response(split)
    test.assertIsNotNone(resp, "no answer to the request sent in three parts")
    test.assertEqual(resp.status, 200, resp.raw)


def sha256_der(der):
    return hashlib.sha256(der).hexdigest()


def pem_file_der(path):
    """The DER of the first certificate in a PEM file."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    if not m:
        raise ValueError("no certificate in %s" % path)
    return ssl.PEM_cert_to_DER_cert(m.group(0))


def make_cert(directory, name, cn="sip.example.com", key="ec"):
    """Generates a self-signed certificate and key with openssl; returns (cert, key) paths."""
    cert = os.path.join(directory, name + "-cert.pem")
    keyf = os.path.join(directory, name + "-key.pem")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" else \
        ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", keyf, "-out", cert,
                    "-days", "365", "-subj", "/CN=" + cn, "-addext",
                    "subjectAltName=DNS:%s,IP:127.0.0.1" % cn],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    return cert, keyf


def describe_cert(der):
    """`openssl x509 -text` of a DER certificate."""
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-text"], input=der,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return r.stdout.decode("utf-8", "replace")


def run(cmd, timeout=60, **kw):
    """subprocess.run with output captured as text and a bound on time."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, **kw)
