// Fuzzes the tokenizer.json reader: any bytes, read as a tokenizer.json, must
// either load or fail with promptsweep::Error - never crash, hang or throw
// anything else. A file that loads is also used once, so the pipeline it
// describes (regexes, added tokens, merges, templates) runs on real text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/json_util.h"
#include "common/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<promptsweep::Tokenizer> tokenizer;
  try {
    tokenizer = promptsweep::Tokenizer::FromJson(promptsweep::ParseJson(bytes, "fuzz"), "fuzz");
  } catch (const promptsweep::Error&) {
    return 0;  // rejected with a message: fine
  }
  for (const char* text : {"", "Hello world, it's 2024!\n\n  <|endoftext|>", "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC 123"}) {
    try {
      const auto ids = tokenizer->Encode(text, /*add_special_tokens=*/true);
      tokenizer->Decode(ids, /*skip_special_tokens=*/true);
      tokenizer->Decode(ids);
    } catch (const promptsweep::Error&) {
      // e.g. a user regex that hits PCRE2's match limit
    }
  }
  return 0;
}
