// The SQLite implementation of store::Store. Most code uses it through store::open_sqlite()
// and the Store interface; this header is for what only this implementation offers (the
// writer's counters, for metrics and tests).
//
// Two connections to the one file: the writer thread's own, which commits queued binding
// changes and call records in groups, and one for the synchronous calls, guarded by a mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "store/store.h"

namespace store {

namespace sqlite {
class Connection;
}

class SqliteStore final : public Store {
 public:
  // As open_sqlite(), with the concrete type.
  static base::Result<std::unique_ptr<SqliteStore>> open(const std::string& path,
                                                         SqliteOptions options = {});
  // Commits everything queued (flush), stops the writer thread and closes the file.
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  base::Result<void> put_subscriber(const Subscriber& s) override;
  base::Result<void> put_subscribers(const std::vector<Subscriber>& list) override;
  base::Result<std::optional<Subscriber>> get_subscriber(const std::string& name) override;
  base::Result<std::vector<Subscriber>> list_subscribers() override;
  base::Result<bool> remove_subscriber(const std::string& name) override;
  base::Result<std::uint64_t> subscribers_version() override;

  base::Result<std::vector<Binding>> load_bindings(std::int64_t now) override;
  base::Result<std::vector<Binding>> bindings_of(const std::string& aor, std::int64_t now) override;
  using Store::apply;
  void apply(std::shared_ptr<const BindingChange> change,
             std::function<void(bool durable)> done) override;
  base::Result<std::size_t> purge_expired(std::int64_t now) override;

  base::Result<void> put_ban(const Ban& ban) override;
  base::Result<bool> remove_ban(const std::string& address) override;
  base::Result<std::vector<Ban>> list_bans(std::int64_t now) override;

  void add_call_record(CallRecord record) override;

  // Returns at once when called on the writer thread (from a `done` callback), which would
  // otherwise wait for itself.
  void flush() override;

  struct WriterStats {
    std::uint64_t groups = 0;         // transactions the writer committed (or tried to)
    std::uint64_t writes = 0;         // binding changes and call records taken from the queue
    std::uint64_t failed = 0;         // of those, how many were not made durable
    std::uint64_t largest_group = 0;  // the most writes one transaction carried
    std::uint64_t wakes = 0;          // times a queued write woke the writer
    std::uint64_t queued = 0;         // waiting now for the writer to take them
  };
  WriterStats writer_stats() const;

 private:
  // One queued write: a binding change with its callback, or a call record.
  struct Write {
    std::variant<std::shared_ptr<const BindingChange>, CallRecord> what;
    std::function<void(bool durable)> done;  // empty for call records
  };

  SqliteStore(std::string path, SqliteOptions options, std::unique_ptr<sqlite::Connection> sync,
              std::unique_ptr<sqlite::Connection> writer);

  void enqueue(Write write);
  void writer_loop();
  // Commits `group` in one transaction and calls back; returns how many failed.
  std::uint64_t commit_group(std::vector<Write>& group);
  void write_group(const std::vector<Write>& group, std::vector<char>& durable,
                   std::vector<std::string>& errors);
  base::Result<void> write_plain(const Write& write);  // no savepoint of its own
  base::Result<void> write_one(const Write& write);    // in a savepoint of its own
  void report(const std::string& message) const;

  const std::string path_;
  const SqliteOptions options_;

  std::mutex sync_mu_;  // guards sync_ (the connection of the synchronous calls)
  // Held for every write transaction of either connection (after sync_mu_ when both), so
  // that our own two connections queue on a mutex instead of on SQLite's busy handler, which
  // polls with sleeps of up to 100 ms. Other processes still meet the busy handler.
  std::mutex write_mu_;
  const std::unique_ptr<sqlite::Connection> sync_;
  const std::unique_ptr<sqlite::Connection> writer_;  // used by the writer thread only

  mutable std::mutex queue_mu_;           // guards the members below it
  std::condition_variable queued_cv_;     // the writer waits for writes or stopping_
  std::condition_variable completed_cv_;  // flush() waits for completed_
  std::vector<Write> queue_;
  std::uint64_t enqueued_ = 0;   // writes ever queued
  std::uint64_t completed_ = 0;  // writes ever committed or failed, callbacks run
  WriterStats stats_;
  bool stopping_ = false;
  // Someone waits for what is queued (a binding change's done, or flush()): the group window
  // applies. Otherwise the queue holds only call records and the record window applies.
  bool awaited_ = false;
  // What the writer waits for, so that enqueue() wakes it only when a write can end the wait.
  // kBusy: committing, or sitting out the group window, after which it looks at the queue.
  enum class Phase { kBusy, kIdle, kRecordWindow };
  Phase phase_ = Phase::kBusy;
  std::chrono::steady_clock::time_point last_commit_{};  // writer thread only

  std::thread writer_thread_;  // last: started once everything above exists
};

}  // namespace store
