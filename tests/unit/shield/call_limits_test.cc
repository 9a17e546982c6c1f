// Toll-fraud limits per extension, with a clock the test controls.
#include "shield/call_limits.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <thread>

namespace shield {
namespace {

using std::chrono::seconds;
using Refusal = CallLimits::Refusal;

class CallLimitsTest : public ::testing::Test {
 protected:
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::time_point(seconds(1000));
  CallLimits limits_{[this] { return now_; }};
};

TEST_F(CallLimitsTest, ConcurrentCallsAreCapped) {
  EXPECT_EQ(limits_.admit("1000", 2, 0), Refusal::kNone);
  EXPECT_EQ(limits_.admit("1000", 2, 0), Refusal::kNone);
  EXPECT_EQ(limits_.active("1000"), 2u);
  EXPECT_EQ(limits_.admit("1000", 2, 0), Refusal::kTooManyCalls);
  EXPECT_EQ(limits_.active("1000"), 2u);  // a refusal takes no slot
  // Another extension has its own count.
  EXPECT_EQ(limits_.admit("1001", 2, 0), Refusal::kNone);
  EXPECT_EQ(limits_.active("1001"), 1u);

  limits_.release("1000");
  EXPECT_EQ(limits_.active("1000"), 1u);
  EXPECT_EQ(limits_.admit("1000", 2, 0), Refusal::kNone);
  EXPECT_EQ(limits_.admit("1000", 2, 0), Refusal::kTooManyCalls);
}

TEST_F(CallLimitsTest, ZeroMeansNoLimit) {
  for (int i = 0; i < 500; ++i) ASSERT_EQ(limits_.admit("1000", 0, 0), Refusal::kNone);
  EXPECT_EQ(limits_.active("1000"), 500u);
}

TEST_F(CallLimitsTest, ReleaseNeverUnderflows) {
  limits_.release("nobody");
  EXPECT_EQ(limits_.active("nobody"), 0u);
  EXPECT_EQ(limits_.admit("1000", 1, 0), Refusal::kNone);
  limits_.release("1000");
  limits_.release("1000");
  limits_.release("1000");
  EXPECT_EQ(limits_.active("1000"), 0u);
  // One slot again, not more.
  EXPECT_EQ(limits_.admit("1000", 1, 0), Refusal::kNone);
  EXPECT_EQ(limits_.admit("1000", 1, 0), Refusal::kTooManyCalls);
}

TEST_F(CallLimitsTest, PerMinuteWindowSlides) {
  // Three attempts 20 s apart, all released at once (short calls).
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(limits_.admit("1000", 0, 3), Refusal::kNone) << i;
    limits_.release("1000");
    now_ += seconds(20);
  }
  // t=60: the first attempt (t=0) is 60 s old and no longer counts.
  EXPECT_EQ(limits_.admit("1000", 0, 3), Refusal::kNone);
  limits_.release("1000");
  // t=60 again: the three in the window are t=20, t=40, t=60.
  EXPECT_EQ(limits_.admit("1000", 0, 3), Refusal::kTooManyAttempts);
  now_ += seconds(39);  // t=99: t=40 is 59 s old and still counts
  EXPECT_EQ(limits_.admit("1000", 0, 3), Refusal::kTooManyAttempts);
  EXPECT_EQ(limits_.active("1000"), 0u);
  now_ += seconds(61);  // t=160: the refused attempts at t=60 and t=99 have aged out too
  EXPECT_EQ(limits_.admit("1000", 0, 3), Refusal::kNone);
}

// The limits against a plain model (a std::deque of attempt times per user), over a long random
// run: the attempts' ring wraps around and grows many times.
TEST_F(CallLimitsTest, AgreesWithAModelOverALongRun) {
  struct Model {
    unsigned active = 0;
    std::deque<std::chrono::steady_clock::time_point> attempts;
  };
  std::map<std::string, Model> model;
  const std::map<std::string, unsigned> per_minute = {{"1000", 7}, {"1001", 1}, {"1002", 0}};
  const unsigned concurrent = 3;
  std::mt19937 rng(7);
  std::map<Refusal, int> seen;
  for (int step = 0; step < 20000; ++step) {
    now_ += std::chrono::milliseconds(rng() % 3000);
    const auto it = std::next(per_minute.begin(), static_cast<long>(rng() % per_minute.size()));
    const std::string& user = it->first;
    Model& m = model[user];
    while (!m.attempts.empty() && now_ - m.attempts.front() >= seconds(60)) m.attempts.pop_front();
    if (rng() % 2 == 0) {
      Refusal expected = Refusal::kNone;
      if (it->second != 0 && m.attempts.size() >= it->second) {
        expected = Refusal::kTooManyAttempts;
      } else if (m.active >= concurrent) {
        expected = Refusal::kTooManyCalls;
      }
      if (it->second != 0) {
        m.attempts.push_back(now_);
        while (m.attempts.size() > it->second) m.attempts.pop_front();
      }
      if (expected == Refusal::kNone) ++m.active;
      ++seen[expected];
      ASSERT_EQ(limits_.admit(user, concurrent, it->second), expected) << "step " << step;
    } else {
      if (m.active > 0) --m.active;
      limits_.release(user);
    }
    ASSERT_EQ(limits_.active(user), m.active) << "step " << step;
  }
  // Every outcome came up often: the run went through both limits, not around them.
  EXPECT_GT(seen[Refusal::kNone], 1000);
  EXPECT_GT(seen[Refusal::kTooManyAttempts], 1000);
  EXPECT_GT(seen[Refusal::kTooManyCalls], 100);
}

TEST_F(CallLimitsTest, RefusedAttemptsStillCount) {
  EXPECT_EQ(limits_.admit("1000", 0, 2), Refusal::kNone);
  EXPECT_EQ(limits_.admit("1000", 0, 2), Refusal::kNone);
  // Hammering at one attempt per 10 s keeps the door shut: each refusal is itself counted.
  for (int i = 0; i < 12; ++i) {
    now_ += seconds(10);
    EXPECT_EQ(limits_.admit("1000", 0, 2), Refusal::kTooManyAttempts) << i;
  }
  // A minute of quiet opens it again.
  now_ += seconds(60);
  EXPECT_EQ(limits_.admit("1000", 0, 2), Refusal::kNone);
}

TEST_F(CallLimitsTest, ConcurrencyRefusalsCountTowardTheMinute) {
  EXPECT_EQ(limits_.admit("1000", 1, 3), Refusal::kNone);
  EXPECT_EQ(limits_.admit("1000", 1, 3), Refusal::kTooManyCalls);
  EXPECT_EQ(limits_.admit("1000", 1, 3), Refusal::kTooManyCalls);
  limits_.release("1000");
  EXPECT_EQ(limits_.admit("1000", 1, 3), Refusal::kTooManyAttempts);
  now_ += seconds(60);
  EXPECT_EQ(limits_.admit("1000", 1, 3), Refusal::kNone);
}

TEST_F(CallLimitsTest, ActiveCallsSurviveTheWindow) {
  EXPECT_EQ(limits_.admit("1000", 1, 5), Refusal::kNone);
  now_ += seconds(3600);  // a long call
  EXPECT_EQ(limits_.active("1000"), 1u);
  EXPECT_EQ(limits_.admit("1000", 1, 5), Refusal::kTooManyCalls);
  limits_.release("1000");
  EXPECT_EQ(limits_.active("1000"), 0u);
}

TEST_F(CallLimitsTest, ManyIdleUsersAreForgotten) {
  // Enough admits to trigger sweeps; every user ends idle and their attempts age out.
  for (int i = 0; i < 2000; ++i) {
    const std::string user = "user" + std::to_string(i);
    ASSERT_EQ(limits_.admit(user, 1, 1), Refusal::kNone);
    limits_.release(user);
  }
  now_ += seconds(61);
  for (int i = 0; i < 2000; ++i) {
    const std::string user = "user" + std::to_string(i);
    ASSERT_EQ(limits_.admit(user, 1, 1), Refusal::kNone) << user;
    ASSERT_EQ(limits_.active(user), 1u);
  }
}

TEST(CallLimitsThreadsTest, TwoThreadsKeepCountsExact) {
  CallLimits limits;  // the real clock
  constexpr int kRounds = 20000;
  std::atomic<int> refused{0};
  auto work = [&](const std::string& own) {
    for (int i = 0; i < kRounds; ++i) {
      // A user of its own and one both threads share.
      if (limits.admit(own, 1, 0) == Refusal::kNone) {
        limits.release(own);
      } else {
        refused.fetch_add(1);
      }
      if (limits.admit("shared", 0, 0) == Refusal::kNone) limits.release("shared");
    }
  };
  std::thread a(work, std::string("alice"));
  std::thread b(work, std::string("bob"));
  a.join();
  b.join();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(limits.active("alice"), 0u);
  EXPECT_EQ(limits.active("bob"), 0u);
  EXPECT_EQ(limits.active("shared"), 0u);

  // Two threads racing for one slot: never both inside.
  std::atomic<int> inside{0};
  std::atomic<int> overlap{0};
  auto race = [&] {
    for (int i = 0; i < kRounds; ++i) {
      if (limits.admit("one-line", 1, 0) != Refusal::kNone) continue;
      if (inside.fetch_add(1) != 0) overlap.fetch_add(1);
      inside.fetch_sub(1);
      limits.release("one-line");
    }
  };
  std::thread c(race);
  std::thread d(race);
  c.join();
  d.join();
  EXPECT_EQ(overlap.load(), 0);
  EXPECT_EQ(limits.active("one-line"), 0u);
}

TEST(CallLimitsRefusalTest, ReasonsReadAsText) {
  EXPECT_EQ(to_string(Refusal::kNone), "");
  EXPECT_EQ(to_string(Refusal::kTooManyAttempts), "too many call attempts per minute");
  EXPECT_EQ(to_string(Refusal::kTooManyCalls), "too many concurrent calls");
}

}  // namespace
}  // namespace shield
