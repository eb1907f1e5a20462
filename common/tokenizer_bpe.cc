#include "common/tokenizer_bpe.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <queue>

#include "common/error.h"
#include "common/tokenizer_utf8.h"

namespace promptsweep {
namespace tokenizer_internal {
namespace {

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
  bool operator<(const Candidate& other) const { return rank != other.rank ? rank > other.rank : pos > other.pos; }
};

}  // namespace

void MergeTable::Reserve(size_t count) {
  size_t capacity = 16;
  shift_ = 60;
  while (capacity < count * 2) capacity *= 2, --shift_;
  entries_.assign(capacity, Entry{kEmpty, 0, 0});
  mask_ = capacity - 1;
  size_ = 0;
}

void MergeTable::InsertOrAssign(int32_t left, int32_t right, uint32_t rank, int32_t merged) {
  PS_CHECK(!entries_.empty() && size_ * 2 < entries_.size(), "MergeTable not reserved");
  const uint64_t key = Key(left, right);
  size_t slot = Slot(key);
  while (entries_[slot].key != kEmpty && entries_[slot].key != key) slot = (slot + 1) & mask_;
  if (entries_[slot].key == kEmpty) ++size_;
  entries_[slot] = Entry{key, rank, merged};
}

const MergeTable::Entry* MergeTable::Find(int32_t left, int32_t right) const {
  if (entries_.empty()) return nullptr;
  const uint64_t key = Key(left, right);
  for (size_t slot = Slot(key);; slot = (slot + 1) & mask_) {
    if (entries_[slot].key == key) return &entries_[slot];
    if (entries_[slot].key == kEmpty) return nullptr;
  }
}

IdCache::IdCache(size_t capacity) : shard_capacity_(std::max<size_t>(capacity / kShards, 16)) {
  size_t slots = 16;
  while (slots < shard_capacity_ * 2) slots *= 2;
  for (Shard& shard : shards_) shard.slots.assign(slots, Slot{});
}

bool IdCache::Lookup(std::string_view key, std::vector<int32_t>* out) const {
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

void IdCache::Insert(std::string_view key, const int32_t* begin, const int32_t* end) const {
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

IdCache::Slot* IdCache::Shard::Find(std::string_view key, uint64_t hash) {
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

uint64_t IdCache::Hash(std::string_view key) {
  const uint64_t hash = std::hash<std::string_view>()(key);
  return hash == 0 ? 1 : hash;
}

BpeModel::BpeModel(const JsonNode& node) : cache_(kCacheCapacity) {
  const JsonObject fields = node.Object();
  if (fields.Has("type") && fields.String("type") != "BPE") {
    node.Fail(StrCat("unsupported model type ", JsonQuoted(fields.String("type")), " (supported: BPE)"));
  }
  if (fields.Bool("byte_fallback", false)) {
    node.Child("byte_fallback").Fail("byte_fallback true is not supported (byte-level BPE never needs it)");
  }
  if (fields.Has("dropout") && fields.Float("dropout") != 0.0) {
    node.Child("dropout").Fail("BPE dropout is not supported (it makes encoding random); set it to null");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!fields.String(key, "").empty()) {
      node.Child(key).Fail(StrCat(JsonQuoted(fields.String(key)), " is not supported (only empty or null)"));
    }
  }
  ignore_merges_ = fields.Bool("ignore_merges", false);
  fuse_unk_ = fields.Bool("fuse_unk", false);

  LoadVocab(node.Child("vocab"));

  byte_ids_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    const auto it = token_to_id_.find(ByteAlphabet::Get().CharOf(static_cast<unsigned char>(b)));
    if (it != token_to_id_.end()) byte_ids_[b] = it->second;
  }

  if (fields.Has("unk_token")) {
    const std::string unk = fields.String("unk_token");
    const auto it = token_to_id_.find(unk);
    if (it == token_to_id_.end()) node.Child("unk_token").Fail(StrCat(JsonQuoted(unk), " is not in model.vocab"));
    unk_id_ = it->second;
  }

  LoadMerges(node.Child("merges"));
}

void BpeModel::LoadVocab(const JsonNode& vocab) {
  if (!vocab.json().is_object()) vocab.Fail(StrCat("expected an object, found ", DescribeJson(vocab.json())));
  token_to_id_.reserve(vocab.json().size());
  id_to_token_.reserve(vocab.json().size());
  for (const auto& [token, id_json] : vocab.json().items()) {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 ||
        id_json.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      vocab.Fail(StrCat("token ", JsonQuoted(token), ": id must be an integer in [0, 2^31), found ", id_json.dump()));
    }
    const auto id = static_cast<int32_t>(id_json.get<int64_t>());
    if (const auto [it, inserted] = id_to_token_.emplace(id, token); !inserted) {
      vocab.Fail(StrCat("id ", id, " is used by both ", JsonQuoted(it->second), " and ", JsonQuoted(token)));
    }
    token_to_id_.emplace(token, id);
    max_id_ = std::max(max_id_, id);
  }
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  const auto it = token_to_id_.find(std::string(token));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  const auto it = id_to_token_.find(id);
  return it == id_to_token_.end() ? nullptr : &it->second;
}

void BpeModel::Tokenize(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.size() > IdCache::kMaxKeyLength) {
    TokenizeUncached(piece, out);
    return;
  }
  if (cache_.Lookup(piece, out)) return;
  const size_t before = out->size();
  TokenizeUncached(piece, out);
  cache_.Insert(piece, out->data() + before, out->data() + out->size());
}

void BpeModel::LoadMerges(const JsonNode& merges) {
  const nlohmann::json& list = merges.Array();
  merges_.Reserve(list.size());
  std::string first;
  std::string second;
  for (size_t rank = 0; rank < list.size(); ++rank) {
    const JsonNode merge = merges.At(rank);
    if (merge.json().is_string()) {
      const std::string& line = merge.json().get_ref<const std::string&>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        merge.Fail(StrCat(JsonQuoted(line), " must be two tokens separated by one space "
                                        "(use the [\"a\", \"b\"] form for tokens with spaces)"));
      }
      first = line.substr(0, space);
      second = line.substr(space + 1);
    } else if (merge.json().is_array() && merge.json().size() == 2 && merge.json()[0].is_string() &&
               merge.json()[1].is_string()) {
      first = merge.json()[0].get<std::string>();
      second = merge.json()[1].get<std::string>();
    } else {
      merge.Fail(StrCat("expected \"a b\" or [\"a\", \"b\"], found ", merge.json().dump()));
    }
    const auto id_of = [&](const std::string& token) {
      const auto it = token_to_id_.find(token);
      if (it == token_to_id_.end()) merge.Fail(StrCat("token ", JsonQuoted(token), " is not in model.vocab"));
      return it->second;
    };
    const int32_t left = id_of(first);
    const int32_t right = id_of(second);
    const int32_t merged = id_of(first + second);
    // A repeated pair keeps its last rank, as tokenizers' HashMap collect does.
    merges_.InsertOrAssign(left, right, static_cast<uint32_t>(rank), merged);
  }
}

void BpeModel::TokenizeUncached(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    if (const auto it = token_to_id_.find(ByteAlphabet::Get().Encode(piece)); it != token_to_id_.end()) {
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

}  // namespace tokenizer_internal
}  // namespace promptsweep
