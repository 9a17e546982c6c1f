// The dial plan: which trunk a number goes out through, what it looks like there, where calls
// come in from and which user a DID rings; and the destination policy in front of it all.
#include "proxy/dial_plan.h"

#include <gtest/gtest.h>

namespace proxy {
namespace {

using transport::Endpoint;

config::Trunk trunk(std::string name, std::string host, std::vector<std::string> outbound = {}) {
  config::Trunk t;
  t.name = std::move(name);
  t.host = std::move(host);
  t.outbound = std::move(outbound);
  return t;
}

Endpoint at(const char* address, std::uint16_t port = 5060) {
  return *Endpoint::from_string(address, port);
}

DialPlan built(const std::vector<config::Trunk>& trunks) {
  auto plan = DialPlan::build(trunks);
  EXPECT_TRUE(plan.ok()) << (plan.ok() ? "" : plan.error());
  return plan.ok() ? *plan : DialPlan{};
}

TEST(DialPlanTest, OutboundPatternsChooseTheTrunk) {
  const DialPlan plan = built({trunk("us", "192.0.2.10", {"NXXNXXXXXX", "1NXXNXXXXXX"}),
                               trunk("emergency", "192.0.2.20", {"911", "112"})});
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan.outbound_trunk("2125551234"), 0u);
  EXPECT_EQ(plan.outbound_trunk("12125551234"), 0u);
  EXPECT_EQ(plan.outbound_trunk("911"), 1u);
  EXPECT_EQ(plan.outbound_trunk("112"), 1u);
  EXPECT_EQ(plan.outbound_trunk("1125551234"), std::nullopt);  // N excludes 1
  EXPECT_EQ(plan.outbound_trunk("212555123"), std::nullopt);   // whole number only
  EXPECT_EQ(plan.outbound_trunk(""), std::nullopt);
}

TEST(DialPlanTest, FirstTrunkInConfigOrderWins) {
  const DialPlan plan =
      built({trunk("cheap", "192.0.2.10", {"0[1-5]."}), trunk("fallback", "192.0.2.20", {"0."})});
  EXPECT_EQ(plan.outbound_trunk("0301234567"), 0u);
  EXPECT_EQ(plan.outbound_trunk("0701234567"), 1u);

  const DialPlan reversed =
      built({trunk("fallback", "192.0.2.20", {"0."}), trunk("cheap", "192.0.2.10", {"0[1-5]."})});
  EXPECT_EQ(reversed.outbound_trunk("0301234567"), 0u);
  EXPECT_EQ(reversed.trunk(0).config.name, "fallback");
}

TEST(DialPlanTest, NoTrunksRouteNothing) {
  const DialPlan plan = built({});
  EXPECT_EQ(plan.size(), 0u);
  EXPECT_EQ(plan.outbound_trunk("5551234"), std::nullopt);
  EXPECT_EQ(plan.trunk_of_source(at("192.0.2.10")), std::nullopt);
}

TEST(DialPlanTest, OutboundNumberStripsThenPrefixes) {
  config::Trunk t = trunk("carrier", "192.0.2.10", {"9."});
  t.strip = 1;
  t.prefix = "+1";
  config::Trunk plain = trunk("plain", "192.0.2.11", {"X."});
  const DialPlan plan = built({t, plain});
  EXPECT_EQ(plan.outbound_number(0, "92125551234"), "+12125551234");
  EXPECT_EQ(plan.outbound_number(0, ""), "+1");  // strip never runs past the end
  EXPECT_EQ(plan.outbound_number(1, "5551234"), "5551234");
}

TEST(DialPlanTest, StripLongerThanTheNumberLeavesOnlyThePrefix) {
  config::Trunk t = trunk("carrier", "192.0.2.10", {"X."});
  t.strip = 10;
  t.prefix = "00";
  const DialPlan plan = built({t});
  EXPECT_EQ(plan.outbound_number(0, "12345"), "00");
}

TEST(DialPlanTest, InboundSourcesMatchIPv4AndIPv6) {
  config::Trunk t = trunk("carrier", "192.0.2.10");
  t.inbound_sources = {"198.51.100.0/24", "2001:db8:100::/48"};
  const DialPlan plan = built({t});
  EXPECT_EQ(plan.trunk_of_source(at("198.51.100.77")), 0u);
  EXPECT_EQ(plan.trunk_of_source(at("2001:db8:100::9", 5062)), 0u);
  EXPECT_EQ(plan.trunk_of_source(at("2001:db8:101::9")), std::nullopt);
  EXPECT_EQ(plan.trunk_of_source(at("198.51.101.1")), std::nullopt);
  // Explicit inbound sources replace the default: the host itself is not among them.
  EXPECT_EQ(plan.trunk_of_source(at("192.0.2.10")), std::nullopt);
  ASSERT_EQ(plan.trunk(0).inbound.networks().size(), 2u);
}

TEST(DialPlanTest, InboundDefaultsToTheHostAddress) {
  const DialPlan plan = built(
      {trunk("v4", "192.0.2.10"), trunk("v6", "2001:db8::5"), trunk("bracketed", "[2001:db8::6]")});
  EXPECT_EQ(plan.trunk_of_source(at("192.0.2.10", 5099)), 0u);  // any port
  EXPECT_EQ(plan.trunk_of_source(at("192.0.2.11")), std::nullopt);
  EXPECT_EQ(plan.trunk_of_source(at("2001:db8::5")), 1u);
  EXPECT_EQ(plan.trunk_of_source(at("2001:db8::6")), 2u);
  EXPECT_EQ(plan.trunk_of_source(at("2001:db8::7")), std::nullopt);
  ASSERT_EQ(plan.trunk(0).inbound.networks().size(), 1u);
  EXPECT_EQ(plan.trunk(0).inbound.networks()[0].prefix, 32u);
  EXPECT_EQ(plan.trunk(1).inbound.networks()[0].prefix, 128u);
}

TEST(DialPlanTest, FirstTrunkContainingTheSourceWins) {
  config::Trunk wide = trunk("wide", "192.0.2.10");
  wide.inbound_sources = {"192.0.2.0/24"};
  const DialPlan plan = built({wide, trunk("narrow", "192.0.2.20")});
  EXPECT_EQ(plan.trunk_of_source(at("192.0.2.20")), 0u);
}

TEST(DialPlanTest, DidsRingTheirUserWithOrWithoutPlus) {
  config::Trunk t = trunk("carrier", "192.0.2.10");
  t.dids = {{"+442071234567", "alice"}, {"15551230000", "bob"}};
  config::Trunk other = trunk("other", "192.0.2.20");
  other.dids = {{"+15551230000", "carol"}, {"15551230000", "dave"}};
  const DialPlan plan = built({t, other});
  EXPECT_EQ(plan.did_target(0, "+442071234567"), "alice");
  EXPECT_EQ(plan.did_target(0, "442071234567"), "alice");
  EXPECT_EQ(plan.did_target(0, "15551230000"), "bob");
  EXPECT_EQ(plan.did_target(0, "+15551230000"), "bob");
  EXPECT_EQ(plan.did_target(0, "4420712345678"), std::nullopt);
  EXPECT_EQ(plan.did_target(0, ""), std::nullopt);
  EXPECT_EQ(plan.did_target(0, "+"), std::nullopt);
  // DIDs belong to their trunk, and an exact match beats the other form.
  EXPECT_EQ(plan.did_target(1, "442071234567"), std::nullopt);
  EXPECT_EQ(plan.did_target(1, "+15551230000"), "carol");
  EXPECT_EQ(plan.did_target(1, "15551230000"), "dave");
}

TEST(DialPlanTest, BuildErrorsNameTheTrunkAndTheKey) {
  auto bad_pattern = DialPlan::build(
      {trunk("ok", "192.0.2.1", {"X."}), trunk("carrier", "192.0.2.10", {"NXX", "[12"})});
  ASSERT_FALSE(bad_pattern.ok());
  EXPECT_EQ(bad_pattern.error(), "trunk \"carrier\": outbound[1]: unclosed [");

  auto local = DialPlan::build({trunk("carrier", "192.0.2.10", {"local"})});
  ASSERT_FALSE(local.ok());
  EXPECT_EQ(local.error().rfind("trunk \"carrier\": outbound[0]: ", 0), 0u) << local.error();

  config::Trunk t = trunk("carrier", "192.0.2.10");
  t.inbound_sources = {"198.51.100.0/24", "198.51.100.0/33"};
  auto bad_cidr = DialPlan::build({t});
  ASSERT_FALSE(bad_cidr.ok());
  EXPECT_EQ(bad_cidr.error().rfind("trunk \"carrier\": inbound_sources[1]: ", 0), 0u)
      << bad_cidr.error();
  EXPECT_NE(bad_cidr.error().find("198.51.100.0/33"), std::string::npos);

  t.inbound_sources = {"not-an-address"};
  EXPECT_FALSE(DialPlan::build({t}).ok());

  auto no_host = DialPlan::build({trunk("carrier", "")});
  ASSERT_FALSE(no_host.ok());
  EXPECT_EQ(no_host.error().rfind("trunk \"carrier\": host: ", 0), 0u) << no_host.error();

  auto unusable = DialPlan::build({trunk("carrier", "0.0.0.0")});
  ASSERT_FALSE(unusable.ok());
  EXPECT_EQ(unusable.error().rfind("trunk \"carrier\": host: ", 0), 0u) << unusable.error();

  config::Trunk d = trunk("carrier", "192.0.2.10");
  d.dids = {{"+15551230000", ""}};
  auto empty_user = DialPlan::build({d});
  ASSERT_FALSE(empty_user.ok());
  EXPECT_EQ(empty_user.error().rfind("trunk \"carrier\": dids[0]: ", 0), 0u) << empty_user.error();
}

TEST(ResolveTrunkTest, LiteralsNeedNoLookup) {
  config::Trunk t = trunk("carrier", "192.0.2.10");
  t.port = 5080;
  auto v4 = resolve_trunk(t);
  ASSERT_TRUE(v4.ok()) << v4.error();
  EXPECT_EQ(*v4, at("192.0.2.10", 5080));

  t.host = "2001:db8::1";
  auto v6 = resolve_trunk(t);
  ASSERT_TRUE(v6.ok()) << v6.error();
  EXPECT_EQ(*v6, at("2001:db8::1", 5080));

  t.host = "[2001:db8::2]";
  auto bracketed = resolve_trunk(t);
  ASSERT_TRUE(bracketed.ok()) << bracketed.error();
  EXPECT_EQ(*bracketed, at("2001:db8::2", 5080));
}

TEST(ResolveTrunkTest, BuildKeepsTheResolvedAddress) {
  config::Trunk t = trunk("carrier", "192.0.2.10");
  t.port = 5070;
  const DialPlan plan = built({t});
  EXPECT_EQ(plan.trunk(0).address, at("192.0.2.10", 5070));
}

TEST(ResolveTrunkTest, NamesAreLookedUp) {
  // "localhost" comes from /etc/hosts, not DNS: a name lookup that works offline.
  config::Trunk t = trunk("pbx", "localhost");
  auto r = resolve_trunk(t);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(r->is_loopback()) << r->to_string();
  EXPECT_EQ(r->port, 5060);
  // A name is not trusted as an inbound source by default: it may answer from elsewhere.
  const DialPlan plan = built({t});
  EXPECT_TRUE(plan.trunk(0).inbound.empty());
}

TEST(DestinationAllowedTest, DefaultPolicyOpensNationalClosesInternationalAndPremium) {
  const config::CallPolicy policy;
  EXPECT_TRUE(destination_allowed(policy, "alice", /*local_user=*/true));
  EXPECT_TRUE(destination_allowed(policy, "1001", /*local_user=*/true));
  EXPECT_FALSE(destination_allowed(policy, "alice", /*local_user=*/false));
  EXPECT_TRUE(destination_allowed(policy, "5551234", false));
  EXPECT_TRUE(destination_allowed(policy, "2125551234", false));

  EXPECT_FALSE(destination_allowed(policy, "+441234", false));
  EXPECT_FALSE(destination_allowed(policy, "+441234", true));
  EXPECT_FALSE(destination_allowed(policy, "00442071234567", false));
  EXPECT_FALSE(destination_allowed(policy, "011442071234567", false));
  EXPECT_FALSE(destination_allowed(policy, "19005551234", false));
  EXPECT_FALSE(destination_allowed(policy, "19765551234", false));
  EXPECT_FALSE(destination_allowed(policy, "09001234567", false));
  EXPECT_FALSE(destination_allowed(policy, "118118", false));
  EXPECT_FALSE(destination_allowed(policy, "", false));
}

TEST(DestinationAllowedTest, DeniedWinsAndBadPatternsNeverMatch) {
  config::CallPolicy policy;
  policy.allowed_destinations = {"[1-", "NXXXXXX"};
  policy.denied_destinations = {"555XXXX", "[", "local"};
  EXPECT_TRUE(destination_allowed(policy, "2125551", false));
  EXPECT_FALSE(destination_allowed(policy, "5551234", false));
  EXPECT_FALSE(destination_allowed(policy, "1234567", false));  // only "[1-" would allow it
  EXPECT_FALSE(destination_allowed(policy, "2125551", true));   // "local" denied

  policy.allowed_destinations = {};
  EXPECT_FALSE(destination_allowed(policy, "2125551", false));
}

}  // namespace
}  // namespace proxy
