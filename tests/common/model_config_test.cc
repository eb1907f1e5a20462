#include "common/model_config.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using Json = nlohmann::json;

// gtest only: common_tests does not link gmock.
using test::HasText;

class ModelConfigTest : public ::testing::Test {
 protected:
  // The error source name used for configs built in memory.
  static constexpr const char* kWhere = "models/m/config.json";

  static std::string DataPath(const std::string& name) {
    return std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/configs/" + name;
  }
  static Json Load(const std::string& name) { return ReadJsonFile(DataPath(name)); }

  // Error message of parsing `json`; fails the test if parsing succeeds.
  static std::string ParseError(const Json& json) {
    try {
      const ModelConfig config = ParseModelConfig(json, kWhere);
      ADD_FAILURE() << "parsed without error: " << ModelConfigToJson(config).dump();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  // ParseModelConfig(ModelConfigToJson(c)) must give back c.
  static void ExpectRoundTrip(const ModelConfig& config) {
    const Json written = ModelConfigToJson(config);
    const ModelConfig reread = ParseModelConfig(written, "written config.json");
    EXPECT_TRUE(reread == config) << "written: " << written.dump()
                                  << "\nreread:  " << ModelConfigToJson(reread).dump();
  }

  // A Llama config with only the fields that have no default.
  static Json MinimalLlama() {
    return {{"model_type", "llama"},       {"hidden_size", 64},       {"intermediate_size", 128},
            {"num_hidden_layers", 2},      {"num_attention_heads", 4}, {"vocab_size", 100}};
  }
  static Json MinimalGpt2() {
    return {{"model_type", "gpt2"}, {"n_embd", 64},       {"n_layer", 2},
            {"n_head", 4},          {"n_positions", 128}, {"vocab_size", 50257}};
  }
};

TEST_F(ModelConfigTest, ReadsSmolLM2) {
  const ModelConfig c = ReadModelConfig(DataPath("smollm2-135m.json"));
  EXPECT_EQ(c.architecture, Architecture::kLlama);
  EXPECT_EQ(c.architecture_name, "LlamaForCausalLM");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.num_hidden_layers, 30);
  EXPECT_EQ(c.num_attention_heads, 9);
  EXPECT_EQ(c.num_key_value_heads, 3);
  EXPECT_EQ(c.head_dim, 64);  // not in the file: 576 / 9
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_EQ(c.norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_EQ(c.rope_scaling.type, "none");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.hidden_act, "silu");
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{0});
  EXPECT_EQ(c.pad_token_id, std::nullopt);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST_F(ModelConfigTest, ReadsLlama32WithLlama3RopeScaling) {
  const ModelConfig c = ReadModelConfig(DataPath("llama-3.2-1b.json"));
  EXPECT_EQ(c.architecture, Architecture::kLlama);
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 8192);
  EXPECT_EQ(c.num_hidden_layers, 16);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_TRUE(c.tie_word_embeddings);  // Llama 3.2 1B ties its embeddings
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{128001});
}

TEST_F(ModelConfigTest, ReadsGpt2) {
  const ModelConfig c = ReadModelConfig(DataPath("gpt2.json"));
  EXPECT_EQ(c.architecture, Architecture::kGpt2);
  EXPECT_EQ(c.architecture_name, "GPT2LMHeadModel");
  EXPECT_EQ(c.model_type, "gpt2");
  EXPECT_EQ(c.hidden_size, 768);
  EXPECT_EQ(c.intermediate_size, 3072);  // n_inner absent: 4 * n_embd
  EXPECT_EQ(c.num_hidden_layers, 12);
  EXPECT_EQ(c.num_attention_heads, 12);
  EXPECT_EQ(c.num_key_value_heads, 12);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 50257);
  EXPECT_EQ(c.max_position_embeddings, 1024);
  EXPECT_EQ(c.norm_eps, 1e-5);
  EXPECT_EQ(c.hidden_act, "gelu_new");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.mlp_bias);
  EXPECT_EQ(c.bos_token_id, 50256);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{50256});
  EXPECT_EQ(c.torch_dtype, "");
}

TEST_F(ModelConfigTest, ReadsModelDirectory) {
  test::ScopedTempDir dir;
  test::WriteFileBytes(dir.File("config.json"), test::ReadFileBytes(DataPath("gpt2.json")));
  EXPECT_TRUE(ReadModelConfig(dir.path().string()) == ReadModelConfig(DataPath("gpt2.json")));
}

TEST_F(ModelConfigTest, DirectoryWithoutConfigJson) {
  test::ScopedTempDir dir;
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ReadModelConfig(dir.path().string()); }),
                            dir.path().string() + ": no config.json"));
}

TEST_F(ModelConfigTest, ErrorsFromFilesNameThePath) {
  test::ScopedTempDir dir;
  const std::string path = dir.File("config.json");
  Json json = Load("smollm2-135m.json");
  json.erase("hidden_size");
  test::WriteFileBytes(path, json.dump(2));
  EXPECT_EQ(test::ErrorOf([&] { ReadModelConfig(path); }), path + ": field 'hidden_size': missing (required)");
  test::WriteFileBytes(path, "{\n  \"hidden_size\": 576,\n  oops\n}");
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ReadModelConfig(path); }), path + ":3:3: invalid JSON"));
}

TEST_F(ModelConfigTest, LlamaDefaults) {
  const ModelConfig c = ParseModelConfig(MinimalLlama(), kWhere);
  EXPECT_EQ(c.architecture_name, "LlamaForCausalLM");  // from model_type alone
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_EQ(c.norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, "none");
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.hidden_act, "silu");
  EXPECT_EQ(c.bos_token_id, 1);  // LlamaConfig's defaults
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.pad_token_id, std::nullopt);
  EXPECT_EQ(c.torch_dtype, "");
}

TEST_F(ModelConfigTest, Gpt2Defaults) {
  const ModelConfig c = ParseModelConfig(MinimalGpt2(), kWhere);
  EXPECT_EQ(c.architecture_name, "GPT2LMHeadModel");
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_EQ(c.norm_eps, 1e-5);
  EXPECT_EQ(c.hidden_act, "gelu_new");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 50256);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{50256});
}

TEST_F(ModelConfigTest, AcceptedVariants) {
  struct Case {
    const char* name;
    std::function<Json()> make;
    std::function<void(const ModelConfig&)> check;
  };
  const std::vector<Case> cases = {
      {"head_dim lifts the divisibility rule",
       [] { Json j = MinimalLlama(); j["hidden_size"] = 66; j["head_dim"] = 16; return j; },
       [](const ModelConfig& c) { EXPECT_EQ(c.head_dim, 16); }},
      {"eos list",
       [] { Json j = Load("llama-3.2-1b.json"); j["eos_token_id"] = {128001, 128008, 128009}; return j; },
       [](const ModelConfig& c) {
         EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
       }},
      {"explicit null ids",
       [] { Json j = MinimalLlama(); j["bos_token_id"] = nullptr; j["eos_token_id"] = nullptr; return j; },
       [](const ModelConfig& c) {
         EXPECT_EQ(c.bos_token_id, std::nullopt);
         EXPECT_TRUE(c.eos_token_ids.empty());
       }},
      {"pad id", [] { Json j = MinimalLlama(); j["pad_token_id"] = 99; return j; },
       [](const ModelConfig& c) { EXPECT_EQ(c.pad_token_id, 99); }},
      {"torch_dtype auto reads as absent",
       [] { Json j = MinimalLlama(); j["torch_dtype"] = "auto"; return j; },
       [](const ModelConfig& c) { EXPECT_EQ(c.torch_dtype, ""); }},
      {"dtype, the transformers 4.56 name",
       [] { Json j = MinimalLlama(); j["dtype"] = "float16"; return j; },
       [](const ModelConfig& c) { EXPECT_EQ(c.torch_dtype, "float16"); }},
      {"legacy rope_scaling 'type'",
       [] {
         Json j = Load("llama-3.2-1b.json");
         j["rope_scaling"].erase("rope_type");
         j["rope_scaling"]["type"] = "llama3";
         return j;
       },
       [](const ModelConfig& c) { EXPECT_EQ(c.rope_scaling.type, "llama3"); }},
      {"rope type default means none",
       [] { Json j = MinimalLlama(); j["rope_scaling"] = {{"rope_type", "default"}}; return j; },
       [](const ModelConfig& c) { EXPECT_EQ(c.rope_scaling.type, "none"); }},
      {"transformers 5 rope_parameters",
       [] {
         Json j = Load("llama-3.2-1b.json");
         j["rope_parameters"] = j["rope_scaling"];
         j["rope_parameters"]["rope_theta"] = 250000.0;
         j.erase("rope_scaling");
         j.erase("rope_theta");
         return j;
       },
       [](const ModelConfig& c) {
         EXPECT_EQ(c.rope_theta, 250000.0);
         EXPECT_EQ(c.rope_scaling.type, "llama3");
         EXPECT_EQ(c.rope_scaling.factor, 32.0);
       }},
      {"integral float size", [] { Json j = MinimalLlama(); j["hidden_size"] = 64.0; return j; },
       [](const ModelConfig& c) { EXPECT_EQ(c.hidden_size, 64); }},
      {"empty architectures falls back to model_type",
       [] { Json j = MinimalGpt2(); j["architectures"] = Json::array(); return j; },
       [](const ModelConfig& c) { EXPECT_EQ(c.architecture, Architecture::kGpt2); }},
      {"architectures without model_type",
       [] { Json j = MinimalGpt2(); j.erase("model_type"); j["architectures"] = {"GPT2LMHeadModel"}; return j; },
       [](const ModelConfig& c) { EXPECT_EQ(c.model_type, "gpt2"); }},
      {"gpt2 explicit n_inner and exact gelu",
       [] { Json j = MinimalGpt2(); j["n_inner"] = 100; j["activation_function"] = "gelu"; return j; },
       [](const ModelConfig& c) {
         EXPECT_EQ(c.intermediate_size, 100);
         EXPECT_EQ(c.hidden_act, "gelu");
       }},
      {"gpt2 null n_inner", [] { Json j = MinimalGpt2(); j["n_inner"] = nullptr; return j; },
       [](const ModelConfig& c) { EXPECT_EQ(c.intermediate_size, 256); }},
  };
  for (const Case& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    try {
      const ModelConfig config = ParseModelConfig(test_case.make(), kWhere);
      test_case.check(config);
      ExpectRoundTrip(config);
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

TEST_F(ModelConfigTest, RejectsUnsupportedArchitecture) {
  Json json = Load("smollm2-135m.json");
  json["architectures"] = {"MistralForCausalLM"};
  json["model_type"] = "mistral";
  EXPECT_EQ(ParseError(json),
            std::string(kWhere) +
                ": architecture 'MistralForCausalLM' is not supported (supported: LlamaForCausalLM, "
                "GPT2LMHeadModel)");
  json.erase("architectures");
  EXPECT_EQ(ParseError(json), std::string(kWhere) +
                                  ": field 'model_type': 'mistral' is not supported (supported: llama, gpt2)");
  json.erase("model_type");
  EXPECT_TRUE(HasText(ParseError(json), "field 'architectures': missing, and no 'model_type' either"));
}

// Each case breaks one thing in a real config; the error must name the file and the field.
TEST_F(ModelConfigTest, RejectsBadFields) {
  struct Case {
    const char* base;    // file in tests/data/configs
    const char* field;   // must appear in the message as field 'field'
    const char* reason;  // and so must this
    std::function<void(Json&)> mutate;
  };
  const char* smol = "smollm2-135m.json";
  const char* llama3 = "llama-3.2-1b.json";
  const char* gpt2 = "gpt2.json";
  const std::vector<Case> cases = {
      // Required Llama fields.
      {smol, "hidden_size", "missing (required)", [](Json& j) { j.erase("hidden_size"); }},
      {smol, "intermediate_size", "missing (required)", [](Json& j) { j.erase("intermediate_size"); }},
      {smol, "num_hidden_layers", "missing (required)", [](Json& j) { j.erase("num_hidden_layers"); }},
      {smol, "num_attention_heads", "missing (required)", [](Json& j) { j.erase("num_attention_heads"); }},
      {smol, "vocab_size", "missing (required)", [](Json& j) { j.erase("vocab_size"); }},
      {smol, "hidden_size", "missing (required)", [](Json& j) { j["hidden_size"] = nullptr; }},
      // Wrong types and values.
      {smol, "hidden_size", "expected an integer, found string \"576\"", [](Json& j) { j["hidden_size"] = "576"; }},
      {smol, "hidden_size", "expected an integer, found number 576.5", [](Json& j) { j["hidden_size"] = 576.5; }},
      {smol, "hidden_size", "integer out of the 64-bit range", [](Json& j) { j["hidden_size"] = 1e300; }},
      {smol, "hidden_size", "must be positive, found 0", [](Json& j) { j["hidden_size"] = 0; }},
      {smol, "num_hidden_layers", "must be positive, found -1", [](Json& j) { j["num_hidden_layers"] = -1; }},
      {smol, "vocab_size", "too large", [](Json& j) { j["vocab_size"] = int64_t{1} << 40; }},
      {smol, "max_position_embeddings", "must be positive", [](Json& j) { j["max_position_embeddings"] = 0; }},
      {smol, "tie_word_embeddings", "expected true or false", [](Json& j) { j["tie_word_embeddings"] = "yes"; }},
      {smol, "attention_bias", "expected true or false", [](Json& j) { j["attention_bias"] = 1; }},
      // Inconsistent head layout.
      {smol, "num_attention_heads", "does not divide hidden_size 577", [](Json& j) { j["hidden_size"] = 577; }},
      {smol, "num_key_value_heads", "4 does not divide num_attention_heads 9",
       [](Json& j) { j["num_key_value_heads"] = 4; }},
      {smol, "num_key_value_heads", "does not divide", [](Json& j) { j["num_key_value_heads"] = 18; }},
      {smol, "num_key_value_heads", "must be positive", [](Json& j) { j["num_key_value_heads"] = 0; }},
      {smol, "head_dim", "must be even", [](Json& j) { j["head_dim"] = 63; }},
      {smol, "head_dim", "must be positive", [](Json& j) { j["head_dim"] = -64; }},
      // Norm and rotary settings.
      {smol, "rms_norm_eps", "must be positive, found 0", [](Json& j) { j["rms_norm_eps"] = 0; }},
      {smol, "rms_norm_eps", "must be positive", [](Json& j) { j["rms_norm_eps"] = -1e-5; }},
      {smol, "rms_norm_eps", "expected a number", [](Json& j) { j["rms_norm_eps"] = "1e-5"; }},
      {smol, "rope_theta", "must be positive", [](Json& j) { j["rope_theta"] = 0; }},
      {smol, "rope_theta", "must be positive", [](Json& j) { j["rope_theta"] = -10000.0; }},
      {smol, "rope_scaling", "expected an object", [](Json& j) { j["rope_scaling"] = "llama3"; }},
      {smol, "rope_type", "'linear' is not supported (supported: none, llama3)",
       [](Json& j) { j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}}; }},
      {smol, "rope_type", "'dynamic' is not supported (supported: none, llama3)",
       [](Json& j) { j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}}; }},
      {smol, "rope_type", "'yarn' is not supported",
       [](Json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; }},
      {smol, "rope_type", "missing (required)", [](Json& j) { j["rope_scaling"] = {{"factor", 2.0}}; }},
      {llama3, "type", "contradicts rope_type 'llama3'", [](Json& j) { j["rope_scaling"]["type"] = "linear"; }},
      {llama3, "factor", "missing (required)", [](Json& j) { j["rope_scaling"].erase("factor"); }},
      {llama3, "low_freq_factor", "missing (required)", [](Json& j) { j["rope_scaling"].erase("low_freq_factor"); }},
      {llama3, "high_freq_factor", "missing (required)", [](Json& j) { j["rope_scaling"].erase("high_freq_factor"); }},
      {llama3, "original_max_position_embeddings", "missing (required)",
       [](Json& j) { j["rope_scaling"].erase("original_max_position_embeddings"); }},
      {llama3, "factor", "must be at least 1", [](Json& j) { j["rope_scaling"]["factor"] = 0.5; }},
      {llama3, "low_freq_factor", "must be positive", [](Json& j) { j["rope_scaling"]["low_freq_factor"] = 0; }},
      {llama3, "high_freq_factor", "must exceed low_freq_factor",
       [](Json& j) { j["rope_scaling"]["high_freq_factor"] = 1.0; }},
      {llama3, "original_max_position_embeddings", "expected an integer",
       [](Json& j) { j["rope_scaling"]["original_max_position_embeddings"] = "8k"; }},
      {llama3, "rope_theta", "missing (required)",
       [](Json& j) { j["rope_parameters"] = {{"rope_type", "default"}}; }},
      {smol, "hidden_act", "'gelu' is not supported (supported: silu)", [](Json& j) { j["hidden_act"] = "gelu"; }},
      // Token ids.
      {smol, "bos_token_id", "49152 is outside the vocabulary [0, 49152)", [](Json& j) { j["bos_token_id"] = 49152; }},
      {smol, "bos_token_id", "-1 is outside the vocabulary", [](Json& j) { j["bos_token_id"] = -1; }},
      {smol, "eos_token_id", "50000 is outside the vocabulary", [](Json& j) { j["eos_token_id"] = {0, 50000}; }},
      {smol, "eos_token_id", "element 0: expected an integer", [](Json& j) { j["eos_token_id"] = {"</s>"}; }},
      {smol, "pad_token_id", "is outside the vocabulary", [](Json& j) { j["pad_token_id"] = 100000; }},
      {smol, "pad_token_id", "expected an integer", [](Json& j) { j["pad_token_id"] = true; }},
      {smol, "bos_token_id", "1 is outside the vocabulary [0, 1)",  // the default bos 1
       [](Json& j) { j["vocab_size"] = 1; j.erase("bos_token_id"); }},
      // dtype.
      {smol, "torch_dtype", "'float64' is not supported (supported: float32, float16, bfloat16)",
       [](Json& j) { j["torch_dtype"] = "float64"; }},
      {smol, "torch_dtype", "expected a string", [](Json& j) { j["torch_dtype"] = 16; }},
      {smol, "dtype", "contradicts torch_dtype 'bfloat16'", [](Json& j) { j["dtype"] = "float32"; }},
      // Architecture fields.
      {smol, "architectures", "expected a list", [](Json& j) { j["architectures"] = "LlamaForCausalLM"; }},
      {smol, "architectures", "element 0: expected a string", [](Json& j) { j["architectures"] = {7}; }},
      {smol, "model_type", "'gpt2' does not match architecture 'LlamaForCausalLM'",
       [](Json& j) { j["model_type"] = "gpt2"; }},
      {smol, "model_type", "expected a string", [](Json& j) { j["model_type"] = 1; }},
      // GPT-2.
      {gpt2, "n_embd", "missing (required)", [](Json& j) { j.erase("n_embd"); }},
      {gpt2, "n_layer", "missing (required)", [](Json& j) { j.erase("n_layer"); }},
      {gpt2, "n_head", "missing (required)", [](Json& j) { j.erase("n_head"); }},
      {gpt2, "n_positions", "missing (required)", [](Json& j) { j.erase("n_positions"); }},
      {gpt2, "vocab_size", "missing (required)", [](Json& j) { j.erase("vocab_size"); }},
      {gpt2, "n_head", "7 does not divide n_embd 768", [](Json& j) { j["n_head"] = 7; }},
      {gpt2, "n_inner", "must be positive", [](Json& j) { j["n_inner"] = -1; }},
      {gpt2, "n_embd", "4 * n_embd (the default n_inner) is too large",
       [](Json& j) { j["n_embd"] = 2147483647; j["n_head"] = 1; }},
      {gpt2, "layer_norm_epsilon", "must be positive", [](Json& j) { j["layer_norm_epsilon"] = 0.0; }},
      {gpt2, "activation_function", "'swish' is not supported (supported: gelu_new, gelu_pytorch_tanh, gelu, relu)",
       [](Json& j) { j["activation_function"] = "swish"; }},
      {gpt2, "tie_word_embeddings", "false is not supported", [](Json& j) { j["tie_word_embeddings"] = false; }},
      {gpt2, "scale_attn_weights", "false is not supported", [](Json& j) { j["scale_attn_weights"] = false; }},
      {gpt2, "scale_attn_by_inverse_layer_idx", "true is not supported",
       [](Json& j) { j["scale_attn_by_inverse_layer_idx"] = true; }},
      {gpt2, "add_cross_attention", "true is not supported", [](Json& j) { j["add_cross_attention"] = true; }},
      {gpt2, "bos_token_id", "50256 is outside the vocabulary [0, 1000)",  // the default bos 50256
       [](Json& j) { j["vocab_size"] = 1000; j.erase("bos_token_id"); }},
      {gpt2, "eos_token_id", "is outside the vocabulary", [](Json& j) { j["eos_token_id"] = 50257; }},
  };
  for (const Case& test_case : cases) {
    Json json = Load(test_case.base);
    test_case.mutate(json);
    SCOPED_TRACE(StrCat(test_case.base, " with ", json.dump()));
    const std::string message = ParseError(json);
    EXPECT_TRUE(HasText(message, kWhere));
    EXPECT_TRUE(HasText(message, StrCat("field '", test_case.field, "'")));
    EXPECT_TRUE(HasText(message, test_case.reason));
  }
}

TEST_F(ModelConfigTest, RoundTripsRealConfigs) {
  for (const char* name : {"smollm2-135m.json", "llama-3.2-1b.json", "gpt2.json"}) {
    SCOPED_TRACE(name);
    ExpectRoundTrip(ReadModelConfig(DataPath(name)));
  }
}

TEST_F(ModelConfigTest, ToJsonWritesHuggingFaceFieldNames) {
  const Json llama = ModelConfigToJson(ReadModelConfig(DataPath("llama-3.2-1b.json")));
  EXPECT_EQ(llama["architectures"], Json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(llama["model_type"], "llama");
  EXPECT_EQ(llama["num_key_value_heads"], 8);
  EXPECT_EQ(llama["rms_norm_eps"], 1e-5);
  EXPECT_EQ(llama["rope_scaling"]["rope_type"], "llama3");
  EXPECT_EQ(llama["rope_scaling"]["original_max_position_embeddings"], 8192);
  EXPECT_EQ(llama["torch_dtype"], "bfloat16");
  EXPECT_EQ(llama["pad_token_id"], nullptr);

  const Json smol = ModelConfigToJson(ReadModelConfig(DataPath("smollm2-135m.json")));
  EXPECT_TRUE(smol.contains("rope_scaling"));
  EXPECT_TRUE(smol["rope_scaling"].is_null());

  const Json gpt2 = ModelConfigToJson(ReadModelConfig(DataPath("gpt2.json")));
  EXPECT_EQ(gpt2["architectures"], Json::array({"GPT2LMHeadModel"}));
  EXPECT_EQ(gpt2["n_embd"], 768);
  EXPECT_EQ(gpt2["n_layer"], 12);
  EXPECT_EQ(gpt2["layer_norm_epsilon"], 1e-5);
  EXPECT_EQ(gpt2["activation_function"], "gelu_new");
  EXPECT_FALSE(gpt2.contains("hidden_size"));  // GPT2Config has no such field
  EXPECT_FALSE(gpt2.contains("rope_theta"));
  EXPECT_FALSE(gpt2.contains("torch_dtype"));  // unknown, so not invented
}

TEST_F(ModelConfigTest, EqualityComparesEveryField) {
  const ModelConfig base = ReadModelConfig(DataPath("llama-3.2-1b.json"));
  const std::vector<std::function<void(ModelConfig&)>> changes = {
      [](ModelConfig& c) { c.head_dim = 32; },
      [](ModelConfig& c) { c.norm_eps = 1e-6; },
      [](ModelConfig& c) { c.rope_scaling.high_freq_factor = 8.0; },
      [](ModelConfig& c) { c.eos_token_ids.push_back(1); },
      [](ModelConfig& c) { c.pad_token_id = 0; },
      [](ModelConfig& c) { c.torch_dtype = "float32"; },
  };
  for (const auto& change : changes) {
    ModelConfig changed = base;
    change(changed);
    EXPECT_TRUE(changed != base);
  }
  EXPECT_TRUE(ModelConfig(base) == base);
}

TEST_F(ModelConfigTest, SupportedArchitectures) {
  EXPECT_EQ(SupportedArchitectures(), (std::vector<std::string>{"LlamaForCausalLM", "GPT2LMHeadModel"}));
}

}  // namespace
}  // namespace promptsweep
