// The router as a black box: bytes in on a flow, bytes out on the wire.
#include "router/router.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace router {
namespace {

using std::chrono::milliseconds;

// Timers that fire only when the test advances the clock.
class ManualTimers final : public base::TimerService {
 public:
  Id start(milliseconds after, std::function<void()> fire) override {
    timers_[++next_] = {now_ + after, std::move(fire)};
    return next_;
  }
  void cancel(Id id) override { timers_.erase(id); }
  void advance(milliseconds by) {
    now_ += by;
    for (bool fired = true; fired;) {
      fired = false;
      for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (it->second.first <= now_) {
          auto fn = std::move(it->second.second);
          timers_.erase(it);
          fn();
          fired = true;
          break;
        }
      }
    }
  }

 private:
  milliseconds now_{0};
  Id next_ = 0;
  std::map<Id, std::pair<milliseconds, std::function<void()>>> timers_;
};

std::string request(const std::string& method, const std::string& uri,
                           const std::string& extra = "", const std::string& branch = "z9hG4bK-1",
                           const std::string& to = "<sip:1000@example.com>") {
  return method + " " + uri + " SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.10:5062;rport;branch=" + branch + "\r\n"
         "Max-Forwards: 70\r\n"
         "From: <sip:1000@example.com>;tag=abc\r\n"
         "To: " + to + "\r\n"
         "Call-ID: call-" + branch + "\r\n"
         "CSeq: 1 " + method + "\r\n" + extra + "Content-Length: 0\r\n\r\n";
}


struct Sent {
  transport::Flow flow;
  std::string bytes;
};

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() : nonces_(secret(), std::chrono::seconds(300)),
                 challenger_(nonces_, secret(), {auth::Algorithm::kSha256, auth::Algorithm::kMd5}) {
    shared_.domain = "example.com";
    shared_.local_hosts = {"example.com", "127.0.0.1"};
    shared_.challenger = &challenger_;
    router_ = std::make_unique<Router>(
        0, shared_,
        [this](const transport::Flow& f, std::string_view b) { sent_.push_back({f, std::string(b)}); },
        timers_);
  }

  static auth::Secret secret() {
    auth::Secret s;
    s.fill(7);
    return s;
  }

  static transport::Flow udp_from(const char* address, std::uint16_t port) {
    transport::Flow f;
    f.protocol = transport::Protocol::kUdp;
    f.remote = *transport::Endpoint::from_string(address, port);
    return f;
  }

  // Sends `text` and returns the parsed answers sent since.
  std::vector<std::string> deliver(const std::string& text,
                                   transport::Flow flow = udp_from("192.0.2.10", 5062)) {
    const std::size_t before = sent_.size();
    router_->on_message(text, flow);
    std::vector<std::string> out;
    for (std::size_t i = before; i < sent_.size(); ++i) out.push_back(sent_[i].bytes);
    return out;
  }

  static int code_of(const std::string& response) {
    sip::Message m;
    if (!sip::parse(response, m).ok()) return -1;
    return m.status_code;
  }

  static std::string header(const std::string& response, const std::string& name) {
    sip::Message m;
    if (!sip::parse(response, m).ok()) return "<unparseable>";
    const sip::HeaderField* h = m.find(name);
    return h == nullptr ? "<absent>" : std::string(h->value);
  }

  Shared shared_;
  auth::NonceFactory nonces_;
  auth::Challenger challenger_;
  ManualTimers timers_;
  std::vector<Sent> sent_;
  std::unique_ptr<Router> router_;
};

TEST_F(RouterTest, OptionsToTheServerGets200WithCapabilities) {
  const auto out = deliver(request("OPTIONS", "sip:example.com"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(code_of(out[0]), 200);
  EXPECT_NE(header(out[0], "Allow").find("INVITE"), std::string::npos);
  EXPECT_EQ(header(out[0], "Accept"), "application/sdp");
  EXPECT_NE(header(out[0], "Supported"), "<absent>");
  // RFC 3581: the answer goes to the source port and says so in rport; received added since
  // the Via host is the source address here.
  EXPECT_EQ(sent_.back().flow.remote.port, 5062);
  sip::Message m;
  ASSERT_TRUE(sip::parse(out[0], m).ok());
  EXPECT_EQ(m.via[0].rport, 5062);
  EXPECT_TRUE(m.via[0].received.empty());
  EXPECT_TRUE(m.to.params.has("tag"));
}

TEST_F(RouterTest, ReceivedAndViaPortWithoutRport) {
  std::string text = request("OPTIONS", "sip:127.0.0.1");
  text.replace(text.find(";rport"), 6, "");
  const auto out = deliver(text, udp_from("198.51.100.9", 40000));
  ASSERT_EQ(out.size(), 1u);
  // RFC 3261 §18.2.2: without rport, the source address and the Via's port.
  EXPECT_EQ(sent_.back().flow.remote.address_string(), "198.51.100.9");
  EXPECT_EQ(sent_.back().flow.remote.port, 5062);
  sip::Message m;
  ASSERT_TRUE(sip::parse(out[0], m).ok());
  EXPECT_EQ(m.via[0].received, "198.51.100.9");
}

TEST_F(RouterTest, RegisterIsChallengedWithSha256ThenMd5) {
  const auto out = deliver(request("REGISTER", "sip:example.com"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(code_of(out[0]), 401);
  sip::Message m;
  ASSERT_TRUE(sip::parse(out[0], m).ok());
  ASSERT_EQ(m.www_authenticate.size(), 2u);
  EXPECT_EQ(m.www_authenticate[0].algorithm, "SHA-256");
  EXPECT_EQ(m.www_authenticate[1].algorithm, "MD5");
  EXPECT_EQ(m.www_authenticate[1].realm, "example.com");
  EXPECT_EQ(m.www_authenticate[1].qop, "auth");
}

TEST_F(RouterTest, RetransmissionGetsTheSameAnswerAndIsProcessedOnce) {
  const std::string text = request("MESSAGE", "sip:2000@example.com");
  const auto first = deliver(text);
  const auto second = deliver(text);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(code_of(first[0]), 407);
  EXPECT_EQ(first[0], second[0]);
  EXPECT_EQ(router_->requests_processed(), 1u);
  // Timer J (64*T1 over UDP) ends the transaction; then the same branch is new again.
  EXPECT_EQ(router_->transactions(), 1u);
  timers_.advance(milliseconds(64 * 500 + 1));
  EXPECT_EQ(router_->transactions(), 0u);
}

// A REGISTER without credentials is answered statelessly: no transaction, and a
// retransmission gets a fresh challenge (a new nonce, as valid as the first).
TEST_F(RouterTest, RegisterWithoutCredentialsMakesNoTransaction) {
  const std::string text = request("REGISTER", "sip:example.com");
  const auto first = deliver(text);
  const auto second = deliver(text);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(code_of(first[0]), 401);
  EXPECT_EQ(code_of(second[0]), 401);
  EXPECT_EQ(router_->requests_processed(), 2u);
  EXPECT_EQ(router_->transactions(), 0u);
}

TEST_F(RouterTest, InviteIsChallengedAndItsAckAbsorbed) {
  const std::string invite = request("INVITE", "sip:2000@example.com", "", "z9hG4bK-inv");
  const auto out = deliver(invite);
  ASSERT_EQ(out.size(), 1u);  // the challenge, without a 100 Trying before it
  EXPECT_EQ(code_of(out[0]), 407);
  EXPECT_NE(header(out[0], "Proxy-Authenticate").find("Digest realm=\"example.com\""),
            std::string::npos);
  sip::Message resp;
  ASSERT_TRUE(sip::parse(out[0], resp).ok());
  std::string ack = request("ACK", "sip:2000@example.com", "", "z9hG4bK-inv",
                            std::string(resp.to.text));
  ack.replace(ack.find("CSeq: 1 ACK"), 11, "CSeq: 1 ACK");
  EXPECT_TRUE(deliver(ack).empty());
  // A CANCEL for it matches the transaction: 200.
  std::string cancel = request("CANCEL", "sip:2000@example.com", "", "z9hG4bK-inv");
  const auto c = deliver(cancel);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(code_of(c[0]), 200);
  // A CANCEL matching nothing: 481.
  const auto c2 = deliver(request("CANCEL", "sip:2000@example.com", "", "z9hG4bK-none"));
  ASSERT_EQ(c2.size(), 1u);
  EXPECT_EQ(code_of(c2[0]), 481);
}

struct Case {
  const char* name;
  std::string text;
  int code;
  const char* header_name;   // nullptr: no header check
  const char* header_part;   // must appear in that header's value
};

class RouterAnswerTest : public RouterTest, public ::testing::WithParamInterface<Case> {};

TEST_P(RouterAnswerTest, Answers) {
  const auto out = deliver(GetParam().text);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(code_of(out[0]), GetParam().code) << out[0];
  if (GetParam().header_name != nullptr) {
    EXPECT_NE(header(out[0], GetParam().header_name).find(GetParam().header_part), std::string::npos)
        << out[0];
  }
}

INSTANTIATE_TEST_SUITE_P(
    Router, RouterAnswerTest,
    ::testing::Values(
        Case{"UnknownMethod", request("FOO", "sip:example.com"), 501, "Allow", "OPTIONS"},
        Case{"Publish", request("PUBLISH", "sip:1000@example.com"), 405, "Allow", "INVITE"},
        Case{"TelScheme", request("OPTIONS", "tel:+15551234"), 416, nullptr, nullptr},
        Case{"OtherScheme", request("INVITE", "http://example.com/"), 416, nullptr, nullptr},
        Case{"MaxForwardsZero",
             [] {
               std::string text = request("INVITE", "sip:2000@example.com");
               text.replace(text.find("Max-Forwards: 70"), 16, "Max-Forwards: 0");
               return text;
             }(),
             483, nullptr, nullptr},
        Case{"ProxyRequire", request("INVITE", "sip:2000@example.com", "Proxy-Require: foo, bar\r\n"),
             420, "Unsupported", "foo, bar"},
        Case{"RequireOnOptionsToServer",
             request("OPTIONS", "sip:example.com", "Require: nonsense\r\n"), 420, "Unsupported",
             "nonsense"},
        Case{"RegisterWithTelTo", request("REGISTER", "sip:example.com", "", "z9hG4bK-1", "<tel:+1555>"),
             400, nullptr, nullptr},
        Case{"UnknownAuthScheme",
             request("REGISTER", "sip:example.com", "Authorization: NoOneKnows opaque-data=here\r\n"),
             401, "WWW-Authenticate", "Digest"},
        Case{"InDialogWithoutDialog",
             request("BYE", "sip:2000@example.com", "", "z9hG4bK-1", "<sip:2000@example.com>;tag=x"),
             481, nullptr, nullptr},
        Case{"OptionsToAUserIsChallenged", request("OPTIONS", "sip:2000@example.com"), 407,
             "Proxy-Authenticate", "Digest"},
        Case{"MalformedRequestGets400WithWarning",
             "INVITE sip:2000@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n"
             "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c\r\n"
             "CSeq: 1 INVITE\r\nMax-Forwards: 999\r\n\r\n",
             400, "Warning", "Max-Forwards"},
        Case{"WrongVersionGets505",
             "OPTIONS sip:example.com SIP/3.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n"
             "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c\r\n"
             "CSeq: 1 OPTIONS\r\n\r\n",
             505, nullptr, nullptr}),
    [](const ::testing::TestParamInfo<Case>& p) { return p.param.name; });

TEST_F(RouterTest, ResponsesThatMatchNothingAndGarbageGetNoAnswer) {
  EXPECT_TRUE(deliver("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
                      "From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\n"
                      "CSeq: 1 INVITE\r\n\r\n")
                  .empty());
  EXPECT_TRUE(deliver("SIP/2.0 999999 broken\r\n\r\n").empty());
  EXPECT_TRUE(deliver("\r\n\r\n").empty());
  EXPECT_TRUE(deliver(std::string("\x00\x01\x02garbage", 10)).empty());
}

TEST_F(RouterTest, DrainingAnswers503) {
  shared_.draining = true;
  const auto out = deliver(request("OPTIONS", "sip:example.com"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(code_of(out[0]), 503);
}

TEST_F(RouterTest, ResponseFlowRules) {
  sip::Message m;
  const std::string text = request("OPTIONS", "sip:example.com");
  ASSERT_TRUE(sip::parse(text, m).ok());
  transport::Flow tcp = udp_from("192.0.2.10", 40000);
  tcp.protocol = transport::Protocol::kTcp;
  tcp.connection = 9;
  EXPECT_EQ(response_flow(m.via[0], tcp).remote.port, 40000);  // streams: same connection
  EXPECT_EQ(response_flow(m.via[0], udp_from("192.0.2.10", 40000)).remote.port, 40000);  // rport
}

}  // namespace
}  // namespace router
