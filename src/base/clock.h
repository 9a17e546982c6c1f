// Wall-clock time as the store, the nonces and the bans keep it: whole seconds since the Unix
// epoch.
#pragma once

#include <chrono>
#include <cstdint>

namespace base {

inline std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

inline std::int64_t unix_now() {
  return unix_seconds(std::chrono::system_clock::now());
}

}  // namespace base
