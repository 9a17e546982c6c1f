#!/usr/bin/env python3
"""Connection limits and stream hygiene over TCP.

- max_connections_per_source = 5: five idle connections from 127.0.0.1 are held; a sixth from
  127.0.0.1 is closed at once, while another source (127.0.0.2) still gets 200 to OPTIONS and
  the five held connections still work;
- a slow-loris connection (partial header, then silence) is closed after idle_timeout_s while
  another connection keeps working;
- a CRLF CRLF keep-alive ping gets a CRLF pong (RFC 5626 §3.5.1);
- two requests in one write, and one request in three writes, are each answered;
- a bad Content-Length gets 400 and the connection is closed;
- the server raises its soft limit on open files to what max_connections needs; when it runs
  out of file descriptors anyway (its limit lowered under it), it logs it once, does not spin
  on the connections waiting in the backlog (before: both cores, 10 s of CPU in 5 s), and
  accepts again once connections have closed.
"""
import os
import resource
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Request, StreamClient  # noqa: E402

PER_SOURCE = 5
IDLE_TIMEOUT_S = 2


def options(server, client):
    return Request("OPTIONS", server.self_uri("tcp"), "TCP", client.local)


class PerSourceLimitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(
            transports=("tcp",), workers=2,
            sections={"connections": {"max_connections_per_source": PER_SOURCE,
                                      "idle_timeout_s": 60}})
        cls.server.start()
        cls.dest = cls.server.addr("tcp")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_sixth_connection_from_one_source_refused(self):
        held = []
        try:
            for i in range(PER_SOURCE):
                c = StreamClient.tcp(self.dest, source="127.0.0.1")
                held.append(c)
            # Make sure the server has accepted all five (each answers a keep-alive ping).
            for i, c in enumerate(held):
                c.send(b"\r\n\r\n")
                self.assertEqual(c.recv_raw(2, timeout=3), b"\r\n",
                                 "held connection %d not served" % (i + 1))
            try:
                sixth = StreamClient.tcp(self.dest, source="127.0.0.1")
            except OSError:
                sixth = None  # refused even before the connection completed
            if sixth is not None:
                held.append(sixth)
                try:
                    sixth.send(options(self.server, sixth))
                except OSError:
                    pass  # already reset: that is a refusal too
                self.assertTrue(sixth.closed_by_peer(timeout=3),
                                "the 6th connection from 127.0.0.1 was not closed "
                                "(max_connections_per_source = %d)" % PER_SOURCE)
                self.assertNotIn(b"SIP/2.0 200", sixth.buf, "the 6th connection was served")

            # Another source address is not affected.
            with StreamClient.tcp(self.dest, source="127.0.0.2") as other:
                resp = other.request(options(self.server, other))
                self.assertIsNotNone(resp, "no answer over TCP from 127.0.0.2")
                self.assertEqual(resp.status, 200, resp.raw)

            # The five held connections still work.
            for i, c in enumerate(held[:PER_SOURCE]):
                resp = c.request(options(self.server, c))
                self.assertIsNotNone(resp, "held connection %d no longer answered" % (i + 1))
                self.assertEqual(resp.status, 200, resp.raw)
        finally:
            for c in held:
                c.close()

    def test_crlf_keepalive_gets_crlf(self):
        with StreamClient.tcp(self.dest, source="127.0.0.3") as c:
            c.send(b"\r\n\r\n")
            pong = c.recv_raw(16, timeout=3)
            self.assertEqual(pong, b"\r\n", "double-CRLF ping answered with %r" % pong)
            # The connection is still usable after the ping.
            resp = c.request(options(self.server, c))
            self.assertIsNotNone(resp)
            self.assertEqual(resp.status, 200, resp.raw)

    def test_pipelined_and_split_requests(self):
        """Two requests in one write, then one request in three writes with pauses: each is
        answered, in order (the reader stops at a short read and waits for the socket)."""
        with StreamClient.tcp(self.dest, source="127.0.0.5") as c:
            harness.check_pipelined_and_split(self, c, lambda: options(self.server, c))

    def test_bad_content_length_gets_400_and_close(self):
        for value in ("abc", "-5"):
            with self.subTest(content_length=value):
                with StreamClient.tcp(self.dest, source="127.0.0.4") as c:
                    req = options(self.server, c).encode()
                    req = req.replace(b"Content-Length: 0", b"Content-Length: " + value.encode())
                    c.send(req)
                    data = c.recv_message(timeout=3)
                    self.assertIsNotNone(data, "no answer to Content-Length: %s over TCP" % value)
                    resp = harness.parse_message(data)
                    self.assertEqual(resp.status, 400, data)
                    self.assertTrue(c.closed_by_peer(timeout=3),
                                    "the connection stayed open after an unframeable message")


class IdleTimeoutTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(
            transports=("tcp",), workers=2,
            sections={"connections": {"idle_timeout_s": IDLE_TIMEOUT_S}})
        cls.server.start()
        cls.dest = cls.server.addr("tcp")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_slow_loris_closed(self):
        with StreamClient.tcp(self.dest) as loris:
            loris.send(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1")
            # Meanwhile another connection is served normally.
            with StreamClient.tcp(self.dest) as other:
                resp = other.request(options(self.server, other))
                self.assertIsNotNone(resp, "no answer on a second connection")
                self.assertEqual(resp.status, 200, resp.raw)
            # Generous bound: idle_timeout_s plus the server's once-a-second sweep and slack.
            self.assertTrue(loris.closed_by_peer(timeout=IDLE_TIMEOUT_S + 4),
                            "a connection with a partial header was not closed within %d s "
                            "(idle_timeout_s = %d)" % (IDLE_TIMEOUT_S + 4, IDLE_TIMEOUT_S))
            self.assertEqual(loris.buf, b"", "the partial message got an answer: %r" % loris.buf)


class FileLimitTest(unittest.TestCase):
    MAX_CONNECTIONS = 2000
    LOWERED = 128  # the server's limit on open files, lowered under it
    HELD = 300     # connections opened past it

    @classmethod
    def setUpClass(cls):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < cls.HELD + 256:
            resource.setrlimit(resource.RLIMIT_NOFILE, (cls.HELD + 256, hard))
        cls.saved_limit = (soft, hard)
        # A sanitized server out of file descriptors reports false errors (the sanitizers'
        # runtime needs descriptors of its own): this one runs the Release build.
        cls.server = harness.Server(
            transports=("tcp",), workers=2, binary=harness.release_binary(),
            sections={"connections": {"max_connections": cls.MAX_CONNECTIONS,
                                      "max_connections_per_source": cls.MAX_CONNECTIONS}})
        cls.server.start()
        cls.dest = cls.server.addr("tcp")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        resource.setrlimit(resource.RLIMIT_NOFILE, cls.saved_limit)

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.server.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def test_1_soft_limit_raised_to_what_max_connections_needs(self):
        soft, hard = resource.prlimit(self.server.pid, resource.RLIMIT_NOFILE)
        want = self.MAX_CONNECTIONS + 256
        if hard != resource.RLIM_INFINITY and hard < want:
            self.assertEqual(soft, hard)
            self.assertIsNotNone(self.server.wait_for_log(r"event=file_limit_low", timeout=1))
        else:
            self.assertGreaterEqual(soft, want, "the server's limit on open files")

    def test_2_out_of_descriptors_it_waits_and_accepts_again(self):
        resource.prlimit(self.server.pid, resource.RLIMIT_NOFILE, (self.LOWERED, self.LOWERED))
        held = []
        self.addCleanup(lambda: [c.close() for c in held])
        for _ in range(self.HELD):
            held.append(socket.create_connection(self.dest, timeout=5))
        self.assertIsNotNone(
            self.server.wait_for_log(r"event=accept_failed .*Too many open files", timeout=5),
            "no accept_failed in the log with %d connections past a limit of %d files"
            % (self.HELD, self.LOWERED))
        # The connections past the limit wait in the backlog. A server that retried at once
        # would burn a core per worker on them; allow a tenth of one.
        before = self.cpu_seconds()
        time.sleep(3)
        used = self.cpu_seconds() - before
        self.assertLess(used, 0.3, "the server used %.2f s of CPU in 3 s while out of file "
                        "descriptors" % used)
        # With room again (all but 20 closed), a new connection is served.
        for c in held[:-20]:
            c.close()
        with StreamClient.tcp(self.dest) as c:
            resp = c.request(options(self.server, c), timeout=5)
            self.assertIsNotNone(resp, "no answer once connections had closed")
            self.assertEqual(resp.status, 200, resp.raw)
        self.assertIsNotNone(self.server.wait_for_log(r"event=accept_resumed", timeout=5))


if __name__ == "__main__":
    harness.main()
