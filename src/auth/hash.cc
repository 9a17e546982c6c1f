#include "auth/hash.h"

#include <memory>

#include "sip/params.h"

namespace auth {
namespace {

thread_local std::uint64_t t_digests = 0;  // Digest::hex() calls on this thread

}  // namespace

const EVP_MD* md_for(Algorithm algorithm) {
  // Fetched once: EVP_md5()/EVP_sha256() would make OpenSSL 3 fetch on every init.
  static EVP_MD* const md5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  return algorithm == Algorithm::kMd5 ? md5 : sha256;
}

bool parse_algorithm(std::string_view text, Algorithm& out) {
  if (text.empty() || sip::iequals(text, "MD5")) {
    out = Algorithm::kMd5;
  } else if (sip::iequals(text, "SHA-256")) {
    out = Algorithm::kSha256;
  } else {
    return false;
  }
  return md_for(out) != nullptr;  // e.g. MD5 under a FIPS-only provider
}

Digest::Digest(Algorithm algorithm) {
  thread_local std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx(EVP_MD_CTX_new());
  ctx_ = ctx.get();
  const EVP_MD* md = md_for(algorithm);
  ok_ = ctx_ != nullptr && md != nullptr && EVP_DigestInit_ex(ctx_, md, nullptr) == 1;
}

Hex Digest::hex() {
  static constexpr char kHex[] = "0123456789abcdef";
  ++t_digests;
  Hex out;
  unsigned char raw[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!ok_ || EVP_DigestFinal_ex(ctx_, raw, &n) != 1) return out;
  for (unsigned i = 0; i < n; ++i) {
    out.buf[2 * i] = kHex[raw[i] >> 4];
    out.buf[2 * i + 1] = kHex[raw[i] & 0xF];
  }
  out.len = 2 * n;
  return out;
}

std::uint64_t hex_digests_on_this_thread() {
  return t_digests;
}

}  // namespace auth
