#include "proxy/route_token.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <random>
#include <string>

namespace proxy {
namespace {

using transport::Endpoint;
using transport::Flow;
using transport::Protocol;

std::array<std::uint8_t, 32> secret(std::uint8_t fill) {
  std::array<std::uint8_t, 32> s;
  s.fill(fill);
  return s;
}

Flow flow(Protocol p, const char* address, std::uint16_t port, std::uint16_t worker,
          std::uint32_t listener, std::uint64_t connection) {
  Flow f;
  f.protocol = p;
  f.remote = *Endpoint::from_string(address, port);
  f.worker = worker;
  f.listener = listener;
  f.connection = connection;
  return f;
}

void expect_same_flow(const Flow& got, const Flow& want) {
  EXPECT_EQ(got.protocol, want.protocol);
  EXPECT_EQ(got.remote, want.remote);
  EXPECT_EQ(got.remote.v6, want.remote.v6);
  EXPECT_EQ(got.worker, want.worker);
  EXPECT_EQ(got.listener, want.listener);
  EXPECT_EQ(got.connection, want.connection);
  EXPECT_EQ(got.local, Endpoint{});  // not carried
}

bool uri_param_safe(const std::string& s) {
  return s.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz.~-") == std::string::npos;
}

TEST(RouteTokenTest, RoundTripsEveryFieldOverUdpTcpTlsAndBothFamilies) {
  const RouteSigner signer(secret(7));
  const std::vector<std::pair<Flow, Flow>> cases = {
      {flow(Protocol::kUdp, "192.0.2.10", 5060, 0, 0, 0),
       flow(Protocol::kUdp, "198.51.100.7", 5062, 3, 1, 0)},
      {flow(Protocol::kTcp, "10.1.2.3", 40000, 1, 2, 0x1f),
       flow(Protocol::kTls, "2001:db8::1", 5061, 7, 3, 0xdeadbeefcafe)},
      {flow(Protocol::kTls, "2001:db8:ffff:1234:5678:9abc:def0:1", 65535, 65535, 0xffffffff,
            0xffffffffffffffff),
       flow(Protocol::kTcp, "::1", 1, 0, 0, 1)},
      {flow(Protocol::kUdp, "0.0.0.0", 0, 0, 0, 0),
       flow(Protocol::kUdp, "255.255.255.255", 65535, 1, 1, 0)},
  };
  for (const auto& [caller, callee] : cases) {
    RouteToken t;
    t.caller = caller;
    t.callee = callee;
    t.caller_tag_hash = tag_hash("a73kszlfl");
    const std::string text = signer.encode(t);
    SCOPED_TRACE(text);
    EXPECT_TRUE(uri_param_safe(text));
    const auto back = signer.decode(text);
    ASSERT_TRUE(back.has_value());
    expect_same_flow(back->caller, caller);
    expect_same_flow(back->callee, callee);
    EXPECT_EQ(back->caller_tag_hash, t.caller_tag_hash);
  }
}

TEST(RouteTokenTest, TagHashOfZeroAndMaximumRoundTrips) {
  const RouteSigner signer(secret(1));
  for (std::uint32_t h : {0u, 1u, 0xffffffffu}) {
    RouteToken t;
    t.caller_tag_hash = h;
    const auto back = signer.decode(signer.encode(t));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->caller_tag_hash, h);
  }
}

TEST(RouteTokenTest, LocalEndpointIsNotCarried) {
  const RouteSigner signer(secret(1));
  RouteToken t;
  t.caller = flow(Protocol::kUdp, "192.0.2.1", 5060, 0, 0, 0);
  t.caller.local = *Endpoint::from_string("203.0.113.5", 5060);
  const auto back = signer.decode(signer.encode(t));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->caller.local, Endpoint{});
}

TEST(RouteTokenTest, ChangingAnyCharacterIsRefused) {
  const RouteSigner signer(secret(9));
  RouteToken t;
  t.caller = flow(Protocol::kTcp, "192.0.2.1", 5060, 2, 1, 0x42);
  t.callee = flow(Protocol::kTls, "2001:db8::9", 5061, 1, 3, 0x99);
  t.caller_tag_hash = tag_hash("from-tag");
  const std::string text = signer.encode(t);
  ASSERT_TRUE(signer.decode(text).has_value());
  const std::string alphabet = "0123456789abcdefghijklmnopqrstuvwxyz.~-";
  for (std::size_t i = 0; i < text.size(); ++i) {
    for (char c : alphabet) {
      if (c == text[i]) continue;
      std::string forged = text;
      forged[i] = c;
      EXPECT_FALSE(signer.decode(forged).has_value()) << forged;
    }
    std::string removed = text;
    removed.erase(i, 1);
    EXPECT_FALSE(signer.decode(removed).has_value()) << removed;
    std::string inserted = text;
    inserted.insert(i, 1, '0');
    EXPECT_FALSE(signer.decode(inserted).has_value()) << inserted;
  }
  EXPECT_FALSE(signer.decode(text + "0").has_value());
  EXPECT_FALSE(signer.decode(text + "~").has_value());
}

TEST(RouteTokenTest, TokenOfAnotherSecretIsRefused) {
  const RouteSigner ours(secret(1));
  const RouteSigner theirs(secret(2));
  RouteToken t;
  t.caller = flow(Protocol::kUdp, "192.0.2.1", 5060, 0, 0, 0);
  t.callee = flow(Protocol::kUdp, "192.0.2.2", 5060, 0, 0, 0);
  EXPECT_FALSE(ours.decode(theirs.encode(t)).has_value());
  EXPECT_TRUE(theirs.decode(theirs.encode(t)).has_value());
}

TEST(RouteTokenTest, DestinationIsTheCalleeForTheCallerAndTheCallerOtherwise) {
  RouteToken t;
  t.caller = flow(Protocol::kUdp, "192.0.2.1", 5060, 0, 0, 0);
  t.callee = flow(Protocol::kTcp, "192.0.2.2", 5070, 1, 1, 5);
  t.caller_tag_hash = tag_hash("caller-tag");
  EXPECT_EQ(&t.destination_for("caller-tag"), &t.callee);
  EXPECT_EQ(&t.destination_for("callee-tag"), &t.caller);
  EXPECT_EQ(&t.destination_for(""), &t.caller);

  // The same after a trip through a signer.
  const RouteSigner signer(secret(3));
  const auto back = signer.decode(signer.encode(t));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->destination_for("caller-tag").remote, t.callee.remote);
  EXPECT_EQ(back->destination_for("callee-tag").remote, t.caller.remote);
}

TEST(RouteTokenTest, TagHashTellsTagsApart) {
  EXPECT_EQ(tag_hash("abc"), tag_hash("abc"));
  EXPECT_NE(tag_hash("abc"), tag_hash("abd"));
  EXPECT_NE(tag_hash(""), tag_hash("a"));
}

// Tokens whose MAC is right but whose fields are not: the parser must refuse them on its own.
// sign() MACs any body the way encode() does; the first test checks that it still does.
std::string sign(const std::array<std::uint8_t, 32>& key, const std::string& body) {
  const std::string input = "sipwarden route token\n" + body;
  std::uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const std::uint8_t*>(input.data()), input.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = body + "~";
  for (int i = 0; i < 8; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xF]);
  }
  return out;
}

TEST(RouteTokenTest, HandSignedWellFormedTokenIsAccepted) {
  const RouteSigner signer(secret(4));
  RouteToken t;
  t.caller = flow(Protocol::kUdp, "192.0.2.1", 5060, 0, 1, 0);
  t.callee = flow(Protocol::kTcp, "192.0.2.2", 5062, 2, 0, 0x1f);
  t.caller_tag_hash = 0x8c1a2b3c;
  const std::string body = "u0.1.0.c0000201.13c4~t2.0.1f.c0000202.13c6~8c1a2b3c";
  EXPECT_EQ(signer.encode(t), sign(secret(4), body));
  const auto back = signer.decode(sign(secret(4), body));
  ASSERT_TRUE(back.has_value());
  expect_same_flow(back->callee, t.callee);
}

TEST(RouteTokenTest, MalformedFieldsAreRefusedEvenWithAGoodMac) {
  const RouteSigner signer(secret(4));
  for (const char* body : {
           "u0.0.0.c0000201.13c4~u0.0.0.c0000202.13c4",                   // missing tag hash
           "u0.0.0.c0000201.13c4~u0.0.0.c0000202.13c4~0~00000000",        // extra part
           "x0.0.0.c0000201.13c4~u0.0.0.c0000202.13c4~00000000",          // protocol letter
           "U0.0.0.c0000201.13c4~u0.0.0.c0000202.13c4~00000000",          // protocol letter
           "0.0.0.c0000201.13c4~u0.0.0.c0000202.13c4~00000000",           // no protocol letter
           "u10000.0.0.c0000201.13c4~u0.0.0.c0000202.13c4~00000000",      // worker > 16 bits
           "u0.100000000.0.c0000201.13c4~u0.0.0.c0000202.13c4~00000000",  // listener > 32 bits
           // connection > 64 bits
           "u0.0.10000000000000000.c0000201.13c4~u0.0.0.c0000202.13c4~00000000",
           "u0.0.0.c0000201.10000~u0.0.0.c0000202.13c4~00000000",   // port > 16 bits
           "u0.0.0.c00002.13c4~u0.0.0.c0000202.13c4~00000000",      // address length
           "u0.0.0.c000020101.13c4~u0.0.0.c0000202.13c4~00000000",  // address length
           "u0.0.0.~u0.0.0.c0000202.13c4~00000000",                 // empty fields
           "u0.0.0.c0000201.13c4.1~u0.0.0.c0000202.13c4~00000000",  // extra field
           "u0.0.c0000201.13c4~u0.0.0.c0000202.13c4~00000000",      // missing field
           "u0.0.0.C0000201.13c4~u0.0.0.c0000202.13c4~00000000",    // upper case
           "u0.0.0.g0000201.13c4~u0.0.0.c0000202.13c4~00000000",    // non-hex
           "u-1.0.0.c0000201.13c4~u0.0.0.c0000202.13c4~00000000",   // sign
           "u.0.0.c0000201.13c4~u0.0.0.c0000202.13c4~00000000",     // empty worker
           "u0.0.0.c0000201.~u0.0.0.c0000202.13c4~00000000",        // empty port
           "u0.0.0.c0000201.13c4~u0.0.0.c0000202.13c4~0000000",     // short tag hash
           "u0.0.0.c0000201.13c4~u0.0.0.c0000202.13c4~0000000g",    // non-hex tag hash
       }) {
    EXPECT_FALSE(signer.decode(sign(secret(4), body)).has_value()) << body;
  }
}

TEST(RouteTokenTest, GarbageIsRefusedWithoutThrowing) {
  const RouteSigner signer(secret(5));
  EXPECT_FALSE(signer.decode("").has_value());
  EXPECT_FALSE(signer.decode("~").has_value());
  EXPECT_FALSE(signer.decode("~~~").has_value());
  EXPECT_FALSE(signer.decode(".....~.....~~").has_value());
  EXPECT_FALSE(signer.decode(std::string(100000, 'a')).has_value());
  EXPECT_FALSE(signer.decode(std::string(200, '~')).has_value());
  EXPECT_FALSE(signer.decode(std::string("u0.0.0.c0000201.13c4\0~", 22)).has_value());

  std::mt19937 rng(12345);
  const std::string alphabet = "0123456789abcdefghijklmnopqrstuvwxyz.~-ABC\x01\xff";
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<std::size_t> length(0, 200);
  for (int i = 0; i < 5000; ++i) {
    std::string s(length(rng), ' ');
    for (char& c : s) c = alphabet[pick(rng)];
    EXPECT_FALSE(signer.decode(s).has_value()) << s;
  }
  // Random mutations of a real token.
  RouteToken t;
  t.caller = flow(Protocol::kTls, "2001:db8::1", 5061, 1, 1, 7);
  const std::string good = signer.encode(t);
  for (int i = 0; i < 2000; ++i) {
    std::string s = good;
    std::uniform_int_distribution<std::size_t> at(0, s.size() - 1);
    s[at(rng)] = alphabet[pick(rng)];
    if (s == good) continue;
    EXPECT_FALSE(signer.decode(s).has_value()) << s;
  }
}

}  // namespace
}  // namespace proxy
