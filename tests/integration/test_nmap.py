#!/usr/bin/env python3
"""nmap 7.93 against the server: sip-methods lists the methods of the Allow header;
sip-brute is banned before it gets far, and never finds a password.

sip-methods' portrule only fires on port 5060 or a port whose service is "sip"; the server
listens on a random high port, so the script is forced with "+sip-methods" (service detection
with -sV would also mark the port sip, but takes about 40 s over UDP).
"""
import os
import shutil
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import registrar_util as ru  # noqa: E402
import shield_util as su  # noqa: E402

NMAP = shutil.which("nmap")
EXPECTED = {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER"}


@unittest.skipUnless(NMAP, "nmap not found")
class NmapSipMethodsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(transports=("udp", "tcp"), workers=2)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def scan(self, scan_type):
        cmd = [NMAP, "-n", "-Pn", scan_type, "-p", str(self.server.port),
               "--script", "+sip-methods", "--host-timeout", "30s", "-oX", "-", "127.0.0.1"]
        r = harness.run(cmd, timeout=50)
        self.assertEqual(r.returncode, 0, "%s\n%s\n%s" % (" ".join(cmd), r.stdout, r.stderr))
        root = ET.fromstring(r.stdout)
        scripts = root.findall(".//port/script[@id='sip-methods']")
        self.assertTrue(scripts, "sip-methods printed nothing:\n" + r.stdout)
        methods = {e.text.strip() for e in scripts[0].iter("elem") if e.text}
        if not methods:  # older output formats: the text only
            methods = {m.strip() for m in scripts[0].get("output", "").split(",")}
        missing = EXPECTED - methods
        self.assertFalse(missing, "sip-methods over %s lacks %s; it printed %r"
                         % (scan_type, sorted(missing), scripts[0].get("output")))
        return methods

    @unittest.skipUnless(os.geteuid() == 0, "a UDP scan (-sU) needs root")
    def test_sip_methods_udp(self):
        self.scan("-sU")

    def test_sip_methods_tcp(self):
        self.scan("-sT")


@unittest.skipUnless(NMAP, "nmap not found")
@unittest.skipUnless(os.geteuid() == 0, "a UDP scan (-sU) needs root")
class NmapSipBruteTest(unittest.TestCase):
    """sip-brute guesses REGISTER passwords for the users of its userdb.

    nmap's SIP library answers digest challenges in the RFC 2069 form (no qop, no cnonce, no
    nonce-count), which the server refuses whatever the password: a captured answer of that
    form could be replayed. So sip-brute cannot succeed here even with the right password;
    what the test shows is the shield: the failures get its source banned after
    failures_per_user (5) guesses, and the rest of the dictionary goes unanswered."""

    USER = "1000"

    def run_brute(self, shield):
        pw = ru.strong_password(self.USER)
        s = su.ShieldServer(shield=shield, auth={"algorithms": ["MD5"]}, workers=2)
        self.addCleanup(s.cleanup)
        s.add_user_offline(self.USER, pw)
        s.start()
        users = os.path.join(s.tmpdir, "users.txt")
        passwords = os.path.join(s.tmpdir, "passwords.txt")
        with open(users, "w") as f:
            f.write(self.USER + "\n")
        with open(passwords, "w") as f:  # 20 wrong guesses, then the real password
            f.write("\n".join(["guess%02d" % i for i in range(20)] + [pw]) + "\n")
        cmd = [NMAP, "-n", "-Pn", "-sU", "-p", str(s.port), "--script", "+sip-brute",
               "--script-args", "userdb=%s,passdb=%s" % (users, passwords),
               "--host-timeout", "90s", "-oX", "-", "127.0.0.1"]
        r = harness.run(cmd, timeout=120)
        what = "%s\nexit %d\n%s\n%s" % (" ".join(cmd), r.returncode, r.stdout[-4000:],
                                        r.stderr[-2000:])
        self.assertEqual(r.returncode, 0, what)
        root = ET.fromstring(r.stdout[r.stdout.find("<?xml"):])
        scripts = root.findall(".//port/script[@id='sip-brute']")
        self.assertTrue(scripts, "sip-brute did not run:\n" + what)
        return s, scripts[0].get("output", ""), what

    def test_sip_brute_is_banned(self):
        """sip-brute finds no password and its source ends up banned with a security event"""
        s, output, what = self.run_brute(shield=None)  # the defaults
        self.assertNotIn("Valid credentials", output, what)
        self.assertIn("127.0.0.1", s.banned_addresses(), what + "\n" + s.describe_events())
        self.assertTrue(s.find_events(type="banned", source="127.0.0.1"), s.describe_events())
        self.assertIsNone(su.options(s, "127.0.0.1", timeout=1.0),
                          "the banned source still gets answers")

    def test_sip_brute_without_bans_is_answered(self):
        """Control: with the bans relaxed every guess is answered (401) and none passes"""
        s, output, what = self.run_brute(shield={"failures_per_user": 1000,
                                                 "failures_per_source": 1000})
        self.assertNotIn("Valid credentials", output, what)
        self.assertNotIn("127.0.0.1", s.banned_addresses(), what)
        self.assertRegex(output, r"Performed (2[1-9]|[3-9][0-9]) guesses", what)


if __name__ == "__main__":
    harness.main()
