// The SQLite schema as an ordered list of migrations. PRAGMA user_version records how many
// have been applied; at open, the missing ones run in one transaction. Internal to src/store.
//
// A migration that has shipped is never edited: a change to the schema is a new migration at
// the end of the list (docs/store.md).
#pragma once

#include <span>

namespace store::sqlite {

struct Migration {
  int version;      // the user_version after this migration; 1, 2, 3, ... in order
  const char* sql;  // one or more statements
};

std::span<const Migration> migrations();

// The schema version this binary writes: the version of the last migration.
int schema_version();

}  // namespace store::sqlite
