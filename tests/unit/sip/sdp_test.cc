#include "sip/sdp.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace sip {
namespace {

// An offer as baresip sends it with mediaenc=srtp-mand (SDES keys, RFC 4568).
constexpr std::string_view kBaresipSrtp =
    "v=0\r\n"
    "o=- 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 10000 RTP/SAVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
    "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n";

constexpr std::string_view kPlainRtp =
    "v=0\r\n"
    "o=- 1 1 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 10000 RTP/AVP 0 8\r\n"
    "a=rtpmap:0 PCMU/8000\r\n";

constexpr std::string_view kHead =
    "v=0\r\n"
    "o=- 1 1 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n";

constexpr std::string_view kCrypto =
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";

std::string sdp(std::string_view rest) {
  return std::string(kHead).append(rest);
}

// The same text with every CRLF replaced by LF.
std::string lf_only(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c != '\r') out.push_back(c);
  }
  return out;
}

TEST(SdpTest, BaresipSrtpOffer) {
  EXPECT_TRUE(sdp_offers_only_srtp(kBaresipSrtp));
  EXPECT_TRUE(sdp_has_media(kBaresipSrtp));
}

TEST(SdpTest, PlainRtpOffer) {
  EXPECT_FALSE(sdp_offers_only_srtp(kPlainRtp));
  EXPECT_TRUE(sdp_has_media(kPlainRtp));
}

TEST(SdpTest, SavpWithoutCryptoIsNotSrtp) {
  EXPECT_FALSE(sdp_offers_only_srtp(sdp("m=audio 10000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n")));
}

TEST(SdpTest, SrtpAudioWithPlainVideo) {
  EXPECT_FALSE(sdp_offers_only_srtp(sdp(std::string("m=audio 10000 RTP/SAVP 0\r\n")
                                            .append(kCrypto)
                                            .append("m=video 10002 RTP/AVP 96\r\n"
                                                    "a=rtpmap:96 H264/90000\r\n"))));
}

// A crypto line of the audio section does not cover the video section after it.
TEST(SdpTest, CryptoBelongsToItsOwnSection) {
  EXPECT_FALSE(sdp_offers_only_srtp(sdp(std::string("m=audio 10000 RTP/SAVP 0\r\n")
                                            .append(kCrypto)
                                            .append("m=video 10002 RTP/SAVP 96\r\n"))));
  EXPECT_TRUE(sdp_offers_only_srtp(sdp(std::string("m=audio 10000 RTP/SAVP 0\r\n")
                                           .append(kCrypto)
                                           .append("m=video 10002 RTP/SAVP 96\r\n")
                                           .append(kCrypto))));
}

// RFC 3264 §6: a rejected (port 0) stream carries no media, whatever its profile.
TEST(SdpTest, PortZeroMediaIsIgnored) {
  EXPECT_TRUE(sdp_offers_only_srtp(sdp(std::string("m=audio 10000 RTP/SAVP 0\r\n")
                                           .append(kCrypto)
                                           .append("m=video 0 RTP/AVP 96\r\n"))));
  EXPECT_FALSE(sdp_offers_only_srtp(sdp(std::string("m=audio 0 RTP/SAVP 0\r\n").append(kCrypto))));
  EXPECT_FALSE(sdp_offers_only_srtp(sdp("m=audio 0 RTP/AVP 0\r\n")));
}

TEST(SdpTest, SessionLevelCrypto) {
  EXPECT_TRUE(sdp_offers_only_srtp(
      std::string(kHead).append(kCrypto).append("m=audio 10000 RTP/SAVP 0\r\n")));
  // ...but it does not make plain RTP media secure.
  EXPECT_FALSE(sdp_offers_only_srtp(
      std::string(kHead).append(kCrypto).append("m=audio 10000 RTP/AVP 0\r\n")));
}

TEST(SdpTest, Savpf) {
  EXPECT_TRUE(sdp_offers_only_srtp(sdp(std::string("m=audio 10000 RTP/SAVPF 111\r\n")
                                           .append("a=rtpmap:111 opus/48000/2\r\n")
                                           .append(kCrypto))));
}

// DTLS-SRTP: the keys are in the handshake, not the SDP.
TEST(SdpTest, DtlsSrtpProfilesAreNotAccepted) {
  EXPECT_FALSE(sdp_offers_only_srtp(sdp(std::string("m=audio 10000 UDP/TLS/RTP/SAVP 0\r\n")
                                            .append("a=fingerprint:sha-256 AB:CD\r\n")
                                            .append(kCrypto))));
  EXPECT_FALSE(sdp_offers_only_srtp(sdp("m=audio 10000 UDP/TLS/RTP/SAVPF 111\r\n")));
}

TEST(SdpTest, LfOnlyLineEnds) {
  EXPECT_TRUE(sdp_offers_only_srtp(lf_only(kBaresipSrtp)));
  EXPECT_FALSE(sdp_offers_only_srtp(lf_only(kPlainRtp)));
  EXPECT_TRUE(sdp_has_media(lf_only(kPlainRtp)));
}

TEST(SdpTest, LastLineWithoutLineEnd) {
  std::string body = sdp("m=audio 10000 RTP/SAVP 0\r\n").append(kCrypto);
  body.resize(body.size() - 2);
  EXPECT_TRUE(sdp_offers_only_srtp(body));
}

TEST(SdpTest, PortCount) {
  EXPECT_TRUE(
      sdp_offers_only_srtp(sdp(std::string("m=audio 10000/2 RTP/SAVP 0\r\n").append(kCrypto))));
}

TEST(SdpTest, EmptyBody) {
  EXPECT_FALSE(sdp_offers_only_srtp(""));
  EXPECT_FALSE(sdp_has_media(""));
  EXPECT_FALSE(sdp_offers_only_srtp("\r\n"));
}

TEST(SdpTest, NoMedia) {
  EXPECT_FALSE(sdp_offers_only_srtp(sdp("")));
  EXPECT_FALSE(sdp_offers_only_srtp(std::string(kHead).append(kCrypto)));
  EXPECT_FALSE(sdp_has_media(kHead));
}

TEST(SdpTest, Garbage) {
  EXPECT_FALSE(sdp_offers_only_srtp("hello world"));
  EXPECT_FALSE(sdp_offers_only_srtp(std::string_view("\0\0\0\0", 4)));
  EXPECT_FALSE(sdp_has_media("hello world"));
  // A valid-looking offer that does not start with v=.
  EXPECT_FALSE(sdp_offers_only_srtp(std::string("m=audio 10000 RTP/SAVP 0\r\n").append(kCrypto)));
  // A line that is not type=value, a control character, a blank line in the middle.
  EXPECT_FALSE(sdp_offers_only_srtp(std::string(kBaresipSrtp).append("not sdp\r\n")));
  EXPECT_FALSE(sdp_offers_only_srtp(std::string(kBaresipSrtp).append("a=x\x01y\r\n")));
  EXPECT_FALSE(sdp_offers_only_srtp(std::string(kBaresipSrtp).append("\r\na=sendrecv\r\n")));
}

TEST(SdpTest, MalformedMediaLine) {
  for (std::string_view m : {"m=audio\r\n", "m=audio 10000\r\n", "m=audio x RTP/SAVP 0\r\n",
                             "m=audio 70000 RTP/SAVP 0\r\n", "m=audio 10000/ RTP/SAVP 0\r\n",
                             "m=audio -1 RTP/SAVP 0\r\n", "m= 10000 RTP/SAVP 0\r\n"}) {
    EXPECT_FALSE(sdp_offers_only_srtp(sdp(std::string(m).append(kCrypto)))) << m;
  }
}

TEST(SdpTest, MalformedCryptoAttribute) {
  for (std::string_view a :
       {"a=crypto:\r\n", "a=crypto:1\r\n", "a=crypto:1 AES_CM_128_HMAC_SHA1_80\r\n",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\r\n",
        "a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:abc\r\n",
        "a=cryptox:1 AES_CM_128_HMAC_SHA1_80 inline:abc\r\n"}) {
    EXPECT_FALSE(sdp_offers_only_srtp(sdp(std::string("m=audio 10000 RTP/SAVP 0\r\n").append(a))))
        << a;
  }
}

}  // namespace
}  // namespace sip
