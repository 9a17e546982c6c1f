#include "sip/message.h"

#include <array>

namespace sip {
namespace {

struct MethodName {
  std::string_view text;
  Method method;
};
constexpr std::array<MethodName, 14> kMethods{{
    {"INVITE", Method::kInvite},
    {"ACK", Method::kAck},
    {"BYE", Method::kBye},
    {"CANCEL", Method::kCancel},
    {"REGISTER", Method::kRegister},
    {"OPTIONS", Method::kOptions},
    {"INFO", Method::kInfo},
    {"PRACK", Method::kPrack},
    {"UPDATE", Method::kUpdate},
    {"SUBSCRIBE", Method::kSubscribe},
    {"NOTIFY", Method::kNotify},
    {"REFER", Method::kRefer},
    {"MESSAGE", Method::kMessage},
    {"PUBLISH", Method::kPublish},
}};

struct HeaderName {
  std::string_view name;
  char compact;  // 0 when the header has no compact form (RFC 3261 §7.3.3 and extensions)
  HeaderId id;
};
// Indexed by HeaderId; the order must follow the enum.
constexpr std::array<HeaderName, static_cast<std::size_t>(HeaderId::kCount_)> kHeaders{{
    {"", 0, HeaderId::kOther},
    {"Via", 'v', HeaderId::kVia},
    {"From", 'f', HeaderId::kFrom},
    {"To", 't', HeaderId::kTo},
    {"Call-ID", 'i', HeaderId::kCallId},
    {"CSeq", 0, HeaderId::kCSeq},
    {"Max-Forwards", 0, HeaderId::kMaxForwards},
    {"Contact", 'm', HeaderId::kContact},
    {"Route", 0, HeaderId::kRoute},
    {"Record-Route", 0, HeaderId::kRecordRoute},
    {"Expires", 0, HeaderId::kExpires},
    {"Min-Expires", 0, HeaderId::kMinExpires},
    {"Content-Length", 'l', HeaderId::kContentLength},
    {"Content-Type", 'c', HeaderId::kContentType},
    {"Content-Encoding", 'e', HeaderId::kContentEncoding},
    {"Authorization", 0, HeaderId::kAuthorization},
    {"Proxy-Authorization", 0, HeaderId::kProxyAuthorization},
    {"WWW-Authenticate", 0, HeaderId::kWwwAuthenticate},
    {"Proxy-Authenticate", 0, HeaderId::kProxyAuthenticate},
    {"Require", 0, HeaderId::kRequire},
    {"Proxy-Require", 0, HeaderId::kProxyRequire},
    {"Supported", 'k', HeaderId::kSupported},
    {"Unsupported", 0, HeaderId::kUnsupported},
    {"Allow", 0, HeaderId::kAllow},
    {"Accept", 0, HeaderId::kAccept},
    {"User-Agent", 0, HeaderId::kUserAgent},
    {"Server", 0, HeaderId::kServer},
    {"Subject", 's', HeaderId::kSubject},
    {"Event", 'o', HeaderId::kEvent},
    {"Refer-To", 'r', HeaderId::kReferTo},
    {"Allow-Events", 'u', HeaderId::kAllowEvents},
    {"P-Asserted-Identity", 0, HeaderId::kPAssertedIdentity},
    {"P-Preferred-Identity", 0, HeaderId::kPPreferredIdentity},
    {"Remote-Party-ID", 0, HeaderId::kRemotePartyId},
    {"Date", 0, HeaderId::kDate},
}};

constexpr char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

}  // namespace

Method method_from_token(std::string_view token) {
  for (const auto& m : kMethods) {
    if (m.text == token) return m.method;
  }
  return Method::kUnknown;
}

std::string_view to_string(Method method) {
  for (const auto& m : kMethods) {
    if (m.method == method) return m.text;
  }
  return {};
}

HeaderId header_id(std::string_view name) {
  if (name.size() == 1) {
    const char c = lower(name[0]);
    for (const auto& h : kHeaders) {
      if (h.compact == c) return h.id;
    }
    return HeaderId::kOther;
  }
  // Cheap pre-filter on length and first letter before the case-insensitive compare.
  const char first = lower(name.empty() ? '\0' : name[0]);
  for (const auto& h : kHeaders) {
    if (h.name.size() == name.size() && lower(h.name[0]) == first && iequals(h.name, name)) {
      return h.id;
    }
  }
  return HeaderId::kOther;
}

std::string_view canonical_name(HeaderId id) {
  return kHeaders[static_cast<std::size_t>(id)].name;
}

bool Via::rfc3261_branch() const {
  constexpr std::string_view kCookie = "z9hG4bK";
  return branch.size() > kCookie.size() && branch.substr(0, kCookie.size()) == kCookie;
}

bool AuthField::is_digest() const { return iequals(scheme, "Digest"); }

void Message::clear() {
  // Vectors are cleared, not replaced, so their capacity serves the next parse.
  for (auto* v : {&contact, &route, &record_route, &p_asserted_identity}) v->clear();
  for (auto* v : {&authorization, &proxy_authorization, &www_authenticate, &proxy_authenticate}) {
    v->clear();
  }
  for (auto* v : {&require, &proxy_require, &supported, &unsupported, &allow}) v->clear();
  headers.clear();
  via.clear();
  start_line = {};
  method = Method::kUnknown;
  method_text = {};
  request_uri = Uri();
  status_code = 0;
  reason = {};
  from = NameAddr();
  to = NameAddr();
  has_from = has_to = has_cseq = contact_star = false;
  call_id = {};
  cseq = CSeq();
  max_forwards = -1;
  expires = min_expires = content_length = -1;
  content_type = user_agent = server = body = raw = {};
  is_request_ = true;
}

const HeaderField* Message::find(HeaderId id) const {
  for (const auto& h : headers) {
    if (h.id == id) return &h;
  }
  return nullptr;
}

const HeaderField* Message::find(std::string_view name) const {
  const HeaderId id = header_id(name);
  if (id != HeaderId::kOther) return find(id);
  for (const auto& h : headers) {
    if (h.id == HeaderId::kOther && iequals(h.name, name)) return &h;
  }
  return nullptr;
}

std::size_t Message::count(HeaderId id) const {
  std::size_t n = 0;
  for (const auto& h : headers) n += (h.id == id);
  return n;
}

}  // namespace sip
