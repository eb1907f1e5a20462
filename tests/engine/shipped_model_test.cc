// The shipped base model (models/pico-llama-2.6m, made by
// models/make_base_model.sh) and the real tasks in data/: regression tests of
// what the README states about them.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/task_data.h"
#include "common/tokenizer.h"
#include "test_utils.h"
#include "engine/collective.h"
#include "engine/pretrainer.h"
#include "engine/soft_prompt.h"
#include "engine/train_pack.h"
#include "engine/trainer.h"

namespace promptsweep {
namespace {

// The README's figure (section "The shipped model"): perplexity of the model on
// tests/data/pretrain/heldout_passage.txt (Brown document ca44, never trained
// on), window 128, as `promptsweep perplexity` printed it right after
// models/make_base_model.sh. 1 % of slack for BLAS rounding across machines.
constexpr double kReadmeHeldoutPerplexity = 104.915;

std::string SourcePath(const std::string& relative) { return std::string(PROMPTSWEEP_SOURCE_DIR) + "/" + relative; }

class ShippedModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);  // ctest runs tests side by side on 2 cores
    model_ = CausalLM::Load(SourcePath("models/pico-llama-2.6m"));
    tokenizer_ = Tokenizer::FromFile(SourcePath("models/pico-llama-2.6m/tokenizer.json"));
  }
  static void TearDownTestSuite() {
    model_.reset();
    tokenizer_.reset();
  }

  static TaskSpec SpamSpec() {
    TaskSpec spec;
    spec.kind = TaskKind::kClassification;
    spec.template_text = "{text}\nThis mail is about";  // as data/spam/task.yaml
    spec.verbalizer = {{"spam", " money"}, {"ham", " software"}};
    spec.max_length = 64;
    return spec;
  }

  static TaskSpec GenreSpec() {
    TaskSpec spec;
    spec.kind = TaskKind::kClassification;
    spec.template_text = "{text}\nTopic:";  // as data/genre/task.yaml
    spec.verbalizer = {{"news", " news"}, {"religion", " church"}, {"government", " government"}, {"romance", " love"}};
    spec.max_length = 64;
    return spec;
  }

  // The first `count` examples of `path` (keeps the rank-classification tests to seconds).
  static TaskData DevHead(const std::string& path, const TaskSpec& spec, std::size_t count) {
    TaskData data = LoadTaskData(SourcePath(path), spec, *tokenizer_);
    if (data.examples.size() > count) data.examples.resize(count);
    return data;
  }

  // One-pass rank classification against one row per (example, label): the
  // same accuracy, the loss within 1e-5, with no prompt, a RANDOM and a TEXT one.
  static void ExpectOnePassMatchesPerLabelRows(const TaskData& data) {
    SoftPromptConfig random{/*num_virtual_tokens=*/16, PromptInit::kRandom, ""};
    SoftPromptConfig text{/*num_virtual_tokens=*/12, PromptInit::kText, "Classify the topic of this text:"};
    const std::vector<std::pair<std::string, torch::Tensor>> prompts = {
        {"no prompt", torch::Tensor()},
        {"RANDOM", InitSoftPrompt(*model_, *tokenizer_, random, /*seed=*/1)},
        {"TEXT", InitSoftPrompt(*model_, *tokenizer_, text, /*seed=*/1)}};
    LocalCollective local;
    for (const auto& [name, prompt] : prompts) {
      SCOPED_TRACE(name);
      EvalOptions options;
      options.batch_size = 8;
      const EvalResult one_pass = EvaluatePrompt(*model_, *tokenizer_, prompt, data, options, local);
      options.per_label_rows = true;
      const EvalResult rows = EvaluatePrompt(*model_, *tokenizer_, prompt, data, options, local);
      EXPECT_EQ(one_pass.num_examples, static_cast<int64_t>(data.examples.size()));
      EXPECT_EQ(one_pass.num_target_tokens, rows.num_target_tokens);
      ASSERT_TRUE(one_pass.accuracy && rows.accuracy);
      EXPECT_EQ(*one_pass.accuracy, *rows.accuracy);
      EXPECT_NEAR(one_pass.loss, rows.loss, 1e-5);
    }
  }

  static std::shared_ptr<const CausalLM> model_;
  static std::unique_ptr<Tokenizer> tokenizer_;
};

std::shared_ptr<const CausalLM> ShippedModelTest::model_;
std::unique_ptr<Tokenizer> ShippedModelTest::tokenizer_;

TEST_F(ShippedModelTest, HeldOutPerplexityIsAtMostTheReadmeFigure) {
  const int32_t separator = *tokenizer_->TokenToId("<|endoftext|>");
  const std::vector<int32_t> tokens =
      TokenizeCorpus(SourcePath("tests/data/pretrain/heldout_passage.txt"), *tokenizer_, separator);
  const PerplexityResult result = EvaluatePerplexity(*model_, tokens, /*window=*/128);
  EXPECT_GT(result.tokens, 600);
  EXPECT_LE(result.perplexity, kReadmeHeldoutPerplexity * 1.01);
  // And far from an untrained model, whose perplexity is about the vocabulary size.
  EXPECT_LT(result.perplexity, tokenizer_->VocabSize() / 10.0);
}

TEST_F(ShippedModelTest, TokenizerRoundTripsTheReferenceCorpus) {
  std::ifstream in(SourcePath("tests/data/tokenizer/gpt2_reference.jsonl"));
  std::string line;
  int64_t texts = 0;
  int64_t bytes = 0;
  int64_t tokens = 0;
  while (std::getline(in, line)) {
    const std::string text = nlohmann::json::parse(line).at("text").get<std::string>();
    const std::vector<int32_t> ids = tokenizer_->Encode(text, /*add_special_tokens=*/false);
    ASSERT_EQ(tokenizer_->Decode(ids), text) << "line " << texts + 1;
    ++texts;
    bytes += static_cast<int64_t>(text.size());
    tokens += static_cast<int64_t>(ids.size());
  }
  EXPECT_GT(texts, 2000);
  // A vocabulary trained on English compresses it: well over 2 bytes per token.
  EXPECT_GT(static_cast<double>(bytes) / static_cast<double>(tokens), 2.5);
}

TEST_F(ShippedModelTest, ShortPromptTuningOnSpamBeatsTheMajorityClass) {
  const TaskSpec spec = SpamSpec();
  const TaskData train = LoadTaskData(SourcePath("data/spam/train.jsonl"), spec, *tokenizer_);
  const TaskData dev = LoadTaskData(SourcePath("data/spam/dev.jsonl"), spec, *tokenizer_);
  TrainerConfig config;
  config.prompt.num_virtual_tokens = 16;
  config.max_steps = 100;
  config.batch_size = 8;
  config.eval_every = 50;
  config.seed = 0;
  LocalCollective local;
  PromptTrainer trainer(model_, *tokenizer_, config, TrainerData{&train, &dev, nullptr}, local);
  const TrainResult result = trainer.Run();
  ASSERT_EQ(result.status, TrainStatus::kSucceeded) << result.message;
  const double majority = MajorityLabel(dev).second;
  ASSERT_TRUE(result.best_dev && result.best_dev->accuracy);
  EXPECT_GT(*result.best_dev->accuracy, majority + 0.05) << "majority share " << majority;
}

TEST_F(ShippedModelTest, OnePassRankClassificationMatchesPerLabelRowsOnSpam) {
  ExpectOnePassMatchesPerLabelRows(DevHead("data/spam/dev.jsonl", SpamSpec(), 64));
}

TEST_F(ShippedModelTest, OnePassRankClassificationMatchesPerLabelRowsOnGenre) {
  ExpectOnePassMatchesPerLabelRows(DevHead("data/genre/dev.jsonl", GenreSpec(), 64));
}

// Label words of several tokens, of different lengths: the suffix pass on the
// expanded KV cache.
TEST_F(ShippedModelTest, OnePassRankClassificationMatchesPerLabelRowsWithMultiTokenLabels) {
  TaskSpec spec = GenreSpec();
  spec.verbalizer = {{"news", " newspaper reporting"},
                     {"religion", " church"},
                     {"government", " federal government report"},
                     {"romance", " romantic love story"}};
  const TaskData data = DevHead("data/genre/dev.jsonl", spec, 64);
  std::size_t shortest = SIZE_MAX;
  std::size_t longest = 0;
  for (const std::vector<int32_t>& words : data.label_ids) {
    shortest = std::min(shortest, words.size());
    longest = std::max(longest, words.size());
  }
  ASSERT_GE(longest, 3u);
  ASSERT_LT(shortest, longest);
  ExpectOnePassMatchesPerLabelRows(data);
}

// Multi-job packing in float32 on the real model and task: 4 jobs of a sweep
// (learning rate x prompt length x init) trained 50 steps in one pack give the
// best dev metric and step of each job trained alone, and prompts within 2e-3.
// Packed and lone batches sum in another order, and 50 Adafactor steps at lr
// 0.3 amplify float32 rounding by a factor that depends on the CPU's kernels:
// 1e-4 held on one VM, 1.1e-3 was measured on an AMD EPYC one (at the commit
// before this tolerance too).
TEST_F(ShippedModelTest, PackedJobsOnSpamEqualTheJobsTrainedAlone) {
  const TaskSpec spec = SpamSpec();
  const TaskData train = LoadTaskData(SourcePath("data/spam/train.jsonl"), spec, *tokenizer_);
  const TaskData dev = DevHead("data/spam/dev.jsonl", spec, 96);
  std::vector<TrainerConfig> jobs(4);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    jobs[i].prompt.num_virtual_tokens = i % 2 == 0 ? 8 : 20;
    jobs[i].learning_rate = i < 2 ? 0.3 : 0.03;
    jobs[i].max_steps = 50;
    jobs[i].batch_size = 8;
    jobs[i].eval_every = 25;
    jobs[i].seed = i;
  }
  jobs[1].prompt.init = PromptInit::kText;
  jobs[1].prompt.init_text = "Is this mail spam or ham?";
  const TrainerData data{&train, &dev, nullptr};

  std::vector<TrainResult> alone;
  for (const TrainerConfig& config : jobs) {
    LocalCollective local;
    alone.push_back(PromptTrainer(model_, *tokenizer_, config, data, local).Run());
  }
  std::vector<LocalCollective> locals(jobs.size());
  std::vector<std::unique_ptr<PromptTrainer>> trainers;
  TrainPack pack(model_);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    trainers.push_back(std::make_unique<PromptTrainer>(model_, *tokenizer_, jobs[i], data, locals[i]));
    pack.Add(trainers.back().get(), {});
  }
  std::vector<std::optional<TrainResult>> packed(jobs.size());
  while (!pack.empty()) {
    for (TrainPack::Finished& done : pack.Step()) packed[static_cast<std::size_t>(done.slot)] = std::move(done.result);
  }
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    SCOPED_TRACE("job " + std::to_string(i));
    ASSERT_TRUE(packed[i].has_value());
    ASSERT_EQ(packed[i]->status, TrainStatus::kSucceeded) << packed[i]->message;
    ASSERT_TRUE(packed[i]->best_dev && alone[i].best_dev);
    EXPECT_EQ(packed[i]->best_dev->accuracy, alone[i].best_dev->accuracy);
    EXPECT_EQ(packed[i]->best_step, alone[i].best_step);
    EXPECT_LE((packed[i]->final_prompt - alone[i].final_prompt).abs().max().item<double>(), 2e-3);
  }
}

}  // namespace
}  // namespace promptsweep
