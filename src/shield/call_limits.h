// Toll-fraud limits per extension: how many calls a user may have at once and how many call
// attempts per minute. Thread-safe (sharded by user), shared by every worker.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/string_map.h"

namespace shield {

class CallLimits {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit CallLimits(Clock clock = std::chrono::steady_clock::now);

  enum class Refusal {
    kNone,             // admitted: one attempt counted, one concurrent slot taken
    kTooManyAttempts,  // more than `per_minute` attempts in the last 60 s
    kTooManyCalls,     // `concurrent` calls already in progress
  };
  // A call attempt by `user`. On kNone the caller must call release(user) exactly once when
  // the call ends (refused downstream, cancelled, or hung up). A refused attempt is still
  // counted toward the per-minute limit (so hammering does not help). 0 means no limit.
  Refusal admit(std::string_view user, unsigned concurrent, unsigned per_minute);
  void release(std::string_view user);
  // Calls in progress for `user`.
  unsigned active(std::string_view user) const;

 private:
  // The times of a user's recent attempts, oldest first, in a ring that grows by doubling.
  // Not a std::deque: that allocates a map and a 512-byte block as soon as it is made (and
  // again when moved), and with both limits at 0 a user's state is made and dropped on every
  // call.
  class Attempts {
   public:
    using TimePoint = std::chrono::steady_clock::time_point;
    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    TimePoint front() const { return ring_[head_]; }
    void pop_front() {
      head_ = head_ + 1 == ring_.size() ? 0 : head_ + 1;
      --size_;
    }
    void push_back(TimePoint t);
    void clear() { head_ = size_ = 0; }
    // Drops the attempts made at or before `cutoff`.
    void forget_until(TimePoint cutoff) {
      while (!empty() && front() <= cutoff) pop_front();
    }

   private:
    std::vector<TimePoint> ring_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
  };
  struct UserState {
    unsigned active = 0;
    Attempts attempts;  // within the last 60 s
  };
  struct Shard {
    mutable std::mutex mu;
    base::StringMap<UserState> users;
  };
  Shard& shard(std::string_view user);
  const Shard& shard(std::string_view user) const;

  const Clock clock_;
  std::array<Shard, 16> shards_;
};

std::string_view to_string(CallLimits::Refusal r);  // "", "too many call attempts", ...

}  // namespace shield
