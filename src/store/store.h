// The store: subscribers, bindings (the location service's durable copy), bans and call
// records behind one interface. SQLite (WAL) is the embedded default; the interface is what a
// PostgreSQL store implements for several nodes serving one domain.
//
// Reads and administrative writes are synchronous (CLI, start-up, reload). Binding writes are
// on the hot path and asynchronous: apply() queues the change for a writer thread that
// commits queued changes together (group commit) and calls back once they are durable — a
// REGISTER is answered 200 only after that callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace store {

// A user allowed to register and call. Passwords are never stored: only the digest HA1s
// (RFC 7616 §3.4.2: H(username ":" realm ":" password)) for the realm they were made for.
struct Subscriber {
  std::string name;        // the user part of the AOR, e.g. "1000" or "alice"
  std::string realm;       // the realm the HA1s belong to (the domain)
  std::string ha1_md5;     // 32 lowercase hex digits
  std::string ha1_sha256;  // 64 lowercase hex digits
  bool require_tls = false;
  std::int64_t created_at = 0;  // unix seconds
  std::int64_t updated_at = 0;
  bool operator==(const Subscriber&) const = default;
};

// Where a registered contact can be reached (RFC 3261 §10.3) and the flow it registered on,
// so that requests reach clients behind NAT over the same connection or 5-tuple.
struct Binding {
  std::string aor;              // "user@domain", lowercase domain
  std::string contact;          // the Contact URI exactly as received (RFC 4475 regescrt)
  std::int64_t expires_at = 0;  // unix seconds
  double q = 1.0;               // RFC 3261 §20.10 q-value, 0..1
  std::string call_id;          // of the REGISTER that made or refreshed it
  std::uint32_t cseq = 0;
  std::string instance;  // +sip.instance (RFC 5626), may be empty
  std::string reg_id;    // reg-id (RFC 5626), may be empty
  std::string user_agent;
  // the flow
  std::string transport;         // "udp", "tcp", "tls"
  std::string source;            // "192.0.2.1:5062" or "[2001:db8::1]:5062"
  std::string local;             // our socket, same form
  std::uint64_t connection = 0;  // stream connection id (0 for UDP); not valid after restart
  std::uint32_t listener = 0;
  std::uint16_t worker = 0;
  bool operator==(const Binding&) const = default;
};

// One REGISTER's effect on one AOR, applied atomically: `upsert` replaces bindings with the
// same contact, `remove` deletes by contact, `remove_all` deletes every binding of the AOR
// first (Contact: *). The order is remove_all, remove, upsert. Each upserted binding's `aor`
// is empty (it takes this one) or equal to `aor`; otherwise the change fails.
struct BindingChange {
  std::string aor;
  bool remove_all = false;
  std::vector<std::string> remove;
  std::vector<Binding> upsert;
};

struct Ban {
  std::string address;     // "192.0.2.1" or "2001:db8::1"
  std::int64_t until = 0;  // unix seconds
  int level = 1;           // how many times banned in a row (drives escalation)
  std::string reason;
  bool operator==(const Ban&) const = default;
};

struct CallRecord {
  std::string call_id, caller, callee, source, transport;
  std::int64_t started_at = 0, answered_at = 0, ended_at = 0;  // unix seconds, 0 = never
  int final_code = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // ---- subscribers (synchronous)
  // Inserts or replaces by name.
  virtual base::Result<void> put_subscriber(const Subscriber& s) = 0;
  // All or nothing: either every subscriber is written or none (user import).
  virtual base::Result<void> put_subscribers(const std::vector<Subscriber>& list) = 0;
  virtual base::Result<std::optional<Subscriber>> get_subscriber(const std::string& name) = 0;
  virtual base::Result<std::vector<Subscriber>> list_subscribers() = 0;
  // Removes the subscriber and every binding of theirs. Returns false if there was none.
  virtual base::Result<bool> remove_subscriber(const std::string& name) = 0;
  // A number that changes whenever subscribers change (from any process): a running server
  // polls it to pick up `sipwarden user ...` commands without a restart.
  virtual base::Result<std::uint64_t> subscribers_version() = 0;

  // ---- bindings
  // Every binding not expired at `now` (start-up: the location service is rebuilt from this).
  virtual base::Result<std::vector<Binding>> load_bindings(std::int64_t now) = 0;
  // Bindings of one AOR, unexpired at `now` (`user show`).
  virtual base::Result<std::vector<Binding>> bindings_of(const std::string& aor,
                                                         std::int64_t now) = 0;
  // Queues a change; `done(true)` is called once it is durable, `done(false)` if it failed.
  // `done` runs on the writer thread: keep it short (post to the owning worker). The store
  // shares the change rather than copying it (a change holds a dozen strings, made on one
  // thread and written on another), and drops its reference once `done` has run.
  virtual void apply(std::shared_ptr<const BindingChange> change,
                     std::function<void(bool durable)> done) = 0;
  // The same, for a change the caller does not keep.
  void apply(BindingChange change, std::function<void(bool durable)> done) {
    apply(std::make_shared<const BindingChange>(std::move(change)), std::move(done));
  }
  // Deletes bindings that expired before `now` (housekeeping, off the hot path).
  virtual base::Result<std::size_t> purge_expired(std::int64_t now) = 0;

  // ---- bans
  virtual base::Result<void> put_ban(const Ban& ban) = 0;
  virtual base::Result<bool> remove_ban(const std::string& address) = 0;
  virtual base::Result<std::vector<Ban>> list_bans(std::int64_t now) = 0;  // unexpired

  // ---- call records (asynchronous, batched like bindings; failures are logged by the store)
  virtual void add_call_record(CallRecord record) = 0;

  // Waits until everything queued so far is durable (tests, shutdown).
  virtual void flush() = 0;
};

// Settings of the SQLite store beyond its file (docs/store.md).
struct SqliteOptions {
  // How long a write waits for another connection's write lock (the CLI and the server open
  // the same file) before it fails with "database is locked".
  int busy_timeout_ms = 5000;
  // Group commit: a commit starts at least this long after the previous one started, so
  // writes that queue meanwhile share one fsync. Bounds the fsyncs to 1/window per second
  // (an fsync costs the server far more CPU than the writes it makes durable) at the price
  // of at most this much extra latency on an acknowledgement.
  std::chrono::microseconds group_window{5000};
  // Call records have nobody waiting for them: while the queue holds nothing else, the writer
  // lets them gather until this long after the previous commit (a binding change or flush()
  // cuts the wait short). At 1,000 calls/s that is 10 commits a second instead of 200; the
  // cost is that `kill -9` or a power cut may lose the records of the calls that ended in the
  // last window.
  std::chrono::microseconds record_window{100000};
  // Receives a message naming the file and SQLite's reason whenever an asynchronous write
  // fails: a group that could not commit, or one binding change or call record that was
  // refused (its `done` gets false as well). Called on the writer thread with no lock of the
  // store held. Empty (the default): the message is written to stderr.
  std::function<void(const std::string& message)> on_error;
};

// Opens (creating if needed, mode 0600) the SQLite store at `path`: WAL mode,
// synchronous=FULL, schema migrated to the current version at open in one transaction. A
// database written by a newer sipwarden (a higher schema version) is refused. Errors name
// the file and the reason. `path` must be a file (not ":memory:"): the store opens it twice.
base::Result<std::unique_ptr<Store>> open_sqlite(const std::string& path,
                                                 SqliteOptions options = {});

}  // namespace store
