#!/usr/bin/env python3
"""The server on ::1: OPTIONS to the server itself over UDP and TCP gets 200 OK."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Request, StreamClient, UdpClient  # noqa: E402


@unittest.skipUnless(harness.ipv6_loopback_available(), "no IPv6 loopback (::1) on this host")
class Ipv6Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(transports=("udp", "tcp"), addresses=("127.0.0.1", "::1"))
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_listening_on_ipv6(self):
        line = self.server.wait_for_log(r"event=listening transport=udp address=\[::1\]:%d"
                                        % self.server.port, timeout=1)
        self.assertIsNotNone(line, self.server.log())

    def test_options_udp_ipv6(self):
        with UdpClient("::1") as c:
            req = Request("OPTIONS", self.server.self_uri("udp", "::1"), "UDP", c.local)
            resp = c.request(req, self.server.addr("udp", "::1"))
            self.assertIsNotNone(resp, "no answer to OPTIONS over UDP on [::1]")
            self.assertEqual(resp.status, 200, resp.raw)
            self.assertIn("INVITE", resp.header("allow") or "")

    def test_options_tcp_ipv6(self):
        with StreamClient.tcp(self.server.addr("tcp", "::1")) as c:
            req = Request("OPTIONS", self.server.self_uri("tcp", "::1"), "TCP", c.local)
            resp = c.request(req)
            self.assertIsNotNone(resp, "no answer to OPTIONS over TCP on [::1]")
            self.assertEqual(resp.status, 200, resp.raw)
            self.assertIn("INVITE", resp.header("allow") or "")


if __name__ == "__main__":
    harness.main()
