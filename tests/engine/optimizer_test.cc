#include "engine/optimizer.h"

#include <cmath>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "engine/tensor_io.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

std::map<std::string, torch::Tensor> ToMap(const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  std::map<std::string, torch::Tensor> map;
  for (const auto& [name, tensor] : named) map.emplace(name, tensor.clone());
  return map;
}

TEST(OptimizerTest, AdamWMatchesTorchAdamWOver20Steps) {
  torch::manual_seed(1);
  const torch::Tensor start = torch::randn({6, 10});
  const torch::Tensor grads = torch::randn({20, 6, 10}) * torch::logspace(-3, 1, 10);

  OptimizerConfig config;
  config.kind = OptimizerKind::kAdamW;
  config.weight_decay = 0.05;
  config.beta1 = 0.8;
  config.beta2 = 0.99;
  config.adam_eps = 1e-6;
  const double lr = 0.03;
  std::unique_ptr<PromptOptimizer> ours = MakeOptimizer(config);
  torch::Tensor param = start.clone();

  torch::Tensor reference = start.clone().requires_grad_(true);
  torch::optim::AdamW torch_adamw({reference}, torch::optim::AdamWOptions(lr)
                                                   .betas({config.beta1, config.beta2})
                                                   .eps(config.adam_eps)
                                                   .weight_decay(config.weight_decay));
  for (int64_t step = 0; step < 20; ++step) {
    ours->Step(param, grads[step], lr);
    reference.mutable_grad() = grads[step].clone();
    torch_adamw.step();
    ASSERT_LE(MaxAbsDiff(param, reference.detach()), 1e-6) << "step " << step;
  }
  EXPECT_EQ(ours->step(), 20);
  EXPECT_GT(MaxAbsDiff(param, start), 1e-2);  // it did move
}

TEST(OptimizerTest, AdafactorMatchesTransformersReference) {
  // tests/data/optim/make_adafactor_reference.py: transformers' Adafactor math in PyTorch.
  const auto ref = LoadSafetensors(std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/optim/adafactor_reference.safetensors");
  const torch::Tensor grads = ref.at("grads");
  const torch::Tensor lrs = ref.at("lrs");
  const torch::Tensor trajectory = ref.at("trajectory");

  OptimizerConfig config;  // defaults: Adafactor, weight decay 1e-5, decay -0.8, clip 1, eps 1e-30
  std::unique_ptr<PromptOptimizer> adafactor = MakeOptimizer(config);
  torch::Tensor param = ref.at("param").clone();
  for (int64_t step = 0; step < grads.size(0); ++step) {
    adafactor->Step(param, grads[step], lrs[step].item<double>());
    ASSERT_LE(MaxAbsDiff(param, trajectory[step]), 1e-6) << "step " << step;
  }
  const auto state = ToMap(adafactor->StateTensors());
  ASSERT_EQ(state.size(), 2u);
  EXPECT_LE(MaxAbsDiff(state.at("exp_avg_sq_row"), ref.at("exp_avg_sq_row")),
            1e-6 * ref.at("exp_avg_sq_row").abs().max().item<double>());
  EXPECT_LE(MaxAbsDiff(state.at("exp_avg_sq_col"), ref.at("exp_avg_sq_col")),
            1e-6 * ref.at("exp_avg_sq_col").abs().max().item<double>());
}

// Saving the state after k steps and loading it into a fresh optimizer
// continues bit-for-bit, for both optimizers.
TEST(OptimizerTest, StateRoundTripContinuesBitForBit) {
  for (OptimizerKind kind : {OptimizerKind::kAdamW, OptimizerKind::kAdafactor}) {
    SCOPED_TRACE(std::string(OptimizerName(kind)));
    torch::manual_seed(2);
    const torch::Tensor grads = torch::randn({12, 4, 8});
    OptimizerConfig config;
    config.kind = kind;
    config.weight_decay = 0.01;
    auto uninterrupted = MakeOptimizer(config);
    torch::Tensor a = torch::randn({4, 8});
    torch::Tensor b = a.clone();
    for (int64_t s = 0; s < 12; ++s) uninterrupted->Step(a, grads[s], 0.1);

    auto first = MakeOptimizer(config);
    EXPECT_TRUE(first->StateTensors().empty());
    for (int64_t s = 0; s < 5; ++s) first->Step(b, grads[s], 0.1);
    auto resumed = MakeOptimizer(config);
    resumed->LoadState(ToMap(first->StateTensors()), first->step(), b);
    EXPECT_EQ(resumed->step(), 5);
    for (int64_t s = 5; s < 12; ++s) resumed->Step(b, grads[s], 0.1);
    EXPECT_TRUE(torch::equal(a, b));
  }
}

TEST(OptimizerTest, LoadStateRejectsMissingOrMisshapedTensors) {
  OptimizerConfig config;
  const torch::Tensor param = torch::zeros({4, 8});
  auto adafactor = MakeOptimizer(config);
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] {
                              adafactor->LoadState({{"exp_avg_sq_row", torch::zeros({4})}}, 3, param);
                            }),
                            "'exp_avg_sq_col' is missing"));
  config.kind = OptimizerKind::kAdamW;
  auto adamw = MakeOptimizer(config);
  EXPECT_TRUE(test::HasText(
      test::ErrorOf([&] {
        adamw->LoadState({{"exp_avg", torch::zeros({4, 8})}, {"exp_avg_sq", torch::zeros({8, 4})}}, 3, param);
      }),
      "'exp_avg_sq' is [8, 4]"));
  // Step 0: no state is needed.
  EXPECT_NO_THROW(adamw->LoadState({}, 0, param));
}

TEST(OptimizerTest, ParsesNamesAndRejectsUnknownOnes) {
  EXPECT_EQ(ParseOptimizerKind("AdamW"), OptimizerKind::kAdamW);
  EXPECT_EQ(ParseOptimizerKind("adafactor"), OptimizerKind::kAdafactor);
  EXPECT_THROW(ParseOptimizerKind("sgd"), Error);
  EXPECT_EQ(ParseScheduleKind("Cosine"), ScheduleKind::kCosine);
  EXPECT_EQ(ParseScheduleKind(std::string(ScheduleName(ScheduleKind::kLinear))), ScheduleKind::kLinear);
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ParseScheduleKind("step"); }), "constant, linear, cosine"));
}

// transformers' schedules with warmup 10 over 110 steps.
TEST(OptimizerTest, SchedulesFollowTransformers) {
  LearningRateSchedule schedule{ScheduleKind::kConstant, /*warmup_steps=*/10, /*total_steps=*/110};
  EXPECT_DOUBLE_EQ(schedule.Factor(0), 0.0);
  EXPECT_DOUBLE_EQ(schedule.Factor(5), 0.5);
  EXPECT_DOUBLE_EQ(schedule.Factor(10), 1.0);
  EXPECT_DOUBLE_EQ(schedule.Factor(109), 1.0);

  schedule.kind = ScheduleKind::kLinear;
  EXPECT_DOUBLE_EQ(schedule.Factor(5), 0.5);
  EXPECT_DOUBLE_EQ(schedule.Factor(10), 1.0);
  EXPECT_DOUBLE_EQ(schedule.Factor(60), 0.5);
  EXPECT_DOUBLE_EQ(schedule.Factor(85), 0.25);
  EXPECT_DOUBLE_EQ(schedule.Factor(110), 0.0);
  EXPECT_DOUBLE_EQ(schedule.Factor(200), 0.0);

  schedule.kind = ScheduleKind::kCosine;
  EXPECT_DOUBLE_EQ(schedule.Factor(5), 0.5);
  EXPECT_DOUBLE_EQ(schedule.Factor(10), 1.0);
  EXPECT_NEAR(schedule.Factor(60), 0.5, 1e-12);
  EXPECT_NEAR(schedule.Factor(35), 0.5 * (1 + std::cos(M_PI / 4)), 1e-12);
  EXPECT_NEAR(schedule.Factor(110), 0.0, 1e-12);

  // No warmup: the first step has the full rate.
  const LearningRateSchedule no_warmup{ScheduleKind::kLinear, 0, 4};
  EXPECT_DOUBLE_EQ(no_warmup.Factor(0), 1.0);
  EXPECT_DOUBLE_EQ(no_warmup.Factor(1), 0.75);
}

}  // namespace
}  // namespace promptsweep
