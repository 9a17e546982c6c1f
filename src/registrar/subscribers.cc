#include "registrar/subscribers.h"

#include <utility>

#include "base/string_map.h"

namespace registrar {
namespace {

constexpr base::StringHash hash_name;

}  // namespace

SubscriberCache::Index SubscriberCache::index_of(const std::vector<store::Subscriber>& all) {
  Index index;
  for (const store::Subscriber& s : all) {
    // Names are unique in the store; a repeat would replace the earlier entry.
    const std::size_t h = hash_name(s.name);
    const auto same_name = [&](const std::shared_ptr<const Entry>& e) { return e->name == s.name; };
    if (Index::Entry* repeat = index.find(h, same_name)) index.erase(repeat);
    index.insert(h, std::make_shared<const Entry>(
                        Entry{s.name, s.ha1_md5, s.ha1_sha256, s.realm, s.require_tls}));
  }
  return index;
}

const SubscriberCache::Index::Entry* SubscriberCache::lookup(const Index& index,
                                                             std::string_view name,
                                                             std::size_t hash) {
  return index.find(hash, [&](const std::shared_ptr<const Entry>& e) { return e->name == name; });
}

std::shared_ptr<const SubscriberCache::Entry> SubscriberCache::find(std::string_view name) const {
  const std::size_t h = hash_name(name);
  std::shared_lock lock(mu_);
  const Index::Entry* slot = lookup(index_, name, h);
  return slot != nullptr ? slot->value : nullptr;
}

std::vector<std::string> SubscriberCache::replace(const std::vector<store::Subscriber>& all) {
  Index fresh = index_of(all);
  std::vector<std::string> gone;
  std::unique_lock lock(mu_);
  index_.for_each([&](const std::shared_ptr<const Entry>& e) {
    if (lookup(fresh, e->name, hash_name(e->name)) == nullptr) gone.push_back(e->name);
  });
  std::swap(index_, fresh);
  lock.unlock();
  return gone;  // the old index is freed here, outside the lock
}

std::size_t SubscriberCache::size() const {
  std::shared_lock lock(mu_);
  return index_.size();
}

}  // namespace registrar
