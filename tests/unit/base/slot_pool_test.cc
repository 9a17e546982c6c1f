// base::SlotPool (src/base/slot_pool.h): the lowest chunk with room first, stale (index,
// generation) pairs find nothing, even after their chunk was freed and made again, and a load
// peak's chunks are freed once their slots are.
#include "base/slot_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace base {
namespace {

constexpr std::uint32_t kChunk = SlotPool<int>::kChunk;

struct Item {
  std::string text;
  int value = 0;
};

TEST(SlotPool, FillsChunksInOrderAndNamesEachUseByItsGeneration) {
  SlotPool<Item> pool;
  EXPECT_EQ(pool.acquire().index, 0u);
  EXPECT_EQ(pool.acquire().index, 1u);
  const auto third = pool.acquire();
  EXPECT_EQ(third.index, 2u);
  EXPECT_EQ(third.generation, pool.generation(2));
  third.value.value = 2;
  EXPECT_EQ(pool[2].value, 2);
  const std::uint32_t g1 = pool.generation(1);
  pool[1].value = 11;
  EXPECT_EQ(pool.find(1, g1)->value, 11);
  EXPECT_EQ(pool.find(1, g1 + 1), nullptr);
  EXPECT_EQ(pool.find(7, 1), nullptr);           // never used
  EXPECT_EQ(pool.find(5 * kChunk, 1), nullptr);  // beyond every chunk

  pool.release(1);
  EXPECT_EQ(pool.find(1, g1), nullptr);
  EXPECT_EQ(pool.size(), 2u);
  EXPECT_EQ(pool.acquire().index, 1u);  // the slot freed last, under a new generation
  EXPECT_NE(pool.generation(1), g1);
  EXPECT_EQ(pool.find(1, g1), nullptr);
  EXPECT_EQ(pool[1].value, 0);  // made anew
  EXPECT_EQ(pool.acquire().index, 3u);
}

TEST(SlotPool, AReleasedObjectIsDestroyedNotKept) {
  SlotPool<Item> pool;
  const std::uint32_t n = pool.acquire().index;
  pool[n].text.assign(10000, 'x');
  pool.release(n);
  const std::uint32_t again = pool.acquire().index;
  ASSERT_EQ(again, n);
  EXPECT_TRUE(pool[again].text.empty());
  EXPECT_LT(pool[again].text.capacity(), 10000u);  // the buffer went with the object
}

TEST(SlotPool, APeaksChunksAreFreedAndStaleIdsFindNothingInTheirNextLife) {
  SlotPool<Item> pool;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ids;  // (index, generation)
  for (std::uint32_t i = 0; i < 10 * kChunk; ++i) {
    const std::uint32_t n = pool.acquire().index;
    EXPECT_EQ(n, i);
    ids.emplace_back(n, pool.generation(n));
  }
  EXPECT_EQ(pool.chunks_held(), 10u);

  // The load falls: all but a few objects of the first chunk end, in no particular order.
  std::mt19937 rng(7);
  std::vector<std::uint32_t> order(ids.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (std::uint32_t i : order) {
    if (i >= 5) pool.release(i);
  }
  EXPECT_EQ(pool.size(), 5u);
  EXPECT_EQ(pool.chunks_held(), 2u);  // the first, and one empty chunk kept for the next rise

  // Load again: the first chunk fills first, then the freed ones are made again. No earlier
  // id names any new object.
  for (std::uint32_t i = 0; i < 3 * kChunk; ++i) pool.acquire();
  EXPECT_EQ(pool.chunks_held(), 4u);
  for (std::size_t i = 5; i < ids.size(); ++i) {
    EXPECT_EQ(pool.find(ids[i].first, ids[i].second), nullptr) << i;
  }
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_NE(pool.find(ids[i].first, ids[i].second), nullptr) << i;
  }
}

TEST(SlotPool, ClearEndsEveryUse) {
  SlotPool<Item> pool;
  for (std::uint32_t i = 0; i < 3 * kChunk + 10; ++i) pool.acquire();
  const std::uint32_t g = pool.generation(kChunk + 1);
  pool.clear();
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_EQ(pool.chunks_held(), 1u);
  EXPECT_EQ(pool.find(kChunk + 1, g), nullptr);
  EXPECT_LT(pool.acquire().index, kChunk);
}

// Random acquisitions and releases against a model: every live object is found under its
// generation and holds its value, every ended one is not found, each acquisition takes a slot
// in the lowest chunk with room, and the chunks held never exceed what the highest live slot
// needs, plus the one empty chunk kept.
TEST(SlotPool, AgreesWithAModelThroughRandomRisesAndFalls) {
  SlotPool<Item> pool;
  std::map<std::uint32_t, std::pair<std::uint32_t, int>> live;  // index -> (generation, value)
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ended;
  std::mt19937 rng(20261207);
  int next_value = 1;
  std::size_t held_before = 0;
  int falls = 0;  // rounds after which fewer chunks were held: some were freed
  for (int round = 0; round < 40; ++round) {
    // Alternate rises and falls so that chunks are freed and made again.
    const bool rising = round % 2 == 0;
    const int ops = 2000 + static_cast<int>(rng() % 3000);
    for (int op = 0; op < ops; ++op) {
      const bool add = live.empty() || (rng() % 10) < (rising ? 8u : 2u);
      if (add) {
        std::map<std::uint32_t, std::uint32_t> in_chunk;
        for (const auto& [index, entry] : live) ++in_chunk[index / kChunk];
        std::uint32_t lowest = 0;
        while (in_chunk[lowest] == kChunk) ++lowest;
        const std::uint32_t n = pool.acquire().index;
        ASSERT_EQ(n / kChunk, lowest);
        ASSERT_EQ(live.count(n), 0u);
        pool[n].value = next_value;
        live[n] = {pool.generation(n), next_value++};
      } else {
        auto it = live.begin();
        std::advance(it, rng() % live.size());
        ended.emplace_back(it->first, it->second.first);
        pool.release(it->first);
        live.erase(it);
      }
    }
    ASSERT_EQ(pool.size(), live.size());
    for (const auto& [index, entry] : live) {
      const Item* item = pool.find(index, entry.first);
      ASSERT_NE(item, nullptr);
      EXPECT_EQ(item->value, entry.second);
    }
    for (const auto& [index, generation] : ended) {
      const auto it = live.find(index);
      if (it != live.end()) {
        ASSERT_NE(it->second.first, generation);  // reused: under a new generation
      }
      ASSERT_EQ(pool.find(index, generation), nullptr);
    }
    const std::uint32_t highest = live.empty() ? 0 : live.rbegin()->first;
    EXPECT_LE(pool.chunks_held(), highest / kChunk + 2);
    if (pool.chunks_held() < held_before) ++falls;
    held_before = pool.chunks_held();
  }
  EXPECT_GE(falls, 5);
}

}  // namespace
}  // namespace base
