#include "router/router.h"

#include <random>

#include "sip/response.h"
#include "spdlog/spdlog.h"

namespace router {
namespace {

// The methods a request may carry to or through this server.
constexpr std::string_view kAllow =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, PRACK, UPDATE, INFO, MESSAGE, REFER, "
    "SUBSCRIBE, NOTIFY";

std::uint64_t random_salt() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

bool is_sip(const sip::Uri& uri) {
  return uri.scheme == sip::Scheme::kSip || uri.scheme == sip::Scheme::kSips;
}

// The registrar's answer as a response spec (views into `a`).
sip::ResponseSpec spec_of(const registrar::Answer& a) {
  sip::ResponseSpec spec;
  spec.code = a.code;
  spec.reason = a.reason;
  for (const auto& [name, value] : a.headers) spec.headers.emplace_back(name, value);
  return spec;
}

}  // namespace

transport::Flow response_flow(const sip::Via& top, const transport::Flow& arrival) {
  transport::Flow out = arrival;
  if (!arrival.reliable() && !top.has_rport) out.remote.port = top.has_port ? top.port : 5060;
  return out;
}

Router::Router(std::uint16_t worker, Shared& shared, SendFn send, base::TimerService& timers)
    : worker_(worker),
      shared_(shared),
      send_(std::move(send)),
      txn_(worker, shared.timers, timers, *this, *this),
      tag_salt_(random_salt()) {
  if (shared.proxy != nullptr) {
    proxy_ = std::make_unique<proxy::Proxy>(worker, *shared.proxy, *this, txn_, timers);
  }
}

void Router::send(const transport::Flow& flow, std::string_view bytes) {
  // A source banned since its transaction began gets nothing more, not even the
  // retransmissions of its last answer (its ACK is dropped too, so they would run 64*T1).
  if (!answering_ && shared_.shield != nullptr && shared_.shield->is_banned(flow.remote)) return;
  send_(flow, bytes);
}

std::size_t Router::transactions() const {
  return txn_.server_transactions() + txn_.client_transactions();
}

void Router::on_foreign_response(const std::string& bytes, const transport::Flow& flow) {
  sip::ParseOptions options = shared_.parse;
  options.framing = flow.reliable() ? sip::Framing::kStream : sip::Framing::kDatagram;
  if (!sip::parse(bytes, message_, options).ok() || !message_.is_response()) return;
  txn_.receive_response(message_, flow);
}

void Router::end_call(const proxy::Dialog& dialog) {
  if (proxy_) proxy_->end_call(dialog);
}

void Router::on_message(std::string_view bytes, const transport::Flow& flow) {
  shield::Shield* const shield = shared_.shield;
  // The cheapest checks come first: a banned or flooding source costs a lookup, not a parse.
  if (shield != nullptr && shield->before_parse(flow) == shield::Verdict::kDrop) return;
  sip::ParseOptions options = shared_.parse;
  options.framing = flow.reliable() ? sip::Framing::kStream : sip::Framing::kDatagram;
  const auto parsed = sip::parse(bytes, message_, options);
  if (!parsed) {
    on_invalid(bytes, flow, parsed.error());
    return;
  }
  if (shield != nullptr && shield->after_parse(message_, flow) == shield::Verdict::kDrop) return;
  if (message_.is_response()) {
    // Our branches name the worker whose client transaction sent the request. The transport
    // steers UDP answers to that worker's socket; one that lands elsewhere all the same (the
    // branch too deep in the datagram for the steering program) is handed over.
    const int owner = txn::TransactionLayer::worker_of_branch(message_.via.front().branch);
    if (owner >= 0 && owner != worker_ && static_cast<std::size_t>(owner) < shared_.routers.size()) {
      Router* other = shared_.routers[static_cast<std::size_t>(owner)];
      shared_.post(static_cast<unsigned>(owner), [other, copy = std::string(message_.raw), flow] {
        other->on_foreign_response(copy, flow);
      });
      return;
    }
    // RFC 3261 §18.1.2: a response that matches no client transaction is dropped.
    txn_.receive_response(message_, flow);
    return;
  }
  // Answered statelessly (RFC 3261 §8.2.7), with no transaction kept for 64*T1 (at
  // monitoring, keep-alive and registration rates those would be most of the table); a
  // retransmission is simply answered again:
  // - an OPTIONS to the server itself;
  // - a REGISTER without credentials (as Kamailio's stock configuration answers it): it gets
  //   a challenge, or a refusal, and nothing else. Half of every registration is one.
  const bool stateless =
      (message_.method == sip::Method::kOptions && !message_.to.params.has("tag") &&
       targets_this_server(message_.request_uri)) ||
      (message_.method == sip::Method::kRegister && message_.authorization.empty());
  const transport::Flow reply_to = response_flow(message_.via.front(), flow);
  if (stateless) {
    on_request(kStateless, message_, reply_to, 0);
    return;
  }
  txn_.receive_request(message_, reply_to);
}

void Router::on_invalid(std::string_view bytes, const transport::Flow& flow,
                        const sip::Error& error) {
  const std::string reason = error.describe();
  spdlog::debug("event=invalid_message source={} transport={} reason=\"{}\"",
                flow.remote.to_string(), transport::to_string(flow.protocol), reason);
  // A malformed response is dropped; a request gets 400 (505 for another version) when it
  // carries enough to address an answer. A keep-alive or garbage gets nothing.
  if (bytes.size() >= 4 && sip::iequals(bytes.substr(0, 4), "SIP/")) return;
  const int code = error.code == sip::ErrorCode::kBadVersion ? 505 : 400;
  const std::string response =
      sip::build_response_to_unparsed(bytes, code, view(new_tag()), reason);
  if (!response.empty()) send_(flow, response);
}

void Router::on_connection_closed(const transport::Flow& flow) {
  txn_.connection_closed(flow.connection);
}

Router::Tag Router::new_tag() {
  // Unique per worker and unguessable across restarts: counter mixed with a random salt.
  std::uint64_t x = (++tag_counter_ + (static_cast<std::uint64_t>(worker_) << 56)) ^ tag_salt_;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  static constexpr char kHex[] = "0123456789abcdef";
  Tag tag;
  for (int i = 15; i >= 0; --i, x >>= 4) tag[static_cast<std::size_t>(i)] = kHex[x & 0xF];
  return tag;
}

bool Router::targets_this_server(const sip::Uri& uri) const {
  if (uri.has_user) return false;
  for (const std::string& h : shared_.local_hosts) {
    if (sip::iequals(h, uri.host)) return true;
  }
  return false;
}

void Router::answer(txn::ServerTxnId id, const sip::Message& request, const transport::Flow& flow,
                    sip::ResponseSpec spec) {
  Tag tag;
  if (spec.to_tag.empty()) {
    tag = new_tag();
    spec.to_tag = view(tag);
  }
  const std::string address = flow.remote.address_string();
  const sip::ReceivedFrom from{address, flow.remote.port};
  if (id == kStateless) {
    send_(flow, sip::build_response(request, spec, &from));
    return;
  }
  respond(id, spec.code, sip::build_response(request, spec, &from));
}

void Router::respond(txn::ServerTxnId id, int code, std::string bytes) {
  // The answer to the request that got its source banned still goes out (the ban is news to
  // the sender only from the next request on); its retransmissions do not.
  answering_ = true;
  txn_.respond(id, code, std::move(bytes));
  answering_ = false;
}

void Router::challenge(txn::ServerTxnId id, const sip::Message& request,
                       const transport::Flow& flow, bool proxy) {
  // RFC 7616 §3.3: one challenge per algorithm, in the configured order. Whether the user
  // exists plays no part here (anti-enumeration).
  bool stale = false;
  const auto& credentials = proxy ? request.proxy_authorization : request.authorization;
  for (const sip::AuthField& c : credentials) {
    if (c.is_digest() && c.realm == shared_.domain &&
        shared_.challenger->nonces().check(c.nonce, shared_.domain, shared_.now()) ==
            auth::NonceCheck::kStale) {
      stale = true;
    }
  }
  if (shared_.shield != nullptr && proxy) {
    // Who is being asked for: a source naming many targets without ever authenticating is
    // enumerating users (svwar -m INVITE).
    shared_.shield->user_challenged(flow, request.request_uri.user);
  }
  const auto values = shared_.challenger->challenges(shared_.domain, shared_.now(), stale);
  sip::ResponseSpec spec;
  spec.code = proxy ? 407 : 401;
  const std::string_view header = proxy ? "Proxy-Authenticate" : "WWW-Authenticate";
  for (const std::string& v : values) spec.headers.emplace_back(header, v);
  answer(id, request, flow, spec);
}

// RFC 3261 §8.2 (a UAS's checks) and §16.3 (a proxy's), in their order, then dispatch.
void Router::on_request(txn::ServerTxnId id, const sip::Message& request,
                        const transport::Flow& flow, txn::ServerTxnId cancelled) {
  ++processed_;
  sip::ResponseSpec spec;
  if (shared_.draining.load(std::memory_order_relaxed)) {
    spec.code = 503;
    spec.headers = {{"Retry-After", "5"}};
    return answer(id, request, flow, spec);
  }
  // §8.2.1: method inspection. Methods are case-sensitive; an unknown one is 501.
  if (request.method == sip::Method::kUnknown) {
    spec.code = 501;
    spec.headers = {{"Allow", kAllow}};
    return answer(id, request, flow, spec);
  }
  if (request.method == sip::Method::kPublish) {  // known, but no presence service here
    spec.code = 405;
    spec.headers = {{"Allow", kAllow}};
    return answer(id, request, flow, spec);
  }
  // §8.2.2.1 / §16.3 step 1: only SIP URIs are routed or served here.
  if (!is_sip(request.request_uri)) {
    spec.code = 416;
    return answer(id, request, flow, spec);
  }
  if (request.method == sip::Method::kCancel) {
    // §9.2 / §16.10: 200 when the CANCEL matches a transaction, 481 otherwise; the proxy then
    // cancels the INVITE's pending branches (their 487 goes upstream).
    spec.code = cancelled != 0 ? 200 : 481;
    answer(id, request, flow, spec);
    if (cancelled != 0 && proxy_) proxy_->on_cancel(cancelled);
    return;
  }
  const bool to_server = request.method == sip::Method::kRegister ||
                         (request.method == sip::Method::kOptions &&
                          targets_this_server(request.request_uri));
  // §16.3 step 3: a request that would have to be forwarded with Max-Forwards 0.
  if (!to_server && request.max_forwards == 0) {
    spec.code = 483;
    return answer(id, request, flow, spec);
  }
  // §16.3 step 5 / §8.2.2.3: no extension is supported, so any Proxy-Require (and Require on
  // what the server answers itself) is refused, listing the tags (RFC 4475 bext01).
  std::string unsupported;
  const auto add_tags = [&](const std::vector<std::string_view>& tags) {
    for (std::string_view t : tags) {
      if (!unsupported.empty()) unsupported += ", ";
      unsupported += t;
    }
  };
  add_tags(request.proxy_require);
  if (to_server) add_tags(request.require);
  if (!unsupported.empty()) {
    spec.code = 420;
    spec.headers = {{"Unsupported", unsupported}};
    return answer(id, request, flow, spec);
  }

  switch (request.method) {
    case sip::Method::kOptions:
      if (to_server) {
        spec.code = 200;
        spec.headers = {{"Allow", kAllow}, {"Accept", "application/sdp"}, {"Supported", ""}};
        return answer(id, request, flow, spec);
      }
      break;  // for a user: routed like any other request
    case sip::Method::kRegister:
      // RFC 3261 §10.3 step 1-2: the To of a REGISTER is the address-of-record and must be
      // a SIP URI (RFC 4475 unksm2).
      if (!is_sip(request.to.uri)) {
        spec.code = 400;
        spec.reason = "Bad Request (To must be a SIP URI)";
        return answer(id, request, flow, spec);
      }
      if (shared_.registrar != nullptr) return on_register(id, request, flow);
      return challenge(id, request, flow, /*proxy=*/false);
    default:
      break;
  }
  if (proxy_) return proxy_->on_request(id, request, flow);
  // Without a proxy (unit tests): no dialogs through this server.
  if (request.to.params.has("tag")) {
    spec.code = 481;
    return answer(id, request, flow, spec);
  }
  // Everything else starts something on someone's account: no guest requests (DESIGN.md).
  return challenge(id, request, flow, /*proxy=*/true);
}

void Router::answer(txn::ServerTxnId id, const sip::Message& request,
                    const transport::Flow& flow, const registrar::Answer& a) {
  answer(id, request, flow, spec_of(a));
}

void Router::on_register(txn::ServerTxnId id, const sip::Message& request,
                         const transport::Flow& flow) {
  // The 200 comes once the binding change is durable, on the store's writer thread; it is
  // sent from this worker (the transaction lives here). What it copies from the request is
  // taken now (the worker's Message is reused as soon as this returns), and only for a
  // REGISTER with credentials: one without is challenged at once and never waits.
  std::string head;
  if (!request.authorization.empty()) {
    const std::string address = flow.remote.address_string();
    const sip::ReceivedFrom from{address, flow.remote.port};
    head = sip::response_head(request, view(new_tag()), &from);
  }
  auto later = [this, id, head = std::move(head)](registrar::Registrar::Finish finish) mutable {
    bool first = false;
    {
      std::lock_guard lock(durable_mu_);
      first = durable_.empty();
      durable_.push_back({id, std::move(head), std::move(finish)});
    }
    if (first) shared_.post(worker_, [this] { answer_durable(); });
  };
  if (auto now = shared_.registrar->handle(request, flow, std::move(later))) {
    answer(id, request, flow, *now);
    if (now->stateless) txn_.forget(id);
  }
}

void Router::answer_durable() {
  {
    std::lock_guard lock(durable_mu_);
    durable_now_.swap(durable_);
  }
  for (const Durable& d : durable_now_) {
    if (d.head.empty()) continue;  // cannot happen: only a REGISTER with credentials waits
    const registrar::Answer a = d.finish();
    respond(d.id, a.code, sip::build_response_from_head(d.head, spec_of(a)));
  }
  durable_now_.clear();
}

void Router::on_stray_ack(const sip::Message& ack, const transport::Flow& flow) {
  // The ACK for a 2xx is a request of its own, routed along the dialog's route.
  if (proxy_) proxy_->on_ack(ack, flow);
}

void Router::on_response(txn::ClientTxnId id, const sip::Message& response,
                         const transport::Flow& flow) {
  if (proxy_) proxy_->on_response(id, response, flow);
}

void Router::on_client_timeout(txn::ClientTxnId id) {
  if (proxy_) proxy_->on_client_timeout(id);
}

}  // namespace router
