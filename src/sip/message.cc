#include "sip/message.h"

#include <array>
#include <cstdint>
#include <cstring>

#include "sip/scanner.h"

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

// kMethods is in enum order (kInvite is 1), so to_string() can index it; and by first letter
// (every method starts with a capital), each with at most two methods, for method_from_token().
constexpr bool methods_in_enum_order() {
  for (std::size_t i = 0; i < kMethods.size(); ++i) {
    if (static_cast<std::size_t>(kMethods[i].method) != i + 1) return false;
  }
  return true;
}
static_assert(methods_in_enum_order());

using MethodCandidates = std::array<Method, 2>;
constexpr std::array<MethodCandidates, 256> make_methods_by_letter() {
  std::array<MethodCandidates, 256> t{};
  for (const auto& m : kMethods) {
    for (Method& slot : t[static_cast<unsigned char>(m.text[0])]) {
      if (slot == Method::kUnknown) {
        slot = m.method;
        break;
      }
    }
  }
  return t;
}
constexpr auto kMethodsByLetter = make_methods_by_letter();

constexpr bool all_methods_indexed() {  // a third method for one letter needs wider slots
  for (const auto& m : kMethods) {
    const MethodCandidates& slots = kMethodsByLetter[static_cast<unsigned char>(m.text[0])];
    if (slots[0] != m.method && slots[1] != m.method) return false;
  }
  return true;
}
static_assert(all_methods_indexed());

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

constexpr std::size_t kLongestName = 20;  // "P-Preferred-Identity"

// A header name prepared for case-insensitive comparison a word at a time: `lower` is the name
// in lower case, `mask` has 0x20 where the name has a letter. For any byte x, x | 0x20 is a
// lowercase letter only when x is that letter in either case, so (x | mask) == lower matches
// iequals() byte for byte: letters in any case, everything else ('-') exactly.
struct FoldedName {
  std::array<char, kLongestName> lower{};
  std::array<char, kLongestName> mask{};

  template <typename Word>
  static Word load(const char* p) {
    Word w;
    std::memcpy(&w, p, sizeof w);
    return w;
  }
  // Compares sizeof(Word) bytes at offset i.
  template <typename Word>
  bool chunk_matches(std::string_view name, std::size_t i) const {
    return (load<Word>(name.data() + i) | load<Word>(mask.data() + i)) ==
           load<Word>(lower.data() + i);
  }
  // `name` has this name's length (2..kLongestName). Words overlap rather than read past it.
  bool matches(std::string_view name) const {
    const std::size_t n = name.size();
    if (n >= 8) {
      for (std::size_t i = 0; i + 8 < n; i += 8) {
        if (!chunk_matches<std::uint64_t>(name, i)) return false;
      }
      return chunk_matches<std::uint64_t>(name, n - 8);
    }
    if (n >= 4) {
      return chunk_matches<std::uint32_t>(name, 0) && chunk_matches<std::uint32_t>(name, n - 4);
    }
    return chunk_matches<std::uint16_t>(name, 0) && chunk_matches<std::uint16_t>(name, n - 2);
  }
};

constexpr std::array<FoldedName, kHeaders.size()> make_folded() {
  std::array<FoldedName, kHeaders.size()> t{};
  for (std::size_t i = 0; i < kHeaders.size(); ++i) {
    const std::string_view name = kHeaders[i].name;
    for (std::size_t k = 0; k < name.size(); ++k) {
      t[i].lower[k] = lower(name[k]);
      const bool letter = lower(name[k]) >= 'a' && lower(name[k]) <= 'z';
      t[i].mask[k] = letter ? 0x20 : 0;
    }
  }
  return t;
}
constexpr std::array<FoldedName, kHeaders.size()> kFolded = make_folded();

// Candidates by name length and first letter; two slots suffice (e.g. Call-ID and Contact).
using Candidates = std::array<HeaderId, 2>;
constexpr std::array<std::array<Candidates, 26>, kLongestName + 1> make_index() {
  std::array<std::array<Candidates, 26>, kLongestName + 1> t{};
  for (const auto& h : kHeaders) {
    if (h.name.size() < 2) continue;
    Candidates& slots = t[h.name.size()][static_cast<std::size_t>(lower(h.name[0]) - 'a')];
    for (HeaderId& slot : slots) {
      if (slot == HeaderId::kOther) {
        slot = h.id;
        break;
      }
    }
  }
  return t;
}
constexpr auto kByLengthAndLetter = make_index();

// Every name must have found a slot (a third name of the same length and first letter needs a
// wider Candidates).
constexpr bool all_indexed() {
  for (const auto& h : kHeaders) {
    if (h.name.size() < 2) continue;
    const Candidates& slots =
        kByLengthAndLetter[h.name.size()][static_cast<std::size_t>(lower(h.name[0]) - 'a')];
    if (slots[0] != h.id && slots[1] != h.id) return false;
  }
  return true;
}
static_assert(all_indexed());

}  // namespace

Method method_from_token(std::string_view token) {
  // Runs twice per request (start line, CSeq): the first letter leaves one or two candidates.
  if (token.empty()) return Method::kUnknown;
  for (const Method method : kMethodsByLetter[static_cast<unsigned char>(token[0])]) {
    if (method == Method::kUnknown) break;
    if (bytes_equal(to_string(method), token)) return method;
  }
  return Method::kUnknown;
}

std::string_view to_string(Method method) {
  const auto i = static_cast<std::size_t>(method);
  return i > 0 && i <= kMethods.size() ? kMethods[i - 1].text : std::string_view();
}

HeaderId header_id(std::string_view name) {
  if (name.size() == 1) {
    const char c = lower(name[0]);
    for (const auto& h : kHeaders) {
      if (h.compact == c && c != 0) return h.id;
    }
    return HeaderId::kOther;
  }
  if (name.empty() || name.size() > kLongestName) return HeaderId::kOther;
  // Runs on every header line: the length and first letter leave at most two candidates, and
  // each is compared a word at a time.
  const auto first = static_cast<unsigned char>(name[0] | 0x20);
  if (first < 'a' || first > 'z') return HeaderId::kOther;
  for (const HeaderId id : kByLengthAndLetter[name.size()][first - 'a']) {
    if (id == HeaderId::kOther) break;
    if (kFolded[static_cast<std::size_t>(id)].matches(name)) return id;
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
  // Vectors are cleared, not replaced, so their capacity serves the next parse. This runs before
  // every parse: the vectors are named one by one and the structs copied from constant defaults
  // rather than built as temporaries, which keeps it to plain stores.
  static constexpr Uri kNoUri{};
  static constexpr NameAddr kNoAddress{};
  headers.clear();
  via.clear();
  contact.clear();
  route.clear();
  record_route.clear();
  p_asserted_identity.clear();
  authorization.clear();
  proxy_authorization.clear();
  www_authenticate.clear();
  proxy_authenticate.clear();
  require.clear();
  proxy_require.clear();
  supported.clear();
  unsupported.clear();
  allow.clear();
  start_line = {};
  method = Method::kUnknown;
  method_text = {};
  request_uri = kNoUri;
  status_code = 0;
  reason = {};
  from = kNoAddress;
  to = kNoAddress;
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
