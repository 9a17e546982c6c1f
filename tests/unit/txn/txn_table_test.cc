// The transaction layer's table (src/txn/txn_table.h): found by key and by id, ids never
// reused, slots stable, and the flat index right through growth, shrinking and deletions.
#include "txn/txn_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace txn {
namespace {

struct Txn {
  std::string key;
  std::string bytes;
  int value = 0;
};

// A weak hash on purpose: many keys share a home, so the probing and deletion paths run.
struct FewBuckets {
  std::uint64_t operator()(std::string_view s) const {
    std::uint64_t h = 0;
    for (char c : s) h = h * 31 + static_cast<unsigned char>(c);
    return h % 7;
  }
};

struct Good {
  std::uint64_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

TEST(TxnTableTest, FindsByKeyAndById) {
  TxnTable<Txn, Good> table(0, Good{});
  const auto a = table.insert("a").first;
  a.txn->value = 1;
  const auto b = table.insert("b").first;
  b.txn->value = 2;
  EXPECT_NE(a.id, 0u);
  EXPECT_NE(a.id, b.id);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.find("a").id, a.id);
  EXPECT_EQ(table.find("a").txn->value, 1);
  EXPECT_EQ(table.find("a").txn->key, "a");
  EXPECT_EQ(table.get(b.id)->value, 2);
  EXPECT_FALSE(table.find("c"));
  EXPECT_EQ(table.get(0), nullptr);
  // Inserting a key that is there already finds it and changes nothing.
  const auto [again, is_new] = table.insert("a");
  EXPECT_FALSE(is_new);
  EXPECT_EQ(again.id, a.id);
  EXPECT_EQ(again.txn->value, 1);
  EXPECT_EQ(table.size(), 2u);
}

TEST(TxnTableTest, AnEndedTransactionsIdFindsNothingEvenWhenItsSlotIsReused) {
  TxnTable<Txn, Good> table(0, Good{});
  const auto old = table.insert("old").first;
  table.erase(old.id);
  EXPECT_EQ(table.get(old.id), nullptr);
  EXPECT_FALSE(table.find("old"));
  const auto fresh = table.insert("fresh").first;  // the same slot, a new generation
  EXPECT_NE(fresh.id, old.id);
  EXPECT_EQ(table.get(old.id), nullptr);
  EXPECT_EQ(table.get(fresh.id)->key, "fresh");
  // An erased slot starts clean.
  EXPECT_EQ(fresh.txn->value, 0);
}

TEST(TxnTableTest, AnErasedTransactionsBuffersAreFreed) {
  // A free slot waits until it is reused; meanwhile it must not hold the ended transaction's
  // strings (after a load peak, that would be every slot's last response).
  TxnTable<Txn, Good> table(0, Good{});
  const auto big = table.insert(std::string(1000, 'k')).first;
  big.txn->bytes.assign(10000, 'x');
  table.erase(big.id);
  const auto next = table.insert("k").first;
  ASSERT_EQ(next.txn, big.txn) << "the same slot";
  EXPECT_LT(next.txn->key.capacity(), 100u);
  EXPECT_LT(next.txn->bytes.capacity(), 100u);
}

TEST(TxnTableTest, TwoKindsNeverShareAnId) {
  TxnTable<Txn, Good> servers(0, Good{});
  TxnTable<Txn, Good> clients(1, Good{});
  const auto s = servers.insert("k").first;
  const auto c = clients.insert("k").first;
  EXPECT_NE(s.id, c.id);
  EXPECT_EQ(servers.get(c.id), nullptr);
  EXPECT_EQ(clients.get(s.id), nullptr);
  EXPECT_EQ(servers.get(s.id), s.txn);
  EXPECT_EQ(clients.get(c.id), c.txn);
}

TEST(TxnTableTest, APeaksSlotsAreFreedWhenTheLoadFalls) {
  // A minute of a REGISTER flood leaves hundreds of thousands of transactions for 32 s each;
  // once they end, the table must not keep their slots for the rest of the server's life.
  TxnTable<Txn, Good> table(0, Good{});
  std::vector<TxnTable<Txn, Good>::Id> ids;
  for (int i = 0; i < 50000; ++i) ids.push_back(table.insert("peak" + std::to_string(i)).first.id);
  const std::size_t peak = table.chunks_held();
  EXPECT_GE(peak, 48u);
  // The quieter load that follows: new transactions while the peak's end, oldest first.
  std::vector<TxnTable<Txn, Good>::Id> quiet;
  for (int i = 0; i < 50000; ++i) {
    table.erase(ids[i]);
    if (i % 50 == 0) quiet.push_back(table.insert("quiet" + std::to_string(i)).first.id);
    if (quiet.size() > 100) {
      table.erase(quiet.front());
      quiet.erase(quiet.begin());
    }
  }
  EXPECT_EQ(table.size(), quiet.size());
  EXPECT_LE(table.chunks_held(), 2u);  // the quiet load's and one empty kept
  for (auto id : ids) EXPECT_EQ(table.get(id), nullptr);
  for (auto id : quiet) EXPECT_NE(table.get(id), nullptr);
}

TEST(TxnTableTest, TransactionsStayPutWhileOthersComeAndGo) {
  TxnTable<Txn, Good> table(0, Good{});
  Txn* first = table.insert("first").first.txn;
  for (int i = 0; i < 5000; ++i) table.insert("k" + std::to_string(i));
  for (int i = 0; i < 5000; i += 2) table.erase(table.find("k" + std::to_string(i)).id);
  EXPECT_EQ(table.find("first").txn, first);
  EXPECT_EQ(first->key, "first");
}

// Random inserts, lookups and erasures against a std::map, with a hash that piles keys up on
// a few homes and with a good one; the table grows to `keys` / 2 or more and shrinks back.
template <typename Hash>
void AgreesWithAMap(std::uint32_t seed, std::uint32_t keys) {
  TxnTable<Txn, Hash> table(1, Hash{});
  std::map<std::string, std::pair<std::uint64_t, int>> model;
  std::vector<std::uint64_t> ended;
  std::mt19937 rng(seed);
  for (int step = 0; step < 40000; ++step) {
    // Grow for the first half, then mostly erase.
    const int grow = step < 20000 ? 6 : 3;
    const std::string key = "key" + std::to_string(rng() % keys);
    const auto it = model.find(key);
    if (static_cast<int>(rng() % 10) < grow) {
      const auto [made, is_new] = table.insert(key);
      ASSERT_EQ(is_new, it == model.end()) << key;
      if (!is_new) {  // the one already there, untouched
        ASSERT_EQ(made.id, it->second.first);
        ASSERT_EQ(made.txn->value, it->second.second);
        continue;
      }
      made.txn->value = step;
      model[key] = {made.id, step};
    } else if (it != model.end()) {
      const std::uint64_t id = it->second.first;
      table.erase(id);
      ended.push_back(id);
      model.erase(it);
    }
    if (step % 997 == 0) {
      ASSERT_EQ(table.size(), model.size()) << "step " << step;
      for (const auto& [k, v] : model) {
        const auto found = table.find(k);
        ASSERT_TRUE(found) << k << " at step " << step;
        ASSERT_EQ(found.id, v.first);
        ASSERT_EQ(found.txn->value, v.second);
        ASSERT_EQ(table.get(v.first), found.txn);
      }
      for (const std::uint64_t id : ended) ASSERT_EQ(table.get(id), nullptr);
      std::size_t seen = 0;
      table.for_each([&](std::uint64_t id, Txn& t) {
        ++seen;
        EXPECT_EQ(model.at(t.key).first, id);
      });
      ASSERT_EQ(seen, model.size());
    }
  }
  for (const auto& [k, v] : model) table.erase(v.first);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(table.find("key1"));
}

TEST(TxnTableTest, AgreesWithAMapWhenKeysPileUp) {
  AgreesWithAMap<FewBuckets>(1, 300);
}

TEST(TxnTableTest, AgreesWithAMap) {
  AgreesWithAMap<Good>(2, 3000);
  AgreesWithAMap<Good>(3, 3000);
}

}  // namespace
}  // namespace txn
