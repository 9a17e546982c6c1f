// The TLS server context for SIP over TLS (RFC 3261 §26.2.1, RFC 5630; port 5061): TLS 1.2+
// with forward-secret AEAD suites only, the certificate chain and key from PEM files checked
// for the mistakes that make phones fail or make the server weak, and a self-signed
// certificate generated (and kept) when none is configured. docs/tls.md describes it for admins.
//
// Reload (SIGHUP): call load_tls_server() again and hand the new context to new connections;
// a connection holds its own shared_ptr to the context it started with, so nothing here
// changes under it.
#pragma once

// Boost 1.74's Asio needs <utility> before it under g++ 12 in C++20 mode (std::exchange).
#include <utility>

#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

struct x509_st;      // OpenSSL's X509
struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace transport {

// The [tls] settings of config::Config, plus the two server settings they depend on.
struct TlsSettings {
  std::filesystem::path certificate;  // PEM: server certificate first, then intermediates
  std::filesystem::path private_key;  // PEM, unencrypted; may be the same file as certificate
  std::filesystem::path client_ca;    // PEM CA certificates for client certificates
  std::filesystem::path data_dir;     // the self-signed certificate goes to <data_dir>/tls/
  bool verify_client = false;         // require a client certificate signed by client_ca
  std::string min_version = "1.2";    // "1.2" or "1.3"
  unsigned expiry_warning_days = 30;  // warn when the certificate expires within this many days
  std::string domain;                 // the SIP domain: names the self-signed certificate
};

// What a log line or `check-config` says about the server certificate.
struct CertificateInfo {
  std::string subject;                         // RFC 2253, e.g. "CN=sip.example.com,O=Example"
  std::string issuer;                          // same form
  std::vector<std::string> subject_alt_names;  // "DNS:sip.example.com", "IP:127.0.0.1"
  std::string key_type;                        // "EC P-256", "EC P-384", "RSA", "Ed25519"
  int key_bits = 0;
  std::string signature_algorithm;  // "ecdsa-with-SHA256", "sha256WithRSAEncryption"
  std::string serial_number;        // hex
  std::string sha256_fingerprint;   // "AB:CD:...", what a phone can pin
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;  // clamped to time_point::max() past 2262
  bool self_signed = false;                         // issuer == subject and signed by its own key
  std::filesystem::path certificate_file;
};

struct TlsServer {
  // Ready for boost::asio::ssl::stream (and for SSL_new on native_handle()).
  std::shared_ptr<boost::asio::ssl::context> context;
  CertificateInfo certificate;
  // Things an admin must hear about at start-up and reload, one sentence each: a self-signed
  // certificate in use or generated, expiry within expiry_warning_days, a certificate that
  // does not name the domain, a world-readable key file.
  std::vector<std::string> warnings;
};

// Builds the server context from `settings`. `now` decides validity and expiry (injected so
// tests need no clock games). The context offers:
//   TLS 1.2 (unless min_version is "1.3") and 1.3; for TLS 1.2 only ECDHE-ECDSA/ECDHE-RSA with
//   AES-128-GCM, AES-256-GCM and CHACHA20-POLY1305; for TLS 1.3 the three standard AEAD suites;
//   groups X25519, P-256, P-384; the server's cipher order (ChaCha20 first for clients that
//   prefer it, i.e. phones without AES hardware); no compression, no renegotiation, no
//   session tickets (resumption through a bounded server-side cache), no 0-RTT, buffers
//   released while a connection is idle.
// With no certificate and no key configured, a self-signed ECDSA P-256 certificate in
// <data_dir>/tls/ is reused, or generated when missing, unhealthy, for another domain or
// expiring within expiry_warning_days (capped at 180); a warning says so.
// Errors name the setting and the file, e.g.
//   "tls.certificate /etc/sipwarden/cert.pem: expired on 2024-03-01 12:00:00 UTC".
// Never prompts for a passphrase: an encrypted key is an error.
base::Result<TlsServer> load_tls_server(const TlsSettings& settings,
                                        std::chrono::system_clock::time_point now);

// The health rules a server certificate must pass, on parsed objects: valid at `now` (errors
// "not valid before DATE", "expired on DATE"), `key` matches it, an RSA key of at least 2048
// bits or an EC key of at least 256 bits (DSA is refused), not signed with SHA-1 or MD5.
// `key` may be null to check the certificate alone. Borrows both; the reason names no file.
base::Result<void> check_certificate(x509_st* cert, evp_pkey_st* key,
                                     std::chrono::system_clock::time_point now);

// "TLS certificate <file> expires in N days (on DATE)" when the certificate expires within
// `warning_days` of `now` ("expired on DATE" once it has), std::nullopt otherwise.
// warning_days 0 only reports an expired certificate.
std::optional<std::string> expiry_warning(const CertificateInfo& info, unsigned warning_days,
                                          std::chrono::system_clock::time_point now);

}  // namespace transport
