#include "proxy/route_token.h"

#include <openssl/crypto.h>

#include <array>
#include <limits>
#include <string>

namespace proxy {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::size_t kMacDigits = 16;  // 64 bits: a forger gets one guess per request
constexpr std::size_t kTagHashDigits = 8;
// The longest token encode() can make: two flows of "p" + 4 + "." + 8 + "." + 16 + "." + 32 +
// "." + 4 hex digits, the tag hash, the MAC and three '~'. Anything longer is not ours and is
// refused before any MAC is computed.
constexpr std::size_t kMaxFlowChars = 1 + 4 + 1 + 8 + 1 + 16 + 1 + 32 + 1 + 4;
constexpr std::size_t kMaxTokenChars = 2 * kMaxFlowChars + 1 + kTagHashDigits + 1 + kMacDigits + 1;
// Keeps a MAC over a route token apart from anything else signed with the same server secret.
constexpr std::string_view kMacLabel = "sipwarden route token\n";

void append_hex(std::string& out, std::uint64_t value) {
  char digits[16];
  std::size_t n = 0;
  do {
    digits[n++] = kHex[value & 0xF];
    value >>= 4;
  } while (value != 0);
  while (n > 0) out.push_back(digits[--n]);
}

void append_fixed_hex(std::string& out, std::uint64_t value, std::size_t digits) {
  for (std::size_t i = digits; i > 0; --i) out.push_back(kHex[(value >> (4 * (i - 1))) & 0xF]);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is never written, so it is never read either
}

// 1 to 16 lower-case hex digits whose value is at most `max`.
std::optional<std::uint64_t> parse_hex(std::string_view text, std::uint64_t max) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    const int v = hex_value(c);
    if (v < 0) return std::nullopt;
    value = (value << 4) | static_cast<std::uint64_t>(v);
  }
  if (value > max) return std::nullopt;
  return value;
}

// Splits `text` at every `sep` into exactly `n` parts; false if the count differs.
template <std::size_t N>
bool split(std::string_view text, char sep, std::array<std::string_view, N>& parts) {
  std::size_t i = 0;
  for (;;) {
    const std::size_t at = text.find(sep);
    if (i == N) return false;
    parts[i++] = text.substr(0, at);
    if (at == std::string_view::npos) break;
    text.remove_prefix(at + 1);
  }
  return i == N;
}

char protocol_letter(transport::Protocol p) {
  switch (p) {
    case transport::Protocol::kUdp:
      return 'u';
    case transport::Protocol::kTcp:
      return 't';
    case transport::Protocol::kTls:
      return 's';
  }
  return 'u';
}

void append_flow(std::string& out, const transport::Flow& flow) {
  out.push_back(protocol_letter(flow.protocol));
  append_hex(out, flow.worker);
  out.push_back('.');
  append_hex(out, flow.listener);
  out.push_back('.');
  append_hex(out, flow.connection);
  out.push_back('.');
  const std::size_t address_bytes = flow.remote.v6 ? 16 : 4;
  for (std::size_t i = 0; i < address_bytes; ++i) append_fixed_hex(out, flow.remote.bytes[i], 2);
  out.push_back('.');
  append_hex(out, flow.remote.port);
}

std::optional<transport::Flow> parse_flow(std::string_view text) {
  std::array<std::string_view, 5> f;
  if (!split(text, '.', f) || f[0].empty()) return std::nullopt;
  transport::Flow flow;
  switch (f[0][0]) {
    case 'u':
      flow.protocol = transport::Protocol::kUdp;
      break;
    case 't':
      flow.protocol = transport::Protocol::kTcp;
      break;
    case 's':
      flow.protocol = transport::Protocol::kTls;
      break;
    default:
      return std::nullopt;
  }
  const auto worker = parse_hex(f[0].substr(1), std::numeric_limits<std::uint16_t>::max());
  const auto listener = parse_hex(f[1], std::numeric_limits<std::uint32_t>::max());
  const auto connection = parse_hex(f[2], std::numeric_limits<std::uint64_t>::max());
  const auto port = parse_hex(f[4], std::numeric_limits<std::uint16_t>::max());
  if (!worker || !listener || !connection || !port) return std::nullopt;
  if (f[3].size() != 8 && f[3].size() != 32) return std::nullopt;
  flow.remote.v6 = f[3].size() == 32;
  for (std::size_t i = 0; i < f[3].size() / 2; ++i) {
    const int hi = hex_value(f[3][2 * i]);
    const int lo = hex_value(f[3][2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    flow.remote.bytes[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  flow.worker = static_cast<std::uint16_t>(*worker);
  flow.listener = static_cast<std::uint32_t>(*listener);
  flow.connection = *connection;
  flow.remote.port = static_cast<std::uint16_t>(*port);
  return flow;
}

// The first kMacDigits hex digits of HMAC-SHA256(secret, label || signed_text); nullopt if
// OpenSSL failed.
// (In an array, not a string: 16 characters are one more than a std::string holds without
// allocating, and every request along a call's route checks one.)
using MacHex = std::array<char, kMacDigits>;
std::optional<MacHex> mac_hex(const auth::HmacSha256& hmac, std::string_view signed_text) {
  auth::HmacSha256::Mac mac;
  if (!hmac.compute({kMacLabel, signed_text}, mac)) return std::nullopt;
  MacHex out;
  for (std::size_t i = 0; i < kMacDigits / 2; ++i) {
    out[2 * i] = kHex[mac[i] >> 4];
    out[2 * i + 1] = kHex[mac[i] & 0xF];
  }
  return out;
}

}  // namespace

const transport::Flow& RouteToken::destination_for(std::string_view from_tag) const {
  return tag_hash(from_tag) == caller_tag_hash ? callee : caller;
}

std::uint32_t tag_hash(std::string_view tag) {
  // FNV-1a: only tells the two tags of one dialog apart, not a defence against anyone.
  std::uint32_t h = 2166136261u;
  for (char c : tag) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 16777619u;
  }
  return h;
}

std::string RouteSigner::encode(const RouteToken& token) const {
  std::string out;
  out.reserve(kMaxTokenChars);
  append_flow(out, token.caller);
  out.push_back('~');
  append_flow(out, token.callee);
  out.push_back('~');
  append_fixed_hex(out, token.caller_tag_hash, kTagHashDigits);
  // Without a MAC the token must not verify: 'x' is no hex digit, so decode() refuses it.
  MacHex mac;
  mac.fill('x');
  if (const auto computed = mac_hex(mac_, out)) mac = *computed;
  out.push_back('~');
  out.append(mac.data(), mac.size());
  return out;
}

std::optional<RouteToken> RouteSigner::decode(std::string_view text) const {
  if (text.size() > kMaxTokenChars) return std::nullopt;
  std::array<std::string_view, 4> parts;
  if (!split(text, '~', parts)) return std::nullopt;
  if (parts[3].size() != kMacDigits || parts[2].size() != kTagHashDigits) return std::nullopt;

  const std::string_view signed_text = text.substr(0, text.size() - kMacDigits - 1);
  const std::optional<MacHex> expected = mac_hex(mac_, signed_text);
  if (!expected || CRYPTO_memcmp(expected->data(), parts[3].data(), kMacDigits) != 0) {
    return std::nullopt;
  }

  // Only text this signer made gets here, but it is parsed as strictly as if it were not.
  const auto caller = parse_flow(parts[0]);
  const auto callee = parse_flow(parts[1]);
  const auto hash = parse_hex(parts[2], std::numeric_limits<std::uint32_t>::max());
  if (!caller || !callee || !hash) return std::nullopt;
  RouteToken token;
  token.caller = *caller;
  token.callee = *callee;
  token.caller_tag_hash = static_cast<std::uint32_t>(*hash);
  return token;
}

}  // namespace proxy
