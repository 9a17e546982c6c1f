#include "transport/endpoint.h"

#include <arpa/inet.h>

#include <cstring>

namespace transport {

std::optional<Endpoint> Endpoint::from_string(std::string_view address, std::uint16_t port) {
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  if (address.empty() || address.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, address.data(), address.size());
  buf[address.size()] = '\0';
  Endpoint e;
  e.port = port;
  if (inet_pton(AF_INET, buf, e.bytes.data()) == 1) return e;
  if (inet_pton(AF_INET6, buf, e.bytes.data()) != 1) return std::nullopt;
  // ::ffff:a.b.c.d is the IPv4 source a v6 socket reports; key it as IPv4.
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(e.bytes.data(), kMapped, 12) == 0) {
    std::memmove(e.bytes.data(), e.bytes.data() + 12, 4);
    std::memset(e.bytes.data() + 4, 0, 12);
    return e;
  }
  e.v6 = true;
  return e;
}

std::string Endpoint::address_string() const {
  if (!v6) {
    // Every REGISTER stores its source and local address as text: inet_ntop goes through
    // sprintf, which costs more than the rest of the formatting together.
    char buf[16];
    std::size_t n = 0;
    for (std::size_t i = 0; i < 4; ++i) {
      const unsigned b = bytes[i];
      if (b >= 100) buf[n++] = static_cast<char>('0' + b / 100);
      if (b >= 10) buf[n++] = static_cast<char>('0' + b / 10 % 10);
      buf[n++] = static_cast<char>('0' + b % 10);
      if (i < 3) buf[n++] = '.';
    }
    return std::string(buf, n);
  }
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf) == nullptr) return "?";
  return buf;
}

std::string Endpoint::to_string() const {
  // Built with append: GCC 12 at -O3 warns falsely (-Wrestrict) on "[" + string + "]".
  std::string s;
  if (v6) s.push_back('[');
  s.append(address_string());
  if (v6) s.push_back(']');
  s.push_back(':');
  s.append(std::to_string(port));
  return s;
}

bool Endpoint::is_unusable_destination() const {
  if (v6) {
    static constexpr std::uint8_t kZero[16] = {};
    return bytes[0] == 0xff || std::memcmp(bytes.data(), kZero, 16) == 0;  // multicast, ::
  }
  // 0.0.0.0/8, 224.0.0.0/4 (multicast), 240.0.0.0/4 incl. 255.255.255.255 (broadcast).
  return bytes[0] == 0 || bytes[0] >= 224;
}

bool Endpoint::is_loopback() const {
  if (v6) {
    static constexpr std::uint8_t kLoop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return std::memcmp(bytes.data(), kLoop, 16) == 0;
  }
  return bytes[0] == 127;
}

std::size_t EndpointHash::operator()(const Endpoint& e) const {
  // FNV-1a over the address bytes in use and the port.
  std::uint64_t h = 1469598103934665603ull;
  const std::size_t n = e.v6 ? 16 : 4;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ e.bytes[i]) * 1099511628211ull;
  h = (h ^ e.port) * 1099511628211ull;
  h = (h ^ (e.v6 ? 1u : 0u)) * 1099511628211ull;
  return static_cast<std::size_t>(h);
}

std::string_view to_string(Protocol p) {
  switch (p) {
    case Protocol::kUdp:
      return "UDP";
    case Protocol::kTcp:
      return "TCP";
    case Protocol::kTls:
      return "TLS";
  }
  return "UDP";
}

}  // namespace transport
