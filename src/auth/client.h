// The client side of digest (RFC 7616, RFC 8760): answering a provider's challenge when the
// server sends calls out through a trunk with credentials.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sip/message.h"

namespace auth {

struct ClientCredentials {
  std::string_view username;
  std::string_view password;
  std::string_view realm;  // empty: answer whatever realm the challenge names
};

// Builds the Authorization / Proxy-Authorization header value that answers one of
// `challenges` (the parsed WWW-Authenticate or Proxy-Authenticate values of a 401/407) for a
// request with `method` and Request-URI `uri`:
//   Digest username="..", realm="..", nonce="..", uri="..", response="..", algorithm=MD5,
//   cnonce="..", qop=auth, nc=00000001, opaque=".."
// Picks the first Digest challenge whose algorithm it supports, preferring SHA-256 over MD5
// (absent algorithm = MD5) and whose realm matches credentials.realm when that is set. Uses
// qop=auth when offered (a fresh random cnonce, nc=00000001), the RFC 2069 form when the
// challenge offers no qop; refuses (nullopt) qop=auth-int only, -sess algorithms, other
// schemes.
std::optional<std::string> answer_challenge(const std::vector<sip::AuthField>& challenges,
                                            std::string_view method, std::string_view uri,
                                            const ClientCredentials& credentials);

}  // namespace auth
