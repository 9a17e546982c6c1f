#include "app/user.h"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "auth/challenge.h"
#include "base/clock.h"
#include "auth/digest.h"
#include "config/config.h"

namespace app {
namespace {

namespace fs = std::filesystem;

constexpr int kOk = 0;
constexpr int kRefused = 1;
constexpr int kUsage = 2;

constexpr std::size_t kMaxNameLength = 64;

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Text that came off the network (Contact, User-Agent) must not drive the admin's terminal.
std::string printable(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

std::string utc_time(std::int64_t unix_seconds) {
  if (unix_seconds <= 0) return "-";
  auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_seconds);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string strip_line_ending(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A CSV field wholly wrapped in double quotes, as spreadsheets export it. Neither names nor
// acceptable passwords can contain '"', so unwrapping is never ambiguous.
std::string_view unquote(std::string_view field) {
  if (field.size() >= 2 && field.front() == '"' && field.back() == '"') {
    return field.substr(1, field.size() - 2);
  }
  return field;
}

// ---- the terminal: no echo while a password is typed, restored even on Ctrl-C

struct termios g_saved_termios;
volatile std::sig_atomic_t g_echo_off = 0;

void restore_echo_and_reraise(int sig) {
  if (g_echo_off != 0) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

std::optional<std::string> read_secret_from_terminal(std::string_view prompt) {
  std::cerr << prompt << std::flush;
  if (::tcgetattr(STDIN_FILENO, &g_saved_termios) != 0) return std::nullopt;
  struct termios quiet = g_saved_termios;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
  std::vector<std::pair<int, void (*)(int)>> previous;
  for (int sig : kSignals) previous.emplace_back(sig, std::signal(sig, restore_echo_and_reraise));
  g_echo_off = 1;
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  std::string line;
  bool got = static_cast<bool>(std::getline(std::cin, line));
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
  g_echo_off = 0;
  for (auto& [sig, handler] : previous) std::signal(sig, handler);
  if (!got) {
    std::cerr << '\n';
    return std::nullopt;
  }
  return strip_line_ending(std::move(line));
}

// mkdir -p where every directory created gets mode 0700 (it will hold password hashes).
base::Result<void> make_private_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return {};
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    auto parent = make_private_dir(dir.parent_path());
    if (!parent) return parent;
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return dir.string() + ": cannot create directory: " + std::strerror(errno);
  }
  return {};
}

fs::path executable_dir(const std::string& argv0) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec || self.empty()) {
    self = fs::weakly_canonical(fs::path(argv0), ec);
    if (ec) self = argv0;
  }
  return self.parent_path();
}

}  // namespace

// ---- names and passwords

std::optional<std::string> invalid_user_name(std::string_view name) {
  if (name.empty()) return "user name is empty";
  if (name.size() > kMaxNameLength) {
    return "user name is longer than " + std::to_string(kMaxNameLength) + " characters";
  }
  for (char c : name) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == '+' || c == '-';
    if (!allowed) return "user name may only contain letters, digits and . _ + -";
  }
  return std::nullopt;
}

base::Result<auth::PasswordPolicy> load_password_policy(const std::string& argv0) {
  if (const char* env = std::getenv("SIPWARDEN_COMMON_PASSWORDS"); env != nullptr && *env) {
    // Set explicitly: use exactly that file, never fall back to another list.
    auto policy = auth::PasswordPolicy::from_file(env);
    if (!policy) return "SIPWARDEN_COMMON_PASSWORDS: " + policy.error();
    return policy;
  }
  fs::path exe = executable_dir(argv0);
  std::vector<fs::path> candidates = {
      exe / ".." / "data" / "common-passwords.txt",
      exe / ".." / "share" / "sipwarden" / "common-passwords.txt",
  };
#ifdef SIPWARDEN_SOURCE_DIR
  candidates.emplace_back(fs::path(SIPWARDEN_SOURCE_DIR) / "data" / "common-passwords.txt");
#endif
  std::string looked;
  for (const fs::path& path : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) {
      // Found but unreadable or broken: an error, not a reason to try the next one.
      return auth::PasswordPolicy::from_file(path.lexically_normal().string());
    }
    looked += (looked.empty() ? "" : ", ") + path.lexically_normal().string();
  }
  return "the common-password list was not found (looked at " + looked +
         "; set SIPWARDEN_COMMON_PASSWORDS to its path)";
}

// ---- UserAdmin

struct UserAdmin::NewPassword {
  std::optional<std::string> password;  // set on success
  int exit_code = kOk;                  // otherwise
};

UserAdmin::UserAdmin(store::Store& store, UserSettings settings, UserConsole console)
    : store_(store), settings_(std::move(settings)), console_(std::move(console)) {}

std::string UserAdmin::aor(const std::string& name) const {
  return name + "@" + lowercase(settings_.realm);
}

UserAdmin::NewPassword UserAdmin::obtain_password(const std::string& name, PasswordSource source) {
  std::ostream& err = console_.err;
  // First, so that nobody types a password only to learn it cannot be checked.
  auto policy = settings_.load_policy();
  if (!policy) {
    err << "cannot check password strength, refusing to set a password: " << policy.error() << "\n";
    return {std::nullopt, kRefused};
  }
  std::string password;
  switch (source) {
    case PasswordSource::kGenerate:
      password = auth::generate_password();
      break;
    case PasswordSource::kStdin: {
      std::string line;
      if (!std::getline(console_.in, line) && line.empty()) {
        err << "no password on standard input\n";
        return {std::nullopt, kRefused};
      }
      password = strip_line_ending(std::move(line));
      break;
    }
    case PasswordSource::kTerminal: {
      if (!console_.read_secret) {
        err << "standard input is not a terminal: use --password-stdin (one line) or "
               "--generate\n";
        return {std::nullopt, kUsage};
      }
      auto first = console_.read_secret("Password for " + name + ": ");
      if (!first) {
        err << "no password entered\n";
        return {std::nullopt, kRefused};
      }
      auto again = console_.read_secret("Again: ");
      if (!again || *again != *first) {
        err << "the passwords do not match; nothing changed\n";
        return {std::nullopt, kRefused};
      }
      password = std::move(*first);
      break;
    }
  }

  if (auto weak = policy->weakness(name, password)) {
    err << "password refused: " << *weak << "\n";
    return {std::nullopt, kRefused};
  }
  return {std::move(password), kOk};
}

int UserAdmin::add(const std::string& name, PasswordSource source, bool require_tls) {
  std::ostream& err = console_.err;
  if (auto bad = invalid_user_name(name)) {
    err << "user add: " << *bad << "\n";
    return kRefused;
  }
  auto existing = store_.get_subscriber(name);
  if (!existing) {
    err << "user add: " << existing.error() << "\n";
    return kRefused;
  }
  if (existing->has_value()) {
    err << "user add: " << name << " already exists; use user passwd to change its password\n";
    return kRefused;
  }
  NewPassword pw = obtain_password(name, source);
  if (!pw.password) return pw.exit_code;

  const std::int64_t now = settings_.now();
  store::Subscriber s;
  s.name = name;
  s.realm = settings_.realm;
  s.ha1_md5 = auth::ha1(auth::Algorithm::kMd5, name, settings_.realm, *pw.password);
  s.ha1_sha256 = auth::ha1(auth::Algorithm::kSha256, name, settings_.realm, *pw.password);
  s.require_tls = require_tls;
  s.created_at = now;
  s.updated_at = now;
  if (auto put = store_.put_subscriber(s); !put) {
    err << "user add: " << put.error() << "\n";
    return kRefused;
  }
  console_.out << "added user " << name << " (realm " << settings_.realm
               << (require_tls ? ", TLS required" : "") << ")\n";
  if (source == PasswordSource::kGenerate) {
    console_.out << "password: " << *pw.password << "\n";
    err << "note: the generated password is shown only this once; it is not stored\n";
  }
  return kOk;
}

int UserAdmin::passwd(const std::string& name, PasswordSource source) {
  std::ostream& err = console_.err;
  if (auto bad = invalid_user_name(name)) {
    err << "user passwd: " << *bad << "\n";
    return kRefused;
  }
  auto existing = store_.get_subscriber(name);
  if (!existing) {
    err << "user passwd: " << existing.error() << "\n";
    return kRefused;
  }
  if (!existing->has_value()) {
    err << "user passwd: no such user: " << name << "\n";
    return kRefused;
  }
  NewPassword pw = obtain_password(name, source);
  if (!pw.password) return pw.exit_code;

  store::Subscriber s = **existing;
  s.realm = settings_.realm;
  s.ha1_md5 = auth::ha1(auth::Algorithm::kMd5, name, settings_.realm, *pw.password);
  s.ha1_sha256 = auth::ha1(auth::Algorithm::kSha256, name, settings_.realm, *pw.password);
  s.updated_at = settings_.now();
  if (auto put = store_.put_subscriber(s); !put) {
    err << "user passwd: " << put.error() << "\n";
    return kRefused;
  }
  console_.out << "password of " << name << " changed\n";
  if (source == PasswordSource::kGenerate) {
    console_.out << "password: " << *pw.password << "\n";
    err << "note: the generated password is shown only this once; it is not stored\n";
  }
  return kOk;
}

int UserAdmin::list() {
  std::ostream& err = console_.err;
  auto users = store_.list_subscribers();
  if (!users) {
    err << "user list: " << users.error() << "\n";
    return kRefused;
  }
  auto bindings = store_.load_bindings(settings_.now());
  if (!bindings) {
    err << "user list: " << bindings.error() << "\n";
    return kRefused;
  }
  std::unordered_map<std::string, std::size_t> per_aor;
  for (const store::Binding& b : *bindings) ++per_aor[b.aor];

  std::vector<store::Subscriber> sorted = std::move(*users);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::size_t width = 4;  // "NAME"
  for (const auto& s : sorted) width = std::max(width, s.name.size());

  auto row = [&](std::string_view name, std::string_view tls, std::string_view count) {
    console_.out << name << std::string(width - name.size() + 2, ' ') << tls
                 << std::string(13 - std::min<std::size_t>(tls.size(), 11), ' ') << count << "\n";
  };
  row("NAME", "REQUIRE_TLS", "BINDINGS");
  for (const auto& s : sorted) {
    auto it = per_aor.find(aor(s.name));
    row(s.name, s.require_tls ? "yes" : "no", std::to_string(it == per_aor.end() ? 0 : it->second));
  }
  return kOk;
}

int UserAdmin::show(const std::string& name) {
  std::ostream& err = console_.err;
  std::ostream& out = console_.out;
  if (auto bad = invalid_user_name(name)) {
    err << "user show: " << *bad << "\n";
    return kRefused;
  }
  auto found = store_.get_subscriber(name);
  if (!found) {
    err << "user show: " << found.error() << "\n";
    return kRefused;
  }
  if (!found->has_value()) {
    err << "user show: no such user: " << name << "\n";
    return kRefused;
  }
  const store::Subscriber& s = **found;
  const std::int64_t now = settings_.now();
  auto bindings = store_.bindings_of(aor(name), now);
  if (!bindings) {
    err << "user show: " << bindings.error() << "\n";
    return kRefused;
  }

  out << "name:        " << s.name << "\n"
      << "aor:         " << aor(name) << "\n"
      << "realm:       " << s.realm << "\n"
      << "require_tls: " << (s.require_tls ? "yes" : "no") << "\n"
      << "created:     " << utc_time(s.created_at) << "\n"
      << "updated:     " << utc_time(s.updated_at) << "\n";
  if (s.realm != settings_.realm) {
    // The HA1s only verify against the realm they were made for.
    err << "warning: the password was set for realm " << s.realm << " but the domain is now "
        << settings_.realm << ": this user cannot authenticate until `user passwd " << name
        << "`\n";
  }
  out << "bindings:    " << bindings->size() << "\n";
  std::size_t i = 0;
  for (const store::Binding& b : *bindings) {
    out << "  [" << ++i << "] contact:    " << printable(b.contact) << "\n"
        << "      expires:    in " << std::max<std::int64_t>(0, b.expires_at - now) << " s (at "
        << utc_time(b.expires_at) << ")\n"
        << "      transport:  " << printable(b.transport) << "\n"
        << "      source:     " << printable(b.source) << "\n"
        << "      user_agent: " << (b.user_agent.empty() ? "-" : printable(b.user_agent)) << "\n";
    if (!b.instance.empty()) out << "      instance:   " << printable(b.instance) << "\n";
  }
  return kOk;
}

int UserAdmin::remove(const std::string& name) {
  std::ostream& err = console_.err;
  if (auto bad = invalid_user_name(name)) {
    err << "user remove: " << *bad << "\n";
    return kRefused;
  }
  auto removed = store_.remove_subscriber(name);
  if (!removed) {
    err << "user remove: " << removed.error() << "\n";
    return kRefused;
  }
  if (!*removed) {
    err << "user remove: no such user: " << name << "\n";
    return kRefused;
  }
  console_.out << "removed user " << name << " and its bindings\n";
  return kOk;
}

int UserAdmin::import(std::istream& csv, const std::string& origin) {
  std::ostream& err = console_.err;
  struct Row {
    std::size_t line;
    std::string name;
    std::string password;
  };
  std::vector<Row> rows;
  std::vector<std::string> rejections;
  std::map<std::string, std::size_t> first_line_of;

  auto policy = settings_.load_policy();
  if (!policy) {
    err << "user import: cannot check password strength, refusing to set passwords: "
        << policy.error() << "\n";
    return kRefused;
  }

  std::string text;
  std::size_t line_no = 0;
  bool seen_content = false;
  while (std::getline(csv, text)) {
    ++line_no;
    std::string line = strip_line_ending(std::move(text));
    if (trim(line).empty()) continue;
    if (!seen_content) {
      seen_content = true;
      if (lowercase(trim(line)) == "name,password") continue;
    }
    auto reject = [&](std::string_view who, std::string_view why) {
      rejections.push_back("line " + std::to_string(line_no) + ": " + std::string(who) + ": " +
                           std::string(why));
    };
    auto comma = line.find(',');
    if (comma == std::string::npos) {
      // Never echo the line: it may be a password.
      rejections.push_back("line " + std::to_string(line_no) +
                           ": expected \"name,password\" (no comma)");
      continue;
    }
    std::string name(unquote(trim(std::string_view(line).substr(0, comma))));
    std::string password(unquote(std::string_view(line).substr(comma + 1)));
    if (auto bad = invalid_user_name(name)) {
      // Only a well-formed name is shown: a malformed one may be a misplaced password.
      reject(name.empty() ? "(empty)" : "(invalid name)", *bad);
      continue;
    }
    if (auto [it, inserted] = first_line_of.emplace(name, line_no); !inserted) {
      reject(name, "duplicate of line " + std::to_string(it->second));
      continue;
    }
    auto existing = store_.get_subscriber(name);
    if (!existing) {
      err << "user import: " << existing.error() << "\n";
      return kRefused;
    }
    if (existing->has_value()) {
      reject(name, "already exists; use user passwd");
      continue;
    }
    if (auto weak = policy->weakness(name, password)) {
      reject(name, "password refused: " + *weak);
      continue;
    }
    rows.push_back({line_no, std::move(name), std::move(password)});
  }
  if (csv.bad()) {
    err << "user import: " << origin << ": read error\n";
    return kRefused;
  }

  if (!rejections.empty()) {
    for (const std::string& r : rejections) err << r << "\n";
    err << "user import: " << origin << ": " << rejections.size() << " of "
        << rejections.size() + rows.size() << " rows rejected; nothing imported\n";
    return kRefused;
  }
  if (rows.empty()) {
    err << "user import: " << origin << ": no users to import\n";
    return kRefused;
  }

  const std::int64_t now = settings_.now();
  std::vector<store::Subscriber> subscribers;
  subscribers.reserve(rows.size());
  for (const Row& r : rows) {
    store::Subscriber s;
    s.name = r.name;
    s.realm = settings_.realm;
    s.ha1_md5 = auth::ha1(auth::Algorithm::kMd5, r.name, settings_.realm, r.password);
    s.ha1_sha256 = auth::ha1(auth::Algorithm::kSha256, r.name, settings_.realm, r.password);
    s.created_at = now;
    s.updated_at = now;
    subscribers.push_back(std::move(s));
  }
  if (auto put = store_.put_subscribers(subscribers); !put) {
    err << "user import: " << put.error() << "; nothing imported\n";
    return kRefused;
  }
  console_.out << "imported " << subscribers.size() << " users\n";
  return kOk;
}

// ---- the binary's entry point

int run_user_command(const UserCommand& command) {
  using Action = UserCommand::Action;
  const bool sets_password = command.action == Action::kAdd || command.action == Action::kPasswd;
  const bool stdin_is_tty = ::isatty(STDIN_FILENO) == 1;
  // A usage problem is reported before anything is opened or created.
  if (sets_password && command.source == PasswordSource::kTerminal && !stdin_is_tty) {
    std::cerr << "standard input is not a terminal: use --password-stdin (one line) or "
                 "--generate\n";
    return kUsage;
  }

  auto loaded = command.config_path.empty() ? base::Result<config::Config>(config::defaults())
                                            : config::load_file(command.config_path);
  if (!loaded) {
    std::cerr << loaded.error() << "\n";
    return kRefused;
  }
  const config::Config& cfg = *loaded;

  // The store holds password equivalents (HA1s): nothing this process creates is for others.
  ::umask(077);
  if (auto dir = make_private_dir(cfg.data_dir); !dir) {
    std::cerr << dir.error() << "\n";
    return kRefused;
  }
  auto opened = store::open_sqlite((cfg.data_dir / "sipwarden.db").string());
  if (!opened) {
    std::cerr << opened.error() << "\n";
    return kRefused;
  }

  UserSettings settings;
  settings.realm = cfg.domain;
  settings.load_policy = [argv0 = command.argv0] { return load_password_policy(argv0); };
  settings.now = [] { return base::unix_now(); };
  UserConsole console{std::cin, std::cout, std::cerr, nullptr};
  if (stdin_is_tty) console.read_secret = read_secret_from_terminal;
  UserAdmin admin(**opened, std::move(settings), std::move(console));

  int code = kOk;
  switch (command.action) {
    case Action::kAdd:
      code = admin.add(command.name, command.source, command.require_tls);
      break;
    case Action::kList:
      code = admin.list();
      break;
    case Action::kShow:
      code = admin.show(command.name);
      break;
    case Action::kPasswd:
      code = admin.passwd(command.name, command.source);
      break;
    case Action::kRemove:
      code = admin.remove(command.name);
      break;
    case Action::kImport:
      if (command.file == "-") {
        code = admin.import(std::cin, "(standard input)");
      } else {
        std::ifstream file(command.file);
        if (!file) {
          std::cerr << "user import: " << command.file << ": cannot read: " << std::strerror(errno)
                    << "\n";
          return kRefused;
        }
        code = admin.import(file, command.file);
      }
      break;
  }
  (*opened)->flush();
  return code;
}

}  // namespace app
