#include "store/sqlite_connection.h"

#include <sqlite3.h>

#include <limits>
#include <utility>

namespace store::sqlite {

// ---- Statement

Statement::Statement(Statement&& other) noexcept
    : connection_(other.connection_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      bind_error_(other.bind_error_) {}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Statement& Statement::bind(int index, std::string_view text) {
  if (text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    if (bind_error_ == 0) bind_error_ = SQLITE_TOOBIG;
    return *this;
  }
  // SQLITE_STATIC: the caller keeps `text` alive while the statement is in use.
  const int rc = sqlite3_bind_text(stmt_, index, text.empty() ? "" : text.data(),
                                   static_cast<int>(text.size()), SQLITE_STATIC);
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
  return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
  return *this;
}

Statement& Statement::bind(int index, double value) {
  const int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
  return *this;
}

base::Result<bool> Statement::step(std::string_view what) {
  if (bind_error_ != 0) return failure(what);
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return failure(what);
}

base::Result<void> Statement::run(std::string_view what) {
  if (run_to_completion()) return {};
  return failure(what);
}

bool Statement::run_to_completion() {
  if (bind_error_ != 0) return false;
  for (;;) {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_DONE) return true;
    if (rc != SQLITE_ROW) return false;
  }
}

std::string Statement::failure(std::string_view what) const {
  if (what.empty()) what = sqlite3_sql(stmt_);
  if (bind_error_ == 0) return connection_->error(what);
  std::string message = "store " + connection_->path() + ": ";
  message.append(what);
  message += ": binding a parameter: ";
  message += sqlite3_errstr(bind_error_);
  return message;
}

std::int64_t Statement::integer(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

double Statement::real(int column) const {
  return sqlite3_column_double(stmt_, column);
}

std::string Statement::text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  const int n = sqlite3_column_bytes(stmt_, column);  // after _text, as SQLite asks
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

// ---- Connection

base::Result<std::unique_ptr<Connection>> Connection::open(const std::string& path,
                                                           int busy_timeout_ms) {
  sqlite3* db = nullptr;
  // NOMUTEX: a connection is used by one thread at a time (the writer thread, or callers
  // holding the store's mutex), so SQLite's own per-connection mutex would be wasted.
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "store " + path + ": cannot open: " +
                          (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return message;
  }
  std::unique_ptr<Connection> c(new Connection(path, db));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  if (auto r = c->exec("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;", "opening"); !r) {
    return r.error();
  }
  // WAL: readers never block the writer and a commit is one append + fsync of the log.
  // Setting it is persistent in the file; the pragma answers the mode actually in force.
  auto mode = c->statement("PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  auto row = mode->step();
  if (!row) return row.error();
  const std::string got = *row ? mode->text(0) : std::string();
  if (got != "wal") {
    return std::string("store " + path + ": cannot use write-ahead logging (journal mode is \"" +
                       got + "\"); put the database on a local file system");
  }
  return c;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

base::Result<Statement> Connection::statement(const char* sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      return error(std::string("preparing \"") + sql + "\"");
    }
    it = statements_.emplace(sql, stmt).first;
  }
  return Statement(*this, it->second);
}

base::Result<void> Connection::exec(const std::string& sql, std::string_view what) {
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return error(what);
  return {};
}

bool Connection::autocommit() const {
  return sqlite3_get_autocommit(db_) != 0;
}

std::int64_t Connection::changes() const {
  return sqlite3_changes64(db_);
}

std::string Connection::error(std::string_view what) const {
  std::string message = "store " + path_ + ": ";
  message.append(what);
  message += ": ";
  message += sqlite3_errmsg(db_);
  return message;
}

// ---- Transaction

Transaction::~Transaction() {
  rollback();
}

base::Result<void> Transaction::begin() {
  auto s = connection_.statement("BEGIN IMMEDIATE");
  if (!s) return s.error();
  if (auto r = s->run("beginning a write transaction"); !r) return r;
  open_ = true;
  return {};
}

base::Result<void> Transaction::commit() {
  auto s = connection_.statement("COMMIT");
  if (!s) return s.error();
  auto r = s->run("committing");
  if (r) open_ = false;
  return r;  // on failure the transaction is still open: the destructor rolls it back
}

void Transaction::rollback() {
  if (!open_) return;
  open_ = false;
  if (connection_.autocommit()) return;  // SQLite already rolled it back after an error
  if (auto s = connection_.statement("ROLLBACK")) (void)s->run();
}

}  // namespace store::sqlite
