#include "sip/params.h"

#include <array>
#include <cstddef>

namespace sip {
namespace {

// Bytes that end a parameter name or an unquoted value: the list's own punctuation, LWS, the
// start of a quoted-string, and control characters. ',' separates header values (RFC 3261
// §7.3.1), so a list handed over unsplit stops there instead of running into the next value.
constexpr std::array<bool, 256> make_stops() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t[0x7f] = true;
  for (char c : std::string_view(";=,\" ")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kStops = make_stops();

bool is_stop(char c) {
  return kStops[static_cast<unsigned char>(c)];
}
bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}

// RFC 3261 §25.1: LWS = [*WSP CRLF] 1*WSP. A bare LF fold is accepted too (RFC 3261 §7.5
// lets a recipient take LF alone as a line end). A line end not followed by WSP is not
// whitespace: it ends the header, so it is left in place.
std::string_view skip_lws(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (is_wsp(s[i])) {
      ++i;
      continue;
    }
    std::size_t eol = 0;
    if (s[i] == '\n') {
      eol = 1;
    } else if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
      eol = 2;
    }
    if (eol == 0 || i + eol >= s.size() || !is_wsp(s[i + eol])) break;
    i += eol + 1;
  }
  return s.substr(i);
}

// Length of the quoted-string at the start of `s` (RFC 3261 §25.1, quoted-pair included), or
// 0 if it is not terminated inside `s`.
std::size_t quoted_length(std::string_view s) {
  std::size_t i = 1;  // past the opening quote
  while (i < s.size()) {
    if (s[i] == '\\') {
      i += 2;
    } else if (s[i] == '"') {
      return i + 1;
    } else {
      ++i;
    }
  }
  return 0;
}

}  // namespace

ParamList::iterator::iterator(std::string_view rest) : rest_(skip_lws(rest)), done_(false) {
  if (!rest_.empty() && rest_.front() == ';') rest_ = skip_lws(rest_.substr(1));
  advance();
}

ParamList::iterator& ParamList::iterator::operator++() {
  if (done_) return *this;
  rest_ = skip_lws(rest_);
  if (rest_.empty() || rest_.front() != ';') {
    // End of list, or junk after a parameter: either way nothing more can be trusted.
    *this = iterator();
    return *this;
  }
  rest_ = skip_lws(rest_.substr(1));
  advance();
  return *this;
}

// Reads one parameter from the front of rest_ (its ';' and leading LWS already consumed).
void ParamList::iterator::advance() {
  std::size_t n = 0;
  while (n < rest_.size() && !is_stop(rest_[n])) ++n;
  if (n == 0) {
    // End of input, or an empty name (";;", ";=x"): stop, as documented.
    *this = iterator();
    return;
  }
  Param param;
  param.name = rest_.substr(0, n);
  std::string_view after = skip_lws(rest_.substr(n));
  if (after.empty() || after.front() != '=') {
    current_ = param;
    rest_ = rest_.substr(n);
    return;
  }
  after = skip_lws(after.substr(1));
  std::size_t len = 0;
  if (!after.empty() && after.front() == '"') {
    len = quoted_length(after);
    if (len == 0) {
      *this = iterator();  // unterminated quoted-string
      return;
    }
  } else {
    while (len < after.size() && !is_stop(after[len])) ++len;
  }
  param.value = after.substr(0, len);
  param.has_value = true;
  current_ = param;
  rest_ = after.substr(len);
}

std::optional<std::string_view> ParamList::find(std::string_view name) const {
  for (const Param& param : *this) {
    if (iequals(param.name, name)) return param.value;
  }
  return std::nullopt;
}

std::string unquote(std::string_view quoted) {
  if (quoted.size() < 2 || quoted.front() != '"' || quoted.back() != '"') {
    return std::string(quoted);
  }
  const std::string_view inner = quoted.substr(1, quoted.size() - 2);
  std::string out;
  out.reserve(inner.size());
  for (std::size_t i = 0; i < inner.size(); ++i) {
    // RFC 3261 §25.1 quoted-pair: "\" and the next byte stand for that byte.
    if (inner[i] == '\\' && i + 1 < inner.size()) ++i;
    out += inner[i];
  }
  return out;
}

}  // namespace sip
