// `sipwarden serve` and `sipwarden check-config`.
#pragma once

#include <string>

namespace app {

// Runs the server in the foreground until SIGTERM/SIGINT; SIGHUP reloads the TLS certificate
// and key. Returns the process exit code (1 with a message on stderr for a bad config or a
// listener that cannot be opened).
int serve(const std::string& config_path);

// Prints the effective settings as TOML, or the errors. Returns 0 when the config is valid.
int check_config(const std::string& config_path);

}  // namespace app
