#include "auth/password_policy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace auth {
namespace {

const std::string kList = std::string(SIPWARDEN_SOURCE_DIR) + "/data/common-passwords.txt";

const PasswordPolicy& shipped() {
  // Copied into a heap object kept for the process: moving it out of the Result made GCC 12
  // at -O2 warn falsely (-Wfree-nonheap-object) in optimized non-sanitizer builds.
  static const PasswordPolicy* const policy = [] {
    auto loaded = PasswordPolicy::from_file(kList);
    if (!loaded.ok()) throw std::runtime_error(loaded.error());
    return new PasswordPolicy(loaded.value());
  }();
  return *policy;
}

std::string reason(std::string_view user, std::string_view password) {
  return shipped().weakness(user, password).value_or("acceptable");
}

constexpr std::string_view kCharacters =
    "contains a character a SIP phone configuration cannot carry (a control character, a "
    "space, ';', '\"' or '>')";
constexpr std::string_view kShort = "shorter than 12 characters";
constexpr std::string_view kUser = "contains the user name";
constexpr std::string_view kCommon = "a common password";
constexpr std::string_view kCommonVariant =
    "a common password with digits or symbols added or swapped in";
constexpr std::string_view kDigits = "only digits";
constexpr std::string_view kWalk =
    "mostly a keyboard pattern or a run of letters or digits (like qwerty, abcd, 1234, aaaa)";

TEST(PasswordPolicyTest, StrongPasswordsPass) {
  EXPECT_EQ(reason("alice", "Tr0ub4dor&3-horse"), "acceptable");
  EXPECT_EQ(reason("alice", "vK7-mQ2.zH9+wL4"), "acceptable");
  EXPECT_EQ(reason("100", "correct-horse-battery"), "acceptable");
  EXPECT_EQ(reason("bob", "gray_Pelican_on_mars"), "acceptable");
  // Non-ASCII is allowed, and counted in characters, not bytes.
  EXPECT_EQ(reason("alice", "Straße-Küche-7x"), "acceptable");
}

TEST(PasswordPolicyTest, TooShort) {
  EXPECT_EQ(reason("alice", "vK7-mQ2.zH9"), kShort);         // 11
  EXPECT_EQ(reason("alice", "vK7-mQ2.zH9+"), "acceptable");  // 12
  EXPECT_EQ(reason("alice", ""), kShort);
  EXPECT_EQ(reason("alice", "ÄÖÜäöüßéèêàç"), "acceptable");  // 12 characters, 24 bytes
  EXPECT_EQ(reason("alice", "ÄÖÜäöüßéèêà"), kShort);         // 11 characters, 22 bytes
}

TEST(PasswordPolicyTest, CharactersAPhoneCannotCarry) {
  EXPECT_EQ(reason("alice", "vK7-mQ2.zH9+ wL4"), kCharacters);
  EXPECT_EQ(reason("alice", "vK7-mQ2.zH9+;wL4"), kCharacters);
  EXPECT_EQ(reason("alice", "vK7-mQ2.zH9+\"wL4"), kCharacters);
  EXPECT_EQ(reason("alice", "vK7-mQ2.zH9+>wL4"), kCharacters);
  EXPECT_EQ(reason("alice", "vK7-mQ2.zH9+\twL4"), kCharacters);
  EXPECT_EQ(reason("alice", std::string("vK7-mQ2.zH9+\0wL4", 16)), kCharacters);
  EXPECT_EQ(reason("alice", "vK7-mQ2.zH9+\x7fwL4"), kCharacters);
  EXPECT_EQ(reason("alice", "vK7-mQ2.zH9+\r\nwL4"), kCharacters);
  EXPECT_EQ(reason("alice", "ab;"), kCharacters);  // checked before the length
}

TEST(PasswordPolicyTest, ContainsTheUserName) {
  EXPECT_EQ(reason("alice", "xxAlice123456xx"), kUser);
  EXPECT_EQ(reason("ALICE", "vK7alicemQ2.zH9"), kUser);
  EXPECT_EQ(reason("1001", "vK7-mQ2.1001zH9"), kUser);
  // Names under three characters are not looked for.
  EXPECT_EQ(reason("vk", "vK7-mQ2.zH9+wL4"), "acceptable");
  EXPECT_EQ(reason("", "vK7-mQ2.zH9+wL4"), "acceptable");
}

TEST(PasswordPolicyTest, OnlyDigits) {
  EXPECT_EQ(reason("alice", "839274615093"), kDigits);
  EXPECT_EQ(reason("alice", "83927461509318273645"), kDigits);
}

TEST(PasswordPolicyTest, KeyboardWalksAndRuns) {
  EXPECT_EQ(reason("alice", "qwertyuiopasdf"), kWalk);
  EXPECT_EQ(reason("alice", "1234567890ab"), kWalk);
  EXPECT_EQ(reason("alice", "abcdefghij!#"), kWalk);
  EXPECT_EQ(reason("alice", "ZYXWVUTSRQ%k"), kWalk);  // backwards, any case
  EXPECT_EQ(reason("alice", "mnbvcxzlkjhg"), kWalk);
  EXPECT_EQ(reason("alice", "1qaz2wsx3edc4rfv"), kCommon);  // listed; a walk anyway
  EXPECT_EQ(reason("alice", "5tgb6yhn7ujm"), kWalk);        // columns
  EXPECT_EQ(reason("alice", "zzzzzzzzzzzzzz"), kWalk);
  EXPECT_EQ(reason("alice", "asdfjkl;"), kCharacters);
  EXPECT_EQ(reason("alice", "azertyuiop12"), kCommonVariant);  // listed + digits
  EXPECT_EQ(reason("alice", "wxcvbnqsdfgh"), kWalk);           // French rows
  // Runs making up less than half do not count.
  EXPECT_EQ(reason("alice", "abc-vK7mQ2.zH9+"), "acceptable");
}

TEST(PasswordPolicyTest, CommonPasswords) {
  EXPECT_EQ(reason("alice", "password1234"), kCommon);
  EXPECT_EQ(reason("alice", "PASSWORD1234"), kCommon);
  EXPECT_EQ(reason("alice", "qwertyuiop12"), kCommon);
  EXPECT_EQ(reason("alice", "123456789012"), kCommon);
  EXPECT_EQ(reason("alice", "Administrator"), kCommon);
  EXPECT_EQ(reason("alice", "changeme1234"), kCommon);
  EXPECT_EQ(reason("alice", "letmein12345"), kCommon);
}

TEST(PasswordPolicyTest, CommonPasswordsWithDigitsOrSymbolsAdded) {
  EXPECT_EQ(reason("alice", "password1234!"), kCommonVariant);
  EXPECT_EQ(reason("alice", "Password2024!"), kCommonVariant);
  EXPECT_EQ(reason("alice", "Summer2024!!"), kCommonVariant);
  EXPECT_EQ(reason("alice", "2024!!Winter"), kCommonVariant);
  EXPECT_EQ(reason("alice", "!!asterisk2024"), kCommonVariant);
  EXPECT_EQ(reason("alice", "voip12345678"), kCommonVariant);
  EXPECT_EQ(reason("alice", "freepbx#2023"), kCommonVariant);
  EXPECT_EQ(reason("alice", "P@ssw0rd2024!"), kCommonVariant);
  EXPECT_EQ(reason("alice", "L3tm31n-2024"), kCommonVariant);
  EXPECT_EQ(reason("alice", "1000!#%&()=+"), kCommonVariant);
  // Letters around a common word are a different password.
  EXPECT_EQ(reason("alice", "vKpasswordmQz"), "acceptable");
}

TEST(PasswordPolicyTest, EmptyListStillAppliesTheOtherRules) {
  const PasswordPolicy policy{std::unordered_set<std::string>{}};
  EXPECT_EQ(policy.weakness("alice", "sunshine-2024!"), std::nullopt);
  EXPECT_EQ(shipped().weakness("alice", "sunshine-2024!"), std::string(kCommonVariant));
  EXPECT_EQ(policy.weakness("alice", "short"), std::string(kShort));
  EXPECT_EQ(policy.weakness("alice", "qwertyuiopasdf"), std::string(kWalk));
}

TEST(PasswordPolicyTest, ListIsCaseInsensitive) {
  const PasswordPolicy policy{std::unordered_set<std::string>{"SipWarden"}};
  EXPECT_EQ(policy.weakness("alice", "sipwarden2024"), std::string(kCommonVariant));
  EXPECT_EQ(policy.weakness("alice", "SIPWARDENsipw"), std::nullopt);
}

TEST(PasswordPolicyTest, ShippedListLoads) {
  // The list is several hundred entries, one per line, lowercase, comments skipped.
  std::ifstream in(kList);
  ASSERT_TRUE(in) << kList;
  std::set<std::string> entries;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    for (char c : line) EXPECT_FALSE(c >= 'A' && c <= 'Z') << line;
    EXPECT_EQ(line.find_first_of(" \t\r"), std::string::npos) << line;
    entries.insert(line);
  }
  EXPECT_GE(entries.size(), 500u);
  for (const char* p :
       {"voip", "sip", "1234", "100", "1000", "password", "admin", "secret", "password1234",
        "qwertyuiop12", "123456789012", "administrator", "changeme1234", "letmein12345"}) {
    EXPECT_TRUE(entries.contains(p)) << p;
  }
}

TEST(PasswordPolicyTest, FromFileErrors) {
  const auto missing = PasswordPolicy::from_file("/nonexistent/common-passwords.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("/nonexistent/common-passwords.txt"), std::string::npos);

  const auto path =
      std::filesystem::temp_directory_path() / ("sw-common-" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream out(path);
    out << "# only comments\n\n   \n#another\n";
  }
  EXPECT_FALSE(PasswordPolicy::from_file(path.string()).ok());
  {
    std::ofstream out(path);
    out << "# a list\r\n  Hunter2Hunter2  \r\n\r\n";
  }
  const auto loaded = PasswordPolicy::from_file(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(loaded->weakness("alice", "hunter2hunter2"), std::string(kCommon));
}

TEST(PasswordPolicyTest, GeneratedPasswordsAreStrong) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+=@%";
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string p = generate_password();
    ASSERT_EQ(p.size(), 20u);
    ASSERT_EQ(p.find_first_not_of(kAlphabet), std::string::npos) << p;
    ASSERT_EQ(shipped().weakness("alice.example", p), std::nullopt) << p;
    seen.insert(p);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace auth
