// GPT2LMHeadModel (transformers' modeling_gpt2.py) on LibTorch: learned
// positions, LayerNorm with bias, GELU MLP, tied LM head. Conv1D weights are
// stored [in, out] in checkpoints and transposed once at load.
#pragma once

#include <memory>

#include "common/model_config.h"
#include "engine/causal_lm.h"

namespace promptsweep {

// Builds the model from `weights`, named with or without the "transformer."
// prefix. Error for a missing, mis-shaped or unexpected tensor; the causal-mask
// buffers old checkpoints carry (attn.bias, attn.masked_bias) and the tied
// lm_head.weight are ignored.
std::shared_ptr<CausalLM> CreateGpt2(const ModelConfig& config, internal::WeightSource& weights,
                                     const ModelLoadOptions& options);

}  // namespace promptsweep
