// RFC 3261 §7 (message format), §20 (header fields), §25 (augmented BNF).
//
// The parser makes one pass over the header section to split lines, then parses each header
// it knows into the Message's typed fields. Everything is a view into the input; the only
// writes are into the Message's (reused) vectors.
#include "sip/parser.h"

#include <arpa/inet.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <array>
#include <bit>
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

// True if every byte of `s` is visible ASCII (%x21-7E, is_word_char()). 16 bytes at a time: a
// Call-ID is a few dozen of them. The last block overlaps the one before instead of reading
// past the end; checking a byte twice does no harm.
bool all_visible(std::string_view s) {
#if defined(__SSE2__)
  if (s.size() >= 16) {
    // Signed compares: bytes 0x80-0xFF are negative, so they fail "> 0x20" like the controls.
    const __m128i low = _mm_set1_epi8(0x20);
    const __m128i high = _mm_set1_epi8(0x7F);
    const auto visible = [&](std::size_t i) {
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
      const __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(x, low), _mm_cmplt_epi8(x, high));
      return _mm_movemask_epi8(ok) == 0xFFFF;
    };
    for (std::size_t i = 0; i + 16 < s.size(); i += 16) {
      if (!visible(i)) return false;
    }
    return visible(s.size() - 16);
  }
#endif
  return all_of(s, is_word_char);
}

bool valid_port(std::string_view text, std::uint16_t& port) {
  std::uint64_t v = 0;
  if (!parse_decimal(text, 65535, v)) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

// hostname and IPv4address characters: alphanumerics, '-' and '.'.
bool is_host_char(char c) {
  return is_alnum(c) || c == '-' || c == '.';
}

// host = hostname / IPv4address (RFC 3261 §25.1), for Via sent-by: `text` is made of
// is_host_char() characters only. Anything with a letter or '-' is a name (no label rules);
// digits and dots must be a dotted quad as inet_pton(AF_INET) reads it: four decimal parts
// 0..255, none empty and none with a leading zero ("022", which inet_aton() would read as octal).
bool parse_host_name(std::string_view text, std::string_view& host, HostKind& kind) {
  if (text.empty()) return false;
  host = text;
  kind = HostKind::kName;
  if (!all_of(text, [](char c) { return is_digit(c) || c == '.'; })) return true;
  int parts = 0;
  unsigned value = 0;
  std::size_t digits = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '.') {
      if (digits == 0 || digits > 3 || value > 255) return false;
      if (digits > 1 && text[i - digits] == '0') return false;
      ++parts;
      value = 0;
      digits = 0;
    } else {
      value = value * 10 + static_cast<unsigned>(text[i] - '0');
      ++digits;
    }
  }
  if (parts != 4) return false;
  kind = HostKind::kIPv4;
  return true;
}

// host = IPv6reference (RFC 3261 §25.1), for Via sent-by: `text` is "[...]".
bool parse_host(std::string_view text, std::string_view& host, HostKind& kind) {
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

// Splits a header value into its comma-separated elements (RFC 3261 §7.3.1), ignoring commas
// inside quoted strings and angle brackets. Calls `each(element)` with each element trimmed of
// linear whitespace; stops and returns false if `each` does or if an element is empty.
template <typename Fn>
bool for_each_element(std::string_view value, Fn&& each) {
  if (value.find(',') == std::string_view::npos) {  // the common case: one element
    const std::string_view element = trim_lws(value);
    return !element.empty() && each(element);
  }
  std::size_t start = 0;
  bool in_quotes = false;
  bool in_angle = false;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    if (i < value.size()) {
      const char c = value[i];
      if (in_quotes) {
        if (c == '\\') {
          // A quoted-pair; a '\\' that ends the value escapes nothing, and stepping over the
          // end would drop the last element unparsed.
          if (i + 1 < value.size()) ++i;
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
  // What each parsing step returns: nullptr on success, else the Error that ends the parse
  // (held in error_). A pointer test is all a caller pays on the way out of every step, where a
  // Result<void> would be built and copied.
  using Failure = const Error*;

  Parser(std::string_view input, Message& out, const ParseOptions& options)
      : input_(input), msg_(out), opt_(options) {}

  Failure run();

 private:
  Failure fail(ErrorCode code, const char* what, std::string_view where = {}) {
    error_ = Error{code, what, where};
    return &error_;
  }
  Failure fail(const Error& error) {
    error_ = error;
    return &error_;
  }

  Failure parse_start_line(std::string_view line);
  Failure parse_request_line(std::string_view line);
  Failure parse_status_line(std::string_view line);
  Failure parse_header(const HeaderField& h);
  Failure check_consistency();

  Failure parse_via(std::string_view element);
  Failure parse_name_addr(std::string_view element, NameAddr& out);
  template <typename OnParam>
  Failure parse_header_params(Scanner& s, ParamList& out, const char* what, OnParam&& on_param);
  Failure parse_header_params(Scanner& s, ParamList& out, const char* what) {
    return parse_header_params(s, out, what, [](const Param&) {});
  }
  Failure parse_auth(std::string_view value, AuthField& out);
  Failure parse_tokens(std::string_view value, std::vector<std::string_view>& out,
                       bool allow_empty);
  Failure parse_cseq(std::string_view value);
  Failure parse_uri_in(std::string_view text, Uri& out, const char* what);

  void set_request(bool is_request) { msg_.is_request_ = is_request; }

  const std::string_view input_;
  Message& msg_;
  const ParseOptions& opt_;
  Error error_{ErrorCode::kBadHeader, ""};
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

// Where a line of the header section stops: `stop` is the first byte at or after the line's start
// that is a control character other than HTAB (%x00-08 / %x0A-1F / %x7F), or the input's end;
// `colon` is the first ':' before `stop`, or npos. In a well-formed header section `stop` is the
// CR or LF ending the line, so this one pass finds the line end, shows the line needs no
// check_controls(), and finds the end of the header name. It runs over every header byte, hence
// SSE2.
struct LineScan {
  std::size_t stop;
  std::size_t colon;
};

LineScan scan_line(std::string_view text, std::size_t from) {
  std::size_t colon = std::string_view::npos;
  std::size_t i = from;
  while (true) {
#if defined(__SSE2__)
    const __m128i space = _mm_set1_epi8(0x20);
    const __m128i del = _mm_set1_epi8(0x7F);
    const __m128i colons = _mm_set1_epi8(':');
    while (text.size() - i >= 16) {  // full 16-byte blocks only: never read past the input
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
      // Printable: >= 0x20 (unsigned: max(x, 0x20) == x) and not DEL. (HTAB stops the block
      // like any control character, and is stepped over below: it is rare in a header.)
      const __m128i printable =
          _mm_andnot_si128(_mm_cmpeq_epi8(x, del), _mm_cmpeq_epi8(_mm_max_epu8(x, space), x));
      const auto controls = static_cast<unsigned>(_mm_movemask_epi8(printable)) ^ 0xFFFFu;
      if (colon == std::string_view::npos) {
        const auto hits = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, colons)));
        if (hits != 0) colon = i + static_cast<std::size_t>(std::countr_zero(hits));
      }
      if (controls != 0) {
        i += static_cast<std::size_t>(std::countr_zero(controls));
        break;
      }
      i += 16;
    }
#endif
    for (; i < text.size() && !is_ctl(text[i]); ++i) {
      if (text[i] == ':' && colon == std::string_view::npos) colon = i;
    }
    if (i == text.size() || text[i] != '\t') break;
    ++i;  // HTAB is allowed: go on past it
  }
  if (colon != std::string_view::npos && colon > i) colon = std::string_view::npos;
  return {i, colon};
}
}  // namespace

// Parses `text` into `out` (default-constructed) in place. A URI error is reported as `what`
// about the whole URI, with parse_uri()'s code.
Parser::Failure Parser::parse_uri_in(std::string_view text, Uri& out, const char* what) {
  if (text.size() > opt_.limits.max_uri_length) {
    return fail(ErrorCode::kTooLarge, "URI longer than the configured limit", text);
  }
  if (parse_uri_into(text, &out, &error_) != nullptr) return fail(error_.code, what, text);
  return nullptr;
}

Parser::Failure Parser::run() {
  msg_.clear();
  if (input_.size() > opt_.limits.max_message_bytes) {
    return fail(ErrorCode::kTooLarge, "message larger than the configured limit");
  }
  // RFC 3261 §7.5: CRLFs before the start line are ignored.
  std::size_t pos = skip_keepalive(input_);
  const std::size_t message_start = pos;

  // ---- split the header section into lines (one loop for the start line and the headers, so
  // that the line scanning below is inlined once)
  bool first_line = true;
  bool ended = false;
  std::size_t header_count = 0;  // msg_.headers.size(), without its division
  while (pos < input_.size()) {
    const std::size_t line_start = pos;
    std::size_t eol = 0;          // the LF ending the line
    std::size_t content_end = 0;  // the line without its CRLF or LF
    // Fast path: the first control character is the line's own CRLF (or LF), and the next line
    // is not a continuation. Then the line is also known to need no check_controls().
    bool clean = false;
    const LineScan scan = scan_line(input_, pos);
    if (scan.stop < input_.size()) {
      content_end = scan.stop;
      if (input_[scan.stop] == '\n') {
        eol = scan.stop;
        clean = true;
      } else if (input_[scan.stop] == '\r' && scan.stop + 1 < input_.size() &&
                 input_[scan.stop + 1] == '\n') {
        eol = scan.stop + 1;
        clean = true;
      }
      if (clean && !first_line && eol + 1 < input_.size() &&
          (input_[eol + 1] == ' ' || input_[eol + 1] == '\t')) {
        clean = false;  // folded
      }
    }
    if (!clean) {
      eol = input_.find('\n', pos);
      if (eol == std::string_view::npos) break;
      // A header continues on lines that start with SP or HTAB (folding, RFC 3261 §7.3.1).
      if (!first_line) {
        while (eol + 1 < input_.size() && (input_[eol + 1] == ' ' || input_[eol + 1] == '\t')) {
          const std::size_t next = input_.find('\n', eol + 1);
          if (next == std::string_view::npos) break;
          eol = next;
        }
      }
      content_end = (eol > line_start && input_[eol - 1] == '\r') ? eol - 1 : eol;
    }
    // (All offsets are inside the input: views are made directly, without substr's checks.)
    const std::string_view content(input_.data() + line_start, content_end - line_start);
    const std::string_view line(input_.data() + line_start, eol + 1 - line_start);
    pos = eol + 1;

    if (content.size() > opt_.limits.max_header_line) {
      return fail(ErrorCode::kTooLarge, "header line longer than the configured limit",
                  content.substr(0, 40));
    }
    if (!clean) {
      if (auto r = check_controls(content, first_line); !r) return fail(r.error());
    }
    if (first_line) {
      if (Failure r = parse_start_line(content)) return r;
      first_line = false;
      continue;
    }
    if (content.empty()) {
      ended = true;
      break;
    }
    if (header_count >= opt_.limits.max_headers) {
      return fail(ErrorCode::kTooLarge, "more header lines than the configured limit");
    }
    if (content.front() == ' ' || content.front() == '\t') {
      return fail(ErrorCode::kBadHeader, "header line starts with whitespace", content);
    }
    // A clean line's colon was found by scan_line.
    std::size_t colon = scan.colon == std::string_view::npos ? scan.colon : scan.colon - line_start;
    if (!clean) colon = content.find(':');
    if (colon == std::string_view::npos) {
      return fail(ErrorCode::kBadHeader, "header line without ':'", content);
    }
    // RFC 3261 §7.3.1: whitespace may stand between the name and the colon ("TO :"). A clean
    // line has none before the name: a leading SP or HTAB was refused above, and it holds no
    // CR or LF (a folded one may start with a CRLF that a continuation turns into LWS).
    std::string_view name(content.data(), colon);
    if (!clean || (!name.empty() && is_lws_char(name.back()))) name = trim_lws(name);
    const HeaderId id = header_id(name);
    // A name header_id() knows is a token; only the others need the check.
    if (id == HeaderId::kOther && (name.empty() || !all_of(name, is_token_char))) {
      return fail(ErrorCode::kBadHeader, "header name is not a token", content);
    }
    const std::string_view value(content.data() + colon + 1, content.size() - colon - 1);
    msg_.headers.push_back(HeaderField{id, name, trim_lws(value), line});
    ++header_count;
  }
  if (first_line) return fail(ErrorCode::kTruncated, "no start line");
  // A datagram is complete as received: if it ends right after a header line, the empty line
  // is taken as missing rather than the message as cut short (RFC 4475 baddn has none).
  if (!ended && !(opt_.framing == Framing::kDatagram && pos == input_.size() &&
                  !msg_.headers.empty())) {
    return fail(ErrorCode::kTruncated, "header section does not end with an empty line");
  }

  for (const HeaderField& h : msg_.headers) {
    if (Failure r = parse_header(h)) return r;
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

Parser::Failure Parser::parse_start_line(std::string_view line) {
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
Parser::Failure Parser::parse_request_line(std::string_view line) {
  const char* const end = line.data() + line.size();
  // The method is a token, so it usually ends at the first SP; found that way it needs no
  // second look.
  std::size_t sp1 =
      static_cast<std::size_t>(skip_while(line.data(), end, is_token_char) - line.data());
  const bool method_is_token = sp1 < line.size() && line[sp1] == ' ';
  if (!method_is_token) sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) {
    return fail(ErrorCode::kBadStartLine, "request line is not 'METHOD URI SIP/2.0'", line);
  }
  const char* const second = find_either(line.data() + sp1 + 1, end, ' ', ' ');
  if (second == end) {
    return fail(ErrorCode::kBadStartLine, "request line is not 'METHOD URI SIP/2.0'", line);
  }
  const auto sp2 = static_cast<std::size_t>(second - line.data());
  msg_.method_text = line.substr(0, sp1);
  const std::string_view uri_text = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!method_is_token && !all_of(msg_.method_text, is_token_char)) {
    return fail(ErrorCode::kBadStartLine, "method is not a token", msg_.method_text);
  }
  if (uri_text.empty()) {
    return fail(ErrorCode::kBadStartLine, "extra whitespace in the request line", line);
  }
  const bool sip_2_0 = version == "SIP/2.0";  // the usual version, checked in one compare
  if (!sip_2_0 && !all_of(version, [](char c) { return c != ' ' && c != '\t'; })) {
    return fail(ErrorCode::kBadStartLine, "whitespace in the request line after the URI", line);
  }
  if (uri_text.front() == '<') {
    return fail(ErrorCode::kBadUri, "Request-URI must not be enclosed in <>", uri_text);
  }
  msg_.method = method_from_token(msg_.method_text);
  if (Failure r = parse_uri_in(uri_text, msg_.request_uri, "malformed Request-URI")) return r;
  // RFC 3261 §19.1.1: headers are not allowed in a Request-URI. Rejecting them (RFC 4475
  // escruri) guarantees an escaped Route can never turn into a real one.
  if (msg_.request_uri.has_headers) {
    return fail(ErrorCode::kBadUri, "Request-URI must not contain headers ('?')", uri_text);
  }
  if (sip_2_0) return nullptr;
  if (auto r = check_version(version, ErrorCode::kBadStartLine); !r) return fail(r.error());
  return nullptr;
}

// Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF. An empty reason phrase is
// valid (RFC 4475 noreason); a missing SP before it is tolerated.
Parser::Failure Parser::parse_status_line(std::string_view line) {
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    return fail(ErrorCode::kBadStartLine, "status line is not 'SIP/2.0 CODE REASON'", line);
  }
  if (auto r = check_version(line.substr(0, sp1), ErrorCode::kBadStartLine); !r) {
    return fail(r.error());
  }
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
  return nullptr;
}

Parser::Failure Parser::parse_header(const HeaderField& h) {
  const std::string_view v = h.value;
  const auto bad = [&](const char* what) { return fail(ErrorCode::kBadHeaderValue, what, v); };
  switch (h.id) {
    case HeaderId::kVia: {
      Failure r = nullptr;
      const bool ok = for_each_element(v, [&](std::string_view e) {
        r = parse_via(e);
        return r == nullptr;
      });
      if (r != nullptr) return r;
      if (!ok) return bad("empty element in Via");
      return nullptr;
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
        return nullptr;
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
      Failure r = nullptr;
      const bool ok = for_each_element(v, [&](std::string_view e) {
        list.emplace_back();
        r = parse_name_addr(e, list.back());
        return r == nullptr;
      });
      if (r != nullptr) return r;
      if (!ok) return bad("empty element in an address list");
      return nullptr;
    }
    case HeaderId::kCallId:
      if (!msg_.call_id.empty()) {
        return fail(ErrorCode::kDuplicateHeader, "more than one Call-ID header", v);
      }
      // callid = word [ "@" word ]: no whitespace inside.
      if (v.empty() || !all_visible(v)) return bad("malformed Call-ID");
      msg_.call_id = v;
      return nullptr;
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
      return nullptr;
    }
    case HeaderId::kExpires:
    case HeaderId::kMinExpires: {
      std::int64_t& field = h.id == HeaderId::kExpires ? msg_.expires : msg_.min_expires;
      if (field >= 0) return fail(ErrorCode::kDuplicateHeader, "Expires header repeated", v);
      std::uint64_t n = 0;
      // RFC 3261 §20.19: delta-seconds; larger values than 2^32-1 are taken as 2^32-1.
      if (!parse_decimal_clamped(v, kMaxUint32, n)) return bad("Expires is not delta-seconds");
      field = static_cast<std::int64_t>(n);
      return nullptr;
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
      return nullptr;
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
      if (Failure r = parse_header_params(s, params, "malformed Content-Type parameter")) {
        return r;
      }
      msg_.content_type = v;
      return nullptr;
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
      return nullptr;
    case HeaderId::kServer:
      msg_.server = v;
      return nullptr;
    default:
      return nullptr;  // kept verbatim
  }
}

// CSeq = 1*DIGIT LWS Method, the number at most 2^32-1 (RFC 3261 §20.16, RFC 4475 scalar02).
Parser::Failure Parser::parse_cseq(std::string_view v) {
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
  return nullptr;
}

// via-parm = sent-protocol LWS sent-by *( SEMI via-params ), with SLASH and COLON allowing
// whitespace around them (RFC 3261 §20.42, §25.1; RFC 4475 wsinv).
Parser::Failure Parser::parse_via(std::string_view element) {
  const auto bad = [&](const char* what) {
    return fail(ErrorCode::kBadHeaderValue, what, element);
  };
  Via via;
  via.text = element;
  Scanner s(element);
  if (element.starts_with("SIP/2.0/")) {
    s = Scanner(element.substr(8));  // the usual spelling, checked in one compare
  } else {
    const std::string_view protocol = s.token();
    s.skip_lws();
    if (!s.consume('/')) return bad("Via sent-protocol is not SIP/2.0/TRANSPORT");
    s.skip_lws();
    const std::string_view version = s.token();
    s.skip_lws();
    if (!s.consume('/')) return bad("Via sent-protocol is not SIP/2.0/TRANSPORT");
    if (!token_iequals(protocol, "sip") || version != "2.0") {
      return bad("Via sent-protocol is not SIP/2.0/TRANSPORT");
    }
  }
  s.skip_lws();
  via.transport = s.token();
  if (via.transport.empty()) return bad("Via sent-protocol is not SIP/2.0/TRANSPORT");
  if (!s.skip_lws()) return bad("Via has no space between protocol and sent-by");
  // sent-by = host [ COLON port ]
  if (s.peek() == '[') {
    std::string_view host_text = s.take_until(']');
    if (!s.consume(']')) return bad("Via host has an unterminated IPv6 reference");
    host_text = std::string_view(host_text.data(), host_text.size() + 1);  // with ']'
    if (!parse_host(host_text, via.host, via.host_kind)) {
      return bad("Via sent-by host is malformed");
    }
  } else {
    const std::string_view host_text = s.take_while(is_host_char);
    if (!parse_host_name(host_text, via.host, via.host_kind)) {
      return bad("Via sent-by host is malformed");
    }
  }
  s.skip_lws();
  if (s.consume(':')) {
    s.skip_lws();
    if (!valid_port(s.take_while(is_digit), via.port)) return bad("Via port is out of range");
    via.has_port = true;
  }
  // The parameters a proxy needs are picked out while the list is read. A fault in them is
  // reported only once the whole list is known to be well-formed, as a syntax error comes first.
  const char* param_error = nullptr;
  const auto on_param = [&](const Param& p) {
    if (param_error != nullptr) return;
    if (token_iequals(p.name, "branch")) {
      if (!p.has_value || p.value.empty()) param_error = "Via branch parameter has no value";
      via.branch = p.value;
    } else if (token_iequals(p.name, "received")) {
      via.received = p.value;
    } else if (token_iequals(p.name, "maddr")) {
      via.maddr = p.value;
    } else if (token_iequals(p.name, "rport")) {
      via.has_rport = true;
      if (p.has_value && !valid_port(p.value, via.rport)) param_error = "Via rport is not a port";
    }
  };
  if (Failure r = parse_header_params(s, via.params, "malformed Via parameter", on_param)) {
    return r;
  }
  if (param_error != nullptr) return bad(param_error);
  msg_.via.push_back(via);
  return nullptr;
}

// *( SEMI generic-param ), generic-param = token [ EQUAL gen-value ],
// gen-value = token / host / quoted-string. On success `s` is at its end. `on_param` sees each
// parameter as it is read, as iterating over `out` afterwards would (a quoted value keeps its
// quotes), which spares callers that look for particular parameters a second pass.
template <typename OnParam>
Parser::Failure Parser::parse_header_params(Scanner& s, ParamList& out, const char* what,
                                            OnParam&& on_param) {
  s.skip_lws();
  const char* begin = s.position();
  while (!s.at_end()) {
    if (!s.consume(';')) return fail(ErrorCode::kBadHeaderValue, what, s.rest());
    s.skip_lws();
    Param param;
    param.name = s.token();
    if (param.name.empty()) return fail(ErrorCode::kBadHeaderValue, what, s.rest());
    s.skip_lws();
    if (s.consume('=')) {
      s.skip_lws();
      if (s.peek() == '"') {
        param.value = s.quoted_string();
        if (param.value.empty()) {
          return fail(ErrorCode::kBadHeaderValue, "unterminated quoted string", s.rest());
        }
      } else {
        param.value = s.take_while(is_param_value_char);
        if (param.value.empty()) return fail(ErrorCode::kBadHeaderValue, what, s.rest());
      }
      param.has_value = true;
      s.skip_lws();
    }
    on_param(param);
  }
  out = ParamList(std::string_view(begin, static_cast<std::size_t>(s.position() - begin)));
  return nullptr;
}

// (name-addr / addr-spec) *( SEMI param ) (RFC 3261 §20.10, §20.20).
// name-addr = [ display-name ] LAQUOT addr-spec RAQUOT, display-name = *(token LWS) / quoted.
Parser::Failure Parser::parse_name_addr(std::string_view element, NameAddr& out) {
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
  } else if (s.peek() == '<') {
    out.display_name = std::string_view(s.position(), 0);  // what the loop below would leave
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
    uri_text = s.take_until_fast('>');
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
  if (Failure r = parse_uri_in(uri_text, out.uri, "malformed URI in address")) return r;
  return parse_header_params(s, out.params, "malformed address parameter");
}

namespace {
// The AuthField member for a Digest parameter name (a token, compared case-insensitively), or
// nullptr. The length leaves at most three candidates.
std::string_view* digest_slot(AuthField& a, std::string_view name) {
  switch (name.size()) {
    case 2:
      if (token_iequals(name, "nc")) return &a.nc;
      break;
    case 3:
      if (token_iequals(name, "uri")) return &a.uri;
      if (token_iequals(name, "qop")) return &a.qop;
      break;
    case 5:
      if (token_iequals(name, "realm")) return &a.realm;
      if (token_iequals(name, "nonce")) return &a.nonce;
      if (token_iequals(name, "stale")) return &a.stale;
      break;
    case 6:
      if (token_iequals(name, "cnonce")) return &a.cnonce;
      if (token_iequals(name, "opaque")) return &a.opaque;
      if (token_iequals(name, "domain")) return &a.domain;
      break;
    case 8:
      if (token_iequals(name, "username")) return &a.username;
      if (token_iequals(name, "response")) return &a.response;
      break;
    case 9:
      if (token_iequals(name, "algorithm")) return &a.algorithm;
      break;
    default:
      break;
  }
  return nullptr;
}
}  // namespace

// credentials / challenge = auth-scheme LWS auth-param *(COMMA auth-param)
// (RFC 3261 §25.1, RFC 7616 §3.3-3.4). Non-Digest schemes are kept unparsed.
Parser::Failure Parser::parse_auth(std::string_view value, AuthField& out) {
  const auto bad = [&](const char* what) { return fail(ErrorCode::kBadHeaderValue, what, value); };
  out.text = value;
  Scanner s(value);
  out.scheme = s.token();
  if (out.scheme.empty()) return bad("authorization scheme is not a token");
  s.skip_lws();
  out.params = s.rest();
  // out.is_digest(), knowing the scheme is a token:
  if (!token_iequals(out.scheme, "digest")) return nullptr;
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
    if (std::string_view* slot = digest_slot(out, name); slot != nullptr) {
      *slot = v;
    } else if (token_iequals(name, "userhash")) {
      out.userhash = iequals(v, "true");
    }
    s.skip_lws();
    if (s.at_end()) break;
    if (!s.consume(',')) return bad("Digest parameters not separated by ','");
  }
  return nullptr;
}

// Comma-separated tokens: option tags (Require, Supported, ...) and methods (Allow).
Parser::Failure Parser::parse_tokens(std::string_view value, std::vector<std::string_view>& out,
                                     bool allow_empty) {
  if (value.empty()) {
    if (allow_empty) return nullptr;
    return fail(ErrorCode::kBadHeaderValue, "option-tag list is empty", value);
  }
  // One pass: LWS token LWS, then ',' or the end. (Same as splitting on ',' and checking that
  // each trimmed element is a non-empty token, since a token holds no ',' or whitespace.)
  Scanner s(value);
  bool ok = true;
  while (ok) {
    s.skip_lws();
    const std::string_view token = s.token();
    s.skip_lws();
    ok = !token.empty() && (s.at_end() || s.peek() == ',');
    if (ok) out.push_back(token);
    if (!s.consume(',')) break;
  }
  if (!ok) return fail(ErrorCode::kBadHeaderValue, "malformed token list", value);
  return nullptr;
}

// What every receiver checks before acting (RFC 3261 §8.2.2, §8.1.1).
Parser::Failure Parser::check_consistency() {
  if (msg_.via.empty()) return fail(ErrorCode::kMissingHeader, "Via header missing");
  if (!msg_.has_from) return fail(ErrorCode::kMissingHeader, "From header missing");
  if (!msg_.has_to) return fail(ErrorCode::kMissingHeader, "To header missing");
  if (msg_.call_id.empty()) return fail(ErrorCode::kMissingHeader, "Call-ID header missing");
  if (!msg_.has_cseq) return fail(ErrorCode::kMissingHeader, "CSeq header missing");
  if (msg_.is_request() && !bytes_equal(msg_.cseq.method_text, msg_.method_text)) {
    return fail(ErrorCode::kInconsistent, "CSeq method differs from the request method",
                msg_.cseq.method_text);
  }
  return nullptr;
}

Result<void> parse(std::string_view input, Message& out, const ParseOptions& options) {
  Parser parser(input, out, options);
  if (const Error* error = parser.run()) return *error;
  return {};
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
