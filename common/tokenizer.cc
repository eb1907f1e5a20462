#include "common/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <queue>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"

// Behaviour references are the huggingface/tokenizers sources: BPE merging
// (models/bpe/word.rs merge_all), added tokens (tokenizer/added_vocabulary.rs
// find_matches), Split behaviours (tokenizer/normalizer.rs split), ByteLevel
// (pre_tokenizers/byte_level.rs), and the onig crate's find_iter.

namespace promptsweep {
namespace {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------
// UTF-8
// ---------------------------------------------------------------------------

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence at `s[i]`, or 0 if there is none.
// Follows the Unicode table of well-formed byte sequences (no overlongs,
// surrogates or code points above U+10FFFF).
size_t WellFormedLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  const size_t left = s.size() - i;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && IsContinuation(byte(i + 1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3) return 0;
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return byte(i + 1) >= lo && byte(i + 1) <= hi && IsContinuation(byte(i + 2)) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4) return 0;
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return byte(i + 1) >= lo && byte(i + 1) <= hi && IsContinuation(byte(i + 2)) &&
                   IsContinuation(byte(i + 3))
               ? 4
               : 0;
  }
  return 0;
}

// Offset of the first byte that is not part of well-formed UTF-8, or npos.
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

// Rust's String::from_utf8_lossy: each maximal prefix of an ill-formed
// sequence becomes one U+FFFD (the tokenizers ByteLevel decoder uses it).
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
        while (prefix < want && i + prefix < s.size() && IsContinuation(s[i + prefix])) ++prefix;
      }
    }
    out.append(kReplacement);
    i += prefix;
  }
  return out;
}

// Length of the UTF-8 character starting at s[i] (input already validated).
size_t CharLength(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  return std::min(n, s.size() - i);
}

// Start of the character that ends right before offset `end` (> 0).
size_t PreviousCharStart(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && IsContinuation(s[i])) --i;
  return i;
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

std::string Quoted(std::string_view s) { return Json(std::string(s)).dump(); }

// ---------------------------------------------------------------------------
// JSON locations: every user-facing error names the file and the JSON path.
// ---------------------------------------------------------------------------

class Node {
 public:
  Node(const Json& value, const std::string& file, std::string path)
      : value_(&value), file_(&file), path_(std::move(path)) {}

  const Json& value() const { return *value_; }
  bool IsNull() const { return value_->is_null(); }
  std::string Where() const { return path_.empty() ? *file_ : StrCat(*file_, ": ", path_); }
  [[noreturn]] void Fail(const std::string& message) const { throw Error(StrCat(Where(), ": ", message)); }

  // Typed field access with the shared json_util error messages.
  JsonObject Object() const { return JsonObject(*value_, Where()); }

  // value[key]; a missing key reads as null.
  Node Child(const std::string& key) const {
    static const Json kNull;
    Object();  // throws unless an object
    const auto it = value_->find(key);
    return Node(it == value_->end() ? kNull : *it, *file_, path_.empty() ? key : StrCat(path_, ".", key));
  }
  Node At(size_t index) const { return Node((*value_)[index], *file_, StrCat(path_, "[", index, "]")); }

  const Json& Array() const {
    if (!value_->is_array()) Fail(StrCat("expected an array, found ", value_->type_name()));
    return *value_;
  }
  std::string String() const {
    if (!value_->is_string()) Fail(StrCat("expected a string, found ", value_->type_name()));
    return value_->get<std::string>();
  }
  std::string Type() const { return Object().String("type"); }

 private:
  const Json* value_;
  const std::string* file_;
  std::string path_;
};

// ---------------------------------------------------------------------------
// PCRE2 regexes
// ---------------------------------------------------------------------------

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};

// Per-thread match data and JIT stack: PCRE2 needs scratch space per match,
// and Encode runs concurrently.
struct MatchScratch {
  MatchScratch()
      : match_data(pcre2_match_data_create(1, nullptr)),
        context(pcre2_match_context_create(nullptr)),
        jit_stack(pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr)) {
    PS_CHECK(match_data != nullptr && context != nullptr, "out of memory");
    if (jit_stack != nullptr) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchScratch() {
    pcre2_match_data_free(match_data);
    pcre2_match_context_free(context);
    if (jit_stack != nullptr) pcre2_jit_stack_free(jit_stack);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;

  pcre2_match_data* match_data;
  pcre2_match_context* context;
  pcre2_jit_stack* jit_stack;
};

MatchScratch& ThreadMatchScratch() {
  thread_local MatchScratch scratch;
  return scratch;
}

std::string Pcre2Message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof(buffer)) < 0) return StrCat("PCRE2 error ", code);
  return reinterpret_cast<const char*>(buffer);
}

// A compiled PCRE2 pattern (UTF + UCP, JIT when available).
class Regex {
 public:
  // `pattern` is PCRE2 syntax; compile errors are reported at `where`.
  Regex(const std::string& pattern, uint32_t options, const Node& where) {
    pcre2_compile_context* context = pcre2_compile_context_create(nullptr);
    PS_CHECK(context != nullptr, "out of memory");
    pcre2_set_newline(context, PCRE2_NEWLINE_LF);
    int error = 0;
    PCRE2_SIZE offset = 0;
    // PCRE2_LITERAL refuses PCRE2_UCP (a literal has no classes to widen).
    const uint32_t unicode = (options & PCRE2_LITERAL) != 0 ? PCRE2_UTF : PCRE2_UTF | PCRE2_UCP;
    code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options | unicode,
                              &error, &offset, context));
    pcre2_compile_context_free(context);
    if (code_ == nullptr) {
      where.Fail(StrCat("invalid regex ", Quoted(pattern), " at offset ", offset, ": ", Pcre2Message(error)));
    }
    jit_ = pcre2_jit_compile(code_.get(), PCRE2_JIT_COMPLETE) == 0;
  }

  // Next match at or after `from`: true and [*start, *end), or false.
  bool Search(std::string_view text, size_t from, uint32_t flags, size_t* start, size_t* end) const {
    MatchScratch& scratch = ThreadMatchScratch();
    // PCRE2 wants a non-null subject even when it is empty.
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.empty() ? "" : text.data());
    const int rc = jit_ && flags == 0
                       ? pcre2_jit_match(code_.get(), subject, text.size(), from, 0, scratch.match_data,
                                         scratch.context)
                       : pcre2_match(code_.get(), subject, text.size(), from, flags | PCRE2_NO_UTF_CHECK,
                                     scratch.match_data, scratch.context);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    // rc == 0 only means captures did not fit the 1-pair ovector.
    if (rc < 0) throw Error(StrCat("regex match failed: ", Pcre2Message(rc)));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.match_data);
    PS_CHECK(ovector[0] <= ovector[1] && ovector[1] <= text.size(), "PCRE2 returned a bad match");
    *start = ovector[0];
    *end = ovector[1];
    return true;
  }

  // Calls on_match(start, end) for every match, iterating like the onig
  // crate's find_iter (used by tokenizers): an empty match that ends where the
  // previous match ended is skipped by stepping one character.
  template <typename OnMatch>
  void ForEachMatch(std::string_view text, OnMatch&& on_match) const {
    size_t last_end = 0;
    bool have_last = false;
    size_t last_match_end = 0;
    size_t start = 0;
    size_t end = 0;
    while (last_end <= text.size() && Search(text, last_end, 0, &start, &end)) {
      if (start == end && have_last && last_match_end == end) {
        last_end += last_end < text.size() ? CharLength(text, last_end) : 1;
        continue;
      }
      last_end = end;
      last_match_end = end;
      have_last = true;
      on_match(start, end);
    }
  }

  // Whether the pattern matches at exactly `offset`.
  bool MatchesAt(std::string_view text, size_t offset) const {
    size_t start = 0;
    size_t end = 0;
    return Search(text, offset, PCRE2_ANCHORED, &start, &end);
  }

 private:
  std::unique_ptr<pcre2_code, CodeDeleter> code_;
  bool jit_ = false;
};

// Oniguruma's Unicode \s: U+0009..U+000D, U+0085 and General_Category Z.
// (PCRE2's \s also takes U+180E.)
constexpr char kOnigSpaceClassBody[] = "\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}";

// Rewrites a tokenizers regex (Oniguruma, Ruby syntax) into PCRE2 syntax with
// the same meaning, rejecting constructs whose meaning differs between the
// engines instead of silently changing the tokenization.
std::string OnigToPcre2(std::string_view p, const Node& where) {
  std::string out;
  out.reserve(p.size() + 32);
  bool in_class = false;
  size_t i = 0;
  const auto unsupported = [&](const std::string& what) {
    where.Fail(StrCat("regex ", Quoted(p), ": ", what, " at offset ", i,
                      " is not supported (Oniguruma, which tokenizers uses, and PCRE2 disagree on it)"));
  };
  const auto is_digit = [&](size_t k) { return k < p.size() && p[k] >= '0' && p[k] <= '9'; };
  const auto is_hex = [](char h) { return std::isxdigit(static_cast<unsigned char>(h)) != 0; };
  while (i < p.size()) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      switch (e) {
        case 's':
          out += in_class ? StrCat(kOnigSpaceClassBody) : StrCat("[", kOnigSpaceClassBody, "]");
          i += 2;
          continue;
        case 'S':
          if (in_class) unsupported("\\S inside [...]");
          out += StrCat("[^", kOnigSpaceClassBody, "]");
          i += 2;
          continue;
        case 'w':
        case 'W':
        case 'b':
        case 'B':
        case 'h':
        case 'H':
        case 'g':
        case 'R':
        case 'X':
        case 'K':
        case 'O':
          unsupported(StrCat("\\", e));
          break;
        case 'u': {
          // \uHHHH (Oniguruma) is \x{HHHH} in PCRE2.
          if (i + 6 > p.size() || !std::all_of(p.begin() + i + 2, p.begin() + i + 6, is_hex)) {
            unsupported("\\u without 4 hex digits");
          }
          out += StrCat("\\x{", p.substr(i + 2, 4), "}");
          i += 6;
          continue;
        }
        case 'x':
          // Oniguruma's \xHH is a byte of the UTF-8 encoding, PCRE2's a code
          // point: they agree below 0x80 only. (\x{...} is a code point in both.)
          if (i + 2 < p.size() && p[i + 2] != '{') {
            size_t k = i + 2;
            int value = 0;
            while (k < p.size() && k < i + 4 && is_hex(p[k])) {
              const char h = static_cast<char>(std::tolower(static_cast<unsigned char>(p[k++])));
              value = value * 16 + (h <= '9' ? h - '0' : h - 'a' + 10);
            }
            if (value >= 0x80) unsupported("\\x with a byte value above 0x7F (use \\x{...})");
          }
          [[fallthrough]];
        default:
          if (e >= '2' && e <= '3' && i + 3 < p.size() && p[i + 2] >= '0' && p[i + 2] <= '7' && p[i + 3] >= '0' &&
              p[i + 3] <= '7') {
            unsupported("an octal escape above 0x7F");  // a byte in Oniguruma, a code point in PCRE2
          }
          out += c;
          out += e;
          i += 2;
          // \x{..}, \p{..}, \k<..> etc. carry braces that are no quantifier.
          if (i < p.size() && p[i] == '{' && std::string_view("xpPo").find(e) != std::string_view::npos) {
            const size_t close = p.find('}', i);
            const size_t stop = close == std::string_view::npos ? p.size() : close + 1;
            out += p.substr(i, stop - i);
            i = stop;
          }
          continue;
      }
    }
    if (in_class) {
      if (c == '[') unsupported(i + 1 < p.size() && p[i + 1] == ':' ? "a POSIX bracket [:...:]" : "a nested class");
      if (c == '&' && i + 1 < p.size() && p[i + 1] == '&') unsupported("class intersection &&");
      if (c == ']') in_class = false;
      out += c;
      ++i;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      ++i;
      if (i < p.size() && p[i] == '^') out += p[i++];
      if (i < p.size() && p[i] == ']') out += p[i++];  // a leading ] is literal in both
      continue;
    }
    if (c == '(' && i + 2 < p.size() && p[i + 1] == '?') {
      // Option letters: Ruby's (?m) is PCRE2's (?s); (?x) comments differ too.
      size_t j = i + 2;
      while (j < p.size() && std::string_view("imx-").find(p[j]) != std::string_view::npos) ++j;
      if (j > i + 2 && j < p.size() && (p[j] == ':' || p[j] == ')')) {
        const std::string_view letters = p.substr(i + 2, j - i - 2);
        if (letters.find_first_of("mx") != std::string_view::npos) unsupported(StrCat("option (?", letters));
      }
    }
    if (c == '{') {
      // Interval quantifiers: {n}, {n,}, {n,m}, {,m}.
      size_t j = i + 1;
      const bool leading_comma = j < p.size() && p[j] == ',';
      size_t digits_before = 0;
      while (is_digit(j)) ++j, ++digits_before;
      bool has_comma = false;
      size_t digits_after = 0;
      if (j < p.size() && p[j] == ',') {
        has_comma = true;
        ++j;
        while (is_digit(j)) ++j, ++digits_after;
      }
      const bool closed = j < p.size() && p[j] == '}';
      const bool valid = closed && (digits_before > 0 || (leading_comma && digits_after > 0));
      if (valid) {
        const char next = j + 1 < p.size() ? p[j + 1] : '\0';
        // Ruby: {n,m}+ repeats the interval (PCRE2: possessive); {n}? is optional (PCRE2: lazy).
        if (next == '+') unsupported("a quantifier after {n,m}");
        if (next == '?' && !has_comma) unsupported("{n}?");
        out += leading_comma ? StrCat("{0", p.substr(i + 1, j - i)) : std::string(p.substr(i, j - i + 1));
        i = j + 1;
        continue;
      }
    }
    out += c;
    ++i;
  }
  return out;
}

// ---------------------------------------------------------------------------
// GPT-2 byte <-> character alphabet
// ---------------------------------------------------------------------------

// bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68
// bytes to U+0100.. in byte order (space -> 'Ġ' U+0120, newline -> 'Ċ').
struct ByteAlphabet {
  ByteAlphabet() {
    char_to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
      byte_to_char[b].clear();
      AppendUtf8(cp, &byte_to_char[b]);
      char_to_byte[cp] = static_cast<int16_t>(b);
    }
  }

  std::array<std::string, 256> byte_to_char;
  std::array<int16_t, 324> char_to_byte;  // code points 0..0x143
};

const ByteAlphabet& Alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

std::string ByteLevelEncode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) out += Alphabet().byte_to_char[static_cast<unsigned char>(c)];
  return out;
}

// The ByteLevel decoder for one token: its bytes if every character is in
// the alphabet, else the token's own UTF-8 (added tokens like "<|eot_id|>"
// need no mapping, and tokens outside the alphabet pass through).
void ByteLevelDecodeToken(std::string_view token, std::string* out) {
  const size_t start = out->size();
  size_t i = 0;
  while (i < token.size()) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    uint32_t cp = 0;
    size_t n = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < token.size()) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(token[i + 1]) & 0x3Fu);
      n = 2;
    } else {
      cp = 0xFFFF;  // outside the alphabet (all of it is below U+0144)
    }
    if (cp >= Alphabet().char_to_byte.size() || Alphabet().char_to_byte[cp] < 0) {
      out->resize(start);
      out->append(token);
      return;
    }
    out->push_back(static_cast<char>(Alphabet().char_to_byte[cp]));
    i += n;
  }
}

// ---------------------------------------------------------------------------
// Pre-tokenizers
// ---------------------------------------------------------------------------

// Strings a pre-tokenizer creates (ByteLevel's prefix space) live here for
// the duration of one Encode call.
struct PreTokenizeScratch {
  std::deque<std::string> owned;
  std::vector<std::pair<size_t, size_t>> ranges;
  std::vector<bool> flags;
};

using Pieces = std::vector<std::string_view>;

// The `behavior` of tokenizers' Split (SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

SplitBehavior ParseBehavior(const Node& node) {
  const std::string name = node.String();
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  node.Fail(StrCat("unknown behavior ", Quoted(name),
                   " (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)"));
}

// NormalizedString::split: turns the (range, is_match) cover of `piece` into
// pieces according to `behavior`; empty pieces are dropped as
// PreTokenizedString::split does.
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

// One step of the pre-tokenizer pipeline: splits each piece into sub-pieces.
class PreTokenizerStep {
 public:
  virtual ~PreTokenizerStep() = default;
  virtual void Apply(std::string_view piece, PreTokenizeScratch* scratch, Pieces* out) const = 0;
};

// Split: a regex or literal pattern with a delimiter behaviour.
class SplitStep final : public PreTokenizerStep {
 public:
  explicit SplitStep(const Node& node) {
    const JsonObject fields = node.Object();
    const Node pattern = node.Child("pattern");
    const JsonObject pattern_fields = pattern.Object();
    if (pattern_fields.Has("Regex") == pattern_fields.Has("String")) {
      pattern.Fail("expected exactly one of {\"Regex\": ...} or {\"String\": ...}");
    }
    if (pattern_fields.Has("Regex")) {
      const Node regex = pattern.Child("Regex");
      regex_ = std::make_unique<Regex>(OnigToPcre2(regex.String(), regex), PCRE2_MULTILINE, regex);
    } else {
      const Node literal = pattern.Child("String");
      regex_ = std::make_unique<Regex>(literal.String(), PCRE2_LITERAL, literal);
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
  explicit DigitsStep(const Node& node)
      : numeric_("\\p{N}", 0, node), individual_(node.Object().Bool("individual_digits", false)) {}

  void Apply(std::string_view piece, PreTokenizeScratch* scratch, Pieces* out) const override {
    SplitByMatches(piece, numeric_, /*invert=*/false,
                   individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, scratch, out);
  }

 private:
  Regex numeric_;
  bool individual_;
};

constexpr char kGpt2Pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// ByteLevel: optional prefix space and the GPT-2 regex. The byte -> character
// mapping itself is folded into the BPE model, which works on raw bytes.
class ByteLevelStep final : public PreTokenizerStep {
 public:
  explicit ByteLevelStep(const Node& node) {
    const JsonObject fields = node.Object();
    add_prefix_space_ = fields.Bool("add_prefix_space", true);
    if (fields.Bool("use_regex", true)) {
      regex_ = std::make_unique<Regex>(OnigToPcre2(kGpt2Pattern, node), 0, node);
    }
  }

  void Apply(std::string_view piece, PreTokenizeScratch* scratch, Pieces* out) const override {
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

 private:
  bool add_prefix_space_ = true;
  std::unique_ptr<Regex> regex_;
};

void AddPreTokenizers(const Node& node, std::vector<std::unique_ptr<PreTokenizerStep>>* steps, bool* byte_level_seen) {
  const std::string type = node.Type();
  if (*byte_level_seen) {
    node.Fail(StrCat(type, " after ByteLevel is not supported (ByteLevel must be the last pre-tokenizer)"));
  }
  if (type == "Sequence") {
    const Node list = node.Child("pretokenizers");
    for (size_t i = 0; i < list.Array().size(); ++i) AddPreTokenizers(list.At(i), steps, byte_level_seen);
  } else if (type == "ByteLevel") {
    steps->push_back(std::make_unique<ByteLevelStep>(node));
    *byte_level_seen = true;
  } else if (type == "Split") {
    steps->push_back(std::make_unique<SplitStep>(node));
  } else if (type == "Digits") {
    steps->push_back(std::make_unique<DigitsStep>(node));
  } else {
    node.Fail(StrCat("unsupported type ", Quoted(type), " (supported: ByteLevel, Split, Digits, Sequence)"));
  }
}

// ---------------------------------------------------------------------------
// BPE model
// ---------------------------------------------------------------------------

// (left id, right id) -> (rank, merged id), open addressing: the merge loop
// looks pairs up constantly and std::unordered_map is several times slower.
class MergeTable {
 public:
  struct Entry {
    uint64_t key;
    uint32_t rank;
    int32_t merged;
  };

  void Reserve(size_t count) {
    size_t capacity = 16;
    shift_ = 60;
    while (capacity < count * 2) capacity *= 2, --shift_;
    entries_.assign(capacity, Entry{kEmpty, 0, 0});
    mask_ = capacity - 1;
  }

  void InsertOrAssign(int32_t left, int32_t right, uint32_t rank, int32_t merged) {
    PS_CHECK(!entries_.empty() && size_ * 2 < entries_.size(), "MergeTable not reserved");
    const uint64_t key = Key(left, right);
    size_t slot = Slot(key);
    while (entries_[slot].key != kEmpty && entries_[slot].key != key) slot = (slot + 1) & mask_;
    if (entries_[slot].key == kEmpty) ++size_;
    entries_[slot] = Entry{key, rank, merged};
  }

  const Entry* Find(int32_t left, int32_t right) const {
    if (entries_.empty()) return nullptr;
    const uint64_t key = Key(left, right);
    for (size_t slot = Slot(key);; slot = (slot + 1) & mask_) {
      if (entries_[slot].key == key) return &entries_[slot];
      if (entries_[slot].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are non-negative int32
  static uint64_t Key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  // Fibonacci hashing: the top bits of the product are well mixed.
  size_t Slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_; }

  std::vector<Entry> entries_;
  size_t mask_ = 0;
  int shift_ = 60;
  size_t size_ = 0;
};

// Bounded cache of pre-token bytes -> ids, sharded so concurrent Encode calls
// rarely wait on each other. Each shard is a flat open-addressing table over
// one byte arena holding keys and ids back to back: a lookup touches two cache
// lines, where node-based maps chase four pointers (the lookup is the hottest
// path of warm encoding). A full shard is cleared (tokenizers stops inserting
// instead; either keeps memory bounded).
class IdCache {
 public:
  static constexpr size_t kMaxKeyLength = 256;  // as tokenizers' BPE cache

  explicit IdCache(size_t capacity) : shard_capacity_(std::max<size_t>(capacity / kShards, 16)) {
    size_t slots = 16;
    while (slots < shard_capacity_ * 2) slots *= 2;
    for (Shard& shard : shards_) shard.slots.assign(slots, Slot{});
  }

  // Appends the cached ids of `key` to `out`; false if absent.
  bool Lookup(std::string_view key, std::vector<int32_t>* out) const {
    const uint64_t hash = Hash(key);
    Shard& shard = shards_[hash >> 60];
    std::lock_guard<std::mutex> lock(shard.mutex);
    const Slot* slot = shard.Find(key, hash);
    if (slot == nullptr || slot->hash == 0) return false;
    const size_t old_size = out->size();
    out->resize(old_size + slot->ids_length);
    std::memcpy(out->data() + old_size, shard.arena.data() + slot->offset + slot->key_length,
                slot->ids_length * sizeof(int32_t));
    return true;
  }

  void Insert(std::string_view key, const int32_t* begin, const int32_t* end) const {
    PS_CHECK(key.size() <= kMaxKeyLength && end - begin <= 0xFFFF);
    const uint64_t hash = Hash(key);
    Shard& shard = shards_[hash >> 60];
    std::lock_guard<std::mutex> lock(shard.mutex);
    if (shard.count >= shard_capacity_) {
      std::fill(shard.slots.begin(), shard.slots.end(), Slot{});
      shard.arena.clear();
      shard.count = 0;
    }
    Slot* slot = shard.Find(key, hash);
    if (slot->hash != 0) return;  // another thread got here first
    const size_t ids_bytes = static_cast<size_t>(end - begin) * sizeof(int32_t);
    *slot = Slot{hash, static_cast<uint32_t>(shard.arena.size()), static_cast<uint16_t>(key.size()),
                 static_cast<uint16_t>(end - begin)};
    shard.arena.insert(shard.arena.end(), key.begin(), key.end());
    shard.arena.resize(shard.arena.size() + ids_bytes);
    std::memcpy(shard.arena.data() + shard.arena.size() - ids_bytes, begin, ids_bytes);
    ++shard.count;
  }

 private:
  static constexpr size_t kShards = 16;  // the top 4 bits of the hash pick one

  struct Slot {
    uint64_t hash = 0;  // 0 = empty
    uint32_t offset = 0;
    uint16_t key_length = 0;
    uint16_t ids_length = 0;
  };

  struct Shard {
    // The slot holding `key`, or the empty slot where it would go.
    Slot* Find(std::string_view key, uint64_t hash) {
      const size_t mask = slots.size() - 1;
      for (size_t i = static_cast<size_t>(hash) & mask;; i = (i + 1) & mask) {
        Slot& slot = slots[i];
        if (slot.hash == 0) return &slot;
        if (slot.hash == hash && slot.key_length == key.size() &&
            std::memcmp(arena.data() + slot.offset, key.data(), key.size()) == 0) {
          return &slot;
        }
      }
    }

    std::mutex mutex;
    std::vector<Slot> slots;   // twice the capacity, so probes stay short
    std::vector<char> arena;   // key bytes, then the ids, per entry
    size_t count = 0;
  };

  static uint64_t Hash(std::string_view key) {
    const uint64_t hash = std::hash<std::string_view>()(key);
    return hash == 0 ? 1 : hash;
  }

  size_t shard_capacity_;
  mutable std::array<Shard, kShards> shards_;
};

// Byte-level BPE over raw bytes: each byte starts as the id of its alphabet
// character; merges apply in rank order, leftmost first (word.rs merge_all).
class BpeModel {
 public:
  explicit BpeModel(const Node& node) : cache_(kCacheCapacity) {
    const JsonObject fields = node.Object();
    if (fields.Has("type") && fields.String("type") != "BPE") {
      node.Fail(StrCat("unsupported model type ", Quoted(fields.String("type")), " (supported: BPE)"));
    }
    if (fields.Bool("byte_fallback", false)) {
      node.Child("byte_fallback").Fail("byte_fallback true is not supported (byte-level BPE never needs it)");
    }
    if (fields.Has("dropout") && fields.Float("dropout") != 0.0) {
      node.Child("dropout").Fail("BPE dropout is not supported (it makes encoding random); set it to null");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (!fields.String(key, "").empty()) {
        node.Child(key).Fail(StrCat(Quoted(fields.String(key)), " is not supported (only empty or null)"));
      }
    }
    ignore_merges_ = fields.Bool("ignore_merges", false);
    fuse_unk_ = fields.Bool("fuse_unk", false);

    const Node vocab = node.Child("vocab");
    if (!vocab.value().is_object()) vocab.Fail(StrCat("expected an object, found ", vocab.value().type_name()));
    token_to_id_.reserve(vocab.value().size());
    id_to_token_.reserve(vocab.value().size());
    for (const auto& [token, id_json] : vocab.value().items()) {
      if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 ||
          id_json.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        vocab.Fail(StrCat("token ", Quoted(token), ": id must be an integer in [0, 2^31), found ", id_json.dump()));
      }
      const auto id = static_cast<int32_t>(id_json.get<int64_t>());
      if (const auto [it, inserted] = id_to_token_.emplace(id, token); !inserted) {
        vocab.Fail(StrCat("id ", id, " is used by both ", Quoted(it->second), " and ", Quoted(token)));
      }
      token_to_id_.emplace(token, id);
      max_id_ = std::max(max_id_, id);
    }

    byte_ids_.fill(-1);
    for (int b = 0; b < 256; ++b) {
      if (const auto it = token_to_id_.find(Alphabet().byte_to_char[b]); it != token_to_id_.end()) {
        byte_ids_[b] = it->second;
      }
    }

    if (fields.Has("unk_token")) {
      const std::string unk = fields.String("unk_token");
      const auto it = token_to_id_.find(unk);
      if (it == token_to_id_.end()) node.Child("unk_token").Fail(StrCat(Quoted(unk), " is not in model.vocab"));
      unk_id_ = it->second;
    }

    LoadMerges(node.Child("merges"));
  }

  std::optional<int32_t> TokenToId(std::string_view token) const {
    const auto it = token_to_id_.find(std::string(token));
    if (it == token_to_id_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* IdToToken(int32_t id) const {
    const auto it = id_to_token_.find(id);
    return it == id_to_token_.end() ? nullptr : &it->second;
  }
  int64_t MaxIdPlusOne() const { return int64_t{max_id_} + 1; }
  // What tokenizers calls the vocabulary size: the number of entries.
  int64_t Count() const { return static_cast<int64_t>(token_to_id_.size()); }

  // Appends the ids of one pre-token (raw bytes; the model sees them through
  // the byte alphabet).
  void Tokenize(std::string_view piece, std::vector<int32_t>* out) const {
    if (piece.size() > IdCache::kMaxKeyLength) {
      TokenizeUncached(piece, out);
      return;
    }
    if (cache_.Lookup(piece, out)) return;
    const size_t before = out->size();
    TokenizeUncached(piece, out);
    cache_.Insert(piece, out->data() + before, out->data() + out->size());
  }

 private:
  static constexpr size_t kCacheCapacity = 100000;

  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    uint32_t len;  // bytes covered; 0 once merged into its left neighbour
  };
  struct Candidate {
    uint32_t rank;
    uint32_t pos;
    int32_t merged;
    // Lowest rank first, then leftmost (std::priority_queue pops the largest).
    bool operator<(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };

  void LoadMerges(const Node& merges) {
    const Json& list = merges.Array();
    merges_.Reserve(list.size());
    std::string first;
    std::string second;
    for (size_t rank = 0; rank < list.size(); ++rank) {
      const Node merge = merges.At(rank);
      if (merge.value().is_string()) {
        const std::string& line = merge.value().get_ref<const std::string&>();
        const size_t space = line.find(' ');
        if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
          merge.Fail(StrCat(Quoted(line), " must be two tokens separated by one space "
                                          "(use the [\"a\", \"b\"] form for tokens with spaces)"));
        }
        first = line.substr(0, space);
        second = line.substr(space + 1);
      } else if (merge.value().is_array() && merge.value().size() == 2 && merge.value()[0].is_string() &&
                 merge.value()[1].is_string()) {
        first = merge.value()[0].get<std::string>();
        second = merge.value()[1].get<std::string>();
      } else {
        merge.Fail(StrCat("expected \"a b\" or [\"a\", \"b\"], found ", merge.value().dump()));
      }
      const auto id_of = [&](const std::string& token) {
        const auto it = token_to_id_.find(token);
        if (it == token_to_id_.end()) merge.Fail(StrCat("token ", Quoted(token), " is not in model.vocab"));
        return it->second;
      };
      const int32_t left = id_of(first);
      const int32_t right = id_of(second);
      const int32_t merged = id_of(first + second);
      // A repeated pair keeps its last rank, as tokenizers' HashMap collect does.
      merges_.InsertOrAssign(left, right, static_cast<uint32_t>(rank), merged);
    }
  }

  void TokenizeUncached(std::string_view piece, std::vector<int32_t>* out) const {
    if (piece.empty()) return;
    if (ignore_merges_) {
      if (const auto it = token_to_id_.find(ByteLevelEncode(piece)); it != token_to_id_.end()) {
        out->push_back(it->second);
        return;
      }
    }
    std::vector<Symbol> symbols;
    symbols.reserve(piece.size());
    const auto add = [&](int32_t id, uint32_t len) {
      const auto index = static_cast<int32_t>(symbols.size());
      if (index > 0) symbols.back().next = index;
      symbols.push_back(Symbol{id, index - 1, -1, len});
    };
    // Bytes missing from the vocabulary become unk_token (fused if asked) or
    // vanish when there is none, as in tokenizers' merge_word.
    int32_t pending_unk_len = 0;
    for (const char c : piece) {
      const int32_t id = byte_ids_[static_cast<unsigned char>(c)];
      if (id >= 0) {
        if (pending_unk_len > 0) add(unk_id_, static_cast<uint32_t>(pending_unk_len));
        pending_unk_len = 0;
        add(id, 1);
      } else if (unk_id_ >= 0) {
        if (pending_unk_len > 0 && !fuse_unk_) {
          add(unk_id_, static_cast<uint32_t>(pending_unk_len));
          pending_unk_len = 0;
        }
        ++pending_unk_len;
      }
    }
    if (pending_unk_len > 0) add(unk_id_, static_cast<uint32_t>(pending_unk_len));

    std::vector<Candidate> heap_storage;
    heap_storage.reserve(symbols.size());
    std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(heap_storage));
    const auto push_pair = [&](int32_t pos) {
      const Symbol& left = symbols[pos];
      if (left.next < 0) return;
      if (const MergeTable::Entry* m = merges_.Find(left.id, symbols[left.next].id)) {
        queue.push(Candidate{m->rank, static_cast<uint32_t>(pos), m->merged});
      }
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i) push_pair(static_cast<int32_t>(i));

    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& left = symbols[top.pos];
      if (left.len == 0 || left.next < 0) continue;
      const Symbol right = symbols[left.next];
      // Stale entry: the pair at this position changed since it was queued.
      const MergeTable::Entry* m = merges_.Find(left.id, right.id);
      if (m == nullptr || m->merged != top.merged) continue;
      symbols[left.next].len = 0;
      left.id = top.merged;
      left.len += right.len;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = static_cast<int32_t>(top.pos);
      if (left.prev >= 0) push_pair(left.prev);
      push_pair(static_cast<int32_t>(top.pos));
    }
    for (const Symbol& symbol : symbols) {
      if (symbol.len > 0) out->push_back(symbol.id);
    }
  }

  std::unordered_map<std::string, int32_t> token_to_id_;
  // A map, not a vector: ids may be sparse, and a stray id near 2^31 must not
  // allocate gigabytes.
  std::unordered_map<int32_t, std::string> id_to_token_;
  int32_t max_id_ = -1;
  std::array<int32_t, 256> byte_ids_;
  MergeTable merges_;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  IdCache cache_;
};

// ---------------------------------------------------------------------------
// Added tokens
// ---------------------------------------------------------------------------

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// Leftmost-longest matching of a set of added tokens (tokenizers builds an
// Aho-Corasick automaton with MatchKind::LeftmostLongest; a byte trie gives
// the same matches for the few hundred tokens models have).
class AddedTokenMatcher {
 public:
  AddedTokenMatcher() { root_.fill(-1); }

  bool empty() const { return nodes_.empty(); }

  void Add(std::string_view content, int token_index) {
    PS_CHECK(!content.empty());
    int32_t node = -1;  // the root
    for (const char c : content) node = AddChild(node, static_cast<unsigned char>(c));
    nodes_[node].token = token_index;
  }

  // First match at or after `from`; longest among those starting there.
  bool FindNext(std::string_view text, size_t from, size_t* start, size_t* end, int* token) const {
    for (size_t i = from; i < text.size(); ++i) {
      int32_t node = root_[static_cast<unsigned char>(text[i])];
      int best = -1;
      size_t best_end = 0;
      for (size_t j = i + 1; node >= 0; ++j) {
        if (nodes_[node].token >= 0) {
          best = nodes_[node].token;
          best_end = j;
        }
        if (j >= text.size()) break;
        node = FindChild(node, static_cast<unsigned char>(text[j]));
      }
      if (best >= 0) {
        *start = i;
        *end = best_end;
        *token = best;
        return true;
      }
    }
    return false;
  }

 private:
  struct TrieNode {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int token = -1;
  };

  int32_t AddChild(int32_t node, unsigned char byte) {
    if (const int32_t found = FindChild(node, byte); found >= 0) return found;
    const auto index = static_cast<int32_t>(nodes_.size());
    nodes_.emplace_back();
    if (node < 0) {
      root_[byte] = index;
    } else {
      nodes_[node].children.emplace_back(byte, index);
    }
    return index;
  }
  int32_t FindChild(int32_t node, unsigned char byte) const {
    if (node < 0) return root_[byte];
    for (const auto& [b, child] : nodes_[node].children) {
      if (b == byte) return child;
    }
    return -1;
  }

  std::array<int32_t, 256> root_;
  std::vector<TrieNode> nodes_;
};

// The added vocabulary: token table plus the two matchers tokenizers keeps
// (tokens matched on the raw text first, then "normalized" ones; with a null
// normalizer both see the same text, only the order differs).
class AddedVocabulary {
 public:
  // The classes are what Rust's regex crate means by Unicode \\w and \\s.
  AddedVocabulary()
      : word_char_("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]", 0, BuiltInNode()),
        white_space_("\\p{White_Space}", 0, BuiltInNode()) {}

  void Load(const Node& list, const BpeModel& model) {
    if (list.IsNull()) return;
    // Ids are assigned as AddedVocabulary::add_tokens does; the file's ids must agree.
    int64_t max_added = -1;  // over every added token so far, as added_tokens_map
    for (size_t i = 0; i < list.Array().size(); ++i) {
      const Node entry = list.At(i);
      const JsonObject fields = entry.Object();
      AddedToken token;
      token.content = fields.String("content");
      const int64_t file_id = fields.Int("id");
      token.single_word = fields.Bool("single_word", false);
      token.lstrip = fields.Bool("lstrip", false);
      token.rstrip = fields.Bool("rstrip", false);
      token.special = fields.Bool("special", false);
      token.normalized = fields.Bool("normalized", !token.special);
      if (token.content.empty()) entry.Fail("empty content");
      if (FirstInvalidUtf8(token.content) != std::string::npos) entry.Fail("content is not valid UTF-8");
      if (by_content_.count(token.content) > 0) entry.Fail(StrCat("duplicate added token ", Quoted(token.content)));
      int64_t id = 0;
      const std::optional<int32_t> model_id = model.TokenToId(token.content);
      if (model_id) {
        id = *model_id;
      } else {
        const int64_t vocab_size = model.Count();
        id = max_added < 0 ? vocab_size : (max_added >= vocab_size || vocab_size == 0) ? max_added + 1 : vocab_size;
        if (id > std::numeric_limits<int32_t>::max()) entry.Fail("no id left below 2^31");
        if (const std::string* taken = model.IdToToken(static_cast<int32_t>(id))) {
          entry.Fail(StrCat("tokenizers would give ", Quoted(token.content), " id ", id, ", which model.vocab uses for ",
                            Quoted(*taken), " (model.vocab ids have gaps)"));
        }
      }
      max_added = std::max(max_added, id);
      if (file_id != id) {
        entry.Fail(StrCat("id ", file_id, " for ", Quoted(token.content), " but tokenizers would assign ", id,
                          model_id ? " (its id in model.vocab)" : " (the next free id)"));
      }
      token.id = static_cast<int32_t>(id);
      by_content_.emplace(token.content, tokens_.size());
      by_id_[token.id] = tokens_.size();
      if (token.special) special_contents_.insert(token.content);
      (token.normalized ? normalized_ : raw_).Add(token.content, static_cast<int>(tokens_.size()));
      tokens_.push_back(std::move(token));
    }
  }

  // Splits `text` into plain text and added tokens, calling
  // on_split(text, id) with id -1 for plain text (AddedVocabulary::
  // extract_and_normalize with a null normalizer).
  template <typename OnSplit>
  void Extract(std::string_view text, OnSplit&& on_split) const {
    FindMatches(raw_, text, [&](std::string_view part, int32_t id) {
      if (id >= 0) {
        on_split(part, id);
      } else {
        FindMatches(normalized_, part, on_split);
      }
    });
  }

  const AddedToken* ById(int32_t id) const {
    const auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &tokens_[it->second];
  }
  std::optional<int32_t> IdOf(std::string_view content) const {
    const auto it = by_content_.find(std::string(content));
    if (it == by_content_.end()) return std::nullopt;
    return tokens_[it->second].id;
  }
  bool IsSpecialContent(const std::string& content) const { return special_contents_.count(content) > 0; }
  int64_t MaxIdPlusOne() const {
    int64_t max = 0;
    for (const AddedToken& token : tokens_) max = std::max<int64_t>(max, token.id + 1);
    return max;
  }

 private:
  static Node BuiltInNode() {
    static const Json null_json;
    static const std::string name = "built-in added-token pattern";
    return Node(null_json, name, "");
  }

  // AddedVocabulary::find_matches for one matcher.
  template <typename OnSplit>
  void FindMatches(const AddedTokenMatcher& matcher, std::string_view sentence, OnSplit&& on_split) const {
    if (sentence.empty()) return;
    if (matcher.empty()) {
      on_split(sentence, -1);
      return;
    }
    size_t start_offset = 0;
    size_t search_from = 0;
    size_t match_start = 0;
    size_t match_end = 0;
    int index = -1;
    while (matcher.FindNext(sentence, search_from, &match_start, &match_end, &index)) {
      search_from = match_end;  // the automaton resumes after the raw match
      const AddedToken& token = tokens_[index];
      size_t start = match_start;
      size_t stop = match_end;
      if (token.single_word) {
        const bool start_space = start == 0 || !EndsWithWord(sentence.substr(0, start));
        const bool stop_space = stop == sentence.size() || !StartsWithWord(sentence.substr(stop));
        if (!start_space || !stop_space) continue;
      }
      if (token.lstrip) start = std::max(SpaceLeftmostAtEnd(sentence.substr(0, start)), start_offset);
      if (token.rstrip) stop += SpaceRightmostAtStart(sentence.substr(stop));
      if (start_offset < start) on_split(sentence.substr(start_offset, start - start_offset), -1);
      // tokenizers drops empty splits (and panics on reversed ones, which a
      // previous rstrip can produce); emitting nothing is the non-crashing twin.
      if (start < stop) on_split(sentence.substr(start, stop - start), token.id);
      start_offset = stop;
    }
    if (start_offset < sentence.size()) on_split(sentence.substr(start_offset), -1);
  }

  // Rust regex \w and \s (Unicode) on the character before / after a cut.
  bool EndsWithWord(std::string_view s) const {
    return !s.empty() && word_char_.MatchesAt(s, PreviousCharStart(s, s.size()));
  }
  bool StartsWithWord(std::string_view s) const { return !s.empty() && word_char_.MatchesAt(s, 0); }
  size_t SpaceLeftmostAtEnd(std::string_view s) const {
    size_t start = s.size();
    while (start > 0) {
      const size_t previous = PreviousCharStart(s, start);
      if (!white_space_.MatchesAt(s, previous)) break;
      start = previous;
    }
    return start;
  }
  size_t SpaceRightmostAtStart(std::string_view s) const {
    size_t end = 0;
    while (end < s.size() && white_space_.MatchesAt(s, end)) end += CharLength(s, end);
    return end;
  }

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, size_t> by_content_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_set<std::string> special_contents_;
  AddedTokenMatcher raw_;
  AddedTokenMatcher normalized_;
  Regex word_char_;
  Regex white_space_;
};

// ---------------------------------------------------------------------------
// Post-processing
// ---------------------------------------------------------------------------

// One TemplateProcessing "single" template: special-token ids around $A.
struct Template {
  struct Piece {
    bool is_sequence = false;
    std::vector<int32_t> ids;  // for a special token
  };
  std::vector<Piece> pieces;
};

Template LoadTemplate(const Node& node, const std::function<bool(int32_t)>& id_exists) {
  const Node special_tokens = node.Child("special_tokens");
  const Node single = node.Child("single");
  Template result;
  for (size_t i = 0; i < single.Array().size(); ++i) {
    const Node piece = single.At(i);
    const JsonObject fields = piece.Object();
    Template::Piece out;
    if (fields.Has("Sequence")) {
      const Node sequence = piece.Child("Sequence");
      const std::string id = sequence.Object().String("id");
      if (id != "A") sequence.Fail(StrCat("sequence ", Quoted(id), " in the single template (only A exists)"));
      out.is_sequence = true;
    } else if (fields.Has("SpecialToken")) {
      const std::string name = piece.Child("SpecialToken").Object().String("id");
      const Node entry = special_tokens.Child(name);
      if (entry.IsNull()) {
        piece.Fail(StrCat("special token ", Quoted(name), " is missing from post_processor.special_tokens"));
      }
      const Node ids = entry.Child("ids");
      for (size_t k = 0; k < ids.Array().size(); ++k) {
        const Json& id = ids.value()[k];
        if (!id.is_number_integer() || id.get<int64_t>() > std::numeric_limits<int32_t>::max() ||
            !id_exists(static_cast<int32_t>(id.get<int64_t>()))) {
          ids.At(k).Fail(StrCat("id ", id.dump(), " is not in the vocabulary"));
        }
        out.ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
    } else {
      piece.Fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    }
    result.pieces.push_back(std::move(out));
  }
  return result;
}

void AddPostProcessors(const Node& node, const std::function<bool(int32_t)>& id_exists,
                       std::vector<Template>* templates) {
  if (node.IsNull()) return;
  const std::string type = node.Type();
  if (type == "ByteLevel") return;  // only trims offsets
  if (type == "TemplateProcessing") {
    templates->push_back(LoadTemplate(node, id_exists));
  } else if (type == "Sequence") {
    const Node list = node.Child("processors");
    for (size_t i = 0; i < list.Array().size(); ++i) AddPostProcessors(list.At(i), id_exists, templates);
  } else {
    node.Fail(StrCat("unsupported type ", Quoted(type), " (supported: ByteLevel, TemplateProcessing, Sequence)"));
  }
}

// ---------------------------------------------------------------------------
// The tokenizer
// ---------------------------------------------------------------------------

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  ByteLevelBpeTokenizer(const Json& json, const std::string& where) : source_(where) {
    const Node root(json, where, "");
    root.Object();

    if (const Node normalizer = root.Child("normalizer"); !normalizer.IsNull()) {
      const std::string type = normalizer.value().is_object() && normalizer.value().contains("type")
                                   ? Quoted(normalizer.Type())
                                   : normalizer.value().dump();
      normalizer.Fail(StrCat("unsupported normalizer ", type, " (only null is supported)"));
    }

    const Node pre_tokenizer = root.Child("pre_tokenizer");
    if (pre_tokenizer.IsNull()) pre_tokenizer.Fail("missing; a ByteLevel pre-tokenizer is required");
    bool byte_level_seen = false;
    AddPreTokenizers(pre_tokenizer, &pre_tokenizers_, &byte_level_seen);
    if (!byte_level_seen) pre_tokenizer.Fail("no ByteLevel pre-tokenizer (only byte-level BPE is supported)");

    model_ = std::make_unique<BpeModel>(root.Child("model"));
    added_.Load(root.Child("added_tokens"), *model_);

    AddPostProcessors(root.Child("post_processor"), [this](int32_t id) { return TokenString(id) != nullptr; },
                      &templates_);

    const Node decoder = root.Child("decoder");
    if (decoder.IsNull()) decoder.Fail("missing; a ByteLevel decoder is required");
    if (const std::string type = decoder.Type(); type != "ByteLevel") {
      decoder.Fail(StrCat("unsupported type ", Quoted(type), " (supported: ByteLevel)"));
    }
  }

  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens) const override {
    if (const size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
      throw Error(StrCat(source_, ": cannot encode: the text is not valid UTF-8 (byte ", bad, " of ", text.size(), ")"));
    }
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    PreTokenizeScratch scratch;
    Pieces pieces;
    Pieces next;
    added_.Extract(text, [&](std::string_view part, int32_t id) {
      if (id >= 0) {
        ids.push_back(id);
        return;
      }
      pieces.assign(1, part);
      for (const auto& step : pre_tokenizers_) {
        next.clear();
        for (const std::string_view piece : pieces) step->Apply(piece, &scratch, &next);
        pieces.swap(next);
      }
      for (const std::string_view piece : pieces) model_->Tokenize(piece, &ids);
      scratch.owned.clear();
    });
    if (add_special_tokens) {
      for (const Template& single : templates_) ids = Apply(single, ids);
    }
    return ids;
  }

  std::string Decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override {
    std::string bytes;
    for (const int32_t id : ids) {
      const std::string* token = TokenString(id);
      if (token == nullptr) throw Error(StrCat(source_, ": cannot decode id ", id, ": not in the vocabulary"));
      if (skip_special_tokens && added_.IsSpecialContent(*token)) continue;
      ByteLevelDecodeToken(*token, &bytes);
    }
    return LossyUtf8(bytes);
  }

  int64_t VocabSize() const override { return std::max(model_->MaxIdPlusOne(), added_.MaxIdPlusOne()); }

  std::optional<int32_t> TokenToId(std::string_view token) const override {
    if (const auto id = added_.IdOf(token)) return id;
    return model_->TokenToId(token);
  }

  std::string IdToToken(int32_t id) const override {
    const std::string* token = TokenString(id);
    if (token == nullptr) throw Error(StrCat(source_, ": id ", id, " is not in the vocabulary"));
    return *token;
  }

  bool IsSpecial(int32_t id) const override {
    const std::string* token = TokenString(id);
    return token != nullptr && added_.IsSpecialContent(*token);
  }

 private:
  // Added tokens take precedence, as AddedVocabulary::id_to_token.
  const std::string* TokenString(int32_t id) const {
    if (const AddedToken* added = added_.ById(id)) return &added->content;
    return model_->IdToToken(id);
  }

  static std::vector<int32_t> Apply(const Template& single, const std::vector<int32_t>& ids) {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const Template::Piece& piece : single.pieces) {
      const std::vector<int32_t>& part = piece.is_sequence ? ids : piece.ids;
      out.insert(out.end(), part.begin(), part.end());
    }
    return out;
  }

  std::string source_;  // names the file in errors
  std::vector<std::unique_ptr<PreTokenizerStep>> pre_tokenizers_;
  std::unique_ptr<BpeModel> model_;
  AddedVocabulary added_;
  std::vector<Template> templates_;
};

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::FromFile(const std::string& path) {
  std::error_code error;
  const std::string file =
      std::filesystem::is_directory(path, error) ? (std::filesystem::path(path) / "tokenizer.json").string() : path;
  return FromJson(ReadJsonFile(file), file);
}

std::unique_ptr<Tokenizer> Tokenizer::FromJson(const nlohmann::json& json, const std::string& where) {
  return std::make_unique<ByteLevelBpeTokenizer>(json, where);
}

void ForEachByteLevelPiece(std::string_view text, const std::function<void(std::string_view piece)>& on_piece) {
  if (const size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
    throw Error(StrCat("not valid UTF-8 (byte ", bad, " of ", text.size(), ")"));
  }
  static const Json kConfig = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  static const std::string kWhere = "GPT-2 ByteLevel pre-tokenizer";
  static const ByteLevelStep kStep(Node(kConfig, kWhere, ""));
  PreTokenizeScratch scratch;
  Pieces pieces;
  kStep.Apply(text, &scratch, &pieces);
  for (const std::string_view piece : pieces) on_piece(piece);
}

std::string ByteLevelChars(std::string_view bytes) { return ByteLevelEncode(bytes); }

}  // namespace promptsweep
