#include "common/model_config.h"

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"

namespace promptsweep {
namespace {

struct ArchitectureInfo {
  Architecture architecture;
  const char* name;        // "architectures"[0]
  const char* model_type;  // "model_type"
};

constexpr ArchitectureInfo kArchitectures[] = {
    {Architecture::kLlama, "LlamaForCausalLM", "llama"},
    {Architecture::kGpt2, "GPT2LMHeadModel", "gpt2"},
};

// Sizes stay within int32 so a product of two never overflows int64.
constexpr int64_t kMaxSize = std::numeric_limits<int32_t>::max();

constexpr const char* kLlamaActivations[] = {"silu"};
constexpr const char* kGpt2Activations[] = {"gelu_new", "gelu_pytorch_tanh", "gelu", "relu"};
constexpr const char* kDTypes[] = {"float32", "float16", "bfloat16"};

template <typename Names>
std::string JoinNames(const Names& names) {
  std::string joined;
  for (const auto& name : names) {
    if (!joined.empty()) joined += ", ";
    joined += name;
  }
  return joined;
}

template <typename Names>
bool Contains(const Names& names, const std::string& value) {
  for (const auto& name : names) {
    if (value == name) return true;
  }
  return false;
}

const ArchitectureInfo& DetectArchitecture(const JsonObject& json) {
  const ArchitectureInfo* from_model_type = nullptr;
  std::optional<std::string> model_type = json.OptionalString("model_type");
  if (model_type) {
    for (const ArchitectureInfo& info : kArchitectures) {
      if (*model_type == info.model_type) from_model_type = &info;
    }
  }

  std::optional<std::string> name;
  if (json.Has("architectures")) {
    const nlohmann::json& list = json.Raw("architectures");
    if (!list.is_array()) {
      json.Fail("architectures", StrCat("expected a list of class names, found ", DescribeJson(list)));
    }
    // transformers instantiates the first entry; an empty list says nothing.
    if (!list.empty()) {
      if (!list[0].is_string()) {
        json.Fail("architectures", StrCat("element 0: expected a string, found ", DescribeJson(list[0])));
      }
      name = list[0].get<std::string>();
    }
  }

  if (!name) {
    if (from_model_type) return *from_model_type;
    std::vector<std::string> types;
    for (const ArchitectureInfo& info : kArchitectures) types.push_back(info.model_type);
    if (model_type) {
      json.Fail("model_type", StrCat("'", *model_type, "' is not supported (supported: ", JoinNames(types),
                                     ")"));
    }
    json.Fail("architectures", StrCat("missing, and no 'model_type' either (supported: ",
                                      JoinNames(SupportedArchitectures()), ")"));
  }
  for (const ArchitectureInfo& info : kArchitectures) {
    if (*name != info.name) continue;
    if (model_type && *model_type != info.model_type) {
      json.Fail("model_type", StrCat("'", *model_type, "' does not match architecture '", info.name,
                                     "' (expected '", info.model_type, "')"));
    }
    return info;
  }
  throw Error(StrCat(json.where(), ": architecture '", *name, "' is not supported (supported: ",
                     JoinNames(SupportedArchitectures()), ")"));
}

// A dimension or count: required unless `default_value` is given.
int64_t Size(const JsonObject& json, const std::string& key,
             std::optional<int64_t> default_value = std::nullopt) {
  if (default_value && !json.Has(key)) return *default_value;
  const int64_t value = json.Int(key);
  if (value <= 0) json.Fail(key, StrCat("must be positive, found ", value));
  if (value > kMaxSize) json.Fail(key, StrCat("too large: ", value, " (at most ", kMaxSize, ")"));
  return value;
}

double PositiveFloat(const JsonObject& json, const std::string& key,
                     std::optional<double> default_value = std::nullopt) {
  const double value = default_value ? json.Float(key, *default_value) : json.Float(key);
  if (!(value > 0)) json.Fail(key, StrCat("must be positive, found ", value));
  return value;
}

// Fails unless `key` is absent or equal to `expected`: for switches that change
// the model's math in ways the engine does not implement.
void RequireBool(const JsonObject& json, const std::string& key, bool expected,
                 const std::string& why) {
  if (json.Bool(key, expected) != expected) {
    json.Fail(key, StrCat(expected ? "false" : "true", " is not supported (", why, ")"));
  }
}

// Fails unless `value` of field `key` is one of `allowed`.
template <typename Names>
void RequireOneOf(const JsonObject& json, const std::string& key, const std::string& value,
                  const Names& allowed) {
  if (!Contains(allowed, value)) {
    json.Fail(key, StrCat("'", value, "' is not supported (supported: ", JoinNames(allowed), ")"));
  }
}

// transformers 4.56 renamed torch_dtype to dtype; accept either, not both differing.
std::string ReadDType(const JsonObject& json) {
  std::optional<std::string> dtype = json.OptionalString("torch_dtype");
  std::string key = "torch_dtype";
  if (const std::optional<std::string> renamed = json.OptionalString("dtype")) {
    if (dtype && *dtype != *renamed) {
      json.Fail("dtype", StrCat("'", *renamed, "' contradicts torch_dtype '", *dtype, "'"));
    }
    dtype = renamed;
    key = "dtype";
  }
  if (!dtype || *dtype == "auto") return "";
  RequireOneOf(json, key, *dtype, kDTypes);
  return *dtype;
}

// `scaling` is a rope_scaling or rope_parameters object.
RopeScaling ReadRopeScaling(const JsonObject& scaling) {
  // transformers reads "rope_type", falling back to the older "type".
  std::optional<std::string> type = scaling.OptionalString("rope_type");
  if (const std::optional<std::string> legacy = scaling.OptionalString("type")) {
    if (type && *type != *legacy) {
      scaling.Fail("type", StrCat("'", *legacy, "' contradicts rope_type '", *type, "'"));
    }
    type = legacy;
  }
  if (!type) scaling.Fail("rope_type", "missing (required)");

  RopeScaling rope;
  if (*type == "default") return rope;  // transformers' name for no scaling
  if (*type != "llama3") {
    scaling.Fail("rope_type", StrCat("'", *type, "' is not supported (supported: none, llama3)"));
  }
  rope.type = "llama3";
  rope.factor = scaling.Float("factor");
  rope.low_freq_factor = PositiveFloat(scaling, "low_freq_factor");
  rope.high_freq_factor = scaling.Float("high_freq_factor");
  rope.original_max_position_embeddings = Size(scaling, "original_max_position_embeddings");
  if (!(rope.factor >= 1)) scaling.Fail("factor", StrCat("must be at least 1, found ", rope.factor));
  // Llama 3 interpolates between the two wavelength bounds these define.
  if (!(rope.high_freq_factor > rope.low_freq_factor)) {
    scaling.Fail("high_freq_factor", StrCat("must exceed low_freq_factor ", rope.low_freq_factor,
                                            ", found ", rope.high_freq_factor));
  }
  return rope;
}

// Absent ids take transformers' defaults; an explicit null means "no such token".
void ReadTokenIds(const JsonObject& json, int64_t default_bos, int64_t default_eos,
                  ModelConfig* config) {
  const auto check = [&](const std::string& key, int64_t id) {
    if (id < 0 || id >= config->vocab_size) {
      json.Fail(key, StrCat(id, " is outside the vocabulary [0, ", config->vocab_size, ")"));
    }
  };
  config->bos_token_id.reset();
  if (json.Has("bos_token_id")) {
    config->bos_token_id = json.Int("bos_token_id");
  } else if (!json.Contains("bos_token_id")) {
    config->bos_token_id = default_bos;
  }
  if (config->bos_token_id) check("bos_token_id", *config->bos_token_id);

  config->eos_token_ids.clear();
  if (json.Has("eos_token_id")) {
    config->eos_token_ids = json.IntOrIntList("eos_token_id");
  } else if (!json.Contains("eos_token_id")) {
    config->eos_token_ids = {default_eos};
  }
  for (const int64_t id : config->eos_token_ids) check("eos_token_id", id);

  config->pad_token_id.reset();
  if (json.Has("pad_token_id")) {
    config->pad_token_id = json.Int("pad_token_id");
    check("pad_token_id", *config->pad_token_id);
  }
}

void ParseLlama(const JsonObject& json, ModelConfig* config) {
  config->hidden_size = Size(json, "hidden_size");
  config->intermediate_size = Size(json, "intermediate_size");
  config->num_hidden_layers = Size(json, "num_hidden_layers");
  config->num_attention_heads = Size(json, "num_attention_heads");
  config->num_key_value_heads = Size(json, "num_key_value_heads", config->num_attention_heads);
  config->vocab_size = Size(json, "vocab_size");
  config->max_position_embeddings = Size(json, "max_position_embeddings", 2048);

  if (json.Has("head_dim")) {
    config->head_dim = Size(json, "head_dim");
  } else {
    if (config->hidden_size % config->num_attention_heads != 0) {
      json.Fail("num_attention_heads",
                StrCat(config->num_attention_heads, " does not divide hidden_size ", config->hidden_size,
                       " (fix the sizes or give head_dim)"));
    }
    config->head_dim = config->hidden_size / config->num_attention_heads;
  }
  // Rotary embeddings rotate pairs of channels.
  if (config->head_dim % 2 != 0) {
    json.Fail(json.Has("head_dim") ? "head_dim" : "num_attention_heads",
              StrCat("head_dim ", config->head_dim, " must be even for rotary embeddings"));
  }
  if (config->num_attention_heads % config->num_key_value_heads != 0) {
    json.Fail("num_key_value_heads",
              StrCat(config->num_key_value_heads, " does not divide num_attention_heads ",
                     config->num_attention_heads));
  }

  config->norm_eps = PositiveFloat(json, "rms_norm_eps", 1e-6);
  if (json.Has("rope_parameters")) {
    // transformers 5 keeps rope_theta inside rope_parameters.
    const JsonObject parameters = json.Object("rope_parameters");
    config->rope_theta = PositiveFloat(parameters, "rope_theta");
    config->rope_scaling = ReadRopeScaling(parameters);
  } else {
    config->rope_theta = PositiveFloat(json, "rope_theta", 10000.0);
    config->rope_scaling =
        json.Has("rope_scaling") ? ReadRopeScaling(json.Object("rope_scaling")) : RopeScaling{};
  }

  config->tie_word_embeddings = json.Bool("tie_word_embeddings", false);
  config->attention_bias = json.Bool("attention_bias", false);
  config->mlp_bias = json.Bool("mlp_bias", false);
  config->hidden_act = json.String("hidden_act", "silu");
  RequireOneOf(json, "hidden_act", config->hidden_act, kLlamaActivations);
  ReadTokenIds(json, /*default_bos=*/1, /*default_eos=*/2, config);
}

void ParseGpt2(const JsonObject& json, ModelConfig* config) {
  config->hidden_size = Size(json, "n_embd");
  config->num_hidden_layers = Size(json, "n_layer");
  config->num_attention_heads = Size(json, "n_head");
  config->max_position_embeddings = Size(json, "n_positions");
  config->vocab_size = Size(json, "vocab_size");
  if (json.Has("n_inner")) {
    config->intermediate_size = Size(json, "n_inner");
  } else {
    config->intermediate_size = 4 * config->hidden_size;  // < 2^33: no overflow
    if (config->intermediate_size > kMaxSize) {
      json.Fail("n_embd", StrCat("4 * n_embd (the default n_inner) is too large: ",
                                 config->intermediate_size, " (at most ", kMaxSize, ")"));
    }
  }
  if (config->hidden_size % config->num_attention_heads != 0) {
    json.Fail("n_head", StrCat(config->num_attention_heads, " does not divide n_embd ",
                               config->hidden_size));
  }
  config->num_key_value_heads = config->num_attention_heads;
  config->head_dim = config->hidden_size / config->num_attention_heads;
  config->norm_eps = PositiveFloat(json, "layer_norm_epsilon", 1e-5);
  config->hidden_act = json.String("activation_function", "gelu_new");
  RequireOneOf(json, "activation_function", config->hidden_act, kGpt2Activations);

  RequireBool(json, "tie_word_embeddings", true,
              "GPT2LMHeadModel shares the token embedding with the LM head");
  RequireBool(json, "scale_attn_weights", true, "attention scores are always scaled by 1/sqrt(head_dim)");
  RequireBool(json, "scale_attn_by_inverse_layer_idx", false, "not implemented");
  RequireBool(json, "add_cross_attention", false, "decoder-only models only");
  config->tie_word_embeddings = true;
  config->attention_bias = true;  // c_attn / c_proj always have biases
  config->mlp_bias = true;
  ReadTokenIds(json, /*default_bos=*/50256, /*default_eos=*/50256, config);
}

// null for an unset id, as transformers writes None.
nlohmann::json OptionalId(const std::optional<int64_t>& id) {
  return id ? nlohmann::json(*id) : nlohmann::json(nullptr);
}

nlohmann::json EosJson(const std::vector<int64_t>& ids) {
  if (ids.empty()) return nullptr;
  if (ids.size() == 1) return ids[0];
  return ids;
}

}  // namespace

bool operator==(const RopeScaling& a, const RopeScaling& b) {
  return std::tie(a.type, a.factor, a.low_freq_factor, a.high_freq_factor,
                  a.original_max_position_embeddings) ==
         std::tie(b.type, b.factor, b.low_freq_factor, b.high_freq_factor,
                  b.original_max_position_embeddings);
}

bool operator!=(const RopeScaling& a, const RopeScaling& b) { return !(a == b); }

bool operator==(const ModelConfig& a, const ModelConfig& b) {
  const auto fields = [](const ModelConfig& c) {
    return std::tie(c.architecture, c.architecture_name, c.model_type, c.hidden_size,
                    c.intermediate_size, c.num_hidden_layers, c.num_attention_heads,
                    c.num_key_value_heads, c.head_dim, c.vocab_size, c.max_position_embeddings,
                    c.norm_eps, c.rope_theta, c.rope_scaling, c.tie_word_embeddings,
                    c.attention_bias, c.mlp_bias, c.hidden_act, c.bos_token_id, c.eos_token_ids,
                    c.pad_token_id, c.torch_dtype);
  };
  return fields(a) == fields(b);
}

bool operator!=(const ModelConfig& a, const ModelConfig& b) { return !(a == b); }

std::vector<std::string> SupportedArchitectures() {
  std::vector<std::string> names;
  for (const ArchitectureInfo& info : kArchitectures) names.push_back(info.name);
  return names;
}

ModelConfig ReadModelConfig(const std::string& path) {
  std::string file = path;
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    file = (std::filesystem::path(path) / "config.json").string();
    if (!std::filesystem::exists(file, error)) {
      throw Error(StrCat(path, ": no config.json in this directory (expected a Hugging Face model "
                               "directory or the path of its config.json)"));
    }
  }
  return ParseModelConfig(ReadJsonFile(file), file);
}

ModelConfig ParseModelConfig(const nlohmann::json& json, const std::string& where) {
  const JsonObject object(json, where);
  const ArchitectureInfo& info = DetectArchitecture(object);
  ModelConfig config;
  config.architecture = info.architecture;
  config.architecture_name = info.name;
  config.model_type = info.model_type;
  switch (info.architecture) {
    case Architecture::kLlama:
      ParseLlama(object, &config);
      break;
    case Architecture::kGpt2:
      ParseGpt2(object, &config);
      break;
  }
  config.torch_dtype = ReadDType(object);
  return config;
}

nlohmann::json ModelConfigToJson(const ModelConfig& config) {
  // nlohmann sorts keys, as transformers' save_pretrained does.
  nlohmann::json json = nlohmann::json::object();
  json["architectures"] = nlohmann::json::array({config.architecture_name});
  json["model_type"] = config.model_type;
  json["vocab_size"] = config.vocab_size;
  json["bos_token_id"] = OptionalId(config.bos_token_id);
  json["eos_token_id"] = EosJson(config.eos_token_ids);
  json["pad_token_id"] = OptionalId(config.pad_token_id);
  json["tie_word_embeddings"] = config.tie_word_embeddings;
  if (!config.torch_dtype.empty()) json["torch_dtype"] = config.torch_dtype;

  switch (config.architecture) {
    case Architecture::kLlama: {
      json["hidden_size"] = config.hidden_size;
      json["intermediate_size"] = config.intermediate_size;
      json["num_hidden_layers"] = config.num_hidden_layers;
      json["num_attention_heads"] = config.num_attention_heads;
      json["num_key_value_heads"] = config.num_key_value_heads;
      json["head_dim"] = config.head_dim;
      json["max_position_embeddings"] = config.max_position_embeddings;
      json["rms_norm_eps"] = config.norm_eps;
      json["rope_theta"] = config.rope_theta;
      if (config.rope_scaling.type == "none") {
        json["rope_scaling"] = nullptr;
      } else {
        json["rope_scaling"] = {
            {"rope_type", config.rope_scaling.type},
            {"factor", config.rope_scaling.factor},
            {"low_freq_factor", config.rope_scaling.low_freq_factor},
            {"high_freq_factor", config.rope_scaling.high_freq_factor},
            {"original_max_position_embeddings", config.rope_scaling.original_max_position_embeddings},
        };
      }
      json["attention_bias"] = config.attention_bias;
      json["mlp_bias"] = config.mlp_bias;
      json["hidden_act"] = config.hidden_act;
      break;
    }
    case Architecture::kGpt2: {
      json["n_embd"] = config.hidden_size;
      json["n_inner"] = config.intermediate_size;
      json["n_layer"] = config.num_hidden_layers;
      json["n_head"] = config.num_attention_heads;
      json["n_positions"] = config.max_position_embeddings;
      json["n_ctx"] = config.max_position_embeddings;  // older transformers read n_ctx
      json["layer_norm_epsilon"] = config.norm_eps;
      json["activation_function"] = config.hidden_act;
      break;
    }
  }
  return json;
}

}  // namespace promptsweep
