#include "sip/uri.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "sip/scanner.h"

namespace sip {
namespace {

using namespace std::string_view_literals;

// ---------------------------------------------------------------------------------------------
// Character classes, RFC 3261 §25.1 and RFC 3966 §3. One table lookup per byte keeps the
// scanners branch-light; '%' is in no class because escapes are checked separately.

enum CharClass : std::uint16_t {
  kAlpha = 1U << 0,
  kDigit = 1U << 1,
  kHex = 1U << 2,
  kMark = 1U << 3,           // mark: "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
  kUserExtra = 1U << 4,      // user-unreserved: "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
  kPasswordExtra = 1U << 5,  // password: "&" / "=" / "+" / "$" / ","
  kParamExtra = 1U << 6,     // param-unreserved: "[" / "]" / "/" / ":" / "&" / "+" / "$"
  kHnvExtra = 1U << 7,       // hnv-unreserved: "[" / "]" / "/" / "?" / ":" / "+" / "$"
  kSchemeExtra = 1U << 8,    // scheme: "+" / "-" / "."
  kReserved = 1U << 9,       // RFC 2396 §2.2 reserved: ";/?:@&=+$,"
  kVisualSep = 1U << 10,     // RFC 3966 visual-separator: "-" / "." / "(" / ")"
  kOpaqueBad = 1U << 11,     // never in any URI: CTL, SP, "<", ">", non-ASCII
  kHostPunct = 1U << 12,     // hostname: "-" / "."
};

constexpr std::uint16_t kAlnum = kAlpha | kDigit;
constexpr std::uint16_t kUnreserved = kAlnum | kMark;
constexpr std::uint16_t kUserChars = kUnreserved | kUserExtra;
constexpr std::uint16_t kPasswordChars = kUnreserved | kPasswordExtra;
constexpr std::uint16_t kParamChars = kUnreserved | kParamExtra;
constexpr std::uint16_t kHeaderChars = kUnreserved | kHnvExtra;
constexpr std::uint16_t kUricChars = kUnreserved | kReserved;  // RFC 3966 isub: 1*uric

constexpr std::array<std::uint16_t, 256> make_classes() {
  std::array<std::uint16_t, 256> t{};
  auto add = [&t](std::string_view chars, std::uint16_t bit) {
    for (char c : chars) t[static_cast<unsigned char>(c)] |= bit;
  };
  for (int c = 0; c < 256; ++c) {
    std::uint16_t bits = 0;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) bits |= kAlpha;
    if (c >= '0' && c <= '9') bits |= kDigit | kHex;
    if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) bits |= kHex;
    if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>') bits |= kOpaqueBad;
    t[c] = bits;
  }
  add("-_.!~*'()", kMark);
  add("&=+$,;?/", kUserExtra);
  add("&=+$,", kPasswordExtra);
  add("[]/:&+$", kParamExtra);
  add("[]/?:+$", kHnvExtra);
  add("+-.", kSchemeExtra);
  add(";/?:@&=+$,", kReserved);
  add("-.()", kVisualSep);
  add("-.", kHostPunct);
  return t;
}
constexpr std::array<std::uint16_t, 256> kClasses = make_classes();

bool in(char c, std::uint16_t cls) {
  return (kClasses[static_cast<unsigned char>(c)] & cls) != 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

bool starts_with_escape(std::string_view s, std::size_t i) {
  return s.size() - i >= 3 && s[i] == '%' && in(s[i + 1], kHex) && in(s[i + 2], kHex);
}

Error bad_uri(const char* what, std::string_view where) {
  return Error{ErrorCode::kBadUri, what, where};
}

// The error for a byte that a component's grammar does not allow. Whitespace, controls and
// angle brackets get their own message wherever they appear: they are what a mangled or
// hostile message most often carries (RFC 4475 §3.1.2.7, §3.1.2.8).
Error bad_char(std::string_view component, std::size_t pos, const char* what) {
  const char c = component[pos];
  if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
    what = "whitespace in URI";
  } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
    what = "control character in URI";
  } else if (c == '<' || c == '>') {
    what = "angle bracket in URI";
  }
  return bad_uri(what, component.substr(pos));
}

// Index of the first byte of `s` at or after `i` that is neither in `allowed` nor the start of
// a well-formed escape ("%" HEXDIG HEXDIG, RFC 3261 §25.1; %00 is as valid as any), or s.size().
// Every URI component is scanned by this loop, so it is kept small enough to inline: one table
// lookup per byte, and the escape test only on the byte that leaves the class.
inline std::size_t scan_escaped(std::string_view s, std::size_t i, std::uint16_t allowed) {
  const char* const end = s.data() + s.size();
  const char* p = s.data() + i;
  while (true) {
    p = skip_while(p, end, [allowed](char c) { return in(c, allowed); });
    if (end - p < 3 || *p != '%' || !in(p[1], kHex) || !in(p[2], kHex)) break;
    p += 3;
  }
  return static_cast<std::size_t>(p - s.data());
}

// The error for the byte s[pos] that stopped a scan where the component may not end: a
// malformed escape or a character the component does not allow.
Error stop_error(std::string_view s, std::size_t pos, const char* escape_what,
                 const char* char_what) {
  if (s[pos] == '%') return bad_uri(escape_what, s.substr(pos, 3));
  return bad_char(s, pos, char_what);
}

// Checks that all of `s` is *( allowed / escaped ).
const Error* check_escaped(std::string_view s, std::uint16_t allowed, const char* escape_what,
                           const char* char_what, Error* out) {
  const std::size_t stop = scan_escaped(s, 0, allowed);
  if (stop == s.size()) return nullptr;
  *out = stop_error(s, stop, escape_what, char_what);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Hosts.

// RFC 3261 §25.1 IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT, each part
// limited to 0..255 as RFC 5954 §4.1 corrects.
bool parse_ipv4(std::string_view s, std::array<std::uint8_t, 4>* out) {
  const char* p = s.data();
  const char* const end = p + s.size();
  for (std::size_t part = 0; part < 4; ++part) {
    if (part > 0) {
      if (p == end || *p != '.') return false;
      ++p;
    }
    const char* const start = p;
    unsigned value = 0;
    while (p != end && p - start < 3 && in(*p, kDigit)) {
      value = value * 10 + static_cast<unsigned>(*p - '0');
      ++p;
    }
    if (p == start || value > 255) return false;
    (*out)[part] = static_cast<std::uint8_t>(value);
  }
  return p == end;
}

// RFC 3261 §25.1 IPv6address (the RFC 4291 §2.2 text forms): up to eight hex4 groups, at most
// one "::" standing for one or more zero groups, and optionally a trailing IPv4address that
// counts as two groups. Zone identifiers are not part of the SIP grammar.
bool parse_ipv6(std::string_view s, std::array<std::uint8_t, 16>* out) {
  std::array<std::uint16_t, 8> groups{};
  std::size_t count = 0;
  constexpr std::size_t kNoGap = 9;  // "::" after all eight groups is a gap at 8, and invalid
  std::size_t gap = kNoGap;          // group index where "::" stands
  std::size_t i = 0;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    gap = 0;
    i = 2;
  } else if (!s.empty() && s[0] == ':') {
    return false;
  }
  while (i < s.size()) {
    if (count == 8) return false;
    const std::size_t start = i;
    unsigned value = 0;
    while (i < s.size() && i - start < 4 && in(s[i], kHex)) {
      value = value * 16 + static_cast<unsigned>(hex_value(s[i]));
      ++i;
    }
    if (i < s.size() && s[i] == '.') {
      // Embedded IPv4 (e.g. ::ffff:192.0.2.1) must be the last thing and needs two groups.
      std::array<std::uint8_t, 4> v4{};
      if (count > 6 || !parse_ipv4(s.substr(start), &v4)) return false;
      groups[count++] = static_cast<std::uint16_t>(v4[0] << 8 | v4[1]);
      groups[count++] = static_cast<std::uint16_t>(v4[2] << 8 | v4[3]);
      i = s.size();
      break;
    }
    if (i == start) return false;
    groups[count++] = static_cast<std::uint16_t>(value);
    if (i == s.size()) break;
    if (s[i] != ':') return false;  // a fifth hex digit or a stray character
    ++i;
    if (i < s.size() && s[i] == ':') {
      if (gap != kNoGap) return false;  // a second "::"
      gap = count;
      ++i;
    } else if (i == s.size()) {
      return false;  // a single trailing ':'
    }
  }
  if (gap == kNoGap ? count != 8 : count > 7) return false;

  std::array<std::uint16_t, 8> full{};
  const std::size_t head = gap == kNoGap ? count : gap;
  const std::size_t tail = count - head;
  for (std::size_t k = 0; k < head; ++k) full[k] = groups[k];
  for (std::size_t k = 0; k < tail; ++k) full[8 - tail + k] = groups[head + k];
  for (std::size_t k = 0; k < 8; ++k) {
    (*out)[2 * k] = static_cast<std::uint8_t>(full[k] >> 8);
    (*out)[2 * k + 1] = static_cast<std::uint8_t>(full[k] & 0xff);
  }
  return true;
}

// RFC 3261 §25.1: hostname = *( domainlabel "." ) toplabel [ "." ], where a domainlabel is
// alphanumerics and inner hyphens and the toplabel starts with a letter (which is what tells a
// name from an IPv4 address).
const Error* check_hostname(std::string_view host, Error* out) {
  std::string_view name = host;
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) {
    *out = bad_uri("URI host is not a valid hostname", host);
    return out;
  }
  std::size_t label_start = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i < name.size() && name[i] != '.') {
      if (!in(name[i], kAlnum) && name[i] != '-') {
        *out = bad_char(host, i, "invalid character in URI host");
        return out;
      }
      continue;
    }
    if (i == label_start) {
      *out = bad_uri("empty label in URI host", host);
      return out;
    }
    if (name[label_start] == '-' || name[i - 1] == '-') {
      *out = bad_uri("URI host label starts or ends with '-'", host);
      return out;
    }
    if (i == name.size() && !in(name[label_start], kAlpha)) {
      *out = bad_uri("URI host top label does not start with a letter", host);
      return out;
    }
    label_start = i + 1;
  }
  return nullptr;
}

// Classifies and checks a host written without brackets (hostname or IPv4address).
const Error* check_host(std::string_view host, HostKind* kind, Error* out) {
  bool numeric = true;
  for (char c : host) {
    if (!in(c, kDigit) && c != '.') {
      numeric = false;
      break;
    }
  }
  if (numeric) {
    std::array<std::uint8_t, 4> v4{};
    if (!parse_ipv4(host, &v4)) {
      *out = bad_uri("bad IPv4 address in URI host", host);
      return out;
    }
    *kind = HostKind::kIPv4;
    return nullptr;
  }
  *kind = HostKind::kName;
  return check_hostname(host, out);
}

// The hostname / IPv4address characters (alphanumerics, '-', '.') at the front of `s`, in one
// pass: returns where they end, and sets *well_formed when they are a hostname that
// check_hostname() accepts (non-empty labels not starting or ending with '-', a top label
// starting with a letter, one optional trailing '.'). Anything else, IPv4 addresses included,
// is left to check_host(), which classifies it and names the fault; doing the label checks here
// saves a second and third pass over every host.
std::size_t scan_hostname(std::string_view s, bool* well_formed) {
  const char* const begin = s.data();
  const char* const end = begin + s.size();
  const char* p = begin;
  const char* label = begin;       // start of the current label
  const char* prev_label = begin;  // start of the label before it
  bool ok = true;
  while (true) {
    p = skip_while(p, end, [](char c) { return in(c, kAlnum); });  // the bulk of a host
    if (p == end || !in(*p, kHostPunct)) break;
    if (*p == '.') {
      ok = ok && p != label && p[-1] != '-';  // label empty or ending with '-'
      prev_label = label;
      label = p + 1;
    } else {
      ok = ok && p != label;  // label starting with '-'
    }
    ++p;
  }
  // The top label is the last one, or the one before a trailing '.'.
  const char* top = label;
  if (label == p) {
    top = prev_label;
  } else {
    ok = ok && p[-1] != '-';
  }
  *well_formed = ok && top < p && in(*top, kAlpha);
  return static_cast<std::size_t>(p - begin);
}

// ---------------------------------------------------------------------------------------------
// sip: and sips: (RFC 3261 §19.1.1, §25.1)

// True if rest[i] ends a hostport: the end, uri-parameters or headers.
bool ends_hostport(std::string_view rest, std::size_t i) {
  return i == rest.size() || rest[i] == ';' || rest[i] == '?';
}

// One pass over the text after "sip:", each component scanned once with the table; the byte
// that stops a component's scan must be one that may follow it.
const Error* parse_sip(std::string_view rest, Uri* uri, Error* out) {
  // userinfo = ( user / telephone-subscriber ) [ ":" password ] "@". Neither user nor password
  // may hold a raw '@', and neither may anything after the host (paramchar, hnv-unreserved and
  // hostname all exclude it), so the first '@' is the only one that can end the userinfo. The
  // user part may hold ';' and '?' (RFC 4475 §3.1.1.9 semiuri, §3.1.1.2 intmeth), so looking
  // for ';' or '?' first would cut it.
  if (const void* at = std::memchr(rest.data(), '@', rest.size()); at != nullptr) {
    const auto at_pos = static_cast<std::size_t>(static_cast<const char*>(at) - rest.data());
    const std::string_view userinfo = rest.substr(0, at_pos);
    const std::size_t user_end = scan_escaped(userinfo, 0, kUserChars);
    uri->user = userinfo.substr(0, user_end);
    uri->has_user = true;
    if (user_end < userinfo.size() && userinfo[user_end] != ':') {
      *out = stop_error(userinfo, user_end, "bad %-escape in URI user part",
                        "invalid character in URI user part");
      return out;
    }
    if (user_end == 0) {
      *out = bad_uri("URI user part is empty", rest);
      return out;
    }
    if (user_end < userinfo.size()) {
      uri->password = userinfo.substr(user_end + 1);
      uri->has_password = true;
      if (check_escaped(uri->password, kPasswordChars, "bad %-escape in URI password",
                        "invalid character in URI password", out) != nullptr) {
        return out;
      }
    }
    rest = rest.substr(at_pos + 1);
  }

  // host = hostname / IPv4address / IPv6reference
  std::size_t i = 0;
  if (!rest.empty() && rest.front() == '[') {
    i = 1;
    while (i < rest.size() && (in(rest[i], kHex) || rest[i] == ':' || rest[i] == '.')) ++i;
    if (ends_hostport(rest, i)) {
      *out = bad_uri("unterminated IPv6 reference in URI host", rest.substr(0, i));
      return out;
    }
    uri->host = rest.substr(1, i - 1);
    uri->host_kind = HostKind::kIPv6;
    std::array<std::uint8_t, 16> v6{};
    if (rest[i] != ']' || !parse_ipv6(uri->host, &v6)) {
      *out = bad_uri("bad IPv6 address in URI host", rest.substr(0, i + 1));
      return out;
    }
    ++i;
    if (!ends_hostport(rest, i) && rest[i] != ':') {
      *out = bad_char(rest, i, "unexpected character after URI host");
      return out;
    }
  } else {
    bool well_formed = false;
    i = scan_hostname(rest, &well_formed);
    if (!ends_hostport(rest, i) && rest[i] != ':') {
      *out = bad_char(rest, i, "invalid character in URI host");
      return out;
    }
    uri->host = rest.substr(0, i);
    if (uri->host.empty()) {
      *out = bad_uri("URI host is empty", uri->text);
      return out;
    }
    std::array<std::uint8_t, 4> v4{};
    if (well_formed) {
      uri->host_kind = HostKind::kName;
    } else if (parse_ipv4(uri->host, &v4)) {
      uri->host_kind = HostKind::kIPv4;  // what check_host() finds for a valid dotted quad
    } else if (check_host(uri->host, &uri->host_kind, out) != nullptr) {
      return out;  // check_host() names the fault
    }
  }

  // port = 1*DIGIT, and it must fit the 16 bits a port has.
  if (i < rest.size() && rest[i] == ':') {
    const std::size_t start = ++i;
    while (i < rest.size() && in(rest[i], kDigit)) ++i;
    if (!ends_hostport(rest, i)) {
      *out = bad_char(rest, i, "invalid character in URI port");
      return out;
    }
    if (i == start) {
      *out = bad_uri("URI port is empty", rest.substr(start - 1));
      return out;
    }
    std::uint32_t port = 0;
    for (std::size_t k = start; k < i; ++k) {
      // Stop before the value can overflow, however many digits there are.
      port = port * 10 + static_cast<std::uint32_t>(rest[k] - '0');
      if (port > 65535) {
        *out = bad_uri("URI port out of range", rest.substr(start, i - start));
        return out;
      }
    }
    uri->port = static_cast<std::uint16_t>(port);
    uri->has_port = true;
  }

  // uri-parameters = *( ";" uri-parameter ), uri-parameter = pname [ "=" pvalue ] with
  // pname = pvalue = 1*paramchar. The specific parameters (transport, user, ...) are all
  // instances of other-param as far as syntax goes.
  const std::size_t params_start = i;
  while (i < rest.size() && rest[i] == ';') {
    const std::size_t name_start = ++i;
    i = scan_escaped(rest, i, kParamChars);
    if (!ends_hostport(rest, i) && rest[i] != '=') {
      *out = stop_error(rest, i, "bad %-escape in URI parameter",
                        "invalid character in URI parameter");
      return out;
    }
    if (i == name_start) {
      *out = bad_uri("empty URI parameter name", rest.substr(name_start - 1));
      return out;
    }
    if (i < rest.size() && rest[i] == '=') {
      const std::size_t value_start = ++i;
      i = scan_escaped(rest, i, kParamChars);
      if (!ends_hostport(rest, i)) {
        *out = stop_error(rest, i, "bad %-escape in URI parameter",
                          "invalid character in URI parameter");
        return out;
      }
      if (i == value_start) {
        *out = bad_uri("empty URI parameter value", rest.substr(name_start, i - name_start));
        return out;
      }
    }
  }
  if (i > params_start) uri->params = ParamList(rest.substr(params_start, i - params_start));

  // headers = "?" header *( "&" header ), header = hname "=" hvalue, hname = 1*hchar,
  // hvalue = *hchar. Checked only for syntax: what a header in a URI may do is the caller's
  // decision (RFC 4475 §3.1.2.11: never turn them into real headers of a request).
  if (i < rest.size()) {  // necessarily '?'
    const std::string_view headers = rest.substr(i + 1);
    uri->headers = headers;
    uri->has_headers = true;
    if (headers.empty()) {
      *out = bad_uri("URI headers are empty", rest.substr(i));
      return out;
    }
    std::size_t k = 0;
    while (true) {
      const std::size_t name_start = k;
      k = scan_escaped(headers, k, kHeaderChars);
      if (k == headers.size() || headers[k] == '&') {
        *out = bad_uri("URI header has no '='",
                       k == name_start ? headers : headers.substr(name_start, k - name_start));
        return out;
      }
      if (headers[k] != '=') {
        *out =
            stop_error(headers, k, "bad %-escape in URI header", "invalid character in URI header");
        return out;
      }
      if (k == name_start) {
        *out = bad_uri("empty URI header name", headers.substr(name_start));
        return out;
      }
      k = scan_escaped(headers, k + 1, kHeaderChars);
      if (k == headers.size()) break;
      if (headers[k] != '&') {
        *out =
            stop_error(headers, k, "bad %-escape in URI header", "invalid character in URI header");
        return out;
      }
      ++k;
    }
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// tel: (RFC 3966 §3)

// global-number-digits = "+" *phonedigit DIGIT *phonedigit
bool is_global_number(std::string_view s) {
  if (s.empty() || s.front() != '+') return false;
  bool digit = false;
  for (char c : s.substr(1)) {
    if (in(c, kDigit)) {
      digit = true;
    } else if (!in(c, kVisualSep)) {
      return false;
    }
  }
  return digit;
}

// local-number-digits = *phonedigit-hex ( HEXDIG / "*" / "#" ) *phonedigit-hex
bool is_local_number(std::string_view s) {
  bool digit = false;
  for (char c : s) {
    if (in(c, kHex) || c == '*' || c == '#') {
      digit = true;
    } else if (!in(c, kVisualSep)) {
      return false;
    }
  }
  return digit;
}

const Error* parse_tel(std::string_view rest, Uri* uri, Error* out) {
  const std::size_t semi = rest.find(';');
  const std::string_view number = rest.substr(0, semi);
  uri->user = number;
  uri->has_user = true;
  if (number.empty()) {
    *out = bad_uri("tel URI number is empty", uri->text);
    return out;
  }
  const bool global = number.front() == '+';
  if (global ? !is_global_number(number) : !is_local_number(number)) {
    for (std::size_t i = global ? 1 : 0; i < number.size(); ++i) {
      const char c = number[i];
      const bool ok =
          global ? in(c, kDigit | kVisualSep) : in(c, kHex | kVisualSep) || c == '*' || c == '#';
      if (!ok) {
        *out = bad_char(number, i, "invalid character in tel URI number");
        return out;
      }
    }
    *out = bad_uri("tel URI number has no digits", number);
    return out;
  }

  bool has_context = false;
  if (semi != std::string_view::npos) {
    const std::string_view params = rest.substr(semi);
    std::size_t i = 1;
    while (true) {
      std::size_t next = params.find(';', i);
      if (next == std::string_view::npos) next = params.size();
      const std::string_view param = params.substr(i, next - i);
      const std::size_t eq = param.find('=');
      const std::string_view name = param.substr(0, eq);
      // RFC 3966 pname = 1*( alphanum / "-" )
      if (name.empty()) {
        *out = bad_uri("empty tel URI parameter name", params.substr(i - 1));
        return out;
      }
      for (std::size_t k = 0; k < name.size(); ++k) {
        if (!in(name[k], kAlnum) && name[k] != '-') {
          *out = bad_char(name, k, "invalid character in tel URI parameter name");
          return out;
        }
      }
      const std::string_view value =
          eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
      if (eq != std::string_view::npos && value.empty()) {
        *out = bad_uri("empty tel URI parameter value", param);
        return out;
      }
      if (iequals(name, "phone-context"sv)) {
        // context = ";phone-context=" descriptor, descriptor = domainname /
        // global-number-digits (RFC 3966 §3, §5.1.5).
        Error ignored{ErrorCode::kBadUri, ""};
        if (value.empty() || (value.front() == '+' ? !is_global_number(value)
                                                   : check_hostname(value, &ignored) != nullptr)) {
          *out = bad_uri("bad tel URI phone-context", param);
          return out;
        }
        has_context = true;
      } else if (iequals(name, "ext"sv)) {
        // extension = ";ext=" 1*phonedigit
        bool ok = !value.empty();
        for (char c : value) ok = ok && in(c, kDigit | kVisualSep);
        if (!ok) {
          *out = bad_uri("bad tel URI extension", param);
          return out;
        }
      } else if (check_escaped(value, iequals(name, "isub"sv) ? kUricChars : kParamChars,
                               "bad %-escape in tel URI parameter",
                               "invalid character in tel URI parameter", out) != nullptr) {
        return out;
      }
      if (next == params.size()) break;
      i = next + 1;
    }
    uri->params = ParamList(params);
  }
  // RFC 3966 §5.1.5: a local number means nothing without the context that defines it.
  if (!global && !has_context) {
    *out = bad_uri("tel URI local number lacks phone-context", uri->text);
    return out;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Comparison helpers (RFC 3261 §19.1.4, RFC 3966 §4).

// Reads a component one logical character at a time, resolving %HH escapes, so comparisons
// need no allocation. An escaped reserved character comes back as 0x100 | c: RFC 3261 §19.1.4
// makes only characters outside the reserved set equivalent to their escapes, so "%3B" and ";"
// differ.
class EscapedReader {
 public:
  EscapedReader(std::string_view s, bool fold_case, bool skip_separators)
      : s_(s), fold_case_(fold_case), skip_separators_(skip_separators) {}

  // Returns the next character, or -1 at the end.
  int next() {
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (starts_with_escape(s_, i_)) {
        c = static_cast<char>(hex_value(s_[i_ + 1]) * 16 + hex_value(s_[i_ + 2]));
        i_ += 3;
        if (in(c, kReserved)) return 0x100 | static_cast<unsigned char>(c);
      } else {
        ++i_;
      }
      if (skip_separators_ && in(c, kVisualSep)) continue;
      return static_cast<unsigned char>(fold_case_ ? lower(c) : c);
    }
    return -1;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
  bool fold_case_;
  bool skip_separators_;
};

bool has_percent(std::string_view s) {
  return !s.empty() && std::memchr(s.data(), '%', s.size()) != nullptr;
}

bool escaped_equal(std::string_view a, std::string_view b, bool fold_case,
                   bool skip_separators = false) {
  if (!skip_separators && !has_percent(a) && !has_percent(b)) {
    return fold_case ? iequals(a, b) : a == b;  // the common case: nothing to decode
  }
  EscapedReader ra(a, fold_case, skip_separators);
  EscapedReader rb(b, fold_case, skip_separators);
  while (true) {
    const int ca = ra.next();
    if (ca != rb.next()) return false;
    if (ca < 0) return true;
  }
}

// The canonical form escaped_equal() compares by, as a string, for sorting.
std::string canonical(std::string_view s, bool fold_case, bool skip_separators = false) {
  static constexpr char kHexDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  EscapedReader reader(s, fold_case, skip_separators);
  for (int c = reader.next(); c >= 0; c = reader.next()) {
    if (c > 0xff || c == '%') {
      // Reserved characters stay escaped; so does '%', so "%253B" cannot meet "%3B".
      out += '%';
      out += kHexDigits[(c >> 4) & 0xf];
      out += kHexDigits[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

struct ParamRules {
  bool tel;  // RFC 3966 §4: every parameter must be present in both.
};

// Parameters whose absence is meaningful (RFC 3261 §19.1.4: a URI omitting transport, user,
// ttl, method or maddr does not match one that has it, default value or not).
bool must_match(std::string_view name, const ParamRules& rules) {
  if (rules.tel) return true;
  for (std::string_view special : {"transport"sv, "user"sv, "ttl"sv, "method"sv, "maddr"sv}) {
    if (escaped_equal(name, special, true)) return true;
  }
  return false;
}

// RFC 3966 §4 compares numbers digit by digit: visual separators in the extension and in a
// global-number phone-context do not count.
bool compare_as_number(std::string_view name, std::string_view value, const ParamRules& rules) {
  return rules.tel &&
         (escaped_equal(name, "ext"sv, true) ||
          (escaped_equal(name, "phone-context"sv, true) && !value.empty() && value.front() == '+'));
}

bool param_values_equal(const Param& p, const Param& q, const ParamRules& rules) {
  if (p.has_value != q.has_value) return false;
  const bool number = compare_as_number(p.name, p.value, rules);
  return escaped_equal(p.value, q.value, true, number);
}

std::optional<Param> find_escaped(const ParamList& list, std::string_view name) {
  for (const Param& p : list) {
    if (escaped_equal(p.name, name, true)) return p;
  }
  return std::nullopt;
}

// A repeated parameter means nothing in RFC 3261; like ParamList::find(), comparison looks at
// the first occurrence of each name only, which also keeps uri_equal symmetric.
bool is_first_occurrence(const ParamList& list, const Param& p) {
  const std::optional<Param> first = find_escaped(list, p.name);
  return first && first->name.data() == p.name.data();
}

// Quadratic but allocation-free: the common case of a few parameters on each side.
bool params_equal_small(const ParamList& a, const ParamList& b, const ParamRules& rules) {
  for (const Param& p : a) {
    if (!is_first_occurrence(a, p)) continue;
    const std::optional<Param> q = find_escaped(b, p.name);
    if (q ? !param_values_equal(p, *q, rules) : must_match(p.name, rules)) return false;
  }
  for (const Param& q : b) {
    if (must_match(q.name, rules) && !find_escaped(a, q.name)) return false;
  }
  return true;
}

struct CanonicalParam {
  std::string name;
  std::string value;
  bool has_value;
  bool must_match;
  std::size_t order;  // position in the list: the first of equal names is the one compared
};

std::vector<CanonicalParam> canonical_params(const ParamList& list, const ParamRules& rules) {
  std::vector<CanonicalParam> out;
  for (const Param& p : list) {
    out.push_back({canonical(p.name, true),
                   canonical(p.value, true, compare_as_number(p.name, p.value, rules)), p.has_value,
                   must_match(p.name, rules), out.size()});
  }
  std::sort(out.begin(), out.end(), [](const CanonicalParam& x, const CanonicalParam& y) {
    return std::tie(x.name, x.order) < std::tie(y.name, y.order);
  });
  return out;
}

// Same rules as params_equal_small in O(n log n), so that long lists (an attacker's 4 kB of
// ";a;b;c") cannot make a comparison cost milliseconds.
bool params_equal_sorted(const ParamList& a, const ParamList& b, const ParamRules& rules) {
  const std::vector<CanonicalParam> x = canonical_params(a, rules);
  const std::vector<CanonicalParam> y = canonical_params(b, rules);
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < x.size() || j < y.size()) {
    if (j == y.size() || (i < x.size() && x[i].name < y[j].name)) {
      if (x[i].must_match) return false;
      ++i;
    } else if (i == x.size() || y[j].name < x[i].name) {
      if (y[j].must_match) return false;
      ++j;
    } else {
      // Only the first occurrence on each side counts (see is_first_occurrence).
      if (x[i].has_value != y[j].has_value || x[i].value != y[j].value) return false;
      const std::string& name = x[i].name;
      while (j < y.size() && y[j].name == name) ++j;
      while (i + 1 < x.size() && x[i + 1].name == name) ++i;
      ++i;
    }
  }
  return true;
}

bool params_equal(const ParamList& a, const ParamList& b, const ParamRules& rules) {
  if (a.raw() == b.raw()) return true;
  constexpr std::size_t kSmall = 8;
  std::size_t na = 0;
  std::size_t nb = 0;
  for (auto it = a.begin(); it != a.end() && na <= kSmall; ++it) ++na;
  for (auto it = b.begin(); it != b.end() && nb <= kSmall; ++it) ++nb;
  if (na <= kSmall && nb <= kSmall) return params_equal_small(a, b, rules);
  return params_equal_sorted(a, b, rules);
}

// RFC 3261 §19.1.4: header components are never ignored, their order does not matter.
// Names compare case-insensitively; values as written (after unescaping), since §20 gives
// most header values (Subject, Route) case-sensitive content.
std::vector<std::pair<std::string, std::string>> canonical_headers(std::string_view headers) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  while (i <= headers.size()) {
    std::size_t amp = headers.find('&', i);
    if (amp == std::string_view::npos) amp = headers.size();
    const std::string_view header = headers.substr(i, amp - i);
    const std::size_t eq = header.find('=');
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view() : header.substr(eq + 1);
    out.emplace_back(canonical(header.substr(0, eq), true), canonical(value, false));
    i = amp + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool headers_equal(const Uri& a, const Uri& b) {
  if (a.has_headers != b.has_headers) return false;
  if (!a.has_headers || a.headers == b.headers) return true;
  return canonical_headers(a.headers) == canonical_headers(b.headers);
}

bool hosts_equal(const Uri& a, const Uri& b) {
  // RFC 3261 §19.1.4: a name never equals the address it resolves to, so kinds must agree.
  if (a.host_kind != b.host_kind) return false;
  switch (a.host_kind) {
    case HostKind::kIPv4: {
      std::array<std::uint8_t, 4> x{};
      std::array<std::uint8_t, 4> y{};
      return parse_ipv4(a.host, &x) && parse_ipv4(b.host, &y) && x == y;
    }
    case HostKind::kIPv6: {
      // RFC 5118 §4.1: "[::1]" and "[0:0:0:0:0:0:0:1]" are the same address.
      std::array<std::uint8_t, 16> x{};
      std::array<std::uint8_t, 16> y{};
      return parse_ipv6(a.host, &x) && parse_ipv6(b.host, &y) && x == y;
    }
    case HostKind::kName:
    case HostKind::kNone:
      break;
  }
  return iequals(a.host, b.host);
}

bool sip_equal(const Uri& a, const Uri& b) {
  // userinfo is case-sensitive, everything else is not (RFC 3261 §19.1.4).
  return a.has_user == b.has_user && escaped_equal(a.user, b.user, false) &&
         a.has_password == b.has_password && escaped_equal(a.password, b.password, false) &&
         hosts_equal(a, b) && a.has_port == b.has_port && a.port == b.port &&
         params_equal(a.params, b.params, ParamRules{false}) && headers_equal(a, b);
}

// RFC 3966 §4: numbers compare digit by digit (visual separators ignored, hex digits in any
// case), and the parameter sets must be the same.
bool tel_equal(const Uri& a, const Uri& b) {
  return escaped_equal(a.user, b.user, true, true) &&
         params_equal(a.params, b.params, ParamRules{true});
}

}  // namespace

Result<Uri> parse_uri(std::string_view text, std::size_t max_length) {
  if (text.size() > max_length) return Error{ErrorCode::kTooLarge, "URI too long", text};
  Uri uri;
  Error error{ErrorCode::kBadUri, ""};
  if (parse_uri_into(text, &uri, &error) != nullptr) return error;
  return uri;
}

const Error* parse_uri_into(std::string_view text, Uri* out, Error* error) {
  Uri& uri = *out;
  uri.text = text;
  if (text.starts_with("sip:")) {  // nearly every URI: the scheme checked in one compare
    uri.scheme_text = text.substr(0, 3);
    uri.scheme = Scheme::kSip;
    return parse_sip(text.substr(4), &uri, error);
  }
  // RFC 3261 §25.1 (RFC 2396 §3.1): scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
  const char* const scheme_end = skip_while(text.data(), text.data() + text.size(),
                                            [](char c) { return in(c, kAlnum | kSchemeExtra); });
  const auto colon = static_cast<std::size_t>(scheme_end - text.data());
  const auto fail = [error](const Error& e) {
    *error = e;
    return error;
  };
  if (colon == text.size()) return fail(bad_uri("URI has no scheme", text));
  if (text[colon] != ':') return fail(bad_char(text, colon, "invalid character in URI scheme"));
  if (colon == 0) return fail(bad_uri("URI scheme is empty", text));
  if (!in(text[0], kAlpha)) return fail(bad_uri("URI scheme does not start with a letter", text));

  uri.scheme_text = text.substr(0, colon);
  const std::string_view rest = text.substr(colon + 1);
  const bool sip = iequals(uri.scheme_text, "sip"sv);
  if (sip || iequals(uri.scheme_text, "sips"sv)) {
    uri.scheme = sip ? Scheme::kSip : Scheme::kSips;
    return parse_sip(rest, &uri, error);
  }
  if (iequals(uri.scheme_text, "tel"sv)) {
    uri.scheme = Scheme::kTel;
    return parse_tel(rest, &uri, error);
  }
  // absoluteURI: opaque to us, but still one token that cannot hide whitespace, controls or
  // the '<' '>' that delimit it in a header (RFC 3261 §20.10).
  uri.scheme = Scheme::kOther;
  uri.opaque = rest;
  if (rest.empty()) return fail(bad_uri("URI is empty after its scheme", text));
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (in(rest[i], kOpaqueBad)) return fail(bad_char(rest, i, "non-ASCII byte in URI"));
  }
  return nullptr;
}

bool uri_equal(const Uri& a, const Uri& b) {
  if (a.scheme != b.scheme) return false;  // sip never equals sips (RFC 3261 §19.1.4)
  switch (a.scheme) {
    case Scheme::kSip:
    case Scheme::kSips:
      return sip_equal(a, b);
    case Scheme::kTel:
      return tel_equal(a, b);
    case Scheme::kOther:
      break;
  }
  return iequals(a.scheme_text, b.scheme_text) && a.opaque == b.opaque;
}

std::string unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (starts_with_escape(text, i)) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace sip
