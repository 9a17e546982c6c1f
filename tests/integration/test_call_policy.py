#!/usr/bin/env python3
"""Call policy through the proxy, black box, with SIPp (package sip-tester) on loopback.

Every test runs its own server (own data dir, random ports, domain 127.0.0.1, digest MD5 only:
SIPp answers nothing else) and its own SIPp processes: callers (policy_uac*.xml), phones and a
provider (policy_uas.xml, policy_provider_auth.xml), a provider calling in
(policy_trunk_call.xml). Each SIPp logs every message it sends and receives; the tests read
those logs for what a user (or a provider) would notice: the response code and reason, the
Request-URI and identity headers that arrived, whether anything arrived at all.

Roles by source address: callers and phones on 127.0.0.1 unless a test needs otherwise; the
provider on 127.0.0.3 (its trunk's address); a stranger on 127.0.0.4; a brute-forcer on
127.0.0.6. A phone registers with its Contact on its SIPp's own address and port, from that
same address, so the proxy sends its calls there.

- Unauthenticated INVITEs: 407 without credentials, 407 again with a wrong password; the
  callee's phone receives nothing (a control call with the right password does reach it).
- Caller ID: an authenticated From naming another user is refused 403 with a call_refused
  security event; an alias from [users.NAME] aliases is accepted.
- Destinations: international and premium numbers are refused by default even with a trunk
  that carries everything; a national number reaches the provider rewritten by strip/prefix,
  with a P-Asserted-Identity and without the caller's credentials; a user whose
  denied_destinations is [] may call 0044… (a '+' number still needs an allowed pattern such
  as "+.": the default allowed_destinations "X." wants a leading digit).
- Limits: max_concurrent_calls (a second call while the first is up), max_calls_per_minute,
  max_call_duration_s (the server sends BYE to both sides; the call record has its answer and
  end times).
- A trunk: the provider's challenge answered with the trunk's credentials; calls in from the
  trunk's address to a DID ring the user without a challenge, from another address they are
  challenged, to an unknown number they get 404; a P-Asserted-Identity from a user is removed.
- allowed_networks for REGISTER (and calls).
- A REGISTER flood from 127.0.0.1 while a real user on 127.0.0.2 registers and completes a call.
- INVITE brute force: the source is banned after failures_per_user wrong answers.
"""
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import registrar_util as ru  # noqa: E402
import shield_util as su  # noqa: E402

SIPP = shutil.which("sipp")
MD5_ONLY = {"algorithms": ["MD5"]}
# The shield out of the way, for the tests that are not about it: many calls from one address
# start with an unauthenticated INVITE each, and a wrong password is tried on purpose.
RELAXED = {"scanner_user_agents": [], "failures_per_source": 100000, "failures_per_user": 0,
           "probed_users": 0}
SIPP_TIMEOUT_S = 60  # the most any SIPp process of these tests lives


def _toml(v):
    if isinstance(v, dict):
        return "{ " + ", ".join("%s = %s" % (harness.toml_value(k), _toml(x))
                                for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return harness.toml_value(v)


class PolicyServer(su.ShieldServer):
    """ShieldServer (domain 127.0.0.1, MD5 only) with [[trunk]] tables; [calls] and
    [users.NAME] go in `sections`."""

    def __init__(self, trunks=(), **kw):
        kw.setdefault("auth", MD5_ONLY)
        super().__init__(**kw)
        self.trunks = [dict(t) for t in trunks]

    def config_text(self):
        out = [super().config_text().rstrip("\n"), ""]
        for t in self.trunks:
            out.append("[[trunk]]")
            out += ["%s = %s" % (k, _toml(v)) for k, v in t.items()]
            out.append("")
        return "\n".join(out)

    def call_records(self):
        """Every row of call_records (dicts), oldest first; [] before the table has any."""
        path = os.path.join(self.data_dir, "sipwarden.db")
        try:
            db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
        except sqlite3.Error:
            return []
        try:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM call_records ORDER BY id")]
        except sqlite3.Error:
            return []
        finally:
            db.close()


# ---------------------------------------------------------------------------------------------
# SIPp.

def parse_message_log(text):
    """SIPp's -trace_msg file -> [(direction "sent"/"received", harness.Message)]."""
    out = []
    for block in re.split(r"(?m)^-{20,} .*\n", text):
        # "UDP message received [588] bytes :" / "UDP message sent (417 bytes):"
        m = re.match(r"\S+ message (sent|received) (?:\[\d+\] bytes :|\(\d+ bytes\):)\n\n",
                     block)
        if not m:
            continue
        raw = block[m.end():].rstrip("\n")
        head, sep, body = raw.partition("\n\n")
        wire = head.replace("\n", "\r\n") + "\r\n\r\n" + body.replace("\n", "\r\n")
        out.append((m.group(1), harness.parse_message(wire)))
    return out


class Sipp:
    """One SIPp process a test started (stopped by its own PID). It logs every message to a
    file: messages() gives them in order as (direction, harness.Message). Its port is drawn at
    random unless given; a start that finds it taken meanwhile ("Unable to bind", by a test
    running beside this one) is retried on others."""

    START_ATTEMPTS = 3

    def __init__(self, workdir, scenario, ip="127.0.0.1", remote=None, rows=(), calls=1,
                 hold_ms=0, port=None):
        self.scenario = scenario
        self.ip = ip
        self.port_given = port is not None
        self.port = port or harness.random_free_port(hosts=(ip,), kinds=("udp",))
        self.dir = tempfile.mkdtemp(prefix="sipp-%s-" % scenario, dir=workdir)
        self.message_file = os.path.join(self.dir, "messages.log")
        self.error_file = os.path.join(self.dir, "errors.log")
        self.output_file = os.path.join(self.dir, "output.txt")
        cmd = [SIPP]
        if remote is not None:
            cmd.append(harness.hostport(*remote))
        cmd += ["-sf", os.path.join(harness.SCENARIOS, scenario + ".xml"), "-t", "u1",
                "-i", ip, "-p", str(self.port), "-m", str(calls), "-l", "1",
                "-timeout", "%ds" % SIPP_TIMEOUT_S, "-recv_timeout", "5000", "-nostdin",
                "-trace_msg", "-message_file", self.message_file,
                "-trace_err", "-error_file", self.error_file]
        if rows:
            inf = os.path.join(self.dir, "fields.csv")
            with open(inf, "w") as f:
                f.write("SEQUENTIAL\n")
                for row in rows:
                    assert not any(";" in str(x) for x in row), row
                    f.write(";".join(str(x) for x in row) + "\n")
            cmd += ["-inf", inf]
        if hold_ms:
            cmd += ["-d", str(hold_ms)]
        self.cmd = cmd
        self.proc = None
        self._out = None

    def start(self):
        for attempt in range(self.START_ATTEMPTS):
            self._out = open(self.output_file, "w")
            self.proc = subprocess.Popen(self.cmd, stdout=self._out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir)
            # Listening once its socket is bound (a phone must be up before a call reaches it).
            ru.wait_until(lambda: self.proc.poll() is not None or
                          not harness.port_is_free(self.ip, self.port, ("udp",)), 5.0, 0.05)
            # Bound, by this process unless another took the port meanwhile: then SIPp exits
            # at once.
            try:
                self.proc.wait(0.1)
            except subprocess.TimeoutExpired:
                pass
            if (self.port_given or attempt + 1 == self.START_ATTEMPTS or
                    not self._bind_failed()):
                return self
            self._out.close()
            self._out = None
            self.port = harness.random_free_port(hosts=(self.ip,), kinds=("udp",))
            self.cmd[self.cmd.index("-p") + 1] = str(self.port)
        return self

    def _bind_failed(self):
        if self.proc.poll() in (None, 0):
            return False
        self._out.flush()
        text = self._read(self.error_file) + self._read(self.output_file)
        return "unable to bind" in text.lower()

    def wait(self, timeout=SIPP_TIMEOUT_S + 10):
        """Its exit code once it ends by itself (killed, and None, after `timeout` s)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM to our own SIPp (its log is complete after), SIGKILL if it lingers."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._out is not None:
            self._out.close()
            self._out = None

    def _read(self, path, tail=None):
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            return ""
        return text if tail is None else text[-tail:]

    def messages(self):
        return parse_message_log(self._read(self.message_file))

    def received(self, method=None):
        """Requests received (all, or those of `method`)."""
        return [m for d, m in self.messages() if d == "received" and m.method is not None and
                (method is None or m.method == method)]

    def responses(self, cseq=None):
        """Responses received (all, or those whose CSeq is e.g. "2 INVITE")."""
        return [m for d, m in self.messages() if d == "received" and m.status is not None and
                (cseq is None or " ".join((m.header("cseq") or "").split()) == cseq)]

    def final_response(self, cseq):
        finals = [m for m in self.responses(cseq) if m.status >= 200]
        return finals[-1] if finals else None

    def describe(self):
        return "%s\nexit %s\n--- output\n%s\n--- errors\n%s\n--- messages\n%s" % (
            " ".join(self.cmd), self.proc.returncode if self.proc else None,
            self._read(self.output_file, 1500), self._read(self.error_file, 3000),
            self._read(self.message_file, 6000))


def uri_user(uri_text):
    m = re.match(r"\s*(?:[^<]*<)?sips?:([^@>;]*)@", uri_text or "")
    return m.group(1) if m else None


def tag_of(header_value):
    m = re.search(r";\s*tag\s*=\s*([^;\s,>]+)", header_value or "")
    return m.group(1) if m else None


def request_uri(msg):
    return msg.start_line.split(" ")[1]


# ---------------------------------------------------------------------------------------------
# Test base.

@unittest.skipUnless(SIPP, "sipp not installed (package sip-tester)")
class CallPolicyTestCase(unittest.TestCase):
    maxDiff = None

    def server(self, users=("alice", "bob"), shield=RELAXED, **kw):
        """A started PolicyServer with `users` (random strong passwords, self.pw[name])."""
        s = PolicyServer(shield=shield, **kw)
        self.addCleanup(s.cleanup)
        self.pw = {}
        for name in users:
            self.pw[name] = ru.strong_password(name)
            s.add_user_offline(name, self.pw[name])
        s.start()
        return s

    def sipp(self, s, scenario, **kw):
        p = Sipp(s.tmpdir, scenario, **kw)
        self.addCleanup(p.stop)
        return p

    def phone(self, s, user, ip="127.0.0.1", calls=1):
        """A SIPp phone answering `calls` calls, registered for `user` from its own address."""
        p = self.sipp(s, "policy_uas", ip=ip, calls=calls).start()
        self.assertTrue(p.running(), p.describe())
        with su.SourceRegClient(s, user, self.pw[user], source=ip) as c:
            first, final = c.register(contact="sip:%s@%s:%d" % (user, ip, p.port), expires=600)
        self.assertIsNotNone(final, "%s's REGISTER from %s: no answer" % (user, ip))
        self.assertEqual((first.status, final.status), (401, 200), ru.describe(final))
        return p

    def call(self, s, user, callee, from_user=None, source="127.0.0.1", hold_ms=200,
             extra_header="", password=None, scenario="policy_uac", start_only=False):
        """A call by `user` (authenticated) from SIPp at `source`; waits for it unless
        start_only. Returns the Sipp (exit 0: the call went through as the scenario says)."""
        row = (user, password or self.pw[user], callee, from_user or user, extra_header)
        c = self.sipp(s, scenario, ip=source, remote=s.addr(), rows=[row], hold_ms=hold_ms)
        c.start()
        if not start_only:
            c.wait()
        return c

    def assert_call_ok(self, c, what):
        self.assertEqual(c.proc.returncode, 0, "%s: the call did not complete\n%s"
                         % (what, c.describe()))

    def refused(self, s, user, callee, from_user=None, source="127.0.0.1", password=None):
        """An authenticated INVITE the server should refuse: its final response."""
        row = (user, password or self.pw[user], callee, from_user or user)
        c = self.sipp(s, "policy_uac_refused", ip=source, remote=s.addr(), rows=[row])
        rc = c.start().wait()
        final = c.final_response("2 INVITE")
        self.assertEqual(rc, 0, "SIPp: no final answer to the authenticated INVITE\n"
                         + c.describe())
        return final, c

    def unauthenticated(self, s, from_user, callee, source="127.0.0.1"):
        """One INVITE without credentials: its final response (None: no answer at all)."""
        c = self.sipp(s, "policy_invite_refused", ip=source, remote=s.addr(),
                      rows=[(from_user, callee)])
        c.start().wait()
        return c.final_response("1 INVITE"), c

    def assert_refused(self, final, code, reason_contains, c):
        self.assertIsNotNone(final, "no final response\n" + c.describe())
        self.assertEqual(final.status, code, "%s %s\n%s" % (final.status, final.reason,
                                                           c.describe()))
        self.assertIn(reason_contains, final.reason, c.describe())

    def call_refused_event(self, s, user, reason_contains, source="127.0.0.1"):
        events = s.wait_event(3.0, type="call_refused", source=source, user=user,
                              reason_contains=reason_contains)
        self.assertTrue(events, "no call_refused event for %s naming %r\n%s"
                        % (user, reason_contains, s.describe_events()))
        e = events[0]
        self.assertEqual(sorted(e), sorted(su.EVENT_FIELDS), e)
        self.assertEqual((e["transport"], e["action"]), ("UDP", "refused"), e)
        return e


# ---------------------------------------------------------------------------------------------
# 1. Authentication.

class AuthenticationTest(CallPolicyTestCase):
    def test_unauthenticated_invite_is_challenged_and_never_forwarded(self):
        """no credentials: 407; a wrong password: 407 again; bob's phone receives nothing"""
        s = self.server()
        bob = self.phone(s, "bob")
        final, c = self.unauthenticated(s, "alice", "bob")
        self.assert_refused(final, 407, "", c)
        challenge = ru.parse_challenge(final.header("proxy-authenticate") or "")
        self.assertEqual((challenge.get("scheme"), challenge.get("realm")), ("Digest", s.domain),
                         c.describe())

        final, c = self.refused(s, "alice", "bob", password=ru.strong_password("alice"))
        self.assert_refused(final, 407, "", c)
        self.assertTrue(final.header("proxy-authenticate"), c.describe())
        self.assertEqual(bob.received(), [], "bob's phone got a request:\n" + bob.describe())

        # Control: bob's phone is reachable, with the right password the same call rings it.
        self.assert_call_ok(self.call(s, "alice", "bob"), "alice -> bob, right password")
        self.assertEqual(bob.wait(), 0, bob.describe())
        self.assertEqual(len(bob.received("INVITE")), 1, bob.describe())


# ---------------------------------------------------------------------------------------------
# 2. Caller ID.

class IdentityTest(CallPolicyTestCase):
    def test_spoofed_from_is_refused_and_alias_accepted(self):
        """alice authenticated with From bob: 403 and a call_refused event; From sales (alias) ok"""
        s = self.server(users=("alice", "bob", "carol"),
                        sections={"users.alice": {"aliases": ["sales"]}})
        carol = self.phone(s, "carol")
        final, c = self.refused(s, "alice", "carol", from_user="bob")
        self.assert_refused(final, 403, "From is not your identity", c)
        e = self.call_refused_event(s, "alice", "From")
        self.assertEqual(e["port"], c.port, e)
        self.assertEqual(carol.received(), [], carol.describe())

        c = self.call(s, "alice", "carol", from_user="sales")
        self.assert_call_ok(c, "alice as sales -> carol")
        self.assertEqual(carol.wait(), 0, carol.describe())
        invites = carol.received("INVITE")
        self.assertEqual(len(invites), 1, carol.describe())
        self.assertEqual(uri_user(invites[0].header("from")), "sales", carol.describe())


# ---------------------------------------------------------------------------------------------
# 3. Destinations.

class DestinationTest(CallPolicyTestCase):
    def test_international_refused_by_default(self):
        """+44…, 0044…, 1900…: 403; 5551234 reaches the provider rewritten, with PAI, no
        credentials; alice (denied_destinations = []) may call 0044…"""
        port = harness.random_free_port(hosts=("127.0.0.3",), kinds=("udp",))
        s = self.server(users=("alice", "carol"),
                        sections={"users.alice": {"denied_destinations": []}},
                        trunks=[{"name": "provider", "host": "127.0.0.3", "port": port,
                                 "outbound": ["!"], "strip": 1, "prefix": "+49"}])
        provider = self.sipp(s, "policy_uas", ip="127.0.0.3", calls=2, port=port).start()

        for number in ("+441234567890", "00441234567890", "19005551234"):
            final, c = self.refused(s, "carol", number)
            self.assert_refused(final, 403, "destination not allowed", c)
            self.call_refused_event(s, "carol", number)
        self.assertEqual(provider.received(), [], "a refused number reached the provider:\n"
                         + provider.describe())

        # carol's own P-Asserted-Identity is replaced by the one the server vouches for.
        self.assert_call_ok(self.call(s, "carol", "5551234", extra_header=(
            "P-Asserted-Identity: <sip:boss@%s>" % s.domain)), "carol -> 5551234")
        # alice's denied_destinations = [] opens 0044… for her; a number with a
        # '+' stays closed: her allowed_destinations (the default "X.") wants a leading digit.
        self.assert_call_ok(self.call(s, "alice", "00441234567890"), "alice -> 0044…")
        final, c = self.refused(s, "alice", "+441234567890")
        self.assert_refused(final, 403, "destination not allowed", c)
        self.assertEqual(provider.wait(), 0, provider.describe())
        invites = provider.received("INVITE")
        # strip = 1, prefix = "+49"
        self.assertEqual([uri_user(request_uri(m)) for m in invites],
                         ["+49551234", "+490441234567890"], provider.describe())
        for m, who in zip(invites, ("carol", "alice")):
            self.assertEqual([uri_user(v) for v in m.all("p-asserted-identity")], [who],
                             provider.describe())
            self.assertIn("@" + s.domain, m.header("p-asserted-identity"), provider.describe())
            self.assertEqual(m.all("proxy-authorization"), [], provider.describe())


# ---------------------------------------------------------------------------------------------
# 4. and 5. Limits.

class LimitsTest(CallPolicyTestCase):
    def test_concurrent_calls(self):
        """max_concurrent_calls = 1: a second call while the first is up is 403; after its BYE
        a new call goes through"""
        s = self.server(sections={"calls": {"max_concurrent_calls": 1}})
        bob = self.phone(s, "bob", calls=2)
        first = self.call(s, "alice", "bob", hold_ms=8000, start_only=True)
        answered = ru.wait_until(lambda: bob.received("ACK") or not first.running(), 10.0, 0.05)
        self.assertTrue(answered and first.running(), "the first call was not answered and up\n"
                        + first.describe())
        final, c = self.refused(s, "alice", "bob")
        self.assert_refused(final, 403, "too many concurrent calls", c)
        self.call_refused_event(s, "alice", "concurrent")
        self.assertTrue(first.running(), "the first call ended before the second attempt was "
                        "over; the test proves nothing\n" + first.describe())
        self.assertEqual(len(bob.received("INVITE")), 1, bob.describe())

        self.assertEqual(first.wait(), 0, first.describe())
        self.assert_call_ok(self.call(s, "alice", "bob"), "alice -> bob after the first BYE")
        self.assertEqual(bob.wait(), 0, bob.describe())
        self.assertEqual(len(bob.received("INVITE")), 2, bob.describe())

    def test_calls_per_minute(self):
        """max_calls_per_minute = 2: the third attempt within the minute is 403"""
        s = self.server(sections={"users.alice": {"max_calls_per_minute": 2}})
        bob = self.phone(s, "bob", calls=2)
        for i in (1, 2):
            self.assert_call_ok(self.call(s, "alice", "bob"), "alice -> bob, call %d" % i)
        final, c = self.refused(s, "alice", "bob")
        self.assert_refused(final, 403, "too many call attempts", c)
        self.call_refused_event(s, "alice", "too many call attempts")
        self.assertEqual(bob.wait(), 0, bob.describe())
        self.assertEqual(len(bob.received("INVITE")), 2, bob.describe())

    def test_call_duration(self):
        """max_call_duration_s = 3: the server sends BYE to both sides; the call record has
        its answer and end times"""
        s = self.server(sections={"calls": {"max_call_duration_s": 3,
                                            "max_concurrent_calls": 1}})
        bob = self.phone(s, "bob", calls=2)
        alice = self.call(s, "alice", "bob", scenario="policy_uac_until_bye")
        self.assert_call_ok(alice, "alice -> bob, ended by the server")
        # bob's phone answered the server's BYE (it stays up for a second call).
        self.assertTrue(ru.wait_until(
            lambda: [m for d, m in bob.messages() if d == "sent" and m.status == 200 and
                     (m.cseq_method() == "BYE")], 10.0, 0.05),
            "bob's phone got no BYE\n" + bob.describe())
        # The dialog's tags: the caller's From tag and the callee's To tag (of its 200).
        invite = [m for d, m in alice.messages() if d == "sent" and m.method == "INVITE"][-1]
        ok = [m for d, m in bob.messages() if d == "sent" and m.status == 200][0]
        caller_tag = tag_of(invite.header("from"))
        callee_tag = tag_of(ok.header("to"))
        for p, peer, peer_tag, own_tag in ((alice, "bob", callee_tag, caller_tag),
                                           (bob, "alice", caller_tag, callee_tag)):
            byes = p.received("BYE")
            self.assertEqual(len(byes), 1, p.describe())
            # Within the dialog, as if from the other party (a phone answers 481 otherwise).
            bye = byes[0]
            self.assertEqual(uri_user(bye.header("from")), peer, p.describe())
            self.assertEqual((tag_of(bye.header("from")), tag_of(bye.header("to"))),
                             (peer_tag, own_tag), p.describe())
            self.assertEqual(bye.header("call-id"), invite.header("call-id"), p.describe())
        records = ru.wait_until(lambda: [r for r in s.call_records() if r["answered_at"]], 5.0)
        self.assertTrue(records, "no answered call record: %s" % s.call_records())
        r = records[0]
        self.assertEqual((r["caller"], r["callee"], r["final_code"]), ("alice", "bob", 200), r)
        self.assertGreaterEqual(r["answered_at"], r["started_at"], r)
        self.assertGreaterEqual(r["ended_at"], r["answered_at"] + 3, r)
        # The ended call no longer counts: with max_concurrent_calls = 1 the next one rings.
        self.assert_call_ok(self.call(s, "alice", "bob"), "alice -> bob after the ended call")
        self.assertEqual(bob.wait(), 0, bob.describe())


# ---------------------------------------------------------------------------------------------
# 6. A trunk.

class TrunkTest(CallPolicyTestCase):
    TRUNK_USER = "acct-4711"

    def setUp(self):
        # The provider's port must be in the configuration: chosen before the server starts.
        self.provider_port = harness.random_free_port(hosts=("127.0.0.3",), kinds=("udp",))
        self.trunk_password = ru.strong_password()
        self.s = self.server(trunks=[{
            "name": "provider", "host": "127.0.0.3", "port": self.provider_port,
            "username": self.TRUNK_USER, "password": self.trunk_password,
            "outbound": ["X."], "dids": {"15551230000": "bob"}}])

    def test_outbound_answers_the_provider_challenge(self):
        """alice -> 5551234: the provider's 407 is answered with the trunk's credentials"""
        s = self.s
        provider = self.sipp(s, "policy_provider_auth", ip="127.0.0.3",
                             port=self.provider_port).start()
        self.assert_call_ok(self.call(s, "alice", "5551234"), "alice -> 5551234")
        self.assertEqual(provider.wait(), 0, provider.describe())
        invites = provider.received("INVITE")
        self.assertEqual(len(invites), 2, provider.describe())
        self.assertEqual(len(provider.received("ACK")), 2, provider.describe())  # 407, 200
        self.assertEqual(invites[0].all("proxy-authorization"), [], provider.describe())
        answers = invites[1].all("proxy-authorization")
        self.assertEqual(len(answers), 1, provider.describe())
        a = ru.parse_challenge(answers[0])
        self.assertEqual(a.get("username"), self.TRUNK_USER, answers[0])
        self.assertEqual(a.get("realm"), "provider.test", answers[0])
        sent_407 = [m for d, m in provider.messages() if d == "sent" and m.status == 407]
        self.assertEqual(len(sent_407), 1, provider.describe())
        challenge = ru.parse_challenge(sent_407[0].header("proxy-authenticate"))
        self.assertEqual(a.get("nonce"), challenge["nonce"], answers[0])
        expected = ru.digest_response("MD5", self.TRUNK_USER, "provider.test",
                                      self.trunk_password, a["nonce"], a.get("nc"),
                                      a.get("cnonce"), "INVITE", a.get("uri"),
                                      qop=a.get("qop", "auth"))
        self.assertEqual(a.get("response"), expected, "wrong digest answer: %s" % answers[0])
        self.assertEqual(uri_user(request_uri(invites[1])), "5551234", provider.describe())

    def test_inbound_from_the_trunk_only(self):
        """from 127.0.0.3 to the DID: bob's phone answers, no challenge; from 127.0.0.4: 407;
        to a number that is no DID: 404"""
        s = self.s
        bob = self.phone(s, "bob")
        c = self.sipp(s, "policy_trunk_call", ip="127.0.0.3", remote=s.addr(),
                      rows=[("+15559876543", "15551230000")], hold_ms=200)
        self.assertEqual(c.start().wait(), 0, c.describe())
        self.assertEqual([r.status for r in c.responses() if r.status >= 200],
                         [200, 200], c.describe())  # the INVITE's and the BYE's
        self.assertEqual(bob.wait(), 0, bob.describe())
        invites = bob.received("INVITE")
        self.assertEqual(len(invites), 1, bob.describe())
        self.assertEqual(uri_user(invites[0].header("from")), "+15559876543", bob.describe())

        final, c = self.unauthenticated(s, "+15559876543", "15551230000", source="127.0.0.4")
        self.assert_refused(final, 407, "", c)
        final, c = self.unauthenticated(s, "+15559876543", "15559999999", source="127.0.0.3")
        self.assert_refused(final, 404, "", c)
        self.assertEqual(len(bob.received("INVITE")), 1, bob.describe())

    def test_identity_from_a_user_is_removed(self):
        """alice's own P-Asserted-Identity never reaches bob"""
        s = self.s
        bob = self.phone(s, "bob")
        c = self.call(s, "alice", "bob", extra_header="P-Asserted-Identity: <sip:boss@%s>"
                      % s.domain)
        self.assert_call_ok(c, "alice -> bob with her own P-Asserted-Identity")
        sent = [m for d, m in c.messages() if d == "sent" and m.method == "INVITE"]
        self.assertTrue(sent and sent[-1].header("p-asserted-identity"), c.describe())
        self.assertEqual(bob.wait(), 0, bob.describe())
        invites = bob.received("INVITE")
        self.assertEqual(len(invites), 1, bob.describe())
        self.assertEqual(invites[0].all("p-asserted-identity"), [], bob.describe())


# ---------------------------------------------------------------------------------------------
# 7. allowed_networks.

class AllowedNetworksTest(CallPolicyTestCase):
    def test_register_and_call_only_from_allowed_networks(self):
        """bob (allowed_networks = ["127.0.0.2/32"]): 403 from 127.0.0.1, 200 from 127.0.0.2"""
        s = self.server(sections={"users.bob": {"allowed_networks": ["127.0.0.2/32"]}})
        with su.SourceRegClient(s, "bob", self.pw["bob"], source="127.0.0.1") as c:
            first, final = c.register(contact="sip:bob@127.0.0.1:5999", expires=600)
        self.assertIsNotNone(final, "no answer from 127.0.0.1")
        self.assertEqual((first.status, final.status), (401, 403), ru.describe(final))
        self.assertIn("allowed network", final.reason, ru.describe(final))
        events = s.wait_event(3.0, type="auth_failed", source="127.0.0.1", user="bob",
                              action="refused", reason_contains="allowed networks")
        self.assertTrue(events, s.describe_events())
        bob = self.phone(s, "bob", ip="127.0.0.2")  # asserts 401, 200

        # Calls too: from 127.0.0.1 refused, from 127.0.0.2 through to alice.
        alice = self.phone(s, "alice")
        final, c = self.refused(s, "bob", "alice", source="127.0.0.1")
        self.assert_refused(final, 403, "allowed network", c)
        self.call_refused_event(s, "bob", "allowed networks")
        self.assert_call_ok(self.call(s, "bob", "alice", source="127.0.0.2"),
                            "bob from 127.0.0.2 -> alice")
        self.assertEqual(alice.wait(), 0, alice.describe())
        self.assertEqual(len(alice.received("INVITE")), 1, alice.describe())
        bob.stop()


# ---------------------------------------------------------------------------------------------
# 8. A REGISTER flood while a real user registers and calls.

class FloodWhileCallingTest(CallPolicyTestCase):
    def test_register_flood_does_not_hurt_a_calling_user(self):
        """SIPp ~400 REGISTER/s from 127.0.0.1 (limit 50/s): alice on 127.0.0.2 registers and
        completes a call to bob on 127.0.0.5"""
        s = self.server(shield={"register_rate": 50, "register_burst": 100,
                                "failures_per_source": 100000})
        bob = self.phone(s, "bob", ip="127.0.0.5")
        scenario = su.flood_scenario(s.tmpdir)
        total = 2400
        cmd = [SIPP, "127.0.0.1:%d" % s.port, "-sf", scenario, "-t", "u1",
               "-i", "127.0.0.1", "-p", str(su.free_udp_port(s)), "-r", "400", "-rp", "1000",
               "-m", str(total), "-l", "1000", "-nr", "-recv_timeout", "1000",
               "-timeout", "20s", "-nostdin", "-buff_size", "4194304"]
        flood = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, text=True, cwd=s.tmpdir)

        def stop_flood():
            if flood.poll() is None:
                flood.kill()  # our own child, by its PID
                flood.wait(5)
        self.addCleanup(stop_flood)
        time.sleep(1.0)  # the flood is under way: its burst is spent

        registrations = []
        for _ in range(3):
            with su.SourceRegClient(s, "alice", self.pw["alice"], source="127.0.0.2") as c:
                first, final = c.register(contact="sip:alice@127.0.0.2:5999", expires=600,
                                          timeout=2.0)
                registrations.append((first and first.status, final and final.status))
        call = self.call(s, "alice", "bob", source="127.0.0.2", hold_ms=500)
        during = flood.poll() is None
        try:
            out, _ = flood.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            stop_flood()
            out = "(SIPp killed after 30 s)"
        what = "%s\n%s" % (" ".join(cmd), out[-3000:])
        self.assertTrue(during, "the flood was over before alice's call ended:\n" + what)
        self.assertEqual(registrations, [(401, 200)] * 3, "alice's REGISTERs during the flood")
        self.assert_call_ok(call, "alice (127.0.0.2) -> bob (127.0.0.5) during the flood")
        self.assertEqual(bob.wait(), 0, bob.describe())
        # Every request of the call was answered at once: no retransmission was needed.
        sent = [m for d, m in call.messages() if d == "sent" and m.method is not None]
        self.assertEqual([m.method for m in sent], ["INVITE", "ACK", "INVITE", "ACK", "BYE"],
                         call.describe())

        m = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", out)
        if m:  # the flood itself was limited
            self.assertLess(int(m.group(1)), total // 2, what)
        self.assertTrue(s.wait_event(2.0, type="rate_limited", source="127.0.0.1"),
                        s.describe_events())
        self.assertEqual(s.find_events(source="127.0.0.2"), [], s.describe_events())
        self.assertEqual(s.find_events(source="127.0.0.5"), [], s.describe_events())


# ---------------------------------------------------------------------------------------------
# 9. INVITE brute force.

class InviteBruteForceTest(CallPolicyTestCase):
    def test_wrong_answers_ban_the_source(self):
        """6 INVITEs with wrong passwords for alice from 127.0.0.6: 5 answered 407, then none;
        a banned event; alice still calls from 127.0.0.1"""
        s = self.server(shield={"scanner_user_agents": []})  # failures_per_user: default 5
        bob = self.phone(s, "bob")
        limit = 5
        wrong = ru.strong_password("alice")
        c = self.sipp(s, "policy_uac_refused", ip="127.0.0.6", remote=s.addr(),
                      rows=[("alice", wrong, "bob", "alice")], calls=limit + 1)
        c.start().wait()
        # Per attempt (Call-ID), the final answers to its two INVITEs (CSeq 1 and 2).
        attempts = {}
        for d, m in c.messages():
            if d == "sent" and m.method == "INVITE":
                attempts.setdefault(m.header("call-id"), {})
            elif d == "received" and m.status is not None and m.status >= 200:
                cseq = int((m.header("cseq") or "0").split()[0])
                attempts.setdefault(m.header("call-id"), {})[cseq] = m.status
        # (The ban also drops the ACK for the last 407, so the server retransmits that 407 to
        # the banned source until its transaction times out: not counted as new answers.)
        self.assertEqual(list(attempts.values()), [{1: 407, 2: 407}] * limit + [{}],
                         "each of the %d attempts: challenged, then refused with 407; the next "
                         "one: no answer at all\n%s" % (limit, c.describe()))
        events = s.wait_event(3.0, type="banned", source="127.0.0.6",
                              reason_contains="failed authentications for one user")
        self.assertTrue(events, s.describe_events())
        self.assertIsNone(su.options(s, "127.0.0.6", timeout=1.0),
                          "127.0.0.6 is banned, yet OPTIONS from it was answered")
        self.assertEqual(bob.received(), [], bob.describe())
        # The user is not locked out.
        self.assert_call_ok(self.call(s, "alice", "bob"), "alice from 127.0.0.1 -> bob")


if __name__ == "__main__":
    harness.main()
