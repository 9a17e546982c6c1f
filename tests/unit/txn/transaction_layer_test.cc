// TransactionLayer (RFC 3261 §17, RFC 6026): every state machine driven by a manual clock.
// Tests assert what a peer would notice: the bytes on the wire and when they were sent, and
// what the transaction user was told.

#include "txn/transaction_layer.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "sip/message.h"
#include "sip/parser.h"
#include "sip/response.h"
#include "transport/endpoint.h"

namespace txn {
namespace {

using namespace std::chrono_literals;
using Outcome = TransactionLayer::Outcome;

// ---- test doubles

// A manual clock: advance() fires due timers in order of due time (then of start order),
// moving the clock to each one's due time before firing it.
class FakeTimers : public TimerService {
 public:
  Id start(Duration after, std::function<void()> fire) override {
    const Id id = next_id_++;
    timers_.emplace(id, Entry{now_ + after, std::move(fire)});
    return id;
  }
  void cancel(Id id) override { timers_.erase(id); }

  void advance(Duration by) {
    const Duration until = now_ + by;
    for (;;) {
      auto due = timers_.end();
      for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (it->second.due <= until && (due == timers_.end() || it->second.due < due->second.due)) {
          due = it;
        }
      }
      if (due == timers_.end()) break;
      now_ = due->second.due;
      std::function<void()> fire = std::move(due->second.fire);
      timers_.erase(due);
      fire();
    }
    now_ = until;
  }

  Duration now() const { return now_; }
  std::size_t pending() const { return timers_.size(); }

 private:
  struct Entry {
    Duration due;
    std::function<void()> fire;
  };
  std::map<Id, Entry> timers_;  // ordered by id: equal due times fire in start order
  Id next_id_ = 1;
  Duration now_{0};
};

struct Sent {
  transport::Flow flow;
  std::string bytes;
  Duration at;
};

class RecordingSender : public Sender {
 public:
  explicit RecordingSender(const FakeTimers& clock) : clock_(clock) {}
  void send(const transport::Flow& flow, std::string_view bytes) override {
    sent.push_back(Sent{flow, std::string(bytes), clock_.now()});
  }
  std::vector<Sent> sent;

 private:
  const FakeTimers& clock_;
};

struct Event {
  enum Kind { kRequest, kStrayAck, kResponse, kTimeout } kind;
  std::uint64_t id = 0;
  std::string method;  // requests and stray ACKs
  int code = 0;        // responses
  ServerTxnId cancelled = 0;
};

class RecordingUser : public TransactionUser {
 public:
  void on_request(ServerTxnId id, const sip::Message& request, const transport::Flow&,
                  ServerTxnId cancelled) override {
    events.push_back(Event{Event::kRequest, id, std::string(request.method_text), 0, cancelled});
    if (request_hook) request_hook(id, request);
  }
  void on_stray_ack(const sip::Message& ack, const transport::Flow&) override {
    events.push_back(Event{Event::kStrayAck, 0, std::string(ack.method_text), 0, 0});
  }
  void on_response(ClientTxnId id, const sip::Message& response, const transport::Flow&) override {
    events.push_back(Event{Event::kResponse, id, "", response.status_code, 0});
    if (response_hook) response_hook(id, response);
  }
  void on_client_timeout(ClientTxnId id) override {
    events.push_back(Event{Event::kTimeout, id, "", 0, 0});
    if (timeout_hook) timeout_hook(id);
  }

  std::size_t count(Event::Kind kind) const {
    return static_cast<std::size_t>(std::count_if(events.begin(), events.end(),
                                                  [&](const Event& e) { return e.kind == kind; }));
  }

  std::vector<Event> events;
  std::function<void(ServerTxnId, const sip::Message&)> request_hook;
  std::function<void(ClientTxnId, const sip::Message&)> response_hook;
  std::function<void(ClientTxnId)> timeout_hook;
};

// ---- messages

// A request as a UA would send it; `branch` empty leaves the Via without one.
struct Req {
  std::string method = "INVITE";
  std::string branch = "z9hG4bKc1";
  std::string sent_by = "192.0.2.10:5060";
  std::string to_tag{};
  std::string from_tag = "a1";
  std::string call_id = "call1@192.0.2.10";
  std::uint32_t cseq = 1;
  std::string uri = "sip:bob@example.com";
  std::string transport = "UDP";

  std::string text() const {
    std::string out = method + " " + uri + " SIP/2.0\r\n";
    out += "Via: SIP/2.0/" + transport + " " + sent_by;
    if (!branch.empty()) out += ";branch=" + branch;
    out += "\r\nMax-Forwards: 70\r\n";
    out += "From: <sip:alice@example.com>;tag=" + from_tag + "\r\n";
    out += "To: <sip:bob@example.com>";
    if (!to_tag.empty()) out += ";tag=" + to_tag;
    out += "\r\nCall-ID: " + call_id + "\r\n";
    out += "CSeq: " + std::to_string(cseq) + " " + method + "\r\n";
    out += "Content-Length: 0\r\n\r\n";
    return out;
  }
};

// Bytes and their parse, kept together (the Message borrows the bytes).
struct Parsed {
  explicit Parsed(std::string b) : bytes(std::move(b)) {
    const auto r = sip::parse(bytes, msg);
    EXPECT_TRUE(r.ok()) << (r.ok() ? std::string() : r.error().describe()) << "\n" << bytes;
  }
  explicit Parsed(const Req& req) : Parsed(req.text()) {}
  Parsed(const Parsed&) = delete;
  Parsed& operator=(const Parsed&) = delete;

  std::string bytes;
  sip::Message msg;
};

std::string Response(const sip::Message& request, int code, std::string_view to_tag = "") {
  sip::ResponseSpec spec;
  spec.code = code;
  spec.to_tag = to_tag;
  return sip::build_response(request, spec);
}

std::string FirstLine(std::string_view bytes) {
  return std::string(bytes.substr(0, bytes.find("\r\n")));
}

std::string Header(std::string_view bytes, std::string_view name) {
  const std::string needle = "\r\n" + std::string(name) + ": ";
  const std::size_t at = bytes.find(needle);
  if (at == std::string_view::npos) return "";
  const std::size_t from = at + needle.size();
  return std::string(bytes.substr(from, bytes.find("\r\n", from) - from));
}

bool SameFlow(const transport::Flow& a, const transport::Flow& b) {
  return a.protocol == b.protocol && a.remote == b.remote && a.local == b.local &&
         a.listener == b.listener && a.connection == b.connection && a.worker == b.worker;
}

transport::Flow Udp() {
  transport::Flow f;
  f.protocol = transport::Protocol::kUdp;
  f.remote = *transport::Endpoint::from_string("192.0.2.10", 5060);
  f.local = *transport::Endpoint::from_string("198.51.100.1", 5060);
  return f;
}

transport::Flow Tcp(std::uint64_t connection = 7) {
  transport::Flow f = Udp();
  f.protocol = transport::Protocol::kTcp;
  f.connection = connection;
  return f;
}

// ---- fixture

class TransactionLayerTest : public ::testing::Test {
 protected:
  static constexpr Duration kT1 = 500ms, kT4 = 5000ms, k64T1 = 32000ms;  // T2 is 4000ms

  // The times (since `from`) at which messages whose first line starts with `prefix` went out.
  std::vector<Duration> SendTimes(std::string_view prefix, std::size_t from = 0) const {
    std::vector<Duration> out;
    for (std::size_t i = from; i < sender.sent.size(); ++i) {
      if (sender.sent[i].bytes.starts_with(prefix)) out.push_back(sender.sent[i].at);
    }
    return out;
  }
  std::size_t SentCount(std::string_view prefix) const { return SendTimes(prefix).size(); }
  const std::string& LastSent() const { return sender.sent.back().bytes; }

  Outcome Receive(const Req& req, const transport::Flow& flow = Udp()) {
    Parsed p(req);
    return layer.receive_request(p.msg, flow);
  }
  Outcome ReceiveResponse(const std::string& bytes, const transport::Flow& flow = Udp()) {
    Parsed p(bytes);
    return layer.receive_response(p.msg, flow);
  }
  ClientTxnId Send(const Req& req, const transport::Flow& flow = Udp()) {
    Parsed p(req);
    return layer.send_request(p.msg, p.bytes, flow);
  }
  // A response from the peer to the request we sent as `req`.
  static std::string Answer(const Req& req, int code, std::string_view to_tag = "") {
    Parsed p(req);
    return Response(p.msg, code, to_tag);
  }

  // Delivers `req` and returns the id the TU got.
  ServerTxnId NewServer(const Req& req, const transport::Flow& flow = Udp()) {
    const std::size_t before = user.events.size();
    EXPECT_EQ(Receive(req, flow), Outcome::kNew);
    EXPECT_EQ(user.events.size(), before + 1);
    return user.events.empty() ? 0 : user.events.back().id;
  }

  FakeTimers timers;
  RecordingSender sender{timers};
  RecordingUser user;
  Timers t{};
  TransactionLayer layer{3, t, timers, sender, user};
};

// ======================================================================= server non-INVITE

TEST_F(TransactionLayerTest, ServerNonInviteUdpWalksTryingProceedingCompletedTerminated) {
  const Req options{.method = "OPTIONS"};
  Parsed request(options);
  const ServerTxnId id = NewServer(options);
  EXPECT_NE(id, 0u);
  EXPECT_TRUE(sender.sent.empty()) << "no 100 Trying for a non-INVITE";

  // Trying: a retransmission is absorbed silently.
  EXPECT_EQ(Receive(options), Outcome::kRetransmission);
  EXPECT_TRUE(sender.sent.empty());
  EXPECT_EQ(user.count(Event::kRequest), 1u);

  // Proceeding: the provisional is resent.
  ASSERT_TRUE(layer.respond(id, 100, Response(request.msg, 100)));
  EXPECT_EQ(Receive(options), Outcome::kRetransmission);
  ASSERT_EQ(sender.sent.size(), 2u);
  EXPECT_EQ(FirstLine(sender.sent[1].bytes), "SIP/2.0 100 Trying");

  // Completed: the final response is resent; no second final is accepted.
  ASSERT_TRUE(layer.respond(id, 200, Response(request.msg, 200, "srv")));
  EXPECT_EQ(Receive(options), Outcome::kRetransmission);
  ASSERT_EQ(sender.sent.size(), 4u);
  EXPECT_EQ(FirstLine(sender.sent[3].bytes), "SIP/2.0 200 OK");
  EXPECT_EQ(sender.sent[3].bytes, sender.sent[2].bytes);
  EXPECT_FALSE(layer.respond(id, 200, Response(request.msg, 200, "srv")));
  EXPECT_FALSE(layer.respond(id, 180, Response(request.msg, 180, "srv")));
  EXPECT_EQ(user.count(Event::kRequest), 1u);

  // Timer J = 64*T1, and the final response is never retransmitted on its own.
  timers.advance(k64T1 - 1ms);
  EXPECT_EQ(layer.server_transactions(), 1u);
  EXPECT_EQ(sender.sent.size(), 4u);
  timers.advance(1ms);
  EXPECT_EQ(layer.server_transactions(), 0u);
  EXPECT_EQ(timers.pending(), 0u);
  EXPECT_FALSE(layer.respond(id, 200, Response(request.msg, 200)));

  // After the transaction ended, the same request is new again.
  EXPECT_EQ(Receive(options), Outcome::kNew);
  EXPECT_EQ(user.count(Event::kRequest), 2u);
}

TEST_F(TransactionLayerTest, ServerNonInviteTcpFinalEndsAtOnce) {
  const Req reg{.method = "REGISTER", .transport = "TCP"};
  Parsed request(reg);
  const ServerTxnId id = NewServer(reg, Tcp());
  ASSERT_TRUE(layer.respond(id, 200, Response(request.msg, 200, "x")));
  ASSERT_EQ(sender.sent.size(), 1u);
  EXPECT_EQ(sender.sent[0].flow.connection, 7u);
  EXPECT_EQ(layer.server_transactions(), 0u) << "Timer J is 0 on reliable transports";
  EXPECT_EQ(timers.pending(), 0u);
}

TEST_F(TransactionLayerTest, TuMayRespondFromInsideOnRequest) {
  const Req reg{.method = "REGISTER"};
  user.request_hook = [&](ServerTxnId id, const sip::Message& request) {
    EXPECT_TRUE(layer.respond(id, 401, Response(request, 401, "t")));
  };
  EXPECT_EQ(Receive(reg), Outcome::kNew);
  ASSERT_EQ(sender.sent.size(), 1u);
  EXPECT_EQ(FirstLine(LastSent()), "SIP/2.0 401 Unauthorized");
  EXPECT_EQ(Receive(reg), Outcome::kRetransmission);
  ASSERT_EQ(sender.sent.size(), 2u);
  EXPECT_EQ(FirstLine(LastSent()), "SIP/2.0 401 Unauthorized");
  EXPECT_EQ(user.count(Event::kRequest), 1u);
}

TEST_F(TransactionLayerTest, TuMayEndATcpTransactionFromInsideOnRequest) {
  const Req reg{.method = "REGISTER", .transport = "TCP"};
  user.request_hook = [&](ServerTxnId id, const sip::Message& request) {
    EXPECT_TRUE(layer.respond(id, 200, Response(request, 200, "t")));
  };
  EXPECT_EQ(Receive(reg, Tcp()), Outcome::kNew);
  EXPECT_EQ(sender.sent.size(), 1u);
  EXPECT_EQ(layer.server_transactions(), 0u);
}

TEST_F(TransactionLayerTest, ForgetEndsAnsweredNonInviteSoARetransmissionIsNew) {
  // The registrar's challenge is stateless: the TU answers, then forgets the transaction.
  const Req reg{.method = "REGISTER"};
  user.request_hook = [&](ServerTxnId id, const sip::Message& request) {
    EXPECT_FALSE(layer.forget(id)) << "not answered yet";
    EXPECT_TRUE(layer.respond(id, 401, Response(request, 401, "t")));
    EXPECT_TRUE(layer.forget(id));
    EXPECT_FALSE(layer.forget(id)) << "already gone";
  };
  EXPECT_EQ(Receive(reg), Outcome::kNew);
  EXPECT_EQ(layer.server_transactions(), 0u);
  EXPECT_EQ(timers.pending(), 0u) << "no Timer J left behind";
  EXPECT_EQ(Receive(reg), Outcome::kNew) << "the retransmission is answered afresh";
  EXPECT_EQ(user.count(Event::kRequest), 2u);
  EXPECT_EQ(sender.sent.size(), 2u);
}

TEST_F(TransactionLayerTest, ForgetLeavesInviteTransactionsAlone) {
  const Req invite{.method = "INVITE"};
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite);
  ASSERT_TRUE(layer.respond(id, 486, Response(request.msg, 486, "t")));
  EXPECT_FALSE(layer.forget(id)) << "an INVITE's final response waits for its ACK";
  EXPECT_EQ(layer.server_transactions(), 1u);
}

TEST_F(TransactionLayerTest, RespondRejectsUnknownIdsAndBadCodes) {
  const Req bye{.method = "BYE"};
  Parsed request(bye);
  const ServerTxnId id = NewServer(bye);
  EXPECT_FALSE(layer.respond(id + 1000, 200, Response(request.msg, 200)));
  EXPECT_FALSE(layer.respond(0, 200, Response(request.msg, 200)));
  EXPECT_FALSE(layer.respond(id, 99, "x"));
  EXPECT_FALSE(layer.respond(id, 700, "x"));
  EXPECT_TRUE(sender.sent.empty());
  EXPECT_TRUE(layer.respond(id, 200, Response(request.msg, 200)));
}

// =========================================================================== server INVITE

TEST_F(TransactionLayerTest, ServerInviteSends100TryingWithoutToTag) {
  const Req invite{.branch = "z9hG4bKinv1"};
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite);
  ASSERT_EQ(sender.sent.size(), 1u);
  const std::string trying = sender.sent[0].bytes;
  EXPECT_EQ(FirstLine(trying), "SIP/2.0 100 Trying");
  EXPECT_EQ(Header(trying, "To"), "<sip:bob@example.com>");
  EXPECT_EQ(Header(trying, "Via"), "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1");
  EXPECT_EQ(Header(trying, "CSeq"), "1 INVITE");
  EXPECT_TRUE(SameFlow(sender.sent[0].flow, Udp()));

  // A retransmitted INVITE gets the last provisional again and does not reach the TU.
  EXPECT_EQ(Receive(invite), Outcome::kRetransmission);
  ASSERT_EQ(sender.sent.size(), 2u);
  EXPECT_EQ(sender.sent[1].bytes, trying);
  ASSERT_TRUE(layer.respond(id, 180, Response(request.msg, 180, "callee")));
  EXPECT_EQ(Receive(invite), Outcome::kRetransmission);
  ASSERT_EQ(sender.sent.size(), 4u);
  EXPECT_EQ(FirstLine(sender.sent[3].bytes), "SIP/2.0 180 Ringing");
  EXPECT_EQ(user.count(Event::kRequest), 1u);

  // Proceeding has no timer: nothing happens until the TU answers.
  timers.advance(10min);
  EXPECT_EQ(sender.sent.size(), 4u);
  EXPECT_EQ(layer.server_transactions(), 1u);
}

TEST_F(TransactionLayerTest, ServerInviteNo100WhenTuAnswersInsideOnRequest) {
  const Req invite;
  user.request_hook = [&](ServerTxnId id, const sip::Message& request) {
    EXPECT_TRUE(layer.respond(id, 407, Response(request, 407, "t")));
  };
  EXPECT_EQ(Receive(invite), Outcome::kNew);
  ASSERT_EQ(sender.sent.size(), 1u);
  EXPECT_EQ(FirstLine(LastSent()), "SIP/2.0 407 Proxy Authentication Required");
}

TEST_F(TransactionLayerTest, ServerInviteTimerGDoublesUpToT2AndTimerHEndsIt) {
  const Req invite;
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite);
  timers.advance(100ms);
  ASSERT_TRUE(layer.respond(id, 486, Response(request.msg, 486, "busy")));
  timers.advance(k64T1 - 1ms);
  // Sent at 100, then Timer G: +500, +1000, +2000, +4000 (T2), +4000, ...
  const std::vector<Duration> expected = {100ms,   600ms,   1600ms,  3600ms,  7600ms, 11600ms,
                                          15600ms, 19600ms, 23600ms, 27600ms, 31600ms};
  EXPECT_EQ(SendTimes("SIP/2.0 486"), expected);
  EXPECT_EQ(layer.server_transactions(), 1u);
  // Timer H: no ACK came in 64*T1; the transaction ends, its timers with it.
  timers.advance(1ms);
  EXPECT_EQ(layer.server_transactions(), 0u);
  EXPECT_EQ(timers.pending(), 0u);
  timers.advance(1min);
  EXPECT_EQ(SentCount("SIP/2.0 486"), expected.size());
}

TEST_F(TransactionLayerTest, ServerInviteRetransmissionInCompletedGetsTheFinalResponse) {
  const Req invite;
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite);
  ASSERT_TRUE(layer.respond(id, 404, Response(request.msg, 404, "nf")));
  EXPECT_EQ(Receive(invite), Outcome::kRetransmission);
  EXPECT_EQ(FirstLine(LastSent()), "SIP/2.0 404 Not Found");
  EXPECT_EQ(SentCount("SIP/2.0 404"), 2u);
  EXPECT_FALSE(layer.respond(id, 200, Response(request.msg, 200, "nf")));
}

TEST_F(TransactionLayerTest, ServerInviteAckIsAbsorbedAndTimerIEndsIt) {
  const Req invite;
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite);
  ASSERT_TRUE(layer.respond(id, 486, Response(request.msg, 486, "busy")));
  timers.advance(600ms);  // one Timer G retransmission
  EXPECT_EQ(SentCount("SIP/2.0 486"), 2u);

  const Req ack{.method = "ACK", .to_tag = "busy"};
  EXPECT_EQ(Receive(ack), Outcome::kAck);
  EXPECT_EQ(user.count(Event::kStrayAck), 0u);
  EXPECT_EQ(user.events.size(), 1u) << "the TU never hears of this ACK";

  // Confirmed: G stopped, more ACKs and INVITEs absorbed without an answer, Timer I = T4.
  EXPECT_EQ(Receive(ack), Outcome::kAck);
  const std::size_t sent = sender.sent.size();
  EXPECT_EQ(Receive(invite), Outcome::kRetransmission);
  timers.advance(kT4 - 1ms);
  EXPECT_EQ(sender.sent.size(), sent);
  EXPECT_EQ(layer.server_transactions(), 1u);
  timers.advance(1ms);
  EXPECT_EQ(layer.server_transactions(), 0u);
  EXPECT_EQ(timers.pending(), 0u);

  // Once gone, an ACK is stray.
  EXPECT_EQ(Receive(ack), Outcome::kStrayAck);
}

TEST_F(TransactionLayerTest, ServerInviteTcpHasNoTimerGAndAckEndsItAtOnce) {
  const Req invite{.transport = "TCP"};
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite, Tcp());
  ASSERT_TRUE(layer.respond(id, 486, Response(request.msg, 486, "busy")));
  timers.advance(20s);
  EXPECT_EQ(SentCount("SIP/2.0 486"), 1u);
  EXPECT_EQ(Receive(Req{.method = "ACK", .to_tag = "busy", .transport = "TCP"}, Tcp()),
            Outcome::kAck);
  EXPECT_EQ(layer.server_transactions(), 0u) << "Timer I is 0 on reliable transports";
  EXPECT_EQ(timers.pending(), 0u);
}

TEST_F(TransactionLayerTest, ServerInviteTcpTimerHStillRuns) {
  const Req invite{.transport = "TCP"};
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite, Tcp());
  ASSERT_TRUE(layer.respond(id, 500, Response(request.msg, 500, "x")));
  timers.advance(k64T1 - 1ms);
  EXPECT_EQ(layer.server_transactions(), 1u);
  timers.advance(1ms);
  EXPECT_EQ(layer.server_transactions(), 0u);
  EXPECT_EQ(SentCount("SIP/2.0 500"), 1u);
}

TEST_F(TransactionLayerTest, ServerInvite2xxAcceptedAbsorbsInviteAndAckGoesToTheTu) {
  const Req invite;
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite);
  const std::string ok = Response(request.msg, 200, "callee");
  ASSERT_TRUE(layer.respond(id, 200, ok));
  timers.advance(10s);
  EXPECT_EQ(SentCount("SIP/2.0 200"), 1u) << "the layer never retransmits a 2xx on its own";

  // RFC 6026 §7.1 Accepted: retransmitted INVITEs are absorbed (nothing is sent; the UAS
  // retransmits its 2xx itself) and do not reach the TU again.
  EXPECT_EQ(Receive(invite), Outcome::kRetransmission);
  EXPECT_EQ(SentCount("SIP/2.0 200"), 1u);
  EXPECT_EQ(user.count(Event::kRequest), 1u);

  // The ACK for a 2xx is the TU's, whatever its branch.
  EXPECT_EQ(Receive(Req{.method = "ACK", .branch = "z9hG4bKack2", .to_tag = "callee"}),
            Outcome::kStrayAck);
  EXPECT_EQ(Receive(Req{.method = "ACK", .to_tag = "callee"}), Outcome::kStrayAck);
  EXPECT_EQ(user.count(Event::kStrayAck), 2u);

  // More 2xx from the TU (a proxy forwarding retransmissions) go out; nothing else does.
  EXPECT_TRUE(layer.respond(id, 200, ok));
  EXPECT_EQ(SentCount("SIP/2.0 200"), 2u);
  EXPECT_EQ(Receive(invite), Outcome::kRetransmission);
  EXPECT_EQ(SentCount("SIP/2.0 200"), 2u) << "a forwarded 2xx is sent, not kept";
  EXPECT_FALSE(layer.respond(id, 486, Response(request.msg, 486, "callee")));
  EXPECT_FALSE(layer.respond(id, 180, Response(request.msg, 180, "callee")));

  // Timer L.
  timers.advance(k64T1 - 10s - 1ms);
  EXPECT_EQ(layer.server_transactions(), 1u);
  timers.advance(1ms);
  EXPECT_EQ(layer.server_transactions(), 0u);
  EXPECT_EQ(timers.pending(), 0u);
}

TEST_F(TransactionLayerTest, ServerInviteTcp2xxStillAbsorbsRetransmissionsForTimerL) {
  const Req invite{.transport = "TCP"};
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite, Tcp());
  ASSERT_TRUE(layer.respond(id, 200, Response(request.msg, 200, "c")));
  EXPECT_EQ(layer.server_transactions(), 1u);
  timers.advance(k64T1);
  EXPECT_EQ(layer.server_transactions(), 0u);
}

TEST_F(TransactionLayerTest, AckMatchingNothingIsStray) {
  EXPECT_EQ(Receive(Req{.method = "ACK", .to_tag = "x"}), Outcome::kStrayAck);
  ASSERT_EQ(user.events.size(), 1u);
  EXPECT_EQ(user.events[0].kind, Event::kStrayAck);
  EXPECT_EQ(user.events[0].method, "ACK");
  EXPECT_EQ(layer.server_transactions(), 0u) << "an ACK never makes a transaction";
  EXPECT_TRUE(sender.sent.empty());
}

TEST_F(TransactionLayerTest, MatchingUsesSentByWithCaseInsensitiveHost) {
  const Req invite{.sent_by = "PC33.Atlanta.com:5060"};
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite);
  EXPECT_EQ(Receive(Req{.sent_by = "pc33.atlanta.COM:5060"}), Outcome::kRetransmission);
  // Another sent-by (host or port) with the same branch is another transaction.
  EXPECT_EQ(Receive(Req{.sent_by = "pc33.atlanta.com:5070"}), Outcome::kNew);
  EXPECT_EQ(Receive(Req{.sent_by = "pc34.atlanta.com:5060"}), Outcome::kNew);
  EXPECT_EQ(Receive(Req{.sent_by = "pc33.atlanta.com"}), Outcome::kNew);
  ASSERT_TRUE(layer.respond(id, 486, Response(request.msg, 486, "b")));
  EXPECT_EQ(Receive(Req{.method = "ACK", .sent_by = "pc33.atlanta.com:5080", .to_tag = "b"}),
            Outcome::kStrayAck);
  EXPECT_EQ(Receive(Req{.method = "ACK", .sent_by = "pc33.ATLANTA.com:5060", .to_tag = "b"}),
            Outcome::kAck);
}

TEST_F(TransactionLayerTest, SameBranchOtherMethodIsAnotherTransaction) {
  NewServer(Req{.method = "OPTIONS"});
  EXPECT_EQ(Receive(Req{.method = "INFO"}), Outcome::kNew);
  EXPECT_EQ(layer.server_transactions(), 2u);
}

// ================================================================================== CANCEL

TEST_F(TransactionLayerTest, CancelGetsItsOwnTransactionAndNamesTheInvite) {
  const Req invite;
  Parsed inv(invite);
  const ServerTxnId invite_id = NewServer(invite);
  const Req cancel{.method = "CANCEL"};
  Parsed can(cancel);
  const ServerTxnId cancel_id = NewServer(cancel);
  EXPECT_NE(cancel_id, invite_id);
  EXPECT_EQ(user.events.back().method, "CANCEL");
  EXPECT_EQ(user.events.back().cancelled, invite_id);
  EXPECT_EQ(layer.server_transactions(), 2u);

  // The TU answers both; a retransmitted CANCEL gets its 200 again.
  ASSERT_TRUE(layer.respond(cancel_id, 200, Response(can.msg, 200, "t")));
  ASSERT_TRUE(layer.respond(invite_id, 487, Response(inv.msg, 487, "t")));
  EXPECT_EQ(Receive(cancel), Outcome::kRetransmission);
  EXPECT_EQ(Header(LastSent(), "CSeq"), "1 CANCEL");
  EXPECT_EQ(FirstLine(LastSent()), "SIP/2.0 200 OK");
  EXPECT_EQ(Receive(Req{.method = "ACK", .to_tag = "t"}), Outcome::kAck);
  EXPECT_EQ(user.count(Event::kRequest), 2u);

  timers.advance(1min);
  EXPECT_EQ(layer.server_transactions(), 0u);
}

TEST_F(TransactionLayerTest, CancelNamesTheInviteEvenAfterItsFinalResponse) {
  const Req invite;
  Parsed inv(invite);
  const ServerTxnId invite_id = NewServer(invite);
  ASSERT_TRUE(layer.respond(invite_id, 200, Response(inv.msg, 200, "t")));
  NewServer(Req{.method = "CANCEL"});
  EXPECT_EQ(user.events.back().cancelled, invite_id);
}

TEST_F(TransactionLayerTest, CancelWithoutItsInviteGetsZero) {
  NewServer(Req{.method = "CANCEL"});
  EXPECT_EQ(user.events.back().cancelled, 0u);
  NewServer(Req{});  // an INVITE with another branch than the next CANCEL
  NewServer(Req{.method = "CANCEL", .branch = "z9hG4bKother"});
  EXPECT_EQ(user.events.back().cancelled, 0u);
  // A CANCEL for a non-INVITE request names nothing either.
  NewServer(Req{.method = "OPTIONS", .branch = "z9hG4bKopt"});
  NewServer(Req{.method = "CANCEL", .branch = "z9hG4bKopt"});
  EXPECT_EQ(user.events.back().cancelled, 0u);
}

// ========================================================================= RFC 2543 peers

TEST_F(TransactionLayerTest, Rfc2543RequestsMatchByTheirFields) {
  const Req invite{.branch = ""};
  const ServerTxnId id = NewServer(invite);
  EXPECT_EQ(Receive(invite), Outcome::kRetransmission);
  EXPECT_EQ(user.count(Event::kRequest), 1u);
  // Any field of the key changed: a new transaction.
  EXPECT_EQ(Receive(Req{.branch = "", .cseq = 2}), Outcome::kNew);
  EXPECT_EQ(Receive(Req{.branch = "", .from_tag = "a2"}), Outcome::kNew);
  EXPECT_EQ(Receive(Req{.branch = "", .call_id = "other@x"}), Outcome::kNew);
  EXPECT_EQ(Receive(Req{.branch = "", .uri = "sip:carol@example.com"}), Outcome::kNew);
  EXPECT_EQ(Receive(Req{.branch = "", .sent_by = "192.0.2.11:5060"}), Outcome::kNew);
  EXPECT_EQ(Receive(Req{.branch = "", .to_tag = "dlg"}), Outcome::kNew);
  EXPECT_EQ(user.count(Event::kRequest), 7u);
  EXPECT_NE(id, 0u);
}

TEST_F(TransactionLayerTest, BranchThatIsOnlyTheCookieUsesRfc2543Rules) {
  const Req invite{.branch = "z9hG4bK"};
  NewServer(invite);
  EXPECT_EQ(Receive(invite), Outcome::kRetransmission);
  // Same branch, but other fields differ: under 2543 rules that is another transaction.
  EXPECT_EQ(Receive(Req{.branch = "z9hG4bK", .cseq = 9}), Outcome::kNew);
}

TEST_F(TransactionLayerTest, Rfc2543AckMatchesByTheFinalResponsesToTag) {
  const Req invite{.branch = "old1"};
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite);
  ASSERT_TRUE(layer.respond(id, 486, Response(request.msg, 486, "srvtag")));
  timers.advance(kT1);
  // An ACK with another To tag is for something else (a 2xx a proxy forwarded).
  EXPECT_EQ(Receive(Req{.method = "ACK", .branch = "old1", .to_tag = "other"}), Outcome::kStrayAck);
  EXPECT_EQ(Receive(Req{.method = "ACK", .branch = "old1", .to_tag = ""}), Outcome::kStrayAck);
  EXPECT_EQ(Receive(Req{.method = "ACK", .branch = "old1", .to_tag = "srvtag"}), Outcome::kAck);
  timers.advance(kT4);
  EXPECT_EQ(layer.server_transactions(), 0u);
  EXPECT_EQ(SentCount("SIP/2.0 486"), 2u) << "one Timer G retransmission before the ACK";
}

TEST_F(TransactionLayerTest, Rfc2543AckForAReInviteMatches) {
  const Req reinvite{.branch = "", .to_tag = "dlg7", .cseq = 5};
  Parsed request(reinvite);
  const ServerTxnId id = NewServer(reinvite);
  ASSERT_TRUE(layer.respond(id, 491, Response(request.msg, 491)));
  EXPECT_EQ(Receive(Req{.method = "ACK", .branch = "", .to_tag = "dlg7", .cseq = 5}),
            Outcome::kAck);
}

TEST_F(TransactionLayerTest, Rfc2543AckForA2xxIsStray) {
  const Req invite{.branch = ""};
  Parsed request(invite);
  const ServerTxnId id = NewServer(invite);
  ASSERT_TRUE(layer.respond(id, 200, Response(request.msg, 200, "ok1")));
  EXPECT_EQ(Receive(Req{.method = "ACK", .branch = "", .to_tag = "ok1"}), Outcome::kStrayAck);
}

TEST_F(TransactionLayerTest, Rfc2543CancelNamesItsInvite) {
  const Req invite{.branch = ""};
  const ServerTxnId invite_id = NewServer(invite);
  NewServer(Req{.method = "CANCEL", .branch = ""});
  EXPECT_EQ(user.events.back().cancelled, invite_id);
  EXPECT_EQ(layer.server_transactions(), 2u);
  NewServer(Req{.method = "CANCEL", .branch = "", .cseq = 2});
  EXPECT_EQ(user.events.back().cancelled, 0u);
}

// ======================================================================= client non-INVITE

TEST_F(TransactionLayerTest, ClientNonInviteUdpTimerEDoublesToT2AndTimerFTimesOut) {
  const Req options{.method = "OPTIONS", .branch = std::string(layer.new_branch())};
  const ClientTxnId id = Send(options);
  ASSERT_NE(id, 0u);
  timers.advance(k64T1 - 1ms);
  const std::vector<Duration> expected = {0ms,     500ms,   1500ms,  3500ms,  7500ms, 11500ms,
                                          15500ms, 19500ms, 23500ms, 27500ms, 31500ms};
  EXPECT_EQ(SendTimes("OPTIONS "), expected);
  for (const Sent& s : sender.sent) EXPECT_EQ(s.bytes, options.text());
  EXPECT_EQ(user.events.size(), 0u);
  timers.advance(1ms);  // Timer F
  ASSERT_EQ(user.events.size(), 1u);
  EXPECT_EQ(user.events[0].kind, Event::kTimeout);
  EXPECT_EQ(user.events[0].id, id);
  EXPECT_EQ(layer.client_transactions(), 0u);
  EXPECT_EQ(timers.pending(), 0u);
  EXPECT_EQ(ReceiveResponse(Answer(options, 200, "late")), Outcome::kStrayResponse);
}

TEST_F(TransactionLayerTest, ClientNonInviteProceedingRetransmitsEveryT2ThenCompletedTimerK) {
  const Req bye{.method = "BYE", .branch = std::string(layer.new_branch())};
  const ClientTxnId id = Send(bye);
  timers.advance(600ms);  // one retransmission at 500; the next is due at 1500
  EXPECT_EQ(ReceiveResponse(Answer(bye, 100)), Outcome::kResponse);
  EXPECT_EQ(ReceiveResponse(Answer(bye, 100)), Outcome::kResponse) << "provisionals all reported";
  timers.advance(10s - 600ms);
  const std::vector<Duration> expected = {0ms, 500ms, 1500ms, 5500ms, 9500ms};
  EXPECT_EQ(SendTimes("BYE "), expected);

  EXPECT_EQ(ReceiveResponse(Answer(bye, 200, "b")), Outcome::kResponse);
  EXPECT_EQ(ReceiveResponse(Answer(bye, 200, "b")), Outcome::kAbsorbed);
  ASSERT_EQ(user.events.size(), 3u);
  EXPECT_EQ(user.events[2].kind, Event::kResponse);
  EXPECT_EQ(user.events[2].code, 200);
  EXPECT_EQ(user.events[2].id, id);

  // Completed: no more retransmissions, no timeout, Timer K = T4.
  timers.advance(kT4 - 1ms);
  EXPECT_EQ(SendTimes("BYE ").size(), expected.size());
  EXPECT_EQ(layer.client_transactions(), 1u);
  timers.advance(1ms);
  EXPECT_EQ(layer.client_transactions(), 0u);
  EXPECT_EQ(timers.pending(), 0u);
  EXPECT_EQ(user.count(Event::kTimeout), 0u);
}

TEST_F(TransactionLayerTest, ClientNonInviteFinalWithoutProvisional) {
  const Req msg{.method = "MESSAGE", .branch = std::string(layer.new_branch())};
  Send(msg);
  EXPECT_EQ(ReceiveResponse(Answer(msg, 404, "n")), Outcome::kResponse);
  timers.advance(1min);
  EXPECT_EQ(SentCount("MESSAGE "), 1u);
  EXPECT_EQ(layer.client_transactions(), 0u);
  EXPECT_EQ(user.count(Event::kTimeout), 0u);
}

TEST_F(TransactionLayerTest, ClientNonInviteTcpNeverRetransmitsAndEndsOnFinal) {
  const Req options{.method = "OPTIONS", .branch = std::string(layer.new_branch()), .transport = "TCP"};
  Send(options, Tcp());
  timers.advance(20s);
  EXPECT_EQ(SentCount("OPTIONS "), 1u);
  EXPECT_EQ(sender.sent[0].flow.connection, 7u);
  EXPECT_EQ(ReceiveResponse(Answer(options, 200, "o"), Tcp()), Outcome::kResponse);
  EXPECT_EQ(layer.client_transactions(), 0u) << "Timer K is 0 on reliable transports";
  EXPECT_EQ(timers.pending(), 0u);
}

TEST_F(TransactionLayerTest, ClientNonInviteTcpTimerFStillRuns) {
  const Req options{.method = "OPTIONS", .branch = std::string(layer.new_branch()), .transport = "TCP"};
  const ClientTxnId id = Send(options, Tcp());
  timers.advance(k64T1);
  ASSERT_EQ(user.events.size(), 1u);
  EXPECT_EQ(user.events[0].kind, Event::kTimeout);
  EXPECT_EQ(user.events[0].id, id);
  EXPECT_EQ(SentCount("OPTIONS "), 1u);
}

// =========================================================================== client INVITE

TEST_F(TransactionLayerTest, ClientInviteUdpTimerADoublesAndTimerBTimesOut) {
  const Req invite{.branch = std::string(layer.new_branch())};
  const ClientTxnId id = Send(invite);
  timers.advance(k64T1 - 1ms);
  // Timer A doubles without the T2 cap.
  const std::vector<Duration> expected = {0ms, 500ms, 1500ms, 3500ms, 7500ms, 15500ms, 31500ms};
  EXPECT_EQ(SendTimes("INVITE "), expected);
  EXPECT_TRUE(user.events.empty());
  timers.advance(1ms);  // Timer B
  ASSERT_EQ(user.events.size(), 1u);
  EXPECT_EQ(user.events[0].kind, Event::kTimeout);
  EXPECT_EQ(user.events[0].id, id);
  EXPECT_EQ(layer.client_transactions(), 0u);
  EXPECT_EQ(timers.pending(), 0u);
}

TEST_F(TransactionLayerTest, ClientInviteTcpHasNoTimerAButTimerB) {
  const Req invite{.branch = std::string(layer.new_branch()), .transport = "TCP"};
  Send(invite, Tcp());
  timers.advance(k64T1);
  EXPECT_EQ(SentCount("INVITE "), 1u);
  EXPECT_EQ(user.count(Event::kTimeout), 1u);
  EXPECT_EQ(layer.client_transactions(), 0u);
}

TEST_F(TransactionLayerTest, ClientInviteProvisionalStopsTimersAAndB) {
  const Req invite{.branch = std::string(layer.new_branch())};
  const ClientTxnId id = Send(invite);
  timers.advance(700ms);
  EXPECT_EQ(ReceiveResponse(Answer(invite, 100)), Outcome::kResponse);
  EXPECT_EQ(ReceiveResponse(Answer(invite, 180, "r")), Outcome::kResponse);
  EXPECT_EQ(ReceiveResponse(Answer(invite, 180, "r")), Outcome::kResponse);
  timers.advance(10min);
  EXPECT_EQ(SentCount("INVITE "), 2u);
  EXPECT_EQ(user.count(Event::kTimeout), 0u);
  EXPECT_EQ(user.count(Event::kResponse), 3u);
  EXPECT_EQ(layer.client_transactions(), 1u);
  EXPECT_EQ(timers.pending(), 0u);
  EXPECT_EQ(user.events[1].code, 180);
  EXPECT_EQ(user.events[1].id, id);
}

TEST_F(TransactionLayerTest, ClientInvite2xxAndItsRetransmissionsAreAllReported) {
  const Req invite{.branch = std::string(layer.new_branch())};
  const ClientTxnId id = Send(invite);
  EXPECT_EQ(ReceiveResponse(Answer(invite, 180, "a")), Outcome::kResponse);
  EXPECT_EQ(ReceiveResponse(Answer(invite, 200, "a")), Outcome::kResponse);
  EXPECT_EQ(ReceiveResponse(Answer(invite, 200, "a")), Outcome::kResponse);
  EXPECT_EQ(ReceiveResponse(Answer(invite, 200, "fork2")), Outcome::kResponse);
  EXPECT_EQ(user.count(Event::kResponse), 4u);
  for (const Event& e : user.events) EXPECT_EQ(e.id, id);
  // Late provisionals and non-2xx are absorbed; the layer sends no ACK for a 2xx.
  EXPECT_EQ(ReceiveResponse(Answer(invite, 183, "a")), Outcome::kAbsorbed);
  EXPECT_EQ(ReceiveResponse(Answer(invite, 486, "b")), Outcome::kAbsorbed);
  EXPECT_EQ(SentCount("ACK "), 0u);
  EXPECT_EQ(SentCount("INVITE "), 1u);
  // RFC 6026 Timer M.
  timers.advance(k64T1 - 1ms);
  EXPECT_EQ(layer.client_transactions(), 1u);
  timers.advance(1ms);
  EXPECT_EQ(layer.client_transactions(), 0u);
  EXPECT_EQ(ReceiveResponse(Answer(invite, 200, "a")), Outcome::kStrayResponse);
  EXPECT_EQ(user.count(Event::kTimeout), 0u);
}

TEST_F(TransactionLayerTest, ClientInviteNon2xxIsAckedAndCompletedAbsorbsRetransmissions) {
  const Req invite{.branch = std::string(layer.new_branch())};
  Send(invite);
  timers.advance(100ms);
  EXPECT_EQ(ReceiveResponse(Answer(invite, 486, "busy")), Outcome::kResponse);
  ASSERT_EQ(SentCount("ACK "), 1u);
  const std::string ack = LastSent();
  EXPECT_EQ(FirstLine(ack), "ACK sip:bob@example.com SIP/2.0");
  EXPECT_EQ(Header(ack, "Via"), "SIP/2.0/UDP 192.0.2.10:5060;branch=" + invite.branch);
  EXPECT_EQ(Header(ack, "To"), "<sip:bob@example.com>;tag=busy");
  EXPECT_EQ(Header(ack, "From"), "<sip:alice@example.com>;tag=a1");
  EXPECT_EQ(Header(ack, "CSeq"), "1 ACK");
  EXPECT_EQ(Header(ack, "Call-ID"), invite.call_id);
  EXPECT_TRUE(SameFlow(sender.sent.back().flow, Udp()));

  // A retransmitted final gets the same ACK again and is not reported.
  EXPECT_EQ(ReceiveResponse(Answer(invite, 486, "busy")), Outcome::kAbsorbed);
  EXPECT_EQ(SentCount("ACK "), 2u);
  EXPECT_EQ(LastSent(), ack);
  EXPECT_EQ(user.count(Event::kResponse), 1u);
  // No INVITE retransmission after the final response.
  timers.advance(10s);
  EXPECT_EQ(SentCount("INVITE "), 1u);
  // Timer D: 32 s after the response.
  timers.advance(32s - 10s - 1ms);
  EXPECT_EQ(layer.client_transactions(), 1u);
  timers.advance(1ms);
  EXPECT_EQ(layer.client_transactions(), 0u);
  EXPECT_EQ(timers.pending(), 0u);
  EXPECT_EQ(user.count(Event::kTimeout), 0u);
}

TEST_F(TransactionLayerTest, ClientInviteTcpNon2xxIsAckedAndEndsAtOnce) {
  const Req invite{.branch = std::string(layer.new_branch()), .transport = "TCP"};
  Send(invite, Tcp());
  EXPECT_EQ(ReceiveResponse(Answer(invite, 603, "d"), Tcp()), Outcome::kResponse);
  EXPECT_EQ(SentCount("ACK "), 1u);
  EXPECT_EQ(sender.sent.back().flow.connection, 7u);
  EXPECT_EQ(layer.client_transactions(), 0u) << "Timer D is 0 on reliable transports";
  EXPECT_EQ(timers.pending(), 0u);
}

TEST_F(TransactionLayerTest, ClientResponsesMatchByBranchAndCSeqMethod) {
  const Req invite{.branch = std::string(layer.new_branch())};
  Send(invite);
  EXPECT_EQ(ReceiveResponse(Answer(Req{.branch = std::string(layer.new_branch())}, 200, "x")),
            Outcome::kStrayResponse);
  // Same branch, other CSeq method (a CANCEL of ours would be a transaction of its own).
  EXPECT_EQ(ReceiveResponse(Answer(Req{.method = "CANCEL", .branch = invite.branch}, 200, "x")),
            Outcome::kStrayResponse);
  EXPECT_TRUE(user.events.empty());
}

TEST_F(TransactionLayerTest, SendRequestRefusesADuplicateBranchAndSendsAckWithoutTransaction) {
  const Req invite{.branch = std::string(layer.new_branch())};
  EXPECT_NE(Send(invite), 0u);
  EXPECT_EQ(Send(invite), 0u);
  EXPECT_EQ(SentCount("INVITE "), 1u);
  EXPECT_EQ(Send(Req{.method = "ACK", .branch = std::string(layer.new_branch()), .to_tag = "x"}), 0u);
  EXPECT_EQ(SentCount("ACK "), 1u);
  EXPECT_EQ(layer.client_transactions(), 1u);
  timers.advance(k64T1);
  EXPECT_EQ(SentCount("ACK "), 1u);
}

// ======================================================================== cancel() (§9.1)

TEST_F(TransactionLayerTest, CancelAfterProvisionalSendsCancelInItsOwnTransaction) {
  const Req invite{.branch = std::string(layer.new_branch())};
  const ClientTxnId id = Send(invite);
  ReceiveResponse(Answer(invite, 180, "r"));
  ASSERT_TRUE(layer.cancel(id));
  ASSERT_EQ(SentCount("CANCEL "), 1u);
  const std::string cancel = LastSent();
  EXPECT_EQ(FirstLine(cancel), "CANCEL sip:bob@example.com SIP/2.0");
  EXPECT_EQ(Header(cancel, "Via"), "SIP/2.0/UDP 192.0.2.10:5060;branch=" + invite.branch);
  EXPECT_EQ(Header(cancel, "CSeq"), "1 CANCEL");
  EXPECT_EQ(Header(cancel, "To"), "<sip:bob@example.com>");
  EXPECT_TRUE(SameFlow(sender.sent.back().flow, Udp()));
  EXPECT_EQ(layer.client_transactions(), 2u);
  EXPECT_TRUE(layer.cancel(id)) << "asking again is harmless";
  EXPECT_EQ(SentCount("CANCEL "), 1u);

  // The CANCEL retransmits on its own (Timer E) until answered; its 200 is not reported.
  timers.advance(kT1);
  EXPECT_EQ(SentCount("CANCEL "), 2u);
  EXPECT_EQ(ReceiveResponse(Answer(Req{.method = "CANCEL", .branch = invite.branch}, 200, "r")),
            Outcome::kAbsorbed);
  EXPECT_EQ(user.count(Event::kResponse), 1u);

  // The INVITE's 487 is reported and ACKed.
  EXPECT_EQ(ReceiveResponse(Answer(invite, 487, "r")), Outcome::kResponse);
  EXPECT_EQ(user.events.back().code, 487);
  EXPECT_EQ(user.events.back().id, id);
  EXPECT_EQ(SentCount("ACK "), 1u);
  EXPECT_FALSE(layer.cancel(id));

  timers.advance(1min);
  EXPECT_EQ(SentCount("CANCEL "), 2u);
  EXPECT_EQ(layer.client_transactions(), 0u);
  EXPECT_EQ(timers.pending(), 0u);
  EXPECT_EQ(user.count(Event::kTimeout), 0u);
}

TEST_F(TransactionLayerTest, CancelBeforeProvisionalWaitsForOne) {
  const Req invite{.branch = std::string(layer.new_branch())};
  const ClientTxnId id = Send(invite);
  ASSERT_TRUE(layer.cancel(id));
  timers.advance(1s);
  EXPECT_EQ(SentCount("CANCEL "), 0u) << "RFC 3261 §9.1: not before a provisional response";
  EXPECT_EQ(SentCount("INVITE "), 2u) << "the INVITE still retransmits";
  EXPECT_EQ(ReceiveResponse(Answer(invite, 100)), Outcome::kResponse);
  EXPECT_EQ(SentCount("CANCEL "), 1u);
  EXPECT_EQ(Header(LastSent(), "CSeq"), "1 CANCEL");
}

TEST_F(TransactionLayerTest, CancelWishIsDroppedWhenAFinalComesFirst) {
  const Req invite{.branch = std::string(layer.new_branch())};
  const ClientTxnId id = Send(invite);
  ASSERT_TRUE(layer.cancel(id));
  EXPECT_EQ(ReceiveResponse(Answer(invite, 486, "b")), Outcome::kResponse);
  EXPECT_EQ(SentCount("CANCEL "), 0u);
  EXPECT_FALSE(layer.cancel(id));
  timers.advance(1min);
  EXPECT_EQ(SentCount("CANCEL "), 0u);
  EXPECT_EQ(layer.client_transactions(), 0u);
}

TEST_F(TransactionLayerTest, CancelledInviteWithoutFinalTimesOutAfter64T1) {
  const Req invite{.branch = std::string(layer.new_branch()), .transport = "TCP"};
  const ClientTxnId id = Send(invite, Tcp());
  ReceiveResponse(Answer(invite, 180, "r"), Tcp());
  timers.advance(1min);
  ASSERT_TRUE(layer.cancel(id));
  EXPECT_EQ(
      ReceiveResponse(Answer(Req{.method = "CANCEL", .branch = invite.branch}, 200, "r"), Tcp()),
      Outcome::kAbsorbed);
  timers.advance(k64T1 - 1ms);
  EXPECT_EQ(user.count(Event::kTimeout), 0u);
  timers.advance(1ms);
  ASSERT_EQ(user.count(Event::kTimeout), 1u);
  EXPECT_EQ(user.events.back().id, id);
  EXPECT_EQ(layer.client_transactions(), 0u);
  EXPECT_EQ(timers.pending(), 0u);
}

TEST_F(TransactionLayerTest, CancelOnlyForClientInvites) {
  const ClientTxnId options = Send(Req{.method = "OPTIONS", .branch = std::string(layer.new_branch())});
  EXPECT_FALSE(layer.cancel(options));
  EXPECT_FALSE(layer.cancel(0));
  EXPECT_FALSE(layer.cancel(options + 100));
  EXPECT_EQ(SentCount("CANCEL "), 0u);
}

TEST_F(TransactionLayerTest, TuMayCancelFromInsideOnResponse) {
  const Req invite{.branch = std::string(layer.new_branch())};
  Send(invite);
  user.response_hook = [&](ClientTxnId id, const sip::Message& response) {
    if (response.status_code == 180) {
      EXPECT_TRUE(layer.cancel(id));
    }
  };
  EXPECT_EQ(ReceiveResponse(Answer(invite, 180, "r")), Outcome::kResponse);
  EXPECT_EQ(SentCount("CANCEL "), 1u);
}

// ===================================================================== connection_closed

TEST_F(TransactionLayerTest, ConnectionClosedFailsPendingClientsAndEndsServers) {
  const ClientTxnId calling = Send(Req{.branch = std::string(layer.new_branch()), .transport = "TCP"}, Tcp(7));
  const Req proceeding_req{.method = "SUBSCRIBE", .branch = std::string(layer.new_branch()), .transport = "TCP"};
  const ClientTxnId proceeding = Send(proceeding_req, Tcp(7));
  ReceiveResponse(Answer(proceeding_req, 100), Tcp(7));
  const Req accepted_req{.branch = std::string(layer.new_branch()), .transport = "TCP"};
  const ClientTxnId accepted = Send(accepted_req, Tcp(7));
  ReceiveResponse(Answer(accepted_req, 200, "x"), Tcp(7));
  const ClientTxnId other_conn =
      Send(Req{.branch = std::string(layer.new_branch()), .transport = "TCP"}, Tcp(8));
  const ClientTxnId udp = Send(Req{.branch = std::string(layer.new_branch())});
  const ServerTxnId server = NewServer(Req{.branch = "z9hG4bKsrv", .transport = "TCP"}, Tcp(7));
  NewServer(Req{.branch = "z9hG4bKsrv2", .transport = "TCP"}, Tcp(8));
  EXPECT_EQ(layer.client_transactions(), 5u);
  EXPECT_EQ(layer.server_transactions(), 2u);
  user.events.clear();

  layer.connection_closed(7);
  std::set<ClientTxnId> timed_out;
  for (const Event& e : user.events) {
    EXPECT_EQ(e.kind, Event::kTimeout);
    timed_out.insert(e.id);
  }
  EXPECT_EQ(timed_out, (std::set<ClientTxnId>{calling, proceeding}));
  EXPECT_EQ(layer.client_transactions(), 2u);
  EXPECT_EQ(layer.server_transactions(), 1u);
  EXPECT_FALSE(layer.respond(server, 200, "x"));
  EXPECT_FALSE(layer.cancel(accepted));
  EXPECT_NE(other_conn, udp);

  layer.connection_closed(0);  // UDP has no connection: nothing happens
  EXPECT_EQ(layer.client_transactions(), 2u);
}

TEST_F(TransactionLayerTest, TuMaySendFromInsideOnClientTimeout) {
  const Req first{.method = "OPTIONS", .branch = std::string(layer.new_branch()), .transport = "TCP"};
  Send(first, Tcp(7));
  const Req retry{.method = "OPTIONS", .branch = std::string(layer.new_branch()), .transport = "TCP"};
  user.timeout_hook = [&](ClientTxnId) {
    Parsed p(retry);
    EXPECT_NE(layer.send_request(p.msg, p.bytes, Tcp(9)), 0u);
  };
  layer.connection_closed(7);
  EXPECT_EQ(user.count(Event::kTimeout), 1u);
  EXPECT_EQ(layer.client_transactions(), 1u);
  EXPECT_EQ(sender.sent.back().flow.connection, 9u);
}

// ================================================================================ branches

TEST_F(TransactionLayerTest, NewBranchIsUniqueAndCarriesTheWorker) {
  std::set<std::string> seen;
  for (int i = 0; i < 20000; ++i) {
    const std::string b = std::string(layer.new_branch());
    ASSERT_TRUE(b.starts_with("z9hG4bKsw3.")) << b;
    ASSERT_EQ(TransactionLayer::worker_of_branch(b), 3) << b;
    ASSERT_TRUE(seen.insert(b).second) << b;
  }
  // Another layer for the same worker (a restart) makes other branches.
  TransactionLayer again(3, t, timers, sender, user);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(seen.contains(std::string(again.new_branch())));
  // And the branch parses as an RFC 3261 one.
  Parsed p(Req{.branch = std::string(layer.new_branch())});
  EXPECT_TRUE(p.msg.via.front().rfc3261_branch());
}

TEST_F(TransactionLayerTest, WorkerOfBranchRoundTripsAndRejectsForeignBranches) {
  for (const int worker : {0, 1, 42, 65535}) {
    TransactionLayer l(static_cast<std::uint16_t>(worker), t, timers, sender, user);
    EXPECT_EQ(TransactionLayer::worker_of_branch(std::string(l.new_branch())), worker);
  }
  EXPECT_EQ(TransactionLayer::worker_of_branch("z9hG4bKsw3.1a2b.9f8e7d6c5b4a3210"), 3);
  for (const std::string_view foreign :
       {"", "z9hG4bK", "z9hG4bK776asdhds", "z9hG4bKsw3", "z9hG4bKsw3.1a2b",
        "z9hG4bKsw3.1a2b.9f8e7d6c5b4a321", "z9hG4bKsw3.1a2b.9f8e7d6c5b4a32100",
        "z9hG4bKsw3.1a2b.9F8E7D6C5B4A3210", "z9hG4bKsw65536.1.9f8e7d6c5b4a3210",
        "z9hG4bKsw.1.9f8e7d6c5b4a3210", "z9hG4bKsw3..9f8e7d6c5b4a3210",
        "z9hG4bKswx.1.9f8e7d6c5b4a3210", "Z9HG4BKsw3.1.9f8e7d6c5b4a3210", "sw3.1.9f8e7d6c5b4a3210",
        "z9hG4bKsw03.1.9f8e7d6c5b4a3210"}) {
    EXPECT_EQ(TransactionLayer::worker_of_branch(foreign), -1) << foreign;
  }
}

// ========================================================================= housekeeping

TEST_F(TransactionLayerTest, EverythingEndsAndEveryTimerIsCancelled) {
  // A busy minute: every kind of transaction in several states.
  for (int i = 0; i < 50; ++i) {
    const std::string n = std::to_string(i);
    const Req inv{.branch = "z9hG4bKi" + n};
    Parsed p(inv);
    const ServerTxnId id = NewServer(inv);
    ASSERT_TRUE(layer.respond(id, i % 2 ? 200 : 486, Response(p.msg, i % 2 ? 200 : 486, "t")));
    const Req opt{.method = "OPTIONS", .branch = "z9hG4bKo" + n};
    Parsed q(opt);
    ASSERT_TRUE(layer.respond(NewServer(opt), 200, Response(q.msg, 200, "t")));
    const Req out{.branch = std::string(layer.new_branch())};
    Send(out);
    if (i % 3 == 0) ReceiveResponse(Answer(out, 180, "r"));
    if (i % 3 == 1) ReceiveResponse(Answer(out, 500, "r"));
    Send(Req{.method = "NOTIFY", .branch = std::string(layer.new_branch())});
  }
  EXPECT_GT(timers.pending(), 0u);
  timers.advance(1min);
  // Only the client INVITEs left in Proceeding remain (they wait for the TU or the peer).
  EXPECT_EQ(layer.server_transactions(), 0u);
  EXPECT_EQ(layer.client_transactions(), 17u);
  EXPECT_EQ(timers.pending(), 0u);
}

TEST_F(TransactionLayerTest, DestroyingTheLayerCancelsItsTimers) {
  {
    TransactionLayer l(1, t, timers, sender, user);
    Parsed p(Req{.branch = std::string(l.new_branch())});
    l.send_request(p.msg, p.bytes, Udp());
    Parsed q(Req{.method = "OPTIONS"});
    l.receive_request(q.msg, Udp());
    EXPECT_EQ(timers.pending(), 2u);
  }
  EXPECT_EQ(timers.pending(), 0u);
}

}  // namespace
}  // namespace txn
