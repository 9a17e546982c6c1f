// REGISTER processing against an in-memory store: what a phone sees.
#include "registrar/registrar.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <map>

#include "sip/parser.h"

namespace registrar {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

// A store that keeps bindings in memory and acknowledges when the test says so.
class FakeStore final : public store::Store {
 public:
  base::Result<void> put_subscriber(const store::Subscriber&) override { return {}; }
  base::Result<void> put_subscribers(const std::vector<store::Subscriber>&) override { return {}; }
  base::Result<std::optional<store::Subscriber>> get_subscriber(const std::string&) override {
    return std::optional<store::Subscriber>();
  }
  base::Result<std::vector<store::Subscriber>> list_subscribers() override {
    return std::vector<store::Subscriber>();
  }
  base::Result<bool> remove_subscriber(const std::string&) override { return false; }
  base::Result<std::uint64_t> subscribers_version() override { return std::uint64_t{0}; }
  base::Result<std::vector<store::Binding>> load_bindings(std::int64_t) override {
    return std::vector<store::Binding>();
  }
  base::Result<std::vector<store::Binding>> bindings_of(const std::string&, std::int64_t) override {
    return std::vector<store::Binding>();
  }
  using store::Store::apply;
  void apply(std::shared_ptr<const store::BindingChange> change,
             std::function<void(bool)> done) override {
    pending.emplace_back(*change, std::move(done));
  }
  base::Result<std::size_t> purge_expired(std::int64_t) override { return std::size_t{0}; }
  base::Result<void> put_ban(const store::Ban&) override { return {}; }
  base::Result<bool> remove_ban(const std::string&) override { return false; }
  base::Result<std::vector<store::Ban>> list_bans(std::int64_t) override {
    return std::vector<store::Ban>();
  }
  void add_call_record(store::CallRecord) override {}
  void flush() override {}

  // Makes every queued change durable (or failed) and runs the callbacks.
  void commit(bool ok = true) {
    auto batch = std::move(pending);
    pending.clear();
    for (auto& [change, done] : batch) {
      if (ok) applied.push_back(change);
      done(ok);
    }
  }

  std::vector<std::pair<store::BindingChange, std::function<void(bool)>>> pending;
  std::vector<store::BindingChange> applied;
};

std::string md5_hex(const std::string& s) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), out, &n, EVP_md5(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < n; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 0xF]);
  }
  return hex;
}

class RegistrarTest : public ::testing::Test {
 protected:
  RegistrarTest()
      : nonces_(secret(), seconds(300)),
        challenger_(nonces_, secret(), {auth::Algorithm::kSha256, auth::Algorithm::kMd5}),
        verifier_(nonces_, "example.com") {
    store::Subscriber alice;
    alice.name = "1000";
    alice.realm = "example.com";
    alice.ha1_md5 = auth::ha1(auth::Algorithm::kMd5, "1000", "example.com", kPassword);
    alice.ha1_sha256 = auth::ha1(auth::Algorithm::kSha256, "1000", "example.com", kPassword);
    store::Subscriber bob = alice;
    bob.name = "2000";
    subscribers_.replace({alice, bob});
    Settings s;
    s.domain = "example.com";
    s.local_domains = {"example.com", "127.0.0.1"};
    s.min_expires = 60;
    s.max_expires = 3600;
    s.default_expires = 3600;
    s.max_contacts = 3;
    registrar_ = std::make_unique<Registrar>(s, store_, location_, subscribers_, verifier_,
                                             challenger_, [this] { return now_; });
    flow_.protocol = transport::Protocol::kUdp;
    flow_.remote = *transport::Endpoint::from_string("192.0.2.10", 5062);
    flow_.local = *transport::Endpoint::from_string("127.0.0.1", 5060);
  }

  static auth::Secret secret() {
    auth::Secret s;
    s.fill(9);
    return s;
  }

  std::string nonce() const { return nonces_.issue("example.com", now_); }

  // A REGISTER for `user`, authenticated as `auth_user` with `password` when non-empty.
  std::string register_text(const std::string& contacts, const std::string& auth_user = "1000",
                            const std::string& password = kPassword, std::uint32_t cseq = 1,
                            const std::string& extra = "", const std::string& to_user = "1000") {
    // One nonce per second here, so every request counts up its nonce-count (RFC 7616).
    char nc[9];
    std::snprintf(nc, sizeof nc, "%08x", ++nonce_count_);
    std::string auth;
    if (!password.empty()) {
      const std::string n = nonce();
      const std::string ha1 = md5_hex(auth_user + ":example.com:" + password);
      const std::string ha2 = md5_hex("REGISTER:sip:example.com");
      const std::string response =
          md5_hex(ha1 + ":" + n + ":" + std::string(nc) + ":c0ffee:auth:" + ha2);
      auth = "Authorization: Digest username=\"" + auth_user + "\", realm=\"example.com\", nonce=\"" +
             n + "\", uri=\"sip:example.com\", response=\"" + response +
             "\", algorithm=MD5, cnonce=\"c0ffee\", qop=auth, nc=" + std::string(nc) + "\r\n";
    }
    return "REGISTER sip:example.com SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 192.0.2.10:5062;rport;branch=z9hG4bK-" + std::to_string(cseq) + "\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:" + to_user + "@example.com>;tag=f1\r\n"
           "To: <sip:" + to_user + "@example.com>\r\n"
           "Call-ID: reg-1\r\n"
           "CSeq: " + std::to_string(cseq) + " REGISTER\r\n" + contacts + extra + auth +
           "Content-Length: 0\r\n\r\n";
  }

  // Runs a REGISTER through the registrar; commits the store and returns the final answer.
  Answer run(const std::string& text, bool commit = true) {
    text_ = text;
    EXPECT_TRUE(sip::parse(text_, msg_).ok()) << text_;
    std::optional<Answer> later;
    auto now = registrar_->handle(msg_, flow_, [&](Registrar::Finish f) { later = f(); });
    if (now) return *now;
    EXPECT_EQ(store_.pending.size(), 1u);
    if (commit) store_.commit();
    EXPECT_TRUE(later.has_value());
    return later.value_or(Answer{-1, "", {}});
  }

  static std::vector<std::string> header_values(const Answer& a, const std::string& name) {
    std::vector<std::string> out;
    for (const auto& [n, v] : a.headers) {
      if (n == name) out.push_back(v);
    }
    return out;
  }

  static constexpr const char* kPassword = "correct horse battery";
  unsigned nonce_count_ = 0;
  system_clock::time_point now_ = system_clock::time_point(seconds(1'800'000'000));
  auth::NonceFactory nonces_;
  auth::Challenger challenger_;
  auth::DigestVerifier verifier_;
  SubscriberCache subscribers_;
  Location location_;
  FakeStore store_;
  std::unique_ptr<Registrar> registrar_;
  transport::Flow flow_;
  std::string text_;
  sip::Message msg_;
};

TEST_F(RegistrarTest, NoCredentialsGetsAChallenge) {
  const Answer a = run(register_text("Contact: <sip:1000@192.0.2.10:5062>\r\n", "1000", ""));
  EXPECT_EQ(a.code, 401);
  const auto challenges = header_values(a, "WWW-Authenticate");
  ASSERT_EQ(challenges.size(), 2u);
  EXPECT_NE(challenges[0].find("algorithm=SHA-256"), std::string::npos);
  EXPECT_NE(challenges[1].find("algorithm=MD5"), std::string::npos);
  EXPECT_TRUE(a.stateless) << "no transaction kept for the challenge";
}

TEST_F(RegistrarTest, UnknownUserAndWrongPasswordLookTheSame) {
  const Answer wrong = run(register_text("Contact: <sip:1000@192.0.2.10>\r\n", "1000", "wrong password!"));
  const Answer unknown = run(register_text("Contact: <sip:9999@192.0.2.10>\r\n", "9999", kPassword, 1,
                                           "", "9999"));
  EXPECT_EQ(wrong.code, 401);
  EXPECT_EQ(unknown.code, 401);
  ASSERT_EQ(wrong.headers.size(), unknown.headers.size());
  for (std::size_t i = 0; i < wrong.headers.size(); ++i) {
    EXPECT_EQ(wrong.headers[i].first, unknown.headers[i].first);
    EXPECT_EQ(wrong.headers[i].second.size(), unknown.headers[i].second.size());
  }
  EXPECT_EQ(wrong.reason, unknown.reason);
  EXPECT_FALSE(wrong.stateless) << "credentials keep their transaction: verified once";
  EXPECT_FALSE(unknown.stateless);
  EXPECT_TRUE(store_.applied.empty());
}

TEST_F(RegistrarTest, RegistersOnlyOnceDurableAndListsBindings) {
  const Answer pending_check = [&] {
    text_ = register_text("Contact: <sip:1000@192.0.2.10:5062;transport=udp>;expires=600\r\n");
    EXPECT_TRUE(sip::parse(text_, msg_).ok());
    std::optional<Answer> later;
    auto now = registrar_->handle(msg_, flow_, [&](Registrar::Finish f) { later = f(); });
    EXPECT_FALSE(now.has_value());
    EXPECT_FALSE(later.has_value());               // not acknowledged before durable
    EXPECT_TRUE(location_.lookup("1000@example.com", 1'800'000'000).empty());
    store_.commit();
    return later.value_or(Answer{-1, "", {}});
  }();
  EXPECT_EQ(pending_check.code, 200);
  const auto contacts = header_values(pending_check, "Contact");
  ASSERT_EQ(contacts.size(), 1u);
  EXPECT_EQ(contacts[0], "<sip:1000@192.0.2.10:5062;transport=udp>;expires=600");
  const auto b = location_.lookup("1000@example.com", 1'800'000'000);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].transport, "udp");
  EXPECT_EQ(b[0].source, "192.0.2.10:5062");
  EXPECT_EQ(b[0].cseq, 1u);
}

TEST_F(RegistrarTest, FailedStoreWriteIsNotAcknowledged) {
  text_ = register_text("Contact: <sip:1000@192.0.2.10>\r\n");
  ASSERT_TRUE(sip::parse(text_, msg_).ok());
  std::optional<Answer> later;
  EXPECT_FALSE(registrar_->handle(msg_, flow_, [&](Registrar::Finish f) { later = f(); }));
  store_.commit(false);
  ASSERT_TRUE(later);
  EXPECT_EQ(later->code, 500);
  EXPECT_TRUE(location_.lookup("1000@example.com", 1'800'000'000).empty());
}

TEST_F(RegistrarTest, ExpiryRulesAnd423) {
  Answer a = run(register_text("Contact: <sip:1000@192.0.2.10>\r\nExpires: 30\r\n"));
  EXPECT_EQ(a.code, 423);
  EXPECT_EQ(header_values(a, "Min-Expires"), std::vector<std::string>{"60"});
  a = run(register_text("Contact: <sip:1000@192.0.2.10>;expires=99999\r\n"));
  EXPECT_EQ(a.code, 200);
  EXPECT_EQ(header_values(a, "Contact")[0], "<sip:1000@192.0.2.10>;expires=3600");  // clamped
  a = run(register_text("Contact: <sip:1000@192.0.2.10>\r\n", "1000", kPassword, 2, "Expires: 120\r\n"));
  EXPECT_EQ(header_values(a, "Contact")[0], "<sip:1000@192.0.2.10>;expires=120");
}

TEST_F(RegistrarTest, RefreshRemoveAndWildcard) {
  EXPECT_EQ(run(register_text("Contact: <sip:1000@192.0.2.10>, <sip:1000@192.0.2.11>;q=0.5\r\n")).code, 200);
  EXPECT_EQ(location_.lookup("1000@example.com", 1'800'000'000).size(), 2u);
  // Remove one by expires=0.
  Answer a = run(register_text("Contact: <sip:1000@192.0.2.11>;expires=0\r\n", "1000", kPassword, 2));
  EXPECT_EQ(a.code, 200);
  EXPECT_EQ(header_values(a, "Contact").size(), 1u);
  // Contact: * needs Expires: 0.
  EXPECT_EQ(run(register_text("Contact: *\r\n", "1000", kPassword, 3, "Expires: 10\r\n")).code, 400);
  a = run(register_text("Contact: *\r\n", "1000", kPassword, 4, "Expires: 0\r\n"));
  EXPECT_EQ(a.code, 200);
  EXPECT_TRUE(header_values(a, "Contact").empty());
  EXPECT_TRUE(location_.lookup("1000@example.com", 1'800'000'000).empty());
}

TEST_F(RegistrarTest, OutOfOrderCSeqIsRefused) {
  EXPECT_EQ(run(register_text("Contact: <sip:1000@192.0.2.10>\r\n", "1000", kPassword, 5)).code, 200);
  EXPECT_EQ(run(register_text("Contact: <sip:1000@192.0.2.10>\r\n", "1000", kPassword, 5)).code, 400);
}

TEST_F(RegistrarTest, ContactLimitPerAor) {
  EXPECT_EQ(run(register_text("Contact: <sip:a@192.0.2.1>, <sip:b@192.0.2.1>, <sip:c@192.0.2.1>\r\n")).code,
            200);
  EXPECT_EQ(run(register_text("Contact: <sip:d@192.0.2.1>\r\n", "1000", kPassword, 2)).code, 403);
}

TEST_F(RegistrarTest, QueryListsWithoutChanging) {
  EXPECT_EQ(run(register_text("Contact: <sip:1000@192.0.2.10>\r\n")).code, 200);
  const Answer a = run(register_text("", "1000", kPassword, 2));
  EXPECT_EQ(a.code, 200);
  EXPECT_EQ(header_values(a, "Contact").size(), 1u);
}

TEST_F(RegistrarTest, AorRules) {
  // Another user's AOR with my credentials.
  EXPECT_EQ(run(register_text("Contact: <sip:x@192.0.2.10>\r\n", "1000", kPassword, 1, "", "2000")).code,
            403);
  // Not one of our domains.
  std::string other = register_text("Contact: <sip:x@192.0.2.10>\r\n");
  other.replace(other.find("To: <sip:1000@example.com>"), 26, "To: <sip:1000@example.org>");
  EXPECT_EQ(run(other).code, 403);
  // Not a SIP URI (RFC 4475 unksm2).
  std::string tel = register_text("Contact: <sip:x@192.0.2.10>\r\n");
  tel.replace(tel.find("To: <sip:1000@example.com>"), 26, "To: <tel:+15551234>");
  EXPECT_EQ(run(tel).code, 400);
}

TEST_F(RegistrarTest, ContactsAreStoredExactlyAsSent) {
  // RFC 4475 cparam01/cparam02/regescrt: header params stay outside, URI params and escaped
  // headers inside <> are part of the binding.
  const Answer a = run(register_text(
      "Contact: sip:1000@192.0.2.10;unknownparam\r\nContact: <sip:1000@192.0.2.11;unknownparam>\r\n"
      "Contact: <sip:1000@192.0.2.12?Route=%3Csip:sip.example.com%3E>\r\n"));
  ASSERT_EQ(a.code, 200);
  const auto b = location_.lookup("1000@example.com", 1'800'000'000);
  ASSERT_EQ(b.size(), 3u);
  std::vector<std::string> contacts;
  for (const auto& x : b) contacts.push_back(x.contact);
  std::sort(contacts.begin(), contacts.end());
  EXPECT_EQ(contacts[0], "sip:1000@192.0.2.10");
  EXPECT_EQ(contacts[1], "sip:1000@192.0.2.11;unknownparam");
  EXPECT_EQ(contacts[2], "sip:1000@192.0.2.12?Route=%3Csip:sip.example.com%3E");
}

TEST(LocationTest, ExpiresOnTimeWithoutAScan) {
  Location loc;
  store::BindingChange c;
  c.aor = "1000@example.com";
  store::Binding b;
  b.aor = c.aor;
  b.contact = "sip:a@192.0.2.1";
  b.expires_at = 100;
  c.upsert.push_back(b);
  b.contact = "sip:b@192.0.2.1";
  b.expires_at = 200;
  c.upsert.push_back(b);
  loc.apply(c);
  EXPECT_EQ(loc.size(), 2u);
  EXPECT_EQ(loc.expire(99), 0u);
  EXPECT_EQ(loc.expire(100), 1u);
  EXPECT_EQ(loc.lookup(c.aor, 150).size(), 1u);
  EXPECT_EQ(loc.expire(500), 1u);
  EXPECT_EQ(loc.size(), 0u);
  loc.apply(c);
  loc.remove_user("1000");
  EXPECT_EQ(loc.size(), 0u);
}

}  // namespace
}  // namespace registrar
