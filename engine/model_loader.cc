#include "engine/model_loader.h"

#include <filesystem>

#include "common/error.h"

namespace promptsweep {

namespace fs = std::filesystem;

LoadedModel LoadModel(const ModelSpec& spec) {
  if (spec.model_dir.empty()) throw Error("no model: give the model directory (MODEL argument or 'model:' key)");
  ModelLoadOptions options;
  options.device = ParseDevice(spec.device);
  options.dtype = ParseComputeDType(spec.dtype);
  if (!fs::is_directory(spec.model_dir)) {
    throw Error(StrCat(spec.model_dir, ": not a model directory (expected config.json, model.safetensors and "
                                      "tokenizer.json)"));
  }
  LoadedModel loaded;
  loaded.model = CausalLM::Load(spec.model_dir, options);
  const std::string tokenizer_path =
      spec.tokenizer.empty() ? (fs::path(spec.model_dir) / "tokenizer.json").string() : spec.tokenizer;
  if (!fs::exists(tokenizer_path)) {
    throw Error(StrCat(tokenizer_path, ": no tokenizer; put tokenizer.json in the model directory or pass --tokenizer"));
  }
  loaded.tokenizer = Tokenizer::FromFile(tokenizer_path);
  if (loaded.tokenizer->VocabSize() > loaded.model->config().vocab_size) {
    throw Error(StrCat(tokenizer_path, ": tokenizer has ", loaded.tokenizer->VocabSize(), " ids but the model has ",
                       loaded.model->config().vocab_size, " embeddings; it belongs to another model"));
  }
  // NamedWeights lists tied weights once and fused ones as views that tile
  // the fused tensor, so the sum is what the model holds.
  for (const auto& [name, weight] : loaded.model->NamedWeights()) {
    loaded.bytes += weight.numel() * static_cast<int64_t>(weight.element_size());
  }
  return loaded;
}

}  // namespace promptsweep
