// Rank classification in EvaluatePrompt (engine/trainer.cc): the shared-prefix
// path (one forward over the inputs, label suffixes on the expanded KV cache)
// gives the figures of the reference path, one row per (example, label).
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/task_data.h"
#include "common/tokenizer.h"
#include "engine/causal_lm.h"
#include "engine/collective.h"
#include "engine/trainer.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

std::string DataPath(const std::string& relative) { return std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/" + relative; }

// One-pass and per-label-row evaluations of the same prompt and data.
std::pair<EvalResult, EvalResult> BothPaths(const CausalLM& model, const Tokenizer& tokenizer,
                                            const torch::Tensor& prompt, const TaskData& data, int64_t batch_size) {
  LocalCollective local;
  EvalOptions options;
  options.batch_size = batch_size;
  const EvalResult one_pass = EvaluatePrompt(model, tokenizer, prompt, data, options, local);
  options.per_label_rows = true;
  const EvalResult rows = EvaluatePrompt(model, tokenizer, prompt, data, options, local);
  return {one_pass, rows};
}

void ExpectSameFigures(const EvalResult& one_pass, const EvalResult& rows, double tolerance) {
  EXPECT_EQ(one_pass.num_examples, rows.num_examples);
  EXPECT_EQ(one_pass.num_target_tokens, rows.num_target_tokens);
  ASSERT_TRUE(one_pass.accuracy && rows.accuracy);
  EXPECT_EQ(*one_pass.accuracy, *rows.accuracy);
  EXPECT_NEAR(one_pass.loss, rows.loss, tolerance);
  EXPECT_FALSE(one_pass.exact_match.has_value());
}

// Examples of uneven input lengths (1 to 13 tokens), labels cycling.
TaskData HandMadeTask(std::vector<std::vector<int32_t>> label_ids, int64_t vocab) {
  TaskData data;
  data.label_ids = std::move(label_ids);
  const std::vector<int64_t> lengths = {3, 13, 1, 7, 5, 9, 2, 11, 4};
  torch::manual_seed(11);
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    Example example;
    const torch::Tensor ids = torch::randint(0, vocab, {lengths[i]}, torch::kInt64);
    for (int64_t k = 0; k < lengths[i]; ++k) example.input_ids.push_back(static_cast<int32_t>(ids[k].item<int64_t>()));
    example.label_index = static_cast<int64_t>(i % data.label_ids.size());
    example.target_ids = data.label_ids[static_cast<std::size_t>(example.label_index)];
    example.line = static_cast<int64_t>(i) + 1;
    data.examples.push_back(std::move(example));
  }
  return data;
}

// (tiny model, dtype): Llama (RoPE, GQA), GPT-2 (learned absolute positions:
// a wrong position after the input's pads shows at once), Llama 3 scaled rope.
class RankEvalTest : public ::testing::TestWithParam<std::tuple<std::string, torch::ScalarType>> {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    const std::string dir = DataPath("models/" + std::get<0>(GetParam()));
    ModelLoadOptions options;
    options.dtype = std::get<1>(GetParam());
    model_ = CausalLM::Load(dir, options);
    tokenizer_ = Tokenizer::FromFile(dir + "/tokenizer.json");
  }
  // f32: BLAS rounding differs between the batch shapes; f64: nearly exact
  // (both paths take the log-softmax of float32 logits).
  double Tolerance() const { return std::get<1>(GetParam()) == torch::kFloat64 ? 1e-10 : 1e-5; }
  int64_t Vocab() const { return model_->config().vocab_size; }
  torch::Tensor RandomPrompt(int64_t n) const {
    torch::manual_seed(3);
    return torch::randn({n, model_->config().hidden_size});
  }

  std::shared_ptr<const CausalLM> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_P(RankEvalTest, MultiTokenLabelsMatchPerLabelRows) {
  // Labels of 2, 3, 1 and 3 tokens: the suffix pass has pads of its own too.
  const TaskData data = HandMadeTask({{5, 17}, {200, 3, 9}, {42}, {7, 7, 250}}, Vocab());
  for (const torch::Tensor& prompt : {RandomPrompt(4), torch::Tensor()}) {
    for (int64_t batch_size : {1, 4, 9}) {
      SCOPED_TRACE(testing::Message() << "prompt " << prompt.defined() << ", batch " << batch_size);
      const auto [one_pass, rows] = BothPaths(*model_, *tokenizer_, prompt, data, batch_size);
      ExpectSameFigures(one_pass, rows, Tolerance());
    }
  }
}

TEST_P(RankEvalTest, OnlyMultiTokenLabelsMatchPerLabelRows) {
  const TaskData data = HandMadeTask({{12, 300}, {99, 4, 61}}, Vocab());
  const auto [one_pass, rows] = BothPaths(*model_, *tokenizer_, RandomPrompt(2), data, /*batch_size=*/5);
  ExpectSameFigures(one_pass, rows, Tolerance());
}

TEST_P(RankEvalTest, SingleTokenLabelsMatchPerLabelRows) {
  const TaskData data = HandMadeTask({{5}, {200}, {42}}, Vocab());
  for (const torch::Tensor& prompt : {RandomPrompt(3), torch::Tensor()}) {
    for (int64_t batch_size : {1, 4}) {
      SCOPED_TRACE(testing::Message() << "prompt " << prompt.defined() << ", batch " << batch_size);
      const auto [one_pass, rows] = BothPaths(*model_, *tokenizer_, prompt, data, batch_size);
      ExpectSameFigures(one_pass, rows, Tolerance());
    }
  }
}

// Batch composition does not change the scores: one example per batch (no
// pads) equals all in one batch (pads between each input and its suffix).
TEST_P(RankEvalTest, BatchSizeDoesNotChangeTheFigures) {
  const TaskData data = HandMadeTask({{5, 17}, {200, 3, 9}, {42}}, Vocab());
  LocalCollective local;
  EvalOptions options;
  options.batch_size = 1;
  const EvalResult alone = EvaluatePrompt(*model_, *tokenizer_, RandomPrompt(4), data, options, local);
  options.batch_size = static_cast<int64_t>(data.examples.size());
  const EvalResult together = EvaluatePrompt(*model_, *tokenizer_, RandomPrompt(4), data, options, local);
  ExpectSameFigures(alone, together, Tolerance());
}

// Verbalizer words through the tokenizer: 1, 2 and 3+ tokens on the toy task.
TEST_P(RankEvalTest, TokenizedMultiTokenVerbalizerMatchesPerLabelRows) {
  TaskSpec spec = test::ToyAnimalsSpec();
  spec.verbalizer = {{"dog", " big brown dog"}, {"fox", " fox"}};
  const TaskData data = LoadTaskData(DataPath("tasks/toy_animals_dev.jsonl"), spec, *tokenizer_);
  ASSERT_EQ(data.label_ids.size(), 2u);
  ASSERT_GE(data.label_ids[0].size(), 3u);
  ASSERT_NE(data.label_ids[0].size(), data.label_ids[1].size());
  const auto [one_pass, rows] = BothPaths(*model_, *tokenizer_, RandomPrompt(4), data, /*batch_size=*/6);
  ExpectSameFigures(one_pass, rows, Tolerance());
}

TEST_P(RankEvalTest, EmptyInputWithoutPromptIsTheSameError) {
  TaskData data = HandMadeTask({{5, 17}, {42}}, Vocab());
  data.examples[1].input_ids.clear();
  LocalCollective local;
  EvalOptions options;
  const std::string one_pass =
      test::ErrorOf([&] { EvaluatePrompt(*model_, *tokenizer_, torch::Tensor(), data, options, local); });
  options.per_label_rows = true;
  const std::string rows =
      test::ErrorOf([&] { EvaluatePrompt(*model_, *tokenizer_, torch::Tensor(), data, options, local); });
  EXPECT_EQ(one_pass, rows);
  EXPECT_TRUE(test::HasText(one_pass, "line 2"));
}

std::string ParamName(const ::testing::TestParamInfo<RankEvalTest::ParamType>& param_info) {
  std::string name = std::get<0>(param_info.param) + (std::get<1>(param_info.param) == torch::kFloat64 ? "_f64" : "_f32");
  for (char& c : name) c = c == '-' ? '_' : c;
  return name;
}

INSTANTIATE_TEST_SUITE_P(TinyModels, RankEvalTest,
                         ::testing::Combine(::testing::Values("tiny-llama", "tiny-gpt2", "tiny-llama3-scaled"),
                                            ::testing::Values(torch::kFloat32, torch::kFloat64)),
                         ParamName);

}  // namespace
}  // namespace promptsweep
