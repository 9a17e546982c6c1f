// SHA-256 through OpenSSL's low-level interface (SHA256_Init/Update/Final), deprecated since
// OpenSSL 3.0 in favour of EVP but still built by Debian, and running the same assembly (SHA
// extensions where the CPU has them). Its context is a plain struct, so each MAC starts from
// a copy of the keyed states by assignment. Through EVP a provider's digest context cannot be
// copied without EVP_MD_CTX_copy_ex allocating a new one and cleansing and freeing the old: two
// of each per MAC, and a MAC is on every challenge, every authenticated request and every
// in-dialog request through the proxy.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "auth/hmac.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>

namespace auth {
namespace {

constexpr std::size_t kBlock = 64;  // SHA-256's block size: the padded key's length

}  // namespace

struct HmacSha256::States {
  SHA256_CTX inner;
  SHA256_CTX outer;
};

HmacSha256::HmacSha256(std::span<const std::uint8_t> key) : states_(std::make_unique<States>()) {
  // RFC 2104 §2: a key longer than a block is replaced by its hash; then zero-padded.
  std::array<std::uint8_t, kBlock> k{};
  if (key.size() > kBlock) {
    SHA256(key.data(), key.size(), k.data());
  } else {
    std::copy(key.begin(), key.end(), k.begin());
  }
  std::array<std::uint8_t, kBlock> ipad{};
  std::array<std::uint8_t, kBlock> opad{};
  for (std::size_t i = 0; i < kBlock; ++i) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  ok_ = SHA256_Init(&states_->inner) == 1 &&
        SHA256_Update(&states_->inner, ipad.data(), ipad.size()) == 1 &&
        SHA256_Init(&states_->outer) == 1 &&
        SHA256_Update(&states_->outer, opad.data(), opad.size()) == 1;
  OPENSSL_cleanse(k.data(), k.size());
  OPENSSL_cleanse(ipad.data(), ipad.size());
  OPENSSL_cleanse(opad.data(), opad.size());
}

HmacSha256::~HmacSha256() {
  OPENSSL_cleanse(states_.get(), sizeof(States));
}

bool HmacSha256::compute(std::initializer_list<std::string_view> parts, Mac& out) const {
  if (!ok_) return false;
  SHA256_CTX ctx = states_->inner;
  for (std::string_view part : parts) {
    if (SHA256_Update(&ctx, part.data(), part.size()) != 1) return false;
  }
  Mac inner_hash;
  bool ok = SHA256_Final(inner_hash.data(), &ctx) == 1;
  ctx = states_->outer;
  ok = ok && SHA256_Update(&ctx, inner_hash.data(), inner_hash.size()) == 1 &&
       SHA256_Final(out.data(), &ctx) == 1;
  OPENSSL_cleanse(&ctx, sizeof ctx);  // the state after the key is as secret as the key
  OPENSSL_cleanse(inner_hash.data(), inner_hash.size());
  return ok;
}

}  // namespace auth
