#include "app/lint.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace app {

int lint_files(const std::vector<std::string>& files, const sip::ParseOptions& options,
               std::ostream& out) {
  int exit_code = 0;
  sip::Message message;
  for (const std::string& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      out << path << ": unreadable: " << std::strerror(errno) << '\n';
      exit_code = 1;
      continue;
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (auto r = sip::parse(bytes, message, options); r) {
      out << path << ": valid\n";
    } else {
      out << path << ": invalid: " << r.error().describe() << '\n';
      exit_code = 1;
    }
  }
  return exit_code;
}

}  // namespace app
