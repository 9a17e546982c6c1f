#include "sip/uri.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "sip/params.h"
#include "sip/result.h"

namespace sip {
namespace {

using namespace std::string_view_literals;

// Copies `text` into a heap block of exactly its size, kept alive until the process ends, so
// AddressSanitizer reports any read past the end of the view, and views into it stay valid.
std::string_view exact(std::string_view text) {
  static std::vector<std::unique_ptr<char[]>> keep;
  keep.push_back(std::make_unique<char[]>(text.size()));
  if (!text.empty()) std::memcpy(keep.back().get(), text.data(), text.size());
  return {keep.back().get(), text.size()};
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void expect_views_inside(const Uri& uri, std::string_view input) {
  for (std::string_view v : {uri.text, uri.scheme_text, uri.user, uri.password, uri.host,
                             uri.params.raw(), uri.headers, uri.opaque}) {
    EXPECT_TRUE(inside(v, input)) << input;
  }
  for (const Param& p : uri.params) {
    EXPECT_TRUE(inside(p.name, input)) << input;
    EXPECT_TRUE(inside(p.value, input)) << input;
  }
}

Uri parse_ok(std::string_view text) {
  const std::string_view input = exact(text);
  Result<Uri> result = parse_uri(input);
  EXPECT_TRUE(result.ok()) << text << ": " << (result.ok() ? "" : result.error().describe());
  if (!result.ok()) return Uri{};
  expect_views_inside(*result, input);
  EXPECT_EQ(result->text.data(), input.data());
  EXPECT_EQ(result->text.size(), input.size());
  return *result;
}

// Checks that `text` is rejected with `code` and a message containing `what`, and that the
// error's `where` lies inside the input.
void expect_reject(std::string_view text, ErrorCode code, std::string_view what,
                   std::size_t max_length = 4096) {
  SCOPED_TRACE(std::string(text.substr(0, 80)));
  const std::string_view input = exact(text);
  Result<Uri> result = parse_uri(input, max_length);
  ASSERT_FALSE(result.ok()) << "accepted";
  EXPECT_EQ(result.error().code, code) << result.error().describe();
  ASSERT_NE(result.error().what, nullptr);
  EXPECT_NE(std::string_view(result.error().what).find(what), std::string_view::npos)
      << result.error().describe();
  EXPECT_TRUE(inside(result.error().where, input));
}

void expect_bad_uri(std::string_view text, std::string_view what) {
  expect_reject(text, ErrorCode::kBadUri, what);
}

// ---------------------------------------------------------------------------------------------
// Components

TEST(ParseUriTest, MinimalSipUri) {
  const Uri u = parse_ok("sip:alice@atlanta.com");
  EXPECT_EQ(u.scheme, Scheme::kSip);
  EXPECT_EQ(u.scheme_text, "sip");
  EXPECT_TRUE(u.has_user);
  EXPECT_EQ(u.user, "alice");
  EXPECT_FALSE(u.has_password);
  EXPECT_EQ(u.host, "atlanta.com");
  EXPECT_EQ(u.host_kind, HostKind::kName);
  EXPECT_FALSE(u.has_port);
  EXPECT_TRUE(u.params.empty());
  EXPECT_FALSE(u.has_headers);
  EXPECT_TRUE(u.opaque.empty());
}

TEST(ParseUriTest, EveryComponent) {
  const Uri u = parse_ok(
      "sips:alice:secret@Atlanta.COM:5061;transport=tcp;lr;maddr=[::1]?Subject=hi%20there&"
      "Priority=urgent");
  EXPECT_EQ(u.scheme, Scheme::kSips);
  EXPECT_EQ(u.user, "alice");
  EXPECT_TRUE(u.has_password);
  EXPECT_EQ(u.password, "secret");
  EXPECT_EQ(u.host, "Atlanta.COM");
  EXPECT_TRUE(u.has_port);
  EXPECT_EQ(u.port, 5061);
  EXPECT_EQ(u.params.raw(), ";transport=tcp;lr;maddr=[::1]");
  EXPECT_EQ(u.param("transport"), "tcp");
  EXPECT_EQ(u.param("LR"), "");
  EXPECT_EQ(u.param("maddr"), "[::1]");
  EXPECT_FALSE(u.param("ttl").has_value());
  EXPECT_TRUE(u.has_headers);
  EXPECT_EQ(u.headers, "Subject=hi%20there&Priority=urgent");
}

TEST(ParseUriTest, SchemeIsCaseInsensitive) {
  Uri u = parse_ok("SIP:user@host");
  EXPECT_EQ(u.scheme, Scheme::kSip);
  EXPECT_EQ(u.scheme_text, "SIP");
  EXPECT_EQ(parse_ok("SiPs:host").scheme, Scheme::kSips);
  EXPECT_EQ(parse_ok("TEL:+1234").scheme, Scheme::kTel);
  EXPECT_EQ(parse_ok("sipx:foo").scheme, Scheme::kOther);
  EXPECT_EQ(parse_ok("si:foo").scheme, Scheme::kOther);
}

TEST(ParseUriTest, NoUserinfo) {
  const Uri u = parse_ok("sip:registrar.example.com");
  EXPECT_FALSE(u.has_user);
  EXPECT_TRUE(u.user.empty());
  EXPECT_EQ(u.host, "registrar.example.com");
  const Uri v = parse_ok("sip:example.com:5060;lr");
  EXPECT_FALSE(v.has_user);
  EXPECT_EQ(v.port, 5060);
  EXPECT_TRUE(v.params.has("lr"));
}

TEST(ParseUriTest, EmptyPasswordIsPresent) {
  const Uri u = parse_ok("sip:alice:@atlanta.com");
  EXPECT_EQ(u.user, "alice");
  EXPECT_TRUE(u.has_password);
  EXPECT_EQ(u.password, "");
}

TEST(ParseUriTest, TelephoneSubscriberUser) {
  const Uri u = parse_ok("sip:+1-212-555-1212:1234@gateway.com;user=phone");
  EXPECT_EQ(u.user, "+1-212-555-1212");
  EXPECT_EQ(u.password, "1234");
  EXPECT_EQ(u.param("user"), "phone");
}

TEST(ParseUriTest, HostForms) {
  EXPECT_EQ(parse_ok("sip:a").host_kind, HostKind::kName);
  EXPECT_EQ(parse_ok("sip:example.com.").host, "example.com.");  // trailing dot allowed
  EXPECT_EQ(parse_ok("sip:3com.com").host_kind, HostKind::kName);
  EXPECT_EQ(parse_ok("sip:a-b--c.x-y.Z9").host_kind, HostKind::kName);
  const Uri v4 = parse_ok("sip:bob@192.0.2.4:5060");
  EXPECT_EQ(v4.host, "192.0.2.4");
  EXPECT_EQ(v4.host_kind, HostKind::kIPv4);
  EXPECT_EQ(parse_ok("sip:0.0.0.0").host_kind, HostKind::kIPv4);
  EXPECT_EQ(parse_ok("sip:255.255.255.255").host_kind, HostKind::kIPv4);
  EXPECT_EQ(parse_ok("sip:010.001.0.1").host_kind, HostKind::kIPv4);  // 1*3DIGIT
}

TEST(ParseUriTest, IPv6References) {
  const Uri u = parse_ok("sip:alice@[2001:db8::10]:5070;transport=udp");
  EXPECT_EQ(u.host, "2001:db8::10");  // brackets stripped
  EXPECT_EQ(u.host_kind, HostKind::kIPv6);
  EXPECT_EQ(u.port, 5070);
  EXPECT_EQ(u.param("transport"), "udp");

  for (std::string_view host : {
           "[::]",
           "[::1]",
           "[1::]",
           "[1:2:3:4:5:6:7:8]",
           "[1:2:3:4:5:6:7::]",
           "[::2:3:4:5:6:7:8]",
           "[2001:DB8:0:0:8:800:200C:417A]",
           "[FF01::101]",
           "[::ffff:192.0.2.128]",
           "[::192.0.2.128]",
           "[1:2:3:4:5:6:1.2.3.4]",
           "[1::5:1.2.3.4]",
           "[abcd:ef01:2345:6789:abcd:ef01:2345:6789]",
           "[0:0:0:0:0:0:0:0]",
       }) {
    SCOPED_TRACE(host);
    const Uri v = parse_ok("sip:" + std::string(host));
    EXPECT_EQ(v.host_kind, HostKind::kIPv6);
    EXPECT_EQ(v.host, host.substr(1, host.size() - 2));
  }
}

TEST(ParseUriTest, BadIPv6References) {
  for (std::string_view host : {
           "[]",
           "[:]",
           "[:::]",
           "[1:2:3:4:5:6:7:8:9]",
           "[1:2:3:4:5:6:7]",
           "[1::2::3]",
           "[12345::]",
           "[1:2:3:4:5:6:7:8::]",
           "[:1::]",
           "[1:]",
           "[::1:]",
           "[g::1]",
           "[::1.2.3]",
           "[::1.2.3.256]",
           "[1.2.3.4]",
           "[::1.2.3.4:1]",
           "[1:2:3:4:5:6:7:1.2.3.4]",
           "[fe80::1%25eth0]",
           "[::1 ]",
           "[ ::1]",
           "[::01234]",
           "[::1.2.3.4.5]",
       }) {
    expect_bad_uri("sip:" + std::string(host), "IPv6");
  }
  expect_bad_uri("sip:[::1", "unterminated IPv6");
  expect_bad_uri("sip:user@[::1;lr", "unterminated IPv6");
  expect_bad_uri("sip:[::1]x", "unexpected character after URI host");
  expect_bad_uri("sip:[::1]]", "unexpected character after URI host");
  expect_bad_uri("sip:[::1]:", "URI port is empty");
}

TEST(ParseUriTest, Ports) {
  EXPECT_EQ(parse_ok("sip:h:0").port, 0);
  EXPECT_EQ(parse_ok("sip:h:65535").port, 65535);
  EXPECT_EQ(parse_ok("sip:h:05060").port, 5060);
  EXPECT_EQ(parse_ok("sip:h:0000000000000000000001").port, 1);
  EXPECT_TRUE(parse_ok("sip:h:0").has_port);
  expect_bad_uri("sip:h:65536", "URI port out of range");
  expect_bad_uri("sip:h:99999", "URI port out of range");
  expect_bad_uri("sip:h:18446744073709551617", "URI port out of range");
  expect_bad_uri("sip:h:", "URI port is empty");
  expect_bad_uri("sip:u@h:;lr", "URI port is empty");
  expect_bad_uri("sip:h:50x0", "invalid character in URI port");
  expect_bad_uri("sip:h:-1", "invalid character in URI port");
  expect_bad_uri("sip:h:5060:5061", "invalid character in URI port");
  expect_bad_uri("sip:h:+5060", "invalid character in URI port");
}

TEST(ParseUriTest, PortErrorPointsAtTheDigits) {
  const std::string_view input = exact("sip:alice@atlanta.com:70000;lr");
  Result<Uri> r = parse_uri(input);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().where, "70000");
  EXPECT_EQ(r.error().describe(), R"(bad URI: URI port out of range (near "70000"))");
}

// RFC 4475 §3.1.1.3 (esc01): components are kept as written, escapes and all.
TEST(ParseUriTest, EscapesAreKeptAsWritten) {
  const Uri ruri = parse_ok("sip:sips%3Auser%40example.com@example.net");
  EXPECT_EQ(ruri.user, "sips%3Auser%40example.com");
  EXPECT_EQ(ruri.host, "example.net");
  EXPECT_EQ(unescape(ruri.user), "sips:user@example.com");

  EXPECT_EQ(parse_ok("sip:%75se%72@example.com").user, "%75se%72");
  EXPECT_EQ(parse_ok("sip:I%20have%20spaces@example.net").user, "I%20have%20spaces");

  const Uri contact = parse_ok("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
  EXPECT_EQ(contact.user, "cal%6Cer");
  EXPECT_EQ(contact.params.raw(), ";%6C%72;n%61me=v%61lue%25%34%31");
  auto it = contact.params.begin();
  ASSERT_NE(it, contact.params.end());
  EXPECT_EQ(it->name, "%6C%72");
  EXPECT_FALSE(it->has_value);
  ++it;
  ASSERT_NE(it, contact.params.end());
  EXPECT_EQ(unescape(it->name), "name");
  EXPECT_EQ(unescape(it->value), "value%41");  // one level of unescaping only

  EXPECT_EQ(parse_ok("sip:u:p%41ss@h").password, "p%41ss");
  EXPECT_EQ(parse_ok("sip:h?Route=%3Csip:x%3E").headers, "Route=%3Csip:x%3E");
}

// RFC 4475 §3.1.1.4 (escnull): %00 is a valid escape and truncates nothing.
TEST(ParseUriTest, EscapedNul) {
  const Uri u = parse_ok("sip:null-%00-null@example.com");
  EXPECT_EQ(u.user, "null-%00-null");
  EXPECT_EQ(u.host, "example.com");
  const std::string user = unescape(u.user);
  EXPECT_EQ(user.size(), 11U);
  EXPECT_EQ(user, "null-\0-null"sv);
  EXPECT_EQ(unescape(parse_ok("sip:%00@host5.example.com").user), "\0"sv);
  EXPECT_EQ(unescape(parse_ok("sip:%00%00@host5.example.com").user), "\0\0"sv);
  EXPECT_FALSE(
      uri_equal(parse_ok("sip:%00@host5.example.com"), parse_ok("sip:%00%00@host5.example.com")));
  EXPECT_FALSE(uri_equal(parse_ok("sip:%00@h"), parse_ok("sip:%01@h")));
}

// RFC 4475 §3.1.1.9 (semiuri): ';' belongs to the user part when it precedes the '@'.
TEST(ParseUriTest, SemicolonInUserPart) {
  const Uri u = parse_ok("sip:user;par=u%40example.net@example.com");
  EXPECT_EQ(u.user, "user;par=u%40example.net");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_TRUE(u.params.empty());
  EXPECT_FALSE(u.has_headers);

  const Uri v = parse_ok("sip:a;b@c;d");
  EXPECT_EQ(v.user, "a;b");
  EXPECT_EQ(v.host, "c");
  EXPECT_EQ(v.params.raw(), ";d");
}

// RFC 4475 §3.1.1.2 (intmeth): every user-unreserved and mark character, '?' included.
TEST(ParseUriTest, UnusualButValidUserinfo) {
  const Uri u = parse_ok(
      "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
      "(doesn't-it)@example.com");
  EXPECT_EQ(u.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
  EXPECT_EQ(u.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_FALSE(u.has_headers);
  const Uri to = parse_ok("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com");
  EXPECT_FALSE(to.has_password);
}

// RFC 4475 §3.1.2.11 (escruri), §3.3.14 (regescrt): escaped headers are syntax, nothing more.
TEST(ParseUriTest, Headers) {
  const Uri u = parse_ok("sip:user@example.com?Route=%3Csip:example.com%3E");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_TRUE(u.has_headers);
  EXPECT_EQ(u.headers, "Route=%3Csip:example.com%3E");
  EXPECT_EQ(parse_ok("sip:h?a=").headers, "a=");  // hvalue may be empty
  EXPECT_EQ(parse_ok("sip:h?a=b&c=d?e/[]:+$").headers, "a=b&c=d?e/[]:+$");
  EXPECT_EQ(parse_ok("sip:h;lr?a=b").params.raw(), ";lr");
}

TEST(ParseUriTest, ParameterCharacters) {
  const Uri u = parse_ok("sip:h;a=[]/:&+$-_.!~*'();%41=%42");
  EXPECT_EQ(u.param("a"), "[]/:&+$-_.!~*'()");
  EXPECT_EQ(u.param("%41"), "%42");
  // An '@' after the host would be invalid, so by the grammar the text before it is userinfo.
  const Uri v = parse_ok("sip:h;x=a@b");
  EXPECT_EQ(v.user, "h;x=a");
  EXPECT_EQ(v.host, "b");
}

// ---------------------------------------------------------------------------------------------
// tel (RFC 3966)

TEST(ParseUriTest, TelGlobalNumber) {
  const Uri u = parse_ok("tel:+1-201-555-0123");
  EXPECT_EQ(u.scheme, Scheme::kTel);
  EXPECT_TRUE(u.has_user);
  EXPECT_EQ(u.user, "+1-201-555-0123");
  EXPECT_TRUE(u.host.empty());
  EXPECT_EQ(u.host_kind, HostKind::kNone);
  EXPECT_TRUE(u.params.empty());
  EXPECT_EQ(parse_ok("tel:+1.(201).555.0123").user, "+1.(201).555.0123");
  EXPECT_EQ(parse_ok("tel:+4").user, "+4");
}

TEST(ParseUriTest, TelParameters) {
  const Uri u = parse_ok("tel:+1-201-555-0123;ext=1234;isub=a:b/c?d@e;foo=bar%20;Flag");
  EXPECT_EQ(u.user, "+1-201-555-0123");
  EXPECT_EQ(u.params.raw(), ";ext=1234;isub=a:b/c?d@e;foo=bar%20;Flag");
  EXPECT_EQ(u.param("ext"), "1234");
  EXPECT_EQ(u.param("isub"), "a:b/c?d@e");
  EXPECT_EQ(u.param("foo"), "bar%20");
  EXPECT_TRUE(u.params.has("flag"));
}

TEST(ParseUriTest, TelLocalNumber) {
  const Uri u = parse_ok("tel:7042;phone-context=example.com");
  EXPECT_EQ(u.user, "7042");
  EXPECT_EQ(u.param("phone-context"), "example.com");
  EXPECT_EQ(parse_ok("tel:863-1234;phone-context=+1-914-555").user, "863-1234");
  EXPECT_EQ(parse_ok("tel:*67#;PHONE-CONTEXT=+1").user, "*67#");
  EXPECT_EQ(parse_ok("tel:ABCD;ext=1;phone-context=a.example").user, "ABCD");
}

TEST(ParseUriTest, TelRejections) {
  expect_bad_uri("tel:", "tel URI number is empty");
  expect_bad_uri("tel:;ext=1", "tel URI number is empty");
  expect_bad_uri("tel:+", "tel URI number has no digits");
  expect_bad_uri("tel:+-.()", "tel URI number has no digits");
  expect_bad_uri("tel:+1-x", "invalid character in tel URI number");
  expect_bad_uri("tel:+1 2", "whitespace in URI");
  expect_bad_uri("tel:+12A", "invalid character in tel URI number");  // no hex in global
  expect_bad_uri("tel:%31", "invalid character in tel URI number");
  expect_bad_uri("tel:1234", "tel URI local number lacks phone-context");
  expect_bad_uri("tel:1234;ext=5", "tel URI local number lacks phone-context");
  expect_bad_uri("tel:+1;ext=", "empty tel URI parameter value");
  expect_bad_uri("tel:+1;ext=a", "bad tel URI extension");
  expect_bad_uri("tel:+1;=x", "empty tel URI parameter name");
  expect_bad_uri("tel:+1;", "empty tel URI parameter name");
  expect_bad_uri("tel:+1;;a", "empty tel URI parameter name");
  expect_bad_uri("tel:+1;a_b=1", "invalid character in tel URI parameter name");
  expect_bad_uri("tel:+1;a=b=c", "invalid character in tel URI parameter");
  expect_bad_uri("tel:+1;a=%zz", "bad %-escape in tel URI parameter");
  expect_bad_uri("tel:1;phone-context=", "empty tel URI parameter value");
  expect_bad_uri("tel:1;phone-context=+", "bad tel URI phone-context");
  expect_bad_uri("tel:1;phone-context=ex_ample.com", "bad tel URI phone-context");
  expect_bad_uri("tel:1;phone-context", "bad tel URI phone-context");
  expect_bad_uri("tel:+1;a=<b>", "angle bracket in URI");
}

// ---------------------------------------------------------------------------------------------
// Other schemes (RFC 4475 §3.3.2 unkscm, §3.3.3 novelsc, §3.3.4 unksm2)

TEST(ParseUriTest, OtherSchemesAreOpaque) {
  struct Case {
    std::string_view text, scheme, opaque;
  };
  for (const Case& c : {
           Case{"soap.beep://192.0.2.103:3002", "soap.beep", "//192.0.2.103:3002"},
           Case{"nobodyKnowsThisScheme:totallyopaquecontent", "nobodyKnowsThisScheme",
                "totallyopaquecontent"},
           Case{"http://www.example.com", "http", "//www.example.com"},
           Case{"http://x", "http", "//x"},
           Case{"mailto:a@b", "mailto", "a@b"},
           Case{"isbn:2983792873", "isbn", "2983792873"},
           Case{"name:John_Smith", "name", "John_Smith"},
           Case{"urn:service:sos", "urn", "service:sos"},
           Case{"a+b-c.d9:x\"{}|^`", "a+b-c.d9", "x\"{}|^`"},
       }) {
    SCOPED_TRACE(c.text);
    const Uri u = parse_ok(c.text);
    EXPECT_EQ(u.scheme, Scheme::kOther);
    EXPECT_EQ(u.scheme_text, c.scheme);
    EXPECT_EQ(u.opaque, c.opaque);
    EXPECT_FALSE(u.has_user);
    EXPECT_TRUE(u.host.empty());
    EXPECT_EQ(u.host_kind, HostKind::kNone);
    EXPECT_TRUE(u.params.empty());
    EXPECT_FALSE(u.has_headers);
  }
}

TEST(ParseUriTest, OtherSchemeRejections) {
  expect_bad_uri("http:", "URI is empty after its scheme");
  expect_bad_uri("http:x y", "whitespace in URI");
  expect_bad_uri("http:x\ty", "whitespace in URI");
  expect_bad_uri("http:x\r\n", "whitespace in URI");
  expect_bad_uri("http:x\x7f", "control character in URI");
  expect_bad_uri("http:x\0y"sv, "control character in URI");
  expect_bad_uri("http:<x>", "angle bracket in URI");
  expect_bad_uri("http:caf\xC3\xA9", "non-ASCII byte in URI");
  expect_bad_uri("1http:x", "URI scheme does not start with a letter");
  expect_bad_uri("+x:y", "URI scheme does not start with a letter");
  expect_bad_uri("ht_tp:x", "invalid character in URI scheme");
  expect_bad_uri("ht tp:x", "whitespace in URI");
}

// ---------------------------------------------------------------------------------------------
// Rejections

TEST(ParseUriTest, SchemeRejections) {
  expect_bad_uri("", "URI has no scheme");
  expect_bad_uri("sip", "URI has no scheme");
  expect_bad_uri("alice@atlanta.com", "invalid character in URI scheme");
  expect_bad_uri("atlanta.com", "URI has no scheme");
  expect_bad_uri(":alice@atlanta.com", "URI scheme is empty");
  expect_bad_uri(" sip:alice@atlanta.com", "whitespace in URI");
  expect_bad_uri("\x01sip:a", "control character in URI");
}

// RFC 4475 §3.1.2.7 (ltgtruri) and §3.1.2.8 (lwsruri).
TEST(ParseUriTest, AngleBracketsAndWhitespace) {
  expect_bad_uri("<sip:user@example.com>", "angle bracket in URI");
  expect_bad_uri("sip:user@example.com>", "angle bracket in URI");
  expect_bad_uri("sip:<user@example.com", "angle bracket in URI");
  expect_bad_uri("sip:user@example.com;lr>", "angle bracket in URI");
  expect_bad_uri("sip:user@example.com?a=<b>", "angle bracket in URI");
  expect_bad_uri("sip:user@example.com; lr", "whitespace in URI");
  expect_bad_uri("sip:user@example.com ", "whitespace in URI");
  expect_bad_uri("sip:user@example. com", "whitespace in URI");
  expect_bad_uri("sip:us er@example.com", "whitespace in URI");
  expect_bad_uri("sip:user@example.com:50 60", "whitespace in URI");
  expect_bad_uri("sip:user@exa\tmple.com", "whitespace in URI");
  expect_bad_uri("sip:user@example.com\r\n", "whitespace in URI");
  expect_bad_uri("sip:user@example.com?a=b c", "whitespace in URI");
  expect_bad_uri("sip:us\x01er@example.com", "control character in URI");
  expect_bad_uri("sip:user\0x@example.com"sv, "control character in URI");
  expect_bad_uri("sip:user@example.com\0"sv, "control character in URI");
  expect_bad_uri("sip:user@example.com;a=\x7f", "control character in URI");
  expect_bad_uri("sip:caf\xC3\xA9@example.com", "invalid character in URI user part");
}

TEST(ParseUriTest, EmptyComponents) {
  expect_bad_uri("sip:", "URI host is empty");
  expect_bad_uri("sips:", "URI host is empty");
  expect_bad_uri("sip:user@", "URI host is empty");
  expect_bad_uri("sip:user@;lr", "URI host is empty");
  expect_bad_uri("sip:user@?a=b", "URI host is empty");
  expect_bad_uri("sip:user@:5060", "URI host is empty");
  expect_bad_uri("sip::5060", "URI host is empty");
  expect_bad_uri("sip:;lr", "URI host is empty");
  expect_bad_uri("sip:@example.com", "URI user part is empty");
  expect_bad_uri("sip::pass@example.com", "URI user part is empty");
}

TEST(ParseUriTest, BadEscapes) {
  expect_bad_uri("sip:us%4@example.com", "bad %-escape in URI user part");
  expect_bad_uri("sip:us%zz@example.com", "bad %-escape in URI user part");
  expect_bad_uri("sip:user%@example.com", "bad %-escape in URI user part");
  expect_bad_uri("sip:%@example.com", "bad %-escape in URI user part");
  expect_bad_uri("sip:%G0@example.com", "bad %-escape in URI user part");
  expect_bad_uri("sip:u:p%g0@example.com", "bad %-escape in URI password");
  expect_bad_uri("sip:u:p%@example.com", "bad %-escape in URI password");
  expect_bad_uri("sip:h;a=%2", "bad %-escape in URI parameter");
  expect_bad_uri("sip:h;a=%", "bad %-escape in URI parameter");
  expect_bad_uri("sip:h;%=1", "bad %-escape in URI parameter");
  expect_bad_uri("sip:h?a=%", "bad %-escape in URI header");
  expect_bad_uri("sip:h?a=%4", "bad %-escape in URI header");
  expect_bad_uri("sip:h?%xy=1", "bad %-escape in URI header");
  expect_bad_uri("sip:h%41", "invalid character in URI host");  // hosts take no escapes

  const std::string_view input = exact("sip:us%zz@example.com");
  Result<Uri> r = parse_uri(input);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().where, "%zz");
}

TEST(ParseUriTest, BadUserinfoCharacters) {
  expect_bad_uri("sip:us\"er@h", "invalid character in URI user part");
  expect_bad_uri("sip:us[er@h", "invalid character in URI user part");
  expect_bad_uri("sip:us\\er@h", "invalid character in URI user part");
  expect_bad_uri("sip:u:p;x@h", "invalid character in URI password");
  expect_bad_uri("sip:u:p:q@h", "invalid character in URI password");
  expect_bad_uri("sip:u:p?@h", "invalid character in URI password");
  expect_bad_uri("sip:u:p/@h", "invalid character in URI password");
}

TEST(ParseUriTest, BadHosts) {
  expect_bad_uri("sip:exa_mple.com", "invalid character in URI host");
  expect_bad_uri("sip:user@exa!mple.com", "invalid character in URI host");
  expect_bad_uri("sip:user@h@x", "invalid character in URI host");
  expect_bad_uri("sip:h/x", "invalid character in URI host");
  expect_bad_uri("sip:-a.com", "URI host label starts or ends with '-'");
  expect_bad_uri("sip:a-.com", "URI host label starts or ends with '-'");
  expect_bad_uri("sip:a.com-", "URI host label starts or ends with '-'");
  expect_bad_uri("sip:a..com", "empty label in URI host");
  expect_bad_uri("sip:.com", "empty label in URI host");
  expect_bad_uri("sip:example.com..", "empty label in URI host");
  expect_bad_uri("sip:a.123", "URI host top label does not start with a letter");
  expect_bad_uri("sip:a.1b", "URI host top label does not start with a letter");
  expect_bad_uri("sip:.", "bad IPv4 address in URI host");
  expect_bad_uri("sip:1.2.3", "bad IPv4 address in URI host");
  expect_bad_uri("sip:1.2.3.256", "bad IPv4 address in URI host");
  expect_bad_uri("sip:1.2.3.4.5", "bad IPv4 address in URI host");
  expect_bad_uri("sip:1.2.3.4.", "bad IPv4 address in URI host");
  expect_bad_uri("sip:1.2.3.0004", "bad IPv4 address in URI host");
  expect_bad_uri("sip:1..3.4", "bad IPv4 address in URI host");
  expect_bad_uri("sip:12345", "bad IPv4 address in URI host");
}

TEST(ParseUriTest, BadParameters) {
  expect_bad_uri("sip:h;", "empty URI parameter name");
  expect_bad_uri("sip:h;;lr", "empty URI parameter name");
  expect_bad_uri("sip:h;lr;", "empty URI parameter name");
  expect_bad_uri("sip:h;=x", "empty URI parameter name");
  expect_bad_uri("sip:h;?a=b", "empty URI parameter name");
  expect_bad_uri("sip:h;x=", "empty URI parameter value");
  expect_bad_uri("sip:h;x=;lr", "empty URI parameter value");
  expect_bad_uri("sip:h;x=a=b", "invalid character in URI parameter");
  expect_bad_uri("sip:h;x=\"q\"", "invalid character in URI parameter");
  expect_bad_uri("sip:h;x=a,b", "invalid character in URI parameter");
  expect_bad_uri("sip:h;x{=1", "invalid character in URI parameter");
}

TEST(ParseUriTest, BadHeaders) {
  expect_bad_uri("sip:h?", "URI headers are empty");
  expect_bad_uri("sip:h;lr?", "URI headers are empty");
  expect_bad_uri("sip:h?a", "URI header has no '='");
  expect_bad_uri("sip:h?a=b&", "URI header has no '='");
  expect_bad_uri("sip:h?a=b&&c=d", "URI header has no '='");
  expect_bad_uri("sip:h?=b", "empty URI header name");
  expect_bad_uri("sip:h?a=b;c", "invalid character in URI header");
  expect_bad_uri("sip:h?a=b=c", "invalid character in URI header");
  expect_bad_uri("sip:u@h?a=b@c", "invalid character in URI header");
  expect_bad_uri("sip:h?a=\"b\"", "invalid character in URI header");
}

TEST(ParseUriTest, TooLarge) {
  const std::string big = "sip:" + std::string(5000, 'a') + "@example.com";
  expect_reject(big, ErrorCode::kTooLarge, "URI too long");
  expect_reject("sip:alice@atlanta.com", ErrorCode::kTooLarge, "URI too long", 20);
  const std::string_view at_limit = exact("sip:alice@atlanta.com");  // 21 bytes
  EXPECT_TRUE(parse_uri(at_limit, 21).ok());
  EXPECT_TRUE(parse_uri(exact(big), big.size()).ok());
  // Size is checked before anything else, even for garbage.
  expect_reject(std::string(5000, '<'), ErrorCode::kTooLarge, "URI too long");
}

TEST(ParseUriTest, LongValidInputs) {
  const std::string user(4000, 'u');
  const Uri u = parse_ok("sip:" + user + "@example.com");
  EXPECT_EQ(u.user, user);
  std::string params;
  for (int i = 0; i < 300; ++i) params += ";p" + std::to_string(i) + "=" + std::to_string(i);
  const Uri v = parse_ok("sip:h" + params);
  EXPECT_EQ(v.param("p299"), "299");
  std::string labels;
  for (int i = 0; i < 500; ++i) labels += "a.";
  EXPECT_EQ(parse_ok("sip:" + labels + "com").host_kind, HostKind::kName);
}

TEST(ParseUriTest, NeverReadsPastTheView) {
  // Views of every prefix of a larger buffer: nothing past the cut may appear in the result.
  const std::string buffer =
      "sip:al%41ce:pw@[2001:db8::1]:5060;transport=tcp;lr?Subject=x%20y&a=b tail>";
  for (std::size_t n = 0; n <= buffer.size(); ++n) {
    const std::string_view prefix(buffer.data(), n);
    Result<Uri> r = parse_uri(prefix);
    if (r.ok()) {
      expect_views_inside(*r, prefix);
    } else {
      EXPECT_TRUE(inside(r.error().where, prefix)) << prefix;
    }
    (void)parse_uri(exact(prefix));  // and from an exact-size heap copy, for ASan
  }
  // "sip:al%41ce:pw@[2001:db8::1]" parses; one byte less leaves the bracket unterminated.
  Result<Uri> whole_host = parse_uri(std::string_view(buffer.data(), 28));
  ASSERT_TRUE(whole_host.ok());
  EXPECT_EQ(whole_host->host, "2001:db8::1");
  Result<Uri> cut_host = parse_uri(std::string_view(buffer.data(), 27));
  ASSERT_FALSE(cut_host.ok());
  EXPECT_STREQ(cut_host.error().what, "unterminated IPv6 reference in URI host");
  // "sip:a%4" of "sip:a%41@h": no '@' in the view, so "a%4" is a (bad) host.
  Result<Uri> esc = parse_uri(std::string_view("sip:a%41@h", 7));
  ASSERT_FALSE(esc.ok());
  EXPECT_EQ(esc.error().where, "%4");
}

TEST(ParseUriTest, PrefixEndingInsideEscapeOrPort) {
  const std::string buffer = "sip:a%41@atlanta.com:5060;transport=tcp";
  // "sip:a%41@atl": the host ends at the cut.
  Result<Uri> r = parse_uri(std::string_view(buffer.data(), 12));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->host, "atl");
  // "sip:a%41@atlanta.com:50": the port is 50, not 5060.
  r = parse_uri(std::string_view(buffer.data(), 23));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->port, 50);
  // "...;transport=t": the value stops at the cut.
  r = parse_uri(std::string_view(buffer.data(), 37));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->param("transport"), "t");
}

TEST(ParseUriTest, RandomGarbageIsHandled) {
  // Deterministic pseudo-random strings over URI punctuation: no crash, no read outside the
  // input (ASan), views inside the input, and every parsed URI equals itself.
  std::mt19937 rng(4475);
  const std::string_view alphabet = "sipteSIP:@;?=&%[].:-+0123456789aAfFzZ<> \t\r\n\"\\/_~#*";
  std::size_t accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    const std::size_t len = rng() % 40;
    std::string s = round % 3 == 0 ? "sip:" : round % 3 == 1 ? "tel:" : "";
    for (std::size_t i = 0; i < len; ++i) s += alphabet[rng() % alphabet.size()];
    const std::string_view input = exact(s);
    Result<Uri> r = parse_uri(input);
    if (r.ok()) {
      ++accepted;
      expect_views_inside(*r, input);
      EXPECT_TRUE(uri_equal(*r, *r)) << s;
    } else {
      EXPECT_TRUE(inside(r.error().where, input)) << s;
      EXPECT_NE(r.error().what, nullptr);
      EXPECT_FALSE(r.error().describe().empty());
    }
  }
  EXPECT_GT(accepted, 0U);
}

TEST(ParseUriTest, AllBytesAfterScheme) {
  // Every single byte value in every component position.
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    for (std::string s : {"sip:" + std::string(1, ch), "sip:u" + std::string(1, ch) + "@h",
                          "sip:h;a=" + std::string(1, ch), "sip:h?a=" + std::string(1, ch),
                          "tel:+1" + std::string(1, ch), "x:" + std::string(1, ch),
                          "sip:[::" + std::string(1, ch) + "]"}) {
      const std::string_view input = exact(s);
      Result<Uri> r = parse_uri(input);
      if (r.ok()) {
        expect_views_inside(*r, input);
      } else {
        EXPECT_TRUE(inside(r.error().where, input));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Comparison (RFC 3261 §19.1.4)

void expect_equal(std::string_view a, std::string_view b, bool equal) {
  SCOPED_TRACE(std::string(a) + "  vs  " + std::string(b));
  const Uri x = parse_ok(a);
  const Uri y = parse_ok(b);
  EXPECT_EQ(uri_equal(x, y), equal);
  EXPECT_EQ(uri_equal(y, x), equal);
  EXPECT_TRUE(uri_equal(x, x));
  EXPECT_TRUE(uri_equal(y, y));
}

TEST(UriEqualTest, Rfc3261EquivalentExamples) {
  expect_equal("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp",
               true);
  expect_equal("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5", true);
  expect_equal("sip:carol@chicago.com", "sip:carol@chicago.com;security=on", true);
  expect_equal("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on", true);
  expect_equal("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
               "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com", true);
  expect_equal("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
               "sip:alice@atlanta.com?priority=urgent&subject=project%20x", true);
}

TEST(UriEqualTest, Rfc3261NonEquivalentExamples) {
  expect_equal("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP", false);
  expect_equal("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060", false);
  expect_equal("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp", false);
  expect_equal("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp", false);
  expect_equal("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting", false);
  expect_equal("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4", false);
}

// RFC 4475 §3.1.1.3 (esc01).
TEST(UriEqualTest, EscapedUnreservedEqualsLiteral) {
  expect_equal("sip:%75se%72@example.com", "sip:user@example.com", true);
  expect_equal("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31",
               "sip:caller@host5.example.net;lr;name=value%2541", true);
  expect_equal("sip:u:p%61ss@h", "sip:u:pass@h", true);
  expect_equal("sip:h?%53ubject=%41", "sip:h?Subject=A", true);
  expect_equal("sip:%4a@h", "sip:%4A@h", true);  // hex digits in escapes are case-free
}

TEST(UriEqualTest, EscapedReservedDiffersFromLiteral) {
  // RFC 3261 §19.1.4: only characters outside the reserved set equal their escapes.
  expect_equal("sip:a%3Bb@h", "sip:a;b@h", false);
  expect_equal("sip:a%3bb@h", "sip:a%3Bb@h", true);
  expect_equal("sip:a%2Bb@h", "sip:a+b@h", false);
  expect_equal("sip:sips%3Auser%40example.com@example.net",
               "sip:sips%3auser%40example.com@example.net", true);
}

TEST(UriEqualTest, Userinfo) {
  expect_equal("sip:alice@h", "sip:Alice@h", false);  // case-sensitive
  expect_equal("sip:alice@h", "sip:h", false);
  expect_equal("sip:alice:x@h", "sip:alice@h", false);
  expect_equal("sip:alice:@h", "sip:alice@h", false);
  expect_equal("sip:alice:x@h", "sip:alice:X@h", false);
  expect_equal("sip:alice:x@h", "sip:alice:x@h", true);
  expect_equal("sip:user;par=u%40example.net@example.com",
               "sip:user;par=u%40example.net@example.com", true);
}

TEST(UriEqualTest, SchemeAndHost) {
  expect_equal("sip:alice@h", "sips:alice@h", false);
  expect_equal("SIPS:alice@h", "sips:alice@h", true);
  expect_equal("sip:alice@Example.COM", "sip:alice@example.com", true);
  expect_equal("sip:alice@example.com", "sip:alice@example.org", false);
  expect_equal("sip:[::1]", "sip:[0:0:0:0:0:0:0:1]", true);
  expect_equal("sip:[2001:DB8::a]", "sip:[2001:db8:0::A]", true);
  expect_equal("sip:[::ffff:192.0.2.1]", "sip:[::ffff:c000:201]", true);
  expect_equal("sip:[::1]", "sip:[::2]", false);
  expect_equal("sip:192.0.2.1", "sip:192.000.002.001", true);
  expect_equal("sip:192.0.2.1", "sip:192.0.2.10", false);
  expect_equal("sip:192.0.2.1", "sip:[::ffff:192.0.2.1]", false);
  expect_equal("sip:h:5060", "sip:h:05060", true);
  expect_equal("sip:h:5060", "sip:h:5061", false);
}

TEST(UriEqualTest, Parameters) {
  // user, ttl, method, maddr and transport count even when only one side has them.
  expect_equal("sip:h", "sip:h;user=phone", false);
  expect_equal("sip:h", "sip:h;ttl=1", false);
  expect_equal("sip:h", "sip:h;method=INVITE", false);
  expect_equal("sip:h", "sip:h;maddr=239.255.255.1", false);
  expect_equal("sip:h", "sip:h;%74ransport=udp", false);
  expect_equal("sip:h;MADDR=Example.com", "sip:h;maddr=example.COM", true);
  expect_equal("sip:h;method=invite", "sip:h;method=INVITE", true);
  expect_equal("sip:h;transport=udp", "sip:h;transport=tcp", false);
  // Others matter only when in both.
  expect_equal("sip:h;lr", "sip:h", true);
  expect_equal("sip:h;foo=1", "sip:h;foo=2", false);
  expect_equal("sip:h;foo=ABC", "sip:h;FOO=abc", true);
  expect_equal("sip:h;foo", "sip:h;foo=x", false);
  expect_equal("sip:h;lr;foo=1;bar", "sip:h;bar;foo=1;lr", true);
  expect_equal("sip:h;%6C%72", "sip:h;lr", true);
}

TEST(UriEqualTest, ManyParametersTakeTheSortedPath) {
  std::string forward;
  std::string backward;
  for (int i = 0; i < 50; ++i) forward += ";p" + std::to_string(i) + "=V" + std::to_string(i);
  for (int i = 49; i >= 0; --i) backward += ";P" + std::to_string(i) + "=v" + std::to_string(i);
  expect_equal("sip:h" + forward, "sip:h" + backward, true);
  expect_equal("sip:h" + forward, "sip:h" + backward + ";transport=tcp", false);
  expect_equal("sip:h" + forward + ";extra", "sip:h" + backward, true);
  // Only the first occurrence of a repeated name is compared.
  expect_equal("sip:h" + forward + ";p7=x", "sip:h" + backward, true);
  expect_equal("sip:h" + forward, "sip:h;p7=x" + backward, false);
  expect_equal("sip:h;a=1;a=2", "sip:h;a=1", true);
  expect_equal("sip:h;a=2;a=1", "sip:h;a=1", false);
  expect_equal("sip:h" + forward + ";%6C%72", "sip:h" + backward + ";LR", true);
  expect_equal("sip:h" + forward + ";lr", "sip:h" + backward + ";lr=on", false);
  // A long list against a short one also goes through the sorted path.
  expect_equal("sip:h" + forward, "sip:h;p3=v3", true);
  expect_equal("sip:h" + forward, "sip:h;p3=v4", false);
  expect_equal("sip:h" + forward, "sip:h;ttl=5", false);
}

TEST(UriEqualTest, Headers) {
  expect_equal("sip:h?a=1&b=2", "sip:h?b=2&a=1", true);
  expect_equal("sip:h?A=1", "sip:h?a=1", true);  // names are case-insensitive
  expect_equal("sip:h?a=x", "sip:h?a=X", false);
  expect_equal("sip:h?a=1&a=1", "sip:h?a=1", false);
  expect_equal("sip:h?a=1&a=2", "sip:h?a=2&a=1", true);
  expect_equal("sip:h?a=1", "sip:h?a=1&b=", false);
  expect_equal("sip:h?a=%3C", "sip:h?a=%3c", true);
  expect_equal("sip:h?a=%3C", "sip:h?a=%3D", false);
}

TEST(UriEqualTest, TelUris) {
  expect_equal("tel:+1-201-555-0123", "tel:+12015550123", true);
  expect_equal("tel:+1(201)555.0123", "tel:+12015550123", true);
  expect_equal("tel:+12015550123", "tel:+12015550124", false);
  expect_equal("tel:7042;phone-context=example.com", "tel:7042;phone-context=EXAMPLE.com", true);
  expect_equal("tel:7042;phone-context=example.com", "tel:7042;phone-context=example.org", false);
  expect_equal("tel:863-1234;phone-context=+1-914-555", "tel:8631234;phone-context=+1914555", true);
  expect_equal("tel:abcd;phone-context=+1", "tel:ABCD;phone-context=+1", true);
  // RFC 3966 §4: every parameter counts, in any order.
  expect_equal("tel:+1;ext=1-2", "tel:+1;ext=12", true);
  expect_equal("tel:+1;ext=12", "tel:+1", false);
  expect_equal("tel:+1;foo=bar", "tel:+1", false);
  expect_equal("tel:+1;a=1;b=2", "tel:+1;B=2;a=1", true);
  expect_equal("tel:+1;foo=a-b", "tel:+1;foo=ab", false);
}

TEST(UriEqualTest, OtherSchemesAndMixes) {
  expect_equal("http://x", "http://x", true);
  expect_equal("HTTP://x", "http://x", true);
  expect_equal("http://x", "http://X", false);
  expect_equal("http://x", "https://x", false);
  expect_equal("sip:+1@h", "tel:+1", false);
  expect_equal("tel:+1", "x:+1", false);
}

// ---------------------------------------------------------------------------------------------
// unescape, Error

TEST(UnescapeTest, DecodesWellFormedEscapesOnly) {
  EXPECT_EQ(unescape(""), "");
  EXPECT_EQ(unescape("abc"), "abc");
  EXPECT_EQ(unescape("%41%42c"), "ABc");
  EXPECT_EQ(unescape("%6c%6C"), "ll");
  EXPECT_EQ(unescape("a%00b"), "a\0b"sv);
  EXPECT_EQ(unescape("%00"), "\0"sv);
  EXPECT_EQ(unescape("%FF"), "\xFF");
  EXPECT_EQ(unescape("%2541"), "%41");
  EXPECT_EQ(unescape("100%"), "100%");
  EXPECT_EQ(unescape("%4"), "%4");
  EXPECT_EQ(unescape("%zz%41"), "%zzA");
  EXPECT_EQ(unescape("%%41"), "%A");
  EXPECT_EQ(unescape("%Z%45"), "%ZE");  // RFC 4475 §3.1.1.5 (esc02)
}

TEST(ErrorTest, DescribeFormat) {
  EXPECT_EQ(to_string(ErrorCode::kBadUri), "bad URI");
  EXPECT_EQ(to_string(ErrorCode::kTooLarge), "too large");
  EXPECT_EQ(to_string(ErrorCode::kBadHeaderValue), "bad header value");
  for (int c = 0; c <= static_cast<int>(ErrorCode::kTruncated); ++c) {
    EXPECT_FALSE(to_string(static_cast<ErrorCode>(c)).empty());
  }
  const Error plain{ErrorCode::kBadUri, "URI host is empty"};
  EXPECT_EQ(plain.describe(), "bad URI: URI host is empty");
  const Error near{ErrorCode::kBadHeaderValue, "CSeq sequence number exceeds 2^32-1",
                   "36893488147419103232 REG"};
  EXPECT_EQ(near.describe(),
            "bad header value: CSeq sequence number exceeds 2^32-1 "
            "(near \"36893488147419103232 REG\")");
  const Error binary{ErrorCode::kBadUri, "control character in URI", "a\0b\x7f\xff\r\n"sv};
  EXPECT_EQ(binary.describe(),
            R"(bad URI: control character in URI (near "a\x00b\x7f\xff\x0d\x0a"))");
  const Error long_where{ErrorCode::kTooLarge, "URI too long",
                         std::string_view("0123456789012345678901234567890123456789-cut-here")};
  EXPECT_EQ(long_where.describe(),
            R"(too large: URI too long (near "0123456789012345678901234567890123456789"))");
}

TEST(ErrorTest, RejectionsDescribeThemselves) {
  const std::string_view input = exact("sip:user@exa mple.com");
  Result<Uri> r = parse_uri(input);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().describe(), R"(bad URI: whitespace in URI (near " mple.com"))");
}

}  // namespace
}  // namespace sip
