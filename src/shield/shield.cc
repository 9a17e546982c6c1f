#include "shield/shield.h"

#include <algorithm>
#include <array>
#include <unordered_map>

namespace shield {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

bool is_dialog_creating(sip::Method m) {
  return m == sip::Method::kInvite || m == sip::Method::kSubscribe || m == sip::Method::kRefer ||
         m == sip::Method::kMessage;
}

constexpr std::size_t kMaxTrackedUsers = 256;  // per source: past the thresholds anyway
// A challenged user counts as probed once it has not authenticated for this long: phones
// answer a challenge within a second, so a whole office booting behind one NAT is not a scan.
constexpr std::int64_t kProbeGraceMs = 5000;

}  // namespace

Shield::Shield(Settings settings, SecurityEvents& events, Clock clock)
    : settings_(std::move(settings)), events_(events), clock_(std::move(clock)) {}

transport::Endpoint Shield::key_of(const transport::Endpoint& e) {
  transport::Endpoint k = e;
  k.port = 0;
  return k;
}

std::size_t Shield::shard_index(const transport::Endpoint& key) {
  return transport::EndpointHash{}(key) % kShards;
}
Shield::Shard& Shield::shard(const transport::Endpoint& key) {
  return shards_[shard_index(key)];
}
const Shield::Shard& Shield::shard(const transport::Endpoint& key) const {
  return shards_[shard_index(key)];
}

std::int64_t Shield::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_().time_since_epoch())
      .count();
}

bool Shield::take(Bucket& b, const Rate& rate, std::int64_t now_ms) {
  if (rate.per_second <= 0) return true;
  if (!b.initialised) {
    b.tokens = rate.burst;
    b.last_ms = now_ms;
    b.initialised = true;
  }
  const double elapsed = static_cast<double>(std::max<std::int64_t>(0, now_ms - b.last_ms));
  b.tokens = std::min(rate.burst, b.tokens + elapsed * rate.per_second / 1000.0);
  b.last_ms = now_ms;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

Shield::SourceState& Shield::state(Shard& s, const transport::Endpoint& key, std::int64_t now_s) {
  SourceState& st = s.sources[key];
  if (now_s - st.window_start >= settings_.window.count()) {
    st.window_start = now_s;
    st.failures = 0;
    st.failures_by_user.clear();
    st.challenged.clear();
  }
  return st;
}

void Shield::report(std::string_view type, const transport::Flow& flow, std::string_view user,
                    std::string_view reason, std::string_view action) {
  const std::string address = flow.remote.address_string();
  Event e;
  e.type = type;
  e.source = address;
  e.port = flow.remote.port;
  e.transport = transport::to_string(flow.protocol);
  e.user = user;
  e.reason = reason;
  e.action = action;
  events_.record(e, now_ms());
}

Verdict Shield::before_parse(const transport::Flow& flow) {
  const transport::Endpoint key = key_of(flow.remote);
  // Step 1: the lists. A denied or unlisted source is dropped without an event per packet
  // (that would be a log flood); the lists are the admin's own decision.
  if (!settings_.deny.empty() && settings_.deny.contains(key)) return Verdict::kDrop;
  if (!settings_.allow.empty() && !settings_.allow.contains(key)) return Verdict::kDrop;
  const std::int64_t ms = now_ms();
  Shard& s = shard(key);
  bool over = false;
  {
    std::lock_guard lock(s.mu);
    // Step 2: bans. Checked on every packet: one hash lookup.
    if (!s.bans.empty()) {
      auto it = s.bans.find(key);
      if (it != s.bans.end()) {
        if (it->second.until * 1000 > ms) return Verdict::kDrop;
        s.bans.erase(it);
      }
    }
    // Step 3: the per-source packet rate.
    SourceState& st = state(s, key, ms / 1000);
    if (!take(st.packets, settings_.packets, ms)) {
      over = ms - st.last_rate_event >= 10'000;
      if (over) st.last_rate_event = ms;
      if (!over) return Verdict::kDrop;
    }
  }
  if (over) {
    report("rate_limited", flow, "", "packets per second over the limit", "dropped");
    return Verdict::kDrop;
  }
  return Verdict::kPass;
}

Verdict Shield::after_parse(const sip::Message& message, const transport::Flow& flow) {
  if (message.is_response()) return Verdict::kPass;  // matched to our own transactions later
  const transport::Endpoint key = key_of(flow.remote);
  // Scanner signatures: banned at the first packet, and never answered.
  if (!settings_.scanner_agents.empty() && !message.user_agent.empty()) {
    const std::string agent = lower(message.user_agent);
    for (const std::string& sig : settings_.scanner_agents) {
      if (agent.find(sig) == std::string::npos) continue;
      const std::string reason = "scanner User-Agent: " + std::string(message.user_agent);
      ban(key, std::chrono::seconds(0), reason, &flow);
      return Verdict::kDrop;
    }
  }
  const std::int64_t ms = now_ms();
  const char* over = nullptr;
  {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    SourceState& st = state(s, key, ms / 1000);
    Bucket* bucket = &st.others;
    const Rate* rate = &settings_.others;
    const char* what = "requests per second over the limit";
    if (message.method == sip::Method::kRegister) {
      bucket = &st.registers;
      rate = &settings_.registers;
      what = "REGISTER per second over the limit";
    } else if (is_dialog_creating(message.method)) {
      bucket = &st.invites;
      rate = &settings_.invites;
      what = "INVITE per second over the limit";
    }
    if (!take(*bucket, *rate, ms)) {
      if (ms - st.last_rate_event < 10'000) return Verdict::kDrop;  // one event per 10 s
      st.last_rate_event = ms;
      over = what;
    }
  }
  if (over == nullptr && settings_.global.per_second > 0) {
    std::lock_guard lock(global_mu_);
    if (!take(global_, settings_.global, ms)) return Verdict::kDrop;
  }
  if (over != nullptr) {
    report("rate_limited", flow, "", over, "dropped");
    return Verdict::kDrop;
  }
  return Verdict::kPass;
}

void Shield::auth_failed(const transport::Flow& flow, std::string_view user,
                         std::string_view reason, std::string_view action) {
  const transport::Endpoint key = key_of(flow.remote);
  const std::int64_t now_s = now_ms() / 1000;
  bool ban_it = false;
  std::string why;
  {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    SourceState& st = state(s, key, now_s);
    ++st.failures;
    unsigned by_user = 0;
    if (st.failures_by_user.size() < kMaxTrackedUsers || st.failures_by_user.count(std::string(user))) {
      by_user = ++st.failures_by_user[std::string(user)];
    }
    if (st.failures >= settings_.failures_per_source) {
      ban_it = true;
      why = std::to_string(st.failures) + " failed authentications";
    } else if (settings_.failures_per_user > 0 && by_user >= settings_.failures_per_user) {
      ban_it = true;
      why = std::to_string(by_user) + " failed authentications for one user";
    }
  }
  report("auth_failed", flow, user, reason, ban_it ? "banned" : action);
  if (ban_it) ban(key, std::chrono::seconds(0), why, &flow);
}

void Shield::user_challenged(const transport::Flow& flow, std::string_view user) {
  if (settings_.probed_users == 0 || user.empty()) return;
  const transport::Endpoint key = key_of(flow.remote);
  bool ban_it = false;
  const std::int64_t ms = now_ms();
  {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    SourceState& st = state(s, key, ms / 1000);
    if (st.challenged.size() < kMaxTrackedUsers) {
      st.challenged.emplace(user, SourceState::Challenge{ms, false});
    }
    const auto probed = static_cast<unsigned>(
        std::count_if(st.challenged.begin(), st.challenged.end(), [&](const auto& e) {
          return !e.second.succeeded && ms - e.second.at_ms >= kProbeGraceMs;
        }));
    ban_it = probed >= settings_.probed_users;
  }
  if (ban_it) {
    ban(key, std::chrono::seconds(0),
        "probed " + std::to_string(settings_.probed_users) +
            " user names without authenticating (enumeration)",
        &flow);
  }
}

void Shield::auth_succeeded(const transport::Flow& flow, std::string_view user) {
  const transport::Endpoint key = key_of(flow.remote);
  Shard& s = shard(key);
  std::lock_guard lock(s.mu);
  auto it = s.sources.find(key);
  if (it == s.sources.end()) return;
  auto c = it->second.challenged.find(std::string(user));
  if (c != it->second.challenged.end()) c->second.succeeded = true;
}

BanEntry Shield::ban_locked(Shard& s, const transport::Endpoint& key, std::chrono::seconds duration,
                            std::string_view reason) {
  // Escalation: each ban of the same source is one step longer (10 min, 1 h, 24 h by default).
  int& level = s.levels[key];
  level += 1;
  if (duration.count() == 0) {
    const std::size_t step =
        std::min<std::size_t>(static_cast<std::size_t>(level - 1), settings_.ban_durations.size() - 1);
    duration = settings_.ban_durations[step];
  }
  BanEntry e;
  e.address = key;
  e.until = (now_ms() + 999) / 1000 + duration.count();  // rounded up: never shorter than asked
  e.level = level;
  e.reason = std::string(reason);
  s.bans[key] = e;
  s.sources.erase(key);  // start clean when the ban ends
  return e;
}

BanEntry Shield::ban(const transport::Endpoint& address, std::chrono::seconds for_duration,
                     std::string_view reason, const transport::Flow* flow) {
  const transport::Endpoint key = key_of(address);
  BanEntry e;
  {
    // Held across both steps so that load_bans() sees a ban either in the shard and the
    // pending list, or not at all.
    std::lock_guard pending(new_bans_mu_);
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    auto it = s.bans.find(key);
    if (it != s.bans.end() && it->second.until * 1000 > now_ms() && for_duration.count() == 0) {
      return it->second;  // already banned (several workers may see the same flood)
    }
    e = ban_locked(s, key, for_duration, reason);
    new_bans_.push_back(e);
  }
  transport::Flow f;
  if (flow != nullptr) {
    f = *flow;
  } else {
    f.remote = key;
  }
  const std::string why = e.reason + " (ban level " + std::to_string(e.level) + ", " +
                          std::to_string(e.until - (now_ms() + 999) / 1000) + " s)";
  report("banned", f, "", why, "banned");
  return e;
}

bool Shield::unban(const transport::Endpoint& address) {
  const transport::Endpoint key = key_of(address);
  Shard& s = shard(key);
  std::lock_guard lock(s.mu);
  s.levels.erase(key);
  return s.bans.erase(key) > 0;
}

bool Shield::is_banned(const transport::Endpoint& address) const {
  const transport::Endpoint key = key_of(address);
  const Shard& s = shard(key);
  std::lock_guard lock(s.mu);
  auto it = s.bans.find(key);
  return it != s.bans.end() && it->second.until * 1000 > now_ms();
}

std::vector<BanEntry> Shield::bans() const {
  std::vector<BanEntry> out;
  const std::int64_t now_s = now_ms() / 1000;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [key, e] : s.bans) {
      if (e.until > now_s) out.push_back(e);
    }
  }
  return out;
}

void Shield::load_bans(const std::vector<BanEntry>& active, const std::vector<BanEntry>& history) {
  // The store is the truth (the server persists its own bans before reloading): a ban the
  // admin lifted is forgiven, escalation included. Bans made since the store was read and
  // not yet persisted are put back below. The new lists are built aside and swapped in, one
  // shard at a time: a source is never seen unbanned while its ban is being reloaded.
  struct Lists {
    std::unordered_map<transport::Endpoint, BanEntry, transport::EndpointHash> bans;
    std::unordered_map<transport::Endpoint, int, transport::EndpointHash> levels;
  };
  std::array<Lists, kShards> fresh;
  const auto lists_of = [&](const transport::Endpoint& key) -> Lists& {
    return fresh[shard_index(key)];
  };
  std::lock_guard pending(new_bans_mu_);  // no ban is made until the swap is over
  for (const BanEntry& e : history) {
    const transport::Endpoint key = key_of(e.address);
    int& level = lists_of(key).levels[key];
    level = std::max(level, e.level);
  }
  const auto apply = [&](const BanEntry& e) {
    const transport::Endpoint key = key_of(e.address);
    Lists& l = lists_of(key);
    l.bans[key] = e;
    int& level = l.levels[key];
    level = std::max(level, e.level);
  };
  for (const BanEntry& e : active) apply(e);
  for (const BanEntry& e : new_bans_) apply(e);
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    std::lock_guard lock(shards_[i].mu);
    shards_[i].bans.swap(fresh[i].bans);
    shards_[i].levels.swap(fresh[i].levels);
  }
}

std::vector<BanEntry> Shield::take_new_bans() {
  std::lock_guard lock(new_bans_mu_);
  std::vector<BanEntry> out;
  out.swap(new_bans_);
  return out;
}

}  // namespace shield
