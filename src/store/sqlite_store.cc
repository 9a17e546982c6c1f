#include "store/sqlite_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <system_error>
#include <utility>

#include "base/thread_name.h"
#include "base/wake_batch.h"
#include "store/sqlite_connection.h"
#include "store/sqlite_schema.h"

namespace store {
namespace {

using sqlite::Connection;
using sqlite::Statement;
using sqlite::Transaction;

// ---- SQL. Each text is prepared once per connection and cached (Connection::statement).

constexpr char kUserVersion[] = "PRAGMA user_version";

constexpr char kPutSubscriber[] =
    "INSERT INTO subscribers (name, realm, ha1_md5, ha1_sha256, require_tls, created_at, "
    "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT (name) DO UPDATE SET realm = excluded.realm, ha1_md5 = excluded.ha1_md5, "
    "ha1_sha256 = excluded.ha1_sha256, require_tls = excluded.require_tls, "
    "created_at = excluded.created_at, updated_at = excluded.updated_at";
constexpr char kGetSubscriber[] =
    "SELECT name, realm, ha1_md5, ha1_sha256, require_tls, created_at, updated_at "
    "FROM subscribers WHERE name = ?1";
constexpr char kListSubscribers[] =
    "SELECT name, realm, ha1_md5, ha1_sha256, require_tls, created_at, updated_at "
    "FROM subscribers ORDER BY name";
constexpr char kDeleteSubscriber[] = "DELETE FROM subscribers WHERE name = ?1";
// The bindings of a user: AORs "name@..." (a range on the primary key: '@' + 1 is 'A'), and
// an AOR that is the bare name.
constexpr char kDeleteBindingsOfUser[] =
    "DELETE FROM bindings WHERE (aor >= ?2 AND aor < ?3) OR aor = ?1";
constexpr char kSubscribersVersion[] = "SELECT value FROM meta WHERE name = 'subscribers_version'";

constexpr char kLoadBindings[] =
    "SELECT aor, contact, expires_at, q, call_id, cseq, instance, reg_id, user_agent, transport, "
    "source, local, connection, listener, worker FROM bindings WHERE expires_at > ?1 "
    "ORDER BY aor, contact";
constexpr char kBindingsOf[] =
    "SELECT aor, contact, expires_at, q, call_id, cseq, instance, reg_id, user_agent, transport, "
    "source, local, connection, listener, worker FROM bindings WHERE aor = ?1 AND "
    "expires_at > ?2 ORDER BY contact";
// expires_at has no index (schema 2), so a purge scans the table: in slices of about
// kPurgeSlice bindings, each its own statement under the locks, so that the writer waits for
// one slice (about 2 ms) rather than for the whole scan (27 ms at 100,000 bindings).
// A slice runs from the AOR after the previous slice's last to the AOR of the kPurgeSlice-th
// binding on, all of whose bindings it takes.
constexpr std::int64_t kPurgeSlice = 4096;
constexpr char kPurgeSliceEndSql[] =
    "SELECT aor FROM bindings WHERE aor > ?1 ORDER BY aor LIMIT 1 OFFSET ?2";
constexpr char kPurgeSliceSql[] =
    "DELETE FROM bindings WHERE aor > ?1 AND aor <= ?2 AND expires_at <= ?3";
constexpr char kPurgeRestSql[] = "DELETE FROM bindings WHERE aor > ?1 AND expires_at <= ?2";

constexpr char kPutBan[] =
    "INSERT INTO bans (address, until, level, reason) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (address) DO UPDATE SET until = excluded.until, level = excluded.level, "
    "reason = excluded.reason";
constexpr char kDeleteBan[] = "DELETE FROM bans WHERE address = ?1";
constexpr char kListBans[] =
    "SELECT address, until, level, reason FROM bans WHERE until > ?1 ORDER BY address";

// The writer's statements, all prepared at open so that a broken schema fails there.
constexpr char kSavepointGroup[] = "SAVEPOINT grouped";
constexpr char kReleaseGroup[] = "RELEASE grouped";
constexpr char kRollbackToGroup[] = "ROLLBACK TO grouped";
constexpr char kSavepoint[] = "SAVEPOINT write";
constexpr char kRelease[] = "RELEASE write";
constexpr char kRollbackTo[] = "ROLLBACK TO write";
constexpr char kDeleteBindingsOfAor[] = "DELETE FROM bindings WHERE aor = ?1";
constexpr char kDeleteBinding[] = "DELETE FROM bindings WHERE aor = ?1 AND contact = ?2";
constexpr char kUpsertBinding[] =
    "INSERT INTO bindings (aor, contact, expires_at, q, call_id, cseq, instance, reg_id, "
    "user_agent, transport, source, local, connection, listener, worker) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "
    "ON CONFLICT (aor, contact) DO UPDATE SET expires_at = excluded.expires_at, q = excluded.q, "
    "call_id = excluded.call_id, cseq = excluded.cseq, instance = excluded.instance, "
    "reg_id = excluded.reg_id, user_agent = excluded.user_agent, "
    "transport = excluded.transport, source = excluded.source, local = excluded.local, "
    "connection = excluded.connection, listener = excluded.listener, worker = excluded.worker";
constexpr char kAddCallRecord[] =
    "INSERT INTO call_records (call_id, caller, callee, source, transport, started_at, "
    "answered_at, ended_at, final_code) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char* kWriterStatements[] = {
    "BEGIN IMMEDIATE", "COMMIT",       "ROLLBACK",       kSavepointGroup, kReleaseGroup,
    kRollbackToGroup,  kSavepoint,     kRelease,         kRollbackTo,     kDeleteBindingsOfAor,
    kDeleteBinding,    kUpsertBinding, kAddCallRecord,
};

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

// Creates the file with mode 0600 if it does not exist, before SQLite would create it with
// 0644: it holds password hashes. SQLite gives the -wal and -shm files the same mode.
base::Result<void> create_private_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return std::string("store " + path + ": cannot open or create: " + std::strerror(errno));
  }
  ::close(fd);
  return {};
}

base::Result<int> read_user_version(Connection& c) {
  auto s = c.statement(kUserVersion);
  if (!s) return s.error();
  auto row = s->step("reading the schema version");
  if (!row) return row.error();
  return *row ? static_cast<int>(s->integer(0)) : 0;
}

std::string newer_schema(const std::string& path, int found) {
  return "store " + path + ": the database has schema version " + std::to_string(found) +
         ", newer than the latest this sipwarden knows (" +
         std::to_string(sqlite::schema_version()) +
         "); use the sipwarden that wrote it or a newer one";
}

// Brings the schema to the current version: every missing migration and the new
// user_version in one transaction, so a failure leaves the file as it was. Two processes
// opening a new file at once queue on the write lock; the second finds nothing to do.
base::Result<void> migrate(Connection& c) {
  auto before = read_user_version(c);
  if (!before) return before.error();
  if (*before > sqlite::schema_version()) return newer_schema(c.path(), *before);
  if (*before == sqlite::schema_version()) return {};

  Transaction txn(c);
  if (auto r = txn.begin(); !r) return r;
  auto found = read_user_version(c);  // again, under the write lock
  if (!found) return found.error();
  if (*found > sqlite::schema_version()) return newer_schema(c.path(), *found);
  for (const auto& m : sqlite::migrations()) {
    if (m.version <= *found) continue;
    auto r = c.exec(m.sql, "migrating from schema version " + std::to_string(*found) + " to " +
                               std::to_string(m.version));
    if (!r) return r;
  }
  // PRAGMA takes no parameters; the number is ours.
  auto r = c.exec("PRAGMA user_version = " + std::to_string(sqlite::schema_version()),
                  "setting the schema version");
  if (!r) return r;
  return txn.commit();
}

Subscriber read_subscriber(const Statement& s) {
  Subscriber out;
  out.name = s.text(0);
  out.realm = s.text(1);
  out.ha1_md5 = s.text(2);
  out.ha1_sha256 = s.text(3);
  out.require_tls = s.integer(4) != 0;
  out.created_at = s.integer(5);
  out.updated_at = s.integer(6);
  return out;
}

Binding read_binding(const Statement& s) {
  Binding b;
  b.aor = s.text(0);
  b.contact = s.text(1);
  b.expires_at = s.integer(2);
  b.q = s.real(3);
  b.call_id = s.text(4);
  b.cseq = static_cast<std::uint32_t>(s.integer(5));
  b.instance = s.text(6);
  b.reg_id = s.text(7);
  b.user_agent = s.text(8);
  b.transport = s.text(9);
  b.source = s.text(10);
  b.local = s.text(11);
  b.connection = static_cast<std::uint64_t>(s.integer(12));  // stored as its int64 bit pattern
  b.listener = static_cast<std::uint32_t>(s.integer(13));
  b.worker = static_cast<std::uint16_t>(s.integer(14));
  return b;
}

base::Result<void> write_subscriber(Connection& c, const Subscriber& sub, std::string_view what) {
  auto s = c.statement(kPutSubscriber);
  if (!s) return s.error();
  s->bind(1, sub.name)
      .bind(2, sub.realm)
      .bind(3, sub.ha1_md5)
      .bind(4, sub.ha1_sha256)
      .bind(5, std::int64_t{sub.require_tls ? 1 : 0})
      .bind(6, sub.created_at)
      .bind(7, sub.updated_at);
  return s->run(what);
}

base::Result<std::vector<Binding>> read_bindings(Statement& s) {
  std::vector<Binding> out;
  for (;;) {
    auto row = s.step("reading bindings");
    if (!row) return row.error();
    if (!*row) return out;
    out.push_back(read_binding(s));
  }
}

base::Result<void> write_binding_change(Connection& c, const BindingChange& change) {
  if (change.remove_all) {
    auto s = c.statement(kDeleteBindingsOfAor);
    if (!s) return s.error();
    auto r = s->bind(1, change.aor).run_described([&] {
      return "removing all bindings of " + quoted(change.aor);
    });
    if (!r) return r;
  }
  for (const auto& contact : change.remove) {
    auto s = c.statement(kDeleteBinding);
    if (!s) return s.error();
    auto r = s->bind(1, change.aor).bind(2, contact).run_described([&] {
      return "removing binding " + quoted(contact);
    });
    if (!r) return r;
  }
  for (const auto& b : change.upsert) {
    if (!b.aor.empty() && b.aor != change.aor) {
      return std::string("store " + c.path() + ": binding change for " + quoted(change.aor) +
                         " holds a binding of another AOR, " + quoted(b.aor));
    }
    auto s = c.statement(kUpsertBinding);
    if (!s) return s.error();
    s->bind(1, change.aor)
        .bind(2, b.contact)
        .bind(3, b.expires_at)
        .bind(4, b.q)
        .bind(5, b.call_id)
        .bind(6, std::int64_t{b.cseq})
        .bind(7, b.instance)
        .bind(8, b.reg_id)
        .bind(9, b.user_agent)
        .bind(10, b.transport)
        .bind(11, b.source)
        .bind(12, b.local)
        .bind(13, static_cast<std::int64_t>(b.connection))
        .bind(14, std::int64_t{b.listener})
        .bind(15, std::int64_t{b.worker});
    auto r = s->run_described(
        [&] { return "writing binding " + quoted(b.contact) + " of " + quoted(change.aor); });
    if (!r) return r;
  }
  return {};
}

base::Result<void> write_call_record(Connection& c, const CallRecord& r) {
  auto s = c.statement(kAddCallRecord);
  if (!s) return s.error();
  s->bind(1, r.call_id)
      .bind(2, r.caller)
      .bind(3, r.callee)
      .bind(4, r.source)
      .bind(5, r.transport)
      .bind(6, r.started_at)
      .bind(7, r.answered_at)
      .bind(8, r.ended_at)
      .bind(9, std::int64_t{r.final_code});
  return s->run_described([&] { return "writing the call record of " + quoted(r.call_id); });
}

base::Result<void> run_cached(Connection& c, const char* sql) {
  auto s = c.statement(sql);
  if (!s) return s.error();
  return s->run();
}

}  // namespace

// ---- open and close

base::Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path,
                                                             SqliteOptions options) {
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) {
    return std::string("store " + quoted(path) + ": a file name is needed");
  }
  if (auto r = create_private_file(path); !r) return r.error();
  auto sync = Connection::open(path, options.busy_timeout_ms);
  if (!sync) return sync.error();
  if (auto r = migrate(**sync); !r) return r.error();
  auto writer = Connection::open(path, options.busy_timeout_ms);
  if (!writer) return writer.error();
  for (const char* sql : kWriterStatements) {
    if (auto s = (*writer)->statement(sql); !s) return s.error();
  }
  try {
    return std::unique_ptr<SqliteStore>(
        new SqliteStore(path, std::move(options), std::move(*sync), std::move(*writer)));
  } catch (const std::system_error& e) {
    return std::string("store " + path + ": cannot start the writer thread: " + e.what());
  }
}

SqliteStore::SqliteStore(std::string path, SqliteOptions options,
                         std::unique_ptr<sqlite::Connection> sync,
                         std::unique_ptr<sqlite::Connection> writer)
    : path_(std::move(path)),
      options_(std::move(options)),
      sync_(std::move(sync)),
      writer_(std::move(writer)) {
  writer_thread_ = std::thread([this] { writer_loop(); });
  base::name_thread(writer_thread_, "sw-store");
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queued_cv_.notify_one();
  if (writer_thread_.joinable()) writer_thread_.join();  // the writer drains the queue first
}

base::Result<std::unique_ptr<Store>> open_sqlite(const std::string& path, SqliteOptions options) {
  auto s = SqliteStore::open(path, std::move(options));
  if (!s) return s.error();
  return std::unique_ptr<Store>(std::move(*s));
}

// ---- subscribers

base::Result<void> SqliteStore::put_subscriber(const Subscriber& s) {
  std::scoped_lock lock(sync_mu_, write_mu_);
  return write_subscriber(*sync_, s, "writing subscriber " + quoted(s.name));
}

base::Result<void> SqliteStore::put_subscribers(const std::vector<Subscriber>& list) {
  std::scoped_lock lock(sync_mu_, write_mu_);
  Transaction txn(*sync_);
  if (auto r = txn.begin(); !r) return r;
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto r = write_subscriber(*sync_, list[i],
                              "writing subscriber " + quoted(list[i].name) + " (" +
                                  std::to_string(i + 1) + " of " + std::to_string(list.size()) +
                                  "; none written)");
    if (!r) return r;  // the transaction rolls back: none is written
  }
  return txn.commit();
}

base::Result<std::optional<Subscriber>> SqliteStore::get_subscriber(const std::string& name) {
  std::lock_guard lock(sync_mu_);
  auto s = sync_->statement(kGetSubscriber);
  if (!s) return s.error();
  auto row = s->bind(1, name).step("reading subscriber " + quoted(name));
  if (!row) return row.error();
  if (!*row) return std::optional<Subscriber>();
  return std::optional<Subscriber>(read_subscriber(*s));
}

base::Result<std::vector<Subscriber>> SqliteStore::list_subscribers() {
  std::lock_guard lock(sync_mu_);
  auto s = sync_->statement(kListSubscribers);
  if (!s) return s.error();
  std::vector<Subscriber> out;
  for (;;) {
    auto row = s->step("listing subscribers");
    if (!row) return row.error();
    if (!*row) return out;
    out.push_back(read_subscriber(*s));
  }
}

base::Result<bool> SqliteStore::remove_subscriber(const std::string& name) {
  std::scoped_lock lock(sync_mu_, write_mu_);
  Transaction txn(*sync_);
  if (auto r = txn.begin(); !r) return r.error();
  bool existed = false;
  {
    auto s = sync_->statement(kDeleteSubscriber);
    if (!s) return s.error();
    if (auto r = s->bind(1, name).run("removing subscriber " + quoted(name)); !r) return r.error();
    existed = sync_->changes() > 0;
  }
  {
    const std::string from = name + "@";
    const std::string to = name + "A";
    auto s = sync_->statement(kDeleteBindingsOfUser);
    if (!s) return s.error();
    auto r =
        s->bind(1, name).bind(2, from).bind(3, to).run("removing the bindings of " + quoted(name));
    if (!r) return r.error();
  }
  if (auto r = txn.commit(); !r) return r.error();
  return existed;
}

base::Result<std::uint64_t> SqliteStore::subscribers_version() {
  std::lock_guard lock(sync_mu_);
  auto s = sync_->statement(kSubscribersVersion);
  if (!s) return s.error();
  auto row = s->step("reading the subscribers version");
  if (!row) return row.error();
  if (!*row) return std::string("store " + path_ + ": the subscribers_version row is missing");
  return static_cast<std::uint64_t>(s->integer(0));
}

// ---- bindings

base::Result<std::vector<Binding>> SqliteStore::load_bindings(std::int64_t now) {
  std::lock_guard lock(sync_mu_);
  auto s = sync_->statement(kLoadBindings);
  if (!s) return s.error();
  s->bind(1, now);
  return read_bindings(*s);
}

base::Result<std::vector<Binding>> SqliteStore::bindings_of(const std::string& aor,
                                                            std::int64_t now) {
  std::lock_guard lock(sync_mu_);
  auto s = sync_->statement(kBindingsOf);
  if (!s) return s.error();
  s->bind(1, aor).bind(2, now);
  return read_bindings(*s);
}

void SqliteStore::apply(std::shared_ptr<const BindingChange> change,
                        std::function<void(bool durable)> done) {
  enqueue(Write{std::move(change), std::move(done)});
}

base::Result<std::size_t> SqliteStore::purge_expired(std::int64_t now) {
  std::size_t purged = 0;
  std::string from;  // every AOR is longer than this: the first slice starts at the first AOR
  for (;;) {
    std::scoped_lock lock(sync_mu_, write_mu_);
    std::optional<std::string> to;  // the slice's last AOR; none: the slice is the rest
    {
      auto end = sync_->statement(kPurgeSliceEndSql);
      if (!end) return end.error();
      auto row = end->bind(1, from).bind(2, kPurgeSlice - 1).step("purging expired bindings");
      if (!row) return row.error();
      if (*row) to = end->text(0);
    }
    {
      auto s = sync_->statement(to ? kPurgeSliceSql : kPurgeRestSql);
      if (!s) return s.error();
      if (to) {
        s->bind(1, from).bind(2, *to).bind(3, now);
      } else {
        s->bind(1, from).bind(2, now);
      }
      if (auto r = s->run("purging expired bindings"); !r) return r.error();
      purged += static_cast<std::size_t>(sync_->changes());
    }
    if (!to) return purged;
    from = std::move(*to);
  }
}

// ---- bans

base::Result<void> SqliteStore::put_ban(const Ban& ban) {
  std::scoped_lock lock(sync_mu_, write_mu_);
  auto s = sync_->statement(kPutBan);
  if (!s) return s.error();
  s->bind(1, ban.address).bind(2, ban.until).bind(3, std::int64_t{ban.level}).bind(4, ban.reason);
  return s->run("writing the ban of " + quoted(ban.address));
}

base::Result<bool> SqliteStore::remove_ban(const std::string& address) {
  std::scoped_lock lock(sync_mu_, write_mu_);
  auto s = sync_->statement(kDeleteBan);
  if (!s) return s.error();
  if (auto r = s->bind(1, address).run("removing the ban of " + quoted(address)); !r) {
    return r.error();
  }
  return sync_->changes() > 0;
}

base::Result<std::vector<Ban>> SqliteStore::list_bans(std::int64_t now) {
  std::lock_guard lock(sync_mu_);
  auto s = sync_->statement(kListBans);
  if (!s) return s.error();
  s->bind(1, now);
  std::vector<Ban> out;
  for (;;) {
    auto row = s->step("listing bans");
    if (!row) return row.error();
    if (!*row) return out;
    Ban b;
    b.address = s->text(0);
    b.until = s->integer(1);
    b.level = static_cast<int>(s->integer(2));
    b.reason = s->text(3);
    out.push_back(std::move(b));
  }
}

// ---- call records

void SqliteStore::add_call_record(CallRecord record) {
  enqueue(Write{std::move(record), {}});
}

// ---- the writer

void SqliteStore::enqueue(Write write) {
  bool wake = false;
  {
    std::lock_guard lock(queue_mu_);
    // Only a writer with nothing to do, or one sitting out the record window when the first
    // awaited write comes, has a reason to wake. While it commits or sits out the group
    // window, writes just queue: it looks at the queue when that is over. Each needless
    // wake-up costs a futex call and a context switch.
    wake = (phase_ == Phase::kIdle && queue_.empty()) ||
           (phase_ == Phase::kRecordWindow && write.done && !awaited_);
    if (write.done) awaited_ = true;
    if (wake) ++stats_.wakes;
    queue_.push_back(std::move(write));
    ++enqueued_;
  }
  if (wake) queued_cv_.notify_one();
}

void SqliteStore::flush() {
  if (std::this_thread::get_id() == writer_thread_.get_id()) return;
  std::unique_lock lock(queue_mu_);
  const std::uint64_t target = enqueued_;
  if (!queue_.empty() && !awaited_) {
    awaited_ = true;
    queued_cv_.notify_one();
  }
  completed_cv_.wait(lock, [&] { return completed_ >= target; });
}

SqliteStore::WriterStats SqliteStore::writer_stats() const {
  std::lock_guard lock(queue_mu_);
  WriterStats out = stats_;
  out.queued = queue_.size();
  return out;
}

void SqliteStore::writer_loop() {
  std::vector<Write> group;
  for (;;) {
    {
      std::unique_lock lock(queue_mu_);
      // Group commit: everything that queues until the group window since the last commit
      // is over goes into one transaction (one fsync). The writer sits the window out before
      // it looks at the queue, so that writes coming meanwhile need not wake it (the
      // window's end does); then, with nothing queued, it waits for a write.
      if (!stopping_) {
        queued_cv_.wait_until(lock, last_commit_ + options_.group_window,
                              [&] { return stopping_; });
      }
      if (queue_.empty()) {
        phase_ = Phase::kIdle;
        queued_cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
        if (queue_.empty()) return;  // stopping, and everything queued is done
      }
      // Call records alone wait for the longer record window, or until a write someone
      // awaits joins them.
      if (!stopping_ && !awaited_) {
        phase_ = Phase::kRecordWindow;
        queued_cv_.wait_until(lock, last_commit_ + options_.record_window,
                              [&] { return stopping_ || awaited_; });
      }
      phase_ = Phase::kBusy;
      group.swap(queue_);
      awaited_ = false;
    }
    last_commit_ = std::chrono::steady_clock::now();
    const std::uint64_t failed = commit_group(group);
    {
      std::lock_guard lock(queue_mu_);
      completed_ += group.size();
      ++stats_.groups;
      stats_.writes += group.size();
      stats_.largest_group = std::max<std::uint64_t>(stats_.largest_group, group.size());
      stats_.failed += failed;
    }
    completed_cv_.notify_all();
    group.clear();
  }
}

// One transaction for the whole group; each write inside its own savepoint, so that one
// refused write (a CHECK constraint, a bad AOR) fails alone instead of failing the group.
// Callbacks run after COMMIT has returned: with synchronous=FULL the WAL is on disk then.
std::uint64_t SqliteStore::commit_group(std::vector<Write>& group) {
  std::vector<char> durable(group.size(), 0);
  std::vector<std::string> errors;
  {
    std::lock_guard write_lock(write_mu_);
    Transaction txn(*writer_);
    bool committed = false;
    if (auto begun = txn.begin(); !begun) {
      errors.push_back(begun.error());
    } else {
      write_group(group, durable, errors);
      if (writer_->autocommit()) {
        errors.push_back("store " + path_ + ": the transaction was rolled back");
      } else if (auto done = txn.commit(); done) {
        committed = true;
      } else {
        errors.push_back(done.error());
      }
    }
    if (!committed) {
      std::fill(durable.begin(), durable.end(), 0);
      errors.push_back("store " + path_ + ": " + std::to_string(group.size()) +
                       " queued writes were not saved");
    }
  }  // a transaction not committed is rolled back here, before anyone is told

  for (const auto& e : errors) report(e);
  std::uint64_t failed = 0;
  // The callbacks hand answers to the workers; each worker is woken once, after the last.
  const base::WakeBatch wakes;
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (!durable[i]) ++failed;
    if (!group[i].done) continue;
    try {
      group[i].done(durable[i] != 0);
    } catch (...) {
      report("store " + path_ + ": a binding change's done callback threw; ignored");
    }
  }
  return failed;
}

// Writes every write of `group` inside the open transaction and marks in `durable` those
// written. A savepoint per write costs two more statements per write, and only a group with a
// refused write (a CHECK constraint, a bad AOR: rare) needs them. So the group is first written
// under one savepoint; if a write fails, that is rolled back and the group is written again
// with a savepoint per write, so that the refused write fails alone.
void SqliteStore::write_group(const std::vector<Write>& group, std::vector<char>& durable,
                              std::vector<std::string>& errors) {
  if (run_cached(*writer_, kSavepointGroup)) {
    base::Result<void> r;
    for (const auto& write : group) {
      r = write_plain(write);
      if (!r) break;
    }
    if (r) r = run_cached(*writer_, kReleaseGroup);
    if (r) {
      std::fill(durable.begin(), durable.end(), 1);
      return;
    }
    if (writer_->autocommit()) {  // SQLite rolled the whole transaction back
      errors.push_back(r.error());
      return;
    }
    auto undone = run_cached(*writer_, kRollbackToGroup);
    if (undone) undone = run_cached(*writer_, kReleaseGroup);
    if (!undone) {  // the first try cannot be undone: save none of the group
      errors.push_back(undone.error());
      (void)run_cached(*writer_, "ROLLBACK");
      return;
    }
  }
  for (std::size_t i = 0; i < group.size(); ++i) {
    auto r = write_one(group[i]);
    if (r) {
      durable[i] = 1;
    } else {
      errors.push_back(r.error());
      if (writer_->autocommit()) break;  // SQLite rolled the whole transaction back
    }
  }
}

base::Result<void> SqliteStore::write_plain(const Write& write) {
  return std::holds_alternative<std::shared_ptr<const BindingChange>>(write.what)
             ? write_binding_change(*writer_,
                                    *std::get<std::shared_ptr<const BindingChange>>(write.what))
             : write_call_record(*writer_, std::get<CallRecord>(write.what));
}

base::Result<void> SqliteStore::write_one(const Write& write) {
  if (auto r = run_cached(*writer_, kSavepoint); !r) return r;
  auto r = write_plain(write);
  if (!r) {
    if (!writer_->autocommit()) {
      (void)run_cached(*writer_, kRollbackTo);
      (void)run_cached(*writer_, kRelease);
    }
    return r;
  }
  return run_cached(*writer_, kRelease);
}

void SqliteStore::report(const std::string& message) const {
  if (!options_.on_error) {
    std::fprintf(stderr, "%s\n", message.c_str());
    return;
  }
  try {
    options_.on_error(message);
  } catch (...) {
    std::fprintf(stderr, "%s\n", message.c_str());
  }
}

}  // namespace store
