#include "common/tokenizer_added_vocabulary.h"

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "test_utils.h"
#include "common/tokenizer_bpe.h"
#include "common/tokenizer_utf8.h"

namespace promptsweep {
namespace tokenizer_internal {
namespace {

struct Match {
  size_t start;
  size_t end;
  int token;
  bool operator==(const Match& other) const {
    return start == other.start && end == other.end && token == other.token;
  }
};

std::vector<Match> AllMatches(const AddedTokenTrie& trie, std::string_view text) {
  std::vector<Match> matches;
  size_t from = 0;
  Match m{};
  while (trie.FindNext(text, from, &m.start, &m.end, &m.token)) {
    matches.push_back(m);
    from = m.end;
  }
  return matches;
}

TEST(AddedTokenTrieTest, LeftmostLongest) {
  AddedTokenTrie trie;
  EXPECT_TRUE(trie.empty());
  trie.Add("<a>", 0);
  trie.Add("<a><b>", 1);
  trie.Add("b>", 2);
  EXPECT_FALSE(trie.empty());
  // At 1 both <a> and <a><b> start: the longer wins; "b>" inside it is consumed.
  EXPECT_EQ(AllMatches(trie, "x<a><b>y<a>"), (std::vector<Match>{{1, 7, 1}, {8, 11, 0}}));
  // A partial longer token falls back to the shorter one, then "b>" is found.
  EXPECT_EQ(AllMatches(trie, "<a><b>"), (std::vector<Match>{{0, 6, 1}}));
  EXPECT_EQ(AllMatches(trie, "<a><b"), (std::vector<Match>{{0, 3, 0}}));
  EXPECT_EQ(AllMatches(trie, "ab>"), (std::vector<Match>{{1, 3, 2}}));
  EXPECT_TRUE(AllMatches(trie, "<a").empty());
  EXPECT_TRUE(AllMatches(trie, "").empty());
}

// A byte-level BPE model with byte ids 0..255 and no merges.
nlohmann::json ByteModel() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteAlphabet::Get().CharOf(static_cast<unsigned char>(b))] = b;
  return {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}};
}

std::vector<std::pair<std::string, int32_t>> Splits(const AddedVocabulary& added, std::string_view text) {
  std::vector<std::pair<std::string, int32_t>> splits;
  added.Extract(text, [&](std::string_view part, int32_t id) { splits.emplace_back(std::string(part), id); });
  return splits;
}

TEST(AddedVocabularyTest, ExtractAssignsIdsAndStrips) {
  const nlohmann::json model_json = ByteModel();
  const BpeModel model(JsonNode(model_json, "model.json"));
  const nlohmann::json list = {
      {{"id", 256}, {"content", "<s>"}, {"special", true}, {"rstrip", true}},
      {{"id", 257}, {"content", "hi"}, {"special", false}, {"normalized", true}},
  };
  AddedVocabulary added;
  added.Load(JsonNode(list, "tokenizer.json"), model);
  EXPECT_EQ(Splits(added, "a<s>  hi!"),
            (std::vector<std::pair<std::string, int32_t>>{{"a", -1}, {"<s>  ", 256}, {"hi", 257}, {"!", -1}}));
  EXPECT_EQ(added.IdOf("hi"), 257);
  EXPECT_TRUE(added.IsSpecialContent("<s>"));
  EXPECT_FALSE(added.IsSpecialContent("hi"));
  EXPECT_EQ(added.MaxIdPlusOne(), 258);
  ASSERT_NE(added.ById(256), nullptr);
  EXPECT_TRUE(added.ById(256)->rstrip);
  EXPECT_EQ(added.ById(5), nullptr);
}

TEST(AddedVocabularyTest, WrongIdsNameTheEntry) {
  const nlohmann::json model_json = ByteModel();
  const BpeModel model(JsonNode(model_json, "model.json"));
  const nlohmann::json list = {{{"id", 300}, {"content", "<x>"}}};
  AddedVocabulary added;
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { added.Load(JsonNode(list, "tokenizer.json"), model); }),
                            "tokenizer.json: [0]: id 300 for \"<x>\" but tokenizers would assign 256"));
}

}  // namespace
}  // namespace tokenizer_internal
}  // namespace promptsweep
