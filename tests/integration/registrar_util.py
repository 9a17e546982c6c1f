"""Helpers for the registrar's black-box tests (Python 3 standard library only).

Built on harness.py (used read-only):

- ``RegServer``: a harness.Server whose configuration may hold lists (``[auth] algorithms``)
  and whose domain defaults to 127.0.0.1, so ``sip:NAME@127.0.0.1`` is the address-of-record.
- ``cli()``, ``add_user()``, ``import_users()``, ``remove_user()``, ``user_show()``: the
  ``sipwarden user ...`` subcommand run with the server's own ``--config``.
- ``strong_password()``: passwords that pass the server's policy and that baresip and SIPp's
  injection files can carry.
- Digest (RFC 7616, qop=auth, MD5 and SHA-256): ``parse_challenge()``, ``digest_response()``,
  ``authorization()``.
- ``RegClient``: a REGISTER client over UDP, TCP or TLS that answers 401 challenges, keeps
  Call-ID and CSeq across requests (refresh), and can resend an exact Authorization (replay)
  or answer an old challenge (stale).

Every wait is bounded in time, every loop in count.
"""

import hashlib
import os
import re
import secrets
import string
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DOMAIN = "127.0.0.1"
REGISTRAR_DEFAULTS = {"min_expires": 60, "max_expires": 3600, "default_expires": 3600,
                      "max_contacts": 10}


# ---------------------------------------------------------------------------------------------
# The server.

def _toml(v):
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return harness.toml_value(v)


class RegServer(harness.Server):
    """harness.Server with list values allowed in sections and domain 127.0.0.1."""

    def __init__(self, transports=("udp",), domain=DOMAIN, registrar=None, auth=None,
                 sections=None, **kw):
        secs = {k: dict(v) for k, v in (sections or {}).items()}
        reg = dict(REGISTRAR_DEFAULTS)
        reg.update(registrar or {})
        secs["registrar"] = reg
        if auth:
            secs["auth"] = dict(auth)
        super().__init__(transports=transports, domain=domain, sections={}, **kw)
        self.reg_sections = secs

    def config_text(self):
        out = [super().config_text().rstrip("\n"), ""]
        for name, keys in self.reg_sections.items():
            out.append("[%s]" % name)
            for k, v in keys.items():
                out.append("%s = %s" % (k, _toml(v)))
            out.append("")
        return "\n".join(out)

    def aor(self, name):
        return "sip:%s@%s" % (name, self.domain)


# ---------------------------------------------------------------------------------------------
# The user subcommand.

def cli(server, *args, stdin=None, timeout=60):
    """`sipwarden ARGS --config <server's config>`; returns the CompletedProcess (text)."""
    return harness.run([server.executable(), *args, "--config", server.config_path],
                       input=stdin, timeout=timeout)


_ALPHABET = string.ascii_letters + string.digits + "-_.+="

# The server's "keyboard walk" rule (src/auth/password_policy.cc), mirrored so that random
# passwords are never refused: runs of 3+ neighbouring characters (keyboard rows and columns
# of several layouts, the alphabet, the digits, repeats) covering more than half of it. About
# 1 in 2,000 uniformly random 20-character passwords trips it.
_SEQUENCES = ["abcdefghijklmnopqrstuvwxyz", "01234567890", "`1234567890-=", "~!@#$%^&*()_+",
              "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./", "qwertzuiop", "yxcvbnm",
              "azertyuiop", "qsdfghjklm", "wxcvbn", "1qaz", "2wsx", "3edc", "4rfv", "5tgb",
              "6yhn", "7ujm", "8ik,", "9ol.", "0p;/", "147", "258", "369", "0."]
_ADJACENT = {(a, b) for s in _SEQUENCES for a, b in zip(s, s[1:])}
_ADJACENT |= {(b, a) for a, b in _ADJACENT}


def looks_like_walk(password):
    low = password.lower()
    covered, start = 0, 0
    for i in range(1, len(low) + 1):
        if i < len(low) and (low[i - 1] == low[i] or (low[i - 1], low[i]) in _ADJACENT):
            continue
        if i - start >= 3:
            covered += i - start
        start = i
    return covered * 2 > len(low)


def strong_password(name="", length=20):
    """Random, unique, passes the policy (no name inside, no walk, no ; \" > or space)."""
    for _ in range(100):
        pw = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if name and name.lower() in pw.lower():
            continue
        if not any(c.isalpha() for c in pw) or not any(c.isdigit() for c in pw):
            continue
        if looks_like_walk(pw):
            continue
        return pw
    raise RuntimeError("could not make a password")


def add_user(server, name, password, check=True):
    r = cli(server, "user", "add", name, "--password-stdin", stdin=password + "\n")
    if check and r.returncode != 0:
        raise AssertionError("user add %s exited %d\nstdout: %s\nstderr: %s"
                             % (name, r.returncode, r.stdout, r.stderr))
    return r


def import_users(server, pairs, check=True, timeout=300):
    """`user import FILE` of [(name, password)]; the CSV has a name,password header."""
    fd, path = tempfile.mkstemp(prefix="users-", suffix=".csv", dir=server.tmpdir)
    with os.fdopen(fd, "w") as f:
        f.write("name,password\n")
        for name, pw in pairs:
            f.write("%s,%s\n" % (name, pw))
    try:
        r = cli(server, "user", "import", path, timeout=timeout)
    finally:
        os.unlink(path)
    if check and r.returncode != 0:
        raise AssertionError("user import exited %d\nstdout: %s\nstderr: %s"
                             % (r.returncode, r.stdout, r.stderr[-3000:]))
    return r


def remove_user(server, name, check=True):
    r = cli(server, "user", "remove", name)
    if check and r.returncode != 0:
        raise AssertionError("user remove %s exited %d\nstdout: %s\nstderr: %s"
                             % (name, r.returncode, r.stdout, r.stderr))
    return r


def user_show(server, name):
    return cli(server, "user", "show", name)


def show_bindings(text):
    """The bindings in `user show` output: [{"contact":…, "transport":…, …}]."""
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*\[\d+\]\s+contact:\s*(.*)$", line)
        if m:
            out.append({"contact": m.group(1).strip()})
            continue
        m = re.match(r"\s+(expires|transport|source|user_agent|instance):\s*(.*)$", line)
        if m and out:
            out[-1][m.group(1)] = m.group(2).strip()
    return out


# ---------------------------------------------------------------------------------------------
# Digest (RFC 7616 §3.4.1 with qop=auth).

HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def H(algorithm, text):
    return HASHES[algorithm.upper()](text.encode()).hexdigest()


def digest_response(algorithm, username, realm, password, nonce, nc, cnonce, method, uri,
                    qop="auth"):
    ha1 = H(algorithm, "%s:%s:%s" % (username, realm, password))
    ha2 = H(algorithm, "%s:%s" % (method, uri))
    return H(algorithm, "%s:%s:%s:%s:%s:%s" % (ha1, nonce, nc, cnonce, qop, ha2))


def parse_challenge(value):
    """'Digest realm="x", nonce="y", stale=true' -> {"scheme": "Digest", "realm": "x", ...}."""
    scheme, _, rest = value.strip().partition(" ")
    params = {"scheme": scheme}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]+)', rest):
        params[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return params


def challenges(msg):
    return [parse_challenge(v) for v in msg.all("www-authenticate")]


def authorization(username, password, challenge, method, uri, nc=1, cnonce=None,
                  algorithm=None):
    """The Authorization value answering `challenge` (a parse_challenge dict)."""
    algorithm = algorithm or challenge.get("algorithm", "MD5")
    cnonce = cnonce or uuid.uuid4().hex[:16]
    ncs = "%08x" % nc
    resp = digest_response(algorithm, username, challenge["realm"], password,
                           challenge["nonce"], ncs, cnonce, method, uri)
    parts = ['username="%s"' % username, 'realm="%s"' % challenge["realm"],
             'nonce="%s"' % challenge["nonce"], 'uri="%s"' % uri,
             'response="%s"' % resp, "algorithm=%s" % algorithm, 'cnonce="%s"' % cnonce,
             "qop=auth", "nc=%s" % ncs]
    if "opaque" in challenge:
        parts.append('opaque="%s"' % challenge["opaque"])
    return "Digest " + ", ".join(parts)


def contacts(msg):
    """[(uri, expires or None)] of every Contact in a response."""
    out = []
    for value in msg.all("contact"):
        for part in re.findall(r'(?:[^,<"]|<[^>]*>|"[^"]*")+', value):
            part = part.strip()
            if not part:
                continue
            m = re.match(r"[^<]*<([^>]*)>(.*)$", part)
            uri, params = (m.group(1), m.group(2)) if m else (part.split(";")[0], part)
            e = re.search(r";\s*expires\s*=\s*(\d+)", params, re.I)
            out.append((uri, int(e.group(1)) if e else None))
    return out


def describe(msg):
    return "no response" if msg is None else msg.raw.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# A REGISTER client.

class RegClient:
    """REGISTERs for one user over one transport ("udp", "tcp" or "tls") to `server`.

    Keeps one Call-ID and an increasing CSeq, so successive register() calls are refreshes
    (RFC 3261 §10.2.4). The default Contact is this client's own address.
    """

    def __init__(self, server, user, password, transport="udp", call_id=None):
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
            self.conn = harness.UdpClient()
            self.dest = dest
        elif transport == "tcp":
            self.conn = harness.StreamClient.tcp(dest)
        else:
            self.conn = harness.StreamClient.tls(dest)
        self.local = self.conn.local
        self.last_challenge = None  # the parsed WWW-Authenticate answered last
        self.last_authorization = None

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def default_contact(self):
        t = "" if self.transport == "udp" else ";transport=%s" % self.transport
        return "sip:%s@%s:%d%s" % (self.user, self.local[0], self.local[1], t)

    def build(self, contact=(), expires=None, authorization=None, star=False, to_user=None,
              extra=()):
        """A REGISTER with the next CSeq. contact: a URI string, a list of them (each may
        carry ;params after the >), or () for a query."""
        self.cseq += 1
        headers = []
        if star:
            headers.append(("Contact", "*"))
        else:
            if isinstance(contact, str):
                contact = [contact]
            for c in contact:
                headers.append(("Contact", c if c.startswith("<") else "<%s>" % c))
        if expires is not None:
            headers.append(("Expires", str(expires)))
        if authorization:
            headers.append(("Authorization", authorization))
        headers.extend(extra)
        aor = "sip:%s@%s" % (to_user or self.user, self.server.domain)
        return harness.Request("REGISTER", self.ruri, transport=self.transport.upper(),
                               local=self.local, from_uri=aor, to_uri=aor, cseq=self.cseq,
                               headers=headers, call_id=self.call_id, from_tag=self.from_tag)

    def send(self, req, timeout=5.0):
        if self.transport == "udp":
            return self.conn.request(req, self.dest, timeout=timeout)
        return self.conn.request(req, timeout=timeout)

    def pick(self, msg, algorithm=None):
        chals = challenges(msg)
        if not chals:
            raise AssertionError("401 without WWW-Authenticate:\n" + describe(msg))
        if algorithm is None:
            return chals[0]
        for c in chals:
            if c.get("algorithm", "MD5").upper() == algorithm.upper():
                return c
        raise AssertionError("no %s challenge in:\n%s" % (algorithm, describe(msg)))

    def challenge(self, **kw):
        """Sends an unauthenticated REGISTER; returns its response (a 401 expected)."""
        return self.send(self.build(**kw))

    def answer(self, challenge, nc=1, cnonce=None, password=None, username=None, **kw):
        """Sends a REGISTER answering `challenge` (parsed); returns the response."""
        auth = authorization(username or self.user, password or self.password, challenge,
                             "REGISTER", self.ruri, nc=nc, cnonce=cnonce)
        self.last_challenge = challenge
        self.last_authorization = auth
        return self.send(self.build(authorization=auth, **kw))

    def register(self, algorithm=None, timeout=5.0, **kw):
        """REGISTER -> 401 -> REGISTER with credentials; returns (first, final) responses."""
        first = self.send(self.build(**kw), timeout=timeout)
        if first is None or first.status != 401:
            return first, first
        final = self.answer(self.pick(first, algorithm), **kw)
        return first, final


def wait_until(predicate, timeout, interval=0.2):
    """Calls predicate() until it returns a true value (returned) or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return None


def wait_user_active(server, name, password, timeout=5.0):
    """Waits until the server (polling its store every second) authenticates `name`: a query
    REGISTER gets 200. Returns the 200 or None."""
    def attempt():
        with RegClient(server, name, password) as c:
            _, final = c.register(timeout=2.0)
            return final if final is not None and final.status == 200 else None
    return wait_until(attempt, timeout, 0.3)


# ---------------------------------------------------------------------------------------------
# SIPp.

def run_sipp(server, scenario, users, transport="udp", calls=None, timeout=40, extra=()):
    """Runs scenarios/<scenario>.xml with an injection file of `users` [(name, password)]
    (SEQUENTIAL: call N uses line N). Returns (CompletedProcess, workdir text of the error
    and message logs, local port). The caller removes nothing: the workdir is under the
    server's tmpdir."""
    import glob
    import shutil
    sipp = shutil.which("sipp")
    workdir = tempfile.mkdtemp(prefix="sipp-", dir=server.tmpdir)
    inf = os.path.join(workdir, "users.csv")
    with open(inf, "w") as f:
        f.write("SEQUENTIAL\n")
        for name, pw in users:
            f.write("%s;%s;\n" % (name, pw))
    result, port = None, None
    for _ in range(3):  # another local port if SIPp's was taken meanwhile
        port = harness.random_free_port(kinds=("udp", "tcp"))
        cmd = [sipp, "%s:%d" % server.addr(transport),
               "-sf", os.path.join(harness.SCENARIOS, scenario + ".xml"), "-inf", inf,
               "-t", {"udp": "u1", "tcp": "t1"}[transport], "-i", "127.0.0.1",
               "-p", str(port), "-m", str(calls or len(users)), "-r", "20", "-l", "5",
               "-timeout", "%ds" % (timeout - 10), "-timeout_error", "-recv_timeout", "5000",
               "-nostdin", "-trace_err", "-trace_msg", *extra]
        result = harness.run(cmd, timeout=timeout, cwd=workdir)
        if result.returncode == 0 or "bind" not in (result.stdout + result.stderr).lower():
            break
    logs = ""
    for path in sorted(glob.glob(os.path.join(workdir, "*_errors.log"))):
        with open(path, errors="replace") as f:
            logs += "--- %s\n%s\n" % (os.path.basename(path), f.read()[-4000:])
    for path in sorted(glob.glob(os.path.join(workdir, "*_messages.log"))):
        with open(path, errors="replace") as f:
            logs += "--- %s\n%s\n" % (os.path.basename(path), f.read()[-6000:])
    result.args = cmd
    return result, logs, port


def kill_and_relaunch(server):
    """SIGKILL to the server's own PID, then start it again with the SAME configuration file
    (same ports, data_dir, domain). Raises harness.ServerStartError if it does not start."""
    import signal as _signal
    proc = server.proc
    os.kill(proc.pid, _signal.SIGKILL)
    proc.wait(10)
    if server._reader is not None:
        server._reader.join(5)
    proc.stdout.close()
    ok, out = server._launch()  # harness's own launcher, reusing server.config_path as is
    if not ok:
        raise harness.ServerStartError("sipwarden did not restart:\n" + out)
    return proc.returncode
