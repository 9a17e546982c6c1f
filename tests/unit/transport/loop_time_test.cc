// The loop time (base/clock.h): frozen inside a worker's batch, the real clocks elsewhere.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "base/clock.h"

namespace {

using namespace std::chrono_literals;

// Waits until the steady clock has moved past `t` (a few microseconds at most).
void wait_past(std::chrono::steady_clock::time_point t) {
  while (std::chrono::steady_clock::now() <= t) std::this_thread::sleep_for(1us);
}

TEST(LoopTimeTest, OutsideABatchTheClocksAreRead) {
  const auto first = base::steady_now();
  wait_past(first);
  EXPECT_GT(base::steady_now(), first);
  const auto wall = std::chrono::system_clock::now();
  EXPECT_LT(std::chrono::abs(base::system_now() - wall), 1s);
}

TEST(LoopTimeTest, ABatchSeesOneReadingUntilRefreshed) {
  base::LoopTimeScope scope;
  const auto steady = base::steady_now();
  const auto system = base::system_now();
  wait_past(steady);
  EXPECT_EQ(base::steady_now(), steady);
  EXPECT_EQ(base::system_now(), system);
  EXPECT_EQ(base::unix_now(), base::unix_seconds(system));

  scope.refresh();
  EXPECT_GT(base::steady_now(), steady);
}

TEST(LoopTimeTest, TheReadingIsTakenWhenFirstAskedFor) {
  base::LoopTimeScope scope;
  const auto opened = std::chrono::steady_clock::now();
  wait_past(opened);
  EXPECT_GT(base::steady_now(), opened);
}

TEST(LoopTimeTest, ScopesNestAndTheClocksComeBackAfter) {
  std::chrono::steady_clock::time_point outer;
  {
    base::LoopTimeScope a;
    outer = base::steady_now();
    wait_past(outer);
    {
      base::LoopTimeScope b;
      EXPECT_GT(base::steady_now(), outer);
    }
    EXPECT_EQ(base::steady_now(), outer);
  }
  EXPECT_GT(base::steady_now(), outer);  // read again
}

TEST(LoopTimeTest, EachThreadHasItsOwn) {
  base::LoopTimeScope scope;
  const auto frozen = base::steady_now();
  wait_past(frozen);
  std::chrono::steady_clock::time_point seen;
  std::thread([&] { seen = base::steady_now(); }).join();
  EXPECT_GT(seen, frozen);
  EXPECT_EQ(base::steady_now(), frozen);
}

}  // namespace
