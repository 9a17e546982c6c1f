// MessageEditor: the bytes a proxy puts on the wire after editing a received message. Every
// test compares the exact output, and re-parses it where the result is a valid message.

#include "sip/editor.h"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "sip/message.h"
#include "sip/parser.h"
#include "sip/result.h"

namespace sip {
namespace {

// Joins lines with CRLF; an empty string makes the empty line that ends the header section.
std::string Crlf(std::initializer_list<std::string_view> lines) {
  std::string out;
  for (std::string_view line : lines) out.append(line).append("\r\n");
  return out;
}

::testing::AssertionResult Parses(std::string_view text, Message& message) {
  const Result<void> r = parse(text, message);
  if (r) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.error().describe() << "\n--- input:\n" << text;
}

// `text` with its first occurrence of `from` replaced by `to` (which must be present).
std::string Replaced(std::string text, std::string_view from, std::string_view to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// RFC 4475 §3.1.1.1 wsinv: folding, compact names, odd spacing, unknown headers.
const std::string& Wsinv() {
  static const std::string text = Crlf({
      "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0",
      "TO :",
      " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
      R"(from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>)",
      "  ;",
      "  tag = 98asjd8",
      "MaX-fOrWaRdS: 0068",
      "Call-ID: wsinv.ndaksdj@192.0.2.1",
      "Content-Length   : 150",
      "cseq: 0009",
      "  INVITE",
      "Via  : SIP  /   2.0",
      " /UDP",
      "    192.0.2.2;branch=390skdjuw",
      "s :",
      "NewFangledHeader:   newfangled value",
      " continued newfangled value",
      "UnknownHeaderWithUnusualValue: ;;,,;;,;",
      "Content-Type: application/sdp",
      "Route:",
      " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>",
      "v:  SIP  / 2.0  / TCP     spindle.example.com   ;",
      "  branch  =   z9hG4bK9ikj8  ,",
      " SIP  /    2.0   / UDP  192.168.255.111   ; branch=",
      " z9hG4bK30239",
      R"(m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =)",
      "      newvalue ;",
      "  secondparam ; q = 0.33",
      "",
      "v=0",
      "o=mhandley 29739 7272939 IN IP4 192.0.2.3",
      "s=-",
      "c=IN IP4 192.0.2.4",
      "t=0 0",
      "m=audio 49217 RTP/AVP 0 12",
      "m=video 3227 RTP/AVP 31",
      "a=rtpmap:31 LPC",
  });
  return text;
}

// A request with multi-valued Via and Route lines, compact and repeated headers, and a body.
const std::string& Invite() {
  static const std::string text = Crlf({
                                      "INVITE sip:bob@example.com SIP/2.0",
                                      "Max-Forwards: 70",
                                      "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP "
                                      "b.example.com;branch=z9hG4bK2",
                                      "Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3",
                                      "Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>",
                                      "Route: <sip:p3.example.com;lr>",
                                      "From: <sip:alice@example.com>;tag=1",
                                      "To: <sip:bob@example.com>",
                                      "Call-ID: c1@example.com",
                                      "CSeq: 1 INVITE",
                                      "Subject: first",
                                      "X-Custom: one",
                                      "s: second",
                                      "x-CUSTOM: two,",
                                      " folded",
                                      "X-Customer: kept",
                                      "m: <sip:alice@192.0.2.1>",
                                      "Contact: <sip:alice@192.0.2.9>",
                                      "l: 4",
                                      "",
                                  }) +
                                  "abcd";
  return text;
}

// A response that went through two proxies: two Via lines, the second with two values.
const std::string& Response() {
  static const std::string text = Crlf({
      "SIP/2.0 200 OK",
      "v: SIP/2.0/UDP proxy1.example.com;branch=z9hG4bKp1",
      "Via:SIP/2.0/TCP proxy2.example.com;branch=z9hG4bKp2 ,  SIP/2.0/UDP "
      "alice.example.com;branch=z9hG4bKa1;received=192.0.2.1",
      "From: <sip:alice@example.com>;tag=1",
      "To: <sip:bob@example.com>;tag=2",
      "Call-ID: c1@example.com",
      "CSeq: 1 INVITE",
      "Content-Length: 0",
      "",
  });
  return text;
}

TEST(MessageEditorTest, WithoutEditsCopiesEveryByte) {
  Message message;
  ASSERT_TRUE(Parses(Wsinv(), message));
  const MessageEditor editor(message);
  EXPECT_EQ(editor.serialize(), Wsinv());
}

TEST(MessageEditorTest, SerializeToAppendsToTheBuffer) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  editor.set_header_value(HeaderId::kMaxForwards, "69");
  std::string out = "already here|";
  editor.serialize_to(out);
  EXPECT_EQ(out, "already here|" + Replaced(Invite(), "Max-Forwards: 70", "Max-Forwards: 69"));
}

TEST(MessageEditorTest, BytesAfterTheMessageAreNotCopied) {
  // RFC 4475 dblreq: a datagram carrying more than Content-Length announces.
  const std::string first = Crlf({
      "REGISTER sip:example.com SIP/2.0",
      "To: <sip:j.user@example.com>",
      "From: <sip:j.user@example.com>;tag=43251j3j324",
      "Max-Forwards: 8",
      "Call-ID: dblreq.0ha0isndaksdj99sdfafnl3lk233412",
      "CSeq: 8 REGISTER",
      "Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492",
      "Content-Length: 0",
      "",
  });
  const std::string datagram = first + "INVITE sip:joe@example.com SIP/2.0\r\n";
  Message message;
  ASSERT_TRUE(Parses(datagram, message));
  MessageEditor editor(message);
  EXPECT_EQ(editor.serialize(), first);
  editor.set_body("hello");
  EXPECT_EQ(editor.serialize(),
            Replaced(first, "Content-Length: 0\r\n\r\n", "Content-Length: 5\r\n\r\nhello"));
}

TEST(MessageEditorTest, EditsOnTortureMessageLeaveEveryOtherByteAlone) {
  Message message;
  ASSERT_TRUE(Parses(Wsinv(), message));
  MessageEditor editor(message);
  editor.set_request_uri("sip:vivekg@192.0.2.50:5070");
  editor.set_header_value(HeaderId::kMaxForwards, "67");
  editor.push_via("SIP/2.0/UDP proxy.example.com;branch=z9hG4bKnew");
  editor.add_record_route("<sip:proxy.example.com;lr>");

  std::string expected = Replaced(Wsinv(), "sip:vivekg@chair-dnrc.example.com;unknownparam SIP",
                                  "sip:vivekg@192.0.2.50:5070 SIP");
  expected = Replaced(expected, "MaX-fOrWaRdS: 0068\r\n", "MaX-fOrWaRdS: 67\r\n");
  // No Record-Route: it goes before the first header line. The Via goes above the first Via.
  expected = Replaced(expected, "TO :\r\n", "Record-Route: <sip:proxy.example.com;lr>\r\nTO :\r\n");
  expected = Replaced(expected, "Via  : SIP",
                      "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKnew\r\nVia  : SIP");
  const std::string out = editor.serialize();
  EXPECT_EQ(out, expected);

  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_EQ(edited.request_uri.host, "192.0.2.50");
  EXPECT_EQ(edited.max_forwards, 67);
  ASSERT_EQ(edited.via.size(), 4u);
  EXPECT_EQ(edited.via[0].host, "proxy.example.com");
  EXPECT_EQ(edited.via[1].host, "192.0.2.2");
  ASSERT_EQ(edited.record_route.size(), 1u);
  EXPECT_EQ(edited.record_route[0].uri.host, "proxy.example.com");
  EXPECT_EQ(edited.body, message.body);
}

TEST(MessageEditorTest, PopViaAcrossFoldedMultiValueLines) {
  Message message;
  ASSERT_TRUE(Parses(Wsinv(), message));
  MessageEditor editor(message);

  ASSERT_TRUE(editor.pop_via());  // "Via  : ..." holds one value: the whole folded line goes
  std::string expected =
      Replaced(Wsinv(), "Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n", "");
  EXPECT_EQ(editor.serialize(), expected);

  ASSERT_TRUE(editor.pop_via());  // the first of two values on the folded "v:" line
  expected = Replaced(expected,
                      "v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n"
                      "  branch  =   z9hG4bK9ikj8  ,\r\n SIP",
                      "v:  SIP");
  const std::string out = editor.serialize();
  EXPECT_EQ(out, expected);

  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  ASSERT_EQ(edited.via.size(), 1u);
  EXPECT_EQ(edited.via[0].host, "192.168.255.111");
  EXPECT_EQ(edited.via[0].branch, "z9hG4bK30239");

  ASSERT_TRUE(editor.pop_via());  // the last value: the whole line goes
  EXPECT_EQ(editor.serialize().find("v:"), std::string::npos);
  EXPECT_FALSE(editor.pop_via());
}

TEST(MessageEditorTest, PopViaTakesValuesInOrderAcrossLines) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  const std::string first_line =
      "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com;branch=z9hG4bK2"
      "\r\n";
  const std::string second_line = "Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3\r\n";

  ASSERT_TRUE(editor.pop_via());
  EXPECT_EQ(editor.serialize(),
            Replaced(Invite(), first_line, "Via: SIP/2.0/TCP b.example.com;branch=z9hG4bK2\r\n"));

  ASSERT_TRUE(editor.pop_via());
  EXPECT_EQ(editor.serialize(), Replaced(Invite(), first_line, ""));

  ASSERT_TRUE(editor.pop_via());
  EXPECT_EQ(editor.serialize(), Replaced(Invite(), first_line + second_line, ""));

  EXPECT_FALSE(editor.pop_via());
  EXPECT_EQ(editor.serialize(), Replaced(Invite(), first_line + second_line, ""));
}

TEST(MessageEditorTest, PopViaOnResponse) {
  Message message;
  ASSERT_TRUE(Parses(Response(), message));
  ASSERT_TRUE(message.is_response());
  MessageEditor editor(message);

  // RFC 3261 §16.7 step 3: the proxy removes its own (topmost) Via.
  ASSERT_TRUE(editor.pop_via());
  std::string out = editor.serialize();
  EXPECT_EQ(out,
            Replaced(Response(), "v: SIP/2.0/UDP proxy1.example.com;branch=z9hG4bKp1\r\n", ""));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_TRUE(edited.is_response());
  EXPECT_EQ(edited.status_code, 200);
  ASSERT_EQ(edited.via.size(), 2u);
  EXPECT_EQ(edited.via[0].host, "proxy2.example.com");

  // The next proxy pops the first value of the two-valued line: the comma and blanks go too.
  ASSERT_TRUE(editor.pop_via());
  out = editor.serialize();
  EXPECT_EQ(out, Crlf({
                     "SIP/2.0 200 OK",
                     "Via:SIP/2.0/UDP alice.example.com;branch=z9hG4bKa1;received=192.0.2.1",
                     "From: <sip:alice@example.com>;tag=1",
                     "To: <sip:bob@example.com>;tag=2",
                     "Call-ID: c1@example.com",
                     "CSeq: 1 INVITE",
                     "Content-Length: 0",
                     "",
                 }));
  ASSERT_TRUE(Parses(out, edited));
  ASSERT_EQ(edited.via.size(), 1u);
  EXPECT_EQ(edited.via[0].received, "192.0.2.1");
}

TEST(MessageEditorTest, PushViaGoesAboveTheFirstViaNewestFirst) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  editor.push_via("SIP/2.0/UDP p1.example.com;branch=z9hG4bKx1");
  editor.push_via("SIP/2.0/TLS p2.example.com;branch=z9hG4bKx2");
  const std::string out = editor.serialize();
  EXPECT_EQ(out, Replaced(Invite(), "Max-Forwards: 70\r\n",
                          "Max-Forwards: 70\r\n"
                          "Via: SIP/2.0/TLS p2.example.com;branch=z9hG4bKx2\r\n"
                          "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKx1\r\n"));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  ASSERT_EQ(edited.via.size(), 5u);
  EXPECT_EQ(edited.via[0].host, "p2.example.com");
  EXPECT_EQ(edited.via[1].host, "p1.example.com");
  EXPECT_EQ(edited.via[2].host, "a.example.com");
}

TEST(MessageEditorTest, PopViaRemovesThePushedViaFirst) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  editor.push_via("SIP/2.0/UDP p1.example.com;branch=z9hG4bKx1");
  editor.push_via("SIP/2.0/UDP p2.example.com;branch=z9hG4bKx2");
  ASSERT_TRUE(editor.pop_via());
  EXPECT_EQ(editor.serialize(),
            Replaced(Invite(), "Max-Forwards: 70\r\n",
                     "Max-Forwards: 70\r\nVia: SIP/2.0/UDP p1.example.com;branch=z9hG4bKx1\r\n"));
  ASSERT_TRUE(editor.pop_via());
  EXPECT_EQ(editor.serialize(), Invite());
  ASSERT_TRUE(editor.pop_via());  // now the received ones
  EXPECT_EQ(editor.serialize(),
            Replaced(Invite(), "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, ", ""));
}

TEST(MessageEditorTest, AddRecordRouteWithoutExistingGoesBeforeTheFirstHeader) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  editor.add_record_route("<sip:proxy.example.com;lr>");
  const std::string out = editor.serialize();
  EXPECT_EQ(out, Replaced(Invite(), "Max-Forwards: 70\r\n",
                          "Record-Route: <sip:proxy.example.com;lr>\r\nMax-Forwards: 70\r\n"));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  ASSERT_EQ(edited.record_route.size(), 1u);
  EXPECT_EQ(edited.record_route[0].uri.host, "proxy.example.com");
  EXPECT_TRUE(edited.record_route[0].uri.params.has("lr"));
}

TEST(MessageEditorTest, AddRecordRouteGoesAboveExistingOnes) {
  const std::string text = Crlf({
      "INVITE sip:bob@example.com SIP/2.0",
      "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1",
      "From: <sip:alice@example.com>;tag=1",
      "Record-Route: <sip:rr1.example.com;lr>",
      "To: <sip:bob@example.com>",
      "Record-Route: <sip:rr2.example.com;lr>",
      "Call-ID: c1@example.com",
      "CSeq: 1 INVITE",
      "Content-Length: 0",
      "",
  });
  Message message;
  ASSERT_TRUE(Parses(text, message));
  MessageEditor editor(message);
  editor.add_record_route("<sip:first.example.com;lr>");
  editor.add_record_route("<sip:second.example.com;lr>");
  const std::string out = editor.serialize();
  EXPECT_EQ(out, Replaced(text, "Record-Route: <sip:rr1",
                          "Record-Route: <sip:second.example.com;lr>\r\n"
                          "Record-Route: <sip:first.example.com;lr>\r\n"
                          "Record-Route: <sip:rr1"));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  ASSERT_EQ(edited.record_route.size(), 4u);
  EXPECT_EQ(edited.record_route[0].uri.host, "second.example.com");
  EXPECT_EQ(edited.record_route[2].uri.host, "rr1.example.com");
}

TEST(MessageEditorTest, PopRouteTakesValuesInOrderAcrossLines) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  const std::string lines =
      "Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>\r\n"
      "Route: <sip:p3.example.com;lr>\r\n";

  ASSERT_TRUE(editor.pop_route());
  std::string out = editor.serialize();
  EXPECT_EQ(out, Replaced(Invite(), lines,
                          "Route: <sip:p2.example.com;lr>\r\nRoute: <sip:p3.example.com;lr>\r\n"));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  ASSERT_EQ(edited.route.size(), 2u);
  EXPECT_EQ(edited.route[0].uri.host, "p2.example.com");

  ASSERT_TRUE(editor.pop_route());
  EXPECT_EQ(editor.serialize(), Replaced(Invite(), lines, "Route: <sip:p3.example.com;lr>\r\n"));
  ASSERT_TRUE(editor.pop_route());
  out = editor.serialize();
  EXPECT_EQ(out, Replaced(Invite(), lines, ""));
  EXPECT_FALSE(editor.pop_route());
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_TRUE(edited.route.empty());
  EXPECT_EQ(edited.via.size(), 3u);  // pop_route leaves Via alone
}

TEST(MessageEditorTest, PopRouteWithoutRouteReturnsFalse) {
  Message message;
  ASSERT_TRUE(Parses(Response(), message));
  MessageEditor editor(message);
  EXPECT_FALSE(editor.pop_route());
  EXPECT_EQ(editor.serialize(), Response());
}

TEST(MessageEditorTest, SetRequestUriReplacesOnlyTheUri) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  editor.set_request_uri("sip:bob@192.0.2.7:5080;transport=tcp");
  editor.set_request_uri("sip:bob@192.0.2.8");  // the last one wins
  const std::string out = editor.serialize();
  EXPECT_EQ(out, Replaced(Invite(), "INVITE sip:bob@example.com SIP/2.0",
                          "INVITE sip:bob@192.0.2.8 SIP/2.0"));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_EQ(edited.request_uri.text, "sip:bob@192.0.2.8");
  EXPECT_EQ(edited.method, Method::kInvite);
}

TEST(MessageEditorTest, SetRequestUriIsIgnoredForResponses) {
  Message message;
  ASSERT_TRUE(Parses(Response(), message));
  MessageEditor editor(message);
  editor.set_request_uri("sip:bob@192.0.2.8");
  EXPECT_EQ(editor.serialize(), Response());
}

TEST(MessageEditorTest, RemoveHeadersByIdTakesCompactAndFullForms) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  editor.remove_headers(HeaderId::kContact);
  const std::string out = editor.serialize();
  EXPECT_EQ(out, Replaced(Invite(),
                          "m: <sip:alice@192.0.2.1>\r\nContact: <sip:alice@192.0.2.9>\r\n", ""));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_TRUE(edited.contact.empty());
  EXPECT_EQ(edited.find(HeaderId::kContact), nullptr);
}

TEST(MessageEditorTest, RemoveHeadersByCompactName) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  editor.remove_headers("s");  // Subject, under either name
  std::string expected = Replaced(Invite(), "Subject: first\r\n", "");
  expected = Replaced(expected, "s: second\r\n", "");
  EXPECT_EQ(editor.serialize(), expected);
}

TEST(MessageEditorTest, RemoveHeadersByUnknownNameIgnoresCase) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  editor.remove_headers("X-custom");  // both lines, the folded one whole; not X-Customer
  std::string expected = Replaced(Invite(), "X-Custom: one\r\n", "");
  expected = Replaced(expected, "x-CUSTOM: two,\r\n folded\r\n", "");
  const std::string out = editor.serialize();
  EXPECT_EQ(out, expected);
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_EQ(edited.find("X-Custom"), nullptr);
  ASSERT_NE(edited.find("X-Customer"), nullptr);
}

TEST(MessageEditorTest, RemoveHeadersAfterPopRemovesTheWholeLineOnce) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  ASSERT_TRUE(editor.pop_via());  // part of the first Via line
  editor.remove_headers("v");
  editor.remove_headers(HeaderId::kVia);  // twice is harmless
  EXPECT_EQ(editor.serialize(),
            Replaced(Invite(),
                     "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP "
                     "b.example.com;branch=z9hG4bK2\r\nVia: SIP/2.0/UDP "
                     "c.example.com;branch=z9hG4bK3\r\n",
                     ""));
  EXPECT_FALSE(editor.pop_via());
}

TEST(MessageEditorTest, RemoveHeadersAlsoRemovesAddedLines) {
  Message message;
  ASSERT_TRUE(Parses(Response(), message));
  MessageEditor editor(message);
  editor.push_via("SIP/2.0/UDP gone.example.com;branch=z9hG4bKg");
  editor.add_header("X-Trace", "gone");
  editor.add_header("X-Other", "kept");
  editor.remove_headers(HeaderId::kVia);
  editor.remove_headers("x-trace");
  editor.push_via("SIP/2.0/UDP new.example.com;branch=z9hG4bKn");  // after the removal: stays
  std::string expected =
      Replaced(Response(),
               "v: SIP/2.0/UDP proxy1.example.com;branch=z9hG4bKp1\r\n"
               "Via:SIP/2.0/TCP proxy2.example.com;branch=z9hG4bKp2 ,  SIP/2.0/UDP "
               "alice.example.com;branch=z9hG4bKa1;received=192.0.2.1\r\n",
               "Via: SIP/2.0/UDP new.example.com;branch=z9hG4bKn\r\n");
  expected = Replaced(expected, "Content-Length: 0\r\n", "Content-Length: 0\r\nX-Other: kept\r\n");
  const std::string out = editor.serialize();
  EXPECT_EQ(out, expected);
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  ASSERT_EQ(edited.via.size(), 1u);
  EXPECT_EQ(edited.via[0].host, "new.example.com");
}

TEST(MessageEditorTest, SetHeaderValueKeepsTheNameAsWritten) {
  Message message;
  ASSERT_TRUE(Parses(Wsinv(), message));
  MessageEditor editor(message);
  editor.set_header_value(HeaderId::kMaxForwards, "10");
  editor.set_header_value(HeaderId::kMaxForwards, "67");  // the last one wins
  editor.set_header_value(HeaderId::kSubject, "hello");   // "s :" had an empty value
  std::string expected = Replaced(Wsinv(), "MaX-fOrWaRdS: 0068\r\n", "MaX-fOrWaRdS: 67\r\n");
  expected = Replaced(expected, "s :\r\n", "s :hello\r\n");
  const std::string out = editor.serialize();
  EXPECT_EQ(out, expected);
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_EQ(edited.max_forwards, 67);
  ASSERT_NE(edited.find(HeaderId::kSubject), nullptr);
  EXPECT_EQ(edited.find(HeaderId::kSubject)->value, "hello");
}

TEST(MessageEditorTest, SetHeaderValueAddsAnAbsentHeaderOnce) {
  Message message;
  ASSERT_TRUE(Parses(Response(), message));
  MessageEditor editor(message);
  editor.set_header_value(HeaderId::kMaxForwards, "70");
  editor.set_header_value(HeaderId::kMaxForwards, "69");
  const std::string out = editor.serialize();
  EXPECT_EQ(out, Replaced(Response(), "Content-Length: 0\r\n",
                          "Content-Length: 0\r\nMax-Forwards: 69\r\n"));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_EQ(edited.max_forwards, 69);
}

TEST(MessageEditorTest, SetHeaderValueAfterRemoveAddsTheHeader) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  editor.remove_headers(HeaderId::kMaxForwards);
  editor.set_header_value(HeaderId::kMaxForwards, "5");
  EXPECT_EQ(editor.serialize(), Replaced(Replaced(Invite(), "Max-Forwards: 70\r\n", ""), "l: 4\r\n",
                                         "l: 4\r\nMax-Forwards: 5\r\n"));
}

TEST(MessageEditorTest, AddHeaderAppendsInOrder) {
  Message message;
  ASSERT_TRUE(Parses(Wsinv(), message));
  MessageEditor editor(message);
  editor.add_header("X-First", "1");
  editor.add_header("Supported", "path, outbound");
  const std::string out = editor.serialize();
  EXPECT_EQ(out, Replaced(Wsinv(), "q = 0.33\r\n\r\n",
                          "q = 0.33\r\nX-First: 1\r\nSupported: path, outbound\r\n\r\n"));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  ASSERT_EQ(edited.supported.size(), 2u);
  EXPECT_EQ(edited.supported[1], "outbound");
  EXPECT_EQ(edited.headers.back().name, "Supported");
}

TEST(MessageEditorTest, SetBodyRewritesContentLength) {
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  editor.set_body("a longer body");
  editor.set_body("v=0\r\ns=-\r\n");  // the last one wins
  const std::string out = editor.serialize();
  EXPECT_EQ(out, Replaced(Invite(), "l: 4\r\n\r\nabcd", "l: 10\r\n\r\nv=0\r\ns=-\r\n"));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_EQ(edited.content_length, 10);
  EXPECT_EQ(edited.body, "v=0\r\ns=-\r\n");
}

TEST(MessageEditorTest, SetBodyEmptiesTheBody) {
  Message message;
  ASSERT_TRUE(Parses(Wsinv(), message));
  MessageEditor editor(message);
  editor.set_body("");
  const std::string out = editor.serialize();
  std::string expected = Replaced(Wsinv(), "Content-Length   : 150", "Content-Length   : 0");
  expected.resize(expected.size() - 150);
  EXPECT_EQ(out, expected);
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_EQ(edited.content_length, 0);
  EXPECT_TRUE(edited.body.empty());
}

TEST(MessageEditorTest, SetBodyAddsContentLengthWhenAbsent) {
  const std::string text = Crlf({
      "MESSAGE sip:bob@example.com SIP/2.0",
      "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1",
      "From: <sip:alice@example.com>;tag=1",
      "To: <sip:bob@example.com>",
      "Call-ID: c1@example.com",
      "CSeq: 1 MESSAGE",
      "",
  });
  Message message;
  ASSERT_TRUE(Parses(text, message));
  MessageEditor editor(message);
  editor.set_body("hi");
  editor.set_body("hello");  // rewrites the line it added, adds no second one
  const std::string out = editor.serialize();
  EXPECT_EQ(out, Replaced(text, "CSeq: 1 MESSAGE\r\n\r\n",
                          "CSeq: 1 MESSAGE\r\nContent-Length: 5\r\n\r\nhello"));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_EQ(edited.content_length, 5);
  EXPECT_EQ(edited.body, "hello");
}

TEST(MessageEditorTest, ProxyForwardingComposesAllEdits) {
  // RFC 3261 §16.6 on one request: Request-URI from the Route, Max-Forwards, Record-Route,
  // own Via on top; then the proxy's view of the same request once more after re-parsing.
  Message message;
  ASSERT_TRUE(Parses(Invite(), message));
  MessageEditor editor(message);
  ASSERT_TRUE(editor.pop_route());
  editor.set_request_uri("sip:bob@192.0.2.20");
  editor.set_header_value(HeaderId::kMaxForwards, std::to_string(message.max_forwards - 1));
  editor.add_record_route("<sip:proxy.example.com;lr>");
  editor.push_via("SIP/2.0/UDP proxy.example.com;branch=z9hG4bKfwd");
  editor.remove_headers("X-Customer");
  editor.add_header("X-Forwarded", "yes");
  editor.set_body("");
  const std::string out = editor.serialize();
  EXPECT_EQ(out, Crlf({
                     "INVITE sip:bob@192.0.2.20 SIP/2.0",
                     "Record-Route: <sip:proxy.example.com;lr>",
                     "Max-Forwards: 69",
                     "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKfwd",
                     "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP "
                     "b.example.com;branch=z9hG4bK2",
                     "Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3",
                     "Route: <sip:p2.example.com;lr>",
                     "Route: <sip:p3.example.com;lr>",
                     "From: <sip:alice@example.com>;tag=1",
                     "To: <sip:bob@example.com>",
                     "Call-ID: c1@example.com",
                     "CSeq: 1 INVITE",
                     "Subject: first",
                     "X-Custom: one",
                     "s: second",
                     "x-CUSTOM: two,",
                     " folded",
                     "m: <sip:alice@192.0.2.1>",
                     "Contact: <sip:alice@192.0.2.9>",
                     "l: 0",
                     "X-Forwarded: yes",
                     "",
                 }));
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  EXPECT_EQ(edited.max_forwards, 69);
  EXPECT_EQ(edited.via.size(), 4u);
  EXPECT_EQ(edited.route.size(), 2u);
  EXPECT_EQ(edited.record_route.size(), 1u);
  EXPECT_EQ(edited.content_length, 0);
}

TEST(MessageEditorTest, LeadingKeepAliveCrlfsAreNotPartOfTheMessage) {
  // RFC 3261 §7.5: CRLFs before the start line are ignored; raw (and the output) starts at it.
  const std::string input = "\r\n\r\n" + Response();
  Message message;
  ASSERT_TRUE(Parses(input, message));
  MessageEditor editor(message);
  ASSERT_TRUE(editor.pop_via());
  EXPECT_EQ(editor.serialize(),
            Replaced(Response(), "v: SIP/2.0/UDP proxy1.example.com;branch=z9hG4bKp1\r\n", ""));
}

TEST(MessageEditorTest, BareLfLinesAreEditedAsWritten) {
  // A lax sender's LF-only lines: removed lines take their LF with them; added lines use CRLF.
  const std::string text =
      "OPTIONS sip:bob@example.com SIP/2.0\n"
      "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1,SIP/2.0/UDP b.example.com;branch=z9hG4bK2\n"
      "From: <sip:alice@example.com>;tag=1\n"
      "To: <sip:bob@example.com>\n"
      "Call-ID: lf@example.com\n"
      "CSeq: 2 OPTIONS\n"
      "Subject: lf\n"
      "\n";
  Message message;
  if (!parse(text, message)) GTEST_SKIP() << "the parser does not accept LF-only lines";
  MessageEditor editor(message);
  ASSERT_TRUE(editor.pop_via());
  editor.remove_headers(HeaderId::kSubject);
  editor.add_header("X-Lf", "1");
  const std::string out = editor.serialize();
  EXPECT_EQ(out,
            "OPTIONS sip:bob@example.com SIP/2.0\n"
            "Via: SIP/2.0/UDP b.example.com;branch=z9hG4bK2\n"
            "From: <sip:alice@example.com>;tag=1\n"
            "To: <sip:bob@example.com>\n"
            "Call-ID: lf@example.com\n"
            "CSeq: 2 OPTIONS\n"
            "X-Lf: 1\r\n"
            "\n");
  Message edited;
  ASSERT_TRUE(Parses(out, edited));
  ASSERT_EQ(edited.via.size(), 1u);
  EXPECT_EQ(edited.via[0].host, "b.example.com");
}

// Every ordered triple of edits, on messages with multi-valued and folded lines: the output
// always parses, and shows exactly the Vias and Routes the pushes and pops leave.
TEST(MessageEditorTest, AnySequenceOfEditsComposes) {
  struct Counts {
    std::size_t via;
    std::size_t route;
    bool pushed_last = false;  // the topmost Via is the one push_via added
  };
  struct Op {
    std::string_view name;
    std::function<void(MessageEditor&, Counts&)> apply;
  };
  const std::vector<Op> ops = {
      {"pop_via",
       [](MessageEditor& e, Counts& c) {
         EXPECT_EQ(e.pop_via(), c.via > 0);
         if (c.via > 0) --c.via;
         c.pushed_last = false;
       }},
      {"push_via",
       [](MessageEditor& e, Counts& c) {
         e.push_via("SIP/2.0/UDP pushed.example.com;branch=z9hG4bKpush");
         ++c.via;
         c.pushed_last = true;
       }},
      {"pop_route",
       [](MessageEditor& e, Counts& c) {
         EXPECT_EQ(e.pop_route(), c.route > 0);
         if (c.route > 0) --c.route;
       }},
      {"add_record_route",
       [](MessageEditor& e, Counts&) { e.add_record_route("<sip:rr.example.com;lr>"); }},
      {"set_request_uri", [](MessageEditor& e, Counts&) { e.set_request_uri("sip:x@192.0.2.9"); }},
      {"remove_subject", [](MessageEditor& e, Counts&) { e.remove_headers("s"); }},
      {"remove_unknown", [](MessageEditor& e, Counts&) { e.remove_headers("X-Custom"); }},
      {"remove_contact", [](MessageEditor& e, Counts&) { e.remove_headers(HeaderId::kContact); }},
      {"set_max_forwards",
       [](MessageEditor& e, Counts&) { e.set_header_value(HeaderId::kMaxForwards, "42"); }},
      {"set_subject",
       [](MessageEditor& e, Counts&) { e.set_header_value(HeaderId::kSubject, "x"); }},
      {"add_header", [](MessageEditor& e, Counts&) { e.add_header("X-Custom", "added"); }},
      {"set_body", [](MessageEditor& e, Counts&) { e.set_body("new body"); }},
  };
  for (const std::string* text : {&Wsinv(), &Invite(), &Response()}) {
    Message message;
    ASSERT_TRUE(Parses(*text, message));
    for (const Op& a : ops) {
      for (const Op& b : ops) {
        for (const Op& c : ops) {
          SCOPED_TRACE(std::string(a.name) + ", " + std::string(b.name) + ", " +
                       std::string(c.name) + " on:\n" + *text);
          MessageEditor editor(message);
          Counts counts{message.via.size(), message.route.size()};
          a.apply(editor, counts);
          b.apply(editor, counts);
          c.apply(editor, counts);
          const std::string out = editor.serialize();
          Message edited;
          if (counts.via == 0) {
            EXPECT_FALSE(parse(out, edited));  // Via is mandatory
            continue;
          }
          ASSERT_TRUE(Parses(out, edited));
          ASSERT_EQ(edited.via.size(), counts.via);
          EXPECT_EQ(edited.route.size(), counts.route);
          if (counts.pushed_last) {
            EXPECT_EQ(edited.via[0].host, "pushed.example.com");
          }
          // What the untouched top of the stack was is still the top after the edits.
          if (!counts.pushed_last && counts.via == message.via.size()) {
            EXPECT_EQ(edited.via[0].text, message.via[0].text);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace sip
