// Loading a frozen model with its tokenizer: what `train`, `eval`, `generate`
// and a worker's ModelCache (worker/model_cache.h) all start from.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/tokenizer.h"
#include "engine/causal_lm.h"

namespace promptsweep {

// Where a frozen model comes from and how it is held: the job settings that
// ModelKey (common/job.h) names, plus the device.
struct ModelSpec {
  std::string model_dir;
  std::string tokenizer;  // a tokenizer.json; empty: model_dir/tokenizer.json
  std::string dtype = "float32";
  std::string device = "cpu";
};

// A frozen model and its tokenizer; immutable once loaded, so any number of
// jobs may use one at once.
struct LoadedModel {
  std::shared_ptr<const CausalLM> model;
  std::unique_ptr<Tokenizer> tokenizer;
  int64_t bytes = 0;  // memory of the weights on the model's device
};

// Loads the model directory and its tokenizer. Error naming the path when
// there is no model directory, no tokenizer, or the tokenizer has more ids
// than the model has embeddings (it belongs to another model).
LoadedModel LoadModel(const ModelSpec& spec);

}  // namespace promptsweep
