// The BPE model of tokenizer.json: vocabulary, merges and their ranks, and a
// cache of encoded pre-tokens. Byte-level only: a pre-token's bytes start as
// the ids of their GPT-2 alphabet characters.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/json_util.h"

namespace promptsweep {
namespace tokenizer_internal {

// (left id, right id) -> (rank, merged id), open addressing: the merge loop
// looks pairs up constantly and std::unordered_map is several times slower.
// Not thread-safe to fill; Find is safe once filled.
class MergeTable {
 public:
  struct Entry {
    uint64_t key;
    uint32_t rank;
    int32_t merged;
  };

  // Sizes the table for `count` pairs; must precede InsertOrAssign.
  void Reserve(size_t count);
  // A repeated pair keeps the last rank and merged id given.
  void InsertOrAssign(int32_t left, int32_t right, uint32_t rank, int32_t merged);
  const Entry* Find(int32_t left, int32_t right) const;

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
// instead; either keeps memory bounded). Thread-safe.
class IdCache {
 public:
  static constexpr size_t kMaxKeyLength = 256;  // as tokenizers' BPE cache

  explicit IdCache(size_t capacity);

  // Appends the cached ids of `key` to `out`; false if absent.
  bool Lookup(std::string_view key, std::vector<int32_t>* out) const;
  // Caches [begin, end) for `key` (at most kMaxKeyLength bytes).
  void Insert(std::string_view key, const int32_t* begin, const int32_t* end) const;

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
    Slot* Find(std::string_view key, uint64_t hash);

    std::mutex mutex;
    std::vector<Slot> slots;  // twice the capacity, so probes stay short
    std::vector<char> arena;  // key bytes, then the ids, per entry
    size_t count = 0;
  };

  static uint64_t Hash(std::string_view key);

  size_t shard_capacity_;
  mutable std::array<Shard, kShards> shards_;
};

// Byte-level BPE over raw bytes: each byte starts as the id of its alphabet
// character; merges apply in rank order, leftmost first (tokenizers'
// models/bpe/word.rs merge_all). Immutable after loading; thread-safe.
class BpeModel {
 public:
  // `node` is tokenizer.json's "model"; errors name its JSON path.
  explicit BpeModel(const JsonNode& node);

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The token of `id`, or null.
  const std::string* IdToToken(int32_t id) const;
  int64_t MaxIdPlusOne() const { return int64_t{max_id_} + 1; }
  // What tokenizers calls the vocabulary size: the number of entries.
  int64_t Count() const { return static_cast<int64_t>(token_to_id_.size()); }

  // Appends the ids of one pre-token (raw bytes; the model sees them through
  // the byte alphabet).
  void Tokenize(std::string_view piece, std::vector<int32_t>* out) const;

 private:
  static constexpr size_t kCacheCapacity = 100000;

  void LoadVocab(const JsonNode& vocab);
  void LoadMerges(const JsonNode& merges);
  void TokenizeUncached(std::string_view piece, std::vector<int32_t>* out) const;

  std::unordered_map<std::string, int32_t> token_to_id_;
  // A map, not a vector: ids may be sparse, and a stray id near 2^31 must not
  // allocate gigabytes.
  std::unordered_map<int32_t, std::string> id_to_token_;
  int32_t max_id_ = -1;
  std::array<int32_t, 256> byte_ids_;  // -1 where the byte's character is not in the vocab
  MergeTable merges_;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  IdCache cache_;
};

}  // namespace tokenizer_internal
}  // namespace promptsweep
