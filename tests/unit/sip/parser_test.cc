// The parser beyond the RFC 4475 corpus: typed headers, limits, framing and error reasons.
#include "sip/parser.h"

#include <gtest/gtest.h>

#include <string>

namespace sip {
namespace {

// A phone's authenticated REGISTER, the registrar's daily bread.
const std::string kRegister =
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5062;rport;branch=z9hG4bK-524287-1\r\n"
    "Max-Forwards: 70\r\n"
    "Contact: <sip:1000@192.0.2.10:5062;transport=udp>;expires=600;"
    "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n"
    "To: <sip:1000@example.com>\r\n"
    "From: \"Alice\" <sip:1000@example.com>;tag=5a3c8f\r\n"
    "Call-ID: 8d7f6e5c4b3a2918@192.0.2.10\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Expires: 600\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
    "Supported: path, outbound\r\n"
    "User-Agent: Example Phone 1.2\r\n"
    "Authorization: Digest username=\"1000\",realm=\"example.com\",nonce=\"abc123\","
    "uri=\"sip:example.com\",response=\"0123456789abcdef0123456789abcdef\",algorithm=MD5,"
    "cnonce=\"xyz\",qop=auth,nc=00000001\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

std::string with_header(std::string msg, const std::string& line) {
  msg.insert(msg.find("\r\n") + 2, line + "\r\n");
  return msg;
}

std::string replace(std::string msg, const std::string& from, const std::string& to) {
  msg.replace(msg.find(from), from.size(), to);
  return msg;
}

class ParserTest : public ::testing::Test {
 protected:
  Result<void> parse_text(const std::string& text, ParseOptions options = {}) {
    buffer_ = text;
    return parse(buffer_, msg_, options);
  }
  std::string buffer_;
  Message msg_;
};

TEST_F(ParserTest, RegisterHasEveryHeaderTheRegistrarNeeds) {
  ASSERT_TRUE(parse_text(kRegister).ok());
  EXPECT_TRUE(msg_.is_request());
  EXPECT_EQ(msg_.method, Method::kRegister);
  EXPECT_EQ(msg_.request_uri.host, "example.com");
  ASSERT_EQ(msg_.via.size(), 1u);
  EXPECT_EQ(msg_.via[0].transport, "UDP");
  EXPECT_EQ(msg_.via[0].host, "192.0.2.10");
  EXPECT_EQ(msg_.via[0].host_kind, HostKind::kIPv4);
  EXPECT_EQ(msg_.via[0].port, 5062);
  EXPECT_TRUE(msg_.via[0].has_rport);
  EXPECT_EQ(msg_.via[0].branch, "z9hG4bK-524287-1");
  EXPECT_TRUE(msg_.via[0].rfc3261_branch());
  EXPECT_EQ(msg_.max_forwards, 70);
  EXPECT_EQ(msg_.to.uri.user, "1000");
  EXPECT_EQ(msg_.from.display_name, "\"Alice\"");
  EXPECT_EQ(msg_.from.params.find("tag"), "5a3c8f");
  EXPECT_EQ(msg_.call_id, "8d7f6e5c4b3a2918@192.0.2.10");
  EXPECT_EQ(msg_.cseq.number, 2u);
  EXPECT_EQ(msg_.cseq.method, Method::kRegister);
  ASSERT_EQ(msg_.contact.size(), 1u);
  EXPECT_EQ(msg_.contact[0].uri.port, 5062);
  EXPECT_EQ(msg_.contact[0].uri.param("transport"), "udp");
  EXPECT_EQ(msg_.contact[0].params.find("expires"), "600");
  EXPECT_EQ(msg_.contact[0].params.find("+sip.instance"),
            "\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"");
  EXPECT_EQ(msg_.expires, 600);
  EXPECT_EQ(msg_.allow.size(), 5u);
  EXPECT_EQ(msg_.supported.size(), 2u);
  EXPECT_EQ(msg_.user_agent, "Example Phone 1.2");
  ASSERT_EQ(msg_.authorization.size(), 1u);
  const AuthField& a = msg_.authorization[0];
  EXPECT_TRUE(a.is_digest());
  EXPECT_EQ(a.username, "1000");
  EXPECT_EQ(a.realm, "example.com");
  EXPECT_EQ(a.nonce, "abc123");
  EXPECT_EQ(a.uri, "sip:example.com");
  EXPECT_EQ(a.response, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(a.algorithm, "MD5");
  EXPECT_EQ(a.cnonce, "xyz");
  EXPECT_EQ(a.qop, "auth");
  EXPECT_EQ(a.nc, "00000001");
  EXPECT_EQ(msg_.content_length, 0);
  EXPECT_TRUE(msg_.body.empty());
  EXPECT_EQ(msg_.raw.size(), kRegister.size());
}

TEST_F(ParserTest, ReusedMessageForgetsThePreviousOne) {
  ASSERT_TRUE(parse_text(kRegister).ok());
  const std::string options = replace(replace(kRegister, "REGISTER sip", "OPTIONS sip"),
                                      "2 REGISTER", "2 OPTIONS");
  ASSERT_TRUE(parse_text(replace(options, "Expires: 600\r\n", "")).ok());
  EXPECT_EQ(msg_.method, Method::kOptions);
  EXPECT_EQ(msg_.expires, -1);
  EXPECT_EQ(msg_.via.size(), 1u);
  EXPECT_EQ(msg_.contact.size(), 1u);
}

TEST_F(ParserTest, ResponseWithChallenges) {
  const std::string text =
      "SIP/2.0 401 Unauthorized\r\n"
      "Via: SIP/2.0/UDP 192.0.2.10:5062;rport=5062;received=198.51.100.7;branch=z9hG4bK1\r\n"
      "From: <sip:1000@example.com>;tag=1\r\n"
      "To: <sip:1000@example.com>;tag=2\r\n"
      "Call-ID: c\r\n"
      "CSeq: 1 REGISTER\r\n"
      "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n1\", opaque=\"o\", "
      "algorithm=SHA-256, qop=\"auth\"\r\n"
      "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n2\", opaque=\"o\", "
      "algorithm=MD5, qop=\"auth\", stale=true\r\n"
      "Content-Length: 0\r\n\r\n";
  ASSERT_TRUE(parse_text(text).ok());
  EXPECT_TRUE(msg_.is_response());
  EXPECT_EQ(msg_.status_code, 401);
  EXPECT_EQ(msg_.reason, "Unauthorized");
  EXPECT_EQ(msg_.via[0].rport, 5062);
  EXPECT_EQ(msg_.via[0].received, "198.51.100.7");
  ASSERT_EQ(msg_.www_authenticate.size(), 2u);
  EXPECT_EQ(msg_.www_authenticate[0].algorithm, "SHA-256");
  EXPECT_EQ(msg_.www_authenticate[1].nonce, "n2");
  EXPECT_EQ(msg_.www_authenticate[1].stale, "true");
  EXPECT_EQ(msg_.www_authenticate[1].qop, "auth");
}

TEST_F(ParserTest, CompactFormsAndCaseInsensitiveNames) {
  const std::string text =
      "INVITE sip:bob@example.com SIP/2.0\r\n"
      "v: SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bKa\r\n"
      "f: <sip:alice@example.com>;tag=1\r\n"
      "t: sip:bob@example.com\r\n"
      "i: abc\r\n"
      "cSeQ: 1 INVITE\r\n"
      "m: <sip:alice@[2001:db8::1]:5070;transport=tcp>\r\n"
      "k: 100rel\r\n"
      "c: application/sdp\r\n"
      "l: 4\r\n\r\n"
      "v=0\n";
  ASSERT_TRUE(parse_text(text).ok());
  EXPECT_EQ(msg_.via[0].host, "2001:db8::1");
  EXPECT_EQ(msg_.via[0].host_kind, HostKind::kIPv6);
  EXPECT_EQ(msg_.via[0].port, 5070);
  EXPECT_FALSE(msg_.to.angle_brackets);
  EXPECT_EQ(msg_.to.uri.user, "bob");
  EXPECT_EQ(msg_.call_id, "abc");
  EXPECT_EQ(msg_.contact[0].uri.host_kind, HostKind::kIPv6);
  EXPECT_EQ(msg_.supported.at(0), "100rel");
  EXPECT_EQ(msg_.content_type, "application/sdp");
  EXPECT_EQ(msg_.body, "v=0\n");
  EXPECT_NE(msg_.find("Content-Length"), nullptr);
  EXPECT_EQ(msg_.find("l")->value, "4");
  EXPECT_EQ(msg_.count(HeaderId::kVia), 1u);
}

TEST_F(ParserTest, MultiValueHeadersAcrossLines) {
  std::string text = with_header(kRegister, "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK2, "
                                            "SIP/2.0/TCP b.example.com:5061;branch=z9hG4bK3");
  text = with_header(text, "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>");
  ASSERT_TRUE(parse_text(text).ok());
  ASSERT_EQ(msg_.via.size(), 3u);
  EXPECT_EQ(msg_.via[0].host, "a.example.com");
  EXPECT_EQ(msg_.via[1].host, "b.example.com");
  EXPECT_EQ(msg_.via[2].host, "192.0.2.10");
  ASSERT_EQ(msg_.route.size(), 2u);
  EXPECT_TRUE(msg_.route[1].uri.params.has("lr"));
}

TEST_F(ParserTest, ContactStar) {
  std::string text = replace(kRegister, "Contact: <sip:1000@192.0.2.10:5062;transport=udp>",
                             "Contact: *\r\nX-Was: <sip:x@y>");
  text = replace(text, "Expires: 600", "Expires: 0");
  ASSERT_TRUE(parse_text(text).ok()) << parse_text(text).error().describe();
  EXPECT_TRUE(msg_.contact_star);
  EXPECT_TRUE(msg_.contact.empty());
  EXPECT_EQ(msg_.expires, 0);
  EXPECT_FALSE(parse_text(with_header(text, "Contact: <sip:a@b>")).ok());
}

TEST_F(ParserTest, LineFeedOnlyLineEndsAreAccepted) {
  std::string text = kRegister;
  for (std::size_t p; (p = text.find("\r\n")) != std::string::npos;) text.erase(p, 1);
  ASSERT_TRUE(parse_text(text).ok());
  EXPECT_EQ(msg_.call_id, "8d7f6e5c4b3a2918@192.0.2.10");
}

TEST_F(ParserTest, DatagramMayOmitTheFinalEmptyLineButAStreamMayNot) {
  const std::string text = kRegister.substr(0, kRegister.size() - 2);
  ASSERT_TRUE(parse_text(text).ok());
  EXPECT_EQ(msg_.content_length, 0);
  ParseOptions stream;
  stream.framing = Framing::kStream;
  const auto r = parse_text(text, stream);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTruncated);
}

TEST_F(ParserTest, ControlCharactersOnlyAsQuotedPairs) {
  // RFC 3261 §25.1 quoted-pair allows escaped controls inside a quoted string (RFC 4475
  // intmeth); the same byte unescaped, or outside quotes, is refused.
  const std::string ok_text = replace(kRegister, "\"Alice\"", std::string("\"A\\\0b\"", 6));
  ASSERT_TRUE(parse_text(ok_text).ok()) << parse_text(ok_text).error().describe();
  EXPECT_EQ(msg_.from.display_name.size(), 6u);
  EXPECT_FALSE(parse_text(replace(kRegister, "\"Alice\"", std::string("\"A\0b\"", 5))).ok());
}

TEST_F(ParserTest, BodyRunsToEndOfDatagramWithoutContentLength) {
  const std::string text = replace(kRegister, "Content-Length: 0\r\n", "") + "hello";
  ASSERT_TRUE(parse_text(text).ok());
  EXPECT_EQ(msg_.body, "hello");
  EXPECT_EQ(msg_.content_length, -1);
}

TEST_F(ParserTest, StreamFramingNeedsContentLength) {
  ParseOptions stream;
  stream.framing = Framing::kStream;
  ASSERT_TRUE(parse_text(kRegister, stream).ok());
  const auto r = parse_text(replace(kRegister, "Content-Length: 0\r\n", ""), stream);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kMissingHeader);
}

struct Rejection {
  const char* name;
  std::string text;
  ErrorCode code;
  const char* reason_part;  // must appear in Error::describe()
};

class RejectionTest : public ParserTest, public ::testing::WithParamInterface<Rejection> {};

TEST_P(RejectionTest, NamesWhatIsWrong) {
  const auto r = parse_text(GetParam().text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, GetParam().code) << r.error().describe();
  EXPECT_NE(r.error().describe().find(GetParam().reason_part), std::string::npos)
      << r.error().describe();
}

INSTANTIATE_TEST_SUITE_P(
    Parser, RejectionTest,
    ::testing::Values(
        Rejection{"Empty", "", ErrorCode::kTruncated, "no start line"},
        Rejection{"OnlyStartLine", "OPTIONS sip:a@b SIP/2.0\r\n", ErrorCode::kTruncated,
                  "empty line"},
        Rejection{"CutMidLine", kRegister.substr(0, kRegister.size() - 5),
                  ErrorCode::kTruncated, "empty line"},
        Rejection{"OtherVersion", replace(kRegister, "SIP/2.0\r\n", "SIP/3.0\r\n"),
                  ErrorCode::kBadVersion, "version"},
        Rejection{"GarbageVersion", replace(kRegister, "SIP/2.0\r\n", "HTTP/1.1\r\n"),
                  ErrorCode::kBadStartLine, "version"},
        Rejection{"TwoSpaces", replace(kRegister, "REGISTER sip:", "REGISTER  sip:"),
                  ErrorCode::kBadStartLine, "whitespace"},
        Rejection{"MethodNotToken", replace(kRegister, "REGISTER sip:", "REG@ISTER sip:"),
                  ErrorCode::kBadStartLine, "method"},
        Rejection{"NulInHeader", replace(kRegister, "Call-ID: 8d7f", std::string("Call-ID: \0d7f", 13)),
                  ErrorCode::kBadHeader, "control character"},
        Rejection{"BareCrInHeader", replace(kRegister, "Call-ID: 8d7f", "Call-ID: 8\rd7f"),
                  ErrorCode::kBadHeader, "control character"},
        Rejection{"HeaderWithoutColon", with_header(kRegister, "Bogus header"),
                  ErrorCode::kBadHeader, "without ':'"},
        Rejection{"HeaderNameNotToken", with_header(kRegister, "Bad Name: x"),
                  ErrorCode::kBadHeader, "not a token"},
        Rejection{"ViaNotSip", replace(kRegister, "SIP/2.0/UDP 192", "SIP/3.0/UDP 192"),
                  ErrorCode::kBadHeaderValue, "sent-protocol"},
        Rejection{"ViaBadPort", replace(kRegister, "192.0.2.10:5062;rport", "192.0.2.10:70000;rport"),
                  ErrorCode::kBadHeaderValue, "port"},
        Rejection{"ViaBadIPv4", replace(kRegister, "192.0.2.10:5062;rport", "192.0.2.300;rport"),
                  ErrorCode::kBadHeaderValue, "host"},
        Rejection{"ViaEmptyBranch", replace(kRegister, "branch=z9hG4bK-524287-1", "branch="),
                  ErrorCode::kBadHeaderValue, "Via parameter"},
        Rejection{"CSeqOverflow", replace(kRegister, "CSeq: 2 ", "CSeq: 4294967296 "),
                  ErrorCode::kBadHeaderValue, "2^32-1"},
        Rejection{"CSeqMethodMismatch", replace(kRegister, "CSeq: 2 REGISTER", "CSeq: 2 INVITE"),
                  ErrorCode::kInconsistent, "CSeq method"},
        Rejection{"MaxForwardsTooBig", replace(kRegister, "Max-Forwards: 70", "Max-Forwards: 256"),
                  ErrorCode::kBadHeaderValue, "Max-Forwards"},
        Rejection{"NegativeContentLength",
                  replace(kRegister, "Content-Length: 0", "Content-Length: -1"),
                  ErrorCode::kBadContentLength, "Content-Length"},
        Rejection{"ContentLengthBeyondBody",
                  replace(kRegister, "Content-Length: 0", "Content-Length: 10"),
                  ErrorCode::kBadContentLength, "larger than the body"},
        Rejection{"TwoCallIds", with_header(kRegister, "i: other"), ErrorCode::kDuplicateHeader,
                  "Call-ID"},
        Rejection{"NoVia", replace(kRegister, "Via: SIP/2.0/UDP 192.0.2.10:5062;rport;branch=z9hG4bK-524287-1\r\n", ""),
                  ErrorCode::kMissingHeader, "Via"},
        Rejection{"UnterminatedQuote", replace(kRegister, "\"Alice\" <", "\"Alice <"),
                  ErrorCode::kBadHeaderValue, "quoted"},
        Rejection{"UnclosedAngle", replace(kRegister, "To: <sip:1000@example.com>", "To: <sip:1000@example.com"),
                  ErrorCode::kBadHeaderValue, "'>'"},
        Rejection{"BadToUri", replace(kRegister, "To: <sip:1000@example.com>", "To: <sip:1000@>"),
                  ErrorCode::kBadUri, "URI"},
        Rejection{"DigestGarbage", replace(kRegister, "nc=00000001", "nc"),
                  ErrorCode::kBadHeaderValue, "Digest parameter"},
        Rejection{"StatusCodeTooBig",
                  "SIP/2.0 700 Odd\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
                  "To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n",
                  ErrorCode::kBadStartLine, "100..699"},
        Rejection{"FoldedStartLine", " " + kRegister, ErrorCode::kBadStartLine, "request line"}),
    [](const ::testing::TestParamInfo<Rejection>& p) { return p.param.name; });

TEST_F(ParserTest, LimitsAreEnforcedWithClearErrors) {
  ParseOptions tight;
  tight.limits.max_message_bytes = 100;
  auto r = parse_text(kRegister, tight);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
  EXPECT_NE(r.error().describe().find("message larger"), std::string::npos);

  tight = {};
  tight.limits.max_headers = 5;
  r = parse_text(kRegister, tight);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().describe().find("header lines"), std::string::npos);

  tight = {};
  tight.limits.max_header_line = 100;
  r = parse_text(kRegister, tight);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().describe().find("header line longer"), std::string::npos);

  tight = {};
  tight.limits.max_uri_length = 16;
  r = parse_text(kRegister, tight);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
  EXPECT_NE(r.error().describe().find("URI"), std::string::npos);
}

TEST_F(ParserTest, ManyHeadersDoNotCrash) {
  std::string text = kRegister;
  for (int i = 0; i < 1000; ++i) text = with_header(text, "X-Filler: " + std::to_string(i));
  const auto r = parse_text(text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
}

TEST(FrameLengthTest, FindsCompleteMessagesOnAStream) {
  const std::string body = "v=0\r\n";
  const std::string msg = replace(kRegister, "Content-Length: 0", "Content-Length: 5") + body;
  const std::string two = msg + kRegister;
  auto r = frame_length(two);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, msg.size());

  // Every strict prefix needs more bytes.
  for (std::size_t n = 0; n < msg.size(); ++n) {
    auto partial = frame_length(std::string_view(msg).substr(0, n));
    ASSERT_TRUE(partial.ok()) << n;
    EXPECT_FALSE(partial->has_value()) << n;
  }
  EXPECT_EQ(skip_keepalive("\r\n\r\nREGISTER"), 4u);
}

TEST(FrameLengthTest, RejectsWhatCannotBeFramed) {
  auto r = frame_length(replace(kRegister, "Content-Length: 0\r\n", ""));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kMissingHeader);

  r = frame_length(replace(kRegister, "Content-Length: 0", "Content-Length: 99999999"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);

  r = frame_length(replace(kRegister, "Content-Length: 0", "l: 1\r\nContent-Length: 1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kBadContentLength);

  // A slow-loris header section that never ends is cut off at the size limit.
  Limits limits;
  limits.max_message_bytes = 1024;
  std::string endless = "OPTIONS sip:a@b SIP/2.0\r\n";
  while (endless.size() <= 1024) endless += "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n";
  r = frame_length(endless, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
}

TEST(HeaderIdTest, CompactFormsAndCanonicalNames) {
  EXPECT_EQ(header_id("v"), HeaderId::kVia);
  EXPECT_EQ(header_id("I"), HeaderId::kCallId);
  EXPECT_EQ(header_id("call-id"), HeaderId::kCallId);
  EXPECT_EQ(header_id("WWW-AUTHENTICATE"), HeaderId::kWwwAuthenticate);
  EXPECT_EQ(header_id("X-Custom"), HeaderId::kOther);
  EXPECT_EQ(canonical_name(HeaderId::kCallId), "Call-ID");
  EXPECT_EQ(canonical_name(HeaderId::kOther), "");
  EXPECT_EQ(method_from_token("INVITE"), Method::kInvite);
  EXPECT_EQ(method_from_token("invite"), Method::kUnknown);
  EXPECT_EQ(to_string(Method::kRegister), "REGISTER");
}

}  // namespace
}  // namespace sip
