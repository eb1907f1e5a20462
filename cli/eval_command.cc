// `promptsweep eval MODEL --adapter DIR --data FILE`: mean loss per target
// token and accuracy (rank classification) or exact match (greedy
// generation) of a prompt on a dataset, as JSON.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "engine/job_settings.h"
#include "common/error.h"
#include "engine/collective.h"
#include "engine/trainer.h"

namespace promptsweep::cli {
namespace {

struct EvalArgs {
  ModelArgs model;
  TaskArgs task;
  std::string adapter;
  std::string prompt_text;
  std::string data;
  int64_t batch_size = 8;
  bool no_exact_match = false;
  SettingFlags flags;
};

void Run(EvalArgs& args) {
  args.flags.ApplyCommandLine();
  if (args.batch_size < 1) throw Error(StrCat("--batch-size must be >= 1, got ", args.batch_size));
  const Engine engine = LoadEngine(args.model);
  torch::Tensor prompt;  // undefined: the bare model
  if (!args.adapter.empty() && !args.prompt_text.empty()) {
    throw Error("give --adapter or --prompt-text, not both");
  }
  if (!args.adapter.empty()) prompt = LoadAdapterFor(args.adapter, *engine.model).prompt;
  if (!args.prompt_text.empty()) {
    // The text's own token embeddings as the prompt: what an untrained TEXT
    // init gives with num_virtual_tokens = the text's length (zero-shot baseline).
    const std::vector<int32_t> ids = engine.tokenizer->Encode(args.prompt_text, /*add_special_tokens=*/false);
    if (ids.empty()) throw Error("--prompt-text tokenizes to nothing");
    torch::NoGradGuard no_grad;
    const torch::Tensor id_tensor =
        torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).to(engine.model->device());
    prompt = engine.model->EmbedTokens(id_tensor).to(torch::kFloat32);
  }
  const TaskData data = LoadTaskData(args.data, MakeTaskSpec(args.task, *engine.model), *engine.tokenizer);

  EvalOptions options;
  options.batch_size = args.batch_size;
  options.exact_match = !args.no_exact_match;
  options.stop_ids = StopIds(*engine.model);
  LocalCollective collective;
  const EvalResult result = EvaluatePrompt(*engine.model, *engine.tokenizer, prompt, data, options, collective);

  nlohmann::json json = EvalResultToJson(result);
  json["data"] = args.data;
  json["adapter"] = args.adapter.empty() ? nlohmann::json(nullptr) : nlohmann::json(args.adapter);
  if (!args.prompt_text.empty()) json["prompt_text"] = args.prompt_text;
  std::cout << json.dump(2) << "\n";
}

}  // namespace

void AddEvalCommand(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Evaluate a prompt-tuning adapter (or the bare model) on a JSONL dataset. Prints JSON: n, the mean "
      "cross-entropy per target token (loss), and accuracy by rank classification (classification: the "
      "verbalizer label whose words are most likely wins) or exact match of the greedy continuation (generation).");
  cmd->add_option("--adapter", args->adapter, "adapter directory (adapter_config.json + adapter_model.safetensors); "
                                              "omit for the bare model");
  cmd->add_option("--prompt-text", args->prompt_text,
                  "use this text's token embeddings as the prompt (an untrained TEXT init: the zero-shot baseline)");
  cmd->add_option("--data", args->data, "dataset (JSONL)")->required();
  cmd->add_option("--batch-size", args->batch_size, "examples per batch (default 8)");
  cmd->add_flag("--no-exact-match", args->no_exact_match, "generation: skip greedy decoding, report the loss only");
  args->flags.Add(cmd, ModelSettings(args->model));
  args->flags.Add(cmd, TaskSettings(args->task));
  cmd->callback([args] { Run(*args); });
}

}  // namespace promptsweep::cli
