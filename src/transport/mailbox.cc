#include "transport/mailbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "base/wake_batch.h"

namespace transport {
namespace {

int make_eventfd() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  return fd;
}

}  // namespace

Mailbox::Mailbox(boost::asio::io_context& io, Deliver deliver)
    : fd_(io, make_eventfd()), deliver_(std::move(deliver)) {}

void Mailbox::put(Task task) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
    wake = !std::exchange(signalled_, true);
  }
  if (!wake) return;  // a wake-up is pending: the worker takes this task with the others
  if (!base::WakeBatch::defer(this, &Mailbox::signal)) signal(this);
}

void Mailbox::signal(void* mailbox) {
  // Fails only when the counter would overflow, which one write per wake-up cannot reach.
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n =
      ::write(static_cast<Mailbox*>(mailbox)->fd_.native_handle(), &one, sizeof one);
}

void Mailbox::watch() {
  fd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                 [this](const boost::system::error_code& ec) {
                   if (ec) return;  // closed: the worker is stopping
                   on_readable();
                   watch();
                 });
}

void Mailbox::on_readable() {
  // The counter is read back to zero before the tasks are taken: a put() after the read
  // either finds signalled_ still set (and its task is taken below) or writes again.
  std::uint64_t count = 0;
  [[maybe_unused]] const ssize_t n = ::read(fd_.native_handle(), &count, sizeof count);
  taking_.clear();  // in case a task threw last time
  {
    std::lock_guard lock(mu_);
    taking_.swap(tasks_);
    signalled_ = false;
  }
  wakeups_.fetch_add(1, std::memory_order_relaxed);
  if (!taking_.empty()) deliver_(taking_);
  taking_.clear();
}

}  // namespace transport
