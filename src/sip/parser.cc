// RFC 3261 §7 (message format), §20 (header fields), §25 (augmented BNF).
//
// The parser makes one pass over the header section to split lines, then parses each header
// it knows into the Message's typed fields. Everything is a view into the input; the only
// writes are into the Message's (reused) vectors.
#include "sip/parser.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>

#include "sip/scanner.h"

namespace sip {
namespace {

constexpr std::uint64_t kMaxUint32 = 0xFFFFFFFFull;

Error fail(ErrorCode code, const char* what, std::string_view where = {}) {
  return Error{code, what, where};
}

// Parses 1*DIGIT into `out`, failing if the value exceeds `max` (leading zeros are fine,
// RFC 4475 wsinv "0068"). Returns false on empty input, non-digits or overflow.
bool parse_decimal(std::string_view text, std::uint64_t max, std::uint64_t& out) {
  if (text.empty()) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
    if (v > max) return false;
  }
  out = v;
  return true;
}

// Like parse_decimal, but values over `max` are clamped to it instead of failing (Expires).
bool parse_decimal_clamped(std::string_view text, std::uint64_t max, std::uint64_t& out) {
  if (text.empty()) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (!is_digit(c)) return false;
    if (v <= max) v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = v > max ? max : v;
  return true;
}

bool valid_port(std::string_view text, std::uint16_t& port) {
  std::uint64_t v = 0;
  if (!parse_decimal(text, 65535, v)) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

// host = hostname / IPv4address / IPv6reference (RFC 3261 §25.1), for Via sent-by.
bool parse_host(std::string_view text, std::string_view& host, HostKind& kind) {
  if (text.empty()) return false;
  if (text.front() == '[') {
    if (text.size() < 3 || text.back() != ']' || text.size() > 48) return false;
    host = text.substr(1, text.size() - 2);
    char buf[48];
    std::memcpy(buf, host.data(), host.size());
    buf[host.size()] = '\0';
    unsigned char addr[16];
    if (inet_pton(AF_INET6, buf, addr) != 1) return false;
    kind = HostKind::kIPv6;
    return true;
  }
  bool all_digits_and_dots = true;
  for (char c : text) {
    if (!is_alnum(c) && c != '-' && c != '.') return false;
    if (!is_digit(c) && c != '.') all_digits_and_dots = false;
  }
  host = text;
  kind = HostKind::kName;
  if (all_digits_and_dots) {
    if (text.size() > 15) return false;
    char buf[16];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    unsigned char addr[4];
    if (inet_pton(AF_INET, buf, addr) != 1) return false;
    kind = HostKind::kIPv4;
  }
  return true;
}

// Splits a header value into its comma-separated elements (RFC 3261 §7.3.1), ignoring commas
// inside quoted strings and angle brackets. Calls `each(element)` with each element trimmed of
// linear whitespace; stops and returns false if `each` does or if an element is empty.
template <typename Fn>
bool for_each_element(std::string_view value, Fn&& each) {
  std::size_t start = 0;
  bool in_quotes = false;
  bool in_angle = false;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    if (i < value.size()) {
      const char c = value[i];
      if (in_quotes) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_quotes = false;
        }
        continue;
      }
      if (c == '"') {
        in_quotes = true;
        continue;
      }
      if (c == '<') in_angle = true;
      if (c == '>') in_angle = false;
      if (c != ',' || in_angle) continue;
    }
    const std::string_view element = trim_lws(value.substr(start, i - start));
    if (element.empty()) return false;
    if (!each(element)) return false;
    start = i + 1;
  }
  return true;
}

}  // namespace

// The parsing of one message; holds the options and the message being filled. (Named in
// namespace sip, not an anonymous one, because Message befriends it.)
class Parser {
 public:
  Parser(std::string_view input, Message& out, const ParseOptions& options)
      : input_(input), msg_(out), opt_(options) {}

  Result<void> run();

 private:
  Result<void> parse_start_line(std::string_view line);
  Result<void> parse_request_line(std::string_view line);
  Result<void> parse_status_line(std::string_view line);
  Result<void> parse_header(HeaderField& h);
  Result<void> check_consistency();

  Result<void> parse_via(std::string_view element);
  Result<void> parse_name_addr(std::string_view element, NameAddr& out);
  Result<void> parse_header_params(Scanner& s, ParamList& out, const char* what);
  Result<void> parse_auth(std::string_view value, AuthField& out);
  Result<void> parse_tokens(std::string_view value, std::vector<std::string_view>& out,
                            bool allow_empty);
  Result<void> parse_cseq(std::string_view value);
  Result<Uri> uri(std::string_view text, const char* what);

  void set_request(bool is_request) { msg_.is_request_ = is_request; }

  const std::string_view input_;
  Message& msg_;
  const ParseOptions& opt_;
};

namespace {
Result<void> check_version(std::string_view v, ErrorCode malformed_code);

// Control characters have no place in a start line or header (NUL, bare CR, ESC, ...): they
// smuggle header splits and truncations past other SIP stacks. The exceptions are HTAB, the
// CRLF of a folded line, and a quoted-pair inside a quoted string (RFC 3261 §25.1:
// quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F), RFC 4475 intmeth).
Result<void> check_controls(std::string_view content, bool start_line) {
  bool in_quotes = false;
  for (std::size_t i = 0; i < content.size(); ++i) {
    const char c = content[i];
    if (in_quotes && c == '\\' && i + 1 < content.size() && content[i + 1] != '\r' &&
        content[i + 1] != '\n') {
      ++i;
      continue;
    }
    if (c == '"') in_quotes = !in_quotes;
    if (!is_ctl(c) || c == '\t' || c == '\n') continue;
    if (c == '\r' && i + 1 < content.size() && content[i + 1] == '\n') continue;
    return fail(start_line ? ErrorCode::kBadStartLine : ErrorCode::kBadHeader,
                "control character in the header section", content);
  }
  return {};
}
}  // namespace

Result<Uri> Parser::uri(std::string_view text, const char* what) {
  if (text.size() > opt_.limits.max_uri_length) {
    return fail(ErrorCode::kTooLarge, "URI longer than the configured limit", text);
  }
  auto u = parse_uri(text, opt_.limits.max_uri_length);
  if (!u) return fail(u.error().code, what, text);
  return u;
}

Result<void> Parser::run() {
  msg_.clear();
  if (input_.size() > opt_.limits.max_message_bytes) {
    return fail(ErrorCode::kTooLarge, "message larger than the configured limit");
  }
  // RFC 3261 §7.5: CRLFs before the start line are ignored.
  std::size_t pos = skip_keepalive(input_);
  const std::size_t message_start = pos;

  // ---- split the header section into lines
  bool first_line = true;
  bool ended = false;
  while (pos < input_.size()) {
    const std::size_t line_start = pos;
    std::size_t eol = input_.find('\n', pos);
    if (eol == std::string_view::npos) break;
    // A header continues on lines that start with SP or HTAB (folding, RFC 3261 §7.3.1).
    if (!first_line) {
      while (eol + 1 < input_.size() && (input_[eol + 1] == ' ' || input_[eol + 1] == '\t')) {
        const std::size_t next = input_.find('\n', eol + 1);
        if (next == std::string_view::npos) break;
        eol = next;
      }
    }
    const std::size_t content_end = (eol > line_start && input_[eol - 1] == '\r') ? eol - 1 : eol;
    const std::string_view content = input_.substr(line_start, content_end - line_start);
    const std::string_view line = input_.substr(line_start, eol + 1 - line_start);
    pos = eol + 1;

    if (content.size() > opt_.limits.max_header_line) {
      return fail(ErrorCode::kTooLarge, "header line longer than the configured limit",
                  content.substr(0, 40));
    }
    if (auto r = check_controls(content, first_line); !r) return r;
    if (first_line) {
      if (auto r = parse_start_line(content); !r) return r;
      first_line = false;
      continue;
    }
    if (content.empty()) {
      ended = true;
      break;
    }
    if (msg_.headers.size() >= opt_.limits.max_headers) {
      return fail(ErrorCode::kTooLarge, "more header lines than the configured limit");
    }
    if (content.front() == ' ' || content.front() == '\t') {
      return fail(ErrorCode::kBadHeader, "header line starts with whitespace", content);
    }
    const std::size_t colon = content.find(':');
    if (colon == std::string_view::npos) {
      return fail(ErrorCode::kBadHeader, "header line without ':'", content);
    }
    // RFC 3261 §7.3.1: whitespace may stand between the name and the colon ("TO :").
    const std::string_view name = trim_lws(content.substr(0, colon));
    if (name.empty() || !all_of(name, is_token_char)) {
      return fail(ErrorCode::kBadHeader, "header name is not a token", content);
    }
    HeaderField h;
    h.name = name;
    h.id = header_id(name);
    h.value = trim_lws(content.substr(colon + 1));
    h.line = line;
    msg_.headers.push_back(h);
  }
  if (first_line) return fail(ErrorCode::kTruncated, "no start line");
  // A datagram is complete as received: if it ends right after a header line, the empty line
  // is taken as missing rather than the message as cut short (RFC 4475 baddn has none).
  if (!ended && !(opt_.framing == Framing::kDatagram && pos == input_.size() &&
                  !msg_.headers.empty())) {
    return fail(ErrorCode::kTruncated, "header section does not end with an empty line");
  }

  for (auto& h : msg_.headers) {
    if (auto r = parse_header(h); !r) return r;
  }

  // ---- body (RFC 3261 §18.3, §20.14)
  const std::string_view rest = input_.substr(pos);
  if (msg_.content_length >= 0) {
    const auto length = static_cast<std::size_t>(msg_.content_length);
    if (length > rest.size()) {
      return fail(ErrorCode::kBadContentLength, "Content-Length is larger than the body received");
    }
    msg_.body = rest.substr(0, length);
  } else if (opt_.framing == Framing::kStream) {
    return fail(ErrorCode::kMissingHeader, "Content-Length is mandatory on stream transports");
  } else {
    msg_.body = rest;
  }
  msg_.raw = input_.substr(message_start, pos + msg_.body.size() - message_start);
  return check_consistency();
}

Result<void> Parser::parse_start_line(std::string_view line) {
  msg_.start_line = line;
  if (line.size() >= 4 && iequals(line.substr(0, 4), "SIP/")) {
    set_request(false);
    return parse_status_line(line);
  }
  set_request(true);
  return parse_request_line(line);
}

namespace {
// SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT. A well-formed version other than 2.0 is
// kBadVersion, so a server can answer 505 rather than 400 (RFC 4475 badvers).
Result<void> check_version(std::string_view v, ErrorCode malformed_code) {
  const auto malformed = fail(malformed_code, "malformed SIP version", v);
  if (v.size() < 7 || !iequals(v.substr(0, 4), "SIP/")) return malformed;
  const std::string_view num = v.substr(4);
  const std::size_t dot = num.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == num.size()) return malformed;
  if (!all_of(num.substr(0, dot), is_digit) || !all_of(num.substr(dot + 1), is_digit)) {
    return malformed;
  }
  if (num != "2.0") return fail(ErrorCode::kBadVersion, "unsupported SIP version", v);
  return {};
}
}  // namespace

// Request-Line = Method SP Request-URI SP SIP-Version CRLF: exactly one SP between the
// elements and none after (RFC 4475 lwsstart, trws, lwsruri).
Result<void> Parser::parse_request_line(std::string_view line) {
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) {
    return fail(ErrorCode::kBadStartLine, "request line is not 'METHOD URI SIP/2.0'", line);
  }
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    return fail(ErrorCode::kBadStartLine, "request line is not 'METHOD URI SIP/2.0'", line);
  }
  msg_.method_text = line.substr(0, sp1);
  const std::string_view uri_text = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!all_of(msg_.method_text, is_token_char)) {
    return fail(ErrorCode::kBadStartLine, "method is not a token", msg_.method_text);
  }
  if (uri_text.empty()) {
    return fail(ErrorCode::kBadStartLine, "extra whitespace in the request line", line);
  }
  if (version.find_first_of(" \t") != std::string_view::npos) {
    return fail(ErrorCode::kBadStartLine, "whitespace in the request line after the URI", line);
  }
  if (uri_text.front() == '<') {
    return fail(ErrorCode::kBadUri, "Request-URI must not be enclosed in <>", uri_text);
  }
  msg_.method = method_from_token(msg_.method_text);
  auto u = uri(uri_text, "malformed Request-URI");
  if (!u) return u.error();
  // RFC 3261 §19.1.1: headers are not allowed in a Request-URI. Rejecting them (RFC 4475
  // escruri) guarantees an escaped Route can never turn into a real one.
  if (u->has_headers) {
    return fail(ErrorCode::kBadUri, "Request-URI must not contain headers ('?')", uri_text);
  }
  msg_.request_uri = *u;
  return check_version(version, ErrorCode::kBadStartLine);
}

// Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF. An empty reason phrase is
// valid (RFC 4475 noreason); a missing SP before it is tolerated.
Result<void> Parser::parse_status_line(std::string_view line) {
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    return fail(ErrorCode::kBadStartLine, "status line is not 'SIP/2.0 CODE REASON'", line);
  }
  if (auto r = check_version(line.substr(0, sp1), ErrorCode::kBadStartLine); !r) return r;
  const std::string_view rest = line.substr(sp1 + 1);
  const std::string_view code = rest.substr(0, 3);
  if (code.size() != 3 || !all_of(code, is_digit) || (rest.size() > 3 && rest[3] != ' ')) {
    return fail(ErrorCode::kBadStartLine, "status code is not three digits", rest);
  }
  msg_.status_code = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  if (msg_.status_code < 100 || msg_.status_code > 699) {
    return fail(ErrorCode::kBadStartLine, "status code outside 100..699", code);
  }
  msg_.reason = rest.size() > 4 ? rest.substr(4) : std::string_view();
  return {};
}

Result<void> Parser::parse_header(HeaderField& h) {
  const std::string_view v = h.value;
  const auto bad = [&](const char* what) { return fail(ErrorCode::kBadHeaderValue, what, v); };
  switch (h.id) {
    case HeaderId::kVia: {
      Result<void> r;
      const bool ok = for_each_element(v, [&](std::string_view e) {
        r = parse_via(e);
        return r.ok();
      });
      if (!r) return r;
      if (!ok) return bad("empty element in Via");
      return {};
    }
    case HeaderId::kFrom:
    case HeaderId::kTo: {
      const bool is_from = h.id == HeaderId::kFrom;
      bool& seen = is_from ? msg_.has_from : msg_.has_to;
      if (seen) {
        return fail(ErrorCode::kDuplicateHeader,
                    is_from ? "more than one From header" : "more than one To header", v);
      }
      seen = true;
      return parse_name_addr(v, is_from ? msg_.from : msg_.to);
    }
    case HeaderId::kContact: {
      if (v == "*") {
        if (msg_.contact_star || !msg_.contact.empty()) return bad("Contact '*' mixed with others");
        msg_.contact_star = true;
        return {};
      }
      if (msg_.contact_star) return bad("Contact '*' mixed with others");
      [[fallthrough]];
    }
    case HeaderId::kRoute:
    case HeaderId::kRecordRoute:
    case HeaderId::kPAssertedIdentity: {
      auto& list = h.id == HeaderId::kContact       ? msg_.contact
                   : h.id == HeaderId::kRoute       ? msg_.route
                   : h.id == HeaderId::kRecordRoute ? msg_.record_route
                                                    : msg_.p_asserted_identity;
      Result<void> r;
      const bool ok = for_each_element(v, [&](std::string_view e) {
        list.emplace_back();
        r = parse_name_addr(e, list.back());
        return r.ok();
      });
      if (!r) return r;
      if (!ok) return bad("empty element in an address list");
      return {};
    }
    case HeaderId::kCallId:
      if (!msg_.call_id.empty()) {
        return fail(ErrorCode::kDuplicateHeader, "more than one Call-ID header", v);
      }
      // callid = word [ "@" word ]: no whitespace inside.
      if (v.empty() || !all_of(v, is_word_char)) return bad("malformed Call-ID");
      msg_.call_id = v;
      return {};
    case HeaderId::kCSeq:
      if (msg_.has_cseq) return fail(ErrorCode::kDuplicateHeader, "more than one CSeq header", v);
      msg_.has_cseq = true;
      return parse_cseq(v);
    case HeaderId::kMaxForwards: {
      if (msg_.max_forwards >= 0) {
        return fail(ErrorCode::kDuplicateHeader, "more than one Max-Forwards header", v);
      }
      std::uint64_t n = 0;
      if (!parse_decimal(v, 255, n)) return bad("Max-Forwards is not a number from 0 to 255");
      msg_.max_forwards = static_cast<int>(n);
      return {};
    }
    case HeaderId::kExpires:
    case HeaderId::kMinExpires: {
      std::int64_t& field = h.id == HeaderId::kExpires ? msg_.expires : msg_.min_expires;
      if (field >= 0) return fail(ErrorCode::kDuplicateHeader, "Expires header repeated", v);
      std::uint64_t n = 0;
      // RFC 3261 §20.19: delta-seconds; larger values than 2^32-1 are taken as 2^32-1.
      if (!parse_decimal_clamped(v, kMaxUint32, n)) return bad("Expires is not delta-seconds");
      field = static_cast<std::int64_t>(n);
      return {};
    }
    case HeaderId::kContentLength: {
      if (msg_.content_length >= 0) {
        return fail(ErrorCode::kDuplicateHeader, "more than one Content-Length header", v);
      }
      std::uint64_t n = 0;
      if (!parse_decimal(v, kMaxUint32, n)) {
        return fail(ErrorCode::kBadContentLength, "Content-Length is not a non-negative number",
                    v);
      }
      msg_.content_length = static_cast<std::int64_t>(n);
      return {};
    }
    case HeaderId::kContentType: {
      if (!msg_.content_type.empty()) {
        return fail(ErrorCode::kDuplicateHeader, "more than one Content-Type header", v);
      }
      // media-type = m-type SLASH m-subtype *(SEMI m-parameter)
      Scanner s(v);
      const std::string_view type = s.token();
      s.skip_lws();
      if (type.empty() || !s.consume('/')) return bad("Content-Type is not type/subtype");
      s.skip_lws();
      if (s.token().empty()) return bad("Content-Type is not type/subtype");
      ParamList params;
      if (auto r = parse_header_params(s, params, "malformed Content-Type parameter"); !r) {
        return r;
      }
      msg_.content_type = v;
      return {};
    }
    case HeaderId::kAuthorization:
    case HeaderId::kProxyAuthorization:
    case HeaderId::kWwwAuthenticate:
    case HeaderId::kProxyAuthenticate: {
      auto& list = h.id == HeaderId::kAuthorization        ? msg_.authorization
                   : h.id == HeaderId::kProxyAuthorization ? msg_.proxy_authorization
                   : h.id == HeaderId::kWwwAuthenticate    ? msg_.www_authenticate
                                                           : msg_.proxy_authenticate;
      list.emplace_back();
      return parse_auth(v, list.back());
    }
    case HeaderId::kRequire:
      return parse_tokens(v, msg_.require, false);
    case HeaderId::kProxyRequire:
      return parse_tokens(v, msg_.proxy_require, false);
    case HeaderId::kSupported:
      return parse_tokens(v, msg_.supported, true);
    case HeaderId::kUnsupported:
      return parse_tokens(v, msg_.unsupported, true);
    case HeaderId::kAllow:
      return parse_tokens(v, msg_.allow, true);
    case HeaderId::kUserAgent:
      msg_.user_agent = v;
      return {};
    case HeaderId::kServer:
      msg_.server = v;
      return {};
    default:
      return {};  // kept verbatim
  }
}

// CSeq = 1*DIGIT LWS Method, the number at most 2^32-1 (RFC 3261 §20.16, RFC 4475 scalar02).
Result<void> Parser::parse_cseq(std::string_view v) {
  Scanner s(v);
  const std::string_view digits = s.take_while(is_digit);
  std::uint64_t n = 0;
  if (digits.empty()) return fail(ErrorCode::kBadHeaderValue, "CSeq has no sequence number", v);
  if (!parse_decimal(digits, kMaxUint32, n)) {
    return fail(ErrorCode::kBadHeaderValue, "CSeq sequence number exceeds 2^32-1", v);
  }
  if (!s.skip_lws()) return fail(ErrorCode::kBadHeaderValue, "CSeq is not 'number METHOD'", v);
  const std::string_view method = s.token();
  if (method.empty() || !s.at_end()) {
    return fail(ErrorCode::kBadHeaderValue, "CSeq is not 'number METHOD'", v);
  }
  msg_.cseq.number = static_cast<std::uint32_t>(n);
  msg_.cseq.method_text = method;
  msg_.cseq.method = method_from_token(method);
  return {};
}

// via-parm = sent-protocol LWS sent-by *( SEMI via-params ), with SLASH and COLON allowing
// whitespace around them (RFC 3261 §20.42, §25.1; RFC 4475 wsinv).
Result<void> Parser::parse_via(std::string_view element) {
  const auto bad = [&](const char* what) {
    return fail(ErrorCode::kBadHeaderValue, what, element);
  };
  Via via;
  via.text = element;
  Scanner s(element);
  const std::string_view protocol = s.token();
  s.skip_lws();
  if (!s.consume('/')) return bad("Via sent-protocol is not SIP/2.0/TRANSPORT");
  s.skip_lws();
  const std::string_view version = s.token();
  s.skip_lws();
  if (!s.consume('/')) return bad("Via sent-protocol is not SIP/2.0/TRANSPORT");
  s.skip_lws();
  via.transport = s.token();
  if (!iequals(protocol, "SIP") || version != "2.0" || via.transport.empty()) {
    return bad("Via sent-protocol is not SIP/2.0/TRANSPORT");
  }
  if (!s.skip_lws()) return bad("Via has no space between protocol and sent-by");
  // sent-by = host [ COLON port ]
  std::string_view host_text;
  if (s.peek() == '[') {
    host_text = s.take_until(']');
    if (!s.consume(']')) return bad("Via host has an unterminated IPv6 reference");
    host_text = std::string_view(host_text.data(), host_text.size() + 1);  // with ']'
  } else {
    host_text = s.take_while([](char c) { return is_alnum(c) || c == '-' || c == '.'; });
  }
  if (!parse_host(host_text, via.host, via.host_kind)) return bad("Via sent-by host is malformed");
  s.skip_lws();
  if (s.consume(':')) {
    s.skip_lws();
    if (!valid_port(s.take_while(is_digit), via.port)) return bad("Via port is out of range");
    via.has_port = true;
  }
  if (auto r = parse_header_params(s, via.params, "malformed Via parameter"); !r) return r;
  for (const Param& p : via.params) {
    if (iequals(p.name, "branch")) {
      if (!p.has_value || p.value.empty()) return bad("Via branch parameter has no value");
      via.branch = p.value;
    } else if (iequals(p.name, "received")) {
      via.received = p.value;
    } else if (iequals(p.name, "maddr")) {
      via.maddr = p.value;
    } else if (iequals(p.name, "rport")) {
      via.has_rport = true;
      if (p.has_value && !valid_port(p.value, via.rport)) return bad("Via rport is not a port");
    }
  }
  msg_.via.push_back(via);
  return {};
}

// *( SEMI generic-param ), generic-param = token [ EQUAL gen-value ],
// gen-value = token / host / quoted-string. On success `s` is at its end.
Result<void> Parser::parse_header_params(Scanner& s, ParamList& out, const char* what) {
  s.skip_lws();
  const char* begin = s.position();
  while (!s.at_end()) {
    if (!s.consume(';')) return fail(ErrorCode::kBadHeaderValue, what, s.rest());
    s.skip_lws();
    if (s.token().empty()) return fail(ErrorCode::kBadHeaderValue, what, s.rest());
    s.skip_lws();
    if (s.consume('=')) {
      s.skip_lws();
      if (s.peek() == '"') {
        if (s.quoted_string().empty()) {
          return fail(ErrorCode::kBadHeaderValue, "unterminated quoted string", s.rest());
        }
      } else if (s.take_while(is_param_value_char).empty()) {
        return fail(ErrorCode::kBadHeaderValue, what, s.rest());
      }
      s.skip_lws();
    }
  }
  out = ParamList(std::string_view(begin, static_cast<std::size_t>(s.position() - begin)));
  return {};
}

// (name-addr / addr-spec) *( SEMI param ) (RFC 3261 §20.10, §20.20).
// name-addr = [ display-name ] LAQUOT addr-spec RAQUOT, display-name = *(token LWS) / quoted.
Result<void> Parser::parse_name_addr(std::string_view element, NameAddr& out) {
  const auto bad = [&](const char* what) {
    return fail(ErrorCode::kBadHeaderValue, what, element);
  };
  out.text = element;
  Scanner s(element);
  s.skip_lws();
  std::string_view uri_text;
  if (s.peek() == '"') {
    out.display_name = s.quoted_string();
    if (out.display_name.empty()) return bad("unterminated quoted string in display name");
    s.skip_lws();
    if (s.peek() != '<') return bad("quoted display name not followed by <URI>");
  } else if (element.find('<') != std::string_view::npos) {
    // Unquoted display name: tokens separated by whitespace only (RFC 4475 baddn: a comma
    // there means the name needed quotes).
    const char* start = s.position();
    while (!s.at_end() && s.peek() != '<') {
      if (s.token().empty()) return bad("display name must be quoted (it is not a token list)");
      s.skip_lws();
    }
    out.display_name = trim_lws(
        std::string_view(start, static_cast<std::size_t>(s.position() - start)));
  }
  if (s.consume('<')) {
    out.angle_brackets = true;
    uri_text = s.take_until('>');
    if (!s.consume('>')) return bad("'<' without matching '>'");
    if (!uri_text.empty() && (is_lws_char(uri_text.front()) || is_lws_char(uri_text.back()))) {
      return bad("whitespace inside <> around the URI");  // RFC 4475 badaspec
    }
  } else {
    // addr-spec: the URI ends at the first ';' (those are header parameters, RFC 3261
    // §20.10) or whitespace. A URI with ',', '?' or ';' of its own must use <>.
    uri_text = s.take_while([](char c) { return c != ';' && !is_lws_char(c); });
    if (uri_text.find_first_of("?,") != std::string_view::npos) {
      return bad("a URI with '?' or ',' must be enclosed in <>");  // RFC 4475 regbadct
    }
  }
  if (uri_text.empty()) return bad("address has no URI");
  auto u = uri(uri_text, "malformed URI in address");
  if (!u) return u.error();
  out.uri = *u;
  return parse_header_params(s, out.params, "malformed address parameter");
}

// credentials / challenge = auth-scheme LWS auth-param *(COMMA auth-param)
// (RFC 3261 §25.1, RFC 7616 §3.3-3.4). Non-Digest schemes are kept unparsed.
Result<void> Parser::parse_auth(std::string_view value, AuthField& out) {
  const auto bad = [&](const char* what) { return fail(ErrorCode::kBadHeaderValue, what, value); };
  out.text = value;
  Scanner s(value);
  out.scheme = s.token();
  if (out.scheme.empty()) return bad("authorization scheme is not a token");
  s.skip_lws();
  out.params = s.rest();
  if (!out.is_digest()) return {};
  if (s.at_end()) return bad("Digest without parameters");
  while (true) {
    s.skip_lws();
    const std::string_view name = s.token();
    s.skip_lws();
    if (name.empty() || !s.consume('=')) return bad("malformed Digest parameter");
    s.skip_lws();
    std::string_view v;
    if (s.peek() == '"') {
      v = s.quoted_string();
      if (v.empty()) return bad("unterminated quoted string in Digest parameter");
      v = v.substr(1, v.size() - 2);
    } else {
      v = s.take_while(is_param_value_char);
      if (v.empty()) return bad("Digest parameter without a value");
    }
    struct Field {
      std::string_view name;
      std::string_view* slot;
    };
    const std::array<Field, 13> fields{{{"username", &out.username},
                                        {"realm", &out.realm},
                                        {"nonce", &out.nonce},
                                        {"uri", &out.uri},
                                        {"response", &out.response},
                                        {"algorithm", &out.algorithm},
                                        {"cnonce", &out.cnonce},
                                        {"opaque", &out.opaque},
                                        {"qop", &out.qop},
                                        {"nc", &out.nc},
                                        {"domain", &out.domain},
                                        {"stale", &out.stale},
                                        {"userhash", nullptr}}};
    for (const Field& f : fields) {
      if (!iequals(f.name, name)) continue;
      if (f.slot == nullptr) {
        out.userhash = iequals(v, "true");
      } else {
        *f.slot = v;
      }
      break;
    }
    s.skip_lws();
    if (s.at_end()) break;
    if (!s.consume(',')) return bad("Digest parameters not separated by ','");
  }
  return {};
}

// Comma-separated tokens: option tags (Require, Supported, ...) and methods (Allow).
Result<void> Parser::parse_tokens(std::string_view value, std::vector<std::string_view>& out,
                                  bool allow_empty) {
  if (value.empty()) {
    if (allow_empty) return {};
    return fail(ErrorCode::kBadHeaderValue, "option-tag list is empty", value);
  }
  const bool ok = for_each_element(value, [&](std::string_view e) {
    if (!all_of(e, is_token_char)) return false;
    out.push_back(e);
    return true;
  });
  if (!ok) return fail(ErrorCode::kBadHeaderValue, "malformed token list", value);
  return {};
}

// What every receiver checks before acting (RFC 3261 §8.2.2, §8.1.1).
Result<void> Parser::check_consistency() {
  if (msg_.via.empty()) return fail(ErrorCode::kMissingHeader, "Via header missing");
  if (!msg_.has_from) return fail(ErrorCode::kMissingHeader, "From header missing");
  if (!msg_.has_to) return fail(ErrorCode::kMissingHeader, "To header missing");
  if (msg_.call_id.empty()) return fail(ErrorCode::kMissingHeader, "Call-ID header missing");
  if (!msg_.has_cseq) return fail(ErrorCode::kMissingHeader, "CSeq header missing");
  if (msg_.is_request() && msg_.cseq.method_text != msg_.method_text) {
    return fail(ErrorCode::kInconsistent, "CSeq method differs from the request method",
                msg_.cseq.method_text);
  }
  return {};
}

Result<void> parse(std::string_view input, Message& out, const ParseOptions& options) {
  return Parser(input, out, options).run();
}

std::size_t skip_keepalive(std::string_view buffered) {
  std::size_t n = 0;
  while (n < buffered.size() && (buffered[n] == '\r' || buffered[n] == '\n')) ++n;
  return n;
}

Result<std::optional<std::size_t>> frame_length(std::string_view buffered, const Limits& limits) {
  // Find the empty line that ends the header section (CRLFCRLF, or LFLF from lax senders).
  std::size_t header_end = std::string_view::npos;
  for (std::size_t i = buffered.find('\n'); i != std::string_view::npos;
       i = buffered.find('\n', i + 1)) {
    if (i + 1 < buffered.size() && buffered[i + 1] == '\n') {
      header_end = i + 2;
      break;
    }
    if (i + 2 < buffered.size() && buffered[i + 1] == '\r' && buffered[i + 2] == '\n') {
      header_end = i + 3;
      break;
    }
    if (i > limits.max_message_bytes) break;
  }
  if (header_end == std::string_view::npos) {
    if (buffered.size() > limits.max_message_bytes) {
      return fail(ErrorCode::kTooLarge, "header section larger than the configured limit");
    }
    return std::optional<std::size_t>();
  }
  // Find Content-Length ("l" in compact form) among the header lines.
  std::int64_t length = -1;
  std::size_t pos = buffered.find('\n') + 1;  // skip the start line
  while (pos < header_end) {
    std::size_t eol = buffered.find('\n', pos);
    const std::string_view line = buffered.substr(pos, eol - pos);
    pos = eol + 1;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (header_id(trim_lws(line.substr(0, colon))) != HeaderId::kContentLength) continue;
    std::uint64_t n = 0;
    if (length >= 0 || !parse_decimal(trim_lws(line.substr(colon + 1)), kMaxUint32, n)) {
      return fail(ErrorCode::kBadContentLength, "Content-Length repeated or malformed", line);
    }
    length = static_cast<std::int64_t>(n);
  }
  if (length < 0) {
    return fail(ErrorCode::kMissingHeader, "Content-Length is mandatory on stream transports");
  }
  const std::size_t total = header_end + static_cast<std::size_t>(length);
  if (total > limits.max_message_bytes) {
    return fail(ErrorCode::kTooLarge, "message larger than the configured limit");
  }
  if (buffered.size() < total) return std::optional<std::size_t>();
  return std::optional<std::size_t>(total);
}

}  // namespace sip
