#include "app/ban.h"

#include <ctime>
#include <iostream>

#include "base/clock.h"
#include "config/config.h"
#include "store/store.h"
#include "transport/endpoint.h"

namespace app {
namespace {

// The store of the config's data dir, or an error message on stderr.
std::unique_ptr<store::Store> open_store(const std::string& config_path) {
  auto cfg = config_path.empty() ? base::Result<config::Config>(config::defaults())
                                 : config::load_file(config_path);
  if (!cfg) {
    std::cerr << "sipwarden: " << cfg.error() << "\n";
    return nullptr;
  }
  auto db = store::open_sqlite((cfg->data_dir / "sipwarden.db").string());
  if (!db) {
    std::cerr << "sipwarden: " << db.error() << "\n";
    return nullptr;
  }
  return std::move(*db);
}

std::string when(long long unix) {
  const std::time_t t = static_cast<std::time_t>(unix);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::optional<long long> parse_duration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  long long unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 's':
      digits.pop_back();
      break;
    case 'm':
      unit = 60;
      digits.pop_back();
      break;
    case 'h':
      unit = 3600;
      digits.pop_back();
      break;
    case 'd':
      unit = 86400;
      digits.pop_back();
      break;
    default:
      break;
  }
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const long long n = std::stoll(digits) * unit;
  if (n <= 0) return std::nullopt;
  return n;
}

int ban_list(const std::string& config_path) {
  auto db = open_store(config_path);
  if (!db) return 1;
  auto bans = db->list_bans(base::unix_now());
  if (!bans) {
    std::cerr << "sipwarden: " << bans.error() << "\n";
    return 1;
  }
  std::cout << "address                                  until                 level  reason\n";
  for (const store::Ban& b : *bans) {
    std::string address = b.address;
    address.resize(std::max<std::size_t>(address.size(), 40), ' ');
    std::cout << address << " " << when(b.until) << "  " << b.level << "      " << b.reason
              << "\n";
  }
  return 0;
}

int ban_add(const std::string& config_path, const std::string& address,
            const std::string& duration) {
  const auto endpoint = transport::Endpoint::from_string(address);
  if (!endpoint) {
    std::cerr << "sipwarden: " << address << ": not an IPv4 or IPv6 address\n";
    return 2;
  }
  const auto seconds = parse_duration(duration);
  if (!seconds) {
    std::cerr << "sipwarden: --for " << duration
              << ": not a duration (like 90, 90s, 10m, 1h, 2d)\n";
    return 2;
  }
  auto db = open_store(config_path);
  if (!db) return 1;
  store::Ban ban{endpoint->address_string(), base::unix_now() + *seconds, 1,
                 "banned by the admin"};
  if (auto r = db->put_ban(ban); !r) {
    std::cerr << "sipwarden: " << r.error() << "\n";
    return 1;
  }
  std::cout << "banned " << ban.address << " until " << when(ban.until) << "\n";
  return 0;
}

int ban_remove(const std::string& config_path, const std::string& address) {
  const auto endpoint = transport::Endpoint::from_string(address);
  if (!endpoint) {
    std::cerr << "sipwarden: " << address << ": not an IPv4 or IPv6 address\n";
    return 2;
  }
  auto db = open_store(config_path);
  if (!db) return 1;
  auto r = db->remove_ban(endpoint->address_string());
  if (!r) {
    std::cerr << "sipwarden: " << r.error() << "\n";
    return 1;
  }
  if (!*r) {
    std::cerr << "sipwarden: " << endpoint->address_string() << " is not banned\n";
    return 1;
  }
  std::cout << "lifted the ban on " << endpoint->address_string() << "\n";
  return 0;
}

}  // namespace app
