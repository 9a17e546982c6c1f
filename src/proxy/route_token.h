// What the proxy writes into its Record-Route so that in-dialog requests find their way back
// without per-dialog routing state: the flow toward the caller, the flow toward the callee
// (the connection or NAT binding each party is reachable on), and a hash of the caller's From
// tag (which tells the direction of an in-dialog request). Signed with the server secret, so a
// forged Route cannot make the server send anywhere it did not send the INVITE.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "auth/hmac.h"
#include "transport/endpoint.h"

namespace proxy {

struct RouteToken {
  transport::Flow caller;  // where requests from the callee's side go
  transport::Flow callee;  // where requests from the caller's side go
  std::uint32_t caller_tag_hash = 0;  // tag_hash() of the INVITE's From tag

  // Which way an in-dialog request with From tag `from_tag` goes.
  const transport::Flow& destination_for(std::string_view from_tag) const;
};

std::uint32_t tag_hash(std::string_view tag);

class RouteSigner {
 public:
  explicit RouteSigner(const std::array<std::uint8_t, 32>& secret) : mac_(secret) {}

  // A URI parameter value (characters [0-9a-z.~-] only) carrying `token` and a MAC over it,
  // e.g. "u0.1.0.7f000001.13c4~t1.2.1f.7f000001.d2f0~8c1a2b3c~5f0e...".
  // Flows: protocol (u/t/s), worker, listener, connection (hex), address bytes (hex, 8 or 32
  // digits), port (hex). The local endpoint is not carried (the listener identifies it).
  std::string encode(const RouteToken& token) const;
  // The token, if `text` is one this signer made (MAC checked in constant time).
  std::optional<RouteToken> decode(std::string_view text) const;

 private:
  const auth::HmacSha256 mac_;  // keyed with the server secret
};

}  // namespace proxy
