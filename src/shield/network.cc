#include "shield/network.h"

#include <charconv>

namespace shield {

std::optional<Network> Network::parse(std::string_view text) {
  const std::size_t slash = text.find('/');
  auto address = transport::Endpoint::from_string(text.substr(0, slash));
  if (!address) return std::nullopt;
  const unsigned max = address->v6 ? 128 : 32;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || r.ec != std::errc() || r.ptr != digits.data() + digits.size() ||
        prefix > max) {
      return std::nullopt;
    }
  }
  Network n;
  n.base = *address;
  n.base.port = 0;
  n.prefix = prefix;
  for (unsigned bit = prefix; bit < 128; ++bit) {
    n.base.bytes[bit / 8] = static_cast<std::uint8_t>(n.base.bytes[bit / 8] & ~(0x80u >> (bit % 8)));
  }
  return n;
}

bool Network::contains(const transport::Endpoint& a) const {
  if (a.v6 != base.v6) return false;
  unsigned bit = 0;
  for (; bit + 8 <= prefix; bit += 8) {
    if (a.bytes[bit / 8] != base.bytes[bit / 8]) return false;
  }
  if (bit < prefix) {
    const auto mask = static_cast<std::uint8_t>(0xFF00u >> (prefix - bit));
    if ((a.bytes[bit / 8] & mask) != base.bytes[bit / 8]) return false;
  }
  return true;
}

std::string Network::to_string() const {
  return base.address_string() + "/" + std::to_string(prefix);
}

bool NetworkList::contains(const transport::Endpoint& address) const {
  for (const Network& n : networks_) {
    if (n.contains(address)) return true;
  }
  return false;
}

}  // namespace shield
