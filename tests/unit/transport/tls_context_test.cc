// The TLS server context: the certificate rules, the self-signed default, reload, and real
// handshakes against clients that offer what attackers and old phones offer.
#include "transport/tls_context.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace transport {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;
using std::chrono::hours;
using std::chrono::seconds;
constexpr hours kDay(24);

template <auto Free>
struct Freer {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using X509Ptr = std::unique_ptr<X509, Freer<X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY_free>>;
using SslPtr = std::unique_ptr<SSL, Freer<SSL_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Freer<SSL_CTX_free>>;
using SessionPtr = std::unique_ptr<SSL_SESSION, Freer<SSL_SESSION_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO_free_all>>;

// Handshakes and the self-signed certificate use the real clock: the client-certificate
// verification inside OpenSSL does too.
const Clock::time_point kNow = std::chrono::floor<seconds>(Clock::now());

// ---------------------------------------------------------------------------------------------
// Test certificates, made with the same OpenSSL calls a CA uses.

KeyPtr ec_key(const char* curve) {
  return KeyPtr(EVP_EC_gen(curve));
}
KeyPtr rsa_key(unsigned bits) {
  return KeyPtr(EVP_RSA_gen(bits));
}

// RSA key generation is slow under the sanitizers: each size once per run.
EVP_PKEY* rsa1024() {
  static KeyPtr key = rsa_key(1024);
  return key.get();
}
EVP_PKEY* rsa2048() {
  static KeyPtr key = rsa_key(2048);
  return key.get();
}
EVP_PKEY* ec256() {
  static KeyPtr key = ec_key("P-256");
  return key.get();
}
EVP_PKEY* other_ec256() {
  static KeyPtr key = ec_key("P-256");
  return key.get();
}

struct CertSpec {
  EVP_PKEY* key = ec256();
  std::string cn = "sip.example.com";
  std::vector<std::string> dns = {"sip.example.com"};
  const EVP_MD* md = EVP_sha256();
  Clock::time_point not_before = kNow - kDay;
  Clock::time_point not_after = kNow + 365 * kDay;
  X509* issuer = nullptr;  // null: self-signed
  EVP_PKEY* issuer_key = nullptr;
  bool ca = false;
  long serial = 1;
};

std::time_t unix_time(Clock::time_point t) {
  return Clock::to_time_t(t);
}

X509Ptr make_cert(const CertSpec& spec) {
  X509Ptr cert(X509_new());
  X509* x = cert.get();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), spec.serial);
  ASN1_TIME_set(X509_getm_notBefore(x), unix_time(spec.not_before));
  ASN1_TIME_set(X509_getm_notAfter(x), unix_time(spec.not_after));
  X509_set_pubkey(x, spec.key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, spec.issuer != nullptr ? X509_get_subject_name(spec.issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, spec.issuer != nullptr ? spec.issuer : x, x, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    EXPECT_NE(ext, nullptr) << value;
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (spec.ca) add(NID_key_usage, "critical,keyCertSign,cRLSign");
  std::string san;
  for (const std::string& d : spec.dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  if (!san.empty()) add(NID_subject_alt_name, san);
  add(NID_subject_key_identifier, "hash");
  EVP_PKEY* signer = spec.issuer_key != nullptr ? spec.issuer_key : spec.key;
  EXPECT_GT(X509_sign(x, signer, spec.md), 0) << ERR_error_string(ERR_get_error(), nullptr);
  return cert;
}

std::string pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string utc(Clock::time_point t) {
  std::time_t tt = unix_time(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tls_context_test.XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A directory with a certificate and key file, and settings pointing at them.
class TlsFiles : public ::testing::Test {
 protected:
  fs::path cert_file() const { return dir_.path() / "cert.pem"; }
  fs::path key_file() const { return dir_.path() / "key.pem"; }

  TlsSettings settings() const {
    TlsSettings s;
    s.certificate = cert_file();
    s.private_key = key_file();
    s.data_dir = dir_.path() / "data";
    s.domain = "sip.example.com";
    return s;
  }

  // Writes the chain (leaf first) and key, and loads them.
  base::Result<TlsServer> load(const std::vector<X509*>& chain, EVP_PKEY* key, TlsSettings s) {
    std::string text;
    for (X509* c : chain) text += pem(c);
    write(cert_file(), text);
    write(key_file(), pem(key));
    return load_tls_server(s, kNow);
  }
  base::Result<TlsServer> load(const std::vector<X509*>& chain, EVP_PKEY* key) {
    return load(chain, key, settings());
  }

  TempDir dir_;
};

// ---------------------------------------------------------------------------------------------
// check_certificate: the rules on parsed objects.

TEST(CheckCertificate, AcceptsAGoodEcCertificate) {
  X509Ptr cert = make_cert({});
  EXPECT_TRUE(check_certificate(cert.get(), ec256(), kNow));
}

TEST(CheckCertificate, AcceptsRsa2048WithSha256) {
  X509Ptr cert = make_cert({.key = rsa2048()});
  EXPECT_TRUE(check_certificate(cert.get(), rsa2048(), kNow));
}

TEST(CheckCertificate, RefusesAnExpiredCertificateAndSaysWhen) {
  X509Ptr cert = make_cert({.not_before = kNow - 400 * kDay, .not_after = kNow - 3 * kDay});
  auto r = check_certificate(cert.get(), ec256(), kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "expired on " + utc(kNow - 3 * kDay));
}

TEST(CheckCertificate, RefusesANotYetValidCertificateAndSaysWhen) {
  X509Ptr cert = make_cert({.not_before = kNow + 2 * kDay});
  auto r = check_certificate(cert.get(), ec256(), kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "not valid before " + utc(kNow + 2 * kDay));
}

TEST(CheckCertificate, ValidityBoundsAreInclusive) {
  X509Ptr cert = make_cert({.not_before = kNow, .not_after = kNow + hours(1)});
  EXPECT_TRUE(check_certificate(cert.get(), nullptr, kNow));
  EXPECT_TRUE(check_certificate(cert.get(), nullptr, kNow + hours(1)));
  EXPECT_FALSE(check_certificate(cert.get(), nullptr, kNow + hours(1) + seconds(1)));
  EXPECT_FALSE(check_certificate(cert.get(), nullptr, kNow - seconds(1)));
}

TEST(CheckCertificate, RefusesAKeyThatDoesNotMatch) {
  X509Ptr cert = make_cert({});
  auto r = check_certificate(cert.get(), other_ec256(), kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "private key does not match the certificate");
}

TEST(CheckCertificate, RefusesRsa1024) {
  X509Ptr cert = make_cert({.key = rsa1024()});
  auto r = check_certificate(cert.get(), rsa1024(), kNow);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "RSA key of 1024 bits is too weak")) << r.error();
}

TEST(CheckCertificate, RefusesAnEcKeyUnder256Bits) {
  KeyPtr p224 = ec_key("P-224");
  X509Ptr cert = make_cert({.key = p224.get()});
  auto r = check_certificate(cert.get(), p224.get(), kNow);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "EC key of 224 bits (EC P-224) is too weak")) << r.error();
}

TEST(CheckCertificate, AcceptsP384) {
  KeyPtr p384 = ec_key("P-384");
  X509Ptr cert = make_cert({.key = p384.get(), .md = EVP_sha384()});
  EXPECT_TRUE(check_certificate(cert.get(), p384.get(), kNow));
}

TEST(CheckCertificate, RefusesSha1Signatures) {
  X509Ptr cert = make_cert({.key = rsa2048(), .md = EVP_sha1()});
  auto r = check_certificate(cert.get(), rsa2048(), kNow);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "signed with SHA-1 (sha1WithRSAEncryption)")) << r.error();
}

TEST(CheckCertificate, RefusesSha1EcdsaSignatures) {
  X509Ptr cert = make_cert({.md = EVP_sha1()});
  auto r = check_certificate(cert.get(), ec256(), kNow);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "signed with SHA-1")) << r.error();
}

TEST(CheckCertificate, RefusesMd5Signatures) {
  X509Ptr cert = make_cert({.key = rsa2048(), .md = EVP_md5()});
  auto r = check_certificate(cert.get(), rsa2048(), kNow);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "signed with MD5")) << r.error();
}

TEST(CheckCertificate, WithoutAKeyChecksTheCertificateAlone) {
  X509Ptr cert = make_cert({});
  EXPECT_TRUE(check_certificate(cert.get(), nullptr, kNow));
  EXPECT_FALSE(check_certificate(nullptr, nullptr, kNow));
}

TEST(CheckCertificate, AcceptsACertificateValidUntil9999) {
  // RFC 5280 §4.1.2.5's "no well-defined expiration date"; beyond what system_clock holds.
  X509Ptr cert = make_cert({});
  ASN1_TIME_set_string(X509_getm_notAfter(cert.get()), "99991231235959Z");
  X509_sign(cert.get(), ec256(), EVP_sha256());
  EXPECT_TRUE(check_certificate(cert.get(), ec256(), kNow));
}

// ---------------------------------------------------------------------------------------------
// load_tls_server with configured files.

using LoadTlsServer = TlsFiles;

TEST_F(LoadTlsServer, LoadsAGoodCertificateAndDescribesIt) {
  X509Ptr cert = make_cert({.dns = {"sip.example.com", "example.com"}});
  auto server = load({cert.get()}, ec256());
  ASSERT_TRUE(server) << server.error();
  ASSERT_NE(server->context, nullptr);
  const CertificateInfo& info = server->certificate;
  EXPECT_EQ(info.subject, "CN=sip.example.com");
  EXPECT_EQ(info.issuer, "CN=sip.example.com");
  EXPECT_EQ(info.key_type, "EC P-256");
  EXPECT_EQ(info.key_bits, 256);
  EXPECT_EQ(info.signature_algorithm, "ecdsa-with-SHA256");
  EXPECT_EQ(info.subject_alt_names,
            (std::vector<std::string>{"DNS:sip.example.com", "DNS:example.com"}));
  EXPECT_EQ(info.serial_number, "01");
  EXPECT_EQ(info.sha256_fingerprint.size(), 32u * 3 - 1);
  EXPECT_EQ(info.not_before, kNow - kDay);
  EXPECT_EQ(info.not_after, kNow + 365 * kDay);
  EXPECT_TRUE(info.self_signed);
  EXPECT_EQ(info.certificate_file, cert_file());
  EXPECT_TRUE(server->warnings.empty()) << server->warnings.front();
  // The context serves exactly that certificate.
  EXPECT_EQ(X509_cmp(SSL_CTX_get0_certificate(server->context->native_handle()), cert.get()), 0);
}

TEST_F(LoadTlsServer, DescribesAnRsaCertificate) {
  X509Ptr cert = make_cert({.key = rsa2048()});
  auto server = load({cert.get()}, rsa2048());
  ASSERT_TRUE(server) << server.error();
  EXPECT_EQ(server->certificate.key_type, "RSA");
  EXPECT_EQ(server->certificate.key_bits, 2048);
  EXPECT_EQ(server->certificate.signature_algorithm, "sha256WithRSAEncryption");
}

TEST_F(LoadTlsServer, AMissingFileIsAnErrorNamingIt) {
  TlsSettings s = settings();
  auto r = load_tls_server(s, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(),
            "tls.certificate " + cert_file().string() + ": cannot read: No such file or directory");
}

TEST_F(LoadTlsServer, AMissingKeyFileIsAnErrorNamingIt) {
  X509Ptr cert = make_cert({});
  write(cert_file(), pem(cert.get()));
  auto r = load_tls_server(settings(), kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(),
            "tls.private_key " + key_file().string() + ": cannot read: No such file or directory");
}

TEST_F(LoadTlsServer, GarbageIsAnErrorNamingTheFile) {
  write(cert_file(), "this is not a certificate\n");
  write(key_file(), pem(ec256()));
  auto r = load_tls_server(settings(), kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "tls.certificate " + cert_file().string() +
                           ": no PEM certificate (BEGIN CERTIFICATE) in the file");
}

TEST_F(LoadTlsServer, ACorruptCertificateIsAnErrorNamingTheFile) {
  X509Ptr cert = make_cert({});
  std::string text = pem(cert.get());
  text[text.size() / 2] = '*';  // not base64
  write(cert_file(), text);
  write(key_file(), pem(ec256()));
  auto r = load_tls_server(settings(), kNow);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(
      r.error(), "tls.certificate " + cert_file().string() + ": certificate #1 cannot be parsed"))
      << r.error();
}

TEST_F(LoadTlsServer, AKeyFileWithoutAKeyIsAnError) {
  X509Ptr cert = make_cert({});
  write(cert_file(), pem(cert.get()));
  write(key_file(), pem(cert.get()));
  auto r = load_tls_server(settings(), kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "tls.private_key " + key_file().string() +
                           ": no PEM private key (BEGIN PRIVATE KEY) in the file");
}

TEST_F(LoadTlsServer, RefusesAnEncryptedKeyWithoutPrompting) {
  X509Ptr cert = make_cert({});
  write(cert_file(), pem(cert.get()));
  BioPtr bio(BIO_new(BIO_s_mem()));
  char pass[] = "secret";
  PEM_write_bio_PKCS8PrivateKey(bio.get(), ec256(), EVP_aes_256_cbc(), pass, 6, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  write(key_file(), std::string(data, static_cast<std::size_t>(n)));
  auto r = load_tls_server(settings(), kNow);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "tls.private_key " + key_file().string() +
                                      ": the private key is encrypted with a passphrase"))
      << r.error();
}

TEST_F(LoadTlsServer, RefusesACertificateWithoutAKeyAndTheReverse) {
  TlsSettings s = settings();
  s.private_key.clear();
  auto r = load_tls_server(s, kNow);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "tls.certificate is set but tls.private_key is not"))
      << r.error();

  s = settings();
  s.certificate.clear();
  r = load_tls_server(s, kNow);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "tls.private_key is set but tls.certificate is not"))
      << r.error();
  EXPECT_FALSE(fs::exists(s.data_dir)) << "no self-signed fallback for a half configuration";
}

TEST_F(LoadTlsServer, RefusesAnExpiredCertificate) {
  X509Ptr cert = make_cert({.not_before = kNow - 400 * kDay, .not_after = kNow - kDay});
  auto r = load({cert.get()}, ec256());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(),
            "tls.certificate " + cert_file().string() + ": expired on " + utc(kNow - kDay));
}

TEST_F(LoadTlsServer, RefusesANotYetValidCertificate) {
  X509Ptr cert = make_cert({.not_before = kNow + kDay});
  auto r = load({cert.get()}, ec256());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(),
            "tls.certificate " + cert_file().string() + ": not valid before " + utc(kNow + kDay));
}

TEST_F(LoadTlsServer, RefusesAMismatchedKeyNamingBothFiles) {
  X509Ptr cert = make_cert({});
  auto r = load({cert.get()}, other_ec256());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "tls.private_key " + key_file().string() +
                           ": does not match the certificate in " + cert_file().string());
}

TEST_F(LoadTlsServer, SaysSoWhenTheChainIsInTheWrongOrder) {
  X509Ptr ca = make_cert({.key = other_ec256(), .cn = "Example CA", .dns = {}, .ca = true});
  X509Ptr leaf = make_cert({.issuer = ca.get(), .issuer_key = other_ec256(), .serial = 2});
  auto r = load({ca.get(), leaf.get()}, ec256());
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(),
                       "it matches certificate #2 of that file: the server "
                       "certificate must come first"))
      << r.error();
}

TEST_F(LoadTlsServer, RefusesRsa1024) {
  X509Ptr cert = make_cert({.key = rsa1024()});
  auto r = load({cert.get()}, rsa1024());
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(
      r.error(), "tls.certificate " + cert_file().string() + ": RSA key of 1024 bits is too weak"))
      << r.error();
}

TEST_F(LoadTlsServer, RefusesRsa2048SignedWithSha1) {
  X509Ptr cert = make_cert({.key = rsa2048(), .md = EVP_sha1()});
  auto r = load({cert.get()}, rsa2048());
  ASSERT_FALSE(r);
  EXPECT_TRUE(
      contains(r.error(), "tls.certificate " + cert_file().string() + ": signed with SHA-1"))
      << r.error();
}

TEST_F(LoadTlsServer, LoadsAChainWithAnIntermediate) {
  X509Ptr ca = make_cert({.key = other_ec256(), .cn = "Example CA", .dns = {}, .ca = true});
  X509Ptr leaf = make_cert({.issuer = ca.get(), .issuer_key = other_ec256(), .serial = 2});
  auto server = load({leaf.get(), ca.get()}, ec256());
  ASSERT_TRUE(server) << server.error();
  EXPECT_EQ(server->certificate.issuer, "CN=Example CA");
  EXPECT_FALSE(server->certificate.self_signed);
  STACK_OF(X509)* chain = nullptr;
  ASSERT_EQ(SSL_CTX_get0_chain_certs(server->context->native_handle(), &chain), 1);
  ASSERT_EQ(sk_X509_num(chain), 1);
  EXPECT_EQ(X509_cmp(sk_X509_value(chain, 0), ca.get()), 0);
}

TEST_F(LoadTlsServer, RefusesAnExpiredIntermediate) {
  KeyPtr root_key = ec_key("P-256");
  X509Ptr root = make_cert({.key = root_key.get(), .cn = "Example Root", .dns = {}, .ca = true});
  X509Ptr intermediate = make_cert({.key = other_ec256(),
                                    .cn = "Example CA",
                                    .dns = {},
                                    .not_before = kNow - 800 * kDay,
                                    .not_after = kNow - 2 * kDay,
                                    .issuer = root.get(),
                                    .issuer_key = root_key.get(),
                                    .ca = true,
                                    .serial = 3});
  X509Ptr leaf =
      make_cert({.issuer = intermediate.get(), .issuer_key = other_ec256(), .serial = 2});
  auto r = load({leaf.get(), intermediate.get(), root.get()}, ec256());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "tls.certificate " + cert_file().string() +
                           ": chain certificate #2 (CN=Example CA): expired on " +
                           utc(kNow - 2 * kDay));
}

TEST_F(LoadTlsServer, AnExpiredRootAtTheEndOfTheChainIsHarmless) {
  // Clients take roots from their own store; old cross-signed roots linger in chain files.
  X509Ptr root = make_cert({.key = other_ec256(),
                            .cn = "Old Root",
                            .dns = {},
                            .md = EVP_sha1(),
                            .not_before = kNow - 800 * kDay,
                            .not_after = kNow - 2 * kDay,
                            .ca = true});
  X509Ptr leaf = make_cert({.issuer = root.get(), .issuer_key = other_ec256(), .serial = 2});
  auto server = load({leaf.get(), root.get()}, ec256());
  EXPECT_TRUE(server) << server.error();
}

TEST_F(LoadTlsServer, AcceptsCertificateAndKeyInOneFile) {
  X509Ptr cert = make_cert({});
  write(cert_file(), pem(ec256()) + pem(cert.get()));
  TlsSettings s = settings();
  s.private_key = s.certificate;
  auto server = load_tls_server(s, kNow);
  ASSERT_TRUE(server) << server.error();
  EXPECT_EQ(server->certificate.subject, "CN=sip.example.com");
}

TEST_F(LoadTlsServer, WarnsWhenTheCertificateExpiresSoon) {
  X509Ptr cert = make_cert({.not_after = kNow + 10 * kDay + hours(5)});
  auto server = load({cert.get()}, ec256());
  ASSERT_TRUE(server) << server.error();
  ASSERT_EQ(server->warnings.size(), 1u);
  EXPECT_EQ(server->warnings[0], "TLS certificate " + cert_file().string() +
                                     " expires in 10 days (on " + utc(kNow + 10 * kDay + hours(5)) +
                                     ")");
}

TEST_F(LoadTlsServer, WarnsWhenTheCertificateDoesNotNameTheDomain) {
  X509Ptr cert = make_cert({.cn = "other.example.net", .dns = {"other.example.net"}});
  auto server = load({cert.get()}, ec256());
  ASSERT_TRUE(server) << server.error();
  ASSERT_EQ(server->warnings.size(), 1u);
  EXPECT_TRUE(contains(server->warnings[0], "does not name the SIP domain sip.example.com"))
      << server->warnings[0];
}

TEST_F(LoadTlsServer, WarnsWhenTheKeyIsWorldReadable) {
  X509Ptr cert = make_cert({});
  write(cert_file(), pem(cert.get()));
  write(key_file(), pem(ec256()));
  fs::permissions(key_file(), fs::perms::others_read, fs::perm_options::add);
  auto server = load_tls_server(settings(), kNow);
  ASSERT_TRUE(server) << server.error();
  ASSERT_EQ(server->warnings.size(), 1u);
  EXPECT_EQ(server->warnings[0], "TLS private key " + key_file().string() +
                                     " is readable by every user on this host (mode 0604): "
                                     "chmod 600 it");
}

TEST_F(LoadTlsServer, RefusesAnUnknownMinVersion) {
  X509Ptr cert = make_cert({});
  TlsSettings s = settings();
  s.min_version = "1.1";
  auto r = load({cert.get()}, ec256(), s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "tls.min_version must be \"1.2\" or \"1.3\" (got \"1.1\")");
}

TEST_F(LoadTlsServer, ConfiguresTheContextAsDocumented) {
  X509Ptr cert = make_cert({});
  auto server = load({cert.get()}, ec256());
  ASSERT_TRUE(server) << server.error();
  SSL_CTX* ctx = server->context->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
  std::vector<std::string> ciphers;
  STACK_OF(SSL_CIPHER)* list = SSL_CTX_get_ciphers(ctx);
  for (int i = 0; i < sk_SSL_CIPHER_num(list); ++i) {
    ciphers.emplace_back(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(list, i)));
  }
  EXPECT_EQ(ciphers,
            (std::vector<std::string>{
                "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}));
  std::uint64_t options = SSL_CTX_get_options(ctx);
  for (std::uint64_t option : {SSL_OP_CIPHER_SERVER_PREFERENCE, SSL_OP_PRIORITIZE_CHACHA,
                               SSL_OP_NO_COMPRESSION, SSL_OP_NO_RENEGOTIATION, SSL_OP_NO_TICKET}) {
    EXPECT_NE(options & option, 0u) << std::hex << option;
  }
  EXPECT_EQ(options & SSL_OP_ALLOW_CLIENT_RENEGOTIATION, 0u);
  EXPECT_NE(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS, 0u);
  EXPECT_EQ(SSL_CTX_get_security_level(ctx), 2);
  EXPECT_EQ(SSL_CTX_get_max_early_data(ctx), 0u);
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_NONE);
}

// SIGHUP: the same call again, after the files changed, gives the new certificate; the old
// context, still held by existing connections, keeps the old one.
TEST_F(LoadTlsServer, ReloadPicksUpChangedFiles) {
  X509Ptr first = make_cert({.serial = 1});
  auto before = load({first.get()}, ec256());
  ASSERT_TRUE(before) << before.error();

  KeyPtr renewed_key = ec_key("P-384");
  X509Ptr second = make_cert({.key = renewed_key.get(), .md = EVP_sha384(), .serial = 2});
  write(cert_file(), pem(second.get()));
  write(key_file(), pem(renewed_key.get()));
  auto after = load_tls_server(settings(), kNow + hours(1));
  ASSERT_TRUE(after) << after.error();

  EXPECT_EQ(before->certificate.serial_number, "01");
  EXPECT_EQ(after->certificate.serial_number, "02");
  EXPECT_EQ(after->certificate.key_type, "EC P-384");
  EXPECT_NE(before->certificate.sha256_fingerprint, after->certificate.sha256_fingerprint);
  EXPECT_NE(before->context, after->context);
  EXPECT_EQ(X509_cmp(SSL_CTX_get0_certificate(before->context->native_handle()), first.get()), 0);
  EXPECT_EQ(X509_cmp(SSL_CTX_get0_certificate(after->context->native_handle()), second.get()), 0);
}

TEST_F(LoadTlsServer, AFailedReloadLeavesNothingHalfDone) {
  X509Ptr good = make_cert({});
  auto before = load({good.get()}, ec256());
  ASSERT_TRUE(before) << before.error();
  write(key_file(), pem(other_ec256()));  // renewed certificate not copied yet
  auto after = load_tls_server(settings(), kNow);
  ASSERT_FALSE(after);
  EXPECT_EQ(X509_cmp(SSL_CTX_get0_certificate(before->context->native_handle()), good.get()), 0);
}

// ---------------------------------------------------------------------------------------------
// The self-signed default.

class SelfSigned : public ::testing::Test {
 protected:
  TlsSettings settings() const {
    TlsSettings s;
    s.data_dir = dir_.path() / "data";
    s.domain = "pbx.example.org";
    return s;
  }
  fs::path cert_file() const { return dir_.path() / "data" / "tls" / "selfsigned-cert.pem"; }
  fs::path key_file() const { return dir_.path() / "data" / "tls" / "selfsigned-key.pem"; }

  TempDir dir_;
};

std::string loud_warning(const fs::path& cert) {
  return "no TLS certificate configured: using a self-signed certificate (" + cert.string() +
         "); phones will not be able to verify this server \u2014 configure tls.certificate and "
         "tls.private_key";
}

TEST_F(SelfSigned, GeneratesAnEcdsaCertificateWhenNoneIsConfigured) {
  auto server = load_tls_server(settings(), kNow);
  ASSERT_TRUE(server) << server.error();
  const CertificateInfo& info = server->certificate;
  EXPECT_EQ(info.certificate_file, cert_file());
  EXPECT_TRUE(info.self_signed);
  EXPECT_EQ(info.subject, "CN=pbx.example.org,O=sipwarden self-signed");
  EXPECT_EQ(info.key_type, "EC P-256");
  EXPECT_EQ(info.key_bits, 256);
  EXPECT_EQ(info.signature_algorithm, "ecdsa-with-SHA256");
  EXPECT_EQ(info.not_before, kNow - hours(1));
  EXPECT_EQ(info.not_after, kNow + 365 * kDay);
  EXPECT_EQ(
      info.subject_alt_names,
      (std::vector<std::string>{"DNS:pbx.example.org", "DNS:localhost", "IP:127.0.0.1", "IP:::1"}));
  EXPECT_EQ(info.serial_number.size(), 32u);  // 16 random bytes, hex

  ASSERT_EQ(server->warnings.size(), 2u);
  EXPECT_EQ(server->warnings[0],
            "generated a self-signed TLS certificate for pbx.example.org: " + cert_file().string() +
                " (SHA-256 fingerprint " + info.sha256_fingerprint + ")");
  EXPECT_EQ(server->warnings[1], loud_warning(cert_file()));

  EXPECT_EQ(mode_of(key_file()), 0600u);
  EXPECT_EQ(mode_of(cert_file().parent_path()), 0700u);
  EXPECT_EQ(mode_of(settings().data_dir), 0700u);
  EXPECT_FALSE(fs::exists(key_file().string() + ".tmp"));

  // What is on disk is what is served, and a client can check it for the domain.
  BioPtr bio(BIO_new_file(cert_file().c_str(), "r"));
  X509Ptr on_disk(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_NE(on_disk, nullptr);
  EXPECT_EQ(X509_cmp(SSL_CTX_get0_certificate(server->context->native_handle()), on_disk.get()), 0);
  EXPECT_EQ(X509_check_host(on_disk.get(), "pbx.example.org", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(on_disk.get(), "::1", 0), 1);
  EXPECT_EQ(X509_get_extended_key_usage(on_disk.get()) & XKU_SSL_SERVER, XKU_SSL_SERVER);
}

TEST_F(SelfSigned, ReusesTheCertificateOnTheNextStart) {
  auto first = load_tls_server(settings(), kNow);
  ASSERT_TRUE(first) << first.error();
  std::string cert_pem = slurp(cert_file());
  std::string key_pem = slurp(key_file());

  auto second = load_tls_server(settings(), kNow + 200 * kDay);
  ASSERT_TRUE(second) << second.error();
  EXPECT_EQ(second->certificate.sha256_fingerprint, first->certificate.sha256_fingerprint);
  EXPECT_EQ(slurp(cert_file()), cert_pem);
  EXPECT_EQ(slurp(key_file()), key_pem);
  EXPECT_EQ(second->warnings, std::vector<std::string>{loud_warning(cert_file())});
}

TEST_F(SelfSigned, RegeneratesWhenExpired) {
  auto first = load_tls_server(settings(), kNow);
  ASSERT_TRUE(first) << first.error();
  Clock::time_point later = kNow + 400 * kDay;
  auto second = load_tls_server(settings(), later);
  ASSERT_TRUE(second) << second.error();
  EXPECT_NE(second->certificate.serial_number, first->certificate.serial_number);
  EXPECT_EQ(second->certificate.not_before, later - hours(1));
  ASSERT_EQ(second->warnings.size(), 2u);
  EXPECT_TRUE(contains(second->warnings[0], "replaced the self-signed TLS certificate " +
                                                cert_file().string() + " (expired on " +
                                                utc(kNow + 365 * kDay) + ")"))
      << second->warnings[0];
  EXPECT_EQ(mode_of(key_file()), 0600u);
}

TEST_F(SelfSigned, RenewsWithinTheExpiryWarningWindow) {
  auto first = load_tls_server(settings(), kNow);
  ASSERT_TRUE(first) << first.error();
  auto second = load_tls_server(settings(), kNow + 340 * kDay);  // 25 days left
  ASSERT_TRUE(second) << second.error();
  EXPECT_NE(second->certificate.serial_number, first->certificate.serial_number);
  EXPECT_TRUE(contains(second->warnings[0], "it expires within 30 days")) << second->warnings[0];
}

TEST_F(SelfSigned, RegeneratesForANewDomain) {
  auto first = load_tls_server(settings(), kNow);
  ASSERT_TRUE(first) << first.error();
  TlsSettings s = settings();
  s.domain = "sip.example.net";
  auto second = load_tls_server(s, kNow);
  ASSERT_TRUE(second) << second.error();
  EXPECT_EQ(second->certificate.subject, "CN=sip.example.net,O=sipwarden self-signed");
  EXPECT_TRUE(contains(second->warnings[0], "another domain")) << second->warnings[0];
}

TEST_F(SelfSigned, RegeneratesWhenTheKeyNoLongerMatches) {
  auto first = load_tls_server(settings(), kNow);
  ASSERT_TRUE(first) << first.error();
  write(key_file(), pem(other_ec256()));
  auto second = load_tls_server(settings(), kNow);
  ASSERT_TRUE(second) << second.error();
  EXPECT_NE(second->certificate.serial_number, first->certificate.serial_number);
  EXPECT_TRUE(contains(second->warnings[0], "private key does not match")) << second->warnings[0];
  EXPECT_NE(slurp(key_file()), pem(other_ec256()));
}

TEST_F(SelfSigned, RegeneratesWhenAFileIsDamaged) {
  auto first = load_tls_server(settings(), kNow);
  ASSERT_TRUE(first) << first.error();
  write(cert_file(), "garbage");
  auto second = load_tls_server(settings(), kNow);
  ASSERT_TRUE(second) << second.error();
  EXPECT_TRUE(contains(second->warnings[0], "no PEM certificate")) << second->warnings[0];
}

TEST_F(SelfSigned, SerialNumbersAreRandom) {
  TempDir other;
  TlsSettings s = settings();
  auto a = load_tls_server(s, kNow);
  s.data_dir = other.path();
  auto b = load_tls_server(s, kNow);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->certificate.serial_number, b->certificate.serial_number);
}

TEST_F(SelfSigned, AnIpAddressAsDomainGoesIntoAnIpName) {
  TlsSettings s = settings();
  s.domain = "192.0.2.7";
  auto server = load_tls_server(s, kNow);
  ASSERT_TRUE(server) << server.error();
  EXPECT_EQ(server->certificate.subject_alt_names.front(), "IP:192.0.2.7");
  // And it is reused, not regenerated, next time.
  auto again = load_tls_server(s, kNow);
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(again->warnings.size(), 1u);
}

TEST_F(SelfSigned, AnUnwritableDataDirIsAnError) {
  TlsSettings s = settings();
  write(dir_.path() / "file", "x");
  s.data_dir = dir_.path() / "file";
  auto r = load_tls_server(s, kNow);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "cannot store the self-signed certificate")) << r.error();
}

// ---------------------------------------------------------------------------------------------
// expiry_warning thresholds.

TEST(ExpiryWarning, Thresholds) {
  CertificateInfo info;
  info.certificate_file = "/etc/sipwarden/cert.pem";
  info.not_after = kNow + 30 * kDay;
  const std::string on = " (on " + utc(info.not_after) + ")";
  const std::string prefix = "TLS certificate /etc/sipwarden/cert.pem ";

  EXPECT_EQ(expiry_warning(info, 30, kNow), prefix + "expires in 30 days" + on);
  EXPECT_EQ(expiry_warning(info, 30, kNow - seconds(1)), std::nullopt);
  EXPECT_EQ(expiry_warning(info, 29, kNow), std::nullopt);
  EXPECT_EQ(expiry_warning(info, 30, kNow + seconds(1)), prefix + "expires in 29 days" + on);
  EXPECT_EQ(expiry_warning(info, 30, kNow + 29 * kDay - seconds(1)),
            prefix + "expires in 1 day" + on);
  EXPECT_EQ(expiry_warning(info, 30, kNow + 29 * kDay + hours(23)),
            prefix + "expires in less than a day" + on);
  EXPECT_EQ(expiry_warning(info, 0, kNow + 29 * kDay + hours(23)), std::nullopt);
  EXPECT_EQ(expiry_warning(info, 30, info.not_after), prefix + "expired on " + utc(info.not_after));
  EXPECT_EQ(expiry_warning(info, 0, info.not_after + kDay),
            prefix + "expired on " + utc(info.not_after));
  EXPECT_TRUE(expiry_warning(info, 4'000'000'000u, kNow).has_value());

  info.not_after = Clock::time_point::max();  // "valid until 9999"
  EXPECT_EQ(expiry_warning(info, 4'000'000'000u, kNow), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// Real handshakes: the server context against OpenSSL clients, over an in-memory BIO pair.

struct Outcome {
  bool ok = false;
  int server_reason = 0;  // ERR_GET_REASON of the server's failure, 0 if none
  int client_reason = 0;
  std::string cipher;
  std::string version;
};

struct Connection {
  SslPtr client;
  SslPtr server;
};

Connection connect(SSL_CTX* server_ctx, SSL_CTX* client_ctx) {
  Connection c{SslPtr(SSL_new(client_ctx)), SslPtr(SSL_new(server_ctx))};
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(c.client.get(), client_bio, client_bio);
  SSL_set_bio(c.server.get(), server_bio, server_bio);
  SSL_set_connect_state(c.client.get());
  SSL_set_accept_state(c.server.get());
  return c;
}

// One handshake step; false once `ssl` failed (its reason in `reason`).
bool step(SSL* ssl, bool& done, int& reason) {
  if (done || reason != 0) return reason == 0;
  ERR_clear_error();
  int r = SSL_do_handshake(ssl);
  if (r == 1) {
    done = true;
    return true;
  }
  int e = SSL_get_error(ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
  reason = ERR_GET_REASON(ERR_peek_error());
  if (reason == 0) reason = -1;
  ERR_clear_error();
  return false;
}

Outcome handshake(Connection& c) {
  Outcome out;
  bool client_done = false;
  bool server_done = false;
  for (int round = 0; round < 20 && !(client_done && server_done); ++round) {
    step(c.client.get(), client_done, out.client_reason);
    step(c.server.get(), server_done, out.server_reason);
  }
  out.ok = client_done && server_done && out.client_reason == 0 && out.server_reason == 0;
  if (out.ok) {
    out.cipher = SSL_get_cipher_name(c.server.get());
    out.version = SSL_get_version(c.server.get());
    // And SIP gets through both ways (the client's read also takes TLS 1.3 session tickets).
    const char kRequest[] = "OPTIONS sip:pbx.example.org SIP/2.0\r\n";
    const char kResponse[] = "SIP/2.0 200 OK\r\n";
    char buf[64] = {};
    EXPECT_EQ(SSL_write(c.client.get(), kRequest, sizeof kRequest), int{sizeof kRequest});
    EXPECT_EQ(SSL_read(c.server.get(), buf, sizeof buf), int{sizeof kRequest});
    EXPECT_STREQ(buf, kRequest);
    EXPECT_EQ(SSL_write(c.server.get(), kResponse, sizeof kResponse), int{sizeof kResponse});
    EXPECT_EQ(SSL_read(c.client.get(), buf, sizeof buf), int{sizeof kResponse});
    EXPECT_STREQ(buf, kResponse);
  }
  return out;
}

struct ClientSpec {
  int min_version = TLS1_VERSION;
  int max_version = 0;
  std::string ciphers = "ALL:@SECLEVEL=0";  // TLS 1.2 and lower
  std::string suites{};                     // TLS 1.3; empty: OpenSSL's defaults
  std::string groups{};                     // empty: OpenSSL's defaults
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
};

// A client that offers whatever the test says, old and weak included: security level 0, so
// the refusal a test sees is the server's.
SslCtxPtr client_context(const ClientSpec& spec) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_security_level(ctx.get(), 0);
  SSL_CTX_set_min_proto_version(ctx.get(), spec.min_version);
  SSL_CTX_set_max_proto_version(ctx.get(), spec.max_version);
  EXPECT_EQ(SSL_CTX_set_cipher_list(ctx.get(), spec.ciphers.c_str()), 1) << spec.ciphers;
  if (!spec.suites.empty()) {
    EXPECT_EQ(SSL_CTX_set_ciphersuites(ctx.get(), spec.suites.c_str()), 1);
  }
  if (!spec.groups.empty()) {
    EXPECT_EQ(SSL_CTX_set1_groups_list(ctx.get(), spec.groups.c_str()), 1);
  }
  if (spec.cert != nullptr) {
    EXPECT_EQ(SSL_CTX_use_certificate(ctx.get(), spec.cert), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx.get(), spec.key), 1);
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  return ctx;
}

class Handshake : public TlsFiles {
 protected:
  void SetUp() override {
    cert_ = make_cert({});
    auto server = load({cert_.get()}, ec256());
    ASSERT_TRUE(server) << server.error();
    server_ = std::move(*server);
  }

  SSL_CTX* server_ctx() const { return server_.context->native_handle(); }

  Outcome run(const ClientSpec& spec) { return run(spec, server_ctx()); }
  static Outcome run(const ClientSpec& spec, SSL_CTX* server_ctx) {
    SslCtxPtr client = client_context(spec);
    Connection c = connect(server_ctx, client.get());
    return handshake(c);
  }

  X509Ptr cert_;
  TlsServer server_;
};

TEST_F(Handshake, Tls12EcdheEcdsaAesGcmSucceeds) {
  Outcome out = run({.max_version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"});
  EXPECT_TRUE(out.ok) << out.server_reason << " " << out.client_reason;
  EXPECT_EQ(out.version, "TLSv1.2");
  EXPECT_EQ(out.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
}

TEST_F(Handshake, Tls13Succeeds) {
  Outcome out = run({.min_version = TLS1_3_VERSION});
  EXPECT_TRUE(out.ok) << out.server_reason << " " << out.client_reason;
  EXPECT_EQ(out.version, "TLSv1.3");
  EXPECT_EQ(out.cipher, "TLS_AES_128_GCM_SHA256");
}

TEST_F(Handshake, AClientOfferingOnlyTls11IsRefused) {
  Outcome out = run({.max_version = TLS1_1_VERSION});
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.server_reason, SSL_R_UNSUPPORTED_PROTOCOL);
}

TEST_F(Handshake, AClientOfferingOnlyTls10IsRefused) {
  Outcome out = run({.max_version = TLS1_VERSION});
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.server_reason, SSL_R_UNSUPPORTED_PROTOCOL);
}

TEST_F(Handshake, RsaKeyExchangeIsRefusedEvenWithAesGcm) {
  // Not forward secret: whoever gets the server key later reads today's calls.
  Outcome out = run({.max_version = TLS1_2_VERSION, .ciphers = "AES128-GCM-SHA256"});
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.server_reason, SSL_R_NO_SHARED_CIPHER);
}

TEST_F(Handshake, NonAeadSuitesAreRefused) {
  for (const char* cipher : {"AES128-SHA256", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA",
                             "ECDHE-ECDSA-AES256-SHA384", "DHE-RSA-AES128-GCM-SHA256"}) {
    Outcome out = run({.max_version = TLS1_2_VERSION, .ciphers = cipher});
    EXPECT_FALSE(out.ok) << cipher;
    EXPECT_EQ(out.server_reason, SSL_R_NO_SHARED_CIPHER) << cipher;
  }
}

TEST_F(Handshake, TheServerOrderWins) {
  Outcome out = run({.max_version = TLS1_2_VERSION,
                     .ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"});
  EXPECT_TRUE(out.ok);
  EXPECT_EQ(out.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
}

TEST_F(Handshake, AClientThatPrefersChaChaGetsIt) {
  // Phones without AES instructions put ChaCha20 first; the server honours that.
  Outcome out = run({.max_version = TLS1_2_VERSION,
                     .ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"});
  EXPECT_TRUE(out.ok);
  EXPECT_EQ(out.cipher, "ECDHE-ECDSA-CHACHA20-POLY1305");
  out = run({.min_version = TLS1_3_VERSION,
             .suites = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"});
  EXPECT_TRUE(out.ok);
  EXPECT_EQ(out.cipher, "TLS_CHACHA20_POLY1305_SHA256");
}

TEST_F(Handshake, EveryOfferedSuiteWorks) {
  for (const char* suite :
       {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
    Outcome out = run({.min_version = TLS1_3_VERSION, .suites = suite});
    EXPECT_TRUE(out.ok) << suite;
    EXPECT_EQ(out.cipher, suite);
  }
  for (const char* cipher : {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                             "ECDHE-ECDSA-CHACHA20-POLY1305"}) {
    Outcome out = run({.max_version = TLS1_2_VERSION, .ciphers = cipher});
    EXPECT_TRUE(out.ok) << cipher;
    EXPECT_EQ(out.cipher, cipher);
  }
}

TEST_F(Handshake, EcdheRsaWithAnRsaCertificate) {
  X509Ptr rsa_cert = make_cert({.key = rsa2048()});
  auto rsa_server = load({rsa_cert.get()}, rsa2048());
  ASSERT_TRUE(rsa_server) << rsa_server.error();
  SSL_CTX* ctx = rsa_server->context->native_handle();
  Outcome out = run({.max_version = TLS1_2_VERSION, .ciphers = "ECDHE-RSA-AES256-GCM-SHA384"}, ctx);
  EXPECT_TRUE(out.ok);
  EXPECT_EQ(out.cipher, "ECDHE-RSA-AES256-GCM-SHA384");
  out = run({.max_version = TLS1_2_VERSION, .ciphers = "AES256-GCM-SHA384"}, ctx);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.server_reason, SSL_R_NO_SHARED_CIPHER);
}

TEST_F(Handshake, GroupsAreX25519P256P384) {
  SslCtxPtr client = client_context({.min_version = TLS1_3_VERSION});
  Connection c = connect(server_ctx(), client.get());
  ASSERT_TRUE(handshake(c).ok);
  EXPECT_EQ(SSL_get_negotiated_group(c.server.get()), NID_X25519);

  Outcome out = run({.min_version = TLS1_3_VERSION, .groups = "P-384"});
  EXPECT_TRUE(out.ok);
  out = run({.min_version = TLS1_3_VERSION, .groups = "P-521:ffdhe2048"});
  EXPECT_FALSE(out.ok);
  out = run({.max_version = TLS1_2_VERSION,
             .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256",
             .groups = "P-521"});
  EXPECT_FALSE(out.ok);
}

TEST_F(Handshake, MinVersion13RefusesTls12) {
  TlsSettings s = settings();
  s.min_version = "1.3";
  auto strict = load_tls_server(s, kNow);
  ASSERT_TRUE(strict) << strict.error();
  SSL_CTX* ctx = strict->context->native_handle();
  Outcome out =
      run({.max_version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"}, ctx);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.server_reason, SSL_R_UNSUPPORTED_PROTOCOL);
  EXPECT_TRUE(run({}, ctx).ok);
}

TEST_F(Handshake, RenegotiationIsRefused) {
  // Client-initiated renegotiation costs the server a full handshake per request: a cheap
  // CPU exhaustion attack. (OpenSSL 3 refuses it by default too; the option check in
  // ConfiguresTheContextAsDocumented pins SSL_OP_NO_RENEGOTIATION.)
  SslCtxPtr client = client_context({.max_version = TLS1_2_VERSION});
  Connection c = connect(server_ctx(), client.get());
  ASSERT_TRUE(handshake(c).ok);
  ASSERT_EQ(SSL_renegotiate(c.client.get()), 1);
  bool client_done = false;
  int client_reason = 0;
  char buf[16];
  for (int round = 0; round < 10 && client_reason == 0; ++round) {
    step(c.client.get(), client_done, client_reason);
    SSL_read(c.server.get(), buf, sizeof buf);  // where the server meets the new ClientHello
    ERR_clear_error();
  }
  EXPECT_FALSE(client_done);
  EXPECT_EQ(client_reason, SSL_R_NO_RENEGOTIATION);
}

TEST_F(Handshake, SessionsResumeFromTheServerCacheWithoutTickets) {
  SslCtxPtr client = client_context({.max_version = TLS1_2_VERSION});
  Connection first = connect(server_ctx(), client.get());
  ASSERT_TRUE(handshake(first).ok);
  SessionPtr session(SSL_get1_session(first.client.get()));
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(SSL_SESSION_has_ticket(session.get()), 0);
  EXPECT_EQ(SSL_SESSION_get_ticket_lifetime_hint(session.get()), 0u);

  Connection second = connect(server_ctx(), client.get());
  SSL_set_session(second.client.get(), session.get());
  ASSERT_TRUE(handshake(second).ok);
  EXPECT_EQ(SSL_session_reused(second.client.get()), 1);
}

TEST_F(Handshake, Tls13SessionsResume) {
  SslCtxPtr client = client_context({.min_version = TLS1_3_VERSION});
  Connection first = connect(server_ctx(), client.get());
  ASSERT_TRUE(handshake(first).ok);  // its SSL_read took the NewSessionTicket
  SessionPtr session(SSL_get1_session(first.client.get()));
  ASSERT_NE(session, nullptr);
  ASSERT_EQ(SSL_SESSION_is_resumable(session.get()), 1);

  Connection second = connect(server_ctx(), client.get());
  SSL_set_session(second.client.get(), session.get());
  ASSERT_TRUE(handshake(second).ok);
  EXPECT_EQ(SSL_session_reused(second.client.get()), 1);
}

// ---------------------------------------------------------------------------------------------
// Client certificates (trunks that authenticate with TLS).

class ClientCertificates : public Handshake {
 protected:
  void SetUp() override {
    Handshake::SetUp();
    ca_ = make_cert({.key = ca_key_.get(), .cn = "Trunk CA", .dns = {}, .ca = true});
    write(dir_.path() / "ca.pem", pem(ca_.get()));
  }

  TlsSettings verifying() const {
    TlsSettings s = settings();
    s.verify_client = true;
    s.client_ca = dir_.path() / "ca.pem";
    return s;
  }

  KeyPtr ca_key_ = ec_key("P-256");
  KeyPtr client_key_ = ec_key("P-256");
  X509Ptr ca_;
};

TEST_F(ClientCertificates, RequiresACertificateSignedByTheCa) {
  auto server = load_tls_server(verifying(), kNow);
  ASSERT_TRUE(server) << server.error();
  SSL_CTX* ctx = server->context->native_handle();
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);

  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    Outcome none = run({.min_version = version, .max_version = version}, ctx);
    EXPECT_FALSE(none.ok);
    EXPECT_EQ(none.server_reason, SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE);

    X509Ptr signed_by_ca = make_cert({.key = client_key_.get(),
                                      .cn = "trunk.example.com",
                                      .dns = {"trunk.example.com"},
                                      .issuer = ca_.get(),
                                      .issuer_key = ca_key_.get(),
                                      .serial = 7});
    Outcome good = run({.min_version = version,
                        .max_version = version,
                        .cert = signed_by_ca.get(),
                        .key = client_key_.get()},
                       ctx);
    EXPECT_TRUE(good.ok) << good.server_reason;

    X509Ptr self_made = make_cert({.key = client_key_.get(), .cn = "trunk.example.com"});
    Outcome untrusted = run({.min_version = version,
                             .max_version = version,
                             .cert = self_made.get(),
                             .key = client_key_.get()},
                            ctx);
    EXPECT_FALSE(untrusted.ok);
    EXPECT_EQ(untrusted.server_reason, SSL_R_CERTIFICATE_VERIFY_FAILED);
  }
}

TEST_F(ClientCertificates, TheCaNamesAreSentToClients) {
  auto server = load_tls_server(verifying(), kNow);
  ASSERT_TRUE(server) << server.error();
  STACK_OF(X509_NAME)* names = SSL_CTX_get_client_CA_list(server->context->native_handle());
  ASSERT_EQ(sk_X509_NAME_num(names), 1);
  EXPECT_EQ(X509_NAME_cmp(sk_X509_NAME_value(names, 0), X509_get_subject_name(ca_.get())), 0);
}

TEST_F(ClientCertificates, VerifyingWithoutACaIsAnError) {
  TlsSettings s = verifying();
  s.client_ca.clear();
  auto r = load_tls_server(s, kNow);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "tls.verify_client is on but tls.client_ca is not set"))
      << r.error();

  s.client_ca = dir_.path() / "missing.pem";
  r = load_tls_server(s, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(),
            "tls.client_ca " + s.client_ca.string() + ": cannot read: No such file or directory");
}

}  // namespace
}  // namespace transport
