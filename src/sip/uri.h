// SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966): a zero-copy view and comparison.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sip/params.h"
#include "sip/result.h"

namespace sip {

enum class Scheme : std::uint8_t { kSip, kSips, kTel, kOther };
enum class HostKind : std::uint8_t { kNone, kName, kIPv4, kIPv6 };

// A parsed URI. Every view points into the text given to parse_uri, which must outlive it.
// Components are kept exactly as written (still %-escaped); use unescape() or uri_equal()
// to compare them.
struct Uri {
  std::string_view text;         // the whole URI as written
  Scheme scheme = Scheme::kOther;
  std::string_view scheme_text;  // as written, e.g. "SIP" or "soap.beep"
  std::string_view user;         // sip/sips: userinfo user part (may hold ';' or %00, see
                                 // RFC 4475 semiuri, escnull); tel: the telephone-subscriber
                                 // number without its parameters
  std::string_view password;     // sip/sips only
  bool has_user = false;         // '@' present (sip/sips) or tel number present
  bool has_password = false;
  std::string_view host;         // without IPv6 brackets; empty for tel and other schemes
  HostKind host_kind = HostKind::kNone;
  std::uint16_t port = 0;        // valid only when has_port
  bool has_port = false;
  ParamList params;              // ";transport=tcp;lr" (tel: its parameters)
  std::string_view headers;      // after '?', without the '?': "Route=%3Csip:x%3E&Subject=hi"
  bool has_headers = false;
  std::string_view opaque;       // Scheme::kOther: everything after "scheme:"

  // Convenience accessors over params.
  std::optional<std::string_view> param(std::string_view name) const { return params.find(name); }
};

// Parses one URI occupying all of `text` (no surrounding whitespace or angle brackets).
// Grammar: RFC 3261 §25.1 SIP-URI / SIPS-URI (userinfo with escaped chars and user-unreserved,
// hostname / IPv4address / IPv6reference, port 0..65535, uri-parameters, headers), RFC 3966
// telephone-subscriber for tel:, and absoluteURI (scheme ":" 1*non-space) for any other scheme.
// Scheme names are case-insensitive. Fails with ErrorCode::kBadUri naming the component at
// fault; fails with kTooLarge if text is longer than max_length.
Result<Uri> parse_uri(std::string_view text, std::size_t max_length = 4096);

// RFC 3261 §19.1.4 comparison of two sip/sips URIs: scheme must match; user and password
// compared case-sensitively after %-unescaping; host case-insensitively; port, transport,
// user, ttl, method and maddr parameters must match if present in either; other parameters
// must match only if present in both; headers compared as a set. An escaped reserved character
// (%3B) does not equal the character itself. A tel URI compares by its number with visual
// separators ("-", ".", "(", ")") removed and by its parameters (RFC 3966 §4); other schemes
// by scheme name (case-insensitive) and the rest byte for byte.
bool uri_equal(const Uri& a, const Uri& b);

// Decodes %HH escapes. Malformed escapes (a '%' not followed by two hex digits) are kept as
// written. Never stops at a decoded NUL.
std::string unescape(std::string_view text);

}  // namespace sip
