#include "common/format.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace promptsweep {
namespace {

TEST(FormatShortestTest, ShortestTextThatReadsBack) {
  EXPECT_EQ(FormatShortest(0.3), "0.3");
  EXPECT_EQ(FormatShortest(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatShortest(1e-5), "1e-05");
  EXPECT_EQ(FormatShortest(1e-8), "1e-08");
  EXPECT_EQ(FormatShortest(0.001), "0.001");
  EXPECT_EQ(FormatShortest(100000), "1e+05");  // shorter than "100000"
  EXPECT_EQ(FormatShortest(123456), "123456");
  EXPECT_EQ(FormatShortest(1200000), "1200000");  // a tie: fixed
  EXPECT_EQ(FormatShortest(1e21), "1e+21");
  EXPECT_EQ(FormatShortest(2.0 / 3.0), "0.6666666666666666");
  EXPECT_EQ(FormatShortest(-0.8), "-0.8");
}

TEST(FormatShortestTest, IntegersZerosAndSpecials) {
  EXPECT_EQ(FormatShortest(0.0), "0");
  EXPECT_EQ(FormatShortest(-0.0), "-0");
  EXPECT_EQ(FormatShortest(1.0), "1");
  EXPECT_EQ(FormatShortest(42.0), "42");
  EXPECT_EQ(FormatShortest(-7.0), "-7");
  EXPECT_EQ(FormatShortest(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(FormatShortest(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(FormatShortest(std::numeric_limits<double>::quiet_NaN()), "nan");
  EXPECT_EQ(FormatShortest(-std::numeric_limits<double>::quiet_NaN()), "nan");
}

TEST(FormatShortestTest, RoundTripsExtremes) {
  for (const double value : {std::numeric_limits<double>::max(), std::numeric_limits<double>::min(),
                             std::numeric_limits<double>::denorm_min(), -std::numeric_limits<double>::lowest(),
                             0.1, 1.0 / 3.0, 5.0857828857615014e-05, 6.02214076e23}) {
    const std::string text = FormatShortest(value);
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), value) << text;
  }
  EXPECT_EQ(FormatShortest(-2.2250738585072014e-308), "-2.2250738585072014e-308");
}

TEST(FormatDurationTest, SecondsMinutesHours) {
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(44.6), "45s");
  EXPECT_EQ(FormatDuration(59.4), "59s");
  EXPECT_EQ(FormatDuration(60), "1m0s");
  EXPECT_EQ(FormatDuration(83), "1m23s");
  EXPECT_EQ(FormatDuration(3599), "59m59s");
  EXPECT_EQ(FormatDuration(3600), "1h0m");
  EXPECT_EQ(FormatDuration(7500), "2h5m");
  EXPECT_EQ(FormatDuration(-1), "?");
  EXPECT_EQ(FormatDuration(std::nan("")), "?");
  EXPECT_EQ(FormatDuration(std::numeric_limits<double>::infinity()), "?");
}

TEST(FormatTableTest, LeftAlignedColumnsTwoSpacesApart) {
  EXPECT_EQ(FormatTable({{"job", "state"}, {"a1", "running"}, {"long-id", "ok"}}),
            "job      state\n"
            "a1       running\n"
            "long-id  ok\n");
  EXPECT_EQ(FormatTable({}), "");
  EXPECT_EQ(FormatTable({{"only"}}), "only\n");
  // The last column is not padded.
  EXPECT_EQ(FormatTable({{"a", "b"}, {"ccc", ""}}), "a    b\nccc  \n");
}

TEST(ParseNumberTest, WholeTextOnly) {
  EXPECT_EQ(ParseInteger("42"), 42);
  EXPECT_EQ(ParseInteger("-7"), -7);
  EXPECT_EQ(ParseInteger(""), std::nullopt);
  EXPECT_EQ(ParseInteger("4x"), std::nullopt);
  EXPECT_EQ(ParseInteger("1.0"), std::nullopt);
  EXPECT_EQ(ParseInteger("99999999999999999999"), std::nullopt);
  EXPECT_EQ(ParseDouble("3e-4"), 3e-4);
  EXPECT_EQ(ParseDouble("-0.5"), -0.5);
  EXPECT_EQ(ParseDouble(""), std::nullopt);
  EXPECT_EQ(ParseDouble("0.5 "), std::nullopt);
  EXPECT_EQ(ParseDouble("inf"), std::nullopt);
  EXPECT_EQ(ParseDouble("nan"), std::nullopt);
  EXPECT_EQ(ParseDouble("1e999"), std::nullopt);
}

}  // namespace
}  // namespace promptsweep
