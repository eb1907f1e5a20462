#include "engine/generate.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "engine/causal_lm.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

const std::string kModelsDir = std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/models";

using Rows = std::vector<std::vector<int32_t>>;

// Greedy continuation recomputed from scratch at every step (no KV cache, no
// padding): cat(prompt, embed(ids)) at positions 0.., as PEFT runs one row.
std::vector<int32_t> ReferenceGreedy(const CausalLM& model, const torch::Tensor& prompt,
                                     const std::vector<int32_t>& input, int64_t max_new_tokens) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> ids(input.begin(), input.end());
  std::vector<int32_t> out;
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    torch::Tensor embeds = model.EmbedTokens(torch::tensor(ids, torch::kInt64).unsqueeze(0));
    if (prompt.defined()) embeds = torch::cat({prompt.unsqueeze(0).to(embeds.scalar_type()), embeds}, 1);
    const int64_t length = embeds.size(1);
    const torch::Tensor hidden = model.Forward(embeds, torch::ones({1, length}, torch::kInt64),
                                               torch::arange(length, torch::kInt64).unsqueeze(0));
    const int64_t next = model.LmHead(hidden[0][length - 1]).argmax().item<int64_t>();
    out.push_back(static_cast<int32_t>(next));
    ids.push_back(next);
  }
  return out;
}

class GenerateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    llama_ = new std::shared_ptr<const CausalLM>(CausalLM::Load(kModelsDir + "/tiny-llama"));
    gpt2_ = new std::shared_ptr<const CausalLM>(CausalLM::Load(kModelsDir + "/tiny-gpt2"));
  }
  static void TearDownTestSuite() {
    delete llama_;
    delete gpt2_;
  }

  static const CausalLM& llama() { return **llama_; }
  static const CausalLM& gpt2() { return **gpt2_; }

  static torch::Tensor Prompt(const CausalLM& model, int64_t n) {
    torch::manual_seed(42);
    // Scaled like word embeddings so the prompt steers without swamping.
    return torch::randn({n, model.config().hidden_size}) * 0.2;
  }

  // Rows of different lengths, one of them empty (continued from the prompt).
  static Rows Inputs() { return {{72, 101, 108}, {10, 20, 30, 40, 50, 60, 70}, {5}, {}}; }

  static std::shared_ptr<const CausalLM>* llama_;
  static std::shared_ptr<const CausalLM>* gpt2_;
};

std::shared_ptr<const CausalLM>* GenerateTest::llama_ = nullptr;
std::shared_ptr<const CausalLM>* GenerateTest::gpt2_ = nullptr;

TEST_F(GenerateTest, GreedyBatchEqualsEachRowAloneAndTheUncachedReference) {
  GenerateOptions options;
  options.max_new_tokens = 12;
  for (const CausalLM* model : {&llama(), &gpt2()}) {
    SCOPED_TRACE(model->config().model_type);
    const torch::Tensor prompt = Prompt(*model, 3);
    const Rows inputs = Inputs();
    const Rows batched = Generate(*model, prompt, inputs, options);
    ASSERT_EQ(batched.size(), inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      SCOPED_TRACE(i);
      const Rows alone = Generate(*model, prompt, {inputs[i]}, options);
      EXPECT_EQ(batched[i], alone[0]);
      EXPECT_EQ(batched[i], ReferenceGreedy(*model, prompt, inputs[i], options.max_new_tokens));
    }
  }
}

TEST_F(GenerateTest, PerRowPromptsGiveEachRowTheTokensOfItsPromptAlone) {
  GenerateOptions options;
  options.max_new_tokens = 10;
  for (const CausalLM* model : {&llama(), &gpt2()}) {
    SCOPED_TRACE(model->config().model_type);
    // 2 and 5 virtual tokens and the bare model; the empty input needs a prompt.
    const std::vector<torch::Tensor> prompts = {Prompt(*model, 2), Prompt(*model, 5) * 0.5, torch::Tensor()};
    const Rows inputs = Inputs();
    const std::vector<int64_t> index = {2, 0, 1, 1};
    const Rows batched = Generate(*model, prompts, index, inputs, options);
    ASSERT_EQ(batched.size(), inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      SCOPED_TRACE(i);
      const torch::Tensor& prompt = prompts[static_cast<std::size_t>(index[i])];
      EXPECT_EQ(batched[i], Generate(*model, prompt, {inputs[i]}, options)[0]);
      EXPECT_EQ(batched[i], ReferenceGreedy(*model, prompt, inputs[i], options.max_new_tokens));
    }
  }
  EXPECT_TRUE(
      test::HasText(test::ErrorOf([&] { Generate(llama(), {Prompt(llama(), 2)}, {0, 1}, {{5}, {6}}, options); }),
                    "input 1 uses prompt 1, outside the stack of 1 prompts"));
  EXPECT_TRUE(test::HasText(
      test::ErrorOf([&] { Generate(llama(), {Prompt(llama(), 2), torch::Tensor()}, {0, 1}, {{5}, {}}, options); }),
      "input 1 is empty and there is no soft prompt"));
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { Generate(llama(), {Prompt(llama(), 2)}, {0}, {{5}, {6}}, options); }),
                            "1 prompt indices for 2 inputs"));
}

TEST_F(GenerateTest, WorksWithoutASoftPrompt) {
  GenerateOptions options;
  options.max_new_tokens = 6;
  const Rows inputs = {{72, 101, 108}, {10, 20}};
  const Rows out = Generate(llama(), torch::Tensor(), inputs, options);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(out[i], ReferenceGreedy(llama(), torch::Tensor(), inputs[i], 6));
  }
  EXPECT_TRUE(
      test::HasText(test::ErrorOf([&] { Generate(llama(), torch::Tensor(), {{}}, options); }), "no soft prompt"));
}

TEST_F(GenerateTest, SamplingIsDeterministicPerSeed) {
  GenerateOptions options;
  options.max_new_tokens = 16;
  options.temperature = 1.5;
  options.top_p = 0.95;
  const torch::Tensor prompt = Prompt(llama(), 3);
  options.seed = 1;
  const Rows first = Generate(llama(), prompt, Inputs(), options);
  EXPECT_EQ(Generate(llama(), prompt, Inputs(), options), first);
  options.seed = 2;
  EXPECT_NE(Generate(llama(), prompt, Inputs(), options), first);
  for (const auto& row : first) EXPECT_EQ(row.size(), 16u);
}

TEST_F(GenerateTest, TinyTopPKeepsOnlyTheMostLikelyToken) {
  GenerateOptions greedy;
  greedy.max_new_tokens = 10;
  GenerateOptions nucleus = greedy;
  nucleus.temperature = 1.0;
  nucleus.top_p = 1e-6;
  nucleus.seed = 9;
  const torch::Tensor prompt = Prompt(gpt2(), 2);
  EXPECT_EQ(Generate(gpt2(), prompt, Inputs(), nucleus), Generate(gpt2(), prompt, Inputs(), greedy));
}

TEST_F(GenerateTest, StopIdsEndARowWhileOthersContinue) {
  GenerateOptions options;
  options.max_new_tokens = 10;
  const torch::Tensor prompt = Prompt(llama(), 3);
  const Rows inputs = Inputs();
  const Rows free_run = Generate(llama(), prompt, inputs, options);
  // Stop row 0 at the first token of its free run that is new there (k >= 1).
  const std::vector<int32_t>& row0 = free_run[0];
  std::size_t k = 1;
  while (k < row0.size() && std::find(row0.begin(), row0.begin() + static_cast<long>(k), row0[k]) !=
                                row0.begin() + static_cast<long>(k)) {
    ++k;
  }
  ASSERT_LT(k, row0.size()) << "row 0 repeats one token; pick other inputs";
  options.stop_ids = {row0[k]};
  const Rows stopped = Generate(llama(), prompt, inputs, options);
  EXPECT_EQ(stopped[0], std::vector<int32_t>(row0.begin(), row0.begin() + static_cast<long>(k)));
  for (std::size_t i = 1; i < inputs.size(); ++i) {
    // Another row is cut at the stop id too if it produces it, and is otherwise unchanged.
    const auto cut = std::find(free_run[i].begin(), free_run[i].end(), row0[k]);
    EXPECT_EQ(stopped[i], std::vector<int32_t>(free_run[i].begin(), cut)) << "row " << i;
  }
}

TEST_F(GenerateTest, RejectsBadOptionsAndTooLongRequests) {
  const torch::Tensor prompt = Prompt(llama(), 2);
  GenerateOptions options;
  options.top_p = 0.0;
  EXPECT_THROW(Generate(llama(), prompt, Inputs(), options), Error);
  options = GenerateOptions();
  options.temperature = -1.0;
  EXPECT_THROW(Generate(llama(), prompt, Inputs(), options), Error);
  options = GenerateOptions();
  options.max_new_tokens = llama().config().max_position_embeddings;
  EXPECT_TRUE(
      test::HasText(test::ErrorOf([&] { Generate(llama(), prompt, Inputs(), options); }), "max_position_embeddings"));
  options.max_new_tokens = 0;
  EXPECT_EQ(Generate(llama(), prompt, Inputs(), options), Rows(Inputs().size()));
}

}  // namespace
}  // namespace promptsweep
