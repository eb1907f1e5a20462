// Regexes of tokenizer.json (Split patterns, the ByteLevel and Digits
// pre-tokenizers, added-token word boundaries), matched like the onig crate
// that the tokenizers library uses.
//
// The patterns are Oniguruma (Ruby syntax); they run on PCRE2 with JIT after a
// small translation (`\s` gets Oniguruma's meaning, `{,n}` becomes `{0,n}`).
// Constructs whose meaning differs between the engines (`\w`, `\b`, `\h`,
// `(?m)`, nested classes, ...) are rejected at load, not guessed. PCRE2 rather
// than Oniguruma itself: with this same interface on libonig 6.9.8 the Brown
// corpus gave identical ids but encoded 2-3x slower (GPT-2 warm ~9 MB/s
// against 21-31 MB/s; bench/run_tokenizer_bench.sh).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/tokenizer_utf8.h"

namespace promptsweep {
namespace tokenizer_internal {

enum class RegexSyntax {
  kOniguruma,  // a tokenizers Regex pattern; ^ and $ match at line breaks
  kLiteral,    // a tokenizers String pattern: the text itself
};

// A compiled pattern over UTF-8 (already validated) text. Immutable and
// thread-safe: match scratch space is per thread.
class Regex {
 public:
  // Throws Error "where: ..." for a pattern that does not compile or uses a
  // construct the engines read differently.
  Regex(std::string_view pattern, RegexSyntax syntax, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // First match at or after `from` (anchored: starting exactly there): true
  // and [*start, *end), or false. Throws Error if the engine gives up.
  bool Search(std::string_view text, size_t from, bool anchored, size_t* start, size_t* end) const;

  // Whether the pattern matches starting at exactly `offset`.
  bool MatchesAt(std::string_view text, size_t offset) const {
    size_t start = 0;
    size_t end = 0;
    return Search(text, offset, /*anchored=*/true, &start, &end);
  }

  // Calls on_match(start, end) for every match, iterating like the onig
  // crate's find_iter: an empty match that ends where the previous match
  // ended is skipped by stepping one character.
  template <typename OnMatch>
  void ForEachMatch(std::string_view text, OnMatch&& on_match) const {
    size_t last_end = 0;
    bool have_last = false;
    size_t last_match_end = 0;
    size_t start = 0;
    size_t end = 0;
    while (last_end <= text.size() && Search(text, last_end, /*anchored=*/false, &start, &end)) {
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

 private:
  struct Compiled;  // the engine's pattern
  std::unique_ptr<Compiled> compiled_;
};

// The PCRE2 pattern with the meaning Oniguruma gives `pattern`, or Error
// "where: regex ...: ... is not supported" for constructs that have none.
// Exposed for tests.
std::string OnigurumaToPcre2(std::string_view pattern, const std::string& where);

}  // namespace tokenizer_internal
}  // namespace promptsweep
