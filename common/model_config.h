// Hugging Face `config.json` for the causal LMs promptsweep runs, read into one
// typed struct. Both supported architectures map onto the same fields (GPT-2's
// n_embd is hidden_size, ...), so model code never reads JSON.
//
// Defaults follow transformers' LlamaConfig / GPT2Config for fields a config.json
// may omit. Decisions where promptsweep is stricter than transformers:
//   - GPT-2 n_embd, n_layer, n_head, n_positions and vocab_size are required even
//     though GPT2Config has defaults: every real checkpoint writes them, so a
//     missing one means a broken file, not a wish for GPT-2 small's sizes.
//   - Every size is positive and at most 2^31 - 1, so the product of any two fits
//     int64 and sizes fit the int32 indices some kernels use.
//   - Settings the engine does not compute are rejected rather than ignored: rope
//     types other than llama3, Llama hidden_act other than silu, GPT-2 with
//     untied embeddings, scale_attn_weights=false, scale_attn_by_inverse_layer_idx
//     or add_cross_attention.
//   - llama3 rope scaling needs factor >= 1, low_freq_factor > 0 and
//     high_freq_factor > low_freq_factor (transformers only warns).
//   - torch_dtype (or "dtype", its name since transformers 4.56) must be float32,
//     float16 or bfloat16; "auto" is read as absent, since it says nothing about
//     the stored weights (safetensors headers carry each tensor's dtype anyway).
//   - transformers 5's "rope_parameters" (rope_theta and the rope type in one
//     object) is read as well as the older rope_theta + rope_scaling.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace promptsweep {

enum class Architecture { kLlama, kGpt2 };

// Llama 3 "rope_scaling" (type "llama3"); type "none" when absent.
struct RopeScaling {
  std::string type = "none";
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::string architecture_name;  // "LlamaForCausalLM" or "GPT2LMHeadModel"
  std::string model_type;         // "llama" or "gpt2"

  int64_t hidden_size = 0;              // GPT-2: n_embd
  int64_t intermediate_size = 0;        // GPT-2: n_inner or 4 * n_embd
  int64_t num_hidden_layers = 0;        // GPT-2: n_layer
  int64_t num_attention_heads = 0;      // GPT-2: n_head
  int64_t num_key_value_heads = 0;      // defaults to num_attention_heads
  int64_t head_dim = 0;                 // defaults to hidden_size / num_attention_heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;  // GPT-2: n_positions
  double norm_eps = 1e-6;               // rms_norm_eps / layer_norm_epsilon
  double rope_theta = 10000.0;          // Llama only
  RopeScaling rope_scaling;             // Llama only
  bool tie_word_embeddings = false;     // GPT-2: always true
  bool attention_bias = false;          // q/k/v/o biases; GPT-2: always true
  bool mlp_bias = false;                // GPT-2: always true
  // Llama: "silu". GPT-2 activation_function: "gelu_new" or "gelu_pytorch_tanh"
  // (both GELU with the tanh approximation), "gelu" (exact erf GELU) or "relu".
  std::string hidden_act;
  // Absent ids take transformers' defaults (Llama bos 1 / eos 2, GPT-2 50256);
  // an explicit null leaves them unset. All ids lie in [0, vocab_size).
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;   // eos_token_id may be an int or a list
  std::optional<int64_t> pad_token_id;
  std::string torch_dtype;              // "float32", "bfloat16", "float16", or "" if absent
};

bool operator==(const RopeScaling& a, const RopeScaling& b);
bool operator!=(const RopeScaling& a, const RopeScaling& b);
bool operator==(const ModelConfig& a, const ModelConfig& b);
bool operator!=(const ModelConfig& a, const ModelConfig& b);

// Names accepted in "architectures" / "model_type", for error messages.
std::vector<std::string> SupportedArchitectures();

// Reads `path` (a config.json file, or a model directory holding one).
// Errors name the file and the field: "config.json: field 'hidden_size': missing (required)".
ModelConfig ReadModelConfig(const std::string& path);

// Same from parsed JSON; `where` names the source in errors.
ModelConfig ParseModelConfig(const nlohmann::json& json, const std::string& where);

// The config.json Hugging Face would write for `config` (used when promptsweep
// saves a model); ParseModelConfig(ModelConfigToJson(c)) == c for every c that
// ParseModelConfig returned. Only fields of c's architecture are written.
nlohmann::json ModelConfigToJson(const ModelConfig& config);

}  // namespace promptsweep
