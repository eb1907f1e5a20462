// The decoder of tokenizer.json: tokens back to text. ByteLevel only.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/json_util.h"

namespace promptsweep {
namespace tokenizer_internal {

// tokenizers' ByteLevel decoder. Immutable; thread-safe.
class Decoder {
 public:
  // Throws Error naming the JSON path unless `node` is a ByteLevel decoder.
  explicit Decoder(const JsonNode& node);

  // The text of `tokens` (vocabulary strings such as "Ġthe"): each token's
  // bytes through the GPT-2 alphabet, or the token itself if a character is
  // outside it (added tokens such as "<|eot_id|>"); invalid UTF-8 from partial
  // byte tokens becomes U+FFFD.
  std::string Decode(const std::vector<std::string_view>& tokens) const;
};

}  // namespace tokenizer_internal
}  // namespace promptsweep
