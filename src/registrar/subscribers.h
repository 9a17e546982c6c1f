// The subscribers the server authenticates, cached in memory (the hot path never reads the
// store) and refreshed when the store's subscribers_version changes — so `sipwarden user ...`
// takes effect on a running server within a second. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/string_map.h"
#include "store/store.h"

namespace registrar {

class SubscriberCache {
 public:
  struct Entry {
    std::string ha1_md5;
    std::string ha1_sha256;
    std::string realm;
    bool require_tls = false;
  };

  // The subscriber `name`, or null. The entry stays valid while held, even if the set is
  // replaced meanwhile (shared, never copied: find() is on every REGISTER and INVITE).
  std::shared_ptr<const Entry> find(std::string_view name) const;
  // Replaces the whole set; returns the names that were present before and are gone now.
  std::vector<std::string> replace(const std::vector<store::Subscriber>& all);
  std::size_t size() const;

 private:
  mutable std::shared_mutex mu_;
  base::StringMap<std::shared_ptr<const Entry>> by_name_;
};

}  // namespace registrar
