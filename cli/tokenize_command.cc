// `promptsweep tokenize`: text -> token ids (or ids -> text with --decode),
// with any Hugging Face tokenizer.json the library supports.
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "common/json_util.h"
#include "common/tokenizer.h"

namespace promptsweep::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer_path;
  std::string text;
  bool text_given = false;
  bool decode = false;
  bool no_special = false;
  bool show_tokens = false;
};

std::string ReadAllStdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

std::vector<int32_t> ParseIds(const std::string& text) {
  const nlohmann::json json = ParseJson(text, "--decode input");
  if (!json.is_array()) throw Error("--decode input: expected a JSON array of token ids, e.g. [128000, 9906]");
  std::vector<int32_t> ids;
  for (std::size_t i = 0; i < json.size(); ++i) {
    if (!json[i].is_number_integer()) {
      throw Error(StrCat("--decode input: element ", i, " is ", json[i].dump(), ", expected an integer id"));
    }
    ids.push_back(json[i].get<int32_t>());
  }
  return ids;
}

void Run(const TokenizeOptions& options) {
  const auto tokenizer = Tokenizer::FromFile(options.tokenizer_path);
  const std::string input = options.text_given ? options.text : ReadAllStdin();
  if (options.decode) {
    std::cout << tokenizer->Decode(ParseIds(input), /*skip_special_tokens=*/options.no_special) << "\n";
    return;
  }
  const std::vector<int32_t> ids = tokenizer->Encode(input, /*add_special_tokens=*/!options.no_special);
  if (!options.show_tokens) {
    std::cout << nlohmann::json(ids).dump() << "\n";
    return;
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const int32_t id : ids) {
    rows.push_back({{"id", id}, {"token", tokenizer->IdToToken(id)}, {"text", tokenizer->Decode({id})}});
  }
  std::cout << rows.dump(/*indent=*/-1, ' ', /*ensure_ascii=*/false,
                         nlohmann::json::error_handler_t::replace)
            << "\n";
}

}  // namespace


void AddTokenizeCommand(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Encode text to token ids as JSON (text from --text or stdin), or decode ids with --decode.\n"
      "Example: echo -n 'Hello world' | promptsweep tokenize --tokenizer models/x/tokenizer.json");
  cmd->add_option("--tokenizer", options->tokenizer_path,
                  "tokenizer.json file, or a model directory holding one")
      ->required();
  cmd->add_option("--text", options->text, "text to encode (default: all of stdin, byte for byte)")
      ->each([options](const std::string&) { options->text_given = true; });
  cmd->add_flag("--decode", options->decode,
                "input is a JSON array of ids; print the decoded text");
  cmd->add_flag("--no-special", options->no_special,
                "encode: do not add the post-processor's special tokens (e.g. BOS); "
                "decode: drop special tokens");
  cmd->add_flag("--show-tokens", options->show_tokens,
                "print [{id, token, text}] instead of bare ids");
  cmd->callback([options] { Run(*options); });
}

}  // namespace promptsweep::cli
