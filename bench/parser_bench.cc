// Parser throughput on the two messages a registrar and a proxy see most: an authenticated
// REGISTER from a phone and an INVITE with SDP. One sip::Message is reused across iterations,
// as a worker does, so steady state allocates nothing.
//
// Target: >= 1,000,000 REGISTER parses per second on one core (release build, no sanitizers),
// for the typical ~500-byte REGISTER of BM_ParseRegister500.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <benchmark/benchmark.h>

#include "sip/message.h"
#include "sip/params.h"
#include "sip/parser.h"

namespace {

// What a softphone sends once challenged (RFC 3261 §10.2, RFC 5626 +sip.instance, RFC 3581
// rport, RFC 2617 Digest with qop=auth).
constexpr std::string_view kRegister =
    "REGISTER sip:sip.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.23:5060;rport;branch=z9hG4bK.Xp2bTx9Lq\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@sip.example.com>;tag=8f2Kq1Lx\r\n"
    "To: <sip:alice@sip.example.com>\r\n"
    "Call-ID: 5gHk2JpQzN7vR1aT@192.0.2.23\r\n"
    "CSeq: 21 REGISTER\r\n"
    "Contact: <sip:alice@192.0.2.23:5060>;expires=3600;"
    "+sip.instance=\"<urn:uuid:4f2a6c1e-8b3d-4e5f-9a7b-1c2d3e4f5a6b>\"\r\n"
    "Authorization: Digest username=\"alice\", realm=\"sip.example.com\", "
    "nonce=\"6f1a2b3c4d5e6f70\", uri=\"sip:sip.example.com\", "
    "response=\"0a4f113b8c2d5e6f7a8b9c0d1e2f3a4b\", algorithm=MD5, cnonce=\"a1b2c3d4\", "
    "qop=auth, nc=00000001, opaque=\"5ccc069c\"\r\n"
    "Expires: 3600\r\n"
    "User-Agent: Linphone/5.2.0\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY\r\n"
    "Supported: outbound, gruu\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

// The typical case: what a desk phone sends once challenged, about 500 bytes (547). Digest MD5
// with qop=auth, one Contact with expires, Expires, a short Allow, no body.
constexpr std::string_view kRegister500 =
    "REGISTER sip:pbx.lan SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.21:5060;branch=z9hG4bK5a1c;rport\r\n"
    "From: <sip:201@pbx.lan>;tag=7e2f\r\n"
    "To: <sip:201@pbx.lan>\r\n"
    "Call-ID: 3c8e1a7b@10.0.0.21\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Contact: <sip:201@10.0.0.21:5060>;expires=3600\r\n"
    "Authorization: Digest username=\"201\", realm=\"pbx.lan\", nonce=\"5f8a3c1e\", "
    "uri=\"sip:pbx.lan\", response=\"3b9a1f0c6d2e4a5b8c7d9e0f1a2b3c4d\", algorithm=MD5, "
    "cnonce=\"0a4f\", qop=auth, nc=00000001\r\n"
    "Max-Forwards: 70\r\n"
    "User-Agent: Yealink SIP-T21P\r\n"
    "Expires: 3600\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

constexpr std::string_view kSdp =
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.23\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.23\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0 8 9 18 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n";

// An INVITE as a proxy forwards it: two Vias, a Record-Route, SDP offer.
std::string make_invite() {
  std::string m =
      "INVITE sip:bob@example.org SIP/2.0\r\n"
      "Via: SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bK776asdhds.1\r\n"
      "Via: SIP/2.0/TCP 192.0.2.23:5060;received=198.51.100.7;rport=40312;"
      "branch=z9hG4bKnashds8\r\n"
      "Max-Forwards: 69\r\n"
      "Record-Route: <sip:proxy.example.com;lr>\r\n"
      "To: \"Bob\" <sip:bob@example.org>\r\n"
      "From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n"
      "Call-ID: a84b4c76e66710@192.0.2.23\r\n"
      "CSeq: 314159 INVITE\r\n"
      "Contact: <sip:alice@192.0.2.23:5060;transport=tcp>;+sip.instance="
      "\"<urn:uuid:4f2a6c1e-8b3d-4e5f-9a7b-1c2d3e4f5a6b>\"\r\n"
      "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, "
      "UPDATE\r\n"
      "Supported: replaces, timer, 100rel, outbound\r\n"
      "Session-Expires: 1800\r\n"
      "User-Agent: Zoiper rv2.10.18.3\r\n"
      "Content-Type: application/sdp\r\n"
      "Content-Length: ";
  m += std::to_string(kSdp.size());
  m += "\r\n\r\n";
  m += kSdp;
  return m;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "parser_bench: setup check failed: %s\n", what);
  std::abort();
}

void require(bool ok, const char* what) {
  if (!ok) die(what);
}

void parse_or_die(std::string_view input, sip::Message& msg) {
  const sip::Result<void> result = sip::parse(input, msg);
  if (!result.ok()) {
    std::fprintf(stderr, "parser_bench: parse failed: %s\n", result.error().describe().c_str());
    std::abort();
  }
}

// Proves once, before timing, that every header a registrar reads is parsed, not skipped.
void verify_register(std::string_view input, sip::Message& msg) {
  parse_or_die(input, msg);
  require(msg.method == sip::Method::kRegister, "method");
  require(msg.via.size() == 1 && msg.via[0].has_rport && msg.via[0].rfc3261_branch(), "Via");
  require(msg.max_forwards == 70, "Max-Forwards");
  require(msg.from.params.find("tag") == "8f2Kq1Lx", "From tag");
  require(msg.to.uri.user == "alice" && msg.to.uri.host == "sip.example.com", "To");
  require(!msg.call_id.empty(), "Call-ID");
  require(msg.cseq.number == 21 && msg.cseq.method == sip::Method::kRegister, "CSeq");
  require(msg.contact.size() == 1 && msg.contact[0].params.find("expires") == "3600" &&
              msg.contact[0].params.has("+sip.instance"),
          "Contact");
  require(msg.authorization.size() == 1, "Authorization");
  const sip::AuthField& auth = msg.authorization[0];
  require(auth.is_digest() && auth.username == "alice" && auth.realm == "sip.example.com" &&
              auth.nonce == "6f1a2b3c4d5e6f70" && auth.uri == "sip:sip.example.com" &&
              auth.response == "0a4f113b8c2d5e6f7a8b9c0d1e2f3a4b" && auth.algorithm == "MD5" &&
              auth.cnonce == "a1b2c3d4" && auth.qop == "auth" && auth.nc == "00000001" &&
              auth.opaque == "5ccc069c",
          "Digest parameters");
  require(msg.expires == 3600, "Expires");
  require(msg.user_agent == "Linphone/5.2.0", "User-Agent");
  require(msg.allow.size() == 6 && msg.supported.size() == 2, "Allow / Supported");
  require(msg.content_length == 0 && msg.body.empty(), "Content-Length");
  require(msg.raw.size() == input.size(), "raw");
}

void verify_register500(std::string_view input, sip::Message& msg) {
  parse_or_die(input, msg);
  require(msg.method == sip::Method::kRegister, "method");
  require(msg.request_uri.host == "pbx.lan", "Request-URI");
  require(msg.via.size() == 1 && msg.via[0].has_rport && msg.via[0].rfc3261_branch() &&
              msg.via[0].host == "10.0.0.21" && msg.via[0].port == 5060,
          "Via");
  require(msg.max_forwards == 70, "Max-Forwards");
  require(msg.from.params.find("tag") == "7e2f", "From tag");
  require(msg.to.uri.user == "201" && msg.to.uri.host == "pbx.lan", "To");
  require(msg.call_id == "3c8e1a7b@10.0.0.21", "Call-ID");
  require(msg.cseq.number == 2 && msg.cseq.method == sip::Method::kRegister, "CSeq");
  require(msg.contact.size() == 1 && msg.contact[0].uri.port == 5060 &&
              msg.contact[0].params.find("expires") == "3600",
          "Contact");
  require(msg.authorization.size() == 1, "Authorization");
  const sip::AuthField& auth = msg.authorization[0];
  require(auth.is_digest() && auth.username == "201" && auth.realm == "pbx.lan" &&
              auth.nonce == "5f8a3c1e" && auth.uri == "sip:pbx.lan" &&
              auth.response == "3b9a1f0c6d2e4a5b8c7d9e0f1a2b3c4d" && auth.algorithm == "MD5" &&
              auth.cnonce == "0a4f" && auth.qop == "auth" && auth.nc == "00000001",
          "Digest parameters");
  require(msg.expires == 3600, "Expires");
  require(msg.user_agent == "Yealink SIP-T21P", "User-Agent");
  require(msg.allow.size() == 4, "Allow");
  require(msg.content_length == 0 && msg.body.empty(), "Content-Length");
  require(msg.raw.size() == input.size(), "raw");
}

void verify_invite(std::string_view input, sip::Message& msg) {
  parse_or_die(input, msg);
  require(msg.method == sip::Method::kInvite, "method");
  require(msg.via.size() == 2 && msg.via[1].received == "198.51.100.7", "Via");
  require(msg.record_route.size() == 1 && msg.record_route[0].uri.params.has("lr"), "Record-Route");
  require(msg.contact.size() == 1, "Contact");
  require(msg.allow.size() == 11 && msg.supported.size() == 4, "Allow / Supported");
  require(msg.content_type == "application/sdp", "Content-Type");
  require(msg.body == kSdp, "body");
}

// The timed loop shared by the REGISTER cases.
void parse_registers(benchmark::State& state, std::string_view message,
                     void (*verify)(std::string_view, sip::Message&)) {
  const std::string input(message);  // owned, like a receive buffer
  sip::Message msg;
  verify(input, msg);
  for (auto _ : state) {
    const sip::Result<void> result = sip::parse(input, msg);
    if (!result.ok()) {
      state.SkipWithError("parse failed");
      break;
    }
    // The fields a registrar reads for every REGISTER.
    benchmark::DoNotOptimize(msg.via[0].branch.data());
    benchmark::DoNotOptimize(msg.from.params.find("tag"));
    benchmark::DoNotOptimize(msg.to.uri.user.data());
    benchmark::DoNotOptimize(msg.call_id.data());
    benchmark::DoNotOptimize(msg.cseq.number);
    benchmark::DoNotOptimize(msg.contact[0].uri.host.data());
    benchmark::DoNotOptimize(msg.contact[0].params.find("expires"));
    benchmark::DoNotOptimize(msg.authorization[0].response.data());
    benchmark::DoNotOptimize(msg.authorization[0].nonce.data());
    benchmark::DoNotOptimize(msg.expires);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
  state.counters["message_bytes"] = static_cast<double>(input.size());
}

// The heavier REGISTER (754 bytes: GRUU instance id, a longer Authorization, Supported).
void BM_ParseRegister(benchmark::State& state) {
  parse_registers(state, kRegister, verify_register);
}
BENCHMARK(BM_ParseRegister);

// The typical one (547 bytes): what the >= 1,000,000 parses/s target is about.
void BM_ParseRegister500(benchmark::State& state) {
  parse_registers(state, kRegister500, verify_register500);
}
BENCHMARK(BM_ParseRegister500);

void BM_ParseInviteSdp(benchmark::State& state) {
  const std::string input = make_invite();
  sip::Message msg;
  verify_invite(input, msg);
  for (auto _ : state) {
    const sip::Result<void> result = sip::parse(input, msg);
    if (!result.ok()) {
      state.SkipWithError("parse failed");
      break;
    }
    // The fields a proxy reads to route and forward.
    benchmark::DoNotOptimize(msg.request_uri.host.data());
    benchmark::DoNotOptimize(msg.via[0].branch.data());
    benchmark::DoNotOptimize(msg.max_forwards);
    benchmark::DoNotOptimize(msg.record_route[0].uri.host.data());
    benchmark::DoNotOptimize(msg.contact[0].uri.host.data());
    benchmark::DoNotOptimize(msg.body.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
  state.counters["message_bytes"] = static_cast<double>(input.size());
}
BENCHMARK(BM_ParseInviteSdp);

}  // namespace

BENCHMARK_MAIN();
