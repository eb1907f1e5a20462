// `promptsweep generate MODEL [--adapter DIR] --text TEXT`: the model's
// continuation of a text, with a trained soft prompt in front of it.
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "engine/job_settings.h"
#include "common/error.h"
#include "engine/generate.h"

namespace promptsweep::cli {
namespace {

struct GenerateArgs {
  ModelArgs model;
  std::string adapter;
  std::string text;
  bool text_given = false;
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
  const Engine engine = LoadEngine(args.model);
  torch::Tensor prompt;
  if (!args.adapter.empty()) prompt = LoadAdapterFor(args.adapter, *engine.model).prompt;
  const std::string text = args.text_given ? args.text
                                           : std::string(std::istreambuf_iterator<char>(std::cin),
                                                         std::istreambuf_iterator<char>());
  const std::vector<int32_t> ids = engine.tokenizer->Encode(text, /*add_special_tokens=*/true);
  if (ids.empty()) throw Error("the input text tokenizes to nothing; give some text");
  args.options.stop_ids = StopIds(*engine.model);
  const auto outputs = Generate(*engine.model, prompt, {ids}, args.options);
  std::cout << engine.tokenizer->Decode(outputs.front(), /*skip_special_tokens=*/true) << "\n";
}

}  // namespace

void AddGenerateCommand(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "generate",
      "Continue a text with the model, a trained soft prompt (--adapter) placed before it. Greedy by default; "
      "--temperature > 0 samples (with --top-p nucleus filtering and --seed). Prints the continuation only.");
  cmd->add_option("--adapter", args->adapter, "adapter directory; omit for the bare model");
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
