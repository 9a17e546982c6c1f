#include "config/pattern.h"

#include <gtest/gtest.h>

#include <string>

namespace config {
namespace {

// Parses `text` (which must be valid) and matches `number` against it.
bool match(std::string_view text, std::string_view number) {
  base::Result<Pattern> p = Pattern::parse(text);
  EXPECT_TRUE(p.ok()) << text << ": " << p.error();
  return p.ok() && p->matches(number);
}

std::string parse_error(std::string_view text) {
  base::Result<Pattern> p = Pattern::parse(text);
  EXPECT_FALSE(p.ok()) << "accepted: " << text;
  return p.ok() ? std::string() : p.error();
}

TEST(PatternParse, KeepsTheTextAsWritten) {
  base::Result<Pattern> p = Pattern::parse("+1NXX[2-9]XX.");
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_EQ(p->text(), "+1NXX[2-9]XX.");
}

TEST(PatternMatch, XIsAnyDigit) {
  for (char d = '0'; d <= '9'; ++d) EXPECT_TRUE(match("X", std::string(1, d))) << d;
  EXPECT_FALSE(match("X", "a"));
  EXPECT_FALSE(match("X", "+"));
  EXPECT_FALSE(match("X", "*"));
  EXPECT_TRUE(match("XXXX", "1000"));
}

TEST(PatternMatch, ZIsOneToNine) {
  EXPECT_FALSE(match("Z", "0"));
  for (char d = '1'; d <= '9'; ++d) EXPECT_TRUE(match("Z", std::string(1, d))) << d;
  EXPECT_FALSE(match("Z", "z"));
}

TEST(PatternMatch, NIsTwoToNine) {
  EXPECT_FALSE(match("N", "0"));
  EXPECT_FALSE(match("N", "1"));
  for (char d = '2'; d <= '9'; ++d) EXPECT_TRUE(match("N", std::string(1, d))) << d;
  EXPECT_FALSE(match("N", "n"));
}

TEST(PatternMatch, MatchesTheWholeNumber) {
  EXPECT_TRUE(match("NXX", "212"));
  EXPECT_FALSE(match("NXX", "2125"));
  EXPECT_FALSE(match("NXX", "21"));
  EXPECT_FALSE(match("NXX", ""));
  EXPECT_TRUE(match("1000", "1000"));
  EXPECT_FALSE(match("1000", "10000"));
  EXPECT_FALSE(match("1000", "100"));
}

TEST(PatternMatch, ClassOfSingleDigits) {
  EXPECT_TRUE(match("[137]", "1"));
  EXPECT_TRUE(match("[137]", "3"));
  EXPECT_TRUE(match("[137]", "7"));
  EXPECT_FALSE(match("[137]", "2"));
  EXPECT_FALSE(match("[137]", "13"));
}

TEST(PatternMatch, ClassWithARange) {
  EXPECT_FALSE(match("[1-5]", "0"));
  for (char d = '1'; d <= '5'; ++d) EXPECT_TRUE(match("[1-5]", std::string(1, d))) << d;
  EXPECT_FALSE(match("[1-5]", "6"));
  EXPECT_TRUE(match("[5-5]", "5"));
}

TEST(PatternMatch, ClassWithRangesAndDigitsMixed) {
  // [1-37-9]: 1, 2, 3 and 7, 8, 9.
  const std::string in = "123789";
  for (char d = '0'; d <= '9'; ++d) {
    bool expected = in.find(d) != std::string::npos;
    EXPECT_EQ(match("[1-37-9]", std::string(1, d)), expected) << d;
  }
  EXPECT_TRUE(match("[05-6]", "0"));
  EXPECT_TRUE(match("[05-6]", "6"));
  EXPECT_FALSE(match("[05-6]", "4"));
}

TEST(PatternMatch, HyphenFirstOrLastInAClassIsItself) {
  EXPECT_TRUE(match("[-1]", "-"));
  EXPECT_TRUE(match("[1-]", "-"));
  EXPECT_TRUE(match("[1-]", "1"));
  EXPECT_FALSE(match("[1-]", "0"));
}

TEST(PatternMatch, WildcardsAreLiteralInsideAClass) {
  EXPECT_TRUE(match("[X.]", "X"));
  EXPECT_TRUE(match("[X.]", "."));
  EXPECT_FALSE(match("[X.]", "5"));
  EXPECT_TRUE(match("[*#]", "#"));
}

TEST(PatternMatch, ClassInsideALongerPattern) {
  EXPECT_TRUE(match("9[2-9]XX", "9345"));
  EXPECT_FALSE(match("9[2-9]XX", "9145"));
  EXPECT_FALSE(match("9[2-9]XX", "934"));
}

TEST(PatternMatch, DotIsOneOrMoreOfAnything) {
  EXPECT_TRUE(match("9.", "91"));
  EXPECT_TRUE(match("9.", "9+*#abc"));
  EXPECT_FALSE(match("9.", "9"));
  EXPECT_FALSE(match("9.", "8123"));
  EXPECT_TRUE(match(".", "x"));
  EXPECT_FALSE(match(".", ""));
}

TEST(PatternMatch, BangIsZeroOrMoreOfAnything) {
  EXPECT_TRUE(match("9!", "9"));
  EXPECT_TRUE(match("9!", "91234"));
  EXPECT_FALSE(match("9!", "8"));
  EXPECT_FALSE(match("9!", ""));
  EXPECT_TRUE(match("!", ""));
  EXPECT_TRUE(match("!", "anything"));
}

TEST(PatternMatch, PlusStarAndHashAreLiteral) {
  EXPECT_TRUE(match("+.", "+4930123456"));
  EXPECT_FALSE(match("+.", "4930123456"));
  EXPECT_FALSE(match("+.", "+"));
  EXPECT_TRUE(match("*XX", "*72"));
  EXPECT_FALSE(match("*XX", "172"));
  EXPECT_TRUE(match("#", "#"));
  EXPECT_FALSE(match("#", "3"));
  EXPECT_TRUE(match("*98#", "*98#"));
}

TEST(PatternMatch, LettersMatchThemselvesCaseInsensitively) {
  EXPECT_TRUE(match("alice", "alice"));
  EXPECT_TRUE(match("alice", "ALICE"));
  EXPECT_TRUE(match("Alice", "aLiCe"));
  EXPECT_FALSE(match("alice", "alicia"));
  EXPECT_TRUE(match("voicemail.", "VoiceMail1000"));
  // Only the upper-case X, Z and N are wildcards; lower-case they are letters.
  EXPECT_TRUE(match("x", "x"));
  EXPECT_TRUE(match("x", "X"));
  EXPECT_FALSE(match("x", "5"));
  EXPECT_FALSE(match("n", "5"));
  EXPECT_FALSE(match("z", "5"));
  // An upper-case wildcard does not match its own letter.
  EXPECT_FALSE(match("X", "X"));
}

TEST(PatternMatch, ClassesOfLettersAreCaseInsensitive) {
  EXPECT_TRUE(match("[ab]", "A"));
  EXPECT_TRUE(match("[A-C]", "b"));
  EXPECT_FALSE(match("[A-C]", "d"));
}

TEST(PatternMatch, TheDefaultDeniedDestinations) {
  EXPECT_TRUE(match("00.", "004930123"));
  EXPECT_FALSE(match("00.", "00"));
  EXPECT_TRUE(match("011.", "01144207946"));
  EXPECT_TRUE(match("1900.", "19005551234"));
  EXPECT_TRUE(match("1976.", "19765551234"));
  EXPECT_TRUE(match("09.", "0900123456"));
  EXPECT_TRUE(match("118.", "118118"));
  EXPECT_FALSE(match("118.", "1170"));
}

TEST(PatternMatch, NorthAmericanNumbers) {
  EXPECT_TRUE(match("1NXXNXXXXXX", "12125551234"));
  EXPECT_FALSE(match("1NXXNXXXXXX", "11125551234"));  // area code cannot start with 1
  EXPECT_FALSE(match("1NXXNXXXXXX", "1212555123"));   // one digit short
}

struct ParseErrorCase {
  const char* text;
  const char* reason;
};

class PatternErrors : public testing::TestWithParam<ParseErrorCase> {};

TEST_P(PatternErrors, GiveTheReason) {
  EXPECT_EQ(parse_error(GetParam().text), GetParam().reason);
}

INSTANTIATE_TEST_SUITE_P(Table, PatternErrors,
                         testing::Values(ParseErrorCase{"", "empty pattern"},
                                         ParseErrorCase{"[", "unclosed ["},
                                         ParseErrorCase{"9[2-9", "unclosed ["},
                                         ParseErrorCase{"[12", "unclosed ["},
                                         ParseErrorCase{"[]", "empty class []"},
                                         ParseErrorCase{"9[]X", "empty class []"},
                                         ParseErrorCase{"[9-0]", "empty class [9-0]"},
                                         ParseErrorCase{"[15-3]", "empty class [15-3]"},
                                         ParseErrorCase{".9", "'.' must be the last character"},
                                         ParseErrorCase{"9..", "'.' must be the last character"},
                                         ParseErrorCase{"9.!", "'.' must be the last character"},
                                         ParseErrorCase{"!9", "'!' must be the last character"},
                                         ParseErrorCase{"9!.", "'!' must be the last character"}));

TEST(PatternParse, DotAndBangInsideAClassAreNotWildcards) {
  EXPECT_TRUE(Pattern::parse("[.!]9").ok());
  EXPECT_TRUE(Pattern::parse("[.]").ok());
}

TEST(PatternParse, StrayClosingBracketIsLiteral) {
  EXPECT_TRUE(match("]1", "]1"));
}

}  // namespace
}  // namespace config
