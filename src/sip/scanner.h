// Character classes of RFC 3261 §25.1 and a small cursor over a header value. Internal to
// src/sip; every read is bounds-checked against the view it was given.
#pragma once

#include <array>
#include <string_view>

namespace sip {

namespace chars {
enum : unsigned char {
  kDigit = 1 << 0,
  kAlpha = 1 << 1,
  kToken = 1 << 2,       // token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
  kParamValue = 1 << 3,  // gen-value without quotes: token / host (adds ":" "[" "]")
  kVisible = 1 << 4,     // VCHAR %x21-7E
  kLws = 1 << 5,         // SP HTAB CR LF (CR/LF only occur inside folded values)
  kCtl = 1 << 6,         // %x00-1F / %x7F
};

constexpr std::array<unsigned char, 256> make_table() {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c) {
    unsigned char f = 0;
    const bool digit = c >= '0' && c <= '9';
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (digit) f |= kDigit;
    if (alpha) f |= kAlpha;
    const bool token = digit || alpha || c == '-' || c == '.' || c == '!' || c == '%' ||
                       c == '*' || c == '_' || c == '+' || c == '`' || c == '\'' || c == '~';
    if (token) f |= kToken | kParamValue;
    if (c == ':' || c == '[' || c == ']') f |= kParamValue;
    if (c >= 0x21 && c <= 0x7E) f |= kVisible;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') f |= kLws;
    if (c < 0x20 || c == 0x7F) f |= kCtl;
    t[static_cast<std::size_t>(c)] = f;
  }
  return t;
}
inline constexpr std::array<unsigned char, 256> kTable = make_table();

constexpr bool has(char c, unsigned char flag) {
  return (kTable[static_cast<unsigned char>(c)] & flag) != 0;
}
}  // namespace chars

constexpr bool is_digit(char c) { return chars::has(c, chars::kDigit); }
constexpr bool is_alnum(char c) { return chars::has(c, chars::kDigit | chars::kAlpha); }
constexpr bool is_token_char(char c) { return chars::has(c, chars::kToken); }
constexpr bool is_param_value_char(char c) { return chars::has(c, chars::kParamValue); }
// Call-ID words (RFC 3261 "word" plus "@"): accepted liberally as any visible character,
// since Call-IDs are opaque and matched byte for byte.
constexpr bool is_word_char(char c) { return chars::has(c, chars::kVisible); }
constexpr bool is_lws_char(char c) { return chars::has(c, chars::kLws); }
constexpr bool is_ctl(char c) { return chars::has(c, chars::kCtl); }

template <typename Pred>
constexpr bool all_of(std::string_view s, Pred pred) {
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

// Removes leading and trailing linear whitespace (including folding CR/LF).
constexpr std::string_view trim_lws(std::string_view s) {
  while (!s.empty() && is_lws_char(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_lws_char(s.back())) s.remove_suffix(1);
  return s;
}

// A cursor over a header value. Methods that take something return an empty view when the
// next character does not fit, and leave the cursor where it was.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool at_end() const { return p_ == end_; }
  char peek() const { return p_ == end_ ? '\0' : *p_; }
  const char* position() const { return p_; }
  std::string_view rest() const { return {p_, static_cast<std::size_t>(end_ - p_)}; }

  bool consume(char c) {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }

  // Skips SP, HTAB and folding line breaks; returns whether anything was skipped.
  bool skip_lws() {
    const char* start = p_;
    while (p_ != end_ && is_lws_char(*p_)) ++p_;
    return p_ != start;
  }

  template <typename Pred>
  std::string_view take_while(Pred pred) {
    const char* start = p_;
    while (p_ != end_ && pred(*p_)) ++p_;
    return {start, static_cast<std::size_t>(p_ - start)};
  }

  std::string_view take_until(char c) {
    return take_while([c](char x) { return x != c; });
  }

  std::string_view token() { return take_while(is_token_char); }

  // quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE, returned with its quotes.
  // Empty (cursor unchanged) if the next character is not '"' or the string is unterminated.
  std::string_view quoted_string() {
    if (p_ == end_ || *p_ != '"') return {};
    const char* q = p_ + 1;
    while (q != end_) {
      if (*q == '\\') {
        if (q + 1 == end_) return {};
        q += 2;
        continue;
      }
      if (*q == '"') {
        const char* start = p_;
        p_ = q + 1;
        return {start, static_cast<std::size_t>(p_ - start)};
      }
      ++q;
    }
    return {};
  }

 private:
  const char* p_;
  const char* end_;
};

}  // namespace sip
