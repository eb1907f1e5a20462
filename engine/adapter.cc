#include "engine/adapter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "common/file_util.h"
#include "common/safetensors.h"
#include "engine/tensor_io.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

// PEFT's file and tensor names (peft/utils/constants.py, save_and_load.py).
constexpr const char* kConfigName = "adapter_config.json";
constexpr const char* kWeightsName = "adapter_model.safetensors";
constexpr const char* kLegacyWeightsName = "adapter_model.bin";
constexpr const char* kTensorName = "prompt_embeddings";

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// The prompt as PEFT stores it: float32, contiguous, on the CPU.
torch::Tensor HostPrompt(const torch::Tensor& prompt) {
  PS_CHECK(prompt.defined() && prompt.dim() == 2, "prompt must be a defined [N, H] tensor");
  return prompt.detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

}  // namespace

void SavePromptAdapter(const std::string& dir, const AdapterConfig& config, const torch::Tensor& prompt) {
  const torch::Tensor host = HostPrompt(prompt);
  const std::vector<int64_t> expected = {config.num_virtual_tokens * config.num_transformer_submodules,
                                         config.token_dim};
  if (host.sizes().vec() != expected) {
    throw Error(StrCat(dir, ": prompt is ", ShapeText(host.sizes().vec()), " but the adapter config says ",
                       ShapeText(expected), " (num_virtual_tokens x token_dim)"));
  }
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw Error(StrCat(dir, ": cannot create adapter directory: ", error.message()));
  // Weights first, then the config, in PEFT's order: a directory whose config
  // is present has its weights too.
  SaveSafetensors((fs::path(dir) / kWeightsName).string(), {{kTensorName, host}}, {{"format", "pt"}});
  WriteFileAtomically((fs::path(dir) / kConfigName).string(), AdapterConfigToJson(config));
}

std::string SerializePromptEmbeddings(const torch::Tensor& prompt) {
  const torch::Tensor host = HostPrompt(prompt);
  const TensorToWrite tensor{kTensorName, DType::kF32, host.sizes().vec(), host.data_ptr(),
                             static_cast<std::size_t>(host.nbytes())};
  return SerializeSafetensors({tensor}, {{"format", "pt"}});
}

PromptAdapter LoadPromptAdapter(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) {
    throw Error(StrCat(dir, ": not a directory; an adapter is a directory with ", kConfigName, " and ",
                       kWeightsName));
  }
  const fs::path config_path = root / kConfigName;
  const fs::path weights_path = root / kWeightsName;
  if (!fs::exists(config_path)) {
    throw Error(StrCat(dir, ": no ", kConfigName, "; this is not a PEFT adapter directory"));
  }
  if (!fs::exists(weights_path)) {
    if (fs::exists(root / kLegacyWeightsName)) {
      throw Error(StrCat(dir, ": only ", kLegacyWeightsName, " (pickle) found; re-save the adapter with "
                              "PEFT's safe_serialization=True to get ", kWeightsName));
    }
    throw Error(StrCat(dir, ": no ", kWeightsName));
  }

  PromptAdapter adapter;
  adapter.config = ReadAdapterConfig(config_path.string());
  const std::unique_ptr<SafetensorsFile> file = SafetensorsFile::Open(weights_path.string());
  for (const TensorInfo& info : file->tensors()) {
    if (info.name != kTensorName) {
      throw Error(StrCat(file->path(), ": unexpected tensor '", info.name, "'; a prompt-tuning adapter holds only '",
                         kTensorName, "'"));
    }
  }
  const TensorInfo& info = file->Get(kTensorName);
  // PEFT loads with load_state_dict into a float32 nn.Embedding, which casts
  // any floating dtype; promptsweep does the same for F16/BF16/F64.
  if (info.dtype != DType::kF32 && info.dtype != DType::kF16 && info.dtype != DType::kBF16 &&
      info.dtype != DType::kF64) {
    throw Error(StrCat(file->path(), ": tensor '", kTensorName, "' has dtype ", DTypeName(info.dtype),
                       "; expected a floating type (F32, or F16/BF16/F64, which are cast to F32)"));
  }
  const std::vector<int64_t> expected = {
      adapter.config.num_virtual_tokens * adapter.config.num_transformer_submodules, adapter.config.token_dim};
  if (info.shape != expected) {
    throw Error(StrCat(file->path(), ": tensor '", kTensorName, "' is ", ShapeText(info.shape), " but ",
                       config_path.string(), " says ", ShapeText(expected),
                       " (num_virtual_tokens * num_transformer_submodules x token_dim)"));
  }
  adapter.prompt = ReadTensor(*file, info).to(torch::kFloat32);
  return adapter;
}

void CheckAdapterFitsModel(const PromptAdapter& adapter, const std::string& adapter_dir,
                           const ModelConfig& model_config) {
  const int64_t width = adapter.prompt.defined() && adapter.prompt.dim() == 2 ? adapter.prompt.size(1)
                                                                               : adapter.config.token_dim;
  if (width != model_config.hidden_size || adapter.config.token_dim != model_config.hidden_size) {
    throw Error(StrCat("adapter ", adapter_dir, " has token_dim ", width, " (trained on ",
                       adapter.config.base_model_name_or_path.value_or("an unnamed model"), ") but model ",
                       model_config.architecture_name, " has hidden_size ", model_config.hidden_size,
                       "; use the adapter with the model it was trained for"));
  }
}

}  // namespace promptsweep
