// LlamaForCausalLM (transformers' modeling_llama.py) on LibTorch: RMSNorm,
// rotary embeddings (rope_theta, optional llama3 scaling), grouped-query
// attention, SiLU-gated MLP, tied or separate LM head. Q/K/V and gate/up are
// fused into one weight each at load, so each is one GEMM.
#pragma once

#include <memory>

#include "common/model_config.h"
#include "engine/causal_lm.h"

namespace promptsweep {

// Builds the model from `weights` (Hugging Face names). Error for a missing,
// mis-shaped or unexpected tensor; old checkpoints' rotary_emb.inv_freq
// buffers and a tied model's redundant lm_head.weight are ignored.
std::shared_ptr<CausalLM> CreateLlama(const ModelConfig& config, internal::WeightSource& weights,
                                      const ModelLoadOptions& options);

}  // namespace promptsweep
