// The added_tokens of tokenizer.json (special tokens such as <|endoftext|>):
// found in the text before pre-tokenization, with tokenizers' lstrip, rstrip
// and single_word rules.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/json_util.h"

namespace promptsweep {
namespace tokenizer_internal {

class BpeModel;
class Regex;

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// Leftmost-longest matching of a set of strings (tokenizers builds an
// Aho-Corasick automaton with MatchKind::LeftmostLongest; a byte trie gives
// the same matches for the few hundred tokens models have). Not thread-safe
// to fill; FindNext is safe once filled.
class AddedTokenTrie {
 public:
  AddedTokenTrie() { root_.fill(-1); }

  bool empty() const { return nodes_.empty(); }

  // Adds non-empty `content`, reported as `token_index` when found.
  void Add(std::string_view content, int token_index);

  // First match at or after `from`, the longest among those starting there:
  // true with [*start, *end) and its token index, or false.
  bool FindNext(std::string_view text, size_t from, size_t* start, size_t* end, int* token) const;

 private:
  struct TrieNode {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int token = -1;
  };

  int32_t AddChild(int32_t node, unsigned char byte);
  int32_t FindChild(int32_t node, unsigned char byte) const;  // node -1 is the root

  std::array<int32_t, 256> root_;
  std::vector<TrieNode> nodes_;
};

// The added vocabulary: the token table plus the two tries tokenizers keeps
// (tokens matched on the raw text first, then "normalized" ones; with a null
// normalizer both see the same text, only the order differs). Immutable after
// Load; thread-safe.
class AddedVocabulary {
 public:
  AddedVocabulary();
  ~AddedVocabulary();

  // Reads tokenizer.json's "added_tokens" (null: none). Ids must be the ones
  // tokenizers assigns against `model`; errors name the JSON path.
  void Load(const JsonNode& list, const BpeModel& model);

  // Splits `text` into plain text and added tokens, calling on_split(part, id)
  // in order with id -1 for plain text (AddedVocabulary::extract_and_normalize
  // with a null normalizer). Empty parts are never reported.
  void Extract(std::string_view text, const std::function<void(std::string_view part, int32_t id)>& on_split) const;

  const AddedToken* ById(int32_t id) const;
  std::optional<int32_t> IdOf(std::string_view content) const;
  bool IsSpecialContent(const std::string& content) const { return special_contents_.count(content) > 0; }
  int64_t MaxIdPlusOne() const;

 private:
  // AddedVocabulary::find_matches for one trie.
  void FindMatches(const AddedTokenTrie& trie, std::string_view sentence,
                   const std::function<void(std::string_view, int32_t)>& on_split) const;

  // Rust regex \w and \s (Unicode) on the character before / after a cut.
  bool EndsWithWord(std::string_view s) const;
  bool StartsWithWord(std::string_view s) const;
  size_t SpaceLeftmostAtEnd(std::string_view s) const;
  size_t SpaceRightmostAtStart(std::string_view s) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, size_t> by_content_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_set<std::string> special_contents_;
  AddedTokenTrie raw_;
  AddedTokenTrie normalized_;
  std::unique_ptr<Regex> word_char_;
  std::unique_ptr<Regex> white_space_;
};

}  // namespace tokenizer_internal
}  // namespace promptsweep
