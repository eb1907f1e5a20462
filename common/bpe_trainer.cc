#include "common/bpe_trainer.h"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/file_util.h"
#include "common/tokenizer.h"

// Reference: huggingface/tokenizers, tokenizers/src/models/bpe/trainer.rs
// (BpeTrainer::do_train, Merge's Ord), models/bpe/word.rs (Word::merge) and
// tokenizer/mod.rs (train_from_files reads lines with their endings).

namespace promptsweep {
namespace {

using Pair = uint64_t;  // (left id << 32) | right id: orders as tokenizers' (u32, u32)

Pair MakePair(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int32_t Left(Pair pair) { return static_cast<int32_t>(pair >> 32); }
int32_t Right(Pair pair) { return static_cast<int32_t>(pair & 0xFFFFFFFFu); }

// A queue entry: a pair, its count when queued, and the words to merge it in.
// tokenizers keeps several entries for one pair when new occurrences appear
// after it was queued; each merges only its own words.
struct Candidate {
  int64_t count;
  Pair pair;
  std::vector<int32_t> words;  // distinct word indices
};

// Heap order of tokenizers' Merge: the higher count first, then the smaller
// pair (left id, then right id).
bool RanksBelow(const Candidate& a, const Candidate& b) {
  if (a.count != b.count) return a.count < b.count;
  return a.pair > b.pair;
}

struct PairChange {
  Pair pair;
  int delta;
};

// Word::merge: replaces every (left, right), left to right without overlap,
// with `merged`, and appends the pair-count changes in tokenizers' order.
// (The merged pair itself is not decremented; tokenizers does not either.)
void MergeWord(std::vector<int32_t>* symbols, int32_t left, int32_t right, int32_t merged,
               std::vector<PairChange>* changes) {
  std::vector<int32_t>& s = *symbols;
  size_t out = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == left && i + 1 < s.size() && s[i + 1] == right) {
      if (out > 0) {
        changes->push_back({MakePair(s[out - 1], left), -1});
        changes->push_back({MakePair(s[out - 1], merged), 1});
      }
      if (i + 2 < s.size()) {
        changes->push_back({MakePair(right, s[i + 2]), -1});
        changes->push_back({MakePair(merged, s[i + 2]), 1});
      }
      s[out++] = merged;
      i += 2;
    } else {
      s[out++] = s[i++];
    }
  }
  s.resize(out);
}

// Byte length of the UTF-8 character whose first byte is `c`.
size_t Utf8Length(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

// Adds `word` for (left << 32 | right) in `where`, once per word: words are
// processed one at a time, so a repeat is always the last element.
void AddWord(std::unordered_map<Pair, std::vector<int32_t>>* where, Pair pair, int32_t word) {
  std::vector<int32_t>& list = (*where)[pair];
  if (list.empty() || list.back() != word) list.push_back(word);
}

// Queues one entry per pair of `where` whose count is positive, in pair order
// (tokenizers drains a HashMap here; only entries with equal count and pair,
// which differ in nothing the order could change, depend on it).
void QueueCandidates(std::unordered_map<Pair, std::vector<int32_t>>* where,
                     const std::unordered_map<Pair, int64_t>& pair_counts, std::vector<Candidate>* queue) {
  std::vector<Pair> pairs;
  pairs.reserve(where->size());
  for (const auto& entry : *where) pairs.push_back(entry.first);
  std::sort(pairs.begin(), pairs.end());
  for (const Pair pair : pairs) {
    const int64_t count = pair_counts.at(pair);
    if (count > 0) {
      queue->push_back({count, pair, std::move((*where)[pair])});
      std::push_heap(queue->begin(), queue->end(), RanksBelow);
    }
  }
  where->clear();
}

}  // namespace

BpeModelData TrainBpe(const WordCounts& words, const std::vector<std::string>& initial_alphabet,
                      const BpeTrainerOptions& options) {
  std::unordered_map<std::string, int32_t> token_to_id;
  std::vector<std::string> tokens;
  const auto add_token = [&](const std::string& token) {
    if (token_to_id.emplace(token, static_cast<int32_t>(tokens.size())).second) tokens.push_back(token);
  };

  // 1. Special tokens.
  BpeModelData model;
  for (const std::string& special : options.special_tokens) {
    if (special.empty()) throw Error("special tokens must not be empty");
    if (token_to_id.count(special) == 0) model.special_tokens.push_back(special);
    add_token(special);
  }

  // 2. The alphabet, sorted by code point (byte order of UTF-8 is code point order).
  std::set<std::string> alphabet(initial_alphabet.begin(), initial_alphabet.end());
  for (const auto& [word, count] : words) {
    for (size_t i = 0; i < word.size();) {
      const size_t n = Utf8Length(static_cast<unsigned char>(word[i]));
      PS_CHECK(i + n <= word.size(), "truncated UTF-8 character in a training word");
      alphabet.insert(word.substr(i, n));
      i += n;
    }
  }
  for (const std::string& c : alphabet) add_token(c);

  // 3. Words as symbol ids. Sorted so that the result never depends on hash order.
  std::vector<const std::pair<const std::string, uint64_t>*> sorted_words;
  sorted_words.reserve(words.size());
  for (const auto& entry : words) sorted_words.push_back(&entry);
  std::sort(sorted_words.begin(), sorted_words.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  std::vector<std::vector<int32_t>> symbols(sorted_words.size());
  std::vector<int64_t> counts(sorted_words.size());
  for (size_t w = 0; w < sorted_words.size(); ++w) {
    const std::string& word = sorted_words[w]->first;
    counts[w] = static_cast<int64_t>(sorted_words[w]->second);
    for (size_t i = 0; i < word.size();) {
      const size_t n = Utf8Length(static_cast<unsigned char>(word[i]));
      symbols[w].push_back(token_to_id.at(word.substr(i, n)));
      i += n;
    }
  }

  // 4. Pair counts and where each pair occurs.
  std::unordered_map<Pair, int64_t> pair_counts;
  std::unordered_map<Pair, std::vector<int32_t>> where;
  for (size_t w = 0; w < symbols.size(); ++w) {
    for (size_t i = 0; i + 1 < symbols[w].size(); ++i) {
      const Pair pair = MakePair(symbols[w][i], symbols[w][i + 1]);
      pair_counts[pair] += counts[w];
      AddWord(&where, pair, static_cast<int32_t>(w));
    }
  }
  std::vector<Candidate> queue;
  queue.reserve(where.size());
  QueueCandidates(&where, pair_counts, &queue);

  // 5. Merges: the most frequent pair, lazily re-queued when its count went stale.
  std::vector<std::pair<Pair, int32_t>> merges;
  std::vector<PairChange> changes;
  while (static_cast<int64_t>(token_to_id.size()) < options.vocab_size && !queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), RanksBelow);
    Candidate top = std::move(queue.back());
    queue.pop_back();
    const int64_t count = pair_counts.at(top.pair);
    if (top.count != count) {
      top.count = count;
      queue.push_back(std::move(top));
      std::push_heap(queue.begin(), queue.end(), RanksBelow);
      continue;
    }
    if (top.count < 1 || static_cast<int64_t>(options.min_frequency) > top.count) break;

    // tokens grows below, so copy the parts before add_token may reallocate.
    const std::string merged_token = tokens[Left(top.pair)] + tokens[Right(top.pair)];
    add_token(merged_token);  // may already exist: ("ab","c") and ("a","bc") make one token
    const int32_t merged = token_to_id.at(merged_token);
    merges.emplace_back(top.pair, merged);

    for (const int32_t w : top.words) {
      changes.clear();
      MergeWord(&symbols[w], Left(top.pair), Right(top.pair), merged, &changes);
      for (const PairChange& change : changes) {
        pair_counts[change.pair] += change.delta * counts[w];
        if (change.delta > 0) AddWord(&where, change.pair, w);
      }
    }
    QueueCandidates(&where, pair_counts, &queue);
  }

  // tokenizers keys its merges by pair, so a pair merged twice keeps its last rank.
  std::unordered_map<Pair, size_t> last_rank;
  for (size_t rank = 0; rank < merges.size(); ++rank) last_rank[merges[rank].first] = rank;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Pair pair = merges[rank].first;
    if (last_rank.at(pair) == rank) model.merges.emplace_back(tokens[Left(pair)], tokens[Right(pair)]);
  }
  model.vocab = std::move(tokens);
  return model;
}

std::vector<std::string> ByteLevelAlphabet() {
  std::vector<std::string> alphabet;
  alphabet.reserve(256);
  for (int b = 0; b < 256; ++b) alphabet.push_back(ByteLevelChars(std::string(1, static_cast<char>(b))));
  return alphabet;
}

int64_t ByteLevelBpeTrainer::MinimumVocabSize(const std::vector<std::string>& special_tokens) {
  const std::vector<std::string> alphabet = ByteLevelAlphabet();
  std::set<std::string> symbols(alphabet.begin(), alphabet.end());
  symbols.insert(special_tokens.begin(), special_tokens.end());
  return static_cast<int64_t>(symbols.size());
}

ByteLevelBpeTrainer::ByteLevelBpeTrainer(BpeTrainerOptions options) : options_(std::move(options)) {
  for (const std::string& special : options_.special_tokens) {
    if (special.empty()) throw Error("special tokens must not be empty");
  }
  const int64_t minimum = MinimumVocabSize(options_.special_tokens);
  if (options_.vocab_size < minimum) {
    throw Error(StrCat("vocab size ", options_.vocab_size, " is too small: the minimum is ", minimum,
                       " (256 byte symbols + ", minimum - 256, " special token(s)); merges come on top"));
  }
}

void ByteLevelBpeTrainer::AddText(std::string_view text) {
  ForEachByteLevelPiece(text, [this](std::string_view piece) {
    ++word_counts_[std::string(piece)];
    ++total_words_;
  });
  total_bytes_ += text.size();
}

void ByteLevelBpeTrainer::AddFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(StrCat(path, ": cannot open: ", ErrnoText(errno)));
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (!in.eof()) line += '\n';  // keep the ending, as tokenizers' lines_with_ending
    try {
      AddText(line);
    } catch (const Error& e) {
      throw Error(StrCat(path, ":", number, ": ", e.what()));
    }
  }
  if (in.bad()) throw Error(StrCat(path, ": read failed: ", ErrnoText(errno)));
}

BpeModelData ByteLevelBpeTrainer::Train() const {
  if (word_counts_.empty()) throw Error("no text to train on: the input is empty");
  WordCounts words;
  words.reserve(word_counts_.size());
  for (const auto& [bytes, count] : word_counts_) words.emplace(ByteLevelChars(bytes), count);
  return TrainBpe(words, ByteLevelAlphabet(), options_);
}

std::string ByteLevelTokenizerJson(const BpeModelData& model) {
  using Json = nlohmann::ordered_json;  // keys in tokenizers' order, vocab by id
  const Json byte_level_pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                               {"use_regex", true}};
  // GPT-2's tokenizer.json carries these two; they only touch offsets and decoding.
  const Json byte_level_post = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false},
                                {"use_regex", true}};
  const Json byte_level_decoder = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                                   {"use_regex", true}};

  std::unordered_map<std::string, size_t> ids;
  for (size_t id = 0; id < model.vocab.size(); ++id) ids.emplace(model.vocab[id], id);
  Json added = Json::array();
  for (const std::string& special : model.special_tokens) {
    added.push_back({{"id", ids.at(special)}, {"content", special}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  Json vocab = Json::object();
  for (size_t id = 0; id < model.vocab.size(); ++id) vocab[model.vocab[id]] = id;
  Json merges = Json::array();
  for (const auto& [left, right] : model.merges) merges.push_back(Json::array({left, right}));

  Json json = Json::object();
  json["version"] = "1.0";
  json["truncation"] = nullptr;
  json["padding"] = nullptr;
  json["added_tokens"] = std::move(added);
  json["normalizer"] = nullptr;
  json["pre_tokenizer"] = byte_level_pre;
  json["post_processor"] = byte_level_post;
  json["decoder"] = byte_level_decoder;
  json["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", nullptr},
                   {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr},
                   {"fuse_unk", false},
                   {"byte_fallback", false},
                   {"ignore_merges", false},
                   {"vocab", std::move(vocab)},
                   {"merges", std::move(merges)}};
  return json.dump(/*indent=*/2, ' ', /*ensure_ascii=*/false) + "\n";
}

}  // namespace promptsweep
