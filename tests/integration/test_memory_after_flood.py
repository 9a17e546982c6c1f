#!/usr/bin/env python3
"""Memory comes back after a flood, and after a burst of TLS connections.

A flood of authenticated REGISTERs over UDP from SIPp (REGISTER, 401, REGISTER with MD5
credentials, 200; 2,000/s for 45 s over 100 users), then a quiet load of the same (50/s). The
flood fills the transaction table and the timer wheel: a UDP transaction is kept for Timer J
(64*T1, 32 s at the default T1) after its answer. It fills the nonce-count table too: an entry
per authentication, kept until its nonce is stale (here 10 s, plus 5 s). Under the quiet load
that follows, the server's PSS must fall back to within 20 % of what the flood added.

What it caught:
- the table's and the wheel's slots and the nonce-count rings stayed at the flood's size for the
  life of the server (an 8 s flood at T1 = 100 ms kept 42 % of its growth);
- the wheel's 4,096 buckets, each a small vector, were reallocated all through a load longer
  than the wheel's revolution (41 s), among the load's short-lived blocks of the same size, and
  kept mimalloc from giving back most of those pages: 68 % of the growth kept, against 7 % once
  the buckets allocated nothing.
Challenges and OPTIONS leave no state behind, so they could not make the peak.

A burst of 2,000 TLS connections (a handshake and an OPTIONS each, all open at once, then all
closed): the PSS must fall back to within 20 % of what the connections added. What it caught:
mimalloc gave a freed run of pages back only when the thread that owned it next freed or
allocated pages; a worker left idle by the closed connections never did, and the server kept
all of the growth for good.

The flood must have added at least 8 MiB, or the test proves nothing and fails. Memory is
measured on the Release build: under ASan freed memory waits in the sanitizer's quarantine, so a
sanitized build's PSS says nothing about what the server gives back.
"""
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import registrar_util as ru  # noqa: E402

SIPP = shutil.which("sipp")
FLOOD_RATE = 2000
FLOOD_S = 45  # longer than a revolution of the timer wheel (4,096 ticks of 10 ms)
QUIET_RATE = 50
USERS = 100
NONCE_LIFETIME_S = 10
KEPT_PERCENT = 20
SETTLE_S = 60  # at most, polling: the transactions end 32 s after their answers, the
#                nonce-count entries 15 s after their nonces were issued
def pss_kib(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError("no Pss in smaps_rollup")


def settle(pid, limit, seconds):
    """Polls the PSS once a second until it is at most `limit` KiB or `seconds` have passed;
    returns the last reading and all of them."""
    series = []
    deadline = time.monotonic() + seconds
    while True:
        now = pss_kib(pid)
        series.append(now)
        if now <= limit or time.monotonic() > deadline:
            return now, series
        time.sleep(1)


@unittest.skipUnless(SIPP, "sipp not found (Debian package sip-tester)")
class MemoryAfterFloodTest(unittest.TestCase):
    def setUp(self):
        # One source sends everything: the per-source limits are off, as for a trunk.
        self.server = ru.RegServer(
            transports=("udp",), workers=2, binary=harness.release_binary(),
            auth={"algorithms": ["MD5"], "nonce_lifetime_s": NONCE_LIFETIME_S},
            sections={"shield": {"packet_rate": 0, "register_rate": 0, "invite_rate": 0,
                                 "other_rate": 0}})
        self.server.start()
        self.addCleanup(self.server.cleanup)
        self.users = [("flood%03d" % i, ru.strong_password("flood%03d" % i))
                      for i in range(USERS)]
        ru.import_users(self.server, self.users)
        last = self.users[-1]
        self.assertIsNotNone(ru.wait_user_active(self.server, last[0], last[1], timeout=6),
                             "the server did not pick up the imported users")
        self.workdir = tempfile.mkdtemp(prefix="sipwarden-it-flood-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.inject = os.path.join(self.workdir, "users.csv")
        with open(self.inject, "w") as f:
            f.write("SEQUENTIAL\n")
            for name, password in self.users:
                f.write("%s;%s;\n" % (name, password))

    def sipp(self, rate, seconds):
        """The SIPp command line: `rate` registrations a second for `seconds`."""
        return [SIPP, "%s:%d" % self.server.addr("udp"),
                "-sf", os.path.join(harness.SCENARIOS, "reg_register.xml"), "-inf", self.inject,
                "-t", "u1", "-i", "127.0.0.1",
                "-p", str(harness.random_free_port(kinds=("udp",))),
                "-m", str(rate * seconds), "-r", str(rate), "-l", str(rate),
                "-timeout", "%ds" % (seconds + 20), "-nostdin", "-buff_size", "4194304"]

    def test_pss_falls_back_once_the_floods_state_has_ended(self):
        pid = self.server.pid
        before = pss_kib(pid)

        peak = [before]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], pss_kib(pid))
                done.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        flood = harness.run(self.sipp(FLOOD_RATE, FLOOD_S), timeout=FLOOD_S + 40,
                            cwd=self.workdir)
        done.set()
        sampler.join()
        peak = max(peak[0], pss_kib(pid))
        added = peak - before
        self.assertGreaterEqual(
            added, 8 * 1024,
            "the flood added only %d KiB (before %d, peak %d KiB): no load peak to come back "
            "from\nsipp exit %d, stdout (tail):\n%s"
            % (added, before, peak, flood.returncode, flood.stdout[-2000:]))

        # The quiet load: SIPp started here, stopped here by its PID.
        quiet = subprocess.Popen(self.sipp(QUIET_RATE, SETTLE_S + 10), cwd=self.workdir,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            limit = before + added * KEPT_PERCENT // 100
            now, series = settle(pid, limit, SETTLE_S)
        finally:
            quiet.terminate()
            try:
                quiet.wait(timeout=10)
            except subprocess.TimeoutExpired:
                quiet.kill()
                quiet.wait()
        self.assertLessEqual(
            now, limit,
            "PSS before the flood %d KiB, at its peak %d KiB; after %d s of the quiet load "
            "still %d KiB (more than %d %% of the flood's %d KiB kept). Samples: %s"
            % (before, peak, SETTLE_S, now, KEPT_PERCENT, added, series))

        # The server still registers after all that.
        name, password = self.users[0]
        with ru.RegClient(self.server, name, password) as c:
            _, final = c.register(timeout=3.0)
        self.assertIsNotNone(final, "no answer to a REGISTER after the flood")
        self.assertEqual(final.status, 200, final.raw)


TLS_CONNECTIONS = 2000


@unittest.skipUnless(shutil.which("openssl"), "openssl not found")
class MemoryAfterTlsBurstTest(unittest.TestCase):
    def setUp(self):
        # The client's and the server's file descriptors (the server inherits the limit).
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 2 * TLS_CONNECTIONS + 512
        if soft < want:
            if hard != resource.RLIM_INFINITY and hard < want:
                self.skipTest("the hard limit on open files (%d) is below %d" % (hard, want))
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        self.server = ru.RegServer(
            transports=("udp", "tls"), workers=2, binary=harness.release_binary(),
            sections={"shield": {"packet_rate": 0, "register_rate": 0, "invite_rate": 0,
                                 "other_rate": 0},
                      "connections": {"max_connections": TLS_CONNECTIONS + 100,
                                      "max_connections_per_source": TLS_CONNECTIONS + 100}})
        self.server.start()
        self.addCleanup(self.server.cleanup)

    def options_over(self, client):
        """An OPTIONS on `client` (a harness.StreamClient); asserts it gets 200."""
        req = harness.Request("OPTIONS", self.server.self_uri("tls"), "TLS", client.local)
        resp = client.request(req)
        self.assertIsNotNone(resp, "no answer to an OPTIONS over TLS")
        self.assertEqual(resp.status, 200, resp.raw)

    def test_pss_falls_back_once_the_connections_have_closed(self):
        pid = self.server.pid
        before = pss_kib(pid)
        dest = self.server.addr("tls")
        conns = []
        try:
            for _ in range(TLS_CONNECTIONS):
                conns.append(harness.StreamClient.tls(dest))
                self.options_over(conns[-1])
            time.sleep(1)
            peak = pss_kib(pid)
        finally:
            for c in conns:
                c.close()
        added = peak - before
        self.assertGreaterEqual(
            added, 8 * 1024,
            "%d TLS connections added only %d KiB (before %d KiB): nothing to come back from"
            % (TLS_CONNECTIONS, added, before))
        limit = before + added * KEPT_PERCENT // 100
        now, series = settle(pid, limit, 20)
        self.assertLessEqual(
            now, limit,
            "PSS before the connections %d KiB, with them open %d KiB; 20 s after they closed "
            "still %d KiB (more than %d %% of their %d KiB kept). Samples: %s"
            % (before, peak, now, KEPT_PERCENT, added, series))
        # The server still answers over TLS.
        with harness.StreamClient.tls(dest) as c:
            self.options_over(c)


if __name__ == "__main__":
    harness.main()
