// The transaction layer (RFC 3261 §17): client and server transactions, INVITE and
// non-INVITE, with all timers, for ONE worker. Each worker owns one TransactionLayer and
// uses it from its own thread only (no locks): a UDP source keeps landing on the same worker
// (SO_REUSEPORT hashes the source), a stream belongs to the worker that accepted it, and
// responses to client transactions are routed by the worker id inside the branch
// (worker_of_branch()).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/timer_service.h"
#include "sip/message.h"
#include "transport/endpoint.h"

namespace txn {

using Duration = std::chrono::milliseconds;

struct Timers {  // RFC 3261 §17.1.1.1
  Duration t1{500};
  Duration t2{4000};
  Duration t4{5000};
};

// Timers, injected so tests run without sleeping (see base/timer_service.h).
using TimerService = base::TimerService;

// Sends bytes along a flow (to flow.remote over flow's socket or connection). send() must not
// call back into the TransactionLayer (a broken connection is reported later, from the event
// loop, through connection_closed()).
class Sender {
 public:
  virtual ~Sender() = default;
  virtual void send(const transport::Flow& flow, std::string_view bytes) = 0;
};

using ServerTxnId = std::uint64_t;  // 0: none
using ClientTxnId = std::uint64_t;

// What the layer tells the transaction user (registrar, proxy, local answers).
class TransactionUser {
 public:
  virtual ~TransactionUser() = default;
  // A new request got a server transaction (retransmissions never reach here). For a CANCEL,
  // `cancelled` is the INVITE server transaction it matches (RFC 3261 §9.2), or 0 (answer
  // 481). It is given whatever that INVITE transaction's state: when it has already sent a
  // final response, the TU answers the CANCEL 200 and does nothing else (respond() with a
  // final response on it would return false anyway). The request and flow are valid only
  // during the call. The TU may call respond(id, ...) from inside this call.
  virtual void on_request(ServerTxnId id, const sip::Message& request, const transport::Flow& flow,
                          ServerTxnId cancelled) = 0;
  // An ACK that matched no INVITE server transaction (the ACK for a 2xx, RFC 3261 §17.2.3).
  virtual void on_stray_ack(const sip::Message& ack, const transport::Flow& flow) = 0;
  // A response matched a client transaction (retransmissions of a final response are absorbed
  // and not reported again, except 2xx to INVITE, which are, RFC 3261 §17.1.1.2: the INVITE
  // client transaction stays 64*T1 in RFC 6026 "Accepted" to report every 2xx, from every
  // fork). Provisional responses are all reported. Responses to a CANCEL sent by cancel() are
  // not reported: the INVITE's own final response (487 usually) is what matters.
  virtual void on_response(ClientTxnId id, const sip::Message& response,
                           const transport::Flow& flow) = 0;
  // Timer B or F fired, or the transport failed: the request got no final response. Also for
  // a cancelled INVITE that got no final response within 64*T1 of the CANCEL (RFC 3261 §9.1).
  virtual void on_client_timeout(ClientTxnId id) = 0;
};

// A branch new_branch() made, kept inline: at most 48 characters, no allocation.
class Branch {
 public:
  static constexpr std::size_t kMaxSize = 48;
  Branch() = default;
  // `text` must be at most kMaxSize characters (the longer part is dropped).
  explicit Branch(std::string_view text) : size_(std::min(text.size(), kMaxSize)) {
    std::copy_n(text.data(), size_, chars_.data());
  }
  std::string_view view() const { return {chars_.data(), size_}; }
  operator std::string_view() const { return view(); }  // a branch reads as its text

 private:
  std::array<char, kMaxSize> chars_{};
  std::size_t size_ = 0;
};

class TransactionLayer {
 public:
  TransactionLayer(std::uint16_t worker, const Timers& timers, TimerService& timer_service,
                   Sender& sender, TransactionUser& user);
  ~TransactionLayer();
  TransactionLayer(const TransactionLayer&) = delete;
  TransactionLayer& operator=(const TransactionLayer&) = delete;

  enum class Outcome {
    kNew,             // new server transaction, TU told
    kRetransmission,  // absorbed; the last response (if any) was sent again
    kAck,             // ACK for a non-2xx final response: absorbed (§17.2.1)
    kStrayAck,        // ACK matching nothing: given to on_stray_ack
    kResponse,        // matched a client transaction, TU told
    kAbsorbed,        // matched a client transaction, retransmission absorbed
    kStrayResponse,   // matched nothing: dropped (§18.1.2)
  };

  // Feed a parsed request that arrived on `flow`. Matching per RFC 3261 §17.2.3, and the
  // RFC 2543 rules (§17.2.3, last paragraphs) when the top Via branch lacks the magic cookie
  // (Via::rfc3261_branch() false). An INVITE gets a 100 Trying from the layer as soon as
  // on_request returns, unless the TU already responded inside on_request (a 401 challenge
  // then costs one datagram, not two). The top Via must already carry received/rport if the
  // caller wants them echoed: responses are built by the TU; the layer only stores and resends
  // them (to the flow the transaction was created on).
  // Retransmissions: absorbed, the last response resent. After a 2xx to an INVITE the
  // transaction stays 64*T1 in RFC 6026 "Accepted": retransmitted INVITEs are absorbed
  // (RFC 6026 §7.1; the UAS's TU retransmits its 2xx until the ACK, RFC 3261 §13.3.1.4, and
  // a proxy forwards those) and the ACK for the 2xx goes to on_stray_ack.
  Outcome receive_request(const sip::Message& request, const transport::Flow& flow);
  // Feed a parsed response (matched by branch + CSeq method, §17.1.3).
  Outcome receive_response(const sip::Message& response, const transport::Flow& flow);

  // TU → server transaction: send `bytes` (a response with this status code) and move the
  // state machine. Returns false when the transaction no longer exists or is past the point
  // of accepting this response (e.g. a second final response). An INVITE transaction that
  // sent a 2xx accepts further 2xx for 64*T1 (a proxy forwarding 2xx retransmissions,
  // RFC 6026 §7.1).
  bool respond(ServerTxnId id, int status_code, std::string bytes);
  // Ends a non-INVITE server transaction that has sent its final response, without waiting
  // out Timer J: a retransmission of the request is then a new request, answered afresh
  // (a stateless answer, RFC 3261 §8.2.7). Returns false when there is no such transaction.
  bool forget(ServerTxnId id);

  // TU → client transaction: send a request (its top Via already carries a branch from
  // new_branch()) to `destination`, with retransmissions and timeouts per §17.1.
  // `request` is the parse of `bytes` and is needed only during the call. Returns 0 when no
  // transaction was made: an ACK (the ACK for a 2xx is no transaction: it is sent once,
  // as is), a request without Via, or a branch + method already in use (nothing is sent).
  ClientTxnId send_request(const sip::Message& request, std::string bytes,
                           const transport::Flow& destination);
  // The same for a caller that built `bytes` itself and knows what a parse would tell: the
  // method (its enum, and its name as in the CSeq) and the top Via's branch. A proxy
  // forwarding a request saves parsing it again.
  ClientTxnId send_request(sip::Method method, std::string_view method_text,
                           std::string_view branch, std::string bytes,
                           const transport::Flow& destination);
  // RFC 3261 §9.1: cancel a pending client INVITE transaction (sends CANCEL in its own
  // transaction once a provisional response has arrived; before that the wish is kept and
  // acted on at the first provisional). True also when a CANCEL was already sent or wished;
  // false for an unknown id, a non-INVITE, or an INVITE that already got a final response.
  bool cancel(ClientTxnId id);

  // A connection closed: client transactions on it still waiting for a final response end
  // with on_client_timeout (§17.1.4); every other transaction on it just ends (§17.2.4).
  void connection_closed(std::uint64_t connection);

  // A fresh RFC 3261 branch: "z9hG4bKsw<worker>.<counter, hex>.<16 hex digits>", e.g.
  // "z9hG4bKsw3.1a2b.9f8e7d6c5b4a3210". The counter makes it unique within the layer; the last
  // part is a keyed hash (SipHash, key drawn at construction) of the counter, so branches stay
  // unique across restarts and a peer that sees one cannot predict the others.
  Branch new_branch();
  // The worker that created `branch` with new_branch(), or -1 when it is not one of ours.
  static int worker_of_branch(std::string_view branch);
  // What new_branch() puts before the worker's index: "z9hG4bKsw".
  static constexpr std::string_view kBranchPrefix = "z9hG4bKsw";

  // Live transactions (those waiting on timers included; client ones include the CANCELs
  // sent by cancel()).
  std::size_t server_transactions() const;
  std::size_t client_transactions() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace txn
