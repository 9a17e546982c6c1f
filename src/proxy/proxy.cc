#include "proxy/proxy.h"

#include <algorithm>
#include <charconv>
#include <deque>

#include "auth/client.h"
#include "base/clock.h"
#include "base/flat_index.h"
#include "sip/params.h"
#include "sip/editor.h"
#include "sip/parser.h"
#include "sip/sdp.h"
#include "spdlog/spdlog.h"

namespace proxy {
namespace {

using transport::Flow;
using transport::Protocol;

std::string_view via_transport(Protocol p) { return transport::to_string(p); }

// "192.0.2.1:5060" or "[2001:db8::1]:5060" (the form bindings store flows in).
std::optional<transport::Endpoint> parse_endpoint(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 2 > text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  std::uint16_t p = 0;
  const auto r = std::from_chars(port.data(), port.data() + port.size(), p);
  if (r.ec != std::errc() || r.ptr != port.data() + port.size()) return std::nullopt;
  return transport::Endpoint::from_string(host, p);
}

std::optional<Protocol> protocol_of(std::string_view name) {
  if (name == "udp") return Protocol::kUdp;
  if (name == "tcp") return Protocol::kTcp;
  if (name == "tls") return Protocol::kTls;
  return std::nullopt;
}

// Requests that create a dialog through the proxy, so they get a Record-Route.
bool creates_dialog(sip::Method m) {
  return m == sip::Method::kInvite || m == sip::Method::kSubscribe || m == sip::Method::kRefer;
}

std::string host_for_uri(const transport::Endpoint& e) {
  if (!e.v6) return e.address_string();
  // Appended, not `"[" + ...`: GCC 12 -O2 warns falsely (-Wrestrict) on that.
  std::string out = "[";
  out += e.address_string();
  out += ']';
  return out;
}

// RFC 3261 §16.7 step 6: the best of the final responses: a 6xx if any, else one of the
// lowest class, preferring the challenges (so the caller can answer them).
const std::string* best_of(const std::vector<std::pair<int, const std::string*>>& finals,
                           int* code) {
  const std::pair<int, const std::string*>* best = nullptr;
  for (const auto& f : finals) {
    if (f.first >= 600) {
      best = &f;
      break;
    }
    if (best == nullptr || f.first / 100 < best->first / 100) {
      best = &f;
    } else if (f.first / 100 == best->first / 100 && (f.first == 401 || f.first == 407) &&
               best->first != 401 && best->first != 407) {
      best = &f;
    }
  }
  if (best == nullptr) return nullptr;
  *code = best->first;
  return best->second;
}

}  // namespace

const config::CallPolicy& Shared::policy_of(const std::string& user) const {
  const auto it = users.find(user);
  return it != users.end() ? it->second.calls : calls;
}

struct Proxy::State {
  struct Branch {
    txn::ClientTxnId client = 0;
    Flow flow;
    std::string request;  // the bytes sent, to a trunk only (for its digest retry)
    int final_code = 0;   // 0: still waiting
    std::string final_response;  // a non-2xx final answer, our Via removed
    std::optional<std::size_t> trunk;
    bool auth_retried = false;
  };
  struct Context {
    txn::ServerTxnId server = 0;
    std::string request;  // the request as received
    Flow flow;            // its arrival flow (answers go back through the server transaction)
    sip::Method method = sip::Method::kUnknown;
    std::vector<Branch> branches;
    bool final_sent = false;
    bool answered = false;
    bool cancelled = false;
    bool ring_expired = false;
    bool trunk_refused = false;  // a provider challenged the trunk and would not let it in
    base::TimerService::Id ring_timer = 0;
    bool tracks_dialog = false;  // an entry in the DialogTable (call_id, caller_tag)
    std::string call_id, caller_tag;
    std::int64_t max_duration_s = 0;
  };
  // A 2xx forwarded for an INVITE: its retransmissions (reported by the client transaction
  // for 64*T1) are forwarded through the server transaction, which accepts them that long.
  // `accepted` finds the server transaction; `accepted_order` forgets it after 32 s.
  struct Accepted {
    txn::ClientTxnId client;
    std::chrono::steady_clock::time_point until;
  };

  State(std::uint16_t w, Shared& s, Host& h, txn::TransactionLayer& t, base::TimerService& ts)
      : worker(w), shared(s), host(h), txn(t), timers(ts) {}

  const std::uint16_t worker;
  Shared& shared;
  Host& host;
  txn::TransactionLayer& txn;
  base::TimerService& timers;
  // A branch's client transaction: which context and which of its branches.
  struct ClientRef {
    txn::ClientTxnId id = 0;
    Context* ctx = nullptr;
    std::size_t branch = 0;
    explicit operator bool() const { return id != 0; }
  };
  // A 2xx's client transaction and the server transaction it was forwarded through.
  struct AcceptedRef {
    txn::ClientTxnId client = 0;
    txn::ServerTxnId server = 0;
    explicit operator bool() const { return client != 0; }
  };

  // Flat indexes by base::hash_id() of the id, not node-based maps: no node allocated per
  // entry, and the index shrinks again once a load peak is over (an unordered_map keeps its
  // peak bucket array: about 1 MiB each after a few thousand calls a second). A context lives
  // in its own allocation, so that the ClientRefs pointing to it stay valid while the index
  // moves its entries.
  base::FlatIndex<std::unique_ptr<Context>> contexts;
  base::FlatIndex<ClientRef> by_client;
  base::FlatIndex<AcceptedRef> accepted;
  std::deque<Accepted> accepted_order;
  sip::Message scratch;
  std::string via_scratch;  // build_branch()'s Vias, kept for its capacity

  // ---- the indexes

  base::FlatIndex<std::unique_ptr<Context>>::Entry* context_entry(txn::ServerTxnId id) {
    return contexts.find(base::hash_id(id),
                         [id](const std::unique_ptr<Context>& c) { return c->server == id; });
  }

  Context* find_context(txn::ServerTxnId id) {
    const auto* e = context_entry(id);
    return e != nullptr ? e->value.get() : nullptr;
  }

  void forget_context(txn::ServerTxnId id) {
    if (auto* e = context_entry(id)) contexts.erase(e);
  }

  base::FlatIndex<ClientRef>::Entry* client_entry(txn::ClientTxnId id) {
    return by_client.find(base::hash_id(id), [id](const ClientRef& r) { return r.id == id; });
  }

  // The ClientRef of client transaction `id`, by value (the index may move it), or an empty one.
  ClientRef find_client(txn::ClientTxnId id) {
    const auto* e = client_entry(id);
    return e != nullptr ? e->value : ClientRef{};
  }

  void forget_client(txn::ClientTxnId id) {
    if (auto* e = client_entry(id)) by_client.erase(e);
  }

  base::FlatIndex<AcceptedRef>::Entry* accepted_entry(txn::ClientTxnId id) {
    return accepted.find(base::hash_id(id), [id](const AcceptedRef& a) { return a.client == id; });
  }

  // ---- small helpers

  std::int64_t now_s() const { return base::unix_seconds(shared.now()); }

  bool is_local_host(std::string_view name) const {
    if (!shared.record_route_host.empty() && sip::iequals(name, shared.record_route_host)) {
      return true;
    }
    return std::any_of(shared.local_hosts.begin(), shared.local_hosts.end(),
                       [&](const std::string& h) { return sip::iequals(h, name); });
  }

  // A Route or Request-URI naming this server (host ours, and the port one we listen on).
  bool is_ours(const sip::Uri& uri) const {
    if (uri.has_user && !uri.param("sw")) return false;
    if (!is_local_host(uri.host)) return false;
    if (!uri.has_port) return true;
    return std::any_of(shared.listeners.begin(), shared.listeners.end(),
                       [&](const Listener& l) { return l.local.port == uri.port; });
  }

  const Listener* listener(std::uint32_t id) const {
    for (const Listener& l : shared.listeners) {
      if (l.id == id) return &l;
    }
    return nullptr;
  }

  // Appends the host and port this server is known as on `flow`: for Via and Record-Route.
  // Built in place: a branch writes it two or three times.
  void append_sent_by(std::string& out, const Flow& flow) const {
    transport::Endpoint local = flow.local;
    if (local.port == 0) {
      if (const Listener* l = listener(flow.listener)) local = l->local;
    }
    if (!shared.record_route_host.empty()) {
      out += shared.record_route_host;
    } else if (!local.is_unusable_destination()) {
      out += host_for_uri(local);
    } else {
      out += shared.domain;
    }
    char port[8];
    const auto end = std::to_chars(port, port + sizeof port, local.port).ptr;
    out += ':';
    out.append(port, end);
  }

  std::string sent_by(const Flow& flow) const {
    std::string out;
    append_sent_by(out, flow);
    return out;
  }

  std::string record_route(const Flow& flow, const std::string& token) const {
    std::string rr;
    rr.reserve(64 + token.size());
    rr += "<sip:";
    append_sent_by(rr, flow);
    if (flow.protocol == Protocol::kTcp) rr += ";transport=tcp";
    if (flow.protocol == Protocol::kTls) rr += ";transport=tls";
    rr.append(";lr;sw=").append(token).append(">");
    return rr;
  }

  void refuse(txn::ServerTxnId id, const sip::Message& request, const Flow& flow, int code,
              std::string_view reason, std::string_view user, std::string_view event_reason) {
    if (shared.events != nullptr && !event_reason.empty()) {
      const std::string address = flow.remote.address_string();
      shield::Event e;
      e.type = "call_refused";
      e.source = address;
      e.port = flow.remote.port;
      e.transport = transport::to_string(flow.protocol);
      e.user = user;
      e.reason = event_reason;
      e.action = "refused";
      shared.events->record(e, std::chrono::duration_cast<std::chrono::milliseconds>(
                                   shared.now().time_since_epoch())
                                   .count());
    }
    sip::ResponseSpec spec;
    spec.code = code;
    spec.reason = reason;
    host.answer(id, request, flow, spec);
  }

  // A flow address as the location service keeps it.
  static std::optional<transport::Endpoint> endpoint_of(const registrar::Location::Address& a) {
    return a.endpoint ? a.endpoint : parse_endpoint(a.text);
  }

  // Where a binding is reached: over streams, the connection it registered on (the only way
  // to a phone behind NAT); over UDP, the address it registered from — at the Contact's port
  // when the Contact names that same address (a host not behind NAT may register for another
  // of its sockets), else at the source port (NAT).
  std::optional<Flow> flow_of(const registrar::Location::Reach& b) const {
    const auto protocol = protocol_of(b.transport);
    auto remote = endpoint_of(b.source);
    if (!protocol || !remote) return std::nullopt;
    if (*protocol == Protocol::kUdp) {
      if (const auto contact = sip::parse_uri(b.contact); contact.ok()) {
        const auto address = transport::Endpoint::from_string(contact->host);
        if (address && address->same_address(*remote)) {
          remote->port = contact->has_port ? contact->port : 5060;
        }
      }
    }
    Flow f;
    f.protocol = *protocol;
    f.remote = *remote;
    if (auto local = endpoint_of(b.local)) f.local = *local;
    f.connection = b.connection;
    f.listener = b.listener;
    f.worker = b.worker;
    return f;
  }

  // A UDP socket of this worker to reach `remote` from (same address family).
  std::optional<Flow> udp_flow_to(const transport::Endpoint& remote) const {
    for (const Listener& l : shared.listeners) {
      if (l.protocol != Protocol::kUdp || l.local.v6 != remote.v6) continue;
      Flow f;
      f.protocol = Protocol::kUdp;
      f.remote = remote;
      f.local = l.local;
      f.listener = l.id;
      f.worker = worker;
      return f;
    }
    return std::nullopt;
  }

  // ---- forwarding

  struct Target {
    std::string uri;  // the branch's Request-URI
    Flow flow;
    std::optional<std::size_t> trunk;
  };
  struct Edits {
    std::size_t our_routes = 0;     // Route entries naming us, removed
    std::string token;              // non-empty: Record-Route with it
    bool strip_identity = false;    // untrusted source: drop PAI / RPID / PPI
    std::string asserted;           // non-empty: P-Asserted-Identity to add
    bool remove_credentials = false;
    std::string authorization;      // a trunk digest answer: "Name: value"
    bool keep_max_forwards = false; // a retry of our own request: already decremented
  };

  // The request for one branch: Request-URI, Route, Max-Forwards, our Via, Record-Route,
  // identity headers (RFC 3261 §16.6).
  std::string build_branch(const sip::Message& request, const Target& target, const Edits& e,
                           const Flow& arrival, txn::Branch* branch_out) {
    sip::MessageEditor ed(request);
    if (!target.uri.empty()) ed.set_request_uri(target.uri);
    for (std::size_t i = 0; i < e.our_routes; ++i) ed.pop_route();
    if (!e.keep_max_forwards) {
      ed.set_header_value(sip::HeaderId::kMaxForwards,
                          std::to_string(request.max_forwards < 0 ? 70 : request.max_forwards - 1));
    }
    std::string& via = via_scratch;  // each Via is built here in turn: push_via() copies it
    if (!request.via.empty()) {
      // RFC 3261 §18.2.1, RFC 3581 §4: the sender's Via gets the address and port its request
      // came from, so the responses relayed back tell a phone behind NAT its mapping.
      const std::string address = arrival.remote.address_string();
      via.clear();
      sip::append_via_with_received(via, request.via.front(), {address, arrival.remote.port});
      ed.pop_via();
      ed.push_via(via);
    }
    const txn::Branch branch = txn.new_branch();
    via.clear();
    via.append("SIP/2.0/").append(via_transport(target.flow.protocol)).append(" ");
    append_sent_by(via, target.flow);
    via.append(";branch=").append(branch).append(";rport");
    ed.push_via(via);
    if (branch_out != nullptr) *branch_out = branch;
    if (!e.token.empty()) {
      // RFC 5658: two entries when the request changes transport or interface on its way
      // through; the top one faces the callee, the other the caller.
      const bool same = arrival.protocol == target.flow.protocol &&
                        arrival.listener == target.flow.listener;
      if (!same) ed.add_record_route(record_route(arrival, e.token));
      ed.add_record_route(record_route(target.flow, e.token));
    }
    if (e.strip_identity) {
      ed.remove_headers(sip::HeaderId::kPAssertedIdentity);
      ed.remove_headers(sip::HeaderId::kPPreferredIdentity);
      ed.remove_headers(sip::HeaderId::kRemotePartyId);
    }
    if (!e.asserted.empty()) ed.add_header("P-Asserted-Identity", e.asserted);
    if (e.remove_credentials) ed.remove_headers(sip::HeaderId::kProxyAuthorization);
    if (!e.authorization.empty()) {
      const auto colon = e.authorization.find(':');
      ed.add_header(std::string_view(e.authorization).substr(0, colon),
                    std::string_view(e.authorization).substr(colon + 2));
    }
    return ed.serialize();
  }

  // Builds branch `index` of `request` (build_branch()) and sends it as a client transaction;
  // false if the layer refused it. The layer is told the method and the branch made here: the
  // bytes are not parsed again.
  bool send_branch(Context& ctx, std::size_t index, const sip::Message& request,
                   const Target& target, const Edits& e, const Flow& arrival) {
    txn::Branch branch;
    std::string bytes = build_branch(request, target, e, arrival, &branch);
    Branch& b = ctx.branches[index];
    // The client transaction takes the bytes. A trunk's branch keeps a copy too, for the
    // trunk's challenge; a user's phone never challenges the proxy.
    std::string kept = b.trunk ? bytes : std::string();
    const txn::ClientTxnId id =
        txn.send_request(ctx.method, request.method_text, branch, std::move(bytes), b.flow);
    if (id == 0) return false;
    b.client = id;
    if (b.trunk) b.request = std::move(kept);
    by_client.insert(base::hash_id(id), ClientRef{id, &ctx, index});  // client ids are never reused
    return true;
  }

  Context* start(txn::ServerTxnId id, const sip::Message& request, const Flow& flow) {
    auto made = std::make_unique<Context>();
    Context& ctx = *made;
    contexts.insert(base::hash_id(id), std::move(made));  // server transaction ids are never reused
    ctx.server = id;
    ctx.request = std::string(request.raw);
    ctx.flow = flow;
    ctx.method = request.method;
    return &ctx;
  }

  // Forwards `request` to every target (parallel forking, RFC 3261 §16.6).
  void fork(txn::ServerTxnId id, const sip::Message& request, const Flow& flow,
            const std::vector<Target>& targets, Edits edits, Context* ctx) {
    const RouteToken base{flow, {}, tag_hash(request.from.params.find("tag").value_or(""))};
    for (const Target& t : targets) {
      Edits e = edits;
      if (creates_dialog(request.method) && shared.signer != nullptr) {
        RouteToken token = base;
        token.callee = t.flow;
        e.token = shared.signer->encode(token);
      }
      Branch b;
      b.flow = t.flow;
      b.trunk = t.trunk;
      ctx->branches.push_back(b);
      const std::size_t index = ctx->branches.size() - 1;
      if (!send_branch(*ctx, index, request, t, e, flow)) {
        ctx->branches[index].final_code = 500;
      }
    }
    if (request.method == sip::Method::kInvite && shared.ring_timeout.count() > 0) {
      ctx->ring_timer = timers.start(shared.ring_timeout, [this, id] { ring_expired(id); });
    }
    maybe_finish(*ctx);
  }

  void ring_expired(txn::ServerTxnId id) {
    Context* found = find_context(id);
    if (found == nullptr) return;
    Context& ctx = *found;
    ctx.ring_timer = 0;
    if (ctx.final_sent) return;
    ctx.ring_expired = true;
    cancel_pending(ctx);
  }

  void cancel_pending(Context& ctx) {
    for (Branch& b : ctx.branches) {
      if (b.final_code == 0 && b.client != 0) txn.cancel(b.client);
    }
  }

  // A final answer the proxy makes itself for the context's request.
  void answer_locally(Context& ctx, int code, std::string_view reason = {}) {
    sip::Message copy;
    if (!sip::parse(ctx.request, copy, shared.parse).ok()) return;
    sip::ResponseSpec spec;
    spec.code = code;
    spec.reason = reason;
    host.answer(ctx.server, copy, ctx.flow, spec);
  }

  // Once every branch has its final answer: the best goes upstream (unless a 2xx or 6xx went
  // already), and the context ends.
  void maybe_finish(Context& ctx) {
    for (const Branch& b : ctx.branches) {
      if (b.final_code == 0) return;
    }
    if (!ctx.final_sent) {
      std::vector<std::pair<int, const std::string*>> finals;
      for (const Branch& b : ctx.branches) {
        if (!b.final_response.empty()) finals.emplace_back(b.final_code, &b.final_response);
      }
      int code = 0;
      const std::string* best = best_of(finals, &code);
      // A caller that sent CANCEL gets 487 (§9.2), whenever the ring timeout passed. A
      // provider's challenge left unanswered because of either is not the caller's business.
      const bool challenge = code == 401 || code == 407;
      if (ctx.ring_expired && !ctx.cancelled && (best == nullptr || code == 487 || challenge)) {
        answer_locally(ctx, 480, "Temporarily Unavailable (no answer)");
        code = 480;
      } else if (ctx.cancelled && challenge) {
        answer_locally(ctx, 487);
        code = 487;
      } else if (best == nullptr && ctx.trunk_refused && !ctx.cancelled) {
        answer_locally(ctx, 500, "Server Internal Error (the provider refused the trunk)");
        code = 500;
      } else if (best == nullptr) {
        code = ctx.cancelled ? 487 : 408;
        answer_locally(ctx, code);
      } else if (code == 503) {
        // §16.7 step 6: a 503 downstream must not make the caller think this server is down.
        answer_locally(ctx, 500, "Server Internal Error (downstream unavailable)");
        code = 500;
      } else {
        txn.respond(ctx.server, code, *best);
      }
      ctx.final_sent = true;
      if (ctx.tracks_dialog) shared.dialogs->failed(ctx.call_id, ctx.caller_tag, code, now_s());
    }
    finish(ctx);
  }

  void finish(Context& ctx) {
    if (ctx.ring_timer != 0) timers.cancel(ctx.ring_timer);
    for (const Branch& b : ctx.branches) {
      if (b.client != 0) forget_client(b.client);
    }
    forget_context(ctx.server);  // ctx is gone after this
  }

  void remember_accepted(txn::ClientTxnId client, txn::ServerTxnId server) {
    const auto now = base::steady_now();
    while (!accepted_order.empty() && accepted_order.front().until <= now) {
      if (auto* e = accepted_entry(accepted_order.front().client)) accepted.erase(e);
      accepted_order.pop_front();
    }
    if (accepted_entry(client) != nullptr) return;  // a retransmission of the 2xx
    accepted.insert(base::hash_id(client), AcceptedRef{client, server});
    accepted_order.push_back({client, now + std::chrono::seconds(32)});
  }

  // ---- the request paths

  void out_of_dialog(txn::ServerTxnId id, const sip::Message& request, const Flow& flow,
                     std::size_t our_routes);
  void in_dialog(txn::ServerTxnId id, const sip::Message& request, const Flow& flow,
                 std::size_t our_routes);
  std::optional<RouteToken> token_of(const sip::Message& request, std::size_t our_routes) const {
    if (shared.signer == nullptr) return std::nullopt;
    for (std::size_t i = 0; i < our_routes; ++i) {
      if (auto sw = request.route[i].uri.param("sw")) {
        if (auto t = shared.signer->decode(*sw)) return t;
      }
    }
    return std::nullopt;
  }
  std::size_t count_our_routes(const sip::Message& request) const {
    std::size_t n = 0;
    while (n < request.route.size() && is_ours(request.route[n].uri)) ++n;
    return n;
  }
};

Proxy::Proxy(std::uint16_t worker, Shared& shared, Host& host, txn::TransactionLayer& txn,
             base::TimerService& timers)
    : state_(std::make_unique<State>(worker, shared, host, txn, timers)) {}

Proxy::~Proxy() = default;

std::size_t Proxy::pending() const { return state_->contexts.size(); }

void Proxy::on_request(txn::ServerTxnId id, const sip::Message& request, const Flow& flow) {
  State& s = *state_;
  // §16.3 step 4: a request that already went through this server (one of our Vias) loops;
  // nothing here ever sends a request back to itself.
  for (const sip::Via& v : request.via) {
    if (txn::TransactionLayer::worker_of_branch(v.branch) >= 0 && s.is_local_host(v.host)) {
      sip::ResponseSpec spec;
      spec.code = 482;
      return s.host.answer(id, request, flow, spec);
    }
  }
  const std::size_t ours = s.count_our_routes(request);
  if (request.to.params.has("tag")) return s.in_dialog(id, request, flow, ours);
  s.out_of_dialog(id, request, flow, ours);
}

void Proxy::State::in_dialog(txn::ServerTxnId id, const sip::Message& request, const Flow& flow,
                             std::size_t our_routes) {
  // Only along a route this server wrote and signed: anything else is not a dialog of ours.
  const auto token = token_of(request, our_routes);
  if (!token) {
    sip::ResponseSpec spec;
    spec.code = 481;
    return host.answer(id, request, flow, spec);
  }
  const std::string_view from_tag = request.from.params.find("tag").value_or("");
  const std::string_view to_tag = request.to.params.find("tag").value_or("");
  const Flow& destination = token->destination_for(from_tag);
  if (shared.dialogs != nullptr) {
    shared.dialogs->request_seen(request.call_id, from_tag, to_tag, request.cseq.number);
    if (request.method == sip::Method::kBye) {
      shared.dialogs->ended(request.call_id, from_tag, to_tag, now_s());
    }
  }
  Context* ctx = start(id, request, flow);
  Edits e;
  e.our_routes = our_routes;
  Target t;
  t.flow = destination;
  Branch b;
  b.flow = destination;
  ctx->branches.push_back(b);
  if (!send_branch(*ctx, 0, request, t, e, flow)) {
    ctx->branches[0].final_code = 500;
  }
  maybe_finish(*ctx);
}

void Proxy::on_ack(const sip::Message& ack, const Flow& flow) {
  State& s = *state_;
  const std::size_t ours = s.count_our_routes(ack);
  const auto token = s.token_of(ack, ours);
  if (!token) return;  // an ACK for nothing we routed
  const Flow& destination = token->destination_for(ack.from.params.find("tag").value_or(""));
  State::Target t;
  t.flow = destination;
  State::Edits e;
  e.our_routes = ours;
  s.host.send(destination, s.build_branch(ack, t, e, flow, nullptr));
}

void Proxy::State::out_of_dialog(txn::ServerTxnId id, const sip::Message& request,
                                 const Flow& flow, std::size_t our_routes) {
  // Pre-loaded routes past this server would make it a relay to anywhere.
  if (our_routes < request.route.size()) {
    return refuse(id, request, flow, 403, "Forbidden (routing through other proxies is refused)",
                  "", "");
  }
  const sip::Uri& ruri = request.request_uri;
  if (!is_local_host(ruri.host) || !ruri.has_user) {
    return refuse(id, request, flow, 403, "Forbidden (relaying denied)", "", "");
  }
  const std::string number = sip::unescape(ruri.user);
  const bool is_invite = request.method == sip::Method::kInvite;
  Edits edits;
  edits.our_routes = our_routes;
  std::string caller;       // who pays: the authenticated user (empty for a trunk's call)
  std::string caller_name;  // for the call record
  std::string callee = number;
  std::optional<std::size_t> from_trunk =
      shared.dial_plan != nullptr ? shared.dial_plan->trunk_of_source(flow.remote)
                                  : std::nullopt;
  std::vector<Target> targets;
  std::string local_user;  // the local user to ring, if any
  // The called number's subscriber entry, when a local caller's call looked it up (then
  // local_user is that number).
  std::shared_ptr<const registrar::SubscriberCache::Entry> callee_subscriber;

  if (from_trunk) {
    // A provider's call in: accepted by source address, and only to a mapped DID.
    const auto& trunk = shared.dial_plan->trunk(*from_trunk);
    caller_name = "trunk:" + trunk.config.name;
    edits.strip_identity = !trunk.config.trusted;
    auto did = shared.dial_plan->did_target(*from_trunk, number);
    if (!did) return refuse(id, request, flow, 404, "Not Found", "", "");
    local_user = *did;
  } else {
    edits.strip_identity = true;
    edits.remove_credentials = true;
    const std::string from_user = sip::unescape(request.from.uri.user);
    // A TLS-only user's credentials never cross plaintext: refused before any challenge.
    std::shared_ptr<const registrar::SubscriberCache::Entry> from_subscriber;  // off TLS only
    if (flow.protocol != Protocol::kTls && is_invite) {
      from_subscriber = shared.subscribers->find(from_user);
      if (const auto& sub = from_subscriber; sub && sub->require_tls) {
        if (shared.shield != nullptr) {
          shared.shield->auth_failed(flow, from_user,
                                     "INVITE over a plaintext transport for a TLS-only user",
                                     "refused");
        }
        return refuse(id, request, flow, 403, "Forbidden (TLS required)", "", "");
      }
    }
    const sip::AuthField* credentials = shared.verifier->pick(request.proxy_authorization);
    if (credentials == nullptr) return host.challenge(id, request, flow, /*proxy=*/true);
    const std::string name = sip::unescape(credentials->username);
    // Callers authenticate as their From user: that entry, when it was looked up, is this one.
    const auto subscriber = from_subscriber && name == from_user
                                ? std::move(from_subscriber)
                                : shared.subscribers->find(name);
    auth::Credentials user;
    if (subscriber) {
      user.known = true;
      user.ha1_md5 = subscriber->ha1_md5;
      user.ha1_sha256 = subscriber->ha1_sha256;
    }
    const auth::Verdict verdict =
        shared.verifier->verify(*credentials, request.method_text, user, shared.now());
    if (verdict != auth::Verdict::kOk) {
      if (verdict != auth::Verdict::kStale && shared.shield != nullptr) {
        shared.shield->auth_failed(flow, name,
                                   std::string("digest authentication failed (") +
                                       std::string(auth::to_string(verdict)) + ")");
      }
      return host.challenge(id, request, flow, /*proxy=*/true);
    }
    if (shared.shield != nullptr) shared.shield->auth_succeeded(flow, name);
    caller = name;
    caller_name = name;
    if (subscriber->require_tls && flow.protocol != Protocol::kTls) {
      return refuse(id, request, flow, 403, "Forbidden (TLS required)", name,
                    "request over a plaintext transport for a TLS-only user");
    }
    if (const auto n = shared.user_networks.find(name);
        n != shared.user_networks.end() && !n->second.contains(flow.remote)) {
      return refuse(id, request, flow, 403, "Forbidden (not from an allowed network)", name,
                    "request from outside the user's allowed networks");
    }
    // Caller ID: the From must be the user's own identity (or an alias) in our domain.
    bool own = from_user == name && is_local_host(request.from.uri.host);
    if (!own && is_local_host(request.from.uri.host)) {
      if (const auto u = shared.users.find(name); u != shared.users.end()) {
        own = std::find(u->second.aliases.begin(), u->second.aliases.end(), from_user) !=
              u->second.aliases.end();
      }
    }
    if (!own) {
      return refuse(id, request, flow, 403, "Forbidden (From is not your identity)", name,
                    "From does not match the authenticated user");
    }
    const config::CallPolicy& policy = shared.policy_of(name);
    callee_subscriber = shared.subscribers->find(number);
    const bool is_local_user = callee_subscriber != nullptr;
    if (!destination_allowed(policy, number, is_local_user)) {
      return refuse(id, request, flow, 403, "Forbidden (destination not allowed)", name,
                    "destination " + number + " not allowed");
    }
    if (is_local_user) {
      local_user = number;
    } else {
      const auto out =
          shared.dial_plan != nullptr ? shared.dial_plan->outbound_trunk(number) : std::nullopt;
      if (!out) return refuse(id, request, flow, 404, "Not Found", "", "");
      const auto& trunk = shared.dial_plan->trunk(*out);
      const auto trunk_flow = udp_flow_to(trunk.address);
      if (!trunk_flow) return refuse(id, request, flow, 503, "Service Unavailable", "", "");
      Target t;
      t.flow = *trunk_flow;
      t.trunk = out;
      t.uri = "sip:" + shared.dial_plan->outbound_number(*out, number) + "@" +
              host_for_uri(trunk.address) + ":" + std::to_string(trunk.address.port);
      targets.push_back(t);
      // The caller's identity is asserted toward trusted trunks only.
      if (trunk.config.trusted) edits.asserted = "<sip:" + name + "@" + shared.domain + ">";
    }
  }

  // SRTP: a call over TLS whose caller or callee requires it must offer only SRTP media.
  if (is_invite && flow.protocol == Protocol::kTls && sip::sdp_has_media(request.body)) {
    const bool required = (!caller.empty() && shared.policy_of(caller).require_srtp) ||
                          (!local_user.empty() && shared.policy_of(local_user).require_srtp);
    if (required && !sip::sdp_offers_only_srtp(request.body)) {
      return refuse(id, request, flow, 488, "Not Acceptable Here (SRTP required)", caller,
                    "offer without SRTP on a call that requires it");
    }
  }

  if (!local_user.empty()) {
    // Every contact of the user, over the flow it registered from. A TLS-only user, and a
    // sips: Request-URI, are only ever reached over TLS.
    const auto sub =
        callee_subscriber ? std::move(callee_subscriber) : shared.subscribers->find(local_user);
    const bool tls_only =
        (sub && sub->require_tls) || ruri.scheme == sip::Scheme::kSips;
    const std::string aor = local_user + "@" + sip::ascii_lower(shared.domain);
    for (const registrar::Location::Reach& b : shared.location->reach(aor, now_s())) {
      auto f = flow_of(b);
      if (!f || (tls_only && f->protocol != Protocol::kTls)) continue;
      Target t;
      t.uri = b.contact;
      t.flow = *f;
      targets.push_back(t);
    }
    if (targets.empty()) {
      return refuse(id, request, flow, 480, "Temporarily Unavailable", "", "");
    }
  }

  // Toll-fraud limits, last (a refused request above costs no attempt). A caller with neither
  // limit has nothing to count: policies do not change while the server runs, so no slot is
  // taken (a PBX or a trunk account can make thousands of calls a second).
  bool holds_slot = false;
  if (is_invite && !caller.empty() && shared.limits != nullptr) {
    const config::CallPolicy& policy = shared.policy_of(caller);
    if (policy.max_concurrent_calls != 0 || policy.max_calls_per_minute != 0) {
      const auto refusal = shared.limits->admit(caller, policy.max_concurrent_calls,
                                                policy.max_calls_per_minute);
      if (refusal != shield::CallLimits::Refusal::kNone) {
        const std::string why(shield::to_string(refusal));
        return refuse(id, request, flow, 403, "Forbidden (" + why + ")", caller, why);
      }
      holds_slot = true;
    }
  }

  Context* ctx = start(id, request, flow);
  if (is_invite && shared.dialogs != nullptr) {
    const std::string_view caller_tag = request.from.params.find("tag").value_or("");
    Dialog d;
    d.call_id = std::string(request.call_id);
    d.caller_tag = std::string(caller_tag);
    d.caller = caller_name;
    d.callee = callee;
    if (holds_slot) d.limits_user = caller;
    d.from_header = std::string(request.from.text);
    d.to_header = std::string(request.to.text);
    d.caller_flow = flow;
    if (!request.contact.empty()) d.caller_contact = std::string(request.contact.front().uri.text);
    d.caller_cseq = request.cseq.number;
    d.started_at = now_s();
    d.source = flow.remote.to_string();
    d.transport = sip::ascii_lower(transport::to_string(flow.protocol));
    d.worker = worker;
    if (shared.dialogs->begin(std::move(d))) {
      ctx->tracks_dialog = true;
      ctx->call_id = request.call_id;
      ctx->caller_tag = caller_tag;
    } else if (holds_slot) {
      shared.limits->release(caller);  // a second INVITE of a call already tracked
    }
    const std::string& payer = !caller.empty() ? caller : local_user;
    ctx->max_duration_s = shared.policy_of(payer).max_call_duration.count();
  }
  fork(id, request, flow, targets, edits, ctx);
}

void Proxy::on_cancel(txn::ServerTxnId invite) {
  State& s = *state_;
  State::Context* ctx = s.find_context(invite);
  if (ctx == nullptr || ctx->final_sent) return;
  ctx->cancelled = true;
  s.cancel_pending(*ctx);
}

void Proxy::on_response(txn::ClientTxnId id, const sip::Message& response, const Flow&) {
  State& s = *state_;
  const State::ClientRef found = s.find_client(id);
  if (!found) {
    // A retransmitted 2xx after the context ended: through the server transaction again.
    const auto* a = s.accepted_entry(id);
    if (a != nullptr && response.status_code / 100 == 2) {
      sip::MessageEditor ed(response);
      ed.pop_via();
      s.txn.respond(a->value.server, response.status_code, ed.serialize());
    }
    return;  // a BYE the server sent itself, or a late answer
  }
  State::Context& ctx = *found.ctx;
  const std::size_t index = found.branch;
  State::Branch& branch = ctx.branches[index];
  const int code = response.status_code;
  if (code == 100) return;  // hop by hop (§16.7 step 5)

  // A provider's challenge: answered once with the trunk's credentials, on a new branch —
  // unless the call was cancelled meanwhile (the new branch would ring with no one to cancel it).
  if ((code == 401 || code == 407) && branch.trunk && !branch.auth_retried && !ctx.final_sent &&
      !ctx.cancelled && !ctx.ring_expired) {
    const auto& trunk = s.shared.dial_plan->trunk(*branch.trunk).config;
    if (!trunk.username.empty()) {
      sip::Message sent;
      if (sip::parse(branch.request, sent, s.shared.parse).ok()) {
        const auto answer = auth::answer_challenge(
            code == 401 ? response.www_authenticate : response.proxy_authenticate,
            sent.method_text, sent.request_uri.text,
            auth::ClientCredentials{trunk.username, trunk.password, trunk.realm});
        if (answer) {
          State::Edits e;
          e.authorization =
              std::string(code == 401 ? "Authorization: " : "Proxy-Authorization: ") + *answer;
          // The same request (our Via replaced by a fresh branch), credentials added.
          sip::MessageEditor strip(sent);
          strip.pop_via();
          const std::string without_via = strip.serialize();
          sip::Message base;
          if (sip::parse(without_via, base, s.shared.parse).ok()) {
            State::Target t;
            t.flow = branch.flow;
            e.keep_max_forwards = true;
            s.forget_client(id);
            branch.auth_retried = true;
            if (s.send_branch(ctx, index, base, t, e, ctx.flow)) return;
          }
        }
      }
    }
  }

  sip::MessageEditor ed(response);
  ed.pop_via();
  std::string bytes = ed.serialize();
  if (code < 200) {
    if (!ctx.final_sent) s.txn.respond(ctx.server, code, std::move(bytes));
    return;
  }
  if (code < 300) {
    // Every 2xx goes upstream at once (§16.7 step 5); the other branches are cancelled.
    s.txn.respond(ctx.server, code, std::move(bytes));
    branch.final_code = code;
    if (ctx.method == sip::Method::kInvite) s.remember_accepted(id, ctx.server);
    if (!ctx.final_sent) {
      ctx.final_sent = true;
      s.cancel_pending(ctx);
      if (ctx.tracks_dialog) {
        const std::string_view to_tag = response.to.params.find("tag").value_or("");
        const std::string_view contact =
            response.contact.empty() ? std::string_view{} : response.contact.front().uri.text;
        s.shared.dialogs->answered(ctx.call_id, ctx.caller_tag, to_tag, branch.flow, contact,
                                   s.now_s(), ctx.max_duration_s);
      }
    }
    s.maybe_finish(ctx);
    return;
  }
  branch.final_code = code;
  if ((code == 401 || code == 407) && branch.trunk) {
    // The provider refused the trunk's credentials (or wants some the trunk has none of):
    // its challenge means nothing to the caller, who could only retry in a loop.
    ctx.trunk_refused = true;
    s.maybe_finish(ctx);
    return;
  }
  branch.final_response = std::move(bytes);
  if (code >= 600 && !ctx.final_sent) {
    // §16.7 step 5: a 6xx ends the search; the others are cancelled.
    s.cancel_pending(ctx);
  }
  s.maybe_finish(ctx);
}

void Proxy::on_client_timeout(txn::ClientTxnId id) {
  State& s = *state_;
  const State::ClientRef found = s.find_client(id);
  if (!found) return;
  State::Context& ctx = *found.ctx;
  ctx.branches[found.branch].final_code = 408;
  s.maybe_finish(ctx);
}

void Proxy::end_call(const Dialog& d) {
  State& s = *state_;
  // BYE to each party as if from the other (RFC 3261 §15.1.1), straight over its flow.
  const auto bye = [&](const Flow& to_flow, const std::string& target, const std::string& from,
                       const std::string& to, std::uint32_t cseq) {
    if (target.empty()) return;
    const txn::Branch branch = s.txn.new_branch();
    std::string m = "BYE " + target + " SIP/2.0\r\n";
    m += "Via: SIP/2.0/" + std::string(via_transport(to_flow.protocol)) + " " +
         s.sent_by(to_flow) + ";branch=" + std::string(branch.view()) + ";rport\r\n";
    m += "Max-Forwards: 70\r\n";
    m += "From: " + from + "\r\n";
    m += "To: " + to + "\r\n";
    m += "Call-ID: " + d.call_id + "\r\n";
    m += "CSeq: " + std::to_string(cseq) + " BYE\r\n";
    m += "Reason: SIP;cause=200;text=\"maximum call duration\"\r\n";
    m += "Content-Length: 0\r\n\r\n";
    sip::Message parsed;
    if (!sip::parse(m, parsed, s.shared.parse).ok()) return;
    s.txn.send_request(parsed, m, to_flow);
  };
  const std::string callee_side = d.to_header + ";tag=" + d.callee_tag;
  bye(d.callee_flow, d.callee_contact, d.from_header, callee_side, d.caller_cseq + 1);
  bye(d.caller_flow, d.caller_contact, callee_side, d.from_header,
      d.callee_cseq == 0 ? 1 : d.callee_cseq + 1);
  spdlog::info("event=call_ended reason=\"maximum call duration\" call_id=\"{}\" caller={} "
               "callee={}",
               d.call_id, d.caller, d.callee);
}

}  // namespace proxy
