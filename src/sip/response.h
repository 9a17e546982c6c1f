// The one place that builds responses and the ACK for non-2xx responses (RFC 3261 §8.2.6,
// §17.1.1.3). Everything the server sends that it did not forward is built here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sip/message.h"

namespace sip {

// The standard reason phrase for a code ("Not Found"); "Unknown" for codes without one.
std::string_view reason_phrase(int code);

// Where the request really came from, for the top Via (RFC 3261 §18.2.1, RFC 3581):
// `received` is added when it differs from the Via host, and a bare `rport` gets the port.
struct ReceivedFrom {
  std::string_view address;  // "192.0.2.1" or "2001:db8::1" (no brackets)
  std::uint16_t port = 0;
};

// Appends `via` (one Via value) with RFC 3261 §18.2.1 received and RFC 3581 rport filled in
// from `from`, any it carried replaced: the top Via of a response built here, and the sender's
// Via a proxy forwards (§16.6), so that the responses it relays carry them too.
void append_via_with_received(std::string& out, const Via& via, const ReceivedFrom& from);

struct ResponseSpec {
  int code = 200;
  std::string_view reason;  // empty: reason_phrase(code)
  std::string_view to_tag;  // added to To when the request's To has no tag (not for 100)
  // Extra headers, written after the copied ones as "Name: value".
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view content_type;  // with body
  std::string_view body;
};

// Builds a response to `request`: status line, the request's Via headers in order (top one
// with received/rport per `from`, when given), From, To (+tag), Call-ID, CSeq, then
// `spec.headers`, then Content-Length (and Content-Type, body). Server header is the caller's
// choice through spec.headers. `request` must be a parsed request.
std::string build_response(const Message& request, const ResponseSpec& spec,
                           const ReceivedFrom* from = nullptr);

// The same response in two steps, for an answer decided after the request is gone (a REGISTER
// answered once its binding is durable): response_head() takes what the response copies from
// the request, the Via, From, To (+ `to_tag` when the request's To has none), Call-ID and
// CSeq lines, while the request is at hand; build_response_from_head() adds the status line,
// spec.headers, Content-Length and body (spec.to_tag plays no part: the head has the tag).
// Byte for byte what build_response() makes.
std::string response_head(const Message& request, std::string_view to_tag,
                          const ReceivedFrom* from = nullptr);
std::string build_response_from_head(std::string_view head, const ResponseSpec& spec);

// A response to a request that failed to parse (400, or 505 for a bad version): the Via,
// From, To, Call-ID and CSeq lines found in `raw` are copied verbatim (they could not be
// trusted enough to parse), a To tag is added when the To line seems to have none, and
// `warning` becomes a Warning header (RFC 3261 §20.43, code 399) so the sender's admin
// can see what was wrong. Returns an empty string when there is no Via line to answer along.
std::string build_response_to_unparsed(std::string_view raw, int code, std::string_view to_tag,
                                       std::string_view warning);

// RFC 3261 §17.1.1.3: the ACK a client INVITE transaction sends for a non-2xx final response:
// same Request-URI, Call-ID, From, CSeq number and top Via as the INVITE, To from the response,
// the INVITE's Route headers, Max-Forwards 70, Content-Length 0.
std::string build_ack(const Message& invite, const Message& response);

// RFC 3261 §9.1: a CANCEL for a client INVITE transaction: Request-URI, Call-ID, From, To and
// CSeq number of the INVITE, the INVITE's top Via only, its Route headers.
std::string build_cancel(const Message& invite);

}  // namespace sip
