// RFC 3261 §17 transactions (with the RFC 6026 "Accepted" states) for one worker.
//
// Every transaction lives in a slot of a TxnTable (txn/txn_table.h) and owns its matching key;
// the table finds it by id in one step and by key through a flat index, so a lookup builds the
// key in a reused scratch string and allocates nothing. A transaction keeps
// only bytes (its key, the last response or the request to retransmit) and at most two running
// timers: one that retransmits (A, E, G) and one that ends a state (B, D, F, H, I, J, K, L, M,
// and the RFC 3261 §9.1 wait after a CANCEL).
//
// Re-entrancy: the TU is called last, after the layer's own bookkeeping is done and with no
// iterator or reference held across the call, so the TU may call back into the layer (respond()
// from on_request, send_request() from on_client_timeout, ...).
#include "txn/transaction_layer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <utility>
#include <vector>

#include "base/keyed_hash.h"
#include "sip/parser.h"
#include "sip/response.h"
#include "txn/txn_table.h"

namespace txn {
namespace {

constexpr std::string_view kCookie = "z9hG4bK";  // RFC 3261 §8.1.1.7
constexpr std::string_view kOurs = "sw";         // after the cookie: a branch new_branch() made
static_assert(TransactionLayer::kBranchPrefix.substr(0, kCookie.size()) == kCookie &&
              TransactionLayer::kBranchPrefix.substr(kCookie.size()) == kOurs);
constexpr char kSep = '\x1f';                    // never inside a token, URI or header value
constexpr std::string_view kInvite = "INVITE";
constexpr std::string_view kCancel = "CANCEL";

enum class ServerState : std::uint8_t {
  kTrying,      // non-INVITE, nothing sent yet
  kProceeding,  // a provisional response sent (INVITE: from creation)
  kCompleted,   // final sent; non-INVITE: Timer J; INVITE (300-699): Timers G and H
  kConfirmed,   // INVITE: ACK received, Timer I
  kAccepted,    // INVITE: 2xx sent, Timer L (RFC 6026 §7.1)
};

enum class ClientState : std::uint8_t {
  kCalling,     // INVITE sent, Timers A and B
  kTrying,      // non-INVITE sent, Timers E and F
  kProceeding,  // a provisional response received
  kCompleted,   // final received; INVITE (300-699): Timer D; non-INVITE: Timer K
  kAccepted,    // INVITE: 2xx received, Timer M (RFC 6026 §8.4)
};

enum class Slot : std::uint8_t { kRetransmit = 0, kEnd = 1 };

struct ServerTxn {
  std::string key;            // what the table matches (server_key())
  std::string last_response;  // resent on retransmitted requests and by Timer G
  transport::Flow flow;
  TimerService::Id retransmit_timer = 0;  // G
  TimerService::Id end_timer = 0;         // H, I, J, L
  std::uint32_t interval_ms = 0;          // Timer G's next interval
  // RFC 2543 INVITE with a 300-699 response: where that response's To tag is in
  // last_response (an ACK from a 2543 peer matches by it).
  std::uint32_t to_tag_at = 0;
  std::uint32_t to_tag_size = 0;
  ServerState state = ServerState::kTrying;
  bool invite = false;
  bool rfc2543 = false;
};

struct ClientTxn {
  std::string key;    // what the table matches: branch + kSep + CSeq method
  std::string bytes;  // the request (retransmissions, ACK and CANCEL built from it); for an
                      // INVITE in Completed: the ACK, resent for each retransmitted final
  transport::Flow flow;
  TimerService::Id retransmit_timer = 0;  // A, E
  TimerService::Id end_timer = 0;         // B, F, D, K, M, or the wait after CANCEL
  std::uint32_t interval_ms = 0;          // Timer A / E's next interval
  ClientState state = ClientState::kTrying;
  bool invite = false;
  bool internal = false;       // a CANCEL the layer sent for cancel(): the TU hears nothing
  bool cancel_wanted = false;  // cancel() came before any provisional response (§9.1)
  bool cancel_sent = false;

  std::string_view branch() const { return std::string_view(key).substr(0, key.find(kSep)); }
};

void append_number(std::string& out, std::uint64_t n, int base = 10) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n, base);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

// Frees `s`'s buffer. Assigning std::string() would not: libstdc++ keeps the capacity when
// the string moved from is a short (in-place) one.
void release(std::string& s) { std::string().swap(s); }

void append_lower(std::string& out, std::string_view s) {
  for (char c : s) out.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c);
}

std::string_view tag_of(const sip::NameAddr& name_addr) {
  return name_addr.params.find("tag").value_or(std::string_view{});
}

bool rfc3261(const sip::Message& m) {
  return !m.via.empty() && m.via.front().rfc3261_branch();
}

// RFC 3261 §17.2.3: branch, sent-by (host case-insensitive, port as written) and method.
void server_key_3261(std::string& out, const sip::Via& via, std::string_view method) {
  out.clear();
  out.push_back('3');
  out.append(method).push_back(kSep);
  out.append(via.branch).push_back(kSep);
  append_lower(out, via.host);
  if (via.has_port) {
    out.push_back(':');
    append_number(out, via.port);
  }
}

// RFC 3261 §17.2.3, last paragraphs (a peer without the magic cookie): Request-URI, From tag,
// Call-ID, CSeq number and method, top Via, and the To tag given (the request's own, except
// when an ACK looks for its INVITE).
void server_key_2543(std::string& out, const sip::Message& m, std::string_view method,
                     std::string_view to_tag) {
  out.clear();
  out.push_back('2');
  out.append(method).push_back(kSep);
  out.append(m.request_uri.text).push_back(kSep);
  out.append(tag_of(m.from)).push_back(kSep);
  out.append(m.call_id).push_back(kSep);
  append_number(out, m.cseq.number);
  out.push_back(kSep);
  if (!m.via.empty()) out.append(m.via.front().text);
  out.push_back(kSep);
  out.append(to_tag);
}

void server_key(std::string& out, const sip::Message& m, std::string_view method) {
  if (rfc3261(m)) {
    server_key_3261(out, m.via.front(), method);
  } else {
    server_key_2543(out, m, method, tag_of(m.to));
  }
}

// RFC 3261 §17.1.3: top Via branch and CSeq method.
void client_key(std::string& out, std::string_view branch, std::string_view method) {
  out.clear();
  out.append(branch).push_back(kSep);
  out.append(method);
}

std::uint32_t ms(Duration d) {
  return static_cast<std::uint32_t>(std::clamp<Duration::rep>(d.count(), 0, 0x7fffffff));
}

bool is_lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

}  // namespace

struct TransactionLayer::State {
  State(std::uint16_t worker_id, const Timers& t, TimerService& ts, Sender& s, TransactionUser& u)
      : worker(worker_id), timers(t), timer_service(ts), sender(s), user(u) {}

  ~State() {
    servers.for_each([this](ServerTxnId, ServerTxn& t) { cancel_timers(t); });
    clients.for_each([this](ClientTxnId, ClientTxn& t) { cancel_timers(t); });
  }

  const std::uint16_t worker;
  const Timers timers;
  TimerService& timer_service;
  Sender& sender;
  TransactionUser& user;

  std::uint64_t branch_counter = 0;
  // The unpredictable part of our branches, so a peer that sees one branch cannot guess the
  // others (and forge responses to them).
  const base::KeyedHash branch_hash;

  // Kinds 0 and 1: a server and a client transaction never share an id. Each table hashes its
  // keys under a key of its own: a peer chooses them (branch, sent-by), and with a fixed hash an
  // attacker could send requests whose keys all collide and turn every lookup into a list walk.
  using ServerTable = TxnTable<ServerTxn, base::KeyedHash>;
  using ClientTable = TxnTable<ClientTxn, base::KeyedHash>;
  ServerTable servers{0, base::KeyedHash()};
  ClientTable clients{1, base::KeyedHash()};

  std::string key;       // scratch for building a key to look up
  sip::Message scratch;  // parse of our own stored bytes (ACK/CANCEL building, To tags)

  Duration timer_64t1() const { return 64 * timers.t1; }

  // ---- timers

  TimerService::Id start(std::uint64_t id, bool client, Slot slot, Duration after) {
    // One word of capture besides `this`: std::function keeps it without allocating.
    const std::uint64_t tag = (id << 2) | (client ? 2u : 0u) | static_cast<std::uint64_t>(slot);
    return timer_service.start(after, [this, tag] { on_timer(tag); });
  }

  void stop(TimerService::Id& timer) {
    if (timer != 0) timer_service.cancel(timer);
    timer = 0;
  }

  template <typename Txn>
  void cancel_timers(Txn& t) {
    stop(t.retransmit_timer);
    stop(t.end_timer);
  }

  void on_timer(std::uint64_t tag) {
    const std::uint64_t id = tag >> 2;
    const auto slot = static_cast<Slot>(tag & 1u);
    if ((tag & 2u) != 0) {
      client_timer(id, slot);
    } else {
      server_timer(id, slot);
    }
  }

  // ---- server transactions

  void erase_server(ServerTxnId id, ServerTxn& t) {
    cancel_timers(t);
    servers.erase(id);
  }

  void server_timer(ServerTxnId id, Slot slot) {
    ServerTxn* const found = servers.get(id);
    if (found == nullptr) return;
    ServerTxn& t = *found;
    if (slot == Slot::kRetransmit) {
      t.retransmit_timer = 0;
      if (t.state != ServerState::kCompleted) return;
      // RFC 3261 §17.2.1 Timer G: resend the final response, interval doubling up to T2.
      sender.send(t.flow, t.last_response);
      t.interval_ms = std::min(2 * t.interval_ms, ms(timers.t2));
      t.retransmit_timer = start(id, false, Slot::kRetransmit, Duration(t.interval_ms));
      return;
    }
    // Timers H (no ACK came), I, J and L: the transaction ends.
    t.end_timer = 0;
    erase_server(id, t);
  }

  TransactionLayer::Outcome receive_request(const sip::Message& request,
                                            const transport::Flow& flow) {
    if (request.method == sip::Method::kAck) return receive_ack(request, flow);

    server_key(key, request, request.method_text);
    const auto [found, is_new] = servers.insert(key);
    if (!is_new) {
      // RFC 3261 §17.2.1, §17.2.2: a retransmission goes no further; it gets the last
      // response again (in Trying there is none yet, in Confirmed the ACK already came).
      const ServerTxn& t = *found.txn;
      if (!t.last_response.empty() && t.state != ServerState::kConfirmed) {
        sender.send(t.flow, t.last_response);
      }
      return Outcome::kRetransmission;
    }

    const bool invite = request.method == sip::Method::kInvite;
    const ServerTxnId id = found.id;
    ServerTxn& t = *found.txn;
    t.flow = flow;
    t.invite = invite;
    t.rfc2543 = !rfc3261(request);
    t.state = t.invite ? ServerState::kProceeding : ServerState::kTrying;

    // RFC 3261 §9.2: the INVITE a CANCEL is for matches by the §17.2.3 rules, method INVITE.
    ServerTxnId cancelled = 0;
    if (request.method == sip::Method::kCancel) {
      server_key(key, request, kInvite);
      const auto invite_txn = servers.find(key);
      if (invite_txn && invite_txn.txn->invite) cancelled = invite_txn.id;
    }

    user.on_request(id, request, flow, cancelled);  // may respond(), even end the transaction

    // RFC 3261 §17.2.1: 100 Trying, unless the TU already answered inside on_request (a
    // challenge or a rejection then costs one datagram, not two).
    if (invite) {
      ServerTxn* const now = servers.get(id);
      if (now != nullptr && now->last_response.empty()) {
        sip::ResponseSpec spec;
        spec.code = 100;
        // The flow is where responses go: its address is the request's source, and with
        // rport its port is too (RFC 3581), so it fills received/rport of the top Via.
        const std::string address = now->flow.remote.address_string();
        const sip::ReceivedFrom from{address, now->flow.remote.port};
        std::string trying = sip::build_response(request, spec, &from);
        sender.send(now->flow, trying);
        now->last_response = std::move(trying);
      }
    }
    return Outcome::kNew;
  }

  // The INVITE server transaction an ACK is for (§17.2.3), or none.
  ServerTable::Found find_ack_target(const sip::Message& ack) {
    if (rfc3261(ack)) {
      server_key_3261(key, ack.via.front(), kInvite);
      return servers.find(key);
    }
    // RFC 2543: the ACK's To tag is the tag of the final response. The INVITE carried that
    // tag already (a re-INVITE) or none at all (the tag came with the response).
    const std::string_view ack_tag = tag_of(ack.to);
    for (const std::string_view invite_tag : {ack_tag, std::string_view{}}) {
      server_key_2543(key, ack, kInvite, invite_tag);
      const auto found = servers.find(key);
      if (!found) continue;
      const ServerTxn& t = *found.txn;
      if ((t.state == ServerState::kCompleted || t.state == ServerState::kConfirmed) &&
          std::string_view(t.last_response).substr(t.to_tag_at, t.to_tag_size) == ack_tag) {
        return found;
      }
      if (invite_tag.empty()) break;
    }
    return {};
  }

  TransactionLayer::Outcome receive_ack(const sip::Message& ack, const transport::Flow& flow) {
    const auto found = find_ack_target(ack);
    // RFC 6026 §7.1: an ACK in Accepted is the ACK for the 2xx; the TU gets it.
    if (!found || found.txn->state == ServerState::kAccepted) {
      user.on_stray_ack(ack, flow);
      return Outcome::kStrayAck;
    }
    ServerTxn& t = *found.txn;
    if (t.state == ServerState::kCompleted) {
      // RFC 3261 §17.2.1: Completed → Confirmed; G and H stop, Timer I absorbs more ACKs.
      cancel_timers(t);
      t.state = ServerState::kConfirmed;
      if (t.flow.reliable()) {
        erase_server(found.id, t);
      } else {
        t.end_timer = start(found.id, false, Slot::kEnd, timers.t4);
      }
    }
    return Outcome::kAck;
  }

  bool forget(ServerTxnId id) {
    ServerTxn* const t = servers.get(id);
    if (t == nullptr || t->invite || t->state != ServerState::kCompleted) return false;
    erase_server(id, *t);
    return true;
  }

  bool respond(ServerTxnId id, int status_code, std::string bytes) {
    ServerTxn* const found = servers.get(id);
    if (found == nullptr || status_code < 100 || status_code > 699) return false;
    ServerTxn& t = *found;
    const bool success = status_code >= 200 && status_code < 300;
    switch (t.state) {
      case ServerState::kTrying:
      case ServerState::kProceeding:
        break;
      case ServerState::kAccepted:
        // RFC 6026 §7.1: further 2xx from the TU (a proxy forwarding 2xx retransmissions or
        // other forks' 2xx) are sent, not kept; nothing else is.
        if (!success) return false;
        sender.send(t.flow, bytes);
        return true;
      default:
        return false;
    }

    sender.send(t.flow, bytes);
    t.last_response = std::move(bytes);
    if (status_code < 200) {
      t.state = ServerState::kProceeding;
      return true;
    }
    if (!t.invite) {
      // RFC 3261 §17.2.2: Completed, Timer J (64*T1 unreliable, 0 reliable).
      if (t.flow.reliable()) {
        erase_server(id, t);
      } else {
        t.state = ServerState::kCompleted;
        t.end_timer = start(id, false, Slot::kEnd, timer_64t1());
      }
      return true;
    }
    if (success) {
      // RFC 6026 §7.1: Accepted for Timer L; retransmitted INVITEs are absorbed, so the 2xx
      // (about 1 KB with SDP, which every answered call held for 32 s) is not kept.
      t.state = ServerState::kAccepted;
      release(t.last_response);
      t.end_timer = start(id, false, Slot::kEnd, timer_64t1());
      return true;
    }
    // RFC 3261 §17.2.1: Completed; Timer G (unreliable only) and Timer H.
    t.state = ServerState::kCompleted;
    if (t.rfc2543) remember_to_tag(t);
    if (!t.flow.reliable()) {
      t.interval_ms = ms(timers.t1);
      t.retransmit_timer = start(id, false, Slot::kRetransmit, timers.t1);
    }
    t.end_timer = start(id, false, Slot::kEnd, timer_64t1());
    return true;
  }

  void remember_to_tag(ServerTxn& t) {
    t.to_tag_at = t.to_tag_size = 0;
    if (!sip::parse(t.last_response, scratch).ok() || !scratch.has_to) return;
    const std::string_view tag = tag_of(scratch.to);
    if (tag.empty()) return;
    t.to_tag_at = static_cast<std::uint32_t>(tag.data() - t.last_response.data());
    t.to_tag_size = static_cast<std::uint32_t>(tag.size());
  }

  // ---- client transactions

  void erase_client(ClientTxnId id, ClientTxn& t) {
    cancel_timers(t);
    clients.erase(id);
  }

  ClientTxnId create_client(std::string_view branch, std::string_view method, bool invite,
                            std::string bytes, const transport::Flow& destination, bool internal) {
    client_key(key, branch, method);
    const auto [found, is_new] = clients.insert(key);
    if (!is_new) return 0;
    const ClientTxnId id = found.id;
    ClientTxn& t = *found.txn;
    t.flow = destination;
    t.invite = invite;
    t.internal = internal;
    t.state = invite ? ClientState::kCalling : ClientState::kTrying;

    sender.send(destination, bytes);
    // RFC 3261 §17.1.1.2 Timer A / §17.1.2.2 Timer E: retransmit on unreliable flows only.
    if (!destination.reliable()) {
      t.interval_ms = ms(timers.t1);
      t.retransmit_timer = start(id, true, Slot::kRetransmit, timers.t1);
    }
    t.end_timer = start(id, true, Slot::kEnd, timer_64t1());  // Timer B / F
    // An INVITE keeps its bytes to build the ACK and CANCEL; a non-INVITE only to retransmit.
    if (invite || !destination.reliable()) t.bytes = std::move(bytes);
    return id;
  }

  ClientTxnId send_request(sip::Method method, std::string_view method_text,
                           std::string_view branch, std::string bytes,
                           const transport::Flow& destination) {
    if (method == sip::Method::kAck) {
      // The ACK for a 2xx is not a transaction (RFC 3261 §17.1.1.3 / §13.2.2.4).
      sender.send(destination, bytes);
      return 0;
    }
    return create_client(branch, method_text, method == sip::Method::kInvite, std::move(bytes),
                         destination, false);
  }

  // RFC 3261 §9.1: CANCEL in its own transaction, same branch and destination as the INVITE.
  void send_cancel(ClientTxnId invite_id) {
    ClientTxn& inv = *clients.get(invite_id);
    inv.cancel_sent = true;
    if (!sip::parse(inv.bytes, scratch).ok()) return;
    // `inv` stays valid while the CANCEL is inserted: slots never move.
    create_client(inv.branch(), kCancel, false, sip::build_cancel(scratch), inv.flow, true);
    // RFC 3261 §9.1: no final response within 64*T1 of the CANCEL: give the INVITE up.
    stop(inv.end_timer);
    inv.end_timer = start(invite_id, true, Slot::kEnd, timer_64t1());
  }

  bool cancel(ClientTxnId id) {
    ClientTxn* const found = clients.get(id);
    if (found == nullptr || !found->invite) return false;
    ClientTxn& t = *found;
    switch (t.state) {
      case ClientState::kCalling:
        t.cancel_wanted = true;  // sent when the first provisional response arrives
        return true;
      case ClientState::kProceeding:
        if (!t.cancel_sent) send_cancel(id);
        return true;
      default:
        return false;
    }
  }

  void client_timer(ClientTxnId id, Slot slot) {
    ClientTxn* const found = clients.get(id);
    if (found == nullptr) return;
    ClientTxn& t = *found;
    if (slot == Slot::kRetransmit) {
      t.retransmit_timer = 0;
      switch (t.state) {
        case ClientState::kCalling:  // Timer A: doubles without a cap
          t.interval_ms *= 2;
          break;
        case ClientState::kTrying:  // Timer E: doubles up to T2
          t.interval_ms = std::min(2 * t.interval_ms, ms(timers.t2));
          break;
        case ClientState::kProceeding:  // Timer E after a provisional: every T2
          if (t.invite) return;
          t.interval_ms = ms(timers.t2);
          break;
        default:
          return;
      }
      sender.send(t.flow, t.bytes);
      t.retransmit_timer = start(id, true, Slot::kRetransmit, Duration(t.interval_ms));
      return;
    }
    t.end_timer = 0;
    const bool timed_out = t.state == ClientState::kCalling || t.state == ClientState::kTrying ||
                           t.state == ClientState::kProceeding;
    const bool report = timed_out && !t.internal;
    erase_client(id, t);  // B, F, the CANCEL wait; or D, K, M ending Completed / Accepted
    if (report) user.on_client_timeout(id);
  }

  TransactionLayer::Outcome receive_response(const sip::Message& response,
                                             const transport::Flow& flow) {
    if (response.via.empty() || !response.has_cseq) return Outcome::kStrayResponse;
    client_key(key, response.via.front().branch, response.cseq.method_text);
    const auto [id, t] = clients.find(key);
    if (t == nullptr) return Outcome::kStrayResponse;  // §18.1.2: dropped
    const bool internal = t->internal;  // read now: the handlers may end it
    const bool report =
        t->invite ? invite_response(id, *t, response) : non_invite_response(id, *t, response);
    // Responses to the layer's own CANCEL drive its state only; the TU waits for the INVITE's.
    if (!report || internal) return Outcome::kAbsorbed;
    user.on_response(id, response, flow);
    return Outcome::kResponse;
  }

  // RFC 3261 §17.1.1.2 with RFC 6026 §8.4. Returns whether the TU hears of the response.
  bool invite_response(ClientTxnId id, ClientTxn& t, const sip::Message& response) {
    const int code = response.status_code;
    switch (t.state) {
      case ClientState::kCalling:
      case ClientState::kProceeding:
        break;
      case ClientState::kAccepted:
        return code >= 200 && code < 300;  // 2xx retransmissions and other forks' 2xx
      case ClientState::kCompleted:
        // A retransmitted final response gets the ACK again, and goes no further.
        if (code >= 300) sender.send(t.flow, t.bytes);
        return false;
      default:
        return false;
    }
    if (code < 200) {
      if (t.state == ClientState::kCalling) {
        cancel_timers(t);  // A and B belong to Calling
        t.state = ClientState::kProceeding;
        if (t.cancel_wanted) send_cancel(id);
      }
      return true;
    }
    if (code < 300) {
      cancel_timers(t);
      t.state = ClientState::kAccepted;
      release(t.bytes);                                         // the TU builds the ACK for a 2xx
      t.end_timer = start(id, true, Slot::kEnd, timer_64t1());  // Timer M
      return true;
    }
    // 300-699: ACK it (§17.1.1.3) and wait in Completed for retransmissions (Timer D).
    cancel_timers(t);
    std::string ack;
    if (sip::parse(t.bytes, scratch).ok()) ack = sip::build_ack(scratch, response);
    if (!ack.empty()) sender.send(t.flow, ack);
    if (t.flow.reliable()) {
      erase_client(id, t);
    } else {
      t.state = ClientState::kCompleted;
      t.bytes = std::move(ack);
      t.end_timer = start(id, true, Slot::kEnd, std::max<Duration>(Duration(32000), timer_64t1()));
    }
    return true;
  }

  // RFC 3261 §17.1.2.2. Returns whether the TU hears of the response.
  bool non_invite_response(ClientTxnId id, ClientTxn& t, const sip::Message& response) {
    if (t.state != ClientState::kTrying && t.state != ClientState::kProceeding) return false;
    if (response.status_code < 200) {
      t.state = ClientState::kProceeding;  // Timer E goes on, at T2 from its next firing
      return true;
    }
    cancel_timers(t);
    if (t.flow.reliable()) {
      erase_client(id, t);  // Timer K is 0
    } else {
      t.state = ClientState::kCompleted;
      release(t.bytes);
      t.end_timer = start(id, true, Slot::kEnd, timers.t4);  // Timer K
    }
    return true;
  }

  // ---- transport failures (RFC 3261 §17.1.4, §17.2.4)

  void connection_closed(std::uint64_t connection) {
    if (connection == 0) return;
    std::vector<std::uint64_t> ids;
    servers.for_each([&](ServerTxnId id, const ServerTxn& t) {
      if (t.flow.connection == connection) ids.push_back(id);
    });
    for (const std::uint64_t id : ids) erase_server(id, *servers.get(id));

    ids.clear();
    std::vector<ClientTxnId> failed;
    clients.for_each([&](ClientTxnId id, const ClientTxn& t) {
      if (t.flow.connection == connection) ids.push_back(id);
    });
    for (const std::uint64_t id : ids) {
      ClientTxn& t = *clients.get(id);
      if (!t.internal && (t.state == ClientState::kCalling || t.state == ClientState::kTrying ||
                          t.state == ClientState::kProceeding)) {
        failed.push_back(id);
      }
      erase_client(id, t);
    }
    // Only now, with every container settled, the TU hears of the failures.
    for (const ClientTxnId id : failed) user.on_client_timeout(id);
  }

  // ---- branches

  Branch new_branch() {
    const std::uint64_t n = ++branch_counter;
    // "z9hG4bKsw<worker>.<counter hex>.<16 hex digits keyed hash of the counter>": at most
    // 9 + 5 + 1 + 16 + 1 + 16 characters.
    static_assert(kCookie.size() + kOurs.size() + 5 + 1 + 16 + 1 + 16 <= Branch::kMaxSize);
    char buf[Branch::kMaxSize];
    char* p = std::copy(kCookie.begin(), kCookie.end(), buf);
    p = std::copy(kOurs.begin(), kOurs.end(), p);
    p = std::to_chars(p, buf + sizeof buf, worker).ptr;
    *p++ = '.';
    p = std::to_chars(p, buf + sizeof buf, n, 16).ptr;
    *p++ = '.';
    char counter[sizeof n];
    std::memcpy(counter, &n, sizeof n);
    const std::uint64_t mac = branch_hash(std::string_view(counter, sizeof n));
    static constexpr char kHex[] = "0123456789abcdef";
    for (int shift = 60; shift >= 0; shift -= 4) *p++ = kHex[(mac >> shift) & 0xf];
    return Branch(std::string_view(buf, static_cast<std::size_t>(p - buf)));
  }
};

TransactionLayer::TransactionLayer(std::uint16_t worker, const Timers& timers,
                                   TimerService& timer_service, Sender& sender,
                                   TransactionUser& user)
    : state_(std::make_unique<State>(worker, timers, timer_service, sender, user)) {}

TransactionLayer::~TransactionLayer() = default;

TransactionLayer::Outcome TransactionLayer::receive_request(const sip::Message& request,
                                                            const transport::Flow& flow) {
  return state_->receive_request(request, flow);
}

TransactionLayer::Outcome TransactionLayer::receive_response(const sip::Message& response,
                                                             const transport::Flow& flow) {
  return state_->receive_response(response, flow);
}

bool TransactionLayer::respond(ServerTxnId id, int status_code, std::string bytes) {
  return state_->respond(id, status_code, std::move(bytes));
}

bool TransactionLayer::forget(ServerTxnId id) {
  return state_->forget(id);
}

ClientTxnId TransactionLayer::send_request(const sip::Message& request, std::string bytes,
                                           const transport::Flow& destination) {
  if (request.method != sip::Method::kAck && request.via.empty()) return 0;
  const std::string_view branch =
      request.via.empty() ? std::string_view{} : std::string_view(request.via.front().branch);
  return state_->send_request(request.method, request.method_text, branch, std::move(bytes),
                              destination);
}

ClientTxnId TransactionLayer::send_request(sip::Method method, std::string_view method_text,
                                           std::string_view branch, std::string bytes,
                                           const transport::Flow& destination) {
  return state_->send_request(method, method_text, branch, std::move(bytes), destination);
}

bool TransactionLayer::cancel(ClientTxnId id) {
  return state_->cancel(id);
}

void TransactionLayer::connection_closed(std::uint64_t connection) {
  state_->connection_closed(connection);
}

Branch TransactionLayer::new_branch() {
  return state_->new_branch();
}

int TransactionLayer::worker_of_branch(std::string_view branch) {
  if (branch.substr(0, kCookie.size()) != kCookie) return -1;
  branch.remove_prefix(kCookie.size());
  if (branch.substr(0, kOurs.size()) != kOurs) return -1;
  branch.remove_prefix(kOurs.size());

  // <worker decimal> '.' <counter: 1..16 lowercase hex> '.' <exactly 16 lowercase hex>
  std::uint32_t worker = 0;
  const auto r = std::from_chars(branch.data(), branch.data() + branch.size(), worker);
  const auto digits = static_cast<std::size_t>(r.ptr - branch.data());
  if (r.ec != std::errc() || digits == 0 || digits > 5 || worker > 0xffff) return -1;
  if (digits > 1 && branch.front() == '0') return -1;
  branch.remove_prefix(digits);
  if (branch.empty() || branch.front() != '.') return -1;
  branch.remove_prefix(1);
  const std::size_t dot = branch.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot > 16) return -1;
  if (!std::all_of(branch.begin(), branch.begin() + static_cast<std::ptrdiff_t>(dot),
                   is_lower_hex)) {
    return -1;
  }
  branch.remove_prefix(dot + 1);
  if (branch.size() != 16 || !std::all_of(branch.begin(), branch.end(), is_lower_hex)) return -1;
  return static_cast<int>(worker);
}

std::size_t TransactionLayer::server_transactions() const {
  return state_->servers.size();
}
std::size_t TransactionLayer::client_transactions() const {
  return state_->clients.size();
}

}  // namespace txn
