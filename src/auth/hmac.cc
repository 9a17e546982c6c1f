#include "auth/hmac.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <memory>

#include "auth/hash.h"

namespace auth {
namespace {

constexpr std::size_t kBlock = 64;  // SHA-256's block size: the padded key's length

// The per-thread context each MAC is computed in, reused from call to call.
EVP_MD_CTX* work_context() {
  thread_local std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx(EVP_MD_CTX_new());
  return ctx.get();
}

}  // namespace

HmacSha256::HmacSha256(std::span<const std::uint8_t> key) {
  const EVP_MD* md = md_for(Algorithm::kSha256);
  inner_ = EVP_MD_CTX_new();
  outer_ = EVP_MD_CTX_new();
  if (md == nullptr || inner_ == nullptr || outer_ == nullptr) return;

  // RFC 2104 §2: a key longer than a block is replaced by its hash; then zero-padded.
  std::array<std::uint8_t, kBlock> k{};
  if (key.size() > kBlock) {
    unsigned int n = 0;
    if (EVP_Digest(key.data(), key.size(), k.data(), &n, md, nullptr) != 1) return;
  } else {
    std::copy(key.begin(), key.end(), k.begin());
  }
  std::array<std::uint8_t, kBlock> ipad{};
  std::array<std::uint8_t, kBlock> opad{};
  for (std::size_t i = 0; i < kBlock; ++i) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  ok_ = EVP_DigestInit_ex(inner_, md, nullptr) == 1 &&
        EVP_DigestUpdate(inner_, ipad.data(), ipad.size()) == 1 &&
        EVP_DigestInit_ex(outer_, md, nullptr) == 1 &&
        EVP_DigestUpdate(outer_, opad.data(), opad.size()) == 1;
  OPENSSL_cleanse(k.data(), k.size());
  OPENSSL_cleanse(ipad.data(), ipad.size());
  OPENSSL_cleanse(opad.data(), opad.size());
}

HmacSha256::~HmacSha256() {
  EVP_MD_CTX_free(inner_);
  EVP_MD_CTX_free(outer_);
}

bool HmacSha256::compute(std::initializer_list<std::string_view> parts, Mac& out) const {
  EVP_MD_CTX* ctx = work_context();
  if (!ok_ || ctx == nullptr || EVP_MD_CTX_copy_ex(ctx, inner_) != 1) return false;
  for (std::string_view part : parts) {
    if (EVP_DigestUpdate(ctx, part.data(), part.size()) != 1) return false;
  }
  Mac inner_hash;
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx, inner_hash.data(), &n) != 1 || n != inner_hash.size()) return false;
  if (EVP_MD_CTX_copy_ex(ctx, outer_) != 1 ||
      EVP_DigestUpdate(ctx, inner_hash.data(), inner_hash.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, out.data(), &n) != 1 || n != out.size()) {
    return false;
  }
  return true;
}

}  // namespace auth
