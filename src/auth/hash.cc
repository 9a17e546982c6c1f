// MD5 and SHA-256 through OpenSSL's low-level interface (MD5_Init, SHA256_Init, ...),
// deprecated since OpenSSL 3.0 in favour of EVP but still built by Debian, and running the
// same assembly. Through EVP, OpenSSL 3.0 frees and allocates a provider context on every
// EVP_DigestInit_ex, even of the same digest in the same EVP_MD_CTX: four allocations and
// cleanses per authenticated request. The low-level contexts are plain structs, kept per
// thread. Which algorithms are usable still follows the EVP provider (md_for()).
#define OPENSSL_SUPPRESS_DEPRECATED
#include "auth/hash.h"

#include <openssl/md5.h>
#include <openssl/sha.h>

#include "sip/params.h"

namespace auth {
namespace {

thread_local std::uint64_t t_digests = 0;  // Digest::hex() calls on this thread

}  // namespace

struct Digest::State {
  Algorithm algorithm = Algorithm::kMd5;
  MD5_CTX md5;
  SHA256_CTX sha256;
};

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
  thread_local State state;
  state_ = &state;
  state.algorithm = algorithm;
  ok_ = md_for(algorithm) != nullptr &&
        (algorithm == Algorithm::kMd5 ? MD5_Init(&state.md5) : SHA256_Init(&state.sha256)) == 1;
}

void Digest::update(std::string_view part) {
  ok_ = ok_ && (state_->algorithm == Algorithm::kMd5
                    ? MD5_Update(&state_->md5, part.data(), part.size())
                    : SHA256_Update(&state_->sha256, part.data(), part.size())) == 1;
}

std::size_t Digest::raw(unsigned char* out) {
  if (!ok_) return 0;
  ok_ = false;  // finished
  if (state_->algorithm == Algorithm::kMd5) {
    return MD5_Final(out, &state_->md5) == 1 ? MD5_DIGEST_LENGTH : 0;
  }
  return SHA256_Final(out, &state_->sha256) == 1 ? SHA256_DIGEST_LENGTH : 0;
}

Hex Digest::hex() {
  static constexpr char kHex[] = "0123456789abcdef";
  ++t_digests;
  Hex out;
  unsigned char raw_digest[EVP_MAX_MD_SIZE];
  const std::size_t n = raw(raw_digest);
  for (std::size_t i = 0; i < n; ++i) {
    out.buf[2 * i] = kHex[raw_digest[i] >> 4];
    out.buf[2 * i + 1] = kHex[raw_digest[i] & 0xF];
  }
  out.len = 2 * n;
  return out;
}

std::uint64_t hex_digests_on_this_thread() {
  return t_digests;
}

}  // namespace auth
