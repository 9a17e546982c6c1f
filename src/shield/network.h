// Address ranges (CIDR) for allow/deny lists, IPv4 and IPv6.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transport/endpoint.h"

namespace shield {

struct Network {
  transport::Endpoint base;  // masked to the prefix
  unsigned prefix = 0;       // bits

  // "192.0.2.0/24", "2001:db8::/32", or a single address ("192.0.2.7" = /32, "::1" = /128).
  static std::optional<Network> parse(std::string_view text);
  bool contains(const transport::Endpoint& address) const;
  std::string to_string() const;
};

class NetworkList {
 public:
  NetworkList() = default;
  explicit NetworkList(std::vector<Network> networks) : networks_(std::move(networks)) {}
  bool empty() const { return networks_.empty(); }
  bool contains(const transport::Endpoint& address) const;
  const std::vector<Network>& networks() const { return networks_; }

 private:
  std::vector<Network> networks_;
};

}  // namespace shield
