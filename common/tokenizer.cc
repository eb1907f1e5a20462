// Tokenizer: tokenizer.json loading and the encode/decode pipeline. Each
// component lives in its own tokenizer_<part> module; this file wires them in
// the order the tokenizers library runs them:
//   added tokens (tokenizer_added_vocabulary) -> pre_tokenizer
//   (tokenizer_pre_tokenizer, on tokenizer_regex) -> BPE (tokenizer_bpe) ->
//   post_processor (tokenizer_post_processor); decoding: tokenizer_decoder.
#include "common/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"
#include "common/tokenizer_added_vocabulary.h"
#include "common/tokenizer_bpe.h"
#include "common/tokenizer_decoder.h"
#include "common/tokenizer_post_processor.h"
#include "common/tokenizer_pre_tokenizer.h"
#include "common/tokenizer_utf8.h"

namespace promptsweep {
namespace {

using namespace tokenizer_internal;

// No normalizer is supported, so there is no normalizer module: this check is
// all there is to it.
void CheckNoNormalizer(const JsonNode& normalizer) {
  if (normalizer.IsNull()) return;
  const nlohmann::json& value = normalizer.json();
  const std::string type = value.is_object() && value.contains("type") ? JsonQuoted(normalizer.Object().String("type"))
                                                                        : value.dump();
  normalizer.Fail(StrCat("unsupported normalizer ", type, " (only null is supported)"));
}

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  ByteLevelBpeTokenizer(const nlohmann::json& json, const std::string& where) : source_(where) {
    const JsonNode root(json, where);
    root.Object();  // throws unless an object
    CheckNoNormalizer(root.Child("normalizer"));
    pre_tokenizer_ = std::make_unique<PreTokenizer>(root.Child("pre_tokenizer"));
    model_ = std::make_unique<BpeModel>(root.Child("model"));
    added_.Load(root.Child("added_tokens"), *model_);
    post_processor_ = std::make_unique<PostProcessor>(
        root.Child("post_processor"), [this](int32_t id) { return TokenString(id) != nullptr; });
    decoder_ = std::make_unique<Decoder>(root.Child("decoder"));
  }

  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens) const override {
    if (const size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
      throw Error(StrCat(source_, ": cannot encode: the text is not valid UTF-8 (byte ", bad, " of ", text.size(), ")"));
    }
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    PreTokenizeScratch scratch;
    Pieces pieces;
    added_.Extract(text, [&](std::string_view part, int32_t id) {
      if (id >= 0) {
        ids.push_back(id);
        return;
      }
      pre_tokenizer_->Apply(part, &scratch, &pieces);
      for (const std::string_view piece : pieces) model_->Tokenize(piece, &ids);
      scratch.owned.clear();
    });
    return add_special_tokens ? post_processor_->Apply(std::move(ids)) : ids;
  }

  std::string Decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override {
    std::vector<std::string_view> tokens;
    tokens.reserve(ids.size());
    for (const int32_t id : ids) {
      const std::string* token = TokenString(id);
      if (token == nullptr) throw Error(StrCat(source_, ": cannot decode id ", id, ": not in the vocabulary"));
      if (skip_special_tokens && added_.IsSpecialContent(*token)) continue;
      tokens.push_back(*token);
    }
    return decoder_->Decode(tokens);
  }

  int64_t VocabSize() const override { return std::max(model_->MaxIdPlusOne(), added_.MaxIdPlusOne()); }

  std::optional<int32_t> TokenToId(std::string_view token) const override {
    if (const auto id = added_.IdOf(token)) return id;
    return model_->TokenToId(token);
  }

  std::string IdToToken(int32_t id) const override {
    const std::string* token = TokenString(id);
    if (token == nullptr) throw Error(StrCat(source_, ": id ", id, " is not in the vocabulary"));
    return *token;
  }

  bool IsSpecial(int32_t id) const override {
    const std::string* token = TokenString(id);
    return token != nullptr && added_.IsSpecialContent(*token);
  }

 private:
  // Added tokens take precedence, as AddedVocabulary::id_to_token.
  const std::string* TokenString(int32_t id) const {
    if (const AddedToken* added = added_.ById(id)) return &added->content;
    return model_->IdToToken(id);
  }

  std::string source_;  // names the file in errors
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  AddedVocabulary added_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
};

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::FromFile(const std::string& path) {
  std::error_code error;
  const std::string file =
      std::filesystem::is_directory(path, error) ? (std::filesystem::path(path) / "tokenizer.json").string() : path;
  return FromJson(ReadJsonFile(file), file);
}

std::unique_ptr<Tokenizer> Tokenizer::FromJson(const nlohmann::json& json, const std::string& where) {
  return std::make_unique<ByteLevelBpeTokenizer>(json, where);
}

std::string ByteLevelChars(std::string_view bytes) { return ByteAlphabet::Get().Encode(bytes); }

}  // namespace promptsweep
