// H() of RFC 7616 §3.4.1 for the auth module: a lowercase hex MD5 or SHA-256 digest over a
// sequence of parts, through OpenSSL (hash.cc). Internal to src/auth: the server's
// DigestVerifier and the client's answer_challenge hash the same way.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "auth/challenge.h"

namespace auth {

// The EVP_MD for `algorithm`, fetched once. nullptr when the provider lacks it (e.g. MD5
// under a FIPS-only provider).
const EVP_MD* md_for(Algorithm algorithm);

// The algorithm an `algorithm=` parameter names (absent: MD5, RFC 2617), case-insensitively.
// False for any other, and for one the provider lacks.
bool parse_algorithm(std::string_view text, Algorithm& out);

// A lowercase hex digest in a fixed buffer (no allocation on the verify path).
struct Hex {
  std::array<char, 2 * EVP_MAX_MD_SIZE> buf{};
  std::size_t len = 0;
  std::string_view view() const { return {buf.data(), len}; }
};

// H(part1 part2 ...) as lowercase hex. One context per thread, reused; digests must not nest
// (finish one before starting the next). On any OpenSSL failure the result is empty, which
// never equals a response.
class Digest {
 public:
  explicit Digest(Algorithm algorithm);
  Digest& add(std::initializer_list<std::string_view> parts) {
    for (std::string_view part : parts) update(part);
    return *this;
  }
  Hex hex();
  // The digest in binary into `out` (at least EVP_MAX_MD_SIZE bytes); returns its length, 0 on
  // failure. Not counted by hex_digests_on_this_thread().
  std::size_t raw(unsigned char* out);

  struct State;  // hash.cc

 private:
  void update(std::string_view part);
  State* state_;
  bool ok_ = false;
};

// Number of Digest::hex() calls on this thread so far (lets tests check that the verifier does
// the same work whatever the outcome).
std::uint64_t hex_digests_on_this_thread();

}  // namespace auth
