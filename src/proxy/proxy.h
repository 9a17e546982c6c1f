// The stateful proxy (RFC 3261 §16) of one worker: requests for local users and trunks are
// authenticated, checked against the caller's policy (identity, destinations, limits, SRTP),
// forked in parallel to every contact, and their responses forwarded; in-dialog requests are
// loose-routed along the flows written into the Record-Route (route_token.h).
//
// One Proxy per worker, used from that worker's thread only, beside the worker's
// TransactionLayer. Shared state (locations, subscribers, dialogs, limits) is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/digest.h"
#include "base/clock.h"
#include "base/timer_service.h"
#include "config/config.h"
#include "proxy/dial_plan.h"
#include "proxy/dialogs.h"
#include "proxy/route_token.h"
#include "registrar/location.h"
#include "registrar/subscribers.h"
#include "shield/call_limits.h"
#include "shield/shield.h"
#include "sip/message.h"
#include "sip/parser.h"
#include "sip/response.h"
#include "txn/transaction_layer.h"

namespace proxy {

// One of our listening sockets, as the proxy needs it to send from it.
struct Listener {
  std::uint32_t id = 0;
  transport::Protocol protocol = transport::Protocol::kUdp;
  transport::Endpoint local;  // bound address (may be the unspecified address)
};

// Settings and state every worker's Proxy shares (read-only while running, except the
// thread-safe objects pointed to).
struct Shared {
  std::string domain;
  std::vector<std::string> local_hosts;  // hosts that mean "this server"
  std::string record_route_host;         // empty: the local address of the flow
  config::CallPolicy calls;              // defaults
  std::unordered_map<std::string, config::UserPolicy> users;  // overrides by user name
  std::unordered_map<std::string, shield::NetworkList> user_networks;  // allowed_networks
  std::chrono::milliseconds ring_timeout{60000};
  std::vector<Listener> listeners;
  const DialPlan* dial_plan = nullptr;
  registrar::Location* location = nullptr;
  registrar::SubscriberCache* subscribers = nullptr;
  auth::DigestVerifier* verifier = nullptr;
  shield::Shield* shield = nullptr;         // may be null (tests)
  shield::SecurityEvents* events = nullptr; // call refusals; may be null
  shield::CallLimits* limits = nullptr;
  DialogTable* dialogs = nullptr;
  const RouteSigner* signer = nullptr;
  sip::ParseOptions parse;
  std::function<std::chrono::system_clock::time_point()> now = base::system_now;

  // The policy that applies to `user` (its overrides, or the defaults).
  const config::CallPolicy& policy_of(const std::string& user) const;
};

// What the proxy needs from the worker it lives in (the Router).
class Host {
 public:
  virtual ~Host() = default;
  // A response the server makes itself (a new To tag when the request had none).
  virtual void answer(txn::ServerTxnId id, const sip::Message& request,
                      const transport::Flow& flow, sip::ResponseSpec spec) = 0;
  // 407 with the digest challenges (stale=true when the credentials had merely expired).
  virtual void challenge(txn::ServerTxnId id, const sip::Message& request,
                         const transport::Flow& flow, bool proxy) = 0;
  // Sends bytes along a flow without a transaction (ACK for a 2xx).
  virtual void send(const transport::Flow& flow, std::string_view bytes) = 0;
};

class Proxy {
 public:
  Proxy(std::uint16_t worker, Shared& shared, Host& host, txn::TransactionLayer& txn,
        base::TimerService& timers);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // A request that is not for the server itself (the router's §16.3 checks are done): an
  // out-of-dialog request to route, or an in-dialog request to loose-route.
  void on_request(txn::ServerTxnId id, const sip::Message& request, const transport::Flow& flow);
  // A CANCEL matched INVITE server transaction `invite` (the CANCEL itself is answered by the
  // router): the pending branches are cancelled.
  void on_cancel(txn::ServerTxnId invite);
  // An ACK for a 2xx (no transaction): forwarded along the route token.
  void on_ack(const sip::Message& ack, const transport::Flow& flow);
  // Client transaction events for the branches this proxy created.
  void on_response(txn::ClientTxnId id, const sip::Message& response,
                   const transport::Flow& flow);
  void on_client_timeout(txn::ClientTxnId id);

  // Ends an answered call that ran past its maximum duration: BYE to both parties.
  void end_call(const Dialog& dialog);

  std::size_t pending() const;  // requests still waiting for a final response

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace proxy
