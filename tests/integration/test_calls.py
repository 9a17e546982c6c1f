#!/usr/bin/env python3
"""Calls through the proxy (RFC 3261 §16), seen from outside with SIPp 3.6.1 as the phones.

One server (UDP and TCP, [auth] algorithms = ["MD5"] because SIPp answers only MD5,
[calls] ring_timeout_s = 5) serves every test; each test has its own caller and callee users,
so SIPp's predictable cnonce never turns a second run into a "replay" and the per-user call
limits of one test never touch another. Callees are SIPp UAS processes (scenarios/call_uas*.xml)
on their own ports, registered with that port as Contact (scenarios/reg_contact.xml, or a small
Python REGISTER client when one user needs two contacts); callers are SIPp UACs
(scenarios/call_uac*.xml) that answer the 407 challenge.

What is checked is what the phones and the operator see: the responses each SIPp receives
(its message trace), that every SIPp scenario ran to its end (exit 0: e.g. the callee did
receive the CANCEL and answered 487), and the call record (CDR) the server writes per attempt
in DATA_DIR/sipwarden.db (table call_records) with the right final code.

Every SIPp run is bounded (-m, -timeout, -recv_timeout, a subprocess timeout); only the PIDs
started here are ever killed.
"""
import glob
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import registrar_util as ru  # noqa: E402

SIPP = shutil.which("sipp")
RING_TIMEOUT_S = 5
SIPP_TIMEOUT_S = 40  # the longest a SIPp run may take (SIPp's -timeout is 10 s less)


# ---------------------------------------------------------------------------------------------
# SIPp processes.

def free_media_port():
    """An even port with itself and +2 free over UDP (SIPp binds audio and video there)."""
    for _ in range(200):
        p = harness.random_free_port(kinds=("udp",))
        p -= p % 2
        if harness.port_is_free("127.0.0.1", p, ("udp",)) and \
                harness.port_is_free("127.0.0.1", p + 2, ("udp",)):
            return p
    raise RuntimeError("no free media port pair")


class Sipp:
    """One SIPp process started by a test: a UAC (remote = the server) or a UAS (uac=False:
    no remote, it waits on `port`). fields: injection-file lines (sequences of values; line N
    for call N). The process runs in its own directory under the server's tmpdir; its
    -trace_msg and -trace_err logs are read from there. Ports are drawn at random; a start
    that finds one taken meanwhile ("Unable to bind") is retried on others."""

    START_ATTEMPTS = 3

    def __init__(self, server, scenario, transport="udp", fields=None, uac=True, calls=1,
                 extra=()):
        self.server = server
        self.scenario = scenario
        self.transport = transport
        self.uac = uac
        self.calls = calls
        self.extra = tuple(extra)
        self.workdir = tempfile.mkdtemp(prefix="sipp-%s-" % scenario, dir=server.tmpdir)
        self.inf = None
        if fields is not None:
            self.inf = os.path.join(self.workdir, "fields.csv")
            with open(self.inf, "w") as f:
                f.write("SEQUENTIAL\n")
                for line in fields:
                    f.write(";".join(str(x) for x in line) + ";\n")
        self.port = None
        self.cmd = []
        self.proc = None
        self.out = ""

    def _command(self):
        self.port = harness.random_free_port(kinds=("udp", "tcp"))
        cmd = [SIPP]
        if self.uac:
            cmd.append("%s:%d" % self.server.addr(self.transport))
        cmd += ["-sf", os.path.join(harness.SCENARIOS, self.scenario + ".xml"),
                "-t", {"udp": "u1", "tcp": "t1"}[self.transport], "-i", "127.0.0.1",
                "-p", str(self.port), "-mp", str(free_media_port()),
                "-cp", str(harness.random_free_port(kinds=("udp",))),
                "-m", str(self.calls), "-timeout", "%ds" % (SIPP_TIMEOUT_S - 10),
                "-timeout_error", "-recv_timeout", "20000", "-nostdin", "-trace_err",
                "-trace_msg", *self.extra]
        if self.inf is not None:
            cmd += ["-inf", self.inf]
        return cmd

    def _launch(self):
        self.cmd = self._command()
        self.out = ""
        # SIPp redraws its statistics screen every second: into a file, never a pipe that
        # nobody reads while it runs.
        with open(os.path.join(self.workdir, "stdout.txt"), "wb") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)

    def _collect(self):
        with open(os.path.join(self.workdir, "stdout.txt"), errors="replace") as f:
            self.out = f.read()[-20000:]

    def _bind_failed(self, rc):
        return rc is not None and rc != 0 and "unable to bind" in self.out.lower()

    def start(self):
        """Starts the process in the background; a UAS is returned once its SIP port is
        bound, a UAC once it has run for a moment (SIPp binds its sockets at start-up)."""
        for _ in range(self.START_ATTEMPTS):
            self._launch()
            if self._wait_bound() if not self.uac else self._still_running(0.3):
                return self
            rc = self.wait(10)
            if not self._bind_failed(rc):
                break
        return self

    def _still_running(self, seconds):
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return True
        return False

    def _wait_bound(self, timeout=5.0):
        """Until this (UAS) process has bound its SIP port (True), or it ended, or
        `timeout`."""
        kinds = ("udp",) if self.transport == "udp" else ("tcp",)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if not harness.port_is_free("127.0.0.1", self.port, kinds):
                # Bound, by this process unless another took the port meanwhile (then SIPp
                # exits at once: look again shortly).
                time.sleep(0.1)
                return self.proc.poll() is None
            time.sleep(0.05)
        return False

    def listening(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout=SIPP_TIMEOUT_S):
        """The exit code (None when it had to be killed)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return None
        self._collect()
        return rc

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # our own child, by its PID
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            self._collect()

    def run(self, timeout=SIPP_TIMEOUT_S):
        """Runs a UAC to its end; returns its exit code (None when it had to be killed)."""
        rc = None
        for _ in range(self.START_ATTEMPTS):
            self._launch()
            rc = self.wait(timeout)
            if not self._bind_failed(rc):
                break
        return rc

    def _read(self, suffix, tail):
        text = ""
        for path in sorted(glob.glob(os.path.join(self.workdir, "*" + suffix))):
            with open(path, errors="replace") as f:
                text += f.read()
        return text[-tail:] if tail else text

    def messages(self):
        """[(direction "sent"/"received", harness.Message)] from the -trace_msg log."""
        out = []
        for block in re.split(r"^-{20,}.*$", self._read("_messages.log", 0), flags=re.M):
            block = block.strip("\r\n")
            m = re.match(r"\s*\S+ message (sent|received)[^\n]*\n\n?(.*)$", block, re.S)
            if not m:
                continue
            raw = m.group(2).strip("\n").replace("\r\n", "\n").replace("\n", "\r\n")
            if "\r\n\r\n" not in raw:
                raw += "\r\n\r\n"
            out.append((m.group(1), harness.parse_message(raw)))
        return out

    def received(self):
        """The messages received, each once: a retransmission (same start line, CSeq, To tag
        and top Via) is left out."""
        out, seen = [], set()
        for d, msg in self.messages():
            if d != "received":
                continue
            key = (msg.start_line, msg.header("cseq"), msg.to_tag(), msg.header("via"))
            if key not in seen:
                seen.add(key)
                out.append(msg)
        return out

    def received_statuses(self, cseq_method="INVITE"):
        """Status codes received for requests of `cseq_method`, in order."""
        return [m.status for m in self.received()
                if m.status is not None and m.cseq_method() == cseq_method]

    def received_requests(self, method=None):
        """The requests received (harness.Message), or their methods when `method` is None."""
        if method is None:
            return [m.method for m in self.received() if m.method is not None]
        return [m for m in self.received() if m.method == method]

    def report(self, rc=None):
        return ("sipp %s (%s) exited %s\ncommand: %s\nstdout (tail):\n%s\nerrors:\n%s\n"
                "messages (tail):\n%s"
                % (self.scenario, self.transport, rc, " ".join(self.cmd), self.out[-1500:],
                   self._read("_errors.log", 3000), self._read("_messages.log", 6000)))


# ---------------------------------------------------------------------------------------------
# The tests.

@unittest.skipUnless(SIPP, "sipp not found (Debian package sip-tester)")
class CallTest(unittest.TestCase):
    # Callers ("-a") and callees ("-b"), one pair per test; offline-b never registers, and
    # nobody-a only calls numbers that are refused.
    USERS = ("basic-a", "basic-b", "tcp-a", "tcp-b", "mixed-a", "mixed-b", "cancel-a",
             "cancel-b", "tcpcancel-a", "tcpcancel-b", "busy-a", "busy-b", "noans-a", "noans-b",
             "fork-a", "fork-b", "reinv-a", "reinv-b", "calleebye-a", "calleebye-b", "tcpbye-a",
             "tcpbye-b", "retrans-a", "retrans-b", "offline-a", "offline-b", "nobody-a")

    @classmethod
    def setUpClass(cls):
        cls.server = ru.RegServer(
            transports=("udp", "tcp"), auth={"algorithms": ["MD5"]},
            sections={"calls": {"ring_timeout_s": RING_TIMEOUT_S},
                      # Every caller is challenged first and callers come from one address:
                      # the shield's enumeration and failure bans are test_shield.py's.
                      "shield": {"failures_per_user": 0, "failures_per_source": 100000,
                                 "probed_users": 0}})
        cls.server.start()
        cls.users = {}
        for name in cls.USERS:
            cls.users[name] = ru.strong_password(name)
        ru.import_users(cls.server, cls.users.items())
        last = cls.USERS[-1]
        if ru.wait_user_active(cls.server, last, cls.users[last], timeout=6) is None:
            cls.server.cleanup()
            raise AssertionError("the server did not pick up the users added with user import")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    # -- helpers ---------------------------------------------------------------------------

    def sipp(self, scenario, **kw):
        s = Sipp(self.server, scenario, **kw)
        self.addCleanup(s.stop)
        return s

    def assertRan(self, sipp, rc, what):
        self.assertEqual(rc, 0, "%s: SIPp did not complete its scenario\n%s\nserver log (tail):\n%s"
                         % (what, sipp.report(rc), self.server.log()[-3000:]))

    def register_with_sipp(self, user, contact_port, transport="udp"):
        """reg_contact.xml: `user` registers a Contact at `contact_port` of this host."""
        s = self.sipp("reg_contact", transport=transport,
                      fields=[(user, self.users[user], contact_port)])
        self.assertRan(s, s.run(), "REGISTER %s" % user)

    def register_with_python(self, user, contact_port):
        """The same with the Python client (a second contact of one user within the same
        second would make SIPp's credentials a replay)."""
        with ru.RegClient(self.server, user, self.users[user]) as c:
            _, final = c.register(contact="sip:%s@127.0.0.1:%d" % (user, contact_port),
                                  expires=600)
        self.assertIsNotNone(final, "REGISTER %s: no answer" % user)
        self.assertEqual(final.status, 200, ru.describe(final))

    def uas(self, scenario, transport="udp"):
        """A callee SIPp listening on a free port (started, bound)."""
        s = self.sipp(scenario, transport=transport, uac=False)
        s.start()
        self.assertTrue(s.listening(), "the callee SIPp did not start:\n" + s.report())
        return s

    def caller(self, scenario, caller, callee, transport="udp"):
        return self.sipp(scenario, transport=transport,
                         fields=[(caller, self.users[caller], callee)])

    def call_records(self, caller, count=1, timeout=10.0):
        """The call_records rows of `caller` (dicts), once there are `count` of them."""
        path = os.path.join(self.server.data_dir, "sipwarden.db")

        def rows():
            if not os.path.exists(path):
                return None
            try:
                db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
                try:
                    db.row_factory = sqlite3.Row
                    r = [dict(x) for x in db.execute(
                        "SELECT * FROM call_records WHERE caller = ? ORDER BY id", (caller,))]
                finally:
                    db.close()
            except sqlite3.Error:
                return None
            return r if len(r) >= count else None
        found = ru.wait_until(rows, timeout, 0.2)
        self.assertIsNotNone(found, "no %d call record(s) for caller %s in %s"
                             % (count, caller, path))
        return found

    def assertRecord(self, caller, callee, final_code, transport="udp", uac=None):
        """One call record for `caller`, with these values; `uac`: the caller's SIPp, whose
        address is the source (over UDP SIPp sends from its -p port)."""
        rec = self.call_records(caller)
        self.assertEqual(len(rec), 1, rec)
        r = rec[0]
        self.assertEqual((r["caller"], r["callee"], r["final_code"], r["transport"]),
                         (caller, callee, final_code, transport), r)
        self.assertTrue(r["source"].startswith("127.0.0.1:"), r)
        if uac is not None and transport == "udp":
            self.assertEqual(r["source"], "127.0.0.1:%d" % uac.port, r)
        self.assertGreater(r["started_at"], 0, r)
        self.assertGreaterEqual(r["ended_at"], r["started_at"], r)
        if final_code == 200:
            self.assertGreaterEqual(r["answered_at"], r["started_at"], r)
        else:
            self.assertEqual(r["answered_at"], 0, r)
        return r

    def assertVia(self, msg, what):
        """`msg` (a request a phone received) came through the server: its top Via is the
        server's, and no Route is left in it."""
        vias = ",".join(msg.all("via"))
        self.assertRegex(vias.split(",")[0].strip(),
                         r"^SIP/2\.0/(UDP|TCP) 127\.0\.0\.1:%d;" % self.server.port,
                         "%s: not forwarded by the server:\n%s" % (what, ru.describe(msg)))
        self.assertEqual(msg.all("route"), [], "%s: the server left its Route:\n%s"
                         % (what, ru.describe(msg)))

    def assertForwardedInvite(self, msg):
        """The INVITE as the callee got it: Max-Forwards decremented, a Record-Route of the
        server, and the caller's credentials (meant for the server) removed."""
        self.assertEqual(msg.header("max-forwards"), "69", ru.describe(msg))
        self.assertRegex(",".join(msg.all("record-route")),
                         r"<sip:127\.0\.0\.1:%d[;>]" % self.server.port, ru.describe(msg))
        self.assertEqual(msg.all("proxy-authorization"), [], ru.describe(msg))
        self.assertVia(msg, "INVITE")

    def assertFinals(self, uac, expected):
        """The caller received exactly these final answers to its INVITE, besides the 407."""
        statuses = uac.received_statuses("INVITE")
        self.assertEqual([s for s in statuses if s >= 200], [407] + expected,
                         "answers to the INVITEs: %s" % statuses)

    def callee(self, user, scenario, transport="udp"):
        """A SIPp phone for `user` that answers with `scenario`, registered and waiting."""
        if transport == "udp":
            uas = self.uas(scenario)
            self.register_with_sipp(user, uas.port)
            return uas
        # Over TCP the server reaches a phone only over the connection it registered on: one
        # SIPp registers and answers there (the call runs as its out-of-call scenario).
        uas = self.sipp("call_uas_tcp", transport="tcp", fields=[(user, self.users[user])],
                        extra=("-oocsf", os.path.join(harness.SCENARIOS, scenario + ".xml")))
        uas.start()
        ok = ru.wait_until(lambda: any(m.status == 200 for m in uas.received()), 10)
        self.assertTrue(ok, "the TCP callee did not register:\n" + uas.report())
        return uas

    def answered_call(self, caller, callee, uac_scenario, uas_scenario, caller_transport="udp",
                      callee_transport="udp"):
        """Callee `callee` registered and answering with `uas_scenario`, `caller` calling with
        `uac_scenario`; both must complete. Returns (uac, uas)."""
        uas = self.callee(callee, uas_scenario, callee_transport)
        uac = self.caller(uac_scenario, caller, callee, transport=caller_transport)
        self.assertRan(uac, uac.run(), "caller")
        self.assertRan(uas, uas.wait(), "callee")
        return uac, uas

    def basic_call(self, caller, callee, caller_transport, callee_transport):
        uac, uas = self.answered_call(caller, callee, "call_uac", "call_uas",
                                      caller_transport, callee_transport)
        self.assertFinals(uac, [200])
        self.assertEqual(uac.received_statuses("BYE"), [200])
        self.assertEqual(uas.received_requests(), ["INVITE", "ACK", "BYE"])
        self.assertForwardedInvite(uas.received_requests("INVITE")[0])
        self.assertVia(uas.received_requests("ACK")[0], "ACK for the 200")
        self.assertVia(uas.received_requests("BYE")[0], "BYE from the caller")
        self.assertRecord(caller, callee, 200, caller_transport, uac)
        return uac, uas

    # -- the calls -------------------------------------------------------------------------

    def test_basic_call_udp(self):
        """INVITE -> 407 -> ACK -> INVITE with credentials -> 180 -> 200 -> ACK -> BYE -> 200
        over UDP: ACK and BYE reach the callee through the server; one CDR, final code 200"""
        self.basic_call("basic-a", "basic-b", "udp", "udp")

    def test_basic_call_tcp(self):
        """The same call over TCP (SIPp -t t1) on both sides: the callee is reached over the
        connection it registered on"""
        self.basic_call("tcp-a", "tcp-b", "tcp", "tcp")

    def test_call_from_tcp_to_udp(self):
        """A caller on TCP reaches a callee on UDP; the callee sees two Record-Route entries
        (RFC 5658: the request changed transport), the caller's BYE still gets through"""
        _, uas = self.basic_call("mixed-a", "mixed-b", "tcp", "udp")
        invite = uas.received_requests("INVITE")[0]
        rr = ",".join(invite.all("record-route"))
        self.assertEqual(rr.count("<sip:"), 2, ru.describe(invite))
        self.assertIn("transport=tcp", rr, ru.describe(invite))

    def caller_cancels(self, caller, callee, transport):
        uac, uas = self.answered_call(caller, callee, "call_uac_cancel", "call_uas_ring",
                                      transport, transport)
        self.assertFinals(uac, [487])
        self.assertEqual(uac.received_statuses("CANCEL"), [200])
        self.assertEqual(uas.received_requests(), ["INVITE", "CANCEL", "ACK"])
        self.assertVia(uas.received_requests("CANCEL")[0], "CANCEL")
        self.assertRecord(caller, callee, 487, transport, uac)

    def test_caller_cancels(self):
        """The caller hangs up while it rings: CANCEL -> 200, the INVITE -> 487 at the caller;
        the callee got the CANCEL (and answered 487); CDR final code 487"""
        self.caller_cancels("cancel-a", "cancel-b", "udp")

    def test_caller_cancels_tcp(self):
        """The same over TCP on both sides"""
        self.caller_cancels("tcpcancel-a", "tcpcancel-b", "tcp")

    def test_callee_busy(self):
        """The callee answers 486 Busy Here: the caller gets the 486 and ACKs it; CDR 486"""
        uas = self.uas("call_uas_busy")
        self.register_with_sipp("busy-b", uas.port)
        uac = self.caller("call_uac_rejected", "busy-a", "busy-b")
        self.assertRan(uac, uac.run(), "caller")
        self.assertRan(uas, uas.wait(), "callee (ACK for its 486)")
        self.assertFinals(uac, [486])
        self.assertRecord("busy-a", "busy-b", 486, uac=uac)

    def test_no_answer(self):
        """Nobody answers within ring_timeout_s: the callee gets a CANCEL (and answers 487),
        the caller gets 480; CDR final code 480"""
        uas = self.uas("call_uas_ring")
        self.register_with_sipp("noans-b", uas.port)
        uac = self.caller("call_uac_rejected", "noans-a", "noans-b")
        self.assertRan(uac, uac.run(), "caller")
        self.assertRan(uas, uas.wait(), "callee")
        self.assertFinals(uac, [480])
        self.assertEqual(uas.received_requests(), ["INVITE", "CANCEL", "ACK"])
        self.assertRecord("noans-a", "noans-b", 480, uac=uac)

    def test_forking(self):
        """Two phones registered for one user both ring; one answers 200, the other gets a
        CANCEL and answers 487; the caller sees exactly one 200 and its BYE reaches the phone
        that answered; one CDR, final code 200"""
        answers = self.uas("call_uas")
        rings = self.uas("call_uas_ring")
        # Two REGISTERs for one user from SIPp within one second would carry byte-identical
        # credentials (SIPp's cnonce is predictable): a replay. The Python client registers.
        self.register_with_python("fork-b", answers.port)
        self.register_with_python("fork-b", rings.port)
        uac = self.caller("call_uac", "fork-a", "fork-b")
        self.assertRan(uac, uac.run(), "caller")
        self.assertRan(answers, answers.wait(), "the phone that answers")
        self.assertRan(rings, rings.wait(), "the phone that is cancelled")
        self.assertEqual(answers.received_requests(), ["INVITE", "ACK", "BYE"])
        self.assertEqual(rings.received_requests(), ["INVITE", "CANCEL", "ACK"])
        oks = {m.to_tag() for m in uac.received() if m.status == 200 and
               m.cseq_method() == "INVITE"}
        self.assertEqual(len(oks), 1, "the caller got 200s from %d phones" % len(oks))
        self.assertFinals(uac, [200])
        self.assertRecord("fork-a", "fork-b", 200, uac=uac)

    def test_reinvite(self):
        """A re-INVITE inside the call follows the Record-Route to the callee: 200, ACK; then
        BYE -> 200; CDR 200"""
        uac, uas = self.answered_call("reinv-a", "reinv-b", "call_uac_reinvite",
                                      "call_uas_reinvite")
        self.assertEqual(uas.received_requests(), ["INVITE", "ACK", "INVITE", "ACK", "BYE"])
        reinvite = uas.received_requests("INVITE")[1]
        self.assertIsNotNone(reinvite.to_tag(), ru.describe(reinvite))
        self.assertVia(reinvite, "re-INVITE")
        self.assertVia(uas.received_requests("ACK")[1], "ACK of the re-INVITE")
        self.assertFinals(uac, [200, 200])
        self.assertRecord("reinv-a", "reinv-b", 200, uac=uac)

    def bye_from_callee(self, caller, callee, transport):
        uac, uas = self.answered_call(caller, callee, "call_uac_callee_hangs_up",
                                      "call_uas_hangs_up", transport, transport)
        byes = uac.received_requests("BYE")
        self.assertEqual(len(byes), 1, uac.received_requests())
        self.assertVia(byes[0], "BYE from the callee")
        self.assertEqual(uas.received_statuses("BYE"), [200])
        self.assertRecord(caller, callee, 200, transport, uac)

    def test_bye_from_callee(self):
        """The callee hangs up: its BYE follows the Record-Route to the caller -> 200; CDR 200"""
        self.bye_from_callee("calleebye-a", "calleebye-b", "udp")

    def test_bye_from_callee_tcp(self):
        """The same over TCP on both sides: the BYE reaches the caller over its connection"""
        self.bye_from_callee("tcpbye-a", "tcpbye-b", "tcp")

    def test_200_retransmitted_after_the_transaction_ended(self):
        """The callee sends its 200 a second time before the ACK, as a phone does until the
        ACK arrives (RFC 3261 §13.3.1.4). The first 200 ended the server's forwarding
        context; the second still reaches the caller through the server (§16.7 step 5), whose
        SIPp answers it with its ACK again; then BYE -> 200"""
        callee = "retrans-b"
        with harness.UdpClient() as phone:
            self.register_with_python(callee, phone.local[1])
            uac = self.caller("call_uac", "retrans-a", callee).start()
            invite, server = None, None
            deadline = time.monotonic() + 10
            while invite is None and time.monotonic() < deadline:
                data, src = phone.recv(deadline - time.monotonic())
                if data is not None and harness.parse_message(data).method == "INVITE":
                    invite, server = harness.parse_message(data), src
            self.assertIsNotNone(invite, "the INVITE never reached the callee:\n" + uac.report())

            def answer(request, extra=""):
                lines = ["SIP/2.0 200 OK"]
                lines += ["Via: " + v for v in request.all("via")]
                lines += ["Record-Route: " + r for r in request.all("record-route")]
                to = request.header("to")
                if request.to_tag() is None:
                    to += ";tag=phone-retrans"
                lines += ["From: " + request.header("from"), "To: " + to,
                          "Call-ID: " + request.header("call-id"),
                          "CSeq: " + request.header("cseq")]
                return ("\r\n".join(lines) + "\r\n" + extra + "Content-Length: 0\r\n\r\n").encode()

            ok = answer(invite, "Contact: <sip:%s@127.0.0.1:%d>\r\n" % (callee, phone.local[1]))
            phone.send(ok, server)
            time.sleep(0.2)
            phone.send(ok, server)  # the retransmission, byte for byte
            requests, deadline = [], time.monotonic() + 10
            while time.monotonic() < deadline and "BYE" not in [r.method for r in requests]:
                data, src = phone.recv(deadline - time.monotonic())
                if data is None:
                    continue
                msg = harness.parse_message(data)
                if msg.method is not None:
                    requests.append(msg)
                if msg.method == "BYE":
                    phone.send(answer(msg), src)
            rc = uac.wait()
        self.assertRan(uac, rc, "caller")
        oks = [m for d, m in uac.messages() if d == "received" and m.status == 200 and
               m.cseq_method() == "INVITE"]
        self.assertEqual(len(oks), 2, "the caller got %d 200s for its INVITE" % len(oks))
        methods = [r.method for r in requests]
        self.assertEqual(methods[-1], "BYE", methods)
        self.assertEqual(set(methods[:-1]), {"ACK"}, methods)
        self.assertRecord("retrans-a", callee, 200, uac=uac)

    # -- refusals --------------------------------------------------------------------------

    def refused(self, scenario, callee, code, caller="nobody-a"):
        uac = self.caller(scenario, caller, callee)
        self.assertRan(uac, uac.run(), "caller")
        statuses = [s for s in uac.received_statuses("INVITE") if s >= 200 and s != 407]
        self.assertEqual(statuses, [code], uac.received_statuses("INVITE"))
        return uac

    def test_loop_detected(self):
        """An INVITE carrying a Via of the server with one of its branches -> 482"""
        self.refused("call_loop", "basic-b", 482)

    def test_max_forwards_zero(self):
        """An INVITE with Max-Forwards: 0 -> 483"""
        self.refused("call_max_forwards", "basic-b", 483)

    def test_callee_not_registered(self):
        """A call to a user with no registered contact -> 480 (after authentication)"""
        self.refused("call_uac_rejected", "offline-b", 480, caller="offline-a")

    def test_unknown_number_without_trunk(self):
        """A call to a number that is no user, with no trunk configured -> 404"""
        self.refused("call_uac_rejected", "5551234", 404, caller="nobody-a")


if __name__ == "__main__":
    harness.main()
