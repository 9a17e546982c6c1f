// Digest challenges (RFC 7616 §3.3, RFC 8760): the WWW-Authenticate / Proxy-Authenticate
// values the server sends, one per algorithm, in the configured order.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "auth/nonce.h"

namespace auth {

enum class Algorithm { kSha256, kMd5 };
std::string_view to_string(Algorithm a);  // "SHA-256", "MD5"

class Challenger {
 public:
  // `algorithms` in the order they are offered (RFC 8760 §2.4: the preferred one first).
  Challenger(const NonceFactory& nonces, const Secret& secret, std::vector<Algorithm> algorithms);

  // One header value per algorithm, in the common wire format phones and tools parse:
  //   Digest realm="example.com", nonce="...", opaque="...", algorithm=MD5, qop="auth"
  // with `, stale=true` appended when the client's nonce had merely expired. Every
  // challenge has the same shape whoever asks (anti-enumeration).
  std::vector<std::string> challenges(std::string_view realm,
                                      std::chrono::system_clock::time_point now,
                                      bool stale) const;

  const NonceFactory& nonces() const { return nonces_; }
  const std::string& opaque() const { return opaque_; }

 private:
  const NonceFactory& nonces_;
  const std::string opaque_;  // fixed per secret: lets a client tell our challenges apart
  const std::vector<Algorithm> algorithms_;
};

}  // namespace auth
