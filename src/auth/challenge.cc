#include "auth/challenge.h"

#include "auth/hmac.h"

namespace auth {
namespace {

std::string derive_opaque(const Secret& secret) {
  static constexpr char kHex[] = "0123456789abcdef";
  static constexpr std::string_view kLabel = "sipwarden opaque";
  HmacSha256::Mac mac{};
  // Once at start-up; should OpenSSL fail, the opaque is all zeros (it is not a secret).
  HmacSha256(secret).compute({kLabel}, mac);
  std::string out;
  for (unsigned i = 0; i < 8; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xF]);
  }
  return out;
}

}  // namespace

std::string_view to_string(Algorithm a) { return a == Algorithm::kSha256 ? "SHA-256" : "MD5"; }

Challenger::Challenger(const NonceFactory& nonces, const Secret& secret,
                       std::vector<Algorithm> algorithms)
    : nonces_(nonces), opaque_(derive_opaque(secret)), algorithms_(std::move(algorithms)) {}

std::vector<std::string> Challenger::challenges(std::string_view realm,
                                                std::chrono::system_clock::time_point now,
                                                bool stale) const {
  const std::string nonce = nonces_.issue(realm, now);
  std::vector<std::string> out;
  out.reserve(algorithms_.size());
  for (Algorithm a : algorithms_) {
    std::string v;
    v.reserve(160);
    v.append("Digest realm=\"").append(realm).append("\", nonce=\"").append(nonce);
    v.append("\", opaque=\"").append(opaque_).append("\", algorithm=").append(to_string(a));
    v.append(", qop=\"auth\"");
    if (stale) v.append(", stale=true");
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace auth
