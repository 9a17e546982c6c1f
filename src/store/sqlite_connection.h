// One SQLite connection configured the way the store needs it, with its prepared statements
// cached. Internal to src/store.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace store::sqlite {

class Connection;

// A cached prepared statement in use. Parameters are bound by 1-based index; a bind error is
// kept and returned by the next step(). On destruction the statement is reset and its
// parameters cleared, so that it neither holds a read snapshot open (which in WAL mode would
// hide later commits and block checkpoints) nor keeps pointers to the caller's strings.
class Statement {
 public:
  Statement(Connection& connection, sqlite3_stmt* stmt) : connection_(&connection), stmt_(stmt) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // The text is not copied: it must stay alive until the statement is stepped or destroyed.
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, double value);

  // Advances one row: true when a row is ready, false when the statement is done. An error
  // reads "store <path>: <what>: <SQLite's message>"; `what` defaults to the SQL text.
  base::Result<bool> step(std::string_view what = {});
  // Steps to completion (a write); rows, if any, are skipped.
  base::Result<void> run(std::string_view what = {});
  // As run(what), for a hot path whose description is built from strings: describe() returns
  // it and is called only when the statement fails.
  template <class Describe>
  base::Result<void> run_described(Describe&& describe) {
    if (run_to_completion()) return {};
    return failure(describe());
  }

  std::int64_t integer(int column) const;
  double real(int column) const;
  std::string text(int column) const;

 private:
  // Steps to completion; false when a parameter did not bind or a step failed.
  bool run_to_completion();
  // "store <path>: <what>: <why>" for the failure just seen; `what` empty: the SQL text.
  std::string failure(std::string_view what) const;

  Connection* connection_;
  sqlite3_stmt* stmt_;
  int bind_error_ = 0;  // the first failed sqlite3_bind_* result, 0 if none
};

class Connection {
 public:
  // Opens `path` (which must exist: the store creates it with mode 0600 first) read-write and
  // sets, for this connection: busy timeout, foreign keys, synchronous=FULL, WAL journal (an
  // error if the file cannot use WAL), defensive mode (no writable_schema corruption).
  static base::Result<std::unique_ptr<Connection>> open(const std::string& path,
                                                        int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The cached prepared statement for `sql`, prepared on first use. `sql` must be a string
  // with static storage (a literal): the cache keeps a view of it as the key.
  base::Result<Statement> statement(const char* sql);

  // Runs one or more statements that return no rows, without caching (migrations, pragmas).
  base::Result<void> exec(const std::string& sql, std::string_view what);

  // True when no transaction is open (SQLite rolls a transaction back by itself after some
  // errors, e.g. a full disk).
  bool autocommit() const;
  // Rows changed by the last INSERT, UPDATE or DELETE.
  std::int64_t changes() const;

  // "store <path>: <what>: <SQLite's message for the last error>".
  std::string error(std::string_view what) const;
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

 private:
  Connection(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  const std::string path_;
  sqlite3* const db_;
  std::unordered_map<std::string_view, sqlite3_stmt*> statements_;  // key: the SQL text
};

// A write transaction on a connection: begin() takes the write lock at once (BEGIN
// IMMEDIATE, so that two writers queue on the busy timeout instead of failing on a lock
// upgrade); rolled back on destruction unless committed.
class Transaction {
 public:
  explicit Transaction(Connection& connection) : connection_(connection) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  base::Result<void> begin();
  base::Result<void> commit();
  void rollback();

 private:
  Connection& connection_;
  bool open_ = false;
};

}  // namespace store::sqlite
