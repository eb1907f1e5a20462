#include "common/tokenizer_pre_tokenizer.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "test_utils.h"
#include "common/tokenizer.h"
#include "common/tokenizer_regex.h"

namespace promptsweep {
namespace tokenizer_internal {
namespace {

using Json = nlohmann::json;
using Strings = std::vector<std::string>;

Strings Apply(const Json& json, std::string_view text) {
  const PreTokenizer pre_tokenizer(JsonNode(json, "tokenizer.json"));
  PreTokenizeScratch scratch;
  Pieces pieces;
  pre_tokenizer.Apply(text, &scratch, &pieces);
  return Strings(pieces.begin(), pieces.end());
}

Strings Split(const Regex& regex, bool invert, SplitBehavior behavior, std::string_view text) {
  PreTokenizeScratch scratch;
  Pieces pieces;
  SplitByMatches(text, regex, invert, behavior, &scratch, &pieces);
  return Strings(pieces.begin(), pieces.end());
}

TEST(PreTokenizerTest, SplitBehaviours) {
  const Regex dash("-", RegexSyntax::kLiteral, "test");
  const std::string text = "the-final--countdown";
  EXPECT_EQ(Split(dash, false, SplitBehavior::kRemoved, text), (Strings{"the", "final", "countdown"}));
  EXPECT_EQ(Split(dash, false, SplitBehavior::kIsolated, text),
            (Strings{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(Split(dash, false, SplitBehavior::kMergedWithPrevious, text),
            (Strings{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(Split(dash, false, SplitBehavior::kMergedWithNext, text),
            (Strings{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(Split(dash, false, SplitBehavior::kContiguous, text), (Strings{"the", "-", "final", "--", "countdown"}));
}

TEST(PreTokenizerTest, SequenceRunsStepsInOrder) {
  const Json json = {{"type", "Sequence"},
                     {"pretokenizers",
                      {{{"type", "Digits"}, {"individual_digits", true}},
                       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}}};
  EXPECT_EQ(Apply(json, "ab12 cd"), (Strings{"ab", "1", "2", " cd"}));
}

TEST(PreTokenizerTest, ForEachByteLevelPieceIsGpt2) {
  Strings pieces;
  ForEachByteLevelPiece("it's 42!", [&](std::string_view piece) { pieces.emplace_back(piece); });
  EXPECT_EQ(pieces, (Strings{"it", "'s", " 42", "!"}));
  EXPECT_THROW(ForEachByteLevelPiece("\xFF", [](std::string_view) {}), Error);
}

TEST(PreTokenizerTest, ErrorsNameTheJsonPath) {
  const Json root = {{"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Whitespace"}}}}}}};
  EXPECT_TRUE(test::HasText(
      test::ErrorOf([&] { PreTokenizer(JsonNode(root, "tokenizer.json").Child("pre_tokenizer")); }),
      "tokenizer.json: pre_tokenizer.pretokenizers[0]: unsupported type \"Whitespace\""));
}

}  // namespace
}  // namespace tokenizer_internal
}  // namespace promptsweep
