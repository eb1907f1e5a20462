#include "common/tokenizer_decoder.h"

#include "common/error.h"
#include "common/tokenizer_utf8.h"

// Behaviour reference: huggingface/tokenizers pre_tokenizers/byte_level.rs
// (decode_chain) and Rust's String::from_utf8_lossy.

namespace promptsweep {
namespace tokenizer_internal {

Decoder::Decoder(const JsonNode& node) {
  if (node.IsNull()) node.Fail("missing; a ByteLevel decoder is required");
  if (const std::string type = node.Object().String("type"); type != "ByteLevel") {
    node.Fail(StrCat("unsupported type ", JsonQuoted(type), " (supported: ByteLevel)"));
  }
}

std::string Decoder::Decode(const std::vector<std::string_view>& tokens) const {
  const ByteAlphabet& alphabet = ByteAlphabet::Get();
  std::string bytes;
  for (const std::string_view token : tokens) {
    if (!alphabet.Decode(token, &bytes)) bytes.append(token);
  }
  return LossyUtf8(bytes);
}

}  // namespace tokenizer_internal
}  // namespace promptsweep
