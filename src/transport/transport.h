// The SIP transports (RFC 3261 §18): UDP, TCP and TLS listeners on N workers, each worker an
// event loop on its own thread that owns its sockets and connections.
//
// Reading: UDP sockets are opened once per worker with SO_REUSEPORT, so the kernel spreads
// datagrams (by source) over the workers without a shared queue; TCP/TLS listeners likewise,
// and a connection stays with the worker that accepted it. Each whole message (a datagram, or
// a message framed by Content-Length on a stream) goes to that worker's Receiver.
//
// Writing: send() from the worker that owns the flow writes at once; from another thread it
// is posted to the owner. A stream send goes over the connection the flow names (clients
// behind NAT can only be reached that way); nothing is ever sent to a broadcast, multicast or
// unspecified address.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/timer_service.h"
#include "config/config.h"
#include "transport/endpoint.h"

namespace transport {

// What a worker's transports deliver upward. Called on the worker's thread.
class Receiver {
 public:
  virtual ~Receiver() = default;
  // One whole message. `bytes` is valid only during the call.
  virtual void on_message(std::string_view bytes, const Flow& flow) = 0;
  // A stream connection ended (peer closed, error, timeout, limit).
  virtual void on_connection_closed(const Flow& flow) = 0;
};

struct StreamLimits {
  std::size_t max_connections = 10000;
  std::size_t max_connections_per_source = 64;
  std::chrono::seconds idle_timeout{600};
  std::chrono::seconds handshake_timeout{10};
  // A message must be complete within this time once its first byte arrived (slow loris).
  std::chrono::seconds message_timeout{30};
  std::size_t max_buffered_bytes = 65536 + 4096;  // unframed input held per connection
  std::size_t max_queued_bytes = 1 << 20;         // unsent output per connection
  std::size_t max_message_bytes = 65535;
};

// Counters an operator (and the tests) can read; updated with relaxed atomics.
struct TransportStats {
  std::atomic<std::uint64_t> datagrams_in{0};
  std::atomic<std::uint64_t> messages_out{0};
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_refused{0};  // over a connection limit
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> unusable_destinations{0};  // broadcast/multicast sends refused
};

class Transport {
 public:
  // The TLS context for new connections (SIGHUP swaps it; live connections keep theirs).
  // Returns the SSL_CTX* to use (owned by the returned shared_ptr's deleter).
  using TlsContextSource = std::function<std::shared_ptr<void>()>;

  Transport(unsigned workers, const StreamLimits& limits, TlsContextSource tls);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Opens one listener on every worker. Fails with a message naming the address and the
  // reason (e.g. "tcp [::]:5060: Address already in use"). A listener marked optional that
  // cannot be opened because the address family is unavailable is skipped with a warning.
  struct Opened {
    std::string warning;  // empty when the listener opened
  };
  base::Result<Opened> listen(const config::Listen& listen);

  // Before listen(): a UDP response carrying `marker` followed by a worker's index (one
  // digit) and '.' goes to that worker's socket rather than where the kernel's hash of its
  // source would put it (transport/steering.h). The transaction layer puts its worker's index
  // there in every branch it makes, so responses land on the worker that waits for them.
  void steer_responses(std::string_view marker);

  // Decides whether a new TCP/TLS connection from `source` is served at all (bans, deny
  // lists); a refused one is closed at once. Set before start(); called on worker threads.
  void set_admission(std::function<bool(const Endpoint& source)> admit);

  // Sets the receiver of worker `index` (before start()).
  void set_receiver(unsigned index, Receiver* receiver);

  // Starts the workers' threads.
  void start();
  // Stops accepting connections and reading new datagrams; flows stay writable.
  void stop_listening();
  // Closes everything and joins the threads.
  void stop();

  // Sends `bytes` along `flow` (see the header comment). Thread-safe.
  void send(const Flow& flow, std::string_view bytes);
  // Runs `task` on worker `index`'s thread.
  void post(unsigned index, std::function<void()> task);
  // The timers of worker `index` (use them from that worker's thread only).
  base::TimerService& timers(unsigned index);

  unsigned workers() const;
  // The local addresses actually bound (after listen()), e.g. to learn an ephemeral port.
  std::vector<std::pair<config::Listen, Endpoint>> bound() const;
  // The same with each listener's id (Flow::listener), for sending from a chosen socket.
  struct BoundListener {
    std::uint32_t id = 0;
    config::Transport transport = config::Transport::kUdp;
    Endpoint local;
  };
  std::vector<BoundListener> listeners() const;
  const TransportStats& stats() const;

  struct Impl;  // public only so that the implementation's helpers can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace transport
