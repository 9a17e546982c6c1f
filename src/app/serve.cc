#include "app/serve.h"

#ifdef SIPWARDEN_MIMALLOC
#include <mimalloc.h>
#endif
#include <ifaddrs.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "auth/challenge.h"
#include "auth/digest.h"
#include "auth/nonce.h"
#include "base/clock.h"
#include "registrar/location.h"
#include "registrar/registrar.h"
#include "registrar/subscribers.h"
#include "store/store.h"
#include "config/config.h"
#include "proxy/dial_plan.h"
#include "proxy/dialogs.h"
#include "proxy/proxy.h"
#include "proxy/route_token.h"
#include "shield/call_limits.h"
#include "router/router.h"
#include "shield/shield.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"
#include "transport/tls_context.h"
#include "transport/transport.h"
#include "txn/transaction_layer.h"

namespace app {
namespace {

using Clock = std::chrono::steady_clock;

// mimalloc (the release build's allocator, 2.0) gives a freed run of pages back to the system
// only once its decommit delay has passed and the thread that owns it frees or allocates pages
// again. A worker that goes quiet after a burst never does: after 5,000 TLS connections had
// closed the server kept 50 MiB of freed memory for good (docs/performance.md, "Memory after
// a burst of TLS connections"). With no delay the pages go back when they are freed, at the
// cost of a few dozen madvise calls in 15 s of 2,000 calls/s or of 5,000 REGISTER/s. An
// operator's MIMALLOC_DECOMMIT_DELAY is left alone.
void tune_allocator() {
#ifdef SIPWARDEN_MIMALLOC
  if (std::getenv("MIMALLOC_DECOMMIT_DELAY") == nullptr) mi_option_set(mi_option_decommit_delay, 0);
#endif
}

// Each TCP or TLS connection holds a file descriptor. The usual soft limit (1,024) is far
// below the default max_connections (10,000): raise it to what max_connections needs, as far as
// the hard limit allows, and say so when even that is short (past the limit, accepts fail and
// wait: transport.cc).
void raise_file_limit(std::size_t max_connections) {
  constexpr rlim_t kOtherFiles = 256;  // sockets of the listeners, the store's files, eventfds
  const rlim_t want = static_cast<rlim_t>(max_connections) + kOtherFiles;
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < want) {
    const rlim_t raised = r.rlim_max == RLIM_INFINITY ? want : std::min(want, r.rlim_max);
    if (raised > r.rlim_cur) {
      rlimit n = r;
      n.rlim_cur = raised;
      if (setrlimit(RLIMIT_NOFILE, &n) == 0) r = n;
    }
  }
  if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < want) {
    spdlog::warn("event=file_limit_low limit={} needed={} reason=\"[connections] "
                 "max_connections = {} needs that many open files\" action=\"raise the hard "
                 "limit (LimitNOFILE= in the systemd unit, ulimit -Hn), or lower "
                 "max_connections\"",
                 r.rlim_cur, want, max_connections);
  }
}

// A burst leaves tens of megabytes of ended transactions (each kept 64*T1) free among the
// long-lived bindings. glibc's malloc (sanitizer builds) holds them until malloc_trim;
// mimalloc gives them back as they are freed (tune_allocator).
void release_free_heap() {
#ifndef SIPWARDEN_MIMALLOC
  malloc_trim(0);
#endif
}

const char* allocator_name() {
#ifdef SIPWARDEN_MIMALLOC
  return "mimalloc";
#else
  return "glibc";
#endif
}

base::Result<config::Config> load(const std::string& path) {
  if (path.empty()) return config::defaults();
  return config::load_file(path);
}

// Logs go to stdout as one line per event: time, level, then key=value pairs.
void setup_logging(const std::string& level) {
  auto logger = spdlog::stdout_logger_mt("sipwarden");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ level=%l %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

// Every host name or address that means "this server" in a Request-URI (like Kamailio's
// `myself`): the domain, the host name, loopback, and the addresses we listen on — for a
// wildcard listener, every address of every interface.
std::vector<std::string> local_hosts(const config::Config& cfg) {
  std::vector<std::string> hosts = {cfg.domain, "localhost", "127.0.0.1", "::1"};
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0) hosts.emplace_back(name);
  bool wildcard = false;
  for (const config::Listen& l : cfg.listen) {
    if (l.address == "0.0.0.0" || l.address == "::") {
      wildcard = true;
    } else {
      hosts.push_back(l.address);
    }
  }
  ifaddrs* list = nullptr;
  if (wildcard && ::getifaddrs(&list) == 0) {
    for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
      if (i->ifa_addr == nullptr) continue;
      char buf[64] = {};
      if (i->ifa_addr->sa_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
      } else if (i->ifa_addr->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf,
                  sizeof buf);
      } else {
        continue;
      }
      hosts.emplace_back(buf);
    }
    ::freeifaddrs(list);
  }
  return hosts;
}

// The TLS context new connections get; SIGHUP replaces it, live connections keep theirs.
class TlsHolder {
 public:
  explicit TlsHolder(transport::TlsSettings settings) : settings_(std::move(settings)) {}

  // Loads (or generates) the certificate; on failure keeps the previous context.
  base::Result<void> load() {
    auto loaded = transport::load_tls_server(settings_, std::chrono::system_clock::now());
    if (!loaded) return loaded.error();
    for (const std::string& w : loaded->warnings) spdlog::warn("event=tls_warning message=\"{}\"", w);
    const auto& cert = loaded->certificate;
    spdlog::info("event=tls_certificate file=\"{}\" subject=\"{}\" key=\"{} {}\" signature={} "
                 "sha256={}",
                 cert.certificate_file.string(), cert.subject, cert.key_type, cert.key_bits,
                 cert.signature_algorithm, cert.sha256_fingerprint);
    std::lock_guard lock(mu_);
    server_ = std::move(*loaded);
    return {};
  }

  std::shared_ptr<void> context() {
    std::lock_guard lock(mu_);
    if (!server_.context) return nullptr;
    // Aliasing pointer: shares ownership of the asio context, points at its SSL_CTX.
    return std::shared_ptr<void>(server_.context, server_.context->native_handle());
  }

  // Logs the expiry warning if the certificate is within the warning window.
  void warn_if_expiring(unsigned days) {
    std::lock_guard lock(mu_);
    if (auto w = transport::expiry_warning(server_.certificate, days,
                                           std::chrono::system_clock::now())) {
      spdlog::warn("event=tls_certificate_expiring message=\"{}\"", *w);
    }
  }

 private:
  const transport::TlsSettings settings_;
  std::mutex mu_;
  transport::TlsServer server_;
};

// A start-up failure: logged, and said on stderr too (the log may go nowhere yet). Returns the
// process exit code.
int startup_failed(const std::string& reason) {
  spdlog::critical("event=startup_failed reason=\"{}\"", reason);
  std::cerr << "sipwarden: " << reason << "\n";
  return 1;
}

std::size_t count_transactions(transport::Transport& t,
                               std::vector<std::unique_ptr<router::Router>>& routers) {
  std::size_t total = 0;
  for (unsigned i = 0; i < routers.size(); ++i) {
    std::promise<std::size_t> p;
    auto f = p.get_future();
    t.post(i, [&p, r = routers[i].get()] { p.set_value(r->transactions()); });
    if (f.wait_for(std::chrono::seconds(2)) == std::future_status::ready) total += f.get();
  }
  return total;
}

}  // namespace

int check_config(const std::string& config_path) {
  auto cfg = load(config_path);
  if (!cfg) {
    std::cerr << cfg.error() << "\n";
    return 1;
  }
  std::cout << config::to_toml(*cfg);
  return 0;
}

int serve(const std::string& config_path) {
  tune_allocator();
  auto loaded = load(config_path);
  if (!loaded) {
    std::cerr << "sipwarden: " << loaded.error() << "\n";
    return 1;
  }
  const config::Config cfg = *loaded;
  setup_logging(cfg.log_level);

  // Signals are taken by this thread with sigwait; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  ::chmod(cfg.data_dir.c_str(), 0700);
  auto secret = auth::load_or_create_secret(cfg.data_dir / "secret.key");
  if (!secret) return startup_failed(secret.error());

  bool wants_tls = false;
  for (const auto& l : cfg.listen) wants_tls = wants_tls || l.transport == config::Transport::kTls;
  transport::TlsSettings tls_settings;
  tls_settings.certificate = cfg.tls_certificate;
  tls_settings.private_key = cfg.tls_private_key;
  tls_settings.client_ca = cfg.tls_client_ca;
  tls_settings.data_dir = cfg.data_dir;
  tls_settings.verify_client = cfg.tls_verify_client;
  tls_settings.min_version = cfg.tls_min_version;
  tls_settings.expiry_warning_days = cfg.tls_expiry_warning_days;
  tls_settings.domain = cfg.domain;
  TlsHolder tls(tls_settings);
  if (wants_tls) {
    if (auto r = tls.load(); !r) return startup_failed(r.error());
    tls.warn_if_expiring(cfg.tls_expiry_warning_days);
  }

  raise_file_limit(cfg.max_connections);
  transport::StreamLimits limits;
  limits.max_connections = cfg.max_connections;
  limits.max_connections_per_source = cfg.max_connections_per_source;
  limits.idle_timeout = cfg.idle_timeout;
  limits.handshake_timeout = cfg.tls_handshake_timeout;
  limits.message_timeout = cfg.message_timeout;
  limits.max_buffered_bytes = cfg.max_buffered_bytes;
  limits.max_message_bytes = cfg.max_message_bytes;
  const unsigned workers =
      cfg.workers != 0 ? cfg.workers : std::max(1u, std::thread::hardware_concurrency());
  transport::Transport transport(workers, limits, [&tls] { return tls.context(); });
  transport.steer_responses(txn::TransactionLayer::kBranchPrefix);

  for (const config::Listen& l : cfg.listen) {
    auto r = transport.listen(l);
    if (!r) return startup_failed("cannot listen on " + r.error());
    if (!r->warning.empty()) spdlog::warn("event=listener_skipped reason=\"{}\"", r->warning);
  }

  // The store, and the in-memory state rebuilt from it.
  store::SqliteOptions store_options;
  store_options.group_window = cfg.commit_window;
  store_options.record_window = cfg.call_record_window;
  auto opened = store::open_sqlite((cfg.data_dir / "sipwarden.db").string(), store_options);
  if (!opened) return startup_failed(opened.error());
  std::unique_ptr<store::Store> db = std::move(*opened);
  registrar::SubscriberCache subscribers;
  registrar::Location location;
  std::uint64_t subscribers_version = 0;
  const auto reload_subscribers = [&](bool initial) -> bool {
    auto version = db->subscribers_version();
    if (!version || (!initial && *version == subscribers_version)) return version.ok();
    auto all = db->list_subscribers();
    if (!all) {
      spdlog::error("event=store_error reason=\"{}\"", all.error());
      return false;
    }
    subscribers_version = *version;
    for (const std::string& gone : subscribers.replace(*all)) {
      location.remove_user(gone);  // the store dropped their bindings with them
      spdlog::info("event=subscriber_removed user={}", gone);
    }
    if (!initial) spdlog::info("event=subscribers_reloaded count={}", subscribers.size());
    return true;
  };
  if (!reload_subscribers(true)) return startup_failed("cannot read the subscribers");
  auto bindings = db->load_bindings(base::unix_now());
  if (!bindings) return startup_failed(bindings.error());
  location.load(*bindings);
  spdlog::info("event=store_opened subscribers={} bindings={} commit_window_ms={} "
               "call_record_window_ms={}",
               subscribers.size(), bindings->size(), cfg.commit_window.count(),
               cfg.call_record_window.count());

  // The shield: events to two files, bans from the store (with their escalation history).
  const std::filesystem::path events_json =
      cfg.events_json.empty() ? cfg.data_dir / "security-events.jsonl" : cfg.events_json;
  const std::filesystem::path events_text =
      cfg.events_text.empty() ? cfg.data_dir / "security-events.log" : cfg.events_text;
  auto events = shield::SecurityEvents::open(events_json.string(), events_text.string());
  if (!events) return startup_failed(events.error());
  shield::Settings shield_settings;
  const auto networks = [](const std::vector<std::string>& cidrs) {
    std::vector<shield::Network> list;
    for (const std::string& n : cidrs) list.push_back(*shield::Network::parse(n));  // validated
    return shield::NetworkList(std::move(list));
  };
  shield_settings.allow = networks(cfg.shield_allow);
  shield_settings.deny = networks(cfg.shield_deny);
  shield_settings.packets = {cfg.packet_rate, cfg.packet_burst};
  shield_settings.registers = {cfg.register_rate, cfg.register_burst};
  shield_settings.invites = {cfg.invite_rate, cfg.invite_burst};
  shield_settings.others = {cfg.other_rate, cfg.other_burst};
  shield_settings.global = {cfg.global_rate, cfg.global_burst};
  shield_settings.failures_per_source = cfg.failures_per_source;
  shield_settings.failures_per_user = cfg.failures_per_user;
  shield_settings.probed_users = cfg.probed_users;
  shield_settings.window = cfg.shield_window;
  shield_settings.ban_durations.clear();
  for (std::int64_t d : cfg.ban_durations_s) shield_settings.ban_durations.emplace_back(d);
  shield_settings.scanner_agents = cfg.scanner_user_agents;
  shield::Shield guard(shield_settings, **events, base::system_now);
  const auto to_entries = [](const std::vector<store::Ban>& list) {
    std::vector<shield::BanEntry> out;
    for (const store::Ban& b : list) {
      auto address = transport::Endpoint::from_string(b.address);
      if (!address) continue;
      out.push_back({*address, b.until, b.level, b.reason});
    }
    return out;
  };
  // Bans made by the server go to the store; bans changed with `sipwarden ban` come back.
  const auto sync_bans = [&] {
    for (const shield::BanEntry& b : guard.take_new_bans()) {
      store::Ban ban{b.address.address_string(), b.until, b.level, b.reason};
      if (auto r = db->put_ban(ban); !r) spdlog::error("event=store_error reason=\"{}\"", r.error());
    }
    auto active = db->list_bans(base::unix_now());
    auto history = db->list_bans(0);
    if (active && history) guard.load_bans(to_entries(*active), to_entries(*history));
  };
  sync_bans();
  transport.set_admission([&guard](const transport::Endpoint& source) {
    return !guard.is_banned(source) &&
           (guard.settings().deny.empty() || !guard.settings().deny.contains(source)) &&
           (guard.settings().allow.empty() || guard.settings().allow.contains(source));
  });

  const auth::NonceFactory nonces(*secret, cfg.nonce_lifetime);
  std::vector<auth::Algorithm> algorithms;
  for (const std::string& a : cfg.auth_algorithms) {
    algorithms.push_back(a == "MD5" ? auth::Algorithm::kMd5 : auth::Algorithm::kSha256);
  }
  const auth::Challenger challenger(nonces, *secret, algorithms);
  auth::DigestVerifier verifier(nonces, cfg.domain);
  registrar::Settings registrar_settings;
  registrar_settings.domain = cfg.domain;
  registrar_settings.local_domains = local_hosts(cfg);
  registrar_settings.min_expires = cfg.min_expires;
  registrar_settings.max_expires = cfg.max_expires;
  registrar_settings.default_expires = cfg.default_expires;
  registrar_settings.max_contacts = cfg.max_contacts;
  registrar_settings.shield = &guard;
  std::unordered_map<std::string, shield::NetworkList> user_networks;
  for (const config::UserPolicy& u : cfg.users) {
    if (!u.allowed_networks.empty()) user_networks[u.name] = networks(u.allowed_networks);
  }
  registrar_settings.user_networks = user_networks;
  registrar::Registrar registrar(registrar_settings, *db, location, subscribers, verifier,
                                 challenger, base::system_now);

  router::Shared shared;
  shared.domain = cfg.domain;
  shared.local_hosts = local_hosts(cfg);
  shared.parse.limits.max_message_bytes = cfg.max_message_bytes;
  shared.parse.limits.max_headers = cfg.max_headers;
  shared.parse.limits.max_header_line = cfg.max_header_line;
  shared.parse.limits.max_uri_length = cfg.max_uri_length;
  shared.timers = txn::Timers{cfg.t1, cfg.t2, cfg.t4};
  shared.challenger = &challenger;
  shared.registrar = &registrar;
  shared.shield = &guard;
  shared.post = [&transport](unsigned index, std::function<void()> task) {
    transport.post(index, std::move(task));
  };

  // The proxy: dial plan and trunks, limits, dialogs, and what every worker's Proxy shares.
  auto dial_plan = proxy::DialPlan::build(cfg.trunks);
  if (!dial_plan) return startup_failed(dial_plan.error());
  for (const config::Trunk& t : cfg.trunks) {
    if (t.transport != config::Transport::kUdp) {
      return startup_failed("trunk \"" + t.name + "\": transport " +
                            std::string(config::to_string(t.transport)) +
                            ": only udp trunks are supported (outbound TCP/TLS connections are "
                            "not implemented yet)");
    }
  }
  shield::CallLimits call_limits(base::steady_now);
  proxy::DialogTable dialogs(db.get(), &call_limits);
  const proxy::RouteSigner signer(*secret);
  proxy::Shared proxy_shared;
  proxy_shared.domain = cfg.domain;
  proxy_shared.local_hosts = shared.local_hosts;
  proxy_shared.record_route_host = cfg.record_route_host;
  proxy_shared.calls = cfg.calls;
  for (const config::UserPolicy& u : cfg.users) proxy_shared.users[u.name] = u;
  proxy_shared.user_networks = user_networks;
  proxy_shared.ring_timeout = cfg.ring_timeout;
  for (const auto& l : transport.listeners()) {
    proxy::Listener pl;
    pl.id = l.id;
    pl.protocol = l.transport == config::Transport::kUdp   ? transport::Protocol::kUdp
                  : l.transport == config::Transport::kTcp ? transport::Protocol::kTcp
                                                           : transport::Protocol::kTls;
    pl.local = l.local;
    proxy_shared.listeners.push_back(pl);
  }
  proxy_shared.dial_plan = &*dial_plan;
  proxy_shared.location = &location;
  proxy_shared.subscribers = &subscribers;
  proxy_shared.verifier = &verifier;
  proxy_shared.shield = &guard;
  proxy_shared.events = events->get();
  proxy_shared.limits = &call_limits;
  proxy_shared.dialogs = &dialogs;
  proxy_shared.signer = &signer;
  proxy_shared.parse = shared.parse;
  shared.proxy = &proxy_shared;
  std::vector<std::unique_ptr<router::Router>> routers;
  for (unsigned i = 0; i < workers; ++i) {
    routers.push_back(std::make_unique<router::Router>(
        static_cast<std::uint16_t>(i), shared,
        [&transport](const transport::Flow& f, std::string_view b) { transport.send(f, b); },
        transport.timers(i)));
    transport.set_receiver(i, routers.back().get());
  }
  for (const auto& r : routers) shared.routers.push_back(r.get());
  transport.start();
  for (const auto& [listen, local] : transport.bound()) {
    spdlog::info("event=listening transport={} address={}", config::to_string(listen.transport),
                 local.to_string());
  }
  spdlog::info("event=started version=0.1.0 workers={} domain={} config=\"{}\" allocator={}",
               workers, cfg.domain, cfg.source, allocator_name());

  // Wait for signals. Once a second: expire bindings, pick up subscriber changes made with
  // `sipwarden user ...`; every 10 s hand freed heap back to the system; once a minute purge
  // expired bindings from the store; once a day warn about the certificate's expiry.
  Clock::time_point next_expiry_check = Clock::now() + std::chrono::hours(24);
  Clock::time_point next_purge = Clock::now() + std::chrono::minutes(1);
  Clock::time_point next_trim = Clock::now() + std::chrono::seconds(10);
  while (true) {
    timespec wait{1, 0};
    const int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig == SIGHUP) {
      if (!wants_tls) continue;
      if (auto r = tls.load(); r) {
        spdlog::info("event=tls_reloaded");
      } else {
        spdlog::error("event=tls_reload_failed reason=\"{}\" action=\"keeping the old "
                      "certificate\"",
                      r.error());
      }
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) break;
    location.expire(base::unix_now());
    // Calls past their maximum duration: ended by the worker that forwarded them.
    for (proxy::Dialog& d : dialogs.take_due(base::unix_now())) {
      const unsigned w = d.worker < routers.size() ? d.worker : 0;
      transport.post(w, [r = routers[w].get(), d = std::move(d)] { r->end_call(d); });
    }
    reload_subscribers(false);
    sync_bans();
    if (Clock::now() >= next_trim) {
      release_free_heap();
      next_trim = Clock::now() + std::chrono::seconds(10);
    }
    if (Clock::now() >= next_purge) {
      if (auto r = db->purge_expired(base::unix_now()); !r) {
        spdlog::error("event=store_error reason=\"{}\"", r.error());
      }
      next_purge = Clock::now() + std::chrono::minutes(1);
    }
    if (wants_tls && Clock::now() >= next_expiry_check) {
      tls.warn_if_expiring(cfg.tls_expiry_warning_days);
      next_expiry_check = Clock::now() + std::chrono::hours(24);
    }
  }

  // Graceful stop: refuse new work, let open transactions finish within the grace period.
  spdlog::info("event=stopping grace_ms={}", cfg.shutdown_grace.count());
  shared.draining = true;
  transport.stop_listening();
  const Clock::time_point deadline = Clock::now() + cfg.shutdown_grace;
  std::size_t open = count_transactions(transport, routers);
  while (open > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    open = count_transactions(transport, routers);
  }
  transport.stop();
  db->flush();  // every acknowledged binding is durable already; this drains the rest
  spdlog::info("event=stopped open_transactions={}", open);
  return 0;
}

}  // namespace app
