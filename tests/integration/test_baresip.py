#!/usr/bin/env python3
"""baresip 1.0.0 (Debian baresip-core) registers with sipwarden over UDP, TCP and TLS.

Each run writes a headless baresip configuration (PEERS.md: ausine/aubridge audio, stdio,
net_interface 127.0.0.1, sip_listen on a free loopback port, an empty contacts file) and one
account with outbound=sip:127.0.0.1:P;transport=T, drives baresip through a stdin pipe, and
checks: baresip reports the REGISTER's 200 ("{0/T/v4} 200 OK" and "registered
successfully"), and `sipwarden user show` lists the binding with transport T while baresip
runs. Then "/quit" (baresip unregisters); the process is killed (by its PID) if it lingers.

The server offers only MD5 ([auth] algorithms = ["MD5"]): libre 1.1.0 walks every
WWW-Authenticate and gives up with "Register: Function not implemented" (ENOSYS) as soon as
one of them is SHA-256, whatever the order, so baresip 1.0.0 cannot register while the server
also offers SHA-256.
"""
import os
import re
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

BARESIP = shutil.which("baresip")
STDBUF = shutil.which("stdbuf")
RUN_BOUND_S = 20.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")

CONFIG = """\
module_path\t\t/usr/lib/baresip/modules
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{port}
net_interface\t\t127.0.0.1
audio_player\t\taubridge,nul
audio_source\t\tausine,400
audio_alert\t\taubridge,nul
ausrc_srate\t\t48000
ausrc_channels\t\t2
module\t\t\tstdio.so
module\t\t\tg711.so
module\t\t\taubridge.so
module\t\t\tausine.so
module_tmp\t\taccount.so
module_app\t\tmenu.so
"""


class Baresip:
    """One baresip process with its own configuration directory; stdin is a pipe."""

    def __init__(self, workdir, user, password, server, transport):
        self.dir = tempfile.mkdtemp(prefix="baresip-%s-" % transport, dir=workdir)
        # sip_listen's port for UDP/TCP, and the next one for TLS: both must be free.
        port = None
        for _ in range(50):
            p = harness.random_free_port(kinds=("udp", "tcp"))
            if harness.port_is_free("127.0.0.1", p + 1, ("udp", "tcp")):
                port = p
                break
        self.port = port
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(CONFIG.format(port=port))
        open(os.path.join(self.dir, "contacts"), "w").close()
        host, sport = server.addr(transport)
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write('<sip:%s@%s;transport=%s>;auth_user=%s;auth_pass=%s;'
                    'outbound="sip:%s:%d;transport=%s";regint=600\n'
                    % (user, server.domain, transport, user, password, host, sport, transport))
        self.lines = []
        self.cond = threading.Condition()
        cmd = ([STDBUF, "-oL"] if STDBUF else []) + [BARESIP, "-f", self.dir, "-s"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = ANSI.sub("", raw.decode("utf-8", "replace").rstrip("\n"))
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def output(self):
        with self.cond:
            return "\n".join(self.lines)

    def wait_for(self, patterns, timeout):
        """The first regex among `patterns` found in the output (returns the pattern), or
        None after `timeout` s or when baresip exits."""
        rxs = [re.compile(p) for p in patterns]
        deadline = time.monotonic() + timeout
        with self.cond:
            for _ in range(100000):
                text = "\n".join(self.lines)
                for rx in rxs:
                    if rx.search(text):
                        return rx.pattern
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(remaining, 0.2))
        return None

    def quit(self):
        """'/quit' through the pipe; SIGKILL to this PID if still running after 5 s."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"/quit\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.reader.join(5)
        for s in (self.proc.stdin, self.proc.stdout):
            try:
                s.close()
            except OSError:
                pass


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
        phone = Baresip(self.server.tmpdir, name, pw, self.server, transport)
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
