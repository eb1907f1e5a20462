#include "common/tokenizer_decoder.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "test_utils.h"

namespace promptsweep {
namespace tokenizer_internal {
namespace {

TEST(DecoderTest, ByteLevelTokensAndPassThrough) {
  const nlohmann::json json = {{"type", "ByteLevel"}};
  const Decoder decoder(JsonNode(json, "tokenizer.json"));
  // "Ġthe" is " the"; printable ASCII ("<|eot_id|>") stands for itself; "a b"
  // holds a raw space, which is outside the alphabet, so it passes through.
  EXPECT_EQ(decoder.Decode({"Hello", "\xC4\xA0the", "<|eot_id|>", "a b"}), "Hello the<|eot_id|>a b");
  // Half of "é" (bytes C3 A9 as the characters Ã ©): U+FFFD, as tokenizers.
  EXPECT_EQ(decoder.Decode({"\xC3\x83"}), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.Decode({"\xC3\x83", "\xC2\xA9"}), "\xC3\xA9");
  EXPECT_EQ(decoder.Decode({}), "");
}

TEST(DecoderTest, OnlyByteLevelLoads) {
  const nlohmann::json root = {{"decoder", {{"type", "WordPiece"}}}};
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { Decoder(JsonNode(root, "tokenizer.json").Child("decoder")); }),
                            "tokenizer.json: decoder: unsupported type \"WordPiece\""));
}

}  // namespace
}  // namespace tokenizer_internal
}  // namespace promptsweep
