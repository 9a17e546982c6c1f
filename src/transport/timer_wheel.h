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
// Layout: kBuckets buckets, a timer in bucket due % kBuckets; a timer due more than kBuckets
// ticks ahead waits in its bucket until its revolution comes. The timers live in a
// base::SlotPool, addressed by id (index and generation); each bucket is a doubly linked list
// through the slots, in start order, so cancel() unlinks and frees a timer at once. After a load
// peak the pool frees its emptied chunks.
//
// Why lists through the slots, not a vector of (due, id) per bucket, as before: after a REGISTER
// load each of the 4,096 buckets kept a vector of a few hundred bytes, allocated while the load
// made and freed millions of objects of that size. Scattered over mimalloc's pages of that size
// class, they kept about 40 MiB of them from being given back (a worker's heap after 100,000
// registrations: 41 MiB committed in 512-byte blocks, 2 MiB of them in use). The buckets now
// allocate nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "base/slot_pool.h"

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
    const auto slot = slots_.acquire();
    Timer& timer = slot.value;
    timer.fire = std::move(fire);
    timer.due = due;
    link(slot.index, timer);
    if (earliest_known_ && due < earliest_) earliest_ = due;
    return make_id(slot.index, slot.generation);
  }

  // No-op for a timer that fired or was cancelled already.
  void cancel(Id id) {
    Timer* timer = live(id);
    if (timer == nullptr) return;
    if (timer->due != kUnlinked) unlink(*timer);
    slots_.release(static_cast<std::uint32_t>(id));
  }

  // Fires every timer due at or before `now`, in order of due tick (a timer a callback starts
  // fires in this call too if it is due by `now`). Callbacks may start and cancel timers.
  void advance(Tick now) {
    if (now <= now_) return;
    // After a stall longer than a revolution, each bucket needs visiting once (in tick order
    // from the stall; every timer due by `now` fires).
    const Tick last = now - now_ > kBuckets ? now_ + kBuckets : now;
    const bool stalled = last != now;
    for (Tick t = now_ + 1; t <= last; ++t) {
      now_ = t;
      if (slots_.size() == 0) break;
      const Tick fires_by = stalled ? now : t;
      // The due timers leave the bucket first (those of later revolutions stay), then fire:
      // a callback may cancel one of them (it is then found ended) or start timers.
      due_.clear();
      for (std::uint32_t i = buckets_[t % kBuckets].head; i != kNil;) {
        Timer& timer = slots_[i];
        const std::uint32_t next = timer.next;
        if (timer.due <= fires_by) {
          unlink(timer);
          due_.push_back(make_id(i, slots_.generation(i)));
        }
        i = next;
      }
      for (const Id id : due_) {
        Timer* timer = live(id);
        if (timer == nullptr) continue;  // cancelled by an earlier callback
        std::function<void()> fire = std::move(timer->fire);
        slots_.release(static_cast<std::uint32_t>(id));
        fire();  // may start timers, even in this bucket: they are due later or next advance
      }
    }
    now_ = now;
    if (earliest_ <= now_) earliest_known_ = false;  // next() looks for it when asked
  }

  // The earliest tick at which a timer is due, or nullopt when none is pending. May name the
  // tick of a timer cancelled since (the loop then wakes for nothing once).
  std::optional<Tick> next() {
    if (slots_.size() == 0) return std::nullopt;
    if (!earliest_known_) {
      earliest_known_ = true;
      earliest_ = find_earliest();
    }
    return earliest_;
  }

  std::size_t size() const { return slots_.size(); }  // timers pending
  std::size_t chunks_held() const { return slots_.chunks_held(); }  // for the tests

  // Drops every timer (their callbacks are destroyed, never called).
  void clear() {
    slots_.clear();
    std::fill(buckets_.begin(), buckets_.end(), Bucket{});
    earliest_ = kNever;
    earliest_known_ = true;
  }

 private:
  static constexpr Tick kBuckets = 4096;  // 41 s at the loop's 10 ms tick: SIP's 32 s fit
  static constexpr Tick kNever = ~Tick{0};
  static constexpr Tick kUnlinked = 0;  // a timer's `due` once it left its bucket to fire
  static constexpr std::uint32_t kNil = ~std::uint32_t{0};  // no slot (indexes are below 2^28)

  struct Timer {
    std::function<void()> fire;
    Tick due = kUnlinked;
    std::uint32_t prev = kNil;  // neighbours in the bucket, by slot index
    std::uint32_t next = kNil;
  };
  struct Bucket {
    std::uint32_t head = kNil;  // the earliest started
    std::uint32_t tail = kNil;
  };

  void link(std::uint32_t index, Timer& timer) {
    Bucket& bucket = buckets_[timer.due % kBuckets];
    timer.prev = bucket.tail;
    timer.next = kNil;
    (bucket.tail == kNil ? bucket.head : slots_[bucket.tail].next) = index;
    bucket.tail = index;
  }

  void unlink(Timer& timer) {
    Bucket& bucket = buckets_[timer.due % kBuckets];
    (timer.prev == kNil ? bucket.head : slots_[timer.prev].next) = timer.next;
    (timer.next == kNil ? bucket.tail : slots_[timer.next].prev) = timer.prev;
    timer.due = kUnlinked;
  }

  // The first bucket ahead with a timer due in this revolution; else the earliest of all (only
  // timers more than a revolution ahead are pending).
  Tick find_earliest() const {
    for (Tick t = now_ + 1; t <= now_ + kBuckets; ++t) {
      for (std::uint32_t i = buckets_[t % kBuckets].head; i != kNil; i = slots_[i].next) {
        if (slots_[i].due == t) return t;
      }
    }
    Tick best = kNever;
    for (const Bucket& bucket : buckets_) {
      for (std::uint32_t i = bucket.head; i != kNil; i = slots_[i].next) {
        best = std::min(best, slots_[i].due);
      }
    }
    return best;
  }

  static Id make_id(std::uint32_t index, std::uint32_t generation) {
    return (std::uint64_t{generation} << 32) | index;  // generation >= 1: never 0
  }

  // Timer `id` if it is pending.
  Timer* live(Id id) {
    return slots_.find(static_cast<std::uint32_t>(id), static_cast<std::uint32_t>(id >> 32));
  }

  Tick now_;
  // When known: no pending timer is due before it (it may be a cancelled timer's tick).
  Tick earliest_ = kNever;
  bool earliest_known_ = true;
  std::vector<Bucket> buckets_;   // kBuckets, allocated once
  base::SlotPool<Timer> slots_;  // the timers, by the ids' low 32 bits
  std::vector<Id> due_;          // scratch of advance()
};

}  // namespace transport
