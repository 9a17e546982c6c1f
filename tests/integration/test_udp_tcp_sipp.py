#!/usr/bin/env python3
"""SIPp (Debian sip-tester 3.6.1) against the server over UDP (-t u1) and TCP (-t t1).

Scenarios in scenarios/: OPTIONS -> 200 with Allow listing INVITE; REGISTER -> 401 with a
Digest WWW-Authenticate; INVITE -> 407 with a Digest Proxy-Authenticate, then ACK; unknown
method -> 501 with Allow. Each runs 20 calls and must exit 0 (every call succeeded).
"""
import glob
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SIPP = shutil.which("sipp")
CALLS = 20
TRANSPORTS = {"udp": "u1", "tcp": "t1"}
SCENARIOS = ("options", "register", "invite", "unknown_method")


@unittest.skipUnless(SIPP, "sipp not found (Debian package sip-tester)")
class SippTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(transports=("udp", "tcp"), workers=2)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def run_sipp(self, scenario, transport):
        workdir = tempfile.mkdtemp(prefix="sipwarden-it-sipp-")
        self.addCleanup(shutil.rmtree, workdir, True)
        result = None
        for _ in range(3):  # another local port if SIPp's was taken meanwhile
            local_port = harness.random_free_port(kinds=("udp", "tcp"))
            cmd = [SIPP, "%s:%d" % self.server.addr(transport),
                   "-sf", os.path.join(harness.SCENARIOS, scenario + ".xml"),
                   "-t", TRANSPORTS[transport], "-i", "127.0.0.1", "-p", str(local_port),
                   "-m", str(CALLS), "-r", "50", "-l", "10",
                   "-timeout", "30s", "-timeout_error", "-recv_timeout", "5000",
                   "-nostdin", "-trace_err"]
            result = harness.run(cmd, timeout=45, cwd=workdir)
            if "bind" not in (result.stdout + result.stderr).lower() or result.returncode == 0:
                break
        if result.returncode != 0:
            errors = ""
            for path in glob.glob(os.path.join(workdir, "*_errors.log")):
                with open(path, errors="replace") as f:
                    errors += f.read()[-4000:]
            self.fail("sipp %s over %s exited %d (expected 0: all %d calls succeeded)\n"
                      "command: %s\nstdout (tail):\n%s\nstderr:\n%s\nerror log:\n%s"
                      % (scenario, transport, result.returncode, CALLS, " ".join(cmd),
                         result.stdout[-3000:], result.stderr[-2000:], errors))


def _make(scenario, transport):
    def test(self):
        self.run_sipp(scenario, transport)
    test.__doc__ = "SIPp %s over %s" % (scenario, transport.upper())
    return test


for _s in SCENARIOS:
    for _t in TRANSPORTS:
        setattr(SippTest, "test_%s_%s" % (_s, _t), _make(_s, _t))


if __name__ == "__main__":
    harness.main()
