// The dial plan: destination patterns (who may call what), trunks (where numbers go out and
// where calls come in from) and DIDs (which local user a number rings). Read-only once built;
// shared by every worker.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "config/config.h"
#include "config/pattern.h"
#include "shield/network.h"
#include "transport/endpoint.h"

namespace proxy {

// Whether `number` (the called user part) may be called under `policy`: it must match one of
// the allowed patterns — "local" matching when `local_user` is true — and none of the denied
// ones. Patterns that do not parse never match (the config validates them at load).
bool destination_allowed(const config::CallPolicy& policy, std::string_view number,
                         bool local_user);

// Resolves a trunk's host: an IP literal as is, a name with getaddrinfo (first address).
base::Result<transport::Endpoint> resolve_trunk(const config::Trunk& trunk);

class DialPlan {
 public:
  struct TrunkEntry {
    config::Trunk config;
    transport::Endpoint address;       // resolved host and port
    shield::NetworkList inbound;       // inbound_sources (or the host's address)
    std::vector<config::Pattern> outbound;
  };

  // Validates and resolves every trunk. Errors name the trunk and the key
  // ("trunk \"carrier\": outbound[1]: unclosed [").
  static base::Result<DialPlan> build(const std::vector<config::Trunk>& trunks);
  DialPlan() = default;

  // The first trunk (config order) with an outbound pattern matching `number`.
  std::optional<std::size_t> outbound_trunk(std::string_view number) const;
  // `number` as it is sent to trunk `t`: `strip` leading characters removed, `prefix` added.
  std::string outbound_number(std::size_t t, std::string_view number) const;
  // The trunk whose inbound sources contain `source` (first in config order).
  std::optional<std::size_t> trunk_of_source(const transport::Endpoint& source) const;
  // The local user a call from trunk `t` to `number` rings (its DID map), if any.
  std::optional<std::string> did_target(std::size_t t, std::string_view number) const;

  const TrunkEntry& trunk(std::size_t t) const { return trunks_[t]; }
  std::size_t size() const { return trunks_.size(); }

 private:
  std::vector<TrunkEntry> trunks_;
};

}  // namespace proxy
