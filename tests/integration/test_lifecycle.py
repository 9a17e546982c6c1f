#!/usr/bin/env python3
"""The process seen from outside: check-config, configuration errors, SIGTERM, busy ports.

- `check-config --config FILE` prints the effective settings as TOML (the configured values
  included; the output is itself a valid configuration) and exits 0;
- a bad key makes check-config and serve exit 1 naming the key (every problem at once);
- SIGTERM stops a running server with exit code 0 within the grace period, logging
  event=stopped;
- a listener on a port already in use makes serve exit 1 naming the address;
- the threads carry names an operator can tell apart in `top -H` / `ps -L`: one sw-worker-N per
  worker and sw-store for the store's writer.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Request, UdpClient  # noqa: E402

try:
    import tomllib  # Python 3.11+
except ImportError:  # pragma: no cover
    tomllib = None

GRACE_MS = 2000


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sipwarden-it-life-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def sipwarden(self, *args, timeout=20):
        return harness.run([harness.binary(), *args], timeout=timeout, cwd=self.tmp)

    def test_check_config_prints_effective_toml(self):
        path = self.write("good.toml", """
[server]
domain = "sip.example.org"
workers = 3
shutdown_grace_ms = 1234

[[listen]]
transport = "udp"
address = "127.0.0.1"
port = 34567

[limits]
max_headers = 64

[connections]
idle_timeout_s = 300
""")
        r = self.sipwarden("check-config", "--config", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertTrue(out.startswith("# effective sipwarden settings (source: %s)" % path),
                        out[:200])
        for line in ('domain = "sip.example.org"', "workers = 3", "shutdown_grace_ms = 1234",
                     "port = 34567", "max_headers = 64", "idle_timeout_s = 300",
                     # defaults are printed too
                     "max_message_bytes = 65535", "t1_ms = 500"):
            self.assertIn("\n" + line, out, "check-config output lacks %r:\n%s" % (line, out))
        if tomllib is not None:
            parsed = tomllib.loads(out)
            self.assertEqual(parsed["server"]["domain"], "sip.example.org")
            self.assertEqual(parsed["server"]["workers"], 3)
            self.assertEqual(parsed["listen"], [{"transport": "udp", "address": "127.0.0.1",
                                                 "port": 34567, "optional": False}])
            self.assertEqual(parsed["limits"]["max_headers"], 64)
        # The output is itself a valid configuration with the same effective values.
        again = self.write("again.toml", out)
        r2 = self.sipwarden("check-config", "--config", again)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertEqual(r2.stdout.split("\n", 1)[1], out.split("\n", 1)[1])

    def test_check_config_bad_key_names_it(self):
        path = self.write("bad.toml", '[server]\nwrokers = 4\n[limits]\nmax_headers = 0\n')
        r = self.sipwarden("check-config", "--config", path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("server.wrokers: unknown key", r.stderr)
        # All problems at once.
        self.assertIn("limits.max_headers: must be between 8 and 1024 (got 0)", r.stderr)
        self.assertEqual(r.stdout, "", "check-config printed settings for a bad file")

    def test_check_config_unknown_section(self):
        path = self.write("bad.toml", "[servre]\ndomain = \"x.example.com\"\n")
        r = self.sipwarden("check-config", "--config", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("servre: unknown section", r.stderr)

    def test_serve_bad_config_exits_1_naming_key(self):
        port = harness.random_free_port()
        path = self.write("bad.toml", """
[server]
data_dir = "data"
workers = "2"

[[listen]]
transport = "udp"
address = "127.0.0.1"
port = %d
""" % port)
        r = self.sipwarden("serve", "--config", path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("server.workers", r.stderr)
        self.assertIn("must be an integer", r.stderr)
        self.assertNotIn("event=started", r.stdout)

    def test_serve_unreadable_config(self):
        r = self.sipwarden("serve", "--config", os.path.join(self.tmp, "missing.toml"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.toml: cannot read", r.stderr)


class SignalTest(unittest.TestCase):
    def test_sigterm_stops_gracefully(self):
        server = harness.Server(transports=("udp", "tcp"),
                                server={"shutdown_grace_ms": GRACE_MS})
        server.start()
        self.addCleanup(server.cleanup)
        # An open transaction (a UDP non-INVITE server transaction lingers after its answer).
        with UdpClient() as c:
            resp = c.request(Request("OPTIONS", server.self_uri(), "UDP", c.local),
                             server.addr("udp"))
            self.assertIsNotNone(resp)
            self.assertEqual(resp.status, 200)
        t0 = time.monotonic()
        server.signal(signal.SIGTERM)
        try:
            rc = server.proc.wait(GRACE_MS / 1000 + 5)
        except subprocess.TimeoutExpired:
            self.fail("sipwarden did not exit within the grace period (%d ms) + 5 s after "
                      "SIGTERM" % GRACE_MS)
        elapsed = time.monotonic() - t0
        server.stop()
        self.assertEqual(rc, 0, server.log())
        self.assertIsNotNone(server.wait_for_log(r"event=stopped", timeout=2),
                             "no event=stopped in the log:\n" + server.log())
        self.assertLess(elapsed, GRACE_MS / 1000 + 5)

    def test_sigterm_idle_server(self):
        server = harness.Server(transports=("udp", "tcp", "tls"),
                                server={"shutdown_grace_ms": GRACE_MS})
        server.start()
        self.addCleanup(server.cleanup)
        server.signal(signal.SIGTERM)
        try:
            rc = server.proc.wait(GRACE_MS / 1000 + 5)
        except subprocess.TimeoutExpired:
            self.fail("an idle sipwarden did not exit after SIGTERM")
        server.stop()
        self.assertEqual(rc, 0, server.log())
        self.assertIsNotNone(server.wait_for_log(r"event=stopped", timeout=2), server.log())


class ThreadNamesTest(unittest.TestCase):
    def test_threads_are_named(self):
        server = harness.Server(transports=("udp",), workers=2)
        server.start()
        self.addCleanup(server.cleanup)
        task = "/proc/%d/task" % server.proc.pid
        names = set()
        for tid in os.listdir(task):
            with open(os.path.join(task, tid, "comm")) as f:
                names.add(f.read().strip())
        self.assertLessEqual({"sw-worker-0", "sw-worker-1", "sw-store"}, names)


class BusyPortTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sipwarden-it-busy-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def serve_on_busy(self, transport, kind):
        holder = socket.socket(socket.AF_INET, kind)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            holder.listen(1)
        port = holder.getsockname()[1]
        path = os.path.join(self.tmp, "busy.toml")
        with open(path, "w") as f:
            f.write('[server]\ndata_dir = "data"\nworkers = 1\n\n[[listen]]\n'
                    'transport = "%s"\naddress = "127.0.0.1"\nport = %d\n' % (transport, port))
        r = harness.run([harness.binary(), "serve", "--config", path], timeout=20, cwd=self.tmp)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("127.0.0.1:%d" % port, r.stderr, r.stdout + r.stderr)
        self.assertNotIn("event=started", r.stdout)

    def test_udp_port_in_use(self):
        self.serve_on_busy("udp", socket.SOCK_DGRAM)

    def test_tcp_port_in_use(self):
        self.serve_on_busy("tcp", socket.SOCK_STREAM)


if __name__ == "__main__":
    harness.main()
