#include "registrar/subscribers.h"

#include <bit>

#include "base/string_map.h"

namespace registrar {
namespace {

constexpr base::StringHash hash_name;

}  // namespace

SubscriberCache::Index SubscriberCache::index_of(const std::vector<store::Subscriber>& all) {
  Index index(all.empty() ? 0 : std::bit_ceil(2 * all.size()));
  const std::size_t mask = index.size() - 1;
  for (const store::Subscriber& s : all) {
    const std::size_t h = hash_name(s.name);
    std::size_t i = h & mask;
    // Names are unique in the store; a repeat would replace the earlier entry.
    while (index[i].entry && !(index[i].hash == h && index[i].entry->name == s.name)) {
      i = (i + 1) & mask;
    }
    index[i] = Slot{h, std::make_shared<const Entry>(
                           Entry{s.name, s.ha1_md5, s.ha1_sha256, s.realm, s.require_tls})};
  }
  return index;
}

const SubscriberCache::Slot* SubscriberCache::lookup(const Index& index, std::string_view name,
                                                     std::size_t hash) {
  if (index.empty()) return nullptr;
  const std::size_t mask = index.size() - 1;
  for (std::size_t i = hash & mask; index[i].entry; i = (i + 1) & mask) {
    if (index[i].hash == hash && index[i].entry->name == name) return &index[i];
  }
  return nullptr;
}

std::shared_ptr<const SubscriberCache::Entry> SubscriberCache::find(std::string_view name) const {
  const std::size_t h = hash_name(name);
  std::shared_lock lock(mu_);
  const Slot* slot = lookup(index_, name, h);
  return slot != nullptr ? slot->entry : nullptr;
}

std::vector<std::string> SubscriberCache::replace(const std::vector<store::Subscriber>& all) {
  Index fresh = index_of(all);
  std::size_t count = 0;
  for (const Slot& slot : fresh) count += slot.entry ? 1 : 0;
  std::vector<std::string> gone;
  std::unique_lock lock(mu_);
  for (const Slot& slot : index_) {
    if (slot.entry && lookup(fresh, slot.entry->name, slot.hash) == nullptr) {
      gone.push_back(slot.entry->name);
    }
  }
  index_.swap(fresh);
  size_ = count;
  lock.unlock();
  return gone;  // the old index is freed here, outside the lock
}

std::size_t SubscriberCache::size() const {
  std::shared_lock lock(mu_);
  return size_;
}

}  // namespace registrar
