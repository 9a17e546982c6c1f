// Destination patterns, Asterisk style (what VoIP admins already write), used by [calls],
// [users.NAME] and [[trunk]] outbound lists:
//   X = any digit 0-9, Z = 1-9, N = 2-9, [1-5] or [137] or [1-37-9] a class of digits,
//   '.' = one or more of any character, '!' = zero or more of any character (both must be
//   last), anything else (digits, '+', '*', '#', letters) matches itself, case-insensitively.
// A pattern matches the whole number: "NXX" matches "212" but not "2125" nor "21".
// The word "local" is not a pattern (it means "a local user"); callers handle it.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace config {

class Pattern {
 public:
  // Fails with a reason: "empty pattern", "unclosed [", "empty class [...]",
  // "'.' must be the last character", "'!' must be the last character".
  static base::Result<Pattern> parse(std::string_view text);
  bool matches(std::string_view number) const;
  const std::string& text() const { return text_; }

 private:
  explicit Pattern(std::string text) : text_(std::move(text)) {}
  std::string text_;
};

}  // namespace config
