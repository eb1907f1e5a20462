// `promptsweep generate MODEL [--adapter DIR] --text TEXT`: the model's
// continuation of a text, with a trained soft prompt in front of it.
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "engine/job_settings.h"
#include "common/error.h"
#include "engine/generate.h"

namespace promptsweep::cli {
namespace {

struct GenerateArgs {
  ModelArgs model;
  std::vector<std::string> adapters;
  std::string text;
  bool text_given = false;
  std::string template_text;
  bool template_given = false;
  GenerateOptions options;
  SettingFlags flags;
};

void Run(GenerateArgs& args) {
  args.flags.ApplyCommandLine();
  if (args.options.max_new_tokens < 1) {
    throw Error(StrCat("--max-new-tokens must be >= 1, got ", args.options.max_new_tokens));
  }
  if (args.options.temperature < 0) throw Error(StrCat("--temperature must be >= 0, got ", args.options.temperature));
  if (!(args.options.top_p > 0 && args.options.top_p <= 1)) {
    throw Error(StrCat("--top-p must be in (0, 1], got ", args.options.top_p));
  }
  const std::vector<std::string> adapters = ExpandAdapterDirs(args.adapters);
  // The template the adapters were trained with (their task files; all the
  // same), unless --template gives one.
  TaskArgs task;
  SettingFlags task_flags;
  task_flags.Add(TaskSettings(task));
  AdaptersTask(adapters, task_flags, task);
  if (args.template_given) task.template_text = args.template_text;

  const Engine engine = LoadEngine(args.model);
  std::vector<torch::Tensor> prompts;
  for (const std::string& dir : adapters) prompts.push_back(LoadAdapterFor(dir, *engine.model).prompt);
  const std::string text = args.text_given ? args.text
                                           : std::string(std::istreambuf_iterator<char>(std::cin),
                                                         std::istreambuf_iterator<char>());
  TaskSpec spec;  // only the template matters here (no labels, no targets)
  spec.kind = task.task == "generation" ? TaskKind::kGeneration : TaskKind::kClassification;
  spec.template_text = task.template_text;
  const std::string input = FormatInput(spec, text);
  const std::vector<int32_t> ids = engine.tokenizer->Encode(input, /*add_special_tokens=*/true);
  if (ids.empty()) throw Error("the input text tokenizes to nothing; give some text");
  args.options.stop_ids = StopIds(*engine.model);
  if (prompts.size() <= 1) {
    const auto outputs = Generate(*engine.model, prompts.empty() ? torch::Tensor() : prompts.front(), {ids}, args.options);
    std::cout << engine.tokenizer->Decode(outputs.front(), /*skip_special_tokens=*/true) << "\n";
    return;
  }
  // Every adapter continues the same text, in one batch with per-row prompts.
  std::vector<int64_t> index;
  for (std::size_t p = 0; p < prompts.size(); ++p) index.push_back(static_cast<int64_t>(p));
  const std::vector<std::vector<int32_t>> inputs(prompts.size(), ids);
  const auto outputs = Generate(*engine.model, prompts, index, inputs, args.options);
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    const nlohmann::json line = {{"adapter", adapters[p]},
                                 {"text", engine.tokenizer->Decode(outputs[p], /*skip_special_tokens=*/true)}};
    std::cout << line.dump() << "\n";
  }
}

}  // namespace

void AddGenerateCommand(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "generate",
      "Continue a text with the model, a trained soft prompt (--adapter) placed before it. Greedy by default; "
      "--temperature > 0 samples (with --top-p nucleus filtering and --seed). Prints the continuation only "
      "(several adapters: a JSON line per adapter).");
  cmd->add_option("--adapter", args->adapters,
                  "adapter directory, or a directory of adapters; repeatable: each continues the text (one batch) "
                  "and one JSON line {adapter, text} is printed per adapter. Omit for the bare model")
      ->type_name("DIR");
  cmd->add_option("--template", args->template_text,
                  "format the text with this template first ({text}, or {input} for a generation task); default: "
                  "the template the adapter was trained with (its promptsweep_task.yaml), else the text as is")
      ->each([args](const std::string&) { args->template_given = true; });
  cmd->add_option("--text", args->text, "input text (default: read standard input)")
      ->each([args](const std::string&) { args->text_given = true; });
  cmd->add_option("--max-new-tokens", args->options.max_new_tokens, "tokens to generate at most (default 32)");
  cmd->add_option("--temperature", args->options.temperature, "0 = greedy (default); > 0 samples");
  cmd->add_option("--top-p", args->options.top_p, "nucleus sampling mass (default 1)");
  cmd->add_option("--seed", args->options.seed, "sampling seed (default 0)");
  args->flags.Add(cmd, ModelSettings(args->model));
  cmd->callback([args] { Run(*args); });
}

}  // namespace promptsweep::cli
