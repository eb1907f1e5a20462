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
  std::vector<std::string> adapters;
  std::string prompt_text;
  std::string data;
  int64_t batch_size = 8;
  bool no_exact_match = false;
  SettingFlags flags;
};

void Run(EvalArgs& args) {
  args.flags.ApplyCommandLine();
  if (args.batch_size < 1) throw Error(StrCat("--batch-size must be >= 1, got ", args.batch_size));
  if (!args.adapters.empty() && !args.prompt_text.empty()) {
    throw Error("give --adapter or --prompt-text, not both");
  }
  const std::vector<std::string> adapters = ExpandAdapterDirs(args.adapters);
  // The task the adapters were trained for, unless flags say otherwise.
  AdaptersTask(adapters, args.flags, args.task);
  const Engine engine = LoadEngine(args.model);
  std::vector<torch::Tensor> prompts;
  for (const std::string& dir : adapters) prompts.push_back(LoadAdapterFor(dir, *engine.model).prompt);
  if (!args.prompt_text.empty()) {
    // The text's own token embeddings as the prompt: what an untrained TEXT
    // init gives with num_virtual_tokens = the text's length (zero-shot baseline).
    const std::vector<int32_t> ids = engine.tokenizer->Encode(args.prompt_text, /*add_special_tokens=*/false);
    if (ids.empty()) throw Error("--prompt-text tokenizes to nothing");
    torch::NoGradGuard no_grad;
    const torch::Tensor id_tensor =
        torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).to(engine.model->device());
    prompts.push_back(engine.model->EmbedTokens(id_tensor).to(torch::kFloat32));
  }
  if (prompts.empty()) prompts.push_back(torch::Tensor());  // the bare model
  const TaskData data = LoadTaskData(args.data, MakeTaskSpec(args.task, *engine.model), *engine.tokenizer);

  EvalOptions options;
  options.batch_size = args.batch_size;
  options.exact_match = !args.no_exact_match;
  options.stop_ids = StopIds(*engine.model);
  LocalCollective collective;
  // All prompts in shared batches (per-row prompts): one pass over the data.
  const std::vector<EvalResult> results =
      EvaluatePrompts(*engine.model, *engine.tokenizer, prompts, data, options, collective);

  for (std::size_t i = 0; i < results.size(); ++i) {
    nlohmann::json json = EvalResultToJson(results[i]);
    json["data"] = args.data;
    json["adapter"] = i < adapters.size() ? nlohmann::json(adapters[i]) : nlohmann::json(nullptr);
    if (!args.prompt_text.empty()) json["prompt_text"] = args.prompt_text;
    // One adapter: an indented object, as always; several: one object per line (JSON Lines).
    std::cout << (results.size() == 1 ? json.dump(2) : json.dump()) << "\n";
  }
}

}  // namespace

void AddEvalCommand(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Evaluate a prompt-tuning adapter (or the bare model) on a JSONL dataset. Prints JSON: n, the mean "
      "cross-entropy per target token (loss), and accuracy by rank classification (classification: the "
      "verbalizer label whose words are most likely wins) or exact match of the greedy continuation (generation). "
      "Several adapters (--adapter A --adapter B, or a directory of adapters) run in one pass with per-row "
      "prompts.");
  cmd->add_option("--adapter", args->adapters,
                  "adapter directory (adapter_config.json + adapter_model.safetensors), or a directory of them "
                  "(a sweep's adapters/); repeatable: all are scored in shared batches and one JSON object per "
                  "adapter is printed per line. The task settings an adapter was trained with (its "
                  "promptsweep_task.yaml) apply unless --task/--template/--verbalizer/--max-length say otherwise. "
                  "Omit for the bare model")
      ->type_name("DIR");
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
