// Digest verification (RFC 7616 with qop=auth; RFC 8760 SHA-256 for SIP) against stored HA1s.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "auth/challenge.h"
#include "auth/nonce.h"
#include "sip/message.h"

namespace auth {

// HA1 = H(username ":" realm ":" password) as lowercase hex, H = MD5 or SHA-256.
std::string ha1(Algorithm algorithm, std::string_view username, std::string_view realm,
                std::string_view password);

enum class Verdict {
  kOk,
  kStale,          // valid except that the nonce is too old: challenge again with stale=true
  kFailed,         // wrong password, unknown user, forged nonce, wrong realm/uri: challenge again
  kReplay,         // nonce-count not above the last one accepted for this nonce
  kMalformed,      // missing parameters, qop other than auth, unknown algorithm
};
std::string_view to_string(Verdict v);

// What the verifier needs to know about the claimed user. For an unknown user pass
// `known = false` (the HA1s are then ignored and a dummy HA1 is used, so the work — and the
// time — is the same as for a wrong password: RFC 7616 §5.x, anti-enumeration).
struct Credentials {
  bool known = false;
  std::string_view ha1_md5;
  std::string_view ha1_sha256;
};

// Verifies Authorization / Proxy-Authorization headers. Thread-safe: the nonce-count table is
// sharded with a lock per shard, shared by all workers.
class DigestVerifier {
 public:
  DigestVerifier(const NonceFactory& nonces, std::string realm);
  ~DigestVerifier();

  // `field` is one parsed Authorization value for this realm; `method` the request method
  // (A2 = method ":" digest-uri). Requires qop=auth, cnonce and nc (RFC 7616 §3.4; responses
  // without qop, RFC 2069 style, are refused as kMalformed). The algorithm is the field's
  // (MD5 when absent); -sess variants are refused. On kOk the nonce-count is recorded so a
  // replay of the same (nonce, username, cnonce) with the same or a lower nc gets kReplay.
  Verdict verify(const sip::AuthField& field, std::string_view method, const Credentials& user,
                 std::chrono::system_clock::time_point now);

  // The Authorization value among `fields` meant for this realm (first Digest one whose realm
  // matches), or nullptr.
  const sip::AuthField* pick(const std::vector<sip::AuthField>& fields) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace auth
