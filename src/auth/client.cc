#include "auth/client.h"

#include <openssl/rand.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "auth/challenge.h"
#include "auth/digest.h"
#include "auth/hash.h"
#include "sip/params.h"

// Choices made here, beyond what client.h promises:
//
// - The digests are over unescaped values (RFC 7616 unq()), as DigestVerifier computes them.
//   realm, nonce and opaque go back exactly as the challenge wrote them (their escapes are
//   valid inside a quoted-string); username, uri and cnonce are escaped ('"' and '\').
// - A challenge without realm or nonce, or with an algorithm other than MD5 / SHA-256
//   (SHA-512-256, -sess variants), is skipped in favour of the next one; nullopt only when
//   none is left. The same for a qop list without "auth" (auth-int only): the body would
//   have to be hashed, and this client never does.
// - qop is a comma-separated token list (RFC 7616 §3.3), compared case-insensitively.
// - Nothing with a control character goes on the wire: a username, uri or echoed value with
//   CR/LF would split the header, so the answer is nullopt instead. An empty username,
//   method or uri is nullopt too (no server would accept it).
// - The realm match with credentials.realm is exact (a realm is a string, not a token).

namespace auth {

// Test hook (not in client.h on purpose: a fixed cnonce must never go on the wire twice). The
// tests declare the same function.
namespace client_internal {
std::optional<std::string> answer_challenge(const std::vector<sip::AuthField>& challenges,
                                            std::string_view method, std::string_view uri,
                                            const ClientCredentials& credentials,
                                            std::string_view cnonce);
}  // namespace client_internal

namespace {

constexpr std::string_view kNc = "00000001";  // the first (and only) use of each cnonce

struct Choice {
  const sip::AuthField* field = nullptr;
  Algorithm algorithm = Algorithm::kMd5;
  bool qop_auth = false;  // false: RFC 2069 form (the challenge offered no qop)
};

bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}

// RFC 7616 §3.3: qop-options is a quoted list of tokens. Returns false when qop is offered
// but "auth" is not among the options; `auth` tells whether it is.
bool parse_qop_options(std::string_view list, bool& auth) {
  auth = false;
  if (list.empty()) return true;  // RFC 2069 challenge
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view option = list.substr(0, comma);
    while (!option.empty() && is_wsp(option.front())) option.remove_prefix(1);
    while (!option.empty() && is_wsp(option.back())) option.remove_suffix(1);
    if (sip::iequals(option, "auth")) {
      auth = true;
      return true;
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool has_control(std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return true;
  }
  return false;
}

// The value of a quoted-string's contents with its quoted-pairs resolved.
std::string unescaped(std::string_view contents) {
  return sip::unquote(std::string("\"").append(contents).append("\""));
}

// Appends `text` as a quoted-string, escaping '"' and '\' (RFC 3261 §25.1 quoted-pair).
void append_quoted(std::string& out, std::string_view text) {
  out.push_back('"');
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

// The first usable SHA-256 challenge, else the first usable MD5 one (RFC 8760 §2.4: the
// client uses the strongest algorithm it supports).
bool choose(const std::vector<sip::AuthField>& challenges, std::string_view realm, Choice& out) {
  bool found = false;
  for (const sip::AuthField& c : challenges) {
    Choice candidate{&c};
    if (!c.is_digest() || c.realm.empty() || c.nonce.empty()) continue;
    if (!parse_algorithm(c.algorithm, candidate.algorithm)) continue;
    if (!parse_qop_options(c.qop, candidate.qop_auth)) continue;
    if (!realm.empty() && unescaped(c.realm) != realm) continue;
    if (has_control(c.realm) || has_control(c.nonce) || has_control(c.opaque)) continue;
    if (candidate.algorithm == Algorithm::kSha256) {
      out = candidate;
      return true;
    }
    if (!found) {
      out = candidate;
      found = true;
    }
  }
  return found;
}

}  // namespace

namespace client_internal {

std::optional<std::string> answer_challenge(const std::vector<sip::AuthField>& challenges,
                                            std::string_view method, std::string_view uri,
                                            const ClientCredentials& credentials,
                                            std::string_view cnonce) {
  if (credentials.username.empty() || method.empty() || uri.empty() || cnonce.empty()) {
    return std::nullopt;
  }
  if (has_control(credentials.username) || has_control(uri) || has_control(cnonce)) {
    return std::nullopt;
  }
  Choice choice;
  if (!choose(challenges, credentials.realm, choice)) return std::nullopt;
  const sip::AuthField& challenge = *choice.field;
  const Algorithm algorithm = choice.algorithm;

  // RFC 7616 §3.4.1: response = KD(HA1, nonce ":" nc ":" cnonce ":" qop ":" H(A2)), or
  // KD(HA1, nonce ":" H(A2)) without qop (RFC 2069); A2 = method ":" uri.
  const std::string realm = unescaped(challenge.realm);
  const std::string nonce = unescaped(challenge.nonce);
  const std::string ha1_hex = ha1(algorithm, credentials.username, realm, credentials.password);
  const Hex ha2 = Digest(algorithm).add({method, ":", uri}).hex();
  const Hex response =
      choice.qop_auth
          ? Digest(algorithm)
                .add({ha1_hex, ":", nonce, ":", kNc, ":", cnonce, ":", "auth", ":", ha2.view()})
                .hex()
          : Digest(algorithm).add({ha1_hex, ":", nonce, ":", ha2.view()}).hex();
  if (ha1_hex.empty() || ha2.len == 0 || response.len == 0) return std::nullopt;

  std::string out;
  out.reserve(256 + challenge.nonce.size() + challenge.opaque.size() + uri.size());
  out.append("Digest username=");
  append_quoted(out, credentials.username);
  out.append(", realm=\"").append(challenge.realm);
  out.append("\", nonce=\"").append(challenge.nonce);
  out.append("\", uri=");
  append_quoted(out, uri);
  out.append(", response=\"").append(response.view());
  out.append("\", algorithm=").append(to_string(algorithm));
  if (choice.qop_auth) {
    out.append(", cnonce=");
    append_quoted(out, cnonce);
    out.append(", qop=auth, nc=").append(kNc);
  }
  // RFC 7616 §3.4: the opaque of the challenge is returned unchanged.
  if (!challenge.opaque.empty()) out.append(", opaque=\"").append(challenge.opaque).append("\"");
  return out;
}

}  // namespace client_internal

std::optional<std::string> answer_challenge(const std::vector<sip::AuthField>& challenges,
                                            std::string_view method, std::string_view uri,
                                            const ClientCredentials& credentials) {
  // RFC 7616 §3.4: the cnonce protects against chosen-plaintext attacks by the server; it
  // must be unpredictable. 8 random bytes, as 16 lowercase hex characters.
  static constexpr char kHex[] = "0123456789abcdef";
  std::array<unsigned char, 8> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) return std::nullopt;
  std::array<char, 2 * random.size()> cnonce{};
  for (std::size_t i = 0; i < random.size(); ++i) {
    cnonce[2 * i] = kHex[random[i] >> 4];
    cnonce[2 * i + 1] = kHex[random[i] & 0xF];
  }
  return client_internal::answer_challenge(challenges, method, uri, credentials,
                                           std::string_view(cnonce.data(), cnonce.size()));
}

}  // namespace auth
