// Error values for the SIP layer. Nothing in src/sip throws: every failure is an Error value
// that names what is wrong, so a malformed packet from the internet becomes a 400 (or a
// silent drop), never an exception or a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sip {

// What kind of failure, coarse enough for callers to branch on (which status code to send),
// fine enough for tests to assert the right rejection.
enum class ErrorCode : std::uint8_t {
  kTooLarge,          // message, header line, URI or header count over a configured limit
  kBadStartLine,      // request line or status line malformed
  kBadVersion,        // SIP version other than SIP/2.0 (a server answers 505)
  kBadHeader,         // header line malformed (name, colon, folding)
  kBadHeaderValue,    // a known header's value does not match its grammar
  kBadUri,            // URI malformed
  kMissingHeader,     // a mandatory header is absent
  kDuplicateHeader,   // a single-valued header appears more than once
  kInconsistent,      // headers disagree with each other or the start line (CSeq method)
  kBadContentLength,  // Content-Length malformed, or larger than the body received
  kTruncated,         // the input ends before the header section does
};

// Human-readable name of the code, e.g. "bad header value".
std::string_view to_string(ErrorCode code);

// A failure: a code, a static description and, where useful, the offending input.
// `what` points to a string literal; `where` is a view into the parsed input (it borrows
// that buffer, so it must not outlive it) or empty.
struct Error {
  ErrorCode code;
  const char* what;
  std::string_view where = {};

  // "bad header value: CSeq sequence number exceeds 2^32-1 (near "36893488147419103232 REG")".
  // Non-printable bytes of `where` are shown as \xNN and it is cut at 40 bytes.
  std::string describe() const;
};

// Either a value or an Error (see base/result.h).
template <typename T>
using Result = base::Result<T, Error>;

}  // namespace sip
