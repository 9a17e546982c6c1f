// `sipwarden user add|list|show|passwd|remove|import`: the subscriber administration commands.
// Passwords never reach the store, the screen or a log: only their digest HA1s (MD5 and
// SHA-256, for the configured domain as realm) are kept. The one exception is --generate,
// which prints the password it made exactly once, as the line "password: <password>".
//
// Every command returns the process exit code: 0 success, 1 refused or failed (with the
// reason on `err`), 2 usage (e.g. no way to read a password).
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "auth/password_policy.h"
#include "base/result.h"
#include "store/store.h"

namespace app {

// Where a new password comes from.
enum class PasswordSource {
  kTerminal,  // asked twice without echo; refused (exit 2) when there is no terminal
  kStdin,     // one line from `UserConsole::in`, without its line ending
  kGenerate,  // auth::generate_password(), printed once
};

// The streams a user command talks through (std::cin/cout/cerr in the binary).
struct UserConsole {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  // Reads one line from the terminal without echo after showing `prompt`; std::nullopt on end
  // of input. Empty when standard input is not a terminal.
  std::function<std::optional<std::string>(std::string_view prompt)> read_secret;
};

// What the commands work on. `store` must outlive the UserAdmin.
struct UserSettings {
  std::string realm;  // the domain: HA1s are made for it, AORs are NAME@realm (lowercased)
  // Loads the password policy; called only by commands that set passwords. An error refuses
  // them (never a silent skip of the check).
  std::function<base::Result<auth::PasswordPolicy>()> load_policy;
  // Unix seconds now (injected for tests).
  std::function<std::int64_t()> now;
};

class UserAdmin {
 public:
  UserAdmin(store::Store& store, UserSettings settings, UserConsole console);
  UserAdmin(const UserAdmin&) = delete;
  UserAdmin& operator=(const UserAdmin&) = delete;

  // Creates NAME; refuses an existing one ("already exists; use user passwd").
  int add(const std::string& name, PasswordSource source, bool require_tls);
  // One line per user under a header: name, require_tls, current bindings.
  int list();
  // NAME's settings and its current bindings.
  int show(const std::string& name);
  // Sets a new password for an existing NAME (its other settings are kept).
  int passwd(const std::string& name, PasswordSource source);
  // Removes NAME and its bindings.
  int remove(const std::string& name);
  // Imports "name,password" rows (optional header line "name,password"). All or nothing: if
  // any row is rejected (bad name, weak password, duplicate in the file, existing user), the
  // rejected rows are reported as "line N: NAME: reason" and nothing is stored.
  // `origin` names the input in messages.
  int import(std::istream& csv, const std::string& origin);

 private:
  // The password to set for `name`, or the exit code to return.
  struct NewPassword;
  NewPassword obtain_password(const std::string& name, PasswordSource source);
  std::string aor(const std::string& name) const;

  store::Store& store_;
  const UserSettings settings_;
  UserConsole console_;
};

// Why `name` cannot be a user name (1-64 characters of [A-Za-z0-9._+-]: a SIP user part or
// extension), or std::nullopt when it can.
std::optional<std::string> invalid_user_name(std::string_view name);

// The arguments of one `sipwarden user ...` invocation.
struct UserCommand {
  enum class Action { kAdd, kList, kShow, kPasswd, kRemove, kImport };
  Action action = Action::kList;
  std::string config_path;  // empty: built-in defaults
  std::string name;         // add, show, passwd, remove
  std::string file;         // import
  PasswordSource source = PasswordSource::kTerminal;
  bool require_tls = false;
  std::string argv0;  // to find data/common-passwords.txt next to the executable
};

// Runs one command against the real config, store (<data_dir>/sipwarden.db, the directory
// created with mode 0700 if missing) and terminal.
int run_user_command(const UserCommand& command);

// Finds and loads the common-password list: $SIPWARDEN_COMMON_PASSWORDS if set, else the
// first existing of <exe dir>/../data/common-passwords.txt,
// <exe dir>/../share/sipwarden/common-passwords.txt and the source tree's
// data/common-passwords.txt. The error names every place looked at.
base::Result<auth::PasswordPolicy> load_password_policy(const std::string& argv0);

}  // namespace app
