#!/usr/bin/env python3
"""nmap 7.93's sip-methods script lists the methods of the server's Allow header.

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


if __name__ == "__main__":
    harness.main()
