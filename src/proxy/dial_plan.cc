#include "proxy/dial_plan.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <utility>

namespace proxy {

namespace {

// "local" is a word in allowed/denied lists, not a pattern (see config/pattern.h).
constexpr std::string_view kLocal = "local";

bool any_matches(const std::vector<std::string>& patterns, std::string_view number,
                 bool local_user) {
  for (const std::string& text : patterns) {
    if (text == kLocal) {
      if (local_user) return true;
      continue;
    }
    auto pattern = config::Pattern::parse(text);
    if (pattern && pattern->matches(number)) return true;
  }
  return false;
}

std::string in_quotes(std::string_view s) {
  // Appended, not `"\"" + std::string(s)`: GCC 12 -O2 warns falsely (-Wrestrict) on that.
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

std::string trunk_error(const config::Trunk& trunk, std::string_view key, std::string_view reason) {
  return "trunk " + in_quotes(trunk.name) + ": " + std::string(key) + ": " + std::string(reason);
}

std::string indexed(std::string_view key, std::size_t i) {
  return std::string(key) + "[" + std::to_string(i) + "]";
}

// The address a getaddrinfo answer names, through the one literal parser the project has
// (which also folds IPv4-mapped IPv6 addresses to IPv4).
std::optional<transport::Endpoint> endpoint_of(const addrinfo& ai, std::uint16_t port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ai.ai_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(ai.ai_addr);
    if (!inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text)) return std::nullopt;
  } else if (ai.ai_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai.ai_addr);
    if (!inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  return transport::Endpoint::from_string(text, port);
}

}  // namespace

bool destination_allowed(const config::CallPolicy& policy, std::string_view number,
                         bool local_user) {
  return any_matches(policy.allowed_destinations, number, local_user) &&
         !any_matches(policy.denied_destinations, number, local_user);
}

base::Result<transport::Endpoint> resolve_trunk(const config::Trunk& trunk) {
  if (trunk.host.empty()) return std::string("empty host");
  std::optional<transport::Endpoint> address =
      transport::Endpoint::from_string(trunk.host, trunk.port);
  if (!address) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = trunk.transport == config::Transport::kUdp ? SOCK_DGRAM : SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = getaddrinfo(trunk.host.c_str(), nullptr, &hints, &found);
    if (rc != 0) {
      return "cannot resolve " + in_quotes(trunk.host) + ": " + gai_strerror(rc);
    }
    const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, &freeaddrinfo);
    for (const addrinfo* ai = found; ai != nullptr && !address; ai = ai->ai_next) {
      address = endpoint_of(*ai, trunk.port);
    }
    if (!address) return "cannot resolve " + in_quotes(trunk.host) + ": no IPv4 or IPv6 address";
  }
  if (address->is_unusable_destination()) {
    return in_quotes(address->address_string()) + " is not a usable destination";
  }
  return *address;
}

base::Result<DialPlan> DialPlan::build(const std::vector<config::Trunk>& trunks) {
  DialPlan plan;
  plan.trunks_.reserve(trunks.size());
  for (const config::Trunk& trunk : trunks) {
    TrunkEntry entry{.config = trunk, .address = {}, .inbound = {}, .outbound = {}};

    for (std::size_t i = 0; i < trunk.outbound.size(); ++i) {
      const std::string& text = trunk.outbound[i];
      if (text == kLocal) {
        return trunk_error(trunk, indexed("outbound", i),
                           "\"local\" means a local user, not a number a trunk can carry");
      }
      auto pattern = config::Pattern::parse(text);
      if (!pattern) return trunk_error(trunk, indexed("outbound", i), pattern.error());
      entry.outbound.push_back(std::move(*pattern));
    }

    auto address = resolve_trunk(trunk);
    if (!address) return trunk_error(trunk, "host", address.error());
    entry.address = *address;

    std::vector<shield::Network> inbound;
    for (std::size_t i = 0; i < trunk.inbound_sources.size(); ++i) {
      auto network = shield::Network::parse(trunk.inbound_sources[i]);
      if (!network) {
        return trunk_error(trunk, indexed("inbound_sources", i),
                           "not an address or CIDR: " + in_quotes(trunk.inbound_sources[i]));
      }
      inbound.push_back(*network);
    }
    // A host given by name may answer from other addresses than the one it resolves to now:
    // only a literal is trusted as the default inbound source.
    if (inbound.empty()) {
      if (auto literal = shield::Network::parse(trunk.host)) inbound.push_back(*literal);
    }
    entry.inbound = shield::NetworkList(std::move(inbound));

    for (std::size_t i = 0; i < trunk.dids.size(); ++i) {
      const auto& [number, user] = trunk.dids[i];
      if (number.empty()) return trunk_error(trunk, indexed("dids", i), "empty number");
      if (user.empty()) {
        return trunk_error(trunk, indexed("dids", i),
                           "number " + in_quotes(number) + " rings no user");
      }
    }

    plan.trunks_.push_back(std::move(entry));
  }
  return plan;
}

std::optional<std::size_t> DialPlan::outbound_trunk(std::string_view number) const {
  for (std::size_t t = 0; t < trunks_.size(); ++t) {
    for (const config::Pattern& pattern : trunks_[t].outbound) {
      if (pattern.matches(number)) return t;
    }
  }
  return std::nullopt;
}

std::string DialPlan::outbound_number(std::size_t t, std::string_view number) const {
  const config::Trunk& trunk = trunks_[t].config;
  const std::size_t strip = std::min<std::size_t>(trunk.strip, number.size());
  std::string out = trunk.prefix;
  out.append(number.substr(strip));
  return out;
}

std::optional<std::size_t> DialPlan::trunk_of_source(const transport::Endpoint& source) const {
  for (std::size_t t = 0; t < trunks_.size(); ++t) {
    if (trunks_[t].inbound.contains(source)) return t;
  }
  return std::nullopt;
}

std::optional<std::string> DialPlan::did_target(std::size_t t, std::string_view number) const {
  const auto& dids = trunks_[t].config.dids;
  for (const auto& [did, user] : dids) {
    if (did == number) return user;
  }
  // Carriers disagree on whether E.164 numbers carry their '+': accept either form, the
  // exact match above winning.
  std::string other;
  if (!number.empty() && number.front() == '+') {
    other = number.substr(1);
  } else {
    other = "+";
    other += number;
  }
  for (const auto& [did, user] : dids) {
    if (did == other) return user;
  }
  return std::nullopt;
}

}  // namespace proxy
