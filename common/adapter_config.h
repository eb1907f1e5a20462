// PEFT's adapter_config.json for PROMPT_TUNING on a CAUSAL_LM, read and
// written exactly as PEFT does (json.dumps(indent=2, sort_keys=True)).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace promptsweep {

struct AdapterConfig {
  std::string peft_type = "PROMPT_TUNING";
  std::string task_type = "CAUSAL_LM";
  int64_t num_virtual_tokens = 0;
  int64_t token_dim = 0;
  int64_t num_transformer_submodules = 1;
  int64_t num_attention_heads = 0;
  int64_t num_layers = 0;
  std::string prompt_tuning_init = "RANDOM";             // TEXT | RANDOM | SAMPLE_VOCAB
  std::optional<std::string> prompt_tuning_init_text;   // null unless TEXT
  std::optional<std::string> tokenizer_name_or_path;
  std::optional<std::string> base_model_name_or_path;
  std::optional<std::string> revision;
  bool inference_mode = true;
  // Fields PEFT writes that promptsweep does not interpret (auto_mapping,
  // modules_to_save, tokenizer_kwargs, peft_version, ...), kept on round trip.
  nlohmann::json extra = nlohmann::json::object();
};

// The PEFT release whose adapter_config.json layout promptsweep writes
// (written as "peft_version" unless `extra` carries one). 0.18.0 is the first
// release that stores its version; the PROMPT_TUNING fields are unchanged
// since, so any PEFT >= 0.14 (which ignores unknown keys) loads the file.
inline constexpr const char* kPeftFormatVersion = "0.18.0";

// The file's text, byte-for-byte as PEFT would write it: keys sorted, two-space
// indent, non-ASCII escaped as \uXXXX (json.dumps' ensure_ascii), no trailing
// newline (PeftConfigMixin.save_pretrained writes json.dumps(...) as is).
// Fields PEFT always writes and promptsweep has no member for (auto_mapping,
// modules_to_save, tokenizer_kwargs: null; peft_version: kPeftFormatVersion)
// are added when `extra` lacks them. Floats inside `extra` use the shortest
// round-trip form, as Python's repr does, except that Python writes numbers in
// [1e15, 1e16) without an exponent.
std::string AdapterConfigToJson(const AdapterConfig& config);
// Errors name the file and field; rejects peft_type other than PROMPT_TUNING,
// task_type other than CAUSAL_LM, num_transformer_submodules other than 1 (what
// PEFT sets for decoder-only models) and an unknown prompt_tuning_init. Absent
// optional fields take PEFT's dataclass defaults (inference_mode false,
// num_transformer_submodules 1, prompt_tuning_init RANDOM).
AdapterConfig ParseAdapterConfig(const nlohmann::json& json, const std::string& where);
AdapterConfig ReadAdapterConfig(const std::string& path);

bool operator==(const AdapterConfig& a, const AdapterConfig& b);
bool operator!=(const AdapterConfig& a, const AdapterConfig& b);

}  // namespace promptsweep
