#include "auth/client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/challenge.h"
#include "auth/digest.h"
#include "auth/nonce.h"
#include "sip/message.h"
#include "sip/parser.h"

namespace auth {

// Test hook defined in src/auth/client.cc (deliberately not part of client.h).
namespace client_internal {
std::optional<std::string> answer_challenge(const std::vector<sip::AuthField>& challenges,
                                            std::string_view method, std::string_view uri,
                                            const ClientCredentials& credentials,
                                            std::string_view cnonce);
}  // namespace client_internal

namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

const system_clock::time_point kNow = system_clock::time_point(seconds(1'800'000'000));
constexpr std::string_view kRealm = "example.com";
constexpr std::string_view kUser = "trunk-user";
constexpr std::string_view kPassword = "Correct-Horse-42";
constexpr std::string_view kUri = "sip:+15551234567@provider.example.net";

Secret secret(std::uint8_t fill) {
  Secret s;
  s.fill(fill);
  return s;
}

// A parsed 401 (or request) that owns its text, since sip::Message borrows it.
struct Parsed {
  std::string text;
  sip::Message msg;
};

// A 401 carrying one WWW-Authenticate per value in `challenges`.
void parse_401(const std::vector<std::string>& challenges, Parsed& out) {
  out.text =
      "SIP/2.0 401 Unauthorized\r\n"
      "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
      "From: <sip:trunk-user@example.com>;tag=1\r\n"
      "To: <sip:+15551234567@provider.example.net>;tag=2\r\n"
      "Call-ID: c1\r\n"
      "CSeq: 1 INVITE\r\n";
  for (const std::string& c : challenges) out.text.append("WWW-Authenticate: ").append(c) += "\r\n";
  out.text += "Content-Length: 0\r\n\r\n";
  const auto r = sip::parse(out.text, out.msg);
  ASSERT_TRUE(r.ok()) << r.error().describe();
}

// The INVITE resent with `authorization` as its Authorization header.
void parse_invite(std::string_view authorization, Parsed& out) {
  out.text = "INVITE ";
  out.text.append(kUri).append(
      " SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK2\r\n"
      "Max-Forwards: 70\r\n"
      "From: <sip:trunk-user@example.com>;tag=1\r\n"
      "To: <sip:+15551234567@provider.example.net>\r\n"
      "Call-ID: c1\r\n"
      "CSeq: 2 INVITE\r\n"
      "Authorization: ");
  out.text.append(authorization).append("\r\nContent-Length: 0\r\n\r\n");
  const auto r = sip::parse(out.text, out.msg);
  ASSERT_TRUE(r.ok()) << r.error().describe();
}

// The provider's side: our own Challenger and DigestVerifier stand in for it.
class ClientTest : public ::testing::Test {
 protected:
  NonceFactory nonces_{secret(9), seconds(300)};
  DigestVerifier verifier_{nonces_, std::string(kRealm)};

  std::vector<std::string> challenges(std::vector<Algorithm> algorithms) {
    const Challenger challenger(nonces_, secret(9), std::move(algorithms));
    return challenger.challenges(kRealm, kNow, false);
  }

  // What the provider says to `answer`, for a user whose password is `password`.
  Verdict provider_verdict(std::string_view answer, std::string_view password = kPassword,
                           std::string_view user = kUser) {
    Parsed invite;
    parse_invite(answer, invite);
    if (HasFatalFailure()) return Verdict::kMalformed;
    const sip::AuthField* field = verifier_.pick(invite.msg.authorization);
    if (field == nullptr) return Verdict::kMalformed;
    const std::string md5 = ha1(Algorithm::kMd5, user, kRealm, password);
    const std::string sha = ha1(Algorithm::kSha256, user, kRealm, password);
    return verifier_.verify(*field, "INVITE", Credentials{true, md5, sha}, kNow);
  }

  std::optional<std::string> answer(const std::vector<std::string>& values,
                                    ClientCredentials credentials = {kUser, kPassword, {}}) {
    Parsed challenge;
    parse_401(values, challenge);
    if (HasFatalFailure()) return std::nullopt;
    return answer_challenge(challenge.msg.www_authenticate, "INVITE", kUri, credentials);
  }
};

// ---- answers the server side accepts

TEST_F(ClientTest, AnswersMd5ChallengeTheProviderAccepts) {
  const auto a = answer(challenges({Algorithm::kMd5}));
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(a->find("algorithm=MD5"), std::string::npos) << *a;
  EXPECT_NE(a->find("qop=auth, nc=00000001"), std::string::npos) << *a;
  EXPECT_EQ(provider_verdict(*a), Verdict::kOk);
}

TEST_F(ClientTest, AnswersSha256ChallengeTheProviderAccepts) {
  const auto a = answer(challenges({Algorithm::kSha256}));
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(a->find("algorithm=SHA-256"), std::string::npos) << *a;
  EXPECT_EQ(provider_verdict(*a), Verdict::kOk);
}

TEST_F(ClientTest, PrefersSha256WhateverTheOrder) {
  for (const auto& order : {std::vector{Algorithm::kMd5, Algorithm::kSha256},
                            std::vector{Algorithm::kSha256, Algorithm::kMd5}}) {
    const auto a = answer(challenges(order));
    ASSERT_TRUE(a.has_value());
    EXPECT_NE(a->find("algorithm=SHA-256"), std::string::npos) << *a;
    EXPECT_EQ(provider_verdict(*a), Verdict::kOk);
  }
}

TEST_F(ClientTest, WrongPasswordIsRefusedByTheProvider) {
  const auto a = answer(challenges({Algorithm::kSha256}), {kUser, "not-the-password", {}});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(provider_verdict(*a), Verdict::kFailed);
}

// Each answer carries a fresh cnonce, so answering the same nonce twice is not a replay.
TEST_F(ClientTest, EachAnswerHasAFreshCnonce) {
  const std::vector<std::string> values = challenges({Algorithm::kMd5});
  const auto first = answer(values);
  const auto second = answer(values);
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_NE(*first, *second);
  EXPECT_EQ(provider_verdict(*first), Verdict::kOk);
  EXPECT_EQ(provider_verdict(*second), Verdict::kOk);
  EXPECT_EQ(provider_verdict(*first), Verdict::kReplay);  // the verifier still catches replays

  Parsed invite;
  parse_invite(*first, invite);
  ASSERT_EQ(invite.msg.authorization.size(), 1u);
  const std::string_view cnonce = invite.msg.authorization[0].cnonce;
  EXPECT_EQ(cnonce.size(), 16u);
  EXPECT_EQ(cnonce.find_first_not_of("0123456789abcdef"), std::string_view::npos) << cnonce;
}

TEST_F(ClientTest, EchoesOpaque) {
  const Challenger challenger(nonces_, secret(9), {Algorithm::kMd5});
  const auto a = answer(challenges({Algorithm::kMd5}));
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(a->find(", opaque=\"" + challenger.opaque() + "\""), std::string::npos) << *a;
}

// The username is escaped on the wire and hashed unescaped, as the verifier does.
TEST_F(ClientTest, QuotesAndBackslashesInTheUsername) {
  constexpr std::string_view kOdd = R"(a"b\c)";
  const auto a = answer(challenges({Algorithm::kSha256}), {kOdd, kPassword, {}});
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(a->find(R"(username="a\"b\\c")"), std::string::npos) << *a;
  EXPECT_EQ(provider_verdict(*a, kPassword, kOdd), Verdict::kOk);
}

TEST_F(ClientTest, PicksTheChallengeForTheConfiguredRealm) {
  const NonceFactory other_nonces(secret(3), seconds(300));
  const Challenger other(other_nonces, secret(3), {Algorithm::kSha256});
  std::vector<std::string> values = other.challenges("other.example", kNow, false);
  for (std::string& c : challenges({Algorithm::kMd5})) values.push_back(std::move(c));

  const auto a = answer(values, {kUser, kPassword, kRealm});
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(a->find("realm=\"example.com\""), std::string::npos) << *a;
  EXPECT_EQ(provider_verdict(*a), Verdict::kOk);

  // Without a configured realm the SHA-256 challenge of the other realm wins.
  const auto any = answer(values);
  ASSERT_TRUE(any.has_value());
  EXPECT_NE(any->find("realm=\"other.example\""), std::string::npos) << *any;
}

// A SHA-256 challenge this client cannot answer does not hide a usable MD5 one.
TEST_F(ClientTest, SkipsChallengesItCannotAnswer) {
  const auto a = answer({
      R"(Digest realm="example.com", nonce="n1", algorithm=SHA-256, qop="auth-int")",
      R"(Digest realm="example.com", nonce="n2", algorithm=SHA-256-sess, qop="auth")",
      R"(Digest realm="example.com", nonce="n3", algorithm=SHA-512-256, qop="auth")",
      R"(Digest realm="example.com", nonce="n4", algorithm=MD5, qop="auth")",
  });
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(a->find("nonce=\"n4\""), std::string::npos) << *a;
}

TEST_F(ClientTest, AbsentAlgorithmIsMd5) {
  const auto a = answer({R"(Digest realm="example.com", nonce="n", qop="auth")"});
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(a->find("algorithm=MD5"), std::string::npos) << *a;
}

TEST_F(ClientTest, QopListWithSpacesAndCase) {
  const auto a = answer({R"(Digest realm="example.com", nonce="n", qop="auth-int , AUTH")"});
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(a->find("qop=auth,"), std::string::npos) << *a;
}

// ---- refusals

TEST_F(ClientTest, RefusesAuthIntOnly) {
  EXPECT_FALSE(answer({R"(Digest realm="example.com", nonce="n", qop="auth-int")"}));
}

TEST_F(ClientTest, RefusesSessAlgorithms) {
  EXPECT_FALSE(
      answer({R"(Digest realm="example.com", nonce="n", algorithm=MD5-sess, qop="auth")"}));
  EXPECT_FALSE(
      answer({R"(Digest realm="example.com", nonce="n", algorithm=SHA-256-sess, qop="auth")"}));
}

TEST_F(ClientTest, RefusesOtherSchemes) {
  EXPECT_FALSE(answer({R"(Basic realm="example.com")"}));
  EXPECT_FALSE(answer_challenge({}, "INVITE", kUri, {kUser, kPassword, {}}));
}

TEST_F(ClientTest, RefusesAnotherRealm) {
  EXPECT_FALSE(answer(challenges({Algorithm::kSha256, Algorithm::kMd5}),
                      {kUser, kPassword, "provider.example.net"}));
}

TEST_F(ClientTest, RefusesHeaderInjection) {
  EXPECT_FALSE(answer(challenges({Algorithm::kMd5}), {"alice\r\nX-Evil: 1", kPassword, {}}));
  Parsed challenge;
  parse_401(challenges({Algorithm::kMd5}), challenge);
  EXPECT_FALSE(answer_challenge(challenge.msg.www_authenticate, "INVITE", "sip:a\r\nb",
                                {kUser, kPassword, {}}));
}

// ---- known answers

// RFC 2617 §3.5 (qop=auth, MD5).
TEST(ClientVectorTest, Rfc2617Example) {
  Parsed challenge;
  parse_401({R"(Digest realm="testrealm@host.com", qop="auth,auth-int", )"
             R"(nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", )"
             R"(opaque="5ccc069c403ebaf9f0171e9517f40e41")"},
            challenge);
  const auto a =
      client_internal::answer_challenge(challenge.msg.www_authenticate, "GET", "/dir/index.html",
                                        {"Mufasa", "Circle Of Life", {}}, "0a4f113b");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(*a,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
            "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", "
            "response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", "
            "qop=auth, nc=00000001, opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"");
}

// RFC 7616 §3.9.1 (SHA-256).
TEST(ClientVectorTest, Rfc7616Sha256Example) {
  Parsed challenge;
  parse_401({R"(Digest realm="http-auth@example.org", qop="auth, auth-int", )"
             R"(algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", )"
             R"(opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")"},
            challenge);
  const auto a = client_internal::answer_challenge(
      challenge.msg.www_authenticate, "GET", "/dir/index.html", {"Mufasa", "Circle of Life", {}},
      "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ");
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(
      a->find("response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""),
      std::string::npos)
      << *a;
}

// RFC 2069 form: no qop offered, so no cnonce, qop or nc, and KD(HA1, nonce ":" H(A2)). The
// response was computed independently (MD5 of the RFC 2617 example's HA1, nonce and HA2).
TEST(ClientVectorTest, Rfc2069FormWithoutQop) {
  Parsed challenge;
  parse_401({R"(Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093")"},
            challenge);
  const auto a =
      client_internal::answer_challenge(challenge.msg.www_authenticate, "GET", "/dir/index.html",
                                        {"Mufasa", "Circle Of Life", {}}, "0a4f113b");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(*a,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
            "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", "
            "response=\"670fd8c2df070c60b045671b8b24ff02\", algorithm=MD5");
}

}  // namespace
}  // namespace auth
