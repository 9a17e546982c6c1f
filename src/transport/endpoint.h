// Network addresses without Asio: small, hashable, printable. Used as keys by the shield
// (bans, rate limits) and carried in every Flow.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace transport {

// An IPv4 or IPv6 address and a port. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are stored
// as IPv4, so one source has one key whichever socket it arrived on.
struct Endpoint {
  std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4 bytes
  bool v6 = false;
  std::uint16_t port = 0;

  // Parses an address literal ("192.0.2.1", "::1", "[::1]"); std::nullopt if it is not one.
  static std::optional<Endpoint> from_string(std::string_view address, std::uint16_t port = 0);

  std::string address_string() const;  // "192.0.2.1", "::1"
  std::string to_string() const;       // "192.0.2.1:5060", "[::1]:5060"
  // Broadcast, multicast, unspecified or limited-broadcast: never a destination.
  bool is_unusable_destination() const;
  bool is_loopback() const;

  bool same_address(const Endpoint& o) const { return v6 == o.v6 && bytes == o.bytes; }
  bool operator==(const Endpoint& o) const { return same_address(o) && port == o.port; }
};

struct EndpointHash {
  std::size_t operator()(const Endpoint& e) const;
};

enum class Protocol : std::uint8_t { kUdp, kTcp, kTls };
std::string_view to_string(Protocol p);  // "UDP", "TCP", "TLS" (as in a Via)

// Where a message came from (or goes to): the path back to a peer. For streams the connection
// is what matters (clients behind NAT can only be reached over the connection they opened).
struct Flow {
  Protocol protocol = Protocol::kUdp;
  Endpoint remote;               // the peer: source of what arrived, destination of what we send
  Endpoint local;                // our socket's address
  std::uint32_t listener = 0;    // index of our listening socket (UDP: send from the same socket)
  std::uint64_t connection = 0;  // stream connection id; 0 for UDP
  std::uint16_t worker = 0;      // the worker that owns the socket or connection

  bool reliable() const { return protocol != Protocol::kUdp; }
};

}  // namespace transport
