// SipHash-2-4 (Aumasson & Bernstein) under a random key drawn for each instance: the hash of
// the tables whose keys a peer chooses (transaction keys, Call-IDs). With a fixed hash an
// attacker could send messages whose keys all collide and turn every lookup into a list walk;
// a keyed hash also serves as a MAC that a peer cannot compute (the branches we generate).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string_view>

namespace base {

class KeyedHash {
 public:
  using Key = std::array<std::uint64_t, 2>;

  KeyedHash() {
    std::random_device rd;
    for (auto& word : key_) word = (std::uint64_t{rd()} << 32) ^ rd();
  }
  explicit KeyedHash(const Key& key) : key_(key) {}  // for tests against known answers

  std::uint64_t operator()(std::string_view data) const {
    std::uint64_t v0 = 0x736f6d6570736575ULL ^ key_[0];
    std::uint64_t v1 = 0x646f72616e646f6dULL ^ key_[1];
    std::uint64_t v2 = 0x6c7967656e657261ULL ^ key_[0];
    std::uint64_t v3 = 0x7465646279746573ULL ^ key_[1];
    auto sip_round = [&] {
      v0 += v1;
      v1 = rotl(v1, 13);
      v1 ^= v0;
      v0 = rotl(v0, 32);
      v2 += v3;
      v3 = rotl(v3, 16);
      v3 ^= v2;
      v0 += v3;
      v3 = rotl(v3, 21);
      v3 ^= v0;
      v2 += v1;
      v1 = rotl(v1, 17);
      v1 ^= v2;
      v2 = rotl(v2, 32);
    };
    auto compress = [&](std::uint64_t m) {
      v3 ^= m;
      sip_round();
      sip_round();
      v0 ^= m;
    };
    // SipHash reads the input as little-endian words: on this (little-endian) machine, one
    // load each. Byte by byte, hashing was 3 % of a worker's instructions in a call.
    static_assert(std::endian::native == std::endian::little);
    std::size_t i = 0;
    for (; i + 8 <= data.size(); i += 8) {
      std::uint64_t m;
      std::memcpy(&m, data.data() + i, 8);
      compress(m);
    }
    std::uint64_t tail = 0;
    if (i < data.size()) std::memcpy(&tail, data.data() + i, data.size() - i);
    compress((static_cast<std::uint64_t>(data.size()) << 56) | tail);
    v2 ^= 0xff;
    for (int r = 0; r < 4; ++r) sip_round();
    return v0 ^ v1 ^ v2 ^ v3;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

  Key key_;
};

}  // namespace base
