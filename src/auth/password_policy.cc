#include "auth/password_policy.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

// How the rules of password_policy.h are read here:
// - Length counts characters, not bytes: a UTF-8 sequence is one character.
// - The user name is looked for only when it has 3 or more characters (an extension "10"
//   would otherwise forbid every password with "10" in it).
// - Rules are checked in this order and the first that applies gives the reason: characters,
//   length, user name, common password (exact), all digits, common password with digits or
//   symbols around it or look-alike substitutions ("P@ssw0rd2024!"), keyboard walk / run.
// - A walk: consecutive characters that are neighbours on a keyboard row or column (US,
//   German, French layouts, the keypad), in the alphabet or among the digits, in either
//   direction, or repeats of one character. Runs of 4 or more such characters that together
//   cover more than half of the password make it a walk ("qwertyuiopasdf", "1234567890ab",
//   "aaaaaaaaaaaaaa", "1qaz2wsx3edc").

namespace auth {
namespace {

constexpr std::size_t kMinLength = 12;
constexpr std::size_t kMinUserLength = 3;
constexpr std::size_t kMinRun = 4;  // 3 flagged about 1 in 2,000 random passwords
constexpr std::size_t kMinCommonCore = 3;  // "a1" + "23456789012" is not "a common password"

constexpr std::string_view kReasonCharacters =
    "contains a character a SIP phone configuration cannot carry (a control character, a "
    "space, ';', '\"' or '>')";
constexpr std::string_view kReasonShort = "shorter than 12 characters";
constexpr std::string_view kReasonUser = "contains the user name";
constexpr std::string_view kReasonCommon = "a common password";
constexpr std::string_view kReasonCommonVariant =
    "a common password with digits or symbols added or swapped in";
constexpr std::string_view kReasonDigits = "only digits";
constexpr std::string_view kReasonWalk =
    "mostly a keyboard pattern or a run of letters or digits (like qwerty, abcd, 1234, aaaa)";

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
}
// On lowercased text.
bool is_letter(char c) {
  return c >= 'a' && c <= 'z';
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

// Lowercased sequences in which neighbours count as a walk.
// clang-format off
constexpr std::string_view kSequences[] = {
    "abcdefghijklmnopqrstuvwxyz", "01234567890", "`1234567890-=", "~!@#$%^&*()_+",
    "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./",               // US rows
    "qwertzuiop", "yxcvbnm", "azertyuiop", "qsdfghjklm", "wxcvbn",  // German, French rows
    "1qaz", "2wsx", "3edc", "4rfv", "5tgb", "6yhn", "7ujm", "8ik,", "9ol.", "0p;/",  // columns
    "147", "258", "369", "0.",                                    // keypad columns
};
// clang-format on

struct Neighbours {
  std::array<std::array<bool, 128>, 128> adjacent{};
  Neighbours() {
    for (int c = 0; c < 128; ++c) adjacent[c][c] = true;  // "aaaa" is a run too
    for (std::string_view seq : kSequences) {
      for (std::size_t i = 1; i < seq.size(); ++i) {
        const auto a = static_cast<unsigned char>(seq[i - 1]);
        const auto b = static_cast<unsigned char>(seq[i]);
        adjacent[a][b] = adjacent[b][a] = true;
      }
    }
  }
  bool operator()(char x, char y) const {
    const auto a = static_cast<unsigned char>(x);
    const auto b = static_cast<unsigned char>(y);
    if (a >= 128 || b >= 128) return a == b;
    return adjacent[a][b];
  }
};

bool is_walk(std::string_view lowered) {
  static const Neighbours neighbours;
  std::size_t covered = 0;
  std::size_t start = 0;
  for (std::size_t i = 1; i <= lowered.size(); ++i) {
    if (i < lowered.size() && neighbours(lowered[i - 1], lowered[i])) continue;
    if (i - start >= kMinRun) covered += i - start;
    start = i;
  }
  return covered * 2 > lowered.size();
}

std::size_t characters(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // not a UTF-8 continuation byte
  }));
}

bool carriable(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F || c == ' ' || c == ';' || c == '"' || c == '>';
  });
}

// Letters written as look-alike digits or symbols ("p@ssw0rd"), undone between the first and
// the last letter-like character, so digits appended after the word stay digits.
std::string unleet(std::string_view lowered, char one) {
  const auto letter_like = [](char c) { return is_letter(c) || c == '@' || c == '$'; };
  std::string out(lowered);
  const auto first = std::find_if(out.begin(), out.end(), letter_like);
  const auto last = std::find_if(out.rbegin(), out.rend(), letter_like).base();
  for (auto it = first; it < last; ++it) {
    switch (*it) {
      case '@':
      case '4':
        *it = 'a';
        break;
      case '8':
        *it = 'b';
        break;
      case '3':
        *it = 'e';
        break;
      case '6':
        *it = 'g';
        break;
      case '1':
        *it = one;
        break;
      case '!':
      case '|':
        *it = 'i';
        break;
      case '0':
        *it = 'o';
        break;
      case '$':
      case '5':
        *it = 's';
        break;
      case '7':
        *it = 't';
        break;
      default:
        break;
    }
  }
  return out;
}

}  // namespace

PasswordPolicy::PasswordPolicy(std::unordered_set<std::string> common) {
  for (const std::string& p : common) common_.insert(lowercase(p));
}

base::Result<PasswordPolicy> PasswordPolicy::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return path + ": cannot open: " + std::strerror(errno);
  std::unordered_set<std::string> common;
  std::string line;
  while (std::getline(in, line)) {
    const auto begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos || line[begin] == '#') continue;
    const auto end = line.find_last_not_of(" \t\r");
    common.insert(lowercase(std::string_view(line).substr(begin, end - begin + 1)));
  }
  if (in.bad()) return path + ": read error";
  if (common.empty()) return path + ": no passwords in the list";
  return PasswordPolicy(std::move(common));
}

std::optional<std::string> PasswordPolicy::weakness(std::string_view user,
                                                    std::string_view password) const {
  if (!carriable(password)) return std::string(kReasonCharacters);
  if (characters(password) < kMinLength) return std::string(kReasonShort);
  const std::string lowered = lowercase(password);
  if (user.size() >= kMinUserLength && lowered.find(lowercase(user)) != std::string::npos) {
    return std::string(kReasonUser);
  }

  if (common_.contains(lowered)) return std::string(kReasonCommon);
  std::size_t longest = 0;
  for (const std::string& p : common_) longest = std::max(longest, p.size());
  // A common word with non-letters before and/or after it: any s[j, k) with only non-letters
  // in s[0, j) and s[k, n). Candidates are bounded by the longest list entry: O(n * longest).
  const auto affixed = [&](const std::string& s) {
    if (common_.contains(s)) return true;
    const std::size_t n = s.size();
    std::size_t head = 0;  // s[0, head) has no letters
    while (head < n && !is_letter(s[head])) ++head;
    std::size_t tail = n;  // s[tail, n) has no letters
    while (tail > 0 && !is_letter(s[tail - 1])) --tail;
    std::string candidate;
    for (std::size_t j = 0; j <= head; ++j) {
      const std::size_t k_min = std::max(tail, j + kMinCommonCore);
      const std::size_t k_max = std::min(n, j + longest);
      for (std::size_t k = k_min; k <= k_max; ++k) {
        candidate.assign(s, j, k - j);
        if (common_.contains(candidate)) return true;
      }
    }
    return false;
  };
  // Before the variants: any long digit string has some listed extension ("100") inside it.
  if (std::all_of(lowered.begin(), lowered.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::string(kReasonDigits);
  }
  if (affixed(lowered) || affixed(unleet(lowered, 'i')) || affixed(unleet(lowered, 'l'))) {
    return std::string(kReasonCommonVariant);
  }

  if (is_walk(lowered)) return std::string(kReasonWalk);
  return std::nullopt;
}

std::string generate_password() {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+=@%";
  static constexpr std::size_t kLength = 20;
  // Rejection sampling: bytes at or above the largest multiple of the alphabet size are
  // dropped, so every character is equally likely.
  static constexpr unsigned kLimit = 256 - 256 % kAlphabet.size();
  static const PasswordPolicy structural{std::unordered_set<std::string>{}};
  while (true) {
    std::string out;
    out.reserve(kLength);
    while (out.size() < kLength) {
      std::array<unsigned char, 32> bytes;
      if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        throw std::runtime_error("no randomness for a password");  // the CLI reports it
      }
      for (unsigned char b : bytes) {
        if (b < kLimit && out.size() < kLength) out.push_back(kAlphabet[b % kAlphabet.size()]);
      }
    }
    // A uniformly random 20-character string is a walk or similar with negligible odds;
    // drawing again keeps the promise that it always passes.
    if (!structural.weakness("", out)) return out;
  }
}

}  // namespace auth
