// `promptsweep train-tokenizer FILES... -o tokenizer.json`: trains a
// byte-level BPE vocabulary (GPT-2 style, as Hugging Face tokenizers'
// BpeTrainer does) on text files and writes a tokenizer.json.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/bpe_trainer.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/tokenizer.h"

namespace promptsweep::cli {
namespace {

struct TrainTokenizerArgs {
  std::vector<std::string> files;
  std::string output;
  BpeTrainerOptions options;
  std::vector<std::string> special_tokens;
  bool special_tokens_given = false;
};

std::string Seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f s", seconds);
  return text;
}

void Run(TrainTokenizerArgs& args) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  if (args.special_tokens_given) args.options.special_tokens = args.special_tokens;
  ByteLevelBpeTrainer trainer(args.options);
  for (const std::string& file : args.files) trainer.AddFile(file);
  if (trainer.total_words() == 0) {
    throw Error(args.files.size() == 1 ? StrCat(args.files.front(), ": no text to train on: the file is empty")
                                       : StrCat("no text to train on: all ", args.files.size(), " files are empty"));
  }
  const auto counted = Clock::now();

  const BpeModelData model = trainer.Train();
  const auto trained = Clock::now();
  WriteFileAtomically(args.output, ByteLevelTokenizerJson(model));

  // Reload what was written (proves it loads) and measure the compression on
  // the training words. Encoding each distinct word once gives the same ids as
  // encoding the text: the pre-tokenizer cuts the text into exactly these words.
  const auto tokenizer = Tokenizer::FromFile(args.output);
  uint64_t tokens = 0;
  for (const auto& [word, count] : trainer.word_counts()) {
    tokens += tokenizer->Encode(word, /*add_special_tokens=*/false).size() * count;
  }
  const auto done = Clock::now();
  const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };

  std::printf("wrote %s\n", args.output.c_str());
  std::printf("vocab size:  %zu (%zu special, 256 byte symbols, %zu merges)\n", model.vocab.size(),
              model.special_tokens.size(), model.merges.size());
  std::printf("words:       %llu (%zu distinct) in %llu bytes\n", static_cast<unsigned long long>(trainer.total_words()),
              trainer.word_counts().size(), static_cast<unsigned long long>(trainer.total_bytes()));
  std::printf("compression: %.3f bytes/token on the training text (%llu tokens)\n",
              tokens == 0 ? 0.0 : static_cast<double>(trainer.total_bytes()) / static_cast<double>(tokens),
              static_cast<unsigned long long>(tokens));
  std::printf("wall time:   %s (count words %s, merges %s, check %s)\n", Seconds(seconds(done - start)).c_str(),
              Seconds(seconds(counted - start)).c_str(), Seconds(seconds(trained - counted)).c_str(),
              Seconds(seconds(done - trained)).c_str());
  if (static_cast<int64_t>(model.vocab.size()) < args.options.vocab_size) {
    std::printf("note: stopped below --vocab-size %lld: no pair occurs --min-frequency %llu times any more\n",
                static_cast<long long>(args.options.vocab_size),
                static_cast<unsigned long long>(args.options.min_frequency));
  }
}

}  // namespace

void AddTrainTokenizerCommand(CLI::App& app) {
  auto args = std::make_shared<TrainTokenizerArgs>();
  CLI::App* cmd = app.add_subcommand(
      "train-tokenizer",
      "Train a byte-level BPE tokenizer (GPT-2 style) on text files and write its tokenizer.json.\n"
      "Equivalent to Hugging Face tokenizers' BpeTrainer with a ByteLevel pre-tokenizer\n"
      "(add_prefix_space=false) and the 256 byte symbols as initial alphabet: every line of\n"
      "every file (line ending included) is split into words by GPT-2's regex, the words are\n"
      "counted, and the most frequent adjacent pair of symbols is merged until the vocabulary\n"
      "is full (ties: the pair of smaller ids). Ids: special tokens first, then the 256 byte\n"
      "symbols in code point order, then one per merge. The result loads in `tokenizers`,\n"
      "transformers and `promptsweep tokenize`.\n"
      "Example: promptsweep train-tokenizer corpus.txt --vocab-size 4096 -o tokenizer.json");
  cmd->add_option("files", args->files, "training text files (UTF-8; each line is one sequence)")
      ->required();
  cmd->add_option("-o,--output", args->output, "tokenizer.json to write (atomically)")->required();
  cmd->add_option("--vocab-size", args->options.vocab_size,
                  "final vocabulary size, counting special tokens and the 256 byte symbols (default 4096)");
  cmd->add_option("--min-frequency", args->options.min_frequency,
                  "a pair must occur at least this often to be merged (default 2)");
  cmd->add_option("--special-token", args->special_tokens,
                  "a special token, repeatable; they take ids 0, 1, ... (default: <|endoftext|>)")
      ->allow_extra_args(false)  // one token per flag, so files after it stay files
      ->each([args](const std::string&) { args->special_tokens_given = true; });
  cmd->callback([args] { Run(*args); });
}

}  // namespace promptsweep::cli
