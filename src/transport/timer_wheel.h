// A hashed timing wheel: the timers of one worker's loop (transport.cc, LoopTimers), in whole
// ticks. Starting, cancelling and firing a timer cost O(1) and allocate nothing once the wheel
// has grown to its load.
//
// Why not a binary heap of deadlines plus a map from id to callback, as before: every SIP
// transaction leaves a timer or two behind for up to 32 s (Timers J, H, L, ...), so at 3,600
// calls/s a worker holds hundreds of thousands of them. Each start pushed onto that heap and
// inserted a node into the map, each firing popped the heap (a cache miss per level) and erased
// the node: 5-7 % of the server's CPU samples in the CALLS benchmark.
//
// Layout: kBuckets buckets of (due tick, id) entries, a timer in bucket due % kBuckets; a timer
// due more than kBuckets ticks ahead waits in its bucket until its revolution comes. The
// callbacks live in slots addressed by id (index and generation), so cancel() frees the slot at
// once and the bucket entry, found stale when its tick comes, is dropped then.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

namespace transport {

class TimerWheel {
 public:
  using Id = std::uint64_t;    // never 0
  using Tick = std::uint64_t;  // absolute tick number

  // `now`: the tick the loop is at (timers due then or before fire at the next advance()).
  explicit TimerWheel(Tick now) : now_(now), buckets_(kBuckets) {}
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // `fire` runs once, from the advance() that reaches `due` (a tick already passed: the next
  // advance()). Timers due in the same tick fire in the order they were started.
  Id start(Tick due, std::function<void()> fire) {
    if (due <= now_) due = now_ + 1;
    std::uint32_t n;
    if (!free_.empty()) {
      n = free_.back();
      free_.pop_back();
    } else {
      n = static_cast<std::uint32_t>(slots_.size());
      slots_.emplace_back();
    }
    Slot& s = slots_[n];
    s.fire = std::move(fire);
    s.id = (std::uint64_t{s.generation} << 32) | n;
    buckets_[due % kBuckets].push_back(Entry{due, s.id});
    ++live_;
    if (earliest_known_ && due < earliest_) earliest_ = due;
    return s.id;
  }

  // No-op for a timer that fired or was cancelled already.
  void cancel(Id id) {
    Slot* s = live_slot(id);
    if (s != nullptr) release(*s);
  }

  // Fires every timer due at or before `now`, in order of due tick (a timer a callback starts
  // fires in this call too if it is due by `now`). Callbacks may start and cancel timers.
  void advance(Tick now) {
    if (now <= now_) return;
    // After a stall longer than a revolution, each bucket needs visiting once (in tick order
    // from the stall; every entry due by `now` fires).
    const Tick last = now - now_ > kBuckets ? now_ + kBuckets : now;
    const bool stalled = last != now;
    for (Tick t = now_ + 1; t <= last; ++t) {
      now_ = t;
      if (live_ == 0) break;
      std::vector<Entry>& bucket = buckets_[t % kBuckets];
      if (bucket.empty()) continue;
      due_.clear();
      // Entries of later revolutions stay, in their order; the due ones fire after.
      std::size_t kept = 0;
      for (const Entry& e : bucket) {
        if (e.due > (stalled ? now : t)) {
          bucket[kept++] = e;
        } else {
          due_.push_back(e.id);
        }
      }
      bucket.resize(kept);
      for (const Id id : due_) {
        Slot* s = live_slot(id);
        if (s == nullptr) continue;  // cancelled
        std::function<void()> fire = std::move(s->fire);
        release(*s);
        fire();  // may start timers, even in this bucket: they are due later or next advance
      }
    }
    now_ = now;
    if (earliest_ <= now_) earliest_known_ = false;  // next() looks for it when asked
  }

  // The earliest tick at which a timer is due, or nullopt when none is pending. May name the
  // tick of a timer cancelled since (the loop then wakes for nothing once).
  std::optional<Tick> next() {
    if (live_ == 0) return std::nullopt;
    if (!earliest_known_) {
      earliest_known_ = true;
      earliest_ = find_earliest();
    }
    return earliest_;
  }

  std::size_t size() const { return live_; }  // timers pending

  // Drops every timer (their callbacks are destroyed, never called).
  void clear() {
    for (auto& bucket : buckets_) bucket.clear();
    for (Slot& s : slots_) {
      if (s.id != 0) release(s);
    }
    earliest_ = kNever;
    earliest_known_ = true;
  }

 private:
  static constexpr Tick kBuckets = 4096;  // 41 s at the loop's 10 ms tick: SIP's 32 s fit
  static constexpr Tick kNever = ~Tick{0};

  struct Entry {
    Tick due;
    Id id;
  };
  struct Slot {
    Id id = 0;  // 0: free
    std::uint32_t generation = 1;
    std::function<void()> fire;
  };

  // The first bucket ahead with an entry due in this revolution; else the earliest of all
  // (only timers more than a revolution ahead are pending).
  Tick find_earliest() const {
    for (Tick t = now_ + 1; t <= now_ + kBuckets; ++t) {
      for (const Entry& e : buckets_[t % kBuckets]) {
        if (e.due == t) return t;
      }
    }
    Tick best = kNever;
    for (const auto& bucket : buckets_) {
      for (const Entry& e : bucket) {
        if (e.due > now_) best = std::min(best, e.due);  // not the stale leftovers of a skip
      }
    }
    return best;
  }

  Slot* live_slot(Id id) {
    const auto n = static_cast<std::uint32_t>(id);
    if (n >= slots_.size() || slots_[n].id != id || id == 0) return nullptr;
    return &slots_[n];
  }

  void release(Slot& s) {
    const auto n = static_cast<std::uint32_t>(s.id);
    s.fire = nullptr;
    s.id = 0;
    s.generation = s.generation == 0xffffffffu ? 1 : s.generation + 1;
    free_.push_back(n);
    --live_;
  }

  Tick now_;
  // When known: no pending timer is due before it (it may be a cancelled timer's tick).
  Tick earliest_ = kNever;
  bool earliest_known_ = true;
  std::vector<std::vector<Entry>> buckets_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;
  std::vector<Id> due_;  // scratch of advance()
  std::size_t live_ = 0;
};

}  // namespace transport
