#include "registrar/subscribers.h"

namespace registrar {

std::shared_ptr<const SubscriberCache::Entry> SubscriberCache::find(std::string_view name) const {
  std::shared_lock lock(mu_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return nullptr;
  return it->second;
}

std::vector<std::string> SubscriberCache::replace(const std::vector<store::Subscriber>& all) {
  base::StringMap<std::shared_ptr<const Entry>> fresh;
  for (const store::Subscriber& s : all) {
    fresh.emplace(s.name, std::make_shared<const Entry>(
                              Entry{s.ha1_md5, s.ha1_sha256, s.realm, s.require_tls}));
  }
  std::vector<std::string> gone;
  std::unique_lock lock(mu_);
  for (const auto& [name, entry] : by_name_) {
    if (!fresh.count(name)) gone.push_back(name);
  }
  by_name_ = std::move(fresh);
  return gone;
}

std::size_t SubscriberCache::size() const {
  std::shared_lock lock(mu_);
  return by_name_.size();
}

}  // namespace registrar
