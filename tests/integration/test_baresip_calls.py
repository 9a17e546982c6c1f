#!/usr/bin/env python3
"""Two baresip 1.0.0 phones call each other through sipwarden over UDP, TCP and TLS.

For each transport, a fresh server (udp, tcp and tls listeners, [auth] algorithms = ["MD5"] —
baresip cannot answer SHA-256 —, domain 127.0.0.1, [calls] require_srtp = true) and two
phones, alice and bob (answermode=auto), each on its own range of RTP ports. Both register;
alice dials sip:bob@127.0.0.1 through a stdin pipe. The test checks:

- both phones report "Call established" (bob answered with a 200, alice got it and ACKed);
- the SDP offer and answer are plain RTP/AVP over UDP and TCP, RTP/SAVP with a=crypto over
  TLS (both phones with mediaenc=srtp-mand and srtp.so);
- media flowed both ways: dumpcap on lo (capture filter on the two RTP port ranges) saw more
  than MIN_RTP packets from alice's media port to bob's and as many the other way; over TLS
  each packet carries SRTP's 80-bit authentication tag (10 bytes more than plain RTP);
- alice's "/hangup" sends a BYE that reaches bob through the server, alice gets its 200, and
  bob reports the call terminated (and once over TCP the other way round: bob hangs up, and
  his BYE must reach alice over her connection, her Contact port being no listening one);
- the server's call record (sqlite3 DATA_DIR/sipwarden.db, table call_records) for the
  Call-ID shows caller alice, callee bob, the transport, answered_at > 0, ended_at > 0 and
  final code 200.

And a refusal: with require_srtp = true, a call over TLS whose offer is plain RTP/AVP gets
488 (seen in the caller's trace), and never reaches bob.

Capturing on lo needs root (or dumpcap's capabilities): the call tests are skipped when dumpcap
cannot capture. Every wait is bounded; only the processes started here are stopped.
"""
import collections
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baresip_util as bu  # noqa: E402
import harness  # noqa: E402
import registrar_util as ru  # noqa: E402

REGISTER_BOUND_S = 20.0
ESTABLISH_BOUND_S = 20.0
HANGUP_BOUND_S = 10.0
MEDIA_S = 3.0          # how long the call lasts once established
MIN_RTP = 20           # packets each way (baresip sends 50 a second with ptime 20)
RTP_PORTS = 10         # each phone's rtp_ports range
PCMU_20MS = 8 + 12 + 160  # UDP length of an RTP packet with 20 ms of PCMU
SRTP_TAG = 10          # AES_CM_128_HMAC_SHA1_80's authentication tag

HAVE_TOOLS = bu.BARESIP and bu.DUMPCAP and bu.TSHARK


def sdp_media(msg):
    """(port, protocol) of the first m=audio line of a message's body, or None."""
    for line in msg.body.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "m=audio":
            return int(parts[1]), parts[2]
    return None


def first(messages, pred):
    return next((m for m in messages if pred(m)), None)


@unittest.skipUnless(HAVE_TOOLS, "needs baresip (baresip-core), dumpcap and tshark")
class BaresipCallTest(unittest.TestCase):
    def setUp(self):
        self.server = ru.RegServer(transports=("udp", "tcp", "tls"),
                                   auth={"algorithms": ["MD5"]},
                                   sections={"calls": {"require_srtp": True}})
        self.server.start()
        self.addCleanup(self.server.cleanup)
        self.passwords = {}
        for name in ("alice", "bob"):
            self.passwords[name] = ru.strong_password(name)
            ru.add_user(self.server, name, self.passwords[name])
        if ru.wait_user_active(self.server, "bob", self.passwords["bob"], timeout=6) is None:
            raise AssertionError("the server did not pick up the users added with user add")

    # -- helpers -------------------------------------------------------------------------------

    def phone(self, name, transport, **kw):
        p = bu.Baresip(self.server.tmpdir, name, self.passwords[name], self.server, transport,
                       **kw)
        self.addCleanup(p.quit)
        return p

    def context(self, *phones):
        out = []
        for p in phones:
            out.append("---- %s (%s) output (tail):\n%s" % (p.user, p.transport,
                                                          p.output()[-8000:]))
        out.append("---- server log (tail):\n" + self.server.log()[-4000:])
        return "\n".join(out)

    def register(self, *phones):
        for p in phones:
            why = p.wait_registered(REGISTER_BOUND_S)
            self.assertIsNone(why, "%s over %s: %s\n%s"
                              % (p.user, p.transport, why, self.context(p)))

    def call_record(self, call_id, timeout=5.0):
        """The call_records row of `call_id` as a dict, waiting up to `timeout` s for it."""
        path = os.path.join(self.server.data_dir, "sipwarden.db")
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            try:
                db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=2)
                try:
                    db.row_factory = sqlite3.Row
                    rows = db.execute("SELECT * FROM call_records WHERE call_id = ?",
                                      (call_id,)).fetchall()
                finally:
                    db.close()
                if rows:
                    return [dict(r) for r in rows]
            except sqlite3.OperationalError:
                pass
            if time.monotonic() > deadline:
                return []
            time.sleep(0.2)
        return []

    def capture(self, ranges):
        filt = "udp and (%s)" % " or ".join("portrange %d-%d" % (a, a + RTP_PORTS - 1)
                                             for a in ranges)
        try:
            cap = bu.RtpCapture(self.server.tmpdir, filt)
        except RuntimeError as e:
            if os.geteuid() != 0 and "ermission" in str(e):
                self.skipTest("capturing on lo needs root: %s" % e)
            raise
        self.addCleanup(cap.stop)
        return cap

    # -- the call ------------------------------------------------------------------------------

    def call(self, transport, srtp, hangup_by="alice"):
        mediaenc = "srtp-mand" if srtp else None
        a_rtp = bu.free_port_range(RTP_PORTS, even=True)
        b_rtp = None
        for _ in range(50):
            b_rtp = bu.free_port_range(RTP_PORTS, even=True)
            if abs(b_rtp - a_rtp) >= RTP_PORTS:
                break
        bob = self.phone("bob", transport, answermode="auto", mediaenc=mediaenc,
                         rtp_ports=(b_rtp, b_rtp + RTP_PORTS - 1))
        alice = self.phone("alice", transport, mediaenc=mediaenc,
                           rtp_ports=(a_rtp, a_rtp + RTP_PORTS - 1))
        self.register(bob, alice)

        cap = self.capture((a_rtp, b_rtp))
        a_mark, b_mark = alice.mark(), bob.mark()
        alice.command("/dial sip:bob@127.0.0.1")
        for p, mark in ((alice, a_mark), (bob, b_mark)):
            got = p.wait_for([r"Call established"], ESTABLISH_BOUND_S, start=mark)
            self.assertIsNotNone(got, "%s did not report the call established within %.0f s\n%s"
                                 % (p.user, ESTABLISH_BOUND_S, self.context(alice, bob)))

        # The offer alice sent and the answer bob sent.
        offer = first(alice.messages(a_mark),
                      lambda m: m.method == "INVITE" and sdp_media(m) is not None)
        answer = first(bob.messages(b_mark),
                       lambda m: m.status == 200 and m.cseq_method() == "INVITE" and
                       sdp_media(m) is not None)
        self.assertIsNotNone(offer, "alice's INVITE with SDP not in her trace\n" +
                             self.context(alice))
        self.assertIsNotNone(answer, "bob's 200 with SDP not in his trace\n" + self.context(bob))
        call_id = offer.header("call-id")
        a_port, a_proto = sdp_media(offer)
        b_port, b_proto = sdp_media(answer)
        self.assertTrue(a_rtp <= a_port < a_rtp + RTP_PORTS, (a_port, a_rtp))
        self.assertTrue(b_rtp <= b_port < b_rtp + RTP_PORTS, (b_port, b_rtp))
        # Bob received the offer and alice the answer unchanged (the proxy leaves SDP alone).
        self.assertIsNotNone(first(bob.messages(b_mark), lambda m: m.method == "INVITE" and
                                   sdp_media(m) == (a_port, a_proto)),
                             "bob did not get alice's offer\n" + self.context(bob))
        self.assertIsNotNone(first(alice.messages(a_mark), lambda m: m.status == 200 and
                                   sdp_media(m) == (b_port, b_proto)),
                             "alice did not get bob's answer\n" + self.context(alice))
        for what, msg, proto in (("offer", offer, a_proto), ("answer", answer, b_proto)):
            body = msg.body.decode("utf-8", "replace")
            if srtp:
                self.assertEqual(proto, "RTP/SAVP", "%s:\n%s" % (what, body))
                self.assertRegex(body, r"(?m)^a=crypto:\d+ AES_CM_128_HMAC_SHA1_(80|32) "
                                       r"inline:", "%s:\n%s" % (what, body))
            else:
                self.assertEqual(proto, "RTP/AVP", "%s:\n%s" % (what, body))
                self.assertNotIn("a=crypto", body, what)

        time.sleep(MEDIA_S)

        # One hangs up: the BYE goes through the server to the other, who answers it.
        hanger, other = (alice, bob) if hangup_by == "alice" else (bob, alice)
        h_mark, o_mark = hanger.mark(), other.mark()
        hanger.command("/hangup")
        closed = other.wait_for([r"Call with sip:%s@\S+ terminated" % hanger.user],
                                HANGUP_BOUND_S, start=o_mark)
        self.assertIsNotNone(closed, "%s did not report the call closed after %s's /hangup\n%s"
                             % (other.user, hanger.user, self.context(alice, bob)))
        bye = first(other.messages(o_mark),
                    lambda m: m.method == "BYE" and m.header("call-id") == call_id)
        self.assertIsNotNone(bye, "%s's trace has no BYE for %s\n%s"
                             % (other.user, call_id, self.context(alice, bob)))
        deadline = time.monotonic() + 5
        bye_ok = None
        for _ in range(100):
            bye_ok = first(hanger.messages(h_mark),
                           lambda m: m.status == 200 and m.cseq_method() == "BYE" and
                           m.header("call-id") == call_id)
            if bye_ok is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertIsNotNone(bye_ok, "%s got no 200 for the BYE\n%s"
                             % (hanger.user, self.context(alice, bob)))

        # RTP both ways between the two media ports.
        cap.stop()
        a_to_b = cap.between(a_port, b_port)
        b_to_a = cap.between(b_port, a_port)
        summary = "alice %d -> bob %d: %d packets; bob -> alice: %d packets; all: %s" % (
            a_port, b_port, len(a_to_b), len(b_to_a),
            collections.Counter((s, d) for s, d, _ in cap.packets()).most_common(8))
        self.assertGreater(len(a_to_b), MIN_RTP, summary)
        self.assertGreater(len(b_to_a), MIN_RTP, summary)
        # 20 ms of PCMU per packet; SRTP adds its authentication tag.
        size = PCMU_20MS + (SRTP_TAG if srtp else 0)
        for lengths in (a_to_b, b_to_a):
            common = collections.Counter(lengths).most_common(1)[0][0]
            self.assertEqual(common, size, "UDP lengths %s; %s"
                             % (collections.Counter(lengths), summary))

        # The server's call record.
        rows = self.call_record(call_id)
        self.assertEqual(len(rows), 1, "call_records for %s: %r\n%s"
                         % (call_id, rows, self.server.log()[-3000:]))
        r = rows[0]
        self.assertEqual((r["caller"], r["callee"], r["transport"], r["final_code"]),
                         ("alice", "bob", transport, 200), r)
        self.assertGreater(r["answered_at"], 0, r)
        self.assertGreater(r["ended_at"], 0, r)
        self.assertGreaterEqual(r["answered_at"], r["started_at"], r)
        self.assertGreaterEqual(r["ended_at"], r["answered_at"], r)

    def test_call_udp(self):
        """UDP: answered, RTP both ways, BYE through, call record answered and ended"""
        self.call("udp", srtp=False)

    def test_call_tcp(self):
        """TCP: answered, RTP both ways, BYE through, call record answered and ended"""
        self.call("tcp", srtp=False)

    def test_call_tls_srtp(self):
        """TLS with SRTP (require_srtp): RTP/SAVP + a=crypto, SRTP both ways, BYE, record"""
        self.call("tls", srtp=True)

    def test_call_tcp_callee_hangs_up(self):
        """TCP, bob hangs up: his BYE reaches alice over the connection she called on"""
        self.call("tcp", srtp=False, hangup_by="bob")

    def test_tls_plain_rtp_refused(self):
        """require_srtp: a TLS call offering RTP/AVP gets 488 and never reaches bob"""
        bob = self.phone("bob", "tls", answermode="auto", mediaenc="srtp-mand")
        alice = self.phone("alice", "tls")
        self.register(bob, alice)
        a_mark, b_mark = alice.mark(), bob.mark()
        alice.command("/dial sip:bob@127.0.0.1")
        got = alice.wait_for([r"SIP/2.0 488 ", r"Call established"], ESTABLISH_BOUND_S,
                             start=a_mark)
        self.assertEqual(got, r"SIP/2.0 488 ", "alice did not get 488\n" +
                         self.context(alice, bob))
        refusal = first(alice.messages(a_mark), lambda m: m.status == 488)
        self.assertIsNotNone(refusal, self.context(alice))
        self.assertEqual(refusal.cseq_method(), "INVITE", refusal.raw)
        offer = first(alice.messages(a_mark),
                      lambda m: m.method == "INVITE" and sdp_media(m) is not None)
        self.assertIsNotNone(offer, self.context(alice))
        self.assertEqual(sdp_media(offer)[1], "RTP/AVP", offer.body)
        # Alice gives the call up on the 488, and bob never rang.
        self.assertIsNotNone(alice.wait_for([r"session closed: 488 "], 5, start=a_mark),
                             self.context(alice))
        time.sleep(1.0)
        self.assertIsNone(first(bob.messages(b_mark), lambda m: m.method == "INVITE"),
                          "the refused call reached bob\n" + self.context(bob))


if __name__ == "__main__":
    harness.main()
