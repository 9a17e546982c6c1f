// The location service: what a lookup returns after registrations, refreshes, removals and
// expiries — every field exactly as applied, whatever the packed form does inside.
#include "registrar/location.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace registrar {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;

store::Binding binding(const std::string& aor, const std::string& contact, std::int64_t expires_at,
                       double q = 1.0) {
  store::Binding b;
  b.aor = aor;
  b.contact = contact;
  b.expires_at = expires_at;
  b.q = q;
  b.call_id = "a84b4c76e66710@pc33.example.com";
  b.cseq = 314159;
  b.transport = "udp";
  b.source = "192.0.2.10:5062";
  b.local = "198.51.100.1:5060";
  b.listener = 1;
  b.worker = 3;
  return b;
}

store::BindingChange upsert(const std::string& aor, std::vector<store::Binding> bindings) {
  store::BindingChange c;
  c.aor = aor;
  c.upsert = std::move(bindings);
  return c;
}

// Built with append: GCC 12 at -O3 warns falsely (-Wrestrict) on "a" + std::to_string(i) + "b".
std::string numbered(std::string_view prefix, int i, std::string_view suffix) {
  std::string s(prefix);
  s.append(std::to_string(i));
  s.append(suffix);
  return s;
}

std::vector<std::string> contacts(const std::vector<store::Binding>& list) {
  std::vector<std::string> out;
  for (const auto& b : list) out.push_back(b.contact);
  return out;
}

TEST(LocationTest, EveryFieldComesBackAsApplied) {
  const std::string aor = "alice@example.com";
  std::vector<store::Binding> in;
  // IPv6 flow over TLS, RFC 5626 instance and reg-id, a stream connection.
  store::Binding b = binding(aor, "sip:alice@[2001:db8::10]:5061;transport=tls", kNow + 3600, 0.5);
  b.instance = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";
  b.reg_id = "1";
  b.user_agent = "Example Phone 1.0";
  b.transport = "tls";
  b.source = "[2001:db8::10]:50123";
  b.local = "[2001:db8::1]:5061";
  b.connection = (1ull << 40) + 7;
  b.listener = 4'000'000'000u;
  b.worker = 65535;
  b.cseq = 4'294'967'295u;
  in.push_back(b);
  // Empty strings everywhere they may be empty, q 0.
  b = binding(aor, "sip:alice@192.0.2.11", kNow + 60, 0);
  b.call_id.clear();
  b.transport.clear();
  b.source.clear();
  b.local.clear();
  b.cseq = 0;
  b.listener = 0;
  b.worker = 0;
  in.push_back(b);
  // Long strings (length prefixes of several bytes), q 0.001, an unknown transport.
  b = binding(aor, "sip:alice@192.0.2.12;x=" + std::string(300, 'x'), kNow + 61, 0.001);
  b.call_id = std::string(70'000, 'c');
  b.user_agent = std::string(200, 'u');
  b.transport = "ws";
  in.push_back(b);
  // Addresses that would not print back the same from binary: kept as text.
  b = binding(aor, "sip:alice@192.0.2.13", kNow + 62, 1);
  b.source = "[::ffff:192.0.2.13]:5060";
  b.local = "192.0.2.1:05060";
  b.transport = "tcp";
  in.push_back(b);
  b = binding(aor, "sip:alice@192.0.2.14", kNow + 63, 0.7);
  b.source = "proxy.example.com:5060";
  b.local = "::1";
  in.push_back(b);
  // q values a registrar never makes from three decimals still come back bit for bit.
  b = binding(aor, "sip:alice@192.0.2.15", kNow + 64, 0.12345);
  b.source = "[::1]:1";
  b.local = "0.0.0.0:0";
  in.push_back(b);
  b = binding(aor, "sip:alice@192.0.2.16", kNow + 65, -0.0);
  in.push_back(b);
  // Far past and far future expiries (zigzag varints).
  b = binding(aor, "sip:alice@192.0.2.17", std::int64_t{1} << 62, 0.999);
  in.push_back(b);

  Location loc;
  loc.apply(upsert(aor, in));
  EXPECT_EQ(loc.size(), in.size());
  std::vector<store::Binding> out = loc.lookup(aor, kNow);
  ASSERT_EQ(out.size(), in.size());
  for (const store::Binding& want : in) {
    const auto got = std::find_if(
        out.begin(), out.end(), [&](const store::Binding& x) { return x.contact == want.contact; });
    ASSERT_NE(got, out.end()) << want.contact;
    EXPECT_EQ(*got, want) << want.contact;
    EXPECT_EQ(std::signbit(got->q), std::signbit(want.q));
  }
}

TEST(LocationTest, QValuesOfThreeDecimalsAreExact) {
  Location loc;
  const std::string aor = "q@example.com";
  for (int k = 0; k <= 1000; ++k) {
    const double q = static_cast<double>(k) / 1000;
    loc.apply(upsert(aor, {binding(aor, "sip:q@192.0.2.1", kNow + 100, q)}));
    const auto out = loc.lookup(aor, kNow);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].q, q) << k;
  }
  for (double q : {0.0, 0.5, 0.001, 1.0, 0.1, 0.3}) {
    loc.apply(upsert(aor, {binding(aor, "sip:q@192.0.2.1", kNow + 100, q)}));
    EXPECT_EQ(loc.lookup(aor, kNow)[0].q, q);
  }
}

TEST(LocationTest, UpsertReplacesTheBindingOfTheSameContactInPlace) {
  Location loc;
  const std::string aor = "bob@example.com";
  loc.apply(upsert(aor, {binding(aor, "sip:bob@192.0.2.1", kNow + 100),
                         binding(aor, "sip:bob@192.0.2.2", kNow + 100),
                         binding(aor, "sip:bob@192.0.2.3", kNow + 100)}));
  store::Binding refreshed = binding(aor, "sip:bob@192.0.2.2", kNow + 900);
  refreshed.cseq = 7;
  refreshed.call_id = "another";
  loc.apply(upsert(aor, {refreshed}));
  const auto out = loc.lookup(aor, kNow);
  EXPECT_EQ(loc.size(), 3u);
  EXPECT_EQ(contacts(out), (std::vector<std::string>{"sip:bob@192.0.2.1", "sip:bob@192.0.2.2",
                                                     "sip:bob@192.0.2.3"}));
  EXPECT_EQ(out[1], refreshed);
}

TEST(LocationTest, UpsertedBindingsTakeTheChangesAor) {
  Location loc;
  store::Binding b = binding("", "sip:carol@192.0.2.1", kNow + 100);
  loc.apply(upsert("carol@example.com", {b}));
  const auto out = loc.lookup("carol@example.com", kNow);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].aor, "carol@example.com");
}

TEST(LocationTest, RemoveByContactThenUpsertAndRemoveAll) {
  Location loc;
  const std::string aor = "dave@example.com";
  loc.apply(upsert(aor, {binding(aor, "sip:d@192.0.2.1", kNow + 100),
                         binding(aor, "sip:d@192.0.2.2", kNow + 100)}));
  store::BindingChange c;
  c.aor = aor;
  c.remove = {"sip:d@192.0.2.1", "sip:unknown@192.0.2.9"};
  loc.apply(c);
  EXPECT_EQ(contacts(loc.lookup(aor, kNow)), std::vector<std::string>{"sip:d@192.0.2.2"});
  EXPECT_EQ(loc.size(), 1u);

  // Contact: * — every binding goes, then this change's upserts (none here) are added.
  c = {};
  c.aor = aor;
  c.remove_all = true;
  loc.apply(c);
  EXPECT_TRUE(loc.lookup(aor, kNow).empty());
  EXPECT_EQ(loc.size(), 0u);

  // remove_all, remove, upsert in that order, in one change.
  loc.apply(upsert(aor, {binding(aor, "sip:d@192.0.2.1", kNow + 100)}));
  c = upsert(aor, {binding(aor, "sip:d@192.0.2.3", kNow + 100)});
  c.remove_all = true;
  c.remove = {"sip:d@192.0.2.3"};
  loc.apply(c);
  EXPECT_EQ(contacts(loc.lookup(aor, kNow)), std::vector<std::string>{"sip:d@192.0.2.3"});
  EXPECT_EQ(loc.size(), 1u);
}

TEST(LocationTest, RemoveUserDropsEveryAorOfThatUserOnly) {
  Location loc;
  for (const std::string aor :
       {"1000@example.com", "1000@example.org", "10000@example.com", "2000@example.com"}) {
    loc.apply(upsert(aor, {binding(aor, "sip:x@192.0.2.1", kNow + 100),
                           binding(aor, "sip:y@192.0.2.1", kNow + 100)}));
  }
  EXPECT_EQ(loc.size(), 8u);
  loc.remove_user("1000");
  EXPECT_EQ(loc.size(), 4u);
  EXPECT_TRUE(loc.lookup("1000@example.com", kNow).empty());
  EXPECT_TRUE(loc.lookup("1000@example.org", kNow).empty());
  EXPECT_EQ(loc.lookup("10000@example.com", kNow).size(), 2u);
  EXPECT_EQ(loc.lookup("2000@example.com", kNow).size(), 2u);
}

TEST(LocationTest, ExpiresOnTimeAndNotByTheStaleExpiryOfARefresh) {
  Location loc;
  const std::string aor = "eve@example.com";
  loc.apply(upsert(aor, {binding(aor, "sip:e@192.0.2.1", kNow + 100),
                         binding(aor, "sip:e@192.0.2.2", kNow + 200)}));
  // The first is refreshed before it expires: its old expiry comes due but drops nothing.
  loc.apply(upsert(aor, {binding(aor, "sip:e@192.0.2.1", kNow + 300)}));
  EXPECT_EQ(loc.expire(kNow + 99), 0u);
  EXPECT_EQ(loc.expire(kNow + 100), 0u);
  EXPECT_EQ(loc.size(), 2u);
  // Expired but not yet swept: not returned by lookup, still counted by size().
  EXPECT_EQ(contacts(loc.lookup(aor, kNow + 200)), std::vector<std::string>{"sip:e@192.0.2.1"});
  EXPECT_EQ(loc.size(), 2u);
  EXPECT_EQ(loc.expire(kNow + 250), 1u);
  EXPECT_EQ(loc.size(), 1u);
  EXPECT_EQ(loc.expire(kNow + 299), 0u);
  EXPECT_EQ(loc.expire(kNow + 300), 1u);
  EXPECT_EQ(loc.size(), 0u);
  EXPECT_TRUE(loc.lookup(aor, kNow).empty());
  EXPECT_EQ(loc.expire(kNow + 10'000), 0u);
  // A binding removed before its expiry leaves only a stale entry behind.
  loc.apply(upsert(aor, {binding(aor, "sip:e@192.0.2.1", kNow + 400)}));
  store::BindingChange c;
  c.aor = aor;
  c.remove_all = true;
  loc.apply(c);
  EXPECT_EQ(loc.expire(kNow + 500), 0u);
}

TEST(LocationTest, ExpiryOfABurstIsComplete) {
  // More due at one second than one sweep batch, across many AORs of every shard.
  Location loc;
  for (int i = 0; i < 5000; ++i) {
    const std::string aor = numbered("u", i, "@example.com");
    loc.apply(upsert(aor, {binding(aor, "sip:a@192.0.2.1", kNow + 10 + i % 2)}));
  }
  EXPECT_EQ(loc.size(), 5000u);
  EXPECT_EQ(loc.expire(kNow + 10), 2500u);
  EXPECT_EQ(loc.expire(kNow + 11), 2500u);
  EXPECT_EQ(loc.size(), 0u);
}

TEST(LocationTest, LookupOrdersByQHighestFirstAndKeepsOrderOnTies) {
  Location loc;
  const std::string aor = "fay@example.com";
  loc.apply(upsert(aor, {binding(aor, "sip:a@192.0.2.1", kNow + 100, 0.5),
                         binding(aor, "sip:b@192.0.2.1", kNow + 100, 1.0),
                         binding(aor, "sip:c@192.0.2.1", kNow + 100, 0.5),
                         binding(aor, "sip:d@192.0.2.1", kNow + 100, 0.001),
                         binding(aor, "sip:e@192.0.2.1", kNow + 100, 1.0)}));
  EXPECT_EQ(contacts(loc.lookup(aor, kNow)),
            (std::vector<std::string>{"sip:b@192.0.2.1", "sip:e@192.0.2.1", "sip:a@192.0.2.1",
                                      "sip:c@192.0.2.1", "sip:d@192.0.2.1"}));
}

TEST(LocationTest, SummariesAgreeWithLookup) {
  Location loc;
  const std::string aor = "gil@example.com";
  store::Binding late = binding(aor, "sip:late@192.0.2.1", kNow + 300, 0.5);
  late.call_id = "other-call";
  late.cseq = 7;
  loc.apply(upsert(aor, {binding(aor, "sip:a@192.0.2.1", kNow + 100, 0.25), late,
                         binding(aor, "sip:gone@192.0.2.1", kNow + 10, 1.0),
                         binding(aor, "sip:b@192.0.2.1", kNow + 200, 1.0)}));
  const auto full = loc.lookup(aor, kNow + 10);  // "gone" expired at kNow + 10
  const auto summaries = loc.summaries(aor, kNow + 10);
  ASSERT_EQ(full.size(), 3u);
  ASSERT_EQ(summaries.size(), full.size());
  for (std::size_t i = 0; i < full.size(); ++i) {
    EXPECT_EQ(summaries[i].contact, full[i].contact);
    EXPECT_EQ(summaries[i].expires_at, full[i].expires_at);
    EXPECT_EQ(summaries[i].q, full[i].q);
    EXPECT_EQ(summaries[i].call_id, full[i].call_id);
    EXPECT_EQ(summaries[i].cseq, full[i].cseq);
  }
  EXPECT_EQ(summaries[0].contact, "sip:b@192.0.2.1");  // highest q first
  EXPECT_TRUE(loc.summaries("nobody@example.com", kNow).empty());
}

// reach() gives the proxy the flow as kept: binary addresses as endpoints, any other text
// as registered. Printed back, each is what lookup() returns.
TEST(LocationTest, ReachAgreesWithLookup) {
  Location loc;
  const std::string aor = "hal@example.com";
  store::Binding v6 = binding(aor, "sip:h@[2001:db8::10]:5061;transport=tls", kNow + 300, 0.5);
  v6.transport = "tls";
  v6.source = "[2001:db8::10]:50123";
  v6.local = "[2001:db8::1]:5061";
  v6.connection = 42;
  v6.listener = 3;
  v6.worker = 1;
  store::Binding odd = binding(aor, "sip:h@192.0.2.9", kNow + 200, 1.0);
  odd.transport = "sctp";
  odd.source = "::ffff:192.0.2.9:5060";  // does not print back the same: kept as text
  odd.local = "";
  store::Binding gone = binding(aor, "sip:gone@192.0.2.1", kNow + 10, 1.0);
  loc.apply(upsert(aor, {v6, odd, gone, binding(aor, "sip:h@192.0.2.1", kNow + 100, 0.25)}));

  const auto full = loc.lookup(aor, kNow + 10);  // "gone" expired at kNow + 10
  const auto reach = loc.reach(aor, kNow + 10);
  ASSERT_EQ(full.size(), 3u);
  ASSERT_EQ(reach.size(), full.size());
  auto printed = [](const Location::Address& a) {
    return a.endpoint ? a.endpoint->to_string() : a.text;
  };
  for (std::size_t i = 0; i < full.size(); ++i) {
    EXPECT_EQ(reach[i].contact, full[i].contact);
    EXPECT_EQ(reach[i].q, full[i].q);
    EXPECT_EQ(reach[i].transport, full[i].transport);
    EXPECT_EQ(printed(reach[i].source), full[i].source);
    EXPECT_EQ(printed(reach[i].local), full[i].local);
    EXPECT_EQ(reach[i].connection, full[i].connection);
    EXPECT_EQ(reach[i].listener, full[i].listener);
    EXPECT_EQ(reach[i].worker, full[i].worker);
  }
  EXPECT_EQ(reach[0].contact, "sip:h@192.0.2.9");  // highest q first
  EXPECT_FALSE(reach[0].source.endpoint);
  EXPECT_EQ(reach[0].source.text, "::ffff:192.0.2.9:5060");
  ASSERT_TRUE(reach[1].source.endpoint);
  EXPECT_TRUE(reach[1].source.endpoint->v6);
  EXPECT_EQ(reach[1].source.endpoint->port, 50123);
  EXPECT_TRUE(loc.reach("nobody@example.com", kNow).empty());
}

TEST(LocationTest, LoadReplacesEverything) {
  Location loc;
  loc.apply(upsert("old@example.com", {binding("old@example.com", "sip:o@192.0.2.1", kNow + 50)}));
  std::vector<store::Binding> saved = {binding("a@example.com", "sip:a1@192.0.2.1", kNow + 100),
                                       binding("b@example.com", "sip:b@192.0.2.1", kNow + 100),
                                       binding("a@example.com", "sip:a2@192.0.2.1", kNow + 200)};
  loc.load(saved);
  EXPECT_EQ(loc.size(), 3u);
  EXPECT_TRUE(loc.lookup("old@example.com", kNow).empty());
  EXPECT_EQ(loc.lookup("a@example.com", kNow), (std::vector<store::Binding>{saved[0], saved[2]}));
  EXPECT_EQ(loc.lookup("b@example.com", kNow), std::vector<store::Binding>{saved[1]});
  // The old binding's expiry entry went with it; the loaded ones expire on time.
  EXPECT_EQ(loc.expire(kNow + 50), 0u);
  EXPECT_EQ(loc.expire(kNow + 100), 2u);
  EXPECT_EQ(loc.size(), 1u);
}

// Random registrations, refreshes, removals and expiries over many AORs (the table grows,
// probe runs form and entries are erased from their middle), checked against a plain model.
TEST(LocationTest, AgreesWithASimpleModel) {
  std::mt19937 rng(42);
  Location loc;
  std::map<std::string, std::vector<store::Binding>> model;
  std::int64_t now = kNow;
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (int step = 0; step < 40'000; ++step) {
    const std::string aor = numbered("user", pick(3000), "@example.com");
    const std::string contact = numbered("sip:c", pick(3), "@192.0.2.1");
    auto& list = model[aor];
    const int op = pick(10);
    if (op < 7) {
      store::Binding b = binding(aor, contact, now + 1 + pick(50), pick(1001) / 1000.0);
      b.cseq = static_cast<std::uint32_t>(step);
      loc.apply(upsert(aor, {b}));
      const auto it = std::find_if(list.begin(), list.end(),
                                   [&](const store::Binding& x) { return x.contact == contact; });
      if (it != list.end()) {
        *it = b;
      } else {
        list.push_back(b);
      }
    } else if (op < 9) {
      store::BindingChange c;
      c.aor = aor;
      c.remove = {contact};
      loc.apply(c);
      std::erase_if(list, [&](const store::Binding& x) { return x.contact == contact; });
    } else {
      now += 1;
      const std::size_t expired = loc.expire(now);
      std::size_t want = 0;
      for (auto& [a, l] : model) {
        want += std::erase_if(l, [&](const store::Binding& x) { return x.expires_at <= now; });
      }
      ASSERT_EQ(expired, want) << "step " << step;
    }
    if (step % 1000 == 0) {
      std::size_t total = 0;
      for (const auto& [a, l] : model) {
        total += l.size();
        std::vector<store::Binding> want = l;
        std::stable_sort(want.begin(), want.end(),
                         [](const auto& x, const auto& y) { return x.q > y.q; });
        ASSERT_EQ(loc.lookup(a, now), want) << a << " at step " << step;
      }
      ASSERT_EQ(loc.size(), total);
    }
  }
}

// Workers register, refresh and look up concurrently while the housekeeping timer expires.
// The housekeeping clock runs as fast as the scheduler lets it, so on a loaded machine it can
// pass a binding's expiry before its owner refreshes it: every check allows for that.
TEST(LocationTest, ConcurrentApplyLookupAndExpire) {
  Location loc;
  constexpr int kThreads = 4;
  constexpr int kUsers = 500;
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> now{kNow};
  // The expiry of each user's last binding, written only by the thread that owns the user.
  std::vector<std::int64_t> last_expiry(kThreads * kUsers);
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (int i = 0; i < kUsers; ++i) {
          // Each thread owns its users; every thread reads everyone's.
          const std::string aor = numbered(numbered("t", t, "u"), i, "@x");
          store::Binding b = binding(aor, "sip:c@192.0.2.1", now.load() + 1000);
          b.cseq = static_cast<std::uint32_t>(round);
          last_expiry[t * kUsers + i] = b.expires_at;
          loc.apply(upsert(aor, {b}));
          const auto mine = loc.lookup(aor, now.load());
          if (mine.empty()) {
            // Only the clock passing its expiry may take a binding away.
            ASSERT_GE(now.load(), b.expires_at) << aor;
          } else {
            ASSERT_EQ(mine.size(), 1u);
            EXPECT_EQ(mine[0].cseq, static_cast<std::uint32_t>(round));
          }
          const std::string other = numbered(numbered("t", (t + 1) % kThreads, "u"), i, "@x");
          for (const auto& x : loc.lookup(other, now.load())) EXPECT_EQ(x.aor, other);
        }
      }
    });
  }
  std::thread housekeeping([&] {
    while (!stop.load()) {
      loc.expire(now.fetch_add(1));
      loc.size();
      std::this_thread::yield();
    }
  });
  for (auto& w : workers) w.join();
  stop = true;
  housekeeping.join();
  // Exactly the last bindings that outlive the clock remain, whatever the interleaving was.
  const std::int64_t end = now.load();
  loc.expire(end);
  const auto alive = static_cast<std::size_t>(
      std::count_if(last_expiry.begin(), last_expiry.end(), [&](auto e) { return e > end; }));
  EXPECT_EQ(loc.size(), alive);
  EXPECT_EQ(loc.expire(end + 2000), alive);
  EXPECT_EQ(loc.size(), 0u);
}

}  // namespace
}  // namespace registrar
