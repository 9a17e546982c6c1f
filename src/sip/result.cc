#include "sip/result.h"

#include <cstddef>

namespace sip {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kTooLarge:
      return "too large";
    case ErrorCode::kBadStartLine:
      return "bad start line";
    case ErrorCode::kBadVersion:
      return "bad version";
    case ErrorCode::kBadHeader:
      return "bad header";
    case ErrorCode::kBadHeaderValue:
      return "bad header value";
    case ErrorCode::kBadUri:
      return "bad URI";
    case ErrorCode::kMissingHeader:
      return "missing header";
    case ErrorCode::kDuplicateHeader:
      return "duplicate header";
    case ErrorCode::kInconsistent:
      return "inconsistent message";
    case ErrorCode::kBadContentLength:
      return "bad Content-Length";
    case ErrorCode::kTruncated:
      return "truncated message";
  }
  // Only reachable through a cast of an out-of-range value; say so rather than crash.
  return "unknown error";
}

std::string Error::describe() const {
  // Enough to show a line of context; the input may be megabytes of attacker-chosen bytes.
  constexpr std::size_t kMaxWhere = 40;
  static constexpr char kHex[] = "0123456789abcdef";

  std::string out(to_string(code));
  out += ": ";
  out += what != nullptr ? what : "";
  if (where.empty()) return out;

  out += " (near \"";
  const std::size_t n = where.size() < kMaxWhere ? where.size() : kMaxWhere;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(where[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      // Keep log lines single-line and terminal-safe whatever the packet carried.
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  out += "\")";
  return out;
}

}  // namespace sip
