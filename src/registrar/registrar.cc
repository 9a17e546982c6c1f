#include "registrar/registrar.h"

#include <algorithm>
#include <charconv>
#include <memory>

#include "base/clock.h"
#include "sip/params.h"
#include "sip/uri.h"

namespace registrar {
namespace {

// A q-value (RFC 3261 §20.10): "0" .. "1" with up to three decimals; nullopt if malformed.
std::optional<double> parse_q(std::string_view text) {
  double q = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), q);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size() || q < 0 || q > 1) {
    return std::nullopt;
  }
  return q;
}

std::optional<std::uint64_t> parse_seconds(std::string_view text) {
  std::uint64_t v = 0;
  if (text.empty() || text.size() > 12) return text.empty() ? std::nullopt : std::optional(~0ull);
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string_view protocol_name(transport::Protocol p) {
  switch (p) {
    case transport::Protocol::kUdp:
      return "udp";
    case transport::Protocol::kTcp:
      return "tcp";
    case transport::Protocol::kTls:
      return "tls";
  }
  return "udp";
}

}  // namespace

Registrar::Registrar(Settings settings, store::Store& store, Location& location,
                     SubscriberCache& subscribers, auth::DigestVerifier& verifier,
                     const auth::Challenger& challenger,
                     std::function<std::chrono::system_clock::time_point()> now)
    : settings_(std::move(settings)),
      store_(store),
      location_(location),
      subscribers_(subscribers),
      verifier_(verifier),
      challenger_(challenger),
      now_(std::move(now)) {}

std::string Registrar::aor_of(std::string_view user) const {
  return sip::unescape(user) + "@" + sip::ascii_lower(settings_.domain);
}

Answer Registrar::challenge(const sip::Message&, bool stale) const {
  Answer a;
  a.code = 401;
  for (std::string& v : challenger_.challenges(settings_.domain, now_(), stale)) {
    a.headers.emplace_back("WWW-Authenticate", std::move(v));
  }
  return a;
}

Answer Registrar::ok_with_bindings(const std::vector<Location::Summary>& bindings,
                                   std::int64_t now) const {
  // RFC 3261 §10.3 step 8: the 200 lists every current binding with its remaining expiry.
  Answer a;
  for (const Location::Summary& b : bindings) {
    const std::int64_t left = std::max<std::int64_t>(0, b.expires_at - now);
    a.headers.emplace_back("Contact", "<" + b.contact + ">;expires=" + std::to_string(left));
  }
  return a;
}

std::optional<Answer> Registrar::handle(const sip::Message& request, const transport::Flow& flow,
                                        std::function<void(Finish)> later) {
  const auto now_tp = now_();
  const std::int64_t now = base::unix_seconds(now_tp);

  // Step 1-3: the To is the AOR; it must be a SIP URI of this domain (RFC 4475 unksm2).
  const sip::Uri& to = request.to.uri;
  if (to.scheme != sip::Scheme::kSip && to.scheme != sip::Scheme::kSips) {
    return Answer{400, "Bad Request (To must be a SIP URI)", {}};
  }
  const bool local = std::any_of(settings_.local_domains.begin(), settings_.local_domains.end(),
                                 [&](const std::string& d) { return sip::iequals(d, to.host); });
  if (!local) return Answer{403, "Forbidden (not a domain of this server)", {}};

  // Step 4-5: authentication. An unknown user and a wrong password get the same answer, from
  // the same work (DigestVerifier hashes for unknown users too).
  shield::Shield* const shield = settings_.shield;
  const sip::AuthField* credentials = verifier_.pick(request.authorization);
  const std::string to_user = sip::unescape(to.user);
  // A user marked require-TLS is refused on UDP/TCP before any challenge, so its credentials
  // never cross a plaintext transport (a downgrade attempt gets nothing to crack).
  std::shared_ptr<const SubscriberCache::Entry> to_subscriber;  // looked up off TLS only
  if (flow.protocol != transport::Protocol::kTls) {
    to_subscriber = subscribers_.find(to_user);
    if (to_subscriber && to_subscriber->require_tls) {
      if (shield != nullptr) {
        shield->auth_failed(flow, to_user,
                            "REGISTER over a plaintext transport for a TLS-only user", "refused");
      }
      return Answer{403, "Forbidden (TLS required)", {}};
    }
  }
  if (credentials == nullptr) {
    if (shield != nullptr) shield->user_challenged(flow, to_user);
    Answer a = challenge(request, false);
    // Stateless, as Kamailio's stock configuration sends it. A REGISTER with credentials
    // keeps its transaction: a retransmitted wrong password is verified and counted once.
    a.stateless = true;
    return a;
  }
  const std::string name = sip::unescape(credentials->username);
  // Users register their own AOR: the To user's entry, when it was looked up, is this one.
  const auto subscriber = flow.protocol != transport::Protocol::kTls && name == to_user
                              ? std::move(to_subscriber)
                              : subscribers_.find(name);
  auth::Credentials user;
  if (subscriber) {
    user.known = true;
    user.ha1_md5 = subscriber->ha1_md5;
    user.ha1_sha256 = subscriber->ha1_sha256;
  }
  const auth::Verdict verdict =
      verifier_.verify(*credentials, request.method_text, user, now_tp);
  if (verdict == auth::Verdict::kStale) return challenge(request, true);
  if (verdict != auth::Verdict::kOk) {
    // Unknown user and wrong password are one event type: the log must not enumerate either.
    if (shield != nullptr) {
      shield->auth_failed(flow, name,
                          std::string("digest authentication failed (") +
                              std::string(auth::to_string(verdict)) + ")");
    }
    return challenge(request, false);
  }
  if (shield != nullptr) shield->auth_succeeded(flow, name);
  if (const auto n = settings_.user_networks.find(name);
      n != settings_.user_networks.end() && !n->second.contains(flow.remote)) {
    if (shield != nullptr) {
      shield->auth_failed(flow, name, "REGISTER from outside the user's allowed networks",
                          "refused");
    }
    return Answer{403, "Forbidden (not from an allowed network)", {}};
  }
  // The authenticated user may only register its own AOR.
  if (sip::unescape(to.user) != name) {
    return Answer{403, "Forbidden (not your address-of-record)", {}};
  }
  const std::string aor = aor_of(to.user);
  const std::vector<Location::Summary> current = location_.summaries(aor, now);

  // Step 6: Contact: * with Expires: 0 removes every binding (and nothing else may be there).
  store::BindingChange change;
  change.aor = aor;
  if (request.contact_star) {
    if (request.expires != 0) return Answer{400, "Bad Request (Contact: * needs Expires: 0)", {}};
    change.remove_all = true;
  } else if (request.contact.empty()) {
    return ok_with_bindings(current, now);  // a query (§10.2.3)
  }

  for (const sip::NameAddr& c : request.contact) {
    std::uint64_t expires = settings_.default_expires;
    if (auto p = c.params.find("expires")) {
      // RFC 4475 scalar02: an unusable value is taken as the default.
      expires = parse_seconds(*p).value_or(settings_.default_expires);
    } else if (request.expires >= 0) {
      expires = static_cast<std::uint64_t>(request.expires);
    }
    const std::string contact(c.uri.text);
    // Step 7: Call-ID / CSeq ordering for an existing binding of this contact.
    const auto existing =
        std::find_if(current.begin(), current.end(),
                     [&](const Location::Summary& b) { return b.contact == contact; });
    if (existing != current.end() && existing->call_id == request.call_id &&
        existing->cseq >= request.cseq.number) {
      return Answer{400, "Bad Request (CSeq not above the one that made the binding)", {}};
    }
    if (expires == 0) {
      change.remove.push_back(contact);
      continue;
    }
    if (expires < settings_.min_expires) {
      return Answer{423, "", {{"Min-Expires", std::to_string(settings_.min_expires)}}};
    }
    expires = std::min<std::uint64_t>(expires, settings_.max_expires);
    store::Binding b;
    b.aor = aor;
    b.contact = contact;
    b.expires_at = now + static_cast<std::int64_t>(expires);
    if (auto q = c.params.find("q")) {
      auto parsed = parse_q(*q);
      if (!parsed) return Answer{400, "Bad Request (malformed q-value)", {}};
      b.q = *parsed;
    }
    b.call_id = std::string(request.call_id);
    b.cseq = request.cseq.number;
    if (auto inst = c.params.find("+sip.instance")) b.instance = sip::unquote(*inst);
    if (auto reg = c.params.find("reg-id")) b.reg_id = std::string(*reg);
    b.user_agent = std::string(request.user_agent);
    b.transport = std::string(protocol_name(flow.protocol));
    b.source = flow.remote.to_string();
    b.local = flow.local.to_string();
    b.connection = flow.connection;
    b.listener = flow.listener;
    b.worker = flow.worker;
    change.upsert.push_back(std::move(b));
  }

  // The limit of contacts per AOR, counted after the change.
  std::size_t after = change.remove_all ? 0 : current.size();
  for (const store::Binding& b : change.upsert) {
    const bool replaces =
        !change.remove_all && std::any_of(current.begin(), current.end(),
                                          [&](const auto& x) { return x.contact == b.contact; });
    if (!replaces) ++after;
  }
  for (const std::string& r : change.remove) {
    if (std::any_of(current.begin(), current.end(),
                    [&](const Location::Summary& x) { return x.contact == r; })) {
      --after;
    }
  }
  if (after > settings_.max_contacts) {
    return Answer{403, "Forbidden (too many contacts for this address-of-record)", {}};
  }

  // Step 8: durable first, then visible and acknowledged. The store and the callback share the
  // change. The location service takes it on the writer thread, in commit order; the answer
  // is built where `later` chooses to run it.
  auto applied = std::make_shared<const store::BindingChange>(std::move(change));
  store_.apply(applied, [this, applied, later = std::move(later)](bool durable) {
    if (!durable) {
      later([] { return Answer{500, "Server Internal Error (binding not stored)", {}}; });
      return;
    }
    location_.apply(*applied);
    later([this, applied] {  // the change's last owner, most likely: freed where it was made
      const std::int64_t t = base::unix_seconds(now_());
      return ok_with_bindings(location_.summaries(applied->aor, t), t);
    });
  });
  return std::nullopt;
}

}  // namespace registrar
