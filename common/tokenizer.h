// Hugging Face `tokenizer.json` byte-level BPE tokenizer (GPT-2, Llama 3,
// SmolLM2 families). Produces exactly the ids the `tokenizers` library does
// for the supported components:
//   normalizer: null
//   pre_tokenizer: ByteLevel, Split (Regex/String), Digits, Sequence; the
//     ByteLevel step must come last (as in every byte-level model we know)
//   model: BPE (merges as "a b" or ["a","b"], ignore_merges), byte_fallback off
//   added_tokens: matched in the text before pre-tokenization (lstrip/rstrip/single_word)
//   post_processor: ByteLevel, TemplateProcessing, Sequence
//   decoder: ByteLevel
// Anything else is rejected at load with an error naming the component.
//
// Split regexes are written for Oniguruma (what `tokenizers` uses); they run on
// PCRE2 here after a small translation (`\s` gets Oniguruma's meaning, `{,n}`
// becomes `{0,n}`); constructs whose meaning differs between the two engines
// (`\w`, `\b`, `\h`, `(?m)`, nested classes, ...) are rejected, not guessed.
// `truncation` and `padding` are ignored, as transformers does (it resets them
// on every call).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace promptsweep {

// A loaded tokenizer. Immutable after loading; every method is thread-safe
// (Encode keeps a bounded, internally locked cache of pre-token -> ids).
class Tokenizer {
 public:
  // Loads a tokenizer.json file (or a model directory holding one).
  static std::unique_ptr<Tokenizer> FromFile(const std::string& path);
  // `where` names the source in errors.
  static std::unique_ptr<Tokenizer> FromJson(const nlohmann::json& json, const std::string& where);

  virtual ~Tokenizer() = default;

  // Token ids of `text` (UTF-8). With add_special_tokens the post-processor's
  // template applies (e.g. Llama 3's BOS). Thread-safe. Throws Error if `text`
  // is not valid UTF-8 (the tokenizers library only accepts valid strings, so
  // there is no reference behaviour to copy; the message gives the offset).
  virtual std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens = true) const = 0;

  // Text of `ids`; invalid UTF-8 from partial byte tokens becomes U+FFFD, as in
  // the tokenizers library. Throws Error for an id outside the vocabulary.
  virtual std::string Decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const = 0;

  // Number of ids: max id + 1 over the model vocabulary and added tokens.
  virtual int64_t VocabSize() const = 0;
  virtual std::optional<int32_t> TokenToId(std::string_view token) const = 0;
  // Token string as stored in the vocabulary ("Ġthe"); throws for unknown ids.
  virtual std::string IdToToken(int32_t id) const = 0;
  virtual bool IsSpecial(int32_t id) const = 0;
};

// GPT-2's ByteLevel pre-tokenizer (use_regex=true, add_prefix_space=false), the
// same code Encode runs: calls on_piece with the raw bytes of each piece of
// `text`, in order. Throws Error if `text` is not valid UTF-8 (the message gives
// the byte offset). For BpeTrainer, which counts these pieces. Thread-safe.
void ForEachByteLevelPiece(std::string_view text, const std::function<void(std::string_view piece)>& on_piece);

// The GPT-2 byte -> character mapping applied to `bytes` ("\x20the" -> "Ġthe").
std::string ByteLevelChars(std::string_view bytes);

}  // namespace promptsweep
