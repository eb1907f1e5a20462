#include "worker/train_executor.h"

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "engine/adapter.h"
#include "engine/job_settings.h"
#include "worker/train_job.h"
#include "common/error.h"
#include "common/job.h"
#include "coordinator/sweep_spec.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::ErrorOf;
using test::HasText;

std::string DataPath(const std::string& relative) { return std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/" + relative; }

// The toy animals task (does a sentence mention a dog or a fox?) on the tiny
// Llama, as a coordinator sends it: every setting, absolute paths.
JobSpec ToyJob(const std::string& id, int64_t max_steps = 8, const std::string& seed = "7") {
  JobSpec job;
  job.sweep = "toy";
  job.job_id = id;
  job.attempt = 1;
  job.settings = {
      {"model", DataPath("models/tiny-llama")},
      {"device", "cpu"},
      {"dtype", "float32"},
      {"task", "classification"},
      {"template", "{text}. animal:"},
      {"max_length", "32"},
      {"train", DataPath("tasks/toy_animals_train.jsonl")},
      {"dev", DataPath("tasks/toy_animals_dev.jsonl")},
      {"test", DataPath("tasks/toy_animals_test.jsonl")},
      {"num_virtual_tokens", "4"},
      {"optimizer", "adamw"},
      {"learning_rate", "0.1"},
      {"batch_size", "4"},
      {"max_steps", std::to_string(max_steps)},
      {"eval_every", "4"},
      {"log_every", "2"},
      {"seed", seed},
      {"threads", "1"},
  };
  job.verbalizer = {{"dog", " dog"}, {"fox", " fox"}};
  return job;
}

void SetSetting(JobSpec& job, const std::string& name, const std::string& value) {
  for (auto& [key, text] : job.settings) {
    if (key == name) {
      text = value;
      return;
    }
  }
  job.settings.emplace_back(name, value);
}

// The bytes of result file `name` of an outcome ("" when absent).
std::string FileOf(const JobOutcome& outcome, const std::string& name) {
  for (const auto& [file, bytes] : outcome.files) {
    if (file == name) return bytes;
  }
  return "";
}

class TrainExecutorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { torch::set_num_threads(1); }  // deterministic and fair on a shared machine

  TrainJobExecutor::Options Options() const { return {/*memory_budget_bytes=*/0, work_.path().string()}; }

  // `job` run by TrainJob on a freshly loaded model: the `promptsweep train` path.
  TrainJobResult RunDirectly(const JobSpec& job, const std::string& output) {
    TrainJobArgs args;
    SettingFlags flags;
    flags.Add(TrainJobSettings(args));
    flags.ApplySettings(job.settings, job.verbalizer, "job " + job.job_id);
    args.output = output;
    ValidateTrainJob(args);
    const Engine engine = LoadEngine(args.model);
    TrainJob train(args, engine.model, *engine.tokenizer);
    return train.Run({});
  }

  bool WorkDirIsEmpty() const { return std::filesystem::is_empty(work_.path()); }

  test::ScopedTempDir work_;
  test::ScopedTempDir direct_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> preempt_{false};
};

TEST_F(TrainExecutorTest, RunsAJobExactlyAsTheTrainCommandDoes) {
  const JobSpec job = ToyJob("0123456789abcdef");
  TrainJobExecutor executor(Options());
  std::vector<JobProgress> progress;
  JobContext context;
  context.stop = &stop_;
  context.preempt = &preempt_;
  context.progress = [&progress](const JobProgress& p) { progress.push_back(p); };
  const JobOutcome outcome = executor.Run(job, context);
  ASSERT_EQ(outcome.state, JobState::kSucceeded) << outcome.message;

  const std::string output = direct_.File("direct");
  const TrainJobResult direct = RunDirectly(job, output);
  ASSERT_EQ(direct.result.status, TrainStatus::kSucceeded);
  EXPECT_EQ(FileOf(outcome, "adapter_model.safetensors"), test::ReadFileBytes(output + "/adapter_model.safetensors"));
  // adapter_config.json names the same model and settings.
  EXPECT_EQ(FileOf(outcome, "adapter_config.json"), test::ReadFileBytes(output + "/adapter_config.json"));

  EXPECT_EQ(outcome.metric_name, "accuracy");
  EXPECT_EQ(outcome.steps, 8);
  EXPECT_EQ(outcome.best_step, direct.result.best_step);
  ASSERT_TRUE(outcome.best_dev && outcome.final_dev && outcome.test);
  EXPECT_EQ(*outcome.best_dev, *direct.result.best_dev->accuracy);
  EXPECT_EQ(*outcome.final_dev, *direct.result.final_dev->accuracy);
  EXPECT_EQ(*outcome.test, *direct.result.test->accuracy);
  EXPECT_EQ(outcome.train_loss, direct.result.final_train_loss);
  EXPECT_GT(outcome.tokens_per_second, 0);
  EXPECT_FALSE(outcome.retryable);
  EXPECT_TRUE(outcome.checkpoint.empty());
  ASSERT_EQ(outcome.history.size(), direct.result.history.size());
  for (std::size_t i = 0; i < outcome.history.size(); ++i) {
    EXPECT_EQ(outcome.history[i].step, direct.result.history[i].step);
    EXPECT_EQ(outcome.history[i].split, direct.result.history[i].split);
    EXPECT_EQ(outcome.history[i].metric, direct.result.history[i].metric);
  }

  // The PEFT pair, the task file beside it, result.json.
  ASSERT_EQ(outcome.files.size(), 4u);
  EXPECT_EQ(FileOf(outcome, kAdapterTaskFile), test::ReadFileBytes(output + "/" + kAdapterTaskFile));
  EXPECT_TRUE(HasText(FileOf(outcome, kAdapterTaskFile), "template: \"{text}. animal:\""));
  const nlohmann::json result = nlohmann::json::parse(FileOf(outcome, "result.json"));
  EXPECT_EQ(result["status"], "succeeded");
  EXPECT_EQ(result["model"], DataPath("models/tiny-llama"));
  EXPECT_EQ(result["settings"]["seed"], 7);

  ASSERT_EQ(progress.size(), 8u);
  EXPECT_EQ(progress[0].step, 1);
  EXPECT_EQ(progress[0].max_steps, 8);
  EXPECT_FALSE(progress[0].dev_metric.has_value());
  ASSERT_TRUE(progress[3].dev_metric.has_value());  // eval_every 4
  EXPECT_TRUE(progress[3].best_metric.has_value());
  EXPECT_EQ(*progress[7].dev_metric, *outcome.final_dev);

  EXPECT_TRUE(WorkDirIsEmpty());  // the run's directory is gone, its files are in the outcome
}

TEST_F(TrainExecutorTest, SecondJobOnTheSameModelAndDataLoadsNothing) {
  TrainJobExecutor executor(Options());
  const JobSpec first = ToyJob("aaaaaaaaaaaaaaaa", 2, "1");
  const JobSpec second = ToyJob("bbbbbbbbbbbbbbbb", 2, "2");
  EXPECT_EQ(executor.Run(first, JobContext{}).state, JobState::kSucceeded);
  EXPECT_EQ(executor.Run(second, JobContext{}).state, JobState::kSucceeded);
  EXPECT_EQ(executor.stats().model_loads, 1);
  EXPECT_EQ(executor.stats().data_loads, 3);  // train, dev, test once each
  EXPECT_EQ(executor.LoadedModels(), std::vector<std::string>{ModelKey(first.settings)});
  // Another dtype is another model.
  JobSpec bf16 = ToyJob("cccccccccccccccc", 1);
  SetSetting(bf16, "dtype", "bfloat16");
  EXPECT_EQ(executor.Run(bf16, JobContext{}).state, JobState::kSucceeded);
  EXPECT_EQ(executor.stats().model_loads, 2);
  EXPECT_EQ(executor.LoadedModels(), (std::vector<std::string>{ModelKey(bf16.settings), ModelKey(first.settings)}));
}

TEST_F(TrainExecutorTest, PreemptedJobResumesFromItsCheckpointToTheSameAdapter) {
  TrainJobExecutor executor(Options());
  JobSpec job = ToyJob("fedcba9876543210");
  const JobOutcome straight = executor.Run(job, JobContext{});
  ASSERT_EQ(straight.state, JobState::kSucceeded) << straight.message;

  // The worker is told to stop (preemption) while step 3 reports progress.
  JobContext context;
  context.stop = &stop_;
  context.preempt = &preempt_;
  context.progress = [this](const JobProgress& p) {
    if (p.step == 3) {
      preempt_ = true;
      stop_ = true;
    }
  };
  const JobOutcome preempted = executor.Run(job, context);
  ASSERT_EQ(preempted.state, JobState::kCancelled) << preempted.message;
  EXPECT_EQ(preempted.steps, 3);
  EXPECT_TRUE(HasText(preempted.message, "stopped at step 3"));
  EXPECT_FALSE(preempted.retryable);
  ASSERT_FALSE(preempted.checkpoint.empty());
  EXPECT_TRUE(FileOf(preempted, "adapter_model.safetensors").empty());

  job.attempt = 2;
  job.checkpoint = preempted.checkpoint;
  stop_ = false;
  preempt_ = false;
  std::vector<int64_t> steps;
  JobContext resume_context;
  resume_context.progress = [&steps](const JobProgress& p) { steps.push_back(p.step); };
  const JobOutcome resumed = executor.Run(job, resume_context);
  ASSERT_EQ(resumed.state, JobState::kSucceeded) << resumed.message;
  EXPECT_EQ(steps, (std::vector<int64_t>{4, 5, 6, 7, 8}));  // went on from the checkpoint
  EXPECT_EQ(resumed.steps, 8);
  EXPECT_EQ(FileOf(resumed, "adapter_model.safetensors"), FileOf(straight, "adapter_model.safetensors"));
  EXPECT_EQ(resumed.best_dev, straight.best_dev);
  EXPECT_EQ(resumed.test, straight.test);
  EXPECT_EQ(resumed.history.size(), straight.history.size());  // the history goes across the resume
  EXPECT_TRUE(WorkDirIsEmpty());
}

// The prompt of an outcome's adapter files.
torch::Tensor PromptOf(const JobOutcome& outcome, const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (const char* name : {"adapter_config.json", "adapter_model.safetensors"}) {
    test::WriteFileBytes(dir + "/" + name, FileOf(outcome, name));
  }
  return LoadPromptAdapter(dir).prompt;
}

TEST_F(TrainExecutorTest, PackedJobsTrainTogetherToTheAdaptersOfLoneJobs) {
  std::vector<JobSpec> jobs = {ToyJob("1111111111111111", 8, "1"), ToyJob("2222222222222222", 8, "2"),
                               ToyJob("3333333333333333", 6, "3")};
  SetSetting(jobs[1], "num_virtual_tokens", "7");
  SetSetting(jobs[1], "learning_rate", "0.03");
  SetSetting(jobs[2], "batch_size", "3");
  SetSetting(jobs[2], "eval_every", "3");
  TrainJobExecutor alone_executor(Options());
  std::vector<JobOutcome> alone;
  for (const JobSpec& job : jobs) alone.push_back(alone_executor.Run(job, JobContext{}));

  TrainJobExecutor::Options options = Options();
  options.pack = 3;
  TrainJobExecutor executor(options);
  std::vector<JobOutcome> packed(jobs.size());
  std::vector<std::thread> slots;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    slots.emplace_back([&, i] { packed[i] = executor.Run(jobs[i], JobContext{}); });
  }
  for (std::thread& slot : slots) slot.join();
  EXPECT_EQ(executor.stats().model_loads, 1);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    SCOPED_TRACE("job " + jobs[i].job_id);
    ASSERT_EQ(packed[i].state, JobState::kSucceeded) << packed[i].message;
    ASSERT_EQ(alone[i].state, JobState::kSucceeded) << alone[i].message;
    EXPECT_EQ(packed[i].steps, alone[i].steps);
    EXPECT_EQ(packed[i].best_dev, alone[i].best_dev);
    EXPECT_EQ(packed[i].best_step, alone[i].best_step);
    const torch::Tensor a = PromptOf(packed[i], direct_.File("packed" + std::to_string(i)));
    const torch::Tensor b = PromptOf(alone[i], direct_.File("alone" + std::to_string(i)));
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-4);
    EXPECT_FALSE(FileOf(packed[i], kAdapterTaskFile).empty());
  }
  EXPECT_TRUE(WorkDirIsEmpty());
}

TEST_F(TrainExecutorTest, APackedJobPreemptedMidwayResumesAloneToTheSameAdapter) {
  const JobSpec mate = ToyJob("4444444444444444", 8, "4");
  JobSpec job = ToyJob("5555555555555555", 8, "5");
  TrainJobExecutor alone_executor(Options());
  const JobOutcome straight = alone_executor.Run(job, JobContext{});
  ASSERT_EQ(straight.state, JobState::kSucceeded) << straight.message;

  TrainJobExecutor::Options options = Options();
  options.pack = 2;
  TrainJobExecutor executor(options);
  JobContext context;
  context.stop = &stop_;
  context.preempt = &preempt_;
  context.progress = [this](const JobProgress& p) {
    if (p.step == 3) {
      preempt_ = true;
      stop_ = true;
    }
  };
  JobOutcome preempted;
  JobOutcome mate_outcome;
  std::thread mate_slot([&] { mate_outcome = executor.Run(mate, JobContext{}); });
  std::thread job_slot([&] { preempted = executor.Run(job, context); });
  job_slot.join();
  mate_slot.join();
  ASSERT_EQ(mate_outcome.state, JobState::kSucceeded) << mate_outcome.message;  // its mate is untouched
  ASSERT_EQ(preempted.state, JobState::kCancelled) << preempted.message;
  EXPECT_EQ(preempted.steps, 3);
  ASSERT_FALSE(preempted.checkpoint.empty());

  job.attempt = 2;
  job.checkpoint = preempted.checkpoint;
  const JobOutcome resumed = executor.Run(job, JobContext{});  // alone in the pack now
  ASSERT_EQ(resumed.state, JobState::kSucceeded) << resumed.message;
  EXPECT_EQ(resumed.steps, 8);
  EXPECT_EQ(resumed.best_dev, straight.best_dev);
  const torch::Tensor a = PromptOf(resumed, direct_.File("resumed"));
  const torch::Tensor b = PromptOf(straight, direct_.File("straight"));
  EXPECT_LE((a - b).abs().max().item<double>(), 1e-4);
}

TEST_F(TrainExecutorTest, CancelWithoutPreemptionReturnsNoCheckpoint) {
  TrainJobExecutor executor(Options());
  JobContext context;
  context.stop = &stop_;
  context.preempt = &preempt_;
  context.progress = [this](const JobProgress& p) { stop_ = p.step == 2; };
  const JobOutcome outcome = executor.Run(ToyJob("1111111111111111"), context);
  EXPECT_EQ(outcome.state, JobState::kCancelled);
  EXPECT_EQ(outcome.steps, 2);
  EXPECT_TRUE(outcome.checkpoint.empty());
}

TEST_F(TrainExecutorTest, WrongModelPathFailsForGoodNamingThePath) {
  TrainJobExecutor executor(Options());
  JobSpec job = ToyJob("2222222222222222");
  SetSetting(job, "model", "/nonexistent/models/pico");
  const JobOutcome outcome = executor.Run(job, JobContext{});
  EXPECT_EQ(outcome.state, JobState::kFailed);
  EXPECT_FALSE(outcome.retryable);
  EXPECT_TRUE(HasText(outcome.message, "/nonexistent/models/pico: not a model directory"));
  EXPECT_TRUE(executor.LoadedModels().empty());
  EXPECT_TRUE(WorkDirIsEmpty());
}

TEST_F(TrainExecutorTest, JobErrorsFailForGoodWithTheJobFilesMessages) {
  TrainJobExecutor executor(Options());
  auto failure = [&](JobSpec job) {
    const JobOutcome outcome = executor.Run(job, JobContext{});
    EXPECT_EQ(outcome.state, JobState::kFailed);
    EXPECT_FALSE(outcome.retryable);
    return outcome.message;
  };
  JobSpec bad_number = ToyJob("3333333333333333");
  SetSetting(bad_number, "learning_rate", "fast");
  EXPECT_TRUE(HasText(failure(bad_number),
                      "job 3333333333333333: learning_rate: learning_rate: expected a finite number, got 'fast'"));
  JobSpec unknown = ToyJob("3333333333333333");
  SetSetting(unknown, "lerning_rate", "0.1");
  EXPECT_TRUE(HasText(failure(unknown), "job 3333333333333333: unknown key 'lerning_rate' (known: model, tokenizer"));
  JobSpec invalid = ToyJob("3333333333333333");
  SetSetting(invalid, "batch_size", "0");
  EXPECT_TRUE(HasText(failure(invalid), "batch_size must be >= 1, got 0"));
  JobSpec missing_data = ToyJob("3333333333333333");
  SetSetting(missing_data, "train", DataPath("tasks/missing.jsonl"));
  EXPECT_TRUE(HasText(failure(missing_data), "missing.jsonl: cannot open"));
  JobSpec no_verbalizer = ToyJob("3333333333333333");
  no_verbalizer.verbalizer.clear();
  EXPECT_TRUE(HasText(failure(no_verbalizer), "a classification task needs a verbalizer"));
  JobSpec other_job_checkpoint = ToyJob("3333333333333333");
  other_job_checkpoint.checkpoint = "not a checkpoint";
  EXPECT_FALSE(failure(other_job_checkpoint).empty());
  JobSpec sleep = ToyJob("3333333333333333");
  sleep.kind = std::string(kSleepJob);
  EXPECT_TRUE(HasText(failure(sleep), "kind 'sleep' is not a train job"));
  JobSpec escape = ToyJob("../escape");
  EXPECT_TRUE(HasText(failure(escape), "a job id is letters, digits"));
  EXPECT_TRUE(WorkDirIsEmpty());
}

TEST_F(TrainExecutorTest, WorkerOverridesDeviceAndThreads) {
  TrainJobExecutor executor(Options());
  JobContext context;
  context.device = "tpu";
  const JobOutcome outcome = executor.Run(ToyJob("4444444444444444", 1), context);
  EXPECT_EQ(outcome.state, JobState::kFailed);
  EXPECT_TRUE(HasText(outcome.message, "unsupported device 'tpu'"));
  context.device = "cpu";
  context.threads = 1;
  EXPECT_EQ(executor.Run(ToyJob("4444444444444444", 1), context).state, JobState::kSucceeded);
  EXPECT_EQ(torch::get_num_threads(), 1);
}

TEST_F(TrainExecutorTest, RunsTheJobsOfASweepFile) {
  // Settings exactly as the sweep reader makes them (every default spelled out).
  const Sweep sweep = ReadSweep(DataPath("sweeps/toy_grid.yaml"), TrainSweepSchema());
  ASSERT_EQ(sweep.jobs.size(), 8u);
  TrainJobExecutor executor(Options());
  JobContext context;
  context.threads = 1;
  for (const SweepJob& sweep_job : sweep.jobs) {
    JobSpec job;
    job.sweep = sweep.name;
    job.job_id = sweep_job.id;
    job.attempt = 1;
    job.settings = sweep_job.settings.values;
    job.verbalizer = sweep_job.settings.verbalizer;
    const JobOutcome outcome = executor.Run(job, context);
    EXPECT_EQ(outcome.state, JobState::kSucceeded) << sweep_job.id << ": " << outcome.message;
    EXPECT_EQ(outcome.steps, 2);
    EXPECT_EQ(outcome.metric_name, "accuracy");
  }
  EXPECT_EQ(executor.stats().model_loads, 1);
  EXPECT_EQ(executor.stats().data_loads, 2);  // train and dev
  EXPECT_EQ(executor.LoadedModels(), std::vector<std::string>{ModelKey(sweep.jobs.front().settings.values)});
}

TEST(SettingFlagsTest, ApplySettingsSetsWhatAJobFileSets) {
  TrainJobArgs args;
  SettingFlags flags;
  flags.Add(TrainJobSettings(args));
  flags.ApplySettings({{"model", "/models/m"}, {"learning-rate", "0.05"}, {"max_length", "64"}, {"train", "/d/t.jsonl"}},
                      {{"spam", " money"}, {"ham", " software"}}, "job x");
  EXPECT_EQ(args.model.model_dir, "/models/m");
  EXPECT_EQ(args.trainer.learning_rate, 0.05);
  EXPECT_EQ(args.task.max_length, 64);
  EXPECT_EQ(args.train_path, "/d/t.jsonl");
  EXPECT_EQ(args.task.verbalizer,
            (std::vector<std::pair<std::string, std::string>>{{"spam", " money"}, {"ham", " software"}}));
  EXPECT_TRUE(HasText(ErrorOf([&] { flags.ApplySettings({{"max_length", "x"}}, {}, "job y"); }), "job y: max_length"));
  EXPECT_TRUE(HasText(ErrorOf([&] { flags.ApplySettings({}, {{"", "words"}}, "job z"); }),
                      "job z: verbalizer: expected label=words, got '=words'"));
}

}  // namespace
}  // namespace promptsweep
