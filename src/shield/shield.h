// The shield: the edge guard in front of everything else. A chain of small checks, cheapest
// first (../shared/STYLE.md), called from every worker; thread-safe, sharded by source.
//
//   before_parse(source):  deny/allow lists → bans → per-source packet rate
//   after_parse(message):  scanner signatures → per-source, per-method-class rate → global rate
//   feedback:              auth_failed / auth_succeeded / user_probed → bans that escalate
//
// A dropped message gets no answer at all: an attacker learns nothing and costs us a lookup.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "shield/events.h"
#include "shield/network.h"
#include "sip/message.h"
#include "transport/endpoint.h"

namespace shield {

struct Rate {
  double per_second = 0;  // tokens added per second; 0 disables the limit
  double burst = 0;       // bucket size
};

struct Settings {
  NetworkList allow;  // when not empty, only these sources are served
  NetworkList deny;   // never served (checked first)
  // Rates per source address. The defaults let an office of 50 phones behind one NAT boot,
  // register and call at once.
  Rate packets{500, 2000};    // every datagram / stream message, before parsing
  Rate registers{50, 300};    // REGISTER
  Rate invites{20, 100};      // INVITE (and other dialog-creating requests)
  Rate others{200, 1000};     // everything else
  Rate global{0, 0};          // all sources together; 0 = off
  // Bans: failed authentications (wrong password and unknown user alike) within the window.
  unsigned failures_per_source = 10;
  unsigned failures_per_user = 5;   // from one source against one user
  unsigned probed_users = 20;       // distinct users challenged without success (svwar)
  std::chrono::seconds window{60};
  std::vector<std::chrono::seconds> ban_durations = {std::chrono::minutes(10),
                                                     std::chrono::hours(1),
                                                     std::chrono::hours(24)};
  // Case-insensitive substrings of User-Agent/From display that mark a scanner.
  std::vector<std::string> scanner_agents = {"friendly-scanner", "sipvicious", "sipcli",
                                             "vaxsipuseragent", "iwar", "sundayddr", "sipscan",
                                             "sip-scan", "pplsip", "smap", "sipsak-scan"};
};

enum class Verdict { kPass, kDrop };

struct BanEntry {
  transport::Endpoint address;  // port 0
  std::int64_t until = 0;       // unix seconds
  int level = 1;
  std::string reason;
};

class Shield {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  Shield(Settings settings, SecurityEvents& events, Clock clock);

  // The cheapest checks, on the source address alone (no parsing has happened).
  Verdict before_parse(const transport::Flow& flow);
  // Checks that need the parsed message.
  Verdict after_parse(const sip::Message& message, const transport::Flow& flow);

  // Authentication outcomes for `user` (the name the client claimed) from this flow.
  // `action` is what the server did with the request ("challenged", "refused").
  void auth_failed(const transport::Flow& flow, std::string_view user, std::string_view reason,
                   std::string_view action = "challenged");
  // A request for `user` got a challenge (no credentials yet): counted per source so that a
  // source naming many users without ever authenticating (enumeration) is banned.
  void user_challenged(const transport::Flow& flow, std::string_view user);
  void auth_succeeded(const transport::Flow& flow, std::string_view user);

  // Bans. `for_duration` 0 means the next escalation step.
  BanEntry ban(const transport::Endpoint& address, std::chrono::seconds for_duration,
               std::string_view reason, const transport::Flow* flow = nullptr);
  bool unban(const transport::Endpoint& address);
  bool is_banned(const transport::Endpoint& address) const;
  std::vector<BanEntry> bans() const;
  // Replaces the ban list (start-up and `sipwarden ban` changes made from another process);
  // escalation levels of expired bans are kept in `history`. Bans made here and not yet
  // taken by take_new_bans() (so not yet in the store) are kept.
  void load_bans(const std::vector<BanEntry>& active, const std::vector<BanEntry>& history);
  // Bans made since the last call (for the store). Called from one thread.
  std::vector<BanEntry> take_new_bans();

  const Settings& settings() const { return settings_; }

 private:
  struct Bucket {
    double tokens = 0;
    std::int64_t last_ms = 0;
    bool initialised = false;
  };
  struct SourceState {
    Bucket packets, registers, invites, others;
    std::int64_t window_start = 0;
    unsigned failures = 0;
    std::unordered_map<std::string, unsigned> failures_by_user;
    struct Challenge {
      std::int64_t at_ms = 0;
      bool succeeded = false;
    };
    std::unordered_map<std::string, Challenge> challenged;  // user → when, and whether it
                                                             // authenticated since
    std::int64_t last_rate_event = 0;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<transport::Endpoint, SourceState, transport::EndpointHash> sources;
    std::unordered_map<transport::Endpoint, BanEntry, transport::EndpointHash> bans;
    std::unordered_map<transport::Endpoint, int, transport::EndpointHash> levels;  // history
  };

  static std::size_t shard_index(const transport::Endpoint& key);
  Shard& shard(const transport::Endpoint& key);
  const Shard& shard(const transport::Endpoint& key) const;
  static transport::Endpoint key_of(const transport::Endpoint& e);
  std::int64_t now_ms() const;
  static bool take(Bucket& b, const Rate& rate, std::int64_t now_ms);
  SourceState& state(Shard& s, const transport::Endpoint& key, std::int64_t now_s);
  BanEntry ban_locked(Shard& s, const transport::Endpoint& key, std::chrono::seconds duration,
                      std::string_view reason);
  void report(std::string_view type, const transport::Flow& flow, std::string_view user,
              std::string_view reason, std::string_view action);

  const Settings settings_;
  SecurityEvents& events_;
  const Clock clock_;
  static constexpr std::size_t kShards = 32;
  std::array<Shard, kShards> shards_;
  Bucket global_;
  std::mutex global_mu_;
  std::mutex new_bans_mu_;
  std::vector<BanEntry> new_bans_;
};

}  // namespace shield
