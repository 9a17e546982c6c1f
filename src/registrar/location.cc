#include "registrar/location.h"

#include <algorithm>
#include <functional>

namespace registrar {

Location::Shard& Location::shard(const std::string& aor) {
  return shards_[std::hash<std::string>{}(aor) % shards_.size()];
}
const Location::Shard& Location::shard(const std::string& aor) const {
  return shards_[std::hash<std::string>{}(aor) % shards_.size()];
}

void Location::schedule(std::int64_t at, const std::string& aor) {
  std::lock_guard lock(expiry_mu_);
  expiry_.emplace(at, aor);
}

void Location::load(const std::vector<store::Binding>& bindings) {
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    s.by_aor.clear();
  }
  for (const store::Binding& b : bindings) {
    Shard& s = shard(b.aor);
    {
      std::lock_guard lock(s.mu);
      s.by_aor[b.aor].push_back(b);
    }
    schedule(b.expires_at, b.aor);
  }
}

std::vector<store::Binding> Location::lookup(const std::string& aor, std::int64_t now) const {
  std::vector<store::Binding> out;
  const Shard& s = shard(aor);
  {
    std::lock_guard lock(s.mu);
    auto it = s.by_aor.find(aor);
    if (it == s.by_aor.end()) return out;
    for (const store::Binding& b : it->second) {
      if (b.expires_at > now) out.push_back(b);
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const store::Binding& a, const store::Binding& b) { return a.q > b.q; });
  return out;
}

void Location::apply(const store::BindingChange& change) {
  Shard& s = shard(change.aor);
  {
    std::lock_guard lock(s.mu);
    auto& list = s.by_aor[change.aor];
    if (change.remove_all) list.clear();
    for (const std::string& contact : change.remove) {
      std::erase_if(list, [&](const store::Binding& b) { return b.contact == contact; });
    }
    for (const store::Binding& b : change.upsert) {
      auto it = std::find_if(list.begin(), list.end(),
                             [&](const store::Binding& x) { return x.contact == b.contact; });
      if (it != list.end()) {
        *it = b;
      } else {
        list.push_back(b);
      }
    }
    if (list.empty()) s.by_aor.erase(change.aor);
  }
  for (const store::Binding& b : change.upsert) schedule(b.expires_at, change.aor);
}

void Location::remove_user(const std::string& name) {
  const std::string prefix = name + "@";
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    std::erase_if(s.by_aor, [&](const auto& entry) { return entry.first.rfind(prefix, 0) == 0; });
  }
}

std::size_t Location::expire(std::int64_t now) {
  std::vector<std::string> due;
  {
    std::lock_guard lock(expiry_mu_);
    while (!expiry_.empty() && expiry_.top().first <= now) {
      due.push_back(expiry_.top().second);
      expiry_.pop();
    }
  }
  std::size_t removed = 0;
  for (const std::string& aor : due) {
    Shard& s = shard(aor);
    std::lock_guard lock(s.mu);
    auto it = s.by_aor.find(aor);
    if (it == s.by_aor.end()) continue;
    removed += std::erase_if(it->second, [&](const store::Binding& b) { return b.expires_at <= now; });
    if (it->second.empty()) s.by_aor.erase(it);
  }
  return removed;
}

std::size_t Location::size() const {
  std::size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [aor, list] : s.by_aor) n += list.size();
  }
  return n;
}

}  // namespace registrar
