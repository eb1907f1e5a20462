#include "common/tokenizer_bpe.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "test_utils.h"
#include "common/tokenizer_utf8.h"

namespace promptsweep {
namespace tokenizer_internal {
namespace {

using Ids = std::vector<int32_t>;

TEST(MergeTableTest, FindsPairsAndKeepsTheLastRank) {
  MergeTable table;
  EXPECT_EQ(table.Find(1, 2), nullptr);  // unreserved: empty
  table.Reserve(3);
  table.InsertOrAssign(1, 2, /*rank=*/0, /*merged=*/10);
  table.InsertOrAssign(2, 1, /*rank=*/1, /*merged=*/11);
  table.InsertOrAssign(1, 2, /*rank=*/2, /*merged=*/12);
  const MergeTable::Entry* entry = table.Find(1, 2);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->rank, 2u);
  EXPECT_EQ(entry->merged, 12);
  ASSERT_NE(table.Find(2, 1), nullptr);
  EXPECT_EQ(table.Find(2, 1)->merged, 11);
  EXPECT_EQ(table.Find(2, 2), nullptr);
}

TEST(IdCacheTest, LookupAppendsAndFullShardsClear) {
  const IdCache cache(/*capacity=*/16 * 16);  // 16 entries per shard
  const Ids ids{7, 8, 9};
  Ids out{1};
  EXPECT_FALSE(cache.Lookup("abc", &out));
  cache.Insert("abc", ids.data(), ids.data() + ids.size());
  ASSERT_TRUE(cache.Lookup("abc", &out));
  EXPECT_EQ(out, (Ids{1, 7, 8, 9}));
  // Far more keys than fit: memory stays bounded and whatever is found is right.
  for (int i = 0; i < 2000; ++i) {
    const std::string key = "k" + std::to_string(i);
    const int32_t id = i;
    cache.Insert(key, &id, &id + 1);
    Ids found;
    ASSERT_TRUE(cache.Lookup(key, &found));
    EXPECT_EQ(found, Ids{i});
  }
}

// Vocabulary: the 256 byte characters (id = byte) plus `extra`.
nlohmann::json Model(const nlohmann::json& extra, const nlohmann::json& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteAlphabet::Get().CharOf(static_cast<unsigned char>(b))] = b;
  for (const auto& [token, id] : extra.items()) vocab[token] = id;
  return {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
}

TEST(BpeModelTest, MergesByRankThenLeftmost) {
  const nlohmann::json json = Model({{"aa", 256}, {"aaa", 257}, {"\xC4\xA0" "a", 258}},
                                    {"a a", "aa a", nlohmann::json::array({"\xC4\xA0", "a"})});
  const BpeModel model(JsonNode(json, "model"));
  EXPECT_EQ(model.Count(), 259);
  EXPECT_EQ(model.MaxIdPlusOne(), 259);
  EXPECT_EQ(model.TokenToId("aaa"), 257);
  ASSERT_NE(model.IdToToken(258), nullptr);
  EXPECT_EQ(*model.IdToToken(258), "\xC4\xA0" "a");
  for (int pass = 0; pass < 2; ++pass) {  // the second pass hits the cache
    Ids ids;
    model.Tokenize("aaaa", &ids);
    model.Tokenize(" a", &ids);
    EXPECT_EQ(ids, (Ids{256, 256, 258}));  // (aa)(aa): a+a (rank 0) everywhere first
  }
}

TEST(BpeModelTest, ErrorsNameTheJsonPath) {
  const nlohmann::json root = {{"model", Model({{"ab", 256}}, {"a b", "a c"})}};
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { BpeModel(JsonNode(root, "tokenizer.json").Child("model")); }),
                            "tokenizer.json: model.merges[1]: token \"ac\" is not in model.vocab"));
}

}  // namespace
}  // namespace tokenizer_internal
}  // namespace promptsweep
