// Which passwords are refused at `user add` / `user passwd` / `user import`, and the strong
// ones `--generate` makes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "base/result.h"

namespace auth {

class PasswordPolicy {
 public:
  // `common` holds known weak passwords (compared case-insensitively).
  explicit PasswordPolicy(std::unordered_set<std::string> common);
  // Loads the list shipped in the repo (data/common-passwords.txt: one per line, '#' comments).
  static base::Result<PasswordPolicy> from_file(const std::string& path);

  // Why `password` is too weak for `user`, as a sentence for the admin ("shorter than 12
  // characters"), or std::nullopt when it is acceptable. Rules: at least 12 characters;
  // does not contain the user name (case-insensitive); not all digits; not a keyboard walk or
  // alphabet/digit run making up most of it (qwerty rows, "1234...", "abcd..."); not a
  // common password, nor a common password with digits or symbols appended; no characters a
  // SIP phone config cannot carry (control characters, space, ';' '"' '>' — see PEERS.md).
  std::optional<std::string> weakness(std::string_view user, std::string_view password) const;

 private:
  std::unordered_set<std::string> common_;
};

// A strong random password: 20 characters from [A-Za-z0-9] plus "-_.+=@%", from a
// cryptographic RNG (OpenSSL RAND_bytes), always passing PasswordPolicy.
std::string generate_password();

}  // namespace auth
