#include "config/config.h"

#include <algorithm>
#include <functional>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <utility>

// toml++ is a third-party header: its own code is not held to our warning flags. From
// /usr/include GCC already treats it as a system header; the pragmas keep that true when it is
// found elsewhere (a vendored copy, -I instead of -isystem).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wextra"
#include <toml++/toml.h>
#pragma GCC diagnostic pop

#include "config/pattern.h"

namespace config {

std::string_view to_string(Transport t) {
  switch (t) {
    case Transport::kUdp:
      return "udp";
    case Transport::kTcp:
      return "tcp";
    case Transport::kTls:
      return "tls";
  }
  return "udp";
}

namespace {

constexpr std::int64_t kKiB = 1024;
constexpr std::int64_t kMiB = 1024 * kKiB;

// What a listener's address means on the wire, for comparing "::" with "0::0".
struct IpAddress {
  int family = AF_INET;
  std::array<unsigned char, 16> bytes{};

  bool is_wildcard() const {
    for (unsigned char b : bytes)
      if (b != 0) return false;
    return true;
  }
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

std::optional<IpAddress> parse_ip(const std::string& text) {
  IpAddress ip;
  if (inet_pton(AF_INET, text.c_str(), ip.bytes.data()) == 1) {
    ip.family = AF_INET;
    return ip;
  }
  if (inet_pton(AF_INET6, text.c_str(), ip.bytes.data()) == 1) {
    ip.family = AF_INET6;
    return ip;
  }
  return std::nullopt;
}

// RFC 1123 §2.1 host name: dot-separated labels of letters, digits and inner hyphens, at most
// 63 octets each and 253 in all. A name whose last label is all digits is refused: no top-level
// domain is numeric, and it catches mistyped IPv4 addresses such as "10.0.0.256".
bool is_hostname(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  bool last_label_numeric = true;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = name.find('.', start);
    std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    last_label_numeric = true;
    for (char c : label) {
      bool digit = c >= '0' && c <= '9';
      bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!digit && !alpha && c != '-') return false;
      if (!digit) last_label_numeric = false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return !last_label_numeric;
}

bool is_domain(const std::string& domain) {
  return is_hostname(domain) || parse_ip(domain).has_value();
}

std::string host_name() {
  std::array<char, 256> buffer{};
  if (gethostname(buffer.data(), buffer.size() - 1) != 0) return "localhost";
  std::string name(buffer.data());
  // The default must itself be a valid setting, or check-config's output would not load.
  return is_domain(name) ? name : "localhost";
}

// A TOML basic string: quoted, with the characters TOML cannot hold literally escaped.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          static constexpr char kHex[] = "0123456789ABCDEF";
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
  }
  return "unknown";
}

std::string join(std::initializer_list<std::string_view> words) {
  std::string out;
  for (std::string_view w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

// The lower bound of an integer key, and which other key set it when it is not a constant.
struct Bound {
  std::int64_t value;
  std::string_view from_key = {};  // e.g. "timers.t1_ms"; empty for a constant
};

// One section of the file: reads its keys, records every problem as "<key>: <reason>".
class Section {
 public:
  Section(const toml::table* table, std::string prefix, std::vector<std::string>& errors)
      : table_(table), prefix_(std::move(prefix)), errors_(errors) {}

  // Records "<prefix><key>: unknown key" for every key not in `known`.
  void reject_unknown(std::initializer_list<std::string_view> known) {
    if (table_ == nullptr) return;
    for (auto&& [key, node] : *table_) {
      bool found = false;
      for (std::string_view k : known) found = found || key.str() == k;
      if (!found) error(key.str(), "unknown key");
    }
  }

  void error(std::string_view key, std::string_view reason) {
    errors_.push_back(prefix_ + std::string(key) + ": " + std::string(reason));
  }

  bool has(std::string_view key) const { return table_ != nullptr && table_->get(key) != nullptr; }

  // Absent: nullopt, no error. Present but wrong: nullopt and an error naming the key.
  std::optional<std::int64_t> integer(std::string_view key, Bound lo, std::int64_t hi) {
    const toml::node* node = find(key, toml::node_type::integer, "an integer");
    if (node == nullptr) return std::nullopt;
    std::int64_t v = node->as_integer()->get();
    if (v < lo.value || v > hi) {
      std::string lo_text = std::to_string(lo.value);
      if (!lo.from_key.empty()) lo_text += " (" + std::string(lo.from_key) + ")";
      error(key, "must be between " + lo_text + " and " + std::to_string(hi) + " (got " +
                     std::to_string(v) + ")");
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::string> string(std::string_view key) {
    const toml::node* node = find(key, toml::node_type::string, "a string");
    if (node == nullptr) return std::nullopt;
    return node->as_string()->get();
  }

  std::optional<std::string> choice(std::string_view key,
                                    std::initializer_list<std::string_view> allowed) {
    std::optional<std::string> v = string(key);
    if (!v) return std::nullopt;
    for (std::string_view a : allowed)
      if (*v == a) return v;
    error(key, "must be one of " + join(allowed) + " (got " + quote(*v) + ")");
    return std::nullopt;
  }

  std::optional<bool> boolean(std::string_view key) {
    const toml::node* node = find(key, toml::node_type::boolean, "a boolean");
    if (node == nullptr) return std::nullopt;
    return node->as_boolean()->get();
  }

  // A list of strings; `valid` judges each item (returns the reason it is wrong, or "").
  // A wrong item is named by its position: "calls.denied_destinations[2]: unclosed [".
  std::optional<std::vector<std::string>> strings(
      std::string_view key, const std::function<std::string(const std::string&)>& valid) {
    const toml::node* node = find(key, toml::node_type::array, "a list of strings");
    if (node == nullptr) return std::nullopt;
    std::vector<std::string> out;
    bool ok = true;
    const toml::array& list = *node->as_array();
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto* text = list.get(i)->as_string();
      if (text == nullptr) {
        error(key, "must be a list of strings");
        return std::nullopt;
      }
      if (std::string why = valid(text->get()); !why.empty()) {
        error(std::string(key) + "[" + std::to_string(i) + "]", why);
        ok = false;
      }
      out.push_back(text->get());
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // The key's node whatever its type (null when absent), for values of their own shape.
  const toml::node* node(std::string_view key) const {
    return table_ == nullptr ? nullptr : table_->get(key);
  }
  const std::string& prefix() const { return prefix_; }

 private:
  const toml::node* find(std::string_view key, toml::node_type type, std::string_view what) {
    if (table_ == nullptr) return nullptr;
    const toml::node* node = table_->get(key);
    if (node == nullptr) return nullptr;
    if (node->type() != type) {
      error(key,
            "must be " + std::string(what) + " (got " + std::string(type_name(node->type())) + ")");
      return nullptr;
    }
    return node;
  }

  const toml::table* const table_;  // null: the section is absent
  const std::string prefix_;        // "server." or "listen[2]."
  std::vector<std::string>& errors_;
};

constexpr std::string_view kSections[] = {"server", "listen",    "limits", "connections",
                                          "tls",    "registrar", "auth",   "shield",
                                          "calls",  "users",     "trunk",  "store",
                                          "timers"};

// A top-level entry that must be a table, e.g. [server]; null when absent or not a table.
const toml::table* section_table(const toml::table& root, std::string_view name,
                                 std::vector<std::string>& errors) {
  const toml::node* node = root.get(name);
  if (node == nullptr) return nullptr;
  if (!node->is_table()) {
    errors.push_back(std::string(name) + ": must be a table (got " +
                     std::string(type_name(node->type())) + ")");
    return nullptr;
  }
  return node->as_table();
}

void read_server(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  Section s(section_table(root, "server", errors), "server.", errors);
  s.reject_unknown({"domain", "data_dir", "workers", "log_level", "shutdown_grace_ms"});
  if (auto v = s.string("domain")) {
    if (is_domain(*v))
      c.domain = *v;
    else
      s.error("domain", "must be a host name or an IP address (got " + quote(*v) + ")");
  }
  if (auto v = s.string("data_dir")) {
    if (v->empty())
      s.error("data_dir", "must not be empty");
    else
      c.data_dir = *v;
  }
  if (auto v = s.integer("workers", {0}, 1024)) c.workers = static_cast<unsigned>(*v);
  if (auto v = s.choice("log_level", {"trace", "debug", "info", "warn", "error"})) c.log_level = *v;
  if (auto v = s.integer("shutdown_grace_ms", {0}, 600000))
    c.shutdown_grace = std::chrono::milliseconds(*v);
}

std::uint16_t default_port(Transport t) {
  return t == Transport::kTls ? 5061 : 5060;
}

std::string endpoint(const Listen& l) {
  bool v6 = l.address.find(':') != std::string::npos;
  std::string host = v6 ? "[" + l.address + "]" : l.address;
  return std::string(to_string(l.transport)) + " " + host + ":" + std::to_string(l.port);
}

void read_listeners(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  const toml::node* node = root.get("listen");
  if (node == nullptr) return;  // keep the built-in listeners
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    errors.push_back("listen: must be an array of tables, written [[listen]] (got " +
                     std::string(type_name(node->type())) + ")");
    return;
  }
  if (array->empty()) {
    errors.push_back("listen: must name at least one listener");
    return;
  }

  std::vector<Listen> listeners;
  std::vector<IpAddress> ips;
  std::vector<std::size_t> indexes;  // position in the file of listeners[i]
  std::size_t errors_before = errors.size();
  for (std::size_t i = 0; i < array->size(); ++i) {
    std::string name = "listen[" + std::to_string(i) + "]";
    const toml::node& entry = *array->get(i);
    if (!entry.is_table()) {
      errors.push_back(name + ": must be a table (got " + std::string(type_name(entry.type())) +
                       ")");
      continue;
    }
    Section s(entry.as_table(), name + ".", errors);
    s.reject_unknown({"transport", "address", "port", "optional"});
    std::size_t errors_at_entry = errors.size();

    Listen l;
    std::optional<std::string> transport = s.choice("transport", {"udp", "tcp", "tls"});
    if (transport) {
      l.transport = *transport == "udp"   ? Transport::kUdp
                    : *transport == "tcp" ? Transport::kTcp
                                          : Transport::kTls;
    } else if (!s.has("transport")) {
      s.error("transport", "required (one of udp, tcp, tls)");
    }
    std::optional<IpAddress> ip;
    if (auto address = s.string("address")) {
      ip = parse_ip(*address);
      if (ip)
        l.address = *address;
      else
        s.error("address",
                "must be an IPv4 or IPv6 address without brackets, such as \"0.0.0.0\" or "
                "\"::\" (got " +
                    quote(*address) + ")");
    } else if (!s.has("address")) {
      s.error("address", "required (an IPv4 or IPv6 address, such as \"0.0.0.0\" or \"::\")");
    }
    l.port = default_port(l.transport);
    if (auto port = s.integer("port", {1}, 65535)) l.port = static_cast<std::uint16_t>(*port);
    if (auto optional = s.boolean("optional")) l.optional = *optional;

    if (errors.size() == errors_at_entry && ip) {
      listeners.push_back(l);
      ips.push_back(*ip);
      indexes.push_back(i);
    }
  }

  // Two sockets that cannot both be bound, or would take each other's connections.
  for (std::size_t j = 0; j < listeners.size(); ++j) {
    for (std::size_t i = 0; i < j; ++i) {
      const Listen& a = listeners[i];
      const Listen& b = listeners[j];
      if (a.port != b.port || ips[i].family != ips[j].family) continue;
      std::string name = "listen[" + std::to_string(indexes[j]) + "]";
      std::string other = "listen[" + std::to_string(indexes[i]) + "]";
      if (a.transport == b.transport && ips[i] == ips[j]) {
        errors.push_back(name + ": " + endpoint(b) + " is already configured by " + other);
        break;
      }
      bool both_tcp = a.transport != Transport::kUdp && b.transport != Transport::kUdp &&
                      a.transport != b.transport;
      bool overlap = ips[i] == ips[j] || ips[i].is_wildcard() || ips[j].is_wildcard();
      if (both_tcp && overlap) {
        errors.push_back(name + ": " + endpoint(b) + " and " + endpoint(a) + " (" + other +
                         ") cannot share a TCP port");
        break;
      }
    }
  }
  if (errors.size() == errors_before) c.listen = std::move(listeners);
}

void read_limits(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  Section s(section_table(root, "limits", errors), "limits.", errors);
  s.reject_unknown({"max_message_bytes", "max_headers", "max_header_line", "max_uri_length"});
  if (auto v = s.integer("max_message_bytes", {kKiB}, kMiB))
    c.max_message_bytes = static_cast<std::size_t>(*v);
  if (auto v = s.integer("max_headers", {8}, 1024)) c.max_headers = static_cast<std::size_t>(*v);
  if (auto v = s.integer("max_header_line", {256}, 65535))
    c.max_header_line = static_cast<std::size_t>(*v);
  if (auto v = s.integer("max_uri_length", {64}, 65535))
    c.max_uri_length = static_cast<std::size_t>(*v);
}

// After [limits]: max_buffered_bytes is bounded below by max_message_bytes.
void read_connections(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  Section s(section_table(root, "connections", errors), "connections.", errors);
  s.reject_unknown({"max_connections", "max_connections_per_source", "idle_timeout_s",
                    "tls_handshake_timeout_s", "message_timeout_s", "max_buffered_bytes"});
  if (auto v = s.integer("max_connections", {1}, 1000000))
    c.max_connections = static_cast<std::size_t>(*v);
  if (auto v = s.integer("max_connections_per_source", {1}, 100000))
    c.max_connections_per_source = static_cast<std::size_t>(*v);
  if (auto v = s.integer("idle_timeout_s", {1}, 86400)) c.idle_timeout = std::chrono::seconds(*v);
  if (auto v = s.integer("tls_handshake_timeout_s", {1}, 300))
    c.tls_handshake_timeout = std::chrono::seconds(*v);
  if (auto v = s.integer("message_timeout_s", {1}, 3600))
    c.message_timeout = std::chrono::seconds(*v);

  auto message = static_cast<std::int64_t>(c.max_message_bytes);
  if (s.has("max_buffered_bytes")) {
    if (auto v = s.integer("max_buffered_bytes", {message, "limits.max_message_bytes"}, 16 * kMiB))
      c.max_buffered_bytes = static_cast<std::size_t>(*v);
  } else if (c.max_buffered_bytes < c.max_message_bytes + 4 * kKiB) {
    // Unset: follow a raised message limit, so raising one key does not force setting two.
    c.max_buffered_bytes = c.max_message_bytes + 4 * kKiB;
  }
}

void read_registrar(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  Section s(section_table(root, "registrar", errors), "registrar.", errors);
  s.reject_unknown({"min_expires", "max_expires", "default_expires", "max_contacts"});
  if (auto v = s.integer("min_expires", {1}, 86400)) c.min_expires = static_cast<std::uint32_t>(*v);
  if (auto v = s.integer("max_expires", {static_cast<std::int64_t>(c.min_expires), "registrar.min_expires"}, 604800))
    c.max_expires = static_cast<std::uint32_t>(*v);
  if (auto v = s.integer("default_expires", {static_cast<std::int64_t>(c.min_expires), "registrar.min_expires"}, 604800))
    c.default_expires = static_cast<std::uint32_t>(*v);
  if (c.default_expires > c.max_expires) {
    errors.push_back("registrar.default_expires: must not exceed registrar.max_expires");
  }
  if (auto v = s.integer("max_contacts", {1}, 1000)) c.max_contacts = static_cast<std::size_t>(*v);
}

void read_auth(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  Section s(section_table(root, "auth", errors), "auth.", errors);
  s.reject_unknown({"algorithms", "nonce_lifetime_s"});
  if (const toml::node* node = s.has("algorithms") ? root["auth"]["algorithms"].node() : nullptr) {
    const toml::array* list = node->as_array();
    std::vector<std::string> algorithms;
    bool ok = list != nullptr && !list->empty();
    if (ok) {
      for (const toml::node& item : *list) {
        const auto* text = item.as_string();
        if (text == nullptr || (text->get() != "SHA-256" && text->get() != "MD5")) {
          ok = false;
          break;
        }
        for (const std::string& seen : algorithms) ok = ok && seen != text->get();
        algorithms.push_back(text->get());
      }
    }
    if (ok) {
      c.auth_algorithms = algorithms;
    } else {
      errors.push_back(
          "auth.algorithms: must be a non-empty list of distinct \"SHA-256\" and \"MD5\"");
    }
  }
  if (auto v = s.integer("nonce_lifetime_s", {10}, 3600)) c.nonce_lifetime = std::chrono::seconds(*v);
}

bool valid_cidr(const std::string& text) {
  const std::size_t slash = text.find('/');
  const std::string address = text.substr(0, slash);
  unsigned char buf[16];
  const bool v4 = inet_pton(AF_INET, address.c_str(), buf) == 1;
  const bool v6 = !v4 && inet_pton(AF_INET6, address.c_str(), buf) == 1;
  if (!v4 && !v6) return false;
  if (slash == std::string::npos) return true;
  const std::string bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  return std::stoi(bits) <= (v4 ? 32 : 128);
}

// A check for Section::strings: an address or a CIDR network.
std::string cidr_problem(const std::string& text) {
  return valid_cidr(text) ? std::string() : quote(text) + " is not an address or CIDR network";
}

void read_shield(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  Section s(section_table(root, "shield", errors), "shield.", errors);
  s.reject_unknown({"allow", "deny", "packet_rate", "packet_burst", "register_rate",
                    "register_burst", "invite_rate", "invite_burst", "other_rate", "other_burst",
                    "global_rate", "global_burst", "failures_per_source", "failures_per_user",
                    "probed_users", "window_s", "ban_durations_s", "scanner_user_agents",
                    "tls_only", "events_json", "events_text"});
  if (auto v = s.strings("allow", cidr_problem)) c.shield_allow = *v;
  if (auto v = s.strings("deny", cidr_problem)) c.shield_deny = *v;
  const auto non_empty = [](const std::string& t) {
    return t.empty() ? std::string("must not be empty") : std::string();
  };
  if (auto v = s.strings("scanner_user_agents", non_empty)) {
    c.scanner_user_agents.clear();
    for (std::string a : *v) {
      for (char& ch : a) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      c.scanner_user_agents.push_back(a);
    }
  }
  const auto rate = [&](const char* key, double& field) {
    if (auto v = s.integer(key, {0}, 10'000'000)) field = static_cast<double>(*v);
  };
  rate("packet_rate", c.packet_rate);
  rate("packet_burst", c.packet_burst);
  rate("register_rate", c.register_rate);
  rate("register_burst", c.register_burst);
  rate("invite_rate", c.invite_rate);
  rate("invite_burst", c.invite_burst);
  rate("other_rate", c.other_rate);
  rate("other_burst", c.other_burst);
  rate("global_rate", c.global_rate);
  rate("global_burst", c.global_burst);
  if (auto v = s.integer("failures_per_source", {1}, 100000))
    c.failures_per_source = static_cast<unsigned>(*v);
  if (auto v = s.integer("failures_per_user", {0}, 100000))
    c.failures_per_user = static_cast<unsigned>(*v);
  if (auto v = s.integer("probed_users", {0}, 100000)) c.probed_users = static_cast<unsigned>(*v);
  if (auto v = s.integer("window_s", {1}, 86400)) c.shield_window = std::chrono::seconds(*v);
  if (const toml::node* node = root["shield"]["ban_durations_s"].node()) {
    const toml::array* list = node->as_array();
    std::vector<std::int64_t> steps;
    bool ok = list != nullptr && !list->empty();
    if (ok) {
      for (const toml::node& item : *list) {
        const auto* n = item.as_integer();
        ok = ok && n != nullptr && n->get() >= 1 && n->get() <= 31'536'000;
        if (ok) steps.push_back(n->get());
      }
    }
    if (ok) {
      c.ban_durations_s = steps;
    } else {
      errors.push_back("shield.ban_durations_s: must be a non-empty list of seconds (1..31536000)");
    }
  }
  if (auto v = s.boolean("tls_only")) c.tls_only = *v;
  if (auto v = s.string("events_json")) c.events_json = *v;
  if (auto v = s.string("events_text")) c.events_text = *v;
}

void read_tls(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  Section s(section_table(root, "tls", errors), "tls.", errors);
  s.reject_unknown({"certificate", "private_key", "verify_client", "client_ca", "min_version",
                    "expiry_warning_days"});
  std::size_t errors_before = errors.size();
  if (auto v = s.string("certificate")) c.tls_certificate = *v;
  if (auto v = s.string("private_key")) c.tls_private_key = *v;
  if (auto v = s.boolean("verify_client")) c.tls_verify_client = *v;
  if (auto v = s.string("client_ca")) c.tls_client_ca = *v;
  if (auto v = s.choice("min_version", {"1.2", "1.3"})) c.tls_min_version = *v;
  if (auto v = s.integer("expiry_warning_days", {0}, 365))
    c.tls_expiry_warning_days = static_cast<unsigned>(*v);
  if (errors.size() != errors_before) return;

  if (!c.tls_certificate.empty() && c.tls_private_key.empty())
    s.error("private_key", "required when tls.certificate is set");
  if (c.tls_certificate.empty() && !c.tls_private_key.empty())
    s.error("certificate", "required when tls.private_key is set");
  if (c.tls_verify_client && c.tls_client_ca.empty())
    s.error("client_ca", "required when tls.verify_client is true");
}

// A local user's name, as in [users.NAME], aliases and DIDs.
bool is_user_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && c != '.' && c != '_' && c != '+' && c != '-') return false;
  }
  return true;
}
constexpr std::string_view kUserNameRule = "1 to 64 letters, digits, '.', '_', '+' or '-'";

std::string user_name_problem(const std::string& text) {
  if (is_user_name(text)) return {};
  return quote(text) + " is not a user name (" + std::string(kUserNameRule) + ")";
}

// A key as it is written in TOML: bare when it can be, quoted otherwise (users."alice.b").
std::string key_name(std::string_view key) {
  bool bare = !key.empty();
  for (char c : key) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    bare = bare && (alnum || c == '_' || c == '-');
  }
  return bare ? std::string(key) : quote(key);
}

// Only characters a dial string is made of; used for prefix and DID numbers.
bool is_dial_string(std::string_view text) {
  return text.find_first_not_of("0123456789+*#") == std::string_view::npos;
}

// An entry of a destination list: a Pattern, or "local" (any local user) where that is allowed.
std::string destination_problem(const std::string& text, bool local_allowed) {
  if (text == "local")
    return local_allowed ? std::string()
                         : std::string("\"local\" is only allowed in allowed_destinations");
  base::Result<Pattern> pattern = Pattern::parse(text);
  return pattern.ok() ? std::string() : pattern.error();
}

// The keys [calls] and [users.NAME] share; `policy` holds the inherited values on entry.
void read_call_policy(Section& s, CallPolicy& policy) {
  const auto allowed = [](const std::string& t) { return destination_problem(t, true); };
  const auto denied = [](const std::string& t) { return destination_problem(t, false); };
  if (auto v = s.strings("allowed_destinations", allowed)) policy.allowed_destinations = *v;
  if (auto v = s.strings("denied_destinations", denied)) policy.denied_destinations = *v;
  if (auto v = s.integer("max_concurrent_calls", {0}, 10000))
    policy.max_concurrent_calls = static_cast<unsigned>(*v);
  if (auto v = s.integer("max_calls_per_minute", {0}, 100000))
    policy.max_calls_per_minute = static_cast<unsigned>(*v);
  if (auto v = s.integer("max_call_duration_s", {0}, 604800))
    policy.max_call_duration = std::chrono::seconds(*v);
  if (auto v = s.boolean("require_srtp")) policy.require_srtp = *v;
}

void read_calls(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  Section s(section_table(root, "calls", errors), "calls.", errors);
  s.reject_unknown({"allowed_destinations", "denied_destinations", "max_concurrent_calls",
                    "max_calls_per_minute", "max_call_duration_s", "require_srtp", "ring_timeout_s",
                    "record_route_host"});
  read_call_policy(s, c.calls);
  if (auto v = s.integer("ring_timeout_s", {5}, 1800)) c.ring_timeout = std::chrono::seconds(*v);
  if (auto v = s.string("record_route_host")) {
    if (v->empty() || is_domain(*v))
      c.record_route_host = *v;
    else
      s.error("record_route_host",
              "must be empty, a host name or an IP address (got " + quote(*v) + ")");
  }
}

// After [calls]: each user starts from the [calls] policy, whatever order the file has.
void read_users(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  const toml::table* users = section_table(root, "users", errors);
  if (users == nullptr) return;
  std::vector<UserPolicy> policies;
  for (auto&& [key, node] : *users) {
    const std::string name(key.str());
    const std::string where = "users." + key_name(name);
    if (!is_user_name(name)) {
      errors.push_back(where + ": not a user name (" + std::string(kUserNameRule) + ")");
      continue;
    }
    if (!node.is_table()) {
      errors.push_back(where + ": must be a table (got " + std::string(type_name(node.type())) +
                       ")");
      continue;
    }
    Section s(node.as_table(), where + ".", errors);
    s.reject_unknown({"allowed_destinations", "denied_destinations", "max_concurrent_calls",
                      "max_calls_per_minute", "max_call_duration_s", "require_srtp", "aliases",
                      "allowed_networks"});
    UserPolicy user;
    user.name = name;
    user.calls = c.calls;
    read_call_policy(s, user.calls);
    if (auto v = s.strings("aliases", user_name_problem)) user.aliases = *v;
    if (auto v = s.strings("allowed_networks", cidr_problem)) user.allowed_networks = *v;
    policies.push_back(std::move(user));
  }
  std::sort(policies.begin(), policies.end(),
            [](const UserPolicy& a, const UserPolicy& b) { return a.name < b.name; });
  c.users = std::move(policies);
}

bool is_trunk_name(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && c != '_' && c != '-') return false;
  }
  return true;
}

// Text that goes between the quotes of a digest Authorization header (RFC 3261 §25.1
// quoted-string) without escaping.
bool is_quotable(std::string_view text) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

// `dids = { "15551230000" = "1000" }`: called number → local user, sorted by number.
std::optional<std::vector<std::pair<std::string, std::string>>> read_dids(
    Section& s, std::vector<std::string>& errors) {
  const toml::node* node = s.node("dids");
  if (node == nullptr) return std::nullopt;
  const std::string where = s.prefix() + "dids";
  if (!node->is_table()) {
    errors.push_back(where + ": must be a table of \"number\" = \"user\" (got " +
                     std::string(type_name(node->type())) + ")");
    return std::nullopt;
  }
  std::vector<std::pair<std::string, std::string>> dids;
  bool ok = true;
  for (auto&& [key, value] : *node->as_table()) {
    const std::string number(key.str());
    const std::string entry = where + "." + key_name(number);
    if (number.empty() || !is_dial_string(number)) {
      errors.push_back(entry + ": not a number (digits, '+', '*' and '#')");
      ok = false;
    } else if (!value.is_string()) {
      errors.push_back(entry + ": must be a string (got " + std::string(type_name(value.type())) +
                       ")");
      ok = false;
    } else if (std::string why = user_name_problem(value.as_string()->get()); !why.empty()) {
      errors.push_back(entry + ": " + why);
      ok = false;
    } else {
      dids.emplace_back(number, value.as_string()->get());
    }
  }
  if (!ok) return std::nullopt;
  std::sort(dids.begin(), dids.end());
  return dids;
}

void read_trunks(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  const toml::node* node = root.get("trunk");
  if (node == nullptr) return;
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    errors.push_back("trunk: must be an array of tables, written [[trunk]] (got " +
                     std::string(type_name(node->type())) + ")");
    return;
  }

  std::vector<Trunk> trunks;
  std::vector<std::string> names;  // every valid name so far, to catch one used twice
  for (std::size_t i = 0; i < array->size(); ++i) {
    const std::string where = "trunk[" + std::to_string(i) + "]";
    const toml::node& entry = *array->get(i);
    if (!entry.is_table()) {
      errors.push_back(where + ": must be a table (got " + std::string(type_name(entry.type())) +
                       ")");
      continue;
    }
    Section s(entry.as_table(), where + ".", errors);
    s.reject_unknown({"name", "host", "port", "transport", "username", "password", "realm",
                      "outbound", "strip", "prefix", "inbound_sources", "dids",
                      "trusted"});
    const std::size_t errors_at_entry = errors.size();

    Trunk t;
    if (auto v = s.string("name")) {
      if (!is_trunk_name(*v)) {
        s.error("name", "must be 1 to 32 letters, digits, '_' or '-' (got " + quote(*v) + ")");
      } else if (std::find(names.begin(), names.end(), *v) != names.end()) {
        s.error("name", quote(*v) + " is used twice");
      } else {
        names.push_back(*v);
        t.name = *v;
      }
    } else if (!s.has("name")) {
      s.error("name", "required (1 to 32 letters, digits, '_' or '-')");
    }
    if (auto v = s.string("host")) {
      if (is_domain(*v))
        t.host = *v;
      else
        s.error("host", "must be a host name or an IP address (got " + quote(*v) + ")");
    } else if (!s.has("host")) {
      s.error("host", "required (a host name or an IP address)");
    }
    if (auto v = s.choice("transport", {"udp", "tcp", "tls"}))
      t.transport = *v == "udp" ? Transport::kUdp : *v == "tcp" ? Transport::kTcp : Transport::kTls;
    t.port = default_port(t.transport);
    if (auto v = s.integer("port", {1}, 65535)) t.port = static_cast<std::uint16_t>(*v);

    const std::size_t errors_before_credentials = errors.size();
    const auto credential = [&](std::string_view key, std::string& field) {
      if (auto v = s.string(key)) {
        if (is_quotable(*v))
          field = *v;
        else
          s.error(key, "must not contain '\"', '\\' or control characters");
      }
    };
    credential("username", t.username);
    if (auto v = s.string("password")) t.password = *v;
    credential("realm", t.realm);
    if (errors.size() == errors_before_credentials) {
      if (!t.username.empty() && t.password.empty())
        s.error("password", "required when " + where + ".username is set");
      if (t.username.empty() && !t.password.empty())
        s.error("username", "required when " + where + ".password is set");
    }

    const auto outbound = [](const std::string& p) { return destination_problem(p, false); };
    if (auto v = s.strings("outbound", outbound)) t.outbound = *v;
    if (auto v = s.integer("strip", {0}, 32)) t.strip = static_cast<std::uint32_t>(*v);
    if (auto v = s.string("prefix")) {
      if (is_dial_string(*v))
        t.prefix = *v;
      else
        s.error("prefix", "must contain only digits, '+', '*' and '#' (got " + quote(*v) + ")");
    }
    if (auto v = s.strings("inbound_sources", cidr_problem)) t.inbound_sources = *v;
    if (auto v = read_dids(s, errors)) t.dids = *v;
    if (auto v = s.boolean("trusted")) t.trusted = *v;

    if (errors.size() == errors_at_entry) trunks.push_back(std::move(t));
  }
  c.trunks = std::move(trunks);
}

void read_store(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  Section s(section_table(root, "store", errors), "store.", errors);
  s.reject_unknown({"commit_window_ms", "call_record_window_ms"});
  // Above 100 ms a registration under load waits a noticeable part of SIP's T1 (500 ms).
  if (auto v = s.integer("commit_window_ms", {0}, 100))
    c.commit_window = std::chrono::milliseconds(*v);
  if (auto v = s.integer("call_record_window_ms", {0}, 10000))
    c.call_record_window = std::chrono::milliseconds(*v);
}

void read_timers(const toml::table& root, Config& c, std::vector<std::string>& errors) {
  Section s(section_table(root, "timers", errors), "timers.", errors);
  s.reject_unknown({"t1_ms", "t2_ms", "t4_ms"});
  std::optional<std::int64_t> t1 = s.integer("t1_ms", {50}, 10000);
  if (t1) c.t1 = std::chrono::milliseconds(*t1);
  if (!t1 && s.has("t1_ms")) return;  // an invalid T1 would only make T2 and T4 errors noise
  // RFC 3261 §17.1.2.2: T2 caps the non-INVITE retransmit interval, which starts at T1.
  Bound lo{c.t1.count(), "timers.t1_ms"};
  if (auto v = s.integer("t2_ms", lo, 60000)) c.t2 = std::chrono::milliseconds(*v);
  if (auto v = s.integer("t4_ms", lo, 60000)) c.t4 = std::chrono::milliseconds(*v);
  // Defaults left in place must still respect a raised T1.
  if (!s.has("t2_ms") && c.t2 < c.t1)
    s.error("t2_ms", "must be set to at least timers.t1_ms (" + std::to_string(c.t1.count()) +
                         "); the default " + std::to_string(c.t2.count()) + " is lower");
  if (!s.has("t4_ms") && c.t4 < c.t1)
    s.error("t4_ms", "must be set to at least timers.t1_ms (" + std::to_string(c.t1.count()) +
                         "); the default " + std::to_string(c.t4.count()) + " is lower");
}

std::string join_lines(std::string_view origin, const std::vector<std::string>& errors) {
  std::string out;
  for (const std::string& e : errors) {
    if (!out.empty()) out += '\n';
    out += std::string(origin) + ": " + e;
  }
  return out;
}

base::Result<Config> parse_and_validate(std::string_view text, std::string_view origin) {
  toml::table root;
#if TOML_EXCEPTIONS
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    return std::string(origin) + ":" + std::to_string(e.source().begin.line) + ":" +
           std::to_string(e.source().begin.column) + ": " + std::string(e.description());
  }
#else
  toml::parse_result parsed = toml::parse(text, origin);
  if (!parsed) {
    const toml::parse_error& e = parsed.error();
    return std::string(origin) + ":" + std::to_string(e.source().begin.line) + ":" +
           std::to_string(e.source().begin.column) + ": " + std::string(e.description());
  }
  root = std::move(parsed).table();
#endif

  std::vector<std::string> errors;
  for (auto&& [key, node] : root) {
    bool known = false;
    for (std::string_view s : kSections) known = known || key.str() == s;
    if (!known)
      errors.push_back(std::string(key.str()) + (node.is_table() || node.is_array_of_tables()
                                                     ? ": unknown section"
                                                     : ": unknown key"));
  }

  Config c = defaults();
  c.source = std::string(origin);
  read_server(root, c, errors);
  read_listeners(root, c, errors);
  read_limits(root, c, errors);
  read_connections(root, c, errors);
  read_tls(root, c, errors);
  read_registrar(root, c, errors);
  read_auth(root, c, errors);
  read_shield(root, c, errors);
  read_calls(root, c, errors);
  read_users(root, c, errors);
  read_trunks(root, c, errors);
  read_store(root, c, errors);
  read_timers(root, c, errors);
  if (c.tls_only) {
    // No plaintext listener at all: a downgrade to 5060 finds nothing to talk to.
    std::erase_if(c.listen, [](const Listen& l) { return l.transport != Transport::kTls; });
    if (c.listen.empty()) errors.push_back("shield.tls_only: no TLS listener is configured");
  }
  if (!errors.empty()) return join_lines(origin, errors);
  return c;
}

}  // namespace

Config defaults() {
  Config c;
  c.domain = host_name();
  c.listen = {
      {Transport::kUdp, "0.0.0.0", 5060, false}, {Transport::kTcp, "0.0.0.0", 5060, false},
      {Transport::kTls, "0.0.0.0", 5061, false}, {Transport::kUdp, "::", 5060, true},
      {Transport::kTcp, "::", 5060, true},       {Transport::kTls, "::", 5061, true},
  };
  return c;
}

base::Result<Config> load_string(std::string_view toml, std::string_view origin) {
  try {
    return parse_and_validate(toml, origin);
  } catch (const std::exception& e) {
    return std::string(origin) + ": cannot load: " + e.what();
  } catch (...) {
    return std::string(origin) + ": cannot load: unexpected error";
  }
}

base::Result<Config> load_file(const std::filesystem::path& path) {
  try {
    const std::string name = path.string();
    auto cannot_read = [&](int error) { return name + ": cannot read: " + std::strerror(error); };
    int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cannot_read(errno);
    std::string text;
    std::array<char, 16384> buffer;
    while (true) {
      ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int error = errno;
        ::close(fd);
        return cannot_read(error);  // EISDIR for a directory
      }
      if (n == 0) break;
      text.append(buffer.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return load_string(text, name);
  } catch (const std::exception& e) {
    return path.string() + ": cannot load: " + e.what();
  }
}

std::string to_toml(const Config& c) {
  std::string source;
  for (char ch : c.source) source += (static_cast<unsigned char>(ch) < 0x20) ? '?' : ch;

  std::string out;
  auto line = [&out](std::string_view key, const std::string& value, std::string_view note = {}) {
    out += std::string(key) + " = " + value;
    if (!note.empty()) out += "  # " + std::string(note);
    out += "\n";
  };
  auto num = [](auto v) { return std::to_string(v); };
  auto boolean = [](bool b) { return std::string(b ? "true" : "false"); };

  out += "# effective sipwarden settings (source: " + source + ")\n";

  out += "\n[server]\n";
  line("domain", quote(c.domain));
  line("data_dir", quote(c.data_dir.string()));
  line("workers", num(c.workers), c.workers == 0 ? "0: one per core" : "");
  line("log_level", quote(c.log_level));
  line("shutdown_grace_ms", num(c.shutdown_grace.count()));

  for (const Listen& l : c.listen) {
    out += "\n[[listen]]\n";
    line("transport", quote(to_string(l.transport)));
    line("address", quote(l.address));
    line("port", num(l.port));
    line("optional", boolean(l.optional));
  }

  out += "\n[limits]\n";
  line("max_message_bytes", num(c.max_message_bytes));
  line("max_headers", num(c.max_headers));
  line("max_header_line", num(c.max_header_line));
  line("max_uri_length", num(c.max_uri_length));

  out += "\n[connections]\n";
  line("max_connections", num(c.max_connections));
  line("max_connections_per_source", num(c.max_connections_per_source));
  line("idle_timeout_s", num(c.idle_timeout.count()));
  line("tls_handshake_timeout_s", num(c.tls_handshake_timeout.count()));
  line("message_timeout_s", num(c.message_timeout.count()));
  line("max_buffered_bytes", num(c.max_buffered_bytes));

  out += "\n[tls]\n";
  const char* generated = "empty: a self-signed certificate kept in data_dir";
  line("certificate", quote(c.tls_certificate.string()),
       c.tls_certificate.empty() ? generated : "");
  line("private_key", quote(c.tls_private_key.string()),
       c.tls_private_key.empty() ? generated : "");
  line("verify_client", boolean(c.tls_verify_client));
  line("client_ca", quote(c.tls_client_ca.string()));
  line("min_version", quote(c.tls_min_version));
  line("expiry_warning_days", num(c.tls_expiry_warning_days));

  out += "\n[registrar]\n";
  line("min_expires", num(c.min_expires));
  line("max_expires", num(c.max_expires));
  line("default_expires", num(c.default_expires));
  line("max_contacts", num(c.max_contacts));

  out += "\n[auth]\n";
  std::string algorithms = "[";
  for (const std::string& a : c.auth_algorithms) {
    if (algorithms.size() > 1) algorithms += ", ";
    algorithms += quote(a);
  }
  line("algorithms", algorithms + "]");
  line("nonce_lifetime_s", num(c.nonce_lifetime.count()));

  out += "\n[shield]\n";
  const auto strings = [&](const std::vector<std::string>& list) {
    std::string v = "[";
    for (const std::string& item : list) {
      if (v.size() > 1) v += ", ";
      v += quote(item);
    }
    return v + "]";
  };
  const auto real = [&](double d) { return num(static_cast<std::int64_t>(d)); };
  line("allow", strings(c.shield_allow), c.shield_allow.empty() ? "empty: every source" : "");
  line("deny", strings(c.shield_deny));
  line("packet_rate", real(c.packet_rate));
  line("packet_burst", real(c.packet_burst));
  line("register_rate", real(c.register_rate));
  line("register_burst", real(c.register_burst));
  line("invite_rate", real(c.invite_rate));
  line("invite_burst", real(c.invite_burst));
  line("other_rate", real(c.other_rate));
  line("other_burst", real(c.other_burst));
  line("global_rate", real(c.global_rate), c.global_rate == 0 ? "0: off" : "");
  line("global_burst", real(c.global_burst));
  line("failures_per_source", num(c.failures_per_source));
  line("failures_per_user", num(c.failures_per_user));
  line("probed_users", num(c.probed_users));
  line("window_s", num(c.shield_window.count()));
  std::string steps = "[";
  for (std::int64_t d : c.ban_durations_s) {
    if (steps.size() > 1) steps += ", ";
    steps += num(d);
  }
  line("ban_durations_s", steps + "]");
  line("scanner_user_agents", strings(c.scanner_user_agents));
  line("tls_only", boolean(c.tls_only));
  line("events_json", quote(c.events_json.string()),
       c.events_json.empty() ? "empty: data_dir/security-events.jsonl" : "");
  line("events_text", quote(c.events_text.string()),
       c.events_text.empty() ? "empty: data_dir/security-events.log" : "");

  const auto policy = [&](const CallPolicy& p) {
    line("allowed_destinations", strings(p.allowed_destinations));
    line("denied_destinations", strings(p.denied_destinations));
    line("max_concurrent_calls", num(p.max_concurrent_calls),
         p.max_concurrent_calls == 0 ? "0: no limit" : "");
    line("max_calls_per_minute", num(p.max_calls_per_minute),
         p.max_calls_per_minute == 0 ? "0: no limit" : "");
    line("max_call_duration_s", num(p.max_call_duration.count()),
         p.max_call_duration.count() == 0 ? "0: no limit" : "");
    line("require_srtp", boolean(p.require_srtp));
  };
  out += "\n[calls]\n";
  policy(c.calls);
  line("ring_timeout_s", num(c.ring_timeout.count()));
  line("record_route_host", quote(c.record_route_host),
       c.record_route_host.empty() ? "empty: the address the request arrived on" : "");

  for (const UserPolicy& u : c.users) {
    // Every key, inherited ones included: the user's effective policy.
    out += "\n[users." + quote(u.name) + "]\n";
    policy(u.calls);
    line("aliases", strings(u.aliases));
    line("allowed_networks", strings(u.allowed_networks),
         u.allowed_networks.empty() ? "empty: any network" : "");
  }

  for (const Trunk& t : c.trunks) {
    out += "\n[[trunk]]\n";
    line("name", quote(t.name));
    line("host", quote(t.host));
    line("port", num(t.port));
    line("transport", quote(to_string(t.transport)));
    line("username", quote(t.username), t.username.empty() ? "empty: no digest credentials" : "");
    // Printed as is: this output must load back as the same configuration.
    line("password", quote(t.password), t.password.empty() ? "" : "secret");
    line("realm", quote(t.realm), t.realm.empty() ? "empty: any realm" : "");
    line("outbound", strings(t.outbound));
    line("strip", num(t.strip));
    line("prefix", quote(t.prefix));
    line("inbound_sources", strings(t.inbound_sources),
         t.inbound_sources.empty() ? "empty: host's address when it is an IP address" : "");
    std::string dids = "{";
    for (const auto& [number, user] : t.dids) {
      dids += dids.size() > 1 ? ", " : " ";
      dids += quote(number) + " = " + quote(user);
    }
    line("dids", dids + (t.dids.empty() ? "}" : " }"));
    line("trusted", boolean(t.trusted));
  }

  out += "\n[store]\n";
  line("commit_window_ms", num(c.commit_window.count()),
       c.commit_window.count() == 0 ? "0: commit as soon as the writer is free" : "");
  line("call_record_window_ms", num(c.call_record_window.count()),
       c.call_record_window.count() == 0 ? "0: call records commit like bindings" : "");

  out += "\n[timers]\n";
  line("t1_ms", num(c.t1.count()));
  line("t2_ms", num(c.t2.count()));
  line("t4_ms", num(c.t4.count()));
  return out;
}

}  // namespace config
