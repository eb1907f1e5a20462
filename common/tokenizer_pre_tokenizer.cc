#include "common/tokenizer_pre_tokenizer.h"

#include <algorithm>

#include "common/error.h"
#include "common/tokenizer.h"
#include "common/tokenizer_regex.h"
#include "common/tokenizer_utf8.h"

// Behaviour references are the huggingface/tokenizers sources: Split
// behaviours (tokenizer/normalizer.rs split), ByteLevel
// (pre_tokenizers/byte_level.rs) and the onig crate's find_iter.

namespace promptsweep {
namespace tokenizer_internal {
namespace {

SplitBehavior ParseBehavior(const JsonNode& node) {
  const std::string name = node.String();
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  node.Fail(StrCat("unknown behavior ", JsonQuoted(name),
                   " (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)"));
}

}  // namespace

void SplitByMatches(std::string_view piece, const Regex& regex, bool invert, SplitBehavior behavior,
                    PreTokenizeScratch* scratch, Pieces* out) {
  auto& ranges = scratch->ranges;
  auto& is_match = scratch->flags;
  ranges.clear();
  is_match.clear();
  size_t prev = 0;
  regex.ForEachMatch(piece, [&](size_t start, size_t end) {
    if (prev != start) {
      ranges.emplace_back(prev, start);
      is_match.push_back(invert);
    }
    ranges.emplace_back(start, end);
    is_match.push_back(!invert);
    prev = end;
  });
  if (prev != piece.size()) {
    ranges.emplace_back(prev, piece.size());
    is_match.push_back(invert);
  }

  // Each behaviour maps the cover to (range, remove) pairs.
  std::vector<std::pair<std::pair<size_t, size_t>, bool>> splits;
  splits.reserve(ranges.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const auto& range : ranges) splits.push_back({range, false});
      break;
    case SplitBehavior::kRemoved:
      for (size_t k = 0; k < ranges.size(); ++k) splits.push_back({ranges[k], is_match[k]});
      break;
    case SplitBehavior::kContiguous:
    case SplitBehavior::kMergedWithPrevious:
      // Contiguous joins runs of equal kind; MergedWithPrevious joins a match
      // onto the piece before it.
      for (size_t k = 0; k < ranges.size(); ++k) {
        const bool join = behavior == SplitBehavior::kContiguous ? is_match[k] == previous_match
                                                                 : is_match[k] && !previous_match;
        if (join && !splits.empty()) {
          splits.back().first.second = ranges[k].second;
        } else {
          splits.push_back({ranges[k], false});
        }
        previous_match = is_match[k];
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (size_t k = ranges.size(); k-- > 0;) {
        if (is_match[k] && !previous_match && !splits.empty()) {
          splits.back().first.first = ranges[k].first;
        } else {
          splits.push_back({ranges[k], false});
        }
        previous_match = is_match[k];
      }
      std::reverse(splits.begin(), splits.end());
      break;
  }
  for (const auto& [range, remove] : splits) {
    if (!remove && range.second > range.first) out->push_back(piece.substr(range.first, range.second - range.first));
  }
}

namespace {

// Split: a regex or literal pattern with a delimiter behaviour.
class SplitStep final : public PreTokenizerStep {
 public:
  explicit SplitStep(const JsonNode& node) {
    const JsonObject fields = node.Object();
    const JsonNode pattern = node.Child("pattern");
    const JsonObject pattern_fields = pattern.Object();
    if (pattern_fields.Has("Regex") == pattern_fields.Has("String")) {
      pattern.Fail("expected exactly one of {\"Regex\": ...} or {\"String\": ...}");
    }
    if (pattern_fields.Has("Regex")) {
      const JsonNode regex = pattern.Child("Regex");
      regex_ = std::make_unique<Regex>(regex.String(), RegexSyntax::kOniguruma, regex.Where());
    } else {
      const JsonNode literal = pattern.Child("String");
      regex_ = std::make_unique<Regex>(literal.String(), RegexSyntax::kLiteral, literal.Where());
    }
    behavior_ = ParseBehavior(node.Child("behavior"));
    invert_ = fields.Bool("invert", false);
  }

  void Apply(std::string_view piece, PreTokenizeScratch* scratch, Pieces* out) const override {
    SplitByMatches(piece, *regex_, invert_, behavior_, scratch, out);
  }

 private:
  std::unique_ptr<Regex> regex_;
  SplitBehavior behavior_ = SplitBehavior::kIsolated;
  bool invert_ = false;
};

// Digits: numeric characters (char::is_numeric = \p{N}) isolated one by one
// or as runs.
class DigitsStep final : public PreTokenizerStep {
 public:
  explicit DigitsStep(const JsonNode& node)
      : numeric_("\\p{N}", RegexSyntax::kOniguruma, node.Where()),
        individual_(node.Object().Bool("individual_digits", false)) {}

  void Apply(std::string_view piece, PreTokenizeScratch* scratch, Pieces* out) const override {
    SplitByMatches(piece, numeric_, /*invert=*/false,
                   individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, scratch, out);
  }

 private:
  Regex numeric_;
  bool individual_;
};

constexpr char kGpt2Pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

}  // namespace

ByteLevelStep::ByteLevelStep(const JsonNode& node) {
  const JsonObject fields = node.Object();
  add_prefix_space_ = fields.Bool("add_prefix_space", true);
  if (fields.Bool("use_regex", true)) {
    regex_ = std::make_unique<Regex>(kGpt2Pattern, RegexSyntax::kOniguruma, node.Where());
  }
}

ByteLevelStep::~ByteLevelStep() = default;

void ByteLevelStep::Apply(std::string_view piece, PreTokenizeScratch* scratch, Pieces* out) const {
  // Applies to every piece, not only the first (tokenizers does the same).
  if (add_prefix_space_ && piece.front() != ' ') {
    piece = scratch->owned.emplace_back(StrCat(" ", piece));
  }
  if (regex_ == nullptr) {
    out->push_back(piece);
    return;
  }
  // Isolated keeps the whole cover, so the pieces are just the cut points.
  size_t prev = 0;
  regex_->ForEachMatch(piece, [&](size_t start, size_t end) {
    if (prev != start) out->push_back(piece.substr(prev, start - prev));
    if (end > start) out->push_back(piece.substr(start, end - start));
    prev = end;
  });
  if (prev != piece.size()) out->push_back(piece.substr(prev));
}

PreTokenizer::PreTokenizer(const JsonNode& node) {
  if (node.IsNull()) node.Fail("missing; a ByteLevel pre-tokenizer is required");
  bool byte_level_seen = false;
  AddSteps(node, &byte_level_seen);
  if (!byte_level_seen) node.Fail("no ByteLevel pre-tokenizer (only byte-level BPE is supported)");
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::AddSteps(const JsonNode& node, bool* byte_level_seen) {
  const std::string type = node.Object().String("type");
  if (*byte_level_seen) {
    node.Fail(StrCat(type, " after ByteLevel is not supported (ByteLevel must be the last pre-tokenizer)"));
  }
  if (type == "Sequence") {
    const JsonNode list = node.Child("pretokenizers");
    for (size_t i = 0; i < list.Array().size(); ++i) AddSteps(list.At(i), byte_level_seen);
  } else if (type == "ByteLevel") {
    steps_.push_back(std::make_unique<ByteLevelStep>(node));
    *byte_level_seen = true;
  } else if (type == "Split") {
    steps_.push_back(std::make_unique<SplitStep>(node));
  } else if (type == "Digits") {
    steps_.push_back(std::make_unique<DigitsStep>(node));
  } else {
    node.Fail(StrCat("unsupported type ", JsonQuoted(type), " (supported: ByteLevel, Split, Digits, Sequence)"));
  }
}

void PreTokenizer::Apply(std::string_view text, PreTokenizeScratch* scratch, Pieces* out) const {
  out->assign(1, text);
  Pieces& next = scratch->next_pieces;
  for (const auto& step : steps_) {
    next.clear();
    for (const std::string_view piece : *out) step->Apply(piece, scratch, &next);
    out->swap(next);
  }
}

}  // namespace tokenizer_internal

void ForEachByteLevelPiece(std::string_view text, const std::function<void(std::string_view piece)>& on_piece) {
  using namespace tokenizer_internal;
  if (const size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
    throw Error(StrCat("not valid UTF-8 (byte ", bad, " of ", text.size(), ")"));
  }
  static const nlohmann::json kConfig = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  static const ByteLevelStep kStep(JsonNode(kConfig, "GPT-2 ByteLevel pre-tokenizer"));
  PreTokenizeScratch scratch;
  Pieces pieces;
  kStep.Apply(text, &scratch, &pieces);
  for (const std::string_view piece : pieces) on_piece(piece);
}

}  // namespace promptsweep
