// Security events: one JSON line per event in a log file, plus the same event as one text line
// in a second file, in a fixed format fail2ban can match (docs/security.md has the filter).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/result.h"

namespace shield {

struct Event {
  std::string_view type;       // auth_failed, scanner, probing, rate_limited, banned, denied
  std::string_view source;     // address
  std::uint16_t port = 0;
  std::string_view transport;  // UDP, TCP, TLS
  std::string_view user;       // may be empty
  std::string_view reason;
  std::string_view action;     // challenged, dropped, banned, closed
};

class SecurityEvents {
 public:
  // Opens (appends to) both files; an empty path disables that output.
  static base::Result<std::unique_ptr<SecurityEvents>> open(const std::string& json_path,
                                                            const std::string& text_path);
  SecurityEvents() = default;  // discards everything (tests)
  ~SecurityEvents();
  SecurityEvents(const SecurityEvents&) = delete;
  SecurityEvents& operator=(const SecurityEvents&) = delete;

  // Thread-safe. `unix_ms` is the event time.
  void record(const Event& e, std::int64_t unix_ms);
  std::uint64_t recorded() const { return recorded_; }

  // The two line formats (exposed for tests and docs).
  static std::string json_line(const Event& e, std::int64_t unix_ms);
  static std::string text_line(const Event& e, std::int64_t unix_ms);

 private:
  std::mutex mu_;
  std::FILE* json_ = nullptr;
  std::FILE* text_ = nullptr;
  std::uint64_t recorded_ = 0;
};

}  // namespace shield
