#include "auth/hmac.h"

#include <gtest/gtest.h>
#include <openssl/hmac.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace auth {
namespace {

std::string hex(const HmacSha256::Mac& mac) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t b : mac) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xF]);
  }
  return out;
}

std::vector<std::uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

// RFC 4231 §4.2: a 20-byte key.
TEST(HmacSha256Test, Rfc4231TestCase1) {
  const std::vector<std::uint8_t> key(20, 0x0b);
  HmacSha256::Mac mac;
  ASSERT_TRUE(HmacSha256(key).compute({"Hi There"}, mac));
  EXPECT_EQ(hex(mac), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

// RFC 4231 §4.3: a key shorter than the output; the message given in two parts.
TEST(HmacSha256Test, Rfc4231TestCase2InParts) {
  HmacSha256::Mac mac;
  ASSERT_TRUE(HmacSha256(bytes("Jefe")).compute({"what do ya want ", "for nothing?"}, mac));
  EXPECT_EQ(hex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// RFC 4231 §4.7: a 131-byte key, longer than a block, is hashed first.
TEST(HmacSha256Test, Rfc4231TestCase6LongKey) {
  const std::vector<std::uint8_t> key(131, 0xaa);
  HmacSha256::Mac mac;
  ASSERT_TRUE(HmacSha256(key).compute(
      {"Test Using Larger Than Block-Size Key - Hash Key First"}, mac));
  EXPECT_EQ(hex(mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Test, SameAsOpenSslOneShotForEverySplitAndManyCalls) {
  std::vector<std::uint8_t> key(32);
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i * 7 + 1);
  const HmacSha256 hmac(key);
  const std::string message = "\x01\x02\x03\x04\x05\x06\x07\x08random!!127.0.0.1";
  std::uint8_t want[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const std::uint8_t*>(message.data()), message.size(), want, &len);
  ASSERT_EQ(len, 32u);
  for (std::size_t split = 0; split <= message.size(); ++split) {
    HmacSha256::Mac mac;
    ASSERT_TRUE(hmac.compute({std::string_view(message).substr(0, split),
                              std::string_view(message).substr(split)},
                             mac));
    EXPECT_EQ(0, std::memcmp(mac.data(), want, 32)) << "split at " << split;
  }
}

TEST(HmacSha256Test, SeveralThreadsAtOnceGetTheSameMac) {
  const HmacSha256 hmac(bytes("server secret"));
  HmacSha256::Mac want;
  ASSERT_TRUE(hmac.compute({"nonce input"}, want));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        HmacSha256::Mac mac;
        if (!hmac.compute({"nonce input"}, mac) || mac != want) ++mismatches[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace auth
