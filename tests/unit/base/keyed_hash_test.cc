#include "base/keyed_hash.h"

#include <gtest/gtest.h>

#include <string>

namespace base {
namespace {

// The reference vectors of the SipHash paper (key 00 01 .. 0f, message 00 01 .. of n bytes).
TEST(KeyedHash, MatchesSipHash24ReferenceVectors) {
  const KeyedHash hash(KeyedHash::Key{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull});
  const auto message = [](int n) {
    std::string m;
    for (int i = 0; i < n; ++i) m.push_back(static_cast<char>(i));
    return m;
  };
  EXPECT_EQ(hash(std::string_view()), 0x726fdb47dd0e0e31ull);  // no bytes, and no pointer
  EXPECT_EQ(hash(message(0)), 0x726fdb47dd0e0e31ull);
  EXPECT_EQ(hash(message(1)), 0x74f839c593dc67fdull);
  EXPECT_EQ(hash(message(7)), 0xab0200f58b01d137ull);  // a tail only
  EXPECT_EQ(hash(message(8)), 0x93f5f5799a932462ull);  // one word, an empty tail
  EXPECT_EQ(hash(message(9)), 0x9e0082df0ba9e4b0ull);
  EXPECT_EQ(hash(message(15)), 0xa129ca6149be45e5ull);
  EXPECT_EQ(hash(message(16)), 0x3f2acc7f57c29bdbull);
  EXPECT_EQ(hash(message(63)), 0x958a324ceb064572ull);
  // Unaligned input: the words are read from any address.
  const std::string shifted = "x" + message(63);
  EXPECT_EQ(hash(std::string_view(shifted).substr(1)), 0x958a324ceb064572ull);
}

TEST(KeyedHash, EachInstanceDrawsItsOwnKey) {
  const KeyedHash a;
  const KeyedHash b;
  EXPECT_NE(a("call-id@host"), b("call-id@host"));  // 2^-64 chance of a false failure
  EXPECT_EQ(a("call-id@host"), a("call-id@host"));
}

}  // namespace
}  // namespace base
