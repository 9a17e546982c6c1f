// sipwarden's command line (../shared/DESIGN.md "Command line"): one binary, subcommands.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "app/ban.h"
#include "app/lint.h"
#include "app/serve.h"
#include "app/user.h"

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

  // `ban ...`: the shield's ban list, kept in the store (a running server follows it).
  std::string ban_config, ban_address, ban_for = "1h";
  auto* ban = cli.add_subcommand(
      "ban",
      "List, add and lift bans of source addresses. Banned sources get no answer at all;\n"
      "the server bans by itself on failed authentication, scanners and enumeration\n"
      "(docs/security.md). A running server follows changes within a second.");
  ban->require_subcommand(1);
  auto* ban_list = ban->add_subcommand("list", "List the bans in force.");
  auto* ban_add = ban->add_subcommand("add", "Ban an address.");
  ban_add->add_option("ADDR", ban_address, "IPv4 or IPv6 address")->required();
  ban_add->add_option("--for", ban_for, "duration: 90, 90s, 10m, 1h, 2d")->capture_default_str();
  auto* ban_remove = ban->add_subcommand("remove", "Lift the ban on an address.");
  ban_remove->add_option("ADDR", ban_address, "IPv4 or IPv6 address")->required();
  for (CLI::App* sub : {ban_list, ban_add, ban_remove}) {
    sub->add_option("--config", ban_config, "TOML config file (default: built-in defaults)");
  }

  // `user ...`: subscriber administration (src/app/user.h).
  app::UserCommand user_command;
  user_command.argv0 = argc > 0 ? argv[0] : "sipwarden";
  auto* user = cli.add_subcommand(
      "user",
      "Manage the users (subscribers) allowed to register and call. Passwords are stored only\n"
      "as digest hashes (HA1, MD5 and SHA-256) for the domain as realm; weak passwords are\n"
      "refused. Exit code 0 on success, 1 when refused or failed, 2 on a usage error.");
  user->require_subcommand(1);
  auto add_user_config = [&](CLI::App* sub) {
    sub->add_option("--config", user_command.config_path,
                    "TOML config file (default: built-in defaults, data in ./sipwarden-data)");
  };
  // --generate / --password-stdin: without either, the password is asked twice on the terminal.
  auto add_password_source = [&](CLI::App* sub) {
    auto* generate = sub->add_flag_callback(
        "--generate", [&] { user_command.source = app::PasswordSource::kGenerate; },
        "generate a strong random password and print it on stdout as one line\n"
        "'password: <password>' -- it is shown only this once and never stored");
    auto* from_stdin = sub->add_flag_callback(
        "--password-stdin", [&] { user_command.source = app::PasswordSource::kStdin; },
        "read the password as one line from standard input (for scripts)");
    generate->excludes(from_stdin);
  };
  auto* user_add = user->add_subcommand("add", "Add a user (refused if the name exists).");
  user_add->add_option("NAME", user_command.name, "user name: 1-64 of [A-Za-z0-9._+-]")->required();
  add_password_source(user_add);
  user_add->add_flag("--require-tls", user_command.require_tls,
                     "accept this user's REGISTERs and calls only over TLS");
  add_user_config(user_add);
  auto* user_list = user->add_subcommand(
      "list", "List the users: name, whether TLS is required, current bindings.");
  add_user_config(user_list);
  auto* user_show =
      user->add_subcommand("show", "Show a user's settings and current bindings (contacts).");
  user_show->add_option("NAME", user_command.name, "user name")->required();
  add_user_config(user_show);
  auto* user_passwd = user->add_subcommand("passwd", "Set a new password for a user.");
  user_passwd->add_option("NAME", user_command.name, "user name")->required();
  add_password_source(user_passwd);
  add_user_config(user_passwd);
  auto* user_remove = user->add_subcommand("remove", "Remove a user and its bindings.");
  user_remove->add_option("NAME", user_command.name, "user name")->required();
  add_user_config(user_remove);
  auto* user_import = user->add_subcommand(
      "import",
      "Import users from a CSV file of 'name,password' lines (optional header line\n"
      "'name,password'; '-' reads standard input). All or nothing: if any row is rejected\n"
      "(bad name, weak password, duplicate, existing user) the rejected rows are reported as\n"
      "'line N: NAME: reason' and nothing is imported.");
  user_import->add_option("FILE", user_command.file, "CSV file")->required();
  add_user_config(user_import);

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = cli.exit(e);
    // Usage errors of `user ...` exit 2, as its help says.
    return (code != 0 && user->parsed()) ? 2 : code;
  }

  if (user->parsed()) {
    using Action = app::UserCommand::Action;
    if (user_add->parsed()) user_command.action = Action::kAdd;
    if (user_list->parsed()) user_command.action = Action::kList;
    if (user_show->parsed()) user_command.action = Action::kShow;
    if (user_passwd->parsed()) user_command.action = Action::kPasswd;
    if (user_remove->parsed()) user_command.action = Action::kRemove;
    if (user_import->parsed()) user_command.action = Action::kImport;
    return app::run_user_command(user_command);
  }

  if (ban->parsed()) {
    if (ban_list->parsed()) return app::ban_list(ban_config);
    if (ban_add->parsed()) return app::ban_add(ban_config, ban_address, ban_for);
    return app::ban_remove(ban_config, ban_address);
  }

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
