// The SIP parser (RFC 3261 §7, §20, §25): bytes in, a validated Message view or an Error out.
// It never throws, never reads outside the input, and bounds its work by the input's size.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "sip/message.h"
#include "sip/result.h"

namespace sip {

struct Limits {
  std::size_t max_message_bytes = 65535;  // whole message (datagram, or one framed stream message)
  std::size_t max_headers = 128;          // header lines
  std::size_t max_header_line = 8192;     // one header, folded continuation lines included
  std::size_t max_uri_length = 4096;      // any URI
};

// How the message arrived. On streams Content-Length is mandatory (RFC 3261 §18.3); in a
// datagram a missing Content-Length means the body runs to the end of the datagram.
enum class Framing { kDatagram, kStream };

struct ParseOptions {
  Limits limits;
  Framing framing = Framing::kDatagram;
};

// Parses one message from `input` into `out` (cleared first). On success `out` borrows
// `input`. Bytes after the body that Content-Length announced are ignored (RFC 4475 dblreq);
// a body shorter than Content-Length is an error (kBadContentLength).
//
// Beyond the grammar, it checks what every receiver must (RFC 3261 §8.2.2, §16.3):
// mandatory headers (Via, From, To, Call-ID, CSeq), single-valued headers not repeated,
// CSeq method equal to the request method, SIP/2.0 only (kBadVersion so a server can send
// 505), status code 100..699, scalar ranges (CSeq ≤ 2^32-1, Max-Forwards ≤ 255).
Result<void> parse(std::string_view input, Message& out, const ParseOptions& options = {});

// Stream framing (RFC 3261 §18.3): given the bytes buffered on a TCP/TLS connection, returns
// the length of the first complete message, std::nullopt if more bytes are needed, or an Error
// (header section or announced length over the limit, missing or malformed Content-Length).
// Leading CRLFs (keep-alives, RFC 5626 §3.5.1) are not part of a message: callers skip them
// first with skip_keepalive().
Result<std::optional<std::size_t>> frame_length(std::string_view buffered, const Limits& limits = {});

// Number of leading CR/LF bytes (stream keep-alives) at the front of `buffered`.
std::size_t skip_keepalive(std::string_view buffered);

}  // namespace sip
