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
)");
  EXPECT_EQ(lo.max_buffered_bytes, 1024u);
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
)");
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
    {"t4_high", "[timers]\nt4_ms = 70000\n",
     "test.toml: timers.t4_ms: must be between 500 (timers.t1_ms) and 60000 (got 70000)"},
    {"t1_above_default_t2", "[timers]\nt1_ms = 4500\n",
     "test.toml: timers.t2_ms: must be set to at least timers.t1_ms (4500); the default 4000 is "
     "lower"},
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
