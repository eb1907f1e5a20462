// Byte-level BPE vocabulary training, equivalent to Hugging Face tokenizers'
// BpeTrainer behind a ByteLevel pre-tokenizer (GPT-2 style: use_regex=true,
// add_prefix_space=false, initial_alphabet = the 256 byte symbols), i.e. what
//   tok = Tokenizer(BPE()); tok.pre_tokenizer = ByteLevel(add_prefix_space=False)
//   tok.train(files, BpeTrainer(vocab_size=..., min_frequency=...,
//             special_tokens=[...], initial_alphabet=ByteLevel.alphabet()))
// produces. The merge loop follows tokenizers/src/models/bpe/trainer.rs
// (do_train) step by step, quirks included, so the merges come out the same.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace promptsweep {

struct BpeTrainerOptions {
  // Final vocabulary size, counting the special tokens and the 256 byte
  // symbols. Training stops there, or earlier when no pair is frequent enough.
  int64_t vocab_size = 4096;
  // A pair must occur this often (in the counted words) to become a merge.
  uint64_t min_frequency = 2;
  // Ids 0, 1, ... in this order; written as special added tokens.
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
};

// A trained BPE model.
struct BpeModelData {
  std::vector<std::string> vocab;                          // token of each id
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<std::string> special_tokens;                  // ids 0..n-1 of vocab
};

// Word (one pre-token, as a string of the model's characters) -> occurrences.
using WordCounts = std::unordered_map<std::string, uint64_t>;

// tokenizers' BpeTrainer::do_train on counted words: ids go to the special
// tokens, then to `initial_alphabet` plus every character of the words (one
// UTF-8 character each, sorted by code point), then one per new merged token.
// Exposed for tests that replay tokenizers' own trainer tests. Throws Error
// for an empty special token.
BpeModelData TrainBpe(const WordCounts& words, const std::vector<std::string>& initial_alphabet,
                      const BpeTrainerOptions& options);

// Counts the ByteLevel words of training text, then trains on them. Each
// AddText call is one sequence; AddFile feeds a file line by line with the
// line endings kept, as tokenizers' train_from_files does. Not thread-safe.
class ByteLevelBpeTrainer {
 public:
  // Throws Error if vocab_size cannot hold the byte symbols and special tokens
  // (the message gives the minimum) or a special token is empty.
  explicit ByteLevelBpeTrainer(BpeTrainerOptions options);

  // Throws Error if `text` is not valid UTF-8 (the byte offset is given).
  void AddText(std::string_view text);
  // Streams `path`; throws Error naming the file (and line, for bad UTF-8).
  void AddFile(const std::string& path);

  // Throws Error if no words were added.
  BpeModelData Train() const;

  // Word (raw bytes) -> occurrences, over everything added so far.
  const WordCounts& word_counts() const { return word_counts_; }
  uint64_t total_words() const { return total_words_; }
  uint64_t total_bytes() const { return total_bytes_; }

  // vocab_size floor for `special_tokens`: 256 + the distinct tokens that are
  // not themselves byte symbols.
  static int64_t MinimumVocabSize(const std::vector<std::string>& special_tokens);

 private:
  BpeTrainerOptions options_;
  WordCounts word_counts_;
  uint64_t total_words_ = 0;
  uint64_t total_bytes_ = 0;
};

// The 256 byte symbols of GPT-2's ByteLevel alphabet ("!", ..., "Ġ", ...).
std::vector<std::string> ByteLevelAlphabet();

// tokenizer.json for a model trained by ByteLevelBpeTrainer, laid out as
// tokenizers' Tokenizer.save writes it (ByteLevel pre-tokenizer,
// post-processor and decoder; merges as [left, right] pairs).
std::string ByteLevelTokenizerJson(const BpeModelData& model);

}  // namespace promptsweep
