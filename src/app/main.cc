// sipwarden's command line (../shared/DESIGN.md "Command line"): one binary, subcommands.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "app/lint.h"
#include "app/serve.h"

namespace {
constexpr const char* kVersion = "0.1.0";
}

int main(int argc, char** argv) {
  CLI::App cli{"sipwarden: a secure-by-default SIP registrar, proxy and edge guard"};
  cli.set_version_flag("--version", kVersion);
  cli.require_subcommand(1);

  std::vector<std::string> lint_paths;
  bool lint_stream = false;
  std::size_t lint_max_bytes = sip::Limits{}.max_message_bytes;
  auto* lint = cli.add_subcommand(
      "lint",
      "Parse SIP messages from files (one message per file) and print a verdict per file:\n"
      "'valid' or 'invalid: <reason>'. Exit code 0 when all are valid, 1 otherwise.");
  lint->add_option("FILE", lint_paths, "message files (raw bytes, e.g. a captured datagram)")
      ->required();
  lint->add_flag("--stream", lint_stream,
                 "judge as received on TCP/TLS: Content-Length is mandatory");
  lint->add_option("--max-bytes", lint_max_bytes, "largest accepted message")
      ->capture_default_str();

  std::string config_path;
  auto* serve = cli.add_subcommand(
      "serve",
      "Run the server in the foreground, logging to stdout. With no --config it runs on its\n"
      "built-in defaults (data in ./sipwarden-data, UDP+TCP 5060, TLS 5061, IPv4 and IPv6).\n"
      "SIGTERM/SIGINT stop it gracefully; SIGHUP reloads the TLS certificate and key.");
  serve->add_option("--config", config_path, "TOML config file (docs/configuration.md)");
  auto* check = cli.add_subcommand(
      "check-config", "Validate the config and print the effective settings as TOML.");
  check->add_option("--config", config_path, "TOML config file (default: built-in defaults)");

  CLI11_PARSE(cli, argc, argv);

  if (serve->parsed()) return app::serve(config_path);
  if (check->parsed()) return app::check_config(config_path);

  if (lint->parsed()) {
    sip::ParseOptions options;
    options.framing = lint_stream ? sip::Framing::kStream : sip::Framing::kDatagram;
    options.limits.max_message_bytes = lint_max_bytes;
    return app::lint_files(lint_paths, options, std::cout);
  }
  return 0;
}
