// tlsload: REGISTER with digest auth over many persistent TLS connections, or idle TLS
// connections held open (to measure a server's memory per connection).
//
// The harness's own TLS load generator (Debian's SIPp has no TLS); see docs/performance.md,
// "Load generators". C++20 and OpenSSL only; each thread runs one epoll loop over its share
// of the connections.
//
// REGISTER mode (default): opens -c connections to HOST:PORT (at most -H handshakes at once,
// the certificate is not verified), then starts registrations at -r per second (0: as fast as
// connections free up), one at a time per connection, for users taken in turn from the CSV
// (name,password: the file `sipwarden user import` takes). Each registration is
//   REGISTER -> 401 (WWW-Authenticate: Digest, MD5, qop=auth) -> REGISTER with Authorization
//   (cnonce, nc=00000001) -> 200
// and counts as ok only on that 200. At most -n registrations start, none after -t seconds;
// one without its 200 within -T ms fails (timeout). Prints one JSON object on stdout:
// connections (open, handshake/connect failures, closed by the server, handshake latency),
// registrations (started, ok, failed by cause, final status codes), rate_ok (200s per second,
// first start to last 200), rate_started (the pace kept: starts per second, first to last
// start, over start_span_s), and latency_us {median, p90, p99, max} from the first REGISTER
// to the 200. On stderr, "N of C connections open" once they are and "load ended" once the
// last registration is done: marks for a caller measuring the server in between.
//
// Idle mode (--idle S): opens the connections (with --ping, one OPTIONS each, answered, so the
// server has served them), holds them S seconds, closes them. With --mem-pid PID it reads
// Rss and Pss (summed over PID and its descendants: Kamailio's processes) before the first
// connection and once every connection is open and has settled 2 s, and reports the growth
// per connection.
//
//   c++ -std=c++20 -O2 -Wall -Wextra -Werror -o tlsload bench/tlsload.cc -lssl -lcrypto -pthread
//   ./tlsload -u users.csv [-c 1000] [-r 500] [-n 10000] [-t 10] [-T 5000] [-j 1] [-H 64]
//             [-d DOMAIN] HOST:PORT
//   ./tlsload --idle 30 [--ping] [--mem-pid PID] [-c 1000] HOST:PORT
//
// Exit status: 0 when the run completed (whatever failed), 2 on a usage error, 1 when nothing
// could be set up (users file, TLS context).

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
      .count();
}

struct User {
  std::string name;
  std::string password;
};

struct Options {
  std::string host;
  int port = 5061;
  std::string domain;  // request-URI, From and To host; default: HOST
  std::string users_path;
  int connections = 1000;
  double rate = 0;  // registrations per second over all connections; 0: as fast as possible
  uint64_t total = 10000;
  double seconds = 10;
  int timeout_ms = 5000;
  int threads = 1;
  int max_handshakes = 64;  // handshakes in progress at once (per thread)
  int connect_timeout_ms = 10000;
  int idle_s = 0;  // > 0: idle mode
  bool ping = false;
  int mem_pid = 0;
};

// ---------------------------------------------------------------------------------------------
// Digest (RFC 2617 / RFC 8760 with MD5, qop=auth)

std::string md5_hex(std::string_view s) {
  static const EVP_MD* md = EVP_md5();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), out, &n, md, nullptr);
  static const char* hex = "0123456789abcdef";
  std::string h(2 * n, '0');
  for (unsigned i = 0; i < n; i++) h[2 * i] = hex[out[i] >> 4], h[2 * i + 1] = hex[out[i] & 15];
  return h;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The parameters of one Digest challenge: `Digest realm="r", nonce="n", qop="auth", ...`.
struct Challenge {
  std::string realm, nonce, opaque, algorithm, qop;
  bool has_opaque = false;
};

std::optional<Challenge> parse_challenge(std::string_view v) {
  auto ws = [&] {
    while (!v.empty() && (v[0] == ' ' || v[0] == '\t')) v.remove_prefix(1);
  };
  ws();
  if (v.size() < 7 || !iequals(v.substr(0, 6), "Digest") || (v[6] != ' ' && v[6] != '\t'))
    return std::nullopt;
  v.remove_prefix(7);
  Challenge c;
  while (!v.empty()) {
    ws();
    size_t eq = v.find('=');
    if (eq == std::string_view::npos) break;
    std::string_view name = v.substr(0, eq);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    v.remove_prefix(eq + 1);
    ws();
    std::string value;
    if (!v.empty() && v[0] == '"') {
      size_t i = 1;
      for (; i < v.size() && v[i] != '"'; i++) {
        if (v[i] == '\\' && i + 1 < v.size()) i++;
        value.push_back(v[i]);
      }
      v.remove_prefix(std::min(v.size(), i + 1));
    } else {
      size_t e = v.find(',');
      value = std::string(v.substr(0, e));
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
      v.remove_prefix(e == std::string_view::npos ? v.size() : e);
    }
    ws();
    if (!v.empty() && v[0] == ',') v.remove_prefix(1);
    if (iequals(name, "realm"))
      c.realm = value;
    else if (iequals(name, "nonce"))
      c.nonce = value;
    else if (iequals(name, "opaque"))
      c.opaque = value, c.has_opaque = true;
    else if (iequals(name, "algorithm"))
      c.algorithm = value;
    else if (iequals(name, "qop"))
      c.qop = value;
  }
  if (c.nonce.empty()) return std::nullopt;
  return c;
}

// True when a qop list ("auth", "auth,auth-int") offers auth.
bool offers_auth(std::string_view qop) {
  while (!qop.empty()) {
    size_t e = qop.find(',');
    std::string_view t = qop.substr(0, e);
    while (!t.empty() && t[0] == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    if (iequals(t, "auth")) return true;
    qop.remove_prefix(e == std::string_view::npos ? qop.size() : e + 1);
  }
  return false;
}

// The Authorization header value answering `c` for REGISTER to `uri`.
std::string authorization(const Challenge& c, const User& u, const std::string& uri,
                          const std::string& cnonce) {
  const std::string ha1 = md5_hex(u.name + ":" + c.realm + ":" + u.password);
  const std::string ha2 = md5_hex("REGISTER:" + uri);
  const bool qop = offers_auth(c.qop);
  const std::string nc = "00000001";
  const std::string response =
      qop ? md5_hex(ha1 + ":" + c.nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2)
          : md5_hex(ha1 + ":" + c.nonce + ":" + ha2);
  std::string h = "Digest username=\"" + u.name + "\", realm=\"" + c.realm + "\", nonce=\"" +
                  c.nonce + "\", uri=\"" + uri + "\", response=\"" + response + "\", algorithm=MD5";
  if (c.has_opaque) h += ", opaque=\"" + c.opaque + "\"";
  if (qop) h += ", qop=auth, nc=" + nc + ", cnonce=\"" + cnonce + "\"";
  return h;
}

// ---------------------------------------------------------------------------------------------
// SIP over a stream: framing and the few header values looked at

struct Response {
  int code = 0;
  std::string call_id;
  uint32_t cseq = 0;
  std::vector<std::string> challenges;  // WWW-Authenticate (or Proxy-Authenticate) values
};

// Length of the first complete message in buf (leading CRLF keep-alives included), 0 if more
// bytes are needed, -1 if the header section is unreadable.
long frame(std::string_view buf, size_t* skip) {
  size_t s = 0;
  while (s < buf.size() && (buf[s] == '\r' || buf[s] == '\n')) s++;
  *skip = s;
  size_t end = buf.find("\r\n\r\n", s);
  if (end == std::string_view::npos) return buf.size() - s > 65536 ? -1 : 0;
  std::string_view head = buf.substr(s, end - s);
  long body = 0;
  size_t pos = 0;
  while (pos < head.size()) {
    size_t eol = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, eol == std::string_view::npos ? head.npos : eol - pos);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view name = line.substr(0, colon);
      while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
      if (iequals(name, "Content-Length") || iequals(name, "l"))
        body = std::strtol(std::string(line.substr(colon + 1)).c_str(), nullptr, 10);
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 2;
  }
  if (body < 0 || body > 65536) return -1;
  size_t total = end + 4 + static_cast<size_t>(body);
  return buf.size() >= total ? static_cast<long>(total) : 0;
}

Response parse_response(std::string_view m) {
  Response r;
  if (m.size() < 12 || m.substr(0, 8) != "SIP/2.0 ") return r;
  r.code = std::atoi(std::string(m.substr(8, 3)).c_str());
  size_t pos = m.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < m.size()) {
    pos += 2;
    size_t eol = m.find("\r\n", pos);
    if (eol == pos || eol == std::string_view::npos) break;
    std::string_view line = m.substr(pos, eol - pos);
    pos = eol;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    while (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    if (iequals(name, "Call-ID") || iequals(name, "i")) {
      r.call_id = std::string(value);
    } else if (iequals(name, "CSeq")) {
      r.cseq = static_cast<uint32_t>(std::strtoul(std::string(value).c_str(), nullptr, 10));
    } else if (iequals(name, "WWW-Authenticate") || iequals(name, "Proxy-Authenticate")) {
      r.challenges.emplace_back(value);
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Results of one thread, merged at the end

struct Tally {
  uint64_t connect_failures = 0, handshake_failures = 0, closed_by_server = 0, open = 0;
  uint64_t started = 0, ok = 0, timeouts = 0, auth_rejected = 0, no_md5_challenge = 0;
  uint64_t bad_status = 0, connection_lost = 0, stray = 0, pings_ok = 0;
  std::map<int, uint64_t> final_codes;  // final status of every registration that did not end 200
  std::vector<uint32_t> latency_us;
  std::vector<uint32_t> handshake_us;
  int64_t first_start_us = 0, last_ok_us = 0, last_start_us = 0, all_open_us = 0;

  void merge(const Tally& o) {
    connect_failures += o.connect_failures, handshake_failures += o.handshake_failures;
    closed_by_server += o.closed_by_server, open += o.open, started += o.started, ok += o.ok;
    timeouts += o.timeouts, auth_rejected += o.auth_rejected;
    no_md5_challenge += o.no_md5_challenge, bad_status += o.bad_status;
    connection_lost += o.connection_lost, stray += o.stray, pings_ok += o.pings_ok;
    for (auto& [k, v] : o.final_codes) final_codes[k] += v;
    latency_us.insert(latency_us.end(), o.latency_us.begin(), o.latency_us.end());
    handshake_us.insert(handshake_us.end(), o.handshake_us.begin(), o.handshake_us.end());
    auto mn = [](int64_t a, int64_t b) { return a == 0 ? b : (b == 0 ? a : std::min(a, b)); };
    first_start_us = mn(first_start_us, o.first_start_us);
    last_ok_us = std::max(last_ok_us, o.last_ok_us);
    last_start_us = std::max(last_start_us, o.last_start_us);
    all_open_us = std::max(all_open_us, o.all_open_us);
  }
};

// ---------------------------------------------------------------------------------------------
// One TLS connection and the registration (or ping) running over it

enum class ConnState { kConnecting, kHandshaking, kReady, kClosed };
enum class RegState { kNone, kChallenged, kAuthorized, kPing };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  ConnState state = ConnState::kClosed;
  int64_t opened_us = 0;
  std::string local_ip;
  int local_port = 0;
  std::string in;   // received, not yet a complete message
  std::string out;  // to send (kept while SSL_write wants a retry)
  bool want_write = false;
  // the registration in progress (one at a time per connection)
  RegState reg = RegState::kNone;
  std::string call_id;
  uint32_t cseq = 0;
  int64_t reg_started_us = 0;
  size_t user = 0;
  uint64_t reg_no = 0;
};

class Worker {
 public:
  Worker(const Options& o, SSL_CTX* ctx, const std::vector<User>* users, int index, int count)
      : o_(o), ctx_(ctx), users_(users), index_(index), count_(count) {
    conns_.resize(static_cast<size_t>(o.connections / count + (index < o.connections % count)));
    total_ = o.total / static_cast<uint64_t>(count) +
             (static_cast<uint64_t>(index) < o.total % static_cast<uint64_t>(count));
    rate_ = o.rate / count;
    run_id_ = static_cast<uint32_t>(now_us() ^ (static_cast<int64_t>(getpid()) << 20)) + index;
    rng_ = (static_cast<uint64_t>(run_id_) << 32) ^ 0x9e3779b97f4a7c15ULL;
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() {
    for (auto& c : conns_) close_conn(c, false);
    if (ep_ >= 0) close(ep_);
  }

  const Tally& tally() const { return t_; }

  // Opens every connection; returns when all are open or failed, or after the connect timeout.
  void open_all() {
    ep_ = epoll_create1(0);
    size_t next = 0;
    const int64_t deadline = now_us() + int64_t{o_.connect_timeout_ms} * 1000;
    while (now_us() < deadline) {
      while (next < conns_.size() && handshaking_ < o_.max_handshakes) start_connect(next++);
      if (next == conns_.size() && handshaking_ == 0) break;
      poll_once(10);
    }
    for (auto& c : conns_) {  // those still connecting at the deadline
      if (c.state == ConnState::kConnecting || c.state == ConnState::kHandshaking) {
        t_.handshake_failures++;
        close_conn(c, false);
      }
    }
    handshaking_ = 0;
    t_.all_open_us = now_us();
    for (auto& c : conns_)
      if (c.state == ConnState::kReady) t_.open++;
  }

  // Idle mode: one OPTIONS per open connection (answered), bounded by the timeout.
  void ping_all() {
    for (size_t i = 0; i < conns_.size(); i++) {
      Conn& c = conns_[i];
      if (c.state != ConnState::kReady) continue;
      c.reg = RegState::kPing;
      c.reg_no = reg_seq_++;
      c.call_id = "tp" + hex32(run_id_) + "-" + std::to_string(c.reg_no) + "@" + c.local_ip;
      c.cseq = 1;
      c.reg_started_us = now_us();
      queue(c, request("OPTIONS", c, "sip:" + domain() + ":" + std::to_string(o_.port), "", ""));
      pending_++;
    }
    const int64_t deadline = now_us() + int64_t{o_.timeout_ms} * 1000;
    while (pending_ > 0 && now_us() < deadline) poll_once(10);
  }

  // Holds the open connections until `until_us`, reading (and answering nothing) meanwhile.
  void hold(int64_t until_us) {
    while (now_us() < until_us)
      poll_once(static_cast<int>(
          std::min<int64_t>(100, std::max<int64_t>(1, (until_us - now_us()) / 1000))));
  }

  // REGISTER mode: registrations paced over the open connections.
  void run_load(int64_t start_us) {
    std::deque<size_t> idle;
    for (size_t i = 0; i < conns_.size(); i++)
      if (conns_[i].state == ConnState::kReady) idle.push_back(i);
    idle_ = &idle;
    const int64_t stop_starting = start_us + static_cast<int64_t>(o_.seconds * 1e6);
    const int64_t timeout_us = int64_t{o_.timeout_ms} * 1000;
    int64_t last_sweep = 0;
    for (;;) {
      const int64_t now = now_us();
      const bool starting = t_.started < total_ && now < stop_starting;
      if (!starting && pending_ == 0) break;
      if (!starting && now > stop_starting + timeout_us + 1000000) break;  // belt and braces
      if (starting) {
        uint64_t due = total_ - t_.started;
        if (rate_ > 0) {
          auto allowed =
              static_cast<uint64_t>(static_cast<double>(now - start_us) * rate_ / 1e6) + 1;
          due = std::min(due, allowed > t_.started ? allowed - t_.started : 0);
        }
        while (due > 0 && !idle.empty()) {
          size_t i = idle.front();
          idle.pop_front();
          if (conns_[i].state != ConnState::kReady) continue;
          start_registration(conns_[i]);
          due--;
        }
      }
      if (now - last_sweep > 50000) {  // registrations past their timeout fail
        last_sweep = now;
        for (size_t i = 0; i < conns_.size(); i++) {
          Conn& c = conns_[i];
          if (c.reg != RegState::kNone && now - c.reg_started_us > timeout_us) {
            t_.timeouts++;
            end_registration(i, false);
          }
        }
      }
      poll_once(1);
    }
    idle_ = nullptr;
  }

 private:
  static std::string hex32(uint32_t v) {
    char b[9];
    std::snprintf(b, sizeof b, "%08x", v);
    return b;
  }

  std::string domain() const { return o_.domain.empty() ? o_.host : o_.domain; }

  uint64_t next_random() {  // xorshift64*: cnonces
    rng_ ^= rng_ >> 12, rng_ ^= rng_ << 25, rng_ ^= rng_ >> 27;
    return rng_ * 2685821657736338717ULL;
  }

  std::string request(const char* method, const Conn& c, const std::string& uri,
                      const std::string& user, const std::string& extra) {
    const std::string d = domain();
    const std::string from_user = user.empty() ? "tlsload" : user;
    std::string m;
    m.reserve(600);
    m += method;
    m += " " + uri + " SIP/2.0\r\n";
    m += "Via: SIP/2.0/TLS " + c.local_ip + ":" + std::to_string(c.local_port) +
         ";branch=z9hG4bK-tl" + hex32(run_id_) + "-" + std::to_string(c.reg_no) + "-" +
         std::to_string(c.cseq) + ";rport;alias\r\n";
    m += "Max-Forwards: 70\r\n";
    m += "From: <sip:" + from_user + "@" + d + ">;tag=tl" + hex32(run_id_) + "-" +
         std::to_string(c.reg_no) + "\r\n";
    m += "To: <sip:" + (user.empty() ? d : from_user + "@" + d) + ">\r\n";
    m += "Call-ID: " + c.call_id + "\r\n";
    m += "CSeq: " + std::to_string(c.cseq) + " " + method + "\r\n";
    m += extra;
    m += "Content-Length: 0\r\n\r\n";
    return m;
  }

  std::string register_request(const Conn& c, const std::string& auth) {
    const User& u = (*users_)[c.user];
    std::string extra = "Contact: <sip:" + u.name + "@" + c.local_ip + ":" +
                        std::to_string(c.local_port) + ";transport=tls>\r\nExpires: 3600\r\n";
    if (!auth.empty()) extra += "Authorization: " + auth + "\r\n";
    return request("REGISTER", c, "sip:" + domain(), u.name, extra);
  }

  void start_registration(Conn& c) {
    c.reg = RegState::kChallenged;
    c.reg_no = reg_seq_++;
    // users in turn over all threads: thread k takes k, k + threads, ...
    c.user = static_cast<size_t>(
        (c.reg_no * static_cast<uint64_t>(count_) + static_cast<uint64_t>(index_)) %
        users_->size());
    c.call_id = "tl" + hex32(run_id_) + "-" + std::to_string(c.reg_no) + "@" + c.local_ip;
    c.cseq = 1;
    c.reg_started_us = now_us();
    if (t_.first_start_us == 0) t_.first_start_us = c.reg_started_us;
    t_.last_start_us = c.reg_started_us;
    t_.started++;
    pending_++;
    queue(c, register_request(c, ""));
  }

  void end_registration(size_t i, bool ok) {
    Conn& c = conns_[i];
    if (c.reg == RegState::kNone) return;
    if (ok) {
      const int64_t now = now_us();
      t_.ok++;
      t_.latency_us.push_back(
          static_cast<uint32_t>(std::min<int64_t>(now - c.reg_started_us, UINT32_MAX)));
      t_.last_ok_us = now;
    }
    c.reg = RegState::kNone;
    c.call_id.clear();
    pending_--;
    if (idle_ && c.state == ConnState::kReady) idle_->push_back(i);
  }

  void on_response(size_t i, std::string_view msg) {
    Conn& c = conns_[i];
    Response r = parse_response(msg);
    if (r.code == 0 || c.reg == RegState::kNone || r.call_id != c.call_id || r.cseq != c.cseq) {
      t_.stray++;  // late answer to a registration that timed out, or not ours
      return;
    }
    if (r.code < 200) return;
    if (c.reg == RegState::kPing) {
      if (r.code == 200) t_.pings_ok++;
      c.reg = RegState::kNone;
      pending_--;
      return;
    }
    if (c.reg == RegState::kChallenged && (r.code == 401 || r.code == 407)) {
      std::optional<Challenge> chosen;
      for (auto& v : r.challenges) {
        auto ch = parse_challenge(v);
        if (ch && (ch->algorithm.empty() || iequals(ch->algorithm, "MD5"))) {
          chosen = std::move(ch);
          break;
        }
      }
      if (!chosen) {
        t_.no_md5_challenge++;
        t_.final_codes[r.code]++;
        end_registration(i, false);
        return;
      }
      char cnonce[17];
      std::snprintf(cnonce, sizeof cnonce, "%016llx",
                    static_cast<unsigned long long>(next_random()));
      c.cseq = 2;
      c.reg = RegState::kAuthorized;
      queue(c, register_request(
                   c, authorization(*chosen, (*users_)[c.user], "sip:" + domain(), cnonce)));
      return;
    }
    if (c.reg == RegState::kAuthorized && r.code == 200) {
      end_registration(i, true);
      return;
    }
    t_.final_codes[r.code]++;
    if (c.reg == RegState::kAuthorized && (r.code == 401 || r.code == 407 || r.code == 403))
      t_.auth_rejected++;
    else
      t_.bad_status++;
    end_registration(i, false);
  }

  void start_connect(size_t i) {
    Conn& c = conns_[i];
    c = Conn{};
    c.opened_us = now_us();
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(o_.port));
    inet_pton(AF_INET, o_.host.c_str(), &a.sin_addr);
    int one = 1;
    if (c.fd >= 0) setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c.fd < 0 ||
        (connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 && errno != EINPROGRESS)) {
      t_.connect_failures++;
      if (c.fd >= 0) close(c.fd);
      c.fd = -1;
      return;
    }
    c.state = ConnState::kConnecting;
    handshaking_++;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = i;
    epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
  }

  void set_events(Conn& c, size_t i, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = i;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void close_conn(Conn& c, bool by_server) {
    if (c.state == ConnState::kClosed && c.fd < 0) return;
    if (by_server) t_.closed_by_server++;
    if (c.ssl) {
      if (!by_server && c.state == ConnState::kReady) SSL_shutdown(c.ssl);
      SSL_free(c.ssl);
      c.ssl = nullptr;
    }
    if (c.fd >= 0) {
      if (ep_ >= 0) epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
      c.fd = -1;
    }
    c.state = ConnState::kClosed;
  }

  // The connection failed: its registration (if any) fails with it.
  void lose(size_t i) {
    Conn& c = conns_[i];
    const bool was_handshaking =
        c.state == ConnState::kConnecting || c.state == ConnState::kHandshaking;
    if (was_handshaking) {
      (c.state == ConnState::kConnecting ? t_.connect_failures : t_.handshake_failures)++;
      handshaking_--;
      close_conn(c, false);
      return;
    }
    if (c.reg != RegState::kNone) {
      t_.connection_lost++;
      c.state = ConnState::kClosed;  // not back to the idle queue
      if (c.reg == RegState::kPing) {
        c.reg = RegState::kNone;
        pending_--;
      } else {
        end_registration(i, false);
      }
    }
    close_conn(c, true);
  }

  void handshake(size_t i) {
    Conn& c = conns_[i];
    if (c.state == ConnState::kConnecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return lose(i);
      sockaddr_in me{};
      socklen_t mlen = sizeof me;
      getsockname(c.fd, reinterpret_cast<sockaddr*>(&me), &mlen);
      char ip[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &me.sin_addr, ip, sizeof ip);
      c.local_ip = ip;
      c.local_port = ntohs(me.sin_port);
      c.ssl = SSL_new(ctx_);
      SSL_set_fd(c.ssl, c.fd);
      SSL_set_connect_state(c.ssl);
      c.state = ConnState::kHandshaking;
    }
    ERR_clear_error();
    int rc = SSL_do_handshake(c.ssl);
    if (rc == 1) {
      c.state = ConnState::kReady;
      handshaking_--;
      t_.handshake_us.push_back(static_cast<uint32_t>(now_us() - c.opened_us));
      set_events(c, i, EPOLLIN);
      return;
    }
    int e = SSL_get_error(c.ssl, rc);
    if (e == SSL_ERROR_WANT_READ) return set_events(c, i, EPOLLIN);
    if (e == SSL_ERROR_WANT_WRITE) return set_events(c, i, EPOLLOUT);
    if (handshake_errors_printed_++ < 3) {
      char buf[256];
      ERR_error_string_n(ERR_peek_last_error(), buf, sizeof buf);
      std::fprintf(stderr, "tlsload: handshake failed: %s\n", buf);
    }
    lose(i);
  }

  void queue(Conn& c, std::string msg) {
    c.out += msg;
    flush(c, static_cast<size_t>(&c - conns_.data()));
  }

  void flush(Conn& c, size_t i) {
    while (!c.out.empty() && c.state == ConnState::kReady) {
      ERR_clear_error();
      int n = SSL_write(c.ssl, c.out.data(), static_cast<int>(c.out.size()));
      if (n > 0) {
        c.out.erase(0, static_cast<size_t>(n));
        continue;
      }
      int e = SSL_get_error(c.ssl, n);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        if (!c.want_write) set_events(c, i, EPOLLIN | EPOLLOUT), c.want_write = true;
        return;
      }
      return lose(i);
    }
    if (c.want_write && c.state == ConnState::kReady) {
      set_events(c, i, EPOLLIN);
      c.want_write = false;
    }
  }

  void readable(size_t i) {
    Conn& c = conns_[i];
    char buf[16384];
    for (int guard = 0; guard < 64 && c.state == ConnState::kReady; guard++) {
      ERR_clear_error();
      int n = SSL_read(c.ssl, buf, sizeof buf);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      int e = SSL_get_error(c.ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
      return lose(i);  // closed by the server, or a TLS error
    }
    for (;;) {
      size_t skip = 0;
      long len = frame(c.in, &skip);
      if (len < 0) return lose(i);
      if (skip) c.in.erase(0, skip);
      if (len == 0) break;
      std::string msg = c.in.substr(0, static_cast<size_t>(len));
      c.in.erase(0, static_cast<size_t>(len));
      on_response(i, msg);
      if (c.state != ConnState::kReady) break;
    }
  }

  void poll_once(int timeout_ms) {
    epoll_event evs[256];
    int n = epoll_wait(ep_, evs, 256, timeout_ms);
    for (int k = 0; k < n; k++) {
      size_t i = evs[k].data.u64;
      Conn& c = conns_[i];
      if (c.fd < 0) continue;
      if (c.state == ConnState::kConnecting || c.state == ConnState::kHandshaking) {
        handshake(i);
        continue;
      }
      if (c.state != ConnState::kReady) continue;
      if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable(i);
      if (c.state == ConnState::kReady && (evs[k].events & EPOLLOUT)) flush(c, i);
    }
  }

  const Options& o_;
  SSL_CTX* const ctx_;
  const std::vector<User>* const users_;
  const int index_, count_;  // this thread's number and the number of threads
  std::vector<Conn> conns_;
  uint64_t total_ = 0;  // registrations this thread starts at most
  double rate_ = 0;     // this thread's share of the rate
  uint32_t run_id_ = 0;
  uint64_t rng_ = 0;
  uint64_t reg_seq_ = 0;
  uint64_t pending_ = 0;  // registrations (or pings) waiting for their final answer
  int handshaking_ = 0;
  int handshake_errors_printed_ = 0;
  int ep_ = -1;
  std::deque<size_t>* idle_ = nullptr;  // ready connections without a registration (load only)
  Tally t_;
};

// ---------------------------------------------------------------------------------------------
// Server memory (idle mode)

std::vector<int> process_tree(int pid) {
  std::map<int, std::vector<int>> children;
  if (auto* d = opendir("/proc")) {
    while (auto* e = readdir(d)) {
      int p = std::atoi(e->d_name);
      if (p <= 0) continue;
      std::ifstream f("/proc/" + std::to_string(p) + "/stat");
      std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      size_t close = s.rfind(')');
      if (close == std::string::npos) continue;
      int ppid = 0;
      char state = 0;
      if (std::sscanf(s.c_str() + close + 1, " %c %d", &state, &ppid) == 2)
        children[ppid].push_back(p);
    }
    closedir(d);
  }
  std::vector<int> out, todo{pid};
  while (!todo.empty()) {
    int p = todo.back();
    todo.pop_back();
    out.push_back(p);
    for (int c : children[p]) todo.push_back(c);
  }
  return out;
}

struct Memory {
  long rss_kib = 0, pss_kib = 0;
  size_t processes = 0;
};

Memory server_memory(int pid) {
  Memory m;
  for (int p : process_tree(pid)) {
    std::ifstream f("/proc/" + std::to_string(p) + "/smaps_rollup");
    if (!f) continue;
    m.processes++;
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("Rss:", 0) == 0) m.rss_kib += std::atol(line.c_str() + 4);
      if (line.rfind("Pss:", 0) == 0) m.pss_kib += std::atol(line.c_str() + 4);
    }
  }
  return m;
}

// ---------------------------------------------------------------------------------------------

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: tlsload -u USERS.csv [-c CONNECTIONS=1000] [-r RATE=0 (max)] "
               "[-n TOTAL=10000]\n"
               "               [-t SECONDS=10] [-T TIMEOUT_MS=5000] [-j THREADS=1] "
               "[-H HANDSHAKES=64]\n"
               "               [-C CONNECT_TIMEOUT_MS=10000] [-d DOMAIN] HOST:PORT\n"
               "       tlsload --idle SECONDS [--ping] [--mem-pid PID] [-c CONNECTIONS] "
               "HOST:PORT\n");
  std::exit(2);
}

long arg_long(const char* s, long lo, long hi) {
  char* end;
  errno = 0;
  long v = std::strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi) usage();
  return v;
}

std::vector<User> read_users(const std::string& path) {
  std::vector<User> users;
  std::ifstream f(path);
  std::string line;
  bool first = true;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t comma = line.find(',');
    if (line.empty() || line[0] == '#' || comma == std::string::npos) continue;
    User u{line.substr(0, comma), line.substr(comma + 1)};
    if (first && u.name == "name" && u.password == "password") {  // the header line
      first = false;
      continue;
    }
    first = false;
    users.push_back(std::move(u));
  }
  return users;
}

uint32_t quantile(const std::vector<uint32_t>& v, double q) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(q * static_cast<double>(v.size()) + 0.999999);
  return v[std::clamp<size_t>(k, 1, v.size()) - 1];
}

std::string quantiles_json(std::vector<uint32_t>& v) {
  std::sort(v.begin(), v.end());
  char b[160];
  std::snprintf(b, sizeof b, "{\"median\": %u, \"p90\": %u, \"p99\": %u, \"max\": %u}",
                quantile(v, 0.5), quantile(v, 0.9), quantile(v, 0.99), v.empty() ? 0 : v.back());
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  // A write to a connection the server has closed must count as a lost connection, not end
  // the run (OpenSSL writes with plain write(2)).
  std::signal(SIGPIPE, SIG_IGN);
  Options o;
  static const option longopts[] = {{"idle", required_argument, nullptr, 'I'},
                                    {"ping", no_argument, nullptr, 'P'},
                                    {"mem-pid", required_argument, nullptr, 'M'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "u:c:r:n:t:T:j:H:C:d:h", longopts, nullptr)) != -1) {
    switch (opt) {
      case 'u':
        o.users_path = optarg;
        break;
      case 'c':
        o.connections = static_cast<int>(arg_long(optarg, 1, 1000000));
        break;
      case 'r':
        o.rate = static_cast<double>(arg_long(optarg, 0, 10000000));
        break;
      case 'n':
        o.total = static_cast<uint64_t>(arg_long(optarg, 1, 1000000000));
        break;
      case 't':
        o.seconds = static_cast<double>(arg_long(optarg, 1, 86400));
        break;
      case 'T':
        o.timeout_ms = static_cast<int>(arg_long(optarg, 1, 600000));
        break;
      case 'j':
        o.threads = static_cast<int>(arg_long(optarg, 1, 64));
        break;
      case 'H':
        o.max_handshakes = static_cast<int>(arg_long(optarg, 1, 100000));
        break;
      case 'C':
        o.connect_timeout_ms = static_cast<int>(arg_long(optarg, 1, 600000));
        break;
      case 'd':
        o.domain = optarg;
        break;
      case 'I':
        o.idle_s = static_cast<int>(arg_long(optarg, 1, 86400));
        break;
      case 'P':
        o.ping = true;
        break;
      case 'M':
        o.mem_pid = static_cast<int>(arg_long(optarg, 1, 1 << 30));
        break;
      default:
        usage();
    }
  }
  if (optind != argc - 1) usage();
  std::string target = argv[optind];
  size_t colon = target.rfind(':');
  if (colon == std::string::npos) usage();
  o.host = target.substr(0, colon);
  o.port = static_cast<int>(arg_long(target.c_str() + colon + 1, 1, 65535));
  in_addr probe{};
  if (inet_pton(AF_INET, o.host.c_str(), &probe) != 1) {
    std::fprintf(stderr, "tlsload: HOST must be an IPv4 address\n");
    return 2;
  }
  o.threads = std::min(o.threads, o.connections);

  std::vector<User> users;
  if (o.idle_s == 0) {
    if (o.users_path.empty()) usage();
    users = read_users(o.users_path);
    if (users.empty()) {
      std::fprintf(stderr, "tlsload: no users in %s (expected name,password lines)\n",
                   o.users_path.c_str());
      return 1;
    }
  }

  // Enough descriptors for every connection.
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  const rlim_t want = static_cast<rlim_t>(o.connections) + 64;
  if (rl.rlim_cur < want) {
    rl.rlim_cur = std::min(want, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    std::fprintf(stderr, "tlsload: cannot create the TLS context\n");
    return 1;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);        // self-signed benchmark certificates
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // every connection: a full handshake
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

  std::vector<std::unique_ptr<Worker>> workers;
  for (int k = 0; k < o.threads; k++)
    workers.push_back(std::make_unique<Worker>(o, ctx, &users, k, o.threads));

  Memory before{}, after{};
  if (o.mem_pid) before = server_memory(o.mem_pid);

  const int64_t t0 = now_us();
  {
    std::vector<std::thread> ts;
    for (auto& w : workers) ts.emplace_back([&w] { w->open_all(); });
    for (auto& t : ts) t.join();
  }
  const int64_t opened = now_us();
  Tally all;
  for (auto& w : workers) all.merge(w->tally());
  std::fprintf(stderr, "tlsload: %llu of %d connections open in %.2f s\n",
               static_cast<unsigned long long>(all.open), o.connections, (opened - t0) / 1e6);

  if (o.idle_s > 0) {
    if (o.ping) {
      std::vector<std::thread> ts;
      for (auto& w : workers) ts.emplace_back([&w] { w->ping_all(); });
      for (auto& t : ts) t.join();
    }
    const int64_t until = opened + int64_t{o.idle_s} * 1000000;
    if (o.mem_pid) {  // measured once the server has settled (buffers released on idle)
      const int64_t settle = std::min(until, now_us() + 2000000);
      std::vector<std::thread> ts;
      for (auto& w : workers) ts.emplace_back([&w, settle] { w->hold(settle); });
      for (auto& t : ts) t.join();
      after = server_memory(o.mem_pid);
    }
    std::fprintf(stderr, "tlsload: holding the connections until %d s after they opened\n",
                 o.idle_s);
    std::vector<std::thread> ts;
    for (auto& w : workers) ts.emplace_back([&w, until] { w->hold(until); });
    for (auto& t : ts) t.join();
  } else {
    const int64_t start = now_us();
    std::vector<std::thread> ts;
    for (auto& w : workers) ts.emplace_back([&w, start] { w->run_load(start); });
    for (auto& t : ts) t.join();
    // A mark for a caller that measures the server between the two phases (bench/run.sh
    // counts the server's CPU from "connections open" to this line, handshakes apart).
    std::fprintf(stderr, "tlsload: load ended after %.2f s\n", (now_us() - start) / 1e6);
  }
  const int64_t end = now_us();

  all = Tally{};
  for (auto& w : workers) all.merge(w->tally());
  std::string hs = quantiles_json(all.handshake_us);
  std::printf("{\"tool\": \"tlsload\", \"mode\": \"%s\", \"target\": \"%s:%d\", ",
              o.idle_s ? "idle" : "register", o.host.c_str(), o.port);
  std::printf(
      "\"connections\": {\"requested\": %d, \"open\": %llu, \"connect_failures\": %llu, "
      "\"handshake_failures\": %llu, \"closed_by_server\": %llu, \"open_s\": %.3f, "
      "\"handshake_us\": %s}, ",
      o.connections, static_cast<unsigned long long>(all.open),
      static_cast<unsigned long long>(all.connect_failures),
      static_cast<unsigned long long>(all.handshake_failures),
      static_cast<unsigned long long>(all.closed_by_server), (opened - t0) / 1e6, hs.c_str());
  if (o.idle_s) {
    std::printf("\"held_s\": %.1f, \"pings_ok\": %llu", (end - opened) / 1e6,
                static_cast<unsigned long long>(all.pings_ok));
    if (o.mem_pid) {
      const double n = static_cast<double>(std::max<uint64_t>(1, all.open));
      std::printf(
          ", \"server_memory\": {\"pid\": %d, \"processes\": %zu, \"rss_before_kib\": %ld, "
          "\"rss_after_kib\": %ld, \"pss_before_kib\": %ld, \"pss_after_kib\": %ld, "
          "\"rss_per_connection_bytes\": %.0f, \"pss_per_connection_bytes\": %.0f}",
          o.mem_pid, after.processes, before.rss_kib, after.rss_kib, before.pss_kib, after.pss_kib,
          (after.rss_kib - before.rss_kib) * 1024.0 / n,
          (after.pss_kib - before.pss_kib) * 1024.0 / n);
    }
    std::printf("}\n");
  } else {
    const double dur =
        all.last_ok_us > all.first_start_us ? (all.last_ok_us - all.first_start_us) / 1e6 : 0;
    // The pace the registrations were started at (first to last start): whether -r was kept,
    // whatever the answers' latency.
    const double start_span = all.last_start_us > all.first_start_us
                                  ? (all.last_start_us - all.first_start_us) / 1e6
                                  : 0;
    const uint64_t failed = all.started - all.ok;
    std::string codes;
    for (auto& [k, v] : all.final_codes)
      codes += (codes.empty() ? "\"" : ", \"") + std::to_string(k) + "\": " + std::to_string(v);
    std::string lat = quantiles_json(all.latency_us);
    std::printf(
        "\"users\": %zu, \"rate_target\": %.0f, \"total\": %llu, \"registrations\": "
        "{\"started\": %llu, \"ok\": %llu, \"failed\": %llu, \"timeouts\": %llu, "
        "\"auth_rejected\": %llu, \"no_md5_challenge\": %llu, \"other_status\": %llu, "
        "\"connection_lost\": %llu, \"final_codes\": {%s}}, \"stray_responses\": %llu, "
        "\"duration_s\": %.3f, \"rate_ok\": %.0f, \"start_span_s\": %.3f, "
        "\"rate_started\": %.0f, \"latency_us\": %s}\n",
        users.size(), o.rate, static_cast<unsigned long long>(o.total),
        static_cast<unsigned long long>(all.started), static_cast<unsigned long long>(all.ok),
        static_cast<unsigned long long>(failed), static_cast<unsigned long long>(all.timeouts),
        static_cast<unsigned long long>(all.auth_rejected),
        static_cast<unsigned long long>(all.no_md5_challenge),
        static_cast<unsigned long long>(all.bad_status),
        static_cast<unsigned long long>(all.connection_lost), codes.c_str(),
        static_cast<unsigned long long>(all.stray), dur, dur > 0 ? all.ok / dur : 0.0, start_span,
        start_span > 0 ? (all.started - 1) / start_span : 0.0, lat.c_str());
  }
  workers.clear();
  SSL_CTX_free(ctx);
  return 0;
}
