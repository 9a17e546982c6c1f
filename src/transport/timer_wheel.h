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
// callbacks live in a base::SlotPool, addressed by id (index and generation), so cancel() frees
// the slot at once and the bucket entry, found stale when its tick comes, is dropped then.
// After a load peak the pool frees its emptied chunks, and each bucket gives back the room it
// no longer needs when its tick comes round.
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
    slot.value = std::move(fire);
    const Id id = (std::uint64_t{slot.generation} << 32) | slot.index;  // generation >= 1: not 0
    std::vector<Entry>& bucket = buckets_[due % kBuckets];
    bucket.push_back(Entry{due, id});
    if (bucket.capacity() > kBucketRoom) roomy_ = true;
    if (earliest_known_ && due < earliest_) earliest_ = due;
    return id;
  }

  // No-op for a timer that fired or was cancelled already.
  void cancel(Id id) {
    if (live(id) == nullptr) return;
    slots_.release(static_cast<std::uint32_t>(id));
    if (slots_.size() == 0 && roomy_) give_back_room();
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
      if (slots_.size() == 0) break;
      std::vector<Entry>& bucket = buckets_[t % kBuckets];
      if (bucket.empty()) {
        if (bucket.capacity() > kBucketRoom) std::vector<Entry>().swap(bucket);
        continue;
      }
      const std::size_t held = bucket.size();
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
      // A bucket keeps the room of its busiest revolution; once the load has fallen to a
      // quarter of what it holds (or to nothing, above), it gives the rest back.
      if (bucket.capacity() > kBucketRoom && bucket.capacity() / 4 > held) bucket.shrink_to_fit();
      for (const Id id : due_) {
        std::function<void()>* f = live(id);
        if (f == nullptr) continue;  // cancelled
        std::function<void()> fire = std::move(*f);
        slots_.release(static_cast<std::uint32_t>(id));
        if (slots_.size() == 0 && roomy_) give_back_room();
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

  // Memory held beyond the callbacks' own: the room of the buckets' entries, and the slots'
  // chunks (for the tests).
  std::size_t bucket_room() const {
    std::size_t room = 0;
    for (const auto& bucket : buckets_) room += bucket.capacity();
    return room;
  }
  std::size_t chunks_held() const { return slots_.chunks_held(); }

  // Drops every timer (their callbacks are destroyed, never called).
  void clear() {
    slots_.clear();
    give_back_room();
  }

 private:
  static constexpr Tick kBuckets = 4096;  // 41 s at the loop's 10 ms tick: SIP's 32 s fit
  static constexpr Tick kNever = ~Tick{0};
  static constexpr std::size_t kBucketRoom = 64;  // entries a bucket may keep however idle

  struct Entry {
    Tick due;
    Id id;
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

  // With no timer pending, every bucket entry left is a cancelled timer's: all are dropped, and
  // the room of buckets that grew under load is given back (a wheel that empties after a peak
  // visits no bucket until a timer starts again). Runs only when some bucket had grown.
  void give_back_room() {
    for (auto& bucket : buckets_) {
      if (bucket.capacity() > kBucketRoom) {
        std::vector<Entry>().swap(bucket);
      } else {
        bucket.clear();
      }
    }
    roomy_ = false;
    earliest_ = kNever;
    earliest_known_ = true;
  }

  // The callback of timer `id` if it is pending.
  std::function<void()>* live(Id id) {
    return slots_.find(static_cast<std::uint32_t>(id), static_cast<std::uint32_t>(id >> 32));
  }

  Tick now_;
  // When known: no pending timer is due before it (it may be a cancelled timer's tick).
  Tick earliest_ = kNever;
  bool earliest_known_ = true;
  std::vector<std::vector<Entry>> buckets_;
  base::SlotPool<std::function<void()>> slots_;  // the callbacks, by the ids' low 32 bits
  std::vector<Id> due_;  // scratch of advance()
  bool roomy_ = false;   // a bucket has grown past kBucketRoom since the last give_back_room()
};

}  // namespace transport
