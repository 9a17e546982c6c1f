// HMAC-SHA256 (RFC 2104) under one key fixed for the object's life: nonces, the opaque
// value and the proxy's route tokens are all MACs under the server secret, computed on every
// challenge, authenticated request and in-dialog request.
//
// OpenSSL's one-shot HMAC() fetches SHA-256 from its provider and hashes the padded key on
// every call — most of the cost of a MAC over a few dozen bytes. Here the key is hashed once:
// the inner and outer hash states after the padded key are kept, and each MAC starts from
// copies of them (plain struct copies: see hmac.cc).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string_view>

namespace auth {

class HmacSha256 {
 public:
  using Mac = std::array<std::uint8_t, 32>;

  // `key` may have any length (longer than a SHA-256 block, it is hashed first, per RFC 2104).
  explicit HmacSha256(std::span<const std::uint8_t> key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  // HMAC(key, part1 || part2 || ...) into `out`. Safe to call from several threads at once
  // (each uses a context of its own). Returns false, leaving `out` unspecified, if OpenSSL
  // failed: a caller checking a MAC must then treat it as not matching.
  bool compute(std::initializer_list<std::string_view> parts, Mac& out) const;

 private:
  struct States;  // SHA-256 after (key ^ ipad) and after (key ^ opad); only ever copied from
  std::unique_ptr<States> states_;
  bool ok_ = false;  // both states were made
};

}  // namespace auth
