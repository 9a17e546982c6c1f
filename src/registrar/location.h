// The location service (RFC 3261 §10): the bindings of every address-of-record, in memory for
// lookups from any worker, rebuilt from the store at start-up. Thread-safe: sharded by AOR
// with a lock per shard, so workers registering different users do not contend.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/store.h"

namespace registrar {

class Location {
 public:
  // Replaces everything (start-up).
  void load(const std::vector<store::Binding>& bindings);
  // Unexpired bindings of `aor` at `now`, highest q first.
  std::vector<store::Binding> lookup(const std::string& aor, std::int64_t now) const;
  // Applies one REGISTER's change (the same semantics as Store::apply).
  void apply(const store::BindingChange& change);
  // Drops every binding of user `name` (any AOR "name@...") — the user was removed.
  void remove_user(const std::string& name);
  // Drops the bindings that expired at or before `now`. Cost is proportional to the number
  // that are due, not to the table: expiries wait in a min-heap.
  std::size_t expire(std::int64_t now);
  std::size_t size() const;

 private:
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::vector<store::Binding>> by_aor;
  };
  Shard& shard(const std::string& aor);
  const Shard& shard(const std::string& aor) const;
  void schedule(std::int64_t at, const std::string& aor);

  std::array<Shard, 64> shards_;
  std::mutex expiry_mu_;
  using Due = std::pair<std::int64_t, std::string>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> expiry_;
};

}  // namespace registrar
