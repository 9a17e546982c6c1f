// Stateless digest nonces (RFC 7616 §3.3, §5.4): the nonce carries its own issue time and an
// HMAC over it with the server's secret, so any worker (or node sharing the secret) can check
// one without storing it, and an old one is recognised as stale rather than forged.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "auth/hmac.h"
#include "base/result.h"

namespace auth {

using Secret = std::array<std::uint8_t, 32>;

// Reads the server secret from `path`, creating it (32 random bytes, mode 0600) if absent.
base::Result<Secret> load_or_create_secret(const std::filesystem::path& path);

enum class NonceCheck { kValid, kStale, kForged };

class NonceFactory {
 public:
  NonceFactory(const Secret& secret, std::chrono::seconds lifetime)
      : mac_(secret), lifetime_(lifetime) {}

  // A fresh, unique nonce for `realm` issued at `now`: 43 characters of base64url over 8 bytes
  // of issue time (seconds), 8 random bytes and 16 bytes of
  // HMAC-SHA256(secret, time || random || realm).
  std::string issue(std::string_view realm, std::chrono::system_clock::time_point now) const;

  // kValid if this factory issued `nonce` for `realm` within its lifetime; kStale if it did
  // but the lifetime is over (the client gets stale=true and retries without asking the user);
  // kForged otherwise.
  NonceCheck check(std::string_view nonce, std::string_view realm,
                   std::chrono::system_clock::time_point now) const;

  std::chrono::seconds lifetime() const { return lifetime_; }

 private:
  const HmacSha256 mac_;  // keyed with the server secret
  const std::chrono::seconds lifetime_;
};

}  // namespace auth
