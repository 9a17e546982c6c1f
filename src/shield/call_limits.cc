#include "shield/call_limits.h"

#include <iterator>
#include <utility>

namespace shield {

namespace {

using TimePoint = std::chrono::steady_clock::time_point;

constexpr std::chrono::seconds kWindow{60};
// Every this many admits on a worker thread, the shard it is in is swept of idle users.
constexpr unsigned kSweepEvery = 256;

}  // namespace

void CallLimits::Attempts::push_back(TimePoint t) {
  if (size_ == ring_.size()) {
    std::vector<TimePoint> bigger(ring_.empty() ? 4 : ring_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = ring_[(head_ + i) % ring_.size()];
    ring_.swap(bigger);
    head_ = 0;
  }
  ring_[(head_ + size_) % ring_.size()] = t;
  ++size_;
}

CallLimits::CallLimits(Clock clock) : clock_(std::move(clock)) {}

CallLimits::Shard& CallLimits::shard(std::string_view user) {
  return shards_[std::hash<std::string_view>{}(user) % shards_.size()];
}

const CallLimits::Shard& CallLimits::shard(std::string_view user) const {
  return shards_[std::hash<std::string_view>{}(user) % shards_.size()];
}

CallLimits::Refusal CallLimits::admit(std::string_view user, unsigned concurrent,
                                      unsigned per_minute) {
  const TimePoint now = clock_();
  Shard& s = shard(user);
  const std::lock_guard lock(s.mu);

  // A per-thread count keeps the sweep off the shared path (no counter every worker writes).
  thread_local unsigned admits_on_thread = 0;
  if (++admits_on_thread % kSweepEvery == 0) {
    for (auto it = s.users.begin(); it != s.users.end();) {
      it->second.attempts.forget_until(now - kWindow);
      it =
          it->second.active == 0 && it->second.attempts.empty() ? s.users.erase(it) : std::next(it);
    }
  }

  auto found = s.users.find(user);
  if (found == s.users.end()) found = s.users.try_emplace(std::string(user)).first;
  UserState& state = found->second;
  state.attempts.forget_until(now - kWindow);

  Refusal refusal = Refusal::kNone;
  if (per_minute != 0 && state.attempts.size() >= per_minute) {
    refusal = Refusal::kTooManyAttempts;
  } else if (concurrent != 0 && state.active >= concurrent) {
    refusal = Refusal::kTooManyCalls;
  }

  // Refused attempts count too, so hammering keeps the door shut. Only the newest
  // `per_minute` attempts can decide a refusal (the limit is reached exactly while the
  // per_minute-th newest is under 60 s old), so older ones are dropped to bound memory.
  if (per_minute == 0) {
    state.attempts.clear();
  } else {
    state.attempts.push_back(now);
    while (state.attempts.size() > per_minute) state.attempts.pop_front();
  }

  if (refusal == Refusal::kNone) ++state.active;
  return refusal;
}

void CallLimits::release(std::string_view user) {
  const TimePoint now = clock_();
  Shard& s = shard(user);
  const std::lock_guard lock(s.mu);
  const auto it = s.users.find(user);
  if (it == s.users.end()) return;
  UserState& state = it->second;
  if (state.active > 0) --state.active;
  state.attempts.forget_until(now - kWindow);
  if (state.active == 0 && state.attempts.empty()) s.users.erase(it);
}

unsigned CallLimits::active(std::string_view user) const {
  const Shard& s = shard(user);
  const std::lock_guard lock(s.mu);
  const auto it = s.users.find(user);
  return it == s.users.end() ? 0 : it->second.active;
}

std::string_view to_string(CallLimits::Refusal r) {
  switch (r) {
    case CallLimits::Refusal::kNone:
      return "";
    case CallLimits::Refusal::kTooManyAttempts:
      return "too many call attempts per minute";
    case CallLimits::Refusal::kTooManyCalls:
      return "too many concurrent calls";
  }
  return "";
}

}  // namespace shield
