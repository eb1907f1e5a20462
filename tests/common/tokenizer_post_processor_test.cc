#include "common/tokenizer_post_processor.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "test_utils.h"

namespace promptsweep {
namespace tokenizer_internal {
namespace {

using Ids = std::vector<int32_t>;
using Json = nlohmann::json;

// TemplateProcessing with `single` built from "$A" and special-token names.
Json Template(const std::vector<std::string>& single, const Json& special_tokens) {
  Json pieces = Json::array();
  for (const std::string& name : single) {
    pieces.push_back(name == "$A" ? Json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}
                                  : Json{{"SpecialToken", {{"id", name}, {"type_id", 0}}}});
  }
  return {{"type", "TemplateProcessing"}, {"single", pieces}, {"special_tokens", special_tokens}};
}

const Json kSpecial = {{"<s>", {{"id", "<s>"}, {"ids", {1}}}}, {"</s>", {{"id", "</s>"}, {"ids", {2, 3}}}}};

bool Exists(int32_t id) { return id < 10; }

TEST(PostProcessorTest, TemplatesApplyInOrder) {
  const Json sequence = {{"type", "Sequence"},
                         {"processors",
                          {{{"type", "ByteLevel"}}, Template({"<s>", "$A"}, kSpecial),
                           Template({"$A", "</s>"}, kSpecial)}}};
  const PostProcessor post(JsonNode(sequence, "tokenizer.json"), Exists);
  EXPECT_EQ(post.Apply({7, 8}), (Ids{1, 7, 8, 2, 3}));
  EXPECT_EQ(post.Apply({}), (Ids{1, 2, 3}));
  const Json null;
  EXPECT_EQ(PostProcessor(JsonNode(null, "tokenizer.json"), Exists).Apply({5}), (Ids{5}));
}

TEST(PostProcessorTest, UnknownIdsNameTheJsonPath) {
  const Json root = {{"post_processor", Template({"<s>", "$A"}, {{"<s>", {{"id", "<s>"}, {"ids", {1, 99}}}}})}};
  EXPECT_TRUE(test::HasText(
      test::ErrorOf([&] { PostProcessor(JsonNode(root, "tokenizer.json").Child("post_processor"), Exists); }),
      "tokenizer.json: post_processor.special_tokens.<s>.ids[1]: id 99"));
}

}  // namespace
}  // namespace tokenizer_internal
}  // namespace promptsweep
