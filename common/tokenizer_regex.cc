#include "common/tokenizer_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>

#include "common/error.h"
#include "common/json_util.h"

namespace promptsweep {
namespace tokenizer_internal {
namespace {

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

}  // namespace

struct Regex::Compiled {
  ~Compiled() { pcre2_code_free(code); }
  pcre2_code* code = nullptr;
  bool jit = false;
};

Regex::Regex(std::string_view pattern, RegexSyntax syntax, const std::string& where) : compiled_(new Compiled) {
  const bool literal = syntax == RegexSyntax::kLiteral;
  const std::string source = literal ? std::string(pattern) : OnigurumaToPcre2(pattern, where);
  // PCRE2_LITERAL refuses PCRE2_UCP (a literal has no classes to widen).
  const uint32_t options = literal ? PCRE2_LITERAL | PCRE2_UTF : PCRE2_MULTILINE | PCRE2_UTF | PCRE2_UCP;
  pcre2_compile_context* context = pcre2_compile_context_create(nullptr);
  PS_CHECK(context != nullptr, "out of memory");
  pcre2_set_newline(context, PCRE2_NEWLINE_LF);
  int error = 0;
  PCRE2_SIZE offset = 0;
  compiled_->code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(), options, &error, &offset, context);
  pcre2_compile_context_free(context);
  if (compiled_->code == nullptr) {
    throw Error(StrCat(where, ": invalid regex ", JsonQuoted(source), " at offset ", offset, ": ", Pcre2Message(error)));
  }
  compiled_->jit = pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() = default;

bool Regex::Search(std::string_view text, size_t from, bool anchored, size_t* start, size_t* end) const {
  MatchScratch& scratch = ThreadMatchScratch();
  // PCRE2 wants a non-null subject even when it is empty.
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.empty() ? "" : text.data());
  const int rc = compiled_->jit && !anchored
                     ? pcre2_jit_match(compiled_->code, subject, text.size(), from, 0, scratch.match_data,
                                       scratch.context)
                     : pcre2_match(compiled_->code, subject, text.size(), from,
                                   (anchored ? PCRE2_ANCHORED : 0) | PCRE2_NO_UTF_CHECK, scratch.match_data,
                                   scratch.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  // rc == 0 only means captures did not fit the 1-pair ovector.
  if (rc < 0) throw Error(StrCat("regex match failed: ", Pcre2Message(rc)));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.match_data);
  PS_CHECK(ovector[0] <= ovector[1] && ovector[1] <= text.size(), "PCRE2 returned a bad match");
  *start = ovector[0];
  *end = ovector[1];
  return true;
}

// Oniguruma's Unicode \s: U+0009..U+000D, U+0085 and General_Category Z.
// (PCRE2's \s also takes U+180E.)
constexpr char kOnigSpaceClassBody[] = "\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}";

// Rewrites a tokenizers regex (Oniguruma, Ruby syntax) into PCRE2 syntax with
// the same meaning, rejecting constructs whose meaning differs between the
// engines instead of silently changing the tokenization.
std::string OnigurumaToPcre2(std::string_view p, const std::string& where) {
  std::string out;
  out.reserve(p.size() + 32);
  bool in_class = false;
  size_t i = 0;
  const auto unsupported = [&](const std::string& what) {
    throw Error(StrCat(where, ": regex ", JsonQuoted(p), ": ", what, " at offset ", i,
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

}  // namespace tokenizer_internal
}  // namespace promptsweep
