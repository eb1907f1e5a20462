#include "common/adapter_config.h"

#include <string>

#include <gtest/gtest.h>

#include "common/error.h"
#include "common/json_util.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

// The expected files were written by tests/data/adapters/make_peft_adapters.py,
// which follows PEFT's save path: dataclasses.asdict() of a PromptTuningConfig
// (PEFT 0.18 field set) dumped with json.dumps(indent=2, sort_keys=True) and
// written without a trailing newline.
const std::string kAdaptersDir = std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/adapters";

using test::HasText;

class AdapterConfigTest : public ::testing::Test {
 protected:
  static std::string ParseError(const nlohmann::json& json) {
    try {
      ParseAdapterConfig(json, "adapter_config.json");
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error for " << json.dump();
    return "";
  }

  // A valid config as JSON, to break one field at a time.
  static nlohmann::json Valid() {
    return nlohmann::json::parse(test::ReadFileBytes(kAdaptersDir + "/peft-random.json"));
  }
};

TEST_F(AdapterConfigTest, FreshConfigIsByteExactPeftOutput) {
  // What promptsweep writes after training RANDOM on Llama 3.2 1B, no extra fields.
  AdapterConfig config;
  config.num_virtual_tokens = 20;
  config.token_dim = 2048;
  config.num_attention_heads = 32;
  config.num_layers = 16;
  config.base_model_name_or_path = "meta-llama/Llama-3.2-1B";
  EXPECT_EQ(AdapterConfigToJson(config), test::ReadFileBytes(kAdaptersDir + "/peft-random.json"));
}

TEST_F(AdapterConfigTest, TextInitWithNonAsciiIsEscapedAsPythonDoes) {
  AdapterConfig config;
  config.num_virtual_tokens = 4;
  config.token_dim = 32;
  config.num_attention_heads = 4;
  config.num_layers = 2;
  config.prompt_tuning_init = "TEXT";
  config.prompt_tuning_init_text = "Classify: caf\xC3\xA9 \xF0\x9F\x98\x80 \"quoted\"\ttab";
  config.tokenizer_name_or_path = "tests/data/models/tiny-llama";
  config.base_model_name_or_path = "tests/data/models/tiny-llama";
  const std::string text = AdapterConfigToJson(config);
  EXPECT_EQ(text, test::ReadFileBytes(kAdaptersDir + "/peft-text/adapter_config.json"));
  EXPECT_TRUE(HasText(text, R"(caf\u00e9 \ud83d\ude00 \"quoted\"\ttab)"));
  EXPECT_NE(text.back(), '\n');  // PEFT writes no trailing newline
}

TEST_F(AdapterConfigTest, ReadsPeftFile) {
  const AdapterConfig config = ReadAdapterConfig(kAdaptersDir + "/peft-text/adapter_config.json");
  EXPECT_EQ(config.peft_type, "PROMPT_TUNING");
  EXPECT_EQ(config.task_type, "CAUSAL_LM");
  EXPECT_EQ(config.num_virtual_tokens, 4);
  EXPECT_EQ(config.token_dim, 32);
  EXPECT_EQ(config.num_transformer_submodules, 1);
  EXPECT_EQ(config.num_attention_heads, 4);
  EXPECT_EQ(config.num_layers, 2);
  EXPECT_EQ(config.prompt_tuning_init, "TEXT");
  EXPECT_EQ(config.prompt_tuning_init_text, "Classify: caf\xC3\xA9 \xF0\x9F\x98\x80 \"quoted\"\ttab");
  EXPECT_EQ(config.tokenizer_name_or_path, "tests/data/models/tiny-llama");
  EXPECT_EQ(config.base_model_name_or_path, "tests/data/models/tiny-llama");
  EXPECT_EQ(config.revision, std::nullopt);
  EXPECT_TRUE(config.inference_mode);
  EXPECT_EQ(config.extra, (nlohmann::json{{"auto_mapping", nullptr},
                                          {"modules_to_save", nullptr},
                                          {"peft_version", "0.18.0"},
                                          {"tokenizer_kwargs", nullptr}}));
}

TEST_F(AdapterConfigTest, RoundTripKeepsUnknownFieldsAndBytes) {
  nlohmann::json json = Valid();
  json["peft_version"] = "0.19.1.dev0@abc123";
  json["future_option"] = {{"nested", {1, 2.5, "x"}}, {"flag", false}};
  json["tokenizer_kwargs"] = {{"use_fast", true}};
  json["revision"] = "main";
  const AdapterConfig config = ParseAdapterConfig(json, "in.json");
  EXPECT_EQ(config.extra["future_option"], json["future_option"]);
  EXPECT_EQ(config.revision, "main");

  const std::string text = AdapterConfigToJson(config);
  EXPECT_EQ(nlohmann::json::parse(text), json);
  const AdapterConfig again = ParseAdapterConfig(ParseJson(text, "out.json"), "out.json");
  EXPECT_EQ(again, config);
  EXPECT_EQ(AdapterConfigToJson(again), text);
  // The peft_version of the file is kept, not replaced.
  EXPECT_TRUE(HasText(text, "\"peft_version\": \"0.19.1.dev0@abc123\""));
}

TEST_F(AdapterConfigTest, OlderPeftFilesLoadWithDefaults) {
  // PEFT < 0.18 wrote no peft_version; very old files lack more.
  const nlohmann::json json = {{"peft_type", "PROMPT_TUNING"}, {"task_type", "CAUSAL_LM"},
                               {"num_virtual_tokens", 8},      {"token_dim", 64},
                               {"num_transformer_submodules", nullptr}};
  const AdapterConfig config = ParseAdapterConfig(json, "old.json");
  EXPECT_EQ(config.num_transformer_submodules, 1);
  EXPECT_EQ(config.prompt_tuning_init, "RANDOM");
  EXPECT_FALSE(config.inference_mode);
  // Saving adds the fields current PEFT writes.
  const nlohmann::json saved = nlohmann::json::parse(AdapterConfigToJson(config));
  EXPECT_EQ(saved["peft_version"], kPeftFormatVersion);
  EXPECT_TRUE(saved.contains("auto_mapping") && saved["auto_mapping"].is_null());
}

TEST_F(AdapterConfigTest, RejectsWhatPromptsweepCannotRun) {
  auto with = [](const std::string& key, const nlohmann::json& value) {
    nlohmann::json json = Valid();
    json[key] = value;
    return json;
  };
  EXPECT_TRUE(HasText(ParseError(with("peft_type", "LORA")),
                      "adapter_config.json: field 'peft_type': promptsweep reads prompt-tuning adapters only"));
  EXPECT_TRUE(HasText(ParseError(with("task_type", "SEQ_2_SEQ_LM")), "field 'task_type'"));
  EXPECT_TRUE(HasText(ParseError(with("num_transformer_submodules", 2)), "field 'num_transformer_submodules'"));
  EXPECT_TRUE(HasText(ParseError(with("num_virtual_tokens", 0)), "field 'num_virtual_tokens': must be positive"));
  EXPECT_TRUE(HasText(ParseError(with("num_virtual_tokens", "20")), "expected an integer"));
  EXPECT_TRUE(HasText(ParseError(with("token_dim", nullptr)), "field 'token_dim': missing (required)"));
  EXPECT_TRUE(HasText(ParseError(with("prompt_tuning_init", "ZEROS")), "expected TEXT, SAMPLE_VOCAB or RANDOM"));
  EXPECT_TRUE(HasText(ParseError(with("inference_mode", "yes")), "field 'inference_mode'"));
  EXPECT_TRUE(HasText(ParseError(with("prompt_tuning_init_text", 5)), "field 'prompt_tuning_init_text'"));
  EXPECT_TRUE(HasText(ParseError(nlohmann::json::array()), "expected a JSON object"));
}

TEST_F(AdapterConfigTest, ReadErrorsNameTheFile) {
  test::ScopedTempDir dir;
  const std::string path = dir.File("adapter_config.json");
  test::WriteFileBytes(path, "{\n  \"peft_type\": \"PROMPT_TUNING\",\n  oops\n}");
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ReadAdapterConfig(path); }), path + ":3:3: invalid JSON"));
}

}  // namespace
}  // namespace promptsweep
