#include "base/flat_index.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>

namespace base {
namespace {

struct Item {
  std::string key;
  int value = 0;
};

// Hashes chosen by the test: small ones collide on purpose, so runs form and wrap around.
using Index = FlatIndex<std::unique_ptr<Item>>;

Item* find(Index& index, std::uint64_t h, const std::string& key) {
  Index::Entry* e =
      index.find(h, [&](const std::unique_ptr<Item>& item) { return item->key == key; });
  return e != nullptr ? e->value.get() : nullptr;
}

TEST(FlatIndex, FindsWhatWasInsertedAmongCollidingHashes) {
  Index index;
  EXPECT_EQ(find(index, 1, "a"), nullptr);  // empty, no storage yet
  index.insert(1, std::make_unique<Item>(Item{"a", 1}));
  index.insert(1, std::make_unique<Item>(Item{"b", 2}));  // same hash, other key
  index.insert(9, std::make_unique<Item>(Item{"c", 3}));  // same home in 8 entries
  ASSERT_NE(find(index, 1, "a"), nullptr);
  EXPECT_EQ(find(index, 1, "a")->value, 1);
  EXPECT_EQ(find(index, 1, "b")->value, 2);
  EXPECT_EQ(find(index, 9, "c")->value, 3);
  EXPECT_EQ(find(index, 9, "a"), nullptr);  // right key, wrong hash
  EXPECT_EQ(index.size(), 3u);
}

TEST(FlatIndex, EraseKeepsTheRestOfARunFindable) {
  Index index;
  for (int i = 0; i < 4; ++i) {
    index.insert(7, std::make_unique<Item>(Item{std::to_string(i), i}));  // one run from 7
  }
  Index::Entry* first = index.find(7, [](const auto& item) { return item->key == "0"; });
  ASSERT_NE(first, nullptr);
  std::unique_ptr<Item> gone = index.erase(first);
  EXPECT_EQ(gone->value, 0);
  EXPECT_EQ(find(index, 7, "0"), nullptr);
  for (int i = 1; i < 4; ++i) EXPECT_NE(find(index, 7, std::to_string(i)), nullptr) << i;
  EXPECT_EQ(index.size(), 3u);
}

TEST(FlatIndex, EraseIfTakesEachMatchOnceAndKeepsTheOthers) {
  Index index;
  // Hashes at the top of the index: runs wrap around to its start.
  for (int i = 0; i < 40; ++i) {
    index.insert(~std::uint64_t{0} - (i % 3), std::make_unique<Item>(Item{std::to_string(i), i}));
  }
  std::map<int, int> taken;
  index.erase_if([&](std::unique_ptr<Item>& item) {
    if (item->value % 2 != 0) return false;
    ++taken[item->value];
    item.reset();  // the caller may take the value
    return true;
  });
  EXPECT_EQ(taken.size(), 20u);
  for (const auto& [value, times] : taken) EXPECT_EQ(times, 1) << value;
  EXPECT_EQ(index.size(), 20u);
  for (int i = 0; i < 40; ++i) {
    Item* item = find(index, ~std::uint64_t{0} - (i % 3), std::to_string(i));
    EXPECT_EQ(item != nullptr, i % 2 != 0) << i;
  }
}

TEST(FlatIndex, ShrinksWhenEmptiedButNotBelowItsMinimum) {
  FlatIndex<std::uint64_t> index(64);
  for (std::uint64_t id = 1; id <= 1000; ++id) index.insert(id * 0x9e3779b97f4a7c15ull, id);
  EXPECT_GE(index.capacity(), 2000u);
  index.erase_if([](std::uint64_t) { return true; });
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.capacity(), 64u);
}

// Against std::map, over random inserts, erases and sweeps on few hashes (long runs).
TEST(FlatIndex, AgreesWithAMapOverRandomOperations) {
  std::mt19937_64 rng(7);
  FlatIndex<std::uint64_t> index;
  std::map<std::uint64_t, std::uint64_t> model;  // id -> hash
  std::uint64_t next_id = 1;
  const auto hash_of = [&](std::uint64_t) { return rng() % 64; };
  for (int step = 0; step < 20000; ++step) {
    const std::uint64_t op = rng() % 10;
    if (op < 6) {
      const std::uint64_t id = next_id++;
      const std::uint64_t h = hash_of(id);
      index.insert(h, id);
      model[id] = h;
    } else if (op < 9 && !model.empty()) {
      auto it = model.begin();
      std::advance(it, static_cast<long>(rng() % model.size()));
      auto* e = index.find(it->second, [&](std::uint64_t v) { return v == it->first; });
      ASSERT_NE(e, nullptr);
      EXPECT_EQ(index.erase(e), it->first);
      model.erase(it);
    } else {
      const std::uint64_t divisor = 2 + rng() % 5;
      index.erase_if([&](std::uint64_t id) { return id % divisor == 0; });
      std::erase_if(model, [&](const auto& kv) { return kv.first % divisor == 0; });
    }
    ASSERT_EQ(index.size(), model.size());
  }
  for (const auto& [id, h] : model) {
    EXPECT_NE(index.find(h, [&](std::uint64_t v) { return v == id; }), nullptr) << id;
  }
  std::size_t seen = 0;
  index.for_each([&](std::uint64_t) { ++seen; });
  EXPECT_EQ(seen, model.size());
}

// A value that is a small struct, as the proxy keeps them: empty only when default-made.
struct Ref {
  std::uint64_t id = 0;
  int branch = 0;
  explicit operator bool() const { return id != 0; }
};

TEST(FlatIndex, IndexesCountingIdsByHashIdAndShrinksAfterThePeak) {
  // Ids that differ only in their high bits, as a transaction id does from the one before
  // it in the same slot (a new generation): hash_id() must give them different homes. In
  // 4,096 entries, 2,048 random homes are about 1,612 distinct; the ids' low bits would give
  // them all one home.
  std::set<std::uint64_t> homes;
  for (std::uint64_t generation = 1; generation <= 2048; ++generation) {
    homes.insert(hash_id(generation << 29 | 5) & 4095);
  }
  EXPECT_GT(homes.size(), 1500u);

  FlatIndex<Ref> index;
  for (std::uint64_t id = 1; id <= 20000; ++id) {
    index.insert(hash_id(id), Ref{id, static_cast<int>(id % 7)});
  }
  const std::size_t peak = index.capacity();
  for (std::uint64_t id = 1; id <= 20000; ++id) {
    const auto* e = index.find(hash_id(id), [id](const Ref& r) { return r.id == id; });
    ASSERT_NE(e, nullptr) << id;
    EXPECT_EQ(e->value.branch, static_cast<int>(id % 7));
  }
  for (std::uint64_t id = 1; id <= 19990; ++id) {
    auto* e = index.find(hash_id(id), [id](const Ref& r) { return r.id == id; });
    ASSERT_NE(e, nullptr) << id;
    EXPECT_EQ(index.erase(e).id, id);
  }
  EXPECT_EQ(index.size(), 10u);
  EXPECT_LT(index.capacity(), peak / 100);  // the peak's array is given back
  for (std::uint64_t id = 19991; id <= 20000; ++id) {
    EXPECT_NE(index.find(hash_id(id), [id](const Ref& r) { return r.id == id; }), nullptr);
  }
}

}  // namespace
}  // namespace base
