#include "worker/model_cache.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/job.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::ErrorOf;
using test::HasText;

std::string DataPath(const std::string& relative) { return std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/" + relative; }

ModelSpec Spec(const std::string& model, const std::string& dtype = "float32") {
  ModelSpec spec;
  spec.model_dir = DataPath("models/" + model);
  spec.dtype = dtype;
  return spec;
}

// The three tiny checkpoints of tests/data/models: three distinct cache entries.
class ModelCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { torch::set_num_threads(1); }

  // A cache with a budget that holds `models` of the largest tiny model, and
  // the warnings it gave.
  std::unique_ptr<ModelCache> CacheFor(double models) {
    int64_t largest = 0;
    for (const char* name : {"tiny-llama", "tiny-gpt2", "tiny-llama3-scaled"}) {
      largest = std::max(largest, LoadModel(Spec(name)).bytes);
    }
    ModelCache::Options options;
    options.memory_budget_bytes = static_cast<int64_t>(models * static_cast<double>(largest));
    options.warn = [this](const std::string& message) { warnings_.push_back(message); };
    return std::make_unique<ModelCache>(options);
  }

  static std::vector<std::string> Dirs(const ModelCache& cache) {
    std::vector<std::string> dirs;
    for (const ModelCacheKey& key : cache.LoadedKeys()) dirs.push_back(key.model_key.substr(0, key.model_key.find('|')));
    return dirs;
  }

  std::vector<std::string> warnings_;
};

TEST_F(ModelCacheTest, LoadModelCountsTheWeightsBytes) {
  const LoadedModel loaded = LoadModel(Spec("tiny-llama"));
  ASSERT_NE(loaded.model, nullptr);
  ASSERT_NE(loaded.tokenizer, nullptr);
  // float32: 4 bytes per parameter, tied embeddings counted once.
  EXPECT_EQ(loaded.bytes, loaded.model->NumParameters() * 4);
  EXPECT_EQ(LoadModel(Spec("tiny-llama", "bfloat16")).bytes, loaded.model->NumParameters() * 2);
}

TEST_F(ModelCacheTest, KeyIsTheJobsModelKeyAndTheDevice) {
  const ModelSpec spec = Spec("tiny-llama", "bfloat16");
  const SettingList settings = {{"model", spec.model_dir}, {"dtype", "bfloat16"}, {"learning_rate", "0.3"}};
  EXPECT_EQ(ModelCacheKeyOf(spec).model_key, ModelKey(settings));
  EXPECT_EQ(ModelCacheKeyOf(spec).device, "cpu");
}

TEST_F(ModelCacheTest, SecondGetSharesTheLoadedModel) {
  ModelCache cache(ModelCache::Options{});
  const auto first = cache.Get(Spec("tiny-llama"));
  const auto second = cache.Get(Spec("tiny-llama"));
  EXPECT_EQ(first.get(), second.get());
  EXPECT_EQ(cache.loads(), 1);
  EXPECT_EQ(cache.bytes(), first->bytes);
  // Another dtype is another model.
  const auto bf16 = cache.Get(Spec("tiny-llama", "bfloat16"));
  EXPECT_NE(bf16.get(), first.get());
  EXPECT_EQ(bf16->model->dtype(), torch::kBFloat16);
  EXPECT_EQ(cache.loads(), 2);
  EXPECT_EQ(cache.LoadedKeys().size(), 2u);
  // Most recently used first.
  EXPECT_EQ(cache.LoadedKeys().front(), ModelCacheKeyOf(Spec("tiny-llama", "bfloat16")));
}

TEST_F(ModelCacheTest, ConcurrentGetsOfOneModelLoadItOnce) {
  ModelCache cache(ModelCache::Options{});
  std::vector<std::shared_ptr<const LoadedModel>> got(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&cache, &got, i] { got[i] = cache.Get(Spec("tiny-gpt2")); });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(cache.loads(), 1);
  for (const auto& model : got) EXPECT_EQ(model.get(), got.front().get());
}

TEST_F(ModelCacheTest, OverBudgetEvictsTheLeastRecentlyUsedIdleModel) {
  const auto cache = CacheFor(2.5);  // room for two
  cache->Get(Spec("tiny-llama"));
  cache->Get(Spec("tiny-gpt2"));
  cache->Get(Spec("tiny-llama"));  // now tiny-gpt2 is the least recently used
  cache->Get(Spec("tiny-llama3-scaled"));
  EXPECT_EQ(Dirs(*cache), (std::vector<std::string>{DataPath("models/tiny-llama3-scaled"),
                                                     DataPath("models/tiny-llama")}));
  EXPECT_EQ(cache->loads(), 3);
  EXPECT_TRUE(warnings_.empty());
  // The evicted one loads again.
  cache->Get(Spec("tiny-gpt2"));
  EXPECT_EQ(cache->loads(), 4);
  EXPECT_EQ(Dirs(*cache).size(), 2u);
}

TEST_F(ModelCacheTest, ModelsInUseStayAndTheLoadGoesAheadWithAWarning) {
  const auto cache = CacheFor(1.5);  // room for one
  const auto running = cache->Get(Spec("tiny-llama"));  // held, as a running job does
  const auto other = cache->Get(Spec("tiny-gpt2"));
  EXPECT_EQ(cache->LoadedKeys().size(), 2u);
  EXPECT_EQ(cache->bytes(), running->bytes + other->bytes);
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_TRUE(HasText(warnings_[0], "over the memory budget"));
  EXPECT_TRUE(HasText(warnings_[0], "tiny-gpt2"));
  EXPECT_EQ(cache->Get(Spec("tiny-llama")).get(), running.get());
  EXPECT_EQ(cache->loads(), 2);
}

TEST_F(ModelCacheTest, ReleasedModelsAreEvictedOldestFirst) {
  const auto cache = CacheFor(1.5);
  {
    const auto held = cache->Get(Spec("tiny-llama"));
    cache->Get(Spec("tiny-gpt2"));  // over budget while tiny-llama runs
  }
  warnings_.clear();
  cache->Get(Spec("tiny-llama3-scaled"));  // both idle now: both go
  EXPECT_EQ(Dirs(*cache), std::vector<std::string>{DataPath("models/tiny-llama3-scaled")});
  EXPECT_TRUE(warnings_.empty());
}

TEST_F(ModelCacheTest, ZeroBudgetIsUnlimited) {
  ModelCache cache(ModelCache::Options{});
  for (const char* name : {"tiny-llama", "tiny-gpt2", "tiny-llama3-scaled"}) cache.Get(Spec(name));
  EXPECT_EQ(cache.LoadedKeys().size(), 3u);
}

TEST_F(ModelCacheTest, FailedLoadNamesThePathAndCachesNothing) {
  ModelCache cache(ModelCache::Options{});
  ModelSpec missing = Spec("no-such-model");
  EXPECT_TRUE(HasText(ErrorOf([&] { cache.Get(missing); }), DataPath("models/no-such-model") + ": not a model directory"));
  EXPECT_TRUE(cache.LoadedKeys().empty());
  EXPECT_EQ(cache.bytes(), 0);
  ModelSpec no_tokenizer = Spec("tiny-llama");
  no_tokenizer.tokenizer = DataPath("models/none.json");
  EXPECT_TRUE(HasText(ErrorOf([&] { cache.Get(no_tokenizer); }), "none.json: no tokenizer"));
  EXPECT_EQ(cache.bytes(), 0);
  ModelSpec bad_dtype = Spec("tiny-llama", "int3");
  EXPECT_TRUE(HasText(ErrorOf([&] { cache.Get(bad_dtype); }), "int3"));
  EXPECT_NE(cache.Get(Spec("tiny-llama")), nullptr);
}

TEST_F(ModelCacheTest, DefaultBudgetIsMostOfTheMemory) {
  const int64_t budget = DefaultModelMemoryBudget();
  EXPECT_GT(budget, int64_t{256} << 20);
}

TEST(TaskDataCacheTest, TokenizesEachFileOncePerSpecAndTokenizer) {
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::FromFile(DataPath("models/tiny-llama/tokenizer.json"));
  const TaskSpec spec = test::ToyAnimalsSpec();
  const std::string train = DataPath("tasks/toy_animals_train.jsonl");
  const std::string dev = DataPath("tasks/toy_animals_dev.jsonl");
  TaskDataCache cache(/*capacity=*/2);
  const auto first = cache.Get(train, spec, "llama", *tokenizer);
  EXPECT_EQ(first->examples.size(), 96u);
  EXPECT_EQ(cache.Get(train, spec, "llama", *tokenizer).get(), first.get());
  EXPECT_EQ(cache.loads(), 1);
  // Another tokenizer or another template: tokenized again.
  cache.Get(train, spec, "other", *tokenizer);
  EXPECT_EQ(cache.loads(), 2);
  TaskSpec other = spec;
  other.template_text = "{text}:";
  cache.Get(train, other, "llama", *tokenizer);
  EXPECT_EQ(cache.loads(), 3);
  // Capacity 2: the first entry is gone, the two most recent stay.
  cache.Get(train, spec, "llama", *tokenizer);
  EXPECT_EQ(cache.loads(), 4);
  cache.Get(train, other, "llama", *tokenizer);
  EXPECT_EQ(cache.loads(), 4);
  cache.Get(dev, spec, "llama", *tokenizer);
  EXPECT_EQ(cache.loads(), 5);
  EXPECT_TRUE(HasText(ErrorOf([&] { cache.Get(DataPath("tasks/missing.jsonl"), spec, "llama", *tokenizer); }),
                      "missing.jsonl"));
}

}  // namespace
}  // namespace promptsweep
