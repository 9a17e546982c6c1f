#include "sip/params.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sip {
namespace {

using namespace std::string_view_literals;

// Copies `text` into a heap block of exactly its size, kept alive until the process ends, so
// AddressSanitizer reports any read past the end of the view.
std::string_view exact(std::string_view text) {
  static std::vector<std::unique_ptr<char[]>> keep;
  keep.push_back(std::make_unique<char[]>(text.size()));
  if (!text.empty()) std::memcpy(keep.back().get(), text.data(), text.size());
  return {keep.back().get(), text.size()};
}

struct Flat {
  std::string name;
  std::string value;
  bool has_value;
  bool operator==(const Flat&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Flat& f) {
  return os << f.name << (f.has_value ? "=" : "") << "[" << f.value << "]";
}

// Iterates `raw` (from an exact-size buffer) and checks every view stays inside it.
std::vector<Flat> collect(std::string_view raw_text) {
  const std::string_view raw = exact(raw_text);
  auto inside = [raw](std::string_view v) {
    return v.empty() || (v.data() >= raw.data() && v.data() + v.size() <= raw.data() + raw.size());
  };
  std::vector<Flat> out;
  for (const Param& p : ParamList(raw)) {
    EXPECT_TRUE(inside(p.name)) << raw_text;
    EXPECT_TRUE(inside(p.value)) << raw_text;
    EXPECT_FALSE(p.name.empty());
    EXPECT_TRUE(p.has_value || p.value.empty());
    out.push_back({std::string(p.name), std::string(p.value), p.has_value});
  }
  return out;
}

TEST(ParamListTest, IteratesNamesValuesAndFlags) {
  EXPECT_EQ(collect(";transport=tcp;lr;maddr=239.255.255.1"),
            (std::vector<Flat>{
                {"transport", "tcp", true}, {"lr", "", false}, {"maddr", "239.255.255.1", true}}));
}

TEST(ParamListTest, LeadingSemicolonIsOptional) {
  EXPECT_EQ(collect("branch=z9hG4bK1;rport"),
            (std::vector<Flat>{{"branch", "z9hG4bK1", true}, {"rport", "", false}}));
}

TEST(ParamListTest, EmptyLists) {
  for (std::string_view raw : {""sv, ";"sv, "   "sv, " ; "sv, "\r\n "sv}) {
    SCOPED_TRACE(raw);
    EXPECT_TRUE(ParamList(exact(raw)).empty());
    EXPECT_TRUE(collect(raw).empty());
  }
  EXPECT_TRUE(ParamList().empty());
  EXPECT_FALSE(ParamList().has("x"));
}

TEST(ParamListTest, EmptyValueIsNotAFlag) {
  EXPECT_EQ(collect(";tag=;lr"), (std::vector<Flat>{{"tag", "", true}, {"lr", "", false}}));
  const ParamList list(exact(";tag=;lr"));
  ASSERT_TRUE(list.find("tag").has_value());
  EXPECT_EQ(*list.find("tag"), "");
  ASSERT_TRUE(list.find("lr").has_value());
  EXPECT_EQ(*list.find("lr"), "");
  EXPECT_FALSE(list.find("rport").has_value());
}

TEST(ParamListTest, FindIsCaseInsensitiveAndReturnsFirst) {
  const ParamList list(exact(";Branch=z9hG4bKa;BRANCH=second;Received=192.0.2.1"));
  EXPECT_EQ(list.find("branch"), "z9hG4bKa");
  EXPECT_EQ(list.find("received"), "192.0.2.1");
  EXPECT_TRUE(list.has("rEcEiVeD"));
  EXPECT_FALSE(list.has("branc"));
  EXPECT_FALSE(list.has("branchx"));
  EXPECT_FALSE(list.has(""));
}

// RFC 4475 §3.1.1.1 (wsinv): LWS, including folded lines, around ';' and '='.
TEST(ParamListTest, SkipsLinearWhitespaceAndFolding) {
  EXPECT_EQ(collect(" ;   tag    = 1918181833n"),
            (std::vector<Flat>{{"tag", "1918181833n", true}}));
  EXPECT_EQ(collect("; branch=\r\n z9hG4bK30239"),
            (std::vector<Flat>{{"branch", "z9hG4bK30239", true}}));
  EXPECT_EQ(collect("\r\n  ;\r\n  tag = 98asjd8"), (std::vector<Flat>{{"tag", "98asjd8", true}}));
  EXPECT_EQ(collect(";a\n\t=\n 1 \t;\tb"), (std::vector<Flat>{{"a", "1", true}, {"b", "", false}}));
  EXPECT_EQ(collect(";received = [2001:db8::1] ; rport"),
            (std::vector<Flat>{{"received", "[2001:db8::1]", true}, {"rport", "", false}}));
}

TEST(ParamListTest, LineEndWithoutWhitespaceEndsTheList) {
  // CRLF not followed by WSP is the end of the header line, not folding (RFC 3261 §7.3.1).
  EXPECT_EQ(collect(";a=1\r\nb=2"), (std::vector<Flat>{{"a", "1", true}}));
  EXPECT_EQ(collect(";a=1\r\n;b=2"), (std::vector<Flat>{{"a", "1", true}}));
  EXPECT_EQ(collect(";a=1\r\n"), (std::vector<Flat>{{"a", "1", true}}));
  EXPECT_EQ(collect(";a=1\r"), (std::vector<Flat>{{"a", "1", true}}));
  EXPECT_EQ(collect(";a\r\n"), (std::vector<Flat>{{"a", "", false}}));
}

TEST(ParamListTest, QuotedValues) {
  EXPECT_EQ(collect(R"(;x="a;b \"c\" d";y=2)"),
            (std::vector<Flat>{{"x", R"("a;b \"c\" d")", true}, {"y", "2", true}}));
  EXPECT_EQ(collect(R"(;realm = "atlanta.com" ; qop="auth,auth-int")"),
            (std::vector<Flat>{{"realm", R"("atlanta.com")", true},
                               {"qop", R"("auth,auth-int")", true}}));
  EXPECT_EQ(collect(R"(;e="")"), (std::vector<Flat>{{"e", R"("")", true}}));
  EXPECT_EQ(collect(R"(;e="\\")"), (std::vector<Flat>{{"e", R"("\\")", true}}));
  EXPECT_EQ(ParamList(exact(R"(;x="a;b";Y="q")")).find("y"), R"("q")");
}

TEST(ParamListTest, UnterminatedQuotedStringStops) {
  EXPECT_EQ(collect(R"(;a=1;x="abc)"), (std::vector<Flat>{{"a", "1", true}}));
  EXPECT_EQ(collect(R"(;a=1;x="abc\")"), (std::vector<Flat>{{"a", "1", true}}));
  EXPECT_EQ(collect(R"(;a=1;x="abc\)"), (std::vector<Flat>{{"a", "1", true}}));
  EXPECT_EQ(collect(R"(;a=1;x=")"), (std::vector<Flat>{{"a", "1", true}}));
  EXPECT_FALSE(ParamList(exact(R"(;a=1;x="ab)")).has("x"));
}

TEST(ParamListTest, StopsAtFirstMalformation) {
  EXPECT_EQ(collect(";a=1 b=2"), (std::vector<Flat>{{"a", "1", true}}));
  EXPECT_EQ(collect(";a;;b"), (std::vector<Flat>{{"a", "", false}}));
  EXPECT_EQ(collect(";a=1,b=2"), (std::vector<Flat>{{"a", "1", true}}));
  EXPECT_EQ(collect(";a=\"q\"junk;b"), (std::vector<Flat>{{"a", "\"q\"", true}}));
  EXPECT_EQ(collect(";a=x=y;b"), (std::vector<Flat>{{"a", "x", true}}));
  EXPECT_EQ(collect(";a=1;\x01;b"), (std::vector<Flat>{{"a", "1", true}}));
  EXPECT_TRUE(collect(";=x;a").empty());
  EXPECT_TRUE(collect("\"x\";a").empty());
  EXPECT_TRUE(collect(",a").empty());
  EXPECT_FALSE(ParamList(exact(";a=1 b=2")).has("b"));
}

TEST(ParamListTest, IteratorSemantics) {
  const ParamList list(exact(";a=1;b;c=3"));
  auto it = list.begin();
  ASSERT_NE(it, list.end());
  EXPECT_EQ(it->name, "a");
  auto old = it++;
  EXPECT_EQ(old->name, "a");
  EXPECT_EQ((*it).name, "b");
  EXPECT_NE(old, it);
  auto again = list.begin();
  ++again;
  EXPECT_EQ(again, it);
  ++it;
  EXPECT_EQ(it->value, "3");
  ++it;
  EXPECT_EQ(it, list.end());
  ++it;  // incrementing end stays at end
  EXPECT_EQ(it, list.end());
  EXPECT_FALSE(list.empty());
  EXPECT_EQ(list.raw(), ";a=1;b;c=3");

  // Two passes see the same thing: the list is a view, not a consumable stream.
  int n = 0;
  for (const Param& p : list) n += static_cast<int>(p.name.size());
  for (const Param& p : list) n += static_cast<int>(p.name.size());
  EXPECT_EQ(n, 6);
}

TEST(ParamListTest, NeverReadsPastTheView) {
  // The view is a prefix of a larger buffer: nothing beyond it may show up in a parameter.
  const std::string buffer = ";a=1;branch=z9hG4bK776asdhds;tag=\"quoted;value\";rport";
  for (std::size_t n = 0; n <= buffer.size(); ++n) {
    const std::string_view prefix(buffer.data(), n);
    for (const Param& p : ParamList(prefix)) {
      EXPECT_LE(p.name.data() + p.name.size(), buffer.data() + n);
      if (!p.value.empty()) {
        EXPECT_LE(p.value.data() + p.value.size(), buffer.data() + n);
      }
    }
    collect(prefix);  // and the same from an exact-size heap copy, for AddressSanitizer
  }
  const ParamList cut(std::string_view(buffer.data(), 8));  // ";a=1;bra"
  EXPECT_EQ(cut.find("bra"), "");
  EXPECT_FALSE(cut.has("branch"));
}

TEST(ParamListTest, GarbageTerminates) {
  // Every string over a small alphabet of the characters the iterator cares about.
  const std::string_view alphabet = ";= \"\\\r\n\ta,";
  std::string s;
  std::size_t total = 0;
  for (std::size_t len = 0; len <= 5; ++len) {
    std::size_t combos = 1;
    for (std::size_t k = 0; k < len; ++k) combos *= alphabet.size();
    for (std::size_t i = 0; i < combos; ++i) {
      s.clear();
      for (std::size_t k = 0, v = i; k < len; ++k, v /= alphabet.size()) {
        s += alphabet[v % alphabet.size()];
      }
      total += collect(s).size();
      (void)ParamList(exact(s)).find("a");
    }
  }
  EXPECT_GT(total, 0U);
}

TEST(ParamListTest, LongList) {
  std::string raw;
  for (int i = 0; i < 2000; ++i) raw += ";p" + std::to_string(i) + "=v" + std::to_string(i);
  const ParamList list(exact(raw));
  EXPECT_EQ(list.find("P1999"), "v1999");
  EXPECT_EQ(collect(raw).size(), 2000U);
}

TEST(IequalsTest, AsciiCaseInsensitive) {
  EXPECT_TRUE(iequals("", ""));
  EXPECT_TRUE(iequals("Via", "vIA"));
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("Via", "Vias"));
  EXPECT_FALSE(iequals("a", ""));
  EXPECT_FALSE(iequals("[", "{"));  // 0x5B and 0x7B differ by the case bit but are not letters
  EXPECT_FALSE(iequals("@", "`"));
  EXPECT_TRUE(iequals("a\0b"sv, "A\0B"sv));
  EXPECT_FALSE(iequals("a\0b"sv, "a\0c"sv));
  EXPECT_FALSE(iequals("\xC3\xA9", "\xC3\x89"));  // no locale: UTF-8 is compared as bytes
}

TEST(AsciiLowerTest, LowersAsciiLettersOnly) {
  EXPECT_EQ(ascii_lower(""), "");
  EXPECT_EQ(ascii_lower("Example.COM"), "example.com");
  EXPECT_EQ(ascii_lower("UDP"), "udp");
  EXPECT_EQ(ascii_lower("[@]_`{"), "[@]_`{");  // next to the letters, not letters
  EXPECT_EQ(ascii_lower("\xC3\x89"), "\xC3\x89");  // no locale: UTF-8 bytes stay as they are
  EXPECT_EQ(ascii_lower("A\0B"sv), "a\0b"sv);
}

TEST(UnquoteTest, RemovesQuotesAndResolvesEscapes) {
  EXPECT_EQ(unquote(R"("atlanta.com")"), "atlanta.com");
  EXPECT_EQ(unquote(R"("a\"b")"), "a\"b");
  EXPECT_EQ(unquote(R"("a\\b")"), "a\\b");
  EXPECT_EQ(unquote(R"("J Rosenberg \\\"")"), R"(J Rosenberg \")");
  EXPECT_EQ(unquote(R"("")"), "");
  EXPECT_EQ(unquote(R"("a;b")"), "a;b");
  EXPECT_EQ(unquote("\"nul\0here\""sv), "nul\0here"sv);
}

TEST(UnquoteTest, UnquotedInputIsUnchanged) {
  EXPECT_EQ(unquote("token"), "token");
  EXPECT_EQ(unquote(""), "");
  EXPECT_EQ(unquote("\""), "\"");
  EXPECT_EQ(unquote("\"open"), "\"open");
  EXPECT_EQ(unquote("close\""), "close\"");
  EXPECT_EQ(unquote(R"(a\"b)"), R"(a\"b)");
}

}  // namespace
}  // namespace sip
