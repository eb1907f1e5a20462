// The post_processor of tokenizer.json: special tokens added around the ids
// when Encode is asked to (add_special_tokens). Supports TemplateProcessing's
// single template, ByteLevel (which only trims offsets, so does nothing here)
// and Sequence.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/json_util.h"

namespace promptsweep {
namespace tokenizer_internal {

// Immutable after construction; thread-safe.
class PostProcessor {
 public:
  // `node` may be null (no post-processing). `id_exists` says whether a
  // template's special-token id is in the vocabulary; errors name the JSON path.
  PostProcessor(const JsonNode& node, const std::function<bool(int32_t)>& id_exists);

  // `ids` with every template applied, in order.
  std::vector<int32_t> Apply(std::vector<int32_t> ids) const;

 private:
  // One TemplateProcessing "single" template: special-token ids around $A.
  struct Template {
    struct Piece {
      bool is_sequence = false;
      std::vector<int32_t> ids;  // for a special token
    };
    std::vector<Piece> pieces;
  };

  void Add(const JsonNode& node, const std::function<bool(int32_t)>& id_exists);
  static Template LoadTemplate(const JsonNode& node, const std::function<bool(int32_t)>& id_exists);

  std::vector<Template> templates_;
};

}  // namespace tokenizer_internal
}  // namespace promptsweep
