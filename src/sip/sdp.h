// The little the proxy reads from SDP (RFC 4566): whether an offer protects its media with
// SRTP (RFC 4568 SDES: RTP/SAVP or RTP/SAVPF with a=crypto). SDP passes through untouched.
#pragma once

#include <string_view>

namespace sip {

// True when `body` (an application/sdp body) has at least one m= line with a non-zero port
// and every m= line with a non-zero port uses RTP/SAVP or RTP/SAVPF and carries an a=crypto
// attribute (at media level, or at session level before the first m=). Lines may end in CRLF
// or LF. False for an empty or unparsable body, for RTP/AVP media, and for DTLS-SRTP profiles
// (UDP/TLS/RTP/SAVP), which this server cannot check for keys.
bool sdp_offers_only_srtp(std::string_view body);

// True when the body has any m= line (is an SDP offer or answer worth checking).
bool sdp_has_media(std::string_view body);

}  // namespace sip
