// The worker's mailbox (Transport::post): tasks from other threads run on the worker's thread,
// each once and in the order each thread put them, and tasks that come while a wake-up is
// pending share it. base::WakeBatch holds a thread's wake-ups until it ends.
#include "transport/mailbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "base/wake_batch.h"

namespace transport {
namespace {

using namespace std::chrono_literals;

// An io_context run on its own thread, like a worker's, with a mailbox delivering into it.
class MailboxTest : public ::testing::Test {
 protected:
  MailboxTest()
      : mail_(io_, [this](std::vector<Mailbox::Task>& tasks) {
          ++deliveries_;
          for (Mailbox::Task& t : tasks) t();
        }) {}

  void start() {
    mail_.watch();
    thread_ = std::thread([this] {
      worker_id_ = std::this_thread::get_id();
      io_.run();
    });
  }

  ~MailboxTest() override {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // Puts a task that fulfils a promise and waits for it (every earlier task has run then).
  void drain() {
    std::promise<void> done;
    mail_.put([&] { done.set_value(); });
    ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  }

  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::atomic<int> deliveries_{0};
  Mailbox mail_;
  std::thread thread_;
  std::thread::id worker_id_;
};

TEST_F(MailboxTest, TasksFromManyThreadsRunOnTheWorkerOnceEachInEachThreadsOrder) {
  start();
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<std::vector<int>> seen(kThreads);  // written on the worker's thread only
  std::atomic<int> off_thread{0};
  std::vector<std::thread> posters;
  for (int p = 0; p < kThreads; ++p) {
    posters.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        mail_.put([&, p, i] {
          if (std::this_thread::get_id() != worker_id_) ++off_thread;
          seen[static_cast<std::size_t>(p)].push_back(i);
        });
      }
    });
  }
  for (auto& t : posters) t.join();
  drain();
  EXPECT_EQ(off_thread.load(), 0);
  for (int p = 0; p < kThreads; ++p) {
    const auto& got = seen[static_cast<std::size_t>(p)];
    ASSERT_EQ(got.size(), static_cast<std::size_t>(kEach)) << "poster " << p;
    for (int i = 0; i < kEach; ++i) ASSERT_EQ(got[static_cast<std::size_t>(i)], i);
  }
  // Tasks that came while a wake-up was pending shared it.
  EXPECT_EQ(mail_.wakeups(), static_cast<std::uint64_t>(deliveries_.load()));
  EXPECT_LT(mail_.wakeups(), static_cast<std::uint64_t>(kThreads * kEach));
}

TEST_F(MailboxTest, TasksPutBeforeTheWorkerRunsRunOnceItDoes) {
  std::atomic<int> ran{0};
  for (int i = 0; i < 3; ++i) mail_.put([&] { ++ran; });
  start();
  drain();
  EXPECT_EQ(ran.load(), 3);
}

TEST_F(MailboxTest, ATaskMayPutAnotherWhichRunsOnTheNextWakeUp) {
  start();
  std::promise<int> second;
  mail_.put([&] {
    const int deliveries_then = deliveries_.load();
    mail_.put([&, deliveries_then] { second.set_value(deliveries_.load() - deliveries_then); });
  });
  auto f = second.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(f.get(), 1);
}

TEST_F(MailboxTest, AWakeBatchWakesTheWorkerOnceWhenItEnds) {
  start();
  std::atomic<int> ran{0};
  {
    const base::WakeBatch batch;
    for (int i = 0; i < 100; ++i) mail_.put([&] { ++ran; });
    // Nothing woke the worker yet: the tasks wait for the batch's end.
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(ran.load(), 0);
    EXPECT_EQ(mail_.wakeups(), 0u);
  }
  drain();
  EXPECT_EQ(ran.load(), 100);
  EXPECT_LE(mail_.wakeups(), 2u);  // the batch's one, and the drain's unless it joined it
}

TEST(WakeBatchTest, NestedBatchesWakeWhenTheOutermostEnds) {
  int woken = 0;
  auto wake = [](void* n) { ++*static_cast<int*>(n); };
  EXPECT_FALSE(base::WakeBatch::defer(&woken, wake));  // no batch: the caller wakes itself
  {
    const base::WakeBatch outer;
    {
      const base::WakeBatch inner;
      EXPECT_TRUE(base::WakeBatch::defer(&woken, wake));
      EXPECT_TRUE(base::WakeBatch::defer(&woken, wake));  // the same target: once
    }
    EXPECT_EQ(woken, 0);
  }
  EXPECT_EQ(woken, 1);
  {
    const base::WakeBatch again;  // a later batch starts empty
  }
  EXPECT_EQ(woken, 1);
}

}  // namespace
}  // namespace transport
