// Time as the server reads it.
//
// Wall-clock time as the store, the nonces and the bans keep it: whole seconds since the Unix
// epoch.
//
// The loop time: in a batch of datagrams, a worker reads each clock once (when first asked)
// and the rest of the batch (rate limits, nonces, timers, call records) takes that reading.
// A call through the proxy read a clock about 40 times, 2.5 times per datagram; perf put
// that at 1.6 % of the server's CPU. A batch is at most 32 datagrams, so a reading is never
// older than the batch. Outside a batch (the store's writer, housekeeping, the CLI, unit
// tests) steady_now() and system_now() read the clocks.
#pragma once

#include <chrono>
#include <cstdint>

namespace base {

inline std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

struct LoopTime {
  bool set = false;  // in a batch: the readings below are kept until refreshed
  bool has_steady = false;
  bool has_system = false;
  std::chrono::steady_clock::time_point steady;
  std::chrono::system_clock::time_point system;
};

inline thread_local LoopTime t_loop_time;

inline std::chrono::steady_clock::time_point steady_now() {
  LoopTime& t = t_loop_time;
  if (!t.set) return std::chrono::steady_clock::now();
  if (!t.has_steady) {
    t.steady = std::chrono::steady_clock::now();
    t.has_steady = true;
  }
  return t.steady;
}

inline std::chrono::system_clock::time_point system_now() {
  LoopTime& t = t_loop_time;
  if (!t.set) return std::chrono::system_clock::now();
  if (!t.has_system) {
    t.system = std::chrono::system_clock::now();
    t.has_system = true;
  }
  return t.system;
}

inline std::int64_t unix_now() {
  return unix_seconds(system_now());
}

// Keeps this thread's loop time for the scope's life: the first steady_now() and the first
// system_now() read their clock, later ones return that reading until refresh() (between two
// batches of one wake-up). Scopes nest: the outer one's readings come back after.
class LoopTimeScope {
 public:
  LoopTimeScope() : outer_(t_loop_time) { refresh(); }
  ~LoopTimeScope() { t_loop_time = outer_; }
  LoopTimeScope(const LoopTimeScope&) = delete;
  LoopTimeScope& operator=(const LoopTimeScope&) = delete;

  void refresh() {
    t_loop_time = LoopTime{};
    t_loop_time.set = true;
  }

 private:
  const LoopTime outer_;
};

}  // namespace base
