// Per-row prompts (engine/soft_prompt): a batch whose rows carry different
// soft prompts gives every row the logits, and every prompt the gradient, of a
// batch with that prompt alone.
#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/task_data.h"
#include "engine/causal_lm.h"
#include "engine/soft_prompt.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

const std::string kModelsDir = std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/models";

Example MakeExample(std::vector<int32_t> input, std::vector<int32_t> target, int64_t line = 0) {
  Example example;
  example.input_ids = std::move(input);
  example.target_ids = std::move(target);
  example.line = line;
  return example;
}

std::vector<int64_t> Flat(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU, torch::kInt64).contiguous().reshape({-1});
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

const char* Name(Padding padding) { return padding == Padding::kLeft ? "left" : "right"; }

class PerRowPromptTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    models_ = new std::vector<std::shared_ptr<const CausalLM>>;
    for (const char* name : {"tiny-llama", "tiny-gpt2"}) {
      for (torch::ScalarType dtype : {torch::kFloat32, torch::kFloat64}) {
        ModelLoadOptions options;
        options.dtype = dtype;
        models_->push_back(CausalLM::Load(kModelsDir + "/" + name, options));
      }
    }
  }
  static void TearDownTestSuite() { delete models_; }

  static const std::vector<std::shared_ptr<const CausalLM>>& models() { return *models_; }
  static const CausalLM& llama() { return *models().front(); }

  // The stack of the tests: 2, 5 and 8 virtual tokens and the bare model (an
  // undefined prompt), float64 for a float64 model (so that its gradients are
  // compared in float64 too), scaled like word embeddings.
  static std::vector<torch::Tensor> Stack(const CausalLM& model) {
    torch::manual_seed(7);
    const auto dtype = model.dtype() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    std::vector<torch::Tensor> prompts;
    for (int64_t n : {2, 5, 8}) {
      prompts.push_back((torch::randn({n, model.config().hidden_size}, dtype) * 0.3).requires_grad_(true));
    }
    prompts.push_back(torch::Tensor());
    return prompts;
  }
  static std::vector<int64_t> Lengths(const std::vector<torch::Tensor>& prompts) {
    std::vector<int64_t> lengths;
    for (const torch::Tensor& p : prompts) lengths.push_back(p.defined() ? p.size(0) : 0);
    return lengths;
  }

  static std::vector<std::shared_ptr<const CausalLM>>* models_;
};

std::vector<std::shared_ptr<const CausalLM>>* PerRowPromptTest::models_ = nullptr;

// Rows of uneven lengths (inputs 1..7, targets 1..3), each prompt used by two
// or three rows, in a shuffled order.
struct MixedRows {
  std::vector<Example> examples;
  std::vector<int64_t> prompt_index;
};

MixedRows RandomRows(int64_t num_prompts, uint32_t seed) {
  std::mt19937 rng(seed);
  MixedRows rows;
  for (int64_t p = 0; p < num_prompts; ++p) {
    for (int64_t copies = 0; copies < 2 + p % 2; ++copies) rows.prompt_index.push_back(p);
  }
  std::shuffle(rows.prompt_index.begin(), rows.prompt_index.end(), rng);
  std::uniform_int_distribution<int32_t> token(1, 300);
  for (std::size_t r = 0; r < rows.prompt_index.size(); ++r) {
    std::vector<int32_t> input(std::uniform_int_distribution<std::size_t>(1, 7)(rng));
    std::vector<int32_t> target(std::uniform_int_distribution<std::size_t>(1, 3)(rng));
    for (int32_t& id : input) id = token(rng);
    for (int32_t& id : target) id = token(rng);
    rows.examples.push_back(MakeExample(input, target, static_cast<int64_t>(r)));
  }
  return rows;
}

std::vector<const Example*> Pointers(const std::vector<Example>& examples) {
  std::vector<const Example*> out;
  for (const Example& e : examples) out.push_back(&e);
  return out;
}

// A job's loss normalised on its own targets: the mean negative log-likelihood.
torch::Tensor MeanLoss(const torch::Tensor& log_probs) { return -log_probs.mean(); }

TEST_F(PerRowPromptTest, LayoutMasksUnusedSlotsBeforeEachRowsPrompt) {
  const Example a = MakeExample({5, 6, 7}, {8, 9});
  const Example b = MakeExample({10}, {11});
  const Example c = MakeExample({12, 13}, {14});
  // Prompts of 3, 1 and 0 virtual tokens: N = 3.
  const PromptBatch right = MakePromptBatch({&a, &b, &c}, {3, 1, 0}, {0, 1, 2}, Padding::kRight, torch::kCPU);
  EXPECT_EQ(right.num_virtual_tokens, 3);
  EXPECT_EQ(right.prompt_lengths, (std::vector<int64_t>{3, 1, 0}));
  EXPECT_EQ(Flat(right.prompt_index), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(Flat(right.input_ids), (std::vector<int64_t>{5, 6, 7, 8, 9, /**/ 10, 11, 0, 0, 0, /**/ 12, 13, 14, 0, 0}));
  // [N - n unused][n virtual][input][target][pads]
  EXPECT_EQ(Flat(right.attention_mask), (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1, /**/ 0, 0, 1, 1, 1, 0, 0, 0,
                                                              /**/ 0, 0, 0, 1, 1, 1, 0, 0}));
  // Positions as for each prompt alone: they start at the row's first virtual token.
  EXPECT_EQ(Flat(right.position_ids), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, /**/ 0, 0, 0, 1, 2, 0, 0, 0,
                                                            /**/ 0, 0, 0, 0, 1, 2, 0, 0}));
  EXPECT_EQ(Flat(right.prompt_start), (std::vector<int64_t>{0, 2, 3}));
  // Real token j at N + j: targets 8 9 | 11 | 14, predicted from 3+2, 3+3 | 8+3 | 16+4.
  EXPECT_EQ(Flat(right.target_positions), (std::vector<int64_t>{5, 6, 11, 20}));
  EXPECT_EQ(Flat(right.target_rows), (std::vector<int64_t>{0, 0, 1, 2}));
  EXPECT_EQ(Flat(right.target_prompts), (std::vector<int64_t>{0, 0, 1, 2}));

  // Left: the unused slots join the pads, all before the prompt.
  const PromptBatch left = MakePromptBatch({&a, &b, &c}, {3, 1, 0}, {0, 1, 2}, Padding::kLeft, torch::kCPU);
  EXPECT_EQ(Flat(left.input_ids), (std::vector<int64_t>{5, 6, 7, 8, 9, /**/ 0, 0, 0, 10, 11, /**/ 0, 0, 12, 13, 14}));
  EXPECT_EQ(Flat(left.attention_mask), (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1, /**/ 0, 0, 0, 0, 0, 1, 1, 1,
                                                             /**/ 0, 0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(Flat(left.prompt_start), (std::vector<int64_t>{0, 5, 5}));
  EXPECT_EQ(Flat(left.target_positions), (std::vector<int64_t>{5, 6, 14, 22}));

  // A single-prompt batch is the stack {N} with every index 0.
  const PromptBatch single = MakePromptBatch({&a, &b}, 2, Padding::kRight, torch::kCPU);
  EXPECT_EQ(single.prompt_lengths, (std::vector<int64_t>{2}));
  EXPECT_EQ(Flat(single.prompt_index), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(Flat(single.target_prompts), (std::vector<int64_t>{0, 0, 0}));
}

TEST_F(PerRowPromptTest, AStackOfOneEqualsTheSinglePromptApiBitForBit) {
  const Example a = MakeExample({5, 6, 7}, {8, 9});
  const Example b = MakeExample({10}, {11});
  const torch::Tensor prompt = Stack(llama())[1];
  for (Padding padding : {Padding::kRight, Padding::kLeft}) {
    SCOPED_TRACE(Name(padding));
    const PromptBatch batch = MakePromptBatch({&a, &b}, 5, padding, torch::kCPU);
    const PromptBatch stacked = MakePromptBatch({&a, &b}, {5}, {0, 0}, padding, torch::kCPU);
    EXPECT_TRUE(torch::equal(batch.attention_mask, stacked.attention_mask));
    EXPECT_TRUE(torch::equal(batch.position_ids, stacked.position_ids));
    EXPECT_TRUE(torch::equal(batch.target_positions, stacked.target_positions));
    EXPECT_TRUE(torch::equal(TargetLogits(llama(), prompt, batch),
                             TargetLogits(llama(), std::vector<torch::Tensor>{prompt}, stacked)));
  }
}

TEST_F(PerRowPromptTest, MixedBatchLogitsAndGradientsEqualSinglePromptBatches) {
  for (const auto& model_ptr : models()) {
    const CausalLM& model = *model_ptr;
    const bool f64 = model.dtype() == torch::kFloat64;
    const double tolerance = f64 ? 1e-10 : 1e-5;
    const std::vector<torch::Tensor> prompts = Stack(model);
    const std::vector<int64_t> lengths = Lengths(prompts);
    const int64_t num_prompts = static_cast<int64_t>(prompts.size());
    const MixedRows rows = RandomRows(num_prompts, /*seed=*/3);
    for (Padding padding : {Padding::kRight, Padding::kLeft}) {
      SCOPED_TRACE(StrCat(model.config().model_type, f64 ? " f64 " : " f32 ", Name(padding)));
      const PromptBatch mixed = MakePromptBatch(Pointers(rows.examples), lengths, rows.prompt_index, padding,
                                                model.device());
      ASSERT_EQ(mixed.num_virtual_tokens, 8);
      const torch::Tensor log_probs = TargetLogProbs(model, prompts, mixed);
      const torch::Tensor logits = TargetLogits(model, prompts, mixed).detach();
      // Multi-job packing: each job's loss on its own targets, one backward.
      torch::Tensor total = torch::zeros({}, log_probs.options());
      for (int64_t p = 0; p < num_prompts; ++p) total = total + MeanLoss(log_probs.index({mixed.target_prompts == p}));
      for (const torch::Tensor& prompt : prompts) {
        if (prompt.defined()) prompt.mutable_grad() = torch::Tensor();
      }
      total.backward();

      for (int64_t p = 0; p < num_prompts; ++p) {
        SCOPED_TRACE(StrCat("prompt ", p, " (", lengths[static_cast<std::size_t>(p)], " virtual tokens)"));
        std::vector<const Example*> own;
        for (std::size_t r = 0; r < rows.examples.size(); ++r) {
          if (rows.prompt_index[r] == p) own.push_back(&rows.examples[r]);
        }
        const torch::Tensor& prompt = prompts[static_cast<std::size_t>(p)];
        // The same prompt, a fresh leaf for its own gradient.
        const torch::Tensor alone_prompt = prompt.defined() ? prompt.detach().clone().requires_grad_(true) : prompt;
        const PromptBatch alone =
            MakePromptBatch(own, lengths[static_cast<std::size_t>(p)], padding, model.device());
        const torch::Tensor alone_logits = TargetLogits(model, alone_prompt, alone);
        const torch::Tensor mine = logits.index({mixed.target_prompts == p});
        ASSERT_EQ(mine.sizes(), alone_logits.sizes());
        EXPECT_LE(MaxDiff(mine, alone_logits), tolerance);
        if (!prompt.defined()) continue;
        const torch::Tensor alone_log_probs =
            torch::log_softmax(alone_logits, -1).gather(1, alone.target_ids.unsqueeze(1));
        MeanLoss(alone_log_probs).backward();
        ASSERT_TRUE(prompt.grad().defined());
        EXPECT_GT(prompt.grad().abs().max().item<double>(), 1e-3);
        EXPECT_LE(MaxDiff(prompt.grad(), alone_prompt.grad()), tolerance);
      }
    }
  }
}

TEST_F(PerRowPromptTest, MismatchedStacksAreClearErrors) {
  const Example a = MakeExample({5, 6, 7}, {8, 9}, /*line=*/4);
  const Example b = MakeExample({10}, {11}, /*line=*/9);
  const int64_t hidden = llama().config().hidden_size;
  EXPECT_TRUE(test::HasText(
      test::ErrorOf([&] { MakePromptBatch({&a, &b}, {2, 3}, {0, 2}, Padding::kRight, torch::kCPU); }),
      "example at line 9 (row 1) uses prompt 2, outside the stack of 2 prompts"));
  EXPECT_TRUE(test::HasText(
      test::ErrorOf([&] { MakePromptBatch({&a, &b}, {2, 3}, {0, -1}, Padding::kRight, torch::kCPU); }),
      "uses prompt -1"));
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { MakePromptBatch({&a, &b}, {2}, {0}, Padding::kRight, torch::kCPU); }),
                            "1 prompt indices for 2 examples"));
  EXPECT_TRUE(test::HasText(
      test::ErrorOf([&] { MakePromptBatch({&a, &b}, {2, -1}, {0, 0}, Padding::kRight, torch::kCPU); }),
      "prompt 1 has -1 virtual tokens"));
  const Example empty = MakeExample({}, {8});
  EXPECT_TRUE(test::HasText(
      test::ErrorOf([&] { MakePromptBatch({&a, &empty}, {2, 0}, {0, 1}, Padding::kRight, torch::kCPU); }),
      "no token precedes its target"));

  const PromptBatch batch = MakePromptBatch({&a, &b}, {2, 3}, {1, 0}, Padding::kRight, torch::kCPU);
  const torch::Tensor two = torch::zeros({2, hidden});
  const torch::Tensor three = torch::zeros({3, hidden});
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { TargetLogits(llama(), {two, torch::zeros({3, hidden + 1})}, batch); }),
                            StrCat("prompt 1 is [3, ", hidden + 1, "]; expected [3, ", hidden, "]")));
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ComposeInputsEmbeds(llama(), {three, two}, batch); }),
                            "prompt 0 is [3, 32]; expected [2, 32]"));
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ComposeInputsEmbeds(llama(), {two, three, two}, batch); }),
                            "3 prompts given for a batch laid out for 2"));
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ComposeInputsEmbeds(llama(), {torch::Tensor(), three}, batch); }),
                            "prompt 0 is undefined"));
}

}  // namespace
}  // namespace promptsweep
