// Parameter lists: the ";name=value;flag" tails of URIs and of header values.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sip {

struct Param {
  std::string_view name;   // as written (compare case-insensitively)
  std::string_view value;  // as written; a quoted-string keeps its quotes; empty for a flag
  bool has_value = false;  // "lr" is a flag; "tag=" would be a value of zero length
};

// A read-only view over an already validated parameter list, e.g. `;branch=z9hG4bK1;rport`
// from a Via or `;transport=tcp;lr` from a URI. The leading ';' is optional. Linear
// whitespace (SP, HTAB, CRLF+WSP folding) around ';' and '=' is skipped, and a quoted-string
// value may contain ';' (header parameters only; URI parameters have neither).
// The view borrows the buffer: the message must outlive it. Iteration never reads outside
// `raw`; a list that was not validated yields what it can and stops at the first
// malformation.
class ParamList {
 public:
  ParamList() = default;
  explicit ParamList(std::string_view raw) : raw_(raw) {}

  class iterator {
   public:
    using value_type = Param;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(std::string_view rest);
    const Param& operator*() const { return current_; }
    const Param* operator->() const { return &current_; }
    iterator& operator++();
    iterator operator++(int) {
      iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const iterator& other) const { return done_ == other.done_ && (done_ || rest_.data() == other.rest_.data()); }

   private:
    void advance();
    std::string_view rest_;
    Param current_;
    bool done_ = true;
  };

  iterator begin() const { return iterator(raw_); }
  iterator end() const { return iterator(); }
  bool empty() const { return begin() == end(); }

  // The first parameter whose name equals `name` (case-insensitive). Returns std::nullopt when
  // absent, an empty view for a flag parameter, else the value as written.
  std::optional<std::string_view> find(std::string_view name) const;
  bool has(std::string_view name) const { return find(name).has_value(); }

  std::string_view raw() const { return raw_; }

 private:
  std::string_view raw_;
};

// ASCII case-insensitive equality (SIP tokens, header names, parameter names). Inline: it
// runs for every header and parameter name.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    const auto lx = static_cast<unsigned char>(x | 0x20);
    if (lx != (y | 0x20) || lx < 'a' || lx > 'z') return false;
  }
  return true;
}

// `s` with its ASCII letters lowercased (domains, transport names: case-insensitive tokens).
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

// The contents of a quoted-string with its quotes removed and `\x` escapes resolved
// (RFC 3261 §25.1). Input without surrounding quotes is returned unchanged.
std::string unquote(std::string_view quoted);

}  // namespace sip
