#!/usr/bin/env python3
"""SIP over TLS.

- OPTIONS over TLS gets 200, the session is TLS 1.2 or newer;
- pipelined requests, a request in three writes and a 40 KB request (several TLS records)
  are each answered;
- a TLS 1.1-only client and a client offering only non-AEAD / non-forward-secret suites are
  refused;
- without a configured certificate the server serves its generated self-signed ECDSA P-256
  certificate (the file in data_dir); with tls.certificate/private_key it serves that one;
- SIGHUP reloads the certificate: new connections get the new one, a connection opened
  before the reload keeps working.
"""
import os
import shutil
import signal
import ssl
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Request, StreamClient, insecure_tls_context, sha256_der  # noqa: E402


def options_over(server, client):
    return Request("OPTIONS", server.self_uri("tls"), "TLS", client.local)


class RefusalMixin:
    def assertRefused(self, ctx, what):
        """The handshake fails with the server's alert (or the server hangs up)."""
        try:
            c = StreamClient.tls(self.dest, context=ctx)
        except ssl.SSLError as e:
            text = str(e)
            if "NO_PROTOCOLS_AVAILABLE" in text or "NO_CIPHERS_AVAILABLE" in text:
                self.skipTest("this client's OpenSSL cannot offer %s: %s" % (what, text))
            return  # the server refused in the handshake (e.g. a handshake_failure alert)
        except OSError:
            return  # reset or EOF during the handshake
        with c:
            self.fail("the server accepted %s (negotiated %s, %s)"
                      % (what, c.tls_version(), c.sock.cipher()))


class SelfSignedTest(RefusalMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(transports=("tls",), workers=2)
        cls.server.start()
        cls.dest = cls.server.addr("tls")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_options_over_tls(self):
        with StreamClient.tls(self.dest) as c:
            self.assertIn(c.tls_version(), ("TLSv1.2", "TLSv1.3"))
            resp = c.request(options_over(self.server, c))
            self.assertIsNotNone(resp, "no answer to OPTIONS over TLS")
            self.assertEqual(resp.status, 200, resp.raw)
            self.assertIn("INVITE", resp.header("allow") or "")

    def test_pipelined_split_and_multi_record_requests(self):
        """However the bytes arrive, each request is answered, in order: two requests in one
        write (one TLS record); one request in three writes with pauses (its records end
        mid-message); one request of 40 KB, more than one TLS record can hold (16 KB)."""
        with StreamClient.tls(self.dest) as c:
            harness.check_pipelined_and_split(self, c, lambda: options_over(self.server, c))
            big = Request("OPTIONS", self.server.self_uri("tls"), "TLS", c.local,
                          body="v=0\r\n" + "a=x-pad:" + "p" * 40000 + "\r\n",
                          content_type="application/sdp")
            resp = c.request(big)
            self.assertIsNotNone(resp, "no answer to the 40 KB request")
            self.assertEqual(resp.status, 200, resp.raw)

    def test_tls12_with_aead_suite_accepted(self):
        ctx = insecure_tls_context(maximum=ssl.TLSVersion.TLSv1_2,
                                   ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
        with StreamClient.tls(self.dest, context=ctx) as c:
            self.assertEqual(c.tls_version(), "TLSv1.2")
            resp = c.request(options_over(self.server, c))
            self.assertIsNotNone(resp)
            self.assertEqual(resp.status, 200, resp.raw)

    def test_tls11_refused(self):
        ctx = insecure_tls_context(minimum=ssl.TLSVersion.TLSv1_1,
                                   maximum=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0")
        self.assertRefused(ctx, "a TLS 1.1-only client")

    def test_ecdhe_cbc_suite_refused(self):
        # The same key exchange and certificate as the accepted GCM suite above, but CBC+HMAC.
        ctx = insecure_tls_context(maximum=ssl.TLSVersion.TLSv1_2,
                                   ciphers="ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA")
        self.assertRefused(ctx, "ECDHE-ECDSA with CBC (non-AEAD) suites")

    def test_serves_generated_self_signed_ecdsa(self):
        cert_file = os.path.join(self.server.data_dir, "tls", "selfsigned-cert.pem")
        self.assertTrue(os.path.exists(cert_file), "no %s" % cert_file)
        with StreamClient.tls(self.dest) as c:
            der = c.peer_cert_der()
        self.assertEqual(sha256_der(der), sha256_der(harness.pem_file_der(cert_file)),
                         "the served certificate is not %s" % cert_file)
        text = harness.describe_cert(der)
        self.assertIn("id-ecPublicKey", text, text)
        self.assertRegex(text, r"prime256v1|P-256", text)
        self.assertIn("ecdsa-with-SHA256", text, text)


@unittest.skipUnless(shutil.which("openssl"), "openssl command not found")
class RsaCertificateTest(RefusalMixin, unittest.TestCase):
    """With an RSA certificate, so that RSA key exchange suites are possible at all."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sipwarden-it-tls-")
        cert, key = harness.make_cert(cls.tmp, "rsa", cn="rsa.example.com", key="rsa")
        cls.server = harness.Server(transports=("tls",), workers=2,
                                    sections={"tls": {"certificate": cert, "private_key": key}})
        cls.server.start()
        cls.dest = cls.server.addr("tls")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_ecdhe_rsa_gcm_accepted(self):
        ctx = insecure_tls_context(maximum=ssl.TLSVersion.TLSv1_2,
                                   ciphers="ECDHE-RSA-AES128-GCM-SHA256")
        with StreamClient.tls(self.dest, context=ctx) as c:
            self.assertEqual(c.tls_version(), "TLSv1.2")
            resp = c.request(options_over(self.server, c))
            self.assertIsNotNone(resp)
            self.assertEqual(resp.status, 200, resp.raw)

    def test_rsa_key_exchange_cbc_refused(self):
        # Neither forward secret nor AEAD.
        ctx = insecure_tls_context(maximum=ssl.TLSVersion.TLSv1_2,
                                   ciphers="AES128-SHA256:AES256-SHA256:AES128-SHA")
        self.assertRefused(ctx, "RSA key exchange with CBC suites (AES128-SHA256)")

    def test_rsa_key_exchange_gcm_refused(self):
        # AEAD but not forward secret.
        ctx = insecure_tls_context(maximum=ssl.TLSVersion.TLSv1_2,
                                   ciphers="AES128-GCM-SHA256:AES256-GCM-SHA384")
        self.assertRefused(ctx, "RSA key exchange (AES128-GCM-SHA256, not forward secret)")

    def test_ecdhe_rsa_cbc_refused(self):
        # Forward secret but not AEAD.
        ctx = insecure_tls_context(maximum=ssl.TLSVersion.TLSv1_2,
                                   ciphers="ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA")
        self.assertRefused(ctx, "ECDHE-RSA with CBC suites (not AEAD)")

    def test_tls11_refused(self):
        ctx = insecure_tls_context(minimum=ssl.TLSVersion.TLSv1_1,
                                   maximum=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0")
        self.assertRefused(ctx, "a TLS 1.1-only client")


@unittest.skipUnless(shutil.which("openssl"), "openssl command not found")
class ConfiguredCertificateTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sipwarden-it-tls-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.cert_a, self.key_a = harness.make_cert(self.tmp, "a", cn="a.example.com")
        self.cert_b, self.key_b = harness.make_cert(self.tmp, "b", cn="b.example.com", key="rsa")
        self.cert = os.path.join(self.tmp, "cert.pem")
        self.key = os.path.join(self.tmp, "key.pem")
        shutil.copy(self.cert_a, self.cert)
        shutil.copy(self.key_a, self.key)
        self.server = harness.Server(
            transports=("tls",), workers=2, tmpdir=os.path.join(self.tmp, "srv"),
            sections={"tls": {"certificate": self.cert, "private_key": self.key}})
        os.makedirs(self.server.tmpdir)
        self.server.start()
        self.addCleanup(self.server.cleanup)
        self.dest = self.server.addr("tls")

    def served_fingerprint(self):
        with StreamClient.tls(self.dest) as c:
            return sha256_der(c.peer_cert_der())

    def test_serves_configured_certificate(self):
        self.assertEqual(self.served_fingerprint(), sha256_der(harness.pem_file_der(self.cert_a)))

    def test_sighup_reload(self):
        fp_a = sha256_der(harness.pem_file_der(self.cert_a))
        fp_b = sha256_der(harness.pem_file_der(self.cert_b))
        before = StreamClient.tls(self.dest)
        self.addCleanup(before.close)
        self.assertEqual(sha256_der(before.peer_cert_der()), fp_a)
        resp = before.request(options_over(self.server, before))
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 200, resp.raw)

        # Replace the files (atomically each), then SIGHUP.
        for src, dst in ((self.cert_b, self.cert), (self.key_b, self.key)):
            tmp = dst + ".new"
            shutil.copy(src, tmp)
            os.replace(tmp, dst)
        mark = len(self.server.lines)
        self.server.signal(signal.SIGHUP)
        line = self.server.wait_for_log(r"event=tls_reload", timeout=10, start=mark)
        self.assertIsNotNone(line, "no reload logged after SIGHUP:\n" + self.server.log())
        self.assertIn("event=tls_reloaded", line)

        self.assertEqual(self.served_fingerprint(), fp_b,
                         "a new connection after SIGHUP does not get the new certificate")
        with StreamClient.tls(self.dest) as after:
            resp = after.request(options_over(self.server, after))
            self.assertIsNotNone(resp, "no answer on a connection opened after the reload")
            self.assertEqual(resp.status, 200, resp.raw)
        # The connection opened before the reload still works.
        resp = before.request(options_over(self.server, before))
        self.assertIsNotNone(resp, "the connection opened before SIGHUP no longer answers")
        self.assertEqual(resp.status, 200, resp.raw)

    def test_sighup_with_broken_files_keeps_old_certificate(self):
        fp_a = sha256_der(harness.pem_file_der(self.cert_a))
        with open(self.cert, "w") as f:
            f.write("not a certificate\n")
        mark = len(self.server.lines)
        self.server.signal(signal.SIGHUP)
        line = self.server.wait_for_log(r"event=tls_reload", timeout=10, start=mark)
        self.assertIsNotNone(line, "no reload outcome logged after SIGHUP")
        self.assertIn("event=tls_reload_failed", line)
        self.assertEqual(self.served_fingerprint(), fp_a)


if __name__ == "__main__":
    harness.main()
