#!/usr/bin/env python3
"""UDP retransmissions are absorbed by the server transactions (RFC 3261 §17.2).

- the 401 to a REGISTER without credentials is stateless (RFC 3261 §8.2.7): the same REGISTER
  sent three times gets three fresh challenges, and the oldest still works;
- the same REGISTER with credentials sent three times gets three byte-identical 200s
  (processed once);
- a retransmitted INVITE gets the same 407; without an ACK the 407 is retransmitted (Timer G);
  the ACK (same branch) gets no answer and stops the retransmissions;
- a CANCEL for an INVITE (same branch, CSeq method CANCEL) gets 200; one matching nothing 481.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import registrar_util as ru  # noqa: E402
from harness import Request, UdpClient, parse_message  # noqa: E402

T1_S = 0.5  # the server's T1 (its default, written into the configuration)


class RetransmissionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(transports=("udp",), workers=2,
                                    sections={"timers": {"t1_ms": int(T1_S * 1000)}})
        cls.server.start()
        cls.dest = cls.server.addr("udp")
        cls.password = ru.strong_password("carol")
        ru.add_user(cls.server, "carol", cls.password)
        ru.wait_user_active(cls.server, "carol", cls.password)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.client = UdpClient()
        self.addCleanup(self.client.close)

    def invite(self):
        return Request("INVITE", "sip:bob@example.com", "UDP", self.client.local,
                       from_uri="sip:alice@example.com",
                       headers=[("Contact", "<sip:alice@%s:%d>" % self.client.local)])

    def test_register_without_credentials_is_challenged_statelessly(self):
        req = Request("REGISTER", "sip:%s" % self.server.domain, "UDP", self.client.local,
                      from_uri="sip:carol@%s" % self.server.domain,
                      to_uri="sip:carol@%s" % self.server.domain,
                      headers=[("Contact", "<sip:carol@%s:%d>" % self.client.local),
                               ("Expires", "600")])
        answers = []
        for i in range(3):
            resp = self.client.request(req, self.dest, timeout=3)
            self.assertIsNotNone(resp, "no answer to REGISTER transmission %d" % (i + 1))
            self.assertEqual(resp.status, 401, resp.raw)
            self.assertIsNotNone(resp.to_tag(), "401 without a To tag: %r" % resp.raw)
            answers.append(resp)
        nonces = [ru.challenges(a)[0]["nonce"] for a in answers]
        self.assertEqual(len(set(nonces)), 3, "a retransmission got the same challenge "
                         "(a transaction kept for the 401?): %r" % nonces)
        # Nothing more (no second answer to any of the three).
        extra = self.client.recv_all(0.3)
        self.assertEqual(extra, [], "unexpected extra datagrams: %r" % extra)
        # The oldest challenge is as good as the newest: whichever a phone answers works.
        with ru.RegClient(self.server, "carol", self.password) as phone:
            final = phone.answer(ru.challenges(answers[0])[0])
            self.assertIsNotNone(final, "no answer to the authenticated REGISTER")
            self.assertEqual(final.status, 200, ru.describe(final))

    def test_register_with_credentials_retransmissions_get_identical_200(self):
        with ru.RegClient(self.server, "carol", self.password) as phone:
            first = phone.challenge()
            self.assertEqual(first.status, 401, ru.describe(first))
            auth = ru.authorization("carol", self.password, phone.pick(first), "REGISTER",
                                    phone.ruri)
            req = phone.build(contact=phone.default_contact(), expires=600, authorization=auth)
            answers = []
            for i in range(3):
                resp = phone.send(req, timeout=3)
                self.assertIsNotNone(resp, "no answer to transmission %d" % (i + 1))
                answers.append(resp)
            self.assertEqual(answers[0].status, 200, ru.describe(answers[0]))
            for i in (1, 2):
                self.assertEqual(answers[i].raw, answers[0].raw,
                                 "transmission %d got a different answer than the first "
                                 "(processed twice?)" % (i + 1))
            extra = phone.conn.recv_all(0.3)
            self.assertEqual(extra, [], "unexpected extra datagrams: %r" % extra)

    def test_invite_retransmission_same_407_and_ack_absorbed(self):
        req = self.invite()
        first = self.client.request(req, self.dest)
        self.assertIsNotNone(first, "no answer to INVITE")
        self.assertEqual(first.status, 407, first.raw)
        self.assertTrue(first.all("proxy-authenticate"), first.raw)
        self.assertIsNotNone(first.to_tag(), "407 without a To tag: %r" % first.raw)
        second = self.client.request(req, self.dest)
        self.assertIsNotNone(second, "no answer to the retransmitted INVITE")
        self.assertEqual(second.raw, first.raw, "the retransmitted INVITE got another answer")
        # ACK for the 407 (same branch, To tag of the 407): no answer, and it stops Timer G.
        self.client.send(req.ack(first), self.dest)
        got = self.client.recv_all(3 * T1_S + 0.5)
        self.assertEqual(got, [], "datagrams after the ACK (an answer to the ACK or 407 "
                                  "retransmissions not stopped by it): %r" % got)

    def test_407_retransmitted_until_ack(self):
        req = self.invite()
        first = self.client.request(req, self.dest)
        self.assertIsNotNone(first, "no answer to INVITE")
        self.assertEqual(first.status, 407, first.raw)
        # Timer G: the 407 comes again after T1 (then 2*T1) while no ACK arrives.
        again = self.client.wait_response(req, timeout=2 * T1_S + 1.0)
        self.assertIsNotNone(again, "the 407 was not retransmitted over UDP without an ACK")
        self.assertEqual(again.raw, first.raw)
        self.client.send(req.ack(first), self.dest)

    def test_cancel_matching_invite_gets_200(self):
        req = self.invite()
        first = self.client.request(req, self.dest)
        self.assertIsNotNone(first, "no answer to INVITE")
        cancel = req.cancel()
        self.client.send(cancel, self.dest)
        resp = self.client.wait_response(cancel, timeout=3)
        self.assertIsNotNone(resp, "no answer to CANCEL")
        self.assertEqual(resp.status, 200, resp.raw)
        self.assertEqual(resp.header("call-id"), req.call_id)
        self.client.send(req.ack(first), self.dest)

    def test_cancel_matching_nothing_gets_481(self):
        cancel = self.invite().cancel()  # the INVITE was never sent
        resp = self.client.request(cancel, self.dest)
        self.assertIsNotNone(resp, "no answer to CANCEL")
        self.assertEqual(resp.status, 481, resp.raw)


if __name__ == "__main__":
    harness.main()
