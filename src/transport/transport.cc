#include "transport/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "base/clock.h"
#include "base/thread_name.h"
#include "base/wake_batch.h"
#include "sip/parser.h"
#include "spdlog/spdlog.h"
#include "transport/mailbox.h"
#include "transport/steering.h"
#include "transport/timer_wheel.h"

namespace transport {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using Clock = std::chrono::steady_clock;

thread_local int t_worker = -1;  // index of the worker running on this thread, -1 elsewhere

constexpr std::size_t kUdpBatch = 32;           // datagrams per recvmmsg
constexpr std::size_t kUdpBufferBytes = 65536;  // one datagram at most
constexpr int kReadsPerWakeup = 16;             // fairness between connections

Endpoint from_sockaddr(const sockaddr_storage& ss) {
  Endpoint e;
  if (ss.ss_family == AF_INET) {
    const auto& sin = reinterpret_cast<const sockaddr_in&>(ss);
    std::memcpy(e.bytes.data(), &sin.sin_addr, 4);
    e.port = ntohs(sin.sin_port);
    return e;
  }
  const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(ss);
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  e.port = ntohs(sin6.sin6_port);
  if (std::memcmp(&sin6.sin6_addr, kMapped, 12) == 0) {
    std::memcpy(e.bytes.data(), reinterpret_cast<const std::uint8_t*>(&sin6.sin6_addr) + 12, 4);
    return e;
  }
  std::memcpy(e.bytes.data(), &sin6.sin6_addr, 16);
  e.v6 = true;
  return e;
}

socklen_t to_sockaddr(const Endpoint& e, bool v6_socket, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (!e.v6 && !v6_socket) {
    auto& sin = reinterpret_cast<sockaddr_in&>(ss);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(e.port);
    std::memcpy(&sin.sin_addr, e.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto& sin6 = reinterpret_cast<sockaddr_in6&>(ss);
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(e.port);
  if (e.v6) {
    std::memcpy(&sin6.sin6_addr, e.bytes.data(), 16);
  } else {  // IPv4 destination through a v6 socket: ::ffff:a.b.c.d
    auto* b = reinterpret_cast<std::uint8_t*>(&sin6.sin6_addr);
    b[10] = b[11] = 0xff;
    std::memcpy(b + 12, e.bytes.data(), 4);
  }
  return sizeof(sockaddr_in6);
}

Endpoint from_asio(const asio::ip::address& a, std::uint16_t port) {
  return *Endpoint::from_string(a.to_string(), port);
}

// Timers on a worker's loop: a timing wheel of kTimerTick ticks (transport/timer_wheel.h) and
// one asio timer armed for the earliest.
//
// Deadlines are rounded up to the next tick, so that all the timers due in one tick fire in
// one wake-up. A call leaves about five timers behind (the transactions' Timers K, J, I, D and
// their like); fired one by one they cost a wake-up and a re-arm of the timerfd each, which at
// 1,000 calls/s was as many wake-ups as the messages themselves brought. A timer fires at most
// one tick late; the shortest SIP timer, T1, is at least 50 ms.
constexpr std::chrono::milliseconds kTimerTick{10};

class LoopTimers final : public base::TimerService {
 public:
  explicit LoopTimers(asio::io_context& io) : timer_(io), wheel_(tick_at(Clock::now())) {}

  Id start(std::chrono::milliseconds after, std::function<void()> fire) override {
    const TimerWheel::Tick due = tick_due(base::steady_now() + after);
    const Id id = wheel_.start(due, std::move(fire));
    if (!stopped_ && !firing_ && (!armed_ || due < armed_at_)) arm();
    return id;
  }

  // The asio timer stays armed: at worst the loop wakes once for nothing.
  void cancel(Id id) override { wheel_.cancel(id); }

  // Drops every timer; later ones never fire (the loop is stopping).
  void shutdown() {
    stopped_ = true;
    wheel_.clear();
    timer_.cancel();
  }

 private:
  // The tick a time point is in, and the first tick that starts at or after it.
  static TimerWheel::Tick tick_at(Clock::time_point t) {
    return static_cast<TimerWheel::Tick>(t.time_since_epoch() / kTimerTick);
  }
  static TimerWheel::Tick tick_due(Clock::time_point t) {
    const TimerWheel::Tick tick = tick_at(t);
    return Clock::time_point(tick * kTimerTick) == t ? tick : tick + 1;
  }

  void arm() {
    const std::optional<TimerWheel::Tick> next = wheel_.next();
    if (!next) {
      armed_ = false;
      timer_.cancel();
      return;
    }
    armed_ = true;
    armed_at_ = *next;
    timer_.expires_at(Clock::time_point(*next * kTimerTick));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) fire_due();
    });
  }

  void fire_due() {
    const base::LoopTimeScope loop_time;  // for the callbacks
    firing_ = true;
    wheel_.advance(tick_at(base::steady_now()));
    firing_ = false;
    arm();
  }

  asio::steady_timer timer_;
  TimerWheel wheel_;
  bool firing_ = false;
  bool armed_ = false;
  bool stopped_ = false;
  TimerWheel::Tick armed_at_ = 0;
};

// Connection counts shared by all workers (taken on accept, given back on close).
class ConnectionLimiter {
 public:
  explicit ConnectionLimiter(const StreamLimits& limits) : limits_(limits) {}

  bool acquire(const Endpoint& source) {
    Endpoint key = source;
    key.port = 0;
    std::lock_guard lock(mu_);
    if (total_ >= limits_.max_connections) return false;
    std::size_t& n = per_source_[key];
    if (n >= limits_.max_connections_per_source) return false;
    ++n;
    ++total_;
    return true;
  }

  void release(const Endpoint& source) {
    Endpoint key = source;
    key.port = 0;
    std::lock_guard lock(mu_);
    auto it = per_source_.find(key);
    if (it != per_source_.end() && --it->second == 0) per_source_.erase(it);
    --total_;
  }

 private:
  const StreamLimits& limits_;
  std::mutex mu_;
  std::size_t total_ = 0;
  std::unordered_map<Endpoint, std::size_t, EndpointHash> per_source_;
};

struct Worker;

// One TCP or TLS connection. Reactor style: it waits for readiness on the socket and reads
// with recv()/SSL_read() into the worker's scratch buffer, so an idle connection holds no
// read buffer at all (and OpenSSL, with SSL_MODE_RELEASE_BUFFERS, none either).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Worker& worker, tcp::socket socket, Flow flow, std::shared_ptr<void> tls_context);
  ~Connection();

  void start();
  void send(std::string_view bytes);
  void close(const char* why);
  // Closes once the queued output has been written.
  void close_after_flush(const char* why);
  // Called every second by the worker's sweep: enforces the timeouts.
  void check_timeouts(Clock::time_point now);

  const Flow& flow() const { return flow_; }
  bool closed() const { return state_ == State::kClosed; }

 private:
  enum class State { kHandshake, kOpen, kClosed };

  void on_readable();
  void on_writable();
  bool advance_handshake();  // false when the connection is closed or waits for I/O
  void consume(const char* data, std::size_t n);
  std::size_t process(std::string_view view);  // returns bytes consumed
  void flush();
  void wait_read();
  void wait_write();
  // For a TLS error code: arms the right wait; returns false if the connection must close.
  bool handle_ssl_wait(int ssl_error);

  Worker& worker_;
  tcp::socket socket_;
  Flow flow_;
  std::shared_ptr<void> tls_context_;  // keeps the SSL_CTX alive across a reload
  SSL* ssl_ = nullptr;
  State state_ = State::kOpen;
  std::string in_;   // bytes of an incomplete message; empty (and freed) between messages
  std::string out_;  // bytes the socket did not take yet
  bool read_armed_ = false;
  bool write_armed_ = false;
  bool close_when_flushed_ = false;
  const char* close_reason_ = "";
  Clock::time_point opened_ = Clock::now();
  Clock::time_point last_activity_ = opened_;
  Clock::time_point partial_since_{};
};

struct UdpListener {
  udp::socket socket;
  std::uint32_t id;
  Endpoint local;
  bool v6;
};

struct StreamListener {
  tcp::acceptor acceptor;
  std::uint32_t id;
  Endpoint local;
  Protocol protocol;
  asio::steady_timer retry;  // the pause after a failed accept
  bool failing = false;      // accepts fail (logged once until one succeeds)
};

// How long a listener waits after a failed accept (out of file descriptors or memory) before
// it tries again.
constexpr std::chrono::milliseconds kAcceptRetry{100};

bool out_of_resources(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  const int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

}  // namespace

// UDP datagrams a worker queues while it handles a batch of received ones (or a posted task),
// sent together when the batch is done: sendmmsg makes one system call of what were one
// sendto per answer. Datagrams leave in the order they were queued.
class Outbox {
 public:
  bool open() const { return open_; }
  void set_open(bool open) { open_ = open; }

  void add(int fd, const sockaddr_storage& to, socklen_t to_len, std::string_view bytes) {
    entries_.push_back({fd, bytes_.size(), bytes.size(), to, to_len});
    bytes_.append(bytes);
    if (entries_.size() == kUdpBatch) flush();
  }

  void flush() {
    std::size_t i = 0;
    while (i < entries_.size()) {
      // One sendmmsg per run of datagrams from the same socket.
      std::size_t end = i;
      while (end < entries_.size() && entries_[end].fd == entries_[i].fd) ++end;
      mmsghdr msgs[kUdpBatch];
      iovec iov[kUdpBatch];
      for (std::size_t k = i; k < end; ++k) {
        Entry& e = entries_[k];
        iov[k - i] = {bytes_.data() + e.at, e.size};
        std::memset(&msgs[k - i], 0, sizeof(mmsghdr));
        msgs[k - i].msg_hdr.msg_name = &e.to;
        msgs[k - i].msg_hdr.msg_namelen = e.to_len;
        msgs[k - i].msg_hdr.msg_iov = &iov[k - i];
        msgs[k - i].msg_hdr.msg_iovlen = 1;
      }
      std::size_t sent = i;
      while (sent < end) {
        const int n = ::sendmmsg(entries_[i].fd, msgs + (sent - i),
                                 static_cast<unsigned>(end - sent), MSG_DONTWAIT);
        // The datagram at `sent` failed, as a lone sendto() would have: drop it, go on.
        sent += n > 0 ? static_cast<std::size_t>(n) : 1;
      }
      i = end;
    }
    entries_.clear();
    bytes_.clear();
  }

 private:
  struct Entry {
    int fd;
    std::size_t at;
    std::size_t size;
    sockaddr_storage to;
    socklen_t to_len;
  };
  bool open_ = false;
  std::vector<Entry> entries_;
  std::string bytes_;  // the datagrams back to back
};

struct Transport::Impl {
  Impl(unsigned n, const StreamLimits& l, TlsContextSource tls);

  StreamLimits limits;
  TlsContextSource tls_source;
  std::function<bool(const Endpoint&)> admit;
  ConnectionLimiter limiter;
  TransportStats stats;
  std::atomic<std::uint64_t> next_connection{1};
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::pair<config::Listen, Endpoint>> bound;
  std::vector<std::uint32_t> bound_ids;  // listener id of each entry of `bound`
  std::uint32_t listeners = 0;
  bool started = false;
  std::vector<sock_filter> steering;  // attached to each UDP socket group; empty: none
};

namespace {

struct Worker {
  Worker(Transport::Impl& t, unsigned i)
      : transport(t),
        index(static_cast<std::uint16_t>(i)),
        timers(io),
        sweep(io),
        mail(io, [this](std::vector<Mailbox::Task>& tasks) {
          batched([&] {
            for (Mailbox::Task& task : tasks) task();
          });
        }) {}

  Transport::Impl& transport;
  const std::uint16_t index;
  asio::io_context io{1};
  LoopTimers timers;
  asio::steady_timer sweep;
  Mailbox mail;  // Transport::post
  Receiver* receiver = nullptr;
  std::vector<std::unique_ptr<UdpListener>> udp;  // indexed by listener id (null: not UDP)
  std::vector<std::unique_ptr<StreamListener>> streams;
  std::unordered_map<std::uint64_t, std::shared_ptr<Connection>> connections;
  std::vector<char> scratch = std::vector<char>(256 * 1024);
  // recvmmsg buffers and headers, set up on the worker's first datagram. The kernel writes
  // only the length, name length and flags of the headers it fills; those are reset after
  // each call, instead of every header before it (a batch is often a few datagrams of 32).
  std::vector<char> udp_buffers;
  std::array<mmsghdr, kUdpBatch> udp_msgs{};
  std::array<iovec, kUdpBatch> udp_iov{};
  std::array<sockaddr_storage, kUdpBatch> udp_from{};
  Outbox outbox;  // open while a batch or a posted task runs on this worker's thread
  std::optional<base::LoopTimeScope> loop_time;  // set while the outbox is open
  std::thread thread;
  bool listening = true;

  void run() {
    t_worker = index;
    arm_sweep();
    io.run();
    t_worker = -1;
  }

  void arm_sweep() {
    sweep.expires_after(std::chrono::seconds(1));
    sweep.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      const Clock::time_point now = Clock::now();
      std::vector<std::shared_ptr<Connection>> all;
      all.reserve(connections.size());
      for (auto& [id, c] : connections) all.push_back(c);
      for (auto& c : all) c->check_timeouts(now);
      arm_sweep();
    });
  }

  void read_udp(UdpListener& l) {
    l.socket.async_wait(udp::socket::wait_read, [this, &l](const boost::system::error_code& ec) {
      if (ec || !listening) return;
      drain_udp(l);
      read_udp(l);
    });
  }

  // Runs `work` with the outbox open and the loop time set (base/clock.h), then sends what it
  // queued.
  template <typename Work>
  void batched(Work&& work) {
    if (outbox.open()) {
      work();
      return;
    }
    loop_time.emplace();
    outbox.set_open(true);
    work();
    outbox.flush();
    outbox.set_open(false);
    loop_time.reset();
  }

  // Reads every queued datagram in batches (recvmmsg), then waits again. The answers to
  // each batch go out together at its end.
  void drain_udp(UdpListener& l) {
    batched([&] { read_batches(l); });
  }

  void read_batches(UdpListener& l) {
    if (udp_buffers.empty()) {
      udp_buffers.resize(kUdpBatch * kUdpBufferBytes);
      for (std::size_t i = 0; i < kUdpBatch; ++i) {
        udp_iov[i] = {udp_buffers.data() + i * kUdpBufferBytes, kUdpBufferBytes};
        msghdr& h = udp_msgs[i].msg_hdr;
        h = msghdr{};
        h.msg_iov = &udp_iov[i];
        h.msg_iovlen = 1;
        h.msg_name = &udp_from[i];
        h.msg_namelen = sizeof(sockaddr_storage);
      }
    }
    mmsghdr* const msgs = udp_msgs.data();
    const sockaddr_storage* const from = udp_from.data();
    for (int round = 0; round < 64; ++round) {
      const int n =
          recvmmsg(l.socket.native_handle(), msgs, kUdpBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      if (round > 0 && loop_time) loop_time->refresh();
      // Hand-offs to other workers (responses for their transactions) wake each of them once,
      // when this round's answers go out.
      const base::WakeBatch wakes;
      transport.stats.datagrams_in.fetch_add(static_cast<std::uint64_t>(n),
                                              std::memory_order_relaxed);
      for (int i = 0; i < n; ++i) {
        Flow flow;
        flow.protocol = Protocol::kUdp;
        flow.remote = from_sockaddr(from[i]);
        flow.local = l.local;
        flow.listener = l.id;
        flow.worker = index;
        // Datagrams cut by the buffer are dropped: SIP over UDP must fit in one.
        if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) continue;
        if (receiver != nullptr) {
          receiver->on_message(std::string_view(udp_buffers.data() + i * kUdpBufferBytes,
                                                msgs[i].msg_len),
                               flow);
        }
      }
      for (int i = 0; i < n; ++i) {  // what the kernel wrote into the headers it filled
        msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        msgs[i].msg_hdr.msg_flags = 0;
      }
      outbox.flush();
      if (static_cast<std::size_t>(n) < kUdpBatch) return;
    }
  }

  void accept(StreamListener& l) {
    l.acceptor.async_accept([this, &l](const boost::system::error_code& ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !listening) return;
      if (out_of_resources(ec)) {
        // Out of file descriptors or of kernel memory: the connection stays in the backlog, so
        // an accept at once would fail at once, and the worker would spin (a connection flood
        // past the limit took both cores). Wait, then try again. Other errors (a connection
        // reset while it waited, a network error) took their connection out of the backlog:
        // the next accept goes on at once, as accept(2) advises.
        if (!l.failing) {
          spdlog::warn("event=accept_failed transport={} address={} reason=\"{}\" "
                       "action=\"retrying every {} ms\"",
                       to_string(l.protocol), l.local.to_string(), ec.message(),
                       kAcceptRetry.count());
          l.failing = true;
        }
        l.retry.expires_after(kAcceptRetry);
        l.retry.async_wait([this, &l](const boost::system::error_code& e) {
          if (!e && listening) accept(l);
        });
        return;
      }
      if (!ec) {
        if (l.failing) {
          spdlog::info("event=accept_resumed transport={} address={}", to_string(l.protocol),
                       l.local.to_string());
          l.failing = false;
        }
        on_accept(l, std::move(s));
      }
      accept(l);
    });
  }

  void on_accept(StreamListener& l, tcp::socket s) {
    boost::system::error_code ec;
    const auto remote = s.remote_endpoint(ec);
    if (ec) return;
    Flow flow;
    flow.protocol = l.protocol;
    flow.remote = from_asio(remote.address(), remote.port());
    flow.local = l.local;
    flow.listener = l.id;
    flow.worker = index;
    if (transport.admit && !transport.admit(flow.remote)) {
      s.close(ec);  // banned or denied: no handshake, no answer
      return;
    }
    if (!transport.limiter.acquire(flow.remote)) {
      transport.stats.connections_refused.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("event=connection_refused reason=\"connection limit\" source={} transport={}",
                   flow.remote.to_string(), to_string(flow.protocol));
      s.close(ec);
      return;
    }
    flow.connection = transport.next_connection.fetch_add(1, std::memory_order_relaxed);
    std::shared_ptr<void> tls;
    if (l.protocol == Protocol::kTls) {
      tls = transport.tls_source ? transport.tls_source() : nullptr;
      if (!tls) {
        transport.limiter.release(flow.remote);
        s.close(ec);
        return;
      }
    }
    transport.stats.connections_accepted.fetch_add(1, std::memory_order_relaxed);
    transport.stats.connections_open.fetch_add(1, std::memory_order_relaxed);
    auto c = std::make_shared<Connection>(*this, std::move(s), flow, std::move(tls));
    connections.emplace(flow.connection, c);
    c->start();
  }

  // Sends from this worker's socket of the flow's listener; queued in `outbox` (the calling
  // worker's, when it is open) or at once.
  void send_udp(const Flow& flow, std::string_view bytes, Outbox* out) {
    if (flow.listener >= udp.size() || !udp[flow.listener]) return;
    UdpListener& l = *udp[flow.listener];
    sockaddr_storage ss;
    const socklen_t len = to_sockaddr(flow.remote, l.v6, ss);
    if (!l.v6 && flow.remote.v6) return;  // an IPv4 socket cannot reach an IPv6 peer
    // Counted first: add() sends at once when it fills the batch, and the count must not lag
    // behind what a peer has already received.
    transport.stats.messages_out.fetch_add(1, std::memory_order_relaxed);
    if (out != nullptr) {
      out->add(l.socket.native_handle(), ss, len, bytes);
    } else {
      ::sendto(l.socket.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT,
               reinterpret_cast<sockaddr*>(&ss), len);
    }
  }

  void send_stream(const Flow& flow, std::string_view bytes) {
    auto it = connections.find(flow.connection);
    if (it == connections.end()) {
      // RFC 3261 §18.2.2 would have a response retried on a new connection to the Via
      // sent-by; a client that closed its connection is usually behind NAT, so it is dropped.
      spdlog::debug("event=send_dropped reason=\"connection closed\" connection={}",
                    flow.connection);
      return;
    }
    transport.stats.messages_out.fetch_add(1, std::memory_order_relaxed);  // before, as for UDP
    it->second->send(bytes);
  }

  void forget(std::uint64_t id) { connections.erase(id); }
};

Connection::Connection(Worker& worker, tcp::socket socket, Flow flow,
                       std::shared_ptr<void> tls_context)
    : worker_(worker), socket_(std::move(socket)), flow_(flow),
      tls_context_(std::move(tls_context)) {}

Connection::~Connection() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void Connection::start() {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(tcp::no_delay(true), ec);
  if (tls_context_) {
    ssl_ = SSL_new(static_cast<SSL_CTX*>(tls_context_.get()));
    if (ssl_ == nullptr || SSL_set_fd(ssl_, socket_.native_handle()) != 1) {
      close("TLS setup failed");
      return;
    }
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // One read() takes what the socket has, not a record header and then its body; with
    // SSL_has_pending below, a request costs one read instead of three.
    SSL_set_read_ahead(ssl_, 1);
    SSL_set_accept_state(ssl_);
    state_ = State::kHandshake;
    if (!advance_handshake()) return;
  }
  wait_read();
}

bool Connection::advance_handshake() {
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    state_ = State::kOpen;
    spdlog::debug("event=tls_established source={} version={} cipher={}", flow_.remote.to_string(),
                  SSL_get_version(ssl_), SSL_get_cipher_name(ssl_));
    flush();
    return state_ != State::kClosed;
  }
  const int err = SSL_get_error(ssl_, r);
  if (!handle_ssl_wait(err)) {
    char buf[256];
    ERR_error_string_n(ERR_peek_last_error(), buf, sizeof buf);
    spdlog::info("event=tls_handshake_failed source={} reason=\"{}\"", flow_.remote.to_string(),
                 err == SSL_ERROR_SSL ? buf : "connection closed");
    close("TLS handshake failed");
  }
  return false;
}

bool Connection::handle_ssl_wait(int ssl_error) {
  if (ssl_error == SSL_ERROR_WANT_READ) {
    wait_read();
    return true;
  }
  if (ssl_error == SSL_ERROR_WANT_WRITE) {
    wait_write();
    return true;
  }
  return false;
}

void Connection::wait_read() {
  if (read_armed_ || state_ == State::kClosed) return;
  read_armed_ = true;
  socket_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->read_armed_ = false;
                       if (ec || self->closed()) return;
                       self->on_readable();
                     });
}

void Connection::wait_write() {
  if (write_armed_ || state_ == State::kClosed) return;
  write_armed_ = true;
  socket_.async_wait(tcp::socket::wait_write,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->write_armed_ = false;
                       if (ec || self->closed()) return;
                       self->on_writable();
                     });
}

void Connection::on_readable() {
  if (state_ == State::kHandshake) {
    if (!advance_handshake()) return;
  }
  char* buf = worker_.scratch.data();
  const std::size_t size = worker_.scratch.size();
  bool drained = false;
  for (int i = 0; i < kReadsPerWakeup && state_ == State::kOpen && !drained; ++i) {
    if (ssl_ == nullptr) {
      const ssize_t n = ::recv(socket_.native_handle(), buf, size, MSG_DONTWAIT);
      if (n > 0) {
        consume(buf, static_cast<std::size_t>(n));
        // A short read emptied the socket: wait rather than read again only to hear EAGAIN.
        // The wait re-arms epoll, which reports bytes that came in meanwhile.
        drained = static_cast<std::size_t>(n) < size;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        wait_read();
        return;
      }
      close(n == 0 ? "closed by peer" : "read error");
      return;
    }
    ERR_clear_error();
    const int n = SSL_read(ssl_, buf, static_cast<int>(size));
    if (n > 0) {
      consume(buf, static_cast<std::size_t>(n));
      drained = SSL_has_pending(ssl_) == 0;  // OpenSSL holds nothing more: as a short read
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if (!handle_ssl_wait(err)) {
      close(err == SSL_ERROR_ZERO_RETURN ? "closed by peer" : "TLS read error");
    }
    return;
  }
  if (drained) {
    wait_read();
    return;
  }
  // Budget used up: yield to other connections, come back for the rest.
  if (state_ == State::kOpen) {
    asio::post(worker_.io, [self = shared_from_this()] {
      if (!self->closed()) self->on_readable();
    });
  }
}

void Connection::on_writable() {
  if (state_ == State::kHandshake) {
    if (advance_handshake()) wait_read();
    return;
  }
  flush();
  // A TLS read may have stopped on WANT_WRITE: try reading again.
  if (ssl_ != nullptr && state_ == State::kOpen) on_readable();
}

void Connection::consume(const char* data, std::size_t n) {
  last_activity_ = Clock::now();
  if (in_.empty()) {
    const std::size_t used = process(std::string_view(data, n));
    if (state_ == State::kClosed) return;
    if (used < n) {
      in_.assign(data + used, n - used);
      partial_since_ = last_activity_;
    }
  } else {
    in_.append(data, n);
    const std::size_t used = process(in_);
    if (state_ == State::kClosed) return;
    in_.erase(0, used);
    if (in_.empty()) {
      std::string().swap(in_);  // give the memory back while idle
    } else if (used > 0) {
      partial_since_ = last_activity_;
    }
  }
  if (in_.size() > worker_.transport.limits.max_buffered_bytes) {
    close("too many bytes buffered");
  }
}

// Cuts whole messages out of `view` (RFC 3261 §18.3) and answers keep-alive pings.
std::size_t Connection::process(std::string_view view) {
  std::size_t used = 0;
  sip::Limits limits;
  limits.max_message_bytes = worker_.transport.limits.max_message_bytes;
  while (used < view.size() && state_ == State::kOpen) {
    const std::string_view rest = view.substr(used);
    const std::size_t crlf = sip::skip_keepalive(rest);
    if (crlf > 0) {
      // RFC 5626 §3.5.1: a double-CRLF ping gets a single-CRLF pong.
      if (rest.substr(0, 4) == "\r\n\r\n") {
        send("\r\n");
        used += 4;
        continue;
      }
      if (crlf == rest.size() && crlf < 4) break;  // maybe the start of a ping: wait
      used += crlf;
      continue;
    }
    auto framed = sip::frame_length(rest, limits);
    if (!framed) {
      // Let the receiver see what was sent (it answers 400 when it can), then hang up:
      // the stream cannot be resynchronised.
      if (worker_.receiver != nullptr) worker_.receiver->on_message(rest, flow_);
      close_after_flush("unframeable message");
      return view.size();
    }
    if (!framed->has_value()) break;
    const std::size_t length = **framed;
    if (worker_.receiver != nullptr) worker_.receiver->on_message(rest.substr(0, length), flow_);
    used += length;
  }
  return used;
}

void Connection::send(std::string_view bytes) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kHandshake || !out_.empty()) {
    out_.append(bytes);
  } else {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      if (ssl_ == nullptr) {
        const ssize_t n = ::send(socket_.native_handle(), bytes.data() + sent, bytes.size() - sent,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
          sent += static_cast<std::size_t>(n);
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
        close("write error");
        return;
      }
      ERR_clear_error();
      const int n = SSL_write(ssl_, bytes.data() + sent, static_cast<int>(bytes.size() - sent));
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) break;
      close("TLS write error");
      return;
    }
    if (sent < bytes.size()) out_.append(bytes.substr(sent));
  }
  if (out_.size() > worker_.transport.limits.max_queued_bytes) {
    close("peer does not read");
    return;
  }
  if (!out_.empty() && state_ == State::kOpen) wait_write();
}

void Connection::flush() {
  if (out_.empty()) {
    if (close_when_flushed_) close(close_reason_);
    return;
  }
  std::string pending;
  pending.swap(out_);
  send(pending);
  if (out_.empty()) {
    std::string().swap(out_);
    if (close_when_flushed_) close(close_reason_);
  }
}

void Connection::close_after_flush(const char* why) {
  close_when_flushed_ = true;
  close_reason_ = why;
  if (out_.empty()) close(why);
}

void Connection::check_timeouts(Clock::time_point now) {
  const StreamLimits& l = worker_.transport.limits;
  if (state_ == State::kHandshake && now - opened_ > l.handshake_timeout) {
    close("TLS handshake timeout");
  } else if (!in_.empty() && now - partial_since_ > l.message_timeout) {
    close("incomplete message timeout");
  } else if (now - last_activity_ > l.idle_timeout) {
    close("idle timeout");
  }
}

void Connection::close(const char* why) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  spdlog::debug("event=connection_closed source={} transport={} reason=\"{}\"",
                flow_.remote.to_string(), to_string(flow_.protocol), why);
  boost::system::error_code ec;
  socket_.cancel(ec);
  socket_.close(ec);
  std::string().swap(in_);
  std::string().swap(out_);
  worker_.transport.limiter.release(flow_.remote);
  worker_.transport.stats.connections_open.fetch_sub(1, std::memory_order_relaxed);
  if (worker_.receiver != nullptr) worker_.receiver->on_connection_closed(flow_);
  // Erase later: this may run inside one of our own callbacks.
  asio::post(worker_.io, [&w = worker_, id = flow_.connection] { w.forget(id); });
}

base::Result<Endpoint> open_listener(Worker& w, const config::Listen& cfg, std::uint32_t id,
                                     int& error_number) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(cfg.address, ec);
  if (ec) return std::string("not an IP address");
  const int one = 1;
  const auto fail = [&](const boost::system::error_code& e) -> base::Result<Endpoint> {
    error_number = e.value();
    return e.message();
  };
  if (cfg.transport == config::Transport::kUdp) {
    udp::socket s(w.io);
    const udp::endpoint ep(address, cfg.port);
    s.open(ep.protocol(), ec);
    if (ec) return fail(ec);
    if (address.is_v6()) s.set_option(asio::ip::v6_only(true), ec);
    s.set_option(asio::socket_base::reuse_address(true), ec);
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    // Room for bursts: a full receive queue drops datagrams before we see them.
    s.set_option(asio::socket_base::receive_buffer_size(4 << 20), ec);
    s.bind(ep, ec);
    if (ec) return fail(ec);
    // Worker 0's socket is the first of the group (socket index = worker index); a program
    // attached to it serves the whole group.
    if (w.index == 0 && !w.transport.steering.empty()) {
      if (const int e = attach_response_steering(s.native_handle(), w.transport.steering)) {
        spdlog::warn("event=response_steering_off address={} reason=\"{}\"", cfg.address,
                     std::strerror(e));
      }
    }
    s.non_blocking(true, ec);
    const Endpoint local = from_asio(address, s.local_endpoint(ec).port());
    if (w.udp.size() <= id) w.udp.resize(id + 1);
    w.udp[id] = std::make_unique<UdpListener>(UdpListener{std::move(s), id, local, address.is_v6()});
    return local;
  }
  tcp::acceptor a(w.io);
  const tcp::endpoint ep(address, cfg.port);
  a.open(ep.protocol(), ec);
  if (ec) return fail(ec);
  if (address.is_v6()) a.set_option(asio::ip::v6_only(true), ec);
  a.set_option(asio::socket_base::reuse_address(true), ec);
  ::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  a.bind(ep, ec);
  if (ec) return fail(ec);
  a.listen(1024, ec);
  if (ec) return fail(ec);
  const Endpoint local = from_asio(address, a.local_endpoint(ec).port());
  const Protocol protocol =
      cfg.transport == config::Transport::kTls ? Protocol::kTls : Protocol::kTcp;
  w.streams.push_back(std::make_unique<StreamListener>(
      StreamListener{std::move(a), id, local, protocol, asio::steady_timer(w.io)}));
  return local;
}

}  // namespace

Transport::Impl::Impl(unsigned n, const StreamLimits& l, TlsContextSource tls)
    : limits(l), tls_source(std::move(tls)), limiter(limits) {
  for (unsigned i = 0; i < n; ++i) workers.push_back(std::make_unique<Worker>(*this, i));
}

Transport::Transport(unsigned workers, const StreamLimits& limits, TlsContextSource tls)
    : impl_(std::make_unique<Impl>(workers == 0 ? 1 : workers, limits, std::move(tls))) {}

Transport::~Transport() { stop(); }

base::Result<Transport::Opened> Transport::listen(const config::Listen& cfg) {
  const std::uint32_t id = impl_->listeners++;
  const std::string name = std::string(config::to_string(cfg.transport)) + " " +
                           (cfg.address.find(':') != std::string::npos ? "[" + cfg.address + "]"
                                                                       : cfg.address) +
                           ":" + std::to_string(cfg.port);
  Endpoint local;
  for (auto& w : impl_->workers) {
    int error_number = 0;
    auto r = open_listener(*w, cfg, id, error_number);
    if (!r) {
      const bool family_missing = error_number == EAFNOSUPPORT || error_number == EADDRNOTAVAIL;
      if (cfg.optional && family_missing) {
        return Opened{name + ": not opened (" + r.error() + ")"};
      }
      return name + ": " + r.error();
    }
    local = *r;
  }
  impl_->bound.emplace_back(cfg, local);
  impl_->bound_ids.push_back(id);
  return Opened{};
}

void Transport::steer_responses(std::string_view marker) {
  impl_->steering = response_steering_program(marker, kSteeringInstructions);
}

void Transport::set_admission(std::function<bool(const Endpoint& source)> admit) {
  impl_->admit = std::move(admit);
}

void Transport::set_receiver(unsigned index, Receiver* receiver) {
  impl_->workers.at(index)->receiver = receiver;
}

void Transport::start() {
  if (impl_->started) return;
  impl_->started = true;
  for (auto& w : impl_->workers) {
    for (auto& l : w->udp) {
      if (l) w->read_udp(*l);
    }
    for (auto& l : w->streams) w->accept(*l);
    w->mail.watch();
    w->thread = std::thread([wp = w.get()] { wp->run(); });
    base::name_thread(w->thread, "sw-worker-" + std::to_string(w->index));
  }
}

void Transport::stop_listening() {
  for (auto& w : impl_->workers) {
    asio::post(w->io, [wp = w.get()] {
      for (auto& l : wp->streams) {
        boost::system::error_code ec;
        l->acceptor.close(ec);
        l->retry.cancel();
      }
    });
  }
}

void Transport::stop() {
  if (!impl_) return;
  for (auto& w : impl_->workers) {
    asio::post(w->io, [wp = w.get()] {
      wp->listening = false;
      wp->sweep.cancel();
      wp->timers.shutdown();
      std::vector<std::shared_ptr<Connection>> all;
      for (auto& [id, c] : wp->connections) all.push_back(c);
      for (auto& c : all) c->close("server stopping");
      boost::system::error_code ec;
      for (auto& l : wp->streams) l->acceptor.close(ec);
      for (auto& l : wp->udp) {
        if (l) l->socket.close(ec);
      }
      wp->io.stop();
    });
  }
  for (auto& w : impl_->workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  for (auto& w : impl_->workers) w->connections.clear();
}

void Transport::send(const Flow& flow, std::string_view bytes) {
  if (flow.remote.is_unusable_destination()) {
    impl_->stats.unusable_destinations.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (flow.worker >= impl_->workers.size()) return;
  Worker& w = *impl_->workers[flow.worker];
  if (flow.protocol == Protocol::kUdp) {
    // Sending on a socket is safe from any thread; only the outbox is the worker's own.
    Outbox* out = nullptr;
    if (t_worker >= 0 && static_cast<std::size_t>(t_worker) < impl_->workers.size()) {
      Outbox& here = impl_->workers[static_cast<std::size_t>(t_worker)]->outbox;
      if (here.open()) out = &here;
    }
    w.send_udp(flow, bytes, out);
    return;
  }
  if (t_worker == flow.worker) {
    w.send_stream(flow, bytes);
    return;
  }
  asio::post(w.io, [&w, flow, copy = std::string(bytes)] { w.send_stream(flow, copy); });
}

void Transport::post(unsigned index, std::function<void()> task) {
  impl_->workers.at(index)->mail.put(std::move(task));
}

base::TimerService& Transport::timers(unsigned index) { return impl_->workers.at(index)->timers; }

unsigned Transport::workers() const { return static_cast<unsigned>(impl_->workers.size()); }

std::vector<std::pair<config::Listen, Endpoint>> Transport::bound() const { return impl_->bound; }

std::vector<Transport::BoundListener> Transport::listeners() const {
  std::vector<BoundListener> out;
  for (std::size_t i = 0; i < impl_->bound.size(); ++i) {
    out.push_back({impl_->bound_ids[i], impl_->bound[i].first.transport, impl_->bound[i].second});
  }
  return out;
}

const TransportStats& Transport::stats() const { return impl_->stats; }

}  // namespace transport
