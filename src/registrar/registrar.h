// REGISTER processing (RFC 3261 §10.3) with digest authentication (RFC 7616, RFC 8760).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <string>
#include <utility>
#include <vector>

#include "auth/challenge.h"
#include "auth/digest.h"
#include "registrar/location.h"
#include "registrar/subscribers.h"
#include "shield/network.h"
#include "shield/shield.h"
#include "sip/message.h"
#include "store/store.h"
#include "transport/endpoint.h"

namespace registrar {

struct Settings {
  std::string domain;                      // the realm, and the domain of every AOR
  std::vector<std::string> local_domains;  // To hosts accepted as this domain
  std::uint32_t min_expires = 60;
  std::uint32_t max_expires = 3600;
  std::uint32_t default_expires = 3600;
  std::size_t max_contacts = 10;
  shield::Shield* shield = nullptr;  // told of challenges, failures and successes; may be null
  // Users who may register only from these networks ([users.NAME] allowed_networks).
  std::unordered_map<std::string, shield::NetworkList> user_networks;
};

// A response decided by the registrar, owning its strings (it may be sent later, from another
// thread's callback).
struct Answer {
  int code = 200;
  std::string reason;  // empty: the standard phrase
  std::vector<std::pair<std::string, std::string>> headers;
  // Sent without keeping the transaction (RFC 3261 §8.2.7): a retransmission of the request
  // is answered afresh. The challenge to a REGISTER without credentials, the first half of
  // every registration: no transaction held 64*T1 for it, and a fresh challenge is as good.
  bool stateless = false;
};

class Registrar {
 public:
  Registrar(Settings settings, store::Store& store, Location& location,
            SubscriberCache& subscribers, auth::DigestVerifier& verifier,
            const auth::Challenger& challenger,
            std::function<std::chrono::system_clock::time_point()> now);

  // Builds the answer to a REGISTER whose binding change has been decided (by handle()).
  using Finish = std::function<Answer()>;

  // Decides what to do with a REGISTER that arrived on `flow`. Returns the answer when it is
  // known at once (a challenge, an error); otherwise returns std::nullopt and calls `later`
  // exactly once — from the store's writer thread — when the binding change is durable or
  // failed. By then a durable change is in the location service; `later` gets the function
  // that builds the answer (200 with every current binding, or 500), to be run once, on any
  // thread: the router runs it on the worker that sends it, so that the answer's strings are
  // made and freed there, not on the writer.
  std::optional<Answer> handle(const sip::Message& request, const transport::Flow& flow,
                               std::function<void(Finish)> later);

  // The canonical AOR of a To/Request URI host+user: "user@domain".
  std::string aor_of(std::string_view user) const;

  const Settings& settings() const { return settings_; }

 private:
  Answer challenge(const sip::Message& request, bool stale) const;
  Answer ok_with_bindings(const std::vector<Location::Summary>& bindings, std::int64_t now) const;

  const Settings settings_;
  store::Store& store_;
  Location& location_;
  SubscriberCache& subscribers_;
  auth::DigestVerifier& verifier_;
  const auth::Challenger& challenger_;
  const std::function<std::chrono::system_clock::time_point()> now_;
};

}  // namespace registrar
