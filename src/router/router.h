// The per-worker core: parses what the transports deliver, feeds the transaction layer, and
// answers the requests the server handles itself (RFC 3261 §8.2 and §16.3 checks, OPTIONS,
// challenges). Later issues plug the registrar and the proxy in here.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "auth/challenge.h"
#include "base/clock.h"
#include "proxy/proxy.h"
#include "registrar/registrar.h"
#include "shield/shield.h"
#include "sip/parser.h"
#include "sip/response.h"
#include "transport/transport.h"
#include "txn/transaction_layer.h"

namespace router {

// Settings and state shared by every worker's Router (read-only while running, except the
// atomics).
struct Shared {
  std::string domain;                    // realm of challenges
  std::vector<std::string> local_hosts;  // hosts that mean "this server" in a Request-URI
  sip::ParseOptions parse;               // limits; framing is set per flow
  txn::Timers timers;
  const auth::Challenger* challenger = nullptr;
  std::function<std::chrono::system_clock::time_point()> now = base::system_now;
  std::atomic<bool> draining{false};     // SIGTERM: new requests get 503
  registrar::Registrar* registrar = nullptr;  // null: REGISTER is only ever challenged
  shield::Shield* shield = nullptr;           // null: no edge checks (unit tests)
  proxy::Shared* proxy = nullptr;             // null: requests for users are only challenged
  // Runs a task on worker `index`'s thread (answers that complete on another thread).
  std::function<void(unsigned index, std::function<void()> task)> post;
  // Every worker's router by index (set before the transport starts): a response that
  // arrives on the wrong worker is handed to the one whose client transaction it answers.
  std::vector<class Router*> routers;
};

// What the router hands to the wire. The real one is the Transport; tests record.
using SendFn = std::function<void(const transport::Flow&, std::string_view)>;

class Router final : public transport::Receiver,
                     public txn::TransactionUser,
                     public txn::Sender,
                     public proxy::Host {
 public:
  Router(std::uint16_t worker, Shared& shared, SendFn send, base::TimerService& timers);

  // transport::Receiver
  void on_message(std::string_view bytes, const transport::Flow& flow) override;
  void on_connection_closed(const transport::Flow& flow) override;

  // txn::TransactionUser
  void on_request(txn::ServerTxnId id, const sip::Message& request, const transport::Flow& flow,
                  txn::ServerTxnId cancelled) override;
  void on_stray_ack(const sip::Message& ack, const transport::Flow& flow) override;
  void on_response(txn::ClientTxnId id, const sip::Message& response,
                   const transport::Flow& flow) override;
  void on_client_timeout(txn::ClientTxnId id) override;

  // txn::Sender and proxy::Host
  void send(const transport::Flow& flow, std::string_view bytes) override;
  // proxy::Host: answers `request` with `spec` in server transaction `id` (received/rport
  // from `flow`); challenges it (401, or 407 when `proxy`).
  void answer(txn::ServerTxnId id, const sip::Message& request, const transport::Flow& flow,
              sip::ResponseSpec spec) override;
  void challenge(txn::ServerTxnId id, const sip::Message& request, const transport::Flow& flow,
                 bool proxy) override;

  // A response that arrived on another worker for one of this worker's client transactions.
  void on_foreign_response(const std::string& bytes, const transport::Flow& flow);
  // Ends an answered call past its maximum duration (from the main thread, posted here).
  void end_call(const proxy::Dialog& dialog);

  std::size_t transactions() const;
  // Requests handed to on_request (not retransmissions): what "processed" means in tests.
  std::uint64_t requests_processed() const { return processed_; }

 private:
  // The transaction id of a request answered without a transaction: answer() sends the
  // response straight along the flow.
  static constexpr txn::ServerTxnId kStateless = 0;
  void on_invalid(std::string_view bytes, const transport::Flow& flow, const sip::Error& error);
  void on_register(txn::ServerTxnId id, const sip::Message& request, const transport::Flow& flow);
  // Sends a registrar's answer in transaction `id`.
  void answer(txn::ServerTxnId id, const sip::Message& request, const transport::Flow& flow,
              const registrar::Answer& a);
  bool targets_this_server(const sip::Uri& uri) const;
  // A To tag: 16 hex digits, one more than a std::string holds without allocating.
  using Tag = std::array<char, 16>;
  static std::string_view view(const Tag& tag) { return {tag.data(), tag.size()}; }
  Tag new_tag();

  const std::uint16_t worker_;
  Shared& shared_;
  const SendFn send_;
  txn::TransactionLayer txn_;
  sip::Message message_;  // reused for every parse on this worker
  // Registrations whose bindings became durable, handed over by the store's writer thread. A
  // commit makes a group of them durable at once; one task posted per group answers them all
  // (a post per registration cost a wake-up of this worker each).
  struct Durable {
    txn::ServerTxnId id;
    std::string head;  // sip::response_head() of the REGISTER, made while it was at hand
    registrar::Registrar::Finish finish;  // builds the answer, here on the worker
  };
  void answer_durable();
  // txn_.respond() for the first send of an answer (answering_ set meanwhile).
  void respond(txn::ServerTxnId id, int code, std::string bytes);
  std::mutex durable_mu_;
  std::vector<Durable> durable_;      // guarded by durable_mu_
  std::vector<Durable> durable_now_;  // this worker's: the batch being answered
  std::uint64_t tag_counter_ = 0;
  const std::uint64_t tag_salt_;
  std::uint64_t processed_ = 0;
  bool answering_ = false;  // inside answer(): the first send of an answer, not a retransmission
  std::unique_ptr<proxy::Proxy> proxy_;  // null without Shared::proxy
};

// RFC 3261 §18.2.2 / RFC 3581: where responses to a request arriving on `arrival` go.
// Streams answer on the same connection; UDP answers the source address, at the source port
// when the top Via asked for rport, else at the Via's port (5060 if none).
transport::Flow response_flow(const sip::Via& top, const transport::Flow& arrival);

}  // namespace router
