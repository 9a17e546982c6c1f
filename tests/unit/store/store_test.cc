#include "store/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "store/sqlite_schema.h"
#include "store/sqlite_store.h"

namespace store {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;

// A connection of our own to the file, standing in for another process (the CLI, the sqlite3
// shell) or for a version of sipwarden that wrote the file.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3_open(path.c_str(), &db_);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  int exec(const std::string& sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc != SQLITE_OK) ADD_FAILURE() << sql << ": " << (message ? message : "?");
    sqlite3_free(message);
    return rc;
  }
  // The first column of the first row as text ("" if none).
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return out;
  }
  std::int64_t integer(const std::string& sql) { return std::stoll("0" + text(sql)); }

 private:
  sqlite3* db_ = nullptr;
};

Subscriber subscriber(const std::string& name, char fill = 'a') {
  Subscriber s;
  s.name = name;
  s.realm = "example.com";
  s.ha1_md5 = std::string(32, fill);
  s.ha1_sha256 = std::string(64, fill);
  s.created_at = kNow;
  s.updated_at = kNow;
  return s;
}

Binding binding(const std::string& aor, const std::string& contact, std::int64_t expires_at) {
  Binding b;
  b.aor = aor;
  b.contact = contact;
  b.expires_at = expires_at;
  b.call_id = "call-" + contact;
  b.cseq = 1;
  b.transport = "udp";
  b.source = "192.0.2.1:5062";
  b.local = "192.0.2.100:5060";
  return b;
}

BindingChange upsert(const std::string& aor, std::vector<Binding> bindings) {
  BindingChange c;
  c.aor = aor;
  c.upsert = std::move(bindings);
  return c;
}

// Applies one change and waits for its callback.
bool apply_and_wait(Store& store, BindingChange change) {
  std::promise<bool> result;
  auto durable = result.get_future();
  store.apply(std::move(change), [&result](bool ok) { result.set_value(ok); });
  return durable.get();
}

std::vector<std::string> contacts(const std::vector<Binding>& bindings) {
  std::vector<std::string> out;
  for (const auto& b : bindings) out.push_back(b.contact);
  return out;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = std::filesystem::temp_directory_path() /
           ("sw-store-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "sipwarden.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Store> open(SqliteOptions options = {}) {
    auto s = open_sqlite(path_, std::move(options));
    EXPECT_TRUE(s.ok()) << s.error();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::filesystem::path dir_;
  std::string path_;
};

// ---- opening, file, schema

TEST_F(SqliteStoreTest, CreatesPrivateWalFileAtCurrentSchemaVersion) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_ban({"192.0.2.9", kNow + 60, 1, "scan"}).ok());  // makes the -wal file
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((path_ + "-wal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  RawDb raw(path_);
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.integer("PRAGMA user_version"), sqlite::schema_version());
}

TEST_F(SqliteStoreTest, ReopensItsOwnFile) {
  ASSERT_TRUE(open()->put_subscriber(subscriber("alice")).ok());
  auto again = open();
  ASSERT_TRUE(again);
  auto got = again->get_subscriber("alice");
  ASSERT_TRUE(got.ok()) << got.error();
  EXPECT_EQ(*got, subscriber("alice"));
}

// Schema version 1 exactly as it shipped: a database written by that version must open
// with every later binary. Never edit this copy when adding a migration.
constexpr char kSchemaVersion1[] = R"sql(
CREATE TABLE meta (
  name  TEXT PRIMARY KEY NOT NULL,
  value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('subscribers_version', 0);
CREATE TABLE subscribers (
  name        TEXT PRIMARY KEY NOT NULL CHECK (length(name) > 0),
  realm       TEXT NOT NULL CHECK (length(realm) > 0),
  ha1_md5     TEXT NOT NULL CHECK (length(ha1_md5) = 32 AND ha1_md5 NOT GLOB '*[^0-9a-f]*'),
  ha1_sha256  TEXT NOT NULL
              CHECK (length(ha1_sha256) = 64 AND ha1_sha256 NOT GLOB '*[^0-9a-f]*'),
  require_tls INTEGER NOT NULL CHECK (require_tls IN (0, 1)),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TRIGGER subscribers_inserted AFTER INSERT ON subscribers BEGIN
  UPDATE meta SET value = value + 1 WHERE name = 'subscribers_version';
END;
CREATE TRIGGER subscribers_updated AFTER UPDATE ON subscribers BEGIN
  UPDATE meta SET value = value + 1 WHERE name = 'subscribers_version';
END;
CREATE TRIGGER subscribers_deleted AFTER DELETE ON subscribers BEGIN
  UPDATE meta SET value = value + 1 WHERE name = 'subscribers_version';
END;
CREATE TABLE bindings (
  aor        TEXT NOT NULL CHECK (length(aor) > 0),
  contact    TEXT NOT NULL CHECK (length(contact) > 0),
  expires_at INTEGER NOT NULL,
  q          REAL NOT NULL CHECK (q >= 0 AND q <= 1),
  call_id    TEXT NOT NULL,
  cseq       INTEGER NOT NULL,
  instance   TEXT NOT NULL,
  reg_id     TEXT NOT NULL,
  user_agent TEXT NOT NULL,
  transport  TEXT NOT NULL,
  source     TEXT NOT NULL,
  local      TEXT NOT NULL,
  connection INTEGER NOT NULL,
  listener   INTEGER NOT NULL,
  worker     INTEGER NOT NULL,
  PRIMARY KEY (aor, contact)
) STRICT, WITHOUT ROWID;
CREATE INDEX bindings_by_expiry ON bindings (expires_at);
CREATE TABLE bans (
  address TEXT PRIMARY KEY NOT NULL CHECK (length(address) > 0),
  until   INTEGER NOT NULL,
  level   INTEGER NOT NULL,
  reason  TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE call_records (
  id          INTEGER PRIMARY KEY,
  call_id     TEXT NOT NULL,
  caller      TEXT NOT NULL,
  callee      TEXT NOT NULL,
  source      TEXT NOT NULL,
  transport   TEXT NOT NULL,
  started_at  INTEGER NOT NULL,
  answered_at INTEGER NOT NULL,
  ended_at    INTEGER NOT NULL,
  final_code  INTEGER NOT NULL
) STRICT;
CREATE INDEX call_records_by_start ON call_records (started_at);
PRAGMA user_version = 1;
)sql";

TEST_F(SqliteStoreTest, OpensADatabaseWrittenBySchemaVersion1) {
  {
    RawDb raw(path_);
    raw.exec("PRAGMA journal_mode = WAL");
    raw.exec(kSchemaVersion1);
    raw.exec("INSERT INTO subscribers VALUES ('alice', 'example.com', '" + std::string(32, 'a') +
             "', '" + std::string(64, 'a') + "', 0, 1800000000, 1800000000)");
    raw.exec(
        "INSERT INTO bindings VALUES ('alice@example.com', 'sip:alice@192.0.2.1', "
        "1800000100, 1.0, 'c1', 1, '', '', 'phone', 'udp', '192.0.2.1:5062', "
        "'192.0.2.100:5060', 0, 0, 0)");
  }
  auto store = open();
  ASSERT_TRUE(store);
  auto alice = store->get_subscriber("alice");
  ASSERT_TRUE(alice.ok()) << alice.error();
  EXPECT_EQ(*alice, subscriber("alice"));
  auto bindings = store->load_bindings(kNow);
  ASSERT_TRUE(bindings.ok()) << bindings.error();
  ASSERT_EQ(bindings->size(), 1u);
  EXPECT_EQ((*bindings)[0].user_agent, "phone");
  EXPECT_EQ(RawDb(path_).integer("PRAGMA user_version"), sqlite::schema_version());
  // Schema 2 dropped the index on expires_at, which every re-registration rewrote.
  EXPECT_EQ(RawDb(path_).integer(
                "SELECT count(*) FROM sqlite_master WHERE name = 'bindings_by_expiry'"),
            0);
}

TEST_F(SqliteStoreTest, RefusesADatabaseFromANewerVersionNamingBoth) {
  RawDb(path_).exec("PRAGMA user_version = 999");
  auto s = open_sqlite(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find(path_), std::string::npos) << s.error();
  EXPECT_NE(s.error().find("999"), std::string::npos) << s.error();
  EXPECT_NE(s.error().find("(" + std::to_string(sqlite::schema_version()) + ")"), std::string::npos)
      << s.error();
  EXPECT_EQ(RawDb(path_).integer("PRAGMA user_version"), 999);
}

TEST_F(SqliteStoreTest, FailedMigrationLeavesTheFileAsItWas) {
  RawDb(path_).exec("CREATE TABLE bans (x INTEGER)");  // in the way of migration 1
  auto s = open_sqlite(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find(path_), std::string::npos) << s.error();
  EXPECT_NE(s.error().find("already exists"), std::string::npos) << s.error();
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("PRAGMA user_version"), 0);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM sqlite_master WHERE name = 'meta'"), 0);
}

TEST_F(SqliteStoreTest, OpenErrorsNameTheFile) {
  const std::string missing_dir = (dir_ / "no-such-dir" / "x.db").string();
  auto a = open_sqlite(missing_dir);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().find(missing_dir), std::string::npos) << a.error();

  const std::string garbage = (dir_ / "garbage.db").string();
  std::ofstream(garbage) << std::string(4096, 'x');
  auto b = open_sqlite(garbage);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().find(garbage), std::string::npos) << b.error();
  EXPECT_NE(b.error().find("not a database"), std::string::npos) << b.error();

  EXPECT_FALSE(open_sqlite(":memory:").ok());
}

// ---- subscribers

TEST_F(SqliteStoreTest, SubscriberRoundTripAndReplace) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_subscriber(subscriber("bob")).ok());
  ASSERT_TRUE(store->put_subscriber(subscriber("alice")).ok());

  Subscriber changed = subscriber("alice", 'f');
  changed.realm = "voip.example.com";
  changed.require_tls = true;
  changed.updated_at = kNow + 10;
  ASSERT_TRUE(store->put_subscriber(changed).ok());

  auto got = store->get_subscriber("alice");
  ASSERT_TRUE(got.ok()) << got.error();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, changed);
  auto none = store->get_subscriber("carol");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  auto all = store->list_subscribers();
  ASSERT_TRUE(all.ok()) << all.error();
  EXPECT_EQ(*all, (std::vector<Subscriber>{changed, subscriber("bob")}));
}

TEST_F(SqliteStoreTest, BrokenSubscriberIsRefusedWithAReason) {
  auto store = open();
  ASSERT_TRUE(store);
  Subscriber bad = subscriber("alice");
  bad.ha1_md5 = "ABCDEF";  // neither 32 digits nor lowercase
  auto r = store->put_subscriber(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find(path_), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("\"alice\""), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("CHECK constraint failed"), std::string::npos) << r.error();
  EXPECT_FALSE(store->put_subscriber(subscriber("")).ok());
  EXPECT_TRUE(store->list_subscribers()->empty());
}

TEST_F(SqliteStoreTest, PutSubscribersIsAllOrNothing) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_subscriber(subscriber("s1", 'a')).ok());
  const auto version = store->subscribers_version();
  ASSERT_TRUE(version.ok());

  std::vector<Subscriber> list = {subscriber("s1", 'b'), subscriber("s2"), subscriber("s3"),
                                  subscriber("s4"), subscriber("s5")};
  list[2].ha1_sha256 = "not-a-hash";
  auto r = store->put_subscribers(list);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("\"s3\" (3 of 5"), std::string::npos) << r.error();

  auto all = store->list_subscribers();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, std::vector<Subscriber>{subscriber("s1", 'a')});  // s1 not updated either
  EXPECT_EQ(*store->subscribers_version(), *version);

  list[2] = subscriber("s3");
  ASSERT_TRUE(store->put_subscribers(list).ok());
  EXPECT_EQ(store->list_subscribers()->size(), 5u);
}

TEST_F(SqliteStoreTest, RemoveSubscriberRemovesTheirBindings) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_subscriber(subscriber("alice")).ok());
  const std::int64_t later = kNow + 3600;
  for (const std::string aor : {"alice@example.com", "alice@other.example", "alice",
                                "alice2@example.com", "xalice@example.com", "bob@example.com"}) {
    ASSERT_TRUE(apply_and_wait(*store, upsert(aor, {binding(aor, "sip:" + aor, later)})));
  }
  auto removed = store->remove_subscriber("alice");
  ASSERT_TRUE(removed.ok()) << removed.error();
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(store->get_subscriber("alice")->has_value());

  auto left = store->load_bindings(kNow);
  ASSERT_TRUE(left.ok()) << left.error();
  std::vector<std::string> aors;
  for (const auto& b : *left) aors.push_back(b.aor);
  EXPECT_EQ(aors, (std::vector<std::string>{"alice2@example.com", "bob@example.com",
                                            "xalice@example.com"}));
  auto again = store->remove_subscriber("alice");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(SqliteStoreTest, SubscribersVersionSeesAnotherProcesssWrites) {
  auto server = open();
  auto cli = open();
  ASSERT_TRUE(server && cli);
  auto v0 = server->subscribers_version();
  ASSERT_TRUE(v0.ok()) << v0.error();

  ASSERT_TRUE(cli->put_subscriber(subscriber("alice")).ok());
  const auto v1 = *server->subscribers_version();
  EXPECT_NE(v1, *v0);
  EXPECT_EQ(*server->subscribers_version(), v1);  // stable while nothing changes

  // A change from outside sipwarden altogether (the sqlite3 shell) counts too.
  RawDb(path_).exec("UPDATE subscribers SET require_tls = 1 WHERE name = 'alice'");
  const auto v2 = *server->subscribers_version();
  EXPECT_NE(v2, v1);

  ASSERT_TRUE(*cli->remove_subscriber("alice"));
  const auto v3 = *server->subscribers_version();
  EXPECT_NE(v3, v2);
  ASSERT_FALSE(*cli->remove_subscriber("alice"));  // nothing changed
  EXPECT_EQ(*server->subscribers_version(), v3);

  ASSERT_TRUE(apply_and_wait(
      *cli, upsert("bob@example.com", {binding("bob@example.com", "sip:b", kNow + 60)})));
  EXPECT_EQ(*server->subscribers_version(), v3);  // bindings are not subscribers
}

// ---- bindings

TEST_F(SqliteStoreTest, BindingRoundTripKeepsEveryField) {
  auto store = open();
  ASSERT_TRUE(store);
  Binding b;
  b.aor = "alice@example.com";
  b.contact = "<sip:alice@192.0.2.1:5062;transport=tcp;ob>;+sip.instance=\"<urn:uuid:1>\"";
  b.expires_at = kNow + 3600;
  b.q = 0.25;
  b.call_id = "a84b4c76e66710@pc33.example.com";
  b.cseq = 4294967295u;
  b.instance = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";
  b.reg_id = "1";
  b.user_agent = "Zoiper r\xC3\xA9gion \"5\"";
  b.transport = "tls";
  b.source = "[2001:db8::1]:50000";
  b.local = "[2001:db8::100]:5061";
  b.connection = 0xFFFF'FFFF'FFFF'FFF0u;  // the top bit survives the int64 column
  b.listener = 4294967295u;
  b.worker = 65535;
  ASSERT_TRUE(apply_and_wait(*store, upsert(b.aor, {b})));

  auto all = store->load_bindings(kNow);
  ASSERT_TRUE(all.ok()) << all.error();
  EXPECT_EQ(*all, std::vector<Binding>{b});
  auto mine = store->bindings_of(b.aor, kNow);
  ASSERT_TRUE(mine.ok()) << mine.error();
  EXPECT_EQ(*mine, std::vector<Binding>{b});

  // An upsert whose bindings leave `aor` empty takes the change's AOR.
  Binding bare = binding("", "sip:bare@192.0.2.2", kNow + 60);
  ASSERT_TRUE(apply_and_wait(*store, upsert("bare@example.com", {bare})));
  auto got = store->bindings_of("bare@example.com", kNow);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].aor, "bare@example.com");
}

TEST_F(SqliteStoreTest, ApplyUpsertsRemovesAndRemovesAll) {
  auto store = open();
  ASSERT_TRUE(store);
  const std::string aor = "alice@example.com";
  const std::int64_t t = kNow + 3600;
  ASSERT_TRUE(
      apply_and_wait(*store, upsert(aor, {binding(aor, "sip:c1", t), binding(aor, "sip:c2", t)})));
  ASSERT_TRUE(
      apply_and_wait(*store, upsert("bob@example.com", {binding("bob@example.com", "sip:b1", t)})));
  EXPECT_EQ(contacts(*store->bindings_of(aor, kNow)),
            (std::vector<std::string>{"sip:c1", "sip:c2"}));

  // Same contact: replaced, not added (RFC 3261 §10.3 step 7).
  Binding refreshed = binding(aor, "sip:c1", t + 100);
  refreshed.cseq = 2;
  refreshed.call_id = "new-call";
  ASSERT_TRUE(apply_and_wait(*store, upsert(aor, {refreshed})));
  auto now = *store->bindings_of(aor, kNow);
  ASSERT_EQ(now.size(), 2u);
  EXPECT_EQ(now[0], refreshed);

  BindingChange remove;
  remove.aor = aor;
  remove.remove = {"sip:c2", "sip:never-there"};
  ASSERT_TRUE(apply_and_wait(*store, remove));
  EXPECT_EQ(contacts(*store->bindings_of(aor, kNow)), std::vector<std::string>{"sip:c1"});

  // Contact: * followed by a new binding in the same change: only the new one is left.
  BindingChange replace_all = upsert(aor, {binding(aor, "sip:c3", t)});
  replace_all.remove_all = true;
  ASSERT_TRUE(apply_and_wait(*store, replace_all));
  EXPECT_EQ(contacts(*store->bindings_of(aor, kNow)), std::vector<std::string>{"sip:c3"});

  BindingChange clear;
  clear.aor = aor;
  clear.remove_all = true;
  ASSERT_TRUE(apply_and_wait(*store, clear));
  EXPECT_TRUE(store->bindings_of(aor, kNow)->empty());
  EXPECT_EQ(contacts(*store->bindings_of("bob@example.com", kNow)),
            std::vector<std::string>{"sip:b1"});  // other AORs untouched
}

TEST_F(SqliteStoreTest, ExpiredBindingsAreNotLoadedAndArePurged) {
  auto store = open();
  ASSERT_TRUE(store);
  const std::string aor = "alice@example.com";
  ASSERT_TRUE(apply_and_wait(
      *store, upsert(aor, {binding(aor, "sip:old", kNow - 1), binding(aor, "sip:now", kNow),
                           binding(aor, "sip:live", kNow + 1)})));
  EXPECT_EQ(contacts(*store->load_bindings(kNow)), std::vector<std::string>{"sip:live"});
  EXPECT_EQ(contacts(*store->bindings_of(aor, kNow)), std::vector<std::string>{"sip:live"});
  EXPECT_EQ(store->load_bindings(kNow - 10)->size(), 3u);

  auto purged = store->purge_expired(kNow);
  ASSERT_TRUE(purged.ok()) << purged.error();
  EXPECT_EQ(*purged, 2u);
  EXPECT_EQ(contacts(*store->load_bindings(0)), std::vector<std::string>{"sip:live"});
  EXPECT_EQ(*store->purge_expired(kNow), 0u);
}

// The purge goes through the table in slices of a few thousand bindings; an AOR whose
// bindings straddle a slice's end, and the last slice, must be purged like the rest.
TEST_F(SqliteStoreTest, APurgeOfManyBindingsTakesEveryExpiredOneAndNoLiveOne) {
  auto store = open();
  ASSERT_TRUE(store);
  constexpr int kAors = 6000;  // three contacts each: more than four slices
  std::size_t expired = 0;
  for (int i = 0; i < kAors; ++i) {
    const std::string aor = "u" + std::to_string(i) + "@example.com";
    std::vector<Binding> list;
    for (int c = 0; c < 3; ++c) {
      const bool dead = (i + c) % 3 == 0;
      expired += dead ? 1 : 0;
      list.push_back(binding(aor, "sip:c" + std::to_string(c), dead ? kNow - 5 : kNow + 60));
    }
    store->apply(upsert(aor, std::move(list)), nullptr);
  }
  store->flush();
  ASSERT_EQ(store->load_bindings(0)->size(), 3u * kAors);

  auto purged = store->purge_expired(kNow);
  ASSERT_TRUE(purged.ok()) << purged.error();
  EXPECT_EQ(*purged, expired);
  auto left = store->load_bindings(0);
  ASSERT_TRUE(left.ok()) << left.error();
  EXPECT_EQ(left->size(), 3u * kAors - expired);
  for (const auto& b : *left) EXPECT_GT(b.expires_at, kNow) << b.aor << " " << b.contact;
  EXPECT_EQ(*store->purge_expired(kNow), 0u);
}

TEST_F(SqliteStoreTest, ARefusedChangeFailsAloneAndIsReported) {
  std::mutex mu;
  std::vector<std::string> reported;
  SqliteOptions options;
  options.on_error = [&](const std::string& m) {
    std::lock_guard lock(mu);
    reported.push_back(m);
  };
  auto store = open(options);
  ASSERT_TRUE(store);

  std::atomic<int> good{0}, bad{0};
  auto count = [&](bool ok) { ++(ok ? good : bad); };
  Binding too_high = binding("a@example.com", "sip:a", kNow + 60);
  too_high.q = 2.0;  // q is 0..1
  Binding wrong_aor = binding("someone@else", "sip:w", kNow + 60);
  for (int i = 0; i < 50; ++i) {
    // Appended, not "u" + ... + "...": GCC 12 at -O3 warns falsely (-Wrestrict) on that.
    std::string aor = "u";
    aor.append(std::to_string(i)).append("@example.com");
    store->apply(upsert(aor, {binding(aor, "sip:x", kNow + 60)}), count);
    if (i == 10) store->apply(upsert("a@example.com", {too_high}), count);
    if (i == 20) store->apply(upsert("w@example.com", {wrong_aor}), count);
  }
  store->flush();
  EXPECT_EQ(good.load(), 50);
  EXPECT_EQ(bad.load(), 2);
  EXPECT_EQ(store->load_bindings(kNow)->size(), 50u);
  std::lock_guard lock(mu);
  ASSERT_EQ(reported.size(), 2u);
  EXPECT_NE(reported[0].find(path_), std::string::npos) << reported[0];
  EXPECT_NE(reported[0].find("CHECK constraint failed"), std::string::npos) << reported[0];
  EXPECT_NE(reported[0].find("writing binding \"sip:a\" of \"a@example.com\""),
            std::string::npos)
      << reported[0];  // named though the description is only made on failure
  EXPECT_NE(reported[1].find("\"someone@else\""), std::string::npos) << reported[1];
}

// A group is first written without a savepoint per write. When a change made of several
// statements fails at its second (here: remove all, then an upsert the CHECK refuses), the
// group is written again one savepoint per write: the refused change leaves nothing behind,
// not even its first statement, and the rest of its group is saved.
TEST_F(SqliteStoreTest, ARefusedChangeInAGroupIsUndoneWholeTheRestIsSaved) {
  SqliteOptions options;
  options.on_error = [](const std::string&) {};
  auto opened = SqliteStore::open(path_, options);
  ASSERT_TRUE(opened.ok()) << opened.error();
  auto& store = *opened;
  store->apply(upsert("a@example.com", {binding("a@example.com", "sip:old", kNow + 60)}),
               [](bool) {});
  store->flush();
  const auto groups_before = store->writer_stats().groups;

  std::atomic<int> good{0}, bad{0};
  auto count = [&](bool ok) { ++(ok ? good : bad); };
  {
    RawDb cli(path_);  // holds the write lock while the group piles up
    cli.exec("BEGIN IMMEDIATE");
    BindingChange replace_all = upsert("a@example.com", {binding("a@example.com", "sip:new",
                                                                 kNow + 60)});
    replace_all.remove_all = true;
    replace_all.upsert[0].q = 2.0;  // q is 0..1
    store->apply(upsert("b@example.com", {binding("b@example.com", "sip:b", kNow + 60)}), count);
    while (store->writer_stats().queued != 0) std::this_thread::yield();
    for (int i = 0; i < 20; ++i) {
      std::string aor = "u";
      aor.append(std::to_string(i)).append("@example.com");
      store->apply(upsert(aor, {binding(aor, "sip:x", kNow + 60)}), count);
      if (i == 10) store->apply(replace_all, count);
    }
    cli.exec("COMMIT");
  }
  store->flush();
  EXPECT_EQ(good.load(), 21);
  EXPECT_EQ(bad.load(), 1);
  EXPECT_EQ(store->writer_stats().groups, groups_before + 2);
  auto a = store->bindings_of("a@example.com", kNow);
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].contact, "sip:old");
  EXPECT_EQ(store->load_bindings(kNow)->size(), 22u);
}

// ---- bans and call records

TEST_F(SqliteStoreTest, BansRoundTripListOnlyUnexpired) {
  auto store = open();
  ASSERT_TRUE(store);
  const Ban a{"192.0.2.1", kNow + 100, 1, "brute force"};
  const Ban b{"2001:db8::1", kNow, 3, "scanner"};  // ends now: not listed
  const Ban c{"198.51.100.7", kNow + 50, 2, "flood"};
  for (const auto& ban : {a, b, c}) ASSERT_TRUE(store->put_ban(ban).ok());
  EXPECT_EQ(*store->list_bans(kNow), (std::vector<Ban>{a, c}));
  EXPECT_EQ(store->list_bans(kNow - 1)->size(), 3u);

  const Ban escalated{"192.0.2.1", kNow + 1000, 2, "brute force again"};
  ASSERT_TRUE(store->put_ban(escalated).ok());
  EXPECT_EQ(*store->list_bans(kNow), (std::vector<Ban>{escalated, c}));

  EXPECT_TRUE(*store->remove_ban("192.0.2.1"));
  EXPECT_FALSE(*store->remove_ban("192.0.2.1"));
  EXPECT_EQ(*store->list_bans(kNow), std::vector<Ban>{c});
}

TEST_F(SqliteStoreTest, CallRecordsAreWrittenInTheBackground) {
  auto store = open();
  ASSERT_TRUE(store);
  for (int i = 0; i < 3; ++i) {
    CallRecord r;
    r.call_id = "call-" + std::to_string(i);
    r.caller = "sip:1000@example.com";
    r.callee = "sip:1001@example.com";
    r.source = "192.0.2.1:5062";
    r.transport = "tls";
    r.started_at = kNow + i;
    r.answered_at = i == 2 ? 0 : kNow + i + 2;
    r.ended_at = kNow + i + 60;
    r.final_code = i == 2 ? 486 : 200;
    store->add_call_record(r);
  }
  store->flush();
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM call_records"), 3);
  EXPECT_EQ(raw.text("SELECT call_id || ' ' || callee || ' ' || answered_at || ' ' || final_code "
                     "FROM call_records ORDER BY started_at DESC LIMIT 1"),
            "call-2 sip:1001@example.com 0 486");
}

// ---- the writer: group commit, flush, shutdown, locking

TEST_F(SqliteStoreTest, CallRecordsAloneWaitForTheRecordWindowAwaitedWritesDoNot) {
  SqliteOptions options;
  options.group_window = std::chrono::microseconds{0};
  options.record_window = std::chrono::minutes{10};  // never reached in this test
  auto opened = SqliteStore::open(path_, options);
  ASSERT_TRUE(opened.ok()) << opened.error();
  auto& store = **opened;
  auto record = [&](const std::string& call_id) {
    CallRecord r;
    r.call_id = call_id;
    r.caller = "sip:1000@example.com";
    r.callee = "sip:1001@example.com";
    r.started_at = kNow;
    r.ended_at = kNow + 1;
    r.final_code = 200;
    store.add_call_record(r);
  };
  const auto start = std::chrono::steady_clock::now();

  // The first record after a quiet spell commits at once; the next ones wait for company.
  record("call-1");
  while (store.writer_stats().groups < 1) std::this_thread::yield();
  record("call-2");
  record("call-3");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(store.writer_stats().groups, 1u);
  EXPECT_EQ(store.writer_stats().queued, 2u);
  EXPECT_EQ(RawDb(path_).integer("SELECT count(*) FROM call_records"), 1);

  // A binding change is awaited: it commits without waiting out the window, records with it.
  std::promise<bool> durable;
  store.apply(upsert("a@example.com", {binding("a@example.com", "sip:a", kNow + 60)}),
              [&](bool ok) { durable.set_value(ok); });
  EXPECT_TRUE(durable.get_future().get());
  store.flush();  // the writer counts a group after its callbacks have run
  EXPECT_EQ(store.writer_stats().groups, 2u);
  EXPECT_EQ(RawDb(path_).integer("SELECT count(*) FROM call_records"), 3);

  // flush() is awaited too.
  record("call-4");
  store.flush();
  EXPECT_EQ(RawDb(path_).integer("SELECT count(*) FROM call_records"), 4);
  EXPECT_LT(std::chrono::steady_clock::now() - start, options.record_window);
}


// After a commit the writer sits out the group window; changes queued meanwhile do not wake
// it (the window's end does): the whole next group costs no wake-up by a write.
TEST_F(SqliteStoreTest, ChangesQueuedDuringTheGroupWindowDoNotWakeTheWriter) {
  SqliteOptions options;
  options.group_window = std::chrono::seconds{1};
  auto opened = SqliteStore::open(path_, options);
  ASSERT_TRUE(opened.ok()) << opened.error();
  auto& store = *opened;
  ASSERT_TRUE(apply_and_wait(*store, upsert("first@example.com", {binding(
                                                "first@example.com", "sip:f", kNow + 60)})));
  // The callback runs before the writer counts its group; flush() returns once it has.
  store->flush();
  const auto before = store->writer_stats();
  std::atomic<int> durable{0};
  for (int i = 0; i < 20; ++i) {
    std::string aor = "u";
    aor.append(std::to_string(i)).append("@example.com");
    store->apply(upsert(aor, {binding(aor, "sip:" + aor, kNow + 60)}), [&](bool ok) {
      if (ok) ++durable;
    });
  }
  store->flush();
  EXPECT_EQ(durable.load(), 20);
  const auto after = store->writer_stats();
  EXPECT_EQ(after.groups, before.groups + 1);
  EXPECT_EQ(after.wakes, before.wakes);
}

TEST_F(SqliteStoreTest, AThousandQueuedChangesCommitInOneTransaction) {
  auto opened = SqliteStore::open(path_);
  ASSERT_TRUE(opened.ok()) << opened.error();
  auto& store = **opened;
  std::atomic<int> durable{0};
  {
    // Another process holds the write lock; the writer takes a first change and waits for
    // the lock, while the next thousand pile up behind it.
    RawDb cli(path_);
    cli.exec("BEGIN IMMEDIATE");
    store.apply(upsert("first@example.com", {binding("first@example.com", "sip:f", kNow + 60)}),
                [&](bool ok) {
                  if (ok) ++durable;
                });
    while (store.writer_stats().queued != 0) std::this_thread::yield();
    for (int i = 0; i < 1000; ++i) {
      const std::string aor = std::to_string(1000 + i) + "@example.com";
      store.apply(upsert(aor, {binding(aor, "sip:" + aor, kNow + 60)}), [&](bool ok) {
        if (ok) ++durable;
      });
    }
    cli.exec("COMMIT");
  }
  store.flush();
  EXPECT_EQ(durable.load(), 1001);
  const auto stats = store.writer_stats();
  EXPECT_EQ(stats.groups, 2u);
  EXPECT_EQ(stats.largest_group, 1000u);
  EXPECT_EQ(stats.writes, 1001u);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_EQ(store.load_bindings(kNow)->size(), 1001u);
}

TEST_F(SqliteStoreTest, TenThousandAppliesFromSeveralThreadsWhileReading) {
  auto opened = SqliteStore::open(path_);
  ASSERT_TRUE(opened.ok()) << opened.error();
  auto& store = **opened;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;
  std::atomic<int> durable{0}, failed{0};
  std::atomic<bool> writing{true};
  const auto start = std::chrono::steady_clock::now();

  // Meanwhile the synchronous side is busy too: the CLI adding users, the server polling.
  std::thread admin([&] {
    int n = 0;
    while (writing.load()) {
      EXPECT_TRUE(store.put_subscriber(subscriber("user" + std::to_string(n++ % 50))).ok());
      EXPECT_TRUE(store.subscribers_version().ok());
      EXPECT_TRUE(store.bindings_of("7@example.com", kNow).ok());
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string aor = std::to_string(t * kPerThread + i) + "@example.com";
        store.apply(upsert(aor, {binding(aor, "sip:" + aor, kNow + 60)}),
                    [&](bool ok) { ++(ok ? durable : failed); });
      }
    });
  }
  for (auto& w : workers) w.join();
  store.flush();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  writing = false;
  admin.join();

  EXPECT_EQ(durable.load(), kThreads * kPerThread);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(store.load_bindings(kNow)->size(), static_cast<std::size_t>(kThreads * kPerThread));
  const auto stats = store.writer_stats();
  std::printf("[ timing   ] %d apply() durable in %lld ms, %llu transactions, largest %llu\n",
              kThreads * kPerThread,
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()),
              static_cast<unsigned long long>(stats.groups),
              static_cast<unsigned long long>(stats.largest_group));
}

TEST_F(SqliteStoreTest, DestructorCommitsWhatIsQueued) {
  std::atomic<int> durable{0};
  {
    auto store = open();
    ASSERT_TRUE(store);
    for (int i = 0; i < 100; ++i) {
      const std::string aor = std::to_string(i) + "@example.com";
      store->apply(upsert(aor, {binding(aor, "sip:x", kNow + 60)}), [&](bool ok) {
        if (ok) ++durable;
      });
    }
  }
  EXPECT_EQ(durable.load(), 100);
  EXPECT_EQ(open()->load_bindings(kNow)->size(), 100u);
}

TEST_F(SqliteStoreTest, FlushInsideACallbackDoesNotDeadlock) {
  auto store = open();
  ASSERT_TRUE(store);
  Store* s = store.get();
  std::promise<void> called;
  s->apply(upsert("a@example.com", {binding("a@example.com", "sip:a", kNow + 60)}), [&](bool) {
    s->flush();
    called.set_value();
  });
  called.get_future().wait();
  store->flush();
}

TEST_F(SqliteStoreTest, WaitsForAnotherWriterThenGivesUpNamingTheFile) {
  std::mutex mu;
  std::vector<std::string> reported;
  SqliteOptions options;
  options.busy_timeout_ms = 200;
  options.on_error = [&](const std::string& m) {
    std::lock_guard lock(mu);
    reported.push_back(m);
  };
  auto store = open(options);
  ASSERT_TRUE(store);

  RawDb cli(path_);
  cli.exec("BEGIN IMMEDIATE");
  auto r = store->put_ban({"192.0.2.1", kNow + 60, 1, "x"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find(path_), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("locked"), std::string::npos) << r.error();
  EXPECT_FALSE(apply_and_wait(*store, upsert("a@x", {binding("a@x", "sip:a", kNow + 60)})));
  {
    std::lock_guard lock(mu);
    ASSERT_FALSE(reported.empty());
    EXPECT_NE(reported[0].find("locked"), std::string::npos) << reported[0];
  }

  // A lock held for less than the timeout is waited for.
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cli.exec("COMMIT");
  });
  EXPECT_TRUE(store->put_ban({"192.0.2.1", kNow + 60, 1, "x"}).ok());
  release.join();
  EXPECT_TRUE(apply_and_wait(*store, upsert("a@x", {binding("a@x", "sip:a", kNow + 60)})));
}

// ---- durability: an acknowledged binding survives kill -9

// Runs in a forked child: applies `count` bindings, writes the index of each one as it is
// acknowledged to `fd`, and never returns.
[[noreturn]] void register_and_die(const std::string& path, int count, int fd, bool wait_all) {
  auto opened = open_sqlite(path);
  if (!opened) _exit(2);
  auto store = std::move(*opened);
  for (int i = 0; i < count; ++i) {
    const std::string aor = std::to_string(i) + "@example.com";
    store->apply(upsert(aor, {binding(aor, "sip:" + aor, kNow + 3600)}), [fd, i](bool ok) {
      if (ok && ::write(fd, &i, sizeof i) != sizeof i) _exit(3);
    });
  }
  if (wait_all) {
    store->flush();
    const int acked = -1;  // "all acked"
    if (::write(fd, &acked, sizeof acked) != sizeof acked) _exit(3);
    ::raise(SIGKILL);  // no destructor, no checkpoint, no close: as kill -9
  }
  for (;;) ::pause();  // the parent kills us mid-stream
}

TEST_F(SqliteStoreTest, AckedBindingsSurviveKill9) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    register_and_die(path_, 500, fds[1], true);
  }
  ::close(fds[1]);
  std::set<int> acked;
  bool all = false;
  int i = 0;
  while (::read(fds[0], &i, sizeof i) == sizeof i) {
    if (i == -1)
      all = true;
    else
      acked.insert(i);
  }
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  ASSERT_TRUE(all);
  ASSERT_EQ(acked.size(), 500u);

  auto store = open();
  ASSERT_TRUE(store);
  auto bindings = store->load_bindings(kNow);
  ASSERT_TRUE(bindings.ok()) << bindings.error();
  EXPECT_EQ(bindings->size(), 500u);
}

TEST_F(SqliteStoreTest, EveryAckedBindingSurvivesKill9MidStream) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    register_and_die(path_, 20000, fds[1], false);
  }
  ::close(fds[1]);
  std::set<int> acked;
  int i = 0;
  while (acked.size() < 300 && ::read(fds[0], &i, sizeof i) == sizeof i) acked.insert(i);
  ::kill(child, SIGKILL);  // while the writer is committing
  while (::read(fds[0], &i, sizeof i) == sizeof i) acked.insert(i);  // acked before it died
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  ASSERT_GE(acked.size(), 300u);

  auto store = open();
  ASSERT_TRUE(store);
  auto bindings = store->load_bindings(kNow);
  ASSERT_TRUE(bindings.ok()) << bindings.error();
  std::set<std::string> stored;
  for (const auto& b : *bindings) stored.insert(b.aor);
  int missing = 0;
  for (int a : acked) {
    if (!stored.count(std::to_string(a) + "@example.com")) ++missing;
  }
  EXPECT_EQ(missing, 0) << "of " << acked.size() << " acknowledged, " << stored.size() << " stored";
  std::printf("[ kill -9  ] %zu acknowledged before the kill, %zu found after restart\n",
              acked.size(), stored.size());
}

}  // namespace
}  // namespace store
