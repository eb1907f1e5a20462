// `promptsweep train MODEL --train FILE --output DIR [...]`: one prompt-tuning
// job. Every hyperparameter is a flag or a key of a YAML job file
// (--config); a flag overrides the file. Writes the PEFT adapter, the metrics
// log (metrics.csv) and result.json into --output.
#include <atomic>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "engine/job_settings.h"
#include "worker/train_job.h"
#include "common/error.h"
#include "common/signals.h"
#include "engine/trainer.h"

namespace promptsweep::cli {
namespace {

struct TrainArgs {
  TrainJobArgs job;
  std::string config_path;
  bool quiet = false;
  SettingFlags flags;
};

void Run(TrainArgs& args) {
  if (!args.config_path.empty()) args.flags.ApplyJobFile(args.config_path);
  args.flags.ApplyCommandLine();
  ValidateTrainJob(args.job);

  const Engine engine = LoadEngine(args.job.model);
  TrainJob job(args.job, engine.model, *engine.tokenizer);
  TrainJobHooks hooks;
  if (!args.quiet) {
    hooks.progress = [metric = job.metric()](const TrainProgress& progress) {
      if (progress.log_line) std::cerr << FormatProgressLine(progress, metric) << std::endl;
    };
  }
  TrainJobResult run;
  {
    // SIGINT / SIGTERM ask the trainer to stop between steps (it then writes a checkpoint).
    const ScopedStopSignals signals;
    hooks.stop = &signals.stop_requested();
    run = job.Run(hooks);
  }

  const TrainResult& result = run.result;
  const std::string& output = args.job.output;
  switch (result.status) {
    case TrainStatus::kSucceeded:
    case TrainStatus::kStopped: {  // `train` has no terminate hook; a stop is a success with fewer steps
      std::string summary = StrCat(TrainStatusName(result.status), ": ", result.steps, " steps", result.early_stopped ? " (early stop)" : "");
      if (result.best_dev) {
        summary += StrCat(", best dev ", EvalMetricName(result.metric), " ", result.best_dev->Metric(result.metric),
                          " at step ", result.best_step);
      }
      if (result.test) summary += StrCat(", test ", EvalMetricName(result.metric), " ", result.test->Metric(result.metric));
      std::cout << summary << "; adapter in " << output << "\n";
      return;
    }
    case TrainStatus::kFailed:
      throw Error(StrCat("training failed: ", result.message));
    case TrainStatus::kDiverged:
      std::cerr << "promptsweep: diverged: " << result.message << " (result.json in " << output << ")\n";
      throw CLI::RuntimeError(2);
    case TrainStatus::kCancelled:
      std::cerr << "promptsweep: cancelled: " << result.message << "; resume with --resume-from " << run.checkpoint_path
                << "\n";
      throw CLI::RuntimeError(2);
  }
}

}  // namespace

void AddTrainCommand(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train one soft prompt (PEFT prompt tuning) on a frozen causal LM. Writes to --output a PEFT adapter "
      "(adapter_config.json, adapter_model.safetensors with the best dev prompt), metrics.csv "
      "(step,split,metric,value) and result.json. Every setting below is also a key of a YAML job file "
      "(--config; underscores, e.g. learning_rate: 0.3); a flag overrides the file; relative paths in the file are relative to the file. Ctrl-C / SIGTERM stops "
      "between steps and writes output/checkpoint.safetensors for --resume-from. Exit code 0 succeeded, "
      "1 error, 2 diverged or cancelled.");
  cmd->add_option("--config", args->config_path, "YAML job file of settings (see above)");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress lines on stderr");
  args->flags.Add(cmd, TrainJobSettings(args->job));
  cmd->callback([args] { Run(*args); });
}

}  // namespace promptsweep::cli
