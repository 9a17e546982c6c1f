// `sipwarden ban list | add ADDR [--for DURATION] | remove ADDR`.
#pragma once

#include <optional>
#include <string>

namespace app {

// "90" (seconds), "10m", "1h", "2d"; std::nullopt if malformed or not positive.
std::optional<long long> parse_duration(const std::string& text);

// Each returns the process exit code; messages go to stdout/stderr. A running server picks
// the change up within a second.
int ban_list(const std::string& config_path);
int ban_add(const std::string& config_path, const std::string& address, const std::string& duration);
int ban_remove(const std::string& config_path, const std::string& address);

}  // namespace app
