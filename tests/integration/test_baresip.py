#!/usr/bin/env python3
"""baresip 1.0.0 (Debian baresip-core) registers with sipwarden over UDP, TCP and TLS.

Each run starts a baresip_util.Baresip (a headless configuration as PEERS.md describes:
ausine/aubridge audio, stdio, net_interface 127.0.0.1, sip_listen on a free loopback port, an
empty contacts file, one account with outbound=sip:127.0.0.1:P;transport=T, driven through a
stdin pipe) and checks: baresip reports the REGISTER's 200 ("{0/T/v4} 200 OK" and "registered
successfully"), and `sipwarden user show` lists the binding with transport T while baresip
runs. Then "/quit" (baresip unregisters); the process is killed (by its PID) if it lingers.

The server offers only MD5 ([auth] algorithms = ["MD5"]): libre 1.1.0 walks every
WWW-Authenticate and gives up with "Register: Function not implemented" (ENOSYS) as soon as
one of them is SHA-256, whatever the order, so baresip 1.0.0 cannot register while the server
also offers SHA-256.
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baresip_util as bu  # noqa: E402
import harness  # noqa: E402
import registrar_util as ru  # noqa: E402

BARESIP = bu.BARESIP
RUN_BOUND_S = 20.0


@unittest.skipUnless(BARESIP, "baresip not found (Debian package baresip-core)")
class BaresipRegisterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ru.RegServer(transports=("udp", "tcp", "tls"),
                                  auth={"algorithms": ["MD5"]})
        cls.server.start()
        cls.users = {}
        for t in ("udp", "tcp", "tls"):
            name = "phone-" + t
            cls.users[t] = (name, ru.strong_password(name))
            ru.add_user(cls.server, name, cls.users[t][1])
        name, pw = cls.users["tls"]
        if ru.wait_user_active(cls.server, name, pw, timeout=6) is None:
            cls.server.cleanup()
            raise AssertionError("the server did not pick up the users added with user add")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def register(self, transport):
        name, pw = self.users[transport]
        phone = bu.Baresip(self.server.tmpdir, name, pw, self.server, transport)
        self.addCleanup(phone.quit)
        ok = r"\{0/%s/v4\} 200 OK" % transport.upper()
        failed = r"Register: .*|\{0/%s/v4\} [3-6][0-9][0-9] " % transport.upper()
        got = phone.wait_for([ok, failed], RUN_BOUND_S)
        self.assertEqual(got, ok, "baresip over %s did not report 200 OK for its REGISTER "
                         "within %.0f s (matched %r); its output:\n%s\nserver log (tail):\n%s"
                         % (transport, RUN_BOUND_S, got, phone.output()[-6000:],
                            self.server.log()[-2000:]))
        self.assertIsNotNone(phone.wait_for([r"registered successfully"], 5),
                             phone.output()[-3000:])
        # The 200 baresip got was for its REGISTER and lists its Contact.
        out = phone.output()
        tparam = "" if transport == "udp" else ";transport=" + transport
        m = re.search(r"Contact: <(sip:%s-[^>;]*%s)>;expires=600"
                      % (re.escape(name), re.escape(tparam)), out)
        self.assertIsNotNone(m, "baresip's REGISTER Contact not found in its trace:\n" + out)
        contact = m.group(1)
        # While baresip runs, the server's store holds the binding with the right transport.
        show = ru.user_show(self.server, name)
        self.assertEqual(show.returncode, 0, show.stdout + show.stderr)
        bindings = ru.show_bindings(show.stdout)
        self.assertEqual([b["contact"] for b in bindings], [contact], show.stdout)
        self.assertEqual(bindings[0].get("transport"), transport, show.stdout)
        self.assertIn("baresip", bindings[0].get("user_agent", ""), show.stdout)
        self.assertTrue(bindings[0].get("source", "").startswith("127.0.0.1:"), show.stdout)

    def test_register_udp(self):
        """baresip over UDP: 200, binding with transport udp"""
        self.register("udp")

    def test_register_tcp(self):
        """baresip over TCP: 200, binding with transport tcp"""
        self.register("tcp")

    def test_register_tls(self):
        """baresip over TLS: 200, binding with transport tls"""
        self.register("tls")


if __name__ == "__main__":
    harness.main()
