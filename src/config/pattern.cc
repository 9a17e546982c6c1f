#include "config/pattern.h"

#include <cctype>
#include <utility>

namespace config {

namespace {

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

// The members of a class body (the text between '[' and ']') one at a time: a single
// character, or "a-b" (both ends included). A '-' first or last is itself a member.
struct ClassMember {
  char lo;
  char hi;
};

template <typename Visit>
void for_each_member(std::string_view body, Visit visit) {
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (i + 2 < body.size() && body[i + 1] == '-') {
      visit(ClassMember{lower(body[i]), lower(body[i + 2])});
      i += 2;
    } else {
      visit(ClassMember{lower(body[i]), lower(body[i])});
    }
  }
}

// Whether the class body `body` admits `c` (letters compared case-insensitively).
bool class_has(std::string_view body, char c) {
  const char wanted = lower(c);
  bool found = false;
  for_each_member(body,
                  [&](ClassMember m) { found = found || (wanted >= m.lo && wanted <= m.hi); });
  return found;
}

// No member at all ("[]"), or a range that holds nothing ("[9-0]"): such a class can only be
// a mistake, and silently matching less (in a deny list: denying less) is the wrong answer.
bool class_is_empty(std::string_view body) {
  bool reversed = false;
  for_each_member(body, [&](ClassMember m) { reversed = reversed || m.lo > m.hi; });
  return body.empty() || reversed;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

base::Result<Pattern> Pattern::parse(std::string_view text) {
  if (text.empty()) return std::string("empty pattern");
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.' || c == '!') {
      if (i + 1 != text.size()) return std::string("'") + c + "' must be the last character";
    } else if (c == '[') {
      const std::size_t close = text.find(']', i + 1);
      if (close == std::string_view::npos) return std::string("unclosed [");
      const std::string_view body = text.substr(i + 1, close - i - 1);
      if (class_is_empty(body)) return "empty class [" + std::string(body) + "]";
      i = close;
    }
  }
  return Pattern(std::string(text));
}

// parse() has checked the text: every '[' is closed and '.' or '!' can only come last.
bool Pattern::matches(std::string_view number) const {
  std::size_t n = 0;  // next character of `number`
  for (std::size_t i = 0; i < text_.size(); ++i) {
    const char p = text_[i];
    if (p == '!') return true;
    if (p == '.') return n < number.size();
    if (n == number.size()) return false;
    const char c = number[n++];
    switch (p) {
      case 'X':
        if (!is_digit(c)) return false;
        break;
      case 'Z':
        if (!is_digit(c) || c == '0') return false;
        break;
      case 'N':
        if (!is_digit(c) || c < '2') return false;
        break;
      case '[': {
        const std::size_t close = text_.find(']', i + 1);
        if (!class_has(std::string_view(text_).substr(i + 1, close - i - 1), c)) return false;
        i = close;
        break;
      }
      default:
        if (lower(p) != lower(c)) return false;
    }
  }
  return n == number.size();
}

}  // namespace config
