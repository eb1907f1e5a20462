// Rank-classification evaluation: one pass per example (EvaluatePrompt's
// default) against one row per (example, label) (EvalOptions::per_label_rows,
// the reference path), in one process on the same model, prompt and data (run
// via bench/run_eval_bench.sh).
//
//   eval_bench --model DIR --task TASK.yaml [--task ...] [--threads 1 --threads 2]
//              [--reps 3] [--batch-size 8] [--num-virtual-tokens 20]
//
// For each task (its dev split, as the job file names it) and thread count:
// one warm-up evaluation per path, then `reps` repetitions that alternate the
// two paths (A B A B ...), so drift on a shared machine hits both alike.
// Prints a markdown table: median seconds, examples/s and the speed-up, with
// both paths' accuracy and loss (they must agree).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "common/error.h"
#include "common/task_data.h"
#include "common/tokenizer.h"
#include "engine/causal_lm.h"
#include "engine/collective.h"
#include "engine/job_settings.h"
#include "engine/soft_prompt.h"
#include "engine/trainer.h"

namespace promptsweep::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  std::vector<std::string> tasks;
  std::vector<int> threads = {1, 2};
  int64_t reps = 3;
  int64_t batch_size = 8;
  int64_t num_virtual_tokens = 20;
};

// The dev split of a task file (data/*/task.yaml), read as `train --config` reads it.
TaskData LoadDevSplit(const std::string& task_file, const CausalLM& model, const Tokenizer& tokenizer) {
  TrainJobArgs job;
  SettingFlags flags;
  flags.Add(TrainJobSettings(job));
  flags.ApplyJobFile(task_file);
  if (job.dev_path.empty()) throw Error(StrCat(task_file, ": no dev split"));
  return LoadTaskData(job.dev_path, MakeTaskSpec(job.task, model), tokenizer);
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

struct Timing {
  std::vector<double> seconds;
  EvalResult result;
};

void Run(const Args& args) {
  const auto model = CausalLM::Load(args.model);
  const auto tokenizer = Tokenizer::FromFile(args.model + "/tokenizer.json");
  const SoftPromptConfig prompt_config{args.num_virtual_tokens, PromptInit::kSampleVocab, ""};
  const torch::Tensor prompt = InitSoftPrompt(*model, *tokenizer, prompt_config, /*seed=*/0);
  LocalCollective local;

  std::printf("model %s, %lld virtual tokens (SAMPLE_VOCAB), eval batch %lld examples, median of %lld\n\n",
              args.model.c_str(), static_cast<long long>(args.num_virtual_tokens),
              static_cast<long long>(args.batch_size), static_cast<long long>(args.reps));
  std::printf("| task | examples | label tokens | threads | per-label rows s | one-pass s | rows ex/s | "
              "one-pass ex/s | speed-up | accuracy (rows / one-pass) | loss (rows / one-pass) |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string& task_file : args.tasks) {
    const TaskData data = LoadDevSplit(task_file, *model, *tokenizer);
    const std::string name = std::filesystem::path(task_file).parent_path().filename().string() + " dev";
    std::string label_tokens;
    for (const std::vector<int32_t>& words : data.label_ids) {
      label_tokens += (label_tokens.empty() ? "" : ",") + std::to_string(words.size());
    }
    for (int threads : args.threads) {
      torch::set_num_threads(threads);
      Timing timings[2];  // [0] per-label rows, [1] one pass
      auto evaluate = [&](int path) {
        EvalOptions options;
        options.batch_size = args.batch_size;
        options.per_label_rows = path == 0;
        const Clock::time_point start = Clock::now();
        timings[path].result = EvaluatePrompt(*model, *tokenizer, prompt, data, options, local);
        return std::chrono::duration<double>(Clock::now() - start).count();
      };
      evaluate(0);  // warm-up
      evaluate(1);
      for (int64_t rep = 0; rep < args.reps; ++rep) {
        for (int path : {0, 1}) timings[path].seconds.push_back(evaluate(path));
      }
      const double n = static_cast<double>(data.examples.size());
      const double rows = Median(timings[0].seconds);
      const double one_pass = Median(timings[1].seconds);
      std::printf("| %s | %zu | %s | %d | %.3f | %.3f | %.0f | %.0f | %.2fx | %.4f / %.4f | %.6f / %.6f |\n",
                  name.c_str(), data.examples.size(), label_tokens.c_str(), threads, rows, one_pass, n / rows,
                  n / one_pass, rows / one_pass, *timings[0].result.accuracy, *timings[1].result.accuracy,
                  timings[0].result.loss, timings[1].result.loss);
      std::fflush(stdout);
    }
  }
}

}  // namespace
}  // namespace promptsweep::bench

int main(int argc, char** argv) {
  promptsweep::bench::Args args;
  CLI::App app{"rank-classification evaluation: one pass vs one row per (example, label)"};
  app.add_option("--model", args.model, "model directory (config.json, model.safetensors, tokenizer.json)")
      ->required();
  app.add_option("--task", args.tasks, "classification task file (task.yaml with a dev split); repeatable")
      ->required();
  app.add_option("--threads", args.threads, "LibTorch threads; repeatable (default 1 2)");
  app.add_option("--reps", args.reps, "timed repetitions per path (median)")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", args.batch_size, "examples per eval batch")->check(CLI::PositiveNumber);
  app.add_option("--num-virtual-tokens", args.num_virtual_tokens, "soft prompt length")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    promptsweep::bench::Run(args);
  } catch (const std::exception& e) {
    std::cerr << "eval_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
