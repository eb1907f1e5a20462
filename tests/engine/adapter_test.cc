#include "engine/adapter.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/model_config.h"
#include "test_utils.h"
#include "engine/tensor_io.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

const std::string kDataDir = PROMPTSWEEP_TEST_DATA_DIR;
// Written by tests/data/adapters/make_peft_adapters.py along PEFT's save path.
const std::string kPeftAdapter = kDataDir + "/adapters/peft-text";

using test::HasText;

AdapterConfig SmallConfig(int64_t n, int64_t dim) {
  AdapterConfig config;
  config.num_virtual_tokens = n;
  config.token_dim = dim;
  config.num_attention_heads = 4;
  config.num_layers = 2;
  config.base_model_name_or_path = "tests/data/models/tiny-llama";
  return config;
}

using test::ErrorOf;

class AdapterTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(5); }


  // A copy of the PEFT fixture in the temp dir, to damage one file at a time.
  std::string CopyOfPeftAdapter() {
    const std::string dir = dir_.File("copy");
    fs::create_directories(dir);
    for (const char* name : {"adapter_config.json", "adapter_model.safetensors"}) {
      fs::copy_file(kPeftAdapter + "/" + name, dir + "/" + name);
    }
    return dir;
  }

  test::ScopedTempDir dir_;
};

TEST_F(AdapterTest, SaveLoadRoundTrip) {
  const std::string dir = dir_.File("adapter");
  const torch::Tensor prompt = torch::randn({6, 32});
  AdapterConfig config = SmallConfig(6, 32);
  config.extra["custom"] = "kept";
  SavePromptAdapter(dir, config, prompt);
  const PromptAdapter loaded = LoadPromptAdapter(dir);
  EXPECT_TRUE(torch::equal(loaded.prompt, prompt));
  EXPECT_EQ(loaded.prompt.scalar_type(), torch::kFloat32);
  EXPECT_EQ(loaded.config.num_virtual_tokens, 6);
  EXPECT_EQ(loaded.config.extra["custom"], "kept");
  EXPECT_EQ(AdapterConfigToJson(loaded.config), AdapterConfigToJson(config));
  // Atomic writes leave no temporary files behind.
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors"}));
}

TEST_F(AdapterTest, FilesAreByteIdenticalToWhatPeftWrites) {
  const PromptAdapter peft = LoadPromptAdapter(kPeftAdapter);
  ASSERT_EQ(peft.prompt.sizes(), (std::vector<int64_t>{4, 32}));
  const std::string dir = dir_.File("resaved");
  SavePromptAdapter(dir, peft.config, peft.prompt);
  for (const char* name : {"adapter_config.json", "adapter_model.safetensors"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(test::ReadFileBytes(dir + "/" + name), test::ReadFileBytes(kPeftAdapter + "/" + name));
  }
}

TEST_F(AdapterTest, SafetensorsHeaderIsPefts) {
  const torch::Tensor prompt = torch::randn({3, 8}, torch::kFloat64);  // cast to F32 on save
  const std::string bytes = SerializePromptEmbeddings(prompt);
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  std::string header = R"({"__metadata__":{"format":"pt"},"prompt_embeddings":{"dtype":"F32","shape":[3,8],)"
                       R"("data_offsets":[0,96]}})";
  header += std::string((8 - header.size() % 8) % 8, ' ');
  ASSERT_EQ(header_length, header.size());
  EXPECT_EQ(bytes.substr(8, header.size()), header);
  const torch::Tensor f32 = prompt.to(torch::kFloat32).contiguous();
  EXPECT_EQ(bytes.substr(8 + header.size()), std::string(static_cast<const char*>(f32.data_ptr()), 96));

  const std::string dir = dir_.File("adapter");
  SavePromptAdapter(dir, SmallConfig(3, 8), prompt);
  EXPECT_EQ(test::ReadFileBytes(dir + "/adapter_model.safetensors"), bytes);
}

TEST_F(AdapterTest, HalfPrecisionAdaptersAreCastToFloat32) {
  for (torch::ScalarType dtype : {torch::kFloat16, torch::kBFloat16}) {
    const std::string dir = CopyOfPeftAdapter();
    const torch::Tensor half = torch::randn({4, 32}).to(dtype);
    SaveSafetensors(dir + "/adapter_model.safetensors", {{"prompt_embeddings", half}});
    const PromptAdapter adapter = LoadPromptAdapter(dir);
    EXPECT_EQ(adapter.prompt.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::equal(adapter.prompt, half.to(torch::kFloat32)));
    fs::remove_all(dir);
  }
}

TEST_F(AdapterTest, ShapeMismatchWithTheConfigNamesBoth) {
  const std::string dir = CopyOfPeftAdapter();
  SaveSafetensors(dir + "/adapter_model.safetensors", {{"prompt_embeddings", torch::randn({5, 32})}});
  const std::string message = ErrorOf([&] { LoadPromptAdapter(dir); });
  EXPECT_TRUE(HasText(message, "'prompt_embeddings' is [5, 32]"));
  EXPECT_TRUE(HasText(message, "adapter_config.json says [4, 32]"));

  EXPECT_TRUE(HasText(ErrorOf([&] { SavePromptAdapter(dir_.File("bad"), SmallConfig(4, 32), torch::randn({4, 16})); }),
                      "prompt is [4, 16] but the adapter config says [4, 32]"));
}

TEST_F(AdapterTest, AdapterThatDoesNotFitTheModelNamesBoth) {
  const ModelConfig llama = ReadModelConfig(kDataDir + "/models/tiny-llama");
  const PromptAdapter adapter = LoadPromptAdapter(kPeftAdapter);
  CheckAdapterFitsModel(adapter, kPeftAdapter, llama);  // 32 == 32

  ModelConfig wider = llama;
  wider.hidden_size = 64;
  const std::string message = ErrorOf([&] { CheckAdapterFitsModel(adapter, kPeftAdapter, wider); });
  EXPECT_TRUE(HasText(message, "adapter " + kPeftAdapter + " has token_dim 32"));
  EXPECT_TRUE(HasText(message, "LlamaForCausalLM has hidden_size 64"));
}

TEST_F(AdapterTest, MalformedAdapterDirectoriesAreErrors) {
  EXPECT_TRUE(HasText(ErrorOf([&] { LoadPromptAdapter(dir_.File("absent")); }), "not a directory"));

  std::string dir = CopyOfPeftAdapter();
  fs::remove(dir + "/adapter_config.json");
  EXPECT_TRUE(HasText(ErrorOf([&] { LoadPromptAdapter(dir); }), "no adapter_config.json"));
  fs::remove_all(dir);

  dir = CopyOfPeftAdapter();
  fs::rename(dir + "/adapter_model.safetensors", dir + "/adapter_model.bin");
  EXPECT_TRUE(HasText(ErrorOf([&] { LoadPromptAdapter(dir); }), "only adapter_model.bin (pickle)"));
  fs::remove(dir + "/adapter_model.bin");
  EXPECT_TRUE(HasText(ErrorOf([&] { LoadPromptAdapter(dir); }), "no adapter_model.safetensors"));
  fs::remove_all(dir);

  dir = CopyOfPeftAdapter();
  SaveSafetensors(dir + "/adapter_model.safetensors", {{"embedding.weight", torch::randn({4, 32})}});
  EXPECT_TRUE(HasText(ErrorOf([&] { LoadPromptAdapter(dir); }), "unexpected tensor 'embedding.weight'"));
  SaveSafetensors(dir + "/adapter_model.safetensors",
                  {{"prompt_embeddings", torch::zeros({4, 32}, torch::kInt32)}});
  EXPECT_TRUE(HasText(ErrorOf([&] { LoadPromptAdapter(dir); }), "has dtype I32"));
  const std::string good = test::ReadFileBytes(kPeftAdapter + "/adapter_model.safetensors");
  test::WriteFileBytes(dir + "/adapter_model.safetensors", good.substr(0, good.size() - 4));
  EXPECT_TRUE(HasText(ErrorOf([&] { LoadPromptAdapter(dir); }), "adapter_model.safetensors"));
  fs::remove_all(dir);

  dir = CopyOfPeftAdapter();
  test::WriteFileBytes(dir + "/adapter_config.json", R"({"peft_type": "LORA", "task_type": "CAUSAL_LM"})");
  EXPECT_TRUE(HasText(ErrorOf([&] { LoadPromptAdapter(dir); }), "adapter_config.json: field 'peft_type'"));
}

}  // namespace
}  // namespace promptsweep
