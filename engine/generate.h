// Text generation with a soft prompt (or one per row): left-padded batch, prompt placed right
// before each row's first real token, KV cache, greedy or temperature/top-p.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "engine/causal_lm.h"

namespace promptsweep {

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  double temperature = 0.0;  // 0: greedy
  double top_p = 1.0;        // nucleus sampling when temperature > 0
  uint64_t seed = 0;         // sampling RNG (CPU generator: device-independent)
  std::vector<int64_t> stop_ids;  // e.g. the config's eos ids; the stop id is not returned
};

// Continuations (new token ids only) for each input row. `prompt` is the
// [N, H] soft prompt, or an undefined tensor for the bare model. A row stops
// at a stop id or after max_new_tokens; finished rows are padded while the
// others go on, so a row's output does not depend on the rest of the batch.
// Sampling: logits / temperature, then top-p (the smallest set of most likely
// tokens reaching top_p), as transformers orders them. Errors: bad options,
// an empty input without a prompt, or N + longest input + max_new_tokens
// beyond the model's max_position_embeddings.
std::vector<std::vector<int32_t>> Generate(const CausalLM& model, const torch::Tensor& prompt,
                                           const std::vector<std::vector<int32_t>>& inputs,
                                           const GenerateOptions& options);

// The same with per-row prompts: input i continues after prompts[prompt_index[i]]
// (undefined: the bare model), each row's tokens those of Generate with its
// prompt alone (PromptBatch's per-row layout; greedy is exact up to float
// ties; a sampled row's draws depend on its place in the batch). Error also
// when an index is outside the stack or a prompt does not fit the model.
std::vector<std::vector<int32_t>> Generate(const CausalLM& model, const std::vector<torch::Tensor>& prompts,
                                           const std::vector<int64_t>& prompt_index,
                                           const std::vector<std::vector<int32_t>>& inputs,
                                           const GenerateOptions& options);

}  // namespace promptsweep
