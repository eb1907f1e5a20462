#include "engine/soft_prompt.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_utils.h"
#include <torch/torch.h>

#include "common/error.h"
#include "common/json_util.h"
#include "common/task_data.h"
#include "common/tokenizer.h"
#include "engine/causal_lm.h"

namespace promptsweep {
namespace {

const std::string kModelsDir = std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/models";

using test::HasText;

using test::TinyTokenizerWithBos;

Example MakeExample(std::vector<int32_t> input, std::vector<int32_t> target) {
  Example example;
  example.input_ids = std::move(input);
  example.target_ids = std::move(target);
  return example;
}

std::vector<int64_t> Flat(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU, torch::kInt64).contiguous().reshape({-1});
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

class SoftPromptTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    llama_ = new std::shared_ptr<const CausalLM>(CausalLM::Load(kModelsDir + "/tiny-llama"));
    gpt2_ = new std::shared_ptr<const CausalLM>(CausalLM::Load(kModelsDir + "/tiny-gpt2"));
    tokenizer_ = TinyTokenizerWithBos().release();
  }
  static void TearDownTestSuite() {
    delete llama_;
    delete gpt2_;
    delete tokenizer_;
  }

  static const CausalLM& llama() { return **llama_; }
  static const CausalLM& gpt2() { return **gpt2_; }
  static const Tokenizer& tok() { return *tokenizer_; }

  // The embedding rows PEFT's TEXT init takes for `ids` and N tokens.
  static torch::Tensor ExpectedTextRows(const CausalLM& model, const std::vector<int32_t>& ids, int64_t n) {
    std::vector<int64_t> repeated;
    const int64_t reps = (n + static_cast<int64_t>(ids.size()) - 1) / static_cast<int64_t>(ids.size());
    for (int64_t r = 0; r < reps; ++r) repeated.insert(repeated.end(), ids.begin(), ids.end());
    repeated.resize(static_cast<std::size_t>(n));
    return model.WordEmbeddings().index_select(0, torch::tensor(repeated, torch::kInt64)).to(torch::kFloat32);
  }

  static torch::Tensor Init(PromptInit init, int64_t n, uint64_t seed, const std::string& text = "") {
    SoftPromptConfig config;
    config.init = init;
    config.num_virtual_tokens = n;
    config.init_text = text;
    return InitSoftPrompt(llama(), tok(), config, seed);
  }

  static std::shared_ptr<const CausalLM>* llama_;
  static std::shared_ptr<const CausalLM>* gpt2_;
  static const Tokenizer* tokenizer_;
};

std::shared_ptr<const CausalLM>* SoftPromptTest::llama_ = nullptr;
std::shared_ptr<const CausalLM>* SoftPromptTest::gpt2_ = nullptr;
const Tokenizer* SoftPromptTest::tokenizer_ = nullptr;

TEST_F(SoftPromptTest, InitNamesParseCaseInsensitively) {
  EXPECT_EQ(ParsePromptInit("text"), PromptInit::kText);
  EXPECT_EQ(ParsePromptInit("Sample_Vocab"), PromptInit::kSampleVocab);
  EXPECT_EQ(ParsePromptInit("RANDOM"), PromptInit::kRandom);
  EXPECT_EQ(PromptInitName(PromptInit::kSampleVocab), "SAMPLE_VOCAB");
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ParsePromptInit("zeros"); }), "RANDOM, SAMPLE_VOCAB or TEXT"));
}

TEST_F(SoftPromptTest, TextInitRepeatsOrCutsTheTokenizedText) {
  const std::string text = "the quick brown fox";
  const std::vector<int32_t> ids = tok().Encode(text);  // BOS included, as PEFT's tokenizer(text)
  ASSERT_EQ(ids.front(), 319);
  const int64_t len = static_cast<int64_t>(ids.size());
  ASSERT_GE(len, 3);
  for (int64_t n : {len - 2, len, 2 * len + 1}) {  // long text, exact, short text
    SCOPED_TRACE(n);
    const torch::Tensor prompt = Init(PromptInit::kText, n, /*seed=*/0, text);
    EXPECT_EQ(prompt.scalar_type(), torch::kFloat32);
    EXPECT_EQ(prompt.sizes(), (std::vector<int64_t>{n, llama().config().hidden_size}));
    EXPECT_TRUE(torch::equal(prompt, ExpectedTextRows(llama(), ids, n)));
  }
  // A copy, not a view of the frozen table.
  const torch::Tensor prompt = Init(PromptInit::kText, 2, 0, text);
  EXPECT_NE(prompt.data_ptr(), llama().WordEmbeddings().data_ptr());
}

TEST_F(SoftPromptTest, TextInitThatTokenizesToNothingIsAnError) {
  const std::unique_ptr<Tokenizer> plain = Tokenizer::FromFile(kModelsDir + "/tiny-llama/tokenizer.json");
  SoftPromptConfig config;
  config.init = PromptInit::kText;
  config.num_virtual_tokens = 4;
  EXPECT_TRUE(
      test::HasText(test::ErrorOf([&] { InitSoftPrompt(llama(), *plain, config, 0); }), "tokenizes to no tokens"));
}

TEST_F(SoftPromptTest, SampleVocabRowsAreEmbeddingRowsAndFollowTheSeed) {
  const torch::Tensor table = llama().WordEmbeddings().to(torch::kFloat32);
  const torch::Tensor prompt = Init(PromptInit::kSampleVocab, 16, /*seed=*/7);
  ASSERT_EQ(prompt.sizes(), (std::vector<int64_t>{16, table.size(1)}));
  for (int64_t i = 0; i < 16; ++i) {
    const torch::Tensor matches = (table == prompt[i].unsqueeze(0)).all(/*dim=*/1);
    EXPECT_TRUE(matches.any().item<bool>()) << "row " << i << " is not a word embedding";
  }
  EXPECT_TRUE(torch::equal(prompt, Init(PromptInit::kSampleVocab, 16, 7)));
  EXPECT_FALSE(torch::equal(prompt, Init(PromptInit::kSampleVocab, 16, 8)));
}

TEST_F(SoftPromptTest, RandomIsStandardNormalAndFollowsTheSeed) {
  const torch::Tensor prompt = Init(PromptInit::kRandom, 128, /*seed=*/3);
  EXPECT_EQ(prompt.scalar_type(), torch::kFloat32);
  EXPECT_EQ(prompt.sizes(), (std::vector<int64_t>{128, llama().config().hidden_size}));
  // 4096 draws: the sample mean's standard error is 1/64.
  EXPECT_NEAR(prompt.mean().item<double>(), 0.0, 0.06);
  EXPECT_NEAR(prompt.std().item<double>(), 1.0, 0.05);
  EXPECT_TRUE(torch::equal(prompt, Init(PromptInit::kRandom, 128, 3)));
  EXPECT_FALSE(torch::equal(prompt, Init(PromptInit::kRandom, 128, 4)));
  EXPECT_FALSE(prompt.requires_grad());
}

TEST_F(SoftPromptTest, RightPaddedBatchLayout) {
  const Example a = MakeExample({5, 6, 7}, {8, 9});
  const Example b = MakeExample({10}, {11});
  const PromptBatch batch = MakePromptBatch({&a, &b}, /*num_virtual_tokens=*/2, Padding::kRight, torch::kCPU);
  EXPECT_EQ(batch.num_virtual_tokens, 2);
  EXPECT_EQ(batch.num_real_tokens, 7);
  EXPECT_EQ(Flat(batch.input_ids), (std::vector<int64_t>{5, 6, 7, 8, 9, /**/ 10, 11, 0, 0, 0}));
  EXPECT_EQ(Flat(batch.real_mask), (std::vector<int64_t>{1, 1, 1, 1, 1, /**/ 1, 1, 0, 0, 0}));
  // [N virtual][input][target][pads]
  EXPECT_EQ(Flat(batch.attention_mask), (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(Flat(batch.position_ids).size(), 14u);
  const std::vector<int64_t> positions = Flat(batch.position_ids);
  EXPECT_EQ(std::vector<int64_t>(positions.begin(), positions.begin() + 7),
            (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(std::vector<int64_t>(positions.begin() + 7, positions.begin() + 11), (std::vector<int64_t>{0, 1, 2, 3}));
  // Target 8 sits at sequence index 5 of row 0 and is predicted from index 4;
  // target 11 sits at index 3 of row 1 (flat 7 + 3) and is predicted from 7 + 2.
  EXPECT_EQ(Flat(batch.target_positions), (std::vector<int64_t>{4, 5, 9}));
  EXPECT_EQ(Flat(batch.target_ids), (std::vector<int64_t>{8, 9, 11}));
  EXPECT_EQ(Flat(batch.target_rows), (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(Flat(batch.prompt_start), (std::vector<int64_t>{0, 0}));
}

TEST_F(SoftPromptTest, LeftPaddedBatchLayout) {
  const Example a = MakeExample({5, 6, 7}, {8, 9});
  const Example b = MakeExample({10}, {11});
  const PromptBatch batch = MakePromptBatch({&a, &b}, 2, Padding::kLeft, torch::kCPU);
  EXPECT_EQ(Flat(batch.input_ids), (std::vector<int64_t>{5, 6, 7, 8, 9, /**/ 0, 0, 0, 10, 11}));
  EXPECT_EQ(Flat(batch.real_mask), (std::vector<int64_t>{1, 1, 1, 1, 1, /**/ 0, 0, 0, 1, 1}));
  // Row 1: [3 pads][2 virtual][10 11]: the pads come before the prompt.
  EXPECT_EQ(Flat(batch.attention_mask), (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, /**/ 0, 0, 0, 1, 1, 1, 1}));
  const std::vector<int64_t> positions = Flat(batch.position_ids);
  EXPECT_EQ(std::vector<int64_t>(positions.begin() + 10, positions.end()), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(Flat(batch.prompt_start), (std::vector<int64_t>{0, 3}));
  // Target 11 sits at index 6 of row 1 (flat 13), predicted from flat 12.
  EXPECT_EQ(Flat(batch.target_positions), (std::vector<int64_t>{4, 5, 12}));
  EXPECT_EQ(Flat(batch.target_rows), (std::vector<int64_t>{0, 0, 1}));
}

TEST_F(SoftPromptTest, EmptyInputIsPredictedFromTheLastVirtualToken) {
  const Example a = MakeExample({}, {8});
  const PromptBatch batch = MakePromptBatch({&a}, 3, Padding::kRight, torch::kCPU);
  EXPECT_EQ(Flat(batch.target_positions), (std::vector<int64_t>{2}));
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { MakePromptBatch({&a}, 0, Padding::kRight, torch::kCPU); }),
                            "no token precedes its target"));
}

TEST_F(SoftPromptTest, ComposePlacesThePromptBeforeTheFirstRealTokenAndKeepsItsGradient) {
  const Example a = MakeExample({5, 6, 7}, {8, 9});
  const Example b = MakeExample({10}, {11});
  const torch::Tensor prompt = Init(PromptInit::kRandom, 2, 1).requires_grad_(true);
  for (Padding padding : {Padding::kRight, Padding::kLeft}) {
    const PromptBatch batch = MakePromptBatch({&a, &b}, 2, padding, torch::kCPU);
    const torch::Tensor embeds = ComposeInputsEmbeds(llama(), prompt, batch);
    ASSERT_EQ(embeds.sizes(), (std::vector<int64_t>{2, 7, llama().config().hidden_size}));
    const torch::Tensor tokens = llama().EmbedTokens(batch.input_ids);
    const int64_t start = padding == Padding::kLeft ? 3 : 0;
    EXPECT_TRUE(torch::equal(embeds[1].slice(0, start, start + 2), prompt.to(embeds.scalar_type())));
    EXPECT_TRUE(torch::equal(embeds[0].slice(0, 0, 2), prompt.to(embeds.scalar_type())));
    // Real tokens of input_ids column j sit at sequence index N + j.
    EXPECT_TRUE(torch::equal(embeds[1].slice(0, 2 + start, 2 + start + 2), tokens[1].slice(0, start, start + 2)));
    EXPECT_TRUE(torch::equal(embeds[0].slice(0, 2), tokens[0]));

    prompt.mutable_grad() = torch::Tensor();
    embeds.sum().backward();
    ASSERT_TRUE(prompt.grad().defined());
    EXPECT_TRUE(torch::allclose(prompt.grad(), torch::full_like(prompt, 2.0)));  // once per row
  }
}

TEST_F(SoftPromptTest, TargetLogitsMatchTheFullForwardAtTargetPositions) {
  const Example a = MakeExample({5, 6, 7}, {8, 9});
  const Example b = MakeExample({10}, {11});
  const torch::Tensor prompt = Init(PromptInit::kSampleVocab, 3, 5);
  const PromptBatch batch = MakePromptBatch({&a, &b}, 3, Padding::kRight, torch::kCPU);
  const torch::Tensor logits = TargetLogits(llama(), prompt, batch);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{3, llama().config().vocab_size}));
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);

  // PEFT's way for row 0 alone: cat(prompt, embed(ids)), positions 0.., LM head everywhere.
  const torch::Tensor ids = torch::tensor(std::vector<int64_t>{5, 6, 7, 8, 9}, torch::kInt64).unsqueeze(0);
  const torch::Tensor embeds = torch::cat({prompt.unsqueeze(0), llama().EmbedTokens(ids)}, 1);
  const torch::Tensor mask = torch::ones({1, 8}, torch::kInt64);
  const torch::Tensor positions = torch::arange(8, torch::kInt64).unsqueeze(0);
  const torch::Tensor all = llama().LmHead(llama().Forward(embeds, mask, positions))[0];
  // Targets 8 and 9 sit at indices 6 and 7, predicted from 5 and 6.
  EXPECT_TRUE(torch::allclose(logits.slice(0, 0, 2), all.slice(0, 5, 7), /*rtol=*/1e-5, /*atol=*/1e-5));
}

TEST_F(SoftPromptTest, PaddingNeverChangesARowsLogits) {
  const Example short_row = MakeExample({20, 30}, {40, 50});
  const Example long_row = MakeExample({60, 70, 80, 90, 100, 110}, {120});
  for (const CausalLM* model : {&llama(), &gpt2()}) {
    SCOPED_TRACE(model->config().model_type);
    const torch::Tensor prompt = InitSoftPrompt(*model, tok(), {4, PromptInit::kRandom, ""}, 11);
    const torch::Tensor alone = TargetLogits(*model, prompt, MakePromptBatch({&short_row}, 4, Padding::kRight, torch::kCPU));
    for (Padding padding : {Padding::kRight, Padding::kLeft}) {
      const PromptBatch batch = MakePromptBatch({&short_row, &long_row}, 4, padding, torch::kCPU);
      const torch::Tensor logits = TargetLogits(*model, prompt, batch);
      ASSERT_EQ(logits.size(0), 3);
      EXPECT_TRUE(torch::allclose(logits.slice(0, 0, 2), alone, /*rtol=*/1e-4, /*atol=*/1e-5))
          << "padding " << (padding == Padding::kLeft ? "left" : "right") << " max diff "
          << (logits.slice(0, 0, 2) - alone).abs().max().item<double>();
    }
  }
}

TEST_F(SoftPromptTest, GradientThroughTargetLogitsTrainsThePrompt) {
  // The loss reaches the float32 prompt through the frozen model: a few
  // optimizer steps on the prompt alone make the targets more likely.
  const Example a = MakeExample({20, 30, 40}, {50, 60});
  const Example b = MakeExample({70}, {80});
  const PromptBatch batch = MakePromptBatch({&a, &b}, 4, Padding::kRight, torch::kCPU);
  torch::Tensor prompt = Init(PromptInit::kSampleVocab, 4, 2).requires_grad_(true);
  torch::optim::Adam optimizer({prompt}, torch::optim::AdamOptions(0.05));
  auto loss_of = [&] { return torch::cross_entropy_loss(TargetLogits(llama(), prompt, batch), batch.target_ids); };
  const double initial = loss_of().item<double>();
  for (int step = 0; step < 30; ++step) {
    optimizer.zero_grad();
    const torch::Tensor loss = loss_of();
    loss.backward();
    ASSERT_TRUE(prompt.grad().defined());
    ASSERT_GT(prompt.grad().abs().sum().item<double>(), 0.0);
    optimizer.step();
  }
  EXPECT_LT(loss_of().item<double>(), 0.5 * initial);
}

}  // namespace
}  // namespace promptsweep
