// `promptsweep inspect PATH`: what is in a model directory or a safetensors
// file, after validating it; the first problem found is the error.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "common/tokenizer.h"

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;

struct InspectOptions {
  std::string path;
  bool json = false;
  bool quiet = false;
};

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

std::string Grouped(int64_t n) {  // 134515008 -> "134,515,008"
  std::string digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return digits;
}

// Name of the token-embedding tensor the architecture's checkpoints use
// (Hugging Face GPT-2 files store it with or without the "transformer." prefix).
const TensorInfo* FindEmbedding(const CheckpointReader& checkpoint, Architecture architecture) {
  const std::vector<std::string> candidates =
      architecture == Architecture::kLlama
          ? std::vector<std::string>{"model.embed_tokens.weight"}
          : std::vector<std::string>{"transformer.wte.weight", "wte.weight"};
  for (const std::string& name : candidates) {
    if (const TensorInfo* info = checkpoint.Find(name)) return info;
  }
  return nullptr;
}

// Checks that the parts of a model directory agree with each other.
void CrossCheck(const ModelConfig& config, const std::string& config_path,
                const CheckpointReader* checkpoint, const Tokenizer* tokenizer,
                const std::string& tokenizer_path) {
  if (checkpoint != nullptr) {
    const TensorInfo* embedding = FindEmbedding(*checkpoint, config.architecture);
    if (embedding == nullptr) {
      throw Error(StrCat(checkpoint->path(), ": no token-embedding tensor for ",
                         config.architecture_name, " (expected ",
                         config.architecture == Architecture::kLlama ? "'model.embed_tokens.weight'"
                                                                     : "'wte.weight'",
                         "); is this the checkpoint config.json describes?"));
    }
    const std::vector<int64_t> expected = {config.vocab_size, config.hidden_size};
    if (embedding->shape != expected) {
      throw Error(StrCat(checkpoint->path(), ": tensor '", embedding->name, "' has shape ",
                         ShapeString(embedding->shape), " but ", config_path,
                         " says [vocab_size, hidden_size] = ", ShapeString(expected)));
    }
  }
  if (tokenizer != nullptr && tokenizer->VocabSize() > config.vocab_size) {
    throw Error(StrCat(tokenizer_path, ": tokenizer has ", tokenizer->VocabSize(),
                       " ids but ", config_path, " has vocab_size ", config.vocab_size,
                       "; ids past the embedding table would crash training"));
  }
}

void Run(const InspectOptions& options) {
  const fs::path path(options.path);
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(StrCat(options.path, ": no such file or directory"));

  nlohmann::json report;
  report["path"] = options.path;
  std::unique_ptr<CheckpointReader> checkpoint;
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<ModelConfig> config;
  std::string config_path;
  std::string tokenizer_path;

  const std::string name = path.filename().string();
  if (fs::is_directory(path)) {
    config_path = (path / "config.json").string();
    if (!fs::exists(config_path)) {
      throw Error(StrCat(options.path, ": no config.json; a Hugging Face model directory holds "
                                       "config.json, model.safetensors and tokenizer.json"));
    }
    config = ReadModelConfig(config_path);
    checkpoint = CheckpointReader::Open(options.path);
    tokenizer_path = (path / "tokenizer.json").string();
    if (fs::exists(tokenizer_path)) tokenizer = Tokenizer::FromFile(tokenizer_path);
    else tokenizer_path.clear();
  } else if (name == "tokenizer.json") {
    tokenizer_path = options.path;
    tokenizer = Tokenizer::FromFile(tokenizer_path);
  } else if (name == "config.json") {
    config_path = options.path;
    config = ReadModelConfig(config_path);
  } else {
    checkpoint = CheckpointReader::Open(options.path);  // .safetensors or .index.json
  }
  if (config) CrossCheck(*config, config_path, checkpoint.get(), tokenizer.get(), tokenizer_path);

  if (config) {
    const ModelConfig& c = *config;
    report["config"] = {
        {"architecture", c.architecture_name}, {"hidden_size", c.hidden_size},
        {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_hidden_layers},
        {"num_attention_heads", c.num_attention_heads},
        {"num_key_value_heads", c.num_key_value_heads}, {"head_dim", c.head_dim},
        {"vocab_size", c.vocab_size}, {"max_position_embeddings", c.max_position_embeddings},
        {"tie_word_embeddings", c.tie_word_embeddings}, {"torch_dtype", c.torch_dtype}};
    if (c.architecture == Architecture::kLlama) {
      report["config"]["rope_theta"] = c.rope_theta;
      report["config"]["rope_scaling"] = c.rope_scaling.type;
    }
  }
  int64_t parameters = 0;
  if (checkpoint) {
    nlohmann::json tensors = nlohmann::json::array();
    std::map<std::string, int64_t> dtype_counts;
    for (const std::string& tensor_name : checkpoint->TensorNames()) {
      const TensorInfo& info = checkpoint->Get(tensor_name);
      parameters += info.NumElements();
      ++dtype_counts[std::string(DTypeName(info.dtype))];
      tensors.push_back({{"name", info.name}, {"dtype", DTypeName(info.dtype)}, {"shape", info.shape}});
    }
    report["files"] = checkpoint->files().size();
    report["parameters"] = parameters;
    report["dtypes"] = dtype_counts;
    report["tensors"] = tensors;
  }
  if (tokenizer) {
    report["tokenizer"] = {{"path", tokenizer_path}, {"vocab_size", tokenizer->VocabSize()}};
  }

  if (options.json) {
    std::cout << report.dump(2) << "\n";
    return;
  }
  std::cout << "path: " << options.path << "\n";
  if (config) {
    const ModelConfig& c = *config;
    std::cout << "architecture: " << c.architecture_name << "\n"
              << "  hidden " << c.hidden_size << ", layers " << c.num_hidden_layers << ", heads "
              << c.num_attention_heads << " (kv " << c.num_key_value_heads << ", head_dim "
              << c.head_dim << "), intermediate " << c.intermediate_size << ", vocab "
              << c.vocab_size << ", positions " << c.max_position_embeddings
              << (c.tie_word_embeddings ? ", tied embeddings" : ", separate lm_head") << "\n";
  }
  if (checkpoint) {
    std::cout << "checkpoint: " << checkpoint->files().size() << " file(s), "
              << checkpoint->TensorNames().size() << " tensors, " << Grouped(parameters)
              << " parameters\n";
    if (!options.quiet) {
      for (const auto& t : report["tensors"]) {
        std::cout << "  " << std::left << std::setw(48) << t["name"].get<std::string>() << " "
                  << std::setw(5) << t["dtype"].get<std::string>() << " "
                  << ShapeString(t["shape"].get<std::vector<int64_t>>()) << "\n";
      }
    }
  }
  if (tokenizer) {
    std::cout << "tokenizer: " << tokenizer_path << ", " << tokenizer->VocabSize() << " ids\n";
  }
  std::cout << "ok: no problems found\n";
}

}  // namespace

void AddInspectCommand(CLI::App& app) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Validate and describe a Hugging Face model directory (config.json, model.safetensors or "
      "sharded model.safetensors.index.json, tokenizer.json), or a single .safetensors, "
      "config.json or tokenizer.json file. Exits 1 with the first problem found.");
  cmd->add_option("path", options->path, "model directory or file")->required();
  cmd->add_flag("--json", options->json, "print the report as JSON");
  cmd->add_flag("-q,--quiet", options->quiet, "do not list every tensor");
  cmd->callback([options] { Run(*options); });
}

}  // namespace promptsweep::cli
