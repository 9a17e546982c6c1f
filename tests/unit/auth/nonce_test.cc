#include "auth/nonce.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace auth {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

const system_clock::time_point kNow = system_clock::time_point(seconds(1'800'000'000));

Secret secret(std::uint8_t fill) {
  Secret s;
  s.fill(fill);
  return s;
}

TEST(NonceTest, IssuedNonceIsValidForItsRealmOnly) {
  const NonceFactory f(secret(1), seconds(300));
  const std::string n = f.issue("example.com", kNow);
  EXPECT_EQ(n.size(), 43u);
  EXPECT_EQ(n.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  EXPECT_EQ(f.check(n, "example.com", kNow + seconds(299)), NonceCheck::kValid);
  EXPECT_EQ(f.check(n, "other.com", kNow), NonceCheck::kForged);
}

TEST(NonceTest, OldNonceIsStaleNotForged) {
  const NonceFactory f(secret(1), seconds(300));
  const std::string n = f.issue("example.com", kNow);
  EXPECT_EQ(f.check(n, "example.com", kNow + seconds(301)), NonceCheck::kStale);
  EXPECT_EQ(f.check(n, "example.com", kNow - seconds(60)), NonceCheck::kStale);
}

TEST(NonceTest, AnotherSecretOrTamperingIsForged) {
  const NonceFactory a(secret(1), seconds(300));
  const NonceFactory b(secret(2), seconds(300));
  std::string n = a.issue("example.com", kNow);
  EXPECT_EQ(b.check(n, "example.com", kNow), NonceCheck::kForged);
  n[3] = n[3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(a.check(n, "example.com", kNow), NonceCheck::kForged);
  EXPECT_EQ(a.check("", "example.com", kNow), NonceCheck::kForged);
  EXPECT_EQ(a.check(std::string(43, '!'), "example.com", kNow), NonceCheck::kForged);
  EXPECT_EQ(a.check(n + "A", "example.com", kNow), NonceCheck::kForged);
  // Bytes outside base64url's alphabet, anywhere in an otherwise genuine nonce.
  const std::string good = a.issue("example.com", kNow);
  ASSERT_EQ(a.check(good, "example.com", kNow), NonceCheck::kValid);
  for (const char bad : {'\0', '=', '+', '/', ' ', '.', '\x80', '\xff'}) {
    for (const std::size_t at : {std::size_t{0}, good.size() / 2, good.size() - 1}) {
      std::string tampered = good;
      tampered[at] = bad;
      EXPECT_EQ(a.check(tampered, "example.com", kNow), NonceCheck::kForged)
          << "byte " << static_cast<int>(static_cast<unsigned char>(bad)) << " at " << at;
    }
  }
}

TEST(NonceTest, EveryNonceIsUnique) {
  const NonceFactory f(secret(1), seconds(300));
  EXPECT_NE(f.issue("example.com", kNow), f.issue("example.com", kNow + seconds(1)));
  EXPECT_NE(f.issue("example.com", kNow), f.issue("example.com", kNow));
}

// The random parts come from a per-thread pool refilled 512 nonces at a time: across
// refills and across threads, within one second, no two nonces are the same and each
// verifies.
TEST(NonceTest, ThousandsInOneSecondFromTwoThreadsAreUniqueAndValid) {
  const NonceFactory f(secret(1), seconds(300));
  constexpr int kEach = 3000;
  std::vector<std::string> a, b;
  std::thread other([&] {
    for (int i = 0; i < kEach; ++i) b.push_back(f.issue("example.com", kNow));
  });
  for (int i = 0; i < kEach; ++i) a.push_back(f.issue("example.com", kNow));
  other.join();
  std::set<std::string> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 2u * kEach);
  for (const auto& n : all) ASSERT_EQ(f.check(n, "example.com", kNow), NonceCheck::kValid) << n;
}

TEST(SecretTest, CreatedOnceWithMode0600ThenReused) {
  const auto dir = std::filesystem::temp_directory_path() / ("sw-secret-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const auto path = dir / "nonce.key";
  auto first = load_or_create_secret(path);
  ASSERT_TRUE(first.ok()) << first.error();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = load_or_create_secret(path);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  std::ofstream(path, std::ios::trunc) << "short";
  EXPECT_FALSE(load_or_create_secret(path).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace auth

#include "auth/challenge.h"
#include "sip/parser.h"

namespace auth {
namespace {

TEST(ChallengeTest, WireFormatToolsParse) {
  const Secret s = secret(3);
  const NonceFactory nonces(s, seconds(300));
  const Challenger c(nonces, s, {Algorithm::kSha256, Algorithm::kMd5});
  const auto values = c.challenges("example.com", kNow, false);
  ASSERT_EQ(values.size(), 2u);
  // svcrack needs qop="auth" quoted; nmap sip-brute needs algorithm=MD5 not last.
  EXPECT_NE(values[1].find("algorithm=MD5, qop=\"auth\""), std::string::npos) << values[1];
  EXPECT_EQ(values[0].rfind("Digest realm=\"example.com\", nonce=\"", 0), 0u);
  // Both parse as challenges and carry the same nonce and opaque.
  std::string msg = "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                    "From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\n"
                    "CSeq: 1 REGISTER\r\n";
  for (const auto& v : values) msg += "WWW-Authenticate: " + v + "\r\n";
  msg += "Content-Length: 0\r\n\r\n";
  sip::Message m;
  ASSERT_TRUE(sip::parse(msg, m).ok());
  ASSERT_EQ(m.www_authenticate.size(), 2u);
  EXPECT_EQ(m.www_authenticate[0].algorithm, "SHA-256");
  EXPECT_EQ(m.www_authenticate[1].algorithm, "MD5");
  EXPECT_EQ(m.www_authenticate[0].nonce, m.www_authenticate[1].nonce);
  EXPECT_EQ(m.www_authenticate[0].opaque, c.opaque());
  EXPECT_EQ(m.www_authenticate[1].qop, "auth");
  EXPECT_EQ(nonces.check(m.www_authenticate[0].nonce, "example.com", kNow), NonceCheck::kValid);
  EXPECT_NE(c.challenges("example.com", kNow, true)[0].find(", stale=true"), std::string::npos);
}

}  // namespace
}  // namespace auth
