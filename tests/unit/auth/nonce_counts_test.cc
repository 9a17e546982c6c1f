#include "auth/nonce_counts.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <random>

namespace auth {
namespace {

using Key = NonceCounts::Key;
using Result = NonceCounts::Result;

Key key_of(std::uint64_t n) {
  Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(n >> (8 * (i % 8)));
  k[15] ^= 0x5a;
  return k;
}

// What the table promises, the slow way: a map plus insertion order.
class Model {
 public:
  Model(std::size_t capacity, std::int64_t lifetime) : capacity_(capacity), lifetime_(lifetime) {}

  Result record(const Key& key, std::uint32_t nc, std::int64_t now) {
    while (!order_.empty() && now - first_seen_[order_.front()] > lifetime_) pop();
    if (auto it = highest_.find(key); it != highest_.end()) {
      if (nc <= it->second) return Result::kReplay;
      it->second = nc;
      return Result::kAccepted;
    }
    if (highest_.size() == capacity_) pop();
    highest_[key] = nc;
    first_seen_[key] = now;
    order_.push_back(key);
    return Result::kAccepted;
  }
  std::size_t size() const { return highest_.size(); }

 private:
  void pop() {
    highest_.erase(order_.front());
    first_seen_.erase(order_.front());
    order_.pop_front();
  }
  std::size_t capacity_;
  std::int64_t lifetime_;
  std::map<Key, std::uint32_t> highest_;
  std::map<Key, std::int64_t> first_seen_;
  std::deque<Key> order_;
};

TEST(NonceCountsTest, AcceptsRisingCountsAndRefusesReplays) {
  NonceCounts t(100, 60);
  const Key a = key_of(1), b = key_of(2);
  EXPECT_EQ(t.record(a, 1, 0), Result::kAccepted);
  EXPECT_EQ(t.record(a, 1, 0), Result::kReplay);
  EXPECT_EQ(t.record(b, 1, 0), Result::kAccepted);  // another key: its own count
  EXPECT_EQ(t.record(a, 3, 1), Result::kAccepted);
  EXPECT_EQ(t.record(a, 2, 1), Result::kReplay);    // below the highest
  EXPECT_EQ(t.size(), 2u);
}

TEST(NonceCountsTest, ForgetsEntriesOlderThanTheLifetime) {
  NonceCounts t(100, 60);
  const Key a = key_of(1);
  EXPECT_EQ(t.record(a, 5, 1000), Result::kAccepted);
  EXPECT_EQ(t.record(a, 5, 1060), Result::kReplay);    // 60 s: still kept
  EXPECT_EQ(t.record(key_of(2), 1, 1061), Result::kAccepted);
  EXPECT_EQ(t.size(), 1u);                              // a dropped on the way
  EXPECT_EQ(t.record(a, 5, 1061), Result::kAccepted);  // so its count starts over
}

TEST(NonceCountsTest, EvictsTheOldestAtTheCap) {
  NonceCounts t(3, 1000);
  for (std::uint64_t n = 1; n <= 3; ++n) EXPECT_EQ(t.record(key_of(n), 1, 0), Result::kAccepted);
  EXPECT_EQ(t.record(key_of(4), 1, 0), Result::kAccepted);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.record(key_of(1), 1, 0), Result::kAccepted);  // 1 was evicted: new again
  EXPECT_EQ(t.record(key_of(3), 1, 0), Result::kReplay);    // 3 is still there
}

// Random traffic through the ring's growth, wrap-around, expiry and eviction, checked step by
// step against the model. `spread` keys share few index homes when small: long probe runs that
// backward-shift deletion must keep findable.
void check_against_model(std::size_t capacity, std::uint64_t spread, std::uint32_t seed,
                         int steps = 200'000) {
  NonceCounts t(capacity, 30);
  Model m(capacity, 30);
  std::mt19937_64 rng(seed);
  std::int64_t now = 0;
  for (int step = 0; step < steps; ++step) {
    if (rng() % 64 == 0) now += static_cast<std::int64_t>(rng() % 4);
    std::uint64_t n = rng() % 5'000;
    Key k = key_of(n);
    if (spread != 0) {  // the first 8 bytes (the index hash) from a small set
      const std::uint64_t home = (rng() % spread) << 40;
      for (std::size_t i = 0; i < 8; ++i) k[i] = static_cast<std::uint8_t>(home >> (8 * i));
      k[8] = static_cast<std::uint8_t>(n);
      k[9] = static_cast<std::uint8_t>(n >> 8);
    }
    const auto nc = static_cast<std::uint32_t>(rng() % 8 + 1);
    ASSERT_EQ(t.record(k, nc, now), m.record(k, nc, now)) << "step " << step;
    ASSERT_EQ(t.size(), m.size()) << "step " << step;
  }
}

// Keys as the verifier makes them, a cryptographic hash's bytes: spread over the index (key_of's
// consecutive numbers would make one run of the whole table).
Key spread_key_of(std::uint64_t n) {
  std::uint64_t z = n + 0x9e3779b97f4a7c15u;  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  z ^= z >> 31;
  Key k = key_of(n);
  for (std::size_t i = 0; i < 8; ++i) k[i] = static_cast<std::uint8_t>(z >> (8 * i));
  return k;
}

TEST(NonceCountsTest, GivesBackItsRoomAfterAPeak) {
  // A flood of authentications fills the table; once their nonces are stale, the next
  // records shrink it back instead of keeping the flood's room for good.
  NonceCounts t(1'000'000, 60);
  for (std::uint64_t n = 0; n < 100'000; ++n) t.record(spread_key_of(n), 1, 0);
  EXPECT_GE(t.room(), 100'000u);
  for (std::uint64_t n = 0; n < 40; ++n) {
    EXPECT_EQ(t.record(spread_key_of(1'000'000 + n), 1, 100 + static_cast<std::int64_t>(n)),
              Result::kAccepted);
  }
  EXPECT_EQ(t.size(), 40u);
  EXPECT_LE(t.room(), 512u);
  // What is left still works: counts of the kept keys, new keys.
  EXPECT_EQ(t.record(spread_key_of(1'000'000), 1, 150), Result::kReplay);
  EXPECT_EQ(t.record(spread_key_of(1'000'000), 2, 150), Result::kAccepted);
  EXPECT_EQ(t.record(spread_key_of(5), 1, 150), Result::kAccepted);  // its old entry expired
}

TEST(NonceCountsTest, MatchesAModelOfMapAndOrder) {
  check_against_model(1'000, 0, 1);
  check_against_model(100'000, 0, 2);  // growth, no eviction
  check_against_model(1, 0, 3);
  check_against_model(777, 0, 4);      // a cap that is no power of two
}

TEST(NonceCountsTest, MatchesTheModelWhenKeysShareIndexHomes) {
  check_against_model(1'000, 3, 5, 50'000);
  check_against_model(300, 1, 6, 50'000);  // every key in one probe run
}

}  // namespace
}  // namespace auth
