// The pre_tokenizer of tokenizer.json: cuts text (between added tokens) into
// the pieces the BPE model encodes one by one. Supports ByteLevel, Split
// (Regex/String), Digits and Sequence, with ByteLevel last.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json_util.h"

namespace promptsweep {
namespace tokenizer_internal {

class Regex;

using Pieces = std::vector<std::string_view>;

// Per-call working memory: strings a step creates (ByteLevel's prefix space)
// live in `owned` until the caller clears it, so pieces may point into them.
struct PreTokenizeScratch {
  std::deque<std::string> owned;
  std::vector<std::pair<size_t, size_t>> ranges;
  std::vector<bool> flags;
  std::vector<std::string_view> next_pieces;
};

// One step of the pipeline: splits each piece into sub-pieces.
class PreTokenizerStep {
 public:
  virtual ~PreTokenizerStep() = default;
  // Appends the sub-pieces of `piece` to `out`.
  virtual void Apply(std::string_view piece, PreTokenizeScratch* scratch, Pieces* out) const = 0;
};

// The `behavior` of tokenizers' Split (SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// NormalizedString::split: cuts `piece` at the matches of `regex` (or, with
// `invert`, at what lies between them) and groups the cover per `behavior`;
// empty pieces are dropped as PreTokenizedString::split does.
void SplitByMatches(std::string_view piece, const Regex& regex, bool invert, SplitBehavior behavior,
                    PreTokenizeScratch* scratch, Pieces* out);

// ByteLevel: optional prefix space and the GPT-2 regex. The byte -> character
// mapping itself is folded into the BPE model, which works on raw bytes.
class ByteLevelStep final : public PreTokenizerStep {
 public:
  explicit ByteLevelStep(const JsonNode& node);
  ~ByteLevelStep() override;
  void Apply(std::string_view piece, PreTokenizeScratch* scratch, Pieces* out) const override;

 private:
  bool add_prefix_space_ = true;
  std::unique_ptr<Regex> regex_;  // null with use_regex false
};

// The whole pre_tokenizer, every step in order. Immutable; thread-safe.
class PreTokenizer {
 public:
  // Throws Error naming the JSON path for unsupported or malformed steps, or
  // when there is no ByteLevel step or a step follows it.
  explicit PreTokenizer(const JsonNode& node);
  ~PreTokenizer();

  // The pieces of `text`, in order, in `out` (which is overwritten). They may
  // point into `text` and into `scratch->owned`.
  void Apply(std::string_view text, PreTokenizeScratch* scratch, Pieces* out) const;

 private:
  void AddSteps(const JsonNode& node, bool* byte_level_seen);

  std::vector<std::unique_ptr<PreTokenizerStep>> steps_;
};

}  // namespace tokenizer_internal
}  // namespace promptsweep
