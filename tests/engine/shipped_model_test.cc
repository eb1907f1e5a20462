// The shipped base model (models/pico-llama-2.6m, made by
// models/make_base_model.sh) and the real tasks in data/: regression tests of
// what the README states about them.
#include <fstream>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/task_data.h"
#include "common/tokenizer.h"
#include "test_utils.h"
#include "engine/collective.h"
#include "engine/pretrainer.h"
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

}  // namespace
}  // namespace promptsweep
