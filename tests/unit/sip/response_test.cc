#include "sip/response.h"

#include <gtest/gtest.h>

#include "sip/parser.h"

namespace sip {
namespace {

const std::string kInvite =
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.example.com;rport;branch=z9hG4bKnashds8;received=1.1.1.1\r\n"
    "Via: SIP/2.0/UDP bigbox3.example.com;branch=z9hG4bK77ef4c2312983.1\r\n"
    "Max-Forwards: 70\r\n"
    "Route: <sip:p1.example.com;lr>\r\n"
    "To: Bob <sip:bob@example.com>\r\n"
    "From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Content-Length: 0\r\n\r\n";

class ResponseTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(parse(kInvite, request_).ok()); }
  Message request_;
  Message parsed_;
  std::string out_;  // parsed_ borrows it
};

TEST_F(ResponseTest, CopiesDialogHeadersAndAddsToTag) {
  ResponseSpec spec;
  spec.code = 486;
  spec.to_tag = "abc";
  spec.headers = {{"Server", "sipwarden"}};
  const std::string out = build_response(request_, spec);
  ASSERT_TRUE(parse(out, parsed_).ok()) << out;
  EXPECT_EQ(parsed_.status_code, 486);
  EXPECT_EQ(parsed_.reason, "Busy Here");
  ASSERT_EQ(parsed_.via.size(), 2u);
  EXPECT_EQ(parsed_.via[1].host, "bigbox3.example.com");
  EXPECT_EQ(parsed_.to.params.find("tag"), "abc");
  EXPECT_EQ(parsed_.from.params.find("tag"), "1928301774");
  EXPECT_EQ(parsed_.call_id, "a84b4c76e66710");
  EXPECT_EQ(parsed_.cseq.number, 314159u);
  EXPECT_EQ(parsed_.cseq.method, Method::kInvite);
  EXPECT_EQ(parsed_.server, "sipwarden");
  EXPECT_EQ(parsed_.content_length, 0);
}

// A REGISTER answered after its request is gone: the head taken early plus the rest later is
// byte for byte the response build_response() makes.
TEST_F(ResponseTest, ResponseFromAHeadEqualsTheWholeResponse) {
  const ReceivedFrom from{"192.0.2.7", 5062};
  ResponseSpec spec;
  spec.code = 200;
  spec.to_tag = "t1";
  spec.headers = {{"Contact", "<sip:alice@192.0.2.7:5062>;expires=3600"}, {"Server", "x"}};
  const std::string head = response_head(request_, spec.to_tag, &from);
  EXPECT_EQ(build_response_from_head(head, spec), build_response(request_, spec, &from));
  ResponseSpec failure;
  failure.code = 500;
  failure.reason = "Server Internal Error (store)";
  failure.to_tag = "t1";
  EXPECT_EQ(build_response_from_head(head, failure), build_response(request_, failure, &from));
  const std::string out = build_response_from_head(head, failure);
  ASSERT_TRUE(parse(out, parsed_).ok()) << out;
  EXPECT_EQ(parsed_.status_code, 500);
  EXPECT_EQ(parsed_.via.front().received, "192.0.2.7");
}

TEST_F(ResponseTest, TryingHasNoToTag) {
  ResponseSpec spec;
  spec.code = 100;
  spec.to_tag = "abc";
  out_ = build_response(request_, spec);
  ASSERT_TRUE(parse(out_, parsed_).ok());
  EXPECT_FALSE(parsed_.to.params.has("tag"));
  EXPECT_EQ(parsed_.reason, "Trying");
}

TEST_F(ResponseTest, ReceivedAndRportFromTheRealSource) {
  // RFC 3581: a bare rport gets the source port; received replaces any sent value.
  const ReceivedFrom from{"192.0.2.7", 40123};
  out_ = build_response(request_, {}, &from);
  ASSERT_TRUE(parse(out_, parsed_).ok());
  EXPECT_EQ(parsed_.via[0].received, "192.0.2.7");
  EXPECT_EQ(parsed_.via[0].rport, 40123);
  EXPECT_EQ(parsed_.via[0].branch, "z9hG4bKnashds8");
  EXPECT_EQ(parsed_.via[0].params.raw().find("1.1.1.1"), std::string_view::npos);
}

TEST_F(ResponseTest, NoReceivedWhenTheViaHostIsTheSource) {
  const std::string req =
      "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
      "From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
  ASSERT_TRUE(parse(req, request_).ok());
  const ReceivedFrom from{"127.0.0.1", 5070};
  const std::string out = build_response(request_, {}, &from);
  ASSERT_TRUE(parse(out, parsed_).ok());
  EXPECT_TRUE(parsed_.via[0].received.empty());
  EXPECT_FALSE(parsed_.via[0].has_rport);
}

TEST_F(ResponseTest, BodyAndContentType) {
  ResponseSpec spec;
  spec.content_type = "text/plain";
  spec.body = "hello";
  out_ = build_response(request_, spec);
  ASSERT_TRUE(parse(out_, parsed_).ok());
  EXPECT_EQ(parsed_.body, "hello");
  EXPECT_EQ(parsed_.content_type, "text/plain");
}

TEST_F(ResponseTest, AckForNon2xxFollowsSection17_1_1_3) {
  ResponseSpec spec;
  spec.code = 486;
  spec.to_tag = "xyz";
  const std::string response_text = build_response(request_, spec);
  Message response;
  ASSERT_TRUE(parse(response_text, response).ok());
  const std::string ack = build_ack(request_, response);
  ASSERT_TRUE(parse(ack, parsed_).ok()) << ack;
  EXPECT_EQ(parsed_.method, Method::kAck);
  EXPECT_EQ(parsed_.request_uri.text, "sip:bob@example.com");
  ASSERT_EQ(parsed_.via.size(), 1u);
  EXPECT_EQ(parsed_.via[0].branch, "z9hG4bKnashds8");
  EXPECT_EQ(parsed_.to.params.find("tag"), "xyz");
  EXPECT_EQ(parsed_.cseq.number, 314159u);
  EXPECT_EQ(parsed_.cseq.method, Method::kAck);
  ASSERT_EQ(parsed_.route.size(), 1u);
}

TEST_F(ResponseTest, CancelKeepsTheInviteIdentity) {
  const std::string cancel = build_cancel(request_);
  ASSERT_TRUE(parse(cancel, parsed_).ok()) << cancel;
  EXPECT_EQ(parsed_.method, Method::kCancel);
  EXPECT_EQ(parsed_.via.size(), 1u);
  EXPECT_EQ(parsed_.via[0].branch, "z9hG4bKnashds8");
  EXPECT_FALSE(parsed_.to.params.has("tag"));
  EXPECT_EQ(parsed_.cseq.method_text, "CANCEL");
}

TEST(ReasonPhraseTest, KnownAndUnknown) {
  EXPECT_EQ(reason_phrase(505), "Version Not Supported");
  EXPECT_EQ(reason_phrase(299), "Unknown");
}

}  // namespace
}  // namespace sip

namespace sip {
namespace {

TEST(UnparsedResponseTest, CopiesTheIdentifyingLinesAndExplains) {
  const std::string raw =
      "INVITE sip:bob@example.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
      "To: <sip:bob@example.com>\r\n"
      "From: <sip:a@example.com>;tag=9\r\n"
      "Call-ID: x\r\n"
      "CSeq: 99999999999999 INVITE\r\n"
      "Subject: \x01 injected\r\n"
      "\r\n";
  const std::string out = build_response_to_unparsed(raw, 400, "t1", "bad \"CSeq\"");
  Message m;
  ASSERT_FALSE(parse(out, m).ok());  // its CSeq is still the request's overlarge one
  EXPECT_EQ(out.rfind("SIP/2.0 400 Bad Request\r\n", 0), 0u);
  EXPECT_NE(out.find("Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"), std::string::npos);
  EXPECT_NE(out.find("To: <sip:bob@example.com>;tag=t1\r\n"), std::string::npos);
  EXPECT_NE(out.find("Warning: 399 sipwarden \"bad 'CSeq'\"\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Subject"), std::string::npos);
  EXPECT_EQ(out.find("injected"), std::string::npos);
}

TEST(UnparsedResponseTest, NothingWithoutVia) {
  EXPECT_TRUE(build_response_to_unparsed("INVITE x SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n", 400, "t", "").empty());
}

}  // namespace
}  // namespace sip
