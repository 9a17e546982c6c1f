#include "sip/response.h"

#include <array>
#include <charconv>

namespace sip {
namespace {

struct Reason {
  int code;
  std::string_view text;
};
constexpr std::array<Reason, 51> kReasons{{
    {100, "Trying"},
    {180, "Ringing"},
    {181, "Call Is Being Forwarded"},
    {182, "Queued"},
    {183, "Session Progress"},
    {200, "OK"},
    {202, "Accepted"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Moved Temporarily"},
    {305, "Use Proxy"},
    {380, "Alternative Service"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {410, "Gone"},
    {413, "Request Entity Too Large"},
    {414, "Request-URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Unsupported URI Scheme"},
    {420, "Bad Extension"},
    {421, "Extension Required"},
    {423, "Interval Too Brief"},
    {429, "Too Many Requests"},
    {480, "Temporarily Unavailable"},
    {481, "Call/Transaction Does Not Exist"},
    {482, "Loop Detected"},
    {483, "Too Many Hops"},
    {484, "Address Incomplete"},
    {485, "Ambiguous"},
    {486, "Busy Here"},
    {487, "Request Terminated"},
    {488, "Not Acceptable Here"},
    {491, "Request Pending"},
    {493, "Undecipherable"},
    {500, "Server Internal Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Server Time-out"},
    {505, "Version Not Supported"},
    {513, "Message Too Large"},
    {600, "Busy Everywhere"},
    {603, "Decline"},
    {604, "Does Not Exist Anywhere"},
}};

void append_number(std::string& out, std::uint64_t n) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

void append_via_with_received(std::string& out, const Via& via, const ReceivedFrom& from) {
  // Copy the element, dropping any received/rport it carries; they are re-added below.
  const std::string_view text = via.text;
  const std::size_t params_at =
      via.params.raw().empty() ? text.size()
                               : static_cast<std::size_t>(via.params.raw().data() - text.data());
  out.append(text.substr(0, params_at));
  for (const Param& p : via.params) {
    if (iequals(p.name, "received") || iequals(p.name, "rport")) continue;
    out.push_back(';');
    out.append(p.name);
    if (p.has_value) out.append("=").append(p.value);
  }
  if (via.host != from.address) out.append(";received=").append(from.address);
  if (via.has_rport) {
    out.append(";rport=");
    append_number(out, from.port);
  }
}

namespace {

// The top Via with received and rport filled in.
void append_top_via(std::string& out, const Via& via, const ReceivedFrom& from) {
  out.append("Via: ");
  append_via_with_received(out, via, from);
  out.append("\r\n");
}

}  // namespace

std::string_view reason_phrase(int code) {
  for (const Reason& r : kReasons) {
    if (r.code == code) return r.text;
  }
  return "Unknown";
}

namespace {

void append_status_line(std::string& out, const ResponseSpec& spec) {
  out.append("SIP/2.0 ");
  append_number(out, static_cast<std::uint64_t>(spec.code));
  out.push_back(' ');
  out.append(spec.reason.empty() ? reason_phrase(spec.code) : spec.reason);
  out.append("\r\n");
}

// RFC 3261 §8.2.6.2: Via, From, To (+ `to_tag` when it has none), Call-ID and CSeq copied;
// Via values in order.
void append_head(std::string& out, const Message& request, std::string_view to_tag,
                 const ReceivedFrom* from) {
  bool first_via = true;
  for (const Via& via : request.via) {
    if (first_via && from != nullptr) {
      append_top_via(out, via, *from);
    } else {
      append_header(out, "Via", via.text);
    }
    first_via = false;
  }
  append_header(out, "From", request.from.text);
  out.append("To: ").append(request.to.text);
  if (!to_tag.empty() && !request.to.params.has("tag")) out.append(";tag=").append(to_tag);
  out.append("\r\n");
  append_header(out, "Call-ID", request.call_id);
  out.append("CSeq: ");
  append_number(out, request.cseq.number);
  out.push_back(' ');
  out.append(request.cseq.method_text).append("\r\n");
}

// The spec's headers, Content-Type and Content-Length, and the body.
void append_tail(std::string& out, const ResponseSpec& spec) {
  for (const auto& [name, value] : spec.headers) append_header(out, name, value);
  if (!spec.body.empty()) append_header(out, "Content-Type", spec.content_type);
  out.append("Content-Length: ");
  append_number(out, spec.body.size());
  out.append("\r\n\r\n");
  out.append(spec.body);
}

}  // namespace

std::string build_response(const Message& request, const ResponseSpec& spec,
                           const ReceivedFrom* from) {
  std::string out;
  out.reserve(512 + request.headers.size() * 16 + spec.body.size());
  append_status_line(out, spec);
  append_head(out, request, spec.code > 100 ? spec.to_tag : std::string_view{}, from);
  append_tail(out, spec);
  return out;
}

std::string response_head(const Message& request, std::string_view to_tag,
                          const ReceivedFrom* from) {
  std::string out;
  out.reserve(256 + request.headers.size() * 16);
  append_head(out, request, to_tag, from);
  return out;
}

std::string build_response_from_head(std::string_view head, const ResponseSpec& spec) {
  std::string out;
  out.reserve(head.size() + 256 + spec.body.size());
  append_status_line(out, spec);
  out.append(head);
  append_tail(out, spec);
  return out;
}

std::string build_response_to_unparsed(std::string_view raw, int code, std::string_view to_tag,
                                       std::string_view warning) {
  std::string copied;
  bool has_via = false;
  std::size_t pos = raw.find('\n');
  while (pos != std::string_view::npos && pos + 1 < raw.size()) {
    const std::size_t start = pos + 1;
    std::size_t end = raw.find('\n', start);
    // Include folded continuation lines.
    while (end != std::string_view::npos && end + 1 < raw.size() &&
           (raw[end + 1] == ' ' || raw[end + 1] == '\t')) {
      end = raw.find('\n', end + 1);
    }
    std::string_view line = raw.substr(start, end == std::string_view::npos ? raw.size() - start
                                                                             : end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the header section
    pos = end;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    const HeaderId id = header_id(name);
    if (id != HeaderId::kVia && id != HeaderId::kFrom && id != HeaderId::kTo &&
        id != HeaderId::kCallId && id != HeaderId::kCSeq) {
      continue;
    }
    // Control characters would let a crafted request inject headers into our answer.
    bool clean = true;
    for (char c : line) clean = clean && (static_cast<unsigned char>(c) >= 0x20 || c == '\t');
    if (!clean) continue;
    has_via = has_via || id == HeaderId::kVia;
    copied.append(line);
    if (id == HeaderId::kTo && code != 100 && !to_tag.empty() &&
        line.find(";tag=") == std::string_view::npos) {
      copied.append(";tag=").append(to_tag);
    }
    copied.append("\r\n");
  }
  if (!has_via) return {};
  std::string out = "SIP/2.0 ";
  append_number(out, static_cast<std::uint64_t>(code));
  out.push_back(' ');
  out.append(reason_phrase(code)).append("\r\n").append(copied);
  if (!warning.empty()) {
    out.append("Warning: 399 sipwarden \"");
    for (char c : warning) out.push_back(c == '"' || c == '\\' ? '\'' : c);
    out.append("\"\r\n");
  }
  out.append("Content-Length: 0\r\n\r\n");
  return out;
}

namespace {

// The request line, top Via, From, Call-ID and Route headers shared by ACK and CANCEL
// (RFC 3261 §9.1, §17.1.1.3); `to` is the To header value, `method` the new method.
std::string build_in_transaction(const Message& invite, std::string_view method,
                                 std::string_view to) {
  std::string out;
  out.reserve(512);
  out.append(method).push_back(' ');
  out.append(invite.request_uri.text).append(" SIP/2.0\r\n");
  if (!invite.via.empty()) append_header(out, "Via", invite.via.front().text);
  append_header(out, "Max-Forwards", "70");
  append_header(out, "From", invite.from.text);
  append_header(out, "To", to);
  append_header(out, "Call-ID", invite.call_id);
  out.append("CSeq: ");
  append_number(out, invite.cseq.number);
  out.push_back(' ');
  out.append(method).append("\r\n");
  for (const NameAddr& route : invite.route) append_header(out, "Route", route.text);
  out.append("Content-Length: 0\r\n\r\n");
  return out;
}

}  // namespace

std::string build_ack(const Message& invite, const Message& response) {
  return build_in_transaction(invite, "ACK", response.to.text);
}

std::string build_cancel(const Message& invite) {
  return build_in_transaction(invite, "CANCEL", invite.to.text);
}

}  // namespace sip
