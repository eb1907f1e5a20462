// PEFT prompt-tuning adapters on disk: a directory with adapter_config.json and
// adapter_model.safetensors holding one F32 tensor "prompt_embeddings"
// [N * num_transformer_submodules, token_dim], metadata {"format": "pt"} —
// what PeftModel.from_pretrained loads.
#pragma once

#include <string>

#include <torch/torch.h>

#include "common/adapter_config.h"
#include "common/model_config.h"

namespace promptsweep {

struct PromptAdapter {
  AdapterConfig config;
  torch::Tensor prompt;  // [N, H] float32, CPU
};

// Writes both files (each atomically); creates `dir`. The prompt is cast to
// float32 on the CPU; config.num_virtual_tokens / token_dim must match it.
void SavePromptAdapter(const std::string& dir, const AdapterConfig& config, const torch::Tensor& prompt);

// adapter_model.safetensors bytes (what a worker sends to the coordinator).
std::string SerializePromptEmbeddings(const torch::Tensor& prompt);

// Reads an adapter directory (also ones PEFT wrote); checks the tensor's shape
// against the config. F16/BF16/F64 prompt_embeddings are cast to float32, as
// PEFT's load_state_dict into its float32 embedding does; any other dtype, a
// missing prompt_embeddings or any other tensor in the file is an error, and
// so is a directory with only the pickle adapter_model.bin.
PromptAdapter LoadPromptAdapter(const std::string& dir);

// Error naming the adapter and the model when the prompt's hidden size does
// not match the model's.
void CheckAdapterFitsModel(const PromptAdapter& adapter, const std::string& adapter_dir,
                           const ModelConfig& model_config);

}  // namespace promptsweep
