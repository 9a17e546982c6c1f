#include "transport/tls_context.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <string_view>
#include <system_error>

namespace transport {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

// ---------------------------------------------------------------------------------------------
// What the context offers. Mozilla's "intermediate" TLS 1.2 list without DHE (slow, and its
// group is chosen by the server alone) and without anything that is not forward secret or not
// AEAD. TLS 1.3 suites are all AEAD and forward secret by construction.

constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";

// Security level 2 (112-bit: RSA ≥ 2048, no SHA-1 handshake signatures) whatever the
// system's openssl.cnf says; it also bounds client certificates when verify_client is on.
constexpr int kSecurityLevel = 2;

// Resumption without tickets: a ticket in TLS 1.2 is sealed with a key that lives as long as
// the process, so stealing that key would open every past session — not forward secret.
// A server-side cache forgets a session after kSessionTimeout. Phones that reconnect (NAT
// rebinding, one connection per REGISTER) still resume within that window.
constexpr long kSessionCacheSize = 10000;
constexpr long kSessionTimeoutSeconds = 3600;
constexpr std::string_view kSessionIdContext = "sipwarden-sip-tls";

// Self-signed certificate.
constexpr auto kSelfSignedValidity = std::chrono::hours(24 * 365);
constexpr auto kSelfSignedBackdate = std::chrono::hours(1);  // clocks of phones lag
constexpr unsigned kMaxRenewDays = 180;
constexpr std::size_t kMaxPemBytes = 1 << 20;

// ---------------------------------------------------------------------------------------------
// OpenSSL ownership.

template <auto Free>
struct Freer {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using X509Ptr = std::unique_ptr<X509, Freer<X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Freer<BN_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Freer<GENERAL_NAMES_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Freer<X509_EXTENSION_free>>;

// The first queued OpenSSL error as text (the queue is emptied).
std::string openssl_error() {
  unsigned long first = ERR_get_error();
  ERR_clear_error();
  if (first == 0) return "unknown OpenSSL error";
  std::array<char, 256> buf{};
  ERR_error_string_n(first, buf.data(), buf.size());
  return buf.data();
}

// Never ask for a passphrase: a server must start unattended.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

std::string errno_text(int err) {
  return std::error_code(err, std::generic_category()).message();
}

// ---------------------------------------------------------------------------------------------
// Time.

Clock::time_point from_unix_seconds(std::int64_t s) {
  using std::chrono::seconds;
  constexpr std::int64_t kMax =
      std::chrono::duration_cast<seconds>(Clock::time_point::max().time_since_epoch()).count();
  constexpr std::int64_t kMin =
      std::chrono::duration_cast<seconds>(Clock::time_point::min().time_since_epoch()).count();
  if (s >= kMax) return Clock::time_point::max();
  if (s <= kMin) return Clock::time_point::min();
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(seconds(s)));
}

std::int64_t to_unix_seconds(Clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::optional<std::int64_t> asn1_unix_seconds(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string format_unix_seconds(std::int64_t s) {
  auto t = static_cast<std::time_t>(s);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "(date out of range)";
  std::array<char, 64> buf{};
  std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string(buf.data(), n);
}

// ---------------------------------------------------------------------------------------------
// Describing certificates.

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string name_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || name == nullptr) return {};
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  return bio_text(bio.get());
}

std::string key_type_text(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      return "RSA";
    case EVP_PKEY_RSA_PSS:
      return "RSA-PSS";
    case EVP_PKEY_ED25519:
      return "Ed25519";
    case EVP_PKEY_ED448:
      return "Ed448";
    case EVP_PKEY_DSA:
      return "DSA";
    case EVP_PKEY_EC: {
      std::array<char, 80> group{};
      std::size_t len = 0;
      if (EVP_PKEY_get_group_name(key, group.data(), group.size(), &len) != 1) return "EC";
      const char* nist = EC_curve_nid2nist(OBJ_sn2nid(group.data()));
      return std::string("EC ") + (nist != nullptr ? nist : group.data());
    }
    default:
      return OBJ_nid2sn(EVP_PKEY_get_base_id(key));
  }
}

std::vector<std::string> subject_alt_names(const X509* cert) {
  std::vector<std::string> out;
  NamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type == GEN_DNS) {
      const ASN1_IA5STRING* s = gn->d.dNSName;
      out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                         static_cast<std::size_t>(ASN1_STRING_length(s))));
    } else if (gn->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
      std::array<char, INET6_ADDRSTRLEN> buf{};
      int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
      if (ASN1_STRING_length(ip) == 4 || ASN1_STRING_length(ip) == 16) {
        inet_ntop(family, ASN1_STRING_get0_data(ip), buf.data(), buf.size());
        out.push_back(std::string("IP:") + buf.data());
      }
    }
  }
  return out;
}

std::string hex_colons(const unsigned char* data, unsigned n) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    if (i > 0) out += ':';
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 0xf];
  }
  return out;
}

bool is_self_signed(X509* cert) {
  EVP_PKEY* pub = X509_get0_pubkey(cert);
  bool self = pub != nullptr &&
              X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0 &&
              X509_verify(cert, pub) == 1;
  ERR_clear_error();
  return self;
}

CertificateInfo describe(X509* cert, const fs::path& file) {
  CertificateInfo info;
  info.subject = name_text(X509_get_subject_name(cert));
  info.issuer = name_text(X509_get_issuer_name(cert));
  info.subject_alt_names = subject_alt_names(cert);
  if (EVP_PKEY* pub = X509_get0_pubkey(cert)) {
    info.key_type = key_type_text(pub);
    info.key_bits = EVP_PKEY_get_bits(pub);
  }
  info.signature_algorithm = OBJ_nid2ln(X509_get_signature_nid(cert));
  if (BnPtr serial{ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)}) {
    if (char* hex = BN_bn2hex(serial.get())) {
      info.serial_number = hex;
      OPENSSL_free(hex);
    }
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md.data(), &md_len) == 1) {
    info.sha256_fingerprint = hex_colons(md.data(), md_len);
  }
  if (auto s = asn1_unix_seconds(X509_get0_notBefore(cert)))
    info.not_before = from_unix_seconds(*s);
  if (auto s = asn1_unix_seconds(X509_get0_notAfter(cert))) info.not_after = from_unix_seconds(*s);
  info.self_signed = is_self_signed(cert);
  info.certificate_file = file;
  ERR_clear_error();
  return info;
}

// ---------------------------------------------------------------------------------------------
// Health rules.

struct Problem {
  bool about_key;  // the private key is at fault (name its file), else the certificate
  std::string reason;
};

std::optional<std::string> check_dates(X509* cert, Clock::time_point now) {
  auto not_before = asn1_unix_seconds(X509_get0_notBefore(cert));
  auto not_after = asn1_unix_seconds(X509_get0_notAfter(cert));
  if (!not_before || !not_after) return "has an unreadable validity period";
  std::int64_t t = to_unix_seconds(now);
  if (t < *not_before) return "not valid before " + format_unix_seconds(*not_before);
  if (t > *not_after) return "expired on " + format_unix_seconds(*not_after);
  return std::nullopt;
}

std::optional<std::string> check_strength(X509* cert) {
  EVP_PKEY* pub = X509_get0_pubkey(cert);
  if (pub == nullptr) {
    ERR_clear_error();
    return "has a public key OpenSSL cannot read";
  }
  int bits = EVP_PKEY_get_bits(pub);
  switch (EVP_PKEY_get_base_id(pub)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      if (bits < 2048) {
        return "RSA key of " + std::to_string(bits) +
               " bits is too weak (at least 2048 bits; ECDSA P-256 is better)";
      }
      break;
    case EVP_PKEY_EC:
      if (bits < 256) {
        return "EC key of " + std::to_string(bits) + " bits (" + key_type_text(pub) +
               ") is too weak (at least 256 bits: P-256 or P-384)";
      }
      break;
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
      break;
    default:
      return key_type_text(pub) + " keys are not supported (use ECDSA P-256 or RSA 2048+)";
  }
  return std::nullopt;
}

std::optional<std::string> check_signature(X509* cert) {
  int md_nid = NID_undef;
  int pk_nid = NID_undef;
  int security_bits = 0;
  std::uint32_t flags = 0;
  if (X509_get_signature_info(cert, &md_nid, &pk_nid, &security_bits, &flags) != 1) {
    ERR_clear_error();
    return "has a signature algorithm OpenSSL does not know";
  }
  const char* weak = nullptr;
  switch (md_nid) {
    case NID_sha1:
      weak = "SHA-1";
      break;
    case NID_md5:
    case NID_md5_sha1:
      weak = "MD5";
      break;
    case NID_md4:
      weak = "MD4";
      break;
    case NID_md2:
      weak = "MD2";
      break;
    default:
      break;
  }
  if (weak == nullptr) return std::nullopt;
  return std::string("signed with ") + weak + " (" + OBJ_nid2ln(X509_get_signature_nid(cert)) +
         "), which can be forged: reissue it with SHA-256 or better";
}

std::optional<Problem> check_leaf(X509* cert, EVP_PKEY* key, Clock::time_point now) {
  if (auto p = check_dates(cert, now)) return Problem{false, *p};
  if (key != nullptr && X509_check_private_key(cert, key) != 1) {
    ERR_clear_error();
    return Problem{true, "private key does not match the certificate"};
  }
  if (auto p = check_strength(cert)) return Problem{false, *p};
  if (auto p = check_signature(cert)) return Problem{false, *p};
  return std::nullopt;
}

// Intermediates: the same rules except the key match. A self-signed root appended to the file
// is exempt from the date and signature rules: clients take roots from their own trust store
// (and an old cross-signed root there does no harm); its key size still counts, as OpenSSL
// refuses to send a weak one.
std::optional<std::string> check_chain_certificate(X509* cert, Clock::time_point now) {
  bool root = is_self_signed(cert);
  if (!root) {
    if (auto p = check_dates(cert, now)) return p;
  }
  if (auto p = check_strength(cert)) return p;
  if (!root) {
    if (auto p = check_signature(cert)) return p;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Files.

// Reads a PEM file into `data` (Result<std::string> would be ambiguous with the error).
base::Result<void> read_small_file(const fs::path& path, std::string& data) {
  data.clear();
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return "cannot read: " + errno_text(errno);
  std::array<char, 8192> buf{};
  int err = 0;
  while (true) {
    std::size_t n = std::fread(buf.data(), 1, buf.size(), f);
    data.append(buf.data(), n);
    if (data.size() > kMaxPemBytes) {
      std::fclose(f);
      return std::string("file is larger than 1 MiB: not a PEM certificate or key");
    }
    if (n < buf.size()) {
      if (std::ferror(f) != 0) err = errno != 0 ? errno : EIO;
      break;
    }
  }
  std::fclose(f);
  if (err != 0) return "cannot read: " + errno_text(err);
  return {};
}

BioPtr memory_bio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// Every certificate in a PEM text, in order; other PEM blocks (a key) are skipped.
base::Result<std::vector<X509Ptr>> parse_certificates(const std::string& pem) {
  ERR_clear_error();
  BioPtr bio = memory_bio(pem);
  std::vector<X509Ptr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr)) {
    certs.emplace_back(cert);
  }
  unsigned long err = ERR_peek_last_error();
  bool clean_end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  if (!clean_end && err != 0) {
    return "certificate #" + std::to_string(certs.size() + 1) +
           " cannot be parsed: " + openssl_error();
  }
  ERR_clear_error();
  if (certs.empty()) return std::string("no PEM certificate (BEGIN CERTIFICATE) in the file");
  return certs;
}

base::Result<KeyPtr> parse_private_key(const std::string& pem) {
  ERR_clear_error();
  BioPtr bio = memory_bio(pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (key) {
    ERR_clear_error();
    return key;
  }
  std::string detail = openssl_error();
  if (pem.find("ENCRYPTED") != std::string::npos) {
    return std::string(
        "the private key is encrypted with a passphrase; sipwarden starts unattended and needs "
        "it unencrypted (protect the file with mode 0600 instead)");
  }
  if (pem.find("PRIVATE KEY-----") == std::string::npos) {
    return std::string("no PEM private key (BEGIN PRIVATE KEY) in the file");
  }
  return "the private key cannot be parsed: " + detail;
}

// mkdir -p where every directory this creates gets mode 0700.
base::Result<void> make_private_dirs(const fs::path& dir) {
  std::error_code ec;
  if (dir.empty() || fs::is_directory(dir, ec)) return {};
  fs::path parent = dir.parent_path();
  if (!parent.empty() && parent != dir) {
    auto made = make_private_dirs(parent);
    if (!made) return made;
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return "cannot create directory " + dir.string() + ": " + errno_text(errno);
  }
  return {};
}

// Writes `data` to `path` with `mode` through a temporary file and a rename, so a reader
// never sees half a file.
base::Result<void> write_file_atomically(const fs::path& path, const std::string& data,
                                         mode_t mode) {
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return "cannot write " + tmp.string() + ": " + errno_text(errno);
  auto fail = [&](int err) -> base::Result<void> {
    ::close(fd);
    ::unlink(tmp.c_str());
    return "cannot write " + tmp.string() + ": " + errno_text(err);
  };
  // A stale temporary file from a crash keeps its old mode through O_TRUNC; set it again.
  if (::fchmod(fd, mode) != 0) return fail(errno);
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno);
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return fail(errno);
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return "cannot write " + tmp.string() + ": " + errno_text(err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return "cannot rename " + tmp.string() + " to " + path.string() + ": " + errno_text(err);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// The self-signed certificate.

struct Credentials {
  X509Ptr leaf;
  std::vector<X509Ptr> chain;  // intermediates, in file order
  KeyPtr key;
};

bool is_ip_literal(const std::string& host) {
  std::array<unsigned char, 16> buf{};
  return inet_pton(AF_INET, host.c_str(), buf.data()) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

bool names_host(X509* cert, const std::string& host) {
  int r = is_ip_literal(host) ? X509_check_ip_asc(cert, host.c_str(), 0)
                              : X509_check_host(cert, host.data(), host.size(), 0, nullptr);
  ERR_clear_error();
  return r == 1;
}

std::string self_signed_domain(const TlsSettings& settings) {
  return settings.domain.empty() ? std::string("localhost") : settings.domain;
}

bool add_general_name(GENERAL_NAMES* names, int type, const std::string& value) {
  GENERAL_NAME* gn = nullptr;
  if (type == GEN_DNS) {
    gn = GENERAL_NAME_new();
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (gn == nullptr || s == nullptr ||
        ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1) {
      GENERAL_NAME_free(gn);
      ASN1_IA5STRING_free(s);
      return false;
    }
    GENERAL_NAME_set0_value(gn, GEN_DNS, s);
  } else {
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(value.c_str());
    gn = GENERAL_NAME_new();
    if (gn == nullptr || ip == nullptr) {
      GENERAL_NAME_free(gn);
      ASN1_OCTET_STRING_free(ip);
      return false;
    }
    GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
  }
  if (sk_GENERAL_NAME_push(names, gn) <= 0) {
    GENERAL_NAME_free(gn);
    return false;
  }
  return true;
}

bool add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

// ECDSA P-256, SHA-256, CN and subjectAltName for the domain plus the loopback names, a
// random 128-bit serial, valid from an hour before `now` for a year.
base::Result<Credentials> generate_self_signed(const std::string& domain, Clock::time_point now) {
  auto failed = [](const char* what) -> base::Result<Credentials> {
    return std::string("cannot generate the self-signed certificate (") + what +
           "): " + openssl_error();
  };
  Credentials out;
  out.key.reset(EVP_EC_gen("P-256"));
  if (!out.key) return failed("key");
  out.leaf.reset(X509_new());
  X509* cert = out.leaf.get();
  if (cert == nullptr || X509_set_version(cert, X509_VERSION_3) != 1) return failed("certificate");

  std::array<unsigned char, 16> serial_bytes{};
  if (RAND_bytes(serial_bytes.data(), static_cast<int>(serial_bytes.size())) != 1) {
    return failed("serial");
  }
  // Never zero, and always 16 bytes long (RFC 5280 §4.1.2.2: positive, at most 20 octets).
  serial_bytes[0] |= 0x01;
  BnPtr serial(BN_bin2bn(serial_bytes.data(), static_cast<int>(serial_bytes.size()), nullptr));
  if (!serial || BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) == nullptr) {
    return failed("serial");
  }

  std::int64_t start = to_unix_seconds(now - kSelfSignedBackdate);
  std::int64_t end = to_unix_seconds(now + kSelfSignedValidity);
  if (ASN1_TIME_set(X509_getm_notBefore(cert), static_cast<std::time_t>(start)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), static_cast<std::time_t>(end)) == nullptr) {
    return failed("validity");
  }

  // RFC 5280's upper bound for a common name is 64 characters; the domain is in the SAN anyway.
  std::string cn = domain.size() <= 64 ? domain : std::string("sipwarden");
  X509_NAME* name = X509_get_subject_name(cert);
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("sipwarden self-signed"),
                                 -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert, name) != 1 || X509_set_pubkey(cert, out.key.get()) != 1) {
    return failed("name");
  }

  NamesPtr names(GENERAL_NAMES_new());
  if (!names) return failed("subjectAltName");
  std::vector<std::pair<int, std::string>> wanted = {
      {GEN_DNS, "localhost"}, {GEN_IPADD, "127.0.0.1"}, {GEN_IPADD, "::1"}};
  bool domain_is_loopback = domain == "localhost" || domain == "127.0.0.1" || domain == "::1";
  if (!domain_is_loopback) {
    wanted.insert(wanted.begin(), {is_ip_literal(domain) ? GEN_IPADD : GEN_DNS, domain});
  }
  for (const auto& [type, value] : wanted) {
    if (!add_general_name(names.get(), type, value)) return failed("subjectAltName");
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1 ||
      !add_extension(cert, NID_basic_constraints, "critical,CA:FALSE") ||
      !add_extension(cert, NID_key_usage, "critical,digitalSignature") ||
      // Servers also connect to other servers and trunks as TLS clients (RFC 5922 §7).
      !add_extension(cert, NID_ext_key_usage, "serverAuth,clientAuth") ||
      !add_extension(cert, NID_subject_key_identifier, "hash")) {
    return failed("extensions");
  }
  if (X509_sign(cert, out.key.get(), EVP_sha256()) <= 0) return failed("signature");
  return out;
}

std::string pem_of(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  return bio_text(bio.get());
}

std::string pem_of(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  return bio_text(bio.get());
}

constexpr std::string_view kMissing = "missing";

// Why the self-signed files cannot be reused, or std::nullopt if they can (kMissing when
// neither file exists: the first start).
std::optional<std::string> self_signed_unusable(const fs::path& cert_file, const fs::path& key_file,
                                                const TlsSettings& settings, Clock::time_point now,
                                                Credentials& out) {
  std::error_code ec;
  if (!fs::exists(cert_file, ec) && !fs::exists(key_file, ec)) return std::string(kMissing);
  std::string cert_pem;
  std::string key_pem;
  if (auto read = read_small_file(cert_file, cert_pem); !read) {
    return cert_file.string() + ": " + read.error();
  }
  if (auto read = read_small_file(key_file, key_pem); !read) {
    return key_file.string() + ": " + read.error();
  }
  auto certs = parse_certificates(cert_pem);
  if (!certs) return certs.error();
  auto key = parse_private_key(key_pem);
  if (!key) return key.error();
  X509* leaf = certs->front().get();
  if (auto problem = check_leaf(leaf, key->get(), now)) return problem->reason;
  std::string domain = self_signed_domain(settings);
  if (!names_host(leaf, domain)) return "it is for another domain than " + domain;
  unsigned renew_days = std::min(settings.expiry_warning_days, kMaxRenewDays);
  if (expiry_warning(describe(leaf, cert_file), renew_days, now).has_value()) {
    return "it expires within " + std::to_string(renew_days) + " days";
  }
  out.leaf = std::move(certs->front());
  out.key = std::move(*key);
  return std::nullopt;
}

base::Result<Credentials> self_signed_credentials(const TlsSettings& settings,
                                                  Clock::time_point now,
                                                  std::vector<std::string>& warnings) {
  fs::path dir = settings.data_dir / "tls";
  fs::path cert_file = dir / "selfsigned-cert.pem";
  fs::path key_file = dir / "selfsigned-key.pem";

  Credentials creds;
  auto unusable = self_signed_unusable(cert_file, key_file, settings, now, creds);
  if (unusable) {
    std::string domain = self_signed_domain(settings);
    auto made = make_private_dirs(dir);
    if (!made) return "cannot store the self-signed certificate: " + made.error();
    auto generated = generate_self_signed(domain, now);
    if (!generated) return generated.error();
    creds = std::move(*generated);
    std::string cert_pem = pem_of(creds.leaf.get());
    std::string key_pem = pem_of(creds.key.get());
    if (cert_pem.empty() || key_pem.empty()) {
      return "cannot encode the self-signed certificate: " + openssl_error();
    }
    // Key first: if we stop in between, the old certificate no longer matches and the next
    // start generates again.
    auto wrote = write_file_atomically(key_file, key_pem, 0600);
    if (wrote) wrote = write_file_atomically(cert_file, cert_pem, 0644);
    if (!wrote) return "cannot store the self-signed certificate: " + wrote.error();
    std::string fingerprint = describe(creds.leaf.get(), cert_file).sha256_fingerprint;
    if (*unusable == kMissing) {
      warnings.push_back("generated a self-signed TLS certificate for " + domain + ": " +
                         cert_file.string() + " (SHA-256 fingerprint " + fingerprint + ")");
    } else {
      warnings.push_back("replaced the self-signed TLS certificate " + cert_file.string() + " (" +
                         *unusable + ") with a new one for " + domain + " (SHA-256 fingerprint " +
                         fingerprint + ")");
    }
  }
  warnings.push_back("no TLS certificate configured: using a self-signed certificate (" +
                     cert_file.string() +
                     "); phones will not be able to verify this server \u2014 configure "
                     "tls.certificate and tls.private_key");
  return creds;
}

// ---------------------------------------------------------------------------------------------
// Configured certificate and key.

base::Result<Credentials> configured_credentials(const TlsSettings& settings, Clock::time_point now,
                                                 std::vector<std::string>& warnings) {
  const std::string cert_name = "tls.certificate " + settings.certificate.string();
  const std::string key_name = "tls.private_key " + settings.private_key.string();

  std::string cert_pem;
  if (auto read = read_small_file(settings.certificate, cert_pem); !read) {
    return cert_name + ": " + read.error();
  }
  auto certs = parse_certificates(cert_pem);
  if (!certs) return cert_name + ": " + certs.error();
  std::string key_pem;
  if (auto read = read_small_file(settings.private_key, key_pem); !read) {
    return key_name + ": " + read.error();
  }
  auto key = parse_private_key(key_pem);
  if (!key) return key_name + ": " + key.error();

  Credentials creds;
  creds.key = std::move(*key);
  creds.leaf = std::move(certs->front());
  for (std::size_t i = 1; i < certs->size(); ++i) creds.chain.push_back(std::move((*certs)[i]));

  if (auto problem = check_leaf(creds.leaf.get(), creds.key.get(), now)) {
    if (!problem->about_key) return cert_name + ": " + problem->reason;
    std::string message =
        key_name + ": does not match the certificate in " + settings.certificate.string();
    for (std::size_t i = 0; i < creds.chain.size(); ++i) {
      if (X509_check_private_key(creds.chain[i].get(), creds.key.get()) == 1) {
        message += " (it matches certificate #" + std::to_string(i + 2) +
                   " of that file: the server certificate must come first)";
        break;
      }
    }
    ERR_clear_error();
    return message;
  }
  for (std::size_t i = 0; i < creds.chain.size(); ++i) {
    if (auto problem = check_chain_certificate(creds.chain[i].get(), now)) {
      return cert_name + ": chain certificate #" + std::to_string(i + 2) + " (" +
             name_text(X509_get_subject_name(creds.chain[i].get())) + "): " + *problem;
    }
  }

  if (!settings.domain.empty() && !names_host(creds.leaf.get(), settings.domain)) {
    warnings.push_back("TLS certificate " + settings.certificate.string() +
                       " does not name the SIP domain " + settings.domain +
                       ": phones that check the server name will refuse it");
  }
  struct stat st {};
  if (::stat(settings.private_key.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
    std::array<char, 8> mode{};
    std::snprintf(mode.data(), mode.size(), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    warnings.push_back("TLS private key " + settings.private_key.string() +
                       " is readable by every user on this host (mode " + mode.data() +
                       "): chmod 600 it");
  }
  return creds;
}

// ---------------------------------------------------------------------------------------------
// The context.

base::Result<void> apply_policy(SSL_CTX* ctx, int min_version) {
  auto failed = [](const char* what) -> base::Result<void> {
    return std::string("cannot configure TLS (") + what + "): " + openssl_error();
  };
  SSL_CTX_set_security_level(ctx, kSecurityLevel);
  if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, 0) != 1) {
    return failed("protocol versions");
  }
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) return failed("TLS 1.2 ciphers");
  if (SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1) return failed("TLS 1.3 suites");
  if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) return failed("groups");

  // OpenSSL 3 already refuses client-initiated renegotiation (unless
  // SSL_OP_ALLOW_CLIENT_RENEGOTIATION); SSL_OP_NO_RENEGOTIATION refuses it in both directions
  // whatever the library's default: a renegotiation is a full handshake the client makes the
  // server pay for, on a connection that is already open.
  SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                               SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  // An idle SIP connection (most of them, most of the time) holds no record buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(ctx, kSessionCacheSize);
  SSL_CTX_set_timeout(ctx, kSessionTimeoutSeconds);
  // TLS 1.3 with SSL_OP_NO_TICKET sends "stateful tickets" (cache keys); one is enough.
  if (SSL_CTX_set_num_tickets(ctx, 1) != 1) return failed("tickets");
  if (SSL_CTX_set_session_id_context(
          ctx, reinterpret_cast<const unsigned char*>(kSessionIdContext.data()),
          static_cast<unsigned>(kSessionIdContext.size())) != 1) {
    return failed("session id context");
  }
  // 0-RTT data can be replayed; SIP requests are not idempotent. OpenSSL's default is off;
  // say so where someone will look.
  SSL_CTX_set_max_early_data(ctx, 0);
  return {};
}

base::Result<void> apply_client_verification(SSL_CTX* ctx, const TlsSettings& settings) {
  if (!settings.verify_client) return {};
  if (settings.client_ca.empty()) {
    return std::string(
        "tls.verify_client is on but tls.client_ca is not set: name the PEM file of the CAs "
        "that sign client certificates");
  }
  const std::string ca_name = "tls.client_ca " + settings.client_ca.string();
  std::string pem;
  if (auto read = read_small_file(settings.client_ca, pem); !read) {
    return ca_name + ": " + read.error();
  }
  auto cas = parse_certificates(pem);
  if (!cas) return ca_name + ": " + cas.error();
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
  if (names == nullptr) return ca_name + ": " + openssl_error();
  for (const X509Ptr& ca : *cas) {
    X509_NAME* name = X509_NAME_dup(X509_get_subject_name(ca.get()));
    if (X509_STORE_add_cert(store, ca.get()) != 1 || name == nullptr ||
        sk_X509_NAME_push(names, name) <= 0) {
      X509_NAME_free(name);
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      return ca_name + ": " + openssl_error();
    }
  }
  // The CertificateRequest lists these names so a client with several certificates picks
  // the right one.
  SSL_CTX_set_client_CA_list(ctx, names);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return {};
}

}  // namespace

base::Result<void> check_certificate(x509_st* cert, evp_pkey_st* key, Clock::time_point now) {
  if (cert == nullptr) return std::string("no certificate");
  if (auto problem = check_leaf(cert, key, now)) return problem->reason;
  return {};
}

std::optional<std::string> expiry_warning(const CertificateInfo& info, unsigned warning_days,
                                          Clock::time_point now) {
  const std::string date = format_unix_seconds(to_unix_seconds(info.not_after));
  const std::string file = info.certificate_file.string();
  if (info.not_after <= now) return "TLS certificate " + file + " expired on " + date;
  // Bounded so the nanosecond arithmetic below cannot overflow.
  auto window = std::chrono::hours(24) * std::min<std::int64_t>(warning_days, 100 * 366);
  auto left = info.not_after - now;
  if (left > window) return std::nullopt;
  auto days = std::chrono::floor<std::chrono::hours>(left).count() / 24;
  std::string in = days == 0   ? "less than a day"
                   : days == 1 ? "1 day"
                               : std::to_string(days) + " days";
  return "TLS certificate " + file + " expires in " + in + " (on " + date + ")";
}

base::Result<TlsServer> load_tls_server(const TlsSettings& settings, Clock::time_point now) {
  int min_version = 0;
  if (settings.min_version == "1.2") {
    min_version = TLS1_2_VERSION;
  } else if (settings.min_version == "1.3") {
    min_version = TLS1_3_VERSION;
  } else {
    return "tls.min_version must be \"1.2\" or \"1.3\" (got \"" + settings.min_version + "\")";
  }
  bool has_cert = !settings.certificate.empty();
  bool has_key = !settings.private_key.empty();
  if (has_cert != has_key) {
    return std::string(has_cert ? "tls.certificate is set but tls.private_key is not"
                                : "tls.private_key is set but tls.certificate is not") +
           ": set both, or neither to use a generated self-signed certificate";
  }

  ERR_clear_error();
  TlsServer server;
  auto creds = has_cert ? configured_credentials(settings, now, server.warnings)
                        : self_signed_credentials(settings, now, server.warnings);
  if (!creds) {
    ERR_clear_error();
    return creds.error();
  }
  fs::path cert_file =
      has_cert ? settings.certificate : settings.data_dir / "tls" / "selfsigned-cert.pem";

  try {
    server.context =
        std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  } catch (const std::exception& e) {
    ERR_clear_error();
    return std::string("cannot create a TLS context: ") + e.what();
  }
  SSL_CTX* ctx = server.context->native_handle();
  auto applied = apply_policy(ctx, min_version);
  if (applied) applied = apply_client_verification(ctx, settings);
  if (!applied) {
    ERR_clear_error();
    return applied.error();
  }

  // The objects checked above are the ones served: each file is read once, so a certificate
  // renewed between two reads cannot slip in unchecked.
  bool loaded = SSL_CTX_use_certificate(ctx, creds->leaf.get()) == 1 &&
                SSL_CTX_use_PrivateKey(ctx, creds->key.get()) == 1;
  for (const X509Ptr& c : creds->chain) {
    loaded = loaded && SSL_CTX_add1_chain_cert(ctx, c.get()) == 1;
  }
  loaded = loaded && SSL_CTX_check_private_key(ctx) == 1;
  if (!loaded)
    return "tls.certificate " + cert_file.string() + ": refused by OpenSSL: " + openssl_error();

  server.certificate = describe(creds->leaf.get(), cert_file);
  if (has_cert) {
    if (auto warning = expiry_warning(server.certificate, settings.expiry_warning_days, now)) {
      server.warnings.push_back(*warning);
    }
  }
  ERR_clear_error();
  return server;
}

}  // namespace transport
