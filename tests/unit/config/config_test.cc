#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

Config load_ok(std::string_view text) {
  base::Result<Config> r = load_string(text, "test.toml");
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : Config{};
}

std::string load_error(std::string_view text) {
  base::Result<Config> r = load_string(text, "test.toml");
  EXPECT_FALSE(r.ok()) << "accepted:\n" << text;
  return r.ok() ? std::string() : r.error();
}

std::string host_name() {
  std::array<char, 256> buffer{};
  gethostname(buffer.data(), buffer.size() - 1);
  return buffer.data();
}

TEST(ConfigDefaults, MatchTheDocumentedValues) {
  Config c = defaults();
  EXPECT_FALSE(c.domain.empty());
  std::string host = host_name();
  if (!host.empty() && host.find('_') == std::string::npos) {
    EXPECT_EQ(c.domain, host);
  }
  EXPECT_EQ(c.data_dir, "sipwarden-data");
  EXPECT_EQ(c.workers, 0u);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.shutdown_grace, milliseconds(5000));
  EXPECT_EQ(c.max_message_bytes, 65535u);
  EXPECT_EQ(c.max_headers, 128u);
  EXPECT_EQ(c.max_header_line, 8192u);
  EXPECT_EQ(c.max_uri_length, 4096u);
  EXPECT_EQ(c.max_connections, 10000u);
  EXPECT_EQ(c.max_connections_per_source, 64u);
  EXPECT_EQ(c.idle_timeout, seconds(600));
  EXPECT_EQ(c.tls_handshake_timeout, seconds(10));
  EXPECT_EQ(c.max_buffered_bytes, 69632u);
  EXPECT_TRUE(c.tls_certificate.empty());
  EXPECT_TRUE(c.tls_private_key.empty());
  EXPECT_FALSE(c.tls_verify_client);
  EXPECT_TRUE(c.tls_client_ca.empty());
  EXPECT_EQ(c.tls_min_version, "1.2");
  EXPECT_EQ(c.tls_expiry_warning_days, 30u);
  EXPECT_EQ(c.t1, milliseconds(500));
  EXPECT_EQ(c.t2, milliseconds(4000));
  EXPECT_EQ(c.t4, milliseconds(5000));
  EXPECT_EQ(c.commit_window, milliseconds(5));
  EXPECT_EQ(c.call_record_window, milliseconds(100));
  EXPECT_EQ(c.source, "(built-in defaults)");
}

TEST(ConfigDefaults, ListenOnAllAddressesWithIpv6Optional) {
  std::vector<Listen> expected = {
      {Transport::kUdp, "0.0.0.0", 5060, false}, {Transport::kTcp, "0.0.0.0", 5060, false},
      {Transport::kTls, "0.0.0.0", 5061, false}, {Transport::kUdp, "::", 5060, true},
      {Transport::kTcp, "::", 5060, true},       {Transport::kTls, "::", 5061, true},
  };
  EXPECT_EQ(defaults().listen, expected);
}

TEST(ConfigDefaults, EmptyFileGivesDefaults) {
  Config c = load_ok("# nothing set\n");
  Config d = defaults();
  d.source = "test.toml";
  EXPECT_EQ(c, d);
}

TEST(ConfigDefaults, EmptySectionsGiveDefaults) {
  Config c = load_ok("[server]\n[limits]\n[connections]\n[tls]\n[timers]\n");
  Config d = defaults();
  d.source = "test.toml";
  EXPECT_EQ(c, d);
}

TEST(ConfigTransport, Names) {
  EXPECT_EQ(to_string(Transport::kUdp), "udp");
  EXPECT_EQ(to_string(Transport::kTcp), "tcp");
  EXPECT_EQ(to_string(Transport::kTls), "tls");
}

TEST(ConfigParse, EveryKey) {
  Config c = load_ok(R"(
[server]
domain = "sip.example.com"
data_dir = "/var/lib/sipwarden"
workers = 4
log_level = "debug"
shutdown_grace_ms = 2500

[[listen]]
transport = "udp"
address = "192.0.2.10"
port = 5070

[limits]
max_message_bytes = 131072
max_headers = 64
max_header_line = 4096
max_uri_length = 1024

[connections]
max_connections = 500
max_connections_per_source = 8
idle_timeout_s = 120
tls_handshake_timeout_s = 5
max_buffered_bytes = 262144

[tls]
certificate = "/etc/sipwarden/cert.pem"
private_key = "/etc/sipwarden/key.pem"
verify_client = true
client_ca = "/etc/sipwarden/trunks-ca.pem"
min_version = "1.3"
expiry_warning_days = 14

[store]
commit_window_ms = 10
call_record_window_ms = 0

[timers]
t1_ms = 250
t2_ms = 2000
t4_ms = 3000
)");
  EXPECT_EQ(c.domain, "sip.example.com");
  EXPECT_EQ(c.data_dir, "/var/lib/sipwarden");
  EXPECT_EQ(c.workers, 4u);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.shutdown_grace, milliseconds(2500));
  ASSERT_EQ(c.listen.size(), 1u);
  EXPECT_EQ(c.listen[0], (Listen{Transport::kUdp, "192.0.2.10", 5070, false}));
  EXPECT_EQ(c.max_message_bytes, 131072u);
  EXPECT_EQ(c.max_headers, 64u);
  EXPECT_EQ(c.max_header_line, 4096u);
  EXPECT_EQ(c.max_uri_length, 1024u);
  EXPECT_EQ(c.max_connections, 500u);
  EXPECT_EQ(c.max_connections_per_source, 8u);
  EXPECT_EQ(c.idle_timeout, seconds(120));
  EXPECT_EQ(c.tls_handshake_timeout, seconds(5));
  EXPECT_EQ(c.max_buffered_bytes, 262144u);
  EXPECT_EQ(c.tls_certificate, "/etc/sipwarden/cert.pem");
  EXPECT_EQ(c.tls_private_key, "/etc/sipwarden/key.pem");
  EXPECT_TRUE(c.tls_verify_client);
  EXPECT_EQ(c.tls_client_ca, "/etc/sipwarden/trunks-ca.pem");
  EXPECT_EQ(c.tls_min_version, "1.3");
  EXPECT_EQ(c.tls_expiry_warning_days, 14u);
  EXPECT_EQ(c.t1, milliseconds(250));
  EXPECT_EQ(c.t2, milliseconds(2000));
  EXPECT_EQ(c.t4, milliseconds(3000));
  EXPECT_EQ(c.commit_window, milliseconds(10));
  EXPECT_EQ(c.call_record_window, milliseconds(0));
  EXPECT_EQ(c.source, "test.toml");
}

TEST(ConfigParse, UnsetKeysKeepTheirDefaults) {
  Config c = load_ok("[server]\nworkers = 2\n");
  Config d = defaults();
  EXPECT_EQ(c.workers, 2u);
  EXPECT_EQ(c.domain, d.domain);
  EXPECT_EQ(c.listen, d.listen);
  EXPECT_EQ(c.max_headers, d.max_headers);
  EXPECT_EQ(c.t1, d.t1);
}

TEST(ConfigParse, DomainMayBeAnIpAddress) {
  EXPECT_EQ(load_ok("server.domain = \"192.0.2.1\"").domain, "192.0.2.1");
  EXPECT_EQ(load_ok("server.domain = \"2001:db8::1\"").domain, "2001:db8::1");
  EXPECT_EQ(load_ok("server.domain = \"pbx\"").domain, "pbx");
  EXPECT_EQ(load_ok("server.domain = \"a-1.B2.example\"").domain, "a-1.B2.example");
}

TEST(ConfigParse, RelativePathsAreKeptAsWritten) {
  Config c = load_ok(R"(
server.data_dir = "state/sip"
tls.certificate = "certs/server.pem"
tls.private_key = "./certs/server.key"
)");
  EXPECT_EQ(c.data_dir, "state/sip");
  EXPECT_EQ(c.tls_certificate, "certs/server.pem");
  EXPECT_EQ(c.tls_private_key, "./certs/server.key");
}

TEST(ConfigParse, BoundsAreInclusive) {
  Config lo = load_ok(R"(
limits.max_message_bytes = 1024
limits.max_headers = 8
limits.max_header_line = 256
limits.max_uri_length = 64
connections.max_connections = 1
connections.max_connections_per_source = 1
connections.idle_timeout_s = 1
connections.tls_handshake_timeout_s = 1
connections.max_buffered_bytes = 1024
tls.expiry_warning_days = 0
timers.t1_ms = 50
timers.t2_ms = 50
timers.t4_ms = 50
server.workers = 0
server.shutdown_grace_ms = 0
store.commit_window_ms = 0
store.call_record_window_ms = 0
)");
  EXPECT_EQ(lo.max_buffered_bytes, 1024u);
  EXPECT_EQ(lo.commit_window, milliseconds(0));
  EXPECT_EQ(lo.t2, milliseconds(50));
  Config hi = load_ok(R"(
limits.max_message_bytes = 1048576
limits.max_headers = 1024
limits.max_header_line = 65535
limits.max_uri_length = 65535
connections.max_connections = 1000000
connections.max_connections_per_source = 100000
connections.idle_timeout_s = 86400
connections.tls_handshake_timeout_s = 300
connections.max_buffered_bytes = 16777216
tls.expiry_warning_days = 365
timers.t1_ms = 10000
timers.t2_ms = 60000
timers.t4_ms = 60000
server.workers = 1024
server.shutdown_grace_ms = 600000
store.commit_window_ms = 100
store.call_record_window_ms = 10000
)");
  EXPECT_EQ(hi.commit_window, milliseconds(100));
  EXPECT_EQ(hi.call_record_window, milliseconds(10000));
  EXPECT_EQ(hi.max_message_bytes, 1048576u);
  EXPECT_EQ(hi.max_buffered_bytes, 16777216u);
}

TEST(ConfigParse, UnsetBufferFollowsARaisedMessageLimit) {
  EXPECT_EQ(load_ok("limits.max_message_bytes = 1048576").max_buffered_bytes, 1048576u + 4096u);
  // A lowered message limit leaves the default buffer alone.
  EXPECT_EQ(load_ok("limits.max_message_bytes = 4096").max_buffered_bytes, 69632u);
}

TEST(ConfigListen, ReplacesTheDefaultsEntirely) {
  Config c = load_ok(R"(
[[listen]]
transport = "tls"
address = "203.0.113.5"

[[listen]]
transport = "tcp"
address = "127.0.0.1"
)");
  std::vector<Listen> expected = {{Transport::kTls, "203.0.113.5", 5061, false},
                                  {Transport::kTcp, "127.0.0.1", 5060, false}};
  EXPECT_EQ(c.listen, expected);
}

TEST(ConfigListen, PortDefaultsByTransport) {
  Config c = load_ok(R"(
[[listen]]
transport = "udp"
address = "0.0.0.0"
[[listen]]
transport = "tcp"
address = "0.0.0.0"
[[listen]]
transport = "tls"
address = "0.0.0.0"
)");
  ASSERT_EQ(c.listen.size(), 3u);
  EXPECT_EQ(c.listen[0].port, 5060);
  EXPECT_EQ(c.listen[1].port, 5060);
  EXPECT_EQ(c.listen[2].port, 5061);
}

TEST(ConfigListen, Ipv6Addresses) {
  Config c = load_ok(R"(
[[listen]]
transport = "udp"
address = "::"
[[listen]]
transport = "tls"
address = "2001:db8::10"
port = 5062
optional = true
[[listen]]
transport = "tcp"
address = "::1"
)");
  std::vector<Listen> expected = {{Transport::kUdp, "::", 5060, false},
                                  {Transport::kTls, "2001:db8::10", 5062, true},
                                  {Transport::kTcp, "::1", 5060, false}};
  EXPECT_EQ(c.listen, expected);
}

TEST(ConfigListen, InlineArrayIsAccepted) {
  Config c = load_ok(R"(listen = [ { transport = "udp", address = "10.0.0.1", port = 5080 } ])");
  EXPECT_EQ(c.listen, (std::vector<Listen>{{Transport::kUdp, "10.0.0.1", 5080, false}}));
}

TEST(ConfigListen, SamePortOnDifferentTransportsOrFamilies) {
  // UDP and TCP share a number, not a socket; IPv4 and IPv6 wildcards are separate sockets.
  Config c = load_ok(R"(
[[listen]]
transport = "udp"
address = "0.0.0.0"
[[listen]]
transport = "tcp"
address = "0.0.0.0"
[[listen]]
transport = "udp"
address = "0.0.0.0"
port = 5061
[[listen]]
transport = "tls"
address = "0.0.0.0"
optional = true
)");
  EXPECT_EQ(c.listen.size(), 4u);
  Config v6 = load_ok(R"(
[[listen]]
transport = "tcp"
address = "0.0.0.0"
[[listen]]
transport = "tls"
address = "::"
port = 5060
)");
  EXPECT_EQ(v6.listen.size(), 2u);
}

struct ErrorCase {
  const char* name;
  const char* toml;
  const char* expected;  // the whole message
};

class ConfigErrors : public testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrors, NameTheKeyAndReason) {
  EXPECT_EQ(load_error(GetParam().toml), GetParam().expected);
}

const ErrorCase kErrorCases[] = {
    // Unknown keys and sections.
    {"unknown_key", "[server]\nwrokers = 4\n", "test.toml: server.wrokers: unknown key"},
    {"unknown_section", "[servre]\nworkers = 4\n", "test.toml: servre: unknown section"},
    {"unknown_top_level_key", "workers = 4\n", "test.toml: workers: unknown key"},
    {"unknown_nested_table", "[server.extra]\na = 1\n", "test.toml: server.extra: unknown key"},
    {"unknown_listen_key", "[[listen]]\ntransport = \"udp\"\naddress = \"::\"\nprot = 5060\n",
     "test.toml: listen[0].prot: unknown key"},
    {"section_not_table", "server = 1\n", "test.toml: server: must be a table (got integer)"},
    // Wrong types.
    {"string_for_integer", "[limits]\nmax_headers = \"64\"\n",
     "test.toml: limits.max_headers: must be an integer (got string)"},
    {"float_for_integer", "[timers]\nt1_ms = 500.0\n",
     "test.toml: timers.t1_ms: must be an integer (got float)"},
    {"integer_for_string", "[server]\ndomain = 42\n",
     "test.toml: server.domain: must be a string (got integer)"},
    {"string_for_boolean", "[tls]\nverify_client = \"yes\"\n",
     "test.toml: tls.verify_client: must be a boolean (got string)"},
    {"float_for_version", "[tls]\nmin_version = 1.3\n",
     "test.toml: tls.min_version: must be a string (got float)"},
    {"array_for_integer", "[server]\nworkers = [1]\n",
     "test.toml: server.workers: must be an integer (got array)"},
    {"date_for_string", "[server]\ndata_dir = 2024-01-01\n",
     "test.toml: server.data_dir: must be a string (got date)"},
    // [server]
    {"domain_invalid", "[server]\ndomain = \"bad_name.example\"\n",
     "test.toml: server.domain: must be a host name or an IP address (got \"bad_name.example\")"},
    {"domain_empty", "[server]\ndomain = \"\"\n",
     "test.toml: server.domain: must be a host name or an IP address (got \"\")"},
    {"domain_bad_ipv4", "[server]\ndomain = \"10.0.0.256\"\n",
     "test.toml: server.domain: must be a host name or an IP address (got \"10.0.0.256\")"},
    {"domain_hyphen", "[server]\ndomain = \"-pbx.example\"\n",
     "test.toml: server.domain: must be a host name or an IP address (got \"-pbx.example\")"},
    {"data_dir_empty", "[server]\ndata_dir = \"\"\n",
     "test.toml: server.data_dir: must not be empty"},
    {"workers_negative", "[server]\nworkers = -1\n",
     "test.toml: server.workers: must be between 0 and 1024 (got -1)"},
    {"workers_high", "[server]\nworkers = 5000\n",
     "test.toml: server.workers: must be between 0 and 1024 (got 5000)"},
    {"log_level", "[server]\nlog_level = \"verbose\"\n",
     "test.toml: server.log_level: must be one of trace, debug, info, warn, error (got "
     "\"verbose\")"},
    {"shutdown_grace", "[server]\nshutdown_grace_ms = 600001\n",
     "test.toml: server.shutdown_grace_ms: must be between 0 and 600000 (got 600001)"},
    // [[listen]]
    {"listen_transport", "[[listen]]\ntransport = \"sctp\"\naddress = \"::\"\n",
     "test.toml: listen[0].transport: must be one of udp, tcp, tls (got \"sctp\")"},
    {"listen_transport_missing", "[[listen]]\naddress = \"::\"\n",
     "test.toml: listen[0].transport: required (one of udp, tcp, tls)"},
    {"listen_address_missing", "[[listen]]\ntransport = \"udp\"\n",
     "test.toml: listen[0].address: required (an IPv4 or IPv6 address, such as \"0.0.0.0\" or "
     "\"::\")"},
    {"listen_address_name",
     "[[listen]]\ntransport = \"udp\"\naddress = \"0.0.0.0\"\n"
     "[[listen]]\ntransport = \"udp\"\naddress = \"localhost\"\n",
     "test.toml: listen[1].address: must be an IPv4 or IPv6 address without brackets, such as "
     "\"0.0.0.0\" or \"::\" (got \"localhost\")"},
    {"listen_address_brackets", "[[listen]]\ntransport = \"udp\"\naddress = \"[::1]\"\n",
     "test.toml: listen[0].address: must be an IPv4 or IPv6 address without brackets, such as "
     "\"0.0.0.0\" or \"::\" (got \"[::1]\")"},
    {"listen_port_zero", "[[listen]]\ntransport = \"udp\"\naddress = \"::\"\nport = 0\n",
     "test.toml: listen[0].port: must be between 1 and 65535 (got 0)"},
    {"listen_port_high", "[[listen]]\ntransport = \"udp\"\naddress = \"::\"\nport = 65536\n",
     "test.toml: listen[0].port: must be between 1 and 65535 (got 65536)"},
    {"listen_optional_type", "[[listen]]\ntransport = \"udp\"\naddress = \"::\"\noptional = 1\n",
     "test.toml: listen[0].optional: must be a boolean (got integer)"},
    {"listen_not_array", "[listen]\ntransport = \"udp\"\n",
     "test.toml: listen: must be an array of tables, written [[listen]] (got table)"},
    {"listen_empty", "listen = []\n", "test.toml: listen: must name at least one listener"},
    {"listen_entry_not_table", "listen = [5060]\n",
     "test.toml: listen[0]: must be a table (got integer)"},
    {"listen_duplicate",
     "[[listen]]\ntransport = \"udp\"\naddress = \"0.0.0.0\"\n"
     "[[listen]]\ntransport = \"udp\"\naddress = \"0.0.0.0\"\nport = 5060\n",
     "test.toml: listen[1]: udp 0.0.0.0:5060 is already configured by listen[0]"},
    {"listen_duplicate_ipv6_spelling",
     "[[listen]]\ntransport = \"tcp\"\naddress = \"::\"\n"
     "[[listen]]\ntransport = \"tcp\"\naddress = \"0::0\"\n",
     "test.toml: listen[1]: tcp [0::0]:5060 is already configured by listen[0]"},
    {"listen_tcp_tls_same_port",
     "[[listen]]\ntransport = \"tcp\"\naddress = \"10.0.0.1\"\nport = 5060\n"
     "[[listen]]\ntransport = \"tls\"\naddress = \"10.0.0.1\"\nport = 5060\n",
     "test.toml: listen[1]: tls 10.0.0.1:5060 and tcp 10.0.0.1:5060 (listen[0]) cannot share a "
     "TCP port"},
    {"listen_tcp_tls_wildcard_overlap",
     "[[listen]]\ntransport = \"tls\"\naddress = \"::\"\nport = 5060\n"
     "[[listen]]\ntransport = \"tcp\"\naddress = \"2001:db8::1\"\n",
     "test.toml: listen[1]: tcp [2001:db8::1]:5060 and tls [::]:5060 (listen[0]) cannot share a "
     "TCP port"},
    // [limits]
    {"max_message_bytes_low", "[limits]\nmax_message_bytes = 1023\n",
     "test.toml: limits.max_message_bytes: must be between 1024 and 1048576 (got 1023)"},
    {"max_message_bytes_high", "[limits]\nmax_message_bytes = 1048577\n",
     "test.toml: limits.max_message_bytes: must be between 1024 and 1048576 (got 1048577)"},
    {"max_headers", "[limits]\nmax_headers = 0\n",
     "test.toml: limits.max_headers: must be between 8 and 1024 (got 0)"},
    {"max_header_line", "[limits]\nmax_header_line = 255\n",
     "test.toml: limits.max_header_line: must be between 256 and 65535 (got 255)"},
    {"max_uri_length", "[limits]\nmax_uri_length = 65536\n",
     "test.toml: limits.max_uri_length: must be between 64 and 65535 (got 65536)"},
    // [connections]
    {"max_connections", "[connections]\nmax_connections = 0\n",
     "test.toml: connections.max_connections: must be between 1 and 1000000 (got 0)"},
    {"max_connections_per_source", "[connections]\nmax_connections_per_source = 100001\n",
     "test.toml: connections.max_connections_per_source: must be between 1 and 100000 (got "
     "100001)"},
    {"idle_timeout", "[connections]\nidle_timeout_s = 86401\n",
     "test.toml: connections.idle_timeout_s: must be between 1 and 86400 (got 86401)"},
    {"tls_handshake_timeout", "[connections]\ntls_handshake_timeout_s = 0\n",
     "test.toml: connections.tls_handshake_timeout_s: must be between 1 and 300 (got 0)"},
    {"max_buffered_below_message", "[connections]\nmax_buffered_bytes = 60000\n",
     "test.toml: connections.max_buffered_bytes: must be between 65535 "
     "(limits.max_message_bytes) and 16777216 (got 60000)"},
    {"max_buffered_high", "[connections]\nmax_buffered_bytes = 16777217\n",
     "test.toml: connections.max_buffered_bytes: must be between 65535 "
     "(limits.max_message_bytes) and 16777216 (got 16777217)"},
    {"max_buffered_follows_message",
     "[limits]\nmax_message_bytes = 200000\n[connections]\nmax_buffered_bytes = 100000\n",
     "test.toml: connections.max_buffered_bytes: must be between 200000 "
     "(limits.max_message_bytes) and 16777216 (got 100000)"},
    // [tls]
    {"tls_certificate_without_key", "[tls]\ncertificate = \"cert.pem\"\n",
     "test.toml: tls.private_key: required when tls.certificate is set"},
    {"tls_key_without_certificate", "[tls]\nprivate_key = \"key.pem\"\n",
     "test.toml: tls.certificate: required when tls.private_key is set"},
    {"tls_verify_without_ca", "[tls]\nverify_client = true\n",
     "test.toml: tls.client_ca: required when tls.verify_client is true"},
    {"tls_min_version", "[tls]\nmin_version = \"1.1\"\n",
     "test.toml: tls.min_version: must be one of 1.2, 1.3 (got \"1.1\")"},
    {"tls_expiry_warning_days", "[tls]\nexpiry_warning_days = 366\n",
     "test.toml: tls.expiry_warning_days: must be between 0 and 365 (got 366)"},
    // [timers]
    {"t1_low", "[timers]\nt1_ms = 49\n",
     "test.toml: timers.t1_ms: must be between 50 and 10000 (got 49)"},
    {"t1_high", "[timers]\nt1_ms = 10001\n",
     "test.toml: timers.t1_ms: must be between 50 and 10000 (got 10001)"},
    {"t2_below_t1", "[timers]\nt1_ms = 1000\nt2_ms = 999\n",
     "test.toml: timers.t2_ms: must be between 1000 (timers.t1_ms) and 60000 (got 999)"},
    {"t2_high", "[timers]\nt2_ms = 60001\n",
     "test.toml: timers.t2_ms: must be between 500 (timers.t1_ms) and 60000 (got 60001)"},
    {"t4_below_t1", "[timers]\nt4_ms = 100\n",
     "test.toml: timers.t4_ms: must be between 500 (timers.t1_ms) and 60000 (got 100)"},
    {"commit_window_high", "[store]\ncommit_window_ms = 101\n",
     "test.toml: store.commit_window_ms: must be between 0 and 100 (got 101)"},
    {"commit_window_negative", "[store]\ncommit_window_ms = -1\n",
     "test.toml: store.commit_window_ms: must be between 0 and 100 (got -1)"},
    {"commit_window_string", "[store]\ncommit_window_ms = \"5ms\"\n",
     "test.toml: store.commit_window_ms: must be an integer (got string)"},
    {"call_record_window_high", "[store]\ncall_record_window_ms = 10001\n",
     "test.toml: store.call_record_window_ms: must be between 0 and 10000 (got 10001)"},
    {"store_unknown_key", "[store]\nsynchronous = \"off\"\n",
     "test.toml: store.synchronous: unknown key"},
    {"t4_high", "[timers]\nt4_ms = 70000\n",
     "test.toml: timers.t4_ms: must be between 500 (timers.t1_ms) and 60000 (got 70000)"},
    {"t1_above_default_t2", "[timers]\nt1_ms = 4500\n",
     "test.toml: timers.t2_ms: must be set to at least timers.t1_ms (4500); the default 4000 is "
     "lower"},
    // [calls]
    {"calls_not_table", "calls = 1\n", "test.toml: calls: must be a table (got integer)"},
    {"calls_unknown_key", "[calls]\nmax_calls = 3\n", "test.toml: calls.max_calls: unknown key"},
    {"calls_allowed_not_list", "[calls]\nallowed_destinations = \"local\"\n",
     "test.toml: calls.allowed_destinations: must be a list of strings (got string)"},
    {"calls_allowed_item_not_string", "[calls]\nallowed_destinations = [\"local\", 5]\n",
     "test.toml: calls.allowed_destinations: must be a list of strings"},
    {"calls_allowed_bad_pattern", "[calls]\nallowed_destinations = [\"local\", \"9[2-\"]\n",
     "test.toml: calls.allowed_destinations[1]: unclosed ["},
    {"calls_denied_bad_patterns",
     "[calls]\ndenied_destinations = [\"+.\", \"00.\", \"9[\", \"X.X\", \"\"]\n",
     "test.toml: calls.denied_destinations[2]: unclosed [\n"
     "test.toml: calls.denied_destinations[3]: '.' must be the last character\n"
     "test.toml: calls.denied_destinations[4]: empty pattern"},
    {"calls_denied_local", "[calls]\ndenied_destinations = [\"local\"]\n",
     "test.toml: calls.denied_destinations[0]: \"local\" is only allowed in allowed_destinations"},
    {"calls_denied_empty_class", "[calls]\ndenied_destinations = [\"9[]\"]\n",
     "test.toml: calls.denied_destinations[0]: empty class []"},
    {"calls_allowed_bang_not_last", "[calls]\nallowed_destinations = [\"!1\"]\n",
     "test.toml: calls.allowed_destinations[0]: '!' must be the last character"},
    {"calls_max_concurrent_negative", "[calls]\nmax_concurrent_calls = -1\n",
     "test.toml: calls.max_concurrent_calls: must be between 0 and 10000 (got -1)"},
    {"calls_max_concurrent_high", "[calls]\nmax_concurrent_calls = 10001\n",
     "test.toml: calls.max_concurrent_calls: must be between 0 and 10000 (got 10001)"},
    {"calls_per_minute_high", "[calls]\nmax_calls_per_minute = 100001\n",
     "test.toml: calls.max_calls_per_minute: must be between 0 and 100000 (got 100001)"},
    {"calls_duration_high", "[calls]\nmax_call_duration_s = 604801\n",
     "test.toml: calls.max_call_duration_s: must be between 0 and 604800 (got 604801)"},
    {"calls_duration_negative", "[calls]\nmax_call_duration_s = -1\n",
     "test.toml: calls.max_call_duration_s: must be between 0 and 604800 (got -1)"},
    {"calls_require_srtp_type", "[calls]\nrequire_srtp = \"yes\"\n",
     "test.toml: calls.require_srtp: must be a boolean (got string)"},
    {"calls_ring_timeout_low", "[calls]\nring_timeout_s = 4\n",
     "test.toml: calls.ring_timeout_s: must be between 5 and 1800 (got 4)"},
    {"calls_ring_timeout_high", "[calls]\nring_timeout_s = 1801\n",
     "test.toml: calls.ring_timeout_s: must be between 5 and 1800 (got 1801)"},
    {"calls_record_route_host", "[calls]\nrecord_route_host = \"bad_host\"\n",
     "test.toml: calls.record_route_host: must be empty, a host name or an IP address (got "
     "\"bad_host\")"},
    {"calls_record_route_host_brackets", "[calls]\nrecord_route_host = \"[::1]\"\n",
     "test.toml: calls.record_route_host: must be empty, a host name or an IP address (got "
     "\"[::1]\")"},
    // [users.NAME]
    {"users_not_table", "users = 1\n", "test.toml: users: must be a table (got integer)"},
    {"users_bad_name", "[users.\"a b\"]\nmax_concurrent_calls = 1\n",
     "test.toml: users.\"a b\": not a user name (1 to 64 letters, digits, '.', '_', '+' or '-')"},
    {"users_name_too_long",
     "[users.a12345678901234567890123456789012345678901234567890123456789012345]\n",
     "test.toml: users.a12345678901234567890123456789012345678901234567890123456789012345: not a "
     "user name (1 to 64 letters, digits, '.', '_', '+' or '-')"},
    {"users_entry_not_table", "[users]\nalice = 5\n",
     "test.toml: users.alice: must be a table (got integer)"},
    {"users_ring_timeout_unknown", "[users.alice]\nring_timeout_s = 30\n",
     "test.toml: users.alice.ring_timeout_s: unknown key"},
    {"users_record_route_unknown", "[users.alice]\nrecord_route_host = \"a.example\"\n",
     "test.toml: users.alice.record_route_host: unknown key"},
    {"users_per_minute_negative", "[users.\"1000\"]\nmax_calls_per_minute = -5\n",
     "test.toml: users.1000.max_calls_per_minute: must be between 0 and 100000 (got -5)"},
    {"users_dotted_name_range", "[users.\"a.b\"]\nmax_concurrent_calls = 20000\n",
     "test.toml: users.\"a.b\".max_concurrent_calls: must be between 0 and 10000 (got 20000)"},
    {"users_duration_high", "[users.bob]\nmax_call_duration_s = 604801\n",
     "test.toml: users.bob.max_call_duration_s: must be between 0 and 604800 (got 604801)"},
    {"users_srtp_type", "[users.bob]\nrequire_srtp = 1\n",
     "test.toml: users.bob.require_srtp: must be a boolean (got integer)"},
    {"users_denied_pattern", "[users.bob]\ndenied_destinations = [\"+.\", \"[]\"]\n",
     "test.toml: users.bob.denied_destinations[1]: empty class []"},
    {"users_allowed_pattern", "[users.bob]\nallowed_destinations = [\"local\", \"9[\"]\n",
     "test.toml: users.bob.allowed_destinations[1]: unclosed ["},
    {"users_alias_bad", "[users.bob]\naliases = [\"ok\", \"not ok\"]\n",
     "test.toml: users.bob.aliases[1]: \"not ok\" is not a user name (1 to 64 letters, digits, "
     "'.', '_', '+' or '-')"},
    {"users_aliases_not_list", "[users.bob]\naliases = \"robert\"\n",
     "test.toml: users.bob.aliases: must be a list of strings (got string)"},
    {"users_network_bad", "[users.bob]\nallowed_networks = [\"10.0.0.0/33\"]\n",
     "test.toml: users.bob.allowed_networks[0]: \"10.0.0.0/33\" is not an address or CIDR "
     "network"},
    // [[trunk]]
    {"trunk_not_array", "[trunk]\nname = \"c\"\n",
     "test.toml: trunk: must be an array of tables, written [[trunk]] (got table)"},
    {"trunk_entry_not_table", "trunk = [1]\n",
     "test.toml: trunk[0]: must be a table (got integer)"},
    {"trunk_unknown_key", "trunk = [{ name = \"c\", host = \"192.0.2.1\", secret = \"x\" }]\n",
     "test.toml: trunk[0].secret: unknown key"},
    {"trunk_name_and_host_missing", "[[trunk]]\nport = 5060\n",
     "test.toml: trunk[0].name: required (1 to 32 letters, digits, '_' or '-')\n"
     "test.toml: trunk[0].host: required (a host name or an IP address)"},
    {"trunk_name_invalid", "trunk = [{ name = \"a b\", host = \"192.0.2.1\" }]\n",
     "test.toml: trunk[0].name: must be 1 to 32 letters, digits, '_' or '-' (got \"a b\")"},
    {"trunk_name_too_long",
     "trunk = [{ name = \"a23456789012345678901234567890123\", host = \"192.0.2.1\" }]\n",
     "test.toml: trunk[0].name: must be 1 to 32 letters, digits, '_' or '-' (got "
     "\"a23456789012345678901234567890123\")"},
    {"trunk_name_twice",
     "[[trunk]]\nname = \"carrier\"\nhost = \"192.0.2.1\"\n"
     "[[trunk]]\nname = \"carrier\"\nhost = \"192.0.2.2\"\n",
     "test.toml: trunk[1].name: \"carrier\" is used twice"},
    {"trunk_name_type", "trunk = [{ name = 5, host = \"192.0.2.1\" }]\n",
     "test.toml: trunk[0].name: must be a string (got integer)"},
    {"trunk_host_invalid", "trunk = [{ name = \"c\", host = \"bad_host\" }]\n",
     "test.toml: trunk[0].host: must be a host name or an IP address (got \"bad_host\")"},
    {"trunk_port_zero", "trunk = [{ name = \"c\", host = \"192.0.2.1\", port = 0 }]\n",
     "test.toml: trunk[0].port: must be between 1 and 65535 (got 0)"},
    {"trunk_port_high", "trunk = [{ name = \"c\", host = \"192.0.2.1\", port = 65536 }]\n",
     "test.toml: trunk[0].port: must be between 1 and 65535 (got 65536)"},
    {"trunk_transport", "trunk = [{ name = \"c\", host = \"192.0.2.1\", transport = \"ws\" }]\n",
     "test.toml: trunk[0].transport: must be one of udp, tcp, tls (got \"ws\")"},
    {"trunk_username_without_password",
     "trunk = [{ name = \"c\", host = \"192.0.2.1\", username = \"u\" }]\n",
     "test.toml: trunk[0].password: required when trunk[0].username is set"},
    {"trunk_password_without_username",
     "trunk = [{ name = \"c\", host = \"192.0.2.1\", password = \"p\" }]\n",
     "test.toml: trunk[0].username: required when trunk[0].password is set"},
    {"trunk_username_quote",
     "trunk = [{ name = \"c\", host = \"192.0.2.1\", username = \"a\\\"b\", password = \"p\" }]\n",
     "test.toml: trunk[0].username: must not contain '\"', '\\' or control characters"},
    {"trunk_realm_control", "trunk = [{ name = \"c\", host = \"192.0.2.1\", realm = \"a\\nb\" }]\n",
     "test.toml: trunk[0].realm: must not contain '\"', '\\' or control characters"},
    {"trunk_outbound_local",
     "trunk = [{ name = \"c\", host = \"192.0.2.1\", outbound = [\"local\"] }]\n",
     "test.toml: trunk[0].outbound[0]: \"local\" is only allowed in allowed_destinations"},
    {"trunk_outbound_pattern",
     "trunk = [{ name = \"c\", host = \"192.0.2.1\", outbound = [\"+.\", \"!9\"] }]\n",
     "test.toml: trunk[0].outbound[1]: '!' must be the last character"},
    {"trunk_strip_high", "trunk = [{ name = \"c\", host = \"192.0.2.1\", strip = 33 }]\n",
     "test.toml: trunk[0].strip: must be between 0 and 32 (got 33)"},
    {"trunk_strip_negative", "trunk = [{ name = \"c\", host = \"192.0.2.1\", strip = -1 }]\n",
     "test.toml: trunk[0].strip: must be between 0 and 32 (got -1)"},
    {"trunk_prefix", "trunk = [{ name = \"c\", host = \"192.0.2.1\", prefix = \"9a\" }]\n",
     "test.toml: trunk[0].prefix: must contain only digits, '+', '*' and '#' (got \"9a\")"},
    {"trunk_inbound_sources",
     "trunk = [{ name = \"c\", host = \"192.0.2.1\", inbound_sources = [\"carrier.example\"] }]\n",
     "test.toml: trunk[0].inbound_sources[0]: \"carrier.example\" is not an address or CIDR "
     "network"},
    {"trunk_dids_not_table", "trunk = [{ name = \"c\", host = \"192.0.2.1\", dids = [\"1\"] }]\n",
     "test.toml: trunk[0].dids: must be a table of \"number\" = \"user\" (got array)"},
    {"trunk_dids_bad_number",
     "trunk = [{ name = \"c\", host = \"192.0.2.1\", dids = { \"abc\" = \"1000\" } }]\n",
     "test.toml: trunk[0].dids.abc: not a number (digits, '+', '*' and '#')"},
    {"trunk_dids_value_type",
     "trunk = [{ name = \"c\", host = \"192.0.2.1\", dids = { \"1555\" = 1000 } }]\n",
     "test.toml: trunk[0].dids.1555: must be a string (got integer)"},
    {"trunk_dids_bad_user",
     "trunk = [{ name = \"c\", host = \"192.0.2.1\", dids = { \"+1555\" = \"a b\" } }]\n",
     "test.toml: trunk[0].dids.\"+1555\": \"a b\" is not a user name (1 to 64 letters, digits, "
     "'.', '_', '+' or '-')"},
    {"trunk_trusted_type", "trunk = [{ name = \"c\", host = \"192.0.2.1\", trusted = \"no\" }]\n",
     "test.toml: trunk[0].trusted: must be a boolean (got string)"},
    {"trunk_second_entry_named",
     "[[trunk]]\nname = \"a\"\nhost = \"192.0.2.1\"\n"
     "[[trunk]]\nname = \"b\"\nhost = \"192.0.2.2\"\nport = 0\n",
     "test.toml: trunk[1].port: must be between 1 and 65535 (got 0)"},
};

INSTANTIATE_TEST_SUITE_P(Table, ConfigErrors, testing::ValuesIn(kErrorCases),
                         [](const testing::TestParamInfo<ErrorCase>& param) {
                           return std::string(param.param.name);
                         });

TEST(ConfigErrorsAll, EveryProblemIsReportedOnItsOwnLine) {
  std::string e = load_error(R"(
[server]
wrokers = 4
log_level = "loud"
[limits]
max_headers = "many"
[bogus]
)");
  EXPECT_EQ(e,
            "test.toml: bogus: unknown section\n"
            "test.toml: server.wrokers: unknown key\n"
            "test.toml: server.log_level: must be one of trace, debug, info, warn, error (got "
            "\"loud\")\n"
            "test.toml: limits.max_headers: must be an integer (got string)");
}

TEST(ConfigErrorsAll, InvalidT1SuppressesDependentTimerErrors) {
  EXPECT_EQ(load_error("[timers]\nt1_ms = 1\nt2_ms = 2\n"),
            "test.toml: timers.t1_ms: must be between 50 and 10000 (got 1)");
}

TEST(ConfigSyntax, ErrorReportsLineAndColumn) {
  std::string e = load_error("[server]\nworkers = 4\nlog_level = \"info\n");
  EXPECT_EQ(e.rfind("test.toml:3:", 0), 0u) << e;
}

TEST(ConfigSyntax, DuplicateKeyIsASyntaxError) {
  std::string e = load_error("[server]\nworkers = 4\nworkers = 5\n");
  EXPECT_EQ(e.rfind("test.toml:3:", 0), 0u) << e;
}

TEST(ConfigSyntax, ErrorsNeverThrow) {
  const char* inputs[] = {"[", "= 1", "a = ", "[[listen]]\n[listen]\n", "\xff\xfe"};
  for (const char* text : inputs) {
    EXPECT_NO_THROW({
      base::Result<Config> r = load_string(text, "fuzz");
      EXPECT_FALSE(r.ok());
    });
  }
  EXPECT_NO_THROW({
    base::Result<Config> r = load_string(std::string_view("a = \"\0\"", 8), "nul");
    EXPECT_FALSE(r.ok());
  });
}

class ConfigFile : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sipwarden-config-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path write(const std::string& name, const std::string& text) {
    std::filesystem::path p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigFile, LoadsAndRecordsTheSource) {
  std::filesystem::path p = write("ok.toml", "[server]\nworkers = 3\n");
  base::Result<Config> r = load_file(p);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->workers, 3u);
  EXPECT_EQ(r->source, p.string());
}

TEST_F(ConfigFile, ErrorsStartWithThePath) {
  std::filesystem::path p = write("bad.toml", "[limits]\nmax_headers = 0\n");
  base::Result<Config> r = load_file(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), p.string() + ": limits.max_headers: must be between 8 and 1024 (got 0)");
}

TEST_F(ConfigFile, SyntaxErrorNamesFileLineAndColumn) {
  std::filesystem::path p = write("syntax.toml", "# ok\n[server]\nworkers = = 4\n");
  base::Result<Config> r = load_file(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().rfind(p.string() + ":3:", 0), 0u) << r.error();
}

TEST_F(ConfigFile, MissingFile) {
  std::filesystem::path p = dir_ / "missing.toml";
  base::Result<Config> r = load_file(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), p.string() + ": cannot read: No such file or directory");
}

TEST_F(ConfigFile, DirectoryIsUnreadable) {
  base::Result<Config> r = load_file(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), dir_.string() + ": cannot read: Is a directory");
}

TEST(ConfigToToml, StartsWithTheSourceComment) {
  std::string text = to_toml(defaults());
  EXPECT_EQ(text.rfind("# effective sipwarden settings (source: (built-in defaults))\n", 0), 0u)
      << text;
}

TEST(ConfigToToml, PrintsEveryKey) {
  std::string text = to_toml(defaults());
  for (const char* key : {"[server]",
                          "domain = ",
                          "data_dir = ",
                          "workers = ",
                          "log_level = ",
                          "shutdown_grace_ms = ",
                          "[[listen]]",
                          "transport = ",
                          "address = ",
                          "port = ",
                          "optional = ",
                          "[limits]",
                          "max_message_bytes = ",
                          "max_headers = ",
                          "max_header_line = ",
                          "max_uri_length = ",
                          "[connections]",
                          "max_connections = ",
                          "max_connections_per_source = ",
                          "idle_timeout_s = ",
                          "tls_handshake_timeout_s = ",
                          "max_buffered_bytes = ",
                          "[tls]",
                          "certificate = ",
                          "private_key = ",
                          "verify_client = ",
                          "client_ca = ",
                          "min_version = ",
                          "expiry_warning_days = ",
                          "[store]",
                          "commit_window_ms = ",
                          "call_record_window_ms = ",
                          "[timers]",
                          "t1_ms = ",
                          "t2_ms = ",
                          "t4_ms = "}) {
    EXPECT_NE(text.find(key), std::string::npos) << key;
  }
}

void expect_round_trip(const Config& original) {
  std::string text = to_toml(original);
  base::Result<Config> reloaded = load_string(text, "round-trip");
  ASSERT_TRUE(reloaded.ok()) << reloaded.error() << "\n" << text;
  Config expected = original;
  expected.source = "round-trip";
  EXPECT_EQ(*reloaded, expected) << text;
  EXPECT_EQ(to_toml(*reloaded), to_toml(expected));
}

TEST(ConfigToToml, DefaultsRoundTrip) {
  expect_round_trip(defaults());
}

TEST(ConfigToToml, EverythingChangedRoundTrips) {
  Config c = defaults();
  c.domain = "2001:db8::5";
  c.data_dir = "rel/dir with \"quotes\" and \\ backslash";
  c.workers = 12;
  c.log_level = "trace";
  c.shutdown_grace = milliseconds(0);
  c.listen = {{Transport::kTls, "::1", 5071, true}, {Transport::kUdp, "127.0.0.1", 1, false}};
  c.max_message_bytes = 1048576;
  c.max_headers = 8;
  c.max_header_line = 65535;
  c.max_uri_length = 64;
  c.max_connections = 1;
  c.max_connections_per_source = 1;
  c.idle_timeout = seconds(86400);
  c.tls_handshake_timeout = seconds(300);
  c.max_buffered_bytes = 16777216;
  c.tls_certificate = "/etc/ssl/sipwarden chain.pem";
  c.tls_private_key = "key\tfile.pem";
  c.tls_verify_client = true;
  c.tls_client_ca = "ca/ünïcode.pem";
  c.tls_min_version = "1.3";
  c.tls_expiry_warning_days = 0;
  c.t1 = milliseconds(10000);
  c.t2 = milliseconds(60000);
  c.t4 = milliseconds(10000);
  c.commit_window = milliseconds(0);
  c.call_record_window = milliseconds(10000);
  c.source = "/etc/sipwarden/sipwarden.toml";
  expect_round_trip(c);
}

TEST(ConfigToToml, LoadedFileRoundTrips) {
  Config c = load_ok(R"(
server.domain = "pbx.example.org"
[[listen]]
transport = "tcp"
address = "192.0.2.1"
port = 15060
[tls]
certificate = "c.pem"
private_key = "k.pem"
)");
  expect_round_trip(c);
}

}  // namespace
}  // namespace config

namespace config {
namespace {

TEST(RegistrarAndAuthKeysTest, ParsedValidatedAndPrinted) {
  auto c = load_string(
      "[registrar]\nmin_expires = 120\nmax_expires = 7200\ndefault_expires = 600\nmax_contacts = 4\n"
      "[auth]\nalgorithms = [\"MD5\"]\nnonce_lifetime_s = 60\n"
      "[connections]\nmessage_timeout_s = 10\n");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->min_expires, 120u);
  EXPECT_EQ(c->max_expires, 7200u);
  EXPECT_EQ(c->default_expires, 600u);
  EXPECT_EQ(c->max_contacts, 4u);
  EXPECT_EQ(c->auth_algorithms, std::vector<std::string>{"MD5"});
  EXPECT_EQ(c->nonce_lifetime, std::chrono::seconds(60));
  EXPECT_EQ(c->message_timeout, std::chrono::seconds(10));
  auto again = load_string(to_toml(*c));
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again->auth_algorithms, c->auth_algorithms);
  EXPECT_EQ(again->max_contacts, 4u);

  for (const char* bad : {"[auth]\nalgorithms = []\n", "[auth]\nalgorithms = [\"SHA-1\"]\n",
                          "[auth]\nalgorithms = [\"MD5\", \"MD5\"]\n"}) {
    auto r = load_string(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().find("auth.algorithms"), std::string::npos) << r.error();
  }
  auto r = load_string("[registrar]\nmin_expires = 600\nmax_expires = 60\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("registrar.max_expires"), std::string::npos) << r.error();
  r = load_string("[registrar]\nmax_expires = 100\ndefault_expires = 200\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("registrar.default_expires"), std::string::npos) << r.error();
  r = load_string("[registrar]\nmax_contacts = 0\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("registrar.max_contacts"), std::string::npos);
}

}  // namespace
}  // namespace config

namespace config {
namespace {

using std::chrono::seconds;

Config load_calls_ok(std::string_view text) {
  base::Result<Config> r = load_string(text, "test.toml");
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : Config{};
}

TEST(CallsDefaults, CloseInternationalAndPremiumRate) {
  Config c = defaults();
  EXPECT_EQ(c.calls.allowed_destinations, (std::vector<std::string>{"local", "X."}));
  EXPECT_EQ(c.calls.denied_destinations,
            (std::vector<std::string>{"+.", "00.", "011.", "1900.", "1976.", "09.", "118."}));
  EXPECT_EQ(c.calls.max_concurrent_calls, 4u);
  EXPECT_EQ(c.calls.max_calls_per_minute, 20u);
  EXPECT_EQ(c.calls.max_call_duration, seconds(7200));
  EXPECT_FALSE(c.calls.require_srtp);
  EXPECT_EQ(c.ring_timeout, seconds(60));
  EXPECT_TRUE(c.record_route_host.empty());
  EXPECT_TRUE(c.users.empty());
  EXPECT_TRUE(c.trunks.empty());
}

TEST(CallsDefaults, EmptySectionsGiveDefaults) {
  Config c = load_calls_ok("trunk = []\n[calls]\n[users]\n");
  Config d = defaults();
  d.source = "test.toml";
  EXPECT_EQ(c, d);
}

TEST(CallsParse, EveryKey) {
  Config c = load_calls_ok(R"(
[calls]
allowed_destinations = ["local", "NXXXXXX", "1NXXNXXXXXX", "*XX"]
denied_destinations = ["1900.", "[2-4]11"]
max_concurrent_calls = 10
max_calls_per_minute = 60
max_call_duration_s = 0
require_srtp = true
ring_timeout_s = 45
record_route_host = "sip.example.com"
)");
  EXPECT_EQ(c.calls.allowed_destinations,
            (std::vector<std::string>{"local", "NXXXXXX", "1NXXNXXXXXX", "*XX"}));
  EXPECT_EQ(c.calls.denied_destinations, (std::vector<std::string>{"1900.", "[2-4]11"}));
  EXPECT_EQ(c.calls.max_concurrent_calls, 10u);
  EXPECT_EQ(c.calls.max_calls_per_minute, 60u);
  EXPECT_EQ(c.calls.max_call_duration, seconds(0));
  EXPECT_TRUE(c.calls.require_srtp);
  EXPECT_EQ(c.ring_timeout, seconds(45));
  EXPECT_EQ(c.record_route_host, "sip.example.com");
}

TEST(CallsParse, EmptyListsAreAllowed) {
  // A user who may call nothing; a policy that denies nothing.
  Config c = load_calls_ok("[calls]\nallowed_destinations = []\ndenied_destinations = []\n");
  EXPECT_TRUE(c.calls.allowed_destinations.empty());
  EXPECT_TRUE(c.calls.denied_destinations.empty());
}

TEST(CallsParse, BoundsAreInclusive) {
  Config lo = load_calls_ok(R"(
calls.max_concurrent_calls = 0
calls.max_calls_per_minute = 0
calls.max_call_duration_s = 0
calls.ring_timeout_s = 5
)");
  EXPECT_EQ(lo.calls.max_concurrent_calls, 0u);
  EXPECT_EQ(lo.ring_timeout, seconds(5));
  Config hi = load_calls_ok(R"(
calls.max_concurrent_calls = 10000
calls.max_calls_per_minute = 100000
calls.max_call_duration_s = 604800
calls.ring_timeout_s = 1800
)");
  EXPECT_EQ(hi.calls.max_concurrent_calls, 10000u);
  EXPECT_EQ(hi.calls.max_calls_per_minute, 100000u);
  EXPECT_EQ(hi.calls.max_call_duration, seconds(604800));
  EXPECT_EQ(hi.ring_timeout, seconds(1800));
}

TEST(CallsParse, RecordRouteHostMayBeAnIpAddressOrEmpty) {
  EXPECT_EQ(load_calls_ok("calls.record_route_host = \"192.0.2.10\"").record_route_host,
            "192.0.2.10");
  EXPECT_EQ(load_calls_ok("calls.record_route_host = \"2001:db8::10\"").record_route_host,
            "2001:db8::10");
  EXPECT_EQ(load_calls_ok("calls.record_route_host = \"\"").record_route_host, "");
}

TEST(UsersParse, OverrideOnlyTheKeysTheyName) {
  Config c = load_calls_ok(R"(
[calls]
max_concurrent_calls = 2
require_srtp = true

[users.alice]
max_concurrent_calls = 8
allowed_destinations = ["local", "+."]
denied_destinations = []
)");
  ASSERT_EQ(c.users.size(), 1u);
  const UserPolicy& alice = c.users[0];
  EXPECT_EQ(alice.name, "alice");
  EXPECT_EQ(alice.calls.max_concurrent_calls, 8u);
  EXPECT_EQ(alice.calls.allowed_destinations, (std::vector<std::string>{"local", "+."}));
  EXPECT_TRUE(alice.calls.denied_destinations.empty());
  // Not named: inherited from [calls], whether set there or defaulted.
  EXPECT_TRUE(alice.calls.require_srtp);
  EXPECT_EQ(alice.calls.max_calls_per_minute, 20u);
  EXPECT_EQ(alice.calls.max_call_duration, seconds(7200));
  // [calls] itself is untouched.
  EXPECT_EQ(c.calls.max_concurrent_calls, 2u);
  EXPECT_EQ(c.calls.allowed_destinations, defaults().calls.allowed_destinations);
}

TEST(UsersParse, InheritFromCallsWrittenAfterThem) {
  Config c = load_calls_ok(R"(
[users.bob]
max_calls_per_minute = 5

[calls]
max_call_duration_s = 600
)");
  ASSERT_EQ(c.users.size(), 1u);
  EXPECT_EQ(c.users[0].calls.max_calls_per_minute, 5u);
  EXPECT_EQ(c.users[0].calls.max_call_duration, seconds(600));
}

TEST(UsersParse, EveryKey) {
  Config c = load_calls_ok(R"(
[users."1000"]
allowed_destinations = ["local"]
denied_destinations = ["9."]
max_concurrent_calls = 1
max_calls_per_minute = 3
max_call_duration_s = 3600
require_srtp = true
aliases = ["alice", "alice.smith", "+15551230000"]
allowed_networks = ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]
)");
  ASSERT_EQ(c.users.size(), 1u);
  const UserPolicy& u = c.users[0];
  EXPECT_EQ(u.name, "1000");
  EXPECT_EQ(u.calls.allowed_destinations, std::vector<std::string>{"local"});
  EXPECT_EQ(u.calls.denied_destinations, std::vector<std::string>{"9."});
  EXPECT_EQ(u.calls.max_concurrent_calls, 1u);
  EXPECT_EQ(u.calls.max_calls_per_minute, 3u);
  EXPECT_EQ(u.calls.max_call_duration, seconds(3600));
  EXPECT_TRUE(u.calls.require_srtp);
  EXPECT_EQ(u.aliases, (std::vector<std::string>{"alice", "alice.smith", "+15551230000"}));
  EXPECT_EQ(u.allowed_networks,
            (std::vector<std::string>{"192.0.2.0/24", "2001:db8::/32", "198.51.100.7"}));
}

TEST(UsersParse, AUserWithNoKeysHasTheCallsPolicy) {
  Config c = load_calls_ok("[calls]\nmax_concurrent_calls = 7\n[users.carol]\n");
  ASSERT_EQ(c.users.size(), 1u);
  EXPECT_EQ(c.users[0].calls, c.calls);
  EXPECT_TRUE(c.users[0].aliases.empty());
  EXPECT_TRUE(c.users[0].allowed_networks.empty());
}

TEST(UsersParse, SortedByName) {
  Config c = load_calls_ok(R"(
[users.zed]
[users."1001"]
[users.alice]
[users."a.b+c_d-e"]
)");
  std::vector<std::string> names;
  for (const UserPolicy& u : c.users) names.push_back(u.name);
  EXPECT_EQ(names, (std::vector<std::string>{"1001", "a.b+c_d-e", "alice", "zed"}));
}

TEST(TrunksParse, Defaults) {
  Config c = load_calls_ok("[[trunk]]\nname = \"carrier\"\nhost = \"192.0.2.7\"\n");
  ASSERT_EQ(c.trunks.size(), 1u);
  const Trunk& t = c.trunks[0];
  EXPECT_EQ(t.name, "carrier");
  EXPECT_EQ(t.host, "192.0.2.7");
  EXPECT_EQ(t.port, 5060);
  EXPECT_EQ(t.transport, Transport::kUdp);
  EXPECT_TRUE(t.username.empty());
  EXPECT_TRUE(t.password.empty());
  EXPECT_TRUE(t.realm.empty());
  EXPECT_TRUE(t.outbound.empty());
  EXPECT_EQ(t.strip, 0u);
  EXPECT_TRUE(t.prefix.empty());
  // Left empty: the consumer defaults to the host's own address (a literal here).
  EXPECT_TRUE(t.inbound_sources.empty());
  EXPECT_TRUE(t.dids.empty());
  EXPECT_TRUE(t.trusted);
}

TEST(TrunksParse, TlsPortDefaultsTo5061) {
  Config c = load_calls_ok(
      "[[trunk]]\nname = \"secure\"\nhost = \"sip.carrier.example\"\ntransport = \"tls\"\n");
  ASSERT_EQ(c.trunks.size(), 1u);
  EXPECT_EQ(c.trunks[0].transport, Transport::kTls);
  EXPECT_EQ(c.trunks[0].port, 5061);
}

TEST(TrunksParse, EveryKey) {
  Config c = load_calls_ok(R"(
[[trunk]]
name = "carrier-1"
host = "sip.carrier.example"
port = 5080
transport = "tcp"
username = "acct42"
password = "s3cret \"quoted\""
realm = "carrier.example"
outbound = ["+.", "00.", "1NXXNXXXXXX"]
strip = 2
prefix = "+1"
inbound_sources = ["203.0.113.0/28", "2001:db8:5::1"]
dids = { "15551230001" = "alice", "15551230000" = "1000", "+442079460000" = "bob" }
trusted = false
)");
  ASSERT_EQ(c.trunks.size(), 1u);
  const Trunk& t = c.trunks[0];
  EXPECT_EQ(t.name, "carrier-1");
  EXPECT_EQ(t.host, "sip.carrier.example");
  EXPECT_EQ(t.port, 5080);
  EXPECT_EQ(t.transport, Transport::kTcp);
  EXPECT_EQ(t.username, "acct42");
  EXPECT_EQ(t.password, "s3cret \"quoted\"");
  EXPECT_EQ(t.realm, "carrier.example");
  EXPECT_EQ(t.outbound, (std::vector<std::string>{"+.", "00.", "1NXXNXXXXXX"}));
  EXPECT_EQ(t.strip, 2u);
  EXPECT_EQ(t.prefix, "+1");
  EXPECT_EQ(t.inbound_sources, (std::vector<std::string>{"203.0.113.0/28", "2001:db8:5::1"}));
  std::vector<std::pair<std::string, std::string>> dids = {
      {"+442079460000", "bob"}, {"15551230000", "1000"}, {"15551230001", "alice"}};
  EXPECT_EQ(t.dids, dids);  // sorted by number
  EXPECT_FALSE(t.trusted);
}

TEST(TrunksParse, KeptInFileOrder) {
  Config c = load_calls_ok(R"(
[[trunk]]
name = "b"
host = "192.0.2.2"
[[trunk]]
name = "a"
host = "2001:db8::1"
)");
  ASSERT_EQ(c.trunks.size(), 2u);
  EXPECT_EQ(c.trunks[0].name, "b");
  EXPECT_EQ(c.trunks[1].name, "a");
  EXPECT_EQ(c.trunks[1].host, "2001:db8::1");
}

TEST(CallsToToml, PrintsEveryKey) {
  Config c = defaults();
  c.users.push_back(UserPolicy{"alice", c.calls, {}, {}});
  Trunk trunk;
  trunk.name = "carrier";
  trunk.host = "192.0.2.7";
  c.trunks.push_back(trunk);
  std::string text = to_toml(c);
  for (const char* key : {"[calls]",
                          "allowed_destinations = ",
                          "denied_destinations = ",
                          "max_concurrent_calls = ",
                          "max_calls_per_minute = ",
                          "max_call_duration_s = ",
                          "require_srtp = ",
                          "ring_timeout_s = ",
                          "record_route_host = ",
                          "[users.\"alice\"]",
                          "aliases = ",
                          "allowed_networks = ",
                          "[[trunk]]",
                          "name = ",
                          "host = ",
                          "username = ",
                          "password = ",
                          "realm = ",
                          "outbound = ",
                          "strip = ",
                          "prefix = ",
                          "inbound_sources = ",
                          "dids = ",
                          "trusted = "}) {
    EXPECT_NE(text.find(key), std::string::npos) << key;
  }
}

TEST(CallsToToml, CallsUsersAndTrunksRoundTrip) {
  Config c = defaults();
  c.calls.allowed_destinations = {"local", "NXXXXXX", "[2-9]11"};
  c.calls.denied_destinations = {};
  c.calls.max_concurrent_calls = 0;
  c.calls.max_calls_per_minute = 100000;
  c.calls.max_call_duration = seconds(0);
  c.calls.require_srtp = true;
  c.ring_timeout = seconds(5);
  c.record_route_host = "2001:db8::5";
  UserPolicy alice{"alice", c.calls, {"alice.smith", "+15551230000"}, {"192.0.2.0/24"}};
  alice.calls.max_concurrent_calls = 3;
  alice.calls.allowed_destinations = {"local", "+."};
  UserPolicy n1000{"1000", c.calls, {}, {"2001:db8::/32", "198.51.100.7"}};
  n1000.calls.require_srtp = false;
  c.users = {n1000, UserPolicy{"a.b", c.calls, {}, {}}, alice};  // sorted by name
  Trunk carrier;
  carrier.name = "carrier";
  carrier.host = "sip.carrier.example";
  carrier.port = 5061;
  carrier.transport = Transport::kTls;
  carrier.username = "acct";
  carrier.password = "p\"a\\ss\tword";
  carrier.realm = "carrier.example";
  carrier.outbound = {"+.", "00."};
  carrier.strip = 2;
  carrier.prefix = "+*#0";
  carrier.inbound_sources = {"203.0.113.0/28"};
  carrier.dids = {{"+15551230000", "alice"}, {"15551230001", "1000"}};
  carrier.trusted = false;
  Trunk plain;
  plain.name = "pbx_2";
  plain.host = "10.1.2.3";
  c.trunks = {carrier, plain};
  expect_round_trip(c);
}

TEST(CallsToToml, LoadedUsersAndTrunksRoundTrip) {
  Config c = load_calls_ok(R"(
[calls]
max_concurrent_calls = 2
[users."a.b"]
max_call_duration_s = 60
aliases = ["ab"]
[[trunk]]
name = "t"
host = "192.0.2.9"
dids = { "100" = "a.b" }
)");
  expect_round_trip(c);
}

TEST(ShieldLists, ErrorsNameTheEntry) {
  base::Result<Config> r = load_string("[shield]\nallow = [\"10.0.0.0/8\", \"nope\"]\n", "t");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "t: shield.allow[1]: \"nope\" is not an address or CIDR network");
}

}  // namespace
}  // namespace config
