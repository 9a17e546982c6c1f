#include "auth/digest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "sip/parser.h"

namespace auth {

// Test hooks defined in src/auth/digest.cc (deliberately not part of digest.h).
namespace digest_internal {
std::string response(Algorithm algorithm, std::string_view ha1, std::string_view nonce,
                     std::string_view nc, std::string_view cnonce, std::string_view qop,
                     std::string_view method, std::string_view digest_uri);
void set_nc_table_capacity(std::size_t entries);
std::size_t nc_table_entries();
std::uint64_t digests_on_this_thread();
}  // namespace digest_internal

namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

const system_clock::time_point kNow = system_clock::time_point(seconds(1'800'000'000));
constexpr std::string_view kRealm = "example.com";
constexpr std::string_view kPassword = "Correct-Horse-42";

Secret secret(std::uint8_t fill) {
  Secret s;
  s.fill(fill);
  return s;
}

// What a phone sends: owns the strings an AuthField points into.
struct Authorization {
  std::string scheme = "Digest";
  std::string username = "alice";
  std::string realm = std::string(kRealm);
  std::string nonce;
  std::string uri = "sip:example.com";
  std::string response;
  std::string algorithm;  // empty: absent (MD5)
  std::string cnonce = "0a4f113b";
  std::string qop = "auth";
  std::string nc = "00000001";

  // Fills `response` as a client knowing `password` would.
  Authorization& sign(std::string_view password, std::string_view method = "REGISTER") {
    const Algorithm a = algorithm.empty() || algorithm == "MD5" || algorithm == "md5"
                            ? Algorithm::kMd5
                            : Algorithm::kSha256;
    response = digest_internal::response(a, ha1(a, username, realm, password), nonce, nc, cnonce,
                                         qop, method, uri);
    return *this;
  }

  sip::AuthField field() const {
    sip::AuthField f;
    f.scheme = scheme;
    f.username = username;
    f.realm = realm;
    f.nonce = nonce;
    f.uri = uri;
    f.response = response;
    f.algorithm = algorithm;
    f.cnonce = cnonce;
    f.qop = qop;
    f.nc = nc;
    return f;
  }
};

Credentials alice() {
  static const std::string md5 = ha1(Algorithm::kMd5, "alice", kRealm, kPassword);
  static const std::string sha = ha1(Algorithm::kSha256, "alice", kRealm, kPassword);
  return Credentials{true, md5, sha};
}

class DigestTest : public ::testing::Test {
 protected:
  NonceFactory nonces_{secret(7), seconds(300)};
  DigestVerifier verifier_{nonces_, std::string(kRealm)};

  Authorization fresh(system_clock::time_point at = kNow) {
    Authorization a;
    a.nonce = nonces_.issue(kRealm, at);
    return a;
  }
  Verdict verify(const Authorization& a, const Credentials& c = alice(),
                 system_clock::time_point at = kNow, std::string_view method = "REGISTER") {
    const sip::AuthField f = a.field();
    return verifier_.verify(f, method, c, at);
  }
};

// ---- known answers

TEST(DigestVectorTest, Rfc2617Ha1) {
  EXPECT_EQ(ha1(Algorithm::kMd5, "Mufasa", "testrealm@host.com", "Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9");
}

// RFC 7616 §3.9.1.
TEST(DigestVectorTest, Rfc7616Example) {
  constexpr std::string_view kNonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
  constexpr std::string_view kCnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
  const auto md5 = ha1(Algorithm::kMd5, "Mufasa", "http-auth@example.org", "Circle of Life");
  const auto sha = ha1(Algorithm::kSha256, "Mufasa", "http-auth@example.org", "Circle of Life");
  EXPECT_EQ(md5.size(), 32u);
  EXPECT_EQ(sha.size(), 64u);
  EXPECT_EQ(digest_internal::response(Algorithm::kMd5, md5, kNonce, "00000001", kCnonce, "auth",
                                      "GET", "/dir/index.html"),
            "8ca523f5e9506fed4657c9700eebdbec");
  EXPECT_EQ(digest_internal::response(Algorithm::kSha256, sha, kNonce, "00000001", kCnonce, "auth",
                                      "GET", "/dir/index.html"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

TEST(DigestVectorTest, VerdictNames) {
  EXPECT_EQ(to_string(Verdict::kOk), "ok");
  EXPECT_EQ(to_string(Verdict::kStale), "stale");
  EXPECT_EQ(to_string(Verdict::kFailed), "failed");
  EXPECT_EQ(to_string(Verdict::kReplay), "replay");
  EXPECT_EQ(to_string(Verdict::kMalformed), "malformed");
}

// ---- end to end with our own nonces

TEST_F(DigestTest, CorrectPasswordMd5) {
  EXPECT_EQ(verify(fresh().sign(kPassword)), Verdict::kOk);
}

TEST_F(DigestTest, CorrectPasswordMd5NamedExplicitly) {
  Authorization a = fresh();
  a.algorithm = "MD5";
  EXPECT_EQ(verify(a.sign(kPassword)), Verdict::kOk);
}

TEST_F(DigestTest, CorrectPasswordSha256) {
  Authorization a = fresh();
  a.algorithm = "SHA-256";
  EXPECT_EQ(verify(a.sign(kPassword)), Verdict::kOk);
}

TEST_F(DigestTest, AlgorithmNameIsCaseInsensitive) {
  Authorization a = fresh();
  a.algorithm = "sha-256";
  EXPECT_EQ(verify(a.sign(kPassword)), Verdict::kOk);
}

TEST_F(DigestTest, UppercaseResponseAccepted) {
  Authorization a = fresh();
  a.sign(kPassword);
  for (char& c : a.response) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(verify(a), Verdict::kOk);
}

TEST_F(DigestTest, StoredHa1InUppercaseStillWorks) {
  std::string upper = ha1(Algorithm::kMd5, "alice", kRealm, kPassword);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(verify(fresh().sign(kPassword), Credentials{true, upper, {}}), Verdict::kOk);
}

TEST_F(DigestTest, WrongPasswordFails) {
  EXPECT_EQ(verify(fresh().sign("not-the-password")), Verdict::kFailed);
  Authorization a = fresh();
  a.algorithm = "SHA-256";
  EXPECT_EQ(verify(a.sign("not-the-password")), Verdict::kFailed);
}

TEST_F(DigestTest, ResponseForAnotherMethodFails) {
  // Signed for INVITE, presented on a REGISTER: A2 differs.
  EXPECT_EQ(verify(fresh().sign(kPassword, "INVITE")), Verdict::kFailed);
  EXPECT_EQ(verify(fresh().sign(kPassword, "INVITE"), alice(), kNow, "INVITE"), Verdict::kOk);
}

TEST_F(DigestTest, UnknownUserFailsEvenWithMatchingHashes) {
  EXPECT_EQ(verify(fresh().sign(kPassword), Credentials{}), Verdict::kFailed);
  // known=false: the HA1s are ignored even when they would match.
  Credentials c = alice();
  c.known = false;
  EXPECT_EQ(verify(fresh().sign(kPassword), c), Verdict::kFailed);
}

TEST_F(DigestTest, KnownUserWithoutHa1ForTheAlgorithmFails) {
  Authorization a = fresh();
  a.algorithm = "SHA-256";
  const std::string md5 = ha1(Algorithm::kMd5, "alice", kRealm, kPassword);
  EXPECT_EQ(verify(a.sign(kPassword), Credentials{true, md5, {}}), Verdict::kFailed);
}

// Unknown user and wrong password take the same path: the same number of digests (three:
// dummy HA1, H(A2), KD), whatever the outcome. Timing itself is not asserted.
TEST_F(DigestTest, UnknownUserAndWrongPasswordDoTheSameWork) {
  const auto cost = [&](const Authorization& a, const Credentials& c) {
    const std::uint64_t before = digest_internal::digests_on_this_thread();
    const Verdict v = verify(a, c);
    return std::pair(v, digest_internal::digests_on_this_thread() - before);
  };
  Authorization wrong = fresh();
  wrong.sign("not-the-password");
  const auto [v_wrong, d_wrong] = cost(wrong, alice());
  const auto [v_unknown, d_unknown] = cost(wrong, Credentials{});
  Authorization right = fresh();
  right.cnonce = "other";
  right.sign(kPassword);
  const auto [v_right, d_right] = cost(right, alice());
  EXPECT_EQ(v_wrong, Verdict::kFailed);
  EXPECT_EQ(v_unknown, Verdict::kFailed);
  EXPECT_EQ(v_right, Verdict::kOk);
  EXPECT_EQ(d_wrong, 3u);
  EXPECT_EQ(d_unknown, d_wrong);
  EXPECT_EQ(d_right, d_wrong);
}

TEST_F(DigestTest, ReplayedNonceCountIsRefused) {
  Authorization a = fresh();
  a.sign(kPassword);
  EXPECT_EQ(verify(a), Verdict::kOk);
  EXPECT_EQ(verify(a), Verdict::kReplay);
  a.nc = "00000003";
  EXPECT_EQ(verify(a.sign(kPassword)), Verdict::kOk);
  a.nc = "00000002";  // lower than the highest accepted
  EXPECT_EQ(verify(a.sign(kPassword)), Verdict::kReplay);
  a.nc = "00000004";
  EXPECT_EQ(verify(a.sign(kPassword)), Verdict::kOk);
}

TEST_F(DigestTest, FailedAttemptDoesNotConsumeTheNonceCount) {
  Authorization a = fresh();
  EXPECT_EQ(verify(a.sign("not-the-password")), Verdict::kFailed);
  EXPECT_EQ(verify(a.sign(kPassword)), Verdict::kOk);
}

// NonceFactory gives every client challenged in the same second the same nonce; each starts
// at nc=1. That must not look like a replay.
TEST_F(DigestTest, ClientsSharingANonceAreNotReplays) {
  Credentials bob_c{true, "", ""};
  const std::string bob_md5 = ha1(Algorithm::kMd5, "bob", kRealm, "bobs-password-1");
  bob_c.ha1_md5 = bob_md5;
  Authorization a = fresh();
  a.sign(kPassword);
  // Nonces are unique per challenge, but a client may reuse one it saw (or share a proxy's):
  // Bob answers with Alice's nonce.
  Authorization b = fresh();
  b.nonce = a.nonce;
  b.username = "bob";
  b.cnonce = "77aa";
  b.sign("bobs-password-1");
  EXPECT_EQ(verify(a), Verdict::kOk);
  EXPECT_EQ(verify(b, bob_c), Verdict::kOk);
  // Alice's second phone, same second, its own cnonce.
  Authorization a2 = fresh();
  a2.nonce = a.nonce;
  a2.cnonce = "second-phone";
  EXPECT_EQ(verify(a2.sign(kPassword)), Verdict::kOk);
  EXPECT_EQ(verify(a2), Verdict::kReplay);
}

TEST_F(DigestTest, StaleNonceWithCorrectResponseIsStale) {
  const auto later = kNow + seconds(301);
  EXPECT_EQ(verify(fresh().sign(kPassword), alice(), later), Verdict::kStale);
}

TEST_F(DigestTest, StaleNonceWithWrongPasswordFails) {
  const auto later = kNow + seconds(301);
  EXPECT_EQ(verify(fresh().sign("not-the-password"), alice(), later), Verdict::kFailed);
  EXPECT_EQ(verify(fresh().sign(kPassword), Credentials{}, later), Verdict::kFailed);
}

TEST_F(DigestTest, ForgedNonceFails) {
  Authorization a = fresh();
  a.nonce[5] = a.nonce[5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(verify(a.sign(kPassword)), Verdict::kFailed);
  a.nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";  // someone else's
  EXPECT_EQ(verify(a.sign(kPassword)), Verdict::kFailed);
  const NonceFactory other(secret(8), seconds(300));
  a.nonce = other.issue(kRealm, kNow);
  EXPECT_EQ(verify(a.sign(kPassword)), Verdict::kFailed);
}

TEST_F(DigestTest, WrongRealmFails) {
  Authorization a = fresh();
  a.realm = "other.example";
  EXPECT_EQ(verify(a.sign(kPassword)), Verdict::kFailed);
  // A nonce issued for another realm, presented with ours.
  Authorization b = fresh();
  b.nonce = nonces_.issue("other.example", kNow);
  EXPECT_EQ(verify(b.sign(kPassword)), Verdict::kFailed);
  // Realms are compared exactly.
  Authorization c = fresh();
  c.realm = "Example.com";
  EXPECT_EQ(verify(c.sign(kPassword)), Verdict::kFailed);
}

TEST_F(DigestTest, MissingOrBadParametersAreMalformed) {
  const auto with = [&](auto change) {
    Authorization a = fresh();
    a.sign(kPassword);
    change(a);
    return verify(a);
  };
  EXPECT_EQ(with([](Authorization& a) { a.qop.clear(); }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.cnonce.clear(); }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.nc.clear(); }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.username.clear(); }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.uri.clear(); }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.nonce.clear(); }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.realm.clear(); }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.response.clear(); }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.qop = "auth-int"; }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.algorithm = "MD5-sess"; }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.algorithm = "SHA-256-sess"; }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.algorithm = "SHA-512-256"; }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.algorithm = "AKAv1-MD5"; }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.nc = "1"; }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.nc = "0000000g"; }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.nc = "00000000"; }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.nc = "000000001"; }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.response.pop_back(); }), Verdict::kMalformed);
  // An MD5-sized response under SHA-256.
  EXPECT_EQ(with([](Authorization& a) { a.algorithm = "SHA-256"; }), Verdict::kMalformed);
  EXPECT_EQ(with([](Authorization& a) { a.scheme = "Basic"; }), Verdict::kMalformed);
  Authorization a = fresh();
  a.sign(kPassword);
  sip::AuthField f = a.field();
  f.userhash = true;
  EXPECT_EQ(verifier_.verify(f, "REGISTER", alice(), kNow), Verdict::kMalformed);
  EXPECT_EQ(verifier_.verify(a.field(), "", alice(), kNow), Verdict::kMalformed);
  // The well-formed original still works: nothing above was recorded.
  EXPECT_EQ(verify(a), Verdict::kOk);
}

TEST_F(DigestTest, EscapedQuotedValuesAreUnescapedBeforeHashing) {
  Authorization a = fresh();
  a.cnonce = "ab\"cd";  // what the client hashed
  a.sign(kPassword);
  a.cnonce = "ab\\\"cd";  // what the header carries between the quotes
  EXPECT_EQ(verify(a), Verdict::kOk);
}

TEST_F(DigestTest, PickChoosesTheFirstDigestForOurRealm) {
  std::vector<sip::AuthField> fields(4);
  fields[0].scheme = "Basic";
  fields[1].scheme = "Digest";
  fields[1].realm = "other.example";
  fields[2].scheme = "digest";
  fields[2].realm = kRealm;
  fields[3].scheme = "Digest";
  fields[3].realm = kRealm;
  EXPECT_EQ(verifier_.pick(fields), &fields[2]);
  fields[2].realm = "EXAMPLE.COM";
  EXPECT_EQ(verifier_.pick(fields), &fields[3]);
  fields.pop_back();
  EXPECT_EQ(verifier_.pick(fields), nullptr);
  EXPECT_EQ(verifier_.pick({}), nullptr);
}

// The whole way a REGISTER comes in: parsed header, picked, verified.
TEST_F(DigestTest, ParsedRegisterFromThePhone) {
  Authorization a = fresh();
  a.sign(kPassword);
  const std::string wire =
      "REGISTER sip:example.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n"
      "Max-Forwards: 70\r\n"
      "From: <sip:alice@example.com>;tag=1928301774\r\n"
      "To: <sip:alice@example.com>\r\n"
      "Call-ID: a84b4c76e66710@192.0.2.10\r\n"
      "CSeq: 2 REGISTER\r\n"
      "Contact: <sip:alice@192.0.2.10:5060>\r\n"
      "Authorization: Digest username=\"alice\", realm=\"other.example\", nonce=\"x\", "
      "uri=\"sip:other.example\", response=\"0123456789abcdef0123456789abcdef\", "
      "qop=auth, nc=00000001, cnonce=\"1\"\r\n"
      "Authorization: Digest username=\"alice\",realm=\"example.com\",nonce=\"" +
      a.nonce + "\",uri=\"sip:example.com\",response=\"" + a.response +
      "\",algorithm=MD5,cnonce=\"0a4f113b\",qop=auth,nc=00000001\r\n"
      "Content-Length: 0\r\n\r\n";
  sip::Message msg;
  const auto parsed = sip::parse(wire, msg);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(msg.authorization.size(), 2u);
  const sip::AuthField* field = verifier_.pick(msg.authorization);
  ASSERT_EQ(field, &msg.authorization[1]);
  EXPECT_EQ(verifier_.verify(*field, msg.method_text, alice(), kNow), Verdict::kOk);
  EXPECT_EQ(verifier_.verify(*field, msg.method_text, alice(), kNow), Verdict::kReplay);
}

// ---- concurrency and bounds

TEST_F(DigestTest, ConcurrentVerifyFromFourThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  std::atomic<int> ok{0}, replay{0}, failed{0}, other{0};
  Authorization shared = fresh();
  shared.cnonce = "shared";
  shared.sign(kPassword);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Everyone races for the same (nonce, cnonce, nc): exactly one may win.
      const Verdict first = verify(shared);
      (first == Verdict::kOk ? ok : first == Verdict::kReplay ? replay : other)++;
      Authorization mine = fresh();
      mine.cnonce = "thread-" + std::to_string(t);
      for (int i = 1; i <= kPerThread; ++i) {
        char nc[9];
        std::snprintf(nc, sizeof nc, "%08x", i);
        mine.nc = nc;
        const bool right = i % 3 != 0;
        mine.sign(right ? kPassword : std::string_view("wrong-password"));
        const Verdict v = verify(mine);
        if (v == (right ? Verdict::kOk : Verdict::kFailed)) {
          (right ? ok : failed)++;
        } else {
          other++;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(replay.load(), kThreads - 1);
  EXPECT_EQ(ok.load(), 1 + kThreads * (kPerThread - kPerThread / 3));
  EXPECT_EQ(failed.load(), kThreads * (kPerThread / 3));
}

// Entries go once their nonce must be stale, so a steady load keeps the table at about
// (rate × lifetime).
TEST(DigestTableTest, EntriesExpireWithTheNonceLifetime) {
  const NonceFactory nonces(secret(3), seconds(60));
  const std::size_t base = digest_internal::nc_table_entries();
  {
    DigestVerifier verifier(nonces, std::string(kRealm));
    std::size_t peak = 0;
    for (int i = 0; i < 2'000; ++i) {
      const auto at = kNow + seconds(i);
      Authorization a;
      a.nonce = nonces.issue(kRealm, at);
      a.sign(kPassword);
      ASSERT_EQ(verifier.verify(a.field(), "REGISTER", alice(), at), Verdict::kOk);
      peak = std::max(peak, digest_internal::nc_table_entries() - base);
    }
    // 16 shards prune independently, each when it next gets an insert.
    EXPECT_LE(peak, 60u + 10u + 16u * 8u);
    EXPECT_GE(peak, 60u);
  }
  EXPECT_EQ(digest_internal::nc_table_entries(), base);
}

// A flood of valid nonces inside one lifetime cannot grow the table past its cap.
TEST(DigestTableTest, CapHoldsUnder100kDistinctNonces) {
  const NonceFactory nonces(secret(4), seconds(1'000'000));
  const std::size_t base = digest_internal::nc_table_entries();
  digest_internal::set_nc_table_capacity(1'600);
  {
    DigestVerifier verifier(nonces, std::string(kRealm));
    digest_internal::set_nc_table_capacity(1'000'000);
    std::size_t peak = 0;
    Authorization last;
    for (int i = 0; i < 100'000; ++i) {
      const auto at = kNow + seconds(i);
      Authorization a;
      a.nonce = nonces.issue(kRealm, at);
      a.sign(kPassword);
      ASSERT_EQ(verifier.verify(a.field(), "REGISTER", alice(), at), Verdict::kOk);
      if (i % 1000 == 0) peak = std::max(peak, digest_internal::nc_table_entries() - base);
      last = a;
    }
    peak = std::max(peak, digest_internal::nc_table_entries() - base);
    EXPECT_LE(peak, 1'600u);
    EXPECT_GE(peak, 1'000u);
    // The newest entries are kept: a replay of the last request is still caught.
    EXPECT_EQ(verifier.verify(last.field(), "REGISTER", alice(), kNow + seconds(100'000)),
              Verdict::kReplay);
  }
  EXPECT_EQ(digest_internal::nc_table_entries(), base);
}

}  // namespace
}  // namespace auth
