#include "common/tokenizer_utf8.h"

namespace promptsweep {
namespace tokenizer_internal {

size_t WellFormedLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  const size_t left = s.size() - i;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && IsUtf8Continuation(byte(i + 1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3) return 0;
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return byte(i + 1) >= lo && byte(i + 1) <= hi && IsUtf8Continuation(byte(i + 2)) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4) return 0;
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return byte(i + 1) >= lo && byte(i + 1) <= hi && IsUtf8Continuation(byte(i + 2)) &&
                   IsUtf8Continuation(byte(i + 3))
               ? 4
               : 0;
  }
  return 0;
}

size_t FirstInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = WellFormedLength(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string LossyUtf8(std::string_view s) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = WellFormedLength(s, i);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    // Length of the maximal prefix of a well-formed sequence starting here.
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t prefix = 1;
    size_t want = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      want = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      want = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      want = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    if (want > 0 && i + 1 < s.size()) {
      const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if (c1 >= lo && c1 <= hi) {
        prefix = 2;
        while (prefix < want && i + prefix < s.size() && IsUtf8Continuation(static_cast<unsigned char>(s[i + prefix]))) {
          ++prefix;
        }
      }
    }
    out.append(kReplacement);
    i += prefix;
  }
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

const ByteAlphabet& ByteAlphabet::Get() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

ByteAlphabet::ByteAlphabet() {
  char_to_byte_.fill(-1);
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
    AppendUtf8(cp, &byte_to_char_[b]);
    char_to_byte_[cp] = static_cast<int16_t>(b);
  }
}

std::string ByteAlphabet::Encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) out += byte_to_char_[static_cast<unsigned char>(c)];
  return out;
}

bool ByteAlphabet::Decode(std::string_view chars, std::string* out) const {
  const size_t start = out->size();
  size_t i = 0;
  while (i < chars.size()) {
    const unsigned char c = static_cast<unsigned char>(chars[i]);
    uint32_t cp = 0;
    size_t n = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < chars.size()) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(chars[i + 1]) & 0x3Fu);
      n = 2;
    } else {
      cp = 0xFFFF;  // outside the alphabet (all of it is below U+0144)
    }
    if (cp >= char_to_byte_.size() || char_to_byte_[cp] < 0) {
      out->resize(start);
      return false;
    }
    out->push_back(static_cast<char>(char_to_byte_[cp]));
    i += n;
  }
  return true;
}

}  // namespace tokenizer_internal
}  // namespace promptsweep
