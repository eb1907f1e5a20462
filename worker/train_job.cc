#include "worker/train_job.h"

#include <cstdio>
#include <filesystem>
#include <utility>

#include "common/adapter_config.h"
#include "common/csv.h"
#include "common/error.h"
#include "common/file_util.h"
#include "engine/adapter.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

nlohmann::json EvalJson(const std::optional<EvalResult>& eval) {
  return eval ? EvalResultToJson(*eval) : nlohmann::json(nullptr);
}

// One job's metrics.csv: common/csv.h's format, the coordinator's rows without the job id.
std::string MetricsCsv(const std::vector<MetricRecord>& history) {
  std::vector<MetricRow> rows;
  rows.reserve(history.size());
  for (const MetricRecord& r : history) rows.push_back(MetricRow{r.step, r.split, r.metric, r.value});
  return MetricsCsvHeader(/*with_job_id=*/false) + MetricsCsvLines(rows);
}

void SaveAdapter(const TrainJobArgs& args, const ModelConfig& model_config, const torch::Tensor& prompt) {
  AdapterConfig adapter;
  adapter.num_virtual_tokens = args.trainer.prompt.num_virtual_tokens;
  adapter.token_dim = model_config.hidden_size;
  adapter.num_attention_heads = model_config.num_attention_heads;
  adapter.num_layers = model_config.num_hidden_layers;
  adapter.prompt_tuning_init = std::string(PromptInitName(args.trainer.prompt.init));
  if (args.trainer.prompt.init == PromptInit::kText) adapter.prompt_tuning_init_text = args.trainer.prompt.init_text;
  adapter.base_model_name_or_path = args.model.model_dir;
  adapter.tokenizer_name_or_path = args.model.tokenizer.empty() ? args.model.model_dir : args.model.tokenizer;
  SavePromptAdapter(args.output, adapter, prompt);
  WriteFileAtomically((fs::path(args.output) / kAdapterTaskFile).string(), TaskFileYaml(args.task));
}

nlohmann::json ResultJson(const TrainJobArgs& args, const TrainerConfig& config, const TrainResult& result) {
  nlohmann::json settings;
  for (const TrainerOption& option : TrainerOptions()) {
    // Numbers as JSON numbers, names and texts as strings.
    const std::string value = option.get(config);
    const nlohmann::json number = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
    settings[option.name] = number.is_number() ? number : nlohmann::json(value);
  }
  return {
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
}

}  // namespace

TrainJobData LoadTrainJobData(const TrainJobArgs& args, const TaskDataLoader& load) {
  TrainJobData data;
  data.train = load(args.train_path);
  if (!args.dev_path.empty()) data.dev = load(args.dev_path);
  if (!args.test_path.empty()) data.test = load(args.test_path);
  return data;
}

TrainJob::TrainJob(TrainJobArgs args, std::shared_ptr<const CausalLM> model, const Tokenizer& tokenizer,
                   std::optional<TrainJobData> data, Collective* collective)
    : args_(std::move(args)), model_(std::move(model)), collective_(collective != nullptr ? *collective : alone_) {
  if (data) {
    data_ = std::move(*data);
  } else {
    const TaskSpec spec = MakeTaskSpec(args_.task, *model_);
    data_ = LoadTrainJobData(args_, [&](const std::string& path) {
      return std::make_shared<const TaskData>(LoadTaskData(path, spec, tokenizer));
    });
  }
  PS_CHECK(data_.train != nullptr, "a train job needs train data");
  trainer_ = std::make_unique<PromptTrainer>(model_, tokenizer, args_.trainer,
                                             TrainerData{data_.train.get(), data_.dev.get(), data_.test.get()},
                                             collective_);
  if (!args_.resume_from.empty()) trainer_->LoadState(args_.resume_from);

  std::error_code ec;
  fs::create_directories(args_.output, ec);
  if (ec) throw Error(StrCat(args_.output, ": cannot create output directory: ", ec.message()));
}

TrainJob::~TrainJob() = default;

TrainJobResult TrainJob::Run(const TrainJobHooks& hooks) {
  const fs::path output(args_.output);
  const std::string checkpoint = (output / "checkpoint.safetensors").string();
  RunHooks run_hooks;
  run_hooks.stop = hooks.stop;
  run_hooks.terminate = hooks.terminate;
  run_hooks.progress = hooks.progress;
  run_hooks.checkpoint_path = checkpoint;
  run_hooks.checkpoint_every = args_.checkpoint_every;

  TrainJobResult run;
  if (hooks.pack != nullptr) {
    PS_CHECK(collective_.size() == 1, "a job of a group of ranks cannot be packed");
    run.result = hooks.pack->Train(*trainer_, run_hooks);
  } else {
    run.result = trainer_->Run(run_hooks);
  }
  const TrainResult& result = run.result;
  run.json = ResultJson(args_, trainer_->config(), result);
  if (collective_.rank() != 0) return run;  // the ranks hold the same prompt: rank 0 writes it
  if (result.status == TrainStatus::kCancelled) {
    trainer_->SaveState(checkpoint);
    run.checkpoint_path = checkpoint;
  }
  if (result.status == TrainStatus::kSucceeded || result.status == TrainStatus::kStopped) {
    SaveAdapter(args_, model_->config(), result.best_prompt);
  }
  WriteFileAtomically((output / "metrics.csv").string(), MetricsCsv(result.history));
  WriteFileAtomically((output / "result.json").string(), run.json.dump(2) + "\n");
  return run;
}

}  // namespace promptsweep
