#include "auth/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "auth/hash.h"
#include "auth/nonce_counts.h"
#include "base/clock.h"
#include "sip/params.h"

// Choices made here, beyond what digest.h promises:
//
// - Algorithms: MD5 (also when absent) and SHA-256, names compared case-insensitively.
//   "-sess" variants, SHA-512-256 and anything else are kMalformed: Credentials carries no
//   SHA-512-256 HA1 and the challenger never offers it, so a client sending it is broken.
//   userhash=true is kMalformed too (never offered; the username would be a hash).
// - A response of the wrong length for the algorithm, an nc that is not 8 hex digits or is
//   00000000, an empty method, and a qop other than "auth" are kMalformed. None of these
//   depend on the user, so they reveal nothing about which users exist.
// - The nonce-count table is keyed by (nonce, username, cnonce), not by the nonce alone.
//   NonceFactory nonces are a function of (second, realm): every client challenged in the same
//   second gets the same nonce, and each starts at nc=00000001, so a table keyed by the nonce
//   would turn the second phone's first REGISTER into a "replay". A captured request still
//   cannot be replayed: the response binds nonce, nc and cnonce (and the user, through HA1),
//   so a replay carries the same key and an nc that is not above the recorded one.
// - The table is bounded two ways: entries are dropped once their nonce must be stale
//   (first use + lifetime + the 5 s NonceFactory grants to nonces from the future), and each
//   shard holds at most capacity/kShards entries; at that cap the oldest entry is evicted
//   (insertion order, a FIFO per shard). Eviction only happens while one lifetime sees more
//   successful authentications than the cap (1M by default), which takes valid credentials;
//   it weakens replay protection for the oldest nonces rather than refusing every user.
// - Every well-formed request with a genuine nonce costs the same three digests — a dummy
//   HA1 (always computed, used for unknown users), H(A2) and KD — whether the user exists,
//   the password is right, or not (DESIGN.md: unknown user and wrong password are
//   indistinguishable, timing included).

namespace auth {

// Test hooks (not in digest.h on purpose: nothing outside the tests should need them). The
// tests declare the same functions.
namespace digest_internal {
std::string response(Algorithm algorithm, std::string_view ha1, std::string_view nonce,
                     std::string_view nc, std::string_view cnonce, std::string_view qop,
                     std::string_view method, std::string_view digest_uri);
void set_nc_table_capacity(std::size_t entries);
std::size_t nc_table_entries();
std::uint64_t digests_on_this_thread();
}  // namespace digest_internal

namespace {

constexpr std::size_t kShards = 16;
constexpr std::size_t kDefaultCapacity = 1'000'000;
// NonceFactory::check accepts nonces issued up to 5 s in the future; keep entries that much
// longer (plus a margin) so an entry never expires while its nonce is still valid.
constexpr std::int64_t kExpirySlackSeconds = 10;

std::atomic<std::size_t> g_capacity{kDefaultCapacity};  // read when a verifier is built
std::atomic<std::int64_t> g_entries{0};                 // nonce-count entries, all verifiers

std::size_t hex_length(Algorithm algorithm) {
  return algorithm == Algorithm::kMd5 ? 32 : 64;
}

// RFC 7616 §3.4.1: KD(HA1, nonce ":" nc ":" cnonce ":" qop ":" H(A2)), A2 = method ":" uri.
Hex compute_response(Algorithm algorithm, std::string_view ha1, std::string_view nonce,
                     std::string_view nc, std::string_view cnonce, std::string_view qop,
                     std::string_view method, std::string_view digest_uri) {
  const Hex ha2 = Digest(algorithm).add({method, ":", digest_uri}).hex();
  return Digest(algorithm)
      .add({ha1, ":", nonce, ":", nc, ":", cnonce, ":", qop, ":", ha2.view()})
      .hex();
}

// Parameter values come with quoted-pair escapes unresolved (sip::AuthField); the digest is
// over the unquoted value (RFC 7616 unq()). Returns `value` itself unless it has escapes.
std::string_view unescaped(std::string_view value, std::string& storage) {
  if (value.find('\\') == std::string_view::npos) return value;
  storage.clear();
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size()) ++i;
    storage.push_back(value[i]);
  }
  return storage;
}

// nc-value = 8LHEX (RFC 7616 §3.4); zero is not a count of requests.
bool parse_nc(std::string_view text, std::uint32_t& out) {
  if (text.size() != 8) return false;
  std::uint32_t v = 0;
  for (char c : text) {
    std::uint32_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<std::uint32_t>(c - '0');
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
      d = static_cast<std::uint32_t>((c | 0x20) - 'a' + 10);
    } else {
      return false;
    }
    v = (v << 4) | d;
  }
  out = v;
  return v != 0;
}

// A stored HA1, lowercased, if it has the right length for the algorithm.
bool normalized_ha1(std::string_view stored, Algorithm algorithm, Hex& out) {
  if (stored.size() != hex_length(algorithm)) return false;
  for (std::size_t i = 0; i < stored.size(); ++i) {
    const char c = stored[i];
    out.buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
  }
  out.len = stored.size();
  return true;
}

// 128 bits of SHA-256 over (nonce, username, cnonce), length-prefixed so that no two triples
// share an encoding.
using CountKey = NonceCounts::Key;

struct CountKeyHash {
  std::size_t operator()(const CountKey& k) const {
    std::size_t h;
    static_assert(sizeof h <= sizeof(CountKey));
    std::memcpy(&h, k.data(), sizeof h);  // already uniformly distributed
    return h;
  }
};

bool count_key(std::string_view nonce, std::string_view username, std::string_view cnonce,
               CountKey& out) {
  Digest d(Algorithm::kSha256);
  std::uint64_t lengths[3];
  const std::string_view parts[3] = {nonce, username, cnonce};
  for (std::size_t i = 0; i < 3; ++i) {
    lengths[i] = parts[i].size();
    d.add({std::string_view(reinterpret_cast<const char*>(&lengths[i]), sizeof lengths[i]),
           parts[i]});
  }
  unsigned char raw[EVP_MAX_MD_SIZE];
  if (d.raw(raw) < out.size()) return false;
  std::memcpy(out.data(), raw, out.size());
  return true;
}

}  // namespace

struct DigestVerifier::State {
  struct Shard {
    std::mutex mu;
    NonceCounts counts;  // guarded by mu
    Shard(std::size_t capacity, std::int64_t lifetime) : counts(capacity, lifetime) {}
  };

  State(const NonceFactory& n, std::string r)
      : nonces(n),
        realm(std::move(r)),
        shards(make_shards(std::max<std::size_t>(1, g_capacity.load() / kShards),
                           n.lifetime().count() + kExpirySlackSeconds)) {
    std::array<std::uint8_t, 32> key{};
    if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
      throw std::runtime_error("no randomness for the digest verifier");  // start-up only
    }
    static constexpr char kHex[] = "0123456789abcdef";
    for (std::uint8_t b : key) {
      dummy_key.push_back(kHex[b >> 4]);
      dummy_key.push_back(kHex[b & 0xF]);
    }
  }

  ~State() {
    std::int64_t total = 0;
    for (const auto& s : shards) total += static_cast<std::int64_t>(s->counts.size());
    g_entries.fetch_sub(total, std::memory_order_relaxed);
  }

  static std::vector<std::unique_ptr<Shard>> make_shards(std::size_t capacity,
                                                         std::int64_t lifetime) {
    std::vector<std::unique_ptr<Shard>> out;
    for (std::size_t i = 0; i < kShards; ++i) {
      out.push_back(std::make_unique<Shard>(capacity, lifetime));
    }
    return out;
  }

  // Accepts `nc` for `key` if it is above the highest accepted so far, and records it.
  Verdict record(const CountKey& key, std::uint32_t nc, std::int64_t now) {
    Shard& s = *shards[key.back() % kShards];  // the index uses the first bytes
    const std::lock_guard lock(s.mu);
    const std::size_t before = s.counts.size();
    const NonceCounts::Result r = s.counts.record(key, nc, now);
    // At the cap an insert evicts one: the count stays, and no shared cache line is written.
    if (const auto delta = static_cast<std::int64_t>(s.counts.size()) -
                           static_cast<std::int64_t>(before);
        delta != 0) {
      g_entries.fetch_add(delta, std::memory_order_relaxed);
    }
    return r == NonceCounts::Result::kAccepted ? Verdict::kOk : Verdict::kReplay;
  }

  const NonceFactory& nonces;
  const std::string realm;
  std::string dummy_key;  // hex of 32 random bytes: unknown users get H(key:user:realm) as HA1
  const std::vector<std::unique_ptr<Shard>> shards;  // kShards
};

std::string ha1(Algorithm algorithm, std::string_view username, std::string_view realm,
                std::string_view password) {
  return std::string(Digest(algorithm).add({username, ":", realm, ":", password}).hex().view());
}

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kStale:
      return "stale";
    case Verdict::kFailed:
      return "failed";
    case Verdict::kReplay:
      return "replay";
    case Verdict::kMalformed:
      return "malformed";
  }
  return "?";
}

DigestVerifier::DigestVerifier(const NonceFactory& nonces, std::string realm)
    : state_(std::make_unique<State>(nonces, std::move(realm))) {}

DigestVerifier::~DigestVerifier() = default;

Verdict DigestVerifier::verify(const sip::AuthField& field, std::string_view method,
                               const Credentials& user, std::chrono::system_clock::time_point now) {
  // RFC 7616 §3.4: with qop=auth the client must send cnonce and nc; RFC 2069-style
  // responses (no qop) are refused.
  if (!field.is_digest() || field.userhash) return Verdict::kMalformed;
  if (field.username.empty() || field.realm.empty() || field.nonce.empty() || field.uri.empty() ||
      field.response.empty() || field.cnonce.empty() || method.empty()) {
    return Verdict::kMalformed;
  }
  if (!sip::iequals(field.qop, "auth")) return Verdict::kMalformed;
  Algorithm algorithm;
  if (!parse_algorithm(field.algorithm, algorithm)) return Verdict::kMalformed;
  std::uint32_t nc;
  if (!parse_nc(field.nc, nc)) return Verdict::kMalformed;
  const std::size_t len = hex_length(algorithm);
  if (field.response.size() != len) return Verdict::kMalformed;

  std::string realm_buf, nonce_buf, username_buf, cnonce_buf, uri_buf;
  if (unescaped(field.realm, realm_buf) != state_->realm) return Verdict::kFailed;
  const std::string_view nonce = unescaped(field.nonce, nonce_buf);
  const NonceCheck nonce_check = state_->nonces.check(nonce, state_->realm, now);
  if (nonce_check == NonceCheck::kForged) return Verdict::kFailed;

  const std::string_view username = unescaped(field.username, username_buf);
  const std::string_view cnonce = unescaped(field.cnonce, cnonce_buf);
  const std::string_view uri = unescaped(field.uri, uri_buf);

  // The same work whoever asks: the dummy HA1 is computed for every request and used when the
  // user is unknown or has no usable HA1 for this algorithm.
  Hex ha1_hex = Digest(algorithm).add({state_->dummy_key, ":", username, ":", state_->realm}).hex();
  bool usable = false;
  if (user.known) {
    Hex stored;
    const std::string_view s = algorithm == Algorithm::kMd5 ? user.ha1_md5 : user.ha1_sha256;
    usable = normalized_ha1(s, algorithm, stored);
    if (usable) ha1_hex = stored;
  }
  const Hex expected =
      compute_response(algorithm, ha1_hex.view(), nonce, field.nc, cnonce, field.qop, method, uri);

  std::array<char, 2 * EVP_MAX_MD_SIZE> given{};
  for (std::size_t i = 0; i < len; ++i) {
    const char c = field.response[i];
    given[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
  }
  const bool match =
      expected.len == len && CRYPTO_memcmp(expected.buf.data(), given.data(), len) == 0;
  if (!(match && usable)) return Verdict::kFailed;

  // RFC 7616 §3.3: stale=true only when the response was right for the old nonce.
  if (nonce_check == NonceCheck::kStale) return Verdict::kStale;

  CountKey key;
  if (!count_key(nonce, username, cnonce, key)) return Verdict::kFailed;
  return state_->record(key, nc, base::unix_seconds(now));
}

const sip::AuthField* DigestVerifier::pick(const std::vector<sip::AuthField>& fields) const {
  std::string buf;
  for (const sip::AuthField& f : fields) {
    if (f.is_digest() && unescaped(f.realm, buf) == state_->realm) return &f;
  }
  return nullptr;
}

namespace digest_internal {

std::string response(Algorithm algorithm, std::string_view ha1, std::string_view nonce,
                     std::string_view nc, std::string_view cnonce, std::string_view qop,
                     std::string_view method, std::string_view digest_uri) {
  return std::string(
      compute_response(algorithm, ha1, nonce, nc, cnonce, qop, method, digest_uri).view());
}

void set_nc_table_capacity(std::size_t entries) {
  g_capacity.store(entries);
}

std::size_t nc_table_entries() {
  return static_cast<std::size_t>(g_entries.load(std::memory_order_relaxed));
}

std::uint64_t digests_on_this_thread() {
  return hex_digests_on_this_thread();
}

}  // namespace digest_internal

}  // namespace auth
