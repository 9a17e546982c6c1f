// Character classes of RFC 3261 §25.1, the scanning loops the parser and the URI parser share
// (class runs, SSE2 byte search, word-at-a-time name compares), and a small cursor over a header
// value. Internal to src/sip; every read is bounds-checked against the view it was given: no
// load, however wide, reaches past its end.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "sip/result.h"
#include "sip/uri.h"

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

// The first byte in [p, end) for which `in_class` is false, or `end`. Every token, host and
// parameter is measured by this loop, so it is unrolled: four bytes per round while four
// remain, with one end check per round instead of one per byte.
template <typename Pred>
inline const char* skip_while(const char* p, const char* end, Pred in_class) {
  while (end - p >= 4) {
    if (!in_class(p[0])) return p;
    if (!in_class(p[1])) return p + 1;
    if (!in_class(p[2])) return p + 2;
    if (!in_class(p[3])) return p + 3;
    p += 4;
  }
  while (p != end && in_class(*p)) ++p;
  return p;
}

template <typename Pred>
inline bool all_of(std::string_view s, Pred pred) {
  return skip_while(s.data(), s.data() + s.size(), pred) == s.data() + s.size();
}

// Removes leading and trailing linear whitespace (including folding CR/LF).
inline std::string_view trim_lws(std::string_view s) {
  const char* begin = s.data();
  const char* end = begin + s.size();
  while (begin != end && is_lws_char(*begin)) ++begin;
  while (end != begin && is_lws_char(end[-1])) --end;
  return {begin, static_cast<std::size_t>(end - begin)};
}

// The first byte in [p, end) equal to `a` or `b`, or `end`. For the longer runs inside header
// values (quoted strings, URIs in <>): SSE2 over whole 16-byte blocks, which never reach past
// `end`, then a byte loop for the rest. Cheaper than memchr's call for the short runs of SIP.
inline const char* find_either(const char* p, const char* end, char a, char b) {
#if defined(__SSE2__)
  const __m128i va = _mm_set1_epi8(a);
  const __m128i vb = _mm_set1_epi8(b);
  while (end - p >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const auto hits = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb))));
    if (hits != 0) return p + std::countr_zero(hits);
    p += 16;
  }
#endif
  while (p != end && *p != a && *p != b) ++p;
  return p;
}

namespace detail {
// (a | bits) == b for sizeof(Word) bytes, `bits` repeated in every byte.
template <typename Word, std::uint8_t kBits>
bool word_equal(const char* a, const char* b) {
  constexpr auto kMask = static_cast<Word>(0x0101010101010101ULL * kBits);
  Word x;
  Word y;
  std::memcpy(&x, a, sizeof x);
  std::memcpy(&y, b, sizeof y);
  return (x | kMask) == y;
}

// Compares n bytes (a | bits) with b a word at a time: overlapping words rather than reads past
// either end. The names SIP compares (headers, parameters, methods) are a few bytes long.
template <std::uint8_t kBits>
bool words_equal(const char* a, const char* b, std::size_t n) {
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 < n; i += 8) {
      if (!word_equal<std::uint64_t, kBits>(a + i, b + i)) return false;
    }
    return word_equal<std::uint64_t, kBits>(a + n - 8, b + n - 8);
  }
  if (n >= 4) {
    return word_equal<std::uint32_t, kBits>(a, b) &&
           word_equal<std::uint32_t, kBits>(a + n - 4, b + n - 4);
  }
  if (n >= 2) {
    return word_equal<std::uint16_t, kBits>(a, b) &&
           word_equal<std::uint16_t, kBits>(a + n - 2, b + n - 2);
  }
  return n == 0 || static_cast<char>(a[0] | kBits) == b[0];
}
}  // namespace detail

// a == b, without a call to memcmp for the short strings it is used on (method names).
inline bool bytes_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && detail::words_equal<0>(a.data(), b.data(), a.size());
}

// Case-insensitive equality for a `token` (token characters only, e.g. from Scanner::token())
// against `lower`, a lowercase name made of letters, digits and "-.!%*+`'~" (no '_'). Among token
// characters, setting bit 0x20 turns 'A'-'Z' into 'a'-'z' and changes nothing else except '_'
// (into DEL), so comparing `token | 0x20` with `lower` byte for byte is exactly iequals(), and
// it can be done a word at a time. Parameter names are compared this way on every message.
inline bool token_iequals(std::string_view token, std::string_view lower) {
  return token.size() == lower.size() &&
         detail::words_equal<0x20>(token.data(), lower.data(), token.size());
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
    if (p_ == end_ || !is_lws_char(*p_)) return false;  // the usual case: nothing to skip
    do {
      ++p_;
    } while (p_ != end_ && is_lws_char(*p_));
    return true;
  }

  template <typename Pred>
  std::string_view take_while(Pred pred) {
    const char* start = p_;
    p_ = skip_while(p_, end_, pred);
    return {start, static_cast<std::size_t>(p_ - start)};
  }

  std::string_view take_until(char c) {
    return take_while([c](char x) { return x != c; });
  }

  // take_until() for longer runs (see find_either).
  std::string_view take_until_fast(char c) {
    const char* start = p_;
    p_ = find_either(p_, end_, c, c);
    return {start, static_cast<std::size_t>(p_ - start)};
  }

  std::string_view token() { return take_while(is_token_char); }

  // quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE, returned with its quotes.
  // Empty (cursor unchanged) if the next character is not '"' or the string is unterminated.
  std::string_view quoted_string() {
    if (p_ == end_ || *p_ != '"') return {};
    const char* q = p_ + 1;
    while (true) {
      q = find_either(q, end_, '"', '\\');
      if (q == end_) return {};
      if (*q == '"') break;
      if (end_ - q < 2) return {};  // a quoted-pair cut short
      q += 2;
    }
    const char* start = p_;
    p_ = q + 1;
    return {start, static_cast<std::size_t>(p_ - start)};
  }

 private:
  const char* p_;
  const char* end_;
};

// parse_uri() without its length check and without copying the Uri out through a Result: the
// parser fills the Uri inside its Message in place. `*uri` must be default-constructed. Returns
// nullptr on success, else `error` holding what parse_uri() would have returned.
const Error* parse_uri_into(std::string_view text, Uri* uri, Error* error);

}  // namespace sip
