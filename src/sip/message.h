// The SIP message model (RFC 3261 §7, §20): a zero-copy view of one request or response.
//
// Every std::string_view in a Message points into the buffer that was parsed; that buffer must
// stay alive and unchanged while the Message (or anything taken from it) is in use. A Message
// is meant to be reused: parse() clears it first but keeps the capacity of its vectors, so a
// worker that parses into the same Message allocates nothing in steady state.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "sip/params.h"
#include "sip/uri.h"

namespace sip {

// Methods the server knows by name. Anything else is kUnknown (method_text keeps the token).
// Methods are case-sensitive (RFC 3261 §7.1): "invite" is an unknown method.
enum class Method : std::uint8_t {
  kUnknown,
  kInvite,
  kAck,
  kBye,
  kCancel,
  kRegister,
  kOptions,
  kInfo,
  kPrack,
  kUpdate,
  kSubscribe,
  kNotify,
  kRefer,
  kMessage,
  kPublish,
};
Method method_from_token(std::string_view token);
std::string_view to_string(Method method);  // "INVITE"; "" for kUnknown

// Headers with typed access or special rules. kOther covers every header kept verbatim.
enum class HeaderId : std::uint8_t {
  kOther,
  kVia,
  kFrom,
  kTo,
  kCallId,
  kCSeq,
  kMaxForwards,
  kContact,
  kRoute,
  kRecordRoute,
  kExpires,
  kMinExpires,
  kContentLength,
  kContentType,
  kContentEncoding,
  kAuthorization,
  kProxyAuthorization,
  kWwwAuthenticate,
  kProxyAuthenticate,
  kRequire,
  kProxyRequire,
  kSupported,
  kUnsupported,
  kAllow,
  kAccept,
  kUserAgent,
  kServer,
  kSubject,
  kEvent,
  kReferTo,
  kAllowEvents,
  kPAssertedIdentity,
  kPPreferredIdentity,
  kRemotePartyId,
  kDate,
  kCount_,  // not a header: the number of ids
};
// Header name (case-insensitive, compact forms such as "v", "f", "t", "i", "m", "l", "c", "k",
// "s", "e", "o", "r", "u", "x" recognised) to id; kOther for anything else.
HeaderId header_id(std::string_view name);
// The canonical spelling, e.g. "Call-ID"; "" for kOther.
std::string_view canonical_name(HeaderId id);

// One header line as it appeared. For a folded header, `value` spans the continuation lines
// (with their CRLF+WSP inside); typed parsers treat that as linear whitespace.
struct HeaderField {
  HeaderId id = HeaderId::kOther;
  std::string_view name;   // as written, e.g. "v" or "MaX-fOrWaRdS"
  std::string_view value;  // leading and trailing whitespace removed
  std::string_view line;   // the whole line(s) including the final CRLF (or LF)
};

// name-addr / addr-spec with header parameters: From, To, Contact, Route, Record-Route,
// P-Asserted-Identity (RFC 3261 §20.10 grammar).
struct NameAddr {
  std::string_view text;          // this element as written (one comma-separated value)
  std::string_view display_name;  // as written; a quoted one keeps its quotes; may be empty
  Uri uri;
  ParamList params;               // header parameters after the URI: tag, expires, q, ...
  bool angle_brackets = false;    // the URI was written inside < >
};

// One Via value (RFC 3261 §20.42), e.g. "SIP/2.0/UDP host:5060;branch=z9hG4bK1;rport".
struct Via {
  std::string_view text;       // this element as written
  std::string_view transport;  // "UDP", "TCP", "TLS", "SCTP", "WS", or any token
  std::string_view host;       // without IPv6 brackets
  HostKind host_kind = HostKind::kName;
  std::uint16_t port = 0;      // valid when has_port
  bool has_port = false;
  ParamList params;
  std::string_view branch;     // value of ;branch (empty if absent)
  std::string_view received;   // value of ;received
  std::string_view maddr;
  bool has_rport = false;      // ;rport present, with or without a value
  std::uint16_t rport = 0;     // its value when it has one
  // RFC 3261 §8.1.1.7: a branch that starts with the magic cookie and has more after it.
  // A branch that is only the cookie (RFC 4475 badbranch) does not count: such requests are
  // matched by the RFC 2543 rules.
  bool rfc3261_branch() const;
};

struct CSeq {
  std::uint32_t number = 0;
  Method method = Method::kUnknown;
  std::string_view method_text;
};

// Authorization / Proxy-Authorization / WWW-Authenticate / Proxy-Authenticate
// (RFC 3261 §25.1, RFC 7616). Digest parameters are picked out; values are the text inside
// the quotes with backslash escapes unresolved (use unquote() on the raw param if needed).
// A scheme other than Digest is kept with its raw parameters only (RFC 4475 regaut01).
struct AuthField {
  std::string_view text;     // the whole header value
  std::string_view scheme;   // "Digest" (compare case-insensitively)
  std::string_view params;   // everything after the scheme, as written
  std::string_view username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc,
      domain, stale;
  bool userhash = false;     // userhash=true (RFC 7616 §3.4.4)
  bool is_digest() const;
};

class Message {
 public:
  // Resets every field; keeps the capacity of the vectors for reuse.
  void clear();

  bool is_request() const { return is_request_; }
  bool is_response() const { return !is_request_; }

  // ---- start line
  std::string_view start_line;  // without its line end
  // requests
  Method method = Method::kUnknown;
  std::string_view method_text;
  Uri request_uri;
  // responses
  int status_code = 0;
  std::string_view reason;

  // ---- every header, in order, including the typed ones
  std::vector<HeaderField> headers;

  // ---- typed headers (filled while parsing; each value element validated)
  std::vector<Via> via;                // topmost first
  NameAddr from, to;
  bool has_from = false, has_to = false;
  std::string_view call_id;
  CSeq cseq;
  bool has_cseq = false;
  int max_forwards = -1;               // -1: absent
  std::vector<NameAddr> contact;       // empty when contact_star
  bool contact_star = false;           // "Contact: *"
  std::vector<NameAddr> route, record_route, p_asserted_identity;
  std::int64_t expires = -1;           // -1: absent; values over 2^32-1 are clamped to it
  std::int64_t min_expires = -1;
  std::int64_t content_length = -1;    // -1: absent
  std::string_view content_type;       // media type with parameters, as written
  std::vector<AuthField> authorization, proxy_authorization, www_authenticate,
      proxy_authenticate;
  // option tags and method lists (comma-separated tokens)
  std::vector<std::string_view> require, proxy_require, supported, unsupported, allow;
  std::string_view user_agent, server;

  std::string_view body;  // exactly Content-Length bytes (or the datagram's rest if absent)
  std::string_view raw;   // the bytes of this message: start line through end of body. Shorter
                          // than the input when a datagram carries trailing bytes (dblreq).

  // First header with this id, or nullptr.
  const HeaderField* find(HeaderId id) const;
  // First header with this name (case-insensitive, compact forms honoured), or nullptr.
  const HeaderField* find(std::string_view name) const;
  // Number of header lines with this id.
  std::size_t count(HeaderId id) const;

 private:
  friend class Parser;
  bool is_request_ = true;
};

}  // namespace sip
