// The stateful proxy through a real Router: raw SIP in on a flow, what goes out on the wire
// recorded, time advanced by hand. Callers authenticate with digest answers computed here
// (auth::answer_challenge), callees are played by the test from the requests the proxy sends.
#include "proxy/proxy.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/client.h"
#include "router/router.h"
#include "sip/response.h"
#include "support/recording_store.h"

namespace proxy {
namespace {

using std::chrono::milliseconds;
using transport::Flow;
using transport::Protocol;

constexpr std::int64_t kNow = 1'800'000'000;  // unix seconds, the clock of every test
constexpr std::string_view kDomain = "example.com";

// Timers that fire only when the test advances the clock: in the order they are due (the
// clock stands at each one's time while it runs), ties in the order they were started.
class ManualTimers final : public base::TimerService {
 public:
  Id start(milliseconds after, std::function<void()> fire) override {
    timers_[++next_] = {now_ + after, std::move(fire)};
    return next_;
  }
  void cancel(Id id) override { timers_.erase(id); }
  void advance(milliseconds by) {
    const milliseconds until = now_ + by;
    for (;;) {
      auto next = timers_.end();
      for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (it->second.first <= until &&
            (next == timers_.end() || it->second.first < next->second.first)) {
          next = it;
        }
      }
      if (next == timers_.end()) break;
      now_ = next->second.first;
      auto fn = std::move(next->second.second);
      timers_.erase(next);
      fn();
    }
    now_ = until;
  }

 private:
  milliseconds now_{0};
  Id next_ = 0;
  std::map<Id, std::pair<milliseconds, std::function<void()>>> timers_;
};

using test_support::RecordingStore;

// One message on the wire, parsed; the text lives on the heap so the views survive moves.
class Msg {
 public:
  explicit Msg(std::string text) : text_(std::make_unique<std::string>(std::move(text))) {
    ok_ = sip::parse(*text_, m_).ok();
  }
  bool ok() const { return ok_; }
  const sip::Message& operator*() const { return m_; }
  const sip::Message* operator->() const { return &m_; }
  const std::string& text() const { return *text_; }

  // Every value of header `name` (compact forms and case ignored), in order.
  std::vector<std::string> values(std::string_view name) const {
    std::vector<std::string> out;
    const sip::HeaderId id = sip::header_id(name);
    for (const sip::HeaderField& h : m_.headers) {
      if (id != sip::HeaderId::kOther ? h.id == id : sip::iequals(h.name, name)) {
        out.emplace_back(h.value);
      }
    }
    return out;
  }
  std::string header(std::string_view name) const {
    const auto all = values(name);
    return all.empty() ? "<absent>" : all.front();
  }
  std::string tag(const sip::NameAddr& a) const {
    return std::string(a.params.find("tag").value_or(""));
  }

 private:
  std::unique_ptr<std::string> text_;
  sip::Message m_;
  bool ok_ = false;
};

struct Wire {
  Flow flow;
  std::string bytes;
  std::string start_line() const { return bytes.substr(0, bytes.find("\r\n")); }
  bool is_response() const { return bytes.rfind("SIP/2.0 ", 0) == 0; }
  int code() const { return is_response() ? std::stoi(bytes.substr(8, 3)) : 0; }
  std::string method() const { return is_response() ? "" : bytes.substr(0, bytes.find(' ')); }
  bool to(std::string_view address, std::uint16_t port) const {
    return flow.remote.address_string() == address && flow.remote.port == port;
  }
};

Flow udp(const char* address, std::uint16_t port) {
  Flow f;
  f.protocol = Protocol::kUdp;
  f.remote = *transport::Endpoint::from_string(address, port);
  f.local = *transport::Endpoint::from_string("127.0.0.1", 5060);
  f.listener = 0;
  return f;
}

store::Binding binding(const std::string& user, const std::string& address, std::uint16_t port) {
  store::Binding b;
  b.aor = user + "@" + std::string(kDomain);
  b.contact = "sip:" + user + "@" + address + ":" + std::to_string(port);
  b.expires_at = kNow + 3600;
  b.call_id = "reg-" + user + "-" + address;
  b.cseq = 1;
  b.transport = "udp";
  b.source = address + ":" + std::to_string(port);
  b.local = "127.0.0.1:5060";
  b.listener = 0;
  return b;
}

// An out-of-dialog request from a phone.
struct Request {
  std::string method = "INVITE";
  std::string uri = "sip:1003@example.com";
  std::string from = "<sip:1000@example.com>;tag=caller-tag";
  std::string to = "<sip:1003@example.com>";
  std::string call_id = "call-1";
  std::uint32_t cseq = 1;
  std::string branch = "z9hG4bK-c1";
  std::string via = "SIP/2.0/UDP 192.0.2.10:5062;rport";
  std::string contact = "<sip:1000@192.0.2.10:5062>";
  std::string extra;  // more header lines, each ending in CRLF
  std::string body;
  std::string content_type = "application/sdp";

  std::string text() const {
    std::string t = method + " " + uri + " SIP/2.0\r\n";
    t += "Via: " + via + ";branch=" + branch + "\r\n";
    t += "Max-Forwards: 70\r\n";
    t += "From: " + from + "\r\n";
    t += "To: " + to + "\r\n";
    t += "Call-ID: " + call_id + "\r\n";
    t += "CSeq: " + std::to_string(cseq) + " " + method + "\r\n";
    if (!contact.empty()) t += "Contact: " + contact + "\r\n";
    t += extra;
    if (!body.empty()) t += "Content-Type: " + content_type + "\r\n";
    t += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return t;
  }
};

// What a UAS answers to `request` (RFC 3261 §8.2.6, §12.1.1): every Via, the Record-Route
// of a dialog-creating response, From, To with the callee's tag, Call-ID, CSeq, Contact.
std::string answer(const Msg& request, int code, const std::string& to_tag = "callee-tag",
                   const std::string& contact = "", const std::string& extra = "") {
  std::string t =
      "SIP/2.0 " + std::to_string(code) + " " + std::string(sip::reason_phrase(code)) + "\r\n";
  for (const sip::HeaderField& h : request->headers) {
    if (h.id == sip::HeaderId::kVia) t += h.line;
  }
  if (code > 100 && code < 300) {
    for (const sip::HeaderField& h : request->headers) {
      if (h.id == sip::HeaderId::kRecordRoute) t += h.line;
    }
  }
  t += "From: " + std::string(request->from.text) + "\r\n";
  t += "To: " + std::string(request->to.text);
  if (!request->to.params.has("tag") && code > 100) t += ";tag=" + to_tag;
  t += "\r\n";
  t += "Call-ID: " + std::string(request->call_id) + "\r\n";
  t += "CSeq: " + std::to_string(request->cseq.number) + " " +
       std::string(request->cseq.method_text) + "\r\n";
  if (!contact.empty()) t += "Contact: <" + contact + ">\r\n";
  t += extra;
  t += "Content-Length: 0\r\n\r\n";
  return t;
}

// An in-dialog request (RFC 3261 §12.2.1.1) from one of the parties.
struct InDialog {
  std::string method = "BYE";
  std::string uri;
  std::vector<std::string> routes;  // Route values, in order
  std::string from, to, call_id;
  std::uint32_t cseq = 2;
  std::string method_in_cseq;  // empty: method
  std::string branch = "z9hG4bK-d1";
  std::string via = "SIP/2.0/UDP 192.0.2.10:5062;rport";

  std::string text() const {
    std::string t = method + " " + uri + " SIP/2.0\r\n";
    t += "Via: " + via + ";branch=" + branch + "\r\n";
    t += "Max-Forwards: 70\r\n";
    for (const std::string& r : routes) t += "Route: " + r + "\r\n";
    t += "From: " + from + "\r\n";
    t += "To: " + to + "\r\n";
    t += "Call-ID: " + call_id + "\r\n";
    t += "CSeq: " + std::to_string(cseq) + " " +
         (method_in_cseq.empty() ? method : method_in_cseq) + "\r\n";
    t += "Content-Length: 0\r\n\r\n";
    return t;
  }
};

const auth::Secret& secret() {
  static const auth::Secret s = [] {
    auth::Secret x;
    x.fill(7);
    return x;
  }();
  return s;
}

config::Trunk carrier() {
  config::Trunk t;
  t.name = "carrier";
  t.host = "198.51.100.1";
  t.port = 5060;
  t.username = "acct";
  t.password = "trunk-pw";
  t.outbound = {"NXXNXXXXXX"};
  t.prefix = "1";
  t.dids = {{"+15551230000", "1003"}};
  return t;
}

DialPlan built_plan() {
  auto plan = DialPlan::build({carrier()});
  EXPECT_TRUE(plan.ok()) << (plan.ok() ? "" : plan.error());
  return plan.ok() ? *plan : DialPlan{};
}

class ProxyTest : public ::testing::Test {
 protected:
  ProxyTest()
      : nonces_(secret(), std::chrono::seconds(300)),
        challenger_(nonces_, secret(), {auth::Algorithm::kSha256, auth::Algorithm::kMd5}),
        verifier_(nonces_, std::string(kDomain)),
        plan_(built_plan()),
        dialogs_(&store_, &limits_),
        signer_(secret()) {
    std::vector<store::Subscriber> subs;
    for (const char* name : {"1000", "1001", "1002", "1003"}) {
      store::Subscriber s;
      s.name = name;
      s.realm = kDomain;
      s.ha1_md5 = auth::ha1(auth::Algorithm::kMd5, name, kDomain, password(name));
      s.ha1_sha256 = auth::ha1(auth::Algorithm::kSha256, name, kDomain, password(name));
      subs.push_back(s);
    }
    subscribers_.replace(subs);
    // 1001 has two phones (forking), 1003 one, 1002 none.
    location_.load({binding("1001", "192.0.2.20", 5070), binding("1001", "192.0.2.21", 5080),
                    binding("1003", "192.0.2.30", 5090)});

    pshared_.domain = kDomain;
    pshared_.local_hosts = {std::string(kDomain), "127.0.0.1"};
    pshared_.ring_timeout = std::chrono::seconds(30);
    pshared_.listeners = {
        Listener{0, Protocol::kUdp, *transport::Endpoint::from_string("127.0.0.1", 5060)}};
    pshared_.dial_plan = &plan_;
    pshared_.location = &location_;
    pshared_.subscribers = &subscribers_;
    pshared_.verifier = &verifier_;
    pshared_.limits = &limits_;
    pshared_.dialogs = &dialogs_;
    pshared_.signer = &signer_;
    pshared_.now = [this] { return clock_; };

    shared_.domain = kDomain;
    shared_.local_hosts = pshared_.local_hosts;
    shared_.challenger = &challenger_;
    shared_.now = [this] { return clock_; };
    shared_.proxy = &pshared_;
    router_ = std::make_unique<router::Router>(
        0, shared_,
        [this](const Flow& f, std::string_view b) {
          sent_.push_back({f, std::string(b)});
        },
        timers_);
  }

  static std::string password(std::string_view user) { return "pw-" + std::string(user); }

  // Delivers `text` and returns what was sent since.
  std::vector<Wire> deliver(const std::string& text, const Flow& flow = caller_flow()) {
    const std::size_t before = sent_.size();
    router_->on_message(text, flow);
    return since(before);
  }
  std::vector<Wire> since(std::size_t before) const {
    return {sent_.begin() + static_cast<std::ptrdiff_t>(before), sent_.end()};
  }
  std::vector<Wire> advance(milliseconds by) {
    const std::size_t before = sent_.size();
    timers_.advance(by);
    return since(before);
  }

  static Flow caller_flow() { return udp("192.0.2.10", 5062); }

  // The messages among `out` sent to address:port.
  static std::vector<Wire> to(const std::vector<Wire>& out, std::string_view address,
                              std::uint16_t port) {
    std::vector<Wire> picked;
    for (const Wire& w : out) {
      if (w.to(address, port)) picked.push_back(w);
    }
    return picked;
  }
  // The final responses (>= 200) among `out` sent to the caller.
  static std::vector<Wire> finals_to_caller(const std::vector<Wire>& out) {
    std::vector<Wire> picked;
    for (const Wire& w : to(out, "192.0.2.10", 5062)) {
      if (w.code() >= 200) picked.push_back(w);
    }
    return picked;
  }
  // The code of the final response the caller got in `out` (retransmissions of it allowed),
  // 0 if none, -1 if it got two different ones.
  static int final_code(const std::vector<Wire>& out) {
    const auto finals = finals_to_caller(out);
    for (const Wire& w : finals) {
      if (w.bytes != finals.front().bytes) return -1;
    }
    return finals.empty() ? 0 : finals.front().code();
  }
  static std::vector<Wire> requests(const std::vector<Wire>& out, std::string_view method) {
    std::vector<Wire> picked;
    for (const Wire& w : out) {
      if (w.method() == method) picked.push_back(w);
    }
    return picked;
  }

  // Sends `r` without credentials, ACKs the 407, then sends it again (next CSeq, new
  // branch) with the answer to the challenge for `user`. Returns what the second one caused.
  std::vector<Wire> authenticated(Request r, const std::string& user = "1000",
                                  const Flow& flow = caller_flow()) {
    const std::string first = r.text();
    const auto out = deliver(first, flow);
    EXPECT_EQ(out.size(), 1u);
    if (out.empty()) return {};
    EXPECT_EQ(out[0].code(), 407) << out[0].bytes;
    const Msg challenge(out[0].bytes);
    const Msg invite(first);
    if (r.method == "INVITE") {
      EXPECT_TRUE(deliver(sip::build_ack(*invite, *challenge), flow).empty());
    }
    const auto value = auth::answer_challenge(challenge->proxy_authenticate, r.method, r.uri,
                                              auth::ClientCredentials{user, password(user), ""});
    EXPECT_TRUE(value.has_value());
    r.cseq += 1;
    r.branch += "-auth";
    r.extra += "Proxy-Authorization: " + value.value_or("") + "\r\n";
    return deliver(r.text(), flow);
  }

  // The single request with `method` sent to address:port in `out`.
  static Msg sent_to(const std::vector<Wire>& out, std::string_view method,
                     std::string_view address, std::uint16_t port) {
    const auto picked = requests(to(out, address, port), method);
    EXPECT_EQ(picked.size(), 1u) << method << " to " << address << ":" << port;
    return Msg(picked.empty() ? std::string() : picked.front().bytes);
  }

  // A call from 1000 to 1003 answered: returns the INVITE as the callee got it and the 200
  // as the caller got it.
  std::pair<Msg, Msg> answered_call() {
    Request r;
    const auto out = authenticated(r);
    Msg invite = sent_to(out, "INVITE", "192.0.2.30", 5090);
    deliver(answer(invite, 180), callee_flow());
    const auto ok =
        deliver(answer(invite, 200, "callee-tag", "sip:1003@192.0.2.30:5090"), callee_flow());
    const auto finals = finals_to_caller(ok);
    EXPECT_EQ(finals.size(), 1u);
    return {std::move(invite), Msg(finals.empty() ? std::string() : finals[0].bytes)};
  }
  static Flow callee_flow() { return udp("192.0.2.30", 5090); }

  std::chrono::system_clock::time_point clock_{std::chrono::seconds(kNow)};
  auth::NonceFactory nonces_;
  auth::Challenger challenger_;
  auth::DigestVerifier verifier_;
  registrar::SubscriberCache subscribers_;
  registrar::Location location_;
  DialPlan plan_;
  shield::CallLimits limits_;
  RecordingStore store_;
  DialogTable dialogs_;
  RouteSigner signer_;
  Shared pshared_;
  router::Shared shared_;
  ManualTimers timers_;
  std::vector<Wire> sent_;
  std::unique_ptr<router::Router> router_;
};

TEST_F(ProxyTest, InviteWithoutCredentialsIsChallenged) {
  Request r;
  const auto out = deliver(r.text());
  ASSERT_EQ(out.size(), 1u);  // the 407 only: nothing forwarded
  EXPECT_EQ(out[0].code(), 407);
  const Msg m(out[0].bytes);
  ASSERT_TRUE(m.ok());
  ASSERT_FALSE(m->proxy_authenticate.empty());
  EXPECT_EQ(m->proxy_authenticate[0].realm, "example.com");
  EXPECT_TRUE(out[0].to("192.0.2.10", 5062));
}

TEST_F(ProxyTest, AuthenticatedInviteIsForwardedToTheContact) {
  Request r;
  r.extra = "P-Asserted-Identity: <sip:9999@example.com>\r\n";
  const auto out = authenticated(r);
  const Msg fwd = sent_to(out, "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(fwd.ok()) << fwd.text();
  EXPECT_EQ(fwd->request_uri.text, "sip:1003@192.0.2.30:5090");
  EXPECT_EQ(fwd->max_forwards, 69);
  ASSERT_EQ(fwd->via.size(), 2u);
  EXPECT_EQ(fwd->via[0].host, "127.0.0.1");
  EXPECT_EQ(fwd->via[0].port, 5060);
  EXPECT_EQ(fwd->via[0].transport, "UDP");
  EXPECT_EQ(fwd->via[0].branch.substr(0, 9), "z9hG4bKsw");
  EXPECT_EQ(fwd->via[1].branch, "z9hG4bK-c1-auth");
  ASSERT_EQ(fwd->record_route.size(), 1u);
  const std::string rr(fwd->record_route[0].text);
  EXPECT_EQ(rr.rfind("<sip:127.0.0.1:5060;lr;sw=", 0), 0u) << rr;
  EXPECT_TRUE(fwd.values("Proxy-Authorization").empty());
  EXPECT_TRUE(fwd.values("P-Asserted-Identity").empty());
  EXPECT_EQ(fwd->cseq.number, 2u);
  EXPECT_EQ(fwd->call_id, "call-1");
  // The caller hears 100 Trying, nothing else yet.
  const auto to_caller = to(out, "192.0.2.10", 5062);
  ASSERT_EQ(to_caller.size(), 1u);
  EXPECT_EQ(to_caller[0].code(), 100);
}

TEST_F(ProxyTest, ForksToEveryBindingAndCancelsTheOthersOn200) {
  Request r;
  r.uri = "sip:1001@example.com";
  r.to = "<sip:1001@example.com>";
  const auto out = authenticated(r);
  const Msg a = sent_to(out, "INVITE", "192.0.2.20", 5070);
  const Msg b = sent_to(out, "INVITE", "192.0.2.21", 5080);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->request_uri.text, "sip:1001@192.0.2.20:5070");
  EXPECT_EQ(b->request_uri.text, "sip:1001@192.0.2.21:5080");
  EXPECT_NE(a->via[0].branch, b->via[0].branch);

  // Each 180 goes upstream, our Via removed.
  for (const Msg* branch : {&a, &b}) {
    const Flow from = branch == &a ? udp("192.0.2.20", 5070) : udp("192.0.2.21", 5080);
    const auto ringing = deliver(answer(*branch, 180, branch == &a ? "tag-a" : "tag-b"), from);
    ASSERT_EQ(ringing.size(), 1u);
    EXPECT_EQ(ringing[0].code(), 180);
    EXPECT_TRUE(ringing[0].to("192.0.2.10", 5062));
    const Msg m(ringing[0].bytes);
    ASSERT_EQ(m->via.size(), 1u);
    EXPECT_EQ(m->via[0].branch, "z9hG4bK-c1-auth");
  }

  // A answers: the 200 goes upstream and B (which rang) is cancelled.
  const auto ok =
      deliver(answer(a, 200, "tag-a", "sip:1001@192.0.2.20:5070"), udp("192.0.2.20", 5070));
  const auto finals = finals_to_caller(ok);
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].code(), 200);
  const Msg cancel = sent_to(ok, "CANCEL", "192.0.2.21", 5080);
  ASSERT_TRUE(cancel.ok());
  EXPECT_EQ(cancel->via[0].branch, b->via[0].branch);
  EXPECT_TRUE(requests(to(ok, "192.0.2.20", 5070), "CANCEL").empty());

  // B's 487 is ACKed and goes no further.
  deliver(answer(cancel, 200, "tag-b"), udp("192.0.2.21", 5080));
  const auto terminated = deliver(answer(b, 487, "tag-b"), udp("192.0.2.21", 5080));
  EXPECT_TRUE(to(terminated, "192.0.2.10", 5062).empty());
  EXPECT_EQ(requests(to(terminated, "192.0.2.21", 5080), "ACK").size(), 1u);
}

// RFC 3261 §16.7 step 6: the best of the final answers when no branch succeeds.
class ProxyBestResponseTest : public ProxyTest {
 protected:
  // A call to 1001 whose two phones answer `code_a` and `code_b`; the code the caller gets.
  int both_fail(int code_a, int code_b) {
    Request r;
    r.uri = "sip:1001@example.com";
    r.to = "<sip:1001@example.com>";
    const auto out = authenticated(r);
    const Msg a = sent_to(out, "INVITE", "192.0.2.20", 5070);
    const Msg b = sent_to(out, "INVITE", "192.0.2.21", 5080);
    const auto first = deliver(answer(a, code_a, "tag-a"), udp("192.0.2.20", 5070));
    EXPECT_TRUE(finals_to_caller(first).empty()) << "answered before every branch ended";
    const auto second = deliver(answer(b, code_b, "tag-b"), udp("192.0.2.21", 5080));
    const auto finals = finals_to_caller(second);
    EXPECT_EQ(finals.size(), 1u);
    return finals.empty() ? 0 : finals[0].code();
  }
};

TEST_F(ProxyBestResponseTest, LowestClassWins) {
  const int code = both_fail(486, 404);
  EXPECT_TRUE(code == 486 || code == 404) << code;
}

TEST_F(ProxyBestResponseTest, ClientErrorBeatsServerError) {
  EXPECT_EQ(both_fail(503, 486), 486);
}

TEST_F(ProxyBestResponseTest, DownstreamUnavailableBecomes500) {
  EXPECT_EQ(both_fail(503, 503), 500);
}

TEST_F(ProxyBestResponseTest, GlobalFailureWinsAndCancelsTheOthers) {
  Request r;
  r.uri = "sip:1001@example.com";
  r.to = "<sip:1001@example.com>";
  const auto out = authenticated(r);
  const Msg a = sent_to(out, "INVITE", "192.0.2.20", 5070);
  const Msg b = sent_to(out, "INVITE", "192.0.2.21", 5080);
  deliver(answer(a, 180, "tag-a"), udp("192.0.2.20", 5070));
  const auto declined = deliver(answer(b, 603, "tag-b"), udp("192.0.2.21", 5080));
  EXPECT_TRUE(finals_to_caller(declined).empty());
  const Msg cancel = sent_to(declined, "CANCEL", "192.0.2.20", 5070);
  ASSERT_TRUE(cancel.ok());
  deliver(answer(cancel, 200, "tag-a"), udp("192.0.2.20", 5070));
  const auto finals = finals_to_caller(deliver(answer(a, 487, "tag-a"), udp("192.0.2.20", 5070)));
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].code(), 603);
}

TEST_F(ProxyTest, UserWithoutBindingsGets480) {
  Request r;
  r.uri = "sip:1002@example.com";
  r.to = "<sip:1002@example.com>";
  const auto out = authenticated(r);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code(), 480);
}

TEST_F(ProxyTest, NumberNoOneServesGets404) {
  Request r;
  r.uri = "sip:5550@example.com";
  r.to = "<sip:5550@example.com>";
  const auto out = authenticated(r);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code(), 404);
}

TEST_F(ProxyTest, FromSomeoneElseIsRefused) {
  Request r;
  r.from = "<sip:1002@example.com>;tag=caller-tag";
  const auto out = authenticated(r, "1000");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code(), 403);
  EXPECT_NE(out[0].start_line().find("identity"), std::string::npos) << out[0].start_line();
}

TEST_F(ProxyTest, InternationalNumbersAreClosedByDefault) {
  for (const char* number : {"+442071234567", "011442071234567"}) {
    Request r;
    r.uri = std::string("sip:") + number + "@example.com";
    r.to = "<" + r.uri + ">";
    r.call_id = std::string("call-") + number;
    r.branch = std::string("z9hG4bK-") + number;
    const auto out = authenticated(r);
    ASSERT_EQ(out.size(), 1u) << number;
    EXPECT_EQ(out[0].code(), 403) << number;
    EXPECT_TRUE(requests(out, "INVITE").empty());
  }
}

TEST_F(ProxyTest, ConcurrentCallLimitRefusesTheSecondCallUntilTheFirstEnds) {
  config::UserPolicy policy;
  policy.name = "1000";
  policy.calls.max_concurrent_calls = 1;
  pshared_.users["1000"] = policy;

  Request first;
  const Msg invite = sent_to(authenticated(first), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(invite.ok());

  Request second;
  second.call_id = "call-2";
  second.branch = "z9hG4bK-c2";
  const auto refused = authenticated(second);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].code(), 403);
  EXPECT_NE(refused[0].start_line().find("too many concurrent calls"), std::string::npos)
      << refused[0].start_line();

  // The first call is refused downstream: its slot is free again.
  const auto busy = finals_to_caller(deliver(answer(invite, 486), callee_flow()));
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(busy[0].code(), 486);
  EXPECT_EQ(limits_.active("1000"), 0u);

  Request third;
  third.call_id = "call-3";
  third.branch = "z9hG4bK-c3";
  EXPECT_TRUE(sent_to(authenticated(third), "INVITE", "192.0.2.30", 5090).ok());
}

// A caller with neither limit (a PBX or trunk account) takes no slot: calls go through
// without touching the shared limits, and are still tracked as dialogs.
TEST_F(ProxyTest, ACallerWithoutLimitsHoldsNoSlot) {
  config::UserPolicy policy;
  policy.name = "1000";
  policy.calls.max_concurrent_calls = 0;
  policy.calls.max_calls_per_minute = 0;
  pshared_.users["1000"] = policy;

  for (int i = 0; i < 30; ++i) {
    Request r;
    r.call_id = "call-" + std::to_string(i);
    r.branch = "z9hG4bK-u" + std::to_string(i);
    ASSERT_TRUE(sent_to(authenticated(r), "INVITE", "192.0.2.30", 5090).ok()) << i;
  }
  EXPECT_EQ(dialogs_.size(), 30u);
  EXPECT_EQ(limits_.active("1000"), 0u);

  // Back to the defaults: the next call counts again.
  pshared_.users.erase("1000");
  Request counted;
  counted.call_id = "call-counted";
  counted.branch = "z9hG4bK-counted";
  const Msg invite = sent_to(authenticated(counted), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(invite.ok());
  EXPECT_EQ(limits_.active("1000"), 1u);
  const auto busy = finals_to_caller(deliver(answer(invite, 486), callee_flow()));
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(limits_.active("1000"), 0u);
}

TEST_F(ProxyTest, RingTimeoutCancelsAndAnswers480) {
  Request r;
  const Msg invite = sent_to(authenticated(r), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(invite.ok());
  deliver(answer(invite, 180), callee_flow());
  EXPECT_TRUE(advance(milliseconds(29000)).empty());
  const auto expired = advance(milliseconds(1000));
  const Msg cancel = sent_to(expired, "CANCEL", "192.0.2.30", 5090);
  ASSERT_TRUE(cancel.ok());
  EXPECT_EQ(cancel->via[0].branch, invite->via[0].branch);
  EXPECT_TRUE(finals_to_caller(expired).empty());  // not before the branch has ended
  deliver(answer(cancel, 200), callee_flow());
  const auto finals = finals_to_caller(deliver(answer(invite, 487), callee_flow()));
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].code(), 480);
  EXPECT_EQ(dialogs_.size(), 0u);
  EXPECT_EQ(limits_.active("1000"), 0u);
}

TEST_F(ProxyTest, CallerCancelCancelsEveryBranchAnd487ReachesTheCaller) {
  Request r;
  r.uri = "sip:1001@example.com";
  r.to = "<sip:1001@example.com>";
  const auto out = authenticated(r);
  const Msg a = sent_to(out, "INVITE", "192.0.2.20", 5070);
  const Msg b = sent_to(out, "INVITE", "192.0.2.21", 5080);
  deliver(answer(a, 180, "tag-a"), udp("192.0.2.20", 5070));
  deliver(answer(b, 180, "tag-b"), udp("192.0.2.21", 5080));

  Request c = r;
  c.method = "CANCEL";
  c.cseq = 2;
  c.branch = "z9hG4bK-c1-auth";
  c.contact.clear();
  const auto cancelled = deliver(c.text());
  const auto to_caller = to(cancelled, "192.0.2.10", 5062);
  ASSERT_EQ(to_caller.size(), 1u);
  EXPECT_EQ(to_caller[0].code(), 200);
  EXPECT_NE(to_caller[0].bytes.find("CANCEL"), std::string::npos);
  const Msg cancel_a = sent_to(cancelled, "CANCEL", "192.0.2.20", 5070);
  const Msg cancel_b = sent_to(cancelled, "CANCEL", "192.0.2.21", 5080);
  ASSERT_TRUE(cancel_a.ok() && cancel_b.ok());

  deliver(answer(cancel_a, 200, "tag-a"), udp("192.0.2.20", 5070));
  deliver(answer(cancel_b, 200, "tag-b"), udp("192.0.2.21", 5080));
  EXPECT_TRUE(finals_to_caller(deliver(answer(a, 487, "tag-a"), udp("192.0.2.20", 5070))).empty());
  const auto finals = finals_to_caller(deliver(answer(b, 487, "tag-b"), udp("192.0.2.21", 5080)));
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].code(), 487);
  EXPECT_NE(finals[0].bytes.find("CSeq: 2 INVITE"), std::string::npos);
  EXPECT_EQ(dialogs_.size(), 0u);
}

TEST_F(ProxyTest, AckFor2xxAndByeFollowTheRecordRoute) {
  auto [invite, ok] = answered_call();
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->via.size(), 1u);
  ASSERT_EQ(ok->record_route.size(), 1u);
  const std::string route(ok->record_route[0].text);
  const std::string from(ok->from.text);
  const std::string to_value(ok->to.text);
  EXPECT_EQ(dialogs_.size(), 1u);
  EXPECT_EQ(limits_.active("1000"), 1u);

  // The ACK for the 2xx: forwarded once, statelessly, to the callee's contact.
  InDialog ack;
  ack.method = "ACK";
  ack.uri = "sip:1003@192.0.2.30:5090";
  ack.routes = {route};
  ack.from = from;
  ack.to = to_value;
  ack.call_id = "call-1";
  ack.cseq = 2;
  ack.branch = "z9hG4bK-ack1";
  const std::size_t transactions = router_->transactions();
  const auto acked = deliver(ack.text());
  ASSERT_EQ(acked.size(), 1u);
  const Msg fwd_ack(acked[0].bytes);
  EXPECT_TRUE(acked[0].to("192.0.2.30", 5090));
  EXPECT_EQ(fwd_ack->method, sip::Method::kAck);
  EXPECT_EQ(fwd_ack->request_uri.text, "sip:1003@192.0.2.30:5090");
  EXPECT_TRUE(fwd_ack->route.empty());
  EXPECT_EQ(fwd_ack->max_forwards, 69);
  ASSERT_EQ(fwd_ack->via.size(), 2u);
  EXPECT_EQ(fwd_ack->via[0].branch.substr(0, 9), "z9hG4bKsw");
  EXPECT_EQ(router_->transactions(), transactions);  // no client transaction for it

  // BYE from the caller: to the callee, our Route consumed.
  InDialog bye = ack;
  bye.method = "BYE";
  bye.cseq = 3;
  bye.branch = "z9hG4bK-bye1";
  const auto out = deliver(bye.text());
  const Msg fwd = sent_to(out, "BYE", "192.0.2.30", 5090);
  ASSERT_TRUE(fwd.ok());
  EXPECT_EQ(fwd->request_uri.text, "sip:1003@192.0.2.30:5090");
  EXPECT_TRUE(fwd->route.empty());
  EXPECT_TRUE(fwd->record_route.empty());
  const auto finals = finals_to_caller(deliver(answer(fwd, 200), callee_flow()));
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].code(), 200);
  EXPECT_NE(finals[0].bytes.find("CSeq: 3 BYE"), std::string::npos);

  // The call is over: its record written, its limit slot free.
  EXPECT_EQ(dialogs_.size(), 0u);
  EXPECT_EQ(limits_.active("1000"), 0u);
  const std::lock_guard lock(store_.mu);
  ASSERT_EQ(store_.records.size(), 1u);
  EXPECT_EQ(store_.records[0].call_id, "call-1");
  EXPECT_EQ(store_.records[0].caller, "1000");
  EXPECT_EQ(store_.records[0].callee, "1003");
  EXPECT_EQ(store_.records[0].final_code, 200);
  EXPECT_EQ(store_.records[0].answered_at, kNow);
}

TEST_F(ProxyTest, ByeFromTheCalleeGoesToTheCaller) {
  auto [invite, ok] = answered_call();
  ASSERT_TRUE(invite.ok());
  // The callee's route set is the Record-Route of the INVITE it got.
  ASSERT_EQ(invite->record_route.size(), 1u);
  InDialog bye;
  bye.uri = "sip:1000@192.0.2.10:5062";
  bye.routes = {std::string(invite->record_route[0].text)};
  bye.from = "<sip:1003@example.com>;tag=callee-tag";
  bye.to = std::string(invite->from.text);
  bye.call_id = "call-1";
  bye.cseq = 1;
  bye.via = "SIP/2.0/UDP 192.0.2.30:5090;rport";
  bye.branch = "z9hG4bK-callee-bye";
  const auto out = deliver(bye.text(), callee_flow());
  const Msg fwd = sent_to(out, "BYE", "192.0.2.10", 5062);
  ASSERT_TRUE(fwd.ok());
  EXPECT_EQ(fwd->request_uri.text, "sip:1000@192.0.2.10:5062");
  EXPECT_TRUE(fwd->route.empty());
  const auto back = deliver(answer(fwd, 200), caller_flow());
  const auto to_callee = to(back, "192.0.2.30", 5090);
  ASSERT_EQ(to_callee.size(), 1u);
  EXPECT_EQ(to_callee[0].code(), 200);
  EXPECT_EQ(dialogs_.size(), 0u);
  EXPECT_EQ(limits_.active("1000"), 0u);
}

TEST_F(ProxyTest, ByeWithATamperedOrForeignRouteGets481) {
  auto [invite, ok] = answered_call();
  ASSERT_EQ(ok->record_route.size(), 1u);
  std::string route(ok->record_route[0].text);
  // One digit of the MAC changed.
  const std::size_t mac = route.rfind('~') + 1;
  route[mac] = route[mac] == '0' ? '1' : '0';
  // And a token signed with another secret.
  auth::Secret other;
  other.fill(9);
  RouteToken token;
  token.caller = caller_flow();
  token.callee = udp("203.0.113.66", 5060);
  token.caller_tag_hash = tag_hash("caller-tag");
  const std::string foreign = "<sip:127.0.0.1:5060;lr;sw=" + RouteSigner(other).encode(token) + ">";

  std::uint32_t cseq = 3;
  for (const std::string& r : {route, foreign}) {
    InDialog bye;
    bye.uri = "sip:1003@192.0.2.30:5090";
    bye.routes = {r};
    bye.from = std::string(ok->from.text);
    bye.to = std::string(ok->to.text);
    bye.call_id = "call-1";
    bye.cseq = cseq;
    bye.branch = "z9hG4bK-forged" + std::to_string(cseq++);
    const auto out = deliver(bye.text());
    ASSERT_EQ(out.size(), 1u) << r;
    EXPECT_EQ(out[0].code(), 481) << r;
    EXPECT_TRUE(out[0].to("192.0.2.10", 5062));
  }
  EXPECT_EQ(dialogs_.size(), 1u);  // the real call goes on
}

TEST_F(ProxyTest, RequestThatWentThroughUsLoops482) {
  Request r;
  const Msg fwd = sent_to(authenticated(r), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(fwd.ok());
  // The forwarded INVITE comes back (a contact pointing at us): our Via is in it.
  std::string looped = fwd.text();
  looped.replace(0, looped.find(" SIP/2.0"), "INVITE sip:1003@example.com");
  const auto out = deliver(looped, udp("127.0.0.1", 5060));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code(), 482);
  EXPECT_TRUE(requests(out, "INVITE").empty());
}

TEST_F(ProxyTest, EndCallSendsByeBothWays) {
  auto [invite, ok] = answered_call();
  ASSERT_TRUE(ok.ok());
  clock_ += std::chrono::seconds(7200);
  auto due = dialogs_.take_due(kNow + 7200);
  ASSERT_EQ(due.size(), 1u);
  const std::size_t before = sent_.size();
  router_->end_call(due[0]);
  const auto out = since(before);
  const Msg to_callee = sent_to(out, "BYE", "192.0.2.30", 5090);
  const Msg to_caller = sent_to(out, "BYE", "192.0.2.10", 5062);
  ASSERT_TRUE(to_callee.ok() && to_caller.ok());
  EXPECT_EQ(to_callee->request_uri.text, "sip:1003@192.0.2.30:5090");
  EXPECT_EQ(to_callee.tag(to_callee->from), "caller-tag");
  EXPECT_EQ(to_callee.tag(to_callee->to), "callee-tag");
  EXPECT_EQ(to_callee->cseq.number, 3u);  // the INVITE's (2) + 1
  EXPECT_EQ(to_caller->request_uri.text, "sip:1000@192.0.2.10:5062");
  EXPECT_EQ(to_caller.tag(to_caller->from), "callee-tag");
  EXPECT_EQ(to_caller.tag(to_caller->to), "caller-tag");
  EXPECT_EQ(to_caller->call_id, "call-1");
  EXPECT_EQ(limits_.active("1000"), 0u);
  const std::lock_guard lock(store_.mu);
  ASSERT_EQ(store_.records.size(), 1u);
  EXPECT_EQ(store_.records[0].final_code, 200);
}

TEST_F(ProxyTest, TrunkChallengeIsAnsweredWithTheTrunkCredentials) {
  Request r;
  r.uri = "sip:2125551234@example.com";
  r.to = "<sip:2125551234@example.com>";
  const auto out = authenticated(r);
  const Msg first = sent_to(out, "INVITE", "198.51.100.1", 5060);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->request_uri.text, "sip:12125551234@198.51.100.1:5060");
  EXPECT_EQ(first.header("P-Asserted-Identity"), "<sip:1000@example.com>");  // trusted trunk
  EXPECT_TRUE(first.values("Proxy-Authorization").empty());

  // The provider challenges with its own realm.
  auth::Secret provider_secret;
  provider_secret.fill(3);
  const auth::NonceFactory provider_nonces(provider_secret, std::chrono::seconds(300));
  const auth::Challenger provider(provider_nonces, provider_secret, {auth::Algorithm::kMd5});
  std::string extra;
  for (const std::string& v : provider.challenges("carrier.example", clock_, false)) {
    extra += "Proxy-Authenticate: " + v + "\r\n";
  }
  const Flow trunk = udp("198.51.100.1", 5060);
  const auto challenged = deliver(answer(first, 407, "prov-tag", "", extra), trunk);
  EXPECT_TRUE(finals_to_caller(challenged).empty());  // the caller never sees it
  EXPECT_EQ(requests(to(challenged, "198.51.100.1", 5060), "ACK").size(), 1u);
  const Msg retry = sent_to(challenged, "INVITE", "198.51.100.1", 5060);
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->cseq.number, first->cseq.number);
  EXPECT_EQ(retry->call_id, first->call_id);
  EXPECT_NE(retry->via[0].branch, first->via[0].branch);
  EXPECT_EQ(retry->via[0].branch.substr(0, 9), "z9hG4bKsw");
  EXPECT_EQ(retry->via.size(), 2u);
  EXPECT_EQ(retry->max_forwards, 69);
  EXPECT_EQ(retry.values("P-Asserted-Identity").size(), 1u);
  EXPECT_EQ(retry->record_route.size(), 1u);
  EXPECT_EQ(retry->request_uri.text, first->request_uri.text);
  ASSERT_EQ(retry->proxy_authorization.size(), 1u);
  auth::DigestVerifier provider_verifier(provider_nonces, "carrier.example");
  const std::string acct_md5 =
      auth::ha1(auth::Algorithm::kMd5, "acct", "carrier.example", "trunk-pw");
  const std::string acct_sha256 =
      auth::ha1(auth::Algorithm::kSha256, "acct", "carrier.example", "trunk-pw");
  const auth::Credentials acct{true, acct_md5, acct_sha256};
  EXPECT_EQ(provider_verifier.verify(retry->proxy_authorization[0], "INVITE", acct, clock_),
            auth::Verdict::kOk);

  // The provider rings and answers: both reach the caller.
  deliver(answer(retry, 180, "prov-tag"), trunk);
  const auto finals = finals_to_caller(
      deliver(answer(retry, 200, "prov-tag", "sip:12125551234@198.51.100.1"), trunk));
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].code(), 200);
  EXPECT_EQ(dialogs_.size(), 1u);
}

TEST_F(ProxyTest, TrunkCallToADidRingsTheUserWithoutAuthentication) {
  Request r;
  r.uri = "sip:+15551230000@example.com";
  r.to = "<sip:+15551230000@example.com>";
  r.from = "<sip:+12125550000@198.51.100.1>;tag=prov-tag";
  r.via = "SIP/2.0/UDP 198.51.100.1:5060;rport";
  r.contact = "<sip:+12125550000@198.51.100.1:5060>";
  r.extra = "P-Asserted-Identity: <sip:+12125550000@198.51.100.1>\r\n";
  const auto out = deliver(r.text(), udp("198.51.100.1", 5060));
  const Msg fwd = sent_to(out, "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(fwd.ok());
  EXPECT_EQ(fwd->request_uri.text, "sip:1003@192.0.2.30:5090");
  // A trusted trunk's identity passes through.
  EXPECT_EQ(fwd.header("P-Asserted-Identity"), "<sip:+12125550000@198.51.100.1>");
  for (const Wire& w : to(out, "198.51.100.1", 5060)) EXPECT_EQ(w.code(), 100) << w.bytes;

  // A number the trunk has no DID for.
  Request other = r;
  other.uri = "sip:+15559999999@example.com";
  other.call_id = "call-other";
  other.branch = "z9hG4bK-other";
  const auto refused = deliver(other.text(), udp("198.51.100.1", 5060));
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].code(), 404);
}

TEST_F(ProxyTest, PlainRtpOverTlsIsRefusedWhenSrtpIsRequired) {
  pshared_.calls.require_srtp = true;
  Flow tls;
  tls.protocol = Protocol::kTls;
  tls.remote = *transport::Endpoint::from_string("192.0.2.10", 50000);
  tls.local = *transport::Endpoint::from_string("127.0.0.1", 5061);
  tls.listener = 1;
  tls.connection = 7;
  Request r;
  r.via = "SIP/2.0/TLS 192.0.2.10:50000;rport";
  r.contact = "<sip:1000@192.0.2.10:50000;transport=tls>";
  r.body =
      "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 0\r\n";
  const auto out = authenticated(r, "1000", tls);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code(), 488);
  EXPECT_EQ(out[0].flow.connection, 7u);
  EXPECT_TRUE(requests(out, "INVITE").empty());
  EXPECT_EQ(limits_.active("1000"), 0u);
}

TEST_F(ProxyTest, TryingIsHopByHopAndRetransmitted2xxStillReachTheCaller) {
  Request r;
  const Msg invite = sent_to(authenticated(r), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(invite.ok());
  EXPECT_TRUE(deliver(answer(invite, 100), callee_flow()).empty());  // §16.7 step 5
  const std::string ok = answer(invite, 200, "callee-tag", "sip:1003@192.0.2.30:5090");
  ASSERT_EQ(finals_to_caller(deliver(ok, callee_flow())).size(), 1u);
  // The callee did not get the ACK yet and sends its 200 again: it goes upstream again.
  const auto again = finals_to_caller(deliver(ok, callee_flow()));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].code(), 200);
}

TEST_F(ProxyTest, FailedCallIsRecordedWithTheCodeTheCallerGot) {
  Request r;
  const Msg invite = sent_to(authenticated(r), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(invite.ok());
  EXPECT_EQ(limits_.active("1000"), 1u);
  deliver(answer(invite, 486), callee_flow());
  EXPECT_EQ(limits_.active("1000"), 0u);
  EXPECT_EQ(dialogs_.size(), 0u);
  const std::lock_guard lock(store_.mu);
  ASSERT_EQ(store_.records.size(), 1u);
  EXPECT_EQ(store_.records[0].final_code, 486);
  EXPECT_EQ(store_.records[0].answered_at, 0);
  EXPECT_EQ(store_.records[0].source, "192.0.2.10:5062");
  EXPECT_EQ(store_.records[0].transport, "udp");
}

// RFC 3581 §4, RFC 3261 §18.2.1: the caller's Via gets the port and address its request came
// from, and the responses forwarded back carry them (a phone behind NAT learns its mapping).
TEST_F(ProxyTest, ForwardedResponsesTellTheCallerItsPublicAddress) {
  Request r;
  r.via = "SIP/2.0/UDP 10.0.0.5:5062;rport";
  r.contact = "<sip:1000@10.0.0.5:5062>";
  const Flow nat = udp("203.0.113.5", 40000);
  const Msg invite = sent_to(authenticated(r, "1000", nat), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(invite.ok());
  ASSERT_EQ(invite->via.size(), 2u);
  EXPECT_EQ(invite->via[1].received, "203.0.113.5");
  EXPECT_EQ(invite->via[1].rport, 40000);
  const auto ringing = deliver(answer(invite, 180), callee_flow());
  ASSERT_EQ(ringing.size(), 1u);
  EXPECT_TRUE(ringing[0].to("203.0.113.5", 40000));
  const Msg m(ringing[0].bytes);
  ASSERT_EQ(m->via.size(), 1u);
  EXPECT_EQ(m->via[0].received, "203.0.113.5");
  EXPECT_EQ(m->via[0].rport, 40000);
}

TEST_F(ProxyTest, CancelBeforeAnyProvisionalIsSentWhenTheCalleeRings) {
  Request r;
  const Msg invite = sent_to(authenticated(r), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(invite.ok());
  Request c = r;
  c.method = "CANCEL";
  c.cseq = 2;
  c.branch = "z9hG4bK-c1-auth";
  c.contact.clear();
  const auto cancelled = deliver(c.text());
  ASSERT_EQ(cancelled.size(), 1u);  // the 200 for the CANCEL; nothing downstream yet (§9.1)
  EXPECT_EQ(cancelled[0].code(), 200);
  const auto ringing = deliver(answer(invite, 180), callee_flow());
  EXPECT_TRUE(sent_to(ringing, "CANCEL", "192.0.2.30", 5090).ok());
  const auto finals = finals_to_caller(deliver(answer(invite, 487), callee_flow()));
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].code(), 487);
  EXPECT_EQ(limits_.active("1000"), 0u);
}

// A caller that cancelled gets 487 even when the ring timeout passes before the callee's
// phone gives up on the INVITE.
TEST_F(ProxyTest, CancelledCallGets487EvenAfterTheRingTimeout) {
  Request r;
  const Msg invite = sent_to(authenticated(r), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(invite.ok());
  deliver(answer(invite, 180), callee_flow());
  advance(milliseconds(20000));
  Request c = r;
  c.method = "CANCEL";
  c.cseq = 2;
  c.branch = "z9hG4bK-c1-auth";
  c.contact.clear();
  EXPECT_TRUE(sent_to(deliver(c.text()), "CANCEL", "192.0.2.30", 5090).ok());
  // The callee never answers the CANCEL nor the INVITE: 64*T1 after the CANCEL it is given up.
  EXPECT_EQ(final_code(advance(milliseconds(33000))), 487);
}

TEST_F(ProxyTest, UnansweredPhoneGets480AfterTheRingTimeout) {
  Request r;
  const Msg invite = sent_to(authenticated(r), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(invite.ok());
  // No answer at all (not even 100): retransmissions, then the branch is given up.
  const auto out = advance(milliseconds(40000));
  EXPECT_FALSE(requests(to(out, "192.0.2.30", 5090), "INVITE").empty());
  EXPECT_EQ(final_code(out), 480);
  EXPECT_EQ(limits_.active("1000"), 0u);
}

TEST_F(ProxyTest, UnansweredPhoneWithoutRingTimeoutGets408) {
  pshared_.ring_timeout = milliseconds(0);
  Request r;
  ASSERT_TRUE(sent_to(authenticated(r), "INVITE", "192.0.2.30", 5090).ok());
  EXPECT_EQ(final_code(advance(milliseconds(40000))), 408);
}

TEST_F(ProxyTest, NoOpenRelay) {
  Request foreign;
  foreign.uri = "sip:1003@other.example.net";
  foreign.to = "<sip:1003@other.example.net>";
  const auto out = deliver(foreign.text());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code(), 403);

  Request routed;
  routed.call_id = "call-routed";
  routed.branch = "z9hG4bK-routed";
  routed.extra = "Route: <sip:127.0.0.1:5060;lr>, <sip:203.0.113.9;lr>\r\n";
  const auto refused = deliver(routed.text());
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].code(), 403);
}

TEST_F(ProxyTest, OutboundProxyRouteToUsIsConsumed) {
  Request r;
  r.extra = "Route: <sip:example.com;lr>\r\n";
  const Msg fwd = sent_to(authenticated(r), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(fwd.ok());
  EXPECT_TRUE(fwd->route.empty());
}

TEST_F(ProxyTest, MessageIsForkedAndTheFirst2xxGoesBack) {
  Request r;
  r.method = "MESSAGE";
  r.uri = "sip:1001@example.com";
  r.to = "<sip:1001@example.com>";
  r.body = "hello";
  r.content_type = "text/plain";
  const auto out = authenticated(r);
  const Msg a = sent_to(out, "MESSAGE", "192.0.2.20", 5070);
  const Msg b = sent_to(out, "MESSAGE", "192.0.2.21", 5080);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->record_route.empty());  // no dialog
  EXPECT_EQ(a->body, "hello");
  const auto first = finals_to_caller(deliver(answer(a, 200, "tag-a"), udp("192.0.2.20", 5070)));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].code(), 200);
  EXPECT_TRUE(finals_to_caller(deliver(answer(b, 200, "tag-b"), udp("192.0.2.21", 5080))).empty());
}

// RFC 5658: a call that changes transport gets two Record-Route entries, and in-dialog
// requests come back over the connection each party is on.
TEST_F(ProxyTest, TlsCallerToUdpCalleeIsDoubleRecordRouted) {
  pshared_.listeners.push_back(
      Listener{1, Protocol::kTls, *transport::Endpoint::from_string("127.0.0.1", 5061)});
  Flow tls;
  tls.protocol = Protocol::kTls;
  tls.remote = *transport::Endpoint::from_string("192.0.2.10", 50000);
  tls.local = *transport::Endpoint::from_string("127.0.0.1", 5061);
  tls.listener = 1;
  tls.connection = 7;
  Request r;
  r.via = "SIP/2.0/TLS 192.0.2.10:50000;rport";
  r.contact = "<sip:1000@192.0.2.10:50000;transport=tls>";
  const Msg invite = sent_to(authenticated(r, "1000", tls), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(invite.ok());
  ASSERT_EQ(invite->record_route.size(), 2u);
  const std::string top(invite->record_route[0].text);
  const std::string second(invite->record_route[1].text);
  EXPECT_EQ(top.rfind("<sip:127.0.0.1:5060;lr;sw=", 0), 0u) << top;
  EXPECT_EQ(second.rfind("<sip:127.0.0.1:5061;transport=tls;lr;sw=", 0), 0u) << second;
  EXPECT_EQ(invite->via[0].transport, "UDP");

  const auto ok =
      deliver(answer(invite, 200, "callee-tag", "sip:1003@192.0.2.30:5090"), callee_flow());
  const auto finals = finals_to_caller(ok);
  ASSERT_TRUE(finals.empty());  // the caller is on TLS, not at 192.0.2.10:5062
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].flow.connection, 7u);
  EXPECT_EQ(ok[0].code(), 200);

  // The callee hangs up: both Route entries are ours, the BYE goes over the caller's TLS
  // connection with a TLS Via.
  InDialog bye;
  bye.uri = "sip:1000@192.0.2.10:50000;transport=tls";
  bye.routes = {top, second};
  bye.from = "<sip:1003@example.com>;tag=callee-tag";
  bye.to = std::string(invite->from.text);
  bye.call_id = "call-1";
  bye.cseq = 1;
  bye.via = "SIP/2.0/UDP 192.0.2.30:5090;rport";
  bye.branch = "z9hG4bK-callee-bye";
  const auto out = deliver(bye.text(), callee_flow());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].flow.protocol, Protocol::kTls);
  EXPECT_EQ(out[0].flow.connection, 7u);
  const Msg fwd(out[0].bytes);
  ASSERT_TRUE(fwd.ok());
  EXPECT_EQ(fwd->method, sip::Method::kBye);
  EXPECT_TRUE(fwd->route.empty());
  EXPECT_EQ(fwd->via[0].transport, "TLS");
  EXPECT_EQ(fwd->via[0].port, 5061);
  EXPECT_EQ(dialogs_.size(), 0u);
}

TEST_F(ProxyTest, EveryForkThatAnswersReachesTheCaller) {
  Request r;
  r.uri = "sip:1001@example.com";
  r.to = "<sip:1001@example.com>";
  const auto out = authenticated(r);
  const Msg a = sent_to(out, "INVITE", "192.0.2.20", 5070);
  const Msg b = sent_to(out, "INVITE", "192.0.2.21", 5080);
  deliver(answer(b, 180, "tag-b"), udp("192.0.2.21", 5080));
  const auto first = finals_to_caller(
      deliver(answer(a, 200, "tag-a", "sip:1001@192.0.2.20:5070"), udp("192.0.2.20", 5070)));
  ASSERT_EQ(first.size(), 1u);
  // B answered before its CANCEL arrived (§16.7 step 5: every 2xx goes upstream; the UAC
  // hangs one of the two up).
  const auto second = finals_to_caller(
      deliver(answer(b, 200, "tag-b", "sip:1001@192.0.2.21:5080"), udp("192.0.2.21", 5080)));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].code(), 200);
  EXPECT_NE(second[0].bytes.find("tag-b"), std::string::npos);
  EXPECT_EQ(dialogs_.size(), 1u);  // the first answer is the call
}

TEST_F(ProxyTest, ReInviteFollowsTheDialogRoute) {
  auto [invite, ok] = answered_call();
  ASSERT_EQ(ok->record_route.size(), 1u);
  InDialog reinvite;
  reinvite.method = "INVITE";
  reinvite.uri = "sip:1003@192.0.2.30:5090";
  reinvite.routes = {std::string(ok->record_route[0].text)};
  reinvite.from = std::string(ok->from.text);
  reinvite.to = std::string(ok->to.text);
  reinvite.call_id = "call-1";
  reinvite.cseq = 3;
  reinvite.branch = "z9hG4bK-reinvite";
  const Msg fwd = sent_to(deliver(reinvite.text()), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(fwd.ok());
  EXPECT_TRUE(fwd->route.empty());
  const auto finals = finals_to_caller(deliver(answer(fwd, 200), callee_flow()));
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].code(), 200);
  EXPECT_EQ(dialogs_.size(), 1u);  // still the same call
  EXPECT_EQ(limits_.active("1000"), 1u);
}

TEST_F(ProxyTest, WrongPasswordIsChallengedAgain) {
  Request bad;
  const auto first = deliver(bad.text());
  ASSERT_EQ(first.size(), 1u);
  const Msg challenge(first[0].bytes);
  const auto value = auth::answer_challenge(challenge->proxy_authenticate, "INVITE", bad.uri,
                                            auth::ClientCredentials{"1000", "guess", ""});
  ASSERT_TRUE(value.has_value());
  bad.cseq = 2;
  bad.branch = "z9hG4bK-bad-2";
  bad.extra = "Proxy-Authorization: " + *value + "\r\n";
  const auto again = deliver(bad.text());
  ASSERT_EQ(again.size(), 1u);  // nothing forwarded
  EXPECT_EQ(again[0].code(), 407);
  EXPECT_EQ(limits_.active("1000"), 0u);
}

TEST_F(ProxyTest, TlsOnlyUserOverUdpIsRefusedBeforeAnyChallenge) {
  store::Subscriber s;
  s.name = "1000";
  s.realm = kDomain;
  s.ha1_md5 = auth::ha1(auth::Algorithm::kMd5, "1000", kDomain, password("1000"));
  s.ha1_sha256 = auth::ha1(auth::Algorithm::kSha256, "1000", kDomain, password("1000"));
  s.require_tls = true;
  subscribers_.replace({s});
  Request r;
  const auto out = deliver(r.text());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code(), 403);
}

TEST_F(ProxyTest, SipsRequestUriReachesOnlyTlsContacts) {
  Request r;
  r.uri = "sips:1003@example.com";
  r.to = "<sips:1003@example.com>";
  const auto out = authenticated(r);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code(), 480);  // 1003's only contact is over UDP
}

TEST_F(ProxyTest, AnAliasMayBeTheFrom) {
  config::UserPolicy policy;
  policy.name = "1000";
  policy.aliases = {"sales"};
  pshared_.users["1000"] = policy;
  Request r;
  r.from = "<sip:sales@example.com>;tag=caller-tag";
  EXPECT_TRUE(sent_to(authenticated(r, "1000"), "INVITE", "192.0.2.30", 5090).ok());
}

TEST_F(ProxyTest, CallsPerMinuteLimit) {
  config::UserPolicy policy;
  policy.name = "1000";
  policy.calls.max_calls_per_minute = 1;
  pshared_.users["1000"] = policy;
  Request first;
  ASSERT_TRUE(sent_to(authenticated(first), "INVITE", "192.0.2.30", 5090).ok());
  Request second;
  second.call_id = "call-2";
  second.branch = "z9hG4bK-c2";
  const auto refused = authenticated(second);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].code(), 403);
  EXPECT_NE(refused[0].start_line().find("too many call attempts"), std::string::npos);
}

TEST_F(ProxyTest, OutsideTheAllowedNetworksIsRefused) {
  pshared_.user_networks["1000"] =
      shield::NetworkList({*shield::Network::parse("198.51.100.0/24")});
  Request r;
  const auto out = authenticated(r);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code(), 403);
  EXPECT_NE(out[0].start_line().find("network"), std::string::npos);
}

TEST_F(ProxyTest, UntrustedTrunkIdentityIsStrippedBothWays) {
  config::Trunk t = carrier();
  t.trusted = false;
  auto plan = DialPlan::build({t});
  ASSERT_TRUE(plan.ok());
  plan_ = *plan;

  Request in;
  in.uri = "sip:+15551230000@example.com";
  in.to = "<sip:+15551230000@example.com>";
  in.from = "<sip:+12125550000@198.51.100.1>;tag=prov-tag";
  in.via = "SIP/2.0/UDP 198.51.100.1:5060;rport";
  in.contact = "<sip:+12125550000@198.51.100.1:5060>";
  in.extra = "P-Asserted-Identity: <sip:1000@example.com>\r\n";
  const Msg fwd =
      sent_to(deliver(in.text(), udp("198.51.100.1", 5060)), "INVITE", "192.0.2.30", 5090);
  ASSERT_TRUE(fwd.ok());
  EXPECT_TRUE(fwd.values("P-Asserted-Identity").empty());

  Request out;
  out.uri = "sip:2125551234@example.com";
  out.to = "<sip:2125551234@example.com>";
  out.call_id = "call-out";
  out.branch = "z9hG4bK-out";
  const Msg sent = sent_to(authenticated(out), "INVITE", "198.51.100.1", 5060);
  ASSERT_TRUE(sent.ok());
  EXPECT_TRUE(sent.values("P-Asserted-Identity").empty());
}

// The caller hangs up before the provider said anything, and the provider's first word is a
// challenge: the call must not be sent again (it would ring, and be billed, for no one).
TEST_F(ProxyTest, NoTrunkAuthRetryAfterTheCallerCancelled) {
  Request r;
  r.uri = "sip:2125551234@example.com";
  r.to = "<sip:2125551234@example.com>";
  const Msg first = sent_to(authenticated(r), "INVITE", "198.51.100.1", 5060);
  ASSERT_TRUE(first.ok());
  Request c = r;
  c.method = "CANCEL";
  c.cseq = 2;
  c.branch = "z9hG4bK-c1-auth";
  c.contact.clear();
  const auto cancelled = deliver(c.text());
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(cancelled[0].code(), 200);

  auth::Secret provider_secret;
  provider_secret.fill(3);
  const auth::NonceFactory provider_nonces(provider_secret, std::chrono::seconds(300));
  const auth::Challenger provider(provider_nonces, provider_secret, {auth::Algorithm::kMd5});
  std::string extra;
  for (const std::string& v : provider.challenges("carrier.example", clock_, false)) {
    extra += "Proxy-Authenticate: " + v + "\r\n";
  }
  const auto out = deliver(answer(first, 407, "prov-tag", "", extra), udp("198.51.100.1", 5060));
  EXPECT_TRUE(requests(out, "INVITE").empty());
  EXPECT_EQ(final_code(out), 487);  // the caller cancelled; the provider's 407 is not theirs
  EXPECT_EQ(dialogs_.size(), 0u);
  EXPECT_EQ(limits_.active("1000"), 0u);
}

TEST_F(ProxyTest, ProviderRefusingTheTrunkCredentialsGives500NotItsChallenge) {
  Request r;
  r.uri = "sip:2125551234@example.com";
  r.to = "<sip:2125551234@example.com>";
  const Msg first = sent_to(authenticated(r), "INVITE", "198.51.100.1", 5060);
  ASSERT_TRUE(first.ok());
  auth::Secret provider_secret;
  provider_secret.fill(3);
  const auth::NonceFactory provider_nonces(provider_secret, std::chrono::seconds(300));
  const auth::Challenger provider(provider_nonces, provider_secret, {auth::Algorithm::kMd5});
  std::string extra;
  for (const std::string& v : provider.challenges("carrier.example", clock_, false)) {
    extra += "Proxy-Authenticate: " + v + "\r\n";
  }
  const Flow trunk = udp("198.51.100.1", 5060);
  const Msg retry =
      sent_to(deliver(answer(first, 407, "prov-tag", "", extra), trunk), "INVITE",
              "198.51.100.1", 5060);
  ASSERT_TRUE(retry.ok());
  // The provider does not accept the answer either: the caller could do nothing with its
  // challenge, so the server ends the call with an error of its own.
  const auto out = deliver(answer(retry, 407, "prov-tag", "", extra), trunk);
  const auto finals = finals_to_caller(out);
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].code(), 500);
  EXPECT_EQ(finals[0].bytes.find("Proxy-Authenticate"), std::string::npos);
  EXPECT_TRUE(requests(out, "INVITE").empty());
  EXPECT_EQ(limits_.active("1000"), 0u);
}

}  // namespace
}  // namespace proxy
