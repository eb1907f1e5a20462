// `promptsweep train MODEL --train FILE --output DIR [...]`: one prompt-tuning
// job. Every hyperparameter is a flag or a key of a YAML job file
// (--config); a flag overrides the file. Writes the PEFT adapter, the metrics
// log (metrics.csv) and result.json into --output.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_options.h"
#include "common/error.h"
#include "common/file_util.h"
#include "worker/adapter.h"
#include "worker/collective.h"
#include "worker/trainer.h"

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;

struct TrainArgs {
  ModelArgs model;
  TaskArgs task;
  TrainerConfig trainer;
  std::string train_path;
  std::string dev_path;
  std::string test_path;
  std::string output;
  std::string resume_from;
  int64_t checkpoint_every = 0;
  std::string config_path;
  bool quiet = false;
  SettingFlags flags;
};

// SIGINT / SIGTERM ask the trainer to stop between steps (it then writes a
// checkpoint). A lock-free atomic store is async-signal-safe.
std::atomic<bool> g_stop_requested{false};
extern "C" void RequestStop(int) { g_stop_requested.store(true); }

class ScopedStopSignals {
 public:
  ScopedStopSignals() {
    g_stop_requested = false;
    previous_int_ = std::signal(SIGINT, RequestStop);
    previous_term_ = std::signal(SIGTERM, RequestStop);
  }
  ~ScopedStopSignals() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }

 private:
  void (*previous_int_)(int) = SIG_DFL;
  void (*previous_term_)(int) = SIG_DFL;
};

std::vector<Setting> JobSettings(TrainArgs& args) {
  auto path_setting = [](std::string name, std::string help, std::string* target) {
    Setting setting{std::move(name), std::move(help),
                    [target](const std::vector<std::string>& values, const std::string&) { *target = values.back(); }};
    setting.path = true;
    return setting;
  };
  return {
      path_setting("train", "training data (JSONL); required", &args.train_path),
      path_setting("dev", "dev data (JSONL) for evaluation, early stopping and the best prompt", &args.dev_path),
      path_setting("test", "test data (JSONL), evaluated once with the best prompt", &args.test_path),
      path_setting("output", "output directory: the PEFT adapter, metrics.csv, result.json; required", &args.output),
      path_setting("resume_from", "a checkpoint (output/checkpoint.safetensors) to continue from", &args.resume_from),
      Setting{"checkpoint_every", "write output/checkpoint.safetensors every this many steps (0: only when stopped)",
              [&args](const std::vector<std::string>& values, const std::string& where) {
                args.checkpoint_every = ParseInt(values.back(), where);
              }},
  };
}

std::vector<Setting> HyperparameterSettings(TrainerConfig& config) {
  std::vector<Setting> settings;
  for (const TrainerOption& option : TrainerOptions()) {
    const std::string name = option.name;
    settings.push_back(Setting{name, StrCat(option.help, " (default ", option.get(config), ")"),
                               [&config, name](const std::vector<std::string>& values, const std::string& where) {
                                 SetTrainerOption(config, name, values.back(), where);
                               }});
  }
  return settings;
}

nlohmann::json EvalJson(const std::optional<EvalResult>& eval) {
  return eval ? EvalResultToJson(*eval) : nlohmann::json(nullptr);
}

void WriteText(const fs::path& path, const std::string& text) {
  WriteFileAtomically(path.string(), text);
}

std::string MetricsCsv(const std::vector<MetricRecord>& history) {
  std::string csv = "step,split,metric,value\n";
  for (const MetricRecord& r : history) {
    char value[64];
    std::snprintf(value, sizeof(value), "%.17g", r.value);
    csv += StrCat(r.step, ",", r.split, ",", r.metric, ",", value, "\n");
  }
  return csv;
}

void Run(TrainArgs& args) {
  if (!args.config_path.empty()) args.flags.ApplyJobFile(args.config_path);
  args.flags.ApplyCommandLine();
  if (args.train_path.empty()) throw Error("no training data: give --train FILE (or 'train:' in the job file)");
  if (args.output.empty()) throw Error("no output directory: give --output DIR (or 'output:' in the job file)");
  ValidateTrainerConfig(args.trainer);

  const Engine engine = LoadEngine(args.model);
  const TaskSpec spec = MakeTaskSpec(args.task, *engine.model);
  const TaskData train = LoadTaskData(args.train_path, spec, *engine.tokenizer);
  std::optional<TaskData> dev;
  std::optional<TaskData> test;
  if (!args.dev_path.empty()) dev = LoadTaskData(args.dev_path, spec, *engine.tokenizer);
  if (!args.test_path.empty()) test = LoadTaskData(args.test_path, spec, *engine.tokenizer);

  LocalCollective collective;
  PromptTrainer trainer(engine.model, *engine.tokenizer, args.trainer,
                        TrainerData{&train, dev ? &*dev : nullptr, test ? &*test : nullptr}, collective);
  if (!args.resume_from.empty()) trainer.LoadState(args.resume_from);

  const fs::path output(args.output);
  std::error_code ec;
  fs::create_directories(output, ec);
  if (ec) throw Error(StrCat(args.output, ": cannot create output directory: ", ec.message()));
  const std::string checkpoint = (output / "checkpoint.safetensors").string();

  RunHooks hooks;
  hooks.stop = &g_stop_requested;
  hooks.checkpoint_path = checkpoint;
  hooks.checkpoint_every = args.checkpoint_every;
  const EvalMetric metric = trainer.metric();
  if (!args.quiet) {
    hooks.progress = [&](const TrainProgress& progress) {
      if (progress.log_line) std::cerr << FormatProgressLine(progress, metric) << std::endl;
    };
  }
  TrainResult result;
  {
    ScopedStopSignals signals;
    result = trainer.Run(hooks);
  }
  if (result.status == TrainStatus::kCancelled) trainer.SaveState(checkpoint);

  const ModelConfig& model_config = engine.model->config();
  if (result.status == TrainStatus::kSucceeded) {
    AdapterConfig adapter;
    adapter.num_virtual_tokens = args.trainer.prompt.num_virtual_tokens;
    adapter.token_dim = model_config.hidden_size;
    adapter.num_attention_heads = model_config.num_attention_heads;
    adapter.num_layers = model_config.num_hidden_layers;
    adapter.prompt_tuning_init = std::string(PromptInitName(args.trainer.prompt.init));
    if (args.trainer.prompt.init == PromptInit::kText) adapter.prompt_tuning_init_text = args.trainer.prompt.init_text;
    adapter.base_model_name_or_path = args.model.model_dir;
    adapter.tokenizer_name_or_path = args.model.tokenizer.empty() ? args.model.model_dir : args.model.tokenizer;
    SavePromptAdapter(args.output, adapter, result.best_prompt);
  }

  nlohmann::json settings;
  for (const TrainerOption& option : TrainerOptions()) {
    // Numbers as JSON numbers, names and texts as strings.
    const std::string value = option.get(trainer.config());
    const nlohmann::json number = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
    settings[option.name] = number.is_number() ? number : nlohmann::json(value);
  }
  const nlohmann::json json = {
      {"status", TrainStatusName(result.status)},
      {"message", result.message},
      {"early_stopped", result.early_stopped},
      {"steps", result.steps},
      {"eval_metric", EvalMetricName(result.metric)},
      {"best_step", result.best_step},
      {"best_dev", EvalJson(result.best_dev)},
      {"final_dev", EvalJson(result.final_dev)},
      {"test", EvalJson(result.test)},
      {"final_train_loss", result.final_train_loss},
      {"tokens_per_second", result.tokens_per_second},
      {"wall_seconds", result.wall_seconds},
      {"model", args.model.model_dir},
      {"train", args.train_path},
      {"dev", args.dev_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(args.dev_path)},
      {"test_data", args.test_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(args.test_path)},
      {"settings", settings},
  };
  WriteText(output / "metrics.csv", MetricsCsv(result.history));
  WriteText(output / "result.json", json.dump(2) + "\n");

  switch (result.status) {
    case TrainStatus::kSucceeded: {
      std::string summary = StrCat("succeeded: ", result.steps, " steps", result.early_stopped ? " (early stop)" : "");
      if (result.best_dev) {
        summary += StrCat(", best dev ", EvalMetricName(result.metric), " ", result.best_dev->Metric(result.metric),
                          " at step ", result.best_step);
      }
      if (result.test) summary += StrCat(", test ", EvalMetricName(result.metric), " ", result.test->Metric(result.metric));
      std::cout << summary << "; adapter in " << args.output << "\n";
      return;
    }
    case TrainStatus::kFailed:
      throw Error(StrCat("training failed: ", result.message));
    case TrainStatus::kDiverged:
      std::cerr << "promptsweep: diverged: " << result.message << " (result.json in " << args.output << ")\n";
      throw CLI::RuntimeError(2);
    case TrainStatus::kCancelled:
      std::cerr << "promptsweep: cancelled: " << result.message << "; resume with --resume-from " << checkpoint
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
  args->flags.Add(cmd, ModelSettings(args->model));
  args->flags.Add(cmd, TaskSettings(args->task));
  args->flags.Add(cmd, JobSettings(*args));
  args->flags.Add(cmd, HyperparameterSettings(args->trainer));
  cmd->callback([args] { Run(*args); });
}

}  // namespace promptsweep::cli
