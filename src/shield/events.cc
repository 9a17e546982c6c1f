#include "shield/events.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

namespace shield {
namespace {

std::string iso_time(std::int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];  // room for any int the format could print
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

// Text from the network goes into logs: escape it so it cannot forge lines or fields.
void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out.append(buf);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void append_text_value(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7F || c == '"' || c == '\\' ? '?' : c);
  }
  out.push_back('"');
}

std::FILE* open_append(const std::string& path, std::string& error) {
  if (path.empty()) return nullptr;
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) error = path + ": cannot open: " + std::strerror(errno);
  return f;
}

}  // namespace

base::Result<std::unique_ptr<SecurityEvents>> SecurityEvents::open(const std::string& json_path,
                                                                   const std::string& text_path) {
  auto events = std::make_unique<SecurityEvents>();
  std::string error;
  events->json_ = open_append(json_path, error);
  if (!error.empty()) return error;
  events->text_ = open_append(text_path, error);
  if (!error.empty()) return error;
  return events;
}

SecurityEvents::~SecurityEvents() {
  if (json_ != nullptr) std::fclose(json_);
  if (text_ != nullptr) std::fclose(text_);
}

std::string SecurityEvents::json_line(const Event& e, std::int64_t unix_ms) {
  std::string out = "{\"time\":\"" + iso_time(unix_ms) + "\",\"type\":";
  append_json_string(out, e.type);
  out += ",\"source\":";
  append_json_string(out, e.source);
  out += ",\"port\":" + std::to_string(e.port) + ",\"transport\":";
  append_json_string(out, e.transport);
  out += ",\"user\":";
  append_json_string(out, e.user);
  out += ",\"reason\":";
  append_json_string(out, e.reason);
  out += ",\"action\":";
  append_json_string(out, e.action);
  out += "}\n";
  return out;
}

std::string SecurityEvents::text_line(const Event& e, std::int64_t unix_ms) {
  // Fixed field order; fail2ban's filter anchors on "source=<HOST> ".
  std::string out = iso_time(unix_ms) + " sipwarden security: type=" + std::string(e.type) +
                    " source=" + std::string(e.source) + " port=" + std::to_string(e.port) +
                    " transport=" + std::string(e.transport) + " user=";
  append_text_value(out, e.user);
  out += " action=" + std::string(e.action) + " reason=";
  append_text_value(out, e.reason);
  out += "\n";
  return out;
}

void SecurityEvents::record(const Event& e, std::int64_t unix_ms) {
  std::lock_guard lock(mu_);
  ++recorded_;
  if (json_ != nullptr) {
    const std::string line = json_line(e, unix_ms);
    std::fwrite(line.data(), 1, line.size(), json_);
    std::fflush(json_);
  }
  if (text_ != nullptr) {
    const std::string line = text_line(e, unix_ms);
    std::fwrite(line.data(), 1, line.size(), text_);
    std::fflush(text_);
  }
}

}  // namespace shield
