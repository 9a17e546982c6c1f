#!/usr/bin/env python3
"""Bindings survive a crash; a removed user disappears at once.

- 20 users register (Python digest client, each gets its 200); the server is killed with
  SIGKILL (its own PID only) and started again with the same configuration file; every
  acknowledged binding is found again, by a query REGISTER (200 listing the contact) and by
  `sipwarden user show` (the server sends 200 only once the binding is durable in SQLite).
- `sipwarden user remove` while the server runs: within a few seconds a query REGISTER by that
  name gets 401 and `user show` fails.
- With the widest group-commit window (`store.commit_window_ms = 100`) the 200 still means
  durable: the same SIGKILL test passes, and the server reports the settings it runs with.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import registrar_util as ru  # noqa: E402

USERS = 20
REMOVAL_BOUND_S = 5.0  # the server polls the store every second; ~3 s expected


class RegisteredUsers(unittest.TestCase):
    """A server with USERS imported users; STORE: its [store] section (None: the defaults)."""
    STORE = None

    def setUp(self):
        # The tests poll with the credentials of a removed user until they fail: the shield
        # would rightly ban that; its own tests are in test_shield.py.
        sections = {"shield": {"failures_per_user": 0, "failures_per_source": 100000}}
        if self.STORE:
            sections["store"] = dict(self.STORE)
        self.server = ru.RegServer(transports=("udp",), workers=2, sections=sections)
        self.server.start()
        self.addCleanup(self.server.cleanup)
        self.users = [("p%02d" % i, None) for i in range(USERS)]
        self.users = [(n, ru.strong_password(n)) for n, _ in self.users]
        r = ru.import_users(self.server, self.users)
        self.assertIn("imported %d users" % USERS, r.stdout)
        name, pw = self.users[-1]
        self.assertIsNotNone(ru.wait_user_active(self.server, name, pw, timeout=6),
                             "the server did not pick up the imported users")

    def register_all(self):
        contacts = {}
        for i, (name, pw) in enumerate(self.users):
            with ru.RegClient(self.server, name, pw) as c:
                contact = "sip:%s@127.0.0.1:%d;ob" % (name, 41000 + i)
                _, final = c.register(contact=contact, expires=3600)
                self.assertIsNotNone(final, "REGISTER %s: no response" % name)
                self.assertEqual(final.status, 200, "REGISTER %s:\n%s" % (name, ru.describe(final)))
                self.assertIn(contact, [u for u, _ in ru.contacts(final)], ru.describe(final))
                contacts[name] = contact
        return contacts

    def query(self, name, pw):
        with ru.RegClient(self.server, name, pw) as c:
            _, final = c.register()
            return final

    def check_bindings_survive_sigkill(self):
        contacts = self.register_all()
        old_pid = self.server.pid
        rc = ru.kill_and_relaunch(self.server)
        self.assertEqual(rc, -9, "the server was not killed by SIGKILL")
        self.assertNotEqual(self.server.pid, old_pid)
        missing = []
        for name, pw in self.users:
            final = self.query(name, pw)
            if final is None or final.status != 200:
                missing.append("%s: query REGISTER got %s" % (name, ru.describe(final)))
                continue
            listed = ru.contacts(final)
            if [u for u, _ in listed] != [contacts[name]]:
                missing.append("%s: query lists %r, expected [%r]" % (name, listed, contacts[name]))
            elif not 0 < listed[0][1] <= 3600:
                missing.append("%s: expiry %r" % (name, listed[0][1]))
            show = ru.user_show(self.server, name)
            shown = [b["contact"] for b in ru.show_bindings(show.stdout)]
            if show.returncode != 0 or shown != [contacts[name]]:
                missing.append("%s: user show rc=%d bindings %r\n%s" %
                               (name, show.returncode, shown, show.stdout + show.stderr))
        self.assertFalse(missing, "after SIGKILL and restart:\n" + "\n".join(missing) +
                         "\nserver log:\n" + self.server.log()[-3000:])


class PersistenceTest(RegisteredUsers):
    def test_bindings_survive_sigkill(self):
        """20 acknowledged bindings -> SIGKILL -> restart (same config) -> all 20 still there"""
        self.check_bindings_survive_sigkill()

    def test_user_remove_while_running(self):
        """user remove -> query REGISTER by that name gets 401 within a few s; show fails"""
        name, pw = self.users[0]
        other, other_pw = self.users[1]
        self.register_all()
        r = ru.remove_user(self.server, name)
        self.assertIn("removed user %s" % name, r.stdout)

        def refused():
            final = self.query(name, pw)
            return final if final is not None and final.status == 401 else None
        final = ru.wait_until(refused, REMOVAL_BOUND_S, 0.25)
        self.assertIsNotNone(final, "a removed user still authenticates after %.0f s"
                             % REMOVAL_BOUND_S)
        self.assertFalse(any("stale" in ch for ch in ru.challenges(final)))
        show = ru.user_show(self.server, name)
        self.assertNotEqual(show.returncode, 0, "user show of a removed user:\n" + show.stdout)
        self.assertIn("no such user", show.stderr)
        listed = ru.cli(self.server, "user", "list")
        self.assertNotIn("\n%s " % name, "\n" + listed.stdout)
        # The other users are untouched.
        final = self.query(other, other_pw)
        self.assertEqual(final.status if final else None, 200, ru.describe(final))
        self.assertEqual(len(ru.contacts(final)), 1, ru.describe(final))
        # The bindings went with the user: the same name added again starts with none, in
        # the store and in the server's memory.
        new_pw = ru.strong_password(name)
        ru.add_user(self.server, name, new_pw)
        final = ru.wait_user_active(self.server, name, new_pw, timeout=REMOVAL_BOUND_S)
        self.assertIsNotNone(final, "the re-added user is not accepted")
        self.assertEqual(ru.contacts(final), [], "a re-added user inherits old bindings:\n"
                         + ru.describe(final))
        show = ru.user_show(self.server, name)
        self.assertEqual(ru.show_bindings(show.stdout), [], show.stdout)


class WidestCommitWindowTest(RegisteredUsers):
    STORE = {"commit_window_ms": 100, "call_record_window_ms": 0}

    def test_bindings_survive_sigkill_with_the_widest_window(self):
        """commit_window_ms = 100: 20 acknowledged bindings still survive SIGKILL"""
        line = self.server.wait_for_log(r"event=store_opened ", timeout=5)
        self.assertIsNotNone(line, self.server.log()[-3000:])
        self.assertIn("commit_window_ms=100 call_record_window_ms=0", line)
        shown = ru.cli(self.server, "check-config")
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn("[store]\ncommit_window_ms = 100\ncall_record_window_ms = 0  #",
                      shown.stdout)
        self.check_bindings_survive_sigkill()


if __name__ == "__main__":
    harness.main()
