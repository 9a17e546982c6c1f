#include "base/keyed_hash.h"

#include <gtest/gtest.h>

#include <string>

namespace base {
namespace {

// The reference vectors of the SipHash paper (key 00 01 .. 0f, message 00 01 .. of n bytes).
TEST(KeyedHash, MatchesSipHash24ReferenceVectors) {
  const KeyedHash hash(KeyedHash::Key{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull});
  std::string message;
  EXPECT_EQ(hash(message), 0x726fdb47dd0e0e31ull);
  for (char c = 0; c < 15; ++c) message.push_back(c);
  EXPECT_EQ(hash(message), 0xa129ca6149be45e5ull);
}

TEST(KeyedHash, EachInstanceDrawsItsOwnKey) {
  const KeyedHash a;
  const KeyedHash b;
  EXPECT_NE(a("call-id@host"), b("call-id@host"));  // 2^-64 chance of a false failure
  EXPECT_EQ(a("call-id@host"), a("call-id@host"));
}

}  // namespace
}  // namespace base
