// libFuzzer target for the SIP parser: the input is one datagram, the bytes buffered on a
// stream, and a URI. Beyond "no crash, no sanitizer report", it checks the parser's contract
// (parser.h, result.h): every view a successful parse hands out lies inside the input, an
// error names its reason, and a parsed message reparses to the same message.
//
// Run it with scripts/fuzz.sh.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "sip/editor.h"
#include "sip/message.h"
#include "sip/params.h"
#include "sip/parser.h"
#include "sip/result.h"
#include "sip/uri.h"

namespace {

// Sink for the fields we read, so the compiler keeps the reads.
volatile std::size_t g_sink = 0;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_parser: contract violated: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

bool inside(std::string_view outer, std::string_view inner) {
  if (inner.empty()) return true;
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// Reading every byte of a view lets AddressSanitizer prove it lies in live memory.
std::size_t read_all(std::string_view s) {
  std::size_t sum = s.size();
  for (char c : s) sum += static_cast<unsigned char>(c);
  return sum;
}

std::size_t touch(const sip::ParamList& params) {
  std::size_t sum = read_all(params.raw());
  for (const sip::Param& p : params) sum += read_all(p.name) + read_all(p.value) + p.has_value;
  // Lookups walk the list again, by a different path.
  sum += params.has("tag") + params.has("branch") + params.has("lr");
  if (auto q = params.find("q")) sum += read_all(*q);
  return sum;
}

std::size_t touch(const sip::Uri& uri) {
  std::size_t sum = read_all(uri.text) + read_all(uri.scheme_text) + read_all(uri.user) +
                    read_all(uri.password) + read_all(uri.host) + read_all(uri.headers) +
                    read_all(uri.opaque) + uri.port + static_cast<std::size_t>(uri.scheme) +
                    static_cast<std::size_t>(uri.host_kind) + uri.has_user + uri.has_password +
                    uri.has_port + uri.has_headers + touch(uri.params);
  sum += sip::unescape(uri.user).size() + sip::unescape(uri.password).size();
  // §19.1.4 comparison is reflexive whatever the URI holds.
  check(sip::uri_equal(uri, uri), "uri_equal(u, u) is false");
  return sum;
}

std::size_t touch(const sip::NameAddr& na) {
  return read_all(na.text) + read_all(na.display_name) + sip::unquote(na.display_name).size() +
         touch(na.uri) + touch(na.params) + na.angle_brackets;
}

std::size_t touch(const sip::AuthField& a) {
  std::size_t sum = read_all(a.text) + read_all(a.scheme) + read_all(a.params) +
                    read_all(a.username) + read_all(a.realm) + read_all(a.nonce) + read_all(a.uri) +
                    read_all(a.response) + read_all(a.algorithm) + read_all(a.cnonce) +
                    read_all(a.opaque) + read_all(a.qop) + read_all(a.nc) + read_all(a.domain) +
                    read_all(a.stale) + a.userhash + a.is_digest();
  return sum;
}

std::size_t touch(const sip::Message& m) {
  std::size_t sum = m.is_request() + read_all(m.start_line) + static_cast<std::size_t>(m.method) +
                    read_all(m.method_text) + read_all(sip::to_string(m.method)) +
                    static_cast<std::size_t>(m.status_code) + read_all(m.reason);
  if (m.is_request()) sum += touch(m.request_uri);
  for (const sip::HeaderField& h : m.headers) {
    sum += static_cast<std::size_t>(h.id) + read_all(h.name) + read_all(h.value) +
           read_all(h.line) + read_all(sip::canonical_name(h.id));
    check(sip::header_id(h.name) == h.id, "header_id(name) differs from the parsed id");
    check(m.find(h.name) != nullptr && m.find(h.id) != nullptr, "find() misses a header");
    check(m.count(h.id) > 0, "count() misses a header");
  }
  for (const sip::Via& v : m.via) {
    sum += read_all(v.text) + read_all(v.transport) + read_all(v.host) +
           static_cast<std::size_t>(v.host_kind) + v.port + v.has_port + touch(v.params) +
           read_all(v.branch) + read_all(v.received) + read_all(v.maddr) + v.has_rport + v.rport +
           v.rfc3261_branch();
  }
  if (m.has_from) sum += touch(m.from);
  if (m.has_to) sum += touch(m.to);
  sum += read_all(m.call_id);
  if (m.has_cseq) {
    sum += m.cseq.number + static_cast<std::size_t>(m.cseq.method) + read_all(m.cseq.method_text);
  }
  sum += static_cast<std::size_t>(m.max_forwards) + m.contact_star;
  for (const auto* list : {&m.contact, &m.route, &m.record_route, &m.p_asserted_identity}) {
    for (const sip::NameAddr& na : *list) sum += touch(na);
  }
  sum += static_cast<std::size_t>(m.expires + m.min_expires + m.content_length);
  sum += read_all(m.content_type) + read_all(m.user_agent) + read_all(m.server);
  for (const auto* list :
       {&m.authorization, &m.proxy_authorization, &m.www_authenticate, &m.proxy_authenticate}) {
    for (const sip::AuthField& a : *list) sum += touch(a);
  }
  for (const auto* list : {&m.require, &m.proxy_require, &m.supported, &m.unsupported, &m.allow}) {
    for (std::string_view tag : *list) sum += read_all(tag);
  }
  return sum + read_all(m.body) + read_all(m.raw);
}

// The contract of one finished parse of `input`.
void check_parse(const sip::Result<void>& result, const sip::Message& m, std::string_view input) {
  if (!result.ok()) {
    const sip::Error& e = result.error();
    check(e.what != nullptr, "Error::what is null");
    check(!e.describe().empty(), "Error::describe() is empty");
    check(!sip::to_string(e.code).empty(), "to_string(ErrorCode) is empty");
    check(inside(input, e.where), "Error::where points outside the input");
    return;
  }
  check(inside(input, m.raw) && !m.raw.empty(), "raw outside the input");
  // Only CR/LF may precede the start line (RFC 3261 §7.5).
  for (const char* p = input.data(); p < m.raw.data(); ++p) {
    check(*p == '\r' || *p == '\n', "raw does not start at the start line");
  }
  check(inside(m.raw, m.body), "body outside raw");
  check(inside(m.raw, m.start_line), "start_line outside raw");
  check(!m.via.empty(), "parsed message without Via");
  check(m.has_from && m.has_to && m.has_cseq && !m.call_id.empty(),
        "parsed message without a mandatory header");
  if (m.content_length >= 0) {
    check(m.body.size() == static_cast<std::size_t>(m.content_length),
          "body size differs from Content-Length");
  }
  if (m.is_request()) {
    check(m.cseq.method_text == m.method_text, "CSeq method differs from the request method");
  } else {
    check(m.status_code >= 100 && m.status_code <= 699, "status code out of range");
  }
  check(m.max_forwards >= -1 && m.max_forwards <= 255, "Max-Forwards out of range");
  for (const sip::HeaderField& h : m.headers) {
    check(inside(m.raw, h.line), "header line outside raw");
  }
  g_sink = g_sink + touch(m);
}

// A copy of `bytes` in a heap block of exactly its size, so AddressSanitizer catches overreads.
struct ExactCopy {
  explicit ExactCopy(std::string_view bytes) : size(bytes.size()), data(new char[bytes.size()]) {
    if (size > 0) std::memcpy(data.get(), bytes.data(), size);
  }
  std::string_view view() const { return {data.get(), size}; }
  std::size_t size;
  std::unique_ptr<char[]> data;
};

// Reused across inputs, as a worker reuses its Message: this also exercises clear().
sip::Message& reused_message() {
  static sip::Message message;
  return message;
}

void fuzz_datagram(std::string_view input) {
  sip::Message& m = reused_message();
  const sip::Result<void> result = sip::parse(input, m);
  check_parse(result, m, input);
  if (!result.ok()) return;

  // The message alone (without trailing bytes) parses to the same message.
  const std::size_t raw_size = m.raw.size();
  const std::size_t via_count = m.via.size();
  const std::size_t header_count = m.headers.size();
  const ExactCopy alone(m.raw);
  sip::Message again;
  const sip::Result<void> reparsed = sip::parse(alone.view(), again);
  check(reparsed.ok(), "the parsed message's raw bytes do not parse again");
  check_parse(reparsed, again, alone.view());
  check(again.raw.size() == raw_size, "reparse yields a different raw size");
  check(again.via.size() == via_count, "reparse yields a different Via count");
  check(again.headers.size() == header_count, "reparse yields a different header count");

  // What a proxy does to every response (RFC 3261 §16.7 step 3) and request (§16.6 step 8):
  // the edited bytes must parse, with the new Via on top and the body untouched.
  std::string edited;
  {
    sip::MessageEditor editor(m);
    check(editor.pop_via(), "pop_via() false on a message with a Via");
    editor.push_via("SIP/2.0/UDP fuzz.example.com;branch=z9hG4bKfuzz");
    edited = editor.serialize();
  }
  const ExactCopy edited_copy(edited);
  const sip::Result<void> edited_result = sip::parse(edited_copy.view(), again);
  check(edited_result.ok(), "the edited message does not parse");
  check_parse(edited_result, again, edited_copy.view());
  check(again.via.size() == via_count, "pop_via + push_via changed the Via count");
  check(again.via[0].branch == "z9hG4bKfuzz", "push_via did not put the new Via on top");
  check(again.body == m.body, "editing Via changed the body");
}

void fuzz_stream(std::string_view buffered) {
  const std::size_t skip = sip::skip_keepalive(buffered);
  check(skip <= buffered.size(), "skip_keepalive past the end");
  buffered.remove_prefix(skip);

  const auto framed = sip::frame_length(buffered);
  if (!framed.ok()) {
    check(!framed.error().describe().empty(), "frame_length error without a description");
    check(inside(buffered, framed.error().where), "frame_length Error::where outside the input");
    return;
  }
  if (!framed->has_value()) return;  // waits for more bytes
  const std::size_t length = **framed;
  check(length > 0 && length <= buffered.size(), "frame_length out of range");

  const ExactCopy message(buffered.substr(0, length));
  sip::ParseOptions options;
  options.framing = sip::Framing::kStream;
  sip::Message& m = reused_message();
  const sip::Result<void> result = sip::parse(message.view(), m, options);
  check_parse(result, m, message.view());
  if (result.ok()) check(m.raw.size() == length, "stream message shorter than its frame");
}

void fuzz_uri(std::string_view text) {
  const auto uri = sip::parse_uri(text);
  if (!uri.ok()) {
    check(!uri.error().describe().empty(), "parse_uri error without a description");
    check(inside(text, uri.error().where), "parse_uri Error::where outside the input");
    return;
  }
  check(uri->text.data() == text.data() && uri->text.size() == text.size(),
        "Uri::text is not the whole input");
  g_sink = g_sink + touch(*uri);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // libFuzzer hands over a heap block of exactly `size` bytes: overreads are caught as is.
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  fuzz_datagram(input);
  fuzz_stream(input);
  fuzz_uri(input);
  return 0;
}
