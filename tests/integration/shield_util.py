"""Helpers for the shield's black-box tests (Python 3 standard library only).

Built on harness.py and registrar_util.py (both used read-only):

- ``ShieldServer``: a registrar_util.RegServer with [shield] (and optionally [tls]) keys; lists
  allowed. Reads the security events (``events_json()``, ``events_text()``, ``wait_event()``)
  and runs ``sipwarden ban ...`` with its own --config (``ban()``, ``banned_addresses()``).
- ``SourceRegClient``: registrar_util.RegClient from a chosen loopback source address
  (127.0.0.N), over UDP, TCP or TLS.
- ``options()``: one OPTIONS from a source address; the final response or None.
- ``run_tool()``: a sipvicious/nmap/SIPp run bounded in time, its output as one string.
- ``flood_scenario()``: a SIPp scenario (written to a file) of unauthenticated REGISTERs.
- ``tcp_refused()``; ``ban_many_and_probe()``: many scanner sources banned in a row, each
  probed after its ban (answers counted per source).

Every wait is bounded in time, every loop in count.
"""

import json
import os
import re
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import registrar_util as ru  # noqa: E402

SVMAP = shutil.which("svmap")
SVWAR = shutil.which("svwar")
SVCRACK = shutil.which("svcrack")
SIPP = shutil.which("sipp")
NMAP = shutil.which("nmap")
OPENSSL = shutil.which("openssl")
FAIL2BAN_REGEX = shutil.which("fail2ban-regex")

EVENT_FIELDS = ("time", "type", "source", "port", "transport", "user", "reason", "action")
TEXT_EVENT_RE = re.compile(
    r'^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) sipwarden security: '
    r'type=(?P<type>\S+) source=(?P<source>\S+) port=(?P<port>\d+) '
    r'transport=(?P<transport>\S+) user="(?P<user>[^"]*)" action=(?P<action>\S+) '
    r'reason="(?P<reason>[^"]*)"$')


# ---------------------------------------------------------------------------------------------
# The server.

class ShieldServer(ru.RegServer):
    """RegServer with a [shield] section (and [tls] when given)."""

    def __init__(self, shield=None, tls=None, transports=("udp",), **kw):
        sections = dict(kw.pop("sections", None) or {})
        if shield is not None:
            sections["shield"] = dict(shield)
        if tls is not None:
            sections["tls"] = dict(tls)
        super().__init__(transports=transports, sections=sections, **kw)

    def add_user_offline(self, name, password, require_tls=False):
        """`sipwarden user add` before start(): the server loads the user at start-up, so no
        test has to poll for it (polling with wrong answers would count as failures)."""
        os.makedirs(self.tmpdir, exist_ok=True)
        pre = os.path.join(self.tmpdir, "users.toml")
        with open(pre, "w") as f:
            f.write("[server]\ndomain = %s\ndata_dir = %s\n"
                    % (harness.toml_value(self.domain), harness.toml_value(self.data_dir)))
        args = ["user", "add", name, "--password-stdin"] + (["--require-tls"] if require_tls
                                                            else [])
        r = harness.run([harness.binary(), *args, "--config", pre], input=password + "\n",
                        timeout=30)
        if r.returncode != 0:
            raise AssertionError("user add %s exited %d\nstdout: %s\nstderr: %s"
                                 % (name, r.returncode, r.stdout, r.stderr))

    # -- security events -----------------------------------------------------------------

    @property
    def events_json_path(self):
        return os.path.join(self.data_dir, "security-events.jsonl")

    @property
    def events_text_path(self):
        return os.path.join(self.data_dir, "security-events.log")

    def events_text(self):
        try:
            with open(self.events_text_path, errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def events_json_lines(self):
        try:
            with open(self.events_json_path, errors="replace") as f:
                return [l for l in f.read().splitlines() if l.strip()]
        except FileNotFoundError:
            return []

    def events_json(self):
        """Every JSON event (dicts); a line that is not JSON raises ValueError naming it."""
        out = []
        for line in self.events_json_lines():
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise ValueError("not JSON: %r (%s)" % (line, e))
        return out

    def text_events(self):
        """Every text event as a dict of its fields (lines not in the format: {'raw': line})."""
        out = []
        for line in self.events_text():
            m = TEXT_EVENT_RE.match(line)
            out.append(m.groupdict() if m else {"raw": line})
        return out

    def find_events(self, **fields):
        """JSON events whose fields equal the given ones (reason_contains=… for a substring)."""
        contains = fields.pop("reason_contains", None)
        out = []
        for e in self.events_json():
            if all(e.get(k) == v for k, v in fields.items()) and \
                    (contains is None or contains in str(e.get("reason", ""))):
                out.append(e)
        return out

    def wait_event(self, timeout=5.0, **fields):
        """The JSON events matching `fields` once there is at least one (or [] after timeout)."""
        return ru.wait_until(lambda: self.find_events(**fields), timeout, 0.1) or []

    def describe_events(self):
        return "security-events.log:\n" + "\n".join(self.events_text()[-40:])

    # -- bans ----------------------------------------------------------------------------

    def ban(self, *args):
        """`sipwarden ban ARGS --config <this config>` (CompletedProcess, text)."""
        return ru.cli(self, "ban", *args, timeout=30)

    def banned_addresses(self):
        r = self.ban("list")
        if r.returncode != 0:
            raise AssertionError("ban list exited %d: %s" % (r.returncode, r.stderr))
        out = set()
        for line in r.stdout.splitlines()[1:]:
            if line.strip():
                out.add(line.split()[0])
        return out


# ---------------------------------------------------------------------------------------------
# Clients from a chosen source address.

class SourceRegClient(ru.RegClient):
    """RegClient whose socket is bound to `source` (any 127.0.0.N)."""

    def __init__(self, server, user, password, transport="udp", source="127.0.0.1",
                 call_id=None):
        self.server = server
        self.user = user
        self.password = password
        self.transport = transport
        self.call_id = call_id or harness.new_call_id()
        self.from_tag = harness.new_tag()
        self.cseq = 0
        self.ruri = "sip:%s" % server.domain
        dest = server.addr(transport)
        if transport == "udp":
            self.conn = harness.UdpClient(host=source)
            self.dest = dest
        elif transport == "tcp":
            self.conn = harness.StreamClient.tcp(dest, source=source)
        else:
            self.conn = harness.StreamClient.tls(dest, source=source)
        self.local = self.conn.local
        self.last_challenge = None
        self.last_authorization = None


def options_request(server, local, transport="udp", user_agent=None):
    headers = [("User-Agent", user_agent)] if user_agent else []
    return harness.Request("OPTIONS", server.self_uri(transport), transport=transport.upper(),
                           local=local, from_uri="sip:probe@%s" % server.domain,
                           to_uri="sip:%s" % server.domain, headers=headers)


def options(server, source="127.0.0.1", transport="udp", timeout=2.0, user_agent=None):
    """One OPTIONS from `source`; its final response, or None (no answer, or for TCP/TLS a
    refused or closed connection)."""
    if transport == "udp":
        with harness.UdpClient(host=source) as c:
            return c.request(options_request(server, c.local, "udp", user_agent),
                             server.addr("udp"), timeout=timeout)
    try:
        if transport == "tcp":
            conn = harness.StreamClient.tcp(server.addr("tcp"), source=source, timeout=timeout)
        else:
            conn = harness.StreamClient.tls(server.addr("tls"), source=source, timeout=timeout)
    except (OSError, ConnectionError):
        return None
    with conn:
        try:
            return conn.request(options_request(server, conn.local, transport, user_agent),
                                timeout=timeout)
        except OSError:
            return None


def answered(server, source, timeout=1.0):
    return options(server, source, timeout=timeout) is not None


def wait_answered(server, source, expect, timeout):
    """Polls with OPTIONS from `source` until being answered == expect; True if it happened."""
    return bool(ru.wait_until(lambda: answered(server, source, 0.5) == expect, timeout, 0.2))


# ---------------------------------------------------------------------------------------------
# External tools.

def run_tool(cmd, timeout, cwd=None):
    """Runs `cmd` (bounded); returns (returncode, stdout+stderr, description for messages)."""
    try:
        r = harness.run(cmd, timeout=timeout, cwd=cwd)
        out = r.stdout + r.stderr
        rc = r.returncode
    except Exception as e:  # subprocess.TimeoutExpired: the child is killed by run()
        out = "%s" % e
        rc = None
    return rc, out, "%s\nexit %s\n%s" % (" ".join(cmd), rc, out[-5000:])


def free_udp_port(server):
    return harness.random_free_port(kinds=("udp",), avoid=(server.port, server.tls_port))


FLOOD_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="unauthenticated REGISTER flood">
  <send>
    <![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
Max-Forwards: 70
From: <sip:flood@[remote_ip]>;tag=[call_number]
To: <sip:flood@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:flood@[local_ip]:[local_port]>
Expires: 600
User-Agent: load-generator
Content-Length: 0

    ]]>
  </send>
  <recv response="401" />
</scenario>
"""


def flood_scenario(directory):
    path = os.path.join(directory, "flood.xml")
    with open(path, "w") as f:
        f.write(FLOOD_SCENARIO)
    return path


def tcp_refused(addr, source="127.0.0.1", timeout=2.0):
    """True when a TCP connect to `addr` is refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((source, 0))
        s.connect(addr)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()
    return False


def ban_many_and_probe(server, count, gap_s, first_octets="127.0.10", probe_for_s=1.2):
    """Bans `count` sources (127.0.10.1, … then 127.0.11.1, …), one every `gap_s` seconds, each
    with one OPTIONS carrying a scanner User-Agent; probes each source with a plain OPTIONS
    every 100 ms for `probe_for_s` seconds after its ban. Returns {source: answers received}
    (a correct server answers none of them: every source is banned at its first packet)."""
    import select
    base = [int(x) for x in first_octets.split(".")]
    clients = []
    try:
        for i in range(count):
            host = "%d.%d.%d.%d" % (base[0], base[1], base[2] + i // 250, 1 + i % 250)
            clients.append(harness.UdpClient(host=host))
        by_sock = {c.sock: c for c in clients}
        answers = {}
        banned_at = {}
        last_probe = {}
        start = time.monotonic()
        sent = 0
        for _ in range(10 ** 6):
            now = time.monotonic()
            if sent < count and now >= start + sent * gap_s:
                c = clients[sent]
                c.send(options_request(server, c.local, user_agent="friendly-scanner"),
                       server.addr())
                banned_at[c] = now
                sent += 1
            for c, t in list(banned_at.items()):
                age = now - t
                if age > probe_for_s:
                    del banned_at[c]
                elif age >= 0.05 and int(age * 10) != last_probe.get(c):
                    last_probe[c] = int(age * 10)
                    c.send(options_request(server, c.local), server.addr())
            readable, _, _ = select.select(list(by_sock), [], [], 0.002)
            for sock in readable:
                try:
                    sock.recvfrom(65535)
                except OSError:
                    continue
                host = sock.getsockname()[0]
                answers[host] = answers.get(host, 0) + 1
            if sent >= count and not banned_at:
                break
            if time.monotonic() - start > count * gap_s + probe_for_s + 10:
                break
        return answers
    finally:
        for c in clients:
            c.close()


def sleep_until(deadline):
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
