#include "store/sqlite_schema.h"

namespace store::sqlite {
namespace {

// Tables are STRICT (a wrong type is an error, not a silent conversion) and, where the key is
// what lookups use, WITHOUT ROWID (rows clustered on the key). CHECK constraints keep
// obviously broken rows out whoever writes them: the server, the CLI or a person with the
// sqlite3 shell.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE meta (
  name  TEXT PRIMARY KEY NOT NULL,
  value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Changes whenever a subscriber changes, from any process: the triggers below bump it in the
-- same transaction as the change, so a running server polls one row to notice `user` commands.
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
)sql"},
    // Every re-registration moves a binding's expires_at, so the index on it cost each
    // registration a second page written to the WAL, at the place of its old expiry (half of
    // a group commit's writes; docs/performance.md). Its only readers are the purge once a
    // minute and the load at start-up, which scan the table instead.
    {2, R"sql(
DROP INDEX bindings_by_expiry;
)sql"},
};

}  // namespace

std::span<const Migration> migrations() {
  return kMigrations;
}

int schema_version() {
  return kMigrations[std::size(kMigrations) - 1].version;
}

}  // namespace store::sqlite
