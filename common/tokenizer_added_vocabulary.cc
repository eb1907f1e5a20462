#include "common/tokenizer_added_vocabulary.h"

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "common/tokenizer_bpe.h"
#include "common/tokenizer_regex.h"
#include "common/tokenizer_utf8.h"

// Behaviour reference: huggingface/tokenizers tokenizer/added_vocabulary.rs
// (add_tokens, find_matches, split_with_indices).

namespace promptsweep {
namespace tokenizer_internal {

void AddedTokenTrie::Add(std::string_view content, int token_index) {
  PS_CHECK(!content.empty());
  int32_t node = -1;  // the root
  for (const char c : content) node = AddChild(node, static_cast<unsigned char>(c));
  nodes_[node].token = token_index;
}

bool AddedTokenTrie::FindNext(std::string_view text, size_t from, size_t* start, size_t* end, int* token) const {
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

int32_t AddedTokenTrie::AddChild(int32_t node, unsigned char byte) {
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

int32_t AddedTokenTrie::FindChild(int32_t node, unsigned char byte) const {
  if (node < 0) return root_[byte];
  for (const auto& [b, child] : nodes_[node].children) {
    if (b == byte) return child;
  }
  return -1;
}

// The classes are what Rust's regex crate means by Unicode \w and \s.
AddedVocabulary::AddedVocabulary()
    : word_char_(std::make_unique<Regex>("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]",
                                         RegexSyntax::kOniguruma, "built-in added-token pattern")),
      white_space_(std::make_unique<Regex>("\\p{White_Space}", RegexSyntax::kOniguruma,
                                           "built-in added-token pattern")) {}

AddedVocabulary::~AddedVocabulary() = default;

void AddedVocabulary::Load(const JsonNode& list, const BpeModel& model) {
  if (list.IsNull()) return;
  // Ids are assigned as AddedVocabulary::add_tokens does; the file's ids must agree.
  int64_t max_added = -1;  // over every added token so far, as added_tokens_map
  for (size_t i = 0; i < list.Array().size(); ++i) {
    const JsonNode entry = list.At(i);
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
    if (by_content_.count(token.content) > 0) entry.Fail(StrCat("duplicate added token ", JsonQuoted(token.content)));
    int64_t id = 0;
    const std::optional<int32_t> model_id = model.TokenToId(token.content);
    if (model_id) {
      id = *model_id;
    } else {
      const int64_t vocab_size = model.Count();
      id = max_added < 0 ? vocab_size : (max_added >= vocab_size || vocab_size == 0) ? max_added + 1 : vocab_size;
      if (id > std::numeric_limits<int32_t>::max()) entry.Fail("no id left below 2^31");
      if (const std::string* taken = model.IdToToken(static_cast<int32_t>(id))) {
        entry.Fail(StrCat("tokenizers would give ", JsonQuoted(token.content), " id ", id, ", which model.vocab uses for ",
                          JsonQuoted(*taken), " (model.vocab ids have gaps)"));
      }
    }
    max_added = std::max(max_added, id);
    if (file_id != id) {
      entry.Fail(StrCat("id ", file_id, " for ", JsonQuoted(token.content), " but tokenizers would assign ", id,
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

void AddedVocabulary::Extract(std::string_view text,
                              const std::function<void(std::string_view part, int32_t id)>& on_split) const {
  FindMatches(raw_, text, [&](std::string_view part, int32_t id) {
    if (id >= 0) {
      on_split(part, id);
    } else {
      FindMatches(normalized_, part, on_split);
    }
  });
}

const AddedToken* AddedVocabulary::ById(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::IdOf(std::string_view content) const {
  const auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return tokens_[it->second].id;
}

int64_t AddedVocabulary::MaxIdPlusOne() const {
  int64_t max = 0;
  for (const AddedToken& token : tokens_) max = std::max<int64_t>(max, token.id + 1);
  return max;
}

void AddedVocabulary::FindMatches(const AddedTokenTrie& trie, std::string_view sentence,
                                  const std::function<void(std::string_view, int32_t)>& on_split) const {
  if (sentence.empty()) return;
  if (trie.empty()) {
    on_split(sentence, -1);
    return;
  }
  size_t start_offset = 0;
  size_t search_from = 0;
  size_t match_start = 0;
  size_t match_end = 0;
  int index = -1;
  while (trie.FindNext(sentence, search_from, &match_start, &match_end, &index)) {
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

bool AddedVocabulary::EndsWithWord(std::string_view s) const {
  return !s.empty() && word_char_->MatchesAt(s, PreviousCharStart(s, s.size()));
}

bool AddedVocabulary::StartsWithWord(std::string_view s) const { return !s.empty() && word_char_->MatchesAt(s, 0); }

size_t AddedVocabulary::SpaceLeftmostAtEnd(std::string_view s) const {
  size_t start = s.size();
  while (start > 0) {
    const size_t previous = PreviousCharStart(s, start);
    if (!white_space_->MatchesAt(s, previous)) break;
    start = previous;
  }
  return start;
}

size_t AddedVocabulary::SpaceRightmostAtStart(std::string_view s) const {
  size_t end = 0;
  while (end < s.size() && white_space_->MatchesAt(s, end)) end += CharLength(s, end);
  return end;
}

}  // namespace tokenizer_internal
}  // namespace promptsweep
