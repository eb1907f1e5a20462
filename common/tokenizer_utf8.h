// UTF-8 scanning and the GPT-2 byte alphabet, shared by every tokenizer part.
// Pure functions over bytes; thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace promptsweep {
namespace tokenizer_internal {

inline bool IsUtf8Continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence at `s[i]`, or 0 if there is none.
// Follows the Unicode table of well-formed byte sequences (no overlongs,
// surrogates or code points above U+10FFFF).
size_t WellFormedLength(std::string_view s, size_t i);

// Offset of the first byte that is not part of well-formed UTF-8, or npos.
size_t FirstInvalidUtf8(std::string_view s);

// Rust's String::from_utf8_lossy: each maximal prefix of an ill-formed
// sequence becomes one U+FFFD (the tokenizers ByteLevel decoder uses it).
std::string LossyUtf8(std::string_view s);

// Length of the UTF-8 character starting at s[i]; `s` must be valid UTF-8.
inline size_t CharLength(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  return n < s.size() - i ? n : s.size() - i;
}

// Start of the character that ends right before offset `end` (> 0).
inline size_t PreviousCharStart(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && IsUtf8Continuation(static_cast<unsigned char>(s[i]))) --i;
  return i;
}

// Appends code point `cp` (below U+10000) as UTF-8.
void AppendUtf8(uint32_t cp, std::string* out);

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the
// other 68 bytes to U+0100.. in byte order (space -> 'Ġ' U+0120, newline -> 'Ċ').
class ByteAlphabet {
 public:
  static const ByteAlphabet& Get();

  // The character (as UTF-8) standing for `byte`.
  const std::string& CharOf(unsigned char byte) const { return byte_to_char_[byte]; }
  // `bytes` mapped character by character ("\x20the" -> "Ġthe").
  std::string Encode(std::string_view bytes) const;
  // The inverse of Encode: appends the bytes of `chars` and returns true, or
  // returns false (appending nothing) if a character is outside the alphabet.
  bool Decode(std::string_view chars, std::string* out) const;

 private:
  ByteAlphabet();

  std::array<std::string, 256> byte_to_char_;
  std::array<int16_t, 324> char_to_byte_;  // code points 0..0x143; -1 = none
};

}  // namespace tokenizer_internal
}  // namespace promptsweep
