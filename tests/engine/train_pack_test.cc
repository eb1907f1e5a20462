#include "engine/train_pack.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "test_utils.h"

namespace promptsweep {
namespace {

std::string DataPath(const std::string& relative) { return std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/" + relative; }

// Packed training on the tiny Llama (float64 weights: rounding differences
// between a packed and a lone batch stay at 1e-16) and the toy task.
class TrainPackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    ModelLoadOptions options;
    options.dtype = torch::kFloat64;
    model_ = CausalLM::Load(DataPath("models/tiny-llama"), options);
    tokenizer_ = Tokenizer::FromFile(DataPath("models/tiny-llama/tokenizer.json")).release();
    const TaskSpec spec = test::ToyAnimalsSpec();
    train_ = new TaskData(LoadTaskData(DataPath("tasks/toy_animals_train.jsonl"), spec, *tokenizer_));
    dev_ = new TaskData(LoadTaskData(DataPath("tasks/toy_animals_dev.jsonl"), spec, *tokenizer_));
  }
  static void TearDownTestSuite() {
    delete train_;
    delete dev_;
    delete tokenizer_;
    model_.reset();
  }

  // Jobs that differ in everything packing allows to differ: learning rate,
  // prompt length, init, seed, optimizer, batch size, accumulation, steps and
  // eval schedule.
  static std::vector<TrainerConfig> Jobs() {
    std::vector<TrainerConfig> jobs(4);
    jobs[0].prompt.num_virtual_tokens = 4;
    jobs[0].optimizer.kind = OptimizerKind::kAdamW;
    jobs[0].learning_rate = 0.05;
    jobs[0].batch_size = 4;
    jobs[0].eval_every = 10;
    jobs[0].seed = 1;

    jobs[1].prompt.num_virtual_tokens = 8;
    jobs[1].prompt.init = PromptInit::kText;
    jobs[1].prompt.init_text = "Does it mention a dog or a fox?";
    jobs[1].optimizer.kind = OptimizerKind::kAdafactor;
    jobs[1].learning_rate = 0.3;
    jobs[1].batch_size = 3;
    jobs[1].gradient_accumulation_steps = 2;
    jobs[1].eval_every = 25;
    jobs[1].seed = 2;

    jobs[2].prompt.num_virtual_tokens = 2;
    jobs[2].prompt.init = PromptInit::kSampleVocab;
    jobs[2].optimizer.kind = OptimizerKind::kAdamW;
    jobs[2].learning_rate = 0.01;
    jobs[2].batch_size = 5;
    jobs[2].max_grad_norm = 0.5;
    jobs[2].eval_every = 10;
    jobs[2].seed = 3;

    jobs[3] = jobs[0];
    jobs[3].seed = 4;
    jobs[3].eval_every = 7;
    for (TrainerConfig& job : jobs) {
      job.max_steps = 50;
      job.log_every = 5;
    }
    jobs[2].max_steps = 30;  // leaves the pack early
    return jobs;
  }

  static std::unique_ptr<PromptTrainer> Trainer(const TrainerConfig& config, LocalCollective& local) {
    return std::make_unique<PromptTrainer>(model_, *tokenizer_, config, TrainerData{train_, dev_, nullptr}, local);
  }

  static void ExpectSameRun(const TrainResult& packed, const TrainResult& alone, double tolerance) {
    ASSERT_EQ(packed.status, alone.status) << packed.message;
    EXPECT_EQ(packed.steps, alone.steps);
    EXPECT_EQ(packed.best_step, alone.best_step);
    EXPECT_LE((packed.final_prompt - alone.final_prompt).abs().max().item<double>(), tolerance);
    EXPECT_LE((packed.best_prompt - alone.best_prompt).abs().max().item<double>(), tolerance);
    ASSERT_EQ(packed.history.size(), alone.history.size());
    for (std::size_t i = 0; i < packed.history.size(); ++i) {
      EXPECT_EQ(packed.history[i].step, alone.history[i].step);
      EXPECT_EQ(packed.history[i].metric, alone.history[i].metric);
      EXPECT_NEAR(packed.history[i].value, alone.history[i].value, 1e-6) << packed.history[i].metric;
    }
  }

  static std::shared_ptr<const CausalLM> model_;
  static Tokenizer* tokenizer_;
  static TaskData* train_;
  static TaskData* dev_;
};

std::shared_ptr<const CausalLM> TrainPackTest::model_;
Tokenizer* TrainPackTest::tokenizer_ = nullptr;
TaskData* TrainPackTest::train_ = nullptr;
TaskData* TrainPackTest::dev_ = nullptr;

TEST_F(TrainPackTest, PackedJobsEqualEachJobTrainedAlone) {
  const std::vector<TrainerConfig> jobs = Jobs();
  std::vector<TrainResult> alone;
  for (const TrainerConfig& config : jobs) {
    LocalCollective local;
    alone.push_back(Trainer(config, local)->Run());
    ASSERT_EQ(alone.back().status, TrainStatus::kSucceeded) << alone.back().message;
  }

  std::vector<LocalCollective> locals(jobs.size());
  std::vector<std::unique_ptr<PromptTrainer>> trainers;
  TrainPack pack(model_);
  std::vector<int64_t> slots;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    trainers.push_back(Trainer(jobs[i], locals[i]));
    slots.push_back(pack.Add(trainers.back().get(), {}));
  }
  std::vector<std::optional<TrainResult>> packed(jobs.size());
  int64_t steps = 0;
  int64_t finished_at_30 = 0;
  while (!pack.empty()) {
    for (TrainPack::Finished& done : pack.Step()) {
      const auto index = static_cast<std::size_t>(done.slot - slots.front());
      packed[index] = std::move(done.result);
      if (steps + 1 == 30) ++finished_at_30;
    }
    ++steps;
  }
  EXPECT_EQ(finished_at_30, 1);  // the 30-step job left the pack when it was done
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    SCOPED_TRACE("job " + std::to_string(i));
    ASSERT_TRUE(packed[i].has_value());
    ExpectSameRun(*packed[i], alone[i], 1e-8);
  }
}

TEST_F(TrainPackTest, ADivergingJobLeavesItsPackMatesUntouched) {
  std::vector<TrainerConfig> jobs = Jobs();
  jobs.resize(2);
  jobs[1].learning_rate = 1e30;
  jobs[1].optimizer.kind = OptimizerKind::kAdamW;
  LocalCollective alone_local;
  const TrainResult alone = Trainer(jobs[0], alone_local)->Run();

  std::vector<LocalCollective> locals(2);
  auto healthy = Trainer(jobs[0], locals[0]);
  auto diverging = Trainer(jobs[1], locals[1]);
  TrainPack pack(model_);
  const int64_t healthy_slot = pack.Add(healthy.get(), {});
  pack.Add(diverging.get(), {});
  std::optional<TrainResult> healthy_result;
  std::optional<TrainResult> diverged_result;
  while (!pack.empty()) {
    for (TrainPack::Finished& done : pack.Step()) {
      (done.slot == healthy_slot ? healthy_result : diverged_result) = std::move(done.result);
    }
  }
  ASSERT_TRUE(diverged_result && healthy_result);
  EXPECT_EQ(diverged_result->status, TrainStatus::kDiverged);
  EXPECT_TRUE(test::HasText(diverged_result->message, "lower learning_rate"));
  ExpectSameRun(*healthy_result, alone, 1e-8);
}

// Early termination in a pack: the terminated job leaves at once as stopped
// (its slot frees), its mate trains on exactly as alone.
TEST_F(TrainPackTest, ATerminatedJobLeavesThePackAtOnceAsStopped) {
  std::vector<TrainerConfig> jobs = Jobs();
  jobs.resize(2);
  LocalCollective alone_local;
  const TrainResult alone = Trainer(jobs[0], alone_local)->Run();

  std::vector<LocalCollective> locals(2);
  auto mate = Trainer(jobs[0], locals[0]);
  auto terminated = Trainer(jobs[1], locals[1]);
  std::atomic<bool> terminate{false};
  RunHooks hooks;
  hooks.terminate = &terminate;
  hooks.progress = [&](const TrainProgress& progress) {
    if (progress.step == 10) terminate = true;
  };
  TrainPack pack(model_);
  const int64_t mate_slot = pack.Add(mate.get(), {});
  pack.Add(terminated.get(), hooks);
  std::optional<TrainResult> mate_result;
  std::optional<TrainResult> stopped_result;
  int64_t steps_after_stop = 0;
  while (!pack.empty()) {
    for (TrainPack::Finished& done : pack.Step()) {
      (done.slot == mate_slot ? mate_result : stopped_result) = std::move(done.result);
    }
    if (stopped_result && !mate_result) ++steps_after_stop;
  }
  ASSERT_TRUE(stopped_result && mate_result);
  EXPECT_EQ(stopped_result->status, TrainStatus::kStopped) << stopped_result->message;
  EXPECT_EQ(stopped_result->steps, 10);
  EXPECT_GT(steps_after_stop, 0) << "the mate trained on alone";
  ExpectSameRun(*mate_result, alone, 1e-8);
}

TEST_F(TrainPackTest, AJobStoppedInAPackResumesAloneToTheSamePrompt) {
  const TrainerConfig config = Jobs()[1];
  LocalCollective uninterrupted_local;
  const TrainResult uninterrupted = Trainer(config, uninterrupted_local)->Run();

  std::vector<LocalCollective> locals(2);
  auto stopped = Trainer(config, locals[0]);
  auto mate = Trainer(Jobs()[0], locals[1]);
  std::atomic<bool> stop{false};
  RunHooks hooks;
  hooks.stop = &stop;
  hooks.progress = [&](const TrainProgress& progress) {
    if (progress.step == 20) stop = true;
  };
  TrainPack pack(model_);
  const int64_t slot = pack.Add(stopped.get(), hooks);
  pack.Add(mate.get(), {});
  std::optional<TrainResult> cancelled;
  while (!pack.empty()) {
    for (TrainPack::Finished& done : pack.Step()) {
      if (done.slot == slot) cancelled = std::move(done.result);
    }
  }
  ASSERT_TRUE(cancelled.has_value());
  ASSERT_EQ(cancelled->status, TrainStatus::kCancelled);
  EXPECT_EQ(cancelled->steps, 20);
  const std::string checkpoint = ::testing::TempDir() + "/train_pack_resume.safetensors";
  stopped->SaveState(checkpoint);

  LocalCollective resumed_local;
  auto resumed = Trainer(config, resumed_local);
  resumed->LoadState(checkpoint);
  const TrainResult result = resumed->Run();
  ASSERT_EQ(result.status, TrainStatus::kSucceeded) << result.message;
  EXPECT_EQ(result.steps, 50);
  EXPECT_LE((result.final_prompt - uninterrupted.final_prompt).abs().max().item<double>(), 1e-8);
  EXPECT_EQ(result.best_step, uninterrupted.best_step);
}

TEST_F(TrainPackTest, RunnerTrainsConcurrentCallersInOnePack) {
  const std::vector<TrainerConfig> jobs = Jobs();
  std::vector<TrainResult> alone;
  for (const TrainerConfig& config : jobs) {
    LocalCollective local;
    alone.push_back(Trainer(config, local)->Run());
  }
  PackRunner runner(model_);
  std::vector<LocalCollective> locals(jobs.size());
  std::vector<std::unique_ptr<PromptTrainer>> trainers;
  for (std::size_t i = 0; i < jobs.size(); ++i) trainers.push_back(Trainer(jobs[i], locals[i]));
  std::vector<TrainResult> packed(jobs.size());
  std::vector<std::thread> callers;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    callers.emplace_back([&, i] { packed[i] = runner.Train(*trainers[i], {}); });
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_GE(runner.max_pack_size(), 2);
  EXPECT_EQ(runner.active(), 0);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    SCOPED_TRACE("job " + std::to_string(i));
    ExpectSameRun(packed[i], alone[i], 1e-8);
  }
}

TEST_F(TrainPackTest, EvaluatePromptsEqualsOnePromptAtATime) {
  LocalCollective local;
  std::vector<torch::Tensor> prompts;
  for (int64_t n : {3, 7, 1}) {
    SoftPromptConfig config;
    config.num_virtual_tokens = n;
    prompts.push_back(InitSoftPrompt(*model_, *tokenizer_, config, static_cast<uint64_t>(n)));
  }
  prompts.push_back(torch::Tensor());  // the bare model
  EvalOptions options;
  options.batch_size = 5;
  const std::vector<EvalResult> together = EvaluatePrompts(*model_, *tokenizer_, prompts, *dev_, options, local);
  ASSERT_EQ(together.size(), prompts.size());
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    SCOPED_TRACE("prompt " + std::to_string(p));
    const EvalResult alone = EvaluatePrompt(*model_, *tokenizer_, prompts[p], *dev_, options, local);
    EXPECT_EQ(together[p].num_examples, alone.num_examples);
    EXPECT_EQ(together[p].num_target_tokens, alone.num_target_tokens);
    EXPECT_NEAR(together[p].loss, alone.loss, 1e-10);
    ASSERT_TRUE(together[p].accuracy && alone.accuracy);
    EXPECT_DOUBLE_EQ(*together[p].accuracy, *alone.accuracy);
  }
}

}  // namespace
}  // namespace promptsweep
