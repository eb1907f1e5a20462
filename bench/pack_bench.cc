// Multi-job packing (engine/train_pack.h): K prompt-tuning jobs trained in
// lockstep in one TrainPack (one forward/backward per step, per-row prompts)
// against the same K jobs trained one after the other, each alone with
// PromptTrainer::Run, in one process on the same model (run via
// bench/run_pack_bench.sh, which also times multi-adapter `promptsweep eval`).
//
//   pack_bench --model DIR --task TASK.yaml      the model's weights and tokenizer, the
//                                                task's train split (template, verbalizer,
//                                                max_length as `train --config` reads them)
//   pack_bench --config CONFIG.json --tokenizer T   random weights of that shape
//                                                (CausalLM::CreateRandom), random rows of
//                                                --length real tokens (L - 1 input + 1 target)
//   common: [--k 1 --k 2 ...] [--threads 1 --threads 2] [--dtype float32 --dtype bfloat16]
//           [--steps 10] [--warmup 1] [--batch 8] [--num-virtual-tokens 20] [--reps 1]
//           [--prewarm 2] [--label NAME] [--no-header]
//
// Job j (0-based) of every K: seed 1 + j, learning rate 0.3 · (0.5 + 0.1 j)
// (Adafactor, SAMPLE_VOCAB init), batch --batch, no dev set: training steps
// only. Each job runs warmup + steps optimizer steps; the first `warmup` steps
// are excluded (per job when sequential, of the pack when packed). Both sides
// see exactly the same examples (a packed job draws its batches as alone), so
// the real tokens (input + target, summed over jobs) are the same: the ratio
// of tokens/s is the ratio of times. Repetitions alternate which side runs
// first (and so does K), so drift on a shared machine hits both alike; before
// each dtype and thread count one job runs --prewarm steps alone, untimed.
// Prints a markdown table row per (threads, dtype, K), with the largest
// relative difference between a job's packed and sequential train losses at
// step 1 (same prompts: the forward's rounding alone) and over all steps
// (where a difference grows along the trajectory).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "common/error.h"
#include "common/model_config.h"
#include "common/task_data.h"
#include "common/tokenizer.h"
#include "engine/causal_lm.h"
#include "engine/collective.h"
#include "engine/job_settings.h"
#include "engine/train_pack.h"
#include "engine/trainer.h"

namespace promptsweep::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;      // a model directory, or
  std::string config;     // a config.json: random weights
  std::string task;       // task.yaml (with --model)
  std::string tokenizer;  // default: the model directory's
  std::string label;      // model name in the table
  int64_t length = 128;   // random rows (with --config)
  int64_t examples = 512;
  std::vector<int64_t> ks = {1, 2, 4, 8, 16};
  std::vector<int> threads = {1, 2};
  std::vector<std::string> dtypes = {"float32", "bfloat16"};
  int64_t steps = 10;
  int64_t warmup = 1;
  int64_t batch = 8;
  int64_t num_virtual_tokens = 20;
  int64_t reps = 1;
  int64_t prewarm = 2;
  bool header = true;
};

// The train split of a task file, read as `train --config` reads it.
TaskData LoadTrainSplit(const std::string& task_file, const CausalLM& model, const Tokenizer& tokenizer) {
  TrainJobArgs job;
  SettingFlags flags;
  flags.Add(TrainJobSettings(job));
  flags.ApplyJobFile(task_file);
  if (job.train_path.empty()) throw Error(StrCat(task_file, ": no train split"));
  return LoadTaskData(job.train_path, MakeTaskSpec(job.task, model), tokenizer);
}

TaskData RandomRows(int64_t count, int64_t length, int64_t vocab_size) {
  torch::manual_seed(7);
  const torch::Tensor ids = torch::randint(0, vocab_size, {count, length}, torch::kInt64);
  const auto a = ids.accessor<int64_t, 2>();
  TaskData data;
  data.path = "random rows";
  for (int64_t row = 0; row < count; ++row) {
    Example example;
    for (int64_t j = 0; j + 1 < length; ++j) example.input_ids.push_back(static_cast<int32_t>(a[row][j]));
    example.target_ids.push_back(static_cast<int32_t>(a[row][length - 1]));
    example.line = row + 1;
    data.examples.push_back(std::move(example));
  }
  return data;
}

TrainerConfig JobConfig(const Args& args, int64_t job) {
  TrainerConfig config;
  config.prompt.num_virtual_tokens = args.num_virtual_tokens;
  config.prompt.init = PromptInit::kSampleVocab;
  config.learning_rate = 0.3 * (0.5 + 0.1 * static_cast<double>(job));
  config.seed = static_cast<uint64_t>(1 + job);
  config.batch_size = args.batch;
  config.max_steps = args.warmup + args.steps;
  config.eval_every = 0;
  config.log_every = 1;
  return config;
}

// What one side measured: seconds and real tokens of the timed steps (summed
// over jobs), and every job's per-step train losses.
struct Measure {
  double seconds = 0;
  int64_t tokens = 0;
  std::vector<std::vector<double>> losses;
};

int64_t PlanTokens(const PromptTrainer& trainer) {
  int64_t tokens = 0;
  for (const auto& micro : trainer.plan().micro_batches) {
    for (const Example* e : micro) tokens += static_cast<int64_t>(e->input_ids.size() + e->target_ids.size());
  }
  return tokens;
}

class Bench {
 public:
  Bench(const Args& args, std::shared_ptr<const CausalLM> model, const Tokenizer& tokenizer, const TaskData& train)
      : args_(args), model_(std::move(model)), tokenizer_(tokenizer), train_(train) {}

  std::vector<std::unique_ptr<PromptTrainer>> MakeTrainers(int64_t k) {
    std::vector<std::unique_ptr<PromptTrainer>> trainers;
    for (int64_t j = 0; j < k; ++j) {
      trainers.push_back(std::make_unique<PromptTrainer>(model_, tokenizer_, JobConfig(args_, j),
                                                         TrainerData{&train_, nullptr, nullptr}, local_));
    }
    return trainers;
  }

  // The progress hook of job j: its loss, and (after the warm-up) its tokens;
  // `marks[step]` = the time the last job finished that step.
  RunHooks Hooks(PromptTrainer* trainer, Measure& m, std::size_t j, std::vector<Clock::time_point>& marks) {
    RunHooks hooks;
    hooks.progress = [this, trainer, &m, j, &marks](const TrainProgress& p) {
      const Clock::time_point now = Clock::now();
      m.losses[j].push_back(p.train_loss);
      if (p.step > args_.warmup) m.tokens += PlanTokens(*trainer);
      marks.at(static_cast<std::size_t>(p.step)) = now;
    };
    return hooks;
  }

  // One job alone, untimed: the first passes at a dtype and thread count.
  void Prewarm(int64_t steps) {
    TrainerConfig config = JobConfig(args_, 0);
    config.max_steps = steps;
    PromptTrainer trainer(model_, tokenizer_, config, TrainerData{&train_, nullptr, nullptr}, local_);
    Check(trainer.Run());
  }

  Measure Sequential(int64_t k) {
    auto trainers = MakeTrainers(k);
    Measure m;
    m.losses.resize(static_cast<std::size_t>(k));
    for (std::size_t j = 0; j < trainers.size(); ++j) {
      std::vector<Clock::time_point> marks(static_cast<std::size_t>(args_.warmup + args_.steps + 1));
      marks[0] = Clock::now();  // the start, for --warmup 0
      const TrainResult result = trainers[j]->Run(Hooks(trainers[j].get(), m, j, marks));
      Check(result);
      m.seconds += Seconds(marks);
    }
    return m;
  }

  Measure Packed(int64_t k) {
    auto trainers = MakeTrainers(k);
    Measure m;
    m.losses.resize(static_cast<std::size_t>(k));
    std::vector<Clock::time_point> marks(static_cast<std::size_t>(args_.warmup + args_.steps + 1));
    TrainPack pack(model_);
    for (std::size_t j = 0; j < trainers.size(); ++j) pack.Add(trainers[j].get(), Hooks(trainers[j].get(), m, j, marks));
    int64_t finished = 0;
    marks[0] = Clock::now();
    while (!pack.empty()) {
      for (const TrainPack::Finished& done : pack.Step()) {
        Check(done.result);
        ++finished;
      }
    }
    if (finished != k) throw Error(StrCat("pack finished ", finished, " of ", k, " jobs"));
    m.seconds = Seconds(marks);
    return m;
  }

 private:
  double Seconds(const std::vector<Clock::time_point>& marks) const {
    return std::chrono::duration<double>(marks.back() - marks.at(static_cast<std::size_t>(args_.warmup))).count();
  }
  static void Check(const TrainResult& result) {
    if (result.status != TrainStatus::kSucceeded) {
      throw Error(StrCat("benchmark job ", TrainStatusName(result.status), ": ", result.message));
    }
  }

  const Args& args_;
  std::shared_ptr<const CausalLM> model_;
  const Tokenizer& tokenizer_;
  const TaskData& train_;
  LocalCollective local_;
};

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

void Run(const Args& args) {
  if (args.model.empty() == args.config.empty()) throw Error("give --model DIR or --config CONFIG.json");
  if (args.task.empty() && !args.model.empty()) throw Error("--model needs --task");
  const std::string tokenizer_path = !args.tokenizer.empty() ? args.tokenizer : args.model + "/tokenizer.json";
  const auto tokenizer = Tokenizer::FromFile(tokenizer_path);
  const std::string label = !args.label.empty() ? args.label
                            : !args.model.empty() ? std::filesystem::path(args.model).filename().string()
                                                  : std::filesystem::path(args.config).stem().string() + " (random)";
  if (args.header) {
    std::printf("| model | threads | dtype | K jobs | rows/step packed | packed tok/s | sequential tok/s | "
                "packed / sequential | packed s/step | sequential s per K job-steps | rel. loss diff step 1 / all steps |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    std::fflush(stdout);
  }
  for (const std::string& dtype : args.dtypes) {
    ModelLoadOptions options;
    options.dtype = ParseComputeDType(dtype);
    std::shared_ptr<const CausalLM> model =
        !args.model.empty() ? CausalLM::Load(args.model, options)
                            : std::shared_ptr<const CausalLM>(
                                  CausalLM::CreateRandom(ReadModelConfig(args.config), /*seed=*/0, options));
    const TaskData train = !args.task.empty() ? LoadTrainSplit(args.task, *model, *tokenizer)
                                              : RandomRows(args.examples, args.length, model->config().vocab_size);
    Bench bench(args, model, *tokenizer, train);
    for (int threads : args.threads) {
      torch::set_num_threads(threads);
      if (args.prewarm > 0) bench.Prewarm(args.prewarm);
      for (std::size_t ki = 0; ki < args.ks.size(); ++ki) {
        const int64_t k = args.ks[ki];
        std::vector<double> packed_s, sequential_s;
        int64_t tokens = 0;
        double max_diff = 0;
        double first_diff = 0;  // step 1: the same initial prompts, so only the forward's rounding
        for (int64_t rep = 0; rep < args.reps; ++rep) {
          Measure packed, sequential;
          if ((ki + static_cast<std::size_t>(rep)) % 2 == 0) {
            packed = bench.Packed(k);
            sequential = bench.Sequential(k);
          } else {
            sequential = bench.Sequential(k);
            packed = bench.Packed(k);
          }
          if (packed.tokens != sequential.tokens) {
            throw Error(StrCat("packed and sequential saw different tokens: ", packed.tokens, " vs ", sequential.tokens));
          }
          tokens = packed.tokens;
          packed_s.push_back(packed.seconds);
          sequential_s.push_back(sequential.seconds);
          for (std::size_t j = 0; j < packed.losses.size(); ++j) {
            for (std::size_t s = 0; s < packed.losses[j].size(); ++s) {
              const double b = sequential.losses[j].at(s);
              const double diff = std::abs(packed.losses[j][s] - b) / std::max(std::abs(b), 1e-12);
              max_diff = std::max(max_diff, diff);
              if (s == 0) first_diff = std::max(first_diff, diff);
            }
          }
        }
        const double p = Median(packed_s);
        const double q = Median(sequential_s);
        const double t = static_cast<double>(tokens);
        const double steps = static_cast<double>(args.steps);
        std::printf("| %s | %d | %s | %lld | %lld | %.0f | %.0f | **%.2fx** | %.3f | %.3f | %.1e / %.1e |\n", label.c_str(),
                    threads, dtype == "bfloat16" ? "bf16" : dtype == "float32" ? "f32" : dtype.c_str(),
                    static_cast<long long>(k), static_cast<long long>(k * args.batch), t / p, t / q, q / p,
                    p / steps, q / steps, first_diff, max_diff);
        std::fflush(stdout);
      }
    }
  }
}

}  // namespace
}  // namespace promptsweep::bench

int main(int argc, char** argv) {
  promptsweep::bench::Args args;
  CLI::App app{"multi-job packing: K jobs in one TrainPack vs one after the other (bench/run_pack_bench.sh)",
               "pack_bench"};
  app.add_option("--model", args.model, "model directory (config.json, model.safetensors, tokenizer.json)");
  app.add_option("--task", args.task, "task file (task.yaml with a train split); with --model");
  app.add_option("--config", args.config, "config.json of a model shape: random weights, random rows");
  app.add_option("--tokenizer", args.tokenizer, "tokenizer.json (default: the model directory's)");
  app.add_option("--label", args.label, "model name in the table");
  app.add_option("--length", args.length, "real tokens per random row (with --config)")->check(CLI::Range(2, 100000));
  app.add_option("--examples", args.examples, "random rows (with --config)")->check(CLI::PositiveNumber);
  app.add_option("--k", args.ks, "jobs per pack; repeatable (default 1 2 4 8 16)")->check(CLI::PositiveNumber);
  app.add_option("--threads", args.threads, "LibTorch threads; repeatable (default 1 2)");
  app.add_option("--dtype", args.dtypes, "float32 / bfloat16; repeatable (default both)");
  app.add_option("--steps", args.steps, "timed optimizer steps per job")->check(CLI::PositiveNumber);
  app.add_option("--warmup", args.warmup, "untimed first steps per job (sequential) / of the pack")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch", args.batch, "examples per step per job")->check(CLI::PositiveNumber);
  app.add_option("--num-virtual-tokens", args.num_virtual_tokens, "prompt length")->check(CLI::PositiveNumber);
  app.add_option("--reps", args.reps, "repetitions per row (median), alternating the order")
      ->check(CLI::PositiveNumber);
  app.add_option("--prewarm", args.prewarm, "untimed steps of one job alone before each dtype and thread count")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("!--no-header", args.header, "omit the table header");
  CLI11_PARSE(app, argc, argv);
  try {
    promptsweep::bench::Run(args);
  } catch (const std::exception& e) {
    std::cerr << "pack_bench: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
