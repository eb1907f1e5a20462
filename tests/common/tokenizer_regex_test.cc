#include "common/tokenizer_regex.h"

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_utils.h"

namespace promptsweep {
namespace tokenizer_internal {
namespace {

using Matches = std::vector<std::pair<size_t, size_t>>;

Matches AllMatches(const Regex& regex, std::string_view text) {
  Matches matches;
  regex.ForEachMatch(text, [&](size_t start, size_t end) { matches.emplace_back(start, end); });
  return matches;
}

// The translation error for `pattern`, or "" if it translates.
std::string ErrorOf(const std::string& pattern) {
  try {
    OnigurumaToPcre2(pattern, "where");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerRegexTest, TranslationKeepsOnigurumaMeaning) {
  EXPECT_EQ(OnigurumaToPcre2("a{,2}", "w"), "a{0,2}");
  EXPECT_EQ(OnigurumaToPcre2("a{2,3}b{4}", "w"), "a{2,3}b{4}");
  EXPECT_EQ(OnigurumaToPcre2("\\u00e9", "w"), "\\x{00e9}");
  EXPECT_EQ(OnigurumaToPcre2("\\p{L}+", "w"), "\\p{L}+");
  // \s becomes Oniguruma's class, inside and outside brackets.
  EXPECT_EQ(OnigurumaToPcre2("\\s", "w"), "[\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}]");
  EXPECT_EQ(OnigurumaToPcre2("[\\s,]", "w"), "[\\t\\n\\x0B\\f\\r\\x{85}\\p{Z},]");
}

TEST(TokenizerRegexTest, TranslationRejectsWhatTheEnginesReadDifferently) {
  EXPECT_NE(ErrorOf("\\w").find("where: regex \"\\\\w\": \\w at offset 0 is not supported"), std::string::npos)
      << ErrorOf("\\w");
  EXPECT_NE(ErrorOf("(?m:.)").find("option (?m"), std::string::npos);
  EXPECT_NE(ErrorOf("[a[b]]").find("nested class"), std::string::npos);
  EXPECT_NE(ErrorOf("[a&&b]").find("intersection"), std::string::npos);
  EXPECT_NE(ErrorOf("a{2}?").find("{n}?"), std::string::npos);
  EXPECT_NE(ErrorOf("\\xE9").find("byte value above 0x7F"), std::string::npos);
  EXPECT_EQ(ErrorOf("(?i:'s)|\\p{N}{1,3}"), "");
}

TEST(TokenizerRegexTest, CompileErrorsNameTheLocation) {
  EXPECT_TRUE(test::HasText(test::ErrorOf([] { Regex("(open", RegexSyntax::kOniguruma, "file: pattern.Regex"); }),
                            "file: pattern.Regex: invalid regex \"(open\""));
}

TEST(TokenizerRegexTest, EmptyMatchesAdvanceLikeFindIter) {
  const Regex x_star("x*", RegexSyntax::kOniguruma, "test");
  // Empty at 0, "xx" at 1..3, the empty match at 3 is skipped, empty at 4.
  EXPECT_EQ(AllMatches(x_star, "axxb"), (Matches{{0, 0}, {1, 3}, {4, 4}}));
  // Empty matches step whole characters, never into a UTF-8 sequence.
  const Regex empty("", RegexSyntax::kLiteral, "test");
  EXPECT_EQ(AllMatches(empty, "\xC3\xA9z"), (Matches{{0, 0}, {2, 2}, {3, 3}}));
}

TEST(TokenizerRegexTest, LiteralsAreNotPatterns) {
  const Regex dot(".+", RegexSyntax::kLiteral, "test");
  EXPECT_EQ(AllMatches(dot, "a.+b.+"), (Matches{{1, 3}, {4, 6}}));
}

TEST(TokenizerRegexTest, MatchesAtIsAnchored) {
  const Regex digits("\\p{N}+", RegexSyntax::kOniguruma, "test");
  EXPECT_TRUE(digits.MatchesAt("a12", 1));
  EXPECT_FALSE(digits.MatchesAt("a12", 0));
  size_t start = 0;
  size_t end = 0;
  ASSERT_TRUE(digits.Search("a12b3", 0, /*anchored=*/false, &start, &end));
  EXPECT_EQ(start, 1u);
  EXPECT_EQ(end, 3u);
}

}  // namespace
}  // namespace tokenizer_internal
}  // namespace promptsweep
