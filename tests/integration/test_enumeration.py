#!/usr/bin/env python3
"""Users cannot be enumerated: existing and unknown extensions get the same answers.

Users 1000..1009 exist (strong passwords). Then:

- sipvicious 0.3.3 `svwar` with -m REGISTER and -m INVITE over 990-1020, and again over
  1000-1009 so that its first probe after the random one is an existing user: it reports
  none of 1000..1009. Its initial probe of a random extension gets 401 (REGISTER) or 407
  (INVITE), so it needs --force; it then takes that status line as "the answer for a bad
  user", and since every later extension gets that same line, it reports nothing (and stops
  at the first one, calling it "an unknown response"). svwar always sends from 127.0.0.1
  (PEERS.md); -x 127.0.0.1 spares it looking up its own address.
- nmap 7.93 `sip-enum-users` over UDP (-sU, root) with minext=990 maxext=1020: the script
  first checks that a random extension gets 404; the server answers 401, so the script stops
  with "Server not returning 404 for random extension" and reports no account. (Shown only
  with -d.)
- Because both tools give up early, the property is also checked directly: for every
  extension 990..1020, REGISTER and INVITE without credentials, and REGISTER with wrong
  credentials, get responses of exactly the same shape (status, reason, header names,
  challenge parameters) whether the user exists or not.
"""
import os
import re
import shutil
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import registrar_util as ru  # noqa: E402

SVWAR = shutil.which("svwar")
NMAP = shutil.which("nmap")
EXISTING = ["%d" % n for n in range(1000, 1010)]
RANGE = (990, 1020)


class EnumerationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The shield would ban svwar at its first packet (its User-Agent is a known scanner's)
        # and any source naming many users: switched off here, so that what is shown is that
        # the answers themselves give no user away. tests/integration/test_shield.py shows
        # the bans.
        cls.server = ru.RegServer(transports=("udp",),
                                  sections={"shield": {"scanner_user_agents": [],
                                                       "probed_users": 0,
                                                       "failures_per_source": 100000,
                                                       "failures_per_user": 0}})
        cls.server.start()
        cls.users = [(n, ru.strong_password(n)) for n in EXISTING]
        try:
            ru.import_users(cls.server, cls.users)
            name, pw = cls.users[-1]
            if ru.wait_user_active(cls.server, name, pw, timeout=6) is None:
                raise AssertionError("the server did not pick up the imported users")
        except Exception:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    # -- svwar ---------------------------------------------------------------------------

    def svwar(self, method, extensions):
        port = harness.random_free_port(kinds=("udp",), avoid=(self.server.port,))
        cmd = [SVWAR, "-e", extensions, "-m", method, "-p", str(self.server.port),
               "-P", str(port), "-x", "127.0.0.1", "--force", "--maximumtime", "5", "-v",
               "127.0.0.1"]
        r = harness.run(cmd, timeout=60, cwd=self.server.tmpdir)
        out = r.stdout + r.stderr
        what = "%s\nexit %d\n%s" % (" ".join(cmd), r.returncode, out[-4000:])
        # It reached the server (otherwise "found nothing" would prove nothing).
        self.assertIn("Ok SIP device found", out, what)
        self.assertNotIn("No server response", out, what)
        for ext in EXISTING:
            self.assertNotRegex(out, r"(?m)^\|\s*%s\s*\|" % ext, "listed in the table: " + what)
            self.assertNotIn("extension '%s' exists" % ext, out, what)
            self.assertNotIn("extension '%s' probably exists" % ext, out, what)
        self.assertNotRegex(out, r"extension '[^']*' (probably )?exists", what)
        return out

    @unittest.skipUnless(SVWAR, "svwar not found (Debian package sipvicious)")
    def test_svwar_register(self):
        """svwar -m REGISTER over 990-1020 and 1000-1009 finds none of 1000..1009"""
        self.svwar("REGISTER", "%d-%d" % RANGE)
        self.svwar("REGISTER", "1000-1009")

    @unittest.skipUnless(SVWAR, "svwar not found (Debian package sipvicious)")
    def test_svwar_invite(self):
        """svwar -m INVITE over 990-1020 and 1000-1009 finds none of 1000..1009"""
        self.svwar("INVITE", "%d-%d" % RANGE)
        self.svwar("INVITE", "1000-1009")

    # -- nmap ----------------------------------------------------------------------------

    @unittest.skipUnless(NMAP, "nmap not found")
    @unittest.skipUnless(os.geteuid() == 0, "a UDP scan (-sU) needs root")
    def test_nmap_sip_enum_users(self):
        """nmap sip-enum-users (UDP, 990..1020) finds no user"""
        cmd = [NMAP, "-d", "-n", "-Pn", "-sU", "-p", str(self.server.port),
               "--script", "+sip-enum-users", "--script-args",
               "sip-enum-users.minext=%d,sip-enum-users.maxext=%d" % RANGE,
               "--host-timeout", "60s", "-oX", "-", "127.0.0.1"]
        r = harness.run(cmd, timeout=90)
        what = "%s\nexit %d\n%s\n%s" % (" ".join(cmd), r.returncode, r.stdout[-4000:],
                                        r.stderr[-2000:])
        self.assertEqual(r.returncode, 0, what)
        start = r.stdout.find("<?xml")
        self.assertGreaterEqual(start, 0, what)
        root = ET.fromstring(r.stdout[start:])
        scripts = root.findall(".//port/script[@id='sip-enum-users']")
        self.assertTrue(scripts, "sip-enum-users did not run:\n" + what)
        output = scripts[0].get("output", "")
        # The script got an answer (no answer gives "No response from the SIP server").
        self.assertNotIn("No response", output, what)
        self.assertNotRegex(output, r"(Auth required|No auth|Forbidden)", what)
        for ext in EXISTING:
            self.assertNotIn(ext, output, what)

    # -- the same answers for everyone ---------------------------------------------------

    @staticmethod
    def shape(msg):
        if msg is None:
            return None
        chals = [parse for parse in (ru.parse_challenge(v) for v in
                                     msg.all("www-authenticate") + msg.all("proxy-authenticate"))]
        return (msg.status, msg.reason, tuple(sorted(msg.headers)),
                tuple(tuple(sorted(c)) for c in chals),
                tuple(c.get("algorithm") for c in chals), tuple(c.get("realm") for c in chals))

    def test_same_answers_for_existing_and_unknown(self):
        """REGISTER, INVITE and wrong-password REGISTER: one response shape for 990..1020"""
        shapes = {}
        with harness.UdpClient() as c:
            for n in range(RANGE[0], RANGE[1] + 1):
                ext = str(n)
                aor = "sip:%s@127.0.0.1" % ext
                reg = harness.Request("REGISTER", "sip:127.0.0.1", local=c.local, from_uri=aor,
                                      to_uri=aor, headers=[("Contact", "<%s:5999>" % aor)])
                r1 = c.request(reg, self.server.addr())
                inv = harness.Request("INVITE", aor, local=c.local,
                                      from_uri="sip:caller@127.0.0.1", to_uri=aor)
                r2 = c.request(inv, self.server.addr())
                if r2 is not None and r2.status >= 300:
                    c.send(inv.ack(r2), self.server.addr())
                shapes.setdefault(("REGISTER", self.shape(r1)), []).append(ext)
                shapes.setdefault(("INVITE", self.shape(r2)), []).append(ext)
        for method in ("REGISTER", "INVITE"):
            groups = {k: v for k, v in shapes.items() if k[0] == method}
            self.assertEqual(len(groups), 1, "%s answers differ by extension:\n%s"
                             % (method, "\n".join("%r: %s" % (k[1], v)
                                                  for k, v in groups.items())))
            (key, _), = groups.items()
            self.assertIsNotNone(key[1], "%s got no answer" % method)
            self.assertEqual(key[1][0], 401 if method == "REGISTER" else 407, key)

        # Wrong credentials: an existing and an unknown user get the same 401.
        wrong = {}
        for ext in ("1000", "1005", "1009", "999", "1010", "1020"):
            with ru.RegClient(self.server, ext, "Wrong-Passw0rd.kq") as rc:
                _, final = rc.register(contact="sip:%s@127.0.0.1:5999" % ext, expires=600)
                wrong.setdefault(self.shape(final), []).append(ext)
        self.assertEqual(len(wrong), 1, "wrong-password answers differ:\n%s"
                         % "\n".join("%r: %s" % kv for kv in wrong.items()))
        self.assertEqual(next(iter(wrong))[0], 401)


if __name__ == "__main__":
    harness.main()
