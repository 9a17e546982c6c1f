// Timers, injected so that transactions, bans and timeouts are tested without sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace base {

class TimerService {
 public:
  using Id = std::uint64_t;  // never 0
  virtual ~TimerService() = default;
  // Calls `fire` once, `after` from now, on the owner's thread.
  virtual Id start(std::chrono::milliseconds after, std::function<void()> fire) = 0;
  // No-op if the timer already fired or was cancelled.
  virtual void cancel(Id id) = 0;
};

}  // namespace base
