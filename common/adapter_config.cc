#include "common/adapter_config.h"

#include <array>
#include <string_view>

#include "common/error.h"
#include "common/json_util.h"

namespace promptsweep {
namespace {

// PromptTuningInit values (peft/tuners/prompt_tuning/config.py).
constexpr std::array<std::string_view, 3> kPromptTuningInits = {"TEXT", "SAMPLE_VOCAB", "RANDOM"};

// Keys that map onto AdapterConfig members; everything else goes to `extra`.
constexpr std::array<std::string_view, 13> kKnownKeys = {
    "peft_type",           "task_type",        "num_virtual_tokens",      "token_dim",
    "num_transformer_submodules", "num_attention_heads", "num_layers", "prompt_tuning_init",
    "prompt_tuning_init_text", "tokenizer_name_or_path", "base_model_name_or_path", "revision",
    "inference_mode"};

bool IsKnownKey(std::string_view key) {
  for (std::string_view known : kKnownKeys) {
    if (key == known) return true;
  }
  return false;
}

nlohmann::json OptionalToJson(const std::optional<std::string>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

// An int field PEFT declares Optional[int]: null or absent reads as `absent`.
int64_t OptionalInt(const JsonObject& json, const std::string& key, int64_t absent) {
  return json.Has(key) ? json.Int(key) : absent;
}

}  // namespace

std::string AdapterConfigToJson(const AdapterConfig& config) {
  // PEFT's to_dict() is dataclasses.asdict(config): every field of
  // PromptTuningConfig and its bases, written by json.dumps(indent=2,
  // sort_keys=True). nlohmann's object is a std::map, so keys come out sorted
  // by UTF-8 bytes, which is code point order, as sort_keys does.
  nlohmann::json json = {
      {"auto_mapping", nullptr},
      {"modules_to_save", nullptr},
      {"peft_version", kPeftFormatVersion},
      {"tokenizer_kwargs", nullptr},
  };
  PS_CHECK(config.extra.is_object(), "AdapterConfig::extra must be a JSON object");
  for (const auto& [key, value] : config.extra.items()) {
    if (!IsKnownKey(key)) json[key] = value;
  }
  json["base_model_name_or_path"] = OptionalToJson(config.base_model_name_or_path);
  json["inference_mode"] = config.inference_mode;
  json["num_attention_heads"] = config.num_attention_heads;
  json["num_layers"] = config.num_layers;
  json["num_transformer_submodules"] = config.num_transformer_submodules;
  json["num_virtual_tokens"] = config.num_virtual_tokens;
  json["peft_type"] = config.peft_type;
  json["prompt_tuning_init"] = config.prompt_tuning_init;
  json["prompt_tuning_init_text"] = OptionalToJson(config.prompt_tuning_init_text);
  json["revision"] = OptionalToJson(config.revision);
  json["task_type"] = config.task_type;
  json["token_dim"] = config.token_dim;
  json["tokenizer_name_or_path"] = OptionalToJson(config.tokenizer_name_or_path);
  // ensure_ascii=true: Python's json.dumps default (\u00e9, surrogate pairs
  // above U+FFFF, lowercase hex, DEL escaped too), as PEFT writes names.
  return json.dump(/*indent=*/2, /*indent_char=*/' ', /*ensure_ascii=*/true);
}

AdapterConfig ParseAdapterConfig(const nlohmann::json& json, const std::string& where) {
  const JsonObject object(json, where);
  AdapterConfig config;

  config.peft_type = object.String("peft_type");
  if (config.peft_type != "PROMPT_TUNING") {
    object.Fail("peft_type", StrCat("promptsweep reads prompt-tuning adapters only (\"PROMPT_TUNING\"), "
                                    "found \"", config.peft_type, "\""));
  }
  config.task_type = object.String("task_type");
  if (config.task_type != "CAUSAL_LM") {
    object.Fail("task_type", StrCat("promptsweep runs decoder-only models (\"CAUSAL_LM\"), found \"",
                                    config.task_type, "\""));
  }

  config.num_virtual_tokens = object.Int("num_virtual_tokens");
  if (config.num_virtual_tokens <= 0) {
    object.Fail("num_virtual_tokens", StrCat("must be positive, found ", config.num_virtual_tokens));
  }
  config.token_dim = object.Int("token_dim");
  if (config.token_dim <= 0) {
    object.Fail("token_dim", StrCat("must be positive, found ", config.token_dim));
  }
  config.num_transformer_submodules = OptionalInt(object, "num_transformer_submodules", 1);
  if (config.num_transformer_submodules != 1) {
    object.Fail("num_transformer_submodules",
                StrCat("a CAUSAL_LM prompt has 1 (2 is for encoder-decoder models), found ",
                       config.num_transformer_submodules));
  }
  config.num_attention_heads = OptionalInt(object, "num_attention_heads", 0);
  config.num_layers = OptionalInt(object, "num_layers", 0);

  config.prompt_tuning_init = object.String("prompt_tuning_init", "RANDOM");
  bool known_init = false;
  for (std::string_view init : kPromptTuningInits) known_init |= config.prompt_tuning_init == init;
  if (!known_init) {
    object.Fail("prompt_tuning_init", StrCat("expected TEXT, SAMPLE_VOCAB or RANDOM, found \"",
                                             config.prompt_tuning_init, "\""));
  }
  config.prompt_tuning_init_text = object.OptionalString("prompt_tuning_init_text");
  config.tokenizer_name_or_path = object.OptionalString("tokenizer_name_or_path");
  config.base_model_name_or_path = object.OptionalString("base_model_name_or_path");
  config.revision = object.OptionalString("revision");
  config.inference_mode = object.Bool("inference_mode", false);

  for (const auto& [key, value] : json.items()) {
    if (!IsKnownKey(key)) config.extra[key] = value;
  }
  return config;
}

AdapterConfig ReadAdapterConfig(const std::string& path) {
  return ParseAdapterConfig(ReadJsonFile(path), path);
}

bool operator==(const AdapterConfig& a, const AdapterConfig& b) {
  return a.peft_type == b.peft_type && a.task_type == b.task_type &&
         a.num_virtual_tokens == b.num_virtual_tokens && a.token_dim == b.token_dim &&
         a.num_transformer_submodules == b.num_transformer_submodules &&
         a.num_attention_heads == b.num_attention_heads && a.num_layers == b.num_layers &&
         a.prompt_tuning_init == b.prompt_tuning_init &&
         a.prompt_tuning_init_text == b.prompt_tuning_init_text &&
         a.tokenizer_name_or_path == b.tokenizer_name_or_path &&
         a.base_model_name_or_path == b.base_model_name_or_path && a.revision == b.revision &&
         a.inference_mode == b.inference_mode && a.extra == b.extra;
}

bool operator!=(const AdapterConfig& a, const AdapterConfig& b) { return !(a == b); }

}  // namespace promptsweep
