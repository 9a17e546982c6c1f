// The subscriber cache: every user of the set is found with its own HA1s and flags, names not
// in it are not (exact match: the store's names are case-sensitive), and a replace reports the
// names that went away while entries already handed out stay usable.
#include "registrar/subscribers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace registrar {
namespace {

store::Subscriber user(const std::string& name, bool require_tls = false) {
  store::Subscriber s;
  s.name = name;
  s.realm = "example.com";
  s.ha1_md5 = std::string(32, 'a') + name;  // distinct per user; the cache does not check
  s.ha1_sha256 = std::string(64, 'b') + name;
  s.require_tls = require_tls;
  return s;
}

TEST(SubscriberCacheTest, EveryUserOfALargeSetIsFoundWithItsOwnEntry) {
  std::vector<store::Subscriber> all;
  for (int i = 0; i < 10000; ++i) all.push_back(user("user" + std::to_string(i), i % 7 == 0));
  SubscriberCache cache;
  EXPECT_TRUE(cache.replace(all).empty());
  EXPECT_EQ(cache.size(), 10000u);
  for (const store::Subscriber& s : all) {
    const auto e = cache.find(s.name);
    ASSERT_NE(e, nullptr) << s.name;
    EXPECT_EQ(e->name, s.name);
    EXPECT_EQ(e->ha1_md5, s.ha1_md5);
    EXPECT_EQ(e->ha1_sha256, s.ha1_sha256);
    EXPECT_EQ(e->realm, "example.com");
    EXPECT_EQ(e->require_tls, s.require_tls);
  }
  for (const char* absent : {"", "user", "user10000", "User1", "user1 ", "alice"}) {
    EXPECT_EQ(cache.find(absent), nullptr) << absent;
  }
}

TEST(SubscriberCacheTest, AnEmptyCacheFindsNobody) {
  SubscriberCache cache;
  EXPECT_EQ(cache.find("1000"), nullptr);
  EXPECT_EQ(cache.size(), 0u);
  cache.replace({user("1000")});
  EXPECT_TRUE(cache.replace({}) == std::vector<std::string>{"1000"});
  EXPECT_EQ(cache.find("1000"), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(SubscriberCacheTest, ReplaceReportsTheGoneAndKeepsHeldEntriesValid) {
  SubscriberCache cache;
  cache.replace({user("1000"), user("2000"), user("3000")});
  const auto held = cache.find("2000");
  ASSERT_NE(held, nullptr);

  store::Subscriber changed = user("3000", /*require_tls=*/true);
  std::vector<std::string> gone = cache.replace({user("1000"), changed, user("4000")});
  std::sort(gone.begin(), gone.end());
  EXPECT_EQ(gone, std::vector<std::string>{"2000"});
  EXPECT_EQ(cache.find("2000"), nullptr);
  EXPECT_EQ(held->name, "2000");  // still readable by whoever held it
  EXPECT_EQ(held->ha1_md5, user("2000").ha1_md5);
  ASSERT_NE(cache.find("3000"), nullptr);
  EXPECT_TRUE(cache.find("3000")->require_tls);
  ASSERT_NE(cache.find("4000"), nullptr);
  EXPECT_EQ(cache.size(), 3u);
}

}  // namespace
}  // namespace registrar
