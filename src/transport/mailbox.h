// Tasks other threads hand to a worker (Transport::post): the store's writer with the answers
// to durable REGISTERs, one worker with a response for a transaction that lives on another.
//
// Why not asio::post: it takes the io_context's own mutex and, when the worker sleeps in
// epoll_wait, interrupts it (epoll_ctl) while still holding that mutex. The woken worker goes
// straight for the same mutex and often finds it held: a futex wait, a futex wake and one more
// context switch for each post. At 8,000 REGISTER/s that was nearly half of the store's futex
// calls and all of the worker's (docs/performance.md, "The worker's mailbox").
//
// Here a poster holds only the mailbox's mutex, for a push, and wakes the worker after
// releasing it, by a write to an eventfd the worker's event loop watches. Tasks that come while
// a wake-up is pending join it: one write and one wake-up for however many tasks. A poster
// inside a base::WakeBatch wakes the worker when the batch ends.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace transport {

class Mailbox {
 public:
  using Task = std::function<void()>;
  // Calls `deliver(tasks)` on the thread running `io`, once per wake-up, with the tasks in the
  // order they were put (tasks from one thread run in the order that thread put them).
  // `deliver` may put more tasks; they come with the next wake-up. Throws std::system_error if
  // no eventfd can be made (a programmer or resource error at start-up).
  using Deliver = std::function<void(std::vector<Task>& tasks)>;
  Mailbox(boost::asio::io_context& io, Deliver deliver);
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Any thread. The task runs once the worker has started watching (watch()) and is running
  // its io_context; tasks still here when the io_context stops are destroyed unrun.
  void put(Task task);
  // The worker's thread, or before it starts: begins watching the eventfd. Call once.
  void watch();
  // How many times the worker was woken for mail (a wake-up delivers one or more tasks).
  std::uint64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

 private:
  void on_readable();
  static void signal(void* mailbox);

  boost::asio::posix::stream_descriptor fd_;
  const Deliver deliver_;
  std::mutex mu_;             // guards the two members below
  std::vector<Task> tasks_;   // put, not yet taken
  bool signalled_ = false;    // the eventfd was written and the worker has not taken since
  std::vector<Task> taking_;  // the worker's thread only: the tasks being delivered
  std::atomic<std::uint64_t> wakeups_{0};  // written by the worker's thread only
};

}  // namespace transport
