// sipwarden's settings: one TOML file, every key with a default, every error naming its key.
// docs/configuration.md documents each key; `sipwarden check-config` prints the effective
// values.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace config {

enum class Transport : std::uint8_t { kUdp, kTcp, kTls };
std::string_view to_string(Transport t);  // "udp", "tcp", "tls"

struct Listen {
  Transport transport = Transport::kUdp;
  std::string address;  // "0.0.0.0", "::", "127.0.0.1", "::1"
  std::uint16_t port = 5060;
  // Built-in default listeners may fail to bind where the address family is unavailable
  // (a host without IPv6): those are skipped with a warning; configured ones are fatal
  // unless the file says `optional = true` for them.
  bool optional = false;

  friend bool operator==(const Listen&, const Listen&) = default;
};

// What a user may call and how much (toll fraud). [calls] holds the defaults for every user;
// [users.NAME] overrides any of these keys for one user (docs/configuration.md, docs/calls.md).
struct CallPolicy {
  // Destination patterns (Asterisk style: X = 0-9, Z = 1-9, N = 2-9, [a-b] a class, '.' one
  // or more of anything, '!' zero or more, anything else literal; "local" = any local user).
  // A destination must match an allowed pattern and no denied one.
  std::vector<std::string> allowed_destinations = {"local", "X."};
  // International and premium-rate numbers are closed until opened.
  std::vector<std::string> denied_destinations = {"+.",    "00.",   "011.", "1900.",
                                                  "1976.", "09.",   "118."};
  unsigned max_concurrent_calls = 4;       // dialogs (ringing or answered) as caller; 0: none
  unsigned max_calls_per_minute = 20;      // call attempts in any 60 s; 0: none
  std::chrono::seconds max_call_duration{7200};  // answered calls are ended (BYE both ways)
  bool require_srtp = false;               // calls over TLS must offer SRTP, else 488
  friend bool operator==(const CallPolicy&, const CallPolicy&) = default;
};

// [users.NAME]: one user's overrides (the subscriber itself lives in the store).
struct UserPolicy {
  std::string name;
  CallPolicy calls;                           // [calls] with this user's keys applied
  std::vector<std::string> aliases;           // other From user parts this user may present
  std::vector<std::string> allowed_networks;  // CIDRs; non-empty: REGISTER/INVITE only from these
  friend bool operator==(const UserPolicy&, const UserPolicy&) = default;
};

// [[trunk]]: an upstream provider or PBX.
struct Trunk {
  std::string name;                     // unique, [A-Za-z0-9_-]
  std::string host;                     // IP literal or host name (resolved at start-up)
  std::uint16_t port = 5060;
  Transport transport = Transport::kUdp;
  std::string username;                 // digest credentials toward the provider;
  std::string password;                 //   empty: IP authentication (nothing to answer)
  std::string realm;                    // empty: answer any realm the provider challenges with
  std::vector<std::string> outbound;    // destination patterns routed out through this trunk
  std::uint32_t strip = 0;              // leading digits removed before sending out
  std::string prefix;                   // then prepended
  std::vector<std::string> inbound_sources;  // CIDRs calls may come in from; default: host's
                                             // address (/32 or /128) when host is a literal
  std::vector<std::pair<std::string, std::string>> dids;  // called number → local user
  bool trusted = true;                  // P-Asserted-Identity sent to and accepted from it
  friend bool operator==(const Trunk&, const Trunk&) = default;
};

struct Config {
  // [server]
  std::string domain;                   // default: the host name
  std::filesystem::path data_dir = "sipwarden-data";
  unsigned workers = 0;                 // 0: one per core
  std::string log_level = "info";       // trace, debug, info, warn, error
  std::chrono::milliseconds shutdown_grace{5000};  // SIGTERM: how long transactions may finish

  // [[listen]] — default: udp+tcp on 0.0.0.0:5060 and [::]:5060, tls on 0.0.0.0:5061 and [::]:5061
  std::vector<Listen> listen;

  // [limits]
  std::size_t max_message_bytes = 65535;
  std::size_t max_headers = 128;
  std::size_t max_header_line = 8192;
  std::size_t max_uri_length = 4096;

  // [connections] (TCP and TLS)
  std::size_t max_connections = 10000;
  std::size_t max_connections_per_source = 64;
  std::chrono::seconds idle_timeout{600};             // no bytes in either direction
  std::chrono::seconds tls_handshake_timeout{10};
  std::chrono::seconds message_timeout{30};           // a started message must complete in time
  std::size_t max_buffered_bytes = 65536 + 4096;      // unframed bytes held per connection

  // [tls]
  std::filesystem::path tls_certificate;  // PEM chain; empty: generate a self-signed one
  std::filesystem::path tls_private_key;  // PEM key
  bool tls_verify_client = false;         // request and verify client certificates (trunks)
  std::filesystem::path tls_client_ca;    // CAs for client certificates; required if verifying
  std::string tls_min_version = "1.2";    // "1.2" or "1.3"
  unsigned tls_expiry_warning_days = 30;

  // [registrar] (RFC 3261 §10.3)
  std::uint32_t min_expires = 60;       // shorter non-zero expiry: 423 Interval Too Brief
  std::uint32_t max_expires = 3600;     // longer is shortened to this
  std::uint32_t default_expires = 3600; // when the REGISTER names none
  std::size_t max_contacts = 10;        // bindings per address-of-record

  // [auth] (RFC 7616, RFC 8760)
  std::vector<std::string> auth_algorithms = {"SHA-256", "MD5"};  // challenge order
  std::chrono::seconds nonce_lifetime{300};

  // [shield] (docs/security.md)
  std::vector<std::string> shield_allow;  // CIDRs; non-empty: only these sources are served
  std::vector<std::string> shield_deny;   // CIDRs never served
  double packet_rate = 500, packet_burst = 2000;      // per source, before parsing
  double register_rate = 50, register_burst = 300;    // per source
  double invite_rate = 20, invite_burst = 100;        // per source
  double other_rate = 200, other_burst = 1000;        // per source
  double global_rate = 0, global_burst = 0;           // all sources; 0: off
  unsigned failures_per_source = 10;  // failed authentications in the window → ban
  unsigned failures_per_user = 5;     // from one source against one user → ban
  unsigned probed_users = 20;         // distinct users challenged, never authenticated → ban
  std::chrono::seconds shield_window{60};
  std::vector<std::int64_t> ban_durations_s = {600, 3600, 86400};  // escalation steps
  std::vector<std::string> scanner_user_agents = {"friendly-scanner", "sipvicious", "sipcli",
                                                  "vaxsipuseragent", "iwar", "sundayddr",
                                                  "sipscan", "sip-scan", "pplsip", "smap"};
  bool tls_only = false;              // open no plaintext (UDP/TCP) listener at all
  std::filesystem::path events_json;  // empty: <data_dir>/security-events.jsonl
  std::filesystem::path events_text;  // empty: <data_dir>/security-events.log

  // [calls] (docs/calls.md)
  CallPolicy calls;
  std::chrono::seconds ring_timeout{60};  // no final answer from any contact: 480, branches
                                          // cancelled (a proxy's Timer C, RFC 3261 §16.8)
  std::string record_route_host;          // empty: the local address the request came in on
  // [users.NAME]
  std::vector<UserPolicy> users;
  // [[trunk]]
  std::vector<Trunk> trunks;

  // [store] (docs/store.md): how the SQLite writer groups its commits
  std::chrono::milliseconds commit_window{5};         // a commit starts at least this long
                                                      // after the previous one; 0: at once
  std::chrono::milliseconds call_record_window{100};  // call records alone gather this long

  // [timers] (RFC 3261 §17.1.1.1)
  std::chrono::milliseconds t1{500};
  std::chrono::milliseconds t2{4000};
  std::chrono::milliseconds t4{5000};

  // Where this config came from ("(built-in defaults)" or the file path), for messages.
  std::string source = "(built-in defaults)";

  // Field by field, `source` included (compare a reloaded config after copying it over).
  friend bool operator==(const Config&, const Config&) = default;
};

// The built-in defaults (domain from the host name, the default listeners).
Config defaults();

// Reads and validates a TOML file. Unknown keys, wrong types and out-of-range values are
// errors; the message names the key and the reason, e.g.
//   "/etc/sipwarden.toml: limits.max_headers: must be between 8 and 1024 (got 0)".
// Every problem found is reported, one per line in that form; a TOML syntax error is reported
// alone as "<origin>:<line>:<column>: <description>"; an unreadable file as
// "<path>: cannot read: <strerror>". Never throws.
base::Result<Config> load_file(const std::filesystem::path& path);
// Same, from text (for tests); `origin` names it in messages and becomes Config::source.
base::Result<Config> load_string(std::string_view toml, std::string_view origin = "(string)");

// The effective settings as TOML (every key, defaults included): the output of
// `sipwarden check-config`, itself a valid config file.
std::string to_toml(const Config& config);

}  // namespace config
