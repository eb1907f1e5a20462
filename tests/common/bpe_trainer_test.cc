#include "common/bpe_trainer.h"

#include <algorithm>
#include <fstream>
#include <unordered_map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"
#include "common/tokenizer.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using Merges = std::vector<std::pair<std::string, std::string>>;
using test::ErrorOf;
using test::HasText;

// A trainer with `options` fed `texts`, one AddText call each.
BpeModelData TrainOn(const std::vector<std::string>& texts, BpeTrainerOptions options) {
  ByteLevelBpeTrainer trainer(std::move(options));
  for (const std::string& text : texts) trainer.AddText(text);
  return trainer.Train();
}

// Options with room for exactly `merges` merges after the byte symbols and specials.
BpeTrainerOptions WithMerges(int64_t merges, uint64_t min_frequency = 1) {
  BpeTrainerOptions options;
  options.min_frequency = min_frequency;
  options.vocab_size = ByteLevelBpeTrainer::MinimumVocabSize(options.special_tokens) + merges;
  return options;
}

std::unique_ptr<Tokenizer> Load(const BpeModelData& model) {
  return Tokenizer::FromJson(nlohmann::json::parse(ByteLevelTokenizerJson(model)), "trained tokenizer.json");
}

// Brown corpus sentences and hard cases (the texts of the GPT-2 reference file).
std::vector<std::string> ReferenceTexts() {
  const std::string path = PROMPTSWEEP_TEST_DATA_DIR "/tokenizer/gpt2_reference.jsonl";
  std::ifstream in(path);
  if (!in) throw Error(StrCat(path, ": cannot open"));
  std::vector<std::string> texts;
  std::string line;
  while (std::getline(in, line)) texts.push_back(ParseJson(line, path).at("text").get<std::string>());
  return texts;
}

// tokenizers' own trainer test (models/bpe/trainer.rs, test_train): the same
// words, vocabulary and merges, with ids.
TEST(BpeTrainerTest, ReplaysTokenizersTrainTest) {
  const WordCounts words = {{"roses", 1}, {"are", 2}, {"red", 1}, {"voilets", 1}, {"blue", 1}, {"BERT", 1},
                            {"is", 2},    {"big", 1}, {"and", 1}, {"so", 1},      {"GPT-2", 1}};
  BpeTrainerOptions options;
  options.vocab_size = 30000;
  options.min_frequency = 2;
  options.special_tokens.clear();
  const BpeModelData model = TrainBpe(words, /*initial_alphabet=*/{}, options);
  const std::vector<std::string> expected_vocab = {"-", "2", "B", "E", "G", "P", "R", "T", "a",  "b",   "d",  "e", "g",
                                                   "i", "l", "n", "o", "r", "s", "t", "u", "v", "re", "are", "is"};
  EXPECT_EQ(model.vocab, expected_vocab);
  // ("a", "re") and ("i", "s") both occur twice: the pair of smaller ids, (8, 22), wins.
  EXPECT_EQ(model.merges, (Merges{{"r", "e"}, {"a", "re"}, {"i", "s"}}));
  EXPECT_TRUE(model.special_tokens.empty());
}

TEST(BpeTrainerTest, IdsAreSpecialsThenBytesByCodePointThenMerges) {
  BpeTrainerOptions options = WithMerges(1);
  options.special_tokens = {"<|endoftext|>", "<pad>", "<|endoftext|>"};  // a repeat counts once
  options.vocab_size = 256 + 2 + 1;
  const BpeModelData model = TrainOn({"hi", "hi"}, options);
  ASSERT_EQ(model.vocab.size(), 259u);
  EXPECT_EQ(model.special_tokens, (std::vector<std::string>{"<|endoftext|>", "<pad>"}));
  EXPECT_EQ(model.vocab[0], "<|endoftext|>");
  EXPECT_EQ(model.vocab[1], "<pad>");
  EXPECT_EQ(model.vocab[2], "!");            // U+0021, byte 0x21
  EXPECT_EQ(model.vocab[2 + 93], "~");       // the printable ASCII run ends at U+007E
  EXPECT_EQ(model.vocab[2 + 94], "\u00A1");  // then printable Latin-1
  EXPECT_EQ(model.vocab[2 + 188], "\u0100");  // then the remapped bytes: U+0100 is byte 0x00
  EXPECT_EQ(model.vocab[2 + 188 + 32], "\u0120");  // 'Ġ' is the space
  EXPECT_EQ(model.vocab[257], "\u0143");     // ... up to U+0143
  EXPECT_EQ(model.vocab[258], "hi");
  EXPECT_EQ(model.merges, (Merges{{"h", "i"}}));
}

// A merge that rebuilds an existing token reuses its id, as tokenizers does
// (here a special token); the vocabulary does not grow for it.
TEST(BpeTrainerTest, MergeIntoAnExistingTokenReusesItsId) {
  BpeTrainerOptions options;
  options.special_tokens = {"<|endoftext|>", "hi"};
  options.min_frequency = 1;
  options.vocab_size = 258 + 1;
  const BpeModelData model = TrainOn({"hi hi"}, options);  // words "hi" and "Ġhi"
  EXPECT_EQ(model.merges, (Merges{{"h", "i"}, {"Ġ", "hi"}}));
  ASSERT_EQ(model.vocab.size(), 259u);
  EXPECT_EQ(model.vocab[1], "hi");
  EXPECT_EQ(model.vocab[258], "Ġhi");
}

// "aaaa": tokenizers counts overlapping windows, so (a, a) occurs 3 times;
// merging it gives "aa aa", then "aaaa". Nothing is left to merge after that.
TEST(BpeTrainerTest, RepeatedCharactersMergeLeftToRight) {
  const BpeModelData model = TrainOn({"aaaa"}, WithMerges(10));
  EXPECT_EQ(model.merges, (Merges{{"a", "a"}, {"aa", "aa"}}));
  EXPECT_EQ(model.vocab.size(), 257u + 2u);

  // "aaa": (a, a) merges at the left, leaving "aa a".
  const BpeModelData odd = TrainOn({"aaa", "aaa"}, WithMerges(10));
  EXPECT_EQ(odd.merges, (Merges{{"a", "a"}, {"aa", "a"}}));
}

// Words (they keep their leading space): "low", "Ġlow", "Ġlower", once each.
TEST(BpeTrainerTest, MergeOrderOfASmallCorpus) {
  const BpeModelData model = TrainOn({"low low lower"}, WithMerges(5));
  // (l,o) 3, (o,w) 3, (Ġ,l) 2, (w,e) 1, (e,r) 1: (l, o) wins the tie by smaller ids.
  // Then (lo, w) 3, (Ġ, low) 2; at count 1, (e, r) beats (Ġlow, e) as e < Ġlow.
  EXPECT_EQ(model.merges, (Merges{{"l", "o"}, {"lo", "w"}, {"Ġ", "low"}, {"e", "r"}, {"Ġlow", "er"}}));
}

// Ties go to the smaller pair of *ids*, not of strings: "zy" (made first) has
// a smaller id than "ab", so (zy, q) beats (ab, q) although "ab" < "zy".
TEST(BpeTrainerTest, TiesGoToTheSmallerIdPair) {
  const BpeModelData model = TrainOn({"zyq", "zyq", "abq", "abq", "zy"}, WithMerges(3));
  EXPECT_EQ(model.merges, (Merges{{"z", "y"}, {"a", "b"}, {"zy", "q"}}));
}

// The textbook algorithm: recount every adjacent pair after each merge and
// merge the most frequent one (ties: smaller ids) everywhere, left to right.
// Slow but obviously right; the incremental trainer must pick the same merges
// (they differ only when a merge rebuilds an existing token, where tokenizers'
// bookkeeping goes its own way; ReferenceTexts has no such case).
Merges NaiveMerges(const WordCounts& words, const BpeTrainerOptions& options) {
  std::vector<std::string> tokens = options.special_tokens;
  std::vector<std::string> alphabet = ByteLevelAlphabet();
  std::sort(alphabet.begin(), alphabet.end());  // byte order of UTF-8 is code point order
  tokens.insert(tokens.end(), alphabet.begin(), alphabet.end());
  const auto id_of = [&](const std::string& token) {
    return static_cast<int32_t>(std::find(tokens.begin(), tokens.end(), token) - tokens.begin());
  };
  std::vector<std::vector<int32_t>> symbols;
  std::vector<int64_t> counts;
  for (const auto& [word, count] : words) {
    symbols.emplace_back();
    for (size_t i = 0; i < word.size();) {
      const size_t n = static_cast<unsigned char>(word[i]) < 0x80 ? 1 : 2;  // the alphabet is below U+0800
      symbols.back().push_back(id_of(word.substr(i, n)));
      i += n;
    }
    counts.push_back(static_cast<int64_t>(count));
  }
  Merges merges;
  while (static_cast<int64_t>(tokens.size()) < options.vocab_size) {
    std::unordered_map<uint64_t, int64_t> pair_counts;
    for (size_t w = 0; w < symbols.size(); ++w) {
      for (size_t i = 0; i + 1 < symbols[w].size(); ++i) {
        pair_counts[(static_cast<uint64_t>(symbols[w][i]) << 32) | static_cast<uint64_t>(symbols[w][i + 1])] +=
            counts[w];
      }
    }
    uint64_t best_key = 0;
    int64_t best_count = 0;
    for (const auto& [key, count] : pair_counts) {
      if (count > best_count || (count == best_count && key < best_key)) best_key = key, best_count = count;
    }
    const std::pair<int32_t, int32_t> best{static_cast<int32_t>(best_key >> 32), static_cast<int32_t>(best_key & 0xFFFFFFFF)};
    if (best_count == 0 || best_count < static_cast<int64_t>(options.min_frequency)) break;
    merges.emplace_back(tokens[best.first], tokens[best.second]);
    tokens.push_back(tokens[best.first] + tokens[best.second]);
    const int32_t merged = static_cast<int32_t>(tokens.size() - 1);
    for (std::vector<int32_t>& word : symbols) {
      std::vector<int32_t> out;
      for (size_t i = 0; i < word.size(); ++i) {
        if (i + 1 < word.size() && word[i] == best.first && word[i + 1] == best.second) {
          out.push_back(merged);
          ++i;
        } else {
          out.push_back(word[i]);
        }
      }
      word = std::move(out);
    }
  }
  return merges;
}

TEST(BpeTrainerTest, MatchesANaiveRecountingTrainer) {
  ByteLevelBpeTrainer trainer(WithMerges(300, /*min_frequency=*/2));
  for (const std::string& text : ReferenceTexts()) trainer.AddText(text);
  WordCounts words;
  for (const auto& [bytes, count] : trainer.word_counts()) words.emplace(ByteLevelChars(bytes), count);
  const BpeModelData model = trainer.Train();
  ASSERT_EQ(model.merges.size(), 300u);
  EXPECT_EQ(model.merges, NaiveMerges(words, WithMerges(300, /*min_frequency=*/2)));
}

TEST(BpeTrainerTest, MinFrequencyStopsTraining) {
  // (a, b) occurs 3 times, (c, d) twice.
  const std::vector<std::string> texts = {"ab", "ab", "ab", "cd", "cd"};
  EXPECT_EQ(TrainOn(texts, WithMerges(10, /*min_frequency=*/2)).merges, (Merges{{"a", "b"}, {"c", "d"}}));
  EXPECT_EQ(TrainOn(texts, WithMerges(10, /*min_frequency=*/3)).merges, (Merges{{"a", "b"}}));
  const BpeModelData none = TrainOn(texts, WithMerges(10, /*min_frequency=*/4));
  EXPECT_TRUE(none.merges.empty());
  EXPECT_EQ(none.vocab.size(), 257u);
}

TEST(BpeTrainerTest, VocabSizeCapsTheMerges) {
  const std::vector<std::string> texts = ReferenceTexts();
  for (const int64_t merges : {0, 1, 50}) {
    const BpeModelData model = TrainOn(texts, WithMerges(merges));
    EXPECT_EQ(model.merges.size(), static_cast<size_t>(merges));
    EXPECT_EQ(model.vocab.size(), static_cast<size_t>(257 + merges));
  }
}

// The trained tokenizer.json loads, reproduces every reference text exactly
// (Brown sentences, whitespace runs, emoji, CJK, ...) and compresses them.
TEST(BpeTrainerTest, TrainedTokenizerRoundTripsBrownText) {
  const std::vector<std::string> texts = ReferenceTexts();
  ASSERT_GT(texts.size(), 2000u);
  const BpeModelData model = TrainOn(texts, WithMerges(700));
  ASSERT_EQ(model.vocab.size(), 957u);
  const auto tokenizer = Load(model);
  EXPECT_EQ(tokenizer->VocabSize(), 957);
  EXPECT_EQ(tokenizer->TokenToId("<|endoftext|>"), 0);
  EXPECT_TRUE(tokenizer->IsSpecial(0));
  size_t bytes = 0;
  size_t tokens = 0;
  for (const std::string& text : texts) {
    const std::vector<int32_t> ids = tokenizer->Encode(text, /*add_special_tokens=*/true);
    ASSERT_EQ(tokenizer->Decode(ids), text);
    bytes += text.size();
    tokens += ids.size();
  }
  EXPECT_GT(static_cast<double>(bytes) / static_cast<double>(tokens), 2.5);
  EXPECT_EQ(tokenizer->Encode("a<|endoftext|>b", true), (std::vector<int32_t>{*tokenizer->TokenToId("a"), 0,
                                                                              *tokenizer->TokenToId("b")}));
}

// Every distinct training word encodes to the tokens the merges build: the
// word's encoding decodes back, and frequent words end up as one token.
TEST(BpeTrainerTest, FrequentWordsBecomeSingleTokens) {
  const BpeModelData model = TrainOn(ReferenceTexts(), WithMerges(700));
  const auto tokenizer = Load(model);
  for (const std::string word : {"Ġthe", "Ġof", "Ġand", "The"}) {
    const auto id = tokenizer->TokenToId(word);
    ASSERT_TRUE(id.has_value()) << word;
    EXPECT_EQ(tokenizer->Encode(tokenizer->Decode({*id}), false), std::vector<int32_t>{*id}) << word;
  }
}

TEST(BpeTrainerTest, TokenizerJsonLayout) {
  const BpeModelData model = TrainOn({"hi hi"}, WithMerges(1));
  const std::string text = ByteLevelTokenizerJson(model);
  const nlohmann::json json = nlohmann::json::parse(text);
  EXPECT_EQ(json["version"], "1.0");
  EXPECT_TRUE(json["truncation"].is_null());
  EXPECT_TRUE(json["normalizer"].is_null());
  EXPECT_EQ(json["added_tokens"], nlohmann::json::parse(R"([{"id": 0, "content": "<|endoftext|>",
      "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}])"));
  EXPECT_EQ(json["pre_tokenizer"], nlohmann::json::parse(
                                       R"({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                                           "use_regex": true})"));
  EXPECT_EQ(json["post_processor"]["type"], "ByteLevel");
  EXPECT_EQ(json["post_processor"]["trim_offsets"], false);
  EXPECT_EQ(json["decoder"]["type"], "ByteLevel");
  const nlohmann::json& bpe = json["model"];
  EXPECT_EQ(bpe["type"], "BPE");
  EXPECT_TRUE(bpe["dropout"].is_null() && bpe["unk_token"].is_null() && bpe["continuing_subword_prefix"].is_null() &&
              bpe["end_of_word_suffix"].is_null());
  EXPECT_EQ(bpe["fuse_unk"], false);
  EXPECT_EQ(bpe["byte_fallback"], false);
  EXPECT_EQ(bpe["ignore_merges"], false);
  EXPECT_EQ(bpe["merges"], nlohmann::json::parse(R"([["h", "i"]])"));  // (h, i) 2, (Ġ, h) 1
  EXPECT_EQ(bpe["vocab"]["hi"], 257);
  // The vocabulary is written in id order, as tokenizers does.
  EXPECT_LT(text.find("\"<|endoftext|>\": 0"), text.find("\"!\": 1"));
  EXPECT_LT(text.find("\"~\": 94"), text.find("\"¡\": 95"));
}

TEST(BpeTrainerTest, FilesKeepLineEndings) {
  test::ScopedTempDir dir;
  test::WriteFileBytes(dir.File("a.txt"), "ab\nab\r\nab");
  ByteLevelBpeTrainer trainer(WithMerges(1));
  trainer.AddFile(dir.File("a.txt"));
  const WordCounts expected = {{"ab", 3}, {"\n", 1}, {"\r\n", 1}};
  EXPECT_EQ(trainer.word_counts(), expected);
  EXPECT_EQ(trainer.total_words(), 5u);
  EXPECT_EQ(trainer.total_bytes(), 9u);
}

TEST(BpeTrainerTest, Errors) {
  BpeTrainerOptions small;
  small.vocab_size = 200;
  EXPECT_TRUE(HasText(ErrorOf([&] { ByteLevelBpeTrainer trainer(small); }), "vocab size 200 is too small: the minimum is 257"));
  small.special_tokens = {"<a>", "<b>"};
  EXPECT_TRUE(HasText(ErrorOf([&] { ByteLevelBpeTrainer trainer(small); }), "the minimum is 258"));

  BpeTrainerOptions empty_special = WithMerges(1);
  empty_special.special_tokens = {""};
  EXPECT_TRUE(HasText(ErrorOf([&] { ByteLevelBpeTrainer trainer(empty_special); }), "special tokens must not be empty"));

  ByteLevelBpeTrainer trainer(WithMerges(1));
  EXPECT_TRUE(HasText(ErrorOf([&] { trainer.Train(); }), "no text to train on"));
  EXPECT_TRUE(HasText(ErrorOf([&] { trainer.AddFile("/nonexistent/corpus.txt"); }),
                      "/nonexistent/corpus.txt: cannot open: No such file or directory"));

  test::ScopedTempDir dir;
  test::WriteFileBytes(dir.File("bad.txt"), "fine\nbad \xFF byte\n");
  EXPECT_TRUE(HasText(ErrorOf([&] { trainer.AddFile(dir.File("bad.txt")); }), "bad.txt:2: not valid UTF-8 (byte 4 of 11)"));
}

}  // namespace
}  // namespace promptsweep
