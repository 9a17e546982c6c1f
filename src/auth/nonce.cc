#include "auth/nonce.h"

#include "base/clock.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace auth {
namespace {

constexpr std::size_t kTimeBytes = 8;
constexpr std::size_t kRandomBytes = 8;  // makes every nonce unique, even within one second
constexpr std::size_t kSignedBytes = kTimeBytes + kRandomBytes;
constexpr std::size_t kMacBytes = 16;    // 128 bits of HMAC-SHA256 are plenty against forgery
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Each byte's value in kAlphabet, or -1. A strchr per character of a nonce (40 of them, on
// every authenticated request) was about 1 % of the server's CPU at 8,500 REGISTER/s.
constexpr std::array<std::int8_t, 256> kAlphabetValue = [] {
  std::array<std::int8_t, 256> v{};
  v.fill(-1);
  for (int i = 0; i < 64; ++i) {
    v[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  }
  return v;
}();

std::string base64url(const std::uint8_t* data, std::size_t n) {
  std::string out;
  out.reserve((n * 4 + 2) / 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | data[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3F]);
  return out;
}

bool unbase64url(std::string_view text, std::uint8_t* out, std::size_t n) {
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t written = 0;
  for (char c : text) {
    const int value = kAlphabetValue[static_cast<unsigned char>(c)];
    if (value < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (written == n) return false;
      out[written++] = static_cast<std::uint8_t>((acc >> bits) & 0xFF);
    }
  }
  return written == n;
}

// The random part of a nonce, from a per-thread pool refilled kRandomPool bytes at a time.
// OpenSSL 3 takes the same locks and provider dispatch for 8 bytes as for 4 KiB: one
// RAND_bytes per nonce was 5-7% of a worker's CPU under REGISTER load. The bytes are as
// random as before; they only come from fewer, larger draws. False if OpenSSL failed.
constexpr std::size_t kRandomPool = 4096;

bool random_part(std::uint8_t* out) {
  thread_local std::array<std::uint8_t, kRandomPool> pool;
  thread_local std::size_t used = kRandomPool;
  if (used + kRandomBytes > kRandomPool) {
    if (RAND_bytes(pool.data(), static_cast<int>(pool.size())) != 1) return false;
    used = 0;
  }
  std::memcpy(out, pool.data() + used, kRandomBytes);
  used += kRandomBytes;
  return true;
}

// HMAC-SHA256(secret, time || random || realm), truncated; false if OpenSSL failed.
bool mac(const HmacSha256& hmac, const std::uint8_t* signed_bytes, std::string_view realm,
         std::uint8_t* out) {
  HmacSha256::Mac full;
  if (!hmac.compute({std::string_view(reinterpret_cast<const char*>(signed_bytes), kSignedBytes),
                     realm},
                    full)) {
    return false;
  }
  std::memcpy(out, full.data(), kMacBytes);
  return true;
}

}  // namespace

base::Result<Secret> load_or_create_secret(const std::filesystem::path& path) {
  Secret secret{};
  std::ifstream in(path, std::ios::binary);
  if (in) {
    in.read(reinterpret_cast<char*>(secret.data()), secret.size());
    if (in.gcount() != static_cast<std::streamsize>(secret.size())) {
      return path.string() + ": too short for a secret (want 32 bytes); remove it to regenerate";
    }
    return secret;
  }
  if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1) {
    return std::string("no randomness for the server secret");
  }
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return path.string() + ": cannot create: " + std::strerror(errno);
  const bool ok = ::write(fd, secret.data(), secret.size()) == static_cast<ssize_t>(secret.size());
  ::close(fd);
  if (!ok) return path.string() + ": cannot write the secret";
  return secret;
}

std::string NonceFactory::issue(std::string_view realm,
                                std::chrono::system_clock::time_point now) const {
  std::uint8_t raw[kSignedBytes + kMacBytes] = {};
  const auto seconds = static_cast<std::uint64_t>(base::unix_seconds(now));
  for (std::size_t i = 0; i < kTimeBytes; ++i) {
    raw[i] = static_cast<std::uint8_t>(seconds >> (8 * (kTimeBytes - 1 - i)));
  }
  // Without its random part or a MAC the nonce must not verify: random bytes in the MAC's
  // place never will.
  if (!random_part(raw + kTimeBytes) || !mac(mac_, raw, realm, raw + kSignedBytes)) {
    RAND_bytes(raw + kSignedBytes, static_cast<int>(kMacBytes));
  }
  return base64url(raw, sizeof raw);
}

NonceCheck NonceFactory::check(std::string_view nonce, std::string_view realm,
                               std::chrono::system_clock::time_point now) const {
  std::uint8_t raw[kSignedBytes + kMacBytes];
  if (nonce.size() != (sizeof raw * 4 + 2) / 3 || !unbase64url(nonce, raw, sizeof raw)) {
    return NonceCheck::kForged;
  }
  std::uint8_t expected[kMacBytes];
  if (!mac(mac_, raw, realm, expected)) return NonceCheck::kForged;
  if (CRYPTO_memcmp(expected, raw + kSignedBytes, kMacBytes) != 0) return NonceCheck::kForged;
  std::uint64_t issued = 0;
  for (std::size_t i = 0; i < kTimeBytes; ++i) issued = (issued << 8) | raw[i];
  const auto now_s = static_cast<std::uint64_t>(base::unix_seconds(now));
  // A nonce from the future (clock stepped back on another node) is treated as stale too.
  if (issued > now_s + 5 || now_s - issued > static_cast<std::uint64_t>(lifetime_.count())) {
    return NonceCheck::kStale;
  }
  return NonceCheck::kValid;
}

}  // namespace auth
