// The worker loop's timers (src/transport/timer_wheel.h): each fires once, at its tick, in start
// order within a tick; cancelled ones never; next() never later than the earliest pending.
#include "transport/timer_wheel.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace transport {
namespace {

constexpr TimerWheel::Tick kStart = 1'000'000;

TEST(TimerWheelTest, FiresAtItsTickInStartOrder) {
  TimerWheel wheel(kStart);
  std::vector<int> fired;
  wheel.start(kStart + 5, [&] { fired.push_back(1); });
  wheel.start(kStart + 3, [&] { fired.push_back(2); });
  wheel.start(kStart + 5, [&] { fired.push_back(3); });
  EXPECT_EQ(wheel.size(), 3u);
  EXPECT_EQ(wheel.next(), kStart + 3);
  wheel.advance(kStart + 2);
  EXPECT_TRUE(fired.empty());
  wheel.advance(kStart + 3);
  EXPECT_EQ(fired, (std::vector<int>{2}));
  EXPECT_EQ(wheel.next(), kStart + 5);
  wheel.advance(kStart + 10);
  EXPECT_EQ(fired, (std::vector<int>{2, 1, 3}));
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.next(), std::nullopt);
}

TEST(TimerWheelTest, ACancelledTimerNeverFiresAndItsIdStaysDead) {
  TimerWheel wheel(kStart);
  int fired = 0;
  const auto a = wheel.start(kStart + 1, [&] { ++fired; });
  wheel.cancel(a);
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.next(), std::nullopt);
  // The slot is reused; the old id must not cancel the new timer.
  const auto b = wheel.start(kStart + 2, [&] { fired += 10; });
  EXPECT_NE(a, b);
  wheel.cancel(a);
  wheel.advance(kStart + 5);
  EXPECT_EQ(fired, 10);
  wheel.cancel(b);  // already fired: nothing
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelTest, CancellingTheFirstMiddleOrLastOfATickKeepsTheOthersInOrder) {
  // One bucket holds timers of this revolution and of later ones; each is cancelled from a
  // different place in it, and the rest still fire in start order, each in its revolution.
  TimerWheel wheel(kStart);
  std::vector<int> fired;
  std::vector<TimerWheel::Id> ids;
  for (int i = 0; i < 8; ++i) {
    const TimerWheel::Tick due = kStart + 7 + (i % 2 == 0 ? 0 : 4096);
    ids.push_back(wheel.start(due, [&fired, i] { fired.push_back(i); }));
  }
  wheel.cancel(ids[0]);
  wheel.cancel(ids[4]);
  wheel.cancel(ids[7]);
  wheel.start(kStart + 7, [&] { fired.push_back(8); });
  wheel.advance(kStart + 7);
  EXPECT_EQ(fired, (std::vector<int>{2, 6, 8}));
  wheel.cancel(ids[3]);
  EXPECT_EQ(wheel.next(), kStart + 7 + 4096);
  wheel.advance(kStart + 7 + 4096);
  EXPECT_EQ(fired, (std::vector<int>{2, 6, 8, 1, 5}));
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelTest, APastDeadlineFiresAtTheNextAdvance) {
  TimerWheel wheel(kStart);
  int fired = 0;
  wheel.start(kStart - 50, [&] { ++fired; });
  EXPECT_EQ(wheel.next(), kStart + 1);
  wheel.advance(kStart + 1);
  EXPECT_EQ(fired, 1);
}

TEST(TimerWheelTest, TimersMoreThanARevolutionAheadWaitForTheirTurn) {
  TimerWheel wheel(kStart);
  std::vector<int> fired;
  wheel.start(kStart + 4096 * 3 + 7, [&] { fired.push_back(3); });  // same bucket as +7
  wheel.start(kStart + 7, [&] { fired.push_back(1); });
  wheel.start(kStart + 4096 + 7, [&] { fired.push_back(2); });
  wheel.advance(kStart + 7);
  EXPECT_EQ(fired, (std::vector<int>{1}));
  EXPECT_EQ(wheel.next(), kStart + 4096 + 7);
  wheel.advance(kStart + 4096 + 6);
  EXPECT_EQ(fired, (std::vector<int>{1}));
  wheel.advance(kStart + 4096 + 7);
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
  // Only a far timer left: next() finds it beyond this revolution.
  EXPECT_EQ(wheel.next(), kStart + 4096 * 3 + 7);
  wheel.advance(kStart + 4096 * 3 + 7);
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
}

TEST(TimerWheelTest, AfterALongStallEverythingDueFiresOnce) {
  TimerWheel wheel(kStart);
  int fired = 0;
  for (int i = 1; i <= 20000; i += 3) wheel.start(kStart + i, [&] { ++fired; });
  int late = 0;
  wheel.start(kStart + 30000, [&] { ++late; });
  wheel.advance(kStart + 25000);  // more than a revolution at once
  EXPECT_EQ(fired, 6667);
  EXPECT_EQ(late, 0);
  EXPECT_EQ(wheel.next(), kStart + 30000);
  wheel.advance(kStart + 30000);
  EXPECT_EQ(late, 1);
}

TEST(TimerWheelTest, CallbacksStartAndCancelTimers) {
  TimerWheel wheel(kStart);
  std::vector<int> fired;
  TimerWheel::Id victim = 0;
  wheel.start(kStart + 1, [&] {
    fired.push_back(1);
    wheel.start(kStart, [&] { fired.push_back(2); });  // past: next tick, same advance
    wheel.cancel(victim);
  });
  victim = wheel.start(kStart + 2, [&] { fired.push_back(99); });
  wheel.advance(kStart + 3);
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelTest, ClearDropsEveryTimer) {
  TimerWheel wheel(kStart);
  int fired = 0;
  for (int i = 1; i < 100; ++i) wheel.start(kStart + i * 97, [&] { ++fired; });
  wheel.clear();
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.next(), std::nullopt);
  wheel.advance(kStart + 20000);
  EXPECT_EQ(fired, 0);
  wheel.start(kStart + 20001, [&] { ++fired; });
  wheel.advance(kStart + 20001);
  EXPECT_EQ(fired, 1);
}

// `ticks` ticks from `now`, each starting `per_tick` timers due 3,200 ticks (32 s) later, as under
// a flood; returns the tick reached.
TimerWheel::Tick flood(TimerWheel& wheel, TimerWheel::Tick now, int ticks, int per_tick,
                       int& fired) {
  for (int t = 0; t < ticks; ++t) {
    for (int i = 0; i < per_tick; ++i) wheel.start(now + 3200, [&fired] { ++fired; });
    wheel.advance(++now);
  }
  return now;
}

TEST(TimerWheelTest, APeaksRoomIsGivenBackWhenTheLoadFalls) {
  // A peak: 200 timers in every tick for a revolution and a half (as 32 s timers under a
  // flood), then a quiet revolution with one timer a tick. The slots of the peak must not stay
  // held.
  TimerWheel wheel(kStart);
  int fired = 0;
  TimerWheel::Tick now = flood(wheel, kStart, 6000, 200, fired);
  EXPECT_GE(wheel.chunks_held(), 600u);
  now = flood(wheel, now, 2 * 4096, 1, fired);
  EXPECT_EQ(fired, 6000 * 200 + 2 * 4096 - 3199);  // the last 3,199 are still pending
  EXPECT_LE(wheel.chunks_held(), 5u);  // the pending 3,199 and one empty chunk kept
}

TEST(TimerWheelTest, AWheelLeftEmptyAfterAPeakGivesBackItsRoom) {
  // No quieter load after the peak: the last timers fire or are cancelled, and no bucket is
  // visited again until a timer starts. The room must not wait for that.
  TimerWheel wheel(kStart);
  int fired = 0;
  TimerWheel::Tick now = flood(wheel, kStart, 5000, 100, fired);
  // 50,000 more are all cancelled (transactions answered early); the flood's fire.
  std::vector<TimerWheel::Id> later;
  for (int i = 0; i < 50000; ++i) later.push_back(wheel.start(now + 100 + i % 3000, [&] {}));
  for (TimerWheel::Id id : later) wheel.cancel(id);
  while (wheel.size() > 0) wheel.advance(++now);
  EXPECT_EQ(fired, 5000 * 100);
  EXPECT_LE(wheel.chunks_held(), 1u);
  EXPECT_EQ(wheel.next(), std::nullopt);
  // It still works.
  wheel.start(now + 5, [&] { fired = -1; });
  EXPECT_EQ(wheel.next(), now + 5);
  wheel.advance(now + 5);
  EXPECT_EQ(fired, -1);
}

// Random starts, cancels and advances against a simple model: every timer fires exactly once,
// not before its tick, at the first advance that reaches it; next() is never after the
// earliest pending deadline.
TEST(TimerWheelTest, AgreesWithAModel) {
  TimerWheel wheel(kStart);
  std::mt19937 rng(7);
  std::map<TimerWheel::Id, TimerWheel::Tick> pending;
  std::vector<TimerWheel::Id> ended;
  TimerWheel::Tick now = kStart;
  std::uint64_t fired_count = 0;
  for (int step = 0; step < 200000; ++step) {
    const auto what = rng() % 100;
    if (what < 55) {
      const TimerWheel::Tick due = now + 1 + (rng() % 3 == 0 ? rng() % 12000 : rng() % 400);
      auto id = std::make_shared<TimerWheel::Id>(0);
      *id = wheel.start(due, [&, id, due] {
        ASSERT_EQ(pending.count(*id), 1u) << "fired twice or after cancel";
        ASSERT_LE(due, now);
        pending.erase(*id);
        ended.push_back(*id);
        ++fired_count;
      });
      pending[*id] = due;
    } else if (what < 70 && !pending.empty()) {
      auto it = pending.begin();
      std::advance(it, rng() % pending.size());
      wheel.cancel(it->first);
      ended.push_back(it->first);
      pending.erase(it);
    } else {
      now += rng() % 20 == 0 ? rng() % 6000 : rng() % 30;
      wheel.advance(now);
      for (const auto& [id, due] : pending) ASSERT_GT(due, now) << "missed";
    }
    ASSERT_EQ(wheel.size(), pending.size());
    if (step % 1000 == 0) {
      const auto next = wheel.next();
      if (pending.empty()) {
        ASSERT_EQ(next, std::nullopt);
      } else {
        TimerWheel::Tick earliest = ~TimerWheel::Tick{0};
        for (const auto& [id, due] : pending) earliest = std::min(earliest, due);
        ASSERT_TRUE(next.has_value());
        ASSERT_LE(*next, earliest);
        ASSERT_GT(*next, now);
      }
      for (const auto id : ended) wheel.cancel(id);  // stale ids cancel nothing
      ASSERT_EQ(wheel.size(), pending.size());
      ended.clear();
    }
  }
  EXPECT_GT(fired_count, 10000u);
}

}  // namespace
}  // namespace transport
