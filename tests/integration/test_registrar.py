#!/usr/bin/env python3
"""The registrar (REGISTER, RFC 3261 §10 with RFC 7616 digest) seen from outside.

SippRegistrarTest: SIPp 3.6.1 scenarios (scenarios/reg_*.xml) against a server offering only
MD5 ([auth] algorithms = ["MD5"]): SIPp answers the FIRST WWW-Authenticate and aborts
("createAuthHeader: authentication must use MD5 or AKAv1-MD5") when that one is SHA-256, so it
cannot be tested against the default SHA-256-first order. Every scenario uses its own user:
SIPp's cnonce comes from an unseeded rand() (always 6b8b4567 first) with nc=00000001, and the
server's nonce is the same for every client in one second, so two SIPp runs for one user in
the same second send byte-identical credentials, which the server rightly refuses as a replay.

DigestRegistrarTest: a small Python digest client (registrar_util.RegClient) against the
default order ["SHA-256", "MD5"] with nonce_lifetime_s = 10: SHA-256 registration, an MD5
client choosing the second challenge, refresh with nc=2 on the same nonce, replay refused,
stale nonce -> stale=true, unknown user and wrong password answered alike, 403 for a foreign
domain / another user's AOR / too many contacts, query, TCP and TLS.
"""
import os
import re
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import registrar_util as ru  # noqa: E402

SIPP = shutil.which("sipp")
MIN_EXPIRES = 60
NONCE_LIFETIME = 10


def bindings_of(test, server, name):
    r = ru.user_show(server, name)
    test.assertEqual(r.returncode, 0, "user show %s: %s%s" % (name, r.stdout, r.stderr))
    return ru.show_bindings(r.stdout)


@unittest.skipUnless(SIPP, "sipp not found (Debian package sip-tester)")
class SippRegistrarTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ru.RegServer(transports=("udp", "tcp"),
                                  registrar={"min_expires": MIN_EXPIRES},
                                  auth={"algorithms": ["MD5"]})
        cls.server.start()
        cls.users = {}
        for name in ("sipp-reg", "sipp-refresh", "sipp-unreg", "sipp-wild", "sipp-brief",
                     "sipp-tcp"):
            cls.users[name] = ru.strong_password(name)
            ru.add_user(cls.server, name, cls.users[name])
        # The server reads new users from the store within about a second.
        last = "sipp-tcp"
        if ru.wait_user_active(cls.server, last, cls.users[last], timeout=6) is None:
            cls.server.cleanup()
            raise AssertionError("the server did not pick up the users added with user add")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def sipp(self, scenario, name, transport="udp"):
        result, logs, port = ru.run_sipp(self.server, scenario, [(name, self.users[name])],
                                         transport=transport)
        self.assertEqual(result.returncode, 0,
                         "sipp %s over %s exited %d (expected 0: the call succeeded)\n"
                         "command: %s\nstdout (tail):\n%s\nstderr:\n%s\nlogs:\n%s"
                         % (scenario, transport, result.returncode, " ".join(result.args),
                            result.stdout[-2000:], result.stderr[-2000:], logs))
        return port, logs

    def test_register_with_auth(self):
        """REGISTER -> 401 (MD5) -> credentials -> 200 listing the Contact; user show agrees"""
        port, logs = self.sipp("reg_register", "sipp-reg")
        expected = "sip:sipp-reg@127.0.0.1:%d;transport=UDP" % port
        self.assertIn("Contact: <%s>;expires=" % expected, logs)
        b = bindings_of(self, self.server, "sipp-reg")
        self.assertEqual([x["contact"] for x in b], [expected], b)
        self.assertEqual(b[0].get("transport"), "udp", b)

    def test_register_over_tcp(self):
        """The same over TCP: 200 and a binding with transport tcp"""
        self.sipp("reg_register", "sipp-tcp", transport="tcp")
        b = bindings_of(self, self.server, "sipp-tcp")
        self.assertEqual(len(b), 1, b)
        self.assertEqual(b[0].get("transport"), "tcp", b)

    def test_refresh(self):
        """Register, then the same Call-ID with a higher CSeq (fresh challenge) -> 200"""
        self.sipp("reg_refresh", "sipp-refresh")
        self.assertEqual(len(bindings_of(self, self.server, "sipp-refresh")), 1)

    def test_unregister(self):
        """Register, then Expires: 0 for the Contact -> 200 without Contact; no binding left"""
        self.sipp("reg_unregister", "sipp-unreg")
        self.assertEqual(bindings_of(self, self.server, "sipp-unreg"), [])

    def test_wildcard_unregister(self):
        """Register two Contacts, then Contact: * with Expires: 0 -> 200 without Contact"""
        self.sipp("reg_wildcard", "sipp-wild")
        self.assertEqual(bindings_of(self, self.server, "sipp-wild"), [])

    def test_interval_too_brief(self):
        """Expires: 10 with min_expires 60 -> 423 with Min-Expires: 60; nothing bound"""
        self.sipp("reg_too_brief", "sipp-brief")
        self.assertEqual(bindings_of(self, self.server, "sipp-brief"), [])


class DigestRegistrarTest(unittest.TestCase):
    MAX_CONTACTS = 3

    @classmethod
    def setUpClass(cls):
        cls.server = ru.RegServer(transports=("udp", "tcp", "tls"),
                                  registrar={"min_expires": MIN_EXPIRES,
                                             "max_contacts": cls.MAX_CONTACTS},
                                  auth={"algorithms": ["SHA-256", "MD5"],
                                        "nonce_lifetime_s": NONCE_LIFETIME},
                                  # Wrong and replayed credentials are sent on purpose here,
                                  # from one address: the shield's bans are test_shield.py's.
                                  sections={"shield": {"failures_per_user": 0,
                                                       "failures_per_source": 100000}})
        cls.server.start()
        cls.users = {}
        for name in ("1000", "1001", "1002", "1003", "1004", "1005", "1006", "1007",
                     "alice", "bob", "carol"):
            cls.users[name] = ru.strong_password(name)
            ru.add_user(cls.server, name, cls.users[name])
        if ru.wait_user_active(cls.server, "carol", cls.users["carol"], timeout=6) is None:
            cls.server.cleanup()
            raise AssertionError("the server did not pick up the users added with user add")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def client(self, name, transport="udp", password=None):
        c = ru.RegClient(self.server, name, password or self.users.get(name, "x" * 16),
                         transport=transport)
        self.addCleanup(c.close)
        return c

    def assertStatus(self, msg, status, what):
        self.assertIsNotNone(msg, "%s: no response (expected %d)" % (what, status))
        self.assertEqual(msg.status, status, "%s: expected %d, got:\n%s"
                         % (what, status, ru.describe(msg)))

    def test_challenge_shape(self):
        """401 offers SHA-256 then MD5, same nonce, opaque, realm = domain, qop="auth" """
        c = self.client("1000")
        r = c.challenge(contact=c.default_contact(), expires=600)
        self.assertStatus(r, 401, "REGISTER without credentials")
        values = r.all("www-authenticate")
        self.assertEqual(len(values), 2, values)
        chals = ru.challenges(r)
        self.assertEqual([x.get("algorithm") for x in chals], ["SHA-256", "MD5"], values)
        for v, ch in zip(values, chals):
            self.assertEqual(ch["scheme"], "Digest", v)
            self.assertEqual(ch.get("realm"), "127.0.0.1", v)
            self.assertIn('qop="auth"', v)
            self.assertTrue(ch.get("nonce") and ch.get("opaque"), v)
            self.assertNotIn("stale", ch, v)
        self.assertEqual(chals[0]["nonce"], chals[1]["nonce"])

    def test_register_sha256(self):
        """REGISTER answered with SHA-256 -> 200 listing the Contact (expires <= asked)"""
        c = self.client("1001")
        contact = c.default_contact()
        first, final = c.register(algorithm="SHA-256", contact=contact, expires=600)
        self.assertStatus(first, 401, "REGISTER without credentials")
        self.assertIn("algorithm=SHA-256", c.last_authorization)
        self.assertStatus(final, 200, "REGISTER with SHA-256 credentials")
        listed = ru.contacts(final)
        self.assertEqual([u for u, _ in listed], [contact], ru.describe(final))
        self.assertTrue(0 < listed[0][1] <= 600, listed)
        b = bindings_of(self, self.server, "1001")
        self.assertEqual([x["contact"] for x in b], [contact], b)

    def test_register_md5_second_challenge(self):
        """An MD5-only client answers the second (MD5) challenge -> 200"""
        c = self.client("1002")
        first, final = c.register(algorithm="MD5", contact=c.default_contact(), expires=600)
        self.assertIn("algorithm=MD5", c.last_authorization)
        self.assertStatus(final, 200, "REGISTER with MD5 credentials")
        self.assertEqual(len(ru.contacts(final)), 1, ru.describe(final))

    def test_refresh_same_nonce_next_nc(self):
        """Refresh: same Call-ID, higher CSeq, same nonce with nc=2 -> 200, expiry renewed"""
        c = self.client("1003")
        contact = c.default_contact()
        _, final = c.register(algorithm="SHA-256", contact=contact, expires=300)
        self.assertStatus(final, 200, "first REGISTER")
        cnonce = re.search(r'cnonce="([^"]+)"', c.last_authorization).group(1)
        again = c.answer(c.last_challenge, nc=2, cnonce=cnonce, contact=contact, expires=900)
        self.assertStatus(again, 200, "refresh with nc=00000002 on the same nonce")
        listed = ru.contacts(again)
        self.assertEqual([u for u, _ in listed], [contact], ru.describe(again))
        self.assertTrue(300 < listed[0][1] <= 900, "expiry not renewed: %r" % listed)

    def test_replay_refused(self):
        """The same (nonce, nc, cnonce) in a new request -> 401, and so is a lower nc"""
        c = self.client("1004")
        contact = c.default_contact()
        _, final = c.register(algorithm="MD5", contact=contact, expires=600)
        self.assertStatus(final, 200, "REGISTER")
        # Exactly the same Authorization in a new transaction (new branch, next CSeq).
        replay = c.send(c.build(authorization=c.last_authorization, contact=contact,
                                expires=600))
        self.assertStatus(replay, 401, "replayed Authorization (same nonce and nc)")
        self.assertNotIn("stale", ru.challenges(replay)[0], ru.describe(replay))
        # nc=2 is accepted, then nc=1 with the same cnonce is a replay too.
        cnonce = re.search(r'cnonce="([^"]+)"', c.last_authorization).group(1)
        ok = c.answer(c.last_challenge, nc=2, cnonce=cnonce, contact=contact, expires=600)
        self.assertStatus(ok, 200, "nc=00000002 after nc=00000001")
        lower = c.answer(c.last_challenge, nc=1, cnonce=cnonce, contact=contact, expires=600)
        self.assertStatus(lower, 401, "nc=00000001 after nc=00000002 (same nonce, cnonce)")

    def test_stale_nonce(self):
        """A correct answer to a nonce older than nonce_lifetime_s -> 401 stale=true; a wrong
        one -> 401 without stale; the new nonce then works -> 200"""
        right = self.client("1005")
        wrong = self.client("1006")
        r1 = right.challenge(contact=right.default_contact(), expires=600)
        r2 = wrong.challenge(contact=wrong.default_contact(), expires=600)
        self.assertStatus(r1, 401, "challenge")
        self.assertStatus(r2, 401, "challenge")
        time.sleep(NONCE_LIFETIME + 2.5)
        old1, old2 = right.pick(r1, "SHA-256"), wrong.pick(r2, "MD5")
        s1 = right.answer(old1, contact=right.default_contact(), expires=600)
        self.assertStatus(s1, 401, "correct credentials on a %d s old nonce" % (NONCE_LIFETIME + 2))
        chals = ru.challenges(s1)
        self.assertTrue(all(x.get("stale", "").lower() == "true" for x in chals),
                        "expected stale=true on every challenge:\n" + ru.describe(s1))
        self.assertNotEqual(chals[0]["nonce"], old1["nonce"])
        s2 = wrong.answer(old2, password="Wrong-Passw0rd.zq", contact=wrong.default_contact(),
                          expires=600)
        self.assertStatus(s2, 401, "wrong password on an old nonce")
        self.assertFalse(any("stale" in x for x in ru.challenges(s2)),
                         "stale=true for a wrong password:\n" + ru.describe(s2))
        ok = right.answer(right.pick(s1, "SHA-256"), contact=right.default_contact(),
                          expires=600)
        self.assertStatus(ok, 200, "credentials on the fresh nonce of the stale challenge")

    def test_wrong_password_and_unknown_user_alike(self):
        """Wrong password and unknown user -> the same 401 (headers, challenges), no stale"""
        def attempt(name, password):
            c = self.client(name, password=password)
            _, final = c.register(algorithm="SHA-256", contact=c.default_contact(),
                                  expires=600)
            self.assertStatus(final, 401, "REGISTER as %s with a bad password" % name)
            return final
        bad = attempt("1007", "Not-the-Passw0rd.x")
        unknown = attempt("9999", "Not-the-Passw0rd.x")

        def shape(m):
            return (m.status, m.reason, sorted(m.headers),
                    [sorted(ch) for ch in ru.challenges(m)],
                    [ch.get("algorithm") for ch in ru.challenges(m)])
        self.assertEqual(shape(bad), shape(unknown),
                         "wrong password:\n%s\nunknown user:\n%s"
                         % (ru.describe(bad), ru.describe(unknown)))
        self.assertFalse(any("stale" in ch for ch in ru.challenges(bad)))

    def test_foreign_domain_forbidden(self):
        """To in a domain that is not the server's -> 403"""
        c = self.client("alice")
        req = c.build(contact=c.default_contact(), expires=600)
        req.to_uri = req.from_uri = "sip:alice@example.org"
        r = c.send(req)
        self.assertStatus(r, 403, "REGISTER for sip:alice@example.org")

    def test_other_users_aor_forbidden(self):
        """alice's valid credentials registering bob's AOR -> 403; bob gets no binding"""
        c = self.client("alice")
        first = c.send(c.build(contact=c.default_contact(), expires=600, to_user="bob"))
        self.assertStatus(first, 401, "REGISTER for bob without credentials")
        r = c.answer(c.pick(first, "SHA-256"), contact=c.default_contact(), expires=600,
                     to_user="bob")
        self.assertStatus(r, 403, "alice's credentials for To: sip:bob@127.0.0.1")
        self.assertEqual(bindings_of(self, self.server, "bob"), [])

    def test_too_many_contacts_and_query(self):
        """max_contacts (3) bindings -> 200; a 4th contact -> 403; a query lists the 3"""
        c = self.client("1000")
        uris = ["sip:1000@127.0.0.1:%d" % (40001 + i) for i in range(self.MAX_CONTACTS + 1)]
        _, ok = c.register(contact=uris[:self.MAX_CONTACTS], expires=600)
        self.assertStatus(ok, 200, "REGISTER with %d contacts" % self.MAX_CONTACTS)
        self.assertEqual(sorted(u for u, _ in ru.contacts(ok)), sorted(uris[:3]),
                         ru.describe(ok))
        _, over = c.register(contact=uris[3], expires=600)
        self.assertStatus(over, 403, "a contact beyond max_contacts")
        _, query = c.register()  # no Contact: a query
        self.assertStatus(query, 200, "query REGISTER")
        self.assertEqual(sorted(u for u, _ in ru.contacts(query)), sorted(uris[:3]),
                         ru.describe(query))

    def test_register_tcp_and_tls(self):
        """REGISTER over TCP and TLS -> 200; user show lists both transports"""
        for transport in ("tcp", "tls"):
            c = self.client("carol", transport=transport)
            _, final = c.register(algorithm="SHA-256", contact=c.default_contact(),
                                  expires=600)
            self.assertStatus(final, 200, "REGISTER over %s" % transport)
        transports = sorted(b.get("transport") for b in bindings_of(self, self.server, "carol"))
        self.assertEqual(transports, ["tcp", "tls"])


if __name__ == "__main__":
    harness.main()
