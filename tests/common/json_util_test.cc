#include "common/json_util.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

// gtest only: common_tests does not link gmock.
using test::HasText;

using test::ErrorOf;

class JsonUtilTest : public ::testing::Test {
 protected:

  static std::string ParseError(const std::string& text) {
    return ErrorOf([&] { ParseJson(text, "in.json"); });
  }

  // A file in this test's temporary directory holding `text`.
  std::string WriteTempFile(const std::string& name, const std::string& text) {
    const std::string path = temp_dir_.File(name);
    test::WriteFileBytes(path, text);
    return path;
  }

  test::ScopedTempDir temp_dir_;
};

TEST_F(JsonUtilTest, ParsesValidJson) {
  const nlohmann::json json = ParseJson(R"({"a": [1, 2.5, "x"], "b": null})", "in.json");
  EXPECT_EQ(json["a"][0], 1);
  EXPECT_EQ(json["a"][1], 2.5);
  EXPECT_EQ(json["a"][2], "x");
  EXPECT_TRUE(json["b"].is_null());
}

TEST_F(JsonUtilTest, LineColumnCountsLinesAndCodePoints) {
  const std::string text = "ab\ncd\xC3\xA9" "f";  // "é" is two bytes
  EXPECT_EQ(LineColumn(text, 0), std::make_pair(1, 1));
  EXPECT_EQ(LineColumn(text, 2), std::make_pair(1, 3));  // the newline itself
  EXPECT_EQ(LineColumn(text, 3), std::make_pair(2, 1));
  EXPECT_EQ(LineColumn(text, 5), std::make_pair(2, 3));  // first byte of é
  EXPECT_EQ(LineColumn(text, 7), std::make_pair(2, 4));  // f
}

TEST_F(JsonUtilTest, ParseErrorNamesLineAndColumnOfTheBadToken) {
  const std::string message = ParseError("{\n  \"a\": 1,\n  \"b\": x\n}");
  EXPECT_TRUE(HasText(message, "in.json:3:8: invalid JSON: "));
  // The reason survives, not only nlohmann's "last read" token.
  EXPECT_TRUE(HasText(message, "syntax error while parsing value"));
  EXPECT_FALSE(HasText(message, "[json.exception"));
}

TEST_F(JsonUtilTest, ParseErrorColumnCountsCodePoints) {
  EXPECT_TRUE(HasText(ParseError("{\"\xC3\xA9\": x}"), "in.json:1:7: "));
}

TEST_F(JsonUtilTest, ParseErrorAtEndOfInput) {
  EXPECT_TRUE(HasText(ParseError("{\"a\": [1, 2"), "in.json:1:12: invalid JSON: "));
  EXPECT_TRUE(HasText(ParseError("{\"a\": [1, 2"), "unexpected end of input"));
  EXPECT_TRUE(HasText(ParseError(""), "in.json:1:1: invalid JSON"));
}

TEST_F(JsonUtilTest, ParseErrorForTrailingGarbage) {
  EXPECT_TRUE(HasText(ParseError("{}\n\n  ]"), "in.json:3:3: "));
}

TEST_F(JsonUtilTest, NumberOverflowIsAnErrorWithPosition) {
  // nlohmann throws out_of_range (not parse_error) here; it must still become an Error.
  const std::string message = ParseError("{\n  \"x\": 1e999\n}");
  EXPECT_TRUE(HasText(message, "in.json:2:8: invalid JSON: "));
  EXPECT_TRUE(HasText(message, "1e999"));
}

TEST_F(JsonUtilTest, ReadJsonFileReportsPathAndPosition) {
  const std::string path = WriteTempFile("bad.json", "{\n\"a\": tru\n}");
  EXPECT_TRUE(HasText(ErrorOf([&] { ReadJsonFile(path); }), path + ":2:"));
  const std::string good = WriteTempFile("good.json", "{\"a\": true}");
  EXPECT_EQ(ReadJsonFile(good)["a"], true);
}

TEST_F(JsonUtilTest, ReadJsonFileMissingFile) {
  const std::string path = temp_dir_.File("does-not-exist.json");
  EXPECT_TRUE(HasText(ErrorOf([&] { ReadJsonFile(path); }), path + ": cannot open"));
}

TEST_F(JsonUtilTest, ObjectRequiresAnObject) {
  const nlohmann::json json = nlohmann::json::array({1, 2});
  EXPECT_EQ(ErrorOf([&] { JsonObject(json, "in.json"); }),
            "in.json: expected a JSON object, found array of 2 elements");
}

TEST_F(JsonUtilTest, MissingAndNullRequiredFields) {
  const nlohmann::json json = {{"n", nullptr}};
  const JsonObject object(json, "in.json");
  EXPECT_EQ(ErrorOf([&] { object.Int("size"); }), "in.json: field 'size': missing (required)");
  EXPECT_EQ(ErrorOf([&] { object.Int("n"); }), "in.json: field 'n': missing (required)");
  EXPECT_FALSE(object.Has("n"));
  EXPECT_TRUE(object.Contains("n"));
  EXPECT_FALSE(object.Contains("size"));
}

TEST_F(JsonUtilTest, DefaultsApplyWhenAbsentOrNull) {
  const nlohmann::json json = {{"n", nullptr}, {"m", 3}};
  const JsonObject object(json, "in.json");
  EXPECT_EQ(object.Int("n", 7), 7);
  EXPECT_EQ(object.Int("absent", 8), 8);
  EXPECT_EQ(object.Int("m", 8), 3);
  EXPECT_EQ(object.Float("n", 0.5), 0.5);
  EXPECT_EQ(object.Bool("n", true), true);
  EXPECT_EQ(object.String("n", "d"), "d");
  EXPECT_EQ(object.OptionalString("n"), std::nullopt);
}

TEST_F(JsonUtilTest, IntAcceptsIntegralNumbersInRange) {
  const nlohmann::json json = ParseJson(
      R"({"a": 2048, "b": 2048.0, "c": -5, "max": 9223372036854775807,
          "min": -9223372036854775808})",
      "in.json");
  const JsonObject object(json, "in.json");
  EXPECT_EQ(object.Int("a"), 2048);
  EXPECT_EQ(object.Int("b"), 2048);
  EXPECT_EQ(object.Int("c"), -5);
  EXPECT_EQ(object.Int("max"), INT64_MAX);
  EXPECT_EQ(object.Int("min"), INT64_MIN);
}

TEST_F(JsonUtilTest, IntRejectsWrongTypesAndOutOfRange) {
  const nlohmann::json json = ParseJson(
      R"({"str": "12", "frac": 1.5, "bool": true, "list": [1], "huge": 1e300,
          "u64": 18446744073709551615, "two63": 9223372036854775808.0})",
      "in.json");
  const JsonObject object(json, "in.json");
  EXPECT_EQ(ErrorOf([&] { object.Int("str"); }),
            "in.json: field 'str': expected an integer, found string \"12\"");
  EXPECT_EQ(ErrorOf([&] { object.Int("frac"); }),
            "in.json: field 'frac': expected an integer, found number 1.5");
  EXPECT_TRUE(HasText(ErrorOf([&] { object.Int("bool"); }), "found boolean true"));
  EXPECT_TRUE(HasText(ErrorOf([&] { object.Int("list"); }), "found array of 1 elements"));
  for (const char* key : {"huge", "u64", "two63"}) {
    EXPECT_TRUE(HasText(ErrorOf([&] { object.Int(key); }),
                        StrCat("field '", key, "': integer out of the 64-bit range")));
  }
}

TEST_F(JsonUtilTest, IntOrIntList) {
  const nlohmann::json json = ParseJson(
      R"({"one": 5, "many": [1, 2, 3], "empty": [], "bad": [1, "x"], "str": "x"})", "in.json");
  const JsonObject object(json, "in.json");
  EXPECT_EQ(object.IntOrIntList("one"), std::vector<int64_t>{5});
  EXPECT_EQ(object.IntOrIntList("many"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(object.IntOrIntList("empty").empty());
  EXPECT_EQ(ErrorOf([&] { object.IntOrIntList("bad"); }),
            "in.json: field 'bad': element 1: expected an integer, found string \"x\"");
  EXPECT_TRUE(HasText(ErrorOf([&] { object.IntOrIntList("str"); }),
                      "field 'str': expected an integer, found string \"x\" (or a list of integers)"));
}

TEST_F(JsonUtilTest, FloatBoolString) {
  const nlohmann::json json =
      ParseJson(R"({"f": 1e-05, "i": 3, "s": "x", "b": false, "one": 1})", "in.json");
  const JsonObject object(json, "in.json");
  EXPECT_EQ(object.Float("f"), 1e-5);
  EXPECT_EQ(object.Float("i"), 3.0);
  EXPECT_EQ(ErrorOf([&] { object.Float("s"); }),
            "in.json: field 's': expected a number, found string \"x\"");
  EXPECT_EQ(object.Bool("b"), false);
  EXPECT_EQ(ErrorOf([&] { object.Bool("one"); }),
            "in.json: field 'one': expected true or false, found number 1");
  EXPECT_EQ(object.String("s"), "x");
  EXPECT_EQ(ErrorOf([&] { object.String("i"); }),
            "in.json: field 'i': expected a string, found number 3");
  EXPECT_EQ(ErrorOf([&] { object.OptionalString("i"); }),
            "in.json: field 'i': expected a string, found number 3");
}

TEST_F(JsonUtilTest, FloatRejectsNonFiniteValuesBuiltInCode) {
  const nlohmann::json json = {{"inf", std::numeric_limits<double>::infinity()}};
  EXPECT_TRUE(HasText(ErrorOf([&] { JsonObject(json, "in.json").Float("inf"); }),
                      "field 'inf': expected a finite number, found number inf"));
}

TEST_F(JsonUtilTest, NestedObjectErrorsNameTheParent) {
  const nlohmann::json json = ParseJson(R"({"inner": {"x": "y"}, "flat": 1})", "in.json");
  const JsonObject object(json, "in.json");
  EXPECT_EQ(ErrorOf([&] { object.Object("inner").Int("x"); }),
            "in.json: inner: field 'x': expected an integer, found string \"y\"");
  EXPECT_EQ(ErrorOf([&] { object.Object("flat"); }),
            "in.json: field 'flat': expected an object, found number 1");
}

TEST_F(JsonUtilTest, DescribeJsonNeverDumpsContainersAndCutsLongStrings) {
  // A deeply nested value: dumping it recursively could overflow the stack.
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  const nlohmann::json json = ParseJson("{\"x\": " + deep + "}", "in.json");
  EXPECT_EQ(ErrorOf([&] { JsonObject(json, "in.json").Int("x"); }),
            "in.json: field 'x': expected an integer, found array of 1 elements");

  // 59 ASCII bytes then a two-byte code point straddling the 60-byte cut.
  const std::string long_text = std::string(59, 'a') + "\xC3\xA9" + std::string(100, 'b');
  const std::string described = DescribeJson(long_text);
  EXPECT_EQ(described, "string \"" + std::string(59, 'a') + "...\"");
  EXPECT_EQ(DescribeJson(nlohmann::json::object({{"a", 1}})), "object with 1 fields");
  EXPECT_EQ(DescribeJson(nullptr), "null null");
}

}  // namespace
}  // namespace promptsweep

namespace promptsweep {
namespace {

// nlohmann stops at NUL as if the input ended; the reader must not accept the rest.
TEST(JsonUtilNulTest, NulByteIsAnErrorWithItsPosition) {
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ParseJson(std::string_view("{}\0junk", 7), "in.json"); }),
                            "in.json:1:3: invalid JSON: NUL byte"));
}

// JsonNode: errors name the JSON path below the file.
TEST(JsonNodeTest, PathsNameTheValue) {
  const nlohmann::json json = {{"model", {{"merges", {"a b", 3}}}}};
  const JsonNode root(json, "tokenizer.json");
  EXPECT_EQ(root.Where(), "tokenizer.json");
  const JsonNode merges = root.Child("model").Child("merges");
  EXPECT_EQ(merges.At(1).Where(), "tokenizer.json: model.merges[1]");
  EXPECT_EQ(merges.At(0).String(), "a b");
  EXPECT_TRUE(root.Child("missing").IsNull());
  EXPECT_EQ(root.Child("missing").Where(), "tokenizer.json: missing");
  EXPECT_EQ(test::ErrorOf([&] { merges.At(1).String(); }),
            "tokenizer.json: model.merges[1]: expected a string, found number 3");
  EXPECT_EQ(test::ErrorOf([&] { merges.At(2); }), "tokenizer.json: model.merges: no element 2 in an array of 2");
  EXPECT_EQ(test::ErrorOf([&] { merges.Child("x"); }),
            "tokenizer.json: model.merges: expected a JSON object, found array of 2 elements");
  EXPECT_EQ(test::ErrorOf([&] { root.Child("model").Object().Int("n"); }),
            "tokenizer.json: model: field 'n': missing (required)");
  EXPECT_EQ(JsonQuoted("a\"b\xFF"), "\"a\\\"b\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace promptsweep
