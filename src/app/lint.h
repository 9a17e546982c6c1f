// `sipwarden lint FILE...`: parse captured SIP messages and report a verdict per file.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "sip/parser.h"

namespace app {

// Parses each file as one message and writes "<file>: valid" or "<file>: invalid: <reason>"
// (or "<file>: unreadable: <reason>") to `out`, one line per file. Returns the process exit
// code: 0 when every file is valid, 1 otherwise.
int lint_files(const std::vector<std::string>& files, const sip::ParseOptions& options,
               std::ostream& out);

}  // namespace app
