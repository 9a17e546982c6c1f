// The shield's checks and bans, with a clock the test controls.
#include "shield/shield.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "sip/parser.h"

namespace shield {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

class ShieldTest : public ::testing::Test {
 protected:
  ShieldTest() { reset(Settings{}); }

  void reset(Settings s) {
    shield_ = std::make_unique<Shield>(std::move(s), events_, [this] { return now_; });
  }

  static transport::Flow from(const char* address, std::uint16_t port = 5060) {
    transport::Flow f;
    f.remote = *transport::Endpoint::from_string(address, port);
    return f;
  }

  Verdict send(const std::string& text, const transport::Flow& flow) {
    if (shield_->before_parse(flow) == Verdict::kDrop) return Verdict::kDrop;
    buffer_ = text;
    EXPECT_TRUE(sip::parse(buffer_, msg_).ok()) << text;
    return shield_->after_parse(msg_, flow);
  }

  static std::string request(const std::string& method, const std::string& agent = "Phone/1.0") {
    return method + " sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
           "From: <sip:1000@example.com>;tag=1\r\nTo: <sip:1000@example.com>\r\nCall-ID: c\r\n"
           "CSeq: 1 " + method + "\r\nUser-Agent: " + agent + "\r\nContent-Length: 0\r\n\r\n";
  }

  system_clock::time_point now_ = system_clock::time_point(seconds(1'800'000'000));
  SecurityEvents events_;
  std::unique_ptr<Shield> shield_;
  std::string buffer_;
  sip::Message msg_;
};

TEST_F(ShieldTest, NetworksParseAndMatch) {
  auto n = Network::parse("192.0.2.0/24");
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->contains(*transport::Endpoint::from_string("192.0.2.200")));
  EXPECT_FALSE(n->contains(*transport::Endpoint::from_string("192.0.3.1")));
  auto v6 = Network::parse("2001:db8::/32");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*transport::Endpoint::from_string("2001:db8:1::5")));
  EXPECT_FALSE(v6->contains(*transport::Endpoint::from_string("192.0.2.1")));
  auto host = Network::parse("10.1.2.3");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->prefix, 32u);
  EXPECT_TRUE(Network::parse("10.1.2.3/20")->contains(*transport::Endpoint::from_string("10.1.0.1")));
  EXPECT_FALSE(Network::parse("10.0.0.0/33"));
  EXPECT_FALSE(Network::parse("example.com/8"));
  EXPECT_FALSE(Network::parse("10.0.0.0/"));
}

TEST_F(ShieldTest, DenyAndAllowListsComeFirst) {
  Settings s;
  s.deny = NetworkList({*Network::parse("192.0.2.0/24")});
  s.allow = NetworkList({*Network::parse("192.0.0.0/8"), *Network::parse("::1")});
  reset(s);
  EXPECT_EQ(shield_->before_parse(from("192.0.2.9")), Verdict::kDrop);   // denied
  EXPECT_EQ(shield_->before_parse(from("192.1.2.9")), Verdict::kPass);   // allowed
  EXPECT_EQ(shield_->before_parse(from("198.51.100.1")), Verdict::kDrop);  // not allowed
  EXPECT_EQ(shield_->before_parse(from("::1")), Verdict::kPass);
}

TEST_F(ShieldTest, ScannerIsBannedAtTheFirstPacket) {
  const auto f = from("198.51.100.7");
  EXPECT_EQ(send(request("OPTIONS", "friendly-scanner"), f), Verdict::kDrop);
  EXPECT_TRUE(shield_->is_banned(f.remote));
  // Every later packet, whatever it says, is dropped before parsing.
  EXPECT_EQ(shield_->before_parse(f), Verdict::kDrop);
  EXPECT_EQ(shield_->bans().size(), 1u);
  EXPECT_EQ(shield_->take_new_bans().size(), 1u);
  EXPECT_TRUE(shield_->take_new_bans().empty());
  // Another source is untouched.
  EXPECT_EQ(send(request("OPTIONS"), from("198.51.100.8")), Verdict::kPass);
  EXPECT_EQ(send(request("REGISTER", "SIPVicious 0.3"), from("198.51.100.9")), Verdict::kDrop);
}

TEST_F(ShieldTest, FailedAuthenticationsBanTheSourceAndEscalate) {
  const auto attacker = from("203.0.113.5");
  for (int i = 0; i < 9; ++i) shield_->auth_failed(attacker, "user" + std::to_string(i), "wrong");
  EXPECT_FALSE(shield_->is_banned(attacker.remote));
  shield_->auth_failed(attacker, "user9", "wrong");  // the 10th
  ASSERT_TRUE(shield_->is_banned(attacker.remote));
  auto bans = shield_->bans();
  ASSERT_EQ(bans.size(), 1u);
  EXPECT_EQ(bans[0].level, 1);
  EXPECT_EQ(bans[0].until, 1'800'000'000 + 600);
  // The ban ends; the next one is longer (1 h), then 24 h.
  now_ += seconds(601);
  EXPECT_FALSE(shield_->is_banned(attacker.remote));
  for (int i = 0; i < 10; ++i) shield_->auth_failed(attacker, "x", "wrong");
  EXPECT_EQ(shield_->bans().at(0).until - 1'800'000'601, 3600);
  now_ += seconds(3601);
  for (int i = 0; i < 10; ++i) shield_->auth_failed(attacker, "x", "wrong");
  EXPECT_EQ(shield_->bans().at(0).until - 1'800'004'202, 86400);
  // The user is never locked out: a different source is not affected.
  EXPECT_EQ(shield_->before_parse(from("203.0.113.6")), Verdict::kPass);
}

TEST_F(ShieldTest, FailuresAgainstOneUserBanSooner) {
  const auto attacker = from("203.0.113.5");
  for (int i = 0; i < 4; ++i) shield_->auth_failed(attacker, "1000", "wrong");
  EXPECT_FALSE(shield_->is_banned(attacker.remote));
  shield_->auth_failed(attacker, "1000", "wrong");
  EXPECT_TRUE(shield_->is_banned(attacker.remote));
}

TEST_F(ShieldTest, FailuresOutsideTheWindowDoNotAddUp) {
  const auto phone = from("203.0.113.5");
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 3; ++i) shield_->auth_failed(phone, "u" + std::to_string(i), "wrong");
    now_ += seconds(61);
  }
  EXPECT_FALSE(shield_->is_banned(phone.remote));
}

TEST_F(ShieldTest, EnumerationIsBannedButAnOfficeBootingIsNot) {
  // An office: 50 phones behind one NAT, each challenged and authenticating at once.
  const auto office = from("192.0.2.1");
  for (int i = 0; i < 50; ++i) {
    shield_->user_challenged(office, std::to_string(1000 + i));
    shield_->auth_succeeded(office, std::to_string(1000 + i));
  }
  now_ += seconds(10);
  shield_->user_challenged(office, "1000");
  EXPECT_FALSE(shield_->is_banned(office.remote));
  // A scanner naming users and never authenticating.
  const auto scanner = from("203.0.113.77");
  for (int i = 0; i < 30; ++i) shield_->user_challenged(scanner, std::to_string(i));
  EXPECT_FALSE(shield_->is_banned(scanner.remote));  // within the grace period
  now_ += seconds(6);
  shield_->user_challenged(scanner, "31");
  EXPECT_TRUE(shield_->is_banned(scanner.remote));
}

TEST_F(ShieldTest, RateLimitsPerSourceAndClass) {
  Settings s;
  s.registers = {1, 5};
  reset(s);
  const auto f = from("192.0.2.44");
  int passed = 0;
  for (int i = 0; i < 20; ++i) passed += send(request("REGISTER"), f) == Verdict::kPass;
  EXPECT_EQ(passed, 5);  // the burst
  EXPECT_EQ(send(request("OPTIONS"), f), Verdict::kPass);  // another class is unaffected
  EXPECT_EQ(send(request("REGISTER"), from("192.0.2.45")), Verdict::kPass);  // another source
  now_ += seconds(2);
  EXPECT_EQ(send(request("REGISTER"), f), Verdict::kPass);  // refilled
  EXPECT_FALSE(shield_->is_banned(f.remote));  // rate limiting drops, it does not ban
}

TEST_F(ShieldTest, AdminBansAndLifts) {
  const auto a = *transport::Endpoint::from_string("2001:db8::9");
  const BanEntry e = shield_->ban(a, seconds(90), "by hand");
  EXPECT_EQ(e.until, 1'800'000'090);
  EXPECT_TRUE(shield_->is_banned(a));
  EXPECT_TRUE(shield_->unban(a));
  EXPECT_FALSE(shield_->is_banned(a));
  // Reload from the store: active bans in force, levels from history.
  shield_->load_bans({{a, 1'800'000'500, 2, "stored"}}, {});
  EXPECT_TRUE(shield_->is_banned(a));
  now_ += seconds(501);
  EXPECT_FALSE(shield_->is_banned(a));
}

TEST_F(ShieldTest, ReloadNeverShowsABannedSourceUnbanned) {
  // The server reloads the ban list from the store every second while workers check sources;
  // a source banned before and after the reload must be banned at every instant in between.
  std::vector<BanEntry> stored;
  for (int i = 1; i <= 200; ++i) {
    const std::string address = "198.51.100." + std::to_string(i);
    stored.push_back({*transport::Endpoint::from_string(address), 1'800'000'600, 1, "stored"});
  }
  shield_->load_bans(stored, stored);
  const transport::Endpoint watched = stored[123].address;
  std::atomic<bool> done{false};
  std::atomic<int> unbanned_seen{0};
  std::thread checker([&] {
    while (!done.load()) unbanned_seen += shield_->is_banned(watched) ? 0 : 1;
  });
  for (int i = 0; i < 300; ++i) shield_->load_bans(stored, stored);
  done = true;
  checker.join();
  EXPECT_EQ(unbanned_seen.load(), 0);
  EXPECT_TRUE(shield_->is_banned(watched));
}

TEST(SecurityEventsTest, LinesAreSafeAndParseable) {
  Event e;
  e.type = "auth_failed";
  e.source = "192.0.2.1";
  e.port = 5060;
  e.transport = "UDP";
  e.user = "evil\"\n user=admin";
  e.reason = "wrong";
  e.action = "challenged";
  const std::string json = SecurityEvents::json_line(e, 1'800'000'000'123);
  EXPECT_EQ(json.find('\n'), json.size() - 1);
  EXPECT_NE(json.find("\"user\":\"evil\\\"\\u000a user=admin\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"time\":\"2027-01-15T08:00:00.123Z\""), std::string::npos) << json;
  const std::string text = SecurityEvents::text_line(e, 1'800'000'000'123);
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  EXPECT_NE(text.find(" sipwarden security: type=auth_failed source=192.0.2.1 port=5060 "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("user=\"evil?? user=admin\""), std::string::npos) << text;
}

}  // namespace
}  // namespace shield
