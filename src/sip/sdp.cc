#include "sip/sdp.h"

#include <cstddef>

// Choices made here, beyond what sdp.h promises:
//
// - "Parsable" is the line structure of RFC 4566 §5: the first line is "v=", every line is a
//   lowercase letter, '=' and a value, with no control characters but HTAB. An empty line is
//   allowed only as the last (a body ending in a blank line). Anything else is false.
// - An m= line must read "m=<media> <port>[/<count>] <proto> ..." with a decimal port of at
//   most 65535; otherwise the body is unparsable.
// - The profile names are compared exactly ("RTP/SAVP", "RTP/SAVPF"): they are registered in
//   that spelling, and a mismatch errs on the side of "not only SRTP".
// - An a=crypto line counts when it has the RFC 4568 §9.1 shape: a decimal tag, a suite and
//   key parameters starting "inline:" with a key. Suites and keys are not checked further:
//   the media path, not the proxy, uses them.

namespace sip {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The text up to the first ' ' of `rest`, which is advanced past it (and past that space).
std::string_view next_field(std::string_view& rest) {
  const std::size_t space = rest.find(' ');
  const std::string_view field = rest.substr(0, space);
  rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  return field;
}

// Splits a body into lines ending in CRLF or LF (the last may lack a line end).
class Lines {
 public:
  explicit Lines(std::string_view body) : rest_(body) {}

  // The next line without its line end; false at the end of the body.
  bool next(std::string_view& line) {
    if (rest_.empty()) return false;
    const std::size_t lf = rest_.find('\n');
    line = rest_.substr(0, lf);
    rest_ = lf == std::string_view::npos ? std::string_view() : rest_.substr(lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
  }
  bool at_end() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

// RFC 4566 §5: type "=" value, type a single lowercase letter; no control characters.
bool well_formed(std::string_view line) {
  if (line.size() < 2 || line[0] < 'a' || line[0] > 'z' || line[1] != '=') return false;
  for (char c : line) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) return false;
  }
  return true;
}

struct Media {
  bool active = false;  // port not zero
  bool srtp_profile = false;
};

// RFC 4566 §5.14: m=<media> <port>[/<number of ports>] <proto> <fmt> ...
bool parse_media(std::string_view value, Media& out) {
  std::string_view rest = value;
  const std::string_view media = next_field(rest);
  std::string_view port = next_field(rest);
  const std::string_view proto = next_field(rest);
  if (media.empty() || port.empty() || proto.empty()) return false;
  if (const std::size_t slash = port.find('/'); slash != std::string_view::npos) {
    const std::string_view count = port.substr(slash + 1);
    if (count.empty() || count.size() > 5) return false;
    for (char c : count) {
      if (!is_digit(c)) return false;
    }
    port = port.substr(0, slash);
  }
  if (port.empty() || port.size() > 5) return false;
  unsigned number = 0;
  for (char c : port) {
    if (!is_digit(c)) return false;
    number = number * 10 + static_cast<unsigned>(c - '0');
  }
  if (number > 65535) return false;
  out.active = number != 0;
  // RFC 4568 §3.1.4 (SDES applies to RTP/SAVP), RFC 5124 (RTP/SAVPF). DTLS-SRTP's
  // UDP/TLS/RTP/SAVP(F) keys come from the handshake, which this server cannot see.
  out.srtp_profile = proto == "RTP/SAVP" || proto == "RTP/SAVPF";
  return true;
}

// RFC 4568 §9.1: a=crypto:<tag> <crypto-suite> <key-params> [<session-params>], key-params
// "inline:" <key info>. `value` is what follows "a=".
bool is_crypto_attribute(std::string_view value) {
  constexpr std::string_view kName = "crypto:";
  if (!value.starts_with(kName)) return false;
  std::string_view rest = value.substr(kName.size());
  const std::string_view tag = next_field(rest);
  const std::string_view suite = next_field(rest);
  const std::string_view key_params = next_field(rest);
  if (tag.empty() || tag.size() > 10 || suite.empty()) return false;
  for (char c : tag) {
    if (!is_digit(c)) return false;
  }
  constexpr std::string_view kInline = "inline:";
  return key_params.starts_with(kInline) && key_params.size() > kInline.size();
}

}  // namespace

bool sdp_offers_only_srtp(std::string_view body) {
  Lines lines(body);
  std::string_view line;
  bool first = true;
  bool session_crypto = false;  // a=crypto before the first m=
  bool in_media = false;
  Media media;
  bool media_crypto = false;
  bool any_active = false;

  // The verdict on the media section that just ended: false when it is active and not SRTP.
  const auto section_ok = [&] {
    if (!in_media || !media.active) return true;
    any_active = true;
    return media.srtp_profile && (media_crypto || session_crypto);
  };

  while (lines.next(line)) {
    if (line.empty() && lines.at_end()) break;  // a trailing blank line
    if (!well_formed(line)) return false;
    if (first) {
      if (line[0] != 'v') return false;
      first = false;
    }
    const std::string_view value = line.substr(2);
    if (line[0] == 'm') {
      if (!section_ok()) return false;
      media = Media{};
      media_crypto = false;
      in_media = true;
      if (!parse_media(value, media)) return false;
    } else if (line[0] == 'a' && is_crypto_attribute(value)) {
      (in_media ? media_crypto : session_crypto) = true;
    }
  }
  if (!section_ok()) return false;
  return any_active;
}

bool sdp_has_media(std::string_view body) {
  Lines lines(body);
  std::string_view line;
  while (lines.next(line)) {
    if (line.starts_with("m=")) return true;
  }
  return false;
}

}  // namespace sip
