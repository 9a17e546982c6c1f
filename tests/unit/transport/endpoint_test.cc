#include "transport/endpoint.h"

#include <gtest/gtest.h>

#include <unordered_set>

namespace transport {
namespace {

TEST(EndpointTest, ParsesAndPrintsBothFamilies) {
  auto v4 = Endpoint::from_string("192.0.2.1", 5060);
  ASSERT_TRUE(v4);
  EXPECT_FALSE(v4->v6);
  EXPECT_EQ(v4->to_string(), "192.0.2.1:5060");
  auto v6 = Endpoint::from_string("[2001:db8::1]", 5061);
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->v6);
  EXPECT_EQ(v6->to_string(), "[2001:db8::1]:5061");
  EXPECT_FALSE(Endpoint::from_string("example.com"));
  EXPECT_FALSE(Endpoint::from_string(""));
  EXPECT_FALSE(Endpoint::from_string("1.2.3.4.5"));
}

TEST(EndpointTest, PrintsEveryIPv4OctetLikeInetNtop) {
  for (const char* text : {"0.0.0.0", "255.255.255.255", "10.0.0.1", "127.0.0.1", "100.99.9.10",
                           "1.20.199.200"}) {
    const auto e = Endpoint::from_string(text, 0);
    ASSERT_TRUE(e) << text;
    EXPECT_EQ(e->address_string(), text);
  }
}

TEST(EndpointTest, MappedIPv4IsIPv4) {
  auto mapped = Endpoint::from_string("::ffff:192.0.2.1", 1);
  auto plain = Endpoint::from_string("192.0.2.1", 1);
  ASSERT_TRUE(mapped && plain);
  EXPECT_EQ(*mapped, *plain);
  EXPECT_EQ(EndpointHash{}(*mapped), EndpointHash{}(*plain));
}

TEST(EndpointTest, NeverSendToBroadcastOrMulticast) {
  for (const char* a : {"255.255.255.255", "224.0.0.1", "239.1.2.3", "0.0.0.0", "ff02::1", "::"}) {
    EXPECT_TRUE(Endpoint::from_string(a)->is_unusable_destination()) << a;
  }
  for (const char* a : {"127.0.0.1", "192.0.2.1", "::1", "2001:db8::1"}) {
    EXPECT_FALSE(Endpoint::from_string(a)->is_unusable_destination()) << a;
  }
}

TEST(EndpointTest, LoopbackAndHashing) {
  EXPECT_TRUE(Endpoint::from_string("127.0.0.2")->is_loopback());
  EXPECT_TRUE(Endpoint::from_string("::1")->is_loopback());
  EXPECT_FALSE(Endpoint::from_string("192.0.2.1")->is_loopback());
  std::unordered_set<Endpoint, EndpointHash> set;
  set.insert(*Endpoint::from_string("127.0.0.1", 1));
  set.insert(*Endpoint::from_string("127.0.0.1", 2));
  set.insert(*Endpoint::from_string("127.0.0.1", 1));
  EXPECT_EQ(set.size(), 2u);
  EXPECT_TRUE(Endpoint::from_string("127.0.0.1", 1)->same_address(*Endpoint::from_string("127.0.0.1", 2)));
}

}  // namespace
}  // namespace transport
