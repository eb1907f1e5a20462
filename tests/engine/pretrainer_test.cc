#include "engine/pretrainer.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/error.h"
#include "test_utils.h"
#include "engine/tensor_io.h"

namespace promptsweep {
namespace {

using test::ErrorOf;
using test::ScopedTempDir;
using test::WriteFileBytes;

std::string DataPath(const std::string& relative) { return std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/" + relative; }

// A 2-layer Llama over the tiny tokenizer (vocab 320), random weights, trainable.
ModelConfig TinyConfig(int64_t vocab) {
  return ParseModelConfig({{"architectures", {"LlamaForCausalLM"}},
                           {"hidden_size", 32},
                           {"intermediate_size", 64},
                           {"num_hidden_layers", 2},
                           {"num_attention_heads", 4},
                           {"num_key_value_heads", 2},
                           {"vocab_size", vocab},
                           {"max_position_embeddings", 64},
                           {"tie_word_embeddings", true},
                           {"bos_token_id", 0},
                           {"eos_token_id", 0}},
                          "test");
}

class PretrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    tokenizer_path_ = DataPath("models/tiny-llama/tokenizer.json");
    tokenizer_ = Tokenizer::FromFile(tokenizer_path_);
    // Repetitive text a tiny model can learn quickly.
    std::string text;
    for (int i = 0; i < 40; ++i) {
      text += "the quick brown fox jumps over the lazy dog. the dog sleeps.\n";
      if (i % 10 == 9) text += "\n";  // document boundary
    }
    WriteFileBytes(Dir() + "/train.txt", text);
    WriteFileBytes(Dir() + "/heldout.txt", "the lazy dog sleeps. the quick fox jumps.\n");
    train_ = TokenizeCorpus(Dir() + "/train.txt", *tokenizer_, 0);
    heldout_ = TokenizeCorpus(Dir() + "/heldout.txt", *tokenizer_, 0);
    config_.seq_length = 16;
    config_.batch_size = 4;
    config_.max_steps = 30;
    config_.learning_rate = 1e-2;
    config_.warmup_steps = 3;
    config_.eval_every = 0;
    config_.checkpoint_every = 0;
    config_.seed = 7;
  }

  std::shared_ptr<CausalLM> NewModel() const {
    ModelLoadOptions options;
    options.trainable = true;
    return CausalLM::CreateRandom(TinyConfig(tokenizer_->VocabSize()), 3, options);
  }

  std::string Dir() const { return dir_.path().string(); }

  ScopedTempDir dir_;
  std::string tokenizer_path_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<int32_t> train_;
  std::vector<int32_t> heldout_;
  PretrainConfig config_;
};

TEST_F(PretrainerTest, TokenizeCorpusSeparatesDocuments) {
  // 4 documents, each preceded by the separator.
  EXPECT_EQ(std::count(train_.begin(), train_.end(), 0), 4);
  EXPECT_EQ(train_.front(), 0);
  WriteFileBytes(Dir() + "/blank.txt", "\n  \n\t\n");
  EXPECT_TRUE(test::HasText(ErrorOf([&] { TokenizeCorpus(Dir() + "/blank.txt", *tokenizer_, 0); }), "no text"));
  EXPECT_TRUE(test::HasText(ErrorOf([&] { TokenizeCorpus(Dir() + "/absent.txt", *tokenizer_, 0); }),
                            "absent.txt: cannot read"));
}

TEST_F(PretrainerTest, PerplexityIsExpOfTheMeanNextTokenLoss) {
  const auto model = NewModel();
  const std::vector<int32_t> tokens(train_.begin(), train_.begin() + 23);
  // Window 8: windows [0, 9), [8, 17), [16, 23) (partial) predict 22 tokens.
  const PerplexityResult result = EvaluatePerplexity(*model, tokens, 8);
  EXPECT_EQ(result.tokens, 22);
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (int64_t begin = 0; begin < 22; begin += 8) {
    const int64_t end = std::min<int64_t>(begin + 8, 22);
    std::vector<int64_t> ids(tokens.begin() + begin, tokens.begin() + end + 1);
    const torch::Tensor input = torch::tensor(ids).unsqueeze(0);
    const int64_t n = input.size(1) - 1;
    const torch::Tensor x = input.slice(1, 0, n);
    const torch::Tensor logits =
        model->LmHead(model->Forward(model->EmbedTokens(x), torch::ones_like(x), torch::arange(n).unsqueeze(0)));
    sum += torch::nn::functional::cross_entropy(logits[0], input[0].slice(0, 1),
                                                torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
               .item<double>();
  }
  EXPECT_NEAR(result.loss, sum / 22, 1e-5);
  EXPECT_NEAR(result.perplexity, std::exp(sum / 22), 1e-3);
}

TEST_F(PretrainerTest, LearningRateWarmsUpThenDecaysToTheFloor) {
  PretrainConfig c;
  c.learning_rate = 1.0;
  c.warmup_steps = 10;
  c.max_steps = 110;
  c.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(PretrainLearningRate(c, 0), 0.1);
  EXPECT_DOUBLE_EQ(PretrainLearningRate(c, 9), 1.0);
  EXPECT_DOUBLE_EQ(PretrainLearningRate(c, 10), 1.0);
  EXPECT_NEAR(PretrainLearningRate(c, 60), 0.55, 1e-12);
  EXPECT_NEAR(PretrainLearningRate(c, 109), 0.1, 1e-3);
}

TEST_F(PretrainerTest, TrainingLowersHeldOutPerplexityAndWritesAHuggingFaceDirectory) {
  const auto model = NewModel();
  const double before = EvaluatePerplexity(*model, heldout_, config_.seq_length).perplexity;
  Pretrainer trainer(model, *tokenizer_, tokenizer_path_, config_, train_, heldout_, Dir() + "/out");
  const PerplexityResult after = trainer.Run();
  EXPECT_LT(after.perplexity, before / 3) << "before " << before;
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"}) {
    EXPECT_TRUE(std::filesystem::exists(Dir() + "/out/" + file)) << file;
  }
  // The written directory loads as a frozen model and scores the same.
  const auto loaded = CausalLM::Load(Dir() + "/out");
  EXPECT_EQ(loaded->config().vocab_size, tokenizer_->VocabSize());
  EXPECT_NEAR(EvaluatePerplexity(*loaded, heldout_, config_.seq_length).perplexity, after.perplexity, 1e-3);
  for (const auto& p : loaded->Parameters()) EXPECT_FALSE(p.requires_grad());
}

TEST_F(PretrainerTest, ResumeReproducesTheUninterruptedRunExactly) {
  const auto full_model = NewModel();
  Pretrainer full(full_model, *tokenizer_, tokenizer_path_, config_, train_, heldout_, Dir() + "/full");
  full.Run();

  // Stop after 12 steps (the stop flag is checked before each step), then resume.
  const auto first = NewModel();
  std::atomic<bool> stop{false};
  PretrainHooks hooks;
  hooks.stop = &stop;
  hooks.progress = [&](const PretrainProgress& p) {
    if (p.step == 12) stop = true;
  };
  PretrainConfig logged = config_;
  logged.log_every = 1;
  {
    Pretrainer part(first, *tokenizer_, tokenizer_path_, logged, train_, heldout_, Dir() + "/part");
    part.Run(hooks);
    EXPECT_EQ(part.step(), 12);
  }
  const nlohmann::json state = nlohmann::json::parse(test::ReadFileBytes(Dir() + "/part/resume/trainer_state.json"));
  const auto checkpoint = CheckpointReader::Open(Dir() + "/part/resume/" + state["weights"].get<std::string>());
  ModelLoadOptions options;
  options.trainable = true;
  const auto resumed_model = CausalLM::Create(TinyConfig(tokenizer_->VocabSize()), *checkpoint, options);
  Pretrainer resumed(resumed_model, *tokenizer_, tokenizer_path_, logged, train_, heldout_, Dir() + "/part");
  resumed.Resume();
  EXPECT_EQ(resumed.step(), 12);
  resumed.Run();
  const auto a = full_model->NamedWeights();
  const auto b = resumed_model->NamedWeights();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
}

TEST_F(PretrainerTest, ResumeRefusesOtherSettings) {
  Pretrainer trainer(NewModel(), *tokenizer_, tokenizer_path_, config_, train_, heldout_, Dir() + "/out");
  trainer.SaveCheckpoint();
  PretrainConfig other = config_;
  other.learning_rate = 5e-3;
  Pretrainer changed(NewModel(), *tokenizer_, tokenizer_path_, other, train_, heldout_, Dir() + "/out");
  const std::string error = ErrorOf([&] { changed.Resume(); });
  EXPECT_TRUE(test::HasText(error, "learning_rate")) << error;
}

TEST_F(PretrainerTest, RejectsBadInput) {
  PretrainConfig bad = config_;
  bad.learning_rate = 0;
  EXPECT_TRUE(test::HasText(ErrorOf([&] { ValidatePretrainConfig(bad); }), "learning_rate must be > 0"));
  const std::vector<int32_t> short_text(train_.begin(), train_.begin() + 5);
  EXPECT_TRUE(test::HasText(
      ErrorOf([&] { Pretrainer(NewModel(), *tokenizer_, tokenizer_path_, config_, short_text, heldout_, Dir()); }),
      "fewer than one window"));
  std::vector<int32_t> out_of_vocab = train_;
  out_of_vocab[3] = 100000;
  EXPECT_TRUE(test::HasText(
      ErrorOf([&] { Pretrainer(NewModel(), *tokenizer_, tokenizer_path_, config_, out_of_vocab, heldout_, Dir()); }),
      "outside the model's vocabulary"));
  // A frozen model cannot be pretrained: the caller's bug (the CLI always
  // builds a trainable one), so an InternalError rather than a user Error.
  const auto frozen = CausalLM::CreateRandom(TinyConfig(tokenizer_->VocabSize()), 3);
  EXPECT_THROW(Pretrainer(std::const_pointer_cast<CausalLM>(frozen), *tokenizer_, tokenizer_path_, config_, train_,
                          heldout_, Dir()),
               InternalError);
}

}  // namespace
}  // namespace promptsweep
